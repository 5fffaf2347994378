/* test_rules.c: invariants of the feedback rules (REFERENCE "Feedback
 * rules"): FA with B = W is exactly BP; usf's B is s sign(W) after every
 * step; brsf redraws and frsf keeps magnitudes while tracking signs; KP's
 * W - B shrinks by exactly (1 - lr wd) per step; weight mirrors align B
 * with W; partial concordance gives the asked fraction of agreeing signs;
 * Batch Manhattan steps by the sign; the alignment measurements. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "asymbp.h"
#include "net/net.h"
#include "rules/rules.h"
#include "test.h"

/* A small conv net on 1x8x8 input, 4 classes. */
static void small_spec(AsymNetSpec *s, AsymLayerSpec *L, AsymRule rule) {
    memset(s, 0, sizeof *s);
    AsymLayerSpec layers[] = {
        {.kind = ASYM_CONV, .out = 3, .k = 3, .pad = 1, .bias = 1},
        {.kind = ASYM_RELU},
        {.kind = ASYM_MAXPOOL, .k = 2},
        {.kind = ASYM_FLATTEN},
        {.kind = ASYM_FC, .out = 12, .bias = 1},
        {.kind = ASYM_TANH},
        {.kind = ASYM_FC, .out = 4, .bias = 1},
    };
    memcpy(L, layers, sizeof layers);
    s->layers = L;
    s->n_layers = 7;
    s->in_c = 1, s->in_h = 8, s->in_w = 8, s->classes = 4;
    s->init = ASYM_INIT_XAVIER_UNIFORM;
    s->rule = rule;
    asym_feedback_defaults(&s->fb);
}

static AsymNet *make(AsymNetSpec *s, uint64_t seed, int batch) {
    AsymRng rng;
    asym_rng_seed(&rng, seed);
    AsymNet *net = NULL;
    if (asym_net_create(&net, s, batch, &rng)) {
        printf("    asym_net_create: %s\n", asym_last_error());
        return NULL;
    }
    return net;
}

static void batch_data(float *x, int32_t *y, int N, int in, int K, uint64_t seed) {
    AsymRng r;
    asym_rng_seed(&r, seed);
    for (int i = 0; i < N * in; i++) x[i] = (float)((double)(r.s[0] = r.s[0] * 6364136223846793005ULL + 1442695040888963407ULL) / 1.8446744e19 * 2 - 1);
    for (int i = 0; i < N; i++) y[i] = i % K;
}

static void step(AsymNet *net, AsymOptim *opt, const float *x, const int32_t *y, int N, float lr) {
    asym_net_zero_grad(net);
    asym_net_forward(net, x, N, 1);
    asym_net_loss(net, y, N, 1, NULL);
    asym_optim_step(opt, lr);
    asym_net_feedback_update(net);
}

/* The feedback tensor of that name, its values up to date as of this
 * call (a sign rule's B is left behind W until read: fetch it again after
 * a step). */
static AsymParam *find_feedback(AsymNet *net, const char *name) {
    for (int i = 0; i < asym_net_n_feedback(net); i++)
        if (!strcmp(asym_net_feedback(net, i)->name, name)) return asym_net_feedback(net, i);
    return NULL;
}

static AsymParam *find_param(AsymNet *net, const char *name) {
    for (int i = 0; i < asym_net_n_params(net); i++)
        if (!strcmp(asym_net_param(net, i)->name, name)) return asym_net_param(net, i);
    return NULL;
}

static double norm(const float *v, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)v[i] * v[i];
    return sqrt(s);
}

static double angle(const float *a, const float *b, size_t n) {
    double ab = 0;
    for (size_t i = 0; i < n; i++) ab += (double)a[i] * b[i];
    return acos(fmax(-1.0, fmin(1.0, ab / (norm(a, n) * norm(b, n))))) * 180 / M_PI;
}

static float sgn(float v) { return (float)((v > 0) - (v < 0)); }

TEST(rule_fa_with_B_equal_W_is_bp) {
    AsymNetSpec s;
    AsymLayerSpec L[8];
    enum { N = 6 };
    float x[N * 64];
    int32_t y[N];
    batch_data(x, y, N, 64, 4, 5);
    small_spec(&s, L, ASYM_RULE_BP);
    AsymNet *bp = make(&s, 7, N);
    small_spec(&s, L, ASYM_RULE_FA);
    AsymNet *fa = make(&s, 7, N);
    CHECK(bp && fa);
    CHECK(asym_net_n_feedback(fa) == 3 && asym_net_n_feedback(bp) == 0);
    const char *names[] = {"0", "4", "6"};
    for (int i = 0; i < 3; i++) {
        char bn[16], wn[16];
        snprintf(bn, sizeof bn, "%s.B", names[i]);
        snprintf(wn, sizeof wn, "%s.W", names[i]);
        AsymParam *B = find_feedback(fa, bn), *W = find_param(fa, wn);
        CHECK(B && W && B->n == W->n);
        CHECK(memcmp(W->w, find_param(bp, wn)->w, sizeof(float) * W->n) == 0);
        memcpy(B->w, W->w, sizeof(float) * W->n);
    }
    asym_net_keep_input_grad(bp, 1);
    asym_net_keep_input_grad(fa, 1);
    AsymNet *nets[2] = {bp, fa};
    for (int k = 0; k < 2; k++) {
        asym_net_zero_grad(nets[k]);
        asym_net_forward(nets[k], x, N, 1);
        asym_net_loss(nets[k], y, N, 1, NULL);
    }
    for (int i = 0; i < asym_net_n_params(bp); i++) {
        AsymParam *a = asym_net_param(bp, i), *b = asym_net_param(fa, i);
        CHECK_MSG(memcmp(a->g, b->g, sizeof(float) * a->n) == 0, "gradient of %s differs", a->name);
        CHECK_MSG(norm(a->g, a->n) > 0, "gradient of %s is zero", a->name);
    }
    CHECK(memcmp(asym_net_input_grad(bp), asym_net_input_grad(fa), sizeof(float) * N * 64) == 0);
    asym_net_free(bp);
    asym_net_free(fa);
}

