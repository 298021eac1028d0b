"""Limits and timeouts: line length, bad commands, recipients, size,
connections per IP, idle clients."""

import time

from helpers import make_message

FROM = "sender@example.org"
TO = "rcpt@example.net"


def pad_line(verb, total):
    """A command line of exactly `total` bytes including CRLF."""
    return verb.encode() + b" " + b"x" * (total - len(verb) - 3) + b"\r\n"


def test_line_of_2048_bytes_is_a_command(backend, moatd):
    """A 2048-byte line (CRLF included) is parsed as a command (unknown: 502)."""
    m = moatd(backend)
    with m.client() as c:
        c.ehlo()
        line = pad_line("XYZZY", 2048)
        assert len(line) == 2048
        c.send(line)
        c.expect(502, "5.5.2")
        c.cmd("NOOP", 250)


def test_line_of_2049_bytes_is_too_long(backend, moatd):
    """A 2049-byte line gets 500 5.5.2 and the session continues."""
    m = moatd(backend)
    with m.client() as c:
        c.ehlo()
        c.send(pad_line("XYZZY", 2049))
        c.expect(500, "5.5.2")
        c.cmd("NOOP", 250)


def test_one_megabyte_line(backend, moatd):
    """A 1 MB command line gets one 500 5.5.2, no crash, and the session continues."""
    m = moatd(backend)
    with m.client(timeout=30) as c:
        c.ehlo()
        c.send(b"MAIL FROM:<" + b"a" * (1024 * 1024) + b"@example.org>\r\n")
        c.expect(500, "5.5.2", timeout=30)
        c.cmd("NOOP", 250)
        assert c.transaction(FROM, [TO], make_message()).code == 250
    assert m.alive()
    assert backend.count_verb("MAIL") == 1


def test_long_line_does_not_smuggle_a_command(backend, moatd):
    """The tail of an over-long line is never executed as a command."""
    m = moatd(backend)
    with m.client() as c:
        c.ehlo()
        c.send(b"NOOP " + b"y" * 3000 + b" QUIT\r\nNOOP\r\n")
        c.expect(500, "5.5.2")
        c.expect(250)


def test_too_many_bad_commands(backend, moatd):
    """After max_bad_commands errors the client gets 421 4.7.0 and is disconnected."""
    m = moatd(backend, max_bad_commands="3")
    c = m.client()
    c.ehlo()
    codes = []
    for _ in range(5):
        try:
            r = c.cmd("BOGUS")
        except Exception:
            break
        codes.append(r.code)
        if r.code == 421:
            assert r.enhanced == "4.7.0", r
            break
    assert codes[:2] == [502, 502], codes
    assert 421 in codes and len(codes) <= 4, codes
    assert c.wait_closed(10)
    c.close()


def test_default_bad_command_limit(backend, moatd):
    """The default limit (20) lets 19 errors pass and disconnects by the 21st."""
    m = moatd(backend)
    c = m.client()
    c.ehlo()
    codes = []
    for _ in range(22):
        try:
            codes.append(c.cmd("BOGUS").code)
        except Exception:
            break
        if codes[-1] == 421:
            break
    assert codes[:19] == [502] * 19, codes
    assert codes[-1] == 421 and len(codes) in (20, 21), codes
    assert c.wait_closed(10)
    c.close()


def test_long_lines_count_as_bad_commands(backend, moatd):
    """Over-long lines count toward max_bad_commands."""
    m = moatd(backend, max_bad_commands="2")
    c = m.client()
    c.ehlo()
    codes = []
    for _ in range(4):
        c.send(pad_line("NOOP", 4000))
        try:
            codes.append(c.read_reply().code)
        except Exception:
            break
        if codes[-1] == 421:
            break
    assert codes[0] == 500 and 421 in codes, codes
    assert c.wait_closed(10)
    c.close()


def test_command_timeout(backend, moatd):
    """An idle client gets 421 4.4.2 after command_timeout and is disconnected."""
    m = moatd(backend, command_timeout="2s")
    c = m.client(timeout=30)
    c.ehlo()
    c.expect(421, "4.4.2", timeout=30)
    assert c.wait_closed(10)
    c.close()


def test_command_timeout_before_ehlo(backend, moatd):
    """A client that never says anything gets 421 after command_timeout."""
    m = moatd(backend, command_timeout="2s")
    c = m.client(timeout=30)
    c.expect(421, timeout=30)
    assert c.wait_closed(10)
    c.close()


def test_data_timeout(backend, moatd):
    """A client stalling inside DATA gets 421 4.4.2 after data_timeout; nothing is delivered."""
    m = moatd(backend, data_timeout="2s")
    c = m.client(timeout=30)
    c.ehlo()
    c.cmd(f"MAIL FROM:<{FROM}>", 250)
    c.cmd(f"RCPT TO:<{TO}>", 250)
    c.cmd("DATA", 354)
    c.send(b"Subject: stalled\r\n\r\npartial")
    c.expect(421, "4.4.2", timeout=30)
    assert c.wait_closed(10)
    c.close()
    assert backend.delivered_count == 0
    assert backend.count_verb("DATA") == 0


