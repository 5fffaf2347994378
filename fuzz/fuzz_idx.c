/* fuzz_idx.c: the MNIST IDX reader: whole-file reading with transparent
 * gunzip (src/io/files.c), then the header and size checks (src/data/idx.c). */
#include "asymbp.h"
#include "data/data.h"
#include "fuzz.h"
#include "data/data.h"
#include "io/io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file("train-images-idx3-ubyte", data, size);
    uint8_t *buf;
    size_t len;
    int nd;
    uint32_t dims[4];
    const uint8_t *payload;
    /* 64 MiB: what a hostile gzip member may inflate to here. */
    if (io_read_all(path, &buf, &len, (size_t)1 << 26) == ASYM_OK) {
        if (idx_parse(path, buf, len, &nd, dims, &payload) == ASYM_OK) {
            /* touch the payload the header vouched for */
            size_t n = 1;
            for (int i = 0; i < nd; i++) n *= dims[i];
            for (size_t i = 0; i < n; i++) fuzz_sink ^= payload[i];
        }
        free(buf);
    }
    return 0;
}
