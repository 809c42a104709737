#!/usr/bin/env python3
"""Scores a degraded recording against its reference with PESQ (ITU-T P.862).

Usage: pesq.py REFERENCE.wav DEGRADED.wav [--mode nb|wb] [--channel N] [--json]

Both files are converted to mono at the PESQ rate (8 kHz for nb, 16 kHz for
wb) with a polyphase resampler; a stereo file is read from --channel (default
0: the left channel, which is the caller side of an ivr-media recording).
Prints the MOS-LQO score (or a JSON object with --json). Exit status 0 if it
could score, 2 on bad input. Installed by scripts/setup/30-python-test-tools.sh.
"""
import argparse
import json
import os
import sys
from math import gcd

# This file is named like the PyPI package: drop its own folder from the
# import path so `import pesq` finds the package, not this script.
_here = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]

import numpy as np  # noqa: E402
from pesq import pesq  # noqa: E402
from scipy.io import wavfile  # noqa: E402
from scipy.signal import resample_poly  # noqa: E402


def load(path, rate, channel):
    sr, x = wavfile.read(path)
    if x.ndim == 2:
        x = x[:, channel]
    if np.issubdtype(x.dtype, np.integer):
        x = x.astype(np.float64) / 32768.0
    else:
        x = x.astype(np.float64)
    if sr != rate:
        g = gcd(sr, rate)
        x = resample_poly(x, rate // g, sr // g)
    return x


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("reference")
    ap.add_argument("degraded")
    ap.add_argument("--mode", choices=["nb", "wb"], default="nb")
    ap.add_argument("--channel", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    rate = 8000 if a.mode == "nb" else 16000
    try:
        ref = load(a.reference, rate, 0)
        deg = load(a.degraded, rate, a.channel)
    except (OSError, ValueError) as e:
        print(f"pesq.py: cannot read input: {e}", file=sys.stderr)
        return 2
    n = min(len(ref), len(deg))
    if n < rate // 4:
        print("pesq.py: audio shorter than 0.25 s", file=sys.stderr)
        return 2
    score = pesq(rate, ref, deg, a.mode)
    if a.json:
        print(json.dumps({"mode": a.mode, "mos_lqo": score, "reference": a.reference, "degraded": a.degraded}))
    else:
        print(f"{score:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
