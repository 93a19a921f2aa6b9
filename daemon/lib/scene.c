/*
 * Scene building: settings, materials, textures and elements (scene.h).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/error.h"
#include "scene_impl.h"

/* Makes room for one more item in a growing array; 0 or -1. */
static int grow(void **arr, size_t *cap, size_t n, size_t size)
{
	size_t ncap;
	void *p;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 8;
	p = realloc(*arr, ncap * size);
	if (!p)
		return -1;
	*arr = p;
	*cap = ncap;
	return 0;
}

#define GROW(arr, cap, n) grow((void **)&(arr), &(cap), (n), sizeof(*(arr)))

static bool finite3(kiln_vec3 v)
{
	return isfinite(v.x) && isfinite(v.y) && isfinite(v.z);
}

static bool color_ok(kiln_vec3 c)
{
	return finite3(c) && c.x >= 0 && c.y >= 0 && c.z >= 0;
}

void kiln_settings_default(struct kiln_settings *s)
{
	*s = (struct kiln_settings){
		.width = 800,
		.height = 600,
		.fov = 90.0,
		.shadow_bias = 1e-9,
		.max_recursion_depth = 10,
		.camera_position = v3(0, 0, 0),
		.camera_look_at = v3(0, 0, -1),
		.camera_up = v3(0, 1, 0),
		.background = v3(0, 0, 0),
		.samples = 1,
		.gamma = 2.2,
	};
}

int kiln_settings_check(const struct kiln_settings *s, char *err, size_t errlen)
{
	kiln_vec3 fwd = v_sub(s->camera_look_at, s->camera_position);

	if (s->width < 1 || s->height < 1)
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "width and height must be at least 1");
	if (!(s->fov > 0 && s->fov < 180))
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "fov must be between 0 and 180 degrees");
	if (!(s->shadow_bias >= 0 && isfinite(s->shadow_bias)))
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "shadow_bias must be >= 0");
	if (s->max_recursion_depth > 64)
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "max_recursion_depth must be at most 64");
	if (s->samples < 1 || s->samples > 256)
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "samples must be between 1 and 256");
	if (!(s->gamma > 0 && s->gamma <= 10))
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "gamma must be in (0, 10]");
	if (!color_ok(s->background))
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "background must be a colour with components >= 0");
	if (!finite3(s->camera_position) || !finite3(s->camera_look_at) || !finite3(s->camera_up))
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "camera vectors must be finite");
	if (v_len(fwd) == 0)
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "camera look_at equals its position");
	if (v_len(v_cross(fwd, s->camera_up)) == 0)
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "camera up is parallel to the view direction");
	return 0;
}

kiln_scene *kiln_scene_new(void)
{
	kiln_scene *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	kiln_settings_default(&s->settings);
	return s;
}

void kiln_mesh_free(struct kiln_mesh *mesh)
{
	if (!mesh)
		return;
	free(mesh->vertices);
	free(mesh->uvs);
	free(mesh->normals);
	free(mesh->faces);
	free(mesh);
}

void kiln_scene_free(kiln_scene *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nmeshes; i++)
		kiln_mesh_free(s->meshes[i]);
	for (size_t i = 0; i < s->ntextures; i++) {
		free(s->textures[i].key);
		free(s->textures[i].rgb);
	}
	free(s->materials);
	free(s->spheres);
	free(s->planes);
	free(s->meshes);
	free(s->mesh_material);
	free(s->tris);
	free(s->lights);
	free(s->textures);
	bvh_free(s);
	free(s);
}

const struct kiln_settings *kiln_scene_settings(const kiln_scene *s)
{
	return &s->settings;
}

int kiln_scene_set_settings(kiln_scene *s, const struct kiln_settings *set, char *err, size_t errlen)
{
	int rc = kiln_settings_check(set, err, errlen);

	if (rc)
		return rc;
	s->settings = *set;
	return 0;
}

int kiln_scene_add_texture(kiln_scene *s, const char *key, unsigned width, unsigned height,
			   const uint8_t *rgb, char *err, size_t errlen)
{
	struct scene_texture *t;
	size_t bytes;

	if (width < 1 || height < 1)
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "texture has no pixels");
	if (GROW(s->textures, s->cap_textures, s->ntextures))
		goto nomem;
	t = &s->textures[s->ntextures];
	bytes = (size_t)width * height * 3;
	t->key = strdup(key ? key : "");
	t->rgb = malloc(bytes);
	if (!t->key || !t->rgb) {
		free(t->key);
		free(t->rgb);
		goto nomem;
	}
	memcpy(t->rgb, rgb, bytes);
	t->width = width;
	t->height = height;
	s->texture_bytes += bytes;
	return (int)s->ntextures++;
