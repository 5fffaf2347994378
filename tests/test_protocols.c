/* test_protocols.c: the papers' protocols. Liao et al.'s preset and its
 * batch-norm statistics recomputation; `asymbp sweep` on a small real subset
 * (runs, divergence, resume after kill -9, a mismatched configuration) and
 * `asymbp table`, whose best entries must match the runs' logs. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "asymbp.h"
#include "test.h"

static int load_text(AsymConfig **cfg, const char *name, const char *text) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", test_tmpdir(), name);
    test_write_file(path, text);
    return asym_config_load(cfg, path);
}

#define RANDOM_DATA "data: {format: random, random: {n: 200, c: 1, h: 8, w: 8, classes: 4}}\nmodel: {arch: mlp, hidden: [16]}\n"

TEST(protocol_liao_preset) {
    AsymConfig *cfg;
    AsymExperiment ex;
    CHECK_OK(load_text(&cfg, "liao.yaml", "protocol: liao\n" RANDOM_DATA));
    CHECK_OK(asym_experiment_from_config(&ex, cfg));
    CHECK(ex.epochs == 65 && ex.batch_size == 100);
    CHECK_NEAR(ex.opt.lr, 5e-4, 1e-9);
    CHECK_NEAR(ex.opt.momentum, 0.9, 1e-7);
    CHECK(ex.sched.kind == ASYM_SCHED_MULTISTEP);
    CHECK_NEAR(asym_sched_lr(&ex.sched, 1.0f, 49, 65), 1.0, 1e-7);
    CHECK_NEAR(asym_sched_lr(&ex.sched, 1.0f, 50, 65), 0.1, 1e-7);
    CHECK_NEAR(asym_sched_lr(&ex.sched, 1.0f, 60, 65), 0.01, 1e-7);
    CHECK(ex.bn_batches == 20);
    CHECK_NEAR(ex.bn_alpha, 0.05, 1e-7);
    /* the preset is written out, so a run folder's config.yaml says it all */
    CHECK(asym_config_get(cfg, "epochs") && !strcmp(asym_config_get(cfg, "epochs"), "65"));
    asym_experiment_free(&ex);
    asym_config_free(cfg);
    /* explicit keys win, a schedule of another kind is kept whole, and Adam gets no momentum */
    CHECK_OK(load_text(&cfg, "liao2.yaml",
                       "protocol: liao\nepochs: 3\noptimizer: {name: adam}\nschedule: {name: cosine}\nbn_recompute: {batches: 5}\n" RANDOM_DATA));
    CHECK_OK(asym_config_set(cfg, "batch_size=32"));
    CHECK_OK(asym_experiment_from_config(&ex, cfg));
    CHECK(ex.epochs == 3 && ex.batch_size == 32 && ex.opt.kind == ASYM_ADAM && ex.sched.kind == ASYM_SCHED_COSINE);
    CHECK(ex.bn_batches == 5);
    CHECK_NEAR(ex.bn_alpha, 0.05, 1e-7);
    asym_experiment_free(&ex);
    asym_config_free(cfg);
    /* no preset: no recomputation; a bad protocol name is an error naming the key */
    CHECK_OK(load_text(&cfg, "plain.yaml", RANDOM_DATA));
    CHECK_OK(asym_experiment_from_config(&ex, cfg));
    CHECK(ex.bn_batches == 0 && ex.epochs == 1);
    asym_experiment_free(&ex);
    asym_config_free(cfg);
    CHECK_OK(load_text(&cfg, "bad.yaml", "protocol: liao2016\n" RANDOM_DATA));
    CHECK(asym_experiment_from_config(&ex, cfg) != 0);
    CHECK_MSG(strstr(asym_last_error(), "bad.yaml:1") && strstr(asym_last_error(), "protocol"), "%s", asym_last_error());
    asym_config_free(cfg);
}

/* asym_net_recompute_stats: the first batch replaces the running statistics
 * with the batch's (mean, unbiased variance), later ones move them by alpha. */
