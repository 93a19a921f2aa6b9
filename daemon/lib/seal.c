/*
 * openssl-enc and kiln sealed files (kiln/seal.h, proto/sealed-format.md).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "kiln/error.h"
#include "kiln/seal.h"

/* --- openssl enc ---------------------------------------------------------- */

int kiln_osslenc_decrypt(const uint8_t *in, size_t len, const char *pass, size_t passlen,
			 enum kiln_osslenc_kdf kdf, unsigned iter, uint8_t *out, size_t *outlen,
			 char *err, size_t errlen)
{
	uint8_t kiv[48];
	EVP_CIPHER_CTX *ctx = NULL;
	int n1 = 0, n2 = 0, rc = -KILN_E_INVALID_ARGS;
	const uint8_t *salt = in + 8, *ct = in + KILN_OSSLENC_HEADER;
	size_t ctlen;

	*outlen = 0;
	if (len == 0)
		return kiln_fail(err, errlen, rc, "empty file");
	if (len < KILN_OSSLENC_HEADER || memcmp(in, KILN_OSSLENC_MAGIC, 8) != 0)
		return kiln_fail(err, errlen, rc, len < 8 || memcmp(in, KILN_OSSLENC_MAGIC, 8) != 0
				     ? "not an openssl enc file (no Salted__ header)"
				     : "truncated (header cut short)");
	ctlen = len - KILN_OSSLENC_HEADER;
	if (ctlen == 0 || ctlen % 16 != 0)
		return kiln_fail(err, errlen, rc, "truncated (ciphertext is not a whole number of blocks)");
	if (ctlen > INT_MAX)
		return kiln_fail(err, errlen, -KILN_E_TOO_LARGE, "file too large");
	if (kdf == KILN_OSSLENC_PBKDF2) {
		if (iter == 0 || iter > INT_MAX)
			return kiln_fail(err, errlen, rc, "invalid iteration count");
		if (!PKCS5_PBKDF2_HMAC(pass, (int)passlen, salt, 8, (int)iter, EVP_sha256(), 48, kiv))
			return kiln_fail(err, errlen, -KILN_E_INTERNAL, "PBKDF2 failed");
	} else {
		if (!EVP_BytesToKey(EVP_aes_256_cbc(), EVP_sha256(), salt, (const unsigned char *)pass,
				    (int)passlen, 1, kiv, kiv + 32))
			return kiln_fail(err, errlen, -KILN_E_INTERNAL, "EVP_BytesToKey failed");
	}
	ctx = EVP_CIPHER_CTX_new();
	if (!ctx || !EVP_DecryptInit_ex(ctx, EVP_aes_256_cbc(), NULL, kiv, kiv + 32)) {
		rc = kiln_fail(err, errlen, -KILN_E_INTERNAL, "cipher setup failed");
		goto out;
	}
	if (!EVP_DecryptUpdate(ctx, out, &n1, ct, (int)ctlen)) {
		rc = kiln_fail(err, errlen, -KILN_E_INTERNAL, "decryption failed");
		goto out;
	}
	if (!EVP_DecryptFinal_ex(ctx, out + n1, &n2)) {
		/* Whatever was decrypted is garbage; do not leave it around. */
		OPENSSL_cleanse(out, ctlen);
		rc = kiln_fail(err, errlen, rc, "wrong passphrase or corrupted file");
		goto out;
	}
	*outlen = (size_t)n1 + (size_t)n2;
	rc = 0;
out:
	OPENSSL_cleanse(kiv, sizeof kiv);
	EVP_CIPHER_CTX_free(ctx);
	return rc;
}

/* --- sealed format -------------------------------------------------------- */

#define OFF_VERSION 8
#define OFF_KDF 9
#define OFF_LOG2N 10
#define OFF_RSV 11
#define OFF_P1 12
#define OFF_P2 16
#define OFF_SALT 20
#define OFF_CHECK 36
#define OFF_NONCE 52
#define OFF_LEN 64

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

int kiln_seal_params_check(const struct kiln_seal_params *p, char *err, size_t errlen)
{
	int rc = -KILN_E_INVALID_ARGS;

	if (p->kdf == KILN_SEAL_KDF_SCRYPT) {
		if (p->log2_n < 10 || p->log2_n > 22)
			return kiln_fail(err, errlen, rc, "scrypt log2_n out of range 10..22");
		if (p->r < 1 || p->r > 32 || p->p < 1 || p->p > 16)
			return kiln_fail(err, errlen, rc, "scrypt r (1..32) or p (1..16) out of range");
		/* scrypt needs 128 * r * N bytes; keep it under 1 GiB. */
		if (((uint64_t)128 * p->r) << p->log2_n > ((uint64_t)1 << 30))
			return kiln_fail(err, errlen, rc, "scrypt parameters need more than 1 GiB");
		return 0;
	}
	if (p->kdf == KILN_SEAL_KDF_PBKDF2) {
		if (p->iter < 1000 || p->iter > 100000000)
			return kiln_fail(err, errlen, rc, "pbkdf2 iterations out of range 1000..100000000");
		return 0;
	}
	return kiln_fail(err, errlen, rc, "unknown key derivation function");
}

