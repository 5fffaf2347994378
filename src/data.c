/* data.c: image data sets (AsymDataset): MNIST-format IDX loading, Gaussian
 * random sets, truncation, zero padding, per-channel statistics and
 * normalization, and seeded train/validation splits. x is (n, c, h, w)
 * float32 from asym_falloc; y is (n) int32. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "asymbp.h"
#include "io.h"
#include "util.h"

/* Largest (decompressed) IDX file read; with one byte per value this also
 * keeps n, h, w and n*h*w within int. */
#define IDX_MAX ((size_t)1 << 31)

/* Reads dir/name.gz, or dir/name when there is no .gz, into path and buf. */
static int read_idx(const char *dir, const char *name, char *path, size_t cap, uint8_t **buf, size_t *len) {
    if (snprintf(path, cap, "%s/%s.gz", dir, name) >= (int)cap) return asym_fail("%s: path too long", dir);
    if (access(path, F_OK) != 0) {
        snprintf(path, cap, "%s/%s", dir, name);
        if (access(path, F_OK) != 0)
            return asym_fail("%s: no %s[.gz] (expected MNIST-format IDX files)", dir, name);
    }
    return io_read_all(path, buf, len, IDX_MAX);
}

int asym_dataset_load_idx(AsymDataset *d, const char *dir, int train) {
    memset(d, 0, sizeof *d);
    char ipath[4096], lpath[4096];
    uint8_t *ib = NULL, *lb = NULL;
    size_t ilen, llen;
    int ind, lnd, rc = ASYM_ERR;
    uint32_t idim[4], ldim[4];
    const uint8_t *pix, *lab;
    if (read_idx(dir, train ? "train-images-idx3-ubyte" : "t10k-images-idx3-ubyte", ipath, sizeof ipath, &ib, &ilen) ||
        idx_parse(ipath, ib, ilen, &ind, idim, &pix))
        goto done;
    if (ind != 3) {
        asym_fail("%s: images file has %d dimensions, expected 3 (n, h, w)", ipath, ind);
        goto done;
    }
    if (read_idx(dir, train ? "train-labels-idx1-ubyte" : "t10k-labels-idx1-ubyte", lpath, sizeof lpath, &lb, &llen) ||
        idx_parse(lpath, lb, llen, &lnd, ldim, &lab))
        goto done;
    if (lnd != 1) {
        asym_fail("%s: labels file has %d dimensions, expected 1", lpath, lnd);
        goto done;
    }
    if (ldim[0] != idim[0]) {
        asym_fail("%s: labels file holds %u labels but images file %s %u images", lpath, ldim[0], ipath, idim[0]);
        goto done;
    }
    if (!idim[0] || !idim[1] || !idim[2]) {
        asym_fail("%s: no images (%u x %u x %u)", ipath, idim[0], idim[1], idim[2]);
        goto done;
    }
    size_t n = idim[0], hw = (size_t)idim[1] * idim[2];
    if (!(d->x = asym_falloc(n * hw)) || !(d->y = asym_calloc(n, sizeof *d->y))) goto done;
    for (size_t i = 0; i < n * hw; i++) d->x[i] = pix[i] / 255.0f;
    int maxl = 0;
    for (size_t i = 0; i < n; i++) {
        d->y[i] = lab[i];
        if (lab[i] > maxl) maxl = lab[i];
    }
    d->n = (int)n;
    d->c = 1;
    d->h = (int)idim[1];
    d->w = (int)idim[2];
    d->classes = maxl < 10 ? 10 : maxl + 1; /* MNIST-style sets have 10 classes */
    rc = ASYM_OK;
done:
    free(ib);
    free(lb);
    if (rc) asym_dataset_free(d);
    return rc;
}

int asym_dataset_random(AsymDataset *d, int n, int c, int h, int w, int classes, uint64_t seed) {
    memset(d, 0, sizeof *d);
    if (n <= 0 || c <= 0 || h <= 0 || w <= 0 || classes <= 0)
        return asym_fail("random data set: sizes must be positive (n=%d c=%d h=%d w=%d classes=%d)", n, c, h, w, classes);
    /* One image must be indexable by int; the whole set by size_t. */
    int64_t img = (int64_t)c * h;
    if (img > INT_MAX || (img *= w) > INT_MAX)
        return asym_fail("random data set: image of %d x %d x %d values is too large", c, h, w);
    if ((uint64_t)n * (uint64_t)img > SIZE_MAX / sizeof(float))
        return asym_fail("random data set: %d images of %lld values are too many", n, (long long)img);
    size_t total = (size_t)n * (size_t)img;
    if (!(d->x = asym_falloc(total)) || !(d->y = asym_calloc((size_t)n, sizeof *d->y))) {
        asym_dataset_free(d);
        return ASYM_ERR;
    }
    /* All pixels first, then all labels, from one stream. */
    AsymRng r;
    rng_seed(&r, seed);
    for (size_t i = 0; i < total; i++) d->x[i] = rng_normal(&r);
    for (int i = 0; i < n; i++) d->y[i] = (int32_t)rng_below(&r, (uint32_t)classes);
    d->n = n;
    d->c = c;
    d->h = h;
    d->w = w;
    d->classes = classes;
    return ASYM_OK;
}

