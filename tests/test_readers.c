/* test_readers.c: the data set readers of issue 5 (CIFAR-10/100 and STL-10
 * binary, SVHN .mat, image folders, .npy), the per-class sampling, the
 * data config keys and `asymbp data info`. Every test writes its own tiny
 * files (MAT-files with libmatio, PNG and JPEG with stb_image_write) and
 * checks the decoded values, then breaks them in each way a reader must
 * notice: truncation, wrong magic, a header claiming more than the file
 * holds (overflowing values included), labels out of range, images that do
 * not decode, empty class folders. Each must give one message naming the
 * file, a zeroed data set, and no crash. Crashes found by fuzz/ become
 * tests at the end (readers_fuzz_*). SHOW_ERR=1 prints every message the
 * tests check, to read them all at once. */
#include <errno.h>
#include <fcntl.h>
#include <matio.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <stb/stb_image_write.h>

#include "asymbp.h"
#include "config/config.h"
#include "data/data.h"
#include "io/io.h"
#include "test.h"
#include "base/base.h"

/* A fresh directory tmp/a/b... (parents created); the name stays valid
 * for the next 15 calls. */
static const char *dir_of(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *dir_of(const char *fmt, ...) {
    static char bufs[16][1024];
    static int k;
    char *dir = bufs[k++ % 16], rel[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rel, sizeof rel, fmt, ap);
    va_end(ap);
    snprintf(dir, 1024, "%s/%s", test_tmpdir(), rel);
    for (char *s = dir + strlen(test_tmpdir()) + 1; *s; s++)
        if (*s == '/') {
            *s = 0;
            mkdir(dir, 0755);
            *s = '/';
        }
    mkdir(dir, 0755);
    return dir;
}

static int put(const char *dir, const char *name, const void *buf, size_t len) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int ok = len == 0 || fwrite(buf, 1, len, f) == len;
    return fclose(f) == 0 && ok ? 0 : -1;
}

static int cut(const char *dir, const char *name, off_t len) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return truncate(path, len);
}

/* The last error contains every string given; prints it otherwise. */
static int err_has(const char *a, const char *b) {
    const char *e = asym_last_error();
    if (getenv("SHOW_ERR")) printf("    [%s]\n", e);
    if (strstr(e, a) && (!b || strstr(e, b))) return 1;
    printf("    error '%s' lacks '%s'%s%s\n", e, a, b ? " or " : "", b ? b : "");
    return 0;
}

static int empty(const AsymDataset *d) { return !d->x && !d->y && !d->n; }

/* ---- CIFAR ---- */

/* Record i of a CIFAR-10 (or -100) file: labels, then pixel k = (i*7 + k) % 251. */
static size_t cifar_records(uint8_t *buf, int n, int first, int hundred, const int *l1, const int *l2) {
    size_t rec = 3072 + (hundred ? 2 : 1);
    for (int i = 0; i < n; i++) {
        uint8_t *r = buf + i * rec;
        r[0] = (uint8_t)l1[i];
        if (hundred) r[1] = (uint8_t)l2[i];
        for (int k = 0; k < 3072; k++) r[rec - 3072 + k] = (uint8_t)(((first + i) * 7 + k) % 251);
    }
    return n * rec;
}

