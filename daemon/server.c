/*
 * The listening socket, accepting connections, signals and shutdown.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "action.h"
#include "config.h"
#include "creds.h"
#include "usage.h"
#include "conn.h"
#include "job_owner.h"
#include "jobs.h"
#include "kiln/error.h"
#include "log.h"
#include "sockdir.h"
#include "sdnotify.h"
#include "server.h"

#define FORCED_EXIT_AFTER_GRACE_MS 5000

static struct server *current_server;

/*
 * Running out of file descriptors.  When accept() fails with EMFILE, libuv
 * closes its own reserve descriptor, accepts every pending connection and
 * closes it unanswered: clients see their connection drop.  We stop before
 * that: once fewer than a reserve of descriptors are free, on_connection
 * leaves the connection pending (libuv then stops watching the listener,
 * and later clients wait in the kernel's backlog), and a timer resumes
 * accepting when descriptors are free again.  The reserve keeps room for
 * what running jobs open: files, pipes, job records.
 */
#define FD_CHECK_MS 50
#define FD_WARN_INTERVAL_NS (10ull * 1000 * 1000 * 1000)

static struct {
	uv_timer_t timer;
	bool timer_init;
	bool paused;
	uint64_t warned_ns;
} accept_state;

static void accept_pending(struct server *srv);

struct server *server_current(void)
{
	return current_server;
}

void server_figures(struct server_figures *out)
{
	out->connections = conn_count_served();
	out->in_flight = job_live_count();
	out->requests_served = job_created_count();
	out->uptime_s = server_uptime_s();
}

double server_uptime_s(void)
{
	return (double)(uv_hrtime() - current_server->started_ns) / 1e9;
}

size_t server_rss_bytes(void)
{
	unsigned long size = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "re");

	if (!f)
		return 0;
	if (fscanf(f, "%lu %lu", &size, &resident) != 2)
		resident = 0;
	fclose(f);
	return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

/* Binds the socket, replacing a stale file from a crashed run but refusing
 * to steal the path from a live daemon. */
static int bind_socket(const char *path, unsigned mode, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	mode_t old;
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "socket path too long (max %zu bytes): %s", sizeof(sa.sun_path) - 1, path);
		return -1;
	}
	if (sockdir_prepare(path, err, errlen))
		return -1;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "%s exists and is not a socket; not touching it", path);
			goto fail;
		}
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			snprintf(err, errlen, "another kilnd is already listening on %s", path);
			goto fail;
		}
		if (errno != ECONNREFUSED) {
			snprintf(err, errlen, "cannot probe %s: %s", path, strerror(errno));
			goto fail;
		}
		log_info("removing stale socket %s", path);
		unlink(path);
		close(fd);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			snprintf(err, errlen, "socket: %s", strerror(errno));
			return -1;
		}
	}
	/* Bind under a tight umask so the file is never briefly open to others,
	 * then set the configured mode explicitly. */
	old = umask(0177);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		umask(old);
		snprintf(err, errlen, "bind %s: %s", path, strerror(errno));
		goto fail;
	}
	umask(old);
	if (chmod(path, mode) != 0 || listen(fd, SOMAXCONN) != 0) {
		snprintf(err, errlen, "listen %s: %s", path, strerror(errno));
		unlink(path);
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return -1;
}

/* allowed_uids / allowed_gids; a supplementary group counts as much as the
 * primary one. */
static bool peer_allowed(const struct kiln_config *cfg, const struct kiln_peer *p)
{
	size_t i;
	json_t *v;

	if (json_array_size(cfg->allowed_uids) == 0 && json_array_size(cfg->allowed_gids) == 0)
		return true;
	json_array_foreach(cfg->allowed_uids, i, v) {
		if ((uid_t)json_integer_value(v) == p->uid)
			return true;
	}
	json_array_foreach(cfg->allowed_gids, i, v) {
		if (creds_peer_in_group(p, (gid_t)json_integer_value(v)))
			return true;
	}
	return false;
}

static bool still_allowed(const struct kiln_peer *p, void *cfg)
{
	return peer_allowed(cfg, p);
}

/* Raises the soft descriptor limit to the hard one: kilnd polls with epoll,
 * never select(), so high descriptor numbers are harmless, and the default
 * max_connections (1024) needs more than the usual soft limit of 1024. */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ? 1048576 : rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		log_debug("cannot raise the descriptor limit to %llu: %s", (unsigned long long)rl.rlim_cur,
			  strerror(errno));
}

/* True when fewer than the reserve (1/16 of the limit, 16 to 256) of
 * descriptors are free.  The lowest free descriptor number is a lower bound
 * on those in use (every lower one is taken); the connection count covers
 * connections sitting above closed holes. */
static bool fds_low(const struct server *srv)
{
	struct rlimit rl;
	unsigned long limit, reserve, used;
	uv_os_fd_t lfd;
	int fd;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
	    uv_fileno((const uv_handle_t *)&srv->listener, &lfd) != 0)
		return false;
	limit = rl.rlim_cur;
	reserve = limit / 16 < 16 ? 16 : limit / 16 > 256 ? 256 : limit / 16;
	fd = fcntl(lfd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return true;
	close(fd);
	used = (unsigned long)fd > conn_count_open() ? (unsigned long)fd : conn_count_open();
	return used + reserve >= limit;
}

