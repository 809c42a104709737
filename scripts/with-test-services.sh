#!/usr/bin/env bash
# Runs a command with the test services the suite needs (started on loopback,
# stopped afterwards). Services are added here as the suite needs them.
set -euo pipefail
cd "$(dirname "$0")/.."
exec "$@"
