/*
 * The built-in action families, in describe order.  This list is the only
 * place that names them all: dispatch.c knows families only as registered.
 */
#include "action.h"

void families_register_builtin(void)
{
	static const struct action_family *const builtin[] = {
		&family_core, &family_corpus, &family_pi, &family_text,
		&family_scene, &family_proc, &family_job,
	};

	for (size_t i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++)
		dispatch_register(builtin[i]);
}
