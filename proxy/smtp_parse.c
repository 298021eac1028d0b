/*
 * smtp_parse.c - parsing of SMTP command lines received from clients.
 *
 * Everything here works on one line the session has already bounded by
 * SMTP_COMMAND_LINE_MAX; nothing allocates, nothing logs.  Addresses are
 * checked for what would break the protocol or a log line (controls,
 * unquoted space, brackets), not for deliverability: the backend decides
 * that and its reply is relayed.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "smtp_parse.h"

static const char *const verb_names[SMTP_VERB_COUNT] = {
	[SMTP_VERB_UNKNOWN] = "UNKNOWN",
	[SMTP_VERB_HELO] = "HELO",
	[SMTP_VERB_EHLO] = "EHLO",
	[SMTP_VERB_MAIL] = "MAIL",
	[SMTP_VERB_RCPT] = "RCPT",
	[SMTP_VERB_DATA] = "DATA",
	[SMTP_VERB_RSET] = "RSET",
	[SMTP_VERB_NOOP] = "NOOP",
	[SMTP_VERB_QUIT] = "QUIT",
	[SMTP_VERB_VRFY] = "VRFY",
	[SMTP_VERB_EXPN] = "EXPN",
	[SMTP_VERB_HELP] = "HELP",
	[SMTP_VERB_STARTTLS] = "STARTTLS",
	[SMTP_VERB_AUTH] = "AUTH",
	[SMTP_VERB_BDAT] = "BDAT",
	[SMTP_VERB_ETRN] = "ETRN",
};

/* smtp_verb_name - the canonical upper-case name of a verb */
const char *
smtp_verb_name(enum smtp_verb verb)
{
	if ((unsigned)verb >= SMTP_VERB_COUNT)
		return "UNKNOWN";
	return verb_names[verb];
}

/* smtp_command_parse - split a command line into verb and arguments */
void
smtp_command_parse(const char *line, size_t len, struct smtp_command *cmd_r)
{
	size_t verb_len = 0;

	cmd_r->verb = SMTP_VERB_UNKNOWN;
	cmd_r->args = line + len;
	cmd_r->args_len = 0;

	while (verb_len < len && line[verb_len] != ' ')
		verb_len++;
	for (int v = SMTP_VERB_UNKNOWN + 1; v < SMTP_VERB_COUNT; v++) {
		if (strlen(verb_names[v]) == verb_len &&
		    strncasecmp(line, verb_names[v], verb_len) == 0) {
			cmd_r->verb = (enum smtp_verb)v;
			break;
		}
	}
	if (verb_len < len) {
		/* Tolerate several spaces after the verb, as Postfix does. */
		size_t start = verb_len;
		while (start < len && line[start] == ' ')
			start++;
		size_t end = len;
		while (end > start && (line[end - 1] == ' ' || line[end - 1] == '\t'))
			end--;
		cmd_r->args = line + start;
		cmd_r->args_len = end - start;
	}
}

/* smtp_param_is - case-insensitive keyword comparison */
bool
smtp_param_is(const struct smtp_param *param, const char *keyword)
{
	return strlen(keyword) == param->keyword_len &&
	    strncasecmp(param->keyword, keyword, param->keyword_len) == 0;
}

/* domain_valid - a domain, an address literal, or a UTF-8 domain (RFC 6531) */
static bool
domain_valid(const char *d, size_t len)
{
	if (len == 0 || len > SMTP_DOMAIN_MAX)
		return false;
	if (d[0] == '[') {
		if (len < 3 || d[len - 1] != ']')
			return false;
		/* No quoting in a literal: '"' must not hide a space or '>'. */
		for (size_t i = 1; i < len - 1; i++) {
			unsigned char c = (unsigned char)d[i];
			if (c <= 0x20 || c >= 0x7f || strchr("[]\\\"<>", c) != NULL)
				return false;
		}
		return true;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)d[i];
		if (!(isalnum(c) || c == '-' || c == '.' || c == '_' || c >= 0x80))
			return false;
	}
	return true;
}

/*
 * address_check - validate a mailbox without its brackets; sets *has_8bit.
 * The domain is optional: RFC 5321 4.1.1.3 requires "postmaster" alone
 * to work in RCPT.
 */
static bool
address_check(const char *a, size_t len, bool *has_8bit)
{
	bool quoted = false;
	size_t at = len;	/* index of the last unquoted '@' */

	*has_8bit = false;
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)a[i];
		if (c >= 0x80) {
			*has_8bit = true;
			continue;
		}
		if (c < 0x20 || c == 0x7f)
			return false;
		if (quoted) {
			if (c == '\\') {
				if (++i >= len)
					return false;
				/* A quoted-pair escapes meaning, not the checks above. */
				c = (unsigned char)a[i];
				if (c >= 0x80)
					*has_8bit = true;
				else if (c < 0x20 || c == 0x7f)
					return false;
			} else if (c == '"') {
				quoted = false;
			}
			continue;
		}
		switch (c) {
		case '"':
			quoted = true;
			break;
		case ' ':
		case '<':
		case '>':
		case '(':
		case ')':
		case ',':
		case ';':
		case '\\':
			return false;
		case '@':
			at = i;
			break;
		default:
			break;
		}
	}
	if (quoted)
		return false;
	if (at == len)
		return true;
	if (at == 0)
		return false;
	return domain_valid(a + at + 1, len - at - 1);
}

