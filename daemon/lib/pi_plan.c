/*
 * The staged plan for pi (see include/kiln/pi.h).
 *
 *	SUM       `parts` tasks: range i of the series; task 0 also computes
 *	          sqrt(10005) and 10^h for the final split, so it gets a
 *	          smaller range to finish with the others.
 *	MERGE     while more than one sum is left, adjacent pairs merge; each
 *	          merge is 3 or 4 independent products (T_l Q_r, P_l T_r,
 *	          Q_l Q_r and, unless the right range ends the series, P_l P_r).
 *	APPROX    one task: the division and the guard-digit check.  If the
 *	          guard digits cannot decide, the plan starts over at SUM with
 *	          twice as many.  For large results x is cut into two halves
 *	          at 10^h here.
 *	STR       the decimal conversion: one task, or one per half.
 *	ASSEMBLE  the low half, zero-padded, after the high one.
 *
 * Tasks of a stage touch disjoint outputs and only read shared inputs (GMP
 * allows concurrent reads); the caller's wait between stages orders
 * everything else.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/error.h"
#include "pi_impl.h"

/* Results this large are converted to decimal in two halves. */
#define SPLIT_STR_MIN 200000
/* The root costs about this share of the whole series sum (in %). */
#define ROOT_SHARE 10

enum stage { ST_NEW, ST_SUM, ST_MERGE, ST_APPROX, ST_STR, ST_ASSEMBLE, ST_DONE };
enum kind { K_SUM, K_TQ, K_PT, K_QQ, K_PP, K_APPROX, K_STR_ALL, K_STR_HI, K_STR_LO, K_ASSEMBLE };

struct task {
	enum kind kind;
	unsigned pair;        /* K_TQ..K_PP: merges cur[2 pair] and cur[2 pair + 1] */
	uint64_t a, b;        /* K_SUM: the range */
	int last;             /* K_SUM: the range ends the series */
	unsigned index;       /* K_SUM: slot in cur */
};

struct kiln_pi_plan {
	uint64_t digits;
	unsigned parts, guard;
	enum stage stage;
	unsigned stages_done;
	int split_str;        /* convert in two halves */
	uint64_t half;        /* h: the low half has h digits */

	kiln_pi_sum **cur;    /* the sums of the current level */
	unsigned ncur;
	kiln_pi_sum **next;   /* the merged level being built */
	unsigned nnext;
	kiln_pi_root *root;
	mpz_t pow_half;       /* 10^h */
	mpz_t x, lo;          /* the result (x is the high half when split) */
	int more;             /* APPROX asked for more guard digits */

	char *out;            /* "3.1415..." being written */
	char *user_out;       /* the caller's buffer for it, or NULL */
	char *lo_str;         /* the low half's digits */
	size_t len;

	struct task task[KILN_PI_MAX_TASKS];
	int rc[KILN_PI_MAX_TASKS];
	unsigned ntasks;
};

static void free_level(kiln_pi_sum **v, unsigned n)
{
	for (unsigned i = 0; v && i < n; i++)
		kiln_pi_sum_free(v[i]);
}

kiln_pi_plan *kiln_pi_plan_new(uint64_t digits, unsigned parts, unsigned guard)
{
	kiln_pi_plan *p;

	if (parts < 1 || parts > 64 || guard < 8)
		return NULL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->digits = digits;
	p->guard = guard;
	/* Tiny sums are not worth splitting (and need >= 1 term a range). */
	p->parts = kiln_pi_terms(digits, guard) < 64ull * parts ? 1 : parts;
	p->split_str = parts > 1 && digits >= SPLIT_STR_MIN;
	p->half = (digits + 1) / 2;
	p->cur = calloc(p->parts, sizeof(*p->cur));
	p->next = calloc(p->parts, sizeof(*p->next));
	if (!p->cur || !p->next) {
		kiln_pi_plan_free(p);
		return NULL;
	}
	mpz_inits(p->pow_half, p->x, p->lo, NULL);
	return p;
}

void kiln_pi_plan_free(kiln_pi_plan *p)
{
	if (!p)
		return;
	if (p->cur) {
		free_level(p->cur, p->ncur);
		free_level(p->next, p->nnext);
		mpz_clears(p->pow_half, p->x, p->lo, NULL);
	}
	free(p->cur);
	free(p->next);
	kiln_pi_root_free(p->root);
	if (p->out != p->user_out)
		free(p->out);
	free(p->lo_str);
	free(p);
}

/* --- Stage preparation (cheap) ---------------------------------------------- */

