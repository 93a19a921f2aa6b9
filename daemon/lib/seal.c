/*
 * openssl-enc and kiln sealed files (kiln/seal.h, proto/sealed-format.md).
 */
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "kiln/error.h"
#include "kiln/seal.h"
#include "kiln/utf8.h"

/* --- openssl enc ---------------------------------------------------------- */

void kiln_osslenc_params_default(struct kiln_osslenc_params *p)
{
	memset(p, 0, sizeof *p);
	snprintf(p->cipher, sizeof p->cipher, "aes-256-cbc");
	snprintf(p->digest, sizeof p->digest, "sha256");
	p->kdf = KILN_OSSLENC_PBKDF2;
	p->iter = KILN_OSSLENC_DEFAULT_ITER;
}

/* The cipher if `openssl enc` can use it (new reference), else NULL with
 * the reason. */
static EVP_CIPHER *fetch_cipher(const char *name, char *err, size_t errlen)
{
	EVP_CIPHER *c = EVP_CIPHER_fetch(NULL, name, NULL);
	int mode;

	if (!c) {
		snprintf(err, errlen, "unknown cipher \"%s\" (OpenSSL has none of that name)", name);
		return NULL;
	}
	mode = EVP_CIPHER_get_mode(c);
	if ((EVP_CIPHER_get_flags(c) & EVP_CIPH_FLAG_AEAD_CIPHER) || mode == EVP_CIPH_GCM_MODE ||
	    mode == EVP_CIPH_CCM_MODE || mode == EVP_CIPH_OCB_MODE || mode == EVP_CIPH_XTS_MODE ||
	    mode == EVP_CIPH_WRAP_MODE || mode == EVP_CIPH_SIV_MODE) {
		snprintf(err, errlen, "cipher \"%s\" is not one openssl enc supports (AEAD, XTS or key wrap)",
			 name);
		EVP_CIPHER_free(c);
		return NULL;
	}
	return c;
}

int kiln_osslenc_params_check(const struct kiln_osslenc_params *p, char *err, size_t errlen)
{
	EVP_CIPHER *c = fetch_cipher(p->cipher, err, errlen);
	EVP_MD *md = NULL;
	int rc = -KILN_E_INVALID_ARGS;

	if (!c)
		return rc;
	if (p->raw && p->keylen > (size_t)EVP_CIPHER_get_key_length(c))
		snprintf(err, errlen, "key is %zu bytes; %s takes %d", p->keylen, p->cipher,
			 EVP_CIPHER_get_key_length(c));
	else if (p->raw && EVP_CIPHER_get_iv_length(c) > 0 && p->ivlen == 0)
		snprintf(err, errlen, "%s needs an iv with a raw key (openssl: iv undefined)", p->cipher);
	else if (!p->raw && p->kdf == KILN_OSSLENC_PBKDF2 && (p->iter < 1 || p->iter > 100000000))
		snprintf(err, errlen, "iterations must be 1..100000000");
	else if (!p->raw && !(md = EVP_MD_fetch(NULL, p->digest, NULL)))
		snprintf(err, errlen, "unknown digest \"%s\" (OpenSSL has none of that name)", p->digest);
	else
		rc = 0;
	EVP_MD_free(md);
	EVP_CIPHER_free(c);
	return rc;
}

void kiln_osslenc_params_describe(const struct kiln_osslenc_params *p, char *out, size_t outlen)
{
	if (p->raw)
		snprintf(out, outlen, "%s with the given key and iv", p->cipher);
	else if (p->kdf == KILN_OSSLENC_PBKDF2)
		snprintf(out, outlen, "%s, pbkdf2-%s, %u iterations%s", p->cipher, p->digest, p->iter,
			 p->nosalt ? ", no salt" : "");
	else
		snprintf(out, outlen, "%s, legacy EVP_BytesToKey-%s%s", p->cipher, p->digest,
			 p->nosalt ? ", no salt" : "");
}

