/* The output queue and the reply encoder writing into it: order, spare
 * chunk reuse, zero-copy attachments, and reply lines that read back. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "envelope.h"
#include "kiln/error.h"
#include "outq.h"

static unsigned freed;

static void count_free(void *p)
{
	freed++;
	free(p);
}

/* Everything queued, concatenated (the chunks are released). */
static char *drain(struct outq *q, size_t *len, unsigned *count)
{
	struct outq_chunk *list = outq_take(q, count, len);
	char *s = malloc(*len + 1), *p = s;

	for (struct outq_chunk *ch = list; ch; ch = ch->next) {
		memcpy(p, ch->data, ch->len);
		p += ch->len;
	}
	*p = '\0';
	ck_assert_uint_eq((size_t)(p - s), *len);
	outq_release(q, list);
	return s;
}

START_TEST(text_in_order_one_chunk)
{
	struct outq q;
	size_t len;
	unsigned count;
	char *s, *at;

	outq_init(&q);
	outq_append(&q, "ab", 2);
	memcpy(outq_reserve(&q, 10), "cdefghij", 8);
	outq_commit(&q, 3); /* only "cde" */
	ck_assert_uint_eq(outq_room(&q, &at), OUTQ_CHUNK - 5);
	memcpy(at, "XY", 2);
	outq_commit(&q, 2);
	ck_assert_uint_eq(q.queued, 7);
	s = drain(&q, &len, &count);
	ck_assert_str_eq(s, "abcdeXY");
	ck_assert_uint_eq(count, 1);
	ck_assert_uint_eq(q.queued, 0);
	ck_assert_ptr_null(q.head);
	free(s);
	outq_clear(&q);
}
END_TEST

START_TEST(spare_chunk_reused)
{
	struct outq q;
	struct outq_chunk *list, *first;
	unsigned count;
	size_t len;

	outq_init(&q);
	outq_append(&q, "x", 1);
	first = q.head;
	list = outq_take(&q, &count, &len);
	outq_release(&q, list);
	ck_assert_ptr_eq(q.spare, first);
	outq_append(&q, "y", 1);
	ck_assert_ptr_eq(q.head, first); /* no allocation for the next batch */
	ck_assert_ptr_null(q.spare);
	outq_clear(&q);
}
END_TEST

START_TEST(attachment_is_its_own_chunk)
{
	struct outq q;
	unsigned char *a = malloc(3);
	size_t len;
	unsigned count;
	char *s;

	freed = 0;
	memcpy(a, "RAW", 3);
	outq_init(&q);
	outq_append(&q, "{}", 2);
	outq_attach(&q, a, 3, count_free);
	ck_assert_ptr_eq(q.tail->data, (char *)a); /* not copied */
	outq_append(&q, "\n", 1);                  /* text after it starts a new chunk */
	ck_assert_uint_eq(q.queued, 6);
	s = drain(&q, &len, &count);
	ck_assert_str_eq(s, "{}RAW\n");
	ck_assert_uint_eq(count, 3);
	ck_assert_uint_eq(freed, 1);
	free(s);
	outq_clear(&q);
}
END_TEST

START_TEST(clear_releases_attachments)
{
	struct outq q;

	freed = 0;
	outq_init(&q);
	outq_attach(&q, malloc(8), 8, count_free);
	outq_append(&q, "z", 1);
	outq_clear(&q);
	ck_assert_uint_eq(freed, 1);
	ck_assert_uint_eq(q.queued, 0);
}
END_TEST

START_TEST(large_reservation_gets_its_own_size)
{
	struct outq q;
	size_t n = 3 * OUTQ_CHUNK;
	char *p;

	outq_init(&q);
	p = outq_reserve(&q, n);
	memset(p, 'a', n);
	outq_commit(&q, n);
	ck_assert_uint_ge(q.tail->cap, n);
	ck_assert_uint_eq(q.queued, n);
	outq_clear(&q);
}
END_TEST

