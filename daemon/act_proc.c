/*
 * Host procedures (issue 7): a request whose action names a configured
 * procedure runs its argv once per host in host_list, at most max_parallel
 * at once, each attempt a child process that leads its own session and
 * process group (so kill(-pid) reaches every descendant that did not
 * deliberately escape).  No shell is involved: argv goes to execvp as is.
 *
 * Children are started off the loop by spawner threads (see `sp` below) and
 * reaped on SIGCHLD.  This is instead of uv_spawn, whose fork() copies the
 * daemon's page tables and blocks the loop until the child's exec: about
 * 1-3 ms per child, which made 500 hosts miss the 0.7 s goal and stalled
 * every other client meanwhile.
 *
 * An attempt ends when the child has exited and both of its output pipes are
 * closed.  When the child exits, whatever is left of its process group is
 * killed before the leader is reaped (no orphans); pipes still held open by
 * an escaped descendant are closed after DRAIN_MS.  When `timeout` passes, the group
 * gets SIGTERM, then SIGKILL after kill_grace.  A failed attempt is retried
 * up to `retries` times after retry_backoff * 2^(n-1) seconds (capped).
 *
 * The configuration and request checks are act_proc_check.c.
 *
 * Ownership: a run is created by the handler and owned by this file (the
 * `runs` list).  It holds the job until it finishes it; it is freed when it
 * has finished and every libuv handle it opened (host timers and attempts,
 * counted in run->handles) has closed.  An attempt (child + two pipes) is
 * freed when both pipes have closed and the child has been reaped.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "act_proc.h"
#include "action.h"
#include "config.h"
#include "kiln/utf8.h"
#include "kiln/error.h"
#include "log.h"
#include "job.h"
#include "workq.h"

#define DEFAULT_MAX_PARALLEL 16
#define DEFAULT_KILL_GRACE 5.0
#define DEFAULT_BACKOFF 0.2
#define MAX_BACKOFF 5.0
#define DEFAULT_TAIL_BYTES 4096
#define DRAIN_MS 1000
#define READ_BUF 65536
/* Spawner threads: a spawn waits for the child's exec, so two overlap. */
#define SPAWNERS 2

struct spec {
	json_t *argv;     /* borrowed from the job's config */
	json_t *env;
	json_t *ok_codes;
	unsigned max_parallel;
	double kill_grace;
	double backoff;
	size_t tail_bytes;
};

struct tail {
	char *buf;
	size_t len;
};

enum host_state { HS_PENDING, HS_RUNNING, HS_BACKOFF, HS_DONE };

struct run;
struct host;

/* One child process and its stdout/stderr pipes. */
struct attempt {
	uv_pipe_t out, err;
	struct host *h;   /* NULL once the attempt is over */
	struct run *run;
	int open;         /* pipe handles not yet closed */
	int streams;      /* pipes still open */
	bool spawning;    /* queued for, or inside, the spawner thread */
	bool exited;      /* reaped (or never started) */
	pid_t pid;
	struct attempt *live_prev, *live_next; /* started and not yet reaped */
	/* Handed to a spawner thread and back (see spawn_child). */
	struct workq_item qi;
	char **argv, **env;
	int out_w, err_w;
	int spawn_err;
};

struct host {
	struct run *run;
	char *name;
	enum host_state state;
	int attempts;
	uint64_t first_ns;
	uv_timer_t timer;       /* timeout, kill grace, drain and backoff */
	struct attempt *cur;
	bool timed_out;
	bool kill_sent;
	int64_t exit_status;
	int term_signal;
	char error[160];        /* spawn failure or cancellation, else "" */
	struct tail out, err;
};

struct run {
	struct job *job;        /* NULL once finished */
	struct spec spec;
	struct host *hosts;
	size_t n, next, active, ndone, nfailed;
	double timeout;
	int retries;
	int handles;            /* open host timers and attempts */
	bool starting;          /* inside start_more(): no re-entry */
	bool cancelled;
	bool finished;
	json_t *results;        /* data.hosts */
	struct run *prev, *next_run;
};

