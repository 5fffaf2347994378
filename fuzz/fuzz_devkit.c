/* fuzz_devkit.c: the ILSVRC2012 devkit's meta.mat reader (src/data/devkit.c):
 * MAT 5 elements, struct arrays and compressed variables walked by hand. */
#include "asymbp.h"
#include "data/data.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file("meta.mat", data, size);
    char **wnid;
    int max;
    if (devkit_wnids(path, &wnid, &max) == ASYM_OK) {
        for (int i = 1; i <= max; i++)
            if (wnid[i]) fuzz_sink ^= (uint8_t)wnid[i][0];
        asym_data_names_free(wnid, DEVKIT_TABLE);
    }
    return 0;
}
