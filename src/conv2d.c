/* conv2d.c: 2-D convolution (square kernel k, stride s, zero padding p) as
 * im2col + one GEMM over the whole batch.
 * x is (N, C, H, W), W is (O, C, k, k), b is (O), y is (N, O, OH, OW).
 * The shared workspace holds col (C*k*k, N*OH*OW) and a (O, N*OH*OW)
 * matrix for the output or the output gradient. The input gradient uses
 * the feedback module's matrix B (W's shape): dcol = B^T dy, then col2im. */
#include <string.h>

#include "feedback.h"

typedef struct Conv {
    int k, stride, pad;
} Conv;

/* Writes image x (C, H, W) into columns [n*P, (n+1)*P) of col (C*k*k, ld). */
static void im2col(const Layer *l, const float *x, float *col, size_t ld) {
    const Conv *c = l->impl;
    int C = l->in.c, H = l->in.h, W = l->in.w, OH = l->out.h, OW = l->out.w, k = c->k;
    for (int ch = 0; ch < C; ch++)
        for (int ki = 0; ki < k; ki++)
            for (int kj = 0; kj < k; kj++) {
                float *row = col + ((size_t)(ch * k + ki) * k + kj) * ld;
                for (int oh = 0; oh < OH; oh++) {
                    int ih = oh * c->stride - c->pad + ki;
                    float *r = row + (size_t)oh * OW;
                    if (ih < 0 || ih >= H) {
                        memset(r, 0, sizeof(float) * OW);
                        continue;
                    }
                    const float *xr = x + ((size_t)ch * H + ih) * W;
                    for (int ow = 0; ow < OW; ow++) {
                        int iw = ow * c->stride - c->pad + kj;
                        r[ow] = (iw >= 0 && iw < W) ? xr[iw] : 0.0f;
                    }
                }
            }
}

/* Adds columns of col back into image dx (C, H, W), which starts zeroed. */
static void col2im(const Layer *l, const float *col, size_t ld, float *dx) {
    const Conv *c = l->impl;
    int C = l->in.c, H = l->in.h, W = l->in.w, OH = l->out.h, OW = l->out.w, k = c->k;
    for (int ch = 0; ch < C; ch++)
        for (int ki = 0; ki < k; ki++)
            for (int kj = 0; kj < k; kj++) {
                const float *row = col + ((size_t)(ch * k + ki) * k + kj) * ld;
                for (int oh = 0; oh < OH; oh++) {
                    int ih = oh * c->stride - c->pad + ki;
                    if (ih < 0 || ih >= H) continue;
                    const float *r = row + (size_t)oh * OW;
                    float *xr = dx + ((size_t)ch * H + ih) * W;
                    for (int ow = 0; ow < OW; ow++) {
                        int iw = ow * c->stride - c->pad + kj;
                        if (iw >= 0 && iw < W) xr[iw] += r[ow];
                    }
                }
            }
}

static size_t conv_K(const Layer *l) {
    const Conv *c = l->impl;
    return (size_t)l->in.c * c->k * c->k;
}

/* col (K, N*P) for the batch x. */
static void conv_im2col(const Layer *l, const float *x, float *col, int N) {
    size_t P = (size_t)l->out.h * l->out.w, in = shape_size(l->in);
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) im2col(l, x + n * in, col + n * P, (size_t)N * P);
}

/* dyT (O, N*P) from dy (N, O, P). */
static void conv_gather_dy(const Layer *l, const float *dy, float *dyT, int N) {
    size_t P = (size_t)l->out.h * l->out.w;
    int O = l->out.c;
#pragma omp parallel for schedule(static)
    for (int o = 0; o < O; o++)
        for (int n = 0; n < N; n++) memcpy(dyT + ((size_t)o * N + n) * P, dy + ((size_t)n * O + o) * P, sizeof(float) * P);
}

static void conv_forward(Layer *l, const float *x, float *y, int N, int train) {
    size_t P = (size_t)l->out.h * l->out.w, K = conv_K(l), NP = (size_t)N * P;
    int O = l->out.c;
    float *col = l->ctx->work, *tmp = col + K * NP;
    conv_im2col(l, x, col, N);
    gemm(0, 0, O, (int)NP, (int)K, 1.0f, l->W->w, (int)K, col, (int)NP, 0.0f, tmp, (int)NP);
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++)
        for (int o = 0; o < O; o++) {
            float bo = l->b ? l->b->w[o] : 0.0f;
            const float *t = tmp + ((size_t)o * N + n) * P;
            float *yo = y + ((size_t)n * O + o) * P;
            for (size_t p = 0; p < P; p++) yo[p] = t[p] + bo;
        }
}

