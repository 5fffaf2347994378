/* jpeg.c: one image of a streamed set decoded from memory, only the part
 * a sample needs. JPEGs go through libjpeg-turbo: at the largest DCT scale
 * (1/2, 1/4, 1/8) that still gives the box at least the size it is
 * resized to, and only the box's rows (jpeg_skip_scanlines) and columns
 * (jpeg_crop_scanline, widened by the library to whole iMCUs). Scaled
 * decoding gives other pixels than a full decode followed by a resize (the
 * DCT drops high frequencies and the box's edges round to the scaled
 * grid); it is deterministic, so a sample stays a pure function of its
 * file and its draw. At scale 1 the box is exactly the full decode's.
 *
 * Grayscale JPEGs come out as RGB (libjpeg-turbo replicates the luma).
 * CMYK and YCCK ones come out as CMYK and are converted as PIL converts
 * them: Adobe files store inverted ink (Photoshop's convention, flagged by
 * the Adobe marker), R = (255 - C)(255 - K) / 255 on the true ink values.
 * A libjpeg warning (a premature end of data, a corrupt Huffman code) is
 * an error here: the library would fill the rest with grey and carry on.
 * Anything that is not a JPEG (ImageNet holds a PNG named .JPEG) is
 * decoded whole by folder.c's checked stb_image path. */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#include "asymbp.h"
#include "data/data.h"

/* libjpeg reports errors through error_exit, which must not return. */
typedef struct JpegErr {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
} JpegErr;

static void on_error(j_common_ptr ci) {
    JpegErr *e = (JpegErr *)ci->err;
    ci->err->format_message(ci, e->msg);
    longjmp(e->jump, 1);
}

/* Warnings (level -1) are corrupt data: stop there. Trace messages pass. */
static void on_message(j_common_ptr ci, int level) {
    if (level < 0) on_error(ci);
}

int jpeg_is_jpeg(const uint8_t *buf, size_t len) { return len >= 3 && buf[0] == 0xFF && buf[1] == 0xD8 && buf[2] == 0xFF; }

/* Whether the main image's scan data is followed by an end-of-image
 * marker: the segments are walked from SOI to the first SOS (so an EXIF
 * thumbnail's EOI does not count). A truncated file fails here whatever
 * rows a box needs, instead of only when the decoder reaches the cut. */
static int jpeg_complete(const uint8_t *buf, size_t len) {
    size_t at = 2;
    while (at + 4 <= len) {
        if (buf[at] != 0xFF) return 0;
        uint8_t m = buf[at + 1];
        if (m == 0xFF) {
            at++;
            continue;
        }
        size_t seg = (size_t)buf[at + 2] << 8 | buf[at + 3];
        if (m == 0xDA) {
            /* searched from the end, where a whole file has it */
            for (size_t q = len - 1, from = at + 2 + seg; q > from; q--)
                if (buf[q - 1] == 0xFF && buf[q] == 0xD9) return 1;
            return 0;
        }
        at += 2 + seg;
    }
    return 0;
}

/* The largest denominator d in 8, 4, 2, 1 with the box's sides over d at
 * least need_h x need_w (1 when need is 0: no scaling). */
static int pick_scale(int bh, int bw, int need_h, int need_w) {
    if (need_h <= 0 || need_w <= 0) return 1;
    for (int d = 8; d > 1; d /= 2)
        if (bh / d >= need_h && bw / d >= need_w) return d;
    return 1;
}

/* CMYK scanline (w pixels) to RGB in place, as PIL's cmyk2rgb. */
static void cmyk_to_rgb(uint8_t *row, int w, int inverted) {
    for (int x = 0; x < w; x++) {
        const uint8_t *p = row + 4 * x;
        int k = inverted ? p[3] : 255 - p[3], v[3];
        for (int q = 0; q < 3; q++) {
            int ink = inverted ? 255 - p[q] : p[q], t = ink * k + 128;
            v[q] = k - (((t >> 8) + t) >> 8);
        }
        for (int q = 0; q < 3; q++) row[3 * x + q] = (uint8_t)(v[q] < 0 ? 0 : v[q]);
    }
}

/* The rows and columns of the scaled image that hold the box, read. */
static int read_box(struct jpeg_decompress_struct *ci, JpegRegion *r, int si, int ei, int sj, int ej) {
    JDIMENSION x0 = (JDIMENSION)sj, cw = (JDIMENSION)(ej - sj);
    jpeg_start_decompress(ci);
    if (cw < ci->output_width) jpeg_crop_scanline(ci, &x0, &cw);
    int cmyk = ci->out_color_space == JCS_CMYK, stride = (int)cw * (cmyk ? 4 : 3);
    r->h = ei - si, r->w = (int)cw, r->stride = stride;
    r->bi = 0, r->bj = sj - (int)x0, r->bh = ei - si, r->bw = ej - sj;
    r->rgb = malloc((size_t)r->h * stride);
    if (!r->rgb) return asym_fail("out of memory decoding a %d x %d JPEG region", r->h, r->w);
    if (si > 0 && jpeg_skip_scanlines(ci, (JDIMENSION)si) != (JDIMENSION)si) return asym_fail("cannot skip to row %d", si);
    for (int y = 0; y < r->h; y++) {
        JSAMPROW row = r->rgb + (size_t)y * stride;
        if (jpeg_read_scanlines(ci, &row, 1) != 1) return asym_fail("no row %d", si + y);
        if (cmyk) cmyk_to_rgb(row, (int)cw, ci->saw_Adobe_marker);
    }
    return ASYM_OK;
}