static struct run *runs;
static uint64_t runs_started; /* procedure requests started since kilnd started */

/*
 * Children are started by threads of our own (a workq) with posix_spawnp (a
 * vfork-style clone: no copy of the daemon's page tables), because even that
 * blocks the caller until the child has called exec, and the loop must never
 * block.  The loop queues an attempt with its argv, env and pipe ends; a
 * thread spawns it and on_spawned() takes it back on the loop.  Children are
 * reaped on SIGCHLD by waitpid on their own pids only.
 */
static struct {
	struct workq q;
	uv_signal_t sigchld;
	struct attempt *live;
	size_t nlive;
} sp;

static void attempt_spawn(struct host *h);
static void attempt_end(struct host *h);
static void start_more(struct run *r);

/* --- Configuration -------------------------------------------------------- */

static double num_or(const json_t *o, const char *key, double def)
{
	json_t *v = json_object_get(o, key);
	return v ? json_number_value(v) : def;
}

static void spec_load(struct spec *s, const json_t *p)
{
	s->argv = json_object_get(p, "argv");
	s->env = json_object_get(p, "env");
	s->ok_codes = json_object_get(p, "success_exit_codes"); /* NULL: [0] */
	s->max_parallel = (unsigned)num_or(p, "max_parallel", DEFAULT_MAX_PARALLEL);
	s->kill_grace = num_or(p, "kill_grace", DEFAULT_KILL_GRACE);
	s->backoff = num_or(p, "retry_backoff", DEFAULT_BACKOFF);
	s->tail_bytes = (size_t)num_or(p, "tail_bytes", DEFAULT_TAIL_BYTES);
}

/* --- Output tails --------------------------------------------------------- */

static void tail_append(struct tail *t, size_t cap, const char *data, size_t n)
{
	if (cap == 0)
		return;
	if (!t->buf && !(t->buf = malloc(cap)))
		return;
	if (n >= cap) {
		memcpy(t->buf, data + n - cap, cap);
		t->len = cap;
		return;
	}
	if (t->len + n > cap) {
		size_t drop = t->len + n - cap;
		memmove(t->buf, t->buf + drop, t->len - drop);
		t->len -= drop;
	}
	memcpy(t->buf + t->len, data, n);
	t->len += n;
}

/* The tail as a JSON string: a character cut at the front is dropped and
 * invalid bytes become U+FFFD, since children may print anything. */
static json_t *tail_json(const struct tail *t)
{
	const char *p = t->buf, *end = p + t->len;
	char *clean;
	size_t n;
	json_t *s;

	while (p < end && (*p & 0xC0) == 0x80 && p - t->buf < 3)
		p++;
	clean = kiln_utf8_scrub(p, (size_t)(end - p), &n);
	if (!clean)
		return json_string("");
	s = json_stringn(clean, n);
	free(clean);
	return s ? s : json_string("");
}

/* --- Handles -------------------------------------------------------------- */

static void run_maybe_free(struct run *r)
{
	if (!r->finished || r->handles > 0)
		return;
	for (size_t i = 0; i < r->n; i++)
		free(r->hosts[i].name);
	free(r->hosts);
	json_decref(r->results);
	free(r);
}

/* An attempt is freed once both pipes are closed and its child is reaped
 * (a child may close its output and live on). */
static void attempt_maybe_free(struct attempt *a)
{
	struct run *r = a->run;

	if (a->open > 0 || !a->exited)
		return;
	free(a);
	r->handles--;
	run_maybe_free(r);
}

static void on_attempt_handle_closed(uv_handle_t *hd)
{
	struct attempt *a = hd->data;

	a->open--;
	attempt_maybe_free(a);
}

static void on_timer_closed(uv_handle_t *hd)
{
	struct host *h = hd->data;
	struct run *r = h->run;

	r->handles--;
	run_maybe_free(r);
}

