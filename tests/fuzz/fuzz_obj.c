/*
 * Wavefront OBJ meshes: kiln_obj_parse() on arbitrary text; a mesh that
 * parses is added to a scene, which is prepared (BVH) and rendered small.
 */
#include "scene_util.h"

#include "kiln/mesh.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kiln_mesh *mesh = NULL;
	struct kiln_material m = { .color = { 0.8, 0.8, 0.8 }, .texture = -1, .albedo = 0.18 };
	struct kiln_light light = { .kind = KILN_LIGHT_DIRECTIONAL, .vec = { -1, -1, -1 },
				    .color = { 1, 1, 1 }, .intensity = 1 };
	struct kiln_settings s;
	uint8_t img[256];
	kiln_scene *scene;
	char err[512];

	fz_quiet();
	if (kiln_obj_parse((const char *)data, size, 4096, &mesh, err, sizeof(err)) != 0)
		return 0;
	if (!mesh || mesh->nfaces > 4096)
		abort();
	/* Every face index must name an existing vertex, uv or normal. */
	for (size_t i = 0; i < mesh->nfaces; i++) {
		for (int k = 0; k < 3; k++) {
			int32_t v = mesh->faces[9 * i + k], t = mesh->faces[9 * i + 3 + k],
				n = mesh->faces[9 * i + 6 + k];
			if (v < 0 || (size_t)v >= mesh->nvertices || t < -1 || (t >= 0 && (size_t)t >= mesh->nuvs) ||
			    n < -1 || (n >= 0 && (size_t)n >= mesh->nnormals))
				abort();
		}
	}
	scene = kiln_scene_new();
	kiln_settings_default(&s);
	s.camera_position = (kiln_vec3){ 0, 0, 5 };
	s.camera_look_at = (kiln_vec3){ 0, 0, 0 };
	if (kiln_scene_set_settings(scene, &s, err, sizeof(err)) != 0)
		abort();
	kiln_scene_add_light(scene, &light, err, sizeof(err));
	/* The scene takes the mesh over, also when it refuses it. */
	if (kiln_scene_add_mesh(scene, mesh, &m, err, sizeof(err)) == 0)
		fz_scene_render(scene, img);
	kiln_scene_free(scene);
	return 0;
}
