/* fuzz_npy.c: the .npy data set reader (src/data/npy.c on src/io/npy.c's .npy
 * header parser): the input is split into x.npy and y.npy. */
#include "asymbp.h"
#include "data/data.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *x, *y;
    size_t nx, ny;
    fuzz_split(data, size, &x, &nx, &y, &ny);
    const char *xp = fuzz_file("x.npy", x, nx), *yp = fuzz_file("y.npy", y, ny);
    AsymDataset d;
    if (asym_dataset_load_npy(&d, xp, yp) == ASYM_OK) asym_dataset_free(&d);
    return 0;
}
