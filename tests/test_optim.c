/* test_optim.c: optimizer updates against the formulas of torch.optim.SGD
 * (momentum, dampening, Nesterov, L2 weight decay) and torch.optim.Adam
 * (bias-corrected moments, eps outside the square root, L2 weight decay
 * added to the gradient), for three steps with gradients set by hand;
 * per-parameter learning-rate scales and the decay flag; and the
 * learning-rate schedules of torch.optim.lr_scheduler. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "asymbp.h"
#include "test.h"

#define HAS(s) (strstr(asym_last_error(), (s)) != NULL)
#define STEPS 3

/* A tiny net: fc 3 -> 4 (bias), tanh, fc 4 -> 2 (bias); the first layer's
 * lr_scale is first_scale (0 = unset). */
static int tiny_net(AsymNet **net, float first_scale, uint64_t seed) {
    AsymLayerSpec L[3] = {{.kind = ASYM_FC, .out = 4, .bias = 1, .lr_scale = first_scale}, {.kind = ASYM_TANH}, {.kind = ASYM_FC, .out = 2, .bias = 1}};
    AsymNetSpec s = {.in_c = 3, .in_h = 1, .in_w = 1, .classes = 2, .layers = L, .n_layers = 3, .init = ASYM_INIT_TORCH};
    AsymRng rng;
    asym_rng_seed(&rng, seed);
    return asym_net_create(net, &s, 2, &rng);
}

/* The gradient of flat entry j at step t: fixed, varied, signs mixed. */
static float grad_at(size_t j, int t) { return (float)(0.8 * sin(1.3 * (double)j + 0.7 * t + 0.2) + 0.05 * t); }

/* torch.optim.SGD / Adam for one scalar, in double. */
typedef struct RefState {
    double w, buf, m, v;
} RefState;

static void ref_step(const AsymOptSpec *o, RefState *r, double g, double lr, int t, int decay) {
    if (decay && o->weight_decay != 0) g += o->weight_decay * r->w;
    if (o->kind == ASYM_ADAM) {
        r->m = o->beta1 * r->m + (1 - o->beta1) * g;
        r->v = o->beta2 * r->v + (1 - o->beta2) * g * g;
        double bc1 = 1 - pow(o->beta1, t), bc2 = 1 - pow(o->beta2, t);
        double denom = sqrt(r->v) / sqrt(bc2) + o->eps;
        r->w -= lr / bc1 * r->m / denom;
        return;
    }
    if (o->momentum != 0) {
        r->buf = t == 1 ? g : o->momentum * r->buf + (1 - o->dampening) * g;
        g = o->nesterov ? g + o->momentum * r->buf : r->buf;
    }
    r->w -= lr * g;
}

static char omsg[512];

/* Runs STEPS steps with learning rates lrs on the tiny net and compares
 * every parameter after every step with the reference. no_decay: index of
 * a parameter whose decay flag is cleared (-1: none). Returns 0 or 1 with
 * omsg. */
static int run_check(const AsymOptSpec *o, const float *lrs, float first_scale, int no_decay) {
    AsymNet *net;
    if (tiny_net(&net, first_scale, 3)) {
        snprintf(omsg, sizeof omsg, "net: %s", asym_last_error());
        return 1;
    }
    AsymOptim *opt;
    if (asym_optim_create(&opt, net, o)) {
        snprintf(omsg, sizeof omsg, "optim: %s", asym_last_error());
        asym_net_free(net);
        return 1;
    }
    int np = asym_net_n_params(net), rc = 0;
    size_t nw = asym_net_n_weights(net);
    RefState *ref = calloc(nw, sizeof(RefState));
    if (no_decay >= 0) asym_net_param(net, no_decay)->decay = 0;
    size_t off = 0;
    for (int i = 0; i < np; i++) {
        AsymParam *p = asym_net_param(net, i);
        for (size_t j = 0; j < p->n; j++) ref[off + j].w = p->w[j];
        off += p->n;
    }
    for (int t = 1; t <= STEPS && !rc; t++) {
        off = 0;
        for (int i = 0; i < np; i++) {
            AsymParam *p = asym_net_param(net, i);
            double lr = lrs[t - 1] * p->lr_scale;
            for (size_t j = 0; j < p->n; j++) {
                p->g[j] = grad_at(off + j, t);
                ref_step(o, &ref[off + j], p->g[j], lr, t, p->decay);
            }
            off += p->n;
        }
        asym_optim_step(opt, lrs[t - 1]);
        off = 0;
        for (int i = 0; i < np && !rc; i++) {
            AsymParam *p = asym_net_param(net, i);
            for (size_t j = 0; j < p->n; j++) {
                double want = ref[off + j].w, got = p->w[j];
                if (!(fabs(got - want) <= 2e-6 * fmax(1, fabs(want)))) {
                    snprintf(omsg, sizeof omsg, "step %d: %s[%zu] = %.9g, want %.9g", t, p->name, j, got, want);
                    rc = 1;
                    break;
                }
            }
            off += p->n;
        }
    }
    free(ref);
    asym_optim_free(opt);
    asym_net_free(net);
    return rc;
}

