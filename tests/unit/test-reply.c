/*
 * test-reply.c - unit tests for proxy/reply.c: checking backend replies
 * line by line, the wire form relayed to clients, our own replies, the
 * one-line form for logs and the queue id taken from a 250 after DATA.
 * A reply accepted here goes to the client verbatim, so the limits matter.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reply.h"
#include "test.h"

#define S(s) s, sizeof(s) - 1
#define LINES_MAX 6

struct line {
	const char *text;
	size_t len;
};

static const struct {
	const char *name;
	struct line lines[LINES_MAX];	/* all but the last must be REPLY_MORE */
	enum reply_status last;
	int code;
	const char *wire;	/* checked unless last is REPLY_BAD */
} cases[] = {
	{ "single", { { S("250 OK") } }, REPLY_DONE, 250, "250 OK\r\n" },
	{ "multi-line", { { S("250-a") }, { S("250-b") }, { S("250 c") } },
	  REPLY_DONE, 250, "250-a\r\n250-b\r\n250 c\r\n" },
	{ "no text", { { S("250") } }, REPLY_DONE, 250, "250 \r\n" },
	{ "empty continuation", { { S("250-") }, { S("250 ") } },
	  REPLY_DONE, 250, "250-\r\n250 \r\n" },
	{ "bare code ends", { { S("354-a") }, { S("354") } },
	  REPLY_DONE, 354, "354-a\r\n354 \r\n" },
	{ "4xx", { { S("451 4.3.0 Try again later") } },
	  REPLY_DONE, 451, "451 4.3.0 Try again later\r\n" },
	{ "599", { { S("599 x") } }, REPLY_DONE, 599, "599 x\r\n" },
	{ "200", { { S("200 x") } }, REPLY_DONE, 200, "200 x\r\n" },
	{ "continuation pending", { { S("250-PIPELINING") } },
	  REPLY_MORE, 250, "250-PIPELINING\r\n" },
	/* Controls (CR and LF above all) would split the relayed line. */
	{ "controls", { { S("250 a\x01" "b\tc\x7f") } },
	  REPLY_DONE, 250, "250 a b c \r\n" },
	{ "CR LF NUL", { { S("250 a\rb\nc\0d") } },
	  REPLY_DONE, 250, "250 a b c d\r\n" },
	{ "8-bit kept", { { S("250 \xc3\xa9t\xc3\xa9") } },
	  REPLY_DONE, 250, "250 \xc3\xa9t\xc3\xa9\r\n" },
	{ "mixed codes", { { S("250-a") }, { S("251 b") } }, REPLY_BAD, 0, NULL },
	{ "mixed class", { { S("250-a") }, { S("550 b") } }, REPLY_BAD, 0, NULL },
	{ "first digit 1", { { S("199 x") } }, REPLY_BAD, 0, NULL },
	{ "first digit 6", { { S("600 x") } }, REPLY_BAD, 0, NULL },
	{ "first digit 0", { { S("099 x") } }, REPLY_BAD, 0, NULL },
	{ "non-digit", { { S("2x0 OK") } }, REPLY_BAD, 0, NULL },
	{ "non-digit last", { { S("25x OK") } }, REPLY_BAD, 0, NULL },
	{ "8-bit code", { { S("\xb2" "50 OK") } }, REPLY_BAD, 0, NULL },
	{ "too short", { { S("25") } }, REPLY_BAD, 0, NULL },
	{ "empty", { { S("") } }, REPLY_BAD, 0, NULL },
	{ "4th char", { { S("250x") } }, REPLY_BAD, 0, NULL },
	{ "4th char tab", { { S("250\tOK") } }, REPLY_BAD, 0, NULL },
	{ "4th char underscore", { { S("250_OK") } }, REPLY_BAD, 0, NULL },
	{ "four digits", { { S("2500 OK") } }, REPLY_BAD, 0, NULL },
	{ "leading space", { { S(" 250 OK") } }, REPLY_BAD, 0, NULL },
	{ "bad continuation", { { S("250-a") }, { S("250x") } }, REPLY_BAD, 0, NULL },
};

