/*
 * Text actions: text.short_long and text.stats, with Python's str.split()
 * semantics (include/kiln/text.h).
 *
 * The text comes from exactly one source: `text` (inline), the request's
 * attachment, a loaded corpus's document (`corpus` with `document`), or
 * `path` (a file under path_roots).  text_input_pick() chooses the source on
 * the loop thread and points at the bytes already in memory; only a file is
 * left for text_input_load() to read on a worker.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "action.h"
#include "config.h"
#include "corpus_store.h"
#include "job.h"
#include "kiln/error.h"
#include "kiln/text.h"
#include "paths.h"

struct text_input {
	const char *where;           /* "args.text", "attachment", ... for errors */
	const char *path;            /* a file to read, in the request's args; else NULL */
	struct corpus_doc *doc;      /* a borrowed reference (corpus_store.h), or NULL */
	/* The text: in the args (which the request holds), the attachment or
	 * the document, or `owned` once the file is read. */
	const unsigned char *data;
	size_t len;
	unsigned char *owned;
};

struct text_req {
	int stats;                   /* text.stats (else text.short_long) */
	struct text_input in;
	struct kiln_text_opts opts;
	const char **ignore;         /* pointers into `args`, which we hold */
	size_t *ignore_len;
	json_t *args;
	size_t top_k;

	/* Results, from the worker. */
	int rc;
	char err[256];
	int bad_utf8;                /* rc is invalid_args for the byte at bad_offset */
	size_t bad_offset;
	struct kiln_text_counts counts;
	struct kiln_text_word *top;
	size_t ntop;
	double compute_ms;
};

/*
 * Chooses the input source (loop thread).  Exactly one of `text`, `path`,
 * `corpus` with `document` and an attachment must be given; `args` must
 * outlive `in`.  Returns 0 or fails the job and returns -1.
 */
static int text_input_pick(struct job *job, json_t *args, struct text_input *in)
{
	json_t *text = json_object_get(args, "text");
	json_t *path = json_object_get(args, "path");
	json_t *corpus = json_object_get(args, "corpus");
	json_t *document = json_object_get(args, "document");
	size_t attach_len = 0;
	const unsigned char *attached = job_attachment(job, &attach_len);
	int given = !!text + !!path + !!attached + !!corpus;

	if (!corpus != !document) {
		job_fail(job, -KILN_E_INVALID_ARGS, json_pack("{s:s}", "path", "args"),
			 "args.corpus and args.document go together");
		return -1;
	}
	if (given != 1) {
		job_fail(job, -KILN_E_INVALID_ARGS, json_pack("{s:s}", "path", "args"),
			 given ? "give only one of args.text, args.path, args.corpus and an attachment"
			       : "give the text as args.text, args.path, args.corpus with args.document "
				 "or an attachment");
		return -1;
	}
	if (corpus) {
		char err[256];
		int code;

		in->where = "args.document";
		in->doc = corpus_store_borrow(job_peer(job)->uid, json_string_value(corpus), json_string_value(document),
					      &code, err, sizeof(err));
		if (!in->doc) {
			job_fail(job, code, NULL, "%s", err);
			return -1;
		}
		in->data = corpus_doc_text(in->doc, &in->len);
	} else if (text) {
		in->where = "args.text";
		in->data = (const unsigned char *)json_string_value(text);
		in->len = json_string_length(text);
	} else if (path) {
		in->where = "args.path";
		in->path = json_string_value(path);
	} else {
		in->where = "attachment";
		in->data = attached;
		in->len = attach_len;
	}
	return 0;
}

/* Reads a file input (worker thread); other inputs are in memory already.
 * 0 or -KILN_E_* with a message. */
static int text_input_load(struct job *job, struct text_input *in, char *err, size_t errlen)
{
	const struct kiln_config *cfg = job_config(job);
	int rc;

	if (!in->path)
		return 0;
	rc = kiln_path_read(cfg, in->path, cfg->max_file_bytes, &in->owned, &in->len, err, errlen);
	in->data = in->owned;
	return rc;
}

static void text_input_release(struct text_input *in)
{
	corpus_doc_release(in->doc);
	free(in->owned);
}

