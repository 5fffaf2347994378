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
 * (for a convolution F is a 1x1 kernel and the same holds per tap). R takes
 * the feedback initialization with its own fans (fan_in of W, fan_out
 * mid k k), F the same with fans (mid, out), times sqrt((1 + 1/r) / 2)
 * under Xavier inits (r = mid / out, as the reference), drawn R first.
 *
 * Two ways to the same B. Stepping R and forming B = F R costs two GEMMs
 * of out x mid x rest per step and keeps R and its optimizer state, mid /
 * out times W's size each. When the optimizer's step is linear in the
 * gradient and the parameter (SGD with momentum, dampening, Nesterov and
 * weight decay; AsymFeedbackSpec.linear_optimizer), F times R's step is
 * the same step taken by B = F R itself with the gradient F F^T dW and
 * B's own buffer F v: B's trajectory depends on R only through F R, so the
 * layer keeps B alone, stepped by the optimizer, plus P = F F^T (out x
 * out), and R is drawn at setup only, for B's first value. B's gradient
 * P dW costs one GEMM of out x out x rest, taken from the summed dW before
 * the step; a fully connected layer wider than the batch (N (out + in) <
 * out in, the MLPs' hidden layers) forms it in the backward pass instead,
 * as (dy P)^T x, a GEMM of N x out x out and one of dW's size, its ranks
 * summing it as they sum dW. Adam, Batch Manhattan and
 * norm_feedback (which rescales B and not R) keep R. Options: expansion r
 * (10, the reference's CIFAR-10 configs); update: auto (B directly where
 * the optimizer allows) or factor (always R). */
#include "rules/rules.h"

#include <math.h>
#include <stdlib.h>

static const char *const UPDATES[] = {"auto", "factor", NULL};
static const RuleKey KEYS[] = {{"expansion", 10.0f, 0.01f, 1000.0f, NULL}, {"update", 0, 0, 1, UPDATES}, {NULL, 0, 0, 0, NULL}};

/* W viewed as an (out, rest) matrix */
static int rest_of(const Layer *l) { return (int)(l->W->n / (size_t)l->W->shape[0]); }

static int pfa_steps_b(const Layer *l) {
    const AsymFeedbackSpec *o = &l->ctx->fb;
    return o->linear_optimizer && !o->norm_feedback && rule_option(l, 1) == 0;
}

/* B = F R */
static void pfa_product(Layer *l, const float *R) {
    Feedback *fb = l->fb;
    int out = l->W->shape[0], rest = rest_of(l), mid = fb->F->shape[1];
    gemm(0, 0, out, rest, mid, 1.0f, fb->F->w, mid, R, rest, 0.0f, fb->B->w, rest);
}

/* B anew from the stepped R (stepping B itself, nothing) */
static void pfa_after_step(Layer *l) {
    if (l->fb->R) pfa_product(l, l->fb->R->w);
}

static int pfa_init(Layer *l, size_t *floats, size_t *doubles) {
    Feedback *fb = l->fb;
    const AsymFeedbackSpec *o = &l->ctx->fb;
    int out = l->W->shape[0], rest = rest_of(l);
    int mid = (int)lround(rule_option(l, 0) * out);
    if (mid < 1) mid = 1;
    int rshape[4], fshape[2] = {out, mid}, steps_b = pfa_steps_b(l);
    /* stepping B, a fully connected layer wider than the batch forms B's
     * gradient in the backward pass, (dy P)^T x, cheaper there than P dW
     * (B->g then in the network's feedback-gradient array, rule.c; (N, out)
     * scratch for dy P) */
    fb->backward_grad = steps_b && l->W->ndim == 2 && (double)l->ctx->max_batch * (out + rest) < (double)out * rest;
    if (fb->backward_grad && (size_t)l->ctx->max_batch * out > *floats) *floats = (size_t)l->ctx->max_batch * out;
    for (int i = 0; i < l->W->ndim; i++) rshape[i] = l->W->shape[i];
    rshape[0] = mid;
    /* R: a tensor of the network, or (stepping B) a draw for B's first value */
    AsymParam Rdraw = {.ndim = l->W->ndim, .n = (size_t)mid * rest, .fan_in = l->W->fan_in, .fan_out = mid * (l->W->fan_out / out)};
    AsymParam *R = &Rdraw;
    if (!steps_b && !(R = fb->R = ctx_feedback(l->ctx, l->name, "R", l->W->ndim, rshape))) return ASYM_ERR;
    if (!(fb->F = ctx_feedback(l->ctx, l->name, "F", 2, fshape)) || (!fb->backward_grad && !(fb->Rg = asym_falloc(steps_b ? l->W->n : R->n))) ||
        (steps_b && !(R->w = asym_falloc(R->n))))
        return ASYM_ERR;
    R->fan_in = Rdraw.fan_in, R->fan_out = Rdraw.fan_out;
    fb->F->fan_in = mid, fb->F->fan_out = out;
    rule_fill_random(o, R, R->w, R->n, &fb->rng);
    rule_fill_random(o, fb->F, fb->F->w, fb->F->n, &fb->rng);
    if (o->init == ASYM_INIT_XAVIER_UNIFORM || o->init == ASYM_INIT_XAVIER_NORMAL) {
        float gain = (float)sqrt((1.0 + (double)out / mid) / 2.0);
        for (size_t i = 0; i < fb->F->n; i++) fb->F->w[i] *= gain;
    }
    pfa_product(l, R->w);
    AsymParam *stepped = steps_b ? fb->B : R;
    stepped->g = fb->Rg;
    stepped->lr_scale = l->W->lr_scale;
    if (!steps_b) return ASYM_OK;
    free(R->w);
    /* P = F F^T */
    if (!(fb->P = asym_falloc((size_t)out * out))) return ASYM_ERR;
    gemm(0, 1, out, out, mid, 1.0f, fb->F->w, mid, fb->F->w, mid, 0.0f, fb->P, out);
    return ASYM_OK;
}

/* The stepped factor's gradient from the final (averaged) dW: R's F^T dW,
 * or B's P dW (unless the backward pass made it) */
static void pfa_before_step(Layer *l) {
    Feedback *fb = l->fb;
    int out = l->W->shape[0], rest = rest_of(l), mid = fb->F->shape[1];
    if (fb->R) gemm(1, 0, mid, rest, out, 1.0f, fb->F->w, mid, l->W->g, rest, 0.0f, fb->Rg, rest);
    else if (!fb->backward_grad) gemm(0, 0, out, rest, out, 1.0f, fb->P, out, l->W->g, rest, 0.0f, fb->Rg, rest);
}

/* B's gradient in the backward pass: P dW = (dy P)^T x (P symmetric),
 * added as the layer adds dW */
static void pfa_grad(Layer *l, const float *x, const float *y, const float *dy, int N, const Pass *p) {
    int out = l->W->shape[0];
    float *t = l->ctx->mirror;
    gemm(0, 0, N, out, out, 1.0f, dy, out, l->fb->P, out, 0.0f, t, out);
    l->ops->backward_weight(l, x, t, N, l->fb->B->g, NULL);
}

const Rule RULE_PFA = {.name = "pfa", .flags = RULE_OWN_B, .keys = KEYS, .init = pfa_init, .before_step = pfa_before_step, .after_step = pfa_after_step, .grad = pfa_grad};