static const float LRS[STEPS] = {0.1f, 0.05f, 0.02f};

#define RUN(o, lrs, scale, nd)                                              \
    do {                                                                    \
        AsymOptSpec o_ = (o);                                               \
        int rc_ = run_check(&o_, (lrs), (scale), (nd));                     \
        CHECK_MSG(rc_ == 0, "%s", omsg);                                    \
    } while (0)

TEST(optim_sgd_plain) {
    AsymOptSpec o = {.kind = ASYM_SGD};
    RUN(o, LRS, 0, -1);
}

TEST(optim_sgd_momentum) {
    AsymOptSpec o = {.kind = ASYM_SGD, .momentum = 0.9f};
    RUN(o, LRS, 0, -1);
}

TEST(optim_sgd_dampening) {
    /* torch: the first step stores the raw gradient, later ones dampen */
    AsymOptSpec o = {.kind = ASYM_SGD, .momentum = 0.8f, .dampening = 0.3f};
    RUN(o, LRS, 0, -1);
}

TEST(optim_sgd_nesterov) {
    AsymOptSpec o = {.kind = ASYM_SGD, .momentum = 0.9f, .nesterov = 1};
    RUN(o, LRS, 0, -1);
}

TEST(optim_sgd_weight_decay) {
    AsymOptSpec o = {.kind = ASYM_SGD, .momentum = 0.9f, .weight_decay = 0.05f};
    RUN(o, LRS, 0, -1);
    AsymOptSpec n = {.kind = ASYM_SGD, .momentum = 0.9f, .nesterov = 1, .weight_decay = 0.01f};
    RUN(n, LRS, 0, -1);
    AsymOptSpec p = {.kind = ASYM_SGD, .weight_decay = 0.1f};
    RUN(p, LRS, 0, -1);
}

TEST(optim_sgd_decay_flag) {
    /* parameter 1 (the first bias) opts out of weight decay */
    AsymOptSpec o = {.kind = ASYM_SGD, .momentum = 0.9f, .weight_decay = 0.1f};
    RUN(o, LRS, 0, 1);
}

TEST(optim_adam) {
    AsymOptSpec o = {.kind = ASYM_ADAM, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f};
    const float lrs[STEPS] = {1e-3f, 1e-3f, 5e-4f};
    RUN(o, lrs, 0, -1);
    /* a large eps shows where it is added: after the bias correction of sqrt(v) */
    AsymOptSpec e = {.kind = ASYM_ADAM, .beta1 = 0.8f, .beta2 = 0.9f, .eps = 0.1f};
    RUN(e, LRS, 0, -1);
}

TEST(optim_adam_weight_decay) {
    /* torch.optim.Adam adds weight_decay * w to the gradient (not AdamW) */
    AsymOptSpec o = {.kind = ASYM_ADAM, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.1f};
    RUN(o, LRS, 0, -1);
    RUN(o, LRS, 0, 2);
}

