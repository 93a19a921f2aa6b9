/*
 * Example module "progress": a long call that reports progress and honours
 * cancellation (timeout, `cancel`, disconnect).
 *
 *   example.progress  {"steps": N, "step_ms": T} -> {"steps": N}
 *
 * Each step sleeps T milliseconds, then reports done/total; a cancelled call
 * stops at the next step and fails with `cancelled`.  The module's "config"
 * may set the default T: {"path": ".../progress.so", "config": {"step_ms": 5}}.
 */
#define _POSIX_C_SOURCE 200809L
#include <time.h>

#include <kiln/module.h>

KILN_MODULE_DECLARE();

/* Set once by kiln_module_init, read-only afterwards (calls run in parallel). */
static double default_step_ms = 10;

static int progress(kiln_mod_call *call)
{
	int64_t steps;
	double step_ms = default_step_ms;

	if (kiln_mod_arg_int(call, "steps", &steps))
		return kiln_mod_fail(call, KILN_E_INVALID_ARGS, "steps must be an integer");
	kiln_mod_arg_float(call, "step_ms", &step_ms); /* optional: the default stays */
	for (int64_t i = 0; i < steps; i++) {
		struct timespec ts = { (time_t)(step_ms / 1000), (long)((step_ms - (time_t)(step_ms / 1000) * 1000) * 1e6) };
		if (kiln_mod_cancelled(call))
			return kiln_mod_fail(call, KILN_E_CANCELLED, "cancelled after %lld of %lld steps", (long long)i,
					     (long long)steps);
		nanosleep(&ts, NULL);
		kiln_mod_progress(call, (uint64_t)i + 1, (uint64_t)steps);
	}
	kiln_mod_message(call, "%lld steps", (long long)steps);
	return kiln_mod_result_int(call, "steps", steps);
}

int kiln_module_init(kiln_mod_registry *reg)
{
	static const struct kiln_mod_action act = {
		"example.progress", "Sleeps `steps` times `step_ms` ms, reporting progress; honours cancel.",
		"{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"steps\"],"
		"\"properties\":{\"steps\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":1000000},"
		"\"step_ms\":{\"type\":\"number\",\"minimum\":0,\"maximum\":60000}}}",
		"{\"type\":\"object\",\"properties\":{\"steps\":{\"type\":\"integer\"}}}",
		progress,
	};
	int rc = kiln_mod_config_float(reg, "step_ms", &default_step_ms);

	if (rc == -KILN_E_INVALID_ARGS || (rc == 0 && (default_step_ms < 0 || default_step_ms > 60000)))
		return kiln_mod_init_fail(reg, KILN_E_INVALID_ARGS, "config.step_ms: expected a number in [0, 60000]");
	return kiln_mod_register(reg, &act);
}
