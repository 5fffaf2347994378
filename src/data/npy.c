/* npy.c: NumPy .npy data sets (the format of numpy/lib/format.py):
 * a feature matrix x of shape (N, F), or images (N, H, W) or (N, C, H, W),
 * with a label vector y of N integers (TIMIT-80-style frame classification
 * and other non-image tasks of Liao, Leibo and Poggio (2016), trained with
 * a fully connected net). F features become F channels of 1 x 1 images, so
 * the model is flatten + fc layers. A folder holds train_x.npy, train_y.npy,
 * test_x.npy, test_y.npy (a fixed split) or x.npy and y.npy (a pool that
 * the per-class sampling splits). Any numeric dtype is read; uint8 arrays
 * are scaled to [0, 1] like pixels, other values are taken as they are and
 * must be finite. Labels must be whole numbers >= 0 (floats included). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asymbp.h"
#include "data/data.h"
#include "io/io.h"
#include "base/base.h"

#define MAX_LABEL (1 << 20) /* as many classes as a config may declare */

int npy_layout(const char *dir, int *pooled, char *x_path, size_t cap) {
    if (!data_exists(dir, NULL, 1)) return asym_fail("%s: no such folder (an npy data set is a folder of .npy files)", dir);
    if (data_exists(dir, "train_x.npy", 0)) {
        *pooled = 0;
        return data_join(x_path, cap, dir, "train_x.npy");
    }
    if (data_exists(dir, "x.npy", 0)) {
        *pooled = 1;
        return data_join(x_path, cap, dir, "x.npy");
    }
    return asym_fail("%s: no train_x.npy or x.npy (an npy data set holds train_x.npy, train_y.npy, test_x.npy, test_y.npy, or x.npy and y.npy)",
                     dir);
}

/* Item shape of an opened array: (N, F) -> F x 1 x 1, (N, H, W) -> 1 x H x W,
 * (N, C, H, W) as it is. */
static int item_shape(const char *path, const NpyArray *a, int *c, int *h, int *w) {
    int64_t s[3] = {1, 1, 1};
    if (a->ndim == 2) s[0] = a->shape[1];
    else if (a->ndim == 3) s[1] = a->shape[1], s[2] = a->shape[2];
    else if (a->ndim == 4) s[0] = a->shape[1], s[1] = a->shape[2], s[2] = a->shape[3];
    else return asym_fail("%s: %d dimensions; expected features (N, F) or images (N, H, W) or (N, C, H, W)", path, a->ndim);
    if (a->shape[0] == 0) return asym_fail("%s: no items (shape starts with 0)", path);
    if (s[0] < 1 || s[1] < 1 || s[2] < 1 || s[0] * s[1] * s[2] > 0x7fffffff || s[1] * s[2] > 0x7fffffff)
        return asym_fail("%s: items of %lld x %lld x %lld values not supported", path, (long long)s[0], (long long)s[1], (long long)s[2]);
    *c = (int)s[0];
    *h = (int)s[1];
    *w = (int)s[2];
    return ASYM_OK;
}

/* Reads the labels of y_path (n of them when n >= 0) as class indices. */
static int read_labels(const char *y_path, int64_t n, int32_t **y, size_t *count, int *classes) {
    NpyArray a;
    FILE *f;
    *y = NULL;
    if (npy_open(y_path, &a, &f)) return ASYM_ERR;
    float *v = NULL;
    int rc = ASYM_ERR;
    if (a.ndim < 1 || a.ndim > 2 || (a.ndim == 2 && a.shape[1] != 1)) {
        asym_fail("%s: labels must have shape (N,) or (N, 1), not %d dimensions%s", y_path, a.ndim, a.ndim == 2 ? " of (N, >1)" : "");
        goto done;
    }
    if (n >= 0 && a.shape[0] != n) {
        asym_fail("%s: %lld labels for %lld items", y_path, (long long)a.shape[0], (long long)n);
        goto done;
    }
    /* As floats: exact for every whole number below MAX_LABEL < 2^24. */
    if (!(v = asym_falloc(a.count)) || !(*y = asym_calloc(a.count ? a.count : 1, sizeof **y))) goto done;
    if (npy_read_values(y_path, &a, f, 1, v)) goto done;
    int mx = -1;
    for (size_t i = 0; i < a.count; i++) {
        if (!(v[i] >= 0 && v[i] < MAX_LABEL) || v[i] != floorf(v[i])) {
            asym_fail("%s: entry %zu: label %g is not a class index (0, 1, 2, ... below %d)", y_path, i, (double)v[i], MAX_LABEL);
            goto done;
        }
        (*y)[i] = (int32_t)v[i];
        if ((*y)[i] > mx) mx = (*y)[i];
    }
    *count = a.count;
    *classes = mx + 1;
    rc = ASYM_OK;
done:
    fclose(f);
    free(v);
    if (rc) {
        free(*y);
        *y = NULL;
    }
    return rc;
}