static AsymOptim *sgd(AsymNet *net, float momentum, float wd, int manhattan) {
    AsymOptSpec o = {.kind = ASYM_SGD, .momentum = momentum, .weight_decay = wd, .manhattan = manhattan};
    AsymOptim *opt = NULL;
    if (asym_optim_create(&opt, net, &o)) printf("    %s\n", asym_last_error());
    return opt;
}

TEST(rule_usf_tracks_sign_of_W) {
    AsymNetSpec s;
    AsymLayerSpec L[8];
    enum { N = 6 };
    float x[N * 64];
    int32_t y[N];
    batch_data(x, y, N, 64, 4, 9);
    small_spec(&s, L, ASYM_RULE_USF);
    AsymNet *net = make(&s, 3, N);
    CHECK(net);
    AsymOptim *opt = sgd(net, 0.9f, 1e-3f, 0);
    CHECK(opt);
    AsymParam *W = find_param(net, "4.W"), *B = find_feedback(net, "4.B");
    CHECK(W && B);
    float s_exp = sqrtf(2.0f / (W->fan_in + W->fan_out)); /* Xavier std */
    int flips = 0;
    for (int t = 0; t < 20; t++) {
        float *before = malloc(sizeof(float) * W->n);
        memcpy(before, W->w, sizeof(float) * W->n);
        step(net, opt, x, y, N, 0.5f);
        B = find_feedback(net, "4.B"); /* brought up to date with W */
        for (size_t i = 0; i < W->n; i++) {
            CHECK_MSG(fabsf(B->w[i] - s_exp * sgn(W->w[i])) <= 1e-6f * s_exp, "step %d: B[%zu] = %g, W = %g", t, i, B->w[i], W->w[i]);
            flips += sgn(before[i]) != sgn(W->w[i]);
        }
        free(before);
    }
    CHECK_MSG(flips > 0, "no sign of W changed: the test would not see B follow");
    asym_optim_free(opt);
    asym_net_free(net);
}

TEST(rule_frsf_keeps_magnitudes_brsf_redraws) {
    AsymNetSpec s;
    AsymLayerSpec L[8];
    enum { N = 6 };
    float x[N * 64];
    int32_t y[N];
    batch_data(x, y, N, 64, 4, 11);
    for (int brsf = 0; brsf < 2; brsf++) {
        small_spec(&s, L, brsf ? ASYM_RULE_BRSF : ASYM_RULE_FRSF);
        AsymNet *net = make(&s, 3, N);
        CHECK(net);
        AsymOptim *opt = sgd(net, 0.9f, 0, 0);
        AsymParam *W = find_param(net, "0.W"), *B = find_feedback(net, "0.B");
        CHECK(opt && W && B);
        float *mag = malloc(sizeof(float) * B->n);
        for (size_t i = 0; i < B->n; i++) mag[i] = fabsf(B->w[i]);
        double bound = sqrt(6.0 / (W->fan_in + W->fan_out));
        int changed = 0;
        for (int t = 0; t < 5; t++) {
            step(net, opt, x, y, N, 0.5f);
            B = find_feedback(net, "0.B");
            for (size_t i = 0; i < W->n; i++) {
                CHECK(sgn(B->w[i]) == sgn(W->w[i]) || W->w[i] == 0);
                CHECK(fabsf(B->w[i]) <= bound);
                if (!brsf) CHECK_MSG(fabsf(B->w[i]) == mag[i], "frsf magnitude %zu changed", i);
                changed += fabsf(B->w[i]) != mag[i];
            }
            for (size_t i = 0; i < B->n; i++) mag[i] = brsf ? fabsf(B->w[i]) : mag[i];
        }
        if (brsf) CHECK_MSG(changed > (int)(4 * B->n), "brsf redrew only %d magnitudes over 5 steps", changed);
        free(mag);
        asym_optim_free(opt);
        asym_net_free(net);
    }
}

/* The sign rules leave B behind W after a step and bring it up to date
 * where it is read. The first layer's B is read by no training step: six
 * steps leave it as it was made, yet a network whose B is read after every
 * step (up to date all along, as before the rules left it behind) trains to
 * the same bits, and reading the first one's B gives the same floats as
 * there: brsf's differs from the one it was made with (redrawn). */
TEST(rule_sign_feedback_current_when_read) {
    const AsymRule rules[] = {ASYM_RULE_USF, ASYM_RULE_FRSF, ASYM_RULE_BRSF};
    AsymNetSpec s;
    AsymLayerSpec L[8];
    enum { N = 6 };
    float x[N * 64];
    int32_t y[N];
    batch_data(x, y, N, 64, 4, 5);
    for (int r = 0; r < 3; r++) {
        small_spec(&s, L, rules[r]);
        AsymNet *lazy = make(&s, 9, N), *read = make(&s, 9, N);
        CHECK(lazy && read);
        AsymOptim *ol = sgd(lazy, 0.9f, 0, 0), *orr = sgd(read, 0.9f, 0, 0);
        CHECK(ol && orr);
        int f0 = -1;
        for (int i = 0; i < asym_net_n_feedback(lazy); i++)
            if (!strcmp(net_feedback_as_is(lazy, i)->name, "0.B")) f0 = i;
        CHECK(f0 >= 0);
        size_t n = net_feedback_as_is(lazy, f0)->n;
        float *made = malloc(sizeof(float) * n);
        memcpy(made, net_feedback_as_is(lazy, f0)->w, sizeof(float) * n);
        for (int t = 0; t < 6; t++) {
            step(lazy, ol, x, y, N, 0.5f);
            step(read, orr, x, y, N, 0.5f);
            for (int i = 0; i < asym_net_n_feedback(read); i++) asym_net_feedback(read, i);
        }
        CHECK_MSG(!memcmp(net_feedback_as_is(lazy, f0)->w, made, sizeof(float) * n), "%s: the first layer's B was remade in training", asym_rule_name(rules[r]));
        for (int i = 0; i < asym_net_n_params(lazy); i++)
            CHECK_MSG(!memcmp(asym_net_param(lazy, i)->w, asym_net_param(read, i)->w, sizeof(float) * asym_net_param(lazy, i)->n), "%s: %s differs",
                      asym_rule_name(rules[r]), asym_net_param(lazy, i)->name);
        for (int i = 0; i < asym_net_n_feedback(lazy); i++)
            CHECK_MSG(!memcmp(asym_net_feedback(lazy, i)->w, asym_net_feedback(read, i)->w, sizeof(float) * asym_net_feedback(lazy, i)->n), "%s: %s differs when read",
                      asym_rule_name(rules[r]), asym_net_feedback(lazy, i)->name);
        if (rules[r] == ASYM_RULE_BRSF) CHECK_MSG(memcmp(asym_net_feedback(lazy, f0)->w, made, sizeof(float) * n), "brsf: the first layer's B read as it was made");
        free(made);
        asym_optim_free(ol);
        asym_optim_free(orr);
        asym_net_free(lazy);
        asym_net_free(read);
    }
}