int kiln_seal_params_default(struct kiln_seal_params *p, enum kiln_seal_kdf kdf, uint32_t iter,
			     char *err, size_t errlen)
{
	memset(p, 0, sizeof *p);
	p->kdf = (uint8_t)kdf;
	if (kdf == KILN_SEAL_KDF_SCRYPT) {
		p->log2_n = 15;
		p->r = 8;
		p->p = 1;
	} else {
		p->iter = iter ? iter : 600000;
	}
	if (RAND_bytes(p->salt, sizeof p->salt) != 1)
		return kiln_fail(err, errlen, -KILN_E_INTERNAL, "no random bytes");
	return kiln_seal_params_check(p, err, errlen);
}

bool kiln_seal_params_equal(const struct kiln_seal_params *a, const struct kiln_seal_params *b)
{
	return a->kdf == b->kdf && a->log2_n == b->log2_n && a->r == b->r && a->p == b->p &&
	       a->iter == b->iter && memcmp(a->salt, b->salt, sizeof a->salt) == 0;
}

int kiln_seal_parse(const uint8_t *in, size_t len, struct kiln_seal_params *p, size_t *plain_len,
		    char *err, size_t errlen)
{
	int rc = -KILN_E_INVALID_ARGS;
	uint64_t n = 0;

	memset(p, 0, sizeof *p);
	if (len == 0)
		return kiln_fail(err, errlen, rc, "empty file");
	if (len < 8 || memcmp(in, KILN_SEAL_MAGIC, 8) != 0)
		return kiln_fail(err, errlen, rc, "not a kiln sealed file (no KILNSEAL header)");
	if (len < KILN_SEAL_HEADER)
		return kiln_fail(err, errlen, rc, "truncated (header cut short)");
	if (in[OFF_VERSION] != KILN_SEAL_VERSION) {
		snprintf(err, errlen, "unsupported sealed format version %u", in[OFF_VERSION]);
		return rc;
	}
	p->kdf = in[OFF_KDF];
	if (p->kdf == KILN_SEAL_KDF_SCRYPT) {
		p->log2_n = in[OFF_LOG2N];
		p->r = get32(in + OFF_P1);
		p->p = get32(in + OFF_P2);
	} else {
		p->iter = get32(in + OFF_P1);
		if (in[OFF_LOG2N] || get32(in + OFF_P2))
			return kiln_fail(err, errlen, rc, "corrupted header (nonzero unused fields)");
	}
	if (in[OFF_RSV])
		return kiln_fail(err, errlen, rc, "corrupted header (nonzero reserved byte)");
	memcpy(p->salt, in + OFF_SALT, KILN_SEAL_SALT);
	rc = kiln_seal_params_check(p, err, errlen);
	if (rc)
		return rc;
	for (int i = 0; i < 8; i++)
		n = n << 8 | in[OFF_LEN + i];
	if (n > SIZE_MAX - KILN_SEAL_HEADER - KILN_SEAL_TAG ||
	    len != KILN_SEAL_HEADER + n + KILN_SEAL_TAG)
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS,
			    len < KILN_SEAL_HEADER + n + KILN_SEAL_TAG
				    ? "truncated (shorter than its header says)"
				    : "corrupted (longer than its header says)");
	*plain_len = (size_t)n;
	return 0;
}

static int hmac_label(const uint8_t master[32], const char *label, uint8_t out[32])
{
	unsigned len = 32;

	return HMAC(EVP_sha256(), master, 32, (const unsigned char *)label, strlen(label), out, &len)
		       ? 0
		       : -1;
}

int kiln_seal_derive(const struct kiln_seal_params *p, const char *pass, size_t passlen,
		     struct kiln_seal_key *key, char *err, size_t errlen)
{
	uint8_t master[32], check[32];
	int rc = kiln_seal_params_check(p, err, errlen), ok;

	if (rc)
		return rc;
	if (p->kdf == KILN_SEAL_KDF_SCRYPT) {
		uint64_t n = (uint64_t)1 << p->log2_n;
		uint64_t maxmem = 128 * (uint64_t)p->r * (n + 2) + 128 * (uint64_t)p->r * p->p + (1 << 20);
		ok = EVP_PBE_scrypt(pass, passlen, p->salt, sizeof p->salt, n, p->r, p->p, maxmem,
				    master, sizeof master);
	} else {
		ok = PKCS5_PBKDF2_HMAC(pass, (int)passlen, p->salt, sizeof p->salt, (int)p->iter,
				       EVP_sha256(), sizeof master, master);
	}
	rc = -KILN_E_INTERNAL;
	if (!ok) {
		kiln_fail(err, errlen, rc, "key derivation failed");
		goto out;
	}
	if (hmac_label(master, "kiln sealed v1 encryption key", key->enc) ||
	    hmac_label(master, "kiln sealed v1 key check", check)) {
		kiln_fail(err, errlen, rc, "HMAC failed");
		goto out;
	}
	memcpy(key->check, check, sizeof key->check);
	rc = 0;
out:
	OPENSSL_cleanse(master, sizeof master);
	OPENSSL_cleanse(check, sizeof check);
	return rc;
}

