/*
 * corpus.* actions (issue 5): load encrypted or plain corpora into locked
 * memory once, then count, search and measure them.
 *
 * corpus.load runs in two stages on the thread pool: one work item lists
 * and reads the files, reads the key file and derives the sealed-format
 * keys (one KDF per distinct salt); then one work item per file decrypts,
 * validates UTF-8 and builds the case-insensitive fold.  The corpus is
 * installed only when every file succeeded and the memory budget allows.
 *
 * Queries hold a reference on the corpus, so unload or replacement while a
 * query runs is safe; they split the documents over the thread pool.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "action.h"
#include "config.h"
#include "corpus_store.h"
#include "job.h"
#include "kiln/corpus.h"
#include "kiln/error.h"
#include "kiln/seal.h"
#include "kiln/text.h"
#include "log.h"
#include "paths.h"

#define MAX_KEY_FILE 4096

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* OpenSSL keeps per-thread state (error queue, random generator) that the
 * pool threads would otherwise hold until exit, unfreed; work items that
 * used OpenSSL release it when done. */
static void openssl_thread_done(void)
{
	OPENSSL_thread_stop();
}

/* Drops a reference to a corpus.  The last one (a corpus unloaded or
 * replaced meanwhile, or never installed) wipes and unmaps all its text, so
 * it is dropped in a work item rather than on the loop.  Call before the
 * job replies: a job finished with no work pending is freed at once, one
 * with work queued lives until that work is done. */
static void corpus_unref_any(void *c)
{
	corpus_unref(c);
}

static void corpus_release(struct job *job, struct corpus *c)
{
	/* With other holders this is not the last reference (only a racing
	 * release could make it so, and then the loop wipes: rare, and still
	 * correct), and a work item would cost more than it saves. */
	if (!c)
		return;
	if (atomic_load(&c->refs) > 1)
		corpus_unref(c);
	else
		job_release_on_pool(job, corpus_unref_any, c);
}

/* --- Secrets ---------------------------------------------------------------- */

/* A passphrase in locked memory. */
struct secret {
	char *buf;
	size_t len, cap;
};

static void secret_free(struct secret *s)
{
	if (s->buf)
		kiln_secmem_free(s->buf, s->cap);
	memset(s, 0, sizeof *s);
}

static int secret_set(struct secret *s, const char *p, size_t len)
{
	bool locked;

	s->cap = len + 1;
	s->buf = kiln_secmem_alloc(s->cap, &locked);
	if (!s->buf)
		return -KILN_E_INTERNAL;
	memcpy(s->buf, p, len);
	s->len = len;
	return 0;
}

/* Copies args.passphrase into locked memory and wipes jansson's copy, so the
 * passphrase does not outlive the request in ordinary heap memory. */
static int take_passphrase(json_t *args, struct secret *s)
{
	json_t *p = json_object_get(args, "passphrase");

	if (!p)
		return 0;
	int rc = secret_set(s, json_string_value(p), json_string_length(p));
	OPENSSL_cleanse((char *)json_string_value(p), json_string_length(p));
	return rc;
}

/* The key file's first line, as `openssl enc -pass file:` reads it. */
static int read_key_file(const struct kiln_config *cfg, const char *path, struct secret *s,
			 char *err, size_t errlen)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	int rc = kiln_path_read(cfg, path, MAX_KEY_FILE, &buf, &len, err, errlen);

	if (rc)
		return rc;
	size_t n = 0;
	while (n < len && buf[n] != '\n' && buf[n] != '\r')
		n++;
	rc = secret_set(s, (const char *)buf, n);
	OPENSSL_cleanse(buf, len);
	free(buf);
	if (rc)
		snprintf(err, errlen, "out of memory");
	return rc;
}

/* --- File lists ---------------------------------------------------------------- */

struct file_result {
	int code;          /* 0 or -KILN_E_* */
	char reason[200];
};

struct file_list {
	char **path; /* absolute, as given or dir + "/" + name */
	char **name; /* document name: base name */
	struct file_result *res; /* count entries once listed (file_source_open) */
	size_t count;
};

static void file_list_free(struct file_list *l)
{
	for (size_t i = 0; i < l->count; i++) {
		free(l->path[i]);
		free(l->name[i]);
	}
	free(l->path);
	free(l->name);
	free(l->res);
	memset(l, 0, sizeof *l);
}

static int file_list_add(struct file_list *l, char *path, const char *name)
{
	char **p = realloc(l->path, (l->count + 1) * sizeof *p);
	if (p)
		l->path = p;
	char **n = realloc(l->name, (l->count + 1) * sizeof *n);
	if (n)
		l->name = n;
	char *nm = strdup(name);
	if (!p || !n || !nm) {
		free(path);
		free(nm);
		return -KILN_E_INTERNAL;
	}
	l->path[l->count] = path;
	l->name[l->count] = nm;
	l->count++;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Regular files of `dir` matching `glob` (no hidden files), sorted.  The
 * directory must lie under path_roots; each file is checked again when
 * read. */
static int list_dir(const struct kiln_config *cfg, const char *dir, const char *glob,
		    struct file_list *l, char *err, size_t errlen)
{
	char **names = NULL;
	size_t n = 0;
	DIR *d = NULL;
	struct dirent *e;
	int fd, rc;

	/* Listed through a descriptor opened beneath its root: the names are
	 * that directory's, whatever the path leads to later, and each file
	 * is resolved beneath the root again when read. */
	fd = kiln_path_opendir(cfg, dir, err, errlen);
	if (fd < 0)
		return fd;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return -KILN_E_INTERNAL;
	}
	while ((e = readdir(d)) != NULL) {
		struct stat st;
		if (fnmatch(glob, e->d_name, FNM_PERIOD) != 0)
			continue;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
			continue;
		char **nn = realloc(names, (n + 1) * sizeof *nn);
		if (!nn || !(nn[n] = strdup(e->d_name))) {
			names = nn ? nn : names;
			snprintf(err, errlen, "out of memory");
			rc = -KILN_E_INTERNAL;
			goto out;
		}
		names = nn;
		n++;
	}
	if (n)
		qsort(names, n, sizeof *names, cmp_str);
	rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		char *p;
		if (asprintf(&p, "%s/%s", dir, names[i]) < 0)
			rc = -KILN_E_INTERNAL;
		else
			rc = file_list_add(l, p, names[i]);
	}
	if (rc)
		snprintf(err, errlen, "out of memory");
out:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(d);
	return rc;
}

static int list_paths(json_t *paths, struct file_list *l, char *err, size_t errlen)
{
	size_t i;
	json_t *v;

	json_array_foreach(paths, i, v) {
		const char *p = json_string_value(v);
		const char *slash = strrchr(p, '/');
		char *copy = strdup(p);
		if (!copy || file_list_add(l, copy, slash ? slash + 1 : p)) {
			snprintf(err, errlen, "out of memory");
			return -KILN_E_INTERNAL;
		}
	}
	return 0;
}

static int cmp_name_index(const void *a, const void *b, void *names)
{
	char **n = names;
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	int r = strcmp(n[x], n[y]);

	return r ? r : (x > y) - (x < y);
}

/* Fails every file whose document name an earlier file already has. */
static int mark_duplicates(struct file_list *l)
{
	size_t n = l->count, *idx = malloc(n * sizeof *idx);

	if (!idx)
		return -KILN_E_INTERNAL;
	for (size_t i = 0; i < n; i++)
		idx[i] = i;
	qsort_r(idx, n, sizeof *idx, cmp_name_index, l->name);
	/* Sorted by (name, index): the first of each run of equal names is
	 * the one kept. */
	for (size_t i = 1, first = idx[0]; i < n; i++) {
		size_t dup = idx[i];
		if (strcmp(l->name[first], l->name[dup]) != 0) {
			first = dup;
			continue;
		}
		l->res[dup].code = -KILN_E_INVALID_ARGS;
		snprintf(l->res[dup].reason, sizeof l->res[dup].reason,
			 "duplicate document name (also %s)", l->path[first]);
	}
	free(idx);
	return 0;
}

/* --- File sources: the args corpus.load and corpus.seal share ------------------- */

struct file_source {
	json_t *paths;       /* owned reference, or NULL */
	char *dir, *glob, *key_file;
	struct secret pass;  /* args.passphrase, or the key file's once opened */
};

static void file_source_free(struct file_source *src)
{
	json_decref(src->paths);
	free(src->dir);
	free(src->glob);
	free(src->key_file);
	secret_free(&src->pass);
	memset(src, 0, sizeof *src);
}

static char *dup_arg(json_t *args, const char *key, const char *dflt)
{
	json_t *v = json_object_get(args, key);

	if (!v && !dflt)
		return NULL;
	return strdup(v ? json_string_value(v) : dflt);
}

/* On the loop: paths or dir + glob, and passphrase or key_file.  The
 * passphrase is moved to locked memory whatever the outcome.  Returns 0 or
 * -KILN_E_* with err. */
static int file_source_parse(json_t *args, struct file_source *src, char *err, size_t errlen)
{
	bool both = json_object_get(args, "passphrase") && json_object_get(args, "key_file");

	if (take_passphrase(args, &src->pass))
		goto oom;
	if (both) {
		snprintf(err, errlen, "give passphrase or key_file, not both");
		return -KILN_E_INVALID_ARGS;
	}
	if (json_object_get(args, "glob") && !json_object_get(args, "dir")) {
		snprintf(err, errlen, "glob needs dir");
		return -KILN_E_INVALID_ARGS;
	}
	src->dir = dup_arg(args, "dir", NULL);
	src->glob = dup_arg(args, "glob", "*");
	src->key_file = dup_arg(args, "key_file", NULL);
	src->paths = json_incref(json_object_get(args, "paths"));
	if (src->glob)
		return 0;
oom:
	snprintf(err, errlen, "out of memory");
	return -KILN_E_INTERNAL;
}

/* On a worker: lists the files (`verb` names the action in the error for
 * none), gives each a result with duplicate names already failed, and
 * reads the key file. */
static int file_source_open(const struct kiln_config *cfg, struct file_source *src,
			    const char *verb, struct file_list *files, char *err, size_t errlen)
{
	int rc;

	if (src->dir)
		rc = list_dir(cfg, src->dir, src->glob, files, err, errlen);
	else
		rc = list_paths(src->paths, files, err, errlen);
	if (rc)
		return rc;
	if (files->count == 0) {
		snprintf(err, errlen, "no files to %s (0 files matched)", verb);
		return -KILN_E_INVALID_ARGS;
	}
	if (src->key_file) {
		rc = read_key_file(cfg, src->key_file, &src->pass, err, errlen);
		if (rc)
			return rc;
	}
	files->res = calloc(files->count, sizeof *files->res);
	if (!files->res || mark_duplicates(files)) {
		snprintf(err, errlen, "out of memory");
		return -KILN_E_INTERNAL;
	}
	return 0;
}

/* --- Failures ------------------------------------------------------------------ */

/* Bytes of s that jansson accepts: reasons quote paths cut to
 * sizeof(reason) bytes, possibly inside a UTF-8 sequence, and file names
 * need not be UTF-8; json_pack would fail and the entry would be lost. */
static size_t utf8_len(const char *s)
{
	return kiln_utf8_valid_prefix((const uint8_t *)s, strlen(s));
}

static json_t *failure_json(const char *name, const char *path, const struct file_result *r)
{
	return json_pack("{s:s%, s:s%, s:s, s:s%}", "document", name, utf8_len(name), "path", path,
			 utf8_len(path), "code", kiln_err_name(r->code), "reason", r->reason, utf8_len(r->reason));
}

/* The failed files of l, in list order; *first gets the first one's code
 * (0 when none failed). */
static json_t *failures_json(const struct file_list *l, int *first)
{
	json_t *failed = json_array();

	*first = 0;
	for (size_t i = 0; i < l->count; i++) {
		if (!l->res[i].code)
			continue;
		if (!*first)
			*first = l->res[i].code;
		json_array_append_new(failed, failure_json(l->name[i], l->path[i], &l->res[i]));
	}
	return failed;
}

/* --- corpus.load ------------------------------------------------------------------ */

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
	struct corpus_doc *doc;
};

