/*
 * test-ruleset.c - the rule engine: loading (golden files), meta expressions,
 * evaluation against real message views, limits, threads, stock SA rules.
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
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "message.h"
#include "prefilter.h"
#include "ruleset.h"
#include "ruleset_private.h"
#include "test.h"

static char tmpdir[64];

/* ---- helpers ---- */

struct reports {
	char text[16384];
	int fatal, warnings;
	const char *strip;	/* a directory prefix removed from the text */
};

/* strip_all - every "prefix/" in s removed, into out */
static void
strip_all(char *out, size_t outlen, const char *s, const char *prefix)
{
	size_t pl = prefix != NULL ? strlen(prefix) : 0, o = 0;

	while (*s != '\0' && o + 1 < outlen) {
		if (pl > 0 && strncmp(s, prefix, pl) == 0 && s[pl] == '/') {
			s += pl + 1;
			continue;
		}
		out[o++] = *s++;
	}
	out[o] = '\0';
}

static void
collect(void *ctx, bool fatal, const char *where, const char *message)
{
	struct reports *r = ctx;
	char line[4096], clean[4096];
	size_t n = strlen(r->text);

	snprintf(line, sizeof(line), "%s: %s: %s", fatal ? "fatal" : "warning", where, message);
	strip_all(clean, sizeof(clean), line, r->strip);
	snprintf(r->text + n, sizeof(r->text) - n, "%s\n", clean);
	if (fatal)
		r->fatal++;
	else
		r->warnings++;
}

static const char *
write_file(const char *name, const char *content)
{
	static char path[PATH_MAX + 256];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	if ((fp = fopen(path, "w")) == NULL)
		return path;
	fputs(content, fp);
	fclose(fp);
	return path;
}

/* load_text - a rule set from text (written to a file in the temp dir) */
static struct ruleset *
load_text(const char *text, struct reports *r)
{
	const char *path = write_file("test.rules", text);

	memset(r, 0, sizeof(*r));
	r->strip = tmpdir;
	return ruleset_load(&path, 1, collect, r, NULL);
}

static struct message_view *
parse(const char *msg)
{
	const char *err = NULL;
	struct message_view *mv = message_view_parse(msg, strlen(msg), MESSAGE_SCAN_LIMIT_DEFAULT,
	    &err);

	if (mv == NULL)
		printf("  cannot parse the message: %s\n", err != NULL ? err : "?");
	return mv;
}

static const char *const default_rcpts[] = { "postmaster@example.net", "bob@example.net" };
static const struct rule_envelope default_env = {
	"192.0.2.7", "mail.example.com", "mail.example.com", "sender@example.com",
	default_rcpts, 2
};

/* hits_of - "A B C": the names a message hits, in order, or "(load failed)" */
static const char *
hits_of(const char *rules, const char *msg, const struct rule_envelope *env, double *score_r)
{
	static char out[2048];
	struct reports rep;
	struct ruleset *rs = load_text(rules, &rep);
	struct message_view *mv = parse(msg);
	struct rule_result res;
	size_t o = 0;

	out[0] = '\0';
	if (rs == NULL || mv == NULL) {
		printf("  load: %s", rep.text);
		snprintf(out, sizeof(out), "(load failed)");
	} else if (!ruleset_eval(rs, mv, env, &res)) {
		snprintf(out, sizeof(out), "(eval failed)");
	} else {
		for (size_t i = 0; i < res.nhits && o < sizeof(out); i++)
			o += (size_t)snprintf(out + o, sizeof(out) - o, "%s%s", i ? " " : "",
			    res.hits[i].name);
		if (score_r != NULL)
			*score_r = res.score;
		rule_result_free(&res);
	}
	message_view_free(&mv);
	ruleset_unref(&rs);
	return out;
}

#define MSG_HEAD "From: \"Bob Example\" <bob@example.org>\r\n" \
	"To: Alice <alice@example.net>, carol@example.net\r\n" \
	"Cc: dave@example.net\r\n" \
	"Subject: =?UTF-8?Q?Caf=C3=A9_offer?=\r\n" \
	"Message-ID: <123@example.org>\r\n" \
	"Received: from mx1.example.org by mx.example.net\r\n" \
	"Received: from mx9.example.org by mx1.example.org\r\n" \
	"X-Mailer: Bulk Sender 2.0\r\n"

