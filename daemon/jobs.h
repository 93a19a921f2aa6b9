/*
 * The registry of detached jobs (issue 7).
 *
 * A request with "detach": true gets a daemon-wide handle at once; the job
 * then runs without its connection and its final reply is kept here, for
 * job.status / job.wait / job.cancel / job.list (act_job.c) from any
 * connection.  A peer sees the jobs its uid started; root sees all.
 *
 * Finished records live job_retention seconds.  With a state directory
 * (config state_dir, else $STATE_DIRECTORY) each record is also a file
 * job-<handle>.json, written atomically (temp file, fsync, rename, fsync of
 * the directory) on the thread pool: once when the job starts, so a record
 * still "running" at the next start is reported "interrupted", and once when
 * it finishes.  Everything here is loop-thread only.
 */
#ifndef KILND_JOBS_H
#define KILND_JOBS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct job;
struct jobrec;
struct kiln_config;
struct kiln_peer;

/* --- Called by conn.c ----------------------------------------------------- */

/* durable(ctx, handle, NULL) once the record is on disk; durable(ctx,
 * handle, reason) if it could not be written (the record is gone then). */
typedef void (*jobs_durable_fn)(void *ctx, json_int_t handle, const char *error);

/* Registers `job` as detached and returns its handle (>0), or 0 when the
 * registry cannot take it (then the job runs attached as usual).  The job
 * stays with its owner until durable() runs on the loop: once the "running"
 * record is on disk (at once, before this returns, without a state
 * directory) the registry takes the job, so a client told "accepted" never
 * loses it to a crash (after a restart it is at least "interrupted").  The
 * caller starts the job only then, and fails it without running it when
 * the record cannot be written.  Until durable() the job must not start. */
json_int_t jobs_detach(struct job *job, jobs_durable_fn durable, void *ctx);
/* Whether `peer` may detach another job: 0, or -KILN_E_BUSY
 * (max_detached_per_uid running) / -KILN_E_TOO_LARGE (its records hold
 * max_detached_record_bytes_per_uid) with msg and *detail naming the key. */
int jobs_detach_allowed(const struct kiln_peer *peer, json_t **detail, char *msg, size_t msglen);
/* Cancels every running detached job (end of the shutdown grace period). */
void jobs_cancel_running(void);

/* --- Used by act_job.c ---------------------------------------------------- */

struct jobrec *jobs_find(json_int_t handle, const struct kiln_peer *peer);
/* {job, action, state, created, finished?, result?, progress?, reply?};
 * with_reply adds the final ProcedureOutput.  New reference. */
json_t *jobs_record_json(const struct jobrec *r, bool with_reply);
bool jobs_running(const struct jobrec *r);
/* Cancels the record's job; false if it is not running. */
bool jobs_cancel(struct jobrec *r);
/* Every record `peer` may see, oldest first, as summaries.  New reference. */
json_t *jobs_list(const struct kiln_peer *peer);
size_t jobs_count(void);

/* Calls fn(ctx) once when the record's job has finished.  The returned
 * waiter is valid until fn runs or jobs_unwait() is called with it. */
struct jobs_waiter;
struct jobs_waiter *jobs_wait(struct jobrec *r, void (*fn)(void *ctx, struct jobrec *r), void *ctx);
void jobs_unwait(struct jobs_waiter *w);

/* Family hooks (act_job.c): load the state directory at startup, free all. */
int jobs_init(const struct kiln_config *cfg);
void jobs_shutdown(void);
size_t jobs_memory_held(void);

#endif
