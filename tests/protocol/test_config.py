"""Configuration: -n checks with file:line errors, -o overrides, SIGHUP
reload, SIGTERM drain, listen/hostname/banner."""

import signal
import socket
import time

import pytest

from backend import free_port
from helpers import PeerClosed, run_moatd, wait_until

FROM = "sender@example.org"


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def check(args):
    r = run_moatd(["-n"] + args)
    return r.returncode, r.stderr.decode("utf-8", "replace") + r.stdout.decode("utf-8", "replace")


def test_check_valid_file(tmp_path):
    """-n with a valid file exits 0."""
    p = write(tmp_path, "ok.conf", "# comment\n\nlisten = 127.0.0.1:2525\nmax_message_size = 25M\n"
              "command_timeout = 5m\nbare_newline = normalize\nbackend_xclient = no\n")
    code, out = check(["-c", str(p)])
    assert code == 0, out


def test_check_shipped_example_config():
    """-n accepts the shipped contrib/moatd.conf."""
    from helpers import REPO
    code, out = check(["-c", str(REPO / "contrib" / "moatd.conf")])
    assert code == 0, out


@pytest.mark.parametrize("line,key", [
    ("no_such_key = 1", "no_such_key"),
    ("max_message_size = abc", "max_message_size"),
    ("bare_newline = maybe", "bare_newline"),
    ("listen = nonsense", "listen"),
    ("command_timeout = soon", "command_timeout"),
    ("backend_xclient = perhaps", "backend_xclient"),
    ("connlimit_mode = sometimes", "connlimit_mode"),
])
def test_check_bad_line_names_file_and_line(tmp_path, line, key):
    """-n reports a bad key or value as FILE:LINE naming the key, and exits 1."""
    p = write(tmp_path, "bad.conf", "# first\nhostname = mx.example\n" + line + "\n")
    code, out = check(["-c", str(p)])
    assert code == 1, out
    assert f"{p}:3:" in out, out
    assert key in out, out


def test_check_reports_every_error(tmp_path):
    """-n reports each error with its own line number."""
    p = write(tmp_path, "two.conf", "max_recipients = lots\nhostname = ok.example\nfoo = bar\n")
    code, out = check(["-c", str(p)])
    assert code == 1
    assert f"{p}:1:" in out and f"{p}:3:" in out, out


@pytest.mark.parametrize("opt,key", [("nokey=1", "nokey"), ("max_message_size=abc", "max_message_size")])
def test_check_bad_override(opt, key):
    """-n with a bad -o exits 1 and names the key."""
    code, out = check(["-c", "/dev/null", "-o", opt])
    assert code == 1, out
    assert key in out, out


def test_check_missing_file(tmp_path):
    """-n with a missing file exits 1 and names the file."""
    p = tmp_path / "missing.conf"
    code, out = check(["-c", str(p)])
    assert code == 1
    assert str(p) in out, out


def test_start_with_bad_config_exits(tmp_path, moatd):
    """moatd (not -n) refuses to start on a bad file, naming file:line."""
    port = free_port()
    p = write(tmp_path, "bad.conf", f"listen = 127.0.0.1:{port}\nmax_recipients = -5\n")
    m = moatd(None, config=p, ready=False, defaults=False)
    code = m.wait_exit(10)
    assert code not in (None, 0), "moatd kept running with a bad configuration"
    assert f"{p}:2:" in m.log_text(), m.log_text()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_file_settings_later_lines_and_overrides(tmp_path, backend, moatd):
    """Later lines win within a file, and -o wins over the file."""
    p = write(tmp_path, "m.conf", "max_message_size = 100000   # inline comment\nmax_message_size = 200000\n")
    m = moatd(backend, config=p)
    with m.client() as c:
        assert c.ehlo().keyword_line("SIZE") == "SIZE 200000"
    m2 = moatd(backend, config=p, max_message_size="300000")
    with m2.client() as c:
        assert c.ehlo().keyword_line("SIZE") == "SIZE 300000"


def test_size_units(backend, moatd):
    """Sizes take K/M units: 25M is announced as 26214400."""
    m = moatd(backend, max_message_size="25M")
    with m.client() as c:
        assert c.ehlo().keyword_line("SIZE") == "SIZE 26214400"


def test_hostname_and_banner(backend, moatd):
    """hostname and banner options shape the greeting and EHLO."""
    m = moatd(backend, hostname="other.example", banner="ESMTP hello there")
    with m.client() as c:
        assert c.banner.lines == ["220 other.example ESMTP hello there"]
        assert c.ehlo().lines[0] == "250-other.example"


