/*
 * test-ruleset.c - the rule engine: loading (golden files), meta expressions,
 * evaluation against real message views, limits, threads, stock SA rules.
 * The prefilters are tested in test-prefilter.c.
 *
 * tests/rules/golden/NAME.rules loads to the report lines and stats line in
 * NAME.expected; the directory is $MOAT_SRCDIR/tests/rules/golden, else
 * ../../tests/rules/golden from this executable.  After a deliberate change,
 * run with MOAT_UPDATE_GOLDEN=1 (rewrites every .expected), review the diff.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <glob.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rules-fixture.h"
#include "test.h"

/* ---- golden files ---- */

/* golden_one - load dir/name and compare with its .expected */
static void
golden_one(const char *dir, const char *name, bool update)
{
	struct reports rep = { .strip = dir };
	struct ruleset_stats st;
	char path[PATH_MAX + 256], expected_path[PATH_MAX + 256], got[sizeof(rep.text) + 512];
	const char *paths[1] = { path };
	struct ruleset *rs;
	char *want;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(expected_path, sizeof(expected_path), "%.*s.expected",
	    (int)(strlen(path) - strlen(".rules")), path);
	rs = ruleset_load(paths, 1, collect, &rep, &st);
	snprintf(got, sizeof(got), "%sstats: %s files=%u rules=%u header=%u body=%u rawbody=%u "
	    "uri=%u full=%u meta=%u unsupported=%u errors=%u\n", rep.text,
	    rs != NULL ? "loaded" : "failed", st.files, st.rules, st.header, st.body, st.rawbody,
	    st.uri, st.full, st.meta, st.unsupported, st.errors);
	CHECK(rs != NULL || st.errors > 0);
	CHECK_INT(st.errors, rep.fatal);
	ruleset_unref(&rs);
	if (update) {
		FILE *fp = fopen(expected_path, "w");
		CHECK(fp != NULL);
		if (fp != NULL) {
			fputs(got, fp);
			fclose(fp);
		}
		printf("  updated %s\n", expected_path);
		return;
	}
	if ((want = read_text(expected_path, NULL)) == NULL) {
		printf("  %s: missing (MOAT_UPDATE_GOLDEN=1 writes it)\n", expected_path);
		test_failures++;
		return;
	}
	if (strcmp(got, want) != 0) {
		size_t i = 0, start = 0;
		int line = 1;
		while (got[i] == want[i] && got[i] != '\0') {
			if (got[i++] == '\n') {
				line++;
				start = i;
			}
		}
		printf("  %s differs at line %d:\n    got:  %.*s\n    want: %.*s\n", name, line,
		    (int)strcspn(got + start, "\n"), got + start,
		    (int)strcspn(want + start, "\n"), want + start);
		test_failures++;
	}
	free(want);
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
test_golden(void)
{
	char dir[PATH_MAX];
	char *names[256];
	size_t n = 0;
	bool update = getenv("MOAT_UPDATE_GOLDEN") != NULL &&
	    strcmp(getenv("MOAT_UPDATE_GOLDEN"), "1") == 0;
	DIR *d;
	struct dirent *de;

	if (!golden_dir(dir, sizeof(dir))) {
		printf("  golden directory not found (set MOAT_SRCDIR)\n");
		test_failures++;
		return;
	}
	CHECK((d = opendir(dir)) != NULL);
	while (d != NULL && (de = readdir(d)) != NULL && n < 256) {
		size_t len = strlen(de->d_name);
		if (len > 6 && strcmp(de->d_name + len - 6, ".rules") == 0)
			names[n++] = strdup(de->d_name);
	}
	if (d != NULL)
		closedir(d);
	qsort(names, n, sizeof(names[0]), cmp_str);
	CHECK(n >= 10);
	for (size_t i = 0; i < n; i++) {
		golden_one(dir, names[i], update);
		free(names[i]);
	}
}

/* ---- meta expressions ---- */

/* Operands A, B, C, D are rules 0..3; hits gives their values. */
static const struct {
	const char *expr;
	unsigned char hits[4];
	double want;
} meta_cases[] = {
	{ "A", { 1, 0, 0, 0 }, 1 },
	{ "A", { 0, 0, 0, 0 }, 0 },
	{ "A && B", { 1, 1, 0, 0 }, 1 },
	{ "A && B", { 1, 0, 0, 0 }, 0 },
	{ "A || B", { 0, 1, 0, 0 }, 1 },
	{ "A || B", { 0, 0, 0, 0 }, 0 },
	{ "!A", { 0, 0, 0, 0 }, 1 },
	{ "!A", { 1, 0, 0, 0 }, 0 },
	{ "!!A", { 1, 0, 0, 0 }, 1 },
	/* && binds tighter than || */
	{ "A || B && C", { 1, 0, 0, 0 }, 1 },
	{ "A || B && C", { 0, 1, 0, 0 }, 0 },
	{ "(A || B) && C", { 1, 0, 0, 0 }, 0 },
	{ "(A || B) && C", { 1, 0, 1, 0 }, 1 },
	/* ! binds tighter than && and comparisons */
	{ "!A && B", { 0, 1, 0, 0 }, 1 },
	{ "!(A && B)", { 1, 1, 0, 0 }, 0 },
	{ "!A > 0", { 0, 0, 0, 0 }, 1 },
	/* sums: "at least two of" */
	{ "(A + B + C) > 1", { 1, 0, 1, 0 }, 1 },
	{ "(A + B + C) > 1", { 0, 0, 1, 0 }, 0 },
	{ "(A + B + C + D) >= 3", { 1, 1, 1, 0 }, 1 },
	{ "A + B + C > 1", { 1, 1, 0, 0 }, 1 },
	{ "A + B * 2", { 1, 1, 0, 0 }, 3 },
	{ "(A + B) * 2", { 1, 1, 0, 0 }, 4 },
	{ "A - B - C", { 1, 1, 1, 0 }, -1 },
	{ "8 / 2 / 2", { 0, 0, 0, 0 }, 2 },
	{ "A / B", { 1, 0, 0, 0 }, 0 },	/* division by zero: 0 */
	{ "-A + 2", { 1, 0, 0, 0 }, 1 },
	{ "- -A", { 1, 0, 0, 0 }, 1 },
	{ "+A", { 1, 0, 0, 0 }, 1 },
	{ "1.5 * 2", { 0, 0, 0, 0 }, 3 },
	{ ".5 + .5", { 0, 0, 0, 0 }, 1 },
	{ "A == B", { 1, 1, 0, 0 }, 1 },
	{ "A != B", { 1, 1, 0, 0 }, 0 },
	{ "A < B", { 0, 1, 0, 0 }, 1 },
	{ "A <= B", { 1, 1, 0, 0 }, 1 },
	{ "A > B", { 1, 1, 0, 0 }, 0 },
	{ "A >= B", { 1, 1, 0, 0 }, 1 },
	/* comparisons bind tighter than ==, arithmetic tighter than both */
	{ "A + 1 == 2", { 1, 0, 0, 0 }, 1 },
	{ "A < 2 == 1", { 1, 0, 0, 0 }, 1 },
	/* && and || give an operand's value, as in Perl */
	{ "(A + B) || C", { 1, 1, 0, 0 }, 2 },
	{ "(A + B) && (C + 3)", { 1, 1, 0, 0 }, 3 },
	{ "((A || (B && !(C))) && !!A)", { 1, 0, 0, 0 }, 1 },
	{ "0", { 0, 0, 0, 0 }, 0 },
	{ "  ( ( A ) )  ", { 1, 0, 0, 0 }, 1 },
	{ "A&&B||C", { 0, 0, 1, 0 }, 1 },
};

static void
test_meta_eval(void)
{
	static const char *const names[] = { "A", "B", "C", "D" };

	for (size_t i = 0; i < TEST_COUNT(meta_cases); i++) {
		char err[256] = "";
		struct meta_expr *e = meta_parse(meta_cases[i].expr, 0, err, sizeof(err));
		if (e == NULL) {
			printf("  %s: %s\n", meta_cases[i].expr, err);
			test_failures++;
			continue;
		}
		for (size_t o = 0; o < meta_operand_count(e); o++)
			for (size_t r = 0; r < 4; r++)
				if (strcmp(meta_operand_name(e, o), names[r]) == 0)
					meta_bind_rule(e, o, r);
		double got = meta_eval(e, meta_cases[i].hits);
		if (got != meta_cases[i].want) {
			printf("  %s: got %g, want %g\n", meta_cases[i].expr, got, meta_cases[i].want);
			test_failures++;
		}
		/* the same meta as rule 4 of a program (what ruleset_eval runs) */
		struct rule rules[5] = { [4] = { .type = RULE_META, .meta = e } };
		size_t meta_index = 4;
		unsigned char hits[5] = { 0, 0, 0, 0, 2 };
		memcpy(hits, meta_cases[i].hits, 4);
		struct meta_program *prog = meta_program_build(rules, &meta_index, 1);
		CHECK(prog != NULL);
		meta_program_run(prog, hits);
		if (hits[4] != (meta_cases[i].want != 0)) {
			printf("  %s: the program gives %d\n", meta_cases[i].expr, hits[4]);
			test_failures++;
		}
		meta_program_free(&prog);
		meta_free(&e);
	}
}

static const struct {
	const char *expr;
	const char *error;
} meta_errors[] = {
	{ "", "empty expression" },
	{ "   ", "empty expression" },
	{ "(A && B", "syntax error at column 8: missing closing parenthesis" },
	{ "A && B)", "syntax error at column 7: unexpected ')'" },
	{ "()", "syntax error at column 2: unexpected ')'" },
	{ "A &&", "syntax error at column 5: expected an operand at the end" },
	{ "&& A", "syntax error at column 1: expected an operand before an operator" },
	{ "A & B", "syntax error at column 3: unknown operator '&'" },
	{ "A | B", "syntax error at column 3: unknown operator '|'" },
	{ "A = B", "syntax error at column 3: unknown operator '='" },
	{ "A ^ B", "syntax error at column 3: unknown operator '^'" },
	{ "A ? B : C", "syntax error at column 3: unknown operator '?'" },
	{ "A =~ B", "syntax error at column 3: unknown operator '=~'" },
	{ "A B", "syntax error at column 3: expected an operator" },
	{ "A (B)", "syntax error at column 3: expected an operator" },
	{ "A(B)", "syntax error at column 2: unexpected '(' after a rule name" },
	{ "f(x)", "syntax error at column 2: unexpected '(' after a rule name" },
	{ "1.2.3", "syntax error at column 1: malformed number" },
	{ "0x10", "syntax error at column 1: malformed number" },
	{ "2A", "syntax error at column 1: malformed number" },
	{ "A && $B", "syntax error at column 6: unexpected character '$'" },
	{ "A && \x01", "syntax error at column 6: unexpected byte 0x01" },
	{ "A::B", "syntax error at column 2: unexpected ':' after a rule name" },
};

static void
test_meta_errors(void)
{
	char deep[400];

	for (size_t i = 0; i < TEST_COUNT(meta_errors); i++) {
		char err[256] = "";
		struct meta_expr *e = meta_parse(meta_errors[i].expr, 0, err, sizeof(err));
		CHECK(e == NULL);
		meta_free(&e);
		CHECK_STR(err, meta_errors[i].error);
	}
	/* nesting is bounded, so a hostile file cannot exhaust the stack */
	memset(deep, '(', 150);
	deep[150] = 'A';
	memset(deep + 151, ')', 150);
	deep[301] = '\0';
	char err[256] = "";
	struct meta_expr *e = meta_parse(deep, 0, err, sizeof(err));
	CHECK(e == NULL);
	CHECK(strstr(err, "nested too deeply") != NULL);
	memset(deep, '!', 300);
	strcpy(deep + 300, "A");
	e = meta_parse(deep, 0, err, sizeof(err));
	CHECK(e == NULL);
	/* so is the evaluation stack: operands pending at every level */
	char wide[1024];
	size_t w = 0;
	for (int i = 0; i < 45; i++)
		w += (size_t)sprintf(wide + w, "A||A&&A==A<A+A*(");
	w += (size_t)sprintf(wide + w, "A");
	memset(wide + w, ')', 45);
	wide[w + 45] = '\0';
	e = meta_parse(wide, 0, err, sizeof(err));
	CHECK(e == NULL);
	CHECK(strstr(err, "expression too complex") != NULL);
	meta_free(&e);
	/* a long flat chain is fine: it needs no depth */
	char *chain = malloc(30000);
	size_t o = 0;
	for (int i = 0; i < 5000; i++)
		o += (size_t)sprintf(chain + o, "%sA", i ? " + " : "");
	e = meta_parse(chain, 0, err, sizeof(err));
	CHECK(e != NULL);
	if (e != NULL) {
		meta_bind_rule(e, 0, 0);
		CHECK(meta_eval(e, (const unsigned char[]){ 1 }) == 5000);
	}
	meta_free(&e);
	free(chain);
}

/* ---- evaluation ---- */

static void
test_eval_headers(void)
{
	const char *h;

	h = hits_of(
	    "header SUBJ_DECODED Subject =~ /^Café offer$/\n"
	    "header SUBJ_RAW     Subject:raw =~ /^=\\?UTF-8\\?Q\\?Caf=C3=A9/\n"
	    "header SUBJ_NOT     Subject !~ /lottery/\n"
	    "header SUBJ_NOT2    Subject !~ /offer/\n"
	    "header FROM_ADDR    From:addr =~ /^bob\\@example\\.org$/\n"
	    "header FROM_NAME    From:name =~ /^Bob Example$/\n"
	    "header TO_ADDR      To:addr =~ /^alice\\@example\\.net$/\n"
	    "header TOCC         ToCc =~ /carol\\@example\\.net\\ndave\\@/\n"
	    "header RCVD_JOINED  Received =~ /mx\\.example\\.net\\nfrom mx9/\n"
	    "header RCVD_FIRST   Received:first =~ /^from mx1\\.example\\.org by mx\\.example\\.net$/\n"
	    "header RCVD_LAST    Received:last =~ /^from mx9/\n"
	    "header RCVD_LAST_NO Received:last =~ /mx\\.example\\.net/\n"
	    "header MSGID        MESSAGEID =~ /^<123\\@example\\.org>$/\n"
	    "header ALL_LINES    ALL =~ /^Subject: Café offer\\nMessage-ID: /m\n"
	    "header ALL_RAW      ALL:raw =~ /^Subject: =\\?UTF-8/m\n"
	    "header CASE         x-mailer =~ /^Bulk/\n"
	    "header EXISTS       exists:X-Mailer\n"
	    "header EXISTS_NO    exists:List-Id\n",
	    plain_msg, &default_env, NULL);
	CHECK_STR(h, "SUBJ_DECODED SUBJ_RAW SUBJ_NOT FROM_ADDR FROM_NAME TO_ADDR TOCC "
	    "RCVD_JOINED RCVD_FIRST RCVD_LAST MSGID ALL_LINES ALL_RAW CASE EXISTS");
}

static void
test_eval_missing_headers(void)
{
	const char *h;

	/* A missing field is "", or the if-unset text; !~ on it hits. */
	h = hits_of(
	    "header EMPTY        List-Id =~ /^$/\n"
	    "header NOT_MISSING  List-Id !~ /x/\n"
	    "header UNSET        List-Id =~ /^none$/ [if-unset: none]\n"
	    "header UNSET_NOT    Subject =~ /^none$/ [if-unset: none]\n"
	    "header UNSET_ADDR   Reply-To:addr =~ /^unset\\@x$/ [if-unset: unset@x]\n"
	    "header NAME_NONE    Cc:name =~ /^$/\n"
	    "header NAME_NONE2   Cc:name =~ /dave/\n",
	    plain_msg, &default_env, NULL);
	CHECK_STR(h, "EMPTY NOT_MISSING UNSET UNSET_ADDR NAME_NONE");
}

static const struct {
	const char *value;
	const char *addr, *name;
} address_cases[] = {
	{ "\"Bob Example\" <bob@example.org>", "bob@example.org", "Bob Example" },
	{ "Bob Example <bob@example.org>", "bob@example.org", "Bob Example" },
	{ "bob@example.org", "bob@example.org", "" },
	{ "bob@example.org (Bob Comment)", "bob@example.org", "Bob Comment" },
	{ "bob@example.org (Bob Comment), other@example.org", "bob@example.org", "Bob Comment" },
	{ "<bob@example.org>", "bob@example.org", "" },
	{ "'Bob' <bob@example.org>", "bob@example.org", "Bob" },
	{ "\"Last, First\" <first@example.org>, other@example.org", "first@example.org",
	    "Last, First" },
	{ "undisclosed-recipients:;", "", "" },
	{ "friends: a@example.org, b@example.org;", "a@example.org", "" },
	{ "<@relay.example:bob@example.org>", "bob@example.org", "" },
	{ "\"Quoted \\\" Escape\" <q@example.org>", "q@example.org", "Quoted \" Escape" },
	{ "Bob   Spaced   Out <b@example.org>", "b@example.org", "Bob Spaced Out" },
	{ "MAILER-DAEMON", "MAILER-DAEMON", "" },
	{ "", "", "" },
};

static void
test_eval_addresses(void)
{
	for (size_t i = 0; i < TEST_COUNT(address_cases); i++) {
		char msg[1024];
		const char *h;
		bool want_addr = *address_cases[i].addr != '\0';
		bool want_name = *address_cases[i].name != '\0';
		snprintf(msg, sizeof(msg), "From: %s\r\nSubject: x\r\n\r\nbody\r\n",
		    address_cases[i].value);
		char rules[1024];
		/* \Q..\E: the expected text is literal */
		snprintf(rules, sizeof(rules),
		    "header ADDR From:addr =~ /^\\Q%s\\E$/\n"
		    "header NAME From:name =~ /^\\Q%s\\E$/\n"
		    "header ANY_ADDR From:addr =~ /./\n"
		    "header ANY_NAME From:name =~ /./\n",
		    address_cases[i].addr, address_cases[i].name);
		h = hits_of(rules, msg, &default_env, NULL);
		/* a missing address or name is "": ADDR and NAME hit then too */
		char want[64];
		snprintf(want, sizeof(want), "ADDR NAME%s%s", want_addr ? " ANY_ADDR" : "",
		    want_name ? " ANY_NAME" : "");
		if (strcmp(h, want) != 0) {
			printf("  From: %s: got \"%s\", want \"%s\"\n", address_cases[i].value, h, want);
			test_failures++;
		}
	}
}

static void
test_eval_envelope(void)
{
	static const struct rule_envelope null_sender = {
		"2001:db8::1", NULL, "[192.0.2.1]", "", default_rcpts, 1
	};
	const char *rules =
	    "header ENV_FROM     EnvelopeFrom =~ /^sender\\@example\\.com$/\n"
	    "header ENV_FROM_NUL EnvelopeFrom =~ /^$/\n"
	    "header ENV_FROM_EX  exists:EnvelopeFrom\n"
	    "header ENV_TO       EnvelopeTo =~ /^postmaster\\@example\\.net\\nbob\\@/\n"
	    "header ENV_TO_ONE   EnvelopeTo =~ /^postmaster\\@example\\.net$/\n"
	    "header HELO         Helo =~ /^mail\\.example\\.com$/\n"
	    "header HELO_LIT     Helo =~ /^\\[192\\.0\\.2\\.1\\]$/\n"
	    "header IP4          ClientIP =~ /^192\\.0\\.2\\./\n"
	    "header IP6          ClientIP =~ /^2001:db8:/\n"
	    "header NAME         ClientName =~ /\\.example\\.com$/\n"
	    "header NAME_EXISTS  exists:ClientName\n"
	    "header NAME_UNSET   ClientName =~ /^unknown$/ [if-unset: unknown]\n"
	    "header ENV_FROM_DOM EnvelopeFrom:addr =~ /\\@example\\.com$/\n";

	CHECK_STR(hits_of(rules, plain_msg, &default_env, NULL),
	    "ENV_FROM ENV_FROM_EX ENV_TO HELO IP4 NAME NAME_EXISTS ENV_FROM_DOM");
	CHECK_STR(hits_of(rules, plain_msg, &null_sender, NULL),
	    "ENV_FROM_NUL ENV_FROM_EX ENV_TO_ONE HELO_LIT IP6 NAME_UNSET");
	/* no envelope at all: every pseudo-header is missing */
	CHECK_STR(hits_of(rules, plain_msg, NULL, NULL), "ENV_FROM_NUL NAME_UNSET");
}

static void
test_eval_text_rules(void)
{
	static const char html_msg[] =
	    "From: a@example.org\r\n"
	    "Subject: Newsletter\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/alternative; boundary=\"B\"\r\n"
	    "\r\n"
	    "--B\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n"
	    "\r\n"
	    "Read it at http://www.example.com/news =E2=80=93 free!\r\n"
	    "--B\r\n"
	    "Content-Type: text/html; charset=utf-8\r\n"
	    "\r\n"
	    "<html><body><p>Click <a href=\"http://198.51.100.7/login\">here</a></p>\r\n"
	    "<p style=\"display:none\">hidden words</p></body></html>\r\n"
	    "--B--\r\n";
	const char *rules =
	    "body    BODY_SUBJECT  /^Newsletter$/m\n"
	    "body    BODY_QP       /news – free/\n"
	    "body    BODY_RENDERED /Click here/\n"
	    "body    BODY_NO_TAGS  /<a href/\n"
	    "body    BODY_LINE     /^Read it/\n"
	    "rawbody RAW_TAGS      /<a href=\"http:\\/\\/198\\./\n"
	    "rawbody RAW_HIDDEN    /display:\\s*none/i\n"
	    "rawbody RAW_QP_RAW    /=E2=80=93/\n"
	    "uri     URI_IP        m{^http://\\d+\\.\\d+\\.\\d+\\.\\d+/}\n"
	    "uri     URI_WWW       m{^http://www\\.example\\.com/news$}\n"
	    "uri     URI_NONE      /bit\\.ly/\n"
	    "full    FULL_QP       /=E2=80=93 free!/\n"
	    "full    FULL_HEADER   /^Content-Type: multipart\\/alternative/m\n"
	    "full    FULL_NO_M     /^Subject/\n";

	CHECK_STR(hits_of(rules, html_msg, &default_env, NULL),
	    "BODY_SUBJECT BODY_QP BODY_RENDERED BODY_LINE RAW_TAGS RAW_HIDDEN URI_IP URI_WWW "
	    "FULL_QP FULL_HEADER");
}

static void
test_eval_meta_and_scores(void)
{
	double score = 0;
	const char *rules =
	    "body   __PILLS      /viagra/\n"
	    "body   __LINK       /https:/\n"
	    "header __BULK       X-Mailer =~ /Bulk/\n"
	    "meta   PILLS_LINK   __PILLS && __LINK\n"
	    "score  PILLS_LINK   3\n"
	    "meta   TWO_OF       (__PILLS + __LINK + __BULK) > 1\n"
	    "score  TWO_OF       1.5\n"
	    "meta   NOT_BULK     !__BULK\n"
	    "meta   META_OF_META PILLS_LINK && TWO_OF\n"
	    "score  META_OF_META 0.25\n"
	    "meta   T_TESTING    PILLS_LINK\n"
	    "body   NICE_RULE    /Regards/\n"
	    "score  NICE_RULE    -1\n"
	    "tflags NICE_RULE    nice\n"
	    "body   NICE_DEFAULT /Hello/\n"
	    "tflags NICE_DEFAULT nice\n"
	    "body   DEFAULT      /Alice/\n"
	    "body   DISABLED     /Alice/\n"
	    "score  DISABLED     0\n"
	    "meta   USES_OFF     DISABLED || NOT_BULK\n"
	    "meta   __SUB_META   PILLS_LINK\n"
	    "meta   USES_SUB     __SUB_META\n"
	    "score  USES_SUB     2\n"
	    "describe PILLS_LINK Pills and a link\n";
	struct reports rep;
	struct ruleset *rs = load_text(rules, &rep);
	struct message_view *mv = parse(plain_msg);
	struct rule_result res;

	CHECK(rs != NULL);
	CHECK(rs == NULL || ruleset_eval(rs, mv, &default_env, &res));
	if (rs != NULL) {
		static const struct {
			const char *name, *description;
			double score;
		} want[] = {
			{ "PILLS_LINK", "Pills and a link", 3 },
			{ "TWO_OF", "", 1.5 },
			{ "META_OF_META", "", 0.25 },
			{ "T_TESTING", "", 0.01 },	/* SpamAssassin's default for T_ */
			{ "NICE_RULE", "", -1 },
			{ "NICE_DEFAULT", "", -1 },	/* nice makes the default negative */
			{ "DEFAULT", "", 1 },
			{ "USES_SUB", "", 2 },		/* a sub-rule meta feeds it */
		};
		CHECK_INT(res.nhits, TEST_COUNT(want));
		for (size_t i = 0; i < res.nhits && i < TEST_COUNT(want); i++) {
			CHECK_STR(res.hits[i].name, want[i].name);
			CHECK_STR(res.hits[i].description, want[i].description);
			CHECK(res.hits[i].score == want[i].score);
			score += want[i].score;
		}
		CHECK(res.score > score - 1e-9 && res.score < score + 1e-9);
		CHECK_INT(res.limit_errors, 0);
		CHECK_STR(res.first_error, "");
		rule_result_free(&res);
	}
	message_view_free(&mv);
	ruleset_unref(&rs);
}

/* Comments are cut at the first "#" not after a backslash; backslash-# is "#". */
static void
test_eval_comments(void)
{
	CHECK_STR(hits_of(
	    "body HASH_ESCAPED /color: \\#ff0000/\n"
	    "body HASH_CLASS   /[\\#]x/\n"
	    "body COMMENTED    /Hello/ # /never/\n"
	    "#body OUT        /Hello/\n"
	    "   # body OUT2   /Hello/\n"
	    /* as in SpamAssassin, a "#" after a backslash is never a comment,
	     * even after two */
	    "body BACKSLASHES  /\\\\#/ # a comment\n",
	    "Subject: x\r\n\r\nHello, color: #ff0000 and #x\r\n", NULL, NULL),
	    "HASH_ESCAPED HASH_CLASS COMMENTED BACKSLASHES");
}

/* A catastrophic regex stops at the match limit, quickly, as not matched. */
static void
test_match_limit(void)
{
	size_t n = 30 * 1024;
	char *msg = malloc(n + 200);
	struct reports rep;
	struct ruleset *rs = load_text(
	    "full  CATASTROPHIC  /(a+)+$/\n"
	    "body  BODY_CATASTROPHIC /(?:a|aa)+$/\n"
	    "full  FINE          /aab/\n"
	    "meta  USES_IT       !CATASTROPHIC\n", &rep);
	struct message_view *mv;
	struct rule_result res;
	struct timespec t0, t1;
	size_t o;

	o = (size_t)sprintf(msg, "Subject: x\r\n\r\n");
	memset(msg + o, 'a', n);
	strcpy(msg + o + n, "b\r\n");
	mv = parse(msg);
	CHECK(rs != NULL && mv != NULL);
	if (rs == NULL || mv == NULL)
		goto out;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	CHECK(ruleset_eval(rs, mv, NULL, &res));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	printf("  catastrophic regexes over 30 KB: %.1f ms\n", ms);
	CHECK(ms < 2000);
	CHECK(res.limit_errors >= 1);
	CHECK_STR(res.first_error, "CATASTROPHIC: match limit exceeded");
	/* the stopped rule counts as not matched, for metas too */
	CHECK_INT(res.nhits, 2);
	if (res.nhits == 2) {
		CHECK_STR(res.hits[0].name, "FINE");
		CHECK_STR(res.hits[1].name, "USES_IT");
	}
	rule_result_free(&res);
out:
	message_view_free(&mv);
	ruleset_unref(&rs);
	free(msg);
}

/* A directory means its *.rules files, in name order; others are ignored. */
static void
test_directory(void)
{
	char dir[PATH_MAX], path[PATH_MAX + 32];
	const char *paths[1] = { dir };
	const char *files[][2] = {
		{ "20-second.rules", "body SECOND /x/\nscore FIRST 4\n" },
		{ "10-first.rules", "body FIRST /x/\nscore FIRST 2\n" },
		{ "30-third.cf", "body THIRD /x/\n" },	/* SpamAssassin's name */
		{ "40-ignored.txt", "body IGNORED /x/\n" },
		{ ".hidden.rules", "body HIDDEN /x/\n" },
	};
	struct reports rep = { .strip = fixture_tmpdir() };
	struct ruleset_stats st;
	struct ruleset *rs;

	snprintf(dir, sizeof(dir), "%s/rules.d", fixture_tmpdir());
	CHECK(mkdir(dir, 0700) == 0);
	for (size_t i = 0; i < TEST_COUNT(files); i++) {
		snprintf(path, sizeof(path), "rules.d/%s", files[i][0]);
		write_file(path, files[i][1]);
	}
	rs = ruleset_load(paths, 1, collect, &rep, &st);
	CHECK(rs != NULL);
	CHECK_INT(st.files, 3);
	CHECK_INT(st.rules, 3);
	CHECK_STR(rep.text, "");
	if (rs != NULL) {
		struct message_view *mv = parse("Subject: x\r\n\r\nx\r\n");
		struct rule_result res;
		CHECK(ruleset_eval(rs, mv, NULL, &res));
		CHECK_INT(res.nhits, 3);
		/* the later file's score line wins */
		if (res.nhits == 3) {
			CHECK_STR(res.hits[0].name, "FIRST");
			CHECK(res.hits[0].score == 4);
		}
		rule_result_free(&res);
		message_view_free(&mv);
	}
	/* several paths: files and directories, in the order given */
	const char *two[2] = { dir, write_file("extra.rules", "score SECOND 7\n") };
	struct ruleset *rs2 = ruleset_load(two, 2, collect, &rep, &st);
	CHECK(rs2 != NULL);
	CHECK_INT(st.files, 4);
	ruleset_unref(&rs2);
	ruleset_unref(&rs);
	for (size_t i = 0; i < TEST_COUNT(files); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i][0]);
		unlink(path);
	}
	rmdir(dir);
}

