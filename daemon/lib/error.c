#include "kiln/error.h"

#include <stdarg.h>
#include <stdio.h>

static const char *const names[KILN_E_COUNT] = {
	[KILN_OK] = "ok",
	[KILN_E_PARSE] = "parse_error",
	[KILN_E_INVALID_REQUEST] = "invalid_request",
	[KILN_E_UNKNOWN_ACTION] = "unknown_action",
	[KILN_E_INVALID_ARGS] = "invalid_args",
	[KILN_E_TIMEOUT] = "timeout",
	[KILN_E_CANCELLED] = "cancelled",
	[KILN_E_TOO_LARGE] = "too_large",
	[KILN_E_NOT_FOUND] = "not_found",
	[KILN_E_FORBIDDEN] = "forbidden",
	[KILN_E_BUSY] = "busy",
	[KILN_E_INTERNAL] = "internal",
};

const char *kiln_err_name(int code)
{
	if (code < 0)
		code = -code;
	if (code <= 0 || code >= KILN_E_COUNT)
		return "internal";
	return names[code];
}

int kiln_fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return code;
}
