#include "schema.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/error.h"

static const char *const known[] = {
	"type",    "properties", "required", "additionalProperties", "minimum", "maximum",
	"exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "enum", "items",
	"minItems", "maxItems", "oneOf", "anyOf", "description", "default", "$comment", "title",
	"examples",
};

int schema_check(const json_t *schema, char *err, size_t errlen)
{
	const char *key;
	json_t *v;

	if (!json_is_object(schema)) {
		snprintf(err, errlen, "schema is not an object");
		return -1;
	}
	json_object_foreach((json_t *)schema, key, v) {
		size_t i, ok = 0;
		for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
			ok |= strcmp(key, known[i]) == 0;
		if (!ok) {
			snprintf(err, errlen, "unsupported schema keyword \"%s\"", key);
			return -1;
		}
		if (strcmp(key, "properties") == 0) {
			const char *pk;
			json_t *sub;
			json_object_foreach(v, pk, sub) {
				if (schema_check(sub, err, errlen))
					return -1;
			}
		} else if (strcmp(key, "items") == 0) {
			if (schema_check(v, err, errlen))
				return -1;
		} else if (strcmp(key, "oneOf") == 0 || strcmp(key, "anyOf") == 0) {
			size_t i2;
			json_t *sub;
			json_array_foreach(v, i2, sub) {
				if (schema_check(sub, err, errlen))
					return -1;
			}
		}
	}
	return 0;
}

static int type_matches(const char *t, const json_t *v)
{
	if (strcmp(t, "object") == 0)
		return json_is_object(v);
	if (strcmp(t, "array") == 0)
		return json_is_array(v);
	if (strcmp(t, "string") == 0)
		return json_is_string(v);
	if (strcmp(t, "integer") == 0)
		return json_is_integer(v);
	if (strcmp(t, "number") == 0)
		return json_is_number(v);
	if (strcmp(t, "boolean") == 0)
		return json_is_boolean(v);
	if (strcmp(t, "null") == 0)
		return json_is_null(v);
	return 0;
}

static const char *article(const char *t)
{
	return strchr("aeiou", t[0]) ? "an" : "a";
}

/* Names `where` as the failing path (the first failure wins) and passes rc on. */
static int at(char **path, const char *where, int rc)
{
	if (path && !*path)
		*path = strdup(where);
	return rc;
}

static size_t utf8_codepoints(const char *s, size_t n)
{
	size_t cps = 0;
	for (size_t i = 0; i < n; i++)
		cps += ((unsigned char)s[i] & 0xC0) != 0x80;
	return cps;
}

static int check_type(const json_t *schema, const json_t *value, const char *where, char **path,
		      char *msg, size_t msglen)
{
	const json_t *t = json_object_get(schema, "type");
	size_t i;
	json_t *item;

	if (!t)
		return 0;
	if (json_is_string(t)) {
		if (type_matches(json_string_value(t), value))
			return 0;
		return at(path, where, kiln_fail(msg, msglen, -KILN_E_INVALID_ARGS, "%s: expected %s %s", where, article(json_string_value(t)),
			    json_string_value(t)));
	}
	json_array_foreach(t, i, item) {
		if (type_matches(json_string_value(item), value))
			return 0;
	}
	return at(path, where, kiln_fail(msg, msglen, -KILN_E_INVALID_ARGS, "%s: has the wrong type", where));
}

