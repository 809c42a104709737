#!/usr/bin/env bash
# Test tools of ivr-integrations: aiosmtpd, the real SMTP server the mail
# outbox tests talk to on loopback (crates/ivr-integrations/tests/support/).
# Idempotent: installs only when the pinned version is missing.
set -euo pipefail
want=1.4.6
have="$(python3 -c 'import importlib.metadata as m; print(m.version("aiosmtpd"))' 2>/dev/null || true)"
if [ "$have" != "$want" ]; then
    # A Debian system python refuses plain pip installs (PEP 668): then
    # install for this test tool anyway, it has no Debian package at 1.4.6.
    python3 -m pip install --quiet "aiosmtpd==$want" 2>/dev/null \
        || python3 -m pip install --quiet --break-system-packages "aiosmtpd==$want"
fi
python3 -c 'import aiosmtpd' >/dev/null