/* CIFAR-10 in dir: five batches of two images, a test batch of three. */
static int write_cifar10(const char *dir) {
    static uint8_t buf[3 * 3073];
    static const int lab[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, tlab[3] = {9, 0, 5};
    char name[32];
    for (int b = 0; b < 5; b++) {
        snprintf(name, sizeof name, "data_batch_%d.bin", b + 1);
        if (put(dir, name, buf, cifar_records(buf, 2, 2 * b, 0, lab + 2 * b, NULL))) return -1;
    }
    return put(dir, "test_batch.bin", buf, cifar_records(buf, 3, 100, 0, tlab, NULL));
}

TEST(readers_cifar10_values) {
    const char *dir = dir_of("c10");
    CHECK(write_cifar10(dir) == 0);
    AsymDataset d;
    CHECK_OK(asym_dataset_load_cifar(&d, dir, 0, 0, 1));
    int ok = d.n == 10 && d.c == 3 && d.h == 32 && d.w == 32 && d.classes == 10;
    for (int i = 0; i < 10 && ok; i++) {
        ok = d.y[i] == i;
        /* red (0,0), green (0,0), blue (31,31) */
        ok = ok && d.x[(size_t)i * 3072] == (float)((i * 7) % 251) / 255.0f;
        ok = ok && d.x[(size_t)i * 3072 + 1024] == (float)((i * 7 + 1024) % 251) / 255.0f;
        ok = ok && d.x[(size_t)i * 3072 + 3071] == (float)((i * 7 + 3071) % 251) / 255.0f;
    }
    asym_dataset_free(&d);
    CHECK(ok);
    CHECK_OK(asym_dataset_load_cifar(&d, dir, 0, 0, 0));
    ok = d.n == 3 && d.y[0] == 9 && d.y[2] == 5 && d.x[3072 + 5] == (float)((101 * 7 + 5) % 251) / 255.0f;
    asym_dataset_free(&d);
    CHECK(ok);
}

TEST(readers_cifar100_fine_coarse) {
    const char *dir = dir_of("c100");
    static uint8_t buf[4 * 3074];
    int coarse[4] = {0, 19, 3, 7}, fine[4] = {99, 0, 42, 7};
    CHECK(put(dir, "train.bin", buf, cifar_records(buf, 4, 0, 1, coarse, fine)) == 0);
    CHECK(put(dir, "test.bin", buf, cifar_records(buf, 1, 0, 1, coarse, fine)) == 0);
    AsymDataset d;
    CHECK_OK(asym_dataset_load_cifar(&d, dir, 1, 0, 1));
    int ok = d.n == 4 && d.classes == 100 && d.y[0] == 99 && d.y[2] == 42 && d.x[3072 * 3 + 2] == (float)((3 * 7 + 2) % 251) / 255.0f;
    asym_dataset_free(&d);
    CHECK(ok);
    CHECK_OK(asym_dataset_load_cifar(&d, dir, 1, 1, 1));
    ok = d.n == 4 && d.classes == 20 && d.y[0] == 0 && d.y[1] == 19 && d.y[3] == 7;
    asym_dataset_free(&d);
    CHECK(ok);
}

TEST(readers_cifar_breakage) {
    const char *dir = dir_of("c10bad");
    static uint8_t buf[3 * 3074];
    AsymDataset d;
    CHECK(write_cifar10(dir) == 0);
    /* truncated: the last record short by one byte */
    CHECK(cut(dir, "data_batch_2.bin", 2 * 3073 - 1) == 0);
    CHECK(asym_dataset_load_cifar(&d, dir, 0, 0, 1) == ASYM_ERR && empty(&d));
    CHECK(err_has("data_batch_2.bin: 6145 bytes is not a whole number of 3073-byte CIFAR-10 records", "truncated?"));
    /* empty */
    CHECK(cut(dir, "data_batch_2.bin", 0) == 0);
    CHECK(asym_dataset_load_cifar(&d, dir, 0, 0, 1) == ASYM_ERR && err_has("data_batch_2.bin: empty file", NULL));
    /* label out of range, with the record and byte offset */
    int lab[2] = {3, 10};
    CHECK(put(dir, "data_batch_2.bin", buf, cifar_records(buf, 2, 0, 0, lab, NULL)) == 0);
    CHECK(asym_dataset_load_cifar(&d, dir, 0, 0, 1) == ASYM_ERR && empty(&d));
    CHECK(err_has("data_batch_2.bin: offset 3073: record 1: label 10 out of range", NULL));
    /* a missing batch */
    CHECK(write_cifar10(dir) == 0);
    char path[1200];
    snprintf(path, sizeof path, "%s/data_batch_4.bin", dir);
    CHECK(remove(path) == 0);
    CHECK(asym_dataset_load_cifar(&d, dir, 0, 0, 1) == ASYM_ERR && err_has("no data_batch_4.bin", NULL));
    /* the python version (a pickle) in place of the binary one */
    CHECK(write_cifar10(dir) == 0);
    uint8_t pickle[100] = {0x80, 0x02, '}', 'q'};
    CHECK(put(dir, "test_batch.bin", pickle, sizeof pickle) == 0);
    CHECK(asym_dataset_load_cifar(&d, dir, 0, 0, 0) == ASYM_ERR && err_has("test_batch.bin: offset 0: looks like a Python pickle", NULL));
    /* CIFAR-100 records read as CIFAR-10: the size gives it away */
    int c[3] = {1, 2, 3}, f[3] = {4, 5, 6};
    CHECK(put(dir, "test_batch.bin", buf, cifar_records(buf, 3, 0, 1, c, f)) == 0);
    CHECK(asym_dataset_load_cifar(&d, dir, 0, 0, 0) == ASYM_ERR && err_has("not a whole number of 3073-byte", NULL));
    /* CIFAR-100 coarse and fine ranges are both checked */
    const char *d100 = dir_of("c100bad");
    int c2[2] = {20, 1}, f2[2] = {5, 100};
    CHECK(put(d100, "train.bin", buf, cifar_records(buf, 2, 0, 1, c2, f2)) == 0);
    CHECK(asym_dataset_load_cifar(&d, d100, 1, 0, 1) == ASYM_ERR && err_has("offset 0: record 0: coarse label 20 out of range", NULL));
    c2[0] = 2;
    CHECK(put(d100, "train.bin", buf, cifar_records(buf, 2, 0, 1, c2, f2)) == 0);
    CHECK(asym_dataset_load_cifar(&d, d100, 1, 1, 1) == ASYM_ERR && err_has("offset 3075: record 1: fine label 100 out of range", NULL));
    CHECK(asym_dataset_load_cifar(&d, d100, 1, 0, 0) == ASYM_ERR && err_has("no test.bin", NULL));
}

/* ---- STL-10 ---- */

static uint8_t stl_pixel(int i, int c, int row, int col) { return (uint8_t)((row * 7 + col * 3 + c * 50 + i * 11) % 256); }

/* n STL-10 images, column-major planes as on disk, and labels. */
static int write_stl(const char *dir, const char *xname, const char *yname, int n, const uint8_t *labels) {
    uint8_t *x = malloc((size_t)n * 27648);
    if (!x) return -1;
    for (int i = 0; i < n; i++)
        for (int c = 0; c < 3; c++)
            for (int col = 0; col < 96; col++)
                for (int row = 0; row < 96; row++) x[(size_t)i * 27648 + c * 9216 + col * 96 + row] = stl_pixel(i, c, row, col);
    int rc = put(dir, xname, x, (size_t)n * 27648);
    free(x);
    return rc || (yname && put(dir, yname, labels, (size_t)n)) ? -1 : 0;
}

TEST(readers_stl10_values) {
    const char *dir = dir_of("stl");
    uint8_t lab[3] = {1, 10, 4};
    CHECK(write_stl(dir, "train_X.bin", "train_y.bin", 3, lab) == 0);
    CHECK(write_stl(dir, "test_X.bin", "test_y.bin", 1, lab + 1) == 0);
    AsymDataset d;
    CHECK_OK(asym_dataset_load_stl10(&d, dir, 1));
    int ok = d.n == 3 && d.c == 3 && d.h == 96 && d.w == 96 && d.classes == 10 && d.y[0] == 0 && d.y[1] == 9 && d.y[2] == 3;
    /* (image, channel, row, col) row-major in memory */
    int probes[4][4] = {{0, 0, 0, 1}, {1, 2, 5, 90}, {2, 1, 95, 0}, {2, 2, 40, 41}};
    for (int k = 0; k < 4 && ok; k++) {
        int i = probes[k][0], c = probes[k][1], r = probes[k][2], col = probes[k][3];
        ok = d.x[(size_t)i * 27648 + c * 9216 + r * 96 + col] == stl_pixel(i, c, r, col) / 255.0f;
    }
    asym_dataset_free(&d);
    CHECK(ok);
    CHECK_OK(asym_dataset_load_stl10(&d, dir, 0));
    ok = d.n == 1 && d.y[0] == 9;
    asym_dataset_free(&d);
    CHECK(ok);
    /* The unlabeled split: streamed statistics, exact against a direct sum. */
    CHECK(write_stl(dir, "unlabeled_X.bin", NULL, 2, NULL) == 0);
    int n;
    float mean[3], std[3];
    CHECK_OK(asym_stl10_unlabeled_stats(dir, &n, mean, std));
    double s = 0, q = 0;
    for (int i = 0; i < 2; i++)
        for (int r = 0; r < 96; r++)
            for (int c = 0; c < 96; c++) {
                double v = stl_pixel(i, 1, r, c) / 255.0;
                s += v;
                q += v * v;
            }
    double m = s / (2 * 9216);
    CHECK(n == 2);
    CHECK_NEAR(mean[1], m, 1e-6);
    CHECK_NEAR(std[1], sqrt(q / (2 * 9216) - m * m), 1e-5);
}

TEST(readers_stl10_breakage) {
    const char *dir = dir_of("stlbad");
    uint8_t lab[3] = {1, 2, 3};
    AsymDataset d;
    CHECK(write_stl(dir, "train_X.bin", "train_y.bin", 3, lab) == 0);
    CHECK(cut(dir, "train_X.bin", 3 * 27648 - 100) == 0);
    CHECK(asym_dataset_load_stl10(&d, dir, 1) == ASYM_ERR && empty(&d));
    CHECK(err_has("train_X.bin: 82844 bytes is not a whole number of 27648-byte STL-10 images", "truncated?"));
    CHECK(cut(dir, "train_X.bin", 2 * 27648) == 0);
    CHECK(asym_dataset_load_stl10(&d, dir, 1) == ASYM_ERR && err_has("train_y.bin: more labels than the 2 images", NULL));
    CHECK(cut(dir, "train_X.bin", 4 * 27648) == 0);
    CHECK(asym_dataset_load_stl10(&d, dir, 1) == ASYM_ERR && err_has("train_y.bin: 3 labels but", "holds 4 images"));
    uint8_t bad[3] = {1, 11, 2};
    CHECK(write_stl(dir, "train_X.bin", "train_y.bin", 3, bad) == 0);
    CHECK(asym_dataset_load_stl10(&d, dir, 1) == ASYM_ERR && err_has("train_y.bin: offset 1: label 11 out of range", NULL));
    bad[1] = 0;
    CHECK(put(dir, "train_y.bin", bad, 3) == 0);
    CHECK(asym_dataset_load_stl10(&d, dir, 1) == ASYM_ERR && err_has("offset 1: label 0 out of range", NULL));
    CHECK(asym_dataset_load_stl10(&d, dir, 0) == ASYM_ERR && err_has("no test_X.bin", NULL));
    CHECK(cut(dir, "train_X.bin", 0) == 0);
    CHECK(asym_dataset_load_stl10(&d, dir, 1) == ASYM_ERR && err_has("train_X.bin: empty file", NULL));
}

/* ---- SVHN ---- */

static uint8_t svhn_pixel(int i, int ch, int r, int c) { return (uint8_t)((r * 5 + c * 9 + ch * 70 + i * 13) % 256); }

/* An SVHN-style MAT-file: X (32x32x3xn, or dims xd when given) of class
 * xclass, y (n x 1) as double. */
static int write_svhn(const char *path, int n, const double *labels, int compress, const size_t *xd, enum matio_classes xclass) {
    size_t xdims[4] = {32, 32, 3, (size_t)n}, ydims[2] = {(size_t)n, 1};
    if (xd) memcpy(xdims, xd, sizeof xdims);
    size_t nx = xdims[0] * xdims[1] * xdims[2] * xdims[3];
    uint8_t *x = malloc(nx * 8);
    if (!x) return -1;
    for (size_t k = 0; k < nx; k++) {
        size_t r = k % xdims[0], c = k / xdims[0] % xdims[1], ch = k / (xdims[0] * xdims[1]) % xdims[2], i = k / (xdims[0] * xdims[1] * xdims[2]);
        uint8_t v = svhn_pixel((int)i, (int)ch, (int)r, (int)c);
        if (xclass == MAT_C_DOUBLE) ((double *)(void *)x)[k] = v;
        else x[k] = v;
    }
    mat_t *m = Mat_CreateVer(path, NULL, MAT_FT_MAT5);
    int rc = -1;
    if (m) {
        matvar_t *xv = Mat_VarCreate("X", xclass, xclass == MAT_C_DOUBLE ? MAT_T_DOUBLE : MAT_T_UINT8, 4, xdims, x, 0);
        matvar_t *yv = labels ? Mat_VarCreate("y", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, ydims, (void *)labels, 0) : NULL;
        enum matio_compression z = compress ? MAT_COMPRESSION_ZLIB : MAT_COMPRESSION_NONE;
        rc = xv && !Mat_VarWrite(m, xv, z) && (!labels || (yv && !Mat_VarWrite(m, yv, z))) ? 0 : -1;
        if (xv) Mat_VarFree(xv);
        if (yv) Mat_VarFree(yv);
        Mat_Close(m);
    }
    free(x);
    return rc;
}

static int svhn_matches(const AsymDataset *d, const double *labels) {
    for (int i = 0; i < d->n; i++) {
        if (d->y[i] != (labels[i] == 10 ? 0 : (int)labels[i])) return 0;
        for (int ch = 0; ch < 3; ch++)
            for (int r = 0; r < 32; r += 7)
                for (int c = 0; c < 32; c += 5)
                    if (d->x[(size_t)i * 3072 + ch * 1024 + r * 32 + c] != svhn_pixel(i, ch, r, c) / 255.0f) return 0;
    }
    return 1;
}

TEST(readers_svhn_values) {
    const char *dir = dir_of("svhn");
    double lab[3] = {10, 1, 7}, tlab[2] = {3, 10};
    char tr[1200], te[1200];
    snprintf(tr, sizeof tr, "%s/train_32x32.mat", dir);
    snprintf(te, sizeof te, "%s/test_32x32.mat", dir);
    CHECK(write_svhn(tr, 3, lab, 0, NULL, MAT_C_UINT8) == 0);
    CHECK(write_svhn(te, 2, tlab, 1, NULL, MAT_C_UINT8) == 0);
    AsymDataset d;
    CHECK_OK(asym_dataset_load_svhn(&d, dir, 1));
    int ok = d.n == 3 && d.c == 3 && d.h == 32 && d.classes == 10 && d.y[0] == 0 && svhn_matches(&d, lab);
    asym_dataset_free(&d);
    CHECK(ok);
    /* compressed (MATLAB's -v7 default), read through the file path */
    CHECK_OK(asym_dataset_load_svhn(&d, te, 0));
    ok = d.n == 2 && d.y[1] == 0 && svhn_matches(&d, tlab);
    asym_dataset_free(&d);
    CHECK(ok);
    /* one image: MATLAB drops the trailing 1, X is 32x32x3 */
    CHECK(write_svhn(tr, 1, lab + 2, 1, NULL, MAT_C_UINT8) == 0);
    CHECK_OK(asym_dataset_load_svhn(&d, tr, 1));
    ok = d.n == 1 && d.y[0] == 7 && svhn_matches(&d, lab + 2);
    asym_dataset_free(&d);
    CHECK(ok);
}

/* Offset of the first occurrence of needle in the file, or -1. */
static long find_bytes(const char *path, const void *needle, size_t n) {
    uint8_t *buf;
    size_t len;
    if (io_read_file(path, &buf, &len, 1 << 24, 0)) return -1;
    long at = -1;
    for (size_t i = 0; i + n <= len && at < 0; i++)
        if (!memcmp(buf + i, needle, n)) at = (long)i;
    free(buf);
    return at;
}

static int patch(const char *path, long off, const void *bytes, size_t n) {
    int fd = open(path, O_WRONLY);
    if (fd < 0) return -1;
    int ok = pwrite(fd, bytes, n, off) == (ssize_t)n;
    return close(fd) == 0 && ok ? 0 : -1;
}

TEST(readers_svhn_breakage) {
    const char *dir = dir_of("svhnbad");
    double lab[3] = {1, 2, 3};
    char p[1200];
    AsymDataset d;
    snprintf(p, sizeof p, "%s/train_32x32.mat", dir);
    struct {
        int compress;
        off_t keep;
        const char *want;
    } trunc[] = {{0, 5000, "runs past the end of the file"}, {1, 600, "runs past the end of the file"}, {0, 100, "too short for a MAT-file header"},
                 {0, 131, "offset 128: truncated element tag"}};
    for (size_t i = 0; i < sizeof trunc / sizeof trunc[0]; i++) {
        CHECK(write_svhn(p, 3, lab, trunc[i].compress, NULL, MAT_C_UINT8) == 0);
        CHECK(truncate(p, trunc[i].keep) == 0);
        CHECK(asym_dataset_load_svhn(&d, dir, 1) == ASYM_ERR && empty(&d));
        CHECK(err_has("train_32x32.mat", trunc[i].want));
    }
    /* wrong magic: no endian indicator; a MATLAB 7.3 (HDF5) file */
    uint8_t junk[200];
    memset(junk, 'x', sizeof junk);
    CHECK(put(dir, "train_32x32.mat", junk, sizeof junk) == 0);
    CHECK(asym_dataset_load_svhn(&d, dir, 1) == ASYM_ERR && err_has("offset 126: not a MATLAB 5/7 MAT-file", NULL));
    junk[124] = 0, junk[125] = 2, junk[126] = 'I', junk[127] = 'M';
    CHECK(put(dir, "train_32x32.mat", junk, sizeof junk) == 0);
    CHECK(asym_dataset_load_svhn(&d, dir, 1) == ASYM_ERR && err_has("MATLAB 7.3 (HDF5)", NULL));
    /* wrong shape, wrong class, missing y, count mismatch */
    size_t dims28[4] = {28, 28, 3, 3};
    CHECK(write_svhn(p, 3, lab, 0, dims28, MAT_C_UINT8) == 0);
    CHECK(asym_dataset_load_svhn(&d, dir, 1) == ASYM_ERR && err_has("X is 28x28x3x3, expected 32x32x3xN", NULL));
    CHECK(write_svhn(p, 3, lab, 1, NULL, MAT_C_DOUBLE) == 0);
    CHECK(asym_dataset_load_svhn(&d, dir, 1) == ASYM_ERR && err_has("X is double, expected uint8", NULL));
    CHECK(write_svhn(p, 3, NULL, 0, NULL, MAT_C_UINT8) == 0);
    CHECK(asym_dataset_load_svhn(&d, dir, 1) == ASYM_ERR && err_has("no variable 'y'", NULL));
    size_t dims2[4] = {32, 32, 3, 2};
    CHECK(write_svhn(p, 3, lab, 0, dims2, MAT_C_UINT8) == 0);
    CHECK(asym_dataset_load_svhn(&d, dir, 1) == ASYM_ERR && err_has("y is double with 3 entries, expected N x 1 real labels for the 2 images", NULL));
    /* labels out of range: 0, 11, 2.5 */
    double bad[3][3] = {{1, 0, 2}, {1, 2, 11}, {2.5, 1, 1}};
    const char *want[3] = {"y(2) = 0, expected a label 1..10", "y(3) = 11", "y(1) = 2.5"};
    for (int i = 0; i < 3; i++) {
        CHECK(write_svhn(p, 3, bad[i], i == 1, NULL, MAT_C_UINT8) == 0);
        CHECK(asym_dataset_load_svhn(&d, dir, 1) == ASYM_ERR && empty(&d) && err_has(want[i], NULL));
    }
    /* a header claiming more images than the file holds, including a count
     * whose byte size would overflow */
    int32_t dims[4] = {32, 32, 3, 3};
    uint32_t huge[2] = {0x7fffffffu, 0xffffffffu};
    for (int i = 0; i < 2; i++) {
        CHECK(write_svhn(p, 3, lab, 0, NULL, MAT_C_UINT8) == 0);
        long at = find_bytes(p, dims, sizeof dims);
        CHECK(at > 0 && patch(p, at + 12, &huge[i], 4) == 0);
        CHECK(asym_dataset_load_svhn(&d, dir, 1) == ASYM_ERR && empty(&d));
        CHECK(err_has("train_32x32.mat", NULL));
    }
    /* corrupt compressed data: zlib's checks or the label range catch it */
    for (long at = 200; at < 1100; at += 150) {
        CHECK(write_svhn(p, 3, lab, 1, NULL, MAT_C_UINT8) == 0);
        uint8_t flip = 0x5a;
        CHECK(patch(p, at, &flip, 1) == 0);
        int rc = asym_dataset_load_svhn(&d, dir, 1);
        if (getenv("SHOW_ERR")) printf("    flip at %ld: rc %d [%s]\n", at, rc, rc ? asym_last_error() : "");
        CHECK(rc == ASYM_ERR && empty(&d) && err_has("train_32x32.mat", NULL));
    }
    CHECK(asym_dataset_load_svhn(&d, dir, 0) == ASYM_ERR && err_has("no test_32x32.mat", NULL));
}

/* ---- image folders ---- */

/* A solid w x h image of colour rgb, as PNG (or JPEG when jpg). */
static int write_image(const char *dir, const char *name, int w, int h, const uint8_t rgb[3], int jpg) {
    char path[1300];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    uint8_t *px = malloc((size_t)w * h * 3);
    if (!px) return -1;
    for (int i = 0; i < w * h; i++) memcpy(px + 3 * i, rgb, 3);
    int ok = jpg ? stbi_write_jpg(path, w, h, 3, px, 95) : stbi_write_png(path, w, h, 3, px, w * 3);
    free(px);
    return ok ? 0 : -1;
}

/* Colour of image j of class k: unique per image, so draws can be told apart. */
static void colour(int k, int j, uint8_t rgb[3]) {
    rgb[0] = (uint8_t)(40 * k + 10);
    rgb[1] = (uint8_t)(20 * j + 5);
    rgb[2] = (uint8_t)(255 - 30 * k);
}

/* root/CLASS_k/img_j.png for k < classes, j < per[k]. */
static int write_folder(const char *root, int classes, const int *per, int jpg) {
    for (int k = 0; k < classes; k++) {
        char cd[1200];
        snprintf(cd, sizeof cd, "%s/class_%c", root, 'a' + k);
        mkdir(cd, 0755);
        for (int j = 0; j < per[k]; j++) {
            char name[32];
            uint8_t rgb[3];
            colour(k, j, rgb);
            snprintf(name, sizeof name, "img_%02d.%s", j, jpg ? "jpg" : "png");
            if (write_image(cd, name, 5 + j, 3 + k, rgb, jpg)) return -1;
        }
    }
    return 0;
}

TEST(readers_folder_values) {
    const char *root = dir_of("fold");
    int per[3] = {2, 3, 1};
    CHECK(write_folder(root, 3, per, 0) == 0);
    /* stray files are skipped, not read */
    CHECK(put(dir_of("fold/class_a"), "README.txt", "hello", 5) == 0);
    AsymDataset d;
    CHECK_OK(asym_dataset_load_folder(&d, root, 4, 6, 0, NULL));
    int ok = d.n == 6 && d.c == 3 && d.h == 4 && d.w == 6 && d.classes == 3;
    int want_y[6] = {0, 0, 1, 1, 1, 2}, want_j[6] = {0, 1, 0, 1, 2, 0};
    for (int i = 0; i < 6 && ok; i++) {
        uint8_t rgb[3];
        colour(want_y[i], want_j[i], rgb);
        ok = d.y[i] == want_y[i];
        /* a solid image stays solid through the resize */
        for (int c = 0; c < 3 && ok; c++)
            for (int p = 0; p < 24 && ok; p++) ok = fabsf(d.x[(size_t)i * 72 + c * 24 + p] - rgb[c] / 255.0f) <= 1.01f / 255;
    }
    asym_dataset_free(&d);
    CHECK(ok);
    /* grayscale: stb_image's luma */
    CHECK_OK(asym_dataset_load_folder(&d, root, 2, 2, 1, NULL));
    uint8_t rgb[3];
    colour(1, 2, rgb);
    float luma = (float)((rgb[0] * 77 + rgb[1] * 150 + rgb[2] * 29) >> 8) / 255.0f;
    ok = d.c == 1 && d.n == 6 && fabsf(d.x[4 * 4 + 3] - luma) <= 1.01f / 255;
    asym_dataset_free(&d);
    CHECK(ok);
    /* JPEG */
    const char *jroot = dir_of("foldjpg");
    CHECK(write_folder(jroot, 2, per, 1) == 0);
    CHECK_OK(asym_dataset_load_folder(&d, jroot, 8, 8, 0, NULL));
    colour(1, 1, rgb);
    ok = d.n == 5 && d.y[3] == 1 && fabsf(d.x[3 * 192 + 64 + 10] - rgb[1] / 255.0f) < 6.0f / 255;
    asym_dataset_free(&d);
    CHECK(ok);
}

/* A PNG whose IHDR claims w x h (no pixel data). */
static int write_png_header(const char *dir, const char *name, uint32_t w, uint32_t h) {
    uint8_t b[33 + 12] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R'};
    for (int i = 0; i < 4; i++) {
        b[16 + i] = (uint8_t)(w >> (24 - 8 * i));
        b[20 + i] = (uint8_t)(h >> (24 - 8 * i));
    }
    b[24] = 8, b[25] = 2; /* 8-bit RGB */
    uint32_t crc = (uint32_t)crc32(0, b + 12, 17);
    for (int i = 0; i < 4; i++) b[29 + i] = (uint8_t)(crc >> (24 - 8 * i));
    memcpy(b + 33, "\0\0\0\0IEND\xae\x42\x60\x82", 12);
    return put(dir, name, b, sizeof b);
}

TEST(readers_folder_breakage) {
    AsymDataset d;
    int per[2] = {2, 2};
    /* an image that does not decode: named in the message */
    const char *root = dir_of("fbad1");
    CHECK(write_folder(root, 2, per, 0) == 0);
    CHECK(put(dir_of("fbad1/class_b"), "img_01.png", "not a png at all", 16) == 0);
    CHECK(asym_dataset_load_folder(&d, root, 4, 4, 0, NULL) == ASYM_ERR && empty(&d));
    CHECK(err_has("fbad1/class_b/img_01.png: not a decodable image", NULL));
    /* a truncated PNG: the header reads, the data does not */
    CHECK(write_folder(root, 2, per, 0) == 0);
    char path[1200];
    snprintf(path, sizeof path, "%s/class_a/img_01.png", root);
    CHECK(truncate(path, 40) == 0);
    CHECK(asym_dataset_load_folder(&d, root, 4, 4, 0, NULL) == ASYM_ERR && err_has("class_a/img_01.png: offset 33: PNG ends without its IEND chunk", NULL));
    /* a flipped byte in the pixel data: stb_image would decode it */
    CHECK(write_folder(root, 2, per, 0) == 0);
    uint8_t flip = 0x77;
    CHECK(patch(path, 45, &flip, 1) == 0);
    CHECK(asym_dataset_load_folder(&d, root, 4, 4, 0, NULL) == ASYM_ERR && err_has("img_01.png: offset 33: PNG chunk 'IDAT' fails its CRC", NULL));
    /* a header claiming a huge image (past our limit; past stb_image's;
     * and one whose size overflows int) */
    CHECK(write_folder(root, 2, per, 0) == 0);
    CHECK(write_png_header(dir_of("fbad1/class_a"), "img_01.png", 10000, 10000) == 0);
    CHECK(asym_dataset_load_folder(&d, root, 4, 4, 0, NULL) == ASYM_ERR && empty(&d));
    CHECK(err_has("class_a/img_01.png: image of 10000 x 10000 pixels (at most 67108864 pixels are decoded)", NULL));
    CHECK(write_png_header(dir_of("fbad1/class_a"), "img_01.png", 100000, 100000) == 0);
    CHECK(asym_dataset_load_folder(&d, root, 4, 4, 0, NULL) == ASYM_ERR && err_has("class_a/img_01.png: not a decodable image", NULL));
    CHECK(write_png_header(dir_of("fbad1/class_a"), "img_01.png", 0x7fffffff, 0x7fffffff) == 0);
    CHECK(asym_dataset_load_folder(&d, root, 4, 4, 0, NULL) == ASYM_ERR && err_has("class_a/img_01.png", NULL));
    /* an empty class folder */
    const char *r2 = dir_of("fbad2");
    CHECK(write_folder(r2, 2, per, 0) == 0);
    dir_of("fbad2/class_c");
    CHECK(put(dir_of("fbad2/class_c"), "notes.txt", "x", 1) == 0);
    CHECK(asym_dataset_load_folder(&d, r2, 4, 4, 0, NULL) == ASYM_ERR && err_has("fbad2/class_c: empty class folder", NULL));
    /* no class folders at all; no folder */
    const char *r3 = dir_of("fbad3");
    CHECK(put(r3, "a.png", "x", 1) == 0);
    CHECK(asym_dataset_load_folder(&d, r3, 4, 4, 0, NULL) == ASYM_ERR && err_has("fbad3: no class folders", NULL));
    CHECK(asym_dataset_load_folder(&d, "/nonexistent/x", 4, 4, 0, NULL) == ASYM_ERR && err_has("/nonexistent/x: no such folder", NULL));
    /* a fixed split whose test/ has a class train/ lacks */
    const char *r4 = dir_of("fbad4");
    CHECK(write_folder(dir_of("fbad4/train"), 1, per, 0) == 0);
    CHECK(write_folder(dir_of("fbad4/test"), 2, per, 0) == 0);
    FolderList l;
    CHECK(folder_list(r4, NULL, &l) == ASYM_ERR && err_has("test/class_b: a test class with no training folder", NULL));
}

/* Every image format of a folder, whole and cut short: stb_image would
 * read the missing part as zeros, so each truncation must be refused. */
TEST(readers_image_formats) {
    const char *dir = dir_of("fmts");
    uint8_t px[6 * 5 * 3];
    for (int i = 0; i < (int)sizeof px; i++) px[i] = (uint8_t)(i * 7);
    char path[1300];
    float out[3 * 6 * 5];
    struct {
        const char *name;
        size_t keep; /* bytes kept of the file for the broken copy */
        const char *want;
    } f[] = {{"a.bmp", 60, "image data ends early"}, {"a.tga", 60, "image data ends early"}, {"a.ppm", 40, "image data ends early"},
             {"a.gif", 0, "GIF ends without its trailer"}, {"a.png", 60, "PNG ends without its IEND"}, {"a.jpg", 200, "JPEG image data does not decode (corrupt or truncated?)"}};
    snprintf(path, sizeof path, "%s/a.bmp", dir);
    CHECK(stbi_write_bmp(path, 6, 5, 3, px));
    stbi_write_tga_with_rle = 0;
    snprintf(path, sizeof path, "%s/a.tga", dir);
    CHECK(stbi_write_tga(path, 6, 5, 3, px));
    snprintf(path, sizeof path, "%s/a.png", dir);
    CHECK(stbi_write_png(path, 6, 5, 3, px, 18));
    snprintf(path, sizeof path, "%s/a.jpg", dir);
    CHECK(stbi_write_jpg(path, 6, 5, 3, px, 90));
    uint8_t ppm[15 + 90];
    memcpy(ppm, "P6\n# c\n6 5\n255\n", 15);
    memcpy(ppm + 15, px, 90);
    CHECK(put(dir, "a.ppm", ppm, sizeof ppm) == 0);
    /* a 1 x 1 GIF with a two-colour table, pixel 1 (white) */
    static const uint8_t gif[] = {'G', 'I', 'F', '8', '9', 'a', 1, 0, 1, 0, 0x80, 0, 0, 0, 0, 0, 255, 255, 255,
                                  ',', 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x4c, 0x01, 0, ';'};
    CHECK(put(dir, "a.gif", gif, sizeof gif) == 0);
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        uint8_t *buf;
        size_t len;
        snprintf(path, sizeof path, "%s/%s", dir, f[i].name);
        CHECK(io_read_file(path, &buf, &len, 1 << 20, 0) == 0);
        int gif1 = !strcmp(f[i].name, "a.gif");
        int rc = folder_decode_image(f[i].name, buf, len, gif1 ? 1 : 5, gif1 ? 1 : 6, 0, out);
        int exact = rc == 0 && (gif1 ? out[0] == 1.0f : !strcmp(f[i].name, "a.jpg") || out[3 * 6 * 5 / 3 + 7] == px[7 * 3 + 1] / 255.0f);
        int rc2 = folder_decode_image(f[i].name, buf, f[i].keep ? f[i].keep : len - 1, 5, 6, 0, out);
        free(buf);
        CHECK_MSG(exact, "%s: rc %d %s", f[i].name, rc, rc ? asym_last_error() : "wrong values");
        CHECK_MSG(rc2 == ASYM_ERR && err_has(f[i].name, f[i].want), "%s cut short: rc %d", f[i].name, rc2);
    }
    /* formats stb_image knows but a folder does not take */
    CHECK(folder_decode_image("x.png", (const uint8_t *)"8BPS\0\1\0\0\0\0\0\0", 12, 2, 2, 0, out) == ASYM_ERR &&
          err_has("x.png: a PSD, PIC or HDR file", NULL));
    /* the 136-byte BMP of 6 x 3276805 pixels fuzzing found (a slow decode) */
    char bp[1200];
    snprintf(bp, sizeof bp, "%s/fuzz/corpus/image/bmp-tall-136-bytes.bin", test_srcdir());
    uint8_t *buf;
    size_t len;
    CHECK(io_read_file(bp, &buf, &len, 1 << 20, 0) == 0);
    int rc = folder_decode_image("tall.bmp", buf + 1, len - 1, 8, 8, 0, out);
    free(buf);
    CHECK(rc == ASYM_ERR && err_has("tall.bmp: a file of 135 bytes cannot hold an image of 6 x 3276805 pixels", NULL));
}

