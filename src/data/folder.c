/* folder.c: image folders, one subfolder per class (the layout of
 * Caltech101/256, LFW, MIT-indoor67, PubFig83, SUFR-W, iCubWorld and, once
 * arranged by class, Flowers17/102), as Liao, Leibo and Poggio (2016) use
 * them. A folder with train/ and test/ subfolders is a fixed split;
 * otherwise every image is in one pool the per-class sampling splits.
 *
 * Images (JPEG, PNG, BMP, PNM, TGA, GIF's first frame) are decoded with
 * stb_image and resized (stretched, no crop) with stb_image_resize, both
 * from Debian's libstb. A file with an image extension that does not decode
 * is an error naming it, as is an empty class folder; other files (README,
 * Thumbs.db) are skipped. stb_image refuses truncated files but does not
 * check PNG checksums, so they are checked here (JPEG has none). Decoding runs in parallel (OpenMP).
 *
 * The decode cache: with a cache directory, every image of the tree is
 * decoded once at the configured size into one file there, named by a hash
 * of the folder's real path, the size, the channels and every file's name,
 * size and modification time; later runs (any sampling) read that file.
 * The cache file carries the same key and a CRC-32: a cache that does not
 * match in every respect is ignored and rebuilt, never trusted. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <stb/stb_image.h>
#include <stb/stb_image_resize.h>

#include "asymbp.h"
#include "data/data.h"
#include "io/io.h"
#include "base/base.h"

#define MAX_CLASSES (1 << 16)
#define MAX_FILES (1 << 24)
/* Largest encoded file and decoded image accepted: 256 MiB and 64 Mpixels
 * (a 8192 x 8192 photo), so a hostile header cannot ask for gigabytes. */
#define MAX_FILE_BYTES ((size_t)1 << 28)
#define MAX_PIXELS ((int64_t)1 << 26)

static const char *const EXTS[] = {"jpg", "jpeg", "png", "bmp", "ppm", "pgm", "pnm", "tga", "gif", NULL};

static int is_image_name(const char *name) {
    const char *dot = strrchr(name, '.');
    if (!dot) return 0;
    for (int i = 0; EXTS[i]; i++)
        if (!strcasecmp(dot + 1, EXTS[i])) return 1;
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int excluded(const char *name, const char *exclude) {
    for (const char *p = exclude; p && *p;) {
        const char *e = strchr(p, '\n');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == strlen(name) && !memcmp(p, name, l)) return 1;
        p = e ? e + 1 : p + l;
    }
    return 0;
}

/* The entries of dir that are directories (want_dir) or image files,
 * sorted by name; hidden entries are skipped. */
static int list_dir(const char *dir, int want_dir, const char *exclude, char ***out, int *n_out) {
    *out = NULL;
    *n_out = 0;
    DIR *d = opendir(dir);
    if (!d) return asym_fail("%s: cannot open folder: %s", dir, strerror(errno));
    char **v = NULL, path[4096];
    int n = 0, cap = 0, limit = want_dir ? MAX_CLASSES : MAX_FILES;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        if (!want_dir && !is_image_name(e->d_name)) continue;
        if (want_dir && excluded(e->d_name, exclude)) continue;
        if (data_join(path, sizeof path, dir, e->d_name)) goto fail;
        struct stat st;
        if (stat(path, &st) != 0) continue; /* a dangling link */
        if (want_dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)) continue;
        if (n == limit) {
            asym_fail("%s: more than %d %s", dir, limit, want_dir ? "class folders" : "images");
            goto fail;
        }
        if (n == cap) {
            int nc = cap ? 2 * cap : 64;
            char **nv = realloc(v, (size_t)nc * sizeof *v);
            if (!nv) goto oom;
            v = nv;
            cap = nc;
        }
        if (!(v[n] = strdup(e->d_name))) goto oom;
        n++;
    }
    closedir(d);
    if (n) qsort(v, (size_t)n, sizeof *v, cmp_str);
    *out = v;
    *n_out = n;
    return ASYM_OK;
