/*
 * The action table.  Families register here; dispatch, `describe`, argument
 * validation and proto/actions.json all read the same entries.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "action.h"
#include "config.h"
#include "envelope.h"
#include "kiln/error.h"
#include "kiln/utf8.h"
#include "log.h"
#include "schema.h"

#define MAX_FAMILIES 32

/* The registered families, in describe order. */
static const struct action_family *families[MAX_FAMILIES];
static size_t nfamilies;

struct entry {
	const struct action *action;
	json_t *args_schema; /* parsed once at init */
	json_t *data_schema;
};

static struct {
	struct entry *entries; /* sorted by name */
	size_t count;
} dispatch_state;

static void free_index(void);

void dispatch_register(const struct action_family *family)
{
	if (nfamilies == MAX_FAMILIES)
		fatal("too many action families (%d)", MAX_FAMILIES);
	families[nfamilies++] = family;
	/* Rebuilt with the new family's actions on the next lookup. */
	free_index();
}

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->action->name, ((const struct entry *)b)->action->name);
}

static json_t *parse_schema(const struct action *a, const char *text, const char *which)
{
	json_error_t jerr;
	json_t *s;
	char err[256];

	s = json_loads(text ? text : "{\"type\":\"object\"}", 0, &jerr);
	if (!s)
		fatal("action %s: %s schema is not JSON: %s", a->name, which, jerr.text);
	if (schema_check(s, err, sizeof(err)))
		fatal("action %s: %s schema: %s", a->name, which, err);
	return s;
}

/* Builds the index once; every lookup goes through here, so no caller can
 * see the table before it exists. */
static void build_index(void)
{
	size_t n = 0, k = 0;

	if (dispatch_state.entries)
		return;
	for (size_t f = 0; f < nfamilies; f++)
		n += families[f]->count;
	dispatch_state.entries = calloc(n, sizeof(struct entry));
	if (!dispatch_state.entries)
		fatal("out of memory");
	for (size_t f = 0; f < nfamilies; f++) {
		for (size_t i = 0; i < families[f]->count; i++) {
			const struct action *a = &families[f]->actions[i];
			struct entry *e = &dispatch_state.entries[k++];
			e->action = a;
			e->args_schema = parse_schema(a, a->args_schema, "args");
			e->data_schema = parse_schema(a, a->data_schema, "data");
		}
	}
	dispatch_state.count = n;
	qsort(dispatch_state.entries, n, sizeof(struct entry), cmp_entry);
	for (size_t i = 1; i < n; i++)
		if (strcmp(dispatch_state.entries[i].action->name, dispatch_state.entries[i - 1].action->name) == 0)
			fatal("action %s is defined twice", dispatch_state.entries[i].action->name);
}

static const struct entry *find_entry(const char *name)
{
	struct action key = { .name = name };
	struct entry probe = { .action = &key };

	build_index();
	return bsearch(&probe, dispatch_state.entries, dispatch_state.count, sizeof(struct entry), cmp_entry);
}

const struct action *dispatch_find(const char *name)
{
	const struct entry *e = find_entry(name);
	return e ? e->action : NULL;
}

int dispatch_validate(const struct action *a, json_t *args, json_t **detail, char *msg, size_t msglen)
{
	const struct entry *e = find_entry(a->name);
	char *path = NULL;
	const char *p;

	if (!e || schema_validate(e->args_schema, args, "args", &path, msg, msglen) == 0)
		return 0;
	/* The path quotes client keys cut to a byte limit, which may split a
	 * UTF-8 sequence; jansson would refuse it and drop the whole detail. */
	p = path ? path : "args";
	*detail = json_pack("{s:s%}", "path", p, kiln_utf8_valid_prefix((const uint8_t *)p, strlen(p)));
	free(path);
	return -KILN_E_INVALID_ARGS;
}

/* A dynamic action of some family (a configured procedure), checked by
 * that family's prepare hook; 1 if none has `name`. */
static int prepare_dynamic(struct job *job, const struct kiln_config *cfg, const char *name,
			   const struct action **action, json_t **detail, char *msg, size_t msglen)
{
	for (size_t f = 0; f < nfamilies; f++) {
		const struct action_family *fam = families[f];
		if (!fam->lookup || !(*action = fam->lookup(cfg, name)))
			continue;
		return fam->prepare ? fam->prepare(job, detail, msg, msglen) : 0;
	}
	return 1;
}

