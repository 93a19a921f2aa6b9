/*
 * Process isolation for modules: a pool of module-host worker processes
 * (modhost.c) per module, started and supervised by kilnd.
 *
 * Each worker runs one call at a time; calls wait in the pool's queue for
 * an idle worker.  A worker that dies (crash, abort, exit) fails its call
 * with `internal` naming the signal or status and is replaced.  A call that
 * is cancelled (timeout, `cancel`, disconnect, shutdown) sees the cancel
 * flag in the worker's control page; if it has not returned after
 * `module_kill_grace` seconds its worker is killed (SIGKILL) and replaced.
 * Arguments and results go over a socketpair, big ones in sealed memfds
 * (mod_wire.h).
 *
 * Workers are spawned by a thread of our own (posix_spawn blocks until the
 * child has exec'd), with a fresh exec of kilnd's binary, a minimal
 * environment and only the socket, the module file and the control page as
 * descriptors.  They are reaped on SIGCHLD by waitpid on their own pids.
 *
 * Everything here runs on the loop thread.
 */
#ifndef KILND_MOD_PROC_H
#define KILND_MOD_PROC_H

#include <jansson.h>
#include <stddef.h>

struct job;
struct mod_pool;

struct mod_pool_hooks {
	/* The first worker's HELLO: {"actions": [...]} (borrowed).  Returns 0
	 * to accept the module, or -1 with a reason to refuse it (the pool then
	 * stops and on_refused is not called). */
	int (*on_ready)(void *owner, const json_t *hello, char *err, size_t errlen);
	/* The module failed to load (the host's error, or workers that die at
	 * start three times in a row).  The pool stops its workers and fails
	 * queued calls; the owner retires it (here or later). */
	void (*on_refused)(void *owner, const char *reason);
};

/* Starts `workers` hosts for the module file open on `module_fd` (a
 * duplicate is kept; the caller keeps its own).  `config` is the module's
 * config object (copied).  NULL if the pool cannot even be set up. */
struct mod_pool *mod_pool_new(const char *path, int module_fd, const json_t *config, unsigned workers,
			      const struct mod_pool_hooks *hooks, void *owner);

/* Runs `action` for `job` on a worker, finishing the job when the result
 * (or the worker's death) arrives.  args is borrowed. */
void mod_pool_call(struct mod_pool *p, struct job *job, const char *action, json_t *args);

/* Stops the pool: idle workers at once, busy ones after their call (or at
 * their kill); queued calls still run.  The pool frees itself once its
 * last worker is reaped.  `p` must not be used afterwards. */
void mod_pool_retire(struct mod_pool *p);

/* {"workers": [pid...], "busy": n, "queued": n, "starts": n, "crashes": n, "kills": n} */
json_t *mod_pool_stats(const struct mod_pool *p);

/* Daemon shutdown, once no job is left: kills every worker (SIGKILL, then
 * reaps them), stops the spawner thread and closes the loop handles. */
void mod_proc_release(void);

/* The host's entry point (main.c: `kilnd --module-host PPID`). */
int modhost_main(int argc, char **argv);

#endif
