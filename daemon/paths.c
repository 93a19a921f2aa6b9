/*
 * path_roots enforcement: lexical split into root + rest, then resolution
 * beneath the root's descriptor (see paths.h).
 */
#include "paths.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "config.h"
#include "creds.h"
#include "kiln/error.h"

#define MAX_DEPTH 256

/* Set once openat2 answers ENOSYS (kernels before 5.6). */
static atomic_bool no_openat2;

struct where {
	const char *root;    /* borrowed from the config */
	int rootfd;          /* a passed directory descriptor standing for root, or -1 */
	char rest[PATH_MAX]; /* relative to root, no "." or empty components; "." for the root */
};

/* Splits an absolute path into a configured root and the rest, lexically:
 * empty and "." components are dropped, ".." is left for the kernel.
 * -KILN_E_FORBIDDEN if no root is a component prefix. */
static int split(const struct kiln_config *cfg, const char *path, struct where *w, char *err,
		 size_t errlen)
{
	char norm[PATH_MAX];
	size_t n = 0;

	if (!path || path[0] != '/') {
		snprintf(err, errlen, "path must be absolute");
		return -KILN_E_INVALID_ARGS;
	}
	for (const char *p = path; *p;) {
		const char *s;
		size_t len;

		while (*p == '/')
			p++;
		s = p;
		while (*p && *p != '/')
			p++;
		len = (size_t)(p - s);
		if (len == 0 || (len == 1 && s[0] == '.'))
			continue;
		if (n + 1 + len + 1 > sizeof(norm)) {
			snprintf(err, errlen, "path too long");
			return -KILN_E_INVALID_ARGS;
		}
		norm[n++] = '/';
		memcpy(norm + n, s, len);
		n += len;
	}
	norm[n] = '\0';
	for (size_t i = 0; i < cfg->path_root_count; i++) {
		const char *root = cfg->path_root[i];
		size_t rl = strcmp(root, "/") == 0 ? 0 : strlen(root);

		if (strncmp(norm, root, rl) != 0 || (norm[rl] != '/' && norm[rl] != '\0'))
			continue;
		w->root = root;
		w->rootfd = -1;
		snprintf(w->rest, sizeof(w->rest), "%s", norm[rl] ? norm + rl + 1 : ".");
		return 0;
	}
	snprintf(err, errlen, "%s is outside the configured path_roots", path);
	return -KILN_E_FORBIDDEN;
}

/* Maps an errno from resolving or opening `path` to a reply. */
static int path_errno(int e, const char *path, char *err, size_t errlen)
{
	switch (e) {
	case ENOENT:
	case ENOTDIR:
		snprintf(err, errlen, "%s: no such file", path);
		return -KILN_E_NOT_FOUND;
	case EXDEV:
	case ELOOP:
		/* The same words as for a path spelled outside the roots. */
		snprintf(err, errlen, "%s is outside the configured path_roots", path);
		return -KILN_E_FORBIDDEN;
	case EACCES:
	case EPERM:
		snprintf(err, errlen, "%s: permission denied", path);
		return -KILN_E_FORBIDDEN;
	case EISDIR:
		snprintf(err, errlen, "%s is not a regular file", path);
		return -KILN_E_INVALID_ARGS;
	case EEXIST:
		snprintf(err, errlen, "%s already exists", path);
		return -KILN_E_INVALID_ARGS;
	default:
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		return -KILN_E_INVALID_ARGS;
	}
}

/* The fallback walk: every component opened with O_NOFOLLOW (no symlink is
 * followed, ".." pops a descriptor kept on a stack, never the kernel's
 * ".."), the last one with `flags`.  Returns an fd or -errno. */
