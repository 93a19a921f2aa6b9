/*
 * Logging: one line per event on stderr, with a level.  Never pass secrets
 * (passphrases, decrypted text, request args) to these functions.
 *
 * Names a client chose (corpus names, host names, paths, actions) reach log
 * lines through the format arguments; every formatted message passes
 * through log_escape before it is written, so no argument can start a new
 * line, forge a "<N>" priority or a level, or send terminal escapes.
 */
#ifndef KILND_LOG_H
#define KILND_LOG_H

#include <stddef.h>

enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* Returns the level for a name ("error", "warn", "info", "debug"), or -1. */
int log_level_parse(const char *name);
void log_set_level(int level);
int log_get_level(void);
/* Under systemd, lines carry sd-daemon "<N>" priority prefixes. */
void log_set_prefixes(int enabled);

/* Copies `src` (n bytes) into dst, NUL-terminated and cut at a character
 * boundary if dst is too small, escaping what could forge or hide log
 * content: a backslash as \\, C0 controls and DEL as \n, \r, \t or \xNN,
 * C1 controls (U+0080..U+009F) and U+2028/U+2029 as \uNNNN, and bytes that
 * are not UTF-8 as \xNN.  Returns the length written. */
size_t log_escape(char *dst, size_t dstlen, const char *src, size_t n);

void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The level is checked before the arguments are evaluated, so debug lines
 * cost nothing on hot paths when they are off. */
#define LOG_AT(level, ...)                              \
	do {                                            \
		if ((level) <= log_get_level())         \
			log_msg((level), __VA_ARGS__);  \
	} while (0)
#define log_error(...) LOG_AT(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) LOG_AT(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) LOG_AT(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) LOG_AT(LOG_LVL_DEBUG, __VA_ARGS__)

/* Logs and exits: for conditions that cannot happen. */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
