/*
 * Unit tests for the text library (include/kiln/text.h).  Exhaustive
 * comparison with Python itself is in tests/python/test_text.py; here the
 * expected figures are worked out by hand or by a naive reference scanner
 * written in the test, and the block path is checked against the
 * per-code-point path on the same words.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "harness.h"
#include "kiln/error.h"
#include "kiln/text.h"
#include "kiln/utf8.h"

static struct kiln_text_counts count_opts(const char *s, size_t len, const struct kiln_text_opts *o)
{
	struct kiln_text_counts c;
	char err[128] = "";
	size_t bad = 0;
	int rc = kiln_text_count((const unsigned char *)s, len, o, NULL, &c, &bad, err, sizeof(err));

	ck_assert_msg(rc == 0, "count failed: %d %s", rc, err);
	ck_assert_uint_eq(c.bytes, len);
	return c;
}

static struct kiln_text_counts count(const char *s)
{
	struct kiln_text_opts o;

	kiln_text_opts_default(&o);
	o.lines = 1;
	return count_opts(s, strlen(s), &o);
}

START_TEST(basic)
{
	struct kiln_text_counts c = count("the quick brownfoxes jumped over a lazy dog, extraordinarily");

	ck_assert_uint_eq(c.words, 9);
	ck_assert_uint_eq(c.kept_words, 7);
	ck_assert_uint_eq(c.long_words, 2); /* "brownfoxes", "extraordinarily" */
	ck_assert_uint_eq(c.lines, 1);
	c = count("");
	ck_assert_uint_eq(c.words, 0);
	ck_assert_uint_eq(c.lines, 0);
	c = count(" \t\n ");
	ck_assert_uint_eq(c.words, 0);
	ck_assert_uint_eq(c.code_points, 4);
	/* "The" is not "the": matching is exact. */
	c = count("The the a A");
	ck_assert_uint_eq(c.words, 4);
	ck_assert_uint_eq(c.kept_words, 2);
}
END_TEST

/* Lengths are code points: 8 two-byte letters are not long, 9 are; emoji
 * and combining marks count one each. */
START_TEST(code_points)
{
	struct kiln_text_counts c;

	c = count("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9");
	ck_assert_uint_eq(c.code_points, 8);
	ck_assert_uint_eq(c.long_words, 0);
	c = count("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9");
	ck_assert_uint_eq(c.long_words, 1);
	/* 4 emoji + 5 letters with a combining acute: 4 + 5 + 1 = 10 code points. */
	c = count("\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80" "abcde\xcc\x81");
	ck_assert_uint_eq(c.code_points, 10);
	ck_assert_uint_eq(c.words, 1);
	ck_assert_uint_eq(c.long_words, 1);
}
END_TEST

/* Unicode separators split words, other spaces-looking characters do not. */
START_TEST(unicode_spaces)
{
	struct kiln_text_counts c;

	/* NBSP, U+2028, U+3000, U+0085, U+1680, U+200A, U+202F, U+205F, \x1f. */
	c = count("a\xc2\xa0" "b\xe2\x80\xa8" "c\xe3\x80\x80" "d\xc2\x85" "e\xe1\x9a\x80"
		  "f\xe2\x80\x8a" "g\xe2\x80\xaf" "h\xe2\x81\x9f" "i\x1fj");
	ck_assert_uint_eq(c.words, 10);
	/* U+200B (zero width space) and U+FEFF are not whitespace to Python. */
	c = count("a\xe2\x80\x8b" "b\xef\xbb\xbf" "c");
	ck_assert_uint_eq(c.words, 1);
	ck_assert(kiln_text_is_space(0x3000));
	ck_assert(!kiln_text_is_space(0x200b));
	ck_assert(!kiln_text_is_space(0x180e));
}
END_TEST

START_TEST(lines)
{
	ck_assert_uint_eq(count("a\r\nb\rc\n").lines, 3);
	ck_assert_uint_eq(count("x\n").lines, 1);
	ck_assert_uint_eq(count("\n\n").lines, 2);
	ck_assert_uint_eq(count("\r\r\n").lines, 2);
	ck_assert_uint_eq(count("a\xe2\x80\xa8" "b\x0b" "c\x1c" "d\xc2\x85" "e").lines, 5);
	/* \x1f splits words but not lines. */
	ck_assert_uint_eq(count("a\x1f" "b").lines, 1);
}
END_TEST

