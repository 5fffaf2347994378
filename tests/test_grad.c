/* test_grad.c: every layer's backward pass against central finite
 * differences of the loss, through the public API: parameter gradients and
 * the input gradient of small networks in training mode, both losses.
 *
 * The loss for the differences is computed in double from the float logits
 * (the library rounds it to float, which alone would swamp small steps).
 * Each probed entry is compared along a ladder of steps (see check_tensor):
 * smooth networks (tanh, sigmoid, average pooling, batch norm) must agree to
 * 0.5% per entry; networks with kinks (ReLU, max pooling, residual blocks)
 * are judged by the share of probes that agree, with kinks told apart from
 * wrong gradients by their one-sided difference quotients. Dropout with
 * p > 0 redraws its mask each pass, so it is checked directly instead.
 *
 * Debugging aids: GRAD_DEBUG=1 prints every probe's ladder on stderr,
 * GRAD_STATS=1 prints per-tensor and per-network counts, GRAD_SEED=k shifts
 * every seed (to check the tolerances over many draws). */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "asymbp.h"
#include "layers/layers.h"
#include "test.h"

#define CE ASYM_LOSS_SOFTMAX_CE
#define BCE ASYM_LOSS_SIGMOID_BCE
#define L_FC(o, b) {.kind = ASYM_FC, .out = (o), .bias = (b)}
#define L_CONV(o, k_, s, p, b) {.kind = ASYM_CONV, .out = (o), .k = (k_), .stride = (s), .pad = (p), .bias = (b)}
#define L_ACT(kd) {.kind = (kd)}
#define L_POOL(kd, k_, s, p) {.kind = (kd), .k = (k_), .stride = (s), .pad = (p)}
#define L_BN {.kind = ASYM_BATCHNORM}
#define L_FLAT {.kind = ASYM_FLATTEN}
#define L_DROP(p_) {.kind = ASYM_DROPOUT, .p = (p_)}
#define L_RES(o, s, sc, bt) {.kind = ASYM_RESBLOCK, .out = (o), .stride = (s), .shortcut = (sc), .bottleneck = (bt)}
#define NL(a) ((int)(sizeof(a) / sizeof((a)[0])))

static char gmsg[1024], gbad[512]; /* gbad: the last probe disagreeing at clean steps */

typedef struct GradOpts {
    int N;          /* batch */
    double h;       /* finite-difference step */
    int probes;     /* entries probed per tensor (all when the tensor is smaller) */
    uint64_t seed;
    double rtol;    /* per entry, relative */
    double atol;    /* per entry, absolute: atol * (rms + max / 4) of the tensor's gradient */
    double vtol;    /* whole probed vector, relative */
    int vmin;       /* least checked entries for the vector test */
    int kinks;      /* ReLUs or max pooling: judge by the share of agreeing probes */
} GradOpts;

/* Smooth networks: central differences are good to a few 1e-4 here (seen
 * over hundreds of seeds), so 0.5% per entry catches small systematic
 * errors. */
static GradOpts opts(int N, uint64_t seed) {
    GradOpts o = {.N = N, .h = 3e-3, .probes = 24, .seed = seed, .rtol = 5e-3, .atol = 2e-3, .vtol = 3e-3, .vmin = 3};
    return o;
}

/* For networks with ReLUs or max pooling: a perturbed weight moves many
 * pre-activations at once, and every kink its step crosses biases the
 * quotient; a smaller first step crosses fewer. Entries that pass carry
 * that bias, so the probed vector gets a looser relative bound: systematic
 * small errors are the business of the smooth networks' tests, routing
 * errors (masks, argmax, shortcuts) are large. */
static GradOpts opts_kinks(int N, uint64_t seed) {
    GradOpts o = opts(N, seed);
    o.h = 1e-3;
    o.rtol = 2e-2;
    o.atol = 1e-2;
    o.vtol = 4e-2;
    o.vmin = 8;
    o.kinks = 1;
    return o;
}

static AsymNetSpec mkspec(int c, int h, int w, int classes, AsymLayerSpec *L, int n, AsymLoss loss) {
    AsymNetSpec s = {.in_c = c, .in_h = h, .in_w = w, .classes = classes, .layers = L, .n_layers = n, .init = ASYM_INIT_TORCH, .loss = loss};
    return s;
}

/* The loss of the network under test, set by gradcheck. */
static AsymLoss g_loss;
static int g_classes;

/* Loss of logits (N, K), in double: the same formulas as loss.c, without
 * rounding the result to float (that rounding alone would put ulp / h of
 * noise into every difference quotient). */
