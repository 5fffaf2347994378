/* test_data.c: IDX and .npy reading and writing, and the AsymDataset
 * operations. Tests write their own tiny IDX files (raw and gzip) into
 * test_tmpdir() and break them in every way the readers must notice; one
 * test loads the real Fashion-MNIST when it is installed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "asymbp.h"
#include "data/data.h"
#include "io/io.h"
#include "test.h"
#include "base/base.h"

#define FMNIST_DIR "/usr/share/datasets/fashion-mnist"

/* A fresh directory under the test scratch dir. */
static const char *scratch(const char *name) {
    static char dir[1024];
    snprintf(dir, sizeof dir, "%s/%s", test_tmpdir(), name);
    mkdir(dir, 0755);
    return dir;
}

static int write_file(const char *dir, const char *name, const void *buf, size_t len, int gz) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s%s", dir, name, gz ? ".gz" : "");
    if (gz) {
        gzFile g = gzopen(path, "wb");
        if (!g) return -1;
        int ok = len == 0 || gzwrite(g, buf, (unsigned)len) == (int)len;
        return gzclose(g) == Z_OK && ok ? 0 : -1;
    }
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int ok = fwrite(buf, 1, len, f) == len;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* An IDX file of unsigned bytes: header for dims[0..nd), then payload. */
static size_t make_idx(uint8_t *buf, int nd, const uint32_t *dims, const uint8_t *payload, size_t plen) {
    buf[0] = buf[1] = 0;
    buf[2] = 0x08;
    buf[3] = (uint8_t)nd;
    for (int i = 0; i < nd; i++)
        for (int b = 0; b < 4; b++) buf[4 + 4 * i + b] = (uint8_t)(dims[i] >> (24 - 8 * b));
    if (plen) memcpy(buf + 4 + 4 * nd, payload, plen);
    return 4 + 4 * (size_t)nd + plen;
}

/* 3 images of 2 x 3 and labels 1, 0, 7. */
static const uint8_t PIX[18] = {0, 255, 51, 102, 1, 254, 10, 20, 30, 40, 50, 60, 200, 0, 0, 0, 0, 128};
static const uint8_t LAB[3] = {1, 0, 7};

static int write_set(const char *dir, const char *prefix, int gz, uint32_t n_img, uint32_t n_lab) {
    uint8_t buf[64];
    char name[64];
    uint32_t idim[3] = {n_img, 2, 3}, ldim[1] = {n_lab};
    snprintf(name, sizeof name, "%s-images-idx3-ubyte", prefix);
    if (write_file(dir, name, buf, make_idx(buf, 3, idim, PIX, 6 * n_img), gz)) return -1;
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte", prefix);
    return write_file(dir, name, buf, make_idx(buf, 1, ldim, LAB, n_lab), gz);
}

/* Loading dir must fail with a message containing want. */
static int load_fails(const char *dir, int train, const char *want) {
    AsymDataset d;
    if (asym_dataset_load_idx(&d, dir, train) == ASYM_OK) {
        asym_dataset_free(&d);
        printf("    loaded, expected an error containing '%s'\n", want);
        return 0;
    }
    if (!strstr(asym_last_error(), want)) {
        printf("    error '%s' lacks '%s'\n", asym_last_error(), want);
        return 0;
    }
    return d.x == NULL && d.y == NULL && d.n == 0;
}

static void check_set(const AsymDataset *d, int *bad) {
    *bad = !(d->n == 3 && d->c == 1 && d->h == 2 && d->w == 3 && d->classes == 10);
    for (int i = 0; i < 18 && !*bad; i++) *bad = d->x[i] != PIX[i] / 255.0f;
    for (int i = 0; i < 3 && !*bad; i++) *bad = d->y[i] != LAB[i];
}

TEST(idx_load_raw_and_gzip) {
    AsymDataset d;
    int bad;
    const char *dir = scratch("raw");
    CHECK(write_set(dir, "train", 0, 3, 3) == 0);
    CHECK_OK(asym_dataset_load_idx(&d, dir, 1));
    check_set(&d, &bad);
    asym_dataset_free(&d);
    CHECK(!bad);
    CHECK(d.x == NULL && d.n == 0);
    CHECK(load_fails(dir, 0, "t10k-images-idx3-ubyte"));

    dir = scratch("gz");
    CHECK(write_set(dir, "t10k", 1, 3, 3) == 0);
    CHECK_OK(asym_dataset_load_idx(&d, dir, 0));
    check_set(&d, &bad);
    asym_dataset_free(&d);
    CHECK(!bad);
}

