/* augment.c: data augmentation of training images, as torchvision's
 * transforms do it: RandomCrop with padding, RandomResizedCrop (its
 * get_params: 10 tries, then a centre crop), RandomHorizontalFlip; and the
 * evaluation transform Resize(shorter side) + CenterCrop; normalization
 * after the geometry, as ToTensor + Normalize.
 *
 * A sample's random choices come from a generator keyed by (seed, epoch,
 * sample index) alone (rng_keyed), never from a shared stream: an image
 * does not depend on the order, thread or MPI rank that makes it, and a
 * resumed run makes the images the uninterrupted one made.
 *
 * Resizing is bilinear with torch's interpolate semantics (align_corners=
 * False, no antialiasing): torchvision's resize of a tensor. stb_image_resize
 * (asym_dataset_resize) does not give those: its triangle filter widens when
 * shrinking (antialiasing) and it clamps the edges, so it matches neither
 * the tensor path nor PIL's exactly. The bilinear here is tested against
 * torchvision's tensor path (tests/test_augment.c). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "asymbp.h"
#include "data/data.h"

/* Tells the augmentation's generators apart from any other use of the seed. */
#define AUGMENT_TAG 0x61756720u

int augment_on(const AugmentSpec *a) { return a->crop_h || a->rrc_h || a->hflip > 0 || augment_eval_on(a); }

int augment_eval_on(const AugmentSpec *a) { return a->eval_resize || a->eval_crop_h; }

/* The evaluation transform's sizes: the shorter side to eval_resize, the
 * longer one scaled and truncated (torchvision's
 * _compute_resized_output_size), then the centre crop. */
int augment_eval_shape(const AugmentSpec *a, int h, int w, int *oh, int *ow) {
    if (a->eval_resize) {
        int r = a->eval_resize;
        if (w <= h) h = (int)((double)r * h / w), w = r;
        else w = (int)((double)r * w / h), h = r;
    }
    if (a->eval_crop_h) {
        if (a->eval_crop_h > h || a->eval_crop_w > w)
            return asym_fail("the centre crop %d x %d is larger than the %s images, %d x %d", a->eval_crop_h, a->eval_crop_w,
                             a->eval_resize ? "resized" : "stored", h, w);
        h = a->eval_crop_h, w = a->eval_crop_w;
    }
    *oh = h, *ow = w;
    return ASYM_OK;
}

int augment_shape(const AugmentSpec *a, int h, int w, int *oh, int *ow, const char **key) {
    int th = h, tw = w, eh, ew;
    *key = "augment";
    if (a->crop_h && a->rrc_h) {
        *key = "random_resized_crop";
        return asym_fail("give crop or random_resized_crop, not both");
    }
    if (a->crop_h) {
        if (a->crop_h > h + 2 * a->crop_pad || a->crop_w > w + 2 * a->crop_pad) {
            *key = "crop";
            return asym_fail("the crop %d x %d is larger than the padded image, %d x %d (%d x %d, crop_pad %d)", a->crop_h, a->crop_w,
                             h + 2 * a->crop_pad, w + 2 * a->crop_pad, h, w, a->crop_pad);
        }
        th = a->crop_h, tw = a->crop_w;
    } else if (a->rrc_h) {
        th = a->rrc_h, tw = a->rrc_w;
    }
    if (augment_eval_shape(a, h, w, &eh, &ew)) {
        *key = "eval_crop";
        return ASYM_ERR;
    }
    if (eh != th || ew != tw) {
        *key = augment_eval_on(a) ? (a->eval_crop_h ? "eval_crop" : "eval_resize") : "eval_crop";
        return asym_fail("training images are %d x %d but evaluation ones %d x %d (stored %d x %d): the model takes one size; "
                         "set data.augment.eval_crop (and eval_resize) to give %d x %d",
                         th, tw, eh, ew, h, w, th, tw);
    }
    *oh = th, *ow = tw;
    return ASYM_OK;
}

/* ---- the random choices ---- */

int augment_centre(int size, int n) { return (int)nearbyint((size - n) / 2.0); }

/* A uniform double in [lo, hi). */
static double uniform(AsymRng *r, double lo, double hi) { return lo + (hi - lo) * rng_uniform(r); }

