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

/* Reads [a, b, c] or an object with the three given keys. */
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
	if (!json_is_object(v))
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

int scene_doc_settings(const struct kiln_config *cfg, json_t *obj, struct kiln_settings *s,
		       char *err, size_t errlen)
{
	json_t *cam = json_object_get(obj, "camera");
	int rc;

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
		if ((rc = member_vec(cam, "position", &s->camera_position, &s->camera_position, "camera", err,
				     errlen)) ||
		    (rc = member_vec(cam, "look_at", &s->camera_look_at, &s->camera_look_at, "camera", err,
				     errlen)) ||
		    (rc = member_vec(cam, "up", &s->camera_up, &s->camera_up, "camera", err, errlen)))
			return rc;
	}
	rc = kiln_settings_check(s, err, errlen);
	if (rc)
		return rc;
	if ((uint64_t)s->width * s->height > cfg->scene_max_pixels)
		return kiln_fail(err, errlen, -KILN_E_TOO_LARGE, "%ux%u is more than scene_max_pixels (%llu)",
			    s->width, s->height, (unsigned long long)cfg->scene_max_pixels);
	return 0;
}

json_t *scene_doc_settings_json(const struct kiln_settings *s)
{
	return json_pack("{s:i, s:i, s:f, s:f, s:i, s:{s:o, s:o, s:o}, s:o, s:i, s:f}", "width",
			 (int)s->width, "height", (int)s->height, "fov", s->fov, "shadow_bias",
			 s->shadow_bias, "max_recursion_depth", (int)s->max_recursion_depth, "camera",
			 "position", vec_json(s->camera_position), "look_at", vec_json(s->camera_look_at), "up",
			 vec_json(s->camera_up), "background", vec_json(s->background), "samples",
			 (int)s->samples, "gamma", s->gamma);
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
 * {"Reflective": {...}} / {"Refractive": {...}} (Rust). */
static int parse_surface(json_t *mat, struct kiln_material *m, const char *where, char *err, size_t errlen)
{
	json_t *sv = json_object_get(mat, "surface"), *params = mat;
	const char *name = "diffuse";
	double one = 1, idx = 1.5, refl = 0.5;
	int rc;

	if (json_is_string(sv)) {
		name = json_string_value(sv);
	} else if (json_is_object(sv) && json_object_size(sv) == 1) {
		name = json_object_iter_key(json_object_iter(sv));
		params = json_object_iter_value(json_object_iter(sv));
		if (!json_is_object(params))
			return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "%s.surface.%s: expected an object",
				    where, name);
	} else if (sv) {
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS,
			    "%s.surface: expected \"diffuse\", \"reflective\" or \"refractive\"", where);
	}
	if (surface_kind(name, &m->surface))
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "%s.surface: unknown surface \"%s\"", where, name);
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

/* Reads an element's material (NULL: missing) and writes its canonical
 * form into *canon. */
static int parse_material(struct scene_doc_ctx *ctx, json_t *mat, struct kiln_material *m, json_t **canon,
			  const char *where, char *err, size_t errlen)
{
	static const double albedo_default = 0.18;
	json_t *col = json_object_get(mat, "coloration"), *tex = NULL, *c = NULL;
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
	if (col) {
		/* Rust: {"Color": {...}} or {"Texture": {"path": ...}} / {"Texture": "..."}. */
		if (!json_is_object(col) || json_object_size(col) != 1)
			return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS,
				    "%s.coloration: expected {\"Color\": ...} or {\"Texture\": ...}", w);
		c = json_object_get(col, "Color");
		tex = json_object_get(col, "Texture");
		if (json_is_object(tex))
			tex = json_object_get(tex, "path");
		if (!c && !tex)
			return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS,
				    "%s.coloration: expected {\"Color\": ...} or {\"Texture\": {\"path\": ...}}", w);
	} else {
		c = json_object_get(mat, "color");
		tex = json_object_get(mat, "texture");
		if (json_is_object(tex))
			tex = json_object_get(tex, "path");
		if (c && tex)
			return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "%s: give a color or a texture, not both", w);
	}
	if (c && parse_color(c, &m->color))
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "%s.color: expected " COLOR_FORMS, w);
	if (tex) {
		if (!json_is_string(tex))
			return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "%s.texture: expected a path", w);
		rc = load_texture(ctx, json_string_value(tex), &resolved, w, err, errlen);
		if (rc < 0)
			return rc;
		m->texture = rc;
	}
	rc = member_num(mat, "albedo", &albedo_default, &m->albedo, w, err, errlen);
	if (!rc)
		rc = parse_surface(mat, m, w, err, errlen);
	if (rc) {
		free(resolved);
		return rc;
	}
	static const char *const names[] = {"diffuse", "reflective", "refractive"};
	*canon = json_pack("{s:f, s:s}", "albedo", m->albedo, "surface", names[m->surface]);
	if (resolved)
		json_object_set_new(*canon, "texture", json_string(resolved));
	else
		json_object_set_new(*canon, "color", vec_json(m->color));
	if (m->surface == KILN_SURFACE_REFLECTIVE)
		json_object_set_new(*canon, "reflectivity", json_real(m->reflectivity));
	if (m->surface == KILN_SURFACE_REFRACTIVE) {
		json_object_set_new(*canon, "index", json_real(m->index));
		json_object_set_new(*canon, "transparency", json_real(m->transparency));
	}
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