static AsymNetSpec wm_mlp(AsymLayerSpec *L, int in, int hidden, int classes);

/* brsf's magnitudes are redrawn every batch from |init|: for the uniform
 * Xavier init |U(-b, b)| = U(0, b), mean b/2 and variance b^2/12; for the
 * normal one |N(0, s^2)|, mean s sqrt(2/pi) and variance s^2 (1 - 2/pi).
 * Five redraws of a 400 x 300 layer (600,000 draws; the standard error of
 * the mean is under 0.1% of it) must match both within 1% and 2%, stay
 * within [0, b], and be fresh: consecutive draws uncorrelated. A draw at
 * half the scale, or a redraw that repeats, fails. */
TEST(rule_brsf_redraw_distribution) {
    const AsymInit inits[] = {ASYM_INIT_XAVIER_UNIFORM, ASYM_INIT_XAVIER_NORMAL};
    for (int k = 0; k < 2; k++) {
        AsymLayerSpec L[3];
        AsymNetSpec s = wm_mlp(L, 400, 300, 10);
        s.rule = ASYM_RULE_BRSF;
        s.fb.init = inits[k];
        AsymNet *net = make(&s, 7, 4);
        CHECK(net);
        AsymParam *W = find_param(net, "0.W"), *B = find_feedback(net, "0.B");
        CHECK(W && B && B->n == 120000);
        double fi = W->fan_in, fo = W->fan_out, b = sqrt(6.0 / (fi + fo)), sd = sqrt(2.0 / (fi + fo));
        double want_mean = k ? sd * sqrt(2 / M_PI) : b / 2, want_var = k ? sd * sd * (1 - 2 / M_PI) : b * b / 12;
        double sum = 0, sum2 = 0, cross = 0, lo = 1e30, hi = 0;
        float *prev = malloc(sizeof(float) * B->n);
        size_t count = 0;
        for (int t = 0; t < 6; t++) {
            asym_net_feedback_update(net);
            B = find_feedback(net, "0.B");
            for (size_t i = 0; i < B->n; i++) {
                double m = fabs(B->w[i]);
                if (t > 0) {
                    sum += m, sum2 += m * m, count++;
                    cross += (m - want_mean) * (fabs(prev[i]) - want_mean);
                    lo = fmin(lo, m), hi = fmax(hi, m);
                }
                prev[i] = B->w[i];
            }
        }
        free(prev);
        asym_net_free(net);
        double mean = sum / count, var = sum2 / count - mean * mean, corr = cross / count / want_var;
        printf("    %s: mean %.6f (want %.6f), variance %.3e (want %.3e), lag-1 correlation %.4f, range [%.2g, %.4f]\n",
               k ? "xavier_normal" : "xavier_uniform", mean, want_mean, var, want_var, corr, lo, hi);
        CHECK_MSG(fabs(mean / want_mean - 1) < 0.01, "mean |M| %.6f, want %.6f", mean, want_mean);
        CHECK_MSG(fabs(var / want_var - 1) < 0.02, "variance of |M| %.4e, want %.4e", var, want_var);
        CHECK_MSG(fabs(corr) < 0.01, "consecutive draws correlate: %.4f", corr);
        CHECK(lo >= 0);
        if (!k) CHECK_MSG(hi <= b, "a magnitude %.6f exceeds the bound %.6f", hi, b);
    }
}

TEST(rule_partial_concordance_fraction) {
    AsymNetSpec s;
    AsymLayerSpec L[8];
    const float ps[] = {0.5f, 0.625f, 0.75f, 0.875f, 1.0f};
    const AsymRule rules[] = {ASYM_RULE_USF, ASYM_RULE_FRSF, ASYM_RULE_BRSF};
    for (int r = 0; r < 3; r++)
        for (int k = 0; k < 5; k++) {
            small_spec(&s, L, rules[r]);
            s.fb.concordance = ps[k];
            AsymNet *net = make(&s, 4, 4);
            CHECK(net);
            AsymParam *W = find_param(net, "4.W"), *B = find_feedback(net, "4.B");
            size_t agree = 0;
            for (size_t i = 0; i < W->n; i++) agree += sgn(B->w[i]) == sgn(W->w[i]);
            size_t want = (size_t)llround(ps[k] * W->n);
            CHECK_MSG(agree == want, "%s p=%g: %zu of %zu signs agree, want %zu", asym_rule_name(rules[r]), ps[k], agree, W->n, want);
            asym_net_free(net);
        }
}

