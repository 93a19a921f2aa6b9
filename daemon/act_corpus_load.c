/*
 * corpus.load (issue 5): decrypts openssl-enc, kiln sealed or plain UTF-8
 * files in parallel into locked memory as a named corpus.
 *
 * The load runs in stages on the thread pool: one work item lists the
 * files and reads the key file; pool-size items read the files (and undo
 * `openssl enc -a` base64); with "detect", one item finds the openssl enc
 * parameters on the first openssl file; one item derives the sealed-format
 * keys (one KDF per distinct salt); pool-size items decrypt, validate UTF-8
 * and build the case-insensitive fold.  The corpus is installed only when
 * every file succeeded and the memory budget allows.
 *
 * A passphrase, raw key or key file means the files are encrypted: under
 * format auto a file that is not recognisably encrypted fails with its
 * reason instead of loading as plain text, unless allow_plain is set.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "act_corpus.h"
#include "config.h"
#include "corpus_files.h"
#include "corpus_store.h"
#include "job.h"
#include "kiln/corpus.h"
#include "kiln/error.h"
#include "kiln/seal.h"
#include "log.h"
#include "paths.h"

enum format { FMT_AUTO, FMT_OSSLENC, FMT_SEALED, FMT_PLAIN };

static const char *const format_names[] = { "auto", "openssl-enc", "sealed", "plain" };

static int format_parse(const char *s)
{
	for (int i = 0; s && i < 4; i++)
		if (strcmp(s, format_names[i]) == 0)
			return i;
	return FMT_AUTO;
}

struct load_file {
	unsigned char *data; /* file contents (malloc); plaintext for FMT_PLAIN */
	size_t len;
	enum format fmt;
	size_t group;        /* sealed: index into keys */
	double kdf_ms;       /* openssl-enc: its own key derivation */
	struct corpus_doc *doc;
};

struct load_ctx;
typedef void (*stage_fn)(struct job *job, struct load_ctx *L);

struct load_ctx {
	char *name;
	struct file_source src;
	enum format fmt;
	/* openssl enc: the parameters (holding the raw key, wiped at free),
	 * which of them the request fixed, and detection. */
	struct kiln_osslenc_params ossl;
	unsigned ossl_fixed;
	bool detect, detected, allow_plain;
	unsigned detect_tried;
	struct file_list files;
	struct load_file *f;
	struct kiln_seal_params *groups;
	struct kiln_seal_key *keys; /* secmem, ngroups entries */
	size_t ngroups, keys_cap;
	/* The running stage: its work items pull file indexes from `next`;
	 * `then` runs on the loop when the last one is done. */
	atomic_size_t next;
	atomic_size_t done;
	stage_fn then;
	struct corpus *replaced;    /* reference: the corpus this load replaced */
	double start_ms, kdf_ms, read_ms;
	int code;                   /* whole-load failure */
	char err[256];
};

static void load_ctx_free(struct load_ctx *L)
{
	for (size_t i = 0; L->f && i < L->files.count; i++) {
		if (L->f[i].data) {
			/* Plain files hold plaintext; ciphertext wiping is harmless. */
			OPENSSL_cleanse(L->f[i].data, L->f[i].len);
			free(L->f[i].data);
		}
		corpus_doc_release(L->f[i].doc);
	}
	free(L->f);
	OPENSSL_cleanse(&L->ossl, sizeof L->ossl);
	file_list_free(&L->files);
	file_source_free(&L->src);
	if (L->keys)
		kiln_secmem_free(L->keys, L->keys_cap);
	free(L->groups);
	free(L->name);
	corpus_unref(L->replaced);
	free(L);
}

static void load_ctx_free_any(void *L)
{
	load_ctx_free(L);
}

/* Frees a finished load on the pool: it may hold decrypted documents of a
 * failed load and the corpus it replaced, whose wiping takes a while. */
static void load_ctx_release(struct job *job, struct load_ctx *L)
{
	job_release_on_pool(job, load_ctx_free_any, L);
}

/* A passphrase, key file or raw key was given. */
static bool have_secret(const struct load_ctx *L)
{
	return L->src.pass.buf || L->ossl.raw;
}

