/*
 * Arbitrary bytes on a real connection to the in-process daemon: framing,
 * envelope, attachments (raw and raw_b64), pipelining, backpressure and
 * dispatch of whatever actions the bytes name.  The client half-closes after
 * sending, and the daemon must answer with well-formed replies and then
 * close the connection, within the time limit.
 */
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t len;
	char *text;
	int fd;

	fz_daemon_start();
	text = fz_subst_data(data, size, &len);
	fd = fz_connect();
	fz_send(fd, text, len);
	shutdown(fd, SHUT_WR);
	fz_drain(fd, 10000);
	close(fd);
	free(text);
	fz_root_restore();
	return 0;
}
