/*
 * Connections (conn.h): framing requests off the socket, raw attachments,
 * flow control, each connection's jobs, and the output queue.
 *
 * Flow control.  A connection stops reading when it has max_inflight_per_conn
 * requests in flight or max_output_buffer bytes of replies queued; lines
 * already buffered wait in the frame buffer.  It resumes when a job finishes
 * or the output drains below half the limit.  So a client that pipelines
 * without reading replies is slowed down, never allowed to grow our memory.
 *
 * Output.  Replies are encoded by envelope.c into the connection's output
 * queue (outq.h); conn_prepare_pass() writes every marked connection once
 * per loop iteration, so a batch of pipelined requests is answered with one
 * write.
 */
#include "conn.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "usage.h"
#include "envelope.h"
#include "frame.h"
#include "jobs.h"
#include "kiln/error.h"
#include "log.h"
#include "outq.h"
#include "job_owner.h"

#define READ_CHUNK 65536

/*
 * A connection's state, changed only through set_state():
 *
 *   SERVING --(EOF, limit, refusal, shutdown)--> DRAINING --(idle)--> CLOSED
 *                                                   \--(linger)--> LINGERING --> CLOSED
 *
 * SERVING reads and answers requests.  DRAINING reads no new request and
 * closes once every reply is written.  LINGERING has shut down its write
 * side and discards input until the peer closes or LINGER_MS pass.  CLOSED
 * has called uv_close(); the connection is freed in on_closed().
 */
enum conn_state { CONN_SERVING, CONN_DRAINING, CONN_LINGERING, CONN_CLOSED };

static const char *const conn_state_names[] = { "serving", "draining", "lingering", "closed" };

/* What the input stream holds next. */
enum conn_input {
	IN_LINES,  /* request lines */
	IN_ATTACH, /* raw attachment bytes of att_req */
	IN_SKIP,   /* att_skip bytes of a refused request's attachment, then att_error */
};

/* Work for the prepare pass (conn.h). */
enum { PEND_PROCESS = 1u << 0, PEND_FLUSH = 1u << 1 };

struct conn {
	uv_pipe_t pipe;
	enum conn_state state;
	bool linger;                /* draining ends in a lingering close */
	bool refused;               /* not counted as served */
	bool reading;               /* uv_read_start() is in effect */
	uint64_t id;
	struct kiln_peer peer;
	struct conn *prev, *next;   /* every connection (conns.all) */

	unsigned pending;           /* PEND_*: on conns.pending when non-zero */
	struct conn *next_pending;

	struct frame in;
	enum conn_input input;
	struct request att_req;     /* IN_ATTACH: the request whose bytes arrive;
				     * attach_len = bytes received (and counted) */
	size_t att_cap;             /* bytes allocated at att_req.attach */
	size_t att_skip;            /* IN_SKIP: bytes still to discard */
	struct {                    /* IN_SKIP: the error reply to send after */
		bool have_id;
		json_int_t id;
		int code;
		json_t *detail;
		char msg[512];
	} att_error;

	struct outq out;            /* replies not yet handed to uv_write */
	size_t writing;             /* bytes handed to uv_write, not yet written */
	int writes_in_flight;

	struct job_node jobs;       /* sentinel of the list of jobs in flight */
	unsigned inflight;
	size_t reserved;            /* output room kept for the replies of jobs in flight */
	struct job *held;           /* prepared, waiting for output room (reading paused) */
	uv_timer_t *linger_timer;   /* set while lingering */
	uv_timer_t *idle_timer;     /* idle_timeout: restarted by every read */
};

struct writereq {
	uv_write_t req;
	struct conn *c;
	struct outq_chunk *chunks;
	size_t bytes;
	uv_buf_t bufs[];
};

static struct {
	struct conn *all;
	unsigned open, served;
	uint64_t next_id;
	struct conn *pending;       /* connections with work for the prepare pass */
} conns;

static void conn_close(struct conn *c);
static void restart_idle(struct conn *c);
static void drop_held(struct conn *c);
static void conn_finish(struct conn *c);
static void conn_process(struct conn *c);
static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void set_state(struct conn *c, enum conn_state to)
{
	log_debug("conn %llu: %s -> %s", (unsigned long long)c->id, conn_state_names[c->state],
		  conn_state_names[to]);
	c->state = to;
}

/* Marks work for the prepare pass. */
static void mark(struct conn *c, unsigned what)
{
	if (c->state == CONN_CLOSED)
		return;
	if (!c->pending) {
		c->next_pending = conns.pending;
		conns.pending = c;
	}
	c->pending |= what;
}

static void unmark(struct conn *c)
{
	struct conn **pp;

	if (!c->pending)
		return;
	for (pp = &conns.pending; *pp; pp = &(*pp)->next_pending) {
		if (*pp == c) {
			*pp = c->next_pending;
			break;
		}
	}
	c->pending = 0;
}

