"""Rules and policy end to end: ham and spam through the real moatd to a real
backend, tagging, rejection, monitor mode, reload (also under load) and
moat-check on the same rule files."""

import json
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from helpers import make_message, moatd_binary, wait_until

FROM = "sender@example.org"
TO = "rcpt@example.net"
REPO = Path(__file__).resolve().parents[2]

RULES = """\
# test rules: one tags (6), both together reject (11)
header   TEST_SUBJ_SPAMMY  Subject =~ /spammy/i
score    TEST_SUBJ_SPAMMY  6
describe TEST_SUBJ_SPAMMY  Subject says spammy
body     TEST_BODY_PILLS   /\\bpills\\b/i
score    TEST_BODY_PILLS   5
describe TEST_BODY_PILLS   Body sells pills
uri      TEST_URI_EXAMPLE  /^https?:\\/\\/bad\\.example\\//
score    TEST_URI_EXAMPLE  0.5
meta     TEST_BOTH         TEST_SUBJ_SPAMMY && TEST_BODY_PILLS
score    TEST_BOTH         0.1
"""


def moat_check_binary() -> Path:
    return REPO / "moat-check"


@pytest.fixture
def rules_file(tmp_path):
    p = tmp_path / "test.rules"
    p.write_text(RULES)
    return p


def send(m, msg, rcpts=(TO,)):
    """One transaction; returns the reply to the end of data."""
    with m.client() as c:
        c.ehlo()
        r = c.transaction(FROM, list(rcpts), msg)
        c.quit()
    return r


def test_ham_passes_untouched(backend, moatd, rules_file):
    """A message no rule hits reaches the backend with no header added."""
    m = moatd(backend, rules=str(rules_file))
    msg = make_message(b"Just a normal note.\r\n", subject="lunch")
    r = send(m, msg)
    assert r.code == 250
    t = backend.wait_delivered(1)[0]
    assert t.message == msg
    rec = m.wait_decisions(1)[0]
    assert rec["action"] == "accept" and rec["symbols"] == [] and rec["score"] == 0


def test_spam_tagged(backend, moatd, rules_file):
    """Score over tag_score: accepted with X-Spam-Flag/Score/Status naming the rule."""
    m = moatd(backend, rules=str(rules_file))
    msg = make_message(b"Nothing to see.\r\n", subject="a spammy offer")
    r = send(m, msg)
    assert r.code == 250
    t = backend.wait_delivered(1)[0]
    head = t.message.split(b"\r\n\r\n", 1)[0]
    assert b"X-Spam-Flag: YES\r\n" in head
    assert b"X-Spam-Score: 6.0\r\n" in head
    assert b"X-Spam-Status: Yes, score=6.0 required=5.0 tests=TEST_SUBJ_SPAMMY\r\n" in head
    assert t.message.endswith(msg), "the original message follows the added headers"
    rec = m.wait_decisions(1)[0]
    assert rec["action"] == "tag" and rec["score"] == 6
    assert [s["name"] for s in rec["symbols"]] == ["TEST_SUBJ_SPAMMY"]
    assert rec["symbols"][0]["check"] == "rules"
    assert rec["symbols"][0]["detail"] == "Subject says spammy"


def test_spam_rejected_never_reaches_backend(backend, moatd, rules_file):
    """Score over reject_score: 550 5.7.1 in the dialogue; the backend gets no message."""
    m = moatd(backend, rules=str(rules_file))
    msg = make_message(b"Cheap pills here: https://bad.example/x\r\n", subject="spammy")
    r = send(m, msg)
    assert r.code == 550 and r.enhanced == "5.7.1", r
    assert "rejected as spam" in r.text
    rec = m.wait_decisions(1)[0]
    assert rec["action"] == "reject" and rec["stage"] == "data"
    assert rec["backend_reply"] is None
    names = {s["name"] for s in rec["symbols"]}
    assert names == {"TEST_SUBJ_SPAMMY", "TEST_BODY_PILLS", "TEST_URI_EXAMPLE", "TEST_BOTH"}
    assert abs(rec["score"] - 11.6) < 0.001
    time.sleep(0.3)
    assert backend.delivered_count == 0
    assert backend.count_verb("DATA") == 0, "nothing was sent to the backend after RCPT"


