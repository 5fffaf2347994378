/* devkit.c: the ILSVRC2012 development kit's class table. Its validation
 * labels (data/ILSVRC2012_validation_ground_truth.txt) are ILSVRC2012_IDs,
 * 1 to 1000, whose order is not the WNIDs' name order the class folders
 * have; data/meta.mat maps them: a MATLAB MAT 5 file whose variable
 * `synsets` is a struct array with, among others, the fields
 * ILSVRC2012_ID (a number) and WNID (a char array).
 *
 * The file is read here, not by libmatio: matio trusts the sizes in a
 * file's headers (svhn.c) and a struct array is a tree of variables, so
 * every element is walked with its bounds checked (MAT-File Format,
 * MathWorks, "Data element format", "miMATRIX format" and "Compressed
 * data"): each must end within its parent, a compressed variable is
 * inflated once into at most DEVKIT_MAX bytes (zlib checks its checksum),
 * and the IDs must be whole numbers from 1 with no ID twice. MAT 7.3 files
 * (HDF5) are refused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "asymbp.h"
#include "data/data.h"
#include "io/io.h"

#define DEVKIT_MAX ((size_t)1 << 28)  /* meta.mat inflated: 256 MB at most (the real one: under 2 MB) */
#define DEVKIT_IDS (DEVKIT_TABLE - 1)  /* the largest ILSVRC2012_ID taken */

enum { MX_CHAR = 4, MX_STRUCT = 2 };

/* Element i of numeric data of type t at p, as a double. */
static double num_at(const Mat5 *m, const uint8_t *p, uint32_t t, size_t i) {
    uint8_t b[8];
    int s = mat5_type_size(t);
    for (int k = 0; k < s; k++) b[k] = p[i * s + (m->swap ? s - 1 - k : k)];
    union { uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; uint32_t u32; int32_t i32; float f; double d; uint64_t u64; int64_t i64; } v;
    memcpy(&v, b, s);
    switch (t) {
    case MI_INT8: return v.i8;
    case MI_UINT8: case MI_UTF8: return v.u8;
    case MI_INT16: return v.i16;
    case MI_UINT16: case MI_UTF16: return v.u16;
    case MI_INT32: return v.i32;
    case MI_UINT32: case MI_UTF32: return v.u32;
    case MI_SINGLE: return v.f;
    case MI_DOUBLE: return v.d;
    case MI_INT64: return (double)v.i64;
    default: return (double)v.u64;
    }
}

/* A variable: the content [at, end) of a miMATRIX element. */
typedef struct Var {
    uint32_t cls;
    size_t elems;          /* product of the dimensions */
    size_t after_name;     /* where the content after the array name starts */
} Var;

static int var_head(const Mat5 *m, const uint8_t *buf, size_t at, size_t end, Var *v) {
    uint32_t t;
    size_t d, n, next;
    if (mat5_elem(m, buf, at, end, &t, &d, &n, &next)) return ASYM_ERR;
    if (t != MI_UINT32 || n != 8) return asym_fail("%s: offset %zu: a variable without array flags", m->path, at);
    uint32_t flags = mat5_u32(m, buf + d);
    v->cls = flags & 0xff;
    if (flags & 0x800) return asym_fail("%s: offset %zu: a complex variable (meta.mat's are real)", m->path, d);
    at = next;
    if (mat5_elem(m, buf, at, end, &t, &d, &n, &next)) return ASYM_ERR;
    if (t != MI_INT32 || n % 4 || n < 8 || n > 128) return asym_fail("%s: offset %zu: bad dimensions (type %u, %zu bytes)", m->path, at, t, n);
    v->elems = 1;
    for (size_t i = 0; i < n; i += 4) {
        int32_t k = (int32_t)mat5_u32(m, buf + d + i);
        if (k < 0 || (k && v->elems > DEVKIT_MAX / (size_t)k)) return asym_fail("%s: offset %zu: dimension %d out of range", m->path, d + i, k);
        v->elems *= (size_t)k;
    }
    at = next;
    if (mat5_elem(m, buf, at, end, &t, &d, &n, &next)) return ASYM_ERR; /* the array name */
    if (t != MI_INT8 && t != MI_UINT8) return asym_fail("%s: offset %zu: bad array name (type %u)", m->path, at, t);
    v->after_name = next;
    return ASYM_OK;
}

