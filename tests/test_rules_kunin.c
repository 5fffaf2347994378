/* test_rules_kunin.c: Kunin et al. 2020's alignment rules sa, aa and ia
 * (src/rules/kunin.c): PyTorch's autograd of R(W, B, x) as oracle for the
 * gradient the probe records and for B after the steps; ia without null on
 * noise equal to the weight mirror (wm) under the documented mapping; B
 * identical on two MPI ranks and equal to one process's; and end-to-end
 * runs on Fashion-MNIST in which B turns towards W. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"

/* Each rule on the MLP and the conv net (three steps), at its defaults and
 * with coefficients large enough that B's steps are far above rounding. */
TEST(oracle_rule_sa) {
    static const OracleCase c[] = {{"mlp", 3, "--set rule=sa", "sa,sa,sa"},
                                   {"conv", 3, "--set rule=sa", "sa,sa,sa,sa"},
                                   {"mlp", 3, "--set rule=sa --set feedback.sa.alpha=0.3 --set feedback.sa.beta=0.5", NULL},
                                   {"conv", 3, "--set rule=sa --set feedback.sa.alpha=0.3 --set feedback.sa.beta=0.5", NULL}};
    test_oracle_group("sa", c, (int)(sizeof c / sizeof c[0]), NULL);
}

TEST(oracle_rule_aa) {
    static const OracleCase c[] = {{"mlp", 3, "--set rule=aa", "aa,aa,aa"},
                                   {"conv", 3, "--set rule=aa", "aa,aa,aa,aa"},
                                   {"mlp", 3, "--set rule=aa --set feedback.aa.alpha=0.01 --set feedback.aa.beta=0.03", NULL},
                                   {"conv", 3, "--set rule=aa --set feedback.aa.alpha=0.01 --set feedback.aa.beta=0.03", NULL}};
    test_oracle_group("aa", c, (int)(sizeof c / sizeof c[0]), NULL);
}

TEST(oracle_rule_ia) {
    static const OracleCase c[] = {{"mlp", 3, "--set rule=ia", "ia,ia,ia"},
                                   {"conv", 3, "--set rule=ia", "ia,ia,ia,ia"},
                                   {"mlp", 3, "--set rule=ia --set feedback.ia.alpha=0.02 --set feedback.ia.beta=0.01 --set feedback.ia.gamma=0.05", NULL},
                                   {"conv", 3, "--set rule=ia --set feedback.ia.alpha=0.02 --set feedback.ia.beta=0.01 --set feedback.ia.gamma=0.05", NULL}};
    test_oracle_group("ia", c, (int)(sizeof c / sizeof c[0]), NULL);
}

/* A 20-16-10 MLP on random inputs under rule r, options from cfg text. */
static AsymNet *small_net(int rule, AsymFeedbackSpec *fb, int batch) {
    static AsymLayerSpec layers[] = {{.kind = ASYM_FC, .out = 16, .bias = 1}, {.kind = ASYM_TANH}, {.kind = ASYM_FC, .out = 10, .bias = 1}};
    AsymNetSpec spec = {.in_c = 1, .in_h = 1, .in_w = 20, .classes = 10, .layers = layers, .n_layers = 3, .init = ASYM_INIT_XAVIER_UNIFORM, .rule = rule, .fb = *fb};
    AsymRng rng;
    rng_seed(&rng, 5);
    AsymNet *net = NULL;
    if (asym_net_create(&net, &spec, batch, &rng)) return NULL;
    return net;
}

/* Kunin's mirror form R = alpha amp + gamma decay on noise (ia with beta
 * 0) under plain SGD of rate eta, B <- (1 - 2 eta gamma) B + eta alpha
 * E[(Wx) x^T], is wm's step B <- (1 - decay) B + lr E[(Wx) x^T] / std^2
 * (fc) for decay = 2 eta gamma and lr = eta alpha std^2, on the same noise:
 * both draw it from the layer's generator, once per step, and wm_presweep
 * 0 leaves none to wm's start. W frozen (its learning-rate scale 0), as a
 * mirror step reads W after the optimizer's and R's gradient before it. */
