/*
 * Files read or written on a client's behalf: only under the configured
 * path_roots.  Paths are resolved (realpath) before the check, so ".." and
 * symlinks cannot escape, and the opened descriptor is verified again after
 * open() so a directory swapped in between cannot either.
 *
 * Thread-safe (no libuv): call from worker threads with job_config(job).
 */
#ifndef KILND_PATHS_H
#define KILND_PATHS_H

#include <stddef.h>
#include <sys/types.h>

struct kiln_config;

/* Opens `path` for reading (O_RDONLY) or, with O_WRONLY/O_CREAT in flags, for
 * writing (mode 0644 & ~umask).  Relative paths are refused, and so is
 * anything but a regular file (a FIFO would block the caller).  Returns an fd
 * (O_CLOEXEC) or -KILN_E_FORBIDDEN / -KILN_E_NOT_FOUND / -KILN_E_INVALID_ARGS
 * with a message in err.  If resolved is not NULL it receives the resolved
 * path (malloc'ed, caller frees). */
int kiln_path_open(const struct kiln_config *cfg, const char *path, int flags,
		   char **resolved, char *err, size_t errlen);

/* Reads a whole regular file under path_roots, at most `max` bytes
 * (-KILN_E_TOO_LARGE beyond).  *buf is malloc'ed with a NUL after the data;
 * the caller frees it. */
int kiln_path_read(const struct kiln_config *cfg, const char *path, size_t max,
		   unsigned char **buf, size_t *len, char *err, size_t errlen);

/* 0 if the resolved absolute `path` lies under one of the roots. */
int kiln_path_allowed(const struct kiln_config *cfg, const char *resolved);

#endif