def test_two_listen_addresses(backend, moatd):
    """A comma-separated listen list serves on each address."""
    p1, p2 = free_port(), free_port()
    m = moatd(backend, listen=f"127.0.0.1:{p1},127.0.0.1:{p2}", ready=False)
    m.port = p1
    m.wait_ready()
    m.port = p2
    m.wait_ready()


def test_sighup_reload_applies_to_new_sessions(tmp_path, backend, moatd):
    """After editing max_recipients and SIGHUP, new sessions see the new limit."""
    p = write(tmp_path, "r.conf", "max_recipients = 5\n")
    m = moatd(backend, config=p)
    old = m.client()
    old.ehlo()
    p.write_text("max_recipients = 2\n")
    m.signal(signal.SIGHUP)

    def third_rcpt_refused():
        with m.client() as c:
            c.ehlo()
            c.cmd(f"MAIL FROM:<{FROM}>", 250)
            c.cmd("RCPT TO:<a@example.net>", 250)
            c.cmd("RCPT TO:<b@example.net>", 250)
            code = c.cmd("RCPT TO:<c@example.net>").code
            c.cmd("RSET", 250)
            return code == 452
    wait_until(third_rcpt_refused, timeout=10, interval=0.3, what="new max_recipients in force")
    # The session opened before the reload keeps its configuration.
    old.cmd(f"MAIL FROM:<{FROM}>", 250)
    for r in "abc":
        old.cmd(f"RCPT TO:<{r}@example.net>", 250)
    old.close()


def test_sighup_with_broken_file_keeps_old_config(tmp_path, backend, moatd):
    """A broken file on SIGHUP is reported (file:line) and the old configuration stays."""
    p = write(tmp_path, "r.conf", "max_recipients = 2\n")
    m = moatd(backend, config=p)
    p.write_text("# broken\nmax_recipients = many\n")
    m.signal(signal.SIGHUP)
    wait_until(lambda: f"{p}:2:" in m.log_text(), timeout=10, what="reload error in the log")
    assert m.alive()
    with m.client() as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{FROM}>", 250)
        c.cmd("RCPT TO:<a@example.net>", 250)
        c.cmd("RCPT TO:<b@example.net>", 250)
        c.cmd("RCPT TO:<c@example.net>", 452)


def test_sigterm_idle_session_gets_421_and_exit(backend, moatd):
    """SIGTERM: an idle session gets 421 and moatd exits within drain_timeout."""
    m = moatd(backend, drain_timeout="5s")
    c = m.client(timeout=20)
    c.ehlo()
    m.signal(signal.SIGTERM)
    c.expect(421, timeout=20)
    assert c.wait_closed(10)
    c.close()
    assert m.wait_exit(20) is not None, "moatd still running after drain_timeout"


def test_sigterm_stops_accepting(backend, moatd):
    """After SIGTERM no new session is served (refused or 421)."""
    m = moatd(backend, drain_timeout="10s")
    busy = m.client(timeout=20)
    busy.ehlo()
    busy.cmd(f"MAIL FROM:<{FROM}>", 250)
    m.signal(signal.SIGTERM)

    def not_served():
        try:
            c = m.client(timeout=5)
        except (OSError, PeerClosed):
            return True
        try:
            return c.banner.code == 421
        finally:
            c.close()
    wait_until(not_served, timeout=10, interval=0.2, what="new connections turned away")
    busy.close()
    assert m.wait_exit(20) is not None


def test_sigterm_during_transaction(backend, moatd):
    """SIGTERM mid-DATA: the transaction may finish; a 250 only if the backend delivered."""
    m = moatd(backend, drain_timeout="10s")
    c = m.client(timeout=30)
    c.ehlo()
    c.cmd(f"MAIL FROM:<{FROM}>", 250)
    c.cmd("RCPT TO:<a@example.net>", 250)
    c.cmd("DATA", 354)
    c.send(b"Subject: drain\r\n\r\nfirst half\r\n")
    m.signal(signal.SIGTERM)
    time.sleep(0.5)   # let the signal land while the message is open
    try:
        c.send(b"second half\r\n.\r\n")
        r = c.read_reply(timeout=30)
    except OSError:
        r = None
    c.close()
    if r is not None and r.code == 250:
        assert backend.delivered_count == 1
    else:
        assert backend.delivered_count == 0
    assert r is not None and r.code == 250, f"transaction not allowed to finish: {r}"
    assert m.wait_exit(20) is not None
