/* batchnorm.c: batch normalization (Ioffe & Szegedy 2015) for dense (N, C)
 * and convolutional (N, C, H, W) inputs, per channel over N*H*W values.
 * Training uses batch statistics and updates running statistics with
 * PyTorch's convention: r <- (1 - m) r + m s, with the unbiased variance;
 * evaluation uses the running statistics. */
#include <math.h>
#include <stdlib.h>

#include "layer.h"

typedef struct BatchNorm {
    float momentum, eps;
    AsymParam *mean, *var;  /* running statistics (buffers) */
    float *xhat;            /* (max_batch, C, S) normalized input of the last training pass */
    float *invstd;          /* (C) */
} BatchNorm;

static void bn_forward(Layer *l, const float *x, float *y, int N, int train) {
    BatchNorm *bn = l->impl;
    int C = l->in.c;
    size_t S = (size_t)l->in.h * l->in.w, M = (size_t)N * S;
    const float *gamma = l->W->w, *beta = l->b->w;
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        double mean, var;
        if (train) {
            double s = 0, ss = 0;
            for (int n = 0; n < N; n++) {
                const float *xc = x + ((size_t)n * C + c) * S;
                for (size_t i = 0; i < S; i++) s += xc[i];
            }
            mean = s / M;
            for (int n = 0; n < N; n++) {
                const float *xc = x + ((size_t)n * C + c) * S;
                for (size_t i = 0; i < S; i++) ss += (xc[i] - mean) * (xc[i] - mean);
            }
            var = ss / M;
            float m = l->ctx->freeze_stats ? 0.0f : l->ctx->stats_momentum > 0 ? l->ctx->stats_momentum : bn->momentum;
            bn->mean->w[c] = (1.0f - m) * bn->mean->w[c] + m * (float)mean;
            bn->var->w[c] = (1.0f - m) * bn->var->w[c] + m * (float)(M > 1 ? ss / (M - 1) : var);
        } else {
            mean = bn->mean->w[c];
            var = bn->var->w[c];
        }
        float is = (float)(1.0 / sqrt(var + bn->eps)), mu = (float)mean;
        if (train) bn->invstd[c] = is;
        for (int n = 0; n < N; n++) {
            size_t off = ((size_t)n * C + c) * S;
            for (size_t i = 0; i < S; i++) {
                float h = (x[off + i] - mu) * is;
                if (train) bn->xhat[off + i] = h;
                y[off + i] = gamma[c] * h + beta[c];
            }
        }
    }
}

static void bn_backward(Layer *l, const float *x, const float *y, const float *dy, float *dx, int N) {
    BatchNorm *bn = l->impl;
    int C = l->in.c;
    size_t S = (size_t)l->in.h * l->in.w, M = (size_t)N * S;
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        double sg = 0, sgh = 0;
        for (int n = 0; n < N; n++) {
            size_t off = ((size_t)n * C + c) * S;
            for (size_t i = 0; i < S; i++) {
                sg += dy[off + i];
                sgh += (double)dy[off + i] * bn->xhat[off + i];
            }
        }
        l->W->g[c] += (float)sgh;
        l->b->g[c] += (float)sg;
        if (!dx) continue;
        float k = l->W->w[c] * bn->invstd[c], mg = (float)(sg / M), mgh = (float)(sgh / M);
        for (int n = 0; n < N; n++) {
            size_t off = ((size_t)n * C + c) * S;
            for (size_t i = 0; i < S; i++) dx[off + i] = k * (dy[off + i] - mg - bn->xhat[off + i] * mgh);
        }
    }
}

static void bn_free(Layer *l) {
    BatchNorm *bn = l->impl;
    if (!bn) return;
    free(bn->xhat);
    free(bn->invstd);
}

static const LayerOps bn_ops = {.name = "batchnorm", .forward = bn_forward, .backward = bn_backward, .free = bn_free};

Layer *batchnorm_create(const AsymLayerSpec *s, Shape in, NetCtx *ctx, const char *name) {
    Layer *l = layer_new(&bn_ops, s, in, in, ctx, name, sizeof(BatchNorm));
    if (!l) return NULL;
    BatchNorm *bn = l->impl;
    bn->momentum = s->momentum > 0 ? s->momentum : 0.1f;
    bn->eps = s->eps > 0 ? s->eps : 1e-5f;
    int C = in.c;
    l->W = ctx_param(ctx, name, "gamma", ASYM_P_BN_SCALE, 1, &C);
    l->b = ctx_param(ctx, name, "beta", ASYM_P_BN_SHIFT, 1, &C);
    bn->mean = ctx_buffer(ctx, name, "running_mean", ASYM_P_RUNNING_MEAN, 1, &C);
    bn->var = ctx_buffer(ctx, name, "running_var", ASYM_P_RUNNING_VAR, 1, &C);
    bn->xhat = asym_falloc((size_t)ctx->max_batch * shape_size(in));
    bn->invstd = asym_falloc((size_t)C);
    if (!l->W || !l->b || !bn->mean || !bn->var || !bn->xhat || !bn->invstd) {
        layer_free(l);
        return NULL;
    }
    return l;
}