static int prep_sum(kiln_pi_plan *p)
{
	uint64_t n = kiln_pi_terms(p->digits, p->guard), span = n - 1, first = span;

	free_level(p->cur, p->ncur);
	p->ncur = p->parts;
	memset(p->cur, 0, p->parts * sizeof(*p->cur));
	kiln_pi_root_free(p->root);
	p->root = NULL;
	if (p->parts > 1) {
		/* Task 0 also computes the root: give it ROOT_SHARE% less. */
		uint64_t share = span * (100 + ROOT_SHARE) / (100 * p->parts);

		first = share > span * ROOT_SHARE / 100 ? share - span * ROOT_SHARE / 100 : 1;
	}
	for (unsigned i = 0; i < p->parts; i++) {
		struct task *t = &p->task[i];

		t->kind = K_SUM;
		t->index = i;
		t->a = i == 0 ? 1 : 1 + first + (span - first) * (i - 1) / (p->parts - 1);
		t->b = i == p->parts - 1 ? n : 1 + first + (span - first) * i / (p->parts - 1);
		t->last = i == p->parts - 1;
	}
	p->stage = ST_SUM;
	return (int)(p->ntasks = p->parts);
}

static int prep_merge(kiln_pi_plan *p)
{
	unsigned pairs = p->ncur / 2, k = 0;

	p->nnext = 0;
	for (unsigned j = 0; j < pairs; j++) {
		kiln_pi_sum *l = p->cur[2 * j], *r = p->cur[2 * j + 1];
		kiln_pi_sum *m = kiln_pi_sum_empty(l->a, r->b, r->has_p);

		if (!m)
			return -KILN_E_INTERNAL;
		m->has_t2 = 1;
		p->next[p->nnext++] = m;
		p->task[k++] = (struct task){ .kind = K_TQ, .pair = j };
		p->task[k++] = (struct task){ .kind = K_PT, .pair = j };
		p->task[k++] = (struct task){ .kind = K_QQ, .pair = j };
		if (r->has_p)
			p->task[k++] = (struct task){ .kind = K_PP, .pair = j };
	}
	p->stage = ST_MERGE;
	return (int)(p->ntasks = k);
}

/* After a merge stage: the merged level replaces the current one. */
static void finish_merge(kiln_pi_plan *p)
{
	unsigned pairs = p->ncur / 2;

	for (unsigned j = 0; j < pairs; j++) {
		kiln_pi_sum_free(p->cur[2 * j]);
		kiln_pi_sum_free(p->cur[2 * j + 1]);
	}
	/* An odd sum out moves up unchanged. */
	if (p->ncur % 2)
		p->next[p->nnext++] = p->cur[p->ncur - 1];
	memcpy(p->cur, p->next, p->nnext * sizeof(*p->cur));
	p->ncur = p->nnext;
	p->nnext = 0;
}

static int prep_one(kiln_pi_plan *p, enum stage st, enum kind kind)
{
	p->stage = st;
	p->task[0] = (struct task){ .kind = kind };
	return (int)(p->ntasks = 1);
}

static int prep_str(kiln_pi_plan *p)
{
	p->out = p->user_out ? p->user_out : malloc(p->digits + 3);
	if (!p->out)
		return -KILN_E_INTERNAL;
	if (!p->split_str)
		return prep_one(p, ST_STR, K_STR_ALL);
	p->lo_str = malloc(p->half + 2);
	if (!p->lo_str)
		return -KILN_E_INTERNAL;
	p->stage = ST_STR;
	p->task[0] = (struct task){ .kind = K_STR_HI };
	p->task[1] = (struct task){ .kind = K_STR_LO };
	return (int)(p->ntasks = 2);
}

int kiln_pi_plan_stage(kiln_pi_plan *p, char *err, size_t errlen)
{
	int rc;

	for (unsigned i = 0; i < p->ntasks; i++) {
		if (p->rc[i] < 0) {
			snprintf(err, errlen, "pi: %s", p->rc[i] == -KILN_E_CANCELLED ? "cancelled"
							: p->rc[i] == -KILN_E_INTERNAL ? "out of memory"
							: kiln_err_name(p->rc[i]));
			return p->rc[i];
		}
	}
	if (p->stage != ST_NEW)
		p->stages_done++;
	memset(p->rc, 0, sizeof(p->rc));
	switch (p->stage) {
	case ST_NEW:
		rc = prep_sum(p);
		break;
	case ST_MERGE:
		finish_merge(p);
		/* fall through */
	case ST_SUM:
		rc = p->ncur > 1 ? prep_merge(p) : prep_one(p, ST_APPROX, K_APPROX);
		break;
	case ST_APPROX:
		if (p->more) {
			p->more = 0;
			p->guard *= 2;
			rc = prep_sum(p);
		} else {
			rc = prep_str(p);
		}
		break;
	case ST_STR:
		if (p->split_str) {
			rc = prep_one(p, ST_ASSEMBLE, K_ASSEMBLE);
			break;
		}
		/* fall through */
	default:
		p->stage = ST_DONE;
		p->ntasks = 0;
		rc = 0;
	}
	if (rc < 0)
		snprintf(err, errlen, "pi: out of memory");
	return rc;
}

void kiln_pi_plan_set_output(kiln_pi_plan *p, char *buf)
{
	p->user_out = buf;
}

void kiln_pi_plan_progress(const kiln_pi_plan *p, unsigned *done, unsigned *total)
{
	unsigned levels = 0;

	for (unsigned n = p->parts; n > 1; n = (n + 1) / 2)
		levels++;
	*total = 1 + levels + 1 + (p->split_str ? 2 : 1);
	*done = p->stages_done < *total ? p->stages_done : *total;
}

