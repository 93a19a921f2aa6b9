/*
 * Scene actions (issue 6): scenes kept in the daemon, built from JSON and
 * rendered in parallel on the thread pool.
 *
 * Concurrency rule: a scene is never modified while something reads it.
 * scene.add runs on a worker (it reads textures and OBJ files and appends)
 * and marks the scene as being written; scene.render marks it as being
 * read.  The BVH is built lazily: an add only marks the entry stale, and the
 * next render first builds it on a worker (renders that start together
 * serialize on the entry's lock and the later ones find it built), so a
 * scene built by many small adds costs one BVH build, like one big add.  scene.add or scene.update on a scene being rendered, and
 * scene.render or scene.add on a scene being written, get `busy`: the
 * client retries.  scene.delete is always allowed: the table drops its
 * reference and the scene is freed when the last job using it finishes.
 * The scene table itself is touched on the loop thread only.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "action.h"
#include "config.h"
#include "creds.h"
#include "job.h"
#include "kiln/error.h"
#include "kiln/image.h"
#include "kiln/render.h"
#include "kiln/scene.h"
#include "log.h"
#include "paths.h"
#include "scene_doc.h"

struct scene_entry {
	json_int_t id;             /* random, see new_id() */
	uid_t owner;               /* the uid that created it; others see no such scene */
	kiln_scene *scene;
	json_t *elements, *lights; /* canonical items, for scene.get */
	unsigned refs;             /* the table's, plus one per job using it */
	unsigned renders;          /* renders reading the scene */
	bool writing;              /* a scene.add worker is modifying it */
	bool stale;                /* added to since the last BVH build was queued */
	unsigned preparing;        /* renders whose BVH build is queued or running */
	pthread_mutex_t prepare_lock; /* held by a worker building the BVH */
	bool in_table;
	size_t memory;             /* kiln_scene_memory() after the last change */
	struct scene_entry *next;
};

static struct {
	struct scene_entry *head;
	unsigned count;
	unsigned pending_loads; /* slots reserved by scene.load in flight */
	size_t memory;          /* sum of memory over the table */
} st;

static void entry_unref(struct scene_entry *e)
{
	if (--e->refs)
		return;
	kiln_scene_free(e->scene);
	json_decref(e->elements);
	json_decref(e->lights);
	pthread_mutex_destroy(&e->prepare_lock);
	free(e);
}

static struct scene_entry *entry_new(kiln_scene *scene)
{
	struct scene_entry *e = calloc(1, sizeof(*e));

	if (!e)
		return NULL;
	e->scene = scene;
	e->elements = json_array();
	e->lights = json_array();
	e->refs = 1;
	e->stale = true;
	if (!e->elements || !e->lights || pthread_mutex_init(&e->prepare_lock, NULL)) {
		json_decref(e->elements);
		json_decref(e->lights);
		free(e);
		return NULL;
	}
	return e;
}

static struct scene_entry *find_id(json_int_t id)
{
	for (struct scene_entry *e = st.head; e; e = e->next)
		if (e->id == id)
			return e;
	return NULL;
}

/* Scene ids are random integers below 2^53 (exact in every JSON number
 * implementation), so one user cannot guess another's. */
static json_int_t new_id(void)
{
	for (;;) {
		uint64_t r;
		if (getrandom(&r, sizeof(r), 0) != sizeof(r))
			fatal("getrandom: %s", strerror(errno));
		json_int_t id = (json_int_t)(r & ((UINT64_C(1) << 53) - 1));
		if (id > 0 && !find_id(id))
			return id;
	}
}

static void table_insert(struct scene_entry *e, uid_t owner)
{
	e->id = new_id();
	e->owner = owner;
	e->in_table = true;
	e->memory = kiln_scene_memory(e->scene);
	e->next = st.head;
	st.head = e;
	st.count++;
	st.memory += e->memory;
}

static void table_remove(struct scene_entry *e)
{
	struct scene_entry **p;

	for (p = &st.head; *p; p = &(*p)->next) {
		if (*p == e) {
			*p = e->next;
			break;
		}
	}
	e->in_table = false;
	st.count--;
	st.memory -= e->memory;
	entry_unref(e);
}

static void entry_set_memory(struct scene_entry *e)
{
	size_t m = kiln_scene_memory(e->scene);

	if (e->in_table)
		st.memory = st.memory - e->memory + m;
	e->memory = m;
}

/* The caller's entry named by args.scene_id (any user's for an admin with
 * `admin_ok`), or NULL after failing the job: another user's scene gets
 * exactly the reply of a missing one. */
static struct scene_entry *lookup_as(struct job *job, json_t *args, bool admin_ok)
{
	json_int_t id = json_integer_value(json_object_get(args, "scene_id"));
	struct scene_entry *e = find_id(id);

	if (e && (e->owner == job_peer(job)->uid || (admin_ok && creds_is_admin(job_config(job), job_peer(job)))))
		return e;
	job_fail(job, -KILN_E_NOT_FOUND, json_pack("{s:I}", "scene_id", id),
		 "no scene %" JSON_INTEGER_FORMAT, id);
	return NULL;
}

static struct scene_entry *lookup(struct job *job, json_t *args)
{
	return lookup_as(job, args, false);
}

static unsigned count_of(uid_t owner)
{
	unsigned n = 0;

	for (struct scene_entry *e = st.head; e; e = e->next)
		n += e->owner == owner;
	return n;
}

static size_t memory_of(uid_t owner)
{
	size_t m = 0;

	for (struct scene_entry *e = st.head; e; e = e->next)
		if (e->owner == owner)
			m += e->memory;
	return m;
}

/* Fails the job with `busy` if the scene is being written, or (for
 * `also_renders`) read by a render: see the concurrency rule above. */
static bool scene_busy(struct job *job, const struct scene_entry *e, bool also_renders)
{
	bool rendering = also_renders && e->renders;

	if (!rendering && !e->writing)
		return false;
	job_fail(job, -KILN_E_BUSY, json_pack("{s:I}", "scene_id", e->id),
		 "scene %" JSON_INTEGER_FORMAT " is being %s; retry", e->id, rendering ? "rendered" : "modified");
	return true;
}

/* Fails the job with too_large if the caller has scene_max_scenes_per_uid
 * scenes, or all users scene_max_scenes (loads in flight hold a slot). */
static bool scenes_full(struct job *job)
{
	const struct kiln_config *cfg = job_config(job);
	unsigned mine = count_of(job_peer(job)->uid);

	if (mine >= cfg->scene_max_scenes_per_uid) {
		job_fail(job, -KILN_E_TOO_LARGE,
			 json_pack("{s:s, s:i}", "limit", "scene_max_scenes_per_uid", "scene_max_scenes_per_uid",
				   (int)cfg->scene_max_scenes_per_uid),
			 "you keep %u scenes already (scene_max_scenes_per_uid); delete one first", mine);
		return true;
	}
	if (st.count + st.pending_loads < cfg->scene_max_scenes)
		return false;
	job_fail(job, -KILN_E_TOO_LARGE, config_limit_detail(cfg, "scene_max_scenes"),
		 "%u scenes are kept already (scene_max_scenes); delete one first", cfg->scene_max_scenes);
	return true;
}

/* Memory a scene of `owner` may grow to: what scene_memory_budget leaves
 * after every other scene, or scene_memory_per_uid after the owner's other
 * scenes, whichever is less (key names that limit). */
struct budget {
	size_t left;
	const char *key;
};

