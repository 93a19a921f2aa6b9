/*
 * File sources of the corpus family: the arguments corpus.load and
 * corpus.seal share (paths, or dir + glob; passphrase or key_file), the
 * files they name with one result each, and the failure report built from
 * those results.
 *
 * Threading: file_source_parse() runs on the loop (it takes the passphrase
 * out of the request); file_source_open() and the per-file work run on a
 * worker.  Nothing here touches daemon state.
 */
#ifndef KILND_CORPUS_FILES_H
#define KILND_CORPUS_FILES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "kiln/seal.h"

struct kiln_config;

/* A passphrase in locked memory. */
struct secret {
	char *buf;
	size_t len, cap;
};

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

void file_list_free(struct file_list *l);

/* The failed files of l, in list order, as a new JSON array; *first gets
 * the first one's code (0 when none failed). */
json_t *file_list_failures(const struct file_list *l, int *first);

struct file_source {
	json_t *paths;       /* owned reference, or NULL */
	char *dir, *glob, *key_file;
	struct secret pass;  /* args.passphrase, or the key file's once opened */
};

/* On the loop: paths or dir + glob, and passphrase or key_file.  The
 * passphrase is moved to locked memory whatever the outcome.  Returns 0 or
 * -KILN_E_* with err. */
int file_source_parse(json_t *args, struct file_source *src, char *err, size_t errlen);

/* On a worker: lists the files (`verb` names the action in the error for
 * none), gives each a result with duplicate names already failed, and
 * reads the key file. */
int file_source_open(const struct kiln_config *cfg, struct file_source *src, const char *verb,
		     struct file_list *files, char *err, size_t errlen);

/* Wipes and frees the passphrase as soon as it is no longer needed. */
void file_source_wipe_secret(struct file_source *src);
void file_source_free(struct file_source *src);

/* --- Small helpers the corpus actions share --------------------------------- */

/* A copy of the string argument `key`, or of `dflt` when absent (NULL when
 * both are absent or out of memory). */
char *corpus_arg_dup(json_t *args, const char *key, const char *dflt);

/* A sealed format's KDF parameters as corpus.load and corpus.seal report them. */
json_t *corpus_seal_params_json(const struct kiln_seal_params *p);

/* Monotonic milliseconds, for the timings replies report. */
double corpus_now_ms(void);

/* OpenSSL keeps per-thread state (error queue, random generator) that the
 * pool threads would otherwise hold until exit, unfreed; work items that
 * used OpenSSL call this when done. */
void corpus_openssl_thread_done(void);

#endif
