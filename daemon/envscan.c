/*
 * The request envelope's fast path (envscan.h): one pass over the top-level
 * object, scalars converted here, `args` and `host_list` handed to jansson
 * as their own byte ranges.  Anything unusual falls back to the jansson
 * path, which is the reference (and the source of every error reply).
 */
#include "envscan.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

/* A container nested this deep (or deeper) inside args goes to jansson,
 * whose depth limit counts the envelope's own level too. */
#define DEPTH_MARGIN 2000
/* Longest number token converted here (job_id: 18 digits stay in range). */
#define INT_DIGITS 18
#define REAL_CHARS 64

enum key {
	K_JOB_ID,
	K_ACTION,
	K_TIMEOUT,
	K_RETRIES,
	K_HOST_LIST,
	K_ARGS,
	K_PROGRESS,
	K_ACCEPT_RAW,
	K_RAW,
	K_RAW_B64,
	K_DETACH,
	K_COUNT
};

static const struct {
	const char *name;
	size_t len;
} keys[K_COUNT] = {
	[K_JOB_ID] = { "job_id", 6 },         [K_ACTION] = { "action", 6 },
	[K_TIMEOUT] = { "timeout", 7 },       [K_RETRIES] = { "retries", 7 },
	[K_HOST_LIST] = { "host_list", 9 },   [K_ARGS] = { "args", 4 },
	[K_PROGRESS] = { "progress", 8 },     [K_ACCEPT_RAW] = { "accept_raw", 10 },
	[K_RAW] = { "raw", 3 },               [K_RAW_B64] = { "raw_b64", 7 },
	[K_DETACH] = { "detach", 6 },
};

struct scan {
	const char *p, *end;
};