static struct budget budget_for(const struct kiln_config *cfg, const struct scene_entry *e, uid_t owner)
{
	size_t self = e && e->in_table ? e->memory : 0;
	size_t others = st.memory - self, mine = memory_of(owner) - self;
	size_t all_left = cfg->scene_memory_budget > others ? cfg->scene_memory_budget - others : 0;
	size_t my_left = cfg->scene_memory_per_uid > mine ? cfg->scene_memory_per_uid - mine : 0;

	if (my_left < all_left)
		return (struct budget){ my_left, "scene_memory_per_uid" };
	return (struct budget){ all_left, "scene_memory_budget" };
}

static json_t *summary(const struct scene_entry *e)
{
	const struct kiln_settings *s = kiln_scene_settings(e->scene);

	return json_pack("{s:I, s:I, s:i, s:i, s:I, s:I, s:I, s:i}", "scene_id", e->id, "owner",
			 (json_int_t)e->owner, "width", (int)s->width,
			 "height", (int)s->height, "elements", (json_int_t)json_array_size(e->elements),
			 "lights", (json_int_t)json_array_size(e->lights), "memory_bytes", (json_int_t)e->memory,
			 "renders", (int)e->renders);
}

/* --- scene.create / scene.update ------------------------------------------ */

static void act_create(struct job *job, json_t *args)
{
	struct kiln_settings set;
	struct scene_entry *e;
	kiln_scene *scene;
	char err[256];
	int rc;

	if (scenes_full(job))
		return;
	kiln_settings_default(&set);
	rc = scene_doc_settings(args, &set, err, sizeof(err));
	if (rc) {
		job_fail(job, rc, NULL, "%s", err);
		return;
	}
	scene = kiln_scene_new();
	if (!scene || kiln_scene_set_settings(scene, &set, err, sizeof(err)) || !(e = entry_new(scene))) {
		kiln_scene_free(scene);
		job_fail(job, -KILN_E_INTERNAL, NULL, "out of memory");
		return;
	}
	table_insert(e, job_peer(job)->uid);
	job_succeed(job, summary(e), "scene %" JSON_INTEGER_FORMAT, e->id);
}

static void act_update(struct job *job, json_t *args)
{
	struct scene_entry *e = lookup(job, args);
	struct kiln_settings set;
	char err[256];
	int rc;

	if (!e || scene_busy(job, e, true))
		return;
	set = *kiln_scene_settings(e->scene);
	rc = scene_doc_settings(args, &set, err, sizeof(err));
	/* Only the camera and lookup tables change, not the BVH. */
	if (!rc)
		rc = kiln_scene_set_settings(e->scene, &set, err, sizeof(err));
	if (rc) {
		job_fail(job, rc, NULL, "%s", err);
		return;
	}
	json_t *data = scene_doc_settings_json(&set);
	json_object_set_new(data, "scene_id", json_integer(e->id));
	job_succeed(job, data, "scene %" JSON_INTEGER_FORMAT " updated", e->id);
}

/* --- scene.add / scene.load (workers) ------------------------------------- */

struct build_ctx {
	struct scene_entry *entry; /* scene.add: the scene (a reference) */
	kiln_scene *scene;         /* scene.load: the new scene, until inserted */
	json_t *doc;               /* {"elements": [...], "lights": [...]} or the loaded document */
	char *path;                /* scene.load from a file */
	char *base_dir;            /* scene.load: relative paths' base, if given */
	const char *format;        /* scene.load: "kiln", "rust", "auto" or NULL (in the job's args) */
	enum scene_doc_format doc_format;
	struct budget budget;
	struct kiln_scene_mark mark; /* the scene before this batch */
	json_t *elements, *lights; /* canonical items added */
	json_t *detail;
	int rc;
	char err[512];
};

static void build_ctx_free(struct build_ctx *b)
{
	json_decref(b->doc);
	json_decref(b->elements);
	json_decref(b->lights);
	json_decref(b->detail);
	kiln_scene_free(b->scene);
	free(b->path);
	free(b->base_dir);
	free(b);
}

static struct build_ctx *build_ctx_new(void)
{
	struct build_ctx *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	b->elements = json_array();
	b->lights = json_array();
	if (!b->elements || !b->lights) {
		build_ctx_free(b);
		return NULL;
	}
	return b;
}

/* Fails the batch with too_large if the scene needs more than `left`
 * bytes.  The same error whether the worker or, later, the loop finds it. */
static bool over_budget(struct build_ctx *b, size_t need, struct budget left)
{
	if (need <= left.left)
		return false;
	b->rc = -KILN_E_TOO_LARGE;
	snprintf(b->err, sizeof(b->err), "the scene would need %zu bytes; %s leaves %zu", need, left.key,
		 left.left);
	json_decref(b->detail);
	b->detail = json_pack("{s:s}", "limit", left.key);
	return true;
}

/* Adds the document's items to `scene` within the budget.  All or nothing;
 * the BVH is left for the next render. */
static void build_scene(struct job *job, struct build_ctx *b, kiln_scene *scene, const char *base_dir)
{
	struct scene_doc_ctx dc = {.cfg = job_config(job), .scene = scene, .base_dir = base_dir,
				   .format = b->doc_format};

	kiln_scene_mark(scene, &b->mark);
	b->rc = scene_doc_add_all(&dc, b->doc, b->elements, b->lights, b->err, sizeof(b->err));
	b->detail = dc.detail;
	if (!b->rc)
		over_budget(b, kiln_scene_memory(scene), b->budget);
	if (!b->rc && job_cancelled(job)) {
		b->rc = -KILN_E_CANCELLED;
		snprintf(b->err, sizeof(b->err), "cancelled");
	}
	if (b->rc)
		kiln_scene_rollback(scene, &b->mark);
}

static void add_work(struct job *job, void *arg)
{
	struct build_ctx *b = arg;

	build_scene(job, b, b->entry->scene, NULL);
}

/* Takes the batch out again. */
static void undo_batch(struct build_ctx *b)
{
	kiln_scene_rollback(b->entry->scene, &b->mark);
}

static void undo_work(struct job *job, void *arg)
{
	(void)job;
	undo_batch(arg);
}

static void add_finish(struct job *job, struct build_ctx *b)
{
	struct scene_entry *e = b->entry;

	e->writing = false;
	e->stale = true;
	job_fail(job, b->rc, b->rc == -KILN_E_TOO_LARGE ? json_incref(b->detail) : NULL, "%s", b->err);
	entry_unref(e);
	build_ctx_free(b);
}

static void undo_done(struct job *job, void *arg, int status)
{
	/* Cancelled before it ran: the scene must not keep the batch, so undo
	 * it here (cheap: the scene only shrinks back). */
	if (status)
		undo_batch(arg);
	add_finish(job, arg);
}

static void add_done(struct job *job, void *arg, int status)
{
	struct build_ctx *b = arg;
	struct scene_entry *e = b->entry;

	/* The worker checked the budget left when the request came; adds to
	 * other scenes that finished meanwhile may have taken it. */
	if (!status && !b->rc && over_budget(b, kiln_scene_memory(e->scene), budget_for(job_config(job), e, e->owner))) {
		if (job_queue_work(job, undo_work, undo_done, b) != 0)
			undo_done(job, b, UV_ECANCELED);
		return;
	}
	e->writing = false;
	e->stale = true;
	if (status) {
		job_fail(job, -KILN_E_CANCELLED, NULL, "cancelled");
	} else if (b->rc) {
		job_fail(job, b->rc, json_incref(b->detail), "%s", b->err);
	} else {
		json_array_extend(e->elements, b->elements);
		json_array_extend(e->lights, b->lights);
		entry_set_memory(e);
		job_succeed(job, summary(e), "added %zu elements and %zu lights",
			    json_array_size(b->elements), json_array_size(b->lights));
	}
	entry_unref(e);
	build_ctx_free(b);
}