int asym_dataset_load_npy(AsymDataset *d, const char *x_path, const char *y_path) {
    memset(d, 0, sizeof *d);
    NpyArray a;
    FILE *f;
    int c, h, w, classes;
    int32_t *y = NULL;
    size_t ny;
    if (npy_open(x_path, &a, &f)) return ASYM_ERR;
    if (item_shape(x_path, &a, &c, &h, &w)) goto fail;
    if (a.shape[0] > 0x7fffffff) {
        asym_fail("%s: %lld items, more than %d", x_path, (long long)a.shape[0], 0x7fffffff);
        goto fail;
    }
    if (read_labels(y_path, a.shape[0], &y, &ny, &classes)) goto fail;
    if (data_alloc(d, x_path, (size_t)a.shape[0], c, h, w, classes)) goto fail;
    if (npy_read_values(x_path, &a, f, a.kind == 'u' && a.size == 1 ? 1.0 / 255.0 : 1.0, d->x)) goto fail;
    size_t total = a.count;
    for (size_t i = 0; i < total; i++)
        if (!isfinite(d->x[i])) {
            asym_fail("%s: element %zu (item %zu) is %s", x_path, i, i / ((size_t)c * h * w), isnan(d->x[i]) ? "NaN" : "infinite");
            goto fail;
        }
    memcpy(d->y, y, ny * sizeof *y);
    free(y);
    fclose(f);
    return ASYM_OK;
fail:
    fclose(f);
    free(y);
    asym_dataset_free(d);
    return ASYM_ERR;
}

/* The classes of labels up to k - 1: data.classes when given, else k. */
static int npy_classes(const AsymDataSpec *s, int k, int *classes) {
    if (s->opt.classes && s->opt.classes < k) return asym_fail("%s: labels go up to %d but data.classes is %d", s->path, k - 1, s->opt.classes);
    *classes = s->opt.classes ? s->opt.classes : k;
    return ASYM_OK;
}

int npy_shape(const AsymDataSpec *s, int *c, int *h, int *w, int *classes) {
    int pooled, k = 0;
    char xp[4096], yp[4096];
    NpyArray a;
    FILE *f;
    if (npy_layout(s->path, &pooled, xp, sizeof xp) || npy_open(xp, &a, &f)) return ASYM_ERR;
    fclose(f);
    if (a.ndim >= 1 && a.shape[0] > 0x7fffffff) return asym_fail("%s: %lld items, more than %d", xp, (long long)a.shape[0], 0x7fffffff);
    if (item_shape(xp, &a, c, h, w)) return ASYM_ERR;
    const char *const names[2] = {pooled ? "y.npy" : "train_y.npy", pooled ? NULL : "test_y.npy"};
    for (int i = 0; i < 2 && names[i]; i++) {
        int32_t *y;
        size_t n;
        int ki;
        if (data_join(yp, sizeof yp, s->path, names[i]) || read_labels(yp, -1, &y, &n, &ki)) return ASYM_ERR;
        free(y);
        if (ki > k) k = ki;
    }
    if (k < 1) return asym_fail("%s: no labels", s->path);
    return npy_classes(s, k, classes);
}

int npy_splits(const AsymDataSpec *s, AsymDataset *train, AsymDataset *test, int *pooled) {
    const char *p = s->path;
    char xp[4096], yp[4096];
    if (npy_layout(p, pooled, xp, sizeof xp)) return ASYM_ERR;
    int rc = data_join(yp, sizeof yp, p, *pooled ? "y.npy" : "train_y.npy") || asym_dataset_load_npy(train, xp, yp);
    if (!rc && !*pooled)
        rc = data_join(xp, sizeof xp, p, "test_x.npy") || data_join(yp, sizeof yp, p, "test_y.npy") || asym_dataset_load_npy(test, xp, yp);
    /* Each file's classes are its largest label + 1; the set's are the
     * larger of the two, or data.classes. */
    int k = train->classes > test->classes ? train->classes : test->classes;
    if (rc || npy_classes(s, k, &k)) return ASYM_ERR;
    train->classes = test->classes = k;
    return ASYM_OK;
}