static void
test_table(void)
{
	struct reply r;

	for (size_t i = 0; i < TEST_COUNT(cases); i++) {
		int before = test_failures;
		size_t n = 0;
		enum reply_status st = REPLY_BAD;

		reply_reset(&r);
		while (n < LINES_MAX && cases[i].lines[n].text != NULL) {
			st = reply_add_line(&r, cases[i].lines[n].text, cases[i].lines[n].len);
			n++;
			if (n < LINES_MAX && cases[i].lines[n].text != NULL)
				CHECK_INT(st, REPLY_MORE);
		}
		CHECK_INT(st, cases[i].last);
		if (cases[i].last != REPLY_BAD) {
			CHECK_INT(r.code, cases[i].code);
			CHECK_INT(r.nlines, n);
			CHECK_INT(r.len, strlen(cases[i].wire));
			CHECK_STR(r.wire, cases[i].wire);
		}
		if (test_failures != before)
			printf("  case \"%s\"\n", cases[i].name);
	}
}

/* Fill line with "250-xxx...": code, separator, then 'x' up to len. */
static void
make_line(char *line, size_t len, char sep)
{
	memset(line, 'x', len);
	memcpy(line, "250", 3);
	line[3] = sep;
}

static void
test_line_length(void)
{
	char line[REPLY_LINE_MAX + 2];
	struct reply r;

	reply_reset(&r);
	make_line(line, REPLY_LINE_MAX, ' ');
	CHECK_INT(reply_add_line(&r, line, REPLY_LINE_MAX), REPLY_DONE);
	CHECK_INT(r.len, REPLY_LINE_MAX + 2);
	reply_reset(&r);
	make_line(line, REPLY_LINE_MAX + 1, ' ');
	CHECK_INT(reply_add_line(&r, line, REPLY_LINE_MAX + 1), REPLY_BAD);
	CHECK_INT(r.nlines, 0);
}

static void
test_reply_size(void)
{
	char line[REPLY_LINE_MAX];
	struct reply r;

	/* wire[] keeps a NUL: at most REPLY_MAX - 1 bytes of CRLF lines. */
	reply_reset(&r);
	make_line(line, REPLY_LINE_MAX, '-');
	for (int i = 0; i < 3; i++)
		CHECK_INT(reply_add_line(&r, line, REPLY_LINE_MAX), REPLY_MORE);
	size_t room = REPLY_MAX - 1 - r.len - 2;
	make_line(line, room + 1, ' ');
	CHECK_INT(reply_add_line(&r, line, room + 1), REPLY_BAD);
	CHECK_INT(r.nlines, 3);
	make_line(line, room, ' ');
	CHECK_INT(reply_add_line(&r, line, room), REPLY_DONE);
	CHECK_INT(r.len, REPLY_MAX - 1);
	CHECK_INT(strlen(r.wire), REPLY_MAX - 1);
	CHECK(memcmp(r.wire + r.len - 2, "\r\n", 2) == 0);
}

static void
test_too_many_lines(void)
{
	struct reply r;

	reply_reset(&r);
	for (int i = 0; i < REPLY_LINES_MAX; i++)
		CHECK_INT(reply_add_line(&r, S("250-x")), REPLY_MORE);
	CHECK_INT(r.nlines, REPLY_LINES_MAX);
	CHECK_INT(reply_add_line(&r, S("250 x")), REPLY_BAD);
	reply_reset(&r);
	for (int i = 0; i < REPLY_LINES_MAX - 1; i++)
		CHECK_INT(reply_add_line(&r, S("250-x")), REPLY_MORE);
	CHECK_INT(reply_add_line(&r, S("250 x")), REPLY_DONE);
}

static void
test_reset(void)
{
	struct reply r;

	reply_reset(&r);
	CHECK_INT(reply_add_line(&r, S("250-a")), REPLY_MORE);
	reply_reset(&r);
	CHECK_INT(r.code, 0);
	CHECK_INT(r.nlines, 0);
	CHECK_INT(r.len, 0);
	CHECK_STR(r.wire, "");
	/* After a reset a different code is a new reply, not a mixed one. */
	CHECK_INT(reply_add_line(&r, S("550 no")), REPLY_DONE);
	CHECK_STR(r.wire, "550 no\r\n");
}

