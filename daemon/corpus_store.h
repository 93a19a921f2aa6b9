/*
 * The loaded corpora (issue 5), shared by the act_corpus*.c files and, for
 * `{corpus, document}` inputs, by act_text.c.
 *
 * Ownership: a corpus belongs to the uid that loaded it, and names are per
 * owner: A's "diary" and B's "diary" are two corpora.  Every lookup takes
 * the owner, so another user's corpus is exactly as absent as a missing
 * one.  Only listing (corpus_store_list with owner NULL) spans owners, for
 * admins.
 *
 * Thread-safe: every function may be called from the loop or a worker.
 * Corpora and documents are reference counted, so a job that borrowed a
 * document keeps reading it safely while corpus.unload or a replacing
 * corpus.load runs; the text is wiped and freed when the last reference
 * goes.
 */
#ifndef KILND_CORPUS_STORE_H
#define KILND_CORPUS_STORE_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "kiln/corpus.h"

struct corpus_doc {
	atomic_int refs;
	char *name;            /* owned */
	struct kiln_cdoc cdoc; /* owned text in locked memory */
};

struct corpus {
	atomic_int refs;
	uid_t owner;               /* the uid that loaded it */
	char *name;                /* owned */
	struct corpus_doc **docs;  /* owned array; one reference each */
	size_t ndocs;
	size_t bytes;              /* plaintext bytes */
	size_t memory;             /* bytes held (text, folds, bookkeeping) */
	bool locked;               /* all text mlock()ed */
	double load_ms;
	double loaded_at;          /* Unix time */
	json_t *source;            /* {"format": ..., "kdf": ...}; owned */
};

/* --- For other families ---------------------------------------------------- */

/* Borrows one document of a loaded corpus.  Returns a new reference (release
 * with corpus_doc_release) or NULL with *code = -KILN_E_NOT_FOUND and a
 * message naming what is missing. */
struct corpus_doc *corpus_store_borrow(uid_t owner, const char *corpus, const char *document, int *code,
				       char *err, size_t errlen);
/* The document's UTF-8 text (valid, NUL-terminated, not secret-safe to log). */
const unsigned char *corpus_doc_text(const struct corpus_doc *d, size_t *len);
void corpus_doc_release(struct corpus_doc *d);

/* --- For act_corpus*.c ------------------------------------------------------ */

struct corpus_doc *corpus_doc_new(const char *name);
struct corpus *corpus_new(const char *name, uid_t owner);
void corpus_ref(struct corpus *c);
void corpus_unref(struct corpus *c);

/* owner's corpus `name` with a new reference, or NULL. */
struct corpus *corpus_store_get(uid_t owner, const char *name);
/*
 * The store never drops the last reference of a corpus it gives up (that
 * wipes all its text): it hands the reference to the caller, who releases
 * it off the event loop.
 */

/* Installs c under (c->owner, its name) if the memory of all corpora stays
 * within `budget` and that of its owner's within `per_uid`; takes over the
 * caller's reference on success, and *replaced gets the reference to the
 * owner's corpus of that name it replaced (or NULL).  -KILN_E_TOO_LARGE
 * otherwise, with *limit the config key exceeded. */
int corpus_store_put(struct corpus *c, size_t budget, size_t per_uid, struct corpus **replaced,
		     const char **limit, char *err, size_t errlen);
/* Removes owner's corpus `name` and returns its reference, or NULL. */
struct corpus *corpus_store_take(uid_t owner, const char *name);
/* New reference to a JSON array of summaries, sorted by owner and name:
 * owner's corpora, or every corpus for owner NULL. */
json_t *corpus_store_list(const uid_t *owner);
/* Bytes held by owner's corpora. */
size_t corpus_store_memory_of(uid_t owner);
/* {"UID": {"corpora": n, "memory_bytes": m}, ...} for stats.  New reference. */
json_t *corpus_store_per_uid(void);
json_t *corpus_summary(const struct corpus *c);
size_t corpus_store_memory(void);
size_t corpus_store_count(void);
/* Drops every corpus (shutdown). */
void corpus_store_clear(void);

#endif
