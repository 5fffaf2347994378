/* data.c: image data sets (AsymDataset): Gaussian random sets,
 * truncation, zero padding, per-channel statistics and normalization,
 * seeded train/validation splits, grayscale conversion, and what the
 * readers (one file per format) share: file checks, allocation, and the
 * per-class sampling of Liao, Leibo and Poggio (2016) (N training and M
 * test images per class, a random subset of K classes). x is (n, c, h, w)
 * float32 from asym_falloc; y is (n) int32. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <stb/stb_image_resize.h>

#include "asymbp.h"
#include "data/data.h"
#include "base/base.h"

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
    if (data_alloc(d, "random data set", (size_t)n, c, h, w, classes)) return ASYM_ERR;
    /* All pixels first, then all labels, from one stream. */
    AsymRng r;
    rng_seed(&r, seed);
    for (size_t i = 0; i < total; i++) d->x[i] = rng_normal(&r);
    for (int i = 0; i < n; i++) d->y[i] = (int32_t)rng_below(&r, (uint32_t)classes);
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

int asym_dataset_resize(AsymDataset *d, int h, int w) {
    if (h < 1 || w < 1 || h > 4096 || w > 4096) return asym_fail("resize: size %d x %d not in 1..4096", h, w);
    if (h == d->h && w == d->w) return ASYM_OK;
    size_t planes = (size_t)d->n * d->c, in = (size_t)d->h * d->w, out = (size_t)h * w;
    float *x = asym_falloc(planes * out);
    if (!x) return ASYM_ERR;
    for (size_t q = 0; q < planes; q++)
        if (!stbir_resize_float_generic(d->x + q * in, d->w, d->h, 0, x + q * out, w, h, 0, 1, STBIR_ALPHA_CHANNEL_NONE, 0,
                                        STBIR_EDGE_CLAMP, STBIR_FILTER_TRIANGLE, STBIR_COLORSPACE_LINEAR, NULL)) {
            free(x);
            return asym_fail("resize: %d x %d to %d x %d failed", d->h, d->w, h, w);
        }
    free(d->x);
    d->x = x;
    d->h = h;
    d->w = w;
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

int asym_dataset_grayscale(AsymDataset *d) {
    if (d->c == 1) return ASYM_OK;
    if (d->c != 3) return asym_fail("grayscale: images have %d channels, expected 3 (RGB) or 1", d->c);
    size_t hw = (size_t)d->h * d->w;
    float *x = asym_falloc((size_t)d->n * hw);
    if (!x) return ASYM_ERR;
    /* stb_image's integer luma weights, so that folders decoded straight
     * to one channel and converted sets agree. */
    for (size_t i = 0; i < (size_t)d->n; i++) {
        const float *r = d->x + i * 3 * hw, *g = r + hw, *b = g + hw;
        for (size_t k = 0; k < hw; k++) x[i * hw + k] = (77.0f * r[k] + 150.0f * g[k] + 29.0f * b[k]) / 256.0f;
    }
    free(d->x);
    d->x = x;
    d->c = 1;
    return ASYM_OK;
}

/* ---- shared by the readers ---- */

int data_join(char *out, size_t cap, const char *dir, const char *name) {
    if (snprintf(out, cap, "%s/%s", dir, name) >= (int)cap) return asym_fail("%s/%s: path too long", dir, name);
    return ASYM_OK;
}

int data_exists(const char *dir, const char *name, int want_dir) {
    char path[4096];
    struct stat st;
    if (name ? snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path : strlen(dir) >= sizeof path) return 0;
    if (!name) snprintf(path, sizeof path, "%s", dir);
    return stat(path, &st) == 0 && (want_dir ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode));
}

