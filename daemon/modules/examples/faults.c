/*
 * Example module "faults", for the isolation tests: a module that misbehaves
 * on purpose.  Run it with "isolation": "process" only.
 *
 *   example.crash  {"how": "segv" | "abort" | "exit"}  crashes its process
 *   example.spin   {}                                   loops forever, ignoring cancellation
 *   example.pid    {}  -> {"pid"}                       the worker's pid (to see it replaced)
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kiln/module.h>

KILN_MODULE_DECLARE();

static int crash(kiln_mod_call *call)
{
	const char *how = "segv";

	kiln_mod_arg_string(call, "how", &how, NULL);
	if (strcmp(how, "abort") == 0)
		abort();
	if (strcmp(how, "exit") == 0)
		exit(7);
	raise(SIGSEGV);
	return kiln_mod_fail(call, KILN_E_INTERNAL, "still alive after SIGSEGV");
}

static int spin(kiln_mod_call *call)
{
	volatile unsigned long n = 0;

	(void)call;
	for (;;)
		n++;
	return 0;
}

static int pid(kiln_mod_call *call)
{
	return kiln_mod_result_int(call, "pid", (int64_t)getpid());
}

static const struct kiln_mod_action actions[] = {
	{ "example.crash", "Crashes its worker process (SIGSEGV, abort or exit 7).",
	  "{\"type\":\"object\",\"additionalProperties\":false,"
	  "\"properties\":{\"how\":{\"enum\":[\"segv\",\"abort\",\"exit\"]}}}",
	  NULL, crash },
	{ "example.spin", "Loops forever and ignores cancellation.", "{\"type\":\"object\",\"additionalProperties\":false}",
	  NULL, spin },
	{ "example.pid", "The worker process's pid.", "{\"type\":\"object\",\"additionalProperties\":false}",
	  "{\"type\":\"object\",\"properties\":{\"pid\":{\"type\":\"integer\"}}}", pid },
};

int kiln_module_init(kiln_mod_registry *reg)
{
	for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++) {
		int rc = kiln_mod_register(reg, &actions[i]);
		if (rc)
			return rc;
	}
	return 0;
}
