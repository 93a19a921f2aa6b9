/*
 * Decimal digits of pi: Chudnovsky series with binary splitting on GMP.
 *
 * kiln_pi() computes everything on the calling thread.  Callers with a
 * thread pool use a plan, which splits the work into stages of independent
 * tasks (summing ranges of the series, the products of merging them, the
 * final division, the decimal conversion in halves):
 *
 *	kiln_pi_plan *p = kiln_pi_plan_new(digits, threads, KILN_PI_GUARD);
 *	while ((n = kiln_pi_plan_stage(p, err, errlen)) > 0)
 *		run kiln_pi_plan_task(p, i, cancel) for every i < n, in
 *		parallel, and wait for all of them;
 *	if (n == 0)
 *		kiln_pi_plan_result(p, &s, &len);
 *	kiln_pi_plan_free(p);
 *
 * Results are exactly the first `digits` decimals of pi, truncated (never
 * rounded): guard digits are computed beyond the cut and, when they do not
 * prove that truncation is safe (they are so close to all 0s or all 9s that
 * the approximation error could carry across the cut), the series is summed
 * again with more guard digits.
 *
 * The lower-level pieces (kiln_pi_sum_*, kiln_pi_root_*, kiln_pi_finish)
 * are public too, for callers who schedule differently.
 */
#ifndef KILN_PI_H
#define KILN_PI_H

#include <stddef.h>
#include <stdint.h>

#include "kiln/cancel.h"

/* The partial sum P, Q, T of the series over the terms [a, b). */
typedef struct kiln_pi_sum kiln_pi_sum;

/* kiln_pi_finish() returns this (positive) when the guard digits cannot
 * decide the truncation; retry with a guard of at least *guard_out. */
#define KILN_PI_MORE 1

/* Guard digits used by default. */
#define KILN_PI_GUARD 24

/* Number of series terms (the n of [1, n)) for `digits` decimals plus
 * `guard` guard digits. */
uint64_t kiln_pi_terms(uint64_t digits, unsigned guard);

/* Computes the partial sum over [a, b), 1 <= a < b.  `last` says that the
 * range ends the series, so P (needed only to merge with a range to the
 * right) is not computed.  Polls `cancel` between splitting steps.
 * Returns 0 and *out (free with kiln_pi_sum_free), or -KILN_E_CANCELLED /
 * -KILN_E_INVALID_ARGS. */
int kiln_pi_sum_new(uint64_t a, uint64_t b, int last, const kiln_cancel *cancel,
		    kiln_pi_sum **out);

/* Merges `right` (which must start where `left` ends) into `left`; `right`
 * is freed in any case. */
int kiln_pi_sum_merge(kiln_pi_sum *left, kiln_pi_sum *right);

void kiln_pi_sum_free(kiln_pi_sum *s);

/* sqrt(10005) scaled for `digits` + `guard` decimals: independent of the sum,
 * so it can be computed concurrently.  0, -KILN_E_CANCELLED or -KILN_E_INTERNAL. */
typedef struct kiln_pi_root kiln_pi_root;
int kiln_pi_root_new(uint64_t digits, unsigned guard, const kiln_cancel *cancel,
		     kiln_pi_root **out);
void kiln_pi_root_free(kiln_pi_root *r);

/* From the sum over [1, kiln_pi_terms(digits, guard)) and the root for the
 * same digits and guard (NULL: computed here), writes the first
 * `digits` decimals of pi as "3.14159..." ("3" for 0 digits) into a malloc'ed
 * NUL-terminated string *out of *len bytes (digits + 2, or 1).
 * Returns 0, KILN_PI_MORE (then *guard_out is the guard to retry with), or
 * -KILN_E_*, with a message in err. */
int kiln_pi_finish(kiln_pi_sum *sum, const kiln_pi_root *root,
		   uint64_t digits, unsigned guard,
		   const kiln_cancel *cancel, char **out, size_t *len,
		   unsigned *guard_out, char *err, size_t errlen);

/* --- Staged plan ---------------------------------------------------------- */

typedef struct kiln_pi_plan kiln_pi_plan;

/* Most tasks in one stage (for callers sizing their bookkeeping). */
#define KILN_PI_MAX_TASKS 256

/* A plan for `digits` decimals summing the series in `parts` ranges (1-64)
 * with `guard` guard digits at first (>= 8).  NULL if out of memory or the
 * arguments are out of range. */
kiln_pi_plan *kiln_pi_plan_new(uint64_t digits, unsigned parts, unsigned guard);

/* Has the plan write its result into `buf` (at least digits + 3 bytes)
 * instead of a buffer of its own, so a caller can put the digits where they
 * will be kept (say after a header) without copying them.  `buf` stays the
 * caller's: kiln_pi_plan_result() hands it back and kiln_pi_plan_free()
 * leaves it alone.  Call before the first kiln_pi_plan_stage(). */
void kiln_pi_plan_set_output(kiln_pi_plan *p, char *buf);

/* Prepares the next stage once every task of the previous one has returned:
 * the number of tasks to run (> 0), 0 when the result is ready, or the
 * first error of the last stage (-KILN_E_*, message in err).  Cheap: no
 * big-number arithmetic happens here. */
int kiln_pi_plan_stage(kiln_pi_plan *p, char *err, size_t errlen);

/* Runs task i of the current stage; tasks of one stage may run
 * concurrently on different threads.  0 or -KILN_E_*. */
int kiln_pi_plan_task(kiln_pi_plan *p, unsigned i, const kiln_cancel *cancel);

/* Stages done so far and the expected total (for progress reports). */
void kiln_pi_plan_progress(const kiln_pi_plan *p, unsigned *done, unsigned *total);

/* After kiln_pi_plan_stage() returned 0: takes the result ("3.1415...",
 * NUL-terminated, *len bytes; malloc'ed, or the kiln_pi_plan_set_output()
 * buffer). */
void kiln_pi_plan_result(kiln_pi_plan *p, char **out, size_t *len);

void kiln_pi_plan_free(kiln_pi_plan *p);

/* Everything on the calling thread: 0 and *out as kiln_pi_finish(), or -KILN_E_*. */
int kiln_pi(uint64_t digits, const kiln_cancel *cancel, char **out, size_t *len,
	    char *err, size_t errlen);

#endif
