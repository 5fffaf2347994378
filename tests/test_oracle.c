/* test_oracle.c: PyTorch as oracle. Each test runs `asymbp probe` on one of
 * the small networks in tests/oracle/ (one forward and backward pass
 * in training mode on a fixed batch, then a few optimizer steps on it) and
 * hands the result to tests/oracle/torch_oracle.py, which rebuilds the
 * network in torch.nn with the same weights and batch and checks the loss,
 * logits, dlogits, dx, every parameter gradient, the batch-norm running
 * statistics and every parameter after the steps (SGD or Adam) to 1e-4
 * relative (float32). The Python is test_python() (/usr/bin/python3, or
 * ASYMBP_PYTHON). Without PyTorch the tests skip, saying why, and fail
 * where ASYM_REQUIRE_ORACLES is set (make check); with ASYM_NO_TORCH set
 * they skip. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

#define FMNIST "/usr/share/datasets/fashion-mnist"

static const char *bin(void) { return getenv("ASYM_BIN") ? getenv("ASYM_BIN") : "build/asymbp"; }

/* Exit status of a shell command, -1 when it did not exit normally. */
static int sh(const char *cmd) {
    int st = system(cmd);
    return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Prints a file's contents indented (the output of a failed command). */
static void show(const char *path) {
    FILE *f = fopen(path, "r");
    char line[1024];
    if (!f) return;
    while (fgets(line, sizeof line, f)) printf("      %s", line);
    fclose(f);
}

/* Prints the last line of a file indented (the oracle's summary). */
static void show_last(const char *path) {
    FILE *f = fopen(path, "r");
    char line[1024], last[1024] = "";
    if (!f) return;
    while (fgets(line, sizeof line, f)) snprintf(last, sizeof last, "%s", line);
    fclose(f);
    if (*last) printf("    %s", last);
}

static int have_fmnist(void) {
    if (access(FMNIST "/train-images-idx3-ubyte.gz", R_OK) == 0 || access(FMNIST "/train-images-idx3-ubyte", R_OK) == 0) return 1;
    test_skip("Fashion-MNIST is not installed in " FMNIST " (dataset-fashion-mnist)");
    return 0;
}

/* Probes tests/oracle/NAME.yaml (with extra CLI arguments) into a scratch
 * folder named tag and writes the folder's path into dir. */
static int probe(const char *name, const char *tag, int batch, int steps, const char *extra, char *dir, size_t n) {
    char cmd[4096], log[1200];
    snprintf(dir, n, "%s/oracle-%s", test_tmpdir(), tag);
    snprintf(log, sizeof log, "%s.probe.txt", dir);
    /* passive waiting: spinning OpenMP threads crawl when the cores are shared */
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive} '%s' probe '%s/tests/oracle/%s.yaml' %s --batch %d --steps %d --out '%s' >'%s' 2>&1", dir, bin(),
             test_srcdir(), name, extra ? extra : "", batch, steps, dir, log);
    int rc = sh(cmd);
    if (rc != 0) {
        printf("    asymbp probe exited with %d:\n", rc);
        show(log);
    }
    return rc;
}

/* Runs the oracle on dir; returns its exit status, keeping its output in
 * dir.oracle.txt. */
static int oracle(const char *dir, char *log, size_t n) {
    char cmd[4096];
    snprintf(log, n, "%s.oracle.txt", dir);
    snprintf(cmd, sizeof cmd, "'%s' '%s/tests/oracle/torch_oracle.py' '%s' >'%s' 2>&1", test_python(), test_srcdir(), dir, log);
    return sh(cmd);
}

/* The whole check for one network: probe, oracle, exit status 0. */
static void check_network(const char *name, const char *tag, int batch, int steps, const char *extra) {
    char dir[1024], log[1200];
    if (!test_have_torch()) return;
    CHECK_MSG(probe(name, tag, batch, steps, extra, dir, sizeof dir) == 0, "asymbp probe of tests/oracle/%s.yaml failed", name);
    int rc = oracle(dir, log, sizeof log);
    if (rc != 0) show(log);
    else show_last(log);
    CHECK_MSG(rc == 0, "asymbp and PyTorch disagree on tests/oracle/%s.yaml%s%s (torch_oracle.py exit %d)", name, extra ? " " : "", extra ? extra : "", rc);
}

/* MLP 784-64-32-10, batch norm after each hidden layer; SGD, Nesterov
 * momentum, weight decay; 3 steps. */
TEST(oracle_mlp_batchnorm) {
    if (!have_fmnist()) return;
    check_network("mlp_bn", "mlp", 16, 3, NULL);
}

/* BioTorch's LeNet-5 on 32x32 Fashion-MNIST; SGD momentum, weight decay. */
TEST(oracle_lenet) {
    if (!have_fmnist()) return;
    check_network("lenet", "lenet", 16, 2, NULL);
}

