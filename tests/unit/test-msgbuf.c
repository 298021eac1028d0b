/*
 * test-msgbuf.c - the message holder: memory then spill file, reads at any
 * offset, and dot-stuffing on replay (RFC 5321 4.5.2), including messages
 * that spill and stuffing boundaries that fall between replay chunks.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "msgbuf.h"
#include "test.h"

/* replay - stuff the whole message in chunks of chunk bytes */
static char *
replay(const struct msgbuf *mb, size_t chunk, size_t *len_r)
{
	struct evbuffer *out = evbuffer_new();
	struct msgbuf_cursor cur;
	int done = 0, rounds = 0;

	msgbuf_cursor_init(&cur);
	while (done == 0 && rounds++ < 1000000)
		done = msgbuf_stuff(mb, &cur, out, chunk);
	CHECK_INT(done, 1);
	*len_r = evbuffer_get_length(out);
	char *s = malloc(*len_r + 1);
	evbuffer_remove(out, s, *len_r);
	s[*len_r] = '\0';
	evbuffer_free(out);
	return s;
}

static void
test_memory_only(void)
{
	struct msgbuf mb;
	size_t len;

	msgbuf_init(&mb, 1024, "/tmp");
	CHECK(msgbuf_append(&mb, "Subject: x\r\n\r\nbody\r\n", 20));
	CHECK(msgbuf_flush(&mb));
	CHECK(!msgbuf_spilled(&mb));
	CHECK_INT(mb.size, 20);
	char *s = replay(&mb, 4096, &len);
	CHECK_MEM(s, len, "Subject: x\r\n\r\nbody\r\n", 20);
	free(s);
	msgbuf_free(&mb);
}

static void
test_stuffing(void)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ ".\r\n", "..\r\n" },
		{ "a\r\n.b\r\n", "a\r\n..b\r\n" },
		{ "..\r\n", "...\r\n" },
		{ "a.b\r\n", "a.b\r\n" },
		{ "\r\n.\r\n\r\n", "\r\n..\r\n\r\n" },
		{ "", "" },
	};
	for (size_t i = 0; i < TEST_COUNT(cases); i++) {
		for (size_t chunk = 1; chunk <= 8; chunk++) {
			struct msgbuf mb;
			size_t len;
			msgbuf_init(&mb, 1 << 20, "/tmp");
			msgbuf_append(&mb, cases[i].in, strlen(cases[i].in));
			char *s = replay(&mb, chunk, &len);
			CHECK_STR(s, cases[i].out);
			free(s);
			msgbuf_free(&mb);
		}
	}
}

static void
test_spill(void)
{
	struct msgbuf mb;
	char line[100];
	size_t len, expected_len = 0;
	char *expected = malloc(300000);

	msgbuf_init(&mb, 4096, "/tmp");
	for (int i = 0; i < 3000; i++) {
		int n = snprintf(line, sizeof(line), "%sline %d\r\n", i % 7 == 0 ? "." : "", i);
		CHECK(msgbuf_append(&mb, line, (size_t)n));
		if (i % 7 == 0)
			expected[expected_len++] = '.';
		memcpy(expected + expected_len, line, (size_t)n);
		expected_len += (size_t)n;
	}
	CHECK(msgbuf_flush(&mb));
	CHECK(msgbuf_spilled(&mb));
	CHECK(mb.mem == NULL);
	char buf[16];
	CHECK_INT(msgbuf_read(&mb, 0, buf, 6), 6);
	CHECK_MEM(buf, 6, ".line ", 6);
	CHECK_INT(msgbuf_read(&mb, mb.size - 2, buf, 16), 2);
	CHECK_INT(msgbuf_read(&mb, mb.size, buf, 16), 0);
	for (size_t chunk = 1000; chunk <= 70000; chunk *= 7) {
		char *s = replay(&mb, chunk, &len);
		CHECK_MEM(s, len, expected, expected_len);
		free(s);
	}
	/* Reset and reuse: back in memory, nothing left of the old message. */
	msgbuf_reset(&mb);
	CHECK(!msgbuf_spilled(&mb));
	CHECK_INT(mb.size, 0);
	CHECK(msgbuf_append(&mb, "x\r\n", 3));
	char *s = replay(&mb, 100, &len);
	CHECK_MEM(s, len, "x\r\n", 3);
	free(s);
	msgbuf_free(&mb);
	free(expected);
}

