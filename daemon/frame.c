#include "frame.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "log.h"

#define FRAME_MIN_CAP 16384

void frame_init(struct frame *f)
{
	memset(f, 0, sizeof(*f));
}

void frame_free(struct frame *f)
{
	if (f->buf) {
		OPENSSL_cleanse(f->buf, f->len);
		free(f->buf);
	}
	memset(f, 0, sizeof(*f));
}

/* Moves unconsumed bytes to the front, so the buffer never grows for data
 * already handled. */
static void compact(struct frame *f)
{
	if (f->start == 0)
		return;
	memmove(f->buf, f->buf + f->start, f->len - f->start);
	/* Wipe the tail that held consumed bytes: they may be secrets. */
	OPENSSL_cleanse(f->buf + f->len - f->start, f->start);
	f->len -= f->start;
	f->start = 0;
}

/* Everything was consumed: wipe it (requests may carry a passphrase) and
 * start over.  The extent must be wiped before it is forgotten: frame_free
 * wipes only f->len bytes. */
static void wipe_consumed(struct frame *f)
{
	if (f->len)
		OPENSSL_cleanse(f->buf, f->len);
	f->start = f->len = f->scanned = 0;
}

char *frame_reserve(struct frame *f, size_t want, size_t *room)
{
	if (f->start == f->len) {
		wipe_consumed(f);
	} else if (f->cap - f->len < want && f->start > 0) {
		compact(f);
	}
	if (f->cap - f->len < want) {
		size_t cap = f->cap ? f->cap : FRAME_MIN_CAP;
		char *nb;
		while (cap - f->len < want)
			cap *= 2;
		/* realloc would leave a copy of possible secrets behind; copy and wipe instead. */
		nb = malloc(cap);
		if (!nb)
			fatal("out of memory");
		if (f->buf) {
			memcpy(nb, f->buf, f->len);
			OPENSSL_cleanse(f->buf, f->len);
			free(f->buf);
		}
		f->buf = nb;
		f->cap = cap;
	}
	*room = f->cap - f->len;
	return f->buf + f->len;
}

void frame_commit(struct frame *f, size_t n)
{
	f->len += n;
}

void frame_append(struct frame *f, const char *data, size_t n)
{
	size_t room;
	char *p = frame_reserve(f, n, &room);
	memcpy(p, data, n);
	frame_commit(f, n);
}

int frame_next_line(struct frame *f, size_t max, char **line, size_t *len)
{
	char *base = f->buf + f->start;
	size_t avail = f->len - f->start;
	char *nl;
	size_t n;

	if (avail == 0) {
		/* The caller is done with the lines it had: wipe them now rather
		 * than when the next bytes arrive, which may be never. */
		wipe_consumed(f);
		return FRAME_NEED_MORE;
	}
	nl = memchr(base + f->scanned, '\n', avail - f->scanned);
	if (!nl) {
		f->scanned = avail;
		return avail > max ? FRAME_TOO_LONG : FRAME_NEED_MORE;
	}
	n = (size_t)(nl - base);
	if (n > max)
		return FRAME_TOO_LONG;
	f->start += n + 1;
	f->scanned = 0;
	if (n > 0 && base[n - 1] == '\r')
		n--;
	base[n] = '\0';
	*line = base;
	*len = n;
	return FRAME_LINE;
}

size_t frame_pending(const struct frame *f)
{
	return f->len - f->start;
}

size_t frame_take(struct frame *f, void *dst, size_t n)
{
	size_t avail = f->len - f->start;
	if (n > avail)
		n = avail;
	if (dst)
		memcpy(dst, f->buf + f->start, n);
	f->start += n;
	f->scanned = 0;
	return n;
}
