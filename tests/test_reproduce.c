/* test_reproduce.c: a run shipped in docs/results still reproduces bit for
 * bit. docs/results/reproduce (made by scripts/shipped_run.sh at the commit
 * that last changed the numerics) holds a short LeNet-5 run's config.yaml,
 * its logs with the loss of every step, and the SHA-256 of its weights;
 * training the config again must give the same step losses, the same epoch
 * log (all but the timings) and the same weights. A change that moves
 * results by one bit fails here until the folder is remade with it. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

#define SHIPPED "docs/results/reproduce"

/* The value of "KEY: value" in asymbp version's output, or "" */
static void version_field(const char *text, const char *key, char *out, size_t cap) {
    out[0] = 0;
    char pat[64];
    snprintf(pat, sizeof pat, "\n%s: ", key);
    const char *p = strstr(text, pat);
    if (!p) return;
    p += strlen(pat);
    size_t n = strcspn(p, "\n");
    if (n >= cap) n = cap - 1;
    memcpy(out, p, n);
    out[n] = 0;
}

/* The lines of a log.jsonl without the fields that time the run; numbers
 * by value (1 and 1.0 are one number). */
static json_t *log_without_timings(const char *path) {
    char *text = test_read_file(path);
    if (!text) return NULL;
    json_t *lines = json_array();
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        json_t *o = json_loads(line, JSON_DECODE_INT_AS_REAL, NULL);
        if (!o) { json_decref(lines); free(text); return NULL; }
        json_object_del(o, "seconds");
        json_object_del(o, "images_per_s");
        json_array_append_new(lines, o);
    }
    free(text);
    return lines;
}

TEST(shipped_run_reproduces) {
    if (getenv("ASYM_QUICK")) { test_skip("ASYM_QUICK: a 3-epoch training run is too slow here"); return; }
    if (!test_have_fmnist()) return;
    char path[1024], out[4096];
    snprintf(path, sizeof path, "%s/" SHIPPED "/version.json", test_srcdir());
    json_t *shipped = json_load_file(path, 0, NULL);
    CHECK_MSG(shipped, "%s is missing or not JSON", path);
    char want_conv[256];
    snprintf(want_conv, sizeof want_conv, "%s", json_string_value(json_object_get(shipped, "convolutions")) ? json_string_value(json_object_get(shipped, "convolutions")) : "");
    json_decref(shipped);
    const char *bin = getenv("ASYM_BIN") ? getenv("ASYM_BIN") : "build/asymbp";
    /* under the kernels the run is made with: the name says which oneDNN
     * algorithms the processor (here: oneDNN's AVX2 ceiling) gives */
    CHECK(test_sh(out, sizeof out, "cd '%s' && OPENBLAS_CORETYPE=Haswell ONEDNN_MAX_CPU_ISA=AVX2 '%s' version 2>&1", test_srcdir(), bin) == 0);
    char conv[256];
    version_field(out, "convolutions", conv, sizeof conv);
    if (strcmp(conv, want_conv)) {
        test_skip("this build's convolutions (%s) are not the shipped run's (%s)", conv, want_conv);
        return;
    }

    /* OpenBLAS's Haswell kernels and oneDNN's AVX2 ones, as scripts/shipped_run.sh made it with */
    const char *dir = test_tmpdir();
    int rc = test_sh(out, sizeof out,
                     "cd '%s' && OPENBLAS_CORETYPE=Haswell ONEDNN_MAX_CPU_ISA=AVX2 '%s' train " SHIPPED "/config.yaml --out '%s/rerun' 2>&1",
                     test_srcdir(), bin, dir);
    CHECK_MSG(rc == 0, "training %s/config.yaml failed: %s", SHIPPED, out);

    const char *remake = "; if the numerics changed on purpose, remake the folder with scripts/shipped_run.sh and commit it with the change";
    snprintf(path, sizeof path, "%s/" SHIPPED "/steps.jsonl", test_srcdir());
    char *want = test_read_file(path);
    CHECK_MSG(want, "%s is missing", path);
    snprintf(path, sizeof path, "%s/rerun/steps.jsonl", dir);
    char *got = test_read_file(path);
    int same = got && !strcmp(want, got);
    int step = 0;
    if (!same && got) {   /* the first step whose loss differs */
        size_t i = 0;
        while (want[i] && want[i] == got[i]) i++;
        for (size_t j = 0; j < i; j++) step += want[j] == '\n';
        step++;
    }
    free(want);
    free(got);
    CHECK_MSG(same, "steps.jsonl differs from the shipped one from step %d on%s", step, remake);

    snprintf(path, sizeof path, "%s/" SHIPPED "/log.jsonl", test_srcdir());
    json_t *log_want = log_without_timings(path);
    snprintf(path, sizeof path, "%s/rerun/log.jsonl", dir);
    json_t *log_got = log_without_timings(path);
    int log_same = log_want && log_got && json_equal(log_want, log_got);
    json_decref(log_want);
    json_decref(log_got);
    CHECK_MSG(log_same, "log.jsonl differs from the shipped one (timings aside)%s", remake);

    char sum_want[256] = "", sum_got[256] = "";
    CHECK(test_sh(sum_want, sizeof sum_want, "cut -d' ' -f1 '%s/" SHIPPED "/model.sha256'", test_srcdir()) == 0);
    CHECK(test_sh(sum_got, sizeof sum_got, "cd '%s/rerun' && sha256sum model.bin | cut -d' ' -f1", dir) == 0);
    CHECK(strlen(sum_want) == 65);   /* 64 hex digits and a newline */
    CHECK_MSG(!strcmp(sum_want, sum_got), "the trained weights differ from the shipped run's (SHA-256 %.64s, shipped %.64s)%s",
              sum_got, sum_want, remake);
}
