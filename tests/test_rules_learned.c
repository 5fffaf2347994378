/* test_rules_learned.c: learned and product feedback, and sparse feedback
 * (docs/RULES.md): urfb (Amit 2019: B takes W's update without decay),
 * pfa (Li & Benna 2024: B = F R, R learned through an expanded
 * intermediate layer) and feedback.sparsity (a fixed mask on B).
 *   invariants   urfb's W - B stays W0 - B0 under SGD and momentum without
 *                weight decay (and moves by exactly W's decay with it);
 *                masked entries of B stay zero through every kind of
 *                update, and exactly round(s n) of them; pfa's B is F R
 *                after every step, F fixed;
 *   oracle       gradients, dx, layer errors and B (urfb's B, pfa's R
 *                and B, masked B of every rule) after a few steps against
 *                tests/oracle/torch_oracle.py;
 *   mpi          two ranks train urfb and pfa (sparse) as one process does,
 *                the rank check comparing every feedback matrix;
 *   e2e          urfb and pfa learn Fashion-MNIST with B turning towards W
 *                (every seed 1..5, scripts/e2e_seeds.sh). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "asymbp.h"
#include "net/net.h"
#include "rules/rules.h"
#include "test.h"

enum { IN = 20, HID = 12, K = 4, N = 8 };

/* A 20-12-4 tanh MLP under rule with the given feedback options, and an
 * optimizer; x, y: one fixed batch. */
typedef struct {
    AsymNet *net;
    AsymOptim *opt;
    float x[N * IN];
    int32_t y[N];
} Bench;

static int bench_open_with(Bench *b, const char *rule, const AsymFeedbackSpec *fb, const AsymOptSpec *o, int hid) {
    AsymLayerSpec L[] = {{.kind = ASYM_FLATTEN}, {.kind = ASYM_FC, .out = hid, .bias = 1}, {.kind = ASYM_TANH}, {.kind = ASYM_FC, .out = K, .bias = 1}};
    AsymNetSpec s = {.in_c = 1, .in_h = 1, .in_w = IN, .classes = K, .layers = L, .n_layers = 4, .init = ASYM_INIT_XAVIER_UNIFORM, .fb = *fb};
    s.rule = asym_rule_parse(rule);
    AsymRng rng;
    asym_rng_seed(&rng, 3);
    for (int i = 0; i < N * IN; i++) b->x[i] = (float)(2 * rng_uniform(&rng) - 1);
    for (int i = 0; i < N; i++) b->y[i] = i % K;
    b->net = NULL, b->opt = NULL;
    if (asym_net_create(&b->net, &s, N, &rng) || asym_optim_create(&b->opt, b->net, o)) {
        printf("    %s\n", asym_last_error());
        return -1;
    }
    return 0;
}

static AsymOptSpec opt_spec(AsymOptKind kind, float momentum, float wd) {
    return (AsymOptSpec){.kind = kind, .momentum = momentum, .weight_decay = wd, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f};
}

static int bench_open(Bench *b, const char *rule, float sparsity, float urfb_sparsity, AsymOptKind kind, float momentum, float wd) {
    AsymFeedbackSpec fb;
    asym_feedback_defaults(&fb);
    fb.sparsity = sparsity;
    fb.rule_opt[asym_rule_parse("urfb")][0] = urfb_sparsity;
    AsymOptSpec o = opt_spec(kind, momentum, wd);
    return bench_open_with(b, rule, &fb, &o, HID);
}

static void bench_step(Bench *b, float lr) {
    asym_net_zero_grad(b->net);
    asym_net_forward(b->net, b->x, N, 1);
    asym_net_loss(b->net, b->y, N, 1, NULL);
    asym_optim_step(b->opt, lr);
    asym_net_feedback_update(b->net);
}

static void bench_close(Bench *b) {
    asym_optim_free(b->opt);
    asym_net_free(b->net);
}

/* weight layer i's W (parameters 0, 2: W, b per layer) and its feedback
 * tensor named "<layer>.<suffix>" */
static AsymParam *W_of(Bench *b, int i) { return asym_net_param(b->net, 2 * i); }
static AsymParam *fb_of(Bench *b, int i, const char *suffix) {
    char name[48];
    snprintf(name, sizeof name, "%s.%s", i == 0 ? "1" : "3", suffix);
    for (int j = 0; j < asym_net_n_feedback(b->net); j++)
        if (!strcmp(asym_net_feedback(b->net, j)->name, name)) return asym_net_feedback(b->net, j);
    return NULL;
}

