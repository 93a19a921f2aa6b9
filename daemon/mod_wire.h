/*
 * The module-host protocol: messages between kilnd and a module worker
 * process over a SOCK_SEQPACKET socketpair (one message per send, so no
 * framing), with big payloads in sealed memfds passed beside a message
 * (SCM_RIGHTS) instead of being copied through the socket.
 *
 *   kilnd -> host  MW_INIT    json {"path", "config"}; the module file is the host's fd 4
 *   host -> kilnd  MW_HELLO   json {"actions": [{name, summary, args, data}]} or {"error": msg}
 *   kilnd -> host  MW_CALL    id, json {"action", "args"}, attachment
 *   host -> kilnd  MW_PROGRESS id, a = done, b = total
 *   host -> kilnd  MW_RESULT  id, code (0 or KILN_E_*), json {"data", "message"}, attachment
 *
 * A payload (JSON text and an attachment) travels inline after the header
 * when it fits in MW_INLINE_MAX (JSON at 0, the attachment 64-byte aligned
 * after it), else in a memfd sealed against shrinking, growing and
 * writing, so the receiver can map it without fearing SIGBUS.  In a memfd
 * an attachment starts at MW_PAGE (the first page is the receiver's, for
 * its bookkeeping: kilnd maps the memfd privately and keeps the mapping's
 * size there until the reply attachment is freed), and the JSON follows it.
 *
 * Cancellation does not need a message: kilnd writes the call id into the
 * worker's shared control page (struct mw_ctl), which the handler polls.
 *
 * Pure functions on file descriptors: no libuv, any thread.
 */
#ifndef KILND_MOD_WIRE_H
#define KILND_MOD_WIRE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define MW_INLINE_MAX (32 * 1024)
#define MW_ALIGN 64
#define MW_PAGE 4096

/* The host's descriptors. */
#define MW_FD_SOCK 3
#define MW_FD_MODULE 4
#define MW_FD_CTL 5

enum mw_type { MW_INIT = 1, MW_HELLO, MW_CALL, MW_PROGRESS, MW_RESULT };

/* 64 bytes, so an inline body after it keeps the buffer's alignment. */
struct mw_hdr {
	uint32_t type;
	int32_t code;
	uint64_t id;
	uint64_t a, b;
	uint64_t json_len;
	uint64_t json_off;   /* in the body or the memfd (set by mw_send) */
	uint64_t attach_len;
	uint32_t attach_off; /* idem */
	uint32_t has_fd;     /* the payload is in the passed memfd */
};

struct mw_ctl {
	_Atomic uint64_t cancel_id; /* the call kilnd has cancelled (0: none) */
};

/* A received message: the header, the payload's JSON (NUL-terminated) and
 * attachment, pointing into `buf` or into a mapping of the memfd. */
struct mw_msg {
	struct mw_hdr h;
	char *json;
	void *attach;
	void *buf;          /* owned: the inline buffer */
	void *map;          /* owned: the payload mapping (NULL once taken) */
	size_t map_len;
};

/* Sends one message: the payload goes inline or through a new memfd.
 * h->json_len and h->attach_len give the sizes; the offsets are set here.
 * Blocks as the socket does.  Returns 0 or -errno (-EAGAIN when a
 * non-blocking socket is full). */
int mw_send(int sock, struct mw_hdr *h, const char *json, const void *attach);

/* Sends a message whose attachment is already at MW_PAGE in `fd` (from
 * mw_memfd_attachment, unmapped): appends the JSON after it, seals and
 * passes it.  Does not close fd.  0 or -errno. */
int mw_send_with_memfd(int sock, struct mw_hdr *h, const char *json, int fd);

/* Receives one message.  Returns 1 with *m filled, 0 at end of stream, or
 * -errno (-EAGAIN: nothing yet; -EPROTO: malformed message or memfd).
 * `writable_map`: a memfd payload is mapped privately and writable (the
 * receiver may take the attachment with mw_msg_take_attachment), else
 * shared read-only. */
int mw_recv(int sock, struct mw_msg *m, int writable_map);
void mw_msg_free(struct mw_msg *m);

/* Takes a received attachment that lives in a writable memfd mapping:
 * returns it (release with mw_attachment_free) or NULL if the attachment
 * is inline (then copy it). */
void *mw_msg_take_attachment(struct mw_msg *m);
void mw_attachment_free(void *attach);

/* A memfd for an attachment of len bytes at MW_PAGE, mapped writable at
 * *data; mw_memfd_unmap() before mw_send_with_memfd.  fd or -errno. */
int mw_memfd_attachment(size_t len, void **data);
void mw_memfd_unmap(void *data, size_t len);

#endif
