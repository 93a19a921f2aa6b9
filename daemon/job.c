/*
 * Job lifecycle.  A job is answered exactly once: by the handler's finish
 * call, or earlier by the daemon on timeout, cancel, disconnect or shutdown.
 * It is freed only when the handler has finished, every work item's done
 * callback has run, and its libuv handles are closed; until then it stays on
 * its connection's list (or, with the connection gone, alone).
 */
#include <assert.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "action.h"
#include "config.h"
#include "creds.h"
#include "usage.h"
#include "envelope.h"
#include "kiln/error.h"
#include "log.h"
#include "job_owner.h"

/*
 * A job's state, changed only through set_state():
 *
 *   RUNNING --handler finishes--> FINISHED --no holds left--> FREEING
 *      \--daemon answers (timeout, cancel)--> ANSWERED --handler finishes--/
 *
 * RUNNING is the only state in which a reply is still owed; the handler's
 * finish in ANSWERED is discarded.  In FREEING the handles are closing.
 */
enum job_state { JOB_RUNNING, JOB_ANSWERED, JOB_FINISHED, JOB_FREEING };

static const char *const job_state_names[] = { "running", "answered", "finished", "freeing" };

struct work {
	uv_work_t req;
	struct job *job;
	job_work_fn work;
	job_done_fn done;
	void *ctx;
	struct work *prev, *next;
	bool submitted;             /* handed to uv_queue_work (else waiting its turn) */
	struct work *next_waiting;  /* in waiting, while not submitted */
};

/*
 * pool_threads_per_uid: a uid's work items beyond its share of the pool
 * wait here, in order, and are submitted as that uid's running items
 * complete, so one user's long jobs never take every pool thread.
 */
static struct {
	struct work *head, *tail;
} waiting;

static void submit_waiting(void);

struct job {
	struct request req;
	struct kiln_peer peer;      /* the requester, kept after the connection goes */
	uv_loop_t *loop;
	const struct job_owner_ops *owner_ops; /* NULL: nobody left to answer */
	void *owner;
	struct job_node node;       /* on the owner's list (the owner links it) */
	enum job_state state;
	const struct action *action;
	struct kiln_config *cfg;    /* reference held for the job's life */
	uint64_t received_ns;       /* uv_hrtime() at receipt */

	kiln_cancel cancel;         /* reason once cancelled (KILN_E_TIMEOUT/CANCELLED) */
	/* What keeps a finished job alive: queued work items whose done has
	 * not run, plus one while its handler is being called. */
	unsigned holds;
	struct work *works;         /* pending work items, for uv_cancel */
	size_t reserved;            /* output room its owner keeps for its reply */

	uv_timer_t *timer;          /* deadline, armed once the job goes asynchronous */
	uv_async_t *progress_async; /* when the request asked for progress */
	_Atomic uint64_t progress_done, progress_total;
	_Atomic uint64_t progress_sent_ns; /* written on the loop, read by workers */
	uint64_t progress_sent_done;
	int open_handles;           /* closes pending before the job can be freed */

	void (*on_cancel)(struct job *job, void *ctx);
	void *on_cancel_ctx;

	void *reply_attach;         /* owned; released with reply_attach_free */
	size_t reply_attach_len;
	void (*reply_attach_free)(void *);
};

static struct {
	unsigned live;
	uint64_t created;
	pthread_t loop_thread;      /* the thread of the first job_new() */
} job_counts;

/* For the asserts of the loop-thread-only functions (job.h's contract). */
static inline bool on_loop(void)
{
	return job_counts.created == 0 || pthread_equal(pthread_self(), job_counts.loop_thread);
}

#define PROGRESS_INTERVAL_NS (100ull * 1000 * 1000)

static void on_progress(uv_async_t *a);

static void set_state(struct job *job, enum job_state to)
{
	log_debug("job %" JSON_INTEGER_FORMAT " %s: %s -> %s", job->req.job_id, job->req.action,
		  job_state_names[job->state], job_state_names[to]);
	job->state = to;
}

/* --- Accessors ------------------------------------------------------------ */

