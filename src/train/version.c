/* version.c: what built this library and what a run uses, as the one-line
 * JSON object every run folder keeps in version.json: the git commit
 * ("-dirty" when built from sources under src/ include/ cli/ that differ
 * from it), the compiler and its flags (ASYM_COMMIT and ASYM_FLAGS, given
 * by the Makefile to this file alone, so that a new commit rebuilds only
 * it), OpenBLAS's configuration, the convolution backend, the threads and
 * the MPI ranks. Two runs agree bit for bit only when all of these do. */
#include <cblas.h>
#include <stdio.h>
#include <string.h>

#include "asymbp.h"
#include "dist/dist.h"

#ifndef ASYM_COMMIT
#define ASYM_COMMIT "unknown"
#endif
#ifndef ASYM_FLAGS
#define ASYM_FLAGS "unknown"
#endif

#if defined(__clang__)
#define COMPILER "clang " __clang_version__
#elif defined(__GNUC__)
#define COMPILER "gcc " __VERSION__
#else
#define COMPILER "unknown"
#endif

/* Appends "key": "value" to buf (n bytes, *k used), escaping quotes,
 * backslashes and control characters. */
static void put_string(char *buf, size_t n, size_t *k, const char *key, const char *value) {
    *k += snprintf(buf + (*k < n ? *k : n), *k < n ? n - *k : 0, "%s\"%s\": \"", *k > 1 ? ", " : "", key);
    for (const char *p = value ? value : ""; *p; p++) {
        unsigned char c = (unsigned char)*p;
        char esc[8];
        if (c == '"' || c == '\\') snprintf(esc, sizeof esc, "\\%c", c);
        else if (c < 0x20) snprintf(esc, sizeof esc, "\\u%04x", c);
        else esc[0] = (char)c, esc[1] = 0;
        *k += snprintf(buf + (*k < n ? *k : n), *k < n ? n - *k : 0, "%s", esc);
    }
    *k += snprintf(buf + (*k < n ? *k : n), *k < n ? n - *k : 0, "\"");
}

int asym_version_json(char *buf, size_t n, int threads) {
    char blas[256];
    size_t k = 0;
    /* OpenBLAS's build options and the kernels it chose for this CPU */
    snprintf(blas, sizeof blas, "%s", openblas_get_config());
    size_t len = strlen(blas);
    while (len > 0 && blas[len - 1] == ' ') blas[--len] = 0;
    k += snprintf(buf, n, "{");
    put_string(buf, n, &k, "asymbp", ASYM_VERSION);
    put_string(buf, n, &k, "commit", ASYM_COMMIT);
    put_string(buf, n, &k, "flags", ASYM_FLAGS);
    put_string(buf, n, &k, "compiler", COMPILER);
    put_string(buf, n, &k, "blas", blas);
    put_string(buf, n, &k, "convolutions", asym_conv_backend());
    k += snprintf(buf + (k < n ? k : n), k < n ? n - k : 0, ", \"threads\": %d, \"ranks\": %d}", threads, dist_size() > 0 ? dist_size() : 1);
    return (int)k;
}