def test_reject_message_names_rules(backend, moatd, rules_file):
    """reject_show_rules and reject_message shape the 550 text."""
    m = moatd(backend, rules=str(rules_file), reject_show_rules="yes",
              reject_message="No thanks")
    r = send(m, make_message(b"pills\r\n", subject="spammy"))
    assert r.code == 550
    assert "No thanks (TEST_SUBJ_SPAMMY, TEST_BODY_PILLS, TEST_BOTH)" in r.text


def test_session_continues_after_reject(backend, moatd, rules_file):
    """After a refused message the same session delivers the next one."""
    m = moatd(backend, rules=str(rules_file))
    with m.client() as c:
        c.ehlo()
        r1 = c.transaction(FROM, [TO], make_message(b"pills\r\n", subject="spammy"))
        r2 = c.transaction(FROM, [TO], make_message(b"fine\r\n", subject="fine"))
        c.quit()
    assert r1.code == 550 and r2.code == 250
    assert backend.wait_delivered(1)[0].message.endswith(b"fine\r\n")
    assert backend.delivered_count == 1


def test_monitor_mode_counts_nothing(backend, moatd, rules_file):
    """rules_mode=monitor: hits recorded with "monitor": true, message accepted untouched."""
    m = moatd(backend, rules=str(rules_file), rules_mode="monitor")
    msg = make_message(b"pills\r\n", subject="spammy")
    r = send(m, msg)
    assert r.code == 250
    assert backend.wait_delivered(1)[0].message == msg
    rec = m.wait_decisions(1)[0]
    assert rec["action"] == "accept" and rec["score"] == 0
    assert rec["symbols"] and all(s.get("monitor") for s in rec["symbols"])


def test_shipped_rules_load_and_judge(backend, moatd):
    """With the shipped default rules, a phishing-style message scores and plain mail does not."""
    m = moatd(backend)  # no rules= option: the shipped set
    ok = send(m, make_message(b"See you at noon.\r\n", subject="meeting"))
    assert ok.code == 250
    phish = make_message(b"Please verify your account details at http://192.0.2.9/login now.\r\n",
                         subject="account")
    r = send(m, phish)
    recs = m.wait_decisions(2)
    assert recs[0]["action"] == "accept" and recs[0]["score"] < 5
    names = {s["name"] for s in recs[1]["symbols"]}
    assert {"MOAT_BODY_URGENT_VERIFY", "MOAT_URI_IP_HOST", "MOAT_PHISH_COMBO"} <= names
    assert r.code == 250 and recs[1]["action"] == "tag"


def test_reload_swaps_rules(backend, moatd, rules_file):
    """SIGHUP with a changed score: new sessions are judged by the new set."""
    m = moatd(backend, config=None, rules=str(rules_file))
    assert send(m, make_message(b"x\r\n", subject="spammy")).code == 250  # tagged at 6
    rules_file.write_text(RULES.replace("score    TEST_SUBJ_SPAMMY  6", "score    TEST_SUBJ_SPAMMY  12"))
    m.signal(signal.SIGHUP)
    wait_until(lambda: "reloaded configuration: generation" in m.log_text(), 10, what="reload")
    r = send(m, make_message(b"x\r\n", subject="spammy"))
    assert r.code == 550
    recs = m.wait_decisions(2)
    assert recs[1]["config"] > recs[0]["config"], "the record names the new generation"


def hyperscan_built() -> bool:
    """Whether the moatd under test was configured with Hyperscan."""
    makefile = moatd_binary().resolve().parent.parent / "Makefile"
    try:
        return "-DHAVE_HYPERSCAN" in makefile.read_text()
    except OSError:
        return False