int kiln_osslenc_hex(const char *hex, uint8_t *out, size_t max, size_t *len, char *err, size_t errlen)
{
	size_t n = strlen(hex);

	*len = 0;
	if (n == 0 || n % 2) {
		snprintf(err, errlen, "expected an even number of hex digits");
		return -KILN_E_INVALID_ARGS;
	}
	for (size_t i = 0; i < n; i += 2) {
		int v;
		if (sscanf(hex + i, "%2x", &v) != 1 || !isxdigit((unsigned char)hex[i]) ||
		    !isxdigit((unsigned char)hex[i + 1])) {
			snprintf(err, errlen, "not hex");
			return -KILN_E_INVALID_ARGS;
		}
		if (*len < max)
			out[(*len)++] = (uint8_t)v;
	}
	return 0;
}

static bool b64_char(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
	       c == '/';
}

/* One line of base64 (no newline): its characters are the alphabet with
 * '=' only as the last one or two.  `last` allows padding. */
static bool b64_line(const uint8_t *s, size_t n, bool last)
{
	size_t pad = 0;

	while (pad < 2 && n > pad && s[n - 1 - pad] == '=')
		pad++;
	if (pad && !last)
		return false;
	for (size_t i = 0; i < n - pad; i++)
		if (!b64_char(s[i]))
			return false;
	return n > 0;
}

int kiln_osslenc_unbase64(const uint8_t *in, size_t len, uint8_t **out, size_t *outlen)
{
	size_t pos = 0, lines = 0, total = 0, width = 0;
	uint8_t *joined, *dec;
	int n;

	*out = NULL;
	*outlen = 0;
	/* The shape first: 64-character lines (-a) or one line (-A). */
	while (pos < len) {
		const uint8_t *nl = memchr(in + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - in) : len, l = end - pos;
		bool last = !nl || end + 1 >= len;
		if (l && in[pos + l - 1] == '\r')
			l--;
		if (!b64_line(in + pos, l, last))
			return 0;
		if (lines == 0)
			width = l;
		else if (width != 64 || (!last && l != 64) || l > 64)
			return 0;
		lines++;
		total += l;
		pos = nl ? end + 1 : len;
	}
	if (lines == 0 || total % 4 || total > INT_MAX)
		return 0;
	joined = malloc(total + 1);
	dec = malloc(total / 4 * 3 + 1);
	if (!joined || !dec) {
		free(joined);
		free(dec);
		return -KILN_E_INTERNAL;
	}
	total = 0;
	for (pos = 0; pos < len; pos++)
		if (in[pos] != '\n' && in[pos] != '\r')
			joined[total++] = in[pos];
	n = EVP_DecodeBlock(dec, joined, (int)total);
	/* EVP_DecodeBlock counts the padding as zero bytes. */
	for (size_t i = total; n > 0 && i > 0 && joined[i - 1] == '='; i--)
		n--;
	free(joined);
	if (n < 0) {
		free(dec);
		return 0;
	}
	*out = dec;
	*outlen = (size_t)n;
	return 1;
}

const char *kiln_osslenc_foreign(const uint8_t *in, size_t len)
{
	static const struct {
		const char *prefix, *what;
	} known[] = {
		{"-----BEGIN PGP MESSAGE-----", "a gpg ASCII-armored file (gpg --armor), not openssl enc"},
		{"-----BEGIN AGE ENCRYPTED FILE-----", "an age file (age -a), not openssl enc"},
		{"age-encryption.org/v1", "an age file, not openssl enc"},
		{KILN_SEAL_MAGIC, "a kiln sealed file, not openssl enc"},
	};

	for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
		if (len >= strlen(known[i].prefix) && !memcmp(in, known[i].prefix, strlen(known[i].prefix)))
			return known[i].what;
	if (len > 0 && kiln_utf8_valid_prefix(in, len) == len && !memchr(in, 0, len))
		return "plain text, not encrypted";
	return NULL;
}

/* key || iv from the passphrase: PBKDF2 (`need` bytes) or EVP_BytesToKey
 * (as much as cipher `c` takes), with `md`. */
static int derive(const struct kiln_osslenc_params *p, const EVP_MD *md, const char *pass, size_t passlen,
		  const uint8_t *salt, uint8_t *kiv, size_t need, const EVP_CIPHER *c)
{
	if (p->kdf == KILN_OSSLENC_PBKDF2)
		return PKCS5_PBKDF2_HMAC(pass, (int)passlen, salt, salt ? 8 : 0, (int)p->iter, md, (int)need, kiv)
			       ? 0
			       : -1;
	/* EVP_BytesToKey's output for one cipher is a prefix of what a longer
	 * key || iv would get: derive for the largest and slice. */
	(void)need;
	return EVP_BytesToKey(c, md, salt, (const unsigned char *)pass, (int)passlen, 1, kiv,
			      kiv + EVP_CIPHER_get_key_length(c))
		       ? 0
		       : -1;
}