static void
test_load_errors(void)
{
	struct reports rep = { .strip = fixture_tmpdir() };
	struct ruleset_stats st;
	const char *missing = "/nonexistent/moat/x.rules";
	struct ruleset *rs;

	rs = ruleset_load(&missing, 1, collect, &rep, &st);
	CHECK(rs == NULL);
	CHECK_INT(st.errors, 1);
	CHECK_STR(rep.text, "fatal: /nonexistent/moat/x.rules: cannot read: "
	    "No such file or directory\n");

	/* a NUL byte in a line is an error, the lines around it are read */
	const char *path = write_file("nul.rules", "");
	FILE *fp = fopen(path, "wb");
	fwrite("body A /a/\nbody B /b\0c/\nbody C /c/", 1, 34, fp);
	fclose(fp);
	memset(&rep, 0, sizeof(rep));
	rep.strip = fixture_tmpdir();
	rs = ruleset_load(&path, 1, collect, &rep, &st);
	CHECK(rs == NULL);
	CHECK_STR(rep.text, "fatal: nul.rules:2: NUL byte in the line\n");
	CHECK_INT(st.body, 0);

	/* if blocks nest up to 64 deep */
	char *deep = malloc(65 * 20 * 2 + 64);
	size_t o = 0;
	for (int i = 0; i < 65; i++)
		o += (size_t)sprintf(deep + o, "if version > 3\n");
	o += (size_t)sprintf(deep + o, "body X /x/\n");
	for (int i = 0; i < 65; i++)
		o += (size_t)sprintf(deep + o, "endif\n");
	memset(&rep, 0, sizeof(rep));
	rep.strip = fixture_tmpdir();
	rs = load_text(deep, &rep);
	CHECK(rs == NULL);
	CHECK_STR(rep.text, "fatal: test.rules:65: if: blocks nested deeper than 64\n");
	free(deep);

	/* no report function: the counts still tell */
	rs = ruleset_load(&path, 1, NULL, NULL, &st);
	CHECK(rs == NULL);
	CHECK_INT(st.errors, 1);

	/* an include of a FIFO or a device must not block: refused unopened */
	char fifo[PATH_MAX + 16];
	snprintf(fifo, sizeof(fifo), "%s/fifo", fixture_tmpdir());
	CHECK(mkfifo(fifo, 0600) == 0);
	memset(&rep, 0, sizeof(rep));
	rep.strip = fixture_tmpdir();
	rs = load_text("include fifo\ninclude /dev/null\n", &rep);
	CHECK(rs == NULL);
	CHECK_STR(rep.text, "fatal: test.rules:1: include fifo: cannot read: not a regular file\n"
	    "fatal: test.rules:2: include /dev/null: cannot read: not a regular file\n");
	unlink(fifo);

	/* an empty file is an empty rule set, which evaluates to nothing */
	path = write_file("empty.rules", "# nothing\n\n");
	rs = ruleset_load(&path, 1, NULL, NULL, NULL);
	CHECK(rs != NULL);
	if (rs != NULL) {
		struct message_view *mv = parse("Subject: x\r\n\r\nx\r\n");
		struct rule_result res;
		CHECK(ruleset_eval(rs, mv, NULL, &res));
		CHECK_INT(res.nhits, 0);
		CHECK(res.score == 0);
		rule_result_free(&res);
		message_view_free(&mv);
		CHECK_INT(ruleset_get_stats(rs)->rules, 0);
		CHECK_INT(ruleset_get_stats(rs)->files, 1);
	}
	/* a reference keeps the set alive after its loader lets go */
	struct ruleset *ref = rs != NULL ? ruleset_ref(rs) : NULL;
	ruleset_unref(&rs);
	CHECK(rs == NULL);
	CHECK(ref == NULL || ruleset_get_stats(ref)->files == 1);
	ruleset_unref(&ref);
	ruleset_unref(&ref);	/* a NULL pointer is fine */
}

