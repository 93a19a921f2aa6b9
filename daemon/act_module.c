/*
 * Native modules: the `modules` family.  Each configured module file is
 * loaded into an entry (see modules.h); its actions join dispatch,
 * validation and describe like built-in ones.
 *
 * Loading.  At startup and on SIGHUP the configured list is compared with
 * the loaded entries: a new path is loaded, a path no longer listed is
 * unloaded, and a path whose file (device, inode, size, mtime, ctime) or
 * settings changed is loaded again; the new version replaces the old one
 * once it is ready, and until then (or if it is refused) the old one keeps
 * serving.  A module file is opened once and checked on that descriptor
 * (mod_file_check: owned by root or kilnd's uid, not writable by others);
 * the checked descriptor is what gets loaded, so the file cannot be swapped
 * between the check and the load.  A refused module is logged with the
 * reason and shown in `stats`; kilnd keeps running without it.
 *
 * Isolation "thread" loads the module into kilnd (dlopen) and runs its
 * handlers on the thread pool: the lowest overhead, and kilnd trusts the
 * module like its own code.  Isolation "process" (the default) runs them
 * in supervised worker processes (mod_proc.c); at startup kilnd waits up
 * to STARTUP_WAIT_MS for them to report their actions, on SIGHUP they join
 * when ready.
 *
 * Unloaded entries keep their action records (which jobs point at) until
 * shutdown, and a thread module's code stays mapped until then too, since
 * a handler of it may still be running.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "action.h"
#include "config.h"
#include "job.h"
#include "kiln/error.h"
#include "kiln/utf8.h"
#include "log.h"
#include "mod_api.h"
#include "mod_proc.h"
#include "modules.h"
#include "schema.h"

#define STARTUP_WAIT_MS 10000
#define WORKERS_MAX 64
#define MESSAGE_MAX 400

enum mstate { M_LOADING, M_READY, M_REFUSED };

static const char *const mstate_names[] = { "loading", "ready", "refused" };

struct mod_act {
	struct action action;   /* what dispatch sees; strings below */
	char *name, *summary, *args_text, *data_text;
	json_t *args_schema, *data_schema;
	kiln_mod_handler handler; /* thread isolation */
	struct mod_entry *entry;
};

struct mod_entry {
	char *path;
	json_t *spec;           /* the normalized config entry */
	bool thread;
	struct stat st;         /* the file as loaded */
	enum mstate state;
	bool retired;           /* unloaded: kept for jobs' action pointers */
	char error[512];
	struct mod_act *acts;
	size_t nacts;
	struct mod_lib *lib;    /* thread isolation */
	int lib_fd;             /* the file lib was loaded from: open while lib is, so
				 * its name /proc/self/fd/N stays unique (glibc's dlopen
				 * takes a known name for the module already loaded) */
	struct mod_pool *pool;  /* process isolation, until retired */
	struct mod_entry *replaces; /* a ready entry this one replaces once ready */
	struct mod_entry *next;
};

static struct {
	struct mod_entry *list; /* newest first */
	uv_timer_t wait_timer;
	bool timer_init;
	bool released;
} ms;

static void module_call(struct job *job, json_t *args);

/* --- Configuration ------------------------------------------------------------ */

static int entry_err(char *err, size_t errlen, size_t i, const char *fmt, const char *arg)
{
	char why[300];

	snprintf(why, sizeof(why), fmt, arg);
	snprintf(err, errlen, "config key \"modules\": entry %zu: %s", i, why);
	return -1;
}