TEST(rule_kp_difference_decays_exactly) {
    AsymNetSpec s;
    AsymLayerSpec L[8];
    enum { N = 6 };
    float x[N * 64];
    int32_t y[N];
    batch_data(x, y, N, 64, 4, 12);
    small_spec(&s, L, ASYM_RULE_KP);
    AsymNet *net = make(&s, 5, N);
    CHECK(net);
    const float lr = 0.1f, wd = 0.05f;
    AsymOptim *opt = sgd(net, 0, wd, 0);
    CHECK(opt);
    const char *names[] = {"0", "4", "6"};
    for (int t = 0; t < 10; t++) {
        float *d0[3];
        for (int j = 0; j < 3; j++) {
            char bn[8], wn[8];
            snprintf(bn, sizeof bn, "%s.B", names[j]);
            snprintf(wn, sizeof wn, "%s.W", names[j]);
            AsymParam *W = find_param(net, wn), *B = find_feedback(net, bn);
            d0[j] = malloc(sizeof(float) * W->n);
            for (size_t i = 0; i < W->n; i++) d0[j][i] = W->w[i] - B->w[i];
        }
        step(net, opt, x, y, N, lr);
        for (int j = 0; j < 3; j++) {
            char bn[8], wn[8];
            snprintf(bn, sizeof bn, "%s.B", names[j]);
            snprintf(wn, sizeof wn, "%s.W", names[j]);
            AsymParam *W = find_param(net, wn), *B = find_feedback(net, bn);
            for (size_t i = 0; i < W->n; i++) {
                double want = (1.0 - (double)lr * wd) * d0[j][i], got = (double)W->w[i] - B->w[i];
                CHECK_MSG(fabs(got - want) <= 1e-6 * (fabs(W->w[i]) + fabs(B->w[i]) + 1e-3), "layer %s step %d: W-B = %.9g, want %.9g", names[j], t, got, want);
            }
            free(d0[j]);
        }
    }
    asym_optim_free(opt);
    asym_net_free(net);
}

/* The mirror noise's distribution: moments, tails and bounds of a million
 * draws against the normal's and the uniform's, the same values on one and
 * two threads, other values for another seed. */
TEST(rule_wm_noise_distribution) {
    size_t n = 1000001; /* odd: the last Box-Muller pair is half used */
    float std = 0.05f, *x = malloc(sizeof(float) * n), *y = malloc(sizeof(float) * n);
    int threads = omp_get_max_threads();
    CHECK(x && y);
    for (int uniform = 0; uniform < 2; uniform++) {
        omp_set_num_threads(1);
        feedback_mirror_noise(x, n, uniform, std, 12345);
        omp_set_num_threads(2);
        feedback_mirror_noise(y, n, uniform, std, 12345);
        CHECK_MSG(!memcmp(x, y, sizeof(float) * n), "%s noise differs between 1 and 2 threads", uniform ? "uniform" : "normal");
        double m1 = 0, m2 = 0, m4 = 0, tail = 0, lo = 0, hi = 0, lag = 0;
        for (size_t i = 0; i < n; i++) {
            double v = x[i] / std;
            m1 += v, m2 += v * v, m4 += v * v * v * v, tail += fabs(v) > 2;
            lo = fmin(lo, v), hi = fmax(hi, v);
            if (i) lag += v * x[i - 1] / std;
        }
        m1 /= n, m2 /= n, m4 /= n, tail /= n, lag /= n - 1;
        /* standard errors for a million draws: mean 0.001, variance 0.0014 (normal) */
        CHECK_MSG(fabs(m1) < 0.005 && fabs(m2 - 1) < 0.007 && fabs(lag) < 0.005, "%s noise: mean %.4f, variance %.4f, lag-1 correlation %.4f (want 0, 1, 0)",
                  uniform ? "uniform" : "normal", m1, m2, lag);
        if (uniform) {
            /* U(-a, a) with a = sqrt(3) std: kurtosis 1.8, nothing beyond a */
            CHECK_MSG(fabs(m4 - 1.8) < 0.01 && hi <= sqrt(3.0) + 1e-6 && lo >= -sqrt(3.0) - 1e-6 && hi > 1.73 && lo < -1.73, "uniform noise: kurtosis %.3f, range [%.3f, %.3f]",
                      m4, lo, hi);
        } else {
            /* normal: kurtosis 3, P(|z| > 2) = 0.0455, and tails reaching 4.5 sigma in a million */
            CHECK_MSG(fabs(m4 - 3) < 0.05 && fabs(tail - 0.0455) < 0.001 && hi > 4.5 && lo < -4.5, "normal noise: kurtosis %.3f, P(|z|>2) %.4f, range [%.2f, %.2f]", m4, tail, lo,
                      hi);
        }
        feedback_mirror_noise(y, n, uniform, std, 12346);
        size_t same = 0;
        for (size_t i = 0; i < n; i++) same += x[i] == y[i];
        CHECK_MSG(same < n / 1000, "%s noise: %zu of %zu values repeat with the next seed", uniform ? "uniform" : "normal", same, n);
    }
    omp_set_num_threads(threads);
    free(x), free(y);
}

/* fc(hidden) - relu - fc(classes) on `in` inputs, every layer wm, the
 * feedback defaults; L (3 entries) holds the layers. */
static AsymNetSpec wm_mlp(AsymLayerSpec *L, int in, int hidden, int classes) {
    L[0] = (AsymLayerSpec){.kind = ASYM_FC, .out = hidden, .bias = 1};
    L[1] = (AsymLayerSpec){.kind = ASYM_RELU};
    L[2] = (AsymLayerSpec){.kind = ASYM_FC, .out = classes, .bias = 1};
    AsymNetSpec s = {.in_c = in, .in_h = 1, .in_w = 1, .classes = classes, .layers = L, .n_layers = 3, .init = ASYM_INIT_XAVIER_UNIFORM, .rule = ASYM_RULE_WM};
    asym_feedback_defaults(&s.fb);
    return s;
}

/* The defaults are Akrout et al.'s published scheme, not an exact
 * estimator: uniform noise in [-0.05, 0.05], one mirror step after every
 * training batch, a small learning rate and decay, and a pre-sweep. */
TEST(rule_wm_defaults_are_akrouts) {
    AsymFeedbackSpec f;
    asym_feedback_defaults(&f);
    CHECK(f.wm_noise == ASYM_NOISE_UNIFORM);
    CHECK_NEAR(f.wm_std * sqrt(3.0), 0.05, 1e-6);
    CHECK(f.wm_lr == 1e-3f && f.wm_decay == 1e-3f);
    CHECK(f.wm_steps == 1 && f.wm_batch == 0 && f.wm_presweep == -1);
}

