"""The decision log: one JSON record per decision, every field present."""

import re

from backend import free_port
from helpers import make_message

FROM = "sender@example.org"
TO = "rcpt@example.net"

FIELDS = {"ts", "id", "client_ip", "client_name", "helo", "tls", "mail_from", "rcpts", "size",
          "stage", "action", "score", "symbols", "reply", "backend_reply", "ms", "queue_id"}


def check_shape(rec):
    """Every field is present; types are as documented."""
    missing = FIELDS - set(rec)
    assert not missing, f"missing fields {missing} in {rec}"
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$", rec["ts"]), rec["ts"]
    assert isinstance(rec["id"], str) and rec["id"]
    assert rec["stage"] in ("connect", "helo", "mail", "rcpt", "data")
    assert rec["action"] in ("accept", "tag", "reject", "tempfail")
    assert isinstance(rec["symbols"], list)
    assert isinstance(rec["score"], (int, float))
    assert isinstance(rec["ms"], (int, float)) and rec["ms"] >= 0
    assert rec["rcpts"] is None or isinstance(rec["rcpts"], list)
    assert isinstance(rec["reply"], str) and re.match(r"^[245]\d\d", rec["reply"])


def only(recs, **kw):
    return [r for r in recs if all(r.get(k) == v for k, v in kw.items())]


def test_accepted_message_record(backend, moatd):
    """An accepted message gives one record: stage data, action accept, backend reply and queue id."""
    m = moatd(backend)
    msg = make_message(b"logged\r\n")
    with m.client() as c:
        c.ehlo("logger.example")
        r = c.transaction(FROM, [TO, "two@example.net"], msg)
        assert r.code == 250
        c.quit()
    rec = m.wait_decisions(1)[0]
    check_shape(rec)
    t = backend.delivered()[0]
    assert rec["stage"] == "data" and rec["action"] == "accept"
    assert rec["client_ip"] == "127.0.0.1"
    assert rec["helo"] == "logger.example"
    assert rec["tls"] is None
    assert rec["mail_from"] == FROM
    assert rec["rcpts"] == [TO, "two@example.net"]
    assert rec["size"] == len(msg)
    assert rec["queue_id"] == t.queue_id
    assert rec["backend_reply"] is not None and t.queue_id in rec["backend_reply"]
    assert rec["reply"] == r.lines[0], "reply must be what moat sent to the client"


def test_one_record_per_message(backend, moatd):
    """Three messages in one session give three data records, in order."""
    m = moatd(backend)
    with m.client() as c:
        c.ehlo()
        for i in range(3):
            assert c.transaction(FROM, [f"r{i}@example.net"], make_message()).code == 250
    recs = m.wait_decisions(3)
    assert [r["rcpts"] for r in recs] == [["r0@example.net"], ["r1@example.net"], ["r2@example.net"]]
    assert [r["queue_id"] for r in recs] == [t.queue_id for t in backend.delivered()]
    for r in recs:
        check_shape(r)


def test_no_record_without_decision(backend, moatd):
    """A session with only EHLO, NOOP and QUIT writes no record."""
    m = moatd(backend)
    with m.client() as c:
        c.ehlo()
        c.cmd("NOOP", 250)
        c.quit()
    # A later decision proves the log is being written; the first session left none.
    with m.client() as c:
        c.ehlo("second.example")
        assert c.transaction(FROM, [TO], make_message()).code == 250
    recs = m.wait_decisions(1)
    assert len(recs) == 1 and recs[0]["helo"] == "second.example"


def test_mail_refusal_record(make_backend, moatd):
    """A MAIL refused by the backend gives a stage "mail" reject record."""
    b = make_backend(mail_reply="550 5.7.1 Sender blocked")
    m = moatd(b)
    with m.client() as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{FROM}>", 550)
    rec = m.wait_decisions(1)[0]
    check_shape(rec)
    assert rec["stage"] == "mail" and rec["action"] == "reject"
    assert rec["mail_from"] == FROM
    assert rec["reply"].startswith("550")
    assert rec["rcpts"] in (None, [])
    assert rec["queue_id"] is None


def test_backend_down_record(moatd):
    """MAIL with the backend down gives a stage "mail" tempfail record with the 451."""
    m = moatd(free_port())
    with m.client() as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{FROM}>", 451)
    rec = m.wait_decisions(1)[0]
    check_shape(rec)
    assert rec["stage"] == "mail" and rec["action"] == "tempfail"
    assert rec["reply"].startswith("451")


def test_rcpt_refusal_records(make_backend, moatd):
    """Each refused RCPT gives a stage "rcpt" record naming only that recipient."""
    b = make_backend(reject_rcpts={"no@example.net"}, tempfail_rcpts={"later@example.net"})
    m = moatd(b)
    with m.client() as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{FROM}>", 250)
        c.cmd("RCPT TO:<ok@example.net>", 250)
        c.cmd("RCPT TO:<no@example.net>", 550)
        c.cmd("RCPT TO:<later@example.net>", 450)
    recs = m.wait_decisions(2)
    for r in recs:
        check_shape(r)
    rej = only(recs, stage="rcpt", action="reject")
    tmp = only(recs, stage="rcpt", action="tempfail")
    assert len(rej) == 1 and rej[0]["rcpts"] == ["no@example.net"] and rej[0]["reply"].startswith("550")
    assert len(tmp) == 1 and tmp[0]["rcpts"] == ["later@example.net"] and tmp[0]["reply"].startswith("450")
    assert rej[0]["mail_from"] == FROM