/* Builds a reply from NULL-terminated lines; all must be accepted. */
static void
build(struct reply *r, const char *const *lines)
{
	reply_reset(r);
	for (size_t i = 0; lines[i] != NULL; i++)
		CHECK(reply_add_line(r, lines[i], strlen(lines[i])) != REPLY_BAD);
}

static void
test_oneline(void)
{
	static const char *const ehlo[] = { "250-mx.example.com", "250-PIPELINING",
	    "250 8BITMIME", NULL };
	static const char *const one[] = { "550 5.1.1 No such user", NULL };
	static const char *const bare[] = { "250", NULL };
	static const char *const empty[] = { "250-", "250-", "250 end", NULL };
	struct reply r;
	char buf[128];

	build(&r, ehlo);
	reply_oneline(&r, buf, sizeof(buf));
	CHECK_STR(buf, "250 mx.example.com PIPELINING 8BITMIME");
	build(&r, one);
	reply_oneline(&r, buf, sizeof(buf));
	CHECK_STR(buf, "550 5.1.1 No such user");
	build(&r, bare);
	reply_oneline(&r, buf, sizeof(buf));
	CHECK_STR(buf, "250 ");
	build(&r, empty);
	reply_oneline(&r, buf, sizeof(buf));
	CHECK_STR(buf, "250   end");

	/* Truncation keeps the NUL inside size, and size 0 writes nothing. */
	build(&r, ehlo);
	reply_oneline(&r, buf, 5);
	CHECK_STR(buf, "250 ");
	reply_oneline(&r, buf, 1);
	CHECK_STR(buf, "");
	memset(buf, '#', sizeof(buf));
	reply_oneline(&r, buf, 0);
	CHECK(buf[0] == '#');
	reply_reset(&r);
	reply_oneline(&r, buf, sizeof(buf));
	CHECK_STR(buf, "");
}

static void
test_line_text(void)
{
	static const char *const three[] = { "250-a", "250-bc", "250 ", NULL };
	static const char *const bare[] = { "250", NULL };
	struct reply r;
	const char *t;

	build(&r, three);
	CHECK_INT(reply_line_text(&r, 0, &t), 1);
	CHECK(memcmp(t, "a", 1) == 0);
	CHECK_INT(reply_line_text(&r, 1, &t), 2);
	CHECK(memcmp(t, "bc", 2) == 0);
	CHECK_INT(reply_line_text(&r, 2, &t), 0);
	CHECK_INT(reply_line_text(&r, 3, &t), -1);
	CHECK_INT(reply_line_text(&r, (size_t)-1, &t), -1);
	build(&r, bare);
	CHECK_INT(reply_line_text(&r, 0, &t), 0);
	CHECK_INT(reply_line_text(&r, 1, &t), -1);
	reply_reset(&r);
	CHECK_INT(reply_line_text(&r, 0, &t), -1);
}

static void
test_set(void)
{
	struct reply r;
	const char *t;
	char buf[64];

	reply_set(&r, 451, "4.4.1", "Try again later");
	CHECK_STR(r.wire, "451 4.4.1 Try again later\r\n");
	CHECK_INT(r.len, strlen(r.wire));
	CHECK_INT(r.code, 451);
	CHECK_INT(r.nlines, 1);
	CHECK_INT(reply_line_text(&r, 0, &t), strlen("4.4.1 Try again later"));
	reply_oneline(&r, buf, sizeof(buf));
	CHECK_STR(buf, "451 4.4.1 Try again later");

	reply_set(&r, 250, NULL, "OK");
	CHECK_STR(r.wire, "250 OK\r\n");
	CHECK_INT(r.len, 8);
	CHECK_INT(r.code, 250);
	reply_set(&r, 250, NULL, "");
	CHECK_STR(r.wire, "250 \r\n");

	/* Too long for wire[]: cut, but still one CRLF-terminated line. */
	char *text = malloc(2 * REPLY_MAX);
	if (text == NULL)
		abort();
	memset(text, 'x', 2 * REPLY_MAX - 1);
	text[2 * REPLY_MAX - 1] = '\0';
	reply_set(&r, 554, "5.0.0", text);
	CHECK_INT(r.len, REPLY_MAX - 1);
	CHECK_INT(strlen(r.wire), REPLY_MAX - 1);
	CHECK(strncmp(r.wire, "554 5.0.0 xxx", 13) == 0);
	CHECK(memcmp(r.wire + r.len - 2, "\r\n", 2) == 0);
	CHECK(memchr(r.wire, '\r', r.len) == r.wire + r.len - 2);
	CHECK_INT(reply_line_text(&r, 0, &t), REPLY_MAX - 1 - 6);
	CHECK_INT(reply_line_text(&r, 1, &t), -1);
	free(text);
}