/* Largest |(W - B) - d0| over a layer's entries, relative to max|W|. */
static double diff_drift(const AsymParam *W, const AsymParam *B, const float *d0, double decay_keep) {
    double worst = 0, big = 0;
    for (size_t i = 0; i < W->n; i++) big = fmax(big, fabs(W->w[i]));
    for (size_t i = 0; i < W->n; i++) worst = fmax(worst, fabs((double)W->w[i] - B->w[i] - decay_keep * d0[i]));
    return worst / big;
}

/* urfb: W - B = W0 - B0 after 20 steps of plain SGD, of SGD with momentum
 * and Nesterov-free dampening-free momentum 0.9, and of Adam, all without
 * weight decay (B's optimizer state equals W's); B moved. */
TEST(rule_urfb_difference_constant) {
    struct { AsymOptKind kind; float mom; } cases[] = {{ASYM_SGD, 0}, {ASYM_SGD, 0.9f}, {ASYM_ADAM, 0}};
    for (int c = 0; c < 3; c++) {
        Bench b;
        CHECK(bench_open(&b, "urfb", 0, 0, cases[c].kind, cases[c].mom, 0) == 0);
        float *d0[2], *B0[2];
        for (int i = 0; i < 2; i++) {
            AsymParam *W = W_of(&b, i), *B = fb_of(&b, i, "B");
            CHECK(B && B->n == W->n);
            d0[i] = malloc(sizeof(float) * W->n), B0[i] = malloc(sizeof(float) * W->n);
            for (size_t j = 0; j < W->n; j++) d0[i][j] = W->w[j] - B->w[j], B0[i][j] = B->w[j];
        }
        for (int t = 0; t < 20; t++) bench_step(&b, cases[c].kind == ASYM_ADAM ? 0.01f : 0.1f);
        double worst = 0, moved = 1e9;
        for (int i = 0; i < 2; i++) {
            AsymParam *W = W_of(&b, i), *B = fb_of(&b, i, "B");
            worst = fmax(worst, diff_drift(W, B, d0[i], 1.0));
            double m = 0;
            for (size_t j = 0; j < W->n; j++) m = fmax(m, fabs(B->w[j] - B0[i][j]));
            moved = fmin(moved, m);
            free(d0[i]), free(B0[i]);
        }
        bench_close(&b);
        printf("    urfb case %d: W - B drifted by %.2e of max|W|, B moved by at least %.3g\n", c, worst, moved);
        CHECK_MSG(worst < 1e-5, "case %d: W - B moved by %.3g of max|W|", c, worst);
        CHECK_MSG(moved > 1e-3, "case %d: B did not learn (moved %.3g)", c, moved);
    }
}

/* urfb with weight decay under plain SGD: B takes no decay, so each step
 * W - B changes by exactly W's decay step, -lr wd W_old. */
TEST(rule_urfb_no_decay_on_B) {
    Bench b;
    const float lr = 0.1f, wd = 0.05f;
    CHECK(bench_open(&b, "urfb", 0, 0, ASYM_SGD, 0, wd) == 0);
    for (int t = 0; t < 5; t++) {
        AsymParam *W = W_of(&b, 0), *B = fb_of(&b, 0, "B");
        float *want = malloc(sizeof(float) * W->n);
        for (size_t j = 0; j < W->n; j++) want[j] = (float)((double)W->w[j] - B->w[j] - (double)lr * wd * W->w[j]);
        bench_step(&b, lr);
        double worst = 0;
        for (size_t j = 0; j < W->n; j++) worst = fmax(worst, fabs((double)W->w[j] - B->w[j] - want[j]));
        free(want);
        CHECK_MSG(worst < 1e-6, "step %d: W - B off its decay step by %.3g", t, worst);
    }
    bench_close(&b);
}

/* Sparse feedback: exactly round(s n) entries of every B at zero after
 * setup, and the same ones after every kind of update (fa fixed, usf and
 * brsf following W, kp and urfb through the optimizer, wm's mirror steps,
 * pfa's product); feedback.urfb.sparsity overrides feedback.sparsity. */
