/* fuzz_stl10.c: the STL-10 binary reader (src/data/stl10.c): the input is
 * split into test_y.bin and test_X.bin. */
#include "asymbp.h"
#include "data/data.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *y, *x;
    size_t ny, nx;
    fuzz_split(data, size, &y, &ny, &x, &nx);
    fuzz_file("test_y.bin", y, ny);
    fuzz_file("test_X.bin", x, nx);
    AsymDataset d;
    if (asym_dataset_load_stl10(&d, fuzz_dir(), 0) == ASYM_OK) asym_dataset_free(&d);
    return 0;
}
