/*
 * test-message.c - unit tests for rules/message.c, the parsed message view.
 *
 * Tables of messages with the header fields, body, rawbody and URIs they
 * must give, then the limits (scan_limit, URI count, MIME structure), use
 * from several threads, and a replay of the mime-tricky corpus from
 * ../shared/testdata that checks every view is well formed.
 */
#include <dirent.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>

#include "message.h"
#include "test.h"

/* MSG - a literal that may hold NUL bytes, with its length */
#define MSG(s) .msg = s, .len = sizeof(s) - 1

/* parse - msg with LF turned into CRLF (the canonical form) unless lf_only */
static struct message_view *
parse(const char *msg, size_t len, bool lf_only, size_t limit)
{
	char *c = malloc(2 * len + 1);
	size_t n = 0;
	const char *err = NULL;

	if (c == NULL)
		abort();
	for (size_t i = 0; i < len; i++) {
		if (msg[i] == '\n' && !lf_only && (i == 0 || msg[i - 1] != '\r'))
			c[n++] = '\r';
		c[n++] = msg[i];
	}
	struct message_view *mv = message_view_parse(c, n, limit, &err);
	free(c);
	if (mv == NULL)
		printf("  parse failed: %s\n", err != NULL ? err : "?");
	return mv;
}

/* check_view - what every view must be: C strings of their lengths, UTF-8, bounded, URIs distinct */
static void
check_view(const struct message_view *mv, size_t limit)
{
	const char *(*texts[])(const struct message_view *, size_t *) = {
		message_view_body, message_view_rawbody, message_view_full,
	};
	size_t len;

	if (limit == 0)
		limit = MESSAGE_SCAN_LIMIT_DEFAULT;
	for (size_t i = 0; i < 3; i++) {
		const char *t = texts[i](mv, &len);
		CHECK(t != NULL);
		if (t == NULL)
			continue;
		CHECK_INT(strlen(t), len);
		CHECK(len <= limit);
		if (i < 2)
			CHECK(g_utf8_validate(t, (gssize)len, NULL));
	}
	for (size_t i = 0; i < message_view_header_count(mv); i++) {
		const struct message_header *h = message_view_header(mv, i);
		CHECK(h != NULL && h->name != NULL && h->raw != NULL && h->decoded != NULL);
		if (h != NULL && h->decoded != NULL)
			CHECK(g_utf8_validate(h->decoded, -1, NULL));
	}
	CHECK(message_view_header(mv, message_view_header_count(mv)) == NULL);
	GHashTable *seen = g_hash_table_new(g_str_hash, g_str_equal);
	CHECK(message_view_uri_count(mv) <= 1000);
	for (size_t i = 0; i < message_view_uri_count(mv); i++) {
		const char *u = message_view_uri(mv, i);
		CHECK(u != NULL && *u != '\0' && strlen(u) <= 4096 + 7);
		if (u == NULL)
			continue;
		CHECK(g_utf8_validate(u, -1, NULL));
		CHECK(!g_hash_table_contains(seen, u));
		g_hash_table_add(seen, (gpointer)u);
	}
	g_hash_table_destroy(seen);
}

/* ---- header fields ---- */

struct header_case {
	const char *name;
	const char *msg;
	size_t len;
	size_t index;		/* which field to check */
	const char *field, *raw, *decoded;
};

