/*
 * The module ABI (include/kiln/module.h, daemon/mod_api.c) and the module
 * host's wire format (daemon/mod_wire.c): loading and refusing module files
 * (ABI version, ownership, schemas, names), every argument accessor with
 * the right and the wrong types, results, output buffers and failures, and
 * messages with inline and memfd payloads.
 *
 * The module files are `make modules`' ($BUILD/modules, $BUILD/tests/modules).
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_main.h"
#include "mod_api.h"
#include "mod_wire.h"

/* --- Loading ------------------------------------------------------------------ */

static int open_module(const char *rel)
{
	const char *build = getenv("BUILD");
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", build && *build ? build : "build", rel);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	ck_assert_msg(fd >= 0, "%s: %s (run `make modules`)", path, strerror(errno));
	return fd;
}

START_TEST(loads_numeric)
{
	int fd = open_module("modules/numeric.so");
	json_t *config = json_object();
	char err[512] = "";
	struct mod_lib *lib = mod_lib_open(fd, "numeric.so", config, err, sizeof(err));

	ck_assert_msg(lib != NULL, "%s", err);
	ck_assert_uint_eq(lib->count, 4);
	ck_assert_str_eq(lib->actions[0].name, "numeric.add");
	ck_assert_ptr_nonnull(lib->actions[0].handler);
	ck_assert_ptr_nonnull(strstr(lib->actions[0].args_schema, "\"required\""));
	mod_lib_close(lib);
	json_decref(config);
	close(fd);
}
END_TEST

START_TEST(refuses_another_abi_naming_both)
{
	int fd = open_module("tests/modules/abi_wrong.so");
	char err[512] = "";

	ck_assert_ptr_null(mod_lib_open(fd, "abi_wrong.so", NULL, err, sizeof(err)));
	ck_assert_msg(strstr(err, "built for kiln module ABI version 2, but kilnd implements version 1"), "%s", err);
	close(fd);
}
END_TEST

START_TEST(refuses_bad_schema)
{
	int fd = open_module("tests/modules/bad_schema.so");
	char err[512] = "";

	ck_assert_ptr_null(mod_lib_open(fd, "bad_schema.so", NULL, err, sizeof(err)));
	ck_assert_msg(strstr(err, "invalid_args") && strstr(err, "badschema.noop: args schema"), "%s", err);
	close(fd);
}
END_TEST

START_TEST(refuses_a_plain_library)
{
	int fd = open_module("libkiln.so");
	char err[512] = "";

	ck_assert_ptr_null(mod_lib_open(fd, "libkiln.so", NULL, err, sizeof(err)));
	ck_assert_msg(strstr(err, "not a kiln module"), "%s", err);
	close(fd);
}
END_TEST

START_TEST(action_names_and_schemas)
{
	char err[256], long_name[80];

	ck_assert_int_eq(mod_action_check("a.b", NULL, NULL, err, sizeof(err)), 0);
	ck_assert_int_eq(mod_action_check("my-mod.do_it2", "{\"type\":\"object\"}", NULL, err, sizeof(err)), 0);
	ck_assert_int_ne(mod_action_check("nodot", NULL, NULL, err, sizeof(err)), 0);
	ck_assert_int_ne(mod_action_check("Upper.case", NULL, NULL, err, sizeof(err)), 0);
	ck_assert_int_ne(mod_action_check(".lead", NULL, NULL, err, sizeof(err)), 0);
	ck_assert_int_ne(mod_action_check("trail.", NULL, NULL, err, sizeof(err)), 0);
	ck_assert_int_ne(mod_action_check("sp ace.x", NULL, NULL, err, sizeof(err)), 0);
	ck_assert_int_ne(mod_action_check(NULL, NULL, NULL, err, sizeof(err)), 0);
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	long_name[3] = '.';
	ck_assert_int_ne(mod_action_check(long_name, NULL, NULL, err, sizeof(err)), 0);
	ck_assert_int_ne(mod_action_check("a.b", "not json", NULL, err, sizeof(err)), 0);
	ck_assert_int_ne(mod_action_check("a.b", "[1]", NULL, err, sizeof(err)), 0);
	ck_assert_int_ne(mod_action_check("a.b", NULL, "{\"type\":\"object\",\"$ref\":\"x\"}", err, sizeof(err)), 0);
	ck_assert_msg(strstr(err, "data schema"), "%s", err);
}
END_TEST

