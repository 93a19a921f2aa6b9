/*
 * The module host: the worker process that runs one module's handlers for
 * process isolation.  kilnd starts it as `kilnd --module-host PPID` (a
 * fresh exec, so nothing of kilnd's memory is here) with the socket on fd
 * 3, the module file on fd 4 and the control page on fd 5; every other
 * descriptor is closed before the module is loaded, so the module sees no
 * client socket, corpus or key file of kilnd's.  It has kilnd's uid and no
 * more (no_new_privs), dies with kilnd (PDEATHSIG) and runs one call at a
 * time: kilnd starts `workers` of them for parallel calls.
 *
 * Protocol: mod_wire.h.  Single-threaded, blocking.
 */
#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "kiln/utf8.h"
#include "mod_api.h"
#include "mod_wire.h"
#include "mod_proc.h"

static struct {
	struct mod_lib *lib;
	struct mw_ctl *ctl;
	size_t out_max;
	uint64_t call_id;
	uint64_t progress_ns;
	int out_fd;          /* the memfd behind a large output, or -1 */
} host = { .out_fd = -1 };

static void die(const char *what)
{
	fprintf(stderr, "kiln module host %d: %s\n", (int)getpid(), what);
	_exit(3);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void send_or_die(struct mw_hdr *h, const char *json, const void *attach)
{
	if (mw_send(MW_FD_SOCK, h, json, attach) != 0)
		die("cannot write to kilnd");
}

/* --- Call environment -------------------------------------------------------- */

static void host_progress(void *ctx, uint64_t done, uint64_t total)
{
	uint64_t t = now_ns();
	struct mw_hdr h = { .type = MW_PROGRESS, .id = host.call_id, .a = done, .b = total };
	struct pollfd pfd = { .fd = MW_FD_SOCK, .events = POLLOUT };

	(void)ctx;
	/* kilnd coalesces to ~10 lines/s; more messages would only cost. */
	if (t - host.progress_ns < 50000000u && done < total)
		return;
	host.progress_ns = t;
	/* Best effort: when kilnd is behind, this report is dropped rather
	 * than stalling the handler. */
	if (poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLOUT))
		mw_send(MW_FD_SOCK, &h, "", NULL);
}

static bool host_cancelled(void *ctx)
{
	(void)ctx;
	return atomic_load_explicit(&host.ctl->cancel_id, memory_order_relaxed) == host.call_id;
}

static void *host_out_alloc(void *ctx, size_t len)
{
	void *p;

	(void)ctx;
	if (len <= MW_INLINE_MAX / 2) {
		if (posix_memalign(&p, MW_ALIGN, len ? len : 1))
			return NULL;
		memset(p, 0, len);
		return p;
	}
	host.out_fd = mw_memfd_attachment(len, &p);
	return host.out_fd < 0 ? NULL : p;
}

static void host_out_release(void *ctx, void *buf, size_t len)
{
	(void)ctx;
	if (host.out_fd < 0) {
		free(buf);
		return;
	}
	mw_memfd_unmap(buf, len);
	close(host.out_fd);
	host.out_fd = -1;
}

static const struct mod_call_ops host_ops = {
	.progress = host_progress,
	.cancelled = host_cancelled,
	.out_alloc = host_out_alloc,
	.out_release = host_out_release,
};

/* --- Calls ------------------------------------------------------------------- */

static const struct mod_action *find_action(const char *name)
{
	for (size_t i = 0; name && i < host.lib->count; i++)
		if (strcmp(host.lib->actions[i].name, name) == 0)
			return &host.lib->actions[i];
	return NULL;
}

static void reply(uint64_t id, int code, json_t *data, const char *message, void *out, size_t out_len)
{
	struct mw_hdr h = { .type = MW_RESULT, .id = id, .code = code, .attach_len = out_len };
	size_t msg_len;
	char *msg = kiln_utf8_scrub(message, strlen(message), &msg_len);
	json_t *r = json_pack("{s:o?, s:s}", "data", data, "message", msg ? msg : "?");
	char *text = r ? json_dumps(r, JSON_COMPACT) : NULL;

	if (!text)
		die("out of memory");
	h.json_len = strlen(text);
	if (host.out_fd >= 0 && out) {
		mw_memfd_unmap(out, out_len);
		if (mw_send_with_memfd(MW_FD_SOCK, &h, text, host.out_fd) != 0)
			die("cannot write to kilnd");
		close(host.out_fd);
		host.out_fd = -1;
	} else {
		send_or_die(&h, text, out);
		free(out);
	}
	free(text);
	free(msg);
	json_decref(r);
}

