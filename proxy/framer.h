/*
 * framer.h - the DATA phase framer: end-of-data detection, dot-unstuffing
 * and line-ending normalisation of what a client sends after 354.
 *
 * Streaming and allocation-free: bytes go in, canonical message bytes
 * (unstuffed, CRLF line endings) come out through a callback.  Only
 * CRLF "." CRLF ends the data (RFC 5321 4.1.1.4); every bare-LF or bare-CR
 * look-alike is content, which is what defeats SMTP smuggling.
 */
#ifndef MOAT_FRAMER_H
#define MOAT_FRAMER_H

#include <stdbool.h>
#include <stddef.h>

enum framer_status {
	FRAMER_MORE,		/* all input consumed, end not seen yet */
	FRAMER_END,		/* CRLF.CRLF seen; consumed_r stops after it */
	FRAMER_END_LOOSE,	/* strict mode: a "." line with a bare CR/LF */
};

enum framer_state {
	FRAMER_LINE_START,
	FRAMER_IN_LINE,
	FRAMER_CR,
	FRAMER_DOT,
	FRAMER_DOT_CR,
	FRAMER_STATE_COUNT /* must be last */
};

typedef void framer_output_fn(void *ctx, const char *data, size_t len);

struct framer {
	enum framer_state state;
	bool proper_start;	/* the line began after CRLF or at the start */
	bool strict;		/* bare_newline = reject: stop at a loose "." line */
	bool saw_bare_lf;
	bool saw_bare_cr;
	size_t output_bytes;	/* canonical bytes emitted so far */
};

/* framer_init - start framing a new message */
void framer_init(struct framer *f, bool strict);

/*
 * framer_feed - consume client bytes; canonical output goes to out(ctx, ...).
 * *consumed_r tells how much of in was used (all of it unless an end was found).
 */
enum framer_status framer_feed(struct framer *f, const char *in, size_t len,
    size_t *consumed_r, framer_output_fn *out, void *ctx);

#endif