/* A config with a data section (text after "data:\n"); an MLP fits any
 * input and class count. */
static int load_experiment(const char *data, AsymExperiment *ex) {
    char text[4096], path[1200];
    snprintf(text, sizeof text, "seed: 5\ndata:\n%smodel:\n  arch: mlp\n  hidden: [4]\n", data);
    snprintf(path, sizeof path, "%s/exp.yaml", test_tmpdir());
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fputs(text, f);
    fclose(f);
    AsymConfig *cfg;
    if (asym_config_load(&cfg, path)) return -1;
    int rc = asym_experiment_from_config(ex, cfg);
    asym_config_free(cfg);
    return rc;
}

TEST(readers_folder_sampling) {
    const char *root = dir_of("fpool");
    int per[4] = {5, 5, 4, 6};
    CHECK(write_folder(root, 4, per, 0) == 0);
    AsymDataSpec s;
    memset(&s, 0, sizeof s);
    snprintf(s.format, sizeof s.format, "folder");
    snprintf(s.path, sizeof s.path, "%s", root);
    s.opt.size_h = s.opt.size_w = 2;
    s.opt.train_per_class = 2;
    s.opt.test_per_class = 1;
    CHECK_OK(asym_data_spec_resolve(&s));
    CHECK(s.c == 3 && s.h == 2 && s.w == 2 && s.classes == 4);
    AsymDataset tr, va, te, tr2, va2, te2;
    CHECK_OK(asym_data_load(&s, 1, &tr, &va, &te));
    int ok = tr.n == 8 && te.n == 4 && va.n == 0 && tr.classes == 4;
    /* no image in both sets: colours are unique (green carries j) */
    for (int i = 0; i < tr.n && ok; i++)
        for (int j = 0; j < te.n && ok; j++) ok = !(tr.y[i] == te.y[j] && tr.x[(size_t)i * 12 + 4] == te.x[(size_t)j * 12 + 4]);
    int counts[4] = {0};
    for (int i = 0; i < tr.n; i++) counts[tr.y[i]]++;
    ok = ok && counts[0] == 2 && counts[1] == 2 && counts[2] == 2 && counts[3] == 2;
    /* the same seed draws the same sets; another seed others */
    CHECK_OK(asym_data_load(&s, 1, &tr2, &va2, &te2));
    ok = ok && tr2.n == tr.n && !memcmp(tr.x, tr2.x, (size_t)tr.n * 12 * sizeof(float));
    asym_dataset_free(&tr2);
    asym_dataset_free(&te2);
    int differs = 0;
    for (uint64_t seed = 2; seed < 6 && !differs; seed++) {
        CHECK_OK(asym_data_load(&s, seed, &tr2, &va2, &te2));
        differs = memcmp(tr.x, tr2.x, (size_t)tr.n * 12 * sizeof(float)) != 0;
        asym_dataset_free(&tr2);
        asym_dataset_free(&te2);
    }
    asym_dataset_free(&tr);
    asym_dataset_free(&te);
    CHECK(ok && differs);
    /* a subset of K = 2 classes, relabelled 0..1; test takes the rest */
    s.opt.classes_subset = 2;
    s.opt.test_per_class = 0;
    CHECK_OK(asym_data_spec_resolve(&s));
    CHECK(s.classes == 2);
    CHECK_OK(asym_data_load(&s, 3, &tr, &va, &te));
    ok = tr.n == 4 && tr.classes == 2 && te.classes == 2 && te.n >= 2 * 2;
    for (int i = 0; i < te.n; i++) ok = ok && te.y[i] >= 0 && te.y[i] < 2;
    asym_dataset_free(&tr);
    asym_dataset_free(&te);
    CHECK(ok);
    char **names;
    int n;
    CHECK_OK(asym_data_class_names(&s, 3, &names, &n));
    ok = n == 2 && !strncmp(names[0], "class_", 6) && strcmp(names[0], names[1]) < 0;
    asym_data_names_free(names, n);
    CHECK(ok);
    /* too few images for the draw: the class is named */
    s.opt.classes_subset = 0;
    s.opt.train_per_class = 4;
    s.opt.test_per_class = 1;
    CHECK(asym_data_load(&s, 1, &tr, &va, &te) == ASYM_ERR && empty(&tr) && empty(&te));
    CHECK(err_has("class 'class_c' has 4 images; data.train_per_class = 4 leaves none for testing", NULL));
    /* excluded classes are not classes */
    snprintf(s.opt.exclude, sizeof s.opt.exclude, "class_c\nclass_a\n");
    CHECK_OK(asym_data_spec_resolve(&s));
    CHECK(s.classes == 2);
    /* a fixed split: train/ and test/ are used as they are */
    const char *fx = dir_of("ffixed");
    CHECK(write_folder(dir_of("ffixed/train"), 3, per, 0) == 0);
    CHECK(write_folder(dir_of("ffixed/test"), 2, per + 2, 0) == 0);
    memset(&s.opt, 0, sizeof s.opt);
    s.opt.size_h = s.opt.size_w = 3;
    snprintf(s.path, sizeof s.path, "%s", fx);
    CHECK_OK(asym_data_spec_resolve(&s));
    CHECK_OK(asym_data_load(&s, 1, &tr, &va, &te));
    ok = tr.n == 14 && te.n == 10 && s.classes == 3 && te.y[0] == 0 && te.y[9] == 1;
    asym_dataset_free(&tr);
    asym_dataset_free(&te);
    CHECK(ok);
}