def test_eod_reject_by_backend_record(make_backend, moatd):
    """A backend 554 at end of data gives a data reject record with the backend's reply."""
    b = make_backend(eod_reply="554 5.7.1 Content rejected")
    m = moatd(b)
    with m.client() as c:
        c.ehlo()
        assert c.transaction(FROM, [TO], make_message()).code == 554
    rec = m.wait_decisions(1)[0]
    check_shape(rec)
    assert rec["stage"] == "data" and rec["action"] == "reject"
    assert "Content rejected" in rec["backend_reply"]
    assert rec["reply"].startswith("554")
    assert rec["queue_id"] is None


def test_backend_hang_record(make_backend, moatd):
    """A backend timeout at end of data gives a data tempfail record, backend_reply null."""
    b = make_backend(hang_at={"EOD"})
    m = moatd(b, backend_timeout="2s")
    with m.client(timeout=30) as c:
        c.ehlo()
        assert c.transaction(FROM, [TO], make_message()).code == 451
    rec = m.wait_decisions(1)[0]
    check_shape(rec)
    assert rec["stage"] == "data" and rec["action"] == "tempfail"
    assert rec["reply"].startswith("451")
    assert rec["backend_reply"] is None


def test_bare_newline_reject_record(backend, moatd):
    """A bare-LF rejection gives a data reject record with the 550 5.5.2 reply."""
    m = moatd(backend)
    with m.client() as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{FROM}>", 250)
        c.cmd(f"RCPT TO:<{TO}>", 250)
        c.cmd("DATA", 354)
        c.send(b"Subject: x\r\n\r\nbare\nlf\r\n.\r\n")
        c.expect(550, "5.5.2")
    rec = m.wait_decisions(1)[0]
    check_shape(rec)
    assert rec["stage"] == "data" and rec["action"] == "reject"
    assert rec["reply"].startswith("550 5.5.2")
    assert rec["backend_reply"] is None


def test_oversize_record(backend, moatd):
    """An over-size message gives a data reject record with 552."""
    m = moatd(backend, max_message_size="2048")
    with m.client() as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{FROM}>", 250)
        c.cmd(f"RCPT TO:<{TO}>", 250)
        c.cmd("DATA", 354)
        c.send_message(make_message(b"w" * 5000 + b"\r\n"))
        c.expect(552)
    rec = m.wait_decisions(1)[0]
    check_shape(rec)
    assert rec["stage"] == "data" and rec["action"] == "reject" and rec["reply"].startswith("552")


def test_connection_limit_record(backend, moatd):
    """A connection refused by the per-IP limit gives a connect tempfail record with CONN_LIMIT."""
    m = moatd(backend, max_connections_per_ip="1")
    first = m.client()
    assert first.banner.code == 220
    second = m.client()
    assert second.banner.code == 421
    second.close()
    rec = m.wait_decisions(1, pred=lambda r: r.get("stage") == "connect")[0]
    check_shape(rec)
    assert rec["action"] == "tempfail"
    assert rec["client_ip"] == "127.0.0.1"
    assert "CONN_LIMIT" in [s.get("name") for s in rec["symbols"]]
    assert rec["mail_from"] is None and rec["rcpts"] is None and rec["helo"] is None
    assert rec["reply"].startswith("421")
    first.close()


def test_utf8_addresses_logged(backend, moatd):
    """SMTPUTF8 addresses are logged as proper UTF-8 strings."""
    m = moatd(backend)
    with m.client() as c:
        c.ehlo()
        r = c.transaction("用户@例子.test", ["受信者@例子.test"], make_message(), "SMTPUTF8")
        assert r.code == 250
    rec = m.wait_decisions(1)[0]
    assert rec["mail_from"] == "用户@例子.test"
    assert rec["rcpts"] == ["受信者@例子.test"]


def test_sessions_have_distinct_ids(backend, moatd):
    """Decisions from two sessions carry different ids."""
    m = moatd(backend)
    for _ in range(2):
        with m.client() as c:
            c.ehlo()
            assert c.transaction(FROM, [TO], make_message()).code == 250
    recs = m.wait_decisions(2)
    assert recs[0]["id"] != recs[1]["id"]


def test_moat_mail_refusal_record(backend, moatd):
    """moat's own refusal at MAIL (declared SIZE too big) gives a stage "mail" reject record."""
    m = moatd(backend, max_message_size="10000")
    with m.client() as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{FROM}> SIZE=20000", 552)
    rec = m.wait_decisions(1)[0]
    check_shape(rec)
    assert rec["stage"] == "mail" and rec["action"] == "reject"
    assert rec["reply"].startswith("552") and rec["backend_reply"] is None


def test_moat_rcpt_limit_record(backend, moatd):
    """moat's own 452 for too many recipients gives a stage "rcpt" tempfail record."""
    m = moatd(backend, max_recipients="1")
    with m.client() as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{FROM}>", 250)
        c.cmd("RCPT TO:<one@example.net>", 250)
        c.cmd("RCPT TO:<two@example.net>", 452)
    rec = m.wait_decisions(1)[0]
    check_shape(rec)
    assert rec["stage"] == "rcpt" and rec["action"] == "tempfail"
    assert rec["rcpts"] == ["two@example.net"] and rec["reply"].startswith("452")
