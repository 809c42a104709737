#!/usr/bin/env bash
# Python tools the tests use: PESQ (ITU-T P.862) scoring of a degraded WAV
# against its reference (tests/pesq/pesq.py), and piper-tts, which renders the
# English clips of the call-like speech sets (tests/vectors/calls/generate.py,
# the turn-detection set). Idempotent: pip skips packages already installed
# at the pinned version.
set -euo pipefail
PY=${PYTHON:-python3}
want="pesq==0.0.4 numpy==2.2.6 scipy==1.15.3 piper-tts==1.8.0"
if $PY -c 'import pesq, numpy, scipy, piper' 2>/dev/null; then
    echo "python test tools present"
    exit 0
fi
# Debian's python is "externally managed": allow pip to install beside it.
$PY -m pip install --quiet --break-system-packages $want 2>/dev/null \
    || $PY -m pip install --quiet $want
