/*
 * The `pi` action: the first n decimals of pi, truncated.
 *
 * A computation runs a kiln_pi_plan (include/kiln/pi.h) sized to the thread
 * pool: each stage's tasks are work items of the job that started it (its
 * owner), and the last item of a stage to finish queues the next stage.
 * Requests for at most as many digits as a running computation wait for it
 * instead of computing again.  If the owner is cancelled the computation
 * stops, and the requests still waiting start over without it.
 *
 * The largest result up to pi_cache_max_digits is kept (as a reference-
 * counted blob, which the plan writes its digits into, so nothing is
 * copied) and smaller requests are answered from its prefix.  Results
 * up to INLINE_MAX bytes go inline in data.pi; larger ones as a reply
 * attachment (pointing into the blob, not copied) or, if the request names
 * an `output` file under path_roots, written there on the thread pool.
 *
 * All the state here is loop-thread only; work items touch only the plan,
 * which the loop does not touch while a stage runs.
 */
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "action.h"
#include "config.h"
#include "job.h"
#include "kiln/error.h"
#include "kiln/pi.h"
#include "paths.h"

/* Larger results go as an attachment or to a file. */
#define INLINE_MAX (64 * 1024)

/* "3.1415..." with a reference count; the string follows the header, so a
 * reply attachment pointing at the string can find the header again. */
struct pi_blob {
	atomic_int refs;
	uint64_t digits;
	size_t len;
	char s[];
};

struct pi_waiter {
	struct job *job;
	uint64_t digits;
	char *output;            /* owned; NULL: inline or attachment */
	struct pi_waiter *next;
};

struct pi_comp;

struct pi_comp {
	uint64_t digits;
	struct job *owner;
	struct pi_waiter *waiters;   /* owner included */
	kiln_pi_plan *plan;
	struct pi_blob *blob;        /* the plan writes its result into blob->s */
	int rc;
	char err[160];
	struct pi_comp *next;
};

static struct {
	struct pi_blob *cache;
	struct pi_comp *running;
} pi;

static void pi_request(struct job *job, uint64_t digits, char *output);
static void stage_done(struct job *job, void *arg, int status);

static void blob_unref(struct pi_blob *b)
{
	if (b && atomic_fetch_sub(&b->refs, 1) == 1)
		free(b);
}

/* free_fn of a reply attachment that points at a blob's string. */
static void blob_unref_attachment(void *s)
{
	blob_unref((struct pi_blob *)((char *)s - offsetof(struct pi_blob, s)));
}

static struct pi_blob *blob_ref(struct pi_blob *b)
{
	atomic_fetch_add(&b->refs, 1);
	return b;
}

static size_t pi_len(uint64_t digits)
{
	return digits ? (size_t)digits + 2 : 1;
}

/* --- Answering ------------------------------------------------------------- */

struct pi_write {
	struct pi_blob *blob;
	uint64_t digits;
	char *output;
	char *resolved;
	int rc;
	char err[256];
};

static void write_work(struct job *job, void *arg)
{
	struct pi_write *w = arg;
	struct kiln_path_out out;
	size_t len = pi_len(w->digits), off = 0;
	int fd;

	fd = kiln_path_create(job_config(job), w->output, true, &out, &w->resolved, w->err, sizeof(w->err));
	if (fd < 0) {
		w->rc = fd;
		return;
	}
	while (off < len && !job_cancelled(job)) {
		ssize_t n = write(fd, w->blob->s + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(w->err, sizeof(w->err), "cannot write %s: %m", w->output);
			w->rc = -KILN_E_INTERNAL;
			break;
		}
		off += (size_t)n;
	}
	/* Only a complete output replaces the target. */
	int rc = kiln_path_finish(&out, !w->rc && off == len, w->err, sizeof(w->err));
	if (rc && !w->rc)
		w->rc = rc;
}

static void write_done(struct job *job, void *arg, int status)
{
	struct pi_write *w = arg;

	if (status || job_cancelled(job))
		job_fail(job, -KILN_E_CANCELLED, NULL, "cancelled");
	else if (w->rc)
		job_fail(job, w->rc, json_pack("{s:s}", "path", "args.output"), "%s", w->err);
	else
		job_succeed(job, json_pack("{s:I, s:s, s:I}", "digits", (json_int_t)w->digits,
					   "output", w->resolved, "bytes", (json_int_t)pi_len(w->digits)),
			    "%llu digits written to %s", (unsigned long long)w->digits, w->resolved);
	blob_unref(w->blob);
	free(w->output);
	free(w->resolved);
	free(w);
}

/* Answers one request from a blob holding at least its digits; takes
 * ownership of `output`. */