TEST(kunin_mirror_equals_wm) {
    const float eta = 0.1f, std = 0.3f, alpha = 0.02f, gamma = 0.005f;
    const int N = 8, steps = 5;
    AsymFeedbackSpec wf, kf;
    asym_feedback_defaults(&wf);
    wf.wm_noise = ASYM_NOISE_UNIFORM, wf.wm_std = std, wf.wm_lr = eta * alpha * std * std, wf.wm_decay = 2 * eta * gamma, wf.wm_presweep = 0;
    asym_feedback_defaults(&kf);
    int ia = asym_rule_parse("ia");
    CHECK(ia > 0);
    kf.rule_opt[ia][0] = alpha, kf.rule_opt[ia][1] = 0, kf.rule_opt[ia][2] = gamma, kf.rule_opt[ia][3] = 1 /* uniform */, kf.rule_opt[ia][4] = std;
    AsymNet *nets[2] = {small_net(ASYM_RULE_WM, &wf, N), small_net(ia, &kf, N)};
    CHECK_MSG(nets[0] && nets[1], "%s", asym_last_error());
    AsymOptSpec os = {.kind = ASYM_SGD, .lr = eta};
    AsymOptim *opt[2];
    float x[8 * 20];
    int32_t y[8];
    for (int i = 0; i < N * 20; i++) x[i] = sinf(0.7f * i);
    for (int i = 0; i < N; i++) y[i] = i % 10;
    double worst = 0, moved = 0;
    for (int k = 0; k < 2; k++) {
        CHECK_OK(asym_optim_create(&opt[k], nets[k], &os));
        for (int i = 0; i < asym_net_n_weight_layers(nets[k]); i++) net_weight_layer(nets[k], i)->W->lr_scale = 0;
    }
    /* the same W and B to start with */
    for (int i = 0; i < asym_net_n_feedback(nets[0]); i++)
        CHECK(!memcmp(asym_net_feedback(nets[0], i)->w, asym_net_feedback(nets[1], i)->w, sizeof(float) * asym_net_feedback(nets[0], i)->n));
    float *B0 = malloc(sizeof(float) * asym_net_feedback(nets[0], 0)->n);
    memcpy(B0, asym_net_feedback(nets[0], 0)->w, sizeof(float) * asym_net_feedback(nets[0], 0)->n);
    for (int s = 0; s < steps; s++)
        for (int k = 0; k < 2; k++) {
            asym_net_zero_grad(nets[k]);
            asym_net_forward(nets[k], x, N, 1);
            asym_net_loss(nets[k], y, N, 1, NULL);
            asym_optim_step(opt[k], eta);
            asym_net_feedback_update(nets[k]);
        }
    for (int i = 0; i < asym_net_n_feedback(nets[0]); i++) {
        const AsymParam *a = asym_net_feedback(nets[0], i), *b = asym_net_feedback(nets[1], i);
        double scale = 0;
        for (size_t j = 0; j < a->n; j++) scale = fmax(scale, fabs(a->w[j]));
        for (size_t j = 0; j < a->n; j++) worst = fmax(worst, fabs(a->w[j] - b->w[j]) / scale);
        if (i == 0)
            for (size_t j = 0; j < a->n; j++) moved = fmax(moved, fabs(a->w[j] - B0[j]) / scale);
    }
    printf("    wm and ia (beta 0, uniform noise) after %d steps: B differ by %.2e of max|B|; B moved %.2e\n", steps, worst, moved);
    free(B0);
    for (int k = 0; k < 2; k++) asym_optim_free(opt[k]), asym_net_free(nets[k]);
    CHECK_MSG(moved > 1e-3, "B barely moved (%.2e): the test compares nothing", moved);
    CHECK_MSG(worst < 1e-5, "wm and Kunin's mirror form differ by %.2e of max|B|", worst);
}