static void close_stream(struct attempt *a, uv_pipe_t *p)
{
	if (uv_is_closing((uv_handle_t *)p))
		return;
	uv_close((uv_handle_t *)p, on_attempt_handle_closed);
	a->streams--;
}

static void signal_group(struct attempt *a, int sig)
{
	/* Only while the leader is unreaped: its pid, and so the group id,
	 * cannot have been reused. */
	if (a && !a->exited && !a->spawning && a->pid > 0)
		kill(-a->pid, sig);
}

/* --- Finishing ------------------------------------------------------------ */

static void run_finish(struct run *r)
{
	struct job *job = r->job;
	json_t *failed = json_array(), *data;
	const char *result;
	size_t ok = r->ndone - r->nfailed;

	r->finished = true;
	r->job = NULL;
	if (r->prev)
		r->prev->next_run = r->next_run;
	else
		runs = r->next_run;
	if (r->next_run)
		r->next_run->prev = r->prev;
	if (r->cancelled) {
		json_decref(failed);
		job_fail(job, -(job_cancel_reason(job) ? job_cancel_reason(job) : KILN_E_CANCELLED), NULL,
			 "cancelled");
		run_maybe_free(r);
		return;
	}
	for (size_t i = 0; i < r->n; i++) {
		json_t *res = json_object_get(r->results, r->hosts[i].name);
		if (!json_is_true(json_object_get(res, "ok")))
			json_array_append_new(failed, json_string(r->hosts[i].name));
	}
	result = r->nfailed == 0 ? "success" : ok == 0 ? "failure" : "partial";
	data = json_pack("{s:s, s:O}", "procedure", job_action(job), "hosts", r->results);
	if (r->nfailed == 0)
		job_reply(job, result, failed, data, r->n == 1 ? "1 host succeeded" : "all %zu hosts succeeded",
			  r->n);
	else
		job_reply(job, result, failed, data, "%zu of %zu hosts failed", r->nfailed, r->n);
	run_maybe_free(r);
}

static void maybe_finish(struct run *r)
{
	if (!r->finished && !r->starting && r->active == 0 && (r->next == r->n || r->cancelled))
		run_finish(r);
}

static json_t *host_result(struct host *h, bool ok)
{
	json_t *o = json_pack("{s:b, s:i, s:f}", "ok", ok, "attempts", h->attempts, "duration_ms",
			      (double)(uv_hrtime() - h->first_ns) / 1e6);

	if (h->error[0]) {
		/* Built with %.100s, which may cut a UTF-8 character. */
		struct tail t = { h->error, strlen(h->error) };
		json_object_set_new(o, "error", tail_json(&t));
	} else if (h->term_signal) {
		const char *abbrev = sigabbrev_np(h->term_signal);
		char name[32];
		snprintf(name, sizeof(name), "SIG%s", abbrev ? abbrev : "UNKNOWN");
		json_object_set_new(o, "signal", json_string(name));
	} else {
		json_object_set_new(o, "exit_code", json_integer(h->exit_status));
	}
	if (h->timed_out)
		json_object_set_new(o, "timed_out", json_true());
	json_object_set_new(o, "stdout_tail", tail_json(&h->out));
	json_object_set_new(o, "stderr_tail", tail_json(&h->err));
	return o;
}

static void host_done(struct host *h, bool ok)
{
	struct run *r = h->run;
	json_t *res = host_result(h, ok);

	/* The tails are in the result now; 500 hosts need not keep 8 KiB each. */
	free(h->out.buf);
	free(h->err.buf);
	h->out.buf = h->err.buf = NULL;
	h->out.len = h->err.len = 0;
	h->state = HS_DONE;
	uv_close((uv_handle_t *)&h->timer, on_timer_closed);
	r->active--;
	r->ndone++;
	if (!ok)
		r->nfailed++;
	if (job_wants_progress(r->job))
		job_progress_json(r->job, json_pack("{s:I, s:I, s:s, s:b, s:i}", "done", (json_int_t)r->ndone,
						    "total", (json_int_t)r->n, "host", h->name, "ok", ok,
						    "attempts", h->attempts));
	json_object_set_new(r->results, h->name, res);
	log_debug("job %" JSON_INTEGER_FORMAT " %s: host %s %s after %d attempt(s)", job_id(r->job),
		  job_action(r->job), h->name, ok ? "ok" : "failed", h->attempts);
	start_more(r);
	maybe_finish(r);
}

