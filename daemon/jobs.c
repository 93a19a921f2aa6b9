/*
 * The registry of detached jobs and its state directory (see jobs.h).
 *
 * Records are kept in creation order on one list.  Expired records are
 * swept whenever the registry is used (a new detached job, job.status,
 * job.list, ...) and at startup, so no timer keeps the loop alive.
 *
 * Persistence.  Record files are written by one writer thread of our own
 * (a workq), not the libuv pool, whose threads long CPU jobs may hold for
 * minutes.  The loop thread queues snapshots (path + JSON document, or NULL
 * to unlink) and never waits for the disk; the writer also serializes the
 * document, which for a finished job holds its whole reply (a detached
 * render's attachment, base64).  The document shares the record's reply:
 * that reply is never changed once stored, and jansson's reference counts
 * are atomic (JANSSON_THREAD_SAFE_REFCOUNT), so both threads may read it.
 * A snapshot for a path already queued replaces the queued one, so each
 * file gets its newest content, in order.  At shutdown the writer drains the
 * queue before the daemon exits.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "creds.h"
#include "envelope.h"
#include "jobs.h"
#include "kiln/error.h"
#include "log.h"
#include "job_owner.h"
#include "workq.h"

enum rec_state { REC_RUNNING, REC_FINISHED, REC_INTERRUPTED };

static const char *const state_names[] = { "running", "finished", "interrupted" };

struct jobs_waiter {
	struct jobrec *rec;
	void (*fn)(void *ctx, struct jobrec *r);
	void *ctx;
	struct jobs_waiter *prev, *next;
};

struct jobrec {
	json_int_t handle;
	uid_t uid;
	gid_t gid;
	char *action;
	json_int_t job_id;          /* the client's job_id of the request */
	enum rec_state state;
	double created, finished;   /* wall-clock seconds */
	struct job *job;            /* while running */
	json_t *reply;              /* final ProcedureOutput, once finished */
	size_t bytes;               /* its size as JSON (max_detached_record_bytes_per_uid) */
	json_t *progress;           /* the last progress object, if any */
	struct jobs_waiter *waiters;
	struct jobrec *prev, *next;
};

/* A queued file update; owned by the writer queue until written_one()
 * frees it on the loop.  done(ctx), if set, runs then: that is how
 * "accepted" waits for the record on disk. */
struct write_req {
	struct workq_item qi;
	char *path;
	json_t *doc;                /* NULL: unlink the file */
	jobs_durable_fn done;
	void *done_ctx;
	json_int_t handle;
	int rc;                     /* writer thread: 0 or -1 with err */
	char err[200];
};

static struct {
	struct jobrec *head, *tail;
	size_t count;
	json_int_t next_handle;
	char *dir;                  /* NULL: memory only */
} reg;

static struct workq writer;

static double wall_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The owner's, and every one for admins (root, admin_uids, admin_gids). */
static bool visible(const struct jobrec *r, const struct kiln_peer *peer)
{
	return peer->uid == r->uid || creds_is_admin(config_current(), peer);
}

/* --- Files ---------------------------------------------------------------- */

static char *rec_path(json_int_t handle)
{
	char *p;
	if (asprintf(&p, "%s/job-%" JSON_INTEGER_FORMAT ".json", reg.dir, handle) < 0)
		fatal("out of memory");
	return p;
}

/* The file's content: the record as job.status shows it, plus the gid.
 * load_one() reads it back. */
static json_t *rec_file_json(const struct jobrec *r)
{
	json_t *o = jobs_record_json(r, true);

	json_object_set_new(o, "gid", json_integer((json_int_t)r->gid));
	return o;
}

/* Writes `text` to `path` so that a crash leaves either the old or the new
 * file: temp file, fsync, rename, fsync of the directory.  Any thread. */
