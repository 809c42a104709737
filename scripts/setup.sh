#!/usr/bin/env bash
# `make setup`: idempotent; installs what is missing and skips what is there.
# Every step prints one line; a failure stops setup with a message saying what to do.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

# 1. Debian packages.
want=$(grep -v '^\s*#' scripts/setup/apt-packages.txt | awk 'NF{print $1}')
missing=()
for p in $want; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  say "installing apt packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed"
else
  say "apt packages present"
fi

# 2. Further steps (models, voices, onnxruntime) live in scripts/setup/*.sh and run in name order.
for step in scripts/setup/[0-9]*.sh; do
  [ -e "$step" ] || continue
  bash "$step" || die "$step failed"
done
say "done"
