/*
 * fuzz-mime.c - libFuzzer target for rules/message.c, the parsed message view.
 *
 * The input is a message.  It is parsed with the default scan limit and
 * with a small one taken from the data; every view must be well formed:
 * texts that are C strings of their length, within the limit, body and
 * rawbody and decoded headers valid UTF-8, full the input's prefix, URIs
 * distinct and bounded.  Anything else aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "message.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_text(const char *t, size_t len, size_t limit, bool utf8)
{
	if (t == NULL || t[len] != '\0' || strlen(t) != len || len > limit)
		abort();
	if (utf8 && !g_utf8_validate(t, (gssize)len, NULL))
		abort();
}

static void
check(const char *in, size_t size, size_t limit)
{
	struct message_view *mv = message_view_parse(in, size, limit, NULL);
	size_t len;

	if (mv == NULL)
		abort();
	if (limit == 0)
		limit = MESSAGE_SCAN_LIMIT_DEFAULT;
	const char *body = message_view_body(mv, &len);
	check_text(body, len, limit, true);
	const char *raw = message_view_rawbody(mv, &len);
	check_text(raw, len, limit, true);
	const char *full = message_view_full(mv, &len);
	check_text(full, len, limit, false);
	/* full is the input, NUL bytes read as spaces */
	if (len != (size < limit ? size : limit))
		abort();
	for (size_t i = 0; i < len; i++)
		if (full[i] != (in[i] == '\0' ? ' ' : in[i]))
			abort();

	for (size_t i = 0; i < message_view_header_count(mv); i++) {
		const struct message_header *h = message_view_header(mv, i);
		if (h == NULL || h->name == NULL || h->raw == NULL || h->decoded == NULL ||
		    !g_utf8_validate(h->decoded, -1, NULL) || strchr(h->raw, '\n') != NULL)
			abort();
	}
	if (message_view_header(mv, message_view_header_count(mv)) != NULL)
		abort();

	size_t n = message_view_uri_count(mv);
	GHashTable *seen = g_hash_table_new(g_str_hash, g_str_equal);
	if (n > 1000 || message_view_uri(mv, n) != NULL)
		abort();
	for (size_t i = 0; i < n; i++) {
		const char *u = message_view_uri(mv, i);
		if (u == NULL || *u == '\0' || strlen(u) > 4096 + 7 ||
		    !g_utf8_validate(u, -1, NULL) || g_hash_table_contains(seen, u))
			abort();
		g_hash_table_add(seen, (gpointer)u);
	}
	g_hash_table_destroy(seen);
	message_view_free(&mv);
	if (mv != NULL)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;

	check(in, size, 0);
	/* A small limit cuts inside characters, parts and references. */
	check(in, size, size == 0 ? 1 : 1 + (size_t)data[size - 1] * 4);
	return 0;
}
