/*
 * fuzz-reply.c - libFuzzer target for proxy/reply.c.
 *
 * The input is what a backend sends: it is cut into lines at LF (a CR
 * before it dropped) and fed to reply_add_line, one reply after another.
 * Every accepted reply must have a wire form that is safe to relay as is.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* check_wire - the structure every accepted line must leave in wire[] */
static void
check_wire(const struct reply *r, bool done)
{
	size_t text_total = 0, o = 0;
	const char *t;

	if (r->nlines == 0 || r->nlines > REPLY_LINES_MAX || r->len >= REPLY_MAX ||
	    r->code < 200 || r->code > 599 || strlen(r->wire) != r->len)
		abort();
	for (size_t n = 0; n < r->nlines; n++) {
		const char *line = r->wire + o;
		const char *eol = memchr(line, '\r', r->len - o);
		if (eol == NULL || eol + 1 >= r->wire + r->len || eol[1] != '\n' ||
		    eol - line < 4)
			abort();
		/* Only the CRLF is a control: anything else would split the line. */
		for (const char *p = line; p < eol; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				abort();
		if ((line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0') != r->code)
			abort();
		bool last = n + 1 == r->nlines;
		if (line[3] != (last && done ? ' ' : '-'))
			abort();
		int tl = reply_line_text(r, n, &t);
		if (tl < 0 || t != line + 4 || t + tl != eol)
			abort();
		text_total += (size_t)tl;
		o = (size_t)(eol - r->wire) + 2;
	}
	if (o != r->len || reply_line_text(r, r->nlines, &t) != -1)
		abort();
	if (text_total + 6 * r->nlines != r->len)
		abort();
}

static void
check_done(const struct reply *r, unsigned char knob)
{
	static char line[REPLY_MAX];
	char small[64], id[64];

	check_wire(r, true);
	/* One line for the log: first line whole, then " text" per line. */
	reply_oneline(r, line, sizeof(line));
	if (strlen(line) != r->len - 5 * r->nlines + 3)
		abort();
	if (strchr(line, '\r') != NULL || strchr(line, '\n') != NULL)
		abort();
	size_t size = knob % sizeof(small);
	memset(small, '#', sizeof(small));
	reply_oneline(r, small, size);
	if (size > 0 && (strlen(small) >= size || strncmp(small, line, strlen(small)) != 0))
		abort();
	for (size_t i = size; i < sizeof(small); i++)
		if (small[i] != '#')
			abort();

	size = knob % sizeof(id);
	memset(id, '#', sizeof(id));
	if (reply_queue_id(r, id, size)) {
		size_t n = strlen(id);
		if (n == 0 || n >= size || r->code / 100 != 2)
			abort();
		for (size_t i = 0; i < n; i++)
			if (!isalnum((unsigned char)id[i]) && strchr("-._", id[i]) == NULL)
				abort();
	}
	for (size_t i = size; i < sizeof(id); i++)
		if (id[i] != '#')
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct reply r;
	const char *p = (const char *)data, *end = p + size;
	unsigned char knob = size > 0 ? data[size - 1] : 0;

	reply_reset(&r);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl != NULL ? nl : end;
		size_t len = (size_t)(eol - p);
		if (len > 0 && p[len - 1] == '\r')
			len--;
		enum reply_status st = reply_add_line(&r, p, len);
		p = nl != NULL ? nl + 1 : end;
		switch (st) {
		case REPLY_MORE:
			check_wire(&r, false);
			break;
		case REPLY_DONE:
			check_done(&r, knob);
			reply_reset(&r);
			break;
		case REPLY_BAD:
			reply_reset(&r);
			break;
		}
	}

	/* Our own replies, with text from the input (a C string, bounded). */
	static char text[2 * REPLY_MAX];
	size_t n = size < sizeof(text) - 1 ? size : sizeof(text) - 1;
	memcpy(text, data, n);
	text[n] = '\0';
	reply_set(&r, 400 + knob % 200, knob & 1 ? "4.0.0" : NULL, text);
	if (r.len >= REPLY_MAX || r.len < 6 || r.wire[r.len - 2] != '\r' ||
	    r.wire[r.len - 1] != '\n' || r.nlines != 1)
		abort();
	char small[32], id[32];
	const char *t;
	reply_oneline(&r, small, sizeof(small));
	(void)reply_queue_id(&r, id, sizeof(id));
	(void)reply_line_text(&r, 0, &t);
	return 0;
}
