/* pool.c: max and average pooling over k x k windows with stride and zero
 * padding (average counts padded cells, as PyTorch's default); k = 0 means
 * global pooling over the whole feature map.
 * x is (N, C, H, W), y is (N, C, OH, OW). Max pooling keeps the index of
 * each window's maximum (first one on ties) for the backward pass. */
#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "layers/layers.h"

typedef struct Pool {
    int k, stride, pad, is_max;
    int32_t *arg; /* (max_batch, C, OH, OW): flat index into the input plane */
} Pool;

/* 2x2 windows with stride 2 and no padding (LeNet, VGG-style nets) keep no
 * index: the backward pass gives each window's gradient to the first of its
 * four inputs equal to the output (the one the forward pass chose, with the
 * general case's first-maximum rule; the first when the output is NaN).
 * Both directions vectorize. */
static int is_max2(const Pool *p) { return p->is_max && p->k == 2 && p->stride == 2 && p->pad == 0; }

static void maxpool2_forward(Layer *l, const float *x, float *y, int N) {
    int C = l->in.c, H = l->in.h, W = l->in.w, OH = l->out.h, OW = l->out.w;
#pragma omp parallel for schedule(static)
    for (int nc = 0; nc < N * C; nc++) {
        const float *xp = x + (size_t)nc * H * W;
        float *yp = y + (size_t)nc * OH * OW;
        for (int oh = 0; oh < OH; oh++) {
            const float *r0 = xp + (size_t)2 * oh * W, *r1 = r0 + W;
            float *yr = yp + (size_t)oh * OW;
#pragma omp simd
            for (int ow = 0; ow < OW; ow++) {
                float a = r0[2 * ow], b = r0[2 * ow + 1], c = r1[2 * ow], d = r1[2 * ow + 1];
                float m = b > a ? b : a;
                m = c > m ? c : m;
                m = d > m ? d : m;
                yr[ow] = m;
            }
        }
    }
}

static void maxpool2_backward(Layer *l, const float *x, const float *y, const float *dy, float *dx, int N) {
    int C = l->in.c, H = l->in.h, W = l->in.w, OH = l->out.h, OW = l->out.w;
#pragma omp parallel for schedule(static)
    for (int nc = 0; nc < N * C; nc++) {
        const float *xp = x + (size_t)nc * H * W;
        float *dp = dx + (size_t)nc * H * W;
        if (H != 2 * OH || W != 2 * OW) memset(dp, 0, sizeof(float) * H * W); /* odd sizes: a row or column no window reads */
        for (int oh = 0; oh < OH; oh++) {
            const float *r0 = xp + (size_t)2 * oh * W, *r1 = r0 + W, *yr = y + ((size_t)nc * OH + oh) * OW, *gr = dy + ((size_t)nc * OH + oh) * OW;
            float *d0 = dp + (size_t)2 * oh * W, *d1 = d0 + W;
#pragma omp simd
            for (int ow = 0; ow < OW; ow++) {
                float a = r0[2 * ow], b = r0[2 * ow + 1], c = r1[2 * ow], m = yr[ow], g = gr[ow];
                int ea = (a == m) | (m != m), eb = !ea & (b == m), ec = !ea & !eb & (c == m), ed = !ea & !eb & !ec;
                d0[2 * ow] = ea ? g : 0.0f;
                d0[2 * ow + 1] = eb ? g : 0.0f;
                d1[2 * ow] = ec ? g : 0.0f;
                d1[2 * ow + 1] = ed ? g : 0.0f;
            }
        }
    }
}