TEST(idx_classes_beyond_ten) {
    const char *dir = scratch("classes");
    uint8_t buf[64], lab[2] = {3, 12}, pix[2] = {1, 2};
    uint32_t idim[3] = {2, 1, 1}, ldim[1] = {2};
    CHECK(write_file(dir, "train-images-idx3-ubyte", buf, make_idx(buf, 3, idim, pix, 2), 0) == 0);
    CHECK(write_file(dir, "train-labels-idx1-ubyte", buf, make_idx(buf, 1, ldim, lab, 2), 0) == 0);
    AsymDataset d;
    CHECK_OK(asym_dataset_load_idx(&d, dir, 1));
    int classes = d.classes, y1 = d.y[1];
    asym_dataset_free(&d);
    CHECK(classes == 13 && y1 == 12);
}

TEST(idx_missing_files) {
    const char *dir = scratch("missing");
    CHECK(load_fails(dir, 1, "no train-images-idx3-ubyte[.gz]"));
    CHECK(load_fails(dir, 1, dir));
    uint8_t buf[64];
    uint32_t idim[3] = {3, 2, 3};
    CHECK(write_file(dir, "train-images-idx3-ubyte", buf, make_idx(buf, 3, idim, PIX, 18), 1) == 0);
    CHECK(load_fails(dir, 1, "no train-labels-idx1-ubyte[.gz]"));
    CHECK(load_fails("/nonexistent/dir", 0, "/nonexistent/dir: no t10k-images-idx3-ubyte[.gz]"));
}

TEST(idx_count_mismatch) {
    const char *dir = scratch("count");
    CHECK(write_set(dir, "train", 0, 3, 2) == 0);
    CHECK(load_fails(dir, 1, "train-labels-idx1-ubyte: labels file holds 2 labels but images file"));
    CHECK(load_fails(dir, 1, "train-images-idx3-ubyte 3 images"));
}

/* Writes images file bytes (raw, or gzip) next to valid labels and expects
 * the error to name the images file and contain want. */
static int bad_images(const char *sub, const uint8_t *buf, size_t len, int gz, const char *want) {
    const char *dir = scratch(sub);
    uint8_t lbuf[16];
    uint32_t ldim[1] = {3};
    if (write_file(dir, "train-images-idx3-ubyte", buf, len, gz) ||
        write_file(dir, "train-labels-idx1-ubyte", lbuf, make_idx(lbuf, 1, ldim, LAB, 3), 0))
        return 0;
    return load_fails(dir, 1, gz ? "train-images-idx3-ubyte.gz: " : "train-images-idx3-ubyte: ") &&
           load_fails(dir, 1, want);
}

TEST(idx_breakage) {
    uint8_t buf[64] = {0};
    uint32_t idim[3] = {3, 2, 3};
    size_t len = make_idx(buf, 3, idim, PIX, 18);
    CHECK(bad_images("trunc", buf, len - 8, 0, "header claims 3 x 2 x 3 = 18 bytes of data but the file holds 10 (truncated?)"));
    CHECK(bad_images("trunc_gz", buf, len - 8, 1, "(truncated?)"));
    CHECK(bad_images("long", buf, len + 1, 0, "trailing bytes"));
    CHECK(bad_images("short_hdr", buf, 10, 0, "offset 4: header of 16 bytes but the file holds 10"));
    CHECK(bad_images("tiny", buf, 3, 0, "too short for an IDX header"));
    CHECK(bad_images("empty", buf, 0, 0, "too short for an IDX header"));
    uint8_t m[64];
    memcpy(m, buf, len);
    m[0] = 0x12, m[1] = 0x34, m[2] = 0x56, m[3] = 0x78;
    CHECK(bad_images("magic", m, len, 0, "offset 0: bad IDX magic 0x12345678"));
    memcpy(m, buf, len);
    m[2] = 0x0d;
    CHECK(bad_images("type", m, len, 0, "unsupported IDX data type 0x0d"));
    memcpy(m, buf, len);
    m[3] = 5;
    CHECK(bad_images("ndim", m, len, 0, "dimension count 5 not in 1..4"));
    uint32_t huge[4] = {0xffffffffu, 0xffffffffu, 0xffffffffu, 2};
    CHECK(bad_images("overflow", buf, make_idx(buf, 4, huge, PIX, 0), 0, "overflow 64 bits"));
    uint32_t big[3] = {60000, 28, 28};
    CHECK(bad_images("claims", buf, make_idx(buf, 3, big, PIX, 18), 0,
                     "header claims 60000 x 28 x 28 = 47040000 bytes of data but the file holds 18"));
    uint32_t flat[2] = {3, 6};
    CHECK(bad_images("twod", buf, make_idx(buf, 2, flat, PIX, 18), 0, "has 2 dimensions, expected 3"));
}

