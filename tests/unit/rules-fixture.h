/*
 * rules-fixture.h - what the rule engine's unit tests (test-ruleset.c,
 * test-prefilter.c) share.  Golden files are in $MOAT_SRCDIR/tests/rules/
 * golden, else ../../tests/rules/golden from the test executable.
 */
#ifndef MOAT_RULES_FIXTURE_H
#define MOAT_RULES_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>

#include "message.h"
#include "ruleset.h"
#include "ruleset_private.h"

/* What loading reported, one "fatal|warning: where: message" line each. */
struct reports {
	char text[16384];
	int fatal, warnings;
	const char *strip;	/* a directory prefix removed from the text */
};

#define MSG_HEAD "From: \"Bob Example\" <bob@example.org>\r\n" \
	"To: Alice <alice@example.net>, carol@example.net\r\n" \
	"Cc: dave@example.net\r\n" \
	"Subject: =?UTF-8?Q?Caf=C3=A9_offer?=\r\n" \
	"Message-ID: <123@example.org>\r\n" \
	"Received: from mx1.example.org by mx.example.net\r\n" \
	"Received: from mx9.example.org by mx1.example.org\r\n" \
	"X-Mailer: Bulk Sender 2.0\r\n"

extern const char plain_msg[];		/* MSG_HEAD, a text/plain body with a URI */
extern const char *const default_rcpts[];	/* two recipients */
extern const struct rule_envelope default_env;

struct test_case;
/* fixture_run - test_main() between the set-up (a temporary directory,
 * the MIME library) and the clean-up; the exit status */
int fixture_run(const struct test_case *cases, size_t n);
/* fixture_tmpdir - the temporary directory write_file() writes into */
const char *fixture_tmpdir(void);

/* collect - a ruleset_report_fn that appends to a struct reports */
void collect(void *ctx, bool fatal, const char *where, const char *message);
/* write_file - name (test.rules, nul.rules, empty.rules, extra.rules) in
 * the temporary directory; its path, valid until the next call */
const char *write_file(const char *name, const char *content);
/* load_text - a rule set from text (written to test.rules) */
struct ruleset *load_text(const char *text, struct reports *r);
struct message_view *parse(const char *msg);
/* hits_of - "A B C": the names a message hits, in order, or "(load failed)" */
const char *hits_of(const char *rules, const char *msg, const struct rule_envelope *env,
    double *score_r);

bool dir_exists(const char *path);
/* golden_dir - where the golden files are */
bool golden_dir(char *out, size_t outlen);
/* read_text - the file, NUL-terminated, its length in *len_r if not NULL */
char *read_text(const char *path, size_t *len_r);

#endif