/* One decryption with key and iv; 1 when it decrypts (the padding, for
 * block modes), 0 when not, -1 on an OpenSSL failure. */
static int run_cipher(const EVP_CIPHER *c, const uint8_t *key, const uint8_t *iv, const uint8_t *ct,
		      size_t ctlen, uint8_t *out, size_t *outlen)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int n1 = 0, n2 = 0, rc = -1;

	if (!ctx || !EVP_DecryptInit_ex(ctx, c, NULL, key, iv))
		goto out;
	if (!EVP_DecryptUpdate(ctx, out, &n1, ct, (int)ctlen))
		goto out;
	rc = EVP_DecryptFinal_ex(ctx, out + n1, &n2) ? 1 : 0;
	*outlen = rc == 1 ? (size_t)n1 + (size_t)n2 : 0;
	if (rc != 1)
		OPENSSL_cleanse(out, ctlen);
out:
	EVP_CIPHER_CTX_free(ctx);
	return rc;
}

/* The salt and ciphertext of a file under `p`; 0 or a reason in err. */
static int split_file(const uint8_t *in, size_t len, const struct kiln_osslenc_params *p,
		      const uint8_t **salt, const uint8_t **ct, size_t *ctlen, char *err, size_t errlen)
{
	bool header = len >= 8 && memcmp(in, KILN_OSSLENC_MAGIC, 8) == 0;
	const char *what;

	*salt = NULL;
	*ct = in;
	*ctlen = len;
	if (len == 0)
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "empty file");
	if (header && p->raw)
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS,
			    "has a Salted__ header: it was encrypted with a passphrase, not a raw key");
	if (header) {
		if (len < KILN_OSSLENC_HEADER)
			return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "truncated (header cut short)");
		*salt = in + 8;
		*ct = in + KILN_OSSLENC_HEADER;
		*ctlen = len - KILN_OSSLENC_HEADER;
		return 0;
	}
	what = kiln_osslenc_foreign(in, len);
	/* Headerless ciphertext is binary: a file that is evidently something
	 * else (text, gpg, age) is not decrypted into garbage. */
	if ((p->raw || p->nosalt || p->has_salt) && !what) {
		*salt = p->has_salt && !p->raw ? p->salt : NULL;
		return 0;
	}
	/* Binary OpenPGP starts with a session key packet (tag 3 or 1, old
	 * or new format); only a guess, as ciphertext starts anyhow. */
	if (!what && (in[0] == 0x8c || in[0] == 0x8d || in[0] == 0xc3 || in[0] == 0x84 || in[0] == 0x85 ||
		      in[0] == 0xc1))
		what = "binary with no Salted__ header (a gpg file?)";
	snprintf(err, errlen, "not encrypted as openssl enc writes it: %s%s", what ? what : "no Salted__ header",
		 what && strncmp(what, "binary", 6) ? "" : " (for -nosalt, -S or -K files pass nosalt, salt or key)");
	return -KILN_E_INVALID_ARGS;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int kiln_osslenc_decrypt(const uint8_t *in, size_t len, const char *pass, size_t passlen,
			 const struct kiln_osslenc_params *p, uint8_t *out, size_t *outlen,
			 char *err, size_t errlen)
{
	double ignored = 0;

	return kiln_osslenc_decrypt_timed(in, len, pass, passlen, p, out, outlen, &ignored, err, errlen);
}

