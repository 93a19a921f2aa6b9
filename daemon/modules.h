/*
 * Native modules (include/kiln/module.h): the `modules` configuration, the
 * registry of loaded modules and their actions, and the hooks dispatch.c,
 * config.c and server.c call.  act_module.c implements them; process
 * isolation is in mod_proc.c, the module API in mod_api.c.
 *
 * A module is an action family loaded from a file: its actions are looked
 * up, validated against their schemas, described and dispatched like the
 * built-in ones.  Loop thread only, except module_config_parse().
 */
#ifndef KILND_MODULES_H
#define KILND_MODULES_H

#include <jansson.h>
#include <stddef.h>

struct action;
struct job;

/* Checks and normalizes the `modules` config value (any thread, no side
 * effects): a list of {"path", "isolation": "process"|"thread", "workers",
 * "config"}, relative paths resolved against base_dir (NULL: as is),
 * defaults filled in.  0 with *out (new reference), or -1 with a message
 * naming the entry and key. */
int module_config_parse(const json_t *v, const char *base_dir, json_t **out, char *err, size_t errlen);

/* The action of a loaded module named `name`, else NULL. */
const struct action *module_lookup(const char *name);

/* Checks a module action's request before it runs: no host_list, args
 * valid against the module's schema.  0 or -KILN_E_* with msg and *detail. */
int module_prepare(struct job *job, json_t **detail, char *msg, size_t msglen);

/* Appends one describe entry per loaded module action to `list`. */
void module_describe(json_t *list);

/* Once no job is left at shutdown: stops every worker process and closes
 * the loop handles (so the loop can end). */
void module_release(void);

#endif
