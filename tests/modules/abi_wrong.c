/*
 * Test module built for another ABI version: kilnd must refuse it and name
 * both versions.
 */
#include <kiln/module.h>

__attribute__((visibility("default"))) const uint32_t kiln_module_abi_version = KILN_MODULE_ABI_VERSION + 1;

int kiln_module_init(kiln_mod_registry *reg)
{
	(void)reg;
	return 0;
}
