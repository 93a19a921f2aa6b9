/*
 * corpus.seal (issue 5): encrypts UTF-8 files into kiln sealed files that
 * share one KDF salt, in one work item on the thread pool.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "act_corpus.h"
#include "config.h"
#include "corpus_files.h"
#include "job.h"
#include "kiln/corpus.h"
#include "kiln/error.h"
#include "kiln/seal.h"
#include "kiln/utf8.h"
#include "paths.h"

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
	corpus_openssl_thread_done();
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
	double t0 = corpus_now_ms();
	S->code = kiln_seal_derive(&S->params, S->src.pass.buf, S->src.pass.len, S->key, S->err,
				   sizeof S->err);
	S->kdf_ms = corpus_now_ms() - t0;
	file_source_wipe_secret(&S->src);
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
		job_fail(job, -KILN_E_CANCELLED, NULL, "cancelled");
		goto out;
	}
	if (S->code) {
		job_fail(job, S->code, NULL, "%s", S->err);
		goto out;
	}
	failed = file_list_failures(&S->files, &first);
	if (first) {
		size_t nf = json_array_size(failed);
		job_fail(job, first, json_pack("{s:o, s:O}", "failed", failed, "written", S->written),
			 "%zu of %zu files could not be sealed", nf, S->files.count);
		goto out;
	}
	json_t *kdf = corpus_seal_params_json(&S->params);
	size_t n = json_array_size(S->written);
	job_succeed(job, json_pack("{s:O, s:o, s:f, s:o}", "files", S->written, "kdf", kdf, "kdf_ms",
				   S->kdf_ms, "failed", failed),
		    "sealed %zu files", n);
out:
	seal_ctx_free(S);
}

void corpus_act_seal(struct job *job, json_t *args)
{
	struct seal_ctx *S = calloc(1, sizeof *S);
	const char *kdf = json_string_value(json_object_get(args, "kdf"));
	json_t *iter = json_object_get(args, "iterations"), *v;
	char err[200];

	if (!S) {
		job_fail(job, -KILN_E_INTERNAL, NULL, "out of memory");
		return;
	}
	int rc = file_source_parse(args, &S->src, err, sizeof err);
	if (rc) {
		seal_ctx_free(S);
		job_fail(job, rc, NULL, "%s", err);
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
		job_fail(job, rc, NULL, "%s", err);
		return;
	}
	S->out_dir = corpus_arg_dup(args, "out_dir", NULL);
	S->overwrite = json_is_true(json_object_get(args, "overwrite"));
	S->written = json_array();
	if (!S->out_dir || !S->written) {
		seal_ctx_free(S);
		job_fail(job, -KILN_E_INTERNAL, NULL, "out of memory");
		return;
	}
	if (job_queue_work(job, seal_work, seal_done, S) != 0) {
		seal_ctx_free(S);
		job_fail(job, -KILN_E_INTERNAL, NULL, "cannot queue work");
	}
}
