/*
 * Ray-tracing library: intersections, normals, refraction, Fresnel, BVH
 * against brute force, tiles, cancellation, PNG and OBJ.
 */
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"
#include "kiln/error.h"
#include "kiln/image.h"
#include "kiln/mesh.h"
#include "kiln/render.h"
#include "kiln/scene.h"

#define EPS 1e-9

static kiln_vec3 vec(double x, double y, double z)
{
	return (kiln_vec3){x, y, z};
}

static struct kiln_ray ray_of(kiln_vec3 o, kiln_vec3 d)
{
	double l = sqrt(d.x * d.x + d.y * d.y + d.z * d.z);
	return (struct kiln_ray){o, vec(d.x / l, d.y / l, d.z / l)};
}

static struct kiln_material diffuse(double r, double g, double b)
{
	return (struct kiln_material){.color = {r, g, b}, .texture = -1, .albedo = 0.18,
				      .surface = KILN_SURFACE_DIFFUSE};
}

START_TEST(sphere_hits)
{
	struct kiln_ray r = ray_of(vec(0, 0, 0), vec(0, 0, -1));
	double t;

	ck_assert(kiln_ray_sphere(&r, vec(0, 0, -5), 1, &t));
	ck_assert_double_eq_tol(t, 4, EPS);
	/* From inside, the far side. */
	r = ray_of(vec(0, 0, -5), vec(0, 0, -1));
	ck_assert(kiln_ray_sphere(&r, vec(0, 0, -5), 1, &t));
	ck_assert_double_eq_tol(t, 1, EPS);
	/* Behind the origin and beside the ray: misses. */
	r = ray_of(vec(0, 0, 0), vec(0, 0, 1));
	ck_assert(!kiln_ray_sphere(&r, vec(0, 0, -5), 1, &t));
	r = ray_of(vec(0, 1.01, 0), vec(0, 0, -1));
	ck_assert(!kiln_ray_sphere(&r, vec(0, 0, -5), 1, &t));
	/* Grazing at 45 degrees: t = 5 * sqrt(2) - sqrt(2 * 5^2 / 2 - ... ) by hand. */
	r = ray_of(vec(0, 0, 0), vec(1, 0, -1));
	ck_assert(kiln_ray_sphere(&r, vec(3, 0, -3), 1, &t));
	ck_assert_double_eq_tol(t, sqrt(18) - 1, EPS);
}
END_TEST

START_TEST(plane_hits)
{
	struct kiln_ray r = ray_of(vec(0, 0, 0), vec(0, -1, -1));
	double t;

	ck_assert(kiln_ray_plane(&r, vec(0, -2, 0), vec(0, 1, 0), &t));
	ck_assert_double_eq_tol(t, 2 * sqrt(2), EPS);
	/* Both sides are visible; parallel rays and planes behind miss. */
	ck_assert(kiln_ray_plane(&r, vec(0, -2, 0), vec(0, -1, 0), &t));
	ck_assert_double_eq_tol(t, 2 * sqrt(2), EPS);
	r = ray_of(vec(0, 0, 0), vec(1, 0, 0));
	ck_assert(!kiln_ray_plane(&r, vec(0, -2, 0), vec(0, 1, 0), &t));
	r = ray_of(vec(0, 0, 0), vec(0, 1, 0));
	ck_assert(!kiln_ray_plane(&r, vec(0, -2, 0), vec(0, 1, 0), &t));
}
END_TEST

START_TEST(triangle_hits)
{
	struct kiln_ray r = ray_of(vec(0, 0, 0), vec(0, 0, -1));
	double t, u, v;

	ck_assert(kiln_ray_triangle(&r, vec(-1, -1, -3), vec(1, -1, -3), vec(0, 1, -3), &t, &u, &v));
	ck_assert_double_eq_tol(t, 3, EPS);
	ck_assert_double_eq_tol(u, 0.25, EPS);
	ck_assert_double_eq_tol(v, 0.5, EPS);
	r = ray_of(vec(0.9, 0.9, 0), vec(0, 0, -1));
	ck_assert(!kiln_ray_triangle(&r, vec(-1, -1, -3), vec(1, -1, -3), vec(0, 1, -3), &t, &u, &v));
}
END_TEST