static int parse_entry(const json_t *e, size_t i, const char *base_dir, json_t *out, char *err, size_t errlen)
{
	const char *key, *path, *iso = "process";
	json_t *v, *workers = NULL, *config = NULL, *norm;
	char *full = NULL;

	if (!json_is_object(e))
		return entry_err(err, errlen, i, "expected an object%s", "");
	json_object_foreach((json_t *)e, key, v) {
		if (key[0] == '#' || strcmp(key, "path") == 0)
			continue;
		if (strcmp(key, "isolation") == 0) {
			iso = json_string_value(v);
			if (!iso || (strcmp(iso, "process") != 0 && strcmp(iso, "thread") != 0))
				return entry_err(err, errlen, i, "isolation: expected \"process\" or \"thread\"%s", "");
		} else if (strcmp(key, "workers") == 0) {
			if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > WORKERS_MAX)
				return entry_err(err, errlen, i, "workers: expected an integer in [1, 64]%s", "");
			workers = v;
		} else if (strcmp(key, "config") == 0) {
			if (!json_is_object(v))
				return entry_err(err, errlen, i, "config: expected an object%s", "");
			config = v;
		} else {
			return entry_err(err, errlen, i, "unknown key \"%.100s\"", key);
		}
	}
	path = json_string_value(json_object_get(e, "path"));
	if (!path || !*path)
		return entry_err(err, errlen, i, "path: expected a module file name%s", "");
	if (path[0] != '/' && base_dir && asprintf(&full, "%s/%s", base_dir, path) < 0)
		fatal("out of memory");
	norm = json_pack("{s:s, s:s, s:I, s:o}", "path", full ? full : path, "isolation", iso, "workers",
			 workers ? json_integer_value(workers) : (json_int_t)1, "config",
			 config ? json_deep_copy(config) : json_object());
	free(full);
	if (!norm)
		fatal("out of memory");
	for (size_t k = 0; k < json_array_size(out); k++) {
		if (json_equal(json_object_get(json_array_get(out, k), "path"), json_object_get(norm, "path"))) {
			json_decref(norm);
			return entry_err(err, errlen, i, "module %.200s is listed twice", path);
		}
	}
	json_array_append_new(out, norm);
	return 0;
}

int module_config_parse(const json_t *v, const char *base_dir, json_t **out, char *err, size_t errlen)
{
	size_t i;
	json_t *e;

	if (!json_is_array(v)) {
		snprintf(err, errlen, "config key \"modules\": expected an array of {\"path\": ...} objects");
		return -1;
	}
	*out = json_array();
	json_array_foreach(v, i, e) {
		if (parse_entry(e, i, base_dir, *out, err, errlen)) {
			json_decref(*out);
			*out = NULL;
			return -1;
		}
	}
	return 0;
}

/* --- Entries -------------------------------------------------------------------- */

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

static void free_acts(struct mod_act *acts, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(acts[i].name);
		free(acts[i].summary);
		free(acts[i].args_text);
		free(acts[i].data_text);
		json_decref(acts[i].args_schema);
		json_decref(acts[i].data_schema);
	}
	free(acts);
}

static void entry_free(struct mod_entry *e)
{
	free_acts(e->acts, e->nacts);
	mod_lib_close(e->lib);
	if (e->lib_fd >= 0)
		close(e->lib_fd);
	json_decref(e->spec);
	free(e->path);
	free(e);
}

static void retire(struct mod_entry *e)
{
	if (e->retired)
		return;
	e->retired = true;
	if (e->pool)
		mod_pool_retire(e->pool);
	e->pool = NULL;
	for (struct mod_entry *o = ms.list; o; o = o->next)
		if (o->replaces == e)
			o->replaces = NULL;
	log_info("module %s unloaded", e->path);
}

static void refuse(struct mod_entry *e, const char *reason)
{
	e->state = M_REFUSED;
	snprintf(e->error, sizeof(e->error), "%s", reason);
	log_error("module %s refused: %s%s", e->path, reason,
		  e->replaces ? " (the previous version keeps serving)" : "");
	e->replaces = NULL;
	if (e->pool)
		mod_pool_retire(e->pool);
	e->pool = NULL;
}

static const struct mod_act *find_act(const char *name, const struct mod_entry *skip)
{
	for (struct mod_entry *e = ms.list; e; e = e->next) {
		if (e->retired || e->state != M_READY || e == skip)
			continue;
		for (size_t i = 0; i < e->nacts; i++)
			if (strcmp(e->acts[i].name, name) == 0)
				return &e->acts[i];
	}
	return NULL;
}