/* Learned B on two MPI ranks: after every 10 steps the ranks' models are
 * compared (dist.check_every), and the per-step losses match one
 * process's. */
TEST(mpi_kunin_two_ranks) {
    const char *bin = getenv("ASYM_MPI_BIN");
    if (!bin || !*bin || access(bin, X_OK) != 0 || system("command -v mpirun >/dev/null 2>&1") != 0) {
        test_skip("no MPI build or mpirun");
        return;
    }
    char cfg[600], out[65536];
    snprintf(cfg, sizeof cfg, "%s/kunin-mpi.yaml", test_tmpdir());
    test_write_file(cfg, "name: kunin-mpi\nseed: 7\nepochs: 1\nbatch_size: 32\nthreads: 1\nlog_steps: true\n"
                         "data:\n  format: random\n  random: {n: 1600, c: 1, h: 8, w: 8, classes: 4}\n"
                         "model:\n  arch: mlp\n  hidden: [64, 32]\n  batchnorm: false\n  init: xavier_uniform\n"
                         "optimizer: {name: sgd, lr: 0.02, momentum: 0.9, weight_decay: 1.0e-4}\n"
                         "dist: {check_every: 10}\n");
    const char *rules[] = {"sa --set feedback.sa.alpha=0.2 --set feedback.sa.beta=0.3", "aa --set feedback.aa.alpha=0.01 --set feedback.aa.beta=0.03",
                           "ia --set feedback.ia.alpha=0.05 --set feedback.ia.beta=0.01 --set feedback.ia.gamma=0.02"};
    for (int r = 0; r < 3; r++) {
        double loss[2][64];
        int n[2];
        for (int np = 1; np <= 2; np++) {
            char dir[700], path[800], line[512];
            snprintf(dir, sizeof dir, "%s/kunin-mpi-%d-%d", test_tmpdir(), r, np);
            int rc = test_sh(out, sizeof out,
                             "cd '%s' && OMP_NUM_THREADS=1 OMPI_MCA_btl_vader_single_copy_mechanism=none timeout 300 mpirun -np %d --oversubscribe %s '%s' train '%s' "
                             "--set rule=%s --out '%s' --quiet 2>&1",
                             test_srcdir(), np, geteuid() == 0 ? "--allow-run-as-root" : "", bin, cfg, rules[r], dir);
            CHECK_MSG(rc == 0, "%s on %d ranks failed (%d):\n%s", rules[r], np, rc, out);
            snprintf(path, sizeof path, "%s/steps.jsonl", dir);
            FILE *f = fopen(path, "r");
            CHECK(f);
            n[np - 1] = 0;
            while (n[np - 1] < 64 && fgets(line, sizeof line, f)) {
                const char *p = strstr(line, "\"loss\": ");
                if (p) loss[np - 1][n[np - 1]++] = atof(p + 8);
            }
            fclose(f);
        }
        CHECK_MSG(n[0] == 50 && n[1] == 50, "%d and %d steps logged, expected 50", n[0], n[1]);
        double worst = 0;
        for (int i = 0; i < 50; i++) worst = fmax(worst, fabs(loss[0][i] - loss[1][i]) / fabs(loss[0][i]));
        printf("    %s: two ranks agree (checked every 10 steps); losses within %.2e of one process's\n", rules[r], worst);
        CHECK_MSG(worst <= 1e-5, "%s: two ranks differ from one process by %.3g relative", rules[r], worst);
    }
}

/* ---- end to end ---- */

static int e2e_seed(void) {
    const char *s = getenv("ASYM_E2E_SEED");
    return s && atoi(s) > 0 ? atoi(s) : 1;
}

/* A tanh MLP 784-64-32-10 on 4000 Fashion-MNIST images, two epochs; the
 * best test error and each weight layer's B-W angle at the start and end. */
