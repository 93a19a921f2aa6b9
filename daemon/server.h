/*
 * The listening server (server.c): the socket, signals and shutdown, for
 * main.c and the in-process test daemons.  Handlers never include this:
 * they use action.h and job.h.
 *
 * Layering of the core, top down: server.c -> conn.c (connections,
 * conn.h) -> jobs.c (detached jobs) -> job.c (one request; the core's side
 * in job_owner.h) -> dispatch.c, envelope.c.  A lower layer reaches a
 * higher one only through the job_owner_ops a job was given.  Loop-thread
 * only.
 */
#ifndef KILND_SERVER_H
#define KILND_SERVER_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct server {
	uv_loop_t *loop;
	uv_pipe_t listener;
	bool listening;
	bool own_socket_file;       /* we bound it, so we unlink it */
	char *socket_path;
	uv_prepare_t prepare;       /* once per loop iteration: conn_prepare_pass() */
	uv_signal_t sig_term, sig_int, sig_hup;
	uv_timer_t grace_timer;
	bool shutting_down;
	bool grace_expired;
	uint64_t started_ns;
	const char *config_path;    /* for SIGHUP */
};

/* server.c */
int server_start(struct server *srv, uv_loop_t *loop, const char *socket_path, char *err,
		 size_t errlen);
void server_stop(struct server *srv);
struct server *server_current(void);

#endif