static double loss_double(const float *z, const int32_t *y, int N, int K, AsymLoss kind) {
    double total = 0;
    for (int n = 0; n < N; n++) {
        const float *zn = z + (size_t)n * K;
        if (kind == ASYM_LOSS_SIGMOID_BCE) {
            for (int k = 0; k < K; k++) {
                double t = k == y[n], v = zn[k];
                total += (v > 0 ? v : 0) - v * t + log1p(exp(-fabs(v)));
            }
            continue;
        }
        double m = zn[0], s = 0;
        for (int k = 1; k < K; k++) m = fmax(m, zn[k]);
        for (int k = 0; k < K; k++) s += exp(zn[k] - m);
        total += log(s) + m - zn[y[n]];
    }
    return total / (kind == ASYM_LOSS_SIGMOID_BCE ? (double)N * K : N);
}

static double eval_loss(AsymNet *net, const float *x, const int32_t *y, int N) {
    const float *z = asym_net_forward(net, x, N, 1);
    return loss_double(z, y, N, g_classes, g_loss);
}

/* Difference quotients of the loss in entry *v with step h, using the
 * steps the float actually took: central, and one-sided from L0. */
typedef struct Quot {
    double central, right, left;
} Quot;

static Quot fd(AsymNet *net, float *v, double h, double L0, const float *x, const int32_t *y, int N) {
    float save = *v;
    float vp = (float)(save + h), vm = (float)(save - h);
    *v = vp;
    double lp = eval_loss(net, x, y, N);
    *v = vm;
    double lm = eval_loss(net, x, y, N);
    *v = save;
    Quot q = {(lp - lm) / ((double)vp - (double)vm), (lp - L0) / ((double)vp - save), (L0 - lm) / (save - (double)vm)};
    return q;
}

typedef struct Probe {
    int checked, skipped, total, bad; /* bad: disagreeing at two clean steps */
} Probe;

#define LADDER 6 /* steps h, h/2, ..., h/32 */

/* Compares the analytic gradient ana (n entries) of tensor v with finite
 * differences. gfloor: absolute tolerance floor from the whole network;
 * nL: the rounding noise of one loss evaluation (float activations), so a
 * central quotient with step h carries about nL / h of noise.
 *
 * Each probed entry walks down a ladder of steps h, h/2, ..., h/32, as far
 * as the noise stays below half the entry's tolerance (the first step is
 * always taken). A step that crosses kinks (ReLU, max-pooling argmax) has
 * one-sided quotients that disagree, and its central quotient is biased by
 * about half their difference; a step is clean when they agree. The entry
 *  - passes when some step's central quotient agrees with the analytic value,
 *    or, at a step that crosses a kink, one of its one-sided quotients (the
 *    kink lies within the step on the other side of the point);
 *  - fails when none does and two steps are clean (a smooth function whose
 *    derivative is elsewhere, seen at two scales), or the one step the
 *    noise allows is;
 *  - is skipped as a kink otherwise.
 * Wrong gradients thus fail in smooth regions and show up as many skips in
 * kinky ones; skips are limited per tensor and per network. */
