/* checkpoint.c: the checkpoint file format (docs/CHECKPOINT.md), a list of
 * named, typed arrays behind a magic number, a format version, the file's
 * length and a CRC-32 (zlib), written through io_write_atomic (temporary
 * file, fsync, rename) so that a crash leaves the previous checkpoint whole.
 * The reader checks the length and checksum before anything else, then
 * every record header against the bytes present; export writes every array
 * as a NumPy .npy file with a JSON manifest. What the library stores in a
 * checkpoint is in state.c. */
#include "io/checkpoint.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "io/io.h"
#include "base/base.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "checkpoint.c assumes a little-endian host"
#endif

static const char MAGIC[8] = {'A', 'S', 'Y', 'M', 'C', 'K', 'P', 'T'};
#define HEADER 24                  /* magic, version, record count, file length */
#define MIN_RECORD 5               /* name length, a 1-byte name, type, ndim */
#define MAX_FILE ((size_t)1 << 40)

static const struct {
    const char *name, *npy;
    size_t size;
} TYPES[CKPT_TYPE_COUNT] = {
    [CKPT_F32] = {"float32", "<f4", 4}, [CKPT_F64] = {"float64", "<f8", 8}, [CKPT_I32] = {"int32", "<i4", 4},
    [CKPT_I64] = {"int64", "<i8", 8},   [CKPT_U64] = {"uint64", "<u8", 8},  [CKPT_TEXT] = {"text", NULL, 1},
};

size_t ckpt_type_size(CkptType t) { return t > 0 && t < CKPT_TYPE_COUNT ? TYPES[t].size : 0; }
const char *ckpt_type_name(CkptType t) { return t > 0 && t < CKPT_TYPE_COUNT ? TYPES[t].name : "?"; }

int ckpt_name_ok(const char *name, size_t n) {
    if (n == 0 || n > CKPT_MAX_NAME || name[0] == '/' || name[0] == '.') return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '/')) return 0;
    }
    return 1;
}

/* ---- writing ---- */

typedef struct Put {
    char name[CKPT_MAX_NAME + 1];
    uint8_t head[2 + CKPT_MAX_NAME + 2 + 8 * CKPT_MAX_DIMS]; /* the record header as stored */
    size_t head_len, bytes;
    const void *data;   /* NULL: the bytes are in small */
    uint8_t small[64];
} Put;

struct CkptWriter {
    Put *puts;
    int n, cap, failed;
};

CkptWriter *ckpt_writer_new(void) { return asym_calloc(1, sizeof(CkptWriter)); }

void ckpt_writer_free(CkptWriter *w) {
    if (!w) return;
    free(w->puts);
    free(w);
}

void ckpt_put(CkptWriter *w, const char *name, CkptType type, int ndim, const int64_t *dims, const void *data) {
    if (!w || w->failed) return;
    size_t nl = strlen(name), count = 1;
    if (!ckpt_name_ok(name, nl) || ckpt_type_size(type) == 0 || ndim < 0 || ndim > CKPT_MAX_DIMS) {
        w->failed = asym_fail("checkpoint: bad record '%s'", name);
        return;
    }
    for (int i = 0; i < ndim; i++) count *= (size_t)dims[i];
    if (w->n == w->cap) {
        int nc = w->cap ? 2 * w->cap : 64;
        Put *p = realloc(w->puts, sizeof(Put) * nc);
        if (!p) {
            w->failed = asym_fail("checkpoint: out of memory");
            return;
        }
        w->puts = p;
        w->cap = nc;
    }
    Put *p = &w->puts[w->n++];
    memcpy(p->name, name, nl + 1);
    uint16_t l16 = (uint16_t)nl;
    uint8_t *h = p->head;
    memcpy(h, &l16, 2);
    memcpy(h + 2, name, nl);
    h[2 + nl] = (uint8_t)type;
    h[3 + nl] = (uint8_t)ndim;
    for (int i = 0; i < ndim; i++) {
        uint64_t d = (uint64_t)dims[i];
        memcpy(h + 4 + nl + 8 * i, &d, 8);
    }
    p->head_len = 4 + nl + 8 * (size_t)ndim;
    p->bytes = count * ckpt_type_size(type);
    p->data = data;
    if (p->bytes <= sizeof p->small) {
        if (p->bytes) memcpy(p->small, data, p->bytes);
        p->data = NULL;
    }
}

void ckpt_put_text(CkptWriter *w, const char *name, const char *text, size_t len) {
    int64_t d = (int64_t)len;
    ckpt_put(w, name, CKPT_TEXT, 1, &d, text ? text : "");
}

