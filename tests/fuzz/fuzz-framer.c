/*
 * fuzz-framer.c - libFuzzer target for proxy/framer.c (SMTP smuggling).
 *
 * The input is what a client sends after 354.  It is framed in strict and
 * normalize mode, whole, split at a point taken from the data and byte by
 * byte; any difference, a bare CR or LF in the output, or an end that is
 * not CRLF "." CRLF aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "framer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct run {
	enum framer_status status;
	size_t consumed;
	char *out;
	size_t out_len, out_cap;
	size_t output_bytes;
	bool bare_lf, bare_cr;
};

static void
sink(void *ctx, const char *p, size_t n)
{
	struct run *r = ctx;

	/* Each input byte yields at most two output bytes: a bound, not a guess. */
	if (n > r->out_cap - r->out_len)
		abort();
	memcpy(r->out + r->out_len, p, n);
	r->out_len += n;
}

/* frame - feed in[0, split), then the rest in step-byte chunks (0: at once) */
static void
frame(const char *in, size_t len, bool strict, size_t split, size_t step,
    struct run *r)
{
	struct framer f;
	size_t off, consumed;

	r->out_len = 0;
	framer_init(&f, strict);
	r->status = framer_feed(&f, in, split, &consumed, sink, r);
	if (consumed > split)
		abort();
	off = consumed;
	while (r->status == FRAMER_MORE && off < len) {
		size_t n = step == 0 || step > len - off ? len - off : step;
		r->status = framer_feed(&f, in + off, n, &consumed, sink, r);
		if (consumed > n || (r->status == FRAMER_MORE && consumed != n))
			abort();
		off += consumed;
	}
	r->consumed = off;
	r->output_bytes = f.output_bytes;
	r->bare_lf = f.saw_bare_lf;
	r->bare_cr = f.saw_bare_cr;
}

static void
check_same(const struct run *a, const struct run *b)
{
	if (a->status != b->status || a->consumed != b->consumed ||
	    a->out_len != b->out_len || memcmp(a->out, b->out, a->out_len) != 0 ||
	    a->bare_lf != b->bare_lf || a->bare_cr != b->bare_cr ||
	    a->output_bytes != b->output_bytes)
		abort();
}

static void
check_run(const char *in, size_t len, const struct run *r)
{
	if (r->output_bytes != r->out_len || r->consumed > len)
		abort();
	for (size_t i = 0; i < r->out_len; i++) {
		if (r->out[i] == '\r' && (i + 1 == r->out_len || r->out[i + 1] != '\n'))
			abort();
		if (r->out[i] == '\n' && (i == 0 || r->out[i - 1] != '\r'))
			abort();
	}
	size_t c = r->consumed;
	if (r->status == FRAMER_END) {
		if (c < 3 || memcmp(in + c - 3, ".\r\n", 3) != 0)
			abort();
		if (c != 3 && (c < 5 || memcmp(in + c - 5, "\r\n", 2) != 0))
			abort();
	}
	if (r->status == FRAMER_MORE && c != len)
		abort();
	/* A loose end stops right after the "." line it emitted. */
	if (r->status == FRAMER_END_LOOSE) {
		size_t n = r->out_len;
		if (n < 3 || memcmp(r->out + n - 3, ".\r\n", 3) != 0)
			abort();
		if (n != 3 && (n < 5 || memcmp(r->out + n - 5, "\r\n", 2) != 0))
			abort();
	}
}

/* first_end - where the data ends by RFC 5321 alone: the first CRLF.CRLF */
static size_t
first_end(const char *in, size_t len)
{
	if (len >= 3 && memcmp(in, ".\r\n", 3) == 0)
		return 3;
	for (size_t i = 0; i + 5 <= len; i++)
		if (memcmp(in + i, "\r\n.\r\n", 5) == 0)
			return i + 5;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	struct run runs[2][3];
	size_t split = size == 0 ? 0 :
	    ((size_t)data[0] | (size_t)data[size - 1] << 8) % (size + 1);

	for (int m = 0; m < 2; m++) {
		for (int k = 0; k < 3; k++) {
			runs[m][k].out_cap = 2 * size;
			runs[m][k].out = malloc(runs[m][k].out_cap + 1);
			if (runs[m][k].out == NULL)
				abort();
		}
		bool strict = m == 1;
		frame(in, size, strict, size, 0, &runs[m][0]);
		frame(in, size, strict, split, 0, &runs[m][1]);
		frame(in, size, strict, 0, 1, &runs[m][2]);
		check_run(in, size, &runs[m][0]);
		check_same(&runs[m][1], &runs[m][0]);
		check_same(&runs[m][2], &runs[m][0]);
	}

	/* Normalize mode ends exactly where RFC 5321 says, and nowhere else. */
	const struct run *norm = &runs[0][0], *strict = &runs[1][0];
	size_t end = first_end(in, size);
	if (norm->status == FRAMER_END_LOOSE || (norm->status == FRAMER_END) != (end != 0))
		abort();
	if (end != 0 && norm->consumed != end)
		abort();
	/* Strict mode is normalize mode cut short at a loose end. */
	if (strict->consumed > norm->consumed || strict->out_len > norm->out_len ||
	    memcmp(strict->out, norm->out, strict->out_len) != 0)
		abort();
	if (strict->status != FRAMER_END_LOOSE)
		check_same(strict, norm);

	for (int m = 0; m < 2; m++)
		for (int k = 0; k < 3; k++)
			free(runs[m][k].out);
	return 0;
}