TEST(readers_folder_cache) {
    const char *root = dir_of("fcache"), *cache = dir_of("fcache_store/sub");
    int per[2] = {3, 2};
    CHECK(write_folder(root, 2, per, 0) == 0);
    AsymDataset a, b;
    CHECK_OK(asym_dataset_load_folder(&a, root, 3, 3, 0, cache));
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "ls %s/folder-*-3x3x3.bin >/dev/null 2>&1", cache);
    CHECK(system(cmd) == 0);
    /* Replace an image by garbage of the same size and time stamp: the
     * cache is still valid by its key, so it is what is read. */
    char img[1200];
    snprintf(img, sizeof img, "%s/class_a/img_01.png", root);
    struct stat st;
    CHECK(stat(img, &st) == 0);
    char *junk = calloc(1, (size_t)st.st_size);
    CHECK(junk != NULL);
    int wrote = put(dir_of("fcache/class_a"), "img_01.png", junk, (size_t)st.st_size);
    free(junk);
    struct timespec ts[2] = {st.st_atim, st.st_mtim};
    CHECK(wrote == 0 && utimensat(AT_FDCWD, img, ts, 0) == 0);
    CHECK_OK(asym_dataset_load_folder(&b, root, 3, 3, 0, cache));
    int same = a.n == b.n && !memcmp(a.x, b.x, (size_t)a.n * 27 * sizeof(float)) && !memcmp(a.y, b.y, (size_t)a.n * 4);
    asym_dataset_free(&b);
    CHECK(same);
    /* A corrupt cache is never trusted: rebuilt, and then the garbage image is found. */
    snprintf(cmd, sizeof cmd, "for f in %s/folder-*-3x3x3.bin; do printf 'Z' | dd of=$f bs=1 seek=40 conv=notrunc 2>/dev/null; done", cache);
    CHECK(system(cmd) == 0);
    CHECK(asym_dataset_load_folder(&b, root, 3, 3, 0, cache) == ASYM_ERR && err_has("class_a/img_01.png", NULL));
    /* Restored image, a new time stamp: a new key, rebuilt, same values. */
    uint8_t rgb[3];
    colour(0, 1, rgb);
    CHECK(write_image(dir_of("fcache/class_a"), "img_01.png", 6, 3, rgb, 0) == 0);
    CHECK_OK(asym_dataset_load_folder(&b, root, 3, 3, 0, cache));
    same = a.n == b.n && !memcmp(a.x, b.x, (size_t)a.n * 27 * sizeof(float));
    asym_dataset_free(&a);
    asym_dataset_free(&b);
    CHECK(same);
    /* The cache file reader itself refuses any mismatch. */
    uint8_t *pix;
    CHECK(folder_cache_read("/nonexistent", 1, 1, 1, 1, 1, &pix) == ASYM_ERR);
    const char *cd = dir_of("fcache_bad");
    CHECK(put(cd, "c.bin", "ASYMIMG1", 8) == 0);
    char cp[1200];
    snprintf(cp, sizeof cp, "%s/c.bin", cd);
    CHECK(folder_cache_read(cp, 1, 1, 1, 1, 1, &pix) == ASYM_ERR && err_has("expected 37 (stale or truncated)", NULL));
    CHECK(folder_cache_read(cp, 1, 0x7fffffff, 4096, 4096, 4096, &pix) == ASYM_ERR && pix == NULL);
}

