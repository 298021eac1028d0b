"""Helpers for the moat protocol tests: a raw SMTP client, the moatd process
wrapper, and small assertions.  No test logic lives here."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import NamedTuple, Optional, Union

from backend import dot_stuff

REPO = Path(__file__).resolve().parents[2]
HOSTNAME = "moat.test"
REPLY_TIMEOUT = 10.0          # seconds to wait for any one reply
CRLF = b"\r\n"

_ENH = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})(?: |$)")


def moatd_binary() -> Path:
    return Path(os.environ.get("MOATD") or REPO / "proxy" / "moatd")


# ---------------------------------------------------------------------------
# replies and the raw client
# ---------------------------------------------------------------------------

class Reply(NamedTuple):
    """One SMTP reply: its code and its lines as received (without CRLF)."""

    code: int
    lines: list

    @property
    def text(self) -> str:
        """The text of all lines after "NNN-"/"NNN ", joined with newlines."""
        return "\n".join(l[4:] for l in self.lines)

    @property
    def first_text(self) -> str:
        return self.lines[0][4:] if self.lines else ""

    @property
    def enhanced(self) -> Optional[str]:
        """The enhanced status code of the first line ("5.5.1"), or None."""
        m = _ENH.match(self.first_text)
        return ".".join(m.groups()) if m else None

    @property
    def keywords(self) -> list:
        """EHLO keywords (upper-cased first words of lines 2..n)."""
        return [l[4:].split(" ")[0].upper() for l in self.lines[1:]]

    def keyword_line(self, kw: str) -> Optional[str]:
        for l in self.lines[1:]:
            if l[4:].split(" ")[0].upper() == kw.upper():
                return l[4:]
        return None

    def __str__(self) -> str:
        return " | ".join(self.lines)


def assert_reply(reply: Reply, code: Union[int, str], enhanced: Optional[str] = None) -> Reply:
    """Assert the code (int: exact; str: prefix such as "4" or "45") and the
    enhanced status code of the first line when one is given."""
    if isinstance(code, int):
        assert reply.code == code, f"expected {code}, got: {reply}"
    else:
        assert str(reply.code).startswith(code), f"expected {code}xx, got: {reply}"
    if enhanced is not None:
        assert reply.enhanced == enhanced, f"expected enhanced code {enhanced}, got: {reply}"
    return reply


class PeerClosed(Exception):
    """The server closed the connection before a complete reply."""


class SMTPClient:
    """A raw SMTP client over a socket: exactly the bytes given are sent."""

    def __init__(self, host: str, port: int, timeout: float = REPLY_TIMEOUT,
                 read_banner: bool = True):
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.buf = bytearray()
        self.eof = False
        self.banner: Optional[Reply] = self.read_reply() if read_banner else None

    # ---- sending -----------------------------------------------------------
    def send(self, data: Union[bytes, str]) -> None:
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.sock.sendall(data)

    def line(self, text: Union[bytes, str]) -> None:
        """Send one command line; CRLF is appended."""
        if isinstance(text, str):
            text = text.encode("utf-8")
        self.send(text + CRLF)

    # ---- receiving ---------------------------------------------------------
    def _fill(self, deadline: float) -> None:
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("no complete reply within the timeout")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            raise PeerClosed(f"connection closed; unparsed: {bytes(self.buf)!r}")
        self.buf += data

    def read_line(self, timeout: Optional[float] = None) -> bytes:
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[: i + 1])
                del self.buf[: i + 1]
                return line
            self._fill(deadline)

    def read_reply(self, timeout: Optional[float] = None) -> Reply:
        """Read one complete (possibly multi-line) reply."""
        deadline = time.monotonic() + (timeout or self.timeout)
        lines = []
        while True:
            raw = self.read_line(max(0.01, deadline - time.monotonic()))
            assert raw.endswith(b"\r\n"), f"reply line not ended by CRLF: {raw!r}"
            text = raw[:-2].decode("utf-8", "surrogateescape")
            assert re.match(r"^[2-5]\d\d([ -]|$)", text), f"not an SMTP reply line: {text!r}"
            lines.append(text)
            if len(text) == 3 or text[3] == " ":
                codes = {l[:3] for l in lines}
                assert len(codes) == 1, f"mixed codes in one reply: {lines}"
                return Reply(int(text[:3]), lines)
            assert len(lines) < 200, "reply with too many lines"

    def expect(self, code: Union[int, str], enhanced: Optional[str] = None,
               timeout: Optional[float] = None) -> Reply:
        return assert_reply(self.read_reply(timeout), code, enhanced)

    def cmd(self, text: Union[bytes, str], code: Union[int, str, None] = None,
            enhanced: Optional[str] = None, timeout: Optional[float] = None) -> Reply:
        """Send a command line and read its reply (checked when code is given)."""
        self.line(text)
        reply = self.read_reply(timeout)
        if code is not None:
            assert_reply(reply, code, enhanced)
        return reply

    def ehlo(self, name: str = "client.example") -> Reply:
        return self.cmd("EHLO " + name, 250)

    def helo(self, name: str = "client.example") -> Reply:
        return self.cmd("HELO " + name, 250)

    def send_message(self, msg: bytes) -> None:
        """Send a message (lines ending in CRLF) dot-stuffed, then CRLF.CRLF."""
        assert msg == b"" or msg.endswith(CRLF)
        self.send(dot_stuff(msg) + b".\r\n")

    def transaction(self, mail_from: str, rcpts: list, msg: bytes,
                    mail_params: str = "") -> Reply:
        """MAIL, RCPT..., DATA, message; returns the end-of-data reply.
        Every step before it must succeed."""
        self.cmd(f"MAIL FROM:<{mail_from}>" + (" " + mail_params if mail_params else ""), 250)
        for r in rcpts:
            self.cmd(f"RCPT TO:<{r}>", 250)
        self.cmd("DATA", 354)
        self.send_message(msg)
        return self.read_reply()

    def wait_closed(self, timeout: Optional[float] = None) -> bool:
        """Read until the server closes the connection (True) or the timeout
        passes (False).  Bytes received meanwhile stay in self.buf."""
        if self.eof:
            return True
        deadline = time.monotonic() + (timeout or self.timeout)
        try:
            while True:
                self._fill(deadline)
        except PeerClosed:
            return True
        except socket.timeout:
            return False
        except OSError:
            return True

    def quit(self) -> None:
        try:
            self.cmd("QUIT", 221)
        finally:
            self.close()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def make_message(body: Union[bytes, str] = b"Hello.\r\n", subject: str = "test",
                 headers: Optional[list] = None) -> bytes:
    """A small RFC 5322 message with CRLF line endings."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    hdrs = headers if headers is not None else [
        "From: Sender <sender@example.org>",
        "To: Rcpt <rcpt@example.net>",
        f"Subject: {subject}",
        "Message-ID: <test.1@example.org>",
    ]
    return ("\r\n".join(hdrs) + "\r\n\r\n").encode("utf-8") + body


