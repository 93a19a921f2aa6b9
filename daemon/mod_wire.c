/*
 * The module-host protocol's messages (see mod_wire.h).
 */
#include "mod_wire.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

_Static_assert(sizeof(struct mw_hdr) == 64, "mw_hdr keeps an inline body 64-byte aligned");

#define SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL)

static size_t round_up(size_t n, size_t to)
{
	return (n + to - 1) / to * to;
}

static int send_hdr(int sock, const struct mw_hdr *h, struct iovec *iov, int niov, int fd)
{
	union {
		struct cmsghdr c;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)niov };
	ssize_t n;

	iov[0].iov_base = (void *)h;
	iov[0].iov_len = sizeof(*h);
	if (fd >= 0) {
		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = sizeof(ctl.buf);
		ctl.c.cmsg_level = SOL_SOCKET;
		ctl.c.cmsg_type = SCM_RIGHTS;
		ctl.c.cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(&ctl.c), &fd, sizeof(int));
	}
	/* Blocking or not as the socket is: kilnd's end never blocks, the
	 * host's does (its result must get through). */
	do
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : 0;
}

static int write_all(int fd, const void *p, size_t len, off_t off)
{
	while (len > 0) {
		ssize_t n = pwrite(fd, p, len, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p = (const char *)p + n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

static int seal(int fd)
{
	return fcntl(fd, F_ADD_SEALS, SEALS) == 0 ? 0 : -errno;
}

int mw_memfd_attachment(size_t len, void **data)
{
	int fd = memfd_create("kiln-module", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	void *p;

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)(MW_PAGE + round_up(len ? len : 1, MW_PAGE))) != 0)
		goto fail;
	p = mmap(NULL, len ? len : 1, PROT_READ | PROT_WRITE, MAP_SHARED, fd, MW_PAGE);
	if (p == MAP_FAILED)
		goto fail;
	*data = p;
	return fd;
fail:
	{
		int e = errno;
		close(fd);
		return -e;
	}
}

void mw_memfd_unmap(void *data, size_t len)
{
	if (data)
		munmap(data, len ? len : 1);
}

int mw_send_with_memfd(int sock, struct mw_hdr *h, const char *json, int fd)
{
	struct iovec iov[1];
	int rc;

	h->attach_off = MW_PAGE;
	h->json_off = MW_PAGE + round_up(h->attach_len, MW_ALIGN);
	h->has_fd = 1;
	if (ftruncate(fd, (off_t)(h->json_off + h->json_len + 1)) != 0)
		return -errno;
	rc = write_all(fd, json, h->json_len, (off_t)h->json_off);
	if (!rc)
		rc = seal(fd);
	return rc ? rc : send_hdr(sock, h, iov, 1, fd);
}

int mw_send(int sock, struct mw_hdr *h, const char *json, const void *attach)
{
	static const char zeros[MW_ALIGN];
	/* At least one byte of padding: the receiver terminates the JSON there. */
	size_t pad = h->attach_len ? round_up(h->json_len + 1, MW_ALIGN) - h->json_len : 0;
	struct iovec iov[4];
	void *data;
	int fd, rc;

	if (h->json_len + pad + h->attach_len <= MW_INLINE_MAX) {
		h->has_fd = 0;
		h->json_off = 0;
		h->attach_off = (uint32_t)(h->json_len + pad);
		iov[1] = (struct iovec){ (void *)json, h->json_len };
		iov[2] = (struct iovec){ (void *)zeros, pad };
		iov[3] = (struct iovec){ (void *)attach, h->attach_len };
		return send_hdr(sock, h, iov, 4, -1);
	}
	fd = mw_memfd_attachment(h->attach_len, &data);
	if (fd < 0)
		return fd;
	if (h->attach_len)
		memcpy(data, attach, h->attach_len);
	mw_memfd_unmap(data, h->attach_len);
	rc = mw_send_with_memfd(sock, h, json, fd);
	close(fd);
	return rc;
}

static int take_fd(struct msghdr *mh)
{
	int fd = -1;

	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
			int f;
			memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (fd < 0)
				fd = f;
			else
				close(f);
		}
	}
	return fd;
}

