/* io.h: files as libasymbp reads and writes them (files.c: whole files,
 * gunzipped through zlib, and atomic writes) and NumPy .npy arrays (npy.c;
 * the data sets' readers are in src/data/). Every reader checks header
 * fields against the data actually present before allocating or trusting
 * them. */
#ifndef ASYM_IO_H
#define ASYM_IO_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Reads a whole file, transparently gunzipping gzip data, refusing more than
 * max bytes. On error the message names the path. */
int io_read_all(const char *path, uint8_t **data, size_t *len, size_t max);
/* The same; gz = 0 keeps gzip data as it is (image files). */
int io_read_file(const char *path, uint8_t **data, size_t *len, size_t max, int gz);

/* mkdir -p; the message names the folder that could not be made. */
int io_mkdir_p(const char *dir);

/* Writes n parts to PATH.PID.tmp, flushes it to disk and renames it to path, so
 * a crash leaves either the old file or the whole new one. */
int io_write_atomic(const char *path, const void *const *parts, const size_t *lens, int n);

/* The unsigned integer at p, most or least significant byte first. */
static inline uint32_t io_be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static inline uint32_t io_le32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static inline unsigned io_le16(const uint8_t *p) { return (unsigned)p[0] | (unsigned)p[1] << 8; }

/* NumPy .npy version 1.0, little-endian float32 ('<f4') or int32 ('<i4'),
 * C order. Writes go to a temporary file renamed into place. */
int npy_write_f32(const char *path, const float *data, int ndim, const int64_t *shape);
int npy_write_i32(const char *path, const int32_t *data, int ndim, const int64_t *shape);
/* Any dtype descr ('<f8', '<u8', ...) of elem bytes per element. */
int npy_write_typed(const char *path, const char *descr, size_t elem, const void *data, int ndim, const int64_t *shape);
/* Reads a float32 array; *data is malloc'd. shape holds up to 8 dims. */
int npy_read_f32(const char *path, float **data, int *ndim, int64_t shape[8]);

/* Any numeric .npy array: its header, checked against the file size. */
typedef struct NpyArray {
    char descr[16];   /* as written: '<f4', '|u1', '>i8', ... */
    char kind;        /* 'f' float, 'i' signed, 'u' unsigned, 'b' bool */
    int size;         /* bytes per element: 1, 2, 4 or 8 */
    int swap;         /* big-endian data */
    int ndim;
    int64_t shape[8];
    size_t count;     /* elements */
    size_t offset;    /* file offset of the data */
} NpyArray;
/* Opens path and reads its header into a; on success *f is the open file
 * (the caller closes it). */
int npy_open(const char *path, NpyArray *a, FILE **f);
/* One element of a's dtype (kind, size, swap) at p as a double; other
 * formats' raw numbers are read through it too. */
double npy_elem(const NpyArray *a, const uint8_t *p);
/* Reads all a->count elements of the open file as float, times scale. */
int npy_read_values(const char *path, const NpyArray *a, FILE *f, double scale, float *out);

#endif
