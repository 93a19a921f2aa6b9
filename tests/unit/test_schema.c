/* The action-table schema validator: "$defs" and "$ref" (the scene format's
 * shared definitions), anyOf stopping at its first match. */
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "schema.h"

static json_t *load(const char *text)
{
	json_error_t e;
	json_t *j = json_loads(text, 0, &e);

	ck_assert_msg(j != NULL, "bad JSON in test: %s", e.text);
	return j;
}

static int run(const json_t *schema, const char *value, char **path, char *msg, size_t msglen)
{
	json_t *v = load(value);
	int rc = schema_validate(schema, v, "args", path, msg, msglen);

	json_decref(v);
	return rc;
}

START_TEST(ref_resolves_in_root_defs)
{
	json_t *s = load("{\"type\":\"object\",\"properties\":{\"p\":{\"$ref\":\"#/$defs/vec\"},"
			 "\"l\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/vec\"}}},"
			 "\"$defs\":{\"vec\":{\"type\":\"array\",\"minItems\":3,\"maxItems\":3,"
			 "\"items\":{\"type\":\"number\"}}}}");
	char err[256], msg[256], *path = NULL;

	ck_assert_int_eq(schema_check(s, err, sizeof err), 0);
	ck_assert_int_eq(run(s, "{\"p\":[1,2,3],\"l\":[[0,0,0]]}", &path, msg, sizeof msg), 0);
	ck_assert_int_eq(run(s, "{\"l\":[[0,0,0],[1,\"x\",2]]}", &path, msg, sizeof msg), -1);
	ck_assert_str_eq(path, "args.l[1][1]");
	free(path);
	ck_assert_int_eq(run(s, "{\"p\":[1,2]}", &path, msg, sizeof msg), -1);
	ck_assert_str_eq(path, "args.p");
	free(path);
	json_decref(s);
}
END_TEST

START_TEST(ref_checked_at_startup)
{
	char err[256];
	json_t *dangling = load("{\"properties\":{\"p\":{\"$ref\":\"#/$defs/nope\"}},\"$defs\":{}}");
	json_t *foreign = load("{\"properties\":{\"p\":{\"$ref\":\"http://example.com/s.json\"}}}");
	json_t *nested = load("{\"properties\":{\"p\":{\"$defs\":{}}}}");
	json_t *bad_def = load("{\"$defs\":{\"x\":{\"typo\":1}}}");

	ck_assert_int_eq(schema_check(dangling, err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "#/$defs/nope"));
	ck_assert_int_eq(schema_check(foreign, err, sizeof err), -1);
	ck_assert_int_eq(schema_check(nested, err, sizeof err), -1);
	ck_assert_int_eq(schema_check(bad_def, err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "typo"));
	json_decref(dangling);
	json_decref(foreign);
	json_decref(nested);
	json_decref(bad_def);
}
END_TEST

START_TEST(any_of_first_match_decides)
{
	json_t *s = load("{\"properties\":{\"e\":{\"anyOf\":[{\"type\":\"object\"},"
			 "{\"$ref\":\"#/$defs/strict\"}]}},"
			 "\"$defs\":{\"strict\":{\"type\":\"object\",\"required\":[\"x\"]}}}");
	json_t *one = load("{\"properties\":{\"e\":{\"oneOf\":[{\"type\":\"object\"},"
			   "{\"type\":\"object\",\"required\":[\"x\"]}]}}}");
	char err[256], msg[256], *path = NULL;

	ck_assert_int_eq(schema_check(s, err, sizeof err), 0);
	ck_assert_int_eq(run(s, "{\"e\":{}}", &path, msg, sizeof msg), 0);
	ck_assert_int_eq(run(s, "{\"e\":5}", &path, msg, sizeof msg), -1);
	ck_assert_ptr_nonnull(strstr(msg, "none of the allowed forms"));
	free(path);
	/* oneOf still counts every match. */
	ck_assert_int_eq(run(one, "{\"e\":{\"x\":1}}", &path, msg, sizeof msg), -1);
	ck_assert_ptr_nonnull(strstr(msg, "more than one"));
	free(path);
	json_decref(s);
	json_decref(one);
}
END_TEST

static Suite *schema_suite(void)
{
	Suite *s = suite_create("schema");
	TCase *tc = tcase_create("schema");
	tcase_add_test(tc, ref_resolves_in_root_defs);
	tcase_add_test(tc, ref_checked_at_startup);
	tcase_add_test(tc, any_of_first_match_decides);
	suite_add_tcase(s, tc);
	return s;
}

KILN_CHECK_MAIN(schema_suite)
