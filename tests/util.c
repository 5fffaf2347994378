/* util.c: helpers shared by the end-to-end tests (test.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

char test_out[65536];

int test_sh(char *out, size_t cap, const char *fmt, ...) {
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    out[0] = 0;
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = 0;
    while (fgetc(p) != EOF) {}
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int test_cli(const char *fmt, ...) {
    char args[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    const char *bin = getenv("ASYM_BIN") ? getenv("ASYM_BIN") : "build/asymbp";
    return test_sh(test_out, sizeof test_out, "cd '%s' && '%s' %s 2>&1", test_srcdir(), bin, args);
}

int test_exists(const char *dir, const char *name) {
    char path[1024];
    struct stat sb;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &sb) == 0;
}

int test_have_fmnist(void) {
    if (access(TEST_FMNIST "/train-images-idx3-ubyte.gz", R_OK) == 0) return 1;
    test_skip("Fashion-MNIST is not installed in " TEST_FMNIST " (dataset-fashion-mnist)");
    return 0;
}

const char *test_python(void) {
    const char *p = getenv("ASYMBP_PYTHON");
    return p && *p ? p : "/usr/bin/python3";
}

void test_no_oracle(const char *file, int line, const char *fmt, ...) {
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    const char *req = getenv("ASYM_REQUIRE_ORACLES");
    if (req && *req && strcmp(req, "0"))
        test_fail(file, line, "%s; ASYM_REQUIRE_ORACLES is set (make check), so the oracle tests may not skip: "
                  "install python3-torch and python3-numpy, or set ASYMBP_PYTHON to a Python that has them", why);
    else
        test_skip("%s", why);
}

void test_write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

char *test_read_file_n(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (len) *len = 0;
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (s && fread(s, 1, (size_t)n, f) == (size_t)n) s[n] = 0;
    else free(s), s = NULL;
    fclose(f);
    if (s && len) *len = (size_t)n;
    return s;
}

char *test_read_file(const char *path) { return test_read_file_n(path, NULL); }