def test_hyperscan_prefilter_at_start_and_reload(backend, moatd, rules_file):
    """moatd builds each set's Hyperscan prefilter on a thread of its own, at start
    and on SIGHUP, and the rules hit the same before and after it is published."""
    if not hyperscan_built():
        pytest.skip("moatd was built without Hyperscan")
    m = moatd(backend, rules=str(rules_file))
    assert send(m, make_message(b"pills\r\n", subject="spammy")).code == 550
    wait_until(lambda: "rules: generation 1: Hyperscan prefilters" in m.log_text(), 60,
               what="the Hyperscan build of generation 1")
    assert send(m, make_message(b"pills\r\n", subject="spammy")).code == 550
    m.signal(signal.SIGHUP)
    assert send(m, make_message(b"pills\r\n", subject="spammy")).code == 550
    wait_until(lambda: "rules: generation 2: Hyperscan prefilters" in m.log_text(), 60,
               what="the Hyperscan build of generation 2")
    assert send(m, make_message(b"pills\r\n", subject="spammy")).code == 550
    assert send(m, make_message(b"hello\r\n")).code == 250


STOCK_RULES = Path("/usr/share/spamassassin")


def test_hyperscan_build_delays_neither_start_nor_stop(backend, moatd):
    """With SpamAssassin's stock rules the build takes seconds: moatd listens and
    judges meanwhile, and a SIGTERM during the build waits for it, then stops."""
    if not hyperscan_built():
        pytest.skip("moatd was built without Hyperscan")
    if not STOCK_RULES.is_dir():
        pytest.skip(f"{STOCK_RULES} absent (Debian package spamassassin)")
    m = moatd(backend, rules=str(STOCK_RULES))
    assert send(m, make_message(b"hello\r\n")).code == 250
    assert m.wait_decisions(1)[0]["action"] in ("accept", "tag")
    m.signal(signal.SIGTERM)
    assert m.wait_exit(120) == 0
    log = m.log_text()
    built = log.find("rules: generation 1: Hyperscan prefilters")
    assert built >= 0, log
    # either the build had ended before the signal, or stopping waited for it
    assert built < log.find("draining") or \
        "waiting for the Hyperscan build of generation 1 to finish" in log, log
    assert log.rstrip().endswith("stopped"), log[-2000:]


def test_broken_reload_keeps_old_set(backend, moatd, rules_file):
    """A broken rule file on SIGHUP: the old set stays and the log names file:line."""
    m = moatd(backend, rules=str(rules_file))
    rules_file.write_text(RULES + "body BROKEN /unclosed(/\n")
    m.signal(signal.SIGHUP)
    wait_until(lambda: "reload failed" in m.log_text(), 10, what="failed reload")
    log = m.log_text()
    assert f"{rules_file}:{RULES.count(chr(10)) + 1}:" in log
    r = send(m, make_message(b"pills\r\n", subject="spammy"))
    assert r.code == 550, "the old rule set still judges"


def test_reload_under_load(backend, moatd, rules_file):
    """Messages keep flowing through several reloads: every one gets its answer, none lost."""
    m = moatd(backend, rules=str(rules_file))
    results, errors = [], []
    stop = threading.Event()

    def sender():
        try:
            with m.client() as c:
                c.ehlo()
                for i in range(400):
                    if stop.is_set():
                        break
                    subject = "spammy" if i % 3 == 0 else f"note {i}"
                    body = b"pills\r\n" if i % 3 == 0 else b"hello\r\n"
                    results.append(c.transaction(FROM, [TO], make_message(body, subject=subject)).code)
                c.quit()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=sender) for _ in range(3)]
    for t in threads:
        t.start()
    for _ in range(5):
        time.sleep(0.2)
        m.signal(signal.SIGHUP)
    stop.set()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert results and set(results) <= {250, 550}, set(results)
    accepted = results.count(250)
    wait_until(lambda: backend.delivered_count == accepted, 20, what="all accepted delivered")
    # Signals sent faster than reloads finish may be merged by the kernel.
    assert m.log_text().count("reloaded configuration") >= 1
    assert "reload failed" not in m.log_text()


# ---- moat-check ----------------------------------------------------------------

def run_check(args, stdin=None):
    exe = moat_check_binary()
    if not exe.exists():
        pytest.fail(f"{exe} not built")
    return subprocess.run([str(exe)] + args, input=stdin, capture_output=True, timeout=60)


