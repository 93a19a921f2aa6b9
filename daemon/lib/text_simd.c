/*
 * The 64-byte block path of the text scanner (AVX2, chosen at run time).
 *
 * A block of 64 ASCII bytes becomes bit masks (bit i = byte i): ws marks
 * str.split() whitespace, n = ~ws the word bytes.  The word carried in from
 * the previous block ends at the first whitespace and the word running off
 * the end is carried out; both go through the scalar word_end.  Words lying
 * wholly inside the block are counted with mask arithmetic:
 *
 *	starts  = n & ~(n << 1)          first byte of each word
 *	R_k     = bytes ending a run of >= k word bytes (by doubling)
 *	long    = popcount(R & ~(R << 1)) with R = R_{min_length+1}
 *
 * and ignore words are matched by and-ing shifted per-character masks.
 * In a block holding bytes >= 0x80, the ASCII bytes before the first of them
 * are counted the same way (as a shorter block), and the run of non-ASCII
 * bytes goes through the per-code-point path, which may stop a few bytes
 * past it; the next block starts wherever it did.
 */
#include "text_scan.h"

#include "kiln/error.h"

#if defined(__x86_64__) && defined(__GNUC__)

#include <immintrin.h>

/* Everything below may use AVX2, POPCNT and BMI1: text.c checks the CPU. */
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,popcnt,bmi"))), apply_to = function)
#else
#pragma GCC target("avx2,popcnt,bmi")
#endif

static inline uint64_t bits(__m256i lo, __m256i hi)
{
	return (uint32_t)_mm256_movemask_epi8(lo) | (uint64_t)(uint32_t)_mm256_movemask_epi8(hi) << 32;
}

/* Bytes with first <= b <= first + span, as a 0xff/0x00 vector. */
static inline __m256i in_range(__m256i v, char first, char span)
{
	__m256i t = _mm256_sub_epi8(v, _mm256_set1_epi8(first));

	return _mm256_cmpeq_epi8(_mm256_min_epu8(t, _mm256_set1_epi8(span)), t);
}

static inline uint64_t range_bits(__m256i lo, __m256i hi, char first, char span)
{
	return bits(in_range(lo, first, span), in_range(hi, first, span));
}

static inline uint64_t eq_bits(__m256i lo, __m256i hi, __m256i c)
{
	return bits(_mm256_cmpeq_epi8(lo, c), _mm256_cmpeq_epi8(hi, c));
}

/* R_k(n) for 1 <= k <= 63: bit i set when bytes i-k+1 .. i are all in n. */
static inline uint64_t runs(uint64_t n, unsigned k)
{
	uint64_t acc = ~0ull, pw = n;
	unsigned have = 0, plen = 1;

	for (;;) {
		if (k & 1) {
			acc &= pw << have;
			have += plen;
		}
		k >>= 1;
		if (!k)
			return acc;
		pw &= pw << plen;
		plen *= 2;
	}
}

static inline void lines(struct text_scan *st, __m256i lo, __m256i hi, unsigned k, uint64_t valid)
{
	/* \n \v \f \r and \x1c-\x1e break lines; \r\n counts once. */
	uint64_t lb = (range_bits(lo, hi, 0x0a, 3) | range_bits(lo, hi, 0x1c, 2)) & valid;
	uint64_t cr = eq_bits(lo, hi, _mm256_set1_epi8(0x0d)) & valid;
	uint64_t lf = eq_bits(lo, hi, _mm256_set1_epi8(0x0a)) & valid;
	uint64_t crlf = lf & (cr << 1 | (uint64_t)st->prev_cr);

	st->breaks += (uint64_t)_mm_popcnt_u64(lb) - (uint64_t)_mm_popcnt_u64(crlf);
	st->prev_cr = (int)(cr >> (k - 1) & 1);
	st->last_break = (int)(lb >> (k - 1) & 1);
}

/* Ignore words inside the block, by masks. */
static inline void ignore_masks(struct text_scan *st, uint64_t n, uint64_t starts,
				__m256i lo, __m256i hi, const __m256i *chv)
{
	uint64_t ends = n & ~(n >> 1), ch[TEXT_MASK_CHARS], m;
	unsigned c, w, j, len;

	for (c = 0; c < st->nchars; c++)
		ch[c] = eq_bits(lo, hi, chv[c]);
	for (w = 0; w < st->nmask; w++) {
		len = st->mask[w].len;
		/* The characters are all word bytes, so a start, an end len-1
		 * later and matching bytes in between make exactly this word. */
		m = starts & (ends >> (len - 1));
		for (j = 0; j < len && m; j++)
			m &= ch[st->mask[w].idx[j]] >> j;
		if (m) {
			uint64_t k = (uint64_t)_mm_popcnt_u64(m);

			st->ignored += k;
			st->ignored_long += len > st->min_length ? k : 0;
		}
	}
}

