"""Self-checks of the scripted backend, driven directly (no moatd): the rest
of the suite trusts what it records, so these prove that it records right."""

import smtplib

import pytest

from backend import DEFAULT_CAPS, XFORWARD_CAP, dot_stuff, unstuff
from helpers import SMTPClient, make_message


def raw(b):
    return SMTPClient(b.host, b.port, timeout=5)


def test_ehlo_offers_configured_caps(make_backend):
    """EHLO lists exactly the configured capabilities."""
    b = make_backend(caps=["PIPELINING", XFORWARD_CAP])
    with raw(b) as c:
        r = c.ehlo("x.test")
        assert r.keywords == ["PIPELINING", "XFORWARD"]
    b2 = make_backend()
    with raw(b2) as c:
        assert len(c.ehlo().lines) == 1 + len(DEFAULT_CAPS)


def test_smtplib_delivery_recorded(backend):
    """A message sent with smtplib is recorded unstuffed, raw and counted delivered."""
    msg = make_message(b".leading dot\r\n..two\r\n.\r\nend\r\n")
    with smtplib.SMTP(backend.host, backend.port, timeout=5) as s:
        s.sendmail("a@example.org", ["b@example.net", "c@example.net"], msg)
    t = backend.wait_delivered(1)[0]
    assert t.message == msg
    assert t.data_raw == dot_stuff(msg)
    assert t.rcpt_addrs == ["b@example.net", "c@example.net"]
    assert t.mail_addr == "a@example.org"
    assert t.queue_id and t.queue_id.startswith("TESTQ")
    assert backend.delivered_count == 1


def test_reject_and_tempfail_rcpts(make_backend):
    """Configured recipients get 550 5.1.1 / 450 4.2.0; DATA then needs one good one."""
    b = make_backend(reject_rcpts={"no@x.test"}, tempfail_rcpts={"later@x.test"})
    with raw(b) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<a@x.test>", 250)
        c.cmd("RCPT TO:<no@x.test>", 550, "5.1.1")
        c.cmd("RCPT TO:<later@x.test>", 450, "4.2.0")
        c.cmd("DATA", 554)
        c.cmd("RCPT TO:<yes@x.test>", 250)
        c.cmd("DATA", 354)
        c.send_message(b"x\r\n")
        c.expect(250)
    assert b.transactions()[0].accepted_rcpts == ["yes@x.test"]


def test_xclient_requires_ehlo_again(backend):
    """After XCLIENT (220) MAIL without a new EHLO is refused, as with Postfix."""
    with raw(backend) as c:
        c.ehlo()
        c.cmd("XCLIENT ADDR=192.0.2.1 NAME=[UNAVAILABLE]", 220)
        c.cmd("MAIL FROM:<a@x.test>", 503)
        c.ehlo()
        c.cmd("MAIL FROM:<a@x.test>", 250)
    assert backend.xclient_lines() == ["XCLIENT ADDR=192.0.2.1 NAME=[UNAVAILABLE]"]


def test_xforward_when_offered(make_backend):
    """XFORWARD gets 250 when offered and 550 when not."""
    b = make_backend(caps=["PIPELINING", XFORWARD_CAP])
    with raw(b) as c:
        c.ehlo()
        c.cmd("XFORWARD ADDR=192.0.2.1", 250)
        c.cmd("XCLIENT ADDR=192.0.2.1", 550)


def test_hang_after_354_then_peer_close_recorded(make_backend):
    """hang_at EOD never answers the dot; the client's close is noticed."""
    b = make_backend(hang_at={"EOD"})
    c = raw(b)
    c.ehlo()
    c.cmd("MAIL FROM:<a@x.test>", 250)
    c.cmd("RCPT TO:<b@x.test>", 250)
    c.cmd("DATA", 354)
    c.send_message(b"hi\r\n")
    with pytest.raises(OSError):
        c.read_reply(timeout=1.0)
    c.close()
    conn = b.connections()[0]
    assert conn.closed.wait(5)
    assert conn.closed_by == "peer"
    assert b.delivered_count == 0
    assert b.transactions()[0].message == b"hi\r\n"


def test_garbage_and_421_banner(make_backend):
    """garbage_eod answers HELLO WORLD; a 421 banner closes the connection."""
    b = make_backend(garbage_eod=True)
    with raw(b) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<a@x.test>", 250)
        c.cmd("RCPT TO:<b@x.test>", 250)
        c.cmd("DATA", 354)
        c.send_message(b"hi\r\n")
        assert c.read_line() == b"HELLO WORLD\r\n"
    assert b.delivered_count == 0
    b2 = make_backend(banner="421 4.3.2 go away")
    c = SMTPClient(b2.host, b2.port, timeout=5, read_banner=False)
    assert c.read_reply().code == 421
    assert c.wait_closed(5)


def test_close_after_banner_and_middata(make_backend):
    """close_after_banner and close_at MIDDATA drop the connection."""
    b = make_backend(close_after_banner=True)
    c = raw(b)
    assert c.wait_closed(5)
    b2 = make_backend(close_at={"MIDDATA"})
    with raw(b2) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<a@x.test>", 250)
        c.cmd("RCPT TO:<b@x.test>", 250)
        c.cmd("DATA", 354)
        c.send(b"partial line\r\n")
        assert c.wait_closed(5)


def test_lenient_backend_ends_data_at_bare_lf_dot(make_backend):
    """lenient_eod behaves like a vulnerable server: LF.LF ends data, the rest is commands."""
    b = make_backend(lenient_eod=True)
    with raw(b) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<a@x.test>", 250)
        c.cmd("RCPT TO:<b@x.test>", 250)
        c.cmd("DATA", 354)
        c.send(b"hi\n.\nNOOP\r\n")
        c.expect(250)
        c.expect(250)
    assert b.count_verb("NOOP") == 1


def test_strict_backend_keeps_bare_lf_dot_as_content(backend):
    """The default backend ends data only at CRLF.CRLF."""
    with raw(backend) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<a@x.test>", 250)
        c.cmd("RCPT TO:<b@x.test>", 250)
        c.cmd("DATA", 354)
        c.send(b"hi\n.\nNOOP\r\n.\r\n")
        c.expect(250)
    assert backend.count_verb("NOOP") == 0
    assert backend.transactions()[0].data_raw == b"hi\n.\nNOOP\r\n"


def test_reply_override_list_and_delay(make_backend):
    """A list override is used once then the default comes back; delays apply."""
    b = make_backend(mail_reply=["421 4.3.2 busy"], delays={"RCPT": 0.2})
    with raw(b) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<a@x.test>", 421)
        assert c.wait_closed(5)
    with raw(b) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<a@x.test>", 250)
        c.cmd("RCPT TO:<b@x.test>", 250)


def test_unstuff_roundtrip():
    """dot_stuff and unstuff are inverse on CRLF text."""
    for m in [b"", b".\r\n", b"..\r\n", b"a\r\n.b\r\n..c\r\n", b"\r\n.\r\n"]:
        assert unstuff(dot_stuff(m)) == m
    assert dot_stuff(b".\r\n.x\r\n") == b"..\r\n..x\r\n"