oom:
    asym_fail("%s: out of memory listing the folder", dir);
fail:
    closedir(d);
    asym_data_names_free(v, n);
    return ASYM_ERR;
}

void folder_list_free(FolderList *l) {
    free(l->dir);
    asym_data_names_free(l->names, l->classes);
    asym_data_names_free(l->files, l->n);
    free(l->y);
    memset(l, 0, sizeof *l);
}

static int is_fixed(const char *dir) { return data_exists(dir, "train", 1) && data_exists(dir, "test", 1); }

/* The folder whose subfolders are the classes: dir/train, or dir. */
static int class_root(const char *dir, char *root, size_t cap) {
    if (!data_exists(dir, NULL, 1)) return asym_fail("%s: no such folder (expected one subfolder per class)", dir);
    if (data_join(root, cap, dir, is_fixed(dir) ? "train" : ".")) return ASYM_ERR;
    if (!is_fixed(dir)) snprintf(root, cap, "%s", dir);
    return ASYM_OK;
}

int folder_class_names(const char *dir, const char *exclude, char ***names, int *classes) {
    char root[4096];
    *names = NULL;
    *classes = 0;
    if (class_root(dir, root, sizeof root) || list_dir(root, 1, exclude, names, classes)) return ASYM_ERR;
    if (!*classes) {
        free(*names);
        *names = NULL;
        return asym_fail("%s: no class folders (expected one subfolder per class)", root);
    }
    return ASYM_OK;
}

/* Appends the images of root/class to l with label y. */
static int add_class(FolderList *l, int *cap, const char *root, const char *cls, int y) {
    char dir[4096], path[4096];
    char **files;
    int n;
    if (data_join(dir, sizeof dir, root, cls) || list_dir(dir, 0, NULL, &files, &n)) return ASYM_ERR;
    if (!n) {
        free(files);
        return asym_fail("%s: empty class folder (no .jpg, .jpeg, .png, .bmp, .ppm, .pgm, .pnm, .tga or .gif images)", dir);
    }
    int rc = ASYM_ERR;
    if (n > MAX_FILES - l->n) {
        asym_fail("%s: more than %d images in all", root, MAX_FILES);
        goto done;
    }
    if (l->n + n > *cap) {
        int nc = *cap;
        while (nc < l->n + n) nc = nc ? (nc > MAX_FILES / 2 ? MAX_FILES : 2 * nc) : 1024;
        char **nf = realloc(l->files, (size_t)nc * sizeof *nf);
        if (!nf) goto oom;
        l->files = nf;
        int32_t *ny = realloc(l->y, (size_t)nc * sizeof *ny);
        if (!ny) goto oom;
        l->y = ny;
        *cap = nc;
    }
    for (int i = 0; i < n; i++) {
        if (data_join(path, sizeof path, dir, files[i])) goto done;
        if (!(l->files[l->n] = strdup(path))) goto oom;
        l->y[l->n++] = y;
    }
    rc = ASYM_OK;
    goto done;
oom:
    asym_fail("%s: out of memory listing the folder", dir);
done:
    asym_data_names_free(files, n);
    return rc;
}

int folder_list(const char *dir, const char *exclude, FolderList *l) {
    memset(l, 0, sizeof *l);
    char root[4096], troot[4096];
    int cap = 0;
    char **tnames = NULL;
    int tn = 0;
    if (folder_class_names(dir, exclude, &l->names, &l->classes)) return ASYM_ERR;
    l->fixed = is_fixed(dir);
    if (!(l->dir = strdup(dir))) {
        asym_fail("%s: out of memory", dir);
        goto fail;
    }
    class_root(dir, root, sizeof root); /* found above */
    for (int c = 0; c < l->classes; c++)
        if (add_class(l, &cap, root, l->names[c], c)) goto fail;
    l->n_train = l->n;
    if (l->fixed) {
        if (data_join(troot, sizeof troot, dir, "test") || list_dir(troot, 1, exclude, &tnames, &tn)) goto fail;
        for (int i = 0; i < tn; i++) {
            char **hit = bsearch(&tnames[i], l->names, (size_t)l->classes, sizeof *l->names, cmp_str);
            if (!hit) {
                asym_fail("%s/%s: a test class with no training folder %s/%s", troot, tnames[i], root, tnames[i]);
                goto fail;
            }
            if (add_class(l, &cap, troot, tnames[i], (int)(hit - l->names))) goto fail;
        }
        asym_data_names_free(tnames, tn);
    }
    return ASYM_OK;
fail:
    asym_data_names_free(tnames, tn);
    folder_list_free(l);
    return ASYM_ERR;
}

