/*
 * The wire envelope, the whole contract of a line on the socket: parsing a
 * request line into a struct request (ProcedureInput), and the one encoder
 * of reply lines (ProcedureOutput, progress), which writes into an output
 * queue (outq.h).  No I/O; the core reaches the wire only through here.
 */
#ifndef KILND_ENVELOPE_H
#define KILND_ENVELOPE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct kiln_config;

/* Supplementary groups kept per peer; more are dropped (which only ever
 * takes rights away: access lists and file checks see fewer groups). */
#define KILN_PEER_MAX_GROUPS 64

/* Who sent a request: the connection's SO_PEERCRED and SO_PEERGROUPS. */
struct kiln_peer {
	uid_t uid;
	gid_t gid;
	pid_t pid;
	int ngroups;                        /* supplementary groups in groups[] */
	gid_t groups[KILN_PEER_MAX_GROUPS];
};

#define KILN_MAX_FDS 16

/* The parsed envelope (ProcedureInput; envelope_parse() fills it). */
struct request {
	json_int_t job_id;
	char *action;       /* owned */
	double timeout;     /* seconds; 0 = config default */
	int retries;
	json_t *host_list;  /* owned reference; empty array when absent */
	json_t *args;       /* owned reference; empty object when absent */
	bool progress;      /* stream progress lines */
	bool accept_raw;    /* reply attachments as raw bytes after the line */
	bool detach;        /* issue 7: detached job */
	size_t raw_len;     /* bytes of raw attachment following the line */
	unsigned char *attach; /* owned: raw or decoded raw_b64 bytes */
	size_t attach_len;
	/* Descriptors passed with the line (SCM_RIGHTS): "fds" names, in order,
	 * the path string each one stands for; conn.c receives them. */
	json_t *fd_paths;   /* owned reference, or NULL */
	int fds[KILN_MAX_FDS]; /* owned, closed by request_clear */
	size_t nfds;        /* descriptors received into fds[] */
};

/*
 * Parses and validates one request line.  Returns 0, or -KILN_E_PARSE,
 * -KILN_E_INVALID_REQUEST, -KILN_E_INVALID_ARGS (an integer out of 64-bit
 * range inside args) or -KILN_E_TOO_LARGE (declared attachment over the
 * limit), with a one-line message and, where useful, *detail (new reference).
 * *have_id tells whether req->job_id was recovered, for the error reply.
 * On success the caller owns req's contents (request_clear()).
 */
int envelope_parse(const char *line, size_t len, const struct kiln_config *cfg, struct request *req,
		   bool *have_id, json_t **detail, char *msg, size_t msglen);

/* The same with jansson parsing the whole line: the reference that
 * envelope_parse()'s fast scanner (envscan.h) is held to, and the path it
 * falls back to.  For tests and fuzzing. */
int envelope_parse_json(const char *line, size_t len, const struct kiln_config *cfg, struct request *req,
			bool *have_id, json_t **detail, char *msg, size_t msglen);

/* Frees and wipes what req holds; req itself is the caller's. */
void request_clear(struct request *req);

struct outq;

/* The parts of a final reply (ProcedureOutput); references are borrowed. */
struct reply {
	const char *result;
	const char *message;  /* any bytes: invalid UTF-8 is written as U+FFFD */
	json_t *failed_hosts; /* NULL: [] */
	json_t *data;         /* NULL: {} */
	json_t *error;        /* NULL: none */
};

/* Writes one reply line for request `job_id` (NULL: null).  An attachment
 * is consumed: with `raw` it follows the line as its own chunk ("raw": n),
 * else it is inlined as "raw_b64". */
void envelope_write_reply(struct outq *q, const json_int_t *job_id, const struct reply *r, void *attach,
			  size_t attach_len, void (*attach_free)(void *), bool raw);
/* An error reply line: result "error", error {code, detail}; detail stolen. */
void envelope_write_error(struct outq *q, const json_int_t *job_id, int code, json_t *detail,
			  const char *message);
/* A progress line {"job_id", "result": "progress", "progress"}; borrowed. */
void envelope_write_progress(struct outq *q, json_int_t job_id, json_t *progress);

/* The same reply as a JSON object (a detached job's record keeps it),
 * written by the encoder above and read back; an attachment is consumed
 * into "raw_b64".  New reference. */
json_t *envelope_reply_json(const json_int_t *job_id, const struct reply *r, void *attach,
			    size_t attach_len, void (*attach_free)(void *));
/* The {"code", "detail"} object of an error reply; detail stolen (NULL: null). */
json_t *envelope_error_object(int code, json_t *detail);

/* Base64 (RFC 4648, with padding).  encode returns a malloc'ed NUL-terminated
 * string; decode returns 0 and a malloc'ed buffer, or -1 on bad input. */
char *base64_encode(const unsigned char *data, size_t len, size_t *outlen);
int base64_decode(const char *s, size_t len, unsigned char **out, size_t *outlen);

#endif
