/* test.c - runs a table of unit tests and prints the closing count line. */
#include "test.h"

int test_failures;

int
test_main(const struct test_case *cases, size_t ncases)
{
	int passed = 0, failed = 0;

	for (size_t i = 0; i < ncases; i++) {
		test_failures = 0;
		cases[i].fn();
		if (test_failures == 0) {
			printf("pass %s\n", cases[i].name);
			passed++;
		} else {
			printf("FAIL %s\n", cases[i].name);
			failed++;
		}
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed == 0 ? 0 : 1;
}