def test_moat_check_shows_hits(tmp_path, rules_file):
    """moat-check prints each hit with score and description, the total, action and reply."""
    eml = tmp_path / "spam.eml"
    eml.write_bytes(make_message(b"pills\n", subject="spammy").replace(b"\r\n", b"\n"))
    r = run_check(["-c", "/dev/null", "-o", f"rules={rules_file}", str(eml)])
    out = r.stdout.decode()
    assert r.returncode == 0, r.stderr
    assert "TEST_SUBJ_SPAMMY" in out and "Subject says spammy" in out
    assert "TEST_BODY_PILLS" in out and "5.00" in out
    assert "total score 11.10" in out
    assert "action: reject" in out and "550 5.7.1" in out


def test_moat_check_json_is_one_record(tmp_path, rules_file):
    """--json prints exactly one decision record, the same shape moatd writes."""
    msg = make_message(b"hello\r\n", subject="spammy")
    r = run_check(["-c", "/dev/null", "-o", f"rules={rules_file}", "--json",
                   "--ip", "192.0.2.7", "--from", FROM, "--rcpt", TO, "-"], stdin=msg)
    lines = r.stdout.decode().splitlines()
    assert r.returncode == 0 and len(lines) == 1, r
    rec = json.loads(lines[0])
    assert rec["action"] == "tag" and rec["client_ip"] == "192.0.2.7"
    assert rec["mail_from"] == FROM and rec["rcpts"] == [TO]
    assert [s["name"] for s in rec["symbols"]] == ["TEST_SUBJ_SPAMMY"]
    for key in ("ts", "id", "client_name", "helo", "tls", "size", "stage", "score",
                "reply", "backend_reply", "ms"):
        assert key in rec


def test_moat_check_profile_names_the_costly_rules(tmp_path):
    """--profile=N lists the N costliest text rules on the message, costliest first,
    each with its file:line; a rule that hit says so.  It refuses to mix with --json."""
    rules = tmp_path / "profile.rules"
    rules.write_text(
        "body  CHEAP_HIT   /pills/\n"
        "body  CHEAP_MISS  /zebra-crossing/\n"
        # a word of 5+ letters then a space, eight times over: work at every word
        "body  COSTLY      /\\b(?:[a-z]{5,}\\s+){8}[0-9]/\n"
        "uri   URI_RULE    /example\\.invalid/\n"
        "header SUBJ       Subject =~ /x/\n")
    prose = b" ".join([b"rather lengthy words follow another"] * 400)
    eml = tmp_path / "m.eml"
    eml.write_bytes(make_message(prose + b" pills https://www.example.invalid/\r\n"))
    r = run_check(["-c", "/dev/null", "-o", f"rules={rules}", "--profile=3", str(eml)])
    out = r.stdout.decode()
    assert r.returncode == 0, r.stderr
    head, _, table = out.partition("profile: 4 text rules")
    assert "action:" in head, "the usual report comes first"
    rows = [line.split() for line in table.splitlines() if re.match(r"\s+[0-9.]+ us ", line)]
    assert len(rows) == 3, table
    estimates = [float(row[0]) for row in rows]
    assert estimates == sorted(estimates, reverse=True), table
    assert rows[0][-1] == f"{rules}:3" and "COSTLY" in rows[0], table
    # without N: the 20 costliest, here all four
    r = run_check(["-c", "/dev/null", "-o", f"rules={rules}", "--profile", str(eml)])
    table = r.stdout.decode().partition("profile: 4 text rules")[2]
    rows = {line.split()[-2] if line.endswith("(hit)") else line.split()[-1]: line
            for line in table.splitlines() if re.match(r"\s+[0-9.]+ us ", line)}
    assert sorted(rows) == [f"{rules}:{n}" for n in (1, 2, 3, 4)], table
    assert rows[f"{rules}:1"].endswith("(hit)") and not rows[f"{rules}:2"].endswith("(hit)")
    assert "SUBJ" not in table, "header rules are not profiled"
    r = run_check(["-c", "/dev/null", "-o", f"rules={rules}", "--profile", "--json", str(eml)])
    assert r.returncode == 2 and b"usage" in r.stderr


