/*
 * test-framer.c - unit tests for proxy/framer.c, the SMTP smuggling defence.
 *
 * Every case is checked against its expected result, against a simple
 * line-at-a-time reference framer, and fed whole, split at every byte and
 * byte by byte: a framer that depends on how reads fall is exploitable.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "framer.h"
#include "test.h"

#define S(s) s, sizeof(s) - 1

struct result {
	enum framer_status status;
	size_t consumed;
	char *out;
	size_t out_len, out_cap;
	size_t output_bytes;	/* the framer's own count */
	bool bare_lf, bare_cr;
};

static void
sink(void *ctx, const char *data, size_t len)
{
	struct result *r = ctx;

	if (r->out_len + len > r->out_cap) {
		r->out_cap = 2 * (r->out_len + len) + 64;
		r->out = realloc(r->out, r->out_cap);
		if (r->out == NULL)
			abort();
	}
	memcpy(r->out + r->out_len, data, len);
	r->out_len += len;
}

/* result_clear - empty r, keeping a buffer so out is never NULL */
static void
result_clear(struct result *r)
{
	char *out = r->out;
	size_t cap = r->out_cap;

	if (out == NULL) {
		cap = 64;
		if ((out = malloc(cap)) == NULL)
			abort();
	}
	memset(r, 0, sizeof(*r));
	r->out = out;
	r->out_cap = cap;
}

static void
result_free(struct result *r)
{
	free(r->out);
	memset(r, 0, sizeof(*r));
}

/*
 * frame - feed in[0, split) and then the rest in chunks of step bytes
 * (0: at once), stopping at the first status that is not FRAMER_MORE,
 * as the session does.
 */
static void
frame(const char *in, size_t len, bool strict, size_t split, size_t step,
    struct result *r)
{
	struct framer f;
	size_t off = 0, consumed;

	result_clear(r);
	framer_init(&f, strict);
	r->status = framer_feed(&f, in, split, &consumed, sink, r);
	if (consumed > split)
		abort();
	off = consumed;
	while (r->status == FRAMER_MORE && off < len) {
		size_t n = step == 0 || step > len - off ? len - off : step;
		r->status = framer_feed(&f, in + off, n, &consumed, sink, r);
		if (consumed > n)
			abort();
		off += consumed;
	}
	r->consumed = off;
	r->bare_lf = f.saw_bare_lf;
	r->bare_cr = f.saw_bare_cr;
	r->output_bytes = f.output_bytes;
}

/*
 * ref_frame - the same framing written line by line, the way RFC 5321 and
 * the smuggling write-ups describe it: a "." line ends the data only when
 * it both starts and ends with CRLF; any other "." line is loose.
 */
static void
ref_frame(const char *in, size_t len, bool strict, struct result *r)
{
	bool proper = true;
	size_t i = 0;

	result_clear(r);
	while (i < len) {
		size_t s = i;
		while (i < len && in[i] != '\r' && in[i] != '\n')
			i++;
		size_t n = i - s, skip = n > 0 && in[s] == '.';
		bool dot = n == 1 && in[s] == '.';
		/* The end of the line is unknown yet: only its content is out. */
		if (i == len || (in[i] == '\r' && i + 1 == len)) {
			sink(r, in + s + skip, n - skip);
			break;
		}
		size_t tlen = in[i] == '\r' && in[i + 1] == '\n' ? 2 : 1;
		if (tlen == 1 && in[i] == '\r')
			r->bare_cr = true;
		else if (tlen == 1)
			r->bare_lf = true;
		if (dot && proper && tlen == 2) {
			r->status = FRAMER_END;
			r->consumed = i + 2;
			return;
		}
		sink(r, dot ? in + s : in + s + skip, dot ? 1 : n - skip);
		sink(r, "\r\n", 2);
		i += tlen;
		if (dot && strict) {
			r->status = FRAMER_END_LOOSE;
			r->consumed = i;
			return;
		}
		proper = tlen == 2;
	}
	r->status = FRAMER_MORE;
	r->consumed = len;
}

/* check_canonical - the backend must never see a bare CR or LF */
static void
check_canonical(const struct result *r)
{
	for (size_t i = 0; i < r->out_len; i++) {
		if (r->out[i] == '\r')
			CHECK(i + 1 < r->out_len && r->out[i + 1] == '\n');
		if (r->out[i] == '\n')
			CHECK(i > 0 && r->out[i - 1] == '\r');
	}
	CHECK_INT(r->output_bytes, r->out_len);
}