TEST(rule_wm_uniform_noise_aligns) {
    /* Akrout's uniform noise: the estimate is noisy, averaging over steps helps */
    AsymLayerSpec L[3];
    AsymNetSpec s = wm_mlp(L, 60, 40, 10);
    s.fb.wm_presweep = 300;
    s.fb.wm_lr = s.fb.wm_decay = 0.02f;
    AsymNet *net = make(&s, 8, 64);
    CHECK(net);
    AsymParam *W = find_param(net, "0.W"), *B = find_feedback(net, "0.B");
    double a = angle(W->w, B->w, W->n);
    CHECK_MSG(a < 10, "uniform noise: angle after 300 mirror steps is %.1f degrees", a);
    asym_net_free(net);
}

/* With the defaults, B accumulates: one mirror step moves it by about the
 * decay's fraction, never replaces it. The default pre-sweep (3 / decay
 * steps) leaves under 5% of the random start, so B is within a few degrees
 * of W and of W's size: (1 - e^-3) |W| plus the noise. A B off by a factor
 * 1.8, or 0.55, fails. */
TEST(rule_wm_aligns_B_with_W) {
    AsymLayerSpec L[3];
    AsymNetSpec s = wm_mlp(L, 60, 40, 10);
    s.fb.wm_presweep = 0;
    AsymNet *net = make(&s, 8, 64);
    CHECK(net);
    AsymParam *W = find_param(net, "0.W"), *B = find_feedback(net, "0.B");
    double a0 = angle(W->w, B->w, W->n);
    CHECK_MSG(a0 > 60, "initial angle %.1f: B should start random", a0);
    asym_net_free(net);
    s.fb.wm_presweep = -1;
    for (uint64_t seed = 1; seed <= 5; seed++) {
        net = make(&s, seed, 64);
        CHECK(net);
        W = find_param(net, "0.W"), B = find_feedback(net, "0.B");
        double a1 = angle(W->w, B->w, W->n), ratio = norm(B->w, B->n) / norm(W->w, W->n);
        float *before = malloc(sizeof(float) * B->n);
        memcpy(before, B->w, sizeof(float) * B->n);
        asym_net_feedback_update(net);
        double d = 0;
        for (size_t i = 0; i < B->n; i++) d += ((double)B->w[i] - before[i]) * (B->w[i] - before[i]);
        double moved = sqrt(d) / norm(before, B->n);
        free(before);
        printf("    seed %d: angle %.1f -> %.1f degrees after the pre-sweep, |B|/|W| %.3f, one more step moves B by %.4f of |B|\n", (int)seed, a0, a1, ratio, moved);
        CHECK_MSG(a1 < 8, "angle after the pre-sweep is %.1f degrees", a1);
        CHECK_MSG(ratio > 0.9 && ratio < 1.05, "|B|/|W| = %.3f", ratio);
        CHECK_MSG(moved > 1e-4 && moved < 0.01, "one mirror step moved B by %.4f of its norm: B must accumulate small steps", moved);
        asym_net_free(net);
    }
}

/* The exact estimator, an explicit option (noise: orthogonal, learning rate
 * and decay 1): orthogonal noise makes one mirror step of a dense layer
 * exact when the noise block is square (fan_in = 784 inputs, 784 noise
 * vectors), so B = W, i.e. backpropagation. In float32 the Cholesky QR of
 * such a block failed or lost orthogonality in about a quarter of the draws
 * (estimates about 45 degrees off); every one of 40 steps must now give B
 * within a degree of W, with no fall-back to plain noise. */
TEST(rule_wm_square_noise_block_is_exact) {
    AsymLayerSpec L[3];
    AsymNetSpec s = wm_mlp(L, 784, 12, 4);
    s.fb.wm_noise = ASYM_NOISE_ORTHOGONAL;
    s.fb.wm_lr = s.fb.wm_decay = 1.0f;
    s.fb.wm_presweep = 0;
    AsymNet *net = make(&s, 5, 16);
    CHECK(net);
    AsymParam *W = find_param(net, "0.W"), *B = find_feedback(net, "0.B");
    double worst = 0;
    for (int i = 0; i < 40; i++) {
        asym_net_feedback_update(net);
        worst = fmax(worst, angle(W->w, B->w, W->n));
    }
    int fallbacks = asym_net_wm_fallbacks(net);
    asym_net_free(net);
    printf("    worst angle over 40 mirror steps: %.3f degrees\n", worst);
    CHECK_MSG(worst < 1, "a mirror step left B %.1f degrees from W", worst);
    CHECK_MSG(fallbacks == 0, "%d noise blocks fell back to plain noise", fallbacks);
}

/* A noise block whose rows are linearly dependent (two equal rows) cannot
 * be factored: it keeps its values and the fall-back is counted, not
 * silent; a good block is made orthonormal. */
TEST(rule_wm_cholesky_fallback_counted) {
    enum { n = 3, d = 5 };
    float x[n * d] = {1, 2, 0, -1, 3, 1, 2, 0, -1, 3, 0, 1, 1, 2, -2}, keep[n * d];
    double gram[n * n + n * d + n];
    memcpy(keep, x, sizeof x);
    CHECK(feedback_orthogonalize(x, n, d, 0.5f, gram) == 1);
    CHECK(!memcmp(x, keep, sizeof x));
    x[d] = 4; /* row 1 no longer equals row 0 */
    CHECK(feedback_orthogonalize(x, n, d, 0.5f, gram) == 0);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double dot = 0;
            for (int k = 0; k < d; k++) dot += (double)x[i * d + k] * x[j * d + k];
            CHECK_NEAR(dot, i == j ? 0.25 * d : 0.0, 1e-5);
        }
}

/* Angle and norm ratio of one kernel tap (ky, kx) of B against W's, both
 * (out, in, k, k). */
static void tap_stats(const float *B, const float *W, int O, int I, int k, int t, double *ang, double *ratio) {
    double bw = 0, bb = 0, ww = 0;
    for (int o = 0; o < O * I; o++) {
        double b = B[(size_t)o * k * k + t], w = W[(size_t)o * k * k + t];
        bw += b * w, bb += b * b, ww += w * w;
    }
    *ang = acos(fmax(-1.0, fmin(1.0, bw / sqrt(bb * ww)))) * 180 / M_PI;
    *ratio = sqrt(bb / ww);
}

