/*
 * Ray-tracing scenes: settings, camera, materials, textures, spheres,
 * planes, triangle meshes and lights (issue 6).
 *
 * A kiln_scene owns everything added to it: textures are copied in, meshes
 * are taken over.  Building is single-threaded and only appends; the
 * lookup tables follow the settings at once, and kiln_scene_prepare() builds
 * the bounding volume hierarchy over everything added since the last call
 * (once, however many additions there were), after which any number of
 * threads may render the scene at once (render.h) as long as nobody
 * modifies it.  The daemon enforces that (act_scene.c).
 *
 * Every function that can fail returns 0 (or an index) or -KILN_E_* and
 * writes a message into err.
 */
#ifndef KILN_SCENE_H
#define KILN_SCENE_H

#include <stddef.h>
#include <stdint.h>

#include "kiln/cancel.h"

typedef struct kiln_vec3 {
	double x, y, z;
} kiln_vec3;

/*
 * Whose rules a scene is rendered by.  KILN: kiln's own (two-sided planes,
 * refractive surfaces whose opaque part is diffuse, rounded output).  RUST:
 * the Rust ray tracer of the 002 post (bheisler/raytracer), whose documents
 * kiln reads: one-sided planes (a plane is seen only from the side its
 * normal points away from, and casts shadows only that way), refractive
 * surfaces that are reflection and refraction mixed by Fresnel times
 * transparency and colour with no diffuse term, diffuse light clamped to
 * [0, 1] per channel, texture coordinates truncated toward zero before
 * wrapping, plane texture axes not normalised, shading normals not turned
 * toward the ray, output bytes truncated.  Differences that remain are
 * listed in tests/data/rust/README.md.
 */
enum kiln_semantics {
	KILN_SEMANTICS_KILN,
	KILN_SEMANTICS_RUST,
};

struct kiln_settings {
	unsigned width, height;      /* pixels, >= 1 */
	double fov;                  /* vertical field of view, degrees, (0, 180) */
	double shadow_bias;          /* offset of secondary ray origins, >= 0 */
	unsigned max_recursion_depth;
	kiln_vec3 camera_position;   /* default: the origin */
	kiln_vec3 camera_look_at;    /* default: (0, 0, -1) */
	kiln_vec3 camera_up;         /* default: (0, 1, 0) */
	kiln_vec3 background;        /* linear RGB of rays that hit nothing */
	unsigned samples;            /* per pixel, >= 1; 1 = pixel centres */
	double gamma;                /* output (and texture) encoding, > 0 */
	enum kiln_semantics semantics; /* default KILN */
};

enum kiln_surface {
	KILN_SURFACE_DIFFUSE,
	KILN_SURFACE_REFLECTIVE,
	KILN_SURFACE_REFRACTIVE,
};

struct kiln_material {
	kiln_vec3 color;        /* linear RGB, used when texture < 0 */
	int texture;            /* kiln_scene_add_texture() index, or -1 */
	double albedo;          /* >= 0 */
	enum kiln_surface surface;
	double reflectivity;    /* reflective: [0, 1] */
	double index;           /* refractive: > 0 */
	double transparency;    /* refractive: [0, 1] */
};

enum kiln_light_kind {
	KILN_LIGHT_DIRECTIONAL, /* `vec` is the direction the light travels */
	KILN_LIGHT_POINT,       /* `vec` is the position; inverse-square falloff */
};

struct kiln_light {
	enum kiln_light_kind kind;
	kiln_vec3 vec;
	kiln_vec3 color;
	double intensity;       /* >= 0 */
};

/*
 * A triangle mesh.  Faces index vertices, and optionally per-corner texture
 * coordinates and normals (-1 = none), so Wavefront OBJ files map directly.
 */
struct kiln_mesh {
	double *vertices;   /* 3 per vertex */
	size_t nvertices;
	double *uvs;        /* 2 per texture coordinate */
	size_t nuvs;
	double *normals;    /* 3 per normal */
	size_t nnormals;
	int32_t *faces;     /* 9 per triangle: v0 v1 v2, t0 t1 t2, n0 n1 n2 */
	size_t nfaces;
};

typedef struct kiln_scene kiln_scene;

void kiln_settings_default(struct kiln_settings *s);
/* 0 or -KILN_E_INVALID_ARGS naming the bad field. */
int kiln_settings_check(const struct kiln_settings *s, char *err, size_t errlen);

kiln_scene *kiln_scene_new(void);
void kiln_scene_free(kiln_scene *scene);

const struct kiln_settings *kiln_scene_settings(const kiln_scene *scene);
int kiln_scene_set_settings(kiln_scene *scene, const struct kiln_settings *s,
			    char *err, size_t errlen);

/*
 * Adds a texture decoded to 8-bit RGB (3 bytes per pixel, gamma-encoded as
 * stored in the file), copied.  `key` names it (the daemon uses the resolved
 * path) so elements sharing a file share one copy.  Returns the index.
 */
int kiln_scene_add_texture(kiln_scene *scene, const char *key, unsigned width,
			   unsigned height, const uint8_t *rgb, char *err, size_t errlen);
/* Index of the texture added under `key`, or -1. */
int kiln_scene_find_texture(const kiln_scene *scene, const char *key);
unsigned kiln_scene_texture_count(const kiln_scene *scene);

int kiln_scene_add_sphere(kiln_scene *scene, kiln_vec3 center, double radius,
			  const struct kiln_material *m, char *err, size_t errlen);
/* The normal need not be unit length but must not be zero.  It points to
 * the visible side: under KILN semantics both sides are visible, under RUST
 * only the side the normal points to (the Rust document's normal, which
 * points away from the visible side, negated). */
int kiln_scene_add_plane(kiln_scene *scene, kiln_vec3 origin, kiln_vec3 normal,
			 const struct kiln_material *m, char *err, size_t errlen);
/* Takes ownership of `mesh` (also on failure; it is freed then). */
int kiln_scene_add_mesh(kiln_scene *scene, struct kiln_mesh *mesh,
			const struct kiln_material *m, char *err, size_t errlen);
int kiln_scene_add_light(kiln_scene *scene, const struct kiln_light *light,
			 char *err, size_t errlen);

/* Primitives (spheres + planes + triangles), lights, bytes held. */
size_t kiln_scene_primitive_count(const kiln_scene *scene);
size_t kiln_scene_light_count(const kiln_scene *scene);
size_t kiln_scene_memory(const kiln_scene *scene);

/*
 * A mark records the scene's contents; kiln_scene_rollback() removes
 * everything added since, so a batch of additions is all or nothing.
 */
struct kiln_scene_mark {
	size_t spheres, planes, meshes, triangles, lights, textures, materials;
};
void kiln_scene_mark(const kiln_scene *scene, struct kiln_scene_mark *mark);
void kiln_scene_rollback(kiln_scene *scene, const struct kiln_scene_mark *mark);

/* Builds the BVH if spheres or triangles changed since the last call (a
 * no-op otherwise, which only reads the scene).  Cancellable (0,
 * -KILN_E_CANCELLED, or -KILN_E_INTERNAL on no memory). */
int kiln_scene_prepare(kiln_scene *scene, const kiln_cancel *cancel, char *err, size_t errlen);

/* Frees a mesh not handed to a scene. */
void kiln_mesh_free(struct kiln_mesh *mesh);

#endif
