/* mat5.c: what the two MAT-file readers (svhn.c, devkit.c) share of
 * MATLAB's MAT 5 format (MAT-File Format, MathWorks, "MAT-File Header
 * Format", "Data element format"): the 128-byte header and a data
 * element's tag, each refused with the file and the offset when it does
 * not fit within its bounds. */
#include <string.h>

#include "asymbp.h"
#include "data/data.h"
#include "io/io.h"

uint32_t mat5_u32(const Mat5 *m, const uint8_t *p) { return m->swap ? io_be32(p) : io_le32(p); }

int mat5_header(const char *path, const uint8_t *h, size_t len, int *swap) {
    if (len < 128) return asym_fail("%s: %zu bytes, too short for a MAT-file header (128 bytes)", path, len);
    if (!memcmp(h, "\x89HDF", 4))
        return asym_fail("%s: an HDF5 file (MATLAB 7.3); re-save it with save -v7 (MAT 5/7 files are read)", path);
    if (h[126] == 'I' && h[127] == 'M') *swap = 0;
    else if (h[126] == 'M' && h[127] == 'I') *swap = 1;
    else return asym_fail("%s: offset 126: not a MATLAB 5/7 MAT-file (no endian indicator 'IM' or 'MI')", path);
    unsigned version = *swap ? (unsigned)h[124] << 8 | h[125] : (unsigned)h[125] << 8 | h[124];
    if (version == 0x0200)
        return asym_fail("%s: offset 124: a MATLAB 7.3 (HDF5) MAT-file; re-save it with save -v7 (MAT 5/7 files are read)", path);
    if (version != 0x0100) return asym_fail("%s: offset 124: MAT-file version 0x%04x not supported (0x0100: MATLAB 5/7)", path, version);
    return ASYM_OK;
}

int mat5_type_size(uint32_t t) {
    switch (t) {
    case MI_INT8: case MI_UINT8: case MI_UTF8: return 1;
    case MI_INT16: case MI_UINT16: case MI_UTF16: return 2;
    case MI_INT32: case MI_UINT32: case MI_SINGLE: case MI_UTF32: return 4;
    case MI_DOUBLE: case MI_INT64: case MI_UINT64: return 8;
    default: return 0;
    }
}

int mat5_elem(const Mat5 *m, const uint8_t *buf, size_t at, size_t end, uint32_t *type, size_t *d, size_t *n, size_t *next) {
    if (at > end || end - at < 8 || at > m->avail || m->avail - at < 8)
        return asym_fail("%s: offset %zu: a data element ends inside its tag (truncated or corrupt)", m->path, m->base + at);
    uint32_t t = mat5_u32(m, buf + at);
    if (t >> 16) { /* small element: up to 4 bytes in the tag */
        *type = t & 0xffff, *n = t >> 16, *d = at + 4, *next = at + 8;
        if (*n > 4) return asym_fail("%s: offset %zu: a small data element of %zu bytes (at most 4)", m->path, m->base + at, *n);
        return ASYM_OK;
    }
    *type = t, *n = mat5_u32(m, buf + at + 4), *d = at + 8;
    if (*n > end - *d)
        return asym_fail("%s: offset %zu: a data element of %zu bytes runs past its end (%zu bytes left)", m->path, m->base + at, *n, end - *d);
    size_t pad = (*n + 7) & ~(size_t)7;
    *next = pad > end - *d ? end : *d + pad;
    return ASYM_OK;
}