/* A padded 3x3 convolution on a 4x4 input: its border taps meet the image
 * at 3 of 4 output rows (or columns), its corner taps at 9 of 16
 * positions. Each tap is normalized by its own count, so every tap of the
 * mirrored B points within 5 degrees of W's and has its size (one count
 * for all gave border taps 0.56-0.75 of W's). */
TEST(rule_wm_conv_padded_taps) {
    AsymLayerSpec L[5] = {
        {.kind = ASYM_CONV, .out = 8, .k = 3, .pad = 1, .bias = 1},
        {.kind = ASYM_RELU},
        {.kind = ASYM_FLATTEN},
        {.kind = ASYM_FC, .out = 3, .bias = 1},
    };
    AsymNetSpec s = {.in_c = 4, .in_h = 4, .in_w = 4, .classes = 3, .layers = L, .n_layers = 4, .init = ASYM_INIT_XAVIER_UNIFORM, .rule = ASYM_RULE_WM};
    asym_feedback_defaults(&s.fb);
    for (uint64_t seed = 1; seed <= 5; seed++) {
        AsymNet *net = make(&s, seed, 64);
        CHECK(net);
        AsymParam *W = find_param(net, "0.W"), *B = find_feedback(net, "0.B");
        CHECK(W && B && W->ndim == 4 && W->shape[2] == 3);
        double worst_a = 0, lo = 9, hi = 0;
        for (int t = 0; t < 9; t++) {
            double a, r;
            tap_stats(B->w, W->w, W->shape[0], W->shape[1], 3, t, &a, &r);
            worst_a = fmax(worst_a, a), lo = fmin(lo, r), hi = fmax(hi, r);
        }
        printf("    seed %d: worst tap angle %.2f degrees, tap |B|/|W| %.3f to %.3f\n", (int)seed, worst_a, lo, hi);
        CHECK_MSG(worst_a < 5, "a tap of B is %.1f degrees from W's", worst_a);
        CHECK_MSG(lo > 0.9 && hi < 1.05, "tap norm ratios %.3f to %.3f", lo, hi);
        asym_net_free(net);
    }
}

TEST(rule_wm_conv_aligns) {
    AsymNetSpec s;
    AsymLayerSpec L[8];
    small_spec(&s, L, ASYM_RULE_WM);
    AsymNet *net = make(&s, 8, 16);
    CHECK(net);
    AsymParam *W = find_param(net, "0.W"), *B = find_feedback(net, "0.B");
    double a = angle(W->w, B->w, W->n), ratio = norm(B->w, B->n) / norm(W->w, W->n);
    CHECK_MSG(a < 8, "conv angle after the pre-sweep is %.1f degrees", a);
    CHECK_MSG(ratio > 0.9 && ratio < 1.05, "|B|/|W| = %.3f", ratio);
    asym_net_free(net);
}

TEST(rule_batch_manhattan_steps_by_sign) {
    AsymNetSpec s;
    AsymLayerSpec L[8];
    enum { N = 4 };
    float x[N * 64];
    int32_t y[N];
    batch_data(x, y, N, 64, 4, 2);
    small_spec(&s, L, ASYM_RULE_BP);
    AsymNet *net = make(&s, 3, N);
    CHECK(net);
    AsymOptim *opt = sgd(net, 0, 0.01f, 1);
    CHECK(opt);
    size_t nw = asym_net_n_weights(net);
    float *w0 = malloc(sizeof(float) * nw), *g = malloc(sizeof(float) * nw);
    memcpy(w0, asym_net_param(net, 0)->w, sizeof(float) * nw);
    asym_net_zero_grad(net);
    asym_net_forward(net, x, N, 1);
    asym_net_loss(net, y, N, 1, NULL);
    memcpy(g, asym_net_param(net, 0)->g, sizeof(float) * nw);
    asym_optim_step(opt, 0.1f);
    const float *w = asym_net_param(net, 0)->w;
    for (size_t i = 0; i < nw; i++) {
        float want = w0[i] - 0.1f * (sgn(g[i]) + 0.01f * w0[i]);
        CHECK_MSG(w[i] == want, "entry %zu: %g, want %g", i, w[i], want);
    }
    free(w0);
    free(g);
    asym_optim_free(opt);
    asym_net_free(net);
}

TEST(rule_alignment_measurements) {
    AsymNetSpec s;
    AsymLayerSpec L[8];
    enum { N = 8 };
    float x[N * 64];
    int32_t y[N];
    batch_data(x, y, N, 64, 4, 21);
    AsymAlignment a[3];
    small_spec(&s, L, ASYM_RULE_BP);
    AsymNet *net = make(&s, 3, N);
    CHECK(net && asym_net_n_weight_layers(net) == 3);
    CHECK_OK(asym_net_alignment(net, x, y, N, a));
    for (int i = 0; i < 3; i++) {
        CHECK(a[i].rule == ASYM_RULE_BP && a[i].angle == 0 && a[i].norm_ratio == 1 && a[i].sign_agree == 1);
        CHECK_MSG(a[i].delta_angle < 1e-3 && a[i].grad_angle < 1e-2, "bp layer %d: delta %g grad %g", i, a[i].delta_angle, a[i].grad_angle);
    }
    asym_net_free(net);
    small_spec(&s, L, ASYM_RULE_FA);
    net = make(&s, 3, N);
    CHECK(net);
    /* measuring changes nothing: the same logits before and after */
    float logits[N * 4];
    memcpy(logits, asym_net_forward(net, x, N, 0), sizeof logits);
    CHECK_OK(asym_net_alignment(net, x, y, N, a));
    CHECK(memcmp(logits, asym_net_forward(net, x, N, 0), sizeof logits) == 0);
    AsymParam *W = find_param(net, "4.W"), *B = find_feedback(net, "4.B");
    CHECK(fabs(a[1].angle - angle(B->w, W->w, W->n)) < 1e-6);
    CHECK(a[0].angle > 45 && a[1].angle > 45);
    CHECK(a[2].delta_angle < 1e-3);          /* the output layer gets the true error */
    CHECK(a[1].delta_angle > 10 && a[0].delta_angle > 10); /* below it, random feedback */
    CHECK(a[2].grad_angle < 1e-2 && a[1].grad_angle > 10);
    asym_net_free(net);
}

