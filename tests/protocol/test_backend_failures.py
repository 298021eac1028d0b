"""A backend that is down, slow or rude costs the sender a 4xx, never a lost
message: moat never answers 2xx to end of data unless the backend did."""

import pytest

from backend import free_port
from helpers import make_message

FROM = "sender@example.org"
TO = "rcpt@example.net"


def to_data(c):
    c.ehlo()
    c.cmd(f"MAIL FROM:<{FROM}>", 250)
    c.cmd(f"RCPT TO:<{TO}>", 250)
    c.cmd("DATA", 354)


def test_backend_down_mail_tempfails(moatd):
    """With nothing listening at the backend, moat still serves and MAIL gets 451 4.4.1."""
    port = free_port()
    m = moatd(port)
    with m.client() as c:
        # moat never saw the backend's capabilities: enhanced codes only if offered.
        enh = "4.4.1" if "ENHANCEDSTATUSCODES" in c.ehlo().keywords else None
        c.cmd(f"MAIL FROM:<{FROM}>", 451, enh)
        c.cmd("NOOP", 250)
        c.cmd(f"MAIL FROM:<{FROM}>", 451, enh)
        c.quit()
    assert str(port) in m.log_text(), "no warning naming the unreachable backend"


def test_backend_goes_down_after_start(make_backend, moatd):
    """A backend that was up at start and then stops gives 451 4.4.1 at MAIL."""
    b = make_backend()
    m = moatd(b)
    b.stop()
    with m.client() as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{FROM}>", 451, "4.4.1")


def test_session_usable_after_backend_failure(moatd, make_backend):
    """After a 451 for a broken backend reply, the same client session delivers on its next MAIL."""
    b = make_backend(mail_reply=["HELLO WORLD"])
    m = moatd(b)
    with m.client() as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{FROM}>", 451, "4.4.0")
        c.cmd("RSET", 250)
        r = c.transaction(FROM, [TO], make_message())
        assert r.code == 250, r
    assert b.wait_delivered(1)


def test_backend_421_banner(make_backend, moatd):
    """A backend greeting with 421 gives the client 451 at MAIL; the session stays open."""
    b = make_backend()
    m = moatd(b)
    b.config.banner = "421 4.3.2 Service shutting down"
    with m.client() as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{FROM}>", 451)
        c.cmd("NOOP", 250)
    assert b.count_verb("MAIL") == 0


def test_backend_closes_after_banner(make_backend, moatd):
    """A backend that hangs up after its banner gives a 4xx at MAIL."""
    b = make_backend()
    m = moatd(b)
    b.config.close_after_banner = True
    with m.client() as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{FROM}>", "4")
        c.cmd("NOOP", 250)


def test_backend_silent_banner_times_out(make_backend, moatd):
    """A backend that never greets gives 451 4.4.2 after backend_timeout."""
    b = make_backend()
    m = moatd(b, backend_timeout="2s")
    b.config.hang_at.add("BANNER")
    with m.client(timeout=30) as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{FROM}>", 451, "4.4.2")
        c.cmd("NOOP", 250)


@pytest.mark.parametrize("reply", [
    "550 5.7.1 <sender@example.org>: Sender address rejected: blocked",
    "451 4.3.0 Try again later",
], ids=["5xx", "4xx"])
def test_backend_mail_refusal_relayed(make_backend, moatd, reply):
    """The backend's 5xx or 4xx to MAIL reaches the client verbatim."""
    b = make_backend(mail_reply=reply)
    m = moatd(b)
    with m.client() as c:
        c.ehlo()
        r = c.cmd(f"MAIL FROM:<{FROM}>", int(reply[:3]), reply[4:9])
        assert r.lines == [reply]


def test_backend_421_at_mail_then_new_session(make_backend, moatd):
    """A backend 421 to MAIL reaches the client as 451; the next MAIL opens a new backend session."""
    b = make_backend(mail_reply=["421 4.3.2 Too busy"])
    m = moatd(b)
    with m.client() as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{FROM}>", 451)
        c.cmd("RSET", 250)
        assert c.transaction(FROM, [TO], make_message()).code == 250
    b.wait_delivered(1)
    assert len(b.mail_connections()) == 2


def test_backend_garbage_at_mail(make_backend, moatd):
    """A non-SMTP reply to MAIL gives 451 4.4.0 and the garbage is not relayed."""
    b = make_backend(mail_reply="HELLO WORLD")
    m = moatd(b)
    with m.client() as c:
        c.ehlo()
        r = c.cmd(f"MAIL FROM:<{FROM}>", 451, "4.4.0")
        assert "HELLO" not in r.text


def test_backend_garbage_at_rcpt(make_backend, moatd):
    """A non-SMTP reply to RCPT gives a 4xx, not the garbage."""
    b = make_backend(rcpt_reply="HELLO WORLD")
    m = moatd(b)
    with m.client() as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{FROM}>", 250)
        r = c.cmd(f"RCPT TO:<{TO}>", "4")
        assert "HELLO" not in r.text


def test_backend_closes_after_mail(make_backend, moatd):
    """A backend that disappears after MAIL gives a 4xx at RCPT and no delivery."""
    b = make_backend(close_at={"RCPT"})
    m = moatd(b)
    with m.client() as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{FROM}>", 250)
        c.cmd(f"RCPT TO:<{TO}>", "4")
        c.cmd("NOOP", 250)
    assert b.delivered_count == 0


