/*
 * Scene documents in both formats (kiln's and the Rust ray tracer's
 * externally tagged one; mixed ones must be refused): settings, elements, lights,
 * materials, inline meshes, OBJ and PNG files named relative to
 * tests/data/scenes.  A document that loads is rendered small; its
 * canonical form (what scene.get returns) must load again and render the
 * same bytes.
 */
#include "scene_util.h"

#include "scene_doc.h"

/* Loads `doc` into a new scene; NULL if it is refused. */
static kiln_scene *load(json_t *doc, json_t *elements, json_t *lights)
{
	const struct kiln_config *cfg = fz_scene_config();
	struct kiln_settings s;
	struct scene_doc_ctx ctx = { .cfg = cfg, .base_dir = FZ_SCENES };
	char err[512];
	int rc;

	kiln_settings_default(&s);
	if (scene_doc_detect(doc, NULL, &ctx.format, err, sizeof(err)) != 0 ||
	    scene_doc_settings(doc, &s, err, sizeof(err)) != 0)
		return NULL;
	if (ctx.format == SCENE_DOC_RUST)
		s.semantics = KILN_SEMANTICS_RUST;
	ctx.scene = kiln_scene_new();
	if (!ctx.scene)
		abort();
	if (kiln_scene_set_settings(ctx.scene, &s, err, sizeof(err)) != 0)
		abort(); /* scene_doc_settings accepted them */
	rc = scene_doc_add_all(&ctx, doc, elements, lights, err, sizeof(err));
	json_decref(ctx.detail);
	if (rc) {
		kiln_scene_free(ctx.scene);
		return NULL;
	}
	return ctx.scene;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *doc = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	json_t *el = json_array(), *li = json_array(), *canon = NULL, *el2 = json_array(), *li2 = json_array();
	kiln_scene *a = NULL, *b = NULL;
	uint8_t img_a[256], img_b[256];

	if (!json_is_object(doc))
		goto out;
	a = load(doc, el, li);
	if (!a)
		goto out;
	canon = scene_doc_settings_json(kiln_scene_settings(a));
	json_object_set(canon, "elements", el);
	json_object_set(canon, "lights", li);
	b = load(canon, el2, li2);
	if (!b || !json_equal(el, el2) || !json_equal(li, li2)) {
		fprintf(stderr, "fuzz: the canonical form of a scene does not load back the same\n");
		abort();
	}
	size_t na = fz_scene_render(a, img_a), nb = fz_scene_render(b, img_b);
	if (na != nb || memcmp(img_a, img_b, na) != 0) {
		fprintf(stderr, "fuzz: the canonical form of a scene renders differently\n");
		abort();
	}
out:
	kiln_scene_free(a);
	kiln_scene_free(b);
	json_decref(doc);
	json_decref(canon);
	json_decref(el);
	json_decref(li);
	json_decref(el2);
	json_decref(li2);
	return 0;
}