/* The single number of a numeric variable [at, end): *ok 0 when it is not one. */
static int var_number(const Mat5 *m, const uint8_t *buf, size_t at, size_t end, double *x, int *ok) {
    Var v;
    uint32_t t;
    size_t d, n, next;
    *ok = 0;
    if (var_head(m, buf, at, end, &v)) return ASYM_ERR;
    if (v.cls < 6 || v.cls > 15 || v.elems != 1) return ASYM_OK;
    if (mat5_elem(m, buf, v.after_name, end, &t, &d, &n, &next)) return ASYM_ERR;
    if (!mat5_type_size(t) || n != (size_t)mat5_type_size(t)) return asym_fail("%s: offset %zu: a number of %zu bytes of type %u", m->path, v.after_name, n, t);
    *x = num_at(m, buf + d, t, 0), *ok = 1;
    return ASYM_OK;
}

/* The text of a char variable [at, end) into out (ASCII; anything else
 * refused); *ok 0 when it is not a char variable. */
static int var_text(const Mat5 *m, const uint8_t *buf, size_t at, size_t end, char *out, size_t cap, int *ok) {
    Var v;
    uint32_t t;
    size_t d, n, next;
    *ok = 0;
    if (var_head(m, buf, at, end, &v)) return ASYM_ERR;
    if (v.cls != MX_CHAR) return ASYM_OK;
    if (v.elems >= cap) return asym_fail("%s: offset %zu: a text of %zu characters where a WNID is expected", m->path, at, v.elems);
    if (mat5_elem(m, buf, v.after_name, end, &t, &d, &n, &next)) return ASYM_ERR;
    int s = mat5_type_size(t);
    if (!s || s == 8 || n != v.elems * (size_t)s) return asym_fail("%s: offset %zu: %zu bytes of type %u for %zu characters", m->path, v.after_name, n, t, v.elems);
    for (size_t i = 0; i < v.elems; i++) {
        double c = num_at(m, buf + d, t, i);
        if (c < 33 || c > 126) return asym_fail("%s: offset %zu: a WNID with the character %g", m->path, d, c);
        out[i] = (char)c;
    }
    out[v.elems] = 0, *ok = 1;
    return ASYM_OK;
}

/* The struct array `synsets` [at, end) into the table wnid[1..max]. */
static int synsets(const Mat5 *m, const uint8_t *buf, size_t at, size_t end, char ***wnid, int *max) {
    Var v;
    uint32_t t;
    size_t d, n, next;
    if (var_head(m, buf, at, end, &v)) return ASYM_ERR;
    if (v.cls != MX_STRUCT) return asym_fail("%s: synsets is not a struct array (MATLAB class %u)", m->path, v.cls);
    at = v.after_name;
    if (mat5_elem(m, buf, at, end, &t, &d, &n, &next)) return ASYM_ERR;
    uint32_t flen = n == 4 ? (mat5_u32(m, buf + d)) : 0;
    if (t != MI_INT32 || n != 4 || flen < 1 || flen > 64) return asym_fail("%s: offset %zu: bad field name length", m->path, at);
    at = next;
    if (mat5_elem(m, buf, at, end, &t, &d, &n, &next)) return ASYM_ERR;
    if ((t != MI_INT8 && t != MI_UINT8) || n % flen || !n) return asym_fail("%s: offset %zu: bad field names", m->path, at);
    int nf = (int)(n / flen), f_id = -1, f_wnid = -1;
    for (int f = 0; f < nf; f++) {
        const char *name = (const char *)buf + d + (size_t)f * flen;
        if (!strncmp(name, "ILSVRC2012_ID", flen)) f_id = f;
        if (!strncmp(name, "WNID", flen)) f_wnid = f;
    }
    if (f_id < 0 || f_wnid < 0) return asym_fail("%s: synsets lacks the field %s", m->path, f_id < 0 ? "ILSVRC2012_ID" : "WNID");
    at = next;
    if (v.elems > DEVKIT_IDS * 10) return asym_fail("%s: %zu synsets", m->path, v.elems);
    char **tab = calloc(DEVKIT_IDS + 1, sizeof *tab);
    if (!tab) return asym_fail("out of memory");
    int hi = 0, rc = ASYM_OK;
    for (size_t e = 0; !rc && e < v.elems; e++) {
        double id = 0;
        char w[64] = "";
        int have_id = 0, have_w = 0;
        for (int f = 0; !rc && f < nf; f++) {
            size_t fd, fn, fnext;
            if ((rc = mat5_elem(m, buf, at, end, &t, &fd, &fn, &fnext))) break;
            if (t != MI_MATRIX) rc = asym_fail("%s: offset %zu: a struct field that is not a variable (type %u)", m->path, at, t);
            else if (fn && f == f_id) rc = var_number(m, buf, fd, fd + fn, &id, &have_id);
            else if (fn && f == f_wnid) rc = var_text(m, buf, fd, fd + fn, w, sizeof w, &have_w);
            at = fnext;
        }
        if (rc) break;
        if (!have_id || !have_w) rc = asym_fail("%s: synset %zu has no %s", m->path, e + 1, have_id ? "WNID text" : "numeric ILSVRC2012_ID");
        else if (!(id >= 1 && id <= DEVKIT_IDS) || id != (double)(int)id) rc = asym_fail("%s: synset %zu (%s): ILSVRC2012_ID %g is not a whole number from 1", m->path, e + 1, w, id);
        else if (tab[(int)id]) rc = asym_fail("%s: ILSVRC2012_ID %d twice (%s and %s)", m->path, (int)id, tab[(int)id], w);
        else if (!(tab[(int)id] = strdup(w))) rc = asym_fail("out of memory");
        if (!rc && (int)id > hi) hi = (int)id;
    }
    if (rc) {
        asym_data_names_free(tab, DEVKIT_IDS + 1);
        return ASYM_ERR;
    }
    *wnid = tab, *max = hi;
    return ASYM_OK;
}