static const char plain_msg[] = MSG_HEAD
	"Content-Type: text/plain; charset=utf-8\r\n"
	"\r\n"
	"Hello Alice,\r\n"
	"buy cheap viagra now at https://bit.ly/abc123 today.\r\n"
	"\r\n"
	"Regards\r\n";

/* ---- golden files ---- */

static bool
dir_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* golden_dir - where the golden files are (see the top of this file) */
static bool
golden_dir(char *out, size_t outlen)
{
	char exe[PATH_MAX], path[PATH_MAX + 64];
	const char *src = getenv("MOAT_SRCDIR");
	ssize_t n;

	if (src != NULL && *src != '\0') {
		snprintf(path, sizeof(path), "%s/tests/rules/golden", src);
		return realpath(path, out) != NULL && strlen(out) < outlen;
	}
	if ((n = readlink("/proc/self/exe", exe, sizeof(exe) - 1)) > 0) {
		exe[n] = '\0';
		for (int up = 0; up < 3; up++) {
			char *slash = strrchr(exe, '/');
			if (slash != NULL)
				*slash = '\0';
		}
		snprintf(path, sizeof(path), "%s/tests/rules/golden", exe);
		if (dir_exists(path))
			return realpath(path, out) != NULL && strlen(out) < outlen;
	}
#ifdef MOAT_SRC_RULESDIR
	snprintf(path, sizeof(path), "%s/../tests/rules/golden", MOAT_SRC_RULESDIR);
	if (dir_exists(path))
		return realpath(path, out) != NULL && strlen(out) < outlen;
#endif
	return false;
}

/* read_text - the file, NUL-terminated, its length in *len_r if not NULL */
static char *
read_text(const char *path, size_t *len_r)
{
	FILE *fp = fopen(path, "rb");
	char *buf;
	long len;

	if (fp == NULL)
		return NULL;
	fseek(fp, 0, SEEK_END);
	len = ftell(fp);
	rewind(fp);
	buf = calloc(1, (size_t)(len > 0 ? len : 0) + 1);
	if (buf != NULL && len > 0 && fread(buf, 1, (size_t)len, fp) != (size_t)len) {
		free(buf);
		buf = NULL;
	}
	fclose(fp);
	if (buf != NULL && len_r != NULL)
		*len_r = (size_t)(len > 0 ? len : 0);
	return buf;
}

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
	struct reports rep = { .strip = tmpdir };
	struct ruleset_stats st;
	struct ruleset *rs;

	snprintf(dir, sizeof(dir), "%s/rules.d", tmpdir);
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
	struct reports rep = { .strip = tmpdir };
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
	rep.strip = tmpdir;
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
	rep.strip = tmpdir;
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
	snprintf(fifo, sizeof(fifo), "%s/fifo", tmpdir);
	CHECK(mkfifo(fifo, 0600) == 0);
	memset(&rep, 0, sizeof(rep));
	rep.strip = tmpdir;
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

/* accelerate_arg: an evaluating thread, before and after the prefilter
 * is published under it */
struct accelerate_arg {
	const struct ruleset *rs;
	const struct message_view *mv;
	const char *want;		/* the hits, by name */
	atomic_bool *published;
	atomic_int rounds;		/* evaluations done */
	int rounds_after;		/* begun after ruleset_accelerate() returned */
	int bad;
};

static void *
accelerate_thread(void *p)
{
	struct accelerate_arg *a = p;

	/* bounded: it stops two evaluations after the prefilter was published,
	 * or after 60 s (the build takes about a second) */
	time_t deadline = time(NULL) + 60;
	for (int i = 0; a->rounds_after < 2 && time(NULL) < deadline; i++) {
		bool after = atomic_load(a->published);
		struct rule_result res;
		char names[256] = "";
		if (!ruleset_eval(a->rs, a->mv, &default_env, &res))
			a->bad++;
		for (size_t h = 0; h < res.nhits; h++)
			snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s",
			    h > 0 ? " " : "", res.hits[h].name);
		if (strcmp(names, a->want) != 0) {
			printf("  round %d: hits \"%s\", want \"%s\"\n", i, names, a->want);
			a->bad++;
		}
		rule_result_free(&res);
		a->rounds_after += after;
		atomic_fetch_add(&a->rounds, 1);
	}
	return NULL;
}

