/*
 * Logging: one line per event on stderr, with a level.  Never pass secrets
 * (passphrases, decrypted text, request args) to these functions.
 */
#ifndef KILND_LOG_H
#define KILND_LOG_H

enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* Returns the level for a name ("error", "warn", "info", "debug"), or -1. */
int log_level_parse(const char *name);
void log_set_level(int level);
int log_get_level(void);
/* Under systemd, lines carry sd-daemon "<N>" priority prefixes. */
void log_set_prefixes(int enabled);

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