def test_backend_refuses_data(make_backend, moatd):
    """The backend's 554 to DATA (instead of 354) reaches the client after its dot."""
    b = make_backend(data_reply="554 5.7.1 No DATA for you")
    m = moatd(b)
    with m.client() as c:
        to_data(c)
        c.send_message(make_message())
        r = c.expect(554, "5.7.1")
        assert r.lines == ["554 5.7.1 No DATA for you"]
        c.cmd("NOOP", 250)
    assert b.delivered_count == 0


def test_backend_tempfails_data(make_backend, moatd):
    """The backend's 451 to DATA reaches the client after its dot."""
    b = make_backend(data_reply="451 4.3.0 Queue full")
    m = moatd(b)
    with m.client() as c:
        to_data(c)
        c.send_message(make_message())
        c.expect(451, "4.3.0")
    assert b.delivered_count == 0


@pytest.mark.parametrize("reply", ["554 5.7.1 Content rejected", "452 4.3.1 Insufficient system storage"])
def test_backend_eod_refusal_relayed(make_backend, moatd, reply):
    """The backend's 5xx/4xx to the final dot reaches the client verbatim."""
    b = make_backend(eod_reply=reply)
    m = moatd(b)
    with m.client() as c:
        to_data(c)
        c.send_message(make_message())
        r = c.read_reply()
        assert r.lines == [reply]
        c.cmd("NOOP", 250)
    assert b.delivered_count == 0


def test_backend_multiline_eod_reply_relayed(make_backend, moatd):
    """A multi-line backend reply to the dot is relayed line for line."""
    b = make_backend(eod_reply="250-2.0.0 Ok\n250 2.0.0 queued as ABC123")
    m = moatd(b)
    with m.client() as c:
        to_data(c)
        c.send_message(make_message())
        r = c.expect(250)
        assert r.lines == ["250-2.0.0 Ok", "250 2.0.0 queued as ABC123"]


def test_backend_hangs_after_dot(make_backend, moatd):
    """A backend that never answers the dot gives 451 4.4.2 after backend_timeout; nothing counted delivered."""
    b = make_backend(hang_at={"EOD"})
    m = moatd(b, backend_timeout="2s")
    with m.client(timeout=30) as c:
        to_data(c)
        c.send_message(make_message())
        c.expect(451, "4.4.2", timeout=30)
        c.cmd("NOOP", 250)
    b.wait_data(1)
    assert b.delivered_count == 0


def test_backend_hangs_at_data(make_backend, moatd):
    """A backend that never answers DATA gives 451 4.4.2 after backend_timeout."""
    b = make_backend(hang_at={"DATA"})
    m = moatd(b, backend_timeout="2s")
    with m.client(timeout=30) as c:
        to_data(c)
        c.send_message(make_message())
        c.expect(451, "4.4.2", timeout=30)
    assert b.delivered_count == 0


def test_backend_closes_mid_data(make_backend, moatd):
    """A backend that closes while receiving the message gives 451 4.4.2."""
    b = make_backend(close_at={"MIDDATA"})
    m = moatd(b)
    with m.client(timeout=30) as c:
        to_data(c)
        c.send_message(make_message(b"x" * 100000 + b"\r\n"))
        c.expect(451, "4.4.2", timeout=30)
    assert b.delivered_count == 0


def test_backend_garbage_at_eod(make_backend, moatd):
    """A garbage reply to the dot gives 451 4.4.0, never the garbage or a 2xx."""
    b = make_backend(garbage_eod=True)
    m = moatd(b)
    with m.client() as c:
        to_data(c)
        c.send_message(make_message())
        r = c.expect(451, "4.4.0")
        assert "HELLO" not in r.text


def test_backend_421_at_eod(make_backend, moatd):
    """A backend 421 to the dot reaches the client as 451."""
    b = make_backend(eod_reply="421 4.3.2 Shutting down")
    m = moatd(b)
    with m.client() as c:
        to_data(c)
        c.send_message(make_message())
        c.expect(451)
        c.cmd("NOOP", 250)


def test_backend_slow_but_within_timeout(make_backend, moatd):
    """A backend that takes 3 s to answer the dot (timeout 10 s) still delivers."""
    b = make_backend(delays={"EOD": 3})
    m = moatd(b, backend_timeout="10s")
    with m.client(timeout=30) as c:
        to_data(c)
        c.send_message(make_message())
        c.expect(250, timeout=30)
    assert b.delivered_count == 1


def test_backend_slower_than_timeout(make_backend, moatd):
    """A backend answering the dot after backend_timeout: the client gets 451 4.4.2, not its late 250."""
    b = make_backend(delays={"EOD": 6})
    m = moatd(b, backend_timeout="2s")
    with m.client(timeout=30) as c:
        to_data(c)
        c.send_message(make_message())
        c.expect(451, "4.4.2", timeout=30)
        c.cmd("NOOP", 250)


def test_next_message_after_backend_hang_uses_new_session(make_backend, moatd):
    """After a backend timeout mid-DATA, the next message in the session is delivered."""
    b = make_backend(hang_at={"EOD"})
    m = moatd(b, backend_timeout="2s")
    with m.client(timeout=30) as c:
        to_data(c)
        c.send_message(make_message(b"first\r\n"))
        c.expect(451, "4.4.2", timeout=30)
        b.config.hang_at.clear()
        r = c.transaction(FROM, [TO], make_message(b"second\r\n"))
        assert r.code == 250, r
    t = b.wait_delivered(1)[0]
    assert t.message.endswith(b"second\r\n")
    assert b.delivered_count == 1