TEST(idx_corrupt_gzip) {
    const char *dir = scratch("gzsrc");
    uint8_t buf[64];
    uint32_t idim[3] = {3, 2, 3};
    CHECK(write_file(dir, "x", buf, make_idx(buf, 3, idim, PIX, 18), 1) == 0);
    char path[1200];
    snprintf(path, sizeof path, "%s/x.gz", dir);
    size_t n;
    FILE *f = fopen(path, "rb");
    CHECK(f);
    uint8_t raw[256];
    n = fread(raw, 1, sizeof raw, f);
    fclose(f);
    CHECK(n > 20 && n < sizeof raw);
    /* A broken CRC, and a stream cut short. */
    memcpy(buf, raw, n);
    buf[n - 6] ^= 0xff;
    CHECK(bad_images("gzcrc", buf, n, 0, "train-images-idx3-ubyte: corrupt gzip data: incorrect data check"));
    CHECK(bad_images("gzcut", raw, n - 10, 0, "train-images-idx3-ubyte: corrupt gzip data: unexpected end"));
    /* Deflate garbage after a valid gzip header. */
    memcpy(buf, raw, n);
    memset(buf + 10, 0xff, 8);
    CHECK(bad_images("gzbad", buf, n, 0, "corrupt gzip data"));
}

TEST(idx_read_all_limits) {
    /* 10000 zeros compress to a few dozen bytes: the cap applies to the
     * decompressed size. Two concatenated members read as one stream. */
    const char *dir = scratch("limits");
    static uint8_t zeros[10000];
    CHECK(write_file(dir, "z", zeros, sizeof zeros, 1) == 0);
    char path[1200];
    snprintf(path, sizeof path, "%s/z.gz", dir);
    uint8_t *data;
    size_t n;
    CHECK(io_read_all(path, &data, &n, 9999) == ASYM_ERR);
    CHECK(strstr(asym_last_error(), "z.gz: larger than 9999 bytes"));
    CHECK_OK(io_read_all(path, &data, &n, 10000));
    int ok = n == 10000 && !memcmp(data, zeros, n);
    free(data);
    CHECK(ok);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cat '%s' '%s' > '%s/zz'", path, path, dir);
    CHECK(system(cmd) == 0);
    snprintf(path, sizeof path, "%s/zz", dir);
    CHECK_OK(io_read_all(path, &data, &n, 20000));
    ok = n == 20000 && !memcmp(data + 10000, zeros, 10000);
    free(data);
    CHECK(ok);
    CHECK(write_file(dir, "r", "abc", 3, 0) == 0);
    snprintf(path, sizeof path, "%s/r", dir);
    CHECK(io_read_all(path, &data, &n, 2) == ASYM_ERR);
    CHECK(strstr(asym_last_error(), "/r: larger than 2 bytes"));
    CHECK_OK(io_read_all(path, &data, &n, 3));
    ok = n == 3 && !memcmp(data, "abc", 3);
    free(data);
    CHECK(ok);
    CHECK(io_read_all("/nonexistent/f", &data, &n, 100) == ASYM_ERR);
    CHECK(strstr(asym_last_error(), "/nonexistent/f: cannot open: No such file"));
}

