/* runner.c: runs every registered test (or those whose name contains one of
 * the arguments; an argument ^NAME picks the names that begin with NAME),
 * one line each (ok, FAIL, or skip with the reason), and ends with
 * "N passed, N failed, N skipped". A test that called test_skip counts as
 * skipped, unless it also failed; under CI (CI=true) test_skip fails the
 * test instead. The exit status is 1 when a test failed. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "test.h"

#define MAX_TESTS 1024

static struct {
    const char *name;
    void (*fn)(void);
} tests[MAX_TESTS];
static int n_tests, failed_now, skipped_now;
static char tmpdir[512], skip_why[512];

void test_register(const char *name, void (*fn)(void)) {
    if (n_tests < MAX_TESTS) {
        tests[n_tests].name = name;
        tests[n_tests].fn = fn;
        n_tests++;
    }
}

void test_fail(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    fprintf(stdout, "    %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    failed_now = 1;
}

void test_skip(const char *fmt, ...) {
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    const char *ci = getenv("CI");
    if (ci && !strcmp(ci, "true")) {
        printf("    CI=true: nothing may skip under CI, a skip means a broken install; it would have skipped: %s\n", why);
        failed_now = 1;
        return;
    }
    if (!skipped_now) snprintf(skip_why, sizeof skip_why, "%s", why);
    skipped_now = 1;
}

const char *test_tmpdir(void) { return tmpdir; }

const char *test_srcdir(void) {
    const char *s = getenv("ASYM_SRCDIR");
    return s ? s : ".";
}

static int cmp_name(const void *a, const void *b) {
    return strcmp(((const char *const *)a)[0], ((const char *const *)b)[0]);
}

int main(int argc, char **argv) {
    int passed = 0, failed = 0, skipped = 0;
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(tmpdir, sizeof tmpdir, "%s/asymbp-test-%d", base, (int)getpid());
    mkdir(tmpdir, 0755);
    qsort(tests, n_tests, sizeof tests[0], cmp_name);
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 0; i < n_tests; i++) {
        int want = argc < 2;
        for (int a = 1; a < argc; a++)
            if (argv[a][0] == '^' ? !strncmp(tests[i].name, argv[a] + 1, strlen(argv[a] + 1)) : strstr(tests[i].name, argv[a]) != NULL) want = 1;
        if (!want) continue;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        failed_now = skipped_now = 0;
        printf("... %s\n", tests[i].name);
        tests[i].fn();
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double s = (t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec);
        if (!failed_now && skipped_now) {
            printf("skip %s (%s)\n", tests[i].name, skip_why);
            skipped++;
            continue;
        }
        printf("%s %s (%.2fs)\n", failed_now ? "FAIL" : "ok  ", tests[i].name, s);
        if (failed_now) failed++; else passed++;
    }
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed ? 1 : 0;
}