/* ---- .npy ---- */

/* A .npy file with any descr and raw data. */
static int write_npy(const char *dir, const char *name, const char *descr, const char *shape, const void *data, size_t bytes) {
    char hdr[256];
    int h = snprintf(hdr, sizeof hdr, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape);
    int total = (10 + h + 1 + 63) / 64 * 64;
    memset(hdr + h, ' ', (size_t)(total - 10 - h));
    hdr[total - 10 - 1] = '\n';
    uint8_t buf[4096];
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (uint8_t)((total - 10) & 0xff);
    buf[9] = (uint8_t)((total - 10) >> 8);
    memcpy(buf + 10, hdr, (size_t)(total - 10));
    if ((size_t)total + bytes > sizeof buf) return -1;
    if (bytes) memcpy(buf + total, data, bytes);
    return put(dir, name, buf, (size_t)total + bytes);
}

TEST(readers_npy_values) {
    const char *dir = dir_of("npy");
    double x[4][3] = {{1, 2, 3}, {4, 5, 6}, {-1, 0.5, 1e3}, {7, 8, 9}};
    int64_t y[4] = {0, 2, 1, 2};
    float tx[2][3] = {{0.25f, 1, 2}, {3, 4, 5}};
    uint8_t ty[2] = {3, 0};
    CHECK(write_npy(dir, "train_x.npy", "<f8", "(4, 3)", x, sizeof x) == 0);
    CHECK(write_npy(dir, "train_y.npy", "<i8", "(4,)", y, sizeof y) == 0);
    CHECK(write_npy(dir, "test_x.npy", "<f4", "(2, 3)", tx, sizeof tx) == 0);
    CHECK(write_npy(dir, "test_y.npy", "|u1", "(2, 1)", ty, sizeof ty) == 0);
    char fmt[16];
    CHECK_OK(asym_data_detect(dir, fmt, sizeof fmt));
    CHECK(!strcmp(fmt, "npy"));
    AsymDataSpec s;
    memset(&s, 0, sizeof s);
    snprintf(s.format, sizeof s.format, "npy");
    snprintf(s.path, sizeof s.path, "%s", dir);
    CHECK_OK(asym_data_spec_resolve(&s));
    CHECK(s.c == 3 && s.h == 1 && s.w == 1 && s.classes == 4);
    AsymDataset tr, te;
    int pooled;
    CHECK_OK(asym_data_load_splits(&s, &tr, &te, &pooled));
    int ok = !pooled && tr.n == 4 && tr.c == 3 && tr.classes == 4 && te.classes == 4 && tr.x[8] == 1000.0f && tr.x[7] == 0.5f &&
             tr.y[1] == 2 && te.n == 2 && te.x[0] == 0.25f && te.y[0] == 3;
    asym_dataset_free(&tr);
    asym_dataset_free(&te);
    CHECK(ok);
    /* uint8 images (N, H, W) are pixels: scaled to [0, 1]; big-endian floats */
    const char *d2 = dir_of("npyimg");
    uint8_t img[2][2][3] = {{{0, 255, 51}, {1, 2, 3}}, {{4, 5, 6}, {7, 8, 9}}};
    int32_t lab[2] = {1, 0};
    CHECK(write_npy(d2, "x.npy", "|u1", "(2, 2, 3)", img, sizeof img) == 0);
    CHECK(write_npy(d2, "y.npy", "<i4", "(2,)", lab, sizeof lab) == 0);
    char xp[1200], yp[1200];
    snprintf(xp, sizeof xp, "%s/x.npy", d2);
    snprintf(yp, sizeof yp, "%s/y.npy", d2);
    CHECK_OK(asym_dataset_load_npy(&tr, xp, yp));
    ok = tr.n == 2 && tr.c == 1 && tr.h == 2 && tr.w == 3 && tr.x[1] == 1.0f && tr.x[2] == 0.2f && tr.y[0] == 1;
    asym_dataset_free(&tr);
    CHECK(ok);
    uint8_t be[4] = {0x3f, 0xc0, 0, 0}; /* 1.5f big-endian */
    CHECK(write_npy(d2, "x.npy", ">f4", "(1, 1)", be, 4) == 0);
    CHECK(write_npy(d2, "y.npy", "<i4", "(1,)", lab, 4) == 0);
    CHECK_OK(asym_dataset_load_npy(&tr, xp, yp));
    ok = tr.n == 1 && tr.c == 1 && tr.x[0] == 1.5f;
    asym_dataset_free(&tr);
    CHECK(ok);
}

