/*
 * The envelope's fast scanner (daemon/envscan.c) against the jansson path
 * (envelope_parse_json): on the golden examples of proto/examples, on every
 * line of the committed fuzz inputs, on hand cases at every edge the scanner
 * decides on, and on many mutations of them, it must either fall back or give exactly jansson's fields, and never
 * accept a line jansson rejects.  The common requests must take the fast
 * path (else the scanner would be dead code).
 */
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "config.h"
#include "envscan_check.h"
#include "harness.h"

static const struct kiln_config *cfg(void)
{
	static struct kiln_config *c;
	char err[256];

	if (!c)
		c = config_load(NULL, err, sizeof(err));
	ck_assert_ptr_nonnull(c);
	return c;
}

/* Checks one line; returns whether the scanner took it. */
static int check(const char *line, size_t len)
{
	const char *what = "";
	int r = envscan_check(line, len, cfg(), &what);

	ck_assert_msg(r >= 0, "scanner and jansson disagree (%s) on: %.*s", what, (int)(len > 300 ? 300 : len),
		      line);
	return r;
}

static int check_str(const char *line)
{
	return check(line, strlen(line));
}

static unsigned rnd(unsigned *seed)
{
	*seed = *seed * 1103515245 + 12345;
	return *seed >> 8;
}

/* Byte flips, insertions of JSON-significant bytes and deletions. */
static void mutations(const char *line, size_t len, unsigned *seed)
{
	static const char pick[] = "{}[]\":,\\ \t0123456789-+.eEtruefalsn\x80\xc3\xa9\x00\x1f";
	char *buf = malloc(len + 8);

	for (int round = 0; round < 300; round++) {
		size_t n = len, at;

		memcpy(buf, line, len);
		for (unsigned k = 0; k <= rnd(seed) % 3; k++) {
			at = n ? rnd(seed) % n : 0;
			switch (rnd(seed) % 3) {
			case 0:
				if (n)
					buf[at] = pick[rnd(seed) % (sizeof(pick) - 1)];
				break;
			case 1:
				memmove(buf + at + 1, buf + at, n - at);
				buf[at] = pick[rnd(seed) % (sizeof(pick) - 1)];
				n++;
				break;
			default:
				if (n) {
					memmove(buf + at, buf + at + 1, n - at - 1);
					n--;
				}
			}
		}
		check(buf, n);
	}
	free(buf);
}

/* Every "send" of proto/examples (objects compact and spaced, strings as
 * they are), then their mutations. */
START_TEST(golden_examples)
{
	char pattern[512];
	glob_t g;
	unsigned taken = 0, total = 0, seed = 1;

	snprintf(pattern, sizeof(pattern), "%s/../../proto/examples/*.json", harness_data_dir());
	ck_assert_int_eq(glob(pattern, 0, NULL, &g), 0);
	for (size_t f = 0; f < g.gl_pathc; f++) {
		json_t *cases = json_load_file(g.gl_pathv[f], 0, NULL), *c;
		size_t i;

		ck_assert_msg(json_is_array(cases), "%s", g.gl_pathv[f]);
		json_array_foreach(cases, i, c) {
			json_t *send = json_object_get(c, "send");
			char *lines[2] = { NULL, NULL };

			if (json_is_string(send)) {
				lines[0] = strdup(json_string_value(send));
			} else {
				lines[0] = json_dumps(send, JSON_COMPACT);
				lines[1] = json_dumps(send, 0);
			}
			for (int k = 0; k < 2 && lines[k]; k++) {
				taken += (unsigned)check_str(lines[k]);
				total++;
				mutations(lines[k], strlen(lines[k]), &seed);
				free(lines[k]);
			}
		}
		json_decref(cases);
	}
	globfree(&g);
	/* Most golden requests are well formed: the fast path takes them. */
	ck_assert_uint_gt(total, 50);
	ck_assert_uint_gt(taken * 2, total);
}
END_TEST

/* Every line of the committed fuzz inputs of the frame and conn targets
 * (seed corpora and regressions): frame inputs start with two control
 * bytes, conn inputs are the stream itself. */
START_TEST(fuzz_corpus)
{
	static const char *const dirs[] = { "corpus/frame", "corpus/conn", "regressions/frame", "regressions/conn" };
	char pattern[512];
	unsigned files = 0, lines = 0, taken = 0;

	for (size_t d = 0; d < sizeof(dirs) / sizeof(dirs[0]); d++) {
		glob_t g;

		snprintf(pattern, sizeof(pattern), "%s/../fuzz/%s/*", harness_data_dir(), dirs[d]);
		if (glob(pattern, 0, NULL, &g))
			continue;
		for (size_t f = 0; f < g.gl_pathc; f++) {
			FILE *fp = fopen(g.gl_pathv[f], "rb");
			char *buf = malloc(1 << 20), *p, *end, *nl;
			size_t n;

			ck_assert_ptr_nonnull(fp);
			n = fread(buf, 1, 1 << 20, fp);
			fclose(fp);
			p = buf + (strstr(dirs[d], "frame") && n >= 2 ? 2 : 0);
			end = buf + n;
			for (; p < end; p = nl + 1) {
				nl = memchr(p, '\n', (size_t)(end - p));
				if (!nl)
					nl = end;
				taken += (unsigned)check(p, (size_t)(nl - p - (nl > p && nl[-1] == '\r')));
				lines++;
			}
			free(buf);
			files++;
		}
		globfree(&g);
	}
	ck_assert_uint_gt(files, 100);
	ck_assert_uint_gt(taken, 20);
	(void)lines;
}
END_TEST