/* Replaces a file in `openssl enc -a` base64 form by its decoding when that
 * is openssl output (or when a secret says the files are encrypted).
 * 0 or -KILN_E_INTERNAL. */
static int undo_base64(const struct load_ctx *L, struct load_file *f)
{
	uint8_t *dec;
	size_t n;
	int rc = kiln_osslenc_unbase64(f->data, f->len, &dec, &n);

	if (rc <= 0)
		return rc;
	if (!have_secret(L) && !(n >= 8 && memcmp(dec, KILN_OSSLENC_MAGIC, 8) == 0)) {
		free(dec);
		return 0;
	}
	OPENSSL_cleanse(f->data, f->len);
	free(f->data);
	f->data = dec;
	f->len = n;
	return 0;
}

/* The format of a file under format auto. */
static enum format detect(const struct load_ctx *L, const unsigned char *d, size_t len)
{
	if (len >= 8 && memcmp(d, KILN_OSSLENC_MAGIC, 8) == 0)
		return FMT_OSSLENC;
	if (len >= 8 && memcmp(d, KILN_SEAL_MAGIC, 8) == 0)
		return FMT_SEALED;
	/* With a secret everything is encrypted: a headerless file is
	 * -nosalt/-S/-K output or fails as not encrypted, with its reason. */
	return have_secret(L) && !L->allow_plain ? FMT_OSSLENC : FMT_PLAIN;
}

/* Groups the sealed files by KDF parameters and salt and derives each
 * group's key once. */
static void derive_sealed_keys(struct load_ctx *L)
{
	size_t n = L->files.count;
	char err[200];

	L->groups = calloc(n ? n : 1, sizeof *L->groups);
	if (!L->groups) {
		L->code = -KILN_E_INTERNAL;
		snprintf(L->err, sizeof L->err, "out of memory");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct load_file *f = &L->f[i];
		struct file_result *r = &L->files.res[i];
		struct kiln_seal_params p;
		size_t plain, g;
		if (r->code || f->fmt != FMT_SEALED)
			continue;
		r->code = kiln_seal_parse(f->data, f->len, &p, &plain, r->reason, sizeof r->reason);
		if (r->code)
			continue;
		for (g = 0; g < L->ngroups; g++)
			if (kiln_seal_params_equal(&L->groups[g], &p))
				break;
		if (g == L->ngroups)
			L->groups[L->ngroups++] = p;
		f->group = g;
	}
	if (!L->ngroups)
		return;
	bool locked;
	L->keys_cap = L->ngroups * sizeof *L->keys;
	L->keys = kiln_secmem_alloc(L->keys_cap, &locked);
	if (!L->keys) {
		L->code = -KILN_E_INTERNAL;
		snprintf(L->err, sizeof L->err, "out of memory");
		return;
	}
	double t0 = corpus_now_ms();
	for (size_t g = 0; g < L->ngroups; g++) {
		int rc = kiln_seal_derive(&L->groups[g], L->src.pass.buf, L->src.pass.len, &L->keys[g],
					  err, sizeof err);
		for (size_t i = 0; rc && i < n; i++) {
			struct file_result *r = &L->files.res[i];
			if (!r->code && L->f[i].fmt == FMT_SEALED && L->f[i].group == g) {
				r->code = rc;
				snprintf(r->reason, sizeof r->reason, "%s", err);
			}
		}
	}
	L->kdf_ms = corpus_now_ms() - t0;
}

static void load_finish(struct job *job, struct load_ctx *L);

/* The smaller of the daemon-wide and the per-user corpus memory limit. */
static size_t memory_limit(const struct kiln_config *cfg, const char **key)
{
	bool mine = cfg->corpus_memory_per_uid < cfg->corpus_memory_budget;

	*key = mine ? "corpus_memory_per_uid" : "corpus_memory_budget";
	return mine ? cfg->corpus_memory_per_uid : cfg->corpus_memory_budget;
}

static void stage_failed(struct job *job, struct load_ctx *L)
{
	L->code = -KILN_E_INTERNAL;
	snprintf(L->err, sizeof L->err, "cannot queue work");
	load_finish(job, L);
}

/* The last work item of a stage is done.  Work that never ran means the
 * job was cancelled: checked here. */
