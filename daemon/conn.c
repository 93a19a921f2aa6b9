/*
 * Connections: framing requests off the socket, raw attachments, flow
 * control, and the output queue.
 *
 * Flow control.  A connection stops reading when it has max_inflight_per_conn
 * requests in flight or max_output_buffer bytes of replies queued; lines
 * already buffered wait in the frame buffer.  It resumes when a job finishes
 * or the output drains below half the limit.  So a client that pipelines
 * without reading replies is slowed down, never allowed to grow our memory.
 *
 * Output.  Replies are appended to a queue of chunks; a uv_prepare handle
 * flushes every dirty connection once per loop iteration, so a batch of
 * pipelined requests is answered with one write.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/crypto.h>

#include "config.h"
#include "envelope.h"
#include "kiln/error.h"
#include "kiln/utf8.h"
#include "log.h"
#include "server.h"

#define READ_CHUNK 65536
#define OUT_CHUNK 65536

struct outchunk {
	struct outchunk *next;
	char *data;
	size_t len, cap;
	void (*free_fn)(void *); /* releases `owner` for attachment chunks */
	void *owner;
	char inline_data[];      /* small chunks keep their bytes here */
};

struct writereq {
	uv_write_t req;
	struct conn *c;
	struct outchunk *chunks;
	size_t bytes;
	uv_buf_t bufs[];
};

static void conn_process(struct conn *c);
static void conn_finish(struct conn *c);

/* --- Output --------------------------------------------------------------- */

/* Replies may carry decrypted text: a chunk's bytes are wiped once written. */
static void chunk_free(struct outchunk *ch)
{
	if (ch->free_fn)
		ch->free_fn(ch->owner);
	else
		OPENSSL_cleanse(ch->data, ch->len);
	free(ch);
}

/* Keeps one standard-size chunk (wiped) for the next batch of replies. */
static void chunk_release(struct conn *c, struct outchunk *ch)
{
	if (!c->spare && !ch->free_fn && ch->cap == OUT_CHUNK) {
		OPENSSL_cleanse(ch->data, ch->len);
		ch->len = 0;
		c->spare = ch;
	} else {
		chunk_free(ch);
	}
}

static void mark_dirty(struct conn *c)
{
	if (c->dirty)
		return;
	c->dirty = true;
	c->next_dirty = c->srv->dirty;
	c->srv->dirty = c;
}

static void queue_chunk(struct conn *c, struct outchunk *ch)
{
	if (c->out_tail)
		c->out_tail->next = ch;
	else
		c->out_head = ch;
	c->out_tail = ch;
	c->out_bytes += ch->len;
	mark_dirty(c);
}

/* Room for at least n more bytes in the tail chunk; returns the write pointer. */
static char *reserve_bytes(struct conn *c, size_t n)
{
	struct outchunk *t = c->out_tail;

	if (!t || t->free_fn || t->cap - t->len < n) {
		size_t cap = n > OUT_CHUNK ? n : OUT_CHUNK;
		if (c->spare && cap == OUT_CHUNK) {
			/* Reuse the chunk the last write released: no malloc per reply batch. */
			t = c->spare;
			c->spare = NULL;
		} else {
			t = malloc(sizeof(*t) + cap);
			if (!t)
				fatal("out of memory");
		}
		t->next = NULL;
		t->data = t->inline_data;
		t->len = 0;
		t->cap = cap;
		t->free_fn = NULL;
		t->owner = NULL;
		queue_chunk(c, t);
	}
	return t->data + t->len;
}

static void commit_bytes(struct conn *c, size_t n)
{
	c->out_tail->len += n;
	c->out_bytes += n;
}

/* Queues attachment bytes as their own chunk: written from where they are,
 * never copied. */
static void queue_attachment(struct conn *c, void *attach, size_t len, void (*attach_free)(void *))
{
	struct outchunk *ch = malloc(sizeof(*ch));

	if (!ch)
		fatal("out of memory");
	ch->next = NULL;
	ch->data = attach;
	ch->len = ch->cap = len;
	ch->free_fn = attach_free;
	ch->owner = attach;
	queue_chunk(c, ch);
}

/* Appends `s` as a JSON string.  Invalid UTF-8 (a file name, say) becomes
 * U+FFFD, so a reply line is always valid JSON. */
