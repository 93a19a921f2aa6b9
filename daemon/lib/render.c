/*
 * Whitted-style ray tracing of a prepared scene: hard shadows, mirror
 * reflection, refraction with Fresnel and total internal reflection,
 * textures, and deterministic per-pixel sampling (render.h).
 */
#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "kiln/error.h"
#include "scene_impl.h"

struct tracer {
	const struct kiln_scene *s;
	uint64_t rays;
};

struct surface {
	kiln_vec3 point;
	kiln_vec3 normal; /* outward, unit */
	const struct kiln_material *material;
	double u, v;      /* texture coordinates */
	bool flip_v;      /* mesh uvs have v pointing up */
};


static inline bool sphere_isect(const struct scene_sphere *sp, const struct kiln_ray *ray,
				double tmax, double *t)
{
	kiln_vec3 oc = v_sub(ray->origin, sp->center);
	double b = v_dot(oc, ray->dir);
	double c = v_dot(oc, oc) - sp->radius2;
	double disc = b * b - c, sq, tt;

	if (disc < 0)
		return false;
	sq = sqrt(disc);
	tt = -b - sq;
	if (!(tt > 0))
		tt = -b + sq;
	if (!(tt > 0 && tt < tmax))
		return false;
	*t = tt;
	return true;
}

/* Moller-Trumbore. */
static inline bool tri_isect(const struct scene_tri *tr, const struct kiln_ray *ray, double tmax,
			     double *t, double *u, double *v)
{
	kiln_vec3 p = v_cross(ray->dir, tr->e2), tv, q;
	double det = v_dot(tr->e1, p), inv, uu, vv, tt;

	if (det == 0)
		return false;
	inv = 1.0 / det;
	tv = v_sub(ray->origin, tr->a);
	uu = v_dot(tv, p) * inv;
	if (uu < 0 || uu > 1)
		return false;
	q = v_cross(tv, tr->e1);
	vv = v_dot(ray->dir, q) * inv;
	if (vv < 0 || uu + vv > 1)
		return false;
	tt = v_dot(tr->e2, q) * inv;
	if (!(tt > 0 && tt < tmax))
		return false;
	*t = tt;
	*u = uu;
	*v = vv;
	return true;
}

static inline bool plane_isect(const kiln_vec3 origin, kiln_vec3 normal, const struct kiln_ray *ray,
			       double *t)
{
	double denom = v_dot(normal, ray->dir), tt;

	if (fabs(denom) < 1e-12)
		return false;
	tt = v_dot(v_sub(origin, ray->origin), normal) / denom;
	if (!(tt > 0))
		return false;
	*t = tt;
	return true;
}

static inline bool prim_isect(const struct kiln_scene *s, uint32_t prim, const struct kiln_ray *ray,
			      double tmax, struct kiln_hit *hit)
{
	double t, u, v;

	if (prim & PRIM_TRI) {
		if (!tri_isect(&s->tris[prim & ~PRIM_TRI], ray, tmax, &t, &u, &v))
			return false;
		*hit = (struct kiln_hit){t, KILN_PRIM_TRIANGLE, prim & ~PRIM_TRI, u, v};
		return true;
	}
	if (!sphere_isect(&s->spheres[prim], ray, tmax, &t))
		return false;
	*hit = (struct kiln_hit){t, KILN_PRIM_SPHERE, prim, 0, 0};
	return true;
}

/* Slab test: true if the ray enters the box before tmax, with the entry t. */
static inline bool box_isect(const struct bvh_node *n, const double o[3], const double inv[3],
			     double tmax, double *tenter)
{
	double t0 = 0, t1 = tmax;

	for (int k = 0; k < 3; k++) {
		double a = (n->min[k] - o[k]) * inv[k];
		double b = (n->max[k] - o[k]) * inv[k];
		if (a > b) {
			double tmp = a;
			a = b;
			b = tmp;
		}
		t0 = a > t0 ? a : t0;
		t1 = b < t1 ? b : t1;
	}
	*tenter = t0;
	return t0 <= t1;
}

/*
 * Nearest primitive in the BVH closer than tmax (with `any`, the first one
 * found).  Both children's boxes are tested and the nearer is visited first;
 * the farther one is stacked with its entry distance and skipped later if a
 * hit closer than that has been found meanwhile.
 */
