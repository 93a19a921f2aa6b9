/* Line framing: split, partial and multiple lines, CRLF, limits, raw bytes. */
#include <string.h>

#include "check_main.h"
#include "frame.h"

START_TEST(one_line_in_pieces)
{
	struct frame f;
	char *line;
	size_t len;

	frame_init(&f);
	frame_append(&f, "{\"job_", 6);
	ck_assert_int_eq(frame_next_line(&f, 100, &line, &len), FRAME_NEED_MORE);
	frame_append(&f, "id\":1}", 6);
	ck_assert_int_eq(frame_next_line(&f, 100, &line, &len), FRAME_NEED_MORE);
	frame_append(&f, "\n", 1);
	ck_assert_int_eq(frame_next_line(&f, 100, &line, &len), FRAME_LINE);
	ck_assert_uint_eq(len, 12);
	ck_assert_str_eq(line, "{\"job_id\":1}");
	ck_assert_int_eq(frame_next_line(&f, 100, &line, &len), FRAME_NEED_MORE);
	ck_assert_uint_eq(frame_pending(&f), 0);
	frame_free(&f);
}
END_TEST

START_TEST(several_lines_in_one_read)
{
	struct frame f;
	char *line;
	size_t len;
	const char *in = "a\nbb\r\n\nccc\ndd";

	frame_init(&f);
	frame_append(&f, in, strlen(in));
	ck_assert_int_eq(frame_next_line(&f, 100, &line, &len), FRAME_LINE);
	ck_assert_str_eq(line, "a");
	ck_assert_int_eq(frame_next_line(&f, 100, &line, &len), FRAME_LINE);
	ck_assert_str_eq(line, "bb"); /* CR before LF is dropped */
	ck_assert_int_eq(frame_next_line(&f, 100, &line, &len), FRAME_LINE);
	ck_assert_uint_eq(len, 0);
	ck_assert_int_eq(frame_next_line(&f, 100, &line, &len), FRAME_LINE);
	ck_assert_str_eq(line, "ccc");
	ck_assert_int_eq(frame_next_line(&f, 100, &line, &len), FRAME_NEED_MORE);
	ck_assert_uint_eq(frame_pending(&f), 2);
	frame_free(&f);
}
END_TEST

START_TEST(too_long_without_newline)
{
	struct frame f;
	char *line;
	size_t len;
	char big[300];

	memset(big, 'x', sizeof(big));
	frame_init(&f);
	frame_append(&f, big, 100);
	ck_assert_int_eq(frame_next_line(&f, 128, &line, &len), FRAME_NEED_MORE);
	frame_append(&f, big, 200);
	ck_assert_int_eq(frame_next_line(&f, 128, &line, &len), FRAME_TOO_LONG);
	frame_free(&f);
}
END_TEST

START_TEST(too_long_with_newline)
{
	struct frame f;
	char *line;
	size_t len;
	char big[300];

	memset(big, 'x', sizeof(big));
	big[299] = '\n';
	frame_init(&f);
	frame_append(&f, big, sizeof(big));
	ck_assert_int_eq(frame_next_line(&f, 128, &line, &len), FRAME_TOO_LONG);
	ck_assert_int_eq(frame_next_line(&f, 1000, &line, &len), FRAME_LINE);
	ck_assert_uint_eq(len, 299);
	frame_free(&f);
}
END_TEST

START_TEST(raw_bytes_between_lines)
{
	struct frame f;
	char *line;
	size_t len;
	char att[5];

	frame_init(&f);
	frame_append(&f, "{\"raw\":5}\nab\n\0d{\"next\":1}\n", 26);
	ck_assert_int_eq(frame_next_line(&f, 100, &line, &len), FRAME_LINE);
	ck_assert_uint_eq(frame_take(&f, att, 5), 5);
	ck_assert_int_eq(memcmp(att, "ab\n\0d", 5), 0);
	ck_assert_int_eq(frame_next_line(&f, 100, &line, &len), FRAME_LINE);
	ck_assert_str_eq(line, "{\"next\":1}");
	frame_free(&f);
}
END_TEST

START_TEST(buffer_reuse_after_consumption)
{
	struct frame f;
	char *line;
	size_t len, room;

	frame_init(&f);
	/* A million short lines must not grow the buffer: consumed bytes are reclaimed. */
	for (int i = 0; i < 100000; i++) {
		frame_append(&f, "0123456789\n", 11);
		ck_assert_int_eq(frame_next_line(&f, 100, &line, &len), FRAME_LINE);
	}
	frame_reserve(&f, 1, &room);
	ck_assert_uint_le(f.cap, 65536);
	frame_free(&f);
}
END_TEST

static Suite *frame_suite(void)
{
	Suite *s = suite_create("frame");
	TCase *tc = tcase_create("frame");
	tcase_add_test(tc, one_line_in_pieces);
	tcase_add_test(tc, several_lines_in_one_read);
	tcase_add_test(tc, too_long_without_newline);
	tcase_add_test(tc, too_long_with_newline);
	tcase_add_test(tc, raw_bytes_between_lines);
	tcase_add_test(tc, buffer_reuse_after_consumption);
	suite_add_tcase(s, tc);
	return s;
}

KILN_CHECK_MAIN(frame_suite)
