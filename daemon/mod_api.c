/*
 * The module API's implementation (see mod_api.h and include/kiln/module.h).
 */
#include "mod_api.h"

#include <dlfcn.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kiln/utf8.h"
#include "schema.h"

/* --- Loading ---------------------------------------------------------------- */

struct kiln_mod_registry {
	const json_t *config;
	char *config_text;
	struct mod_action *actions;
	size_t count, cap;
	int code;
	char err[512];
};

int mod_file_check(int fd, char *err, size_t errlen)
{
	struct stat st;

	if (fstat(fd, &st) != 0) {
		snprintf(err, errlen, "cannot stat: %m");
		return -KILN_E_FORBIDDEN;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "not a regular file");
		return -KILN_E_FORBIDDEN;
	}
	if (st.st_uid != 0 && st.st_uid != geteuid()) {
		snprintf(err, errlen, "owned by uid %u: a module must be owned by root or kilnd's uid %u",
			 (unsigned)st.st_uid, (unsigned)geteuid());
		return -KILN_E_FORBIDDEN;
	}
	if (st.st_mode & S_IWOTH) {
		snprintf(err, errlen, "writable by others (mode %04o): run chmod o-w", (unsigned)(st.st_mode & 07777));
		return -KILN_E_FORBIDDEN;
	}
	if ((st.st_mode & S_IWGRP) && st.st_gid != 0) {
		snprintf(err, errlen, "writable by group %u (mode %04o): run chmod g-w", (unsigned)st.st_gid,
			 (unsigned)(st.st_mode & 07777));
		return -KILN_E_FORBIDDEN;
	}
	return 0;
}

static bool valid_name(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > MOD_NAME_MAX || !strchr(name, '.') || name[0] == '.' || name[n - 1] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'))
			return false;
	}
	return true;
}

static int check_schema(const char *text, const char *which, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *s;
	char why[256];
	int rc = 0;

	if (!text)
		return 0;
	s = json_loads(text, 0, &jerr);
	if (!json_is_object(s)) {
		snprintf(err, errlen, "%s schema is not a JSON object: %s", which, s ? "" : jerr.text);
		json_decref(s);
		return -1;
	}
	if (schema_check(s, why, sizeof(why))) {
		snprintf(err, errlen, "%s schema: %s", which, why);
		rc = -1;
	}
	json_decref(s);
	return rc;
}

int mod_action_check(const char *name, const char *args_schema, const char *data_schema, char *err,
		     size_t errlen)
{
	char why[400];

	if (!valid_name(name)) {
		snprintf(err, errlen,
			 "action name \"%.80s\" is not \"prefix.name\" of a-z, 0-9, '_', '-' (at most %d bytes)",
			 name ? name : "(null)", MOD_NAME_MAX);
		return -1;
	}
	if (check_schema(args_schema, "args", why, sizeof(why)) ||
	    check_schema(data_schema, "data", why, sizeof(why))) {
		snprintf(err, errlen, "action %s: %s", name, why);
		return -1;
	}
	return 0;
}

static void free_actions(struct mod_action *a, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(a[i].name);
		free(a[i].summary);
		free(a[i].args_schema);
		free(a[i].data_schema);
	}
	free(a);
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