json_int_t job_id(const struct job *job)
{
	return job->req.job_id;
}

const char *job_action(const struct job *job)
{
	return job->req.action;
}

double job_timeout(const struct job *job)
{
	return job->req.timeout > 0 ? job->req.timeout : job->cfg->default_timeout;
}

int job_retries(const struct job *job)
{
	return job->req.retries;
}

json_t *job_host_list(const struct job *job)
{
	return job->req.host_list;
}

json_t *job_args(const struct job *job)
{
	return job->req.args;
}

bool job_wants_progress(const struct job *job)
{
	return job->req.progress;
}

const struct kiln_peer *job_peer(const struct job *job)
{
	return &job->peer;
}

uv_loop_t *job_loop(const struct job *job)
{
	return job->loop;
}

const struct kiln_config *job_config(const struct job *job)
{
	return job->cfg;
}

/* Milliseconds since the request was received. */
static double job_elapsed_ms(const struct job *job)
{
	return (double)(uv_hrtime() - job->received_ns) / 1e6;
}

const unsigned char *job_attachment(const struct job *job, size_t *len)
{
	*len = job->req.attach_len;
	return job->req.attach;
}

bool job_cancelled(const struct job *job)
{
	return kiln_cancelled(&job->cancel);
}

const kiln_cancel *job_cancel_token(const struct job *job)
{
	return &job->cancel;
}

int job_cancel_reason(const struct job *job)
{
	return atomic_load(&job->cancel.flag);
}

void job_on_cancel(struct job *job, void (*fn)(struct job *job, void *ctx), void *ctx)
{
	assert(on_loop() && job->state <= JOB_ANSWERED);
	job->on_cancel = fn;
	job->on_cancel_ctx = ctx;
}

bool job_answered(const struct job *job)
{
	return job->state != JOB_RUNNING;
}

bool job_detach_requested(const struct job *job)
{
	return job->req.detach;
}

bool job_accepts_raw(const struct job *job)
{
	return job->req.accept_raw;
}

struct job_node *job_node(struct job *job)
{
	return &job->node;
}

struct job *job_of_node(struct job_node *node)
{
	return (struct job *)((char *)node - offsetof(struct job, node));
}

unsigned job_live_count(void)
{
	return job_counts.live;
}

uint64_t job_created_count(void)
{
	return job_counts.created;
}

struct job *job_sibling(struct job *job, json_int_t id)
{
	struct job *t = job->owner_ops ? job->owner_ops->find(job->owner, id) : NULL;

	return t == job ? NULL : t;
}

void job_set_owner(struct job *job, const struct job_owner_ops *ops, void *owner)
{
	assert(on_loop() && job->state != JOB_FREEING);
	if (job->owner_ops)
		job->owner_ops->release(job->owner, job);
	job->owner_ops = ops;
	job->owner = ops ? owner : NULL;
}

/* --- Freeing -------------------------------------------------------------- */

static void job_free(struct job *job)
{
	usage_add(job->peer.uid, USAGE_JOBS, -1);
	usage_add(job->peer.uid, USAGE_ATTACH, -(long long)job->req.attach_len);
	request_clear(&job->req);
	if (job->reply_attach)
		job->reply_attach_free(job->reply_attach);
	config_unref(job->cfg);
	free(job);
}

static void on_handle_closed(uv_handle_t *h)
{
	struct job *job = h->data;
	free(h);
	if (--job->open_handles == 0)
		job_free(job);
}

/* Frees the job once its handler has finished and nothing holds it. */
static void maybe_free(struct job *job)
{
	if (job->state != JOB_FINISHED || job->holds > 0)
		return;
	job_set_owner(job, NULL, NULL);
	set_state(job, JOB_FREEING);
	job_counts.live--;
	if (job->timer) {
		job->open_handles++;
		uv_close((uv_handle_t *)job->timer, on_handle_closed);
	}
	if (job->progress_async) {
		job->open_handles++;
		uv_close((uv_handle_t *)job->progress_async, on_handle_closed);
	}
	if (job->open_handles == 0)
		job_free(job);
}

