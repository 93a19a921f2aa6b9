/*
 * The envelope and every core action, through an in-process daemon: every
 * error code the core can produce, limits, attachments, progress, timeout,
 * cancel and disconnect.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "action.h"
#include "check_main.h"
#include "envelope.h"
#include "harness.h"
#include "job.h"
#include "kiln/error.h"
#include "kiln/utf8.h"
#include "log.h"

static void setup(void)
{
	harness_start("{\"max_line_bytes\": 4096, \"max_attachment_bytes\": 100000, "
		      "\"max_inflight_per_conn\": 4}");
}

static void teardown(void)
{
	harness_stop();
}

static json_t *call(const char *line)
{
	json_t *r = harness_call(line);
	ck_assert_ptr_nonnull(r);
	return r;
}

static void expect_error(const char *line, const char *code)
{
	json_t *r = call(line);
	ck_assert_str_eq(json_string_value(json_object_get(r, "result")), "error");
	ck_assert_str_eq(harness_error_code(r), code);
	ck_assert(json_is_array(json_object_get(r, "failed_hosts")));
	ck_assert(json_is_object(json_object_get(r, "data")));
	ck_assert(json_is_string(json_object_get(r, "message")));
	json_decref(r);
}

START_TEST(ping_reply_shape)
{
	json_t *r = call("{\"job_id\":7,\"action\":\"ping\"}");
	json_t *d = json_object_get(r, "data");
	ck_assert_int_eq(json_integer_value(json_object_get(r, "job_id")), 7);
	ck_assert_str_eq(json_string_value(json_object_get(r, "result")), "success");
	ck_assert_int_eq(json_integer_value(json_object_get(d, "pid")), getpid());
	ck_assert(json_is_string(json_object_get(d, "version")));
	ck_assert(json_number_value(json_object_get(d, "uptime_s")) >= 0);
	ck_assert_uint_eq(json_array_size(json_object_get(r, "failed_hosts")), 0);
	json_decref(r);
}
END_TEST

START_TEST(envelope_errors)
{
	json_t *r;

	expect_error("{nope", "parse_error");
	expect_error("[1,2]", "parse_error");
	expect_error("{\"job_id\":1}", "invalid_request");
	expect_error("{\"action\":\"ping\"}", "invalid_request");
	expect_error("{\"job_id\":\"1\",\"action\":\"ping\"}", "invalid_request");
	expect_error("{\"job_id\":1,\"action\":\"ping\",\"timeout\":0}", "invalid_request");
	expect_error("{\"job_id\":1,\"action\":\"ping\",\"timeout\":-1}", "invalid_request");
	expect_error("{\"job_id\":1,\"action\":\"ping\",\"retries\":-1}", "invalid_request");
	expect_error("{\"job_id\":1,\"action\":\"ping\",\"host_list\":[\"a\"]}", "invalid_request");
	expect_error("{\"job_id\":1,\"action\":\"ping\",\"host_list\":[1]}", "invalid_request");
	expect_error("{\"job_id\":1,\"action\":\"ping\",\"args\":[]}", "invalid_request");
	expect_error("{\"job_id\":1,\"action\":\"ping\",\"job_id\":2}", "parse_error");
	expect_error("{\"job_id\":1,\"action\":\"nope\"}", "unknown_action");
	expect_error("{\"job_id\":1,\"action\":\"ping\",\"args\":{\"x\":1}}", "invalid_args");

	/* An unknown top-level key is named, and the job_id is kept. */
	r = call("{\"job_id\":5,\"action\":\"ping\",\"colour\":1}");
	ck_assert_str_eq(harness_error_code(r), "invalid_request");
	ck_assert_int_eq(json_integer_value(json_object_get(r, "job_id")), 5);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(json_object_get(r, "error"), "detail"), "key")),
			 "colour");
	json_decref(r);

	/* Unparseable: job_id is null. */
	r = call("garbage");
	ck_assert(json_is_null(json_object_get(r, "job_id")));
	json_decref(r);
}
END_TEST

