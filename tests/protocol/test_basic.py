"""Greeting, EHLO/HELO, command sequencing and moat's own replies."""

import pytest

from backend import XFORWARD_CAP
from helpers import HOSTNAME, make_message, wait_until

NEVER_OFFERED = ["STARTTLS", "AUTH", "CHUNKING", "VRFY", "ETRN", "XCLIENT", "XFORWARD", "EXPN"]


def test_greeting(backend, moatd):
    """The banner is exactly "220 <hostname> ESMTP moat"."""
    m = moatd(backend)
    with m.client() as c:
        assert c.banner.lines == [f"220 {HOSTNAME} ESMTP moat"]


def test_ehlo_reply_with_full_backend(backend, moatd):
    """EHLO names the host and offers PIPELINING, SIZE and what the backend offers."""
    m = moatd(backend)
    with m.client() as c:
        r = c.ehlo()
        assert r.lines[0] == f"250-{HOSTNAME}"
        for kw in ["PIPELINING", "SIZE", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "DSN"]:
            assert kw in r.keywords, r
        assert r.keyword_line("SIZE") == "SIZE 26214400"


def test_ehlo_never_offers_unsupported(backend, moatd):
    """STARTTLS, AUTH, CHUNKING, VRFY, ETRN, XCLIENT, XFORWARD are never offered."""
    backend.config.caps += ["STARTTLS", "AUTH PLAIN LOGIN", "CHUNKING", "VRFY", "ETRN", XFORWARD_CAP]
    m = moatd(backend)
    with m.client() as c:
        r = c.ehlo()
        for kw in NEVER_OFFERED:
            assert kw not in r.keywords, r


def test_ehlo_size_follows_max_message_size(backend, moatd):
    """SIZE announces the configured max_message_size."""
    m = moatd(backend, max_message_size="1000000")
    with m.client() as c:
        assert c.ehlo().keyword_line("SIZE") == "SIZE 1000000"


