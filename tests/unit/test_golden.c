/*
 * Replays every golden example of proto/examples/ through the in-process
 * daemon, with the same matching rules as tests/python/golden.py:
 * "<int>", "<number>", "<string>", "<bool>", "<any>" match by type, objects
 * must have exactly the expected keys unless they hold "<more>": true, and
 * "@DATA@" in requests stands for the tests/data directory.  "<int:NAME>"
 * matches an integer and captures it: a later request's string "@NAME@"
 * stands for it (scene ids are random).
 */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"
#include "harness.h"

static char data_dir[4096];
static json_t *captures; /* NAME -> value, per file */

static int matches(json_t *exp, json_t *act, char *why, size_t len, const char *where)
{
	const char *k;
	json_t *v;
	size_t i;

	if (json_is_string(exp) && json_string_value(exp)[0] == '<') {
		const char *t = json_string_value(exp);
		size_t tl = strlen(t);
		if (strncmp(t, "<int:", 5) == 0 && tl > 6 && t[tl - 1] == '>') {
			char name[64];
			snprintf(name, sizeof(name), "%.*s", (int)(tl - 6), t + 5);
			if (!json_is_integer(act)) {
				snprintf(why, len, "%s: expected an integer", where);
				return 0;
			}
			json_object_set(captures, name, act);
			return 1;
		}
		int ok = strcmp(t, "<any>") == 0 || (strcmp(t, "<int>") == 0 && json_is_integer(act)) ||
			 (strcmp(t, "<number>") == 0 && json_is_number(act)) ||
			 (strcmp(t, "<string>") == 0 && json_is_string(act)) ||
			 (strcmp(t, "<bool>") == 0 && json_is_boolean(act));
		if (strcmp(t, "<any>") && strcmp(t, "<int>") && strcmp(t, "<number>") && strcmp(t, "<string>") &&
		    strcmp(t, "<bool>"))
			ok = json_equal(exp, act);
		if (!ok)
			snprintf(why, len, "%s: expected %s", where, t);
		return ok;
	}
	if (json_is_object(exp)) {
		char sub[256];
		if (!json_is_object(act)) {
			snprintf(why, len, "%s: expected an object", where);
			return 0;
		}
		json_object_foreach(exp, k, v) {
			if (strcmp(k, "<more>") == 0)
				continue;
			snprintf(sub, sizeof(sub), "%s.%s", where, k);
			if (!json_object_get(act, k)) {
				snprintf(why, len, "%s: missing", sub);
				return 0;
			}
			if (!matches(v, json_object_get(act, k), why, len, sub))
				return 0;
		}
		if (!json_is_true(json_object_get(exp, "<more>"))) {
			json_object_foreach(act, k, v) {
				if (!json_object_get(exp, k)) {
					snprintf(why, len, "%s.%s: unexpected key", where, k);
					return 0;
				}
			}
		}
		return 1;
	}
	if (json_is_array(exp)) {
		char sub[256];
		if (!json_is_array(act) || json_array_size(act) != json_array_size(exp)) {
			snprintf(why, len, "%s: array differs", where);
			return 0;
		}
		json_array_foreach(exp, i, v) {
			snprintf(sub, sizeof(sub), "%s[%zu]", where, i);
			if (!matches(v, json_array_get(act, i), why, len, sub))
				return 0;
		}
		return 1;
	}
	if (json_is_real(exp) && json_is_number(act)) {
		double e = json_real_value(exp), a = json_number_value(act);
		if (fabs(e - a) <= 1e-9 * fmax(1.0, fabs(e)))
			return 1;
	}
	if (!json_equal(exp, act)) {
		char *es = json_dumps(exp, JSON_ENCODE_ANY), *as = json_dumps(act, JSON_ENCODE_ANY);
		snprintf(why, len, "%s: expected %.200s, got %.200s", where, es, as);
		free(es);
		free(as);
		return 0;
	}
	return 1;
}

/* Replaces "@DATA@" in every string of v. */
static char *substitute(const char *s)
{
	const char *p = strstr(s, "@DATA@");
	char *out;

	if (!p)
		return strdup(s);
	if (asprintf(&out, "%.*s%s%s", (int)(p - s), s, data_dir, p + 6) < 0)
		abort();
	return out;
}

static char *request_text(json_t *send)
{
	char *text, *sub;

	if (json_is_string(send))
		return substitute(json_string_value(send));
	text = json_dumps(send, JSON_COMPACT);
	sub = substitute(text);
	free(text);
	/* A second "@DATA@" (e.g. two paths) is replaced by repeating. */
	while (strstr(sub, "@DATA@")) {
		char *again = substitute(sub);
		free(sub);
		sub = again;
	}
	/* "@NAME@" strings become the captured values. */
	const char *name;
	json_t *v;
	json_object_foreach(captures, name, v) {
		char token[80], *p, *out;
		snprintf(token, sizeof(token), "\"@%s@\"", name);
		while ((p = strstr(sub, token))) {
			char *val = json_dumps(v, JSON_ENCODE_ANY);
			if (asprintf(&out, "%.*s%s%s", (int)(p - sub), sub, val, p + strlen(token)) < 0)
				abort();
			free(val);
			free(sub);
			sub = out;
		}
	}
	return sub;
}

static int replay_file(const char *path)
{
	json_error_t jerr;
	json_t *cases = json_load_file(path, 0, &jerr), *c;
	size_t i;
	int failed = 0;

	ck_assert_msg(cases != NULL, "%s: %s", path, jerr.text);
	json_array_foreach(cases, i, c) {
		json_t *expect = json_object_get(c, "expect"), *e;
		char *req = request_text(json_object_get(c, "send"));
		int fd = harness_connect();
		size_t j;

		harness_send(fd, req, strlen(req));
		harness_send(fd, "\n", 1);
		json_array_foreach(expect, j, e) {
			json_t *r = harness_recv(fd, 60000);
			char why[512] = "";
			if (!r || !matches(e, r, why, sizeof(why), "reply")) {
				fprintf(stderr, "%s: %s: %s\n", path, json_string_value(json_object_get(c, "name")),
					r ? why : "no reply");
				failed++;
			}
			json_decref(r);
		}
		close(fd);
		free(req);
	}
	json_decref(cases);
	return failed;
}

START_TEST(golden_examples)
{
	char cfg[8192];
	DIR *d;
	struct dirent *de;
	int failed = 0, files = 0;

	ck_assert_ptr_nonnull(realpath(harness_data_dir(), data_dir));
	snprintf(cfg, sizeof(cfg), "{\"path_roots\": [\"%s\"]}", data_dir);
	d = opendir("proto/examples");
	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d))) {
		char path[512];
		size_t n = strlen(de->d_name);
		if (n < 6 || strcmp(de->d_name + n - 5, ".json") != 0)
			continue;
		snprintf(path, sizeof(path), "proto/examples/%s", de->d_name);
		/* A fresh daemon per file, so examples that build state start clean. */
		harness_start(cfg);
		captures = json_object();
		failed += replay_file(path);
		json_decref(captures);
		harness_stop();
		files++;
	}
	closedir(d);
	ck_assert_int_gt(files, 0);
	ck_assert_int_eq(failed, 0);
}
END_TEST

static Suite *golden_suite(void)
{
	Suite *s = suite_create("golden");
	TCase *tc = tcase_create("golden");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, golden_examples);
	suite_add_tcase(s, tc);
	return s;
}

KILN_CHECK_MAIN(golden_suite)