static bool bvh_isect(const struct kiln_scene *s, const struct kiln_ray *ray, double tmax,
		      bool any, struct kiln_hit *hit)
{
	uint32_t stack[BVH_STACK_MAX];
	double stack_t[BVH_STACK_MAX];
	unsigned sp = 0;
	uint32_t idx = 0;
	bool found = false;
	double o[3] = {ray->origin.x, ray->origin.y, ray->origin.z};
	double d[3] = {ray->dir.x, ray->dir.y, ray->dir.z};
	double inv[3], tl, tr;

	if (!s->nnodes)
		return false;
	/* A zero component would give 0 * inf = NaN in the slab test. */
	for (int k = 0; k < 3; k++)
		inv[k] = 1.0 / (d[k] != 0 ? d[k] : 1e-300);
	/* A one-leaf tree (a handful of primitives): the box test would cost
	 * about as much as the primitives it guards. */
	if (s->nnodes > 1 && !box_isect(&s->nodes[0], o, inv, tmax, &tl))
		return false;
	for (;;) {
		const struct bvh_node *n = &s->nodes[idx];
		if (n->count) {
			for (uint32_t i = 0; i < n->count; i++) {
				if (prim_isect(s, s->prims[n->offset + i], ray, tmax, hit)) {
					found = true;
					tmax = hit->t;
					if (any)
						return true;
				}
			}
		} else {
			uint32_t l = idx + 1, r = n->offset;
			bool hl = box_isect(&s->nodes[l], o, inv, tmax, &tl);
			bool hr = box_isect(&s->nodes[r], o, inv, tmax, &tr);
			if (hl && hr) {
				if (tr < tl) {
					uint32_t ti = l;
					double tt = tl;
					l = r;
					r = ti;
					tl = tr;
					tr = tt;
				}
				assert(sp < BVH_STACK_MAX);
				stack[sp] = r;
				stack_t[sp++] = tr;
				idx = l;
				continue;
			}
			if (hl || hr) {
				idx = hl ? l : r;
				continue;
			}
		}
		for (;;) {
			if (sp == 0)
				return found;
			sp--;
			if (stack_t[sp] < tmax) {
				idx = stack[sp];
				break;
			}
		}
	}
}

bool kiln_ray_sphere(const struct kiln_ray *ray, kiln_vec3 center, double radius, double *t)
{
	struct scene_sphere sp = {center, radius, radius * radius, 0};

	return sphere_isect(&sp, ray, INFINITY, t);
}

bool kiln_ray_plane(const struct kiln_ray *ray, kiln_vec3 origin, kiln_vec3 normal, double *t)
{
	return plane_isect(origin, normal, ray, t);
}

bool kiln_ray_triangle(const struct kiln_ray *ray, kiln_vec3 a, kiln_vec3 b, kiln_vec3 c,
		       double *t, double *u, double *v)
{
	struct scene_tri tr = {a, v_sub(b, a), v_sub(c, a), 0, 0};

	return tri_isect(&tr, ray, INFINITY, t, u, v);
}

static inline kiln_vec3 reflect(kiln_vec3 d, kiln_vec3 n)
{
	return v_sub(d, v_scale(n, 2 * v_dot(d, n)));
}

static inline bool refract(kiln_vec3 d, kiln_vec3 n, double index, kiln_vec3 *out)
{
	double cosi = v_dot(d, n), eta = 1.0 / index, k;

	if (cosi < 0) {
		cosi = -cosi;
	} else {
		/* Leaving the medium: flip the normal to face the ray. */
		n = v_scale(n, -1);
		eta = index;
	}
	k = 1 - eta * eta * (1 - cosi * cosi);
	if (k < 0)
		return false;
	*out = v_norm(v_add(v_scale(d, eta), v_scale(n, eta * cosi - sqrt(k))));
	return true;
}

static inline double fresnel(kiln_vec3 d, kiln_vec3 n, double index)
{
	double cosi = v_dot(d, n), etai = 1, etat = index, sint, cost, rs, rp;

	if (cosi > 0) {
		etai = index;
		etat = 1;
	}
	cosi = fabs(cosi);
	sint = etai / etat * sqrt(fmax(0, 1 - cosi * cosi));
	if (sint >= 1)
		return 1;
	cost = sqrt(fmax(0, 1 - sint * sint));
	rs = (etat * cosi - etai * cost) / (etat * cosi + etai * cost);
	rp = (etai * cosi - etat * cost) / (etai * cosi + etat * cost);
	return (rs * rs + rp * rp) / 2;
}

