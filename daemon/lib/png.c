/*
 * PNG through libpng's simplified API (image.h).
 */
#include <png.h>
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

int kiln_png_encode_rgba(const uint8_t *rgba, unsigned width, unsigned height,
			 unsigned char **png, size_t *len, char *err, size_t errlen)
{
	png_image img;
	png_alloc_size_t size = 0;
	unsigned char *buf;

	memset(&img, 0, sizeof(img));
	img.version = PNG_IMAGE_VERSION;
	img.width = width;
	img.height = height;
	img.format = PNG_FORMAT_RGBA;
	/* First pass measures, second writes. */
	if (!png_image_write_get_memory_size(img, size, 0, rgba, 0, NULL)) {
		snprintf(err, errlen, "PNG encoding failed: %s", img.message);
		return -KILN_E_INTERNAL;
	}
	buf = malloc(size);
	if (!buf) {
		snprintf(err, errlen, "out of memory encoding PNG");
		return -KILN_E_INTERNAL;
	}
	if (!png_image_write_to_memory(&img, buf, &size, 0, rgba, 0, NULL)) {
		snprintf(err, errlen, "PNG encoding failed: %s", img.message);
		free(buf);
		return -KILN_E_INTERNAL;
	}
	*png = buf;
	*len = size;
	return 0;
}
