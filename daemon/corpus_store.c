/*
 * The corpus store: a small name-sorted array of reference-counted corpora
 * behind one mutex (see corpus_store.h).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corpus_store.h"
#include "kiln/error.h"

static struct {
	pthread_mutex_t lock;
	struct corpus **items; /* one reference each */
	size_t count, cap;
	size_t memory;
} store = { .lock = PTHREAD_MUTEX_INITIALIZER };

struct corpus_doc *corpus_doc_new(const char *name)
{
	struct corpus_doc *d = calloc(1, sizeof *d);

	if (!d)
		return NULL;
	d->name = strdup(name);
	if (!d->name) {
		free(d);
		return NULL;
	}
	atomic_init(&d->refs, 1);
	return d;
}

void corpus_doc_release(struct corpus_doc *d)
{
	if (!d || atomic_fetch_sub(&d->refs, 1) != 1)
		return;
	kiln_cdoc_clear(&d->cdoc);
	free(d->name);
	free(d);
}

const unsigned char *corpus_doc_text(const struct corpus_doc *d, size_t *len)
{
	*len = d->cdoc.text_len;
	return d->cdoc.text;
}

struct corpus *corpus_new(const char *name, uid_t owner)
{
	struct corpus *c = calloc(1, sizeof *c);

	if (!c)
		return NULL;
	c->owner = owner;
	c->name = strdup(name);
	if (!c->name) {
		free(c);
		return NULL;
	}
	atomic_init(&c->refs, 1);
	c->locked = true;
	return c;
}

void corpus_ref(struct corpus *c)
{
	atomic_fetch_add(&c->refs, 1);
}

