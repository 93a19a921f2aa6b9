/*
 * The action table: one entry per action, from which dispatch, `describe`,
 * argument validation and proto/actions.json are all generated, so they
 * cannot drift apart.
 *
 * Each action family lives in one file (act_core.c, act_pi.c, ...) and
 * exports one `struct action_family`.  dispatch.c lists the families.
 */
#ifndef KILND_ACTION_H
#define KILND_ACTION_H

#include <jansson.h>
#include <stddef.h>

struct job;
struct kiln_config;

/*
 * A handler runs on the loop thread with `args` already validated against
 * `args_schema` (a borrowed reference, valid until the handler returns; take
 * json_incref() to keep it).  It must eventually finish the job exactly once
 * with job_succeed(), job_fail() or job_reply() (job.h), either before it
 * returns or later from a loop-thread callback such as a job_queue_work()
 * completion.  It never blocks: CPU work goes to job_queue_work().
 */
typedef void (*action_fn)(struct job *job, json_t *args);

enum action_flags {
	/* The action runs across host_list (procedures); otherwise a non-empty
	 * host_list is refused with invalid_request. */
	ACTION_HOSTS = 1u << 0,
	/* The action applies `timeout` itself (per attempt) instead of the
	 * daemon arming a whole-request deadline. */
	ACTION_OWN_TIMEOUT = 1u << 1,
};

struct action {
	const char *name;        /* "pi", "corpus.count" */
	const char *summary;     /* one line for describe */
	const char *args_schema; /* JSON Schema subset (schema.h), as JSON text */
	const char *data_schema; /* schema of the reply's data, for describe/proto */
	action_fn handler;
	unsigned flags;          /* enum action_flags */
};

struct action_family {
	const char *name;
	const struct action *actions;
	size_t count;
	/* Optional hooks, all on the loop thread. */
	int (*init)(const struct kiln_config *cfg);       /* 0 or -kiln_err; fatal at startup */
	void (*reconfigure)(const struct kiln_config *cfg); /* after SIGHUP reload */
	void (*shutdown)(void);                          /* free (and wipe) all state */
	/* Adds family figures to `stats` replies ("scenes": 3, "bytes": ...). */
	void (*stats)(json_t *into);
	/* Bytes of memory held by the family's long-lived state (for STATUS=). */
	size_t (*memory_held)(void);
};

/* Families, defined in their act_*.c files. */
extern const struct action_family family_core;
extern const struct action_family family_corpus;
extern const struct action_family family_pi;
extern const struct action_family family_text;
extern const struct action_family family_scene;
extern const struct action_family family_proc;
extern const struct action_family family_job;
extern const struct action_family family_module;

/* Looks up an action by name (NULL if unknown). */
const struct action *dispatch_find(const char *name);

/* Validates `args` against the action's schema; on failure fills `detail`
 * (a new JSON object naming the offending path) and returns -KILN_E_INVALID_ARGS. */
int dispatch_validate(const struct action *a, json_t *args, json_t **detail, char *msg, size_t msglen);

/* Calls init on every family (0 or the first error). */
int dispatch_init(const struct kiln_config *cfg, char *err, size_t errlen);
void dispatch_reconfigure(const struct kiln_config *cfg);
void dispatch_shutdown(void);
void dispatch_stats(json_t *into);
size_t dispatch_memory_held(void);

/* The describe document: {"actions": [{name, summary, args, data}, ...]}. New reference. */
json_t *dispatch_describe(void);

#endif
