/*
 * Host procedures: the checks (act_proc.h).  The `procedures` section of a
 * configuration being loaded (the family's check_config hook), and a
 * request for a procedure before it runs (its prepare hook).  Pure checks:
 * no state of their own.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "act_proc.h"
#include "action.h"
#include "config.h"
#include "creds.h"
#include "job.h"
#include "kiln/error.h"

#define MAX_ARG_BYTES 4096

/* --- Configuration -------------------------------------------------------- */

static const char *const proc_keys[] = {
	"argv", "description", "max_parallel", "env", "success_exit_codes", "allowed_uids",
	"allowed_gids", "kill_grace", "retry_backoff", "tail_bytes",
};

static bool valid_proc_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 128)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		      *s == '_' || *s == '-' || *s == '.'))
			return false;
	return true;
}

static bool valid_env_name(const char *s)
{
	if (!*s || (*s >= '0' && *s <= '9'))
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		      *s == '_'))
			return false;
	return true;
}

static int check_int_array(const json_t *v, json_int_t lo, json_int_t hi)
{
	size_t i;
	json_t *x;

	if (!json_is_array(v))
		return -1;
	json_array_foreach(v, i, x) {
		if (!json_is_integer(x) || json_integer_value(x) < lo || json_integer_value(x) > hi)
			return -1;
	}
	return 0;
}

static int check_number(const json_t *v, double lo, double hi)
{
	return json_is_number(v) && json_number_value(v) >= lo && json_number_value(v) <= hi ? 0 : -1;
}

static int validate_one(const char *name, const json_t *p, char *err, size_t errlen)
{
	const char *key;
	json_t *v;
	size_t i;

	if (!valid_proc_name(name))
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "config key \"procedures.%s\": a procedure name is 1-128 letters, digits, '_', '-' or '.'", name);
	if (!json_is_object(p))
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "config key \"procedures.%s\": expected an object", name);
	json_object_foreach((json_t *)p, key, v) {
		bool known = key[0] == '#';
		for (i = 0; i < sizeof(proc_keys) / sizeof(proc_keys[0]) && !known; i++)
			known = strcmp(key, proc_keys[i]) == 0;
		if (!known)
			return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "config key \"procedures.%s.%s\": unknown key", name, key);
	}
	v = json_object_get(p, "argv");
	if (!json_is_array(v) || json_array_size(v) == 0)
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "config key \"procedures.%s.argv\": expected a non-empty array of strings", name);
	for (i = 0; i < json_array_size(v); i++) {
		json_t *a = json_array_get(v, i);
		if (!json_is_string(a) || json_string_length(a) > MAX_ARG_BYTES ||
		    strlen(json_string_value(a)) != json_string_length(a) || (i == 0 && !json_string_length(a)))
			return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "config key \"procedures.%s.argv\": expected a non-empty array of strings", name);
	}
	if ((v = json_object_get(p, "description")) && !json_is_string(v))
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "config key \"procedures.%s.description\": expected a string", name);
	if ((v = json_object_get(p, "max_parallel")) &&
	    (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 10000))
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "config key \"procedures.%s.max_parallel\": expected an integer in [1, 10000]", name);
	if ((v = json_object_get(p, "env"))) {
		json_t *x;
		if (!json_is_object(v))
			return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "config key \"procedures.%s.env\": expected an object of strings", name);
		json_object_foreach(v, key, x) {
			if (!valid_env_name(key) || !json_is_string(x) ||
			    strlen(json_string_value(x)) != json_string_length(x))
				return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "config key \"procedures.%s.env\": expected NAME: \"string\" pairs", name);
		}
	}
	if ((v = json_object_get(p, "success_exit_codes")) &&
	    (check_int_array(v, 0, 255) || json_array_size(v) == 0))
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "config key \"procedures.%s.success_exit_codes\": expected a non-empty array of integers 0-255", name);
	if ((v = json_object_get(p, "allowed_uids")) && check_int_array(v, 0, 4294967294LL))
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "config key \"procedures.%s.allowed_uids\": expected an array of uids", name);
	if ((v = json_object_get(p, "allowed_gids")) && check_int_array(v, 0, 4294967294LL))
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "config key \"procedures.%s.allowed_gids\": expected an array of gids", name);
	if ((v = json_object_get(p, "kill_grace")) && check_number(v, 0, 3600))
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "config key \"procedures.%s.kill_grace\": expected seconds in [0, 3600]", name);
	if ((v = json_object_get(p, "retry_backoff")) && check_number(v, 0, 60))
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "config key \"procedures.%s.retry_backoff\": expected seconds in [0, 60]", name);
	if ((v = json_object_get(p, "tail_bytes")) &&
	    (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > MAX_TAIL_BYTES))
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "config key \"procedures.%s.tail_bytes\": expected an integer in [0, 1048576]", name);
	/* Names of built-in actions are taken (the table exists: it is built
	 * on first use). */
	if (dispatch_find(name))
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "config key \"procedures.%s\": is the name of a built-in action", name);
	return 0;
}

