/* fuzz_stream.c: what format imagenet reads from untrusted bytes
 * (src/data/tar.c, jpeg.c): with the first byte even, the rest is a tar
 * shard, listed; odd, a JPEG, its header read and a box of it decoded,
 * the box and the DCT scale picked by the next bytes. */
#include <stdio.h>
#include <unistd.h>

#include "asymbp.h"
#include "data/data.h"
#include "fuzz.h"

static int member(void *u, FILE *f, const char *name, uint64_t off, uint64_t size) {
    uint8_t b[64];
    return size <= sizeof b ? tar_read_member(f, "input", off, size, b) : ASYM_OK;
}

static void tar_case(const uint8_t *data, size_t size) {
    char path[] = "/tmp/fuzz-stream-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return;
    if (write(fd, data, size) == (ssize_t)size) tar_scan(path, member, NULL);
    close(fd);
    unlink(path);
}

static void jpeg_case(const uint8_t *sel, const uint8_t *data, size_t size) {
    int H, W;
    if (jpeg_header("input", data, size, &H, &W) || (long)H * W > (1L << 22)) return;
    int i = sel[0] % H, j = sel[1] % W, bh = 1 + (H - i - 1) * sel[2] / 255, bw = 1 + (W - j - 1) * sel[3] / 255;
    JpegRegion r;
    if (!jpeg_decode_box("input", data, size, i, j, bh, bw, sel[4] & 15, sel[5] & 15, &r)) {
        static float out[64 * 64 * 3];
        if ((long)r.bh * r.bw <= 64 * 64) jpeg_region_floats(&r, out);
        jpeg_region_free(&r);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    if (!(data[0] & 1)) tar_case(data + 1, size - 1);
    else if (size > 7) jpeg_case(data + 1, data + 7, size - 7);
    return 0;
}