TEST(protocol_bn_recompute) {
    AsymLayerSpec L[] = {{.kind = ASYM_BATCHNORM}, {.kind = ASYM_FLATTEN}, {.kind = ASYM_FC, .out = 2, .bias = 1}};
    AsymNetSpec s = {.in_c = 3, .in_h = 1, .in_w = 1, .classes = 2, .layers = L, .n_layers = 3};
    AsymRng rng;
    asym_rng_seed(&rng, 5);
    AsymNet *net;
    CHECK_OK(asym_net_create(&net, &s, 4, &rng));
    float x1[12], x2[12];
    for (int i = 0; i < 12; i++) x1[i] = (float)(i % 5) - 1.5f * (i % 3), x2[i] = 0.25f * i;
    AsymParam *mean = NULL, *var = NULL;
    for (int i = 0; i < asym_net_n_buffers(net); i++) {
        AsymParam *b = asym_net_buffer(net, i);
        if (strstr(b->name, "mean")) mean = b;
        if (strstr(b->name, "var")) var = b;
    }
    CHECK(mean && var && mean->n == 3);
    double m1[3], v1[3], m2[3], v2[3];
    const float *xs[2] = {x1, x2};
    double *ms[2] = {m1, m2}, *vs[2] = {v1, v2};
    for (int k = 0; k < 2; k++)
        for (int c = 0; c < 3; c++) {
            double m = 0, v = 0;
            for (int n = 0; n < 4; n++) m += xs[k][n * 3 + c] / 4.0;
            for (int n = 0; n < 4; n++) v += (xs[k][n * 3 + c] - m) * (xs[k][n * 3 + c] - m) / 3.0;
            ms[k][c] = m, vs[k][c] = v;
        }
    asym_net_recompute_stats(net, x1, 4, 0.05f, 1);
    for (int c = 0; c < 3; c++) {
        CHECK_NEAR(mean->w[c], m1[c], 1e-5);
        CHECK_NEAR(var->w[c], v1[c], 1e-5);
    }
    asym_net_recompute_stats(net, x2, 4, 0.05f, 0);
    for (int c = 0; c < 3; c++) {
        CHECK_NEAR(mean->w[c], 0.95 * m1[c] + 0.05 * m2[c], 1e-5);
        CHECK_NEAR(var->w[c], 0.95 * v1[c] + 0.05 * v2[c], 1e-5);
    }
    /* an ordinary training pass uses the layer's own momentum again (0.1) */
    asym_net_forward(net, x1, 4, 1);
    for (int c = 0; c < 3; c++) CHECK_NEAR(mean->w[c], 0.9 * (0.95 * m1[c] + 0.05 * m2[c]) + 0.1 * m1[c], 1e-5);
    asym_net_free(net);
}

/* ---- sweep and table ---- */

#define SWEEP_SETS "--set data.train_limit=300 --set data.test_limit=100 --set threads=1 --quiet"

static const char *sweep_dir(const char *name) {
    static char buf[4][1024];
    static int k;
    char *d = buf[k++ % 4];
    snprintf(d, 1024, "%s/%s", test_tmpdir(), name);
    return d;
}

/* The lowest test error in a run's log.jsonl and its epoch. */
static int log_best(const char *run, double *err, int *epoch) {
    char path[1200], line[8192];
    snprintf(path, sizeof path, "%s/log.jsonl", run);
    FILE *f = fopen(path, "r");
    if (!f) return 1;
    *err = 2;
    while (fgets(line, sizeof line, f)) {
        const char *e = strstr(line, "\"test_err\": "), *ep = strstr(line, "\"epoch\": ");
        if (!e || !ep) continue;
        double v = atof(e + 12);
        if (v < *err) *err = v, *epoch = atoi(ep + 9);
    }
    fclose(f);
    return 0;
}

/* The table.csv row of a rule: best_err, lr_mult, epoch, runs, diverged. */
static int csv_row(const char *dir, const char *rule, double *err, double *mult, int *epoch, int *runs, int *diverged) {
    char path[1200], line[512], want[32];
    snprintf(path, sizeof path, "%s/table.csv", dir);
    snprintf(want, sizeof want, "%s,", rule);
    FILE *f = fopen(path, "r");
    if (!f) return 1;
    int found = 0;
    while (!found && fgets(line, sizeof line, f))
        if (!strncmp(line, want, strlen(want))) {
            char data[64], metric[32];
            double secs;
            found = sscanf(line + strlen(want), "%63[^,],%31[^,],%lf,%lf,%d,%d,%d,%lf", data, metric, err, mult, epoch, runs, diverged, &secs) == 8;
        }
    fclose(f);
    return !found;
}

