/*
 * Process isolation for modules (see mod_proc.h).
 */
#include "mod_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "job.h"
#include "kiln/error.h"
#include "log.h"
#include "mod_wire.h"
#include "workq.h"

/* Workers that die before their HELLO this many times in a row mean the
 * module cannot start: it is refused instead of restarted forever. */
#define START_FAILURES_MAX 3
/* Source descriptors for the child are moved at or above this, so the
 * dup2() onto 3..5 never overwrites one of them. */
#define FD_FLOOR 10

extern char **environ;

enum wstate {
	W_SPAWNING, /* on the spawner thread */
	W_STARTING, /* running, HELLO not yet received */
	W_IDLE,
	W_BUSY,
	W_DEAD,     /* socket closed or process gone: waiting to be reaped */
};

static const char *const wstate_names[] = { "spawning", "starting", "idle", "busy", "dead" };

struct mcall {
	struct job *job;
	struct mod_pool *pool;
	struct worker *worker;  /* NULL while queued */
	char *text;             /* {"action", "args"}, owned */
	char action[80];
	uint64_t id;
	int payload_fd;         /* a memfd holding a big attachment, or -1 */
	bool preparing;         /* the memfd is being filled on the pool */
	struct mcall *next;     /* queue */
};

struct worker {
	struct mod_pool *pool;
	enum wstate state;
	pid_t pid;              /* 0 once reaped */
	int sock;               /* our end, -1 once closed */
	int child_sock, child_ctl; /* for the spawner, -1 afterwards */
	struct mw_ctl *ctl;     /* shared control page, writable here */
	uv_poll_t poll;
	uv_timer_t kill_timer;
	bool poll_active;
	bool killed;            /* we sent SIGKILL (cancel past the grace, or stop) */
	bool handles_init;
	int handles_open;
	int spawn_err;
	struct mcall *call;     /* the call it runs (W_BUSY) */
	struct workq_item item;
	struct worker *next;    /* the pool's list */
};

struct mod_pool {
	char *path;
	int module_fd;
	json_t *config;
	unsigned nworkers;
	const struct mod_pool_hooks *hooks;
	void *owner;
	struct worker *workers;
	unsigned alive;         /* workers not yet freed */
	unsigned preparing;     /* calls whose payload is being made on the pool */
	struct mcall *qhead, *qtail;
	unsigned queued;
	bool ready, retired, refused;
	unsigned start_failures;
	uint64_t starts, crashes, kills;
	struct mod_pool *next;  /* mp.pools */
};

static struct {
	bool started;
	struct workq q;
	uv_signal_t sigchld;
	char exe[PATH_MAX];
	struct mod_pool *pools;
	uint64_t next_id;
} mp;

static void spawn_worker(struct mod_pool *p);
static void pump(struct mod_pool *p);
static void worker_lost(struct worker *w);

/* --- Pool bookkeeping ----------------------------------------------------------- */

