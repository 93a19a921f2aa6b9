/*
 * Whole-word counting and literal search over corpus documents, with the
 * semantics of Python's re.findall (see kiln/corpus.h).
 *
 * Candidates are found with a two-byte filter (first and last byte of the
 * needle compared 16 positions at a time), then verified with memcmp and,
 * for whole words, the \b conditions.  Case-insensitive queries run the same
 * scan over the document's fold with the needle folded the same way; as
 * every text character has exactly one fold character, lines and columns
 * are the same in both.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_AVX2_PATH 1
#endif

#include "kiln/corpus.h"
#include "kiln/error.h"
#include "kiln/utf8.h"

struct kiln_cquery {
	unsigned flags;
	bool ascii_word;  /* a whole-word needle of ASCII \w bytes only */
	size_t len;
	uint8_t needle[]; /* NUL-terminated */
};

static const uint8_t ascii_word[128] = {
	['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
	['8'] = 1, ['9'] = 1, ['_'] = 1,
	['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1,
	['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1,
	['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
	['Y'] = 1, ['Z'] = 1,
	['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1,
	['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1,
	['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
	['y'] = 1, ['z'] = 1,
};

int kiln_cquery_new(const char *lit, size_t len, unsigned flags, struct kiln_cquery **out,
		    char *err, size_t errlen)
{
	const uint8_t *s = (const uint8_t *)lit;
	struct kiln_cquery *q;

	*out = NULL;
	if (len == 0) {
		snprintf(err, errlen, "empty search string");
		return -KILN_E_INVALID_ARGS;
	}
	if (kiln_utf8_valid_prefix(s, len) != len || memchr(s, 0, len)) {
		snprintf(err, errlen, "search string is not valid UTF-8 text");
		return -KILN_E_INVALID_ARGS;
	}
	/* A fold character takes at most 4 bytes, and at least 1 byte per
	 * input byte is consumed, so 4 * len bounds the folded needle. */
	q = malloc(sizeof *q + 4 * len + 1);
	if (!q) {
		snprintf(err, errlen, "out of memory");
		return -KILN_E_INTERNAL;
	}
	q->flags = flags;
	if (!(flags & KILN_CQ_ICASE)) {
		memcpy(q->needle, s, len);
		q->len = len;
	} else {
		size_t o = 0;
		for (size_t i = 0; i < len; i += kiln_utf8_seq_len(s[i]))
			o += kiln_utf8_encode(kiln_uword_key(kiln_utf8_decode_valid(s + i)), q->needle + o);
		q->len = o;
	}
	q->needle[q->len] = 0;
	q->ascii_word = (flags & KILN_CQ_WORD) != 0;
	for (size_t i = 0; i < q->len; i++)
		q->ascii_word &= q->needle[i] < 0x80 && ascii_word[q->needle[i]];
	*out = q;
	return 0;
}

/* The needle is a client's search string: wiped before it is freed. */
void kiln_cquery_free(struct kiln_cquery *q)
{
	if (!q)
		return;
	OPENSSL_cleanse(q->needle, q->len);
	free(q);
}

/*
 * Offset of the first occurrence of n[0..nl) in h[from..hl), or SIZE_MAX.
 * Valid UTF-8 needles only match at character boundaries of valid UTF-8
 * haystacks, so no alignment check is needed.
 */
static size_t find(const uint8_t *h, size_t hl, const uint8_t *n, size_t nl, size_t from)
{
	if (nl > hl || from > hl - nl)
		return SIZE_MAX;
	if (nl == 1) {
		const uint8_t *p = memchr(h + from, n[0], hl - from);
		return p ? (size_t)(p - h) : SIZE_MAX;
	}
	size_t last = hl - nl; /* last possible start */
	size_t i = from;
#ifdef __SSE2__
	const __m128i vf = _mm_set1_epi8((char)n[0]);
	const __m128i vl = _mm_set1_epi8((char)n[nl - 1]);
	while (i + 16 <= last + 1) {
		__m128i a = _mm_loadu_si128((const __m128i *)(h + i));
		__m128i b = _mm_loadu_si128((const __m128i *)(h + i + nl - 1));
		unsigned m = (unsigned)_mm_movemask_epi8(
			_mm_and_si128(_mm_cmpeq_epi8(a, vf), _mm_cmpeq_epi8(b, vl)));
		while (m) {
			unsigned j = (unsigned)__builtin_ctz(m);
			if (memcmp(h + i + j + 1, n + 1, nl - 2) == 0)
				return i + j;
			m &= m - 1;
		}
		i += 16;
	}
#endif
	for (; i <= last; i++)
		if (h[i] == n[0] && h[i + nl - 1] == n[nl - 1] && memcmp(h + i + 1, n + 1, nl - 2) == 0)
			return i;
	return SIZE_MAX;
}


static int cmp_size(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	return (x > y) - (x < y);
}

/* Word class of the character starting at h[off]; in the fold, U+0345's key
 * U+03B9 is a word character but the original is not. */
static bool word_at(const struct kiln_cdoc *d, const uint8_t *h, size_t off)
{
	if (h[off] < 0x80)
		return ascii_word[h[off]];
	uint32_t c = kiln_utf8_decode_valid(h + off);
	if (c == 0x3b9 && h == d->fold && d->nonword_count &&
	    bsearch(&off, d->nonword_at, d->nonword_count, sizeof(size_t), cmp_size))
		return false;
	return kiln_uword_isword(c);
}

/* Python's \b at byte offset off of h[0..hl). */
static bool boundary(const struct kiln_cdoc *d, const uint8_t *h, size_t hl, size_t off)
{
	bool before = false, after = false;

	if (off > 0) {
		size_t j = off - 1;
		while (j > 0 && (h[j] & 0xc0) == 0x80)
			j--;
		before = word_at(d, h, j);
	}
	if (off < hl)
		after = word_at(d, h, off);
	return before != after;
}

static const uint8_t *haystack(const struct kiln_cdoc *d, const struct kiln_cquery *q, size_t *hl)
{
	if (q->flags & KILN_CQ_ICASE) {
		*hl = d->fold_len;
		return d->fold;
	}
	*hl = d->text_len;
	return d->text;
}

/* Next match at or after `from` (SIZE_MAX if none), checking \b when asked. */
static size_t next_match(const struct kiln_cdoc *d, const struct kiln_cquery *q, const uint8_t *h,
			 size_t hl, size_t from)
{
	for (;;) {
		size_t s = find(h, hl, q->needle, q->len, from);
		if (s == SIZE_MAX || !(q->flags & KILN_CQ_WORD))
			return s;
		if (boundary(d, h, hl, s) && boundary(d, h, hl, s + q->len))
			return s;
		from = s + 1;
	}
}

/* A whole match of an ascii_word needle starting at s. */
static bool match_at(const struct kiln_cdoc *d, const struct kiln_cquery *q, const uint8_t *h,
		     size_t hl, size_t s)
{
	return memcmp(h + s, q->needle, q->len) == 0 && boundary(d, h, hl, s) &&
	       boundary(d, h, hl, s + q->len);
}

#ifdef __SSE2__
static inline __m128i in_range(__m128i v, char lo, char hi)
{
	return _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8((char)(lo - 1))),
			     _mm_cmplt_epi8(v, _mm_set1_epi8((char)(hi + 1))));
}

/* Bit per byte of v that is an ASCII word character. */
static inline unsigned word_bits(__m128i v)
{
	__m128i w = _mm_or_si128(_mm_or_si128(in_range(v, '0', '9'), in_range(v, 'a', 'z')),
				 _mm_or_si128(in_range(v, 'A', 'Z'),
					      _mm_cmpeq_epi8(v, _mm_set1_epi8('_'))));
	return (unsigned)_mm_movemask_epi8(w);
}
#endif

#ifdef HAVE_AVX2_PATH
__attribute__((target("avx2,popcnt"))) static inline __m256i in_range32(__m256i v, char lo, char hi)
{
	return _mm256_and_si256(_mm256_cmpgt_epi8(v, _mm256_set1_epi8((char)(lo - 1))),
				_mm256_cmpgt_epi8(_mm256_set1_epi8((char)(hi + 1)), v));
}

__attribute__((target("avx2,popcnt"))) static inline unsigned word_bits32(__m256i v)
{
	__m256i w = _mm256_or_si256(_mm256_or_si256(in_range32(v, '0', '9'), in_range32(v, 'a', 'z')),
				    _mm256_or_si256(in_range32(v, 'A', 'Z'),
						    _mm256_cmpeq_epi8(v, _mm256_set1_epi8('_'))));
	return (unsigned)_mm256_movemask_epi8(w);
}

/* The vector loop of count_ascii_word() 32 positions at a time, for CPUs
 * with AVX2.  Counts matches starting in [*pos, ...) and advances *pos to
 * the first position it did not cover. */
__attribute__((target("avx2,popcnt"))) static uint64_t count_ascii_word_avx2(
	const struct kiln_cdoc *d, const struct kiln_cquery *q, const uint8_t *h, size_t hl, size_t *pos)
{
	size_t nl = q->len, i = *pos, full = nl < 8 ? nl : 8;
	uint64_t n = 0;
	const __m256i vf = _mm256_set1_epi8((char)q->needle[0]);
	const __m256i vl = _mm256_set1_epi8((char)q->needle[nl - 1]);

	for (; i + nl + 31 <= hl; i += 32) {
		__m256i eq = _mm256_and_si256(
			_mm256_cmpeq_epi8(_mm256_loadu_si256((const __m256i *)(h + i)), vf),
			_mm256_cmpeq_epi8(_mm256_loadu_si256((const __m256i *)(h + i + nl - 1)), vl));
		if (_mm256_testz_si256(eq, eq))
			continue;
		for (size_t k = 1; k + 1 < full || (k < full && full < nl); k++)
			eq = _mm256_and_si256(
				eq, _mm256_cmpeq_epi8(_mm256_loadu_si256((const __m256i *)(h + i + k)),
						      _mm256_set1_epi8((char)q->needle[k])));
		unsigned m = (unsigned)_mm256_movemask_epi8(eq);
		if (!m)
			continue;
		__m256i prev = _mm256_loadu_si256((const __m256i *)(h + i - 1));
		__m256i next = _mm256_loadu_si256((const __m256i *)(h + i + nl));
		unsigned high = (unsigned)(_mm256_movemask_epi8(prev) | _mm256_movemask_epi8(next));
		unsigned fast = m & ~high & ~word_bits32(prev) & ~word_bits32(next);
		unsigned slow = m & high;
		if (nl == full) {
			n += (uint64_t)__builtin_popcount(fast);
		} else {
			for (; fast; fast &= fast - 1) {
				size_t s = i + (size_t)__builtin_ctz(fast);
				n += memcmp(h + s + full, q->needle + full, nl - full) == 0;
			}
		}
		for (; slow; slow &= slow - 1)
			n += match_at(d, q, h, hl, i + (size_t)__builtin_ctz(slow));
	}
	*pos = i;
	return n;
}
#endif

/*
 * Counting for needles of ASCII word characters (the usual query): a match
 * is then a maximal \w run equal to the needle, so matches cannot overlap
 * and every start position can be tested on its own, 16 at a time: needle
 * bytes compared in place, and the bytes before and after classified.
 * Positions next to a non-ASCII byte take the exact scalar check.  The
 * haystack is NUL-terminated, so reading h[hl] is allowed.
 */
static uint64_t count_ascii_word(const struct kiln_cdoc *d, const struct kiln_cquery *q,
				 const uint8_t *h, size_t hl)
{
	size_t nl = q->len, i = 1;
	uint64_t n = 0;

	if (nl > hl)
		return 0;
	n += match_at(d, q, h, hl, 0);
#ifdef HAVE_AVX2_PATH
	if (__builtin_cpu_supports("avx2"))
		n += count_ascii_word_avx2(d, q, h, hl, &i);
#endif
#ifdef __SSE2__
	size_t full = nl < 8 ? nl : 8; /* bytes compared in vectors; the rest by memcmp */
	const __m128i vf = _mm_set1_epi8((char)q->needle[0]);
	const __m128i vl = _mm_set1_epi8((char)q->needle[nl - 1]);
	for (; i + nl + 15 <= hl; i += 16) {
		/* First and last byte filter, as find() does; most blocks of a
		 * rare word stop here. */
		__m128i eq = _mm_and_si128(
			_mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(h + i)), vf),
			_mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(h + i + nl - 1)), vl));
		if (!_mm_movemask_epi8(eq))
			continue;
		for (size_t k = 1; k + 1 < full || (k < full && full < nl); k++)
			eq = _mm_and_si128(eq, _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(h + i + k)),
							      _mm_set1_epi8((char)q->needle[k])));
		unsigned m = (unsigned)_mm_movemask_epi8(eq);
		if (!m)
			continue;
		__m128i prev = _mm_loadu_si128((const __m128i *)(h + i - 1));
		__m128i next = _mm_loadu_si128((const __m128i *)(h + i + nl));
		unsigned high = (unsigned)(_mm_movemask_epi8(prev) | _mm_movemask_epi8(next));
		unsigned fast = m & ~high & ~word_bits(prev) & ~word_bits(next);
		unsigned slow = m & high;
		if (nl == full) {
			n += (uint64_t)__builtin_popcount(fast);
		} else {
			for (; fast; fast &= fast - 1) {
				size_t s = i + (size_t)__builtin_ctz(fast);
				n += memcmp(h + s + full, q->needle + full, nl - full) == 0;
			}
		}
		for (; slow; slow &= slow - 1)
			n += match_at(d, q, h, hl, i + (size_t)__builtin_ctz(slow));
	}