int data_file_size(const char *path, size_t *size) {
    struct stat st;
    if (stat(path, &st) != 0) return asym_fail("%s: cannot open: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return asym_fail("%s: not a regular file", path);
    *size = (size_t)st.st_size;
    return ASYM_OK;
}

int data_alloc(AsymDataset *d, const char *what, size_t n, int c, int h, int w, int classes) {
    memset(d, 0, sizeof *d);
    if (c <= 0 || h <= 0 || w <= 0) return asym_fail("%s: bad image size %d x %d x %d", what, c, h, w);
    int64_t img = (int64_t)c * h * w;
    if (img > INT_MAX || (int64_t)h * w > INT_MAX || n > INT_MAX)
        return asym_fail("%s: %zu images of %d x %d x %d values are too many", what, n, c, h, w);
    if (n && (uint64_t)n * (uint64_t)img > SIZE_MAX / sizeof(float) / 2)
        return asym_fail("%s: %zu images of %lld values do not fit in memory", what, n, (long long)img);
    if (!(d->x = asym_falloc(n * (size_t)img)) || !(d->y = asym_calloc(n ? n : 1, sizeof *d->y))) {
        asym_dataset_free(d);
        return asym_fail("%s: out of memory for %zu images of %d x %d x %d", what, n, c, h, w);
    }
    d->n = (int)n;
    d->c = c;
    d->h = h;
    d->w = w;
    d->classes = classes;
    return ASYM_OK;
}

static const char *class_name(char *const *names, int c, char *buf, size_t cap) {
    if (names) return names[c];
    snprintf(buf, cap, "%d", c);
    return buf;
}

/* Stream constants: one independent generator per decision, so that the
 * class subset does not change with N or M, nor the training draw with M. */
#define SEED_CLASSES 0x636c617373657321ULL
#define SEED_FIRST 0x747261696e696e67ULL
#define SEED_SECOND 0x74657374696d6721ULL

int data_class_map(int classes, int K, uint64_t seed, int *map, int *kept) {
    for (int c = 0; c < classes; c++) map[c] = c;
    *kept = classes;
    if (K <= 0 || K >= classes) return ASYM_OK;
    int *perm = asym_calloc((size_t)classes, sizeof *perm);
    if (!perm) return ASYM_ERR;
    for (int c = 0; c < classes; c++) perm[c] = c;
    AsymRng r;
    rng_seed(&r, seed ^ SEED_CLASSES);
    rng_shuffle(&r, perm, classes);
    /* The drawn classes keep their relative order: new label j is the
     * j-th smallest old label drawn. */
    for (int c = 0; c < classes; c++) map[c] = -1;
    for (int j = 0; j < K; j++) map[perm[j]] = 0;
    for (int c = 0, k = 0; c < classes; c++)
        if (map[c] == 0) map[c] = k++;
    *kept = K;
    free(perm);
    return ASYM_OK;
}

int data_sample(const char *what, const AsymDataOptions *o, uint64_t seed, int classes, char *const *names,
                const int32_t *y1, int n1, const int32_t *y2, int n2, uint8_t *m1, uint8_t *m2, int *map, int *kept) {
    int K = o->classes_subset, N = o->train_per_class, M = o->test_per_class, pool = y2 == NULL, rc = ASYM_ERR;
    char nb[32];
    if (classes <= 0) return asym_fail("%s: no classes", what);
    if (K > classes) return asym_fail("%s: data.classes_subset is %d but the data set has %d classes", what, K, classes);
    if (pool && N == 0 && M == 0)
        return asym_fail("%s: no fixed train/test split here: set data.test_per_class (and data.train_per_class) to draw one", what);
    if (data_class_map(classes, K, seed, map, kept)) return ASYM_ERR;
    int *fill = NULL, *order = NULL, *start = NULL;
    AsymRng r;
    int kc = *kept;
    for (int pass = 0; pass < (pool ? 1 : 2); pass++) {
        const int32_t *y = pass ? y2 : y1;
        uint8_t *m = pass ? m2 : m1;
        int n = pass ? n2 : n1, per = pass ? M : N;
        const char *split = pool ? "" : pass ? "test " : "training ";
        if (!(order = asym_calloc(n ? (size_t)n : 1, sizeof *order)) || !(start = asym_calloc((size_t)kc + 1, sizeof *start)) ||
            !(fill = asym_calloc((size_t)kc + 1, sizeof *fill)))
            goto done;
        memset(m, 0, (size_t)n);
        /* Counting sort of the kept images by new class, in file order. */
        for (int i = 0; i < n; i++) {
            if (y[i] < 0 || y[i] >= classes) {
                asym_fail("%s: %simage %d has label %d, outside [0, %d)", what, split, i, (int)y[i], classes);
                goto done;
            }
            if (map[y[i]] >= 0) start[map[y[i]] + 1]++;
        }
        for (int k = 0; k < kc; k++) start[k + 1] += start[k];
        memcpy(fill, start, ((size_t)kc + 1) * sizeof *fill);
        for (int i = 0; i < n; i++)
            if (map[y[i]] >= 0) order[fill[map[y[i]]]++] = i;
        rng_seed(&r, seed ^ (pass ? SEED_SECOND : SEED_FIRST));
        for (int k = 0; k < kc; k++) {
            int *L = order + start[k], cnt = start[k + 1] - start[k], old = -1;
            for (int c = 0; c < classes && old < 0; c++)
                if (map[c] == k) old = c;
            const char *cn = class_name(names, old, nb, sizeof nb);
            if (pool) {
                /* Train gets the first N of a shuffled class, test the next
                 * M (or the rest); with N = 0, test the first M, train the rest. */
                int lead = N ? N : M;
                if (cnt <= lead) {
                    asym_fail("%s: class '%s' has %d images; data.%s_per_class = %d leaves none for %s", what, cn, cnt,
                              N ? "train" : "test", lead, N ? "testing" : "training");
                    goto done;
                }
                rng_shuffle(&r, L, cnt);
                int second = N ? (M && M < cnt - N ? M : cnt - N) : cnt - M;
                for (int i = 0; i < lead; i++) m[L[i]] = N ? 1 : 2;
                for (int i = lead; i < lead + second; i++) m[L[i]] = N ? 2 : 1;
            } else {
                if (pass == 0 && per > 0 && cnt < per) {
                    asym_fail("%s: class '%s' has %d training images, data.train_per_class asks for %d", what, cn, cnt, per);
                    goto done;
                }
                int take = per > 0 && per < cnt ? per : cnt;
                if (take < cnt) rng_shuffle(&r, L, cnt);
                for (int i = 0; i < take; i++) m[L[i]] = 1;
            }
        }
        free(order);
        free(start);
        free(fill);
        order = start = fill = NULL;
    }
    rc = ASYM_OK;
done:
    free(fill);
    free(order);
    free(start);
    return rc;
}

int data_gather(const AsymDataset *d, const uint8_t *mark, uint8_t which, const int *map, int classes, AsymDataset *out) {
    size_t n = 0, img = (size_t)d->c * d->h * d->w;
    for (int i = 0; i < d->n; i++) n += mark[i] == which;
    if (data_alloc(out, "data set", n, d->c, d->h, d->w, classes)) return ASYM_ERR;
    for (int i = 0, k = 0; i < d->n; i++) {
        if (mark[i] != which) continue;
        memcpy(out->x + (size_t)k * img, d->x + (size_t)i * img, img * sizeof(float));
        out->y[k++] = map ? map[d->y[i]] : d->y[i];
    }
    return ASYM_OK;
}