nomem:
	return kiln_fail(err, errlen, -KILN_E_INTERNAL, "out of memory");
}

int kiln_scene_find_texture(const kiln_scene *s, const char *key)
{
	for (size_t i = 0; i < s->ntextures; i++)
		if (strcmp(s->textures[i].key, key) == 0)
			return (int)i;
	return -1;
}

unsigned kiln_scene_texture_count(const kiln_scene *s)
{
	return (unsigned)s->ntextures;
}

static int check_material(const kiln_scene *s, const struct kiln_material *m, char *err, size_t errlen)
{
	if (m->texture >= 0 && (size_t)m->texture >= s->ntextures)
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "material names texture %d, which does not exist",
			    m->texture);
	if (m->texture < 0 && !color_ok(m->color))
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "material colour components must be >= 0");
	if (!(m->albedo >= 0 && isfinite(m->albedo)))
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "material albedo must be >= 0");
	switch (m->surface) {
	case KILN_SURFACE_DIFFUSE:
		return 0;
	case KILN_SURFACE_REFLECTIVE:
		if (!(m->reflectivity >= 0 && m->reflectivity <= 1))
			return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "reflectivity must be in [0, 1]");
		return 0;
	case KILN_SURFACE_REFRACTIVE:
		if (!(m->index > 0 && isfinite(m->index)))
			return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "refractive index must be > 0");
		if (!(m->transparency >= 0 && m->transparency <= 1))
			return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "transparency must be in [0, 1]");
		return 0;
	}
	return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "unknown surface");
}

/* Appends a checked material; returns its index or a negative error. */
static int add_material(kiln_scene *s, const struct kiln_material *m, char *err, size_t errlen)
{
	int rc = check_material(s, m, err, errlen);

	if (rc)
		return rc;
	if (GROW(s->materials, s->cap_materials, s->nmaterials))
		return kiln_fail(err, errlen, -KILN_E_INTERNAL, "out of memory");
	s->materials[s->nmaterials] = *m;
	return (int)s->nmaterials++;
}

int kiln_scene_add_sphere(kiln_scene *s, kiln_vec3 center, double radius,
			  const struct kiln_material *m, char *err, size_t errlen)
{
	int mat;

	if (!finite3(center))
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "sphere center must be finite");
	if (!(radius > 0 && isfinite(radius)))
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "sphere radius must be > 0");
	if (GROW(s->spheres, s->cap_spheres, s->nspheres))
		return kiln_fail(err, errlen, -KILN_E_INTERNAL, "out of memory");
	mat = add_material(s, m, err, errlen);
	if (mat < 0)
		return mat;
	s->spheres[s->nspheres++] = (struct scene_sphere){center, radius, radius * radius, (uint32_t)mat};
	s->bvh_dirty = true;
	return 0;
}

int kiln_scene_add_plane(kiln_scene *s, kiln_vec3 origin, kiln_vec3 normal,
			 const struct kiln_material *m, char *err, size_t errlen)
{
	struct scene_plane *p;
	kiln_vec3 n;
	int mat;

	if (!finite3(origin) || !finite3(normal))
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "plane origin and normal must be finite");
	if (v_len(normal) == 0)
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "plane normal must not be zero");
	if (GROW(s->planes, s->cap_planes, s->nplanes))
		return kiln_fail(err, errlen, -KILN_E_INTERNAL, "out of memory");
	mat = add_material(s, m, err, errlen);
	if (mat < 0)
		return mat;
	n = v_norm(normal);
	p = &s->planes[s->nplanes++];
	p->origin = origin;
	p->normal = n;
	p->dist = v_dot(n, origin);
	/* Texture axes in the plane, one world unit per texture repeat. */
	p->tex_x = v_cross(v3(0, 0, 1), n);
	if (v_len(p->tex_x) < 1e-9)
		p->tex_x = v_cross(v3(0, 1, 0), n);
	p->tex_x = v_norm(p->tex_x);
	p->tex_y = v_cross(p->tex_x, n);
	p->material = (uint32_t)mat;
	return 0;
}

