/*
 * Files kilnd opens itself on a client's behalf (for clients that name a
 * path rather than pass a descriptor): only beneath the operator-declared
 * path_roots, whose contents every allowed user may read.
 *
 * Resolution.  The path is split lexically into a configured root and the
 * rest; anything not spelled under a root is refused without touching the
 * file system, so a missing file and an existing one outside the roots get
 * the same reply.  The rest is resolved beneath an open descriptor of the
 * root with openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS): `..`, absolute
 * symlinks, symlinks leading out and /proc magic links fail inside the
 * kernel, atomically, so a directory swapped for a symlink mid-request
 * cannot lead outside.  Without openat2 (ENOSYS) each component is walked
 * with O_NOFOLLOW and no symlink is followed at all.
 *
 * Rights.  Worker threads run with the client's file-system credentials
 * (creds.h): the kernel checks the open as the client.  A daemon that cannot
 * switch credentials checks the mode bits for the client (creds_may_access).
 *
 * Writes never truncate or create the target: the output goes to a new
 * temporary file in the target's directory (opened beneath the root), and
 * kiln_path_finish renames it into place (rename replaces a symlink rather
 * than following it).  Names in replies are the client's own path, never a
 * resolved one.
 *
 * Thread-safe (no libuv): call from worker threads with job_config(job).
 */
#ifndef KILND_PATHS_H
#define KILND_PATHS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct kiln_config;

/* Opens the regular file `path` for reading.  Relative paths are refused,
 * and so is anything but a regular file (a FIFO would block the caller).
 * Returns an fd (O_CLOEXEC) or -KILN_E_FORBIDDEN (outside the roots,
 * escaping them, or not readable by the client) / -KILN_E_NOT_FOUND /
 * -KILN_E_INVALID_ARGS with a message in err.  If resolved is not NULL it
 * receives the normalized path (root + rest, malloc'ed, caller frees). */
int kiln_path_open(const struct kiln_config *cfg, const char *path, char **resolved, char *err,
		   size_t errlen);

/* Reads a whole regular file under path_roots, at most `max` bytes
 * (-KILN_E_TOO_LARGE beyond).  *buf is malloc'ed with a NUL after the data;
 * the caller frees it. */
int kiln_path_read(const struct kiln_config *cfg, const char *path, size_t max,
		   unsigned char **buf, size_t *len, char *err, size_t errlen);

/* Opens the directory `path` beneath a root for listing (O_RDONLY |
 * O_DIRECTORY); same errors as kiln_path_open. */
int kiln_path_opendir(const struct kiln_config *cfg, const char *path, char *err, size_t errlen);

/* An output being written: a temporary file beside the target. */
struct kiln_path_out {
	int fd;          /* write the content here */
	int dirfd;       /* the target's directory, beneath its root */
	bool replace;    /* an existing target may be replaced */
	bool direct;     /* fd is the client's passed descriptor: written in place */
	char *name;      /* the target's name in dirfd (owned) */
	char tmp[48];    /* the temporary's name in dirfd */
};

/* Creates the temporary for writing `path`.  With replace false an
 * existing target is an error (-KILN_E_INVALID_ARGS) now and at the
 * rename.  An existing target that is not a regular file is refused.
 * On success the caller must call kiln_path_finish exactly once. */
int kiln_path_create(const struct kiln_config *cfg, const char *path, bool replace,
		     struct kiln_path_out *out, char **resolved, char *err, size_t errlen);

/* commit: fsyncs and renames the temporary onto the target; otherwise
 * (or if that fails) removes it.  Closes both descriptors, frees name.
 * Returns 0 or -KILN_E_* with a message. */
int kiln_path_finish(struct kiln_path_out *out, bool commit, char *err, size_t errlen);

/* Makes every later resolution take the O_NOFOLLOW walk, as on a kernel
 * without openat2 (tests/unit/test_paths.c checks both). */
void kiln_path_without_openat2(void);

#endif