TEST(idx_parse_zero_dim) {
    uint8_t buf[32];
    uint32_t dims[3] = {0, 28, 28}, out[4];
    int nd;
    const uint8_t *p;
    CHECK_OK(idx_parse("z", buf, make_idx(buf, 3, dims, NULL, 0), &nd, out, &p));
    CHECK(nd == 3 && out[0] == 0 && out[1] == 28 && p == buf + 16);
    uint32_t huge[4] = {0xffffffffu, 0xffffffffu, 0xffffffffu, 0};
    CHECK_OK(idx_parse("z", buf, make_idx(buf, 4, huge, NULL, 0), &nd, out, &p));
}

TEST(data_fashion_mnist) {
    if (access(FMNIST_DIR "/train-images-idx3-ubyte.gz", R_OK) != 0) {
        test_skip("Fashion-MNIST is not installed in %s (dataset-fashion-mnist)", FMNIST_DIR);
        return;
    }
    AsymDataset tr, te;
    CHECK_OK(asym_dataset_load_idx(&tr, FMNIST_DIR, 1));
    int ok = tr.n == 60000 && tr.c == 1 && tr.h == 28 && tr.w == 28 && tr.classes == 10 && tr.y[0] == 9;
    float lo = 1, hi = 0, mean, std;
    int per[10] = {0};
    for (size_t i = 0; i < (size_t)tr.n * 784; i++) {
        lo = tr.x[i] < lo ? tr.x[i] : lo;
        hi = tr.x[i] > hi ? tr.x[i] : hi;
    }
    for (int i = 0; i < tr.n; i++) per[tr.y[i]]++;
    asym_dataset_stats(&tr, &mean, &std);
    asym_dataset_free(&tr);
    CHECK(ok);
    CHECK(lo == 0.0f && hi == 1.0f);
    for (int k = 0; k < 10; k++) CHECK(per[k] == 6000);
    /* The figures torchvision users normalize Fashion-MNIST with. */
    CHECK_NEAR(mean, 0.2860, 1e-4);
    CHECK_NEAR(std, 0.3530, 1e-4);
    CHECK_OK(asym_dataset_load_idx(&te, FMNIST_DIR, 0));
    ok = te.n == 10000 && te.c == 1 && te.h == 28 && te.w == 28 && te.classes == 10 && te.y[0] == 9 && te.y[1] == 2;
    asym_dataset_free(&te);
    CHECK(ok);
}

TEST(data_random) {
    AsymDataset a, b;
    CHECK_OK(asym_dataset_random(&a, 200, 3, 4, 5, 7, 42));
    CHECK_OK(asym_dataset_random(&b, 200, 3, 4, 5, 7, 42));
    size_t total = 200 * 60;
    int same = !memcmp(a.x, b.x, total * sizeof(float)) && !memcmp(a.y, b.y, 200 * sizeof(int32_t));
    int in_range = 1, seen[7] = {0};
    for (int i = 0; i < 200; i++) {
        in_range &= a.y[i] >= 0 && a.y[i] < 7;
        if (in_range) seen[a.y[i]] = 1;
    }
    double s = 0, s2 = 0;
    for (size_t i = 0; i < total; i++) s += a.x[i], s2 += (double)a.x[i] * a.x[i];
    int shape = a.n == 200 && a.c == 3 && a.h == 4 && a.w == 5 && a.classes == 7;
    asym_dataset_free(&a);
    asym_dataset_free(&b);
    CHECK(same && in_range && shape);
    for (int k = 0; k < 7; k++) CHECK(seen[k]);
    CHECK(fabs(s / total) < 0.05 && fabs(s2 / total - 1) < 0.05);
    CHECK_OK(asym_dataset_random(&b, 2, 1, 1, 1, 2, 43));
    asym_dataset_free(&b);
    CHECK(asym_dataset_random(&a, 0, 1, 1, 1, 2, 1) == ASYM_ERR);
    CHECK(strstr(asym_last_error(), "n=0"));
    CHECK(asym_dataset_random(&a, 1, 1, 1, 1, -1, 1) == ASYM_ERR);
    CHECK(asym_dataset_random(&a, 1, 65536, 65536, 2, 2, 1) == ASYM_ERR);
    CHECK(strstr(asym_last_error(), "too large"));
    CHECK(a.x == NULL);
    asym_dataset_free(&a); /* zeroed: safe */
}

