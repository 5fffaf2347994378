/* kunin.c: what the alignment rules of Kunin et al. 2020 share (sa.c,
 * aa.c, ia.c): each trains B only, on a layer-local loss R(W, B, x) whose
 * gradient the optimizer applies with the task's learning rate (Kunin's
 * alignment_rate 1). The primitives as neuroailab/Neural-Alignment codes
 * them (Alignments/primitives.py): means over the batch, sums over every
 * other axis, no 1/2; W, the bias and x held constant, no bias in Wx or
 * in B's projection. Kunin's B (in x out) is the transpose of ours (W's
 * shape, dx = B^T dy), so his B^T x is a forward pass of x with B in W's
 * place, and his B W x the input gradient of W x through B (for a conv:
 * conv2d(x, B) and the transposed conv of conv2d(x, W) with B, the
 * layer's own forward and backward-data calls). */
#include "rules/rules.h"

#include <string.h>

const char *const KUNIN_INPUTS[] = {"data", "uniform", "normal", NULL};

/* B random as fa's, free of weight decay; scratch for noise and B^T W x
 * (max_batch, in), Wx and Bx (max_batch, out) each. */
int kunin_init(Layer *l, size_t *floats, size_t *doubles) {
    AsymParam *B = l->fb->B;
    (void)doubles;
    rule_fill_random(&l->ctx->fb, l->W, B->w, l->W->n, &l->fb->rng);
    B->decay = 0;
    size_t fl = (size_t)l->ctx->max_batch * 2 * (shape_size(l->in) + shape_size(l->out));
    if (fl > *floats) *floats = fl;
    return ASYM_OK;
}

float kunin_scale(const Pass *p) { return p->grad_scale > 0 ? p->grad_scale : 1.0f; }

/* the k-th (max_batch, in) and (max_batch, out) scratch arrays */
static float *scratch_in(const Layer *l, int k) { return l->ctx->mirror + (size_t)l->ctx->max_batch * k * shape_size(l->in); }
static float *scratch_out(const Layer *l, int k) { return scratch_in(l, 2) + (size_t)l->ctx->max_batch * k * shape_size(l->out); }

/* Noise like the layer's input, as Kunin's --input_distribution (zero
 * mean, std; uniform in [-std sqrt(3), std sqrt(3)]): the weight mirror's
 * counter-based draw, seeded from the layer's generator once per step, at
 * the counter of this rank's first row (uniform noise is then the one
 * process's; normal noise too when that counter is even). */
const float *kunin_input(Layer *l, const float *x, int N, int input, const Pass *p) {
    int kind = (int)rule_option(l, input);
    if (kind == 0) return x;
    Feedback *fb = l->fb;
    size_t d = shape_size(l->in);
    fb->wm_seed = rng_u32(&fb->rng);
    uint32_t at = fb->wm_seed + (uint32_t)((size_t)p->rows_before * d) * 0x9e3779b9U;
    float *noise = scratch_in(l, 0);
    feedback_mirror_noise(noise, (size_t)N * d, kind == 1, rule_option(l, input + 1), at);
    return noise;
}

/* y = x M^T (a forward pass with M in W's place, no bias) */
static void project(Layer *l, const float *M, const float *x, float *y, int N) {
    AsymParam *W = l->W, T = *W;
    T.w = (float *)M;
    l->W = &T;
    l->ops->forward(l, x, y, N, &(Pass){.no_bias = 1});
    l->W = W;
}

static void scale(float *v, size_t n, float c) {
    for (size_t i = 0; i < n; i++) v[i] *= c;
}

/* Elementwise over B: vectorized and shared among the threads (the same
 * floats per entry as one thread's loop) */
void kunin_decay(Layer *l, float c) {
    float *g = l->fb->B->g, k = 2.0f * c;
    const float *B = l->fb->B->w;
    size_t n = l->W->n;
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) g[i] += k * B[i];
}

void kunin_decay_self(Layer *l, float cd, float cs) {
    float *g = l->fb->B->g, k = 2.0f * cd;
    const float *B = l->fb->B->w, *W = l->W->w;
    size_t n = l->W->n;
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) g[i] = (g[i] + k * B[i]) - cs * W[i];
}

/* W x (N, out) into scratch: for the data, the forward pass's output y
 * less the bias (no second pass through W); for noise, projected. */
float *kunin_wx(Layer *l, const float *x, const float *data, const float *y, int N) {
    float *z = scratch_out(l, 0);
    if (x != data || !y) {
        project(l, l->W->w, x, z, N);
        return z;
    }
    size_t per = (size_t)l->out.h * l->out.w, C = (size_t)l->out.c;
    if (!l->b) {
        memcpy(z, y, sizeof(float) * (size_t)N * C * per);
        return z;
    }
    /* one (sample, channel) plane at a time: a contiguous run less one bias */
    for (size_t s = 0; s < (size_t)N * C; s++) {
        float bias = l->b->w[s % C];
        const float *ys = y + s * per;
        float *zs = z + s * per;
        for (size_t i = 0; i < per; i++) zs[i] = ys[i] - bias;
    }
    return z;
}

/* sparse and amp: d/dB (cs E|Bx|^2 - ca E[(Bx).(Wx)]) = E[(2 cs Bx - ca Wx) x^T],
 * one weight-gradient call for both */
void kunin_sparse_amp(Layer *l, const float *x, const float *wx, int N, float cs, float ca) {
    float *y = scratch_out(l, 1), ks = 2.0f * cs / (float)N, ka = -ca / (float)N;
    size_t n = (size_t)N * shape_size(l->out);
    project(l, l->fb->B->w, x, y, N);
    for (size_t i = 0; i < n; i++) y[i] = ks * y[i] + ka * wx[i];
    l->ops->backward_weight(l, x, y, N, l->fb->B->g, NULL);
}

/* d/dB -E[(Bx).(Wx)] = -E[(Wx) x^T] */
void kunin_amp(Layer *l, const float *x, const float *wx, int N, float c) {
    float *y = scratch_out(l, 1), k = -c / (float)N;
    size_t n = (size_t)N * shape_size(l->out);
    for (size_t i = 0; i < n; i++) y[i] = k * wx[i];
    l->ops->backward_weight(l, x, y, N, l->fb->B->g, NULL);
}

/* d/dB E|B^T z|^2, z = Wx: 2 E[z u^T], u = B^T z (the input gradient of z);
 * scales wx in place */
void kunin_null(Layer *l, float *wx, int N, float c) {
    float *u = scratch_in(l, 1);
    l->ops->backward_input(l, l->fb->B->w, wx, u, N);
    scale(wx, (size_t)N * shape_size(l->out), 2.0f * c / (float)N);
    l->ops->backward_weight(l, u, wx, N, l->fb->B->g, NULL);
}
