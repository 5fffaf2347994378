/* sample.c: one sample of a streamed split, from its bytes to the model's
 * input. Training: the random-resized-crop box and the flip are drawn
 * (augment_draw, keyed by seed, epoch and index) on the image's size as
 * its header gives it (read once: jpeg_decode_fit); only what covers the
 * box is decoded (jpeg.c), then resized with augment.c's bilinear straight
 * from the 8-bit pixels. Evaluation: the shorter side resized to
 * eval_resize and the centre crop (the whole image decoded, at a DCT scale
 * that keeps it at least the resized size), or the centre crop alone
 * (only its rows decoded). Normalization as each value is written. A file
 * that is not a JPEG goes through folder.c's checked decoder, whole. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "asymbp.h"
#include "data/data.h"
#include "io/io.h"

/* An image file may be this large (ImageNet's largest is under 16 MB). */
#define MAX_SAMPLE_BYTES ((size_t)1 << 28)

/* The sample's bytes: a whole file or a tar member. name: for messages. */
static int read_bytes(const ImageIndex *ix, int index, uint8_t **buf, size_t *len, char *name, size_t cap) {
    const char *path = ix->files[ix->file[index]];
    uint64_t off = ix->off[index], size = ix->size[index];
    if (!size) {
        snprintf(name, cap, "%s", path);
        return io_read_file(path, buf, len, MAX_SAMPLE_BYTES, 0);
    }
    snprintf(name, cap, "%s@%llu", path, (unsigned long long)off);
    if (size > MAX_SAMPLE_BYTES) return asym_fail("%s: a member of %llu bytes", name, (unsigned long long)size);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return asym_fail("%s: cannot open", path);
    *buf = malloc((size_t)size);
    ssize_t got = *buf ? pread(fd, *buf, (size_t)size, (off_t)off) : -1;
    close(fd);
    if (got != (ssize_t)size) {
        free(*buf);
        return asym_fail("%s: cannot read %llu bytes", name, (unsigned long long)size);
    }
    *len = (size_t)size;
    return ASYM_OK;
}

/* Where the transform wants to look: the box, and the size it becomes. */
typedef struct Want {
    int i, j, bh, bw;     /* in the image's pixels */
    int need_h, need_w;   /* what the box is resized to (0: decode at scale 1) */
    int flip;
} Want;

static Want want_of(const SampleMaker *m, int train, uint64_t epoch, int index, int H, int W) {
    Want w = {0, 0, H, W, 0, 0, 0};
    if (train) {
        AugmentDraw d = augment_draw(&m->spec, H, W, m->seed, epoch, (uint64_t)index);
        w = (Want){d.i, d.j, d.bh, d.bw, m->oh, m->ow, d.flip};
    } else if (m->spec.eval_resize) {
        AugmentSpec r = {.eval_resize = m->spec.eval_resize};
        augment_eval_shape(&r, H, W, &w.need_h, &w.need_w);
    } else {
        w = (Want){augment_centre(H, m->oh), augment_centre(W, m->ow), m->oh, m->ow, 0, 0, 0};
    }
    return w;
}

/* The region of a non-JPEG image, decoded whole. */
static int decode_other(const char *name, const uint8_t *buf, size_t len, const SampleMaker *m, int train, uint64_t epoch, int index,
                        JpegRegion *r, Want *w) {
    uint8_t *pix;
    int H, W;
    if (folder_load_pixels(name, buf, len, 3, &pix, &H, &W)) return ASYM_ERR;
    *w = want_of(m, train, epoch, index, H, W);
    if (w->i < 0 || w->j < 0 || w->i + w->bh > H || w->j + w->bw > W) {
        folder_pixels_free(pix);
        return asym_fail("%s: %d x %d, smaller than the centre crop", name, W, H);
    }
    size_t n = (size_t)H * W * 3;
    r->rgb = malloc(n);
    if (r->rgb) memcpy(r->rgb, pix, n);
    folder_pixels_free(pix);
    if (!r->rgb) return asym_fail("%s: out of memory", name);
    r->h = H, r->w = W, r->stride = 3 * W, r->scale = 1;
    r->bi = w->i, r->bj = w->j, r->bh = w->bh, r->bw = w->bw;
    return ASYM_OK;
}

