/*
 * test-smtp-parse.c - unit tests for proxy/smtp_parse.c: verbs, MAIL/RCPT
 * paths and their esmtp-params, HELO arguments and xtext encoding.
 * Tables pin down what a client may send and what reaches the backend, so
 * a change of leniency (or strictness) in the parser shows up here first.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "smtp_parse.h"
#include "test.h"

/* Length from the literal, so cases may hold NUL bytes. */
#define S(s) s, sizeof(s) - 1

static const struct {
	const char *line;
	size_t len;
	enum smtp_verb verb;
	const char *args;
} verb_cases[] = {
	{ S("HELO example.com"), SMTP_VERB_HELO, "example.com" },
	{ S("ehlo example.com"), SMTP_VERB_EHLO, "example.com" },
	{ S("MaIl FROM:<a@b>"), SMTP_VERB_MAIL, "FROM:<a@b>" },
	{ S("RCPT TO:<a@b>"), SMTP_VERB_RCPT, "TO:<a@b>" },
	{ S("DATA"), SMTP_VERB_DATA, "" },
	{ S("data   "), SMTP_VERB_DATA, "" },
	{ S("RSET"), SMTP_VERB_RSET, "" },
	{ S("NOOP a \t"), SMTP_VERB_NOOP, "a" },
	{ S("quit"), SMTP_VERB_QUIT, "" },
	{ S("VRFY root"), SMTP_VERB_VRFY, "root" },
	{ S("EXPN staff"), SMTP_VERB_EXPN, "staff" },
	{ S("HELP"), SMTP_VERB_HELP, "" },
	{ S("StartTLS"), SMTP_VERB_STARTTLS, "" },
	{ S("AUTH PLAIN AGEAYg=="), SMTP_VERB_AUTH, "PLAIN AGEAYg==" },
	{ S("BDAT 100 LAST"), SMTP_VERB_BDAT, "100 LAST" },
	{ S("ETRN example.com"), SMTP_VERB_ETRN, "example.com" },
	/* Postfix tolerates extra spaces; so must we, or clients break. */
	{ S("MAIL    FROM:<a@b>   "), SMTP_VERB_MAIL, "FROM:<a@b>" },
	{ S("HELO  a b"), SMTP_VERB_HELO, "a b" },
	{ S("XYZZY"), SMTP_VERB_UNKNOWN, "" },
	{ S("XYZZY plugh"), SMTP_VERB_UNKNOWN, "plugh" },
	{ S(""), SMTP_VERB_UNKNOWN, "" },
	{ S(" MAIL FROM:<a@b>"), SMTP_VERB_UNKNOWN, "MAIL FROM:<a@b>" },
	{ S("MAILFROM:<a@b>"), SMTP_VERB_UNKNOWN, "" },
	{ S("DAT"), SMTP_VERB_UNKNOWN, "" },
	{ S("DATAX"), SMTP_VERB_UNKNOWN, "" },
	/* Only a space ends the verb: a tab makes it unknown, not DATA. */
	{ S("DATA\t"), SMTP_VERB_UNKNOWN, "" },
	{ S("QU\0T"), SMTP_VERB_UNKNOWN, "" },
	{ S("QUIT\0"), SMTP_VERB_UNKNOWN, "" },
};

static void
test_verbs(void)
{
	for (size_t i = 0; i < TEST_COUNT(verb_cases); i++) {
		struct smtp_command cmd;
		const char *line = verb_cases[i].line;
		size_t len = verb_cases[i].len;

		smtp_command_parse(line, len, &cmd);
		CHECK_INT(cmd.verb, verb_cases[i].verb);
		CHECK_MEM(cmd.args, cmd.args_len, verb_cases[i].args,
		    strlen(verb_cases[i].args));
		/* args must point into the line: the caller relays it as is. */
		CHECK(cmd.args >= line && cmd.args + cmd.args_len <= line + len);
		if (test_failures)
			printf("  case %zu: \"%s\"\n", i, line);
	}
}

