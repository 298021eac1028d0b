"""Delivery byte for byte: what the client sent is what the backend gets."""

import hashlib
import smtplib
import socket
import threading

import pytest

from backend import dot_stuff, free_port
from helpers import assert_crlf_only, make_message, strip_moat_headers

FROM = "sender@example.org"
TO = "rcpt@example.net"


def deliver_raw(m, msg, mail_params="", rcpts=(TO,), mail_from=FROM):
    with m.client() as c:
        c.ehlo()
        r = c.transaction(mail_from, list(rcpts), msg, mail_params)
        assert r.code == 250, r
        c.quit()
    return r


def check_exact(backend, msg, n=1):
    """The n-th delivered message equals msg and was sent correctly stuffed with CRLF only."""
    t = backend.wait_delivered(n, timeout=30)[n - 1]
    got = strip_moat_headers(t.message)
    assert len(got) == len(msg), f"length {len(got)} != {len(msg)}"
    assert got == msg
    assert_crlf_only(t.data_raw)
    assert t.data_raw.endswith(dot_stuff(msg))
    return t


def test_plain_text_raw_client(backend, moatd):
    """A plain message over a raw socket arrives unchanged."""
    m = moatd(backend)
    msg = make_message(b"Hello world.\r\nSecond line.\r\n")
    r = deliver_raw(m, msg)
    t = check_exact(backend, msg)
    assert t.mail_addr == FROM and t.rcpt_addrs == [TO]
    assert t.queue_id in r.text, "the backend's queue id reaches the client"


def test_plain_text_smtplib(backend, moatd):
    """smtplib.sendmail delivers a message unchanged to two recipients."""
    m = moatd(backend)
    msg = make_message(b"Sent by smtplib.\r\n")
    with smtplib.SMTP(m.host, m.port, timeout=10) as s:
        refused = s.sendmail(FROM, [TO, "other@example.net"], msg)
        assert refused == {}
    t = check_exact(backend, msg)
    assert t.rcpt_addrs == [TO, "other@example.net"]


def test_swaks_delivery(backend, moatd, swaks, tmp_path):
    """swaks (with --pipeline) delivers through moat; the data arrives unchanged."""
    m = moatd(backend)
    content = b"Subject: swaks\r\nFrom: <s@example.org>\r\n\r\n.leading dot\r\nbody"
    (tmp_path / "msg.eml").write_bytes(content)
    r = swaks(m, "--to", TO, "--from", FROM, "--pipeline", "--data", f"@{tmp_path}/msg.eml")
    assert r.returncode == 0, r.stdout + r.stderr
    # swaks ends the data with CRLF "." CRLF after the file's last line.
    check_exact(backend, content + b"\r\n")


def test_swaks_default_message(backend, moatd, swaks):
    """swaks' own default message, without pipelining, is accepted and relayed."""
    m = moatd(backend)
    r = swaks(m, "--to", TO, "--from", FROM, "--ehlo", "swaks.example")
    assert r.returncode == 0, r.stdout + r.stderr
    t = backend.wait_delivered(1)[0]
    assert b"This is a test mailing" in t.message
    assert t.mail_addr == FROM


def test_8bit_body(backend, moatd):
    """An 8-bit body declared BODY=8BITMIME arrives byte for byte."""
    m = moatd(backend)
    body = "Grüße, naïve café — 日本語\r\n".encode("utf-8") + bytes(range(0x80, 0x100)) + b"\r\n"
    msg = make_message(body)
    deliver_raw(m, msg, "BODY=8BITMIME")
    t = check_exact(backend, msg)
    assert "BODY=8BITMIME" in t.mail_from.upper()


def test_smtputf8_addresses(backend, moatd):
    """SMTPUTF8 sender and recipient reach the backend as UTF-8, with the parameter."""
    m = moatd(backend)
    sender, rcpt = "用户@例子.test", "受信者@例子.test"
    msg = ("From: 用户@例子.test\r\nTo: 受信者@例子.test\r\nSubject: 测试\r\n\r\n正文\r\n").encode("utf-8")
    deliver_raw(m, msg, "SMTPUTF8", rcpts=[rcpt], mail_from=sender)
    t = check_exact(backend, msg)
    assert t.mail_addr == sender
    assert "SMTPUTF8" in t.mail_from.upper()
    assert t.rcpt_addrs == [rcpt]
    conn = backend.mail_connections()[0]
    mail_bytes = [b for b in conn.command_bytes if b.upper().startswith(b"MAIL")][0]
    assert sender.encode("utf-8") in mail_bytes