/* --- Answering ------------------------------------------------------------ */

/* Sends a final reply to the owner (a connection writes it as text; the
 * registry keeps it), or nowhere if the client left. */
static void send_reply(struct job *job, const struct reply *r)
{
	void *attach = job->reply_attach;

	job->reply_attach = NULL;
	if (job->owner_ops)
		job->owner_ops->reply(job->owner, job, r, attach, job->reply_attach_len, job->reply_attach_free);
	else if (attach)
		job->reply_attach_free(attach);
}

static void reply_release(struct reply *r)
{
	json_decref(r->failed_hosts);
	json_decref(r->data);
	json_decref(r->error);
}

/* Takes over the references in *r. */
static void finish(struct job *job, struct reply *r)
{
	assert(on_loop() && r->result);
	if (job->state >= JOB_FINISHED)
		fatal("job %" JSON_INTEGER_FORMAT " (%s) finished twice", job->req.job_id,
		      job->req.action);
	if (job->state == JOB_RUNNING) {
		/* The last progress report may still sit in the async handle's
		 * queue; send it first, so "done == total" precedes the reply.
		 * A job that only sent custom lines (job_progress_json) has none. */
		if (job->progress_async && atomic_load(&job->progress_total) > 0)
			on_progress(job->progress_async);
		log_debug("job %" JSON_INTEGER_FORMAT " %s: %s in %.3f ms%s%s", job->req.job_id,
			  job->req.action, r->result, job_elapsed_ms(job), r->error ? ": " : "",
			  r->error && r->message ? r->message : "");
		send_reply(job, r);
	}
	set_state(job, JOB_FINISHED);
	reply_release(r);
	maybe_free(job);
}

/* The message text: `fmt` itself when it has no conversions (most replies),
 * else formatted into buf. */
static const char *vformat(char *buf, size_t len, const char *fmt, va_list ap)
{
	if (!fmt)
		return "";
	if (!strchr(fmt, '%'))
		return fmt;
	vsnprintf(buf, len, fmt, ap);
	return buf;
}

