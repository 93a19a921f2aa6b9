/*
 * corpus.count, corpus.search and corpus.stats (issue 5): queries over a
 * loaded corpus, split over the thread pool.
 *
 * A query holds a reference on the corpus, so unload or replacement while
 * it runs is safe.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "act_corpus.h"
#include "config.h"
#include "corpus_store.h"
#include "job.h"
#include "kiln/corpus.h"
#include "kiln/error.h"
#include "kiln/text.h"

/* --- Parallel queries ------------------------------------------------------------ */

/* A query over a corpus split into parts of similar byte size, one work
 * item each; `finish` runs on the loop when all parts are done. */
struct query;
typedef void (*part_fn)(struct query *q, size_t part, size_t from, size_t to, const kiln_cancel *c);
typedef void (*finish_fn)(struct job *job, struct query *q);

struct query_part {
	size_t from, to;
};

struct query {
	struct corpus *c;          /* reference */
	struct query_part *parts;
	size_t nparts;
	part_fn run;
	finish_fn finish;
	void *state;               /* owned by the action, freed by finish or free_state */
	void (*free_state)(void *);
};

/* Drops the query and its corpus reference: on the pool if it is the last
 * one (a corpus unloaded or replaced while the query ran).  The job is
 * still alive: this runs before it finishes, or in its done callback. */
static void query_free(struct job *job, struct query *q)
{
	corpus_release(job, q->c);
	free(q->parts);
	free(q);
}

static void query_work(struct job *job, void *arg, unsigned part)
{
	struct query *q = arg;

	if (!job_cancelled(job))
		q->run(q, part, q->parts[part].from, q->parts[part].to, job_cancel_token(job));
}

static void query_done(struct job *job, void *arg, int status)
{
	struct query *q = arg;

	if (status == -KILN_E_INTERNAL) {
		q->free_state(q->state);
		job_fail(job, -KILN_E_INTERNAL, NULL, "cannot queue work");
	} else if (job_cancelled(job)) {
		q->free_state(q->state);
		job_fail(job, -KILN_E_CANCELLED, NULL, "cancelled");
	} else {
		q->finish(job, q);
	}
	query_free(job, q);
}

/* Splits c's documents into up to pool-size parts and queues them; on
 * failure finishes the job.  Takes over the corpus reference and `state`
 * is freed by `finish` (or here, with free_state, on failure). */
static void query_start(struct job *job, struct corpus *c, part_fn run, finish_fn finish, void *state,
			void (*free_state)(void *))
{
	struct query *q = calloc(1, sizeof *q);
	size_t parts = (size_t)job_parallelism();

	if (parts > c->ndocs)
		parts = c->ndocs ? c->ndocs : 1;
	if (!q || !(q->parts = calloc(parts, sizeof *q->parts))) {
		free(q);
		corpus_release(job, c);
		free_state(state);
		job_fail(job, -KILN_E_INTERNAL, NULL, "out of memory");
		return;
	}
	q->c = c;
	q->run = run;
	q->finish = finish;
	q->state = state;
	q->free_state = free_state;
	/* Cut where the running byte count crosses each share. */
	size_t from = 0, acc = 0;
	for (size_t i = 0; i < c->ndocs && q->nparts < parts; i++) {
		acc += c->docs[i]->cdoc.text_len + 1;
		if (acc * parts >= (c->bytes + c->ndocs) * (q->nparts + 1) || i + 1 == c->ndocs) {
			q->parts[q->nparts++] = (struct query_part){ from, i + 1 };
			from = i + 1;
		}
	}
	if (q->nparts == 0)
		q->parts[q->nparts++] = (struct query_part){ 0, 0 };
	if (job_queue_batch(job, (unsigned)q->nparts, query_work, query_done, q) != 0) {
		free_state(state);
		query_free(job, q);
		job_fail(job, -KILN_E_INTERNAL, NULL, "cannot queue work");
	}
}