START_TEST(normals)
{
	kiln_scene *s = kiln_scene_new();
	struct kiln_material m = diffuse(1, 1, 1);
	struct kiln_mesh *mesh = calloc(1, sizeof(*mesh));
	struct kiln_hit hit;
	struct kiln_ray r;
	kiln_vec3 n;
	char err[256];

	mesh->vertices = malloc(9 * sizeof(double));
	memcpy(mesh->vertices, (double[]){-1, -1, -3, 1, -1, -3, 0, 1, -3}, 9 * sizeof(double));
	mesh->nvertices = 3;
	mesh->faces = malloc(9 * sizeof(int32_t));
	memcpy(mesh->faces, (int32_t[]){0, 1, 2, -1, -1, -1, -1, -1, -1}, 9 * sizeof(int32_t));
	mesh->nfaces = 1;
	ck_assert_int_eq(kiln_scene_add_sphere(s, vec(3, 0, -10), 2, &m, err, sizeof(err)), 0);
	ck_assert_int_eq(kiln_scene_add_mesh(s, mesh, &m, err, sizeof(err)), 0);
	ck_assert_int_eq(kiln_scene_prepare(s, NULL, err, sizeof(err)), 0);

	r = ray_of(vec(3, 0, 0), vec(0, 0, -1));
	ck_assert(kiln_scene_intersect(s, &r, &hit));
	ck_assert_int_eq(hit.kind, KILN_PRIM_SPHERE);
	ck_assert_double_eq_tol(hit.t, 8, EPS);
	n = kiln_scene_normal(s, &r, &hit);
	ck_assert_double_eq_tol(n.z, 1, EPS);
	/* A point off the axis: the normal is (p - c) / r. */
	r = ray_of(vec(3 + sqrt(2), sqrt(2), 0), vec(0, 0, -1));
	ck_assert(kiln_scene_intersect(s, &r, &hit));
	n = kiln_scene_normal(s, &r, &hit);
	ck_assert_double_eq_tol(n.x, sqrt(2) / 2, EPS);
	ck_assert_double_eq_tol(n.y, sqrt(2) / 2, EPS);
	ck_assert_double_eq_tol(n.z, 0, EPS);

	r = ray_of(vec(0, 0, 0), vec(0, 0, -1));
	ck_assert(kiln_scene_intersect(s, &r, &hit));
	ck_assert_int_eq(hit.kind, KILN_PRIM_TRIANGLE);
	n = kiln_scene_normal(s, &r, &hit);
	ck_assert_double_eq_tol(n.x, 0, EPS);
	ck_assert_double_eq_tol(n.z, 1, EPS);
	kiln_scene_free(s);
}
END_TEST

START_TEST(reflect_refract)
{
	kiln_vec3 d = vec(0.5, -sqrt(3) / 2, 0), n = vec(0, 1, 0), out, back;

	out = kiln_reflect(d, n);
	ck_assert_double_eq_tol(out.x, 0.5, EPS);
	ck_assert_double_eq_tol(out.y, sqrt(3) / 2, EPS);
	/* Snell: sin t = sin 30 / 1.5 = 1/3. */
	ck_assert(kiln_refract(d, n, 1.5, &out));
	ck_assert_double_eq_tol(out.x, 1.0 / 3, EPS);
	ck_assert_double_eq_tol(out.y, -sqrt(8.0 / 9), EPS);
	ck_assert_double_eq_tol(out.z, 0, EPS);
	/* Leaving the glass undoes it (outward normal now points down). */
	ck_assert(kiln_refract(out, vec(0, -1, 0), 1.5, &back));
	ck_assert_double_eq_tol(back.x, 0.5, EPS);
	ck_assert_double_eq_tol(back.y, -sqrt(3) / 2, EPS);
	/* 45 degrees inside glass of index 1.5 is past the critical angle (41.8). */
	d = vec(sqrt(0.5), sqrt(0.5), 0);
	ck_assert(!kiln_refract(d, vec(0, 1, 0), 1.5, &out));
	ck_assert_double_eq_tol(kiln_fresnel(d, vec(0, 1, 0), 1.5), 1, EPS);
}
END_TEST

