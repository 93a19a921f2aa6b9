/*
 * Non-dumpable process and wiping frees for jansson (see secrets.h).
 */
#include "secrets.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include <jansson.h>
#include <openssl/crypto.h>

void secrets_free(void *p)
{
	if (!p)
		return;
	OPENSSL_cleanse(p, malloc_usable_size(p));
	free(p);
}

int secrets_init(char *err, size_t errlen)
{
	json_set_alloc_funcs(malloc, secrets_free);
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
		snprintf(err, errlen, "prctl(PR_SET_DUMPABLE, 0): %s", strerror(errno));
		return -1;
	}
	return 0;
}