/* A naive reference: ASCII-only split on the ASCII whitespace set. */
static void naive(const char *s, size_t len, uint64_t min_length, const char *const *ign, size_t nign,
		  struct kiln_text_counts *c)
{
	size_t i = 0, start;

	memset(c, 0, sizeof(*c));
	while (i < len) {
		while (i < len && kiln_text_is_space((unsigned char)s[i]))
			i++;
		if (i == len)
			break;
		start = i;
		while (i < len && !kiln_text_is_space((unsigned char)s[i]))
			i++;
		c->words++;
		int ignored = 0;
		for (size_t k = 0; k < nign; k++)
			if (strlen(ign[k]) == i - start && !memcmp(ign[k], s + start, i - start))
				ignored = 1;
		if (ignored)
			continue;
		c->kept_words++;
		c->long_words += i - start > min_length;
	}
}

/* Random ASCII texts of words of 1-140 letters, so words start, end and
 * span 64-byte blocks everywhere, against the naive scanner, for several
 * min_length values and ignore sets (both the mask and the probe path). */
START_TEST(blocks_vs_naive)
{
	static const char *const small[] = { "the", "a", "ab", "abcabcabca" };
	static const char *const big[] = { "the", "a", "ab", "abcabcabca", "b", "c", "ca", "bc",
					   "cab", "bca", "abc", "bb", "cc" };
	static const uint64_t lens[] = { 0, 1, 2, 8, 9, 31, 62, 63, 64, 65, 200 };
	size_t cap = 1 << 16, len;
	char *s = malloc(cap);
	unsigned seed = 12345;

	for (int round = 0; round < 60; round++) {
		len = 0;
		while (len < cap - 300) {
			unsigned wl = 1 + (seed = seed * 1103515245 + 12345) % (round % 3 ? 12 : 140);
			for (unsigned k = 0; k < wl; k++)
				s[len++] = "abc"[(seed = seed * 1103515245 + 12345) >> 16 & 1 ? 0 : 1 + (k & 1)];
			unsigned sp = 1 + (seed = seed * 1103515245 + 12345) % 3;
			for (unsigned k = 0; k < sp; k++)
				s[len++] = " \t\n\x1f\r"[(seed >> (8 + k)) % 5];
		}
		for (size_t li = 0; li < sizeof(lens) / sizeof(lens[0]); li++) {
			for (int which = 0; which < 2; which++) {
				const char *const *ign = which ? big : small;
				size_t nign = which ? 13 : 4;
				struct kiln_text_opts o = { .min_length = lens[li], .ignore = ign,
							    .ignore_count = nign };
				struct kiln_text_counts want, got = count_opts(s, len, &o), port;

				o.portable = 1;
				port = count_opts(s, len, &o);
				naive(s, len, lens[li], ign, nign, &want);
				ck_assert_uint_eq(got.words, want.words);
				ck_assert_uint_eq(got.kept_words, want.kept_words);
				ck_assert_uint_eq(got.long_words, want.long_words);
				ck_assert_uint_eq(got.code_points, len);
				ck_assert_uint_eq(port.words, want.words);
				ck_assert_uint_eq(port.kept_words, want.kept_words);
				ck_assert_uint_eq(port.long_words, want.long_words);
			}
		}
	}
	free(s);
}
END_TEST

/* Replacing 'e' by the two-byte 'é' forces the per-code-point path but keeps
 * every word's code point count: all figures but bytes must stay. */