static void
test_verb_names(void)
{
	static const char *const names[SMTP_VERB_COUNT] = {
		"UNKNOWN", "HELO", "EHLO", "MAIL", "RCPT", "DATA", "RSET",
		"NOOP", "QUIT", "VRFY", "EXPN", "HELP", "STARTTLS", "AUTH",
		"BDAT", "ETRN",
	};
	for (int v = 0; v < SMTP_VERB_COUNT; v++) {
		CHECK_STR(smtp_verb_name((enum smtp_verb)v), names[v]);
		/* Every name must parse back to its verb (except UNKNOWN). */
		struct smtp_command cmd;
		smtp_command_parse(names[v], strlen(names[v]), &cmd);
		CHECK_INT(cmd.verb, v == 0 ? SMTP_VERB_UNKNOWN : v);
	}
	CHECK_STR(smtp_verb_name(SMTP_VERB_COUNT), "UNKNOWN");
	CHECK_STR(smtp_verb_name((enum smtp_verb)-1), "UNKNOWN");
}

/* MAIL takes a null reverse-path, RCPT does not. */
#define F "FROM", true
#define T "TO", false

static const struct {
	const char *args;
	size_t len;
	const char *prefix;
	bool allow_null;
	enum smtp_path_error err;
	const char *address;	/* checked only when err is SMTP_PATH_OK */
	bool is_null;
	bool has_8bit;
	size_t nparams;
} path_cases[] = {
	{ S("FROM:<a@b>"), F, SMTP_PATH_OK, "a@b", false, false, 0 },
	{ S("from:<a@b>"), F, SMTP_PATH_OK, "a@b", false, false, 0 },
	{ S("FROM:<>"), F, SMTP_PATH_OK, "", true, false, 0 },
	{ S("FROM:<> BODY=8BITMIME"), F, SMTP_PATH_OK, "", true, false, 1 },
	{ S("FROM: <a@b>"), F, SMTP_PATH_OK, "a@b", false, false, 0 },
	{ S("FROM:   <a@b>"), F, SMTP_PATH_OK, "a@b", false, false, 0 },
	{ S("FROM:a@b"), F, SMTP_PATH_OK, "a@b", false, false, 0 },
	{ S("FROM:a@b SIZE=10"), F, SMTP_PATH_OK, "a@b", false, false, 1 },
	{ S("FROM:<@x,@y:u@d>"), F, SMTP_PATH_OK, "u@d", false, false, 0 },
	{ S("FROM:@x:u@d"), F, SMTP_PATH_OK, "u@d", false, false, 0 },
	{ S("FROM:<\"john doe\"@d>"), F, SMTP_PATH_OK, "\"john doe\"@d", false, false, 0 },
	{ S("FROM:<\"a>b\"@d>"), F, SMTP_PATH_OK, "\"a>b\"@d", false, false, 0 },
	{ S("FROM:<\"a\\\"b>\"@d>"), F, SMTP_PATH_OK, "\"a\\\"b>\"@d", false, false, 0 },
	{ S("FROM:<\"a@b\">"), F, SMTP_PATH_OK, "\"a@b\"", false, false, 0 },
	{ S("FROM:<j\xc3\xbcrgen@b\xc3\xbc" "cher.de>"), F, SMTP_PATH_OK,
	  "j\xc3\xbcrgen@b\xc3\xbc" "cher.de", false, true, 0 },
	{ S("FROM:<\"\xc3\xa9 x\"@d>"), F, SMTP_PATH_OK, "\"\xc3\xa9 x\"@d", false, true, 0 },
	{ S("FROM:<a@[1.2.3.4]>"), F, SMTP_PATH_OK, "a@[1.2.3.4]", false, false, 0 },
	{ S("FROM:<a@[IPv6:::1]>"), F, SMTP_PATH_OK, "a@[IPv6:::1]", false, false, 0 },
	{ S("FROM:<a@b..c>"), F, SMTP_PATH_OK, "a@b..c", false, false, 0 },
	/* Brackets, prefix and separators. */
	{ S("FROM:<\"a@d>"), F, SMTP_PATH_SYNTAX, NULL, false, false, 0 },
	{ S("FROM:<a@b"), F, SMTP_PATH_SYNTAX, NULL, false, false, 0 },
	{ S("FROM:<a@b>x"), F, SMTP_PATH_SYNTAX, NULL, false, false, 0 },
	{ S("FROM:<a@b>\tSIZE=1"), F, SMTP_PATH_SYNTAX, NULL, false, false, 0 },
	{ S("FROM:"), F, SMTP_PATH_SYNTAX, NULL, false, false, 0 },
	{ S("FROM: "), F, SMTP_PATH_SYNTAX, NULL, false, false, 0 },
	{ S("FROM"), F, SMTP_PATH_SYNTAX, NULL, false, false, 0 },
	{ S(""), F, SMTP_PATH_SYNTAX, NULL, false, false, 0 },
	{ S("FROM <a@b>"), F, SMTP_PATH_SYNTAX, NULL, false, false, 0 },
	{ S("FROMX:<a@b>"), F, SMTP_PATH_SYNTAX, NULL, false, false, 0 },
	{ S("TO:<a@b>"), F, SMTP_PATH_SYNTAX, NULL, false, false, 0 },
	{ S("FROM:<a@b>>"), F, SMTP_PATH_SYNTAX, NULL, false, false, 0 },
	/* Malformed addresses. */
	{ S("FROM:<@x>"), F, SMTP_PATH_BAD_ADDRESS, NULL, false, false, 0 },
	{ S("FROM:<@b>"), F, SMTP_PATH_BAD_ADDRESS, NULL, false, false, 0 },
	{ S("FROM:<a@>"), F, SMTP_PATH_BAD_ADDRESS, NULL, false, false, 0 },
	{ S("FROM:<a@[]>"), F, SMTP_PATH_BAD_ADDRESS, NULL, false, false, 0 },
	{ S("FROM:<a@[1.2.3.4>"), F, SMTP_PATH_BAD_ADDRESS, NULL, false, false, 0 },
	/* Quotes do not quote in a literal; they must not hide a space or '>'. */
	{ S("FROM:<a@[\"x y\"]>"), F, SMTP_PATH_BAD_ADDRESS, NULL, false, false, 0 },
	{ S("FROM:<a@[\">\"]>"), F, SMTP_PATH_BAD_ADDRESS, NULL, false, false, 0 },
	{ S("FROM:<a@[a]b]>"), F, SMTP_PATH_BAD_ADDRESS, NULL, false, false, 0 },
	{ S("FROM:<a@[\xc3\xa9]>"), F, SMTP_PATH_BAD_ADDRESS, NULL, false, false, 0 },
	{ S("FROM:<a@[tag:x-y!z]>"), F, SMTP_PATH_OK, "a@[tag:x-y!z]", false, false, 0 },
	{ S("FROM:<a@b c>"), F, SMTP_PATH_BAD_ADDRESS, NULL, false, false, 0 },
	{ S("FROM:<a b@c>"), F, SMTP_PATH_BAD_ADDRESS, NULL, false, false, 0 },
	{ S("FROM:<a<b@c>"), F, SMTP_PATH_BAD_ADDRESS, NULL, false, false, 0 },
	{ S("FROM:<a,b@c>"), F, SMTP_PATH_BAD_ADDRESS, NULL, false, false, 0 },
	{ S("FROM:<a;b@c>"), F, SMTP_PATH_BAD_ADDRESS, NULL, false, false, 0 },
	{ S("FROM:<a(b)@c>"), F, SMTP_PATH_BAD_ADDRESS, NULL, false, false, 0 },
	{ S("FROM:<a\\b@c>"), F, SMTP_PATH_BAD_ADDRESS, NULL, false, false, 0 },
	{ S("FROM:<\"a@c>\">"), F, SMTP_PATH_OK, "\"a@c>\"", false, false, 0 },
	{ S("FROM:<a@b!c>"), F, SMTP_PATH_BAD_ADDRESS, NULL, false, false, 0 },
	{ S("FROM:a@b>"), F, SMTP_PATH_BAD_ADDRESS, NULL, false, false, 0 },
	/* Control characters must never reach a log line or the backend. */
	{ S("FROM:<a\x01@b>"), F, SMTP_PATH_BAD_ADDRESS, NULL, false, false, 0 },
	{ S("FROM:<a\x7f@b>"), F, SMTP_PATH_BAD_ADDRESS, NULL, false, false, 0 },
	{ S("FROM:<a\t@b>"), F, SMTP_PATH_BAD_ADDRESS, NULL, false, false, 0 },
	{ S("FROM:<a\r@b>"), F, SMTP_PATH_BAD_ADDRESS, NULL, false, false, 0 },
	{ S("FROM:<a@b\n>"), F, SMTP_PATH_BAD_ADDRESS, NULL, false, false, 0 },
	{ S("FROM:<a\0@b>"), F, SMTP_PATH_BAD_ADDRESS, NULL, false, false, 0 },
	{ S("FROM:<\"a\x01\"@b>"), F, SMTP_PATH_BAD_ADDRESS, NULL, false, false, 0 },
	/* A quoted-pair must not smuggle a control past the check either. */
	{ S("TO:<\"a\\\x01\"@b>"), T, SMTP_PATH_BAD_ADDRESS, NULL, false, false, 0 },
	{ S("TO:<\"\\\0\"@b>"), T, SMTP_PATH_BAD_ADDRESS, NULL, false, false, 0 },
	{ S("TO:<\"\\\r\"@b>"), T, SMTP_PATH_BAD_ADDRESS, NULL, false, false, 0 },
	{ S("TO:<\"a\\ b\"@c>"), T, SMTP_PATH_OK, "\"a\\ b\"@c", false, false, 0 },
	{ S("TO:<\"\\\xe9\"@b>"), T, SMTP_PATH_OK, "\"\\\xe9\"@b", false, true, 0 },
	/* RCPT: no null path, but postmaster alone (RFC 5321 4.1.1.3). */
	{ S("TO:<a@b>"), T, SMTP_PATH_OK, "a@b", false, false, 0 },
	{ S("to: <a@b>"), T, SMTP_PATH_OK, "a@b", false, false, 0 },
	{ S("TO:<>"), T, SMTP_PATH_BAD_ADDRESS, NULL, false, false, 0 },
	{ S("TO:<postmaster>"), T, SMTP_PATH_OK, "postmaster", false, false, 0 },
	{ S("TO:<Postmaster>"), T, SMTP_PATH_OK, "Postmaster", false, false, 0 },
	{ S("TO:postmaster"), T, SMTP_PATH_OK, "postmaster", false, false, 0 },
	{ S("TO:<a@b> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a@b"), T, SMTP_PATH_OK,
	  "a@b", false, false, 2 },
	{ S("FROM:<a@b>"), T, SMTP_PATH_SYNTAX, NULL, false, false, 0 },
	/* esmtp-params (RFC 1869 section 4.1.2). */
	{ S("FROM:<a@b> SIZE=100 BODY=8BITMIME"), F, SMTP_PATH_OK, "a@b", false, false, 2 },
	{ S("FROM:<a@b> SMTPUTF8"), F, SMTP_PATH_OK, "a@b", false, false, 1 },
	{ S("FROM:<a@b>  SIZE=1   SMTPUTF8  "), F, SMTP_PATH_OK, "a@b", false, false, 2 },
	{ S("FROM:<a@b> X-Y=1"), F, SMTP_PATH_OK, "a@b", false, false, 1 },
	{ S("FROM:<a@b> ENVID=\xc3\xa9"), F, SMTP_PATH_OK, "a@b", false, false, 1 },
	{ S("FROM:<a@b> =x"), F, SMTP_PATH_BAD_PARAM, NULL, false, false, 0 },
	{ S("FROM:<a@b> SIZE="), F, SMTP_PATH_BAD_PARAM, NULL, false, false, 0 },
	{ S("FROM:<a@b> SIZE= 1"), F, SMTP_PATH_BAD_PARAM, NULL, false, false, 0 },
	{ S("FROM:<a@b> SIZE==1"), F, SMTP_PATH_BAD_PARAM, NULL, false, false, 0 },
	{ S("FROM:<a@b> SIZE=1=2"), F, SMTP_PATH_BAD_PARAM, NULL, false, false, 0 },
	{ S("FROM:<a@b> SIZE:1"), F, SMTP_PATH_BAD_PARAM, NULL, false, false, 0 },
	{ S("FROM:<a@b> -X"), F, SMTP_PATH_BAD_PARAM, NULL, false, false, 0 },
	{ S("FROM:<a@b> SIZE=1\t"), F, SMTP_PATH_BAD_PARAM, NULL, false, false, 0 },
	{ S("FROM:<a@b> ENVID=a\x01z"), F, SMTP_PATH_BAD_PARAM, NULL, false, false, 0 },
	{ S("FROM:<a@b> ENVID=a\x7fz"), F, SMTP_PATH_BAD_PARAM, NULL, false, false, 0 },
	{ S("FROM:<a@b> ENVID=a\0z"), F, SMTP_PATH_BAD_PARAM, NULL, false, false, 0 },
	{ S("FROM:a@b =x"), F, SMTP_PATH_BAD_PARAM, NULL, false, false, 0 },
	{ S("FROM:<a@b> A B C D E F G H I J K L M N O P"), F, SMTP_PATH_OK,
	  "a@b", false, false, SMTP_PARAMS_MAX },
	{ S("FROM:<a@b> A B C D E F G H I J K L M N O P Q"), F,
	  SMTP_PATH_TOO_MANY_PARAMS, NULL, false, false, 0 },
};

