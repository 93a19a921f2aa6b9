/*
 * Newline framing of the input stream: a growable buffer that yields whole
 * lines and raw attachment bytes.  Pure buffer logic, no I/O, so it is unit
 * tested directly.
 */
#ifndef KILND_FRAME_H
#define KILND_FRAME_H

#include <stddef.h>

struct frame {
	char *buf;
	size_t start; /* first unconsumed byte */
	size_t len;   /* end of valid data */
	size_t cap;
	size_t scanned; /* bytes after start already known to hold no '\n' */
};

enum frame_status { FRAME_NEED_MORE = 0, FRAME_LINE = 1, FRAME_TOO_LONG = -1 };

void frame_init(struct frame *f);
/* Wipes and frees the buffer (requests may carry secrets). */
void frame_free(struct frame *f);

/* Space for at least `want` more bytes: returns the write pointer and its
 * room; call frame_commit() with what was written. */
char *frame_reserve(struct frame *f, size_t want, size_t *room);
void frame_commit(struct frame *f, size_t n);
/* Appends bytes (copying). */
void frame_append(struct frame *f, const char *data, size_t n);

/* The next complete line, without its '\n' (and a '\r' before it), NUL
 * terminated in place.  FRAME_TOO_LONG when more than `max` bytes arrived
 * without a newline.  A line is valid until the next call: once everything
 * is consumed, that call wipes the buffer (requests may carry secrets). */
int frame_next_line(struct frame *f, size_t max, char **line, size_t *len);

/* Bytes buffered and not yet consumed. */
size_t frame_pending(const struct frame *f);
/* Consumes up to n buffered bytes into dst (NULL: discard); returns how many. */
size_t frame_take(struct frame *f, void *dst, size_t n);

#endif
