/*
 * path_roots enforcement.  The path is resolved with realpath() and checked
 * against the roots; the file is then opened with O_NOFOLLOW and the opened
 * descriptor's real path (/proc/self/fd) is checked again, so a symlink or
 * directory swapped in between the two steps cannot lead outside a root.
 * Only regular files are opened.
 */
#include "paths.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "kiln/error.h"

int kiln_path_allowed(const struct kiln_config *cfg, const char *resolved)
{
	for (size_t i = 0; i < cfg->path_root_count; i++) {
		const char *root = cfg->path_root[i];
		size_t n = strlen(root);
		if (strcmp(root, "/") == 0)
			return 0;
		if (strncmp(resolved, root, n) == 0 && (resolved[n] == '/' || resolved[n] == '\0'))
			return 0;
	}
	return -1;
}

static int fd_path(int fd, char *buf, size_t len)
{
	char proc[64];
	ssize_t n;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	n = readlink(proc, buf, len - 1);
	if (n < 0 || (size_t)n >= len - 1)
		return -1;
	buf[n] = '\0';
	return 0;
}

/* Resolves `path`; for a file to be created, resolves its directory. */
static char *resolve(const char *path, bool create)
{
	char *dir, *base, *rdir, *out;
	const char *slash;

	if (!create)
		return realpath(path, NULL);
	out = realpath(path, NULL);
	if (out)
		return out;
	slash = strrchr(path, '/');
	if (!slash || slash[1] == '\0')
		return NULL;
	dir = strndup(path, (size_t)(slash - path) + (slash == path));
	base = strdup(slash + 1);
	rdir = dir ? realpath(dir, NULL) : NULL;
	out = NULL;
	if (rdir && base && strcmp(base, ".") && strcmp(base, "..") &&
	    asprintf(&out, "%s/%s", strcmp(rdir, "/") ? rdir : "", base) < 0)
		out = NULL;
	free(dir);
	free(base);
	free(rdir);
	return out;
}

int kiln_path_open(const struct kiln_config *cfg, const char *path, int flags, char **resolved,
		   char *err, size_t errlen)
{
	bool create = (flags & O_CREAT) != 0;
	char *real;
	char opened[PATH_MAX];
	struct stat st;
	int fd;

	if (resolved)
		*resolved = NULL;
	if (!path || path[0] != '/') {
		snprintf(err, errlen, "path must be absolute");
		return -KILN_E_INVALID_ARGS;
	}
	if (cfg->path_root_count == 0) {
		snprintf(err, errlen, "%s: no path_roots are configured, so the daemon reads no files", path);
		return -KILN_E_FORBIDDEN;
	}
	real = resolve(path, create);
	if (!real) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno ? errno : ENOENT));
		return errno == EACCES ? -KILN_E_FORBIDDEN : -KILN_E_NOT_FOUND;
	}
	if (kiln_path_allowed(cfg, real) != 0) {
		snprintf(err, errlen, "%s is outside the configured path_roots", path);
		free(real);
		return -KILN_E_FORBIDDEN;
	}
	/* O_NONBLOCK: opening a FIFO (or a device) would otherwise block the
	 * worker thread until some writer shows up, maybe forever. */
	fd = open(real, flags | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0644);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		free(real);
		return e == ENOENT ? -KILN_E_NOT_FOUND : e == EACCES || e == ELOOP ? -KILN_E_FORBIDDEN
										   : -KILN_E_INVALID_ARGS;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
		snprintf(err, errlen, "%s is not a regular file", path);
		close(fd);
		free(real);
		return -KILN_E_INVALID_ARGS;
	}
	if (fd_path(fd, opened, sizeof(opened)) != 0 || kiln_path_allowed(cfg, opened) != 0) {
		snprintf(err, errlen, "%s moved outside the configured path_roots while opening", path);
		close(fd);
		free(real);
		return -KILN_E_FORBIDDEN;
	}
	if (resolved)
		*resolved = real;
	else
		free(real);
	return fd;
}

int kiln_path_read(const struct kiln_config *cfg, const char *path, size_t max, unsigned char **buf,
		   size_t *len, char *err, size_t errlen)
{
	struct stat st;
	unsigned char *p;
	size_t got = 0;
	int fd = kiln_path_open(cfg, path, O_RDONLY, NULL, err, errlen);

	if (fd < 0)
		return fd;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s is not a regular file", path);
		close(fd);
		return -KILN_E_INVALID_ARGS;
	}
	if ((size_t)st.st_size > max) {
		snprintf(err, errlen, "%s is %lld bytes, over the limit of %zu (max_file_bytes)", path,
			 (long long)st.st_size, max);
		close(fd);
		return -KILN_E_TOO_LARGE;
	}
	p = malloc((size_t)st.st_size + 1);
	if (!p) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return -KILN_E_INTERNAL;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, p + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	p[got] = '\0';
	*buf = p;
	*len = got;
	return 0;
}
