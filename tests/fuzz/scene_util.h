/*
 * Helpers shared by fuzz_scene.c and fuzz_obj.c: a configuration whose
 * path_roots is tests/data/scenes (read only: scene documents only read
 * textures and OBJ files) and a tiny render of a scene.
 */
#ifndef KILN_FUZZ_SCENE_UTIL_H
#define KILN_FUZZ_SCENE_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "config.h"
#include "kiln/render.h"
#include "kiln/scene.h"

#define FZ_SCENES KILN_FUZZ_DATA "/scenes"

static inline const struct kiln_config *fz_scene_config(void)
{
	static struct kiln_config *cfg;
	char path[128], err[512];
	FILE *f;

	if (cfg)
		return cfg;
	fz_quiet();
	snprintf(path, sizeof(path), "%s/scene.json", fz_tmpdir());
	f = fopen(path, "w");
	if (!f)
		abort();
	fprintf(f, "{\"path_roots\": [\"%s\"], \"max_file_bytes\": 1048576, \"scene_max_pixels\": 1024,"
		   " \"scene_max_elements\": 256, \"scene_max_texture_pixels\": 65536}", FZ_SCENES);
	fclose(f);
	cfg = config_load(path, err, sizeof(err));
	if (!cfg) {
		fprintf(stderr, "fuzz: %s\n", err);
		abort();
	}
	return cfg;
}

/* Prepares the scene and renders at most 8x8 pixels, 2 samples, depth 4
 * into `rgba` (256 bytes); returns the bytes written, 0 if it did not render. */
static inline size_t fz_scene_render(kiln_scene *scene, uint8_t rgba[256])
{
	struct kiln_settings s = *kiln_scene_settings(scene);
	struct kiln_region r;
	uint64_t rays = 0;
	char err[256];

	s.width = s.width > 8 ? 8 : s.width;
	s.height = s.height > 8 ? 8 : s.height;
	s.samples = s.samples > 2 ? 2 : s.samples;
	s.max_recursion_depth = s.max_recursion_depth > 4 ? 4 : s.max_recursion_depth;
	if (kiln_scene_set_settings(scene, &s, err, sizeof(err)) != 0)
		return 0;
	if (kiln_scene_prepare(scene, NULL, err, sizeof(err)) != 0)
		abort(); /* only cancellation or no memory may fail */
	r = kiln_region_full(scene);
	if (kiln_render(scene, &r, rgba, NULL, &rays, err, sizeof(err)) != 0)
		abort();
	return (size_t)r.width * r.height * 4;
}

#endif
