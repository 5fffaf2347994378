/* version.c: what built this library and what a run uses, as the one-line
 * JSON object every run folder keeps in version.json: the git commit
 * ("-dirty" when built from sources under src/ include/ cli/ that differ
 * from it), the compiler and its flags (ASYM_COMMIT and ASYM_FLAGS, given
 * by the Makefile to this file alone, so that a new commit rebuilds only
 * it), OpenBLAS's configuration, the convolution backend, the threads and
 * the MPI ranks. Two runs agree bit for bit only when all of these do. */
#include <cblas.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
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

int asym_version_json(char *buf, size_t n, int threads) {
    char blas[256];
    /* OpenBLAS's build options and the kernels it chose for this CPU */
    snprintf(blas, sizeof blas, "%s", openblas_get_config());
    size_t len = strlen(blas);
    while (len > 0 && blas[len - 1] == ' ') blas[--len] = 0;
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:i}", "asymbp", ASYM_VERSION, "commit", ASYM_COMMIT, "flags", ASYM_FLAGS, "compiler", COMPILER,
                          "blas", blas, "convolutions", asym_conv_backend(), "threads", threads, "ranks", dist_size() > 0 ? dist_size() : 1);
    char *text = o ? json_dumps(o, 0) : NULL;
    json_decref(o);
    int k = snprintf(buf, n, "%s", text ? text : "{}");
    free(text);
    return k;
}
