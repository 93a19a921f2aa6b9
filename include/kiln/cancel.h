/*
 * Cooperative cancellation for long compute functions.
 *
 * The daemon owns a kiln_cancel per request and sets it on timeout, client
 * disconnect, `cancel` or shutdown; compute code polls it between units of
 * work (a tile, a file, a binary-splitting step) and returns
 * -KILN_E_CANCELLED.  A NULL pointer means "never cancelled", so the library
 * is usable in-process without any of this.
 */
#ifndef KILN_CANCEL_H
#define KILN_CANCEL_H

#include <stdatomic.h>
#include <stdbool.h>

typedef struct kiln_cancel {
	atomic_int flag; /* 0: running; otherwise the kiln_err reason */
} kiln_cancel;

static inline bool kiln_cancelled(const kiln_cancel *c)
{
	return c && atomic_load_explicit(&c->flag, memory_order_relaxed) != 0;
}

#endif
