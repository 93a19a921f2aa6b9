/*
 * The socket-directory check.  Before binding its socket kilnd makes sure
 * nobody but root and its own uid can replace the socket file or a
 * directory above it: every directory on the path (as written and as
 * resolved) is owned by root or the daemon's uid and writable by no one
 * else.  One sticky world-writable directory such as /tmp is allowed, above
 * the socket's own directory (which kilnd then creates mode 0700).
 *
 * Loop thread, at startup only.
 */
#ifndef KILND_SOCKDIR_H
#define KILND_SOCKDIR_H

#include <stddef.h>

/* Creates the socket's directory if missing, then checks the whole path.
 * 0, or -1 with a message naming the directory and the reason. */
int sockdir_prepare(const char *socket_path, char *err, size_t errlen);

#endif
