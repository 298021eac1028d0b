"""The backend sees the real client: XCLIENT (Postfix) or XFORWARD."""

import socket

from backend import XFORWARD_CAP
from helpers import HOSTNAME, make_message

FROM = "sender@example.org"
TO = "rcpt@example.net"
BASE_CAPS = ["PIPELINING", "SIZE 52428800", "8BITMIME", "ENHANCEDSTATUSCODES"]


def deliver(m, helo="client.example", use_helo=False):
    with m.client() as c:
        if use_helo:
            c.helo(helo)
        else:
            c.ehlo(helo)
        r = c.transaction(FROM, [TO], make_message())
        assert r.code == 250, r
        c.quit()


def attrs(lines):
    """XCLIENT/XFORWARD attribute=value pairs from one or more command lines."""
    out = {}
    for line in lines:
        for item in line.split(" ")[1:]:
            if "=" in item:
                k, v = item.split("=", 1)
                out[k.upper()] = v
    return out


def test_xclient_sent_with_client_attributes(backend, moatd):
    """moat sends XCLIENT ADDR, NAME, HELO and PROTO=ESMTP for an EHLO client."""
    m = moatd(backend)
    deliver(m, "client.example")
    conn = backend.mail_connections()[0]
    assert len(conn.xclient) == 1, conn.commands
    a = attrs(conn.xclient)
    assert a["ADDR"] == "127.0.0.1"
    assert a["HELO"] == "client.example"
    assert a["PROTO"] == "ESMTP"
    assert "NAME" in a and a["NAME"]
    assert conn.xforward == []


def test_xclient_then_ehlo_again(backend, moatd):
    """After XCLIENT's 220, moat says EHLO again before MAIL (Postfix behaviour)."""
    m = moatd(backend)
    deliver(m)
    conn = backend.mail_connections()[0]
    verbs = [c.split(" ")[0].upper() for c in conn.commands]
    i = verbs.index("XCLIENT")
    assert "EHLO" in verbs[:i]
    assert verbs[i + 1] == "EHLO", verbs
    assert verbs.index("MAIL") > i + 1


def test_xclient_proto_smtp_for_helo(backend, moatd):
    """A HELO client is passed on with PROTO=SMTP."""
    m = moatd(backend)
    deliver(m, "old.example", use_helo=True)
    a = attrs(backend.mail_connections()[0].xclient)
    assert a["PROTO"] == "SMTP" and a["HELO"] == "old.example"


def test_xclient_helo_is_xtext_encoded(backend, moatd):
    """Characters outside xtext ("+" and "=") are encoded as +XX in XCLIENT HELO."""
    m = moatd(backend)
    deliver(m, "a+b=c.example")
    a = attrs(backend.mail_connections()[0].xclient)
    assert a["HELO"] == "a+2Bb+3Dc.example"


def test_xforward_when_only_xforward_offered(make_backend, moatd):
    """With only XFORWARD offered, moat sends XFORWARD ADDR, NAME, PROTO, HELO and no XCLIENT."""
    b = make_backend(caps=BASE_CAPS + [XFORWARD_CAP])
    m = moatd(b)
    deliver(m, "fwd.example")
    conn = b.mail_connections()[0]
    assert conn.xclient == []
    a = attrs(conn.xforward)
    assert a["ADDR"] == "127.0.0.1" and a["HELO"] == "fwd.example" and a["PROTO"] == "ESMTP"
    assert "NAME" in a
    verbs = [c.split(" ")[0].upper() for c in conn.commands]
    assert max(i for i, v in enumerate(verbs) if v == "XFORWARD") < verbs.index("MAIL")


def test_xclient_preferred_over_xforward(make_backend, moatd):
    """With both offered, XCLIENT is used and XFORWARD is not."""
    b = make_backend(caps=BASE_CAPS + ["XCLIENT ADDR NAME HELO PROTO", XFORWARD_CAP])
    m = moatd(b)
    deliver(m)
    conn = b.mail_connections()[0]
    assert len(conn.xclient) == 1 and conn.xforward == []


def test_backend_xclient_no_with_only_xclient(backend, moatd):
    """backend_xclient=no with only XCLIENT offered: neither XCLIENT nor XFORWARD is sent."""
    m = moatd(backend, backend_xclient="no")
    deliver(m)
    assert backend.xclient_lines() == [] and backend.xforward_lines() == []


def test_backend_xclient_no_falls_back_to_xforward(make_backend, moatd):
    """backend_xclient=no with both offered: XFORWARD is sent instead."""
    b = make_backend(caps=BASE_CAPS + ["XCLIENT ADDR NAME HELO PROTO", XFORWARD_CAP])
    m = moatd(b, backend_xclient="no")
    deliver(m)
    assert b.xclient_lines() == []
    assert attrs(b.xforward_lines())["ADDR"] == "127.0.0.1"


def test_backend_xforward_no(make_backend, moatd):
    """backend_xforward=no with only XFORWARD offered: nothing is sent."""
    b = make_backend(caps=BASE_CAPS + [XFORWARD_CAP])
    m = moatd(b, backend_xforward="no")
    deliver(m)
    assert b.xforward_lines() == [] and b.xclient_lines() == []


def test_neither_offered(make_backend, moatd):
    """A backend offering neither gets neither, and mail still flows."""
    b = make_backend(caps=BASE_CAPS)
    m = moatd(b)
    deliver(m)
    assert b.xforward_lines() == [] and b.xclient_lines() == []
    assert b.delivered_count == 1


def test_xclient_refused_is_not_ignored(make_backend, moatd):
    """If the backend refuses XCLIENT, the client gets a 4xx at MAIL rather than mail relayed as moat."""
    b = make_backend(xclient_reply="550 5.7.0 Error: insufficient authorization")
    m = moatd(b)
    with m.client() as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{FROM}>", "4")
    assert b.count_verb("MAIL") == 0


def test_backend_helo_default_and_option(make_backend, moatd):
    """moat greets the backend with EHLO <hostname>, or backend_helo when set."""
    b = make_backend()
    m = moatd(b)
    deliver(m)
    assert b.mail_connections()[0].ehlo[0] == f"EHLO {HOSTNAME}"
    b2 = make_backend()
    m2 = moatd(b2, backend_helo="relay.example")
    deliver(m2)
    assert b2.mail_connections()[0].ehlo[0] == "EHLO relay.example"


def test_each_client_session_gets_its_own_xclient(backend, moatd):
    """Two client sessions with different HELO names each pass their own HELO."""
    m = moatd(backend)
    deliver(m, "first.example")
    deliver(m, "second.example")
    helos = [attrs([x])["HELO"] for x in backend.xclient_lines()]
    assert helos == ["first.example", "second.example"]


def test_ipv6_client_address(backend, moatd):
    """A client on [::1] is passed to the backend as an IPv6 address and logged as ::1."""
    s = socket.socket(socket.AF_INET6)
    s.bind(("::1", 0))
    port = s.getsockname()[1]
    s.close()
    m = moatd(backend, listen=f"[::1]:{port}", ready=False)
    m.host, m.port = "::1", port
    m.wait_ready()
    deliver(m)
    a = attrs(backend.mail_connections()[0].xclient)
    assert a["ADDR"] in ("IPV6:::1", "::1"), a
    rec = m.wait_decisions(1)[0]
    assert rec["client_ip"] == "::1"