/* --- File checks ------------------------------------------------------------------ */

static int temp_file(mode_t mode)
{
	char path[] = "/tmp/kiln-modcheck-XXXXXX";
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	unlink(path);
	ck_assert_int_eq(fchmod(fd, mode), 0);
	return fd;
}

START_TEST(file_check_modes)
{
	char err[256];
	int fd = temp_file(0755);

	ck_assert_int_eq(mod_file_check(fd, err, sizeof(err)), 0);
	fchmod(fd, 0757);
	ck_assert_int_eq(mod_file_check(fd, err, sizeof(err)), -KILN_E_FORBIDDEN);
	ck_assert_msg(strstr(err, "writable by others (mode 0757)"), "%s", err);
	fchmod(fd, 0775);
	if (getegid() == 0 || fchown(fd, (uid_t)-1, 0) == 0) {
		/* Group root may write, like sudoers. */
		ck_assert_int_eq(mod_file_check(fd, err, sizeof(err)), 0);
	}
	if (geteuid() == 0) {
		ck_assert_int_eq(fchown(fd, (uid_t)-1, 65534), 0);
		ck_assert_int_eq(mod_file_check(fd, err, sizeof(err)), -KILN_E_FORBIDDEN);
		ck_assert_msg(strstr(err, "writable by group 65534"), "%s", err);
		fchmod(fd, 0755);
		ck_assert_int_eq(fchown(fd, 65534, (gid_t)-1), 0);
		ck_assert_int_eq(mod_file_check(fd, err, sizeof(err)), -KILN_E_FORBIDDEN);
		ck_assert_msg(strstr(err, "owned by uid 65534"), "%s", err);
	}
	close(fd);
	fd = open("/tmp", O_RDONLY | O_DIRECTORY);
	ck_assert_int_eq(mod_file_check(fd, err, sizeof(err)), -KILN_E_FORBIDDEN);
	ck_assert_str_eq(err, "not a regular file");
	close(fd);
}
END_TEST

/* --- Calls --------------------------------------------------------------------------- */

static struct {
	uint64_t done, total;
	int progress_calls;
	bool cancelled;
	int allocs, releases;
} env;

static void t_progress(void *ctx, uint64_t done, uint64_t total)
{
	(void)ctx;
	env.done = done;
	env.total = total;
	env.progress_calls++;
}

static bool t_cancelled(void *ctx)
{
	(void)ctx;
	return env.cancelled;
}

static void *t_alloc(void *ctx, size_t len)
{
	void *p;

	(void)ctx;
	if (posix_memalign(&p, 64, len ? len : 1))
		return NULL;
	memset(p, 0, len);
	env.allocs++;
	return p;
}

static void t_release(void *ctx, void *buf, size_t len)
{
	(void)ctx;
	(void)len;
	env.releases++;
	free(buf);
}

static const struct mod_call_ops ops = { t_progress, t_cancelled, t_alloc, t_release };

static json_t *args_fixture(void)
{
	return json_pack("{s:i, s:f, s:s, s:b, s:[i, f], s:[i, i], s:[i, s], s:[], s:I}", "i", 5, "f", 2.5, "s",
			 "héllo", "b", 1, "arr", 1, 2.5, "iarr", 1, -2, "mixed", 1, "x", "empty", "big",
			 (json_int_t)INT64_MAX);
}