/* ---- decoding ---- */

/* stb_image ignores PNG checksums; a flipped bit in the pixel data would
 * decode as a wrong picture. Every chunk's CRC-32 is checked here, up to
 * IEND, which must be there. */
static int png_check(const char *name, const uint8_t *buf, size_t len) {
    size_t off = 8;
    while (off < len) {
        if (len - off < 12) break;
        size_t n = io_be32(buf + off);
        if (n > len - off - 12) break;
        uint32_t crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), buf + off + 4, (uInt)(n + 4));
        if (crc != io_be32(buf + off + 8 + n))
            return asym_fail("%s: offset %zu: PNG chunk '%.4s' fails its CRC (corrupt)", name, off, (const char *)buf + off + 4);
        if (!memcmp(buf + off + 4, "IEND", 4)) return ASYM_OK;
        off += 12 + n;
    }
    return asym_fail("%s: offset %zu: PNG ends without its IEND chunk (truncated?)", name, off);
}

/* stb_image 2.27 (Debian 12's libstb) does not bound the code count of a
 * JPEG Huffman table: more than 256 codes overflow a table inside its
 * decoder (found by fuzz/fuzz_image.c; later stb versions check). Every
 * place stb could read a DHT segment (FF C4, after any fill bytes) is
 * checked here as stb would parse it. */
static int jpeg_check(const char *name, const uint8_t *buf, size_t len) {
    /* stb reads zeros past the end of the buffer: so does this. */
#define AT(k) ((k) < len ? buf[k] : 0)
    for (size_t i = 2; i + 1 < len; i++) {
        if (buf[i] != 0xff || buf[i + 1] != 0xc4) continue;
        size_t p = i + 2;
        long L = ((long)AT(p) << 8 | AT(p + 1)) - 2;
        p += 2;
        while (L > 0) {
            if ((AT(p) >> 4) > 1 || (AT(p) & 15) > 3) break; /* stb refuses the segment itself */
            int n = 0;
            for (size_t k = 1; k <= 16; k++) n += AT(p + k);
            if (n > 256)
                return asym_fail("%s: offset %zu: JPEG Huffman table of %d codes (at most 256; corrupt)", name, i, n);
            p += 17 + (size_t)n;
            L -= 17 + n;
        }
    }
#undef AT
    return ASYM_OK;
}

/* stb_image reads zeros past the end of a file, so a truncated BMP, TGA,
 * PNM or GIF decodes as a picture with a black (or background) part; and a
 * header alone can claim an image of millions of pixels (fuzz/fuzz_image.c
 * found a 136-byte BMP of 6 x 3276805 pixels). Refused here: an image
 * larger than no compression could make of the file (4096:1 is beyond
 * deflate's, JPEG's and LZW's best), and uncompressed data that is not all
 * there, or a GIF without its trailer byte. */
