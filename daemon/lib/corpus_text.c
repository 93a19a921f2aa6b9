/*
 * Corpus documents: Unicode classes with Python re semantics, strict UTF-8
 * validation, locked memory and the case-insensitive fold.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include <openssl/crypto.h>
#include <unicase.h>
#include <unictype.h>

#include "kiln/corpus.h"
#include "kiln/error.h"
#include "kiln/utf8.h"

/* --- Unicode classes ------------------------------------------------------ */

bool kiln_uword_isword(uint32_t c)
{
	if (c < 0x80)
		return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		       c == '_';
	if (c > 0x10ffff)
		return false;
	/* Python's isalnum(): isalpha() is the L categories, and isdecimal(),
	 * isdigit(), isnumeric() together are "has a numeric value". */
	if (uc_is_general_category(c, UC_CATEGORY_L))
		return true;
	return uc_numeric_value(c).denominator != 0;
}

uint32_t kiln_uword_lower(uint32_t c)
{
	if (c < 0x80)
		return (c >= 'A' && c <= 'Z') ? c + 32 : c;
	if (c > 0x10ffff)
		return c;
	return uc_tolower(c);
}

/*
 * sre's extra IGNORECASE equivalences (re/_casefix.py, Python 3.11):
 * lower-case characters that share an upper case with another lower-case
 * character.  Each is mapped to one representative of its class, sorted by
 * member for bsearch.  The representative is the class's smallest member,
 * except for {U+0345, U+03B9, U+1FBE}, whose representative is U+03B9 so
 * that only U+0345 (a combining mark, not \w) has a key of a different
 * word class.
 */
static const uint32_t equiv[][2] = {
	{0x0131, 0x0069}, {0x017f, 0x0073}, {0x0345, 0x03b9}, {0x03c3, 0x03c2},
	{0x03d0, 0x03b2}, {0x03d1, 0x03b8}, {0x03d5, 0x03c6}, {0x03d6, 0x03c0},
	{0x03f0, 0x03ba}, {0x03f1, 0x03c1}, {0x03f5, 0x03b5}, {0x1c80, 0x0432},
	{0x1c81, 0x0434}, {0x1c82, 0x043e}, {0x1c83, 0x0441}, {0x1c84, 0x0442},
	{0x1c85, 0x0442}, {0x1c86, 0x044a}, {0x1c87, 0x0463}, {0xa64b, 0x1c88},
	{0x1e9b, 0x1e61}, {0x1fbe, 0x03b9}, {0x1fd3, 0x0390}, {0x1fe3, 0x03b0},
	{0xfb06, 0xfb05}, {0x00b5, 0x00b5}, {0x03bc, 0x00b5},
};

uint32_t kiln_uword_key(uint32_t c)
{
	uint32_t l = kiln_uword_lower(c);

	if (l < 0xb5)
		return l;
	for (size_t i = 0; i < sizeof equiv / sizeof equiv[0]; i++)
		if (equiv[i][0] == l)
			return equiv[i][1];
	return l;
}

/* --- UTF-8 ---------------------------------------------------------------- */

/* --- Locked memory -------------------------------------------------------- */

size_t kiln_secmem_size(size_t n)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);

	if (n == 0)
		n = 1;
	return (n + pg - 1) / pg * pg;
}

void *kiln_secmem_alloc(size_t n, bool *locked)
{
	size_t sz = kiln_secmem_size(n);
	void *p = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	/* Both are best effort: a failed madvise only means the text could
	 * appear in a core dump, a failed mlock that it could be swapped. */
	(void)madvise(p, sz, MADV_DONTDUMP);
	*locked = mlock(p, sz) == 0;
	return p;
}

void kiln_secmem_free(void *p, size_t n)
{
	size_t sz = kiln_secmem_size(n);

	if (!p)
		return;
	OPENSSL_cleanse(p, n);
	(void)munlock(p, sz);
	munmap(p, sz);
}

/* --- Documents ------------------------------------------------------------ */

struct fold_scan {
	size_t fold_len;
	size_t nonword;   /* characters U+0345 */
	uint64_t chars;
	uint64_t newlines;
	bool changed;
};

#ifdef __SSE2__
/* Mask of the bytes of v in 'A'..'Z' (all bytes are ASCII here). */
static inline __m128i upper_mask(__m128i v)
{
	return _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8('A' - 1)),
			     _mm_cmplt_epi8(v, _mm_set1_epi8('Z' + 1)));
}
#endif

/* Validates and measures the fold in one pass.  Returns the offset of the
 * first invalid byte, or len when valid.  All-ASCII blocks of 16 bytes take
 * a vector path. */