void augment_rrc_box(AsymRng *r, int h, int w, const double scale[2], const double ratio[2], int *i, int *j, int *bh, int *bw) {
    double area = (double)h * w, lr0 = log(ratio[0]), lr1 = log(ratio[1]);
    for (int t = 0; t < 10; t++) {
        double target = area * uniform(r, scale[0], scale[1]), ar = exp(uniform(r, lr0, lr1));
        int cw = (int)nearbyint(sqrt(target * ar)), ch = (int)nearbyint(sqrt(target / ar));
        if (cw > 0 && cw <= w && ch > 0 && ch <= h) {
            *i = (int)rng_below(r, (uint32_t)(h - ch + 1));
            *j = (int)rng_below(r, (uint32_t)(w - cw + 1));
            *bh = ch, *bw = cw;
            return;
        }
    }
    /* no box fitted: the centre crop of the ratio nearest the image's */
    double in_ratio = (double)w / h, lo = fmin(ratio[0], ratio[1]), hi = fmax(ratio[0], ratio[1]);
    if (in_ratio < lo) *bw = w, *bh = (int)nearbyint(w / lo);
    else if (in_ratio > hi) *bh = h, *bw = (int)nearbyint(h * hi);
    else *bh = h, *bw = w;
    *i = (h - *bh) / 2;
    *j = (w - *bw) / 2;
}

AugmentDraw augment_draw(const AugmentSpec *a, int h, int w, uint64_t seed, uint64_t epoch, uint64_t index) {
    AsymRng r = rng_keyed(seed ^ AUGMENT_TAG, epoch, index);
    AugmentDraw d = {.bh = h, .bw = w};
    if (a->crop_h) {
        /* offsets 0 .. 2 pad (+ slack) in the padded image, as RandomCrop's get_params */
        d.i = (int)rng_below(&r, (uint32_t)(h + 2 * a->crop_pad - a->crop_h + 1)) - a->crop_pad;
        d.j = (int)rng_below(&r, (uint32_t)(w + 2 * a->crop_pad - a->crop_w + 1)) - a->crop_pad;
        d.bh = a->crop_h, d.bw = a->crop_w;
    } else if (a->rrc_h) {
        augment_rrc_box(&r, h, w, a->scale, a->ratio, &d.i, &d.j, &d.bh, &d.bw);
    }
    d.flip = a->hflip > 0 && rng_uniform(&r) < a->hflip;
    return d;
}

/* ---- the geometry ---- */

void augment_crop(float *out, const float *x, int c, int h, int w, int i, int j, int oh, int ow, float fill, int flip) {
    for (int k = 0; k < c; k++)
        for (int y = 0; y < oh; y++) {
            float *o = out + ((size_t)k * oh + y) * ow;
            int sy = i + y;
            if (sy < 0 || sy >= h) {
                for (int q = 0; q < ow; q++) o[q] = fill;
                continue;
            }
            const float *row = x + ((size_t)k * h + sy) * w;
            for (int q = 0; q < ow; q++) {
                int sx = j + (flip ? ow - 1 - q : q);
                o[q] = sx >= 0 && sx < w ? row[sx] : fill;
            }
        }
}

/* Source index and weights of output n of a bilinear resize from in to
 * out samples, as torch's upsample_bilinear2d with align_corners=False:
 * src = scale (n + 0.5) - 0.5 clamped at 0, in float as torch computes
 * it for float images. */
static void lerp_at(int n, int in, int out, int *i0, int *i1, float *l0, float *l1) {
    float scale = (float)in / (float)out, src = scale * ((float)n + 0.5f) - 0.5f;
    if (src < 0) src = 0;
    int a = (int)src;
    *i0 = a;
    *i1 = a + (a < in - 1);
    *l1 = src - (float)a;
    *l0 = 1.0f - *l1;
}

void augment_window(float *out, const float *x, int c, int h, int w, int i, int j, int bh, int bw, int fh, int fw, int oi, int oj,
                    int oh, int ow, int flip) {
    for (int y = 0; y < oh; y++) {
        int y0, y1;
        float a0, a1;
        lerp_at(oi + y, bh, fh, &y0, &y1, &a0, &a1);
        for (int q = 0; q < ow; q++) {
            int x0, x1;
            float b0, b1;
            lerp_at(oj + (flip ? ow - 1 - q : q), bw, fw, &x0, &x1, &b0, &b1);
            for (int k = 0; k < c; k++) {
                const float *r0 = x + ((size_t)k * h + i + y0) * w + j, *r1 = x + ((size_t)k * h + i + y1) * w + j;
                out[((size_t)k * oh + y) * ow + q] = a0 * (b0 * r0[x0] + b1 * r0[x1]) + a1 * (b0 * r1[x0] + b1 * r1[x1]);
            }
        }
    }
}

