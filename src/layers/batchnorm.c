/* batchnorm.c: batch normalization (Ioffe & Szegedy 2015) for dense (N, C)
 * and convolutional (N, C, H, W) inputs, per channel over N*H*W values.
 * Training uses batch statistics and updates running statistics with
 * PyTorch's convention: r <- (1 - m) r + m s, with the unbiased variance;
 * evaluation uses the running statistics.
 *
 * Only the batch mean and 1/std per channel are kept for the backward
 * pass, which recomputes xhat = (x - mean) / std from its input x. Each
 * channel's sums run in the same order on any number of threads: partial
 * sums in float over one contiguous run (a feature map, or 64 channels of
 * one sample for dense input), added up in double. Synchronized batch
 * norm (model.sync_bn, docs/MPI.md) takes its sums over every rank's share
 * of the batch through the pass's reduce (the data-parallel layer's
 * allreduce). */
#include <math.h>
#include <stdlib.h>

#include "layers/layers.h"

#define BN_BLOCK 64 /* channels per block of dense (N, C) input */

typedef struct BatchNorm {
    float momentum, eps;
    AsymParam *mean, *var;  /* running statistics (buffers) */
    float *bmean, *invstd;  /* (C) batch mean and 1/sqrt(var + eps) of the last training pass */
} BatchNorm;

/* Folds a channel's batch statistics into the running ones; returns 1/std. */
static float bn_update_stats(Layer *l, const Pass *p, int c, double mean, double ss, size_t M) {
    BatchNorm *bn = l->impl;
    double var = ss / M;
    float m = p->freeze_stats ? 0.0f : p->momentum > 0 ? p->momentum : bn->momentum;
    bn->mean->w[c] = (1.0f - m) * bn->mean->w[c] + m * (float)mean;
    bn->var->w[c] = (1.0f - m) * bn->var->w[c] + m * (float)(M > 1 ? ss / (M - 1) : var);
    float is = (float)(1.0 / sqrt(var + bn->eps));
    bn->bmean[c] = (float)mean;
    bn->invstd[c] = is;
    return is;
}

/* Convolutional input: N feature maps of S values per channel. */
static void bn_forward_maps(Layer *l, const float *x, float *y, int N, const Pass *p) {
    BatchNorm *bn = l->impl;
    int C = l->in.c;
    size_t S = (size_t)l->in.h * l->in.w, M = (size_t)N * S;
    const float *gamma = l->W->w, *beta = l->b->w;
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        float mu, is;
        if (p->train) {
            double s = 0, ss = 0;
            for (int n = 0; n < N; n++) {
                const float *xc = x + ((size_t)n * C + c) * S;
                float a = 0.0f;
#pragma omp simd reduction(+ : a)
                for (size_t i = 0; i < S; i++) a += xc[i];
                s += a;
            }
            mu = (float)(s / M);
            for (int n = 0; n < N; n++) {
                const float *xc = x + ((size_t)n * C + c) * S;
                float a = 0.0f;
#pragma omp simd reduction(+ : a)
                for (size_t i = 0; i < S; i++) a += (xc[i] - mu) * (xc[i] - mu);
                ss += a;
            }
            is = bn_update_stats(l, p, c, s / M, ss, M);
        } else {
            mu = bn->mean->w[c];
            is = (float)(1.0 / sqrt((double)bn->var->w[c] + bn->eps));
        }
        float g = gamma[c], b = beta[c];
        for (int n = 0; n < N; n++) {
            size_t off = ((size_t)n * C + c) * S;
            const float *xc = x + off;
            float *yc = y + off;
#pragma omp simd
            for (size_t i = 0; i < S; i++) yc[i] = g * ((xc[i] - mu) * is) + b;
        }
    }
}