START_TEST(argument_accessors)
{
	json_t *args = args_fixture();
	struct kiln_mod_call c;
	int64_t i;
	double f;
	bool b;
	const char *s;
	size_t n;
	const double *d;
	const int64_t *l;

	mod_call_init(&c, args, NULL, 0, 1024, &ops, NULL);
	ck_assert(kiln_mod_has_arg(&c, "i"));
	ck_assert(!kiln_mod_has_arg(&c, "nope"));
	ck_assert(!kiln_mod_has_arg(&c, NULL));

	ck_assert_int_eq(kiln_mod_arg_int(&c, "i", &i), 0);
	ck_assert_int_eq(i, 5);
	ck_assert_int_eq(kiln_mod_arg_int(&c, "big", &i), 0);
	ck_assert(i == INT64_MAX);
	ck_assert_int_eq(kiln_mod_arg_int(&c, "f", &i), -KILN_E_INVALID_ARGS);
	ck_assert_int_eq(kiln_mod_arg_int(&c, "s", &i), -KILN_E_INVALID_ARGS);
	ck_assert_int_eq(kiln_mod_arg_int(&c, "nope", &i), -KILN_E_NOT_FOUND);

	ck_assert_int_eq(kiln_mod_arg_float(&c, "f", &f), 0);
	ck_assert(f == 2.5);
	ck_assert_int_eq(kiln_mod_arg_float(&c, "i", &f), 0);
	ck_assert(f == 5.0);
	ck_assert_int_eq(kiln_mod_arg_float(&c, "b", &f), -KILN_E_INVALID_ARGS);
	ck_assert_int_eq(kiln_mod_arg_float(&c, "nope", &f), -KILN_E_NOT_FOUND);

	ck_assert_int_eq(kiln_mod_arg_bool(&c, "b", &b), 0);
	ck_assert(b);
	ck_assert_int_eq(kiln_mod_arg_bool(&c, "i", &b), -KILN_E_INVALID_ARGS);
	ck_assert_int_eq(kiln_mod_arg_bool(&c, "nope", &b), -KILN_E_NOT_FOUND);

	ck_assert_int_eq(kiln_mod_arg_string(&c, "s", &s, &n), 0);
	ck_assert_str_eq(s, "héllo");
	ck_assert_uint_eq(n, 6);
	ck_assert_int_eq(kiln_mod_arg_string(&c, "s", &s, NULL), 0);
	ck_assert_int_eq(kiln_mod_arg_string(&c, "i", &s, &n), -KILN_E_INVALID_ARGS);
	ck_assert_int_eq(kiln_mod_arg_string(&c, "nope", &s, &n), -KILN_E_NOT_FOUND);

	ck_assert_int_eq(kiln_mod_arg_f64_array(&c, "arr", &d, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert(d[0] == 1.0 && d[1] == 2.5);
	ck_assert_int_eq(kiln_mod_arg_f64_array(&c, "iarr", &d, &n), 0);
	ck_assert(d[1] == -2.0);
	ck_assert_int_eq(kiln_mod_arg_f64_array(&c, "mixed", &d, &n), -KILN_E_INVALID_ARGS);
	ck_assert_int_eq(kiln_mod_arg_f64_array(&c, "i", &d, &n), -KILN_E_INVALID_ARGS);
	ck_assert_int_eq(kiln_mod_arg_f64_array(&c, "nope", &d, &n), -KILN_E_NOT_FOUND);
	ck_assert_int_eq(kiln_mod_arg_f64_array(&c, "empty", &d, &n), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_ptr_null(d);

	ck_assert_int_eq(kiln_mod_arg_i64_array(&c, "iarr", &l, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert(l[0] == 1 && l[1] == -2);
	ck_assert_int_eq(kiln_mod_arg_i64_array(&c, "arr", &l, &n), -KILN_E_INVALID_ARGS);
	ck_assert_int_eq(kiln_mod_arg_i64_array(&c, "s", &l, &n), -KILN_E_INVALID_ARGS);

	ck_assert_ptr_nonnull(strstr(kiln_mod_args_json(&c), "\"iarr\":[1,-2]"));
	mod_call_release(&c);
	json_decref(args);
}
END_TEST

START_TEST(attachment_accessors)
{
	json_t *args = json_object();
	struct kiln_mod_call c;
	_Alignas(64) unsigned char bytes[24] = { 0 };
	const void *p;
	size_t n, len;

	mod_call_init(&c, args, NULL, 0, 1024, &ops, NULL);
	ck_assert_ptr_null(kiln_mod_attachment(&c, &len));
	ck_assert_uint_eq(len, 0);
	ck_assert_int_eq(kiln_mod_attachment_array(&c, KILN_MOD_F64, &p, &n), -KILN_E_NOT_FOUND);
	mod_call_release(&c);

	mod_call_init(&c, args, bytes, 12, 1024, &ops, NULL);
	ck_assert_ptr_eq(kiln_mod_attachment(&c, &len), bytes);
	ck_assert_uint_eq(len, 12);
	ck_assert_int_eq(kiln_mod_attachment_array(&c, KILN_MOD_F64, &p, &n), -KILN_E_INVALID_ARGS);
	ck_assert_int_eq(kiln_mod_attachment_array(&c, KILN_MOD_I64, &p, &n), -KILN_E_INVALID_ARGS);
	ck_assert_int_eq(kiln_mod_attachment_array(&c, KILN_MOD_F32, &p, &n), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_int_eq(kiln_mod_attachment_array(&c, KILN_MOD_I32, &p, &n), 0);
	ck_assert_int_eq(kiln_mod_attachment_array(&c, KILN_MOD_U8, &p, &n), 0);
	ck_assert_uint_eq(n, 12);
	ck_assert_ptr_eq(p, bytes);
	ck_assert_int_eq(kiln_mod_attachment_array(&c, (enum kiln_mod_elem)99, &p, &n), -KILN_E_INVALID_ARGS);
	ck_assert_uint_eq(kiln_mod_elem_size((enum kiln_mod_elem)0), 0);
	mod_call_release(&c);
	json_decref(args);
}
END_TEST

static int ok_handler(kiln_mod_call *c)
{
	static const double v[] = { 1.5, -2 };
	static const int64_t w[] = { 7, 8, 9 };
	double *out;

	ck_assert_int_eq(kiln_mod_result_int(c, "i", -3), 0);
	ck_assert_int_eq(kiln_mod_result_float(c, "f", 0.25), 0);
	ck_assert_int_eq(kiln_mod_result_float(c, "nan", NAN), -KILN_E_INVALID_ARGS);
	ck_assert_int_eq(kiln_mod_result_float(c, "inf", INFINITY), -KILN_E_INVALID_ARGS);
	ck_assert_int_eq(kiln_mod_result_bool(c, "b", false), 0);
	ck_assert_int_eq(kiln_mod_result_string(c, "s", "ok"), 0);
	ck_assert_int_eq(kiln_mod_result_string(c, "bad", "\xff\xfe"), -KILN_E_INVALID_ARGS);
	ck_assert_int_eq(kiln_mod_result_string(c, "null", NULL), -KILN_E_INVALID_ARGS);
	ck_assert_int_eq(kiln_mod_result_f64_array(c, "v", v, 2), 0);
	ck_assert_int_eq(kiln_mod_result_i64_array(c, "w", w, 3), 0);
	ck_assert_int_eq(kiln_mod_result_f64_array(c, "e", NULL, 0), 0);
	ck_assert_int_eq(kiln_mod_result_f64_array(c, "x", NULL, 2), -KILN_E_INVALID_ARGS);
	ck_assert_int_eq(kiln_mod_result_int(c, NULL, 1), -KILN_E_INVALID_ARGS);
	ck_assert_int_eq(kiln_mod_result_int(c, "i", 4), 0); /* replaces */
	ck_assert_ptr_null(kiln_mod_output(c, 1025));           /* over out_max */
	out = kiln_mod_output(c, 32);
	ck_assert_ptr_nonnull(out);
	ck_assert(((uintptr_t)out & 63) == 0);
	ck_assert(out[0] == 0 && out[3] == 0);
	out = kiln_mod_output(c, 16); /* replaces the first buffer */
	out[1] = 42;
	kiln_mod_progress(c, 3, 10);
	ck_assert(!kiln_mod_cancelled(c));
	env.cancelled = true;
	ck_assert(kiln_mod_cancelled(c));
	kiln_mod_message(c, "did %d things", 2);
	return 0;
}

START_TEST(results_and_output)
{
	json_t *args = json_object();
	struct kiln_mod_call c;
	char *text;

	memset(&env, 0, sizeof(env));
	mod_call_init(&c, args, NULL, 0, 1024, &ops, NULL);
	ck_assert_int_eq(mod_call_run(&c, ok_handler), 0);
	text = json_dumps(c.data, JSON_SORT_KEYS | JSON_COMPACT);
	ck_assert_str_eq(text, "{\"attachment\":16,\"b\":false,\"e\":[],\"f\":0.25,\"i\":4,\"s\":\"ok\","
			       "\"v\":[1.5,-2.0],\"w\":[7,8,9]}");
	free(text);
	ck_assert_str_eq(c.message, "did 2 things");
	ck_assert_uint_eq(c.out_len, 16);
	ck_assert(((double *)c.out)[1] == 42);
	ck_assert_int_eq(env.allocs, 2);
	ck_assert_int_eq(env.releases, 1);
	ck_assert(env.done == 3 && env.total == 10 && env.progress_calls == 1);
	mod_call_release(&c);
	ck_assert_int_eq(env.releases, 2); /* the output not taken is released */
	json_decref(args);
}
END_TEST

static int fail_handler(kiln_mod_call *c)
{
	kiln_mod_result_int(c, "i", 1);
	ck_assert_ptr_nonnull(kiln_mod_output(c, 8));
	ck_assert_int_eq(kiln_mod_fail(c, KILN_E_TOO_LARGE, "too big: %d", 9), -KILN_E_TOO_LARGE);
	kiln_mod_message(c, "ignored after a failure");
	return -KILN_E_TOO_LARGE;
}

static int bare_error_handler(kiln_mod_call *c)
{
	(void)c;
	return -KILN_E_NOT_FOUND;
}

static int odd_code_handler(kiln_mod_call *c)
{
	return kiln_mod_fail(c, 999, "odd");
}

START_TEST(failures)
{
	json_t *args = json_object();
	struct kiln_mod_call c;

	memset(&env, 0, sizeof(env));
	mod_call_init(&c, args, NULL, 0, 1024, &ops, NULL);
	ck_assert_int_eq(mod_call_run(&c, fail_handler), KILN_E_TOO_LARGE);
	ck_assert_str_eq(c.message, "too big: 9");
	ck_assert_ptr_null(c.out); /* released on failure */
	ck_assert_int_eq(env.releases, 1);
	mod_call_release(&c);

	mod_call_init(&c, args, NULL, 0, 1024, &ops, NULL);
	ck_assert_int_eq(mod_call_run(&c, bare_error_handler), KILN_E_NOT_FOUND);
	ck_assert_str_eq(c.message, "the module action failed (not_found)");
	mod_call_release(&c);

	mod_call_init(&c, args, NULL, 0, 1024, &ops, NULL);
	ck_assert_int_eq(mod_call_run(&c, odd_code_handler), KILN_E_INTERNAL);
	mod_call_release(&c);
	json_decref(args);
}
END_TEST

/* --- Wire ------------------------------------------------------------------------------ */

static void pair(int sv[2])
{
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
}

START_TEST(wire_inline_with_attachment)
{
	int sv[2];
	struct mw_hdr h = { .type = MW_CALL, .id = 7 };
	struct mw_msg m;
	char att[100];

	pair(sv);
	memset(att, 'x', sizeof(att));
	for (size_t jl = 63; jl <= 65; jl++) { /* around the alignment */
		char json[80];
		memset(json, ' ', jl);
		json[0] = '{';
		json[jl - 1] = '}';
		h.json_len = jl;
		h.attach_len = sizeof(att);
		ck_assert_int_eq(mw_send(sv[0], &h, json, att), 0);
		ck_assert_int_eq(mw_recv(sv[1], &m, 0), 1);
		ck_assert_int_eq(m.h.has_fd, 0);
		ck_assert_uint_eq(m.h.id, 7);
		ck_assert_uint_eq(strlen(m.json), jl);
		ck_assert(((uintptr_t)m.attach & 63) == 0);
		ck_assert_int_eq(memcmp(m.attach, att, sizeof(att)), 0);
		ck_assert_ptr_null(mw_msg_take_attachment(&m)); /* inline: the caller copies */
		mw_msg_free(&m);
	}
	close(sv[0]);
	ck_assert_int_eq(mw_recv(sv[1], &m, 0), 0); /* end of stream */
	close(sv[1]);
}
END_TEST

START_TEST(wire_memfd_payload)
{
	int sv[2];
	size_t len = 1 << 20;
	unsigned char *att = malloc(len);
	struct mw_hdr h = { .type = MW_RESULT, .id = 9, .json_len = 2, .attach_len = len };
	struct mw_msg m;
	unsigned char *taken;

	pair(sv);
	for (size_t i = 0; i < len; i++)
		att[i] = (unsigned char)(i * 7);
	ck_assert_int_eq(mw_send(sv[0], &h, "{}", att), 0);
	ck_assert_int_eq(mw_recv(sv[1], &m, 1), 1);
	ck_assert_int_eq(m.h.has_fd, 1);
	ck_assert_str_eq(m.json, "{}");
	ck_assert_int_eq(memcmp(m.attach, att, len), 0);
	taken = mw_msg_take_attachment(&m);
	ck_assert_ptr_nonnull(taken);
	mw_msg_free(&m);
	ck_assert_int_eq(taken[len - 1], (unsigned char)((len - 1) * 7)); /* still mapped */
	mw_attachment_free(taken);
	free(att);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

START_TEST(wire_refuses_unsealed_memfd_and_short_messages)
{
	int sv[2], fd = memfd_create("t", MFD_CLOEXEC);
	struct mw_hdr h = { .type = MW_RESULT, .json_len = 2, .json_off = 0, .has_fd = 1 };
	union {
		struct cmsghdr c;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct iovec iov = { &h, sizeof(h) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf) };
	struct mw_msg m;

	pair(sv);
	ck_assert_int_eq(ftruncate(fd, 4096), 0);
	memset(&ctl, 0, sizeof(ctl));
	ctl.c.cmsg_level = SOL_SOCKET;
	ctl.c.cmsg_type = SCM_RIGHTS;
	ctl.c.cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(&ctl.c), &fd, sizeof(int));
	ck_assert_int_eq(sendmsg(sv[0], &mh, 0), (ssize_t)sizeof(h));
	ck_assert_int_eq(mw_recv(sv[1], &m, 1), -EPROTO); /* could shrink under us */
	ck_assert_int_eq(send(sv[0], "short", 5, 0), 5);
	ck_assert_int_eq(mw_recv(sv[1], &m, 0), -EPROTO);
	h.has_fd = 0;
	h.json_len = 1000; /* more than the body */
	ck_assert_int_eq(send(sv[0], &h, sizeof(h), 0), (ssize_t)sizeof(h));
	ck_assert_int_eq(mw_recv(sv[1], &m, 0), -EPROTO);
	close(fd);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

static Suite *module_suite(void)
{
	Suite *s = suite_create("module");
	TCase *load = tcase_create("load"), *call = tcase_create("call"), *wire = tcase_create("wire");

	tcase_add_test(load, loads_numeric);
	tcase_add_test(load, refuses_another_abi_naming_both);
	tcase_add_test(load, refuses_bad_schema);
	tcase_add_test(load, refuses_a_plain_library);
	tcase_add_test(load, action_names_and_schemas);
	tcase_add_test(load, file_check_modes);
	tcase_add_test(call, argument_accessors);
	tcase_add_test(call, attachment_accessors);
	tcase_add_test(call, results_and_output);
	tcase_add_test(call, failures);
	tcase_add_test(wire, wire_inline_with_attachment);
	tcase_add_test(wire, wire_memfd_payload);
	tcase_add_test(wire, wire_refuses_unsealed_memfd_and_short_messages);
	suite_add_tcase(s, load);
	suite_add_tcase(s, call);
	suite_add_tcase(s, wire);
	return s;
}

KILN_CHECK_MAIN(module_suite)