static int check_mesh(const struct kiln_mesh *mesh, char *err, size_t errlen)
{
	for (size_t i = 0; i < mesh->nvertices * 3; i++)
		if (!isfinite(mesh->vertices[i]))
			return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "mesh vertex %zu is not finite", i / 3);
	for (size_t i = 0; i < mesh->nuvs * 2; i++)
		if (!isfinite(mesh->uvs[i]))
			return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "mesh uv %zu is not finite", i / 2);
	for (size_t i = 0; i < mesh->nnormals * 3; i++)
		if (!isfinite(mesh->normals[i]))
			return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "mesh normal %zu is not finite", i / 3);
	for (size_t f = 0; f < mesh->nfaces; f++) {
		const int32_t *c = mesh->faces + f * 9;
		for (int k = 0; k < 3; k++) {
			if (c[k] < 0 || (size_t)c[k] >= mesh->nvertices)
				return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS,
					    "mesh face %zu: vertex index %d out of range", f, c[k]);
			if (c[3 + k] >= 0 && (size_t)c[3 + k] >= mesh->nuvs)
				return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS,
					    "mesh face %zu: uv index %d out of range", f, c[3 + k]);
			if (c[6 + k] >= 0 && (size_t)c[6 + k] >= mesh->nnormals)
				return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS,
					    "mesh face %zu: normal index %d out of range", f, c[6 + k]);
		}
	}
	if (mesh->nfaces == 0)
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "mesh has no faces");
	return 0;
}

static kiln_vec3 mesh_vertex(const struct kiln_mesh *m, int32_t i)
{
	const double *p = m->vertices + (size_t)i * 3;
	return v3(p[0], p[1], p[2]);
}

int kiln_scene_add_mesh(kiln_scene *s, struct kiln_mesh *mesh, const struct kiln_material *m,
			char *err, size_t errlen)
{
	size_t need;
	void *p;
	int rc, mat;

	rc = check_mesh(mesh, err, errlen);
	if (rc)
		goto fail;
	rc = kiln_fail(err, errlen, -KILN_E_INTERNAL, "out of memory");
	if (mesh->nfaces > PRIM_TRI - 1 - s->ntris)
		goto fail;
	need = s->ntris + mesh->nfaces;
	if (need > s->cap_tris) {
		size_t ncap = s->cap_tris ? s->cap_tris : 64;
		while (ncap < need)
			ncap *= 2;
		p = realloc(s->tris, ncap * sizeof(*s->tris));
		if (!p)
			goto fail;
		s->tris = p;
		s->cap_tris = ncap;
	}
	if (GROW(s->meshes, s->cap_meshes, s->nmeshes))
		goto fail;
	p = realloc(s->mesh_material, s->cap_meshes * sizeof(*s->mesh_material));
	if (!p)
		goto fail;
	s->mesh_material = p;
	mat = add_material(s, m, err, errlen);
	if (mat < 0) {
		rc = mat;
		goto fail;
	}
	for (size_t f = 0; f < mesh->nfaces; f++) {
		const int32_t *c = mesh->faces + f * 9;
		kiln_vec3 a = mesh_vertex(mesh, c[0]);
		s->tris[s->ntris++] = (struct scene_tri){
			.a = a,
			.e1 = v_sub(mesh_vertex(mesh, c[1]), a),
			.e2 = v_sub(mesh_vertex(mesh, c[2]), a),
			.mesh = (uint32_t)s->nmeshes,
			.face = (uint32_t)f,
		};
	}
	s->mesh_material[s->nmeshes] = (uint32_t)mat;
	s->meshes[s->nmeshes++] = mesh;
	s->bvh_dirty = true;
	return 0;
fail:
	kiln_mesh_free(mesh);
	return rc;
}

int kiln_scene_add_light(kiln_scene *s, const struct kiln_light *l, char *err, size_t errlen)
{
	struct kiln_light c = *l;

	if (!finite3(c.vec))
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "light vector must be finite");
	if (!color_ok(c.color))
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "light colour components must be >= 0");
	if (!(c.intensity >= 0 && isfinite(c.intensity)))
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "light intensity must be >= 0");
	if (c.kind == KILN_LIGHT_DIRECTIONAL) {
		if (v_len(c.vec) == 0)
			return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "light direction must not be zero");
		c.vec = v_norm(c.vec);
	} else if (c.kind != KILN_LIGHT_POINT) {
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "unknown light kind");
	}
	if (GROW(s->lights, s->cap_lights, s->nlights))
		return kiln_fail(err, errlen, -KILN_E_INTERNAL, "out of memory");
	s->lights[s->nlights++] = c;
	return 0;
}

