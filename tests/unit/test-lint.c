/*
 * test-lint.c - unit tests for rules/lint.c: warnings counted by kind, the
 * way "moatd -n" and "moat-check --lint" summarise a rule set's load.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lint.h"
#include "test.h"

static void
test_kinds(void)
{
	static const struct {
		const char *message, *kind;
	} cases[] = {
		{ "/r/25_uribl.cf:12: body FOO: eval: tests unsupported, skipped",
		  "body: eval: tests unsupported, skipped" },
		{ "/r/a.cf:9: header BAR_2: X-Spam-Relays-External (SpamAssassin's relay analysis) "
		  "unsupported, skipped",
		  "header: X-Spam-Relays-External (SpamAssassin's relay analysis) unsupported, skipped" },
		{ "/r/72_active.cf:9991: meta __W: 7 undefined or unsupported rules count as 0: A, B",
		  "meta: N undefined or unsupported rules count as 0" },
		{ "/r/72_active.cf:9: meta __X: 1 undefined or unsupported rule counts as 0: ALL_TRUSTED",
		  "meta: N undefined or unsupported rule counts as 0" },
		{ "/r/30_text_de.cf:40: lang de: localized lines unsupported, skipped",
		  "lang: localized lines unsupported, skipped" },
		{ "/r/60_whitelist.cf:7: def_whitelist_auth: unsupported directive, skipped",
		  "def_whitelist_auth: unsupported directive, skipped" },
		{ "/r/25.cf:3: ifplugin Mail::SpamAssassin::Plugin::DKIM: SpamAssassin plugins "
		  "unsupported, block skipped",
		  "ifplugin Mail::SpamAssassin::Plugin::DKIM: SpamAssassin plugins unsupported, "
		  "block skipped" },
		{ "rules: this CPU lacks SSSE3", "rules: this CPU lacks SSSE3" },
		{ "no where at all", "no where at all" },
		{ "", "" },
	};
	char k[128];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		lint_kind(cases[i].message, k, sizeof(k));
		CHECK_STR(k, cases[i].kind);
	}
	/* bounded: a long message gives a kind cut to the buffer */
	char big[4096];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	lint_kind(big, k, sizeof(k));
	CHECK_INT(strlen(k), sizeof(k) - 1);
}

static void
test_summary(void)
{
	struct lint_summary *ls = lint_summary_new();
	char line[128], *out = NULL;
	size_t outlen = 0;
	FILE *f;

	CHECK(ls != NULL);
	if (ls == NULL)
		return;
	for (int i = 0; i < 5; i++) {
		snprintf(line, sizeof(line), "/r/a.cf:%d: body R%d: eval: tests unsupported, skipped",
		    i + 1, i);
		lint_summary_add(ls, line);
	}
	lint_summary_add(ls, "/r/a.cf:99: test: unsupported directive, skipped");
	/* more kinds than it keeps: the rest are totalled, not lost */
	for (int i = 0; i < 300; i++) {
		snprintf(line, sizeof(line), "/r/b.cf:1: directive_%c%c: unsupported directive",
		    'a' + i % 26, 'a' + i / 26);
		lint_summary_add(ls, line);
	}
	CHECK_INT(lint_summary_total(ls), 306);
	f = open_memstream(&out, &outlen);
	CHECK(f != NULL);
	if (f != NULL) {
		lint_summary_print(ls, f);
		fclose(f);
		CHECK(strncmp(out, "       5  body: eval: tests unsupported, skipped\n", 49) == 0);
		CHECK(strstr(out, "(other kinds)") != NULL);
		/* 40 kinds shown and one line for the rest */
		size_t lines = 0;
		for (const char *p = out; *p != '\0'; p++)
			lines += *p == '\n';
		CHECK_INT(lines, 41);
	}
	free(out);
	lint_summary_free(&ls);
	CHECK(ls == NULL);
}

static const struct test_case cases[] = {
	{ "kinds", test_kinds },
	{ "summary", test_summary },
};

int
main(void)
{
	return test_main(cases, TEST_COUNT(cases));
}
