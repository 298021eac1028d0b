"""A scripted SMTP backend for the moat protocol tests.

It plays the mail server behind moatd on 127.0.0.1 (a port the kernel picks)
and records everything it receives, byte for byte:

    b = ScriptedBackend(caps=[...], reject_rcpts={"nobody@example.net"})
    b.start()
    ...  # point moatd at b.port
    b.wait_delivered(1)
    t = b.transactions()[0]
    t.message, t.data_raw, t.mail_from, t.rcpts

Behaviour is set by keyword arguments (see BackendConfig) and may be changed
while it runs (b.config.hang_at.add("EOD")); every connection reads the
config at each step.  Each reply override may be a string (CRLF-less lines
joined with "\\n" for a multi-line reply), a list (used one after the other;
the default comes back when it is used up) or a callable (conn, txn) that
returns a string or None for the default.

Every blocking step is bounded: sockets have timeouts, a "hang" lasts at
most hang_limit seconds or until stop(), and an idle connection is dropped
after idle_limit seconds.
"""

from __future__ import annotations

import itertools
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

DEFAULT_CAPS = [
    "PIPELINING",
    "SIZE 52428800",
    "8BITMIME",
    "SMTPUTF8",
    "ENHANCEDSTATUSCODES",
    "DSN",
    "XCLIENT ADDR NAME HELO PROTO",
]

XFORWARD_CAP = "XFORWARD NAME ADDR PROTO HELO"

DEFAULT_BANNER = "220 backend.test ESMTP scripted"
DEFAULT_XCLIENT_REPLY = "220 backend.test ESMTP scripted"

# Only CRLF "." CRLF ends the data (a strict server such as a patched Postfix).
_STRICT_END = re.compile(rb"\r\n\.\r\n")
# What vulnerable servers also took as the end of data ("SMTP smuggling").
_LENIENT_END = re.compile(rb"(?:\r\n|\n|\r)\.(?:\r\n|\n|\r)")

_queue_ids = itertools.count(1)


def unstuff(raw: bytes) -> bytes:
    """Undo SMTP dot-stuffing of data whose lines end in CRLF."""
    return re.sub(rb"(\A|\r\n)\.", rb"\1", raw)


def dot_stuff(msg: bytes) -> bytes:
    """Dot-stuff a message whose lines end in CRLF (what a client sends)."""
    return re.sub(rb"(\A|\r\n)\.", rb"\1..", msg)


def _addr_of(arg: str) -> str:
    """The address between the first "<" and ">" of a MAIL/RCPT argument."""
    m = re.search(r"<([^>]*)>", arg)
    if m:
        return m.group(1)
    parts = arg.split(":", 1)
    return parts[1].strip().split(" ")[0] if len(parts) == 2 else ""


@dataclass
class BackendConfig:
    """What the scripted backend does; every field may change at run time."""

    caps: list = field(default_factory=lambda: list(DEFAULT_CAPS))
    hostname: str = "backend.test"
    banner: Any = DEFAULT_BANNER
    reject_rcpts: set = field(default_factory=set)     # 550 5.1.1
    tempfail_rcpts: set = field(default_factory=set)   # 450 4.2.0
    helo_reply: Any = None
    ehlo_reply: Any = None          # replaces the whole EHLO reply
    mail_reply: Any = None          # default "250 2.1.0 Ok"
    rcpt_reply: Any = None          # default per reject/tempfail sets
    data_reply: Any = None          # default "354 End data with <CR><LF>.<CR><LF>"
    eod_reply: Any = None           # default "250 2.0.0 Ok: queued as <ID>"
    rset_reply: Any = None
    xclient_reply: Any = DEFAULT_XCLIENT_REPLY
    xforward_reply: Any = "250 2.0.0 Ok"
    close_after_banner: bool = False
    # Points where the backend never replies: BANNER, EHLO, HELO, MAIL,
    # RCPT, DATA (no 354), EOD (no reply to the final dot), XCLIENT, ...
    hang_at: set = field(default_factory=set)
    # Points where the backend closes the connection instead of replying;
    # "MIDDATA" closes after 354 once the first data bytes arrived.
    close_at: set = field(default_factory=set)
    # Seconds to sleep before replying at a point (same names as hang_at).
    delays: dict = field(default_factory=dict)
    garbage_eod: bool = False       # answer "HELLO WORLD" to the final dot
    lenient_eod: bool = False       # also end data at LF.LF, CR.CR, ... (vulnerable)
    hang_limit: float = 60.0
    idle_limit: float = 120.0


