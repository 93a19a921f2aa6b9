/*
 * The reply encoder's JSON writer (envelope.c, put_json) against jansson's
 * json_dumpb(JSON_COMPACT | JSON_ENCODE_ANY): the same bytes for random
 * nested values holding every kind of string (controls, quotes, NUL,
 * multi-byte UTF-8), integers at the 64-bit edges and reals of every size,
 * read through envelope_write_progress().
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "envelope.h"
#include "outq.h"

static unsigned rnd(unsigned *seed)
{
	*seed = *seed * 1103515245 + 12345;
	return *seed >> 8;
}

static json_t *random_value(unsigned *seed, int depth)
{
	static const char *const pieces[] = { "a", "\"", "\\", "/", "\b", "\f", "\n", "\r", "\t", "\x01", "\x1f",
					      "\x7f", "é", "€", "😀", "\xe2\x80\xa8", " ", "key", "" };
	static const double reals[] = { 0.0, -0.0, 1.0, -1.5, 0.1, 1e-5, 1e-300, 1e300, 123456789012345678.0,
					1e16, 1e17, 5e-324, 0.016890705999999998, 3.141592653589793, 1e21, 1e22 };
	unsigned kind = rnd(seed) % (depth > 4 ? 6 : 8);
	char buf[128];
	size_t n = 0;
	json_t *v;

	switch (kind) {
	case 0:
		return json_integer(rnd(seed) % 2 ? INT64_MIN + (json_int_t)(rnd(seed) % 3)
						  : INT64_MAX - (json_int_t)(rnd(seed) % 3));
	case 1:
		return json_integer((json_int_t)rnd(seed) - (1 << 23));
	case 2:
		if (rnd(seed) % 2)
			return json_real(reals[rnd(seed) % (sizeof(reals) / sizeof(reals[0]))]);
		return json_real(ldexp((double)rnd(seed), (int)(rnd(seed) % 200) - 100) * (rnd(seed) % 2 ? 1 : -1));
	case 3:
		for (unsigned k = rnd(seed) % 6; k > 0; k--) {
			const char *p = pieces[rnd(seed) % (sizeof(pieces) / sizeof(pieces[0]))];
			memcpy(buf + n, p, strlen(p));
			n += strlen(p);
		}
		if (rnd(seed) % 5 == 0)
			buf[n++] = 0; /* an embedded NUL (\u0000) */
		return json_stringn(buf, n);
	case 4:
		return rnd(seed) % 3 ? json_boolean(rnd(seed) % 2) : json_null();
	case 5:
		return json_string("");
	case 6:
		v = json_array();
		for (unsigned k = rnd(seed) % 5; k > 0; k--)
			json_array_append_new(v, random_value(seed, depth + 1));
		return v;
	default:
		v = json_object();
		for (unsigned k = rnd(seed) % 5; k > 0; k--) {
			snprintf(buf, sizeof(buf), "k%u%s", rnd(seed) % 10, pieces[rnd(seed) % 19]);
			json_object_set_new(v, buf, random_value(seed, depth + 1));
		}
		return v;
	}
}

/* What envelope_write_progress() wrote as the value of "progress". */
static char *encoded(json_t *v, size_t *len)
{
	static const char prefix[] = "{\"job_id\":7,\"result\":\"progress\",\"progress\":";
	struct outq q;
	struct outq_chunk *list;
	unsigned count;
	size_t bytes, off = 0;
	char *text;

	outq_init(&q);
	envelope_write_progress(&q, 7, v);
	list = outq_take(&q, &count, &bytes);
	text = malloc(bytes + 1);
	for (struct outq_chunk *ch = list; ch; ch = ch->next) {
		memcpy(text + off, ch->data, ch->len);
		off += ch->len;
	}
	outq_release(&q, list);
	outq_clear(&q);
	ck_assert_uint_gt(bytes, sizeof(prefix) + 1);
	ck_assert(!memcmp(text, prefix, sizeof(prefix) - 1));
	ck_assert(!memcmp(text + bytes - 2, "}\n", 2));
	*len = bytes - (sizeof(prefix) - 1) - 2;
	memmove(text, text + sizeof(prefix) - 1, *len);
	return text;
}

START_TEST(same_bytes_as_jansson)
{
	unsigned seed = 42;

	for (int i = 0; i < 20000; i++) {
		json_t *v = random_value(&seed, 0);
		size_t want_len = json_dumpb(v, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY), got_len;
		char *want = malloc(want_len + 1), *got = encoded(v, &got_len);

		ck_assert_uint_eq(json_dumpb(v, want, want_len, JSON_COMPACT | JSON_ENCODE_ANY), want_len);
		ck_assert_msg(got_len == want_len && !memcmp(got, want, want_len), "jansson %.*s\nkiln    %.*s",
			      (int)want_len, want, (int)got_len, got);
		free(want);
		free(got);
		json_decref(v);
	}
}
END_TEST

static Suite *encode_suite(void)
{
	Suite *s = suite_create("encode");
	TCase *tc = tcase_create("encode");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, same_bytes_as_jansson);
	suite_add_tcase(s, tc);
	return s;
}

KILN_CHECK_MAIN(encode_suite)