START_TEST(fresnel_values)
{
	/* Normal incidence: ((n - 1) / (n + 1))^2 = 0.04 for n = 1.5. */
	ck_assert_double_eq_tol(kiln_fresnel(vec(0, -1, 0), vec(0, 1, 0), 1.5), 0.04, 1e-12);
	/* Same from inside. */
	ck_assert_double_eq_tol(kiln_fresnel(vec(0, 1, 0), vec(0, 1, 0), 1.5), 0.04, 1e-12);
	/* 45 degrees into n = 1.5, by hand: Rs^2 = 0.0084664, Rp^2 = 0.0920134. */
	ck_assert_double_eq_tol(kiln_fresnel(vec(sqrt(0.5), -sqrt(0.5), 0), vec(0, 1, 0), 1.5),
				0.0502399, 1e-6);
	/* Grazing: everything is reflected. */
	ck_assert_double_eq_tol(kiln_fresnel(vec(1, -1e-9, 0), vec(0, 1, 0), 1.5), 1, 1e-6);
}
END_TEST

static double frand(unsigned *seed)
{
	*seed = *seed * 1103515245u + 12345u;
	return (double)((*seed >> 8) & 0xffffff) / (double)0x1000000;
}

START_TEST(bvh_equals_brute_force)
{
	unsigned seed = 42 + (unsigned)_i;
	kiln_scene *s = kiln_scene_new();
	struct kiln_material m = diffuse(1, 1, 1);
	struct kiln_mesh *mesh = calloc(1, sizeof(*mesh));
	size_t ntri = 400;
	char err[256];

	for (int i = 0; i < 600; i++) {
		kiln_vec3 c = vec(frand(&seed) * 40 - 20, frand(&seed) * 40 - 20, frand(&seed) * 40 - 20);
		ck_assert_int_eq(kiln_scene_add_sphere(s, c, 0.05 + frand(&seed) * (i % 50 ? 0.8 : 5),
						       &m, err, sizeof(err)), 0);
	}
	mesh->vertices = malloc(ntri * 9 * sizeof(double));
	mesh->faces = malloc(ntri * 9 * sizeof(int32_t));
	mesh->nvertices = ntri * 3;
	mesh->nfaces = ntri;
	for (size_t i = 0; i < ntri; i++) {
		double cx = frand(&seed) * 40 - 20, cy = frand(&seed) * 40 - 20, cz = frand(&seed) * 40 - 20;
		for (int k = 0; k < 3; k++) {
			mesh->vertices[i * 9 + k * 3 + 0] = cx + frand(&seed) * 3 - 1.5;
			mesh->vertices[i * 9 + k * 3 + 1] = cy + frand(&seed) * 3 - 1.5;
			mesh->vertices[i * 9 + k * 3 + 2] = cz + frand(&seed) * 3 - 1.5;
			mesh->faces[i * 9 + k] = (int32_t)(i * 3 + k);
			mesh->faces[i * 9 + 3 + k] = mesh->faces[i * 9 + 6 + k] = -1;
		}
	}
	ck_assert_int_eq(kiln_scene_add_mesh(s, mesh, &m, err, sizeof(err)), 0);
	ck_assert_int_eq(kiln_scene_add_plane(s, vec(0, -25, 0), vec(0.1, 1, 0), &m, err, sizeof(err)), 0);
	ck_assert_int_eq(kiln_scene_prepare(s, NULL, err, sizeof(err)), 0);

	int hits = 0;
	for (int i = 0; i < 5000; i++) {
		kiln_vec3 o = vec(frand(&seed) * 60 - 30, frand(&seed) * 60 - 30, frand(&seed) * 60 - 30);
		kiln_vec3 d = vec(frand(&seed) - 0.5, frand(&seed) - 0.5, frand(&seed) - 0.5);
		if (i % 7 == 0)
			d = vec(0, 0, frand(&seed) < 0.5 ? 1 : -1); /* axis-aligned */
		struct kiln_ray r = ray_of(o, d);
		struct kiln_hit a, b;
		bool ha = kiln_scene_intersect(s, &r, &a), hb = kiln_scene_intersect_brute(s, &r, &b);
		ck_assert_int_eq(ha, hb);
		if (!ha)
			continue;
		hits++;
		ck_assert_double_eq_tol(a.t, b.t, 1e-9);
		ck_assert_int_eq(a.kind, b.kind);
		ck_assert_uint_eq(a.index, b.index);
	}
	/* The test means something only if many rays hit something. */
	ck_assert_int_gt(hits, 2000);
	kiln_scene_free(s);
}
END_TEST

