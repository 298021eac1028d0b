/*
 * test-config.c - configuration loading: defaults, file syntax, units,
 * precedence (later lines, then -o), and every error naming file:line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "test.h"

struct errors {
	char text[8192];
	int count;
};

static void
collect(void *ctx, bool fatal, const char *message)
{
	struct errors *e = ctx;
	size_t n = strlen(e->text);
	snprintf(e->text + n, sizeof(e->text) - n, "%s\n", message);
	e->count++;
}

static const char *
write_file(const char *content)
{
	static char path[64];
	snprintf(path, sizeof(path), "/tmp/moat-test-config.%ld", (long)getpid());
	FILE *fp = fopen(path, "w");
	fputs(content, fp);
	fclose(fp);
	return path;
}

static struct config *
load(const char *content, char **overrides, size_t n, struct errors *e)
{
	memset(e, 0, sizeof(*e));
	/* No rule files here: test-ruleset covers them. */
	char *with_rules[16] = { "rules=" };
	for (size_t i = 0; i < n && i < 15; i++)
		with_rules[i + 1] = overrides[i];
	return config_load(content != NULL ? write_file(content) : NULL, with_rules, n + 1,
	    collect, e);
}

static void
test_defaults(void)
{
	struct errors e;
	struct config *cfg = load(NULL, NULL, 0, &e);

	CHECK(cfg != NULL);
	CHECK_INT(e.count, 0);
	CHECK_STR(cfg->listen_text, "127.0.0.1:2525");
	CHECK_STR(cfg->backend_text, "127.0.0.1:25");
	CHECK_INT(cfg->max_message_size, 26214400);
	CHECK_INT(cfg->command_timeout_ms, 300000);
	CHECK_INT(cfg->bare_newline, BARE_NEWLINE_REJECT);
	CHECK_INT(cfg->connlimit_mode, CHECK_ON);
	CHECK(cfg->reject_score == 10 && cfg->tag_score == 5);
	CHECK(cfg->hostname[0] != '\0');
	CHECK_STR(cfg->backend_helo, cfg->hostname);
	CHECK_STR(cfg->decision_log, "stderr");
	config_unref(&cfg);
	CHECK(cfg == NULL);
}

static void
test_file_and_units(void)
{
	struct errors e;
	struct config *cfg = load(
	    "# a comment\n"
	    "  listen = 127.0.0.1:2600, [::1]:2600   # trailing comment\n"
	    "max_message_size = 10M\n"
	    "message_memory_limit=64k\n"
	    "command_timeout = 5m\n"
	    "data_timeout = 1500ms\n"
	    "backend_timeout = 42\n"
	    "backend_xclient = no\n"
	    "bare_newline = NORMALIZE\n"
	    "hostname = mx.example.org\n"
	    "max_recipients = 5\n"
	    "max_recipients = 7\n"
	    "\n"
	    "connlimit_mode = monitor\n", NULL, 0, &e);

	CHECK(cfg != NULL);
	if (cfg == NULL) {
		printf("%s", e.text);
		return;
	}
	CHECK_INT(cfg->nlisten, 2);
	CHECK_INT(cfg->max_message_size, 10 * 1024 * 1024);
	CHECK_INT(cfg->message_memory_limit, 64 * 1024);
	CHECK_INT(cfg->command_timeout_ms, 300000);
	CHECK_INT(cfg->data_timeout_ms, 1500);
	CHECK_INT(cfg->backend_timeout_ms, 42000);
	CHECK(!cfg->backend_xclient);
	CHECK_INT(cfg->bare_newline, BARE_NEWLINE_NORMALIZE);
	CHECK_STR(cfg->hostname, "mx.example.org");
	CHECK_STR(cfg->backend_helo, "mx.example.org");
	CHECK_INT(cfg->max_recipients, 7);
	CHECK_INT(cfg->connlimit_mode, CHECK_MONITOR);
	config_unref(&cfg);
}

static void
test_overrides_win(void)
{
	struct errors e;
	char *o[] = { "max_recipients=3", "hostname = override.example" };
	struct config *cfg = load("max_recipients = 9\nhostname = file.example\n", o, 2, &e);

	CHECK(cfg != NULL);
	if (cfg != NULL) {
		CHECK_INT(cfg->max_recipients, 3);
		CHECK_STR(cfg->hostname, "override.example");
	}
	config_unref(&cfg);
}

