"""A real SMTP server (aiosmtpd) on loopback for the mail outbox tests.

Each accepted message is parsed with Python's email package and written to
OUTDIR as N.json (envelope, decoded headers, decoded body) plus N.eml (raw),
so the Rust test asserts on what a mail client would show.

usage: smtp_sink.py PORT OUTDIR [USER PASSWORD] [--starttls|--tls CERT KEY]
--starttls: offers and requires STARTTLS (RFC 3207); --tls: implicit TLS
(RFC 8314). Prints READY when listening; runs until killed.
"""
import email
import email.policy
import json
import os
import ssl
import sys
import threading
import logging
import warnings

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

# Plain AUTH on loopback is the point of the test: silence the warning.
warnings.filterwarnings("ignore")
logging.getLogger("mail.log").setLevel(logging.CRITICAL)  # the untrusted-certificate test aborts handshakes on purpose

args = sys.argv[1:]
tls_mode = None
if len(args) >= 3 and args[-3] in ("--starttls", "--tls"):
    tls_mode, cert, key = args[-3:]
    args = args[:-3]
port = int(args[0])
outdir = args[1]
user = args[2].encode() if len(args) > 3 else None
password = args[3].encode() if len(args) > 3 else None
lock = threading.Lock()


class Handler:
    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        with lock:
            n = len([f for f in os.listdir(outdir) if f.endswith(".json")]) + 1
            with open(os.path.join(outdir, f"{n}.eml"), "wb") as f:
                f.write(envelope.original_content)
            record = {
                "mail_from": envelope.mail_from,
                "rcpt_tos": envelope.rcpt_tos,
                "from": str(msg["from"]),
                "to": str(msg["to"]),
                "subject": str(msg["subject"]),
                "message_id": str(msg["message-id"]),
                "body": msg.get_content(),
                "authenticated_as": session.authenticated and user.decode() or None,
                "tls": server.transport.get_extra_info("ssl_object") is not None,
            }
            tmp = os.path.join(outdir, f"{n}.json.tmp")
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(record, f, ensure_ascii=False)
            os.rename(tmp, os.path.join(outdir, f"{n}.json"))
        return "250 OK"


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == user and auth_data.password == password
    return AuthResult(success=ok, handled=False)


kwargs = {}
if user is not None:
    kwargs = dict(authenticator=authenticator, auth_required=True, auth_require_tls=False)
if tls_mode is not None:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    if tls_mode == "--starttls":
        kwargs.update(tls_context=ctx, require_starttls=True)
    else:
        kwargs.update(ssl_context=ctx)
controller = Controller(Handler(), hostname="127.0.0.1", port=port, **kwargs)
controller.start()
print("READY", flush=True)
threading.Event().wait()