kiln_vec3 kiln_reflect(kiln_vec3 d, kiln_vec3 n)
{
	return reflect(d, n);
}

bool kiln_refract(kiln_vec3 d, kiln_vec3 n, double index, kiln_vec3 *out)
{
	return refract(d, n, index, out);
}

double kiln_fresnel(kiln_vec3 d, kiln_vec3 n, double index)
{
	return fresnel(d, n, index);
}

static bool plane_hit(const struct kiln_scene *s, const struct kiln_ray *ray, double tmax,
		      bool any, struct kiln_hit *hit)
{
	bool found = false;
	double t;

	for (size_t i = 0; i < s->nplanes; i++) {
		const struct scene_plane *p = &s->planes[i];
		double denom = v_dot(p->normal, ray->dir);
		if (fabs(denom) < 1e-12)
			continue;
		t = (p->dist - v_dot(p->normal, ray->origin)) / denom;
		if (t > 0 && t < tmax) {
			*hit = (struct kiln_hit){t, KILN_PRIM_PLANE, (uint32_t)i, 0, 0};
			tmax = t;
			found = true;
			if (any)
				return true;
		}
	}
	return found;
}

/* Nearest hit closer than tmax; with `any`, stops at the first one. */
static bool intersect(const struct kiln_scene *s, const struct kiln_ray *ray, double tmax,
		      bool any, struct kiln_hit *hit)
{
	bool found = plane_hit(s, ray, tmax, any, hit);

	if (found && any)
		return true;
	if (found)
		tmax = hit->t;
	return bvh_isect(s, ray, tmax, any, hit) || found;
}

bool kiln_scene_intersect(const kiln_scene *s, const struct kiln_ray *ray, struct kiln_hit *hit)
{
	return intersect(s, ray, INFINITY, false, hit);
}

bool kiln_scene_intersect_brute(const kiln_scene *s, const struct kiln_ray *ray, struct kiln_hit *hit)
{
	double tmax = INFINITY;
	bool found = plane_hit(s, ray, tmax, false, hit);

	if (found)
		tmax = hit->t;
	for (uint32_t i = 0; i < s->nspheres; i++)
		if (prim_isect(s, i, ray, tmax, hit)) {
			found = true;
			tmax = hit->t;
		}
	for (uint32_t i = 0; i < s->ntris; i++)
		if (prim_isect(s, PRIM_TRI | i, ray, tmax, hit)) {
			found = true;
			tmax = hit->t;
		}
	return found;
}

static kiln_vec3 mesh_corner(const double *arr, int32_t i)
{
	const double *p = arr + (size_t)i * 3;
	return v3(p[0], p[1], p[2]);
}

