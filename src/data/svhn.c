/* svhn.c: SVHN cropped digits (Netzer et al., 2011, "Reading digits in
 * natural images with unsupervised feature learning"), format 2:
 * train_32x32.mat and test_32x32.mat, MATLAB MAT-files holding
 *   X: uint8, 32 x 32 x 3 x N (row, column, channel, image; column-major)
 *   y: N x 1 labels 1..10, where 10 stands for the digit 0.
 * Read with libmatio (Debian's libmatio-dev). matio trusts the sizes in a
 * file's headers (fuzzing found it allocating gigabytes for a 6 KB file) and
 * does not check zlib checksums, so before matio sees a file, its 128-byte
 * MAT 5 header is checked and every variable is walked (MAT-File Format,
 * MathWorks, "Data element format" and "miMATRIX format"): each must end
 * within the file, be a real numeric array, and hold exactly its
 * dimensions' worth of data; compressed variables are inflated once for
 * that, which also checks their checksum (a corrupt stream would otherwise
 * read as pixels). Then X and y are checked (class, shape) before any data
 * is allocated or read. Data is read into zeroed buffers,
 * so nothing matio might leave unread is uninitialized memory; an unread
 * label stays 0, which is out of range and refused. Only MAT 5/7 files
 * are accepted: 7.3 files are HDF5, a much larger surface for hostile input. */
#include <errno.h>
#include <matio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "asymbp.h"
#include "data/data.h"
#include "io/io.h"
#include "base/base.h"

#define SVHN_PIX 3072
/* deflate expands at most ~1032:1, so a compressed variable of B bytes
 * needs at least B / 1032 bytes of file. */
#define DEFLATE_RATIO 1032

/* matio reports through a log function; its default one prints and, for
 * errors, aborts. This one keeps the last message for ours. */
static _Thread_local char mat_msg[256];
static void mat_log(int level, char *message) {
    (void)level;
    snprintf(mat_msg, sizeof mat_msg, "%s", message ? message : "");
}

static uint32_t rd32(const uint8_t *p, int swap) { return swap ? io_be32(p) : io_le32(p); }

/* The first bytes of a variable kept for its check: flags, dimensions,
 * name and the data tag come well within them. */
#define MAT_HEAD 4096

/* A variable (the content of a miMATRIX element: len bytes at file offset
 * base, the first avail in p) must be a real numeric array whose data is
 * exactly its dimensions' worth: what matio is then given to read. */
static int matrix_check(const char *path, size_t base, const uint8_t *p, size_t avail, size_t len, int swap) {
    Mat5 m = {.path = path, .swap = swap, .base = base, .avail = avail};
    uint32_t t;
    size_t d, n, at = 0;
    if (mat5_elem(&m, p, at, len, &t, &d, &n, &at)) return ASYM_ERR;
    if (t != 6 || n != 8 || d + 8 > avail) return asym_fail("%s: offset %zu: variable without array flags", path, base);
    uint32_t flags = mat5_u32(&m, p + d), cls = flags & 0xff;
    if (!(cls == 4 || (cls >= 6 && cls <= 15)))
        return asym_fail("%s: offset %zu: a variable of MATLAB class %u (cell, struct, object or sparse); SVHN files hold numeric arrays only",
                         path, base + d, cls);
    if (flags & 0x800) return asym_fail("%s: offset %zu: a complex variable; SVHN arrays are real", path, base + d);
    if (mat5_elem(&m, p, at, len, &t, &d, &n, &at)) return ASYM_ERR;
    if (t != 5 || n % 4 || n < 8 || n > 128 || d + n > avail)
        return asym_fail("%s: offset %zu: bad dimensions element (type %u, %zu bytes)", path, base + d, t, n);
    uint64_t elems = 1;
    for (size_t i = 0; i < n; i += 4) {
        int32_t v = (int32_t)mat5_u32(&m, p + d + i);
        if (v < 0) return asym_fail("%s: offset %zu: negative dimension %d", path, base + d + i, v);
        if (v && elems > UINT64_MAX / 8 / (uint64_t)v) return asym_fail("%s: offset %zu: dimensions overflow", path, base + d);
        elems *= (uint64_t)v;
    }
    if (mat5_elem(&m, p, at, len, &t, &d, &n, &at)) return ASYM_ERR;
    if (t != 1 || n < 1 || n > 255) return asym_fail("%s: offset %zu: bad variable name element (type %u, %zu bytes)", path, base + d, t, n);
    if (mat5_elem(&m, p, at, len, &t, &d, &n, &at)) return ASYM_ERR;
    int es = mat5_type_size(t);
    if (!es) return asym_fail("%s: offset %zu: data of type %u, not a numeric type", path, base + d, t);
    if ((uint64_t)n != elems * (uint64_t)es)
        return asym_fail("%s: offset %zu: %zu bytes of data for %llu elements of %d bytes", path, base + d, n, (unsigned long long)elems, es);
    size_t end = d + n;
    if (end > len || len - end >= 8) return asym_fail("%s: offset %zu: %zu unexpected bytes after the data", path, base + end, len - end);
    return ASYM_OK;
}

