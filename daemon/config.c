/*
 * The configuration file: one JSON object of flat keys.  Every key is a row
 * of `keys[]` with its type, range, default and documentation; defaults are
 * applied through the same setter as file values, so a default can never be
 * something the file could not say.  Keys starting with "#" are comments.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kiln/error.h"
#include "log.h"
#include "modules.h"

enum ktype { K_STR, K_PATH, K_UINT, K_U64, K_SIZE, K_DOUBLE, K_MODE, K_LEVEL, K_IDS, K_ROOTS, K_OBJECT, K_MODULES };

struct key {
	const char *name;
	enum ktype type;
	size_t off;
	double min, max;
	const char *def; /* JSON text */
	const char *doc;
};

#define OFF(f) offsetof(struct kiln_config, f)
#define GiB (1024.0 * 1024 * 1024)
static const struct key keys[] = {
	{ "socket", K_PATH, OFF(socket), 0, 0, "\"\"",
	  "Unix socket path; empty means $KILN_SOCKET, $RUNTIME_DIRECTORY/kiln.sock, "
	  "$XDG_RUNTIME_DIR/kiln/kiln.sock or /tmp/kiln-$UID/kiln.sock, in that order" },
	{ "socket_mode", K_MODE, OFF(socket_mode), 0, 0777, "\"0660\"",
	  "permissions of the socket file, as an octal string" },
	{ "log_level", K_LEVEL, OFF(log_level), 0, 0, "\"info\"", "error, warn, info or debug" },
	{ "threads", K_UINT, OFF(threads), 0, 1024, "0",
	  "thread-pool size for CPU work; 0 means the number of CPUs plus one, so that one user's share "
	  "(pool_threads_per_uid) covers every CPU (read at startup only)" },
	{ "pool_threads_per_uid", K_UINT, OFF(pool_threads_per_uid), 0, 1024, "0",
	  "thread-pool work items one uid may have running at once (more wait their turn), so one "
	  "user's long jobs never take every thread; 0 means the pool size minus one (at least 1)" },
	{ "default_timeout", K_DOUBLE, OFF(default_timeout), 0.001, 1e7, "30",
	  "seconds a request may run when it names no timeout" },
	{ "max_timeout", K_DOUBLE, OFF(max_timeout), 0.001, 1e7, "86400",
	  "largest timeout a request may name, in seconds" },
	{ "max_retries", K_UINT, OFF(max_retries), 0, 1000, "10", "largest retries a request may name" },
	{ "max_line_bytes", K_SIZE, OFF(max_line_bytes), 64, 1 * GiB, "1048576",
	  "longest request line; longer gets too_large and the connection is closed" },
	{ "max_attachment_bytes", K_SIZE, OFF(max_attachment_bytes), 0, 16 * GiB, "268435456",
	  "largest raw attachment a request may carry" },
	{ "max_attachment_bytes_per_uid", K_SIZE, OFF(max_attachment_bytes_per_uid), 0, 64 * GiB, "268435456",
	  "attachment bytes one uid's requests may hold at once, counted as they arrive (too_large beyond)" },
	{ "max_attachment_bytes_total", K_SIZE, OFF(max_attachment_bytes_total), 0, 1024 * GiB, "1073741824",
	  "attachment bytes all requests may hold at once, counted as they arrive (too_large beyond)" },
	{ "max_file_bytes", K_SIZE, OFF(max_file_bytes), 0, 64 * GiB, "1073741824",
	  "largest file the daemon reads on a client's behalf" },
	{ "max_connections", K_UINT, OFF(max_connections), 1, 1000000, "1024",
	  "connections served at once; beyond it new connections get busy and are closed" },
	{ "max_connections_per_uid", K_UINT, OFF(max_connections_per_uid), 1, 1000000, "64",
	  "connections one uid may hold at once; beyond it its new connections get busy and are closed" },
	{ "max_inflight_per_uid", K_UINT, OFF(max_inflight_per_uid), 1, 1000000, "512",
	  "requests one uid may have in flight over all its connections, detached jobs included "
	  "(busy beyond)" },
	{ "idle_timeout", K_DOUBLE, OFF(idle_timeout), 0, 1e7, "600",
	  "seconds a connection with nothing in flight may stay silent before it is closed (0: never)" },
	{ "max_inflight_per_conn", K_UINT, OFF(max_inflight_per_conn), 1, 1000000, "256",
	  "requests in flight per connection; at the limit the daemon stops reading that "
	  "connection until one finishes (backpressure, no error)" },
	{ "max_output_buffer", K_SIZE, OFF(max_output_buffer), 4096, 16 * GiB, "16777216",
	  "reply bytes queued for a client that does not read; above it its reads pause" },
	{ "shutdown_grace", K_DOUBLE, OFF(shutdown_grace), 0, 3600, "10",
	  "seconds in-flight work may finish after SIGTERM before it is cancelled" },
	{ "allowed_uids", K_IDS, OFF(allowed_uids), 0, UINT_MAX, "[]",
	  "peer uids allowed to use the socket (empty: anyone who can open it; with "
	  "allowed_gids, a peer matching either list is allowed)" },
	{ "allowed_gids", K_IDS, OFF(allowed_gids), 0, UINT_MAX, "[]",
	  "peer gids allowed to use the socket (primary or supplementary group)" },
	{ "admin_uids", K_IDS, OFF(admin_uids), 0, UINT_MAX, "[]",
	  "uids besides root that may list and unload every user's corpora, scenes and jobs and see "
	  "per-user figures in stats (never read their contents)" },
	{ "admin_gids", K_IDS, OFF(admin_gids), 0, UINT_MAX, "[]",
	  "gids (primary or supplementary) whose members are admins as admin_uids" },
	{ "path_roots", K_ROOTS, OFF(path_roots), 0, 0, "[]",
	  "directories beneath which the daemon reads or writes files named by clients, with the "
	  "client's rights; their contents must be readable by every allowed user; "
	  "empty refuses every path (forbidden)" },
	{ "pi_max_digits", K_U64, OFF(pi_max_digits), 0, 1e9, "10000000", "largest pi request" },
	{ "pi_cache_max_digits", K_U64, OFF(pi_cache_max_digits), 0, 1e9, "10000000",
	  "largest pi expansion kept in memory for later requests (0: no cache)" },
	{ "corpus_memory_budget", K_SIZE, OFF(corpus_memory_budget), 0, 1024 * GiB, "268435456",
	  "bytes all loaded corpora may hold together (decrypted text and indexes)" },
	{ "corpus_memory_per_uid", K_SIZE, OFF(corpus_memory_per_uid), 0, 1024 * GiB, "67108864",
	  "bytes one user's corpora may hold together (too_large beyond)" },
	{ "scene_max_pixels", K_U64, OFF(scene_max_pixels), 1, 1e10, "33554432",
	  "largest render held whole in memory (attached to the reply); larger frames and regions render to a file (output, streamed) or by region" },
	{ "scene_max_elements", K_UINT, OFF(scene_max_elements), 1, 1e8, "1000000",
	  "elements (spheres, planes, triangles) per scene" },
	{ "scene_max_scenes", K_UINT, OFF(scene_max_scenes), 1, 1e6, "64", "scenes kept at once" },
	{ "scene_max_scenes_per_uid", K_UINT, OFF(scene_max_scenes_per_uid), 1, 1e6, "16",
	  "scenes one user may keep at once" },
	{ "scene_max_texture_pixels", K_U64, OFF(scene_max_texture_pixels), 1, 1e10, "16777216",
	  "largest texture" },
	{ "scene_memory_budget", K_SIZE, OFF(scene_memory_budget), 0, 1024 * GiB, "1073741824",
	  "bytes all scenes, meshes and textures may hold together" },
	{ "scene_memory_per_uid", K_SIZE, OFF(scene_memory_per_uid), 0, 1024 * GiB, "268435456",
	  "bytes one user's scenes may hold together" },
	{ "procedures", K_OBJECT, OFF(procedures), 0, 0, "{}",
	  "host procedures clients may run by name (see proto/README.md)" },
	{ "state_dir", K_PATH, OFF(state_dir), 0, 0, "\"\"",
	  "directory for finished job records; empty: $STATE_DIRECTORY, else records are kept in memory only" },
	{ "max_detached_per_uid", K_UINT, OFF(max_detached_per_uid), 0, 1000000, "32",
	  "detached jobs one uid may have running at once (busy beyond)" },
	{ "max_detached_record_bytes_per_uid", K_SIZE, OFF(max_detached_record_bytes_per_uid), 0, 64 * GiB,
	  "67108864",
	  "bytes of detached-job records (final replies) kept for one uid; a reply that does not fit is "
	  "replaced by a too_large error and new detached jobs are refused" },
	{ "job_retention", K_DOUBLE, OFF(job_retention), 0, 1e8, "86400",
	  "seconds a finished detached job's record is kept" },
	{ "modules", K_MODULES, OFF(modules), 0, 0, "[]",
	  "native modules to load: [{\"path\": FILE.so, \"isolation\": \"process\" (default) or \"thread\", "
	  "\"workers\": N (default 1), \"config\": {...}}] (see include/kiln/module.h)" },
	{ "module_kill_grace", K_DOUBLE, OFF(module_kill_grace), 0, 3600, "1",
	  "seconds a cancelled or timed-out module call in process isolation may take to return "
	  "before its worker process is killed" },
};
#undef OFF