static void pool_forward(Layer *l, const float *x, float *y, int N, const Pass *pass) {
    Pool *p = l->impl;
    int C = l->in.c, H = l->in.h, W = l->in.w, OH = l->out.h, OW = l->out.w;
    float inv = 1.0f / (float)(p->k * p->k);
    if (is_max2(p)) {
        maxpool2_forward(l, x, y, N);
        return;
    }
#pragma omp parallel for schedule(static)
    for (int nc = 0; nc < N * C; nc++) {
        const float *xp = x + (size_t)nc * H * W;
        float *yp = y + (size_t)nc * OH * OW;
        int32_t *ap = p->arg + (size_t)nc * OH * OW;
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                int h0 = oh * p->stride - p->pad, w0 = ow * p->stride - p->pad;
                float best = -FLT_MAX, sum = 0.0f;
                int bi = -1;
                for (int i = h0; i < h0 + p->k; i++) {
                    if (i < 0 || i >= H) continue;
                    for (int j = w0; j < w0 + p->k; j++) {
                        if (j < 0 || j >= W) continue;
                        float v = xp[i * W + j];
                        sum += v;
                        if (v > best || bi < 0) best = v, bi = i * W + j;
                    }
                }
                if (p->is_max) {
                    yp[oh * OW + ow] = best;
                    ap[oh * OW + ow] = bi;
                } else {
                    yp[oh * OW + ow] = sum * inv;
                }
            }
    }
}

static void pool_backward(Layer *l, const float *x, const float *y, const float *dy, float *dx, int N, const Pass *pass) {
    Pool *p = l->impl;
    int C = l->in.c, H = l->in.h, W = l->in.w, OH = l->out.h, OW = l->out.w;
    float inv = 1.0f / (float)(p->k * p->k);
    if (!dx) return;
    if (is_max2(p)) {
        maxpool2_backward(l, x, y, dy, dx, N);
        return;
    }
#pragma omp parallel for schedule(static)
    for (int nc = 0; nc < N * C; nc++) {
        float *dp = dx + (size_t)nc * H * W;
        const float *gp = dy + (size_t)nc * OH * OW;
        const int32_t *ap = p->arg + (size_t)nc * OH * OW;
        memset(dp, 0, sizeof(float) * H * W);
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                float g = gp[oh * OW + ow];
                if (p->is_max) {
                    dp[ap[oh * OW + ow]] += g;
                    continue;
                }
                int h0 = oh * p->stride - p->pad, w0 = ow * p->stride - p->pad;
                for (int i = h0 < 0 ? 0 : h0; i < h0 + p->k && i < H; i++)
                    for (int j = w0 < 0 ? 0 : w0; j < w0 + p->k && j < W; j++) dp[i * W + j] += g * inv;
            }
    }
}

static void pool_free(Layer *l) {
    Pool *p = l->impl;
    if (p) free(p->arg);
}

static const LayerOps pool_ops = {.name = "pool", .forward = pool_forward, .backward = pool_backward, .free = pool_free};

Layer *pool_create(const AsymLayerSpec *s, Shape in, NetCtx *ctx, const char *name) {
    int global = s->k == 0;
    int kh = global ? in.h : s->k, kw = global ? in.w : s->k;
    int st = global ? 1 : (s->stride ? s->stride : s->k), pad = global ? 0 : s->pad;
    if (kh <= 0 || st <= 0 || pad < 0 || 2 * pad > kh || in.h + 2 * pad < kh || in.w + 2 * pad < kw) {
        asym_fail("layer %s (line %d): pooling window %d, stride %d, pad %d does not fit a %dx%d input", name, s->line, s->k, st, pad, in.h, in.w);
        return NULL;
    }
    if (global && kh != kw) {
        asym_fail("layer %s (line %d): global pooling needs a square input, got %dx%d", name, s->line, in.h, in.w);
        return NULL;
    }
    Shape out = {in.c, (in.h + 2 * pad - kh) / st + 1, (in.w + 2 * pad - kw) / st + 1};
    Layer *l = layer_new(&pool_ops, s, in, out, ctx, name, sizeof(Pool));
    if (!l) return NULL;
    Pool *p = l->impl;
    p->k = kh, p->stride = st, p->pad = pad, p->is_max = s->kind == ASYM_MAXPOOL;
    if (p->is_max && !is_max2(p)) {
        p->arg = asym_calloc((size_t)ctx->max_batch * shape_size(out), sizeof(int32_t));
        if (!p->arg) return layer_free(l);
    }
    return l;
}