void corpus_unref(struct corpus *c)
{
	if (!c || atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	for (size_t i = 0; i < c->ndocs; i++)
		corpus_doc_release(c->docs[i]);
	free(c->docs);
	json_decref(c->source);
	free(c->name);
	free(c);
}

static int cmp_key(const struct corpus *c, uid_t owner, const char *name)
{
	if (c->owner != owner)
		return c->owner < owner ? -1 : 1;
	return strcmp(c->name, name);
}

/* Index of (owner, name), or of where it would go (*found false).  Lock held. */
static size_t locate(uid_t owner, const char *name, bool *found)
{
	size_t lo = 0, hi = store.count;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int r = cmp_key(store.items[mid], owner, name);
		if (r == 0) {
			*found = true;
			return mid;
		}
		if (r < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

struct corpus *corpus_store_get(uid_t owner, const char *name)
{
	struct corpus *c = NULL;
	bool found;

	pthread_mutex_lock(&store.lock);
	size_t i = locate(owner, name, &found);
	if (found) {
		c = store.items[i];
		corpus_ref(c);
	}
	pthread_mutex_unlock(&store.lock);
	return c;
}

/* Bytes held by owner's corpora.  Lock held. */
static size_t memory_of(uid_t owner)
{
	size_t m = 0;

	for (size_t i = 0; i < store.count; i++)
		if (store.items[i]->owner == owner)
			m += store.items[i]->memory;
	return m;
}

size_t corpus_store_memory_of(uid_t owner)
{
	pthread_mutex_lock(&store.lock);
	size_t m = memory_of(owner);
	pthread_mutex_unlock(&store.lock);
	return m;
}

struct corpus_doc *corpus_store_borrow(uid_t owner, const char *corpus, const char *document, int *code,
				       char *err, size_t errlen)
{
	struct corpus *c = corpus_store_get(owner, corpus);
	struct corpus_doc *d = NULL;

	*code = -KILN_E_NOT_FOUND;
	if (!c) {
		snprintf(err, errlen, "no corpus named '%s'", corpus);
		return NULL;
	}
	for (size_t i = 0; i < c->ndocs; i++) {
		if (strcmp(c->docs[i]->name, document) == 0) {
			d = c->docs[i];
			atomic_fetch_add(&d->refs, 1);
			break;
		}
	}
	if (!d)
		snprintf(err, errlen, "corpus '%s' has no document '%s'", corpus, document);
	else
		*code = 0;
	corpus_unref(c);
	return d;
}

int corpus_store_put(struct corpus *c, size_t budget, size_t per_uid, struct corpus **replaced,
		     const char **limit, char *err, size_t errlen)
{
	bool found;
	int rc = 0;

	*replaced = NULL;
	*limit = NULL;
	pthread_mutex_lock(&store.lock);
	size_t i = locate(c->owner, c->name, &found);
	size_t old = found ? store.items[i]->memory : 0;
	size_t after = store.memory - old + c->memory;
	size_t mine = memory_of(c->owner) - old + c->memory;
	if (mine > per_uid) {
		snprintf(err, errlen,
			 "corpus memory limit for uid %u exceeded: %zu bytes needed, %zu held by its other "
			 "corpora, limit %zu (corpus_memory_per_uid)",
			 (unsigned)c->owner, c->memory, mine - c->memory, per_uid);
		*limit = "corpus_memory_per_uid";
		rc = -KILN_E_TOO_LARGE;
		goto out;
	}
	if (after > budget) {
		snprintf(err, errlen,
			 "corpus memory budget exceeded: %zu bytes needed, %zu held by other corpora, "
			 "budget %zu (corpus_memory_budget)",
			 c->memory, after - c->memory, budget);
		*limit = "corpus_memory_budget";
		rc = -KILN_E_TOO_LARGE;
		goto out;
	}
	if (found) {
		*replaced = store.items[i];
		store.items[i] = c;
	} else {
		if (store.count == store.cap) {
			size_t cap = store.cap ? 2 * store.cap : 8;
			struct corpus **n = realloc(store.items, cap * sizeof *n);
			if (!n) {
				snprintf(err, errlen, "out of memory");
				rc = -KILN_E_INTERNAL;
				goto out;
			}
			store.items = n;
			store.cap = cap;
		}
		memmove(store.items + i + 1, store.items + i, (store.count - i) * sizeof *store.items);
		store.items[i] = c;
		store.count++;
	}
	store.memory = after;
out:
	pthread_mutex_unlock(&store.lock);
	return rc;
}

struct corpus *corpus_store_take(uid_t owner, const char *name)
{
	struct corpus *c = NULL;
	bool found;

	pthread_mutex_lock(&store.lock);
	size_t i = locate(owner, name, &found);
	if (found) {
		c = store.items[i];
		store.memory -= c->memory;
		memmove(store.items + i, store.items + i + 1, (store.count - i - 1) * sizeof *store.items);
		store.count--;
	}
	pthread_mutex_unlock(&store.lock);
	return c;
}

json_t *corpus_summary(const struct corpus *c)
{
	return json_pack("{s:s, s:I, s:I, s:I, s:I, s:b, s:f, s:f, s:O}", "name", c->name, "owner",
			 (json_int_t)c->owner, "documents",
			 (json_int_t)c->ndocs, "bytes", (json_int_t)c->bytes, "memory_bytes",
			 (json_int_t)c->memory, "locked", c->locked, "load_ms", c->load_ms,
			 "loaded_at", c->loaded_at, "source", c->source ? c->source : json_null());
}

json_t *corpus_store_list(const uid_t *owner)
{
	json_t *a = json_array();

	pthread_mutex_lock(&store.lock);
	for (size_t i = 0; i < store.count; i++)
		if (!owner || store.items[i]->owner == *owner)
			json_array_append_new(a, corpus_summary(store.items[i]));
	pthread_mutex_unlock(&store.lock);
	return a;
}

json_t *corpus_store_per_uid(void)
{
	json_t *o = json_object();

	pthread_mutex_lock(&store.lock);
	for (size_t i = 0; i < store.count; i++) {
		char key[16];
		json_t *u;
		snprintf(key, sizeof(key), "%u", (unsigned)store.items[i]->owner);
		if (!(u = json_object_get(o, key))) {
			u = json_pack("{s:I, s:I}", "corpora", (json_int_t)0, "memory_bytes", (json_int_t)0);
			json_object_set_new(o, key, u);
		}
		json_object_set_new(u, "corpora", json_integer(json_integer_value(json_object_get(u, "corpora")) + 1));
		json_object_set_new(u, "memory_bytes",
				    json_integer(json_integer_value(json_object_get(u, "memory_bytes")) +
						 (json_int_t)store.items[i]->memory));
	}
	pthread_mutex_unlock(&store.lock);
	return o;
}

size_t corpus_store_memory(void)
{
	pthread_mutex_lock(&store.lock);
	size_t m = store.memory;
	pthread_mutex_unlock(&store.lock);
	return m;
}

size_t corpus_store_count(void)
{
	pthread_mutex_lock(&store.lock);
	size_t n = store.count;
	pthread_mutex_unlock(&store.lock);
	return n;
}

void corpus_store_clear(void)
{
	pthread_mutex_lock(&store.lock);
	struct corpus **items = store.items;
	size_t n = store.count;
	store.items = NULL;
	store.count = store.cap = 0;
	store.memory = 0;
	pthread_mutex_unlock(&store.lock);
	for (size_t i = 0; i < n; i++)
		corpus_unref(items[i]);
	free(items);
}
