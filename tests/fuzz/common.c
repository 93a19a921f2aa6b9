#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "action.h"
#include "config.h"
#include "log.h"
#include "harness.h"

/* Directories of tests/data copied into the root; everything the golden
 * examples name lives there. */
static const char *const copied[] = { "corpus", "scenes", "text" };

static struct {
	char tmp[64];
	char root[128];
	bool started;
	int shared_fd;
	uint64_t root_stamp; /* sum of mtimes and sizes under root after copying */
	char buf[1 << 20];   /* received, not yet returned reply bytes */
	size_t len;
	int buf_fd;
} fz = { .shared_fd = -1, .buf_fd = -1 };

void fz_quiet(void)
{
	static bool done;

	if (done)
		return;
	done = true;
	log_set_level(getenv("KILN_FUZZ_DEBUG") ? LOG_LVL_DEBUG : LOG_LVL_ERROR);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static void rm_tree(const char *dir)
{
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void remove_tmpdir(void)
{
	if (fz.tmp[0])
		rm_tree(fz.tmp);
}

const char *fz_tmpdir(void)
{
	if (!fz.tmp[0]) {
		snprintf(fz.tmp, sizeof(fz.tmp), "/tmp/kiln-fuzz-XXXXXX");
		if (!mkdtemp(fz.tmp))
			abort();
		atexit(remove_tmpdir);
	}
	return fz.tmp;
}

const char *fz_root(void)
{
	return fz.root;
}

static void copy_file(const char *from, const char *to)
{
	char buf[65536];
	int in = open(from, O_RDONLY | O_CLOEXEC), out;
	ssize_t n;

	if (in < 0)
		abort();
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out < 0)
		abort();
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			abort();
	close(in);
	close(out);
}

static const char *copy_from, *copy_to;

static int copy_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	char to[512];

	(void)ftw;
	snprintf(to, sizeof(to), "%s%s", copy_to, path + strlen(copy_from));
	if (flag == FTW_D)
		return mkdir(to, 0755) == 0 ? 0 : -1;
	if (flag == FTW_F && S_ISREG(st->st_mode))
		copy_file(path, to);
	return 0;
}

/* Copies the directories and regular files below `from` to `to`. */
static void copy_tree(const char *from, const char *to)
{
	copy_from = from;
	copy_to = to;
	if (nftw(from, copy_entry, 16, FTW_PHYS) != 0)
		abort();
}

static uint64_t stamp_acc;

static int stamp_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)path;
	(void)flag;
	(void)ftw;
	stamp_acc += (uint64_t)st->st_mtim.tv_sec * 1000000007u + (uint64_t)st->st_mtim.tv_nsec +
		     (uint64_t)st->st_size * 31 + st->st_ino;
	return 0;
}

static uint64_t root_stamp(void)
{
	stamp_acc = 0;
	nftw(fz.root, stamp_entry, 16, FTW_PHYS);
	return stamp_acc;
}

static void fill_root(void)
{
	char from[512], to[512];

	if (mkdir(fz.root, 0755) != 0)
		abort();
	for (size_t i = 0; i < sizeof(copied) / sizeof(copied[0]); i++) {
		snprintf(from, sizeof(from), "%s/%s", KILN_FUZZ_DATA, copied[i]);
		snprintf(to, sizeof(to), "%s/%s", fz.root, copied[i]);
		copy_tree(from, to);
	}
	fz.root_stamp = root_stamp();
}

void fz_root_restore(void)
{
	if (root_stamp() == fz.root_stamp)
		return;
	rm_tree(fz.root);
	fill_root();
}

/* Tiny limits: every action stays cheap whatever the arguments say. */
static const char config_fmt[] =
	"{\"path_roots\": [\"%s\"], \"procedures\": {}, \"state_dir\": \"\", \"threads\": 2,"
	" \"default_timeout\": 0.1, \"max_timeout\": 2, \"max_retries\": 1,"
	" \"max_line_bytes\": 65536, \"max_attachment_bytes\": 65536, \"max_file_bytes\": 1048576,"
	" \"max_connections\": 8, \"max_inflight_per_conn\": 8, \"max_output_buffer\": 1048576,"
	" \"shutdown_grace\": 0, \"pi_max_digits\": 2000, \"pi_cache_max_digits\": 1000,"
	" \"corpus_memory_budget\": 1048576, \"scene_max_pixels\": 1024, \"scene_max_elements\": 64,"
	" \"scene_max_scenes\": 4, \"scene_max_texture_pixels\": 65536,"
	" \"scene_memory_budget\": 8388608, \"job_retention\": 5}";

void fz_daemon_start(void)
{
	char cfg[sizeof(config_fmt) + sizeof(fz.root)];

	if (fz.started)
		return;
	fz.started = true;
	fz_quiet();
	setenv("UV_THREADPOOL_SIZE", "2", 1);
	snprintf(fz.root, sizeof(fz.root), "%s/data", fz_tmpdir());
	fill_root();
	snprintf(cfg, sizeof(cfg), config_fmt, fz.root);
	/* The same in-process daemon as the check tests (tests/unit/harness.c). */
	harness_start(cfg);
	/* harness_start() sets its own level; keep KILN_FUZZ_DEBUG's. */
	log_set_level(getenv("KILN_FUZZ_DEBUG") ? LOG_LVL_DEBUG : LOG_LVL_ERROR);
}

int fz_connect(void)
{
	return harness_connect();
}

void fz_send(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			/* The daemon stops reading when its output is not drained
			 * (backpressure): read and check replies meanwhile. */
			if (!harness_wait_fd(fd, POLLOUT, 1)) {
				json_t *r = fz_recv(fd, 0);
				json_decref(r);
			}
			continue;
		}
		if (n < 0)
			return; /* the daemon closed the connection (e.g. line too long) */
		p += n;
		len -= (size_t)n;
	}
}