/* check_end - FRAMER_END only right after CRLF "." CRLF (or ".\r\n" first) */
static void
check_end(const char *in, const struct result *r)
{
	if (r->status != FRAMER_END)
		return;
	size_t c = r->consumed;
	CHECK(c >= 3 && memcmp(in + c - 3, ".\r\n", 3) == 0);
	CHECK(c == 3 || (c >= 5 && memcmp(in + c - 5, "\r\n", 2) == 0));
}

static void
check_same(const struct result *got, const struct result *want)
{
	CHECK_INT(got->status, want->status);
	CHECK_INT(got->consumed, want->consumed);
	CHECK_MEM(got->out, got->out_len, want->out, want->out_len);
	CHECK_INT(got->bare_lf, want->bare_lf);
	CHECK_INT(got->bare_cr, want->bare_cr);
}

/*
 * check_all_splits - whole, every two-chunk split, byte by byte and in
 * chunks of 2 and 3 must all agree with the reference framer.
 */
static void
check_all_splits(const char *in, size_t len, bool strict, const struct result *want)
{
	struct result r = { 0 };
	int before = test_failures;

	for (size_t split = 0; split <= len && test_failures == before; split++) {
		frame(in, len, strict, split, 0, &r);
		check_same(&r, want);
		check_canonical(&r);
		if (test_failures != before)
			printf("  split at %zu\n", split);
	}
	for (size_t step = 1; step <= 3 && test_failures == before; step++) {
		frame(in, len, strict, 0, step, &r);
		check_same(&r, want);
		if (test_failures != before) {
			printf("  chunks of %zu\n", step);
			break;
		}
	}
	result_free(&r);
}

#define ALL 0	/* consumed: the whole input; negative: all but that many */
#define E(st, n, o, lf, cr) { st, n, o, sizeof(o) - 1, lf, cr }

struct expect {
	enum framer_status status;
	long consumed;
	const char *out;
	size_t out_len;
	bool bare_lf, bare_cr;
};

