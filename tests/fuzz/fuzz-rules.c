/*
 * fuzz-rules.c - libFuzzer target for the rule loader and evaluator: any
 * file content must give a rule set or file:line problems, never a crash,
 * and a rule set that loads must evaluate a small fixed message within its
 * limits, with the same hits once Hyperscan prefilters it (a difference
 * is a prefilter that missed a match).  The input is written to a file
 * because ruleset_load() reads files (and follows includes relative to
 * them).  The input as a pattern also goes through hsscan's projection.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hsscan.h"
#include "message.h"
#include "ruleset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char message[] =
    "Received: from mx1.example.org by mx.example.net\r\n"
    "From: \"Bob Example\" <bob@example.org>\r\n"
    "To: alice@example.net, carol@example.net\r\n"
    "Cc: dave@example.net\r\n"
    "Subject: =?UTF-8?Q?Caf=C3=A9_free_money?=\r\n"
    "Message-ID: <123@example.org>\r\n"
    "X-Mailer: Bulk Sender\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/alternative; boundary=\"B\"\r\n"
    "\r\n"
    "--B\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "\r\n"
    "Buy viagra at https://bit.ly/abc and http://198.51.100.7/x \xff\xfe invalid UTF-8\r\n"
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab\r\n"
    "--B\r\n"
    "Content-Type: text/html\r\n"
    "\r\n"
    "<p style=\"display:none\">hidden</p><a href=\"http://example.com/a.exe\">x</a>\r\n"
    "--B--\r\n";

static const char *const rcpts[] = { "alice@example.net", "postmaster@example.net" };
static const struct rule_envelope envelope = {
	"192.0.2.7", "mail.example.org", "mail.example.org", "bob@example.org", rcpts, 2
};

static void
ignore(void *ctx, bool fatal, const char *where, const char *message_)
{
	(void)ctx;
	(void)fatal;
	(void)where;
	(void)message_;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct message_view *mv;
	char path[64];
	const char *paths[1] = { path };
	struct ruleset_stats st;
	struct ruleset *rs;
	FILE *fp;

	if (mv == NULL) {
		const char *err;
		message_view_init();
		mv = message_view_parse(message, sizeof(message) - 1, MESSAGE_SCAN_LIMIT_DEFAULT, &err);
		if (mv == NULL)
			abort();
	}
	snprintf(path, sizeof(path), "/tmp/moat-fuzz-rules.%ld", (long)getpid());
	if ((fp = fopen(path, "wb")) == NULL)
		return 0;
	if (size > 0 && fwrite(data, 1, size, fp) != size) {
		fclose(fp);
		unlink(path);
		return 0;
	}
	fclose(fp);
	rs = ruleset_load(paths, 1, ignore, NULL, &st);
	unlink(path);
	/* a set is returned exactly when no problem was fatal */
	if ((rs != NULL) != (st.errors == 0))
		abort();
	if (rs != NULL) {
		struct rule_result res, accel;
		if (!ruleset_eval(rs, mv, &envelope, &res))
			abort();
		double sum = 0;
		for (size_t i = 0; i < res.nhits; i++)
			sum += res.hits[i].score;
		if (res.nhits > st.rules || sum != res.score)
			abort();
		ruleset_accelerate(rs, ignore, NULL);
		if (!ruleset_eval(rs, mv, &envelope, &accel) || accel.nhits != res.nhits)
			abort();
		for (size_t i = 0; i < res.nhits; i++)
			if (strcmp(accel.hits[i].name, res.hits[i].name) != 0)
				abort();
		rule_result_free(&res);
		rule_result_free(&accel);
		ruleset_unref(&rs);
	}
	/* the projection of any pattern: a string or a refusal, nothing worse */
	char *pat = malloc(size + 1);
	if (pat != NULL) {
		memcpy(pat, data, size);
		pat[size] = '\0';
		free(hsscan_project_pattern(pat));
		char *out = malloc(size + 1);
		if (out != NULL && hsscan_project_text((const char *)data, size, out) != SIZE_MAX &&
		    hsscan_project_text((const char *)data, size, out) > size)
			abort();
		free(out);
		free(pat);
	}
	return 0;
}