/* Ends serving: no new request is read, and the connection closes (lingering
 * if `linger`) once every reply is written. */
/* Drops a request this connection holds (not a job's), with its counted
 * attachment bytes. */
static void drop_request(struct conn *c, struct request *req)
{
	usage_add(c->peer.uid, USAGE_ATTACH, -(long long)req->attach_len);
	request_clear(req);
}

static void drain(struct conn *c, bool linger)
{
	if (c->state != CONN_SERVING)
		return;
	c->linger |= linger;
	set_state(c, CONN_DRAINING);
	drop_held(c);
	/* Input not yet taken is dropped, a request half-received with it. */
	drop_request(c, &c->att_req);
	json_decref(c->att_error.detail);
	c->att_error.detail = NULL;
	c->input = IN_LINES;
	mark(c, PEND_PROCESS);
}

static size_t out_bytes(const struct conn *c)
{
	return c->out.queued + c->writing;
}

static bool conn_idle(const struct conn *c)
{
	return c->inflight == 0 && out_bytes(c) == 0 && c->writes_in_flight == 0;
}

/* --- Jobs ------------------------------------------------------------------- */

static void jobs_link(struct conn *c, struct job *job)
{
	struct job_node *n = job_node(job);

	n->next = c->jobs.next;
	n->prev = &c->jobs;
	c->jobs.next->prev = n;
	c->jobs.next = n;
	c->inflight++;
}

/*
 * Output room.  Before a job with a large reply starts (its action's
 * reply_bound), the connection reserves that many bytes of
 * max_output_buffer: if queued output plus reservations would exceed it,
 * the job waits prepared in `held` and reading pauses until replies are
 * written.  A reply larger than the whole buffer starts only when nothing
 * else is queued or reserved.  So a client pipelining big renders it never
 * reads holds about max_output_buffer (or one reply), not all of them.
 */
static void unreserve(struct conn *c, struct job *job)
{
	size_t r = job_reserved(job);

	c->reserved -= r < c->reserved ? r : c->reserved;
	job_set_reserved(job, 0);
}

static size_t out_bytes(const struct conn *c);

/* Reserves room for the job's reply if it fits now; false if it must wait. */
static bool reserve(struct conn *c, struct job *job)
{
	size_t bound = job_reply_bound(job), used = out_bytes(c) + c->reserved;

	if (bound && used && used + bound > config_current()->max_output_buffer)
		return false;
	job_set_reserved(job, bound);
	c->reserved += bound;
	return true;
}

/* A held job that cannot start any more (the connection ends). */
static void drop_held(struct conn *c)
{
	struct job *job = c->held;

	if (!job)
		return;
	c->held = NULL;
	job_fail(job, -KILN_E_CANCELLED, NULL, "cancelled: the connection ended before the request started");
}

static void on_job_reply(void *owner, struct job *job, const struct reply *r, void *attach,
			 size_t attach_len, void (*attach_free)(void *))
{
	struct conn *c = owner;
	json_int_t id = job_id(job);

	unreserve(c, job);
	if (c->state == CONN_CLOSED || c->state == CONN_LINGERING) {
		if (attach)
			attach_free(attach);
		return;
	}
	envelope_write_reply(&c->out, &id, r, attach, attach_len, attach_free,
			     job_accepts_raw(job));
	mark(c, PEND_FLUSH);
}

static void on_job_progress(void *owner, struct job *job, json_t *progress)
{
	struct conn *c = owner;

	if (c->state == CONN_CLOSED || c->state == CONN_LINGERING)
		return;
	envelope_write_progress(&c->out, job_id(job), progress);
	mark(c, PEND_FLUSH);
}

/* The job is freed or detached: a slot is free, so requests buffered behind
 * the in-flight limit may go on (in the prepare pass). */
static void on_job_release(void *owner, struct job *job)
{
	struct conn *c = owner;
	struct job_node *n = job_node(job);

	assert(c->inflight > 0 && n->prev && n->next);
	unreserve(c, job);
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->prev = n->next = NULL;
	c->inflight--;
	/* Reading on means nothing waits for this slot. */
	if (c->state != CONN_SERVING || !c->reading)
		mark(c, PEND_PROCESS);
}

static struct job *find_job(void *owner, json_int_t id)
{
	struct conn *c = owner;

	for (struct job_node *n = c->jobs.next; n != &c->jobs; n = n->next) {
		struct job *j = job_of_node(n);
		if (job_id(j) == id && !job_answered(j))
			return j;
	}
	return NULL;
}

static const struct job_owner_ops conn_owner = {
	.reply = on_job_reply,
	.progress = on_job_progress,
	.release = on_job_release,
	.find = find_job,
};