/* n images of 1 x 1 x 1 with x = y = index. */
static int make_counting(AsymDataset *d, int n) {
    if (asym_dataset_random(d, n, 1, 1, 1, n, 0)) return -1;
    for (int i = 0; i < n; i++) d->x[i] = (float)(d->y[i] = i);
    return 0;
}

TEST(data_split) {
    AsymDataset d, v;
    CHECK(make_counting(&d, 10) == 0);
    int perm[10];
    for (int i = 0; i < 10; i++) perm[i] = i;
    AsymRng r;
    rng_seed(&r, 7);
    rng_shuffle(&r, perm, 10);
    CHECK_OK(asym_dataset_split(&d, &v, 3, 7));
    int ok = d.n == 7 && v.n == 3 && v.c == 1 && v.h == 1 && v.w == 1 && v.classes == 10;
    for (int j = 0; j < 3 && ok; j++) ok = v.y[j] == perm[j] && v.x[j] == perm[j];
    for (int i = 1; i < 7 && ok; i++) ok = d.y[i] > d.y[i - 1];
    for (int i = 0; i < 7 && ok; i++)
        for (int j = 0; j < 3; j++) ok &= d.y[i] != v.y[j] && d.x[i] == d.y[i];
    asym_dataset_free(&v);
    CHECK(ok);
    CHECK_OK(asym_dataset_split(&d, &v, 0, 1));
    ok = d.n == 7 && v.n == 0;
    asym_dataset_free(&v);
    CHECK(ok);
    CHECK(asym_dataset_split(&d, &v, 7, 1) == ASYM_ERR);
    CHECK(strstr(asym_last_error(), "split: validation size 7 not in [0, 7)"));
    CHECK(asym_dataset_split(&d, &v, -1, 1) == ASYM_ERR);
    ok = d.n == 7 && v.x == NULL;
    asym_dataset_free(&d);
    CHECK(ok);
}

TEST(data_truncate) {
    AsymDataset d;
    CHECK(make_counting(&d, 5) == 0);
    asym_dataset_truncate(&d, 9);
    int a = d.n;
    asym_dataset_truncate(&d, 2);
    int ok = a == 5 && d.n == 2 && d.y[1] == 1;
    asym_dataset_free(&d);
    CHECK(ok);
}

TEST(data_pad) {
    AsymDataset d;
    CHECK_OK(asym_dataset_random(&d, 1, 2, 2, 2, 2, 0));
    for (int i = 0; i < 8; i++) d.x[i] = (float)(i + 1);
    CHECK_OK(asym_dataset_pad(&d, 1));
    static const float want[32] = {0, 0, 0, 0, 0, 1, 2, 0, 0, 3, 4, 0, 0, 0, 0, 0,
                                   0, 0, 0, 0, 0, 5, 6, 0, 0, 7, 8, 0, 0, 0, 0, 0};
    int ok = d.h == 4 && d.w == 4 && d.c == 2 && !memcmp(d.x, want, sizeof want);
    ok &= asym_dataset_pad(&d, 0) == ASYM_OK && d.h == 4;
    ok &= asym_dataset_pad(&d, -1) == ASYM_ERR;
    asym_dataset_free(&d);
    CHECK(ok);
}

TEST(data_stats_normalize) {
    AsymDataset d;
    CHECK_OK(asym_dataset_random(&d, 2, 2, 1, 2, 2, 0));
    /* (n=2, c=2, 1, 2): channel 0 holds 1, 2, 3, 4; channel 1 holds 5 four times. */
    static const float x[8] = {1, 2, 5, 5, 3, 4, 5, 5};
    memcpy(d.x, x, sizeof x);
    float mean[2], std[2];
    asym_dataset_stats(&d, mean, std);
    int ok = mean[0] == 2.5f && std[0] == sqrtf(1.25f) && mean[1] == 5.0f && std[1] == 0.0f;
    float m2[2] = {2.5f, 1.0f}, s2[2] = {0.5f, 2.0f};
    asym_dataset_normalize(&d, m2, s2);
    static const float want[8] = {-3, -1, 2, 2, 1, 3, 2, 2};
    ok &= !memcmp(d.x, want, sizeof want);
    asym_dataset_free(&d);
    CHECK(ok);
}

