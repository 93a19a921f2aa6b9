/*
 * Job lifecycle.  A job is answered exactly once: by the handler's finish
 * call, or earlier by the daemon on timeout, cancel, disconnect or shutdown.
 * It is freed only when the handler has finished, every work item's done
 * callback has run, and its libuv handles are closed; until then it stays on
 * its connection's list (or, with the connection gone, alone).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "action.h"
#include "config.h"
#include "creds.h"
#include "envelope.h"
#include "kiln/error.h"
#include "jobs.h"
#include "log.h"
#include "server.h"

struct work {
	uv_work_t req;
	struct job *job;
	job_work_fn work;
	job_done_fn done;
	void *ctx;
	struct work *prev, *next;
};

#define PROGRESS_INTERVAL_NS (100ull * 1000 * 1000)

static void on_progress(uv_async_t *a);

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
	return job->srv->loop;
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
	job->on_cancel = fn;
	job->on_cancel_ctx = ctx;
}

/* --- Freeing -------------------------------------------------------------- */

static void job_free(struct job *job)
{
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

static void unlink_from_conn(struct job *job)
{
	struct conn *c = job->conn;

	if (!c)
		return;
	if (job->conn_prev)
		job->conn_prev->conn_next = job->conn_next;
	else
		c->jobs = job->conn_next;
	if (job->conn_next)
		job->conn_next->conn_prev = job->conn_prev;
	job->conn = NULL;
	c->inflight--;
	/* A slot is free: requests buffered behind the in-flight limit may go on. */
	conn_resume(c);
}

static void maybe_free(struct job *job)
{
	struct server *srv = job->srv;

	if (!job->finished || job->pending_work > 0 || job->in_dispatch || job->freeing)
		return;
	job->freeing = true;
	unlink_from_conn(job);
	srv->jobs_in_flight--;
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
	server_maybe_finish_shutdown(srv);
}

/* --- Answering ------------------------------------------------------------ */

/* Sends a final reply: to the connection (the hot path: written as text),
 * to the job registry for a detached job, or nowhere if the client left. */
static void send_reply(struct job *job, const struct reply *r)
{
	if (job->detached) {
		json_t *reply = envelope_reply(&job->req.job_id, r->result, r->message,
					       json_incref(r->failed_hosts), json_incref(r->data),
					       json_incref(r->error));
		jobs_on_reply(job, reply, job->reply_attach, job->reply_attach_len, job->reply_attach_free);
		json_decref(reply);
	} else if (job->conn) {
		conn_send_reply(job->conn, &job->req, r, job->reply_attach, job->reply_attach_len,
				job->reply_attach_free);
	} else if (job->reply_attach) {
		job->reply_attach_free(job->reply_attach);
	}
	job->reply_attach = NULL;
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
	if (job->finished)
		fatal("job %" JSON_INTEGER_FORMAT " (%s) finished twice", job->req.job_id,
		      job->req.action);
	job->finished = true;
	if (!job->answered) {
		/* The last progress report may still sit in the async handle's
		 * queue; send it first, so "done == total" precedes the reply.
		 * A job that only sent custom lines (job_progress_json) has none. */
		if (job->progress_async && atomic_load(&job->progress_total) > 0)
			on_progress(job->progress_async);
		job->answered = true;
		log_debug("job %" JSON_INTEGER_FORMAT " %s: %s in %.3f ms%s%s", job->req.job_id,
			  job->req.action, r->result, job_elapsed_ms(job), r->error ? ": " : "",
			  r->error && r->message ? r->message : "");
		send_reply(job, r);
	}
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
	struct reply r = { "error", NULL, NULL, NULL, envelope_error_object(code < 0 ? -code : code, detail) };
	va_list ap;

	va_start(ap, fmt);
	r.message = vformat(buf, sizeof(buf), fmt, ap);
	va_end(ap);
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

	if (job->answered || job->freeing)
		return;
	atomic_store(&job->cancel.flag, reason);
	job->answered = true;
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
	/* Work that has not started yet never will; its done sees UV_ECANCELED. */
	for (w = job->works; w; w = w->next)
		uv_cancel((uv_req_t *)&w->req);
	if (job->on_cancel)
		job->on_cancel(job, job->on_cancel_ctx);
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

	creds_enter(&w->job->peer);
	w->work(w->job, w->ctx);
	creds_leave();
}

static void after_work_cb(uv_work_t *req, int status)
{
	struct work *w = req->data;
	struct job *job = w->job;

	if (w->prev)
		w->prev->next = w->next;
	else
		job->works = w->next;
	if (w->next)
		w->next->prev = w->prev;
	job->pending_work--;
	w->done(job, w->ctx, status);
	free(w);
	maybe_free(job);
}

int job_queue_work(struct job *job, job_work_fn work, job_done_fn done, void *ctx)
{
	struct work *w = calloc(1, sizeof(*w));

	if (!w)
		return -KILN_E_INTERNAL;
	w->req.data = w;
	w->job = job;
	w->work = work;
	w->done = done;
	w->ctx = ctx;
	if (uv_queue_work(job->srv->loop, &w->req, work_cb, after_work_cb) != 0) {
		free(w);
		return -KILN_E_INTERNAL;
	}
	w->next = job->works;
	if (w->next)
		w->next->prev = w;
	job->works = w;
	job->pending_work++;
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
	struct release *r = malloc(sizeof(*r));

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

static void send_progress(struct job *job, json_t *progress)
{
	json_t *line;

	if (job->detached && !job->answered)
		jobs_on_progress(job, progress);
	if (job->answered || !job->conn) {
		json_decref(progress);
		return;
	}
	line = json_pack("{s:I, s:s, s:o}", "job_id", job->req.job_id, "result", "progress",
			 "progress", progress);
	conn_send_json(job->conn, line);
	json_decref(line);
}

static void on_progress(uv_async_t *a)
{
	struct job *job = a->data;
	uint64_t done = atomic_load(&job->progress_done);
	uint64_t total = atomic_load(&job->progress_total);

	if (done == job->progress_sent_done && job->progress_sent_ns)
		return;
	job->progress_sent_done = done;
	job->progress_sent_ns = uv_hrtime();
	send_progress(job, json_pack("{s:I, s:I}", "done", (json_int_t)done, "total", (json_int_t)total));
}

void job_progress(struct job *job, uint64_t done, uint64_t total)
{
	if (!job->progress_async)
		return;
	atomic_store(&job->progress_done, done);
	atomic_store(&job->progress_total, total);
	/* uv_async_send coalesces; the interval check keeps a chatty worker from
	 * flooding the client.  A stale read of progress_sent_ns only costs one
	 * extra or one fewer line. */
	if (done == total || uv_hrtime() - job->progress_sent_ns >= PROGRESS_INTERVAL_NS)
		uv_async_send(job->progress_async);
}

void job_progress_json(struct job *job, json_t *progress)
{
	if (!job->req.progress) {
		json_decref(progress);
		return;
	}
	send_progress(job, progress);
}

/* --- Creation and dispatch ------------------------------------------------ */

struct job *job_new(struct server *srv, struct conn *conn, struct request *req)
{
	struct job *job = calloc(1, sizeof(*job));

	if (!job)
		fatal("out of memory");
	job->req = *req; /* takes over what req owned */
	memset(req, 0, sizeof(*req));
	job->srv = srv;
	job->cfg = config_ref((struct kiln_config *)config_current());
	job->received_ns = uv_hrtime();
	atomic_init(&job->cancel.flag, 0);
	atomic_init(&job->progress_done, 0);
	atomic_init(&job->progress_total, 0);
	srv->jobs_in_flight++;
	srv->requests_served++;
	job->peer = conn ? conn->peer : (struct kiln_peer){ .uid = (uid_t)-1, .gid = (gid_t)-1 };
	if (conn) {
		job->conn = conn;
		job->conn_next = conn->jobs;
		if (conn->jobs)
			conn->jobs->conn_prev = job;
		conn->jobs = job;
		conn->inflight++;
	}
	return job;
}

struct job *job_find(struct conn *conn, json_int_t id)
{
	for (struct job *j = conn->jobs; j; j = j->conn_next)
		if (j->req.job_id == id && !j->answered)
			return j;
	return NULL;
}

struct job *job_sibling(struct job *job, json_int_t id)
{
	struct job *t = job->conn ? job_find(job->conn, id) : NULL;

	return t == job ? NULL : t;
}

static void arm_deadline(struct job *job)
{
	double remaining_ms = job_timeout(job) * 1000.0 - job_elapsed_ms(job);

	if (job->answered || (job->action->flags & ACTION_OWN_TIMEOUT))
		return;
	job->timer = malloc(sizeof(*job->timer));
	if (!job->timer)
		fatal("out of memory");
	uv_timer_init(job->srv->loop, job->timer);
	job->timer->data = job;
	uv_timer_start(job->timer, on_deadline, remaining_ms > 0 ? (uint64_t)remaining_ms + 1 : 0, 0);
}

/* Calls the handler; arms the deadline if it went asynchronous. */
static void run_handler(struct job *job)
{
	job->in_dispatch = true;
	job->action->handler(job, job->req.args);
	job->in_dispatch = false;
	if (job->finished)
		maybe_free(job);
	else
		arm_deadline(job);
}

/*
 * Detaching.  The job is registered and its "running" record written
 * first; only once the record is durable does the client get "accepted"
 * (with the handle) and the handler run, without the connection.  A record
 * that cannot be written fails the request (the client is still attached)
 * and the job never runs.  While the write is queued the job counts as
 * pending work, so a disconnect or cancel cannot free it under the writer.
 */
static void on_recorded(void *arg, json_int_t handle, const char *error)
{
	struct job *job = arg;

	job->pending_work--;
	if (error) {
		job_fail(job, KILN_E_INTERNAL, json_pack("{s:s}", "limit", "state_dir"),
			 "the detached job was not started: its record could not be written (%s)", error);
		return;
	}
	if (job_cancelled(job)) {
		/* Cancelled (disconnect, shutdown) before it started: it never runs. */
		job_fail(job, job_cancel_reason(job), NULL, "cancelled before it started");
		return;
	}
	if (job->conn) {
		json_t *reply = envelope_reply(&job->req.job_id, "accepted", "detached", NULL,
					       json_pack("{s:I}", "job", handle), NULL);
		conn_send_json(job->conn, reply);
		json_decref(reply);
	}
	job->detached = true;
	unlink_from_conn(job);
	run_handler(job);
}

void job_run(struct job *job)
{
	json_t *detail = NULL;
	char msg[512];
	int rc;

	rc = dispatch_prepare(job, job->cfg, &job->req, &job->action, &detail, msg, sizeof(msg));
	if (rc) {
		job_fail(job, -rc, detail, "%s", msg);
		return;
	}
	if (job->req.progress) {
		job->progress_async = malloc(sizeof(*job->progress_async));
		if (!job->progress_async)
			fatal("out of memory");
		uv_async_init(job->srv->loop, job->progress_async, on_progress);
		job->progress_async->data = job;
	}
	if (job->req.detach) {
		job->pending_work++;
		if (jobs_detach(job, on_recorded, job))
			return;
		/* The registry could not take it: it runs attached. */
		job->pending_work--;
	}
	run_handler(job);
}
