/*
 * Scene documents: JSON (kiln's format or the Rust ray tracer's) to libkiln
 * scene calls, and back (scene_doc.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "kiln/error.h"
#include "kiln/image.h"
#include "kiln/mesh.h"
#include "paths.h"
#include "scene_doc.h"

/* Reads a number member; 1 if present, 0 if absent, -1 if not a number. */
static int get_num(json_t *obj, const char *key, double *out)
{
	json_t *v = json_object_get(obj, key);

	if (!v)
		return 0;
	if (!json_is_number(v))
		return -1;
	*out = json_number_value(v);
	return 1;
}

/* The first key of `obj` not in `allowed` (NULL-terminated), or NULL. */
static const char *unknown_key(json_t *obj, const char *const *allowed)
{
	const char *key;
	json_t *v;

	json_object_foreach(obj, key, v) {
		size_t i = 0;
		while (allowed[i] && strcmp(allowed[i], key))
			i++;
		if (!allowed[i])
			return key;
	}
	return NULL;
}

/* Fails with invalid_args naming a key of `obj` that is not in `allowed`. */
static int check_keys(json_t *obj, const char *const *allowed, const char *where, char *err, size_t errlen)
{
	const char *key = unknown_key(obj, allowed);

	if (!key)
		return 0;
	return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "%s: unknown key \"%s\"", where, key);
}

/* Reads [a, b, c] or an object with exactly the three given keys. */
static int triple(json_t *v, const char *k0, const char *k1, const char *k2, double out[3])
{
	const char *keys[3] = {k0, k1, k2};

	if (json_is_array(v)) {
		if (json_array_size(v) != 3)
			return -1;
		for (size_t i = 0; i < 3; i++) {
			json_t *e = json_array_get(v, i);
			if (!json_is_number(e))
				return -1;
			out[i] = json_number_value(e);
		}
		return 0;
	}
	if (!json_is_object(v) || json_object_size(v) != 3)
		return -1;
	for (int i = 0; i < 3; i++) {
		json_t *e = json_object_get(v, keys[i]);
		if (!json_is_number(e))
			return -1;
		out[i] = json_number_value(e);
	}
	return 0;
}

static int parse_vec(json_t *v, kiln_vec3 *out)
{
	double d[3];

	if (triple(v, "x", "y", "z", d))
		return -1;
	*out = (kiln_vec3){d[0], d[1], d[2]};
	return 0;
}

static int parse_color(json_t *v, kiln_vec3 *out)
{
	double d[3];

	if (triple(v, "r", "g", "b", d) && triple(v, "red", "green", "blue", d))
		return -1;
	*out = (kiln_vec3){d[0], d[1], d[2]};
	return 0;
}

/* A required (or, if `dflt` is given, optional) vector or colour member,
 * read by `parse`; `expected` describes the accepted forms in errors. */
static int member_triple(json_t *obj, const char *key, const kiln_vec3 *dflt, kiln_vec3 *out,
			 int (*parse)(json_t *, kiln_vec3 *), const char *expected, const char *where,
			 char *err, size_t errlen)
{
	json_t *v = json_object_get(obj, key);

	if (!v) {
		if (dflt) {
			*out = *dflt;
			return 0;
		}
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "%s: missing field \"%s\"", where, key);
	}
	if (parse(v, out))
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "%s.%s: expected %s", where, key, expected);
	return 0;
}

#define VEC_FORMS "[x, y, z] or {\"x\", \"y\", \"z\"} numbers"
#define COLOR_FORMS "a colour [r, g, b] or {\"red\", \"green\", \"blue\"}"

static int member_vec(json_t *obj, const char *key, const kiln_vec3 *dflt, kiln_vec3 *out,
		      const char *where, char *err, size_t errlen)
{
	return member_triple(obj, key, dflt, out, parse_vec, VEC_FORMS, where, err, errlen);
}

static int member_color(json_t *obj, const char *key, const kiln_vec3 *dflt, kiln_vec3 *out,
			const char *where, char *err, size_t errlen)
{
	return member_triple(obj, key, dflt, out, parse_color, COLOR_FORMS, where, err, errlen);
}

static int member_num(json_t *obj, const char *key, const double *dflt, double *out,
		      const char *where, char *err, size_t errlen)
{
	int rc = get_num(obj, key, out);

	if (rc < 0)
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "%s.%s: expected a number", where, key);
	if (rc == 0) {
		if (!dflt)
			return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "%s: missing field \"%s\"", where, key);
		*out = *dflt;
	}
	return 0;
}

static json_t *vec_json(kiln_vec3 v)
{
	return json_pack("[f, f, f]", v.x, v.y, v.z);
}

/* --- Settings ------------------------------------------------------------- */

static int settings_uint(json_t *obj, const char *key, unsigned max, unsigned *out, char *err, size_t errlen)
{
	json_t *v = json_object_get(obj, key);

	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > max)
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "%s: expected an integer from 0 to %u", key, max);
	*out = (unsigned)json_integer_value(v);
	return 0;
}

