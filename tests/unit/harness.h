/*
 * In-process daemon for check tests: a real server on a temporary socket,
 * driven by uv_run(UV_RUN_NOWAIT) while the test waits for replies on an
 * ordinary blocking client socket.  Everything runs in the test's process,
 * so sanitizers see the daemon code.
 *
 *   harness_start("{\"max_line_bytes\": 256}");
 *   json_t *r = harness_call("{\"job_id\":1,\"action\":\"ping\"}");
 *   ...
 *   json_decref(r);
 *   harness_stop();
 */
#ifndef KILN_TEST_HARNESS_H
#define KILN_TEST_HARNESS_H

#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

/* Starts the server with a config given as JSON text (NULL: defaults). */
void harness_start(const char *config_json);
/* Stops the server (SIGTERM path) and frees everything. */
void harness_stop(void);
/* A new client connection (blocking socket fd). */
int harness_connect(void);
/* Sends raw bytes on fd. */
void harness_send(int fd, const void *data, size_t len);
/* Reads one reply line on fd (running the loop meanwhile); NULL on EOF or
 * after timeout_ms.  Progress lines are returned too. */
json_t *harness_recv(int fd, int timeout_ms);
/* Sends `line` + "\n" on a shared connection and returns the next reply. */
json_t *harness_call(const char *line);
/* Runs the loop until fd (-1: none) is ready for `events` (POLLIN,
 * POLLOUT) or `ms` pass; 1 if it became ready. */
int harness_wait_fd(int fd, short events, int ms);
/* Runs the loop for about `ms` milliseconds. */
void harness_spin(int ms);
/* The error code of a reply ("invalid_args"), or NULL for non-errors. */
const char *harness_error_code(json_t *reply);
/* Path of the tests/data directory. */
const char *harness_data_dir(void);

#endif