static const struct header_case header_cases[] = {
	{ "simple", MSG("Subject: Hello\n\nx\n"), 0, "Subject", "Hello", "Hello" },
	{ "folded", MSG("To: a\nSubject: first\n\tsecond\n  third\nX: y\n\nx\n"), 1,
	    "Subject", "first\tsecond  third", "first\tsecond  third" },
	{ "leading blanks only", MSG("X-A: \t  spaced  \n\nx\n"), 0, "X-A", "spaced  ", "spaced  " },
	{ "empty value", MSG("X-Empty:\nTo: b\n\nx\n"), 0, "X-Empty", "", "" },
	{ "no space", MSG("X-Tight:value\n\nx\n"), 0, "X-Tight", "value", "value" },
	{ "q word", MSG("Subject: =?utf-8?Q?caf=C3=A9_cr=C3=A8me?=\n\nx\n"), 0,
	    "Subject", "=?utf-8?Q?caf=C3=A9_cr=C3=A8me?=", "caf\xc3\xa9 cr\xc3\xa8me" },
	{ "b word", MSG("Subject: =?UTF-8?B?w6ljb2xl?=\n\nx\n"), 0,
	    "Subject", "=?UTF-8?B?w6ljb2xl?=", "\xc3\xa9" "cole" },
	{ "latin1 q word", MSG("Subject: =?iso-8859-1?q?r=E9sum=E9?=\n\nx\n"), 0,
	    "Subject", "=?iso-8859-1?q?r=E9sum=E9?=", "r\xc3\xa9sum\xc3\xa9" },
	{ "adjacent words", MSG("Subject: =?utf-8?q?a?= =?utf-8?q?b?=\n\nx\n"), 0,
	    "Subject", "=?utf-8?q?a?= =?utf-8?q?b?=", "ab" },
	{ "word in text", MSG("Subject: Re: =?utf-8?q?h=C3=A9llo?= world\n\nx\n"), 0,
	    "Subject", "Re: =?utf-8?q?h=C3=A9llo?= world", "Re: h\xc3\xa9llo world" },
	{ "folded word", MSG("Subject: =?utf-8?q?one?=\n =?utf-8?q?two?=\n\nx\n"), 0,
	    "Subject", "=?utf-8?q?one?= =?utf-8?q?two?=", "onetwo" },
	{ "raw utf-8", MSG("Subject: caf\xc3\xa9\n\nx\n"), 0, "Subject", "caf\xc3\xa9", "caf\xc3\xa9" },
	{ "raw latin-1", MSG("Subject: caf\xe9\n\nx\n"), 0, "Subject", "caf\xe9", "caf\xc3\xa9" },
	{ "nul in value", MSG("X-Nul: a\0b\nSubject: s\n\nx\n"), 0, "X-Nul", "a b", "a b" },
	{ "not a field skipped", MSG("Subject: a\nThis is not a field\nTo: b\n\nx\n"), 1, "To", "b", "b" },
	{ "content fields in order", MSG("Received: r\nContent-Type: text/plain\nSubject: s\n"
	    "MIME-Version: 1.0\nContent-Transfer-Encoding: 8bit\nTo: t\n\nx\n"), 4,
	    "Content-Transfer-Encoding", "8bit", "8bit" },
	{ "content type second", MSG("Received: r\nContent-Type: text/plain\nSubject: s\n\nx\n"), 1,
	    "Content-Type", "text/plain", "text/plain" },
	{ "no body", MSG("Subject: only\nTo: t"), 1, "To", "t", "t" },
};

static void
test_headers(void)
{
	for (size_t i = 0; i < TEST_COUNT(header_cases); i++) {
		const struct header_case *c = &header_cases[i];
		int before = test_failures;
		for (int lf = 0; lf < 2; lf++) {
			struct message_view *mv = parse(c->msg, c->len, lf, 0);
			CHECK(mv != NULL);
			if (mv == NULL)
				continue;
			check_view(mv, 0);
			const struct message_header *h = message_view_header(mv, c->index);
			CHECK(h != NULL);
			if (h != NULL) {
				CHECK_STR(h->name, c->field);
				CHECK_STR(h->raw, c->raw);
				CHECK_STR(h->decoded, c->decoded);
			}
			message_view_free(&mv);
			CHECK(mv == NULL);
		}
		if (test_failures != before)
			printf("  in case \"%s\"\n", c->name);
	}
}

static void
test_header_order(void)
{
	static const char msg[] = "Received: r1\nReceived: r2\nContent-Type: text/plain\nFrom: f\n"
	    "Content-Transfer-Encoding: 7bit\nSubject: s\nMIME-Version: 1.0\nX-Last: z\n\nbody\n";
	static const char *const names[] = { "Received", "Received", "Content-Type", "From",
		"Content-Transfer-Encoding", "Subject", "MIME-Version", "X-Last" };
	struct message_view *mv = parse(msg, sizeof(msg) - 1, false, 0);

	CHECK(mv != NULL);
	if (mv == NULL)
		return;
	CHECK_INT(message_view_header_count(mv), TEST_COUNT(names));
	for (size_t i = 0; i < TEST_COUNT(names) && i < message_view_header_count(mv); i++)
		CHECK_STR(message_view_header(mv, i)->name, names[i]);
	CHECK_STR(message_view_header(mv, 1)->raw, "r2");
	message_view_free(&mv);
}

/* ---- body and rawbody ---- */

struct body_case {
	const char *name;
	const char *msg;
	size_t len;
	const char *body, *rawbody;
};

