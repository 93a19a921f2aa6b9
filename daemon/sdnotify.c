/*
 * sd_notify, watchdog, socket activation and journal detection; see
 * sdnotify.h.  One notification socket per process, so the state is static.
 */
#include "sdnotify.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "kiln/error.h"

#define SDNOTIFY_STATUS_MS 1000
#define SDNOTIFY_STATUS_MAX 256
/* The first descriptor passed by socket activation (SD_LISTEN_FDS_START). */
#define SDNOTIFY_LISTEN_FDS_START 3

static struct {
	int fd;                       /* datagram socket, -1 when inactive */
	struct sockaddr_un addr;
	socklen_t addrlen;
	unsigned long long watchdog_usec; /* ping interval; 0 = no watchdog */
	uv_timer_t watchdog;
	uv_timer_t status_timer;
	bool timers_init;
	sdnotify_status_fn status_fn;
	char status[SDNOTIFY_STATUS_MAX]; /* last STATUS= text sent */
} sd = { .fd = -1 };

/* Parses a decimal unsigned integer that must fill the whole string. */
static int parse_ull(const char *s, unsigned long long *out)
{
	char *end;

	if (!s || !*s || *s == '-')
		return -1;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return errno || *end ? -1 : 0;
}

/* Fills sd.addr from $NOTIFY_SOCKET: "/path" or "@abstract". */
static int notify_address(const char *path, char *err, size_t errlen)
{
	size_t len = strlen(path);

	if ((path[0] != '/' && path[0] != '@') || len < 2) {
		snprintf(err, errlen, "NOTIFY_SOCKET=%s: not an absolute path or @abstract name", path);
		return -KILN_E_INTERNAL;
	}
	if (len > sizeof(sd.addr.sun_path) - (path[0] == '/')) {
		snprintf(err, errlen, "NOTIFY_SOCKET: address longer than %zu bytes",
			 sizeof(sd.addr.sun_path) - 1);
		return -KILN_E_INTERNAL;
	}
	memset(&sd.addr, 0, sizeof(sd.addr));
	sd.addr.sun_family = AF_UNIX;
	memcpy(sd.addr.sun_path, path, len);
	/* An abstract address starts with a NUL byte and its length is exact:
	 * trailing NULs would be part of the name. */
	if (path[0] == '@')
		sd.addr.sun_path[0] = '\0';
	sd.addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (path[0] == '/'));
	return 0;
}

/* Reads the watchdog variables; sets sd.watchdog_usec to half the timeout
 * when the watchdog is meant for this process. */
static int watchdog_config(const char *usec_s, const char *pid_s, char *err, size_t errlen)
{
	unsigned long long usec, pid;

	if (!usec_s)
		return 0;
	if (parse_ull(usec_s, &usec) || usec == 0) {
		snprintf(err, errlen, "WATCHDOG_USEC=%s: not a positive integer", usec_s);
		return -KILN_E_INTERNAL;
	}
	/* $WATCHDOG_PID, when present, names the process systemd watches; a
	 * child that inherited the variables must stay quiet. */
	if (pid_s && (parse_ull(pid_s, &pid) || pid != (unsigned long long)getpid()))
		return 0;
	sd.watchdog_usec = usec / 2 ? usec / 2 : 1;
	return 0;
}

static void watchdog_cb(uv_timer_t *t)
{
	(void)t;
	sdnotify_send("WATCHDOG=1");
}

/* Builds "STATUS=..." from the source; returns true if it changed. */
static bool status_refresh(void)
{
	char buf[SDNOTIFY_STATUS_MAX];

	if (!sd.status_fn)
		return false;
	buf[0] = '\0';
	sd.status_fn(buf, sizeof(buf));
	buf[sizeof(buf) - 1] = '\0';
	/* A newline would start a new assignment in the datagram. */
	buf[strcspn(buf, "\n")] = '\0';
	if (strcmp(buf, sd.status) == 0)
		return false;
	memcpy(sd.status, buf, sizeof(buf));
	return true;
}

static void status_cb(uv_timer_t *t)
{
	char msg[SDNOTIFY_STATUS_MAX + 16];

	(void)t;
	if (!status_refresh())
		return;
	snprintf(msg, sizeof(msg), "STATUS=%s", sd.status);
	sdnotify_send(msg);
}