START_TEST(ascii_vs_multibyte)
{
	size_t n = 5000, len = 0, mlen = 0;
	char *a = malloc(n * 12), *m = malloc(n * 24);
	struct kiln_text_opts o;
	struct kiln_text_counts ca, cm;

	for (size_t i = 0; i < n; i++) {
		unsigned wl = 1 + (unsigned)(i * 7919 % 13);
		for (unsigned k = 0; k < wl; k++) {
			char ch = "thea"[(i + k) % 4];
			a[len++] = ch;
			if (ch == 'e') {
				m[mlen++] = (char)0xc3;
				m[mlen++] = (char)0xa9;
			} else {
				m[mlen++] = ch;
			}
		}
		a[len++] = ' ';
		m[mlen++] = ' ';
	}
	kiln_text_opts_default(&o);
	o.lines = 1;
	ca = count_opts(a, len, &o);
	cm = count_opts(m, mlen, &o);
	o.portable = 1;
	ck_assert_uint_eq(count_opts(a, len, &o).lines, ca.lines);
	ck_assert_uint_eq(count_opts(m, mlen, &o).long_words, cm.long_words);
	ck_assert_uint_eq(ca.words, cm.words);
	ck_assert_uint_eq(ca.long_words, cm.long_words);
	ck_assert_uint_eq(ca.code_points, cm.code_points);
	ck_assert_uint_eq(ca.lines, cm.lines);
	/* "the" is ignored in the ASCII text but "thé" is not a match. */
	ck_assert_uint_gt(ca.words - ca.kept_words, cm.words - cm.kept_words);
	free(a);
	free(m);
}
END_TEST

START_TEST(bad_utf8)
{
	static const struct {
		const char *s;
		size_t off;
	} cases[] = {
		{ "abc\x80", 3 },
		{ "\xc0\x80", 0 },             /* overlong */
		{ "ab \xe0\x80\x80", 3 },      /* overlong */
		{ "\xed\xa0\x80", 0 },         /* surrogate */
		{ "x\xf4\x90\x80\x80", 1 },    /* above U+10FFFF */
		{ "\xc3\xa9\xe2\x82", 2 },     /* truncated */
		{ "\xff", 0 },
	};
	struct kiln_text_opts o;
	struct kiln_text_counts c;
	char err[128], big[200];
	size_t bad;

	kiln_text_opts_default(&o);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bad = 999;
		ck_assert_int_eq(kiln_text_count((const unsigned char *)cases[i].s, strlen(cases[i].s), &o,
						 NULL, &c, &bad, err, sizeof(err)), -KILN_E_INVALID_ARGS);
		ck_assert_uint_eq(bad, cases[i].off);
		ck_assert_ptr_nonnull(strstr(err, "offset"));
	}
	/* Deep inside block-path text. */
	memset(big, 'a', sizeof(big));
	big[150] = (char)0xbf;
	ck_assert_int_eq(kiln_text_count((const unsigned char *)big, sizeof(big), &o, NULL, &c, &bad,
					 err, sizeof(err)), -KILN_E_INVALID_ARGS);
	ck_assert_uint_eq(bad, 150);
}
END_TEST

START_TEST(short_long_ffi)
{
	static const char *const ign[] = { "the", "a" };
	static const char text[] = "the cat sat on a verylongword";
	double f;

	ck_assert_int_eq(kiln_text_short_long((const unsigned char *)text, strlen(text), 8, ign, 2, &f), 0);
	ck_assert_double_eq_tol(f, 0.25, 1e-12);
	ck_assert_int_eq(kiln_text_short_long((const unsigned char *)"the a", 5, 8, ign, 2, &f), 1);
	ck_assert_int_eq(kiln_text_short_long((const unsigned char *)"ab\xff", 3, 8, ign, 2, &f),
			 -KILN_E_INVALID_ARGS);
	ck_assert_double_eq(f, 2);
}
END_TEST

