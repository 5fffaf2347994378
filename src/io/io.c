/* io.c: whole-file reading with transparent gunzip (zlib), the IDX format of
 * MNIST-style data sets, and NumPy .npy arrays (written as version 1.0, read
 * as 1.0 or 2.0; any numeric dtype is read, see the format description in
 * numpy/lib/format.py). Readers check every header field against the bytes
 * actually present before allocating or trusting it; every message names the
 * path and, for format errors, the byte offset. */
#include "io/io.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <zlib.h>

#include "base/base.h"

/* Arrays are written and read in host order, labelled '<f4'/'<i4'. */
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "io.c assumes a little-endian host"
#endif

/* Inflates the gzip member(s) in[0..n) into a new buffer of at most max
 * bytes. Bytes after the last member that are not another gzip member are
 * ignored, as gzip -d and zcat do. */
static int gunzip(const char *path, const uint8_t *in, size_t n, uint8_t **out, size_t *outlen, size_t max) {
    /* The trailer's ISIZE (size mod 2^32) is a good first guess; one spare
     * byte lets inflate report the end without another round, and output
     * reaching max + 1 bytes is how "too large" shows. */
    size_t limit = max < SIZE_MAX ? max + 1 : SIZE_MAX;
    size_t cap = n >= 18 ? (size_t)in[n - 4] | (size_t)in[n - 3] << 8 | (size_t)in[n - 2] << 16 | (size_t)in[n - 1] << 24 : 0;
    if (cap > n * 1032) cap = n * 1032; /* deflate's ratio is at most ~1032:1 */
    cap = cap < 64 ? 64 : cap < limit ? cap + 1 : limit;
    uint8_t *buf = malloc(cap);
    if (!buf) return asym_fail("%s: out of memory for %zu bytes", path, cap);
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) {
        free(buf);
        return asym_fail("%s: zlib initialization failed", path);
    }
    size_t total = 0, left = n;
    const uint8_t *p = in;
    const char *err = NULL;
    for (;;) {
        if (total == cap) {
            if (cap >= limit) {
                inflateEnd(&zs);
                free(buf);
                return asym_fail("%s: larger than %zu bytes", path, max);
            }
            size_t nc = cap <= limit / 2 ? cap * 2 : limit;
            uint8_t *nb = realloc(buf, nc);
            if (!nb) { err = "out of memory"; break; }
            buf = nb;
            cap = nc;
        }
        uInt in_n = left > UINT_MAX ? UINT_MAX : (uInt)left;
        uInt out_n = cap - total > UINT_MAX ? UINT_MAX : (uInt)(cap - total);
        zs.next_in = (Bytef *)p;
        zs.avail_in = in_n;
        zs.next_out = buf + total;
        zs.avail_out = out_n;
        int ret = inflate(&zs, Z_NO_FLUSH);
        p += in_n - zs.avail_in;
        left -= in_n - zs.avail_in;
        total += out_n - zs.avail_out;
        if (ret == Z_STREAM_END) {
            if (left >= 2 && p[0] == 0x1f && p[1] == 0x8b && inflateReset(&zs) == Z_OK) continue;
            break;
        }
        if (ret == Z_DATA_ERROR || ret == Z_NEED_DICT) { err = zs.msg ? zs.msg : "invalid stream"; break; }
        if (ret == Z_MEM_ERROR) { err = "out of memory"; break; }
        if (ret != Z_OK && ret != Z_BUF_ERROR) { err = "inflate failed"; break; }
        if (left == 0 && total < cap) { err = "unexpected end of stream (truncated?)"; break; }
    }
    if (!err && total > max) {
        inflateEnd(&zs);
        free(buf);
        return asym_fail("%s: larger than %zu bytes", path, max);
    }
    if (err) {
        asym_fail("%s: corrupt gzip data: %s (after %zu bytes of output)", path, err, total);
        inflateEnd(&zs);
        free(buf);
        return ASYM_ERR;
    }
    inflateEnd(&zs);
    *out = buf;
    *outlen = total;
    return ASYM_OK;
}