def test_moat_check_agrees_with_moatd(backend, moatd, rules_file, tmp_path):
    """moat-check and moatd give the same action, score and symbols for one message."""
    msg = make_message(b"pills https://bad.example/x\r\n", subject="quiet")
    m = moatd(backend, rules=str(rules_file))
    send(m, msg)
    live = m.wait_decisions(1)[0]
    r = run_check(["-c", "/dev/null", "-o", f"rules={rules_file}", "--json", "-"], stdin=msg)
    offline = json.loads(r.stdout)
    assert offline["action"] == live["action"] == "tag"
    assert offline["score"] == live["score"]
    assert [s["name"] for s in offline["symbols"]] == [s["name"] for s in live["symbols"]]


def test_lint(tmp_path, rules_file):
    """--lint: 0 and a summary for good files; 1 and file:line for a broken one;
    unsupported lines each with file:line, then counted by kind."""
    r = run_check(["-c", "/dev/null", "-o", f"rules={rules_file}", "--lint"])
    assert r.returncode == 0 and b"rules from 1 files" in r.stdout, r
    odd = tmp_path / "odd.rules"
    odd.write_text("header A eval:check_a()\nbody B eval:check_b()\nbody C eval:check_c()\n"
                   "uri_detail X\nbody OK /fine/\n")
    r = run_check(["-c", "/dev/null", "-o", f"rules={odd}", "--lint"])
    assert r.returncode == 0, r
    for line in (1, 2, 3, 4):
        assert f"{odd}:{line}:".encode() in r.stderr, line
    assert b"4 warnings, by kind:" in r.stdout, r.stdout
    assert b"       2  body: eval: tests unsupported, skipped" in r.stdout, r.stdout
    assert b"       1  header: eval: tests unsupported, skipped" in r.stdout, r.stdout
    bad = tmp_path / "bad.rules"
    bad.write_text("body OK /fine/\nbody BAD /(/\n")
    r = run_check(["-c", "/dev/null", "-o", f"rules={bad}", "--lint"])
    assert r.returncode == 1
    assert f"{bad}:2:".encode() in r.stderr


def test_moatd_n_checks_rules(tmp_path):
    """moatd -n refuses a broken rule file with file:line, and counts unsupported lines
    by kind (moat-check --lint lists them one by one)."""
    bad = tmp_path / "bad.rules"
    bad.write_text("header X eval:check_something()\nbody BAD /(/\n")
    r = subprocess.run([str(moatd_binary()), "-n", "-c", "/dev/null", "-o", f"rules={bad}"],
                       capture_output=True, timeout=30)
    assert r.returncode == 1
    assert f"{bad}:2:".encode() in r.stderr
    assert b"1 warnings, by kind" in r.stderr, r.stderr
    assert b"       1  header: eval: tests unsupported, skipped" in r.stderr, r.stderr


def test_tempfail_score_defers(backend, moatd, rules_file):
    """tempfail_score: a doubtful message (6, between 5.5 and 10) gets 451 and is not delivered."""
    m = moatd(backend, rules=str(rules_file), tempfail_score="5.5")
    r = send(m, make_message(b"x\r\n", subject="spammy"))
    assert r.code == 451 and r.enhanced == "4.7.1", r
    rec = m.wait_decisions(1)[0]
    assert rec["action"] == "tempfail" and rec["score"] == 6
    time.sleep(0.2)
    assert backend.delivered_count == 0


def test_forged_spam_headers_removed(backend, moatd, rules_file):
    """A sender's own X-Spam-* headers never reach the backend; moat's replace them."""
    forged = ["From: Sender <sender@example.org>", "To: Rcpt <rcpt@example.net>",
              "X-Spam-Flag: NO", "X-Spam-Status: No, score=-100", "Message-ID: <f@example.org>"]
    m = moatd(backend, rules=str(rules_file))
    ham = make_message(b"hello\r\n", headers=forged + ["Subject: hi"])
    spam = make_message(b"hello\r\n", headers=forged + ["Subject: spammy"])
    assert send(m, ham).code == 250 and send(m, spam).code == 250
    got_ham, got_spam = (t.message for t in backend.wait_delivered(2))
    assert b"X-Spam-" not in got_ham
    assert got_ham == ham.replace(b"X-Spam-Flag: NO\r\n", b"").replace(
        b"X-Spam-Status: No, score=-100\r\n", b"")
    assert got_spam.count(b"X-Spam-Flag:") == 1 and b"X-Spam-Flag: YES" in got_spam
    assert b"score=-100" not in got_spam
