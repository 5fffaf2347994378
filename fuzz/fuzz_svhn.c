/* fuzz_svhn.c: the SVHN reader (src/data/svhn.c): our MAT 5 structure and
 * checksum checks, then libmatio on what passes. */
#include "asymbp.h"
#include "data/data.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file("test_32x32.mat", data, size);
    AsymDataset d;
    if (asym_dataset_load_svhn(&d, path, 0) == ASYM_OK) asym_dataset_free(&d);
    return 0;
}
