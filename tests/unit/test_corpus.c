/*
 * Corpus library: Unicode classes and counts against Python's re module,
 * openssl-enc against the openssl CLI, the sealed format, search.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"
#include "kiln/corpus.h"
#include "kiln/error.h"
#include "kiln/seal.h"

#define PY "/usr/bin/python3"

/* The outside references (Python's re, the openssl CLI) are required test
 * tools (make deps-test installs them): without one the comparison cannot
 * run, and that is a failure, not a pass. */
static void require(const char *path)
{
	ck_assert_msg(access(path, X_OK) == 0, "required test tool %s is missing (make deps-test installs it)",
		      path);
}

static void doc_from(struct kiln_cdoc *d, const char *s, size_t len)
{
	bool locked;
	char err[128];
	uint8_t *t = kiln_secmem_alloc(len + 1, &locked);

	ck_assert_ptr_nonnull(t);
	memcpy(t, s, len);
	ck_assert_int_eq(kiln_cdoc_init(d, t, len, len + 1, locked, err, sizeof err), 0);
}

static uint64_t count(const struct kiln_cdoc *d, const char *w, unsigned flags)
{
	struct kiln_cquery *q;
	char err[128];

	ck_assert_int_eq(kiln_cquery_new(w, strlen(w), flags, &q, err, sizeof err), 0);
	uint64_t n = kiln_cdoc_count(d, q);
	kiln_cquery_free(q);
	return n;
}

/* Every code point: \w, lower-case and match key, as Python 3.11 sees them. */
START_TEST(test_classes_match_python)
{
	static const char script[] =
		PY " -c '\n"
		"import sys, _sre\n"
		"from re._casefix import _EXTRA_CASES as F\n"
		"out = bytearray()\n"
		"for c in range(0x110000):\n"
		"    ch = chr(c)\n"
		"    lo = _sre.unicode_tolower(c)\n"
		"    cls = {lo, *F.get(lo, ())}\n"
		"    key = 0x3b9 if 0x3b9 in cls else min(cls)\n"
		"    w = 1 if (ch.isalnum() or ch == \"_\") else 0\n"
		"    out += bytes([w]) + lo.to_bytes(4, \"little\") + key.to_bytes(4, \"little\")\n"
		"sys.stdout.buffer.write(out)\n'";
	uint8_t rec[9];
	uint32_t bad = 0;

	require(PY);
	FILE *f = popen(script, "r");
	ck_assert_ptr_nonnull(f);
	for (uint32_t c = 0; c < 0x110000; c++) {
		ck_assert_int_eq(fread(rec, 1, sizeof rec, f), sizeof rec);
		uint32_t lo = (uint32_t)rec[1] | (uint32_t)rec[2] << 8 | (uint32_t)rec[3] << 16 |
			      (uint32_t)rec[4] << 24;
		uint32_t key = (uint32_t)rec[5] | (uint32_t)rec[6] << 8 | (uint32_t)rec[7] << 16 |
			       (uint32_t)rec[8] << 24;
		if (kiln_uword_isword(c) != (rec[0] != 0) || kiln_uword_lower(c) != lo ||
		    kiln_uword_key(c) != key) {
			if (bad++ < 10)
				fprintf(stderr, "U+%04X: isword %d/%d lower %X/%X key %X/%X\n", c,
					kiln_uword_isword(c), rec[0], kiln_uword_lower(c), lo,
					kiln_uword_key(c), key);
		}
		/* The fold keeps word classes except U+0345 (listed per document). */
		if (c != 0x345 && kiln_uword_isword(c) != kiln_uword_isword(kiln_uword_key(c)))
			bad++;
	}
	pclose(f);
	ck_assert_uint_eq(bad, 0);
}
END_TEST

/* Tricky characters: case pairs of different UTF-8 length, sre equivalences,
 * a combining mark, digits, punctuation. */