/* Cancels every job; none of them answers here any more. */
static void cancel_jobs(struct conn *c)
{
	while (c->jobs.next != &c->jobs) {
		struct job *j = job_of_node(c->jobs.next);
		job_set_owner(j, NULL, NULL);
		job_cancel(j, KILN_E_CANCELLED);
	}
}

/* --- Output --------------------------------------------------------------- */

static void send_error(struct conn *c, const json_int_t *id, int code, json_t *detail, const char *msg)
{
	if (code == KILN_E_TOO_LARGE || code == KILN_E_BUSY)
		detail = config_limit_complete(config_current(), detail, msg);
	envelope_write_error(&c->out, id, code, detail, msg);
	mark(c, PEND_FLUSH);
}

static void after_write(uv_write_t *req, int status)
{
	struct writereq *w = (struct writereq *)req;
	struct conn *c = w->c;

	outq_release(&c->out, w->chunks);
	c->writing -= w->bytes;
	c->writes_in_flight--;
	free(w);
	if (c->state == CONN_CLOSED)
		return;
	if (status < 0) {
		log_debug("conn %llu: write failed: %s", (unsigned long long)c->id, uv_strerror(status));
		conn_close(c);
		return;
	}
	/* Reading on means no request waits for the output to drain. */
	if (c->state != CONN_SERVING || !c->reading)
		mark(c, PEND_PROCESS);
}

static void conn_flush(struct conn *c)
{
	struct outq_chunk *ch, *list;
	struct writereq *w;
	unsigned n, i = 0;
	size_t bytes;
	int rc;

	if (c->state == CONN_CLOSED || c->state == CONN_LINGERING || !c->out.head)
		return;
	list = outq_take(&c->out, &n, &bytes);
	w = malloc(sizeof(*w) + n * sizeof(uv_buf_t));
	if (!w)
		fatal("out of memory");
	w->c = c;
	w->chunks = list;
	w->bytes = bytes;
	for (ch = list; ch; ch = ch->next)
		w->bufs[i++] = uv_buf_init(ch->data, (unsigned)ch->len);
	c->writing += bytes;
	c->writes_in_flight++;
	rc = uv_write(&w->req, (uv_stream_t *)&c->pipe, w->bufs, n, after_write);
	if (rc < 0) {
		/* Not queued: release the chunks here, as after_write would. */
		after_write(&w->req, rc);
	}
}

/* --- Closing -------------------------------------------------------------- */

static void on_closed(uv_handle_t *h)
{
	struct conn *c = h->data;

	outq_clear(&c->out);
	frame_free(&c->in);
	drop_request(c, &c->att_req);
	json_decref(c->att_error.detail);
	free(c);
}

static void conn_close(struct conn *c)
{
	if (c->state == CONN_CLOSED)
		return;
	assert(conns.open > 0 && (c->refused || conns.served > 0));
	drop_held(c);
	set_state(c, CONN_CLOSED);
	unmark(c);
	/* Closing the connection cancels its work; nobody is left to answer. */
	cancel_jobs(c);
	if (c->prev)
		c->prev->next = c->next;
	else
		conns.all = c->next;
	if (c->next)
		c->next->prev = c->prev;
	conns.open--;
	if (!c->refused) {
		conns.served--;
		usage_add(c->peer.uid, USAGE_CONNS, -1);
	}
	if (c->linger_timer)
		uv_close((uv_handle_t *)c->linger_timer, (uv_close_cb)free);
	if (c->idle_timer)
		uv_close((uv_handle_t *)c->idle_timer, (uv_close_cb)free);
	uv_close((uv_handle_t *)&c->pipe, on_closed);
}

/* --- Lingering close ------------------------------------------------------ */

/*
 * When the daemon ends a connection the client may still be sending (a line
 * over the limit, a refused peer), closing at once would reset it and could
 * destroy the error reply before the client reads it.  So: shut down our
 * write side, discard whatever still arrives until the client closes, and
 * give up after LINGER_MS.
 */
#define LINGER_MS 2000

static void on_linger_timeout(uv_timer_t *t)
{
	conn_close(t->data);
}

static void on_discard_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = s->data;

	(void)buf;
	if (nread > 0) {
		frame_commit(&c->in, (size_t)nread);
		frame_take(&c->in, NULL, frame_pending(&c->in));
	} else if (nread < 0) {
		conn_close(c);
	}
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
	(void)status;
	free(req);
}