/* A small scene with every surface kind and both light kinds. */
static kiln_scene *demo_scene(unsigned w, unsigned h, unsigned samples)
{
	kiln_scene *s = kiln_scene_new();
	struct kiln_settings set;
	struct kiln_material m = diffuse(0.4, 1, 0.4);
	struct kiln_light l = {KILN_LIGHT_POINT, {-2, 3, -2}, {1, 1, 1}, 400};
	uint8_t tex[2 * 2 * 3] = {255, 255, 255, 0, 0, 0, 0, 0, 0, 255, 255, 255};
	char err[256];

	kiln_settings_default(&set);
	set.width = w;
	set.height = h;
	set.samples = samples;
	ck_assert_int_eq(kiln_scene_set_settings(s, &set, err, sizeof(err)), 0);
	ck_assert_int_eq(kiln_scene_add_sphere(s, vec(0, 0, -5), 1, &m, err, sizeof(err)), 0);
	m.surface = KILN_SURFACE_REFRACTIVE;
	m.index = 1.5;
	m.transparency = 0.9;
	m.color = vec(1, 1, 1);
	ck_assert_int_eq(kiln_scene_add_sphere(s, vec(1.5, -0.5, -3), 0.7, &m, err, sizeof(err)), 0);
	m = diffuse(1, 1, 1);
	m.texture = kiln_scene_add_texture(s, "checker", 2, 2, tex, err, sizeof(err));
	ck_assert_int_eq(m.texture, 0);
	m.surface = KILN_SURFACE_REFLECTIVE;
	m.reflectivity = 0.3;
	ck_assert_int_eq(kiln_scene_add_plane(s, vec(0, -2, 0), vec(0, 1, 0), &m, err, sizeof(err)), 0);
	ck_assert_int_eq(kiln_scene_add_light(s, &l, err, sizeof(err)), 0);
	l = (struct kiln_light){KILN_LIGHT_DIRECTIONAL, {0.2, -1, -0.5}, {1, 0.9, 0.8}, 2};
	ck_assert_int_eq(kiln_scene_add_light(s, &l, err, sizeof(err)), 0);
	ck_assert_int_eq(kiln_scene_prepare(s, NULL, err, sizeof(err)), 0);
	return s;
}

START_TEST(tiles_any_order_same_bytes)
{
	kiln_scene *s = demo_scene(70, 45, 2);
	struct kiln_region full = kiln_region_full(s);
	size_t len = (size_t)70 * 45 * 4;
	uint8_t *a = malloc(len), *b = malloc(len);
	uint64_t ra = 0, rb = 0;
	unsigned n = kiln_render_tile_count(&full);
	char err[256];

	ck_assert_uint_eq(n, 5 * 3);
	memset(a, 7, len);
	memset(b, 9, len);
	ck_assert_int_eq(kiln_render(s, &full, a, NULL, &ra, err, sizeof(err)), 0);
	for (unsigned t = n; t-- > 0;)
		kiln_render_tile(s, &full, t, b, &rb);
	ck_assert_mem_eq(a, b, len);
	ck_assert_uint_eq(ra, rb);
	ck_assert_uint_ge(ra, (uint64_t)70 * 45 * 2);

	/* The image is not flat: the scene really rendered. */
	int distinct = 0;
	for (size_t i = 4; i < len; i += 4)
		distinct += memcmp(a + i, a, 3) != 0;
	ck_assert_int_gt(distinct, 1000);

	/* A region is the same pixels as the matching part of the frame. */
	struct kiln_region reg = {13, 7, 30, 20};
	uint8_t *c = malloc((size_t)30 * 20 * 4);
	uint64_t rc = 0;
	ck_assert_int_eq(kiln_render(s, &reg, c, NULL, &rc, err, sizeof(err)), 0);
	for (unsigned y = 0; y < 20; y++)
		ck_assert_mem_eq(c + (size_t)y * 30 * 4, a + ((size_t)(y + 7) * 70 + 13) * 4, 30 * 4);
	free(a);
	free(b);
	free(c);
	kiln_scene_free(s);
}
END_TEST

START_TEST(region_and_cancel)
{
	kiln_scene *s = demo_scene(64, 48, 1);
	struct kiln_region r = {60, 0, 5, 5};
	uint8_t buf[64 * 48 * 4];
	uint64_t rays = 0;
	kiln_cancel c;
	char err[256];

	ck_assert_int_eq(kiln_region_check(s, &r, err, sizeof(err)), -KILN_E_INVALID_ARGS);
	r = (struct kiln_region){0, 0, 0, 5};
	ck_assert_int_eq(kiln_render(s, &r, buf, NULL, &rays, err, sizeof(err)), -KILN_E_INVALID_ARGS);
	r = kiln_region_full(s);
	atomic_init(&c.flag, KILN_E_CANCELLED);
	ck_assert_int_eq(kiln_render(s, &r, buf, &c, &rays, err, sizeof(err)), -KILN_E_CANCELLED);
	ck_assert_uint_eq(rays, 0);
	kiln_scene_free(s);
}
END_TEST