/* What want_of needs besides the image's size, and where it puts the
 * answer: the context of fit_box. */
typedef struct Fit {
    const char *name;
    const SampleMaker *m;
    int train, index;
    uint64_t epoch;
    Want *w;
} Fit;

/* The box to decode of a JPEG of H x W, once its header is read: an
 * evaluation image smaller than the centre crop fails. */
static int fit_box(void *user, int H, int W, JpegBox *b) {
    const Fit *f = user;
    const SampleMaker *m = f->m;
    if (W < m->ow && !f->train && !m->spec.eval_resize) return asym_fail("%s: %d x %d, smaller than the centre crop", f->name, W, H);
    if (H < m->oh && !f->train && !m->spec.eval_resize) return asym_fail("%s: %d x %d, smaller than the centre crop", f->name, W, H);
    Want *w = f->w;
    *w = want_of(m, f->train, f->epoch, f->index, H, W);
    *b = (JpegBox){w->i, w->j, w->bh, w->bw, w->need_h, w->need_w};
    return ASYM_OK;
}

static int decode(const char *name, const uint8_t *buf, size_t len, const SampleMaker *m, int train, uint64_t epoch, int index,
                  JpegRegion *r, Want *w) {
    if (!jpeg_is_jpeg(buf, len)) return decode_other(name, buf, len, m, train, epoch, index, r, w);
    Fit f = {name, m, train, index, epoch, w};
    return jpeg_decode_fit(name, buf, len, fit_box, &f, r);
}

/* The box of r as is (the evaluation's centre crop, no resize) into out
 * (3, bh, bw): u8 / 255, then normalized when mean is given. */
static void region_copy(const JpegRegion *r, const float *mean, const float *std, float *out) {
    size_t hw = (size_t)r->bh * r->bw;
    float v[256];
    for (int q = 0; q < 256; q++) v[q] = (float)q / 255.0f;
    for (int k = 0; k < 3; k++)
        for (int y = 0; y < r->bh; y++) {
            const uint8_t *p = r->rgb + (size_t)(r->bi + y) * r->stride + (size_t)r->bj * 3 + k;
            float *o = out + k * hw + (size_t)y * r->bw;
            if (!mean)
                for (int x = 0; x < r->bw; x++) o[x] = v[p[3 * x]];
            else
                for (int x = 0; x < r->bw; x++) o[x] = (v[p[3 * x]] - mean[k]) / std[k];
        }
}

/* The decoded box through the geometry and the normalization into out
 * (3, oh, ow), straight from its 8-bit pixels: the floats that converting
 * the box (jpeg_region_floats), augment_window and normalizing give. */
static int transform(const SampleMaker *m, int train, const JpegRegion *r, const Want *w, float *out) {
    const float *mean = m->normalize ? m->mean : NULL, *std = m->normalize ? m->std : NULL;
    const uint8_t *box = r->rgb + (size_t)r->bi * r->stride + (size_t)r->bj * 3;
    if (train) return augment_window_rgb(out, box, (size_t)r->stride, r->bh, r->bw, m->oh, m->ow, 0, 0, m->oh, m->ow, w->flip, mean, std);
    /* the resized size comes from the original image, the pixels from the (scaled) decode */
    if (m->spec.eval_resize)
        return augment_window_rgb(out, box, (size_t)r->stride, r->bh, r->bw, w->need_h, w->need_w, augment_centre(w->need_h, m->oh),
                                  augment_centre(w->need_w, m->ow), m->oh, m->ow, 0, mean, std);
    region_copy(r, mean, std, out);
    return ASYM_OK;
}

int sample_make(const SampleMaker *m, int train, uint64_t epoch, int index, float *out) {
    uint8_t *buf;
    size_t len;
    char name[4200];
    JpegRegion r = {0};
    Want w = {0};
    if (read_bytes(m->ix, index, &buf, &len, name, sizeof name)) return ASYM_ERR;
    int rc = decode(name, buf, len, m, train, epoch, index, &r, &w);
    free(buf);
    if (rc) return ASYM_ERR;
    rc = transform(m, train, &r, &w, out);
    jpeg_region_free(&r);
    return rc ? asym_fail("%s: %s", name, asym_last_error()) : ASYM_OK;
}