/* Compiles the word(s) of args into queries; fails the job on error. */
static int compile_words(struct job *job, json_t *list, unsigned flags, struct kiln_cquery **qs)
{
	size_t i;
	json_t *w;
	char err[128];

	json_array_foreach(list, i, w) {
		int rc = kiln_cquery_new(json_string_value(w), json_string_length(w), flags, &qs[i], err,
					 sizeof err);
		if (rc) {
			job_fail(job, rc, json_pack("{s:I}", "index", (json_int_t)i), "word %zu: %s", i, err);
			return rc;
		}
	}
	return 0;
}

static bool icase_arg(json_t *args)
{
	const char *c = json_string_value(json_object_get(args, "case"));

	return c && strcmp(c, "insensitive") == 0;
}

/* --- corpus.count ------------------------------------------------------------------ */

struct count_state {
	json_t *words;             /* array of strings (reference) */
	bool icase;
	size_t nq;
	struct kiln_cquery **qs;
	uint64_t *counts;          /* [q * ndocs + doc] */
};

static void count_state_free(void *arg)
{
	struct count_state *s = arg;

	for (size_t i = 0; s && i < s->nq; i++)
		kiln_cquery_free(s->qs[i]);
	if (s) {
		free(s->qs);
		free(s->counts);
		json_decref(s->words);
	}
	free(s);
}

static void count_run(struct query *q, size_t part, size_t from, size_t to, const kiln_cancel *cancel)
{
	struct count_state *s = q->state;
	size_t nd = q->c->ndocs;

	(void)part;
	for (size_t d = from; d < to && !kiln_cancelled(cancel); d++)
		for (size_t w = 0; w < s->nq; w++)
			s->counts[w * nd + d] = kiln_cdoc_count(&q->c->docs[d]->cdoc, s->qs[w]);
}

static json_t *count_result(struct query *q, size_t w, uint64_t *total)
{
	struct count_state *s = q->state;
	json_t *docs = json_object();

	*total = 0;
	for (size_t d = 0; d < q->c->ndocs; d++) {
		uint64_t n = s->counts[w * q->c->ndocs + d];
		*total += n;
		json_object_set_new(docs, q->c->docs[d]->name, json_integer((json_int_t)n));
	}
	return docs;
}

static void count_finish(struct job *job, struct query *q)
{
	struct count_state *s = q->state;
	const char *cs = s->icase ? "insensitive" : "sensitive";
	uint64_t total, all = 0;
	json_t *data;

	/* One shape whether the request named `word` or `words`. */
	json_t *arr = json_array();
	for (size_t w = 0; w < s->nq; w++) {
		json_t *docs = count_result(q, w, &total);
		all += total;
		json_array_append_new(arr, json_pack("{s:O, s:I, s:o}", "word", json_array_get(s->words, w),
						     "total", (json_int_t)total, "documents", docs));
	}
	data = json_pack("{s:s, s:I, s:o}", "case", cs, "total", (json_int_t)all, "words", arr);
	count_state_free(s);
	job_succeed(job, data, "%llu matches", (unsigned long long)all);
}