int kiln_mod_register(kiln_mod_registry *reg, const struct kiln_mod_action *action)
{
	struct mod_action *a;

	if (reg->code)
		return -reg->code;
	if (!action || !action->handler) {
		kiln_mod_init_fail(reg, KILN_E_INVALID_ARGS, "kiln_mod_register: an action needs a handler");
		return -KILN_E_INVALID_ARGS;
	}
	if (mod_action_check(action->name, action->args_schema, action->data_schema, reg->err,
			     sizeof(reg->err))) {
		reg->code = KILN_E_INVALID_ARGS;
		return -KILN_E_INVALID_ARGS;
	}
	for (size_t i = 0; i < reg->count; i++) {
		if (strcmp(reg->actions[i].name, action->name) == 0) {
			kiln_mod_init_fail(reg, KILN_E_INVALID_ARGS, "action %s is registered twice", action->name);
			return -KILN_E_INVALID_ARGS;
		}
	}
	if (reg->count == reg->cap) {
		size_t cap = reg->cap ? reg->cap * 2 : 8;
		struct mod_action *n = realloc(reg->actions, cap * sizeof(*n));
		if (!n)
			return kiln_mod_init_fail(reg, KILN_E_INTERNAL, "out of memory");
		reg->actions = n;
		reg->cap = cap;
	}
	a = &reg->actions[reg->count];
	a->name = strdup(action->name);
	a->summary = strdup(action->summary ? action->summary : "");
	a->args_schema = dup_or_null(action->args_schema);
	a->data_schema = dup_or_null(action->data_schema);
	a->handler = action->handler;
	reg->count++;
	if (!a->name || !a->summary || (action->args_schema && !a->args_schema) ||
	    (action->data_schema && !a->data_schema))
		return kiln_mod_init_fail(reg, KILN_E_INTERNAL, "out of memory");
	return 0;
}

const char *kiln_mod_config_json(kiln_mod_registry *reg)
{
	if (!reg->config_text)
		reg->config_text = json_dumps(reg->config, JSON_COMPACT);
	return reg->config_text ? reg->config_text : "{}";
}

static int config_get(kiln_mod_registry *reg, const char *key, json_t **v)
{
	*v = key ? json_object_get(reg->config, key) : NULL;
	return *v ? 0 : -KILN_E_NOT_FOUND;
}

int kiln_mod_config_int(kiln_mod_registry *reg, const char *key, int64_t *out)
{
	json_t *v;

	if (config_get(reg, key, &v))
		return -KILN_E_NOT_FOUND;
	if (!json_is_integer(v))
		return -KILN_E_INVALID_ARGS;
	*out = json_integer_value(v);
	return 0;
}

int kiln_mod_config_float(kiln_mod_registry *reg, const char *key, double *out)
{
	json_t *v;

	if (config_get(reg, key, &v))
		return -KILN_E_NOT_FOUND;
	if (!json_is_number(v))
		return -KILN_E_INVALID_ARGS;
	*out = json_number_value(v);
	return 0;
}

int kiln_mod_config_string(kiln_mod_registry *reg, const char *key, const char **out)
{
	json_t *v;

	if (config_get(reg, key, &v))
		return -KILN_E_NOT_FOUND;
	if (!json_is_string(v))
		return -KILN_E_INVALID_ARGS;
	*out = json_string_value(v);
	return 0;
}

static int clamp_code(int code)
{
	if (code < 0)
		code = -code;
	return code > 0 && code < KILN_E_COUNT ? code : KILN_E_INTERNAL;
}

int kiln_mod_init_fail(kiln_mod_registry *reg, int code, const char *fmt, ...)
{
	va_list ap;

	reg->code = clamp_code(code);
	va_start(ap, fmt);
	vsnprintf(reg->err, sizeof(reg->err), fmt, ap);
	va_end(ap);
	return -reg->code;
}

struct mod_lib *mod_lib_open(int fd, const char *path, const json_t *config, char *err, size_t errlen)
{
	kiln_mod_registry reg = { .config = config };
	int (*init)(kiln_mod_registry *);
	const uint32_t *abi;
	struct mod_lib *lib;
	char fdpath[64];
	void *dl;
	int rc;

	snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", fd);
	dl = dlopen(fdpath, RTLD_NOW | RTLD_LOCAL);
	if (!dl) {
		snprintf(err, errlen, "%s: cannot load: %s", path, dlerror());
		return NULL;
	}
	abi = dlsym(dl, "kiln_module_abi_version");
	init = (int (*)(kiln_mod_registry *))dlsym(dl, "kiln_module_init");
	if (!abi || !init) {
		snprintf(err, errlen, "%s: not a kiln module (no %s; see kiln/module.h)", path,
			 abi ? "kiln_module_init" : "KILN_MODULE_DECLARE()");
		dlclose(dl);
		return NULL;
	}
	if (*abi != KILN_MODULE_ABI_VERSION) {
		snprintf(err, errlen, "%s: built for kiln module ABI version %u, but kilnd implements version %u",
			 path, (unsigned)*abi, (unsigned)KILN_MODULE_ABI_VERSION);
		dlclose(dl);
		return NULL;
	}
	rc = init(&reg);
	if (rc == 0 && reg.code)
		rc = -reg.code;
	if (rc == 0 && reg.count == 0)
		rc = kiln_mod_init_fail(&reg, KILN_E_INVALID_ARGS, "registers no action");
	free(reg.config_text);
	if (rc) {
		snprintf(err, errlen, "%s: kiln_module_init failed (%s): %s", path, kiln_err_name(clamp_code(rc)),
			 reg.err[0] ? reg.err : "no message");
		free_actions(reg.actions, reg.count);
		dlclose(dl);
		return NULL;
	}
	lib = calloc(1, sizeof(*lib));
	if (!lib) {
		snprintf(err, errlen, "out of memory");
		free_actions(reg.actions, reg.count);
		dlclose(dl);
		return NULL;
	}
	lib->dl = dl;
	lib->actions = reg.actions;
	lib->count = reg.count;
	return lib;
}

void mod_lib_close(struct mod_lib *lib)
{
	if (!lib)
		return;
	free_actions(lib->actions, lib->count);
	dlclose(lib->dl);
	free(lib);
}

/* --- Calls ----------------------------------------------------------------------- */

/* A C array handed to the handler, freed with the call. */
struct mod_block {
	struct mod_block *next;
	_Alignas(16) unsigned char data[];
};

static void *call_block(kiln_mod_call *call, size_t bytes)
{
	struct mod_block *b = malloc(sizeof(*b) + (bytes ? bytes : 1));

	if (!b)
		return NULL;
	b->next = call->blocks;
	call->blocks = b;
	return b->data;
}

void mod_call_init(struct kiln_mod_call *call, const json_t *args, const void *attach, size_t attach_len,
		   size_t out_max, const struct mod_call_ops *ops, void *ctx)
{
	memset(call, 0, sizeof(*call));
	call->args = args;
	call->attach = attach;
	call->attach_len = attach_len;
	call->out_max = out_max;
	call->ops = ops;
	call->ctx = ctx;
	call->data = json_object();
	snprintf(call->message, sizeof(call->message), "ok");
}

int mod_call_run(struct kiln_mod_call *call, kiln_mod_handler handler)
{
	int rc = handler(call);

	if (rc && !call->code) {
		call->code = clamp_code(rc);
		snprintf(call->message, sizeof(call->message), "the module action failed (%s)",
			 kiln_err_name(call->code));
	}
	if (!call->code && !call->data)
		kiln_mod_fail(call, KILN_E_INTERNAL, "out of memory building the results");
	if (call->code && call->out) {
		call->ops->out_release(call->ctx, call->out, call->out_len);
		call->out = NULL;
		call->out_len = 0;
	}
	if (!call->code && call->out)
		json_object_set_new(call->data, "attachment", json_integer((json_int_t)call->out_len));
	return call->code;
}

void mod_call_release(struct kiln_mod_call *call)
{
	while (call->blocks) {
		struct mod_block *b = call->blocks;
		call->blocks = b->next;
		free(b);
	}
	if (call->out)
		call->ops->out_release(call->ctx, call->out, call->out_len);
	call->out = NULL;
	json_decref(call->data);
	call->data = NULL;
	free(call->args_text);
	call->args_text = NULL;
}

static int arg_get(kiln_mod_call *call, const char *key, json_t **v)
{
	*v = key ? json_object_get(call->args, key) : NULL;
	return *v ? 0 : -KILN_E_NOT_FOUND;
}