/* Maps the memfd payload after checking its seals and size. */
static int map_payload(struct mw_msg *m, int fd, int writable)
{
	struct stat st;
	int seals = fcntl(fd, F_GET_SEALS);
	uint64_t json_end = m->h.json_off + m->h.json_len;
	uint64_t attach_end = (uint64_t)m->h.attach_off + m->h.attach_len;

	if (seals < 0 || (seals & (F_SEAL_SHRINK | F_SEAL_GROW)) != (F_SEAL_SHRINK | F_SEAL_GROW) ||
	    fstat(fd, &st) != 0)
		return -EPROTO;
	/* The JSON needs a terminating byte inside the file (a 0 we write). */
	if (json_end + 1 > (uint64_t)st.st_size || attach_end > (uint64_t)st.st_size ||
	    json_end < m->h.json_off || (m->h.attach_len && m->h.attach_off != MW_PAGE))
		return -EPROTO;
	m->map_len = (size_t)st.st_size;
	m->map = mmap(NULL, m->map_len, writable ? PROT_READ | PROT_WRITE : PROT_READ,
		      writable ? MAP_PRIVATE : MAP_SHARED, fd, 0);
	if (m->map == MAP_FAILED) {
		m->map = NULL;
		return -errno;
	}
	m->json = (char *)m->map + m->h.json_off;
	m->attach = m->h.attach_len ? (char *)m->map + m->h.attach_off : NULL;
	return 0;
}

int mw_recv(int sock, struct mw_msg *m, int writable_map)
{
	union {
		struct cmsghdr c;
		char buf[CMSG_SPACE(4 * sizeof(int))];
	} ctl;
	struct iovec iov;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
			     .msg_controllen = sizeof(ctl.buf) };
	size_t cap = sizeof(struct mw_hdr) + MW_INLINE_MAX + 1;
	ssize_t n;
	int fd, rc = 0;

	memset(m, 0, sizeof(*m));
	if (posix_memalign(&m->buf, MW_ALIGN, cap))
		return -ENOMEM;
	iov = (struct iovec){ m->buf, cap - 1 };
	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n <= 0) {
		rc = n < 0 ? -errno : 0;
		free(m->buf);
		m->buf = NULL;
		return rc;
	}
	fd = take_fd(&mh);
	if ((size_t)n < sizeof(m->h) || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
		rc = -EPROTO;
		goto out;
	}
	memcpy(&m->h, m->buf, sizeof(m->h));
	if (m->h.has_fd) {
		rc = fd < 0 ? -EPROTO : map_payload(m, fd, writable_map);
		if (!rc && writable_map)
			m->json[m->h.json_len] = '\0';
		else if (!rc && m->json[m->h.json_len] != '\0')
			rc = -EPROTO;
		goto out;
	}
	{
		size_t body = (size_t)n - sizeof(m->h);
		char *b = (char *)m->buf + sizeof(m->h);
		if (m->h.json_off != 0 || m->h.json_len > body ||
		    (m->h.attach_len && ((uint64_t)m->h.attach_off < m->h.json_len ||
					 (uint64_t)m->h.attach_off + m->h.attach_len > body))) {
			rc = -EPROTO;
			goto out;
		}
		if (m->h.attach_len) {
			/* Moved to an aligned offset if the sender's padding was off. */
			m->attach = b + m->h.attach_off;
		}
		/* The JSON is terminated after the attachment is located: a
		 * NUL written at json_len may sit in the padding only. */
		if (m->h.attach_len && m->h.attach_off == m->h.json_len) {
			rc = -EPROTO;
			goto out;
		}
		b[m->h.json_len] = '\0';
		m->json = b;
	}
out:
	if (fd >= 0)
		close(fd);
	if (rc)
		mw_msg_free(m);
	return rc ? rc : 1;
}

void *mw_msg_take_attachment(struct mw_msg *m)
{
	void *a;

	if (!m->map || !m->attach || m->h.attach_off != MW_PAGE)
		return NULL;
	/* The private mapping's first page is ours: its size lives there. */
	memcpy(m->map, &m->map_len, sizeof(m->map_len));
	a = m->attach;
	m->map = NULL;
	m->json = NULL;
	return a;
}

void mw_attachment_free(void *attach)
{
	char *base;
	size_t len;

	if (!attach)
		return;
	base = (char *)attach - MW_PAGE;
	memcpy(&len, base, sizeof(len));
	munmap(base, len);
}

void mw_msg_free(struct mw_msg *m)
{
	if (m->map)
		munmap(m->map, m->map_len);
	free(m->buf);
	memset(m, 0, sizeof(*m));
}