int scene_doc_settings(json_t *obj, struct kiln_settings *s, char *err, size_t errlen)
{
	static const char *const cam_keys[] = {"position", "look_at", "up", NULL};
	json_t *cam = json_object_get(obj, "camera"), *sem = json_object_get(obj, "semantics");
	int rc;

	if (sem) {
		const char *name = json_string_value(sem);
		if (name && !strcmp(name, "kiln"))
			s->semantics = KILN_SEMANTICS_KILN;
		else if (name && !strcmp(name, "rust"))
			s->semantics = KILN_SEMANTICS_RUST;
		else
			return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "semantics: expected \"kiln\" or \"rust\"");
	}

	if ((rc = settings_uint(obj, "width", 1u << 20, &s->width, err, errlen)) ||
	    (rc = settings_uint(obj, "height", 1u << 20, &s->height, err, errlen)) ||
	    (rc = settings_uint(obj, "max_recursion_depth", 64, &s->max_recursion_depth, err, errlen)) ||
	    (rc = settings_uint(obj, "samples", 256, &s->samples, err, errlen)) ||
	    (rc = member_num(obj, "fov", &s->fov, &s->fov, "scene", err, errlen)) ||
	    (rc = member_num(obj, "shadow_bias", &s->shadow_bias, &s->shadow_bias, "scene", err, errlen)) ||
	    (rc = member_num(obj, "gamma", &s->gamma, &s->gamma, "scene", err, errlen)) ||
	    (rc = member_color(obj, "background", &s->background, &s->background, "scene", err, errlen)))
		return rc;
	if (cam) {
		if (!json_is_object(cam))
			return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "camera: expected an object");
		if ((rc = check_keys(cam, cam_keys, "camera", err, errlen)))
			return rc;
		if ((rc = member_vec(cam, "position", &s->camera_position, &s->camera_position, "camera", err,
				     errlen)) ||
		    (rc = member_vec(cam, "look_at", &s->camera_look_at, &s->camera_look_at, "camera", err,
				     errlen)) ||
		    (rc = member_vec(cam, "up", &s->camera_up, &s->camera_up, "camera", err, errlen)))
			return rc;
	}
	return kiln_settings_check(s, err, errlen);
}

json_t *scene_doc_settings_json(const struct kiln_settings *s)
{
	return json_pack("{s:i, s:i, s:f, s:f, s:i, s:{s:o, s:o, s:o}, s:o, s:i, s:f, s:s}", "width",
			 (int)s->width, "height", (int)s->height, "fov", s->fov, "shadow_bias",
			 s->shadow_bias, "max_recursion_depth", (int)s->max_recursion_depth, "camera",
			 "position", vec_json(s->camera_position), "look_at", vec_json(s->camera_look_at), "up",
			 vec_json(s->camera_up), "background", vec_json(s->background), "samples",
			 (int)s->samples, "gamma", s->gamma, "semantics",
			 s->semantics == KILN_SEMANTICS_RUST ? "rust" : "kiln");
}

/* --- Whole documents ------------------------------------------------------- */

static const char *const kiln_doc_keys[] = {"width", "height", "fov", "shadow_bias", "max_recursion_depth",
					    "camera", "background", "samples", "gamma", "semantics",
					    "elements", "lights", NULL};
static const char *const rust_doc_keys[] = {"width", "height", "fov", "shadow_bias", "max_recursion_depth",
					    "elements", "lights", NULL};

/* An externally tagged item ({"Sphere": {...}}) rather than a kiln one. */
static bool is_tagged(json_t *item)
{
	return json_is_object(item) && !json_object_get(item, "type") && json_object_size(item) == 1 &&
	       json_is_object(json_object_iter_value(json_object_iter(item)));
}

/* Counts kiln and tagged items in one list. */
static void count_items(json_t *list, size_t *kiln, size_t *rust)
{
	size_t i;
	json_t *item;

	json_array_foreach(list, i, item) {
		if (is_tagged(item))
			(*rust)++;
		else
			(*kiln)++;
	}
}

int scene_doc_detect(json_t *doc, const char *requested, enum scene_doc_format *format, char *err,
		     size_t errlen)
{
	size_t kiln = 0, rust = 0;
	const char *const *keys;
	const char *bad;

	count_items(json_object_get(doc, "elements"), &kiln, &rust);
	count_items(json_object_get(doc, "lights"), &kiln, &rust);
	if (requested && !strcmp(requested, "rust"))
		*format = SCENE_DOC_RUST;
	else if (requested && !strcmp(requested, "kiln"))
		*format = SCENE_DOC_KILN;
	else if (kiln && rust)
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS,
			    "the document mixes kiln items ({\"type\": ...}) and Rust items ({\"Sphere\": ...}); "
			    "use one format");
	else
		*format = rust ? SCENE_DOC_RUST : SCENE_DOC_KILN;
	keys = *format == SCENE_DOC_RUST ? rust_doc_keys : kiln_doc_keys;
	bad = unknown_key(doc, keys);
	if (bad)
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "unknown key \"%s\" in a %s-format scene", bad,
			    *format == SCENE_DOC_RUST ? "Rust" : "kiln");
	if (*format == SCENE_DOC_RUST) {
		/* The tracer's Scene has no defaults: every field is required. */
		for (size_t i = 0; keys[i]; i++)
			if (!json_object_get(doc, keys[i]))
				return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS,
					    "missing field \"%s\" (the Rust format requires it)", keys[i]);
	}
	return 0;
}

/* --- Files ---------------------------------------------------------------- */

