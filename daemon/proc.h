/*
 * Host procedures (issue 7): operator-configured commands that clients run
 * by name across a host_list.  act_proc.c implements them; the hooks below
 * let config.c, dispatch.c and server.c reach it without knowing the
 * details.  All loop-thread only except proc_config_validate().
 */
#ifndef KILND_PROC_H
#define KILND_PROC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct action;
struct job;
struct kiln_config;
struct kiln_peer;

/* Checks the `procedures` config object (any thread, no side effects).
 * Returns 0, or -1 with a message naming the offending key in err. */
int proc_config_validate(const json_t *procedures, char *err, size_t errlen);

/* The action that runs procedure `name` if cfg configures one, else NULL. */
const struct action *proc_lookup(const struct kiln_config *cfg, const char *name);

/* Checks a procedure request before it runs: host_list (non-empty, each a
 * hostname or IP literal, no duplicates), empty args and the peer's uid/gid.
 * Returns 0 or -KILN_E_* with msg and *detail (new reference). */
int proc_prepare(struct job *job, json_t **detail, char *msg, size_t msglen);

/* Whether `peer` may run procedure `name`: its allowed_uids/allowed_gids
 * are empty, list its uid, or list its primary or a supplementary group. */
bool proc_may_run(const struct kiln_config *cfg, const char *name, const struct kiln_peer *peer);

/* Appends one describe entry per configured procedure to `list`. */
void proc_describe(const struct kiln_config *cfg, json_t *list);

/* Daemon shutdown: cancels every procedure run, so children get SIGTERM
 * now and SIGKILL after min(kill_grace, shutdown_grace). */
void proc_stop_all(void);

/* Once no job is left at shutdown: stops the spawner thread and closes its
 * loop handles, so the loop can end. */
void proc_release(void);

#endif
