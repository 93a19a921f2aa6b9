/*
 * The output queue: bytes waiting to be written to a connection, as a list
 * of chunks.  Text is appended into standard 64 KiB chunks; an attachment
 * becomes a chunk of its own, written from where it is and never copied.
 * Taking the queue hands every chunk to one write; releasing them afterwards
 * keeps one standard chunk for reuse, so a steady stream of replies costs no
 * allocation.  Pure buffer logic, no I/O: unit tested and fuzzed directly.
 *
 * Ownership: the queue owns its chunks until outq_take(); the caller owns
 * the taken list until outq_release().  Out of memory is fatal.  One
 * thread at a time.
 */
#ifndef KILND_OUTQ_H
#define KILND_OUTQ_H

#include <stddef.h>
#include <string.h>

#define OUTQ_CHUNK 65536

struct outq_chunk {
	struct outq_chunk *next;
	char *data;
	size_t len, cap;
	void (*free_fn)(void *); /* attachment chunks: releases `owner` */
	void *owner;
	char inline_data[];      /* text chunks keep their bytes here */
};

struct outq {
	struct outq_chunk *head, *tail; /* queued, not yet taken */
	struct outq_chunk *spare;       /* a released standard chunk kept for reuse */
	size_t queued;                  /* bytes in head..tail */
};

void outq_init(struct outq *q);
/* Frees every queued chunk (releasing attachments) and the spare. */
void outq_clear(struct outq *q);

/* Room for at least n more bytes of text at the end: returns where to write
 * them; outq_commit() then adds what was written.  (Inline: every reply
 * line is a dozen of these.) */
static inline char *outq_reserve(struct outq *q, size_t n);
static inline void outq_commit(struct outq *q, size_t n);
/* Free room at the end without allocating (0 and NULL if none). */
size_t outq_room(const struct outq *q, char **at);
static inline void outq_append(struct outq *q, const void *data, size_t n);

/* Queues `data` as its own chunk; the queue releases it with free_fn(data)
 * once written or cleared. */
void outq_attach(struct outq *q, void *data, size_t len, void (*free_fn)(void *));

/* Takes every queued chunk, in order, for one write (NULL if none); *count
 * and *bytes get the chunk count and their total length. */
struct outq_chunk *outq_take(struct outq *q, unsigned *count, size_t *bytes);
/* Releases a taken list after its write. */
void outq_release(struct outq *q, struct outq_chunk *list);

/* outq_reserve()'s slow path: a new tail chunk of at least n bytes. */
char *outq_grow(struct outq *q, size_t n);

static inline char *outq_reserve(struct outq *q, size_t n)
{
	struct outq_chunk *t = q->tail;

	if (t && !t->free_fn && t->cap - t->len >= n)
		return t->data + t->len;
	return outq_grow(q, n);
}

static inline void outq_commit(struct outq *q, size_t n)
{
	q->tail->len += n;
	q->queued += n;
}

static inline void outq_append(struct outq *q, const void *data, size_t n)
{
	memcpy(outq_reserve(q, n), data, n);
	outq_commit(q, n);
}

#endif