static int kunin_run(const char *tag, const char *sets, double *err, double a0[3], double a1[3]) {
    char cfg[600], dir[600], path[700];
    snprintf(cfg, sizeof cfg, "%s/kunin-e2e.yaml", test_tmpdir());
    test_write_file(cfg, "name: kunin-e2e\nepochs: 2\nbatch_size: 32\n"
                         "data: {format: idx, path: " TEST_FMNIST ", normalize: true, train_limit: 4000, test_limit: 1000}\n"
                         "model:\n  init: xavier_uniform\n  layers:\n    - flatten\n    - {type: fc, out: 64}\n    - tanh\n"
                         "    - {type: fc, out: 32}\n    - tanh\n    - {type: fc, out: 10}\n"
                         "optimizer: {name: sgd, lr: 0.01, momentum: 0.9}\n");
    snprintf(dir, sizeof dir, "%s/e2e_%s", test_tmpdir(), tag);
    if (test_cli("train '%s' %s --set seed=%d --out '%s' --quiet", cfg, sets, e2e_seed(), dir)) {
        printf("    %s: train failed:\n%s", tag, test_out);
        return -1;
    }
    snprintf(path, sizeof path, "%s/summary.json", dir);
    json_error_t e;
    json_t *s = json_load_file(path, 0, &e);
    if (!s) return -1;
    *err = json_number_value(json_object_get(s, "best_test_err"));
    for (int i = 0; i < 3; i++) {
        a0[i] = json_number_value(json_array_get(json_object_get(s, "initial_angles"), i));
        a1[i] = json_number_value(json_array_get(json_object_get(s, "final_angles"), i));
    }
    json_decref(s);
    return 0;
}

/* Checks that every layer's angle fell by at least `drop` degrees and
 * ended below `below`, and the error is at most max_err. */
static void kunin_e2e(const char *rule, const char *sets, double drop, double below, double max_err) {
    double err, a0[3], a1[3], least = 1e9, worst = 0;
    if (!test_have_fmnist()) return;
    CHECK(kunin_run(rule, sets, &err, a0, a1) == 0);
    for (int i = 0; i < 3; i++) least = fmin(least, a0[i] - a1[i]), worst = fmax(worst, a1[i]);
    printf("    E2E seed %d %s: best test error %.2f%%, angles %.1f %.1f %.1f -> %.1f %.1f %.1f\n", e2e_seed(), rule, 100 * err, a0[0], a0[1], a0[2], a1[0], a1[1], a1[2]);
    CHECK_MSG(least >= drop, "%s: a layer's angle fell by only %.1f degrees", rule, least);
    CHECK_MSG(worst <= below, "%s: a layer's angle ended at %.1f degrees", rule, worst);
    CHECK_MSG(err <= max_err, "%s: best test error %.2f%%", rule, 100 * err);
}

/* sa with beta = 2 alpha pulls B to W: every angle from about 90 to a few
 * degrees, and the net learns as bp's does (19-20% here). */
TEST(e2e_sa_mlp) { kunin_e2e("sa", "--set rule=sa --set feedback.sa.alpha=0.5 --set feedback.sa.beta=1", 70, 10, 0.23); }

/* aa aligns B with W on the inputs' span only (no decay): angles fall
 * from about 90 degrees, less in the first layer (pixels span little). */
TEST(e2e_aa_mlp) { kunin_e2e("aa", "--set rule=aa --set feedback.aa.alpha=0.01 --set feedback.aa.beta=0.02", 5, 85, 0.30); }

/* ia (amp, null, decay) turns every layer's B towards W. */
TEST(e2e_ia_mlp) { kunin_e2e("ia", "--set rule=ia --set feedback.ia.alpha=0.1 --set feedback.ia.beta=0.01 --set feedback.ia.gamma=0.05", 15, 75, 0.30); }