/* Ignore words inside the block, one hash probe per word of a listed length. */
static inline void ignore_probe(struct text_scan *st, size_t pos, uint64_t n, uint64_t starts)
{
	while (starts) {
		unsigned b = (unsigned)_tzcnt_u64(starts);
		/* n's top bit is clear here, so ~(n >> b) has a set bit. */
		unsigned len = (unsigned)_tzcnt_u64(~(n >> b));

		starts &= starts - 1;
		if ((st->ign_lens >> len & 1) && kiln_text_scan_ignored(st, st->s + pos + b, len)) {
			st->ignored++;
			st->ignored_long += len > st->min_length;
		}
	}
}

/* The first k (1-64) bytes of the block at pos, all ASCII. */
static inline __attribute__((always_inline)) void block(struct text_scan *st, size_t pos, unsigned k,
							 __m256i lo, __m256i hi, const __m256i *chv)
{
	uint64_t valid = k == 64 ? ~0ull : (1ull << k) - 1;
	uint64_t ws = (range_bits(lo, hi, 0x09, 4) | range_bits(lo, hi, 0x1c, 4)) & valid;
	uint64_t n = ~ws & valid, starts;

	st->code_points += k;
	if (st->want_lines)
		lines(st, lo, hi, k, valid);
	if (st->in_word) {
		unsigned lead;

		if (!ws) {
			st->wcp += k;
			return;
		}
		lead = (unsigned)_tzcnt_u64(ws);
		st->wcp += lead;
		kiln_text_scan_word_end(st, pos + lead);
		n &= ~0ull << lead;
	} else if (!ws) {
		st->in_word = 1;
		st->wstart = pos;
		st->wcp = k;
		return;
	}
	if (n >> (k - 1) & 1) {
		/* ws != 0, so the trailing run starts after its highest bit. */
		unsigned top = 63 - (unsigned)__builtin_clzll(ws);

		st->in_word = 1;
		st->wstart = pos + top + 1;
		st->wcp = k - 1 - top;
		n &= (2ull << top) - 1;
	}
	if (!n)
		return;
	starts = n & ~(n << 1);
	st->words += (uint64_t)_mm_popcnt_u64(starts);
	if (st->min_length < 63) {
		uint64_t r = runs(n, (unsigned)st->min_length + 1);

		st->long_words += (uint64_t)_mm_popcnt_u64(r & ~(r << 1));
	}
	if (!st->ign_count)
		return;
	if (st->mask_ok)
		ignore_masks(st, n, starts, lo, hi, chv);
	else
		ignore_probe(st, pos, n, starts);
}

int kiln_text_scan_simd(struct text_scan *st, const kiln_cancel *cancel)
{
	const unsigned char *s = st->s;
	size_t len = st->len, pos = 0, poll = 0;
	__m256i chv[TEXT_MASK_CHARS];
	unsigned c;

	for (c = 0; c < st->nchars; c++)
		chv[c] = _mm256_set1_epi8((char)st->chars[c]);
	while (len - pos >= 64) {
		__m256i lo, hi;
		uint64_t high;

		if (pos >= poll) {
			if (kiln_cancelled(cancel))
				return -KILN_E_CANCELLED;
			poll = pos + POLL_BYTES;
		}
		lo = _mm256_loadu_si256((const __m256i *)(s + pos));
		hi = _mm256_loadu_si256((const __m256i *)(s + pos + 32));
		high = bits(lo, hi);
		if (high) {
			/* The ASCII bytes before the first other one by masks, then
			 * the run of non-ASCII bytes code point by code point. */
			unsigned k = (unsigned)_tzcnt_u64(high);
			unsigned end = k + (unsigned)_tzcnt_u64(~(high >> k));

			if (k)
				block(st, pos, k, lo, hi, chv);
			pos = kiln_text_scan_scalar(st, pos + k, pos + end);
			if (st->bad)
				return 0;
			continue;
		}
		block(st, pos, 64, lo, hi, chv);
		pos += 64;
	}
	kiln_text_scan_scalar(st, pos, len);
	return 0;
}

#if defined(__clang__)
#pragma clang attribute pop
#endif

#else

int kiln_text_scan_simd(struct text_scan *st, const kiln_cancel *cancel)
{
	(void)st;
	(void)cancel;
	return -KILN_E_INTERNAL;
}

#endif