static void stage_done(struct job *job, void *arg, int status)
{
	struct load_ctx *L = arg;

	if (status == -KILN_E_INTERNAL && !L->code)
		stage_failed(job, L);
	else if (job_cancelled(job) || L->code)
		load_finish(job, L);
	else
		L->then(job, L);
}

/* Runs `work` as `items` work items (they share the files through L->next),
 * then `then`. */
static void run_stage(struct job *job, struct load_ctx *L, job_batch_fn work, size_t items,
		      stage_fn then)
{
	atomic_store(&L->next, 0);
	L->then = then;
	if (job_queue_batch(job, (unsigned)items, work, stage_done, L) != 0)
		stage_failed(job, L);
}

/* Work items for a per-file stage: one per pool thread, at most one per file. */
static size_t stage_items(size_t files)
{
	size_t p = (size_t)job_parallelism();

	return p < files ? p : files;
}

/* Stage 1 (one item): the file list and the key file. */
static void load_list_work(struct job *job, void *arg, unsigned item)
{
	struct load_ctx *L = arg;
	const struct kiln_config *cfg = job_config(job);

	(void)item;
	L->code = file_source_open(cfg, &L->src, "load", &L->files, L->err, sizeof L->err);
	if (L->code)
		return;
	/* Every document costs at least a page of locked memory. */
	const char *key;
	size_t limit = memory_limit(cfg, &key);
	if (L->files.count > limit / kiln_secmem_size(1)) {
		L->code = -KILN_E_TOO_LARGE;
		snprintf(L->err, sizeof L->err, "%zu files cannot fit %s (%zu)", L->files.count, key, limit);
		return;
	}
	L->f = calloc(L->files.count, sizeof *L->f);
	if (!L->f) {
		L->code = -KILN_E_INTERNAL;
		snprintf(L->err, sizeof L->err, "out of memory");
	}
}

/* Stage 2 (pool-size items): read the files. */
static void load_read_work(struct job *job, void *arg, unsigned item)
{
	struct load_ctx *L = arg;
	const struct kiln_config *cfg = job_config(job);
	size_t i;

	(void)item;
	while ((i = atomic_fetch_add(&L->next, 1)) < L->files.count && !job_cancelled(job)) {
		struct load_file *f = &L->f[i];
		struct file_result *r = &L->files.res[i];
		if (r->code)
			continue;
		r->code = kiln_path_read(cfg, L->files.path[i], cfg->max_file_bytes, &f->data, &f->len,
					 r->reason, sizeof r->reason);
		if (!r->code && (L->fmt == FMT_AUTO || L->fmt == FMT_OSSLENC) && undo_base64(L, f)) {
			r->code = -KILN_E_INTERNAL;
			snprintf(r->reason, sizeof r->reason, "out of memory");
		}
		if (!r->code)
			f->fmt = L->fmt == FMT_AUTO ? detect(L, f->data, f->len) : L->fmt;
	}
}

/* Stage 3 (one item, only with sealed files): one KDF per parameter set. */
static void load_derive_work(struct job *job, void *arg, unsigned item)
{
	(void)job;
	(void)item;
	derive_sealed_keys(arg);
	corpus_openssl_thread_done();
}

