/*
 * UTF-8 helpers shared by the compute library and the daemon.  Decoding is
 * strict, as Python's "strict" codec: no overlong forms, no surrogates,
 * nothing above U+10FFFF.
 */
#ifndef KILN_UTF8_H
#define KILN_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Decodes the sequence at s[0..n) (n >= 1): its length in bytes and *out,
 * or 0 if it is invalid or cut short. */
static inline size_t kiln_utf8_decode(const uint8_t *s, size_t n, uint32_t *out)
{
	uint8_t b = s[0], lo = 0x80, hi = 0xbf;
	uint32_t c;
	size_t k;

	if (b < 0x80) {
		*out = b;
		return 1;
	}
	if (b >= 0xc2 && b <= 0xdf) {
		k = 2;
		c = b & 0x1f;
	} else if (b >= 0xe0 && b <= 0xef) {
		k = 3;
		c = b & 0x0f;
		if (b == 0xe0)
			lo = 0xa0; /* overlong */
		else if (b == 0xed)
			hi = 0x9f; /* surrogates */
	} else if (b >= 0xf0 && b <= 0xf4) {
		k = 4;
		c = b & 0x07;
		if (b == 0xf0)
			lo = 0x90; /* overlong */
		else if (b == 0xf4)
			hi = 0x8f; /* above U+10FFFF */
	} else {
		return 0;
	}
	if (n < k || s[1] < lo || s[1] > hi)
		return 0;
	c = (c << 6) | (s[1] & 0x3f);
	for (size_t i = 2; i < k; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	*out = c;
	return k;
}

/* Decodes a sequence already known to be valid. */
static inline uint32_t kiln_utf8_decode_valid(const uint8_t *s)
{
	uint8_t b = s[0];

	if (b < 0x80)
		return b;
	if (b < 0xe0)
		return ((uint32_t)(b & 0x1f) << 6) | (s[1] & 0x3f);
	if (b < 0xf0)
		return ((uint32_t)(b & 0x0f) << 12) | ((uint32_t)(s[1] & 0x3f) << 6) | (s[2] & 0x3f);
	return ((uint32_t)(b & 0x07) << 18) | ((uint32_t)(s[1] & 0x3f) << 12) |
	       ((uint32_t)(s[2] & 0x3f) << 6) | (s[3] & 0x3f);
}

/* Length of a valid sequence from its lead byte. */
static inline size_t kiln_utf8_seq_len(uint8_t lead)
{
	return lead < 0x80 ? 1 : lead < 0xe0 ? 2 : lead < 0xf0 ? 3 : 4;
}

/* Bytes needed to encode code point c. */
static inline size_t kiln_utf8_len(uint32_t c)
{
	return c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
}

/* Encodes c (a valid scalar value) into o; returns the length. */
static inline size_t kiln_utf8_encode(uint32_t c, uint8_t *o)
{
	if (c < 0x80) {
		o[0] = (uint8_t)c;
		return 1;
	}
	if (c < 0x800) {
		o[0] = (uint8_t)(0xc0 | (c >> 6));
		o[1] = (uint8_t)(0x80 | (c & 0x3f));
		return 2;
	}
	if (c < 0x10000) {
		o[0] = (uint8_t)(0xe0 | (c >> 12));
		o[1] = (uint8_t)(0x80 | ((c >> 6) & 0x3f));
		o[2] = (uint8_t)(0x80 | (c & 0x3f));
		return 3;
	}
	o[0] = (uint8_t)(0xf0 | (c >> 18));
	o[1] = (uint8_t)(0x80 | ((c >> 12) & 0x3f));
	o[2] = (uint8_t)(0x80 | ((c >> 6) & 0x3f));
	o[3] = (uint8_t)(0x80 | (c & 0x3f));
	return 4;
}

/* Length of the longest valid UTF-8 prefix of s (strict, as Python's
 * bytes.decode("utf-8")); n when the whole buffer is valid. */
size_t kiln_utf8_valid_prefix(const uint8_t *s, size_t n);

/* A copy of s[0..n) with each byte that does not start a valid sequence
 * replaced by U+FFFD; NUL-terminated, *outlen set.  malloc'ed (NULL when out
 * of memory); the caller frees it. */
char *kiln_utf8_scrub(const char *s, size_t n, size_t *outlen);

#endif
