/*
 * test-prefilter.c - what decides which rules' regexes run: the literal
 * each rule requires, the Aho-Corasick and Hyperscan prefilters built from
 * them, and the proof that they change no hit (SpamAssassin's stock set
 * over every message corpus at hand, each rule's hit compared with every
 * rule run), including while the Hyperscan prefilter is built under
 * evaluating threads.
 */
#include <glob.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "prefilter.h"
#include "rules-fixture.h"
#include "test.h"

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

/* ---- built while evaluating ---- */

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

static const struct test_case cases[] = {
	{ "prefilter_literals", test_prefilter_literals },
	{ "prefilter_eval", test_prefilter_eval },
	{ "prefilter_stock", test_prefilter_stock },
	{ "accelerate_while_evaluating", test_accelerate_while_evaluating },
};

int
main(void)
{
	return fixture_run(cases, TEST_COUNT(cases));
}