/* Fills the surface at a hit: point, outward normal, material, uv. */
static void surface_at(const struct kiln_scene *s, const struct kiln_ray *ray,
		       const struct kiln_hit *hit, struct surface *sf)
{
	sf->point = v_add(ray->origin, v_scale(ray->dir, hit->t));
	sf->flip_v = false;
	switch (hit->kind) {
	case KILN_PRIM_SPHERE: {
		const struct scene_sphere *sp = &s->spheres[hit->index];
		kiln_vec3 hv = v_sub(sf->point, sp->center);
		double y = hv.y / sp->radius;
		sf->normal = v_scale(hv, 1 / sp->radius);
		sf->material = &s->materials[sp->material];
		/* Spherical coordinates cost two libm calls: only for textures. */
		if (sf->material->texture >= 0) {
			sf->u = (1 + atan2(hv.z, hv.x) / M_PI) * 0.5;
			sf->v = acos(y > 1 ? 1 : y < -1 ? -1 : y) / M_PI;
		}
		return;
	}
	case KILN_PRIM_PLANE: {
		const struct scene_plane *p = &s->planes[hit->index];
		kiln_vec3 hv = v_sub(sf->point, p->origin);
		sf->normal = p->normal;
		sf->material = &s->materials[p->material];
		sf->u = v_dot(hv, p->tex_x);
		sf->v = v_dot(hv, p->tex_y);
		return;
	}
	case KILN_PRIM_TRIANGLE: {
		const struct scene_tri *t = &s->tris[hit->index];
		const struct kiln_mesh *m = s->meshes[t->mesh];
		const int32_t *c = m->faces + (size_t)t->face * 9;
		double w = 1 - hit->u - hit->v;
		sf->material = &s->materials[s->mesh_material[t->mesh]];
		sf->normal = v_norm(v_cross(t->e1, t->e2));
		if (c[6] >= 0 && c[7] >= 0 && c[8] >= 0) {
			kiln_vec3 n = v_add(v_scale(mesh_corner(m->normals, c[6]), w),
					    v_add(v_scale(mesh_corner(m->normals, c[7]), hit->u),
						  v_scale(mesh_corner(m->normals, c[8]), hit->v)));
			if (v_len(n) > 0)
				sf->normal = v_norm(n);
		}
		if (c[3] >= 0 && c[4] >= 0 && c[5] >= 0) {
			const double *a = m->uvs + (size_t)c[3] * 2, *b = m->uvs + (size_t)c[4] * 2,
				     *cc = m->uvs + (size_t)c[5] * 2;
			sf->u = w * a[0] + hit->u * b[0] + hit->v * cc[0];
			sf->v = w * a[1] + hit->u * b[1] + hit->v * cc[1];
			sf->flip_v = true;
		} else {
			sf->u = hit->u;
			sf->v = hit->v;
		}
		return;
	}
	}
}

kiln_vec3 kiln_scene_normal(const kiln_scene *s, const struct kiln_ray *ray, const struct kiln_hit *hit)
{
	struct surface sf;

	surface_at(s, ray, hit, &sf);
	return sf.normal;
}

/* Texel index of a repeating texture coordinate. */
static unsigned wrap(double coord, unsigned bound)
{
	double x = coord * bound;
	long long i;

	/* Far-away or non-finite coordinates: any texel is as good. */
	if (!(fabs(x) < 1e15))
		return 0;
	i = (long long)x;
	if ((double)i > x)
		i--; /* floor, without a libm call */
	/* Power-of-two sizes (the usual case) need no division. */
	if ((bound & (bound - 1)) == 0)
		return (unsigned)(i & (long long)(bound - 1));
	i %= (long long)bound;
	return (unsigned)(i < 0 ? i + bound : i);
}

static kiln_vec3 surface_color(const struct kiln_scene *s, const struct surface *sf)
{
	const struct kiln_material *m = sf->material;
	const struct scene_texture *t;
	const uint8_t *px;
	unsigned x, y;

	if (m->texture < 0)
		return m->color;
	t = &s->textures[m->texture];
	x = wrap(sf->u, t->width);
	y = wrap(sf->flip_v ? 1 - sf->v : sf->v, t->height);
	px = t->rgb + ((size_t)y * t->width + x) * 3;
	return v3(s->tex_linear[px[0]], s->tex_linear[px[1]], s->tex_linear[px[2]]);
}

static kiln_vec3 shade_diffuse(struct tracer *tr, const struct surface *sf, kiln_vec3 n,
			       kiln_vec3 color)
{
	const struct kiln_scene *s = tr->s;
	kiln_vec3 sum = v3(0, 0, 0);
	struct kiln_hit hit;

	for (size_t i = 0; i < s->nlights; i++) {
		const struct kiln_light *l = &s->lights[i];
		kiln_vec3 to_light;
		double dist, intensity;

		if (l->kind == KILN_LIGHT_DIRECTIONAL) {
			to_light = v_scale(l->vec, -1);
			dist = INFINITY;
			intensity = l->intensity;
		} else {
			kiln_vec3 d = v_sub(l->vec, sf->point);
			double r2 = v_dot(d, d);
			dist = sqrt(r2);
			to_light = v_scale(d, 1 / dist);
			intensity = l->intensity / (4 * M_PI * r2);
		}
		double cosl = v_dot(n, to_light);
		if (!(cosl > 0) || intensity == 0)
			continue;
		struct kiln_ray shadow = {v_add(sf->point, v_scale(n, s->settings.shadow_bias)), to_light};
		tr->rays++;
		if (intersect(s, &shadow, dist, true, &hit))
			continue;
		sum = v_add(sum, v_scale(l->color, cosl * intensity));
	}
	return v_scale(v_mul(color, sum), sf->material->albedo / M_PI);
}

