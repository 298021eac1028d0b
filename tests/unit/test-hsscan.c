/*
 * test-hsscan.c - unit tests for rules/hsscan.c: the one-byte-per-character
 * projection of patterns and texts, and the promise the Hyperscan
 * prefilter makes: whatever PCRE2 matches in UTF mode, the scan marks.
 * The wider equivalence (the stock SpamAssassin rules over real mail)
 * is test-ruleset's prefilter_stock.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "hsscan.h"
#include "test.h"

/* The scan state every test uses (NULL without Hyperscan, where the scan
 * tests skip). */
static struct hsscan_state *state;

static void
test_project_pattern(void)
{
	static const struct {
		const char *in, *out;	/* out NULL: refused */
	} cases[] = {
		{ "abc", "abc" },
		{ "caf\xc3\xa9", "caf\\x80" },
		{ "\\\xc3\xa9t\xc3\xa9", "\\x80t\\x80" },
		{ "[a4\\xE0-\\xE6@]", "[a4\\x80-\\x80@]" },
		{ "[a-\\x{2019}]", "[a-\\x80]" },
		{ "\\x{2019}s", "\\x80s" },
		{ "\\x41\\x7f", "\\x41\\x7F" },
		{ "\\xe9", "\\x80" },
		{ "\\o{101}\\o{351}", "\\x41\\x80" },
		{ "[^a-z]", "[^a-z]" },
		{ "[^\\xE9]", NULL },
		{ "[^a\xc3\xa9]", NULL },
		{ "[]a]", "[]a]" },
		{ "[^]a]", "[^]a]" },
		{ "[[:alpha:]\xc3\xa9]", "[[:alpha:]\\x80]" },
		{ "\\W{2}\\s\\d\\b", "\\W{2}\\s\\d\\b" },
		{ "\\h", NULL },
		{ "\\v", NULL },
		{ "\\R", NULL },
		{ "\\p{L}", NULL },
		{ "\\PL", NULL },
		{ "\\X", NULL },
		{ "\\C", NULL },
		{ "\\N{U+00E9}", NULL },
		{ "\\Nx", "\\Nx" },
		{ "\\Qa.b\\E", NULL },
		{ "\\223", NULL },
		{ "(a)\\1", "(a)\\1" },
		{ "a{1,128}", "a{1,128}" },
		{ "a{1,129}", "a{1,}" },
		{ "a{2048}", "a{128,}" },
		{ "[^>]{0,2048}x", "[^>]{0,}x" },
		{ "\\w{300,}", "\\w{128,}" },
		{ "(ab){1,200}", NULL },
		{ "(ab){1,99}", "(ab){1,99}" },
		{ "a{,200}", NULL },
		{ "x{", "x{" },
		{ "x{a,b}", "x{a,b}" },
		{ "[a", NULL },
		{ "\\", NULL },
		{ "\\x{}", NULL },
		{ "\\x{41", NULL },
		{ "bad \xff utf", NULL },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = hsscan_project_pattern(cases[i].in);
		if (cases[i].out == NULL) {
			if (got != NULL)
				printf("  %s: want refused, got \"%s\"\n", cases[i].in, got);
			CHECK(got == NULL);
		} else {
			CHECK_STR(got, cases[i].out);
		}
		free(got);
	}
}

static void
test_project_text(void)
{
	static const struct {
		const char *in, *out;	/* out NULL: refused */
	} cases[] = {
		{ "plain ASCII\r\n", "plain ASCII\r\n" },
		{ "caf\xc3\xa9!", "caf\x80!" },
		{ "\xe6\x97\xa5\xe6\x9c\xac", "\x80\x80" },
		{ "\xf0\x9f\x98\x80.", "\x80." },
		{ "a\xff\xfe" "b", "a\x80\x80" "b" },
		{ "\xc3", "\x80" },
		{ "\xe2\x82", "\x80\x80" },
		{ "\xed\xa0\x80", "\x80\x80\x80" },
		{ "\xc0\xaf", "\x80\x80" },
		{ "o\xe2\x84\xaa", NULL },
		{ "\xc5\xbf", NULL },
		{ "\xe2\x84\xab", "\x80" },
	};
	char out[64];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = hsscan_project_text(cases[i].in, strlen(cases[i].in), out);
		if (cases[i].out == NULL) {
			CHECK(n == SIZE_MAX);
		} else {
			CHECK_MEM(out, n, cases[i].out, strlen(cases[i].out));
		}
	}
}

/* pcre_matches - PCRE2's verdict, compiled as moat compiles a rule */
static bool
pcre_matches(const char *re, uint32_t options, const char *text)
{
	int code;
	PCRE2_SIZE off;
	pcre2_code *c = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED,
	    options | PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &code, &off, NULL);
	pcre2_match_data *md;
	bool m;

	if (c == NULL)
		return false;
	md = pcre2_match_data_create_from_pattern(c, NULL);
	m = pcre2_match(c, (PCRE2_SPTR)text, strlen(text), 0, 0, md, NULL) >= 0;
	pcre2_match_data_free(md);
	pcre2_code_free(c);
	return m;
}

