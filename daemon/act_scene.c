/*
 * Scene actions (issue 6): scenes kept in the daemon, built from JSON and
 * rendered in parallel on the thread pool.
 *
 * Concurrency rule: a scene is never modified while something reads it.
 * scene.add runs on a worker (it reads textures and OBJ files and rebuilds
 * the BVH) and marks the scene as being written; scene.render marks it as
 * being read.  scene.add or scene.update on a scene being rendered, and
 * scene.render or scene.add on a scene being written, get `busy`: the
 * client retries.  scene.delete is always allowed: the table drops its
 * reference and the scene is freed when the last job using it finishes.
 * The scene table itself is touched on the loop thread only.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
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
	bool in_table;
	size_t memory;             /* kiln_scene_memory() after the last change */
	struct scene_entry *next;
};

static struct {
	struct scene_entry *head;
	unsigned count;
	unsigned pending_loads; /* slots reserved by scene.load in flight */
	size_t memory;          /* sum of memory over the table */
	unsigned workers;       /* render work items per request (pool size) */
} st;

static void entry_unref(struct scene_entry *e)
{
	if (--e->refs)
		return;
	kiln_scene_free(e->scene);
	json_decref(e->elements);
	json_decref(e->lights);
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
	if (!e->elements || !e->lights) {
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
	job_fail(job, -KILN_E_TOO_LARGE,
		 json_pack("{s:s, s:i}", "limit", "scene_max_scenes", "scene_max_scenes", (int)cfg->scene_max_scenes),
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
	rc = scene_doc_settings(job_config(job), args, &set, err, sizeof(err));
	if (rc) {
		job_fail(job, rc, NULL, "%s", err);
		return;
	}
	scene = kiln_scene_new();
	if (!scene || kiln_scene_set_settings(scene, &set, err, sizeof(err)) ||
	    kiln_scene_prepare(scene, NULL, err, sizeof(err)) || !(e = entry_new(scene))) {
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
	rc = scene_doc_settings(job_config(job), args, &set, err, sizeof(err));
	if (!rc)
		rc = kiln_scene_set_settings(e->scene, &set, err, sizeof(err));
	/* Only the camera and lookup tables change: the BVH is up to date. */
	if (!rc)
		rc = kiln_scene_prepare(e->scene, NULL, err, sizeof(err));
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

/* Adds the document's items to `scene` within the budget, then rebuilds the
 * BVH.  All or nothing. */
static void build_scene(struct job *job, struct build_ctx *b, kiln_scene *scene, const char *base_dir)
{
	struct scene_doc_ctx dc = {.cfg = job_config(job), .scene = scene, .base_dir = base_dir};

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
	/* The BVH is rebuilt whether or not the batch stayed, without
	 * cancellation, so the scene is always ready to render afterwards. */
	if (kiln_scene_prepare(scene, NULL, b->err, sizeof(b->err)) && !b->rc)
		b->rc = -KILN_E_INTERNAL;
}

static void add_work(struct job *job, void *arg)
{
	struct build_ctx *b = arg;

	build_scene(job, b, b->entry->scene, NULL);
}

/* Takes the batch out again (worker: the BVH is rebuilt). */
static void undo_batch(struct build_ctx *b)
{
	kiln_scene_rollback(b->entry->scene, &b->mark);
	if (kiln_scene_prepare(b->entry->scene, NULL, b->err, sizeof(b->err)))
		b->rc = -KILN_E_INTERNAL;
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
	job_fail(job, b->rc, b->rc == -KILN_E_TOO_LARGE ? json_incref(b->detail) : NULL, "%s", b->err);
	entry_unref(e);
	build_ctx_free(b);
}

static void undo_done(struct job *job, void *arg, int status)
{
	/* Cancelled before it ran: the scene must not keep the batch, so undo
	 * it here (a rare path; it costs one BVH rebuild on the loop). */
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
	b->rc = scene_doc_settings(cfg, b->doc, &set, b->err, sizeof(b->err));
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
		build_scene(job, b, b->scene, dir);
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
	struct build_ctx *b;

	if (scenes_full(job))
		return;
	b = build_ctx_new();
	if (!b || (path && !(b->path = strdup(json_string_value(path))))) {
		if (b)
			build_ctx_free(b);
		job_fail(job, -KILN_E_INTERNAL, NULL, "out of memory");
		return;
	}
	/* A reference, not a copy: the job keeps its args until every work
	 * item's done callback has run (job.h), and the worker only reads. */
	b->doc = json_incref(doc);
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
	json_t *doc;

	if (!e)
		return;
	doc = scene_doc_settings_json(kiln_scene_settings(e->scene));
	json_object_set_new(doc, "elements", json_deep_copy(e->elements));
	json_object_set_new(doc, "lights", json_deep_copy(e->lights));
	job_succeed(job, json_pack("{s:I, s:o}", "scene_id", e->id, "scene", doc),
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

struct render_ctx {
	struct scene_entry *entry; /* a reference, and entry->renders counted */
	struct kiln_region region;
	bool png;
	char *output;              /* write here instead of attaching */
	uint8_t *rgba;
	unsigned tiles;
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
	free(r->output);
	free(r->rgba);
	free(r->out);
	free(r->resolved);
	free(r);
}

/* Tile loop: every work item takes tiles from the shared counter until they
 * run out or the job is cancelled (checked before every tile). */
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
		kiln_render_tile(scene, &r->region, t, r->rgba, &rays);
		unsigned done = atomic_fetch_add(&r->tiles_done, 1) + 1;
		job_progress(job, done, r->tiles);
	}
	atomic_fetch_add(&r->rays, rays);
}

static void write_all(struct job *job, struct render_ctx *r, const unsigned char *data, size_t len)
{
	struct kiln_path_out out;
	int fd = kiln_path_create(job_config(job), r->output, true, &out, &r->resolved, r->err,
				  sizeof(r->err));
	size_t off = 0;

	if (fd < 0) {
		r->rc = fd;
		return;
	}
	while (off < len) {
		ssize_t n = write(fd, data + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(r->err, sizeof(r->err), "writing %s: %s", r->output, strerror(errno));
			r->rc = -KILN_E_INTERNAL;
			break;
		}
		off += (size_t)n;
	}
	/* Only a complete image replaces the target. */
	int rc = kiln_path_finish(&out, !r->rc, r->err, sizeof(r->err));
	if (rc && !r->rc)
		r->rc = rc;
}

/* Encodes the PNG and/or writes the file. */
static void output_work(struct job *job, void *arg)
{
	struct render_ctx *r = arg;
	const unsigned char *data = r->rgba;
	size_t len = (size_t)r->region.width * r->region.height * 4;

	if (r->png) {
		r->rc = kiln_png_encode_rgba(r->rgba, r->region.width, r->region.height, &r->out, &r->out_len,
					     r->err, sizeof(r->err));
		if (r->rc)
			return;
		data = r->out;
		len = r->out_len;
	}
	if (r->output)
		write_all(job, r, data, len);
}

static void render_reply(struct job *job, struct render_ctx *r)
{
	json_t *data = json_pack("{s:i, s:i, s:s, s:f, s:I}", "width", (int)r->region.width, "height",
				 (int)r->region.height, "format", r->png ? "png" : "rgba", "render_ms",
				 (double)(uv_hrtime() - r->start_ns) / 1e6, "rays",
				 (json_int_t)atomic_load(&r->rays));
	size_t len;

	if (r->output) {
		len = r->png ? r->out_len : (size_t)r->region.width * r->region.height * 4;
		json_object_set_new(data, "output", json_string(r->resolved));
		json_object_set_new(data, "bytes", json_integer((json_int_t)len));
	} else if (r->png) {
		job_set_reply_attachment(job, r->out, r->out_len, free);
		r->out = NULL;
	} else {
		job_set_reply_attachment(job, r->rgba, (size_t)r->region.width * r->region.height * 4, free);
		r->rgba = NULL;
	}
	job_succeed(job, data, "rendered %ux%u", r->region.width, r->region.height);
}

static void output_done(struct job *job, void *arg, int status)
{
	struct render_ctx *r = arg;

	if (status)
		job_fail(job, -KILN_E_CANCELLED, NULL, "cancelled");
	else if (r->rc)
		job_fail(job, r->rc, NULL, "%s", r->err);
	else
		render_reply(job, r);
	render_ctx_free(r);
}

static void render_done(struct job *job, void *arg, int status)
{
	struct render_ctx *r = arg;
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
	if (job_queue_work(job, output_work, output_done, r)) {
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

static void act_render(struct job *job, json_t *args)
{
	struct scene_entry *e = lookup(job, args);
	json_t *fmt = json_object_get(args, "format"), *out = json_object_get(args, "output");
	struct render_ctx *r;

	if (!e || scene_busy(job, e, false))
		return;
	r = calloc(1, sizeof(*r));
	if (!r) {
		job_fail(job, -KILN_E_INTERNAL, NULL, "out of memory");
		return;
	}
	if (parse_region(job, args, e, &r->region)) {
		free(r);
		return;
	}
	r->entry = e;
	e->refs++;
	e->renders++;
	r->start_ns = uv_hrtime();
	r->png = fmt && strcmp(json_string_value(fmt), "png") == 0;
	r->tiles = kiln_render_tile_count(&r->region);
	r->rgba = malloc((size_t)r->region.width * r->region.height * 4);
	if (!r->rgba || (out && !(r->output = strdup(json_string_value(out))))) {
		render_ctx_free(r);
		job_fail(job, -KILN_E_INTERNAL, NULL, "out of memory");
		return;
	}
	unsigned n = st.workers < r->tiles ? st.workers : r->tiles;
	if (job_queue_batch(job, n ? n : 1, render_work, render_done, r) != 0) {
		render_ctx_free(r);
		job_fail(job, -KILN_E_INTERNAL, NULL, "cannot queue work");
	}
}

/* --- Family ---------------------------------------------------------------- */

static int scene_init(const struct kiln_config *cfg)
{
	(void)cfg;
	st.workers = config_pool_threads();
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
	"\"background\":" COLOR_SCHEMA ","                                                          \
	"\"camera\":{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{"           \
	"\"position\":" VEC_SCHEMA ",\"look_at\":" VEC_SCHEMA ",\"up\":" VEC_SCHEMA "}}"
#define SCENE_ID_PROP "\"scene_id\":{\"type\":\"integer\"}"
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
	  "{\"type\":\"object\"}", act_update, 0 },
	{ "scene.add", "Adds elements (sphere, plane, mesh) and lights (directional, point), all or none.",
	  "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"scene_id\"],"
	  "\"anyOf\":[{\"required\":[\"element\"]},{\"required\":[\"elements\"]},"
	  "{\"required\":[\"light\"]},{\"required\":[\"lights\"]}],\"properties\":{" SCENE_ID_PROP ","
	  "\"element\":{\"type\":\"object\"},\"elements\":{\"type\":\"array\",\"items\":{\"type\":\"object\"}},"
	  "\"light\":{\"type\":\"object\"},\"lights\":{\"type\":\"array\",\"items\":{\"type\":\"object\"}}}}",
	  SUMMARY_SCHEMA, act_add, 0 },
	{ "scene.load", "Creates a scene from a whole document, inline or from a file (kiln or Rust format).",
	  "{\"type\":\"object\",\"additionalProperties\":false,"
	  "\"oneOf\":[{\"required\":[\"scene\"]},{\"required\":[\"path\"]}],\"properties\":{"
	  "\"scene\":{\"type\":\"object\"},\"path\":{\"type\":\"string\",\"minLength\":1}}}",
	  SUMMARY_SCHEMA, act_load, 0 },
	{ "scene.get", "The scene as a document that scene.load renders identically.",
	  "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"scene_id\"],\"properties\":{"
	  SCENE_ID_PROP "}}",
	  "{\"type\":\"object\",\"properties\":{\"scene_id\":{\"type\":\"integer\"},\"scene\":{\"type\":\"object\"}}}",
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
	{ "scene.render", "Renders (a region of) a scene on the thread pool: RGBA or PNG, attached or to `output`.",
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
