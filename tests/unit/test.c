/* test.c - runs a table of unit tests and prints the closing count line. */
#include "test.h"

int test_failures;
static const char *skip_reason;

void
test_skip(const char *why)
{
	skip_reason = why;
}

int
test_main(const struct test_case *cases, size_t ncases)
{
	int passed = 0, failed = 0, skipped = 0;

	for (size_t i = 0; i < ncases; i++) {
		test_failures = 0;
		skip_reason = NULL;
		cases[i].fn();
		if (skip_reason != NULL && test_failures == 0) {
			printf("skip %s: %s\n", cases[i].name, skip_reason);
			skipped++;
		} else if (test_failures == 0) {
			printf("pass %s\n", cases[i].name);
			passed++;
		} else {
			printf("FAIL %s\n", cases[i].name);
			failed++;
		}
	}
	printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
	return failed == 0 ? 0 : 1;
}
