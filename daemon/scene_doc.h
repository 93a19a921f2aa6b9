/*
 * Scene documents (JSON) to and from libkiln scenes.
 *
 * Two formats are read; a whole document is in one of them (scene.add takes
 * each item in its own):
 *  - kiln's own: {"type": "sphere", "center": [x, y, z], "radius": 1,
 *    "material": {"color": [r, g, b] | "texture": "/abs/path.png",
 *    "albedo": 0.18, "surface": "diffuse" | "reflective" | "refractive",
 *    "reflectivity", "index", "transparency"}}, planes, meshes (inline
 *    vertices/faces/uvs/normals or an OBJ "path", with "translate" and
 *    "scale"), lights {"type": "directional" | "point", ...};
 *  - the Rust ray tracer's externally tagged serde format: {"Sphere": {...}},
 *    {"Plane": {...}} (normal pointing away from the visible side),
 *    "coloration": {"Color": {"red", "green", "blue"}} | {"Texture": {"path"}},
 *    "surface": "Diffuse" | {"Reflective": {...}} | {"Refractive": {...}},
 *    lights {"Directional": {...}} | {"Spherical": {...}}.
 * Vectors may be [x, y, z] or {"x", "y", "z"}; colours [r, g, b],
 * {"r", "g", "b"} or {"red", "green", "blue"}.  A key that the item's
 * format does not have is invalid_args naming it, at every level.  A
 * Rust-format document is rendered with the tracer's semantics
 * (KILN_SEMANTICS_RUST, scene.h), a kiln one with its "semantics" key
 * (default kiln).
 *
 * Every item added is also written back in kiln's format (canonical form,
 * with absolute texture and OBJ paths), which scene.get returns: loading that
 * document again (its "semantics" included) renders the same image.
 *
 * Runs on worker threads (file reads); touches no daemon state.
 */
#ifndef KILND_SCENE_DOC_H
#define KILND_SCENE_DOC_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/scene.h"

struct kiln_config;

enum scene_doc_format {
	SCENE_DOC_ANY,  /* each item in its own format (scene.add) */
	SCENE_DOC_KILN,
	SCENE_DOC_RUST,
};

struct scene_doc_ctx {
	const struct kiln_config *cfg; /* path_roots, limits */
	kiln_scene *scene;
	const char *base_dir;          /* for relative paths; NULL: refused */
	enum scene_doc_format format;  /* items must be in this format */
	json_t *detail;                /* out: {"path": "..."} of the bad item (new ref) */
};

/* Reads a whole file under path_roots, at most max_file_bytes (too_large
 * beyond).  *resolved (its real path) and *buf (NUL-terminated) are
 * malloc'ed; the caller frees both, also on failure.  Errors start with
 * `where`. */
int scene_doc_read_file(const struct kiln_config *cfg, const char *path, char **resolved,
			unsigned char **buf, size_t *len, const char *where, char *err, size_t errlen);

/* Settings keys present in `obj` (width, height, fov, shadow_bias,
 * max_recursion_depth, camera, background, samples, gamma, semantics) over
 * *s; other top-level keys are left to the caller (scene_doc_detect or the
 * action's schema).  Any width x height up to 2^20 each: the size is limited
 * when rendering, not here. */
int scene_doc_settings(json_t *obj, struct kiln_settings *s, char *err, size_t errlen);
/* The settings as document keys (new object). */
json_t *scene_doc_settings_json(const struct kiln_settings *s);

/*
 * The format of a whole document: `requested` ("kiln", "rust", or NULL /
 * "auto": from its items, kiln if it has none).  Fails on a document mixing
 * both, on a top-level key the format does not have, and on a Rust document
 * missing one of the tracer's required fields.
 */
int scene_doc_detect(json_t *doc, const char *requested, enum scene_doc_format *format, char *err,
		     size_t errlen);

/* The scene as a Rust-format document (new reference in *out), from the
 * settings and canonical items; invalid_args naming what the Rust format
 * cannot express (meshes, a moved camera, samples, background, gamma). */
int scene_doc_to_rust(const struct kiln_settings *s, json_t *elements, json_t *lights, json_t **out, char *err,
		      size_t errlen);

/* Adds one element or light; `where` names it in errors ("elements[3]").
 * On success *canon is its canonical form and *is_light says which list it
 * belongs in.  On failure the scene may hold part of the item: callers
 * use kiln_scene_mark/rollback around a batch. */
int scene_doc_add_item(struct scene_doc_ctx *ctx, json_t *item, const char *where,
		       json_t **canon, int *is_light, char *err, size_t errlen);

/* Adds "elements" and "lights" of a whole document (either format), appending
 * canonical items to `elements` and `lights`.  All or nothing. */
int scene_doc_add_all(struct scene_doc_ctx *ctx, json_t *doc, json_t *elements, json_t *lights,
		      char *err, size_t errlen);

#endif
