/*
 * sdnotify.c: notification datagrams on path and abstract sockets, the
 * watchdog timer, environment scrubbing, socket activation checks and
 * journal detection.  Each test runs in its own forked process, so changing
 * the environment and fd 3 is harmless.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "check_main.h"
#include "kiln/error.h"
#include "sdnotify.h"

/* A receiving datagram socket bound to `name` ("/path" or "@abstract"). */
static int receiver(const char *name)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	size_t len = strlen(name);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	memcpy(a.sun_path, name, len);
	if (name[0] == '@')
		a.sun_path[0] = '\0';
	else
		len++;
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a,
			      (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)), 0);
	return fd;
}

/* Receives one datagram (waiting at most 2 s) into buf as a string. */
static void recv_msg(int fd, char *buf, size_t len)
{
	struct timeval tv = { .tv_sec = 2 };
	ssize_t n;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	n = recv(fd, buf, len - 1, 0);
	ck_assert_msg(n >= 0, "no datagram: %s", strerror(errno));
	buf[n] = '\0';
}

static void test_status(char *buf, size_t len)
{
	snprintf(buf, len, "2 connections, 0 jobs");
}

/* The full READY / RELOADING / READY / STOPPING sequence on `name`. */
static void check_sequence(const char *name)
{
	char err[256] = "", buf[512];
	uv_loop_t loop;
	int fd = receiver(name);
	struct timespec ts;
	unsigned long long mono = 0, now;
	const char *m;

	setenv("NOTIFY_SOCKET", name, 1);
	uv_loop_init(&loop);
	ck_assert_int_eq(sdnotify_init(&loop, err, sizeof(err)), 0);
	ck_assert_ptr_null(getenv("NOTIFY_SOCKET"));
	ck_assert(sdnotify_active());

	sdnotify_set_status_source(test_status);
	sdnotify_ready();
	recv_msg(fd, buf, sizeof(buf));
	ck_assert_str_eq(buf, "READY=1\nSTATUS=2 connections, 0 jobs");

	sdnotify_reloading();
	recv_msg(fd, buf, sizeof(buf));
	ck_assert_msg(strncmp(buf, "RELOADING=1\n", 12) == 0, "got %s", buf);
	m = strstr(buf, "\nMONOTONIC_USEC=");
	ck_assert_ptr_nonnull(m);
	ck_assert_int_eq(sscanf(m, "\nMONOTONIC_USEC=%llu", &mono), 1);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000;
	ck_assert(mono <= now && mono + 10000000ull > now);

	sdnotify_reloaded();
	recv_msg(fd, buf, sizeof(buf));
	ck_assert_str_eq(buf, "READY=1\nSTATUS=2 connections, 0 jobs");

	sdnotify_stopping();
	recv_msg(fd, buf, sizeof(buf));
	ck_assert_msg(strncmp(buf, "STOPPING=1", 10) == 0, "got %s", buf);

	sdnotify_close();
	ck_assert(!sdnotify_active());
	ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
	ck_assert_int_eq(uv_loop_close(&loop), 0);
	close(fd);
}

START_TEST(path_socket)
{
	char name[64];

	snprintf(name, sizeof(name), "/tmp/kiln-sdnotify-%d.sock", (int)getpid());
	unlink(name);
	check_sequence(name);
	unlink(name);
}
END_TEST

START_TEST(abstract_socket)
{
	char name[64];

	snprintf(name, sizeof(name), "@kiln-sdnotify-%d", (int)getpid());
	check_sequence(name);
}
END_TEST

static int wd_fd;
static char wd_msg[64];

static void wd_readable(uv_poll_t *p, int status, int events)
{
	(void)status;
	(void)events;
	recv_msg(wd_fd, wd_msg, sizeof(wd_msg));
	uv_poll_stop(p);
}

