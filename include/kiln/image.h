/*
 * PNG decoding and encoding (libpng), for scene textures and rendered images.
 */
#ifndef KILN_IMAGE_H
#define KILN_IMAGE_H

#include <stddef.h>
#include <stdint.h>

/*
 * Decodes a PNG held in memory to 8-bit RGB (3 bytes per pixel, alpha
 * dropped, whatever the file's colour type or depth).  Images of more than
 * max_pixels pixels fail with -KILN_E_TOO_LARGE before any pixel is decoded;
 * data that is not a PNG fails with -KILN_E_INVALID_ARGS.  *rgb is
 * malloc'ed; the caller frees it.
 */
int kiln_png_decode_rgb(const unsigned char *data, size_t len, uint64_t max_pixels,
			unsigned *width, unsigned *height, uint8_t **rgb,
			char *err, size_t errlen);

/* Encodes 8-bit RGBA pixels as a PNG in memory; *png is malloc'ed. */
int kiln_png_encode_rgba(const uint8_t *rgba, unsigned width, unsigned height,
			 unsigned char **png, size_t *len, char *err, size_t errlen);

/*
 * A PNG written to a file descriptor row by row, so an image of any size
 * needs only the rows handed over at a time (libpng row writes, 64 KiB of
 * output buffering, zlib's state).  The caller owns `fd` (not closed here)
 * and the writer (kiln_png_writer_free, also after a failure).  One thread
 * at a time.  Every function returns 0 or -KILN_E_* with a message.
 */
struct kiln_png_writer;

int kiln_png_writer_new(int fd, unsigned width, unsigned height, struct kiln_png_writer **w,
			char *err, size_t errlen);
/* Appends `rows` rows of 8-bit RGBA, width * 4 bytes each. */
int kiln_png_writer_rows(struct kiln_png_writer *w, const uint8_t *rgba, unsigned rows,
			 char *err, size_t errlen);
/* Writes the end of the file once every row is in. */
int kiln_png_writer_finish(struct kiln_png_writer *w, char *err, size_t errlen);
void kiln_png_writer_free(struct kiln_png_writer *w);

#endif