/* Dense input (N, C): blocks of channels, each summed over the N rows. */
static void bn_forward_dense(Layer *l, const float *x, float *y, int N, const Pass *p) {
    BatchNorm *bn = l->impl;
    int C = l->in.c;
    const float *gamma = l->W->w, *beta = l->b->w;
#pragma omp parallel for schedule(static)
    for (int c0 = 0; c0 < C; c0 += BN_BLOCK) {
        int nc = C - c0 < BN_BLOCK ? C - c0 : BN_BLOCK;
        float mu[BN_BLOCK], is[BN_BLOCK];
        if (p->train) {
            double s[BN_BLOCK] = {0}, ss[BN_BLOCK] = {0};
            for (int n = 0; n < N; n++) {
                const float *xr = x + (size_t)n * C + c0;
#pragma omp simd
                for (int j = 0; j < nc; j++) s[j] += xr[j];
            }
            for (int j = 0; j < nc; j++) mu[j] = (float)(s[j] / N);
            for (int n = 0; n < N; n++) {
                const float *xr = x + (size_t)n * C + c0;
#pragma omp simd
                for (int j = 0; j < nc; j++) {
                    float d = xr[j] - mu[j];
                    ss[j] += d * d;
                }
            }
            for (int j = 0; j < nc; j++) is[j] = bn_update_stats(l, p, c0 + j, s[j] / N, ss[j], (size_t)N);
        } else {
            for (int j = 0; j < nc; j++) {
                mu[j] = bn->mean->w[c0 + j];
                is[j] = (float)(1.0 / sqrt((double)bn->var->w[c0 + j] + bn->eps));
            }
        }
        for (int n = 0; n < N; n++) {
            const float *xr = x + (size_t)n * C + c0;
            float *yr = y + (size_t)n * C + c0;
#pragma omp simd
            for (int j = 0; j < nc; j++) yr[j] = gamma[c0 + j] * ((xr[j] - mu[j]) * is[j]) + beta[c0 + j];
        }
    }
}

/* Synchronized batch norm, training mode: statistics over every rank's
 * share of the batch, summed by the pass's reduce. x, y (N, C, S) with S = H W
 * (1 for dense input). Keeps the batch mean and 1/std for the backward
 * pass, which adds this rank's share into dgamma and dbeta (the gradient
 * allreduce sums them) and writes dx from the global sums. */
static void bn_sync_forward(Layer *l, const float *x, float *y, int N, const Pass *p) {
    BatchNorm *bn = l->impl;
    int C = l->in.c;
    size_t S = (size_t)l->in.h * l->in.w;
    double sum[C + 1], ss[C]; /* on the stack: a failed allocation on one rank would leave the others waiting */
    /* pass 1: sums and the element count, over every rank */
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        double s = 0;
        for (int n = 0; n < N; n++) {
            const float *xc = x + ((size_t)n * C + c) * S;
            float a = 0.0f;
            for (size_t i = 0; i < S; i++) a += xc[i];
            s += a;
        }
        sum[c] = s;
    }
    sum[C] = (double)N * S;
    p->reduce(p->reduce_arg, sum, (size_t)C + 1);
    double M = sum[C];
    /* pass 2: squared deviations from the global mean */
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        float mu = (float)(sum[c] / M);
        double s = 0;
        for (int n = 0; n < N; n++) {
            const float *xc = x + ((size_t)n * C + c) * S;
            float a = 0.0f;
            for (size_t i = 0; i < S; i++) a += (xc[i] - mu) * (xc[i] - mu);
            s += a;
        }
        ss[c] = s;
    }
    p->reduce(p->reduce_arg, ss, (size_t)C);
    for (int c = 0; c < C; c++) bn_update_stats(l, p, c, sum[c] / M, ss[c], (size_t)M);
    const float *gamma = l->W->w, *beta = l->b->w;
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        float mu = bn->bmean[c], is = bn->invstd[c], g = gamma[c], b = beta[c];
        for (int n = 0; n < N; n++) {
            size_t off = ((size_t)n * C + c) * S;
            for (size_t i = 0; i < S; i++) y[off + i] = g * ((x[off + i] - mu) * is) + b;
        }
    }
}

static void bn_sync_backward(Layer *l, const float *x, const float *dy, float *dx, int N, const Pass *p) {
    BatchNorm *bn = l->impl;
    const float *bmean = bn->bmean, *invstd = bn->invstd;
    int C = l->in.c;
    size_t S = (size_t)l->in.h * l->in.w;
    double sum[2 * C + 1];
    /* sum[c]: sum of dy; sum[C + c]: sum of dy xhat; sum[2C]: elements */
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        float mu = bmean[c], is = invstd[c];
        double sg = 0, sgh = 0;
        for (int n = 0; n < N; n++) {
            size_t off = ((size_t)n * C + c) * S;
            float a = 0.0f, b = 0.0f;
            for (size_t i = 0; i < S; i++) {
                a += dy[off + i];
                b += dy[off + i] * ((x[off + i] - mu) * is);
            }
            sg += a;
            sgh += b;
        }
        /* this rank's share: the gradient allreduce adds the others' */
        l->W->g[c] += (float)sgh;
        l->b->g[c] += (float)sg;
        sum[c] = sg;
        sum[C + c] = sgh;
    }
    sum[2 * C] = (double)N * S;
    p->reduce(p->reduce_arg, sum, 2 * (size_t)C + 1);
    if (dx) {
        double M = sum[2 * C];
#pragma omp parallel for schedule(static)
        for (int c = 0; c < C; c++) {
            float mu = bmean[c], is = invstd[c], k = l->W->w[c] * is, mg = (float)(sum[c] / M), mgh = (float)(sum[C + c] / M);
            for (int n = 0; n < N; n++) {
                size_t off = ((size_t)n * C + c) * S;
                for (size_t i = 0; i < S; i++) dx[off + i] = k * (dy[off + i] - mg - ((x[off + i] - mu) * is) * mgh);
            }
        }
    }
}