void corpus_act_count(struct job *job, json_t *args)
{
	json_t *word = json_object_get(args, "word"), *words = json_object_get(args, "words");
	struct count_state *s;
	struct corpus *c;

	if (!word == !words) {
		job_fail(job, -KILN_E_INVALID_ARGS, NULL, "give word or words");
		return;
	}
	s = calloc(1, sizeof *s);
	if (!s) {
		job_fail(job, -KILN_E_INTERNAL, NULL, "out of memory");
		return;
	}
	s->words = word ? json_pack("[O]", word) : json_incref(words);
	s->icase = icase_arg(args);
	s->nq = json_array_size(s->words);
	s->qs = calloc(s->nq, sizeof *s->qs);
	if (!s->qs) {
		count_state_free(s);
		job_fail(job, -KILN_E_INTERNAL, NULL, "out of memory");
		return;
	}
	if (compile_words(job, s->words, KILN_CQ_WORD | (s->icase ? KILN_CQ_ICASE : 0), s->qs)) {
		count_state_free(s);
		return;
	}
	c = corpus_get_or_fail(job, args);
	if (!c) {
		count_state_free(s);
		return;
	}
	s->counts = calloc(s->nq * (c->ndocs ? c->ndocs : 1), sizeof *s->counts);
	if (!s->counts) {
		corpus_release(job, c);
		count_state_free(s);
		job_fail(job, -KILN_E_INTERNAL, NULL, "out of memory");
		return;
	}
	query_start(job, c, count_run, count_finish, s, count_state_free);
}

/* --- corpus.search ----------------------------------------------------------------- */

#define MAX_LINE_TEXT 1000

struct search_hit {
	size_t doc;
	struct kiln_chit h;
};

struct search_state {
	json_t *query;
	struct kiln_cquery *q;
	size_t max;
	struct search_hit **hits;  /* per part, max + 1 entries */
	size_t *nhits;             /* stored per part */
	uint64_t *total;           /* every match per part, stored or not */
	bool *more;                /* part found more than it stored */
	int *rc;
};

static void search_state_free(void *arg)
{
	struct search_state *s = arg;

	if (!s)
		return;
	kiln_cquery_free(s->q);
	for (size_t i = 0; s->hits && s->hits[i]; i++)
		free(s->hits[i]);
	free(s->hits);
	free(s->nhits);
	free(s->total);
	free(s->more);
	free(s->rc);
	json_decref(s->query);
	free(s);
}

static void search_run(struct query *q, size_t part, size_t from, size_t to, const kiln_cancel *cancel)
{
	struct search_state *s = q->state;
	struct kiln_chit *tmp = malloc((s->max + 1) * sizeof *tmp);
	struct search_hit *out = s->hits[part];
	size_t used = 0;

	if (!tmp) {
		s->rc[part] = -KILN_E_INTERNAL;
		return;
	}
	for (size_t d = from; d < to; d++) {
		const struct kiln_cdoc *doc = &q->c->docs[d]->cdoc;
		/* Past max_results the rest is only counted, for data.count. */
		if (s->more[part]) {
			if (kiln_cancelled(cancel)) {
				s->rc[part] = -KILN_E_CANCELLED;
				break;
			}
			s->total[part] += kiln_cdoc_count(doc, s->q);
			continue;
		}
		int64_t n = kiln_cdoc_search(doc, s->q, tmp, s->max - used, cancel);
		if (n < 0) {
			s->rc[part] = (int)n;
			break;
		}
		size_t stored = (size_t)n < s->max - used ? (size_t)n : s->max - used;
		for (size_t i = 0; i < stored; i++)
			out[used + i] = (struct search_hit){ d, tmp[i] };
		used += stored;
		if ((size_t)n > stored) {
			s->more[part] = true;
			s->total[part] += kiln_cdoc_count(doc, s->q);
		} else {
			s->total[part] += (uint64_t)n;
		}
	}
	s->nhits[part] = used;
	free(tmp);
}

/* The line, cut to MAX_LINE_TEXT bytes at a character boundary. */
static json_t *line_json(const struct kiln_cdoc *d, const struct kiln_chit *h)
{
	size_t n = h->line_len;

	if (n > MAX_LINE_TEXT) {
		n = MAX_LINE_TEXT;
		while (n > 0 && (d->text[h->line_off + n] & 0xc0) == 0x80)
			n--;
	}
	return json_stringn((const char *)d->text + h->line_off, n);
}

