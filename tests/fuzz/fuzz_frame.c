/*
 * The line framer and the request envelope, directly: the input is cut into
 * chunks as reads would deliver them, lines are taken with frame_next_line()
 * and parsed with envelope_parse(), attachments are skipped with
 * frame_take() as conn.c does, and every outcome is turned into a reply that
 * must serialise.
 *
 * Input: byte 0 picks the chunk size, byte 1 the line limit, the rest is
 * the stream.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "config.h"
#include "envelope.h"
#include "frame.h"

static const struct kiln_config *config(void)
{
	static struct kiln_config *cfg;
	char err[256];

	if (!cfg) {
		fz_quiet();
		cfg = config_load(NULL, err, sizeof(err));
		if (!cfg)
			abort();
	}
	return cfg;
}

/* A reply must always serialise with its message (a message built from
 * client bytes must stay valid UTF-8). */
static void check_reply(json_t *reply)
{
	char *s;

	if (!json_is_string(json_object_get(reply, "message")) || !json_object_get(reply, "result")) {
		fprintf(stderr, "fuzz: reply without message or result\n");
		abort();
	}
	s = json_dumps(reply, JSON_COMPACT);
	if (!s)
		abort();
	free(s);
	json_decref(reply);
}

static void check_b64(const struct request *req)
{
	size_t n, m;
	char *enc;
	unsigned char *dec;

	if (!req->attach)
		return;
	enc = base64_encode(req->attach, req->attach_len, &n);
	if (base64_decode(enc, n, &dec, &m) != 0 || m != req->attach_len ||
	    memcmp(dec, req->attach, m) != 0)
		abort();
	free(enc);
	free(dec);
}

static void one_line(const char *line, size_t len, size_t *skip)
{
	struct request req;
	json_t *detail = NULL;
	bool have_id;
	char msg[512];
	int rc;

	rc = envelope_parse(line, len, config(), &req, &have_id, &detail, msg, sizeof(msg));
	if (rc) {
		if (rc >= 0 || -rc >= 12)
			abort();
		check_reply(envelope_error(have_id ? &req.job_id : NULL, -rc, detail, msg));
	} else {
		if (!req.action || !json_is_object(req.args) || !json_is_array(req.host_list))
			abort();
		check_b64(&req);
		check_reply(envelope_reply(&req.job_id, "success", req.action, json_incref(req.host_list),
					   json_incref(req.args), NULL));
	}
	*skip = req.raw_len;
	request_clear(&req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct frame f;
	size_t chunk, max, pos = 0, skip = 0;

	if (size < 2)
		return 0;
	chunk = data[0] ? data[0] : size;
	max = 64 + (size_t)data[1] * 8;
	data += 2;
	size -= 2;
	frame_init(&f);
	while (pos < size) {
		size_t n = size - pos < chunk ? size - pos : chunk;
		frame_append(&f, (const char *)data + pos, n);
		pos += n;
		for (;;) {
			char *line;
			size_t len;
			int rc;
			if (skip) {
				skip -= frame_take(&f, NULL, skip);
				if (skip)
					break;
			}
			rc = frame_next_line(&f, max, &line, &len);
			if (rc == FRAME_TOO_LONG)
				goto out; /* the connection is closed */
			if (rc == FRAME_NEED_MORE)
				break;
			if (len > max || line[len] != '\0' || memchr(line, '\n', len))
				abort();
			one_line(line, len, &skip);
		}
	}
out:
	frame_free(&f);
	return 0;
}