START_TEST(bad_elements_and_rollback)
{
	kiln_scene *s = kiln_scene_new();
	struct kiln_material m = diffuse(1, 1, 1);
	struct kiln_scene_mark mark;
	struct kiln_settings set;
	char err[256];

	ck_assert_int_eq(kiln_scene_add_sphere(s, vec(0, 0, -5), -1, &m, err, sizeof(err)), -KILN_E_INVALID_ARGS);
	ck_assert_ptr_nonnull(strstr(err, "radius"));
	ck_assert_int_eq(kiln_scene_add_plane(s, vec(0, 0, 0), vec(0, 0, 0), &m, err, sizeof(err)),
			 -KILN_E_INVALID_ARGS);
	ck_assert_ptr_nonnull(strstr(err, "normal"));
	m.texture = 3;
	ck_assert_int_eq(kiln_scene_add_sphere(s, vec(0, 0, -5), 1, &m, err, sizeof(err)), -KILN_E_INVALID_ARGS);
	m.texture = -1;
	m.surface = KILN_SURFACE_REFLECTIVE;
	m.reflectivity = 1.5;
	ck_assert_int_eq(kiln_scene_add_sphere(s, vec(0, 0, -5), 1, &m, err, sizeof(err)), -KILN_E_INVALID_ARGS);
	ck_assert_uint_eq(kiln_scene_primitive_count(s), 0);

	m = diffuse(1, 1, 1);
	ck_assert_int_eq(kiln_scene_add_sphere(s, vec(0, 0, -5), 1, &m, err, sizeof(err)), 0);
	ck_assert_int_eq(kiln_scene_prepare(s, NULL, err, sizeof(err)), 0);
	kiln_scene_mark(s, &mark);
	ck_assert_int_eq(kiln_scene_add_sphere(s, vec(0, 0, -3), 1, &m, err, sizeof(err)), 0);
	ck_assert_int_eq(kiln_scene_add_texture(s, "t", 1, 1, (uint8_t[]){1, 2, 3}, err, sizeof(err)), 0);
	kiln_scene_rollback(s, &mark);
	ck_assert_uint_eq(kiln_scene_primitive_count(s), 1);
	ck_assert_int_eq(kiln_scene_find_texture(s, "t"), -1);
	ck_assert_int_eq(kiln_scene_prepare(s, NULL, err, sizeof(err)), 0);
	struct kiln_ray r = ray_of(vec(0, 0, 0), vec(0, 0, -1));
	struct kiln_hit hit;
	ck_assert(kiln_scene_intersect(s, &r, &hit));
	ck_assert_double_eq_tol(hit.t, 4, EPS);

	kiln_settings_default(&set);
	set.fov = 180;
	ck_assert_int_eq(kiln_scene_set_settings(s, &set, err, sizeof(err)), -KILN_E_INVALID_ARGS);
	kiln_settings_default(&set);
	set.camera_look_at = set.camera_position;
	ck_assert_int_eq(kiln_scene_set_settings(s, &set, err, sizeof(err)), -KILN_E_INVALID_ARGS);
	kiln_scene_free(s);
}
END_TEST

START_TEST(png_round_trip)
{
	uint8_t rgba[3 * 2 * 4], *rgb = NULL;
	unsigned char *png = NULL;
	size_t len = 0;
	unsigned w, h;
	char err[256];

	for (size_t i = 0; i < sizeof(rgba); i++)
		rgba[i] = (uint8_t)(i * 17);
	ck_assert_int_eq(kiln_png_encode_rgba(rgba, 3, 2, &png, &len, err, sizeof(err)), 0);
	ck_assert_int_eq(kiln_png_decode_rgb(png, len, 6, &w, &h, &rgb, err, sizeof(err)), 0);
	ck_assert_uint_eq(w, 3);
	ck_assert_uint_eq(h, 2);
	for (size_t i = 0; i < 6; i++)
		ck_assert_mem_eq(rgb + i * 3, rgba + i * 4, 3);
	free(rgb);
	ck_assert_int_eq(kiln_png_decode_rgb(png, len, 5, &w, &h, &rgb, err, sizeof(err)), -KILN_E_TOO_LARGE);
	ck_assert_int_eq(kiln_png_decode_rgb((const unsigned char *)"GIF89a....", 10, 100, &w, &h, &rgb,
					     err, sizeof(err)), -KILN_E_INVALID_ARGS);
	/* A truncated PNG is refused, not a crash. */
	ck_assert_int_eq(kiln_png_decode_rgb(png, len / 2, 100, &w, &h, &rgb, err, sizeof(err)),
			 -KILN_E_INVALID_ARGS);
	ck_assert_ptr_null(rgb);
	free(png);
}
END_TEST

