/* cifar.c: CIFAR-10 and CIFAR-100, binary versions (Krizhevsky, 2009,
 * "Learning multiple layers of features from tiny images"; the layout is
 * the one described on the data sets' page under "Binary version"). A file
 * is a sequence of fixed-size records with no header:
 *   CIFAR-10:  <1 x label><3072 x pixel>
 *   CIFAR-100: <1 x coarse label><1 x fine label><3072 x pixel>
 * where the pixels are the 32 x 32 red plane, then green, then blue, each
 * row-major. With no header, the checks are the file size (a whole number
 * of records) and every label's range. */
#include <stdlib.h>
#include <string.h>

#include "asymbp.h"
#include "data/data.h"
#include "io/io.h"
#include "base/base.h"

#define CIFAR_PIX 3072

static const char *const C10_TRAIN[] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
                                        "data_batch_5.bin", NULL};
static const char *const C10_TEST[] = {"test_batch.bin", NULL};
static const char *const C100_TRAIN[] = {"train.bin", NULL};
static const char *const C100_TEST[] = {"test.bin", NULL};

/* Checks and decodes len bytes of records into x/y, which must hold
 * len / record images. */
static int cifar_decode(const char *path, const uint8_t *buf, size_t len, int hundred, int coarse, float *x, int32_t *y) {
    size_t rec = CIFAR_PIX + (hundred ? 2 : 1);
    const char *name = hundred ? "CIFAR-100" : "CIFAR-10";
    if (len == 0) return asym_fail("%s: empty file (expected %s records of %zu bytes)", path, name, rec);
    if (len % rec) {
        /* A pickled file (the "python version") starts with the pickle
         * protocol byte 0x80; say so rather than only "wrong size". */
        if (buf[0] == 0x80)
            return asym_fail("%s: offset 0: looks like a Python pickle (the python version); asymbp reads the binary version", path);
        return asym_fail("%s: %zu bytes is not a whole number of %zu-byte %s records (the last one has %zu bytes: truncated?)", path,
                         len, rec, name, len % rec);
    }
    size_t n = len / rec;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *r = buf + i * rec;
        int label;
        if (hundred) {
            if (r[0] >= 20)
                return asym_fail("%s: offset %zu: record %zu: coarse label %d out of range (CIFAR-100 has 20 superclasses)", path,
                                 i * rec, i, r[0]);
            if (r[1] >= 100)
                return asym_fail("%s: offset %zu: record %zu: fine label %d out of range (CIFAR-100 has 100 classes)", path,
                                 i * rec + 1, i, r[1]);
            label = coarse ? r[0] : r[1];
        } else {
            if (r[0] >= 10)
                return asym_fail("%s: offset %zu: record %zu: label %d out of range (CIFAR-10 has 10 classes)", path, i * rec, i,
                                 r[0]);
            label = r[0];
        }
        y[i] = label;
        const uint8_t *p = r + rec - CIFAR_PIX;
        float *o = x + i * CIFAR_PIX;
        for (int k = 0; k < CIFAR_PIX; k++) o[k] = p[k] / 255.0f;
    }
    return ASYM_OK;
}

int asym_dataset_load_cifar(AsymDataset *d, const char *dir, int hundred, int coarse, int train) {
    memset(d, 0, sizeof *d);
    const char *const *names = hundred ? (train ? C100_TRAIN : C100_TEST) : (train ? C10_TRAIN : C10_TEST);
    size_t rec = CIFAR_PIX + (hundred ? 2 : 1), sizes[5], total = 0;
    char path[4096];
    int nf = 0;
    /* Every file is sized up first, so one allocation holds them all and a
     * broken file fails before any memory is spent. */
    for (; names[nf]; nf++) {
        if (data_join(path, sizeof path, dir, names[nf])) return ASYM_ERR;
        if (!data_exists(path, NULL, 0))
            return asym_fail("%s: no %s (the %s binary version has %s)", dir, names[nf], hundred ? "CIFAR-100" : "CIFAR-10",
                             hundred ? "train.bin and test.bin" : "data_batch_1.bin .. data_batch_5.bin and test_batch.bin");
        if (data_file_size(path, &sizes[nf])) return ASYM_ERR;
        if (sizes[nf] == 0 || sizes[nf] % rec) {
            uint8_t first = 0;
            FILE *f = fopen(path, "rb");
            if (f) {
                if (fread(&first, 1, 1, f) != 1) first = 0;
                fclose(f);
            }
            return cifar_decode(path, &first, sizes[nf], hundred, coarse, NULL, NULL);
        }
        total += sizes[nf] / rec;
    }
    if (data_alloc(d, dir, total, 3, 32, 32, hundred ? (coarse ? 20 : 100) : 10)) return ASYM_ERR;
    size_t at = 0;
    for (int i = 0; i < nf; i++) {
        uint8_t *buf;
        size_t len;
        data_join(path, sizeof path, dir, names[i]);
        /* The size found above is the limit: a file that grew or shrank
         * since is an error, not a partial read. */
        if (io_read_file(path, &buf, &len, sizes[i], 0)) goto fail;
        if (len != sizes[i]) {
            free(buf);
            asym_fail("%s: changed size while being read (%zu, then %zu bytes)", path, sizes[i], len);
            goto fail;
        }
        int rc = cifar_decode(path, buf, len, hundred, coarse, d->x + at * CIFAR_PIX, d->y + at);
        free(buf);
        if (rc) goto fail;
        at += len / rec;
    }
    return ASYM_OK;
fail:
    asym_dataset_free(d);
    return ASYM_ERR;
}
