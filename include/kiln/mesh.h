/*
 * Wavefront OBJ loading into a struct kiln_mesh (scene.h).
 */
#ifndef KILN_MESH_H
#define KILN_MESH_H

#include <stddef.h>

#include "kiln/scene.h"

/*
 * Parses the OBJ text `data` (v, vt, vn and f lines; polygons are split
 * into triangle fans; negative indices count from the end; other statements
 * such as o, g, s, usemtl and mtllib are ignored).  At most max_faces
 * triangles (-KILN_E_TOO_LARGE beyond).  On success *mesh is a new mesh the
 * caller owns (kiln_mesh_free, or hand it to kiln_scene_add_mesh).  Errors
 * name the line.
 */
int kiln_obj_parse(const char *data, size_t len, size_t max_faces, struct kiln_mesh **mesh,
		   char *err, size_t errlen);

#endif
