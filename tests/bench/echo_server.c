/*
 * The floor for `make bench`: a bare newline-framed echo server on a Unix
 * socket.  Single-threaded epoll, echoes every complete line back as is.
 * Usage: echo_server PATH
 */
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	static char buf[1 << 16];
	struct epoll_event ev, evs[64];
	int lfd, ep;

	if (argc != 2 || strlen(argv[1]) >= sizeof(sa.sun_path))
		return 2;
	strcpy(sa.sun_path, argv[1]);
	unlink(argv[1]);
	lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 128))
		return 1;
	ep = epoll_create1(0);
	ev.events = EPOLLIN;
	ev.data.fd = lfd;
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	for (;;) {
		int n = epoll_wait(ep, evs, 64, -1);
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			ssize_t r;
			if (fd == lfd) {
				ev.data.fd = accept(lfd, NULL, NULL);
				epoll_ctl(ep, EPOLL_CTL_ADD, ev.data.fd, &ev);
				continue;
			}
			r = read(fd, buf, sizeof(buf));
			if (r <= 0 || write(fd, buf, (size_t)r) != r)
				close(fd);
		}
	}
}