static void on_fd_check(uv_timer_t *t)
{
	struct server *srv = t->data;

	if (!srv->shutting_down && fds_low(srv))
		return;
	uv_timer_stop(t);
	accept_state.paused = false;
	if (srv->shutting_down)
		return;
	log_debug("file descriptors free again: accepting resumed");
	accept_pending(srv);
}

static void pause_accepting(struct server *srv)
{
	if (accept_state.paused)
		return;
	accept_state.paused = true;
	/* Under sustained pressure accepting flips on and off every few
	 * connections: warn once per interval, not each time. */
	if (!accept_state.warned_ns || uv_hrtime() - accept_state.warned_ns >= FD_WARN_INTERVAL_NS) {
		accept_state.warned_ns = uv_hrtime();
		log_warn("file descriptors nearly exhausted (%u connections): accepting paused until some "
			 "are free", conn_count_open());
	}
	if (!accept_state.timer_init) {
		uv_timer_init(srv->loop, &accept_state.timer);
		accept_state.timer.data = srv;
		accept_state.timer_init = true;
	}
	uv_timer_start(&accept_state.timer, on_fd_check, FD_CHECK_MS, FD_CHECK_MS);
}

/* Takes the connection libuv holds pending and starts serving it. */
static void accept_pending(struct server *srv)
{
	const struct kiln_config *cfg = config_current();
	const struct kiln_peer *peer;
	struct conn *c;

	c = conn_accept(srv->loop, (uv_stream_t *)&srv->listener);
	if (!c)
		return;
	peer = conn_peer(c);
	if (!peer_allowed(cfg, peer)) {
		log_warn("conn %llu: uid %u gid %u is not allowed", (unsigned long long)conn_id(c),
			 (unsigned)peer->uid, (unsigned)peer->gid);
		conn_refuse(c, KILN_E_FORBIDDEN, "this user is not allowed to use kilnd");
	} else if (conn_count_served() > cfg->max_connections) {
		log_warn("max_connections (%u) reached", cfg->max_connections);
		conn_refuse(c, KILN_E_BUSY, "too many connections (max_connections)");
	} else if (usage_get(peer->uid, USAGE_CONNS) > cfg->max_connections_per_uid) {
		log_warn("uid %u: max_connections_per_uid (%u) reached", (unsigned)peer->uid,
			 cfg->max_connections_per_uid);
		conn_refuse(c, KILN_E_BUSY, "too many connections for this user (max_connections_per_uid)");
	}
	conn_start(c);
}

static void on_connection(uv_stream_t *listener, int status)
{
	struct server *srv = listener->data;

	if (status < 0) {
		log_warn("accept: %s", uv_strerror(status));
		return;
	}
	/* Not calling uv_accept() leaves the connection pending in libuv, which
	 * then stops reading the listener until accept_pending() takes it. */
	if (accept_state.paused || fds_low(srv)) {
		pause_accepting(srv);
		return;
	}
	accept_pending(srv);
}

static void server_maybe_finish_shutdown(struct server *srv);

/* Once per loop iteration, before it waits: the connections' deferred work,
 * then the end of a shutdown once nothing is left. */
static void on_prepare(uv_prepare_t *p)
{
	struct server *srv = p->data;

	conn_prepare_pass();
	if (srv->shutting_down)
		server_maybe_finish_shutdown(srv);
}

