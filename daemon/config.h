/*
 * Daemon configuration: a JSON file of flat keys, each with a default, a
 * range and one line of documentation (config.c holds the table; the example
 * file daemon/kiln.example.json and the "config" list of proto/actions.json
 * are checked against it).
 *
 * A loaded configuration is immutable and reference counted: every job holds
 * a reference for its whole life (job_config()), so worker threads may read it
 * while a SIGHUP reload installs a new one.
 */
#ifndef KILND_CONFIG_H
#define KILND_CONFIG_H

#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct kiln_config {
	atomic_int refs;

	/* Core. */
	char *socket;            /* "" = the default path (config_default_socket) */
	unsigned socket_mode;    /* octal string in the file: "0660" */
	char *log_level;         /* error, warn, info, debug */
	unsigned threads;        /* thread pool size; 0 = number of CPUs (startup only) */
	unsigned pool_threads_per_uid; /* 0 = pool size - 1 (at least 1) */
	double default_timeout;  /* seconds, when a request has none */
	double max_timeout;      /* seconds, upper bound on a request's timeout */
	unsigned max_retries;
	size_t max_line_bytes;
	size_t max_attachment_bytes;
	size_t max_file_bytes;   /* largest file read on a client's behalf */
	unsigned max_connections;
	unsigned max_inflight_per_conn;
	unsigned max_connections_per_uid;
	unsigned max_inflight_per_uid;   /* detached jobs included */
	double idle_timeout;             /* seconds; 0 = never */
	size_t max_attachment_bytes_per_uid;
	size_t max_attachment_bytes_total;
	size_t max_output_buffer;
	double shutdown_grace;   /* seconds */
	json_t *allowed_uids;    /* array of integers; empty = everyone who can open the socket */
	json_t *allowed_gids;
	json_t *admin_uids;      /* besides root: may list/unload everything, per-user stats */
	json_t *admin_gids;
	json_t *path_roots;      /* array of absolute, resolved directory names */
	size_t path_root_count;
	char **path_root;        /* path_roots as C strings, realpath()-resolved */

	/* pi (issue 4). */
	uint64_t pi_max_digits;
	uint64_t pi_cache_max_digits;

	/* corpora (issue 5). */
	size_t corpus_memory_budget;
	size_t corpus_memory_per_uid;

	/* scenes (issue 6). */
	uint64_t scene_max_pixels;
	unsigned scene_max_elements;
	unsigned scene_max_scenes;
	unsigned scene_max_scenes_per_uid;
	uint64_t scene_max_texture_pixels;
	size_t scene_memory_budget;
	size_t scene_memory_per_uid;

	/* procedures and jobs (issue 7). */
	json_t *procedures;      /* validated object, see act_proc.c */
	char *state_dir;         /* "" = no persistence */
	double job_retention;    /* seconds a finished job record is kept */
	unsigned max_detached_per_uid;
	size_t max_detached_record_bytes_per_uid;

	/* native modules (issue 12). */
	json_t *modules;         /* normalized list, see modules.h */
	double module_kill_grace; /* seconds a cancelled module call may take to return */

	char *source;            /* file it came from, or "(defaults)" */
};

/* Loads `path` (NULL: built-in defaults only).  Relative paths inside the file
 * (path_roots, state_dir, socket) are relative to the file's directory.  On
 * error returns NULL and writes a message naming the key into err.  The
 * sections that action families own (procedures) are checked by the family:
 * the daemon loads through dispatch_config_load() (action.h). */
struct kiln_config *config_load(const char *path, char *err, size_t errlen);

struct kiln_config *config_ref(struct kiln_config *cfg);
void config_unref(struct kiln_config *cfg);

/* The configuration in force (loop thread only; jobs use job_config()). */
const struct kiln_config *config_current(void);
/* Installs `cfg` as current, taking over the caller's reference. */
void config_install(struct kiln_config *cfg);

/* Size of the libuv thread pool: `threads` (0: the number of CPUs) as it
 * was at the first call.  libuv reads UV_THREADPOOL_SIZE once, so main()
 * calls this before the loop starts and a reload cannot change it; families
 * split parallel work by it. */
unsigned config_pool_threads(void);

/* The documented key table as JSON, for proto/actions.json (`kilnd
 * --describe`) and tests: [{"key", "type", "default", "doc"}...].  New
 * reference. */
json_t *config_describe(void);

/* {"limit": key, "max": value} for the numeric config key `key`, the limit
 * a request hit; NULL if `key` is not a numeric key.  New reference. */
json_t *config_limit_detail(const struct kiln_config *cfg, const char *key);

/* The detail of a too_large (or busy) reply, so that every such reply names
 * its limit the same way: when `detail` (consumed; may be NULL) lacks "limit"
 * or "max", both are filled from the key detail.limit names, else from the
 * first numeric config key named in `msg`.  Returns the detail (possibly
 * NULL when neither names a limit).  New reference. */
json_t *config_limit_complete(const struct kiln_config *cfg, json_t *detail, const char *msg);

/* Default socket path for this process: $KILN_SOCKET, else
 * $RUNTIME_DIRECTORY/kiln.sock, else $XDG_RUNTIME_DIR/kiln/kiln.sock, else
 * /tmp/kiln-$UID/kiln.sock.  Writes into buf; 0 or -1 if too long. */
int config_default_socket(char *buf, size_t len);

#endif