/* Inflates the compressed element of n bytes at the file's position to
 * its end: the zlib stream must end exactly there with a good checksum
 * (matio does not check), and hold one whole variable, which is checked. */
static int mat5_inflate_check(const char *path, FILE *f, size_t off, size_t n, int swap) {
    uint8_t in[1 << 15], out[1 << 15], *head = malloc(MAT_HEAD + 8);
    if (!head) return asym_fail("%s: out of memory", path);
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit(&z) != Z_OK) {
        free(head);
        return asym_fail("%s: zlib initialization failed", path);
    }
    size_t left = n, total = 0;
    int ret = Z_OK;
    while (ret != Z_STREAM_END) {
        if (z.avail_in == 0) {
            if (!left) break;
            size_t k = left < sizeof in ? left : sizeof in;
            if (fread(in, 1, k, f) != k) break;
            left -= k;
            z.next_in = in;
            z.avail_in = (uInt)k;
        }
        z.next_out = out;
        z.avail_out = sizeof out;
        ret = inflate(&z, Z_NO_FLUSH);
        size_t got = sizeof out - z.avail_out;
        if (total < MAT_HEAD + 8) memcpy(head + total, out, got < MAT_HEAD + 8 - total ? got : MAT_HEAD + 8 - total);
        total += got;
        if (ret != Z_OK && ret != Z_STREAM_END) {
            const char *why = ret == Z_DATA_ERROR ? (z.msg ? z.msg : "invalid data") : ret == Z_MEM_ERROR ? "out of memory" : "stream error";
            inflateEnd(&z);
            free(head);
            return asym_fail("%s: offset %zu: compressed element is corrupt: %s", path, off, why);
        }
    }
    inflateEnd(&z);
    int rc = ASYM_ERR;
    if (ret != Z_STREAM_END) asym_fail("%s: offset %zu: compressed element ends early (truncated?)", path, off);
    else if (left || z.avail_in) asym_fail("%s: offset %zu: bytes after the end of a compressed element", path, off);
    else if (total < 8 || rd32(head, swap) != 14) asym_fail("%s: offset %zu: compressed element does not hold a variable", path, off);
    else if ((uint64_t)rd32(head + 4, swap) + 8 > total || total - 8 - rd32(head + 4, swap) >= 8)
        asym_fail("%s: offset %zu: compressed variable of %u bytes inflates to %zu", path, off, rd32(head + 4, swap), total - 8);
    else rc = matrix_check(path, off + 8, head + 8, (total < MAT_HEAD + 8 ? total : MAT_HEAD + 8) - 8, rd32(head + 4, swap), swap);
    free(head);
    return rc;
}

/* The MAT 5 header and every top-level element of the open file f of size
 * bytes: each must end within the file and be a variable (plain or
 * compressed, whose zlib stream must inflate whole) of a real numeric
 * array whose data fits its dimensions. head: MAT_HEAD bytes of room. */
static int mat5_walk(const char *path, FILE *f, size_t size, uint8_t *head) {
    uint8_t h[128], tag[8];
    int swap;
    if (size < 128 || fread(h, 1, 128, f) != 128) return asym_fail("%s: %zu bytes, too short for a MAT-file header (128 bytes)", path, size);
    if (mat5_header(path, h, size, &swap)) return ASYM_ERR;
    for (size_t off = 128; off < size;) {
        if (size - off < 8 || fseek(f, (long)off, SEEK_SET) != 0 || fread(tag, 1, 8, f) != 8)
            return asym_fail("%s: offset %zu: truncated element tag (%zu bytes left; truncated?)", path, off, size - off);
        uint32_t type = rd32(tag, swap), nbytes = rd32(tag + 4, swap);
        if (type != 14 && type != 15)
            return asym_fail("%s: offset %zu: a top-level element of type %u (expected a variable: miMATRIX or miCOMPRESSED)", path, off, type);
        if (nbytes > size - off - 8)
            return asym_fail("%s: offset %zu: element of %u bytes runs past the end of the file (%zu bytes; truncated?)", path, off, nbytes, size);
        if (type == 15) {
            if (mat5_inflate_check(path, f, off, nbytes, swap)) return ASYM_ERR;
        } else {
            size_t k = nbytes < MAT_HEAD ? nbytes : MAT_HEAD;
            if (fread(head, 1, k, f) != k) return asym_fail("%s: offset %zu: read error", path, off + 8);
            if (matrix_check(path, off + 8, head, k, nbytes, swap)) return ASYM_ERR;
        }
        /* Uncompressed elements are padded to 8 bytes; the last one may
         * lack its padding. */
        size_t len = 8 + (size_t)nbytes;
        if (type != 15) len = (len + 7) & ~(size_t)7;
        off = len > size - off ? size : off + len;
    }
    return ASYM_OK;
}