@dataclass
class Transaction:
    """One MAIL ... end-of-data sequence seen on a backend connection."""

    mail_from: str                       # the MAIL command line, without CRLF
    mail_accepted: bool = False
    rcpts: list = field(default_factory=list)           # RCPT command lines
    accepted_rcpts: list = field(default_factory=list)  # addresses answered 250
    data_started: bool = False           # 354 sent
    data_raw: Optional[bytes] = None     # bytes after 354, dot-stuffed, up to and
                                         # including the CRLF before the final "."
    message: Optional[bytes] = None      # data_raw with dot-stuffing undone
    eod_reply: Optional[str] = None      # what the backend answered to the dot
    delivered: bool = False              # answered 2xx to the final dot
    queue_id: Optional[str] = None

    @property
    def mail_addr(self) -> str:
        return _addr_of(self.mail_from.split(" ", 1)[1] if " " in self.mail_from else "")

    @property
    def rcpt_addrs(self) -> list:
        return [_addr_of(r.split(" ", 1)[1] if " " in r else "") for r in self.rcpts]


class Connection:
    """Everything recorded about one connection to the backend."""

    def __init__(self, backend: "ScriptedBackend", peer):
        self._backend = backend
        self.peer = peer
        self.raw = bytearray()            # every byte received, in order
        self.commands: list = []          # command lines (str, no CRLF)
        self.command_bytes: list = []     # command lines as received (bytes)
        self.xclient: list = []           # XCLIENT lines
        self.xforward: list = []          # XFORWARD lines
        self.ehlo: list = []              # EHLO / HELO lines
        self.transactions: list = []
        self.replies: list = []           # every reply sent (str)
        self.closed = threading.Event()
        self.closed_by: Optional[str] = None   # "peer" | "backend"

    # Accessors copy under the backend's lock.
    def snapshot_raw(self) -> bytes:
        with self._backend._lock:
            return bytes(self.raw)

    def snapshot_commands(self) -> list:
        with self._backend._lock:
            return list(self.commands)


class _Closed(Exception):
    pass


class _Stop(Exception):
    pass