/* A measurement runs in its own mode: with batch norm (running statistics),
 * dropout (its stream) and clip_dx, the training step after it is bitwise
 * the step of a twin network that measured nothing. */
TEST(rule_alignment_leaves_training_unchanged) {
    AsymNetSpec s;
    AsymLayerSpec L[10];
    enum { N = 6 };
    float x[N * 64];
    int32_t y[N];
    batch_data(x, y, N, 64, 4, 23);
    small_spec(&s, L, ASYM_RULE_FA);
    AsymLayerSpec extra[] = {{.kind = ASYM_FC, .out = 12, .bias = 1}, {.kind = ASYM_BATCHNORM, .momentum = 0.1f, .eps = 1e-5f},
                             {.kind = ASYM_DROPOUT, .p = 0.3f}, {.kind = ASYM_FC, .out = 4, .bias = 1}};
    memcpy(&L[4], extra, sizeof extra);
    s.n_layers = 8;
    s.fb.clip_dx = 0.01f;
    AsymNet *a = make(&s, 5, N), *b = make(&s, 5, N);
    CHECK(a && b);
    AsymAlignment al[3];
    CHECK_OK(asym_net_alignment(a, x, y, N, al));
    CHECK(al[0].delta_angle > 1); /* the rule's pass and the exact pass differed */
    float loss[2];
    AsymNet *nets[2] = {a, b};
    for (int k = 0; k < 2; k++) {
        asym_net_zero_grad(nets[k]);
        asym_net_forward(nets[k], x, N, 1);
        loss[k] = asym_net_loss(nets[k], y, N, 1, NULL);
    }
    CHECK(loss[0] == loss[1]);
    size_t nw = asym_net_n_weights(a);
    CHECK(memcmp(asym_net_param(a, 0)->g, asym_net_param(b, 0)->g, sizeof(float) * nw) == 0);
    CHECK(asym_net_n_buffers(a) == 2);
    for (int i = 0; i < asym_net_n_buffers(a); i++)
        CHECK_MSG(memcmp(asym_net_buffer(a, i)->w, asym_net_buffer(b, i)->w, sizeof(float) * asym_net_buffer(a, i)->n) == 0, "buffer %s moved", asym_net_buffer(a, i)->name);
    asym_net_free(a);
    asym_net_free(b);
}

TEST(rule_dfa_blocks_and_errors) {
    AsymNetSpec s;
    AsymLayerSpec L[8];
    enum { N = 5 };
    float x[N * 64];
    int32_t y[N];
    batch_data(x, y, N, 64, 4, 31);
    small_spec(&s, L, ASYM_RULE_DFA);
    AsymNet *net = make(&s, 3, N);
    CHECK(net);
    /* D for the two hidden blocks: conv-relu-pool (3x4x4 = 48 outputs) and fc-tanh (12) */
    AsymParam *D0 = find_feedback(net, "0.D"), *D1 = find_feedback(net, "4.D");
    CHECK(D0 && D1 && asym_net_n_feedback(net) == 2);
    CHECK(D0->shape[0] == 4 && D0->shape[1] == 48 && D1->shape[0] == 4 && D1->shape[1] == 12);
    AsymAlignment a[3];
    CHECK_OK(asym_net_alignment(net, x, y, N, a));
    CHECK(isnan(a[0].angle) && a[2].delta_angle < 1e-3 && a[1].delta_angle > 1);
    asym_net_free(net);
    /* inside a residual block each path is a chain of blocks: the main
     * path's conv-bn-relu and conv-bn (ending before the sum), the stem's
     * block ending before the residual block */
    AsymLayerSpec R[] = {{.kind = ASYM_CONV, .out = 4, .k = 3, .pad = 1}, {.kind = ASYM_RESBLOCK, .out = 4, .shortcut = ASYM_SHORTCUT_A},
                         {.kind = ASYM_AVGPOOL}, {.kind = ASYM_FLATTEN}, {.kind = ASYM_FC, .out = 4, .bias = 1}};
    s.layers = R;
    s.n_layers = 5;
    AsymRng rng;
    asym_rng_seed(&rng, 1);
    AsymNet *res = NULL;
    CHECK_MSG(asym_net_create(&res, &s, N, &rng) == 0, "%s", asym_last_error());
    AsymParam *Ds = find_feedback(res, "0.D"), *Dm0 = find_feedback(res, "1.main.0.D"), *Dm3 = find_feedback(res, "1.main.3.D");
    CHECK(Ds && Dm0 && Dm3 && asym_net_n_feedback(res) == 3 && !find_feedback(res, "4.D"));
    CHECK(Dm0->shape[0] == 4 && Dm0->shape[1] == Ds->shape[1] && Dm3->shape[1] == Ds->shape[1]);
    AsymAlignment r[4];
    CHECK_OK(asym_net_alignment(res, x, y, N, r));
    /* the output layer's signal is exact; the convolutions' are not */
    CHECK_MSG(r[3].delta_angle < 1e-3 && r[1].delta_angle > 1 && r[2].delta_angle > 1, "delta angles %g %g %g %g", r[0].delta_angle, r[1].delta_angle,
              r[2].delta_angle, r[3].delta_angle);
    asym_net_free(res);
}

TEST(rule_overrides_by_index_and_name) {
    AsymNetSpec s;
    AsymLayerSpec L[8];
    small_spec(&s, L, ASYM_RULE_FA);
    snprintf(s.overrides[0].sel, sizeof s.overrides[0].sel, "-1");
    s.overrides[0].rule = ASYM_RULE_BP;
    s.n_overrides = 1;
    AsymNet *net = make(&s, 3, 4);
    CHECK(net);
    CHECK(find_feedback(net, "0.B") && find_feedback(net, "4.B") && !find_feedback(net, "6.B"));
    asym_net_free(net);
    snprintf(s.overrides[0].sel, sizeof s.overrides[0].sel, "7");
    AsymNet *bad = NULL;
    AsymRng rng;
    asym_rng_seed(&rng, 1);
    CHECK(asym_net_create(&bad, &s, 4, &rng) != 0);
    CHECK_MSG(strstr(asym_last_error(), "rule_overrides"), "%s", asym_last_error());
    L[4].rule = ASYM_RULE_KP; /* a layer's own rule */
    s.n_overrides = 0;
    net = make(&s, 3, 4);
    CHECK(net);
    CHECK(find_feedback(net, "4.B")->g == find_param(net, "4.W")->g);
    asym_net_free(net);
}

