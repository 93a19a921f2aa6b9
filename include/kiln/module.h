/*
 * The kiln module API: native actions served by kilnd from a shared object.
 *
 * A module is a shared object that kilnd loads (config key `modules`).  It
 * declares the ABI it was built for with KILN_MODULE_DECLARE() and exports
 * one entry point, kiln_module_init(), which registers its actions:
 *
 *     #include <kiln/module.h>
 *
 *     KILN_MODULE_DECLARE();
 *
 *     static int add(kiln_mod_call *call)
 *     {
 *             int64_t a, b;
 *             if (kiln_mod_arg_int(call, "a", &a) || kiln_mod_arg_int(call, "b", &b))
 *                     return kiln_mod_fail(call, KILN_E_INVALID_ARGS, "a and b are integers");
 *             return kiln_mod_result_int(call, "sum", a + b);
 *     }
 *
 *     int kiln_module_init(kiln_mod_registry *reg)
 *     {
 *             static const struct kiln_mod_action act = {
 *                     "mymod.add", "Adds two integers.",
 *                     "{\"type\":\"object\",\"required\":[\"a\",\"b\"],\"properties\":"
 *                     "{\"a\":{\"type\":\"integer\"},\"b\":{\"type\":\"integer\"}}}",
 *                     "{\"type\":\"object\",\"properties\":{\"sum\":{\"type\":\"integer\"}}}",
 *                     add,
 *             };
 *             return kiln_mod_register(reg, &act);
 *     }
 *
 * Build: cc -shared -fPIC $(pkg-config --cflags kiln-module) mymod.c -o mymod.so
 * The kiln_mod_* functions are provided by the process that loads the
 * module (kilnd, or its module host); a module does not link any library.
 *
 * ABI.  KILN_MODULE_ABI_VERSION changes whenever a declaration here changes
 * incompatibly.  kilnd reads the module's kiln_module_abi_version before it
 * calls anything and refuses a module built for another version, naming
 * both.  Nothing here exposes kilnd's own types (no libuv, no JSON library,
 * no daemon structs): the call and registry are opaque handles.
 *
 * Threading and isolation.  A handler runs on a kilnd pool thread (isolation
 * "thread": in kilnd's own process, trusted like kilnd's own code) or in a
 * worker process that kilnd supervises (isolation "process", the default:
 * a crash or a hang costs that call an error reply, not the daemon).  In
 * both cases several calls may run at once on different threads or
 * processes, so a module's global state must be thread-safe or read-only
 * after kiln_module_init().  Every kiln_mod_* function taking a call may be
 * called only by the thread running that call's handler, until it returns.
 *
 * Errors.  Functions returning int return 0 or a negative kiln error code
 * (-KILN_E_INVALID_ARGS, ... from kiln/error.h).  A handler returns 0 for
 * success or the value of kiln_mod_fail().
 */
#ifndef KILN_MODULE_H
#define KILN_MODULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define KILN_MODULE_ABI_VERSION 1

/* Placed once in a module's source: exports the ABI version it was built
 * against, which kilnd checks before calling anything else. */
#define KILN_MODULE_DECLARE() \
	__attribute__((visibility("default"))) const uint32_t kiln_module_abi_version = KILN_MODULE_ABI_VERSION

/* One call of an action: its arguments, attachment, results and state.
 * Owned by kilnd; valid only while the handler runs. */
typedef struct kiln_mod_call kiln_mod_call;

/* The registration context passed to kiln_module_init(); valid only during it. */
typedef struct kiln_mod_registry kiln_mod_registry;

/* A handler: returns 0 (success, with the results set so far) or the value of
 * kiln_mod_fail().  A handler that returns another negative value fails
 * the call with that code. */
typedef int (*kiln_mod_handler)(kiln_mod_call *call);

struct kiln_mod_action {
	/* "prefix.name": lower-case letters, digits, '_' and '-', with at least
	 * one '.', at most 64 bytes; it may not repeat a built-in action. */
	const char *name;
	const char *summary;     /* one line, for describe */
	const char *args_schema; /* JSON Schema (kilnd's subset) of args; NULL: any object */
	const char *data_schema; /* JSON Schema of the reply's data; NULL: an object */
	kiln_mod_handler handler;
};

/* The module's entry point (exported by the module): registers every
 * action, reads its configuration.  Returns 0, or a negative kiln error
 * code (the module is then refused, with the message set by
 * kiln_mod_init_fail() if any). */
int kiln_module_init(kiln_mod_registry *reg);

/* --- Registration (during kiln_module_init only) -------------------------- */

/* Registers `action`, copying every field.  -KILN_E_INVALID_ARGS when the
 * name or a schema is invalid or the name is taken (the module is refused
 * and kilnd names the reason). */
int kiln_mod_register(kiln_mod_registry *reg, const struct kiln_mod_action *action);

/* The module's "config" object from kilnd's configuration, as JSON text
 * ("{}" when none); valid during kiln_module_init. */
const char *kiln_mod_config_json(kiln_mod_registry *reg);
/* Typed reads of the module's "config" keys: -KILN_E_NOT_FOUND when absent,
 * -KILN_E_INVALID_ARGS when the value has another type. */