static int check_number(const json_t *schema, const json_t *value, const char *where, char **path,
			char *msg, size_t msglen)
{
	const json_t *lim;
	double x;

	if (!json_is_number(value))
		return 0;
	x = json_number_value(value);
	/* Integers beyond 2^53 lose precision as doubles; compare them as integers. */
	if (json_is_integer(value)) {
		json_int_t iv = json_integer_value(value);
		if ((lim = json_object_get(schema, "minimum")) && json_is_integer(lim) &&
		    iv < json_integer_value(lim))
			return at(path, where, kiln_fail(msg, msglen, -KILN_E_INVALID_ARGS, "%s: must be >= %" JSON_INTEGER_FORMAT, where,
				    json_integer_value(lim)));
		if ((lim = json_object_get(schema, "maximum")) && json_is_integer(lim) &&
		    iv > json_integer_value(lim))
			return at(path, where, kiln_fail(msg, msglen, -KILN_E_INVALID_ARGS, "%s: must be <= %" JSON_INTEGER_FORMAT, where,
				    json_integer_value(lim)));
	}
	if ((lim = json_object_get(schema, "minimum")) && x < json_number_value(lim))
		return at(path, where, kiln_fail(msg, msglen, -KILN_E_INVALID_ARGS, "%s: must be >= %g", where, json_number_value(lim)));
	if ((lim = json_object_get(schema, "maximum")) && x > json_number_value(lim))
		return at(path, where, kiln_fail(msg, msglen, -KILN_E_INVALID_ARGS, "%s: must be <= %g", where, json_number_value(lim)));
	if ((lim = json_object_get(schema, "exclusiveMinimum")) && !(x > json_number_value(lim)))
		return at(path, where, kiln_fail(msg, msglen, -KILN_E_INVALID_ARGS, "%s: must be > %g", where, json_number_value(lim)));
	if ((lim = json_object_get(schema, "exclusiveMaximum")) && !(x < json_number_value(lim)))
		return at(path, where, kiln_fail(msg, msglen, -KILN_E_INVALID_ARGS, "%s: must be < %g", where, json_number_value(lim)));
	if (!isfinite(x))
		return at(path, where, kiln_fail(msg, msglen, -KILN_E_INVALID_ARGS, "%s: must be finite", where));
	return 0;
}

static int check_string(const json_t *schema, const json_t *value, const char *where, char **path,
			char *msg, size_t msglen)
{
	const json_t *lim;
	size_t n;

	if (!json_is_string(value))
		return 0;
	n = utf8_codepoints(json_string_value(value), json_string_length(value));
	if ((lim = json_object_get(schema, "minLength")) && (json_int_t)n < json_integer_value(lim))
		return at(path, where, kiln_fail(msg, msglen, -KILN_E_INVALID_ARGS, "%s: must be at least %" JSON_INTEGER_FORMAT " characters", where,
			    json_integer_value(lim)));
	if ((lim = json_object_get(schema, "maxLength")) && (json_int_t)n > json_integer_value(lim))
		return at(path, where, kiln_fail(msg, msglen, -KILN_E_INVALID_ARGS, "%s: must be at most %" JSON_INTEGER_FORMAT " characters", where,
			    json_integer_value(lim)));
	return 0;
}

static int check_enum(const json_t *schema, const json_t *value, const char *where, char **path,
		      char *msg, size_t msglen)
{
	const json_t *e = json_object_get(schema, "enum");
	size_t i;
	json_t *item;
	char list[200] = "";

	if (!e)
		return 0;
	json_array_foreach(e, i, item) {
		if (json_equal(item, (json_t *)value))
			return 0;
		if (json_is_string(item) && strlen(list) + json_string_length(item) + 4 < sizeof(list))
			snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s\"%s\"", i ? ", " : "",
				 json_string_value(item));
	}
	return at(path, where, kiln_fail(msg, msglen, -KILN_E_INVALID_ARGS, "%s: must be one of %s", where, list));
}

static int validate(const json_t *schema, const json_t *value, const char *where, char **path,
		    char *msg, size_t msglen);