static void pool_free(struct mod_pool *p)
{
	for (struct mod_pool **pp = &mp.pools; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	if (p->module_fd >= 0)
		close(p->module_fd);
	json_decref(p->config);
	free(p->path);
	free(p);
}

/* A retired pool goes once nothing refers to it any more. */
static void pool_maybe_free(struct mod_pool *p)
{
	if (p->retired && p->alive == 0 && p->preparing == 0)
		pool_free(p);
}

static void call_free(struct mcall *c)
{
	if (c->payload_fd >= 0)
		close(c->payload_fd);
	free(c->text);
	free(c);
}

static void worker_unlink(struct worker *w)
{
	for (struct worker **pp = &w->pool->workers; *pp; pp = &(*pp)->next) {
		if (*pp == w) {
			*pp = w->next;
			return;
		}
	}
}

static void on_handle_closed(uv_handle_t *h)
{
	struct worker *w = h->data;
	struct mod_pool *p = w->pool;

	if (--w->handles_open > 0)
		return;
	free(w);
	p->alive--;
	pool_maybe_free(p);
}

/* Frees a reaped worker (its handles close first). */
static void worker_free(struct worker *w)
{
	struct mod_pool *p = w->pool;

	worker_unlink(w);
	if (w->ctl)
		munmap(w->ctl, sizeof(*w->ctl));
	if (w->child_sock >= 0)
		close(w->child_sock);
	if (w->child_ctl >= 0)
		close(w->child_ctl);
	if (!w->handles_init) {
		free(w);
		p->alive--;
		pool_maybe_free(p);
		return;
	}
	w->handles_open = 2;
	uv_close((uv_handle_t *)&w->poll, on_handle_closed);
	uv_close((uv_handle_t *)&w->kill_timer, on_handle_closed);
}

static void fail_queue(struct mod_pool *p, int code, const char *why)
{
	while (p->qhead) {
		struct mcall *c = p->qhead;
		p->qhead = c->next;
		job_fail(c->job, -code, json_pack("{s:s}", "module", p->path), "module %s: %s", p->path, why);
		call_free(c);
	}
	p->qtail = NULL;
	p->queued = 0;
}

/* Stops a worker that is not running a call. */
static void worker_stop(struct worker *w)
{
	if (w->state == W_DEAD || w->state == W_SPAWNING)
		return;
	if (w->pid > 0 && kill(w->pid, SIGKILL) == 0)
		w->killed = true;
	worker_lost(w);
}

static void refuse(struct mod_pool *p, const char *reason)
{
	if (p->refused)
		return;
	p->refused = true;
	fail_queue(p, KILN_E_INTERNAL, reason);
	for (struct worker *w = p->workers, *next; w; w = next) {
		next = w->next;
		worker_stop(w);
	}
	p->hooks->on_refused(p->owner, reason);
}

/* --- Spawning --------------------------------------------------------------------- */

static int fd_above_floor(int fd)
{
	int moved;

	if (fd < 0 || fd >= FD_FLOOR)
		return fd;
	moved = fcntl(fd, F_DUPFD_CLOEXEC, FD_FLOOR);
	close(fd);
	return moved;
}

/* A minimal environment: nothing of kilnd's configuration or credentials. */
static char **host_env(void)
{
	static const char *const keep[] = { "PATH=", "LANG=", "LC_ALL=", "TZ=", "ASAN_OPTIONS=",
					    "UBSAN_OPTIONS=", "LSAN_OPTIONS=" };
	static char *env[sizeof(keep) / sizeof(keep[0]) + 1];
	size_t n = 0;

	for (char **e = environ; *e; e++)
		for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]) && n + 1 < sizeof(env) / sizeof(env[0]); i++)
			if (strncmp(*e, keep[i], strlen(keep[i])) == 0)
				env[n++] = *e;
	env[n] = NULL;
	return env;
}

/* Spawner thread. */
static void spawn_work(struct workq_item *it)
{
	struct worker *w = workq_entry(it, struct worker, item);
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t all, none;
	char ppid[24];
	char *argv[] = { mp.exe, "--module-host", ppid, NULL };

	snprintf(ppid, sizeof(ppid), "%d", (int)getpid());
	sigfillset(&all);
	sigemptyset(&none);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, 2, 1);
	posix_spawn_file_actions_adddup2(&fa, w->child_sock, MW_FD_SOCK);
	posix_spawn_file_actions_adddup2(&fa, w->pool->module_fd, MW_FD_MODULE);
	posix_spawn_file_actions_adddup2(&fa, w->child_ctl, MW_FD_CTL);
	posix_spawnattr_init(&at);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
	posix_spawnattr_setsigdefault(&at, &all);
	posix_spawnattr_setsigmask(&at, &none);
	w->spawn_err = posix_spawn(&w->pid, mp.exe, &fa, &at, argv, host_env());
	posix_spawnattr_destroy(&at);
	posix_spawn_file_actions_destroy(&fa);
}

