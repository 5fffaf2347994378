/* activation.c: element-wise ReLU, tanh and sigmoid; the backward passes
 * use the saved output y. */
#include <math.h>

#include "layers/layers.h"

static void act_forward(Layer *l, const float *x, float *y, int N, const Pass *p) {
    size_t n = (size_t)N * shape_size(l->in);
    switch (l->kind) {
    case ASYM_RELU:
#pragma omp parallel for simd schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
        break;
    case ASYM_TANH:
#pragma omp parallel for schedule(static) if (n > 16384)
        for (size_t i = 0; i < n; i++) y[i] = tanhf(x[i]);
        break;
    default:
#pragma omp parallel for schedule(static) if (n > 16384)
        for (size_t i = 0; i < n; i++) y[i] = 1.0f / (1.0f + expf(-x[i]));
        break;
    }
}

static void act_backward(Layer *l, const float *x, const float *y, const float *dy, float *dx, int N, const Pass *p) {
    size_t n = (size_t)N * shape_size(l->in);
    if (!dx) return;
    switch (l->kind) {
    case ASYM_RELU:
        relu_backward(dx, y, dy, n);
        break;
    case ASYM_TANH:
#pragma omp parallel for simd schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; i++) dx[i] = dy[i] * (1.0f - y[i] * y[i]);
        break;
    default:
#pragma omp parallel for simd schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; i++) dx[i] = dy[i] * y[i] * (1.0f - y[i]);
        break;
    }
}

static const LayerOps act_ops = {.name = "activation", .forward = act_forward, .backward = act_backward};

Layer *activation_create(const AsymLayerSpec *s, Shape in, NetCtx *ctx, const char *name) {
    return layer_new(&act_ops, s, in, in, ctx, name, 0);
}