static json_t *parse_schema(const char *text)
{
	return json_loads(text ? text : "{\"type\":\"object\"}", 0, NULL);
}

/* Fills act from one action's fields; -1 with a reason if it cannot be used. */
static int make_act(struct mod_entry *e, struct mod_act *a, const char *name, const char *summary,
		    const char *args, const char *data, kiln_mod_handler handler, char *err, size_t errlen)
{
	const struct mod_act *other;

	if (mod_action_check(name, args, data, err, errlen))
		return -1;
	if (dispatch_find(name) || family_proc.lookup(config_current(), name)) {
		snprintf(err, errlen, "action %s is already a built-in action or procedure", name);
		return -1;
	}
	other = find_act(name, e->replaces);
	if (other && other->entry != e) {
		snprintf(err, errlen, "action %s is already served by module %s", name, other->entry->path);
		return -1;
	}
	a->entry = e;
	a->handler = handler;
	a->name = strdup(name);
	a->summary = strdup(summary && *summary ? summary : "module action");
	a->args_text = args ? strdup(args) : NULL;
	a->data_text = data ? strdup(data) : NULL;
	a->args_schema = parse_schema(args);
	a->data_schema = parse_schema(data);
	if (!a->name || !a->summary || !a->args_schema || !a->data_schema || (args && !a->args_text) ||
	    (data && !a->data_text)) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	a->action = (struct action){ .name = a->name, .summary = a->summary, .args_schema = a->args_text,
				     .data_schema = a->data_text, .handler = module_call,
				     .flags = ACTION_ATTACHMENT };
	return 0;
}

static void become_ready(struct mod_entry *e)
{
	e->state = M_READY;
	log_info("module %s loaded: %zu action%s, isolation %s", e->path, e->nacts, e->nacts == 1 ? "" : "s",
		 e->thread ? "thread" : "process");
	if (e->replaces)
		retire(e->replaces);
	e->replaces = NULL;
}

/* The first worker's hello: the actions of a process module. */
static int on_pool_ready(void *owner, const json_t *hello, char *err, size_t errlen)
{
	struct mod_entry *e = owner;
	const json_t *list = json_object_get(hello, "actions");
	size_t i, n = json_array_size(list);
	json_t *a;

	e->acts = calloc(n ? n : 1, sizeof(*e->acts));
	if (!e->acts) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (n == 0) {
		snprintf(err, errlen, "registers no action");
		return -1;
	}
	json_array_foreach(list, i, a) {
		e->nacts = i + 1;
		if (make_act(e, &e->acts[i], json_string_value(json_object_get(a, "name")),
			     json_string_value(json_object_get(a, "summary")),
			     json_string_value(json_object_get(a, "args")),
			     json_string_value(json_object_get(a, "data")), NULL, err, errlen))
			return -1;
	}
	become_ready(e);
	return 0;
}

static void on_pool_refused(void *owner, const char *reason)
{
	refuse(owner, reason);
}

static const struct mod_pool_hooks pool_hooks = { on_pool_ready, on_pool_refused };

static void load_thread(struct mod_entry *e, int fd)
{
	char err[1024];

	e->lib = mod_lib_open(fd, e->path, json_object_get(e->spec, "config"), err, sizeof(err));
	if (!e->lib) {
		refuse(e, err);
		return;
	}
	e->acts = calloc(e->lib->count, sizeof(*e->acts));
	if (!e->acts) {
		refuse(e, "out of memory");
		return;
	}
	for (size_t i = 0; i < e->lib->count; i++) {
		const struct mod_action *a = &e->lib->actions[i];
		e->nacts = i + 1;
		if (make_act(e, &e->acts[i], a->name, a->summary, a->args_schema, a->data_schema, a->handler, err,
			     sizeof(err))) {
			refuse(e, err);
			return;
		}
	}
	become_ready(e);
}