static void send_init(struct worker *w)
{
	json_t *init = json_pack("{s:s, s:O, s:I}", "path", w->pool->path, "config", w->pool->config, "out_max",
				 (json_int_t)config_current()->max_attachment_bytes);
	char *text = init ? json_dumps(init, JSON_COMPACT) : NULL;
	struct mw_hdr h = { .type = MW_INIT };

	if (text) {
		h.json_len = strlen(text);
		if (mw_send(w->sock, &h, text, NULL) != 0)
			log_warn("module %s: cannot send init to worker %d", w->pool->path, (int)w->pid);
	}
	free(text);
	json_decref(init);
}

static void on_readable(uv_poll_t *h, int status, int events);
static void reap(struct worker *w);

/* Loop thread, after spawn_work. */
static void spawn_done(struct workq_item *it)
{
	struct worker *w = workq_entry(it, struct worker, item);
	uv_loop_t *loop = uv_default_loop();

	close(w->child_sock);
	close(w->child_ctl);
	w->child_sock = w->child_ctl = -1;
	if (w->spawn_err) {
		log_error("module %s: cannot start a worker: %s", w->pool->path, strerror(w->spawn_err));
		close(w->sock);
		w->sock = -1;
		w->pid = 0;
		w->state = W_DEAD;
		worker_free(w);
		return;
	}
	w->pool->starts++;
	uv_poll_init(loop, &w->poll, w->sock);
	uv_timer_init(loop, &w->kill_timer);
	w->poll.data = w->kill_timer.data = w;
	w->handles_init = true;
	/* Jobs keep the loop alive, not idle workers. */
	uv_unref((uv_handle_t *)&w->poll);
	uv_unref((uv_handle_t *)&w->kill_timer);
	uv_poll_start(&w->poll, UV_READABLE | UV_DISCONNECT, on_readable);
	w->poll_active = true;
	w->state = W_STARTING;
	log_debug("module %s: worker %d started", w->pool->path, (int)w->pid);
	send_init(w);
	/* It may have died before it was watched. */
	reap(w);
}

static int make_ctl(struct worker *w)
{
	int fd = memfd_create("kiln-module-ctl", MFD_CLOEXEC);

	if (fd < 0 || ftruncate(fd, MW_PAGE) != 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	w->ctl = mmap(NULL, sizeof(*w->ctl), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (w->ctl == MAP_FAILED) {
		w->ctl = NULL;
		close(fd);
		return -1;
	}
	w->child_ctl = fd_above_floor(fd);
	return w->child_ctl < 0 ? -1 : 0;
}

static void spawn_worker(struct mod_pool *p)
{
	struct worker *w = calloc(1, sizeof(*w));
	int sv[2];

	if (!w) {
		log_error("module %s: out of memory", p->path);
		return;
	}
	w->pool = p;
	w->sock = w->child_sock = w->child_ctl = -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) != 0) {
		log_error("module %s: socketpair: %s", p->path, strerror(errno));
		free(w);
		return;
	}
	w->sock = sv[0];
	/* The child's end blocks: the host is a plain blocking loop. */
	fcntl(sv[1], F_SETFL, 0);
	w->child_sock = fd_above_floor(sv[1]);
	if (w->child_sock < 0 || make_ctl(w) != 0) {
		log_error("module %s: cannot set up a worker: %s", p->path, strerror(errno));
		close(w->sock);
		if (w->child_sock >= 0)
			close(w->child_sock);
		if (w->ctl)
			munmap(w->ctl, sizeof(*w->ctl));
		free(w);
		return;
	}
	w->state = W_SPAWNING;
	w->next = p->workers;
	p->workers = w;
	p->alive++;
	workq_push(&mp.q, &w->item);
}

/* --- Exits ------------------------------------------------------------------------- */

static void describe_status(int status, char *buf, size_t len, json_t **detail, const char *path)
{
	if (WIFSIGNALED(status)) {
		const char *abbrev = sigabbrev_np(WTERMSIG(status));
		snprintf(buf, len, "was killed by signal %d (SIG%s)", WTERMSIG(status), abbrev ? abbrev : "?");
		*detail = json_pack("{s:s, s:s+, s:i}", "module", path, "signal", "SIG", abbrev ? abbrev : "?",
				    "signal_number", WTERMSIG(status));
	} else {
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
		*detail = json_pack("{s:s, s:i}", "module", path, "exit_status", WEXITSTATUS(status));
	}
}