/* Every reply is written: close, at once or lingering. */
static void conn_finish(struct conn *c)
{
	uv_shutdown_t *req;

	assert(c->state == CONN_DRAINING && conn_idle(c));
	if (!c->linger) {
		conn_close(c);
		return;
	}
	req = malloc(sizeof(*req));
	c->linger_timer = malloc(sizeof(*c->linger_timer));
	if (!req || !c->linger_timer)
		fatal("out of memory");
	if (uv_shutdown(req, (uv_stream_t *)&c->pipe, on_shutdown) != 0) {
		free(req);
		free(c->linger_timer);
		c->linger_timer = NULL;
		conn_close(c);
		return;
	}
	set_state(c, CONN_LINGERING);
	frame_take(&c->in, NULL, frame_pending(&c->in));
	if (c->reading)
		uv_read_stop((uv_stream_t *)&c->pipe);
	c->reading = uv_read_start((uv_stream_t *)&c->pipe, alloc_cb, on_discard_read) == 0;
	uv_timer_init(c->pipe.loop, c->linger_timer);
	c->linger_timer->data = c;
	uv_timer_start(c->linger_timer, on_linger_timeout, LINGER_MS, 0);
}

/* --- Input ---------------------------------------------------------------- */

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct conn *c = h->data;
	size_t room;
	char *p;

	(void)suggested;
	p = frame_reserve(&c->in, READ_CHUNK, &room);
	*buf = uv_buf_init(p, (unsigned)(room > UINT32_MAX ? UINT32_MAX : room));
}

/* True when the peer has closed its end entirely, as opposed to a
 * half-close (shutdown(SHUT_WR), what `socat` does at the end of its input),
 * after which the client still waits for its replies. */
static bool peer_gone(struct conn *c)
{
	uv_os_fd_t fd;
	struct pollfd p;

	if (uv_fileno((uv_handle_t *)&c->pipe, &fd) != 0)
		return true;
	p.fd = fd;
	p.events = POLLOUT;
	p.revents = 0;
	return poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = s->data;

	(void)buf;
	if (nread > 0) {
		frame_commit(&c->in, (size_t)nread);
		restart_idle(c);
		conn_process(c);
		return;
	}
	if (nread == 0)
		return;
	if (nread != UV_EOF || peer_gone(c)) {
		conn_close(c);
		return;
	}
	/* Half-closed: answer what was asked, then close.  An attachment still
	 * expected can never complete: drain() drops that request. */
	uv_read_stop(s);
	c->reading = false;
	conn_process(c);
	drain(c, false);
}

/*
 * Detaching.  The job is registered and its "running" record written
 * first; only once the record is durable does the client get "accepted"
 * (with the handle) and the job start, owned by the registry.  A record
 * that cannot be written fails the request on this connection and the job
 * never runs.  Meanwhile the job is not started, so nothing frees it; the
 * connection is named by id, as the client may have gone.
 */
struct accepted {
	uint64_t conn_id;
	json_int_t job_id;
	struct job *job;
};

static void on_recorded(void *arg, json_int_t handle, const char *error)
{
	struct accepted *a = arg;
	struct job *job = a->job;

	if (error) {
		job_fail(job, -KILN_E_INTERNAL, json_pack("{s:s}", "limit", "state_dir"),
			 "the detached job was not started: its record could not be written (%s)", error);
	} else if (job_cancelled(job)) {
		/* Cancelled (disconnect, shutdown) before it started: it never runs. */
		job_fail(job, -job_cancel_reason(job), NULL, "cancelled before it started");
	} else {
		for (struct conn *c = conns.all; c; c = c->next) {
			if (c->id == a->conn_id) {
				json_t *data = json_pack("{s:I}", "job", handle);
				struct reply r = { "accepted", "detached", NULL, data, NULL };
				if (c->state != CONN_LINGERING) {
					envelope_write_reply(&c->out, &a->job_id, &r, NULL, 0, NULL, false);
					mark(c, PEND_FLUSH);
				}
				json_decref(data);
				break;
			}
		}
		job_start(job);
	}
	free(a);
}

/* Hands the job to the registry, which calls on_recorded once the record
 * is written; false if it cannot take it (then the job runs here). */
static bool detach(struct conn *c, struct job *job)
{
	struct accepted *a = malloc(sizeof(*a));

	if (!a)
		return false;
	*a = (struct accepted){ c->id, job_id(job), job };
	/* On success `a` belongs to the registry until on_recorded frees it. */
	if (jobs_detach(job, on_recorded, a))
		return true;
	free(a);
	return false;
}