/* Gathers element/elements/light/lights into one list document. */
static json_t *add_doc(json_t *args)
{
	json_t *elements = json_array(), *lights = json_array();
	json_t *v;

	if ((v = json_object_get(args, "elements")))
		json_array_extend(elements, v);
	if ((v = json_object_get(args, "element")))
		json_array_append(elements, v);
	if ((v = json_object_get(args, "lights")))
		json_array_extend(lights, v);
	if ((v = json_object_get(args, "light")))
		json_array_append(lights, v);
	return json_pack("{s:o, s:o}", "elements", elements, "lights", lights);
}

static void act_add(struct job *job, json_t *args)
{
	struct scene_entry *e = lookup(job, args);
	struct build_ctx *b;

	if (!e || scene_busy(job, e, true))
		return;
	b = build_ctx_new();
	if (!b || !(b->doc = add_doc(args))) {
		if (b)
			build_ctx_free(b);
		job_fail(job, -KILN_E_INTERNAL, NULL, "out of memory");
		return;
	}
	b->entry = e;
	b->budget = budget_for(job_config(job), e, e->owner);
	e->refs++;
	e->writing = true;
	if (job_queue_work(job, add_work, add_done, b)) {
		e->writing = false;
		entry_unref(e);
		build_ctx_free(b);
		job_fail(job, -KILN_E_INTERNAL, NULL, "cannot queue work");
	}
}

/* Reads and parses the scene file into b->doc; *dir is its directory, which
 * relative paths inside it are resolved against (malloc'ed). */
static int load_file(const struct kiln_config *cfg, struct build_ctx *b, char **dir)
{
	unsigned char *text = NULL;
	char *resolved = NULL, *slash;
	json_error_t jerr;
	size_t len;
	int rc = scene_doc_read_file(cfg, b->path, &resolved, &text, &len, "args.path", b->err, sizeof(b->err));

	if (!rc) {
		b->doc = json_loadb((const char *)text, len, 0, &jerr);
		if (!b->doc) {
			rc = -KILN_E_INVALID_ARGS;
			snprintf(b->err, sizeof(b->err), "%s: not JSON (line %d: %s)", b->path, jerr.line, jerr.text);
		} else if (!json_is_object(b->doc)) {
			rc = -KILN_E_INVALID_ARGS;
			snprintf(b->err, sizeof(b->err), "%s: a scene document is a JSON object", b->path);
		}
	}
	free(text);
	slash = resolved ? strrchr(resolved, '/') : NULL;
	if (rc || !slash) {
		free(resolved);
		return rc;
	}
	*slash = 0;
	*dir = resolved;
	return 0;
}

static void load_work(struct job *job, void *arg)
{
	struct build_ctx *b = arg;
	const struct kiln_config *cfg = job_config(job);
	struct kiln_settings set;
	char *dir = NULL;

	if (b->path && (b->rc = load_file(cfg, b, &dir)))
		return;
	kiln_settings_default(&set);
	b->rc = scene_doc_detect(b->doc, b->format, &b->doc_format, b->err, sizeof(b->err));
	if (b->rc)
		b->detail = json_pack("{s:s}", "path", b->path ? "args.path" : "args.scene");
	if (!b->rc)
		b->rc = scene_doc_settings(b->doc, &set, b->err, sizeof(b->err));
	if (b->doc_format == SCENE_DOC_RUST)
		set.semantics = KILN_SEMANTICS_RUST;
	if (!b->rc) {
		b->scene = kiln_scene_new();
		if (!b->scene) {
			b->rc = -KILN_E_INTERNAL;
			snprintf(b->err, sizeof(b->err), "out of memory");
		} else {
			b->rc = kiln_scene_set_settings(b->scene, &set, b->err, sizeof(b->err));
		}
	}
	if (!b->rc)
		build_scene(job, b, b->scene, b->base_dir ? b->base_dir : dir);
	free(dir);
}

static void load_done(struct job *job, void *arg, int status)
{
	struct build_ctx *b = arg;
	struct scene_entry *e;

	st.pending_loads--;
	if (status) {
		job_fail(job, -KILN_E_CANCELLED, NULL, "cancelled");
	} else if (b->rc || over_budget(b, kiln_scene_memory(b->scene), budget_for(job_config(job), NULL, job_peer(job)->uid))) {
		/* Besides the worker's errors: it checked the budget left when
		 * the request came, and loads that finished meanwhile may have
		 * taken it. */
		job_fail(job, b->rc, json_incref(b->detail), "%s", b->err);
	} else if (count_of(job_peer(job)->uid) >= job_config(job)->scene_max_scenes_per_uid) {
		/* Other loads of this user finished meanwhile. */
		job_fail(job, -KILN_E_TOO_LARGE, json_pack("{s:s}", "limit", "scene_max_scenes_per_uid"),
			 "you keep %u scenes already (scene_max_scenes_per_uid); delete one first",
			 count_of(job_peer(job)->uid));
	} else if (!(e = entry_new(b->scene))) {
		job_fail(job, -KILN_E_INTERNAL, NULL, "out of memory");
	} else {
		b->scene = NULL;
		json_array_extend(e->elements, b->elements);
		json_array_extend(e->lights, b->lights);
		table_insert(e, job_peer(job)->uid);
		job_succeed(job, summary(e), "scene %" JSON_INTEGER_FORMAT " loaded", e->id);
	}
	build_ctx_free(b);
}

static void act_load(struct job *job, json_t *args)
{
	json_t *doc = json_object_get(args, "scene"), *path = json_object_get(args, "path");
	json_t *base = json_object_get(args, "base_dir");
	struct build_ctx *b;

	if (scenes_full(job))
		return;
	if (base && json_string_value(base)[0] != '/') {
		job_fail(job, -KILN_E_INVALID_ARGS, json_pack("{s:s}", "path", "args.base_dir"),
			 "args.base_dir: expected an absolute directory");
		return;
	}
	b = build_ctx_new();
	if (!b || (path && !(b->path = strdup(json_string_value(path)))) ||
	    (base && !(b->base_dir = strdup(json_string_value(base))))) {
		if (b)
			build_ctx_free(b);
		job_fail(job, -KILN_E_INTERNAL, NULL, "out of memory");
		return;
	}
	/* A reference, not a copy: the job keeps its args until every work
	 * item's done callback has run (job.h), and the worker only reads. */
	b->doc = json_incref(doc);
	b->format = json_string_value(json_object_get(args, "format"));
	b->budget = budget_for(job_config(job), NULL, job_peer(job)->uid);
	st.pending_loads++;
	if (job_queue_work(job, load_work, load_done, b)) {
		st.pending_loads--;
		build_ctx_free(b);
		job_fail(job, -KILN_E_INTERNAL, NULL, "cannot queue work");
	}
}

/* --- scene.get / list / delete -------------------------------------------- */

