/*
 * A work queue served by threads of its own, for blocking work that must
 * not wait behind the libuv pool (whose threads long CPU jobs may hold for
 * minutes): act_proc.c spawns children on one, jobs.c writes job records on
 * another.
 *
 * The loop thread pushes items; a queue thread runs work(item); done(item)
 * then runs on the loop thread, woken by an async handle, and owns the item
 * from there.  Items are intrusive: embed a struct workq_item and get back
 * to the container with workq_entry().  Items are taken in push order.
 */
#ifndef KILND_WORKQ_H
#define KILND_WORKQ_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#define WORKQ_MAX_THREADS 4

struct workq_item {
	struct workq_item *next;
};

#define workq_entry(it, type, member) ((type *)((char *)(it) - offsetof(type, member)))

struct workq {
	/* Private: set up by workq_start(). */
	void (*work)(struct workq_item *it); /* a queue thread */
	void (*done)(struct workq_item *it); /* the loop thread */
	bool started, stop;
	int nthreads;
	pthread_t threads[WORKQ_MAX_THREADS];
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct workq_item *todo, *todo_tail, *done_head, *done_tail;
	uv_async_t async;
};

/* Starts up to `nthreads` threads (at least one, or it fails).  The async
 * handle is unreferenced: a queue alone does not keep the loop alive.
 * Returns 0 or -1. */
int workq_start(struct workq *q, uv_loop_t *loop, int nthreads, void (*work)(struct workq_item *it),
		void (*done)(struct workq_item *it));

/* Loop thread: queues `it` (owned by the queue until done(it) runs). */
void workq_push(struct workq *q, struct workq_item *it);

/* Loop thread: calls fn(it, ctx) on each item not yet taken by a thread,
 * with the queue locked (so fn may change the item), until fn returns true.
 * Returns whether one did. */
bool workq_find_queued(struct workq *q, bool (*fn)(struct workq_item *it, void *ctx), void *ctx);

/* Loop thread: lets the threads finish every queued item, joins them, runs
 * the done() callbacks still due, and closes the async handle. */
void workq_stop(struct workq *q);

#endif
