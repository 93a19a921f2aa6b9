/*
 * Core actions: ping, describe, echo, double, vector.length, cancel, stats,
 * and sleep (a cancellable thread-pool job, for trying timeouts, progress
 * and cancellation by hand and in tests).
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "action.h"
#include "config.h"
#include "creds.h"
#include "usage.h"
#include "kiln/error.h"
#include "job.h"

static void act_ping(struct job *job, json_t *args)
{
	json_t *data = json_object();

	(void)args;
	/* Built directly, not with json_pack: ping is the per-request floor. */
	json_object_set_new(data, "version", json_string(KILN_VERSION));
	json_object_set_new(data, "uptime_s", json_real(server_uptime_s()));
	json_object_set_new(data, "pid", json_integer(getpid()));
	job_succeed(job, data, "pong");
}

static void act_describe(struct job *job, json_t *args)
{
	/* Of the configured procedures, only those the caller may run (another
	 * user's restricted procedure, argv included, stays unseen). */
	json_t *d = dispatch_describe(job_peer(job));
	size_t n = json_array_size(json_object_get(d, "actions"));

	(void)args;
	job_succeed(job, d, "%zu actions", n);
}

static void act_echo(struct job *job, json_t *args)
{
	json_t *text = json_object_get(args, "text");

	if (text)
		job_succeed(job, json_pack("{s:O}", "text", text), "%zu bytes", json_string_length(text));
	else
		job_succeed(job, json_pack("{s:O}", "int", json_object_get(args, "int")), "int");
}

static void act_double(struct job *job, json_t *args)
{
	json_int_t x = json_integer_value(json_object_get(args, "x"));
	long long r;

	if (__builtin_mul_overflow((long long)x, 2LL, &r)) {
		job_fail(job, -KILN_E_INVALID_ARGS, json_pack("{s:s}", "path", "args.x"),
			 "args.x: 2 * %" JSON_INTEGER_FORMAT " overflows a signed 64-bit integer", x);
		return;
	}
	job_succeed(job, json_pack("{s:I}", "x", (json_int_t)r), "doubled");
}

static void act_vector_length(struct job *job, json_t *args)
{
	double x = json_number_value(json_object_get(args, "x"));
	double y = json_number_value(json_object_get(args, "y"));
	double z = json_number_value(json_object_get(args, "z"));
	/* hypot scales internally, so large components do not overflow early. */
	double len = hypot(hypot(x, y), z);

	if (!isfinite(len)) {
		job_fail(job, -KILN_E_INVALID_ARGS, NULL, "the length overflows a double");
		return;
	}
	job_succeed(job, json_pack("{s:f}", "length", len), "length");
}

static void act_cancel(struct job *job, json_t *args)
{
	json_int_t target = json_integer_value(json_object_get(args, "target"));
	struct job *t = job_sibling(job, target);

	if (!t) {
		job_fail(job, -KILN_E_NOT_FOUND, json_pack("{s:I}", "target", target),
			 "no request %" JSON_INTEGER_FORMAT " in flight on this connection", target);
		return;
	}
	job_cancel(t, KILN_E_CANCELLED);
	job_succeed(job, json_pack("{s:I, s:b}", "target", target, "cancelled", 1), "cancelled %" JSON_INTEGER_FORMAT,
		    target);
}

static void act_stats(struct job *job, json_t *args)
{
	struct server_figures f;
	json_t *data;

	(void)args;
	server_figures(&f);
	data = json_pack("{s:I, s:I, s:I, s:I, s:f, s:I}", "connections", (json_int_t)f.connections,
			 "requests_served", (json_int_t)f.requests_served, "in_flight", (json_int_t)f.in_flight,
			 "rss_bytes", (json_int_t)server_rss_bytes(), "uptime_s", f.uptime_s, "memory_held_bytes",
			 (json_int_t)dispatch_memory_held());
	dispatch_stats(data);
	/* Admins see who holds what (figures only, never contents). */
	if (creds_is_admin(job_config(job), job_peer(job))) {
		json_t *per_uid = dispatch_stats_per_uid();
		usage_stats_per_uid(per_uid);
		json_object_set_new(data, "per_uid", per_uid);
	}
	job_succeed(job, data, "%u connections, %u in flight", f.connections, f.in_flight);
}

struct sleep_ctx {
	double seconds;
	int steps;
	int done;
};

static void sleep_work(struct job *job, void *arg)
{
	struct sleep_ctx *s = arg;
	double slice = s->seconds / s->steps;

	for (s->done = 0; s->done < s->steps; s->done++) {
		/* Sleep in short naps so cancellation is noticed within 10 ms. */
		for (double left = slice; left > 0 && !job_cancelled(job); left -= 0.01) {
			double nap = left < 0.01 ? left : 0.01;
			struct timespec ts = { 0, (long)(nap * 1e9) };
			nanosleep(&ts, NULL);
		}
		if (job_cancelled(job))
			return;
		job_progress(job, (uint64_t)s->done + 1, (uint64_t)s->steps);
	}
}