void kiln_pi_plan_result(kiln_pi_plan *p, char **out, size_t *len)
{
	*out = p->out;
	*len = p->len;
	p->out = NULL;
}

/* --- Tasks ----------------------------------------------------------------- */

static int task_sum(kiln_pi_plan *p, const struct task *t, const kiln_cancel *cancel)
{
	int rc = kiln_pi_sum_new(t->a, t->b, t->last, cancel, &p->cur[t->index]);

	if (rc || t->index != 0)
		return rc;
	if (p->split_str)
		mpz_ui_pow_ui(p->pow_half, 10, p->half);
	return kiln_pi_root_new(p->digits, p->guard, cancel, &p->root);
}

static int task_merge(kiln_pi_plan *p, const struct task *t, const kiln_cancel *cancel)
{
	kiln_pi_sum *l = p->cur[2 * t->pair], *r = p->cur[2 * t->pair + 1], *m = p->next[t->pair];

	if (kiln_cancelled(cancel))
		return -KILN_E_CANCELLED;
	switch (t->kind) {
	case K_TQ:
		/* Only this task reads l->t, so it may settle it. */
		kiln_pi_sum_settle(l);
		mpz_mul(m->t, l->t, r->q);
		break;
	case K_PT:
		kiln_pi_sum_settle(r);
		mpz_mul(m->t2, l->p, r->t);
		break;
	case K_QQ:
		mpz_mul(m->q, l->q, r->q);
		break;
	default:
		mpz_mul(m->p, l->p, r->p);
		break;
	}
	return 0;
}

static int task_approx(kiln_pi_plan *p, const kiln_cancel *cancel)
{
	kiln_pi_sum *s = p->cur[0];
	int rc;

	kiln_pi_sum_settle(s);
	rc = kiln_pi_approx(s, p->root, p->digits + p->guard, cancel, p->x);
	if (rc)
		return rc;
	if (kiln_pi_cut_guard(p->x, p->guard)) {
		p->more = 1;
		return 0;
	}
	if (p->split_str)
		mpz_tdiv_qr(p->x, p->lo, p->x, p->pow_half);
	return 0;
}

/* "31415..." goes one place to the right; "3." is put in front at the end. */
static int task_str_all(kiln_pi_plan *p)
{
	mpz_get_str(p->out + 1, 10, p->x);
	if (strlen(p->out + 1) != p->digits + 1)
		return -KILN_E_INTERNAL;
	p->out[0] = '3';
	if (p->digits) {
		p->out[1] = '.';
		p->len = p->digits + 2;
	} else {
		p->out[1] = '\0';
		p->len = 1;
	}
	return 0;
}

static int task_assemble(kiln_pi_plan *p)
{
	size_t hi = strlen(p->out + 1), lo = strlen(p->lo_str);

	if (hi != p->digits + 1 - p->half || lo > p->half)
		return -KILN_E_INTERNAL;
	memset(p->out + 1 + hi, '0', p->half - lo);
	memcpy(p->out + 1 + hi + (p->half - lo), p->lo_str, lo + 1);
	p->out[0] = '3';
	p->out[1] = '.';
	p->len = p->digits + 2;
	free(p->lo_str);
	p->lo_str = NULL;
	return 0;
}

int kiln_pi_plan_task(kiln_pi_plan *p, unsigned i, const kiln_cancel *cancel)
{
	const struct task *t = &p->task[i];
	int rc;

	if (i >= p->ntasks)
		return -KILN_E_INVALID_ARGS;
	switch (t->kind) {
	case K_SUM:
		rc = task_sum(p, t, cancel);
		break;
	case K_TQ:
	case K_PT:
	case K_QQ:
	case K_PP:
		rc = task_merge(p, t, cancel);
		break;
	case K_APPROX:
		rc = task_approx(p, cancel);
		break;
	case K_STR_ALL:
		rc = task_str_all(p);
		break;
	case K_STR_HI:
		mpz_get_str(p->out + 1, 10, p->x);
		rc = 0;
		break;
	case K_STR_LO:
		mpz_get_str(p->lo_str, 10, p->lo);
		rc = 0;
		break;
	default:
		rc = task_assemble(p);
		break;
	}
	p->rc[i] = rc;
	return rc;
}

int kiln_pi(uint64_t digits, const kiln_cancel *cancel, char **out, size_t *len,
	    char *err, size_t errlen)
{
	kiln_pi_plan *p = kiln_pi_plan_new(digits, 1, KILN_PI_GUARD);
	int n;

	*out = NULL;
	*len = 0;
	if (!p) {
		snprintf(err, errlen, "pi: out of memory");
		return -KILN_E_INTERNAL;
	}
	while ((n = kiln_pi_plan_stage(p, err, errlen)) > 0)
		for (int i = 0; i < n; i++)
			if (kiln_pi_plan_task(p, (unsigned)i, cancel))
				break;
	if (n == 0)
		kiln_pi_plan_result(p, out, len);
	kiln_pi_plan_free(p);
	return n;
}
