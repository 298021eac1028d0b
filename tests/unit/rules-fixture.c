/*
 * rules-fixture.c - what the rule engine's unit tests share
 * (rules-fixture.h): rule sets loaded from text through a temporary
 * file, parsed messages, the names a message hits, and where the golden
 * files and test corpora are.
 */
#include <sys/stat.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rules-fixture.h"
#include "test.h"

static char tmpdir[64];

int
fixture_run(const struct test_case *cases, size_t n)
{
	/* every file write_file() is given a name of */
	static const char *const names[] = { "test.rules", "nul.rules", "empty.rules",
		"extra.rules" };
	char path[PATH_MAX];
	int rc;

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/moat-test-rules.XXXXXX");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	message_view_init();
	rc = test_main(cases, n);
	message_view_deinit();
	rule_eval_thread_cleanup();
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", tmpdir, names[i]);
		unlink(path);
	}
	rmdir(tmpdir);
	return rc;
}

const char *
fixture_tmpdir(void)
{
	return tmpdir;
}

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

void
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

const char *
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
struct ruleset *
load_text(const char *text, struct reports *r)
{
	const char *path = write_file("test.rules", text);

	memset(r, 0, sizeof(*r));
	r->strip = tmpdir;
	return ruleset_load(&path, 1, collect, r, NULL);
}

struct message_view *
parse(const char *msg)
{
	const char *err = NULL;
	struct message_view *mv = message_view_parse(msg, strlen(msg), MESSAGE_SCAN_LIMIT_DEFAULT,
	    &err);

	if (mv == NULL)
		printf("  cannot parse the message: %s\n", err != NULL ? err : "?");
	return mv;
}

const char *const default_rcpts[] = { "postmaster@example.net", "bob@example.net" };
const struct rule_envelope default_env = {
	"192.0.2.7", "mail.example.com", "mail.example.com", "sender@example.com",
	default_rcpts, 2
};

/* hits_of - "A B C": the names a message hits, in order, or "(load failed)" */
const char *
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

const char plain_msg[] = MSG_HEAD
	"Content-Type: text/plain; charset=utf-8\r\n"
	"\r\n"
	"Hello Alice,\r\n"
	"buy cheap viagra now at https://bit.ly/abc123 today.\r\n"
	"\r\n"
	"Regards\r\n";

bool
dir_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* golden_dir - where the golden files are (see the top of this file) */
bool
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
char *
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

