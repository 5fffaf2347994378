/* seeds.c: writes a small valid seed corpus for every fuzz target into
 * DIR/<target>/ (fuzz/run.sh runs it before fuzzing): well-formed files
 * give the fuzzer a start deep inside each format. MAT-files are written
 * with libmatio, images with stb_image_write. */
#include <matio.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include <stb/stb_image_write.h>

static char root[512];

static void put(const char *target, const char *name, const void *p, size_t n) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", root, target);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/%s/%s", root, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(p, 1, n, f) != n) || fclose(f) != 0) {
        fprintf(stderr, "seeds: cannot write %s\n", path);
        exit(1);
    }
}

static uint8_t *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    uint8_t *b = malloc(1 << 20);
    *n = b ? fread(b, 1, 1 << 20, f) : 0;
    fclose(f);
    return b;
}

/* prefix (a selector byte or a 2-byte split length) + a + b */
static void put_joined(const char *target, const char *name, const uint8_t *pre, size_t np, const void *a, size_t na, const void *b, size_t nb) {
    uint8_t *buf = malloc(np + na + nb);
    memcpy(buf, pre, np);
    memcpy(buf + np, a, na);
    memcpy(buf + np + na, b, nb);
    put(target, name, buf, np + na + nb);
    free(buf);
}