static json_t *read_back(struct outq *q)
{
	size_t len;
	unsigned count;
	char *s = drain(q, &len, &count);
	json_t *v;

	ck_assert_uint_gt(len, 0);
	ck_assert_int_eq(s[len - 1], '\n');
	ck_assert_ptr_null(memchr(s, '\n', len - 1));
	v = json_loadb(s, len, 0, NULL);
	ck_assert_ptr_nonnull(v);
	free(s);
	return v;
}

START_TEST(reply_line_reads_back)
{
	struct outq q;
	json_int_t id = 42;
	json_t *data = json_pack("{s:s}", "k", "v"), *v;
	/* A message cut inside a UTF-8 sequence, with a quote and a control byte. */
	struct reply r = { "success", "caf\xc3 \"q\"\x01", NULL, data, NULL };

	outq_init(&q);
	envelope_write_reply(&q, &id, &r, NULL, 0, NULL, false);
	v = read_back(&q);
	ck_assert_int_eq(json_integer_value(json_object_get(v, "job_id")), 42);
	ck_assert_str_eq(json_string_value(json_object_get(v, "result")), "success");
	ck_assert_str_eq(json_string_value(json_object_get(v, "message")), "caf\xef\xbf\xbd \"q\"\x01");
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(v, "data"), "k")), "v");
	ck_assert_int_eq(json_array_size(json_object_get(v, "failed_hosts")), 0);
	ck_assert_ptr_null(json_object_get(v, "error"));
	json_decref(v);
	json_decref(data);
	outq_clear(&q);
}
END_TEST

START_TEST(error_and_progress_lines)
{
	struct outq q;
	json_t *v, *p = json_pack("{s:i, s:i}", "done", 1, "total", 2);

	outq_init(&q);
	envelope_write_error(&q, NULL, KILN_E_BUSY, json_pack("{s:s}", "x", "y"), "busy now");
	v = read_back(&q);
	ck_assert(json_is_null(json_object_get(v, "job_id")));
	ck_assert_str_eq(json_string_value(json_object_get(v, "result")), "error");
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(v, "error"), "code")), "busy");
	json_decref(v);
	envelope_write_progress(&q, 7, p);
	v = read_back(&q);
	ck_assert_str_eq(json_string_value(json_object_get(v, "result")), "progress");
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(v, "progress"), "total")), 2);
	json_decref(v);
	json_decref(p);
	outq_clear(&q);
}
END_TEST

START_TEST(attachment_raw_or_base64)
{
	struct outq q;
	json_int_t id = 1;
	struct reply r = { "success", "ok", NULL, NULL, NULL };
	unsigned char *a = malloc(3), *b = malloc(3);
	size_t len;
	unsigned count;
	char *s;
	json_t *v;

	freed = 0;
	memcpy(a, "abc", 3);
	memcpy(b, "abc", 3);
	outq_init(&q);
	envelope_write_reply(&q, &id, &r, a, 3, count_free, true);
	s = drain(&q, &len, &count);
	ck_assert_str_eq(s + len - 4, "\nabc"); /* the bytes follow the line */
	ck_assert_ptr_nonnull(strstr(s, "\"raw\":3}"));
	free(s);
	v = envelope_reply_json(&id, &r, b, 3, count_free);
	ck_assert_str_eq(json_string_value(json_object_get(v, "raw_b64")), "YWJj");
	ck_assert_uint_eq(freed, 2);
	json_decref(v);
	outq_clear(&q);
}
END_TEST

static Suite *outq_suite(void)
{
	Suite *s = suite_create("outq");
	TCase *tc = tcase_create("outq");
	tcase_add_test(tc, text_in_order_one_chunk);
	tcase_add_test(tc, spare_chunk_reused);
	tcase_add_test(tc, attachment_is_its_own_chunk);
	tcase_add_test(tc, clear_releases_attachments);
	tcase_add_test(tc, large_reservation_gets_its_own_size);
	tcase_add_test(tc, reply_line_reads_back);
	tcase_add_test(tc, error_and_progress_lines);
	tcase_add_test(tc, attachment_raw_or_base64);
	suite_add_tcase(s, tc);
	return s;
}

KILN_CHECK_MAIN(outq_suite)
