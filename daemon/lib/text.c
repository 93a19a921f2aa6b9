/*
 * Python-exact word statistics: the per-code-point path, the ignore set,
 * top-k words and the public entry points.  The 64-byte block path for
 * ASCII runs is in text_simd.c.
 */
#include "kiln/text.h"
#include "kiln/utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/error.h"
#include "text_scan.h"

int kiln_text_is_space(uint32_t cp)
{
	if (cp < 0x80)
		return (cp >= 0x09 && cp <= 0x0d) || (cp >= 0x1c && cp <= 0x20);
	switch (cp) {
	case 0x85: case 0xa0: case 0x1680:
	case 0x2028: case 0x2029: case 0x202f: case 0x205f: case 0x3000:
		return 1;
	default:
		return cp >= 0x2000 && cp <= 0x200a;
	}
}

int kiln_text_scan_is_break(uint32_t cp)
{
	switch (cp) {
	case 0x0a: case 0x0b: case 0x0c: case 0x0d:
	case 0x1c: case 0x1d: case 0x1e:
	case 0x85: case 0x2028: case 0x2029:
		return 1;
	default:
		return 0;
	}
}

/* FNV-1a: the ignore set is small and only probed with candidate words. */
static uint64_t hash_bytes(const unsigned char *w, size_t len)
{
	uint64_t h = 14695981039346656037ull;

	for (size_t i = 0; i < len; i++)
		h = (h ^ w[i]) * 1099511628211ull;
	return h;
}

int kiln_text_scan_ignored(const struct text_scan *st, const unsigned char *w, size_t len)
{
	size_t mask, i;

	if (!st->ign_slots || !(st->ign_lens >> (len < 64 ? len : 0) & 1))
		return 0;
	mask = st->ign_slots - 1;
	for (i = hash_bytes(w, len) & mask; st->ign[i].w; i = (i + 1) & mask)
		if (st->ign[i].len == len && !memcmp(st->ign[i].w, w, len))
			return 1;
	return 0;
}

void kiln_text_scan_word_end(struct text_scan *st, size_t end)
{
	int is_long = st->wcp > st->min_length;

	st->in_word = 0;
	st->words++;
	st->long_words += is_long;
	if (kiln_text_scan_ignored(st, st->s + st->wstart, end - st->wstart)) {
		st->ignored++;
		st->ignored_long += is_long;
	}
}

size_t kiln_text_scan_scalar(struct text_scan *st, size_t pos, size_t stop)
{
	const unsigned char *s = st->s;
	size_t len = st->len, n;
	uint32_t cp;

	if (stop > len)
		stop = len;
	while (pos < stop) {
		n = kiln_utf8_decode(s + pos, len - pos, &cp);
		if (!n) {
			st->bad = 1;
			st->bad_offset = pos;
			return len;
		}
		st->code_points++;
		if (kiln_text_is_space(cp)) {
			if (st->in_word)
				kiln_text_scan_word_end(st, pos);
		} else if (st->in_word) {
			st->wcp++;
		} else {
			st->in_word = 1;
			st->wstart = pos;
			st->wcp = 1;
		}
		if (st->want_lines) {
			int brk = kiln_text_scan_is_break(cp);

			/* \r\n is one boundary: the \n after a \r adds none. */
			st->breaks += brk && !(cp == 0x0a && st->prev_cr);
			st->prev_cr = cp == 0x0d;
			st->last_break = brk;
		}
		pos += n;
	}
	return pos;
}

/* Adds a distinct word to the hash table (sized by ignore_setup). */
static void ignore_add(struct text_scan *st, const unsigned char *w, size_t len)
{
	size_t mask = st->ign_slots - 1, i;

	for (i = hash_bytes(w, len) & mask; st->ign[i].w; i = (i + 1) & mask)
		if (st->ign[i].len == len && !memcmp(st->ign[i].w, w, len))
			return;
	st->ign[i].w = w;
	st->ign[i].len = len;
	st->ign_count++;
	st->ign_lens |= 1ull << (len < 64 ? len : 0);
}

/*
 * Whether w can equal a word of some valid text: valid UTF-8 without
 * whitespace.  *cps gets its length in code points.
 */
static int can_be_word(const unsigned char *w, size_t len, uint64_t *cps)
{
	size_t i = 0, n;
	uint32_t cp;

	*cps = 0;
	while (i < len) {
		n = kiln_utf8_decode(w + i, len - i, &cp);
		if (!n || kiln_text_is_space(cp))
			return 0;
		i += n;
		++*cps;
	}
	return len > 0;
}

