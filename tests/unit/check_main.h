/*
 * One check binary per test file: KILN_CHECK_MAIN(my_suite) defines main(),
 * runs the suite (forking per test, so each test runs in its own process) and
 * exits non-zero if any test failed.
 */
#ifndef KILN_CHECK_MAIN_H
#define KILN_CHECK_MAIN_H

#include <check.h>
#include <stdlib.h>

#define KILN_CHECK_MAIN(suite_fn)                                  \
	int main(void)                                             \
	{                                                          \
		SRunner *sr = srunner_create(suite_fn());          \
		srunner_run_all(sr, CK_NORMAL);                    \
		int failed = srunner_ntests_failed(sr);            \
		srunner_free(sr);                                  \
		return failed ? EXIT_FAILURE : EXIT_SUCCESS;       \
	}

#endif