static int check_tensor(AsymNet *net, const char *name, float *v, const float *ana, size_t n, const float *x, const int32_t *y, int N, const GradOpts *o,
                        AsymRng *rng, double gfloor, double L0, double nL, Probe *pr) {
    double amax = 0, arms = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(ana[i])) {
            snprintf(gmsg, sizeof gmsg, "%s[%zu]: analytic gradient is %g", name, i, ana[i]);
            return 1;
        }
        amax = fmax(amax, fabs(ana[i]));
        arms += (double)ana[i] * ana[i];
    }
    arms = sqrt(arms / (double)n);
    int np = n <= (size_t)o->probes ? (int)n : o->probes;
    double atol = o->atol * (arms + amax / 4) + gfloor;
    double se = 0, sn = 0, snoise = 0;
    int checked = 0, skipped = 0;
    for (int k = 0; k < np; k++) {
        size_t i = np == (int)n ? (size_t)k : (size_t)rng_below(rng, (uint32_t)n);
        double h = o->h, bad_num = 0, bad_tol = 0, bad_h = 0;
        int status = 0, clean_bad = 0, steps = 0; /* status 1: passed */
        for (int s = 0; s < LADDER && !status; s++, h /= 2) {
            double noise = nL / h;
            if (s > 0 && noise > 0.5 * (o->rtol * fabs(ana[i]) + atol)) break;
            steps++;
            Quot q = fd(net, v + i, h, L0, x, y, N);
            double num = q.central, tol = o->rtol * fmax(fabs(ana[i]), fabs(num)) + atol + noise, e = fabs(ana[i] - num);
            int clean = fabs(q.right - q.left) <= tol + 4 * noise;
            if (getenv("GRAD_DEBUG"))
                fprintf(stderr, "%s[%zu] h %.3g ana %.6g num %.6g (right %.6g left %.6g) tol %.3g%s\n", name, i, h, ana[i], num, q.right, q.left, tol,
                        clean ? " clean" : "");
            int ok = e <= tol;
            if (!ok && !clean) { /* a kink close to the point: the analytic value is one side's slope */
                double er = fabs(ana[i] - q.right), el = fabs(ana[i] - q.left);
                if (fmin(er, el) <= tol + noise) ok = 1, e = fmin(er, el), num = er < el ? q.right : q.left;
            }
            if (ok) {
                status = 1;
                se += e * e;
                sn += num * num;
                snoise += noise * noise;
            } else if (clean && clean_bad++ == 0) {
                bad_num = num, bad_tol = tol, bad_h = h;
            }
        }
        if (!status && clean_bad >= (steps > 1 ? 2 : 1)) {
            snprintf(gbad, sizeof gbad, "%s[%zu]: analytic %.6g, numeric %.6g (step %.2g; %d clean steps), tolerance %.3g (max |g| %.3g)", name, i, ana[i],
                     bad_num, bad_h, clean_bad, bad_tol, amax);
            if (!o->kinks) {
                snprintf(gmsg, sizeof gmsg, "%s", gbad);
                return 1;
            }
            pr->bad++;
            if (getenv("GRAD_DEBUG")) fprintf(stderr, "BAD %s\n", gbad);
        }
        checked += status;
        skipped += !status;
    }
    if (getenv("GRAD_STATS")) printf("TENSOR %s n %zu checked %d vecerr %.3g\n", name, n, checked, sn > 0 ? sqrt(se / sn) : 0.0);
    pr->checked += checked;
    pr->skipped += skipped;
    pr->total += np;
    /* with kinks, one ReLU input right at zero can blur a whole tensor */
    if (o->kinks ? np >= 4 && checked < (np + 3) / 4 : checked < (np + 1) / 2) {
        snprintf(gmsg, sizeof gmsg, "%s: only %d of %d probes agree, the others cross kinks or are too noisy", name, checked, np);
        return 1;
    }
    /* Vector error where there are enough entries for it to mean more than
     * the per-entry test and where the tensor's gradient is not negligible
     * (an fc bias before batch norm has a zero gradient, for instance). */
    if (checked >= o->vmin && amax > 10 * gfloor && sn > 0 && sqrt(se) > o->vtol * sqrt(sn) + sqrt(snoise)) {
        snprintf(gmsg, sizeof gmsg, "%s: relative error of the probed gradient %.3g > %.3g", name, sqrt(se / sn), o->vtol);
        return 1;
    }
    return 0;
}

/* Builds spec, runs one training-mode forward and backward pass on random
 * data and checks every parameter gradient and the input gradient. Returns
 * 0, or 1 with a message in gmsg. */
