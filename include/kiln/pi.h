/*
 * Decimal digits of pi: Chudnovsky series with binary splitting on GMP.
 *
 * The simple entry point is kiln_pi(), which computes everything on the
 * calling thread.  Callers with a thread pool split the work themselves:
 *
 *	n = kiln_pi_terms(digits);
 *	for each range [a, b) of a partition of [1, n):   (in parallel)
 *		kiln_pi_sum_new(a, b, last, cancel, &part[i])
 *	kiln_pi_root_new(digits, guard, ...)               (optional, in parallel too)
 *	kiln_pi_sum_merge(part[0], part[1], ...)          (in order, left to right)
 *	kiln_pi_finish(part[0], root, digits, ...)
 *
 * Results are exactly the first `digits` decimals of pi, truncated (never
 * rounded).  kiln_pi_finish() computes guard digits beyond the cut and,
 * when they do not prove that truncation is safe (the guard digits are so
 * close to all 0s or all 9s that the approximation error could carry across
 * the cut), returns KILN_PI_MORE: the caller then sums the series again with
 * more terms for the larger guard it was given.
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
int kiln_pi_finish(const kiln_pi_sum *sum, const kiln_pi_root *root,
		   uint64_t digits, unsigned guard,
		   const kiln_cancel *cancel, char **out, size_t *len,
		   unsigned *guard_out, char *err, size_t errlen);

/* Everything on the calling thread: 0 and *out as kiln_pi_finish(), or -KILN_E_*. */
int kiln_pi(uint64_t digits, const kiln_cancel *cancel, char **out, size_t *len,
	    char *err, size_t errlen);

#endif