static void append_json_string(struct conn *c, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = strlen(s);
	/* Worst case: every byte becomes a 6-byte escape, plus the quotes. */
	char *p = reserve_bytes(c, 6 * n + 2), *start = p;
	const unsigned char *u = (const unsigned char *)s, *end = u + n;
	uint32_t cp;

	*p++ = '"';
	while (u < end) {
		unsigned char ch = *u;
		size_t len;
		if (ch >= 0x20 && ch < 0x80 && ch != '"' && ch != '\\') {
			*p++ = (char)*u++;
			continue;
		}
		if (ch < 0x80) {
			*p++ = '\\';
			switch (ch) {
			case '"': *p++ = '"'; break;
			case '\\': *p++ = '\\'; break;
			case '\n': *p++ = 'n'; break;
			case '\t': *p++ = 't'; break;
			case '\r': *p++ = 'r'; break;
			default:
				*p++ = 'u';
				*p++ = '0';
				*p++ = '0';
				*p++ = hex[ch >> 4];
				*p++ = hex[ch & 15];
			}
			u++;
			continue;
		}
		len = kiln_utf8_decode(u, (size_t)(end - u), &cp);
		if (len == 0) {
			memcpy(p, "\xef\xbf\xbd", 3);
			p += 3;
			u++;
			continue;
		}
		memcpy(p, u, len);
		p += len;
		u += len;
	}
	*p++ = '"';
	commit_bytes(c, (size_t)(p - start));
}