static void act_get(struct job *job, json_t *args)
{
	struct scene_entry *e = lookup(job, args);
	const char *fmt = json_string_value(json_object_get(args, "format"));
	char err[256];
	json_t *doc;
	int rc;

	if (!e)
		return;
	if (fmt && !strcmp(fmt, "rust")) {
		rc = scene_doc_to_rust(kiln_scene_settings(e->scene), e->elements, e->lights, &doc, err, sizeof(err));
		if (rc) {
			job_fail(job, rc, NULL, "%s", err);
			return;
		}
		job_succeed(job, json_pack("{s:I, s:s, s:o}", "scene_id", e->id, "format", "rust", "scene", doc),
			    "scene %" JSON_INTEGER_FORMAT " in the Rust format", e->id);
		return;
	}
	doc = scene_doc_settings_json(kiln_scene_settings(e->scene));
	json_object_set_new(doc, "elements", json_deep_copy(e->elements));
	json_object_set_new(doc, "lights", json_deep_copy(e->lights));
	job_succeed(job, json_pack("{s:I, s:s, s:o}", "scene_id", e->id, "format", "kiln", "scene", doc),
		    "scene %" JSON_INTEGER_FORMAT, e->id);
}

/* The caller's scenes; an admin's `"all": true` lists everyone's. */
static void act_list(struct job *job, json_t *args)
{
	bool all = json_is_true(json_object_get(args, "all"));
	uid_t uid = job_peer(job)->uid;
	json_t *list = json_array();

	if (all && !creds_is_admin(job_config(job), job_peer(job))) {
		json_decref(list);
		job_fail(job, -KILN_E_FORBIDDEN, json_pack("{s:s}", "path", "args.all"),
			 "only admins (root, admin_uids, admin_gids) may list every user's scenes");
		return;
	}
	for (struct scene_entry *e = st.head; e; e = e->next)
		if (all || e->owner == uid)
			json_array_append_new(list, summary(e));
	job_succeed(job, json_pack("{s:o, s:I}", "scenes", list, "memory_bytes",
				   (json_int_t)(all ? st.memory : memory_of(uid))),
		    "%zu scenes", json_array_size(list));
}

/* The caller's scene, or (for an admin) anyone's. */
static void act_delete(struct job *job, json_t *args)
{
	struct scene_entry *e = lookup_as(job, args, true);
	json_int_t id;

	if (!e)
		return;
	id = e->id;
	table_remove(e);
	job_succeed(job, json_pack("{s:I, s:b}", "scene_id", id, "deleted", 1),
		    "scene %" JSON_INTEGER_FORMAT " deleted", id);
}

/* --- scene.render ---------------------------------------------------------- */

/*
 * A render attached to the reply holds the whole region in memory, so it is
 * limited to scene_max_pixels.  A render to a file (`output`) streams: the
 * region is cut into bands of rows (BAND_BYTES of RGBA at most, KILN_TILE
 * rows at least); the pool renders one band's tiles at a time into one
 * band buffer, then a worker appends its rows to the file (PNG row writes
 * or raw RGBA), then the next band starts.  Memory stays at one band plus
 * the PNG writer whatever the size of the image.
 */
#define BAND_BYTES (8u << 20)

struct render_ctx {
	struct scene_entry *entry; /* a reference, and entry->renders counted */
	struct kiln_region region; /* what was asked for */
	struct kiln_region cur;    /* what is being rendered into rgba: region, or one band */
	bool png;
	char *output;              /* stream to this file instead of attaching */
	int fd;                    /* the open output (pout.fd), or -1 */
	struct kiln_path_out pout; /* the temporary beside the target, while pout_open */
	bool pout_open;
	struct kiln_png_writer *writer;
	uint8_t *rgba;             /* cur's pixels */
	unsigned band_rows;        /* streaming: rows per band */
	unsigned tiles;            /* of cur */
	uint64_t tiles_before, tiles_total; /* progress over all bands */
	atomic_uint next_tile;
	atomic_uint tiles_done;
	atomic_uint_fast64_t rays;
	uint64_t start_ns;
	/* Output stage. */
	unsigned char *out;
	size_t out_len;
	char *resolved;
	int rc;
	char err[512];
};

static void render_ctx_free(struct render_ctx *r)
{
	r->entry->renders--;
	entry_unref(r->entry);
	kiln_png_writer_free(r->writer);
	if (r->pout_open) {
		char err[128];

		/* A render that stopped early: its temporary goes. */
		kiln_path_finish(&r->pout, false, err, sizeof(err));
	} else if (r->fd >= 0) {
		close(r->fd);
	}
	free(r->output);
	free(r->rgba);
	free(r->out);
	free(r->resolved);
	free(r);
}

/* Tile loop: every work item takes tiles of `cur` from the shared counter
 * until they run out or the job is cancelled (checked before every tile). */
static void render_work(struct job *job, void *arg, unsigned item)
{
	struct render_ctx *r = arg;
	const kiln_scene *scene = r->entry->scene;
	uint64_t rays = 0;

	(void)item;
	for (;;) {
		if (job_cancelled(job))
			break;
		unsigned t = atomic_fetch_add(&r->next_tile, 1);
		if (t >= r->tiles)
			break;
		kiln_render_tile(scene, &r->cur, t, r->rgba, &rays);
		unsigned done = atomic_fetch_add(&r->tiles_done, 1) + 1;
		job_progress(job, r->tiles_before + done, r->tiles_total);
	}
	atomic_fetch_add(&r->rays, rays);
}

static void render_done(struct job *job, void *arg, int status);

/* Queues the work items that render `cur`; if none can be, fails the job
 * and frees r. */
static void render_start(struct job *job, struct render_ctx *r)
{
	unsigned n;

	r->tiles = kiln_render_tile_count(&r->cur);
	atomic_store(&r->next_tile, 0);
	atomic_store(&r->tiles_done, 0);
	n = job_parallelism() < r->tiles ? job_parallelism() : r->tiles;
	if (job_queue_batch(job, n ? n : 1, render_work, render_done, r) == 0)
		return;
	job_fail(job, -KILN_E_INTERNAL, NULL, "cannot queue work");
	render_ctx_free(r);
}

/* Encodes the attached PNG (worker). */
static void encode_work(struct job *job, void *arg)
{
	struct render_ctx *r = arg;

	(void)job;
	r->rc = kiln_png_encode_rgba(r->rgba, r->region.width, r->region.height, &r->out, &r->out_len, r->err,
				     sizeof(r->err));
}

/* Writes `len` bytes to the output (worker); 0 or -KILN_E_INTERNAL. */
static int write_all(struct render_ctx *r, const unsigned char *data, size_t len)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = write(r->fd, data + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(r->err, sizeof(r->err), "writing %s: %s", r->output, strerror(errno));
			return -KILN_E_INTERNAL;
		}
		off += (size_t)n;
	}
	return 0;
}

/* Opens the output and starts the PNG (worker). */
static void open_work(struct job *job, void *arg)
{
	struct render_ctx *r = arg;

	/* A temporary beside the target, renamed into place once the last
	 * band is written: only a complete image replaces the target. */
	r->rc = kiln_path_create(job_config(job), r->output, true, &r->pout, &r->resolved, r->err,
				 sizeof(r->err));
	if (r->rc < 0)
		return;
	r->pout_open = true;
	r->fd = r->pout.fd;
	if (r->png)
		r->rc = kiln_png_writer_new(r->fd, r->region.width, r->region.height, &r->writer, r->err,
					    sizeof(r->err));
}

/* Appends the band's rows to the output, and after the last band ends the
 * file (worker). */