static void decrypt_one(struct load_ctx *L, size_t i)
{
	struct load_file *f = &L->f[i];
	struct file_result *r = &L->files.res[i];
	size_t cap, n = 0;
	unsigned char *buf;
	bool locked;

	switch (f->fmt) {
	case FMT_OSSLENC:
		/* Stream modes: as long as the ciphertext. */
		cap = f->len + 1;
		break;
	case FMT_SEALED:
		cap = f->len - KILN_SEAL_HEADER - KILN_SEAL_TAG + 1;
		break;
	default:
		cap = f->len + 1;
		break;
	}
	buf = kiln_secmem_alloc(cap, &locked);
	if (!buf) {
		r->code = -KILN_E_INTERNAL;
		snprintf(r->reason, sizeof r->reason, "out of memory");
		return;
	}
	if (f->fmt == FMT_OSSLENC) {
		r->code = kiln_osslenc_decrypt_timed(f->data, f->len, L->src.pass.buf, L->src.pass.len, &L->ossl,
						     buf, &n, &f->kdf_ms, r->reason, sizeof r->reason);
	} else if (f->fmt == FMT_SEALED) {
		n = cap - 1;
		r->code = kiln_seal_open(&L->keys[f->group], f->data, f->len, buf, r->reason,
					 sizeof r->reason);
	} else {
		n = f->len;
		memcpy(buf, f->data, n);
	}
	if (r->code == 0) {
		f->doc = corpus_doc_new(L->files.name[i]);
		if (!f->doc) {
			r->code = -KILN_E_INTERNAL;
			snprintf(r->reason, sizeof r->reason, "out of memory");
		} else {
			r->code = kiln_cdoc_init(&f->doc->cdoc, buf, n, cap, locked, r->reason,
						 sizeof r->reason);
			/* openssl enc has no authentication: garbage that happens
			 * to end in valid padding, or any stream-mode garbage, is
			 * caught here. */
			if (r->code == -KILN_E_INVALID_ARGS && f->fmt == FMT_OSSLENC) {
				char desc[160];
				kiln_osslenc_params_describe(&L->ossl, desc, sizeof desc);
				snprintf(r->reason, sizeof r->reason,
					 "does not decrypt with %s (not UTF-8 text after decryption): wrong %s "
					 "or options", desc, L->ossl.raw ? "key" : "passphrase");
			}
		}
	}
	if (r->code) {
		kiln_secmem_free(buf, cap);
		corpus_doc_release(f->doc);
		f->doc = NULL;
	}
	OPENSSL_cleanse(f->data, f->len);
	free(f->data);
	f->data = NULL;
}

/* Stage 4 (pool-size items): decrypt, validate, fold. */
static void load_decrypt_work(struct job *job, void *arg, unsigned item)
{
	struct load_ctx *L = arg;
	size_t i;

	(void)item;
	while ((i = atomic_fetch_add(&L->next, 1)) < L->files.count && !job_cancelled(job)) {
		if (!L->files.res[i].code)
			decrypt_one(L, i);
		job_progress(job, atomic_fetch_add(&L->done, 1) + 1, L->files.count);
	}
	corpus_openssl_thread_done();
}

static void after_derive(struct job *job, struct load_ctx *L)
{
	run_stage(job, L, load_decrypt_work, stage_items(L->files.count), load_finish);
}

/* Stage 2b (one item, with "detect"): the openssl enc parameters, found on
 * the first openssl file; the decrypt stage then uses them for all. */
static void load_detect_work(struct job *job, void *arg, unsigned item)
{
	struct load_ctx *L = arg;
	struct kiln_osslenc_params found;

	(void)job;
	(void)item;
	for (size_t i = 0; i < L->files.count; i++) {
		struct load_file *f = &L->f[i];
		struct file_result *r = &L->files.res[i];
		size_t cap = f->len + 1, n;
		bool locked;
		if (r->code || f->fmt != FMT_OSSLENC)
			continue;
		uint8_t *buf = kiln_secmem_alloc(cap, &locked);
		if (!buf) {
			L->code = -KILN_E_INTERNAL;
			snprintf(L->err, sizeof L->err, "out of memory");
			break;
		}
		r->code = kiln_osslenc_detect(f->data, f->len, L->src.pass.buf, L->src.pass.len, &L->ossl,
					      L->ossl_fixed, &found, buf, &n, &L->detect_tried, r->reason,
					      sizeof r->reason);
		kiln_secmem_free(buf, cap);
		if (!r->code) {
			L->ossl = found;
			L->detected = true;
			OPENSSL_cleanse(&found, sizeof found);
		}
		break;
	}
	corpus_openssl_thread_done();
}

static void after_detect(struct job *job, struct load_ctx *L)
{
	bool sealed = false;

	for (size_t i = 0; i < L->files.count; i++)
		sealed |= !L->files.res[i].code && L->f[i].fmt == FMT_SEALED;
	if (sealed)
		run_stage(job, L, load_derive_work, 1, after_derive);
	else
		after_derive(job, L);
}