static const char *const alphabet[] = {
	"a", "A", "s", "S", "\xc5\xbf" /* ſ */, "k", "K", "\xe2\x84\xaa" /* Kelvin */,
	"\xc3\xa9" /* é */, "\xc3\x89" /* É */, "\xcd\x85" /* U+0345 */, "\xce\xb9" /* ι */,
	"\xce\x99" /* Ι */, "\xe1\xbe\xbe" /* U+1FBE */, "\xc3\x9f" /* ß */, "\xe1\xba\x9e" /* ẞ */,
	"i", "I", "\xc4\xb0" /* İ */, "\xc4\xb1" /* ı */, "\xcc\x81" /* combining acute */,
	"_", "1", "\xd9\xa1" /* Arabic-Indic one */, "+", "-", " ", "\n", "'", "\xe4\xb8\xad" /* 中 */,
	"\xc8\xba" /* Ⱥ */, "\xe2\xb1\xa5" /* ⱥ */, "\xcf\x82" /* ς */, "\xcf\x83" /* σ */,
};
#define NALPHA (sizeof alphabet / sizeof alphabet[0])

static size_t random_string(char *buf, unsigned *seed, int maxlen, bool words)
{
	int n = 1 + rand_r(seed) % maxlen;
	size_t len = 0;

	for (int i = 0; i < n; i++) {
		const char *a = alphabet[rand_r(seed) % NALPHA];
		if (words && (a[0] == '\n' || a[0] == ' ') && i == 0)
			a = "a";
		memcpy(buf + len, a, strlen(a));
		len += strlen(a);
	}
	buf[len] = 0;
	return len;
}

/* Random texts and words over the tricky alphabet, counted both ways,
 * compared with re.findall in Python. */
START_TEST(test_count_matches_python)
{
	static const char script[] =
		PY " -c '\n"
		"import sys, re\n"
		"data = open(sys.argv[1], \"rb\").read().decode()\n"
		"for rec in data.split(\"\\x01\")[:-1]:\n"
		"    text, word = rec.split(\"\\x00\")\n"
		"    p = r\"\\b\" + re.escape(word) + r\"\\b\"\n"
		"    print(len(re.findall(p, text)), len(re.findall(p, text, re.I)),\n"
		"          len(re.findall(re.escape(word), text, re.I)))\n' ";
	char path[] = "/tmp/kiln-corpus-XXXXXX";
	char cmd[512], text[1024], word[64];
	unsigned seed = 12345;
	enum { N = 3000 };
	uint64_t got[N][3];
	int fd;

	require(PY);
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	FILE *f = fdopen(fd, "w");
	for (int i = 0; i < N; i++) {
		size_t tl = random_string(text, &seed, 150, false);
		size_t wl = random_string(word, &seed, 3, true);
		struct kiln_cdoc d;
		doc_from(&d, text, tl);
		got[i][0] = count(&d, word, KILN_CQ_WORD);
		got[i][1] = count(&d, word, KILN_CQ_WORD | KILN_CQ_ICASE);
		got[i][2] = count(&d, word, KILN_CQ_ICASE);
		kiln_cdoc_clear(&d);
		fwrite(text, 1, tl, f);
		fputc(0, f);
		fwrite(word, 1, wl, f);
		fputc(1, f);
	}
	fclose(f);
	snprintf(cmd, sizeof cmd, "%s %s", script, path);
	FILE *p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	for (int i = 0; i < N; i++) {
		unsigned long long a, b, c;
		ck_assert_int_eq(fscanf(p, "%llu %llu %llu", &a, &b, &c), 3);
		if (a != got[i][0] || b != got[i][1] || c != got[i][2])
			ck_abort_msg("record %d: python %llu %llu %llu, kiln %llu %llu %llu", i, a, b,
				     c, (unsigned long long)got[i][0], (unsigned long long)got[i][1],
				     (unsigned long long)got[i][2]);
	}
	pclose(p);
	unlink(path);
}
END_TEST