/* test_scan_superset - every pattern PCRE2 matches is marked; texts with a
 * character PCRE2 folds to ASCII are refused */
static void
test_scan_superset(void)
{
	static const struct {
		const char *re;
		uint32_t options;
	} pats[] = {
		{ "a.b", 0 },
		{ "[^x]{3}$", PCRE2_MULTILINE },
		{ "\\W{2}", 0 },
		{ "caf\xc3\xa9", PCRE2_CASELESS },
		{ "\\bword\\b", 0 },
		{ "^foo", PCRE2_MULTILINE },
		{ "v[i1\\xEC-\\xEF]agra", PCRE2_CASELESS },
		{ "\\x{201C}free\\x{201D}", 0 },
		{ "\\S+@\\S+", 0 },
		{ "x.{0,3}y", PCRE2_DOTALL },
		{ "never-there", 0 },
		{ "(?i)SECRET", 0 },
		{ "(a)\\1", 0 },
	};
	static const char *const texts[] = {
		"a\xc3\xa9" "b",
		"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\nnext",
		"\xc3\xa9\xe2\x82\xac",
		"CAF\xc3\x89",
		"\xc3\xa9word\xc3\xa9",
		"line\nfoo",
		"V\xc3\xAF" "AGRA",
		"\xe2\x80\x9c" "free\xe2\x80\x9d",
		"m\xc3\xa9@ex\xc3\xa4mple",
		"x\xf0\x9f\x98\x80\n\xc3\xa9y",
		"secret \xff\xfe",
		"aa",
	};
	size_t n = sizeof(pats) / sizeof(pats[0]);
	struct hsscan_pattern hp[sizeof(pats) / sizeof(pats[0])];
	bool accepted[sizeof(pats) / sizeof(pats[0])];
	const char *why;
	struct hsscan *hs;
	size_t checked = 0;

	for (size_t i = 0; i < n; i++)
		hp[i] = (struct hsscan_pattern){ pats[i].re, pats[i].options, true, false, i };
	if ((hs = hsscan_build(hp, n, accepted, &why)) == NULL) {
		test_skip(why);
		return;
	}
	for (size_t i = 0; i < n; i++)
		CHECK(accepted[i]);
	for (size_t t = 0; t < sizeof(texts) / sizeof(texts[0]); t++) {
		unsigned char marks[sizeof(pats) / sizeof(pats[0])] = { 0 };
		CHECK(hsscan_scan(hs, state, texts[t], strlen(texts[t]), marks));
		for (size_t i = 0; i < n; i++) {
			if (!pcre_matches(pats[i].re, pats[i].options, texts[t]))
				continue;
			checked++;
			if (!marks[i])
				printf("  /%s/ matches text %zu, not marked\n", pats[i].re, t);
			CHECK(marks[i]);
		}
		CHECK(!marks[10]);	/* a plain literal is exact */
	}
	CHECK(checked >= 12);
	unsigned char marks[sizeof(pats) / sizeof(pats[0])] = { 0 };
	CHECK(!hsscan_scan(hs, state, "o\xe2\x84\xaa", 4, marks));
	hsscan_free(&hs);
	CHECK(hs == NULL);
}

/* test_per_line - uri rules see one URI each; the scan sees them a line
 * each: anchors must hold at every line, and whole-text anchors are refused */
static void
test_per_line(void)
{
	struct hsscan_pattern hp[] = {
		{ "^https?://evil\\.", 0, true, true, 0 },
		{ "\\.exe$", 0, true, true, 1 },
		{ "\\Ahttp://evil", 0, true, true, 2 },
		{ "good\\z", 0, true, true, 3 },
		{ "^https?://evil\\.", 0, true, false, 4 },
	};
	static const char lines[] = "http://good.example/\nhttps://evil.example/a.exe\n";
	bool accepted[5];
	unsigned char marks[5] = { 0 };
	const char *why;
	struct hsscan *hs = hsscan_build(hp, 5, accepted, &why);

	if (hs == NULL) {
		test_skip(why);
		return;
	}
	CHECK(accepted[0] && accepted[1] && accepted[4]);
	CHECK(!accepted[2] && !accepted[3]);
	CHECK(hsscan_scan(hs, state, lines, strlen(lines), marks));
	CHECK(marks[0] && marks[1]);
	CHECK(!marks[4]);	/* not per line: anchored at the start of the text */
	hsscan_free(&hs);
}

static const struct test_case cases[] = {
	{ "project_pattern", test_project_pattern },
	{ "project_text", test_project_text },
	{ "scan_superset", test_scan_superset },
	{ "per_line", test_per_line },
};

int
main(void)
{
	int rc;

	state = hsscan_state_new();
	rc = test_main(cases, TEST_COUNT(cases));
	hsscan_state_free(&state);
	return rc;
}
