/* UTF-8 utilities that are more than a few lines (see include/kiln/utf8.h). */
#include "kiln/utf8.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* True when none of the 8 bytes at s has its high bit set. */
static bool ascii8(const uint8_t *s)
{
	uint64_t v;

	memcpy(&v, s, 8);
	return (v & 0x8080808080808080ull) == 0;
}

size_t kiln_utf8_valid_prefix(const uint8_t *s, size_t n)
{
	size_t i = 0;
	uint32_t c;

	while (i < n) {
		if (i + 8 <= n && ascii8(s + i)) {
			i += 8;
			continue;
		}
		size_t k = kiln_utf8_decode(s + i, n - i, &c);
		if (!k)
			return i;
		i += k;
	}
	return n;
}


char *kiln_utf8_scrub(const char *s, size_t n, size_t *outlen)
{
	const uint8_t *p = (const uint8_t *)s, *end = p + n;
	char *out = malloc(3 * n + 1), *o = out;

	if (!out)
		return NULL;
	while (p < end) {
		uint32_t c;
		size_t k = kiln_utf8_decode(p, (size_t)(end - p), &c);
		if (k) {
			memcpy(o, p, k);
			o += k;
			p += k;
		} else {
			memcpy(o, "\xef\xbf\xbd", 3);
			o += 3;
			p++;
		}
	}
	*o = '\0';
	*outlen = (size_t)(o - out);
	return out;
}
