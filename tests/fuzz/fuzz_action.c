/*
 * Every action's argument parser, through the dispatch table: the input
 * names an action and gives its args; dispatch_validate() checks them
 * against the action's schema and, when they pass, the request goes to the
 * in-process daemon (common.h: tiny limits, path_roots only a temporary
 * copy of tests/data, no procedures) so the handler's own checks run too.
 *
 * Input: "<action>\n<args JSON object>".  A leading '+' on the action asks
 * for progress lines and raw reply attachments.  "@DATA@" in the args
 * stands for the data root.  A scene_id of 0..9 names a small scene loaded
 * just before, a corpus named "example" is loaded from corpus/plain first;
 * everything loaded is dropped after each input.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "action.h"
#include "common.h"

static json_int_t next_id = 1;

/* Actions whose handler only waits: validation is all there is to test,
 * and running them would spend the time limit sleeping. */
static bool waits(const char *name)
{
	return strcmp(name, "sleep") == 0 || strcmp(name, "job.wait") == 0;
}

static json_t *call(const char *action, json_t *args, bool extras)
{
	json_int_t id = next_id++;
	json_t *req = json_pack("{s:I, s:s, s:f, s:o}", "job_id", id, "action", action, "timeout", 0.5,
				"args", args ? json_incref(args) : json_object());
	json_t *reply;
	char *line;

	if (extras) {
		json_object_set_new(req, "progress", json_true());
		json_object_set_new(req, "accept_raw", json_true());
	}
	line = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (!line)
		abort();
	reply = fz_call(line);
	free(line);
	if (json_integer_value(json_object_get(reply, "job_id")) != id) {
		fprintf(stderr, "fuzz: reply to job %lld has job_id %lld\n", (long long)id,
			(long long)json_integer_value(json_object_get(reply, "job_id")));
		abort();
	}
	return reply;
}

static bool is_example(const json_t *v)
{
	return json_is_string(v) && strcmp(json_string_value(v), "example") == 0;
}

/*
 * State for the actions that need it: a small scene for scene.* actions
 * naming scene_id 0..9 (the id is replaced by the new scene's), and the
 * plain corpus "example" for corpus and text actions naming it.  Other ids
 * and names still reach the not_found paths.
 */
static void prepare_state(const char *action, json_t *args)
{
	json_t *id = json_object_get(args, "scene_id");

	if (strncmp(action, "scene.", 6) == 0 && json_is_integer(id) && json_integer_value(id) >= 0 &&
	    json_integer_value(id) <= 9) {
		json_t *a = json_loads("{\"scene\": {\"width\": 8, \"height\": 8, \"elements\": ["
				       "{\"type\": \"sphere\", \"center\": [0, 0, -3], \"radius\": 1,"
				       " \"material\": {\"color\": [1, 0, 0]}},"
				       "{\"type\": \"plane\", \"origin\": [0, -1, 0], \"normal\": [0, 1, 0],"
				       " \"material\": {\"color\": [0.5, 0.5, 0.5], \"surface\": \"reflective\","
				       " \"reflectivity\": 0.3}}],"
				       " \"lights\": [{\"type\": \"point\", \"position\": [0, 3, 0],"
				       " \"color\": [1, 1, 1], \"intensity\": 20}]}}", 0, NULL);
		json_t *r = call("scene.load", a, false);
		json_t *sid = json_object_get(json_object_get(r, "data"), "scene_id");
		if (!json_is_integer(sid))
			abort(); /* the fixed scene must load */
		json_object_set(args, "scene_id", sid);
		json_decref(r);
		json_decref(a);
	}
	if ((strncmp(action, "corpus.", 7) == 0 || strncmp(action, "text.", 5) == 0) &&
	    (is_example(json_object_get(args, "name")) || is_example(json_object_get(args, "corpus")))) {
		char *text;
		json_t *a, *r;
		if (asprintf(&text, "{\"name\": \"example\", \"dir\": \"%s/corpus/plain\"}", fz_root()) < 0)
			abort();
		a = json_loads(text, 0, NULL);
		r = call("corpus.load", a, false);
		if (strcmp(json_string_value(json_object_get(r, "result")), "success") != 0)
			abort(); /* the plain corpus must load */
		json_decref(r);
		json_decref(a);
		free(text);
	}
}

/* Drops what the previous input loaded, so each input starts afresh. */
static void reset_state(void)
{
	json_t *r = call("scene.list", NULL, false), *v;
	size_t i;

	json_array_foreach(json_object_get(json_object_get(r, "data"), "scenes"), i, v) {
		json_t *a = json_pack("{s:O}", "scene_id", json_object_get(v, "scene_id"));
		json_decref(call("scene.delete", a, false));
		json_decref(a);
	}
	json_decref(r);
	r = call("corpus.list", NULL, false);
	json_array_foreach(json_object_get(json_object_get(r, "data"), "corpora"), i, v) {
		json_t *a = json_pack("{s:O}", "name", json_object_get(v, "name"));
		json_decref(call("corpus.unload", a, false));
		json_decref(a);
	}
	json_decref(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct action *a;
	json_t *args, *detail = NULL;
	char action[129], msg[512];
	size_t len, alen;
	char *text, *nl;
	bool extras;
	int rc;

	fz_daemon_start();
	text = fz_subst_data(data, size, &len);
	nl = memchr(text, '\n', len);
	if (!nl || (size_t)(nl - text) >= sizeof(action)) {
		free(text);
		return -1;
	}
	alen = (size_t)(nl - text);
	memcpy(action, text, alen);
	action[alen] = '\0';
	extras = action[0] == '+';
	args = json_loadb(nl + 1, len - alen - 1, JSON_REJECT_DUPLICATES, NULL);
	free(text);
	a = dispatch_find(action + extras);
	if (!a || !json_is_object(args)) {
		json_decref(args);
		return -1;
	}
	rc = dispatch_validate(a, args, &detail, msg, sizeof(msg));
	if (rc) {
		if (!json_is_string(json_object_get(detail, "path")))
			abort();
		json_decref(detail);
	} else if (!waits(a->name)) {
		prepare_state(a->name, args);
		json_decref(call(a->name, args, extras));
		reset_state();
		fz_root_restore();
	}
	json_decref(args);
	return 0;
}