/* Appends the compact JSON text of `v`. */
static void append_json(struct conn *c, json_t *v)
{
	size_t room = c->out_tail && !c->out_tail->free_fn ? c->out_tail->cap - c->out_tail->len : 0;
	char *p = room ? reserve_bytes(c, 1) : NULL;
	size_t n = p ? json_dumpb(v, p, room, JSON_COMPACT | JSON_ENCODE_ANY) : 0;

	if (!p || n == 0 || n > room) {
		n = json_dumpb(v, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
		p = reserve_bytes(c, n);
		json_dumpb(v, p, n, JSON_COMPACT | JSON_ENCODE_ANY);
	}
	commit_bytes(c, n);
}

static void append_literal(struct conn *c, const char *s)
{
	size_t n = strlen(s);
	memcpy(reserve_bytes(c, n), s, n);
	commit_bytes(c, n);
}

void conn_send_json(struct conn *c, json_t *line)
{
	if (c->closing)
		return;
	append_json(c, line);
	append_literal(c, "\n");
}

void conn_send_reply(struct conn *c, const struct request *req, const struct reply *r, void *attach,
		     size_t attach_len, void (*attach_free)(void *))
{
	char num[48];
	bool raw = attach && req && req->accept_raw;

	if (c->closing) {
		if (attach)
			attach_free(attach);
		return;
	}
	/* The envelope is written as text and only the payload objects go
	 * through jansson: this is the hot path of every request. */
	snprintf(num, sizeof(num), "{\"job_id\":%" JSON_INTEGER_FORMAT ",\"result\":", req->job_id);
	append_literal(c, num);
	append_json_string(c, r->result);
	append_literal(c, ",\"message\":");
	append_json_string(c, r->message);
	append_literal(c, ",\"failed_hosts\":");
	if (r->failed_hosts)
		append_json(c, r->failed_hosts);
	else
		append_literal(c, "[]");
	append_literal(c, ",\"data\":");
	if (r->data)
		append_json(c, r->data);
	else
		append_literal(c, "{}");
	if (r->error) {
		append_literal(c, ",\"error\":");
		append_json(c, r->error);
	}
	if (raw) {
		snprintf(num, sizeof(num), ",\"raw\":%zu}\n", attach_len);
		append_literal(c, num);
		queue_attachment(c, attach, attach_len, attach_free);
		return;
	}
	if (attach) {
		size_t n;
		char *b64 = base64_encode(attach, attach_len, &n);
		append_literal(c, ",\"raw_b64\":\"");
		memcpy(reserve_bytes(c, n), b64, n);
		commit_bytes(c, n);
		append_literal(c, "\"");
		free(b64);
		attach_free(attach);
	}
	append_literal(c, "}\n");
}

void conn_send_error(struct conn *c, const json_int_t *id, int code, json_t *detail, const char *msg)
{
	json_t *r = envelope_error(id, code, detail, msg);
	conn_send_json(c, r);
	json_decref(r);
}

bool conn_idle(const struct conn *c)
{
	return c->jobs == NULL && c->out_bytes == 0 && c->writes_in_flight == 0;
}

static void after_write(uv_write_t *req, int status)
{
	struct writereq *w = (struct writereq *)req;
	struct conn *c = w->c;
	struct outchunk *ch, *next;

	for (ch = w->chunks; ch; ch = next) {
		next = ch->next;
		chunk_release(c, ch);
	}
	c->out_bytes -= w->bytes;
	c->writes_in_flight--;
	free(w);
	if (c->closing)
		return;
	if (status < 0) {
		log_debug("conn %llu: write failed: %s", (unsigned long long)c->id, uv_strerror(status));
		conn_close(c);
		return;
	}
	if (c->close_after_flush && conn_idle(c) && !c->in_attach) {
		conn_finish(c);
		return;
	}
	conn_resume(c);
	if (c->srv->shutting_down)
		server_maybe_finish_shutdown(c->srv);
}

static void conn_flush(struct conn *c)
{
	struct outchunk *ch;
	struct writereq *w;
	unsigned n = 0, i = 0;
	int rc;

	if (c->closing || !c->out_head)
		return;
	for (ch = c->out_head; ch; ch = ch->next)
		n++;
	w = malloc(sizeof(*w) + n * sizeof(uv_buf_t));
	if (!w)
		fatal("out of memory");
	w->c = c;
	w->chunks = c->out_head;
	w->bytes = 0;
	for (ch = c->out_head; ch; ch = ch->next) {
		w->bufs[i++] = uv_buf_init(ch->data, (unsigned)ch->len);
		w->bytes += ch->len;
	}
	c->out_head = c->out_tail = NULL;
	c->writes_in_flight++;
	rc = uv_write(&w->req, (uv_stream_t *)&c->pipe, w->bufs, n, after_write);
	if (rc < 0) {
		/* Not queued: release the chunks here, as after_write would. */
		after_write(&w->req, rc);
	}
}

void conn_flush_all(struct server *srv)
{
	struct conn *c = srv->dirty;

	srv->dirty = NULL;
	while (c) {
		struct conn *next = c->next_dirty;
		c->dirty = false;
		c->next_dirty = NULL;
		conn_flush(c);
		c = next;
	}
}

/* --- Closing -------------------------------------------------------------- */

static void on_closed(uv_handle_t *h)
{
	struct conn *c = h->data;
	struct outchunk *ch, *next;

	for (ch = c->out_head; ch; ch = next) {
		next = ch->next;
		chunk_free(ch);
	}
	free(c->spare);
	frame_free(&c->in);
	request_clear(&c->att_req);
	json_decref(c->att_error);
	free(c);
}

static void unlink_dirty(struct conn *c)
{
	struct conn **pp;

	if (!c->dirty)
		return;
	for (pp = &c->srv->dirty; *pp; pp = &(*pp)->next_dirty) {
		if (*pp == c) {
			*pp = c->next_dirty;
			break;
		}
	}
	c->dirty = false;
}

void conn_close(struct conn *c)
{
	struct server *srv = c->srv;
	struct job *j, *next;

	if (c->closing)
		return;
	c->closing = true;
	unlink_dirty(c);
	/* Closing the connection cancels its work; nobody is left to answer. */
	for (j = c->jobs; j; j = next) {
		next = j->conn_next;
		j->conn = NULL;
		j->conn_prev = j->conn_next = NULL;
		job_cancel(j, KILN_E_CANCELLED);
	}
	c->jobs = NULL;
	c->inflight = 0;
	if (c->prev)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	srv->nconns--;
	log_debug("conn %llu: closed", (unsigned long long)c->id);
	if (c->linger_timer)
		uv_close((uv_handle_t *)c->linger_timer, (uv_close_cb)free);
	uv_close((uv_handle_t *)&c->pipe, on_closed);
	server_maybe_finish_shutdown(srv);
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

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf);

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

static void conn_finish(struct conn *c)
{
	uv_shutdown_t *req;

	if (!c->linger) {
		conn_close(c);
		return;
	}
	if (c->linger_timer)
		return;
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
	frame_take(&c->in, NULL, frame_pending(&c->in));
	if (c->reading)
		uv_read_stop((uv_stream_t *)&c->pipe);
	c->reading = uv_read_start((uv_stream_t *)&c->pipe, alloc_cb, on_discard_read) == 0;
	uv_timer_init(c->srv->loop, c->linger_timer);
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
		conn_process(c);
		return;
	}
	if (nread == 0)
		return;
	if (nread != UV_EOF || peer_gone(c)) {
		conn_close(c);
		return;
	}
	if (c->in_attach) {
		/* The attachment can never complete: drop that request. */
		request_clear(&c->att_req);
		json_decref(c->att_error);
		c->att_error = NULL;
		c->in_attach = false;
	}
	/* Half-closed: answer what was asked, then close. */
	uv_read_stop(s);
	c->reading = false;
	c->close_after_flush = true;
	conn_process(c);
	if (conn_idle(c))
		conn_close(c);
}

static void start_job(struct conn *c, struct request *req)
{
	struct job *job;

	if (job_find(c, req->job_id)) {
		char msg[128];
		snprintf(msg, sizeof(msg), "job_id %" JSON_INTEGER_FORMAT " is already in flight on this connection",
			 req->job_id);
		conn_send_error(c, &req->job_id, KILN_E_INVALID_REQUEST, json_pack("{s:s}", "key", "job_id"), msg);
		request_clear(req);
		return;
	}
	job = job_new(c->srv, c, req);
	job_run(job);
}

