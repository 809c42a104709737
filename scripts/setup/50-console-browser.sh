#!/usr/bin/env bash
# Browser tests of the operator console (tests/console_browser.rs): playwright-core
# from the npm registry, pinned by tests/console/package-lock.json, drives Debian's
# chromium (apt-packages.txt; no browser download). Idempotent: `npm ci` only when
# the installed version differs from the pinned one.
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=tests/console
command -v node >/dev/null && command -v npm >/dev/null \
    || { echo "setup: node and npm are needed for the console browser tests (the machine's Node.js)" >&2; exit 1; }
want="$(node -p "require('./$dir/package-lock.json').packages['node_modules/playwright-core'].version")"
have="$(node -p "try { require('./$dir/node_modules/playwright-core/package.json').version } catch (e) { '' }")"
if [ "$want" != "$have" ]; then
    npm ci --prefix "$dir" --no-audit --no-fund --silent
fi
command -v chromium >/dev/null || { echo "chromium missing: add it to scripts/setup/apt-packages.txt" >&2; exit 1; }
printf 'setup: console browser tests ready (playwright-core %s)\n' "$want"