static int plausible(const char *name, const uint8_t *buf, size_t len, int x, int y, int comp) {
    uint64_t px = (uint64_t)x * (uint64_t)y, need = 0;
    if (px * (uint64_t)comp > ((uint64_t)len * 4096 > ((uint64_t)1 << 22) ? (uint64_t)len * 4096 : ((uint64_t)1 << 22)))
        return asym_fail("%s: a file of %zu bytes cannot hold an image of %d x %d pixels (corrupt)", name, len, x, y);
    if (len >= 30 && buf[0] == 'B' && buf[1] == 'M') {
        uint32_t off = io_le32(buf + 10), hs = io_le32(buf + 14);
        unsigned bpp = hs == 12 ? io_le16(buf + 24) : io_le16(buf + 28);
        uint32_t cmp = hs == 12 || len < 34 ? 0 : io_le32(buf + 30);
        if (cmp == 0 || cmp == 3) { /* BI_RGB, BI_BITFIELDS: rows of 4-byte multiples */
            uint64_t row = ((uint64_t)bpp * (uint64_t)x + 31) / 32 * 4;
            need = (uint64_t)off + row * (uint64_t)y;
        }
    } else if (len >= 18 && (buf[2] == 1 || buf[2] == 2 || buf[2] == 3) && !(buf[0] == 0xff && buf[1] == 0xd8) && memcmp(buf, "\x89PNG", 4) &&
               memcmp(buf, "GIF8", 4) && !(buf[0] == 'P' && buf[1] >= '1' && buf[1] <= '6')) {
        /* no magic number: stb_image tries TGA last; uncompressed ones
         * (types 1-3) hold an id, a colour map, then the pixels */
        uint64_t cmap = buf[1] ? (uint64_t)io_le16(buf + 5) * ((buf[7] + 7u) / 8u) : 0;
        need = 18 + (uint64_t)buf[0] + cmap + px * ((buf[16] + 7u) / 8u);
    } else if (len >= 2 && buf[0] == 'P' && (buf[1] == '5' || buf[1] == '6')) {
        /* binary PGM/PPM: the header is 4 tokens (comments skipped), one
         * white-space byte, then the samples */
        size_t p = 2;
        long maxv = 0;
        for (int tok = 0; tok < 3 && p < len; tok++) {
            while (p < len && (buf[p] == ' ' || buf[p] == '\t' || buf[p] == '\n' || buf[p] == '\r' || buf[p] == '#')) {
                if (buf[p] == '#')
                    while (p < len && buf[p] != '\n') p++;
                else p++;
            }
            long v = 0;
            while (p < len && buf[p] >= '0' && buf[p] <= '9' && v < 1 << 20) v = v * 10 + (buf[p++] - '0');
            if (tok == 2) maxv = v;
        }
        need = p + 1 + px * (buf[1] == '6' ? 3u : 1u) * (maxv > 255 ? 2u : 1u);
    } else if (len >= 6 && !memcmp(buf, "GIF8", 4) && buf[len - 1] != 0x3b) {
        return asym_fail("%s: offset %zu: GIF ends without its trailer byte 0x3B (truncated?)", name, len);
    }
    if (need > len)
        return asym_fail("%s: offset %zu: image data ends early: %dx%d pixels need %llu bytes (truncated?)", name, len, x, y,
                         (unsigned long long)need);
    return ASYM_OK;
}

/* stb_image also decodes PSD, PIC and Radiance HDR whatever the file is
 * called; only the formats named in EXTS are accepted. */
static int other_format(const uint8_t *buf, size_t len) {
    return (len >= 4 && !memcmp(buf, "8BPS", 4)) || (len >= 4 && !memcmp(buf, "\x53\x80\xf6\x34", 4)) || (len >= 2 && !memcmp(buf, "#?", 2));
}

