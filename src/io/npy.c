/* npy.c: NumPy .npy arrays, written as version 1.0 and read as 1.0 or 2.0;
 * any numeric dtype is read (see the format description in
 * numpy/lib/format.py). The reader checks every header field against the
 * bytes actually present before allocating or trusting it; every message
 * names the path and, for format errors, the byte offset. */
#include "io/io.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/base.h"

/* Arrays are written and read in host order, labelled '<f4'/'<i4'. */
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "npy.c assumes a little-endian host"
#endif

int npy_write_typed(const char *path, const char *descr, size_t elem, const void *data, int ndim, const int64_t *shape) {
    if (ndim < 0 || ndim > 8) return asym_fail("%s: cannot write %d dimensions (0..8)", path, ndim);
    /* Magic (6) + version (2) + length (2) + dict padded with spaces and a
     * newline so that data starts at a multiple of 64 bytes. */
    char hdr[512];
    int h = snprintf(hdr, sizeof hdr, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    size_t count = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return asym_fail("%s: negative dimension %lld", path, (long long)shape[i]);
        if (shape[i] && count > SIZE_MAX / elem / (uint64_t)shape[i])
            return asym_fail("%s: shape too large", path);
        count *= (size_t)shape[i];
        h += snprintf(hdr + h, sizeof hdr - h, "%s%lld", i ? ", " : "", (long long)shape[i]);
    }
    h += snprintf(hdr + h, sizeof hdr - h, "%s), }", ndim == 1 ? "," : "");
    int total = (10 + h + 1 + 63) / 64 * 64;
    memset(hdr + h, ' ', total - 10 - h);
    hdr[total - 10 - 1] = '\n';
    int hlen = total - 10;
    uint8_t pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (uint8_t)(hlen & 0xff), (uint8_t)(hlen >> 8)};

    const void *parts[3] = {pre, hdr, data};
    size_t lens[3] = {10, (size_t)hlen, count * elem};
    return io_write_atomic(path, parts, lens, 3);
}

int npy_write_f32(const char *path, const float *data, int ndim, const int64_t *shape) {
    return npy_write_typed(path, "<f4", 4, data, ndim, shape);
}

int npy_write_i32(const char *path, const int32_t *data, int ndim, const int64_t *shape) {
    return npy_write_typed(path, "<i4", 4, data, ndim, shape);
}

/* A cursor over the header dict, a Python literal such as
 * {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } */
typedef struct {
    const char *path, *s, *p, *end;
    size_t base; /* file offset of s[0] */
} Lex;

static int lex_fail(Lex *l, const char *what, const char *arg) {
    return asym_fail("%s: offset %zu: .npy header: %s%s", l->path, l->base + (size_t)(l->p - l->s), what, arg);
}

static void lex_ws(Lex *l) {
    while (l->p < l->end && isspace((unsigned char)*l->p)) l->p++;
}

static int lex_char(Lex *l, char c) {
    lex_ws(l);
    if (l->p < l->end && *l->p == c) {
        l->p++;
        return 1;
    }
    return 0;
}

static int lex_string(Lex *l, char *out, size_t cap) {
    lex_ws(l);
    if (l->p >= l->end || (*l->p != '\'' && *l->p != '"')) return lex_fail(l, "expected a quoted string", "");
    char q = *l->p++;
    size_t n = 0;
    while (l->p < l->end && *l->p != q) {
        if (*l->p == '\\' || n + 1 >= cap) return lex_fail(l, "unexpected string", "");
        out[n++] = *l->p++;
    }
    if (l->p >= l->end) return lex_fail(l, "unterminated string", "");
    l->p++;
    out[n] = 0;
    return ASYM_OK;
}

static int lex_shape(Lex *l, int *ndim, int64_t shape[8]) {
    if (!lex_char(l, '(')) return lex_fail(l, "expected '(' for the shape", "");
    int n = 0;
    while (!lex_char(l, ')')) {
        lex_ws(l);
        if (l->p >= l->end || !isdigit((unsigned char)*l->p)) return lex_fail(l, "expected a non-negative integer", "");
        if (n == 8) return lex_fail(l, "more than 8 dimensions", "");
        int64_t v = 0;
        while (l->p < l->end && isdigit((unsigned char)*l->p)) {
            if (v > (INT64_MAX - 9) / 10) return lex_fail(l, "dimension too large", "");
            v = v * 10 + (*l->p++ - '0');
        }
        if (l->p < l->end && *l->p == 'L') l->p++; /* Python 2's long suffix */
        shape[n++] = v;
        if (!lex_char(l, ',')) {
            if (!lex_char(l, ')')) return lex_fail(l, "expected ',' or ')' in the shape", "");
            break;
        }
    }
    *ndim = n;
    return ASYM_OK;
}