TEST(protocol_sweep_table_matches_logs) {
    if (!test_have_fmnist()) return;
    const char *out = sweep_dir("sweep1");
    int rc = test_cli("sweep configs/fmnist/lenet.yaml --rules bp,usf --lr-mult 1,0.1,100000 --set epochs=2 --set optimizer.lr=0.01 " SWEEP_SETS " --out '%s'", out);
    CHECK_MSG(rc == 0, "exit %d:\n%s", rc, test_out);
    CHECK_MSG(strstr(test_out, "sweep of 6 runs (2 diverged)"), "%s", test_out);
    static const char *const rules[] = {"bp", "usf"};
    static const char *const mults[] = {"1", "0.1"};
    for (int r = 0; r < 2; r++) {
        char run[1200];
        snprintf(run, sizeof run, "%s/%s/lr_x100000", out, rules[r]);
        char *sum = NULL;
        snprintf(run + strlen(run), 40, "/summary.json");
        CHECK_MSG((sum = test_read_file(run)) && strstr(sum, "\"diverged\": true"), "%s", run);
        free(sum);
        double best = 2, err, mult;
        int best_ep = 0, best_m = -1, ep, runs, div;
        for (int m = 0; m < 2; m++) {
            snprintf(run, sizeof run, "%s/%s/lr_x%s", out, rules[r], mults[m]);
            CHECK(test_exists(run, "summary.json") && test_exists(run, "config.yaml"));
            CHECK(log_best(run, &err, &ep) == 0);
            if (err < best) best = err, best_ep = ep, best_m = m;
        }
        CHECK(csv_row(out, rules[r], &err, &mult, &ep, &runs, &div) == 0);
        CHECK_NEAR(err, best, 1e-6);
        CHECK(ep == best_ep && runs == 3 && div == 1);
        CHECK_NEAR(mult, atof(mults[best_m]), 1e-9);
    }
    CHECK(test_exists(out, "table.md"));
    /* `asymbp table` reads the same logs back */
    rc = test_cli("table '%s'", out);
    CHECK_MSG(rc == 0 && strstr(test_out, "best test err") && strstr(test_out, "usf"), "%s", test_out);
    /* the same folder with another configuration is refused, not mixed */
    rc = test_cli("sweep configs/fmnist/lenet.yaml --rules bp --lr-mult 1 --set epochs=3 --set optimizer.lr=0.01 " SWEEP_SETS " --out '%s'", out);
    CHECK_MSG(rc == 2 && strstr(test_out, "another configuration"), "exit %d: %s", rc, test_out);
}

static long mtime_ns(const char *path) {
    struct stat st;
    return stat(path, &st) ? -1 : st.st_mtim.tv_sec * 1000000000L + st.st_mtim.tv_nsec;
}

/* kill -9 while the second run trains; the next sweep reads the first back
 * (its files untouched), continues the second from its checkpoint and runs
 * the rest. */