static void conv_dW(Layer *l, const float *col, const float *dyT, int N) {
    size_t P = (size_t)l->out.h * l->out.w, K = conv_K(l), NP = (size_t)N * P;
    int O = l->out.c;
    gemm(0, 1, O, (int)K, (int)NP, 1.0f, dyT, (int)NP, col, (int)NP, 1.0f, l->W->g, (int)K);
    if (l->b)
        for (int o = 0; o < O; o++) {
            double s = 0;
            const float *r = dyT + (size_t)o * NP;
            for (size_t i = 0; i < NP; i++) s += r[i];
            l->b->g[o] += (float)s;
        }
}

static void conv_dx(Layer *l, const float *B, const float *dyT, float *col, float *dx, int N) {
    size_t P = (size_t)l->out.h * l->out.w, K = conv_K(l), NP = (size_t)N * P, in = shape_size(l->in);
    int O = l->out.c;
    gemm(1, 0, (int)K, (int)NP, O, 1.0f, B, (int)K, dyT, (int)NP, 0.0f, col, (int)NP);
    memset(dx, 0, sizeof(float) * in * N);
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) col2im(l, col + n * P, NP, dx + n * in);
}

void conv2d_backward_weight(Layer *l, const float *x, const float *dy, int N) {
    size_t K = conv_K(l), NP = (size_t)N * l->out.h * l->out.w;
    float *col = l->ctx->work, *dyT = col + K * NP;
    conv_gather_dy(l, dy, dyT, N);
    conv_im2col(l, x, col, N);
    conv_dW(l, col, dyT, N);
}

void conv2d_backward_input(Layer *l, const float *B, const float *dy, float *dx, int N) {
    size_t K = conv_K(l), NP = (size_t)N * l->out.h * l->out.w;
    float *col = l->ctx->work, *dyT = col + K * NP;
    conv_gather_dy(l, dy, dyT, N);
    conv_dx(l, B, dyT, col, dx, N);
}

static void conv_backward(Layer *l, const float *x, const float *y, const float *dy, float *dx, int N) {
    size_t K = conv_K(l), NP = (size_t)N * l->out.h * l->out.w;
    float *col = l->ctx->work, *dyT = col + K * NP;
    conv_gather_dy(l, dy, dyT, N);
    conv_im2col(l, x, col, N);
    conv_dW(l, col, dyT, N);
    if (dx) {
        conv_dx(l, feedback_matrix(l), dyT, col, dx, N);
        feedback_clip(l, dx, N);
    }
}

static const LayerOps conv_ops = {.name = "conv", .forward = conv_forward, .backward = conv_backward, .backward_weight = conv2d_backward_weight, .backward_input = conv2d_backward_input};

Layer *conv2d_create(const AsymLayerSpec *s, Shape in, NetCtx *ctx, const char *name) {
    int k = s->k, st = s->stride ? s->stride : 1, p = s->pad;
    if (s->out <= 0 || k <= 0 || st <= 0 || p < 0) {
        asym_fail("layer %s (line %d): conv needs out > 0, k > 0, stride > 0, pad >= 0", name, s->line);
        return NULL;
    }
    Shape out = {s->out, (in.h + 2 * p - k) / st + 1, (in.w + 2 * p - k) / st + 1};
    if (in.h + 2 * p < k || in.w + 2 * p < k) {
        asym_fail("layer %s (line %d): conv kernel %d is larger than its padded %dx%d input", name, s->line, k, in.h + 2 * p, in.w + 2 * p);
        return NULL;
    }
    Layer *l = layer_new(&conv_ops, s, in, out, ctx, name, sizeof(Conv));
    if (!l) return NULL;
    Conv *c = l->impl;
    c->k = k, c->stride = st, c->pad = p;
    int wshape[4] = {s->out, in.c, k, k};
    l->W = ctx_param(ctx, name, "W", ASYM_P_WEIGHT, 4, wshape);
    if (l->W) l->W->fan_in = in.c * k * k, l->W->fan_out = s->out * k * k;
    if (s->bias) {
        l->b = ctx_param(ctx, name, "b", ASYM_P_BIAS, 1, &s->out);
        if (l->b) l->b->fan_in = in.c * k * k;
    }
    size_t NP = (size_t)ctx->max_batch * out.h * out.w;
    ctx_need_work(ctx, (conv_K(l) + (size_t)s->out) * NP);
    if (!l->W || (s->bias && !l->b) || ctx_add_weight_layer(ctx, l)) {
        layer_free(l);
        return NULL;
    }
    return l;
}