static struct {
	struct kiln_config *current;
	unsigned pool_threads; /* fixed at the first config_pool_threads() */
} config_state;

#define FIELD(cfg, k, type) ((type *)((char *)(cfg) + (k)->off))

static char *resolve_rel(const char *base_dir, const char *path)
{
	char *out;
	if (path[0] == '/' || path[0] == '\0' || !base_dir)
		return strdup(path);
	if (asprintf(&out, "%s/%s", base_dir, path) < 0)
		return NULL;
	return out;
}

static int set_roots(struct kiln_config *cfg, const struct key *k, json_t *v, const char *base_dir,
		     char *err, size_t errlen)
{
	size_t i, n;
	json_t *item, *arr;

	if (!json_is_array(v))
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "config key \"%s\": expected an array of directory names", k->name);
	n = json_array_size(v);
	arr = json_array();
	cfg->path_root = calloc(n ? n : 1, sizeof(char *));
	if (!arr || !cfg->path_root)
		fatal("out of memory");
	cfg->path_roots = arr;
	json_array_foreach(v, i, item) {
		char *rel, *real;
		struct stat st;
		if (!json_is_string(item))
			return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "config key \"%s\": expected an array of directory names", k->name);
		rel = resolve_rel(base_dir, json_string_value(item));
		if (!rel)
			fatal("out of memory");
		real = realpath(rel, NULL);
		if (!real || stat(real, &st) != 0 || !S_ISDIR(st.st_mode)) {
			kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "config key \"%s\": \"%s\" is not an existing directory", k->name, rel);
			free(rel);
			free(real);
			return -1;
		}
		free(rel);
		cfg->path_root[cfg->path_root_count++] = real;
		json_array_append_new(arr, json_string(real));
	}
	return 0;
}

