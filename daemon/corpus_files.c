/*
 * File sources of the corpus family (corpus_files.h): the file list,
 * passphrase and key file that corpus.load and corpus.seal share, and the
 * per-file failure report.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "corpus_files.h"
#include "kiln/corpus.h"
#include "kiln/error.h"
#include "kiln/utf8.h"
#include "paths.h"

#define MAX_KEY_FILE 4096

double corpus_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

void corpus_openssl_thread_done(void)
{
	OPENSSL_thread_stop();
}

/* --- Secrets ---------------------------------------------------------------- */

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

void file_list_free(struct file_list *l)
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

void file_source_free(struct file_source *src)
{
	json_decref(src->paths);
	free(src->dir);
	free(src->glob);
	free(src->key_file);
	secret_free(&src->pass);
	memset(src, 0, sizeof *src);
}

char *corpus_arg_dup(json_t *args, const char *key, const char *dflt)
{
	json_t *v = json_object_get(args, key);

	if (!v && !dflt)
		return NULL;
	return strdup(v ? json_string_value(v) : dflt);
}

/* On the loop: paths or dir + glob, and passphrase or key_file.  The
 * passphrase is moved to locked memory whatever the outcome.  Returns 0 or
 * -KILN_E_* with err. */
int file_source_parse(json_t *args, struct file_source *src, char *err, size_t errlen)
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
	src->dir = corpus_arg_dup(args, "dir", NULL);
	src->glob = corpus_arg_dup(args, "glob", "*");
	src->key_file = corpus_arg_dup(args, "key_file", NULL);
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
int file_source_open(const struct kiln_config *cfg, struct file_source *src,
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
json_t *file_list_failures(const struct file_list *l, int *first)
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

/* A sealed format's KDF parameters as corpus.load and corpus.seal report them. */
json_t *corpus_seal_params_json(const struct kiln_seal_params *p)
{
	if (p->kdf == KILN_SEAL_KDF_SCRYPT)
		return json_pack("{s:s, s:i, s:i, s:i}", "kdf", "scrypt", "log2_n", p->log2_n, "r", p->r,
				 "p", p->p);
	return json_pack("{s:s, s:i}", "kdf", "pbkdf2-sha256", "iterations", p->iter);
}

void file_source_wipe_secret(struct file_source *src)
{
	secret_free(&src->pass);
}