/*
 * Secondary rays whose contribution to the pixel would be below this
 * fraction (the product of reflectivities, Fresnel factors, transparencies
 * and colours along the path) are not cast: inside glass the internal
 * reflections otherwise multiply the ray count for no visible change.
 */
#define MIN_WEIGHT 1e-3

static double max3(kiln_vec3 c)
{
	double m = c.x > c.y ? c.x : c.y;
	return m > c.z ? m : c.z;
}

static kiln_vec3 trace(struct tracer *tr, const struct kiln_ray *ray, unsigned depth, double weight);

static kiln_vec3 trace_from(struct tracer *tr, kiln_vec3 origin, kiln_vec3 dir, unsigned depth,
			    double weight)
{
	struct kiln_ray r = {origin, dir};

	if (weight < MIN_WEIGHT)
		return v3(0, 0, 0);
	return trace(tr, &r, depth, weight);
}

static kiln_vec3 trace(struct tracer *tr, const struct kiln_ray *ray, unsigned depth, double weight)
{
	const struct kiln_scene *s = tr->s;
	double bias = s->settings.shadow_bias;
	struct kiln_hit hit;
	struct surface sf;
	kiln_vec3 color, n, out;

	if (depth >= s->settings.max_recursion_depth)
		return v3(0, 0, 0);
	tr->rays++;
	if (!intersect(s, ray, INFINITY, false, &hit))
		return s->settings.background;
	surface_at(s, ray, &hit, &sf);
	color = surface_color(s, &sf);
	/* Shading uses the side of the surface the ray came from. */
	n = v_dot(sf.normal, ray->dir) > 0 ? v_scale(sf.normal, -1) : sf.normal;
	const struct kiln_material *m = sf.material;
	switch (m->surface) {
	case KILN_SURFACE_DIFFUSE:
		return shade_diffuse(tr, &sf, n, color);
	case KILN_SURFACE_REFLECTIVE: {
		kiln_vec3 diffuse = shade_diffuse(tr, &sf, n, color);
		kiln_vec3 mirror = trace_from(tr, v_add(sf.point, v_scale(n, bias)),
					      reflect(ray->dir, n), depth + 1,
					      weight * m->reflectivity);
		return v_add(v_scale(diffuse, 1 - m->reflectivity), v_scale(mirror, m->reflectivity));
	}
	case KILN_SURFACE_REFRACTIVE: {
		double kr = fresnel(ray->dir, sf.normal, m->index);
		/* Capped at 1 so bright colours cannot make a path's weight grow:
		 * the weights of a split then sum to at most the parent's, which
		 * bounds the number of paths a pixel can spawn. */
		double w = weight * m->transparency * fmin(1, max3(color));
		kiln_vec3 glass = v3(0, 0, 0), diffuse = v3(0, 0, 0);
		if (kr < 1 && refract(ray->dir, sf.normal, m->index, &out))
			glass = v_scale(trace_from(tr, v_sub(sf.point, v_scale(n, bias)), out, depth + 1,
						   w * (1 - kr)),
					1 - kr);
		else
			kr = 1;
		glass = v_add(glass, v_scale(trace_from(tr, v_add(sf.point, v_scale(n, bias)),
							reflect(ray->dir, n), depth + 1, w * kr),
					     kr));
		/* The opaque part of a partly transparent surface is diffuse. */
		if (m->transparency < 1)
			diffuse = v_scale(shade_diffuse(tr, &sf, n, color), 1 - m->transparency);
		return v_add(diffuse, v_mul(v_scale(glass, m->transparency), color));
	}
	}
	return v3(0, 0, 0);
}

/* A well-mixed 64-bit hash (splitmix64 finaliser). */
static uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Gamma-encodes a linear value: the number of byte thresholds <= c. */
static uint8_t encode(const struct kiln_scene *s, double c)
{
	unsigned b;

	if (!(c > 0))
		return 0;
	if (c >= 1)
		return 255;
	/* The table gives the byte at the step below c; only dark values,
	 * where the curve is steep, move on by more than one. */
	b = s->encode_start[(unsigned)(c * (ENCODE_STEPS - 1))];
	while (b < 255 && s->encode_limit[b] <= c)
		b++;
	return (uint8_t)b;
}

