/*
 * Encrypted corpus files (issue 5): the `openssl enc` format and the kiln
 * sealed format (proto/sealed-format.md).
 *
 * Key material passed around here is secret: callers keep it in
 * kiln_secmem_alloc() memory or wipe it with OPENSSL_cleanse when done.
 */
#ifndef KILN_SEAL_H
#define KILN_SEAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* --- openssl enc -aes-256-cbc -salt [-pbkdf2 [-iter N]] ------------------- */

enum kiln_osslenc_kdf {
	KILN_OSSLENC_PBKDF2, /* -pbkdf2: PBKDF2-HMAC-SHA256, `iter` rounds */
	KILN_OSSLENC_LEGACY, /* no -pbkdf2: EVP_BytesToKey with SHA-256, one round */
};

#define KILN_OSSLENC_MAGIC "Salted__"
#define KILN_OSSLENC_HEADER 16 /* magic + 8-byte salt */
#define KILN_OSSLENC_DEFAULT_ITER 10000

/* Decrypts a whole `openssl enc` file in[0..len) into out, which must hold
 * len - KILN_OSSLENC_HEADER bytes; *outlen receives the plaintext length.
 * Returns 0, or -KILN_E_INVALID_ARGS with a reason in err: "not an openssl
 * enc file", "truncated ...", or "wrong passphrase or corrupted file" when
 * the padding is bad (the only signal CBC gives). */
int kiln_osslenc_decrypt(const uint8_t *in, size_t len, const char *pass, size_t passlen,
			 enum kiln_osslenc_kdf kdf, unsigned iter, uint8_t *out, size_t *outlen,
			 char *err, size_t errlen);

/* kiln_osslenc_decrypt that also adds the milliseconds spent deriving the
 * key (PBKDF2 or EVP_BytesToKey) to *kdf_ms. */
int kiln_osslenc_decrypt_timed(const uint8_t *in, size_t len, const char *pass, size_t passlen,
			       enum kiln_osslenc_kdf kdf, unsigned iter, uint8_t *out, size_t *outlen,
			       double *kdf_ms, char *err, size_t errlen);

/* --- kiln sealed format v1 ------------------------------------------------ */

#define KILN_SEAL_MAGIC "KILNSEAL"
#define KILN_SEAL_VERSION 1
#define KILN_SEAL_HEADER 72
#define KILN_SEAL_TAG 16
#define KILN_SEAL_SALT 16

enum kiln_seal_kdf {
	KILN_SEAL_KDF_SCRYPT = 1,
	KILN_SEAL_KDF_PBKDF2 = 2, /* PBKDF2-HMAC-SHA256 */
};

/* KDF parameters; files sealed together share all of them (and the salt),
 * so a loader derives the key once per distinct parameter set. */
struct kiln_seal_params {
	uint8_t kdf;        /* enum kiln_seal_kdf */
	uint8_t log2_n;     /* scrypt: N = 2^log2_n */
	uint32_t r;         /* scrypt r */
	uint32_t p;         /* scrypt p */
	uint32_t iter;      /* pbkdf2 iterations */
	uint8_t salt[KILN_SEAL_SALT];
};

/* Keys derived from the passphrase; secret. */
struct kiln_seal_key {
	uint8_t enc[32];    /* AES-256-GCM key */
	uint8_t check[16];  /* key check value stored in every header */
};

/* Checks the parameters' ranges (memory and time bounds). */
int kiln_seal_params_check(const struct kiln_seal_params *p, char *err, size_t errlen);
/* Defaults for new sealed sets: scrypt N=2^15 r=8 p=1, or PBKDF2 with
 * `iter` (0: 600000) rounds; fresh random salt. */
int kiln_seal_params_default(struct kiln_seal_params *p, enum kiln_seal_kdf kdf, uint32_t iter,
			     char *err, size_t errlen);
/* Same parameter set and salt. */
bool kiln_seal_params_equal(const struct kiln_seal_params *a, const struct kiln_seal_params *b);

/* Parses and checks a sealed file's header; *plain_len receives the
 * plaintext length.  Fails with "truncated" when the file length does not
 * match the header. */
int kiln_seal_parse(const uint8_t *in, size_t len, struct kiln_seal_params *p, size_t *plain_len,
		    char *err, size_t errlen);

/* Runs the KDF (the expensive step). */
int kiln_seal_derive(const struct kiln_seal_params *p, const char *pass, size_t passlen,
		     struct kiln_seal_key *key, char *err, size_t errlen);

/* Authenticates and decrypts a sealed file into out (plain_len bytes from
 * kiln_seal_parse).  "wrong passphrase" when the key check differs,
 * "authentication failed (tampered or corrupted file)" when the tag does. */
int kiln_seal_open(const struct kiln_seal_key *key, const uint8_t *in, size_t len, uint8_t *out,
		   char *err, size_t errlen);

/* Seals plain[0..len) into a new malloc'ed file image *out (*outlen bytes)
 * with a fresh random nonce. */
int kiln_seal_seal(const struct kiln_seal_key *key, const struct kiln_seal_params *p,
		   const uint8_t *plain, size_t len, uint8_t **out, size_t *outlen, char *err,
		   size_t errlen);

#endif
