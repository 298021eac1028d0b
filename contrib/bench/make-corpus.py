#!/usr/bin/env python3
"""make-corpus.py - write real-looking test messages for the rule benchmark.

    contrib/bench/make-corpus.py DIR [COUNT] [SIZE] [TEXT_SIZE]

Each message is multipart/alternative (text/plain + text/html, the HTML part
quoted-printable), with ordinary headers, links, and prose from a fixed
vocabulary; one in four carries spam phrasing.  With TEXT_SIZE, the text
parts take about that many bytes and a base64 PDF attachment the rest of
SIZE (multipart/mixed), the shape of much real mail of that size: body rules
then read TEXT_SIZE, full rules all of it.  Deterministic (seeded), so runs
compare.  Standard library only.
"""
import base64
import quopri
import random
import sys
from pathlib import Path

WORDS = ("the of and to in is that for it as was with be by on not he this are or his "
         "from at which but have an they you were her she there been one all we their "
         "meeting report project quarter budget review customer order invoice delivery "
         "schedule update team office account service support product price market "
         "client contract proposal agenda minutes summary attached please thanks regards "
         "tomorrow monday week month year plan goal result data figure table chart").split()
SPAM = ["Cheap viagra and cialis, 100% guaranteed, risk-free!",
        "You have won a cash prize: claim your reward now.",
        "Please verify your account details to avoid suspension.",
        "To be removed from this list, click here and reply."]


def paragraph(rng, n):
    words = [rng.choice(WORDS) for _ in range(n)]
    words[0] = words[0].capitalize()
    return " ".join(words) + "."


def message(rng, i, size, text_size):
    spam = i % 4 == 0
    paras = []
    while sum(len(p) for p in paras) < text_size // 2:
        paras.append(paragraph(rng, rng.randint(20, 60)))
        if spam and rng.random() < 0.1:
            paras.append(rng.choice(SPAM))
    links = [f"https://www.example{rng.randint(1, 9)}.com/page/{rng.randint(1, 999)}" for _ in range(5)]
    if spam:
        links.append(f"http://192.0.2.{rng.randint(1, 254)}/login")
    text = "\n\n".join(paras) + "\n\n" + "\n".join(links) + "\n"
    html = "<html><body>" + "".join(f"<p>{p}</p>\n" for p in paras)
    html += "".join(f'<a href="{u}">{u}</a><br>\n' for u in links) + "</body></html>\n"
    subject = "FREE MONEY for you" if spam else f"Re: {paragraph(rng, 5)[:-1]}"
    boundary = f"=_b{i:06d}"
    alternative = (f"--{boundary}\nContent-Type: text/plain; charset=utf-8\n\n{text}\n"
                   f"--{boundary}\nContent-Type: text/html; charset=utf-8\n"
                   "Content-Transfer-Encoding: quoted-printable\n\n"
                   + quopri.encodestring(html.encode()).decode() + f"\n--{boundary}--\n")
    content_type = f"multipart/alternative; boundary=\"{boundary}\""
    if text_size < size:
        # base64 grows 4/3 and wraps at 76: raw bytes for the rest of SIZE
        raw = size - text_size - 200
        pdf = b"%PDF-1.4\n" + rng.randbytes(max(raw * 3 // 4, 0))
        outer = f"=_m{i:06d}"
        alternative = (f"--{outer}\nContent-Type: {content_type}\n\n{alternative}\n"
                       f"--{outer}\nContent-Type: application/pdf; name=\"report{i}.pdf\"\n"
                       "Content-Transfer-Encoding: base64\n"
                       f"Content-Disposition: attachment; filename=\"report{i}.pdf\"\n\n"
                       + base64.encodebytes(pdf).decode() + f"\n--{outer}--\n")
        content_type = f"multipart/mixed; boundary=\"{outer}\""
    head = (f"From: Sender {i} <sender{i}@example.org>\n"
            f"To: User <user@example.net>\n"
            f"Subject: {subject}\n"
            f"Date: Mon, 23 Nov 2026 10:{i % 60:02d}:00 +0000\n"
            f"Message-ID: <bench.{i}@example.org>\n"
            "MIME-Version: 1.0\n"
            f"Content-Type: {content_type}\n\n")
    return (head + alternative).replace("\n", "\r\n")


def main():
    out = Path(sys.argv[1])
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    size = int(sys.argv[3]) if len(sys.argv) > 3 else 50000
    text_size = int(sys.argv[4]) if len(sys.argv) > 4 else size
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(42)
    for i in range(count):
        (out / f"msg{i:03d}.eml").write_text(message(rng, i, size, text_size))


if __name__ == "__main__":
    main()