static kiln_vec3 render_pixel(struct tracer *tr, unsigned px, unsigned py)
{
	const struct kiln_scene *s = tr->s;
	const struct kiln_settings *set = &s->settings;
	double aspect = (double)set->width / set->height;
	kiln_vec3 sum = v3(0, 0, 0);

	for (unsigned i = 0; i < set->samples; i++) {
		double jx = 0.5, jy = 0.5;
		if (set->samples > 1) {
			uint64_t h = mix64(((uint64_t)px << 40) ^ ((uint64_t)py << 16) ^ i ^
					   0x9e3779b97f4a7c15ull);
			jx = (double)(h >> 40) / (double)(1u << 24);
			jy = (double)(h & 0xffffff) / (double)(1u << 24);
		}
		double sx = ((px + jx) / set->width * 2 - 1) * aspect * s->tan_half_fov;
		double sy = (1 - (py + jy) / set->height * 2) * s->tan_half_fov;
		kiln_vec3 d = v_add(s->cam_forward, v_add(v_scale(s->cam_right, sx), v_scale(s->cam_up, sy)));
		sum = v_add(sum, trace_from(tr, set->camera_position, v_norm(d), 0, 1));
	}
	return v_scale(sum, 1.0 / set->samples);
}

struct kiln_region kiln_region_full(const kiln_scene *s)
{
	return (struct kiln_region){0, 0, s->settings.width, s->settings.height};
}

int kiln_region_check(const kiln_scene *s, const struct kiln_region *r, char *err, size_t errlen)
{
	const struct kiln_settings *set = &s->settings;

	if (r->width < 1 || r->height < 1 || r->x >= set->width || r->y >= set->height ||
	    r->width > set->width - r->x || r->height > set->height - r->y) {
		if (err && errlen)
			snprintf(err, errlen, "region %ux%u at (%u, %u) is empty or outside the %ux%u frame",
				 r->width, r->height, r->x, r->y, set->width, set->height);
		return -KILN_E_INVALID_ARGS;
	}
	return 0;
}

unsigned kiln_render_tile_count(const struct kiln_region *r)
{
	return ((r->width + KILN_TILE - 1) / KILN_TILE) * ((r->height + KILN_TILE - 1) / KILN_TILE);
}

void kiln_render_tile(const kiln_scene *s, const struct kiln_region *r, unsigned tile,
		      uint8_t *rgba, uint64_t *rays)
{
	struct tracer tr = {s, 0};
	unsigned tiles_x = (r->width + KILN_TILE - 1) / KILN_TILE;
	unsigned x0 = (tile % tiles_x) * KILN_TILE, y0 = (tile / tiles_x) * KILN_TILE;
	unsigned x1 = x0 + KILN_TILE < r->width ? x0 + KILN_TILE : r->width;
	unsigned y1 = y0 + KILN_TILE < r->height ? y0 + KILN_TILE : r->height;

	for (unsigned y = y0; y < y1; y++) {
		uint8_t *row = rgba + ((size_t)y * r->width + x0) * 4;
		for (unsigned x = x0; x < x1; x++, row += 4) {
			kiln_vec3 c = render_pixel(&tr, r->x + x, r->y + y);
			row[0] = encode(s, c.x);
			row[1] = encode(s, c.y);
			row[2] = encode(s, c.z);
			row[3] = 255;
		}
	}
	*rays += tr.rays;
}

int kiln_render(const kiln_scene *s, const struct kiln_region *r, uint8_t *rgba,
		const kiln_cancel *cancel, uint64_t *rays, char *err, size_t errlen)
{
	unsigned n;
	int rc = kiln_region_check(s, r, err, errlen);

	if (rc)
		return rc;
	n = kiln_render_tile_count(r);
	for (unsigned t = 0; t < n; t++) {
		if (kiln_cancelled(cancel)) {
			if (err && errlen)
				snprintf(err, errlen, "render cancelled");
			return -KILN_E_CANCELLED;
		}
		kiln_render_tile(s, r, t, rgba, rays);
	}
	return 0;
}