#endif
	for (; i + nl <= hl; i++)
		n += match_at(d, q, h, hl, i);
	return n;
}

uint64_t kiln_cdoc_count(const struct kiln_cdoc *d, const struct kiln_cquery *q)
{
	size_t hl, pos = 0, s;
	const uint8_t *h = haystack(d, q, &hl);
	uint64_t n = 0;

	if (!h)
		return 0;
	if (q->ascii_word)
		return count_ascii_word(d, q, h, hl);
	while ((s = next_match(d, q, h, hl, pos)) != SIZE_MAX) {
		n++;
		pos = s + q->len;
	}
	return n;
}

/* Counts '\n' in s[a..b) and returns the offset after the last one, or
 * `start` (the current line's start) when there is none. */
static size_t skip_lines(const uint8_t *s, size_t a, size_t b, uint64_t *lines, size_t start)
{
	const uint8_t *p = s + a, *e = s + b;

	while ((p = memchr(p, '\n', (size_t)(e - p))) != NULL) {
		(*lines)++;
		p++;
		start = (size_t)(p - s);
	}
	return start;
}

static uint64_t count_chars(const uint8_t *s, size_t n)
{
	uint64_t c = 0;

	for (size_t i = 0; i < n; i++)
		c += (s[i] & 0xc0) != 0x80;
	return c;
}