/* --- Timers --------------------------------------------------------------- */

static void on_kill_grace(uv_timer_t *t)
{
	struct host *h = t->data;

	h->kill_sent = true;
	signal_group(h->cur, SIGKILL);
}

static void terminate(struct host *h, double grace)
{
	signal_group(h->cur, SIGTERM);
	uv_timer_start(&h->timer, on_kill_grace, (uint64_t)(grace * 1000), 0);
}

static void on_timeout(uv_timer_t *t)
{
	struct host *h = t->data;

	h->timed_out = true;
	terminate(h, h->run->spec.kill_grace);
}

static void on_drain(uv_timer_t *t)
{
	struct host *h = t->data;

	/* A descendant that left the process group still holds a pipe. */
	if (h->cur) {
		close_stream(h->cur, &h->cur->out);
		close_stream(h->cur, &h->cur->err);
		attempt_end(h);
	}
}

static void on_backoff(uv_timer_t *t)
{
	struct host *h = t->data;

	h->state = HS_RUNNING;
	attempt_spawn(h);
}

/* --- Attempts ------------------------------------------------------------- */

static void alloc_cb(uv_handle_t *hd, size_t suggested, uv_buf_t *buf)
{
	/* The loop thread runs read callbacks one at a time, right after this. */
	static char readbuf[READ_BUF];

	(void)hd;
	(void)suggested;
	*buf = uv_buf_init(readbuf, sizeof(readbuf));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct attempt *a = s->data;
	struct host *h = a->h;

	if (nread > 0 && h) {
		struct tail *t = s == (uv_stream_t *)&a->out ? &h->out : &h->err;
		tail_append(t, h->run->spec.tail_bytes, buf->base, (size_t)nread);
		return;
	}
	if (nread == 0)
		return;
	close_stream(a, (uv_pipe_t *)s);
	if (a->exited && a->streams == 0 && h)
		attempt_end(h);
}

static void live_remove(struct attempt *a)
{
	if (a->live_prev)
		a->live_prev->live_next = a->live_next;
	else
		sp.live = a->live_next;
	if (a->live_next)
		a->live_next->live_prev = a->live_prev;
	sp.nlive--;
}

/* Reaps the attempt's child if it has exited. */
static void reap(struct attempt *a)
{
	struct host *h = a->h;
	siginfo_t info = { 0 };
	int status = -1, rc;

	/* Look without reaping first: while the leader is a zombie its pid is
	 * still the group id, so the kill below cannot hit a stranger. */
	rc = waitid(P_PID, (id_t)a->pid, &info, WEXITED | WNOHANG | WNOWAIT);
	if (rc == 0 && info.si_pid != a->pid)
		return; /* still running */
	if (rc != 0 && errno != ECHILD)
		return;
	if (rc == 0) {
		/* Stragglers of the group would be orphans. */
		kill(-a->pid, SIGKILL);
		if (waitpid(a->pid, &status, 0) != a->pid)
			status = -1;
	}
	a->exited = true;
	live_remove(a);
	if (!h) {
		attempt_maybe_free(a);
		return;
	}
	if (status == -1)
		snprintf(h->error, sizeof(h->error), "lost track of the child process");
	else if (WIFSIGNALED(status))
		h->term_signal = WTERMSIG(status);
	else
		h->exit_status = WEXITSTATUS(status);
	if (a->streams == 0)
		attempt_end(h);
	else
		uv_timer_start(&h->timer, on_drain, DRAIN_MS, 0);
	attempt_maybe_free(a);
}

static void on_sigchld(uv_signal_t *s, int sig)
{
	struct attempt *a, *next;

	(void)s;
	(void)sig;
	for (a = sp.live; a; a = next) {
		next = a->live_next;
		reap(a);
	}
}