/* Resolves `path` against base_dir when relative (if allowed). */
static int full_path(struct scene_doc_ctx *ctx, const char *path, char *out, size_t outlen,
		     const char *where, char *err, size_t errlen)
{
	int n;

	if (path[0] == '/')
		n = snprintf(out, outlen, "%s", path);
	else if (ctx->base_dir)
		n = snprintf(out, outlen, "%s/%s", ctx->base_dir, path);
	else
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS,
			    "%s: relative path \"%s\" (only scene files may use paths relative to themselves)",
			    where, path);
	if (n < 0 || (size_t)n >= outlen)
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "%s: path too long", where);
	return 0;
}

int scene_doc_read_file(const struct kiln_config *cfg, const char *path, char **resolved, unsigned char **buf,
			size_t *len, const char *where, char *err, size_t errlen)
{
	char msg[512];
	struct stat st;
	ssize_t got;
	size_t off = 0;
	/* kiln_path_open, not kiln_path_read: the resolved path is wanted too
	 * (texture key, canonical document, base of relative paths). */
	int fd = kiln_path_open(cfg, path, resolved, msg, sizeof(msg));

	*buf = NULL;
	if (fd < 0)
		return kiln_fail(err, errlen, fd, "%s: %s", where, msg);
	if (fstat(fd, &st)) {
		close(fd);
		return kiln_fail(err, errlen, -KILN_E_INTERNAL, "%s: %s: %s", where, path, strerror(errno));
	}
	if ((uint64_t)st.st_size > cfg->max_file_bytes) {
		close(fd);
		return kiln_fail(err, errlen, -KILN_E_TOO_LARGE, "%s: %s is larger than max_file_bytes", where, path);
	}
	*len = (size_t)st.st_size;
	*buf = malloc(*len + 1);
	if (!*buf) {
		close(fd);
		return kiln_fail(err, errlen, -KILN_E_INTERNAL, "out of memory");
	}
	while (off < *len) {
		got = read(fd, *buf + off, *len - off);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		off += (size_t)got;
	}
	close(fd);
	*len = off;
	(*buf)[off] = 0;
	return 0;
}

/* Index of the texture at `path`, loading it unless the scene has it. */
static int load_texture(struct scene_doc_ctx *ctx, const char *path, char **resolved_out,
			const char *where, char *err, size_t errlen)
{
	char full[PATH_MAX], *resolved = NULL;
	unsigned char *data = NULL;
	uint8_t *rgb = NULL;
	unsigned w, h;
	size_t len;
	int rc, idx;

	*resolved_out = NULL;
	rc = full_path(ctx, path, full, sizeof(full), where, err, errlen);
	if (rc)
		return rc;
	/* Read (and so checked) every time; a texture the scene has already
	 * is found by its path and not decoded again. */
	rc = scene_doc_read_file(ctx->cfg, full, &resolved, &data, &len, where, err, errlen);
	if (rc)
		goto out;
	if ((idx = kiln_scene_find_texture(ctx->scene, resolved)) >= 0) {
		free(data);
		*resolved_out = resolved;
		return idx;
	}
	char msg[256];
	rc = kiln_png_decode_rgb(data, len, ctx->cfg->scene_max_texture_pixels, &w, &h, &rgb, msg,
				 sizeof(msg));
	if (rc) {
		kiln_fail(err, errlen, rc, "%s: texture %s: %s%s", where, path, msg,
		     rc == -KILN_E_TOO_LARGE ? " (scene_max_texture_pixels)" : "");
		goto out;
	}
	rc = kiln_scene_add_texture(ctx->scene, resolved, w, h, rgb, err, errlen);
out:
	free(data);
	free(rgb);
	if (rc < 0) {
		free(resolved);
		return rc;
	}
	*resolved_out = resolved;
	return rc;
}

/* --- Materials ------------------------------------------------------------ */

static int surface_kind(const char *name, enum kiln_surface *out)
{
	if (!strcasecmp(name, "diffuse"))
		*out = KILN_SURFACE_DIFFUSE;
	else if (!strcasecmp(name, "reflective"))
		*out = KILN_SURFACE_REFLECTIVE;
	else if (!strcasecmp(name, "refractive"))
		*out = KILN_SURFACE_REFRACTIVE;
	else
		return -1;
	return 0;
}

/* Reads the surface: a name with flat parameters (kiln) or "Diffuse" /
 * {"Reflective": {...}} / {"Refractive": {...}} (Rust, parameters required). */
static int parse_surface(json_t *mat, bool rust, struct kiln_material *m, const char *where, char *err,
			 size_t errlen)
{
	static const char *const refl_keys[] = {"reflectivity", NULL};
	static const char *const refr_keys[] = {"index", "transparency", NULL};
	json_t *sv = json_object_get(mat, "surface"), *params = mat;
	const char *name = "diffuse";
	double one = 1, idx = 1.5, refl = 0.5;
	char w[300];
	int rc;

	if (json_is_string(sv)) {
		name = json_string_value(sv);
	} else if (rust && json_is_object(sv) && json_object_size(sv) == 1) {
		name = json_object_iter_key(json_object_iter(sv));
		params = json_object_iter_value(json_object_iter(sv));
		if (!json_is_object(params))
			return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "%s.surface.%s: expected an object",
				    where, name);
	} else if (sv || rust) {
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS,
			    rust ? "%s.surface: expected \"Diffuse\", {\"Reflective\": {...}} or {\"Refractive\": {...}}"
				 : "%s.surface: expected \"diffuse\", \"reflective\" or \"refractive\"",
			    where);
	}
	if (surface_kind(name, &m->surface))
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "%s.surface: unknown surface \"%s\"", where, name);
	snprintf(w, sizeof(w), "%s.surface.%s", where, name);
	if (params != mat && (rc = check_keys(params, m->surface == KILN_SURFACE_REFLECTIVE ? refl_keys
						     : refr_keys, w, err, errlen)))
		return rc;
	if (m->surface == KILN_SURFACE_REFLECTIVE)
		return member_num(params, "reflectivity", params == mat ? &refl : NULL, &m->reflectivity,
				  where, err, errlen);
	if (m->surface == KILN_SURFACE_REFRACTIVE) {
		rc = member_num(params, "index", params == mat ? &idx : NULL, &m->index, where, err, errlen);
		if (rc)
			return rc;
		return member_num(params, "transparency", params == mat ? &one : NULL, &m->transparency,
				  where, err, errlen);
	}
	return 0;
}