static const struct {
	const char *name;
	const char *in;
	size_t len;
	struct expect strict, normal;
} cases[] = {
	{ "simple", S("Subject: x\r\n\r\nbody\r\n.\r\n"),
	  E(FRAMER_END, ALL, "Subject: x\r\n\r\nbody\r\n", 0, 0),
	  E(FRAMER_END, ALL, "Subject: x\r\n\r\nbody\r\n", 0, 0) },
	{ "empty message", S(".\r\n"),
	  E(FRAMER_END, ALL, "", 0, 0), E(FRAMER_END, ALL, "", 0, 0) },
	{ "empty message, pipelined", S(".\r\nQUIT\r\n"),
	  E(FRAMER_END, 3, "", 0, 0), E(FRAMER_END, 3, "", 0, 0) },
	{ "pipelined commands", S("x\r\n.\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n"),
	  E(FRAMER_END, 6, "x\r\n", 0, 0), E(FRAMER_END, 6, "x\r\n", 0, 0) },
	{ "a second end is left", S("x\r\n.\r\n.\r\n"),
	  E(FRAMER_END, 6, "x\r\n", 0, 0), E(FRAMER_END, 6, "x\r\n", 0, 0) },
	{ "empty first line", S("\r\n.\r\n"),
	  E(FRAMER_END, ALL, "\r\n", 0, 0), E(FRAMER_END, ALL, "\r\n", 0, 0) },
	{ "unstuffing", S("..x\r\n.x\r\n.\r\n"),
	  E(FRAMER_END, ALL, ".x\r\nx\r\n", 0, 0), E(FRAMER_END, ALL, ".x\r\nx\r\n", 0, 0) },
	{ "stuffed dot line", S("a\r\n..\r\n.\r\n"),
	  E(FRAMER_END, ALL, "a\r\n.\r\n", 0, 0), E(FRAMER_END, ALL, "a\r\n.\r\n", 0, 0) },
	{ "three dots", S("...\r\n.\r\n"),
	  E(FRAMER_END, ALL, "..\r\n", 0, 0), E(FRAMER_END, ALL, "..\r\n", 0, 0) },
	{ "dot space", S(". \r\n.\r\n"),
	  E(FRAMER_END, ALL, " \r\n", 0, 0), E(FRAMER_END, ALL, " \r\n", 0, 0) },
	{ "NUL is content", S("a\0b\r\n.\r\n"),
	  E(FRAMER_END, ALL, "a\0b\r\n", 0, 0), E(FRAMER_END, ALL, "a\0b\r\n", 0, 0) },
	{ "bare LF in content", S("a\nb\r\n.\r\n"),
	  E(FRAMER_END, ALL, "a\r\nb\r\n", 1, 0), E(FRAMER_END, ALL, "a\r\nb\r\n", 1, 0) },
	{ "bare CR in content", S("a\rb\r\n.\r\n"),
	  E(FRAMER_END, ALL, "a\r\nb\r\n", 0, 1), E(FRAMER_END, ALL, "a\r\nb\r\n", 0, 1) },
	{ "CR CRLF", S("\r\r\n.\r\n"),
	  E(FRAMER_END, ALL, "\r\n\r\n", 0, 1), E(FRAMER_END, ALL, "\r\n\r\n", 0, 1) },
	/* The smuggling sequences: each is a loose end or content, never an end. */
	{ "LF . LF", S("a\n.\nb\r\n.\r\n"),
	  E(FRAMER_END_LOOSE, 4, "a\r\n.\r\n", 1, 0),
	  E(FRAMER_END, ALL, "a\r\n.\r\nb\r\n", 1, 0) },
	{ "LF . CRLF", S("a\n.\r\nb\r\n.\r\n"),
	  E(FRAMER_END_LOOSE, 5, "a\r\n.\r\n", 1, 0),
	  E(FRAMER_END, ALL, "a\r\n.\r\nb\r\n", 1, 0) },
	{ "CR . CRLF", S("a\r.\r\nb\r\n.\r\n"),
	  E(FRAMER_END_LOOSE, 5, "a\r\n.\r\n", 0, 1),
	  E(FRAMER_END, ALL, "a\r\n.\r\nb\r\n", 0, 1) },
	{ "CRLF . LF", S("a\r\n.\nb\r\n.\r\n"),
	  E(FRAMER_END_LOOSE, 5, "a\r\n.\r\n", 1, 0),
	  E(FRAMER_END, ALL, "a\r\n.\r\nb\r\n", 1, 0) },
	{ "CRLF . CR", S("a\r\n.\rb\r\n.\r\n"),
	  E(FRAMER_END_LOOSE, 5, "a\r\n.\r\n", 0, 1),
	  E(FRAMER_END, ALL, "a\r\n.\r\nb\r\n", 0, 1) },
	{ "CR . LF", S("a\r.\nb\r\n.\r\n"),
	  E(FRAMER_END_LOOSE, 4, "a\r\n.\r\n", 1, 1),
	  E(FRAMER_END, ALL, "a\r\n.\r\nb\r\n", 1, 1) },
	{ "LF . CR", S("a\n.\rb\r\n.\r\n"),
	  E(FRAMER_END_LOOSE, 4, "a\r\n.\r\n", 1, 1),
	  E(FRAMER_END, ALL, "a\r\n.\r\nb\r\n", 1, 1) },
	{ ". LF first", S(".\nb\r\n.\r\n"),
	  E(FRAMER_END_LOOSE, 2, ".\r\n", 1, 0),
	  E(FRAMER_END, ALL, ".\r\nb\r\n", 1, 0) },
	{ ". CR first", S(".\rb\r\n.\r\n"),
	  E(FRAMER_END_LOOSE, 2, ".\r\n", 0, 1),
	  E(FRAMER_END, ALL, ".\r\nb\r\n", 0, 1) },
	{ "CRLF . CR CRLF", S("a\r\n.\r\r\n.\r\n"),
	  E(FRAMER_END_LOOSE, 5, "a\r\n.\r\n", 0, 1),
	  E(FRAMER_END, ALL, "a\r\n.\r\n\r\n", 0, 1) },
	{ "LF . CRLF, real end", S("\n.\r\n.\r\n"),
	  E(FRAMER_END_LOOSE, 4, "\r\n.\r\n", 1, 0),
	  E(FRAMER_END, ALL, "\r\n.\r\n", 1, 0) },
	{ "LF CR . CRLF", S("a\n\r.\r\n"),
	  E(FRAMER_END_LOOSE, ALL, "a\r\n\r\n.\r\n", 1, 1),
	  E(FRAMER_MORE, ALL, "a\r\n\r\n.\r\n", 1, 1) },
	{ "loose dot at the very end", S(".x\n.\r\n"),
	  E(FRAMER_END_LOOSE, ALL, "x\r\n.\r\n", 1, 0),
	  E(FRAMER_MORE, ALL, "x\r\n.\r\n", 1, 0) },
	{ "smuggled transaction",
	  S("Subject: hi\r\n\n.\nMAIL FROM:<x@y>\r\nRCPT TO:<v@w>\r\nDATA\r\n"
	    "evil\r\n.\r\nQUIT\r\n"),
	  E(FRAMER_END_LOOSE, 16, "Subject: hi\r\n\r\n.\r\n", 1, 0),
	  E(FRAMER_END, -6, "Subject: hi\r\n\r\n.\r\nMAIL FROM:<x@y>\r\n"
	    "RCPT TO:<v@w>\r\nDATA\r\nevil\r\n", 1, 0) },
	/* Unfinished input: nothing is decided about what is still pending. */
	{ "nothing", S(""),
	  E(FRAMER_MORE, ALL, "", 0, 0), E(FRAMER_MORE, ALL, "", 0, 0) },
	{ "pending dot", S("."),
	  E(FRAMER_MORE, ALL, "", 0, 0), E(FRAMER_MORE, ALL, "", 0, 0) },
	{ "pending CR", S("a\r"),
	  E(FRAMER_MORE, ALL, "a", 0, 0), E(FRAMER_MORE, ALL, "a", 0, 0) },
	{ "pending dot CR", S("a\r\n.\r"),
	  E(FRAMER_MORE, ALL, "a\r\n", 0, 0), E(FRAMER_MORE, ALL, "a\r\n", 0, 0) },
};