/* A compressed variable (data [d, d + n)) inflated into *out (*len bytes). */
static int inflate_var(const Mat5 *m, const uint8_t *buf, size_t d, size_t n, uint8_t **out, size_t *len) {
    size_t cap = n * 4 + 4096 < DEVKIT_MAX ? n * 4 + 4096 : DEVKIT_MAX;
    uint8_t *o = malloc(cap);
    z_stream z;
    memset(&z, 0, sizeof z);
    if (!o || inflateInit(&z) != Z_OK) return free(o), asym_fail("out of memory");
    z.next_in = (Bytef *)(buf + d), z.avail_in = (uInt)n;
    int zr = Z_OK;
    while (zr == Z_OK) {
        if (z.total_out == cap) {
            if (cap == DEVKIT_MAX) break;
            size_t nc = cap * 2 < DEVKIT_MAX ? cap * 2 : DEVKIT_MAX;
            uint8_t *p = realloc(o, nc);
            if (!p) break;
            o = p, cap = nc;
        }
        z.next_out = o + z.total_out, z.avail_out = (uInt)(cap - z.total_out);
        zr = inflate(&z, Z_NO_FLUSH);
    }
    *len = z.total_out;
    inflateEnd(&z);
    if (zr != Z_STREAM_END) {
        free(o);
        return asym_fail("%s: offset %zu: a compressed variable that does not inflate (%s)", m->path, d,
                         zr == Z_OK || zr == Z_BUF_ERROR ? "truncated, or larger than 256 MB" : "corrupt data or checksum");
    }
    *out = o;
    return ASYM_OK;
}

int devkit_wnids(const char *path, char ***wnid, int *max) {
    uint8_t *buf;
    size_t len;
    *wnid = NULL, *max = 0;
    if (io_read_file(path, &buf, &len, DEVKIT_MAX, 0)) return ASYM_ERR;
    Mat5 m = {.path = path, .avail = SIZE_MAX};
    int rc = mat5_header(path, buf, len, &m.swap), found = 0;
    if (!rc) {
        for (size_t at = 128; !rc && !found && at < len;) {
            uint32_t t;
            size_t d, n, next;
            if ((rc = mat5_elem(&m, buf, at, len, &t, &d, &n, &next))) break;
            uint8_t *in = buf, *z = NULL;
            size_t zd = d, zn = n;
            if (t == MI_COMPRESSED) {
                next = d + n; /* a compressed element is not padded to 8 bytes */
                size_t zlen = 0, zd2, zn2, znext;
                if ((rc = inflate_var(&m, buf, d, n, &z, &zlen))) break;
                /* a compressed variable holds one miMATRIX element (its offsets: inflated bytes) */
                if ((rc = mat5_elem(&m, z, 0, zlen, &t, &zd2, &zn2, &znext))) { free(z); break; }
                in = z, zd = zd2, zn = zn2;
            }
            if (t == MI_MATRIX && zn) {
                Var v;
                uint32_t nt;
                size_t nd, nn, nnext;
                /* the variable's name: its third sub-element */
                if (!(rc = var_head(&m, in, zd, zd + zn, &v))) {
                    size_t a = zd, dd, dn, dnext;
                    uint32_t dt;
                    for (int k = 0; !rc && k < 2; k++) rc = mat5_elem(&m, in, a, zd + zn, &dt, &dd, &dn, &dnext), a = dnext;
                    if (!rc && !(rc = mat5_elem(&m, in, a, zd + zn, &nt, &nd, &nn, &nnext)) && nn == 7 && !memcmp(in + nd, "synsets", 7)) {
                        found = 1;
                        rc = synsets(&m, in, zd, zd + zn, wnid, max);
                    }
                }
            }
            free(z);
            at = next;
        }
        if (!rc && !found) rc = asym_fail("%s: no variable named synsets (the ILSVRC2012 devkit's data/meta.mat has one)", path);
    }
    free(buf);
    return rc;
}