START_TEST(watchdog_pings_from_loop)
{
	char err[256] = "", name[64], pid[32];
	uv_loop_t loop;
	uv_poll_t poll;

	snprintf(name, sizeof(name), "@kiln-sdnotify-wd-%d", (int)getpid());
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	wd_fd = receiver(name);
	setenv("NOTIFY_SOCKET", name, 1);
	setenv("WATCHDOG_USEC", "40000", 1);
	setenv("WATCHDOG_PID", pid, 1);
	uv_loop_init(&loop);
	ck_assert_int_eq(sdnotify_init(&loop, err, sizeof(err)), 0);
	ck_assert_ptr_null(getenv("WATCHDOG_USEC"));
	ck_assert_ptr_null(getenv("WATCHDOG_PID"));
	ck_assert_uint_eq(sdnotify_watchdog_interval_usec(), 20000);

	/* The poll keeps the loop running until the first ping arrives; the
	 * watchdog timer itself does not hold the loop open. */
	uv_poll_init(&loop, &poll, wd_fd);
	uv_poll_start(&poll, UV_READABLE, wd_readable);
	uv_run(&loop, UV_RUN_DEFAULT);
	ck_assert_str_eq(wd_msg, "WATCHDOG=1");

	uv_close((uv_handle_t *)&poll, NULL);
	sdnotify_close();
	uv_run(&loop, UV_RUN_DEFAULT);
	ck_assert_int_eq(uv_loop_close(&loop), 0);
	close(wd_fd);
}
END_TEST