static const char *const codes[] = { "parse_error", "invalid_request", "unknown_action", "invalid_args",
				     "timeout", "cancelled", "too_large", "not_found",
				     "forbidden", "busy", "internal" };

/* Every reply is an object with a result; errors carry a documented code. */
static void check_reply(json_t *r, const char *line, size_t len)
{
	const char *result = json_string_value(json_object_get(r, "result"));
	json_t *err = json_object_get(r, "error");
	const char *code;
	unsigned nfail, nfiles;
	bool known = false;

	if (!json_is_object(r) || !result || !json_object_get(r, "job_id") ||
	    (strcmp(result, "progress") != 0 && !json_is_string(json_object_get(r, "message")))) {
		fprintf(stderr, "fuzz: malformed reply: %.*s\n", (int)(len > 500 ? 500 : len), line);
		abort();
	}
	if (strcmp(result, "error") != 0)
		return;
	/* corpus.load lists every failed file in detail.failed. */
	if (sscanf(json_string_value(json_object_get(r, "message")), "%u of %u files failed", &nfail, &nfiles) == 2 &&
	    json_array_size(json_object_get(json_object_get(err, "detail"), "failed")) != nfail) {
		fprintf(stderr, "fuzz: %u files failed but detail.failed lists %zu: %.*s\n", nfail,
			json_array_size(json_object_get(json_object_get(err, "detail"), "failed")),
			(int)(len > 500 ? 500 : len), line);
		abort();
	}
	code = json_string_value(json_object_get(err, "code"));
	for (size_t i = 0; code && i < sizeof(codes) / sizeof(codes[0]); i++)
		known |= strcmp(code, codes[i]) == 0;
	if (!known) {
		fprintf(stderr, "fuzz: error reply without a documented code: %.*s\n",
			(int)(len > 500 ? 500 : len), line);
		abort();
	}
}

/* Skips `n` attachment bytes after a reply line, reading more as needed. */
static void skip_raw(int fd, size_t n)
{
	while (n > 0) {
		size_t k = fz.len < n ? fz.len : n;
		ssize_t got;
		memmove(fz.buf, fz.buf + k, fz.len - k);
		fz.len -= k;
		n -= k;
		if (n == 0)
			return;
		if (!harness_wait_fd(fd, POLLIN, 5000))
			abort();
		got = recv(fd, fz.buf, sizeof(fz.buf), 0);
		if (got <= 0)
			return;
		fz.len = (size_t)got;
	}
}

json_t *fz_recv(int fd, int timeout_ms)
{
	if (fz.buf_fd != fd) {
		fz.len = 0;
		fz.buf_fd = fd;
	}
	for (;;) {
		char *nl = memchr(fz.buf, '\n', fz.len);
		ssize_t n;
		if (nl) {
			size_t linelen = (size_t)(nl - fz.buf);
			json_t *r = json_loadb(fz.buf, linelen, 0, NULL);
			json_t *raw;
			if (!r) {
				fprintf(stderr, "fuzz: reply is not JSON: %.*s\n",
					(int)(linelen > 500 ? 500 : linelen), fz.buf);
				abort();
			}
			check_reply(r, fz.buf, linelen);
			fz.len -= linelen + 1;
			memmove(fz.buf, nl + 1, fz.len);
			raw = json_object_get(r, "raw");
			if (json_is_integer(raw) && json_integer_value(raw) > 0)
				skip_raw(fd, (size_t)json_integer_value(raw));
			return r;
		}
		if (fz.len == sizeof(fz.buf)) {
			fprintf(stderr, "fuzz: reply line longer than %zu bytes\n", sizeof(fz.buf));
			abort();
		}
		if (!harness_wait_fd(fd, POLLIN, timeout_ms)) {
			if (timeout_ms == 0)
				return NULL;
			fprintf(stderr, "fuzz: no reply within %d ms\n", timeout_ms);
			abort();
		}
		n = recv(fd, fz.buf + fz.len, sizeof(fz.buf) - fz.len, 0);
		if (n <= 0)
			return NULL;
		fz.len += (size_t)n;
	}
}

json_t *fz_call(const char *line)
{
	json_t *r;

	if (fz.shared_fd < 0)
		fz.shared_fd = fz_connect();
	fz_send(fz.shared_fd, line, strlen(line));
	fz_send(fz.shared_fd, "\n", 1);
	while ((r = fz_recv(fz.shared_fd, 10000))) {
		const char *result = json_string_value(json_object_get(r, "result"));
		if (strcmp(result, "progress") != 0)
			return r;
		json_decref(r);
	}
	fprintf(stderr, "fuzz: the daemon closed the shared connection\n");
	abort();
}

void fz_drain(int fd, int timeout_ms)
{
	json_t *r;

	while ((r = fz_recv(fd, timeout_ms)))
		json_decref(r);
	if (fz.buf_fd == fd)
		fz.buf_fd = -1;
}

char *fz_subst_data(const uint8_t *data, size_t len, size_t *outlen)
{
	static const char tag[] = "@DATA@";
	size_t rl = strlen(fz.root), cap = len + 1, o = 0;
	char *out;

	for (size_t i = 0; i + 6 <= len; i++)
		if (memcmp(data + i, tag, 6) == 0)
			cap += rl;
	out = malloc(cap);
	if (!out)
		abort();
	for (size_t i = 0; i < len;) {
		if (i + 6 <= len && memcmp(data + i, tag, 6) == 0) {
			memcpy(out + o, fz.root, rl);
			o += rl;
			i += 6;
		} else {
			out[o++] = (char)data[i++];
		}
	}
	out[o] = '\0';
	*outlen = o;
	return out;
}
