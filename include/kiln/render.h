/*
 * Rendering a prepared scene (scene.h) into an RGBA buffer, tile by tile.
 *
 * The image is cut into KILN_TILE x KILN_TILE tiles numbered row by row over
 * a region of the frame.  kiln_render_tile() renders one tile and only reads
 * the scene, so several threads may render different tiles of the same
 * buffer at once (they write disjoint pixels).  Every pixel depends only on
 * the scene and its own coordinates (sample jitter is hashed from them), so
 * the bytes are the same whatever the number of threads or the tile order.
 *
 * The geometric helpers below are exported for tests.
 */
#ifndef KILN_RENDER_H
#define KILN_RENDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/cancel.h"
#include "kiln/scene.h"

#define KILN_TILE 16

struct kiln_region {
	unsigned x, y, width, height;
};

/* The whole frame. */
struct kiln_region kiln_region_full(const kiln_scene *scene);
/* 0, or -KILN_E_INVALID_ARGS if the region is empty or leaves the frame. */
int kiln_region_check(const kiln_scene *scene, const struct kiln_region *r,
		      char *err, size_t errlen);
unsigned kiln_render_tile_count(const struct kiln_region *r);

/*
 * Renders tile `tile` of region `r` into `rgba` (r->width * r->height * 4
 * bytes, row-major, the region's top-left pixel first).  Adds the number of
 * rays cast to *rays.  The scene must be prepared.
 */
void kiln_render_tile(const kiln_scene *scene, const struct kiln_region *r,
		      unsigned tile, uint8_t *rgba, uint64_t *rays);

/* Renders the region single-threaded, polling `cancel` between tiles.
 * 0 or -KILN_E_CANCELLED / -KILN_E_INVALID_ARGS. */
int kiln_render(const kiln_scene *scene, const struct kiln_region *r, uint8_t *rgba,
		const kiln_cancel *cancel, uint64_t *rays, char *err, size_t errlen);

/* --- Geometry (exported for tests) ---------------------------------------- */

struct kiln_ray {
	kiln_vec3 origin;
	kiln_vec3 dir; /* unit length */
};

enum kiln_prim_kind {
	KILN_PRIM_SPHERE,
	KILN_PRIM_PLANE,
	KILN_PRIM_TRIANGLE,
};

struct kiln_hit {
	double t;
	enum kiln_prim_kind kind;
	uint32_t index;   /* into the scene's spheres, planes or triangles */
	double u, v;      /* barycentric coordinates for triangles */
};

/* Nearest t > 0 (tmin excluded) or false. */
bool kiln_ray_sphere(const struct kiln_ray *ray, kiln_vec3 center, double radius, double *t);
bool kiln_ray_plane(const struct kiln_ray *ray, kiln_vec3 origin, kiln_vec3 normal, double *t);
bool kiln_ray_triangle(const struct kiln_ray *ray, kiln_vec3 a, kiln_vec3 b, kiln_vec3 c,
		       double *t, double *u, double *v);

/* Mirror direction of `d` about the unit normal `n`. */
kiln_vec3 kiln_reflect(kiln_vec3 d, kiln_vec3 n);
/*
 * Refracts the unit direction `d` at a surface of refractive index `index`
 * with outward unit normal `n` (the ray enters if d.n < 0, leaves
 * otherwise).  False on total internal reflection.
 */
bool kiln_refract(kiln_vec3 d, kiln_vec3 n, double index, kiln_vec3 *out);
/* Fraction of light reflected (unpolarised Fresnel equations), same
 * conventions as kiln_refract; 1 on total internal reflection. */
double kiln_fresnel(kiln_vec3 d, kiln_vec3 n, double index);

/* Nearest hit in the prepared scene, through the BVH or by testing every
 * primitive (for tests). */
bool kiln_scene_intersect(const kiln_scene *scene, const struct kiln_ray *ray,
			  struct kiln_hit *hit);
bool kiln_scene_intersect_brute(const kiln_scene *scene, const struct kiln_ray *ray,
				struct kiln_hit *hit);
/* Outward unit normal at a hit (interpolated for meshes with normals). */
kiln_vec3 kiln_scene_normal(const kiln_scene *scene, const struct kiln_ray *ray,
			    const struct kiln_hit *hit);

#endif