static const struct body_case body_cases[] = {
	/* SpamAssassin's body: Subject line first, lines folded into paragraphs. */
	{ "plain", MSG("Subject: Hello\nFrom: a@example.com\n\nHi there,\nthis is a test.\n\nBye\n"),
	    "Hello\nHi there, this is a test.\nBye ", "Hi there,\nthis is a test.\n\nBye\n" },
	{ "no subject", MSG("From: a\n\nText\n"), "\nText ", "Text\n" },
	{ "blanks around break", MSG("Subject: s\n\none  \n \t \n  two\n"), "s\none \n two ", "one  \n \t \n  two\n" },
	{ "no body", MSG("Subject: x\n"), "x\n", "" },
	{ "empty body", MSG("Subject: x\n\n"), "x\n", "" },
	{ "rfc2047 subject in body", MSG("Subject: =?utf-8?B?w6ljb2xl?=\n\nx\n"), "\xc3\xa9" "cole\nx ", "x\n" },
	{ "last subject counts", MSG("Subject: one\nSubject: two\n\nx\n"), "two\nx ", "x\n" },
	{ "qp", MSG("Subject: q\nContent-Type: text/plain; charset=utf-8\n"
	    "Content-Transfer-Encoding: quoted-printable\n\nSoft=\nbreak and =C3=A9t=C3=A9 =3D equal=\n\n"),
	    "q\nSoftbreak and \xc3\xa9t\xc3\xa9 = equal ", "Softbreak and \xc3\xa9t\xc3\xa9 = equal\n" },
	{ "qp lowercase and broken", MSG("Subject: q\nContent-Transfer-Encoding: Quoted-Printable\n\n"
	    "a=3db =ZZ c=\n"), "q\na=b =ZZ c", "a=b =ZZ c" },
	{ "base64", MSG("Subject: b\nContent-Transfer-Encoding: base64\n\nSGVsbG8gYmFzZTY0\nIHdvcmxkIQ==\n"),
	    "b\nHello base64 world!", "Hello base64 world!" },
	{ "base64 crlf text", MSG("Subject: b\nContent-Transfer-Encoding: base64\n\nb25lDQp0d28NCg0KdGhyZWU=\n"),
	    "b\none two\nthree", "one\ntwo\n\nthree" },
	{ "latin-1", MSG("Subject: c\nContent-Type: text/plain; charset=iso-8859-1\n\ncaf\xe9 \x80\n"),
	    "c\ncaf\xc3\xa9 \xe2\x82\xac ", "caf\xc3\xa9 \xe2\x82\xac\n" },
	{ "windows-1252", MSG("Subject: c\nContent-Type: text/plain; charset=windows-1252\n\n"
	    "\x93quoted\x94 \x85\n"), "c\n\xe2\x80\x9cquoted\xe2\x80\x9d \xe2\x80\xa6 ",
	    "\xe2\x80\x9cquoted\xe2\x80\x9d \xe2\x80\xa6\n" },
	{ "utf-8", MSG("Subject: c\nContent-Type: text/plain; charset=\"UTF-8\"\n\nna\xc3\xafve\n"),
	    "c\nna\xc3\xafve ", "na\xc3\xafve\n" },
	{ "bad utf-8", MSG("Subject: c\nContent-Type: text/plain; charset=utf-8\n\nbad \xff\xc3 byte\n"),
	    "c\nbad \xc3\xbf\xc3\x83 byte ", "bad \xc3\xbf\xc3\x83 byte\n" },
	{ "unknown charset", MSG("Subject: c\nContent-Type: text/plain; charset=x-bogus\n\nabc \xe9\n"),
	    "c\nabc \xc3\xa9 ", "abc \xc3\xa9\n" },
	{ "no charset 8bit", MSG("Subject: c\n\nr\xc3\xa9sum\xc3\xa9 and caf\xe9\n"),
	    "c\nr\xc3\xa9sum\xc3\xa9 and caf\xc3\xa9 ", "r\xc3\xa9sum\xc3\xa9 and caf\xc3\xa9\n" },
	{ "odd utf-8 name", MSG("Subject: c\nContent-Type: text/plain; charset=$UTF-8\n\nx\xf6\xbc\x90\x91y\n"),
	    "c\nx\xc3\xb6\xc2\xbc\xc2\x90\xe2\x80\x98y ", "x\xc3\xb6\xc2\xbc\xc2\x90\xe2\x80\x98y\n" },
	{ "utf-16 with nul", MSG("Subject: c\nContent-Type: text/plain; charset=utf-16le\n"
	    "Content-Transfer-Encoding: base64\n\nYQAAAGIA\n"), "c\na b", "a b" },
	{ "korean", MSG("Subject: c\nContent-Type: text/plain; charset=ks_c_5601-1987\n\n\xc7\xd1\n"),
	    "c\n\xed\x95\x9c ", "\xed\x95\x9c\n" },
	{ "nul in body", MSG("Subject: n\n\na\0b\n"), "n\na b ", "a b\n" },
	{ "lf only", MSG("Subject: l\n\none\ntwo\n"), "l\none two ", "one\ntwo\n" },
	{ "alternative", MSG("From: a@example.com\nSubject: Alt\nMIME-Version: 1.0\n"
	    "Content-Type: multipart/alternative; boundary=\"b1\"\n\npreamble ignored\n--b1\n"
	    "Content-Type: text/plain; charset=utf-8\n\nPlain text\nsecond line\n--b1\n"
	    "Content-Type: text/html; charset=utf-8\n\n<p>HTML <b>text</b></p>\n--b1--\nepilogue ignored\n"),
	    "Alt\nPlain text second line\nHTML text\n",
	    "Plain text\nsecond line\n<p>HTML <b>text</b></p>" },
	{ "nested", MSG("Subject: N\nContent-Type: multipart/mixed; boundary=outer\n\n--outer\n"
	    "Content-Type: multipart/alternative; boundary=inner\n\n--inner\n\nplain one\n--inner\n"
	    "Content-Type: text/html\n\n<div>html one</div>\n--inner--\n\n--outer\n"
	    "Content-Type: image/png\nContent-Transfer-Encoding: base64\n\niVBORw0KGgo=\n--outer\n"
	    "Content-Type: message/rfc822\n\nSubject: inner subject\n\ninner text\n--outer\n"
	    "Content-Type: text/plain; name=a.txt\nContent-Disposition: attachment; filename=a.txt\n\n"
	    "attached\n--outer--\n"),
	    "N\nplain one\nhtml one\ninner text attached",
	    "plain one\n<div>html one</div>\ninner text\nattached" },
	{ "encoded rfc822", MSG("Subject: outer\nContent-Type: multipart/mixed; boundary=b\n\n--b\n\nvisible\n"
	    "--b\nContent-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n"
	    "U3ViamVjdDogaW5uZXIKCmhpZGRlbiBzcGFtIHRleHQgaHR0cDovL2hpZGRlbi5leGFtcGxlLwo=\n--b--\n"),
	    "outer\nvisible\nhidden spam text http://hidden.example/ ",
	    "visible\nhidden spam text http://hidden.example/\n" },
	{ "no boundary", MSG("Subject: nb\nContent-Type: multipart/mixed\n\nlost text\n--b\n\nmore\n"),
	    "nb\nlost text --b\nmore ", "lost text\n--b\n\nmore\n" },
	{ "broken boundary", MSG("Subject: bb\nContent-Type: multipart/mixed; boundary=good\n\n--good\n\n"
	    "first\n--bad\n\nsecond\n"), "bb\nfirst --bad\nsecond ", "first\n--bad\n\nsecond\n" },
	{ "not text", MSG("Subject: img\nContent-Type: image/png\nContent-Transfer-Encoding: base64\n\n"
	    "iVBORw0KGgo=\n"), "img\n", "" },
	{ "calendar", MSG("Subject: cal\nContent-Type: multipart/mixed; boundary=b\n\n--b\n\nhi\n--b\n"
	    "Content-Type: text/calendar\n\nBEGIN:VCALENDAR\n--b\n"
	    "Content-Type: message/delivery-status\n\nStatus: 5.0.0\n--b--\n"),
	    "cal\nhi BEGIN:VCALENDAR ", "hi\nStatus: 5.0.0" },
	{ "empty input", MSG(""), "\n", "" },
	{ "garbage", MSG("\x01\x02 not a message\n\nat all\n"), "\n\x01\x02 not a message\nat all ",
	    "\x01\x02 not a message\n\nat all\n" },
};

