/* test_mpi.c: data-parallel training under mpirun (docs/MPI.md), with the
 * MPI build that `make check` names in ASYM_MPI_BIN: two ranks give the
 * single-process loss curve of the same global batch (1e-5 relative after
 * 100 steps without batch norm, 1e-4 with synchronized batch norm), the
 * rank check catches a rank whose weights were altered, a rank killed with
 * SIGKILL ends the job within 60 s and leaves a valid checkpoint, a resume
 * needs as many ranks, a sweep spreads its runs over the ranks, and the
 * plain build refuses to run under mpirun. Each of those prints a note and
 * passes when the MPI build or mpirun is missing; the config keys and the
 * per-step log (steps.jsonl) are tested without MPI. Small nets on
 * synthetic data: the machine running the suite may have two cores. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "asymbp.h"
#include "test.h"

static char mpi_out[65536];

/* One thread per rank; no single-copy shared-memory transfers (containers
 * often forbid the ptrace access they need). */
#define MPI_ENV "OMP_NUM_THREADS=1 OMPI_MCA_btl_vader_single_copy_mechanism=none"

/* The MPI build and mpirun, or NULL with the test marked skipped. */
const char *mpi_bin(void) {
    const char *bin = getenv("ASYM_MPI_BIN");
    if (!bin || !*bin || access(bin, X_OK) != 0) {
        test_skip("no MPI build (make check builds one where mpicc and mpirun are installed: libopenmpi-dev, openmpi-bin)");
        return NULL;
    }
    if (system("command -v mpirun >/dev/null 2>&1") != 0) {
        test_skip("mpirun is not installed (openmpi-bin)");
        return NULL;
    }
    return bin;
}

/* Runs `mpirun -np np BIN args` from the source root, bounded by 300 s;
 * np 0: the plain build (ASYM_BIN, else the MPI build) alone. Output in
 * mpi_out. */
static int mpi_run(int np, const char *fmt, ...) {
    char args[4096], launch[256] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    if (np > 0) snprintf(launch, sizeof launch, "mpirun -np %d --oversubscribe %s", np, geteuid() == 0 ? "--allow-run-as-root" : "");
    const char *bin = np == 0 && getenv("ASYM_BIN") ? getenv("ASYM_BIN") : getenv("ASYM_MPI_BIN");
    return test_sh(mpi_out, sizeof mpi_out, "cd '%s' && " MPI_ENV " timeout 300 %s '%s' %s 2>&1", test_srcdir(), launch, bin, args);
}

/* A 64-32-4 MLP (with batch norm when bn) on 3200 synthetic 8x8 images:
 * 100 steps of 32 images per epoch. */
const char *mpi_mlp_cfg(const char *name, int bn) {
    static char path[2][512];
    char *p = path[bn != 0];
    snprintf(p, sizeof path[0], "%s/%s.yaml", test_tmpdir(), name);
    char text[1024];
    snprintf(text, sizeof text,
             "name: %s\nseed: 7\nepochs: 1\nbatch_size: 32\nthreads: 1\nlog_steps: true\n"
             "data:\n  format: random\n  random: {n: 3200, c: 1, h: 8, w: 8, classes: 4}\n"
             "model:\n  arch: mlp\n  hidden: [64, 32]\n  batchnorm: %s\n  init: xavier_uniform\n"
             "optimizer: {name: sgd, lr: 0.02, momentum: 0.9, weight_decay: 1.0e-4}\n",
             name, bn ? "true" : "false");
    test_write_file(p, text);
    return p;
}

/* Per-step losses of dir/steps.jsonl into loss (at most max); the count. */
static int read_steps(const char *dir, double *loss, int max) {
    char path[600], line[256];
    snprintf(path, sizeof path, "%s/steps.jsonl", dir);
    FILE *f = fopen(path, "r");
    int n = 0;
    if (!f) return 0;
    while (n < max && fgets(line, sizeof line, f)) {
        const char *p = strstr(line, "\"loss\": ");
        if (p) loss[n++] = atof(p + 8);
    }
    fclose(f);
    return n;
}

/* Trains cfg on one process and on two ranks; the largest relative
 * difference of their per-step losses over 100 steps. */