/* A texture member: "path" or {"path": "..."}; NULL if malformed. */
static json_t *texture_path(json_t *tex)
{
	if (json_is_object(tex))
		return json_object_size(tex) == 1 && json_is_string(json_object_get(tex, "path"))
			       ? json_object_get(tex, "path")
			       : NULL;
	return json_is_string(tex) ? tex : NULL;
}

/* The colour or texture member of a material: kiln's "color" / "texture",
 * or Rust's "coloration": {"Color": {...}} | {"Texture": {"path": ...}}. */
static int parse_coloration(json_t *mat, bool rust, json_t **c, json_t **tex, const char *w, char *err,
			    size_t errlen)
{
	json_t *col = json_object_get(mat, "coloration");

	*c = *tex = NULL;
	if (!rust) {
		*c = json_object_get(mat, "color");
		*tex = json_object_get(mat, "texture");
		if (*c && *tex)
			return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "%s: give a color or a texture, not both", w);
	} else if (!col) {
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "%s: missing field \"coloration\"", w);
	} else if (!json_is_object(col) || json_object_size(col) != 1 ||
		   !((*c = json_object_get(col, "Color")) || (*tex = json_object_get(col, "Texture")))) {
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS,
			    "%s.coloration: expected {\"Color\": {...}} or {\"Texture\": {\"path\": ...}}", w);
	}
	if (*tex && !(*tex = texture_path(*tex)))
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "%s.texture: expected a path or {\"path\": ...}", w);
	if (*c && parse_color(*c, &(kiln_vec3){0, 0, 0}))
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "%s.color: expected " COLOR_FORMS, w);
	return 0;
}

static json_t *material_canon(const struct kiln_material *m, const char *texture)
{
	static const char *const names[] = {"diffuse", "reflective", "refractive"};
	json_t *canon = json_pack("{s:f, s:s}", "albedo", m->albedo, "surface", names[m->surface]);

	if (texture)
		json_object_set_new(canon, "texture", json_string(texture));
	else
		json_object_set_new(canon, "color", vec_json(m->color));
	if (m->surface == KILN_SURFACE_REFLECTIVE)
		json_object_set_new(canon, "reflectivity", json_real(m->reflectivity));
	if (m->surface == KILN_SURFACE_REFRACTIVE) {
		json_object_set_new(canon, "index", json_real(m->index));
		json_object_set_new(canon, "transparency", json_real(m->transparency));
	}
	return canon;
}

/* Reads an element's material (NULL: missing) and writes its canonical
 * form into *canon. */
static int parse_material(struct scene_doc_ctx *ctx, json_t *mat, bool rust, struct kiln_material *m,
			  json_t **canon, const char *where, char *err, size_t errlen)
{
	static const char *const kiln_keys[] = {"color", "texture", "albedo", "surface", "reflectivity",
						"index", "transparency", NULL};
	static const char *const rust_keys[] = {"coloration", "albedo", "surface", NULL};
	static const double albedo_default = 0.18;
	json_t *tex, *c;
	char *resolved = NULL;
	char w[256];
	int rc;

	*canon = NULL;
	*m = (struct kiln_material){.color = {1, 1, 1}, .texture = -1};
	if (!mat)
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "%s: missing field \"material\"", where);
	snprintf(w, sizeof(w), "%s.material", where);
	if (!json_is_object(mat))
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "%s: expected an object", w);
	if ((rc = check_keys(mat, rust ? rust_keys : kiln_keys, w, err, errlen)) ||
	    (rc = parse_coloration(mat, rust, &c, &tex, w, err, errlen)) ||
	    (rc = member_num(mat, "albedo", rust ? NULL : &albedo_default, &m->albedo, w, err, errlen)) ||
	    (rc = parse_surface(mat, rust, m, w, err, errlen)))
		return rc;
	if (c)
		parse_color(c, &m->color);
	if (tex) {
		rc = load_texture(ctx, json_string_value(tex), &resolved, w, err, errlen);
		if (rc < 0)
			return rc;
		m->texture = rc;
	}
	*canon = material_canon(m, resolved);
	free(resolved);
	return 0;
}

/* --- Elements ------------------------------------------------------------- */

/* Lib errors get the item's name in front. */
static int lib_err(int rc, const char *where, char *err, size_t errlen)
{
	char msg[256];

	if (rc >= 0)
		return rc;
	snprintf(msg, sizeof(msg), "%s", err);
	return kiln_fail(err, errlen, rc, "%s: %s", where, msg);
}