START_TEST(obj_parse)
{
	const char *text = "# quad\nv 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nvt 0 0\nvt 1 0\nvt 1 1\nvt 0 1\n"
			   "vn 0 0 1\ng x\nusemtl m\nf 1/1/1 2/2/1 3/3/1 4/4/1\nf -4 -3 -2\r\n";
	struct kiln_mesh *m = NULL;
	char err[256];

	ck_assert_int_eq(kiln_obj_parse(text, strlen(text), 100, &m, err, sizeof(err)), 0);
	ck_assert_uint_eq(m->nvertices, 4);
	ck_assert_uint_eq(m->nuvs, 4);
	ck_assert_uint_eq(m->nnormals, 1);
	ck_assert_uint_eq(m->nfaces, 3);
	/* The quad is a fan: (1 2 3) and (1 3 4), zero-based. */
	ck_assert_int_eq(m->faces[9 + 0], 0);
	ck_assert_int_eq(m->faces[9 + 1], 2);
	ck_assert_int_eq(m->faces[9 + 2], 3);
	ck_assert_int_eq(m->faces[9 + 5], 3);
	ck_assert_int_eq(m->faces[9 + 6], 0);
	ck_assert_int_eq(m->faces[18 + 0], 0);
	ck_assert_int_eq(m->faces[18 + 3], -1);
	kiln_mesh_free(m);

	ck_assert_int_eq(kiln_obj_parse(text, strlen(text), 2, &m, err, sizeof(err)), -KILN_E_TOO_LARGE);
	ck_assert_int_eq(kiln_obj_parse("v 0 0 0\nf 1 2 3\n", 16, 10, &m, err, sizeof(err)), -KILN_E_INVALID_ARGS);
	ck_assert_ptr_nonnull(strstr(err, "line 2"));
	ck_assert_int_eq(kiln_obj_parse("v 0 x 0\n", 8, 10, &m, err, sizeof(err)), -KILN_E_INVALID_ARGS);
	ck_assert_int_eq(kiln_obj_parse("v 0 0 0\n", 8, 10, &m, err, sizeof(err)), -KILN_E_INVALID_ARGS);
	ck_assert_ptr_null(m);
}
END_TEST

/* A one-pixel render of `s` straight down -z, prepared. */
static void render_one(kiln_scene *s, uint8_t px[4])
{
	struct kiln_region r = {0, 0, 1, 1};
	uint64_t rays = 0;
	char err[256];

	ck_assert_int_eq(kiln_scene_prepare(s, NULL, err, sizeof(err)), 0);
	ck_assert_int_eq(kiln_render(s, &r, px, NULL, &rays, err, sizeof(err)), 0);
}

static kiln_scene *scene_1px(enum kiln_semantics sem)
{
	kiln_scene *s = kiln_scene_new();
	struct kiln_settings set;
	char err[256];

	kiln_settings_default(&set);
	set.width = set.height = 1;
	set.semantics = sem;
	ck_assert_int_eq(kiln_scene_set_settings(s, &set, err, sizeof(err)), 0);
	return s;
}

