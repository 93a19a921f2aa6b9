#include "harness.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "action.h"
#include "config.h"
#include "log.h"
#include "server.h"

static struct {
	char dir[40];
	char sock[100];
	char cfgpath[128];
	struct server srv;
	int shared_fd;
	char buf[1 << 20];
	size_t len;
	int buf_fd;
} h;

const char *harness_data_dir(void)
{
	const char *d = getenv("KILN_TEST_DATA");
	return d ? d : "tests/data";
}

void harness_start(const char *config_json)
{
	char err[512];
	struct kiln_config *cfg;
	FILE *f;

	memset(&h, 0, sizeof(h));
	h.shared_fd = -1;
	h.buf_fd = -1;
	snprintf(h.dir, sizeof(h.dir), "/tmp/kiln-unit-XXXXXX");
	if (!mkdtemp(h.dir))
		abort();
	snprintf(h.sock, sizeof(h.sock), "%s/kiln.sock", h.dir);
	snprintf(h.cfgpath, sizeof(h.cfgpath), "%s/kiln.json", h.dir);
	f = fopen(h.cfgpath, "w");
	fputs(config_json ? config_json : "{}", f);
	fclose(f);
	signal(SIGPIPE, SIG_IGN);
	log_set_level(getenv("KILN_TEST_DEBUG") ? LOG_LVL_DEBUG : LOG_LVL_ERROR);
	/* Hermetic: job records in memory, our own socket, no systemd. */
	unsetenv("STATE_DIRECTORY");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_PID");
	unsetenv("NOTIFY_SOCKET");
	families_register_builtin();
	cfg = dispatch_config_load(h.cfgpath, err, sizeof(err));
	if (!cfg) {
		fprintf(stderr, "harness: %s\n", err);
		abort();
	}
	config_install(cfg);
	if (dispatch_init(cfg, err, sizeof(err)) != 0 ||
	    server_start(&h.srv, uv_default_loop(), h.sock, err, sizeof(err)) != 0) {
		fprintf(stderr, "harness: %s\n", err);
		abort();
	}
}

int harness_wait_fd(int fd, short events, int ms)
{
	uv_loop_t *loop = uv_default_loop();
	struct pollfd p[2];
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		int left, tmo;
		/* Twice: replies queued during one iteration are written by the
		 * server's prepare handle at the start of the next. */
		uv_run(loop, UV_RUN_NOWAIT);
		uv_run(loop, UV_RUN_NOWAIT);
		p[0] = (struct pollfd){ fd, events, 0 };
		p[1] = (struct pollfd){ uv_backend_fd(loop), POLLIN, 0 };
		if (fd >= 0 && poll(p, 1, 0) == 1)
			return 1;
		clock_gettime(CLOCK_MONOTONIC, &t);
		left = ms - (int)((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
		if (left <= 0)
			return 0;
		/* Sleep until the client fd, a loop event or the loop's next timer. */
		tmo = uv_backend_timeout(loop);
		if (tmo < 0 || tmo > 5)
			tmo = 5;
		if (tmo > left)
			tmo = left;
		poll(fd >= 0 ? p : p + 1, fd >= 0 ? 2 : 1, tmo);
	}
}

void harness_spin(int ms)
{
	harness_wait_fd(-1, 0, ms);
}

void harness_stop(void)
{
	if (h.shared_fd >= 0)
		close(h.shared_fd);
	server_stop(&h.srv);
	for (int i = 0; i < 10000 && uv_run(uv_default_loop(), UV_RUN_NOWAIT); i++) {
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	dispatch_shutdown();
	uv_loop_close(uv_default_loop());
	free(h.srv.socket_path);
	config_install(NULL);
	unlink(h.cfgpath);
	rmdir(h.dir);
}

int harness_connect(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", h.sock);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		abort();
	harness_spin(2);
	return fd;
}

void harness_send(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			harness_wait_fd(fd, POLLOUT, 1);
			continue;
		}
		if (n < 0)
			return;
		p += n;
		len -= (size_t)n;
	}
}

json_t *harness_recv(int fd, int timeout_ms)
{
	if (h.buf_fd != fd) {
		h.len = 0;
		h.buf_fd = fd;
	}
	for (;;) {
		char *nl = memchr(h.buf, '\n', h.len);
		ssize_t n;
		if (nl) {
			json_t *r = json_loadb(h.buf, (size_t)(nl - h.buf), 0, NULL);
			h.len -= (size_t)(nl + 1 - h.buf);
			memmove(h.buf, nl + 1, h.len);
			return r;
		}
		if (!harness_wait_fd(fd, POLLIN, timeout_ms))
			return NULL;
		n = recv(fd, h.buf + h.len, sizeof(h.buf) - h.len, 0);
		if (n <= 0)
			return NULL;
		h.len += (size_t)n;
	}
}

json_t *harness_call(const char *line)
{
	if (h.shared_fd < 0)
		h.shared_fd = harness_connect();
	harness_send(h.shared_fd, line, strlen(line));
	harness_send(h.shared_fd, "\n", 1);
	return harness_recv(h.shared_fd, 10000);
}

const char *harness_error_code(json_t *reply)
{
	json_t *e = json_object_get(reply, "error");
	return e ? json_string_value(json_object_get(e, "code")) : NULL;
}