static void run_call(struct mw_msg *m)
{
	json_t *req = json_loads(m->json, 0, NULL);
	const struct mod_action *a = find_action(json_string_value(json_object_get(req, "action")));
	json_t *args = json_object_get(req, "args");
	struct kiln_mod_call call;
	void *out;
	size_t out_len;

	host.call_id = m->h.id;
	host.progress_ns = 0;
	if (!a || !json_is_object(args)) {
		reply(m->h.id, KILN_E_INTERNAL, NULL, "module host: malformed call", NULL, 0);
		json_decref(req);
		return;
	}
	mod_call_init(&call, args, m->attach, m->h.attach_len, host.out_max, &host_ops, NULL);
	if (mod_call_run(&call, a->handler) != 0) {
		reply(m->h.id, call.code, NULL, call.message, NULL, 0);
	} else {
		out = call.out;
		out_len = call.out_len;
		call.out = NULL;
		reply(m->h.id, 0, json_incref(call.data), call.message, out, out_len);
	}
	mod_call_release(&call);
	json_decref(req);
}

/* --- Start -------------------------------------------------------------------- */

static const int fatal_signals[] = { SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL, SIGTRAP };

static void confine(const char *ppid)
{
	struct rlimit no_core = { 0, 0 };

	/* Nothing of kilnd's but our three descriptors (and stdio). */
	if (close_range(MW_FD_CTL + 1, ~0U, 0) != 0)
		for (int fd = MW_FD_CTL + 1; fd < 1024; fd++)
			close(fd);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		die("prctl failed");
	/* kilnd may have gone before PDEATHSIG was armed. */
	if (!ppid || getppid() != (pid_t)atol(ppid))
		_exit(3);
	setrlimit(RLIMIT_CORE, &no_core);
	/* A module's crash ends the process with its own signal, even in a
	 * sanitizer build whose runtime installed handlers for these. */
	for (size_t i = 0; i < sizeof(fatal_signals) / sizeof(fatal_signals[0]); i++)
		signal(fatal_signals[i], SIG_DFL);
	host.ctl = mmap(NULL, sizeof(struct mw_ctl), PROT_READ, MAP_SHARED, MW_FD_CTL, 0);
	if (host.ctl == MAP_FAILED)
		die("cannot map the control page");
	close(MW_FD_CTL);
}

static json_t *describe_actions(void)
{
	json_t *list = json_array();

	for (size_t i = 0; i < host.lib->count; i++) {
		const struct mod_action *a = &host.lib->actions[i];
		json_array_append_new(list, json_pack("{s:s, s:s, s:s?, s:s?}", "name", a->name, "summary",
						      a->summary, "args", a->args_schema, "data",
						      a->data_schema));
	}
	return json_pack("{s:o}", "actions", list);
}

static void load(void)
{
	struct mw_msg m;
	struct mw_hdr h = { .type = MW_HELLO };
	json_t *init, *hello;
	char err[1024], *text;

	if (mw_recv(MW_FD_SOCK, &m, 0) != 1 || m.h.type != MW_INIT)
		die("no init message");
	init = json_loads(m.json, 0, NULL);
	host.out_max = (size_t)json_integer_value(json_object_get(init, "out_max"));
	host.lib = mod_lib_open(MW_FD_MODULE, json_string_value(json_object_get(init, "path")),
				json_object_get(init, "config"), err, sizeof(err));
	close(MW_FD_MODULE);
	mw_msg_free(&m);
	json_decref(init);
	hello = host.lib ? describe_actions() : json_pack("{s:s}", "error", err);
	text = hello ? json_dumps(hello, JSON_COMPACT) : NULL;
	if (!text)
		die("out of memory");
	h.json_len = strlen(text);
	send_or_die(&h, text, NULL);
	free(text);
	json_decref(hello);
	if (!host.lib)
		_exit(0);
}

int modhost_main(int argc, char **argv)
{
	struct mw_msg m;
	int rc;

	confine(argc > 2 ? argv[2] : NULL);
	signal(SIGPIPE, SIG_IGN);
	load();
	for (;;) {
		rc = mw_recv(MW_FD_SOCK, &m, 0);
		if (rc == 0)
			_exit(0); /* kilnd closed the socket: stop */
		if (rc < 0)
			die("bad message from kilnd");
		if (m.h.type == MW_CALL)
			run_call(&m);
		mw_msg_free(&m);
	}
}