void ckpt_put_i64(CkptWriter *w, const char *name, int64_t v) { ckpt_put(w, name, CKPT_I64, 0, NULL, &v); }
void ckpt_put_u64(CkptWriter *w, const char *name, uint64_t v) { ckpt_put(w, name, CKPT_U64, 0, NULL, &v); }

void ckpt_put_f64(CkptWriter *w, const char *name, const double *v, int n) {
    int64_t d = n;
    ckpt_put(w, name, CKPT_F64, 1, &d, v);
}

int ckpt_write(CkptWriter *w, const char *path) {
    if (!w) return ASYM_ERR;
    if (w->failed) {
        ckpt_writer_free(w);
        return ASYM_ERR;
    }
    int np = 2 + 2 * w->n;
    const void **parts = asym_calloc(np, sizeof(void *));
    size_t *lens = asym_calloc(np, sizeof(size_t));
    if (!parts || !lens) {
        free(parts);
        free(lens);
        ckpt_writer_free(w);
        return ASYM_ERR;
    }
    uint8_t header[HEADER];
    uint32_t version = ASYM_CHECKPOINT_VERSION, count = (uint32_t)w->n, crc;
    uint64_t total = HEADER + 4;
    for (int i = 0; i < w->n; i++) total += w->puts[i].head_len + w->puts[i].bytes;
    memcpy(header, MAGIC, 8);
    memcpy(header + 8, &version, 4);
    memcpy(header + 12, &count, 4);
    memcpy(header + 16, &total, 8);
    int k = 0;
    parts[k] = header, lens[k++] = HEADER;
    for (int i = 0; i < w->n; i++) {
        Put *p = &w->puts[i];
        parts[k] = p->head, lens[k++] = p->head_len;
        parts[k] = p->data ? p->data : p->small, lens[k++] = p->bytes;
    }
    uLong c = crc32_z(0, NULL, 0);
    for (int i = 0; i < k; i++) c = crc32_z(c, parts[i], lens[i]);
    crc = (uint32_t)c;
    parts[k] = &crc, lens[k++] = 4;
    int rc = io_write_atomic(path, parts, lens, k);
    free(parts);
    free(lens);
    ckpt_writer_free(w);
    return rc;
}

/* ---- reading ---- */

static int ckpt_fail(const char *path, size_t off, const char *what) {
    return asym_fail("%s: byte %zu: %s", path, off, what);
}