static void search_finish(struct job *job, struct query *q)
{
	struct search_state *s = q->state;
	json_t *results = json_array();
	bool truncated = false;
	uint64_t total = 0;

	for (size_t p = 0; p < q->nparts; p++) {
		if (s->rc[p]) {
			json_decref(results);
			job_fail(job, s->rc[p], NULL, "search failed");
			search_state_free(s);
			return;
		}
	}
	for (size_t p = 0; p < q->nparts; p++) {
		for (size_t i = 0; i < s->nhits[p]; i++) {
			if (json_array_size(results) == s->max) {
				truncated = true;
				break;
			}
			const struct search_hit *h = &s->hits[p][i];
			const struct corpus_doc *d = q->c->docs[h->doc];
			json_array_append_new(results,
					      json_pack("{s:s, s:I, s:I, s:o}", "document", d->name, "line",
							(json_int_t)h->h.line, "column", (json_int_t)h->h.column,
							"text", line_json(&d->cdoc, &h->h)));
		}
		truncated |= s->more[p];
		total += s->total[p];
	}
	size_t n = json_array_size(results);
	json_t *data = json_pack("{s:O, s:I, s:I, s:b, s:o}", "query", s->query, "count", (json_int_t)total,
				 "returned", (json_int_t)n, "truncated", truncated, "results", results);
	search_state_free(s);
	job_succeed(job, data, "%" PRIu64 " matches, %zu returned%s", total, n,
		    truncated ? " (truncated)" : "");
}

void corpus_act_search(struct job *job, json_t *args)
{
	json_t *query = json_object_get(args, "query"), *max = json_object_get(args, "max_results");
	struct search_state *s = calloc(1, sizeof *s);
	unsigned flags = icase_arg(args) ? KILN_CQ_ICASE : 0;
	char err[128];

	if (!s) {
		job_fail(job, -KILN_E_INTERNAL, NULL, "out of memory");
		return;
	}
	if (json_is_true(json_object_get(args, "whole_word")))
		flags |= KILN_CQ_WORD;
	s->query = json_incref(query);
	s->max = max ? (size_t)json_integer_value(max) : 100;
	int rc = kiln_cquery_new(json_string_value(query), json_string_length(query), flags, &s->q, err,
				 sizeof err);
	if (rc) {
		search_state_free(s);
		job_fail(job, rc, NULL, "%s", err);
		return;
	}
	struct corpus *c = corpus_get_or_fail(job, args);
	if (!c) {
		search_state_free(s);
		return;
	}
	size_t parts = (size_t)job_parallelism();
	s->hits = calloc(parts + 1, sizeof *s->hits); /* NULL-terminated */
	s->nhits = calloc(parts, sizeof *s->nhits);
	s->total = calloc(parts, sizeof *s->total);
	s->more = calloc(parts, sizeof *s->more);
	s->rc = calloc(parts, sizeof *s->rc);
	bool ok = s->hits && s->nhits && s->total && s->more && s->rc;
	for (size_t i = 0; ok && i < parts; i++)
		ok = (s->hits[i] = malloc((s->max + 1) * sizeof **s->hits)) != NULL;
	if (!ok) {
		corpus_release(job, c);
		search_state_free(s);
		job_fail(job, -KILN_E_INTERNAL, NULL, "out of memory");
		return;
	}
	query_start(job, c, search_run, search_finish, s, search_state_free);
}

/* --- corpus.stats ------------------------------------------------------------------ */

struct stats_state {
	struct kiln_text_opts opts;
	const char **ignore;
	struct kiln_text_counts *counts; /* per document */
	int *rc;                         /* per document */
	json_t *ignore_json;
};

static void stats_state_free(void *arg)
{
	struct stats_state *s = arg;

	if (!s)
		return;
	free(s->ignore);
	free(s->counts);
	free(s->rc);
	json_decref(s->ignore_json);
	free(s);
}

