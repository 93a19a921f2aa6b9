/*
 * The SIMD block paths of the text scanner: the scanner itself is written
 * once in text_block.h and compiled here for AVX2 and for AVX-512 (BW);
 * text.c picks one at run time from what the CPU has.
 */
#include "text_scan.h"

#include <string.h>

#include "kiln/error.h"
#include "kiln/text.h"
#include "kiln/utf8.h"

#if defined(__x86_64__) && defined(__GNUC__)

#include <immintrin.h>

/*
 * The UTF-8 validation tables (Keiser and Lemire, "Validating UTF-8 in less
 * than one instruction per byte", 2021): each error kind is a bit, looked up
 * by the previous byte's high and low nibble and the current byte's high
 * nibble; a byte is bad when all three lookups share a bit.
 */
#define TOO_SHORT (1 << 0)
#define TOO_LONG (1 << 1)
#define OVERLONG_3 (1 << 2)
#define TOO_LARGE (1 << 3)
#define SURROGATE (1 << 4)
#define OVERLONG_2 (1 << 5)
#define TOO_LARGE_1000 (1 << 6)
#define OVERLONG_4 (1 << 6)
#define TWO_CONTS (1 << 7)
#define CARRY (TOO_SHORT | TOO_LONG | TWO_CONTS)

#define PREV_HIGH                                                                            \
	TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG,      \
	TWO_CONTS, TWO_CONTS, TWO_CONTS, TWO_CONTS, TOO_SHORT | OVERLONG_2, TOO_SHORT,        \
	TOO_SHORT | OVERLONG_3 | SURROGATE, TOO_SHORT | TOO_LARGE | TOO_LARGE_1000 | OVERLONG_4
#define PREV_LOW                                                                             \
	CARRY | OVERLONG_3 | OVERLONG_2 | OVERLONG_4, CARRY | OVERLONG_2, CARRY, CARRY,       \
	CARRY | TOO_LARGE, CARRY | TOO_LARGE | TOO_LARGE_1000,                                \
	CARRY | TOO_LARGE | TOO_LARGE_1000, CARRY | TOO_LARGE | TOO_LARGE_1000,               \
	CARRY | TOO_LARGE | TOO_LARGE_1000, CARRY | TOO_LARGE | TOO_LARGE_1000,               \
	CARRY | TOO_LARGE | TOO_LARGE_1000, CARRY | TOO_LARGE | TOO_LARGE_1000,               \
	CARRY | TOO_LARGE | TOO_LARGE_1000, CARRY | TOO_LARGE | TOO_LARGE_1000 | SURROGATE,   \
	CARRY | TOO_LARGE | TOO_LARGE_1000, CARRY | TOO_LARGE | TOO_LARGE_1000
#define CUR_HIGH                                                                             \
	TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT, \
	TOO_LONG | OVERLONG_2 | TWO_CONTS | OVERLONG_3 | TOO_LARGE_1000 | OVERLONG_4,         \
	TOO_LONG | OVERLONG_2 | TWO_CONTS | OVERLONG_3 | TOO_LARGE,                           \
	TOO_LONG | OVERLONG_2 | TWO_CONTS | SURROGATE | TOO_LARGE,                            \
	TOO_LONG | OVERLONG_2 | TWO_CONTS | SURROGATE | TOO_LARGE,                            \
	TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT

static const uint8_t prev_high_tbl[16] = { PREV_HIGH };
static const uint8_t prev_low_tbl[16] = { PREV_LOW };
static const uint8_t cur_high_tbl[16] = { CUR_HIGH };

/* --- AVX2: a block is two 32-byte halves ---------------------------------- */

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,popcnt,bmi,bmi2"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,popcnt,bmi,bmi2")
#endif

#define F(name) name##_avx2

typedef struct {
	__m256i lo, hi;
} vec64_avx2;
#define vec64 vec64_avx2

static inline uint64_t bits_avx2(__m256i lo, __m256i hi)
{
	return (uint32_t)_mm256_movemask_epi8(lo) | (uint64_t)(uint32_t)_mm256_movemask_epi8(hi) << 32;
}

static inline vec64 load_avx2(const unsigned char *p)
{
	return (vec64){ _mm256_loadu_si256((const __m256i *)p), _mm256_loadu_si256((const __m256i *)(p + 32)) };
}

static inline uint64_t eq_avx2(vec64 v, unsigned char c)
{
	__m256i b = _mm256_set1_epi8((char)c);

	return bits_avx2(_mm256_cmpeq_epi8(v.lo, b), _mm256_cmpeq_epi8(v.hi, b));
}

static inline __m256i in_range_avx2(__m256i x, unsigned char first, unsigned char span)
{
	__m256i t = _mm256_sub_epi8(x, _mm256_set1_epi8((char)first));

	return _mm256_cmpeq_epi8(_mm256_min_epu8(t, _mm256_set1_epi8((char)span)), t);
}

static inline uint64_t range_avx2(vec64 v, unsigned char first, unsigned char span)
{
	return bits_avx2(in_range_avx2(v.lo, first, span), in_range_avx2(v.hi, first, span));
}

static inline uint64_t cont_avx2(vec64 v)
{
	__m256i c0 = _mm256_set1_epi8((char)0xc0);

	return bits_avx2(_mm256_cmpgt_epi8(c0, v.lo), _mm256_cmpgt_epi8(c0, v.hi));
}