TEST(protocol_sweep_resumes_after_kill) {
    if (!test_have_fmnist()) return;
    const char *out = sweep_dir("sweep2");
    char first[1200], second[1200], cmd[4096];
    snprintf(first, sizeof first, "%s/bp/lr_x1/summary.json", out);
    snprintf(second, sizeof second, "%s/bp/lr_x0.1/checkpoint.bin", out);
    const char *bin = getenv("ASYM_BIN") ? getenv("ASYM_BIN") : "build/asymbp";
    snprintf(cmd, sizeof cmd,
             "cd '%s' && exec '%s' sweep configs/fmnist/lenet.yaml --rules bp,usf --lr-mult 1,0.1 --set epochs=3 --set optimizer.lr=0.01 --set "
             "data.train_limit=2000 --set data.test_limit=100 --set threads=1 --quiet --out '%s' > /dev/null 2>&1",
             test_srcdir(), bin, out);
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    CHECK(pid > 0);
    int waited = 0, st;
    while (mtime_ns(second) < 0 && waited < 120000 && waitpid(pid, &st, WNOHANG) == 0) {
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
        waited += 5;
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    CHECK_MSG(mtime_ns(first) > 0, "the first run did not finish before the kill");
    CHECK_MSG(!test_exists(out, "usf/lr_x0.1/summary.json"), "the sweep finished before it was killed");
    char *before = test_read_file(first);
    long t_first = mtime_ns(first);
    int rc = test_cli("sweep configs/fmnist/lenet.yaml --rules bp,usf --lr-mult 1,0.1 --set epochs=3 --set optimizer.lr=0.01 --set data.train_limit=2000 "
                      "--set data.test_limit=100 --set threads=1 --quiet --out '%s'",
                      out);
    CHECK_MSG(rc == 0, "exit %d:\n%s", rc, test_out);
    CHECK_MSG(strstr(test_out, "[1/4] bp, lr x1: finished earlier"), "%s", test_out);
    /* killed after its first epoch: it continues from that epoch's checkpoint */
    CHECK_MSG(strstr(test_out, "[2/4] bp, lr x0.1 = 0.001 ->") && strstr(test_out, "(continued from its checkpoint)"), "%s", test_out);
    char *after = test_read_file(first);
    CHECK(before && after && !strcmp(before, after) && mtime_ns(first) == t_first);
    free(before);
    free(after);
    for (int i = 0; i < 4; i++) {
        char run[1200];
        snprintf(run, sizeof run, "%s/%s/lr_x%s", out, i < 2 ? "bp" : "usf", i % 2 ? "0.1" : "1");
        CHECK(test_exists(run, "summary.json"));
        double err;
        int ep = 0, lines = 0;
        CHECK(log_best(run, &err, &ep) == 0);
        char path[1300], line[8192];
        snprintf(path, sizeof path, "%s/log.jsonl", run);
        FILE *f = fopen(path, "r");
        while (f && fgets(line, sizeof line, f)) lines++;
        if (f) fclose(f);
        CHECK_MSG(lines == 3, "%s: %d epochs logged", run, lines);
    }
}

/* Runs on two data sets make a column each; bad folders are clear errors. */
TEST(protocol_table_columns_and_errors) {
    const char *a = sweep_dir("tab_random"), *none = sweep_dir("tab_empty");
    char cfg[1200];
    snprintf(cfg, sizeof cfg, "%s/tab.yaml", test_tmpdir());
    test_write_file(cfg, "epochs: 1\nbatch_size: 20\n" RANDOM_DATA);
    int rc = test_cli("compare '%s' --rules bp,fa --quiet --out '%s'", cfg, a);
    CHECK_MSG(rc == 0, "%s", test_out);
    /* in a folder of runs, each run is a row named by its folder */
    char copy[2600];
    snprintf(copy, sizeof copy, "cp -r '%s/fa' '%s/fa_again'", a, a);
    CHECK(system(copy) == 0);
    rc = test_cli("table '%s'", a);
    CHECK_MSG(rc == 0 && strstr(test_out, "\nfa_again ") && strstr(test_out, "\nfa "), "%s", test_out);
    if (test_have_fmnist()) {
        const char *b = sweep_dir("sweep1");
        if (test_exists(b, "table.csv")) {
            rc = test_cli("table '%s' '%s' --out '%s/both'", a, b, test_tmpdir());
            CHECK_MSG(rc == 0 && strstr(test_out, "random test err") && strstr(test_out, "fashion-mnist test err"), "%s", test_out);
            char path[1200];
            snprintf(path, sizeof path, "%s/both/table.csv", test_tmpdir());
            char *csv = test_read_file(path);
            CHECK(csv && strstr(csv, "fa,random,test_err,") && strstr(csv, "usf,fashion-mnist,test_err,"));
            free(csv);
        }
    }
    /* one column per folder on request */
    const char *a2 = sweep_dir("tab_second");
    rc = test_cli("compare '%s' --rules bp --quiet --out '%s'", cfg, a2);
    CHECK_MSG(rc == 0, "%s", test_out);
    rc = test_cli("table '%s' '%s/' --columns dir", a, a2);
    CHECK_MSG(rc == 0 && strstr(test_out, "tab_random test err") && strstr(test_out, "tab_second test err"), "%s", test_out);
    mkdir(none, 0755);
    rc = test_cli("table '%s'", none);
    CHECK_MSG(rc == 1 && strstr(test_out, "no finished runs"), "%s", test_out);
    rc = test_cli("table '%s/missing'", none);
    CHECK_MSG(rc == 1 && strstr(test_out, "missing"), "%s", test_out);
    rc = test_cli("table");
    CHECK_MSG(rc == 2 && strstr(test_out, "usage"), "%s", test_out);
}

/* --vary crosses a setting with the rules; each variant is a row. */
TEST(protocol_sweep_vary) {
    const char *out = sweep_dir("sweep_vary");
    char cfg[1200];
    snprintf(cfg, sizeof cfg, "%s/vary.yaml", test_tmpdir());
    test_write_file(cfg, "epochs: 1\nbatch_size: 20\n" RANDOM_DATA);
    int rc = test_cli("sweep '%s' --rules frsf,bp --vary feedback.concordance=0.5,1 --lr-mult 1 --quiet --out '%s'", cfg, out);
    CHECK_MSG(rc == 0 && strstr(test_out, "sweep of 4 runs"), "%s", test_out);
    CHECK_MSG(strstr(test_out, "frsf@feedback.concordance=0.5") && strstr(test_out, "bp@feedback.concordance=1"), "%s", test_out);
    char path[1400];
    snprintf(path, sizeof path, "%s/frsf@feedback.concordance=0.5/lr_x1/config.yaml", out);
    char *text = test_read_file(path);
    CHECK_MSG(text && strstr(text, "concordance: 0.5") && strstr(text, "rule: frsf"), "%s", text ? text : path);
    free(text);
    rc = test_cli("sweep '%s' --rules frsf --vary feedback.concordance --out '%s'", cfg, out);
    CHECK_MSG(rc == 2 && strstr(test_out, "--vary"), "%s", test_out);
    rc = test_cli("sweep '%s' --rules frsf --lr-mult 1,-2 --out '%s'", cfg, out);
    CHECK_MSG(rc == 2 && strstr(test_out, "--lr-mult"), "%s", test_out);
    rc = test_cli("sweep '%s' --rules frsf,xx --out '%s'", cfg, out);
    CHECK_MSG(rc == 2 && strstr(test_out, "unknown rule 'xx'"), "%s", test_out);
}

/* A layer written as a bare type takes the map form's defaults: maxpool
 * and avgpool 2x2 with stride 2 (not a global pool), dropout p 0.5. */
TEST(protocol_bare_layer_defaults) {
    AsymConfig *cfg;
    AsymExperiment ex;
    CHECK_OK(load_text(&cfg, "bare.yaml",
                       "data: {format: random, random: {n: 20, c: 1, h: 8, w: 8, classes: 4}}\n"
                       "model:\n  layers: [{type: conv, out: 2, k: 3, pad: 1}, maxpool, avgpool, dropout, flatten, {type: fc, out: 4}]\n"));
    CHECK_OK(asym_experiment_from_config(&ex, cfg));
    const AsymLayerSpec *L = ex.net.layers;
    CHECK(ex.net.n_layers == 6);
    CHECK(L[1].kind == ASYM_MAXPOOL && L[1].k == 2 && L[1].stride == 2 && L[1].pad == 0);
    CHECK(L[2].kind == ASYM_AVGPOOL && L[2].k == 2 && L[2].stride == 2);
    CHECK(L[3].kind == ASYM_DROPOUT && fabs(L[3].p - 0.5f) < 1e-7);
    AsymRng rng;
    asym_rng_seed(&rng, 1);
    AsymNet *net;
    CHECK_OK(asym_net_create(&net, &ex.net, 4, &rng));
    /* conv 2x3x3 + bias, then fc from 2x2x2 = 8 features: 20 + 36 weights */
    CHECK_MSG(asym_net_n_weights(net) == 20 + 36, "%zu weights", asym_net_n_weights(net));
    asym_net_free(net);
    asym_experiment_free(&ex);
    asym_config_free(cfg);
}

/* `asymbp angles`: the per-layer angle curve read back from the log. */
TEST(protocol_angles_from_log) {
    const char *dir = sweep_dir("angles");
    char cfg[1200];
    snprintf(cfg, sizeof cfg, "%s/angles.yaml", test_tmpdir());
    test_write_file(cfg, "epochs: 3\nbatch_size: 20\nrule: fa\n" RANDOM_DATA);
    int rc = test_cli("train '%s' --quiet --out '%s'", cfg, dir);
    CHECK_MSG(rc == 0, "%s", test_out);
    rc = test_cli("angles '%s' --every 2", dir);
    CHECK_MSG(rc == 0 && strstr(test_out, ":fa ") && strstr(test_out, "mean"), "%s", test_out);
    /* epochs 1 (first), 2 (every 2nd) and 3 (last): three rows after the two header lines */
    int rows = 0;
    for (const char *p = strchr(strchr(test_out, '\n') + 1, '\n'); p && p[1]; p = strchr(p + 1, '\n')) rows++;
    CHECK_MSG(rows == 3, "%d rows:\n%s", rows, test_out);
    rc = test_cli("angles '%s/none'", dir);
    CHECK_MSG(rc == 1 && strstr(test_out, "cannot read"), "%s", test_out);
    char log[1300];
    snprintf(log, sizeof log, "%s/bad", dir);
    mkdir(log, 0755);
    snprintf(log, sizeof log, "%s/bad/log.jsonl", dir);
    test_write_file(log, "{\"epoch\": 1, \"layers\": []}\nnot json\n");
    rc = test_cli("angles '%s/bad'", dir);
    CHECK_MSG(rc == 1 && strstr(test_out, "log.jsonl:2"), "%s", test_out);
}
