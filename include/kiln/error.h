/*
 * kiln error codes, shared by the compute library and the daemon.
 *
 * Functions in libkiln and in the daemon return 0 on success or a negative
 * kiln_err value (-KILN_E_INVALID_ARGS, ...).  The daemon maps each code to
 * the stable wire name given by kiln_err_name(); those names are part of the
 * protocol (proto/README.md) and never change.
 */
#ifndef KILN_ERROR_H
#define KILN_ERROR_H

enum kiln_err {
	KILN_OK = 0,
	KILN_E_PARSE,           /* "parse_error": the line is not a JSON object */
	KILN_E_INVALID_REQUEST, /* "invalid_request": envelope is malformed */
	KILN_E_UNKNOWN_ACTION,  /* "unknown_action" */
	KILN_E_INVALID_ARGS,    /* "invalid_args": args fail the action's schema or checks */
	KILN_E_TIMEOUT,         /* "timeout": the request's deadline passed */
	KILN_E_CANCELLED,       /* "cancelled": cancel, disconnect or shutdown */
	KILN_E_TOO_LARGE,       /* "too_large": a named limit was exceeded */
	KILN_E_NOT_FOUND,       /* "not_found": no such scene, corpus, job, file */
	KILN_E_FORBIDDEN,       /* "forbidden": peer credentials or path_roots */
	KILN_E_BUSY,            /* "busy": a capacity limit is reached, retry later */
	KILN_E_INTERNAL,        /* "internal": a bug or an unexpected system error */
	KILN_E_COUNT
};

#include <stddef.h>

/* Stable wire name of an error code ("invalid_args"); "internal" if unknown. */
const char *kiln_err_name(int code);

/* The one way to fail with a message: formats into err (when err and errlen
 * are set) and returns `code`, a negative -KILN_E_* value:
 *     return kiln_fail(err, errlen, -KILN_E_INVALID_ARGS, "bad %s", what); */
int kiln_fail(char *err, size_t errlen, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#endif