static void idx_seeds(void) {
    uint8_t b[4 + 12 + 18] = {0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 3};
    for (int i = 0; i < 18; i++) b[16 + i] = (uint8_t)(i * 13);
    put("idx", "raw", b, sizeof b);
    uLongf zn = 256;
    uint8_t z[256];
    /* gzip through zlib's deflateInit2 with the gzip wrapper */
    z_stream s;
    memset(&s, 0, sizeof s);
    deflateInit2(&s, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
    s.next_in = b;
    s.avail_in = sizeof b;
    s.next_out = z;
    s.avail_out = (uInt)zn;
    deflate(&s, Z_FINISH);
    zn = s.total_out;
    deflateEnd(&s);
    put("idx", "gz", z, zn);
}

static void cifar_seeds(void) {
    static uint8_t r[1 + 2 * 3074];
    for (int mode = 0; mode < 2; mode++) {
        size_t rec = mode ? 3074 : 3073;
        r[0] = (uint8_t)mode;
        for (int i = 0; i < 2; i++) {
            uint8_t *p = r + 1 + i * rec;
            p[0] = (uint8_t)(3 + i);
            if (mode) p[1] = (uint8_t)(42 + i);
            for (int k = 0; k < 3072; k++) p[rec - 3072 + k] = (uint8_t)(k * 7 + i);
        }
        put("cifar", mode ? "c100" : "c10", r, 1 + 2 * rec);
    }
}

static void stl_seeds(void) {
    static uint8_t x[27648];
    uint8_t pre[2] = {1, 0}, y[1] = {7};
    for (int k = 0; k < 27648; k++) x[k] = (uint8_t)(k * 3);
    put_joined("stl10", "one", pre, 2, y, 1, x, sizeof x);
}

static void svhn_seeds(void) {
    static uint8_t x[2 * 3072];
    double y[2] = {10, 3};
    size_t xd[4] = {32, 32, 3, 2}, yd[2] = {2, 1};
    for (int k = 0; k < 2 * 3072; k++) x[k] = (uint8_t)(k % 97);
    for (int z = 0; z < 2; z++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/svhn.tmp.mat", root);
        mat_t *m = Mat_CreateVer(path, NULL, MAT_FT_MAT5);
        matvar_t *xv = Mat_VarCreate("X", MAT_C_UINT8, MAT_T_UINT8, 4, xd, x, 0);
        matvar_t *yv = Mat_VarCreate("y", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, yd, y, 0);
        if (!m || !xv || !yv || Mat_VarWrite(m, xv, z ? MAT_COMPRESSION_ZLIB : MAT_COMPRESSION_NONE) ||
            Mat_VarWrite(m, yv, z ? MAT_COMPRESSION_ZLIB : MAT_COMPRESSION_NONE)) {
            fprintf(stderr, "seeds: matio failed\n");
            exit(1);
        }
        Mat_VarFree(xv);
        Mat_VarFree(yv);
        Mat_Close(m);
        size_t n;
        uint8_t *b = slurp(path, &n);
        put("svhn", z ? "compressed" : "plain", b, n);
        free(b);
        remove(path);
    }
}

/* the devkit's meta.mat: a struct array synsets (ILSVRC2012_ID, WNID, an empty children) */
static void devkit_seeds(void) {
    char path[1024];
    snprintf(path, sizeof path, "%s/devkit.tmp.mat", root);
    mat_t *m = Mat_CreateVer(path, NULL, MAT_FT_MAT5);
    const char *fields[] = {"ILSVRC2012_ID", "WNID", "children"};
    size_t dims[2] = {3, 1}, one[2] = {1, 1}, none[2] = {1, 0}, wd[2] = {1, 9};
    matvar_t *st = Mat_VarCreateStruct("synsets", 2, dims, fields, 3);
    const char *w[3] = {"n01440764", "n01443537", "n00001740"};
    for (int e = 0; st && e < 3; e++) {
        double id = e + 1;
        Mat_VarSetStructFieldByName(st, "ILSVRC2012_ID", e, Mat_VarCreate(NULL, MAT_C_DOUBLE, MAT_T_DOUBLE, 2, one, &id, 0));
        Mat_VarSetStructFieldByName(st, "WNID", e, Mat_VarCreate(NULL, MAT_C_CHAR, MAT_T_UINT8, 2, wd, (void *)w[e], 0));
        Mat_VarSetStructFieldByName(st, "children", e, Mat_VarCreate(NULL, MAT_C_DOUBLE, MAT_T_DOUBLE, 2, none, NULL, 0));
    }
    if (!m || !st || Mat_VarWrite(m, st, MAT_COMPRESSION_NONE)) {
        fprintf(stderr, "seeds: matio failed\n");
        exit(1);
    }
    Mat_VarFree(st);
    Mat_Close(m);
    size_t n;
    uint8_t *b = slurp(path, &n);
    put("devkit", "plain", b, n);
    free(b);
    remove(path);
}

static void image_seeds(void) {
    uint8_t px[6 * 5 * 3];
    for (int i = 0; i < (int)sizeof px; i++) px[i] = (uint8_t)(i * 11);
    const char *kinds[] = {"png", "png1", "jpg", "bmp", "tga"};
    for (int k = 0; k < 5; k++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/img.tmp", root);
        int ok = k == 0 ? stbi_write_png(path, 6, 5, 3, px, 18) : k == 1 ? stbi_write_png(path, 6, 5, 1, px, 6)
               : k == 2 ? stbi_write_jpg(path, 6, 5, 3, px, 80) : k == 3 ? stbi_write_bmp(path, 6, 5, 3, px)
                        : stbi_write_tga(path, 6, 5, 3, px);
        size_t n;
        uint8_t *b = ok ? slurp(path, &n) : NULL;
        if (!b) {
            fprintf(stderr, "seeds: image %s failed\n", kinds[k]);
            exit(1);
        }
        uint8_t sel[1] = {(uint8_t)(k * 37)};
        put_joined("image", kinds[k], sel, 1, b, n, NULL, 0);
        free(b);
        remove(path);
    }
}

/* fuzz_stream: a JPEG with a box selector, and a tar of KEY.jpg + KEY.cls. */
static void stream_seeds(void) {
    uint8_t px[16 * 24 * 3];
    for (int i = 0; i < (int)sizeof px; i++) px[i] = (uint8_t)(i * 7);
    char path[1024];
    snprintf(path, sizeof path, "%s/stream.tmp", root);
    size_t n;
    uint8_t *b = stbi_write_jpg(path, 24, 16, 3, px, 80) ? slurp(path, &n) : NULL;
    if (!b) {
        fprintf(stderr, "seeds: stream jpeg failed\n");
        exit(1);
    }
    uint8_t sel[7] = {1, 3, 5, 200, 180, 2, 2};
    put_joined("stream", "jpeg", sel, 7, b, n, NULL, 0);
    /* two ustar members, each a 512-byte header then the data padded to 512 */
    static uint8_t tar[512 * 6];
    const char *names[2] = {"k.jpg", "k.cls"};
    size_t sizes[2] = {n < 512 ? n : 512, 1}, at = 0;
    for (int m = 0; m < 2; m++) {
        uint8_t *h = tar + at;
        snprintf((char *)h, 100, "%s", names[m]);
        snprintf((char *)h + 100, 8, "0000644");
        snprintf((char *)h + 124, 12, "%011o", (unsigned)sizes[m]);
        memcpy(h + 257, "ustar", 6);
        h[156] = '0';
        memset(h + 148, ' ', 8);
        unsigned sum = 0;
        for (int i = 0; i < 512; i++) sum += h[i];
        snprintf((char *)h + 148, 8, "%06o", sum);
        memcpy(tar + at + 512, m ? (const uint8_t *)"3" : b, sizes[m]);
        at += 1024;
    }
    uint8_t even[1] = {0};
    put_joined("stream", "tar", even, 1, tar, sizeof tar, NULL, 0);
    free(b);
    remove(path);
}

/* A .npy file of raw data with any descr, into buf; returns its size. */
static size_t npy(uint8_t *buf, const char *descr, const char *shape, const void *data, size_t bytes) {
    char hdr[128];
    int h = snprintf(hdr, sizeof hdr, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape);
    int total = (10 + h + 1 + 63) / 64 * 64;
    memset(hdr + h, ' ', (size_t)(total - 10 - h));
    hdr[total - 11] = '\n';
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (uint8_t)(total - 10);
    buf[9] = 0;
    memcpy(buf + 10, hdr, (size_t)(total - 10));
    memcpy(buf + total, data, bytes);
    return (size_t)total + bytes;
}

static void npy_seeds(void) {
    uint8_t xb[512], yb[512];
    float x[3][2] = {{1, 2}, {3, 4}, {5, 6}};
    int64_t y[3] = {0, 2, 1};
    uint8_t img[2][2][2] = {{{0, 255}, {3, 4}}, {{5, 6}, {7, 8}}}, ylab[2] = {1, 0};
    size_t nx = npy(xb, "<f4", "(3, 2)", x, sizeof x), ny = npy(yb, "<i8", "(3,)", y, sizeof y);
    uint8_t pre[2] = {(uint8_t)(nx & 0xff), (uint8_t)(nx >> 8)};
    put_joined("npy", "features", pre, 2, xb, nx, yb, ny);
    nx = npy(xb, "|u1", "(2, 2, 2)", img, sizeof img);
    ny = npy(yb, "|u1", "(2, 1)", ylab, sizeof ylab);
    pre[0] = (uint8_t)(nx & 0xff), pre[1] = (uint8_t)(nx >> 8);
    put_joined("npy", "images", pre, 2, xb, nx, yb, ny);
}

static void cache_seeds(void) {
    /* n = 2 images of 1 x 2 x 2, then the CRC-32 of everything before it */
    uint8_t b[32 + 8 + 4] = "ASYMIMG1";
    uint64_t key = 0x0123456789abcdefULL;
    uint32_t v[4] = {2, 1, 2, 2};
    memcpy(b + 8, &key, 8);
    memcpy(b + 16, v, 16);
    for (int i = 0; i < 8; i++) b[32 + i] = (uint8_t)(i * 30);
    uint32_t crc = (uint32_t)crc32(0, b, 40);
    memcpy(b + 40, &crc, 4);
    put("cache", "two", b, sizeof b);
}

/* A checkpoint (docs/CHECKPOINT.md) of a few records, behind the mode
 * byte of fuzz_checkpoint.c: 0 as it is, 1 with length and CRC set there. */
static void checkpoint_seeds(void) {
    static uint8_t b[1024];
    size_t k = 25;
    uint32_t count = 0;
    const char *names[] = {"config", "epoch", "param/0.W", "rng/order"};
    const uint8_t types[] = {6, 4, 1, 5}, ndims[] = {1, 0, 2, 1};
    const uint64_t dims[][2] = {{7, 0}, {0, 0}, {2, 3}, {4, 0}};
    const size_t bytes[] = {7, 8, 24, 32};
    memcpy(b + 1, "ASYMCKPT", 8);
    for (int r = 0; r < 4; r++, count++) {
        uint16_t nl = (uint16_t)strlen(names[r]);
        memcpy(b + k, &nl, 2);
        memcpy(b + k + 2, names[r], nl);
        k += 2 + nl;
        b[k++] = types[r];
        b[k++] = ndims[r];
        memcpy(b + k, dims[r], 8 * ndims[r]);
        k += 8 * ndims[r];
        for (size_t i = 0; i < bytes[r]; i++) b[k + i] = (uint8_t)(r == 0 ? "epochs:"[i] : i * 29 + r);
        k += bytes[r];
    }
    uint32_t version = 1;
    uint64_t len = k + 4 - 1;
    memcpy(b + 9, &version, 4);
    memcpy(b + 13, &count, 4);
    memcpy(b + 17, &len, 8);
    uint32_t crc = (uint32_t)crc32(0, b + 1, (uInt)(k - 1));
    memcpy(b + k, &crc, 4);
    b[0] = 0;
    put("checkpoint", "valid", b, k + 4);
    b[0] = 1;
    put("checkpoint", "fixed", b, k + 4);
}

static void config_seeds(void) {
    static const char yaml[] =
        "name: seed\nseed: 3\nepochs: 2\nbatch_size: 16\nrule: kp\nrule_overrides: {'-1': bp}\n"
        "feedback: {concordance: 0.9, wm: {steps: 2}}\ndebug: {trap_fp: true}\n"
        "model:\n  layers:\n    - {type: conv, out: 4, k: 3, pad: 1, rule: brsf}\n    - batchnorm\n    - relu\n"
        "    - {type: maxpool, k: 2}\n    - flatten\n    - {type: dropout, p: 0.3}\n    - {type: fc, out: 2}\n"
        "optimizer: {name: sgd, lr: 0.05, momentum: 0.9, nesterov: true}\n"
        "schedule: {name: multistep, milestones: [1, 2]}\n";
    static const char arch[] = "model: {arch: resnet20}\n", set[] = "model.layers.0.out=8", set2[] = "model.hidden=[32, 16]";
    uint8_t pre[2] = {(uint8_t)((sizeof yaml - 1) & 0xff), (uint8_t)((sizeof yaml - 1) >> 8)};
    put_joined("config", "layers", pre, 2, yaml, sizeof yaml - 1, set, sizeof set - 1);
    pre[0] = (uint8_t)(sizeof arch - 1), pre[1] = 0;
    put_joined("config", "arch", pre, 2, arch, sizeof arch - 1, set2, sizeof set2 - 1);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: seeds DIR\n");
        return 2;
    }
    snprintf(root, sizeof root, "%s", argv[1]);
    mkdir(root, 0755);
    idx_seeds();
    cifar_seeds();
    stl_seeds();
    svhn_seeds();
    devkit_seeds();
    image_seeds();
    stream_seeds();
    npy_seeds();
    cache_seeds();
    checkpoint_seeds();
    config_seeds();
    return 0;
}
