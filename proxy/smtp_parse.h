/*
 * smtp_parse.h - parsing of SMTP command lines received from clients.
 *
 * Pure functions over one command line (without its CRLF): no allocation,
 * no I/O, so the parser can be unit-tested and fuzzed on its own.  Results
 * point into caller-owned buffers.
 */
#ifndef MOAT_SMTP_PARSE_H
#define MOAT_SMTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>

/*
 * RFC 5321 4.5.3.1.4 allows 512 octets per command line; SMTP extensions
 * (RFC 1869 section 4.1.2, SIZE, DSN ORCPT, SMTPUTF8 addresses) lengthen it.
 * Postfix accepts 2048 (line_length_limit); so do we, CRLF included.
 */
#define SMTP_COMMAND_LINE_MAX 2048

/* RFC 5321 4.5.3.1.3: a reverse-path or forward-path is at most 256 octets. */
#define SMTP_PATH_MAX 256

/* RFC 5321 4.5.3.1.2: a domain name is at most 255 octets. */
#define SMTP_DOMAIN_MAX 255

/* Parameters a MAIL or RCPT command may carry (RFC 1869 esmtp-param). */
#define SMTP_PARAMS_MAX 16

enum smtp_verb {
	SMTP_VERB_UNKNOWN,
	SMTP_VERB_HELO,
	SMTP_VERB_EHLO,
	SMTP_VERB_MAIL,
	SMTP_VERB_RCPT,
	SMTP_VERB_DATA,
	SMTP_VERB_RSET,
	SMTP_VERB_NOOP,
	SMTP_VERB_QUIT,
	SMTP_VERB_VRFY,
	SMTP_VERB_EXPN,
	SMTP_VERB_HELP,
	SMTP_VERB_STARTTLS,
	SMTP_VERB_AUTH,
	SMTP_VERB_BDAT,
	SMTP_VERB_ETRN,
	SMTP_VERB_COUNT /* must be last */
};

struct smtp_command {
	enum smtp_verb verb;
	const char *args;	/* after the verb and one space; "" if none */
	size_t args_len;
};

struct smtp_param {
	const char *keyword;	/* esmtp-keyword, not NUL-terminated */
	size_t keyword_len;
	const char *value;	/* NULL when the parameter has no "=value" */
	size_t value_len;
};

struct smtp_path {
	char address[SMTP_PATH_MAX + 1];	/* without the angle brackets */
	bool is_null;				/* "<>" */
	bool has_8bit;				/* needs SMTPUTF8 (RFC 6531) */
	struct smtp_param params[SMTP_PARAMS_MAX];
	size_t nparams;
};

enum smtp_path_error {
	SMTP_PATH_OK,
	SMTP_PATH_SYNTAX,	/* no "FROM:"/"TO:" or no brackets: 501 5.5.4 */
	SMTP_PATH_BAD_ADDRESS,	/* the address itself is malformed: 501 5.1.x */
	SMTP_PATH_TOO_LONG,	/* over SMTP_PATH_MAX: 501 5.5.4 */
	SMTP_PATH_BAD_PARAM,	/* malformed esmtp-param: 501 5.5.4 */
	SMTP_PATH_TOO_MANY_PARAMS,
};

/* smtp_command_parse - split a command line into verb and arguments */
void smtp_command_parse(const char *line, size_t len, struct smtp_command *cmd_r);

/* smtp_verb_name - the canonical upper-case name of a verb */
const char *smtp_verb_name(enum smtp_verb verb);

/*
 * smtp_path_parse - parse "FROM:<addr> params" (prefix "FROM") or
 * "TO:<addr> params" (prefix "TO").  The params point into args.
 */
enum smtp_path_error smtp_path_parse(const char *args, size_t args_len,
    const char *prefix, bool allow_null, struct smtp_path *path_r);

/* smtp_param_is - case-insensitive keyword comparison */
bool smtp_param_is(const struct smtp_param *param, const char *keyword);

/* smtp_helo_valid - is the HELO/EHLO argument something we can log and relay? */
bool smtp_helo_valid(const char *arg, size_t len);

/* smtp_xtext_encode - RFC 3461 xtext, for XCLIENT/XFORWARD values; returns length or -1 */
int smtp_xtext_encode(const char *in, char *out, size_t outsize);

#endif