void job_succeed(struct job *job, json_t *data, const char *fmt, ...)
{
	char buf[512];
	struct reply r = { "success", NULL, NULL, data, NULL };
	va_list ap;

	va_start(ap, fmt);
	r.message = vformat(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	finish(job, &r);
}

void job_fail(struct job *job, int code, json_t *detail, const char *fmt, ...)
{
	char buf[512];
	struct reply r = { "error", NULL, NULL, NULL, NULL };
	va_list ap;

	/* One convention, the library's: a negative -KILN_E_* code. */
	assert(code < 0);
	code = -code;
	va_start(ap, fmt);
	r.message = vformat(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (code == KILN_E_TOO_LARGE || code == KILN_E_BUSY)
		detail = config_limit_complete(job_config(job), detail, r.message);
	r.error = envelope_error_object(code, detail);
	if (job->reply_attach) {
		job->reply_attach_free(job->reply_attach);
		job->reply_attach = NULL;
	}
	finish(job, &r);
}

void job_reply(struct job *job, const char *result, json_t *failed_hosts, json_t *data,
	       const char *fmt, ...)
{
	char buf[512];
	struct reply r = { result, NULL, failed_hosts, data, NULL };
	va_list ap;

	va_start(ap, fmt);
	r.message = vformat(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	finish(job, &r);
}

void job_set_reply_attachment(struct job *job, void *data, size_t len, void (*free_fn)(void *))
{
	assert(on_loop() && job->state <= JOB_ANSWERED && (data || len == 0));
	if (job->reply_attach)
		job->reply_attach_free(job->reply_attach);
	job->reply_attach = data;
	job->reply_attach_len = len;
	job->reply_attach_free = free_fn ? free_fn : free;
}

/* --- Cancellation --------------------------------------------------------- */

void job_cancel(struct job *job, int reason)
{
	struct work *w;
	struct reply r = { "error", "cancelled", NULL, NULL, NULL };
	char msg[96];

	assert(on_loop() && (reason == KILN_E_TIMEOUT || reason == KILN_E_CANCELLED));
	if (job->state != JOB_RUNNING)
		return;
	atomic_store(&job->cancel.flag, reason);
	set_state(job, JOB_ANSWERED);
	if (reason == KILN_E_TIMEOUT) {
		snprintf(msg, sizeof(msg), "timed out after %g s", job_timeout(job));
		r.message = msg;
		r.error = envelope_error_object(reason, json_pack("{s:f}", "timeout", job_timeout(job)));
	} else {
		r.error = envelope_error_object(reason, NULL);
	}
	log_debug("job %" JSON_INTEGER_FORMAT " %s: %s", job->req.job_id, job->req.action,
		  kiln_err_name(reason));
	send_reply(job, &r);
	reply_release(&r);
	/* Work that has not started yet never will; its done sees UV_ECANCELED.
	 * Items still waiting for the uid's share go to the pool now, past
	 * the share: they see the job cancelled and end at once. */
	for (w = job->works; w; w = w->next)
		if (w->submitted)
			uv_cancel((uv_req_t *)&w->req);
	if (job->on_cancel)
		job->on_cancel(job, job->on_cancel_ctx);
	submit_waiting();
}

static void on_deadline(uv_timer_t *t)
{
	job_cancel(t->data, KILN_E_TIMEOUT);
}

/* --- Work ----------------------------------------------------------------- */

/* Work runs with the requester's file-system credentials (creds.h). */
static void work_cb(uv_work_t *req)
{
	struct work *w = req->data;

	creds_enter(&w->job->peer, &w->job->req);
	w->work(w->job, w->ctx);
	creds_leave();
}

static void after_work_cb(uv_work_t *req, int status)
{
	struct work *w = req->data;
	struct job *job = w->job;

	assert(job->holds > 0);
	if (w->prev)
		w->prev->next = w->next;
	else
		job->works = w->next;
	if (w->next)
		w->next->prev = w->prev;
	usage_add(job->peer.uid, USAGE_WORKERS, -1);
	/* The hold lasts through done: a job it finishes is freed here, after. */
	w->done(job, w->ctx, status);
	free(w);
	job->holds--;
	maybe_free(job);
	submit_waiting();
}

static unsigned uid_share(void)
{
	unsigned set = config_current()->pool_threads_per_uid, pool = config_pool_threads();

	if (set)
		return set < pool ? set : pool;
	return pool > 1 ? pool - 1 : 1;
}

unsigned job_parallelism(void)
{
	return uid_share();
}

static int submit(struct work *w)
{
	int rc = uv_queue_work(w->job->loop, &w->req, work_cb, after_work_cb);

	if (rc == 0) {
		w->submitted = true;
		usage_add(w->job->peer.uid, USAGE_WORKERS, 1);
	}
	return rc;
}

/* Submits waiting items whose uid is below its share, oldest first. */
static void submit_waiting(void)
{
	unsigned share = uid_share();

	for (struct work **pp = &waiting.head, *prev = NULL; *pp;) {
		struct work *w = *pp;
		if (!job_cancelled(w->job) && usage_get(w->job->peer.uid, USAGE_WORKERS) >= share) {
			prev = w;
			pp = &w->next_waiting;
			continue;
		}
		*pp = w->next_waiting;
		if (waiting.tail == w)
			waiting.tail = prev;
		w->next_waiting = NULL;
		if (submit(w) != 0)
			fatal("cannot queue pool work");
	}
}

int job_queue_work(struct job *job, job_work_fn work, job_done_fn done, void *ctx)
{
	struct work *w;

	assert(on_loop() && work && done);
	assert(job->state <= JOB_FINISHED);
	w = calloc(1, sizeof(*w));
	if (!w)
		return -KILN_E_INTERNAL;
	w->req.data = w;
	w->job = job;
	w->work = work;
	w->done = done;
	w->ctx = ctx;
	if (usage_get(job->peer.uid, USAGE_WORKERS) < uid_share()) {
		if (submit(w) != 0) {
			free(w);
			return -KILN_E_INTERNAL;
		}
	} else {
		if (waiting.tail)
			waiting.tail->next_waiting = w;
		else
			waiting.head = w;
		waiting.tail = w;
	}
	w->next = job->works;
	if (w->next)
		w->next->prev = w;
	job->works = w;
	job->holds++;
	return 0;
}

struct batch {
	job_batch_fn work;
	job_done_fn done;
	void *ctx;
	unsigned pending;
	int status;
	struct batch_item {
		struct batch *b;
		unsigned index;
	} items[];
};

static void batch_work(struct job *job, void *arg)
{
	struct batch_item *it = arg;

	it->b->work(job, it->b->ctx, it->index);
}

static void batch_done(struct job *job, void *arg, int status)
{
	struct batch *b = ((struct batch_item *)arg)->b;

	if (status && !b->status)
		b->status = status;
	if (--b->pending)
		return;
	b->done(job, b->ctx, b->status);
	free(b);
}

int job_queue_batch(struct job *job, unsigned count, job_batch_fn work, job_done_fn done, void *ctx)
{
	struct batch *b;

	assert(on_loop() && count > 0 && work && done);
	b = calloc(1, sizeof(*b) + count * sizeof(b->items[0]));
	if (!b)
		return -KILN_E_INTERNAL;
	b->work = work;
	b->done = done;
	b->ctx = ctx;
	/* No done callback can run while this loop-thread function queues. */
	for (unsigned i = 0; i < count; i++) {
		b->items[i] = (struct batch_item){ b, i };
		if (job_queue_work(job, batch_work, batch_done, &b->items[i]) != 0) {
			b->status = -KILN_E_INTERNAL;
			break;
		}
		b->pending++;
	}
	if (b->pending == 0) {
		free(b);
		return -KILN_E_INTERNAL;
	}
	return 0;
}

struct release {
	void (*fn)(void *obj);
	void *obj;
};

static void release_work(struct job *job, void *arg)
{
	struct release *r = arg;

	(void)job;
	r->fn(r->obj);
	r->obj = NULL;
}

static void release_done(struct job *job, void *arg, int status)
{
	struct release *r = arg;

	(void)job;
	(void)status;
	if (r->obj) /* the work never ran */
		r->fn(r->obj);
	free(r);
}

void job_release_on_pool(struct job *job, void (*release)(void *obj), void *obj)
{
	struct release *r;

	assert(on_loop() && release);
	r = malloc(sizeof(*r));

	if (r) {
		r->fn = release;
		r->obj = obj;
		if (job_queue_work(job, release_work, release_done, r) == 0)
			return;
		free(r);
	}
	release(obj);
}

/* --- Progress ------------------------------------------------------------- */

/* Steals `progress`. */
static void send_progress(struct job *job, json_t *progress)
{
	if (job->state == JOB_RUNNING && job->owner_ops)
		job->owner_ops->progress(job->owner, job, progress);
	json_decref(progress);
}

static void on_progress(uv_async_t *a)
{
	struct job *job = a->data;
	uint64_t done = atomic_load(&job->progress_done);
	uint64_t total = atomic_load(&job->progress_total);

	if (done == job->progress_sent_done && atomic_load(&job->progress_sent_ns))
		return;
	job->progress_sent_done = done;
	atomic_store(&job->progress_sent_ns, uv_hrtime());
	send_progress(job, json_pack("{s:I, s:I}", "done", (json_int_t)done, "total", (json_int_t)total));
}

void job_progress(struct job *job, uint64_t done, uint64_t total)
{
	if (!job->progress_async)
		return;
	atomic_store(&job->progress_done, done);
	atomic_store(&job->progress_total, total);
	/* uv_async_send coalesces; the interval check keeps a chatty worker from
	 * flooding the client.  A read racing the loop's store only costs one
	 * extra or one fewer line. */
	if (done == total ||
	    uv_hrtime() - atomic_load_explicit(&job->progress_sent_ns, memory_order_relaxed) >= PROGRESS_INTERVAL_NS)
		uv_async_send(job->progress_async);
}

void job_progress_json(struct job *job, json_t *progress)
{
	assert(on_loop() && job->state <= JOB_ANSWERED);
	if (!job->req.progress) {
		json_decref(progress);
		return;
	}
	send_progress(job, progress);
}

/* --- Creation and dispatch ------------------------------------------------ */

struct job *job_new(uv_loop_t *loop, const struct job_owner_ops *ops, void *owner,
		    const struct kiln_peer *peer, struct request *req)
{
	struct job *job;

	assert(loop && req && req->action && (!ops || owner));
	if (job_counts.created == 0)
		job_counts.loop_thread = pthread_self();
	assert(on_loop());
	job = calloc(1, sizeof(*job));
	if (!job)
		fatal("out of memory");
	job->req = *req; /* takes over what req owned */
	memset(req, 0, sizeof(*req));
	job->loop = loop;
	job->owner_ops = ops;
	job->owner = owner;
	job->state = JOB_RUNNING;
	job->cfg = config_ref((struct kiln_config *)config_current());
	job->received_ns = uv_hrtime();
	atomic_init(&job->cancel.flag, 0);
	atomic_init(&job->progress_done, 0);
	atomic_init(&job->progress_total, 0);
	atomic_init(&job->progress_sent_ns, 0);
	job_counts.live++;
	job_counts.created++;
	job->peer = peer ? *peer : (struct kiln_peer){ .uid = (uid_t)-1, .gid = (gid_t)-1 };
	/* Its attachment bytes were counted as they arrived (conn.c); the job
	 * holds them now, and counts against max_inflight_per_uid. */
	usage_add(job->peer.uid, USAGE_JOBS, 1);
	return job;
}

static void arm_deadline(struct job *job)
{
	double remaining_ms = job_timeout(job) * 1000.0 - job_elapsed_ms(job);

	if (job->state != JOB_RUNNING || (job->action->flags & ACTION_OWN_TIMEOUT))
		return;
	job->timer = malloc(sizeof(*job->timer));
	if (!job->timer)
		fatal("out of memory");
	uv_timer_init(job->loop, job->timer);
	job->timer->data = job;
	uv_timer_start(job->timer, on_deadline, remaining_ms > 0 ? (uint64_t)remaining_ms + 1 : 0, 0);
}

size_t job_reply_bound(const struct job *job)
{
	assert(job->action);
	return dispatch_reply_bound(job->action, job->cfg, job->req.args);
}

void job_set_reserved(struct job *job, size_t bytes)
{
	job->reserved = bytes;
}

size_t job_reserved(const struct job *job)
{
	return job->reserved;
}

int job_prepare(struct job *job)
{
	json_t *detail = NULL;
	char msg[512];
	int rc;

	assert(job->state == JOB_RUNNING && !job->action);
	rc = dispatch_prepare(job, job->cfg, &job->req, &job->action, &detail, msg, sizeof(msg));
	if (rc) {
		job_fail(job, rc, detail, "%s", msg);
		return rc;
	}
	/* An attachment the action does not read is not kept (a detached
	 * sleep would otherwise hold it for its whole life). */
	if (job->req.attach && !(job->action->flags & ACTION_ATTACHMENT)) {
		usage_add(job->peer.uid, USAGE_ATTACH, -(long long)job->req.attach_len);
		OPENSSL_cleanse(job->req.attach, job->req.attach_len);
		free(job->req.attach);
		job->req.attach = NULL;
		job->req.attach_len = 0;
	}
	if (job->req.progress) {
		job->progress_async = malloc(sizeof(*job->progress_async));
		if (!job->progress_async)
			fatal("out of memory");
		uv_async_init(job->loop, job->progress_async, on_progress);
		job->progress_async->data = job;
	}
	return 0;
}

void job_start(struct job *job)
{
	assert(job->action && job->state <= JOB_ANSWERED && !job->timer);
	/* The handler may finish the job before it returns: the hold keeps it
	 * alive until the deadline is armed or the job freed, here. */
	job->holds++;
	job->action->handler(job, job->req.args);
	job->holds--;
	if (job->state >= JOB_FINISHED)
		maybe_free(job);
	else
		arm_deadline(job);
}