static int write_atomic(const char *path, const char *text, char *err, size_t errlen)
{
	char tmp[PATH_MAX];
	size_t len = strlen(text), off = 0;
	int fd, dfd;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		goto fail;
	while (off < len) {
		ssize_t n = write(fd, text + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			close(fd);
			goto fail_unlink;
		}
		off += (size_t)n;
	}
	if (fsync(fd) != 0) {
		close(fd);
		goto fail_unlink;
	}
	if (close(fd) != 0 || rename(tmp, path) != 0)
		goto fail_unlink;
	dfd = open(reg.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return 0;
fail_unlink:
	snprintf(err, errlen, "%.100s: %s", tmp, strerror(errno));
	unlink(tmp);
	return -1;
fail:
	snprintf(err, errlen, "%.100s: %s", tmp, strerror(errno));
	return -1;
}

/* Writer thread. */
static void write_one(struct workq_item *it)
{
	struct write_req *w = workq_entry(it, struct write_req, qi);
	char err[200], *text;

	if (!w->doc) {
		if (unlink(w->path) != 0 && errno != ENOENT)
			log_warn("job record %.100s: %s", w->path, strerror(errno));
		return;
	}
	text = json_dumps(w->doc, JSON_COMPACT);
	if (!text) {
		w->rc = -1;
		snprintf(w->err, sizeof(w->err), "out of memory");
	} else if (write_atomic(w->path, text, err, sizeof(err)) != 0) {
		w->rc = -1;
		snprintf(w->err, sizeof(w->err), "%s", err);
	}
	if (w->rc)
		log_warn("job record %" JSON_INTEGER_FORMAT ": %s", w->handle, w->err);
	free(text);
}

static void rec_free(struct jobrec *r)
{
	free(r->action);
	json_decref(r->reply);
	json_decref(r->progress);
	free(r);
}

/* Loop thread: a record file is written (or not: then it was logged). */
static void written_one(struct workq_item *it)
{
	struct write_req *w = workq_entry(it, struct write_req, qi);

	if (w->done)
		w->done(w->done_ctx, w->handle, w->rc ? w->err : NULL);
	json_decref(w->doc);
	free(w->path);
	free(w);
}

/* A newer state of a record still queued replaces the older one; a pending
 * done() then waits for the newer write.  Called with the queue locked. */
static bool merge_queued(struct workq_item *it, void *ctx)
{
	struct write_req *q = workq_entry(it, struct write_req, qi), *w = ctx;

	if (strcmp(q->path, w->path) != 0 || (w->done && q->done))
		return false;
	json_decref(q->doc);
	q->doc = w->doc;
	w->doc = NULL;
	if (w->done) {
		q->done = w->done;
		q->done_ctx = w->done_ctx;
	}
	return true;
}

/* Queues the record's current content, or with `remove` the unlink of its
 * file.  done(ctx), if given, runs on the loop once the file is written (at
 * once without a state directory). */
static void persist_then(const struct jobrec *r, bool remove, jobs_durable_fn done, void *ctx)
{
	struct write_req *w;

	if (!reg.dir) {
		if (done)
			done(ctx, r->handle, NULL);
		return;
	}
	w = calloc(1, sizeof(*w));
	if (!w)
		fatal("out of memory");
	w->path = rec_path(r->handle);
	w->doc = remove ? NULL : rec_file_json(r);
	w->done = done;
	w->done_ctx = ctx;
	w->handle = r->handle;
	if (workq_find_queued(&writer, merge_queued, w)) {
		free(w->path);
		free(w);
		return;
	}
	workq_push(&writer, &w->qi);
}

static void persist(const struct jobrec *r, bool remove)
{
	persist_then(r, remove, NULL, NULL);
}

/* --- Registry ------------------------------------------------------------- */

static void rec_append(struct jobrec *r)
{
	r->prev = reg.tail;
	if (reg.tail)
		reg.tail->next = r;
	else
		reg.head = r;
	reg.tail = r;
	reg.count++;
}

static void rec_remove(struct jobrec *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		reg.head = r->next;
	if (r->next)
		r->next->prev = r->prev;
	else
		reg.tail = r->prev;
	reg.count--;
	persist(r, true);
	rec_free(r);
}

static void sweep(void)
{
	const struct kiln_config *cfg = config_current();
	double cutoff = wall_now() - (cfg ? cfg->job_retention : 86400);
	struct jobrec *r, *next;

	for (r = reg.head; r; r = next) {
		next = r->next;
		if (r->state != REC_RUNNING && !r->waiters && r->finished <= cutoff)
			rec_remove(r);
	}
}

/* --- The registry as the owner of a detached job -------------------------- */

/* Bytes of the finished records uid keeps, and its running jobs. */
static size_t stored_bytes(uid_t uid)
{
	size_t n = 0;

	for (struct jobrec *r = reg.head; r; r = r->next)
		if (r->uid == uid && r->state != REC_RUNNING)
			n += r->bytes;
	return n;
}

static unsigned running_count(uid_t uid)
{
	unsigned n = 0;

	for (struct jobrec *r = reg.head; r; r = r->next)
		n += r->uid == uid && r->state == REC_RUNNING;
	return n;
}

/* A reply that would take its owner past max_detached_record_bytes_per_uid
 * is not kept: the record holds a too_large error instead. */
static void keep_within_limit(struct jobrec *r)
{
	size_t limit = config_current()->max_detached_record_bytes_per_uid;
	size_t have = stored_bytes(r->uid);

	if (have + r->bytes <= limit)
		return;
	json_t *id = json_object_get(r->reply, "job_id");
	json_int_t jid = json_integer_value(id);
	char msg[200];

	snprintf(msg, sizeof(msg), "the reply (%zu bytes) was not kept: uid %u keeps %zu bytes of records "
		 "(max_detached_record_bytes_per_uid %zu)", r->bytes, (unsigned)r->uid, have, limit);
	json_t *err = envelope_error_object(KILN_E_TOO_LARGE,
					   config_limit_detail(config_current(), "max_detached_record_bytes_per_uid"));
	struct reply rep = { "error", msg, NULL, NULL, err };
	json_decref(r->reply);
	r->reply = envelope_reply_json(id ? &jid : NULL, &rep, NULL, 0, NULL);
	json_decref(err);
	r->bytes = json_dumpb(r->reply, NULL, 0, JSON_COMPACT);
}

int jobs_detach_allowed(const struct kiln_peer *peer, json_t **detail, char *msg, size_t msglen)
{
	const struct kiln_config *cfg = config_current();

	sweep();
	if (running_count(peer->uid) >= cfg->max_detached_per_uid) {
		snprintf(msg, msglen, "uid %u has %u detached jobs running (max_detached_per_uid)",
			 (unsigned)peer->uid, cfg->max_detached_per_uid);
		*detail = config_limit_detail(cfg, "max_detached_per_uid");
		return -KILN_E_BUSY;
	}
	if (stored_bytes(peer->uid) >= cfg->max_detached_record_bytes_per_uid) {
		snprintf(msg, msglen, "uid %u keeps %zu bytes of detached-job records "
			 "(max_detached_record_bytes_per_uid); fetch or let them expire first",
			 (unsigned)peer->uid, stored_bytes(peer->uid));
		*detail = config_limit_detail(cfg, "max_detached_record_bytes_per_uid");
		return -KILN_E_TOO_LARGE;
	}
	return 0;
}

static void rec_on_reply(void *owner, struct job *job, const struct reply *rep, void *attach,
			 size_t attach_len, void (*attach_free)(void *))
{
	struct jobrec *r = owner;
	struct jobs_waiter *w, *next;
	json_int_t id = job_id(job);

	/* Nobody is there to take raw bytes: they stay in the record, as
	 * "raw_b64" (the encoder puts them there). */
	r->reply = envelope_reply_json(&id, rep, attach, attach_len, attach_free);
	r->bytes = json_dumpb(r->reply, NULL, 0, JSON_COMPACT);
	keep_within_limit(r);
	/* Answered: the record is done with the job, whatever the job still
	 * does (a cancelled handler may run on), and may be swept before the
	 * job is freed. */
	job_set_owner(job, NULL, NULL);
	r->state = REC_FINISHED;
	r->finished = wall_now();
	persist(r, false);
	w = r->waiters;
	r->waiters = NULL;
	for (; w; w = next) {
		next = w->next;
		w->rec = NULL;
		w->fn(w->ctx, r);
		free(w);
	}
}

static void rec_on_progress(void *owner, struct job *job, json_t *progress)
{
	struct jobrec *r = owner;

	(void)job;
	json_decref(r->progress);
	r->progress = json_incref(progress);
}

static void rec_on_release(void *owner, struct job *job)
{
	struct jobrec *r = owner;

	(void)job;
	r->job = NULL;
}

static struct job *rec_find(void *owner, json_int_t id)
{
	(void)owner;
	(void)id;
	return NULL;
}

static const struct job_owner_ops rec_owner = {
	.reply = rec_on_reply,
	.progress = rec_on_progress,
	.release = rec_on_release,
	.find = rec_find,
};

/* A job waiting for its first record to be durable. */
struct pending_detach {
	struct job *job;
	jobs_durable_fn durable;
	void *ctx;
};

static struct jobrec *find_handle(json_int_t handle)
{
	for (struct jobrec *r = reg.head; r; r = r->next)
		if (r->handle == handle)
			return r;
	return NULL;
}

/* The first record is on disk (the job becomes the registry's) or could
 * not be written (the record is dropped; the job stays with its
 * connection, which fails it). */
static void first_written(void *arg, json_int_t handle, const char *error)
{
	struct pending_detach *p = arg;
	struct jobrec *r = find_handle(handle);

	if (error || !r) {
		if (r) {
			r->job = NULL;
			rec_remove(r);
		}
		p->durable(p->ctx, handle, error ? error : "the record was dropped");
	} else {
		/* Its replies come here from now on; the connection lets it go. */
		job_set_owner(p->job, &rec_owner, r);
		p->durable(p->ctx, handle, NULL);
	}
	free(p);
}

json_int_t jobs_detach(struct job *job, jobs_durable_fn durable, void *ctx)
{
	struct jobrec *r = calloc(1, sizeof(*r));
	struct pending_detach *p = malloc(sizeof(*p));
	const struct kiln_peer *peer = job_peer(job);

	if (!r || !p || !(r->action = strdup(job_action(job)))) {
		free(r);
		free(p);
		return 0;
	}
	sweep();
	r->handle = reg.next_handle++;
	r->uid = peer->uid;
	r->gid = peer->gid;
	r->job_id = job_id(job);
	r->state = REC_RUNNING;
	r->created = wall_now();
	rec_append(r);
	r->job = job;
	log_debug("job %" JSON_INTEGER_FORMAT " %s detached as %" JSON_INTEGER_FORMAT, r->job_id, r->action,
		  r->handle);
	*p = (struct pending_detach){ job, durable, ctx };
	persist_then(r, false, first_written, p);
	return r->handle;
}

void jobs_cancel_running(void)
{
	for (struct jobrec *r = reg.head; r; r = r->next)
		if (r->job)
			job_cancel(r->job, KILN_E_CANCELLED);
}

struct jobrec *jobs_find(json_int_t handle, const struct kiln_peer *peer)
{
	sweep();
	for (struct jobrec *r = reg.head; r; r = r->next)
		if (r->handle == handle)
			return visible(r, peer) ? r : NULL;
	return NULL;
}

json_t *jobs_record_json(const struct jobrec *r, bool with_reply)
{
	json_t *o = json_pack("{s:I, s:s, s:I, s:s, s:f, s:I}", "job", r->handle, "action", r->action,
			      "job_id", r->job_id, "state", state_names[r->state], "created", r->created,
			      "uid", (json_int_t)r->uid);

	if (r->state == REC_RUNNING) {
		if (r->progress)
			json_object_set(o, "progress", r->progress);
		return o;
	}
	json_object_set_new(o, "finished", json_real(r->finished));
	json_object_set(o, "result", json_object_get(r->reply, "result"));
	if (with_reply)
		json_object_set(o, "reply", r->reply);
	return o;
}

bool jobs_running(const struct jobrec *r)
{
	return r->state == REC_RUNNING;
}

bool jobs_cancel(struct jobrec *r)
{
	if (!r->job)
		return false;
	job_cancel(r->job, KILN_E_CANCELLED);
	return true;
}

json_t *jobs_list(const struct kiln_peer *peer)
{
	json_t *list = json_array();

	sweep();
	for (struct jobrec *r = reg.head; r; r = r->next)
		if (visible(r, peer))
			json_array_append_new(list, jobs_record_json(r, false));
	return list;
}

size_t jobs_count(void)
{
	return reg.count;
}

struct jobs_waiter *jobs_wait(struct jobrec *r, void (*fn)(void *ctx, struct jobrec *r), void *ctx)
{
	struct jobs_waiter *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->rec = r;
	w->fn = fn;
	w->ctx = ctx;
	w->next = r->waiters;
	if (w->next)
		w->next->prev = w;
	r->waiters = w;
	return w;
}

void jobs_unwait(struct jobs_waiter *w)
{
	struct jobrec *r = w->rec;

	if (r) {
		if (w->prev)
			w->prev->next = w->next;
		else
			r->waiters = w->next;
		if (w->next)
			w->next->prev = w->prev;
	}
	free(w);
}

/* --- Startup and shutdown ------------------------------------------------- */

static char *state_dir(const struct kiln_config *cfg)
{
	const char *env = getenv("STATE_DIRECTORY");
	char *d = NULL;

	if (cfg->state_dir && cfg->state_dir[0])
		d = strdup(cfg->state_dir);
	else if (env && *env) /* systemd may list several, separated by ':' */
		d = strndup(env, strcspn(env, ":"));
	if (!d && ((cfg->state_dir && cfg->state_dir[0]) || (env && *env)))
		fatal("out of memory");
	return d;
}

static json_int_t int_of(const json_t *o, const char *key, json_int_t def)
{
	json_t *v = json_object_get(o, key);
	return json_is_integer(v) ? json_integer_value(v) : def;
}

/* Loads one record file; returns the record or NULL (then the file is left
 * alone, and logged). */
static struct jobrec *load_one(const char *path)
{
	json_error_t jerr;
	json_t *o = json_load_file(path, 0, &jerr), *reply;
	struct jobrec *r;
	const char *state, *action;

	if (!o) {
		log_warn("job record %s: %s", path, jerr.text);
		return NULL;
	}
	state = json_string_value(json_object_get(o, "state"));
	action = json_string_value(json_object_get(o, "action"));
	reply = json_object_get(o, "reply");
	if (int_of(o, "job", 0) <= 0 || !state || !action ||
	    (strcmp(state, "running") != 0 && !json_is_object(reply))) {
		log_warn("job record %s: not a job record, ignored", path);
		json_decref(o);
		return NULL;
	}
	r = calloc(1, sizeof(*r));
	if (!r || !(r->action = strdup(action)))
		fatal("out of memory");
	r->handle = int_of(o, "job", 0);
	r->uid = (uid_t)int_of(o, "uid", 0);
	r->gid = (gid_t)int_of(o, "gid", 0);
	r->job_id = int_of(o, "job_id", 0);
	r->created = json_number_value(json_object_get(o, "created"));
	if (strcmp(state, "running") == 0) {
		/* The daemon died (or was killed) while it ran. */
		r->state = REC_INTERRUPTED;
		r->finished = wall_now();
		struct reply rep = { "error", "interrupted: kilnd stopped while the job was running", NULL,
				     NULL, envelope_error_object(KILN_E_CANCELLED,
								 json_pack("{s:s}", "reason", "interrupted")) };
		r->reply = envelope_reply_json(&r->job_id, &rep, NULL, 0, NULL);
		json_decref(rep.error);
	} else {
		r->state = strcmp(state, "interrupted") == 0 ? REC_INTERRUPTED : REC_FINISHED;
		r->finished = json_number_value(json_object_get(o, "finished"));
		r->reply = json_incref(reply);
	}
	json_decref(o);
	return r;
}

static int load_dir(const struct kiln_config *cfg)
{
	DIR *d;
	struct dirent *e;
	double cutoff = wall_now() - cfg->job_retention;
	size_t loaded = 0, interrupted = 0;

	if (mkdir(reg.dir, 0700) != 0 && errno != EEXIST) {
		log_error("state_dir %s: %s", reg.dir, strerror(errno));
		return -KILN_E_INTERNAL;
	}
	d = opendir(reg.dir);
	if (!d) {
		log_error("state_dir %s: %s", reg.dir, strerror(errno));
		return -KILN_E_INTERNAL;
	}
	while ((e = readdir(d))) {
		size_t n = strlen(e->d_name);
		char path[PATH_MAX];
		struct jobrec *r;

		if (strncmp(e->d_name, "job-", 4) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", reg.dir, e->d_name);
		if (n > 4 && strcmp(e->d_name + n - 4, ".tmp") == 0) {
			unlink(path); /* a write cut short by a crash */
			continue;
		}
		if (n < 5 || strcmp(e->d_name + n - 5, ".json") != 0 || !(r = load_one(path)))
			continue;
		if (r->finished <= cutoff) {
			unlink(path);
			rec_free(r);
			continue;
		}
		if (r->handle >= reg.next_handle)
			reg.next_handle = r->handle + 1;
		if (r->state == REC_INTERRUPTED) {
			/* Startup may block: record the verdict before serving. */
			struct write_req w = { .path = path, .doc = rec_file_json(r) };
			write_one(&w.qi);
			json_decref(w.doc);
			interrupted++;
		}
		rec_append(r);
		loaded++;
	}
	closedir(d);
	log_info("state_dir %s: %zu job records (%zu interrupted)", reg.dir, loaded, interrupted);
	return 0;
}

static int cmp_created(const void *a, const void *b)
{
	const struct jobrec *x = *(struct jobrec *const *)a, *y = *(struct jobrec *const *)b;
	return x->handle < y->handle ? -1 : x->handle > y->handle;
}

/* readdir order is arbitrary; job.list promises oldest first. */
static void sort_records(void)
{
	struct jobrec **v;
	size_t n = 0;

	if (reg.count < 2)
		return;
	v = malloc(reg.count * sizeof(*v));
	if (!v)
		fatal("out of memory");
	for (struct jobrec *r = reg.head; r; r = r->next)
		v[n++] = r;
	qsort(v, n, sizeof(*v), cmp_created);
	reg.head = reg.tail = NULL;
	reg.count = 0;
	for (size_t i = 0; i < n; i++) {
		v[i]->prev = v[i]->next = NULL;
		rec_append(v[i]);
	}
	free(v);
}

int jobs_init(const struct kiln_config *cfg)
{
	/* Handles grow across restarts (milliseconds since the epoch at
	 * startup, or past the newest loaded record), so a client holding an
	 * old handle never sees a different job under it. */
	reg.next_handle = (json_int_t)(wall_now() * 1000);
	reg.dir = state_dir(cfg);
	if (!reg.dir)
		return 0;
	if (load_dir(cfg) != 0) {
		free(reg.dir);
		reg.dir = NULL;
		return -KILN_E_INTERNAL;
	}
	sort_records();
	if (workq_start(&writer, uv_default_loop(), 1, write_one, written_one) != 0) {
		log_error("cannot start the job record writer thread");
		return -KILN_E_INTERNAL;
	}
	return 0;
}

void jobs_shutdown(void)
{
	struct jobrec *r, *next;

	/* Every queued record reaches the disk before we exit; the done()
	 * callbacks still due find no client to tell "accepted" and free
	 * their contexts. */
	workq_stop(&writer);

	for (r = reg.head; r; r = next) {
		next = r->next;
		rec_free(r);
	}
	reg.head = reg.tail = NULL;
	reg.count = 0;
	free(reg.dir);
	reg.dir = NULL;
}

size_t jobs_memory_held(void)
{
	return reg.count * sizeof(struct jobrec);
}
