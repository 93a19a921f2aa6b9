/*
 * PNG through libpng's simplified API (image.h).
 */
#include <png.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/error.h"
#include "kiln/image.h"

int kiln_png_decode_rgb(const unsigned char *data, size_t len, uint64_t max_pixels,
			unsigned *width, unsigned *height, uint8_t **rgb, char *err, size_t errlen)
{
	png_image img;
	uint8_t *buf;

	*rgb = NULL;
	if (len < 8 || png_sig_cmp(data, 0, 8) != 0) {
		snprintf(err, errlen, "not a PNG file");
		return -KILN_E_INVALID_ARGS;
	}
	memset(&img, 0, sizeof(img));
	img.version = PNG_IMAGE_VERSION;
	if (!png_image_begin_read_from_memory(&img, data, len)) {
		snprintf(err, errlen, "bad PNG: %s", img.message);
		png_image_free(&img);
		return -KILN_E_INVALID_ARGS;
	}
	if ((uint64_t)img.width * img.height > max_pixels) {
		snprintf(err, errlen, "PNG is %ux%u, more than the %llu pixels allowed", img.width,
			 img.height, (unsigned long long)max_pixels);
		png_image_free(&img);
		return -KILN_E_TOO_LARGE;
	}
	/* Read as RGBA and drop alpha here: asking libpng for RGB would
	 * composite transparent pixels onto black instead. */
	img.format = PNG_FORMAT_RGBA;
	buf = malloc(PNG_IMAGE_SIZE(img));
	if (!buf) {
		snprintf(err, errlen, "out of memory decoding PNG");
		png_image_free(&img);
		return -KILN_E_INTERNAL;
	}
	if (!png_image_finish_read(&img, NULL, buf, 0, NULL)) {
		snprintf(err, errlen, "bad PNG: %s", img.message);
		png_image_free(&img);
		free(buf);
		return -KILN_E_INVALID_ARGS;
	}
	for (size_t i = 0, n = (size_t)img.width * img.height; i < n; i++)
		memmove(buf + i * 3, buf + i * 4, 3);
	*width = img.width;
	*height = img.height;
	*rgb = buf;
	return 0;
}

struct membuf {
	unsigned char *data;
	size_t len, cap;
	bool failed;
};

static void mem_write(png_structp png, png_bytep data, png_size_t len)
{
	struct membuf *m = png_get_io_ptr(png);

	if (m->failed)
		return;
	if (m->len + len > m->cap) {
		size_t ncap = m->cap ? m->cap : 65536;
		unsigned char *p;
		while (ncap < m->len + len)
			ncap *= 2;
		p = realloc(m->data, ncap);
		if (!p) {
			m->failed = true;
			return;
		}
		m->data = p;
		m->cap = ncap;
	}
	memcpy(m->data + m->len, data, len);
	m->len += len;
}

static void mem_flush(png_structp png)
{
	(void)png;
}

/*
 * libpng's full API rather than the simplified one, to choose speed over
 * size: zlib level 1 and only the "up" filter encode a rendered frame
 * several times faster than the defaults, for files about a quarter larger.
 */
int kiln_png_encode_rgba(const uint8_t *rgba, unsigned width, unsigned height,
			 unsigned char **out, size_t *len, char *err, size_t errlen)
{
	struct membuf m = {0};
	png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
	png_infop info = png ? png_create_info_struct(png) : NULL;
	/* volatile: modified between setjmp and a possible longjmp. */
	png_bytep *volatile rows = NULL;

	if (!info) {
		png_destroy_write_struct(&png, NULL);
		snprintf(err, errlen, "out of memory encoding PNG");
		return -KILN_E_INTERNAL;
	}
	if (setjmp(png_jmpbuf(png))) {
		png_destroy_write_struct(&png, &info);
		free(rows);
		free(m.data);
		snprintf(err, errlen, "PNG encoding failed");
		return -KILN_E_INTERNAL;
	}
	rows = malloc(sizeof(*rows) * (height ? height : 1));
	if (!rows)
		png_error(png, "out of memory");
	for (unsigned y = 0; y < height; y++)
		rows[y] = (png_bytep)(rgba + (size_t)y * width * 4);
	png_set_write_fn(png, &m, mem_write, mem_flush);
	png_set_IHDR(png, info, width, height, 8, PNG_COLOR_TYPE_RGB_ALPHA, PNG_INTERLACE_NONE,
		     PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
	png_set_compression_level(png, 1);
	png_set_filter(png, PNG_FILTER_TYPE_BASE, PNG_FILTER_UP);
	png_write_info(png, info);
	png_write_image(png, rows);
	png_write_end(png, NULL);
	png_destroy_write_struct(&png, &info);
	free(rows);
	if (m.failed) {
		free(m.data);
		snprintf(err, errlen, "out of memory encoding PNG");
		return -KILN_E_INTERNAL;
	}
	*out = m.data;
	*len = m.len;
	return 0;
}