static void
test_bodies(void)
{
	for (size_t i = 0; i < TEST_COUNT(body_cases); i++) {
		const struct body_case *c = &body_cases[i];
		int before = test_failures;
		size_t len;
		for (int lf = 0; lf < 2; lf++) {
			struct message_view *mv = parse(c->msg, c->len, lf, 0);
			CHECK(mv != NULL);
			if (mv == NULL)
				continue;
			check_view(mv, 0);
			CHECK_STR(message_view_body(mv, &len), c->body);
			CHECK_STR(message_view_rawbody(mv, &len), c->rawbody);
			message_view_free(&mv);
		}
		if (test_failures != before)
			printf("  in case \"%s\"\n", c->name);
	}
}

/* ---- HTML ---- */

static const struct body_case html_cases[] = {
	{ "tags", MSG("<p>Hello <b>bold</b> <i>world</i></p>"), "Hello bold world\n", NULL },
	{ "entities", MSG("a&amp;b &lt;c&gt; &quot;d&quot; &#65;&#x42;&#X43; &eacute;&euro;&nbsp;e &bogus; f &amp"),
	    "a&b <c> \"d\" ABC \xc3\xa9\xe2\x82\xac e &bogus; f &", NULL },
	{ "windows-1252 reference", MSG("&#147;q&#148; &#0; &#x110000;"),
	    "\xe2\x80\x9cq\xe2\x80\x9d \xef\xbf\xbd \xef\xbf\xbd", NULL },
	{ "script and style", MSG("a<script type=\"x\">var s = '<p>no</p>';</script>b<style>p { x }</style>c"
	    "<SCRIPT>x</SCRIPT >d"), "abcd", NULL },
	{ "unterminated script", MSG("a<script>never ends"), "a", NULL },
	{ "comments", MSG("V<!-- hidden -->ia<!---->gra <!doctype html><?xml x?>ok<!-- open"), "Viagra ok", NULL },
	{ "br is a line break", MSG("one<br>two<br/>three<br><br>four"), "one two three\nfour", NULL },
	{ "blocks", MSG("<div>one</div><div>two</div><ul><li>a</li><li>b</li></ul><h1>h</h1>"
	    "<table><tr><td>c1</td><td>c2</td></tr><tr><td>c3</td></tr></table>"),
	    "one\ntwo\na\nb\nh\n c1 c2 \n c3 \n", NULL },
	{ "whitespace", MSG("  lots \t of\n\n\n   space  "), " lots of space ", NULL },
	{ "not tags", MSG("5 < 6 and 7 > 3 & <3 <-"), "5 < 6 and 7 > 3 & <3 <-", NULL },
	{ "img alt", MSG("buy<img src=x.png alt=\"cheap &amp; fast\">now"), "buy cheap & fast now", NULL },
	{ "quoted >", MSG("<a title=\"a>b\" href='x'>link</a>"), "link", NULL },
	{ "unterminated tag", MSG("text<a href=\"x"), "text", NULL },
};