START_TEST(echo_and_double)
{
	json_t *r = call("{\"job_id\":1,\"action\":\"echo\",\"args\":{\"text\":\"h\\u00e9llo \\ud83d\\ude00\"}}");
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(r, "data"), "text")), "h\xc3\xa9llo \xf0\x9f\x98\x80");
	json_decref(r);
	r = call("{\"job_id\":2,\"action\":\"echo\",\"args\":{\"int\":-9223372036854775808}}");
	ck_assert(json_integer_value(json_object_get(json_object_get(r, "data"), "int")) == INT64_MIN);
	json_decref(r);
	expect_error("{\"job_id\":3,\"action\":\"echo\",\"args\":{\"int\":9223372036854775808}}", "invalid_args");
	expect_error("{\"job_id\":3,\"action\":\"echo\",\"args\":{\"text\":\"\\ud800\"}}", "parse_error");
	expect_error("{\"job_id\":3,\"action\":\"echo\",\"args\":{\"text\":\"a\",\"int\":1}}", "invalid_args");
	expect_error("{\"job_id\":3,\"action\":\"echo\",\"args\":{}}", "invalid_args");
	expect_error("{\"job_id\":3,\"action\":\"echo\",\"args\":{\"int\":1.5}}", "invalid_args");

	r = call("{\"job_id\":4,\"action\":\"double\",\"args\":{\"x\":-4611686018427387904}}");
	ck_assert(json_integer_value(json_object_get(json_object_get(r, "data"), "x")) == INT64_MIN);
	json_decref(r);
	expect_error("{\"job_id\":5,\"action\":\"double\",\"args\":{\"x\":4611686018427387904}}", "invalid_args");
	expect_error("{\"job_id\":5,\"action\":\"double\",\"args\":{\"x\":\"2\"}}", "invalid_args");
	expect_error("{\"job_id\":5,\"action\":\"double\",\"args\":{}}", "invalid_args");
}
END_TEST

START_TEST(invalid_utf8_is_rejected)
{
	expect_error("{\"job_id\":1,\"action\":\"echo\",\"args\":{\"text\":\"\xff\xfe\"}}", "parse_error");
	expect_error("{\"job_id\":1,\"action\":\"echo\",\"args\":{\"text\":\"\xc0\xaf\"}}", "parse_error");
}
END_TEST

START_TEST(vector_length)
{
	json_t *r = call("{\"job_id\":1,\"action\":\"vector.length\",\"args\":{\"x\":3,\"y\":4,\"z\":12}}");
	ck_assert_double_eq(json_number_value(json_object_get(json_object_get(r, "data"), "length")), 13.0);
	json_decref(r);
	r = call("{\"job_id\":2,\"action\":\"vector.length\",\"args\":{\"x\":1e300,\"y\":1e300,\"z\":0}}");
	ck_assert_double_eq_tol(json_number_value(json_object_get(json_object_get(r, "data"), "length")),
				1.4142135623730951e300, 1e286);
	json_decref(r);
	expect_error("{\"job_id\":3,\"action\":\"vector.length\",\"args\":{\"x\":1.7e308,\"y\":1.7e308,\"z\":0}}",
		     "invalid_args");
	expect_error("{\"job_id\":3,\"action\":\"vector.length\",\"args\":{\"x\":1,\"y\":2}}", "invalid_args");
}
END_TEST

START_TEST(describe_lists_every_action)
{
	json_t *r = call("{\"job_id\":1,\"action\":\"describe\"}");
	json_t *actions = json_object_get(json_object_get(r, "data"), "actions");
	const char *want[] = { "ping", "describe", "echo", "double", "vector.length", "cancel", "stats" };
	size_t i, j;
	json_t *a;

	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		int found = 0;
		json_array_foreach(actions, j, a) {
			if (strcmp(json_string_value(json_object_get(a, "name")), want[i]) == 0) {
				found = 1;
				ck_assert(json_is_object(json_object_get(a, "args")));
				ck_assert(json_string_length(json_object_get(a, "summary")) > 0);
			}
		}
		ck_assert_msg(found, "describe lacks %s", want[i]);
	}
	json_decref(r);
}
END_TEST

