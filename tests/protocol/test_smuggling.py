"""SMTP smuggling: only CRLF.CRLF ends DATA, and nothing a client hides in a
message body ever reaches the backend as a command.

The backend here is lenient (it also ends data at LF.LF, CR.CR, ...), like
the vulnerable servers the attack targets: if moat ever passed one of these
sequences on, the smuggled MAIL FROM would show up in its command list."""

import pytest

from helpers import assert_crlf_only, normalize_newlines, strip_moat_headers

FROM = "legit@example.org"
TO = "victim@example.net"

SEQUENCES = {
    "lf-dot-lf": b"\n.\n",
    "lf-dot-crlf": b"\n.\r\n",
    "cr-dot-crlf": b"\r.\r\n",
    "crlf-dot-lf": b"\r\n.\n",
    "crlf-dot-cr": b"\r\n.\r",
}

SMUGGLED = (b"MAIL FROM:<evil@attacker.example>\r\nRCPT TO:<victim@example.net>\r\nDATA\r\n"
            b"From: ceo@example.org\r\nSubject: smuggled\r\n\r\nPay now.\r\n")


def payload(seq):
    head = b"From: legit@example.org\r\nTo: victim@example.net\r\nSubject: hi\r\n\r\nhello"
    return head + seq + SMUGGLED


def start_transaction(m):
    c = m.client()
    c.ehlo()
    c.cmd(f"MAIL FROM:<{FROM}>", 250)
    c.cmd(f"RCPT TO:<{TO}>", 250)
    c.cmd("DATA", 354)
    return c


def assert_no_smuggled_command(b):
    """The backend saw exactly one MAIL, the legitimate one."""
    mails = [x for x in b.commands() if x.upper().startswith("MAIL")]
    assert len(mails) <= 1, mails
    assert all("evil" not in x for x in mails), mails
    assert not any("evil@attacker.example" in x for x in b.commands())


@pytest.mark.parametrize("name", list(SEQUENCES))
def test_reject_mode_closes_at_loose_dot(make_backend, moatd, name):
    """bare_newline=reject: a "." line with a bare CR/LF ends the data with 550 5.5.2 and closes."""
    b = make_backend(lenient_eod=True)
    m = moatd(b)
    c = start_transaction(m)
    c.send(payload(SEQUENCES[name]) + b".\r\nQUIT\r\n")
    r = c.read_reply()
    assert r.code == 550 and r.enhanced == "5.5.2", r
    assert c.wait_closed(10), "connection left open after a smuggling attempt"
    assert bytes(c.buf) == b"", f"more replies after the 550: {bytes(c.buf)!r}"
    c.close()
    assert b.delivered_count == 0
    assert_no_smuggled_command(b)
    assert b.count_verb("DATA") == 0


def test_reject_mode_loose_dot_at_start_of_data(make_backend, moatd):
    """bare_newline=reject: ".\\n" as the first data line also ends with 550 5.5.2 and a close."""
    b = make_backend(lenient_eod=True)
    m = moatd(b)
    c = start_transaction(m)
    c.send(b".\n" + SMUGGLED + b".\r\n")
    c.expect(550, "5.5.2")
    assert c.wait_closed(10)
    c.close()
    assert b.delivered_count == 0
    assert_no_smuggled_command(b)


@pytest.mark.parametrize("name", list(SEQUENCES))
def test_normalize_mode_keeps_sequence_as_content(make_backend, moatd, name):
    """bare_newline=normalize: the sequence is content, one message arrives, no smuggled command."""
    b = make_backend(lenient_eod=True)
    m = moatd(b, bare_newline="normalize")
    c = start_transaction(m)
    data = payload(SEQUENCES[name])
    c.send(data + b".\r\n")
    r = c.read_reply()
    assert r.code == 250, r
    c.cmd("NOOP", 250)
    c.quit()
    ts = b.wait_delivered(1)
    assert len(b.transactions()) == 1
    t = ts[0]
    assert_crlf_only(t.data_raw)
    assert b"\r\n..\r\n" in t.data_raw, "the lone '.' line must reach the backend stuffed"
    assert strip_moat_headers(t.message) == normalize_newlines(data)
    assert b"MAIL FROM:<evil@attacker.example>" in t.message
    assert_no_smuggled_command(b)