/* The dtype string: byte order ('<', '>', '|' or '='), kind and size. */
static int npy_dtype(const char *path, const char *descr, NpyArray *a) {
    char order = descr[0], kind = order ? descr[1] : 0;
    int size = 0;
    if (kind && descr[2] >= '1' && descr[2] <= '8' && !descr[3]) size = descr[2] - '0';
    int ok = (order == '<' || order == '>' || order == '|' || order == '=') &&
             ((kind == 'f' && (size == 4 || size == 8)) || ((kind == 'i' || kind == 'u') && (size == 1 || size == 2 || size == 4 || size == 8)) ||
              (kind == 'b' && size == 1));
    if (!ok)
        return asym_fail("%s: dtype '%s' not supported (numeric arrays only: float32/64, int and uint 8 to 64 bits, bool)", path, descr);
    a->kind = kind;
    a->size = size;
    a->swap = order == '>' && size > 1; /* this host is little-endian */
    snprintf(a->descr, sizeof a->descr, "%s", descr);
    return ASYM_OK;
}

static int npy_parse_header(Lex *l, char *descr, size_t dcap, int *ndim, int64_t shape[8]) {
    int have_descr = 0, have_order = 0, have_shape = 0;
    if (!lex_char(l, '{')) return lex_fail(l, "expected '{'", "");
    while (!lex_char(l, '}')) {
        char key[32];
        if (lex_string(l, key, sizeof key)) return ASYM_ERR;
        if (!lex_char(l, ':')) return lex_fail(l, "expected ':' after key ", key);
        if (!strcmp(key, "descr") && !have_descr++) {
            /* Structured dtypes are lists; only plain type strings are read. */
            if (lex_string(l, descr, dcap)) return ASYM_ERR;
        } else if (!strcmp(key, "fortran_order") && !have_order++) {
            lex_ws(l);
            if (l->end - l->p >= 5 && !memcmp(l->p, "False", 5)) l->p += 5;
            else if (l->end - l->p >= 4 && !memcmp(l->p, "True", 4))
                return asym_fail("%s: fortran_order True not supported (only C order)", l->path);
            else return lex_fail(l, "expected True or False", "");
        } else if (!strcmp(key, "shape") && !have_shape++) {
            if (lex_shape(l, ndim, shape)) return ASYM_ERR;
        } else {
            return lex_fail(l, "unknown or repeated key ", key);
        }
        if (!lex_char(l, ',')) {
            if (!lex_char(l, '}')) return lex_fail(l, "expected ',' or '}'", "");
            break;
        }
    }
    lex_ws(l);
    if (l->p != l->end) return lex_fail(l, "unexpected text after the dict", "");
    if (!have_descr || !have_order || !have_shape)
        return asym_fail("%s: .npy header lacks '%s'", l->path, !have_descr ? "descr" : !have_order ? "fortran_order" : "shape");
    return ASYM_OK;
}

/* The header of the open file f of fsize bytes into a, checked against
 * the bytes present. */