double mpi_curve_gap(const char *cfg, const char *tag, const char *set2) {
    char one[512], two[512];
    double a[200], b[200];
    snprintf(one, sizeof one, "%s/%s-1", test_tmpdir(), tag);
    snprintf(two, sizeof two, "%s/%s-2", test_tmpdir(), tag);
    if (mpi_run(0, "train '%s' --out '%s' --quiet", cfg, one) != 0) return printf("    single-process run failed:\n%s", mpi_out), 1e9;
    if (mpi_run(2, "train '%s' %s --out '%s'", cfg, set2, two) != 0) return printf("    two-rank run failed:\n%s", mpi_out), 1e9;
    int na = read_steps(one, a, 200), nb = read_steps(two, b, 200);
    if (na != 100 || nb != 100) return printf("    %d and %d steps logged, expected 100\n", na, nb), 1e9;
    double worst = 0;
    for (int i = 0; i < 100; i++) {
        double d = fabs(a[i] - b[i]) / fabs(a[i]);
        if (d > worst) worst = d;
    }
    printf("    %s: worst relative difference over 100 steps %.2e (last loss %.6f / %.6f)\n", tag, worst, a[99], b[99]);
    return worst;
}

TEST(mpi_two_ranks_match_single_process) {
    if (!mpi_bin()) return;
    double gap = mpi_curve_gap(mpi_mlp_cfg("mpi-mlp", 0), "plain", "");
    CHECK_MSG(gap <= 1e-5, "two ranks differ from one process by %.3g relative", gap);
    /* rank 0 alone prints and writes */
    char *first = strstr(mpi_out, "final test error");
    CHECK_MSG(first && !strstr(first + 1, "final test error"), "expected one result line:\n%s", mpi_out);
    char path[600];
    snprintf(path, sizeof path, "%s/plain-2/summary.json", test_tmpdir());
    char *text = test_read_file(path);
    CHECK(text);
    int ok = strstr(text, "\"ranks\": 2") && strstr(text, "\"allreduce_bytes_per_step\"");
    free(text);
    CHECK_MSG(ok, "summary.json lacks ranks and allreduce_bytes_per_step");
}

TEST(mpi_sync_batchnorm_matches_single_process) {
    if (!mpi_bin()) return;
    double gap = mpi_curve_gap(mpi_mlp_cfg("mpi-mlp-bn", 1), "syncbn", "--set model.sync_bn=true");
    CHECK_MSG(gap <= 1e-4, "two ranks with synchronized batch norm differ from one process by %.3g relative", gap);
}

/* Overlapped gradient sums (dist.overlap, the default) give the same bits
 * as one allreduce after the backward pass, whatever the bucket size: one
 * bucket per layer (0), a few layers per bucket, everything in one; with
 * bp and with dkp, whose direct feedback matrices learn from each rank's
 * share and are summed too. */
TEST(mpi_overlap_buckets_same_bits) {
    if (!mpi_bin()) return;
    const char *cfg = mpi_mlp_cfg("mpi-mlp-bn", 1);
    const char *rules[] = {"bp", "dkp"};
    const char *how[] = {"--set dist.overlap=false", "--set dist.bucket_mb=0", "--set dist.bucket_mb=0.01", "--set dist.bucket_mb=25"};
    for (int r = 0; r < 2; r++)
        for (int h = 0; h < 4; h++) {
            char dir[512], cmd[1200];
            snprintf(dir, sizeof dir, "%s/overlap-%s-%d", test_tmpdir(), rules[r], h);
            CHECK_MSG(mpi_run(2, "train '%s' --set rule=%s --set log_steps=false %s --out '%s'", cfg, rules[r], how[h], dir) == 0, "%s %s:\n%s", rules[r], how[h],
                      mpi_out);
            if (h == 0) continue;
            snprintf(cmd, sizeof cmd, "cmp -s '%s/overlap-%s-0/model.bin' '%s/model.bin'", test_tmpdir(), rules[r], dir);
            CHECK_MSG(system(cmd) == 0, "%s: model.bin with %s differs from the one without overlap", rules[r], how[h]);
        }
}

TEST(mpi_rank_check_catches_altered_rank) {
    if (!mpi_bin()) return;
    char dir[512];
    snprintf(dir, sizeof dir, "%s/perturbed", test_tmpdir());
    int rc = mpi_run(2, "train '%s' --set debug.perturb_rank=1 --set debug.perturb_step=5 --set dist.check_every=10 --out '%s'", mpi_mlp_cfg("mpi-mlp", 0), dir);
    CHECK_MSG(rc != 0, "a run whose rank 1 was altered succeeded:\n%s", mpi_out);
    CHECK_MSG(strstr(mpi_out, "models differ after epoch 1, step 10: rank 1's"), "no rank-check message:\n%s", mpi_out);
    CHECK(!test_exists(dir, "summary.json"));
}

