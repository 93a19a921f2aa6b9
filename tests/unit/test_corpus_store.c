/*
 * The corpus store: borrowed documents outlive unload and replacement, and
 * the memory budget is enforced on installation.  Run under ASan/valgrind,
 * a use after free or a leak here fails the suite.
 */
#include <string.h>

#include "check_main.h"
#include "corpus_store.h"
#include "kiln/error.h"

/* A corpus of one document holding `text`, accounted at `memory` bytes. */
static struct corpus *make_corpus_of(uid_t owner, const char *name, const char *doc, const char *text,
				     size_t memory)
{
	struct corpus *c = corpus_new(name, owner);
	struct corpus_doc *d = corpus_doc_new(doc);
	size_t len = strlen(text);
	bool locked;
	char err[64];
	uint8_t *buf = kiln_secmem_alloc(len + 1, &locked);

	ck_assert_ptr_nonnull(c);
	ck_assert_ptr_nonnull(d);
	memcpy(buf, text, len);
	ck_assert_int_eq(kiln_cdoc_init(&d->cdoc, buf, len, len + 1, locked, err, sizeof err), 0);
	c->docs = calloc(1, sizeof *c->docs);
	c->docs[0] = d;
	c->ndocs = 1;
	c->bytes = len;
	c->memory = memory;
	return c;
}

static struct corpus *make_corpus(const char *name, const char *doc, const char *text, size_t memory)
{
	return make_corpus_of(1000, name, doc, text, memory);
}

START_TEST(test_borrow_survives_unload_and_replace)
{
	char err[128];
	int code;
	size_t len;
	struct corpus *old;
	const char *limit;

	ck_assert_int_eq(corpus_store_put(make_corpus("c", "d.txt", "first text", 100), 1000, 100000, &old, &limit, err, sizeof err), 0);
	ck_assert_ptr_null(old);
	struct corpus_doc *d = corpus_store_borrow(1000, "c", "d.txt", &code, err, sizeof err);
	ck_assert_ptr_nonnull(d);
	/* Replacing the corpus leaves the borrowed document intact. */
	ck_assert_int_eq(corpus_store_put(make_corpus("c", "d.txt", "second", 100), 1000, 100000, &old, &limit, err, sizeof err), 0);
	ck_assert_ptr_nonnull(old);
	ck_assert_uint_eq(old->bytes, 10);
	corpus_unref(old);
	ck_assert_str_eq((const char *)corpus_doc_text(d, &len), "first text");
	struct corpus_doc *d2 = corpus_store_borrow(1000, "c", "d.txt", &code, err, sizeof err);
	ck_assert_str_eq((const char *)corpus_doc_text(d2, &len), "second");
	struct corpus *taken = corpus_store_take(1000, "c");
	ck_assert_ptr_nonnull(taken);
	ck_assert_uint_eq(taken->bytes, 6);
	corpus_unref(taken);
	ck_assert_str_eq((const char *)corpus_doc_text(d2, &len), "second");
	corpus_doc_release(d);
	corpus_doc_release(d2);
	ck_assert_ptr_null(corpus_store_borrow(1000, "c", "d.txt", &code, err, sizeof err));
	ck_assert_int_eq(code, -KILN_E_NOT_FOUND);
	ck_assert_ptr_null(corpus_store_take(1000, "c"));
}
END_TEST

START_TEST(test_budget)
{
	char err[256];
	int code;
	struct corpus *old;
	const char *limit;

	ck_assert_int_eq(corpus_store_put(make_corpus("a", "x", "aaa", 600), 1000, 100000, &old, &limit, err, sizeof err), 0);
	struct corpus *big = make_corpus("b", "x", "bbb", 500);
	ck_assert_int_eq(corpus_store_put(big, 1000, 100000, &old, &limit, err, sizeof err), -KILN_E_TOO_LARGE);
	ck_assert_ptr_null(old);
	ck_assert_ptr_nonnull(strstr(err, "corpus_memory_budget"));
	corpus_unref(big);
	/* Replacing "a" frees its share first. */
	ck_assert_int_eq(corpus_store_put(make_corpus("a", "x", "new", 900), 1000, 100000, &old, &limit, err, sizeof err), 0);
	corpus_unref(old);
	ck_assert_uint_eq(corpus_store_memory(), 900);
	ck_assert_uint_eq(corpus_store_count(), 1);
	ck_assert_ptr_null(corpus_store_borrow(1000, "a", "missing", &code, err, sizeof err));
	ck_assert_ptr_nonnull(strstr(err, "no document"));
	json_t *list = corpus_store_list(NULL);
	ck_assert_uint_eq(json_array_size(list), 1);
	json_decref(list);
	corpus_store_clear();
	ck_assert_uint_eq(corpus_store_memory(), 0);
}
END_TEST

START_TEST(test_names_are_per_owner)
{
	char err[256];
	int code;
	size_t len;
	struct corpus *old;
	const char *limit;
	uid_t a = 1001, b = 1002;

	ck_assert_int_eq(corpus_store_put(make_corpus_of(a, "diary", "d", "A's text", 100), 1000, 300, &old,
					  &limit, err, sizeof err), 0);
	ck_assert_ptr_null(old);
	/* B's "diary" is another corpus: A's is neither replaced nor visible. */
	ck_assert_int_eq(corpus_store_put(make_corpus_of(b, "diary", "d", "B's text", 100), 1000, 300, &old,
					  &limit, err, sizeof err), 0);
	ck_assert_ptr_null(old);
	struct corpus_doc *d = corpus_store_borrow(a, "diary", "d", &code, err, sizeof err);
	ck_assert_str_eq((const char *)corpus_doc_text(d, &len), "A's text");
	corpus_doc_release(d);
	ck_assert_ptr_null(corpus_store_take(b, "nothing"));
	ck_assert_ptr_null(corpus_store_borrow(1003, "diary", "d", &code, err, sizeof err));
	ck_assert_int_eq(code, -KILN_E_NOT_FOUND);
	/* The per-uid limit counts only the owner's corpora. */
	struct corpus *big = make_corpus_of(a, "more", "d", "x", 250);
	ck_assert_int_eq(corpus_store_put(big, 1000, 300, &old, &limit, err, sizeof err), -KILN_E_TOO_LARGE);
	ck_assert_str_eq(limit, "corpus_memory_per_uid");
	corpus_unref(big);
	ck_assert_uint_eq(corpus_store_memory_of(a), 100);
	uid_t only = a;
	json_t *list = corpus_store_list(&only);
	ck_assert_uint_eq(json_array_size(list), 1);
	json_decref(list);
	json_t *per = corpus_store_per_uid();
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(per, "1002"), "memory_bytes")), 100);
	json_decref(per);
	struct corpus *t = corpus_store_take(a, "diary");
	ck_assert_ptr_nonnull(t);
	corpus_unref(t);
	ck_assert_uint_eq(corpus_store_count(), 1);
	corpus_store_clear();
}
END_TEST

static Suite *store_suite(void)
{
	Suite *s = suite_create("corpus_store");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_borrow_survives_unload_and_replace);
	tcase_add_test(tc, test_budget);
	tcase_add_test(tc, test_names_are_per_owner);
	suite_add_tcase(s, tc);
	return s;
}

KILN_CHECK_MAIN(store_suite)