/* Bilinear with pixel centres aligned and edges clamped. Enlarging matches
 * PIL's Image.resize(BILINEAR) (what BioTorch's 28 -> 32 goes through):
 * PIL's output for a 3x3 image to 4x4 is below. Reducing widens the filter
 * (antialiasing) as PIL does; at the border stb counts the edge pixel again
 * where PIL renormalizes. Feature vectors (npy) are not resized. */
TEST(readers_resize) {
    float row[2] = {0, 1}, flat[9], four[8] = {1, 3, 5, 7, 2, 4, 6, 8};
    static const float img[9] = {0, 1, 2, 3, 4, 5, 6, 7, 9};
    static const float pil[16] = {0, 0.625f, 1.375f, 2, 1.875f, 2.5f, 3.25f, 3.875f, 4.125f, 4.75f, 5.640625f, 6.5f, 6, 6.625f, 7.75f, 9};
    AsymDataset e = {.n = 1, .c = 1, .h = 3, .w = 3, .classes = 1, .x = asym_falloc(9)};
    CHECK(e.x != NULL);
    memcpy(e.x, img, sizeof img);
    CHECK_OK(asym_dataset_resize(&e, 4, 4));
    double worst = 0;
    for (int i = 0; i < 16; i++) worst = fmax(worst, fabs(e.x[i] - pil[i]));
    free(e.x);
    CHECK_MSG(worst < 1e-5, "largest difference from PIL %g", worst);
    AsymDataset d = {.n = 1, .c = 1, .h = 1, .w = 2, .classes = 1, .x = asym_falloc(2)};
    CHECK(d.x != NULL);
    memcpy(d.x, row, sizeof row);
    CHECK_OK(asym_dataset_resize(&d, 1, 4));
    CHECK(d.h == 1 && d.w == 4);
    CHECK_MSG(fabsf(d.x[0]) < 1e-6f && fabsf(d.x[1] - 0.25f) < 1e-6f && fabsf(d.x[2] - 0.75f) < 1e-6f && fabsf(d.x[3] - 1) < 1e-6f,
              "got %g %g %g %g", d.x[0], d.x[1], d.x[2], d.x[3]);
    free(d.x);
    for (int i = 0; i < 9; i++) flat[i] = 0.3f;
    d = (AsymDataset){.n = 1, .c = 1, .h = 3, .w = 3, .classes = 1, .x = asym_falloc(9)};
    memcpy(d.x, flat, sizeof flat);
    CHECK_OK(asym_dataset_resize(&d, 5, 7));
    int ok = d.h == 5 && d.w == 7;
    for (int i = 0; i < 35; i++) ok = ok && fabsf(d.x[i] - 0.3f) < 1e-6f;
    free(d.x);
    CHECK(ok);
    /* two channels of 1 x 4, halved: triangle weights 3/8, 3/8, 1/8, 1/8
     * over the pair and its neighbours (the edge pixel counted again),
     * channel by channel */
    d = (AsymDataset){.n = 1, .c = 2, .h = 1, .w = 4, .classes = 1, .x = asym_falloc(8)};
    memcpy(d.x, four, sizeof four);
    CHECK_OK(asym_dataset_resize(&d, 1, 2));
    CHECK_MSG(fabsf(d.x[0] - 2.25f) < 1e-5f && fabsf(d.x[1] - 5.75f) < 1e-5f && fabsf(d.x[2] - 3.25f) < 1e-5f && fabsf(d.x[3] - 6.75f) < 1e-5f,
              "got %g %g %g %g", d.x[0], d.x[1], d.x[2], d.x[3]);
    CHECK(asym_dataset_resize(&d, 0, 2) == ASYM_ERR && err_has("resize: size 0 x 2", NULL));
    free(d.x);
    const char *dir = dir_of("npysize");
    double x[2][3] = {{1, 2, 3}, {4, 5, 6}};
    int64_t y[2] = {0, 1};
    CHECK(write_npy(dir, "train_x.npy", "<f8", "(2, 3)", x, sizeof x) == 0 && write_npy(dir, "train_y.npy", "<i8", "(2,)", y, sizeof y) == 0 &&
          write_npy(dir, "test_x.npy", "<f8", "(2, 3)", x, sizeof x) == 0 && write_npy(dir, "test_y.npy", "<i8", "(2,)", y, sizeof y) == 0);
    char data[512];
    AsymExperiment ex;
    snprintf(data, sizeof data, "  format: npy\n  path: %s\n  size: 4\n", dir);
    CHECK(load_experiment(data, &ex) == ASYM_ERR && err_has("data.size resizes images; npy holds feature vectors", NULL));
}

TEST(readers_npy_breakage) {
    const char *dir = dir_of("npybad");
    char xp[1200], yp[1200];
    snprintf(xp, sizeof xp, "%s/x.npy", dir);
    snprintf(yp, sizeof yp, "%s/y.npy", dir);
    float x[3][2] = {{1, 2}, {3, 4}, {5, 6}};
    AsymDataset d;
    struct {
        const char *ydescr, *yshape;
        double y[3];
        const char *want;
    } bad[] = {
        {"<f8", "(3,)", {0, -1, 2}, "y.npy: entry 1: label -1 is not a class index"},
        {"<f8", "(3,)", {0, 1.5, 2}, "entry 1: label 1.5 is not a class index"},
        {"<f8", "(3,)", {0, 1e300, 2}, "entry 1: label"},
        {"<f8", "(2,)", {0, 1}, "y.npy: 2 labels for 3 items"},
        {"<f8", "(1, 3)", {0, 1, 2}, "labels must have shape (N,) or (N, 1)"},
    };
    CHECK(write_npy(dir, "x.npy", "<f4", "(3, 2)", x, sizeof x) == 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t n = strcmp(bad[i].yshape, "(2,)") ? 3 : 2;
        CHECK(write_npy(dir, "y.npy", bad[i].ydescr, bad[i].yshape, bad[i].y, n * 8) == 0);
        CHECK(asym_dataset_load_npy(&d, xp, yp) == ASYM_ERR && empty(&d) && err_has(bad[i].want, NULL));
    }
    int32_t y[3] = {0, 1, 0};
    CHECK(write_npy(dir, "y.npy", "<i4", "(3,)", y, sizeof y) == 0);
    x[2][1] = NAN;
    CHECK(write_npy(dir, "x.npy", "<f4", "(3, 2)", x, sizeof x) == 0);
    CHECK(asym_dataset_load_npy(&d, xp, yp) == ASYM_ERR && err_has("x.npy: element 5 (item 2) is NaN", NULL));
    CHECK(write_npy(dir, "x.npy", "<f4", "(6,)", x, sizeof x) == 0);
    CHECK(asym_dataset_load_npy(&d, xp, yp) == ASYM_ERR && err_has("1 dimensions; expected features (N, F)", NULL));
    CHECK(write_npy(dir, "x.npy", "<U4", "(3, 2)", x, 0) == 0);
    CHECK(asym_dataset_load_npy(&d, xp, yp) == ASYM_ERR && err_has("dtype '<U4' not supported", NULL));
    /* a shape claiming more than the file holds, and one overflowing */
    CHECK(write_npy(dir, "x.npy", "<f4", "(3000, 2)", x, sizeof x) == 0);
    CHECK(asym_dataset_load_npy(&d, xp, yp) == ASYM_ERR && err_has("shape needs 24000 bytes of data but the file holds 24 (truncated?)", NULL));
    CHECK(write_npy(dir, "x.npy", "<f8", "(3, 4611686018427387904)", x, sizeof x) == 0);
    CHECK(asym_dataset_load_npy(&d, xp, yp) == ASYM_ERR && err_has("shape too large", NULL));
    CHECK(write_npy(dir, "x.npy", "<f4", "(0, 2)", x, 0) == 0);
    CHECK(asym_dataset_load_npy(&d, xp, yp) == ASYM_ERR && err_has("no items", NULL));
    /* wrong magic and truncation come from the shared .npy reader */
    CHECK(put(dir, "x.npy", "PK\x03\x04 not npy", 12) == 0);
    CHECK(asym_dataset_load_npy(&d, xp, yp) == ASYM_ERR && err_has("x.npy: offset 0: not a .npy file (bad magic)", NULL));
    /* a folder without the files */
    int pooled;
    CHECK(npy_layout(dir_of("npyempty"), &pooled, xp, sizeof xp) == ASYM_ERR && err_has("no train_x.npy or x.npy", NULL));
}