static void
test_paths(void)
{
	for (size_t i = 0; i < TEST_COUNT(path_cases); i++) {
		struct smtp_path path;
		int before = test_failures;
		enum smtp_path_error err = smtp_path_parse(path_cases[i].args,
		    path_cases[i].len, path_cases[i].prefix,
		    path_cases[i].allow_null, &path);

		CHECK_INT(err, path_cases[i].err);
		if (err == SMTP_PATH_OK && path_cases[i].err == SMTP_PATH_OK) {
			CHECK_STR(path.address, path_cases[i].address);
			CHECK_INT(path.is_null, path_cases[i].is_null);
			CHECK_INT(path.has_8bit, path_cases[i].has_8bit);
			CHECK_INT(path.nparams, path_cases[i].nparams);
		}
		if (test_failures != before)
			printf("  case %zu: \"%s\"\n", i, path_cases[i].args);
	}
}

static void
test_params(void)
{
	static const char args[] = "FROM:<a@b> SIZE=100 body=8BITMIME SMTPUTF8";
	struct smtp_path path;

	CHECK_INT(smtp_path_parse(args, strlen(args), "FROM", true, &path), SMTP_PATH_OK);
	CHECK_INT(path.nparams, 3);
	/* Parameters point into args: the session relays them verbatim. */
	for (size_t i = 0; i < path.nparams; i++) {
		CHECK(path.params[i].keyword >= args &&
		    path.params[i].keyword + path.params[i].keyword_len <= args + strlen(args));
	}
	CHECK_MEM(path.params[0].keyword, path.params[0].keyword_len, "SIZE", 4);
	CHECK_MEM(path.params[0].value, path.params[0].value_len, "100", 3);
	CHECK_MEM(path.params[1].keyword, path.params[1].keyword_len, "body", 4);
	CHECK_MEM(path.params[1].value, path.params[1].value_len, "8BITMIME", 8);
	CHECK_MEM(path.params[2].keyword, path.params[2].keyword_len, "SMTPUTF8", 8);
	CHECK(path.params[2].value == NULL);
	CHECK_INT(path.params[2].value_len, 0);

	CHECK(smtp_param_is(&path.params[0], "size"));
	CHECK(smtp_param_is(&path.params[1], "BODY"));
	CHECK(smtp_param_is(&path.params[2], "SmtpUtf8"));
	CHECK(!smtp_param_is(&path.params[0], "SIZ"));
	CHECK(!smtp_param_is(&path.params[0], "SIZES"));
	CHECK(!smtp_param_is(&path.params[0], ""));
}