static void
test_html(void)
{
	for (size_t i = 0; i < TEST_COUNT(html_cases); i++) {
		const struct body_case *c = &html_cases[i];
		int before = test_failures;
		char *msg = g_strdup_printf("Content-Type: text/html; charset=utf-8\n\n%.*s",
		    (int)c->len, c->msg);
		char *want = g_strdup_printf("\n%s", c->body);
		struct message_view *mv = parse(msg, strlen(msg), false, 0);
		size_t len;
		CHECK(mv != NULL);
		if (mv != NULL) {
			check_view(mv, 0);
			CHECK_STR(message_view_body(mv, &len), want);
			/* rawbody keeps the markup */
			const char *raw = message_view_rawbody(mv, &len);
			CHECK_MEM(raw, len, c->msg, c->len);
			message_view_free(&mv);
		}
		g_free(msg);
		g_free(want);
		if (test_failures != before)
			printf("  in case \"%s\"\n", c->name);
	}
}

/* ---- URIs ---- */

struct uri_case {
	const char *name;
	const char *msg;
	size_t len;
	const char *uris[8];	/* up to the first NULL */
};

static const struct uri_case uri_cases[] = {
	{ "text", MSG("Subject: u\n\nVisit http://example.com/path, or (https://example.org/x).\n"
	    "Mail mailto:joe@example.net; www.example.info/a?b=c! ftp://ftp.example.com/f.\n"),
	    { "http://example.com/path", "https://example.org/x", "mailto:joe@example.net",
	      "http://www.example.info/a?b=c", "ftp://ftp.example.com/f" } },
	{ "parentheses", MSG("Subject: u\n\nsee http://en.example.org/wiki/Foo_(bar) and"
	    " (http://x.example/a_(b))\n"),
	    { "http://en.example.org/wiki/Foo_(bar)", "http://x.example/a_(b)" } },
	{ "angle brackets and quotes", MSG("Subject: u\n\n<http://a.example/x> \"http://b.example/y\""
	    " 'http://c.example/z'\n"),
	    { "http://a.example/x", "http://b.example/y", "http://c.example/z" } },
	{ "case and duplicates", MSG("Subject: u\n\nHTTP://Example.COM/ http://x.example/ HTTP://Example.COM/\n"),
	    { "HTTP://Example.COM/", "http://x.example/" } },
	{ "not uris", MSG("Subject: u\n\nxhttp://no.example www.nodot http:// mailto: awww.x.example\n"
	    "a.www.x.example\n"), { NULL } },
	{ "html attributes", MSG("Subject: u\nContent-Type: text/html\n\n<body background=\"http://e.example/bg.jpg\">"
	    "<a href=\"http://a.example/?x=1&amp;y=2\">click http://b.example</a>\n"
	    "<img SRC='http://c.example/i.png'><form action=http://d.example/post>"
	    "<a href=\" http://f.example/\n  sp \">f</a><a href=\"\">empty</a><a href=\"#top\">top</a>"
	    "</body>"),
	    { "http://e.example/bg.jpg", "http://a.example/?x=1&y=2", "http://b.example",
	      "http://c.example/i.png", "http://d.example/post", "http://f.example/  sp", "#top" } },
	{ "html text and entities", MSG("Subject: u\nContent-Type: text/html\n\nGo to www.shop.example&#47;buy"
	    " or <b>http://x.example</b>/tail"),
	    { "http://www.shop.example/buy", "http://x.example" } },
	{ "from every part, once", MSG("Subject: u\nContent-Type: multipart/alternative; boundary=b\n\n"
	    "--b\n\nhttp://one.example/ http://two.example/\n--b\nContent-Type: text/html\n\n"
	    "<a href=\"http://two.example/\">http://one.example/</a> <a href=http://three.example/>3</a>\n"
	    "--b--\n"), { "http://one.example/", "http://two.example/", "http://three.example/" } },
	{ "qp-encoded", MSG("Subject: u\nContent-Transfer-Encoding: quoted-printable\n\n"
	    "http://long.example/a=\nb?c=3Dd\n"), { "http://long.example/ab?c=d" } },
	{ "encoded rfc822", MSG("Subject: u\nContent-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n"
	    "U3ViamVjdDogaW5uZXIKCmhpZGRlbiBzcGFtIHRleHQgaHR0cDovL2hpZGRlbi5leGFtcGxlLwo=\n"),
	    { "http://hidden.example/" } },
	{ "not from non-text parts", MSG("Subject: u\nContent-Type: multipart/mixed; boundary=b\n\n"
	    "--b\nContent-Type: application/octet-stream\n\nhttp://hidden.example/\n--b--\n"), { NULL } },
};