/* Starts a timer that does not keep the loop alive on its own. */
static void timer_start(uv_timer_t *t, uv_timer_cb cb, uint64_t ms)
{
	uv_timer_start(t, cb, ms, ms);
	uv_unref((uv_handle_t *)t);
}

int sdnotify_init(uv_loop_t *loop, char *err, size_t errlen)
{
	char *path = getenv("NOTIFY_SOCKET");
	const char *usec_s = getenv("WATCHDOG_USEC");
	const char *pid_s = getenv("WATCHDOG_PID");
	int rc = 0;

	/* Copies, because unsetenv() may release the strings. */
	path = path ? strdup(path) : NULL;
	char *usec = usec_s ? strdup(usec_s) : NULL;
	char *pid = pid_s ? strdup(pid_s) : NULL;
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");

	if (!path)
		goto done;
	rc = notify_address(path, err, errlen);
	if (rc)
		goto done;
	rc = watchdog_config(usec, pid, err, errlen);
	if (rc)
		goto done;
	sd.fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (sd.fd < 0) {
		snprintf(err, errlen, "notify socket: %s", strerror(errno));
		rc = -KILN_E_INTERNAL;
		goto done;
	}
	uv_timer_init(loop, &sd.watchdog);
	uv_timer_init(loop, &sd.status_timer);
	sd.timers_init = true;
	if (sd.watchdog_usec) {
		uint64_t ms = sd.watchdog_usec / 1000;
		timer_start(&sd.watchdog, watchdog_cb, ms ? ms : 1);
	}
done:
	if (rc)
		sd.watchdog_usec = 0;
	free(path);
	free(usec);
	free(pid);
	return rc;
}

bool sdnotify_active(void)
{
	return sd.fd >= 0;
}

unsigned long long sdnotify_watchdog_interval_usec(void)
{
	return sd.watchdog_usec;
}

void sdnotify_set_status_source(sdnotify_status_fn fn)
{
	sd.status_fn = fn;
}

int sdnotify_send(const char *msg)
{
	ssize_t n;

	if (sd.fd < 0)
		return 0;
	do {
		n = sendto(sd.fd, msg, strlen(msg), MSG_DONTWAIT | MSG_NOSIGNAL,
			   (struct sockaddr *)&sd.addr, sd.addrlen);
	} while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : 0;
}

/* READY=1 plus the current status, and (re)starts the status timer. */
static void send_ready(void)
{
	char msg[SDNOTIFY_STATUS_MAX + 32];

	if (sd.fd < 0)
		return;
	status_refresh();
	if (sd.status_fn)
		snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%s", sd.status);
	else
		snprintf(msg, sizeof(msg), "READY=1");
	sdnotify_send(msg);
	if (sd.status_fn && !uv_is_active((uv_handle_t *)&sd.status_timer))
		timer_start(&sd.status_timer, status_cb, SDNOTIFY_STATUS_MS);
}

void sdnotify_ready(void)
{
	send_ready();
}

void sdnotify_reloading(void)
{
	struct timespec ts;
	char msg[96];

	if (sd.fd < 0)
		return;
	/* systemd's notify-reload type matches this timestamp against the
	 * moment it sent SIGHUP, so it must be CLOCK_MONOTONIC in µs. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(msg, sizeof(msg), "RELOADING=1\nSTATUS=Reloading configuration\nMONOTONIC_USEC=%" PRIu64,
		 (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u);
	sdnotify_send(msg);
	/* Forget the last status so the next READY=1 re-sends it. */
	sd.status[0] = '\0';
}

void sdnotify_reloaded(void)
{
	send_ready();
}

void sdnotify_stopping(void)
{
	if (sd.fd < 0)
		return;
	sdnotify_send("STOPPING=1\nSTATUS=Shutting down");
	/* No more status updates: they would overwrite "Shutting down". */
	uv_timer_stop(&sd.status_timer);
}

