/* fuzz_checkpoint.c: the checkpoint reader (src/io/checkpoint.c): the length,
 * checksum and version, then every record header against the bytes
 * present. The first byte of the input chooses: odd, the rest is a
 * checkpoint whose length field and CRC-32 are set right, so that the
 * record parser is reached; even, the rest as it is. Inputs that parse are
 * read through (every record, the text and integer accessors) and, when
 * they hold few records, exported (file names come from record names). */
#include <dirent.h>
#include <zlib.h>

#include "asymbp.h"
#include "io/checkpoint.h"
#include "fuzz.h"

/* Empties the export folder, so that hostile names do not pile up. */
static void clear(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char path[1024];
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') snprintf(path, sizeof path, "%s/%s", dir, e->d_name), unlink(path);
    closedir(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    size_t n = size - 1;
    uint8_t *b = malloc(n ? n : 1);
    if (!b) return 0;
    memcpy(b, data + 1, n);
    if ((data[0] & 1) && n >= 28) {
        uint64_t len = n;
        memcpy(b + 16, &len, 8);
        uint32_t crc = (uint32_t)crc32(crc32(0, NULL, 0), b, (uInt)(n - 4));
        memcpy(b + n - 4, &crc, 4);
    }
    const char *path = fuzz_file("checkpoint.bin", b, n);
    free(b);
    AsymCheckpoint *ck;
    if (asym_checkpoint_open(&ck, path) != ASYM_OK) return 0;
    for (int i = 0; i < ck->n; i++) {
        const CkptRecord *r = &ck->rec[i];
        size_t bytes = r->count * ckpt_type_size(r->type);
        for (size_t j = 0; j < bytes; j++) fuzz_sink ^= r->data[j];
        fuzz_sink ^= (uint8_t)strlen(r->name);
        if (r->text) fuzz_sink ^= (uint8_t)strlen(r->text);
    }
    int64_t v;
    if (asym_checkpoint_int(ck, "epoch", &v) == ASYM_OK) fuzz_sink ^= (uint8_t)v;
    const char *t = asym_checkpoint_text(ck, "config");
    if (t) fuzz_sink ^= (uint8_t)t[0];
    if (ck->n <= 8) {
        char dir[512];
        snprintf(dir, sizeof dir, "%s/export", fuzz_dir());
        asym_checkpoint_export(ck, dir);
        clear(dir);
    }
    asym_checkpoint_close(ck);
    return 0;
}
