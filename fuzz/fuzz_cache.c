/* fuzz_cache.c: the decoded-image cache reader of image folders
 * (src/data/folder.c). A cache file may be stale, truncated or corrupt:
 * it must be refused, never trusted. The expected key and sizes are taken
 * from the input's own header (sizes capped) so that the checks past them
 * are reached. */
#include "asymbp.h"
#include "data/data.h"
#include "fuzz.h"

static uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 32) return 0;
    uint64_t key;
    memcpy(&key, data + 8, 8);
    uint32_t v[4] = {get32(data + 16), get32(data + 20), get32(data + 24), get32(data + 28)};
    int n = v[0] <= 256 ? (int)v[0] : 1, c = v[1] >= 1 && v[1] <= 4 ? (int)v[1] : 1, h = v[2] >= 1 && v[2] <= 16 ? (int)v[2] : 1,
        w = v[3] >= 1 && v[3] <= 16 ? (int)v[3] : 1;
    const char *path = fuzz_file("cache.bin", data, size);
    uint8_t *pix;
    if (folder_cache_read(path, key, n, c, h, w, &pix) == ASYM_OK) {
        for (size_t i = 0; i < (size_t)n * c * h * w; i++) fuzz_sink ^= pix[i];
        free(pix);
    }
    return 0;
}