int dispatch_prepare(struct job *job, const struct kiln_config *cfg, const struct request *req,
		     const struct action **action, json_t **detail, char *msg, size_t msglen)
{
	const char *name = req->action;
	const struct entry *e = find_entry(name);
	int rc;

	*action = NULL;
	if (!e && (rc = prepare_dynamic(job, cfg, name, action, detail, msg, msglen)) <= 0)
		return rc;
	if (!e) {
		snprintf(msg, msglen, "unknown action \"%.100s\" (see the describe action)", name);
		*detail = json_pack("{s:s}", "action", name);
		return -KILN_E_UNKNOWN_ACTION;
	}
	*action = e->action;
	if (!(e->action->flags & ACTION_HOSTS) && json_array_size(req->host_list) > 0) {
		snprintf(msg, msglen, "host_list: %s is a local action and takes no hosts", e->action->name);
		*detail = json_pack("{s:s}", "key", "host_list");
		return -KILN_E_INVALID_REQUEST;
	}
	return dispatch_validate(e->action, req->args, detail, msg, msglen);
}

struct kiln_config *dispatch_config_load(const char *path, char *err, size_t errlen)
{
	struct kiln_config *cfg = config_load(path, err, errlen);

	build_index();
	for (size_t f = 0; cfg && f < nfamilies; f++) {
		if (families[f]->check_config && families[f]->check_config(cfg, err, errlen) != 0) {
			config_unref(cfg);
			cfg = NULL;
		}
	}
	return cfg;
}

int dispatch_init(const struct kiln_config *cfg, char *err, size_t errlen)
{
	build_index();
	for (size_t f = 0; f < nfamilies; f++) {
		int rc;
		if (!families[f]->init)
			continue;
		rc = families[f]->init(cfg);
		if (rc) {
			snprintf(err, errlen, "%s: initialisation failed: %s", families[f]->name, kiln_err_name(rc));
			return rc;
		}
	}
	return 0;
}

void dispatch_reconfigure(const struct kiln_config *cfg)
{
	for (size_t f = 0; f < nfamilies; f++)
		if (families[f]->reconfigure)
			families[f]->reconfigure(cfg);
}

void dispatch_stop(void)
{
	for (size_t f = 0; f < nfamilies; f++)
		if (families[f]->stop)
			families[f]->stop();
}

void dispatch_release(void)
{
	for (size_t f = 0; f < nfamilies; f++)
		if (families[f]->release)
			families[f]->release();
}

void dispatch_shutdown(void)
{
	for (size_t f = nfamilies; f-- > 0;)
		if (families[f]->shutdown)
			families[f]->shutdown();
	free_index();
	nfamilies = 0;
}

static void free_index(void)
{
	for (size_t i = 0; i < dispatch_state.count; i++) {
		json_decref(dispatch_state.entries[i].args_schema);
		json_decref(dispatch_state.entries[i].data_schema);
	}
	free(dispatch_state.entries);
	dispatch_state.entries = NULL;
	dispatch_state.count = 0;
}

void dispatch_stats(json_t *into)
{
	for (size_t f = 0; f < nfamilies; f++)
		if (families[f]->stats)
			families[f]->stats(into);
}

size_t dispatch_reply_bound(const struct action *action, const struct kiln_config *cfg, json_t *args)
{
	for (size_t f = 0; f < nfamilies; f++) {
		const struct action_family *fam = families[f];
		if (fam->actions && action >= fam->actions && action < fam->actions + fam->count)
			return fam->reply_bound ? fam->reply_bound(action, cfg, args) : 0;
	}
	return 0;
}

json_t *dispatch_stats_per_uid(void)
{
	json_t *per_uid = json_object();

	for (size_t f = 0; f < nfamilies; f++)
		if (families[f]->stats_per_uid)
			families[f]->stats_per_uid(per_uid);
	return per_uid;
}

json_t *dispatch_uid_figures(json_t *per_uid, unsigned uid)
{
	char key[16];
	json_t *o;

	snprintf(key, sizeof(key), "%u", uid);
	o = json_object_get(per_uid, key);
	if (!o) {
		o = json_object();
		json_object_set_new(per_uid, key, o);
	}
	return o;
}

size_t dispatch_memory_held(void)
{
	size_t n = 0;
	for (size_t f = 0; f < nfamilies; f++)
		if (families[f]->memory_held)
			n += families[f]->memory_held();
	return n;
}

json_t *dispatch_describe(const struct kiln_peer *peer)
{
	json_t *list = json_array();

	/* In family order, so related actions stay together. */
	for (size_t f = 0; f < nfamilies; f++) {
		for (size_t i = 0; i < families[f]->count; i++) {
			const struct action *a = &families[f]->actions[i];
			const struct entry *e = find_entry(a->name);
			json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:O, s:O, s:b}", "name", a->name,
							      "family", families[f]->name, "summary",
							      a->summary, "args", e->args_schema, "data",
							      e->data_schema, "hosts",
							      (a->flags & ACTION_HOSTS) != 0));
		}
	}
	for (size_t f = 0; f < nfamilies; f++)
		if (families[f]->describe)
			families[f]->describe(config_current(), peer, list);
	return json_pack("{s:s, s:o}", "version", KILN_VERSION, "actions", list);
}