static int set_key(struct kiln_config *cfg, const struct key *k, json_t *v, const char *base_dir,
		   char *err, size_t errlen)
{
	double d;
	char *end;

	switch (k->type) {
	case K_STR:
	case K_PATH:
		if (!json_is_string(v))
			return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "config key \"%s\": expected a string", k->name);
		free(*FIELD(cfg, k, char *));
		*FIELD(cfg, k, char *) = k->type == K_PATH ? resolve_rel(base_dir, json_string_value(v))
							     : strdup(json_string_value(v));
		return 0;
	case K_LEVEL:
		if (!json_is_string(v) || log_level_parse(json_string_value(v)) < 0)
			return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "config key \"%s\": expected one of error, warn, info, debug", k->name);
		free(cfg->log_level);
		cfg->log_level = strdup(json_string_value(v));
		return 0;
	case K_MODE: {
		unsigned long m;
		const char *s = json_is_string(v) ? json_string_value(v) : "";
		errno = 0;
		m = strtoul(s, &end, 8);
		if (!*s || *end || errno || m > (unsigned long)k->max)
			return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "config key \"%s\": expected an octal mode string like \"0660\"", k->name);
		cfg->socket_mode = (unsigned)m;
		return 0;
	}
	case K_UINT:
	case K_U64:
	case K_SIZE:
		if (!json_is_integer(v))
			return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "config key \"%s\": expected an integer", k->name);
		d = (double)json_integer_value(v);
		if (d < k->min || d > k->max)
			return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "config key \"%s\": out of range [%.0f, %.0f]", k->name, k->min, k->max);
		if (k->type == K_UINT)
			*FIELD(cfg, k, unsigned) = (unsigned)json_integer_value(v);
		else if (k->type == K_U64)
			*FIELD(cfg, k, uint64_t) = (uint64_t)json_integer_value(v);
		else
			*FIELD(cfg, k, size_t) = (size_t)json_integer_value(v);
		return 0;
	case K_DOUBLE:
		if (!json_is_number(v))
			return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "config key \"%s\": expected a number", k->name);
		d = json_number_value(v);
		if (!(d >= k->min && d <= k->max))
			return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "config key \"%s\": out of range [%g, %g]", k->name, k->min, k->max);
		*FIELD(cfg, k, double) = d;
		return 0;
	case K_IDS: {
		size_t i;
		json_t *item;
		if (!json_is_array(v))
			return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "config key \"%s\": expected an array of integers", k->name);
		json_array_foreach(v, i, item) {
			if (!json_is_integer(item) || json_integer_value(item) < 0 ||
			    json_integer_value(item) > (json_int_t)UINT_MAX - 1)
				return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "config key \"%s\": expected an array of ids", k->name);
		}
		json_decref(*FIELD(cfg, k, json_t *));
		*FIELD(cfg, k, json_t *) = json_deep_copy(v);
		return 0;
	}
	case K_ROOTS:
		return set_roots(cfg, k, v, base_dir, err, errlen);
	case K_MODULES: {
		json_t *list;
		if (module_config_parse(v, base_dir, &list, err, errlen))
			return -1;
		json_decref(*FIELD(cfg, k, json_t *));
		*FIELD(cfg, k, json_t *) = list;
		return 0;
	}
	case K_OBJECT:
		if (!json_is_object(v))
			return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "config key \"%s\": expected an object", k->name);
		json_decref(*FIELD(cfg, k, json_t *));
		*FIELD(cfg, k, json_t *) = json_deep_copy(v);
		return 0;
	}
	return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "config key \"%s\": unknown type", k->name);
}