static void band_write_work(struct job *job, void *arg)
{
	struct render_ctx *r = arg;
	bool last = r->cur.y + r->cur.height == r->region.y + r->region.height;
	struct stat sb;

	(void)job;
	if (r->png)
		r->rc = kiln_png_writer_rows(r->writer, r->rgba, r->cur.height, r->err, sizeof(r->err));
	else
		r->rc = write_all(r, r->rgba, (size_t)r->cur.width * r->cur.height * 4);
	if (!r->rc && last && r->png)
		r->rc = kiln_png_writer_finish(r->writer, r->err, sizeof(r->err));
	if (!r->rc && last && fstat(r->fd, &sb)) {
		snprintf(r->err, sizeof(r->err), "writing %s: %s", r->output, strerror(errno));
		r->rc = -KILN_E_INTERNAL;
	}
	if (!r->rc && last)
		r->out_len = (size_t)sb.st_size;
	if (r->rc || last) {
		/* fsyncs and renames on success, removes the temporary otherwise;
		 * closes the descriptor either way. */
		int rc = kiln_path_finish(&r->pout, !r->rc, r->err, sizeof(r->err));

		r->pout_open = false;
		r->fd = -1;
		if (rc && !r->rc)
			r->rc = rc;
	}
}

static void render_reply(struct job *job, struct render_ctx *r)
{
	json_t *data = json_pack("{s:i, s:i, s:s, s:f, s:I}", "width", (int)r->region.width, "height",
				 (int)r->region.height, "format", r->png ? "png" : "rgba", "render_ms",
				 (double)(uv_hrtime() - r->start_ns) / 1e6, "rays",
				 (json_int_t)atomic_load(&r->rays));

	if (r->output) {
		json_object_set_new(data, "output", json_string(r->resolved));
		json_object_set_new(data, "bytes", json_integer((json_int_t)r->out_len));
	} else if (r->png) {
		job_set_reply_attachment(job, r->out, r->out_len, free);
		r->out = NULL;
	} else {
		job_set_reply_attachment(job, r->rgba, (size_t)r->region.width * r->region.height * 4, free);
		r->rgba = NULL;
	}
	job_succeed(job, data, "rendered %ux%u", r->region.width, r->region.height);
}

/* Fails the job if a worker stage failed or it was cancelled; true then
 * (r freed). */
static bool stage_failed(struct job *job, struct render_ctx *r, int status)
{
	if (status)
		job_fail(job, -KILN_E_CANCELLED, NULL, "cancelled");
	else if (r->rc)
		job_fail(job, r->rc, NULL, "%s", r->err);
	else
		return false;
	render_ctx_free(r);
	return true;
}

static void encode_done(struct job *job, void *arg, int status)
{
	struct render_ctx *r = arg;

	if (stage_failed(job, r, status))
		return;
	render_reply(job, r);
	render_ctx_free(r);
}

/* The next band of a streaming render, or false after the last one. */
static bool next_band(struct render_ctx *r)
{
	unsigned end = r->region.y + r->region.height;
	unsigned y = r->cur.height ? r->cur.y + r->cur.height : r->region.y;

	if (y >= end)
		return false;
	r->tiles_before += r->tiles;
	r->cur = (struct kiln_region){r->region.x, y, r->region.width,
				      end - y < r->band_rows ? end - y : r->band_rows};
	return true;
}

static void band_write_done(struct job *job, void *arg, int status)
{
	struct render_ctx *r = arg;

	if (stage_failed(job, r, status))
		return;
	if (!next_band(r)) {
		render_reply(job, r);
		render_ctx_free(r);
		return;
	}
	render_start(job, r);
}

static void open_done(struct job *job, void *arg, int status)
{
	struct render_ctx *r = arg;

	if (stage_failed(job, r, status))
		return;
	next_band(r);
	render_start(job, r);
}

static void render_done(struct job *job, void *arg, int status)
{
	struct render_ctx *r = arg;
	job_work_fn next = r->output ? band_write_work : encode_work;
	int reason;

	/* Every tile rendered, unless a work item never ran (cancelled, or not
	 * queued: its tiles were taken by the others) or the job was cancelled. */
	(void)status;
	if (atomic_load(&r->tiles_done) < r->tiles || job_cancelled(job)) {
		reason = job_cancel_reason(job);
		job_fail(job, -(reason ? reason : KILN_E_CANCELLED), NULL, "render stopped");
		render_ctx_free(r);
		return;
	}
	if (!r->png && !r->output) {
		render_reply(job, r);
		render_ctx_free(r);
		return;
	}
	if (job_queue_work(job, next, r->output ? band_write_done : encode_done, r)) {
		job_fail(job, -KILN_E_INTERNAL, NULL, "cannot queue work");
		render_ctx_free(r);
	}
}

static int parse_region(struct job *job, json_t *args, struct scene_entry *e, struct kiln_region *reg)
{
	json_t *rj = json_object_get(args, "region");
	char err[256];
	int rc;

	*reg = kiln_region_full(e->scene);
	if (!rj)
		return 0;
	reg->x = (unsigned)json_integer_value(json_object_get(rj, "x"));
	reg->y = (unsigned)json_integer_value(json_object_get(rj, "y"));
	reg->width = (unsigned)json_integer_value(json_object_get(rj, "width"));
	reg->height = (unsigned)json_integer_value(json_object_get(rj, "height"));
	rc = kiln_region_check(e->scene, reg, err, sizeof(err));
	if (rc)
		job_fail(job, rc, json_pack("{s:s}", "path", "args.region"), "args.region: %s", err);
	return rc;
}

/* Opens the output file, if any, then starts the tiles (loop). */
static void render_begin(struct job *job, struct render_ctx *r)
{
	if (!r->output) {
		render_start(job, r);
		return;
	}
	if (job_queue_work(job, open_work, open_done, r)) {
		render_ctx_free(r);
		job_fail(job, -KILN_E_INTERNAL, NULL, "cannot queue work");
	}
}

/* Builds the BVH over what was added since the last build (worker).  A
 * render started meanwhile waits on the lock and then finds nothing to do;
 * renders already drawing tiles only read, as kiln_scene_prepare() does
 * when the BVH is current. */
static void prepare_work(struct job *job, void *arg)
{
	struct render_ctx *r = arg;
	struct scene_entry *e = r->entry;

	pthread_mutex_lock(&e->prepare_lock);
	r->rc = kiln_scene_prepare(e->scene, job_cancel_token(job), r->err, sizeof(r->err));
	pthread_mutex_unlock(&e->prepare_lock);
}

static void prepare_done(struct job *job, void *arg, int status)
{
	struct render_ctx *r = arg;
	struct scene_entry *e = r->entry;
	int reason;

	e->preparing--;
	if (!status && !r->rc) {
		render_begin(job, r);
		return;
	}
	/* Not built: the next render tries again. */
	e->stale = true;
	if (status || r->rc == -KILN_E_CANCELLED) {
		reason = job_cancel_reason(job);
		job_fail(job, -(reason ? reason : KILN_E_CANCELLED), NULL, "render stopped");
	} else {
		job_fail(job, r->rc, NULL, "%s", r->err);
	}
	render_ctx_free(r);
}

/* An attached render holds the whole region: at most scene_max_pixels. */
static bool attach_too_large(struct job *job, const struct kiln_region *reg)
{
	uint64_t max = job_config(job)->scene_max_pixels, px = (uint64_t)reg->width * reg->height;

	if (px <= max)
		return false;
	job_fail(job, -KILN_E_TOO_LARGE, config_limit_detail(job_config(job), "scene_max_pixels"),
		 "a %ux%u render is more than scene_max_pixels (%llu) to hold whole: render it to a file "
		 "(output), which streams it, or a region of it",
		 reg->width, reg->height, (unsigned long long)max);
	return true;
}