int jpeg_header(const char *name, const uint8_t *buf, size_t len, int *h, int *w) {
    struct jpeg_decompress_struct ci;
    JpegErr err;
    ci.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = on_error;
    err.pub.emit_message = on_message;
    if (setjmp(err.jump)) {
        jpeg_destroy_decompress(&ci);
        return asym_fail("%s: not a readable JPEG: %s", name, err.msg);
    }
    if (!jpeg_complete(buf, len)) return asym_fail("%s: truncated JPEG (no end-of-image marker after the scan)", name);
    jpeg_create_decompress(&ci);
    jpeg_mem_src(&ci, buf, (unsigned long)len);
    jpeg_read_header(&ci, TRUE);
    *h = (int)ci.image_height, *w = (int)ci.image_width;
    jpeg_destroy_decompress(&ci);
    if (*h < 1 || *w < 1) return asym_fail("%s: a JPEG of %d x %d pixels", name, *w, *h);
    return ASYM_OK;
}

/* The header read once, the box asked of box_of, then decoded: what
 * jpeg_decode_box and jpeg_decode_fit share. A libjpeg error while the
 * header is read is reported as head, a later one as a corrupt JPEG. */
static int decode(const char *name, const uint8_t *buf, size_t len, const char *head, JpegBoxOf box_of, void *user, JpegRegion *r) {
    struct jpeg_decompress_struct ci;
    JpegErr err;
    const char *volatile what = head;
    memset(r, 0, sizeof *r);
    ci.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = on_error;
    err.pub.emit_message = on_message;
    if (setjmp(err.jump)) {
        jpeg_destroy_decompress(&ci);
        jpeg_region_free(r);
        return asym_fail("%s: %s: %s", name, what, err.msg);
    }
    jpeg_create_decompress(&ci);
    jpeg_mem_src(&ci, buf, (unsigned long)len);
    jpeg_read_header(&ci, TRUE);
    what = "corrupt JPEG";
    int H = (int)ci.image_height, W = (int)ci.image_width;
    JpegBox b;
    if (H < 1 || W < 1 || box_of(user, H, W, &b)) {
        jpeg_destroy_decompress(&ci);
        return H < 1 || W < 1 ? asym_fail("%s: a JPEG of %d x %d pixels", name, W, H) : ASYM_ERR;
    }
    if (b.i < 0 || b.j < 0 || b.bh < 1 || b.bw < 1 || b.i + b.bh > H || b.j + b.bw > W) {
        jpeg_destroy_decompress(&ci);
        return asym_fail("%s: box %d x %d at (%d, %d) outside the %d x %d image", name, b.bh, b.bw, b.i, b.j, H, W);
    }
    int cmyk = ci.jpeg_color_space == JCS_CMYK || ci.jpeg_color_space == JCS_YCCK;
    ci.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    ci.scale_num = 1;
    ci.scale_denom = (unsigned)pick_scale(b.bh, b.bw, b.need_h, b.need_w);
    jpeg_calc_output_dimensions(&ci);
    int d = (int)ci.scale_denom, Hs = (int)ci.output_height, Ws = (int)ci.output_width;
    /* the box on the scaled grid: rounded outwards, inside the image */
    int si = b.i / d, sj = b.j / d, ei = (b.i + b.bh + d - 1) / d, ej = (b.j + b.bw + d - 1) / d;
    if (ei > Hs) ei = Hs;
    if (ej > Ws) ej = Ws;
    r->scale = d;
    char why[512];
    if (read_box(&ci, r, si, ei, sj, ej)) {
        snprintf(why, sizeof why, "%s", asym_last_error());
        jpeg_destroy_decompress(&ci);
        jpeg_region_free(r);
        return asym_fail("%s: %s", name, why);
    }
    jpeg_abort_decompress(&ci);
    jpeg_destroy_decompress(&ci);
    return ASYM_OK;
}

/* jpeg_decode_box's box, whatever the image's size. */
static int given_box(void *user, int h, int w, JpegBox *b) {
    *b = *(const JpegBox *)user;
    return ASYM_OK;
}

int jpeg_decode_box(const char *name, const uint8_t *buf, size_t len, int i, int j, int bh, int bw, int need_h, int need_w, JpegRegion *r) {
    JpegBox b = {i, j, bh, bw, need_h, need_w};
    return decode(name, buf, len, "corrupt JPEG", given_box, &b, r);
}

int jpeg_decode_fit(const char *name, const uint8_t *buf, size_t len, JpegBoxOf box_of, void *user, JpegRegion *r) {
    memset(r, 0, sizeof *r);
    if (!jpeg_complete(buf, len)) return asym_fail("%s: truncated JPEG (no end-of-image marker after the scan)", name);
    return decode(name, buf, len, "not a readable JPEG", box_of, user, r);
}

void jpeg_region_free(JpegRegion *r) {
    free(r->rgb);
    r->rgb = NULL;
}

void jpeg_region_floats(const JpegRegion *r, float *out) {
    size_t hw = (size_t)r->bh * r->bw;
    for (int y = 0; y < r->bh; y++)
        for (int x = 0; x < r->bw; x++) {
            const uint8_t *p = r->rgb + (size_t)(r->bi + y) * r->stride + (size_t)(r->bj + x) * 3;
            for (int k = 0; k < 3; k++) out[k * hw + (size_t)y * r->bw + x] = p[k] / 255.0f;
        }
}
