/*
 * What each uid holds right now, for the per-user limits (config keys
 * max_connections_per_uid, max_inflight_per_uid, max_attachment_bytes_per_uid
 * and max_attachment_bytes_total): connections being served, jobs alive
 * (attached or detached, until freed), raw attachment bytes held (counted
 * as they arrive, released with the request) and pool work items submitted
 * (pool_threads_per_uid, job.c).
 *
 * An entry exists while any of its figures is non-zero.  Loop-thread only.
 */
#ifndef KILND_USAGE_H
#define KILND_USAGE_H

#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

enum usage_kind { USAGE_CONNS, USAGE_JOBS, USAGE_ATTACH, USAGE_WORKERS, USAGE_KINDS };

/* Adds delta (may be negative; never below zero) to uid's figure. */
void usage_add(uid_t uid, enum usage_kind kind, long long delta);
/* uid's figure (0 if it holds nothing). */
size_t usage_get(uid_t uid, enum usage_kind kind);
/* The figure summed over every uid. */
size_t usage_total(enum usage_kind kind);
/* Adds {"connections", "jobs", "attachment_bytes"} to each uid's entry of a
 * per-uid stats object (dispatch_uid_figures). */
void usage_stats_per_uid(json_t *per_uid);

#endif