int folder_load_pixels(const char *name, const uint8_t *buf, size_t len, int c, uint8_t **pixels, int *h, int *w) {
    int x, y, comp;
    *pixels = NULL;
    if (len > MAX_FILE_BYTES || len > INT_MAX) return asym_fail("%s: %zu bytes, larger than an image file may be", name, len);
    if (other_format(buf, len)) return asym_fail("%s: a PSD, PIC or HDR file, not JPEG, PNG, BMP, GIF, PNM or TGA", name);
    /* before stbi_info, which already parses JPEG Huffman tables */
    if (len >= 8 && !memcmp(buf, "\x89PNG\r\n\x1a\n", 8) && png_check(name, buf, len)) return ASYM_ERR;
    if (len >= 2 && buf[0] == 0xff && buf[1] == 0xd8 && jpeg_check(name, buf, len)) return ASYM_ERR;
    if (!stbi_info_from_memory(buf, (int)len, &x, &y, &comp))
        return asym_fail("%s: not a decodable image: %s", name, stbi_failure_reason() ? stbi_failure_reason() : "unknown format");
    if (x <= 0 || y <= 0 || (int64_t)x * y > MAX_PIXELS)
        return asym_fail("%s: image of %d x %d pixels (at most %lld pixels are decoded)", name, x, y, (long long)MAX_PIXELS);
    if (plausible(name, buf, len, x, y, comp)) return ASYM_ERR;
    int dx, dy, dc;
    uint8_t *img = stbi_load_from_memory(buf, (int)len, &dx, &dy, &dc, c);
    if (!img) {
        /* stb's reason is that of the last decoder it tried, often not the
         * one of this format: the format is named from its magic instead. */
        const char *fmt = buf[0] == 0xff ? "JPEG" : buf[0] == 0x89 ? "PNG" : buf[0] == 'B' ? "BMP" : buf[0] == 'G' ? "GIF" : buf[0] == 'P' ? "PNM" : "TGA";
        return asym_fail("%s: %s image data does not decode (corrupt or truncated?)", name, fmt);
    }
    /* The header read by stbi_info and the decoder must agree. */
    if (dx != x || dy != y) {
        stbi_image_free(img);
        return asym_fail("%s: image header says %d x %d but decodes to %d x %d", name, x, y, dx, dy);
    }
    *pixels = img, *h = dy, *w = dx;
    return ASYM_OK;
}

void folder_pixels_free(uint8_t *pixels) { stbi_image_free(pixels); }

/* One encoded image to c x h x w bytes (CHW). */
static int decode8(const char *name, const uint8_t *buf, size_t len, int h, int w, int gray, uint8_t *out) {
    int c = gray ? 1 : 3, dx, dy;
    uint8_t *img;
    if (folder_load_pixels(name, buf, len, c, &img, &dy, &dx)) return ASYM_ERR;
    uint8_t *rs = NULL;
    const uint8_t *src = img;
    if (dx != w || dy != h) {
        if (!(rs = malloc((size_t)w * h * c))) {
            stbi_image_free(img);
            return asym_fail("%s: out of memory", name);
        }
        if (!stbir_resize_uint8(img, dx, dy, 0, rs, w, h, 0, c)) {
            free(rs);
            stbi_image_free(img);
            return asym_fail("%s: resizing %d x %d to %d x %d failed", name, dx, dy, w, h);
        }
        src = rs;
    }
    for (int ch = 0; ch < c; ch++)
        for (int i = 0; i < h * w; i++) out[(size_t)ch * h * w + i] = src[(size_t)i * c + ch];
    free(rs);
    stbi_image_free(img);
    return ASYM_OK;
}

int folder_decode_image(const char *name, const uint8_t *buf, size_t len, int h, int w, int gray, float *out) {
    size_t m = (size_t)(gray ? 1 : 3) * h * w;
    uint8_t *b = malloc(m);
    if (!b) return asym_fail("%s: out of memory", name);
    int rc = decode8(name, buf, len, h, w, gray, b);
    if (!rc)
        for (size_t i = 0; i < m; i++) out[i] = b[i] / 255.0f;
    free(b);
    return rc;
}

/* Decodes files idx[0..n) of l (all of l when idx is NULL) into pix, one
 * c x h x w block each, in parallel; the first failure in list order is
 * the one reported. */
