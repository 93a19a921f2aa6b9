/*
 * A job is one request in flight: its envelope, attachment, deadline,
 * cancellation flag and the owner its reply goes to (its connection, or
 * the registry once detached; job_owner.h is the core's side).  With
 * action.h this is the whole handler <-> core boundary.
 *
 * Ownership: the daemon creates the job and owns it.  A handler receives it,
 * and must finish it exactly once (job_succeed/job_fail/job_reply).  After
 * the finish call the handler must not touch the job again; the daemon frees
 * it once the finish has happened and every piece of queued work has
 * completed (its done callback returned).  Error codes are negative,
 * -KILN_E_*, as the library returns them.  If the deadline passes, the client disconnects or `cancel`
 * arrives first, the daemon answers at once (timeout/cancelled), sets the
 * cancel flag, and silently discards the handler's later finish.
 *
 * Threading: everything here is loop-thread only, except job_cancelled(),
 * job_cancel_token(), job_progress(), job_config() and job_attachment(),
 * which worker threads may call while their work item runs.
 */
#ifndef KILND_JOB_H
#define KILND_JOB_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "envelope.h"
#include "kiln/cancel.h"

struct job;
struct kiln_config;

/* --- Request accessors ---------------------------------------------------- */
json_int_t job_id(const struct job *job);
const char *job_action(const struct job *job);
double job_timeout(const struct job *job);      /* effective seconds */
int job_retries(const struct job *job);
json_t *job_host_list(const struct job *job);   /* borrowed array */
json_t *job_args(const struct job *job);       /* borrowed object */
bool job_wants_progress(const struct job *job);
const struct kiln_peer *job_peer(const struct job *job);
uv_loop_t *job_loop(const struct job *job);
/* The configuration the job started under; valid until the job is freed. */
const struct kiln_config *job_config(const struct job *job);

/* The request's attachment (raw bytes or decoded raw_b64); NULL if none. */
const unsigned char *job_attachment(const struct job *job, size_t *len);

/* --- Finishing (loop thread, exactly once) -------------------------------- */

/* result "success"; `data` is stolen (NULL: {}). */
void job_succeed(struct job *job, json_t *data, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* result "error" with error.code = kiln_err_name(-code), code being a
 * negative -KILN_E_* (a positive one is a bug, caught by debug builds);
 * `detail` stolen (NULL: null). */
void job_fail(struct job *job, int code, json_t *detail, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Any result ("success", "partial", "failure"); failed_hosts and data stolen (NULL: []/{}). */
void job_reply(struct job *job, const char *result, json_t *failed_hosts, json_t *data,
	       const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Attaches binary output to the reply (before finishing).  The job owns
 * `data` from now on and releases it with free_fn (NULL: free). */
void job_set_reply_attachment(struct job *job, void *data, size_t len, void (*free_fn)(void *));

/* --- Work, progress, cancellation ----------------------------------------- */

typedef void (*job_work_fn)(struct job *job, void *ctx);           /* worker thread */
typedef void (*job_done_fn)(struct job *job, void *ctx, int status); /* loop thread */

/* Queues `work` on the thread pool; `done` runs on the loop afterwards with
 * status 0, or UV_ECANCELED if the job was cancelled before the work started
 * (then `work` never ran).  A job may have several work items in flight; it
 * is freed only after every `done` has run.  Returns 0 or -KILN_E_INTERNAL. */
int job_queue_work(struct job *job, job_work_fn work, job_done_fn done, void *ctx);

/* Fan-out/fan-in: queues `count` work items, each running work(job, ctx, i)
 * for its index i on the pool, and runs done(job, ctx, status) once on the
 * loop when every one has completed.  status is 0 if all ran, UV_ECANCELED
 * if one was cancelled before it started, -KILN_E_INTERNAL if not all
 * could be queued (done still waits for those that were).  Returns 0, or
 * -KILN_E_INTERNAL if none could be queued (then done never runs). */
typedef void (*job_batch_fn)(struct job *job, void *ctx, unsigned index); /* worker thread */
int job_queue_batch(struct job *job, unsigned count, job_batch_fn work, job_done_fn done, void *ctx);

/* Calls release(obj) on a pool thread, for releases too slow for the loop
 * (wiping and unmapping large buffers); on the loop instead if the work
 * cannot be queued or the job is cancelled first.  Call it before the job
 * finishes, or in one of its done callbacks (the job lives until that
 * returns): a finished job with no work pending is freed at once. */
void job_release_on_pool(struct job *job, void (*release)(void *obj), void *obj);

/* How many work items one uid runs at once (pool_threads_per_uid, by
 * default every pool thread but one): what a job splits its work into.
 * Loop thread. */
unsigned job_parallelism(void);

/* True once the job is cancelled (any thread). */
bool job_cancelled(const struct job *job);
/* The flag as a token for compute functions (any thread). */
const kiln_cancel *job_cancel_token(const struct job *job);
/* KILN_E_TIMEOUT or KILN_E_CANCELLED once cancelled, else 0. */
int job_cancel_reason(const struct job *job);

/* Reports progress (any thread; coalesced, at most ~10 lines/s, and only if
 * the request asked for progress). */
void job_progress(struct job *job, uint64_t done, uint64_t total);
/* Sends one progress line with a custom object (loop thread; stolen). */
void job_progress_json(struct job *job, json_t *progress);

/* Cancels `job` as a timeout, a disconnect or `cancel` does: answers
 * error/`reason` (KILN_E_TIMEOUT or KILN_E_CANCELLED) at once, sets the cancel
 * flag, cancels work not yet started and runs the on_cancel callback.  Its
 * handler must still finish it.  Nothing happens to a job already answered. */
void job_cancel(struct job *job, int reason);

/* The request `id` in flight on the same connection as `job` (not yet
 * answered, and not `job` itself), or NULL. */
struct job *job_sibling(struct job *job, json_int_t id);

/* Registers a loop-thread callback run once when the job is cancelled, e.g.
 * to kill child processes.  The handler must still finish the job. */
void job_on_cancel(struct job *job, void (*fn)(struct job *job, void *ctx), void *ctx);

#endif