START_TEST(test_utf8_strict)
{
	struct {
		const char *s;
		size_t valid;
	} cases[] = {
		{"abc", 3},
		{"a\xc3\xa9", 3},
		{"a\xc0\x80", 1},         /* overlong NUL */
		{"\xed\xa0\x80", 0},      /* surrogate */
		{"\xf4\x90\x80\x80", 0},  /* > U+10FFFF */
		{"ab\xe2\x82", 2},        /* cut short */
		{"\xf0\x9f\x98\x80z", 5}, /* emoji */
		{"abcdefghij\xff", 10},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		ck_assert_uint_eq(
			kiln_utf8_valid_prefix((const uint8_t *)cases[i].s, strlen(cases[i].s)),
			cases[i].valid);
}
END_TEST

START_TEST(test_doc_rejects_bad_utf8)
{
	struct kiln_cdoc d;
	bool locked;
	char err[128];
	uint8_t *t = kiln_secmem_alloc(8, &locked);

	memcpy(t, "ok\xff!", 4);
	ck_assert_int_eq(kiln_cdoc_init(&d, t, 4, 8, locked, err, sizeof err), -KILN_E_INVALID_ARGS);
	ck_assert_ptr_nonnull(strstr(err, "offset 2"));
	kiln_secmem_free(t, 8);
}
END_TEST

START_TEST(test_search_lines_columns)
{
	static const char text[] = "Café au lait\nno match\n\xc3\x89t\xc3\xa9: CAFÉ, café\nend";
	struct kiln_cdoc d;
	struct kiln_cquery *q;
	struct kiln_chit hits[4];
	char err[64];

	doc_from(&d, text, strlen(text));
	ck_assert_int_eq(kiln_cquery_new("café", strlen("café"), KILN_CQ_ICASE, &q, err, sizeof err), 0);
	ck_assert_int_eq(kiln_cdoc_search(&d, q, hits, 4, NULL), 3);
	ck_assert_uint_eq(hits[0].line, 1);
	ck_assert_uint_eq(hits[0].column, 1);
	ck_assert_uint_eq(hits[1].line, 3);
	ck_assert_uint_eq(hits[1].column, 6);
	ck_assert_uint_eq(hits[2].column, 12);
	ck_assert_int_eq(hits[2].line_len, strlen("\xc3\x89t\xc3\xa9: CAFÉ, café"));
	ck_assert_int_eq(memcmp(d.text + hits[2].line_off, "\xc3\x89t\xc3\xa9:", 6), 0);
	/* Truncation: one more than max is reported. */
	ck_assert_int_eq(kiln_cdoc_search(&d, q, hits, 1, NULL), 2);
	kiln_cquery_free(q);
	ck_assert_int_eq(kiln_cquery_new("", 0, 0, &q, err, sizeof err), -KILN_E_INVALID_ARGS);
	ck_assert_int_eq(kiln_cquery_new("\xff", 1, 0, &q, err, sizeof err), -KILN_E_INVALID_ARGS);
	kiln_cdoc_clear(&d);
}
END_TEST

/* Memory held counts whole pages: one block when no character folds, a
 * second for the fold otherwise. */
START_TEST(test_doc_memory)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	struct kiln_cdoc d;

	ck_assert_uint_eq(kiln_secmem_size(0), pg);
	ck_assert_uint_eq(kiln_secmem_size(pg), pg);
	ck_assert_uint_eq(kiln_secmem_size(pg + 1), 2 * pg);
	doc_from(&d, "plain text", 10);
	ck_assert_uint_eq(kiln_cdoc_memory(&d), pg);
	kiln_cdoc_clear(&d);
	doc_from(&d, "Folded Text", 11);
	ck_assert_uint_eq(d.fold_cap, 12);
	ck_assert_uint_eq(kiln_cdoc_memory(&d), 2 * pg);
	kiln_cdoc_clear(&d);
}
END_TEST

/* --- openssl enc ------------------------------------------------------------ */

static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = malloc(1 << 20);

	ck_assert_ptr_nonnull(f);
	*len = fread(buf, 1, 1 << 20, f);
	fclose(f);
	return buf;
}

/* Encrypts `plain` with the openssl CLI and returns the file image. */
static uint8_t *openssl_enc(const char *plain, const char *opts, size_t *len)
{
	char in[] = "/tmp/kiln-enc-in-XXXXXX", cmd[512];
	int fd = mkstemp(in);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, plain, strlen(plain)), (ssize_t)strlen(plain));
	close(fd);
	snprintf(cmd, sizeof cmd,
		 "openssl enc -aes-256-cbc -salt %s -pass pass:hunter2 -in %s -out %s.enc 2>/dev/null",
		 opts, in, in);
	ck_assert_int_eq(system(cmd), 0);
	snprintf(cmd, sizeof cmd, "%s.enc", in);
	uint8_t *buf = slurp(cmd, len);
	unlink(cmd);
	unlink(in);
	return buf;
}

static void check_osslenc(const char *opts, enum kiln_osslenc_kdf kdf, unsigned iter)
{
	const char *plain = "Dear diary, caf\xc3\xa9 again.\n";
	size_t len, outlen;
	char err[128];

	require("/usr/bin/openssl");
	uint8_t *f = openssl_enc(plain, opts, &len);
	uint8_t *out = malloc(len);
	ck_assert_int_eq(kiln_osslenc_decrypt(f, len, "hunter2", 7, kdf, iter, out, &outlen, err,
					      sizeof err), 0);
	ck_assert_uint_eq(outlen, strlen(plain));
	ck_assert_int_eq(memcmp(out, plain, outlen), 0);
	free(out);
	free(f);
}

