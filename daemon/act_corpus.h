/*
 * Private to the corpus family (act_corpus*.c): the handlers the family
 * table in act_corpus.c lists, and the corpus reference helpers they share.
 * Loop thread only.
 */
#ifndef KILND_ACT_CORPUS_H
#define KILND_ACT_CORPUS_H

#include <jansson.h>

struct corpus;
struct job;

/* Handlers (action.h's contract), one file per role. */
void corpus_act_load(struct job *job, json_t *args);   /* act_corpus_load.c */
void corpus_act_seal(struct job *job, json_t *args);   /* act_corpus_seal.c */
void corpus_act_count(struct job *job, json_t *args);  /* act_corpus_query.c */
void corpus_act_search(struct job *job, json_t *args);
void corpus_act_stats(struct job *job, json_t *args);

/* Looks up the corpus named in args.name with a new reference, or fails
 * the job (not_found) and returns NULL. */
struct corpus *corpus_get_or_fail(struct job *job, json_t *args);

/* Drops a job's reference to a corpus (NULL: nothing).  The last one (a
 * corpus unloaded or replaced meanwhile, or never installed) wipes and
 * unmaps all its text, so it is dropped in a work item rather than on the
 * loop.  Call before the job replies: a job finished with no work pending
 * is freed at once, one with work queued lives until that work is done. */
void corpus_release(struct job *job, struct corpus *c);

#endif