static void
test_large_append(void)
{
	/* A single append larger than the write-behind buffer goes straight out. */
	size_t big = 300 * 1024;
	char *data = malloc(big);
	struct msgbuf mb;
	size_t len;

	for (size_t i = 0; i < big; i++)
		data[i] = (i % 80 == 79) ? '\n' : (i % 80 == 78 ? '\r' : 'a');
	msgbuf_init(&mb, 0, "/tmp");
	CHECK(msgbuf_append(&mb, "hdr\r\n", 5));
	CHECK(msgbuf_append(&mb, data, big));
	CHECK(msgbuf_flush(&mb));
	CHECK_INT(mb.size, big + 5);
	char *s = replay(&mb, 1 << 20, &len);
	CHECK_INT(len, big + 5);
	CHECK(len == big + 5 && memcmp(s + 5, data, big) == 0);
	free(s);
	msgbuf_free(&mb);
	free(data);
}

static void
test_bad_temp_dir(void)
{
	struct msgbuf mb;

	msgbuf_init(&mb, 4, "/nonexistent/moat-test");
	CHECK(msgbuf_append(&mb, "abc", 3));
	CHECK(!msgbuf_append(&mb, "defgh", 5));
	CHECK(mb.error != 0);
	CHECK(!msgbuf_flush(&mb));
	msgbuf_free(&mb);
}

static void
test_skip_fields(void)
{
	static const struct {
		const char *in, *out;
		size_t nskip;
	} cases[] = {
		{ "X-Spam-Flag: NO\r\nSubject: hi\r\n\r\nbody\r\n",
		  "Subject: hi\r\n\r\nbody\r\n", 1 },
		/* folded, mixed case, several, and one in the body that stays */
		{ "From: a\r\nx-spam-status: No,\r\n\ttests=NONE\r\nTo: b\r\n"
		  "X-Spam-Score: -5\r\n\r\nX-Spam-Flag: body text\r\n.dot\r\n",
		  "From: a\r\nTo: b\r\n\r\nX-Spam-Flag: body text\r\n..dot\r\n", 2 },
		/* not a match: a longer name's prefix, or the prefix as a whole name */
		{ "X-Spamming: 1\r\nX-Spam: 2\r\nX-Spam-: 3\r\n\r\n",
		  "X-Spamming: 1\r\nX-Spam: 2\r\n\r\n", 1 },
		/* the last field before the end of a header-only message */
		{ "Subject: s\r\nX-Spam-Flag: YES\r\n", "Subject: s\r\n", 1 },
		{ "Subject: s\r\n\r\n", "Subject: s\r\n\r\n", 0 },
	};
	for (size_t i = 0; i < TEST_COUNT(cases); i++) {
		for (size_t limit = 0; limit <= 4096; limit += 4096) {	/* memory, then file */
			struct msgbuf mb;
			size_t len;
			msgbuf_init(&mb, limit, "/tmp");
			msgbuf_append(&mb, cases[i].in, strlen(cases[i].in));
			CHECK_INT(msgbuf_skip_fields(&mb, "X-Spam-"), cases[i].nskip);
			for (size_t chunk = 1; chunk <= 64; chunk *= 4) {
				char *s = replay(&mb, chunk, &len);
				CHECK_STR(s, cases[i].out);
				free(s);
			}
			msgbuf_reset(&mb);
			CHECK_INT(mb.nskip, 0);
			msgbuf_free(&mb);
		}
	}
}

int
main(void)
{
	static const struct test_case cases[] = {
		{ "memory_only", test_memory_only },
		{ "stuffing", test_stuffing },
		{ "spill", test_spill },
		{ "large_append", test_large_append },
		{ "bad_temp_dir", test_bad_temp_dir },
		{ "skip_fields", test_skip_fields },
	};
	return test_main(cases, TEST_COUNT(cases));
}