START_TEST(rust_planes_are_one_sided)
{
	struct kiln_material m = diffuse(1, 1, 1);
	struct kiln_light l = {KILN_LIGHT_DIRECTIONAL, {0, 0, -1}, {1, 1, 1}, 20};
	struct kiln_ray r = ray_of(vec(0, 0, 0), vec(0, 0, -1));
	struct kiln_hit hit;
	uint8_t px[4];
	char err[256];

	for (int sem = 0; sem < 2; sem++) {
		/* Normal facing the camera: visible from both sides under KILN,
		 * from the normal's side only under RUST (scene.h). */
		kiln_scene *s = scene_1px(sem);
		m.albedo = 1;
		ck_assert_int_eq(kiln_scene_add_plane(s, vec(0, 0, -5), vec(0, 0, -1), &m, err, sizeof(err)), 0);
		ck_assert_int_eq(kiln_scene_add_light(s, &l, err, sizeof(err)), 0);
		ck_assert_int_eq(kiln_scene_prepare(s, NULL, err, sizeof(err)), 0);
		ck_assert(kiln_scene_intersect(s, &r, &hit) == (sem == KILN_SEMANTICS_KILN));
		render_one(s, px);
		ck_assert_uint_eq(px[0], sem == KILN_SEMANTICS_KILN ? 255 : 0);
		kiln_scene_free(s);

		s = scene_1px(sem);
		ck_assert_int_eq(kiln_scene_add_plane(s, vec(0, 0, -5), vec(0, 0, 1), &m, err, sizeof(err)), 0);
		ck_assert_int_eq(kiln_scene_prepare(s, NULL, err, sizeof(err)), 0);
		ck_assert(kiln_scene_intersect(s, &r, &hit));
		ck_assert_double_eq_tol(hit.t, 5, EPS);
		kiln_scene_free(s);
	}
}
END_TEST

START_TEST(rust_glass_has_no_diffuse_term)
{
	/* A half-transparent sphere with nothing behind it: the tracer's glass
	 * reflects and transmits only (black here), kiln's has a lit diffuse
	 * half. */
	struct kiln_material g = {.color = {1, 1, 1}, .texture = -1, .albedo = 1,
				  .surface = KILN_SURFACE_REFRACTIVE, .index = 1.5, .transparency = 0.5};
	struct kiln_light l = {KILN_LIGHT_DIRECTIONAL, {0, 0, -1}, {1, 1, 1}, 10};
	uint8_t px[4];
	char err[256];

	for (int sem = 0; sem < 2; sem++) {
		kiln_scene *s = scene_1px(sem);
		ck_assert_int_eq(kiln_scene_add_sphere(s, vec(0, 0, -5), 1, &g, err, sizeof(err)), 0);
		ck_assert_int_eq(kiln_scene_add_light(s, &l, err, sizeof(err)), 0);
		render_one(s, px);
		if (sem == KILN_SEMANTICS_RUST)
			ck_assert_uint_eq(px[0], 0);
		else
			ck_assert_uint_gt(px[0], 100);
		kiln_scene_free(s);
	}
}
END_TEST

START_TEST(rust_output_truncates)
{
	/* Linear 0.5037 encodes to 0.5037^(1/2.2) * 255 = 186.7: kiln rounds
	 * to 187, the tracer truncates to 186. */
	struct kiln_material m = diffuse(1, 1, 1);
	struct kiln_light l = {KILN_LIGHT_DIRECTIONAL, {0, 0, -1}, {1, 1, 1}, 0};
	uint8_t px[4];
	char err[256];

	for (int sem = 0; sem < 2; sem++) {
		kiln_scene *s = scene_1px(sem);
		m.albedo = M_PI;
		l.intensity = 0.5037;
		ck_assert_int_eq(kiln_scene_add_plane(s, vec(0, 0, -5), vec(0, 0, 1), &m, err, sizeof(err)), 0);
		ck_assert_int_eq(kiln_scene_add_light(s, &l, err, sizeof(err)), 0);
		render_one(s, px);
		ck_assert_uint_eq(px[0], sem == KILN_SEMANTICS_RUST ? 186 : 187);
		kiln_scene_free(s);
	}
}
END_TEST

START_TEST(rust_texture_wrap_truncates)
{
	/* A 4x1 texture on a plane facing the camera, hit at texture x = -0.1:
	 * kiln floors (texel 3 of 0..3), the tracer truncates toward zero and
	 * lands on texel 0. */
	uint8_t tex[12] = {10, 10, 10, 50, 50, 50, 100, 100, 100, 200, 200, 200};
	struct kiln_material m = diffuse(1, 1, 1);
	struct kiln_light l = {KILN_LIGHT_DIRECTIONAL, {0, 0, -1}, {1, 1, 1}, M_PI};
	uint8_t px[4];
	char err[256];

	for (int sem = 0; sem < 2; sem++) {
		kiln_scene *s = scene_1px(sem);
		m.albedo = 1;
		m.texture = kiln_scene_add_texture(s, "t", 4, 1, tex, err, sizeof(err));
		ck_assert_int_eq(m.texture, 0);
		/* For this normal both texture x axes are world +x: the hit at
		 * the world origin's x is at texture x = -0.1. */
		ck_assert_int_eq(kiln_scene_add_plane(s, vec(0.1, 0, -5), vec(0, 0, 1), &m, err, sizeof(err)), 0);
		ck_assert_int_eq(kiln_scene_add_light(s, &l, err, sizeof(err)), 0);
		render_one(s, px);
		ck_assert_uint_eq(px[0], sem == KILN_SEMANTICS_RUST ? 10 : 200);
		kiln_scene_free(s);
	}
}
END_TEST

