/*
 * The socket-directory check (see sockdir.h).
 */
#include "sockdir.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static bool world_writable_sticky(const struct stat *st)
{
	return (st->st_mode & S_IWOTH) && (st->st_mode & S_ISVTX);
}

/* Checks one directory; `last` is the socket's own directory. */
static int check_dir(const char *dir, bool last, int *sticky_seen, char *err, size_t errlen)
{
	struct stat st;
	uid_t me = geteuid();

	if (lstat(dir, &st) != 0) {
		snprintf(err, errlen, "socket directory check: %s: %s", dir, strerror(errno));
		return -1;
	}
	if (S_ISLNK(st.st_mode))
		return 0; /* its target is checked on the resolved path */
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "socket directory check: %s is not a directory", dir);
		return -1;
	}
	if (st.st_uid != 0 && st.st_uid != me) {
		snprintf(err, errlen,
			 "socket directory check: %s is owned by uid %u; every directory above the socket "
			 "must be owned by root or kilnd's uid %u",
			 dir, (unsigned)st.st_uid, (unsigned)me);
		return -1;
	}
	if (world_writable_sticky(&st) && !last && !*sticky_seen) {
		*sticky_seen = 1;
		return 0;
	}
	if ((st.st_mode & S_IWOTH) ||
	    ((st.st_mode & S_IWGRP) && st.st_gid != 0 && st.st_gid != getegid())) {
		snprintf(err, errlen,
			 "socket directory check: %s (mode %04o) is writable by %s; %s", dir,
			 (unsigned)(st.st_mode & 07777), (st.st_mode & S_IWOTH) ? "everyone" : "its group",
			 world_writable_sticky(&st)
				 ? (last ? "the socket's own directory must be private"
					 : "only one sticky world-writable directory (such as /tmp) may be on the path")
				 : "other users could replace the socket");
		return -1;
	}
	return 0;
}

/* Checks "/" and every directory prefix of the absolute `dir`. */
static int check_chain(const char *dir, char *err, size_t errlen)
{
	char buf[PATH_MAX];
	int sticky_seen = 0;
	size_t n = strlen(dir);

	if (n >= sizeof(buf)) {
		snprintf(err, errlen, "socket directory check: path too long");
		return -1;
	}
	memcpy(buf, dir, n + 1);
	if (check_dir("/", n <= 1, &sticky_seen, err, errlen))
		return -1;
	for (size_t i = 1; i <= n; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		if (buf[i - 1] == '/')
			continue;
		char c = buf[i];
		buf[i] = '\0';
		int rc = check_dir(buf, i == n, &sticky_seen, err, errlen);
		buf[i] = c;
		if (rc)
			return -1;
	}
	return 0;
}

int sockdir_prepare(const char *socket_path, char *err, size_t errlen)
{
	char dir[PATH_MAX], *slash, *real;
	struct stat st;
	int rc;

	if (socket_path[0] != '/') {
		snprintf(err, errlen, "socket path must be absolute: %s", socket_path);
		return -1;
	}
	snprintf(dir, sizeof(dir), "%s", socket_path);
	slash = strrchr(dir, '/');
	if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	/* Created private; an existing one must pass the check below. */
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
		return -1;
	}
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s is not a directory", dir);
		return -1;
	}
	if (check_chain(dir, err, errlen))
		return -1;
	real = realpath(dir, NULL);
	if (!real) {
		snprintf(err, errlen, "socket directory check: %s: %s", dir, strerror(errno));
		return -1;
	}
	rc = strcmp(real, dir) ? check_chain(real, err, errlen) : 0;
	free(real);
	return rc;
}