class _Handler:
    """Serves one connection in its own thread."""

    def __init__(self, backend: "ScriptedBackend", sock: socket.socket, conn: Connection):
        self.b = backend
        self.cfg = backend.config
        self.sock = sock
        self.conn = conn
        self.buf = bytearray()
        self.txn: Optional[Transaction] = None
        self.greeted = False

    # ---- I/O -------------------------------------------------------------
    def _fill(self) -> None:
        deadline = time.monotonic() + self.cfg.idle_limit
        while True:
            if self.b._stop.is_set():
                raise _Stop()
            if time.monotonic() > deadline:
                raise _Closed()
            try:
                data = self.sock.recv(262144)
            except socket.timeout:
                continue
            except OSError:
                self.conn.closed_by = self.conn.closed_by or "peer"
                raise _Closed()
            if not data:
                self.conn.closed_by = self.conn.closed_by or "peer"
                raise _Closed()
            with self.b._cond:
                self.conn.raw += data
                self.b._cond.notify_all()
            self.buf += data
            return

    def readline(self) -> bytes:
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[: i + 1])
                del self.buf[: i + 1]
                return line
            self._fill()

    def read_data(self) -> bytes:
        """Read up to the end of data; returns the raw bytes before the "." line
        (dot-stuffed, including the line ending before the ".")."""
        data = bytearray(b"\r\n")   # so that a "." line at the very start matches
        pos = 0
        while True:
            data += self.buf
            self.buf.clear()
            if len(data) > 2 and "MIDDATA" in self.cfg.close_at:
                self._close_now()
            pattern = _LENIENT_END if self.cfg.lenient_eod else _STRICT_END
            m = pattern.search(data, pos)
            if m and self.cfg.lenient_eod and m.end() == len(data) and data.endswith(b"\r"):
                m = None   # maybe the start of CRLF: wait for one more byte
            if m:
                dot = m.start() + m.group(0).index(b".")
                raw = bytes(data[2:dot])
                self.buf = bytearray(data[m.end():])
                return raw
            pos = max(0, len(data) - 5)
            self._fill()

    def send(self, text: str) -> None:
        lines = text.split("\n")
        wire = "".join(line.rstrip("\r") + "\r\n" for line in lines)
        with self.b._cond:
            self.conn.replies.append(text)
            self.b._cond.notify_all()
        try:
            self.sock.sendall(wire.encode("utf-8", "surrogateescape"))
        except OSError:
            raise _Closed()
        if lines[-1].startswith("421"):
            self._close_now()

    def _close_now(self) -> None:
        self.conn.closed_by = "backend"
        raise _Closed()

    # ---- scripting -------------------------------------------------------
    def _pick(self, name: str, default: Optional[str]) -> Optional[str]:
        """The configured override for a reply, or the default."""
        value = getattr(self.cfg, name)
        if value is None:
            return default
        if callable(value):
            got = value(self.conn, self.txn)
            return default if got is None else got
        if isinstance(value, list):
            with self.b._lock:
                if value:
                    got = value.pop(0)
                    return default if got is None else got
            return default
        return value

    def _point(self, point: str) -> None:
        """Apply delays, hangs and closes configured for this point."""
        delay = self.cfg.delays.get(point)
        if delay:
            if self.b._stop.wait(delay):
                raise _Stop()
        if point in self.cfg.close_at:
            self._close_now()
        if point in self.cfg.hang_at:
            self._hang()

    def _hang(self) -> None:
        """Never reply: keep reading (and recording) until the peer closes,
        stop() is called or hang_limit passes."""
        deadline = time.monotonic() + self.cfg.hang_limit
        while time.monotonic() < deadline and not self.b._stop.is_set():
            try:
                data = self.sock.recv(262144)
            except socket.timeout:
                continue
            except OSError:
                data = b""
            if not data:
                self.conn.closed_by = self.conn.closed_by or "peer"
                raise _Closed()
            with self.b._cond:
                self.conn.raw += data
                self.b._cond.notify_all()
        raise _Stop()

    def run(self) -> None:
        try:
            self._point("BANNER")
            banner = self._pick("banner", DEFAULT_BANNER)
            self.send(banner)
            if self.cfg.close_after_banner:
                self._close_now()
            while True:
                line = self.readline()
                self._command(line)
        except (_Closed, _Stop):
            pass
        finally:
            try:
                self.sock.close()
            except OSError:
                pass
            with self.b._cond:
                if self.conn.closed_by is None:
                    self.conn.closed_by = "backend"
                self.conn.closed.set()
                self.b._cond.notify_all()

    def _command(self, raw_line: bytes) -> None:
        text = raw_line.rstrip(b"\r\n").decode("utf-8", "surrogateescape")
        verb, _, arg = text.partition(" ")
        verb = verb.upper()
        with self.b._cond:
            self.conn.commands.append(text)
            self.conn.command_bytes.append(raw_line)
            if verb == "XCLIENT":
                self.conn.xclient.append(text)
            elif verb == "XFORWARD":
                self.conn.xforward.append(text)
            elif verb in ("EHLO", "HELO"):
                self.conn.ehlo.append(text)
            self.b._cond.notify_all()
        caps = list(self.cfg.caps)
        if verb == "EHLO":
            self._point("EHLO")
            self.greeted = True
            self.txn = None
            lines = [self.cfg.hostname] + caps
            default = "\n".join(
                ("250-" if i < len(lines) - 1 else "250 ") + l for i, l in enumerate(lines))
            self.send(self._pick("ehlo_reply", default))
        elif verb == "HELO":
            self._point("HELO")
            self.greeted = True
            self.txn = None
            self.send(self._pick("helo_reply", "250 " + self.cfg.hostname))
        elif verb == "XCLIENT":
            self._point("XCLIENT")
            if not any(c.upper().startswith("XCLIENT") for c in caps):
                self.send("550 5.7.0 Error: insufficient authorization")
                return
            reply = self._pick("xclient_reply", DEFAULT_XCLIENT_REPLY)
            if reply.startswith("220"):
                self.greeted = False   # Postfix: the client must EHLO again
                self.txn = None
            self.send(reply)
        elif verb == "XFORWARD":
            self._point("XFORWARD")
            if not any(c.upper().startswith("XFORWARD") for c in caps):
                self.send("550 5.7.0 Error: insufficient authorization")
                return
            self.send(self._pick("xforward_reply", "250 2.0.0 Ok"))
        elif verb == "MAIL":
            self._point("MAIL")
            txn = Transaction(mail_from=text)
            with self.b._cond:
                self.conn.transactions.append(txn)
                self.b._cond.notify_all()
            if not self.greeted:
                self.send("503 5.5.1 Error: send HELO/EHLO first")
                return
            if self.txn is not None:
                self.send("503 5.5.1 Error: nested MAIL command")
                return
            self.txn = txn
            reply = self._pick("mail_reply", "250 2.1.0 Ok")
            txn.mail_accepted = reply.startswith("2")
            if not txn.mail_accepted:
                self.txn = None
            self.send(reply)
        elif verb == "RCPT":
            self._point("RCPT")
            txn = self.txn
            if txn is None:
                self.send("503 5.5.1 Error: need MAIL command")
                return
            addr = _addr_of(arg)
            with self.b._cond:
                txn.rcpts.append(text)
                self.b._cond.notify_all()
            low = addr.lower()
            if low in {a.lower() for a in self.cfg.reject_rcpts}:
                default = f"550 5.1.1 <{addr}>: Recipient address rejected: User unknown"
            elif low in {a.lower() for a in self.cfg.tempfail_rcpts}:
                default = f"450 4.2.0 <{addr}>: Recipient address rejected: try later"
            else:
                default = "250 2.1.5 Ok"
            reply = self._pick("rcpt_reply", default)
            if reply.startswith("2"):
                with self.b._cond:
                    txn.accepted_rcpts.append(addr)
            self.send(reply)
        elif verb == "DATA":
            self._point("DATA")
            txn = self.txn
            if txn is None:
                self.send("503 5.5.1 Error: need RCPT command")
                return
            if not txn.accepted_rcpts:
                self.send("554 5.5.1 Error: no valid recipients")
                return
            reply = self._pick("data_reply", "354 End data with <CR><LF>.<CR><LF>")
            if not reply.startswith("354"):
                self.send(reply)
                return
            txn.data_started = True
            self.send(reply)
            raw = self.read_data()
            with self.b._cond:
                txn.data_raw = raw
                txn.message = unstuff(raw)
                self.b._cond.notify_all()
            self._point("EOD")
            qid = "TESTQ%05d" % next(_queue_ids)
            if self.cfg.garbage_eod:
                reply = "HELLO WORLD"
            else:
                reply = self._pick("eod_reply", "250 2.0.0 Ok: queued as " + qid)
            with self.b._cond:
                txn.eod_reply = reply
                if reply.startswith("2"):
                    txn.delivered = True
                    m = re.search(r"queued as ([0-9A-Za-z]+)", reply)
                    txn.queue_id = m.group(1) if m else None
                self.b._cond.notify_all()
            self.txn = None
            self.send(reply)
        elif verb == "RSET":
            self._point("RSET")
            self.txn = None
            self.send(self._pick("rset_reply", "250 2.0.0 Ok"))
        elif verb == "NOOP":
            self.send("250 2.0.0 Ok")
        elif verb == "QUIT":
            self.send("221 2.0.0 Bye")
            self.conn.closed_by = "backend"
            raise _Closed()
        else:
            self.send("502 5.5.2 Error: command not recognized")