TEST(mpi_dead_rank_ends_job) {
    if (!mpi_bin()) return;
    char dir[512], script[4096];
    snprintf(dir, sizeof dir, "%s/killed", test_tmpdir());
    /* a long run; once its first checkpoint exists, rank 1 gets SIGKILL */
    snprintf(script, sizeof script,
             "cd '%s' && " MPI_ENV " mpirun -np 2 --oversubscribe %s '%s' train '%s' --set epochs=100000 --set log_steps=false --out '%s' >'%s.log' 2>&1 &\n"
             "MP=$!\n"
             "for i in $(seq 1200); do [ -f '%s/checkpoint.bin' ] && break; sleep 0.1; done\n"
             "found=0\n"
             "for d in /proc/[0-9]*; do [ \"$(cut -d' ' -f4 $d/stat 2>/dev/null)\" = $MP ] && tr '\\0' '\\n' <$d/environ | grep -qx OMPI_COMM_WORLD_RANK=1 && kill -9 ${d#/proc/} && found=1; done\n"
             "[ $found = 1 ] || { kill $MP; echo 'rank 1 not found'; exit; }\n"
             "s=$(date +%%s); wait $MP; rc=$?; e=$(date +%%s)\n"
             "echo \"rc=$rc seconds=$((e - s))\"\n",
             test_srcdir(), geteuid() == 0 ? "--allow-run-as-root" : "", getenv("ASYM_MPI_BIN"), mpi_mlp_cfg("mpi-mlp", 0), dir, dir, dir);
    char path[600];
    snprintf(path, sizeof path, "%s/kill.sh", test_tmpdir());
    test_write_file(path, script);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "timeout 200 sh '%s'", path);
    FILE *p = popen(cmd, "r");
    CHECK(p);
    char line[256] = "";
    if (!fgets(line, sizeof line, p)) line[0] = 0;
    pclose(p);
    int rc = -1, seconds = -1;
    CHECK_MSG(sscanf(line, "rc=%d seconds=%d", &rc, &seconds) == 2, "the kill script said '%s'", line);
    printf("    rank 1 killed: mpirun ended after %d s with status %d\n", seconds, rc);
    CHECK_MSG(rc != 0, "mpirun reported success after a rank died");
    CHECK_MSG(seconds <= 60, "mpirun took %d s to end after a rank died", seconds);
    /* the last checkpoint is whole: it exports */
    int erc = mpi_run(0, "export '%s/checkpoint.bin' '%s/export'", dir, dir);
    CHECK_MSG(erc == 0, "the checkpoint left behind does not read back:\n%s", mpi_out);
}

TEST(mpi_resume_needs_same_ranks) {
    if (!mpi_bin()) return;
    char dir[512], whole[512];
    const char *cfg = mpi_mlp_cfg("mpi-mlp", 0);
    snprintf(dir, sizeof dir, "%s/resumed", test_tmpdir());
    snprintf(whole, sizeof whole, "%s/whole", test_tmpdir());
    CHECK_MSG(mpi_run(2, "train '%s' --set data.random.n=640 --out '%s'", cfg, dir) == 0, "%s", mpi_out);
    int rc = mpi_run(0, "train --resume '%s' --set epochs=2", dir);
    CHECK_MSG(rc != 0 && strstr(mpi_out, "written by a run on 2 MPI ranks; resume it with mpirun -np 2"), "resume on one process: %d\n%s", rc, mpi_out);
    CHECK_MSG(mpi_run(2, "train --resume '%s' --set epochs=2", dir) == 0, "%s", mpi_out);
    /* as if never stopped */
    CHECK_MSG(mpi_run(2, "train '%s' --set data.random.n=640 --set epochs=2 --out '%s'", cfg, whole) == 0, "%s", mpi_out);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cmp -s '%s/model.bin' '%s/model.bin'", dir, whole);
    CHECK_MSG(system(cmd) == 0, "the resumed run's model.bin differs from the uninterrupted run's");
}

TEST(mpi_sweep_spreads_runs_over_ranks) {
    if (!mpi_bin()) return;
    char dir[512];
    snprintf(dir, sizeof dir, "%s/sweep", test_tmpdir());
    int rc = mpi_run(2, "sweep '%s' --rules bp,fa --lr-mult 1,0.1 --set data.random.n=320 --set log_steps=false --out '%s'", mpi_mlp_cfg("mpi-mlp", 0), dir);
    CHECK_MSG(rc == 0, "sweep failed:\n%s", mpi_out);
    const char *runs[] = {"bp/lr_x1", "bp/lr_x0.1", "fa/lr_x1", "fa/lr_x0.1"};
    for (int i = 0; i < 4; i++) {
        char run[700];
        snprintf(run, sizeof run, "%s/%s", dir, runs[i]);
        CHECK_MSG(test_exists(run, "summary.json"), "%s was not trained:\n%s", runs[i], mpi_out);
    }
    char *table = strstr(mpi_out, "sweep of 4 runs");
    CHECK_MSG(table && !strstr(table + 1, "sweep of 4 runs") && test_exists(dir, "table.md"), "expected one table:\n%s", mpi_out);
}