static void serve(struct job *job, struct pi_blob *blob, uint64_t digits, char *output, int cached)
{
	size_t len = pi_len(digits);
	struct pi_write *w;

	if (output) {
		w = calloc(1, sizeof(*w));
		if (!w) {
			free(output);
			job_fail(job, -KILN_E_INTERNAL, NULL, "out of memory");
			return;
		}
		w->blob = blob_ref(blob);
		w->digits = digits;
		w->output = output;
		if (job_queue_work(job, write_work, write_done, w)) {
			w->rc = -KILN_E_INTERNAL;
			snprintf(w->err, sizeof(w->err), "cannot queue work");
			write_done(job, w, 0);
		}
		return;
	}
	if (len <= INLINE_MAX) {
		job_succeed(job, json_pack("{s:I, s:s%, s:b}", "digits", (json_int_t)digits, "pi", blob->s,
					   len, "cached", cached),
			    "%llu digits%s", (unsigned long long)digits, cached ? " (cached)" : "");
		return;
	}
	job_set_reply_attachment(job, blob_ref(blob)->s, len, blob_unref_attachment);
	job_succeed(job, json_pack("{s:I, s:I, s:b}", "digits", (json_int_t)digits, "attachment",
				   (json_int_t)len, "cached", cached),
		    "%llu digits in the attachment%s", (unsigned long long)digits, cached ? " (cached)" : "");
}

/* --- Computation ----------------------------------------------------------- */