START_TEST(test_osslenc_pbkdf2_default)
{
	check_osslenc("-pbkdf2", KILN_OSSLENC_PBKDF2, KILN_OSSLENC_DEFAULT_ITER);
}
END_TEST

START_TEST(test_osslenc_pbkdf2_iter)
{
	check_osslenc("-pbkdf2 -iter 1234", KILN_OSSLENC_PBKDF2, 1234);
}
END_TEST

START_TEST(test_osslenc_legacy)
{
	check_osslenc("-md sha256", KILN_OSSLENC_LEGACY, 0);
}
END_TEST

START_TEST(test_osslenc_errors)
{
	size_t len, outlen;
	char err[128];

	require("/usr/bin/openssl");
	/* A fixed salt makes the wrong-passphrase outcome deterministic; with
	 * -S the CLI leaves out the header, so add it as it would. */
	size_t bodylen;
	uint8_t *body = openssl_enc("secret text that spans two blocks",
				    "-pbkdf2 -S 0102030405060708", &bodylen);
	len = bodylen + 16;
	uint8_t *f = malloc(len);
	memcpy(f, "Salted__\x01\x02\x03\x04\x05\x06\x07\x08", 16);
	memcpy(f + 16, body, bodylen);
	free(body);
	uint8_t *out = malloc(len);
	ck_assert_int_eq(kiln_osslenc_decrypt(f, len, "wrong", 5, KILN_OSSLENC_PBKDF2, 10000, out,
					      &outlen, err, sizeof err), -KILN_E_INVALID_ARGS);
	ck_assert_str_eq(err, "wrong passphrase or corrupted file");
	ck_assert_int_eq(kiln_osslenc_decrypt(f, len - 5, "hunter2", 7, KILN_OSSLENC_PBKDF2, 10000,
					      out, &outlen, err, sizeof err), -KILN_E_INVALID_ARGS);
	ck_assert_ptr_nonnull(strstr(err, "truncated"));
	ck_assert_int_eq(kiln_osslenc_decrypt(f, 0, "hunter2", 7, KILN_OSSLENC_PBKDF2, 10000, out,
					      &outlen, err, sizeof err), -KILN_E_INVALID_ARGS);
	ck_assert_str_eq(err, "empty file");
	f[0] = 'X';
	ck_assert_int_eq(kiln_osslenc_decrypt(f, len, "hunter2", 7, KILN_OSSLENC_PBKDF2, 10000, out,
					      &outlen, err, sizeof err), -KILN_E_INVALID_ARGS);
	ck_assert_ptr_nonnull(strstr(err, "Salted__"));
	free(out);
	free(f);
}
END_TEST

/* --- sealed ----------------------------------------------------------------- */

static void seal_round_trip(enum kiln_seal_kdf kdf)
{
	static const char plain[] = "sealed diary entry\n";
	struct kiln_seal_params p, q;
	struct kiln_seal_key k, bad;
	uint8_t *f, out[64];
	size_t len, n;
	char err[128];

	ck_assert_int_eq(kiln_seal_params_default(&p, kdf, 1000, err, sizeof err), 0);
	if (kdf == KILN_SEAL_KDF_SCRYPT)
		p.log2_n = 10; /* fast for tests */
	ck_assert_int_eq(kiln_seal_derive(&p, "pw", 2, &k, err, sizeof err), 0);
	ck_assert_int_eq(kiln_seal_seal(&k, &p, (const uint8_t *)plain, strlen(plain), &f, &len, err,
					sizeof err), 0);
	ck_assert_uint_eq(len, KILN_SEAL_HEADER + strlen(plain) + KILN_SEAL_TAG);
	ck_assert_int_eq(kiln_seal_parse(f, len, &q, &n, err, sizeof err), 0);
	ck_assert(kiln_seal_params_equal(&p, &q));
	ck_assert_uint_eq(n, strlen(plain));
	ck_assert_int_eq(kiln_seal_open(&k, f, len, out, err, sizeof err), 0);
	ck_assert_int_eq(memcmp(out, plain, n), 0);

	ck_assert_int_eq(kiln_seal_derive(&p, "pW", 2, &bad, err, sizeof err), 0);
	ck_assert_int_eq(kiln_seal_open(&bad, f, len, out, err, sizeof err), -KILN_E_INVALID_ARGS);
	ck_assert_str_eq(err, "wrong passphrase");

	f[KILN_SEAL_HEADER + 3] ^= 1; /* body */
	ck_assert_int_eq(kiln_seal_open(&k, f, len, out, err, sizeof err), -KILN_E_INVALID_ARGS);
	ck_assert_ptr_nonnull(strstr(err, "authentication failed"));
	f[KILN_SEAL_HEADER + 3] ^= 1;
	f[60] ^= 0x80; /* nonce, covered as associated data */
	ck_assert_int_eq(kiln_seal_open(&k, f, len, out, err, sizeof err), -KILN_E_INVALID_ARGS);
	ck_assert_ptr_nonnull(strstr(err, "authentication failed"));
	f[60] ^= 0x80;
	ck_assert_int_eq(kiln_seal_open(&k, f, len - 1, out, err, sizeof err), -KILN_E_INVALID_ARGS);
	ck_assert_ptr_nonnull(strstr(err, "truncated"));
	f[8] = 9;
	ck_assert_int_eq(kiln_seal_parse(f, len, &q, &n, err, sizeof err), -KILN_E_INVALID_ARGS);
	ck_assert_ptr_nonnull(strstr(err, "version 9"));
	free(f);
}