static void stats_run(struct query *q, size_t part, size_t from, size_t to, const kiln_cancel *cancel)
{
	struct stats_state *s = q->state;
	char err[128];

	(void)part;
	for (size_t d = from; d < to; d++) {
		const struct kiln_cdoc *cd = &q->c->docs[d]->cdoc;
		s->rc[d] = kiln_text_count(cd->text, cd->text_len, &s->opts, cancel, &s->counts[d], NULL,
					   err, sizeof err);
		if (s->rc[d])
			break;
	}
}

static json_t *counts_json(const struct kiln_text_counts *c)
{
	json_t *o = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "bytes", (json_int_t)c->bytes,
			      "code_points", (json_int_t)c->code_points, "words", (json_int_t)c->words,
			      "kept_words", (json_int_t)c->kept_words, "long_words",
			      (json_int_t)c->long_words, "lines", (json_int_t)c->lines);

	json_object_set_new(o, "short_long", c->kept_words ? json_real((double)c->long_words / (double)c->kept_words)
							   : json_null());
	return o;
}

static void stats_finish(struct job *job, struct query *q)
{
	struct stats_state *s = q->state;
	struct kiln_text_counts total = { 0 };
	json_t *docs = json_object();

	for (size_t d = 0; d < q->c->ndocs; d++) {
		if (s->rc[d]) {
			json_decref(docs);
			job_fail(job, s->rc[d], NULL, "stats of '%s' failed", q->c->docs[d]->name);
			stats_state_free(s);
			return;
		}
		const struct kiln_text_counts *c = &s->counts[d];
		total.bytes += c->bytes;
		total.code_points += c->code_points;
		total.words += c->words;
		total.kept_words += c->kept_words;
		total.long_words += c->long_words;
		total.lines += c->lines;
		json_object_set_new(docs, q->c->docs[d]->name, counts_json(c));
	}
	json_t *data = json_pack("{s:s, s:I, s:O, s:o, s:o}", "name", q->c->name, "min_length",
				 (json_int_t)s->opts.min_length, "ignore", s->ignore_json, "total",
				 counts_json(&total), "documents", docs);
	stats_state_free(s);
	job_succeed(job, data, "stats of %zu documents", q->c->ndocs);
}

void corpus_act_stats(struct job *job, json_t *args)
{
	struct stats_state *s = calloc(1, sizeof *s);
	json_t *ml = json_object_get(args, "min_length"), *ig = json_object_get(args, "ignore");

	if (!s) {
		job_fail(job, -KILN_E_INTERNAL, NULL, "out of memory");
		return;
	}
	kiln_text_opts_default(&s->opts);
	s->opts.lines = 1;
	if (ml)
		s->opts.min_length = (uint64_t)json_integer_value(ml);
	if (ig) {
		size_t i;
		json_t *v;
		s->ignore_json = json_incref(ig);
		s->ignore = calloc(json_array_size(ig) + 1, sizeof *s->ignore);
		if (!s->ignore) {
			stats_state_free(s);
			job_fail(job, -KILN_E_INTERNAL, NULL, "out of memory");
			return;
		}
		json_array_foreach(ig, i, v)
			s->ignore[i] = json_string_value(v);
		s->opts.ignore = s->ignore;
		s->opts.ignore_count = json_array_size(ig);
	} else {
		s->ignore_json = json_array();
		for (size_t i = 0; i < s->opts.ignore_count; i++)
			json_array_append_new(s->ignore_json, json_string(s->opts.ignore[i]));
	}
	struct corpus *c = corpus_get_or_fail(job, args);
	if (!c) {
		stats_state_free(s);
		return;
	}
	s->counts = calloc(c->ndocs + 1, sizeof *s->counts);
	s->rc = calloc(c->ndocs + 1, sizeof *s->rc);
	if (!s->counts || !s->rc) {
		corpus_release(job, c);
		stats_state_free(s);
		job_fail(job, -KILN_E_INTERNAL, NULL, "out of memory");
		return;
	}
	query_start(job, c, stats_run, stats_finish, s, stats_state_free);
}
