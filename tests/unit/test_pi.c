/* Unit tests for the pi library (include/kiln/pi.h). */
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "kiln/error.h"
#include "kiln/pi.h"

/* The first 50 decimals, as published everywhere. */
static const char PI50[] = "3.14159265358979323846264338327950288419716939937510";

static char *pi_of(uint64_t n)
{
	char err[128] = "", *s = NULL;
	size_t len = 0;
	int rc = kiln_pi(n, NULL, &s, &len, err, sizeof(err));

	ck_assert_msg(rc == 0, "kiln_pi(%llu) = %d: %s", (unsigned long long)n, rc, err);
	ck_assert_uint_eq(len, strlen(s));
	ck_assert_uint_eq(len, n ? n + 2 : 1);
	return s;
}

START_TEST(small_n)
{
	char *s;

	s = pi_of(0);
	ck_assert_str_eq(s, "3");
	free(s);
	s = pi_of(1);
	ck_assert_str_eq(s, "3.1");
	free(s);
	for (uint64_t n = 2; n <= 50; n++) {
		s = pi_of(n);
		ck_assert_msg(!strncmp(s, PI50, n + 2), "n=%llu: %s", (unsigned long long)n, s);
		free(s);
	}
}
END_TEST

/* Decimals 762-767 are 999999 (the Feynman point), followed by 8.
 * Rounding instead of truncating would turn them into a run of 0s. */
START_TEST(feynman_point)
{
	char *s = pi_of(800);

	ck_assert(!strncmp(s + 1 + 762, "9999998", 7));
	ck_assert(!strncmp(s + 1 + 756, "721134", 6));
	for (uint64_t n = 755; n <= 770; n++) {
		char *t = pi_of(n);

		ck_assert_msg(!strncmp(t, s, n + 2), "n=%llu differs from the 800-digit prefix",
			      (unsigned long long)n);
		free(t);
	}
	free(s);
}
END_TEST

/* With the smallest guard, the guard digits of n = 761 are 99999983, which
 * cannot decide the truncation: finish must ask for more. */
START_TEST(guard_retry)
{
	kiln_pi_sum *sum;
	char err[128], *s = NULL;
	size_t len;
	unsigned guard;
	int rc;

	ck_assert_int_eq(kiln_pi_sum_new(1, kiln_pi_terms(761, 8), 1, NULL, &sum), 0);
	rc = kiln_pi_finish(sum, NULL, 761, 8, NULL, &s, &len, &guard, err, sizeof(err));
	ck_assert_int_eq(rc, KILN_PI_MORE);
	ck_assert_ptr_null(s);
	ck_assert_uint_gt(guard, 8);
	kiln_pi_sum_free(sum);
}
END_TEST

START_TEST(self_consistent)
{
	char *a = pi_of(3000), *b = pi_of(20000), *c = pi_of(19999);

	ck_assert(!strncmp(a, b, 3002));
	ck_assert(!strncmp(c, b, 20001));
	free(a);
	free(b);
	free(c);
}
END_TEST

/* Summing in pieces and merging gives the same digits as one piece. */
START_TEST(split_merge)
{
	uint64_t digits = 12345;
	uint64_t n = kiln_pi_terms(digits, KILN_PI_GUARD), cut[] = { 1, n / 5, n / 2, n - 1, n };
	kiln_pi_sum *part[4], *one;
	kiln_pi_root *root;
	char err[128], *s = NULL, *ref;
	size_t len;
	unsigned guard;

	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(kiln_pi_sum_new(cut[i], cut[i + 1], i == 3, NULL, &part[i]), 0);
	one = part[0];
	for (int i = 1; i < 4; i++)
		ck_assert_int_eq(kiln_pi_sum_merge(one, part[i]), 0);
	ck_assert_int_eq(kiln_pi_root_new(digits, KILN_PI_GUARD, NULL, &root), 0);
	ck_assert_int_eq(kiln_pi_finish(one, root, digits, KILN_PI_GUARD, NULL, &s, &len, &guard,
					err, sizeof(err)), 0);
	ref = pi_of(digits);
	ck_assert_str_eq(s, ref);
	free(s);
	free(ref);
	kiln_pi_root_free(root);
	kiln_pi_sum_free(one);
}
END_TEST

/* Runs a plan to the end, each stage's tasks in reverse order (they must
 * not depend on each other).  With `own_buffer` the result goes into a
 * buffer given with kiln_pi_plan_set_output(). */
static char *run_plan(uint64_t digits, unsigned parts, unsigned guard, int own_buffer)
{
	kiln_pi_plan *p = kiln_pi_plan_new(digits, parts, guard);
	unsigned done, total, last_done = 0;
	char err[128], *s = NULL, *buf = NULL;
	size_t len = 0;
	int n;

	ck_assert_ptr_nonnull(p);
	if (own_buffer) {
		buf = malloc(digits + 3);
		ck_assert_ptr_nonnull(buf);
		kiln_pi_plan_set_output(p, buf);
	}
	while ((n = kiln_pi_plan_stage(p, err, sizeof(err))) > 0) {
		ck_assert_int_le(n, KILN_PI_MAX_TASKS);
		for (int i = n - 1; i >= 0; i--)
			ck_assert_int_eq(kiln_pi_plan_task(p, (unsigned)i, NULL), 0);
		kiln_pi_plan_progress(p, &done, &total);
		ck_assert_uint_ge(done, last_done);
		last_done = done;
	}
	ck_assert_msg(n == 0, "plan failed: %s", err);
	kiln_pi_plan_progress(p, &done, &total);
	ck_assert_uint_eq(done, total);
	kiln_pi_plan_result(p, &s, &len);
	ck_assert_uint_eq(len, strlen(s));
	if (own_buffer)
		ck_assert_ptr_eq(s, buf);
	kiln_pi_plan_free(p);
	return s;
}