static void
test_uris(void)
{
	for (size_t i = 0; i < TEST_COUNT(uri_cases); i++) {
		const struct uri_case *c = &uri_cases[i];
		int before = test_failures;
		struct message_view *mv = parse(c->msg, c->len, false, 0);
		size_t n = 0;
		CHECK(mv != NULL);
		if (mv == NULL)
			continue;
		check_view(mv, 0);
		while (n < TEST_COUNT(c->uris) && c->uris[n] != NULL)
			n++;
		CHECK_INT(message_view_uri_count(mv), n);
		char lines[4096] = "";
		for (size_t k = 0; k < n && k < message_view_uri_count(mv); k++) {
			CHECK_STR(message_view_uri(mv, k), c->uris[k]);
			snprintf(lines + strlen(lines), sizeof(lines) - strlen(lines), "%s\n",
			    c->uris[k]);
		}
		CHECK(message_view_uri(mv, message_view_uri_count(mv)) == NULL);
		/* the same URIs as one text, a line each */
		size_t lines_len;
		CHECK_STR(message_view_uri_lines(mv, &lines_len), lines);
		CHECK_INT(lines_len, strlen(lines));
		message_view_free(&mv);
		if (test_failures != before)
			printf("  in case \"%s\"\n", c->name);
	}
}

static void
test_uri_limit(void)
{
	GString *msg = g_string_new("Subject: many\n\n");
	for (int i = 0; i < 1500; i++)
		g_string_append_printf(msg, "http://host%d.example/\n", i);
	struct message_view *mv = parse(msg->str, msg->len, false, 0);

	CHECK(mv != NULL);
	if (mv != NULL) {
		check_view(mv, 0);
		CHECK_INT(message_view_uri_count(mv), 1000);
		CHECK_STR(message_view_uri(mv, 999), "http://host999.example/");
		message_view_free(&mv);
	}
	/* A very long URI is cut, not dropped. */
	g_string_assign(msg, "Subject: long\n\nhttp://x.example/");
	for (int i = 0; i < 10000; i++)
		g_string_append_c(msg, 'a');
	g_string_append(msg, " http://y.example/\n");
	mv = parse(msg->str, msg->len, false, 0);
	CHECK(mv != NULL);
	if (mv != NULL) {
		check_view(mv, 0);
		CHECK_INT(message_view_uri_count(mv), 2);
		CHECK_INT(strlen(message_view_uri(mv, 0)), 4096);
		CHECK_STR(message_view_uri(mv, 1), "http://y.example/");
		message_view_free(&mv);
	}
	/* ... and never inside a character, in text or in an attribute */
	for (int html = 0; html < 2; html++) {
		g_string_assign(msg, html ? "Content-Type: text/html\n\n<a href='http://x.example/" :
		    "Subject: cut\n\nhttp://x.example/");
		for (int i = 0; i < 4078; i++)
			g_string_append_c(msg, 'a');
		g_string_append(msg, html ? "\xe2\x82\xac'>x</a>\n" : "\xc3\xa9" "b\n");
		mv = parse(msg->str, msg->len, false, 0);
		CHECK(mv != NULL);
		if (mv != NULL) {
			check_view(mv, 0);
			CHECK_INT(message_view_uri_count(mv), 1);
			CHECK_INT(strlen(message_view_uri(mv, 0)), 4095);
			message_view_free(&mv);
		}
	}
	g_string_free(msg, TRUE);
}

/* ---- limits ---- */