static void start_job(struct conn *c, struct request *req)
{
	struct job *job;

	if (find_job(c, req->job_id)) {
		char msg[128];
		snprintf(msg, sizeof(msg), "job_id %" JSON_INTEGER_FORMAT " is already in flight on this connection",
			 req->job_id);
		send_error(c, &req->job_id, KILN_E_INVALID_REQUEST, json_pack("{s:s}", "key", "job_id"), msg);
		drop_request(c, req);
		return;
	}
	if (usage_get(c->peer.uid, USAGE_JOBS) >= config_current()->max_inflight_per_uid) {
		char msg[160];
		snprintf(msg, sizeof(msg), "uid %u has %u requests in flight (max_inflight_per_uid)",
			 (unsigned)c->peer.uid, config_current()->max_inflight_per_uid);
		send_error(c, &req->job_id, KILN_E_BUSY, json_pack("{s:s}", "limit", "max_inflight_per_uid"), msg);
		drop_request(c, req);
		return;
	}
	job = job_new(c->pipe.loop, &conn_owner, c, &c->peer, req);
	jobs_link(c, job);
	if (job_prepare(job) != 0)
		return; /* answered with the reason */
	if (!job_detach_requested(job) && !reserve(c, job)) {
		c->held = job; /* started by start_held() once replies are written */
		return;
	}
	if (job_detach_requested(job)) {
		json_t *detail = NULL;
		char msg[256];
		int rc = jobs_detach_allowed(&c->peer, &detail, msg, sizeof(msg));
		if (rc) {
			job_fail(job, rc, detail, "%s", msg);
			return;
		}
		if (detach(c, job))
			return; /* started by on_recorded */
	}
	job_start(job);
}

/* Whether n more attachment bytes fit uid's and the daemon's limits; if
 * not, *key names the limit. */
static bool attach_fits(uid_t uid, size_t n, const char **key)
{
	const struct kiln_config *cfg = config_current();

	if (usage_get(uid, USAGE_ATTACH) + n > cfg->max_attachment_bytes_per_uid) {
		*key = "max_attachment_bytes_per_uid";
		return false;
	}
	if (usage_total(USAGE_ATTACH) + n > cfg->max_attachment_bytes_total) {
		*key = "max_attachment_bytes_total";
		return false;
	}
	return true;
}

/* The rest of a request's attachment is skipped, then `code` answered. */
static void skip_attachment(struct conn *c, const json_int_t *id, size_t bytes, int code, json_t *detail,
			    const char *msg)
{
	c->att_error.have_id = id != NULL;
	c->att_error.id = id ? *id : 0;
	c->att_error.code = code;
	c->att_error.detail = detail;
	snprintf(c->att_error.msg, sizeof(c->att_error.msg), "%s", msg);
	c->att_skip = bytes;
	c->input = bytes ? IN_SKIP : IN_LINES;
	if (!bytes) {
		send_error(c, c->att_error.have_id ? &c->att_error.id : NULL, code, detail, c->att_error.msg);
		c->att_error.detail = NULL;
	}
}

/* Room for the next attachment bytes: the buffer grows as they arrive
 * (doubling, up to the declared size), never allocated up front from what
 * the client declared, and a failed allocation is an error reply. */
static bool attach_room(struct conn *c)
{
	struct request *r = &c->att_req;
	size_t want, cap;
	unsigned char *p;

	if (r->attach_len < c->att_cap)
		return true;
	want = c->att_cap ? c->att_cap * 2 : READ_CHUNK;
	cap = want < r->raw_len ? want : r->raw_len;
	p = realloc(r->attach, cap);
	if (!p)
		return false;
	r->attach = p;
	c->att_cap = cap;
	return true;
}

/* Consumes attachment bytes for the request being received, counting
 * them against the limits as they arrive; true when done. */
static bool take_attachment(struct conn *c)
{
	struct request *r = &c->att_req;

	if (c->input == IN_SKIP) {
		c->att_skip -= frame_take(&c->in, NULL, c->att_skip);
		if (c->att_skip)
			return false;
		c->input = IN_LINES;
		send_error(c, c->att_error.have_id ? &c->att_error.id : NULL, c->att_error.code,
			   c->att_error.detail, c->att_error.msg);
		c->att_error.detail = NULL;
		return true;
	}
	while (r->attach_len < r->raw_len && frame_pending(&c->in)) {
		const char *key = NULL;
		size_t avail = frame_pending(&c->in), room;
		char msg[200];

		if (!attach_room(c)) {
			snprintf(msg, sizeof(msg), "out of memory for a %zu-byte attachment; retry later", r->raw_len);
			goto refuse_busy;
		}
		room = c->att_cap - r->attach_len;
		if (avail > room)
			avail = room;
		if (!attach_fits(c->peer.uid, avail, &key)) {
			snprintf(msg, sizeof(msg), "attachment of %zu bytes does not fit %s", r->raw_len, key);
			json_int_t id = r->job_id;
			size_t rest = r->raw_len - r->attach_len;
			drop_request(c, r);
			memset(r, 0, sizeof(*r));
			c->att_cap = 0;
			skip_attachment(c, &id, rest, KILN_E_TOO_LARGE, json_pack("{s:s}", "limit", key), msg);
			return c->input == IN_LINES;
		}
		avail = frame_take(&c->in, r->attach + r->attach_len, avail);
		r->attach_len += avail;
		usage_add(c->peer.uid, USAGE_ATTACH, (long long)avail);
		continue;
refuse_busy:;
		json_int_t bid = r->job_id;
		size_t brest = r->raw_len - r->attach_len;
		drop_request(c, r);
		memset(r, 0, sizeof(*r));
		c->att_cap = 0;
		skip_attachment(c, &bid, brest, KILN_E_BUSY, NULL, msg);
		return c->input == IN_LINES;
	}
	if (r->attach_len < r->raw_len)
		return false;
	c->input = IN_LINES;
	c->att_cap = 0;
	start_job(c, r);
	memset(r, 0, sizeof(*r));
	return true;
}