static int mat5_check(const char *path) {
    size_t size;
    uint8_t *head = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return asym_fail("%s: cannot open: %s", path, strerror(errno));
    int rc = data_file_size(path, &size);
    if (!rc) rc = (head = malloc(MAT_HEAD)) ? mat5_walk(path, f, size, head) : asym_fail("%s: out of memory", path);
    free(head);
    fclose(f);
    return rc;
}

/* matio's classes by name, and the kind of number ('f', 'i', 'u') of the
 * numeric ones, as the .npy reader's dtypes have it. */
static const struct {
    const char *name;
    char kind;
} CLASSES[] = {
    [MAT_C_CELL] = {"cell", 0},       [MAT_C_STRUCT] = {"struct", 0},   [MAT_C_CHAR] = {"char", 0},
    [MAT_C_SPARSE] = {"sparse", 0},   [MAT_C_DOUBLE] = {"double", 'f'}, [MAT_C_SINGLE] = {"single", 'f'},
    [MAT_C_INT8] = {"int8", 'i'},     [MAT_C_UINT8] = {"uint8", 'u'},   [MAT_C_INT16] = {"int16", 'i'},
    [MAT_C_UINT16] = {"uint16", 'u'}, [MAT_C_INT32] = {"int32", 'i'},   [MAT_C_UINT32] = {"uint32", 'u'},
    [MAT_C_INT64] = {"int64", 'i'},   [MAT_C_UINT64] = {"uint64", 'u'},
};
enum { N_CLASSES = sizeof CLASSES / sizeof CLASSES[0] };

static const char *class_name(int c) { return c >= 0 && c < N_CLASSES && CLASSES[c].name ? CLASSES[c].name : "another class"; }

static int is_numeric(int c) { return c >= 0 && c < N_CLASSES && CLASSES[c].kind; }

/* X must be 32 x 32 x 3 x N uint8 and y N x 1 real numbers, within what
 * the file of fsize bytes can hold: checked before anything is read. */
static int svhn_check_vars(const char *path, size_t fsize, const matvar_t *xv, const matvar_t *yv, size_t *n_out, size_t *esz) {
    /* MATLAB drops a trailing 1, so N = 1 is 3-D. */
    size_t n = xv->rank == 4 ? xv->dims[3] : 1;
    if (xv->class_type != MAT_C_UINT8 || xv->isComplex || xv->isLogical)
        return asym_fail("%s: X is %s%s, expected uint8", path, xv->isComplex ? "complex " : "", xv->isLogical ? "logical" : class_name(xv->class_type));
    if ((xv->rank != 4 && xv->rank != 3) || xv->dims[0] != 32 || xv->dims[1] != 32 || xv->dims[2] != 3 || n == 0) {
        char desc[96] = "";
        for (int i = 0, l = 0; i < xv->rank && i < 6 && l < (int)sizeof desc; i++)
            l += snprintf(desc + l, sizeof desc - l, "%s%zu", i ? "x" : "", xv->dims[i]);
        return asym_fail("%s: X is %s%s, expected 32x32x3xN", path, desc, xv->rank > 6 ? "x..." : "");
    }
    /* matio reads with int counts; the bytes must also fit the file. */
    if (n > (size_t)0x7fffffff / SVHN_PIX ||
        n * SVHN_PIX > (xv->compression == MAT_COMPRESSION_NONE ? fsize : fsize * (size_t)DEFLATE_RATIO))
        return asym_fail("%s: X claims %zu images, more than the file of %zu bytes can hold", path, n, fsize);
    size_t ny = yv->rank >= 1 ? 1 : 0;
    for (int i = 0; i < yv->rank; i++) ny *= yv->dims[i];
    if (!is_numeric(yv->class_type) || yv->isComplex || yv->rank != 2 || (yv->dims[0] != 1 && yv->dims[1] != 1) || ny != n)
        return asym_fail("%s: y is %s%s with %zu entries, expected N x 1 real labels for the %zu images of X", path,
                         yv->isComplex ? "complex " : "", class_name(yv->class_type), ny, n);
    *esz = Mat_SizeOfClass(yv->class_type);
    if (*esz == 0 || n * *esz > (yv->compression == MAT_COMPRESSION_NONE ? fsize : fsize * (size_t)DEFLATE_RATIO))
        return asym_fail("%s: y claims %zu labels, more than the file of %zu bytes can hold", path, n, fsize);
    *n_out = n;
    return ASYM_OK;
}

