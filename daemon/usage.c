/*
 * Per-uid usage figures (usage.h): a small array searched linearly; the
 * number of distinct users connected at once is small.
 */
#include "usage.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "action.h"
#include "log.h"

struct entry {
	uid_t uid;
	size_t n[USAGE_KINDS];
};

static struct {
	struct entry *items;
	size_t count, cap;
	size_t total[USAGE_KINDS];
} usage;

static struct entry *find(uid_t uid, bool create)
{
	for (size_t i = 0; i < usage.count; i++)
		if (usage.items[i].uid == uid)
			return &usage.items[i];
	if (!create)
		return NULL;
	if (usage.count == usage.cap) {
		size_t cap = usage.cap ? usage.cap * 2 : 16;
		struct entry *n = realloc(usage.items, cap * sizeof(*n));
		if (!n)
			fatal("out of memory");
		usage.items = n;
		usage.cap = cap;
	}
	usage.items[usage.count] = (struct entry){ .uid = uid };
	return &usage.items[usage.count++];
}

void usage_add(uid_t uid, enum usage_kind kind, long long delta)
{
	struct entry *e = find(uid, delta > 0);
	size_t d;

	if (!e)
		return;
	if (delta >= 0) {
		e->n[kind] += (size_t)delta;
		usage.total[kind] += (size_t)delta;
		return;
	}
	d = (size_t)-delta;
	if (d > e->n[kind])
		d = e->n[kind];
	e->n[kind] -= d;
	usage.total[kind] -= d;
	for (int k = 0; k < USAGE_KINDS; k++)
		if (e->n[k])
			return;
	*e = usage.items[--usage.count];
}

size_t usage_get(uid_t uid, enum usage_kind kind)
{
	struct entry *e = find(uid, false);

	return e ? e->n[kind] : 0;
}

size_t usage_total(enum usage_kind kind)
{
	return usage.total[kind];
}

void usage_stats_per_uid(json_t *per_uid)
{
	for (size_t i = 0; i < usage.count; i++) {
		json_t *o = dispatch_uid_figures(per_uid, (unsigned)usage.items[i].uid);
		json_object_set_new(o, "connections", json_integer((json_int_t)usage.items[i].n[USAGE_CONNS]));
		json_object_set_new(o, "jobs", json_integer((json_int_t)usage.items[i].n[USAGE_JOBS]));
		json_object_set_new(o, "attachment_bytes", json_integer((json_int_t)usage.items[i].n[USAGE_ATTACH]));
		json_object_set_new(o, "pool_workers", json_integer((json_int_t)usage.items[i].n[USAGE_WORKERS]));
	}
}
