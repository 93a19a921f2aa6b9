#include "log.h"

#include "kiln/utf8.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The level is read by every thread that logs (workers too) while SIGHUP
 * changes it on the loop: atomic, relaxed (a line more or less around a
 * reload is fine; a torn read is not). */
static struct {
	atomic_int level;
	int prefixes;
} log_state = { LOG_LVL_INFO, 0 };

static const char *const level_names[] = { "error", "warn", "info", "debug" };
/* sd-daemon priorities: LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG. */
static const int level_prio[] = { 3, 4, 6, 7 };

int log_level_parse(const char *name)
{
	for (int i = 0; i <= LOG_LVL_DEBUG; i++)
		if (strcmp(name, level_names[i]) == 0)
			return i;
	return -1;
}

void log_set_level(int level)
{
	atomic_store_explicit(&log_state.level, level, memory_order_relaxed);
}

int log_get_level(void)
{
	return atomic_load_explicit(&log_state.level, memory_order_relaxed);
}

void log_set_prefixes(int enabled)
{
	log_state.prefixes = enabled;
}

size_t log_escape(char *dst, size_t dstlen, const char *src, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	if (dstlen == 0)
		return 0;
	for (size_t i = 0; i < n;) {
		const uint8_t *s = (const uint8_t *)src + i;
		char esc[8];
		size_t elen = 0, k;
		uint32_t c;

		k = kiln_utf8_decode(s, n - i, &c);
		if (k == 0) {
			esc[0] = '\\', esc[1] = 'x', esc[2] = hex[s[0] >> 4], esc[3] = hex[s[0] & 15];
			elen = 4;
			k = 1;
		} else if (c == '\\') {
			esc[0] = esc[1] = '\\';
			elen = 2;
		} else if (c == '\n' || c == '\r' || c == '\t') {
			esc[0] = '\\', esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
			elen = 2;
		} else if (c < 0x20 || c == 0x7f) {
			esc[0] = '\\', esc[1] = 'x', esc[2] = hex[c >> 4], esc[3] = hex[c & 15];
			elen = 4;
		} else if ((c >= 0x80 && c <= 0x9f) || c == 0x2028 || c == 0x2029) {
			esc[0] = '\\', esc[1] = 'u';
			for (int d = 0; d < 4; d++)
				esc[2 + d] = hex[(c >> (12 - 4 * d)) & 15];
			elen = 6;
		}
		const char *out = elen ? esc : (const char *)s;
		size_t olen = elen ? elen : k;
		if (o + olen >= dstlen)
			break;
		memcpy(dst + o, out, olen);
		o += olen;
		i += k;
	}
	dst[o] = '\0';
	return o;
}

static void log_vmsg(int level, const char *fmt, va_list ap)
{
	char msg[1024], line[4096];
	int n, m;

	if (log_state.prefixes) {
		/* The journal adds its own timestamps. */
		n = snprintf(line, sizeof(line), "<%d>%s: ", level_prio[level], level_names[level]);
	} else {
		struct timespec ts;
		struct tm tm;
		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ kilnd %s: ",
			     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			     tm.tm_sec, ts.tv_nsec / 1000000, level_names[level]);
	}
	m = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (m < 0)
		m = 0;
	log_escape(line + n, sizeof(line) - (size_t)n, msg, (size_t)m < sizeof(msg) ? (size_t)m : sizeof(msg) - 1);
	/* One write per line, so concurrent writers never interleave within a line. */
	fprintf(stderr, "%s\n", line);
}

void log_msg(int level, const char *fmt, ...)
{
	va_list ap;

	if (level > log_get_level())
		return;
	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

void fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_LVL_ERROR, fmt, ap);
	va_end(ap);
	exit(EXIT_FAILURE);
}
