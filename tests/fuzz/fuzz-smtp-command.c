/*
 * fuzz-smtp-command.c - libFuzzer target for proxy/smtp_parse.c.
 *
 * The input is one client command line (bounded as the session bounds it).
 * Beyond memory safety it asserts what the session relies on: results point
 * into the line, and an accepted address holds no byte that could break a
 * log line or the command relayed to the backend.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_path(const char *args, size_t len, const char *prefix, bool allow_null)
{
	/* Static: the struct is large and the fuzzer runs deep stacks. */
	static struct smtp_path path;
	enum smtp_path_error err = smtp_path_parse(args, len, prefix, allow_null, &path);

	if (err != SMTP_PATH_OK)
		return;
	size_t alen = strnlen(path.address, sizeof(path.address));
	if (alen > SMTP_PATH_MAX)
		abort();
	if (path.is_null != (alen == 0) || (path.is_null && !allow_null))
		abort();
	/* No control byte and (outside quotes) no space or bracket. */
	bool quoted = false, eight = false;
	size_t at = alen;	/* the last unquoted '@' */
	for (size_t i = 0; i < alen; i++) {
		unsigned char c = (unsigned char)path.address[i];
		if (c < 0x20 || c == 0x7f)
			abort();
		if (c >= 0x80)
			eight = true;
		if (quoted && c == '\\' && i + 1 < alen) {
			/* The escaped byte loses its meaning, not its checks. */
			c = (unsigned char)path.address[++i];
			if (c < 0x20 || c == 0x7f)
				abort();
			if (c >= 0x80)
				eight = true;
		} else if (c == '"') {
			quoted = !quoted;
		} else if (!quoted && c == '@') {
			at = i;
		} else if (!quoted && (c == ' ' || c == '<' || c == '>')) {
			abort();
		}
	}
	if (eight != path.has_8bit)
		abort();
	/* Nothing quotes in a domain: no byte there may need quoting. */
	for (size_t i = at + 1; i < alen; i++)
		if (strchr(" \"<>\\", path.address[i]) != NULL)
			abort();
	if (path.nparams > SMTP_PARAMS_MAX)
		abort();
	for (size_t i = 0; i < path.nparams; i++) {
		const struct smtp_param *p = &path.params[i];
		if (p->keyword < args || p->keyword_len == 0 ||
		    p->keyword + p->keyword_len > args + len)
			abort();
		if (p->value != NULL && (p->value < args || p->value_len == 0 ||
		    p->value + p->value_len > args + len))
			abort();
		(void)smtp_param_is(p, "SIZE");
	}
}

static void
check_xtext(const char *in)
{
	/* Worst case: every byte becomes "+XX". */
	static char out[3 * SMTP_COMMAND_LINE_MAX + 1];
	char small[16];
	int n = smtp_xtext_encode(in, out, sizeof(out));

	if (n < 0 || (size_t)n != strlen(out))
		abort();
	/* Decoding must give the input back, and only xchar may appear. */
	size_t o = 0;
	for (int i = 0; i < n; i++) {
		unsigned char c = (unsigned char)out[i];
		if (c < 33 || c > 126 || c == '=')
			abort();
		if (c == '+') {
			if (i + 2 >= n)
				abort();
			char hex[3] = { out[i + 1], out[i + 2], '\0' };
			c = (unsigned char)strtoul(hex, NULL, 16);
			i += 2;
		}
		if ((unsigned char)in[o++] != c)
			abort();
	}
	if (in[o] != '\0')
		abort();
	/* A short buffer must fail cleanly, or give the same prefix-complete result. */
	size_t outsize = strlen(in) % sizeof(small);
	memset(small, '#', sizeof(small));
	int m = smtp_xtext_encode(in, small, outsize);
	for (size_t i = outsize; i < sizeof(small); i++)
		if (small[i] != '#')
			abort();
	if (m >= 0 && (m != n || memcmp(small, out, (size_t)n + 1) != 0))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* +1: a NUL for xtext, which takes a C string. */
	static char line[SMTP_COMMAND_LINE_MAX + 1];
	struct smtp_command cmd;

	if (size > SMTP_COMMAND_LINE_MAX)
		size = SMTP_COMMAND_LINE_MAX;
	memcpy(line, data, size);
	line[size] = '\0';

	smtp_command_parse(line, size, &cmd);
	if (cmd.args < line || cmd.args + cmd.args_len > line + size)
		abort();
	if ((unsigned)cmd.verb >= SMTP_VERB_COUNT || smtp_verb_name(cmd.verb) == NULL)
		abort();

	check_path(cmd.args, cmd.args_len, "FROM", true);
	check_path(cmd.args, cmd.args_len, "TO", false);
	/* The raw line too: the session may hand over args it trimmed itself. */
	check_path(line, size, "FROM", true);
	check_path(line, size, "TO", false);

	if (smtp_helo_valid(cmd.args, cmd.args_len)) {
		if (cmd.args_len == 0 || cmd.args_len > SMTP_DOMAIN_MAX)
			abort();
		for (size_t i = 0; i < cmd.args_len; i++)
			if ((unsigned char)cmd.args[i] <= 0x20 || cmd.args[i] == 0x7f)
				abort();
	}
	check_xtext(line);
	return 0;
}