static int gradcheck(const AsymNetSpec *spec, const GradOpts *o_in) {
    GradOpts oo = *o_in;
    const GradOpts *o = &oo;
    if (getenv("GRAD_SEED")) oo.seed += 1000 * (uint64_t)atoi(getenv("GRAD_SEED"));
    AsymRng rng;
    asym_rng_seed(&rng, o->seed);
    AsymNet *net = NULL;
    int rc = 1, N = o->N, threads = omp_get_max_threads();
    float *x = NULL, *gall = NULL, *dx = NULL, *z0 = NULL;
    int32_t *y = NULL;
    if (asym_net_create(&net, spec, N, &rng)) {
        snprintf(gmsg, sizeof gmsg, "asym_net_create: %s", asym_last_error());
        return 1;
    }
    size_t in = (size_t)spec->in_c * spec->in_h * spec->in_w, nw = asym_net_n_weights(net);
    x = malloc(sizeof(float) * N * in);
    z0 = malloc(sizeof(float) * N * spec->classes);
    y = malloc(sizeof(int32_t) * N);
    gall = malloc(sizeof(float) * (nw ? nw : 1));
    dx = malloc(sizeof(float) * N * in);
    if (!x || !y || !gall || !dx || !z0) {
        snprintf(gmsg, sizeof gmsg, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < N * in; i++) x[i] = rng_normal(&rng);
    for (int n = 0; n < N; n++) y[n] = (int32_t)rng_below(&rng, (uint32_t)spec->classes);
    /* Batch-norm parameters away from their (1, 0) start. */
    for (int i = 0; i < asym_net_n_params(net); i++) {
        AsymParam *p = asym_net_param(net, i);
        if (p->role == ASYM_P_BN_SCALE)
            for (size_t j = 0; j < p->n; j++) p->w[j] = (float)(0.7 + 0.6 * rng_uniform(&rng));
        if (p->role == ASYM_P_BN_SHIFT)
            for (size_t j = 0; j < p->n; j++) p->w[j] = (float)(0.4 * rng_uniform(&rng) - 0.2);
    }
    g_loss = spec->loss ? spec->loss : ASYM_LOSS_SOFTMAX_CE;
    g_classes = spec->classes;
    asym_net_keep_input_grad(net, 1);
    memcpy(z0, asym_net_forward(net, x, N, 1), sizeof(float) * N * spec->classes);
    asym_net_zero_grad(net);
    double Lf = asym_net_loss(net, y, N, 1, NULL);
    if (!isfinite(Lf)) {
        snprintf(gmsg, sizeof gmsg, "loss is %g", Lf);
        goto done;
    }
    double gmax = 0;
    size_t off = 0;
    for (int i = 0; i < asym_net_n_params(net); i++) {
        AsymParam *p = asym_net_param(net, i);
        memcpy(gall + off, p->g, sizeof(float) * p->n);
        for (size_t j = 0; j < p->n; j++) gmax = fmax(gmax, fabs(p->g[j]));
        off += p->n;
    }
    const float *dxp = asym_net_input_grad(net);
    if (!dxp) {
        snprintf(gmsg, sizeof gmsg, "asym_net_input_grad is NULL after keep_input_grad");
        goto done;
    }
    memcpy(dx, dxp, sizeof(float) * N * in);
    double dxmax = 0;
    for (size_t i = 0; i < N * in; i++) dxmax = fmax(dxmax, fabs(dx[i]));
    if (!(gmax > 1e-5) || !(dxmax > 1e-6)) {
        snprintf(gmsg, sizeof gmsg, "gradients vanish: max |dW| %g, max |dx| %g", gmax, dxmax);
        goto done;
    }
    /* A repeated pass reproduces the loss: nothing but the running
     * statistics changes between passes. */
    /* The thousands of small passes below run on one thread: OpenMP's
     * barriers make them slow on a busy machine, and every layer gives the
     * same floats on any number of threads (checked just below). */
    omp_set_num_threads(1);
    double L0 = eval_loss(net, x, y, N);
    if (fabs(L0 - Lf) > 1e-6 * fmax(1, fabs(Lf))) {
        snprintf(gmsg, sizeof gmsg, "loss not reproducible: %.9g, then %.9g", Lf, L0);
        goto done;
    }
    if (memcmp(z0, asym_net_forward(net, x, N, 1), sizeof(float) * N * spec->classes)) {
        snprintf(gmsg, sizeof gmsg, "logits on one thread differ from those on %d", threads);
        goto done;
    }
    double gfloor = 1e-4 * gmax + 1e-7;
    /* noise of a loss evaluation: float rounding of the activations (half
     * a float ulp of the loss is about twice what these networks show) */
    double nL = 0x1p-24 * fmax(1, fabs(L0));
    Probe pr = {0};
    off = 0;
    for (int i = 0; i < asym_net_n_params(net); i++) {
        AsymParam *p = asym_net_param(net, i);
        if (check_tensor(net, p->name, p->w, gall + off, p->n, x, y, N, o, &rng, gfloor, L0, nL, &pr)) goto done;
        off += p->n;
    }
    if (check_tensor(net, "input", x, dx, N * in, x, y, N, o, &rng, 1e-4 * dxmax + 1e-7, L0, nL, &pr)) goto done;
    if (getenv("GRAD_STATS")) printf("STATS checked %d bad %d skipped %d total %d\n", pr.checked, pr.bad, pr.skipped, pr.total);
    if (pr.skipped * 10 > pr.total) {
        snprintf(gmsg, sizeof gmsg, "%d of %d probes do not agree (%d disagree at two clean steps; last: %s)", pr.skipped, pr.total, pr.bad, pr.bad ? gbad : "-");
        goto done;
    }
    if (pr.bad * 25 > pr.total) {
        snprintf(gmsg, sizeof gmsg, "%d of %d probes disagree at two clean steps; last: %s", pr.bad, pr.total, gbad);
        goto done;
    }
    rc = 0;
done:
    free(x);
    free(z0);
    free(y);
    free(gall);
    free(dx);
    asym_net_free(net);
    omp_set_num_threads(threads);
    return rc;
}

#define GRADCHECK(spec, o)                                                  \
    do {                                                                    \
        AsymNetSpec s_ = (spec);                                            \
        GradOpts o_ = (o);                                                  \
        int rc_ = gradcheck(&s_, &o_);                                      \
        CHECK_MSG(rc_ == 0, "%s", gmsg);                                    \
    } while (0)

/* ---- fully connected ---- */

TEST(grad_fc_bias) {
    AsymLayerSpec L[] = {L_FC(7, 1), L_ACT(ASYM_TANH), L_FC(4, 1)};
    GRADCHECK(mkspec(5, 1, 1, 4, L, NL(L), CE), opts(3, 1));
}

TEST(grad_fc_nobias) {
    AsymLayerSpec L[] = {L_FC(7, 0), L_ACT(ASYM_TANH), L_FC(4, 0)};
    GRADCHECK(mkspec(5, 1, 1, 4, L, NL(L), CE), opts(3, 2));
}

TEST(grad_fc_image_input) {
    /* fc reads a (C, H, W) input flat */
    AsymLayerSpec L[] = {L_FC(5, 1)};
    GRADCHECK(mkspec(2, 3, 4, 5, L, NL(L), CE), opts(2, 3));
}

/* ---- convolution ---- */

TEST(grad_conv_shapes) {
    static const struct {
        int k, s, p, b;
    } C[] = {
        {1, 1, 0, 1}, {1, 2, 0, 0}, {3, 1, 1, 1}, {3, 1, 0, 0}, {3, 2, 1, 1}, {3, 2, 2, 0},
        {5, 1, 2, 1}, {5, 2, 0, 1}, {5, 1, 0, 0}, {5, 2, 2, 0}, {3, 1, 2, 1},
    };
    for (int i = 0; i < NL(C); i++) {
        AsymLayerSpec L[] = {L_CONV(3, C[i].k, C[i].s, C[i].p, C[i].b), L_ACT(ASYM_TANH), L_FLAT, L_FC(4, 1)};
        AsymNetSpec s = mkspec(2, 7, 9, 4, L, NL(L), CE);
        GradOpts o = opts(2, 10 + i);
        int rc = gradcheck(&s, &o);
        CHECK_MSG(rc == 0, "conv k%d s%d p%d bias %d: %s", C[i].k, C[i].s, C[i].p, C[i].b, gmsg);
    }
}

TEST(grad_conv_stack) {
    /* Two convolutions: the first one's input gradient feeds the second's weight gradient. */
    AsymLayerSpec L[] = {L_CONV(4, 3, 1, 1, 1), L_ACT(ASYM_SIGMOID), L_CONV(3, 3, 2, 0, 1), L_ACT(ASYM_TANH), L_FLAT, L_FC(3, 1)};
    GRADCHECK(mkspec(3, 8, 6, 3, L, NL(L), CE), opts(3, 20));
}

/* ---- pooling ---- */

TEST(grad_maxpool_k2s2) {
    AsymLayerSpec L[] = {L_CONV(3, 3, 1, 1, 1), L_ACT(ASYM_TANH), L_POOL(ASYM_MAXPOOL, 2, 2, 0), L_FLAT, L_FC(4, 1)};
    GRADCHECK(mkspec(2, 6, 8, 4, L, NL(L), CE), opts_kinks(2, 30));
}

TEST(grad_maxpool_k3s2p1) {
    AsymLayerSpec L[] = {L_CONV(3, 3, 1, 1, 1), L_ACT(ASYM_TANH), L_POOL(ASYM_MAXPOOL, 3, 2, 1), L_FLAT, L_FC(4, 1)};
    GRADCHECK(mkspec(2, 7, 9, 4, L, NL(L), CE), opts_kinks(2, 31));
}

TEST(grad_maxpool_input) {
    /* Pooling first: the input gradient routes through the argmax directly. */
    AsymLayerSpec L[] = {L_POOL(ASYM_MAXPOOL, 3, 2, 1), L_FLAT, L_FC(3, 1)};
    GRADCHECK(mkspec(2, 5, 6, 3, L, NL(L), CE), opts_kinks(2, 32));
}

TEST(grad_avgpool_k2) {
    AsymLayerSpec L[] = {L_CONV(3, 3, 1, 1, 1), L_ACT(ASYM_TANH), L_POOL(ASYM_AVGPOOL, 2, 2, 0), L_FLAT, L_FC(4, 1)};
    GRADCHECK(mkspec(2, 6, 8, 4, L, NL(L), CE), opts(2, 40));
}

TEST(grad_avgpool_k3s2p1) {
    AsymLayerSpec L[] = {L_POOL(ASYM_AVGPOOL, 3, 2, 1), L_FLAT, L_FC(3, 1)};
    GRADCHECK(mkspec(2, 7, 6, 3, L, NL(L), CE), opts(2, 41));
}

TEST(grad_avgpool_global) {
    AsymLayerSpec L[] = {L_CONV(5, 3, 1, 1, 1), L_ACT(ASYM_TANH), L_POOL(ASYM_AVGPOOL, 0, 0, 0), L_FLAT, L_FC(4, 1)};
    GRADCHECK(mkspec(2, 6, 6, 4, L, NL(L), CE), opts(2, 42));
}

/* ---- batch norm (training mode: the loss depends on every batch item) ---- */

TEST(grad_batchnorm_fc) {
    AsymLayerSpec L[] = {L_FC(6, 1), L_BN, L_ACT(ASYM_TANH), L_FC(3, 1)};
    GRADCHECK(mkspec(5, 1, 1, 3, L, NL(L), CE), opts(6, 50));
}

TEST(grad_batchnorm_conv) {
    AsymLayerSpec L[] = {L_CONV(3, 3, 1, 1, 0), L_BN, L_ACT(ASYM_TANH), L_FLAT, L_FC(3, 1)};
    GRADCHECK(mkspec(2, 5, 6, 3, L, NL(L), CE), opts(3, 51));
}

TEST(grad_batchnorm_relu) {
    AsymLayerSpec L[] = {L_CONV(4, 3, 1, 1, 1), L_BN, L_ACT(ASYM_RELU), L_FLAT, L_FC(3, 1)};
    GRADCHECK(mkspec(2, 5, 5, 3, L, NL(L), CE), opts_kinks(3, 52));
}

TEST(grad_batchnorm_input) {
    /* Batch norm first: the input gradient couples all batch items. */
    AsymLayerSpec L[] = {L_BN, L_FLAT, L_FC(3, 1)};
    GRADCHECK(mkspec(2, 3, 3, 3, L, NL(L), CE), opts(4, 53));
}

/* ---- activations, flatten, dropout ---- */

TEST(grad_relu) {
    AsymLayerSpec L[] = {L_FC(8, 1), L_ACT(ASYM_RELU), L_FC(4, 1)};
    GRADCHECK(mkspec(6, 1, 1, 4, L, NL(L), CE), opts_kinks(3, 60));
}

TEST(grad_tanh) {
    AsymLayerSpec L[] = {L_FC(8, 1), L_ACT(ASYM_TANH), L_FC(4, 1)};
    GRADCHECK(mkspec(6, 1, 1, 4, L, NL(L), CE), opts(3, 61));
}

TEST(grad_sigmoid) {
    AsymLayerSpec L[] = {L_FC(8, 1), L_ACT(ASYM_SIGMOID), L_FC(4, 1)};
    GRADCHECK(mkspec(6, 1, 1, 4, L, NL(L), CE), opts(3, 62));
}

TEST(grad_activation_input) {
    AsymLayerSpec L[] = {L_ACT(ASYM_TANH), L_ACT(ASYM_SIGMOID), L_FLAT, L_FC(3, 1)};
    GRADCHECK(mkspec(2, 2, 3, 3, L, NL(L), CE), opts(2, 63));
}

TEST(grad_flatten) {
    AsymLayerSpec L[] = {L_CONV(2, 3, 1, 0, 1), L_FLAT, L_ACT(ASYM_TANH), L_FC(3, 1)};
    GRADCHECK(mkspec(2, 5, 4, 3, L, NL(L), CE), opts(2, 70));
}

TEST(grad_dropout_p0) {
    AsymLayerSpec L[] = {L_FC(8, 1), L_ACT(ASYM_TANH), L_DROP(0.0f), L_FC(4, 1)};
    GRADCHECK(mkspec(6, 1, 1, 4, L, NL(L), CE), opts(3, 71));
}

/* A dropout layer built alone, with a hand-made network context. */
TEST(grad_dropout_mask) {
    NetCtx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.max_batch = 4;
    rng_seed(&ctx.rng, 7);
    AsymLayerSpec s = L_DROP(0.3f);
    Shape in = {5, 10, 10};
    Layer *l = layer_create(&s, in, &ctx, "0");
    CHECK_OK(l ? 0 : -1);
    size_t n = 4 * shape_size(in);
    float *x = malloc(sizeof(float) * n), *y = malloc(sizeof(float) * n), *y2 = malloc(sizeof(float) * n);
    float *dy = malloc(sizeof(float) * n), *dx = malloc(sizeof(float) * n);
    AsymRng r;
    rng_seed(&r, 8);
    for (size_t i = 0; i < n; i++) x[i] = rng_normal(&r) + 0.01f, dy[i] = rng_normal(&r);
    const float scale = 1.0f / (1.0f - 0.3f);
    int ok = 1;
    size_t dropped = 0, bad = n;
    l->ops->forward(l, x, y, 4, LAYER_PASS(l, 1));
    l->ops->backward(l, x, y, dy, dx, 4, LAYER_PASS(l, 1));
    for (size_t i = 0; i < n && ok; i++) {
        int keep = y[i] != 0.0f;
        dropped += !keep;
        if (keep && y[i] != x[i] * scale) ok = 0, bad = i;
        if (dx[i] != (keep ? dy[i] * scale : 0.0f)) ok = 0, bad = i;
    }
    double frac = (double)dropped / n;
    /* a second training pass draws a new mask */
    l->ops->forward(l, x, y2, 4, LAYER_PASS(l, 1));
    size_t differ = 0;
    for (size_t i = 0; i < n; i++) differ += (y[i] == 0.0f) != (y2[i] == 0.0f);
    /* evaluation: the identity, and the backward pass passes dy through */
    l->ops->forward(l, x, y, 4, LAYER_PASS(l, 0));
    l->ops->backward(l, x, y, dy, dx, 4, LAYER_PASS(l, 1));
    int eval_ok = !memcmp(x, y, sizeof(float) * n) && !memcmp(dx, dy, sizeof(float) * n);
    free(x), free(y), free(y2), free(dy), free(dx);
    layer_free(l);
    free(ctx.params), free(ctx.buffers), free(ctx.weight_layers);
    CHECK_MSG(ok, "entry %zu: dropout output or gradient is not mask * value", bad);
    CHECK_MSG(fabs(frac - 0.3) < 0.03, "dropped fraction %.3f, want 0.3", frac);
    CHECK_MSG(differ > n / 10, "second training pass reused the mask (%zu of %zu differ)", differ, n);
    CHECK_MSG(eval_ok, "dropout in evaluation mode is not the identity");
}

/* Through the network: dropout in evaluation mode changes nothing, and in
 * training the input gradient is zero exactly where inputs were dropped. */
TEST(grad_dropout_net) {
    AsymLayerSpec La[] = {L_DROP(0.5f), L_FC(4, 1)};
    AsymLayerSpec Lb[] = {L_FC(4, 1)};
    AsymNetSpec sa = mkspec(12, 1, 1, 4, La, NL(La), CE), sb = mkspec(12, 1, 1, 4, Lb, NL(Lb), CE);
    AsymRng ra, rb;
    asym_rng_seed(&ra, 5);
    asym_rng_seed(&rb, 5);
    AsymNet *a, *b;
    CHECK_OK(asym_net_create(&a, &sa, 3, &ra));
    CHECK_OK(asym_net_create(&b, &sb, 3, &rb));
    float x[36];
    int32_t y[3] = {0, 1, 3};
    AsymRng r;
    asym_rng_seed(&r, 6);
    for (int i = 0; i < 36; i++) x[i] = rng_normal(&r);
    /* same weights in both */
    memcpy(asym_net_param(a, 0)->w, asym_net_param(b, 0)->w, sizeof(float) * 48);
    memcpy(asym_net_param(a, 1)->w, asym_net_param(b, 1)->w, sizeof(float) * 4);
    const float *oa = asym_net_forward(a, x, 3, 0), *ob = asym_net_forward(b, x, 3, 0);
    int same = !memcmp(oa, ob, sizeof(float) * 12);
    asym_net_keep_input_grad(a, 1);
    asym_net_forward(a, x, 3, 1);
    asym_net_zero_grad(a);
    asym_net_loss(a, y, 3, 1, NULL);
    /* dW = dlogits^T (mask * x): a column of W's gradient is zero iff input
     * i was dropped in every batch item; per item, dx_i = 0 iff dropped. */
    const float *dx = asym_net_input_grad(a), *dl = asym_net_logits_grad(a);
    const float *W = asym_net_param(a, 0)->w, *gW = asym_net_param(a, 0)->g;
    double err = 0, ref = 0;
    for (int o = 0; o < 4; o++)
        for (int i = 0; i < 12; i++) {
            double s = 0;
            for (int n = 0; n < 3; n++) {
                double m = dx[n * 12 + i] == 0.0f ? 0.0 : 2.0; /* kept inputs are scaled by 1/(1-p) */
                s += dl[n * 4 + o] * m * x[n * 12 + i];
            }
            err += (s - gW[o * 12 + i]) * (s - gW[o * 12 + i]);
            ref += s * s;
        }
    int dropped = 0;
    for (int i = 0; i < 36; i++) dropped += dx[i] == 0.0f;
    double dxerr = 0;
    for (int n = 0; n < 3; n++)
        for (int i = 0; i < 12; i++) {
            if (dx[n * 12 + i] == 0.0f) continue;
            double s = 0;
            for (int o = 0; o < 4; o++) s += dl[n * 4 + o] * W[o * 12 + i];
            dxerr = fmax(dxerr, fabs(2.0 * s - dx[n * 12 + i]));
        }
    asym_net_free(a);
    asym_net_free(b);
    CHECK_MSG(same, "dropout changes the output in evaluation mode");
    CHECK_MSG(dropped > 5 && dropped < 31, "%d of 36 inputs dropped with p = 0.5", dropped);
    CHECK_MSG(ref > 0 && sqrt(err / ref) < 1e-5, "weight gradient does not match the mask implied by dx (rel err %g)", sqrt(err / ref));
    CHECK_MSG(dxerr < 1e-5, "kept entries of dx are not (dy W) / (1 - p): error %g", dxerr);
}

/* ---- residual blocks ---- */

TEST(grad_resblock_identity) {
    AsymLayerSpec L[] = {L_RES(4, 1, ASYM_SHORTCUT_A, 0), L_POOL(ASYM_AVGPOOL, 0, 0, 0), L_FLAT, L_FC(3, 1)};
    GRADCHECK(mkspec(4, 5, 5, 3, L, NL(L), CE), opts_kinks(2, 80));
}

TEST(grad_resblock_option_a) {
    AsymLayerSpec L[] = {L_RES(8, 2, ASYM_SHORTCUT_A, 0), L_POOL(ASYM_AVGPOOL, 0, 0, 0), L_FLAT, L_FC(3, 1)};
    GRADCHECK(mkspec(4, 6, 6, 3, L, NL(L), CE), opts_kinks(2, 81));
}

TEST(grad_resblock_option_a_stride1) {
    /* channels grow without subsampling */
    AsymLayerSpec L[] = {L_RES(6, 1, ASYM_SHORTCUT_A, 0), L_POOL(ASYM_AVGPOOL, 0, 0, 0), L_FLAT, L_FC(3, 1)};
    GRADCHECK(mkspec(2, 4, 4, 3, L, NL(L), CE), opts_kinks(2, 82));
}

TEST(grad_resblock_option_b) {
    AsymLayerSpec L[] = {L_RES(8, 2, ASYM_SHORTCUT_B, 0), L_POOL(ASYM_AVGPOOL, 0, 0, 0), L_FLAT, L_FC(3, 1)};
    GRADCHECK(mkspec(4, 6, 6, 3, L, NL(L), CE), opts_kinks(2, 83));
}

TEST(grad_resblock_bottleneck) {
    AsymLayerSpec L[] = {L_RES(8, 1, ASYM_SHORTCUT_B, 1), L_POOL(ASYM_AVGPOOL, 0, 0, 0), L_FLAT, L_FC(3, 1)};
    GRADCHECK(mkspec(8, 4, 4, 3, L, NL(L), CE), opts_kinks(2, 84));
}

TEST(grad_resblock_bottleneck_stride2) {
    AsymLayerSpec L[] = {L_RES(8, 2, ASYM_SHORTCUT_B, 1), L_POOL(ASYM_AVGPOOL, 0, 0, 0), L_FLAT, L_FC(3, 1)};
    GRADCHECK(mkspec(4, 6, 6, 3, L, NL(L), CE), opts_kinks(2, 85));
}

TEST(grad_resblock_chain) {
    /* two blocks in a row, the second one's input gradient feeds the first */
    AsymLayerSpec L[] = {L_CONV(4, 3, 1, 1, 0), L_BN, L_ACT(ASYM_RELU), L_RES(4, 1, ASYM_SHORTCUT_A, 0), L_RES(8, 2, ASYM_SHORTCUT_A, 0),
                         L_POOL(ASYM_AVGPOOL, 0, 0, 0), L_FLAT, L_FC(3, 1)};
    GRADCHECK(mkspec(3, 6, 6, 3, L, NL(L), CE), opts_kinks(2, 86));
}

/* ---- losses ---- */

TEST(grad_loss_bce_net) {
    AsymLayerSpec L[] = {L_CONV(3, 3, 2, 1, 1), L_ACT(ASYM_TANH), L_FLAT, L_FC(5, 1)};
    GRADCHECK(mkspec(2, 7, 9, 5, L, NL(L), BCE), opts(3, 90));
}

TEST(grad_loss_bce_bn) {
    AsymLayerSpec L[] = {L_FC(6, 1), L_BN, L_ACT(ASYM_SIGMOID), L_FC(4, 1)};
    GRADCHECK(mkspec(5, 1, 1, 4, L, NL(L), BCE), opts(5, 91));
}

/* Loss values and logit gradients against the formulas in double. */
TEST(grad_loss_values) {
    enum { N = 3, K = 4 };
    float z[N * K] = {0.5f, -1.0f, 2.0f, 0.1f, 3.0f, 3.0f, -2.0f, 0.0f, -30.0f, 40.0f, 1.0f, -0.5f};
    int32_t y[N] = {2, 1, 0};
    float dz[N * K];
    for (int kind = 1; kind <= 2; kind++) {
        int hits = -1;
        float L = loss_compute((AsymLoss)kind, z, y, N, K, dz, &hits);
        double ref = 0;
        for (int n = 0; n < N; n++) {
            const float *zn = z + n * K;
            double m = -1e30, s = 0;
            for (int k = 0; k < K; k++) m = fmax(m, zn[k]);
            for (int k = 0; k < K; k++) s += exp(zn[k] - m);
            for (int k = 0; k < K; k++) {
                double g;
                if (kind == ASYM_LOSS_SOFTMAX_CE) {
                    g = (exp(zn[k] - m) / s - (k == y[n])) / N;
                } else {
                    double t = k == y[n], v = zn[k];
                    ref += (v > 0 ? log1p(exp(-v)) + v : log1p(exp(v))) - t * v;
                    g = (1 / (1 + exp(-v)) - t) / (N * K);
                }
                CHECK_MSG(fabs(dz[n * K + k] - g) <= 1e-6 * fmax(1e-3, fabs(g)) + 1e-9, "loss %d: dlogits[%d][%d] = %g, want %g", kind, n, k, dz[n * K + k], g);
            }
            if (kind == ASYM_LOSS_SOFTMAX_CE) ref += log(s) + m - zn[y[n]];
        }
        ref /= kind == ASYM_LOSS_SOFTMAX_CE ? N : N * K;
        CHECK_MSG(isfinite(L) && fabs(L - ref) <= 1e-6 * fabs(ref), "loss %d: %.9g, want %.9g", kind, L, ref);
        /* argmax ties go to the first index: sample 1 picks class 0, label 1 */
        CHECK_MSG(hits == 1, "loss %d: %d correct, want 1 (only sample 0's argmax is its label)", kind, hits);
    }
}