static struct mod_entry *load(const json_t *spec, struct mod_entry *replaces)
{
	struct mod_entry *e = calloc(1, sizeof(*e));
	char err[512];
	int fd;

	if (!e)
		fatal("out of memory");
	e->lib_fd = -1;
	e->spec = json_incref((json_t *)spec);
	e->path = strdup(json_string_value(json_object_get(spec, "path")));
	e->thread = strcmp(json_string_value(json_object_get(spec, "isolation")), "thread") == 0;
	e->replaces = replaces;
	e->next = ms.list;
	ms.list = e;
	if (!e->path)
		fatal("out of memory");
	fd = open(e->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		snprintf(err, sizeof(err), "cannot open: %s", strerror(errno));
		refuse(e, err);
		return e;
	}
	if (mod_file_check(fd, err, sizeof(err)) != 0 || fstat(fd, &e->st) != 0) {
		refuse(e, err);
		close(fd);
		return e;
	}
	if (e->thread) {
		e->lib_fd = fd;
		load_thread(e, fd);
		return e;
	}
	e->pool = mod_pool_new(e->path, fd, json_object_get(spec, "config"),
			       (unsigned)json_integer_value(json_object_get(spec, "workers")), &pool_hooks, e);
	if (!e->pool)
		refuse(e, "cannot start worker processes");
	close(fd);
	return e;
}

/* The current entry for `path`: the newest one not unloaded. */
static struct mod_entry *current_for(const char *path)
{
	for (struct mod_entry *e = ms.list; e; e = e->next)
		if (!e->retired && strcmp(e->path, path) == 0)
			return e;
	return NULL;
}

static bool unchanged(const struct mod_entry *e, const json_t *spec)
{
	struct stat st;

	if (e->state == M_REFUSED || !json_equal(e->spec, (json_t *)spec))
		return false;
	return stat(e->path, &st) == 0 && same_file(&st, &e->st);
}

static void reconcile(const struct kiln_config *cfg)
{
	size_t i;
	json_t *spec;

	/* Paths no longer configured. */
	for (struct mod_entry *e = ms.list; e; e = e->next) {
		bool listed = false;
		if (e->retired)
			continue;
		json_array_foreach(cfg->modules, i, spec)
			listed = listed || strcmp(json_string_value(json_object_get(spec, "path")), e->path) == 0;
		if (!listed)
			retire(e);
	}
	json_array_foreach(cfg->modules, i, spec) {
		const char *path = json_string_value(json_object_get(spec, "path"));
		struct mod_entry *cur = current_for(path), *replaces = NULL;

		if (cur && unchanged(cur, spec))
			continue;
		if (cur && cur->state == M_READY)
			replaces = cur;
		else if (cur && cur->state == M_LOADING)
			replaces = cur->replaces;
		if (cur && cur != replaces)
			retire(cur);
		if (replaces)
			log_info("module %s changed: loading it again", path);
		load(spec, replaces);
	}
}

static bool any_loading(void)
{
	for (struct mod_entry *e = ms.list; e; e = e->next)
		if (!e->retired && e->state == M_LOADING)
			return true;
	return false;
}

static void on_wait_timer(uv_timer_t *t)
{
	(void)t;
}

/* Startup only (the loop is not serving yet): lets process modules come up. */
static void wait_for_modules(void)
{
	uv_loop_t *loop = uv_default_loop();

	if (!any_loading())
		return;
	if (!ms.timer_init) {
		uv_timer_init(loop, &ms.wait_timer);
		ms.timer_init = true;
	}
	uv_timer_start(&ms.wait_timer, on_wait_timer, STARTUP_WAIT_MS, 0);
	while (any_loading() && uv_is_active((uv_handle_t *)&ms.wait_timer))
		uv_run(loop, UV_RUN_ONCE);
	uv_timer_stop(&ms.wait_timer);
	for (struct mod_entry *e = ms.list; e; e = e->next)
		if (!e->retired && e->state == M_LOADING)
			log_warn("module %s: still starting after %d s; its actions appear once it is ready", e->path,
				 STARTUP_WAIT_MS / 1000);
}

