/*
 * pi by the Chudnovsky series with binary splitting (GMP).
 *
 *	1/pi = 12 sum_k (-1)^k (6k)! (A + B k) / ((3k)! (k!)^3 C^(3k+3/2))
 *
 * with A = 13591409, B = 545140134, C = 640320.  Over a range of terms
 * [a, b) binary splitting keeps three integers: P (the product of the term
 * ratios' numerators), Q (of their denominators) and T (the sum scaled by
 * Q), so that with the sum over [1, n):
 *
 *	pi = (C^(3/2) / 12) Q / (A Q + T) = 426880 sqrt(10005) Q / (A Q + T)
 *
 * Each term adds about 14.18 decimal digits.
 */
#include "kiln/pi.h"

#include <gmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/error.h"

#define CHUD_A 13591409ul
#define CHUD_B 545140134ul
/* C^3 / 24 = 640320^3 / 24. */
#define CHUD_C3_24 10939058860032000ul
/* Digits per term = log10(C^3 / 1728) = 14.18164746...; the ratio below
 * is slightly smaller so the term count errs on the safe side. */
#define DIGITS_PER_TERM_NUM 1418164ull
#define DIGITS_PER_TERM_DEN 100000ull

/* Below this many terms a range is summed without polling for cancellation. */
#define POLL_TERMS 256

struct kiln_pi_sum {
	uint64_t a, b;
	int has_p;
	mpz_t p, q, t;
};

uint64_t kiln_pi_terms(uint64_t digits, unsigned guard)
{
	uint64_t d = digits + guard;

	return d * DIGITS_PER_TERM_DEN / DIGITS_PER_TERM_NUM + 2;
}

/* One term k: p = -(6k-5)(2k-1)(6k-1), q = k^3 C^3/24, t = p (A + B k). */
static void leaf(uint64_t k, int need_p, mpz_t p, mpz_t q, mpz_t t)
{
	mpz_set_ui(p, 6 * k - 5);
	mpz_mul_ui(p, p, 2 * k - 1);
	mpz_mul_ui(p, p, 6 * k - 1);
	mpz_neg(p, p);
	mpz_set_ui(q, k);
	mpz_mul_ui(q, q, k);
	mpz_mul_ui(q, q, k);
	mpz_mul_ui(q, q, CHUD_C3_24);
	mpz_mul_ui(t, p, CHUD_A + CHUD_B * k);
	if (!need_p)
		mpz_set_ui(p, 0);
}

/*
 * Sums [a, b) into p, q, t (initialised by the caller).  p is left
 * unspecified when !need_p.  Returns 0 or -KILN_E_CANCELLED.
 */
static int split(uint64_t a, uint64_t b, int need_p, const kiln_cancel *cancel,
		 mpz_t p, mpz_t q, mpz_t t)
{
	mpz_t p2, q2, t2;
	uint64_t m;
	int rc;

	if (b - a == 1) {
		leaf(a, need_p, p, q, t);
		return 0;
	}
	if (b - a >= POLL_TERMS && kiln_cancelled(cancel))
		return -KILN_E_CANCELLED;
	m = a + (b - a) / 2;
	rc = split(a, m, 1, cancel, p, q, t);
	if (rc)
		return rc;
	mpz_inits(p2, q2, t2, NULL);
	rc = split(m, b, need_p, cancel, p2, q2, t2);
	if (rc)
		goto out;
	/* T = T_left Q_right + P_left T_right; Q = Q_left Q_right; P = P_left P_right. */
	mpz_mul(t, t, q2);
	mpz_mul(t2, t2, p);
	mpz_add(t, t, t2);
	mpz_mul(q, q, q2);
	if (need_p)
		mpz_mul(p, p, p2);
out:
	mpz_clears(p2, q2, t2, NULL);
	return rc;
}

int kiln_pi_sum_new(uint64_t a, uint64_t b, int last, const kiln_cancel *cancel,
		    kiln_pi_sum **out)
{
	kiln_pi_sum *s;
	int rc;

	*out = NULL;
	if (a < 1 || b <= a)
		return -KILN_E_INVALID_ARGS;
	s = malloc(sizeof(*s));
	if (!s)
		return -KILN_E_INTERNAL;
	s->a = a;
	s->b = b;
	s->has_p = !last;
	mpz_inits(s->p, s->q, s->t, NULL);
	rc = split(a, b, !last, cancel, s->p, s->q, s->t);
	if (rc) {
		kiln_pi_sum_free(s);
		return rc;
	}
	*out = s;
	return 0;
}

int kiln_pi_sum_merge(kiln_pi_sum *left, kiln_pi_sum *right)
{
	int rc = 0;

	if (left->b != right->a || !left->has_p) {
		rc = -KILN_E_INVALID_ARGS;
		goto out;
	}
	mpz_mul(left->t, left->t, right->q);
	mpz_mul(right->t, right->t, left->p);
	mpz_add(left->t, left->t, right->t);
	mpz_mul(left->q, left->q, right->q);
	if (right->has_p)
		mpz_mul(left->p, left->p, right->p);
	else
		mpz_set_ui(left->p, 0);
	left->has_p = right->has_p;
	left->b = right->b;
out:
	kiln_pi_sum_free(right);
	return rc;
}

void kiln_pi_sum_free(kiln_pi_sum *s)
{
	if (!s)
		return;
	mpz_clears(s->p, s->q, s->t, NULL);
	free(s);
}

struct kiln_pi_root {
	uint64_t d; /* digits + guard */
	mpz_t r;    /* floor(sqrt(10005) 10^d) */
};