static void act_render(struct job *job, json_t *args)
{
	struct scene_entry *e = lookup(job, args);
	json_t *fmt = json_object_get(args, "format"), *out = json_object_get(args, "output");
	struct kiln_region reg;
	struct render_ctx *r;
	size_t rows;

	if (!e || scene_busy(job, e, false) || parse_region(job, args, e, &reg) ||
	    (!out && attach_too_large(job, &reg)))
		return;
	r = calloc(1, sizeof(*r));
	if (!r) {
		job_fail(job, -KILN_E_INTERNAL, NULL, "out of memory");
		return;
	}
	r->region = reg;
	r->fd = -1;
	r->entry = e;
	e->refs++;
	e->renders++;
	r->start_ns = uv_hrtime();
	r->png = fmt && strcmp(json_string_value(fmt), "png") == 0;
	/* Counted in 64 bits: a 2^20 x 2^20 frame has 2^32 tiles. */
	r->tiles_total = (uint64_t)((reg.width + KILN_TILE - 1) / KILN_TILE) * ((reg.height + KILN_TILE - 1) / KILN_TILE);
	rows = reg.height;
	if (out) {
		rows = BAND_BYTES / ((size_t)reg.width * 4) / KILN_TILE * KILN_TILE;
		rows = rows < KILN_TILE ? KILN_TILE : rows > reg.height ? reg.height : rows;
		r->band_rows = (unsigned)rows;
	}
	r->cur = out ? (struct kiln_region){reg.x, reg.y, reg.width, 0} : reg;
	r->rgba = malloc((size_t)reg.width * rows * 4);
	if (!r->rgba || (out && !(r->output = strdup(json_string_value(out))))) {
		render_ctx_free(r);
		job_fail(job, -KILN_E_INTERNAL, NULL, "out of memory");
		return;
	}
	if (!e->stale && !e->preparing) {
		render_begin(job, r);
		return;
	}
	/* Whatever was added so far is in the BVH this build makes. */
	e->stale = false;
	e->preparing++;
	if (job_queue_work(job, prepare_work, prepare_done, r)) {
		e->preparing--;
		e->stale = true;
		render_ctx_free(r);
		job_fail(job, -KILN_E_INTERNAL, NULL, "cannot queue work");
	}
}

/* --- Family ---------------------------------------------------------------- */

static int scene_init(const struct kiln_config *cfg)
{
	(void)cfg;
	return 0;
}

static void scene_shutdown(void)
{
	while (st.head)
		table_remove(st.head);
}

/* scene.render without output: the pixels, base64-sized (raw replies are
 * smaller), plus the reply line. */
static size_t scene_reply_bound(const struct action *a, const struct kiln_config *cfg, json_t *args)
{
	json_t *rj = json_object_get(args, "region");
	struct scene_entry *e;
	uint64_t px;

	(void)cfg;
	if (strcmp(a->name, "scene.render") != 0 || json_object_get(args, "output"))
		return 0;
	if (rj) {
		px = (uint64_t)json_integer_value(json_object_get(rj, "width")) *
		     (uint64_t)json_integer_value(json_object_get(rj, "height"));
	} else {
		e = find_id(json_integer_value(json_object_get(args, "scene_id")));
		if (!e)
			return 0;
		px = (uint64_t)kiln_scene_settings(e->scene)->width * kiln_scene_settings(e->scene)->height;
	}
	return (size_t)(px * 4 / 3 * 4 + 4096);
}

static void scene_stats_per_uid(json_t *per_uid)
{
	for (struct scene_entry *e = st.head; e; e = e->next) {
		json_t *o = dispatch_uid_figures(per_uid, (unsigned)e->owner);
		json_object_set_new(o, "scenes", json_integer(json_integer_value(json_object_get(o, "scenes")) + 1));
		json_object_set_new(o, "scene_memory_bytes",
				    json_integer(json_integer_value(json_object_get(o, "scene_memory_bytes")) +
						 (json_int_t)e->memory));
	}
}

static void scene_stats(json_t *into)
{
	json_object_set_new(into, "scenes", json_integer(st.count));
	json_object_set_new(into, "scene_memory_bytes", json_integer((json_int_t)st.memory));
}

static size_t scene_memory_held(void)
{
	return st.memory;
}

#define COLOR_SCHEMA "{\"description\":\"colour [r, g, b] or {\\\"r\\\", \\\"g\\\", \\\"b\\\"}\"}"
#define VEC_SCHEMA "{\"description\":\"vector [x, y, z] or {\\\"x\\\", \\\"y\\\", \\\"z\\\"}\"}"
#define SETTINGS_PROPS                                                                              \
	"\"width\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":1048576},"                       \
	"\"height\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":1048576},"                      \
	"\"fov\":{\"type\":\"number\",\"exclusiveMinimum\":0,\"exclusiveMaximum\":180,"             \
	"\"description\":\"vertical field of view, degrees\"},"                                    \
	"\"shadow_bias\":{\"type\":\"number\",\"minimum\":0},"                                       \
	"\"max_recursion_depth\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":64},"              \
	"\"samples\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":256,"                          \
	"\"description\":\"samples per pixel (antialiasing)\"},"                                     \
	"\"gamma\":{\"type\":\"number\",\"exclusiveMinimum\":0,\"maximum\":10},"                    \
	"\"semantics\":{\"enum\":[\"kiln\",\"rust\"],\"description\":\"whose rendering rules: "          \
	"kiln's, or the Rust tracer's (one-sided planes, its glass, its texture wrapping)\"},"       \
	"\"background\":" COLOR_SCHEMA ","                                                          \
	"\"camera\":{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{"           \
	"\"position\":" VEC_SCHEMA ",\"look_at\":" VEC_SCHEMA ",\"up\":" VEC_SCHEMA "}}"
#define SCENE_ID_PROP "\"scene_id\":{\"type\":\"integer\"}"
/* The scene format, for describe and proto/actions.json: every element,
 * material and light type as a JSON Schema in "$defs" (shared by scene.add,
 * scene.load and scene.get).  scene_doc.c checks items in full and names
 * the failing one; the schema validator passes every object on to it (the
 * first alternative, the Rust form, requires no key), so adding a list of
 * thousands of elements costs no schema walk per item. */