void asym_dataset_truncate(AsymDataset *d, int n) {
    if (n >= 0 && n < d->n) d->n = n;
}

int asym_dataset_pad(AsymDataset *d, int p) {
    if (p < 0) return asym_fail("pad: negative padding %d", p);
    if (p == 0) return ASYM_OK;
    if (d->h > INT_MAX - 2 * p || d->w > INT_MAX - 2 * p || (int64_t)d->c * (d->h + 2 * p) * (d->w + 2 * p) > INT_MAX)
        return asym_fail("pad: padded images of %d x %d are too large", d->h, d->w);
    int H = d->h + 2 * p, W = d->w + 2 * p;
    size_t planes = (size_t)d->n * d->c;
    float *x = asym_falloc(planes * H * W); /* zeroed: the border */
    if (!x) return ASYM_ERR;
    for (size_t q = 0; q < planes; q++)
        for (int i = 0; i < d->h; i++)
            memcpy(x + (q * H + i + p) * W + p, d->x + (q * d->h + i) * d->w, (size_t)d->w * sizeof *x);
    free(d->x);
    d->x = x;
    d->h = H;
    d->w = W;
    return ASYM_OK;
}

void asym_dataset_normalize(AsymDataset *d, const float *mean, const float *std) {
    size_t hw = (size_t)d->h * d->w;
    for (size_t q = 0; q < (size_t)d->n * d->c; q++) {
        float m = mean[q % d->c], s = std[q % d->c];
        float *x = d->x + q * hw;
        for (size_t i = 0; i < hw; i++) x[i] = (x[i] - m) / s;
    }
}

void asym_dataset_stats(const AsymDataset *d, float *mean, float *std) {
    /* Two passes in double: mean, then the population variance about it. */
    size_t hw = (size_t)d->h * d->w, count = (size_t)d->n * hw;
    for (int c = 0; c < d->c; c++) {
        double s = 0, v = 0;
        for (int i = 0; i < d->n; i++) {
            const float *x = d->x + ((size_t)i * d->c + c) * hw;
            for (size_t k = 0; k < hw; k++) s += x[k];
        }
        double m = count ? s / (double)count : 0;
        for (int i = 0; i < d->n; i++) {
            const float *x = d->x + ((size_t)i * d->c + c) * hw;
            for (size_t k = 0; k < hw; k++) v += (x[k] - m) * (x[k] - m);
        }
        mean[c] = (float)m;
        std[c] = count ? (float)sqrt(v / (double)count) : 1.0f; /* empty set: identity normalization */
    }
}

int asym_dataset_split(AsymDataset *d, AsymDataset *val, int n, uint64_t seed) {
    memset(val, 0, sizeof *val);
    if (n < 0 || n >= d->n) return asym_fail("split: validation size %d not in [0, %d)", n, d->n);
    size_t img = (size_t)d->c * d->h * d->w;
    int keep = d->n - n;
    int *perm = asym_calloc((size_t)d->n, sizeof *perm);
    unsigned char *taken = asym_calloc((size_t)d->n, 1);
    float *kx = asym_falloc((size_t)keep * img);
    int32_t *ky = asym_calloc((size_t)keep, sizeof *ky);
    val->x = asym_falloc((size_t)n * img);
    val->y = asym_calloc((size_t)n, sizeof *val->y);
    if (!perm || !taken || !kx || !ky || !val->x || !val->y) {
        free(perm);
        free(taken);
        free(kx);
        free(ky);
        asym_dataset_free(val);
        return ASYM_ERR;
    }
    for (int i = 0; i < d->n; i++) perm[i] = i;
    AsymRng r;
    rng_seed(&r, seed);
    rng_shuffle(&r, perm, d->n);
    /* val takes perm[0..n) in permutation order; d keeps the rest in their
     * original order. */
    for (int j = 0; j < n; j++) {
        size_t i = (size_t)perm[j];
        memcpy(val->x + j * img, d->x + i * img, img * sizeof(float));
        val->y[j] = d->y[i];
        taken[i] = 1;
    }
    for (int i = 0, k = 0; i < d->n; i++) {
        if (taken[i]) continue;
        memcpy(kx + (size_t)k * img, d->x + (size_t)i * img, img * sizeof(float));
        ky[k++] = d->y[i];
    }
    free(perm);
    free(taken);
    free(d->x);
    free(d->y);
    d->x = kx;
    d->y = ky;
    d->n = keep;
    val->n = n;
    val->c = d->c;
    val->h = d->h;
    val->w = d->w;
    val->classes = d->classes;
    return ASYM_OK;
}

void asym_dataset_free(AsymDataset *d) {
    free(d->x);
    free(d->y);
    memset(d, 0, sizeof *d);
}
