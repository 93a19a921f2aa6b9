/*
 * The action table: one entry per action, from which dispatch, `describe`,
 * argument validation and proto/actions.json are all generated, so they
 * cannot drift apart.
 *
 * Each action family lives in one file (act_core.c, act_pi.c, ...; a large
 * family in several, by role) and exports one `struct action_family`.
 * dispatch.c lists the families; the hooks below are the only way a family
 * reaches the core, and the core a family.  Together with job.h this is the
 * whole handler <-> core boundary.
 */
#ifndef KILND_ACTION_H
#define KILND_ACTION_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/version.h"

struct job;
struct kiln_config;
struct kiln_peer;

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
	/* The handler reads the request's attachment (job_attachment); other
	 * actions' attachments are dropped before they start. */
	ACTION_ATTACHMENT = 1u << 2,
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
	/* Optional hooks, all on the loop thread except check_config. */

	/* Checks the family's section of a configuration being loaded (startup
	 * and SIGHUP alike, with the action table built): 0, or -1 with a
	 * message naming the offending key.  No side effects, any thread. */
	int (*check_config)(const struct kiln_config *cfg, char *err, size_t errlen);
	int (*init)(const struct kiln_config *cfg);       /* 0 or -KILN_E_*; fatal at startup */
	void (*reconfigure)(const struct kiln_config *cfg); /* after SIGHUP reload */

	/* Dynamic actions (procedures): configured by name rather than listed
	 * in `actions`.  lookup returns the action that runs `name` under cfg,
	 * or NULL; prepare checks such a request before its handler runs (the
	 * peer's rights, host_list; schema validation does not apply) and
	 * returns 0 or -KILN_E_* with msg and *detail (new reference);
	 * describe appends one describe entry per dynamic action that `peer`
	 * may run to `list` (peer NULL: every one, for kilnd --describe). */
	const struct action *(*lookup)(const struct kiln_config *cfg, const char *name);
	int (*prepare)(struct job *job, json_t **detail, char *msg, size_t msglen);
	void (*describe)(const struct kiln_config *cfg, const struct kiln_peer *peer, json_t *list);

	/* Shutdown begins: cancel what runs, so it ends within the grace period. */
	void (*stop)(void);
	/* No job is left: stop the family's threads and close its loop handles,
	 * so the loop can end. */
	void (*release)(void);
	void (*shutdown)(void);                          /* free (and wipe) all state */

	/* An upper bound of the reply bytes `action` will produce for `args`
	 * (0: small), so a connection can keep room in max_output_buffer before
	 * starting it.  Loop thread; args are valid. */
	size_t (*reply_bound)(const struct action *action, const struct kiln_config *cfg, json_t *args);

	/* Adds family figures to `stats` replies ("scenes": 3, "bytes": ...). */
	void (*stats)(json_t *into);
	/* Adds the family's figures per owner for admins' `stats`: into
	 * dispatch_uid_figures(per_uid, uid) for each uid holding something. */
	void (*stats_per_uid)(json_t *per_uid);
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

/* Adds a family to the table (before dispatch_init; describe lists the
 * families in registration order).  The family must outlive the daemon. */
void dispatch_register(const struct action_family *family);
/* Registers every built-in family above (families.c): what main() and the
 * in-process test daemons call first. */
void families_register_builtin(void);

/* Looks up a built-in action by name (NULL if unknown).  The table is built
 * on first use, so this holds from the first call on. */
const struct action *dispatch_find(const char *name);

/* config_load() and then every family's check_config: the one way the
 * daemon loads a configuration (startup, SIGHUP, tests).  NULL with err on
 * failure. */
struct kiln_config *dispatch_config_load(const char *path, char *err, size_t errlen);

/* Finds the action `req` names (built in, or a family's dynamic action) and
 * checks the request against it: host_list, args_schema, the family's
 * prepare hook (which gets `job`).  Returns 0 with *action, or -KILN_E_*
 * with msg and *detail (new reference). */
struct request;
int dispatch_prepare(struct job *job, const struct kiln_config *cfg, const struct request *req,
		     const struct action **action, json_t **detail, char *msg, size_t msglen);

/* Validates `args` against the action's schema; on failure fills `detail`
 * (a new JSON object naming the offending path) and returns -KILN_E_INVALID_ARGS. */
int dispatch_validate(const struct action *a, json_t *args, json_t **detail, char *msg, size_t msglen);

/* Calls init on every family (0 or the first error). */
int dispatch_init(const struct kiln_config *cfg, char *err, size_t errlen);
void dispatch_reconfigure(const struct kiln_config *cfg);
/* The families' stop and release hooks, in shutdown order (server.c). */
void dispatch_stop(void);
void dispatch_release(void);
void dispatch_shutdown(void);
void dispatch_stats(json_t *into);
/* {"UID": {figures}} from every family's stats_per_uid.  New reference. */
json_t *dispatch_stats_per_uid(void);
/* The object for `uid` in a per-uid figures object, created empty if
 * missing (borrowed). */
json_t *dispatch_uid_figures(json_t *per_uid, unsigned uid);
size_t dispatch_memory_held(void);

/* The describe document: {"actions": [{name, summary, args, data}, ...]}. New reference. */
json_t *dispatch_describe(const struct kiln_peer *peer);
/* The action family's reply_bound for a prepared request (0 if none). */
size_t dispatch_reply_bound(const struct action *action, const struct kiln_config *cfg, json_t *args);

/* --- What the core tells handlers about itself (server.c) ------------------ */

struct server_figures {
	unsigned connections;
	unsigned in_flight;        /* jobs not yet freed */
	uint64_t requests_served;
	double uptime_s;
};
void server_figures(struct server_figures *out);
/* Seconds since the server started (ping's share of the above). */
double server_uptime_s(void);
/* Resident memory of the process in bytes (0 if unknown). */
size_t server_rss_bytes(void);

#endif
