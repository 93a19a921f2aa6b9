/*
 * Corpus text: locked memory, UTF-8 validation, whole-word counting and
 * literal search over decrypted documents (issue 5).
 *
 * Matching is defined by Python's re module on the decoded text:
 * kiln_cdoc_count() equals
 *     len(re.findall(r"\b" + re.escape(w) + r"\b", text[, re.IGNORECASE]))
 * A word character is what Python's str-mode \w accepts (ch.isalnum() or
 * '_'); case-insensitive comparison is sre's: a text character c matches a
 * pattern character p when kiln_uword_key(c) == kiln_uword_key(p) (simple
 * lower-casing plus sre's extra equivalences such as 's'/'ſ', 'µ'/'μ').
 *
 * A document keeps its text and, for case-insensitive queries, a copy in
 * which every character is replaced by its match key (the "fold").  Both
 * live in locked memory that is wiped when the document is freed.
 */
#ifndef KILN_CORPUS_H
#define KILN_CORPUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/utf8.h"

#include "kiln/cancel.h"

/* --- Unicode classes (Python 3.11 / Unicode 14.0 semantics) -------------- */

/* Python's str-mode \w: ch.isalnum() or ch == '_'. */
bool kiln_uword_isword(uint32_t c);
/* Python's simple lower-case mapping (_sre.unicode_tolower). */
uint32_t kiln_uword_lower(uint32_t c);
/* The case-insensitive match key: lower-case, then sre's equivalence class
 * representative.  Two characters match under re.IGNORECASE iff their keys
 * are equal. */
uint32_t kiln_uword_key(uint32_t c);

/* --- Locked, wiped memory ------------------------------------------------ */

/* Anonymous pages, mlock()ed when the limit allows (otherwise *locked is
 * false and the caller logs a warning), excluded from core dumps.  Returns
 * NULL when out of memory.  n may be 0. */
void *kiln_secmem_alloc(size_t n, bool *locked);
/* Wipes (OPENSSL_cleanse) and unmaps a kiln_secmem_alloc() block of size n. */
void kiln_secmem_free(void *p, size_t n);
/* Bytes a kiln_secmem_alloc(n) block holds: n rounded up to whole pages,
 * at least one. */
size_t kiln_secmem_size(size_t n);

/* --- Documents ------------------------------------------------------------ */

struct kiln_cdoc {
	/* The text: valid UTF-8, NUL-terminated; owned secmem block of text_cap
	 * bytes (text_cap > text_len). */
	uint8_t *text;
	size_t text_len;
	size_t text_cap;
	/* The fold: each character replaced by its key.  Equal to text (not a
	 * separate block, fold_cap 0) when no character changes. */
	uint8_t *fold;
	size_t fold_len;
	size_t fold_cap;
	/* Byte offsets in fold of characters whose key is a word character
	 * although the original is not (U+0345, whose key is U+03B9), sorted;
	 * plain malloc (offsets are not secret text). */
	size_t *nonword_at;
	size_t nonword_count;
	uint64_t chars;  /* code points */
	uint64_t lines;  /* '\n' count + 1 when the text does not end in '\n' */
	bool locked;     /* text and fold are mlock()ed */
};

/* Takes ownership of `text` (a kiln_secmem_alloc block of `cap` bytes whose
 * first `len` bytes are the plaintext, cap > len), checks it is UTF-8 and
 * builds the fold.  On error the block is still owned by the caller and
 * -KILN_E_INVALID_ARGS names the first bad byte in err.  On success the
 * document owns it (free with kiln_cdoc_clear). */
int kiln_cdoc_init(struct kiln_cdoc *d, uint8_t *text, size_t len, size_t cap, bool locked,
		   char *err, size_t errlen);
/* Wipes and frees everything; the struct is zeroed. */
void kiln_cdoc_clear(struct kiln_cdoc *d);
/* Bytes of memory held: the text and fold blocks (whole pages) and the
 * offsets. */
size_t kiln_cdoc_memory(const struct kiln_cdoc *d);

/* --- Queries -------------------------------------------------------------- */

struct kiln_cquery;

enum kiln_cquery_flags {
	KILN_CQ_ICASE = 1u << 0,   /* re.IGNORECASE */
	KILN_CQ_WORD = 1u << 1,    /* \b before and after (corpus.count) */
};

/* Compiles a literal (UTF-8, non-empty, valid) into a query.  Returns 0 or
 * -KILN_E_INVALID_ARGS with a message. */
int kiln_cquery_new(const char *lit, size_t len, unsigned flags, struct kiln_cquery **out,
		    char *err, size_t errlen);
void kiln_cquery_free(struct kiln_cquery *q);

/* Number of non-overlapping matches, leftmost first (re.findall). */
uint64_t kiln_cdoc_count(const struct kiln_cdoc *d, const struct kiln_cquery *q);

struct kiln_chit {
	uint64_t line;    /* 1-based */
	uint64_t column;  /* 1-based, in code points */
	size_t line_off;  /* byte offset of the line in d->text */
	size_t line_len;  /* bytes, without the '\n' */
};

/* Stores up to `max` matches (non-overlapping, in order) into hits and
 * returns how many were found (at most max + 1, so the caller knows the list
 * is truncated).  Polls cancel between matches; returns -KILN_E_CANCELLED
 * when set. */
int64_t kiln_cdoc_search(const struct kiln_cdoc *d, const struct kiln_cquery *q, struct kiln_chit *hits,
			 size_t max, const kiln_cancel *cancel);

#endif
