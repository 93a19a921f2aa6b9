/*
 * Test module whose action has an invalid args schema: kilnd refuses it.
 */
#include <kiln/module.h>

KILN_MODULE_DECLARE();

static int noop(kiln_mod_call *call)
{
	(void)call;
	return 0;
}

int kiln_module_init(kiln_mod_registry *reg)
{
	static const struct kiln_mod_action act = { "badschema.noop", "no-op", "{\"type\":\"object\",\"patternProperties\":{}}", NULL, noop };
	return kiln_mod_register(reg, &act);
}