START_TEST(top)
{
	static const char text[] = "b a b c\xc2\xa0" "a b d \xc3\xa9 \xc3\xa9";
	struct kiln_text_word *w;
	char err[128];
	size_t n;

	ck_assert_int_eq(kiln_text_top((const unsigned char *)text, strlen(text), 3, NULL, &w, &n,
				       err, sizeof(err)), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_uint_eq(w[0].count, 3);
	ck_assert(w[0].len == 1 && w[0].word[0] == 'b');
	ck_assert_uint_eq(w[1].count, 2);
	ck_assert(w[1].len == 1 && w[1].word[0] == 'a');
	/* "c" and "d" occur once, "é" twice. */
	ck_assert_uint_eq(w[2].count, 2);
	ck_assert(w[2].len == 2 && !memcmp(w[2].word, "\xc3\xa9", 2));
	free(w);
	ck_assert_int_eq(kiln_text_top((const unsigned char *)"  ", 2, 5, NULL, &w, &n, err, sizeof(err)), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_ptr_null(w);
}
END_TEST

START_TEST(cancelled)
{
	kiln_cancel cancel;
	struct kiln_text_opts o;
	struct kiln_text_counts c;
	struct kiln_text_word *w;
	char err[128], *s = malloc(4 << 20);
	size_t n;

	memset(s, 'x', 4 << 20);
	atomic_init(&cancel.flag, KILN_E_TIMEOUT);
	kiln_text_opts_default(&o);
	ck_assert_int_eq(kiln_text_count((unsigned char *)s, 4 << 20, &o, &cancel, &c, NULL, err, sizeof(err)),
			 -KILN_E_CANCELLED);
	ck_assert_int_eq(kiln_text_top((unsigned char *)s, 4 << 20, 3, &cancel, &w, &n, err, sizeof(err)),
			 -KILN_E_CANCELLED);
	free(s);
}
END_TEST

/* --- Every SIMD path against the per-code-point one ------------------------ */

static const int simd_paths[] = { KILN_TEXT_AVX2, KILN_TEXT_AVX512 };

/* Counts s on `path`: the return code, the counts and the bad offset. */
static int count_path(const unsigned char *s, size_t len, struct kiln_text_opts o, int path,
		      struct kiln_text_counts *c, size_t *bad)
{
	char err[128];

	o.portable = path;
	*bad = (size_t)-1;
	return kiln_text_count(s, len, &o, NULL, c, bad, err, sizeof(err));
}

/* Asserts that every SIMD path this CPU has gives exactly what the portable
 * path gives on s (return code, all counts, bad offset). */
static void same_on_all_paths(const unsigned char *s, size_t len, const struct kiln_text_opts *o,
			      const char *what)
{
	struct kiln_text_counts want, got;
	size_t want_bad, got_bad;
	int want_rc = count_path(s, len, *o, KILN_TEXT_PORTABLE, &want, &want_bad), rc;

	for (size_t i = 0; i < sizeof(simd_paths) / sizeof(simd_paths[0]); i++) {
		if (!kiln_text_path_supported(simd_paths[i]))
			continue;
		rc = count_path(s, len, *o, simd_paths[i], &got, &got_bad);
		ck_assert_msg(rc == want_rc, "%s: path %d rc %d, portable %d", what, simd_paths[i], rc, want_rc);
		if (rc) {
			ck_assert_msg(got_bad == want_bad, "%s: path %d bad offset %zu, portable %zu", what,
				      simd_paths[i], got_bad, want_bad);
			continue;
		}
		ck_assert_msg(!memcmp(&got, &want, sizeof(got)),
			      "%s: path %d: cp %llu/%llu words %llu/%llu kept %llu/%llu long %llu/%llu lines %llu/%llu",
			      what, simd_paths[i], (unsigned long long)got.code_points,
			      (unsigned long long)want.code_points, (unsigned long long)got.words,
			      (unsigned long long)want.words, (unsigned long long)got.kept_words,
			      (unsigned long long)want.kept_words, (unsigned long long)got.long_words,
			      (unsigned long long)want.long_words, (unsigned long long)got.lines,
			      (unsigned long long)want.lines);
	}
}

/* The option sets compared: min_length around block and word sizes, no
 * ignore words, few (byte masks) and many (hash probes, multi-byte ones). */
static void same_on_all_paths_opts(const unsigned char *s, size_t len, const char *what)
{
	/* few: compared as integers (what cannot be a word is left out). */
	static const char *const few[] = { "the", "a", "é", "déjà", "etaoinsh", "a b", "\xff" };
	static const char *const many[] = { "the", "a", "thé", "b", "c", "de", "la", "und", "der", "die",
					    "\xe2\x80\x94", "ab", "ba", "xyz" };
	static const uint64_t lens[] = { 0, 1, 2, 8, 62, 63 };

	for (size_t li = 0; li < sizeof(lens) / sizeof(lens[0]); li++) {
		for (int which = 0; which < 3; which++) {
			struct kiln_text_opts o = {
				.min_length = lens[li],
				.ignore = which == 1 ? few : many,
				.ignore_count = which == 0 ? 0 : which == 1 ? 7 : 14,
				.lines = li & 1,
			};

			same_on_all_paths(s, len, &o, what);
		}
	}
}

static unsigned rnd(unsigned *seed)
{
	*seed = *seed * 1103515245 + 12345;
	return *seed >> 8;
}

/* Code points a generated text is drawn from: ASCII letters and every
 * whitespace and line break, every multi-byte whitespace and line break and
 * their neighbours on the same lead bytes, and characters of 2, 3 and 4
 * bytes at the ends of their ranges. */
static const uint32_t pool[] = {
	'a', 'b', 'e', 'h', 't', 'x', ' ', ' ', ' ', '\t', '\n', '\r', 0x0b, 0x0c, 0x1c, 0x1d, 0x1e, 0x1f, 0x7f,
	0x80, 0x84, 0x85, 0x86, 0x9f, 0xa0, 0xa1, 0xbf, 0xc0, 0xe9, 0xfc, 0xdf, 0x7ff, 0x800, 0x1680,
	0x1681, 0x167f, 0x1fff, 0x2000, 0x2005, 0x200a, 0x200b, 0x2014, 0x2019, 0x2027, 0x2028, 0x2029,
	0x202a, 0x202e, 0x202f, 0x2030, 0x205e, 0x205f, 0x2060, 0x2fff, 0x3000, 0x3001, 0x30ff, 0x4e2d,
	0xd7ff, 0xe000, 0xfffd, 0xffff, 0x10000, 0x1f600, 0x10ffff,
};

/* A random text of about len bytes; `density` in 0-16 sets how often a
 * code point comes from the pool rather than the letters. */
static size_t gen_text(unsigned char *s, size_t cap, unsigned *seed, unsigned density)
{
	size_t len = 0;

	while (len + 4 <= cap) {
		unsigned r = rnd(seed);
		uint32_t c;

		if (r % 16 < density)
			c = pool[(r >> 4) % (sizeof(pool) / sizeof(pool[0]))];
		else if (r % 97 == 0)
			c = ' ';
		else
			c = "etaoinshr"[(r >> 4) % 9];
		if (r % 1009 == 0) {
			/* Any scalar value at all, now and then. */
			c = rnd(seed) % 0x110000;
			if (c >= 0xd800 && c < 0xe000)
				c = 0xe000;
		}
		len += kiln_utf8_encode(c, s + len);
	}
	return len;
}

/* Generated texts of every density, cut at every length mod 64 (so
 * characters straddle block ends everywhere), on all paths. */
START_TEST(simd_vs_portable_generated)
{
	size_t cap = 1 << 14, len;
	unsigned char *s = malloc(cap);
	unsigned seed = 777;
	char what[64];

	for (unsigned round = 0; round < 120; round++) {
		len = gen_text(s, cap - 64 + round % 64, &seed, round % 17);
		snprintf(what, sizeof(what), "generated round %u", round);
		same_on_all_paths_opts(s, len, what);
	}
	free(s);
}
END_TEST

/* Every scalar value once, as "x<c>" words and as whitespace between words,
 * at every alignment. */
START_TEST(simd_vs_portable_all_code_points)
{
	size_t cap = 12 * 0x110000 + 64, len = 0;
	unsigned char *s = malloc(cap);
	struct kiln_text_opts o;

	for (uint32_t c = 0; c < 0x110000; c++) {
		if (c >= 0xd800 && c < 0xe000)
			continue;
		s[len++] = 'x';
		len += kiln_utf8_encode(c, s + len);
		s[len++] = c % 3 ? ' ' : 'y';
		if (c % 7 == 0)
			len += kiln_utf8_encode(0x2003, s + len);
	}
	kiln_text_opts_default(&o);
	o.lines = 1;
	for (size_t shift = 0; shift < 64; shift += 13) {
		same_on_all_paths(s + shift, len - shift, &o, "all code points");
		o.min_length = 1;
	}
	free(s);
}
END_TEST

/* Bad bytes: every two-byte start of a sequence (followed by a
 * continuation or a letter) around a block boundary, and random
 * corruptions of generated texts: the same error at the same offset. */
START_TEST(simd_vs_portable_invalid)
{
	unsigned char t[200], *s;
	size_t cap = 1 << 13, len;
	unsigned seed = 99;
	struct kiln_text_opts o;

	kiln_text_opts_default(&o);
	for (unsigned b1 = 0x80; b1 <= 0xff; b1++) {
		for (unsigned b2 = 0; b2 <= 0xff; b2++) {
			for (unsigned at = 60; at <= 66; at += 2) {
				memset(t, 'a', sizeof(t));
				t[at] = (unsigned char)b1;
				t[at + 1] = (unsigned char)b2;
				t[at + 2] = (unsigned char)(at & 2 ? 0x80 : 0xbf);
				t[at + 3] = (unsigned char)(at & 4 ? 0x80 : ' ');
				same_on_all_paths(t, sizeof(t), &o, "two bytes");
				same_on_all_paths(t, at + 2 + (b2 & 1), &o, "two bytes at the end");
			}
		}
	}
	s = malloc(cap);
	for (unsigned round = 0; round < 400; round++) {
		len = gen_text(s, cap - round % 64, &seed, 4 + round % 13);
		for (unsigned k = 0; k <= round % 3; k++)
			s[rnd(&seed) % len] = (unsigned char)rnd(&seed);
		same_on_all_paths(s, len, &o, "corrupted");
		/* Cut short in the middle of a character, maybe. */
		same_on_all_paths(s, len - 1 - rnd(&seed) % 3, &o, "corrupted, cut");
	}
	free(s);
}
END_TEST

/* Real texts: the multilingual sample (at starting alignments all through
 * a block) and French/German-like prose, on all paths. */
START_TEST(simd_vs_portable_real)
{
	static const char *const words[] = {
		"le", "la", "les", "de", "des", "et", "à", "été", "très", "où", "déjà", "français", "château",
		"naïve", "Noël", "garçon", "élève", "fenêtre", "der", "die", "und", "für", "über", "schön",
		"Mädchen", "Straße", "Größe", "Übersetzung", "Schifffahrtsgesellschaft", "international",
		"gouvernement", "développement", "«", "»", "—", "l’homme", "„Anführung“", "maison", "Haus",
	};
	char path[512];
	unsigned char *s = malloc(1 << 20);
	size_t len = 0, n;
	unsigned seed = 5;
	FILE *f;

	snprintf(path, sizeof(path), "%s/text/sample.txt", harness_data_dir());
	f = fopen(path, "rb");
	ck_assert_ptr_nonnull(f);
	n = fread(s, 1, 1 << 16, f);
	fclose(f);
	ck_assert_uint_gt(n, 100);
	for (len = n; len + n <= 1 << 14; len += n)
		memcpy(s + len, s, n);
	for (size_t shift = 0; shift < 64; shift += 5)
		same_on_all_paths_opts(s + shift, len - shift, "sample.txt");
	for (len = 0; len < (1 << 18) - 64;) {
		const char *w = words[rnd(&seed) % (sizeof(words) / sizeof(words[0]))];

		memcpy(s + len, w, strlen(w));
		len += strlen(w);
		s[len++] = rnd(&seed) % 50 ? ' ' : '\n';
	}
	for (size_t shift = 0; shift < 3; shift++)
		same_on_all_paths_opts(s + shift, len - shift, "prose");
	free(s);
}
END_TEST

START_TEST(path_unsupported)
{
	struct kiln_text_opts o;
	struct kiln_text_counts c;
	char err[128];

	kiln_text_opts_default(&o);
	ck_assert(kiln_text_path_supported(KILN_TEXT_PORTABLE));
	ck_assert(!kiln_text_path_supported(99));
	o.portable = 99;
	ck_assert_int_eq(kiln_text_count((const unsigned char *)"a b", 3, &o, NULL, &c, NULL, err, sizeof(err)),
			 -KILN_E_INVALID_ARGS);
}
END_TEST

static Suite *text_suite(void)
{
	Suite *s = suite_create("text");
	TCase *tc = tcase_create("text");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, basic);
	tcase_add_test(tc, code_points);
	tcase_add_test(tc, unicode_spaces);
	tcase_add_test(tc, lines);
	tcase_add_test(tc, blocks_vs_naive);
	tcase_add_test(tc, ascii_vs_multibyte);
	tcase_add_test(tc, bad_utf8);
	tcase_add_test(tc, short_long_ffi);
	tcase_add_test(tc, top);
	tcase_add_test(tc, cancelled);
	tcase_add_test(tc, simd_vs_portable_generated);
	tcase_add_test(tc, simd_vs_portable_all_code_points);
	tcase_add_test(tc, simd_vs_portable_invalid);
	tcase_add_test(tc, simd_vs_portable_real);
	tcase_add_test(tc, path_unsupported);
	suite_add_tcase(s, tc);
	return s;
}

KILN_CHECK_MAIN(text_suite)