static void worker_exited(struct worker *w, int status)
{
	struct mod_pool *p = w->pool;
	struct mcall *c = w->call;
	enum wstate was = w->state;
	json_t *detail = NULL;
	char desc[128];

	w->pid = 0;
	if (w->sock >= 0)
		worker_lost(w);
	describe_status(status, desc, sizeof(desc), &detail, p->path);
	w->call = NULL;
	if (c) {
		if (job_cancelled(c->job)) {
			json_decref(detail);
			job_fail(c->job, -job_cancel_reason(c->job), NULL, "cancelled; the worker was stopped");
		} else {
			p->crashes++;
			log_warn("module %s: worker %s running %s; replacing it", p->path, desc, c->action);
			job_fail(c->job, -KILN_E_INTERNAL, detail, "module action %s: its worker process %s", c->action,
				 desc);
		}
		call_free(c);
	} else {
		json_decref(detail);
		if (!w->killed && !p->retired && !p->refused)
			log_warn("module %s: idle worker %s; replacing it", p->path, desc);
	}
	worker_free(w);
	if (p->retired || p->refused) {
		if (!p->workers)
			fail_queue(p, KILN_E_INTERNAL, "the module was unloaded");
		return;
	}
	if (was == W_STARTING && ++p->start_failures >= START_FAILURES_MAX) {
		char why[200];
		snprintf(why, sizeof(why), "its worker %s at start %d times in a row", desc, START_FAILURES_MAX);
		refuse(p, why);
		return;
	}
	spawn_worker(p);
}

static void reap(struct worker *w)
{
	int status;

	if (w->pid > 0 && waitpid(w->pid, &status, WNOHANG) == w->pid)
		worker_exited(w, status);
}

static void on_sigchld(uv_signal_t *s, int signum)
{
	(void)s;
	(void)signum;
	for (struct mod_pool *p = mp.pools; p; p = p->next) {
		for (struct worker *w = p->workers, *next; w; w = next) {
			next = w->next;
			if (w->state != W_SPAWNING)
				reap(w);
		}
	}
}

/* The socket is done (end of stream, error, or we stop the worker). */
static void worker_lost(struct worker *w)
{
	if (w->poll_active) {
		uv_poll_stop(&w->poll);
		w->poll_active = false;
	}
	if (w->sock >= 0) {
		close(w->sock);
		w->sock = -1;
	}
	uv_timer_stop(&w->kill_timer);
	w->state = w->state == W_STARTING || w->state == W_BUSY ? w->state : W_DEAD;
	/* A process that broke the protocol may still be running. */
	if (w->pid > 0 && !w->killed) {
		kill(w->pid, SIGKILL);
		w->killed = w->call == NULL;
	}
}

/* --- Calls ------------------------------------------------------------------------- */

static void on_kill_timer(uv_timer_t *t)
{
	struct worker *w = t->data;

	if (w->state != W_BUSY || w->pid <= 0)
		return;
	log_warn("module %s: %s ignored cancellation for the kill grace; killing worker %d", w->pool->path,
		 w->call->action, (int)w->pid);
	w->pool->kills++;
	w->killed = true;
	kill(w->pid, SIGKILL);
}

static void on_cancel(struct job *job, void *ctx)
{
	struct mcall *c = ctx;
	struct mod_pool *p = c->pool;
	double grace = job_config(job)->module_kill_grace;

	if (c->preparing)
		return; /* payload_done sees the job cancelled */
	if (!c->worker) {
		for (struct mcall **pp = &p->qhead; *pp; pp = &(*pp)->next) {
			if (*pp == c) {
				*pp = c->next;
				break;
			}
		}
		p->qtail = NULL;
		for (struct mcall *q = p->qhead; q; q = q->next)
			p->qtail = q;
		p->queued--;
		job_fail(job, -job_cancel_reason(job), NULL, "cancelled");
		call_free(c);
		return;
	}
	atomic_store(&c->worker->ctl->cancel_id, c->id);
	uv_timer_start(&c->worker->kill_timer, on_kill_timer, (uint64_t)(grace * 1000), 0);
}

