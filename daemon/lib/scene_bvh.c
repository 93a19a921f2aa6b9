/*
 * Bounding volume hierarchy over a scene's spheres and triangles: built with
 * the binned surface area heuristic, stored as a flat depth-first node array
 * (first child adjacent, second child by offset) so traversal walks memory
 * forwards.  Planes are unbounded and are tested separately (render.c).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/error.h"
#include "scene_impl.h"

#define BINS 16
#define LEAF_MAX 4
#define BIG_NODE 1024

struct build {
	struct kiln_scene *s;
	double (*bmin)[3], (*bmax)[3], (*cent)[3]; /* per item */
	uint32_t *items;                            /* item numbers, partitioned */
	struct bvh_node *nodes;
	size_t nnodes;
	const kiln_cancel *cancel;
};

struct box {
	double min[3], max[3];
};

static void box_empty(struct box *b)
{
	for (int k = 0; k < 3; k++) {
		b->min[k] = INFINITY;
		b->max[k] = -INFINITY;
	}
}

static void box_grow(struct box *b, const double *mn, const double *mx)
{
	for (int k = 0; k < 3; k++) {
		if (mn[k] < b->min[k])
			b->min[k] = mn[k];
		if (mx[k] > b->max[k])
			b->max[k] = mx[k];
	}
}

static double box_area(const struct box *b)
{
	double d[3];

	if (b->min[0] > b->max[0])
		return 0;
	for (int k = 0; k < 3; k++)
		d[k] = b->max[k] - b->min[k];
	return 2 * (d[0] * d[1] + d[1] * d[2] + d[2] * d[0]);
}

static void item_bounds(struct build *b, uint32_t item)
{
	const struct kiln_scene *s = b->s;
	double *mn = b->bmin[item], *mx = b->bmax[item];

	if (item < s->nspheres) {
		const struct scene_sphere *sp = &s->spheres[item];
		double c[3] = {sp->center.x, sp->center.y, sp->center.z};
		for (int k = 0; k < 3; k++) {
			mn[k] = c[k] - sp->radius;
			mx[k] = c[k] + sp->radius;
		}
	} else {
		const struct scene_tri *t = &s->tris[item - s->nspheres];
		kiln_vec3 p[3] = {t->a, v_add(t->a, t->e1), v_add(t->a, t->e2)};
		for (int k = 0; k < 3; k++) {
			mn[k] = INFINITY;
			mx[k] = -INFINITY;
		}
		for (int i = 0; i < 3; i++) {
			double c[3] = {p[i].x, p[i].y, p[i].z};
			for (int k = 0; k < 3; k++) {
				mn[k] = fmin(mn[k], c[k]);
				mx[k] = fmax(mx[k], c[k]);
			}
		}
	}
	for (int k = 0; k < 3; k++)
		b->cent[item][k] = 0.5 * (mn[k] + mx[k]);
}

static int bin_of(double c, double lo, double scale)
{
	int i = (int)((c - lo) * scale);
	return i < 0 ? 0 : i >= BINS ? BINS - 1 : i;
}

/* Chooses a split by binned SAH; returns the count on the left (0 = none). */
static size_t sah_split(struct build *b, size_t first, size_t count, const struct box *cb,
			int *axis_out)
{
	double best_cost = INFINITY, lo = 0, scale = 0;
	int best_axis = -1, best_bin = 0;

	int longest = 0;

	for (int k = 1; k < 3; k++)
		if (cb->max[k] - cb->min[k] > cb->max[longest] - cb->min[longest])
			longest = k;
	for (int axis = 0; axis < 3; axis++) {
		double ext = cb->max[axis] - cb->min[axis];

		/* Big nodes are split along their longest axis only: it is
		 * nearly always the best one and this triples build speed. */
		if (count > BIG_NODE && axis != longest)
			continue;
		struct box bins[BINS], acc;
		size_t cnt[BINS] = {0}, n_left = 0;
		double left_area[BINS];
		size_t left_count[BINS];

		if (ext <= 0)
			continue;
		double sc = BINS / ext;
		for (int i = 0; i < BINS; i++)
			box_empty(&bins[i]);
		for (size_t i = first; i < first + count; i++) {
			uint32_t it = b->items[i];
			int bi = bin_of(b->cent[it][axis], cb->min[axis], sc);
			cnt[bi]++;
			box_grow(&bins[bi], b->bmin[it], b->bmax[it]);
		}
		box_empty(&acc);
		for (int i = 0; i < BINS - 1; i++) {
			box_grow(&acc, bins[i].min, bins[i].max);
			n_left += cnt[i];
			left_area[i] = box_area(&acc);
			left_count[i] = n_left;
		}
		box_empty(&acc);
		size_t n_right = 0;
		for (int i = BINS - 1; i > 0; i--) {
			box_grow(&acc, bins[i].min, bins[i].max);
			n_right += cnt[i];
			double cost = left_area[i - 1] * (double)left_count[i - 1] +
				      box_area(&acc) * (double)n_right;
			if (left_count[i - 1] && n_right && cost < best_cost) {
				best_cost = cost;
				best_axis = axis;
				best_bin = i;
				lo = cb->min[axis];
				scale = sc;
			}
		}
	}
	if (best_axis < 0)
		return 0;
	size_t i = first, j = first + count;
	while (i < j) {
		uint32_t it = b->items[i];
		if (bin_of(b->cent[it][best_axis], lo, scale) < best_bin) {
			i++;
		} else {
			b->items[i] = b->items[--j];
			b->items[j] = it;
		}
	}
	*axis_out = best_axis;
	return i - first;
}