/* One AES-256-GCM pass over the body; header = AAD. */
static int gcm(bool enc, const struct kiln_seal_key *key, const uint8_t *hdr, const uint8_t *in,
	       size_t len, uint8_t *out, uint8_t *tag)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int n = 0, rc = -1;
	size_t done = 0;

	if (!ctx)
		return -1;
	if (!EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, key->enc, hdr + OFF_NONCE, enc) ||
	    !EVP_CipherUpdate(ctx, NULL, &n, hdr, KILN_SEAL_HEADER))
		goto out;
	/* EVP takes int lengths; feed large bodies in chunks. */
	while (done < len) {
		int chunk = len - done > (1u << 30) ? (1 << 30) : (int)(len - done);
		if (!EVP_CipherUpdate(ctx, out + done, &n, in + done, chunk))
			goto out;
		done += (size_t)chunk;
	}
	if (!enc && !EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, KILN_SEAL_TAG, tag))
		goto out;
	if (!EVP_CipherFinal_ex(ctx, out + done, &n))
		goto out;
	if (enc && !EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, KILN_SEAL_TAG, tag))
		goto out;
	rc = 0;
out:
	EVP_CIPHER_CTX_free(ctx);
	return rc;
}

int kiln_seal_open(const struct kiln_seal_key *key, const uint8_t *in, size_t len, uint8_t *out,
		   char *err, size_t errlen)
{
	struct kiln_seal_params p;
	size_t n;
	uint8_t tag[KILN_SEAL_TAG];
	int rc = kiln_seal_parse(in, len, &p, &n, err, errlen);

	if (rc)
		return rc;
	if (CRYPTO_memcmp(in + OFF_CHECK, key->check, sizeof key->check) != 0)
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "wrong passphrase");
	memcpy(tag, in + KILN_SEAL_HEADER + n, KILN_SEAL_TAG);
	if (gcm(false, key, in, in + KILN_SEAL_HEADER, n, out, tag)) {
		OPENSSL_cleanse(out, n);
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS,
			    "authentication failed (tampered or corrupted file)");
	}
	return 0;
}

int kiln_seal_seal(const struct kiln_seal_key *key, const struct kiln_seal_params *p,
		   const uint8_t *plain, size_t len, uint8_t **out, size_t *outlen, char *err,
		   size_t errlen)
{
	uint8_t *f;
	int rc = kiln_seal_params_check(p, err, errlen);

	*out = NULL;
	*outlen = 0;
	if (rc)
		return rc;
	if (len > SIZE_MAX - KILN_SEAL_HEADER - KILN_SEAL_TAG)
		return kiln_fail(err, errlen, -KILN_E_TOO_LARGE, "file too large");
	f = calloc(1, KILN_SEAL_HEADER + len + KILN_SEAL_TAG);
	if (!f)
		return kiln_fail(err, errlen, -KILN_E_INTERNAL, "out of memory");
	memcpy(f, KILN_SEAL_MAGIC, 8);
	f[OFF_VERSION] = KILN_SEAL_VERSION;
	f[OFF_KDF] = p->kdf;
	if (p->kdf == KILN_SEAL_KDF_SCRYPT) {
		f[OFF_LOG2N] = p->log2_n;
		put32(f + OFF_P1, p->r);
		put32(f + OFF_P2, p->p);
	} else {
		put32(f + OFF_P1, p->iter);
	}
	memcpy(f + OFF_SALT, p->salt, KILN_SEAL_SALT);
	memcpy(f + OFF_CHECK, key->check, sizeof key->check);
	for (int i = 0; i < 8; i++)
		f[OFF_LEN + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
	if (RAND_bytes(f + OFF_NONCE, 12) != 1) {
		free(f);
		return kiln_fail(err, errlen, -KILN_E_INTERNAL, "no random bytes");
	}
	if (gcm(true, key, f, plain, len, f + KILN_SEAL_HEADER, f + KILN_SEAL_HEADER + len)) {
		free(f);
		return kiln_fail(err, errlen, -KILN_E_INTERNAL, "encryption failed");
	}
	*out = f;
	*outlen = KILN_SEAL_HEADER + len + KILN_SEAL_TAG;
	return 0;
}