static int npy_roundtrip(const char *name, int ndim, const int64_t *shape) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", test_tmpdir(), name);
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
    float *x = malloc((n ? n : 1) * sizeof *x), *y = NULL;
    for (size_t i = 0; i < n; i++) x[i] = (float)i * 0.37f - 1e-30f * (float)i;
    if (n > 2) x[1] = -0.0f, x[2] = NAN;
    int nd = -1, ok = 1;
    int64_t got[8];
    if (npy_write_f32(path, x, ndim, shape) || npy_read_f32(path, &y, &nd, got)) {
        printf("    %s\n", asym_last_error());
        ok = 0;
    }
    ok = ok && nd == ndim && (!ndim || !memcmp(got, shape, ndim * sizeof *shape)) && !memcmp(x, y, n * sizeof *x);
    free(x);
    free(y);
    return ok;
}

/* Reads back a whole written file. */
static size_t slurp(const char *path, char *buf, size_t cap) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

TEST(npy_roundtrip_shapes) {
    int64_t s2[2] = {2, 3}, s1[1] = {5}, s4[4] = {2, 1, 3, 4}, s0[2] = {0, 4};
    CHECK(npy_roundtrip("a.npy", 2, s2));
    CHECK(npy_roundtrip("b.npy", 1, s1));
    CHECK(npy_roundtrip("c.npy", 0, NULL));
    CHECK(npy_roundtrip("d.npy", 4, s4));
    CHECK(npy_roundtrip("e.npy", 2, s0));
    char path[1200];
    snprintf(path, sizeof path, "%s/a.npy.%d.tmp", test_tmpdir(), (int)getpid());
    CHECK(access(path, F_OK) != 0);
}

TEST(npy_header_format) {
    char path[1200], buf[512];
    snprintf(path, sizeof path, "%s/h.npy", test_tmpdir());
    int64_t cases[3][2] = {{2, 3}, {5, 0}, {0, 0}};
    const char *want[3] = {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
                           "{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }",
                           "{'descr': '<f4', 'fortran_order': False, 'shape': (), }"};
    float x[6] = {0};
    for (int k = 0; k < 3; k++) {
        CHECK_OK(npy_write_f32(path, x, 2 - k, cases[k]));
        size_t n = slurp(path, buf, sizeof buf);
        size_t hlen = (uint8_t)buf[8] | (size_t)(uint8_t)buf[9] << 8;
        CHECK(!memcmp(buf, "\x93NUMPY\x01\x00", 8));
        CHECK((10 + hlen) % 64 == 0 && buf[10 + hlen - 1] == '\n');
        CHECK(!strncmp(buf + 10, want[k], strlen(want[k])));
        CHECK(n == 10 + hlen + 4 * (k == 0 ? 6 : k == 1 ? 5 : 1));
    }
    int32_t yi[3] = {1, -2, 3};
    int64_t s[1] = {3};
    CHECK_OK(npy_write_i32(path, yi, 1, s));
    size_t n = slurp(path, buf, sizeof buf), h = (uint8_t)buf[8] | (size_t)(uint8_t)buf[9] << 8;
    CHECK(n == 10 + h + 12 && strstr(buf + 10, "'descr': '<i4'") && !memcmp(buf + 10 + h, yi, 12));
    float *y;
    int nd;
    int64_t shape[8];
    CHECK(npy_read_f32(path, &y, &nd, shape) == ASYM_ERR);
    CHECK(strstr(asym_last_error(), "h.npy: dtype '<i4' not supported"));
}