int io_read_all(const char *path, uint8_t **data, size_t *len, size_t max) {
    return io_read_file(path, data, len, max, 1);
}

int io_read_file(const char *path, uint8_t **data, size_t *len, size_t max, int gz) {
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return asym_fail("%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return asym_fail("%s: not a regular file", path);
    }
    if ((uintmax_t)st.st_size > max) {
        fclose(f);
        return asym_fail("%s: larger than %zu bytes", path, max);
    }
    size_t n = (size_t)st.st_size;
    uint8_t *raw = malloc(n ? n : 1);
    if (!raw) {
        fclose(f);
        return asym_fail("%s: out of memory for %zu bytes", path, n);
    }
    size_t got = fread(raw, 1, n, f);
    int rerr = ferror(f);
    fclose(f);
    if (got != n) {
        free(raw);
        return asym_fail("%s: read %zu of %zu bytes: %s", path, got, n, rerr ? strerror(errno) : "file shrank");
    }
    if (gz && n >= 2 && raw[0] == 0x1f && raw[1] == 0x8b) {
        int rc = gunzip(path, raw, n, data, len, max);
        free(raw);
        return rc;
    }
    *data = raw;
    *len = n;
    return ASYM_OK;
}

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int idx_parse(const char *path, const uint8_t *data, size_t len, int *ndim, uint32_t dims[4], const uint8_t **payload) {
    /* Header: 00 00 type ndim, then ndim big-endian uint32 sizes. */
    if (len < 4) return asym_fail("%s: offset 0: file holds %zu bytes, too short for an IDX header", path, len);
    if (data[0] != 0 || data[1] != 0) return asym_fail("%s: offset 0: bad IDX magic 0x%08x", path, be32(data));
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
        dims[i] = be32(data + 4 + 4 * i);
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

/* ---- .npy ---- */

int io_mkdir_p(const char *dir) {
    char p[4096];
    if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p) return asym_fail("%s: path too long", dir);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = 0;
        if (mkdir(p, 0755) != 0 && errno != EEXIST) return asym_fail("%s: cannot create: %s", p, strerror(errno));
        *s = '/';
    }
    if (mkdir(p, 0755) != 0 && errno != EEXIST) return asym_fail("%s: cannot create: %s", p, strerror(errno));
    return ASYM_OK;
}

int io_write_atomic(const char *path, const void *const *parts, const size_t *lens, int n) {
    char tmp[4400];
    /* per process, so that runs sharing a folder (a cache) do not collide */
    if (snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int)getpid()) >= (int)sizeof tmp) return asym_fail("%s: path too long", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return asym_fail("%s: cannot create: %s", tmp, strerror(errno));
    int ok = 1;
    for (int i = 0; i < n && ok; i++) ok = lens[i] == 0 || fwrite(parts[i], 1, lens[i], f) == lens[i];
    int err = errno;
    if (ok && (fflush(f) != 0 || fsync(fileno(f)) != 0)) ok = 0, err = errno;
    if (fclose(f) != 0 && ok) ok = 0, err = errno;
    if (ok && rename(tmp, path) != 0) ok = 0, err = errno;
    if (!ok) {
        remove(tmp);
        return asym_fail("%s: write failed: %s", path, strerror(err));
    }
    return ASYM_OK;
}

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

