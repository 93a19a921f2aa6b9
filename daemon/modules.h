/*
 * Native modules (include/kiln/module.h).  act_module.c is the `module`
 * family (family_module in action.h): a module is an action family loaded
 * from a file, whose actions the family's lookup, prepare and describe
 * hooks serve like built-in ones.  Process isolation is mod_proc.c, the
 * module API mod_api.c.  Here: what config.c needs.
 */
#ifndef KILND_MODULES_H
#define KILND_MODULES_H

#include <jansson.h>
#include <stddef.h>

/* Checks and normalizes the `modules` config value (any thread, no side
 * effects): a list of {"path", "isolation": "process"|"thread", "workers",
 * "config"}, relative paths resolved against base_dir (NULL: as is),
 * defaults filled in.  0 with *out (new reference), or -1 with a message
 * naming the entry and key. */
int module_config_parse(const json_t *v, const char *base_dir, json_t **out, char *err, size_t errlen);

#endif
