/*
 * Private to the procedure family (act_proc*.c): the checks of
 * act_proc_check.c, which act_proc.c's family table lists as hooks.
 */
#ifndef KILND_ACT_PROC_H
#define KILND_ACT_PROC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct job;
struct kiln_config;
struct kiln_peer;

/* Largest tail_bytes a procedure may keep of each output stream. */
#define MAX_TAIL_BYTES (1024 * 1024)

/* The check_config hook: the `procedures` object.  Returns 0, or -1 with a
 * message naming the offending key in err.  Any thread, no side effects. */
int proc_check_config(const struct kiln_config *cfg, char *err, size_t errlen);

/* The procedure `name` of cfg (an object), or NULL. */
const json_t *proc_get(const struct kiln_config *cfg, const char *name);
/* Whether `peer` may run procedure spec `p`: its allowed_uids/allowed_gids
 * are empty, list its uid, or list its primary or a supplementary group. */
bool proc_peer_may_run(const json_t *p, const struct kiln_peer *peer);

/* The prepare hook: host_list (non-empty, each a hostname or IP literal,
 * no duplicates), empty args and the peer's uid/gid.  0 or -KILN_E_* with
 * msg and *detail. */
int proc_prepare(struct job *job, json_t **detail, char *msg, size_t msglen);

#endif