/* feedback.dfa: conv. D of a block that feeds a convolution must be what
 * BioTorch computes, torch.nn.grad.conv2d_input of the error spread over
 * every output position, for one random kernel inside Xavier's bound: for
 * each class and channel, D's column lies in the span of conv2d_input's
 * answers for the k x k unit kernels, with coefficients within the bound.
 * The dense D of the default mode must not (the control), and a block that
 * feeds a fully connected layer keeps its dense D. PyTorch is the oracle. */
static int dfa_conv_residual(const AsymParam *D, int C, int H, int W, int k, int s, int p, int OH, double bound, char *out, size_t cap) {
    const char *py = test_python();
    char raw[600], script[600];
    snprintf(raw, sizeof raw, "%s/dfa_D.f32", test_tmpdir());
    snprintf(script, sizeof script, "%s/dfa_conv.py", test_tmpdir());
    FILE *f = fopen(raw, "wb");
    if (!f || fwrite(D->w, sizeof(float), D->n, f) != D->n) return -1;
    fclose(f);
    test_write_file(script,
                    "import sys\nimport numpy as np, torch\n"
                    "K, C, H, W, k, s, p, OH = map(int, sys.argv[2:10]); bound = float(sys.argv[10])\n"
                    "D = np.fromfile(sys.argv[1], dtype=np.float32).astype(np.float64).reshape(K, C, H * W)\n"
                    "cols = []\n"
                    "for j in range(k * k):\n"
                    "    w = torch.zeros(1, 1, k, k, dtype=torch.float64); w.view(-1)[j] = 1\n"
                    "    g = torch.ones(1, 1, OH, OH, dtype=torch.float64)\n"
                    "    cols.append(torch.nn.grad.conv2d_input((1, 1, H, W), w, g, stride=s, padding=p).reshape(-1).numpy())\n"
                    "A = np.stack(cols, 1)\n"
                    "res = big = 0.0\n"
                    "for c in range(K):\n"
                    "    for ch in range(C):\n"
                    "        x = np.linalg.lstsq(A, D[c, ch], rcond=None)[0]\n"
                    "        res = max(res, np.abs(A @ x - D[c, ch]).max()); big = max(big, np.abs(x).max() / bound)\n"
                    "print('residual %.3g kernel/bound %.6f' % (res, big))\n");
    return test_sh(out, cap, "'%s' '%s' '%s' %d %d %d %d %d %d %d %d %.17g 2>&1", py, script, raw, D->shape[0], C, H, W, k, s, p, OH, bound);
}

TEST(rule_dfa_conv_projection_is_torch_conv2d_input) {
    const char *py = test_python();
    char cmd[700];
    snprintf(cmd, sizeof cmd, "'%s' -c 'import torch, numpy' 2>/dev/null", py);
    if (system(cmd) != 0) {
        TEST_NO_ORACLE("'%s' cannot import torch and numpy (set ASYMBP_PYTHON to an interpreter that can)", py);
        return;
    }
    /* 1x8x8 -> conv 3 (k3 p1) relu pool -> 3x4x4 -> conv 5 (k3 s2 p1) -> 5x2x2 relu flatten fc 4 */
    AsymLayerSpec L[] = {{.kind = ASYM_CONV, .out = 3, .k = 3, .pad = 1, .bias = 1},
                         {.kind = ASYM_RELU},
                         {.kind = ASYM_MAXPOOL, .k = 2},
                         {.kind = ASYM_CONV, .out = 5, .k = 3, .stride = 2, .pad = 1, .bias = 1},
                         {.kind = ASYM_RELU},
                         {.kind = ASYM_FLATTEN},
                         {.kind = ASYM_FC, .out = 4, .bias = 1}};
    AsymNetSpec s;
    AsymLayerSpec unused[8];
    small_spec(&s, unused, ASYM_RULE_DFA);
    s.layers = L;
    s.n_layers = 7;
    double bound = sqrt(6.0 / (3 * 9 + 4 * 9)), dense_bound = sqrt(6.0 / (4 + 20));
    char out[2][512];
    for (int mode = 0; mode < 2; mode++) {
        s.fb.dfa_conv = mode;
        AsymNet *net = make(&s, 7, 4);
        CHECK(net);
        AsymParam *D0 = find_feedback(net, "0.D"), *D3 = find_feedback(net, "3.D");
        CHECK(D0 && D3 && D0->shape[0] == 4 && D0->shape[1] == 48 && D3->shape[0] == 4 && D3->shape[1] == 20);
        int ok = 1;
        for (size_t i = 0; i < D3->n; i++) ok = ok && fabs(D3->w[i]) <= dense_bound;
        CHECK_MSG(ok, "the fc-facing block's D is not dense Xavier (mode %d)", mode);
        int rc = dfa_conv_residual(D0, 3, 4, 4, 3, 2, 1, 2, bound, out[mode], sizeof out[mode]);
        asym_net_free(net);
        CHECK_MSG(rc == 0, "python: %s", out[mode]);
    }
    double res[2], big[2];
    for (int m = 0; m < 2; m++) CHECK_MSG(sscanf(out[m], "residual %lf kernel/bound %lf", &res[m], &big[m]) == 2, "%s", out[m]);
    printf("    conv D: %s    dense D: %s", out[1], out[0]);
    CHECK_MSG(res[1] < 1e-6 && big[1] <= 1 + 1e-6, "conv D: %s", out[1]);
    CHECK_MSG(res[0] > 1e-2, "the dense D also fits a kernel: %s", out[0]);
}