/* Adds w to the block path's mask plan if it fits there. */
static void mask_add(struct text_scan *st, const unsigned char *w, size_t len)
{
	uint64_t cps, val = 0;

	if (!st->mask_ok || !can_be_word(w, len, &cps))
		return; /* never matches: leave it out of the plan */
	if (len > 63 || st->nmask == TEXT_MASK_WORDS) {
		st->mask_ok = 0;
		st->short_ok = 0;
		return;
	}
	if (len > 8)
		st->short_ok = 0;
	memcpy(&val, w, len < 8 ? len : 8);
	memcpy(st->mask[st->nmask].bytes, w, len);
	st->mask[st->nmask].len = len;
	st->mask[st->nmask].is_long = cps > st->min_length;
	st->mask[st->nmask].val = val;
	st->nmask++;
}

/*
 * Builds the ignore set (words borrowed from opts, which must outlive the
 * scan).  Duplicates are dropped, as `w in ignore` does not care.
 */
static int ignore_setup(struct text_scan *st, const struct kiln_text_opts *o)
{
	size_t slots = 4, i;

	st->mask_ok = 1;
	st->short_ok = 1;
	if (!o->ignore_count)
		return 0;
	while (slots < o->ignore_count * 2)
		slots *= 2;
	st->ign = calloc(slots, sizeof(*st->ign));
	if (!st->ign)
		return -KILN_E_INTERNAL;
	st->ign_slots = slots;
	for (i = 0; i < o->ignore_count; i++) {
		const unsigned char *w = (const unsigned char *)o->ignore[i];
		size_t len = o->ignore_len ? o->ignore_len[i] : strlen(o->ignore[i]);
		size_t before = st->ign_count;

		if (!w)
			continue;
		ignore_add(st, w, len);
		if (st->ign_count > before)
			mask_add(st, w, len);
	}
	return 0;
}

void kiln_text_opts_default(struct kiln_text_opts *o)
{
	static const char *const ignore[] = { "the", "a" };

	memset(o, 0, sizeof(*o));
	o->min_length = 8;
	o->ignore = ignore;
	o->ignore_count = 2;
}

int kiln_text_path_supported(int path)
{
	switch (path) {
	case KILN_TEXT_PORTABLE:
		return 1;
#if defined(__x86_64__) && defined(__GNUC__)
	case KILN_TEXT_AVX2:
		__builtin_cpu_init();
		return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt") &&
		       __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2");
	case KILN_TEXT_AVX512:
		return kiln_text_path_supported(KILN_TEXT_AVX2) && __builtin_cpu_supports("avx512f") &&
		       __builtin_cpu_supports("avx512bw");
#endif
	default:
		return 0;
	}
}

/* The path opts->portable asks for (0: the fastest the CPU has), or -1. */
static int pick_path(int want)
{
	if (want)
		return kiln_text_path_supported(want) ? want : -1;
	if (kiln_text_path_supported(KILN_TEXT_AVX512))
		return KILN_TEXT_AVX512;
	if (kiln_text_path_supported(KILN_TEXT_AVX2))
		return KILN_TEXT_AVX2;
	return KILN_TEXT_PORTABLE;
}

/* The whole scan on the per-code-point path, polling for cancellation. */
static int scan_scalar_all(struct text_scan *st, const kiln_cancel *cancel)
{
	size_t pos = 0;

	while (pos < st->len && !st->bad) {
		if (kiln_cancelled(cancel))
			return -KILN_E_CANCELLED;
		pos = kiln_text_scan_scalar(st, pos, pos + POLL_BYTES);
	}
	return 0;
}

int kiln_text_count(const unsigned char *s, size_t len, const struct kiln_text_opts *opts,
		    const kiln_cancel *cancel, struct kiln_text_counts *out,
		    size_t *bad_offset, char *err, size_t errlen)
{
	struct text_scan st;
	int rc;

	memset(out, 0, sizeof(*out));
	memset(&st, 0, sizeof(st));
	st.s = s;
	st.len = len;
	st.min_length = opts->min_length;
	st.want_lines = opts->lines;
	rc = ignore_setup(&st, opts);
	if (rc) {
		snprintf(err, errlen, "text: out of memory");
		goto out;
	}
	switch (pick_path(opts->portable)) {
	case KILN_TEXT_AVX512:
		rc = kiln_text_scan_avx512(&st, cancel);
		break;
	case KILN_TEXT_AVX2:
		rc = kiln_text_scan_avx2(&st, cancel);
		break;
	case KILN_TEXT_PORTABLE:
		rc = scan_scalar_all(&st, cancel);
		break;
	default:
		snprintf(err, errlen, "text: this CPU lacks the scan path asked for");
		rc = -KILN_E_INVALID_ARGS;
		goto out;
	}
	if (rc) {
		snprintf(err, errlen, "text: cancelled");
		goto out;
	}
	if (st.bad) {
		if (bad_offset)
			*bad_offset = st.bad_offset;
		snprintf(err, errlen, "text: invalid UTF-8 at byte offset %zu", st.bad_offset);
		rc = -KILN_E_INVALID_ARGS;
		goto out;
	}
	if (st.in_word)
		kiln_text_scan_word_end(&st, len);
	out->bytes = len;
	out->code_points = st.code_points;
	out->words = st.words;
	out->kept_words = st.words - st.ignored;
	out->long_words = st.long_words - st.ignored_long;
	/* splitlines() yields a last line without a break after it. */
	if (opts->lines)
		out->lines = st.breaks + (len > 0 && !st.last_break);
out:
	free(st.ign);
	return rc;
}

