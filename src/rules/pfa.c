/* pfa.c: product feedback alignment (Li & Benna 2024, "Deep learning
 * without weight symmetry", arXiv:2405.20594; reference code
 * jil095/product_feedback_alignment, biotorch/layers/tfa_constructor/
 * linear.py and conv.py, biotorch/autograd/tfa/linear.py and conv.py).
 * The error reaches the layer's input through an expanded intermediate
 * population: dy -> dy F (mid = round(expansion * out) units) -> dy F R, so
 * the input gradient takes B = F R (W's shape) and no single matrix mirrors
 * W. F (out, mid) is fixed random; R (mid, in, kh, kw: W's shape with mid
 * rows) is learned by the network's optimizer, weight decay included, with
 * the gradient the intermediate units' error gives it, (dy F)^T x = F^T dW
 * (for a convolution F is a 1x1 kernel and the same holds per tap). B is
 * recomputed after every step. R takes the feedback initialization with its
 * own fans (fan_in of W, fan_out mid k k), F the same with fans (mid, out),
 * times sqrt((1 + 1/r) / 2) under Xavier inits (r = mid / out, as the
 * reference), drawn R first. Option expansion: r (10, the reference's
 * CIFAR-10 configs). */
#include "rules/rules.h"

#include <math.h>

static const RuleKey KEYS[] = {{"expansion", 10.0f, 0.01f, 1000.0f, NULL}, {NULL, 0, 0, 0, NULL}};

/* W viewed as an (out, rest) matrix */
static int rest_of(const Layer *l) { return (int)(l->W->n / (size_t)l->W->shape[0]); }

/* B = F R */
static void pfa_product(Layer *l) {
    Feedback *fb = l->fb;
    int out = l->W->shape[0], rest = rest_of(l), mid = fb->F->shape[1];
    gemm(0, 0, out, rest, mid, 1.0f, fb->F->w, mid, fb->R->w, rest, 0.0f, fb->B->w, rest);
}

static int pfa_init(Layer *l, size_t *floats, size_t *doubles) {
    Feedback *fb = l->fb;
    const AsymFeedbackSpec *o = &l->ctx->fb;
    int out = l->W->shape[0];
    int mid = (int)lround(rule_option(l, 0) * out);
    if (mid < 1) mid = 1;
    int rshape[4], fshape[2] = {out, mid};
    for (int i = 0; i < l->W->ndim; i++) rshape[i] = l->W->shape[i];
    rshape[0] = mid;
    if (!(fb->R = ctx_feedback(l->ctx, l->name, "R", l->W->ndim, rshape)) || !(fb->F = ctx_feedback(l->ctx, l->name, "F", 2, fshape)) ||
        !(fb->Rg = asym_falloc(fb->R->n)))
        return ASYM_ERR;
    fb->R->fan_in = l->W->fan_in;
    fb->R->fan_out = mid * (l->W->fan_out / out);
    fb->F->fan_in = mid, fb->F->fan_out = out;
    rule_fill_random(o, fb->R, fb->R->w, fb->R->n, &fb->rng);
    rule_fill_random(o, fb->F, fb->F->w, fb->F->n, &fb->rng);
    if (o->init == ASYM_INIT_XAVIER_UNIFORM || o->init == ASYM_INIT_XAVIER_NORMAL) {
        float gain = (float)sqrt((1.0 + (double)out / mid) / 2.0);
        for (size_t i = 0; i < fb->F->n; i++) fb->F->w[i] *= gain;
    }
    fb->R->g = fb->Rg;
    fb->R->lr_scale = l->W->lr_scale;
    pfa_product(l);
    return ASYM_OK;
}

/* R's gradient F^T dW, from the final (averaged) dW */
static void pfa_before_step(Layer *l) {
    Feedback *fb = l->fb;
    int out = l->W->shape[0], rest = rest_of(l), mid = fb->F->shape[1];
    gemm(1, 0, mid, rest, out, 1.0f, fb->F->w, mid, l->W->g, rest, 0.0f, fb->Rg, rest);
}

const Rule RULE_PFA = {.name = "pfa", .flags = RULE_OWN_B, .keys = KEYS, .init = pfa_init, .before_step = pfa_before_step, .after_step = pfa_product};