static void
check_expect(const char *in, size_t len, const struct result *r,
    const struct expect *e)
{
	size_t consumed = e->consumed > 0 ? (size_t)e->consumed : len - (size_t)-e->consumed;

	CHECK_INT(r->status, e->status);
	CHECK_INT(r->consumed, consumed);
	CHECK_MEM(r->out, r->out_len, e->out, e->out_len);
	CHECK_INT(r->bare_lf, e->bare_lf);
	CHECK_INT(r->bare_cr, e->bare_cr);
}

static void
test_table(void)
{
	struct result r = { 0 }, ref = { 0 };

	for (size_t i = 0; i < TEST_COUNT(cases); i++) {
		for (int strict = 0; strict <= 1; strict++) {
			int before = test_failures;
			const char *in = cases[i].in;
			size_t len = cases[i].len;

			frame(in, len, strict, len, 0, &r);
			check_expect(in, len, &r, strict ? &cases[i].strict : &cases[i].normal);
			check_canonical(&r);
			check_end(in, &r);
			ref_frame(in, len, strict, &ref);
			check_same(&ref, &r);
			if (test_failures == before)
				check_all_splits(in, len, strict, &r);
			if (test_failures != before)
				printf("  case \"%s\", %s\n", cases[i].name,
				    strict ? "strict" : "normalize");
		}
	}
	result_free(&r);
	result_free(&ref);
}