static int walk(int rootfd, const char *rest, int flags, mode_t mode)
{
	int stack[MAX_DEPTH];
	int depth = 0, fd = -1;
	char buf[PATH_MAX], *save = NULL, *comp, *next;

	snprintf(buf, sizeof(buf), "%s", rest);
	stack[0] = rootfd;
	comp = strtok_r(buf, "/", &save);
	while (comp) {
		struct stat st;

		next = strtok_r(NULL, "/", &save);
		if (strcmp(comp, "..") == 0) {
			if (depth == 0) {
				fd = -EXDEV;
				goto out;
			}
			close(stack[depth--]);
			if (!next) {
				fd = openat(stack[depth], ".", flags | O_CLOEXEC, mode);
				fd = fd < 0 ? -errno : fd;
				goto out;
			}
			comp = next;
			continue;
		}
		if (!next) {
			fd = openat(stack[depth], comp, flags | O_NOFOLLOW | O_CLOEXEC, mode);
			fd = fd < 0 ? -errno : fd;
			/* O_DIRECTORY on a symlink says ENOTDIR: a link is a way
			 * out, as openat2 reports it, not a missing file. */
			if ((fd == -ENOTDIR || fd == -ELOOP) &&
			    fstatat(stack[depth], comp, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
				fd = -ELOOP;
			goto out;
		}
		if (depth + 1 >= MAX_DEPTH) {
			fd = -ENAMETOOLONG;
			goto out;
		}
		fd = openat(stack[depth], comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			fd = -errno;
			goto out;
		}
		if (fstat(fd, &st) != 0 || !S_ISDIR(st.st_mode)) {
			int e = S_ISLNK(st.st_mode) ? -ELOOP : -ENOTDIR;
			close(fd);
			fd = e;
			goto out;
		}
		stack[++depth] = fd;
		comp = next;
	}
	fd = openat(stack[depth], ".", flags | O_CLOEXEC, mode);
	fd = fd < 0 ? -errno : fd;
out:
	while (depth > 0)
		close(stack[depth--]);
	return fd;
}

/* Opens `rest` beneath rootfd.  Returns an fd or -errno. */
static int beneath(int rootfd, const char *rest, int flags, mode_t mode)
{
	if (!atomic_load(&no_openat2)) {
		struct open_how how = {
			.flags = (uint64_t)(flags | O_CLOEXEC),
			.mode = (flags & O_CREAT) ? mode : 0,
			.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
		};
		long fd = syscall(SYS_openat2, rootfd, rest, &how, sizeof(how));

		if (fd >= 0)
			return (int)fd;
		if (errno != ENOSYS)
			return -errno;
		atomic_store(&no_openat2, true);
	}
	return walk(rootfd, rest, flags, mode);
}

void kiln_path_without_openat2(void)
{
	atomic_store(&no_openat2, true);
}

/* Resolves `path` beneath its root and opens it with `flags`.  Returns an
 * fd or -KILN_E_* with a message. */
static int open_beneath(const char *path, const struct where *w, int flags, char *err, size_t errlen)
{
	int rootfd, fd;

	rootfd = w->rootfd >= 0 ? w->rootfd : open(w->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return path_errno(errno, path, err, errlen);
	fd = beneath(rootfd, w->rest, flags, 0);
	if (rootfd != w->rootfd)
		close(rootfd);
	if (fd < 0)
		return path_errno(-fd, path, err, errlen);
	return fd;
}

/*
 * Descriptors the client passed (creds_passed_fd): the client opened the
 * file itself, with its own rights, so path_roots do not apply; a path
 * below a passed directory is resolved beneath that descriptor.  Returns
 * 1 and fills *w (rootfd set) for a path below a passed directory, 2 and
 * *fd (a private duplicate, offset 0) for a passed file, 0 when nothing was
 * passed for `path`, or -KILN_E_* with a message.
 */
static int passed(const char *path, int accmode, struct where *w, int *fd, char *err, size_t errlen)
{
	const char *rest;
	int pfd = creds_passed_fd(path, &rest), fl;
	struct stat st;

	if (pfd < 0)
		return 0;
	if (rest) {
		if (fstat(pfd, &st) != 0 || !S_ISDIR(st.st_mode)) {
			snprintf(err, errlen, "the descriptor passed for a directory above %s is not one", path);
			return -KILN_E_INVALID_ARGS;
		}
		w->root = "";
		w->rootfd = pfd;
		snprintf(w->rest, sizeof(w->rest), "%s", rest);
		return 1;
	}
	fl = fcntl(pfd, F_GETFL);
	if (fl < 0 || ((fl & O_ACCMODE) != O_RDWR && (fl & O_ACCMODE) != accmode)) {
		snprintf(err, errlen, "the descriptor passed for %s is not open for %s", path,
			 accmode == O_RDONLY ? "reading" : "writing");
		return -KILN_E_INVALID_ARGS;
	}
	*fd = fcntl(pfd, F_DUPFD_CLOEXEC, 0);
	if (*fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -KILN_E_INTERNAL;
	}
	lseek(*fd, 0, SEEK_SET);
	return 2;
}

static char *joined(const struct where *w)
{
	char *out = NULL;

	if (strcmp(w->rest, ".") == 0)
		return strdup(w->root);
	if (asprintf(&out, "%s/%s", strcmp(w->root, "/") ? w->root : "", w->rest) < 0)
		return NULL;
	return out;
}

int kiln_path_open(const struct kiln_config *cfg, const char *path, char **resolved, char *err,
		   size_t errlen)
{
	struct where w = { .root = NULL, .rootfd = -1 };
	struct stat st;
	int fd, rc;

	if (resolved)
		*resolved = NULL;
	rc = passed(path, O_RDONLY, &w, &fd, err, errlen);
	if (rc < 0)
		return rc;
	if (rc == 0 && (rc = split(cfg, path, &w, err, errlen)) != 0)
		return rc;
	/* O_NONBLOCK: opening a FIFO (or a device) would otherwise block the
	 * worker thread until some writer shows up, maybe forever. */
	if (rc != 2)
		fd = open_beneath(path, &w, O_RDONLY | O_NOCTTY | O_NONBLOCK, err, errlen);
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || fcntl(fd, F_SETFL, 0) != 0) {
		snprintf(err, errlen, "%s is not a regular file", path);
		close(fd);
		return -KILN_E_INVALID_ARGS;
	}
	if (!creds_may_access(&st, R_OK)) {
		close(fd);
		return path_errno(EACCES, path, err, errlen);
	}
	if (resolved && !(*resolved = w.rootfd >= 0 || !w.root ? strdup(path) : joined(&w))) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return -KILN_E_INTERNAL;
	}
	return fd;
}

int kiln_path_opendir(const struct kiln_config *cfg, const char *path, char *err, size_t errlen)
{
	struct where w = { .root = NULL, .rootfd = -1 };
	struct stat st;
	int fd, rc;

	rc = passed(path, O_RDONLY, &w, &fd, err, errlen);
	if (rc < 0)
		return rc;
	if (rc == 0 && (rc = split(cfg, path, &w, err, errlen)) != 0)
		return rc;
	if (rc != 2)
		fd = open_beneath(path, &w, O_RDONLY | O_DIRECTORY, err, errlen);
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) != 0 || !S_ISDIR(st.st_mode)) {
		close(fd);
		return path_errno(ENOTDIR, path, err, errlen);
	}
	if (!creds_may_access(&st, R_OK | X_OK)) {
		close(fd);
		return path_errno(EACCES, path, err, errlen);
	}
	return fd;
}

