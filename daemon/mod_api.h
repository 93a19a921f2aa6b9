/*
 * The implementation side of include/kiln/module.h, shared by kilnd (thread
 * isolation) and the module host (process isolation, modhost.c): loading a
 * module file, its registry, and the call context its handlers see.
 *
 * Nothing here knows libuv or the job machinery: a call reaches its
 * environment (progress, cancellation, output memory) through the ops in
 * struct mod_call_ops, so the same code serves a pool thread in kilnd and a
 * worker process.
 */
#ifndef KILND_MOD_API_H
#define KILND_MOD_API_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/module.h"

#define MOD_NAME_MAX 64

/* One registered action; every string owned. */
struct mod_action {
	char *name;
	char *summary;
	char *args_schema;
	char *data_schema;
	kiln_mod_handler handler;
};

/* A loaded module: owned by whoever opened it, freed with mod_lib_close(). */
struct mod_lib {
	void *dl;
	struct mod_action *actions;
	size_t count;
};

/* Checks that the open module file `fd` may be loaded: a regular file owned
 * by root or by this process's uid, not writable by others (nor by its
 * group unless that is root).  Returns 0 or -KILN_E_FORBIDDEN with the
 * reason in err ("owned by uid 1000, not root or kilnd's uid 0"). */
int mod_file_check(int fd, char *err, size_t errlen);

/* Loads the module open on `fd` (checked by mod_file_check), checks its
 * ABI version, runs kiln_module_init() with `config` (a JSON object,
 * borrowed) and returns it with its actions.  NULL with a message on
 * failure (a wrong ABI names both versions).  Any thread; runs module code. */
struct mod_lib *mod_lib_open(int fd, const char *path, const json_t *config, char *err, size_t errlen);
void mod_lib_close(struct mod_lib *lib);

/* Checks an action's fields the way kiln_mod_register does, for a list
 * received from a module host.  0 or -1 with a message. */
int mod_action_check(const char *name, const char *args_schema, const char *data_schema, char *err,
		     size_t errlen);

/* The environment of a call (any thread: the one running the handler). */
struct mod_call_ops {
	void (*progress)(void *ctx, uint64_t done, uint64_t total);
	bool (*cancelled)(void *ctx);
	/* A zero-filled, 64-byte aligned buffer of len bytes for the reply
	 * attachment, or NULL; release frees one (also on failure). */
	void *(*out_alloc)(void *ctx, size_t len);
	void (*out_release)(void *ctx, void *buf, size_t len);
};

struct mod_block;

struct kiln_mod_call {
	const json_t *args;       /* borrowed object */
	const void *attach;       /* borrowed */
	size_t attach_len;
	size_t out_max;           /* largest output attachment */
	const struct mod_call_ops *ops;
	void *ctx;

	json_t *data;             /* owned: the results */
	char *args_text;          /* owned: kiln_mod_args_json's text */
	struct mod_block *blocks; /* owned: arrays handed to the handler */
	void *out;                /* owned until taken: the output attachment */
	size_t out_len;
	int code;                 /* 0 or the KILN_E_* of a failure */
	char message[512];
};

/* Prepares `call` for one handler run; args and attach stay the caller's. */
void mod_call_init(struct kiln_mod_call *call, const json_t *args, const void *attach, size_t attach_len,
		   size_t out_max, const struct mod_call_ops *ops, void *ctx);
/* Runs the handler; returns 0 or the KILN_E_* code (with call->message). */
int mod_call_run(struct kiln_mod_call *call, kiln_mod_handler handler);
/* Frees what the call owns (results, arrays, an output not taken). */
void mod_call_release(struct kiln_mod_call *call);

#endif