START_TEST(timeout_and_progress)
{
	int fd = harness_connect();
	const char *req = "{\"job_id\":9,\"action\":\"sleep\",\"args\":{\"seconds\":0.2,\"steps\":2},\"progress\":true}\n";
	json_t *r;
	int progress = 0, finished = 0;

	harness_send(fd, req, strlen(req));
	while (!finished && (r = harness_recv(fd, 5000))) {
		const char *res = json_string_value(json_object_get(r, "result"));
		ck_assert_ptr_nonnull(res);
		if (strcmp(res, "progress") == 0) {
			progress++;
		} else {
			ck_assert_str_eq(res, "success");
			finished = 1;
		}
		json_decref(r);
	}
	/* The loop also ends when no reply comes within 5 s. */
	ck_assert_msg(finished, "no final reply after %d progress lines", progress);
	ck_assert_int_eq(progress, 2);
	close(fd);

	expect_error("{\"job_id\":10,\"action\":\"sleep\",\"args\":{\"seconds\":30},\"timeout\":0.05}", "timeout");
}
END_TEST

START_TEST(cancel_by_job_id)
{
	int fd = harness_connect();
	const char *req = "{\"job_id\":1,\"action\":\"sleep\",\"args\":{\"seconds\":30}}\n"
			  "{\"job_id\":2,\"action\":\"cancel\",\"args\":{\"target\":1}}\n";
	json_t *a, *b;

	harness_send(fd, req, strlen(req));
	a = harness_recv(fd, 5000);
	b = harness_recv(fd, 5000);
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	/* The cancelled job's reply comes first, then the cancel's own. */
	ck_assert_int_eq(json_integer_value(json_object_get(a, "job_id")), 1);
	ck_assert_str_eq(harness_error_code(a), "cancelled");
	ck_assert_int_eq(json_integer_value(json_object_get(b, "job_id")), 2);
	ck_assert_str_eq(json_string_value(json_object_get(b, "result")), "success");
	json_decref(a);
	json_decref(b);
	close(fd);
	expect_error("{\"job_id\":3,\"action\":\"cancel\",\"args\":{\"target\":42}}", "not_found");
}
END_TEST

START_TEST(duplicate_job_id_in_flight)
{
	int fd = harness_connect();
	const char *req = "{\"job_id\":1,\"action\":\"sleep\",\"args\":{\"seconds\":0.2}}\n"
			  "{\"job_id\":1,\"action\":\"ping\"}\n";
	json_t *a = NULL, *b = NULL;

	harness_send(fd, req, strlen(req));
	a = harness_recv(fd, 5000);
	b = harness_recv(fd, 5000);
	ck_assert_str_eq(harness_error_code(a), "invalid_request");
	ck_assert_str_eq(json_string_value(json_object_get(b, "result")), "success");
	json_decref(a);
	json_decref(b);
	close(fd);
}
END_TEST

START_TEST(line_over_limit_closes)
{
	int fd = harness_connect();
	char *big = malloc(6000);
	json_t *r;

	memset(big, ' ', 6000);
	harness_send(fd, big, 6000);
	r = harness_recv(fd, 5000);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(harness_error_code(r), "too_large");
	json_decref(r);
	ck_assert_ptr_null(harness_recv(fd, 2000)); /* then the connection closes */
	free(big);
	close(fd);
}
END_TEST