static void comp_free(struct pi_comp *c)
{
	struct pi_comp **pp;

	for (pp = &pi.running; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	kiln_pi_plan_free(c->plan);
	blob_unref(c->blob);
	free(c);
}

/* Keeps `b` as the cache if it is the largest yet and within the limit. */
static void cache_offer(const struct kiln_config *cfg, struct pi_blob *b)
{
	if (b->digits > cfg->pi_cache_max_digits || (pi.cache && pi.cache->digits >= b->digits))
		return;
	blob_unref(pi.cache);
	pi.cache = blob_ref(b);
}

/* Answers every waiter; the computation is over (loop thread). */
static void comp_end(struct pi_comp *c)
{
	struct pi_waiter *w, *next;
	struct pi_blob *blob = NULL;
	char err[sizeof(c->err)];
	int rc;

	if (!c->rc) {
		char *result;

		/* The result is c->blob->s: take the computation's reference. */
		kiln_pi_plan_result(c->plan, &result, &c->blob->len);
		blob = c->blob;
		c->blob = NULL;
		cache_offer(job_config(c->owner), blob);
	}
	w = c->waiters;
	rc = c->rc;
	memcpy(err, c->err, sizeof(err));
	comp_free(c);
	for (; w; w = next) {
		next = w->next;
		if (blob)
			serve(w->job, blob, w->digits, w->output, 0);
		else if (job_cancelled(w->job))
			job_fail(w->job, -job_cancel_reason(w->job), NULL, "cancelled");
		else if (rc == -KILN_E_CANCELLED)
			/* The owner went away; this request starts over. */
			pi_request(w->job, w->digits, w->output);
		else
			job_fail(w->job, rc, NULL, "pi: %s", err);
		free(w);
	}
	blob_unref(blob);
}

/* Parallel parts of a computation: the pool size, at most 64. */
static unsigned pool_threads(void)
{
	unsigned n = job_parallelism();

	return n > 64 ? 64 : n;
}

static void task_work(struct job *job, void *arg, unsigned task)
{
	struct pi_comp *c = arg;

	kiln_pi_plan_task(c->plan, task, job_cancel_token(job));
}

/* Queues the tasks of the plan's next stage, or ends the computation. */
static void comp_next_stage(struct pi_comp *c)
{
	unsigned done, total;
	int n;

	n = c->rc ? c->rc : kiln_pi_plan_stage(c->plan, c->err, sizeof(c->err));
	kiln_pi_plan_progress(c->plan, &done, &total);
	job_progress(c->owner, n == 0 ? total : done, total);
	if (n <= 0) {
		c->rc = n;
		comp_end(c);
		return;
	}
	if (job_queue_batch(c->owner, (unsigned)n, task_work, stage_done, c) != 0) {
		c->rc = -KILN_E_INTERNAL;
		snprintf(c->err, sizeof(c->err), "cannot queue work");
		comp_end(c);
	}
}

static void stage_done(struct job *job, void *arg, int status)
{
	struct pi_comp *c = arg;

	(void)job;
	/* A task cancelled before it started never ran, or one could not be
	 * queued: the stage is incomplete. */
	if (status && !c->rc) {
		c->rc = status == -KILN_E_INTERNAL ? -KILN_E_INTERNAL : -KILN_E_CANCELLED;
		snprintf(c->err, sizeof(c->err), status == -KILN_E_INTERNAL ? "cannot queue work" : "cancelled");
	}
	comp_next_stage(c);
}

/* Starts a computation owned by `job`; the waiter is its first. */
static void comp_start(struct job *job, struct pi_waiter *w)
{
	struct pi_comp *c = calloc(1, sizeof(*c));
	unsigned threads = pool_threads();

	if (!c || !(c->plan = kiln_pi_plan_new(w->digits, threads, KILN_PI_GUARD)) ||
	    !(c->blob = malloc(sizeof(*c->blob) + w->digits + 3))) {
		if (c)
			kiln_pi_plan_free(c->plan);
		free(c);
		free(w->output);
		free(w);
		job_fail(job, -KILN_E_INTERNAL, NULL, "out of memory");
		return;
	}
	/* Written only by the plan's last stages: until then the pages of a
	 * large blob are not touched, so allocating it now costs little. */
	atomic_init(&c->blob->refs, 1);
	c->blob->digits = w->digits;
	c->blob->len = 0;
	kiln_pi_plan_set_output(c->plan, c->blob->s);
	c->digits = w->digits;
	c->owner = job;
	c->waiters = w;
	c->next = pi.running;
	pi.running = c;
	comp_next_stage(c);
}

/* Answers from the cache, joins a running computation or starts one.
 * Takes ownership of `output`. */
static void pi_request(struct job *job, uint64_t digits, char *output)
{
	struct pi_waiter *w;
	struct pi_comp *c;

	if (pi.cache && pi.cache->digits >= digits) {
		serve(job, pi.cache, digits, output, 1);
		return;
	}
	w = calloc(1, sizeof(*w));
	if (!w) {
		free(output);
		job_fail(job, -KILN_E_INTERNAL, NULL, "out of memory");
		return;
	}
	w->job = job;
	w->digits = digits;
	w->output = output;
	for (c = pi.running; c; c = c->next) {
		if (c->digits >= digits && !job_cancelled(c->owner)) {
			w->next = c->waiters;
			c->waiters = w;
			return;
		}
	}
	comp_start(job, w);
}

static void act_pi(struct job *job, json_t *args)
{
	const struct kiln_config *cfg = job_config(job);
	json_int_t digits = json_integer_value(json_object_get(args, "digits"));
	json_t *out = json_object_get(args, "output");
	char *output = NULL;

	if ((uint64_t)digits > cfg->pi_max_digits) {
		job_fail(job, -KILN_E_TOO_LARGE,
			 json_pack("{s:s, s:s, s:I, s:I}", "path", "args.digits", "limit", "pi_max_digits",
				   "max", (json_int_t)cfg->pi_max_digits, "digits", digits),
			 "args.digits: %" JSON_INTEGER_FORMAT " is above pi_max_digits (%llu)", digits,
			 (unsigned long long)cfg->pi_max_digits);
		return;
	}
	if (out && !(output = strdup(json_string_value(out)))) {
		job_fail(job, -KILN_E_INTERNAL, NULL, "out of memory");
		return;
	}
	pi_request(job, (uint64_t)digits, output);
}

static void pi_reconfigure(const struct kiln_config *cfg)
{
	if (pi.cache && pi.cache->digits > cfg->pi_cache_max_digits) {
		blob_unref(pi.cache);
		pi.cache = NULL;
	}
}

static void pi_shutdown(void)
{
	blob_unref(pi.cache);
	pi.cache = NULL;
}

static void pi_stats(json_t *into)
{
	json_object_set_new(into, "pi_cache_digits", json_integer(pi.cache ? (json_int_t)pi.cache->digits : 0));
}

static size_t pi_memory_held(void)
{
	return pi.cache ? sizeof(*pi.cache) + pi.cache->len + 1 : 0;
}

static const struct action pi_actions[] = {
	{ "pi", "The first `digits` decimals of pi, truncated (Chudnovsky on GMP, cached).",
	  "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"digits\"],"
	  "\"properties\":{\"digits\":{\"type\":\"integer\",\"minimum\":0,"
	  "\"description\":\"decimals after the point, at most pi_max_digits\"},"
	  "\"output\":{\"type\":\"string\",\"minLength\":1,"
	  "\"description\":\"absolute file under path_roots to write the digits to\"}}}",
	  "{\"type\":\"object\",\"properties\":{\"digits\":{\"type\":\"integer\"},"
	  "\"pi\":{\"type\":\"string\",\"description\":\"inline when at most 65536 bytes\"},"
	  "\"attachment\":{\"type\":\"integer\",\"description\":\"bytes of the reply attachment holding the digits\"},"
	  "\"output\":{\"type\":\"string\"},\"bytes\":{\"type\":\"integer\"},"
	  "\"cached\":{\"type\":\"boolean\"}}}",
	  act_pi, 0 },
};

/* The digits in the reply (none with output), plus the line. */
static size_t pi_reply_bound(const struct action *a, const struct kiln_config *cfg, json_t *args)
{
	(void)a;
	(void)cfg;
	if (json_object_get(args, "output"))
		return 0;
	return (size_t)json_integer_value(json_object_get(args, "digits")) + 4096;
}

const struct action_family family_pi = {
	.name = "pi",
	.actions = pi_actions,
	.count = sizeof(pi_actions) / sizeof(pi_actions[0]),
	.reconfigure = pi_reconfigure,
	.shutdown = pi_shutdown,
	.stats = pi_stats,
	.memory_held = pi_memory_held,
	.reply_bound = pi_reply_bound,
};