/* The rows an 8-bit window resize reads, each passed horizontally once:
 * per output column q, b0 v(x0) + b1 v(x1) with v = u8 / 255, the inner
 * sums augment_window makes (so the same floats), for all 3 channels. Two
 * slots: an output row blends rows y0 and y1 = y0 or y0 + 1, and y0 only
 * grows with the output row. */
typedef struct RowPass {
    const uint8_t *rgb;
    size_t stride;
    int ow;
    const int *x0, *x1; /* byte offsets of the source pixels in a row */
    const float *b0, *b1, *v;
    float *buf[2];
    int row[2];
} RowPass;

/* Row y of the box passed horizontally into a slot that does not hold
 * row keep: (3, ow) floats. */
static const float *row_pass(RowPass *p, int y, int keep) {
    for (int s = 0; s < 2; s++)
        if (p->row[s] == y) return p->buf[s];
    int s = p->row[0] == keep;
    const uint8_t *row = p->rgb + (size_t)y * p->stride;
    const float *v = p->v;
    float *h0 = p->buf[s], *h1 = h0 + p->ow, *h2 = h1 + p->ow;
    for (int q = 0; q < p->ow; q++) {
        const uint8_t *u = row + p->x0[q], *w = row + p->x1[q];
        float b0 = p->b0[q], b1 = p->b1[q];
        h0[q] = b0 * v[u[0]] + b1 * v[w[0]];
        h1[q] = b0 * v[u[1]] + b1 * v[w[1]];
        h2[q] = b0 * v[u[2]] + b1 * v[w[2]];
    }
    p->row[s] = y;
    return p->buf[s];
}

/* One output row of a channel: a0 h0 + a1 h1, normalized when s (else
 * as is), the order of operations augment_window and normalize use;
 * element by element, so vectorizing it changes no bit. */
static void row_blend(float *restrict o, const float *restrict h0, const float *restrict h1, int n, float a0, float a1, const float *m,
                      const float *s) {
    if (!s) {
#pragma omp simd
        for (int q = 0; q < n; q++) o[q] = a0 * h0[q] + a1 * h1[q];
        return;
    }
    float mk = *m, sk = *s;
#pragma omp simd
    for (int q = 0; q < n; q++) o[q] = (a0 * h0[q] + a1 * h1[q] - mk) / sk;
}

int augment_window_rgb(float *out, const uint8_t *rgb, size_t stride, int bh, int bw, int fh, int fw, int oi, int oj, int oh, int ow,
                       int flip, const float *mean, const float *std) {
    float v[256];
    for (int q = 0; q < 256; q++) v[q] = (float)q / 255.0f;
    int *xi = malloc(sizeof(int) * 2 * (size_t)ow);
    float *f = malloc(sizeof(float) * 8 * (size_t)ow);
    if (!xi || !f) {
        free(xi);
        free(f);
        return asym_fail("out of memory resizing to %d x %d", oh, ow);
    }
    RowPass p = {rgb, stride, ow, xi, xi + ow, f, f + ow, v, {f + 2 * ow, f + 5 * ow}, {-1, -1}};
    for (int q = 0; q < ow; q++) {
        lerp_at(oj + (flip ? ow - 1 - q : q), bw, fw, &xi[q], &xi[ow + q], &f[q], &f[ow + q]);
        xi[q] *= 3, xi[ow + q] *= 3;
    }
    for (int y = 0; y < oh; y++) {
        int y0, y1;
        float a0, a1;
        lerp_at(oi + y, bh, fh, &y0, &y1, &a0, &a1);
        const float *h0 = row_pass(&p, y0, y1), *h1 = row_pass(&p, y1, y0);
        for (int k = 0; k < 3; k++)
            row_blend(out + ((size_t)k * oh + y) * ow, h0 + (size_t)k * ow, h1 + (size_t)k * ow, ow, a0, a1, mean ? mean + k : NULL,
                      mean ? std + k : NULL);
    }
    free(xi);
    free(f);
    return ASYM_OK;
}

void augment_resized_crop(float *out, const float *x, int c, int h, int w, int i, int j, int bh, int bw, int oh, int ow, int flip) {
    augment_window(out, x, c, h, w, i, j, bh, bw, oh, ow, 0, 0, oh, ow, flip);
}