static bool exit_ok(const struct host *h)
{
	size_t i;
	json_t *v;

	if (h->error[0] || h->timed_out || h->term_signal)
		return false;
	if (!h->run->spec.ok_codes)
		return h->exit_status == 0;
	json_array_foreach(h->run->spec.ok_codes, i, v) {
		if (json_integer_value(v) == h->exit_status)
			return true;
	}
	return false;
}

static void attempt_end(struct host *h)
{
	struct run *r = h->run;
	bool ok = exit_ok(h);

	uv_timer_stop(&h->timer);
	if (h->cur)
		h->cur->h = NULL;
	h->cur = NULL;
	if (!ok && !r->cancelled && h->attempts <= r->retries) {
		double delay = r->spec.backoff * (double)(1u << (h->attempts - 1 < 10 ? h->attempts - 1 : 10));
		if (delay > MAX_BACKOFF)
			delay = MAX_BACKOFF;
		h->state = HS_BACKOFF;
		uv_timer_start(&h->timer, on_backoff, (uint64_t)(delay * 1000), 0);
		return;
	}
	if (r->cancelled && !h->error[0])
		snprintf(h->error, sizeof(h->error), "cancelled");
	host_done(h, ok);
}

/* Replaces {host}, {timeout}, {attempt} and {job_id} in one argument. */
static char *substitute(const char *tmpl, const struct host *h)
{
	char timeout[32], attempt[16], jobid[32];
	const char *names[] = { "{host}", "{timeout}", "{attempt}", "{job_id}" };
	const char *vals[] = { h->name, timeout, attempt, jobid };
	char *out;
	size_t cap = strlen(tmpl) + 1, n = 0;

	snprintf(timeout, sizeof(timeout), "%g", h->run->timeout);
	snprintf(attempt, sizeof(attempt), "%d", h->attempts);
	snprintf(jobid, sizeof(jobid), "%" JSON_INTEGER_FORMAT, job_id(h->run->job));
	for (const char *p = tmpl; *p; p++)
		if (*p == '{')
			cap += 256 + strlen(h->name);
	out = malloc(cap);
	if (!out)
		return NULL;
	while (*tmpl) {
		size_t k;
		for (k = 0; k < 4; k++)
			if (strncmp(tmpl, names[k], strlen(names[k])) == 0)
				break;
		if (k < 4) {
			n += (size_t)sprintf(out + n, "%s", vals[k]);
			tmpl += strlen(names[k]);
		} else {
			out[n++] = *tmpl++;
		}
	}
	out[n] = '\0';
	return out;
}