START_TEST(plan_matches_serial)
{
	static const struct {
		uint64_t digits;
		unsigned parts, guard;
	} cases[] = {
		{ 0, 2, 24 }, { 5, 4, 24 }, { 761, 1, 8 }, { 761, 3, 8 }, { 20000, 3, 24 },
		{ 30011, 5, 24 }, { 200001, 2, 24 }, { 250000, 3, 8 },
	};
	char *ref = pi_of(250001);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *s = run_plan(cases[i].digits, cases[i].parts, cases[i].guard, i % 2);
		uint64_t n = cases[i].digits;

		ck_assert_uint_eq(strlen(s), n ? n + 2 : 1);
		ck_assert_msg(!strncmp(s, ref, n ? n + 2 : 1), "digits %llu parts %u differ",
			      (unsigned long long)n, cases[i].parts);
		free(s);
	}
	free(ref);
	ck_assert_ptr_null(kiln_pi_plan_new(10, 0, 24));
	ck_assert_ptr_null(kiln_pi_plan_new(10, 2, 7));
}
END_TEST

START_TEST(plan_cancelled)
{
	kiln_pi_plan *p = kiln_pi_plan_new(100000, 2, KILN_PI_GUARD);
	kiln_cancel c;
	char err[128];
	int n;

	atomic_init(&c.flag, KILN_E_CANCELLED);
	n = kiln_pi_plan_stage(p, err, sizeof(err));
	ck_assert_int_gt(n, 0);
	for (int i = 0; i < n; i++)
		kiln_pi_plan_task(p, (unsigned)i, &c);
	ck_assert_int_eq(kiln_pi_plan_stage(p, err, sizeof(err)), -KILN_E_CANCELLED);
	ck_assert_ptr_nonnull(strstr(err, "cancelled"));
	kiln_pi_plan_free(p);
}
END_TEST

START_TEST(bad_ranges)
{
	kiln_pi_sum *a, *b;
	kiln_pi_root *root;
	char err[128], *s = NULL;
	size_t len;
	unsigned guard;

	ck_assert_int_eq(kiln_pi_sum_new(0, 10, 1, NULL, &a), -KILN_E_INVALID_ARGS);
	ck_assert_int_eq(kiln_pi_sum_new(5, 5, 1, NULL, &a), -KILN_E_INVALID_ARGS);
	ck_assert_int_eq(kiln_pi_sum_new(1, 10, 0, NULL, &a), 0);
	ck_assert_int_eq(kiln_pi_sum_new(11, 20, 1, NULL, &b), 0);
	ck_assert_int_eq(kiln_pi_sum_merge(a, b), -KILN_E_INVALID_ARGS); /* gap at 10 */
	/* Too few terms for the digits asked. */
	ck_assert_int_eq(kiln_pi_finish(a, NULL, 1000, KILN_PI_GUARD, NULL, &s, &len, &guard,
					err, sizeof(err)), -KILN_E_INVALID_ARGS);
	ck_assert_ptr_null(s);
	/* A root for other digits. */
	ck_assert_int_eq(kiln_pi_root_new(5, KILN_PI_GUARD, NULL, &root), 0);
	ck_assert_int_eq(kiln_pi_finish(a, root, 6, KILN_PI_GUARD, NULL, &s, &len, &guard,
					err, sizeof(err)), -KILN_E_INVALID_ARGS);
	kiln_pi_root_free(root);
	kiln_pi_sum_free(a);
}
END_TEST

START_TEST(cancelled)
{
	kiln_cancel c;
	kiln_pi_sum *sum;
	char err[128], *s = NULL;
	size_t len;

	atomic_init(&c.flag, KILN_E_CANCELLED);
	ck_assert_int_eq(kiln_pi(100000, &c, &s, &len, err, sizeof(err)), -KILN_E_CANCELLED);
	ck_assert_ptr_null(s);
	ck_assert_int_eq(kiln_pi_sum_new(1, 10000, 1, &c, &sum), -KILN_E_CANCELLED);
	ck_assert_ptr_null(sum);
}
END_TEST

static Suite *pi_suite(void)
{
	Suite *s = suite_create("pi");
	TCase *tc = tcase_create("pi");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, small_n);
	tcase_add_test(tc, feynman_point);
	tcase_add_test(tc, guard_retry);
	tcase_add_test(tc, self_consistent);
	tcase_add_test(tc, split_merge);
	tcase_add_test(tc, bad_ranges);
	tcase_add_test(tc, cancelled);
	tcase_add_test(tc, plan_matches_serial);
	tcase_add_test(tc, plan_cancelled);
	suite_add_tcase(s, tc);
	return s;
}

KILN_CHECK_MAIN(pi_suite)