START_TEST(watchdog_for_other_pid_ignored)
{
	char err[256] = "";
	uv_loop_t loop;

	setenv("NOTIFY_SOCKET", "@kiln-sdnotify-unused", 1);
	setenv("WATCHDOG_USEC", "1000000", 1);
	setenv("WATCHDOG_PID", "1", 1);
	uv_loop_init(&loop);
	ck_assert_int_eq(sdnotify_init(&loop, err, sizeof(err)), 0);
	ck_assert_uint_eq(sdnotify_watchdog_interval_usec(), 0);
	ck_assert_ptr_null(getenv("WATCHDOG_PID"));
	sdnotify_close();
	uv_run(&loop, UV_RUN_DEFAULT);
	ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

START_TEST(bad_environment_refused)
{
	static const char *const bad[][2] = {
		{ "relative/path", NULL },
		{ "@", NULL },
		{ "@kiln-x", "-5" },
		{ "@kiln-x", "12abc" },
		{ "@kiln-x", "0" },
	};
	char err[256];
	uv_loop_t loop;

	uv_loop_init(&loop);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		setenv("NOTIFY_SOCKET", bad[i][0], 1);
		if (bad[i][1])
			setenv("WATCHDOG_USEC", bad[i][1], 1);
		err[0] = '\0';
		ck_assert_int_eq(sdnotify_init(&loop, err, sizeof(err)), -KILN_E_INTERNAL);
		ck_assert_msg(err[0] != '\0', "case %zu: no message", i);
		ck_assert(!sdnotify_active());
		ck_assert_uint_eq(sdnotify_watchdog_interval_usec(), 0);
		ck_assert_ptr_null(getenv("NOTIFY_SOCKET"));
		ck_assert_ptr_null(getenv("WATCHDOG_USEC"));
		/* Inactive: sends are harmless no-ops. */
		ck_assert_int_eq(sdnotify_send("READY=1"), 0);
		sdnotify_ready();
		sdnotify_stopping();
		sdnotify_close();
	}
	ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

START_TEST(no_notify_socket_is_silent)
{
	char err[256] = "";
	uv_loop_t loop;

	unsetenv("NOTIFY_SOCKET");
	setenv("WATCHDOG_USEC", "1000", 1);
	uv_loop_init(&loop);
	ck_assert_int_eq(sdnotify_init(&loop, err, sizeof(err)), 0);
	ck_assert(!sdnotify_active());
	ck_assert_uint_eq(sdnotify_watchdog_interval_usec(), 0);
	ck_assert_ptr_null(getenv("WATCHDOG_USEC"));
	sdnotify_close();
	ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

static void set_listen_env(const char *pid, const char *fds)
{
	char own[32];

	snprintf(own, sizeof(own), "%d", (int)getpid());
	setenv("LISTEN_PID", pid ? pid : own, 1);
	setenv("LISTEN_FDS", fds, 1);
	setenv("LISTEN_FDNAMES", "kilnd.socket", 1);
}

static void assert_listen_env_gone(void)
{
	ck_assert_ptr_null(getenv("LISTEN_PID"));
	ck_assert_ptr_null(getenv("LISTEN_FDS"));
	ck_assert_ptr_null(getenv("LISTEN_FDNAMES"));
}

/* What sdnotify_listen_fd() did in a child process with a prepared fd 3. */
struct activation {
	int rc, fd;
	pid_t pid;
	bool cloexec, env_gone;
	char path[128];
	char err[256];
};

/* Puts a socket at fd 3 (bound and listening if asked; domain -1 means
 * /dev/null instead) and calls sdnotify_listen_fd() with LISTEN_PID set to
 * this process.  This runs in a forked child because the check framework
 * reports through fd 3 itself and no assertion may run while it is replaced. */
static struct activation activate(int domain, int type, bool listening)
{
	struct activation r = { .rc = -100, .fd = -1 };
	int p[2], status;
	pid_t pid;

	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char own[32];
		int s = domain < 0 ? open("/dev/null", O_RDONLY) : socket(domain, type, 0);

		if (listening) {
			struct sockaddr_un a = { .sun_family = AF_UNIX };
			/* An abstract address: no file to clean up. */
			snprintf(a.sun_path + 1, sizeof(a.sun_path) - 1, "kiln-activate-%d", (int)getpid());
			if (bind(s, (struct sockaddr *)&a, (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
							   1 + strlen(a.sun_path + 1))) ||
			    listen(s, 4))
				_exit(2);
		}
		if (s < 0 || dup2(s, 3) != 3)
			_exit(2);
		snprintf(own, sizeof(own), "%d", (int)getpid());
		setenv("LISTEN_PID", own, 1);
		setenv("LISTEN_FDS", "1", 1);
		setenv("LISTEN_FDNAMES", "kilnd.socket", 1);
		r.cloexec = fcntl(3, F_GETFD) & FD_CLOEXEC;
		if (r.cloexec)
			_exit(3);
		r.rc = sdnotify_listen_fd(&r.fd, r.path, sizeof(r.path), r.err, sizeof(r.err));
		r.cloexec = fcntl(3, F_GETFD) & FD_CLOEXEC;
		r.env_gone = !getenv("LISTEN_PID") && !getenv("LISTEN_FDS") && !getenv("LISTEN_FDNAMES");
		_exit(write(p[1], &r, sizeof(r)) == sizeof(r) ? 0 : 4);
	}
	close(p[1]);
	ck_assert_int_eq(read(p[0], &r, sizeof(r)), sizeof(r));
	close(p[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_int_eq(status, 0);
	r.pid = pid;
	return r;
}

START_TEST(activation_accepts_listening_unix_stream)
{
	struct activation r = activate(AF_UNIX, SOCK_STREAM, true);
	char name[64];

	ck_assert_msg(r.rc == 1, "rc %d: %s", r.rc, r.err);
	ck_assert_int_eq(r.fd, 3);
	snprintf(name, sizeof(name), "@kiln-activate-%d", (int)r.pid);
	ck_assert_str_eq(r.path, name);
	ck_assert(r.cloexec);
	ck_assert(r.env_gone);
}
END_TEST

START_TEST(activation_refuses_wrong_sockets)
{
	static const struct {
		int domain, type;
		bool listening;
		const char *what;
	} cases[] = {
		{ AF_UNIX, SOCK_DGRAM, false, "SOCK_STREAM" },
		{ AF_UNIX, SOCK_STREAM, false, "not listening" },
		{ AF_INET, SOCK_STREAM, false, "AF_UNIX" },
		{ -1, 0, false, "not a socket" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct activation r = activate(cases[i].domain, cases[i].type, cases[i].listening);

		ck_assert_int_eq(r.rc, -KILN_E_INTERNAL);
		ck_assert_int_eq(r.fd, -1);
		ck_assert_msg(strstr(r.err, cases[i].what), "case %zu: %s", i, r.err);
		ck_assert(r.env_gone);
	}
}
END_TEST

START_TEST(activation_for_other_pid_ignored)
{
	char err[256] = "", path[128];
	int fd = -1;

	set_listen_env("1", "1");
	ck_assert_int_eq(sdnotify_listen_fd(&fd, path, sizeof(path), err, sizeof(err)), 0);
	ck_assert_int_eq(fd, -1);
	assert_listen_env_gone();

	set_listen_env(NULL, "0");
	ck_assert_int_eq(sdnotify_listen_fd(&fd, path, sizeof(path), err, sizeof(err)), 0);
	assert_listen_env_gone();

	ck_assert_int_eq(sdnotify_listen_fd(&fd, path, sizeof(path), err, sizeof(err)), 0);
}
END_TEST

START_TEST(journal_detection)
{
	char path[64], js[64];
	struct stat st;
	int fd, p[2], saved_stderr = dup(STDERR_FILENO);

	snprintf(path, sizeof(path), "/tmp/kiln-sdnotify-log-%d", (int)getpid());
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	close(fd);
	unlink(path);
	ck_assert_int_eq(fstat(STDERR_FILENO, &st), 0);
	unsetenv("INVOCATION_ID");

	unsetenv("JOURNAL_STREAM");
	ck_assert(!sdnotify_stderr_is_journal());

	snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", js, 1);
	ck_assert(sdnotify_stderr_is_journal());

	/* Stderr redirected elsewhere than the journal stream. */
	snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino + 1);
	setenv("JOURNAL_STREAM", js, 1);
	setenv("INVOCATION_ID", "0123456789abcdef0123456789abcdef", 1);
	ck_assert(!sdnotify_stderr_is_journal());
	setenv("JOURNAL_STREAM", "garbage", 1);
	ck_assert(!sdnotify_stderr_is_journal());

	/* No JOURNAL_STREAM: a service's pipe counts, a file does not. */
	unsetenv("JOURNAL_STREAM");
	ck_assert(!sdnotify_stderr_is_journal());
	ck_assert_int_eq(pipe(p), 0);
	ck_assert_int_eq(dup2(p[1], STDERR_FILENO), STDERR_FILENO);
	ck_assert(sdnotify_stderr_is_journal());
	unsetenv("INVOCATION_ID");
	ck_assert(!sdnotify_stderr_is_journal());
	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	close(p[0]);
	close(p[1]);
}
END_TEST

static Suite *sdnotify_suite(void)
{
	Suite *s = suite_create("sdnotify");
	TCase *tc = tcase_create("sdnotify");

	tcase_add_test(tc, path_socket);
	tcase_add_test(tc, abstract_socket);
	tcase_add_test(tc, watchdog_pings_from_loop);
	tcase_add_test(tc, watchdog_for_other_pid_ignored);
	tcase_add_test(tc, bad_environment_refused);
	tcase_add_test(tc, no_notify_socket_is_silent);
	tcase_add_test(tc, activation_accepts_listening_unix_stream);
	tcase_add_test(tc, activation_refuses_wrong_sockets);
	tcase_add_test(tc, activation_for_other_pid_ignored);
	tcase_add_test(tc, journal_detection);
	suite_add_tcase(s, tc);
	return s;
}

KILN_CHECK_MAIN(sdnotify_suite)
