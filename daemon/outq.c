/*
 * The output queue (outq.h).
 */
#include "outq.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "log.h"

void outq_init(struct outq *q)
{
	memset(q, 0, sizeof(*q));
}

/* Replies may carry decrypted text: a chunk's bytes are wiped when it is
 * freed or kept for reuse. */
static void chunk_free(struct outq_chunk *ch)
{
	if (ch->free_fn)
		ch->free_fn(ch->owner);
	else
		OPENSSL_cleanse(ch->data, ch->len);
	free(ch);
}

static void free_list(struct outq_chunk *ch)
{
	while (ch) {
		struct outq_chunk *next = ch->next;
		chunk_free(ch);
		ch = next;
	}
}

void outq_clear(struct outq *q)
{
	free_list(q->head);
	free(q->spare);
	outq_init(q);
}

static void push(struct outq *q, struct outq_chunk *ch)
{
	ch->next = NULL;
	if (q->tail)
		q->tail->next = ch;
	else
		q->head = ch;
	q->tail = ch;
	q->queued += ch->len;
}

char *outq_grow(struct outq *q, size_t n)
{
	size_t cap = n > OUTQ_CHUNK ? n : OUTQ_CHUNK;
	struct outq_chunk *t;

	if (q->spare && cap == OUTQ_CHUNK) {
		/* Reuse the chunk the last write released: no malloc per batch. */
		t = q->spare;
		q->spare = NULL;
	} else {
		t = malloc(sizeof(*t) + cap);
		if (!t)
			fatal("out of memory");
	}
	t->data = t->inline_data;
	t->len = 0;
	t->cap = cap;
	t->free_fn = NULL;
	t->owner = NULL;
	push(q, t);
	return t->data;
}

size_t outq_room(const struct outq *q, char **at)
{
	const struct outq_chunk *t = q->tail;

	if (!t || t->free_fn || t->len == t->cap) {
		*at = NULL;
		return 0;
	}
	*at = t->data + t->len;
	return t->cap - t->len;
}

void outq_attach(struct outq *q, void *data, size_t len, void (*free_fn)(void *))
{
	struct outq_chunk *ch = malloc(sizeof(*ch));

	assert(free_fn);
	if (!ch)
		fatal("out of memory");
	ch->data = data;
	ch->len = ch->cap = len;
	ch->free_fn = free_fn;
	ch->owner = data;
	push(q, ch);
}

struct outq_chunk *outq_take(struct outq *q, unsigned *count, size_t *bytes)
{
	struct outq_chunk *list = q->head;
	unsigned n = 0;

	for (struct outq_chunk *ch = list; ch; ch = ch->next)
		n++;
	*count = n;
	*bytes = q->queued;
	q->head = q->tail = NULL;
	q->queued = 0;
	return list;
}

void outq_release(struct outq *q, struct outq_chunk *list)
{
	while (list) {
		struct outq_chunk *next = list->next;
		/* Keeps one standard chunk for the next batch of replies. */
		if (!q->spare && !list->free_fn && list->cap == OUTQ_CHUNK) {
			OPENSSL_cleanse(list->data, list->len);
			list->len = 0;
			q->spare = list;
		} else
			chunk_free(list);
		list = next;
	}
}