TEST(optim_lr_scale) {
    AsymNet *net;
    CHECK_OK(tiny_net(&net, 0.25f, 3));
    CHECK(asym_net_param(net, 0)->lr_scale == 0.25f && asym_net_param(net, 1)->lr_scale == 0.25f);
    CHECK(asym_net_param(net, 2)->lr_scale == 1.0f && asym_net_param(net, 3)->lr_scale == 1.0f);
    asym_net_free(net);
    AsymOptSpec o = {.kind = ASYM_SGD, .momentum = 0.9f, .weight_decay = 0.01f};
    RUN(o, LRS, 0.25f, -1);
    AsymOptSpec a = {.kind = ASYM_ADAM, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f};
    RUN(a, LRS, 4.0f, -1);
}

/* A negative lr_scale (a config's lr_scale: 0) freezes the layer: its
 * scale is 0 and a step with momentum and decay leaves it as it was, while
 * the next layer moves. */
TEST(optim_lr_scale_freezes) {
    AsymNet *net;
    CHECK_OK(tiny_net(&net, -1.0f, 5));
    CHECK(asym_net_param(net, 0)->lr_scale == 0.0f && asym_net_param(net, 1)->lr_scale == 0.0f);
    AsymOptSpec o = {.kind = ASYM_SGD, .momentum = 0.9f, .weight_decay = 0.01f};
    AsymOptim *opt;
    CHECK_OK(asym_optim_create(&opt, net, &o));
    AsymParam *W0 = asym_net_param(net, 0), *W1 = asym_net_param(net, 2);
    float keep0[12], keep1[8];
    memcpy(keep0, W0->w, sizeof keep0);
    memcpy(keep1, W1->w, sizeof keep1);
    for (int i = 0; i < asym_net_n_params(net); i++)
        for (size_t j = 0; j < asym_net_param(net, i)->n; j++) asym_net_param(net, i)->g[j] = 0.5f;
    asym_optim_step(opt, 0.1f);
    int frozen = !memcmp(keep0, W0->w, sizeof keep0), moved = memcmp(keep1, W1->w, sizeof keep1) != 0;
    asym_optim_free(opt);
    asym_net_free(net);
    CHECK_MSG(frozen, "a frozen layer's weights changed");
    CHECK_MSG(moved, "the trainable layer did not move");
}

/* A zero gradient with zero decay leaves weights alone; a zero learning
 * rate changes nothing but the optimizer state. */
TEST(optim_zero_lr) {
    AsymNet *net;
    CHECK_OK(tiny_net(&net, 0, 4));
    AsymOptSpec o = {.kind = ASYM_ADAM, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f};
    AsymOptim *opt;
    CHECK_OK(asym_optim_create(&opt, net, &o));
    size_t nw = asym_net_n_weights(net);
    float *before = malloc(sizeof(float) * nw);
    size_t off = 0;
    for (int i = 0; i < asym_net_n_params(net); i++) {
        AsymParam *p = asym_net_param(net, i);
        memcpy(before + off, p->w, sizeof(float) * p->n);
        for (size_t j = 0; j < p->n; j++) p->g[j] = 1.0f;
        off += p->n;
    }
    asym_optim_step(opt, 0.0f);
    int same = 1;
    off = 0;
    for (int i = 0; i < asym_net_n_params(net); i++) {
        AsymParam *p = asym_net_param(net, i);
        same &= !memcmp(before + off, p->w, sizeof(float) * p->n);
        off += p->n;
    }
    free(before);
    asym_optim_free(opt);
    asym_net_free(net);
    CHECK_MSG(same, "a step with lr 0 changed the weights");
}

TEST(optim_errors) {
    AsymNet *net;
    CHECK_OK(tiny_net(&net, 0, 1));
    AsymOptim *opt = (AsymOptim *)1;
    AsymOptSpec bad_kind = {.kind = (AsymOptKind)7, .lr = 0.1f};
    CHECK(asym_optim_create(&opt, net, &bad_kind) == ASYM_ERR && opt == NULL && HAS("optimizer"));
    AsymOptSpec nest_damp = {.kind = ASYM_SGD, .momentum = 0.9f, .dampening = 0.1f, .nesterov = 1};
    CHECK(asym_optim_create(&opt, net, &nest_damp) == ASYM_ERR && HAS("Nesterov"));
    AsymOptSpec nest_nomom = {.kind = ASYM_SGD, .nesterov = 1};
    CHECK(asym_optim_create(&opt, net, &nest_nomom) == ASYM_ERR && HAS("Nesterov"));
    asym_net_free(net);
}

