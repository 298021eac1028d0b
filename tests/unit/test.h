/*
 * test.h - the smallest unit-test harness that does the job.
 *
 * A test file defines static test functions and a table of them, then
 * calls test_main().  Each test prints "pass NAME" or "FAIL NAME: where:
 * what"; the last line is "N passed, N failed" for tests/run-tests.
 */
#ifndef MOAT_TEST_H
#define MOAT_TEST_H

#include <stdio.h>
#include <string.h>

struct test_case {
	const char *name;
	void (*fn)(void);
};

extern int test_failures;	/* failed checks in the running test */

/* test_skip - the running test cannot run here (say why); it is counted
 * as skipped, not passed.  Return from the test right after calling it. */
void test_skip(const char *why);

#define CHECK(expr) do { \
	if (!(expr)) { \
		printf("  check failed: %s:%d: %s\n", __FILE__, __LINE__, #expr); \
		test_failures++; \
	} \
} while (0)

#define CHECK_STR(got, want) do { \
	const char *got_ = (got), *want_ = (want); \
	if (got_ == NULL || strcmp(got_, want_) != 0) { \
		printf("  check failed: %s:%d: %s: got \"%s\", want \"%s\"\n", \
		    __FILE__, __LINE__, #got, got_ ? got_ : "(null)", want_); \
		test_failures++; \
	} \
} while (0)

#define CHECK_INT(got, want) do { \
	long long got_ = (long long)(got), want_ = (long long)(want); \
	if (got_ != want_) { \
		printf("  check failed: %s:%d: %s: got %lld, want %lld\n", \
		    __FILE__, __LINE__, #got, got_, want_); \
		test_failures++; \
	} \
} while (0)

#define CHECK_MEM(got, got_len, want, want_len) do { \
	size_t gl_ = (got_len), wl_ = (want_len); \
	if (gl_ != wl_ || memcmp((got), (want), gl_) != 0) { \
		printf("  check failed: %s:%d: %s: %zu bytes differ from %zu expected\n", \
		    __FILE__, __LINE__, #got, gl_, wl_); \
		test_failures++; \
	} \
} while (0)

int test_main(const struct test_case *cases, size_t ncases);

#define TEST_COUNT(table) (sizeof(table) / sizeof((table)[0]))

#endif
