/*
 * Process-wide protection of what clients entrust to kilnd (decrypted
 * corpus text, passphrases, search strings and the replies carrying them).
 *
 * - The process is not dumpable (PR_SET_DUMPABLE 0) from startup on: no core
 *   file, and other processes of the same uid cannot ptrace it or read
 *   /proc/PID/mem.
 * - Every block jansson frees is wiped first, so request lines parsed into
 *   JSON (a passphrase, the lexer's buffers), argument values and the reply
 *   objects built from corpus text never sit in freed heap memory.  Large
 *   texts themselves live in kiln_secmem (MADV_DONTDUMP, wiped on release);
 *   output chunks are wiped in conn.c and request lines in frame.c.
 *
 * Call secrets_init() once, first thing in main (any thread may then use
 * jansson).
 */
#ifndef KILND_SECRETS_H
#define KILND_SECRETS_H

#include <stddef.h>

/* 0, or -1 with a message if the process could not be made non-dumpable. */
int secrets_init(char *err, size_t errlen);

/* free() that wipes the whole allocation first (malloc_usable_size). */
void secrets_free(void *p);

#endif