void sdnotify_close(void)
{
	if (sd.timers_init) {
		uv_close((uv_handle_t *)&sd.watchdog, NULL);
		uv_close((uv_handle_t *)&sd.status_timer, NULL);
		sd.timers_init = false;
	}
	if (sd.fd >= 0)
		close(sd.fd);
	sd.fd = -1;
	sd.watchdog_usec = 0;
	sd.status_fn = NULL;
	sd.status[0] = '\0';
}

/* Checks that fd is a listening Unix stream socket. */
static int check_listen_fd(int fd, char *err, size_t errlen)
{
	struct stat st;
	int val;
	socklen_t len;

	if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "socket activation: fd %d is not a socket", fd);
		return -KILN_E_INTERNAL;
	}
	len = sizeof(val);
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &val, &len) < 0 || val != AF_UNIX) {
		snprintf(err, errlen, "socket activation: fd %d is not an AF_UNIX socket "
			 "(use ListenStream=/path in the .socket unit)", fd);
		return -KILN_E_INTERNAL;
	}
	len = sizeof(val);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &val, &len) < 0 || val != SOCK_STREAM) {
		snprintf(err, errlen, "socket activation: fd %d is not a SOCK_STREAM socket", fd);
		return -KILN_E_INTERNAL;
	}
	len = sizeof(val);
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &val, &len) < 0 || !val) {
		snprintf(err, errlen, "socket activation: fd %d is not listening "
			 "(Accept=no is required)", fd);
		return -KILN_E_INTERNAL;
	}
	return 0;
}

/* The socket's address as text: a path, "@name" when abstract. */
static void socket_name(int fd, char *path, size_t pathlen)
{
	struct sockaddr_un a;
	socklen_t len = sizeof(a);
	size_t n;

	memset(&a, 0, sizeof(a));
	if (getsockname(fd, (struct sockaddr *)&a, &len) < 0 ||
	    len <= offsetof(struct sockaddr_un, sun_path)) {
		snprintf(path, pathlen, "(unnamed socket, fd %d)", fd);
		return;
	}
	n = len - offsetof(struct sockaddr_un, sun_path);
	if (a.sun_path[0] == '\0')
		snprintf(path, pathlen, "@%.*s", (int)n - 1, a.sun_path + 1);
	else
		snprintf(path, pathlen, "%.*s", (int)strnlen(a.sun_path, n), a.sun_path);
}

int sdnotify_listen_fd(int *fd, char *path, size_t pathlen, char *err, size_t errlen)
{
	const char *pid_s = getenv("LISTEN_PID");
	const char *fds_s = getenv("LISTEN_FDS");
	unsigned long long pid, n = 0;
	bool ours;

	ours = pid_s && fds_s && !parse_ull(pid_s, &pid) && pid == (unsigned long long)getpid() &&
	       !parse_ull(fds_s, &n) && n >= 1 && n <= (unsigned long long)INT32_MAX;
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	if (!ours)
		return 0;
	/* Every passed descriptor is ours now: none may leak into children,
	 * even the extra ones we do not use. */
	for (int i = 0; i < (int)n; i++) {
		int f = SDNOTIFY_LISTEN_FDS_START + i;
		int flags = fcntl(f, F_GETFD);

		if (flags < 0 || fcntl(f, F_SETFD, flags | FD_CLOEXEC) < 0) {
			snprintf(err, errlen, "socket activation: fd %d: %s", f, strerror(errno));
			return -KILN_E_INTERNAL;
		}
	}
	if (check_listen_fd(SDNOTIFY_LISTEN_FDS_START, err, errlen))
		return -KILN_E_INTERNAL;
	*fd = SDNOTIFY_LISTEN_FDS_START;
	socket_name(*fd, path, pathlen);
	return 1;
}

bool sdnotify_stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	struct stat st;

	if (fstat(STDERR_FILENO, &st) < 0)
		return false;
	if (js) {
		unsigned long long dev, ino;
		char tail;

		return sscanf(js, "%llu:%llu%c", &dev, &ino, &tail) == 2 &&
		       dev == (unsigned long long)st.st_dev && ino == (unsigned long long)st.st_ino;
	}
	return getenv("INVOCATION_ID") && (S_ISSOCK(st.st_mode) || S_ISFIFO(st.st_mode));
}