def test_dot_lines(backend, moatd):
    """Lines starting with ".", "..", and lines that are only "." or ".." survive stuffing."""
    m = moatd(backend)
    body = b".\r\n..\r\n...\r\n.leading\r\n..double\r\n . space first\r\nend.\r\n.\r\n"
    msg = make_message(body)
    deliver_raw(m, msg)
    t = check_exact(backend, msg)
    assert t.data_raw == dot_stuff(msg)


def test_message_starting_with_dot(backend, moatd):
    """A message whose very first line is "." arrives as "."."""
    m = moatd(backend)
    msg = b".\r\nSubject: odd\r\n\r\nx\r\n"
    deliver_raw(m, msg)
    t = check_exact(backend, msg)
    assert t.data_raw.startswith(b"..\r\n")


def test_empty_lines(backend, moatd):
    """Empty lines, an empty body and trailing empty lines are kept."""
    m = moatd(backend)
    msg = make_message(b"\r\n\r\nafter two empty lines\r\n\r\n\r\n")
    deliver_raw(m, msg)
    check_exact(backend, msg)


def test_headers_only(backend, moatd):
    """A message of headers and no body arrives unchanged."""
    m = moatd(backend)
    msg = b"Subject: no body\r\nFrom: <a@example.org>\r\n"
    deliver_raw(m, msg)
    check_exact(backend, msg)


def test_long_lines(backend, moatd):
    """Lines of 5000 and 20000 characters are passed through, not folded."""
    m = moatd(backend)
    msg = make_message(b"A" * 5000 + b"\r\n" + b"." + b"b" * 19999 + b"\r\nshort\r\n")
    deliver_raw(m, msg)
    check_exact(backend, msg)


def _big_message(size):
    lines = []
    total = 0
    i = 0
    while total < size:
        line = (b"." if i % 7 == 0 else b"") + (b"%08d " % i) + b"x" * 90 + b"\r\n"
        lines.append(line)
        total += len(line)
        i += 1
    return make_message(b"".join(lines))


@pytest.mark.parametrize("memory_limit", [None, "1024"])
def test_10mb_message(backend, moatd, memory_limit):
    """A 10 MB message (spilled to a temp file past message_memory_limit) arrives intact."""
    opts = {"message_memory_limit": memory_limit} if memory_limit else {}
    m = moatd(backend, **opts)
    msg = _big_message(10 * 1024 * 1024)
    with m.client(timeout=60) as c:
        c.ehlo()
        r = c.transaction(FROM, [TO], msg)
        assert r.code == 250, r
    t = backend.wait_delivered(1, timeout=60)[0]
    got = strip_moat_headers(t.message)
    assert len(got) == len(msg)
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(msg).hexdigest()
    assert t.data_raw.endswith(dot_stuff(msg))
    assert_crlf_only(t.data_raw)


def test_data_in_small_chunks(backend, moatd):
    """Data arriving a few bytes at a time, CRLF.CRLF split across writes, is framed right."""
    m = moatd(backend)
    msg = make_message(b"line one\r\n.dot\r\nline three\r\n")
    wire = dot_stuff(msg) + b".\r\n"
    with m.client() as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{FROM}>", 250)
        c.cmd(f"RCPT TO:<{TO}>", 250)
        c.cmd("DATA", 354)
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(0, len(wire), 3):
            c.send(wire[i:i + 3])
        c.expect(250)
    check_exact(backend, msg)


def test_multiple_recipients_partial_reject(make_backend, moatd):
    """With one recipient refused, the message goes to the accepted ones only."""
    b = make_backend(reject_rcpts={"bad@example.net"})
    m = moatd(b)
    msg = make_message()
    with m.client() as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{FROM}>", 250)
        c.cmd("RCPT TO:<good1@example.net>", 250)
        c.cmd("RCPT TO:<bad@example.net>", 550, "5.1.1")
        c.cmd("RCPT TO:<good2@example.net>", 250)
        c.cmd("DATA", 354)
        c.send_message(msg)
        c.expect(250)
    t = check_exact(b, msg)
    assert t.accepted_rcpts == ["good1@example.net", "good2@example.net"]


