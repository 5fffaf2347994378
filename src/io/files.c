/* files.c: whole-file reading with transparent gunzip (zlib), folder
 * creation, and atomic writes (temporary file, fsync, rename). Every
 * message names the path. */
#include "io/io.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <zlib.h>

#include "base/base.h"

/* Inflates the gzip member(s) in[0..n) into a new buffer of at most max
 * bytes. Bytes after the last member that are not another gzip member are
 * ignored, as gzip -d and zcat do. */
static int gunzip(const char *path, const uint8_t *in, size_t n, uint8_t **out, size_t *outlen, size_t max) {
    /* The trailer's ISIZE (size mod 2^32) is a good first guess; one spare
     * byte lets inflate report the end without another round, and output
     * reaching max + 1 bytes is how "too large" shows. */
    size_t limit = max < SIZE_MAX ? max + 1 : SIZE_MAX;
    size_t cap = n >= 18 ? io_le32(in + n - 4) : 0;
    if (cap > n * 1032) cap = n * 1032; /* deflate's ratio is at most ~1032:1 */
    cap = cap < 64 ? 64 : cap < limit ? cap + 1 : limit;
    uint8_t *buf = malloc(cap);
    if (!buf) return asym_fail("%s: out of memory for %zu bytes", path, cap);
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) {
        free(buf);
        return asym_fail("%s: zlib initialization failed", path);
    }
    size_t total = 0, left = n;
    const uint8_t *p = in;
    const char *err = NULL;
    for (;;) {
        if (total == cap) {
            if (cap >= limit) {
                inflateEnd(&zs);
                free(buf);
                return asym_fail("%s: larger than %zu bytes", path, max);
            }
            size_t nc = cap <= limit / 2 ? cap * 2 : limit;
            uint8_t *nb = realloc(buf, nc);
            if (!nb) { err = "out of memory"; break; }
            buf = nb;
            cap = nc;
        }
        uInt in_n = left > UINT_MAX ? UINT_MAX : (uInt)left;
        uInt out_n = cap - total > UINT_MAX ? UINT_MAX : (uInt)(cap - total);
        zs.next_in = (Bytef *)p;
        zs.avail_in = in_n;
        zs.next_out = buf + total;
        zs.avail_out = out_n;
        int ret = inflate(&zs, Z_NO_FLUSH);
        p += in_n - zs.avail_in;
        left -= in_n - zs.avail_in;
        total += out_n - zs.avail_out;
        if (ret == Z_STREAM_END) {
            if (left >= 2 && p[0] == 0x1f && p[1] == 0x8b && inflateReset(&zs) == Z_OK) continue;
            break;
        }
        if (ret == Z_DATA_ERROR || ret == Z_NEED_DICT) { err = zs.msg ? zs.msg : "invalid stream"; break; }
        if (ret == Z_MEM_ERROR) { err = "out of memory"; break; }
        if (ret != Z_OK && ret != Z_BUF_ERROR) { err = "inflate failed"; break; }
        if (left == 0 && total < cap) { err = "unexpected end of stream (truncated?)"; break; }
    }
    inflateEnd(&zs); /* err, when set, is a string literal of zlib's or ours */
    if (err || total > max) {
        free(buf);
        if (err) return asym_fail("%s: corrupt gzip data: %s (after %zu bytes of output)", path, err, total);
        return asym_fail("%s: larger than %zu bytes", path, max);
    }
    *out = buf;
    *outlen = total;
    return ASYM_OK;
}

int io_read_all(const char *path, uint8_t **data, size_t *len, size_t max) {
    return io_read_file(path, data, len, max, 1);
}

int io_read_file(const char *path, uint8_t **data, size_t *len, size_t max, int gz) {
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return asym_fail("%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return asym_fail("%s: not a regular file", path);
    }
    if ((uintmax_t)st.st_size > max) {
        fclose(f);
        return asym_fail("%s: larger than %zu bytes", path, max);
    }
    size_t n = (size_t)st.st_size;
    uint8_t *raw = malloc(n ? n : 1);
    if (!raw) {
        fclose(f);
        return asym_fail("%s: out of memory for %zu bytes", path, n);
    }
    size_t got = fread(raw, 1, n, f);
    int rerr = ferror(f);
    fclose(f);
    if (got != n) {
        free(raw);
        return asym_fail("%s: read %zu of %zu bytes: %s", path, got, n, rerr ? strerror(errno) : "file shrank");
    }
    if (gz && n >= 2 && raw[0] == 0x1f && raw[1] == 0x8b) {
        int rc = gunzip(path, raw, n, data, len, max);
        free(raw);
        return rc;
    }
    *data = raw;
    *len = n;
    return ASYM_OK;
}

int io_mkdir_p(const char *dir) {
    char p[4096];
    if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p) return asym_fail("%s: path too long", dir);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = 0;
        if (mkdir(p, 0755) != 0 && errno != EEXIST) return asym_fail("%s: cannot create: %s", p, strerror(errno));
        *s = '/';
    }
    if (mkdir(p, 0755) != 0 && errno != EEXIST) return asym_fail("%s: cannot create: %s", p, strerror(errno));
    return ASYM_OK;
}

int io_write_atomic(const char *path, const void *const *parts, const size_t *lens, int n) {
    char tmp[4400];
    /* per process, so that runs sharing a folder (a cache) do not collide */
    if (snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int)getpid()) >= (int)sizeof tmp) return asym_fail("%s: path too long", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return asym_fail("%s: cannot create: %s", tmp, strerror(errno));
    int ok = 1;
    for (int i = 0; i < n && ok; i++) ok = lens[i] == 0 || fwrite(parts[i], 1, lens[i], f) == lens[i];
    int err = errno;
    if (ok && (fflush(f) != 0 || fsync(fileno(f)) != 0)) ok = 0, err = errno;
    if (fclose(f) != 0 && ok) ok = 0, err = errno;
    if (ok && rename(tmp, path) != 0) ok = 0, err = errno;
    if (!ok) {
        remove(tmp);
        return asym_fail("%s: write failed: %s", path, strerror(err));
    }
    return ASYM_OK;
}