int npy_open(const char *path, NpyArray *a, FILE **fp) {
    memset(a, 0, sizeof *a);
    *fp = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return asym_fail("%s: cannot open: %s", path, strerror(errno));
    char *h = NULL;
    struct stat st;
    uint8_t pre[12];
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        asym_fail("%s: not a regular file", path);
        goto fail;
    }
    size_t fsize = (size_t)st.st_size;
    if (fsize < 10 || fread(pre, 1, 10, f) != 10) {
        asym_fail("%s: offset 0: %zu bytes, too short for a .npy header", path, fsize);
        goto fail;
    }
    if (memcmp(pre, "\x93NUMPY", 6)) {
        asym_fail("%s: offset 0: not a .npy file (bad magic)", path);
        goto fail;
    }
    size_t hlen, off;
    if (pre[6] == 1) {
        hlen = pre[8] | (size_t)pre[9] << 8;
        off = 10;
    } else if (pre[6] == 2) {
        if (fsize < 12 || fread(pre + 10, 1, 2, f) != 2) {
            asym_fail("%s: offset 10: truncated .npy header", path);
            goto fail;
        }
        hlen = pre[8] | (size_t)pre[9] << 8 | (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
        off = 12;
    } else {
        asym_fail("%s: offset 6: unsupported .npy version %d.%d (1.0 and 2.0 are read)", path, pre[6], pre[7]);
        goto fail;
    }
    if (hlen > fsize - off || hlen > (1u << 20)) {
        asym_fail("%s: offset 8: header length %zu does not fit the file of %zu bytes", path, hlen, fsize);
        goto fail;
    }
    h = malloc(hlen + 1);
    if (!h) {
        asym_fail("%s: out of memory", path);
        goto fail;
    }
    if (fread(h, 1, hlen, f) != hlen) {
        asym_fail("%s: read error in the header", path);
        goto fail;
    }
    h[hlen] = 0;
    Lex l = {path, h, h, h + hlen, off};
    char descr[16];
    if (npy_parse_header(&l, descr, sizeof descr, &a->ndim, a->shape) || npy_dtype(path, descr, a)) goto fail;
    size_t count = 1;
    for (int i = 0; i < a->ndim; i++) {
        if (a->shape[i] && count > SIZE_MAX / (size_t)a->size / (uint64_t)a->shape[i]) {
            asym_fail("%s: shape too large", path);
            goto fail;
        }
        count *= (size_t)a->shape[i];
    }
    size_t held = fsize - off - hlen, need = count * (size_t)a->size;
    if (need != held) {
        asym_fail("%s: offset %zu: shape needs %zu bytes of data but the file holds %zu (%s)", path, off + hlen, need,
                  held, need > held ? "truncated?" : "trailing bytes?");
        goto fail;
    }
    a->count = count;
    a->offset = off + hlen;
    free(h);
    *fp = f;
    return ASYM_OK;
fail:
    fclose(f);
    free(h);
    memset(a, 0, sizeof *a);
    return ASYM_ERR;
}

/* Element i of a chunk of raw npy data as a double. */
static double npy_elem(const NpyArray *a, const uint8_t *p) {
    uint8_t b[8];
    memcpy(b, p, (size_t)a->size);
    if (a->swap)
        for (int i = 0; i < a->size / 2; i++) {
            uint8_t t = b[i];
            b[i] = b[a->size - 1 - i];
            b[a->size - 1 - i] = t;
        }
    switch (a->kind) {
    case 'f':
        if (a->size == 4) {
            float v;
            memcpy(&v, b, 4);
            return v;
        } else {
            double v;
            memcpy(&v, b, 8);
            return v;
        }
    case 'i': {
        if (a->size == 1) return (int8_t)b[0];
        if (a->size == 2) { int16_t v; memcpy(&v, b, 2); return v; }
        if (a->size == 4) { int32_t v; memcpy(&v, b, 4); return v; }
        int64_t v;
        memcpy(&v, b, 8);
        return (double)v;
    }
    default: { /* 'u', 'b' */
        if (a->size == 1) return b[0];
        if (a->size == 2) { uint16_t v; memcpy(&v, b, 2); return v; }
        if (a->size == 4) { uint32_t v; memcpy(&v, b, 4); return v; }
        uint64_t v;
        memcpy(&v, b, 8);
        return (double)v;
    }
    }
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
