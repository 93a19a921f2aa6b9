/*
 * The output queue (outq.c) against a model: a flat byte string of what
 * must come out.  Each operation appends text (through outq_append, or
 * outq_reserve + outq_commit of part of the room, or outq_room), attaches
 * an owned buffer, or takes everything queued for a "write" and releases
 * it; the bytes taken, in order, must equal the model, every attachment
 * must be freed exactly once, and at most one standard chunk is kept.
 *
 * Input: a sequence of operations, each one opcode byte and two size bytes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outq.h"

static unsigned live_attachments;

static void attach_free(void *p)
{
	live_attachments--;
	free(p);
}

struct model {
	unsigned char *buf;
	size_t len, cap, out; /* written so far; taken by "writes" */
};

static void model_add(struct model *m, const void *p, size_t n)
{
	if (n == 0)
		return;
	if (m->len + n > m->cap) {
		m->cap = (m->len + n) * 2;
		m->buf = realloc(m->buf, m->cap);
		if (!m->buf)
			abort();
	}
	memcpy(m->buf + m->len, p, n);
	m->len += n;
}

static void take_and_check(struct outq *q, struct model *m)
{
	unsigned count, n = 0;
	size_t bytes, sum = 0;
	struct outq_chunk *list = outq_take(q, &count, &bytes);

	for (struct outq_chunk *ch = list; ch; ch = ch->next) {
		if (m->out + sum + ch->len > m->len ||
		    (ch->len && memcmp(m->buf + m->out + sum, ch->data, ch->len) != 0))
			abort();
		sum += ch->len;
		n++;
	}
	if (n != count || sum != bytes || q->queued != 0 || q->head || q->tail)
		abort();
	m->out += sum;
	if (m->out != m->len)
		abort();
	outq_release(q, list);
	if (q->spare && (q->spare->free_fn || q->spare->cap != OUTQ_CHUNK))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct outq q;
	struct model m = { 0 };
	unsigned char text[70000];

	for (size_t i = 0; i < sizeof(text); i++)
		text[i] = (unsigned char)(i * 131 + 7);
	outq_init(&q);
	for (size_t i = 0; i + 3 <= size; i += 3) {
		size_t n = (size_t)data[i + 1] << 8 | data[i + 2];
		char *at;
		switch (data[i] % 5) {
		case 0:
			outq_append(&q, text, n);
			model_add(&m, text, n);
			break;
		case 1: {
			/* Reserve n, write only part of it. */
			size_t used = n ? (data[i + 2] % (n + 1)) : 0;
			char *p = outq_reserve(&q, n);
			memcpy(p, text + 1, used);
			outq_commit(&q, used);
			model_add(&m, text + 1, used);
			break;
		}
		case 2: {
			size_t room = outq_room(&q, &at);
			size_t used = room < n ? room : n;
			if (used) {
				memcpy(at, text + 2, used);
				outq_commit(&q, used);
				model_add(&m, text + 2, used);
			}
			break;
		}
		case 3: {
			unsigned char *a = malloc(n + 1);
			if (!a)
				abort();
			memcpy(a, text + 3, n);
			live_attachments++;
			outq_attach(&q, a, n, attach_free);
			model_add(&m, text + 3, n);
			break;
		}
		default:
			take_and_check(&q, &m);
			break;
		}
		{
			size_t sum = 0;
			for (struct outq_chunk *ch = q.head; ch; ch = ch->next)
				sum += ch->len;
			if (sum != q.queued || sum != m.len - m.out)
				abort();
		}
	}
	take_and_check(&q, &m);
	outq_clear(&q);
	if (live_attachments != 0)
		abort();
	free(m.buf);
	return 0;
}
