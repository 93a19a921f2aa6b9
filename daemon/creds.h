/*
 * Acting as the client: the credentials file access uses on a worker thread.
 *
 * Every piece of work a job queues (job_queue_work) runs between
 * creds_enter(job's peer) and creds_leave(), so a file opened on a
 * client's behalf is opened with that client's rights, never the daemon's.
 *
 * Mechanism.  Linux keeps credentials per thread; glibc's setuid() family
 * broadcasts a change to every thread, but the raw setfsuid, setfsgid and
 * setgroups system calls change only the caller.  When kilnd runs as root,
 * creds_enter switches the calling pool thread's file-system uid, gid and
 * supplementary groups to the peer's (the kernel then also drops
 * CAP_DAC_OVERRIDE and the other file capabilities from that thread), and
 * creds_leave switches back.  Permission checks, ACLs, directory search
 * bits, sticky directories and the owner of created files are then the
 * kernel's, exactly as if the client had made the call.
 *
 * A daemon that is not root (the systemd unit runs as `kiln`) cannot
 * switch; it already has no more rights than its own account, and paths.c
 * adds a mode-bit check for the peer (creds_may_access) on what it opens.
 *
 * Threading: the state is thread-local; enter and leave pair on one thread.
 */
#ifndef KILND_CREDS_H
#define KILND_CREDS_H

#include <stdbool.h>
#include <sys/stat.h>

#include "envelope.h"

/* Switches this thread's file-system identity to `peer` (NULL or an unknown
 * uid: nobody), and makes the descriptors `req` carries (NULL: none)
 * available to paths.c.  Returns true when the kernel now checks as the
 * peer. */
bool creds_enter(const struct kiln_peer *peer, const struct request *req);
/* Restores the daemon's own identity on this thread. */
void creds_leave(void);

/* A descriptor the client passed for `path` (borrowed; -1 if none): the
 * one named exactly `path` (*rest NULL), or a directory named by a prefix
 * of it (*rest: what follows the '/').  Thread of creds_enter only. */
int creds_passed_fd(const char *path, const char **rest);

/* The peer this thread acts for, or NULL outside creds_enter/leave. */
const struct kiln_peer *creds_current(void);
/* True when this thread's file access is checked by the kernel as the peer. */
bool creds_switched(void);

/* Whether the current peer may access a file with status `st`: `want` is
 * a mask of R_OK, W_OK, X_OK checked against the owner, group and other
 * bits (root passes).  True outside creds_enter or when switched (the
 * kernel has checked already). */
bool creds_may_access(const struct stat *st, int want);

/* True if the peer's primary or supplementary groups include gid. */
bool creds_peer_in_group(const struct kiln_peer *peer, gid_t gid);

struct kiln_config;
/* Root, a uid in admin_uids or a member of an admin_gids group: may list and
 * unload every user's objects and sees per-user stats. */
bool creds_is_admin(const struct kiln_config *cfg, const struct kiln_peer *peer);

#endif
