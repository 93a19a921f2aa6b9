/*
 * Wavefront OBJ parsing (mesh.h).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/error.h"
#include "kiln/mesh.h"

#define LINE_MAX_BYTES 4096
/* Corners of one polygon (f lines); more is certainly not a real model. */
#define POLY_MAX 64

struct darr {
	double *v;
	size_t n, cap;
};

struct iarr {
	int32_t *v;
	size_t n, cap;
};

/* The array `v` (n elements of `size` bytes used, *cap allocated) with room
 * for one more, doubling: `v` itself, a reallocated copy (*cap updated), or
 * NULL when out of memory (`v` unchanged). */
static void *grow(void *v, size_t n, size_t *cap, size_t size)
{
	size_t ncap;

	if (n < *cap)
		return v;
	ncap = *cap ? *cap * 2 : 256;
	v = realloc(v, ncap * size);
	if (v)
		*cap = ncap;
	return v;
}

static int dpush(struct darr *a, double x)
{
	double *p = grow(a->v, a->n, &a->cap, sizeof(*p));

	if (!p)
		return -1;
	a->v = p;
	a->v[a->n++] = x;
	return 0;
}

static int ipush(struct iarr *a, int32_t x)
{
	int32_t *p = grow(a->v, a->n, &a->cap, sizeof(*p));

	if (!p)
		return -1;
	a->v = p;
	a->v[a->n++] = x;
	return 0;
}

struct obj {
	struct darr v, vt, vn;
	struct iarr f;
	size_t max_faces;
	char *err;
	size_t errlen;
	size_t line;
};

static int obj_fail(struct obj *o, int code, const char *what)
{
	snprintf(o->err, o->errlen, "OBJ line %zu: %s", o->line, what);
	return -code;
}

/* Reads `count` numbers after the keyword (extra ones, like w, are ignored). */
static int read_numbers(struct obj *o, char *p, struct darr *into, int count, int required)
{
	for (int i = 0; i < count; i++) {
		char *end;
		double x;

		errno = 0;
		x = strtod(p, &end);
		if (end == p) {
			if (i >= required) {
				x = 0;
			} else {
				return obj_fail(o, KILN_E_INVALID_ARGS, "expected a number");
			}
		} else if (!isfinite(x)) {
			return obj_fail(o, KILN_E_INVALID_ARGS, "number is not finite");
		}
		if (dpush(into, x))
			return obj_fail(o, KILN_E_INTERNAL, "out of memory");
		p = end;
	}
	return 0;
}

/* Resolves a 1-based or negative OBJ index against `n` items; -1 if absent. */
static int resolve(struct obj *o, long idx, size_t n, int32_t *out)
{
	long r = idx > 0 ? idx - 1 : (long)n + idx;

	if (idx == 0 || r < 0 || (size_t)r >= n || r > INT32_MAX)
		return obj_fail(o, KILN_E_INVALID_ARGS, "face index out of range");
	*out = (int32_t)r;
	return 0;
}

/* One corner "v", "v/vt", "v//vn" or "v/vt/vn"; 9 ints go into c[0], c[3], c[6]. */
static int read_corner(struct obj *o, char **pp, int32_t *c)
{
	char *p = *pp, *end;
	long vi, ti = 0, ni = 0;
	int rc;

	vi = strtol(p, &end, 10);
	if (end == p)
		return obj_fail(o, KILN_E_INVALID_ARGS, "bad face corner");
	p = end;
	if (*p == '/') {
		p++;
		if (*p != '/') {
			ti = strtol(p, &end, 10);
			if (end == p)
				return obj_fail(o, KILN_E_INVALID_ARGS, "bad texture index");
			p = end;
		}
		if (*p == '/') {
			p++;
			ni = strtol(p, &end, 10);
			if (end == p)
				return obj_fail(o, KILN_E_INVALID_ARGS, "bad normal index");
			p = end;
		}
	}
	if (*p && *p != ' ' && *p != '\t')
		return obj_fail(o, KILN_E_INVALID_ARGS, "bad face corner");
	rc = resolve(o, vi, o->v.n / 3, &c[0]);
	c[3] = c[6] = -1;
	if (!rc && ti)
		rc = resolve(o, ti, o->vt.n / 2, &c[3]);
	if (!rc && ni)
		rc = resolve(o, ni, o->vn.n / 3, &c[6]);
	*pp = p;
	return rc;
}