/*
 * Passed descriptors.  A client may send descriptors it opened with the
 * bytes of a request line that names them in "fds"; libuv queues them on
 * the pipe as they arrive.  The request takes as many as it names, in
 * order; any left once every buffered line is handled belongs to no
 * request and is closed.
 */
static void on_fd_handle_closed(uv_handle_t *h)
{
	free(h);
}

/* The next passed descriptor (a private duplicate), or -1. */
static int take_fd(struct conn *c)
{
	uv_pipe_t *tmp;
	uv_os_fd_t fd;
	int out = -1;

	if (uv_pipe_pending_count(&c->pipe) <= 0)
		return -1;
	tmp = malloc(sizeof(*tmp));
	if (!tmp)
		fatal("out of memory");
	uv_pipe_init(c->pipe.loop, tmp, 0);
	if (uv_accept((uv_stream_t *)&c->pipe, (uv_stream_t *)tmp) == 0 &&
	    uv_fileno((uv_handle_t *)tmp, &fd) == 0)
		out = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	uv_close((uv_handle_t *)tmp, on_fd_handle_closed);
	return out;
}

static void drop_orphan_fds(struct conn *c)
{
	int fd;

	while ((fd = take_fd(c)) >= 0)
		close(fd);
}

/* Takes the descriptors the request names; false with msg if they did not
 * arrive with it. */
static bool take_request_fds(struct conn *c, struct request *req, char *msg, size_t msglen)
{
	size_t want = json_array_size(req->fd_paths);

	while (req->nfds < want) {
		int fd = take_fd(c);
		if (fd < 0)
			break;
		req->fds[req->nfds++] = fd;
	}
	if (req->nfds == want)
		return true;
	snprintf(msg, msglen, "the request names %zu descriptors in fds but %zu arrived with it", want,
		 req->nfds);
	return false;
}

static void handle_line(struct conn *c, const char *line, size_t len)
{
	struct request req;
	json_t *detail = NULL;
	bool have_id;
	char msg[512];
	int rc;

	rc = envelope_parse(line, len, config_current(), &req, &have_id, &detail, msg, sizeof(msg));
	if (rc == -KILN_E_TOO_LARGE) {
		/* The declared attachment cannot be skipped safely: answer and close. */
		send_error(c, have_id ? &req.job_id : NULL, KILN_E_TOO_LARGE, detail, msg);
		request_clear(&req);
		drain(c, true);
		return;
	}
	if (rc) {
		if (req.raw_len) {
			/* Keep the stream in step: skip the bytes, then answer. */
			skip_attachment(c, have_id ? &req.job_id : NULL, req.raw_len, -rc, detail, msg);
		} else {
			send_error(c, have_id ? &req.job_id : NULL, -rc, detail, msg);
		}
		request_clear(&req);
		return;
	}
	if (req.fd_paths && !take_request_fds(c, &req, msg, sizeof(msg))) {
		/* The attachment (if any) is skipped first, to keep the stream in step. */
		skip_attachment(c, &req.job_id, req.raw_len, KILN_E_INVALID_REQUEST,
				json_pack("{s:s}", "key", "fds"), msg);
		request_clear(&req);
		return;
	}
	if (req.raw_len) {
		/* The bytes are received (and counted) as they arrive. */
		c->att_req = req;
		c->att_req.attach = NULL;
		c->att_req.attach_len = 0;
		c->att_cap = 0;
		c->input = IN_ATTACH;
		return;
	}
	/* A raw_b64 attachment came with the line: counted like raw bytes. */
	usage_add(c->peer.uid, USAGE_ATTACH, (long long)req.attach_len);
	start_job(c, &req);
}

static bool must_pause(const struct conn *c)
{
	const struct kiln_config *cfg = config_current();
	return c->held || c->inflight >= cfg->max_inflight_per_conn || out_bytes(c) >= cfg->max_output_buffer;
}

static void too_long(struct conn *c)
{
	const struct kiln_config *cfg = config_current();
	char msg[128];

	snprintf(msg, sizeof(msg), "request line exceeds max_line_bytes (%zu)", cfg->max_line_bytes);
	send_error(c, NULL, KILN_E_TOO_LARGE,
		   config_limit_detail(cfg, "max_line_bytes"),
		   msg);
	frame_take(&c->in, NULL, frame_pending(&c->in));
	drain(c, true);
}