def test_max_recipients(backend, moatd):
    """With max_recipients=3 the fourth RCPT gets 452 4.5.3 and is not relayed."""
    m = moatd(backend, max_recipients="3")
    with m.client() as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{FROM}>", 250)
        for i in range(3):
            c.cmd(f"RCPT TO:<r{i}@example.net>", 250)
        c.cmd("RCPT TO:<r3@example.net>", 452, "4.5.3")
        c.cmd("DATA", 354)
        c.send_message(make_message())
        c.expect(250)
    t = backend.wait_delivered(1)[0]
    assert t.rcpt_addrs == ["r0@example.net", "r1@example.net", "r2@example.net"]


def test_max_recipients_counts_accepted_only(make_backend, moatd):
    """Refused recipients do not count toward max_recipients."""
    b = make_backend(reject_rcpts={"bad@example.net"})
    m = moatd(b, max_recipients="2")
    with m.client() as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{FROM}>", 250)
        c.cmd("RCPT TO:<bad@example.net>", 550)
        c.cmd("RCPT TO:<a@example.net>", 250)
        c.cmd("RCPT TO:<b@example.net>", 250)
        c.cmd("RCPT TO:<c@example.net>", 452, "4.5.3")


def test_max_recipients_per_transaction(backend, moatd):
    """The recipient count starts again with each transaction."""
    m = moatd(backend, max_recipients="2")
    with m.client() as c:
        c.ehlo()
        for n in range(2):
            assert c.transaction(FROM, ["a@example.net", "b@example.net"], make_message()).code == 250
    assert backend.wait_delivered(2)


def test_declared_size_too_big(backend, moatd):
    """MAIL with SIZE= over max_message_size gets 552 5.3.4; under it, 250."""
    m = moatd(backend, max_message_size="10000")
    with m.client() as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{FROM}> SIZE=10001", 552, "5.3.4")
        c.cmd(f"MAIL FROM:<{FROM}> SIZE=9000", 250)
    assert backend.count_verb("MAIL") == 1


def test_undeclared_oversize_message(backend, moatd):
    """An over-size message without SIZE= gets 552 5.3.4 after the dot; nothing reaches the backend."""
    m = moatd(backend, max_message_size="10000")
    with m.client() as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{FROM}>", 250)
        c.cmd(f"RCPT TO:<{TO}>", 250)
        c.cmd("DATA", 354)
        c.send_message(make_message((b"y" * 98 + b"\r\n") * 300))
        c.expect(552, "5.3.4")
        c.cmd("NOOP", 250)
        r = c.transaction(FROM, [TO], make_message(b"small\r\n"))
        assert r.code == 250
    ts = backend.wait_delivered(1)
    assert len(ts) == 1 and ts[0].message.endswith(b"small\r\n")
    assert backend.count_verb("DATA") == 1


def test_message_under_size_limit(backend, moatd):
    """A message well under max_message_size is delivered."""
    m = moatd(backend, max_message_size="10000")
    with m.client() as c:
        c.ehlo()
        assert c.transaction(FROM, [TO], make_message(b"q" * 5000 + b"\r\n")).code == 250


def open_greeted(m, n, deadline=5.0):
    """Open n connections that each got 220 (retrying briefly while a closed
    one may still be counted)."""
    conns = []
    for _ in range(n):
        end = time.monotonic() + deadline
        while True:
            c = m.client()
            if c.banner.code == 220:
                conns.append(c)
                break
            c.close()
            assert time.monotonic() < end, "could not open a greeted connection"
            time.sleep(0.2)
    return conns


def test_max_connections_per_ip(backend, moatd):
    """The third concurrent connection from one IP (limit 2) gets 421 and is closed."""
    m = moatd(backend, max_connections_per_ip="2")
    conns = open_greeted(m, 2)
    third = m.client()
    # In place of the greeting: no enhanced code there (RFC 2034 section 3).
    assert third.banner.code == 421 and third.banner.enhanced is None, third.banner
    assert "too many connections" in " ".join(third.banner.lines)
    assert third.wait_closed(10)
    third.close()
    for c in conns:
        c.cmd("NOOP", 250)
    conns[0].quit()
    # A slot is free again once moat has seen the close.
    conns += open_greeted(m, 1)
    for c in conns:
        c.close()


def test_connlimit_monitor_mode(backend, moatd):
    """connlimit_mode=monitor: connections over the limit are still served."""
    m = moatd(backend, max_connections_per_ip="1", connlimit_mode="monitor")
    conns = [m.client() for _ in range(3)]
    for c in conns:
        assert c.banner.code == 220, c.banner
        c.cmd("NOOP", 250)
        c.close()


def test_connlimit_off_mode(backend, moatd):
    """connlimit_mode=off: connections over the limit are served."""
    m = moatd(backend, max_connections_per_ip="1", connlimit_mode="off")
    conns = [m.client() for _ in range(3)]
    for c in conns:
        assert c.banner.code == 220, c.banner
        c.close()


def test_per_ip_limit_zero_disables(backend, moatd):
    """max_connections_per_ip=0 disables the per-IP limit."""
    m = moatd(backend, max_connections_per_ip="0")
    conns = [m.client() for _ in range(8)]
    for c in conns:
        assert c.banner.code == 220, c.banner
        c.close()


def test_max_connections_total(backend, moatd):
    """Over max_connections in all, a new connection gets 421."""
    m = moatd(backend, max_connections="2", max_connections_per_ip="0")
    conns = open_greeted(m, 2)
    third = m.client()
    assert third.banner.code == 421, third.banner
    assert third.wait_closed(10)
    for c in conns + [third]:
        c.close()