TEST(rule_sparse_mask_holds) {
    const char *rules[] = {"fa", "usf", "brsf", "kp", "wm", "urfb", "pfa", "urfb"};
    for (int r = 0; r < 8; r++) {
        float s = r == 7 ? 0.2f : 0.3f;
        Bench b;
        CHECK(bench_open(&b, rules[r], r == 7 ? 0.6f : s, r == 7 ? s : 0, ASYM_SGD, 0.9f, 1e-3f) == 0);
        unsigned char *zero[2];
        for (int i = 0; i < 2; i++) {
            AsymParam *B = fb_of(&b, i, "B");
            size_t nz = 0;
            zero[i] = malloc(B->n);
            for (size_t j = 0; j < B->n; j++) zero[i][j] = B->w[j] == 0, nz += zero[i][j];
            CHECK_MSG(nz == (size_t)llround((double)s * B->n), "%s layer %d: %zu of %zu entries at zero, expected %.0f", rules[r], i, nz, B->n, (double)llround((double)s * B->n));
        }
        for (int t = 0; t < 5; t++) bench_step(&b, 0.05f);
        for (int i = 0; i < 2; i++) {
            AsymParam *B = fb_of(&b, i, "B");
            size_t live = 0;
            for (size_t j = 0; j < B->n; j++) {
                CHECK_MSG(!zero[i][j] || B->w[j] == 0, "%s layer %d: masked entry %zu is %g after 5 steps", rules[r], i, j, B->w[j]);
                live += B->w[j] != 0;
            }
            CHECK_MSG(live == B->n - (size_t)llround((double)s * B->n), "%s layer %d: %zu live entries", rules[r], i, live);
            free(zero[i]);
        }
        bench_close(&b);
    }
}

/* Off (sparsity 0): no entry of B is zero, for every rule with a B. */
TEST(rule_sparse_off_is_dense) {
    const char *rules[] = {"fa", "kp", "urfb", "pfa"};
    for (int r = 0; r < 4; r++) {
        Bench b;
        CHECK(bench_open(&b, rules[r], 0, 0, ASYM_SGD, 0, 0) == 0);
        AsymParam *B = fb_of(&b, 0, "B");
        for (size_t j = 0; j < B->n; j++) CHECK_MSG(B->w[j] != 0, "%s: entry %zu of B is zero", rules[r], j);
        bench_close(&b);
    }
}

/* pfa: mid = expansion * out intermediate units; B = F R after setup and
 * after every step, F fixed, R learned; B is not a multiple of W. */
TEST(rule_pfa_B_is_product) {
    Bench b;
    CHECK(bench_open(&b, "pfa", 0, 0, ASYM_SGD, 0.9f, 1e-3f) == 0);
    float *F0 = NULL, *R0 = NULL;
    for (int t = 0; t <= 5; t++) {
        if (t) bench_step(&b, 0.1f);
        for (int i = 0; i < 2; i++) {
            AsymParam *W = W_of(&b, i), *B = fb_of(&b, i, "B"), *F = fb_of(&b, i, "F"), *R = fb_of(&b, i, "R");
            CHECK(B && F && R);
            int out = W->shape[0], in = W->shape[1], mid = F->shape[1];
            CHECK_MSG(mid == 10 * out && R->shape[0] == mid && R->shape[1] == in, "layer %d: F %dx%d, R %dx%d for W %dx%d", i, F->shape[0], mid, R->shape[0], R->shape[1], out, in);
            double worst = 0, big = 0;
            for (int o = 0; o < out; o++)
                for (int c = 0; c < in; c++) {
                    double p = 0;
                    for (int m = 0; m < mid; m++) p += (double)F->w[o * mid + m] * R->w[(size_t)m * in + c];
                    worst = fmax(worst, fabs(p - B->w[o * in + c])), big = fmax(big, fabs(p));
                }
            CHECK_MSG(worst <= 1e-5 * big, "step %d layer %d: B differs from F R by %.3g (max %.3g)", t, i, worst, big);
            if (i == 0 && t == 0) {
                F0 = malloc(sizeof(float) * F->n), R0 = malloc(sizeof(float) * R->n);
                memcpy(F0, F->w, sizeof(float) * F->n), memcpy(R0, R->w, sizeof(float) * R->n);
            }
            if (i == 0 && t == 5) {
                CHECK_MSG(!memcmp(F0, F->w, sizeof(float) * F->n), "F changed");
                CHECK_MSG(memcmp(R0, R->w, sizeof(float) * R->n), "R did not learn");
            }
        }
    }
    free(F0), free(R0);
    bench_close(&b);
}