static void after_read(struct job *job, struct load_ctx *L)
{
	const struct kiln_config *cfg = job_config(job);
	size_t total = 0;
	bool encrypted = false, sealed = false;

	for (size_t i = 0; i < L->files.count; i++) {
		if (L->files.res[i].code)
			continue;
		total += kiln_secmem_size(L->f[i].len);
		encrypted |= L->f[i].fmt != FMT_PLAIN;
		sealed |= L->f[i].fmt == FMT_SEALED;
	}
	L->read_ms = corpus_now_ms() - L->start_ms;
	/* Text is at most as large as its file; refuse early what cannot fit. */
	const char *key;
	size_t limit = memory_limit(cfg, &key);
	if (total > limit) {
		L->code = -KILN_E_TOO_LARGE;
		snprintf(L->err, sizeof L->err, "the files hold %zu bytes, over %s (%zu)", total, key, limit);
	} else if (encrypted && !have_secret(L)) {
		L->code = -KILN_E_INVALID_ARGS;
		snprintf(L->err, sizeof L->err, "encrypted files need a passphrase, key_file or key");
	} else if (sealed && L->ossl.raw) {
		L->code = -KILN_E_INVALID_ARGS;
		snprintf(L->err, sizeof L->err, "kiln sealed files need a passphrase or key_file, not a raw key");
	}
	if (L->code)
		load_finish(job, L);
	else if (L->detect && !L->ossl.raw)
		run_stage(job, L, load_detect_work, 1, after_detect);
	else
		after_detect(job, L);
}

static void after_list(struct job *job, struct load_ctx *L)
{
	run_stage(job, L, load_read_work, stage_items(L->files.count), after_read);
}

/* The openssl enc parameters used, as the reply reports them. */
static json_t *openssl_json(const struct load_ctx *L)
{
	const struct kiln_osslenc_params *p = &L->ossl;
	json_t *o = json_pack("{s:s, s:b}", "cipher", p->cipher, "detected", L->detected);

	if (p->raw) {
		json_object_set_new(o, "key", json_string("raw"));
		return o;
	}
	json_object_set_new(o, "digest", json_string(p->digest));
	json_object_set_new(o, "kdf", json_string(p->kdf == KILN_OSSLENC_PBKDF2 ? "pbkdf2" : "legacy"));
	if (p->kdf == KILN_OSSLENC_PBKDF2)
		json_object_set_new(o, "iterations", json_integer(p->iter));
	if (L->detect)
		json_object_set_new(o, "tried", json_integer(L->detect_tried));
	return o;
}

static json_t *load_source(const struct load_ctx *L)
{
	json_t *s = json_pack("{s:s}", "format", format_names[L->fmt]);
	json_t *formats = json_object();

	for (size_t i = 0; i < L->files.count; i++) {
		const char *k = format_names[L->f[i].fmt];
		json_object_set_new(formats, k,
				    json_integer(json_integer_value(json_object_get(formats, k)) + 1));
	}
	json_object_set_new(s, "files", formats);
	if (json_object_get(formats, "openssl-enc"))
		json_object_set_new(s, "openssl", openssl_json(L));
	if (L->ngroups) {
		json_t *g = json_array();
		for (size_t i = 0; i < L->ngroups; i++)
			json_array_append_new(g, corpus_seal_params_json(&L->groups[i]));
		json_object_set_new(s, "sealed_kdf", g);
	}
	return s;
}

/* How many failing files the message names; detail.failed has them all. */
#define MESSAGE_FAILURES 3

/* "2 of 5 files failed; corpus 'x' unchanged: a.txt: <reason>; b: <reason>",
 * and, when a file did not decrypt, what openssl enc does not record. */
static void failure_message(const struct load_ctx *L, json_t *failed, char *msg, size_t msglen)
{
	size_t nf = json_array_size(failed), used;
	bool undecrypted = false;
	json_t *e;
	size_t i;

	used = (size_t)snprintf(msg, msglen, "%zu of %zu files failed; corpus '%s' unchanged", nf,
				L->files.count, L->name);
	json_array_foreach(failed, i, e) {
		const char *reason = json_string_value(json_object_get(e, "reason"));
		undecrypted |= reason && strstr(reason, "does not decrypt") != NULL;
		if (i < MESSAGE_FAILURES && used < msglen)
			used += (size_t)snprintf(msg + used, msglen - used, "%s %s: %s", i ? ";" : ":",
						 json_string_value(json_object_get(e, "document")), reason);
	}
	if (nf > MESSAGE_FAILURES && used < msglen)
		used += (size_t)snprintf(msg + used, msglen - used, "; and %zu more (detail.failed)",
					 nf - MESSAGE_FAILURES);
	if (undecrypted && used < msglen)
		snprintf(msg + used, msglen - used,
			 ". openssl enc records none of the cipher, digest, key derivation or iteration count in "
			 "the file: pass the ones it was written with (cipher, digest, kdf, iterations; nosalt, "
			 "salt, key and iv for -nosalt, -S and -K files), or detect: true to try the common ones");
}