START_TEST(raw_and_base64_attachments)
{
	int fd = harness_connect();
	const char *req = "{\"job_id\":1,\"action\":\"ping\",\"raw\":4}\n\n\n{}"
			  "{\"job_id\":2,\"action\":\"ping\",\"raw_b64\":\"AAEC\"}\n"
			  "{\"job_id\":3,\"action\":\"nope\",\"raw\":3}\nxyz"
			  "{\"job_id\":4,\"action\":\"ping\",\"raw_b64\":\"A=A=\"}\n"
			  "{\"job_id\":5,\"action\":\"ping\",\"raw\":100001}\n";
	const char *want[] = { "success", "success", "unknown_action", "invalid_request", "too_large" };
	harness_send(fd, req, strlen(req));
	for (int i = 0; i < 5; i++) {
		json_t *r = harness_recv(fd, 5000);
		ck_assert_ptr_nonnull(r);
		ck_assert_int_eq(json_integer_value(json_object_get(r, "job_id")), i + 1);
		if (i < 2)
			ck_assert_str_eq(json_string_value(json_object_get(r, "result")), want[i]);
		else
			ck_assert_str_eq(harness_error_code(r), want[i]);
		json_decref(r);
	}
	close(fd);
}
END_TEST

START_TEST(inflight_limit_is_backpressure)
{
	/* Ten slow requests with max_inflight_per_conn 4: all are answered, none busy. */
	int fd = harness_connect();
	char line[128];
	int ok = 0;

	for (int i = 1; i <= 10; i++) {
		snprintf(line, sizeof(line), "{\"job_id\":%d,\"action\":\"sleep\",\"args\":{\"seconds\":0.01}}\n", i);
		harness_send(fd, line, strlen(line));
	}
	for (int i = 0; i < 10; i++) {
		json_t *r = harness_recv(fd, 5000);
		ck_assert_ptr_nonnull(r);
		ok += strcmp(json_string_value(json_object_get(r, "result")), "success") == 0;
		json_decref(r);
	}
	ck_assert_int_eq(ok, 10);
	close(fd);
}
END_TEST

START_TEST(disconnect_cancels_work)
{
	int fd = harness_connect();
	const char *req = "{\"job_id\":1,\"action\":\"sleep\",\"args\":{\"seconds\":30}}\n";
	json_t *r;

	harness_send(fd, req, strlen(req));
	harness_spin(20);
	close(fd);
	harness_spin(100);
	r = call("{\"job_id\":2,\"action\":\"stats\"}");
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(r, "data"), "in_flight")), 1);
	json_decref(r);
}
END_TEST

START_TEST(base64_round_trip)
{
	const unsigned char data[] = "\x00\x01\x02\xfe\xff kiln";
	for (size_t n = 0; n < sizeof(data); n++) {
		size_t len, outlen;
		unsigned char *out;
		char *enc = base64_encode(data, n, &len);
		ck_assert_uint_eq(len % 4, 0);
		ck_assert_int_eq(base64_decode(enc, len, &out, &outlen), 0);
		ck_assert_uint_eq(outlen, n);
		ck_assert_int_eq(memcmp(out, data, n), 0);
		free(out);
		free(enc);
	}
}
END_TEST

START_TEST(utf8_scrub_and_prefix)
{
	/* Every byte of a cut sequence, a lone continuation byte and an
	 * overlong form becomes U+FFFD; valid text passes through. */
	const char in[] = "ok \xc3\xa9 \xe2\x82 \x80 \xc0\xaf end";
	size_t n;
	char *out = kiln_utf8_scrub(in, sizeof(in) - 1, &n);

	ck_assert_str_eq(out, "ok \xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd \xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd end");
	ck_assert_uint_eq(n, strlen(out));
	ck_assert_uint_eq(kiln_utf8_valid_prefix((const uint8_t *)in, sizeof(in) - 1), 6);
	free(out);
}
END_TEST

