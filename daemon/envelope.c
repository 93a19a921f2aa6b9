/*
 * The wire envelope (envelope.h): request lines in, reply lines out.
 */
#include "envelope.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "config.h"
#include "envscan.h"
#include "kiln/error.h"
#include "kiln/utf8.h"
#include "log.h"
#include "outq.h"

static const char *const request_keys[] = {
	"job_id", "action", "timeout", "retries", "host_list", "args",
	"progress", "accept_raw", "raw", "raw_b64", "detach", "fds",
};

static int bad(json_t **detail, const char *key, char *msg, size_t msglen, const char *text)
{
	if (key)
		*detail = json_pack("{s:s}", "key", key);
	return kiln_fail(msg, msglen, -KILN_E_INVALID_REQUEST, "%s%s%s", key ? key : "", key ? ": " : "", text);
}

static int check_known_keys(json_t *root, json_t **detail, char *msg, size_t msglen)
{
	const char *key;
	json_t *v;

	json_object_foreach(root, key, v) {
		size_t i;
		int known = 0;
		for (i = 0; i < sizeof(request_keys) / sizeof(request_keys[0]); i++)
			known |= strcmp(key, request_keys[i]) == 0;
		if (!known) {
			snprintf(msg, msglen, "unknown top-level key \"%.100s\"", key);
			*detail = json_pack("{s:s}", "key", key);
			return -KILN_E_INVALID_REQUEST;
		}
	}
	return 0;
}

static int get_bool(json_t *root, const char *key, bool *out, json_t **detail, char *msg, size_t msglen)
{
	json_t *v = json_object_get(root, key);
	if (!v)
		return 0;
	if (!json_is_boolean(v))
		return bad(detail, key, msg, msglen, "expected true or false");
	*out = json_is_true(v);
	return 0;
}

/* jansson refuses integers beyond 64 bits outright.  Re-read such a line with
 * integers as reals to recover job_id and tell the client which part held
 * the oversized number, instead of a bare parse error. */
static int numeric_overflow(const char *line, size_t len, struct request *req, bool *have_id,
			    json_t **detail, char *msg, size_t msglen)
{
	json_t *root = json_loadb(line, len, JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, NULL);
	json_t *id = root ? json_object_get(root, "job_id") : NULL;
	int rc;

	if (id && json_is_real(id) && fabs(json_real_value(id)) < 9.2e18 &&
	    json_real_value(id) == floor(json_real_value(id))) {
		req->job_id = (json_int_t)json_real_value(id);
		*have_id = true;
		snprintf(msg, msglen, "an integer in args is out of the 64-bit range");
		*detail = json_pack("{s:s}", "reason", "integer out of 64-bit range");
		rc = -KILN_E_INVALID_ARGS;
	} else {
		rc = bad(detail, "job_id", msg, msglen, "integer out of the 64-bit range");
	}
	json_decref(root);
	return rc;
}