int kiln_text_short_long(const unsigned char *s, size_t len, uint64_t min_length,
			 const char *const *ignore, size_t ignore_count, double *fraction)
{
	struct kiln_text_opts o = {
		.min_length = min_length,
		.ignore = ignore,
		.ignore_count = ignore_count,
	};
	struct kiln_text_counts c;
	size_t bad = 0;
	char err[128];
	int rc;

	*fraction = 0;
	rc = kiln_text_count(s, len, &o, NULL, &c, &bad, err, sizeof(err));
	if (rc) {
		if (rc == -KILN_E_INVALID_ARGS)
			*fraction = (double)bad;
		return rc;
	}
	if (!c.kept_words)
		return 1;
	*fraction = (double)c.long_words / (double)c.kept_words;
	return 0;
}

/* --- Top-k words ---------------------------------------------------------- */

struct top_entry {
	const unsigned char *w; /* NULL: free slot */
	size_t len;
	uint64_t count;
	uint64_t first;         /* index of the first occurrence */
};

struct top_map {
	struct top_entry *e;
	size_t slots, used;
};

static int top_grow(struct top_map *m)
{
	size_t slots = m->slots ? m->slots * 2 : 1024, i, j;
	struct top_entry *e = calloc(slots, sizeof(*e));

	if (!e)
		return -KILN_E_INTERNAL;
	for (i = 0; i < m->slots; i++) {
		if (!m->e[i].w)
			continue;
		for (j = hash_bytes(m->e[i].w, m->e[i].len) & (slots - 1); e[j].w; j = (j + 1) & (slots - 1))
			;
		e[j] = m->e[i];
	}
	free(m->e);
	m->e = e;
	m->slots = slots;
	return 0;
}

static int top_add(struct top_map *m, const unsigned char *w, size_t len, uint64_t index)
{
	size_t i;

	if ((m->used + 1) * 2 > m->slots && top_grow(m))
		return -KILN_E_INTERNAL;
	for (i = hash_bytes(w, len) & (m->slots - 1); m->e[i].w; i = (i + 1) & (m->slots - 1)) {
		if (m->e[i].len == len && !memcmp(m->e[i].w, w, len)) {
			m->e[i].count++;
			return 0;
		}
	}
	m->e[i] = (struct top_entry){ .w = w, .len = len, .count = 1, .first = index };
	m->used++;
	return 0;
}

static int top_cmp(const void *pa, const void *pb)
{
	const struct top_entry *a = pa, *b = pb;

	if (a->count != b->count)
		return a->count > b->count ? -1 : 1;
	return a->first < b->first ? -1 : a->first > b->first;
}

int kiln_text_top(const unsigned char *s, size_t len, size_t k, const kiln_cancel *cancel,
		  struct kiln_text_word **out, size_t *n, char *err, size_t errlen)
{
	struct top_map m = { 0 };
	size_t pos = 0, start = 0, step, i, j;
	uint64_t index = 0;
	int in_word = 0, rc = 0;
	uint32_t cp;

	*out = NULL;
	*n = 0;
	while (pos < len) {
		if ((pos & (POLL_BYTES - 1)) == 0 && kiln_cancelled(cancel)) {
			rc = -KILN_E_CANCELLED;
			snprintf(err, errlen, "text: cancelled");
			goto out;
		}
		step = kiln_utf8_decode(s + pos, len - pos, &cp);
		if (!step) {
			/* The caller validated the text; still never loop forever. */
			step = 1;
			cp = 0xfffd;
		}
		if (kiln_text_is_space(cp)) {
			if (in_word && (rc = top_add(&m, s + start, pos - start, index++)))
				goto oom;
			in_word = 0;
		} else if (!in_word) {
			in_word = 1;
			start = pos;
		}
		pos += step;
	}
	if (in_word && (rc = top_add(&m, s + start, pos - start, index++)))
		goto oom;
	for (i = j = 0; i < m.slots; i++)
		if (m.e[i].w)
			m.e[j++] = m.e[i];
	if (j)
		qsort(m.e, j, sizeof(*m.e), top_cmp);
	if (k > j)
		k = j;
	if (k) {
		*out = malloc(k * sizeof(**out));
		if (!*out)
			goto oom;
	}
	for (i = 0; i < k; i++)
		(*out)[i] = (struct kiln_text_word){ .word = m.e[i].w, .len = m.e[i].len, .count = m.e[i].count };
	*n = k;
	goto out;
oom:
	rc = -KILN_E_INTERNAL;
	snprintf(err, errlen, "text: out of memory");
out:
	free(m.e);
	return rc;
}