int kiln_osslenc_decrypt_timed(const uint8_t *in, size_t len, const char *pass, size_t passlen,
			       const struct kiln_osslenc_params *p, uint8_t *out, size_t *outlen,
			       double *kdf_ms, char *err, size_t errlen)
{
	double t0;
	uint8_t kiv[KILN_OSSLENC_KEY_MAX + KILN_OSSLENC_IV_MAX] = {0};
	const uint8_t *salt, *ct;
	EVP_CIPHER *c = NULL;
	EVP_MD *md = NULL;
	size_t ctlen, klen, ivlen;
	char desc[160];
	int rc;

	*outlen = 0;
	rc = split_file(in, len, p, &salt, &ct, &ctlen, err, errlen);
	if (rc)
		return rc;
	if (ctlen > INT_MAX)
		return kiln_fail(err, errlen, -KILN_E_TOO_LARGE, "file too large");
	if (!(c = fetch_cipher(p->cipher, err, errlen)))
		return -KILN_E_INVALID_ARGS;
	klen = (size_t)EVP_CIPHER_get_key_length(c);
	ivlen = (size_t)EVP_CIPHER_get_iv_length(c);
	rc = -KILN_E_INVALID_ARGS;
	if (EVP_CIPHER_get_block_size(c) > 1 && (ctlen == 0 || ctlen % (size_t)EVP_CIPHER_get_block_size(c))) {
		snprintf(err, errlen, "does not decrypt with %s: not a whole number of %d-byte blocks (another "
			 "cipher, or truncated)", p->cipher, EVP_CIPHER_get_block_size(c));
		goto out;
	}
	if (p->raw) {
		memcpy(kiv, p->key, p->keylen < klen ? p->keylen : klen);
		memcpy(kiv + klen, p->iv, p->ivlen < ivlen ? p->ivlen : ivlen);
	} else if (!(md = EVP_MD_fetch(NULL, p->digest, NULL))) {
		snprintf(err, errlen, "unknown digest \"%s\"", p->digest);
		goto out;
	} else {
		t0 = now_ms();
		if (derive(p, md, pass, passlen, salt, kiv, klen + ivlen, c)) {
			rc = kiln_fail(err, errlen, -KILN_E_INTERNAL, "key derivation failed");
			goto out;
		}
		*kdf_ms += now_ms() - t0;
	}
	rc = run_cipher(c, kiv, kiv + klen, ct, ctlen, out, outlen);
	if (rc < 0) {
		rc = kiln_fail(err, errlen, -KILN_E_INTERNAL, "decryption failed");
	} else if (rc == 0) {
		kiln_osslenc_params_describe(p, desc, sizeof desc);
		snprintf(err, errlen, "does not decrypt with %s (bad padding): wrong %s or options", desc,
			 p->raw ? "key" : "passphrase");
		rc = -KILN_E_INVALID_ARGS;
	} else {
		rc = 0;
	}
out:
	OPENSSL_cleanse(kiv, sizeof kiv);
	EVP_CIPHER_free(c);
	EVP_MD_free(md);
	return rc;
}

/* The bounded lists kiln_osslenc_detect() tries (seal.h). */
static const char *const detect_ciphers[] = {
	"aes-256-cbc", "aes-128-cbc", "aes-192-cbc", "aes-256-ctr", "aes-128-ctr", "aes-256-cfb",
	"aes-256-ofb", "chacha20", "camellia-256-cbc", "aria-256-cbc", "des-ede3-cbc",
};
static const struct {
	enum kiln_osslenc_kdf kdf;
	const char *digest;
} detect_kdfs[] = {
	{KILN_OSSLENC_PBKDF2, "sha256"}, {KILN_OSSLENC_PBKDF2, "sha512"}, {KILN_OSSLENC_PBKDF2, "sha1"},
	{KILN_OSSLENC_LEGACY, "sha256"}, {KILN_OSSLENC_LEGACY, "md5"},    {KILN_OSSLENC_LEGACY, "sha1"},
};

#define N_DETECT_CIPHERS (sizeof detect_ciphers / sizeof detect_ciphers[0])
#define N_DETECT_KDFS (sizeof detect_kdfs / sizeof detect_kdfs[0])

/* Plaintext that a right key plausibly produced: valid UTF-8, no NUL. */
static bool plausible_text(const uint8_t *s, size_t n)
{
	return kiln_utf8_valid_prefix(s, n) == n && !memchr(s, 0, n);
}

/* Tries every listed cipher (or only p->cipher) with one key derivation:
 * both KDFs give every cipher a prefix of the same byte stream (key, then
 * iv), so one derivation of the longest key || iv serves them all. */