/* Small deterministic PRNG: failures must reproduce. */
static uint32_t
rnd(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/*
 * Random byte soup over the alphabet that matters (CR, LF, dot, other):
 * the framer must agree with the reference however the input is cut.
 */
static void
test_random_soup(void)
{
	static const char alphabet[] = "\r\n.\r\n.a";
	char in[48];
	struct result ref = { 0 };
	uint32_t seed = 0x5eed1234;

	for (int iter = 0; iter < 3000 && test_failures == 0; iter++) {
		size_t len = rnd(&seed) % sizeof(in);
		for (size_t i = 0; i < len; i++)
			in[i] = alphabet[rnd(&seed) % (sizeof(alphabet) - 1)];
		for (int strict = 0; strict <= 1; strict++) {
			ref_frame(in, len, strict, &ref);
			check_end(in, &ref);
			check_all_splits(in, len, strict, &ref);
		}
		if (test_failures)
			printf("  iteration %d, length %zu\n", iter, len);
	}
	result_free(&ref);
}

/*
 * Round trip: dot-stuff random lines, add the end and a pipelined command;
 * the framer must give back exactly the lines and leave the command.
 */
static void
test_round_trip(void)
{
	static const char alphabet[] = "..a Z\t-\x80\xff";
	static const char next[] = "QUIT\r\n";
	uint32_t seed = 0xdecafbad;
	struct result r = { 0 };
	size_t cap = 8192;
	char *wire = malloc(cap), *want = malloc(cap);

	if (wire == NULL || want == NULL)
		abort();
	for (int iter = 0; iter < 500 && test_failures == 0; iter++) {
		size_t wl = 0, ol = 0, nlines = rnd(&seed) % 20;
		for (size_t l = 0; l < nlines; l++) {
			size_t n = rnd(&seed) % 30;
			/* Many lines start with a dot, some are only dots. */
			if (n > 0 && rnd(&seed) % 3 == 0)
				want[ol] = '.';
			else if (n > 0)
				want[ol] = alphabet[rnd(&seed) % (sizeof(alphabet) - 1)];
			for (size_t k = 1; k < n; k++)
				want[ol + k] = alphabet[rnd(&seed) % (sizeof(alphabet) - 1)];
			if (n > 0 && want[ol] == '.')
				wire[wl++] = '.';
			memcpy(wire + wl, want + ol, n);
			wl += n;
			ol += n;
			memcpy(wire + wl, "\r\n", 2);
			memcpy(want + ol, "\r\n", 2);
			wl += 2;
			ol += 2;
		}
		memcpy(wire + wl, ".\r\n", 3);
		wl += 3;
		memcpy(wire + wl, next, sizeof(next) - 1);
		size_t len = wl + sizeof(next) - 1;

		for (int strict = 0; strict <= 1; strict++) {
			size_t split = rnd(&seed) % (len + 1), step = rnd(&seed) % 8;
			frame(wire, len, strict, split, step, &r);
			CHECK_INT(r.status, FRAMER_END);
			CHECK_INT(r.consumed, wl);
			CHECK_MEM(r.out, r.out_len, want, ol);
			CHECK(!r.bare_lf && !r.bare_cr);
			check_canonical(&r);
		}
		if (test_failures)
			printf("  iteration %d\n", iter);
	}
	free(wire);
	free(want);
	result_free(&r);
}

/* A 1 MB line must stream through: no line buffer, no quadratic cost. */
static void
test_long_line(void)
{
	size_t n = 1024 * 1024;
	char *in = malloc(n + 16);
	struct result r = { 0 };

	if (in == NULL)
		abort();
	memset(in, 'a', n);
	memcpy(in + n, "\r\n.\r\nQUIT\r\n", 11);
	static const size_t steps[] = { 0, 1, 4096, 65537 };
	for (size_t s = 0; s < TEST_COUNT(steps); s++) {
		for (int strict = 0; strict <= 1; strict++) {
			frame(in, n + 11, strict, steps[s] == 0 ? n + 11 : 0, steps[s], &r);
			CHECK_INT(r.status, FRAMER_END);
			CHECK_INT(r.consumed, n + 5);
			CHECK_INT(r.out_len, n + 2);
			CHECK_INT(r.output_bytes, n + 2);
			CHECK(r.out_len == n + 2 && memcmp(r.out, in, n + 2) == 0);
		}
	}
	/* A long run of bare LFs: every one a line break, none an end. */
	memset(in, '\n', n);
	in[0] = '.';
	frame(in, n, false, 0, 7, &r);
	CHECK_INT(r.status, FRAMER_MORE);
	CHECK_INT(r.consumed, n);
	CHECK_INT(r.out_len, 2 * n - 1);
	CHECK(r.bare_lf && !r.bare_cr);
	check_canonical(&r);
	frame(in, n, true, n, 0, &r);
	CHECK_INT(r.status, FRAMER_END_LOOSE);
	CHECK_INT(r.consumed, 2);
	free(in);
	result_free(&r);
}

/* framer_init must forget everything, or one message leaks into the next. */
static void
test_reinit(void)
{
	struct framer f;
	struct result r = { 0 };
	size_t consumed;

	framer_init(&f, true);
	CHECK_INT(framer_feed(&f, S("a\nb\r\n."), &consumed, sink, &r), FRAMER_MORE);
	CHECK(f.saw_bare_lf);
	framer_init(&f, false);
	CHECK(!f.strict && !f.saw_bare_lf && !f.saw_bare_cr);
	CHECK_INT(f.output_bytes, 0);
	CHECK_INT(f.state, FRAMER_LINE_START);
	CHECK(f.proper_start);
	/* The pending "." of the old message must not unstuff this one. */
	CHECK_INT(framer_feed(&f, S(".\r\n"), &consumed, sink, &r), FRAMER_END);
	CHECK_INT(consumed, 3);
	result_free(&r);
}

static const struct test_case tests[] = {
	{ "table", test_table },
	{ "random_soup", test_random_soup },
	{ "round_trip", test_round_trip },
	{ "long_line", test_long_line },
	{ "reinit", test_reinit },
};

int
main(void)
{
	return test_main(tests, TEST_COUNT(tests));
}