size_t kiln_scene_primitive_count(const kiln_scene *s)
{
	return s->nspheres + s->nplanes + s->ntris;
}

size_t kiln_scene_light_count(const kiln_scene *s)
{
	return s->nlights;
}

size_t kiln_scene_memory(const kiln_scene *s)
{
	size_t n = sizeof(*s) + s->texture_bytes;

	n += s->cap_materials * sizeof(*s->materials);
	n += s->cap_spheres * sizeof(*s->spheres);
	n += s->cap_planes * sizeof(*s->planes);
	n += s->cap_meshes * (sizeof(*s->meshes) + sizeof(*s->mesh_material));
	n += s->cap_tris * sizeof(*s->tris);
	n += s->cap_lights * sizeof(*s->lights);
	n += s->cap_textures * sizeof(*s->textures);
	for (size_t i = 0; i < s->nmeshes; i++) {
		const struct kiln_mesh *m = s->meshes[i];
		n += sizeof(*m) + (m->nvertices * 3 + m->nuvs * 2 + m->nnormals * 3) * sizeof(double) +
		     m->nfaces * 9 * sizeof(int32_t);
	}
	/* The BVH: at most two nodes and one reference per primitive. */
	n += (s->nspheres + s->ntris) * (2 * sizeof(struct bvh_node) + sizeof(uint32_t));
	return n;
}

void kiln_scene_mark(const kiln_scene *s, struct kiln_scene_mark *mark)
{
	*mark = (struct kiln_scene_mark){
		.spheres = s->nspheres,
		.planes = s->nplanes,
		.meshes = s->nmeshes,
		.triangles = s->ntris,
		.lights = s->nlights,
		.textures = s->ntextures,
		.materials = s->nmaterials,
	};
}

void kiln_scene_rollback(kiln_scene *s, const struct kiln_scene_mark *mark)
{
	while (s->nmeshes > mark->meshes)
		kiln_mesh_free(s->meshes[--s->nmeshes]);
	while (s->ntextures > mark->textures) {
		struct scene_texture *t = &s->textures[--s->ntextures];
		s->texture_bytes -= (size_t)t->width * t->height * 3;
		free(t->key);
		free(t->rgb);
	}
	if (s->nspheres != mark->spheres || s->ntris != mark->triangles)
		s->bvh_dirty = true;
	s->nspheres = mark->spheres;
	s->nplanes = mark->planes;
	s->ntris = mark->triangles;
	s->nlights = mark->lights;
	s->nmaterials = mark->materials;
}

static void build_tables(kiln_scene *s)
{
	const struct kiln_settings *set = &s->settings;
	double g = set->gamma;
	kiln_vec3 fwd = v_norm(v_sub(set->camera_look_at, set->camera_position));

	for (int i = 0; i < 256; i++)
		s->tex_linear[i] = (float)pow(i / 255.0, g);
	/* Output byte b covers linear values from ((b - 0.5) / 255)^g on. */
	for (int b = 1; b < 256; b++)
		s->encode_limit[b - 1] = pow((b - 0.5) / 255.0, g);
	for (int i = 0, b = 0; i < ENCODE_STEPS; i++) {
		double c = (double)i / (ENCODE_STEPS - 1);
		while (b < 255 && s->encode_limit[b] <= c)
			b++;
		s->encode_start[i] = (uint8_t)b;
	}
	s->cam_forward = fwd;
	s->cam_right = v_norm(v_cross(fwd, set->camera_up));
	s->cam_up = v_cross(s->cam_right, fwd);
	s->tan_half_fov = tan(set->fov * M_PI / 360.0);
}

int kiln_scene_prepare(kiln_scene *s, const kiln_cancel *cancel, char *err, size_t errlen)
{
	int rc;

	build_tables(s);
	if (!s->bvh_dirty)
		return 0;
	rc = bvh_build(s, cancel);
	if (rc == -KILN_E_CANCELLED)
		return kiln_fail(err, errlen, -KILN_E_CANCELLED, "cancelled while building the BVH");
	if (rc)
		return kiln_fail(err, errlen, -KILN_E_INTERNAL, "out of memory building the BVH");
	s->bvh_dirty = false;
	return 0;
}