struct load_ctx;
typedef void (*stage_fn)(struct job *job, struct load_ctx *L);

struct load_ctx {
	char *name;
	struct file_source src;
	enum format fmt;
	enum kiln_osslenc_kdf kdf;
	unsigned iter;
	struct file_list files;
	struct load_file *f;
	struct kiln_seal_params *groups;
	struct kiln_seal_key *keys; /* secmem, ngroups entries */
	size_t ngroups, keys_cap;
	/* The running stage: `pending` work items pull file indexes from
	 * `next`; `then` runs on the loop when the last one is done. */
	size_t pending;
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

static enum format detect(const unsigned char *d, size_t len)
{
	if (len >= 8 && memcmp(d, KILN_OSSLENC_MAGIC, 8) == 0)
		return FMT_OSSLENC;
	if (len >= 8 && memcmp(d, KILN_SEAL_MAGIC, 8) == 0)
		return FMT_SEALED;
	return FMT_PLAIN;
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
	double t0 = now_ms();
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
	L->kdf_ms = now_ms() - t0;
}

static void load_finish(struct job *job, struct load_ctx *L);

static void stage_done(struct job *job, void *arg, int status)
{
	struct load_ctx *L = arg;

	(void)status; /* work that never ran means the job was cancelled: checked next */
	if (--L->pending)
		return;
	if (job_cancelled(job) || L->code)
		load_finish(job, L);
	else
		L->then(job, L);
}

/* Runs `work` as `items` work items (they share the files through L->next),
 * then `then`. */
static void run_stage(struct job *job, struct load_ctx *L, job_work_fn work, size_t items,
		      stage_fn then)
{
	atomic_store(&L->next, 0);
	L->then = then;
	L->pending = items;
	for (size_t i = 0; i < items; i++) {
		if (job_queue_work(job, work, stage_done, L) != 0) {
			L->code = -KILN_E_INTERNAL;
			snprintf(L->err, sizeof L->err, "cannot queue work");
			L->pending -= items - i;
			if (L->pending == 0)
				load_finish(job, L);
			return;
		}
	}
}

/* Work items for a per-file stage: one per pool thread, at most one per file. */
static size_t stage_items(size_t files)
{
	size_t p = (size_t)config_pool_threads();

	return p < files ? p : files;
}

/* Stage 1 (one item): the file list and the key file. */
static void load_list_work(struct job *job, void *arg)
{
	struct load_ctx *L = arg;
	const struct kiln_config *cfg = job_config(job);

	L->code = file_source_open(cfg, &L->src, "load", &L->files, L->err, sizeof L->err);
	if (L->code)
		return;
	/* Every document costs at least a page of locked memory. */
	if (L->files.count > cfg->corpus_memory_budget / kiln_secmem_size(1)) {
		L->code = -KILN_E_TOO_LARGE;
		snprintf(L->err, sizeof L->err, "%zu files cannot fit corpus_memory_budget (%zu)",
			 L->files.count, cfg->corpus_memory_budget);
		return;
	}
	L->f = calloc(L->files.count, sizeof *L->f);
	if (!L->f) {
		L->code = -KILN_E_INTERNAL;
		snprintf(L->err, sizeof L->err, "out of memory");
	}
}

/* Stage 2 (pool-size items): read the files. */
static void load_read_work(struct job *job, void *arg)
{
	struct load_ctx *L = arg;
	const struct kiln_config *cfg = job_config(job);
	size_t i;

	while ((i = atomic_fetch_add(&L->next, 1)) < L->files.count && !job_cancelled(job)) {
		struct load_file *f = &L->f[i];
		struct file_result *r = &L->files.res[i];
		if (r->code)
			continue;
		r->code = kiln_path_read(cfg, L->files.path[i], cfg->max_file_bytes, &f->data, &f->len,
					 r->reason, sizeof r->reason);
		if (!r->code)
			f->fmt = L->fmt == FMT_AUTO ? detect(f->data, f->len) : L->fmt;
	}
}

/* Stage 3 (one item, only with sealed files): one KDF per parameter set. */
static void load_derive_work(struct job *job, void *arg)
{
	(void)job;
	derive_sealed_keys(arg);
	openssl_thread_done();
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
		cap = f->len > KILN_OSSLENC_HEADER ? f->len - KILN_OSSLENC_HEADER + 1 : 1;
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
		r->code = kiln_osslenc_decrypt(f->data, f->len, L->src.pass.buf, L->src.pass.len,
					       L->kdf, L->iter, buf, &n, r->reason, sizeof r->reason);
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
			/* CBC has no authentication: garbage that happens to end
			 * in valid padding is caught here. */
			if (r->code == -KILN_E_INVALID_ARGS && f->fmt == FMT_OSSLENC)
				snprintf(r->reason, sizeof r->reason,
					 "wrong passphrase or corrupted file (not UTF-8 after decryption)");
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
static void load_decrypt_work(struct job *job, void *arg)
{
	struct load_ctx *L = arg;
	size_t i;

	while ((i = atomic_fetch_add(&L->next, 1)) < L->files.count && !job_cancelled(job)) {
		if (!L->files.res[i].code)
			decrypt_one(L, i);
		job_progress(job, atomic_fetch_add(&L->done, 1) + 1, L->files.count);
	}
	openssl_thread_done();
}

static void after_derive(struct job *job, struct load_ctx *L)
{
	run_stage(job, L, load_decrypt_work, stage_items(L->files.count), load_finish);
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
	L->read_ms = now_ms() - L->start_ms;
	/* Text is at most as large as its file; refuse early what cannot fit. */
	if (total > cfg->corpus_memory_budget) {
		L->code = -KILN_E_TOO_LARGE;
		snprintf(L->err, sizeof L->err,
			 "the files hold %zu bytes, over corpus_memory_budget (%zu)", total,
			 cfg->corpus_memory_budget);
	} else if (encrypted && !L->src.pass.buf) {
		L->code = -KILN_E_INVALID_ARGS;
		snprintf(L->err, sizeof L->err, "encrypted files need a passphrase or key_file");
	}
	if (L->code)
		load_finish(job, L);
	else if (sealed)
		run_stage(job, L, load_derive_work, 1, after_derive);
	else
		after_derive(job, L);
}

static void after_list(struct job *job, struct load_ctx *L)
{
	run_stage(job, L, load_read_work, stage_items(L->files.count), after_read);
}

/* A sealed format's KDF parameters as corpus.load and corpus.seal report them. */
static json_t *seal_params_json(const struct kiln_seal_params *p)
{
	if (p->kdf == KILN_SEAL_KDF_SCRYPT)
		return json_pack("{s:s, s:i, s:i, s:i}", "kdf", "scrypt", "log2_n", p->log2_n, "r", p->r,
				 "p", p->p);
	return json_pack("{s:s, s:i}", "kdf", "pbkdf2-sha256", "iterations", p->iter);
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
		json_object_set_new(s, "openssl_kdf",
				    L->kdf == KILN_OSSLENC_PBKDF2
					    ? json_pack("{s:s, s:i}", "kdf", "pbkdf2-sha256", "iterations", L->iter)
					    : json_pack("{s:s}", "kdf", "evp-bytestokey-sha256"));
	if (L->ngroups) {
		json_t *g = json_array();
		for (size_t i = 0; i < L->ngroups; i++)
			json_array_append_new(g, seal_params_json(&L->groups[i]));
		json_object_set_new(s, "sealed_kdf", g);
	}
	return s;
}

/* Installs the corpus if every file succeeded.  Returns 0 with the reply's
 * data in *out, or a KILN_E_* code with the error detail (or NULL); msg gets
 * the reply message either way. */
static int load_result(struct job *job, struct load_ctx *L, json_t **out, char *msg, size_t msglen)
{
	const struct kiln_config *cfg = job_config(job);
	size_t n = L->files.count;
	int first;
	char err[256];

	if (job_cancelled(job)) {
		snprintf(msg, msglen, "cancelled");
		return KILN_E_CANCELLED;
	}
	if (L->code) {
		snprintf(msg, msglen, "%s", L->err);
		return -L->code;
	}
	json_t *failed = failures_json(&L->files, &first);
	if (first) {
		snprintf(msg, msglen, "%zu of %zu files failed; corpus '%s' unchanged",
			 json_array_size(failed), n, L->name);
		*out = json_pack("{s:o, s:i}", "failed", failed, "files", (json_int_t)n);
		return -first;
	}
	struct corpus *c = corpus_new(L->name);
	if (!c || !(c->docs = calloc(n, sizeof *c->docs))) {
		corpus_release(job, c);
		json_decref(failed);
		snprintf(msg, msglen, "out of memory");
		return KILN_E_INTERNAL;
	}
	for (size_t i = 0; i < n; i++) {
		struct corpus_doc *d = L->f[i].doc;
		L->f[i].doc = NULL;
		c->docs[c->ndocs++] = d;
		c->bytes += d->cdoc.text_len;
		c->memory += kiln_cdoc_memory(&d->cdoc) + sizeof *d + strlen(d->name) + 1;
		c->locked &= d->cdoc.locked;
	}
	c->load_ms = now_ms() - L->start_ms;
	c->loaded_at = (double)time(NULL);
	c->source = load_source(L);
	size_t bytes = c->bytes, memory = c->memory;
	bool locked = c->locked;
	json_t *source = json_incref(c->source);
	int rc = corpus_store_put(c, cfg->corpus_memory_budget, &L->replaced, err, sizeof err);
	if (rc) {
		corpus_release(job, c);
		json_decref(source);
		json_decref(failed);
		snprintf(msg, msglen, "%s", err);
		return -rc;
	}
	if (!locked)
		log_warn("corpus '%s': mlock failed (RLIMIT_MEMLOCK too low?); its text may be swapped",
			 L->name);
	*out = json_pack("{s:s, s:I, s:I, s:I, s:f, s:f, s:f, s:b, s:o, s:o}", "name", L->name,
			 "documents", (json_int_t)n, "bytes", (json_int_t)bytes, "memory_bytes",
			 (json_int_t)memory, "load_ms", now_ms() - L->start_ms, "read_ms", L->read_ms,
			 "kdf_ms", L->kdf_ms, "locked", locked, "source", source, "failed", failed);
	snprintf(msg, msglen, "loaded %zu documents (%zu bytes) as '%s'", n, bytes, L->name);
	return 0;
}

static void load_finish(struct job *job, struct load_ctx *L)
{
	json_t *out = NULL;
	char msg[512];
	int code = load_result(job, L, &out, msg, sizeof msg);

	/* Queued before the reply: a job finished with no work pending is
	 * freed at once. */
	load_ctx_release(job, L);
	if (code)
		job_fail(job, code, out, "%s", msg);
	else
		job_succeed(job, out, "%s", msg);
}

static void act_load(struct job *job, json_t *args)
{
	struct load_ctx *L = calloc(1, sizeof *L);
	json_t *iter = json_object_get(args, "iterations");
	const char *kdf = json_string_value(json_object_get(args, "kdf"));
	char err[128];
	int rc;

	if (!L) {
		job_fail(job, KILN_E_INTERNAL, NULL, "out of memory");
		return;
	}
	L->start_ms = now_ms();
	rc = file_source_parse(args, &L->src, err, sizeof err);
	L->name = dup_arg(args, "name", NULL);
	if (!rc && !L->name) {
		rc = -KILN_E_INTERNAL;
		snprintf(err, sizeof err, "out of memory");
	}
	if (rc) {
		load_ctx_free(L);
		job_fail(job, -rc, NULL, "%s", err);
		return;
	}
	L->fmt = format_parse(json_string_value(json_object_get(args, "format")));
	L->kdf = kdf && strcmp(kdf, "legacy") == 0 ? KILN_OSSLENC_LEGACY : KILN_OSSLENC_PBKDF2;
	L->iter = iter ? (unsigned)json_integer_value(iter) : KILN_OSSLENC_DEFAULT_ITER;
	run_stage(job, L, load_list_work, 1, after_list);
}

/* --- Parallel queries ------------------------------------------------------------ */

/* A query over a corpus split into parts of similar byte size, one work
 * item each; `finish` runs on the loop when all parts are done. */
struct query;
typedef void (*part_fn)(struct query *q, size_t part, size_t from, size_t to, const kiln_cancel *c);
typedef void (*finish_fn)(struct job *job, struct query *q);

struct query_part {
	struct query *q;
	size_t index, from, to;
};

struct query {
	struct corpus *c;          /* reference */
	struct query_part *parts;
	size_t nparts, pending;
	part_fn run;
	finish_fn finish;
	void *state;               /* owned by the action, freed by finish or free_state */
	void (*free_state)(void *);
	bool failed;               /* a part could not be queued */
};

/* The job may be gone (a finished job with no work pending is freed), so
 * the reference is dropped here; only a corpus unloaded or replaced while
 * the query ran is wiped on the loop by this. */
static void query_free(struct query *q)
{
	corpus_unref(q->c);
	free(q->parts);
	free(q);
}

static void query_work(struct job *job, void *arg)
{
	struct query_part *p = arg;

	if (!job_cancelled(job))
		p->q->run(p->q, p->index, p->from, p->to, job_cancel_token(job));
}

static void query_done(struct job *job, void *arg, int status)
{
	struct query_part *p = arg;
	struct query *q = p->q;

	(void)status;
	if (--q->pending)
		return;
	if (q->failed) {
		q->free_state(q->state);
		job_fail(job, KILN_E_INTERNAL, NULL, "cannot queue work");
	} else if (job_cancelled(job)) {
		q->free_state(q->state);
		job_fail(job, KILN_E_CANCELLED, NULL, "cancelled");
	} else {
		q->finish(job, q);
	}
	query_free(q);
}

/* Looks up the corpus named in args, or fails the job. */
static struct corpus *get_corpus(struct job *job, json_t *args)
{
	const char *name = json_string_value(json_object_get(args, "name"));
	struct corpus *c = corpus_store_get(name);

	if (!c)
		job_fail(job, KILN_E_NOT_FOUND, NULL, "no corpus named '%s'", name);
	return c;
}

/* Splits c's documents into up to pool-size parts and queues them; on
 * failure finishes the job.  Takes over the corpus reference and `state`
 * is freed by `finish` (or here, with free_state, on failure). */
static void query_start(struct job *job, struct corpus *c, part_fn run, finish_fn finish, void *state,
			void (*free_state)(void *))
{
	struct query *q = calloc(1, sizeof *q);
	size_t parts = (size_t)config_pool_threads();

	if (parts > c->ndocs)
		parts = c->ndocs ? c->ndocs : 1;
	if (!q || !(q->parts = calloc(parts, sizeof *q->parts))) {
		free(q);
		corpus_release(job, c);
		free_state(state);
		job_fail(job, KILN_E_INTERNAL, NULL, "out of memory");
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
			q->parts[q->nparts] = (struct query_part){ q, q->nparts, from, i + 1 };
			q->nparts++;
			from = i + 1;
		}
	}
	if (q->nparts == 0)
		q->parts[q->nparts++] = (struct query_part){ q, 0, 0, 0 };
	q->pending = q->nparts;
	for (size_t i = 0; i < q->nparts; i++) {
		if (job_queue_work(job, query_work, query_done, &q->parts[i]) != 0) {
			/* Parts already queued finish the job when they are done. */
			q->pending -= q->nparts - i;
			q->failed = true;
			if (i == 0) {
				free_state(state);
				query_free(q);
				job_fail(job, KILN_E_INTERNAL, NULL, "cannot queue work");
			}
			return;
		}
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
			job_fail(job, -rc, json_pack("{s:I}", "index", (json_int_t)i), "word %zu: %s", i, err);
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
	bool single;
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

	if (s->single) {
		json_t *docs = count_result(q, 0, &total);
		data = json_pack("{s:O, s:s, s:I, s:o}", "word", json_array_get(s->words, 0), "case", cs,
				 "total", (json_int_t)total, "documents", docs);
		all = total;
	} else {
		json_t *arr = json_array();
		for (size_t w = 0; w < s->nq; w++) {
			json_t *docs = count_result(q, w, &total);
			all += total;
			json_array_append_new(arr, json_pack("{s:O, s:I, s:o}", "word",
							     json_array_get(s->words, w), "total",
							     (json_int_t)total, "documents", docs));
		}
		data = json_pack("{s:s, s:I, s:o}", "case", cs, "total", (json_int_t)all, "words", arr);
	}
	count_state_free(s);
	job_succeed(job, data, "%llu matches", (unsigned long long)all);
}

static void act_count(struct job *job, json_t *args)
{
	json_t *word = json_object_get(args, "word"), *words = json_object_get(args, "words");
	struct count_state *s;
	struct corpus *c;

	if (!word == !words) {
		job_fail(job, KILN_E_INVALID_ARGS, NULL, "give word or words");
		return;
	}
	s = calloc(1, sizeof *s);
	if (!s) {
		job_fail(job, KILN_E_INTERNAL, NULL, "out of memory");
		return;
	}
	s->single = word != NULL;
	s->words = word ? json_pack("[O]", word) : json_incref(words);
	s->icase = icase_arg(args);
	s->nq = json_array_size(s->words);
	s->qs = calloc(s->nq, sizeof *s->qs);
	if (!s->qs) {
		count_state_free(s);
		job_fail(job, KILN_E_INTERNAL, NULL, "out of memory");
		return;
	}
	if (compile_words(job, s->words, KILN_CQ_WORD | (s->icase ? KILN_CQ_ICASE : 0), s->qs)) {
		count_state_free(s);
		return;
	}
	c = get_corpus(job, args);
	if (!c) {
		count_state_free(s);
		return;
	}
	s->counts = calloc(s->nq * (c->ndocs ? c->ndocs : 1), sizeof *s->counts);
	if (!s->counts) {
		corpus_release(job, c);
		count_state_free(s);
		job_fail(job, KILN_E_INTERNAL, NULL, "out of memory");
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
	for (size_t d = from; d < to && used <= s->max; d++) {
		int64_t n = kiln_cdoc_search(&q->c->docs[d]->cdoc, s->q, tmp, s->max - used, cancel);
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
			break;
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

	for (size_t p = 0; p < q->nparts; p++) {
		if (s->rc[p]) {
			json_decref(results);
			job_fail(job, -s->rc[p], NULL, "search failed");
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
	}
	size_t n = json_array_size(results);
	json_t *data = json_pack("{s:O, s:I, s:b, s:o}", "query", s->query, "count", (json_int_t)n,
				 "truncated", truncated, "results", results);
	search_state_free(s);
	job_succeed(job, data, "%zu results%s", n, truncated ? " (truncated)" : "");
}

static void act_search(struct job *job, json_t *args)
{
	json_t *query = json_object_get(args, "query"), *max = json_object_get(args, "max_results");
	struct search_state *s = calloc(1, sizeof *s);
	unsigned flags = icase_arg(args) ? KILN_CQ_ICASE : 0;
	char err[128];

	if (!s) {
		job_fail(job, KILN_E_INTERNAL, NULL, "out of memory");
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
		job_fail(job, -rc, NULL, "%s", err);
		return;
	}
	struct corpus *c = get_corpus(job, args);
	if (!c) {
		search_state_free(s);
		return;
	}
	size_t parts = (size_t)config_pool_threads();
	s->hits = calloc(parts + 1, sizeof *s->hits); /* NULL-terminated */
	s->nhits = calloc(parts, sizeof *s->nhits);
	s->more = calloc(parts, sizeof *s->more);
	s->rc = calloc(parts, sizeof *s->rc);
	bool ok = s->hits && s->nhits && s->more && s->rc;
	for (size_t i = 0; ok && i < parts; i++)
		ok = (s->hits[i] = malloc((s->max + 1) * sizeof **s->hits)) != NULL;
	if (!ok) {
		corpus_release(job, c);
		search_state_free(s);
		job_fail(job, KILN_E_INTERNAL, NULL, "out of memory");
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
			job_fail(job, -s->rc[d], NULL, "stats of '%s' failed", q->c->docs[d]->name);
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

static void act_stats(struct job *job, json_t *args)
{
	struct stats_state *s = calloc(1, sizeof *s);
	json_t *ml = json_object_get(args, "min_length"), *ig = json_object_get(args, "ignore");

	if (!s) {
		job_fail(job, KILN_E_INTERNAL, NULL, "out of memory");
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
			job_fail(job, KILN_E_INTERNAL, NULL, "out of memory");
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
	struct corpus *c = get_corpus(job, args);
	if (!c) {
		stats_state_free(s);
		return;
	}
	s->counts = calloc(c->ndocs + 1, sizeof *s->counts);
	s->rc = calloc(c->ndocs + 1, sizeof *s->rc);
	if (!s->counts || !s->rc) {
		corpus_release(job, c);
		stats_state_free(s);
		job_fail(job, KILN_E_INTERNAL, NULL, "out of memory");
		return;
	}
	query_start(job, c, stats_run, stats_finish, s, stats_state_free);
}

/* --- corpus.list / info / unload ----------------------------------------------------- */

static void act_list(struct job *job, json_t *args)
{
	(void)args;
	json_t *list = corpus_store_list();
	size_t n = json_array_size(list);

	job_succeed(job, json_pack("{s:o, s:I, s:I}", "corpora", list, "memory_bytes",
				   (json_int_t)corpus_store_memory(), "budget_bytes",
				   (json_int_t)job_config(job)->corpus_memory_budget),
		    "%zu corpora", n);
}

static void act_info(struct job *job, json_t *args)
{
	struct corpus *c = get_corpus(job, args);

	if (!c)
		return;
	json_t *data = corpus_summary(c), *docs = json_array();
	for (size_t i = 0; i < c->ndocs; i++) {
		const struct kiln_cdoc *d = &c->docs[i]->cdoc;
		json_array_append_new(docs, json_pack("{s:s, s:I, s:I, s:I}", "name", c->docs[i]->name,
						      "bytes", (json_int_t)d->text_len, "code_points",
						      (json_int_t)d->chars, "lines", (json_int_t)d->lines));
	}
	json_object_set_new(data, "document_list", docs);
	corpus_release(job, c);
	job_succeed(job, data, "corpus info");
}

static void act_unload(struct job *job, json_t *args)
{
	const char *name = json_string_value(json_object_get(args, "name"));
	struct corpus *c = corpus_store_take(name);

	if (!c) {
		job_fail(job, KILN_E_NOT_FOUND, NULL, "no corpus named '%s'", name);
		return;
	}
	json_t *data = json_pack("{s:s, s:I}", "name", name, "bytes", (json_int_t)c->bytes);
	/* Released before the reply, which may free the job. */
	corpus_release(job, c);
	job_succeed(job, data, "unloaded '%s'", name);
}

/* --- corpus.seal --------------------------------------------------------------------- */

struct seal_ctx {
	struct file_source src;
	char *out_dir;
	bool overwrite;
	struct kiln_seal_params params;
	struct kiln_seal_key *key; /* secmem */
	struct file_list files;
	json_t *written;
	double kdf_ms;
	int code;
	char err[256];
};

static void seal_ctx_free(struct seal_ctx *S)
{
	file_source_free(&S->src);
	json_decref(S->written);
	free(S->out_dir);
	if (S->key)
		kiln_secmem_free(S->key, sizeof *S->key);
	file_list_free(&S->files);
	free(S);
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void seal_one(struct job *job, struct seal_ctx *S, size_t i)
{
	const struct kiln_config *cfg = job_config(job);
	struct file_result *r = &S->files.res[i];
	unsigned char *plain = NULL;
	uint8_t *out = NULL;
	size_t len = 0, outlen = 0;
	char *path = NULL;
	struct kiln_path_out dest;
	int fd, rc;

	r->code = kiln_path_read(cfg, S->files.path[i], cfg->max_file_bytes, &plain, &len, r->reason,
				 sizeof r->reason);
	if (r->code)
		return;
	size_t bad = kiln_utf8_valid_prefix(plain, len);
	if (bad != len) {
		r->code = -KILN_E_INVALID_ARGS;
		snprintf(r->reason, sizeof r->reason, "not valid UTF-8 (byte offset %zu)", bad);
		goto out;
	}
	r->code = kiln_seal_seal(S->key, &S->params, plain, len, &out, &outlen, r->reason,
				 sizeof r->reason);
	if (r->code)
		goto out;
	if (asprintf(&path, "%s/%s.kseal", S->out_dir, S->files.name[i]) < 0) {
		path = NULL;
		r->code = -KILN_E_INTERNAL;
		snprintf(r->reason, sizeof r->reason, "out of memory");
		goto out;
	}
	fd = kiln_path_create(cfg, path, S->overwrite, &dest, NULL, r->reason, sizeof r->reason);
	if (fd < 0) {
		r->code = fd;
		goto out;
	}
	if (write_all(fd, out, outlen) != 0) {
		r->code = -KILN_E_INTERNAL;
		snprintf(r->reason, sizeof r->reason, "write %s: %s", path, strerror(errno));
	}
	if ((rc = kiln_path_finish(&dest, !r->code, r->reason, sizeof r->reason)) != 0 && !r->code)
		r->code = rc;
	if (r->code)
		goto out;
	json_array_append_new(S->written, json_pack("{s:s, s:s, s:I}", "document", S->files.name[i],
						    "path", path, "bytes", (json_int_t)outlen));
out:
	if (plain) {
		OPENSSL_cleanse(plain, len);
		free(plain);
	}
	free(out);
	free(path);
}

static void seal_files(struct job *job, struct seal_ctx *S);

static void seal_work(struct job *job, void *arg)
{
	seal_files(job, arg);
	openssl_thread_done();
}

static void seal_files(struct job *job, struct seal_ctx *S)
{
	const struct kiln_config *cfg = job_config(job);
	bool locked;

	S->code = file_source_open(cfg, &S->src, "seal", &S->files, S->err, sizeof S->err);
	if (!S->code && !S->src.pass.buf) {
		S->code = -KILN_E_INVALID_ARGS;
		snprintf(S->err, sizeof S->err, "passphrase or key_file required");
	}
	if (S->code)
		return;
	S->key = kiln_secmem_alloc(sizeof *S->key, &locked);
	if (!S->key) {
		S->code = -KILN_E_INTERNAL;
		snprintf(S->err, sizeof S->err, "out of memory");
		return;
	}
	double t0 = now_ms();
	S->code = kiln_seal_derive(&S->params, S->src.pass.buf, S->src.pass.len, S->key, S->err,
				   sizeof S->err);
	S->kdf_ms = now_ms() - t0;
	secret_free(&S->src.pass);
	if (S->code)
		return;
	for (size_t i = 0; i < S->files.count; i++) {
		if (job_cancelled(job))
			return;
		if (!S->files.res[i].code)
			seal_one(job, S, i);
		job_progress(job, i + 1, S->files.count);
	}
}

static void seal_done(struct job *job, void *arg, int status)
{
	struct seal_ctx *S = arg;
	json_t *failed;
	int first;

	if (status != 0 || job_cancelled(job)) {
		job_fail(job, KILN_E_CANCELLED, NULL, "cancelled");
		goto out;
	}
	if (S->code) {
		job_fail(job, -S->code, NULL, "%s", S->err);
		goto out;
	}
	failed = failures_json(&S->files, &first);
	if (first) {
		size_t nf = json_array_size(failed);
		job_fail(job, -first, json_pack("{s:o, s:O}", "failed", failed, "written", S->written),
			 "%zu of %zu files could not be sealed", nf, S->files.count);
		goto out;
	}
	json_t *kdf = seal_params_json(&S->params);
	size_t n = json_array_size(S->written);
	job_succeed(job, json_pack("{s:O, s:o, s:f, s:o}", "files", S->written, "kdf", kdf, "kdf_ms",
				   S->kdf_ms, "failed", failed),
		    "sealed %zu files", n);
out:
	seal_ctx_free(S);
}

static void act_seal(struct job *job, json_t *args)
{
	struct seal_ctx *S = calloc(1, sizeof *S);
	const char *kdf = json_string_value(json_object_get(args, "kdf"));
	json_t *iter = json_object_get(args, "iterations"), *v;
	char err[200];

	if (!S) {
		job_fail(job, KILN_E_INTERNAL, NULL, "out of memory");
		return;
	}
	int rc = file_source_parse(args, &S->src, err, sizeof err);
	if (rc) {
		seal_ctx_free(S);
		job_fail(job, -rc, NULL, "%s", err);
		return;
	}
	enum kiln_seal_kdf k = kdf && strcmp(kdf, "pbkdf2") == 0 ? KILN_SEAL_KDF_PBKDF2
								  : KILN_SEAL_KDF_SCRYPT;
	rc = kiln_seal_params_default(&S->params, k, iter ? (uint32_t)json_integer_value(iter) : 0,
					  err, sizeof err);
	if ((v = json_object_get(args, "log2_n")))
		S->params.log2_n = (uint8_t)json_integer_value(v);
	if ((v = json_object_get(args, "r")))
		S->params.r = (uint32_t)json_integer_value(v);
	if ((v = json_object_get(args, "p")))
		S->params.p = (uint32_t)json_integer_value(v);
	if (!rc)
		rc = kiln_seal_params_check(&S->params, err, sizeof err);
	if (rc) {
		seal_ctx_free(S);
		job_fail(job, -rc, NULL, "%s", err);
		return;
	}
	S->out_dir = dup_arg(args, "out_dir", NULL);
	S->overwrite = json_is_true(json_object_get(args, "overwrite"));
	S->written = json_array();
	if (!S->out_dir || !S->written) {
		seal_ctx_free(S);
		job_fail(job, KILN_E_INTERNAL, NULL, "out of memory");
		return;
	}
	if (job_queue_work(job, seal_work, seal_done, S) != 0) {
		seal_ctx_free(S);
		job_fail(job, KILN_E_INTERNAL, NULL, "cannot queue work");
	}
}

/* --- Family ----------------------------------------------------------------------------- */

static void corpus_family_shutdown(void)
{
	corpus_store_clear();
}

static void corpus_family_stats(json_t *into)
{
	json_object_set_new(into, "corpora", json_integer((json_int_t)corpus_store_count()));
	json_object_set_new(into, "corpus_memory_bytes", json_integer((json_int_t)corpus_store_memory()));
}

static size_t corpus_family_memory(void)
{
	return corpus_store_memory();
}

#define NAME_PROP "\"name\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":200}"
#define FILES_PROPS                                                                                 \
	"\"paths\":{\"type\":\"array\",\"maxItems\":100000,\"items\":{\"type\":\"string\",\"minLength\":1}}," \
	"\"dir\":{\"type\":\"string\",\"minLength\":1},"                                          \
	"\"glob\":{\"type\":\"string\",\"minLength\":1,\"description\":\"fnmatch pattern in dir, default *\"}," \
	"\"passphrase\":{\"type\":\"string\",\"maxLength\":4096},"                                 \
	"\"key_file\":{\"type\":\"string\",\"minLength\":1,\"description\":\"first line is the passphrase\"}"
#define FILES_ONEOF "\"oneOf\":[{\"required\":[\"paths\"]},{\"required\":[\"dir\"]}]"
#define CASE_PROP "\"case\":{\"enum\":[\"sensitive\",\"insensitive\"]}"
#define OBJ "\"type\":\"object\",\"additionalProperties\":false,"

static const struct action corpus_actions[] = {
	{ "corpus.load",
	  "Decrypts files (openssl-enc, kiln sealed or plain UTF-8) in parallel into locked memory as "
	  "a named corpus; atomic: any failing file leaves the corpus unchanged.",
	  "{" OBJ "\"required\":[\"name\"]," FILES_ONEOF ",\"properties\":{" NAME_PROP "," FILES_PROPS ","
	  "\"format\":{\"enum\":[\"auto\",\"openssl-enc\",\"sealed\",\"plain\"]},"
	  "\"kdf\":{\"enum\":[\"pbkdf2\",\"legacy\"],\"description\":\"openssl-enc key derivation\"},"
	  "\"iterations\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":100000000}}}",
	  "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},"
	  "\"documents\":{\"type\":\"integer\"},\"bytes\":{\"type\":\"integer\"},"
	  "\"load_ms\":{\"type\":\"number\"},\"kdf_ms\":{\"type\":\"number\"},"
	  "\"failed\":{\"type\":\"array\"}}}",
	  act_load, 0 },
	{ "corpus.count",
	  "Whole-word counts per document, as len(re.findall(r'\\b'+re.escape(w)+r'\\b', text[, re.I])).",
	  "{" OBJ "\"required\":[\"name\"],\"properties\":{" NAME_PROP ","
	  "\"word\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":4096},"
	  "\"words\":{\"type\":\"array\",\"minItems\":1,\"maxItems\":100,"
	  "\"items\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":4096}}," CASE_PROP "}}",
	  "{\"type\":\"object\",\"properties\":{\"total\":{\"type\":\"integer\"},"
	  "\"documents\":{\"type\":\"object\"},\"words\":{\"type\":\"array\"}}}",
	  act_count, 0 },
	{ "corpus.search",
	  "Literal search: document, line, column (code points, 1-based) and line text of each match.",
	  "{" OBJ "\"required\":[\"name\",\"query\"],\"properties\":{" NAME_PROP ","
	  "\"query\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":4096}," CASE_PROP ","
	  "\"whole_word\":{\"type\":\"boolean\"},"
	  "\"max_results\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":10000}}}",
	  "{\"type\":\"object\",\"properties\":{\"count\":{\"type\":\"integer\"},"
	  "\"truncated\":{\"type\":\"boolean\"},\"results\":{\"type\":\"array\"}}}",
	  act_search, 0 },
	{ "corpus.stats", "text.stats over each document and the whole corpus.",
	  "{" OBJ "\"required\":[\"name\"],\"properties\":{" NAME_PROP ","
	  "\"min_length\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":1000000},"
	  "\"ignore\":{\"type\":\"array\",\"maxItems\":10000,\"items\":{\"type\":\"string\"}}}}",
	  "{\"type\":\"object\",\"properties\":{\"total\":{\"type\":\"object\"},"
	  "\"documents\":{\"type\":\"object\"}}}",
	  act_stats, 0 },
	{ "corpus.list", "Loaded corpora with sizes, and the memory budget.",
	  "{" OBJ "\"properties\":{}}",
	  "{\"type\":\"object\",\"properties\":{\"corpora\":{\"type\":\"array\"}}}", act_list, 0 },
	{ "corpus.info", "One corpus: sizes, source formats and its documents.",
	  "{" OBJ "\"required\":[\"name\"],\"properties\":{" NAME_PROP "}}",
	  "{\"type\":\"object\",\"properties\":{\"document_list\":{\"type\":\"array\"}}}", act_info, 0 },
	{ "corpus.unload", "Wipes and frees a corpus.",
	  "{" OBJ "\"required\":[\"name\"],\"properties\":{" NAME_PROP "}}",
	  "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},"
	  "\"bytes\":{\"type\":\"integer\"}}}",
	  act_unload, 0 },
	{ "corpus.seal",
	  "Encrypts UTF-8 files into out_dir as kiln sealed files (<name>.kseal) sharing one KDF salt.",
	  "{" OBJ "\"required\":[\"out_dir\"]," FILES_ONEOF ",\"properties\":{" FILES_PROPS ","
	  "\"out_dir\":{\"type\":\"string\",\"minLength\":1},"
	  "\"kdf\":{\"enum\":[\"scrypt\",\"pbkdf2\"]},"
	  "\"iterations\":{\"type\":\"integer\",\"minimum\":1000,\"maximum\":100000000},"
	  "\"log2_n\":{\"type\":\"integer\",\"minimum\":10,\"maximum\":22},"
	  "\"r\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":32},"
	  "\"p\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":16},"
	  "\"overwrite\":{\"type\":\"boolean\"}}}",
	  "{\"type\":\"object\",\"properties\":{\"files\":{\"type\":\"array\"},"
	  "\"kdf\":{\"type\":\"object\"},\"kdf_ms\":{\"type\":\"number\"}}}",
	  act_seal, 0 },
};

const struct action_family family_corpus = {
	.name = "corpus",
	.actions = corpus_actions,
	.count = sizeof corpus_actions / sizeof corpus_actions[0],
	.shutdown = corpus_family_shutdown,
	.stats = corpus_family_stats,
	.memory_held = corpus_family_memory,
};
