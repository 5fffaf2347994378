/* test.h: the test framework. A test is a function registered with TEST();
 * CHECK* macros report file and line and end the test on the first failure.
 * The runner (tests/runner.c) prints one line per test and finishes with
 * "N passed, N failed". */
#ifndef ASYM_TEST_H
#define ASYM_TEST_H

#include <math.h>
#include <stdio.h>

void test_register(const char *name, void (*fn)(void));
void test_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Directory for a test's scratch files (created fresh per test run). */
const char *test_tmpdir(void);
/* Root of the source tree (where configs/ and tests/ are). */
const char *test_srcdir(void);

#define TEST(name)                                                          \
    static void name(void);                                                 \
    __attribute__((constructor)) static void test_reg_##name(void) {        \
        test_register(#name, name);                                         \
    }                                                                       \
    static void name(void)

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            test_fail(__FILE__, __LINE__, "%s", #cond);                     \
            return;                                                         \
        }                                                                   \
    } while (0)

#define CHECK_MSG(cond, ...)                                                \
    do {                                                                    \
        if (!(cond)) {                                                      \
            test_fail(__FILE__, __LINE__, __VA_ARGS__);                     \
            return;                                                         \
        }                                                                   \
    } while (0)

/* |a - b| <= tol * max(1, |a|, |b|) */
#define CHECK_NEAR(a, b, tol)                                               \
    do {                                                                    \
        double a_ = (a), b_ = (b), m_ = fmax(1.0, fmax(fabs(a_), fabs(b_)));\
        if (!(fabs(a_ - b_) <= (tol) * m_)) {                               \
            test_fail(__FILE__, __LINE__, "%s = %.9g, %s = %.9g", #a, a_, #b, b_); \
            return;                                                         \
        }                                                                   \
    } while (0)

#define CHECK_OK(expr)                                                      \
    do {                                                                    \
        if ((expr) != 0) {                                                  \
            test_fail(__FILE__, __LINE__, "%s failed: %s", #expr, asym_last_error()); \
            return;                                                         \
        }                                                                   \
    } while (0)

#endif