static int parse_fields(json_t *root, const struct kiln_config *cfg, struct request *req,
			json_t **detail, char *msg, size_t msglen)
{
	json_t *v;
	int rc;

	v = json_object_get(root, "action");
	if (!v)
		return bad(detail, "action", msg, msglen, "is required");
	if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 128)
		return bad(detail, "action", msg, msglen, "expected a non-empty string");
	req->action = strdup(json_string_value(v));

	if ((v = json_object_get(root, "timeout"))) {
		if (!json_is_number(v) || !(json_number_value(v) > 0))
			return bad(detail, "timeout", msg, msglen, "expected a number of seconds > 0");
		if (json_number_value(v) > cfg->max_timeout) {
			char text[96];
			snprintf(text, sizeof(text), "larger than max_timeout (%g s)", cfg->max_timeout);
			return bad(detail, "timeout", msg, msglen, text);
		}
		req->timeout = json_number_value(v);
	}
	if ((v = json_object_get(root, "retries"))) {
		if (!json_is_integer(v) || json_integer_value(v) < 0)
			return bad(detail, "retries", msg, msglen, "expected an integer >= 0");
		if (json_integer_value(v) > (json_int_t)cfg->max_retries)
			return bad(detail, "retries", msg, msglen, "larger than max_retries");
		req->retries = (int)json_integer_value(v);
	}
	if ((v = json_object_get(root, "host_list"))) {
		size_t i;
		json_t *h;
		if (!json_is_array(v))
			return bad(detail, "host_list", msg, msglen, "expected an array of strings");
		json_array_foreach(v, i, h) {
			if (!json_is_string(h))
				return bad(detail, "host_list", msg, msglen, "expected an array of strings");
		}
		req->host_list = json_incref(v);
	} else {
		req->host_list = json_array();
	}
	if ((v = json_object_get(root, "args"))) {
		if (!json_is_object(v))
			return bad(detail, "args", msg, msglen, "expected an object");
		req->args = json_incref(v);
	} else {
		req->args = json_object();
	}
	if ((rc = get_bool(root, "progress", &req->progress, detail, msg, msglen)) ||
	    (rc = get_bool(root, "accept_raw", &req->accept_raw, detail, msg, msglen)) ||
	    (rc = get_bool(root, "detach", &req->detach, detail, msg, msglen)))
		return rc;

	if ((v = json_object_get(root, "fds"))) {
		size_t i;
		json_t *p;
		if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > KILN_MAX_FDS)
			return bad(detail, "fds", msg, msglen, "expected an array of 1 to 16 absolute paths");
		json_array_foreach(v, i, p) {
			if (!json_is_string(p) || json_string_value(p)[0] != '/')
				return bad(detail, "fds", msg, msglen, "expected an array of 1 to 16 absolute paths");
		}
		req->fd_paths = json_incref(v);
	}
	if ((v = json_object_get(root, "raw"))) {
		if (!json_is_integer(v) || json_integer_value(v) < 0)
			return bad(detail, "raw", msg, msglen, "expected a byte count >= 0");
		if ((size_t)json_integer_value(v) > cfg->max_attachment_bytes) {
			snprintf(msg, msglen, "attachment of %" JSON_INTEGER_FORMAT
				 " bytes exceeds max_attachment_bytes (%zu)",
				 json_integer_value(v), cfg->max_attachment_bytes);
			*detail = json_pack("{s:s, s:I}", "limit", "max_attachment_bytes", "max",
					    (json_int_t)cfg->max_attachment_bytes);
			return -KILN_E_TOO_LARGE;
		}
		req->raw_len = (size_t)json_integer_value(v);
	}
	if ((v = json_object_get(root, "raw_b64"))) {
		if (req->raw_len)
			return bad(detail, "raw_b64", msg, msglen, "cannot be combined with raw");
		if (!json_is_string(v) ||
		    base64_decode(json_string_value(v), json_string_length(v), &req->attach,
				  &req->attach_len) != 0)
			return bad(detail, "raw_b64", msg, msglen, "expected a base64 string");
		if (req->attach_len > cfg->max_attachment_bytes) {
			snprintf(msg, msglen, "attachment exceeds max_attachment_bytes (%zu)",
				 cfg->max_attachment_bytes);
			*detail = json_pack("{s:s, s:I}", "limit", "max_attachment_bytes", "max",
					    (json_int_t)cfg->max_attachment_bytes);
			return -KILN_E_TOO_LARGE;
		}
	}
	return 0;
}

int envelope_parse(const char *line, size_t len, const struct kiln_config *cfg, struct request *req,
		   bool *have_id, json_t **detail, char *msg, size_t msglen)
{
	if (envscan_parse(line, len, cfg, req) == 0) {
		*have_id = true;
		*detail = NULL;
		return 0;
	}
	return envelope_parse_json(line, len, cfg, req, have_id, detail, msg, msglen);
}