bool kiln_mod_has_arg(kiln_mod_call *call, const char *key)
{
	json_t *v;
	return arg_get(call, key, &v) == 0;
}

int kiln_mod_arg_int(kiln_mod_call *call, const char *key, int64_t *out)
{
	json_t *v;

	if (arg_get(call, key, &v))
		return -KILN_E_NOT_FOUND;
	if (!json_is_integer(v))
		return -KILN_E_INVALID_ARGS;
	*out = (int64_t)json_integer_value(v);
	return 0;
}

int kiln_mod_arg_float(kiln_mod_call *call, const char *key, double *out)
{
	json_t *v;

	if (arg_get(call, key, &v))
		return -KILN_E_NOT_FOUND;
	if (!json_is_number(v))
		return -KILN_E_INVALID_ARGS;
	*out = json_number_value(v);
	return 0;
}

int kiln_mod_arg_bool(kiln_mod_call *call, const char *key, bool *out)
{
	json_t *v;

	if (arg_get(call, key, &v))
		return -KILN_E_NOT_FOUND;
	if (!json_is_boolean(v))
		return -KILN_E_INVALID_ARGS;
	*out = json_is_true(v);
	return 0;
}

int kiln_mod_arg_string(kiln_mod_call *call, const char *key, const char **out, size_t *len)
{
	json_t *v;

	if (arg_get(call, key, &v))
		return -KILN_E_NOT_FOUND;
	if (!json_is_string(v))
		return -KILN_E_INVALID_ARGS;
	*out = json_string_value(v);
	if (len)
		*len = json_string_length(v);
	return 0;
}

static int arg_array(kiln_mod_call *call, const char *key, bool integers, void **out, size_t *n)
{
	size_t i, count;
	json_t *v, *item;
	double *d;
	int64_t *l;

	if (arg_get(call, key, &v))
		return -KILN_E_NOT_FOUND;
	if (!json_is_array(v))
		return -KILN_E_INVALID_ARGS;
	count = json_array_size(v);
	json_array_foreach(v, i, item) {
		if (integers ? !json_is_integer(item) : !json_is_number(item))
			return -KILN_E_INVALID_ARGS;
	}
	*n = count;
	*out = NULL;
	if (count == 0)
		return 0;
	*out = call_block(call, count * 8);
	if (!*out)
		return -KILN_E_INTERNAL;
	d = *out;
	l = *out;
	json_array_foreach(v, i, item) {
		if (integers)
			l[i] = (int64_t)json_integer_value(item);
		else
			d[i] = json_number_value(item);
	}
	return 0;
}

int kiln_mod_arg_f64_array(kiln_mod_call *call, const char *key, const double **out, size_t *n)
{
	return arg_array(call, key, false, (void **)out, n);
}

int kiln_mod_arg_i64_array(kiln_mod_call *call, const char *key, const int64_t **out, size_t *n)
{
	return arg_array(call, key, true, (void **)out, n);
}

const char *kiln_mod_args_json(kiln_mod_call *call)
{
	if (!call->args_text)
		call->args_text = json_dumps(call->args, JSON_COMPACT);
	return call->args_text ? call->args_text : "{}";
}

size_t kiln_mod_elem_size(enum kiln_mod_elem type)
{
	switch (type) {
	case KILN_MOD_F64:
	case KILN_MOD_I64:
		return 8;
	case KILN_MOD_F32:
	case KILN_MOD_I32:
		return 4;
	case KILN_MOD_U8:
		return 1;
	}
	return 0;
}

const void *kiln_mod_attachment(kiln_mod_call *call, size_t *len)
{
	if (len)
		*len = call->attach ? call->attach_len : 0;
	return call->attach;
}

int kiln_mod_attachment_array(kiln_mod_call *call, enum kiln_mod_elem type, const void **out, size_t *n)
{
	size_t es = kiln_mod_elem_size(type);

	if (!es)
		return -KILN_E_INVALID_ARGS;
	if (!call->attach)
		return -KILN_E_NOT_FOUND;
	if (call->attach_len % es)
		return -KILN_E_INVALID_ARGS;
	*out = call->attach;
	*n = call->attach_len / es;
	return 0;
}