/* Requests the scanner must take (and agree on). */
START_TEST(taken)
{
	static const char *const lines[] = {
		"{\"job_id\":1,\"action\":\"ping\"}",
		" {\"action\" : \"ping\" ,\t\"job_id\": -0 }\r\n",
		"{\"job_id\":-922337203685477580,\"action\":\"echo\",\"args\":{\"text\":\"h\\u00e9 \\\"q\\\" ]}\"}}",
		"{\"job_id\":2,\"action\":\"a\",\"timeout\":0.5,\"retries\":2,\"host_list\":[\"a\",\"b\"],"
		"\"progress\":true,\"accept_raw\":false,\"detach\":false,\"raw\":3}",
		"{\"job_id\":3,\"action\":\"a\",\"timeout\":2,\"host_list\":[ ],\"args\":{ }}",
		"{\"job_id\":4,\"action\":\"a\",\"timeout\":1e1,\"raw_b64\":\"aGVsbG8=\"}",
		"{\"job_id\":5,\"action\":\"a\",\"timeout\":2.5E-1,\"raw\":0,\"raw_b64\":\"\"}",
		"{\"job_id\":6,\"action\":\"a\",\"args\":{\"x\":[[[{}]]],\"y\":{\"z\":null}}}",
	};

	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		ck_assert_msg(check_str(lines[i]) == 1, "not taken: %s", lines[i]);
}
END_TEST

/* Lines the scanner must leave to jansson (errors, or what it does not
 * convert itself); the comparison holds either way. */
START_TEST(left_to_jansson)
{
	static const char *const lines[] = {
		"",
		"{}",
		"[]",
		"{\"job_id\":1}",
		"{\"action\":\"ping\"}",
		"{\"job_id\":1,\"action\":\"ping\",\"job_id\":2}",
		"{\"job_id\":1,\"action\":\"ping\",\"extra\":1}",
		"{\"job_id\":1.0,\"action\":\"ping\"}",
		"{\"job_id\":01,\"action\":\"ping\"}",
		"{\"job_id\":99999999999999999999,\"action\":\"ping\"}",
		"{\"job_id\":1,\"action\":\"\"}",
		"{\"job_id\":1,\"action\":\"p\\u0069ng\"}",
		"{\"job_id\":1,\"action\":\"caf\xc3\xa9\"}",
		"{\"job_id\":1,\"action\":\"ping\",\"timeout\":0}",
		"{\"job_id\":1,\"action\":\"ping\",\"timeout\":1e999}",
		"{\"job_id\":1,\"action\":\"ping\",\"timeout\":-1}",
		"{\"job_id\":1,\"action\":\"ping\",\"timeout\":1e9}",
		"{\"job_id\":1,\"action\":\"ping\",\"retries\":-1}",
		"{\"job_id\":1,\"action\":\"ping\",\"retries\":1000}",
		"{\"job_id\":1,\"action\":\"ping\",\"host_list\":[1]}",
		"{\"job_id\":1,\"action\":\"ping\",\"host_list\":{}}",
		"{\"job_id\":1,\"action\":\"ping\",\"args\":[]}",
		"{\"job_id\":1,\"action\":\"ping\",\"args\":{]}",
		"{\"job_id\":1,\"action\":\"ping\",\"args\":{\"a\":1,\"a\":2}}",
		"{\"job_id\":1,\"action\":\"ping\",\"args\":{\"a\":99999999999999999999}}",
		"{\"job_id\":1,\"action\":\"ping\",\"args\":{\"a\":\"\xff\"}}",
		"{\"job_id\":1,\"action\":\"ping\",\"progress\":1}",
		"{\"job_id\":1,\"action\":\"ping\",\"raw\":-1}",
		"{\"job_id\":1,\"action\":\"ping\",\"raw\":1,\"raw_b64\":\"aGk=\"}",
		"{\"job_id\":1,\"action\":\"ping\",\"raw_b64\":\"!!\"}",
		"{\"job_id\":1,\"action\":\"ping\"} x",
		"{\"job_id\":1,\"action\":\"ping\",}",
		"{\"job_id\":1 \"action\":\"ping\"}",
		"{\"job_id\":1,\"action\":\"ping\"",
		"{\"job_id\":1,\"action\":\"ping\",\"args\":{\"a\":\"}\"}",
		"{\"job_id\":1,\"action\":\"ping\",\"args\":{\"a\":tru}}",
	};

	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		ck_assert_msg(check_str(lines[i]) == 0, "taken: %s", lines[i]);
}
END_TEST

/* args nested around jansson's depth limit, where the envelope's own level
 * counts for jansson: either path's verdict must be the same. */
START_TEST(deep_args)
{
	static const char prefix[] = "{\"job_id\":1,\"action\":\"a\",\"args\":{\"x\":";
	char *s = malloc(sizeof(prefix) + 2 * 2100 + 8);

	for (size_t d = 1990; d < 2060; d++) {
		size_t n = strlen(prefix);

		memcpy(s, prefix, n);
		memset(s + n, '[', d);
		n += d;
		memset(s + n, ']', d);
		n += d;
		s[n++] = '}';
		s[n++] = '}';
		check(s, n);
	}
	free(s);
}
END_TEST

static Suite *envscan_suite(void)
{
	Suite *s = suite_create("envscan");
	TCase *tc = tcase_create("envscan");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, golden_examples);
	tcase_add_test(tc, fuzz_corpus);
	tcase_add_test(tc, taken);
	tcase_add_test(tc, left_to_jansson);
	tcase_add_test(tc, deep_args);
	suite_add_tcase(s, tc);
	return s;
}

KILN_CHECK_MAIN(envscan_suite)