def strip_moat_headers(msg: bytes) -> bytes:
    """Remove header fields moat itself may prepend (Authentication-Results
    with moat's authserv-id), so byte-for-byte checks compare the rest."""
    out = msg
    prefix = b"Authentication-Results: " + HOSTNAME.encode()
    while out.startswith(prefix):
        end = out.find(b"\r\n")
        while end >= 0 and out[end + 2:end + 3] in (b" ", b"\t"):
            end = out.find(b"\r\n", end + 2)
        out = out[end + 2:]
    return out


def assert_crlf_only(data: bytes) -> None:
    """No bare CR and no bare LF anywhere."""
    bare_lf = re.search(rb"(?<!\r)\n", data)
    bare_cr = re.search(rb"\r(?!\n)", data)
    assert bare_lf is None, f"bare LF at offset {bare_lf.start()}"
    assert bare_cr is None, f"bare CR at offset {bare_cr.start()}"


def normalize_newlines(data: bytes) -> bytes:
    """Bare CR and bare LF become CRLF (what bare_newline=normalize does)."""
    return re.sub(rb"\r\n|\r|\n", b"\r\n", data)


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.05, what: str = "condition"):
    """Poll predicate() until it returns a true value; bounded."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# ---------------------------------------------------------------------------
# the moatd process
# ---------------------------------------------------------------------------

class MoatdProcess:
    """One running moatd, started with the given options."""

    def __init__(self, argv: list, port: int, workdir: Path, log_path: Path,
                 decision_log: Path):
        self.argv = argv
        self.host = "127.0.0.1"
        self.port = port
        self.workdir = workdir
        self.log_path = log_path
        self.decision_log = decision_log
        self._log = open(log_path, "ab")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, cwd=str(workdir))
        self.pid = self.proc.pid

    # ---- state -------------------------------------------------------------
    def log_text(self) -> str:
        try:
            return self.log_path.read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def decisions(self) -> list:
        """The decision records written so far (each line must be JSON)."""
        try:
            text = self.decision_log.read_bytes().decode("utf-8")
        except FileNotFoundError:
            return []
        records = []
        lines = text.split("\n")
        # A last line without "\n" may still be being written: ignore it.
        for line in lines[:-1]:
            if line.strip():
                records.append(json.loads(line))
        return records

    def wait_decisions(self, n: int, timeout: float = 10.0, pred=None) -> list:
        """Wait until at least n records (matching pred, if given) exist."""
        def got():
            recs = [r for r in self.decisions() if pred is None or pred(r)]
            return recs if len(recs) >= n else None
        return wait_until(got, timeout, what=f"{n} decision record(s)")

    def alive(self) -> bool:
        return self.proc.poll() is None

    # ---- clients -------------------------------------------------------------
    def client(self, timeout: float = REPLY_TIMEOUT, read_banner: bool = True) -> SMTPClient:
        return SMTPClient(self.host, self.port, timeout, read_banner)

    # ---- process control ---------------------------------------------------------
    def wait_ready(self, timeout: float = 10.0) -> None:
        """Until a connection gets a "220" line (bounded); fails if moatd exits."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moatd exited with {self.proc.returncode} during start:\n"
                                   + self.log_text())
            try:
                c = SMTPClient(self.host, self.port, timeout=2.0, read_banner=False)
            except OSError as e:
                last = e
                time.sleep(0.05)
                continue
            try:
                line = c.read_line(2.0)
                if line.startswith(b"220"):
                    try:
                        c.line("QUIT")
                        c.read_reply(2.0)
                        c.wait_closed(2.0)
                    except Exception:
                        pass
                    return
                last = line
            except Exception as e:   # noqa: BLE001 - retry until the deadline
                last = e
            finally:
                c.close()
            time.sleep(0.05)
        raise RuntimeError(f"moatd not ready after {timeout}s (last: {last!r}):\n" + self.log_text())

    def signal(self, sig: int) -> None:
        os.kill(self.pid, sig)

    def wait_exit(self, timeout: float = 10.0) -> Optional[int]:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout: float = 10.0) -> Optional[int]:
        """SIGTERM by PID, wait (bounded), then SIGKILL."""
        if self.proc.poll() is None:
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait(5)
        self._log.close()
        return self.proc.returncode


def run_moatd(args: list, timeout: float = 10.0, cwd: Optional[Path] = None) -> subprocess.CompletedProcess:
    """Run moatd to completion (e.g. with -n); bounded."""
    if not moatd_binary().exists():
        import pytest
        pytest.fail(f"moatd binary not found at {moatd_binary()} (build it, or set MOATD)")
    return subprocess.run([str(moatd_binary())] + args, stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=timeout,
                          cwd=str(cwd) if cwd else None)
