/*
 * Shared pieces of the libFuzzer targets (tests/fuzz/fuzz_*.c).
 *
 * The in-process daemon: a real server (server.c, conn.c, job.c, every action
 * family) on a socket in a private temporary directory, driven from the fuzz
 * callback by running the loop until the reply arrives.  Its configuration
 * keeps every limit tiny and allows no procedures; path_roots is only
 * fz_root(), a temporary copy of tests/data (corpus, scenes, text), so no
 * request can read or write anything else and nothing is ever spawned.
 * The string "@DATA@" in fuzz inputs stands for that root, as in
 * proto/examples.  The directory is removed at exit.
 */
#ifndef KILN_FUZZ_COMMON_H
#define KILN_FUZZ_COMMON_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#ifndef KILN_FUZZ_DATA
#define KILN_FUZZ_DATA "tests/data"
#endif

/* Silences daemon logging (errors only) once. */
void fz_quiet(void);

/* A private temporary directory, created once, removed at exit. */
const char *fz_tmpdir(void);

/* Starts the in-process daemon once (later calls do nothing). */
void fz_daemon_start(void);
/* The root under which requests may name files (fz_tmpdir()/data). */
const char *fz_root(void);
/* Puts the root back as it was copied if a request changed it (a render
 * output, a sealed corpus), so one input cannot influence the next. */
void fz_root_restore(void);

/* A new blocking client connection to the daemon. */
int fz_connect(void);
/* Sends all bytes, running the loop while the socket is full. */
void fz_send(int fd, const void *data, size_t len);
/* The next reply line on fd as JSON; NULL on end of stream.  Aborts (a
 * finding) on a line that is not JSON or when nothing arrives within
 * timeout_ms: the daemon must always answer. */
json_t *fz_recv(int fd, int timeout_ms);
/* Sends `line` + "\n" on a shared connection and returns the final reply
 * (progress lines are skipped); aborts if the reply is malformed. */
json_t *fz_call(const char *line);
/* Reads until the daemon closes fd, checking each reply; aborts after
 * timeout_ms. */
void fz_drain(int fd, int timeout_ms);

/* Replaces every "@DATA@" in data[0..len) by fz_root(); returns a new
 * NUL-terminated string (free()) and its length. */
char *fz_subst_data(const uint8_t *data, size_t len, size_t *outlen);

#endif
