/*
 * Internal layout of a kiln_scene, shared by scene.c, scene_bvh.c and render.c.
 * Not part of the library's interface.
 */
#ifndef KILN_SCENE_IMPL_H
#define KILN_SCENE_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/render.h"
#include "kiln/scene.h"

struct scene_sphere {
	kiln_vec3 center;
	double radius, radius2;
	uint32_t material;
};

struct scene_plane {
	kiln_vec3 origin;
	kiln_vec3 normal;      /* unit */
	double dist;           /* normal . origin */
	kiln_vec3 tex_x, tex_y; /* planar texture axes */
	uint32_t material;
};

/* A mesh triangle, with its edges precomputed for Moller-Trumbore. */
struct scene_tri {
	kiln_vec3 a, e1, e2;
	uint32_t mesh;
	uint32_t face;
};

struct scene_texture {
	char *key;
	unsigned width, height;
	uint8_t *rgb;
};

/*
 * Flattened BVH node.  An interior node (count == 0) has its first child
 * right after it and its second child at `offset`; a leaf holds `count`
 * primitives from prims[offset].
 */
struct bvh_node {
	double min[3], max[3];
	uint32_t offset;
	uint16_t count;
	uint16_t axis;
};

#define ENCODE_STEPS 16384

/* BVH primitive references: the top bit says triangle, the rest the index. */
#define PRIM_TRI 0x80000000u

/*
 * BVH depth.  The builder (scene_bvh.c) splits by SAH down to
 * BVH_SAH_MAX_DEPTH levels and below that halves the primitive count, which
 * adds at most log2 of the largest count (31 bits of PRIM_TRI references)
 * more levels.  Traversal (render.c) stacks at most one node per level.
 */
#define BVH_SAH_MAX_DEPTH 48
#define BVH_MAX_DEPTH (BVH_SAH_MAX_DEPTH + 32)
#define BVH_STACK_MAX 128
_Static_assert(BVH_STACK_MAX >= BVH_MAX_DEPTH, "the traversal stack must hold the deepest BVH path");

struct kiln_scene {
	struct kiln_settings settings;

	struct kiln_material *materials;
	size_t nmaterials, cap_materials;
	struct scene_sphere *spheres;
	size_t nspheres, cap_spheres;
	struct scene_plane *planes;
	size_t nplanes, cap_planes;
	struct kiln_mesh **meshes;
	uint32_t *mesh_material;
	size_t nmeshes, cap_meshes;
	struct scene_tri *tris;
	size_t ntris, cap_tris;
	struct kiln_light *lights;
	size_t nlights, cap_lights;
	struct scene_texture *textures;
	size_t ntextures, cap_textures;
	size_t texture_bytes;

	/* Built by kiln_scene_prepare(). */
	bool bvh_dirty;
	struct bvh_node *nodes;
	size_t nnodes;
	uint32_t *prims;
	size_t nprims;
	float tex_linear[256];   /* texture byte -> linear value */
	double encode_limit[255]; /* linear value where output byte i+1 starts */
	/* Output byte at linear value i / (ENCODE_STEPS - 1), a starting point
	 * for encode() so it needs no unpredictable binary search. */
	uint8_t encode_start[ENCODE_STEPS];
	kiln_vec3 cam_forward, cam_right, cam_up;
	double tan_half_fov;
};

/* scene_bvh.c (traversal is in render.c, next to its only callers, so the
 * compiler can inline it). */
int bvh_build(struct kiln_scene *s, const kiln_cancel *cancel);
void bvh_free(struct kiln_scene *s);

/* Small vector helpers. */
static inline kiln_vec3 v3(double x, double y, double z)
{
	return (kiln_vec3){x, y, z};
}
static inline kiln_vec3 v_add(kiln_vec3 a, kiln_vec3 b)
{
	return v3(a.x + b.x, a.y + b.y, a.z + b.z);
}
static inline kiln_vec3 v_sub(kiln_vec3 a, kiln_vec3 b)
{
	return v3(a.x - b.x, a.y - b.y, a.z - b.z);
}
static inline kiln_vec3 v_mul(kiln_vec3 a, kiln_vec3 b)
{
	return v3(a.x * b.x, a.y * b.y, a.z * b.z);
}
static inline kiln_vec3 v_scale(kiln_vec3 a, double k)
{
	return v3(a.x * k, a.y * k, a.z * k);
}
static inline double v_dot(kiln_vec3 a, kiln_vec3 b)
{
	return a.x * b.x + a.y * b.y + a.z * b.z;
}
static inline kiln_vec3 v_cross(kiln_vec3 a, kiln_vec3 b)
{
	return v3(a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x);
}
static inline double v_len(kiln_vec3 a)
{
	return __builtin_sqrt(v_dot(a, a));
}
static inline kiln_vec3 v_norm(kiln_vec3 a)
{
	double l = v_len(a);
	return l > 0 ? v_scale(a, 1.0 / l) : a;
}

#endif
