/*
 * Detached jobs (issue 7): job.status, job.wait, job.cancel and job.list,
 * from any connection.  The registry itself is jobs.c; a peer sees the jobs
 * its uid started, root sees all, and a job another uid started is
 * reported not_found rather than forbidden, so handles reveal nothing.
 */
#include <stdio.h>
#include <stdlib.h>

#include "action.h"
#include "config.h"
#include "job.h"
#include "jobs.h"
#include "kiln/error.h"

static struct jobrec *find_or_fail(struct job *job, json_int_t handle)
{
	struct jobrec *r = jobs_find(handle, job_peer(job));

	if (!r)
		job_fail(job, -KILN_E_NOT_FOUND, json_pack("{s:I}", "job", handle),
			 "no detached job %" JSON_INTEGER_FORMAT " (finished records expire after job_retention)",
			 handle);
	return r;
}

static json_int_t handle_arg(json_t *args)
{
	return json_integer_value(json_object_get(args, "job"));
}

static void reply_record(struct job *job, struct jobrec *r)
{
	json_t *d = jobs_record_json(r, true);

	job_succeed(job, d, "job %" JSON_INTEGER_FORMAT " %s",
		    json_integer_value(json_object_get(d, "job")),
		    json_string_value(json_object_get(d, "state")));
}

static void act_status(struct job *job, json_t *args)
{
	json_int_t h = handle_arg(args);
	struct jobrec *r = find_or_fail(job, h);
	if (r)
		reply_record(job, r);
}

/* A job.wait in progress.  Owned by the wait; freed when the wait ends by
 * whichever of the three callbacks comes first. */
struct waitctx {
	struct job *job;
	struct jobs_waiter *w;
	uv_timer_t *timer;
	json_int_t handle;
	double seconds;
};

static void free_timer(uv_handle_t *h)
{
	free(h);
}

static void wait_end(struct waitctx *c)
{
	uv_close((uv_handle_t *)c->timer, free_timer);
	free(c);
}

static void on_wait_done(void *ctx, struct jobrec *r)
{
	struct waitctx *c = ctx;

	reply_record(c->job, r);
	wait_end(c);
}

static void on_wait_timeout(uv_timer_t *t)
{
	struct waitctx *c = t->data;

	jobs_unwait(c->w);
	job_fail(c->job, -KILN_E_TIMEOUT, json_pack("{s:I, s:s, s:f}", "job", c->handle, "state", "running",
						    "timeout", c->seconds),
		 "job %" JSON_INTEGER_FORMAT " still running after %g s", c->handle, c->seconds);
	wait_end(c);
}

static void on_wait_cancel(struct job *job, void *ctx)
{
	struct waitctx *c = ctx;

	jobs_unwait(c->w);
	job_fail(job, -KILN_E_CANCELLED, NULL, "cancelled");
	wait_end(c);
}

static void act_wait(struct job *job, json_t *args)
{
	json_int_t h = handle_arg(args);
	json_t *t = json_object_get(args, "timeout");
	double seconds = t ? json_number_value(t) : job_timeout(job);
	struct jobrec *r;
	struct waitctx *c;

	if (seconds > job_config(job)->max_timeout) {
		job_fail(job, -KILN_E_INVALID_ARGS, json_pack("{s:s}", "path", "args.timeout"),
			 "args.timeout: larger than max_timeout (%g s)", job_config(job)->max_timeout);
		return;
	}
	if (!(r = find_or_fail(job, h)))
		return;
	if (!jobs_running(r)) {
		reply_record(job, r);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c || !(c->timer = malloc(sizeof(*c->timer))) || !(c->w = jobs_wait(r, on_wait_done, c))) {
		if (c)
			free(c->timer);
		free(c);
		job_fail(job, -KILN_E_INTERNAL, NULL, "out of memory");
		return;
	}
	c->job = job;
	c->handle = h;
	c->seconds = seconds;
	uv_timer_init(job_loop(job), c->timer);
	c->timer->data = c;
	uv_timer_start(c->timer, on_wait_timeout, (uint64_t)(seconds * 1000), 0);
	job_on_cancel(job, on_wait_cancel, c);
}

static void act_cancel(struct job *job, json_t *args)
{
	json_int_t h = handle_arg(args);
	struct jobrec *r = find_or_fail(job, h);
	bool cancelled;

	if (!r)
		return;
	cancelled = jobs_cancel(r);
	job_succeed(job, json_pack("{s:I, s:b, s:o}", "job", h, "cancelled", cancelled, "record",
				   jobs_record_json(r, false)),
		    cancelled ? "cancelled job %" JSON_INTEGER_FORMAT : "job %" JSON_INTEGER_FORMAT " was not running",
		    h);
}

static void act_list(struct job *job, json_t *args)
{
	json_t *list = jobs_list(job_peer(job));
	size_t n = json_array_size(list);

	(void)args;
	job_succeed(job, json_pack("{s:o}", "jobs", list), "%zu jobs", n);
}

#define JOB_ARG "\"job\":{\"type\":\"integer\",\"minimum\":1,\"description\":\"handle from data.job\"}"
#define RECORD_SCHEMA                                                                              \
	"{\"type\":\"object\",\"properties\":{\"job\":{\"type\":\"integer\"},\"action\":{\"type\":\"string\"}," \
	"\"job_id\":{\"type\":\"integer\"},\"state\":{\"enum\":[\"running\",\"finished\",\"interrupted\"]}," \
	"\"created\":{\"type\":\"number\"},\"finished\":{\"type\":\"number\"},\"uid\":{\"type\":\"integer\"}," \
	"\"result\":{\"type\":\"string\"},\"progress\":{\"type\":\"object\"},\"reply\":{\"type\":\"object\"}}}"

static const struct action job_actions[] = {
	{ "job.status", "State of a detached job, with its final reply once finished.",
	  "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"job\"],\"properties\":{" JOB_ARG "}}",
	  RECORD_SCHEMA, act_status, 0 },
	{ "job.wait", "Waits for a detached job (args.timeout, else the request's); timeout if still running.",
	  "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"job\"],\"properties\":{" JOB_ARG
	  ",\"timeout\":{\"type\":\"number\",\"exclusiveMinimum\":0,\"description\":\"seconds to wait\"}}}",
	  RECORD_SCHEMA, act_wait, ACTION_OWN_TIMEOUT },
	{ "job.cancel", "Cancels a running detached job; its record then holds error/cancelled.",
	  "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"job\"],\"properties\":{" JOB_ARG "}}",
	  "{\"type\":\"object\",\"properties\":{\"job\":{\"type\":\"integer\"},\"cancelled\":{\"type\":\"boolean\"},"
	  "\"record\":" RECORD_SCHEMA "}}",
	  act_cancel, 0 },
	{ "job.list", "Detached jobs this uid may see (root: all), oldest first.",
	  "{\"type\":\"object\",\"additionalProperties\":false}",
	  "{\"type\":\"object\",\"properties\":{\"jobs\":{\"type\":\"array\",\"items\":" RECORD_SCHEMA "}}}",
	  act_list, 0 },
};

static void job_stats(json_t *into)
{
	json_object_set_new(into, "detached_jobs", json_integer((json_int_t)jobs_count()));
}

const struct action_family family_job = {
	.name = "job",
	.actions = job_actions,
	.count = sizeof(job_actions) / sizeof(job_actions[0]),
	.init = jobs_init,
	.shutdown = jobs_shutdown,
	.stats = job_stats,
	.memory_held = jobs_memory_held,
};