static void close_handle(uv_handle_t *h)
{
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static void server_maybe_finish_shutdown(struct server *srv)
{
	if (!srv->shutting_down || conn_count_open() > 0 || job_live_count() > 0)
		return;
	log_info("all work done, exiting");
	dispatch_release();
	close_handle((uv_handle_t *)&srv->grace_timer);
	if (accept_state.timer_init)
		close_handle((uv_handle_t *)&accept_state.timer);
	close_handle((uv_handle_t *)&srv->prepare);
	close_handle((uv_handle_t *)&srv->sig_term);
	close_handle((uv_handle_t *)&srv->sig_int);
	close_handle((uv_handle_t *)&srv->sig_hup);
#ifdef KILN_DEBUG
	close_handle((uv_handle_t *)&srv->sig_wedge);
#endif
	sdnotify_close();
}


static void on_grace(uv_timer_t *t)
{
	struct server *srv = t->data;

	if (!srv->grace_expired) {
		srv->grace_expired = true;
		log_warn("shutdown grace period over: cancelling %u jobs", job_live_count());
		jobs_cancel_running();
		conn_cancel_all();
		uv_timer_start(t, on_grace, FORCED_EXIT_AFTER_GRACE_MS, 0);
		return;
	}
	log_error("%u jobs did not stop after cancellation; exiting anyway", job_live_count());
	exit(EXIT_FAILURE);
}

void server_stop(struct server *srv)
{
	const struct kiln_config *cfg = config_current();

	if (srv->shutting_down) {
		/* A second signal: do not wait for the grace period. */
		if (!srv->grace_expired)
			on_grace(&srv->grace_timer);
		return;
	}
	srv->shutting_down = true;
	sdnotify_stopping();
	log_info("shutting down: %u connections, %u jobs in flight", conn_count_open(), job_live_count());
	/* Children are signalled now so they are gone within the grace period. */
	dispatch_stop();
	if (srv->listening) {
		uv_close((uv_handle_t *)&srv->listener, NULL);
		srv->listening = false;
		if (srv->own_socket_file)
			unlink(srv->socket_path);
	}
	conn_drain_all();
	uv_timer_start(&srv->grace_timer, on_grace, (uint64_t)(cfg->shutdown_grace * 1000), 0);
}

#ifdef KILN_DEBUG
/* Debug builds only (make DEBUG=1): SIGUSR2 blocks the loop thread for good,
 * so a test can watch systemd's watchdog kill and restart a wedged daemon.
 * Release builds install no handler. */
static void on_wedge(uv_signal_t *s, int signum)
{
	(void)s;
	(void)signum;
	log_warn("debug: SIGUSR2, wedging the event loop");
	for (;;)
		pause();
}
#endif

static void on_signal(uv_signal_t *s, int signum)
{
	struct server *srv = s->data;

	if (signum == SIGHUP) {
		char err[512];
		struct kiln_config *cfg;

		log_info("SIGHUP: reloading %s", srv->config_path ? srv->config_path : "(defaults)");
		sdnotify_reloading();
		cfg = dispatch_config_load(srv->config_path, err, sizeof(err));
		if (!cfg) {
			log_error("reload failed, keeping the old configuration: %s", err);
			snprintf(srv->reload_error, sizeof(srv->reload_error), "%.*s",
				 (int)sizeof(srv->reload_error) - 1, err);
			sdnotify_reloaded();
			return;
		}
		if (strcmp(cfg->socket, config_current()->socket) != 0)
			log_warn("socket changes take effect at restart");
		log_set_level(log_level_parse(cfg->log_level));
		config_install(cfg);
		dispatch_reconfigure(cfg);
		srv->reload_error[0] = '\0';
		/* Peers the new lists no longer allow lose their connections. */
		conn_drop_where(still_allowed, cfg, KILN_E_FORBIDDEN,
				"this user is no longer allowed to use kilnd (configuration reloaded)");
		sdnotify_reloaded();
		return;
	}
	log_info("%s received", signum == SIGTERM ? "SIGTERM" : "SIGINT");
	server_stop(srv);
}

int server_start(struct server *srv, uv_loop_t *loop, const char *socket_path, char *err,
		 size_t errlen)
{
	char activated[PATH_MAX];
	int fd, rc;

	srv->loop = loop;
	srv->started_ns = uv_hrtime();
	current_server = srv;
	raise_fd_limit();
	/* Handlers first: once the socket listens, clients (and supervisors)
	 * take the daemon as up, and a SIGTERM must then mean a clean stop. */
	uv_signal_init(loop, &srv->sig_term);
	uv_signal_init(loop, &srv->sig_int);
	uv_signal_init(loop, &srv->sig_hup);
	srv->sig_term.data = srv->sig_int.data = srv->sig_hup.data = srv;
	uv_signal_start(&srv->sig_term, on_signal, SIGTERM);
	uv_signal_start(&srv->sig_int, on_signal, SIGINT);
	uv_signal_start(&srv->sig_hup, on_signal, SIGHUP);
#ifdef KILN_DEBUG
	uv_signal_init(loop, &srv->sig_wedge);
	uv_signal_start(&srv->sig_wedge, on_wedge, SIGUSR2);
#endif
	/* Socket activation: systemd's socket (fd 3) replaces socket_path, and
	 * its file is systemd's to remove, not ours. */
	rc = sdnotify_listen_fd(&fd, activated, sizeof(activated), err, errlen);
	if (rc < 0)
		return -1;
	srv->socket_path = strdup(rc ? activated : socket_path);
	if (!rc) {
		fd = bind_socket(socket_path, config_current()->socket_mode, err, errlen);
		if (fd < 0)
			return -1;
		srv->own_socket_file = true;
	}
	uv_pipe_init(loop, &srv->listener, 0);
	srv->listener.data = srv;
	if (uv_pipe_open(&srv->listener, fd) != 0 ||
	    uv_listen((uv_stream_t *)&srv->listener, SOMAXCONN, on_connection) != 0) {
		snprintf(err, errlen, "cannot listen on %s", srv->socket_path);
		if (srv->own_socket_file)
			unlink(socket_path);
		return -1;
	}
	srv->listening = true;
	uv_prepare_init(loop, &srv->prepare);
	srv->prepare.data = srv;
	uv_prepare_start(&srv->prepare, on_prepare);
	uv_timer_init(loop, &srv->grace_timer);
	srv->grace_timer.data = srv;
	return 0;
}