int kiln_mod_config_int(kiln_mod_registry *reg, const char *key, int64_t *out);
int kiln_mod_config_float(kiln_mod_registry *reg, const char *key, double *out);
/* The string stays valid during kiln_module_init; copy it to keep it. */
int kiln_mod_config_string(kiln_mod_registry *reg, const char *key, const char **out);

/* Sets the message kilnd reports when kiln_module_init fails; returns
 * -code, so `return kiln_mod_init_fail(reg, KILN_E_INVALID_ARGS, ...)`. */
int kiln_mod_init_fail(kiln_mod_registry *reg, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* --- Arguments ------------------------------------------------------------ */

/* Each reads args.<key>: 0 and *out set; -KILN_E_NOT_FOUND when the key is
 * absent; -KILN_E_INVALID_ARGS when the value has another type (an integer
 * outside int64_t, a float for an int).  kilnd has validated args against
 * the action's schema before the call. */
bool kiln_mod_has_arg(kiln_mod_call *call, const char *key);
int kiln_mod_arg_int(kiln_mod_call *call, const char *key, int64_t *out);
/* Integers are accepted and converted. */
int kiln_mod_arg_float(kiln_mod_call *call, const char *key, double *out);
int kiln_mod_arg_bool(kiln_mod_call *call, const char *key, bool *out);
/* UTF-8, NUL-terminated; *len (may be NULL) excludes the NUL.  Owned by the call. */
int kiln_mod_arg_string(kiln_mod_call *call, const char *key, const char **out, size_t *len);
/* A JSON array of numbers as a contiguous C array owned by the call
 * (NULL with *n == 0 for []).  Any non-number element: -KILN_E_INVALID_ARGS. */
int kiln_mod_arg_f64_array(kiln_mod_call *call, const char *key, const double **out, size_t *n);
int kiln_mod_arg_i64_array(kiln_mod_call *call, const char *key, const int64_t **out, size_t *n);
/* The whole args object as JSON text, for modules with a JSON parser of their own. */
const char *kiln_mod_args_json(kiln_mod_call *call);

/* Element types of a numeric attachment, native byte order. */
enum kiln_mod_elem {
	KILN_MOD_F64 = 1,
	KILN_MOD_F32 = 2,
	KILN_MOD_I64 = 3,
	KILN_MOD_I32 = 4,
	KILN_MOD_U8 = 5,
};

/* Size in bytes of one element (0 for an unknown type). */
size_t kiln_mod_elem_size(enum kiln_mod_elem type);

/* The request's attachment: its bytes (read-only, at least 64-byte
 * aligned, owned by the call) and length; NULL and 0 when there is none. */
const void *kiln_mod_attachment(kiln_mod_call *call, size_t *len);
/* The attachment as an array of `type`: -KILN_E_NOT_FOUND without an
 * attachment, -KILN_E_INVALID_ARGS when its length is not a multiple of the
 * element size. */
int kiln_mod_attachment_array(kiln_mod_call *call, enum kiln_mod_elem type, const void **out, size_t *n);

/* --- Results --------------------------------------------------------------- */

/* Each sets data.<key> of the reply (replacing an earlier value).  Returns 0,
 * -KILN_E_INVALID_ARGS for a non-finite float or invalid UTF-8, or
 * -KILN_E_INTERNAL when out of memory. */
int kiln_mod_result_int(kiln_mod_call *call, const char *key, int64_t value);
int kiln_mod_result_float(kiln_mod_call *call, const char *key, double value);
int kiln_mod_result_bool(kiln_mod_call *call, const char *key, bool value);
int kiln_mod_result_string(kiln_mod_call *call, const char *key, const char *value);
int kiln_mod_result_f64_array(kiln_mod_call *call, const char *key, const double *values, size_t n);
int kiln_mod_result_i64_array(kiln_mod_call *call, const char *key, const int64_t *values, size_t n);
/* The reply's one-line message (default: "ok"). */
void kiln_mod_message(kiln_mod_call *call, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The reply's attachment: returns a writable buffer of `len` bytes (64-byte
 * aligned, zero-filled, owned by the call) that becomes the attachment when
 * the handler succeeds, or NULL when `len` exceeds the daemon's
 * max_attachment_bytes or memory is short.  A second call replaces the
 * first buffer.  The reply's data gets "attachment": len. */
void *kiln_mod_output(kiln_mod_call *call, size_t len);

/* --- Progress, cancellation, failure --------------------------------------- */

/* Reports progress (done of total units); cheap, coalesced by kilnd. */
void kiln_mod_progress(kiln_mod_call *call, uint64_t done, uint64_t total);

/* True once the call is cancelled (timeout, `cancel`, disconnect,
 * shutdown): the handler should return soon.  In process isolation a
 * handler still running a grace period later is killed with its worker. */
bool kiln_mod_cancelled(kiln_mod_call *call);

/* Fails the call with kiln error `code` (KILN_E_INVALID_ARGS, ...; codes
 * outside the enum become KILN_E_INTERNAL) and a message; results set so
 * far are dropped.  Returns -code for `return kiln_mod_fail(...)`. */
int kiln_mod_fail(kiln_mod_call *call, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#ifdef __cplusplus
}
#endif

#endif