/* --- Calls ------------------------------------------------------------------------ */

/* The family's lookup hook: modules are loaded from the configuration in
 * force, whatever configuration a request started under. */
static const struct action *module_lookup(const struct kiln_config *cfg, const char *name)
{
	const struct mod_act *a = find_act(name, NULL);

	(void)cfg;
	return a ? &a->action : NULL;
}

/* The prepare hook: no host_list, and args valid against the module's
 * schema, before the module sees them. */
static int module_prepare(struct job *job, json_t **detail, char *msg, size_t msglen)
{
	const struct mod_act *a = find_act(job_action(job), NULL);
	char *path = NULL;
	const char *p;

	if (json_array_size(job_host_list(job)) > 0) {
		snprintf(msg, msglen, "host_list: %s is a local action and takes no hosts", job_action(job));
		*detail = json_pack("{s:s}", "key", "host_list");
		return -KILN_E_INVALID_REQUEST;
	}
	if (!a || schema_validate(a->args_schema, job_args(job), "args", &path, msg, msglen) == 0)
		return 0;
	/* The path quotes client keys cut to a byte limit: keep it valid UTF-8. */
	p = path ? path : "args";
	*detail = json_pack("{s:s%}", "path", p, kiln_utf8_valid_prefix((const uint8_t *)p, strlen(p)));
	free(path);
	return -KILN_E_INVALID_ARGS;
}

/* A module's message, valid UTF-8 and short enough for a reply line. */
static void safe_message(const char *s, char out[MESSAGE_MAX + 1])
{
	size_t n = s ? strlen(s) : 0;

	n = kiln_utf8_valid_prefix((const uint8_t *)s, n < MESSAGE_MAX ? n : MESSAGE_MAX);
	memcpy(out, s ? s : "", n);
	out[n] = '\0';
}

struct tcall {
	struct kiln_mod_call call;
	struct job *job;
	kiln_mod_handler handler;
};

static void t_progress(void *ctx, uint64_t done, uint64_t total)
{
	job_progress(ctx, done, total);
}

static bool t_cancelled(void *ctx)
{
	return job_cancelled(ctx);
}

static void *t_out_alloc(void *ctx, size_t len)
{
	void *p;

	(void)ctx;
	if (posix_memalign(&p, 64, len ? len : 1))
		return NULL;
	memset(p, 0, len);
	return p;
}

static void t_out_release(void *ctx, void *buf, size_t len)
{
	(void)ctx;
	(void)len;
	free(buf);
}

static const struct mod_call_ops thread_ops = { t_progress, t_cancelled, t_out_alloc, t_out_release };

static void thread_work(struct job *job, void *arg)
{
	struct tcall *t = arg;
	(void)job;
	mod_call_run(&t->call, t->handler);
}

static void thread_done(struct job *job, void *arg, int status)
{
	struct tcall *t = arg;
	char msg[MESSAGE_MAX + 1];

	safe_message(t->call.message, msg);
	if (status || job_cancelled(job)) {
		job_fail(job, -(job_cancelled(job) ? job_cancel_reason(job) : KILN_E_CANCELLED), NULL, "cancelled");
	} else if (t->call.code) {
		job_fail(job, -t->call.code, NULL, "%s", msg);
	} else {
		if (t->call.out) {
			job_set_reply_attachment(job, t->call.out, t->call.out_len, free);
			t->call.out = NULL;
		}
		job_succeed(job, json_incref(t->call.data), "%s", msg);
	}
	mod_call_release(&t->call);
	free(t);
}

