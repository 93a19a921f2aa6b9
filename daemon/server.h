/*
 * Daemon internals shared by server.c, conn.c, job.c and dispatch.c: the
 * listening server, connections and jobs.  Action handlers use job.h only.
 */
#ifndef KILND_SERVER_H
#define KILND_SERVER_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "frame.h"
#include "job.h"

struct action;
struct outchunk;
struct work;
struct jobrec;

struct job {
	struct request req;
	struct server *srv;
	struct conn *conn;          /* NULL once the client is gone */
	struct kiln_peer peer;      /* the requester, kept after the connection goes */
	bool detached;              /* the final reply goes to the registry (jobs.h) */
	struct jobrec *rec;         /* its registry record while running */
	struct job *conn_prev, *conn_next;
	const struct action *action;
	struct kiln_config *cfg;    /* reference held for the job's life */
	uint64_t received_ns;       /* uv_hrtime() at receipt */

	kiln_cancel cancel;         /* reason once cancelled (KILN_E_TIMEOUT/CANCELLED) */
	bool answered;              /* a reply was sent (or discarded): later ones are dropped */
	bool finished;              /* the handler called a finish function */
	bool in_dispatch;           /* inside the handler call: defer freeing */
	bool freeing;
	int pending_work;           /* queued work items whose done has not run */
	struct work *works;         /* pending work items, for uv_cancel */

	uv_timer_t *timer;          /* deadline, armed once the job goes asynchronous */
	uv_async_t *progress_async; /* when the request asked for progress */
	_Atomic uint64_t progress_done, progress_total;
	uint64_t progress_sent_ns;
	uint64_t progress_sent_done;
	int open_handles;           /* closes pending before the job can be freed */

	void (*on_cancel)(struct job *job, void *ctx);
	void *on_cancel_ctx;

	void *reply_attach;         /* owned; released with reply_attach_free */
	size_t reply_attach_len;
	void (*reply_attach_free)(void *);
};

struct conn {
	uv_pipe_t pipe;
	struct server *srv;
	struct conn *prev, *next;   /* server's list */
	struct conn *next_dirty;
	uint64_t id;
	struct kiln_peer peer;
	struct frame in;

	/* A request whose raw attachment is still arriving. */
	bool in_attach;
	struct request att_req;
	size_t att_got;
	json_t *att_error;          /* error reply to send once the bytes are skipped */
	size_t att_skip;

	struct outchunk *out_head, *out_tail; /* not yet handed to uv_write */
	struct outchunk *spare;     /* a released chunk kept for reuse */
	size_t out_bytes;           /* queued or being written */
	int writes_in_flight;

	struct job *jobs;           /* in flight on this connection */
	unsigned inflight;
	bool reading;
	bool processing;            /* inside conn_process(): no re-entry */
	bool dirty;
	bool closing;
	bool close_after_flush;
	bool linger;                /* the client may still be sending: drain before closing */
	uv_timer_t *linger_timer;   /* set while lingering */
};

struct server {
	uv_loop_t *loop;
	uv_pipe_t listener;
	bool listening;
	bool own_socket_file;       /* we bound it, so we unlink it */
	char *socket_path;
	struct conn *conns;
	unsigned nconns;
	uint64_t next_conn_id;
	struct conn *dirty;
	uv_prepare_t flusher;
	uv_signal_t sig_term, sig_int, sig_hup;
	uv_timer_t grace_timer;
	bool shutting_down;
	bool grace_expired;
	uint64_t started_ns;
	uint64_t requests_served;
	unsigned jobs_in_flight;
	const char *config_path;    /* for SIGHUP */
};

/* server.c */
int server_start(struct server *srv, uv_loop_t *loop, const char *socket_path, char *err,
		 size_t errlen);
void server_stop(struct server *srv);
void server_maybe_finish_shutdown(struct server *srv);
struct server *server_current(void);

/* The parts of a final reply (ProcedureOutput); references are borrowed. */
struct reply {
	const char *result;
	const char *message;
	json_t *failed_hosts; /* NULL: [] */
	json_t *data;         /* NULL: {} */
	json_t *error;        /* NULL: none */
};

/* conn.c */
struct conn *conn_new(struct server *srv);
void conn_start(struct conn *c);
/* Writes one JSON line (a progress line, or an error before a job exists). */
void conn_send_json(struct conn *c, json_t *line);
/* An error reply (job_id NULL: null); detail is stolen. */
void conn_send_error(struct conn *c, const json_int_t *id, int code, json_t *detail, const char *msg);
/* Writes a final reply for `req`; the attachment (if any) is consumed. */
void conn_send_reply(struct conn *c, const struct request *req, const struct reply *r, void *attach,
		     size_t attach_len, void (*attach_free)(void *));
void conn_close(struct conn *c);
void conn_resume(struct conn *c);
void conn_flush_all(struct server *srv);
bool conn_idle(const struct conn *c);

/* job.c */
struct job *job_new(struct server *srv, struct conn *conn, struct request *req);
void job_run(struct job *job);
struct job *job_find(struct conn *conn, json_int_t id);


#endif