static size_t fold_measure(const uint8_t *s, size_t len, struct fold_scan *fs)
{
	size_t i = 0;
	uint32_t c;

	memset(fs, 0, sizeof *fs);
	while (i < len) {
#ifdef __SSE2__
		if (i + 16 <= len) {
			__m128i v = _mm_loadu_si128((const __m128i *)(s + i));
			if (!_mm_movemask_epi8(v)) {
				fs->newlines += (uint64_t)__builtin_popcount(
					(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('\n'))));
				fs->changed |= _mm_movemask_epi8(upper_mask(v)) != 0;
				fs->chars += 16;
				fs->fold_len += 16;
				i += 16;
				continue;
			}
		}
#endif
		uint8_t b = s[i];
		if (b < 0x80) {
			fs->chars++;
			fs->fold_len++;
			fs->newlines += b == '\n';
			fs->changed |= (uint8_t)(b - 'A') < 26;
			i++;
			continue;
		}
		size_t k = kiln_utf8_decode(s + i, len - i, &c);
		if (!k)
			return i;
		uint32_t key = kiln_uword_key(c);
		fs->chars++;
		fs->fold_len += kiln_utf8_len(key);
		fs->changed |= key != c;
		fs->nonword += c == 0x345;
		i += k;
	}
	return len;
}

static void fold_fill(const uint8_t *s, size_t len, uint8_t *out, size_t *nonword_at)
{
	size_t i = 0, o = 0, nw = 0;
	uint32_t c = 0; /* the text is valid UTF-8, so decode always sets it */

	while (i < len) {
#ifdef __SSE2__
		if (i + 16 <= len) {
			__m128i v = _mm_loadu_si128((const __m128i *)(s + i));
			if (!_mm_movemask_epi8(v)) {
				v = _mm_or_si128(v, _mm_and_si128(upper_mask(v), _mm_set1_epi8(0x20)));
				_mm_storeu_si128((__m128i *)(out + o), v);
				i += 16;
				o += 16;
				continue;
			}
		}
#endif
		uint8_t b = s[i];
		if (b < 0x80) {
			out[o++] = (uint8_t)b + (((uint8_t)(b - 'A') < 26) << 5);
			i++;
			continue;
		}
		i += kiln_utf8_decode(s + i, len - i, &c);
		if (c == 0x345)
			nonword_at[nw++] = o;
		o += kiln_utf8_encode(kiln_uword_key(c), out + o);
	}
	out[o] = 0;
}

int kiln_cdoc_init(struct kiln_cdoc *d, uint8_t *text, size_t len, size_t cap, bool locked,
		   char *err, size_t errlen)
{
	struct fold_scan fs;
	size_t bad;

	memset(d, 0, sizeof *d);
	if (cap <= len) {
		snprintf(err, errlen, "internal: text buffer too small");
		return -KILN_E_INTERNAL;
	}
	bad = fold_measure(text, len, &fs);
	if (bad != len) {
		snprintf(err, errlen, "not valid UTF-8 (byte offset %zu)", bad);
		return -KILN_E_INVALID_ARGS;
	}
	text[len] = 0;
	d->text = text;
	d->text_len = len;
	d->text_cap = cap;
	d->locked = locked;
	d->chars = fs.chars;
	d->lines = fs.newlines + (len > 0 && text[len - 1] != '\n');
	if (!fs.changed) {
		d->fold = text;
		d->fold_len = len;
		return 0;
	}
	bool flocked;
	d->fold_cap = fs.fold_len + 1;
	d->fold = kiln_secmem_alloc(d->fold_cap, &flocked);
	if (fs.nonword)
		d->nonword_at = malloc(fs.nonword * sizeof *d->nonword_at);
	if (!d->fold || (fs.nonword && !d->nonword_at)) {
		/* The text block goes back to the caller on failure. */
		kiln_secmem_free(d->fold, d->fold_cap);
		free(d->nonword_at);
		memset(d, 0, sizeof *d);
		snprintf(err, errlen, "out of memory");
		return -KILN_E_INTERNAL;
	}
	d->locked = locked && flocked;
	d->nonword_count = fs.nonword;
	d->fold_len = fs.fold_len;
	fold_fill(text, len, d->fold, d->nonword_at);
	return 0;
}

void kiln_cdoc_clear(struct kiln_cdoc *d)
{
	if (d->fold && d->fold != d->text)
		kiln_secmem_free(d->fold, d->fold_cap);
	kiln_secmem_free(d->text, d->text_cap);
	free(d->nonword_at);
	memset(d, 0, sizeof *d);
}

size_t kiln_cdoc_memory(const struct kiln_cdoc *d)
{
	return kiln_secmem_size(d->text_cap) + (d->fold_cap ? kiln_secmem_size(d->fold_cap) : 0) +
	       d->nonword_count * sizeof(size_t);
}