#define SCENE_DEFS \
	"\"$defs\":{\"vec\":{\"description\":\"a vector: [x, y, z] or {\\\"x\\\", \\\"y\\\", \\\"z\\\"}\"" \
	",\"anyOf\":[{\"type\":\"array\",\"minItems\":3,\"maxItems\":3,\"items\":{\"type\":\"number\"}},{" \
	"\"type\":\"object\",\"required\":[\"x\",\"y\",\"z\"],\"properties\":{\"x\":{\"type\":\"number\"}" \
	",\"y\":{\"type\":\"number\"},\"z\":{\"type\":\"number\"}}}]},\"color\":{\"description\":\"a colo" \
	"ur, components 0..1: [r, g, b], {\\\"r\\\", \\\"g\\\", \\\"b\\\"} or {\\\"red\\\", \\\"green\\\"" \
	", \\\"blue\\\"}\",\"anyOf\":[{\"type\":\"array\",\"minItems\":3,\"maxItems\":3,\"items\":{\"type" \
	"\":\"number\"}},{\"type\":\"object\",\"required\":[\"r\",\"g\",\"b\"],\"properties\":{\"r\":{\"t" \
	"ype\":\"number\"},\"g\":{\"type\":\"number\"},\"b\":{\"type\":\"number\"}}},{\"type\":\"object\"" \
	",\"required\":[\"red\",\"green\",\"blue\"],\"properties\":{\"red\":{\"type\":\"number\"},\"green" \
	"\":{\"type\":\"number\"},\"blue\":{\"type\":\"number\"}}}]},\"material\":{\"type\":\"object\",\"" \
	"description\":\"a material: color or texture (not both), albedo, surface and its parameters. Rus" \
	"t form: coloration {\\\"Color\\\": colour} or {\\\"Texture\\\": {\\\"path\\\"}}; surface \\\"Dif" \
	"fuse\\\", {\\\"Reflective\\\": {\\\"reflectivity\\\"}} or {\\\"Refractive\\\": {\\\"index\\\", \\\"" \
	"transparency\\\"}}\",\"properties\":{\"color\":{\"$ref\":\"#/$defs/color\",\"description\":\"sur" \
	"face colour (default [1, 1, 1])\"},\"texture\":{\"description\":\"a PNG file (absolute path unde" \
	"r path_roots, read with your rights), mapped by the element's uv coordinates\",\"anyOf\":[{\"typ" \
	"e\":\"string\",\"minLength\":1},{\"type\":\"object\",\"required\":[\"path\"],\"properties\":{\"p" \
	"ath\":{\"type\":\"string\",\"minLength\":1}}}]},\"albedo\":{\"type\":\"number\",\"minimum\":0,\"" \
	"default\":0.18,\"description\":\"share of light a diffuse surface reflects\"},\"surface\":{\"des" \
	"cription\":\"\\\"diffuse\\\" (default), \\\"reflective\\\" or \\\"refractive\\\" (case-insensiti" \
	"ve), or the Rust form {\\\"Reflective\\\": {\\\"reflectivity\\\": r}} / {\\\"Refractive\\\": {\\\"" \
	"index\\\": n, \\\"transparency\\\": t}}\",\"type\":[\"string\",\"object\"]},\"reflectivity\":{\"" \
	"type\":\"number\",\"minimum\":0,\"maximum\":1,\"default\":0.5,\"description\":\"reflective: the " \
	"mirror share\"},\"index\":{\"type\":\"number\",\"default\":1.5,\"description\":\"refractive: the" \
	" refractive index\"},\"transparency\":{\"type\":\"number\",\"minimum\":0,\"maximum\":1,\"default" \
	"\":1,\"description\":\"refractive: the share of light passing through\"},\"coloration\":{\"type\"" \
	":\"object\",\"description\":\"the Rust form of color/texture\"}}},\"sphere\":{\"type\":\"object\"" \
	",\"title\":\"sphere\",\"required\":[\"type\",\"center\",\"radius\",\"material\"],\"properties\":" \
	"{\"type\":{\"type\":\"string\",\"enum\":[\"sphere\"],\"description\":\"case-insensitive\"},\"cen" \
	"ter\":{\"$ref\":\"#/$defs/vec\"},\"radius\":{\"type\":\"number\",\"exclusiveMinimum\":0},\"mater" \
	"ial\":{\"$ref\":\"#/$defs/material\"}}},\"plane\":{\"type\":\"object\",\"title\":\"plane\",\"des" \
	"cription\":\"an infinite plane\",\"required\":[\"type\",\"origin\",\"normal\",\"material\"],\"pr" \
	"operties\":{\"type\":{\"type\":\"string\",\"enum\":[\"plane\"],\"description\":\"case-insensitiv" \
	"e\"},\"origin\":{\"$ref\":\"#/$defs/vec\",\"description\":\"a point on the plane\"},\"normal\":{" \
	"\"$ref\":\"#/$defs/vec\",\"description\":\"surface normal (not zero; need not be unit length)\"}" \
	",\"material\":{\"$ref\":\"#/$defs/material\"}}},\"mesh\":{\"type\":\"object\",\"title\":\"mesh\"" \
	",\"required\":[\"type\",\"material\"],\"description\":\"triangles from a Wavefront OBJ file (pat" \
	"h) or inline (vertices and faces)\",\"properties\":{\"type\":{\"type\":\"string\",\"enum\":[\"me" \
	"sh\"],\"description\":\"case-insensitive\"},\"path\":{\"type\":\"string\",\"minLength\":1,\"desc" \
	"ription\":\"an OBJ file (absolute path under path_roots)\"},\"vertices\":{\"type\":\"array\",\"i" \
	"tems\":{\"type\":\"array\",\"minItems\":3,\"maxItems\":3,\"items\":{\"type\":\"number\"}},\"desc" \
	"ription\":\"[x, y, z] per vertex\"},\"faces\":{\"type\":\"array\",\"description\":\"triangles: t" \
	"hree 0-based vertex indices each\",\"items\":{\"type\":\"array\",\"minItems\":3,\"maxItems\":3,\"" \
	"items\":{\"type\":\"integer\",\"minimum\":0}}},\"uvs\":{\"type\":\"array\",\"description\":\"[u," \
	" v] per vertex (for textures)\",\"items\":{\"type\":\"array\",\"minItems\":2,\"maxItems\":2,\"it" \
	"ems\":{\"type\":\"number\"}}},\"normals\":{\"type\":\"array\",\"items\":{\"type\":\"array\",\"mi" \
	"nItems\":3,\"maxItems\":3,\"items\":{\"type\":\"number\"}},\"description\":\"[x, y, z] per verte" \
	"x (smooth shading)\"},\"translate\":{\"$ref\":\"#/$defs/vec\",\"description\":\"added after scal" \
	"ing (default [0, 0, 0])\"},\"scale\":{\"type\":\"number\",\"exclusiveMinimum\":0,\"default\":1}," \
	"\"material\":{\"$ref\":\"#/$defs/material\"}}},\"point\":{\"type\":\"object\",\"title\":\"point " \
	"light\",\"required\":[\"type\",\"position\",\"intensity\"],\"description\":\"light from a point," \
	" falling off with the square of the distance\",\"properties\":{\"type\":{\"type\":\"string\",\"e" \
	"num\":[\"point\"],\"description\":\"case-insensitive\"},\"position\":{\"$ref\":\"#/$defs/vec\"}," \
	"\"color\":{\"$ref\":\"#/$defs/color\",\"description\":\"default [1, 1, 1]\"},\"intensity\":{\"ty" \
	"pe\":\"number\",\"minimum\":0}}},\"directional\":{\"type\":\"object\",\"title\":\"directional li" \
	"ght\",\"required\":[\"type\",\"direction\",\"intensity\"],\"description\":\"light from infinitel" \
	"y far away (like the sun), of constant intensity\",\"properties\":{\"type\":{\"type\":\"string\"" \
	",\"enum\":[\"directional\"],\"description\":\"case-insensitive\"},\"direction\":{\"$ref\":\"#/$d" \
	"efs/vec\",\"description\":\"the way the light travels\"},\"color\":{\"$ref\":\"#/$defs/color\",\"" \
	"description\":\"default [1, 1, 1]\"},\"intensity\":{\"type\":\"number\",\"minimum\":0}}},\"rust_" \
	"item\":{\"type\":\"object\",\"title\":\"Rust form\",\"description\":\"the Rust ray tracer's exte" \
	"rnally tagged form: one key naming the kind (Sphere, Plane, Mesh, Spherical = point light, Direc" \
	"tional; case-insensitive) whose value holds that kind's fields without \\\"type\\\" (a Rust plan" \
	"e's normal points away from the visible side)\",\"properties\":{\"Sphere\":{\"type\":\"object\"}" \
	",\"Plane\":{\"type\":\"object\"},\"Mesh\":{\"type\":\"object\"},\"Spherical\":{\"type\":\"object" \
	"\"},\"Directional\":{\"type\":\"object\"}}},\"element\":{\"description\":\"an element: sphere, p" \
	"lane or mesh (a light here is added as a light). The scene parser checks every item in full and " \
	"names the failing one in detail.path; so that a list of thousands stays fast, the schema validat" \
	"or lets every object through (the Rust form, listed first, has no required key).\",\"anyOf\":[{\"" \
	"$ref\":\"#/$defs/rust_item\"},{\"$ref\":\"#/$defs/sphere\"},{\"$ref\":\"#/$defs/plane\"},{\"$ref" \
	"\":\"#/$defs/mesh\"},{\"$ref\":\"#/$defs/point\"},{\"$ref\":\"#/$defs/directional\"}]},\"light\"" \
	":{\"description\":\"a light: point or directional. The scene parser checks every item in full an" \
	"d names the failing one in detail.path; so that a list of thousands stays fast, the schema valid" \
	"ator lets every object through (the Rust form, listed first, has no required key).\",\"anyOf\":[" \
	"{\"$ref\":\"#/$defs/rust_item\"},{\"$ref\":\"#/$defs/point\"},{\"$ref\":\"#/$defs/directional\"}" \
	"]}}"