TEST(mpi_plain_build_refuses_mpirun) {
    if (!mpi_bin()) return;
    const char *plain = getenv("ASYM_BIN");
    if (!plain || !strcmp(plain, getenv("ASYM_MPI_BIN"))) {
        test_skip("ASYM_BIN is the MPI build (make MPI=1 check): no plain build to run under mpirun");
        return;
    }
    char dir[512];
    snprintf(dir, sizeof dir, "%s/plain-under-mpirun", test_tmpdir());
    int rc = test_sh(mpi_out, sizeof mpi_out, "cd '%s' && timeout 120 mpirun -np 2 --oversubscribe %s '%s' train '%s' --out '%s' 2>&1",
                     test_srcdir(), geteuid() == 0 ? "--allow-run-as-root" : "", plain, mpi_mlp_cfg("mpi-mlp", 0), dir);
    CHECK_MSG(rc > 0, "the plain build trained under mpirun:\n%s", mpi_out);
    CHECK_MSG(strstr(mpi_out, "built without MPI"), "no message:\n%s", mpi_out);
    CHECK(!test_exists(dir, "summary.json"));
}

/* The keys of docs/MPI.md, read without MPI. */
TEST(mpi_config_keys) {
    char path[512];
    snprintf(path, sizeof path, "%s/dist-keys.yaml", test_tmpdir());
    test_write_file(path, "log_steps: true\ndata: {format: random}\nmodel: {arch: mlp, sync_bn: true}\n"
                          "dist: {check_every: 5, overlap: false, bucket_mb: 0.5}\ndebug: {perturb_rank: 1, perturb_step: 3}\n");
    AsymConfig *cfg;
    AsymExperiment ex;
    CHECK_OK(asym_config_load(&cfg, path));
    CHECK_OK(asym_experiment_from_config(&ex, cfg));
    int ok = ex.log_steps && ex.sync_bn && ex.dist_check_every == 5 && !ex.dist_overlap && ex.dist_bucket_mb == 0.5f && ex.perturb_rank == 1 &&
             ex.perturb_step == 3;
    asym_experiment_free(&ex);
    CHECK(ok);
    CHECK(asym_config_set(cfg, "dist.check_every=-1") == 0);
    CHECK(asym_experiment_from_config(&ex, cfg) != 0 && strstr(asym_last_error(), "dist.check_every"));
    CHECK(asym_config_set(cfg, "dist.check_every=1") == 0 && asym_config_set(cfg, "dist.bucket_mb=-1") == 0);
    CHECK(asym_experiment_from_config(&ex, cfg) != 0 && strstr(asym_last_error(), "dist.bucket_mb"));
    asym_config_free(cfg);
    test_write_file(path, "data: {format: random}\nmodel: {arch: mlp}\n");
    CHECK_OK(asym_config_load(&cfg, path));
    CHECK_OK(asym_experiment_from_config(&ex, cfg));
    ok = !ex.log_steps && !ex.sync_bn && ex.dist_check_every == 0 && ex.dist_overlap && ex.dist_bucket_mb == 25 && ex.perturb_rank == -1;
    asym_experiment_free(&ex);
    asym_config_free(cfg);
    CHECK(ok);
}

/* log_steps: a resumed run's steps.jsonl drops the lines written after its
 * checkpoint and ends as the uninterrupted run's does. */
TEST(steps_log_resume) {
    char whole[512], part[512], path[600];
    const char *cfg = mpi_mlp_cfg("steps", 0);
    snprintf(whole, sizeof whole, "%s/steps-whole", test_tmpdir());
    snprintf(part, sizeof part, "%s/steps-part", test_tmpdir());
    CHECK_MSG(test_cli("train '%s' --set data.random.n=320 --set epochs=2 --out '%s' --quiet", cfg, whole) == 0, "%s", test_out);
    CHECK_MSG(test_cli("train '%s' --set data.random.n=320 --out '%s' --quiet", cfg, part) == 0, "%s", test_out);
    /* as if the run had gone on past its checkpoint before it was killed */
    snprintf(path, sizeof path, "%s/steps.jsonl", part);
    FILE *f = fopen(path, "a");
    CHECK(f);
    fputs("{\"epoch\": 2, \"step\": 1, \"loss\": 9}\n", f);
    fclose(f);
    CHECK_MSG(test_cli("train --resume '%s' --set epochs=2 --quiet", part) == 0, "%s", test_out);
    char *a = test_read_file(path), *b;
    snprintf(path, sizeof path, "%s/steps.jsonl", whole);
    b = test_read_file(path);
    int same = a && b && !strcmp(a, b), lines = 0;
    for (const char *p = b; p && *p; p++) lines += *p == '\n';
    free(a);
    free(b);
    CHECK_MSG(same && lines == 20, "steps.jsonl of the resumed run differs from the uninterrupted run's (%d lines)", lines);
}