static const struct key *find_key(const char *name)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

json_t *config_limit_detail(const struct kiln_config *cfg, const char *key)
{
	const struct key *k = find_key(key);
	json_t *max;

	if (!k)
		return NULL;
	switch (k->type) {
	case K_UINT: max = json_integer((json_int_t)*FIELD(cfg, k, unsigned)); break;
	case K_U64: max = json_integer((json_int_t)*FIELD(cfg, k, uint64_t)); break;
	case K_SIZE: max = json_integer((json_int_t)*FIELD(cfg, k, size_t)); break;
	case K_DOUBLE: max = json_real(*FIELD(cfg, k, double)); break;
	default: return NULL;
	}
	return json_pack("{s:s, s:o}", "limit", k->name, "max", max);
}

/* The numeric config key named first in msg, as a whole word. */
static const char *limit_named_in(const char *msg)
{
	const char *best = NULL, *best_at = NULL;

	for (size_t i = 0; msg && i < sizeof(keys) / sizeof(keys[0]); i++) {
		size_t n = strlen(keys[i].name);
		for (const char *at = strstr(msg, keys[i].name); at; at = strstr(at + 1, keys[i].name)) {
			bool word = (at == msg || !(isalnum((unsigned char)at[-1]) || at[-1] == '_')) &&
				    !(isalnum((unsigned char)at[n]) || at[n] == '_');
			if (!word)
				continue;
			if (!best_at || at < best_at) {
				best = keys[i].name;
				best_at = at;
			}
			break;
		}
	}
	return best;
}

json_t *config_limit_complete(const struct kiln_config *cfg, json_t *detail, const char *msg)
{
	json_t *lim = detail ? json_object_get(detail, "limit") : NULL;
	const char *key;
	json_t *add;

	if (detail && !json_is_object(detail))
		return detail;
	if (lim && json_is_string(lim) && json_object_get(detail, "max"))
		return detail;
	key = lim && json_is_string(lim) ? json_string_value(lim) : limit_named_in(msg);
	add = key ? config_limit_detail(cfg, key) : NULL;
	if (!add)
		return detail;
	if (!detail)
		return add;
	json_object_update(detail, add);
	json_decref(add);
	return detail;
}

static int apply_defaults(struct kiln_config *cfg, char *err, size_t errlen)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		json_t *v = json_loads(keys[i].def, JSON_DECODE_ANY, NULL);
		int rc;
		if (!v)
			fatal("config: bad default for %s", keys[i].name);
		rc = set_key(cfg, &keys[i], v, NULL, err, errlen);
		json_decref(v);
		if (rc)
			fatal("config: default for %s rejected: %s", keys[i].name, err);
	}
	return 0;
}

static void free_roots(struct kiln_config *cfg)
{
	for (size_t i = 0; i < cfg->path_root_count; i++)
		free(cfg->path_root[i]);
	free(cfg->path_root);
	cfg->path_root = NULL;
	cfg->path_root_count = 0;
	json_decref(cfg->path_roots);
	cfg->path_roots = NULL;
}

static void config_free(struct kiln_config *cfg)
{
	if (!cfg)
		return;
	free(cfg->socket);
	free(cfg->log_level);
	free(cfg->state_dir);
	free(cfg->source);
	json_decref(cfg->allowed_uids);
	json_decref(cfg->allowed_gids);
	json_decref(cfg->admin_uids);
	json_decref(cfg->admin_gids);
	json_decref(cfg->procedures);
	json_decref(cfg->modules);
	free_roots(cfg);
	free(cfg);
}