static void start_call(struct worker *w, struct mcall *c)
{
	struct mw_hdr h = { .type = MW_CALL, .id = c->id };
	size_t attach_len = 0;
	const unsigned char *attach = job_attachment(c->job, &attach_len);
	int rc;

	h.json_len = strlen(c->text);
	h.attach_len = attach ? attach_len : 0;
	w->call = c;
	c->worker = w;
	w->state = W_BUSY;
	if (c->payload_fd >= 0)
		rc = mw_send_with_memfd(w->sock, &h, c->text, c->payload_fd);
	else
		rc = mw_send(w->sock, &h, c->text, attach);
	if (rc) {
		log_error("module %s: cannot send a call to worker %d: %s", w->pool->path, (int)w->pid,
			  strerror(-rc));
		worker_lost(w);
	}
}

static void pump(struct mod_pool *p)
{
	for (struct worker *w = p->workers; w && p->qhead; w = w->next) {
		struct mcall *c;
		if (w->state != W_IDLE)
			continue;
		c = p->qhead;
		p->qhead = c->next;
		if (!p->qhead)
			p->qtail = NULL;
		p->queued--;
		start_call(w, c);
	}
}

static void enqueue(struct mod_pool *p, struct mcall *c)
{
	if (p->qtail)
		p->qtail->next = c;
	else
		p->qhead = c;
	p->qtail = c;
	p->queued++;
	pump(p);
}

/* Pool thread: copies a big attachment into a memfd, so the loop only
 * passes the descriptor. */
static void payload_work(struct job *job, void *arg)
{
	struct mcall *c = arg;
	size_t len = 0;
	const unsigned char *attach = job_attachment(job, &len);
	void *data;
	int fd = mw_memfd_attachment(len, &data);

	if (fd < 0)
		return;
	memcpy(data, attach, len);
	mw_memfd_unmap(data, len);
	c->payload_fd = fd;
}

static void payload_done(struct job *job, void *arg, int status)
{
	struct mcall *c = arg;
	struct mod_pool *p = c->pool;

	c->preparing = false;
	p->preparing--;
	if (status || job_cancelled(job))
		job_fail(job, -(job_cancelled(job) ? job_cancel_reason(job) : KILN_E_CANCELLED), NULL, "cancelled");
	else if (p->retired || p->refused)
		job_fail(job, -KILN_E_INTERNAL, json_pack("{s:s}", "module", p->path), "module %s was unloaded",
			 p->path);
	else if (c->payload_fd < 0)
		job_fail(job, -KILN_E_INTERNAL, NULL,
			 "module action %s: cannot make shared memory for the attachment", c->action);
	else {
		enqueue(p, c);
		return;
	}
	call_free(c);
	pool_maybe_free(p);
}

void mod_pool_call(struct mod_pool *p, struct job *job, const char *action, json_t *args)
{
	struct mcall *c = calloc(1, sizeof(*c));
	json_t *req = json_pack("{s:s, s:O}", "action", action, "args", args);
	size_t len = 0;

	if (!c || !req || !(c->text = json_dumps(req, JSON_COMPACT))) {
		free(c);
		json_decref(req);
		job_fail(job, -KILN_E_INTERNAL, NULL, "out of memory");
		return;
	}
	json_decref(req);
	c->job = job;
	c->pool = p;
	c->id = ++mp.next_id;
	c->payload_fd = -1;
	snprintf(c->action, sizeof(c->action), "%s", action);
	job_on_cancel(job, on_cancel, c);
	if (job_attachment(job, &len) && len > MW_INLINE_MAX / 2) {
		c->preparing = true;
		p->preparing++;
		if (job_queue_work(job, payload_work, payload_done, c) == 0)
			return;
		c->preparing = false;
		p->preparing--;
	}
	enqueue(p, c);
}

