/*
 * The encrypted corpus formats: `openssl enc` files and kiln sealed files
 * (headers, key checks, decryption), with the plaintext then taken as a
 * corpus document (UTF-8 validation, case folding) as corpus.load does.
 *
 * Input: byte 0 picks the path (bit 0..1: 0 openssl enc with PBKDF2 at one
 * iteration, 1 openssl enc legacy KDF, 2..3 sealed), the rest is the file.
 * The passphrase is "fuzz".  Sealed files derive their key only when the
 * header names cheap parameters (PBKDF2 at the minimum 1000 rounds, scrypt
 * N=2^10 r<=8 p=1; cached), otherwise a fixed key exercises the key check,
 * so the fuzzer never waits on an expensive KDF.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "kiln/corpus.h"
#include "kiln/error.h"
#include "kiln/seal.h"

static const char pass[] = "fuzz";

/* Hands the plaintext to a document, as act_corpus_load.c does after decrypting. */
static void as_document(const uint8_t *plain, size_t n)
{
	struct kiln_cdoc doc;
	struct kiln_cquery *q;
	bool locked;
	char err[256];
	uint8_t *buf = kiln_secmem_alloc(n + 1, &locked);

	if (!buf)
		abort();
	memcpy(buf, plain, n);
	if (kiln_cdoc_init(&doc, buf, n, n + 1, locked, err, sizeof(err)) != 0) {
		kiln_secmem_free(buf, n + 1);
		return;
	}
	if (kiln_cquery_new("the", 3, KILN_CQ_ICASE | KILN_CQ_WORD, &q, err, sizeof(err)) == 0) {
		kiln_cdoc_count(&doc, q);
		kiln_cquery_free(q);
	}
	kiln_cdoc_clear(&doc);
}

static void osslenc(const uint8_t *in, size_t len, enum kiln_osslenc_kdf kdf)
{
	/* Exactly the documented output size, so ASan sees any overrun. */
	size_t cap = len > KILN_OSSLENC_HEADER ? len - KILN_OSSLENC_HEADER : 1, n;
	uint8_t *out = malloc(cap);
	char err[256];

	if (!out)
		abort();
	if (kiln_osslenc_decrypt(in, len, pass, strlen(pass), kdf, 1, out, &n, err, sizeof(err)) == 0) {
		if (n > cap)
			abort();
		as_document(out, n);
	}
	free(out);
}

static bool cheap(const struct kiln_seal_params *p)
{
	if (p->kdf == KILN_SEAL_KDF_PBKDF2)
		return p->iter <= 1000;
	return p->log2_n == 10 && p->r <= 8 && p->p == 1;
}

static void sealed(const uint8_t *in, size_t len)
{
	static struct kiln_seal_params cached_params;
	static struct kiln_seal_key cached_key;
	static bool have_cached;
	struct kiln_seal_params p;
	struct kiln_seal_key key;
	size_t plain_len;
	uint8_t *out;
	char err[256];

	if (kiln_seal_parse(in, len, &p, &plain_len, err, sizeof(err)) != 0)
		return;
	if (plain_len + KILN_SEAL_HEADER + KILN_SEAL_TAG != len)
		abort();
	memset(&key, 0, sizeof(key));
	if (have_cached && kiln_seal_params_equal(&p, &cached_params)) {
		key = cached_key;
	} else if (cheap(&p)) {
		if (kiln_seal_derive(&p, pass, strlen(pass), &key, err, sizeof(err)) != 0)
			abort();
		cached_params = p;
		cached_key = key;
		have_cached = true;
	}
	out = malloc(plain_len ? plain_len : 1);
	if (!out)
		abort();
	if (kiln_seal_open(&key, in, len, out, err, sizeof(err)) == 0)
		as_document(out, plain_len);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	fz_quiet();
	switch (data[0] & 3) {
	case 0:
		osslenc(data + 1, size - 1, KILN_OSSLENC_PBKDF2);
		break;
	case 1:
		osslenc(data + 1, size - 1, KILN_OSSLENC_LEGACY);
		break;
	default:
		sealed(data + 1, size - 1);
		break;
	}
	return 0;
}