static void req_free(struct text_req *r)
{
	text_input_release(&r->in);
	free(r->ignore);
	free(r->ignore_len);
	free(r->top);
	json_decref(r->args);
	free(r);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void text_work(struct job *job, void *arg)
{
	struct text_req *r = arg;
	const kiln_cancel *cancel = job_cancel_token(job);
	double t0;

	r->rc = text_input_load(job, &r->in, r->err, sizeof(r->err));
	if (r->rc)
		return;
	t0 = now_ms();
	r->rc = kiln_text_count(r->in.data, r->in.len, &r->opts, cancel, &r->counts, &r->bad_offset,
				r->err, sizeof(r->err));
	r->bad_utf8 = r->rc == -KILN_E_INVALID_ARGS;
	if (!r->rc && r->top_k)
		r->rc = kiln_text_top(r->in.data, r->in.len, r->top_k, cancel, &r->top, &r->ntop, r->err,
				      sizeof(r->err));
	r->compute_ms = now_ms() - t0;
}

static json_t *short_long_json(const struct kiln_text_counts *c)
{
	json_t *fraction = c->kept_words ? json_real((double)c->long_words / (double)c->kept_words)
					 : json_null();

	return json_pack("{s:I, s:I, s:o}", "words", (json_int_t)c->kept_words, "long_words",
			 (json_int_t)c->long_words, "fraction", fraction);
}

static json_t *top_json(const struct text_req *r)
{
	json_t *a = json_array();

	for (size_t i = 0; i < r->ntop; i++)
		json_array_append_new(a, json_pack("[s%, I]", (const char *)r->top[i].word, r->top[i].len,
						   (json_int_t)r->top[i].count));
	return a;
}

static void text_done(struct job *job, void *arg, int status)
{
	struct text_req *r = arg;
	const struct kiln_text_counts *c = &r->counts;
	json_t *data;

	if (status || job_cancelled(job)) {
		job_fail(job, -KILN_E_CANCELLED, NULL, "cancelled");
		goto out;
	}
	if (r->rc) {
		json_t *d = json_pack("{s:s}", "path", r->in.where);

		if (r->bad_utf8)
			json_object_set_new(d, "offset", json_integer((json_int_t)r->bad_offset));
		job_fail(job, r->rc, d, "%s: %s", r->in.where, r->err);
		goto out;
	}
	if (!r->stats) {
		data = short_long_json(c);
		json_object_set_new(data, "compute_ms", json_real(r->compute_ms));
		if (c->kept_words)
			job_succeed(job, data, "%llu of %llu words are longer than %llu code points",
				    (unsigned long long)c->long_words, (unsigned long long)c->kept_words,
				    (unsigned long long)r->opts.min_length);
		else
			job_succeed(job, data, "no words (after leaving out the ignored ones): fraction is null");
		goto out;
	}
	data = json_pack("{s:I, s:I, s:I, s:I, s:o, s:f}", "words", (json_int_t)c->words, "lines",
			 (json_int_t)c->lines, "code_points", (json_int_t)c->code_points, "bytes",
			 (json_int_t)c->bytes, "short_long", short_long_json(c), "compute_ms", r->compute_ms);
	if (r->top_k)
		json_object_set_new(data, "top", top_json(r));
	job_succeed(job, data, "%llu words, %llu lines, %llu code points", (unsigned long long)c->words,
		    (unsigned long long)c->lines, (unsigned long long)c->code_points);
out:
	req_free(r);
}

/* Collects the options from args (validated by the schema). */
static int req_options(struct text_req *r, json_t *args)
{
	json_t *ignore = json_object_get(args, "ignore");
	json_t *min_length = json_object_get(args, "min_length");
	json_t *top = json_object_get(args, "top");
	size_t i;
	json_t *w;

	kiln_text_opts_default(&r->opts);
	r->opts.lines = r->stats;
	if (min_length)
		r->opts.min_length = (uint64_t)json_integer_value(min_length);
	if (top)
		r->top_k = (size_t)json_integer_value(top);
	if (!ignore)
		return 0;
	r->opts.ignore_count = json_array_size(ignore);
	r->ignore = calloc(r->opts.ignore_count + 1, sizeof(*r->ignore));
	r->ignore_len = calloc(r->opts.ignore_count + 1, sizeof(*r->ignore_len));
	if (!r->ignore || !r->ignore_len)
		return -KILN_E_INTERNAL;
	json_array_foreach(ignore, i, w) {
		r->ignore[i] = json_string_value(w);
		r->ignore_len[i] = json_string_length(w);
	}
	r->opts.ignore = r->ignore;
	r->opts.ignore_len = r->ignore_len;
	return 0;
}

static void text_start(struct job *job, json_t *args, int stats)
{
	struct text_req *r = calloc(1, sizeof(*r));

	if (!r) {
		job_fail(job, -KILN_E_INTERNAL, NULL, "out of memory");
		return;
	}
	r->stats = stats;
	/* The ignore words, inline text and path point into args: keep it. */
	r->args = json_incref(args);
	if (req_options(r, args)) {
		job_fail(job, -KILN_E_INTERNAL, NULL, "out of memory");
		req_free(r);
		return;
	}
	if (text_input_pick(job, args, &r->in)) {
		req_free(r);
		return;
	}
	if (job_queue_work(job, text_work, text_done, r)) {
		job_fail(job, -KILN_E_INTERNAL, NULL, "cannot queue work");
		req_free(r);
	}
}

static void act_short_long(struct job *job, json_t *args)
{
	text_start(job, args, 0);
}

static void act_stats(struct job *job, json_t *args)
{
	text_start(job, args, 1);
}

#define INPUT_PROPS                                                                              \
	"\"text\":{\"type\":\"string\",\"description\":\"the text inline\"},"                    \
	"\"path\":{\"type\":\"string\",\"minLength\":1,"                                         \
	"\"description\":\"absolute file under path_roots (else send an attachment)\"},"         \
	"\"corpus\":{\"type\":\"string\",\"description\":\"a loaded corpus (with document)\"}," \
	"\"document\":{\"type\":\"string\",\"description\":\"a document of that corpus\"},"     \
	"\"min_length\":{\"type\":\"integer\",\"minimum\":0,\"default\":8,"                      \
	"\"description\":\"words with more code points than this are long\"},"                   \
	"\"ignore\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"maxItems\":100000,"    \
	"\"default\":[\"the\",\"a\"],\"description\":\"words left out (exact match)\"}"

#define SHORT_LONG_DATA                                                                          \
	"{\"type\":\"object\",\"properties\":{\"words\":{\"type\":\"integer\"},"                 \
	"\"long_words\":{\"type\":\"integer\"},"                                                 \
	"\"fraction\":{\"description\":\"long_words / words, null without words\"},"           \
	"\"compute_ms\":{\"type\":\"number\"}}}"

static const struct action text_actions[] = {
	{ "text.short_long",
	  "Fraction of words longer than min_length code points among those not in ignore "
	  "(Python str.split() semantics).",
	  "{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{" INPUT_PROPS "}}",
	  SHORT_LONG_DATA, act_short_long, ACTION_ATTACHMENT },
	{ "text.stats",
	  "Words, lines (len(str.splitlines())), code points, bytes, the short_long figures "
	  "and optionally the top k words.",
	  "{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{" INPUT_PROPS ","
	  "\"top\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":100000,"
	  "\"description\":\"also list the k most frequent words as [word, count]\"}}}",
	  "{\"type\":\"object\",\"properties\":{\"words\":{\"type\":\"integer\"},"
	  "\"lines\":{\"type\":\"integer\"},\"code_points\":{\"type\":\"integer\"},"
	  "\"bytes\":{\"type\":\"integer\"},\"short_long\":" SHORT_LONG_DATA ","
	  "\"top\":{\"type\":\"array\"},\"compute_ms\":{\"type\":\"number\"}}}",
	  act_stats, ACTION_ATTACHMENT },
};

const struct action_family family_text = {
	.name = "text",
	.actions = text_actions,
	.count = sizeof(text_actions) / sizeof(text_actions[0]),
};
