/*
 * A small JSON Schema validator for action arguments: the subset the action
 * table uses (type, properties, required, additionalProperties: false,
 * minimum, maximum, exclusiveMinimum, exclusiveMaximum, minLength, maxLength,
 * enum, items, minItems, maxItems, oneOf, anyOf, and "$ref": "#/$defs/NAME"
 * naming an entry of the root schema's "$defs"; description, default, title,
 * examples and $comment are documentation).  Schemas are checked once at startup by schema_check().
 */
#ifndef KILND_SCHEMA_H
#define KILND_SCHEMA_H

#include <jansson.h>
#include <stddef.h>

/* 0 if `schema` only uses supported keywords, else -1 with a message. */
int schema_check(const json_t *schema, char *err, size_t errlen);

/* 0 if `value` satisfies `schema`; else -1, with `msg` like
 * "args.digits: expected an integer" and *path set to the failing location
 * ("args.digits"; malloc'ed, caller frees). `root` names the value ("args"). */
int schema_validate(const json_t *schema, const json_t *value, const char *root, char **path,
		    char *msg, size_t msglen);

#endif