static const struct {
	const char *name;
	const char *lines[4];
	size_t bufsize;
	const char *id;	/* NULL: none */
} qid_cases[] = {
	{ "postfix", { "250 2.0.0 Ok: queued as 4XyZ1k2Abc" }, 64, "4XyZ1k2Abc" },
	{ "exim", { "250 OK id=1rABCd-000123-Xy" }, 64, "1rABCd-000123-Xy" },
	{ "postfix long id", { "250 2.0.0 Ok: queued as 4Wc9Zq1yz3z5Jx7" }, 64,
	  "4Wc9Zq1yz3z5Jx7" },
	{ "second line", { "250-Thanks", "250 2.0.0 Ok: queued as ABC123" }, 64, "ABC123" },
	{ "stops at space", { "250 OK id=abc def" }, 64, "abc" },
	{ "queued-as wins", { "250 queued as Q1 (msgid=M1)" }, 64, "Q1" },
	{ "exact fit", { "250 2.0.0 Ok: queued as 4XyZ1k2Abc" }, 11, "4XyZ1k2Abc" },
	{ "too small", { "250 2.0.0 Ok: queued as 4XyZ1k2Abc" }, 10, NULL },
	{ "zero size", { "250 2.0.0 Ok: queued as 4XyZ1k2Abc" }, 0, NULL },
	{ "none", { "250 2.0.0 Ok" }, 64, NULL },
	{ "empty id", { "250 2.0.0 Ok: queued as " }, 64, NULL },
	{ "punctuation id", { "250 id=<x@y>" }, 64, NULL },
	{ "not 2xx", { "451 4.3.0 queued as X1 but lost" }, 64, NULL },
	{ "5xx exim", { "550 id=1rABCd-000123-Xy rejected" }, 64, NULL },
	/* Sendmail puts the id first; the comment in reply.c says so, the code does not. */
	{ "sendmail", { "250 2.0.0 x1ABCdef012345 Message accepted for delivery" }, 64, NULL },
};

static void
test_queue_id(void)
{
	struct reply r;

	for (size_t i = 0; i < TEST_COUNT(qid_cases); i++) {
		char buf[64];
		int before = test_failures;

		build(&r, qid_cases[i].lines);
		memset(buf, '#', sizeof(buf));
		bool found = reply_queue_id(&r, buf, qid_cases[i].bufsize);
		CHECK_INT(found, qid_cases[i].id != NULL);
		if (found && qid_cases[i].id != NULL)
			CHECK_STR(buf, qid_cases[i].id);
		for (size_t j = qid_cases[i].bufsize; j < sizeof(buf); j++)
			CHECK(buf[j] == '#');
		if (test_failures != before)
			printf("  case \"%s\"\n", qid_cases[i].name);
	}
	reply_reset(&r);
	char buf[16];
	CHECK(!reply_queue_id(&r, buf, sizeof(buf)));
}

static const struct test_case tests[] = {
	{ "table", test_table },
	{ "line_length", test_line_length },
	{ "reply_size", test_reply_size },
	{ "too_many_lines", test_too_many_lines },
	{ "reset", test_reset },
	{ "oneline", test_oneline },
	{ "line_text", test_line_text },
	{ "set", test_set },
	{ "queue_id", test_queue_id },
};

int
main(void)
{
	return test_main(tests, TEST_COUNT(tests));
}