/*
 * The Hyperscan prefilter built while other threads evaluate with the set
 * (moatd builds it on a thread of its own after the set starts serving):
 * every evaluation, before, during and after, gives the same hits.
 */
static void
test_accelerate_while_evaluating(void)
{
	struct reports rep;
	char *text = malloc(64 * 1024);
	size_t len = (size_t)snprintf(text, 64 * 1024,
	    "body   PILLS   /viagra/i\n"
	    "body   LINK    /https:/\n"
	    "uri    SHORT   /bit\\.ly/\n"
	    "rawbody RAW    /Regards/\n"
	    "meta   BOTH    PILLS && SHORT\n");
	/* enough rules that the build takes a while */
	for (int i = 0; i < 300; i++)
		len += (size_t)snprintf(text + len, 64 * 1024 - len,
		    "body GEN_%03d /\\bno%03dword\\w{0,4}(?:x|y[a-z]{2,9})\\b/i\n", i, i);
	struct ruleset *rs = load_text(text, &rep);
	struct message_view *mv = parse(plain_msg);
	atomic_bool published = false;
	struct accelerate_arg args[2];
	pthread_t tids[2];

	free(text);
	CHECK(rs != NULL && mv != NULL);
	if (rs == NULL || mv == NULL)
		goto out;
	for (int i = 0; i < 2; i++) {
		args[i] = (struct accelerate_arg){ .rs = rs, .mv = mv,
			.want = "PILLS LINK SHORT RAW BOTH", .published = &published };
		CHECK(pthread_create(&tids[i], NULL, accelerate_thread, &args[i]) == 0);
	}
	/* each thread has evaluated without the prefilter at least once */
	for (int wait = 0; wait < 500 && (atomic_load(&args[0].rounds) == 0 ||
	    atomic_load(&args[1].rounds) == 0); wait++)
		usleep(10000);
	unsigned n = ruleset_accelerate(rs, NULL, NULL);
	atomic_store(&published, true);
	for (int i = 0; i < 2; i++) {
		pthread_join(tids[i], NULL);
		CHECK_INT(args[i].bad, 0);
		CHECK(args[i].rounds_after >= 1);
	}
	printf("  %u rules in Hyperscan; evaluations %d and %d\n", n,
	    atomic_load(&args[0].rounds), atomic_load(&args[1].rounds));
	/* a second call does nothing */
	CHECK_INT(ruleset_accelerate(rs, NULL, NULL), 0);
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

/* ---- the literal prefilter ---- */

static const struct {
	const char *pattern;
	unsigned flags;		/* 1: PCRE2_EXTENDED */
	const char *literals;	/* "" for none; "\n" between alternatives */
} literal_cases[] = {
	{ "foobar", 0, "foobar" },
	{ "ab", 0, "" },				/* too short */
	{ "foo|bar", 0, "foo\nbar" },			/* one per alternative */
	{ "foo|ba", 0, "" },				/* one alternative has none */
	{ "(?:cheap|free) viagra", 0, " viagra" },	/* the longer one */
	{ "(?:hello|world)", 0, "hello\nworld" },
	{ "(?:hello|wo)", 0, "" },
	{ "(?i:hello|world) there", 0, " there" },
	{ "(a|b)cdef", 0, "cdef" },
	{ "\\bbuy\\s+now\\b", 0, "buy" },
	{ "colou?r", 0, "colo" },			/* ? drops the char */
	{ "x+yz{0,3}abc", 0, "abc" },
	{ "abc{2}def", 0, "abc" },			/* {2} keeps it, ends the run */
	{ "ab+cdef", 0, "cdef" },
	{ "a{,3}bcd", 0, "bcd" },
	{ "ab{foo}cde", 0, "foo" },			/* not a quantifier */
	{ "www\\.example\\.com", 0, "www.example.com" },
	{ "\\$\\@\\-\\/abc", 0, "$@-/abc" },
	{ "(?i)Free Money", 0, "free money" },
	{ "[abc]def[gh]", 0, "def" },
	{ "[]abc]xyz", 0, "xyz" },
	{ "[[:alpha:]]+hello", 0, "hello" },
	{ "a.b.cdef", 0, "cdef" },
	{ "^abc$", 0, "abc" },
	{ "foo(?=barbaz)", 0, "foo" },			/* lookarounds are skipped */
	{ "(?!foobar)xyz", 0, "xyz" },
	{ "(?<=abcd)xyz", 0, "xyz" },
	{ "(?:abcd)?xyz", 0, "xyz" },			/* an optional group */
	{ "(?:abcd)+x", 0, "abcd" },
	{ "(?<name>abcd)x", 0, "abcd" },
	{ "\\x41BCD", 0, "bcd" },
	{ "\\x{41}BCDE", 0, "bcde" },
	{ "\\d{3}-\\d{4} call", 0, " call" },
	{ "\\p{L}+abcd", 0, "abcd" },
	{ "\\cAabc", 0, "abc" },
	{ "(abc)\\1defg", 0, "defg" },
	{ "caf\xc3\xa9s", 0, "caf" },			/* ASCII only */
	{ "\\Qabc\\E", 0, "" },				/* not read: give up */
	{ "aab\\E{0,2}c", 0, "" },			/* the {0,2} is b's */
	{ "(?#comment)abc", 0, "" },
	{ "(?x) foo bar", 0, "" },
	{ "foo bar", 1, "" },
	{ "foo(*ACCEPT)bar", 0, "" },
	{ "a(?:b|c)d", 0, "" },
};

static void
test_prefilter_literals(void)
{
	for (size_t i = 0; i < sizeof(literal_cases) / sizeof(literal_cases[0]); i++) {
		char out[256];
		const char *pat = literal_cases[i].pattern;
		uint32_t opts = literal_cases[i].flags ? PCRE2_EXTENDED : 0;
		size_t n = prefilter_literal(pat, strlen(pat), opts, out, sizeof(out));
		if (strcmp(out, literal_cases[i].literals) != 0 || n != strlen(out))
			printf("  pattern /%s/\n", pat);
		CHECK_STR(out, literal_cases[i].literals);
		CHECK_INT(n, strlen(out));
	}
}

static void
test_prefilter_eval(void)
{
	static const char rules[] =
	    "body LIT_HIT /cheap viagra/\n"
	    "body LIT_MISS /expensive/\n"
	    "body ALT /nothere|viagra/\n"
	    "body CASE /CHEAP VIAGRA/i\n"
	    "body NOLIT /b.y/\n"
	    "uri URI_LIT /bit\\.ly/\n"
	    "uri URI_MISS /example\\.invalid/\n"
	    "rawbody RAW /Regards/\n"
	    "rawbody RAW_MISS /Sincerely/\n"
	    "full FULL /X-Mailer: Bulk/\n";
	static const char kelvin_msg[] = MSG_HEAD
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "\r\n"
	    "It is 300 \xe2\x84\xaa" "elvin, stra\xc5\xbf\xc5\xbf" "e.\r\n";

	CHECK_STR(hits_of(rules, plain_msg, &default_env, NULL),
	    "LIT_HIT ALT CASE NOLIT URI_LIT RAW FULL");
	/* PCRE2's caseless UTF matching folds the Kelvin sign to k and the
	 * long s to s: the ASCII literals are not in the text, the hits are */
	CHECK_STR(hits_of("body KELVIN /kelvin/i\nbody STRASSE /strasse/i\n"
	    "body NOT_KELVIN /kelvin/\n", kelvin_msg, &default_env, NULL), "KELVIN STRASSE");
}

/* same_hits - whether two results name the same rules; if not, says how */
static bool
same_hits(const char *name, const char *mode, const struct rule_result *a,
    const struct rule_result *ref)
{
	bool same = a->nhits == ref->nhits && a->limit_errors == ref->limit_errors;

	for (size_t i = 0; same && i < a->nhits; i++)
		same = strcmp(a->hits[i].name, ref->hits[i].name) == 0;
	if (!same) {
		printf("  %s: %zu hits with %s, %zu with every rule run:", name, a->nhits, mode,
		    ref->nhits);
		for (size_t i = 0; i < a->nhits; i++)
			printf(" +%s", a->hits[i].name);
		for (size_t i = 0; i < ref->nhits; i++)
			printf(" -%s", ref->hits[i].name);
		printf("\n");
	}
	return same;
}

/* prefilter_equivalence_msg - the same hits with every rule run, with the
 * literal prefilter alone, and with Hyperscan too (where built) */
static void
prefilter_equivalence_msg(struct ruleset *rs, const char *name, const char *data, size_t len,
    size_t *hits_r)
{
	const char *err = NULL;
	struct message_view *mv = message_view_parse(data, len, MESSAGE_SCAN_LIMIT_DEFAULT, &err);
	struct rule_result all, literal, full;

	CHECK(mv != NULL);
	if (mv == NULL)
		return;
	rs->prefilter_mode = PREFILTER_NONE;
	CHECK(ruleset_eval(rs, mv, &default_env, &all));
	rs->prefilter_mode = PREFILTER_LITERAL;
	CHECK(ruleset_eval(rs, mv, &default_env, &literal));
	rs->prefilter_mode = PREFILTER_ALL;
	CHECK(ruleset_eval(rs, mv, &default_env, &full));
	CHECK(same_hits(name, "the literal prefilter", &literal, &all));
	CHECK(same_hits(name, "Hyperscan and the literal prefilter", &full, &all));
	*hits_r += all.nhits;
	rule_result_free(&all);
	rule_result_free(&literal);
	rule_result_free(&full);
	message_view_free(&mv);
}

/* A message for the prefilters' edge: obfuscated drug names with accents
 * and digits, curly quotes, no-break spaces, invalid UTF-8, long words. */
static const char unicode_msg[] = MSG_HEAD
	"Subject: =?utf-8?q?V=C3=AFagra_and_C=C3=AEalis_=E2=80=9Cnow=E2=80=9D?=\r\n"
	"Content-Type: multipart/alternative; boundary=\"b\"\r\n"
	"\r\n"
	"--b\r\n"
	"Content-Type: text/plain; charset=utf-8\r\n"
	"Content-Transfer-Encoding: 8bit\r\n"
	"\r\n"
	"Buy V\xc3\xaf" "agra, V-1-@-g-r-@, C\xc3\xae@lis, Xan\xc3\xa4x, V\xc3\xa1l\xc3\xadum and "
	"\xe2\x80\x9cphentermine\xe2\x80\x9d\xc2\xa0now! 100%\xc2\xa0" "FREE \xe2\x82\xac 1.000.000 "
	"dollars to your account. Claim the money today, winning beneficiary.\r\n"
	"Caf\xc3\xa9 cr\xc3\xa8me \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\x98\x80 bad \xff\xfe bytes "
	"here\r\n"
	"extraordinarily conventional international sophisticated transformation "
	"administration implementation representative recommendation\r\n"
	"--b\r\n"
	"Content-Type: text/html; charset=iso-8859-1\r\n"
	"Content-Transfer-Encoding: quoted-printable\r\n"
	"\r\n"
	"<html><body><p>V=EDagra =E0 bas prix, <a href=3D\"http://ex=E4mple.test/v=EF=\r\n"
	"agra?id=3D1\">cliquez ici</a> &nbsp;&#8220;gratuit&#8221;</p>\r\n"
	"<a href=\"https://storage.googleapis.com/x/y.html\">https://paypal.com</a></body></html>\r\n"
	"--b--\r\n";

/* equivalence_glob - prefilter_equivalence_msg() over every file of pattern */
static void
equivalence_glob(struct ruleset *rs, const char *pattern, size_t *nmsg, size_t *hits)
{
	glob_t g;

	if (glob(pattern, 0, NULL, &g) != 0)
		return;
	for (size_t i = 0; i < g.gl_pathc; i++) {
		size_t len;
		char *data = read_text(g.gl_pathv[i], &len);
		if (data != NULL) {
			prefilter_equivalence_msg(rs, g.gl_pathv[i], data, len, hits);
			(*nmsg)++;
		}
		free(data);
	}
	globfree(&g);
}

/*
 * test_prefilter_stock - the stock rules, sub-rules included, hit the same
 * with every rule run, with the literal prefilter and with Hyperscan, on
 * this file's messages, the MIME fuzz corpus, ../shared/testdata's
 * mime-tricky (where present) and every *.eml of $MOAT_CORPUS (default
 * /tmp/corpus, as contrib/bench/make-corpus.py writes it)
 */
static void
test_prefilter_stock(void)
{
	glob_t g;
	struct reports rep = { .strip = "/usr/share/spamassassin" };
	struct ruleset *rs;
	const char *corpus = getenv("MOAT_CORPUS"), *testdata = getenv("MOAT_TESTDATA");
	char golden[PATH_MAX], pattern[PATH_MAX + 64];
	size_t hits = 0, nmsg = 0, lit[RULE_TYPE_COUNT] = { 0 }, all[RULE_TYPE_COUNT] = { 0 };

	if (!dir_exists("/usr/share/spamassassin") ||
	    glob("/usr/share/spamassassin/*.cf", 0, NULL, &g) != 0) {
		test_skip("/usr/share/spamassassin absent");
		return;
	}
	rs = ruleset_load((const char *const *)g.gl_pathv, g.gl_pathc, collect, &rep, NULL);
	globfree(&g);
	CHECK(rs != NULL);
	if (rs == NULL)
		return;
	unsigned hyperscan = ruleset_accelerate(rs, collect, &rep);
	for (size_t i = 0; i < rs->nrules; i++) {
		all[rs->rules[i].type]++;
		lit[rs->rules[i].type] += rs->rules[i].literal != NULL;
		/* compare the sub-rules too, not only what they add up to */
		rs->rules[i].reported = true;
	}
	printf("  literals: body %zu/%zu, rawbody %zu/%zu, full %zu/%zu, uri %zu/%zu; "
	    "Hyperscan: %u\n", lit[RULE_BODY], all[RULE_BODY], lit[RULE_RAWBODY],
	    all[RULE_RAWBODY], lit[RULE_FULL], all[RULE_FULL], lit[RULE_URI], all[RULE_URI],
	    hyperscan);
	CHECK(lit[RULE_BODY] > 0);
	prefilter_equivalence_msg(rs, "plain_msg", plain_msg, strlen(plain_msg), &hits);
	prefilter_equivalence_msg(rs, "unicode_msg", unicode_msg, strlen(unicode_msg), &hits);
	nmsg += 2;
	if (golden_dir(golden, sizeof(golden))) {
		snprintf(pattern, sizeof(pattern), "%s/../../fuzz/corpus/mime/*", golden);
		equivalence_glob(rs, pattern, &nmsg, &hits);
	}
	for (size_t depth = 1; testdata != NULL && *testdata != '\0' && depth <= 3; depth++) {
		snprintf(pattern, sizeof(pattern), "%s/mime-tricky/%s", testdata,
		    depth == 1 ? "*.eml" : depth == 2 ? "*/*.eml" : "*/*/*.eml");
		equivalence_glob(rs, pattern, &nmsg, &hits);
	}
	snprintf(pattern, sizeof(pattern), "%s/*.eml", corpus != NULL ? corpus : "/tmp/corpus");
	equivalence_glob(rs, pattern, &nmsg, &hits);
	printf("  %zu messages, %zu hits (sub-rules included), the same with every prefilter\n",
	    nmsg, hits);
	CHECK(nmsg >= 2);
	ruleset_unref(&rs);
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
	{ "prefilter_literals", test_prefilter_literals },
	{ "prefilter_eval", test_prefilter_eval },
	{ "prefilter_stock", test_prefilter_stock },
	{ "accelerate_while_evaluating", test_accelerate_while_evaluating },
};

int
main(void)
{
	int rc;
	char path[PATH_MAX];

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/moat-test-ruleset.XXXXXX");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	message_view_init();
	rc = test_main(cases, TEST_COUNT(cases));
	message_view_deinit();
	rule_eval_thread_cleanup();
	for (size_t i = 0; i < 5; i++) {
		static const char *const names[] = {
			"test.rules", "nul.rules", "empty.rules", "extra.rules", ""
		};
		snprintf(path, sizeof(path), "%s/%s", tmpdir, names[i]);
		if (*names[i] != '\0')
			unlink(path);
	}
	rmdir(tmpdir);
	return rc;
}
