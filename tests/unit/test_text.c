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
#include "kiln/error.h"
#include "kiln/text.h"

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
	suite_add_tcase(s, tc);
	return s;
}

KILN_CHECK_MAIN(text_suite)