static void
test_errors_name_file_and_line(void)
{
	static const struct {
		const char *content;
		const char *expect;	/* substring of the error, after "PATH:" */
	} cases[] = {
		{ "bogus_key = 1\n", ":1: unknown key \"bogus_key\"" },
		{ "\n\nmax_message_size = lots\n", ":3: max_message_size: a size" },
		{ "bare_newline = maybe\n", ":1: bare_newline: reject or normalize expected" },
		{ "listen = nonsense\n", ":1: listen: nonsense: expected host:port" },
		{ "listen = 127.0.0.1:99999\n", ":1: listen: 127.0.0.1:99999: port out of range" },
		{ "backend = [::1\n", ":1: backend:" },
		{ "no equals sign\n", ":1: expected \"key = value\"" },
		{ "max_recipients = 0\n", ":1: max_recipients: 0 out of range" },
		{ "command_timeout = 5 minutes\n", ":1: command_timeout: a duration" },
		{ "backend_xclient = perhaps\n", ":1: backend_xclient: yes or no expected" },
		{ "connlimit_mode = sometimes\n", ":1: connlimit_mode: off, monitor or on expected" },
		{ "reject_score = high\n", ":1: reject_score: a score expected" },
		{ "tag_score = 20\n", ": tag_score (20) is above reject_score (10)" },
		{ "hostname = two words\n", ": hostname: must be one word" },
	};
	for (size_t i = 0; i < TEST_COUNT(cases); i++) {
		struct errors e;
		struct config *cfg = load(cases[i].content, NULL, 0, &e);
		CHECK(cfg == NULL);
		config_unref(&cfg);
		if (strstr(e.text, cases[i].expect) == NULL) {
			printf("  case %zu: want \"%s\" in: %s", i, cases[i].expect, e.text);
			test_failures++;
		}
		/* Each error names the file it came from. */
		CHECK(strncmp(e.text, "/tmp/moat-test-config.", 22) == 0);
	}
}

static void
test_all_errors_reported(void)
{
	struct errors e;
	char *o[] = { "nokey=1" };
	struct config *cfg = load("a = 1\nb = 2\nmax_recipients = x\n", o, 1, &e);

	CHECK(cfg == NULL);
	CHECK_INT(e.count, 4);
	CHECK(strstr(e.text, ":1: unknown key \"a\"") != NULL);
	CHECK(strstr(e.text, ":2: unknown key \"b\"") != NULL);
	CHECK(strstr(e.text, "-o nokey: unknown key \"nokey\"") != NULL);
}

static void
test_missing_file(void)
{
	struct errors e;
	memset(&e, 0, sizeof(e));
	struct config *cfg = config_load("/nonexistent/moatd.conf", NULL, 0, collect, &e);

	CHECK(cfg == NULL);
	CHECK(strstr(e.text, "/nonexistent/moatd.conf: cannot open") != NULL);
}

static void
test_current_and_generation(void)
{
	struct errors e;
	struct config *a = load(NULL, NULL, 0, &e), *b = load(NULL, NULL, 0, &e);

	CHECK(a != NULL && b != NULL);
	CHECK(b->generation > a->generation);
	config_swap(a);
	struct config *cur = config_current();
	CHECK(cur == a);
	CHECK_INT(atomic_load(&a->refs), 2);
	config_swap(b);	/* a stays alive through cur */
	CHECK_INT(atomic_load(&a->refs), 1);
	config_unref(&cur);
	cur = config_current();
	CHECK(cur == b);
	config_unref(&cur);
	config_swap(NULL);
}

int
main(void)
{
	static const struct test_case cases[] = {
		{ "defaults", test_defaults },
		{ "file_and_units", test_file_and_units },
		{ "overrides_win", test_overrides_win },
		{ "errors_name_file_and_line", test_errors_name_file_and_line },
		{ "all_errors_reported", test_all_errors_reported },
		{ "missing_file", test_missing_file },
		{ "current_and_generation", test_current_and_generation },
	};
	int rc = test_main(cases, TEST_COUNT(cases));
	char path[64];
	snprintf(path, sizeof(path), "/tmp/moat-test-config.%ld", (long)getpid());
	unlink(path);
	return rc;
}