int kiln_path_read(const struct kiln_config *cfg, const char *path, size_t max, unsigned char **buf,
		   size_t *len, char *err, size_t errlen)
{
	struct stat st;
	unsigned char *p;
	size_t got = 0;
	int fd = kiln_path_open(cfg, path, NULL, err, errlen);

	if (fd < 0)
		return fd;
	if (fstat(fd, &st) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
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

/* Checks the target `name` in dirfd before anything is written. */
static int check_target(int dirfd, const char *name, const struct stat *dir, bool replace,
			const char *path, char *err, size_t errlen)
{
	const struct kiln_peer *peer = creds_current();
	struct stat st;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return errno == ENOENT ? 0 : path_errno(errno, path, err, errlen);
	if (S_ISLNK(st.st_mode)) {
		snprintf(err, errlen, "%s is a symbolic link; not replacing it", path);
		return -KILN_E_FORBIDDEN;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s exists and is not a regular file", path);
		return -KILN_E_INVALID_ARGS;
	}
	if (!replace) {
		snprintf(err, errlen, "%s already exists", path);
		return -KILN_E_INVALID_ARGS;
	}
	/* The sticky-directory rule, checked before anything is written (the
	 * kernel applies it again at the rename when credentials are switched). */
	if (peer && peer->uid != 0 && (dir->st_mode & S_ISVTX) &&
	    st.st_uid != peer->uid && dir->st_uid != peer->uid)
		return path_errno(EACCES, path, err, errlen);
	return 0;
}

int kiln_path_create(const struct kiln_config *cfg, const char *path, bool replace,
		     struct kiln_path_out *out, char **resolved, char *err, size_t errlen)
{
	struct where w, dw;
	struct stat dir;
	uint32_t rnd[2];
	char *slash;
	int rc;

	memset(out, 0, sizeof(*out));
	out->fd = out->dirfd = -1;
	if (resolved)
		*resolved = NULL;
	w.root = NULL;
	w.rootfd = -1;
	rc = passed(path, O_WRONLY, &w, &out->fd, err, errlen);
	if (rc < 0)
		return rc;
	if (rc == 2) {
		/* The client created (or chose) the file: write it in place. */
		struct stat st;
		if (fstat(out->fd, &st) != 0 || !S_ISREG(st.st_mode) || ftruncate(out->fd, 0) != 0) {
			close(out->fd);
			out->fd = -1;
			snprintf(err, errlen, "the descriptor passed for %s is not a writable regular file", path);
			return -KILN_E_INVALID_ARGS;
		}
		out->direct = true;
		if (resolved && !(*resolved = strdup(path))) {
			kiln_path_finish(out, false, NULL, 0);
			snprintf(err, errlen, "out of memory");
			return -KILN_E_INTERNAL;
		}
		return out->fd;
	}
	if (rc == 0 && (rc = split(cfg, path, &w, err, errlen)) != 0)
		return rc;
	dw = w;
	slash = strrchr(dw.rest, '/');
	if (slash)
		*slash = '\0';
	else
		snprintf(dw.rest, sizeof(dw.rest), ".");
	out->name = strdup(slash ? slash + 1 : w.rest);
	if (!out->name) {
		snprintf(err, errlen, "out of memory");
		return -KILN_E_INTERNAL;
	}
	if (strcmp(out->name, ".") == 0 || strcmp(out->name, "..") == 0) {
		snprintf(err, errlen, "%s does not name a file", path);
		rc = -KILN_E_INVALID_ARGS;
		goto fail;
	}
	out->dirfd = open_beneath(path, &dw, O_PATH | O_DIRECTORY, err, errlen);
	if (out->dirfd < 0) {
		rc = out->dirfd;
		goto fail;
	}
	if (fstat(out->dirfd, &dir) != 0 || !creds_may_access(&dir, W_OK | X_OK)) {
		rc = path_errno(EACCES, path, err, errlen);
		goto fail;
	}
	rc = check_target(out->dirfd, out->name, &dir, replace, path, err, errlen);
	if (rc)
		goto fail;
	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd)) {
		snprintf(err, errlen, "getrandom: %s", strerror(errno));
		rc = -KILN_E_INTERNAL;
		goto fail;
	}
	snprintf(out->tmp, sizeof(out->tmp), ".kiln-%08x%08x.tmp", rnd[0], rnd[1]);
	out->fd = openat(out->dirfd, out->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (out->fd < 0) {
		rc = path_errno(errno, path, err, errlen);
		goto fail;
	}
	out->replace = replace;
	if (resolved && !(*resolved = w.rootfd >= 0 ? strdup(path) : joined(&w))) {
		kiln_path_finish(out, false, NULL, 0);
		snprintf(err, errlen, "out of memory");
		return -KILN_E_INTERNAL;
	}
	return out->fd;
fail:
	if (out->dirfd >= 0)
		close(out->dirfd);
	out->dirfd = -1;
	free(out->name);
	out->name = NULL;
	return rc;
}

int kiln_path_finish(struct kiln_path_out *out, bool commit, char *err, size_t errlen)
{
	int rc = 0, e = 0;

	if (out->direct) {
		if (commit && (fsync(out->fd) != 0 || close(out->fd) != 0)) {
			snprintf(err, errlen, "writing %s: %s", out->name ? out->name : "output", strerror(errno));
			rc = -KILN_E_INTERNAL;
		} else if (!commit) {
			close(out->fd);
		}
		out->fd = -1;
		out->direct = false;
		return rc;
	}
	if (out->dirfd < 0)
		return 0;
	if (commit && (fsync(out->fd) != 0 || close(out->fd) != 0))
		e = errno;
	else if (!commit)
		close(out->fd);
	out->fd = -1;
	if (commit && !e) {
		if (out->replace ? renameat(out->dirfd, out->tmp, out->dirfd, out->name)
				 : renameat2(out->dirfd, out->tmp, out->dirfd, out->name, RENAME_NOREPLACE))
			e = errno;
	}
	if (commit && e) {
		if (e == EEXIST || e == EACCES || e == EPERM)
			rc = path_errno(e == EEXIST ? EEXIST : EACCES, out->name, err, errlen);
		else {
			snprintf(err, errlen, "writing %s: %s", out->name, strerror(e));
			rc = -KILN_E_INTERNAL;
		}
	}
	if (!commit || e)
		unlinkat(out->dirfd, out->tmp, 0);
	close(out->dirfd);
	out->dirfd = -1;
	free(out->name);
	out->name = NULL;
	return rc;
}