void augment_eval(const AugmentSpec *a, float *out, const float *x, int c, int h, int w) {
    int rh = h, rw = w, oh, ow;
    AugmentSpec r = {.eval_resize = a->eval_resize};
    augment_eval_shape(&r, h, w, &rh, &rw);
    augment_eval_shape(a, h, w, &oh, &ow);
    int ci = augment_centre(rh, oh), cj = augment_centre(rw, ow);
    if (a->eval_resize) augment_window(out, x, c, h, w, 0, 0, h, w, rh, rw, ci, cj, oh, ow, 0);
    else augment_crop(out, x, c, h, w, ci, cj, oh, ow, 0, 0);
}

int augment_eval_set(const AugmentSpec *a, AsymDataset *d) {
    int oh, ow;
    if (!augment_eval_on(a) || !d->n) return ASYM_OK;
    if (augment_eval_shape(a, d->h, d->w, &oh, &ow)) return ASYM_ERR;
    size_t in = (size_t)d->c * d->h * d->w, out = (size_t)d->c * oh * ow;
    float *y = asym_falloc((size_t)d->n * out);
    if (!y) return ASYM_ERR;
#pragma omp parallel for schedule(static)
    for (int q = 0; q < d->n; q++) augment_eval(a, y + q * out, d->x + q * in, d->c, d->h, d->w);
    free(d->x);
    d->x = y;
    d->h = oh, d->w = ow;
    return ASYM_OK;
}

/* ---- a training set's augmentation ---- */

int augment_init(Augment *a, const AsymDataSpec *spec, const AsymDataset *train, uint64_t seed) {
    const char *key;
    memset(a, 0, sizeof *a);
    a->spec = spec->aug;
    a->c = train->c, a->h = train->h, a->w = train->w;
    a->seed = seed;
    if (augment_shape(&a->spec, a->h, a->w, &a->oh, &a->ow, &key)) return ASYM_ERR;
    if (!spec->normalize && !spec->norm_given) return ASYM_OK;
    a->mean = asym_calloc((size_t)a->c, sizeof *a->mean);
    a->std = asym_calloc((size_t)a->c, sizeof *a->std);
    if (!a->mean || !a->std) {
        augment_free(a);
        return ASYM_ERR;
    }
    data_norm_values(spec, train, a->mean, a->std);
    return ASYM_OK;
}

void augment_free(Augment *a) {
    free(a->mean);
    free(a->std);
    a->mean = a->std = NULL;
}

/* out <- (out - mean) / std per channel, as asym_dataset_normalize. */
static void normalize(const Augment *a, float *out) {
    if (!a->mean) return;
    size_t hw = (size_t)a->oh * a->ow;
    for (int k = 0; k < a->c; k++) {
        float m = a->mean[k], s = a->std[k], *o = out + k * hw;
        for (size_t q = 0; q < hw; q++) o[q] = (o[q] - m) / s;
    }
}

void augment_train(const Augment *a, float *out, const float *x, uint64_t epoch, uint64_t index) {
    AugmentDraw d = augment_draw(&a->spec, a->h, a->w, a->seed, epoch, index);
    if (a->spec.rrc_h) augment_resized_crop(out, x, a->c, a->h, a->w, d.i, d.j, d.bh, d.bw, a->oh, a->ow, d.flip);
    else augment_crop(out, x, a->c, a->h, a->w, d.i, d.j, a->oh, a->ow, a->spec.fill, d.flip);
    normalize(a, out);
}

void augment_eval_one(const Augment *a, float *out, const float *x) {
    augment_eval(&a->spec, out, x, a->c, a->h, a->w);
    normalize(a, out);
}

int augment_prepare_set(const AsymDataSpec *spec, AsymDataset *train) {
    Augment a;
    if (!augment_on(&spec->aug) || !train->n) return ASYM_OK;
    if (augment_init(&a, spec, train, 0)) return ASYM_ERR;
    size_t in = (size_t)a.c * a.h * a.w, out = (size_t)a.c * a.oh * a.ow;
    float *y = asym_falloc((size_t)train->n * out);
    if (y) {
#pragma omp parallel for schedule(static)
        for (int q = 0; q < train->n; q++) augment_eval_one(&a, y + q * out, train->x + q * in);
        free(train->x);
        train->x = y;
        train->h = a.oh, train->w = a.ow;
    }
    augment_free(&a);
    return y ? ASYM_OK : ASYM_ERR;
}