static void module_call(struct job *job, json_t *args)
{
	const struct mod_act *a = find_act(job_action(job), NULL);
	const unsigned char *attach;
	struct tcall *t;
	size_t len = 0;

	if (!a) {
		job_fail(job, -KILN_E_UNKNOWN_ACTION, NULL, "module action %s was unloaded", job_action(job));
		return;
	}
	if (!a->entry->thread) {
		mod_pool_call(a->entry->pool, job, a->name, args);
		return;
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		job_fail(job, -KILN_E_INTERNAL, NULL, "out of memory");
		return;
	}
	attach = job_attachment(job, &len);
	t->job = job;
	t->handler = a->handler;
	mod_call_init(&t->call, args, attach, attach ? len : 0, job_config(job)->max_attachment_bytes, &thread_ops,
		      job);
	if (job_queue_work(job, thread_work, thread_done, t) != 0) {
		mod_call_release(&t->call);
		free(t);
		job_fail(job, -KILN_E_INTERNAL, NULL, "cannot queue work");
	}
}

/* --- Describe, stats, family ------------------------------------------------------- */

static void module_describe(const struct kiln_config *cfg, const struct kiln_peer *peer, json_t *list)
{
	/* Oldest first, so the order follows the configuration. */
	struct mod_entry *order[256];
	size_t n = 0;

	(void)cfg;
	(void)peer;
	for (struct mod_entry *e = ms.list; e && n < 256; e = e->next)
		if (!e->retired && e->state == M_READY)
			order[n++] = e;
	while (n-- > 0) {
		struct mod_entry *e = order[n];
		for (size_t i = 0; i < e->nacts; i++) {
			const struct mod_act *a = &e->acts[i];
			json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:O, s:O, s:b, s:{s:s, s:s, s:O}}",
							      "name", a->name, "family", "module", "summary",
							      a->summary, "args", a->args_schema, "data",
							      a->data_schema, "hosts", 0, "module", "path", e->path,
							      "isolation", e->thread ? "thread" : "process",
							      "workers", json_object_get(e->spec, "workers")));
		}
	}
}

static json_t *entry_stats(const struct mod_entry *e)
{
	json_t *m = json_pack("{s:s, s:s, s:s, s:i}", "path", e->path, "isolation", e->thread ? "thread" : "process",
			      "state", mstate_names[e->state], "actions", (int)e->nacts);

	if (e->state == M_REFUSED)
		json_object_set_new(m, "error", json_string(e->error));
	if (e->pool) {
		json_t *ps = mod_pool_stats(e->pool);
		json_object_update(m, ps);
		json_decref(ps);
	}
	return m;
}

static void module_stats(json_t *into)
{
	json_t *list = json_array();

	/* The list is newest first; stats read in configuration order. */
	for (struct mod_entry *e = ms.list; e; e = e->next)
		if (!e->retired)
			json_array_insert_new(list, 0, entry_stats(e));
	json_object_set_new(into, "modules", list);
}

static int module_init(const struct kiln_config *cfg)
{
	reconcile(cfg);
	wait_for_modules();
	return 0;
}

static void module_reconfigure(const struct kiln_config *cfg)
{
	reconcile(cfg);
}

static void module_release(void)
{
	if (ms.released)
		return;
	ms.released = true;
	for (struct mod_entry *e = ms.list; e; e = e->next) {
		if (e->pool)
			mod_pool_retire(e->pool);
		e->pool = NULL;
	}
	mod_proc_release();
	if (ms.timer_init)
		uv_close((uv_handle_t *)&ms.wait_timer, NULL);
	ms.timer_init = false;
}

static void module_shutdown(void)
{
	module_release();
	while (ms.list) {
		struct mod_entry *e = ms.list;
		ms.list = e->next;
		entry_free(e);
	}
	ms.released = false;
}

const struct action_family family_module = {
	.name = "module",
	.actions = NULL,
	.count = 0,
	.init = module_init,
	.reconfigure = module_reconfigure,
	.lookup = module_lookup,
	.prepare = module_prepare,
	.describe = module_describe,
	.release = module_release,
	.shutdown = module_shutdown,
	.stats = module_stats,
};