/* params_parse - esmtp-params after the path, separated by spaces */
static enum smtp_path_error
params_parse(const char *p, const char *end, struct smtp_path *path_r)
{
	while (p < end) {
		while (p < end && *p == ' ')
			p++;
		if (p == end)
			break;
		if (path_r->nparams == SMTP_PARAMS_MAX)
			return SMTP_PATH_TOO_MANY_PARAMS;
		struct smtp_param *param = &path_r->params[path_r->nparams];
		const char *kw = p;
		if (!isalnum((unsigned char)*p))
			return SMTP_PATH_BAD_PARAM;
		while (p < end && (isalnum((unsigned char)*p) || *p == '-'))
			p++;
		param->keyword = kw;
		param->keyword_len = (size_t)(p - kw);
		param->value = NULL;
		param->value_len = 0;
		if (p < end && *p == '=') {
			const char *v = ++p;
			while (p < end && *p != ' ') {
				unsigned char c = (unsigned char)*p;
				if ((c < 33 || c == '=' || c == 0x7f) && c < 0x80)
					return SMTP_PATH_BAD_PARAM;
				p++;
			}
			if (p == v)
				return SMTP_PATH_BAD_PARAM;
			param->value = v;
			param->value_len = (size_t)(p - v);
		} else if (p < end && *p != ' ') {
			return SMTP_PATH_BAD_PARAM;
		}
		path_r->nparams++;
	}
	return SMTP_PATH_OK;
}

/* smtp_path_parse - parse "FROM:<addr> params" or "TO:<addr> params" */
enum smtp_path_error
smtp_path_parse(const char *args, size_t args_len, const char *prefix,
    bool allow_null, struct smtp_path *path_r)
{
	size_t plen = strlen(prefix);
	const char *end = args + args_len;
	const char *p, *addr, *addr_end;

	memset(path_r, 0, sizeof(*path_r));
	if (args_len < plen + 1 || strncasecmp(args, prefix, plen) != 0 ||
	    args[plen] != ':')
		return SMTP_PATH_SYNTAX;
	p = args + plen + 1;
	/* "MAIL FROM: <a@b>" is common and harmless; Postfix accepts it too. */
	while (p < end && *p == ' ')
		p++;
	if (p == end)
		return SMTP_PATH_SYNTAX;
	if (*p == '<') {
		addr = ++p;
		/* '>' may sit inside a quoted local part; honour the quotes. */
		bool quoted = false;
		while (p < end && (quoted || *p != '>')) {
			if (*p == '"')
				quoted = !quoted;
			else if (*p == '\\' && quoted && p + 1 < end)
				p++;
			p++;
		}
		if (p == end)
			return SMTP_PATH_SYNTAX;
		addr_end = p++;
		if (p < end && *p != ' ')
			return SMTP_PATH_SYNTAX;
	} else {
		/* Bracketless paths (RFC 821 era clients): up to the first space. */
		addr = p;
		while (p < end && *p != ' ')
			p++;
		addr_end = p;
	}
	/* A source route "@a,@b:user@c" is accepted and ignored (RFC 5321 C). */
	if (addr < addr_end && *addr == '@') {
		const char *colon = memchr(addr, ':', (size_t)(addr_end - addr));
		if (colon == NULL)
			return SMTP_PATH_BAD_ADDRESS;
		addr = colon + 1;
	}
	size_t alen = (size_t)(addr_end - addr);
	if (alen > SMTP_PATH_MAX)
		return SMTP_PATH_TOO_LONG;
	if (alen == 0) {
		if (!allow_null)
			return SMTP_PATH_BAD_ADDRESS;
		path_r->is_null = true;
	} else if (!address_check(addr, alen, &path_r->has_8bit)) {
		return SMTP_PATH_BAD_ADDRESS;
	}
	memcpy(path_r->address, addr, alen);
	path_r->address[alen] = '\0';
	return params_parse(p, end, path_r);
}

/* smtp_helo_valid - is the HELO/EHLO argument something we can log and relay? */
bool
smtp_helo_valid(const char *arg, size_t len)
{
	if (len == 0 || len > SMTP_DOMAIN_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)arg[i];
		/* One word: the name (or literal) is what gets relayed in XCLIENT. */
		if (c <= 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

/* smtp_xtext_encode - RFC 3461 section 4 xtext; returns length or -1 */
int
smtp_xtext_encode(const char *in, char *out, size_t outsize)
{
	size_t o = 0;

	for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
		if (*p >= 33 && *p <= 126 && *p != '+' && *p != '=') {
			if (o + 1 >= outsize)
				return -1;
			out[o++] = (char)*p;
		} else {
			if (o + 3 >= outsize)
				return -1;
			snprintf(out + o, 4, "+%02X", *p);
			o += 3;
		}
	}
	if (o >= outsize)
		return -1;
	out[o] = '\0';
	return (int)o;
}