int proc_check_config(const struct kiln_config *cfg, char *err, size_t errlen)
{
	const char *name;
	json_t *p;

	if (!cfg->procedures)
		return 0;
	json_object_foreach(cfg->procedures, name, p) {
		if (name[0] == '#')
			continue;
		if (validate_one(name, p, err, errlen))
			return -1;
	}
	return 0;
}


const json_t *proc_get(const struct kiln_config *cfg, const char *name)
{
	if (!cfg || !name || name[0] == '#')
		return NULL;
	return json_object_get(cfg->procedures, name);
}


/* --- Request checks ------------------------------------------------------- */

/* A hostname (RFC 1123 labels: letters, digits, '-', not at either end of a
 * label) or an IPv4/IPv6 literal.  A leading '-' can never pass, so a host
 * cannot smuggle an option into the child's argv. */
static bool valid_host(const char *s, size_t len)
{
	unsigned char addr[sizeof(struct in6_addr)];
	const char *p = s;

	if (len == 0 || len > 253 || strlen(s) != len)
		return false;
	if (inet_pton(AF_INET, s, addr) == 1 || inet_pton(AF_INET6, s, addr) == 1)
		return true;
	while (*p) {
		const char *start = p;
		while (*p && *p != '.') {
			char c = *p;
			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			      c == '-'))
				return false;
			p++;
		}
		if (p == start || p - start > 63 || start[0] == '-' || p[-1] == '-')
			return false;
		if (*p == '.' && !*++p)
			return false;
	}
	return true;
}

static bool id_listed(const json_t *list, json_int_t id)
{
	size_t i;
	json_t *v;

	json_array_foreach(list, i, v) {
		if (json_integer_value(v) == id)
			return true;
	}
	return false;
}

/* allowed_uids / allowed_gids (empty: anyone); supplementary groups count. */
bool proc_peer_may_run(const json_t *p, const struct kiln_peer *peer)
{
	const json_t *uids = json_object_get(p, "allowed_uids");
	const json_t *gids = json_object_get(p, "allowed_gids");
	size_t i;
	json_t *g;

	if (json_array_size(uids) == 0 && json_array_size(gids) == 0)
		return true;
	if (id_listed(uids, (json_int_t)peer->uid))
		return true;
	json_array_foreach(gids, i, g) {
		if (creds_peer_in_group(peer, (gid_t)json_integer_value(g)))
			return true;
	}
	return false;
}

int proc_prepare(struct job *job, json_t **detail, char *msg, size_t msglen)
{
	const json_t *p = proc_get(job_config(job), job_action(job));
	json_t *hosts = job_host_list(job), *h, *seen;
	size_t i;
	int rc = 0;

	if (!proc_peer_may_run(p, job_peer(job))) {
		snprintf(msg, msglen, "uid %u may not run procedure %s", (unsigned)job_peer(job)->uid,
			 job_action(job));
		*detail = json_pack("{s:s, s:I}", "procedure", job_action(job), "uid",
				    (json_int_t)job_peer(job)->uid);
		return -KILN_E_FORBIDDEN;
	}
	if (json_object_size(job_args(job)) > 0) {
		snprintf(msg, msglen, "args: procedure %s takes no args", job_action(job));
		*detail = json_pack("{s:s}", "path", "args");
		return -KILN_E_INVALID_ARGS;
	}
	if (json_array_size(hosts) == 0) {
		snprintf(msg, msglen, "host_list: procedure %s needs at least one host", job_action(job));
		*detail = json_pack("{s:s}", "path", "host_list");
		return -KILN_E_INVALID_ARGS;
	}
	seen = json_object();
	json_array_foreach(hosts, i, h) {
		const char *name = json_string_value(h);
		char path[48];
		snprintf(path, sizeof(path), "host_list[%zu]", i);
		if (!valid_host(name, json_string_length(h))) {
			snprintf(msg, msglen, "%s: \"%.200s\" is not a hostname or IP address", path, name);
			*detail = json_pack("{s:s, s:s%}", "path", path, "host", name, json_string_length(h));
			rc = -KILN_E_INVALID_ARGS;
			break;
		}
		if (json_object_get(seen, name)) {
			snprintf(msg, msglen, "%s: duplicate host \"%s\"", path, name);
			*detail = json_pack("{s:s, s:s}", "path", path, "host", name);
			rc = -KILN_E_INVALID_ARGS;
			break;
		}
		json_object_set_new(seen, name, json_true());
	}
	json_decref(seen);
	return rc;
}