/* 0xff where the byte at p[i] is valid given the bytes before it, else 0. */
static inline __m256i err32_avx2(const unsigned char *p, __m256i cur)
{
	const __m256i prev_high = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)prev_high_tbl));
	const __m256i prev_low = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)prev_low_tbl));
	const __m256i cur_high = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)cur_high_tbl));
	const __m256i nib = _mm256_set1_epi8(0x0f);
	__m256i p1 = _mm256_loadu_si256((const __m256i *)(p - 1));
	__m256i p2 = _mm256_loadu_si256((const __m256i *)(p - 2));
	__m256i p3 = _mm256_loadu_si256((const __m256i *)(p - 3));
	__m256i sc = _mm256_and_si256(
		_mm256_and_si256(_mm256_shuffle_epi8(prev_high, _mm256_and_si256(_mm256_srli_epi16(p1, 4), nib)),
				 _mm256_shuffle_epi8(prev_low, _mm256_and_si256(p1, nib))),
		_mm256_shuffle_epi8(cur_high, _mm256_and_si256(_mm256_srli_epi16(cur, 4), nib)));
	/* The third and fourth bytes of 3- and 4-byte characters must be
	 * continuations: exactly where sc has TWO_CONTS. */
	__m256i must = _mm256_or_si256(_mm256_subs_epu8(p2, _mm256_set1_epi8((char)(0xe0 - 0x80))),
				       _mm256_subs_epu8(p3, _mm256_set1_epi8((char)(0xf0 - 0x80))));
	__m256i e = _mm256_xor_si256(sc, _mm256_and_si256(must, _mm256_set1_epi8((char)0x80)));

	return _mm256_cmpeq_epi8(e, _mm256_setzero_si256());
}

static inline uint64_t utf8_err_avx2(const unsigned char *p, vec64 v)
{
	return ~bits_avx2(err32_avx2(p, v.lo), err32_avx2(p + 32, v.hi));
}

#include "text_block.h"

#undef vec64
#undef F

int kiln_text_scan_avx2(struct text_scan *st, const kiln_cancel *cancel)
{
	return scan_avx2(st, cancel);
}

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

/* --- AVX-512 (F and BW): a block is one register ---------------------------- */

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx2,popcnt,bmi,bmi2"))), \
			     apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx2,popcnt,bmi,bmi2")
#endif

#define F(name) name##_avx512
#define vec64 __m512i

static inline __m512i load_avx512(const unsigned char *p)
{
	return _mm512_loadu_si512((const void *)p);
}

static inline uint64_t eq_avx512(__m512i v, unsigned char c)
{
	return _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8((char)c));
}

static inline uint64_t range_avx512(__m512i v, unsigned char first, unsigned char span)
{
	return _mm512_cmple_epu8_mask(_mm512_sub_epi8(v, _mm512_set1_epi8((char)first)),
				      _mm512_set1_epi8((char)span));
}

static inline uint64_t cont_avx512(__m512i v)
{
	return _mm512_cmplt_epi8_mask(v, _mm512_set1_epi8((char)0xc0));
}

static inline uint64_t utf8_err_avx512(const unsigned char *p, __m512i cur)
{
	const __m512i prev_high = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)prev_high_tbl));
	const __m512i prev_low = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)prev_low_tbl));
	const __m512i cur_high = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)cur_high_tbl));
	const __m512i nib = _mm512_set1_epi8(0x0f);
	__m512i p1 = _mm512_loadu_si512((const void *)(p - 1));
	__m512i p2 = _mm512_loadu_si512((const void *)(p - 2));
	__m512i p3 = _mm512_loadu_si512((const void *)(p - 3));
	__m512i sc = _mm512_and_si512(
		_mm512_and_si512(_mm512_shuffle_epi8(prev_high, _mm512_and_si512(_mm512_srli_epi16(p1, 4), nib)),
				 _mm512_shuffle_epi8(prev_low, _mm512_and_si512(p1, nib))),
		_mm512_shuffle_epi8(cur_high, _mm512_and_si512(_mm512_srli_epi16(cur, 4), nib)));
	__m512i must = _mm512_or_si512(_mm512_subs_epu8(p2, _mm512_set1_epi8((char)(0xe0 - 0x80))),
				       _mm512_subs_epu8(p3, _mm512_set1_epi8((char)(0xf0 - 0x80))));
	__m512i e = _mm512_xor_si512(sc, _mm512_and_si512(must, _mm512_set1_epi8((char)0x80)));

	return _mm512_test_epi8_mask(e, e);
}

#include "text_block.h"

#undef vec64
#undef F

int kiln_text_scan_avx512(struct text_scan *st, const kiln_cancel *cancel)
{
	return scan_avx512(st, cancel);
}

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#else

int kiln_text_scan_avx2(struct text_scan *st, const kiln_cancel *cancel)
{
	(void)st;
	(void)cancel;
	return -KILN_E_INTERNAL;
}

int kiln_text_scan_avx512(struct text_scan *st, const kiln_cancel *cancel)
{
	(void)st;
	(void)cancel;
	return -KILN_E_INTERNAL;
}

#endif