START_TEST(test_seal_scrypt)
{
	seal_round_trip(KILN_SEAL_KDF_SCRYPT);
}
END_TEST

START_TEST(test_seal_pbkdf2)
{
	seal_round_trip(KILN_SEAL_KDF_PBKDF2);
}
END_TEST

/* Each range bound on its own, with the other parameters valid and the
 * memory bound (128 * r * 2^log2_n <= 1 GiB) not reached, so only the range
 * check can refuse.  The header parser applies the same check. */
static void expect_params(uint8_t kdf, unsigned log2_n, uint32_t r, uint32_t p, uint32_t iter, int want,
			  const char *msg)
{
	struct kiln_seal_params sp;
	char err[128] = "";

	memset(&sp, 0, sizeof sp);
	sp.kdf = kdf;
	sp.log2_n = (uint8_t)log2_n;
	sp.r = r;
	sp.p = p;
	sp.iter = iter;
	ck_assert_msg(kiln_seal_params_check(&sp, err, sizeof err) == want,
		      "kdf %u log2_n %u r %u p %u iter %u: expected %d (%s)", kdf, log2_n, r, p, iter, want, err);
	if (msg)
		ck_assert_msg(strstr(err, msg), "kdf %u log2_n %u r %u p %u iter %u: message \"%s\" lacks \"%s\"",
			      kdf, log2_n, r, p, iter, err, msg);
}

START_TEST(test_seal_params_limits)
{
	const uint8_t S = KILN_SEAL_KDF_SCRYPT, P = KILN_SEAL_KDF_PBKDF2;
	const int BAD = -KILN_E_INVALID_ARGS;
	struct kiln_seal_params p;
	char err[128];

	ck_assert_int_eq(kiln_seal_params_default(&p, KILN_SEAL_KDF_SCRYPT, 0, err, sizeof err), 0);
	ck_assert_uint_eq(p.log2_n, 15);
	ck_assert_uint_eq(p.r, 8);
	ck_assert_uint_eq(p.p, 1);
	/* log2_n 10..22: both edges pass, one beyond fails on the range. */
	expect_params(S, 10, 8, 1, 0, 0, NULL);
	expect_params(S, 22, 1, 1, 0, 0, NULL);
	expect_params(S, 9, 8, 1, 0, BAD, "log2_n");
	expect_params(S, 0, 8, 1, 0, BAD, "log2_n");
	/* 2^23 * 128 * 1 is exactly 1 GiB: only the range refuses it. */
	expect_params(S, 23, 1, 1, 0, BAD, "log2_n");
	/* r 1..32 and p 1..16. */
	expect_params(S, 10, 1, 1, 0, 0, NULL);
	expect_params(S, 10, 32, 16, 0, 0, NULL);
	expect_params(S, 10, 0, 1, 0, BAD, "r (1..32)");
	expect_params(S, 10, 33, 1, 0, BAD, "r (1..32)");
	expect_params(S, 10, 8, 0, 0, BAD, "p (1..16)");
	expect_params(S, 10, 8, 17, 0, BAD, "p (1..16)");
	/* In range but over 1 GiB. */
	expect_params(S, 22, 32, 1, 0, BAD, "1 GiB");
	/* PBKDF2 iterations 1000..100000000. */
	expect_params(P, 0, 0, 0, 1000, 0, NULL);
	expect_params(P, 0, 0, 0, 100000000, 0, NULL);
	expect_params(P, 0, 0, 0, 999, BAD, "iterations");
	expect_params(P, 0, 0, 0, 0, BAD, "iterations");
	expect_params(P, 0, 0, 0, 100000001, BAD, "iterations");
	expect_params(7, 10, 8, 1, 1000, BAD, "unknown key derivation");
}
END_TEST