/* Installs the corpus if every file succeeded.  Returns 0 with the reply's
 * data in *out, or -KILN_E_* with the error detail (or NULL); msg gets the
 * reply message either way. */
static int load_result(struct job *job, struct load_ctx *L, json_t **out, char *msg, size_t msglen)
{
	const struct kiln_config *cfg = job_config(job);
	size_t n = L->files.count;
	int first;
	char err[256];

	if (job_cancelled(job)) {
		snprintf(msg, msglen, "cancelled");
		return -KILN_E_CANCELLED;
	}
	if (L->code) {
		snprintf(msg, msglen, "%s", L->err);
		return L->code;
	}
	json_t *failed = file_list_failures(&L->files, &first);
	if (first) {
		failure_message(L, failed, msg, msglen);
		*out = json_pack("{s:o, s:i}", "failed", failed, "files", (json_int_t)n);
		return first;
	}
	struct corpus *c = corpus_new(L->name, job_peer(job)->uid);
	if (!c || !(c->docs = calloc(n, sizeof *c->docs))) {
		corpus_release(job, c);
		json_decref(failed);
		snprintf(msg, msglen, "out of memory");
		return -KILN_E_INTERNAL;
	}
	for (size_t i = 0; i < n; i++) {
		struct corpus_doc *d = L->f[i].doc;
		L->f[i].doc = NULL;
		c->docs[c->ndocs++] = d;
		c->bytes += d->cdoc.text_len;
		c->memory += kiln_cdoc_memory(&d->cdoc) + sizeof *d + strlen(d->name) + 1;
		c->locked &= d->cdoc.locked;
	}
	c->load_ms = corpus_now_ms() - L->start_ms;
	c->loaded_at = (double)time(NULL);
	c->source = load_source(L);
	size_t bytes = c->bytes, memory = c->memory;
	bool locked = c->locked;
	json_t *source = json_incref(c->source);
	const char *limit;
	int rc = corpus_store_put(c, cfg->corpus_memory_budget, cfg->corpus_memory_per_uid, &L->replaced,
				  &limit, err, sizeof err);
	if (rc) {
		corpus_release(job, c);
		json_decref(source);
		json_decref(failed);
		snprintf(msg, msglen, "%s", err);
		if (limit)
			*out = json_pack("{s:s}", "limit", limit);
		return rc;
	}
	if (!locked)
		log_warn("corpus '%s': mlock failed (RLIMIT_MEMLOCK too low?); its text may be swapped",
			 L->name);
	/* Sealed groups share one derivation; each openssl-enc file has its own. */
	double kdf_ms = L->kdf_ms;
	for (size_t i = 0; i < n; i++)
		kdf_ms += L->f[i].kdf_ms;
	*out = json_pack("{s:s, s:I, s:I, s:I, s:f, s:f, s:f, s:b, s:o, s:o}", "name", L->name,
			 "documents", (json_int_t)n, "bytes", (json_int_t)bytes, "memory_bytes",
			 (json_int_t)memory, "load_ms", corpus_now_ms() - L->start_ms, "read_ms", L->read_ms,
			 "kdf_ms", kdf_ms, "locked", locked, "source", source, "failed", failed);
	snprintf(msg, msglen, "loaded %zu documents (%zu bytes) as '%s'", n, bytes, L->name);
	return 0;
}

static void load_finish(struct job *job, struct load_ctx *L)
{
	json_t *out = NULL;
	char msg[1536];
	int code = load_result(job, L, &out, msg, sizeof msg);

	/* Queued before the reply: a job finished with no work pending is
	 * freed at once. */
	load_ctx_release(job, L);
	if (code)
		job_fail(job, code, out, "%s", msg);
	else
		job_succeed(job, out, "%s", msg);
}

