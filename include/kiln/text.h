/*
 * Word statistics with exactly Python's semantics.
 *
 * kiln_text_count() reproduces, for any valid UTF-8 text s:
 *
 *	words      = len(s.split())
 *	kept_words = len([w for w in s.split() if w not in ignore])
 *	long_words = len([w for w in kept if len(w) > min_length])
 *	lines      = len(s.splitlines())
 *	code_points = len(s), bytes = len(s.encode())
 *
 * so the short_long fraction of the posts is long_words / kept_words.
 * Whitespace is Python's str.split() set (Py_UNICODE_ISSPACE: ASCII
 * \t\n\v\f\r, \x1c-\x1f and space, plus U+0085, U+00A0, U+1680,
 * U+2000-U+200A, U+2028, U+2029, U+202F, U+205F, U+3000); lengths are in
 * code points; `ignore` matches words byte for byte.  Invalid UTF-8 (as
 * Python's strict decoder defines it: no overlong forms, surrogates or
 * values above U+10FFFF) is -KILN_E_INVALID_ARGS with the offset of the
 * first bad byte.
 *
 * Text is scanned 64 bytes at a time with bit masks, validated and
 * classified directly on UTF-8 (AVX-512 or AVX2, whichever the CPU has,
 * chosen at run time); the per-code-point path is kept (opts.portable), and
 * takes over for the last bytes and around invalid UTF-8 so that the
 * offset reported is exact.
 */
#ifndef KILN_TEXT_H
#define KILN_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "kiln/cancel.h"

struct kiln_text_opts {
	uint64_t min_length;          /* long means more code points than this */
	const char *const *ignore;    /* words to leave out (UTF-8, need not be NUL-terminated) */
	const size_t *ignore_len;     /* their lengths in bytes; NULL: strlen() of each */
	size_t ignore_count;
	int lines;                    /* also count lines (slightly slower) */
	int portable;                 /* scan path: 0 the fastest the CPU has, else KILN_TEXT_* */
};

/* Scan paths (opts.portable; the name is kept for the ABI): per code point,
 * or 64-byte blocks with AVX2 or AVX-512.  All give the same results. */
#define KILN_TEXT_PORTABLE 1
#define KILN_TEXT_AVX2 2
#define KILN_TEXT_AVX512 3

/* Whether this CPU can run scan path `path` (KILN_TEXT_*). */
int kiln_text_path_supported(int path);

struct kiln_text_counts {
	uint64_t bytes;
	uint64_t code_points;
	uint64_t words;       /* all words */
	uint64_t kept_words;  /* words not in ignore */
	uint64_t long_words;  /* kept words longer than min_length */
	uint64_t lines;       /* only when opts->lines */
};

/* Python's str.isspace() for one code point (the str.split() separators). */
int kiln_text_is_space(uint32_t cp);

/* Default options: min_length 8, ignore {"the", "a"}, no lines. */
void kiln_text_opts_default(struct kiln_text_opts *o);

/*
 * Counts the text s[0..len).  Returns 0, -KILN_E_INVALID_ARGS (bad UTF-8;
 * *bad_offset, if not NULL, gets the byte offset; or a scan path this CPU
 * lacks), -KILN_E_CANCELLED (polled
 * every megabyte) or -KILN_E_INTERNAL (out of memory), with a message in err.
 */
int kiln_text_count(const unsigned char *s, size_t len, const struct kiln_text_opts *opts,
		    const kiln_cancel *cancel, struct kiln_text_counts *out,
		    size_t *bad_offset, char *err, size_t errlen);

/*
 * The short_long fraction in one call, for FFI users (ctypes): ignore is an
 * array of ignore_count NUL-terminated strings.  Returns 0 and *fraction,
 * 1 if there are no kept words (*fraction is then 0), or -KILN_E_*
 * (for bad UTF-8, *fraction is set to the byte offset).
 */
int kiln_text_short_long(const unsigned char *s, size_t len, uint64_t min_length,
			 const char *const *ignore, size_t ignore_count, double *fraction);

/* One entry of a top-k list; word points into the counted text. */
struct kiln_text_word {
	const unsigned char *word;
	size_t len;
	uint64_t count;
};

/*
 * The k most frequent words of s.split(), as collections.Counter(s.split())
 * .most_common(k) orders them (count descending, ties in order of first
 * appearance).  *out (malloc'ed, free() it) holds *n <= k entries.  The text
 * must be valid UTF-8 (check with kiln_text_count first).  Returns 0,
 * -KILN_E_CANCELLED or -KILN_E_INTERNAL.
 */
int kiln_text_top(const unsigned char *s, size_t len, size_t k, const kiln_cancel *cancel,
		  struct kiln_text_word **out, size_t *n, char *err, size_t errlen);

#endif