/* A sealed file whose header names weak parameters is refused when parsed,
 * before any key derivation. */
START_TEST(test_seal_parse_refuses_weak_headers)
{
	static const struct {
		uint8_t kdf, log2_n;
		uint32_t r, p, iter;
	} weak[] = {
		{ KILN_SEAL_KDF_SCRYPT, 9, 8, 1, 0 },	{ KILN_SEAL_KDF_SCRYPT, 1, 8, 1, 0 },
		{ KILN_SEAL_KDF_SCRYPT, 10, 0, 1, 0 },	{ KILN_SEAL_KDF_SCRYPT, 10, 8, 0, 0 },
		{ KILN_SEAL_KDF_SCRYPT, 10, 40, 1, 0 }, { KILN_SEAL_KDF_PBKDF2, 0, 0, 0, 1 },
	};
	const char *plain = "sealed text";
	char err[128];

	for (size_t i = 0; i < sizeof weak / sizeof weak[0]; i++) {
		struct kiln_seal_params sp, got;
		struct kiln_seal_key key;
		uint8_t *file;
		size_t flen, plen;

		ck_assert_int_eq(kiln_seal_params_default(&sp, weak[i].kdf, 1000, err, sizeof err), 0);
		if (weak[i].kdf == KILN_SEAL_KDF_SCRYPT)
			sp.log2_n = 10;
		ck_assert_int_eq(kiln_seal_derive(&sp, "pw", 2, &key, err, sizeof err), 0);
		/* Seal with valid parameters, then write weak ones into the header
		 * (the parser must refuse them whatever the rest says). */
		ck_assert_int_eq(kiln_seal_seal(&key, &sp, (const uint8_t *)plain, strlen(plain), &file, &flen, err,
						sizeof err),
				 0);
		ck_assert_int_eq(kiln_seal_parse(file, flen, &got, &plen, err, sizeof err), 0);
		sp.log2_n = weak[i].log2_n;
		sp.r = weak[i].r;
		sp.p = weak[i].p;
		sp.iter = weak[i].iter;
		file[10] = sp.log2_n;
		for (int b = 0; b < 4; b++) {
			file[12 + b] = (uint8_t)((weak[i].kdf == KILN_SEAL_KDF_SCRYPT ? sp.r : sp.iter) >> (24 - 8 * b));
			file[16 + b] = (uint8_t)(sp.p >> (24 - 8 * b));
		}
		ck_assert_msg(kiln_seal_parse(file, flen, &got, &plen, err, sizeof err) == -KILN_E_INVALID_ARGS,
			      "weak header %zu parsed", i);
		free(file);
	}
}
END_TEST

static Suite *corpus_suite(void)
{
	Suite *s = suite_create("corpus");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_classes_match_python);
	tcase_add_test(tc, test_count_matches_python);
	tcase_add_test(tc, test_utf8_strict);
	tcase_add_test(tc, test_doc_rejects_bad_utf8);
	tcase_add_test(tc, test_search_lines_columns);
	tcase_add_test(tc, test_doc_memory);
	tcase_add_test(tc, test_osslenc_pbkdf2_default);
	tcase_add_test(tc, test_osslenc_pbkdf2_iter);
	tcase_add_test(tc, test_osslenc_legacy);
	tcase_add_test(tc, test_osslenc_errors);
	tcase_add_test(tc, test_seal_scrypt);
	tcase_add_test(tc, test_seal_pbkdf2);
	tcase_add_test(tc, test_seal_params_limits);
	tcase_add_test(tc, test_seal_parse_refuses_weak_headers);
	suite_add_tcase(s, tc);
	return s;
}

KILN_CHECK_MAIN(corpus_suite)