@pytest.mark.parametrize("bare", [b"\n", b"\r"], ids=["bare-lf", "bare-cr"])
def test_reject_mode_bare_newline_in_body(make_backend, moatd, bare):
    """bare_newline=reject: a bare LF/CR in a line gets 550 5.5.2 after the real end; the session goes on."""
    b = make_backend(lenient_eod=True)
    m = moatd(b)
    c = start_transaction(m)
    c.send(b"Subject: x\r\n\r\nline one" + bare + b"line two\r\n.\r\n")
    c.expect(550, "5.5.2")
    c.cmd("NOOP", 250)
    c.cmd(f"MAIL FROM:<{FROM}>", 250)
    c.quit()
    assert b.delivered_count == 0
    assert b.count_verb("DATA") == 0


@pytest.mark.parametrize("bare", [b"\n", b"\r"], ids=["bare-lf", "bare-cr"])
def test_normalize_mode_bare_newline_in_body(make_backend, moatd, bare):
    """bare_newline=normalize: a bare LF/CR reaches the backend as CRLF."""
    b = make_backend()
    m = moatd(b, bare_newline="normalize")
    c = start_transaction(m)
    data = b"Subject: x\r\n\r\nline one" + bare + b"line two\r\n"
    c.send(data + b".\r\n")
    c.expect(250)
    c.quit()
    t = b.wait_delivered(1)[0]
    assert strip_moat_headers(t.message) == b"Subject: x\r\n\r\nline one\r\nline two\r\n"
    assert_crlf_only(t.data_raw)


def test_bare_lf_after_real_end_is_a_new_command(make_backend, moatd):
    """After the real CRLF.CRLF, the next line is a command (a second, legitimate transaction)."""
    b = make_backend(lenient_eod=True)
    m = moatd(b)
    c = start_transaction(m)
    c.send(b"Subject: x\r\n\r\nbody\r\n.\r\nMAIL FROM:<second@example.org>\r\n")
    c.expect(250)
    c.expect(250)
    c.quit()
    assert [t.mail_addr for t in b.transactions()] == [FROM, "second@example.org"]


def test_smuggling_via_pipelined_data_before_354(make_backend, moatd):
    """Message text pipelined right behind DATA is never taken for commands after a loose dot."""
    b = make_backend(lenient_eod=True)
    m = moatd(b)
    c = m.client()
    c.ehlo()
    c.send(f"MAIL FROM:<{FROM}>\r\nRCPT TO:<{TO}>\r\nDATA\r\n".encode() + payload(b"\n.\n") + b".\r\n")
    codes = []
    for _ in range(4):
        try:
            codes.append(c.read_reply().code)
        except Exception:
            break
    assert codes[:3] == [250, 250, 354], codes
    # Whatever moat then does, it must not accept the message nor run the smuggled commands.
    assert 250 not in codes[3:], codes
    c.close()
    assert b.delivered_count == 0
    assert_no_smuggled_command(b)


def test_dot_lf_line_only_in_normalize_mode_is_content(make_backend, moatd):
    """normalize: ".\\n" at the start of data is content, not an end of data."""
    b = make_backend(lenient_eod=True)
    m = moatd(b, bare_newline="normalize")
    c = start_transaction(m)
    c.send(b".\nSubject: x\r\n\r\nbody\r\n.\r\n")
    c.expect(250)
    c.quit()
    t = b.wait_delivered(1)[0]
    assert strip_moat_headers(t.message) == b".\r\nSubject: x\r\n\r\nbody\r\n"
    assert t.data_raw.startswith(b"..\r\n")
