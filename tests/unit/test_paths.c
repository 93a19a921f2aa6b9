/*
 * Paths kilnd opens itself: resolution beneath the roots, with openat2 and
 * with the O_NOFOLLOW walk used where openat2 is missing (the same cases
 * must give the same answers).  Runs as whoever runs the tests: no
 * credential switch is involved (no creds_enter).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_main.h"
#include "config.h"
#include "kiln/error.h"
#include "paths.h"

static char base[256];
static struct kiln_config *cfg;

static void put(const char *rel, const char *text)
{
	char p[512];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", base, rel);
	f = fopen(p, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

static void setup(void)
{
	char p[512], q[512], conf[512], err[256];

	snprintf(base, sizeof(base), "/tmp/kiln-paths-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(base));
	snprintf(p, sizeof(p), "%s/root", base);
	ck_assert_int_eq(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/root/sub", base);
	ck_assert_int_eq(mkdir(p, 0755), 0);
	put("root/a.txt", "inside");
	put("root/sub/b.txt", "deeper");
	put("outside.txt", "outside");
	snprintf(p, sizeof(p), "%s/outside.txt", base);
	snprintf(q, sizeof(q), "%s/root/abs", base);
	ck_assert_int_eq(symlink(p, q), 0);
	snprintf(q, sizeof(q), "%s/root/rel", base);
	ck_assert_int_eq(symlink("../outside.txt", q), 0);
	snprintf(q, sizeof(q), "%s/root/inner", base);
	ck_assert_int_eq(symlink("sub/b.txt", q), 0);
	/* A directory link leading out of the root. */
	snprintf(q, sizeof(q), "%s/root/dirlink", base);
	ck_assert_int_eq(symlink(base, q), 0);
	snprintf(conf, sizeof(conf), "%s/kiln.json", base);
	snprintf(p, sizeof(p), "{\"path_roots\": [\"%s/root\"]}", base);
	FILE *f = fopen(conf, "w");
	fputs(p, f);
	fclose(f);
	cfg = config_load(conf, err, sizeof(err));
	ck_assert_msg(cfg != NULL, "%s", err);
}

static void teardown(void)
{
	char cmd[600];

	config_unref(cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	ck_assert_int_eq(system(cmd), 0);
}

/* The reply code of reading base/rel (0: read, and the text matched). */
static int read_code(const char *rel, const char *want)
{
	char p[512], err[256];
	unsigned char *buf = NULL;
	size_t len;
	int rc;

	snprintf(p, sizeof(p), "%s/%s", base, rel);
	rc = kiln_path_read(cfg, p, 1 << 20, &buf, &len, err, sizeof(err));
	if (rc == 0) {
		ck_assert_str_eq((char *)buf, want);
		free(buf);
	}
	return rc;
}

static void check_all(void)
{
	char p[512], err[256];
	struct kiln_path_out out;
	int fd;

	ck_assert_int_eq(read_code("root/a.txt", "inside"), 0);
	ck_assert_int_eq(read_code("root/sub/../a.txt", "inside"), 0);
	ck_assert_int_eq(read_code("root//sub/./b.txt", "deeper"), 0);
	ck_assert_int_eq(read_code("root/../outside.txt", NULL), -KILN_E_FORBIDDEN);
	ck_assert_int_eq(read_code("root/sub/../../outside.txt", NULL), -KILN_E_FORBIDDEN);
	ck_assert_int_eq(read_code("root/abs", NULL), -KILN_E_FORBIDDEN);
	ck_assert_int_eq(read_code("root/rel", NULL), -KILN_E_FORBIDDEN);
	ck_assert_int_eq(read_code("outside.txt", NULL), -KILN_E_FORBIDDEN);
	ck_assert_int_eq(read_code("nothing.txt", NULL), -KILN_E_FORBIDDEN);
	ck_assert_int_eq(read_code("root/missing.txt", NULL), -KILN_E_NOT_FOUND);
	ck_assert_int_eq(read_code("root/sub", NULL), -KILN_E_INVALID_ARGS);
	/* Writing: a temporary beside the target, renamed once complete; a
	 * symlink at the target is refused, not followed. */
	snprintf(p, sizeof(p), "%s/root/sub/new.txt", base);
	fd = kiln_path_create(cfg, p, true, &out, NULL, err, sizeof(err));
	ck_assert_msg(fd >= 0, "%s", err);
	ck_assert_int_eq(write(fd, "new", 3), 3);
	ck_assert_int_eq(access(p, F_OK), -1);
	ck_assert_int_eq(kiln_path_finish(&out, true, err, sizeof(err)), 0);
	ck_assert_int_eq(read_code("root/sub/new.txt", "new"), 0);
	snprintf(p, sizeof(p), "%s/root/abs", base);
	ck_assert_int_eq(kiln_path_create(cfg, p, true, &out, NULL, err, sizeof(err)), -KILN_E_FORBIDDEN);
	snprintf(p, sizeof(p), "%s/root/../escape.txt", base);
	ck_assert_int_eq(kiln_path_create(cfg, p, true, &out, NULL, err, sizeof(err)), -KILN_E_FORBIDDEN);
	snprintf(p, sizeof(p), "%s/escape.txt", base);
	ck_assert_int_eq(access(p, F_OK), -1);
	unlink(p);
	/* Through a symlinked directory: a way out, not a missing file, for
	 * writes (the target's directory) and directory listings alike. */
	snprintf(p, sizeof(p), "%s/root/dirlink/escape.txt", base);
	ck_assert_int_eq(kiln_path_create(cfg, p, true, &out, NULL, err, sizeof(err)), -KILN_E_FORBIDDEN);
	snprintf(p, sizeof(p), "%s/escape.txt", base);
	ck_assert_int_eq(access(p, F_OK), -1);
	snprintf(p, sizeof(p), "%s/root/dirlink", base);
	ck_assert_int_eq(kiln_path_opendir(cfg, p, err, sizeof(err)), -KILN_E_FORBIDDEN);
}

START_TEST(with_openat2)
{
	check_all();
	/* A symlink staying inside the root is followed (openat2 only). */
	ck_assert_int_eq(read_code("root/inner", "deeper"), 0);
}
END_TEST

START_TEST(with_the_nofollow_walk)
{
	kiln_path_without_openat2();
	check_all();
	/* The walk follows no symlink at all. */
	ck_assert_int_eq(read_code("root/inner", NULL), -KILN_E_FORBIDDEN);
}
END_TEST

static Suite *paths_suite(void)
{
	Suite *s = suite_create("paths");
	TCase *tc = tcase_create("paths");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, with_openat2);
	tcase_add_test(tc, with_the_nofollow_walk);
	suite_add_tcase(s, tc);
	return s;
}

KILN_CHECK_MAIN(paths_suite)