static void free_strv(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

/* The child's environment: PATH and HOME of the daemon (ssh needs HOME for
 * its keys) plus the procedure's env, nothing else of ours. */
static char **build_env(const struct host *h)
{
	const json_t *env = h->run->spec.env;
	size_t n = 0, cap = json_object_size(env) + 3;
	char **v = calloc(cap, sizeof(char *));
	const char *key;
	json_t *val;

	if (!v)
		return NULL;
	if (asprintf(&v[n++], "PATH=%s", getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin") < 0)
		goto fail;
	if (getenv("HOME") && asprintf(&v[n++], "HOME=%s", getenv("HOME")) < 0)
		goto fail;
	json_object_foreach((json_t *)env, key, val) {
		char *s = substitute(json_string_value(val), h);
		if (!s || asprintf(&v[n++], "%s=%s", key, s) < 0) {
			free(s);
			goto fail;
		}
		free(s);
	}
	return v;
fail:
	v[n > 0 ? n - 1 : 0] = NULL;
	free_strv(v);
	return NULL;
}

static char **build_argv(const struct host *h)
{
	const json_t *argv = h->run->spec.argv;
	size_t n = json_array_size(argv);
	char **v = calloc(n + 1, sizeof(char *));

	if (!v)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		v[i] = substitute(json_string_value(json_array_get(argv, i)), h);
		if (!v[i]) {
			free_strv(v);
			return NULL;
		}
	}
	return v;
}

/* The attempt could not start: its pipes close, the host moves on. */
static void spawn_failed(struct host *h, struct attempt *a, const char *what)
{
	snprintf(h->error, sizeof(h->error), "%s", what);
	a->exited = true;
	a->h = NULL;
	close_stream(a, &a->out);
	close_stream(a, &a->err);
	attempt_end(h);
}

/* Spawner thread: starts one child, leaving 0 or an errno value in
 * a->spawn_err. */
static void spawn_child(struct workq_item *it)
{
	struct attempt *a = workq_entry(it, struct attempt, qi);
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t all, none;

	sigfillset(&all);
	sigemptyset(&none);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, a->out_w, 1);
	posix_spawn_file_actions_adddup2(&fa, a->err_w, 2);
	posix_spawnattr_init(&at);
	/* A new session, so the whole group can be signalled; default signal
	 * handling (kilnd ignores SIGPIPE) and an empty mask. */
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
	posix_spawnattr_setsigdefault(&at, &all);
	posix_spawnattr_setsigmask(&at, &none);
	a->spawn_err = posix_spawnp(&a->pid, a->argv[0], &fa, &at, a->argv, a->env);
	posix_spawnattr_destroy(&at);
	posix_spawn_file_actions_destroy(&fa);
	close(a->out_w);
	close(a->err_w);
}

/* Loop thread: one attempt back from a spawner thread. */
static void on_spawned(struct workq_item *it)
{
	struct attempt *a = workq_entry(it, struct attempt, qi);
	struct host *h = a->h;

	a->spawning = false;
	free_strv(a->env);
	a->env = NULL;
	if (a->spawn_err) {
		char what[sizeof(h->error)];
		snprintf(what, sizeof(what), "cannot run %.100s: %s", a->argv[0], strerror(a->spawn_err));
		free_strv(a->argv);
		a->argv = NULL;
		spawn_failed(h, a, what);
		return;
	}
	free_strv(a->argv);
	a->argv = NULL;
	a->live_next = sp.live;
	if (sp.live)
		sp.live->live_prev = a;
	sp.live = a;
	sp.nlive++;
	uv_read_start((uv_stream_t *)&a->out, alloc_cb, on_read);
	uv_read_start((uv_stream_t *)&a->err, alloc_cb, on_read);
	uv_timer_start(&h->timer, on_timeout, (uint64_t)(h->run->timeout * 1000), 0);
	if (h->run->cancelled)
		terminate(h, h->run->spec.kill_grace);
	/* It may have exited before it was on the live list. */
	reap(a);
}

static int spawner_start(uv_loop_t *loop)
{
	if (sp.q.started)
		return 0;
	if (workq_start(&sp.q, loop, SPAWNERS, spawn_child, on_spawned) != 0)
		return -1;
	uv_signal_init(loop, &sp.sigchld);
	uv_signal_start(&sp.sigchld, on_sigchld, SIGCHLD);
	/* It does not keep the loop alive: runs in progress hold their jobs. */
	uv_unref((uv_handle_t *)&sp.sigchld);
	return 0;
}

/* The family's release hook: once no job is left at shutdown, stops the
 * spawner threads and closes their loop handles, so the loop can end. */
static void proc_release(void)
{
	if (!sp.q.started)
		return;
	workq_stop(&sp.q);
	uv_close((uv_handle_t *)&sp.sigchld, NULL);
}

static void start_failed(struct host *h, struct attempt *a, const char *why)
{
	char what[sizeof(h->error)];

	snprintf(what, sizeof(what), "cannot start a child: %s", why);
	free_strv(a->argv);
	free_strv(a->env);
	a->argv = a->env = NULL;
	spawn_failed(h, a, what);
}

static void attempt_spawn(struct host *h)
{
	struct run *r = h->run;
	uv_loop_t *loop = job_loop(r->job);
	struct attempt *a = calloc(1, sizeof(*a));
	int po[2] = { -1, -1 }, pe[2] = { -1, -1 };

	h->attempts++;
	h->timed_out = h->kill_sent = false;
	h->exit_status = 0;
	h->term_signal = 0;
	h->error[0] = '\0';
	h->out.len = h->err.len = 0;
	if (!a) {
		snprintf(h->error, sizeof(h->error), "out of memory");
		attempt_end(h);
		return;
	}
	a->h = h;
	a->run = r;
	uv_pipe_init(loop, &a->out, 0);
	uv_pipe_init(loop, &a->err, 0);
	a->out.data = a->err.data = a;
	a->open = 2;
	a->streams = 2;
	r->handles++;
	h->cur = a;
	a->argv = build_argv(h);
	a->env = build_env(h);
	if (!a->argv || !a->env || spawner_start(loop) != 0) {
		start_failed(h, a, "out of memory or threads");
		return;
	}
	if (pipe2(po, O_CLOEXEC) != 0 || pipe2(pe, O_CLOEXEC) != 0) {
		int err = errno;
		for (int i = 0; i < 2; i++) {
			if (po[i] >= 0)
				close(po[i]);
			if (pe[i] >= 0)
				close(pe[i]);
		}
		start_failed(h, a, strerror(err));
		return;
	}
	/* On a fresh pipe this only sets O_NONBLOCK; from here the handles
	 * own the read ends. */
	if (uv_pipe_open(&a->out, po[0]) != 0)
		close(po[0]);
	if (uv_pipe_open(&a->err, pe[0]) != 0)
		close(pe[0]);
	a->out_w = po[1];
	a->err_w = pe[1];
	a->spawning = true;
	workq_push(&sp.q, &a->qi);
}

static void host_start(struct host *h)
{
	struct run *r = h->run;

	h->state = HS_RUNNING;
	h->first_ns = uv_hrtime();
	uv_timer_init(job_loop(r->job), &h->timer);
	h->timer.data = h;
	r->handles++;
	r->active++;
	attempt_spawn(h);
}

static void start_more(struct run *r)
{
	if (r->starting)
		return;
	r->starting = true;
	while (!r->cancelled && r->next < r->n && r->active < r->spec.max_parallel)
		host_start(&r->hosts[r->next++]);
	r->starting = false;
}

/* --- Cancellation --------------------------------------------------------- */

static void run_cancel(struct run *r, double grace)
{
	r->cancelled = true;
	for (size_t i = 0; i < r->next; i++) {
		struct host *h = &r->hosts[i];
		if (h->state == HS_BACKOFF) {
			snprintf(h->error, sizeof(h->error), "cancelled");
			host_done(h, false);
		} else if (h->state == HS_RUNNING && h->cur && !h->cur->exited && !h->cur->spawning &&
			   !h->kill_sent) {
			terminate(h, grace);
		}
	}
	maybe_finish(r);
}

static void on_job_cancel(struct job *job, void *ctx)
{
	struct run *r = ctx;

	(void)job;
	if (!r->finished)
		run_cancel(r, r->spec.kill_grace);
}

/* The family's stop hook: cancels every procedure run, so children get
 * SIGTERM now and SIGKILL after min(kill_grace, shutdown_grace). */
static void proc_stop_all(void)
{
	const struct kiln_config *cfg = config_current();
	struct run *r, *next;

	for (r = runs; r; r = next) {
		/* A run's job is unfinished, so it was answered only if cancelled. */
		bool was_answered = job_cancel_reason(r->job) != 0;
		next = r->next_run;
		/* The daemon must be gone within the shutdown grace period. */
		if (cfg && cfg->shutdown_grace < r->spec.kill_grace)
			r->spec.kill_grace = cfg->shutdown_grace;
		/* job_cancel answers the client and calls on_job_cancel, unless
		 * the job was already answered (cancelled earlier, with the
		 * longer grace): then shorten the grace here. */
		job_cancel(r->job, KILN_E_CANCELLED);
		if (was_answered)
			run_cancel(r, r->spec.kill_grace);
	}
}

/* --- The handler ---------------------------------------------------------- */

static void act_procedure(struct job *job, json_t *args)
{
	const json_t *p = proc_get(job_config(job), job_action(job));
	json_t *hosts = job_host_list(job);
	struct run *r = calloc(1, sizeof(*r));
	size_t i;

	(void)args;
	if (!r || !(r->hosts = calloc(json_array_size(hosts), sizeof(struct host)))) {
		free(r);
		job_fail(job, -KILN_E_INTERNAL, NULL, "out of memory");
		return;
	}
	r->job = job;
	spec_load(&r->spec, p);
	r->n = json_array_size(hosts);
	r->timeout = job_timeout(job);
	r->retries = job_retries(job);
	r->results = json_object();
	for (i = 0; i < r->n; i++) {
		r->hosts[i].run = r;
		r->hosts[i].name = strdup(json_string_value(json_array_get(hosts, i)));
		if (!r->hosts[i].name)
			fatal("out of memory");
	}
	r->next_run = runs;
	if (runs)
		runs->prev = r;
	runs = r;
	runs_started++;
	job_on_cancel(job, on_job_cancel, r);
	start_more(r);
	maybe_finish(r);
}

static const struct action proc_action = {
	"procedure", "Runs a configured procedure on every host of host_list.", NULL, NULL, act_procedure,
	ACTION_HOSTS | ACTION_OWN_TIMEOUT,
};

/* The family's lookup hook: the action that runs procedure `name`. */
static const struct action *proc_lookup(const struct kiln_config *cfg, const char *name)
{
	return proc_get(cfg, name) ? &proc_action : NULL;
}

/* The family's describe hook: one entry per configured procedure the peer
 * may run (every one for peer NULL). */
static void proc_describe(const struct kiln_config *cfg, const struct kiln_peer *peer, json_t *list)
{
	const char *name;
	json_t *p;

	if (!cfg)
		return;
	json_object_foreach(cfg->procedures, name, p) {
		struct spec s;
		const json_t *desc = json_object_get(p, "description");
		json_t *codes;
		if (name[0] == '#' || (peer && !proc_peer_may_run(p, peer)))
			continue;
		spec_load(&s, p);
		codes = s.ok_codes ? json_incref(s.ok_codes) : json_pack("[i]", 0);
		json_array_append_new(
			list,
			json_pack("{s:s, s:s, s:s, s:{s:s, s:b}, s:{s:s}, s:b, s:{s:O, s:i, s:o, s:f, s:f, s:I, s:b}}",
				  "name", name, "family", "proc", "summary",
				  desc ? json_string_value(desc) : "configured host procedure", "args", "type",
				  "object", "additionalProperties", 0, "data", "type", "object", "hosts", 1,
				  "procedure", "argv", s.argv, "max_parallel", (int)s.max_parallel,
				  "success_exit_codes", codes, "kill_grace", s.kill_grace, "retry_backoff",
				  s.backoff, "tail_bytes", (json_int_t)s.tail_bytes, "restricted",
				  json_array_size(json_object_get(p, "allowed_uids")) +
						  json_array_size(json_object_get(p, "allowed_gids")) >
					  0));
	}
}

/* --- Family --------------------------------------------------------------- */

static void proc_stats(json_t *into)
{
	size_t n = 0;

	for (struct run *r = runs; r; r = r->next_run)
		n++;
	/* procedure_runs counts (like requests_served); the gauge is _active. */
	json_object_set_new(into, "procedure_runs", json_integer((json_int_t)runs_started));
	json_object_set_new(into, "procedure_runs_active", json_integer((json_int_t)n));
	json_object_set_new(into, "procedure_children", json_integer((json_int_t)sp.nlive));
}

const struct action_family family_proc = {
	.name = "proc",
	.actions = NULL,
	.count = 0,
	.check_config = proc_check_config,
	.lookup = proc_lookup,
	.prepare = proc_prepare,
	.describe = proc_describe,
	.stop = proc_stop_all,
	.release = proc_release,
	.stats = proc_stats,
};
