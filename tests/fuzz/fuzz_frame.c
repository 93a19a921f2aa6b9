/*
 * The line framer and the request envelope, directly: the input is cut into
 * chunks as reads would deliver them, lines are taken with frame_next_line()
 * and parsed with envelope_parse(), attachments are skipped with
 * frame_take() as conn.c does, and every outcome is encoded as a reply line
 * (envelope_write_*) that must read back as one JSON object with its
 * message.
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
#include "outq.h"

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

/* A reply line must always be one JSON object ending in '\n', with its
 * message (a message built from client bytes must stay valid UTF-8). */
static void check_reply(struct outq *q)
{
	unsigned count;
	size_t bytes, off = 0;
	struct outq_chunk *list = outq_take(q, &count, &bytes);
	char *text = malloc(bytes + 1);
	json_t *reply;

	if (!text || count == 0)
		abort();
	for (struct outq_chunk *ch = list; ch; ch = ch->next) {
		memcpy(text + off, ch->data, ch->len);
		off += ch->len;
	}
	outq_release(q, list);
	if (off != bytes || text[bytes - 1] != '\n' || memchr(text, '\n', bytes - 1))
		abort();
	reply = json_loadb(text, bytes, 0, NULL);
	if (!json_is_string(json_object_get(reply, "message")) || !json_object_get(reply, "result")) {
		fprintf(stderr, "fuzz: reply without message or result\n");
		abort();
	}
	json_decref(reply);
	free(text);
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

static void one_line(struct outq *q, const char *line, size_t len, size_t *skip)
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
		envelope_write_error(q, have_id ? &req.job_id : NULL, -rc, detail, msg);
	} else {
		struct reply r = { "success", req.action, req.host_list, req.args, NULL };
		if (!req.action || !json_is_object(req.args) || !json_is_array(req.host_list))
			abort();
		check_b64(&req);
		envelope_write_reply(q, &req.job_id, &r, NULL, 0, NULL, false);
	}
	check_reply(q);
	*skip = req.raw_len;
	request_clear(&req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct frame f;
	struct outq q;
	size_t chunk, max, pos = 0, skip = 0;

	if (size < 2)
		return 0;
	chunk = data[0] ? data[0] : size;
	max = 64 + (size_t)data[1] * 8;
	data += 2;
	size -= 2;
	frame_init(&f);
	outq_init(&q);
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
			one_line(&q, line, len, &skip);
		}
	}
out:
	frame_free(&f);
	outq_clear(&q);
	return 0;
}