/* Builds "TO:<" + n x 'a' + "@b.cd>", optionally with a source route. */
static size_t
long_path(char *buf, size_t size, size_t local, bool route)
{
	size_t o = (size_t)snprintf(buf, size, "TO:<%s", route ? "@relay.example:" : "");
	memset(buf + o, 'a', local);
	o += local;
	o += (size_t)snprintf(buf + o, size - o, "@b.cd> NOTIFY=NEVER");
	return o;
}

static void
test_path_length(void)
{
	char buf[2 * SMTP_PATH_MAX];
	struct smtp_path path;
	size_t n;

	/* "@b.cd" is 5 octets: SMTP_PATH_MAX - 5 of local part is the limit. */
	n = long_path(buf, sizeof(buf), SMTP_PATH_MAX - 5, false);
	CHECK_INT(smtp_path_parse(buf, n, "TO", false, &path), SMTP_PATH_OK);
	CHECK_INT(strlen(path.address), SMTP_PATH_MAX);
	CHECK_INT(path.nparams, 1);
	n = long_path(buf, sizeof(buf), SMTP_PATH_MAX - 4, false);
	CHECK_INT(smtp_path_parse(buf, n, "TO", false, &path), SMTP_PATH_TOO_LONG);
	/* A source route is dropped, so it does not count against the limit. */
	n = long_path(buf, sizeof(buf), SMTP_PATH_MAX - 5, true);
	CHECK_INT(smtp_path_parse(buf, n, "TO", false, &path), SMTP_PATH_OK);
	CHECK_INT(strlen(path.address), SMTP_PATH_MAX);
	n = long_path(buf, sizeof(buf), SMTP_PATH_MAX + 100, false);
	CHECK_INT(smtp_path_parse(buf, n, "TO", false, &path), SMTP_PATH_TOO_LONG);
}

