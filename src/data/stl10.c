/* stl10.c: STL-10, binary version (Coates, Lee and Ng, 2011, "An
 * analysis of single-layer networks in unsupervised feature learning"; the
 * layout is the one of the data set's stl10_binary archive and its
 * reference reader). Files, without headers:
 *   train_X.bin, test_X.bin, unlabeled_X.bin: uint8 images of 3 x 96 x 96,
 *     each colour plane stored column-major (MATLAB order);
 *   train_y.bin, test_y.bin: one uint8 label per image, 1..10.
 * The unlabeled split is not a training set: only its statistics are read
 * (asymbp data info --unlabeled). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asymbp.h"
#include "data/data.h"
#include "io/io.h"
#include "base/base.h"

#define STL_SIDE 96
#define STL_PLANE (STL_SIDE * STL_SIDE)
#define STL_PIX (3 * STL_PLANE)
#define STL_CHUNK 64 /* images read at a time */

/* Size of an image file, checked to be a whole, non-zero number of images. */
static int stl_images(const char *path, size_t *n) {
    size_t size;
    if (data_file_size(path, &size)) return ASYM_ERR;
    if (size == 0) return asym_fail("%s: empty file (expected STL-10 images of %d bytes)", path, STL_PIX);
    if (size % STL_PIX)
        return asym_fail("%s: %zu bytes is not a whole number of %d-byte STL-10 images (the last one has %zu bytes: truncated?)", path,
                         size, STL_PIX, size % STL_PIX);
    *n = size / STL_PIX;
    return ASYM_OK;
}

static int stl_path(char *out, size_t cap, const char *dir, const char *name) {
    if (data_join(out, cap, dir, name)) return ASYM_ERR;
    if (!data_exists(out, NULL, 0))
        return asym_fail("%s: no %s (the STL-10 binary version has train_X.bin, train_y.bin, test_X.bin, test_y.bin)", dir, name);
    return ASYM_OK;
}

/* Reads the n images of path STL_CHUNK at a time, handing each to fn with
 * its index. */
static int stl_each(const char *path, size_t n, void (*fn)(const uint8_t *img, size_t i, void *ctx), void *ctx) {
    FILE *f = fopen(path, "rb");
    if (!f) return asym_fail("%s: cannot open: %s", path, strerror(errno));
    uint8_t *buf = malloc((size_t)STL_CHUNK * STL_PIX);
    int rc = buf ? ASYM_OK : asym_fail("%s: out of memory", path);
    for (size_t at = 0; at < n && !rc;) {
        size_t k = n - at < STL_CHUNK ? n - at : STL_CHUNK;
        if (fread(buf, STL_PIX, k, f) != k) rc = asym_fail("%s: offset %zu: read error (file shrank?)", path, at * STL_PIX);
        for (size_t i = 0; i < k && !rc; i++) fn(buf + i * STL_PIX, at + i, ctx);
        at += k;
    }
    fclose(f);
    free(buf);
    return rc;
}

/* Column-major planes on disk: byte (c, col, row) to (c, row, col). */
static void stl_decode(const uint8_t *src, size_t i, void *ctx) {
    float *dst = ((AsymDataset *)ctx)->x + i * STL_PIX;
    for (int c = 0; c < 3; c++)
        for (int col = 0; col < STL_SIDE; col++)
            for (int row = 0; row < STL_SIDE; row++) dst[c * STL_PLANE + row * STL_SIDE + col] = src[c * STL_PLANE + col * STL_SIDE + row] / 255.0f;
}

int asym_dataset_load_stl10(AsymDataset *d, const char *dir, int train) {
    memset(d, 0, sizeof *d);
    char xp[4096], yp[4096];
    size_t n, ny;
    uint8_t *lab = NULL;
    if (stl_path(xp, sizeof xp, dir, train ? "train_X.bin" : "test_X.bin") || stl_path(yp, sizeof yp, dir, train ? "train_y.bin" : "test_y.bin") ||
        stl_images(xp, &n))
        return ASYM_ERR;
    if (io_read_file(yp, &lab, &ny, n, 0)) {
        /* Past n bytes io_read_file says "larger than"; name both files. */
        if (strstr(asym_last_error(), "larger than")) asym_fail("%s: more labels than the %zu images of %s", yp, n, xp);
        return ASYM_ERR;
    }
    int rc = ny != n ? asym_fail("%s: %zu labels but %s holds %zu images", yp, ny, xp, n) : ASYM_OK;
    for (size_t i = 0; i < n && !rc; i++)
        if (lab[i] < 1 || lab[i] > 10) rc = asym_fail("%s: offset %zu: label %d out of range (STL-10 labels are 1..10)", yp, i, lab[i]);
    if (!rc) rc = data_alloc(d, dir, n, 3, STL_SIDE, STL_SIDE, 10);
    for (size_t i = 0; i < n && !rc; i++) d->y[i] = lab[i] - 1;
    if (!rc) rc = stl_each(xp, n, stl_decode, d);
    free(lab);
    if (rc) asym_dataset_free(d);
    return rc;
}

/* Integer sums are exact: 100000 images x 9216 x 255^2 < 2^64. */
typedef struct {
    uint64_t s[3], q[3];
} StlSums;

static void stl_sum(const uint8_t *img, size_t i, void *ctx) {
    StlSums *t = ctx;
    for (int c = 0; c < 3; c++)
        for (int j = 0; j < STL_PLANE; j++) {
            uint8_t p = img[c * STL_PLANE + j];
            t->s[c] += p;
            t->q[c] += (uint64_t)p * p;
        }
}

int asym_stl10_unlabeled_stats(const char *dir, int *n_out, float mean[3], float std[3]) {
    char xp[4096];
    size_t n;
    StlSums t = {{0}, {0}};
    if (data_join(xp, sizeof xp, dir, "unlabeled_X.bin")) return ASYM_ERR;
    if (!data_exists(xp, NULL, 0)) return asym_fail("%s: no unlabeled_X.bin", dir);
    if (stl_images(xp, &n) || stl_each(xp, n, stl_sum, &t)) return ASYM_ERR;
    double cnt = (double)n * STL_PLANE;
    for (int c = 0; c < 3; c++) {
        double m = (double)t.s[c] / cnt, v = (double)t.q[c] / cnt - m * m;
        mean[c] = (float)(m / 255.0);
        std[c] = (float)(sqrt(v > 0 ? v : 0) / 255.0);
    }
    *n_out = n > 0x7fffffff ? 0x7fffffff : (int)n;
    return ASYM_OK;
}