/* Consumes attachment bytes for the request being received; true when done. */
static bool take_attachment(struct conn *c)
{
	if (c->att_error) {
		c->att_skip -= frame_take(&c->in, NULL, c->att_skip);
		if (c->att_skip)
			return false;
		conn_send_json(c, c->att_error);
		json_decref(c->att_error);
		c->att_error = NULL;
		c->in_attach = false;
		return true;
	}
	c->att_got += frame_take(&c->in, c->att_req.attach + c->att_got, c->att_req.attach_len - c->att_got);
	if (c->att_got < c->att_req.attach_len)
		return false;
	c->in_attach = false;
	start_job(c, &c->att_req);
	return true;
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
		conn_send_error(c, have_id ? &req.job_id : NULL, KILN_E_TOO_LARGE, detail, msg);
		c->close_after_flush = true;
		c->linger = true;
		return;
	}
	if (rc) {
		json_t *r = envelope_error(have_id ? &req.job_id : NULL, -rc, detail, msg);
		if (req.raw_len) {
			/* Keep the stream in step: skip the bytes, then answer. */
			c->att_error = r;
			c->att_skip = req.raw_len;
			c->in_attach = true;
		} else {
			conn_send_json(c, r);
			json_decref(r);
		}
		request_clear(&req);
		return;
	}
	if (req.raw_len) {
		req.attach = malloc(req.raw_len);
		if (!req.attach)
			fatal("out of memory");
		req.attach_len = req.raw_len;
		c->att_req = req;
		c->att_got = 0;
		c->in_attach = true;
		return;
	}
	start_job(c, &req);
}

static bool must_pause(const struct conn *c)
{
	const struct kiln_config *cfg = config_current();
	return c->inflight >= cfg->max_inflight_per_conn || c->out_bytes >= cfg->max_output_buffer ||
	       c->srv->shutting_down || c->close_after_flush;
}

static void too_long(struct conn *c)
{
	const struct kiln_config *cfg = config_current();
	char msg[128];

	snprintf(msg, sizeof(msg), "request line exceeds max_line_bytes (%zu)", cfg->max_line_bytes);
	conn_send_error(c, NULL, KILN_E_TOO_LARGE,
		   json_pack("{s:s, s:I}", "limit", "max_line_bytes", "value", (json_int_t)cfg->max_line_bytes),
		   msg);
	frame_take(&c->in, NULL, frame_pending(&c->in));
	c->close_after_flush = true;
	c->linger = true;
}

static void update_reading(struct conn *c, bool paused)
{
	if (c->closing)
		return;
	if (paused || c->close_after_flush) {
		if (c->reading) {
			uv_read_stop((uv_stream_t *)&c->pipe);
			c->reading = false;
		}
	} else if (!c->reading) {
		if (uv_read_start((uv_stream_t *)&c->pipe, alloc_cb, on_read) == 0)
			c->reading = true;
	}
}

static void conn_process(struct conn *c)
{
	bool paused = false;

	/* A job finishing synchronously inside start_job() calls conn_resume();
	 * the loop below re-checks the limits, so a nested call has nothing to do. */
	if (c->processing || c->closing || c->linger_timer)
		return;
	c->processing = true;
	while (!c->closing) {
		char *line;
		size_t len;
		int st;

		if (c->in_attach) {
			if (!take_attachment(c))
				break;
			continue;
		}
		if (must_pause(c)) {
			paused = true;
			break;
		}
		st = frame_next_line(&c->in, config_current()->max_line_bytes, &line, &len);
		if (st == FRAME_NEED_MORE)
			break;
		if (st == FRAME_TOO_LONG) {
			too_long(c);
			break;
		}
		if (len == 0 || strspn(line, " \t\r") == len)
			continue;
		handle_line(c, line, len);
	}
	c->processing = false;
	update_reading(c, paused);
	if (c->close_after_flush && !c->closing && c->jobs == NULL && c->out_bytes == 0 &&
	    !c->in_attach && !c->linger_timer)
		conn_finish(c);
}

void conn_resume(struct conn *c)
{
	const struct kiln_config *cfg = config_current();

	if (c->closing)
		return;
	if (c->out_bytes > cfg->max_output_buffer / 2 && !c->close_after_flush)
		return;
	conn_process(c);
}

struct conn *conn_new(struct server *srv)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (!c)
		fatal("out of memory");
	c->srv = srv;
	c->id = ++srv->next_conn_id;
	frame_init(&c->in);
	uv_pipe_init(srv->loop, &c->pipe, 0);
	c->pipe.data = c;
	c->next = srv->conns;
	if (srv->conns)
		srv->conns->prev = c;
	srv->conns = c;
	srv->nconns++;
	return c;
}

void conn_start(struct conn *c)
{
	update_reading(c, false);
}