/* Writes a hand-made .npy and reads it; returns the read's status. */
static int npy_try(const char *name, int version, const char *hdr, size_t data_bytes, float **y, int *nd, int64_t *shape) {
    char path[1200], buf[1024];
    snprintf(path, sizeof path, "%s/%s", test_tmpdir(), name);
    size_t h = strlen(hdr), off = version == 1 ? 10 : 12;
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (char)version;
    buf[7] = 0;
    buf[8] = (char)(h & 0xff);
    buf[9] = (char)(h >> 8);
    buf[10] = buf[11] = 0;
    memcpy(buf + off, hdr, h);
    memset(buf + off + h, 0x3f, data_bytes);
    FILE *f = fopen(path, "wb");
    if (!f) return -2;
    fwrite(buf, 1, off + h + data_bytes, f);
    fclose(f);
    return npy_read_f32(path, y, nd, shape);
}

TEST(npy_read_variants_and_errors) {
    float *y;
    int nd;
    int64_t shape[8];
    /* Version 2.0, keys reordered, double quotes, no trailing comma. */
    CHECK_OK(npy_try("v2.npy", 2, "{ \"shape\": ( 3 , 2 ) , 'fortran_order':False,'descr':'<f4'}\n", 24, &y, &nd, shape));
    int ok = nd == 2 && shape[0] == 3 && shape[1] == 2 && y[5] == y[0];
    free(y);
    CHECK(ok);
    struct {
        const char *name, *hdr, *want;
        size_t bytes;
    } bad[] = {
        {"f8.npy", "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }\n", "f8.npy: dtype '<f8' not supported", 16},
        {"fo.npy", "{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }\n", "fo.npy: fortran_order True", 8},
        {"neg.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }\n", "neg.npy: offset 61: .npy header: expected a non-negative", 8},
        {"nine.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }\n", "more than 8 dimensions", 4},
        {"key.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}\n", "unknown or repeated key x", 8},
        {"nokey.npy", "{'descr': '<f4', 'shape': (2,), }\n", "nokey.npy: .npy header lacks 'fortran_order'", 8},
        {"junk.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } x\n", "unexpected text", 8},
        {"big.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 8), }\n", "shape too large", 8},
        {"short.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n", "short.npy: offset 70: shape needs 24 bytes of data but the file holds 20 (truncated?)", 20},
        {"long.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n", "trailing bytes", 28},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        y = (float *)1;
        int rc = npy_try(bad[i].name, 1, bad[i].hdr, bad[i].bytes, &y, &nd, shape);
        CHECK_MSG(rc == ASYM_ERR && y == NULL && strstr(asym_last_error(), bad[i].want), "%s: rc %d, '%s'", bad[i].name,
                  rc, asym_last_error());
    }
    CHECK(npy_try("v3.npy", 3, "{}", 0, &y, &nd, shape) == ASYM_ERR);
    CHECK(strstr(asym_last_error(), "v3.npy: offset 6: unsupported .npy version 3.0"));
    CHECK(npy_read_f32("/nonexistent.npy", &y, &nd, shape) == ASYM_ERR);
    CHECK(strstr(asym_last_error(), "/nonexistent.npy: cannot open"));
}

TEST(npy_truncated) {
    char path[1200];
    snprintf(path, sizeof path, "%s/t.npy", test_tmpdir());
    float x[6] = {1, 2, 3, 4, 5, 6}, *y;
    int64_t s[2] = {2, 3}, shape[8];
    int nd;
    CHECK_OK(npy_write_f32(path, x, 2, s));
    CHECK(truncate(path, 128 + 20) == 0);
    CHECK(npy_read_f32(path, &y, &nd, shape) == ASYM_ERR);
    CHECK(strstr(asym_last_error(), "t.npy: offset 128: shape needs 24 bytes of data but the file holds 20 (truncated?)"));
    CHECK(truncate(path, 40) == 0);
    CHECK(npy_read_f32(path, &y, &nd, shape) == ASYM_ERR);
    CHECK(strstr(asym_last_error(), "t.npy: offset 8: header length 118 does not fit"));
    CHECK(truncate(path, 7) == 0);
    CHECK(npy_read_f32(path, &y, &nd, shape) == ASYM_ERR);
    CHECK(strstr(asym_last_error(), "t.npy: offset 0: 7 bytes, too short"));
    CHECK(npy_write_f32("/nonexistent/dir/x.npy", x, 2, s) == ASYM_ERR);
    CHECK(strstr(asym_last_error(), "/nonexistent/dir/x.npy.") && strstr(asym_last_error(), ".tmp: cannot create"));
}