/* The n images read into d: labels 1..10 (10 for the digit 0) of class
 * cls, pixels column-major (row, col, ch, image) to (image, ch, row, col). */
static int svhn_fill(AsymDataset *d, const char *path, const uint8_t *pix, const void *lab, int cls, size_t n) {
    NpyArray a = {.kind = CLASSES[cls].kind, .size = (int)Mat_SizeOfClass(cls)};
    if (data_alloc(d, path, n, 3, 32, 32, 10)) return ASYM_ERR;
    for (size_t i = 0; i < n; i++) {
        double v = npy_elem(&a, (const uint8_t *)lab + i * (size_t)a.size);
        if (!(v >= 1 && v <= 10) || v != (double)(int)v)
            return asym_fail("%s: y(%zu) = %g, expected a label 1..10 (10 for the digit 0)", path, i + 1, v);
        d->y[i] = (int)v == 10 ? 0 : (int)v;
    }
    for (size_t i = 0; i < n; i++) {
        const uint8_t *src = pix + i * SVHN_PIX;
        float *dst = d->x + i * SVHN_PIX;
        for (int ch = 0; ch < 3; ch++)
            for (int r = 0; r < 32; r++)
                for (int c = 0; c < 32; c++) dst[ch * 1024 + r * 32 + c] = src[r + 32 * c + 1024 * ch] / 255.0f;
    }
    return ASYM_OK;
}

/* Reads one .mat file into d. */
static int svhn_read(AsymDataset *d, const char *path) {
    memset(d, 0, sizeof *d);
    size_t fsize, n = 0, esz = 0;
    if (data_file_size(path, &fsize) || mat5_check(path)) return ASYM_ERR;
    Mat_LogInitFunc("asymbp", mat_log);
    mat_msg[0] = 0;
    mat_t *mat = Mat_Open(path, MAT_ACC_RDONLY);
    if (!mat) return asym_fail("%s: not a readable MAT-file%s%s", path, mat_msg[0] ? ": " : "", mat_msg);
    matvar_t *xv = NULL, *yv = NULL;
    uint8_t *pix = NULL;
    void *lab = NULL;
    int rc = ASYM_ERR;
    if (!(xv = Mat_VarReadInfo(mat, "X"))) {
        asym_fail("%s: no variable 'X' (SVHN cropped digits hold X, 32x32x3xN uint8, and y)", path);
    } else if (!(yv = Mat_VarReadInfo(mat, "y"))) {
        asym_fail("%s: no variable 'y' (SVHN cropped digits hold X and y, Nx1 labels)", path);
    } else if (!svhn_check_vars(path, fsize, xv, yv, &n, &esz)) {
        mat_msg[0] = 0;
        if (!(pix = calloc(n, SVHN_PIX)) || !(lab = calloc(n, esz)))
            asym_fail("%s: out of memory for %zu images", path, n);
        else if (Mat_VarReadDataLinear(mat, xv, pix, 0, 1, (int)(n * SVHN_PIX)) != 0)
            asym_fail("%s: cannot read X%s%s", path, mat_msg[0] ? ": " : "", mat_msg);
        else if (Mat_VarReadDataLinear(mat, yv, lab, 0, 1, (int)n) != 0)
            asym_fail("%s: cannot read y%s%s", path, mat_msg[0] ? ": " : "", mat_msg);
        else
            rc = svhn_fill(d, path, pix, lab, yv->class_type, n);
    }
    free(pix);
    free(lab);
    if (xv) Mat_VarFree(xv);
    if (yv) Mat_VarFree(yv);
    Mat_Close(mat);
    if (rc) asym_dataset_free(d);
    return rc;
}

int asym_dataset_load_svhn(AsymDataset *d, const char *path, int train) {
    memset(d, 0, sizeof *d);
    if (data_exists(path, NULL, 1)) {
        char p[4096];
        const char *name = train ? "train_32x32.mat" : "test_32x32.mat";
        if (data_join(p, sizeof p, path, name)) return ASYM_ERR;
        if (!data_exists(p, NULL, 0)) return asym_fail("%s: no %s (SVHN cropped digits: train_32x32.mat, test_32x32.mat)", path, name);
        return svhn_read(d, p);
    }
    return svhn_read(d, path);
}