static int read_face(struct obj *o, char *p)
{
	int32_t corner[POLY_MAX][9];
	int n = 0, rc;

	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			break;
		if (n == POLY_MAX)
			return obj_fail(o, KILN_E_INVALID_ARGS, "polygon has too many corners");
		rc = read_corner(o, &p, corner[n]);
		if (rc)
			return rc;
		n++;
	}
	if (n < 3)
		return obj_fail(o, KILN_E_INVALID_ARGS, "face has fewer than 3 corners");
	for (int i = 1; i + 1 < n; i++) {
		const int32_t *k[3] = {corner[0], corner[i], corner[i + 1]};
		if (o->f.n / 9 >= o->max_faces)
			return obj_fail(o, KILN_E_TOO_LARGE, "more triangles than the limit allows");
		for (int part = 0; part < 9; part += 3)
			for (int j = 0; j < 3; j++)
				if (ipush(&o->f, k[j][part]))
					return obj_fail(o, KILN_E_INTERNAL, "out of memory");
	}
	return 0;
}

static int parse_line(struct obj *o, char *line)
{
	while (*line == ' ' || *line == '\t')
		line++;
	if (strncmp(line, "v ", 2) == 0 || strncmp(line, "v\t", 2) == 0)
		return read_numbers(o, line + 2, &o->v, 3, 3);
	if (strncmp(line, "vt ", 3) == 0 || strncmp(line, "vt\t", 3) == 0)
		return read_numbers(o, line + 3, &o->vt, 2, 1);
	if (strncmp(line, "vn ", 3) == 0 || strncmp(line, "vn\t", 3) == 0)
		return read_numbers(o, line + 3, &o->vn, 3, 3);
	if (strncmp(line, "f ", 2) == 0 || strncmp(line, "f\t", 2) == 0)
		return read_face(o, line + 2);
	return 0;
}

int kiln_obj_parse(const char *data, size_t len, size_t max_faces, struct kiln_mesh **out,
		   char *err, size_t errlen)
{
	struct obj o = {.max_faces = max_faces, .err = err, .errlen = errlen};
	char line[LINE_MAX_BYTES];
	size_t pos = 0;
	int rc = 0;

	*out = NULL;
	while (pos < len && !rc) {
		const char *nl = memchr(data + pos, '\n', len - pos);
		size_t l = nl ? (size_t)(nl - (data + pos)) : len - pos;
		o.line++;
		if (l >= sizeof(line)) {
			rc = obj_fail(&o, KILN_E_INVALID_ARGS, "line too long");
			break;
		}
		if (memchr(data + pos, 0, l)) {
			rc = obj_fail(&o, KILN_E_INVALID_ARGS, "NUL byte in text");
			break;
		}
		memcpy(line, data + pos, l);
		line[l] = 0;
		if (l && line[l - 1] == '\r')
			line[l - 1] = 0;
		rc = parse_line(&o, line);
		pos += l + 1;
	}
	if (!rc && o.f.n == 0) {
		snprintf(err, errlen, "OBJ has no faces");
		rc = -KILN_E_INVALID_ARGS;
	}
	if (!rc) {
		struct kiln_mesh *m = calloc(1, sizeof(*m));
		if (!m) {
			snprintf(err, errlen, "out of memory");
			rc = -KILN_E_INTERNAL;
		} else {
			m->vertices = o.v.v;
			m->nvertices = o.v.n / 3;
			m->uvs = o.vt.v;
			m->nuvs = o.vt.n / 2;
			m->normals = o.vn.v;
			m->nnormals = o.vn.n / 3;
			m->faces = o.f.v;
			m->nfaces = o.f.n / 9;
			*out = m;
			return 0;
		}
	}
	free(o.v.v);
	free(o.vt.v);
	free(o.vn.v);
	free(o.f.v);
	return rc;
}
