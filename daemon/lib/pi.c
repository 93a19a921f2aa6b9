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
#include "pi_impl.h"

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

kiln_pi_sum *kiln_pi_sum_empty(uint64_t a, uint64_t b, int has_p)
{
	kiln_pi_sum *s = malloc(sizeof(*s));

	if (!s)
		return NULL;
	s->a = a;
	s->b = b;
	s->has_p = has_p;
	s->has_t2 = 0;
	mpz_inits(s->p, s->q, s->t, s->t2, NULL);
	return s;
}

void kiln_pi_sum_settle(kiln_pi_sum *s)
{
	if (!s->has_t2)
		return;
	mpz_add(s->t, s->t, s->t2);
	/* Give the memory back now rather than when the sum is freed. */
	mpz_clear(s->t2);
	mpz_init(s->t2);
	s->has_t2 = 0;
}

int kiln_pi_sum_new(uint64_t a, uint64_t b, int last, const kiln_cancel *cancel,
		    kiln_pi_sum **out)
{
	kiln_pi_sum *s;
	int rc;

	*out = NULL;
	if (a < 1 || b <= a)
		return -KILN_E_INVALID_ARGS;
	s = kiln_pi_sum_empty(a, b, !last);
	if (!s)
		return -KILN_E_INTERNAL;
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
	kiln_pi_sum_settle(left);
	kiln_pi_sum_settle(right);
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
	mpz_clears(s->p, s->q, s->t, s->t2, NULL);
	free(s);
}

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
int kiln_pi_approx(const kiln_pi_sum *sum, const kiln_pi_root *root, uint64_t d,
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

int kiln_pi_cut_guard(mpz_t x, unsigned guard)
{
	mpz_t g, scale;
	int rc = 0;

	/*
	 * x is within a few units of pi 10^(digits+guard).  Cutting the guard
	 * digits off gives the truncated result unless they lie within that
	 * error of a multiple of 10^guard; the margin of 10^4 units is far
	 * larger than the error.
	 */
	mpz_inits(g, scale, NULL);
	mpz_ui_pow_ui(scale, 10, guard);
	mpz_tdiv_qr(x, g, x, scale);
	mpz_sub_ui(scale, scale, 10000);
	if (mpz_cmp_ui(g, 10000) < 0 || mpz_cmp(g, scale) > 0)
		rc = KILN_PI_MORE;
	mpz_clears(g, scale, NULL);
	return rc;
}

int kiln_pi_finish(kiln_pi_sum *sum, const kiln_pi_root *root,
		   uint64_t digits, unsigned guard,
		   const kiln_cancel *cancel, char **out, size_t *len,
		   unsigned *guard_out, char *err, size_t errlen)
{
	char *buf = NULL;
	mpz_t x;
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
	mpz_init(x);
	/* Settling a pending addend does not change the sum's value. */
	kiln_pi_sum_settle(sum);
	rc = kiln_pi_approx(sum, root, digits + guard, cancel, x);
	if (rc) {
		snprintf(err, errlen, "pi: %s", rc == -KILN_E_CANCELLED ? "cancelled" : "out of memory");
		goto out;
	}
	if (kiln_pi_cut_guard(x, guard)) {
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
	mpz_clear(x);
	return rc;
}