static int check_object(const json_t *schema, const json_t *value, const char *where, char **path,
			char *msg, size_t msglen)
{
	const json_t *props = json_object_get(schema, "properties");
	const json_t *req = json_object_get(schema, "required");
	const json_t *addl = json_object_get(schema, "additionalProperties");
	const char *key;
	json_t *v;
	size_t i;
	char sub[512];

	if (!json_is_object(value))
		return 0;
	json_array_foreach(req, i, v) {
		if (!json_object_get(value, json_string_value(v))) {
			snprintf(sub, sizeof(sub), "%s.%s", where, json_string_value(v));
			return at(path, sub, kiln_fail(msg, msglen, -KILN_E_INVALID_ARGS, "%s: is required", sub));
		}
	}
	json_object_foreach((json_t *)value, key, v) {
		const json_t *ps = props ? json_object_get(props, key) : NULL;
		snprintf(sub, sizeof(sub), "%s.%s", where, key);
		if (!ps) {
			if (json_is_false(addl))
				return at(path, sub, kiln_fail(msg, msglen, -KILN_E_INVALID_ARGS, "%s: unknown key", sub));
			continue;
		}
		if (validate(ps, v, sub, path, msg, msglen))
			return -1;
	}
	return 0;
}

static int check_array(const json_t *schema, const json_t *value, const char *where, char **path,
		       char *msg, size_t msglen)
{
	const json_t *items = json_object_get(schema, "items"), *lim;
	size_t i, n;
	json_t *v;
	char sub[512];

	if (!json_is_array(value))
		return 0;
	n = json_array_size(value);
	if ((lim = json_object_get(schema, "minItems")) && (json_int_t)n < json_integer_value(lim))
		return at(path, where, kiln_fail(msg, msglen, -KILN_E_INVALID_ARGS, "%s: needs at least %" JSON_INTEGER_FORMAT " items", where,
			    json_integer_value(lim)));
	if ((lim = json_object_get(schema, "maxItems")) && (json_int_t)n > json_integer_value(lim))
		return at(path, where, kiln_fail(msg, msglen, -KILN_E_INVALID_ARGS, "%s: allows at most %" JSON_INTEGER_FORMAT " items", where,
			    json_integer_value(lim)));
	if (!items)
		return 0;
	json_array_foreach(value, i, v) {
		snprintf(sub, sizeof(sub), "%s[%zu]", where, i);
		if (validate(items, v, sub, path, msg, msglen))
			return -1;
	}
	return 0;
}

static int check_alternatives(const json_t *schema, const json_t *value, const char *where,
			      char **path, char *msg, size_t msglen)
{
	const json_t *alts;
	size_t i, matched = 0;
	json_t *sub;
	char first_msg[256] = "";

	if ((alts = json_object_get(schema, "oneOf")) || (alts = json_object_get(schema, "anyOf"))) {
		int one = json_object_get(schema, "oneOf") != NULL;
		json_array_foreach(alts, i, sub) {
			char m[256];
			if (validate(sub, value, where, NULL, m, sizeof(m)) == 0)
				matched++;
			else if (!first_msg[0])
				snprintf(first_msg, sizeof(first_msg), "%s", m);
		}
		if (matched == 0) {
			snprintf(msg, msglen, "%s: matches none of the allowed forms (%s)", where, first_msg);
			if (path && !*path)
				*path = strdup(where);
			return -1;
		}
		if (one && matched > 1)
			return at(path, where, kiln_fail(msg, msglen, -KILN_E_INVALID_ARGS, "%s: matches more than one alternative", where));
	}
	return 0;
}

static int validate(const json_t *schema, const json_t *value, const char *where, char **path,
		    char *msg, size_t msglen)
{
	if (check_type(schema, value, where, path, msg, msglen) ||
	    check_enum(schema, value, where, path, msg, msglen) ||
	    check_number(schema, value, where, path, msg, msglen) ||
	    check_string(schema, value, where, path, msg, msglen) ||
	    check_object(schema, value, where, path, msg, msglen) ||
	    check_array(schema, value, where, path, msg, msglen) ||
	    check_alternatives(schema, value, where, path, msg, msglen))
		return -1;
	return 0;
}

int schema_validate(const json_t *schema, const json_t *value, const char *root, char **path,
		    char *msg, size_t msglen)
{
	if (path)
		*path = NULL;
	return validate(schema, value, root, path, msg, msglen);
}
