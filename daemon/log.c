#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
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

static void log_vmsg(int level, const char *fmt, va_list ap)
{
	char line[1024];
	int n;

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
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
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