static int add_sphere(struct scene_doc_ctx *ctx, json_t *e, const char *where, json_t **canon, char *err,
		      size_t errlen)
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
	rc = parse_material(ctx, json_object_get(e, "material"), &m, &mc, where, err, errlen);
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
	rc = parse_material(ctx, json_object_get(e, "material"), &m, &mc, where, err, errlen);
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
	rc = parse_material(ctx, json_object_get(e, "material"), &m, &mc, where, err, errlen);
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

static int add_light(struct scene_doc_ctx *ctx, json_t *e, enum kiln_light_kind kind, const char *where,
		     json_t **canon, char *err, size_t errlen)
{
	static const kiln_vec3 white = {1, 1, 1};
	struct kiln_light l = {.kind = kind};
	const char *key = kind == KILN_LIGHT_DIRECTIONAL ? "direction" : "position";
	int rc;

	if ((rc = member_vec(e, key, NULL, &l.vec, where, err, errlen)) ||
	    (rc = member_color(e, "color", &white, &l.color, where, err, errlen)) ||
	    (rc = member_num(e, "intensity", NULL, &l.intensity, where, err, errlen)))
		return rc;
	rc = lib_err(kiln_scene_add_light(ctx->scene, &l, err, errlen), where, err, errlen);
	if (rc)
		return rc;
	*canon = json_pack("{s:s, s:o, s:o, s:f}", "type", kind == KILN_LIGHT_DIRECTIONAL ? "directional" : "point",
			   key, vec_json(l.vec), "color", vec_json(l.color), "intensity", l.intensity);
	return 0;
}

int scene_doc_add_item(struct scene_doc_ctx *ctx, json_t *item, const char *where, json_t **canon,
		       int *is_light, char *err, size_t errlen)
{
	json_t *type = json_object_get(item, "type"), *body = item;
	const char *kind;
	bool rust = false;
	int rc;

	*canon = NULL;
	*is_light = 0;
	if (!json_is_object(item))
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "%s: expected an object", where);
	if (json_is_string(type)) {
		kind = json_string_value(type);
	} else if (!type && json_object_size(item) == 1 &&
		   json_is_object(json_object_iter_value(json_object_iter(item)))) {
		/* Externally tagged: {"Sphere": {...}}. */
		kind = json_object_iter_key(json_object_iter(item));
		body = json_object_iter_value(json_object_iter(item));
		rust = true;
	} else {
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS,
			    "%s: missing field \"type\" (or a {\"Sphere\": {...}} style tag)", where);
	}
	*is_light = !strcasecmp(kind, "directional") || !strcasecmp(kind, "point") ||
		    !strcasecmp(kind, "spherical");
	if (!strcasecmp(kind, "sphere"))
		rc = add_sphere(ctx, body, where, canon, err, errlen);
	else if (!strcasecmp(kind, "plane"))
		rc = add_plane(ctx, body, rust, where, canon, err, errlen);
	else if (!strcasecmp(kind, "mesh"))
		rc = add_mesh(ctx, body, where, canon, err, errlen);
	else if (!strcasecmp(kind, "directional"))
		rc = add_light(ctx, body, KILN_LIGHT_DIRECTIONAL, where, canon, err, errlen);
	else if (!strcasecmp(kind, "point") || !strcasecmp(kind, "spherical"))
		rc = add_light(ctx, body, KILN_LIGHT_POINT, where, canon, err, errlen);
	else
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS,
			    "%s: unknown element kind \"%s\" (sphere, plane, mesh, directional, point)", where, kind);
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