static int is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void skip_ws(struct scan *s)
{
	while (s->p < s->end && is_ws(*s->p))
		s->p++;
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* A string of plain printable ASCII (no escapes); *str and *len get its
 * contents.  0, or -1 for anything else. */
static int plain_string(struct scan *s, const char **str, size_t *len)
{
	const char *q;

	if (s->p == s->end || *s->p != '"')
		return -1;
	for (q = s->p + 1; q < s->end && *q != '"'; q++)
		if ((unsigned char)*q < 0x20 || (unsigned char)*q > 0x7e || *q == '\\')
			return -1;
	if (q == s->end)
		return -1;
	*str = s->p + 1;
	*len = (size_t)(q - s->p - 1);
	s->p = q + 1;
	return 0;
}

/* A JSON number token; *is_int tells whether it has neither fraction nor
 * exponent (jansson's integer). */
static int number(struct scan *s, const char **tok, size_t *len, int *is_int)
{
	const char *q = s->p;

	*is_int = 1;
	if (q < s->end && *q == '-')
		q++;
	if (q == s->end || !is_digit(*q))
		return -1;
	if (*q == '0')
		q++;
	else
		while (q < s->end && is_digit(*q))
			q++;
	if (q < s->end && *q == '.') {
		*is_int = 0;
		if (++q == s->end || !is_digit(*q))
			return -1;
		while (q < s->end && is_digit(*q))
			q++;
	}
	if (q < s->end && (*q == 'e' || *q == 'E')) {
		*is_int = 0;
		if (++q < s->end && (*q == '+' || *q == '-'))
			q++;
		if (q == s->end || !is_digit(*q))
			return -1;
		while (q < s->end && is_digit(*q))
			q++;
	}
	*tok = s->p;
	*len = (size_t)(q - s->p);
	s->p = q;
	return 0;
}

/* An integer token of at most INT_DIGITS digits, exactly as strtoll reads
 * it (as jansson does). */
static int integer(struct scan *s, long long *out)
{
	char buf[INT_DIGITS + 2];
	const char *tok;
	size_t len;
	int is_int;

	if (number(s, &tok, &len, &is_int) || !is_int || len > INT_DIGITS + (*tok == '-'))
		return -1;
	memcpy(buf, tok, len);
	buf[len] = 0;
	*out = strtoll(buf, NULL, 10);
	return 0;
}

/* Any number, as a double the way jansson's json_number_value() gives it. */
static int real(struct scan *s, double *out)
{
	char buf[REAL_CHARS + 1], *endp;
	const char *tok;
	size_t len;
	int is_int;

	if (number(s, &tok, &len, &is_int) || len > REAL_CHARS)
		return -1;
	memcpy(buf, tok, len);
	buf[len] = 0;
	if (is_int) {
		if (len > INT_DIGITS + (*tok == '-'))
			return -1;
		*out = (double)strtoll(buf, NULL, 10);
		return 0;
	}
	errno = 0;
	*out = strtod(buf, &endp);
	/* jansson refuses an overflow; a different decimal point would stop
	 * strtod early. */
	if (endp != buf + len || (errno == ERANGE && (*out > 1 || *out < -1)))
		return -1;
	return 0;
}

static int boolean(struct scan *s, bool *out)
{
	size_t left = (size_t)(s->end - s->p);

	if (left >= 4 && !memcmp(s->p, "true", 4)) {
		s->p += 4;
		*out = true;
		return 0;
	}
	if (left >= 5 && !memcmp(s->p, "false", 5)) {
		s->p += 5;
		*out = false;
		return 0;
	}
	return -1;
}

/* The bytes of the object or array at s->p, brackets matched outside
 * strings (jansson checks the rest); *empty if only whitespace is inside. */
static int container(struct scan *s, const char **start, size_t *len, int *empty)
{
	const char *q = s->p;
	unsigned depth = 0, max = 0;

	if (q == s->end || (*q != '{' && *q != '['))
		return -1;
	*empty = 1;
	for (; q < s->end; q++) {
		char c = *q;

		if (depth && !is_ws(c) && !(depth == 1 && (c == '}' || c == ']')))
			*empty = 0;
		if (c == '"') {
			for (q++; q < s->end && *q != '"'; q++)
				if (*q == '\\' && ++q == s->end)
					return -1;
			if (q == s->end)
				return -1;
		} else if (c == '{' || c == '[') {
			if (++depth > max)
				max = depth;
		} else if (c == '}' || c == ']') {
			if (--depth == 0)
				break;
		}
	}
	if (q == s->end || max >= DEPTH_MARGIN)
		return -1;
	/* Only a matching pair makes an empty container ("{]" is not one). */
	*empty &= (*s->p == '{') == (*q == '}');
	*start = s->p;
	*len = (size_t)(q + 1 - s->p);
	s->p = q + 1;
	return 0;
}

static json_t *load(const char *start, size_t len)
{
	return json_loadb(start, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, NULL);
}

static int host_list(struct scan *s, struct request *req)
{
	const char *start;
	size_t len, i;
	int empty;
	json_t *h;

	if (container(s, &start, &len, &empty) || *start != '[')
		return -1;
	req->host_list = empty ? json_array() : load(start, len);
	if (!json_is_array(req->host_list))
		return -1;
	json_array_foreach(req->host_list, i, h)
		if (!json_is_string(h))
			return -1;
	return 0;
}

static int args(struct scan *s, struct request *req)
{
	const char *start;
	size_t len;
	int empty;

	if (container(s, &start, &len, &empty) || *start != '{')
		return -1;
	req->args = empty ? json_object() : load(start, len);
	return json_is_object(req->args) ? 0 : -1;
}

static int action(struct scan *s, struct request *req)
{
	const char *str;
	size_t len;

	if (plain_string(s, &str, &len) || len == 0 || len > 128)
		return -1;
	req->action = strndup(str, len);
	return req->action ? 0 : -1;
}

static int raw_b64(struct scan *s, const struct kiln_config *cfg, struct request *req)
{
	const char *str;
	size_t len;

	if (plain_string(s, &str, &len) || base64_decode(str, len, &req->attach, &req->attach_len))
		return -1;
	return req->attach_len > cfg->max_attachment_bytes ? -1 : 0;
}

/* One value, checked as envelope.c's parse_fields() checks it. */
static int value(struct scan *s, enum key k, const struct kiln_config *cfg, struct request *req)
{
	long long n;
	double d;

	switch (k) {
	case K_JOB_ID:
		if (integer(s, &n))
			return -1;
		req->job_id = n;
		return 0;
	case K_ACTION:
		return action(s, req);
	case K_TIMEOUT:
		if (real(s, &d) || !(d > 0) || d > cfg->max_timeout)
			return -1;
		req->timeout = d;
		return 0;
	case K_RETRIES:
		if (integer(s, &n) || n < 0 || n > (long long)cfg->max_retries)
			return -1;
		req->retries = (int)n;
		return 0;
	case K_HOST_LIST:
		return host_list(s, req);
	case K_ARGS:
		return args(s, req);
	case K_PROGRESS:
		return boolean(s, &req->progress);
	case K_ACCEPT_RAW:
		return boolean(s, &req->accept_raw);
	case K_DETACH:
		return boolean(s, &req->detach);
	case K_RAW:
		if (integer(s, &n) || n < 0 || (unsigned long long)n > cfg->max_attachment_bytes)
			return -1;
		req->raw_len = (size_t)n;
		return 0;
	case K_RAW_B64:
		return raw_b64(s, cfg, req);
	default:
		return -1;
	}
}

static int key(struct scan *s, enum key *k)
{
	const char *str;
	size_t len;

	if (plain_string(s, &str, &len))
		return -1;
	for (int i = 0; i < K_COUNT; i++) {
		if (keys[i].len == len && !memcmp(keys[i].name, str, len)) {
			*k = (enum key)i;
			return 0;
		}
	}
	return -1;
}

static int members(struct scan *s, const struct kiln_config *cfg, struct request *req)
{
	unsigned seen = 0;
	enum key k;

	skip_ws(s);
	if (s->p == s->end || *s->p++ != '{')
		return -1;
	skip_ws(s);
	if (s->p < s->end && *s->p == '}') {
		s->p++;
		return -1; /* {} has no job_id */
	}
	for (;;) {
		skip_ws(s);
		if (key(s, &k) || seen >> k & 1)
			return -1;
		seen |= 1u << k;
		skip_ws(s);
		if (s->p == s->end || *s->p++ != ':')
			return -1;
		skip_ws(s);
		if (value(s, k, cfg, req))
			return -1;
		skip_ws(s);
		if (s->p == s->end)
			return -1;
		if (*s->p == '}')
			break;
		if (*s->p++ != ',')
			return -1;
	}
	s->p++;
	skip_ws(s);
	if (s->p != s->end)
		return -1;
	/* Required: job_id and action; raw_b64 and raw exclude each other. */
	if (!(seen >> K_JOB_ID & 1) || !(seen >> K_ACTION & 1) || (req->raw_len && (seen >> K_RAW_B64 & 1)))
		return -1;
	if (!req->host_list && !(req->host_list = json_array()))
		return -1;
	if (!req->args && !(req->args = json_object()))
		return -1;
	return 0;
}

int envscan_parse(const char *line, size_t len, const struct kiln_config *cfg, struct request *req)
{
	struct scan s = { line, line + len };

	memset(req, 0, sizeof(*req));
	if (!members(&s, cfg, req))
		return 0;
	request_clear(req);
	return ENVSCAN_FALLBACK;
}