START_TEST(log_escape_forgeries)
{
	/* A newline, a journal priority, a terminal escape, a C1 CSI, U+2028,
	 * a backslash and a stray byte: none survives as itself; UTF-8 text
	 * passes through. */
	const char in[] = "x\nkilnd error: reload failed\r<0>emerg\x1b[2J\xc2\x9b \xe2\x80\xa8 a\\b \xff caf\xc3\xa9";
	char out[256];
	size_t n = log_escape(out, sizeof(out), in, sizeof(in) - 1);

	ck_assert_str_eq(out, "x\\nkilnd error: reload failed\\r<0>emerg\\x1b[2J\\u009b \\u2028 a\\\\b \\xff caf\xc3\xa9");
	ck_assert_uint_eq(n, strlen(out));
	/* Cut at an escape boundary, never inside one. */
	n = log_escape(out, 4, "a\nb", 3);
	ck_assert_str_eq(out, "a\\n");
	n = log_escape(out, 3, "a\nb", 3);
	ck_assert_str_eq(out, "a");
	ck_assert_uint_eq(n, 1);
}
END_TEST

/* A family of the test's own, registered like any other: job_fail's
 * error-sign convention (negative -KILN_E_*) seen from a handler. */
static void act_fail_negative(struct job *job, json_t *args)
{
	(void)args;
	job_fail(job, -KILN_E_BUSY, NULL, "busy on purpose");
}

static void act_fail_positive(struct job *job, json_t *args)
{
	(void)args;
	job_fail(job, KILN_E_BUSY, NULL, "the wrong sign");
}

static const struct action sign_actions[] = {
	{ "test.fail_negative", "job_fail(-KILN_E_BUSY)", NULL, NULL, act_fail_negative, 0 },
	{ "test.fail_positive", "job_fail(KILN_E_BUSY): a bug", NULL, NULL, act_fail_positive, 0 },
};

static const struct action_family family_sign = {
	.name = "test",
	.actions = sign_actions,
	.count = sizeof(sign_actions) / sizeof(sign_actions[0]),
};

START_TEST(job_fail_takes_negative_codes)
{
	dispatch_register(&family_sign);
	expect_error("{\"job_id\":1,\"action\":\"test.fail_negative\"}", "busy");
}
END_TEST

#ifndef NDEBUG
/* Debug and sanitizer builds catch the other sign as the bug it is. */
START_TEST(job_fail_positive_code_aborts)
{
	harness_start(NULL);
	dispatch_register(&family_sign);
	harness_call("{\"job_id\":1,\"action\":\"test.fail_positive\"}");
}
END_TEST
#endif

static Suite *core_suite(void)
{
	Suite *s = suite_create("core");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, ping_reply_shape);
	tcase_add_test(tc, envelope_errors);
	tcase_add_test(tc, echo_and_double);
	tcase_add_test(tc, invalid_utf8_is_rejected);
	tcase_add_test(tc, vector_length);
	tcase_add_test(tc, describe_lists_every_action);
	tcase_add_test(tc, timeout_and_progress);
	tcase_add_test(tc, cancel_by_job_id);
	tcase_add_test(tc, duplicate_job_id_in_flight);
	tcase_add_test(tc, line_over_limit_closes);
	tcase_add_test(tc, raw_and_base64_attachments);
	tcase_add_test(tc, inflight_limit_is_backpressure);
	tcase_add_test(tc, disconnect_cancels_work);
	tcase_add_test(tc, base64_round_trip);
	tcase_add_test(tc, utf8_scrub_and_prefix);
	tcase_add_test(tc, log_escape_forgeries);
	tcase_add_test(tc, job_fail_takes_negative_codes);
	suite_add_tcase(s, tc);
#ifndef NDEBUG
	tc = tcase_create("asserts");
	tcase_set_timeout(tc, 30);
	tcase_add_test_raise_signal(tc, job_fail_positive_code_aborts, SIGABRT);
	suite_add_tcase(s, tc);
#endif
	return s;
}

KILN_CHECK_MAIN(core_suite)