static int add_sphere(struct scene_doc_ctx *ctx, json_t *e, bool rust, const char *where, json_t **canon,
		      char *err, size_t errlen)
{
	struct kiln_material m;
	json_t *mc;
	kiln_vec3 c;
	double r;
	int rc;

	if ((rc = member_vec(e, "center", NULL, &c, where, err, errlen)) ||
	    (rc = member_num(e, "radius", NULL, &r, where, err, errlen)))
		return rc;
	if (!(r > 0))
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "%s.radius: must be > 0 (got %g)", where, r);
	rc = parse_material(ctx, json_object_get(e, "material"), rust, &m, &mc, where, err, errlen);
	if (rc)
		return rc;
	rc = lib_err(kiln_scene_add_sphere(ctx->scene, c, r, &m, err, errlen), where, err, errlen);
	if (rc) {
		json_decref(mc);
		return rc;
	}
	*canon = json_pack("{s:s, s:o, s:f, s:o}", "type", "sphere", "center", vec_json(c), "radius", r,
			   "material", mc);
	return 0;
}

static int add_plane(struct scene_doc_ctx *ctx, json_t *e, bool rust, const char *where, json_t **canon,
		     char *err, size_t errlen)
{
	struct kiln_material m;
	json_t *mc;
	kiln_vec3 o, n;
	int rc;

	if ((rc = member_vec(e, "origin", NULL, &o, where, err, errlen)) ||
	    (rc = member_vec(e, "normal", NULL, &n, where, err, errlen)))
		return rc;
	if (n.x == 0 && n.y == 0 && n.z == 0)
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "%s.normal: must not be zero", where);
	/* The Rust tracer's plane normal points away from the visible side. */
	if (rust)
		n = (kiln_vec3){-n.x, -n.y, -n.z};
	rc = parse_material(ctx, json_object_get(e, "material"), rust, &m, &mc, where, err, errlen);
	if (rc)
		return rc;
	rc = lib_err(kiln_scene_add_plane(ctx->scene, o, n, &m, err, errlen), where, err, errlen);
	if (rc) {
		json_decref(mc);
		return rc;
	}
	*canon = json_pack("{s:s, s:o, s:o, s:o}", "type", "plane", "origin", vec_json(o), "normal",
			   vec_json(n), "material", mc);
	return 0;
}

/* Reads an array of `width`-number rows into a new double array. */
static int number_rows(json_t *arr, size_t width, double **out, size_t *n, const char *where,
		       const char *key, char *err, size_t errlen)
{
	size_t i;
	json_t *row;

	*out = NULL;
	*n = 0;
	if (!arr)
		return 0;
	if (!json_is_array(arr))
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "%s.%s: expected an array", where, key);
	*out = malloc((json_array_size(arr) * width + 1) * sizeof(double));
	if (!*out)
		return kiln_fail(err, errlen, -KILN_E_INTERNAL, "out of memory");
	json_array_foreach(arr, i, row) {
		if (!json_is_array(row) || json_array_size(row) != width)
			goto bad;
		for (size_t k = 0; k < width; k++) {
			json_t *x = json_array_get(row, k);
			if (!json_is_number(x))
				goto bad;
			(*out)[i * width + k] = json_number_value(x);
		}
	}
	*n = json_array_size(arr);
	return 0;
bad:
	free(*out);
	*out = NULL;
	return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "%s.%s[%zu]: expected %zu numbers", where, key, i, width);
}

static int inline_mesh(json_t *e, struct kiln_mesh *mesh, const char *where, char *err, size_t errlen)
{
	json_t *faces = json_object_get(e, "faces"), *f;
	size_t i;
	int rc;

	if ((rc = number_rows(json_object_get(e, "vertices"), 3, &mesh->vertices, &mesh->nvertices, where,
			      "vertices", err, errlen)) ||
	    (rc = number_rows(json_object_get(e, "uvs"), 2, &mesh->uvs, &mesh->nuvs, where, "uvs", err,
			      errlen)) ||
	    (rc = number_rows(json_object_get(e, "normals"), 3, &mesh->normals, &mesh->nnormals, where,
			      "normals", err, errlen)))
		return rc;
	if (!mesh->vertices)
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "%s: missing field \"vertices\" (or \"path\")", where);
	if (!json_is_array(faces))
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "%s: missing field \"faces\" (an array)", where);
	mesh->faces = malloc((json_array_size(faces) * 9 + 1) * sizeof(int32_t));
	if (!mesh->faces)
		return kiln_fail(err, errlen, -KILN_E_INTERNAL, "out of memory");
	json_array_foreach(faces, i, f) {
		int32_t *c = mesh->faces + i * 9;
		if (!json_is_array(f) || json_array_size(f) != 3)
			return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "%s.faces[%zu]: expected 3 indices", where, i);
		for (int k = 0; k < 3; k++) {
			json_t *x = json_array_get(f, k);
			json_int_t v = json_is_integer(x) ? json_integer_value(x) : -1;
			if (v < 0 || (size_t)v >= mesh->nvertices)
				return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS,
					    "%s.faces[%zu]: index out of range", where, i);
			/* Inline uvs and normals are per vertex. */
			c[k] = (int32_t)v;
			c[3 + k] = mesh->nuvs ? (int32_t)v : -1;
			c[6 + k] = mesh->nnormals ? (int32_t)v : -1;
		}
	}
	mesh->nfaces = json_array_size(faces);
	if ((mesh->nuvs && mesh->nuvs != mesh->nvertices) || (mesh->nnormals && mesh->nnormals != mesh->nvertices))
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "%s: uvs and normals need one entry per vertex", where);
	return 0;
}

