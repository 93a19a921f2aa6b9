/*
 * A job as the core drives it (job.c), for the parties that own jobs:
 * connections (conn.c) and the registry of detached jobs (jobs.c).
 * Handlers never include this: they use job.h.  Loop-thread only.
 */
#ifndef KILND_JOB_OWNER_H
#define KILND_JOB_OWNER_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "envelope.h"
#include "job.h"

/*
 * The party a job answers to: the connection that sent it (conn.c), or the
 * registry once detached (jobs.c); none once the client is gone.  job.c
 * calls these and nothing else of its owner.
 */
struct job_owner_ops {
	/* The final reply; the attachment (if any) is consumed. */
	void (*reply)(void *owner, struct job *job, const struct reply *r, void *attach, size_t attach_len,
		      void (*attach_free)(void *));
	/* A progress object (borrowed). */
	void (*progress)(void *owner, struct job *job, json_t *progress);
	/* The job leaves this owner: freed, or handed to another. */
	void (*release)(void *owner, struct job *job);
	/* Another request in flight with this owner (not answered), or NULL. */
	struct job *(*find)(void *owner, json_int_t id);
};

/* A node of an owner's job list: job.c embeds it, the owner links it. */
struct job_node {
	struct job_node *prev, *next;
};

/* Takes over what `req` owns (and clears it). */
struct job *job_new(uv_loop_t *loop, const struct job_owner_ops *ops, void *owner,
		    const struct kiln_peer *peer, struct request *req);
/* Finds the action and checks the request (dispatch_prepare).  0, or the
 * job has been failed with the reason and may be freed already: the caller
 * must not touch it again. */
int job_prepare(struct job *job);
/* Runs the handler; arms the deadline if it did not finish at once. */
void job_start(struct job *job);
/* Hands the job to another owner (NULL: nobody); the old owner's release
 * runs first. */
void job_set_owner(struct job *job, const struct job_owner_ops *ops, void *owner);
bool job_detach_requested(const struct job *job);
/* The upper bound of the reply bytes of a prepared job (action's
 * reply_bound; 0: small), and the room its owner keeps for it. */
size_t job_reply_bound(const struct job *job);
void job_set_reserved(struct job *job, size_t bytes);
size_t job_reserved(const struct job *job);
/* The request takes reply attachments as raw bytes after the line. */
bool job_accepts_raw(const struct job *job);
/* True once the job was answered (by its handler or the daemon). */
bool job_answered(const struct job *job);
struct job_node *job_node(struct job *job);
struct job *job_of_node(struct job_node *node);

/* Jobs not yet freed, and every job ever created (`stats`, STATUS=). */
unsigned job_live_count(void);
uint64_t job_created_count(void);

#endif