static int by_name(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* Names must be unique: sorted, equal ones are neighbours. */
static int duplicate_name(const AsymCheckpoint *ck) {
    const char **names = asym_calloc(ck->n ? ck->n : 1, sizeof(char *));
    if (!names) return ASYM_ERR;
    for (int i = 0; i < ck->n; i++) names[i] = ck->rec[i].name;
    qsort(names, ck->n, sizeof(char *), by_name);
    int rc = ASYM_OK;
    for (int i = 1; i < ck->n && !rc; i++)
        if (!strcmp(names[i - 1], names[i])) rc = asym_fail("%s: record '%s' appears twice", ck->path, names[i]);
    free(names);
    return rc;
}

/* The checks on the whole file: length, magic, stated length, checksum,
 * version; the record count into count. */
static int check_file(AsymCheckpoint *ck, const char *path, const uint8_t *buf, size_t len, uint32_t *count) {
    uint64_t stated;
    uint32_t crc;
    if (len < HEADER + 4) return asym_fail("%s: %zu bytes, too short to be a checkpoint (truncated?)", path, len);
    if (memcmp(buf, MAGIC, 8)) return asym_fail("%s: not an asymbp checkpoint (bad magic number)", path);
    memcpy(&stated, buf + 16, 8);
    if (stated != len)
        return asym_fail("%s: %zu bytes, but its header says %llu: %s", path, len, (unsigned long long)stated,
                         stated > len ? "truncated (an interrupted copy?)" : "corrupted or with trailing bytes");
    memcpy(&crc, buf + len - 4, 4);
    if ((uint32_t)crc32_z(crc32_z(0, NULL, 0), buf, len - 4) != crc) return asym_fail("%s: checksum mismatch: the file is corrupted", path);
    memcpy(&ck->version, buf + 8, 4);
    if (ck->version != ASYM_CHECKPOINT_VERSION)
        return asym_fail("%s: checkpoint format version %u; this asymbp (%s) reads version %d", path, ck->version, ASYM_VERSION, ASYM_CHECKPOINT_VERSION);
    memcpy(count, buf + 12, 4);
    if (*count > (len - 4 - HEADER) / MIN_RECORD) return ckpt_fail(path, 12, "record count larger than the file can hold");
    return ASYM_OK;
}

/* Where the record reader stands: the file, its next byte (off) before the
 * CRC (end), and where the next name or text is copied to. */
typedef struct Reader {
    const char *path;
    const uint8_t *buf;
    size_t off, end;
    char *s;
} Reader;

static int past_end(const Reader *rd, int rec) {
    return asym_fail("%s: byte %zu: record %d runs past the end of the file", rd->path, rd->off, rec);
}

/* Record rec's name, copied out. */
static int read_name(Reader *rd, CkptRecord *r, int rec) {
    uint16_t nl;
    if (rd->end - rd->off < 4) return past_end(rd, rec);
    memcpy(&nl, rd->buf + rd->off, 2);
    if (nl > rd->end - rd->off - 4) return past_end(rd, rec);
    if (!ckpt_name_ok((const char *)rd->buf + rd->off + 2, nl))
        return ckpt_fail(rd->path, rd->off, "record name empty, too long, or not [A-Za-z0-9_][A-Za-z0-9._/]*");
    memcpy(rd->s, rd->buf + rd->off + 2, nl);
    rd->s[nl] = 0;
    r->name = rd->s;
    rd->s += nl + 1;
    rd->off += 2 + nl;
    return ASYM_OK;
}

/* Record rec's type, dimension count and dimensions, each checked against
 * the bytes left; the element count into r->count. */
static int read_shape(Reader *rd, CkptRecord *r, int rec) {
    r->type = (CkptType)rd->buf[rd->off];
    r->ndim = rd->buf[rd->off + 1];
    if (ckpt_type_size(r->type) == 0) return ckpt_fail(rd->path, rd->off, "unknown record type");
    if (r->ndim > CKPT_MAX_DIMS || (r->type == CKPT_TEXT && r->ndim != 1)) return ckpt_fail(rd->path, rd->off + 1, "bad dimension count");
    rd->off += 2;
    if ((rd->end - rd->off) / 8 < (size_t)r->ndim) return past_end(rd, rec);
    size_t n = 1, room = (rd->end - rd->off - 8 * (size_t)r->ndim) / ckpt_type_size(r->type);
    for (int d = 0; d < r->ndim; d++) {
        uint64_t v;
        memcpy(&v, rd->buf + rd->off + 8 * d, 8);
        if (v > (uint64_t)INT64_MAX || (v && n > room / v)) return ckpt_fail(rd->path, rd->off + 8 * d, "dimension larger than the file can hold");
        r->dims[d] = (int64_t)v;
        n *= (size_t)v;
    }
    rd->off += 8 * (size_t)r->ndim;
    if (n > room) return past_end(rd, rec); /* a scalar (no dimensions) needs its one element too */
    r->count = n;
    return ASYM_OK;
}

/* Record rec: its header, then its data, left in the buffer (a text is
 * copied out with its NUL). */
static int read_record(Reader *rd, CkptRecord *r, int rec) {
    if (read_name(rd, r, rec) || read_shape(rd, r, rec)) return ASYM_ERR;
    r->data = rd->buf + rd->off;
    rd->off += r->count * ckpt_type_size(r->type);
    if (r->type == CKPT_TEXT) {
        memcpy(rd->s, r->data, r->count);
        rd->s[r->count] = 0;
        r->text = rd->s;
        rd->s += r->count + 1;
    }
    return ASYM_OK;
}

int ckpt_parse(AsymCheckpoint *ck, const char *path, uint8_t *buf, size_t len) {
    memset(ck, 0, sizeof *ck);
    uint32_t count = 0;
    Reader rd = {.path = path, .buf = buf, .off = HEADER, .end = len - 4};
    if (check_file(ck, path, buf, len, &count)) goto fail;
    ck->rec = asym_calloc(count ? count : 1, sizeof(CkptRecord));
    /* every name and text with its NUL fits in len bytes: each record has 4
     * header bytes that are not copied, for at most 2 NULs */
    rd.s = ck->strings = malloc(len + count + 1);
    if (!ck->rec || !rd.s) {
        asym_fail("%s: out of memory", path);
        goto fail;
    }
    for (uint32_t i = 0; i < count; i++, ck->n++)
        if (read_record(&rd, &ck->rec[i], ck->n)) goto fail;
    if (rd.off != rd.end) {
        ckpt_fail(path, rd.off, "bytes after the last record");
        goto fail;
    }
    snprintf(ck->path, sizeof ck->path, "%s", path);
    if (duplicate_name(ck)) goto fail;
    ck->buf = buf;
    ck->len = len;
    return ASYM_OK;
fail:
    free(ck->rec);
    free(ck->strings);
    free(buf);
    memset(ck, 0, sizeof *ck);
    return ASYM_ERR;
}

int asym_checkpoint_open(AsymCheckpoint **out, const char *path) {
    *out = NULL;
    uint8_t *buf;
    size_t len;
    if (io_read_file(path, &buf, &len, MAX_FILE, 0)) return ASYM_ERR;
    AsymCheckpoint *ck = asym_calloc(1, sizeof *ck);
    if (!ck) {
        free(buf);
        return ASYM_ERR;
    }
    if (ckpt_parse(ck, path, buf, len)) {
        free(ck);
        return ASYM_ERR;
    }
    *out = ck;
    return ASYM_OK;
}

void asym_checkpoint_close(AsymCheckpoint *ck) {
    if (!ck) return;
    free(ck->buf);
    free(ck->rec);
    free(ck->strings);
    free(ck);
}

const CkptRecord *ckpt_find(const AsymCheckpoint *ck, const char *name) {
    for (int i = 0; i < ck->n; i++)
        if (!strcmp(ck->rec[i].name, name)) return &ck->rec[i];
    return NULL;
}

const char *asym_checkpoint_text(const AsymCheckpoint *ck, const char *name) {
    const CkptRecord *r = ckpt_find(ck, name);
    return r && r->type == CKPT_TEXT ? r->text : NULL;
}

int asym_checkpoint_int(const AsymCheckpoint *ck, const char *name, int64_t *v) {
    const CkptRecord *r = ckpt_find(ck, name);
    if (!r || r->ndim != 0 || (r->type != CKPT_I64 && r->type != CKPT_U64)) return asym_fail("%s: no integer record '%s'", ck->path, name);
    memcpy(v, r->data, 8);
    return ASYM_OK;
}

/* ---- export ---- */

static void json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

/* A scalar's value as JSON. */
static void json_scalar(FILE *f, const CkptRecord *r) {
    union {
        float f32;
        double f64;
        int32_t i32;
        int64_t i64;
        uint64_t u64;
    } v = {0};
    memcpy(&v, r->data, ckpt_type_size(r->type));
    double d = 0;
    switch (r->type) {
    case CKPT_I32: fprintf(f, "%d", v.i32); return;
    case CKPT_I64: fprintf(f, "%lld", (long long)v.i64); return;
    case CKPT_U64: fprintf(f, "%llu", (unsigned long long)v.u64); return;
    case CKPT_F32: d = v.f32; break;
    default: d = v.f64; break;
    }
    if (isfinite(d)) fprintf(f, "%.17g", d);
    else fprintf(f, "null");
}

int asym_checkpoint_export(const AsymCheckpoint *ck, const char *dir) {
    if (io_mkdir_p(dir)) return ASYM_ERR;
    char *text = NULL;
    size_t text_len = 0;
    FILE *m = open_memstream(&text, &text_len);
    if (!m) return asym_fail("out of memory");
    fprintf(m, "{\n  \"format\": \"asymbp checkpoint\",\n  \"version\": %u,\n  \"checkpoint\": ", ck->version);
    json_str(m, ck->path);
    fprintf(m, ",\n  \"records\": [\n");
    int rc = ASYM_OK;
    for (int i = 0; i < ck->n && !rc; i++) {
        const CkptRecord *r = &ck->rec[i];
        char file[CKPT_MAX_NAME + 8], path[4400];
        /* names hold no '-' (ckpt_name_ok), so this is one to one and stays in dir */
        size_t k = 0;
        for (const char *s = r->name; *s; s++) file[k++] = *s == '/' ? '-' : *s;
        const char *ext = r->type != CKPT_TEXT ? ".npy" : !strcmp(r->name, "config") ? ".yaml" : !strcmp(r->name, "log") ? ".jsonl" : ".txt";
        snprintf(file + k, sizeof file - k, "%s", ext);
        snprintf(path, sizeof path, "%s/%s", dir, file);
        fprintf(m, "    {\"name\": \"%s\", \"dtype\": \"%s\", \"file\": \"%s\", \"shape\": [", r->name, TYPES[r->type].name, file);
        for (int d = 0; d < r->ndim; d++) fprintf(m, "%s%lld", d ? ", " : "", (long long)r->dims[d]);
        fprintf(m, "]");
        if (r->ndim == 0) {
            fprintf(m, ", \"value\": ");
            json_scalar(m, r);
        }
        fprintf(m, "}%s\n", i + 1 < ck->n ? "," : "");
        if (r->type == CKPT_TEXT) rc = io_write_atomic(path, (const void *[]){r->data}, &r->count, 1);
        else rc = npy_write_typed(path, TYPES[r->type].npy, TYPES[r->type].size, r->data, r->ndim, r->dims);
    }
    fprintf(m, "  ]\n}\n");
    if (fclose(m) != 0) {
        free(text);
        return asym_fail("out of memory");
    }
    if (!rc) {
        char path[4400];
        snprintf(path, sizeof path, "%s/manifest.json", dir);
        rc = io_write_atomic(path, (const void *[]){text}, &text_len, 1);
    }
    free(text);
    return rc;
}