static int add_mesh(struct scene_doc_ctx *ctx, json_t *e, const char *where, json_t **canon, char *err,
		    size_t errlen)
{
	struct kiln_mesh *mesh = calloc(1, sizeof(*mesh));
	json_t *path = json_object_get(e, "path"), *mc = NULL;
	char *resolved = NULL, full[PATH_MAX];
	unsigned char *data = NULL;
	struct kiln_material m;
	kiln_vec3 zero = {0, 0, 0}, tr = zero;
	double scale, one = 1;
	size_t len, used = kiln_scene_primitive_count(ctx->scene);
	int rc;

	if (!mesh)
		return kiln_fail(err, errlen, -KILN_E_INTERNAL, "out of memory");
	if ((rc = member_vec(e, "translate", &zero, &tr, where, err, errlen)) ||
	    (rc = member_num(e, "scale", &one, &scale, where, err, errlen)))
		goto fail;
	if (!(scale > 0 && isfinite(scale))) {
		rc = kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "%s.scale: must be > 0", where);
		goto fail;
	}
	if (path) {
		struct kiln_mesh *parsed;
		char msg[256];
		if (!json_is_string(path)) {
			rc = kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "%s.path: expected a string", where);
			goto fail;
		}
		if ((rc = full_path(ctx, json_string_value(path), full, sizeof(full), where, err, errlen)) ||
		    (rc = scene_doc_read_file(ctx->cfg, full, &resolved, &data, &len, where, err, errlen)))
			goto fail;
		size_t room = used < ctx->cfg->scene_max_elements ? ctx->cfg->scene_max_elements - used : 0;
		rc = kiln_obj_parse((const char *)data, len, room, &parsed, msg, sizeof(msg));
		if (rc) {
			kiln_fail(err, errlen, rc, "%s: %s: %s%s", where, json_string_value(path), msg,
			     rc == -KILN_E_TOO_LARGE ? " (scene_max_elements)" : "");
			goto fail;
		}
		kiln_mesh_free(mesh);
		mesh = parsed;
	} else if ((rc = inline_mesh(e, mesh, where, err, errlen))) {
		goto fail;
	}
	for (size_t i = 0; i < mesh->nvertices; i++) {
		double *v = mesh->vertices + i * 3;
		v[0] = v[0] * scale + tr.x;
		v[1] = v[1] * scale + tr.y;
		v[2] = v[2] * scale + tr.z;
	}
	rc = parse_material(ctx, json_object_get(e, "material"), false, &m, &mc, where, err, errlen);
	if (rc)
		goto fail;
	rc = lib_err(kiln_scene_add_mesh(ctx->scene, mesh, &m, err, errlen), where, err, errlen);
	mesh = NULL; /* the scene took it, even on failure */
	if (rc)
		goto fail;
	*canon = json_pack("{s:s, s:o, s:f, s:O}", "type", "mesh", "translate", vec_json(tr), "scale", scale,
			   "material", mc);
	if (resolved) {
		json_object_set_new(*canon, "path", json_string(resolved));
	} else {
		static const char *const keys[] = {"vertices", "faces", "uvs", "normals"};
		for (size_t k = 0; k < 4; k++)
			if (json_object_get(e, keys[k]))
				json_object_set_new(*canon, keys[k], json_deep_copy(json_object_get(e, keys[k])));
	}
fail:
	json_decref(mc);
	kiln_mesh_free(mesh);
	free(resolved);
	free(data);
	return rc;
}

static int add_light(struct scene_doc_ctx *ctx, json_t *e, enum kiln_light_kind kind, bool rust,
		     const char *where, json_t **canon, char *err, size_t errlen)
{
	static const kiln_vec3 white = {1, 1, 1};
	struct kiln_light l = {.kind = kind};
	const char *key = kind == KILN_LIGHT_DIRECTIONAL ? "direction" : "position";
	int rc;

	if ((rc = member_vec(e, key, NULL, &l.vec, where, err, errlen)) ||
	    (rc = member_color(e, "color", rust ? NULL : &white, &l.color, where, err, errlen)) ||
	    (rc = member_num(e, "intensity", NULL, &l.intensity, where, err, errlen)))
		return rc;
	rc = lib_err(kiln_scene_add_light(ctx->scene, &l, err, errlen), where, err, errlen);
	if (rc)
		return rc;
	*canon = json_pack("{s:s, s:o, s:o, s:f}", "type", kind == KILN_LIGHT_DIRECTIONAL ? "directional" : "point",
			   key, vec_json(l.vec), "color", vec_json(l.color), "intensity", l.intensity);
	return 0;
}

/* Keys of each kind of item, kiln's ("type" included) and Rust's. */
struct item_kind {
	const char *kiln, *rust;
	const char *keys[10];
};

