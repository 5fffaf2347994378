/* idx.c: MNIST-format IDX files (LeCun et al., the layout described on the
 * MNIST database's page; Fashion-MNIST uses the same files), raw or gzip.
 * A file is a header (00 00 type ndim, then ndim big-endian uint32 sizes)
 * and the data; only unsigned bytes are read. The header is checked
 * against the bytes present and every message names the path and the byte
 * offset. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "asymbp.h"
#include "data/data.h"
#include "io/io.h"
#include "base/base.h"

int idx_parse(const char *path, const uint8_t *data, size_t len, int *ndim, uint32_t dims[4], const uint8_t **payload) {
    if (len < 4) return asym_fail("%s: offset 0: file holds %zu bytes, too short for an IDX header", path, len);
    if (data[0] != 0 || data[1] != 0) return asym_fail("%s: offset 0: bad IDX magic 0x%08x", path, io_be32(data));
    if (data[2] != 0x08)
        return asym_fail("%s: offset 2: unsupported IDX data type 0x%02x (only 0x08, unsigned byte)", path, data[2]);
    int nd = data[3];
    if (nd < 1 || nd > 4) return asym_fail("%s: offset 3: IDX dimension count %d not in 1..4", path, nd);
    size_t hdr = 4 + 4 * (size_t)nd;
    if (len < hdr)
        return asym_fail("%s: offset 4: header of %zu bytes but the file holds %zu (truncated?)", path, hdr, len);
    char desc[96];
    int dl = 0, zero = 0;
    uint64_t prod = 1, overflow = 0;
    for (int i = 0; i < nd; i++) {
        dims[i] = io_be32(data + 4 + 4 * i);
        dl += snprintf(desc + dl, sizeof desc - dl, "%s%u", i ? " x " : "", dims[i]);
        if (dims[i] == 0) zero = 1;
        else if (prod > UINT64_MAX / dims[i]) overflow = 1;
        else prod *= dims[i];
    }
    if (zero) prod = 0;
    else if (overflow) return asym_fail("%s: offset 4: dimensions %s overflow 64 bits", path, desc);
    size_t held = len - hdr;
    if (prod != held)
        return asym_fail("%s: offset %zu: header claims %s = %llu bytes of data but the file holds %zu (%s)", path, hdr,
                         desc, (unsigned long long)prod, held, prod > held ? "truncated?" : "trailing bytes?");
    *ndim = nd;
    *payload = data + hdr;
    return ASYM_OK;
}

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

/* The labels file's header against the images file's (n, h, w). */
static int idx_check(const char *ipath, const uint32_t idim[4], const char *lpath, int lnd, const uint32_t ldim[4]) {
    if (lnd != 1) return asym_fail("%s: labels file has %d dimensions, expected 1", lpath, lnd);
    if (ldim[0] != idim[0]) return asym_fail("%s: labels file holds %u labels but images file %s %u images", lpath, ldim[0], ipath, idim[0]);
    if (!idim[0] || !idim[1] || !idim[2]) return asym_fail("%s: no images (%u x %u x %u)", ipath, idim[0], idim[1], idim[2]);
    return ASYM_OK;
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
        idx_parse(lpath, lb, llen, &lnd, ldim, &lab) || idx_check(ipath, idim, lpath, lnd, ldim))
        goto done;
    size_t n = idim[0], hw = (size_t)idim[1] * idim[2];
    if (data_alloc(d, ipath, n, 1, (int)idim[1], (int)idim[2], 10)) goto done;
    for (size_t i = 0; i < n * hw; i++) d->x[i] = pix[i] / 255.0f;
    int maxl = 0;
    for (size_t i = 0; i < n; i++) {
        d->y[i] = lab[i];
        if (lab[i] > maxl) maxl = lab[i];
    }
    d->classes = maxl < 10 ? 10 : maxl + 1; /* MNIST-style sets have 10 classes */
    rc = ASYM_OK;
done:
    free(ib);
    free(lb);
    if (rc) asym_dataset_free(d);
    return rc;
}

