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

/* --- openssl enc, as the CLI writes it ----------------------------------- */

/*
 * `openssl enc -e [-CIPHER] [-md DIGEST] [-pbkdf2 [-iter N]] [-nosalt | -S
 * HEX] [-K HEX -iv HEX] [-a [-A]]`.  The file records none of the cipher,
 * digest, KDF or iteration count: a passphrase file is "Salted__", an
 * 8-byte salt and the ciphertext; -nosalt, -S and -K files are the bare
 * ciphertext; -a wraps either in base64 (64-character lines, or one line
 * with -A).  Block modes (cbc, ecb) are PKCS#7-padded; stream modes (ctr,
 * cfb, ofb, chacha20) are not, and decrypt to garbage rather than fail with
 * the wrong key, so callers validate the plaintext (UTF-8) afterwards.
 */
enum kiln_osslenc_kdf {
	KILN_OSSLENC_PBKDF2, /* -pbkdf2 / -iter: PBKDF2-HMAC-digest, `iter` rounds */
	KILN_OSSLENC_LEGACY, /* neither: EVP_BytesToKey with the digest, one round */
};

#define KILN_OSSLENC_MAGIC "Salted__"
#define KILN_OSSLENC_HEADER 16 /* magic + 8-byte salt */
#define KILN_OSSLENC_DEFAULT_ITER 10000
#define KILN_OSSLENC_NAME_MAX 48
#define KILN_OSSLENC_KEY_MAX 64 /* EVP_MAX_KEY_LENGTH */
#define KILN_OSSLENC_IV_MAX 16  /* EVP_MAX_IV_LENGTH */

/* How a file was encrypted.  Holds key material when `raw`: wipe it with
 * OPENSSL_cleanse when done. */
struct kiln_osslenc_params {
	char cipher[KILN_OSSLENC_NAME_MAX]; /* EVP name as -CIPHER takes it: "aes-256-cbc" */
	char digest[KILN_OSSLENC_NAME_MAX]; /* -md: "sha256" */
	enum kiln_osslenc_kdf kdf;
	unsigned iter;                     /* pbkdf2 rounds */
	bool nosalt;                       /* headerless files: key from the passphrase alone */
	bool has_salt;                     /* headerless files: -S salt below */
	uint8_t salt[8];
	bool raw;                          /* -K/-iv instead of a passphrase */
	uint8_t key[KILN_OSSLENC_KEY_MAX], iv[KILN_OSSLENC_IV_MAX];
	size_t keylen, ivlen;              /* as given; zero-padded to the cipher's as openssl does */
};

/* aes-256-cbc, sha256, pbkdf2, 10000 rounds: `openssl enc -aes-256-cbc
 * -pbkdf2`'s defaults. */
void kiln_osslenc_params_default(struct kiln_osslenc_params *p);
/* The cipher and digest exist and `openssl enc` could have used them (no
 * AEAD, XTS or key-wrap modes); a raw key fits, and an IV is given when the
 * cipher needs one.  0 or -KILN_E_INVALID_ARGS naming the problem. */
int kiln_osslenc_params_check(const struct kiln_osslenc_params *p, char *err, size_t errlen);
/* "aes-256-cbc, pbkdf2-sha256, 10000 iterations" and the like. */
void kiln_osslenc_params_describe(const struct kiln_osslenc_params *p, char *out, size_t outlen);

/* Hex (-K, -iv, -S) to bytes: at most `max` bytes, excess ignored as
 * openssl does.  0 or -KILN_E_INVALID_ARGS. */
int kiln_osslenc_hex(const char *hex, uint8_t *out, size_t max, size_t *len, char *err, size_t errlen);

/* Undoes -a: when in[0..len) is base64 as `openssl enc -a` writes it (64
 * characters a line, or one line with -A; CRLF allowed), *out is a new
 * malloc'ed decoded copy and the result is 1.  0 when it is not in that
 * form; -KILN_E_INTERNAL when out of memory. */
int kiln_osslenc_unbase64(const uint8_t *in, size_t len, uint8_t **out, size_t *outlen);

/* What a file that is not openssl enc output evidently is ("a gpg
 * ASCII-armored file", "an age file", "plain text", ...), or NULL. */
const char *kiln_osslenc_foreign(const uint8_t *in, size_t len);

/* Decrypts one (binary, already un-base64'd) file into out, which must
 * hold `len` bytes; *outlen receives the plaintext length.  A file with the
 * Salted__ header takes its salt from it (refused with `raw`); a headerless
 * one needs `raw`, `nosalt` or `has_salt`.  0, or -KILN_E_INVALID_ARGS with
 * a reason: "not encrypted (...)", "truncated ...", "does not decrypt with
 * <params> (bad padding): wrong passphrase or options"; nothing of a failed
 * decryption is left in out. */
int kiln_osslenc_decrypt(const uint8_t *in, size_t len, const char *pass, size_t passlen,
			 const struct kiln_osslenc_params *p, uint8_t *out, size_t *outlen,
			 char *err, size_t errlen);

/* Parameters kiln_osslenc_detect() keeps as given instead of trying. */
enum {
	KILN_OSSLENC_FIX_CIPHER = 1u << 0,
	KILN_OSSLENC_FIX_DIGEST = 1u << 1,
	KILN_OSSLENC_FIX_KDF = 1u << 2,
	KILN_OSSLENC_FIX_ITER = 1u << 3,
};

/*
 * Tries the common combinations on one passphrase file, the fixed ones of
 * `base` kept: ciphers aes-{256,128,192}-cbc, aes-{256,128}-ctr,
 * aes-256-cfb, aes-256-ofb, chacha20, camellia-256-cbc, aria-256-cbc,
 * des-ede3-cbc; key derivations pbkdf2 with sha256, sha512, sha1 (at
 * base->iter rounds) and legacy with sha256, md5, sha1 (the documented,
 * bounded list: at most 6 key derivations and 66 decryptions).  A
 * combination matches when it decrypts (padding) to valid UTF-8 text.  On
 * success *found holds it and out (len bytes) the plaintext.  *tried
 * counts the combinations tried.
 */
int kiln_osslenc_detect(const uint8_t *in, size_t len, const char *pass, size_t passlen,
			const struct kiln_osslenc_params *base, unsigned fixed,
			struct kiln_osslenc_params *found, uint8_t *out, size_t *outlen,
			unsigned *tried, char *err, size_t errlen);

/* kiln_osslenc_decrypt that also adds the milliseconds spent deriving the
 * key (PBKDF2 or EVP_BytesToKey) to *kdf_ms. */
int kiln_osslenc_decrypt_timed(const uint8_t *in, size_t len, const char *pass, size_t passlen,
			       const struct kiln_osslenc_params *p, uint8_t *out, size_t *outlen,
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
