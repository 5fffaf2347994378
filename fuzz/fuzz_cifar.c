/* fuzz_cifar.c: the CIFAR-10/100 binary reader (src/data/cifar.c). The
 * first byte picks CIFAR-10, CIFAR-100 fine or CIFAR-100 coarse; the rest
 * is the test file. */
#include "asymbp.h"
#include "data/data.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int mode = data[0] % 3;
    fuzz_file(mode ? "test.bin" : "test_batch.bin", data + 1, size - 1);
    AsymDataset d;
    if (asym_dataset_load_cifar(&d, fuzz_dir(), mode != 0, mode == 2, 0) == ASYM_OK) asym_dataset_free(&d);
    return 0;
}
