/*
 * Shared by tests/unit/test_envscan.c and tests/fuzz/fuzz_frame.c: runs the
 * envelope's fast scanner (envscan.h) and the jansson reference path
 * (envelope_parse_json) on one line and compares them.
 */
#ifndef KILN_ENVSCAN_CHECK_H
#define KILN_ENVSCAN_CHECK_H

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "envelope.h"
#include "envscan.h"

/* Whether the two parsed requests hold the same fields. */
static inline int envscan_same(const struct request *a, const struct request *b, const char **what)
{
	if (a->job_id != b->job_id)
		return *what = "job_id", 0;
	if (strcmp(a->action, b->action))
		return *what = "action", 0;
	if (memcmp(&a->timeout, &b->timeout, sizeof(a->timeout)))
		return *what = "timeout", 0;
	if (a->retries != b->retries)
		return *what = "retries", 0;
	if (!json_equal(a->host_list, b->host_list) || !json_is_array(a->host_list))
		return *what = "host_list", 0;
	if (!json_equal(a->args, b->args) || !json_is_object(a->args))
		return *what = "args", 0;
	if (a->progress != b->progress || a->accept_raw != b->accept_raw || a->detach != b->detach)
		return *what = "flags", 0;
	if (a->raw_len != b->raw_len)
		return *what = "raw", 0;
	if (a->attach_len != b->attach_len || (a->attach_len && memcmp(a->attach, b->attach, a->attach_len)))
		return *what = "raw_b64", 0;
	return 1;
}

/*
 * Returns 1 if the scanner took the line (and agrees with jansson), 0 if it
 * fell back, -1 if they disagree (*what says where): the scanner accepted a
 * line jansson rejects, or their fields differ.
 */
static inline int envscan_check(const char *line, size_t len, const struct kiln_config *cfg, const char **what)
{
	struct request fast, ref;
	json_t *detail = NULL;
	bool have_id;
	char msg[256];
	int rc_ref, rc_fast = envscan_parse(line, len, cfg, &fast), out;

	if (rc_fast == ENVSCAN_FALLBACK) {
		static const struct request zero;
		/* A fallback leaves nothing behind. */
		if (memcmp(&fast, &zero, sizeof(zero)))
			return *what = "fallback left fields set", -1;
		return 0;
	}
	rc_ref = envelope_parse_json(line, len, cfg, &ref, &have_id, &detail, msg, sizeof(msg));
	json_decref(detail);
	if (rc_fast != 0)
		out = (*what = "unexpected return code", -1);
	else if (rc_ref != 0)
		out = (*what = "scanner accepted a line jansson rejects", -1);
	else
		out = envscan_same(&fast, &ref, what) ? 1 : -1;
	request_clear(&fast);
	if (rc_ref == 0)
		request_clear(&ref);
	return out;
}

#endif