static const struct {
	const char *arg;
	size_t len;
	bool valid;
} helo_cases[] = {
	{ S("example.com"), true },
	{ S("[192.0.2.1]"), true },
	{ S("[IPv6:2001:db8::1]"), true },
	{ S("b\xc3\xbc" "cher.de"), true },
	{ S("localhost"), true },
	{ S(""), false },
	{ S("a b"), false },
	{ S("a\tb"), false },
	{ S("a\x7f"), false },
	{ S("a\x01"), false },
	{ S("a\0b"), false },
	{ S("a\r\n"), false },
};

static void
test_helo(void)
{
	char name[SMTP_DOMAIN_MAX + 1];

	for (size_t i = 0; i < TEST_COUNT(helo_cases); i++) {
		int before = test_failures;
		CHECK_INT(smtp_helo_valid(helo_cases[i].arg, helo_cases[i].len),
		    helo_cases[i].valid);
		if (test_failures != before)
			printf("  case %zu: \"%s\"\n", i, helo_cases[i].arg);
	}
	memset(name, 'h', sizeof(name));
	CHECK(smtp_helo_valid(name, SMTP_DOMAIN_MAX));
	CHECK(!smtp_helo_valid(name, SMTP_DOMAIN_MAX + 1));
}

static const struct {
	const char *in;
	const char *out;
} xtext_cases[] = {
	{ "", "" },
	{ "abc", "abc" },
	{ "a+b", "a+2Bb" },
	{ "a=b", "a+3Db" },
	{ "a b", "a+20b" },
	{ "\t", "+09" },
	{ "\x7f", "+7F" },
	{ "\xc3\xa9", "+C3+A9" },
	{ "!~[]<>\"\\", "!~[]<>\"\\" },
	{ "[IPv6:::1]", "[IPv6:::1]" },
	{ "++", "+2B+2B" },
};