/* pfa under an optimizer linear in the gradient (SGD: momentum,
 * dampening, Nesterov, weight decay; sparse B) steps B = F R itself, with
 * F F^T dW: no R kept, the same first B bit for bit (R drawn alike), and
 * after 20 steps the B and W that stepping R gives (which the torch oracle
 * checks against the published rule). With 64 hidden units the first
 * layer (64 x 20, batch 8) forms B's gradient in the backward pass, the
 * second (4 x 64) from dW before the step: both ways are checked. Adam on
 * such a network is refused (not on one without pfa); update: factor and
 * norm_feedback keep R. */
TEST(rule_pfa_steps_B_itself) {
    struct { float mom, damp, wd, sparsity; int nesterov; } cases[] = {{0.9f, 0, 1e-3f, 0, 0}, {0.9f, 0, 5e-3f, 0.3f, 1}, {0, 0, 0, 0, 0}, {0.5f, 0.1f, 1e-2f, 0, 0}};
    const int pfa = asym_rule_parse("pfa");
    for (int c = 0; c < 4; c++) {
        Bench b[2];
        AsymOptSpec o = opt_spec(ASYM_SGD, cases[c].mom, cases[c].wd);
        o.dampening = cases[c].damp, o.nesterov = cases[c].nesterov;
        for (int k = 0; k < 2; k++) {
            AsymFeedbackSpec fb;
            asym_feedback_defaults(&fb);
            fb.sparsity = cases[c].sparsity;
            fb.rule_opt[pfa][0] = 3;
            fb.linear_optimizer = k == 0;
            CHECK(bench_open_with(&b[k], "pfa", &fb, &o, 64) == 0);
        }
        size_t ng;
        const float *g = net_feedback_grads(b[0].net, &ng);
        const AsymParam *B0 = fb_of(&b[0], 0, "B"), *B1 = fb_of(&b[0], 1, "B");
        CHECK_MSG(g && B0->g == g && ng == B0->n && B1->g && B1->g != g, "the first layer's B gradient not from the backward pass, or the second's");
        for (int i = 0; i < 2; i++) {
            AsymParam *B0 = fb_of(&b[0], i, "B"), *B1 = fb_of(&b[1], i, "B");
            CHECK_MSG(!fb_of(&b[0], i, "R") && fb_of(&b[1], i, "R"), "case %d layer %d: R kept when B is stepped, or not kept otherwise", c, i);
            CHECK_MSG(!memcmp(B0->w, B1->w, sizeof(float) * B0->n), "case %d layer %d: the first B differs", c, i);
        }
        float *start = malloc(sizeof(float) * fb_of(&b[0], 0, "B")->n);
        memcpy(start, fb_of(&b[0], 0, "B")->w, sizeof(float) * fb_of(&b[0], 0, "B")->n);
        for (int t = 0; t < 20; t++) bench_step(&b[0], 0.1f), bench_step(&b[1], 0.1f);
        double worst = 0, moved = 0;
        for (int i = 0; i < 2; i++) {
            const AsymParam *P[2][2] = {{fb_of(&b[0], i, "B"), fb_of(&b[1], i, "B")}, {W_of(&b[0], i), W_of(&b[1], i)}};
            for (int q = 0; q < 2; q++) {
                double d = 0, big = 0;
                for (size_t j = 0; j < P[q][0]->n; j++) d = fmax(d, fabs((double)P[q][0]->w[j] - P[q][1]->w[j])), big = fmax(big, fabs(P[q][1]->w[j]));
                worst = fmax(worst, d / big);
            }
        }
        for (size_t j = 0; j < fb_of(&b[0], 0, "B")->n; j++) moved = fmax(moved, fabs(fb_of(&b[0], 0, "B")->w[j] - start[j]));
        printf("    case %d: B and W stepped in B's space within %.2e (relative) of stepping R; B moved by %.3g\n", c, worst, moved);
        CHECK_MSG(worst < 1e-5, "case %d: stepping B differs from stepping R by %.3g", c, worst);
        CHECK_MSG(moved > 1e-3, "case %d: B did not learn", c);
        free(start);
        bench_close(&b[0]), bench_close(&b[1]);
    }
    /* Adam is refused; update: factor and norm_feedback keep R */
    AsymFeedbackSpec fb;
    asym_feedback_defaults(&fb);
    fb.linear_optimizer = 1;
    AsymOptSpec adam = opt_spec(ASYM_ADAM, 0, 0), sgd = opt_spec(ASYM_SGD, 0.9f, 0);
    Bench b;
    CHECK(bench_open_with(&b, "pfa", &fb, &adam, HID) != 0);
    CHECK_MSG(strstr(asym_last_error(), "linear_optimizer"), "message: %s", asym_last_error());
    bench_close(&b);
    CHECK_MSG(bench_open_with(&b, "fa", &fb, &adam, HID) == 0, "Adam refused on a network without pfa");
    bench_close(&b);
    for (int k = 0; k < 2; k++) {
        AsymFeedbackSpec f = fb;
        if (k == 0) f.rule_opt[pfa][1] = 1;
        else f.norm_feedback = 1;
        CHECK(bench_open_with(&b, "pfa", &f, &sgd, HID) == 0);
        CHECK_MSG(fb_of(&b, 0, "R") && fb_of(&b, 1, "R"), "%s: no R", k ? "norm_feedback" : "update: factor");
        bench_close(&b);
    }
}

