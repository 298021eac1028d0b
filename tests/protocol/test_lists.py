"""Allow/deny lists and per-domain thresholds, end to end through moatd,
including what happens to a transaction whose recipients have different
policies."""

import time

from helpers import make_message, run_moatd, wait_until

FROM = "sender@example.org"
RULES = """\
header TEST_SPAMMY Subject =~ /spammy/
score  TEST_SPAMMY 7
"""


def rules(tmp_path):
    p = tmp_path / "t.rules"
    p.write_text(RULES)
    return str(p)


def test_deny_client_at_connect(backend, moatd):
    """A denied client address gets 554 in place of the greeting and a connect record."""
    m = moatd(backend, deny_clients="127.0.0.0/8", ready=False)

    def denied_greeting():
        try:
            c = m.client(read_banner=False)
        except OSError:
            return None  # not listening yet
        r = c.read_reply()
        closed = c.wait_closed(5)
        c.close()
        return (r, closed)

    r, closed = wait_until(denied_greeting, 10, what="a greeting")
    assert r.code == 554, r
    assert closed
    rec = m.wait_decisions(1)[0]
    assert rec["stage"] == "connect" and rec["action"] == "reject"
    assert rec["symbols"][0]["name"] == "DENYLIST_CLIENT"


def test_deny_sender_and_recipient(backend, moatd):
    """Denied sender: 554 at MAIL; denied recipient: 554 for it alone, others go through."""
    m = moatd(backend, deny_senders="bad.example", deny_recipients="closed@example.net")
    with m.client() as c:
        c.ehlo()
        c.cmd("MAIL FROM:<x@bad.example>", 554)
        c.cmd(f"MAIL FROM:<{FROM}>", 250)
        c.cmd("RCPT TO:<closed@example.net>", 554)
        c.cmd("RCPT TO:<open@example.net>", 250)
        c.cmd("DATA", 354)
        c.send_message(make_message(b"hi\r\n"))
        c.expect(250)
    t = backend.wait_delivered(1)[0]
    assert t.rcpt_addrs == ["open@example.net"]
    stages = [(r["stage"], r["action"]) for r in m.wait_decisions(3)]
    assert stages == [("mail", "reject"), ("rcpt", "reject"), ("data", "accept")]


def test_allow_sender_skips_scoring(backend, moatd, tmp_path):
    """An allow-listed sender's spammy message is accepted untagged; the score is recorded."""
    m = moatd(backend, rules=rules(tmp_path), reject_score="5", tag_score="3",
              allow_senders="friend@example.org")
    with m.client() as c:
        c.ehlo()
        r1 = c.transaction("friend@example.org", ["a@example.net"], make_message(b"x\r\n", subject="spammy"))
        r2 = c.transaction("stranger@example.org", ["a@example.net"], make_message(b"x\r\n", subject="spammy"))
        c.quit()
    assert r1.code == 250 and r2.code == 550
    t = backend.wait_delivered(1)[0]
    assert b"X-Spam-" not in t.message
    recs = m.wait_decisions(2)
    assert recs[0]["action"] == "accept" and recs[0]["score"] == 7
    assert {"ALLOWLIST_SENDER", "TEST_SPAMMY"} <= {s["name"] for s in recs[0]["symbols"]}


def test_domain_scores(backend, moatd, tmp_path):
    """domain_scores: the same message is tagged for one domain and refused for a strict one."""
    m = moatd(backend, rules=rules(tmp_path), domain_scores="strict.example=6/2")
    with m.client() as c:
        c.ehlo()
        r1 = c.transaction(FROM, ["a@example.net"], make_message(b"x\r\n", subject="spammy"))
        r2 = c.transaction(FROM, ["a@strict.example"], make_message(b"x\r\n", subject="spammy"))
        c.quit()
    assert r1.code == 250 and r2.code == 550
    assert b"X-Spam-Flag: YES" in backend.wait_delivered(1)[0].message


def test_mixed_policies_split_with_452(backend, moatd, tmp_path):
    """Recipients with different policies: the second gets 452 4.5.3, and after a retry
    each part is judged by its own policy."""
    m = moatd(backend, rules=rules(tmp_path), reject_score="5", tag_score="3",
              allow_recipients="postmaster@example.net")
    msg = make_message(b"x\r\n", subject="spammy")
    with m.client() as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{FROM}>", 250)
        c.cmd("RCPT TO:<user@example.net>", 250)
        r = c.cmd("RCPT TO:<postmaster@example.net>")
        assert r.code == 452 and r.enhanced == "4.5.3", r
        c.cmd("RCPT TO:<other@example.net>", 250)  # same policy as the first: fine
        c.cmd("DATA", 354)
        c.send_message(msg)
        assert c.read_reply().code == 550  # spam for the unprotected recipients
        # The client's retry for the deferred recipient: allow-listed, accepted.
        r2 = c.transaction(FROM, ["postmaster@example.net"], msg)
        c.quit()
    assert r2.code == 250
    t = backend.wait_delivered(1)[0]
    assert t.rcpt_addrs == ["postmaster@example.net"]
    time.sleep(0.2)
    assert backend.delivered_count == 1


def test_lists_monitor_mode(backend, moatd):
    """lists_mode=monitor: a denied sender is only logged; the message goes through."""
    m = moatd(backend, deny_senders=FROM, lists_mode="monitor")
    with m.client() as c:
        c.ehlo()
        r = c.transaction(FROM, ["a@example.net"], make_message(b"x\r\n"))
        c.quit()
    assert r.code == 250
    assert "monitor: would reject" in m.log_text()


def test_bad_list_is_a_config_error():
    """A bad CIDR in deny_clients is reported with its key and refused."""
    r = run_moatd(["-n", "-c", "/dev/null", "-o", "rules=", "-o", "deny_clients=192.0.2.0/33"])
    assert r.returncode == 1 and b"deny_clients" in r.stderr and b"192.0.2.0/33" in r.stderr