/* ---- threads ---- */

#define THREADS 4
#define THREAD_ROUNDS 40

struct thread_arg {
	const struct ruleset *rs;
	const struct message_view *mv;
	size_t want_hits;
	int bad;
};

static void *
eval_thread(void *p)
{
	struct thread_arg *a = p;

	for (int i = 0; i < THREAD_ROUNDS; i++) {
		struct rule_result res;
		if (!ruleset_eval(a->rs, a->mv, &default_env, &res) || res.nhits != a->want_hits)
			a->bad++;
		rule_result_free(&res);
	}
	return NULL;
}

/* One set, one view, several threads at once: each gets the same answer. */
static void
test_threads(void)
{
	struct reports rep;
	struct ruleset *rs = load_text(
	    "body   PILLS   /viagra/i\n"
	    "body   LINK    /https:/\n"
	    "uri    SHORT   /bit\\.ly/\n"
	    "header SUBJ    Subject =~ /offer/\n"
	    "header FROM    From:addr =~ /example\\.org/\n"
	    "full   HEAVY   /(a|b|c)*x(?:y|z)+q/\n"
	    "meta   BOTH    PILLS && SHORT\n", &rep);
	struct message_view *mv = parse(plain_msg);
	struct thread_arg args[THREADS];
	pthread_t tids[THREADS];
	struct rule_result res;

	CHECK(rs != NULL && mv != NULL);
	if (rs == NULL || mv == NULL)
		goto out;
	CHECK(ruleset_eval(rs, mv, &default_env, &res));
	CHECK_INT(res.nhits, 6);
	for (int i = 0; i < THREADS; i++) {
		args[i] = (struct thread_arg){ rs, mv, res.nhits, 0 };
		CHECK(pthread_create(&tids[i], NULL, eval_thread, &args[i]) == 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(tids[i], NULL);
		CHECK_INT(args[i].bad, 0);
	}
	rule_result_free(&res);
out:
	message_view_free(&mv);
	ruleset_unref(&rs);
}

/* ---- the stock SpamAssassin rules ---- */

static void
test_spamassassin_stock(void)
{
	glob_t g;
	struct reports rep = { .strip = "/usr/share/spamassassin" };
	struct ruleset_stats st;
	struct ruleset *rs;
	struct timespec t0, t1;

	if (!dir_exists("/usr/share/spamassassin") ||
	    glob("/usr/share/spamassassin/*.cf", 0, NULL, &g) != 0) {
		test_skip("/usr/share/spamassassin absent");
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rs = ruleset_load((const char *const *)g.gl_pathv, g.gl_pathc, collect, &rep, &st);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("  %zu files in %.0f ms: %u rules (%u header, %u body, %u rawbody, %u uri, "
	    "%u full, %u meta), %u unsupported lines, %d warnings\n", (size_t)g.gl_pathc,
	    (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6,
	    st.rules, st.header, st.body, st.rawbody, st.uri, st.full, st.meta, st.unsupported,
	    rep.warnings);
	CHECK(rs != NULL);
	CHECK_INT(st.errors, 0);
	if (rep.fatal > 0) {
		char *p = rep.text;
		for (char *nl; (nl = strchr(p, '\n')) != NULL; p = nl + 1)
			if (strncmp(p, "fatal", 5) == 0)
				printf("  %.*s\n", (int)(nl - p), p);
	}
	CHECK(st.rules > 1000);
	CHECK_INT(st.files, g.gl_pathc);
	if (rs != NULL) {
		struct message_view *mv = parse(plain_msg);
		struct rule_result res;
		CHECK(ruleset_eval(rs, mv, &default_env, &res));
		CHECK_INT(res.limit_errors, 0);
		rule_result_free(&res);
		message_view_free(&mv);
	}
	ruleset_unref(&rs);
	globfree(&g);
}

static const struct test_case cases[] = {
	{ "golden", test_golden },
	{ "meta_eval", test_meta_eval },
	{ "meta_errors", test_meta_errors },
	{ "eval_headers", test_eval_headers },
	{ "eval_missing_headers", test_eval_missing_headers },
	{ "eval_addresses", test_eval_addresses },
	{ "eval_envelope", test_eval_envelope },
	{ "eval_text_rules", test_eval_text_rules },
	{ "eval_meta_and_scores", test_eval_meta_and_scores },
	{ "eval_comments", test_eval_comments },
	{ "match_limit", test_match_limit },
	{ "directory", test_directory },
	{ "load_errors", test_load_errors },
	{ "threads", test_threads },
	{ "spamassassin_stock", test_spamassassin_stock },
};

int
main(void)
{
	return fixture_run(cases, TEST_COUNT(cases));
}