static int build_node(struct build *b, size_t idx, size_t first, size_t count, int depth)
{
	struct bvh_node *node = &b->nodes[idx];
	struct box nb, cb;
	size_t left;
	int axis = 0, rc;

	if (count > 4096 && kiln_cancelled(b->cancel))
		return -KILN_E_CANCELLED;
	box_empty(&nb);
	box_empty(&cb);
	for (size_t i = first; i < first + count; i++) {
		uint32_t it = b->items[i];
		box_grow(&nb, b->bmin[it], b->bmax[it]);
		box_grow(&cb, b->cent[it], b->cent[it]);
	}
	memcpy(node->min, nb.min, sizeof(nb.min));
	memcpy(node->max, nb.max, sizeof(nb.max));
	left = 0;
	/* Small nodes are leaves: a few primitive tests cost less than the
	 * box tests of a deeper tree. */
	if (count > LEAF_MAX && depth < BVH_SAH_MAX_DEPTH)
		left = sah_split(b, first, count, &cb, &axis);
	if (left == 0 && count > LEAF_MAX) {
		/* Identical centroids or too deep: halve, which still bounds
		 * the depth and keeps leaves small. */
		double ext = -1;
		for (int k = 0; k < 3; k++) {
			if (nb.max[k] - nb.min[k] > ext) {
				ext = nb.max[k] - nb.min[k];
				axis = k;
			}
		}
		left = count / 2;
	}
	if (left == 0) {
		node->offset = (uint32_t)first;
		node->count = (uint16_t)count;
		node->axis = 0;
		return 0;
	}
	node->count = 0;
	node->axis = (uint16_t)axis;
	rc = build_node(b, b->nnodes++, first, left, depth + 1);
	if (rc)
		return rc;
	size_t right = b->nnodes++;
	b->nodes[idx].offset = (uint32_t)right;
	return build_node(b, right, first + left, count - left, depth + 1);
}

void bvh_free(struct kiln_scene *s)
{
	free(s->nodes);
	free(s->prims);
	s->nodes = NULL;
	s->prims = NULL;
	s->nnodes = s->nprims = 0;
}

int bvh_build(struct kiln_scene *s, const kiln_cancel *cancel)
{
	struct build b = {.s = s, .cancel = cancel};
	size_t n = s->nspheres + s->ntris;
	int rc = -KILN_E_INTERNAL;

	bvh_free(s);
	if (n == 0)
		return 0;
	b.bmin = malloc(n * sizeof(*b.bmin));
	b.bmax = malloc(n * sizeof(*b.bmax));
	b.cent = malloc(n * sizeof(*b.cent));
	b.items = malloc(n * sizeof(*b.items));
	b.nodes = malloc(2 * n * sizeof(*b.nodes));
	if (!b.bmin || !b.bmax || !b.cent || !b.items || !b.nodes)
		goto out;
	for (uint32_t i = 0; i < n; i++) {
		b.items[i] = i;
		item_bounds(&b, i);
	}
	b.nnodes = 1;
	rc = build_node(&b, 0, 0, n, 0);
	if (rc)
		goto out;
	for (size_t i = 0; i < n; i++) {
		uint32_t it = b.items[i];
		b.items[i] = it < s->nspheres ? it : PRIM_TRI | (uint32_t)(it - s->nspheres);
	}
	s->prims = b.items;
	s->nprims = n;
	b.items = NULL;
	s->nodes = b.nodes;
	s->nnodes = b.nnodes;
	b.nodes = NULL;
out:
	free(b.bmin);
	free(b.bmax);
	free(b.cent);
	free(b.items);
	free(b.nodes);
	return rc;
}