/* ---- sampling, config, pipeline ---- */

TEST(readers_sampling_rules) {
    /* labels of a fixed split: 3 classes */
    int32_t y1[9] = {0, 0, 0, 1, 1, 1, 2, 2, 2}, y2[5] = {0, 1, 2, 2, 2};
    uint8_t m1[9], m2[5];
    int map[3], kept;
    AsymDataOptions o;
    memset(&o, 0, sizeof o);
    o.train_per_class = 2;
    o.test_per_class = 2;
    CHECK_OK(data_sample("t", &o, 7, 3, NULL, y1, 9, y2, 5, m1, m2, map, &kept));
    int n1 = 0, n2 = 0, per[3] = {0};
    for (int i = 0; i < 9; i++) n1 += m1[i], per[y1[i]] += m1[i];
    for (int i = 0; i < 5; i++) n2 += m2[i];
    CHECK(kept == 3 && n1 == 6 && per[0] == 2 && per[2] == 2 && n2 == 4 && m2[0] && m2[1]);
    /* fewer training images than asked: named */
    o.train_per_class = 4;
    CHECK(data_sample("t", &o, 7, 3, NULL, y1, 9, y2, 5, m1, m2, map, &kept) == ASYM_ERR &&
          err_has("t: class '0' has 3 training images, data.train_per_class asks for 4", NULL));
    /* a pool: no overlap, N then M (or the rest) */
    o.train_per_class = 1;
    o.test_per_class = 0;
    CHECK_OK(data_sample("t", &o, 7, 3, NULL, y1, 9, NULL, 0, m1, m2, map, &kept));
    int tr = 0, te = 0;
    for (int i = 0; i < 9; i++) tr += m1[i] == 1, te += m1[i] == 2;
    CHECK(tr == 3 && te == 6);
    o.train_per_class = 0;
    o.test_per_class = 1;
    CHECK_OK(data_sample("t", &o, 7, 3, NULL, y1, 9, NULL, 0, m1, m2, map, &kept));
    tr = te = 0;
    for (int i = 0; i < 9; i++) tr += m1[i] == 1, te += m1[i] == 2;
    CHECK(tr == 6 && te == 3);
    o.test_per_class = 0;
    CHECK(data_sample("t", &o, 7, 3, NULL, y1, 9, NULL, 0, m1, m2, map, &kept) == ASYM_ERR && err_has("no fixed train/test split", NULL));
    /* K classes, relabelled in order; independent of N */
    o.classes_subset = 2;
    o.train_per_class = 1;
    CHECK_OK(data_sample("t", &o, 9, 3, NULL, y1, 9, y2, 5, m1, m2, map, &kept));
    int map2[3];
    o.train_per_class = 3;
    CHECK_OK(data_sample("t", &o, 9, 3, NULL, y1, 9, y2, 5, m1, m2, map2, &kept));
    int nk = 0, last = -1, inorder = 1;
    for (int c = 0; c < 3; c++)
        if (map[c] >= 0) {
            inorder &= map[c] == last + 1;
            last = map[c];
            nk++;
        }
    CHECK(kept == 2 && nk == 2 && inorder && !memcmp(map, map2, sizeof map));
    o.classes_subset = 4;
    CHECK(data_sample("t", &o, 9, 3, NULL, y1, 9, y2, 5, m1, m2, map, &kept) == ASYM_ERR && err_has("classes_subset is 4", NULL));
    /* labels out of range are refused */
    o.classes_subset = 0;
    int32_t yb[2] = {0, 3};
    CHECK(data_sample("t", &o, 9, 3, NULL, yb, 2, y2, 5, m1, m2, map, &kept) == ASYM_ERR && err_has("training image 1 has label 3", NULL));
}