int envelope_parse_json(const char *line, size_t len, const struct kiln_config *cfg, struct request *req,
			bool *have_id, json_t **detail, char *msg, size_t msglen)
{
	json_error_t jerr;
	json_t *root, *id;
	int rc;

	memset(req, 0, sizeof(*req));
	*have_id = false;
	*detail = NULL;
	root = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
	if (!root) {
		if (json_error_code(&jerr) == json_error_numeric_overflow)
			return numeric_overflow(line, len, req, have_id, detail, msg, msglen);
		snprintf(msg, msglen, "invalid JSON at byte %d: %s", jerr.position, jerr.text);
		*detail = json_pack("{s:i, s:s}", "position", jerr.position, "reason", jerr.text);
		return -KILN_E_PARSE;
	}
	if (!json_is_object(root)) {
		json_decref(root);
		snprintf(msg, msglen, "a request must be a JSON object");
		return -KILN_E_PARSE;
	}
	/* Learn the attachment size first: whatever else is wrong with the
	 * request, its bytes must be skipped to keep the stream in step. */
	id = json_object_get(root, "raw");
	if (json_is_integer(id) && json_integer_value(id) >= 0 &&
	    (size_t)json_integer_value(id) <= cfg->max_attachment_bytes)
		req->raw_len = (size_t)json_integer_value(id);
	id = json_object_get(root, "job_id");
	if (json_is_integer(id)) {
		req->job_id = json_integer_value(id);
		*have_id = true;
	}
	if (!id)
		rc = bad(detail, "job_id", msg, msglen, "is required");
	else if (!*have_id)
		rc = bad(detail, "job_id", msg, msglen, "expected an integer");
	else if (!(rc = check_known_keys(root, detail, msg, msglen)))
		rc = parse_fields(root, cfg, req, detail, msg, msglen);
	json_decref(root);
	if (rc) {
		json_int_t keep = req->job_id;
		size_t raw = req->raw_len;
		request_clear(req);
		req->job_id = keep;
		req->raw_len = raw;
	}
	return rc;
}

void request_clear(struct request *req)
{
	for (size_t i = 0; i < req->nfds; i++)
		close(req->fds[i]);
	json_decref(req->fd_paths);
	free(req->action);
	json_decref(req->host_list);
	json_decref(req->args);
	if (req->attach) {
		OPENSSL_cleanse(req->attach, req->attach_len);
		free(req->attach);
	}
	memset(req, 0, sizeof(*req));
}

/* --- Replies ---------------------------------------------------------------- */

/* Appends a string literal (its length known at compile time). */
#define PUT(q, lit) outq_append((q), (lit), sizeof(lit) - 1)

/* Appends s[0..n) as a JSON string escaped as jansson's encoder escapes it
 * (\\ \" \b \f \n \r \t, other controls as \u00XX).  Invalid UTF-8
 * becomes U+FFFD, so a reply line is always valid JSON: messages quote
 * client input cut to byte limits ("%.100s"), which can split a sequence. */
static void put_json_string(struct outq *q, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	char *p = outq_reserve(q, 6 * n + 2), *start = p;
	const unsigned char *u = (const unsigned char *)s, *end = u + n;
	uint32_t cp;

	*p++ = '"';
	while (u < end) {
		unsigned char ch = *u;
		size_t len;

		if (ch >= 0x20 && ch < 0x80 && ch != '"' && ch != '\\') {
			*p++ = (char)*u++;
			continue;
		}
		if (ch < 0x80) {
			*p++ = '\\';
			switch (ch) {
			case '"': *p++ = '"'; break;
			case '\\': *p++ = '\\'; break;
			case '\b': *p++ = 'b'; break;
			case '\f': *p++ = 'f'; break;
			case '\n': *p++ = 'n'; break;
			case '\r': *p++ = 'r'; break;
			case '\t': *p++ = 't'; break;
			default:
				memcpy(p, "u00", 3);
				p[3] = hex[ch >> 4];
				p[4] = hex[ch & 15];
				p += 5;
			}
			u++;
			continue;
		}
		len = kiln_utf8_decode(u, (size_t)(end - u), &cp);
		if (len == 0) {
			memcpy(p, "\xef\xbf\xbd", 3);
			p += 3;
			u++;
			continue;
		}
		memcpy(p, u, len);
		p += len;
		u += len;
	}
	*p++ = '"';
	outq_commit(q, (size_t)(p - start));
}

