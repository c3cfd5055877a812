#ifndef DANN_CJPEG_SHIM_H
#define DANN_CJPEG_SHIM_H
/*
 * libjpeg reports errors by calling error_exit, which must not return: the only way back is longjmp.
 * Swift cannot call setjmp, so the whole decode/encode runs here in C and returns a status plus a
 * message. Warnings (e.g. "premature end of data", which libjpeg would otherwise paper over with grey
 * rows) are treated as errors too: a truncated file must be reported, not silently padded.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <jpeglib.h>

struct dann_jpeg_error_manager {
    struct jpeg_error_mgr base;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
};

static void dann_jpeg_error_exit(j_common_ptr cinfo) {
    struct dann_jpeg_error_manager *manager = (struct dann_jpeg_error_manager *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, manager->message);
    longjmp(manager->jump, 1);
}

static void dann_jpeg_emit_message(j_common_ptr cinfo, int level) {
    if (level < 0) {
        dann_jpeg_error_exit(cinfo);
    }
}

static void dann_jpeg_output_message(j_common_ptr cinfo) { (void)cinfo; }

static inline void dann_jpeg_install_errors(struct dann_jpeg_error_manager *manager) {
    jpeg_std_error(&manager->base);
    manager->base.error_exit = dann_jpeg_error_exit;
    manager->base.emit_message = dann_jpeg_emit_message;
    manager->base.output_message = dann_jpeg_output_message;
    manager->message[0] = 0;
}

static inline void dann_jpeg_copy_message(const struct dann_jpeg_error_manager *manager,
                                          char *message, size_t capacity) {
    if (capacity == 0) return;
    strncpy(message, manager->message, capacity - 1);
    message[capacity - 1] = 0;
}

/*
 * Decodes JPEG bytes to 8-bit RGB (grayscale replicated, YCbCr converted, CMYK/YCCK converted with the
 * Adobe inverted-CMYK convention when the file carries an Adobe marker). Images above max_pixels are
 * refused before any pixel buffer is allocated. On success returns 0 and
 * *pixels is a malloc'd width*height*3 buffer the caller frees; on failure returns 1 and fills message.
 */
static inline int dann_jpeg_decode_rgb(const unsigned char *data, unsigned long size, size_t max_pixels,
                                       unsigned char **pixels, int *width, int *height,
                                       char *message, size_t capacity) {
    struct jpeg_decompress_struct cinfo;
    struct dann_jpeg_error_manager manager;
    unsigned char *volatile output = NULL;
    unsigned char *volatile row = NULL;
    *pixels = NULL;
    memset(&cinfo, 0, sizeof(cinfo));
    cinfo.err = &manager.base;
    dann_jpeg_install_errors(&manager);
    if (setjmp(manager.jump)) {
        dann_jpeg_copy_message(&manager, message, capacity);
        jpeg_destroy_decompress(&cinfo);
        free(output);
        free(row);
        return 1;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, size);
    jpeg_read_header(&cinfo, TRUE);
    int cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    if ((size_t)cinfo.image_width * (size_t)cinfo.image_height > max_pixels) {
        snprintf(manager.message, sizeof(manager.message), "%ux%u pixels is too large",
                 (unsigned)cinfo.image_width, (unsigned)cinfo.image_height);
        longjmp(manager.jump, 1);
    }
    jpeg_start_decompress(&cinfo);
    size_t w = cinfo.output_width, h = cinfo.output_height;
    size_t components = (size_t)cinfo.output_components;
    output = (unsigned char *)malloc(w * h * 3);
    row = (unsigned char *)malloc(w * components);
    if (output == NULL || row == NULL) {
        snprintf(manager.message, sizeof(manager.message), "out of memory for a %zux%zu image", w, h);
        longjmp(manager.jump, 1);
    }
    int inverted = cinfo.saw_Adobe_marker;
    while (cinfo.output_scanline < cinfo.output_height) {
        size_t y = cinfo.output_scanline;
        JSAMPROW rows[1] = { row };
        jpeg_read_scanlines(&cinfo, rows, 1);
        unsigned char *out = output + y * w * 3;
        if (!cmyk) {
            memcpy(out, row, w * 3);
            continue;
        }
        for (size_t x = 0; x < w; x++) {
            unsigned int c = row[4 * x], m = row[4 * x + 1], ye = row[4 * x + 2], k = row[4 * x + 3];
            if (!inverted) { c = 255 - c; m = 255 - m; ye = 255 - ye; k = 255 - k; }
            /* Stored (inverted) values are the ink-free fractions: R = (1-C)(1-K). */
            out[3 * x] = (unsigned char)((c * k + 127) / 255);
            out[3 * x + 1] = (unsigned char)((m * k + 127) / 255);
            out[3 * x + 2] = (unsigned char)((ye * k + 127) / 255);
        }
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    free(row);
    *pixels = output;
    *width = (int)w;
    *height = (int)h;
    return 0;
}

/*
 * Encodes 8-bit RGB pixels as a baseline JPEG in memory. On success returns 0 and *jpeg/*jpeg_size
 * hold a malloc'd buffer the caller frees; on failure returns 1 and fills message.
 */
static inline int dann_jpeg_encode_rgb(const unsigned char *pixels, int width, int height, int quality,
                                       unsigned char **jpeg, unsigned long *jpeg_size,
                                       char *message, size_t capacity) {
    struct jpeg_compress_struct cinfo;
    struct dann_jpeg_error_manager manager;
    *jpeg = NULL;
    *jpeg_size = 0;
    memset(&cinfo, 0, sizeof(cinfo));
    cinfo.err = &manager.base;
    dann_jpeg_install_errors(&manager);
    if (setjmp(manager.jump)) {
        dann_jpeg_copy_message(&manager, message, capacity);
        jpeg_destroy_compress(&cinfo);
        free(*jpeg);
        *jpeg = NULL;
        return 1;
    }
    jpeg_create_compress(&cinfo);
    jpeg_mem_dest(&cinfo, jpeg, jpeg_size);
    cinfo.image_width = (JDIMENSION)width;
    cinfo.image_height = (JDIMENSION)height;
    cinfo.input_components = 3;
    cinfo.in_color_space = JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW rows[1] = { (JSAMPROW)(pixels + (size_t)cinfo.next_scanline * (size_t)width * 3) };
        jpeg_write_scanlines(&cinfo, rows, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    return 0;
}

#endif