/* Reads a hex argument into out; wipes jansson's copy when `secret`. */
static int hex_arg(json_t *args, const char *key, bool secret, uint8_t *out, size_t max, size_t *len,
		   bool *given, char *err, size_t errlen)
{
	json_t *v = json_object_get(args, key);
	char msg[96];
	int rc;

	*given = v != NULL;
	if (!v)
		return 0;
	rc = kiln_osslenc_hex(json_string_value(v), out, max, len, msg, sizeof msg);
	if (secret)
		OPENSSL_cleanse((char *)json_string_value(v), json_string_length(v));
	if (rc)
		snprintf(err, errlen, "args.%s: %s", key, msg);
	return rc;
}

/* The openssl enc arguments into L->ossl and L->ossl_fixed. */
static int parse_openssl(struct load_ctx *L, json_t *args, char *err, size_t errlen)
{
	struct kiln_osslenc_params *p = &L->ossl;
	json_t *iter = json_object_get(args, "iterations");
	const char *kdf = json_string_value(json_object_get(args, "kdf"));
	const char *cipher = json_string_value(json_object_get(args, "cipher"));
	const char *digest = json_string_value(json_object_get(args, "digest"));
	bool has_iv;
	int rc;

	kiln_osslenc_params_default(p);
	if (cipher)
		snprintf(p->cipher, sizeof p->cipher, "%s", cipher + (cipher[0] == '-'));
	if (digest)
		snprintf(p->digest, sizeof p->digest, "%s", digest);
	/* -iter implies -pbkdf2, as in openssl enc. */
	if (kdf && !strcmp(kdf, "legacy"))
		p->kdf = KILN_OSSLENC_LEGACY;
	if (iter)
		p->iter = (unsigned)json_integer_value(iter);
	L->ossl_fixed = (cipher ? KILN_OSSLENC_FIX_CIPHER : 0) | (digest ? KILN_OSSLENC_FIX_DIGEST : 0) |
			(kdf || iter ? KILN_OSSLENC_FIX_KDF : 0) | (iter ? KILN_OSSLENC_FIX_ITER : 0);
	p->nosalt = json_is_true(json_object_get(args, "nosalt"));
	L->detect = json_is_true(json_object_get(args, "detect"));
	L->allow_plain = json_is_true(json_object_get(args, "allow_plain"));
	if ((rc = hex_arg(args, "key", true, p->key, sizeof p->key, &p->keylen, &p->raw, err, errlen)) ||
	    (rc = hex_arg(args, "iv", true, p->iv, sizeof p->iv, &p->ivlen, &has_iv, err, errlen)) ||
	    (rc = hex_arg(args, "salt", false, p->salt, sizeof p->salt, &(size_t){0}, &p->has_salt, err, errlen)))
		return rc;
	if (has_iv && !p->raw) {
		snprintf(err, errlen, "args.iv goes with args.key (openssl enc -K ... -iv ...)");
		return -KILN_E_INVALID_ARGS;
	}
	if (p->raw && (L->src.pass.buf || json_object_get(args, "key_file"))) {
		snprintf(err, errlen, "give a passphrase (or key_file) or a raw key, not both");
		return -KILN_E_INVALID_ARGS;
	}
	rc = kiln_osslenc_params_check(p, err, errlen);
	return rc;
}

void corpus_act_load(struct job *job, json_t *args)
{
	struct load_ctx *L = calloc(1, sizeof *L);
	char err[256];
	int rc;

	if (!L) {
		job_fail(job, -KILN_E_INTERNAL, NULL, "out of memory");
		return;
	}
	L->start_ms = corpus_now_ms();
	rc = file_source_parse(args, &L->src, err, sizeof err);
	L->name = corpus_arg_dup(args, "name", NULL);
	if (!rc && !L->name) {
		rc = -KILN_E_INTERNAL;
		snprintf(err, sizeof err, "out of memory");
	}
	if (!rc)
		rc = parse_openssl(L, args, err, sizeof err);
	if (rc) {
		load_ctx_free(L);
		job_fail(job, rc, NULL, "%s", err);
		return;
	}
	L->fmt = format_parse(json_string_value(json_object_get(args, "format")));
	run_stage(job, L, load_list_work, 1, after_list);
}
