/*
 * C client for `make bench`: sends newline-framed ping requests to PATH and
 * times them.
 *   bench_client PATH seq N        N sequential round trips: p50/p99 in us
 *   bench_client PATH pipe N B     N requests in batches of B: requests/s
 * Prints one JSON object.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static char rbuf[1 << 20];

/* Reads until `lines` newlines have arrived. */
static int read_lines(int fd, long lines)
{
	while (lines > 0) {
		ssize_t n = read(fd, rbuf, sizeof(rbuf));
		if (n <= 0)
			return -1;
		for (ssize_t i = 0; i < n; i++)
			lines -= rbuf[i] == '\n';
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	long n, batch = 1, id = 0;
	char *out;
	int fd;

	if (argc < 4 || strlen(argv[1]) >= sizeof(sa.sun_path))
		return 2;
	n = atol(argv[3]);
	if (argc > 4)
		batch = atol(argv[4]);
	strcpy(sa.sun_path, argv[1]);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
		return 1;
	out = malloc((size_t)batch * 64);
	if (strcmp(argv[2], "seq") == 0) {
		double *t = malloc((size_t)n * sizeof(double));
		for (long i = 0; i < n; i++) {
			int len = snprintf(out, 64, "{\"job_id\":%ld,\"action\":\"ping\"}\n", ++id);
			double t0 = now_us();
			if (write(fd, out, (size_t)len) != len || read_lines(fd, 1))
				return 1;
			t[i] = now_us() - t0;
		}
		qsort(t, (size_t)n, sizeof(double), cmp);
		printf("{\"p50_us\": %.1f, \"p99_us\": %.1f, \"n\": %ld}\n", t[n / 2], t[n * 99 / 100], n);
		free(t);
	} else {
		double t0 = now_us(), dt;
		for (long done = 0; done < n; done += batch) {
			size_t len = 0;
			for (long j = 0; j < batch; j++)
				len += (size_t)sprintf(out + len, "{\"job_id\":%ld,\"action\":\"ping\"}\n", ++id);
			if (write(fd, out, len) != (ssize_t)len || read_lines(fd, batch))
				return 1;
		}
		dt = now_us() - t0;
		printf("{\"rps\": %.0f, \"n\": %ld, \"batch\": %ld}\n", (double)n / (dt / 1e6), n, batch);
	}
	free(out);
	close(fd);
	return 0;
}