static void update_reading(struct conn *c, bool paused)
{
	if (c->state == CONN_CLOSED || c->state == CONN_LINGERING)
		return;
	if (paused || c->state != CONN_SERVING) {
		if (c->reading) {
			uv_read_stop((uv_stream_t *)&c->pipe);
			c->reading = false;
		}
	} else if (!c->reading) {
		if (uv_read_start((uv_stream_t *)&c->pipe, alloc_cb, on_read) == 0)
			c->reading = true;
	}
}

/* Handles buffered input until it runs out or a limit pauses it.  Never
 * re-entered: a job finishing inside only marks the connection for the
 * prepare pass. */
static void conn_process(struct conn *c)
{
	bool paused = false;

	if (c->state == CONN_CLOSED || c->state == CONN_LINGERING)
		return;
	while (c->state == CONN_SERVING) {
		char *line;
		size_t len;
		int st;

		if (c->input != IN_LINES) {
			if (!take_attachment(c))
				break;
			continue;
		}
		if (must_pause(c)) {
			paused = true;
			break;
		}
		st = frame_next_line(&c->in, config_current()->max_line_bytes, &line, &len);
		if (st == FRAME_NEED_MORE) {
			/* Every buffered line is handled: a descriptor left now
			 * came with no request. */
			if (c->input == IN_LINES && frame_pending(&c->in) == 0)
				drop_orphan_fds(c);
			break;
		}
		if (st == FRAME_TOO_LONG) {
			too_long(c);
			break;
		}
		if (len == 0 || strspn(line, " \t\r") == len)
			continue;
		handle_line(c, line, len);
	}
	update_reading(c, paused);
}

/* Resumes a connection after a job left it or a write completed. */
static void conn_resume(struct conn *c)
{
	const struct kiln_config *cfg = config_current();

	if (c->held && c->state == CONN_SERVING && reserve(c, c->held)) {
		struct job *job = c->held;
		c->held = NULL;
		job_start(job);
	}
	if (c->state == CONN_SERVING && out_bytes(c) <= cfg->max_output_buffer / 2)
		conn_process(c);
	if (c->state == CONN_DRAINING && conn_idle(c))
		conn_finish(c);
}

void conn_prepare_pass(void)
{
	/* Handling a connection can mark others (a job.wait answered by a
	 * finishing job), or itself again: go on until nothing is left. */
	while (conns.pending) {
		struct conn *c = conns.pending;
		unsigned what = c->pending;

		conns.pending = c->next_pending;
		c->next_pending = NULL;
		c->pending = 0;
		if (what & PEND_PROCESS)
			conn_resume(c);
		if (c->state == CONN_CLOSED)
			continue;
		/* Replies queued by the resume above go out in the same write. */
		if (c->pending & PEND_FLUSH) {
			unmark(c);
			what |= PEND_FLUSH;
		}
		if (what & PEND_FLUSH)
			conn_flush(c);
	}
}

/* --- The server's side ---------------------------------------------------- */

/* The peer's uid, gid and pid (SO_PEERCRED) and supplementary groups
 * (SO_PEERGROUPS), as they were when it connected. */
static void read_peer(int fd, struct kiln_peer *peer)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	gid_t groups[KILN_PEER_MAX_GROUPS * 4];
	socklen_t glen = sizeof(groups);

	*peer = (struct kiln_peer){ .uid = (uid_t)-1, .gid = (gid_t)-1 };
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
		return;
	peer->uid = cred.uid;
	peer->gid = cred.gid;
	peer->pid = cred.pid;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &glen) != 0) {
		log_warn("SO_PEERGROUPS: %s; uid %u is checked without its supplementary groups",
			 strerror(errno), (unsigned)cred.uid);
		return;
	}
	size_t n = glen / sizeof(gid_t);
	if (n > KILN_PEER_MAX_GROUPS) {
		log_warn("uid %u has %zu supplementary groups; only the first %d count", (unsigned)cred.uid, n,
			 KILN_PEER_MAX_GROUPS);
		n = KILN_PEER_MAX_GROUPS;
	}
	memcpy(peer->groups, groups, n * sizeof(gid_t));
	peer->ngroups = (int)n;
}

struct conn *conn_accept(uv_loop_t *loop, uv_stream_t *listener)
{
	struct conn *c = calloc(1, sizeof(*c));
	uv_os_fd_t fd;

