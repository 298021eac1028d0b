/*
 * message.h - a parsed view of one message, as rules see it.
 *
 * Built from the canonical message bytes (CRLF line endings, unstuffed),
 * by a MIME parser that survives malformed mail.  It gives the header
 * fields (raw and decoded), the text SpamAssassin's rule types look at:
 *   body     decoded text parts (quoted-printable/base64 undone, charset
 *            converted to UTF-8, HTML rendered to text), Subject first;
 *   rawbody  decoded text parts, HTML not rendered;
 *   uri      the URIs found in text and HTML parts;
 *   full     the message as received;
 * each bounded by scan_limit bytes, so a huge message costs bounded time.
 * Owned by its creator; freed with message_view_free().  Read-only after
 * message_view_parse(), so several threads may read one view.
 */
#ifndef MOAT_MESSAGE_H
#define MOAT_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>

/* SpamAssassin's practice: scan at most about 512 KB of a body. */
#define MESSAGE_SCAN_LIMIT_DEFAULT (512 * 1024)

struct message_view;

struct message_header {
	const char *name;	/* as written, without the colon */
	const char *raw;	/* the value as received, unfolded (CRLF+WSP -> WSP), no leading space */
	const char *decoded;	/* RFC 2047 encoded-words decoded to UTF-8 */
};

/* message_view_parse - parse data[0..len); NULL and *error_r on failure */
struct message_view *message_view_parse(const char *data, size_t len,
    size_t scan_limit, const char **error_r);

/* message_view_free - release everything; sets *mv to NULL */
void message_view_free(struct message_view **mv);

/* The top-level header fields, in order. */
size_t message_view_header_count(const struct message_view *mv);
const struct message_header *message_view_header(const struct message_view *mv, size_t i);

/* Text for body, rawbody and full rules: NUL-terminated, length in *len_r. */
const char *message_view_body(const struct message_view *mv, size_t *len_r);
const char *message_view_rawbody(const struct message_view *mv, size_t *len_r);
const char *message_view_full(const struct message_view *mv, size_t *len_r);

/* The URIs found in text and HTML parts, each once, in order of appearance. */
size_t message_view_uri_count(const struct message_view *mv);
const char *message_view_uri(const struct message_view *mv, size_t i);
/* The same URIs as one text, each ended by "\n": how uri rules are
 * prefiltered (and profiled), one scan for them all. */
const char *message_view_uri_lines(const struct message_view *mv, size_t *len_r);

/* message_view_init / message_view_deinit - process-wide set-up of the MIME library */
void message_view_init(void);
void message_view_deinit(void);

#endif
