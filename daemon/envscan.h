/*
 * The fast path of the request envelope: a purpose-built scanner for the
 * top level of a request line, so the common request costs no general JSON
 * parse of the envelope.  jansson still parses the values of `args` and
 * `host_list` (their own bytes only).
 *
 * Contract: envscan_parse() either fills *req exactly as envelope_parse()'s
 * jansson path would for the same line and returns 0, or leaves *req zeroed
 * and returns ENVSCAN_FALLBACK, in which case the caller parses the line
 * with jansson (which then also produces the error reply for a bad line).
 * It never accepts a line jansson rejects.  It falls back on anything
 * unusual: escapes or non-ASCII bytes in keys and in `action` / `raw_b64`,
 * duplicate or unknown keys, numbers it cannot convert exactly as jansson
 * does, any value failing a check.  tests/unit/test_envscan.c and the fuzz
 * target tests/fuzz/fuzz_envscan.c compare the two paths on every input.
 *
 * Pure: no I/O, no global state; thread-safe.  On success the caller owns
 * req's contents (request_clear()).
 */
#ifndef KILND_ENVSCAN_H
#define KILND_ENVSCAN_H

#include <stddef.h>

#include "envelope.h"

#define ENVSCAN_FALLBACK 1

struct kiln_config;

int envscan_parse(const char *line, size_t len, const struct kiln_config *cfg, struct request *req);

#endif