static const struct item_kind item_kinds[] = {
	{"sphere", "Sphere", {"center", "radius", "material", NULL}},
	{"plane", "Plane", {"origin", "normal", "material", NULL}},
	{"mesh", NULL, {"path", "vertices", "faces", "uvs", "normals", "translate", "scale", "material", NULL}},
	{"directional", "Directional", {"direction", "color", "intensity", NULL}},
	{"point", "Spherical", {"position", "color", "intensity", NULL}},
};

/* The kind named `name` in one format, or NULL. */
static const struct item_kind *find_kind(const char *name, bool rust)
{
	for (size_t i = 0; i < sizeof(item_kinds) / sizeof(item_kinds[0]); i++) {
		const char *k = rust ? item_kinds[i].rust : item_kinds[i].kiln;
		if (k && !strcasecmp(k, name))
			return &item_kinds[i];
	}
	/* kiln's own name for Rust's spherical light. */
	if (!rust && !strcasecmp(name, "spherical"))
		return &item_kinds[4];
	return NULL;
}

static int check_item_keys(json_t *body, const struct item_kind *k, bool rust, const char *where, char *err,
			   size_t errlen)
{
	const char *keys[12];
	size_t n = 0;

	if (!rust)
		keys[n++] = "type";
	for (size_t i = 0; k->keys[i]; i++)
		keys[n++] = k->keys[i];
	keys[n] = NULL;
	return check_keys(body, keys, where, err, errlen);
}

int scene_doc_add_item(struct scene_doc_ctx *ctx, json_t *item, const char *where, json_t **canon,
		       int *is_light, char *err, size_t errlen)
{
	json_t *type = json_object_get(item, "type"), *body = item;
	const struct item_kind *k;
	const char *kind;
	bool rust = false;
	int rc;

	*canon = NULL;
	*is_light = 0;
	if (!json_is_object(item))
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "%s: expected an object", where);
	if (json_is_string(type)) {
		kind = json_string_value(type);
	} else if (is_tagged(item)) {
		/* Externally tagged: {"Sphere": {...}}. */
		kind = json_object_iter_key(json_object_iter(item));
		body = json_object_iter_value(json_object_iter(item));
		rust = true;
	} else {
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS,
			    "%s: missing field \"type\" (or a {\"Sphere\": {...}} style tag)", where);
	}
	if (ctx->format != SCENE_DOC_ANY && rust != (ctx->format == SCENE_DOC_RUST))
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "%s: a %s item in a %s-format document", where,
			    rust ? "Rust-format" : "kiln-format", rust ? "kiln" : "Rust");
	k = find_kind(kind, rust);
	if (!k)
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, rust
			    ? "%s: unknown element kind \"%s\" (Sphere, Plane, Directional, Spherical)"
			    : "%s: unknown element kind \"%s\" (sphere, plane, mesh, directional, point)", where, kind);
	if ((rc = check_item_keys(body, k, rust, where, err, errlen)))
		return rc;
	*is_light = k >= &item_kinds[3];
	if (k == &item_kinds[0])
		rc = add_sphere(ctx, body, rust, where, canon, err, errlen);
	else if (k == &item_kinds[1])
		rc = add_plane(ctx, body, rust, where, canon, err, errlen);
	else if (k == &item_kinds[2])
		rc = add_mesh(ctx, body, where, canon, err, errlen);
	else
		rc = add_light(ctx, body, k == &item_kinds[3] ? KILN_LIGHT_DIRECTIONAL : KILN_LIGHT_POINT, rust,
			       where, canon, err, errlen);
	if (rc)
		return rc;
	if (kiln_scene_primitive_count(ctx->scene) > ctx->cfg->scene_max_elements ||
	    kiln_scene_light_count(ctx->scene) > ctx->cfg->scene_max_elements) {
		json_decref(*canon);
		*canon = NULL;
		return kiln_fail(err, errlen, -KILN_E_TOO_LARGE, "%s: the scene would have more than %u elements "
			    "(scene_max_elements)", where, ctx->cfg->scene_max_elements);
	}
	return 0;
}

static int add_list(struct scene_doc_ctx *ctx, json_t *list, const char *name, json_t *elements,
		    json_t *lights, char *err, size_t errlen)
{
	char where[64];
	json_t *item, *canon;
	size_t i;
	int rc, is_light;

	if (!list)
		return 0;
	if (!json_is_array(list))
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "%s: expected an array", name);
	json_array_foreach(list, i, item) {
		snprintf(where, sizeof(where), "%s[%zu]", name, i);
		rc = scene_doc_add_item(ctx, item, where, &canon, &is_light, err, errlen);
		if (rc) {
			json_decref(ctx->detail);
			ctx->detail = json_pack("{s:s+}", "path", "args.", where);
			return rc;
		}
		json_array_append_new(is_light ? lights : elements, canon);
	}
	return 0;
}

int scene_doc_add_all(struct scene_doc_ctx *ctx, json_t *doc, json_t *elements, json_t *lights, char *err,
		      size_t errlen)
{
	struct kiln_scene_mark mark;
	size_t ne = json_array_size(elements), nl = json_array_size(lights);
	int rc;

	kiln_scene_mark(ctx->scene, &mark);
	rc = add_list(ctx, json_object_get(doc, "elements"), "elements", elements, lights, err, errlen);
	if (!rc)
		rc = add_list(ctx, json_object_get(doc, "lights"), "lights", elements, lights, err, errlen);
	if (rc) {
		kiln_scene_rollback(ctx->scene, &mark);
		while (json_array_size(elements) > ne)
			json_array_remove(elements, json_array_size(elements) - 1);
		while (json_array_size(lights) > nl)
			json_array_remove(lights, json_array_size(lights) - 1);
	}
	return rc;
}

