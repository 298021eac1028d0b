"""PIPELINING (RFC 2920): commands sent in one write get their replies in order."""

import socket

from helpers import assert_reply, make_message, strip_moat_headers, dot_stuff

FROM = "sender@example.org"


def read_n(c, n):
    return [c.read_reply() for _ in range(n)]


def test_mail_rcpt_data_in_one_write(backend, moatd):
    """MAIL, RCPT, RCPT, DATA in one write get 250, 250, 250, 354 in order."""
    m = moatd(backend)
    with m.client() as c:
        c.ehlo()
        c.send(f"MAIL FROM:<{FROM}>\r\nRCPT TO:<a@example.net>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n")
        codes = [r.code for r in read_n(c, 4)]
        assert codes == [250, 250, 250, 354]
        msg = make_message()
        c.send_message(msg)
        c.expect(250)
    t = backend.wait_delivered(1)[0]
    assert t.rcpt_addrs == ["a@example.net", "b@example.net"]
    assert strip_moat_headers(t.message) == msg


def test_message_and_quit_in_one_write(backend, moatd):
    """A QUIT pipelined after the final dot is answered after the end-of-data reply."""
    m = moatd(backend)
    msg = make_message()
    c = m.client()
    c.ehlo()
    c.send(f"MAIL FROM:<{FROM}>\r\nRCPT TO:<a@example.net>\r\nDATA\r\n")
    assert [r.code for r in read_n(c, 3)] == [250, 250, 354]
    c.send(dot_stuff(msg) + b".\r\nQUIT\r\n")
    r1, r2 = read_n(c, 2)
    assert_reply(r1, 250)
    assert_reply(r2, 221)
    assert c.wait_closed(10)
    c.close()
    backend.wait_delivered(1)


def test_second_transaction_pipelined_after_dot(backend, moatd):
    """RSET, MAIL, RCPT, DATA pipelined after the dot are processed after its reply."""
    m = moatd(backend)
    msg1, msg2 = make_message(b"one\r\n"), make_message(b"two\r\n")
    with m.client() as c:
        c.ehlo()
        c.send(f"MAIL FROM:<{FROM}>\r\nRCPT TO:<a@example.net>\r\nDATA\r\n")
        assert [r.code for r in read_n(c, 3)] == [250, 250, 354]
        c.send(dot_stuff(msg1) + b".\r\nRSET\r\nMAIL FROM:<x@example.org>\r\n"
               b"RCPT TO:<b@example.net>\r\nDATA\r\n")
        assert [r.code for r in read_n(c, 5)] == [250, 250, 250, 250, 354]
        c.send_message(msg2)
        c.expect(250)
    ts = backend.wait_delivered(2)
    assert [strip_moat_headers(t.message) for t in ts] == [msg1, msg2]
    assert ts[1].mail_addr == "x@example.org" and ts[1].rcpt_addrs == ["b@example.net"]


def test_pipelined_rcpt_rejection_in_the_middle(make_backend, moatd):
    """A refused RCPT inside a pipelined group gets its 550 in its place."""
    b = make_backend(reject_rcpts={"bad@example.net"})
    m = moatd(b)
    with m.client() as c:
        c.ehlo()
        c.send(f"MAIL FROM:<{FROM}>\r\nRCPT TO:<a@example.net>\r\nRCPT TO:<bad@example.net>\r\n"
               "RCPT TO:<c@example.net>\r\nDATA\r\n")
        replies = read_n(c, 5)
        assert [r.code for r in replies] == [250, 250, 550, 250, 354]
        assert replies[2].enhanced == "5.1.1"
        c.send_message(make_message())
        c.expect(250)
    assert b.wait_delivered(1)[0].accepted_rcpts == ["a@example.net", "c@example.net"]


def test_pipelined_all_rcpts_refused(make_backend, moatd):
    """When every pipelined RCPT is refused, the pipelined DATA gets 554 and the session stays in sync."""
    b = make_backend(reject_rcpts={"bad@example.net"})
    m = moatd(b)
    with m.client() as c:
        c.ehlo()
        c.send(f"MAIL FROM:<{FROM}>\r\nRCPT TO:<bad@example.net>\r\nDATA\r\nNOOP\r\n")
        assert [r.code for r in read_n(c, 4)] == [250, 550, 554, 250]
    assert b.count_verb("DATA") == 0


def test_pipelined_mail_refused(make_backend, moatd):
    """After a refused pipelined MAIL, the RCPT and DATA behind it get 503."""
    b = make_backend(mail_reply="550 5.7.1 sender blocked")
    m = moatd(b)
    with m.client() as c:
        c.ehlo()
        c.send(f"MAIL FROM:<{FROM}>\r\nRCPT TO:<a@example.net>\r\nDATA\r\nNOOP\r\n")
        replies = read_n(c, 4)
        assert [r.code for r in replies] == [550, 503, 503, 250]
        assert replies[0].lines == ["550 5.7.1 sender blocked"]
    assert b.count_verb("RCPT") == 0


def test_many_noops_in_one_write(backend, moatd):
    """Fifty NOOPs in one write get fifty 250 replies."""
    m = moatd(backend)
    with m.client() as c:
        c.ehlo()
        c.send(b"NOOP\r\n" * 50 + b"HELP\r\n")
        replies = read_n(c, 51)
        assert [r.code for r in replies] == [250] * 50 + [214]


def test_commands_split_across_writes(backend, moatd):
    """Commands sent one byte at a time are assembled and answered correctly."""
    m = moatd(backend)
    with m.client() as c:
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        wire = f"EHLO split.example\r\nMAIL FROM:<{FROM}>\r\nRCPT TO:<a@example.net>\r\nDATA\r\n".encode()
        for i in range(len(wire)):
            c.send(wire[i:i + 1])
        assert [r.code for r in read_n(c, 4)] == [250, 250, 250, 354]
        c.send_message(make_message())
        c.expect(250)
    backend.wait_delivered(1)


def test_hundred_recipients_pipelined(backend, moatd):
    """One hundred pipelined RCPTs (the RFC 5321 minimum) all get relayed and answered."""
    m = moatd(backend)
    rcpts = [f"user{i}@example.net" for i in range(100)]
    with m.client() as c:
        c.ehlo()
        c.send(f"MAIL FROM:<{FROM}>\r\n" + "".join(f"RCPT TO:<{r}>\r\n" for r in rcpts) + "DATA\r\n")
        assert [r.code for r in read_n(c, 102)] == [250] * 101 + [354]
        c.send_message(make_message())
        c.expect(250)
    assert backend.wait_delivered(1)[0].rcpt_addrs == rcpts


def test_nothing_after_quit(backend, moatd):
    """Commands pipelined after QUIT are not answered; the connection closes."""
    m = moatd(backend)
    c = m.client()
    c.ehlo()
    c.send(b"QUIT\r\nNOOP\r\nNOOP\r\n")
    c.expect(221)
    assert c.wait_closed(10)
    assert bytes(c.buf) == b"", f"replies after QUIT: {bytes(c.buf)!r}"
    c.close()


def test_swaks_pipeline_with_refused_recipient(make_backend, moatd, swaks):
    """swaks --pipeline with one refused recipient still delivers to the other."""
    b = make_backend(reject_rcpts={"bad@example.net"})
    m = moatd(b)
    r = swaks(m, "--to", "good@example.net,bad@example.net", "--from", FROM, "--pipeline")
    assert "550 5.1.1" in r.stdout, r.stdout
    t = b.wait_delivered(1)[0]
    assert t.accepted_rcpts == ["good@example.net"]