/* Sets data.<key> to v (stolen, also on failure). */
static int set_result(kiln_mod_call *call, const char *key, json_t *v)
{
	if (!v)
		return -KILN_E_INTERNAL;
	if (!key || !call->data) {
		json_decref(v);
		return key ? -KILN_E_INTERNAL : -KILN_E_INVALID_ARGS;
	}
	/* json_object_set_new steals v even when it fails. */
	return json_object_set_new(call->data, key, v) == 0 ? 0 : -KILN_E_INTERNAL;
}

int kiln_mod_result_int(kiln_mod_call *call, const char *key, int64_t value)
{
	return set_result(call, key, json_integer((json_int_t)value));
}

int kiln_mod_result_float(kiln_mod_call *call, const char *key, double value)
{
	if (!isfinite(value))
		return -KILN_E_INVALID_ARGS;
	return set_result(call, key, json_real(value));
}

int kiln_mod_result_bool(kiln_mod_call *call, const char *key, bool value)
{
	return set_result(call, key, json_boolean(value));
}

int kiln_mod_result_string(kiln_mod_call *call, const char *key, const char *value)
{
	if (!value || kiln_utf8_valid_prefix((const uint8_t *)value, strlen(value)) != strlen(value))
		return -KILN_E_INVALID_ARGS;
	return set_result(call, key, json_string(value));
}

static int result_array(kiln_mod_call *call, const char *key, const double *d, const int64_t *l, size_t n)
{
	json_t *arr = json_array();

	if (!arr)
		return -KILN_E_INTERNAL;
	for (size_t i = 0; i < n; i++) {
		if (d && !isfinite(d[i])) {
			json_decref(arr);
			return -KILN_E_INVALID_ARGS;
		}
		if (json_array_append_new(arr, d ? json_real(d[i]) : json_integer((json_int_t)l[i]))) {
			json_decref(arr);
			return -KILN_E_INTERNAL;
		}
	}
	return set_result(call, key, arr);
}

int kiln_mod_result_f64_array(kiln_mod_call *call, const char *key, const double *values, size_t n)
{
	if (!values && n)
		return -KILN_E_INVALID_ARGS;
	return result_array(call, key, values ? values : (const double *)"", NULL, n);
}

int kiln_mod_result_i64_array(kiln_mod_call *call, const char *key, const int64_t *values, size_t n)
{
	if (!values && n)
		return -KILN_E_INVALID_ARGS;
	return result_array(call, key, NULL, values ? values : (const int64_t *)"", n);
}

void kiln_mod_message(kiln_mod_call *call, const char *fmt, ...)
{
	va_list ap;

	if (call->code)
		return;
	va_start(ap, fmt);
	vsnprintf(call->message, sizeof(call->message), fmt, ap);
	va_end(ap);
}

void *kiln_mod_output(kiln_mod_call *call, size_t len)
{
	if (call->out) {
		call->ops->out_release(call->ctx, call->out, call->out_len);
		call->out = NULL;
		call->out_len = 0;
	}
	if (len > call->out_max)
		return NULL;
	call->out = call->ops->out_alloc(call->ctx, len);
	call->out_len = call->out ? len : 0;
	return call->out;
}

void kiln_mod_progress(kiln_mod_call *call, uint64_t done, uint64_t total)
{
	call->ops->progress(call->ctx, done, total);
}

bool kiln_mod_cancelled(kiln_mod_call *call)
{
	return call->ops->cancelled(call->ctx);
}

int kiln_mod_fail(kiln_mod_call *call, int code, const char *fmt, ...)
{
	va_list ap;

	call->code = clamp_code(code);
	va_start(ap, fmt);
	vsnprintf(call->message, sizeof(call->message), fmt, ap);
	va_end(ap);
	return -call->code;
}