/* The PyTorch oracle (tests/test_oracle_rules.c's harness) on the four
 * small nets. urfb: B against torch's optimizer training B with W's
 * gradient and no decay; SGD with weight decay (W - B against torch's) and
 * without (W - B = W0 - B0), Adam on the resnet. */
TEST(oracle_rule_urfb) {
    static const OracleCase c[] = {{"mlp", 3, "--set rule=urfb", "urfb,urfb,urfb"},
                                   {"mlp_bn", 3, "--set rule=urfb --set optimizer.weight_decay=0", NULL},
                                   {"conv", 3, "--set rule=urfb", NULL},
                                   {"resnet", 3, "--set rule=urfb", NULL},
                                   {"resnet", 3, "--set rule=urfb --set optimizer.name=adam --set optimizer.lr=0.01 --set optimizer.weight_decay=0", NULL},
                                   {"conv", 3, "--set rule=urfb --set feedback.urfb.sparsity=0.25", NULL}};
    test_oracle_group("urfb", c, 6, NULL);
}

/* feedback.sparsity 0.3 under every rule with a B: the mask's count, the
 * masked entries still zero after the steps, and every tensor as torch
 * computes it with the same mask applied after each change. */
TEST(oracle_rule_sparse) {
    static const OracleCase c[] = {{"mlp", 3, "--set rule=fa", NULL},  {"mlp_bn", 3, "--set rule=kp", NULL},  {"conv", 3, "--set rule=usf", NULL},
                                   {"conv", 3, "--set rule=frsf", NULL}, {"conv", 1, "--set rule=brsf", NULL}, {"conv", 1, "--set rule=wm", NULL},
                                   {"resnet", 3, "--set rule=urfb", NULL}, {"resnet", 3, "--set rule=pfa", NULL}};
    test_oracle_group("sparse", c, 8, "--set feedback.sparsity=0.3");
}

/* pfa: B = F R in the first pass, R after the steps against torch's
 * optimizer training R with F^T dW (weight decay included), F fixed,
 * B = F R from asymbp's own factors after the steps; expansion 10 and 2. */
TEST(oracle_rule_pfa) {
    static const OracleCase c[] = {{"mlp", 3, "--set rule=pfa", "pfa,pfa,pfa"},
                                   {"mlp_bn", 3, "--set rule=pfa", NULL},
                                   {"conv", 3, "--set rule=pfa", NULL},
                                   {"resnet", 3, "--set rule=pfa", NULL},
                                   {"conv", 3, "--set rule=pfa --set feedback.pfa.expansion=2", NULL},
                                   {"resnet", 3, "--set rule=pfa --set optimizer.name=adam --set optimizer.lr=0.01 --set optimizer.weight_decay=0.02", NULL}};
    test_oracle_group("pfa", c, 6, NULL);
}

