/* tar.c: the members of a tar file (POSIX ustar, with GNU long names),
 * listed without reading their data: the shards webdataset-style tools
 * write hold KEY.jpg and KEY.cls members one after the other. Every
 * header is checked (its checksum, an octal size, a member that ends
 * inside the file) before it is trusted; a bad one is an error naming the
 * file and its byte offset. pax extended headers are skipped (the ustar
 * name that follows is used). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "asymbp.h"
#include "data/data.h"

enum { BLOCK = 512, NAME_MAX_LEN = 4096 };

/* An octal field of n bytes (spaces or NULs around it): its value, or -1. */
static long long octal(const uint8_t *f, int n) {
    long long v = 0;
    int i = 0, digits = 0;
    while (i < n && f[i] == ' ') i++;
    for (; i < n && f[i] >= '0' && f[i] <= '7'; i++, digits++) {
        if (v > (1LL << 56)) return -1;
        v = v * 8 + (f[i] - '0');
    }
    for (; i < n; i++)
        if (f[i] != ' ' && f[i] != 0) return -1;
    return digits ? v : -1;
}

static int checksum_ok(const uint8_t *h) {
    long long want = octal(h + 148, 8), sum = 0;
    for (int i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? ' ' : h[i];
    return want == sum;
}

static int all_zero(const uint8_t *h) {
    for (int i = 0; i < BLOCK; i++)
        if (h[i]) return 0;
    return 1;
}

/* The ustar name: prefix "/" name, each NUL-terminated within its field. */
static void ustar_name(const uint8_t *h, char *out, size_t cap) {
    char name[101], prefix[156];
    memcpy(name, h, 100), name[100] = 0;
    memcpy(prefix, h + 345, 155), prefix[155] = 0;
    if (!memcmp(h + 257, "ustar", 5) && prefix[0]) snprintf(out, cap, "%s/%s", prefix, name);
    else snprintf(out, cap, "%s", name);
}

/* Reads n bytes at off (the whole of them, or an error naming path). */
static int read_at(FILE *f, const char *path, long long off, void *buf, size_t n) {
    if (fseeko(f, (off_t)off, SEEK_SET) || fread(buf, 1, n, f) != n) return asym_fail("%s: cannot read %zu bytes at byte %lld", path, n, off);
    return ASYM_OK;
}

/* A GNU long name member (type 'L'): its text becomes the next name. */
static int long_name(FILE *f, const char *path, long long off, long long size, char *out) {
    if (size < 1 || size >= NAME_MAX_LEN) return asym_fail("%s: a long-name record of %lld bytes at byte %lld", path, size, off);
    if (read_at(f, path, off, out, (size_t)size)) return ASYM_ERR;
    out[size] = 0;
    return ASYM_OK;
}

static int scan(FILE *f, const char *path, long long file_size, TarMember cb, void *user) {
    uint8_t h[BLOCK];
    char name[NAME_MAX_LEN], longn[NAME_MAX_LEN];
    longn[0] = 0;
    for (long long off = 0; off + BLOCK <= file_size;) {
        if (read_at(f, path, off, h, BLOCK)) return ASYM_ERR;
        if (all_zero(h)) return ASYM_OK; /* the end-of-archive blocks */
        if (!checksum_ok(h)) return asym_fail("%s: not a tar header at byte %lld (bad checksum)", path, off);
        long long size = octal(h + 124, 12), data = off + BLOCK;
        if (size < 0 || size > file_size - data) return asym_fail("%s: member at byte %lld claims %lld bytes, past the end of the file", path, off, size);
        char type = (char)h[156];
        if (type == 'L') {
            if (long_name(f, path, data, size, longn)) return ASYM_ERR;
        } else {
            if (longn[0]) snprintf(name, sizeof name, "%s", longn);
            else ustar_name(h, name, sizeof name);
            if ((type == '0' || type == 0) && cb(user, f, name, (uint64_t)data, (uint64_t)size)) return ASYM_ERR;
            if (type != 'x' && type != 'g') longn[0] = 0;
        }
        off = data + (size + BLOCK - 1) / BLOCK * BLOCK;
    }
    return ASYM_OK;
}

int tar_scan(const char *path, TarMember cb, void *user) {
    struct stat st;
    if (stat(path, &st) || !S_ISREG(st.st_mode)) return asym_fail("%s: no such tar file", path);
    FILE *f = fopen(path, "rb");
    if (!f) return asym_fail("%s: cannot open", path);
    int rc = scan(f, path, (long long)st.st_size, cb, user);
    fclose(f);
    return rc;
}

int tar_read_member(FILE *f, const char *path, uint64_t off, uint64_t size, uint8_t *buf) {
    return read_at(f, path, (long long)off, buf, (size_t)size);
}