static void finish_call(struct worker *w, struct mw_msg *m)
{
	struct mcall *c = w->call;
	struct job *job = c->job;
	const struct kiln_config *cfg = job_config(job);
	/* The worker is not trusted with kilnd's limits: check them here. */
	bool too_big = m->h.attach_len > cfg->max_attachment_bytes || m->h.json_len > cfg->max_line_bytes;
	json_t *r = too_big ? NULL : json_loads(m->json, 0, NULL);
	json_t *data = json_object_get(r, "data");
	const char *msg = json_string_value(json_object_get(r, "message"));

	w->call = NULL;
	w->state = W_IDLE;
	uv_timer_stop(&w->kill_timer);
	if (job_cancelled(job)) {
		job_fail(job, -job_cancel_reason(job), NULL, "cancelled");
	} else if (too_big) {
		job_fail(job, -KILN_E_TOO_LARGE, json_pack("{s:s}", "limit", m->h.attach_len > cfg->max_attachment_bytes
									 ? "max_attachment_bytes" : "max_line_bytes"),
			 "module action %s: its result exceeds the daemon's limit", c->action);
	} else if (!msg || (m->h.code == 0 && !json_is_object(data))) {
		job_fail(job, -KILN_E_INTERNAL, json_pack("{s:s}", "module", w->pool->path),
			 "module action %s: malformed result from its worker", c->action);
	} else if (m->h.code != 0) {
		int code = m->h.code > 0 && m->h.code < KILN_E_COUNT ? m->h.code : KILN_E_INTERNAL;
		job_fail(job, -code, NULL, "%s", msg);
	} else {
		if (m->h.attach_len) {
			void *att = mw_msg_take_attachment(m);
			if (att) {
				job_set_reply_attachment(job, att, m->h.attach_len, mw_attachment_free);
			} else if ((att = malloc(m->h.attach_len))) {
				memcpy(att, m->attach, m->h.attach_len);
				job_set_reply_attachment(job, att, m->h.attach_len, free);
			}
		}
		job_succeed(job, json_incref(data), "%s", msg);
	}
	json_decref(r);
	call_free(c);
}

static void on_hello(struct worker *w, struct mw_msg *m)
{
	struct mod_pool *p = w->pool;
	json_t *hello = json_loads(m->json, 0, NULL);
	const char *error = json_string_value(json_object_get(hello, "error"));
	char err[512];

	if (!hello || (!error && !json_is_array(json_object_get(hello, "actions")))) {
		json_decref(hello);
		log_error("module %s: worker %d sent a malformed hello", p->path, (int)w->pid);
		worker_lost(w);
		return;
	}
	w->state = W_IDLE;
	p->start_failures = 0;
	if (error) {
		snprintf(err, sizeof(err), "%s", error);
		json_decref(hello);
		refuse(p, err);
		return;
	}
	if (!p->ready && !p->refused && !p->retired) {
		if (p->hooks->on_ready(p->owner, hello, err, sizeof(err)) != 0) {
			json_decref(hello);
			refuse(p, err);
			return;
		}
		p->ready = true;
	}
	json_decref(hello);
}

/* One message from a worker; false when the worker is gone. */
static bool handle_message(struct worker *w, struct mw_msg *m)
{
	if (w->state == W_STARTING && m->h.type == MW_HELLO) {
		on_hello(w, m);
	} else if (w->state == W_BUSY && m->h.type == MW_PROGRESS && m->h.id == w->call->id) {
		job_progress(w->call->job, m->h.a, m->h.b);
	} else if (w->state == W_BUSY && m->h.type == MW_RESULT && m->h.id == w->call->id) {
		finish_call(w, m);
	} else {
		log_error("module %s: worker %d broke the protocol (message %u in state %s); stopping it",
			  w->pool->path, (int)w->pid, m->h.type, wstate_names[w->state]);
		worker_lost(w);
		return false;
	}
	return w->sock >= 0;
}