int64_t kiln_cdoc_search(const struct kiln_cdoc *d, const struct kiln_cquery *q, struct kiln_chit *hits,
			 size_t max, const kiln_cancel *cancel)
{
	size_t hl, pos = 0, s;
	const uint8_t *h = haystack(d, q, &hl);
	size_t hline = 0;     /* start of the current line in h */
	size_t tline = 0;     /* the same line's start in d->text */
	size_t scanned = 0;   /* h offset up to which newlines are counted */
	uint64_t line = 1, tlines = 1;
	int64_t found = 0;

	if (!h)
		return 0;
	while ((s = next_match(d, q, h, hl, pos)) != SIZE_MAX) {
		if (kiln_cancelled(cancel))
			return -KILN_E_CANCELLED;
		hline = skip_lines(h, scanned, s, &line, hline);
		scanned = s;
		if ((size_t)found < max) {
			/* Walk the text to the same line: the fold keeps every '\n'. */
			while (tlines < line) {
				const uint8_t *nl = memchr(d->text + tline, '\n', d->text_len - tline);
				tline = (size_t)(nl - d->text) + 1;
				tlines++;
			}
			const uint8_t *end = memchr(d->text + tline, '\n', d->text_len - tline);
			struct kiln_chit *hit = &hits[found];
			hit->line = line;
			hit->column = count_chars(h + hline, s - hline) + 1;
			hit->line_off = tline;
			hit->line_len = end ? (size_t)(end - d->text) - tline : d->text_len - tline;
		}
		found++;
		if ((size_t)found > max)
			break;
		pos = s + q->len;
	}
	return found;
}
