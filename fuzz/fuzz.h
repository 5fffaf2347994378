/* fuzz.h: what the libFuzzer targets share: a private scratch folder (in
 * /dev/shm when there is one, so that writing an input each run is cheap)
 * and writing an input to a file there. The readers take file names, so
 * each target writes the fuzzer's bytes where the reader looks. */
#ifndef ASYM_FUZZ_H
#define ASYM_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Where targets fold the bytes a reader returned, so reading them is not
 * optimized away (ASan then checks every one is inside its buffer). */
static volatile uint8_t fuzz_sink;

/* The scratch folder, made on first use. */
static inline const char *fuzz_dir(void) {
    static char dir[256];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "%s/asymbp-fuzz-XXXXXX", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
        if (!mkdtemp(dir)) abort();
    }
    return dir;
}

/* Writes n bytes to fuzz_dir()/name; returns the path (static). */
static inline const char *fuzz_file(const char *name, const void *p, size_t n) {
    static char path[4][512];
    static int k;
    char *out = path[k++ % 4];
    snprintf(out, 512, "%s/%s", fuzz_dir(), name);
    FILE *f = fopen(out, "wb");
    if (!f || (n && fwrite(p, 1, n, f) != n) || fclose(f) != 0) abort();
    return out;
}

/* The input split in two at a 2-byte little-endian length prefix. */
static inline void fuzz_split(const uint8_t *data, size_t size, const uint8_t **a, size_t *na, const uint8_t **b, size_t *nb) {
    size_t l = size >= 2 ? (size_t)data[0] | (size_t)data[1] << 8 : 0;
    data += size >= 2 ? 2 : size;
    size -= size >= 2 ? 2 : size;
    if (l > size) l = size;
    *a = data;
    *na = l;
    *b = data + l;
    *nb = size - l;
}

#endif