static void
test_scan_limit(void)
{
	GString *msg = g_string_new("Subject: big\n\n");
	size_t len;

	for (int i = 0; i < 200; i++)
		g_string_append(msg, "word \xc3\xa9t\xc3\xa9 ");
	g_string_append(msg, "\n");
	struct message_view *whole = parse(msg->str, msg->len, false, 0);
	CHECK(whole != NULL);
	if (whole == NULL)
		return;
	const char *wbody = message_view_body(whole, &len);
	for (size_t limit = 100; limit < 110; limit++) {
		struct message_view *mv = parse(msg->str, msg->len, false, limit);
		CHECK(mv != NULL);
		if (mv == NULL)
			continue;
		check_view(mv, limit);
		/* body: a prefix, cut where no character is split */
		const char *body = message_view_body(mv, &len);
		CHECK(len <= limit && len + 3 >= limit - 20);
		CHECK(memcmp(body, wbody, len) == 0);
		const char *full = message_view_full(mv, &len);
		CHECK_INT(len, limit);
		CHECK(memcmp(full, "Subject: big\r\n\r\nword ", 21) == 0);
		message_view_free(&mv);
	}
	message_view_free(&whole);

	/* Latin-1 doubles in UTF-8: the body limit itself must cut. */
	g_string_assign(msg, "Subject: x\nContent-Type: text/plain; charset=iso-8859-1\n\n");
	for (int i = 0; i < 300; i++)
		g_string_append_c(msg, '\xe9');
	struct message_view *mv = parse(msg->str, msg->len, false, 301);
	CHECK(mv != NULL);
	if (mv != NULL) {
		check_view(mv, 301);
		const char *body = message_view_body(mv, &len);
		CHECK_INT(len, 300);	/* "x\n" and 149 two-byte characters */
		CHECK(memcmp(body, "x\n\xc3\xa9", 4) == 0);
		message_view_rawbody(mv, &len);
		CHECK_INT(len, 300);
		message_view_free(&mv);
	}
	g_string_free(msg, TRUE);
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
test_huge_message(void)
{
	size_t size = 25 * 1024 * 1024, len;
	char *msg = malloc(size);
	static const char head[] = "Subject: huge\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
	    "--b\r\n\r\nfirst part\r\n--b\r\nContent-Transfer-Encoding: base64\r\n\r\n";

	CHECK(msg != NULL);
	if (msg == NULL)
		return;
	memcpy(msg, head, sizeof(head) - 1);
	for (size_t i = sizeof(head) - 1; i < size; i++)
		msg[i] = "QUJD\r\n"[(i - (sizeof(head) - 1)) % 78 < 76 ?
		    (i - (sizeof(head) - 1)) % 78 % 4 : (i - (sizeof(head) - 1)) % 78 - 72];
	double t0 = now();
	const char *err;
	struct message_view *mv = message_view_parse(msg, size, 0, &err);
	double t = now() - t0;
	CHECK(mv != NULL);
	if (mv != NULL) {
		check_view(mv, 0);
		message_view_full(mv, &len);
		CHECK_INT(len, MESSAGE_SCAN_LIMIT_DEFAULT);
		const char *body = message_view_body(mv, &len);
		CHECK(strncmp(body, "huge\nfirst part ABCABC", 22) == 0);
		message_view_free(&mv);
	}
	CHECK(t < 5.0);
	free(msg);
}

/* Each part or field costs GMime an object: past a budget the rest is not parsed. */
static void
test_structure_budget(void)
{
	GString *msg = g_string_new("Subject: parts\nContent-Type: multipart/mixed; boundary=b\n\n");
	size_t len;

	for (int i = 0; i < 40000; i++)
		g_string_append_printf(msg, "--b\n\np%d\n", i);
	double t0 = now();
	struct message_view *mv = parse(msg->str, msg->len, false, msg->len * 2);
	double t = now() - t0;
	CHECK(mv != NULL);
	if (mv != NULL) {
		check_view(mv, msg->len * 2);
		const char *raw = message_view_rawbody(mv, &len);
		CHECK(strncmp(raw, "p0\np1\np2\n", 9) == 0);
		CHECK(strstr(raw, "\np9997\n") != NULL);
		CHECK(strstr(raw, "p39999") == NULL);
		message_view_free(&mv);
	}
	CHECK(t < 5.0);
	g_string_free(msg, TRUE);
}

/* Encoded messages are parsed again, but only so many times per message. */
static void
test_reparse_limit(void)
{
	char *m = g_strdup("Subject: level6\n\ndeepest\n");
	size_t len;

	for (int i = 5; i >= 0; i--) {
		gchar *b64 = g_base64_encode((const guchar *)m, strlen(m));
		char *next = g_strdup_printf("Subject: level%d\nContent-Type: message/rfc822\n"
		    "Content-Transfer-Encoding: base64\n\n%s\n", i, b64);
		g_free(b64);
		g_free(m);
		m = next;
	}
	struct message_view *mv = parse(m, strlen(m), false, 0);
	CHECK(mv != NULL);
	if (mv != NULL) {
		check_view(mv, 0);
		CHECK_STR(message_view_body(mv, &len), "level0\n");
		const char *raw = message_view_rawbody(mv, &len);
		CHECK(strncmp(raw, "Subject: level5\nContent-Type: message/rfc822\n", 45) == 0);
		CHECK(strstr(raw, "deepest") == NULL);
		message_view_free(&mv);
	}
	g_free(m);
}

static void
test_errors_and_free(void)
{
	const char *err = "untouched";
	struct message_view *mv = message_view_parse(NULL, 0, 0, &err);
	size_t len;

	CHECK(mv != NULL);
	CHECK_STR(err, "untouched");
	if (mv != NULL) {
		check_view(mv, 0);
		CHECK_STR(message_view_full(mv, &len), "");
		CHECK_INT(message_view_header_count(mv), 0);
		CHECK_INT(message_view_uri_count(mv), 0);
	}
	message_view_free(&mv);
	message_view_free(&mv);
	CHECK(mv == NULL);
	/* full keeps the bytes as received, NUL read as a space */
	mv = message_view_parse("A: b\r\n\r\nx\0y", 11, 0, NULL);
	CHECK(mv != NULL);
	if (mv != NULL) {
		CHECK_STR(message_view_full(mv, &len), "A: b\r\n\r\nx y");
		CHECK_INT(len, 11);
		message_view_free(&mv);
	}
}

/* ---- threads ---- */

static const char thread_msg[] = "Subject: =?utf-8?q?thr=C3=A9ads?=\r\n"
    "Content-Type: multipart/alternative; boundary=x\r\n\r\n--x\r\n"
    "Content-Type: text/plain; charset=windows-1252\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    "caf=E9 http://a.example/\r\n--x\r\nContent-Type: text/html; charset=iso-8859-1\r\n\r\n"
    "<p>caf\xe9 <a href=\"http://b.example/\">b</a></p>\r\n--x--\r\n";

static void *
thread_main(void *arg)
{
	const char *want = arg;
	intptr_t bad = 0;

	for (int i = 0; i < 200; i++) {
		struct message_view *mv = message_view_parse(thread_msg, sizeof(thread_msg) - 1, 0, NULL);
		size_t len;
		if (mv == NULL || strcmp(message_view_body(mv, &len), want) != 0 ||
		    message_view_uri_count(mv) != 2)
			bad++;
		message_view_free(&mv);
	}
	return (void *)bad;
}

static void
test_threads(void)
{
	struct message_view *mv = message_view_parse(thread_msg, sizeof(thread_msg) - 1, 0, NULL);
	pthread_t t[8];
	size_t len;

	CHECK(mv != NULL);
	if (mv == NULL)
		return;
	CHECK_STR(message_view_body(mv, &len), "thr\xc3\xa9" "ads\ncaf\xc3\xa9 http://a.example/\ncaf\xc3\xa9 b\n");
	for (int i = 0; i < 8; i++)
		CHECK(pthread_create(&t[i], NULL, thread_main, (void *)message_view_body(mv, &len)) == 0);
	for (int i = 0; i < 8; i++) {
		void *bad;
		pthread_join(t[i], &bad);
		CHECK(bad == NULL);
	}
	message_view_free(&mv);
}

/* ---- the mime-tricky corpus ---- */

/* testdata_dir - ../shared/testdata beside the repository, or $MOAT_TESTDATA */
static char *
testdata_dir(void)
{
	const char *env = getenv("MOAT_TESTDATA");
	char exe[4096];
	struct stat st;

	if (env != NULL && *env != '\0')
		return g_build_filename(env, "mime-tricky", NULL);
#ifdef MOAT_SRC_RULESDIR
	/* rules/ of the source tree, wherever the build is */
	char *d = g_build_filename(MOAT_SRC_RULESDIR, "..", "..", "shared", "testdata", "mime-tricky", NULL);
	if (stat(d, &st) == 0 && S_ISDIR(st.st_mode))
		return d;
	g_free(d);
#endif
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return NULL;
	exe[n] = '\0';
	char *dir = g_path_get_dirname(exe);
	for (int up = 3; up <= 4; up++) {
		GString *p = g_string_new(dir);
		for (int k = 0; k < up; k++)
			g_string_append(p, "/..");
		g_string_append(p, "/shared/testdata/mime-tricky");
		if (stat(p->str, &st) == 0 && S_ISDIR(st.st_mode)) {
			g_free(dir);
			return g_string_free(p, FALSE);
		}
		g_string_free(p, TRUE);
	}
	g_free(dir);
	return NULL;
}

/* replay_dir - parse every file under path; the number of files */
static int
replay_dir(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int count = 0;

	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char *p = g_build_filename(path, e->d_name, NULL);
		struct stat st;
		gchar *data;
		gsize len;
		if (stat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
			count += replay_dir(p);
		} else if (g_file_get_contents(p, &data, &len, NULL)) {
			int before = test_failures;
			static const size_t limits[] = { 0, 300, 4096 };
			for (size_t i = 0; i < TEST_COUNT(limits); i++) {
				struct message_view *mv = message_view_parse(data, len, limits[i], NULL);
				CHECK(mv != NULL);
				if (mv != NULL)
					check_view(mv, limits[i]);
				message_view_free(&mv);
			}
			if (test_failures != before)
				printf("  in file %s\n", p);
			g_free(data);
			count++;
		}
		g_free(p);
	}
	closedir(d);
	return count;
}

static void
test_mime_tricky_corpus(void)
{
	char *dir = testdata_dir();
	struct stat st;

	if (dir == NULL || stat(dir, &st) != 0) {
		g_free(dir);
		test_skip("../shared/testdata absent");
		return;
	}
	int n = replay_dir(dir);
	printf("  %d files from %s\n", n, dir);
	CHECK(n > 0);
	g_free(dir);
}

int
main(void)
{
	static const struct test_case cases[] = {
		{ "headers", test_headers },
		{ "header_order", test_header_order },
		{ "bodies", test_bodies },
		{ "html", test_html },
		{ "uris", test_uris },
		{ "uri_limit", test_uri_limit },
		{ "scan_limit", test_scan_limit },
		{ "huge_message", test_huge_message },
		{ "structure_budget", test_structure_budget },
		{ "reparse_limit", test_reparse_limit },
		{ "errors_and_free", test_errors_and_free },
		{ "threads", test_threads },
		{ "mime_tricky_corpus", test_mime_tricky_corpus },
	};

	message_view_init();
	int rc = test_main(cases, TEST_COUNT(cases));
	message_view_deinit();
	return rc;
}