static void sleep_done(struct job *job, void *arg, int status)
{
	struct sleep_ctx *s = arg;

	if (status != 0 || job_cancelled(job))
		job_fail(job, -KILN_E_CANCELLED, NULL, "cancelled");
	else
		job_succeed(job, json_pack("{s:f, s:i}", "seconds", s->seconds, "steps", s->steps), "slept");
	free(s);
}

static void act_sleep(struct job *job, json_t *args)
{
	struct sleep_ctx *s = calloc(1, sizeof(*s));
	json_t *steps = json_object_get(args, "steps");

	if (!s) {
		job_fail(job, -KILN_E_INTERNAL, NULL, "out of memory");
		return;
	}
	s->seconds = json_number_value(json_object_get(args, "seconds"));
	s->steps = steps ? (int)json_integer_value(steps) : 1;
	if (job_queue_work(job, sleep_work, sleep_done, s) != 0) {
		free(s);
		job_fail(job, -KILN_E_INTERNAL, NULL, "cannot queue work");
	}
}

static const struct action core_actions[] = {
	{ "ping", "Liveness check: version, uptime and pid.",
	  "{\"type\":\"object\",\"additionalProperties\":false}",
	  "{\"type\":\"object\",\"properties\":{\"version\":{\"type\":\"string\"},"
	  "\"uptime_s\":{\"type\":\"number\"},\"pid\":{\"type\":\"integer\"}}}",
	  act_ping, 0 },
	{ "describe", "Every action with a summary and its args and data schemas.",
	  "{\"type\":\"object\",\"additionalProperties\":false}",
	  "{\"type\":\"object\",\"properties\":{\"version\":{\"type\":\"string\"},"
	  "\"actions\":{\"type\":\"array\"}}}",
	  act_describe, 0 },
	{ "echo", "Returns the text (valid UTF-8) or the 64-bit integer it is given.",
	  "{\"type\":\"object\",\"additionalProperties\":false,"
	  "\"properties\":{\"text\":{\"type\":\"string\"},\"int\":{\"type\":\"integer\"}},"
	  "\"oneOf\":[{\"required\":[\"text\"]},{\"required\":[\"int\"]}]}",
	  "{\"type\":\"object\",\"properties\":{\"text\":{\"type\":\"string\"},\"int\":{\"type\":\"integer\"}}}",
	  act_echo, 0 },
	{ "double", "Twice a signed 64-bit integer; overflow is invalid_args.",
	  "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"x\"],"
	  "\"properties\":{\"x\":{\"type\":\"integer\"}}}",
	  "{\"type\":\"object\",\"properties\":{\"x\":{\"type\":\"integer\"}}}", act_double, 0 },
	{ "vector.length", "Euclidean length of the vector {x, y, z}.",
	  "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"x\",\"y\",\"z\"],"
	  "\"properties\":{\"x\":{\"type\":\"number\"},\"y\":{\"type\":\"number\"},\"z\":{\"type\":\"number\"}}}",
	  "{\"type\":\"object\",\"properties\":{\"length\":{\"type\":\"number\"}}}", act_vector_length, 0 },
	{ "cancel", "Cancels a request in flight on the same connection; it replies error/cancelled.",
	  "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"target\"],"
	  "\"properties\":{\"target\":{\"type\":\"integer\",\"description\":\"job_id to cancel\"}}}",
	  "{\"type\":\"object\",\"properties\":{\"target\":{\"type\":\"integer\"},\"cancelled\":{\"type\":\"boolean\"}}}",
	  act_cancel, 0 },
	{ "stats", "Connections, requests served, requests in flight, resident memory, memory held.",
	  "{\"type\":\"object\",\"additionalProperties\":false}",
	  "{\"type\":\"object\",\"properties\":{\"connections\":{\"type\":\"integer\"},"
	  "\"requests_served\":{\"type\":\"integer\"},\"in_flight\":{\"type\":\"integer\"},"
	  "\"rss_bytes\":{\"type\":\"integer\"},\"memory_held_bytes\":{\"type\":\"integer\"}}}",
	  act_stats, 0 },
	{ "sleep", "Sleeps on the thread pool in `steps` parts (progress, timeout and cancel demo).",
	  "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"seconds\"],"
	  "\"properties\":{\"seconds\":{\"type\":\"number\",\"minimum\":0,\"maximum\":3600},"
	  "\"steps\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":100000}}}",
	  "{\"type\":\"object\",\"properties\":{\"seconds\":{\"type\":\"number\"},\"steps\":{\"type\":\"integer\"}}}",
	  act_sleep, 0 },
};

const struct action_family family_core = {
	.name = "core",
	.actions = core_actions,
	.count = sizeof(core_actions) / sizeof(core_actions[0]),
};
