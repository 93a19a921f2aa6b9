/*
 * Internal to pi.c and pi_plan.c: the partial sums and the root, and the
 * steps both the one-call API and the staged plan use.
 */
#ifndef KILN_PI_IMPL_H
#define KILN_PI_IMPL_H

#include <gmp.h>
#include <stdint.h>

#include "kiln/pi.h"

struct kiln_pi_sum {
	uint64_t a, b;
	int has_p;
	mpz_t p, q, t;
	/* The plan computes T = T_left Q_right + P_left T_right as two products
	 * in parallel; the second waits here until someone needs T. */
	int has_t2;
	mpz_t t2;
};

struct kiln_pi_root {
	uint64_t d; /* digits + guard */
	mpz_t r;    /* floor(sqrt(10005) 10^d) */
};

/* A sum with initialised, zero P, Q, T over [a, b). NULL if out of memory. */
kiln_pi_sum *kiln_pi_sum_empty(uint64_t a, uint64_t b, int has_p);

/* Adds a pending t2 into t. */
void kiln_pi_sum_settle(kiln_pi_sum *s);

/* x = pi 10^d within a few units, from the whole sum (settled) and the root
 * for d digits.  0 or -KILN_E_CANCELLED. */
int kiln_pi_approx(const kiln_pi_sum *sum, const kiln_pi_root *root, uint64_t d,
		   const kiln_cancel *cancel, mpz_t x);

/* Cuts the guard digits off x: 0, or KILN_PI_MORE when they are too close
 * to a multiple of 10^guard to decide the truncation (x is then garbage). */
int kiln_pi_cut_guard(mpz_t x, unsigned guard);

#endif