TEST(readers_config_keys) {
    const char *c10 = dir_of("cfgc10");
    CHECK(write_cifar10(c10) == 0);
    char data[2048];
    AsymExperiment ex;
    /* cifar10: 3x32x32, 10 classes; padding on top; K classes */
    snprintf(data, sizeof data, "  format: cifar10\n  path: %s\n  pad: 4\n  classes_subset: 4\n  train_per_class: 1\n  grayscale: true\n", c10);
    CHECK_OK(load_experiment(data, &ex));
    int ok = ex.data.c == 1 && ex.data.h == 40 && ex.data.w == 40 && ex.data.classes == 4 && ex.data.opt.train_per_class == 1 &&
             ex.net.classes == 4;
    AsymDataset tr, va, te;
    CHECK_OK(asym_data_load(&ex.data, ex.seed, &tr, &va, &te));
    ok = ok && tr.n == 4 && tr.c == 1 && tr.h == 40 && tr.classes == 4;
    /* normalized from the training statistics */
    float m, sd;
    asym_dataset_stats(&tr, &m, &sd);
    ok = ok && fabsf(m) < 1e-4f && fabsf(sd - 1) < 1e-3f;
    asym_dataset_free(&tr);
    asym_dataset_free(&te);
    asym_experiment_free(&ex);
    CHECK(ok);
    /* data.size resizes a fixed-size format before padding */
    snprintf(data, sizeof data, "  format: cifar10\n  path: %s\n  size: [8, 12]\n  pad: 1\n", c10);
    CHECK_OK(load_experiment(data, &ex));
    ok = ex.data.c == 3 && ex.data.h == 10 && ex.data.w == 14 && ex.data.opt.resize;
    CHECK_OK(asym_data_load(&ex.data, ex.seed, &tr, &va, &te));
    ok = ok && tr.h == 10 && tr.w == 14 && te.h == 10 && te.w == 14 && tr.n == 10 && te.n == 3;
    asym_dataset_free(&tr);
    asym_dataset_free(&te);
    asym_experiment_free(&ex);
    CHECK(ok);
    /* auto detection */
    snprintf(data, sizeof data, "  format: auto\n  path: %s\n", c10);
    CHECK_OK(load_experiment(data, &ex));
    ok = !strcmp(ex.data.format, "cifar10") && ex.data.c == 3 && ex.data.classes == 10;
    asym_experiment_free(&ex);
    CHECK(ok);
    struct {
        const char *data, *want;
    } bad[] = {
        {"  format: cifar10\n", "format cifar10 needs data.path"},
        {"  format: cifar10\n  path: %s\n  label: coarse\n", "key 'data.label': applies to format cifar100 only"},
        {"  format: cifar10\n  path: %s\n  classes_subset: 11\n", "data.classes_subset is 11 but the data set has 10 classes"},
        {"  format: cifar10\n  path: %s\n  classes_subset: 1\n", "needs at least 2 classes"},
        {"  format: cifar10\n  path: %s\n  mean: [0.5]\n  std: [0.2]\n", "the images have 3 channels, got 1 means"},
        {"  format: folder\n  path: %s\n", "cannot tell|no class folders"},
        {"  format: auto\n  path: %s/none\n", "none: no such file or folder"},
        {"  format: jpeg\n  path: %s\n", "expected one of idx, random, cifar10, cifar100, stl10, svhn, folder, imagenet, npy, auto, got 'jpeg'"},
        {"  format: cifar10\n  path: %s\n  cache: [1]\n", "key 'data.cache': expected true, false or a folder"},
        {"  format: cifar10\n  path: %s\n  sample_seed: -1\n", "data.sample_seed"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(data, sizeof data, bad[i].data, c10, c10);
        int rc = load_experiment(data, &ex);
        const char *e = asym_last_error(), *alt = strchr(bad[i].want, '|');
        char first[128];
        snprintf(first, sizeof first, "%.*s", alt ? (int)(alt - bad[i].want) : (int)strlen(bad[i].want), bad[i].want);
        CHECK_MSG(rc == ASYM_ERR && (strstr(e, first) || (alt && strstr(e, alt + 1))) && strstr(e, "exp.yaml"), "case %zu: '%s'", i, e);
    }
    /* a pooled folder needs test_per_class */
    const char *pool = dir_of("cfgpool");
    int per[2] = {3, 3};
    CHECK(write_folder(pool, 2, per, 0) == 0);
    snprintf(data, sizeof data, "  format: folder\n  path: %s\n", pool);
    CHECK(load_experiment(data, &ex) == ASYM_ERR && err_has("has no train/test split: set data.test_per_class", NULL));
    snprintf(data, sizeof data, "  format: folder\n  path: %s\n  test_per_class: 1\n  size: 6\n  cache: false\n  exclude: [class_z]\n", pool);
    CHECK_OK(load_experiment(data, &ex));
    ok = ex.data.c == 3 && ex.data.h == 6 && ex.data.w == 6 && ex.data.classes == 2 && !ex.data.opt.cache[0];
    asym_experiment_free(&ex);
    CHECK(ok);
}

TEST(readers_detect_formats) {
    char f[16];
    /* one folder per detectable format, holding one file that marks it */
    static const struct {
        const char *dir, *file, *format;
    } marks[] = {
        {"det/idx", "t10k-images-idx3-ubyte.gz", "idx"}, {"det/c10", "test_batch.bin", "cifar10"},
        {"det/c100", "train.bin", "cifar100"},           {"det/stl", "train_X.bin", "stl10"},
        {"det/svhn", "test_32x32.mat", "svhn"},          {"det/npy", "x.npy", "npy"},
    };
    for (size_t i = 0; i < sizeof marks / sizeof marks[0]; i++) {
        CHECK(put(dir_of("%s", marks[i].dir), marks[i].file, "", 0) == 0);
        CHECK_OK(asym_data_detect(dir_of("%s", marks[i].dir), f, sizeof f));
        CHECK_MSG(!strcmp(f, marks[i].format), "%s: detected %s", marks[i].dir, f);
    }
    char mat[1200];
    snprintf(mat, sizeof mat, "%s/test_32x32.mat", dir_of("det/svhn"));
    CHECK_OK(asym_data_detect(mat, f, sizeof f));
    CHECK(!strcmp(f, "svhn"));
    const char *folder = dir_of("det/folder");
    int per[2] = {1, 1};
    CHECK(write_folder(folder, 2, per, 0) == 0);
    CHECK_OK(asym_data_detect(folder, f, sizeof f));
    CHECK(!strcmp(f, "folder"));
    /* "auto" becomes the format detected, and its shape follows */
    AsymDataSpec s;
    memset(&s, 0, sizeof s);
    snprintf(s.format, sizeof s.format, "auto");
    snprintf(s.path, sizeof s.path, "%s", folder);
    CHECK_OK(asym_data_spec_resolve(&s));
    CHECK(!strcmp(s.format, "folder") && s.c == 3 && s.h == 32 && s.classes == 2);
    CHECK(asym_data_detect(dir_of("det/empty"), f, sizeof f) == ASYM_ERR && err_has("cannot tell the format", NULL));
    CHECK(asym_data_detect("/nonexistent", f, sizeof f) == ASYM_ERR && err_has("/nonexistent: no such file", NULL));
    /* an unknown format is refused, naming the known ones */
    snprintf(s.format, sizeof s.format, "jpeg");
    CHECK(asym_data_spec_resolve(&s) == ASYM_ERR &&
          err_has("data format 'jpeg' unknown (known: idx, random, cifar10, cifar100, stl10, svhn, folder, imagenet, npy, and auto)", NULL));
    AsymDataset tr, te;
    int pooled;
    CHECK(asym_data_load_splits(&s, &tr, &te, &pooled) == ASYM_ERR && err_has("data format 'jpeg' unknown (known: idx,", NULL) &&
          empty(&tr) && empty(&te));
}

/* ---- the command ---- */

static int out_has(const char *s) {
    if (strstr(test_out, s)) return 1;
    printf("    output lacks '%s':\n%s\n", s, test_out);
    return 0;
}

TEST(readers_cli_data_info) {
    const char *c10 = dir_of("clic10");
    CHECK(write_cifar10(c10) == 0);
    CHECK(test_cli("data info %s", c10) == 0);
    CHECK(out_has("format: cifar10") && out_has("image size: 3 x 32 x 32") && out_has("classes: 10") && out_has("train: 10 images") &&
          out_has("test: 3 images") && out_has("airplane 1, automobile 1") && out_has("  mean: 0.") && out_has("  std:  0."));
    /* a folder: names and counts; pool */
    const char *pool = dir_of("clipool");
    int per[2] = {3, 1};
    CHECK(write_folder(pool, 2, per, 0) == 0);
    CHECK(test_cli("data info %s --size 4,5 --grayscale", pool) == 0);
    CHECK(out_has("format: folder") && out_has("image size: 1 x 4 x 5") && out_has("all (no fixed train/test split): 4 images") &&
          out_has("class_a 3, class_b 1"));
    /* an experiment file: the data section applied */
    char cfg[1200];
    snprintf(cfg, sizeof cfg, "%s/info.yaml", test_tmpdir());
    FILE *f = fopen(cfg, "w");
    CHECK(f != NULL);
    fprintf(f, "data:\n  format: cifar10\n  path: %s\n  train_per_class: 1\n  classes_subset: 3\nmodel: {arch: mlp, hidden: [4]}\n", c10);
    fclose(f);
    CHECK(test_cli("data info %s --set data.val_size=1", cfg) == 0);
    CHECK(out_has("classes: 3") && out_has("train: 2 images") && out_has("validation: 1 images"));
    /* broken data: exit 1, one line naming the file */
    CHECK(cut(c10, "data_batch_3.bin", 100) == 0);
    CHECK(test_cli("data info %s", c10) == 1 && out_has("data_batch_3.bin: 100 bytes is not a whole number"));
    CHECK(test_cli("data info /nonexistent/x") == 1 && out_has("/nonexistent/x: no such file or folder"));
    /* usage */
    CHECK(test_cli("data") == 2 && out_has("usage: asymbp data info"));
    CHECK(test_cli("data info %s --format jpeg", c10) == 2 && out_has("--format: expected"));
    CHECK(test_cli("data info %s --size 0", c10) == 2);
    CHECK(test_cli("data info %s --size 8", c10) == 2 && out_has("apply to image folders only"));
    CHECK(test_cli("data info %s --unlabeled", pool) == 2 && out_has("STL-10 only"));
}

TEST(readers_cli_stl10_unlabeled_and_training) {
    /* STL-10: the unlabeled split is reported only when asked */
    const char *stl = dir_of("clistl");
    uint8_t lab[2] = {2, 3};
    CHECK(write_stl(stl, "train_X.bin", "train_y.bin", 2, lab) == 0);
    CHECK(write_stl(stl, "test_X.bin", "test_y.bin", 1, lab) == 0);
    CHECK(write_stl(stl, "unlabeled_X.bin", NULL, 1, NULL) == 0);
    CHECK(test_cli("data info %s", stl) == 0 && out_has("format: stl10") && out_has("image size: 3 x 96 x 96") && out_has("bird 1, car 1"));
    CHECK(!strstr(test_out, "unlabeled"));
    CHECK(test_cli("data info %s --unlabeled", stl) == 0 && out_has("unlabeled: 1 images (not used for training)"));
    /* a whole run on an image folder: sampling, cache, normalization, training */
    const char *pool = dir_of("clitrain"), *cache = dir_of("clitrain_cache");
    int per[3] = {4, 4, 5};
    CHECK(write_folder(pool, 3, per, 0) == 0);
    char cfg[1200];
    snprintf(cfg, sizeof cfg, "%s/train.yaml", test_tmpdir());
    FILE *f = fopen(cfg, "w");
    CHECK(f != NULL);
    fprintf(f,
            "seed: 2\nepochs: 1\nbatch_size: 4\ndata:\n  format: folder\n  path: %s\n  size: [6, 6]\n  train_per_class: 3\n"
            "  test_per_class: 1\n  cache: %s\nmodel: {arch: mlp, hidden: [8]}\noptimizer: {name: sgd, lr: 0.01}\n",
            pool, cache);
    fclose(f);
    CHECK(test_cli("train %s --out %s/run --quiet", cfg, test_tmpdir()) == 0);
    char sum[1200];
    snprintf(sum, sizeof sum, "%s/run/summary.json", test_tmpdir());
    CHECK(access(sum, F_OK) == 0);
    /* and a broken image in it: exit 1, the file named */
    CHECK(put(dir_of("clitrain/class_b"), "img_02.png", "garbage", 7) == 0);
    CHECK(test_cli("train %s --out %s/run2 --quiet", cfg, test_tmpdir()) == 1 && out_has("class_b/img_02.png: not a decodable image"));
}

/* ---- crashes found by fuzz/ (kept as regressions) ---- */

/* A variable flagged complex, 6 KB in all: libmatio's Mat_VarReadInfo
 * allocated 3.7 GB for it. Now the structure check refuses it first. */
TEST(readers_fuzz_svhn_matio_oom) {
    char path[1200];
    snprintf(path, sizeof path, "%s/fuzz/corpus/svhn/oom-matio-readinfo.mat", test_srcdir());
    AsymDataset d;
    CHECK(asym_dataset_load_svhn(&d, path, 0) == ASYM_ERR && empty(&d));
    CHECK(err_has("oom-matio-readinfo.mat: offset 144: a complex variable", NULL));
}

/* Inputs of fuzz/fuzz_image.c: a selector byte, then the file. */
static int decode_fuzz_input(const char *name, float *out) {
    char path[1200];
    uint8_t *buf;
    size_t len;
    snprintf(path, sizeof path, "%s/fuzz/corpus/image/%s", test_srcdir(), name);
    if (io_read_file(path, &buf, &len, 1 << 20, 0)) return -2;
    int rc = len ? folder_decode_image(name, buf + 1, len - 1, 8, 8, 0, out) : -2;
    free(buf);
    return rc;
}

/* JPEGs whose Huffman table declares more than 256 codes: stb_image 2.27
 * writes past its table (UBSan: index 257 out of bounds for 'stbi_uc[257]'
 * in stbi__build_huffman), already in stbi_info. Refused before stb sees
 * them; the second one has the bad table in a later DHT segment. (Memory
 * safety itself shows in the fuzz build, which compiles stb instrumented
 * and replays fuzz/corpus/ on every run.) */
TEST(readers_fuzz_jpeg_huffman_overflow) {
    float out[3 * 64];
    CHECK(decode_fuzz_input("jpeg-dht-overflow.bin", out) == ASYM_ERR);
    CHECK(err_has("jpeg-dht-overflow.bin: offset 173: JPEG Huffman table of 1231 codes", " (at most 256; corrupt)"));
    CHECK(decode_fuzz_input("jpeg-dht-overflow-2.bin", out) == ASYM_ERR);
    CHECK(err_has("jpeg-dht-overflow-2.bin: offset", "JPEG Huffman table of"));
    /* the bad table's counts run past the end of the file, read as zeros */
    CHECK(decode_fuzz_input("jpeg-dht-overflow-eof.bin", out) == ASYM_ERR);
    CHECK(err_has("jpeg-dht-overflow-eof.bin: offset 156: JPEG Huffman table of 637 codes", NULL));
}
