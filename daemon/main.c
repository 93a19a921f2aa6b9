/*
 * kilnd: the kiln daemon.
 */
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "action.h"
#include "config.h"
#include "log.h"
#include "mod_proc.h"
#include "secrets.h"
#include "sdnotify.h"
#include "server.h"

#ifdef KILN_DEBUG
#define KILN_BUILD_KIND " (debug build)"
#else
#define KILN_BUILD_KIND ""
#endif

static void usage(FILE *f)
{
	fprintf(f, "usage: kilnd [--socket PATH] [--config FILE] [--foreground] [--log-level LEVEL]\n"
		   "  --socket PATH     Unix socket to listen on (default: config \"socket\", else\n"
		   "                    $KILN_SOCKET, $RUNTIME_DIRECTORY/kiln.sock,\n"
		   "                    $XDG_RUNTIME_DIR/kiln/kiln.sock, /tmp/kiln-$UID/kiln.sock)\n"
		   "  --config FILE     JSON configuration (see daemon/kiln.example.json)\n"
		   "  --foreground      stay in the foreground (kilnd never daemonizes itself;\n"
		   "                    accepted for compatibility with init scripts)\n"
		   "  --log-level L     error, warn, info or debug (overrides the config)\n"
		   "  --describe        print every action's schema and every config key as JSON\n"
		   "                    (the source of proto/actions.json) and exit\n"
		   "  --version         print the version\n");
}

static void set_threadpool_size(void)
{
	char buf[24];

	/* libuv reads this once, when the pool first starts. */
	snprintf(buf, sizeof(buf), "%u", config_pool_threads());
	setenv("UV_THREADPOOL_SIZE", buf, 1);
}

/* systemd's STATUS= line (`systemctl status kilnd`), refreshed every second. */
static void sd_status(char *buf, size_t len)
{
	const struct server *srv = server_current();
	struct server_figures f;

	server_figures(&f);
	snprintf(buf, len, "%u connection%s, %u job%s in flight, %.1f MiB held, %" PRIu64 " request%s served%s%s",
		 f.connections, f.connections == 1 ? "" : "s", f.in_flight, f.in_flight == 1 ? "" : "s",
		 (double)dispatch_memory_held() / (1024.0 * 1024.0), f.requests_served,
		 f.requests_served == 1 ? "" : "s", srv->reload_error[0] ? "; last reload failed, old config kept: " : "",
		 srv->reload_error);
}

static int print_describe(void)
{
	json_t *d = dispatch_describe(NULL);

	json_object_set_new(d, "config", config_describe());
	json_dumpf(d, stdout, JSON_INDENT(1) | JSON_SORT_KEYS);
	putchar('\n');
	json_decref(d);
	dispatch_shutdown();
	config_install(NULL);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },   { "config", required_argument, NULL, 'c' },
		{ "foreground", no_argument, NULL, 'f' },     { "log-level", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },           { "version", no_argument, NULL, 'V' },
		{ "describe", no_argument, NULL, 'D' },
		{ NULL, 0, NULL, 0 },
	};
	const char *socket_opt = NULL, *config_path = NULL, *level_opt = NULL;
	struct kiln_config *cfg;
	struct server srv = { 0 };
	char err[1024], path[PATH_MAX];
	int c, describe = 0;

	/* A module worker process (mod_proc.c), started by kilnd itself. */
	if (argc > 1 && strcmp(argv[1], "--module-host") == 0)
		return modhost_main(argc, argv);
	while ((c = getopt_long(argc, argv, "s:c:fl:hVD", opts, NULL)) != -1) {
		switch (c) {
		case 's': socket_opt = optarg; break;
		case 'c': config_path = optarg; break;
		case 'f': break;
		case 'l': level_opt = optarg; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("kilnd %s%s\n", KILN_VERSION, KILN_BUILD_KIND); return 0;
		case 'D': describe = 1; break;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	/* Before anything reads a request or a key: see secrets.h. */
	if (secrets_init(err, sizeof(err)) != 0) {
		fprintf(stderr, "kilnd: %s\n", err);
		return 1;
	}
	if (!config_path && getenv("KILN_CONFIG") && *getenv("KILN_CONFIG"))
		config_path = getenv("KILN_CONFIG");
	families_register_builtin();
	cfg = dispatch_config_load(config_path, err, sizeof(err));
	if (!cfg) {
		fprintf(stderr, "kilnd: %s\n", err);
		return 1;
	}
	if (level_opt && log_level_parse(level_opt) < 0) {
		fprintf(stderr, "kilnd: --log-level: expected error, warn, info or debug\n");
		config_unref(cfg);
		return 2;
	}
	log_set_level(log_level_parse(level_opt ? level_opt : cfg->log_level));
	log_set_prefixes(sdnotify_stderr_is_journal());
	config_install(cfg);
	srv.config_path = config_path;

	if (socket_opt)
		snprintf(path, sizeof(path), "%s", socket_opt);
	else if (cfg->socket[0])
		snprintf(path, sizeof(path), "%s", cfg->socket);
	else if (config_default_socket(path, sizeof(path)) != 0)
		fatal("default socket path is too long");

	signal(SIGPIPE, SIG_IGN);
	set_threadpool_size();
	if (dispatch_init(cfg, err, sizeof(err)) != 0) {
		log_error("%s", err);
		return 1;
	}
	if (describe)
		return print_describe();
	/* Before anything can spawn a child: it unsets $NOTIFY_SOCKET & co. */
	if (sdnotify_init(uv_default_loop(), err, sizeof(err)) != 0)
		log_warn("systemd notification off: %s", err);
	if (server_start(&srv, uv_default_loop(), path, err, sizeof(err)) != 0) {
		log_error("%s", err);
		dispatch_shutdown();
		free(srv.socket_path);
		config_install(NULL);
		return 1;
	}
	log_info("kilnd %s listening on %s (pid %d, config %s)", KILN_VERSION, srv.socket_path,
		 (int)getpid(), cfg->source);
	sdnotify_set_status_source(sd_status);
	sdnotify_ready();
	uv_run(uv_default_loop(), UV_RUN_DEFAULT);

	dispatch_shutdown();
	uv_loop_close(uv_default_loop());
	free(srv.socket_path);
	config_install(NULL);
	log_info("stopped");
	return 0;
}