static int detect_ciphers_with(const uint8_t *salt, const uint8_t *ct, size_t ctlen, const char *pass,
			       size_t passlen, struct kiln_osslenc_params *p, const EVP_MD *md, bool fixed,
			       uint8_t *out, size_t *outlen, unsigned *tried)
{
	uint8_t kiv[KILN_OSSLENC_KEY_MAX + KILN_OSSLENC_IV_MAX];
	char name[KILN_OSSLENC_NAME_MAX], scratch[160];
	size_t stream = KILN_OSSLENC_KEY_MAX + KILN_OSSLENC_IV_MAX;
	int found = 0;

	memcpy(name, p->cipher, sizeof name);
	if (p->kdf == KILN_OSSLENC_PBKDF2 ? derive(p, md, pass, passlen, salt, kiv, stream, NULL)
					  : derive(p, md, pass, passlen, salt, kiv, 0, EVP_aes_256_cbc()))
		return 0;
	for (size_t i = 0; i < (fixed ? 1 : N_DETECT_CIPHERS) && !found; i++) {
		const char *cn = fixed ? name : detect_ciphers[i];
		EVP_CIPHER *c = fetch_cipher(cn, scratch, sizeof scratch);
		size_t klen, bs;
		if (!c)
			continue;
		klen = (size_t)EVP_CIPHER_get_key_length(c);
		bs = (size_t)EVP_CIPHER_get_block_size(c);
		(*tried)++;
		/* The legacy stream above is 48 bytes (aes-256-cbc's key || iv). */
		if ((bs <= 1 || (ctlen && ctlen % bs == 0)) &&
		    (p->kdf == KILN_OSSLENC_PBKDF2 || klen + (size_t)EVP_CIPHER_get_iv_length(c) <= 48) &&
		    run_cipher(c, kiv, kiv + klen, ct, ctlen, out, outlen) == 1) {
			if (plausible_text(out, *outlen)) {
				snprintf(p->cipher, sizeof p->cipher, "%s", cn);
				found = 1;
			} else {
				OPENSSL_cleanse(out, ctlen);
			}
		}
		EVP_CIPHER_free(c);
	}
	OPENSSL_cleanse(kiv, sizeof kiv);
	return found;
}

int kiln_osslenc_detect(const uint8_t *in, size_t len, const char *pass, size_t passlen,
			const struct kiln_osslenc_params *base, unsigned fixed,
			struct kiln_osslenc_params *found, uint8_t *out, size_t *outlen,
			unsigned *tried, char *err, size_t errlen)
{
	const uint8_t *salt, *ct;
	size_t ctlen;
	int rc;

	*tried = 0;
	*outlen = 0;
	if (base->raw)
		return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "detect works with a passphrase, not a raw key");
	rc = split_file(in, len, base, &salt, &ct, &ctlen, err, errlen);
	if (rc)
		return rc;
	if (ctlen > INT_MAX)
		return kiln_fail(err, errlen, -KILN_E_TOO_LARGE, "file too large");
	for (size_t k = 0; k < N_DETECT_KDFS; k++) {
		struct kiln_osslenc_params p = *base;
		EVP_MD *md;
		if (!(fixed & KILN_OSSLENC_FIX_KDF))
			p.kdf = detect_kdfs[k].kdf;
		if (!(fixed & KILN_OSSLENC_FIX_DIGEST))
			snprintf(p.digest, sizeof p.digest, "%s", detect_kdfs[k].digest);
		/* Fixed dimensions make some entries repeat an earlier one. */
		bool seen = false;
		for (size_t j = 0; j < k && !seen; j++)
			seen = (fixed & KILN_OSSLENC_FIX_KDF ? base->kdf : detect_kdfs[j].kdf) == p.kdf &&
			       !strcmp(fixed & KILN_OSSLENC_FIX_DIGEST ? base->digest : detect_kdfs[j].digest,
				       p.digest);
		if (seen || !(md = EVP_MD_fetch(NULL, p.digest, NULL)))
			continue;
		rc = detect_ciphers_with(salt, ct, ctlen, pass, passlen, &p, md, fixed & KILN_OSSLENC_FIX_CIPHER,
					 out, outlen, tried);
		EVP_MD_free(md);
		if (rc) {
			*found = p;
			return 0;
		}
	}
	snprintf(err, errlen, "none of the %u combinations tried decrypts it to text (wrong passphrase, "
		 "or a cipher, digest or iteration count outside the detect list)", *tried);
	return -KILN_E_INVALID_ARGS;
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
