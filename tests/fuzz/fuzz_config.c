/*
 * The configuration file loader: the input is written to a file in a
 * private temporary directory and loaded with dispatch_config_load(), as
 * the daemon loads it (every key's type and range, path_roots resolution
 * relative to the file, then each family's section: procedures).  A configuration that loads must also be describable and
 * self-consistent.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "action.h"
#include "common.h"
#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[128];
	struct kiln_config *cfg;
	char err[512];
	FILE *f;

	if (!path[0]) {
		fz_quiet();
		families_register_builtin();
		snprintf(path, sizeof(path), "%s/kiln.json", fz_tmpdir());
	}
	f = fopen(path, "w");
	if (!f || fwrite(data, 1, size, f) != size)
		abort();
	fclose(f);
	err[0] = '\0';
	cfg = dispatch_config_load(path, err, sizeof(err));
	if (!cfg) {
		if (!err[0])
			abort(); /* a refusal must say why */
		return 0;
	}
	if (cfg->default_timeout > cfg->max_timeout || cfg->path_root_count != json_array_size(cfg->path_roots))
		abort();
	config_unref(cfg);
	return 0;
}
