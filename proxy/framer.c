/*
 * framer.c - the DATA phase framer (see framer.h).
 *
 * A byte-level state machine, so that a line of any length costs no buffer
 * and a message split across reads at any byte is framed the same way.
 * Runs of ordinary bytes are found with memchr-like scanning and emitted in
 * one call, which keeps the common case (long CRLF lines) cheap.
 */
#include <string.h>

#include "framer.h"

static const char crlf[2] = { '\r', '\n' };

/* framer_init - start framing a new message */
void
framer_init(struct framer *f, bool strict)
{
	memset(f, 0, sizeof(*f));
	f->state = FRAMER_LINE_START;
	f->proper_start = true;	/* the DATA command's CRLF begins the first line */
	f->strict = strict;
}

static void
emit(struct framer *f, framer_output_fn *out, void *ctx, const char *p, size_t n)
{
	if (n == 0)
		return;
	out(ctx, p, n);
	f->output_bytes += n;
}

/* line_break - a line ended; proper means by CRLF */
static void
line_break(struct framer *f, framer_output_fn *out, void *ctx, bool proper)
{
	emit(f, out, ctx, crlf, 2);
	f->state = FRAMER_LINE_START;
	f->proper_start = proper;
}

/* framer_feed - consume client bytes, emit canonical message bytes */
enum framer_status
framer_feed(struct framer *f, const char *in, size_t len, size_t *consumed_r,
    framer_output_fn *out, void *ctx)
{
	size_t i = 0;

	while (i < len) {
		char c = in[i];

		switch (f->state) {
		case FRAMER_LINE_START:
			if (c == '.') {
				f->state = FRAMER_DOT;
				i++;
				break;
			}
			f->state = FRAMER_IN_LINE;
			break;	/* re-dispatch c as line content */

		case FRAMER_IN_LINE: {
			size_t run = i;
			while (run < len && in[run] != '\r' && in[run] != '\n')
				run++;
			emit(f, out, ctx, in + i, run - i);
			i = run;
			if (i == len)
				break;
			if (in[i] == '\r') {
				f->state = FRAMER_CR;
			} else {
				f->saw_bare_lf = true;
				line_break(f, out, ctx, false);
			}
			i++;
			break;
		}

		case FRAMER_CR:
			if (c == '\n') {
				line_break(f, out, ctx, true);
				i++;
			} else {
				/* Bare CR: a line break for the backend, content for us. */
				f->saw_bare_cr = true;
				line_break(f, out, ctx, false);
			}
			break;

		case FRAMER_DOT:
			if (c == '\r') {
				f->state = FRAMER_DOT_CR;
				i++;
			} else if (c == '\n') {
				/* ".<LF>": the classic smuggling end; content here. */
				f->saw_bare_lf = true;
				emit(f, out, ctx, ".", 1);
				line_break(f, out, ctx, false);
				i++;
				if (f->strict) {
					*consumed_r = i;
					return FRAMER_END_LOOSE;
				}
			} else {
				/* Dot-unstuffing (RFC 5321 4.5.2): drop the leading dot. */
				f->state = FRAMER_IN_LINE;
			}
			break;

		case FRAMER_DOT_CR:
			if (c == '\n' && f->proper_start) {
				*consumed_r = i + 1;
				f->state = FRAMER_LINE_START;
				return FRAMER_END;
			}
			emit(f, out, ctx, ".", 1);
			if (c == '\n') {
				/* "<LF>.<CR><LF>": a "." line that began after a bare LF. */
				line_break(f, out, ctx, true);
				i++;
			} else {
				f->saw_bare_cr = true;
				line_break(f, out, ctx, false);
			}
			if (f->strict) {
				*consumed_r = i;
				return FRAMER_END_LOOSE;
			}
			break;

		case FRAMER_STATE_COUNT:
			/* not a state; keeps the switch exhaustive */
			f->state = FRAMER_IN_LINE;
			break;
		}
	}
	*consumed_r = len;
	return FRAMER_MORE;
}