/* Two ranks against one process, 100 steps: learned feedback (urfb, pfa's
 * B) must stay identical on every rank (the rank check compares every
 * feedback matrix at the start and after the epoch and stops the run on a
 * difference) and follow the single-process run. pfa's first layer is
 * widened to 128 units so that its B's gradient comes from each rank's
 * backward pass (summed like dW), the others' from the summed dW. */
TEST(mpi_learned_feedback_ranks_agree) {
    if (!mpi_bin()) return;
    const char *rules[] = {"urfb", "pfa"};
    for (int r = 0; r < 2; r++) {
        char name[64], *text;
        snprintf(name, sizeof name, "mpi-%s", rules[r]);
        const char *cfg = mpi_mlp_cfg(name, 0);
        CHECK((text = test_read_file(cfg)));
        char full[2048];
        const char *old = "hidden: [64, 32]", *at = strstr(text, old);
        CHECK(at);
        snprintf(full, sizeof full, "%.*shidden: [%s, 32]%srule: %s\nfeedback: {sparsity: 0.2}\n", (int)(at - text), text, r ? "128" : "64", at + strlen(old),
                 rules[r]);
        free(text);
        test_write_file(cfg, full);
        double gap = mpi_curve_gap(cfg, rules[r], "--set dist.check_every=10");
        CHECK_MSG(gap <= 1e-5, "%s: two ranks differ from one process by %.3g relative", rules[r], gap);
    }
}

/* End to end: test_e2e.c's tanh MLP (784-256-256-10, SGD with momentum,
 * two epochs) on 6000 Fashion-MNIST images. */
#define E2E_SMALL "--set data.train_limit=6000 --set data.test_limit=2000 --set data.val_size=0 "

/* Every layer's B-W angle at the start and end: the lowest start, the
 * smallest fall, and the output layer's fall. */
static void angle_fall(const E2eRun *r, int layers, double *lowest_start, double *worst_drop, double *last_drop) {
    *lowest_start = 1e9, *worst_drop = 1e9;
    for (int i = 0; i < layers; i++) {
        double a0 = test_summary_item(r, "initial_angles", i), a1 = test_summary_item(r, "final_angles", i);
        *lowest_start = fmin(*lowest_start, a0), *worst_drop = fmin(*worst_drop, a0 - a1);
        *last_drop = a0 - a1;
    }
}

/* The thresholds hold for seeds 1..5 (bp: 18.4% on this run at seed 1;
 * urfb 17.6-19.2%, pfa 18.4-20.0% stepping R, 18.35-19.95% stepping B
 * itself; hidden layers' angles fall by 2.6-3.8 degrees, the output
 * layer's by 19.6-23.8). */
static void e2e_learned(const char *rule, const char *sets) {
    E2eRun r;
    CHECK(test_train(&r, rule, e2e_mlp_cfg(), sets) == 0);
    double err = r.err, start, drop, last;
    angle_fall(&r, 3, &start, &drop, &last);
    printf("    E2E seed %d %s: best test error %.2f%%, every angle starts above %.1f and falls by at least %.1f degrees, the output layer's by %.1f\n",
           test_e2e_seed(), rule, 100 * err, start, drop, last);
    test_run_free(&r);
    CHECK_MSG(err <= 0.21, "%s: best test error %.2f%%", rule, 100 * err);
    CHECK_MSG(start > 80 && drop > 1.5 && last > 12, "%s: angles start above %.1f and fall by at least %.1f degrees, the output layer's by %.1f", rule, start, drop, last);
}

/* urfb: learns, and every layer's B turns towards W (from about 90
 * degrees) as W's accumulated updates, shared by B, outgrow W0 - B0. */
TEST(e2e_urfb_mlp) {
    if (!test_have_fmnist()) return;
    e2e_learned("urfb", E2E_SMALL "--set rule=urfb");
}

/* pfa (expansion 2, to keep the run short): learns, and every layer's
 * B = F R turns towards W. */
TEST(e2e_pfa_mlp) {
    if (!test_have_fmnist()) return;
    e2e_learned("pfa", E2E_SMALL "--set rule=pfa --set feedback.pfa.expansion=2");
}