/* Basic residual blocks with identity, option-A and option-B shortcuts. */
TEST(oracle_resblock_shortcuts) { check_network("resnet_shortcuts", "shortcuts", 16, 3, NULL); }

/* Bottleneck blocks (option B with stride 2, identity); Adam, weight decay. */
TEST(oracle_resblock_bottleneck) { check_network("resnet_bottleneck", "bottleneck", 16, 3, NULL); }

/* The named CIFAR ResNet-20 (option A) on 8x8 random images. */
TEST(oracle_resnet20) { check_network("resnet20", "resnet20", 8, 2, NULL); }

/* Strided convs with bias and padding, tanh, sigmoid, average pooling with
 * padding, max pooling, global average pool; Adam, weight decay. */
TEST(oracle_strided_conv) { check_network("strided_conv", "strided", 16, 3, NULL); }

/* Sigmoid binary cross-entropy on a non-square input; plain SGD. */
TEST(oracle_sigmoid_bce) { check_network("sigmoid_bce", "bce", 16, 2, NULL); }

/* A single optimizer step of each kind on the strided net: SGD with
 * momentum and weight decay, then Adam with weight decay. */
TEST(oracle_one_step_sgd_momentum_wd) {
    check_network("strided_conv", "step-sgd", 16, 1,
                  "--set optimizer.name=sgd --set optimizer.lr=0.1 --set optimizer.momentum=0.9 --set optimizer.weight_decay=0.01");
}

TEST(oracle_one_step_adam_wd) {
    check_network("strided_conv", "step-adam", 16, 1, "--set optimizer.name=adam --set optimizer.lr=0.01 --set optimizer.weight_decay=0.01");
}

/* The oracle itself must notice a wrong gradient, a wrong step, a wrong
 * running statistic and a wrong input gradient: copies of one probe with a
 * relative error of 1e-2 in one value each must all be reported as
 * mismatches, and the unmodified probe must agree (one oracle process). */
TEST(oracle_detects_mismatch) {
    static const char *const cases[][2] = {
        {"g000.npy", "gradient of the first weight"},
        {"a003.npy", "value after the optimizer steps"},
        {"b001.npy", "running variance"},
        {"dx.npy", "input gradient"},
    };
    enum { NC = sizeof cases / sizeof cases[0] };
    char dir[1024], log[1200], cmd[8192], line[1024];
    if (!test_have_torch()) return;
    CHECK(probe("resnet_shortcuts", "mismatch", 8, 2, NULL, dir, sizeof dir) == 0);
    /* in the scratch root, where the probe is oracle-mismatch */
    int off = snprintf(cmd, sizeof cmd, "cd '%s' && '%s' -c \"import numpy as np, shutil\nfor i, f in enumerate([", test_tmpdir(), test_python());
    for (int i = 0; i < NC; i++) off += snprintf(cmd + off, sizeof cmd - off, "'%s', ", cases[i][0]);
    snprintf(cmd + off, sizeof cmd - off,
             "]):\n d = 'oracle-mismatch-%%d' %% i\n shutil.rmtree(d, True)\n shutil.copytree('oracle-mismatch', d)\n"
             " a = np.load(d + '/' + f)\n a.flat[np.abs(a).argmax()] *= 1.01\n np.save(d + '/' + f, a)\n\"");
    CHECK_MSG(sh(cmd) == 0, "could not write the perturbed copies: %s", cmd);
    snprintf(log, sizeof log, "%s.oracle.txt", dir);
    off = snprintf(cmd, sizeof cmd, "cd '%s' && '%s' '%s/tests/oracle/torch_oracle.py' -q oracle-mismatch", test_tmpdir(), test_python(),
                   test_srcdir());
    for (int i = 0; i < NC; i++) off += snprintf(cmd + off, sizeof cmd - off, " oracle-mismatch-%d", i);
    snprintf(cmd + off, sizeof cmd - off, " >'%s' 2>&1", log);
    int rc = sh(cmd);
    FILE *f = fopen(log, "r");
    CHECK(f);
    int n = 0, bad = 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "torch_oracle: ", 14)) continue;
        int mismatch = strstr(line, "MISMATCH") != NULL;
        if (n == 0 ? mismatch : !mismatch) {
            printf("    %s: %s", n == 0 ? "the unmodified probe" : cases[n - 1][1], line);
            bad = 1;
        }
        n++;
    }
    fclose(f);
    if (rc != 1 || bad || n != NC + 1) show(log);
    CHECK_MSG(n == NC + 1, "torch_oracle.py printed %d summaries for %d probes", n, NC + 1);
    CHECK_MSG(!bad, "the oracle missed a perturbation or flagged the unmodified probe");
    CHECK_MSG(rc == 1, "torch_oracle.py exit %d, expected 1", rc);
}