static void put_int(struct outq *q, json_int_t v)
{
	char *p = outq_reserve(q, 24), buf[24];
	unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
	size_t n = 0, i;

	do {
		buf[n++] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		buf[n++] = '-';
	for (i = 0; i < n; i++)
		p[i] = buf[n - 1 - i];
	outq_commit(q, n);
}

/* A real as jansson writes it: %.17g, ".0" added when it would read back
 * as an integer, the exponent without '+' or leading zeros. */
static void put_real(struct outq *q, double v)
{
	char buf[40], *e, *digits;
	/* strfromd: the same digits as snprintf("%.17g") at a fraction of the
	 * cost of the general printf machinery. */
	int n = strfromd(buf, sizeof(buf), "%.17g", v);

	if (n < 0 || (size_t)n >= sizeof(buf) - 3)
		fatal("cannot format a real");
	if (!strchr(buf, '.') && !strchr(buf, 'e')) {
		memcpy(buf + n, ".0", 3);
		n += 2;
	}
	e = strchr(buf, 'e');
	if (e) {
		digits = e + 1 + (e[1] == '-');
		e += 2; /* past the sign, or the first digit */
		while (*e == '0' || *e == '+')
			e++;
		if (e != digits) {
			memmove(digits, e, strlen(e) + 1);
			n = (int)strlen(buf);
		}
	}
	outq_append(q, buf, (size_t)n);
}

/* Appends the compact JSON text of `v`, exactly as json_dumpb(v,
 * JSON_COMPACT | JSON_ENCODE_ANY) would write it (object keys in insertion
 * order), without jansson's callback machinery: this runs for every reply. */
static void put_json(struct outq *q, json_t *v)
{
	const char *key;
	size_t i, n, key_len;
	json_t *x;

	switch (json_typeof(v)) {
	case JSON_OBJECT:
		outq_append(q, "{", 1);
		n = 0;
		json_object_keylen_foreach(v, key, key_len, x) {
			if (n++)
				outq_append(q, ",", 1);
			put_json_string(q, key, key_len);
			outq_append(q, ":", 1);
			put_json(q, x);
		}
		outq_append(q, "}", 1);
		break;
	case JSON_ARRAY:
		outq_append(q, "[", 1);
		json_array_foreach(v, i, x) {
			if (i)
				outq_append(q, ",", 1);
			put_json(q, x);
		}
		outq_append(q, "]", 1);
		break;
	case JSON_STRING:
		put_json_string(q, json_string_value(v), json_string_length(v));
		break;
	case JSON_INTEGER:
		put_int(q, json_integer_value(v));
		break;
	case JSON_REAL:
		put_real(q, json_real_value(v));
		break;
	case JSON_TRUE:
		PUT(q, "true");
		break;
	case JSON_FALSE:
		PUT(q, "false");
		break;
	default:
		PUT(q, "null");
		break;
	}
}

static void put_job_id(struct outq *q, const json_int_t *job_id)
{
	char num[48];
	int n;

	if (!job_id) {
		PUT(q, "{\"job_id\":null,\"result\":");
		return;
	}
	n = snprintf(num, sizeof(num), "{\"job_id\":%" JSON_INTEGER_FORMAT ",\"result\":", *job_id);
	outq_append(q, num, (size_t)n);
}

void envelope_write_reply(struct outq *q, const json_int_t *job_id, const struct reply *r, void *attach,
			  size_t attach_len, void (*attach_free)(void *), bool raw)
{
	char num[48];

	assert(r->result && (!attach || attach_free));
	/* The envelope is written as text and only the payload objects go
	 * through jansson: this is the hot path of every request. */
	put_job_id(q, job_id);
	put_json_string(q, r->result, strlen(r->result));
	PUT(q, ",\"message\":");
	put_json_string(q, r->message ? r->message : "", r->message ? strlen(r->message) : 0);
	PUT(q, ",\"failed_hosts\":");
	if (r->failed_hosts)
		put_json(q, r->failed_hosts);
	else
		PUT(q, "[]");
	PUT(q, ",\"data\":");
	if (r->data)
		put_json(q, r->data);
	else
		PUT(q, "{}");
	if (r->error) {
		PUT(q, ",\"error\":");
		put_json(q, r->error);
	}
	if (attach && raw) {
		int n = snprintf(num, sizeof(num), ",\"raw\":%zu}\n", attach_len);
		outq_append(q, num, (size_t)n);
		outq_attach(q, attach, attach_len, attach_free);
		return;
	}
	if (attach) {
		size_t n;
		char *b64 = base64_encode(attach, attach_len, &n);
		PUT(q, ",\"raw_b64\":\"");
		outq_append(q, b64, n);
		PUT(q, "\"");
		free(b64);
		attach_free(attach);
	}
	PUT(q, "}\n");
}

void envelope_write_error(struct outq *q, const json_int_t *job_id, int code, json_t *detail,
			  const char *message)
{
	struct reply r = { "error", message, NULL, NULL, envelope_error_object(code, detail) };

	envelope_write_reply(q, job_id, &r, NULL, 0, NULL, false);
	json_decref(r.error);
}

void envelope_write_progress(struct outq *q, json_int_t job_id, json_t *progress)
{
	put_job_id(q, &job_id);
	PUT(q, "\"progress\",\"progress\":");
	put_json(q, progress);
	PUT(q, "}\n");
}

json_t *envelope_reply_json(const json_int_t *job_id, const struct reply *r, void *attach,
			    size_t attach_len, void (*attach_free)(void *))
{
	struct outq q;
	struct outq_chunk *list;
	unsigned count;
	size_t bytes, off = 0;
	char *text;
	json_t *v;

	outq_init(&q);
	envelope_write_reply(&q, job_id, r, attach, attach_len, attach_free, false);
	list = outq_take(&q, &count, &bytes);
	text = malloc(bytes);
	if (!text)
		fatal("out of memory");
	for (struct outq_chunk *ch = list; ch; ch = ch->next) {
		memcpy(text + off, ch->data, ch->len);
		off += ch->len;
	}
	outq_release(&q, list);
	outq_clear(&q);
	v = json_loadb(text, bytes, 0, NULL);
	free(text);
	if (!v)
		fatal("the reply encoder wrote a line that is not JSON");
	return v;
}

json_t *envelope_error_object(int code, json_t *detail)
{
	json_t *err = json_object();

	assert(code > 0);
	json_object_set_new(err, "code", json_string(kiln_err_name(code)));
	json_object_set_new(err, "detail", detail ? detail : json_null());
	return err;
}

/* --- Base64 ---------------------------------------------------------------- */

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *base64_encode(const unsigned char *data, size_t len, size_t *outlen)
{
	size_t n = 4 * ((len + 2) / 3), i, o = 0;
	char *out = malloc(n + 1);

	if (!out)
		fatal("out of memory");
	for (i = 0; i + 2 < len; i += 3) {
		unsigned v = (unsigned)data[i] << 16 | (unsigned)data[i + 1] << 8 | data[i + 2];
		out[o++] = b64chars[v >> 18];
		out[o++] = b64chars[(v >> 12) & 63];
		out[o++] = b64chars[(v >> 6) & 63];
		out[o++] = b64chars[v & 63];
	}
	if (i < len) {
		unsigned v = (unsigned)data[i] << 16 | (i + 1 < len ? (unsigned)data[i + 1] << 8 : 0);
		out[o++] = b64chars[v >> 18];
		out[o++] = b64chars[(v >> 12) & 63];
		out[o++] = i + 1 < len ? b64chars[(v >> 6) & 63] : '=';
		out[o++] = '=';
	}
	out[o] = '\0';
	if (outlen)
		*outlen = o;
	return out;
}

static int b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int base64_decode(const char *s, size_t len, unsigned char **out, size_t *outlen)
{
	unsigned char *buf;
	size_t i, o = 0, pad = 0;

	if (len % 4)
		return -1;
	if (len && s[len - 1] == '=')
		pad++;
	if (len > 1 && s[len - 2] == '=')
		pad++;
	buf = malloc(len / 4 * 3 + 1);
	if (!buf)
		fatal("out of memory");
	for (i = 0; i < len; i += 4) {
		int a = b64val((unsigned char)s[i]), b = b64val((unsigned char)s[i + 1]);
		int c = b64val((unsigned char)s[i + 2]), d = b64val((unsigned char)s[i + 3]);
		int last = i + 4 == len;
		if (a < 0 || b < 0 || (c < 0 && !(last && pad >= 2)) || (d < 0 && !(last && pad >= 1)))
			goto fail;
		buf[o++] = (unsigned char)(a << 2 | b >> 4);
		if (c >= 0)
			buf[o++] = (unsigned char)((b & 15) << 4 | c >> 2);
		if (c >= 0 && d >= 0)
			buf[o++] = (unsigned char)((c & 3) << 6 | d);
	}
	*out = buf;
	*outlen = o;
	return 0;
fail:
	free(buf);
	return -1;
}