def test_null_sender(backend, moatd):
    """A bounce (MAIL FROM:<>) is relayed with the null reverse-path."""
    m = moatd(backend)
    msg = make_message(b"bounce\r\n")
    deliver_raw(m, msg, mail_from="")
    t = check_exact(backend, msg)
    assert t.mail_from.upper().startswith("MAIL FROM:<>")


def test_dsn_parameters_relayed(backend, moatd):
    """DSN parameters (RET, ENVID, NOTIFY, ORCPT) are passed to the backend."""
    m = moatd(backend)
    msg = make_message()
    with m.client() as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{FROM}> RET=HDRS ENVID=abc123", 250)
        c.cmd(f"RCPT TO:<{TO}> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;{TO}", 250)
        c.cmd("DATA", 354)
        c.send_message(msg)
        c.expect(250)
    t = check_exact(backend, msg)
    assert "RET=HDRS" in t.mail_from and "ENVID=abc123" in t.mail_from
    assert "NOTIFY=SUCCESS,FAILURE" in t.rcpts[0] and f"ORCPT=rfc822;{TO}" in t.rcpts[0]


def test_several_transactions_one_backend_session(backend, moatd):
    """Three messages in one client session use one backend connection."""
    m = moatd(backend)
    msgs = [make_message(f"message {i}\r\n".encode(), subject=f"n{i}") for i in range(3)]
    with m.client() as c:
        c.ehlo()
        for i, msg in enumerate(msgs):
            assert c.transaction(FROM, [f"r{i}@example.net"], msg).code == 250
        c.quit()
    ts = backend.wait_delivered(3)
    assert [strip_moat_headers(t.message) for t in ts] == msgs
    assert [t.rcpt_addrs for t in ts] == [["r0@example.net"], ["r1@example.net"], ["r2@example.net"]]
    assert len(backend.mail_connections()) == 1


def test_aiosmtpd_backend(moatd):
    """Delivery through moat into aiosmtpd (a third-party server) keeps envelope and content."""
    from aiosmtpd.controller import Controller

    got = []
    done = threading.Event()

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            got.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
            done.set()
            return "250 2.0.0 Ok: queued as AIOSMTPD1"

    port = free_port()
    ctl = Controller(Handler(), hostname="127.0.0.1", port=port, decode_data=False,
                     enable_SMTPUTF8=True, ready_timeout=10)
    ctl.start()
    try:
        m = moatd(port)
        msg = make_message(b".dot\r\n\xc3\xa9t\xc3\xa9\r\n")
        with m.client() as c:
            c.ehlo()
            r = c.transaction(FROM, [TO, "second@example.net"], msg, "BODY=8BITMIME")
            assert r.code == 250 and "AIOSMTPD1" in r.text, r
        assert done.wait(10)
        mail_from, rcpts, content = got[0]
        assert mail_from == FROM and rcpts == [TO, "second@example.net"]
        assert strip_moat_headers(content) == msg
    finally:
        ctl.stop()


def test_concurrent_sessions_do_not_mix(backend, moatd):
    """Eight concurrent clients, three messages each: every message reaches the backend intact with its own envelope."""
    m = moatd(backend)
    errors = []

    def client(n):
        try:
            with m.client(timeout=30) as c:
                c.ehlo(f"c{n}.example")
                for k in range(3):
                    body = (f"client {n} message {k}\r\n" * (50 + 40 * n)).encode()
                    r = c.transaction(f"s{n}@example.org", [f"r{n}.{k}@example.net"],
                                      make_message(body, subject=f"{n}/{k}"))
                    assert r.code == 250, r
                c.quit()
        except Exception as e:   # noqa: BLE001 - reported below
            errors.append(f"client {n}: {e!r}")

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a client thread did not finish"
    assert errors == []
    ts = backend.wait_delivered(24, timeout=30)
    seen = set()
    for t in ts:
        n, k = t.rcpt_addrs[0][1:].split("@")[0].split(".")
        assert t.mail_addr == f"s{n}@example.org"
        body = (f"client {n} message {k}\r\n" * (50 + 40 * int(n))).encode()
        assert strip_moat_headers(t.message) == make_message(body, subject=f"{n}/{k}")
        seen.add((n, k))
    assert len(seen) == 24