static void
test_xtext(void)
{
	char out[64];

	for (size_t i = 0; i < TEST_COUNT(xtext_cases); i++) {
		int before = test_failures;
		memset(out, 'X', sizeof(out));
		CHECK_INT(smtp_xtext_encode(xtext_cases[i].in, out, sizeof(out)),
		    strlen(xtext_cases[i].out));
		CHECK_STR(out, xtext_cases[i].out);
		if (test_failures != before)
			printf("  case %zu\n", i);
	}
}

static const struct {
	const char *in;
	size_t outsize;
	int want;	/* -1: does not fit */
} xtext_size_cases[] = {
	{ "", 0, -1 },
	{ "", 1, 0 },
	{ "abc", 3, -1 },
	{ "abc", 4, 3 },
	{ "+", 3, -1 },
	{ "+", 4, 3 },
	{ "a+", 4, -1 },
	{ "a+", 5, 4 },
	{ "+a", 4, -1 },
	{ "+a", 5, 4 },
	{ "\xff\xff", 6, -1 },
	{ "\xff\xff", 7, 6 },
};

static void
test_xtext_size(void)
{
	for (size_t i = 0; i < TEST_COUNT(xtext_size_cases); i++) {
		char out[16];
		size_t size = xtext_size_cases[i].outsize;
		int before = test_failures;

		memset(out, '#', sizeof(out));
		int n = smtp_xtext_encode(xtext_size_cases[i].in, out, size);
		CHECK_INT(n, xtext_size_cases[i].want);
		/* Nothing may be written past outsize, fit or not. */
		for (size_t j = size; j < sizeof(out); j++)
			CHECK(out[j] == '#');
		if (n >= 0)
			CHECK_INT(strlen(out), n);
		if (test_failures != before)
			printf("  case %zu\n", i);
	}
}

static const struct test_case tests[] = {
	{ "verbs", test_verbs },
	{ "verb_names", test_verb_names },
	{ "paths", test_paths },
	{ "params", test_params },
	{ "path_length", test_path_length },
	{ "helo", test_helo },
	{ "xtext", test_xtext },
	{ "xtext_size", test_xtext_size },
};

int
main(void)
{
	return test_main(tests, TEST_COUNT(tests));
}