START_TEST(png_writer_streams_rows)
{
	enum { W = 37, H = 21 };
	uint8_t rgba[W * H * 4], *rgb = NULL;
	struct kiln_png_writer *w;
	char path[] = "/tmp/kiln-png-XXXXXX", err[256];
	unsigned char buf[65536];
	unsigned ww, hh;
	ssize_t len;
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	unlink(path);
	for (size_t i = 0; i < sizeof(rgba); i++)
		rgba[i] = (uint8_t)(i * 7 + i / 13);
	for (size_t i = 3; i < sizeof(rgba); i += 4)
		rgba[i] = 255;
	ck_assert_int_eq(kiln_png_writer_new(fd, W, H, &w, err, sizeof(err)), 0);
	/* Rows in uneven bands; one too many is refused; finishing early too. */
	ck_assert_int_eq(kiln_png_writer_rows(w, rgba, 5, err, sizeof(err)), 0);
	ck_assert_int_eq(kiln_png_writer_finish(w, err, sizeof(err)), -KILN_E_INTERNAL);
	ck_assert_int_eq(kiln_png_writer_rows(w, rgba + 5 * W * 4, 16, err, sizeof(err)), 0);
	ck_assert_int_eq(kiln_png_writer_rows(w, rgba, 1, err, sizeof(err)), -KILN_E_INTERNAL);
	ck_assert_int_eq(kiln_png_writer_finish(w, err, sizeof(err)), 0);
	kiln_png_writer_free(w);
	len = pread(fd, buf, sizeof(buf), 0);
	close(fd);
	ck_assert_int_gt(len, 0);
	ck_assert_int_eq(kiln_png_decode_rgb(buf, (size_t)len, 1 << 20, &ww, &hh, &rgb, err, sizeof(err)), 0);
	ck_assert_uint_eq(ww, W);
	ck_assert_uint_eq(hh, H);
	for (size_t i = 0; i < W * H; i++)
		ck_assert(memcmp(rgb + i * 3, rgba + i * 4, 3) == 0);
	free(rgb);

	/* A write error (a read-only descriptor) is reported, not ignored. */
	fd = open("/dev/null", O_RDONLY);
	ck_assert_int_eq(kiln_png_writer_new(fd, W, H, &w, err, sizeof(err)), 0);
	ck_assert_int_eq(kiln_png_writer_rows(w, rgba, H, err, sizeof(err)), 0);
	ck_assert_int_eq(kiln_png_writer_finish(w, err, sizeof(err)), -KILN_E_INTERNAL);
	ck_assert_ptr_nonnull(strstr(err, "writing"));
	kiln_png_writer_free(w);
	close(fd);
}
END_TEST

static Suite *render_suite(void)
{
	Suite *s = suite_create("render");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, sphere_hits);
	tcase_add_test(tc, plane_hits);
	tcase_add_test(tc, triangle_hits);
	tcase_add_test(tc, normals);
	tcase_add_test(tc, reflect_refract);
	tcase_add_test(tc, fresnel_values);
	tcase_add_loop_test(tc, bvh_equals_brute_force, 0, 3);
	tcase_add_test(tc, tiles_any_order_same_bytes);
	tcase_add_test(tc, region_and_cancel);
	tcase_add_test(tc, bad_elements_and_rollback);
	tcase_add_test(tc, png_round_trip);
	tcase_add_test(tc, obj_parse);
	tcase_add_test(tc, rust_planes_are_one_sided);
	tcase_add_test(tc, rust_glass_has_no_diffuse_term);
	tcase_add_test(tc, rust_output_truncates);
	tcase_add_test(tc, rust_texture_wrap_truncates);
	tcase_add_test(tc, png_writer_streams_rows);
	suite_add_tcase(s, tc);
	return s;
}

KILN_CHECK_MAIN(render_suite)
