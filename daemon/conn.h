/*
 * Connections (conn.c), as the server drives them: each one frames requests
 * off its socket into jobs, owns those jobs' list and the output queue of
 * their replies, and closes itself when done.  conn.c keeps every
 * connection of the process in one list of its own.
 *
 * Deferral: nothing re-enters a connection from inside its own callbacks.
 * A job that finishes (or leaves) marks its connection, and
 * conn_prepare_pass(), run once per loop iteration before the loop waits,
 * resumes reading buffered requests and then writes every queued reply in
 * one write per connection.
 *
 * Loop-thread only.
 */
#ifndef KILND_CONN_H
#define KILND_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct conn;
struct kiln_peer;

/* Accepts the connection pending on `listener` and reads its peer's
 * credentials.  NULL if the accept failed. */
struct conn *conn_accept(uv_loop_t *loop, uv_stream_t *listener);
uint64_t conn_id(const struct conn *c);
const struct kiln_peer *conn_peer(const struct conn *c);
/* Starts reading requests. */
void conn_start(struct conn *c);
/* Answers error/`code` with msg, reads no request, and ends with a
 * lingering close.  A refused connection no longer counts as served. */
void conn_refuse(struct conn *c, int code, const char *msg);

/* Resumes deferred connections, then writes every queued reply. */
void conn_prepare_pass(void);

/* Shutdown: every connection stops taking requests, answers what it has,
 * and closes (lingering) once done. */
void conn_drain_all(void);
/* Every served connection whose peer keep() rejects gets one error line
 * (`code`, msg, job_id null), has its jobs cancelled and closes once its
 * replies are written (a reload that removes a uid). */
void conn_drop_where(bool (*keep)(const struct kiln_peer *peer, void *ctx), void *ctx, int code,
		     const char *msg);
/* Cancels every job of every connection. */
void conn_cancel_all(void);

/* Connections being served (refused ones excluded): max_connections. */
unsigned conn_count_served(void);
/* Connections open, refused ones included (descriptors, shutdown). */
unsigned conn_count_open(void);

#endif