static void bn_forward(Layer *l, const float *x, float *y, int N, const Pass *p) {
    if (p->train && p->reduce) bn_sync_forward(l, x, y, N, p);
    else if (l->in.h * l->in.w == 1) bn_forward_dense(l, x, y, N, p);
    else bn_forward_maps(l, x, y, N, p);
}

/* dgamma = sum dy xhat, dbeta = sum dy, dx = gamma / std (dy - mean(dy) - xhat mean(dy xhat)). */
static void bn_backward_maps(Layer *l, const float *x, const float *dy, float *dx, int N) {
    BatchNorm *bn = l->impl;
    int C = l->in.c;
    size_t S = (size_t)l->in.h * l->in.w, M = (size_t)N * S;
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        float mu = bn->bmean[c], is = bn->invstd[c];
        double sg = 0, sgh = 0;
        for (int n = 0; n < N; n++) {
            size_t off = ((size_t)n * C + c) * S;
            const float *xc = x + off, *gc = dy + off;
            float a = 0.0f, b = 0.0f;
#pragma omp simd reduction(+ : a, b)
            for (size_t i = 0; i < S; i++) {
                a += gc[i];
                b += gc[i] * ((xc[i] - mu) * is);
            }
            sg += a;
            sgh += b;
        }
        l->W->g[c] += (float)sgh;
        l->b->g[c] += (float)sg;
        if (!dx) continue;
        float k = l->W->w[c] * is, mg = (float)(sg / M), mgh = (float)(sgh / M);
        for (int n = 0; n < N; n++) {
            size_t off = ((size_t)n * C + c) * S;
            const float *xc = x + off, *gc = dy + off;
            float *dc = dx + off;
#pragma omp simd
            for (size_t i = 0; i < S; i++) dc[i] = k * (gc[i] - mg - ((xc[i] - mu) * is) * mgh);
        }
    }
}

static void bn_backward_dense(Layer *l, const float *x, const float *dy, float *dx, int N) {
    BatchNorm *bn = l->impl;
    int C = l->in.c;
#pragma omp parallel for schedule(static)
    for (int c0 = 0; c0 < C; c0 += BN_BLOCK) {
        int nc = C - c0 < BN_BLOCK ? C - c0 : BN_BLOCK;
        const float *mu = bn->bmean + c0, *is = bn->invstd + c0;
        double sg[BN_BLOCK] = {0}, sgh[BN_BLOCK] = {0};
        for (int n = 0; n < N; n++) {
            const float *xr = x + (size_t)n * C + c0, *gr = dy + (size_t)n * C + c0;
#pragma omp simd
            for (int j = 0; j < nc; j++) {
                sg[j] += gr[j];
                sgh[j] += gr[j] * ((xr[j] - mu[j]) * is[j]);
            }
        }
        float k[BN_BLOCK], mg[BN_BLOCK], mgh[BN_BLOCK];
        for (int j = 0; j < nc; j++) {
            l->W->g[c0 + j] += (float)sgh[j];
            l->b->g[c0 + j] += (float)sg[j];
            k[j] = l->W->w[c0 + j] * is[j], mg[j] = (float)(sg[j] / N), mgh[j] = (float)(sgh[j] / N);
        }
        if (!dx) continue;
        for (int n = 0; n < N; n++) {
            const float *xr = x + (size_t)n * C + c0, *gr = dy + (size_t)n * C + c0;
            float *dr = dx + (size_t)n * C + c0;
#pragma omp simd
            for (int j = 0; j < nc; j++) dr[j] = k[j] * (gr[j] - mg[j] - ((xr[j] - mu[j]) * is[j]) * mgh[j]);
        }
    }
}

static void bn_backward(Layer *l, const float *x, const float *y, const float *dy, float *dx, int N, const Pass *p) {
    if (p->reduce) bn_sync_backward(l, x, dy, dx, N, p);
    else if (l->in.h * l->in.w == 1) bn_backward_dense(l, x, dy, dx, N);
    else bn_backward_maps(l, x, dy, dx, N);
}

static void bn_free(Layer *l) {
    BatchNorm *bn = l->impl;
    if (!bn) return;
    free(bn->bmean);
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
    bn->bmean = asym_falloc((size_t)C);
    bn->invstd = asym_falloc((size_t)C);
    if (!l->W || !l->b || !bn->mean || !bn->var || !bn->bmean || !bn->invstd) return layer_free(l);
    return l;
}
