#!/usr/bin/python3
"""demo-backend.py - a tiny mail server to put behind moatd for a demo or a manual test.

It listens on --listen (default 127.0.0.1:2526), accepts mail for any
recipient except local part "unknown" (550 5.1.1 ... User unknown, so RCPT
rejection by the backend can be seen live through moat), and stores every
message as one file in DIR/new/ of a Maildir-like directory (--maildir,
default ./demo-mail).  Each file is the raw message as received, with
X-Demo-Envelope-From / X-Demo-Envelope-To headers prepended.  One line per
message goes to stdout:

    stored demo-mail/new/1700000000.M123456P42Q1.demo-backend from=<a@x> to=<b@y> size=1234

It advertises 8BITMIME and SMTPUTF8 (no XCLIENT/XFORWARD: aiosmtpd has
neither).  Runs in the foreground until SIGTERM or SIGINT.

Needs Debian's python3-aiosmtpd (contrib/install-deps.sh build), hence
/usr/bin/python3 rather than whatever python3 comes first in PATH.
"""
import argparse
import itertools
import os
import secrets
import signal
import sys
import threading
import time

try:
    from aiosmtpd.controller import Controller
except ImportError:
    sys.exit("demo-backend: python3-aiosmtpd is missing: run contrib/install-deps.sh build "
             "(and use /usr/bin/python3)")

HOSTNAME = "demo-backend"


def parse_listen(text):
    """'host:port' or '[v6]:port' -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected host:port, got {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host or "127.0.0.1", int(port)


class Handler:
    """aiosmtpd hooks: RCPT check, DATA -> Maildir-like file."""

    def __init__(self, maildir):
        self.maildir = maildir
        self.seq = itertools.count(1)
        for sub in ("tmp", "new", "cur"):
            os.makedirs(os.path.join(maildir, sub), exist_ok=True)

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.rsplit("@", 1)[0] if "@" in address else address
        if local.lower() == "unknown":
            print(f"rejected rcpt to=<{address}> (550 5.1.1 user unknown)", flush=True)
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server, session, envelope):
        queue_id = secrets.token_hex(5).upper()
        now = time.time()
        name = f"{int(now)}.M{int((now % 1) * 1e6)}P{os.getpid()}Q{next(self.seq)}.{HOSTNAME}"
        rcpts = ", ".join(f"<{r}>" for r in envelope.rcpt_tos)
        head = (f"X-Demo-Envelope-From: <{envelope.mail_from}>\r\n"
                f"X-Demo-Envelope-To: {rcpts}\r\n").encode("utf-8", "surrogateescape")
        body = envelope.original_content or b""
        tmp = os.path.join(self.maildir, "tmp", name)
        new = os.path.join(self.maildir, "new", name)
        try:
            with open(tmp, "wb") as f:
                f.write(head + body)
                f.flush()
                os.fsync(f.fileno())
            os.rename(tmp, new)  # Maildir: appear in new/ only when complete
        except OSError as e:
            print(f"error storing message: {e}", file=sys.stderr, flush=True)
            return "451 4.3.0 Error: could not store the message"
        print(f"stored {new} from=<{envelope.mail_from}> to={rcpts} size={len(body)} "
              f"id={queue_id}", flush=True)
        return f"250 2.0.0 Ok: queued as {queue_id}"


def main():
    ap = argparse.ArgumentParser(description="Demo backend mail server for moat (stores mail in a Maildir).")
    ap.add_argument("--listen", type=parse_listen, default=("127.0.0.1", 2526),
                    help="host:port to listen on (default 127.0.0.1:2526)")
    ap.add_argument("--maildir", default="demo-mail",
                    help="Maildir-like directory; messages land in DIR/new/ (default ./demo-mail)")
    a = ap.parse_args()
    host, port = a.listen

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    handler = Handler(a.maildir)
    controller = Controller(handler, hostname=host, port=port, server_hostname=HOSTNAME,
                            ident="ESMTP moat demo backend",
                            enable_SMTPUTF8=True,  # 8BITMIME is offered as long as decode_data is off
                            ready_timeout=10)
    try:
        controller.start()
    except Exception as e:  # bind errors and the like surface here
        sys.exit(f"demo-backend: cannot listen on {host}:{port}: {e}")
    print(f"demo-backend listening on {host}:{port}, storing mail in {os.path.join(a.maildir, 'new')}",
          flush=True)
    try:
        while not stop.wait(1.0):
            pass
    finally:
        controller.stop()
        print("demo-backend stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