	if (!c)
		fatal("out of memory");
	c->id = ++conns.next_id;
	c->state = CONN_SERVING;
	c->jobs.next = c->jobs.prev = &c->jobs;
	frame_init(&c->in);
	outq_init(&c->out);
	/* ipc: libuv receives the descriptors clients pass (SCM_RIGHTS). */
	uv_pipe_init(loop, &c->pipe, 1);
	c->pipe.data = c;
	c->next = conns.all;
	if (conns.all)
		conns.all->prev = c;
	conns.all = c;
	conns.open++;
	conns.served++;
	/* Nobody's usage until the peer is known. */
	c->peer = (struct kiln_peer){ .uid = (uid_t)-1, .gid = (gid_t)-1 };
	if (uv_accept(listener, (uv_stream_t *)&c->pipe) != 0) {
		conn_close(c);
		return NULL;
	}
	if (uv_fileno((uv_handle_t *)&c->pipe, &fd) == 0)
		read_peer(fd, &c->peer);
	else
		c->peer = (struct kiln_peer){ .uid = (uid_t)-1, .gid = (gid_t)-1 };
	usage_add(c->peer.uid, USAGE_CONNS, 1);
	log_debug("conn %llu: accepted (pid %d uid %u gid %u)", (unsigned long long)c->id,
		  (int)c->peer.pid, (unsigned)c->peer.uid, (unsigned)c->peer.gid);
	return c;
}

uint64_t conn_id(const struct conn *c)
{
	return c->id;
}

const struct kiln_peer *conn_peer(const struct conn *c)
{
	return &c->peer;
}

/* idle_timeout: a connection with nothing in flight and nothing to write
 * that stayed silent that long is told so and closed; its slot is free at
 * once, as a refused one's. */
static void on_idle(uv_timer_t *t)
{
	struct conn *c = t->data;
	const struct kiln_config *cfg = config_current();
	char msg[128];

	if (c->state != CONN_SERVING || c->refused)
		return;
	if (c->inflight || out_bytes(c) || c->input != IN_LINES || cfg->idle_timeout <= 0) {
		restart_idle(c);
		return;
	}
	log_debug("conn %llu: idle for %.0f s, closing", (unsigned long long)c->id, cfg->idle_timeout);
	snprintf(msg, sizeof(msg), "connection idle for %.0f s (idle_timeout); closing", cfg->idle_timeout);
	c->refused = true;
	conns.served--;
	usage_add(c->peer.uid, USAGE_CONNS, -1);
	send_error(c, NULL, KILN_E_TIMEOUT, json_pack("{s:s}", "limit", "idle_timeout"), msg);
	drain(c, true);
}

static void restart_idle(struct conn *c)
{
	double s = config_current()->idle_timeout;

	if (!c->idle_timer || s <= 0)
		return;
	uv_timer_start(c->idle_timer, on_idle, (uint64_t)(s * 1000.0), 0);
}

void conn_start(struct conn *c)
{
	assert(c->state == CONN_SERVING || c->state == CONN_DRAINING);
	if (!c->refused) {
		c->idle_timer = malloc(sizeof(*c->idle_timer));
		if (!c->idle_timer)
			fatal("out of memory");
		uv_timer_init(c->pipe.loop, c->idle_timer);
		c->idle_timer->data = c;
		restart_idle(c);
	}
	update_reading(c, false);
}

void conn_refuse(struct conn *c, int code, const char *msg)
{
	assert(c->state == CONN_SERVING && !c->refused);
	/* The slot is free at once: a lingering refused peer must not lock
	 * legitimate clients out (max_connections). */
	c->refused = true;
	conns.served--;
	usage_add(c->peer.uid, USAGE_CONNS, -1);
	send_error(c, NULL, code, NULL, msg);
	drain(c, true);
}

void conn_drain_all(void)
{
	for (struct conn *c = conns.all; c; c = c->next) {
		/* Requests the client sent but we never read are dropped; linger so
		 * the client sees an orderly end of stream, not a reset. */
		drain(c, true);
	}
}

void conn_drop_where(bool (*keep)(const struct kiln_peer *peer, void *ctx), void *ctx, int code,
		     const char *msg)
{
	for (struct conn *c = conns.all; c; c = c->next) {
		if (c->state != CONN_SERVING || c->refused || keep(&c->peer, ctx))
			continue;
		log_warn("conn %llu: uid %u is no longer allowed; closing", (unsigned long long)c->id,
			 (unsigned)c->peer.uid);
		send_error(c, NULL, code, NULL, msg);
		for (struct job_node *n = c->jobs.next, *next; n != &c->jobs; n = next) {
			next = n->next;
			job_cancel(job_of_node(n), KILN_E_CANCELLED);
		}
		drain(c, true);
	}
}

void conn_cancel_all(void)
{
	for (struct conn *c = conns.all; c; c = c->next) {
		for (struct job_node *n = c->jobs.next, *next; n != &c->jobs; n = next) {
			next = n->next;
			job_cancel(job_of_node(n), KILN_E_CANCELLED);
		}
	}
}

unsigned conn_count_served(void)
{
	return conns.served;
}

unsigned conn_count_open(void)
{
	return conns.open;
}
