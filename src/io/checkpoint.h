/* checkpoint.h: the checkpoint container (checkpoint.c) and what the
 * library keeps in it (state.c): the network, the optimizer and the
 * training loop's own state. docs/CHECKPOINT.md describes the format. */
#ifndef ASYM_CHECKPOINT_H
#define ASYM_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "asymbp.h"

/* ---- the container: named, typed arrays (checkpoint.c) ---- */

typedef enum CkptType { CKPT_F32 = 1, CKPT_F64, CKPT_I32, CKPT_I64, CKPT_U64, CKPT_TEXT, CKPT_TYPE_COUNT } CkptType;

#define CKPT_MAX_NAME 255
#define CKPT_MAX_DIMS 4

typedef struct CkptRecord {
    const char *name;          /* NUL-terminated */
    CkptType type;
    int ndim;                  /* 0 for a scalar; 1 for text */
    int64_t dims[CKPT_MAX_DIMS];
    size_t count;              /* elements (bytes of text) */
    const uint8_t *data;       /* inside the file buffer, unaligned: copy out with memcpy */
    const char *text;          /* CKPT_TEXT: a NUL-terminated copy */
} CkptRecord;

struct AsymCheckpoint {
    char path[1024];
    uint8_t *buf;              /* the whole file */
    size_t len;
    uint32_t version;
    int n;
    CkptRecord *rec;
    char *strings;             /* names and texts, NUL-terminated */
};

/* Checks a whole file held in buf (taken over, freed by asym_checkpoint_close):
 * magic, length, checksum, version, then every record header against the
 * bytes present. path is for messages. On failure ck owns nothing. */
int ckpt_parse(AsymCheckpoint *ck, const char *path, uint8_t *buf, size_t len);
const CkptRecord *ckpt_find(const AsymCheckpoint *ck, const char *name);
/* Bytes per element of a type (1 for text), and its name ("float32", "text"). */
size_t ckpt_type_size(CkptType t);
const char *ckpt_type_name(CkptType t);
/* A name fit for a record: 1..255 of [A-Za-z0-9._/], not starting with
 * '/' or '.' (export turns it into a file name). */
int ckpt_name_ok(const char *name, size_t n);

/* Records point at the caller's memory until ckpt_write (those of at most
 * 64 bytes are copied). The first error sticks and ckpt_write reports it. */
typedef struct CkptWriter CkptWriter;
CkptWriter *ckpt_writer_new(void);
void ckpt_put(CkptWriter *w, const char *name, CkptType type, int ndim, const int64_t *dims, const void *data);
void ckpt_put_text(CkptWriter *w, const char *name, const char *text, size_t len);
void ckpt_put_i64(CkptWriter *w, const char *name, int64_t v);
void ckpt_put_u64(CkptWriter *w, const char *name, uint64_t v);
void ckpt_put_f64(CkptWriter *w, const char *name, const double *v, int n);
/* Writes every record to path through io_write_atomic and frees w. */
int ckpt_write(CkptWriter *w, const char *path);
void ckpt_writer_free(CkptWriter *w);

#endif
