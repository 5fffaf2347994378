/* test.h: the test framework. A test is a function registered with TEST();
 * CHECK* macros report file and line and end the test on the first failure.
 * The runner (tests/runner.c) prints one line per test (ok, FAIL or skip)
 * and finishes with "N passed, N failed, N skipped". */
#ifndef ASYM_TEST_H
#define ASYM_TEST_H

#include <math.h>
#include <stdio.h>

/* The tests see the library from inside: every folder's header. */
#include "train/train.h"

void test_register(const char *name, void (*fn)(void));
void test_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Marks the running test skipped, saying why (the runner prints
 * "skip NAME (why)"); the test then returns, or goes on with the part it
 * can check. A test that also fails counts as failed. Under CI (CI=true)
 * nothing may skip: the test fails instead, as a broken install. */
void test_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Directory for a test's scratch files (created fresh per test run). */
const char *test_tmpdir(void);
/* Root of the source tree (where configs/ and tests/ are). */
const char *test_srcdir(void);
/* A layer's own training (t = 1) or evaluation (0) pass on its network's
 * dropout stream, for tests that drive layers/layers.h directly. */
#define LAYER_PASS(l, t) (&(Pass){.train = (t), .rng = &(l)->ctx->rng})

/* End-to-end helpers (tests/util.c). test_cli runs the asymbp command
 * (ASYM_BIN, default build/asymbp) from the source root with the given
 * arguments (a shell fragment) and returns its exit code, keeping stdout and
 * stderr in test_out. */
#define TEST_FMNIST "/usr/share/datasets/fashion-mnist"
extern char test_out[65536];
int test_cli(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Runs a shell command line; its output (what the line sends to stdout: add
 * 2>&1 for stderr) goes to out, cap bytes at most, NUL-terminated. The
 * exit code, or -1 when the command did not exit normally. */
int test_sh(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int test_exists(const char *dir, const char *name);
int test_have_fmnist(void);   /* 0, the test marked skipped (test_skip), when it is missing */
/* The one Python of the oracle tests (PyTorch, numpy): $ASYMBP_PYTHON, else
 * /usr/bin/python3. */
const char *test_python(void);
/* For a test that cannot run because test_python() lacks PyTorch or numpy:
 * a skip (test_skip), or a failure where ASYM_REQUIRE_ORACLES is set
 * (make check sets it). The test returns after it. */
#define TEST_NO_ORACLE(...) test_no_oracle(__FILE__, __LINE__, __VA_ARGS__)
void test_no_oracle(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void test_write_file(const char *path, const char *text);

/* The PyTorch oracle of the feedback rules (tests/util.c, used by
 * test_oracle_rules.c and test_rules_direct.c). A case: `asymbp probe` of
 * tests/oracle/rules_<net>.yaml with the probe-only arguments extra (the
 * rule, overrides) over `steps` optimizer steps; rules: the rule every
 * weight layer must resolve to ("fa,usf,fa,bp"), or NULL. */
typedef struct {
    const char *net;
    int steps;
    const char *extra;
    const char *rules;
} OracleCase;
const char *test_asym_bin(void);   /* ASYM_BIN, default build/asymbp */
int test_system(const char *cmd);  /* system(): exit status, -1 when it did not exit normally */
void test_show(const char *path);  /* prints a file indented (a failed command's output) */
/* Whether torch_oracle.py can run; if not, the test skips or fails (as
 * TEST_NO_ORACLE), saying why. */
int test_have_torch(void);
/* Probes one case into <tmp>/rules-<tag> (dir) with the group options
 * opts: the probe's exit status, its log printed when it failed. */
int test_probe(const OracleCase *c, const char *tag, const char *opts, char *dir, size_t n);
/* The rules the probe's weight layers resolved to, comma-separated. */
int test_manifest_rules(const char *dir, char *out, size_t n);
/* Probes every case side by side (the MLPs only with Fashion-MNIST), checks
 * the resolved rules and runs torch_oracle.py once on all of them with the
 * group options; fails the test unless every probe agrees. */
void test_oracle_group(const char *group, const OracleCase *cases, int n, const char *opts);
/* A version-1 checkpoint of count records (the bytes records, n) into b
 * (24 + n + 4 bytes), its length field and CRC right: what gets past the
 * checksum to the record parser. Its length. */
size_t test_forge_checkpoint(uint8_t *b, uint32_t count, const void *records, size_t n);
char *test_read_file(const char *path);   /* malloc'ed, NUL-terminated; NULL if unreadable */
char *test_read_file_n(const char *path, size_t *len);   /* the same, and its length */

/* End-to-end training runs (tests/util.c): the seed ASYM_E2E_SEED
 * (default 1); test_train trains `config` with the extra --set arguments and
 * that seed into <tmp>/e2e_<tag>, 0 on success with the run read back: its
 * summary, its last log line and best test error. */
typedef struct json_t json_t;
typedef struct E2eRun {
    json_t *summary, *last;
    double err;   /* best test error */
} E2eRun;
int test_e2e_seed(void);
int test_train(E2eRun *r, const char *tag, const char *config, const char *sets);
void test_run_free(E2eRun *r);
/* Layer i's value of key in the last epoch's alignment measurements (NaN
 * when null); the number of layers measured; item i of a summary array. */
double test_layer_value(const E2eRun *r, int i, const char *key);
int test_n_layers(const E2eRun *r);
double test_summary_item(const E2eRun *r, const char *key, int i);
/* a tanh MLP, 784-256-256-10 on Fashion-MNIST, 2 epochs of batch 64, SGD
 * with momentum 0.9 at lr 0.01 (test_e2e.c) */
const char *e2e_mlp_cfg(void);

/* MPI (tests/test_mpi.c): the MPI build and mpirun, or NULL with the test
 * marked skipped; a 64-32-4 MLP config on synthetic data (100 steps); the
 * largest relative difference of the per-step losses of cfg trained on one
 * process and on two ranks (set2: their extra arguments). */
const char *mpi_bin(void);
const char *mpi_mlp_cfg(const char *name, int bn);
double mpi_curve_gap(const char *cfg, const char *tag, const char *set2);

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
