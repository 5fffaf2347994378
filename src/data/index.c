/* index.c: an image index (imagenet.c) in a file and back. The layout,
 * little-endian: "ASYMIDX1", the listing's stamp (u64), n, classes,
 * files (u32 each), the class names and the file paths (u32 length, then
 * the bytes), per sample file (u32), offset and size (u64) and label
 * (i32), and a CRC-32 of everything before it. Reading checks every count
 * against the bytes left, every file number and label against its range
 * and the CRC: a cache is never trusted blindly. */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "asymbp.h"
#include "data/data.h"
#include "io/io.h"

#define INDEX_MAGIC "ASYMIDX1"

/* A growing byte buffer; a failed allocation sticks (ok = 0). */
typedef struct Buf {
    uint8_t *p;
    size_t n, cap;
    int ok;
} Buf;

static void put(Buf *b, const void *v, size_t n) {
    if (!b->ok) return;
    if (b->n + n > b->cap) {
        size_t c = (b->n + n) * 2;
        uint8_t *q = realloc(b->p, c);
        if (!q) {
            b->ok = 0;
            return;
        }
        b->p = q, b->cap = c;
    }
    memcpy(b->p + b->n, v, n);
    b->n += n;
}

static void put_u32(Buf *b, uint32_t v) { put(b, &v, 4); }

static void put_strs(Buf *b, char *const *v, int n) {
    for (int i = 0; i < n; i++) {
        uint32_t l = (uint32_t)strlen(v[i]);
        put_u32(b, l);
        put(b, v[i], l);
    }
}

int image_index_write(const char *path, const ImageIndex *ix) {
    Buf b = {.ok = 1};
    size_t n = (size_t)ix->n;
    put(&b, INDEX_MAGIC, 8);
    put(&b, &ix->stamp, 8);
    put_u32(&b, (uint32_t)ix->n), put_u32(&b, (uint32_t)ix->classes), put_u32(&b, (uint32_t)ix->n_files);
    put_strs(&b, ix->names, ix->classes);
    put_strs(&b, ix->files, ix->n_files);
    put(&b, ix->file, 4 * n), put(&b, ix->off, 8 * n), put(&b, ix->size, 8 * n), put(&b, ix->y, 4 * n);
    uint32_t crc = b.ok ? (uint32_t)crc32_z(0, b.p, b.n) : 0;
    put_u32(&b, crc);
    if (!b.ok) {
        free(b.p);
        return asym_fail("%s: out of memory", path);
    }
    const void *parts[1] = {b.p};
    size_t lens[1] = {b.n};
    int rc = io_write_atomic(path, parts, lens, 1);
    free(b.p);
    return rc;
}

/* A reader over the file's bytes: every take checks what is left. */
typedef struct Rd {
    const uint8_t *p;
    size_t n, at;
} Rd;

static int take(Rd *r, void *out, size_t n) {
    if (n > r->n - r->at) return ASYM_ERR;
    memcpy(out, r->p + r->at, n);
    r->at += n;
    return ASYM_OK;
}

static int take_strs(Rd *r, char ***out, int n) {
    if (!(*out = calloc(n ? (size_t)n : 1, sizeof **out))) return ASYM_ERR;
    for (int i = 0; i < n; i++) {
        uint32_t l;
        if (take(r, &l, 4) || l > 65536 || l > r->n - r->at || !((*out)[i] = malloc(l + 1))) return ASYM_ERR;
        take(r, (*out)[i], l);
        (*out)[i][l] = 0;
        if (memchr((*out)[i], 0, l)) return ASYM_ERR;
    }
    return ASYM_OK;
}

static int parse(const char *path, Rd *r, uint64_t stamp, ImageIndex *ix) {
    char magic[8];
    uint32_t v[3], crc;
    if (r->n < 12 || take(r, magic, 8) || memcmp(magic, INDEX_MAGIC, 8)) return asym_fail("%s: not an index file", path);
    memcpy(&crc, r->p + r->n - 4, 4);
    if (crc != (uint32_t)crc32_z(0, r->p, r->n - 4)) return asym_fail("%s: CRC mismatch (damaged)", path);
    r->n -= 4;
    if (take(r, &ix->stamp, 8) || take(r, v, 12)) return asym_fail("%s: truncated", path);
    if (ix->stamp != stamp) return asym_fail("%s: the folders or shards changed since it was written", path);
    if (v[0] > (1u << 30) || v[1] < 1 || v[1] > (1u << 20) || v[2] < 1 || v[2] > (1u << 30)) return asym_fail("%s: implausible counts", path);
    ix->classes = (int)v[1];
    if (take_strs(r, &ix->names, ix->classes)) return asym_fail("%s: bad class names", path);
    ix->n_files = (int)v[2];
    if (take_strs(r, &ix->files, ix->n_files)) return asym_fail("%s: bad file names", path);
    size_t n = v[0];
    if (r->n - r->at != 24 * n) return asym_fail("%s: %zu bytes of samples for %zu of them", path, r->n - r->at, n);
    ix->n = (int)n;
    ix->file = malloc(4 * n + 1), ix->off = malloc(8 * n + 1), ix->size = malloc(8 * n + 1), ix->y = malloc(4 * n + 1);
    if (!ix->file || !ix->off || !ix->size || !ix->y) return asym_fail("out of memory");
    take(r, ix->file, 4 * n), take(r, ix->off, 8 * n), take(r, ix->size, 8 * n), take(r, ix->y, 4 * n);
    for (size_t i = 0; i < n; i++)
        if (ix->file[i] >= v[2] || ix->y[i] < 0 || ix->y[i] >= ix->classes) return asym_fail("%s: sample %zu out of range", path, i);
    return ASYM_OK;
}

int image_index_read(const char *path, uint64_t stamp, ImageIndex *ix) {
    uint8_t *buf;
    size_t len;
    memset(ix, 0, sizeof *ix);
    if (io_read_file(path, &buf, &len, (size_t)1 << 34, 0)) return ASYM_ERR;
    Rd r = {buf, len, 0};
    int rc = parse(path, &r, stamp, ix);
    free(buf);
    if (rc) {
        /* names were counted as allocated: free what was set */
        ImageIndex t = *ix;
        image_index_free(&t);
        memset(ix, 0, sizeof *ix);
    }
    return rc;
}