static int decode_files(const FolderList *l, const int *idx, int n, int h, int w, int gray, uint8_t *pix) {
    size_t img = (size_t)(gray ? 1 : 3) * h * w;
    int bad = INT_MAX;
    char msg[1024] = "";
#pragma omp parallel for schedule(dynamic, 8)
    for (int i = 0; i < n; i++) {
        int stop;
#pragma omp atomic read
        stop = bad;
        if (i > stop) continue;
        const char *path = l->files[idx ? idx[i] : i];
        uint8_t *buf;
        size_t len;
        int rc = io_read_file(path, &buf, &len, MAX_FILE_BYTES, 0);
        if (!rc) {
            rc = decode8(path, buf, len, h, w, gray, pix + (size_t)i * img);
            free(buf);
        }
        if (rc) {
#pragma omp critical(folder_decode_error)
            if (i < bad) {
#pragma omp atomic write
                bad = i;
                snprintf(msg, sizeof msg, "%s", asym_last_error());
            }
        }
    }
    if (bad != INT_MAX) return asym_fail("%s", msg);
    return ASYM_OK;
}

/* ---- the cache ---- */

#define CACHE_MAGIC "ASYMIMG1"
#define CACHE_HEAD 32 /* magic, key, n, c, h, w */

static void put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

/* What the cache depends on: the real folder, the output size, and every
 * file's name, size and modification time. */
static int cache_key(const FolderList *l, const char *dir, int c, int h, int w, uint64_t *key) {
    char real[PATH_MAX];
    if (!realpath(dir, real)) return asym_fail("%s: cannot resolve the path: %s", dir, strerror(errno));
    uint64_t k = fnv(0xcbf29ce484222325ULL, "asymbp folder cache 1", 21);
    k = fnv(k, real, strlen(real) + 1);
    int32_t dims[4] = {c, h, w, l->n};
    k = fnv(k, dims, sizeof dims);
    size_t skip = strlen(dir);
    for (int i = 0; i < l->n; i++) {
        struct stat st;
        if (stat(l->files[i], &st) != 0) return asym_fail("%s: cannot open: %s", l->files[i], strerror(errno));
        int64_t meta[4] = {(int64_t)st.st_size, (int64_t)st.st_mtim.tv_sec, (int64_t)st.st_mtim.tv_nsec, l->y[i]};
        const char *rel = strncmp(l->files[i], dir, skip) ? l->files[i] : l->files[i] + skip;
        k = fnv(k, rel, strlen(rel) + 1);
        k = fnv(k, meta, sizeof meta);
    }
    *key = k;
    return ASYM_OK;
}

int folder_cache_read(const char *path, uint64_t key, int n, int c, int h, int w, uint8_t **pix) {
    *pix = NULL;
    size_t size, img = (size_t)c * h * w;
    if (n < 0 || c <= 0 || h <= 0 || w <= 0 || (n && img > (SIZE_MAX - CACHE_HEAD - 4) / (size_t)n))
        return asym_fail("%s: bad cache dimensions", path);
    size_t want = CACHE_HEAD + (size_t)n * img + 4;
    if (data_file_size(path, &size)) return ASYM_ERR;
    if (size != want) return asym_fail("%s: cache file of %zu bytes, expected %zu (stale or truncated)", path, size, want);
    uint8_t *buf;
    size_t len;
    if (io_read_file(path, &buf, &len, want, 0)) return ASYM_ERR;
    uint64_t k;
    memcpy(&k, buf + 8, 8);
    if (len != want || memcmp(buf, CACHE_MAGIC, 8)) {
        asym_fail("%s: offset 0: not an asymbp image cache", path);
    } else if (k != key || io_le32(buf + 16) != (uint32_t)n || io_le32(buf + 20) != (uint32_t)c || io_le32(buf + 24) != (uint32_t)h ||
               io_le32(buf + 28) != (uint32_t)w) {
        asym_fail("%s: offset 8: cache of another folder state or size", path);
    } else if ((uint32_t)crc32_z(crc32(0L, Z_NULL, 0), buf, want - 4) != io_le32(buf + want - 4)) {
        asym_fail("%s: offset %zu: cache checksum mismatch (corrupt)", path, want - 4);
    } else {
        memmove(buf, buf + CACHE_HEAD, (size_t)n * img);
        *pix = buf;
        return ASYM_OK;
    }
    free(buf);
    return ASYM_ERR;
}