static int load_file(struct kiln_config *cfg, const char *path, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root, *v;
	const char *name;
	char *dir, *slash;
	int rc = 0;

	root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		snprintf(err, errlen, "config %s: line %d: %s", path, jerr.line, jerr.text);
		return -1;
	}
	if (!json_is_object(root)) {
		snprintf(err, errlen, "config %s: expected a JSON object", path);
		json_decref(root);
		return -1;
	}
	dir = realpath(path, NULL);
	if (dir && (slash = strrchr(dir, '/')))
		*(slash == dir ? slash + 1 : slash) = '\0';
	json_object_foreach(root, name, v) {
		const struct key *k;
		if (name[0] == '#')
			continue;
		k = find_key(name);
		if (!k) {
			snprintf(err, errlen, "config %s: unknown key \"%s\"", path, name);
			rc = -1;
			break;
		}
		if (k->type == K_ROOTS)
			free_roots(cfg);
		if (set_key(cfg, k, v, dir, err, errlen) != 0) {
			rc = -1;
			break;
		}
	}
	free(dir);
	json_decref(root);
	return rc;
}

struct kiln_config *config_load(const char *path, char *err, size_t errlen)
{
	struct kiln_config *cfg = calloc(1, sizeof(*cfg));

	if (!cfg)
		fatal("out of memory");
	atomic_init(&cfg->refs, 1);
	apply_defaults(cfg, err, errlen);
	if (path && load_file(cfg, path, err, errlen) != 0) {
		config_free(cfg);
		return NULL;
	}
	if (cfg->default_timeout > cfg->max_timeout) {
		snprintf(err, errlen, "config key \"default_timeout\": larger than max_timeout");
		config_free(cfg);
		return NULL;
	}
	cfg->source = strdup(path ? path : "(defaults)");
	return cfg;
}

struct kiln_config *config_ref(struct kiln_config *cfg)
{
	atomic_fetch_add(&cfg->refs, 1);
	return cfg;
}

void config_unref(struct kiln_config *cfg)
{
	if (cfg && atomic_fetch_sub(&cfg->refs, 1) == 1)
		config_free(cfg);
}

unsigned config_pool_threads(void)
{
	if (!config_state.pool_threads) {
		const struct kiln_config *cfg = config_state.current;
		/* Automatic: one thread per CPU, plus one, so that one user's
		 * share (every thread but one, pool_threads_per_uid) still
		 * covers every CPU while another user's work can start. */
		long n = cfg && cfg->threads ? (long)cfg->threads : sysconf(_SC_NPROCESSORS_ONLN) + 1;
		config_state.pool_threads = n < 1 ? 1 : n > 1024 ? 1024 : (unsigned)n;
	}
	return config_state.pool_threads;
}

const struct kiln_config *config_current(void)
{
	return config_state.current;
}

void config_install(struct kiln_config *cfg)
{
	struct kiln_config *old = config_state.current;
	config_state.current = cfg;
	config_unref(old);
}

json_t *config_describe(void)
{
	static const char *const tnames[] = { "string", "path", "integer", "integer", "bytes", "number",
					      "octal string", "string", "array of ids", "array of paths",
					      "object", "array of modules" };
	json_t *arr = json_array();
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		json_array_append_new(arr, json_pack("{s:s, s:s, s:o, s:s}", "key", keys[i].name, "type",
						     tnames[keys[i].type], "default",
						     json_loads(keys[i].def, JSON_DECODE_ANY, NULL), "doc",
						     keys[i].doc));
	}
	return arr;
}

int config_default_socket(char *buf, size_t len)
{
	const char *s;
	int n;

	if ((s = getenv("KILN_SOCKET")) && *s)
		n = snprintf(buf, len, "%s", s);
	else if ((s = getenv("RUNTIME_DIRECTORY")) && *s) {
		/* systemd may list several directories separated by ':'; use the first. */
		n = snprintf(buf, len, "%.*s/kiln.sock", (int)strcspn(s, ":"), s);
	} else if ((s = getenv("XDG_RUNTIME_DIR")) && *s)
		n = snprintf(buf, len, "%s/kiln/kiln.sock", s);
	else
		n = snprintf(buf, len, "/tmp/kiln-%u/kiln.sock", (unsigned)getuid());
	return n < 0 || (size_t)n >= len ? -1 : 0;
}