static int npy_header(const char *path, FILE *f, size_t fsize, NpyArray *a) {
    uint8_t pre[12];
    if (fsize < 10 || fread(pre, 1, 10, f) != 10) return asym_fail("%s: offset 0: %zu bytes, too short for a .npy header", path, fsize);
    if (memcmp(pre, "\x93NUMPY", 6)) return asym_fail("%s: offset 0: not a .npy file (bad magic)", path);
    size_t hlen, off;
    if (pre[6] == 1) {
        hlen = io_le16(pre + 8);
        off = 10;
    } else if (pre[6] == 2) {
        if (fsize < 12 || fread(pre + 10, 1, 2, f) != 2) return asym_fail("%s: offset 10: truncated .npy header", path);
        hlen = io_le32(pre + 8);
        off = 12;
    } else {
        return asym_fail("%s: offset 6: unsupported .npy version %d.%d (1.0 and 2.0 are read)", path, pre[6], pre[7]);
    }
    if (hlen > fsize - off || hlen > (1u << 20))
        return asym_fail("%s: offset 8: header length %zu does not fit the file of %zu bytes", path, hlen, fsize);
    char *h = malloc(hlen + 1), descr[16];
    if (!h) return asym_fail("%s: out of memory", path);
    int rc = fread(h, 1, hlen, f) != hlen ? asym_fail("%s: read error in the header", path) : ASYM_OK;
    h[hlen] = 0;
    Lex l = {path, h, h, h + hlen, off};
    if (!rc) rc = npy_parse_header(&l, descr, sizeof descr, &a->ndim, a->shape) || npy_dtype(path, descr, a);
    free(h);
    if (rc) return ASYM_ERR;
    size_t count = 1;
    for (int i = 0; i < a->ndim; i++) {
        if (a->shape[i] && count > SIZE_MAX / (size_t)a->size / (uint64_t)a->shape[i]) return asym_fail("%s: shape too large", path);
        count *= (size_t)a->shape[i];
    }
    size_t held = fsize - off - hlen, need = count * (size_t)a->size;
    if (need != held)
        return asym_fail("%s: offset %zu: shape needs %zu bytes of data but the file holds %zu (%s)", path, off + hlen, need, held,
                         need > held ? "truncated?" : "trailing bytes?");
    a->count = count;
    a->offset = off + hlen;
    return ASYM_OK;
}

int npy_open(const char *path, NpyArray *a, FILE **fp) {
    memset(a, 0, sizeof *a);
    *fp = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return asym_fail("%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    int rc = fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) ? asym_fail("%s: not a regular file", path)
                                                                 : npy_header(path, f, (size_t)st.st_size, a);
    if (rc) {
        fclose(f);
        memset(a, 0, sizeof *a);
        return ASYM_ERR;
    }
    *fp = f;
    return ASYM_OK;
}

double npy_elem(const NpyArray *a, const uint8_t *p) {
    uint64_t u = 0; /* the bytes as a little-endian unsigned integer */
    for (int i = 0; i < a->size; i++) u |= (uint64_t)p[a->swap ? a->size - 1 - i : i] << (8 * i);
    if (a->kind == 'f' && a->size == 4) {
        float v;
        uint32_t u32 = (uint32_t)u;
        memcpy(&v, &u32, 4);
        return v;
    }
    if (a->kind == 'f') {
        double v;
        memcpy(&v, &u, 8);
        return v;
    }
    if (a->kind == 'i' && a->size < 8 && u >> (8 * a->size - 1)) return (double)(int64_t)(u | ~(uint64_t)0 << (8 * a->size));
    return a->kind == 'i' ? (double)(int64_t)u : (double)u; /* 'u', 'b' */
}

int npy_read_values(const char *path, const NpyArray *a, FILE *f, double scale, float *out) {
    /* Chunks of 64 KiB keep the memory beside out small for big files. */
    uint8_t buf[1 << 16];
    size_t per = sizeof buf / (size_t)a->size, done = 0;
    if (fseek(f, (long)a->offset, SEEK_SET) != 0) return asym_fail("%s: seek failed: %s", path, strerror(errno));
    while (done < a->count) {
        size_t k = a->count - done < per ? a->count - done : per;
        if (fread(buf, (size_t)a->size, k, f) != k)
            return asym_fail("%s: offset %zu: read error (file shrank?)", path, a->offset + done * (size_t)a->size);
        if (a->kind == 'f' && a->size == 4 && !a->swap && scale == 1) {
            memcpy(out + done, buf, k * 4);
        } else {
            for (size_t i = 0; i < k; i++) out[done + i] = (float)(npy_elem(a, buf + i * (size_t)a->size) * scale);
        }
        done += k;
    }
    return ASYM_OK;
}

int npy_read_f32(const char *path, float **data, int *ndim, int64_t shape[8]) {
    *data = NULL;
    *ndim = 0;
    NpyArray a;
    FILE *f;
    if (npy_open(path, &a, &f)) return ASYM_ERR;
    float *x = NULL;
    if (strcmp(a.descr, "<f4")) {
        asym_fail("%s: dtype '%s' not supported (only '<f4', little-endian float32)", path, a.descr);
        goto fail;
    }
    if (!(x = asym_falloc(a.count)) || npy_read_values(path, &a, f, 1, x)) goto fail;
    fclose(f);
    *data = x;
    *ndim = a.ndim;
    memcpy(shape, a.shape, sizeof a.shape);
    return ASYM_OK;
fail:
    fclose(f);
    free(x);
    return ASYM_ERR;
}
