/*
 * Internal to text.c and text_simd.c: the scanner state shared by the
 * per-code-point path and the 64-byte block path.
 */
#ifndef KILN_TEXT_SCAN_H
#define KILN_TEXT_SCAN_H

#include <stddef.h>
#include <stdint.h>

#include "kiln/cancel.h"

/* Most ignore words the block path matches with byte masks. */
#define TEXT_MASK_WORDS 8

/* Cancellation is polled every this many bytes. */
#define POLL_BYTES (1u << 20)

struct text_ignore {
	const unsigned char *w;
	size_t len;
};

struct text_scan {
	const unsigned char *s;
	size_t len;
	uint64_t min_length;
	int want_lines;

	/* The word being read, if any: its start and code points so far. */
	int in_word;
	size_t wstart;
	uint64_t wcp;

	/* Line state: the previous code point was \r / was a line break. */
	int prev_cr;
	int last_break;

	uint64_t code_points;
	uint64_t words;        /* all words */
	uint64_t long_words;   /* all words longer than min_length */
	uint64_t ignored;      /* words in the ignore set */
	uint64_t ignored_long; /* ... of which longer than min_length */
	uint64_t breaks;       /* line breaks (\r\n counts once) */

	/* The ignore set: an open-addressing hash table of distinct words. */
	struct text_ignore *ign;
	size_t ign_slots;      /* power of two, or 0 for an empty set */
	size_t ign_count;
	uint64_t ign_lens;     /* bit k: a word of k bytes (k < 64); bit 0: one of >= 64 */

	/*
	 * The block path's plan for ignore words.  When mask_ok, every one
	 * that can be a word at all (valid UTF-8 without whitespace) has
	 * 1-63 bytes and is matched inside a block by
	 * and-ing shifted per-byte masks; when also short_ok, all have 1-8
	 * bytes and the word carried into a block is compared as an integer
	 * (val, little-endian).  Otherwise the block path checks each word
	 * whose length is in ign_lens against the hash table.
	 */
	int mask_ok;
	int short_ok;
	unsigned nmask;
	struct {
		uint64_t len;
		uint64_t is_long; /* 1 if longer than min_length (in code points) */
		uint64_t val;
		unsigned char bytes[63];
	} mask[TEXT_MASK_WORDS];

	/* Invalid UTF-8 seen at bad_offset. */
	int bad;
	size_t bad_offset;
};

/* Reads code points from pos until at least `stop` (a code point may run a
 * few bytes past it) or the end; returns the new position.  On bad UTF-8
 * sets st->bad and returns st->len. */
size_t kiln_text_scan_scalar(struct text_scan *st, size_t pos, size_t stop);

/* Ends the current word at byte offset `end`. */
void kiln_text_scan_word_end(struct text_scan *st, size_t end);

/* Whether s[0..len) is in the ignore set. */
int kiln_text_scan_ignored(const struct text_scan *st, const unsigned char *w, size_t len);

/* Whether code point cp ends a line for str.splitlines() (\r\n is the
 * caller's business). */
int kiln_text_scan_is_break(uint32_t cp);

/* The whole scan with 64-byte blocks; only call when the CPU has the
 * instruction sets (AVX2, POPCNT, BMI1, BMI2; the second also AVX-512 F and
 * BW).  0 or -KILN_E_CANCELLED (st->bad reports bad UTF-8). */
int kiln_text_scan_avx2(struct text_scan *st, const kiln_cancel *cancel);
int kiln_text_scan_avx512(struct text_scan *st, const kiln_cancel *cancel);

#endif
