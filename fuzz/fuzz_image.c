/* fuzz_image.c: one image file of an image folder (src/data/folder.c):
 * PNG checks, stb_image decoding, resizing. The first byte picks the
 * output size and grayscale; the rest is the file. */
#include "asymbp.h"
#include "data/data.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int h = 1 + (data[0] & 7), w = 1 + ((data[0] >> 3) & 7), gray = data[0] >> 7;
    float out[3 * 8 * 8];
    folder_decode_image("input", data + 1, size - 1, h, w, gray, out);
    return 0;
}