/* --- Kiln's canonical items in the Rust format ----------------------------- */

static json_t *rust_vec(json_t *v)
{
	double d[3] = {0, 0, 0};

	triple(v, "x", "y", "z", d);
	return json_pack("{s:f, s:f, s:f}", "x", d[0], "y", d[1], "z", d[2]);
}

static json_t *rust_color(json_t *v)
{
	double d[3] = {0, 0, 0};

	triple(v, "r", "g", "b", d);
	return json_pack("{s:f, s:f, s:f}", "red", d[0], "green", d[1], "blue", d[2]);
}

static json_t *rust_material(json_t *m)
{
	const char *surface = json_string_value(json_object_get(m, "surface"));
	json_t *tex = json_object_get(m, "texture"), *col, *surf;

	col = tex ? json_pack("{s:{s:O}}", "Texture", "path", tex)
		  : json_pack("{s:o}", "Color", rust_color(json_object_get(m, "color")));
	if (!strcmp(surface, "reflective"))
		surf = json_pack("{s:{s:O}}", "Reflective", "reflectivity", json_object_get(m, "reflectivity"));
	else if (!strcmp(surface, "refractive"))
		surf = json_pack("{s:{s:O, s:O}}", "Refractive", "index", json_object_get(m, "index"),
				 "transparency", json_object_get(m, "transparency"));
	else
		surf = json_string("Diffuse");
	return json_pack("{s:o, s:O, s:o}", "coloration", col, "albedo", json_object_get(m, "albedo"), "surface",
			 surf);
}

static json_t *rust_item(json_t *item)
{
	const char *type = json_string_value(json_object_get(item, "type"));

	if (!strcmp(type, "sphere"))
		return json_pack("{s:{s:o, s:O, s:o}}", "Sphere", "center", rust_vec(json_object_get(item, "center")),
				 "radius", json_object_get(item, "radius"), "material",
				 rust_material(json_object_get(item, "material")));
	if (!strcmp(type, "plane")) {
		/* Rust's normal points away from the visible side. */
		double n[3] = {0, 0, 0};
		triple(json_object_get(item, "normal"), "x", "y", "z", n);
		return json_pack("{s:{s:o, s:{s:f, s:f, s:f}, s:o}}", "Plane", "origin",
				 rust_vec(json_object_get(item, "origin")), "normal", "x", -n[0], "y", -n[1], "z",
				 -n[2], "material", rust_material(json_object_get(item, "material")));
	}
	return json_pack("{s:{s:o, s:o, s:O}}", !strcmp(type, "directional") ? "Directional" : "Spherical",
			 !strcmp(type, "directional") ? "direction" : "position",
			 rust_vec(json_object_get(item, !strcmp(type, "directional") ? "direction" : "position")),
			 "color", rust_color(json_object_get(item, "color")), "intensity",
			 json_object_get(item, "intensity"));
}

/* Names the first setting the Rust format cannot express, or NULL. */
static const char *rust_inexpressible(const struct kiln_settings *s)
{
	struct kiln_settings d;

	kiln_settings_default(&d);
	if (memcmp(&s->camera_position, &d.camera_position, sizeof(kiln_vec3)) ||
	    memcmp(&s->camera_look_at, &d.camera_look_at, sizeof(kiln_vec3)) ||
	    memcmp(&s->camera_up, &d.camera_up, sizeof(kiln_vec3)))
		return "camera (the tracer's camera is fixed at the origin, looking down -z)";
	if (memcmp(&s->background, &d.background, sizeof(kiln_vec3)))
		return "background (the tracer's is black)";
	if (s->samples != 1)
		return "samples (the tracer casts one ray per pixel)";
	if (s->gamma != d.gamma)
		return "gamma (the tracer's is 2.2)";
	if (s->width < s->height)
		return "a portrait frame (the tracer needs width >= height)";
	return NULL;
}

int scene_doc_to_rust(const struct kiln_settings *s, json_t *elements, json_t *lights, json_t **out, char *err,
		      size_t errlen)
{
	const char *bad = rust_inexpressible(s);
	json_t *els, *lts, *item;
	size_t i;

	*out = NULL;
	if (bad)
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "the Rust format cannot express %s", bad);
	json_array_foreach(elements, i, item)
		if (!strcmp(json_string_value(json_object_get(item, "type")), "mesh"))
			return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS,
				    "elements[%zu] is a mesh, which the Rust format cannot express", i);
	els = json_array();
	lts = json_array();
	json_array_foreach(elements, i, item)
		json_array_append_new(els, rust_item(item));
	json_array_foreach(lights, i, item)
		json_array_append_new(lts, rust_item(item));
	*out = json_pack("{s:i, s:i, s:f, s:f, s:i, s:o, s:o}", "width", (int)s->width, "height", (int)s->height,
			 "fov", s->fov, "shadow_bias", s->shadow_bias, "max_recursion_depth",
			 (int)s->max_recursion_depth, "elements", els, "lights", lts);
	return *out ? 0 : kiln_fail(err, errlen, -KILN_E_INTERNAL, "out of memory");
}
