#!/usr/bin/env bash
# Python tools the media tests use: PESQ (ITU-T P.862) scoring of a degraded
# WAV against its reference (tests/pesq/pesq.py). Idempotent: pip skips
# packages already installed at the pinned version.
set -euo pipefail
PY=${PYTHON:-python3}
want="pesq==0.0.4 numpy==2.2.6 scipy==1.15.3"
if $PY -c 'import pesq, numpy, scipy' 2>/dev/null; then
    echo "python test tools present"
    exit 0
fi
# Debian's python is "externally managed": allow pip to install beside it.
$PY -m pip install --quiet --break-system-packages $want 2>/dev/null \
    || $PY -m pip install --quiet $want