static int cache_write(const char *path, uint64_t key, int n, int c, int h, int w, const uint8_t *pix) {
    uint8_t head[CACHE_HEAD], tail[4];
    memcpy(head, CACHE_MAGIC, 8);
    memcpy(head + 8, &key, 8);
    put32(head + 16, (uint32_t)n);
    put32(head + 20, (uint32_t)c);
    put32(head + 24, (uint32_t)h);
    put32(head + 28, (uint32_t)w);
    size_t bytes = (size_t)n * c * h * w;
    put32(tail, (uint32_t)crc32_z(crc32(crc32(0L, Z_NULL, 0), head, CACHE_HEAD), pix, bytes));
    const void *parts[3] = {head, pix, tail};
    size_t lens[3] = {CACHE_HEAD, bytes, 4};
    return io_write_atomic(path, parts, lens, 3);
}

int folder_decode(const FolderList *l, const uint8_t *mark, uint8_t which, const int *map, int classes, int h, int w, int gray,
                  const char *cache_dir, AsymDataset *d) {
    int c = gray ? 1 : 3, n = 0, *idx = NULL;
    size_t img = (size_t)c * h * w;
    uint8_t *pix = NULL;
    for (int i = 0; i < l->n; i++) n += !mark || mark[i] == which;
    if (data_alloc(d, "image folder", (size_t)n, c, h, w, classes) || !(idx = asym_calloc(n ? (size_t)n : 1, sizeof *idx))) goto fail;
    for (int i = 0, k = 0; i < l->n; i++)
        if (!mark || mark[i] == which) d->y[k] = map ? map[l->y[i]] : l->y[i], idx[k++] = i;
    if (cache_dir && *cache_dir) {
        const char *dir = l->dir;
        uint64_t key = 0;
        char path[4200];
        if (cache_key(l, dir, c, h, w, &key) || io_mkdir_p(cache_dir)) goto fail;
        if (snprintf(path, sizeof path, "%s/folder-%016llx-%dx%dx%d.bin", cache_dir, (unsigned long long)key, c, h, w) >= (int)sizeof path) {
            asym_fail("%s: path too long", cache_dir);
            goto fail;
        }
        if (folder_cache_read(path, key, l->n, c, h, w, &pix)) {
            /* Missing, stale or corrupt: decode everything and rewrite it. */
            if (l->n && (size_t)l->n > SIZE_MAX / img) {
                asym_fail("%s: too many images to cache", dir);
                goto fail;
            }
            if (!(pix = malloc(l->n ? (size_t)l->n * img : 1))) {
                asym_fail("%s: out of memory for the image cache (%d images)", dir, l->n);
                goto fail;
            }
            if (decode_files(l, NULL, l->n, h, w, gray, pix) || cache_write(path, key, l->n, c, h, w, pix)) goto fail;
        }
    } else {
        if (!(pix = malloc(n ? (size_t)n * img : 1))) {
            asym_fail("image folder: out of memory for %d images", n);
            goto fail;
        }
        if (decode_files(l, idx, n, h, w, gray, pix)) goto fail;
    }
    /* the cache holds every image of l, a decode only the n marked ones */
    for (int i = 0; i < n; i++)
        for (size_t k = 0; k < img; k++) d->x[(size_t)i * img + k] = pix[(size_t)(cache_dir && *cache_dir ? idx[i] : i) * img + k] / 255.0f;
    free(pix);
    free(idx);
    return ASYM_OK;
fail:
    free(pix);
    free(idx);
    asym_dataset_free(d);
    return ASYM_ERR;
}

int asym_dataset_load_folder(AsymDataset *d, const char *dir, int h, int w, int grayscale, const char *cache_dir) {
    memset(d, 0, sizeof *d);
    if (h <= 0 || w <= 0 || h > 4096 || w > 4096) return asym_fail("%s: image size %d x %d not in 1..4096", dir, h, w);
    FolderList l;
    if (folder_list(dir, NULL, &l)) return ASYM_ERR;
    int rc = folder_decode(&l, NULL, 0, NULL, l.classes, h, w, grayscale, cache_dir, d);
    folder_list_free(&l);
    return rc;
}