static void on_readable(uv_poll_t *h, int status, int events)
{
	struct worker *w = h->data;
	struct mod_pool *p = w->pool;
	struct mw_msg m;
	int rc = 0;

	(void)events;
	while (status == 0 && w->sock >= 0 && (rc = mw_recv(w->sock, &m, 1)) == 1) {
		bool alive = handle_message(w, &m);
		mw_msg_free(&m);
		if (!alive)
			break;
	}
	if (w->sock >= 0 && (status < 0 || (rc <= 0 && rc != -EAGAIN))) {
		if (rc < 0 && rc != -EAGAIN)
			log_error("module %s: bad message from worker %d: %s", p->path, (int)w->pid, strerror(-rc));
		worker_lost(w);
	}
	if (w->sock < 0) {
		reap(w);
		return;
	}
	if ((p->retired || p->refused) && !p->qhead && w->state == W_IDLE)
		worker_stop(w);
	else
		pump(p);
}

/* --- Pools -------------------------------------------------------------------------- */

static int proc_start(void)
{
	ssize_t n;

	if (mp.started)
		return 0;
	n = readlink("/proc/self/exe", mp.exe, sizeof(mp.exe) - 1);
	if (n <= 0)
		return -1;
	mp.exe[n] = '\0';
	if (workq_start(&mp.q, uv_default_loop(), 1, spawn_work, spawn_done) != 0)
		return -1;
	uv_signal_init(uv_default_loop(), &mp.sigchld);
	uv_signal_start(&mp.sigchld, on_sigchld, SIGCHLD);
	uv_unref((uv_handle_t *)&mp.sigchld);
	mp.started = true;
	return 0;
}

struct mod_pool *mod_pool_new(const char *path, int module_fd, const json_t *config, unsigned workers,
			      const struct mod_pool_hooks *hooks, void *owner)
{
	struct mod_pool *p;

	if (proc_start() != 0)
		return NULL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->path = strdup(path);
	p->module_fd = fcntl(module_fd, F_DUPFD_CLOEXEC, FD_FLOOR);
	p->config = json_deep_copy(config);
	p->nworkers = workers ? workers : 1;
	p->hooks = hooks;
	p->owner = owner;
	if (!p->path || p->module_fd < 0 || !p->config) {
		pool_free(p);
		return NULL;
	}
	p->next = mp.pools;
	mp.pools = p;
	for (unsigned i = 0; i < p->nworkers; i++)
		spawn_worker(p);
	return p;
}

void mod_pool_retire(struct mod_pool *p)
{
	p->retired = true;
	for (struct worker *w = p->workers, *next; w; w = next) {
		next = w->next;
		if (w->state == W_IDLE || w->state == W_STARTING)
			worker_stop(w);
	}
	pool_maybe_free(p);
}

json_t *mod_pool_stats(const struct mod_pool *p)
{
	json_t *pids = json_array();
	unsigned busy = 0;

	for (const struct worker *w = p->workers; w; w = w->next) {
		if (w->pid > 0 && w->state != W_DEAD && w->state != W_SPAWNING)
			json_array_append_new(pids, json_integer(w->pid));
		busy += w->state == W_BUSY;
	}
	return json_pack("{s:o, s:i, s:i, s:I, s:I, s:I}", "workers", pids, "busy", (int)busy, "queued",
			 (int)p->queued, "starts", (json_int_t)p->starts, "crashes", (json_int_t)p->crashes,
			 "kills", (json_int_t)p->kills);
}

static void kill_all(void)
{
	for (struct mod_pool *p = mp.pools; p; p = p->next) {
		p->retired = true;
		for (struct worker *w = p->workers, *next; w; w = next) {
			int status;
			next = w->next;
			if (w->state == W_SPAWNING)
				continue;
			if (w->pid > 0 && kill(w->pid, SIGKILL) == 0)
				w->killed = true;
			worker_lost(w);
			if (w->pid > 0 && waitpid(w->pid, &status, 0) == w->pid)
				worker_exited(w, status);
		}
	}
}

void mod_proc_release(void)
{
	if (!mp.started)
		return;
	kill_all();
	/* Workers still being spawned come back through spawn_done... */
	workq_stop(&mp.q);
	/* ...and are stopped here. */
	kill_all();
	uv_close((uv_handle_t *)&mp.sigchld, NULL);
	mp.started = false;
}