class ScriptedBackend:
    """A threaded SMTP server on 127.0.0.1:<free port> that records all it gets."""

    def __init__(self, **kwargs):
        self.config = BackendConfig(**kwargs)
        self.host = "127.0.0.1"
        self.port: Optional[int] = None
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._conns: list = []
        self._threads: list = []
        self._sock: Optional[socket.socket] = None
        self._accept_thread: Optional[threading.Thread] = None

    # ---- life cycle ------------------------------------------------------
    def start(self) -> "ScriptedBackend":
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, 0))
        s.listen(64)
        s.settimeout(0.2)
        self._sock = s
        self.port = s.getsockname()[1]
        self._accept_thread = threading.Thread(target=self._accept_loop, daemon=True,
                                               name=f"backend-accept-{self.port}")
        self._accept_thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, end every connection, wait (bounded) for threads."""
        self._stop.set()
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        for t in [self._accept_thread] + list(self._threads):
            if t is not None:
                t.join(max(0.0, deadline - time.monotonic()))

    @property
    def addr(self) -> str:
        return f"{self.host}:{self.port}"

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                sock, peer = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            sock.settimeout(0.25)
            conn = Connection(self, peer)
            with self._cond:
                self._conns.append(conn)
                self._cond.notify_all()
            h = _Handler(self, sock, conn)
            t = threading.Thread(target=h.run, daemon=True,
                                 name=f"backend-conn-{self.port}-{len(self._conns)}")
            self._threads.append(t)
            t.start()

    # ---- thread-safe accessors ---------------------------------------------
    def connections(self) -> list:
        with self._lock:
            return list(self._conns)

    def transactions(self) -> list:
        """Every transaction (MAIL seen) on every connection, in order."""
        with self._lock:
            return [t for c in self._conns for t in c.transactions]

    def delivered(self) -> list:
        """Transactions whose end of data the backend answered 2xx."""
        with self._lock:
            return [t for c in self._conns for t in c.transactions if t.delivered]

    @property
    def delivered_count(self) -> int:
        return len(self.delivered())

    def commands(self) -> list:
        """Every command line received, on all connections, in order per connection."""
        with self._lock:
            return [cmd for c in self._conns for cmd in c.commands]

    def verbs(self) -> list:
        return [c.split(" ", 1)[0].upper() for c in self.commands()]

    def count_verb(self, verb: str) -> int:
        return sum(1 for v in self.verbs() if v == verb.upper())

    def mail_connections(self) -> list:
        """Connections that carried at least one MAIL (not capability probes)."""
        with self._lock:
            return [c for c in self._conns if c.transactions]

    def xclient_lines(self) -> list:
        with self._lock:
            return [x for c in self._conns for x in c.xclient]

    def xforward_lines(self) -> list:
        with self._lock:
            return [x for c in self._conns for x in c.xforward]

    # ---- bounded waits -------------------------------------------------------
    def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0,
                 what: str = "condition") -> Any:
        """Wait until predicate() is true (re-checked on each change and every 0.1 s)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                value = predicate()
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"backend: timed out after {timeout}s waiting for {what}")
                self._cond.wait(min(left, 0.1))

    def wait_connections(self, n: int, timeout: float = 10.0) -> list:
        return self.wait_for(lambda: len(self._conns) >= n and list(self._conns),
                             timeout, f"{n} connection(s)")

    def wait_delivered(self, n: int, timeout: float = 10.0) -> list:
        return self.wait_for(lambda: len(self.delivered()) >= n and self.delivered(),
                             timeout, f"{n} delivered message(s)")

    def wait_transactions(self, n: int, timeout: float = 10.0) -> list:
        return self.wait_for(lambda: len(self.transactions()) >= n and self.transactions(),
                             timeout, f"{n} transaction(s)")

    def wait_command(self, verb: str, count: int = 1, timeout: float = 10.0) -> list:
        return self.wait_for(lambda: self.count_verb(verb) >= count and self.commands(),
                             timeout, f"{count} {verb} command(s)")

    def wait_data(self, n: int = 1, timeout: float = 10.0) -> list:
        """Wait until n transactions have their data complete (before the reply)."""
        def got():
            ts = [t for t in self.transactions() if t.data_raw is not None]
            return len(ts) >= n and ts
        return self.wait_for(got, timeout, f"{n} complete DATA section(s)")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()