/* ---- schedules ---- */

static int lr_close(float got, double want) { return fabs(got - want) <= 1e-6 * fabs(want) + 1e-8; }

TEST(sched_constant) {
    AsymSchedSpec s = {.kind = ASYM_SCHED_CONST};
    for (int e = 0; e < 200; e += 7) CHECK(asym_sched_lr(&s, 0.1f, e, 200) == 0.1f);
    AsymSchedSpec z = {0}; /* no kind: constant */
    CHECK(asym_sched_lr(&z, 0.3f, 50, 100) == 0.3f);
}

TEST(sched_step) {
    AsymSchedSpec s = {.kind = ASYM_SCHED_STEP, .step_size = 30, .gamma = 0.1f};
    for (int e = 0; e < 100; e++) {
        double want = 0.1 * pow(0.1, e / 30);
        float got = asym_sched_lr(&s, 0.1f, e, 100);
        CHECK_MSG(lr_close(got, want), "epoch %d: lr %.9g, want %.9g", e, got, want);
    }
    AsymSchedSpec h = {.kind = ASYM_SCHED_STEP, .step_size = 1, .gamma = 0.5f};
    CHECK(lr_close(asym_sched_lr(&h, 1.0f, 3, 10), 0.125));
}

TEST(sched_multistep) {
    AsymSchedSpec s = {.kind = ASYM_SCHED_MULTISTEP, .milestones = {50, 75}, .n_milestones = 2, .gamma = 0.1f};
    AsymSchedSpec r = {.kind = ASYM_SCHED_MULTISTEP, .milestones = {75, 50}, .n_milestones = 2, .gamma = 0.1f};
    for (int e = 0; e < 100; e++) {
        double want = e < 50 ? 0.1 : e < 75 ? 0.01 : 0.001;
        float got = asym_sched_lr(&s, 0.1f, e, 100);
        CHECK_MSG(lr_close(got, want), "epoch %d: lr %.9g, want %.9g", e, got, want);
        /* milestone order does not matter (torch counts them) */
        CHECK_MSG(asym_sched_lr(&r, 0.1f, e, 100) == got, "epoch %d: unsorted milestones give %.9g", e, asym_sched_lr(&r, 0.1f, e, 100));
    }
    /* a repeated milestone applies gamma twice, as torch's Counter does */
    AsymSchedSpec d = {.kind = ASYM_SCHED_MULTISTEP, .milestones = {10, 10}, .n_milestones = 2, .gamma = 0.5f};
    CHECK(lr_close(asym_sched_lr(&d, 1.0f, 9, 20), 1.0) && lr_close(asym_sched_lr(&d, 1.0f, 10, 20), 0.25));
}

TEST(sched_cosine) {
    /* CosineAnnealingLR's closed form: eta_min + (base - eta_min) (1 + cos(pi e / T)) / 2 */
    AsymSchedSpec s = {.kind = ASYM_SCHED_COSINE, .t_max = 100, .eta_min = 0.001f};
    for (int e = 0; e <= 100; e++) {
        double want = 0.001 + (0.1 - 0.001) * (1 + cos(M_PI * e / 100)) / 2;
        float got = asym_sched_lr(&s, 0.1f, e, 200);
        CHECK_MSG(lr_close(got, want), "epoch %d: lr %.9g, want %.9g", e, got, want);
    }
    CHECK(lr_close(asym_sched_lr(&s, 0.1f, 0, 200), 0.1));
    CHECK(lr_close(asym_sched_lr(&s, 0.1f, 50, 200), 0.0505));
    CHECK(lr_close(asym_sched_lr(&s, 0.1f, 100, 200), 0.001));
    /* t_max 0: the period is the run's epochs */
    AsymSchedSpec a = {.kind = ASYM_SCHED_COSINE};
    for (int e = 0; e < 30; e++) {
        double want = 0.05 * (1 + cos(M_PI * e / 30)) / 2;
        float got = asym_sched_lr(&a, 0.05f, e, 30);
        CHECK_MSG(lr_close(got, want), "t_max 0, epoch %d of 30: lr %.9g, want %.9g", e, got, want);
    }
}