int kiln_pi_root_new(uint64_t digits, unsigned guard, const kiln_cancel *cancel,
		     kiln_pi_root **out)
{
	kiln_pi_root *r;

	*out = NULL;
	if (kiln_cancelled(cancel))
		return -KILN_E_CANCELLED;
	r = malloc(sizeof(*r));
	if (!r)
		return -KILN_E_INTERNAL;
	r->d = digits + guard;
	mpz_init(r->r);
	mpz_ui_pow_ui(r->r, 10, 2 * r->d);
	mpz_mul_ui(r->r, r->r, 10005);
	mpz_sqrt(r->r, r->r);
	*out = r;
	return 0;
}

void kiln_pi_root_free(kiln_pi_root *r)
{
	if (!r)
		return;
	mpz_clear(r->r);
	free(r);
}

/*
 * x = floor(pi 10^d) up to an error of a few units, from the sum:
 * 426880 sqrt(10005 10^2d) Q / (A Q + T).  Q and A Q + T are first cut to
 * the precision the quotient needs, which makes the division much cheaper.
 */
static int approximate(const kiln_pi_sum *sum, const kiln_pi_root *root, uint64_t d,
		       const kiln_cancel *cancel, mpz_t x)
{
	kiln_pi_root *own = NULL;
	mpz_t den, num;
	mp_bitcnt_t bits = (mp_bitcnt_t)(d * 3.3219280948873623) + 96;
	size_t size;
	int rc = 0;

	if (!root) {
		rc = kiln_pi_root_new(d, 0, cancel, &own);
		if (rc)
			return rc;
		root = own;
	}
	mpz_inits(den, num, NULL);
	mpz_mul_ui(den, sum->q, CHUD_A);
	mpz_add(den, den, sum->t);
	mpz_set(num, sum->q);
	size = mpz_sizeinbase(den, 2);
	if (size > bits) {
		mpz_tdiv_q_2exp(den, den, size - bits);
		mpz_tdiv_q_2exp(num, num, size - bits);
	}
	if (kiln_cancelled(cancel)) {
		rc = -KILN_E_CANCELLED;
		goto out;
	}
	mpz_mul(num, num, root->r);
	mpz_mul_ui(num, num, 426880);
	mpz_tdiv_q(x, num, den);
out:
	mpz_clears(den, num, NULL);
	kiln_pi_root_free(own);
	return rc;
}

int kiln_pi_finish(const kiln_pi_sum *sum, const kiln_pi_root *root,
		   uint64_t digits, unsigned guard,
		   const kiln_cancel *cancel, char **out, size_t *len,
		   unsigned *guard_out, char *err, size_t errlen)
{
	mpz_t x, g, scale;
	char *buf = NULL;
	int rc;

	*out = NULL;
	*len = 0;
	*guard_out = guard;
	if (guard < 8 || sum->a != 1 || sum->b < kiln_pi_terms(digits, guard) ||
	    (root && root->d != digits + guard)) {
		snprintf(err, errlen, "pi: the sum or root does not fit %llu digits with %u guard digits",
			 (unsigned long long)digits, guard);
		return -KILN_E_INVALID_ARGS;
	}
	mpz_inits(x, g, scale, NULL);
	rc = approximate(sum, root, digits + guard, cancel, x);
	if (rc) {
		snprintf(err, errlen, "pi: %s", rc == -KILN_E_CANCELLED ? "cancelled" : "out of memory");
		goto out;
	}
	/*
	 * x is within a few units of pi 10^(digits+guard).  Cutting the guard
	 * digits off gives the truncated result unless they lie within that
	 * error of a multiple of 10^guard; the margin of 10^4 units is far
	 * larger than the error.
	 */
	mpz_ui_pow_ui(scale, 10, guard);
	mpz_tdiv_qr(x, g, x, scale);
	mpz_sub_ui(scale, scale, 10000);
	if (mpz_cmp_ui(g, 10000) < 0 || mpz_cmp(g, scale) > 0) {
		*guard_out = guard * 2;
		rc = KILN_PI_MORE;
		goto out;
	}
	buf = malloc(digits + 3);
	if (!buf) {
		snprintf(err, errlen, "pi: out of memory for %llu digits", (unsigned long long)digits);
		rc = -KILN_E_INTERNAL;
		goto out;
	}
	/* "31415..." written one place to the right, then "3." put in front. */
	mpz_get_str(buf + 1, 10, x);
	if (strlen(buf + 1) != digits + 1) {
		snprintf(err, errlen, "pi: internal digit count mismatch");
		rc = -KILN_E_INTERNAL;
		goto out;
	}
	buf[0] = '3';
	if (digits > 0) {
		buf[1] = '.';
		*len = digits + 2;
	} else {
		buf[1] = '\0';
		*len = 1;
	}
	*out = buf;
	buf = NULL;
out:
	free(buf);
	mpz_clears(x, g, scale, NULL);
	return rc;
}

int kiln_pi(uint64_t digits, const kiln_cancel *cancel, char **out, size_t *len,
	    char *err, size_t errlen)
{
	unsigned guard = KILN_PI_GUARD;
	kiln_pi_sum *sum;
	int rc;

	for (;;) {
		rc = kiln_pi_sum_new(1, kiln_pi_terms(digits, guard), 1, cancel, &sum);
		if (rc) {
			snprintf(err, errlen, "pi: %s", rc == -KILN_E_CANCELLED ? "cancelled" : "bad range");
			return rc;
		}
		rc = kiln_pi_finish(sum, NULL, digits, guard, cancel, out, len, &guard, err, errlen);
		kiln_pi_sum_free(sum);
		if (rc != KILN_PI_MORE)
			return rc;
	}
}