def test_ehlo_minimal_backend(make_backend, moatd):
    """Extensions the backend lacks (8BITMIME, SMTPUTF8, ENHANCEDSTATUSCODES, DSN) are not offered."""
    b = make_backend(caps=["PIPELINING", "SIZE 10240000"])
    m = moatd(b)
    with m.client() as c:
        r = c.ehlo()
        assert "PIPELINING" in r.keywords and "SIZE" in r.keywords
        for kw in ["8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "DSN"]:
            assert kw not in r.keywords, r


def test_caps_refreshed_by_probe(make_backend, moatd):
    """A capability the backend starts offering shows up after a probe interval."""
    b = make_backend(caps=["PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"])
    m = moatd(b, backend_probe_interval="1s")
    with m.client() as c:
        assert "SMTPUTF8" not in c.ehlo().keywords
    b.config.caps = b.config.caps + ["SMTPUTF8"]

    def offered():
        with m.client() as c:
            return "SMTPUTF8" in c.ehlo().keywords
    wait_until(offered, timeout=15, interval=0.5, what="SMTPUTF8 offered after a probe")


def test_caps_refreshed_by_backend_session(make_backend, moatd):
    """A backend session's EHLO refreshes the capabilities moat offers."""
    b = make_backend(caps=["PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"])
    m = moatd(b, backend_probe_interval="24h")
    b.config.caps = b.config.caps + ["SMTPUTF8"]
    with m.client() as c:
        assert "SMTPUTF8" not in c.ehlo().keywords
        assert c.transaction("a@example.org", ["b@example.net"], make_message()).code == 250
    with m.client() as c:
        assert "SMTPUTF8" in c.ehlo().keywords


def test_helo_reply(backend, moatd):
    """HELO is answered "250 <hostname>"."""
    m = moatd(backend)
    with m.client() as c:
        assert c.helo().lines == [f"250 {HOSTNAME}"]


@pytest.mark.parametrize("verb", ["EHLO", "HELO"])
def test_ehlo_helo_without_argument(backend, moatd, verb):
    """EHLO/HELO without a name get 501."""
    m = moatd(backend)
    with m.client() as c:
        c.cmd(verb, 501)
        c.ehlo()
        c.cmd(verb, 501, "5.5.4")


def test_mail_before_helo(backend, moatd):
    """MAIL before HELO/EHLO gets 503 and nothing reaches the backend."""
    m = moatd(backend)
    with m.client() as c:
        c.cmd("MAIL FROM:<a@example.org>", 503)
        c.cmd("NOOP", 250)
    assert backend.count_verb("MAIL") == 0


def test_nested_mail(backend, moatd):
    """A second MAIL inside a transaction gets 503 5.5.1."""
    m = moatd(backend)
    with m.client() as c:
        c.ehlo()
        c.cmd("MAIL FROM:<a@example.org>", 250)
        c.cmd("MAIL FROM:<b@example.org>", 503, "5.5.1")
    assert backend.count_verb("MAIL") == 1


@pytest.mark.parametrize("line,code,enh", [
    ("MAIL TO:<a@example.org>", 501, "5.5.4"),
    ("MAIL <a@example.org>", 501, "5.5.4"),
    ("MAIL FROM:<a b@example.org>", 501, "5.1.7"),
    ("MAIL FROM:<a@exa(mple.org>", 501, "5.1.7"),
])
def test_mail_syntax_errors(backend, moatd, line, code, enh):
    """Malformed MAIL commands get 501 with the right enhanced code."""
    m = moatd(backend)
    with m.client() as c:
        c.ehlo()
        c.cmd(line, code, enh)
        c.cmd("MAIL FROM:<a@example.org>", 250)
    assert backend.count_verb("MAIL") == 1


def test_mail_unknown_parameter(backend, moatd):
    """An unknown MAIL parameter gets 555 5.5.4."""
    m = moatd(backend)
    with m.client() as c:
        c.ehlo()
        c.cmd("MAIL FROM:<a@example.org> FOO=bar", 555, "5.5.4")
    assert backend.count_verb("MAIL") == 0


def test_body_8bitmime_not_offered(make_backend, moatd):
    """BODY=8BITMIME and SMTPUTF8 are refused (555) when the backend does not offer them."""
    b = make_backend(caps=["PIPELINING", "ENHANCEDSTATUSCODES"])
    m = moatd(b)
    with m.client() as c:
        c.ehlo()
        c.cmd("MAIL FROM:<a@example.org> BODY=8BITMIME", 555, "5.5.4")
        c.cmd("MAIL FROM:<a@example.org> SMTPUTF8", 555, "5.5.4")
    assert b.count_verb("MAIL") == 0


def test_non_ascii_address_needs_smtputf8(backend, moatd):
    """A non-ASCII address without the SMTPUTF8 parameter gets 553 5.6.7."""
    m = moatd(backend)
    with m.client() as c:
        c.ehlo()
        c.cmd("MAIL FROM:<用户@例子.test>", 553, "5.6.7")
        c.cmd("MAIL FROM:<a@example.org>", 250)
        c.cmd("RCPT TO:<用户@例子.test>", 553, "5.6.7")
    assert backend.count_verb("RCPT") == 0


def test_rcpt_before_mail(backend, moatd):
    """RCPT before MAIL gets 503 5.5.1."""
    m = moatd(backend)
    with m.client() as c:
        c.ehlo()
        c.cmd("RCPT TO:<b@example.net>", 503, "5.5.1")
    assert backend.count_verb("RCPT") == 0


@pytest.mark.parametrize("line,enh", [
    ("RCPT FROM:<b@example.net>", "5.5.4"),
    ("RCPT TO:<>", "5.1.3"),
    ("RCPT TO:<b c@example.net>", "5.1.3"),
])
def test_rcpt_syntax_errors(backend, moatd, line, enh):
    """Malformed RCPT commands get 501 and are not relayed."""
    m = moatd(backend)
    with m.client() as c:
        c.ehlo()
        c.cmd("MAIL FROM:<a@example.org>", 250)
        c.cmd(line, 501, enh)
    assert backend.count_verb("RCPT") == 0


def test_rcpt_backend_replies_pass_through(make_backend, moatd):
    """The backend's 550 5.1.1 and 450 4.2.0 to RCPT reach the client verbatim."""
    b = make_backend(reject_rcpts={"nobody@example.net"}, tempfail_rcpts={"later@example.net"})
    m = moatd(b)
    with m.client() as c:
        c.ehlo()
        c.cmd("MAIL FROM:<a@example.org>", 250)
        r = c.cmd("RCPT TO:<nobody@example.net>", 550, "5.1.1")
        assert r.lines == ["550 5.1.1 <nobody@example.net>: Recipient address rejected: User unknown"]
        r = c.cmd("RCPT TO:<later@example.net>", 450, "4.2.0")
        assert r.lines == ["450 4.2.0 <later@example.net>: Recipient address rejected: try later"]
        c.cmd("RCPT TO:<ok@example.net>", 250)
    assert b.transactions()[0].rcpt_addrs == ["nobody@example.net", "later@example.net", "ok@example.net"]


def test_data_before_rcpt(backend, moatd):
    """DATA without MAIL or without RCPT gets 503 5.5.1."""
    m = moatd(backend)
    with m.client() as c:
        c.ehlo()
        c.cmd("DATA", 503, "5.5.1")
        c.cmd("MAIL FROM:<a@example.org>", 250)
        c.cmd("DATA", 503, "5.5.1")
    assert backend.count_verb("DATA") == 0


def test_data_after_all_rcpts_refused(make_backend, moatd):
    """DATA after every recipient was refused gets 554 5.5.1."""
    b = make_backend(reject_rcpts={"x@example.net", "y@example.net"})
    m = moatd(b)
    with m.client() as c:
        c.ehlo()
        c.cmd("MAIL FROM:<a@example.org>", 250)
        c.cmd("RCPT TO:<x@example.net>", 550)
        c.cmd("RCPT TO:<y@example.net>", 550)
        c.cmd("DATA", 554, "5.5.1")
        c.cmd("NOOP", 250)
    assert b.count_verb("DATA") == 0


def test_data_with_argument(backend, moatd):
    """DATA with an argument gets 501 5.5.4."""
    m = moatd(backend)
    with m.client() as c:
        c.ehlo()
        c.cmd("MAIL FROM:<a@example.org>", 250)
        c.cmd("RCPT TO:<b@example.net>", 250)
        c.cmd("DATA now", 501, "5.5.4")
        c.cmd("DATA", 354)


def test_moat_answers_354_itself(make_backend, moatd):
    """moat answers DATA with its own 354 text, before the backend sees DATA."""
    b = make_backend()
    m = moatd(b)
    with m.client() as c:
        c.ehlo()
        c.cmd("MAIL FROM:<a@example.org>", 250)
        c.cmd("RCPT TO:<b@example.net>", 250)
        r = c.cmd("DATA", 354)
        assert r.lines == ["354 End data with <CR><LF>.<CR><LF>"]
        assert b.count_verb("DATA") == 0
        c.send_message(make_message())
        c.expect(250)


@pytest.mark.parametrize("line,code", [
    ("NOOP", 250), ("RSET", 250), ("VRFY postmaster", 252), ("EXPN staff", 502), ("HELP", 214),
])
def test_simple_commands(backend, moatd, line, code):
    """NOOP, RSET, VRFY, EXPN and HELP get their fixed replies."""
    m = moatd(backend)
    with m.client() as c:
        c.ehlo()
        c.cmd(line, code)
        c.cmd("NOOP", 250)


def test_quit_closes(backend, moatd):
    """QUIT gets 221 and the connection is closed."""
    m = moatd(backend)
    c = m.client()
    c.ehlo()
    c.cmd("QUIT", 221)
    assert c.wait_closed(10)


@pytest.mark.parametrize("line", ["STARTTLS", "AUTH PLAIN AGFAAGI=", "BDAT 10 LAST"])
def test_not_offered_commands(backend, moatd, line):
    """STARTTLS, AUTH and BDAT (not offered) get 502 5.5.1."""
    m = moatd(backend)
    with m.client() as c:
        c.ehlo()
        c.cmd(line, 502, "5.5.1")
        c.cmd("NOOP", 250)


def test_unknown_command(backend, moatd):
    """An unknown command gets 502 5.5.2 and is not relayed."""
    m = moatd(backend)
    with m.client() as c:
        c.ehlo()
        c.cmd("FROBNICATE now", 502, "5.5.2")
    assert not any(cmd.upper().startswith("FROBNICATE") for cmd in backend.commands())


def test_no_enhanced_codes_after_helo(backend, moatd):
    """After HELO, moat's own replies carry no enhanced status codes."""
    m = moatd(backend)
    with m.client() as c:
        c.helo()
        c.cmd("RCPT TO:<b@example.net>", 503)
        r = c.cmd("FROBNICATE", 502)
        assert r.enhanced is None, r
        c.cmd("MAIL FROM:<a@example.org>", 250)
        r = c.cmd("MAIL FROM:<a@example.org>", 503)
        assert r.enhanced is None, r


def test_no_enhanced_codes_without_backend_support(make_backend, moatd):
    """Without ENHANCEDSTATUSCODES at the backend, moat's own replies have none."""
    b = make_backend(caps=["PIPELINING", "8BITMIME"])
    m = moatd(b)
    with m.client() as c:
        r = c.ehlo()
        assert "ENHANCEDSTATUSCODES" not in r.keywords
        r = c.cmd("RCPT TO:<b@example.net>", 503)
        assert r.enhanced is None, r


def test_commands_case_insensitive(backend, moatd):
    """Lower-case verbs and "from:"/"to:" work."""
    m = moatd(backend)
    with m.client() as c:
        c.cmd("ehlo client.example", 250)
        c.cmd("mail from:<a@example.org>", 250)
        c.cmd("rcpt to:<b@example.net>", 250)
        c.cmd("data", 354)
        c.send_message(make_message())
        c.expect(250)
    backend.wait_delivered(1)


def test_rset_aborts_backend_transaction(backend, moatd):
    """RSET aborts the transaction at the backend too; the next one is clean."""
    m = moatd(backend)
    with m.client() as c:
        c.ehlo()
        c.cmd("MAIL FROM:<first@example.org>", 250)
        c.cmd("RCPT TO:<one@example.net>", 250)
        c.cmd("RSET", 250)
        r = c.transaction("second@example.org", ["two@example.net"], make_message())
        assert r.code == 250
    t = backend.wait_delivered(1)[0]
    assert t.mail_addr == "second@example.org"
    assert t.rcpt_addrs == ["two@example.net"]
    # At the backend the first transaction was ended by RSET before the second
    # MAIL, unless the second one went over a new connection.
    for conn in backend.mail_connections():
        mails = [i for i, x in enumerate(conn.commands) if x.upper().startswith("MAIL")]
        if len(mails) == 2:
            between = [x.upper() for x in conn.commands[mails[0] + 1:mails[1]]]
            assert "RSET" in between, conn.commands


def test_ehlo_resets_transaction(backend, moatd):
    """A new EHLO inside a transaction ends it (RFC 5321 4.1.4): RCPT then needs MAIL."""
    m = moatd(backend)
    with m.client() as c:
        c.ehlo()
        c.cmd("MAIL FROM:<a@example.org>", 250)
        c.ehlo("again.example")
        c.cmd("RCPT TO:<b@example.net>", 503)
        assert c.transaction("c@example.org", ["d@example.net"], make_message()).code == 250
    t = backend.wait_delivered(1)[0]
    assert t.mail_addr == "c@example.org" and t.rcpt_addrs == ["d@example.net"]


def test_client_disconnect_mid_data(backend, moatd):
    """A client vanishing inside DATA delivers nothing; moat keeps serving."""
    m = moatd(backend)
    c = m.client()
    c.ehlo()
    c.cmd("MAIL FROM:<a@example.org>", 250)
    c.cmd("RCPT TO:<b@example.net>", 250)
    c.cmd("DATA", 354)
    c.send(b"Subject: cut\r\n\r\nhalf a message")
    c.close()
    # The backend session opened for the transaction is let go.
    conn = backend.mail_connections()[0]
    assert conn.closed.wait(10), "backend session left open after the client vanished"
    assert backend.delivered_count == 0 and backend.count_verb("DATA") == 0
    with m.client() as c2:
        c2.ehlo()
        assert c2.transaction("a@example.org", ["b@example.net"], make_message()).code == 250


def test_client_quit_closes_backend_session(backend, moatd):
    """When the client quits, moat ends its backend session too."""
    m = moatd(backend)
    with m.client() as c:
        c.ehlo()
        assert c.transaction("a@example.org", ["b@example.net"], make_message()).code == 250
        c.quit()
    conn = backend.mail_connections()[0]
    assert conn.closed.wait(10), "backend session left open after QUIT"