#define SCENE_DOC_SCHEMA                                                                            \
	"{\"type\":\"object\",\"description\":\"a whole scene: the settings of scene.create "              \
	"(width, height, fov, camera, ...) with elements and lights\",\"properties\":{"                 \
	"\"elements\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/element\"}},"                       \
	"\"lights\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/light\"}}}}"
#define SUMMARY_SCHEMA                                                                              \
	"{\"type\":\"object\",\"properties\":{\"scene_id\":{\"type\":\"integer\"},"                 \
	"\"width\":{\"type\":\"integer\"},\"height\":{\"type\":\"integer\"},"                        \
	"\"elements\":{\"type\":\"integer\"},\"lights\":{\"type\":\"integer\"},"                     \
	"\"memory_bytes\":{\"type\":\"integer\"},\"renders\":{\"type\":\"integer\"}}}"

static const struct action scene_actions[] = {
	{ "scene.create", "Creates an empty scene from settings (all optional) and returns its scene_id.",
	  "{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{" SETTINGS_PROPS "}}",
	  SUMMARY_SCHEMA, act_create, 0 },
	{ "scene.update", "Changes a scene's settings and camera (busy while it renders).",
	  "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"scene_id\"],\"properties\":{"
	  SCENE_ID_PROP "," SETTINGS_PROPS "}}",
	  SUMMARY_SCHEMA, act_update, 0 },
	{ "scene.add", "Adds elements (sphere, plane, mesh) and lights (directional, point), all or none.",
	  "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"scene_id\"],"
	  "\"anyOf\":[{\"required\":[\"element\"]},{\"required\":[\"elements\"]},"
	  "{\"required\":[\"light\"]},{\"required\":[\"lights\"]}],\"properties\":{" SCENE_ID_PROP ","
	  "\"element\":{\"$ref\":\"#/$defs/element\"},"
	  "\"elements\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/element\"}},"
	  "\"light\":{\"$ref\":\"#/$defs/light\"},"
	  "\"lights\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/light\"}}}," SCENE_DEFS "}",
	  SUMMARY_SCHEMA, act_add, 0 },
	{ "scene.load", "Creates a scene from a whole document, inline or from a file, in kiln's format "
	  "(kiln semantics unless it says \"semantics\": \"rust\") or the Rust tracer's (rendered as the tracer "
	  "renders it). Unknown keys are invalid_args.",
	  "{\"type\":\"object\",\"additionalProperties\":false,"
	  "\"oneOf\":[{\"required\":[\"scene\"]},{\"required\":[\"path\"]}],\"properties\":{"
	  "\"scene\":" SCENE_DOC_SCHEMA ",\"path\":{\"type\":\"string\",\"minLength\":1,"
	  "\"description\":\"a scene file (JSON, kiln or Rust format) under path_roots\"},"
	  "\"format\":{\"enum\":[\"auto\",\"kiln\",\"rust\"],\"description\":\"the document's format; "
	  "auto (default): Rust if its items are {\\\"Sphere\\\": ...} tagged\"},"
	  "\"base_dir\":{\"type\":\"string\",\"minLength\":1,\"description\":\"absolute directory that "
	  "relative texture and OBJ paths are resolved against (the directory the original app ran in); "
	  "default: the scene file's directory\"}}," SCENE_DEFS "}",
	  SUMMARY_SCHEMA, act_load, 0 },
	{ "scene.get", "The scene as a document: kiln's format (default; scene.load renders it identically) "
	  "or, converted, the Rust tracer's (which the tracer, and scene.load, render with its semantics).",
	  "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"scene_id\"],\"properties\":{"
	  SCENE_ID_PROP ",\"format\":{\"enum\":[\"kiln\",\"rust\"]}}}",
	  "{\"type\":\"object\",\"properties\":{\"scene_id\":{\"type\":\"integer\"},\"format\":{\"type\":\"string\"},"
	  "\"scene\":" SCENE_DOC_SCHEMA "}," SCENE_DEFS "}",
	  act_get, 0 },
	{ "scene.list", "The caller's scenes with size, element count and memory; all: every user's (admins).",
	  "{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{\"all\":{\"type\":\"boolean\"}}}",
	  "{\"type\":\"object\",\"properties\":{\"scenes\":{\"type\":\"array\"},\"memory_bytes\":{\"type\":\"integer\"}}}",
	  act_list, 0 },
	{ "scene.delete", "Forgets one of the caller's scenes, any for admins (renders in flight finish first).",
	  "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"scene_id\"],\"properties\":{"
	  SCENE_ID_PROP "}}",
	  "{\"type\":\"object\",\"properties\":{\"scene_id\":{\"type\":\"integer\"},\"deleted\":{\"type\":\"boolean\"}}}",
	  act_delete, 0 },
	{ "scene.render", "Renders (a region of) a scene on the thread pool: RGBA or PNG, attached (at most "
	  "scene_max_pixels) or streamed to `output` row band by row band in bounded memory (any size).",
	  "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"scene_id\"],\"properties\":{"
	  SCENE_ID_PROP ",\"format\":{\"enum\":[\"rgba\",\"png\"]},"
	  "\"region\":{\"type\":\"object\",\"additionalProperties\":false,"
	  "\"required\":[\"x\",\"y\",\"width\",\"height\"],\"properties\":{"
	  "\"x\":{\"type\":\"integer\",\"minimum\":0},\"y\":{\"type\":\"integer\",\"minimum\":0},"
	  "\"width\":{\"type\":\"integer\",\"minimum\":1},\"height\":{\"type\":\"integer\",\"minimum\":1}}},"
	  "\"output\":{\"type\":\"string\",\"minLength\":1,\"description\":\"absolute path under path_roots\"}}}",
	  "{\"type\":\"object\",\"properties\":{\"width\":{\"type\":\"integer\"},\"height\":{\"type\":\"integer\"},"
	  "\"format\":{\"type\":\"string\"},\"render_ms\":{\"type\":\"number\"},\"rays\":{\"type\":\"integer\"}}}",
	  act_render, 0 },
};

const struct action_family family_scene = {
	.name = "scene",
	.actions = scene_actions,
	.count = sizeof(scene_actions) / sizeof(scene_actions[0]),
	.init = scene_init,
	.shutdown = scene_shutdown,
	.stats = scene_stats,
	.stats_per_uid = scene_stats_per_uid,
	.reply_bound = scene_reply_bound,
	.memory_held = scene_memory_held,
};
