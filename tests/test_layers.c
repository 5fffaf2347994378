/* test_layers.c: layers one at a time against naive reference code:
 * convolution forward, weight gradient and input gradient with a feedback
 * matrix B != W (dx is the transposed convolution with B); the same for
 * fully connected layers; pooling (first maximum on ties, padding that
 * never wins a maximum, average counting padded cells as PyTorch's
 * count_include_pad); batch norm in training and evaluation, with PyTorch's
 * running statistics; activations, flatten, residual-block shapes, and the
 * parameter counts of the named architectures. Single layers are built with
 * layer_create on a hand-made network context. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "asymbp.h"
#include "layers/layers.h"
#include "test.h"

#define HAS(s) (strstr(asym_last_error(), (s)) != NULL)

/* ---- a single layer on its own context ---- */

static Layer *single(NetCtx *ctx, AsymLayerSpec s, Shape in, int max_batch, uint64_t seed) {
    memset(ctx, 0, sizeof *ctx);
    ctx->max_batch = max_batch;
    rng_seed(&ctx->rng, seed);
    Layer *l = layer_create(&s, in, ctx, "0");
    if (!l) return NULL;
    for (int i = 0; i < ctx->n_params; i++) {
        AsymParam *p = ctx->params[i];
        p->w = asym_falloc(p->n);
        p->g = asym_falloc(p->n);
    }
    if (ctx_alloc_scratch(ctx, NULL, 0)) return NULL;
    AsymRng r;
    rng_seed(&r, seed + 1);
    init_params(ctx, ASYM_INIT_TORCH, 0, &r);
    return l;
}

static void single_free(NetCtx *ctx, Layer *l) {
    layer_free(l);
    for (int i = 0; i < ctx->n_params; i++) {
        free(ctx->params[i]->w);
        free(ctx->params[i]->g);
        free(ctx->params[i]);
    }
    for (int i = 0; i < ctx->n_buffers; i++) {
        free(ctx->buffers[i]->w);
        free(ctx->buffers[i]);
    }
    free(ctx->params);
    free(ctx->buffers);
    free(ctx->weight_layers);
    ctx_free_scratch(ctx);
    memset(ctx, 0, sizeof *ctx);
}

static float *randv(size_t n, AsymRng *r) {
    float *v = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) v[i] = rng_normal(r);
    return v;
}

/* max |a - b| / max(1, max |b|) */
static double maxrel(const float *a, const double *b, size_t n) {
    double e = 0, m = 1;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(a[i])) return INFINITY;
        e = fmax(e, fabs(a[i] - b[i]));
        m = fmax(m, fabs(b[i]));
    }
    return e / m;
}

/* ---- convolution ---- */

typedef struct ConvCase {
    int N, C, H, W, O, k, s, p, bias;
} ConvCase;

static const ConvCase CONV_CASES[] = {
    {2, 3, 7, 9, 4, 3, 1, 1, 1}, {3, 2, 8, 6, 5, 1, 1, 0, 0}, {2, 3, 9, 7, 2, 5, 2, 2, 1}, {1, 4, 6, 6, 3, 3, 2, 0, 1},
    {2, 1, 5, 5, 2, 5, 1, 0, 0}, {2, 2, 7, 9, 3, 3, 3, 2, 1}, {2, 3, 4, 5, 2, 2, 2, 1, 1}, {4, 5, 3, 3, 6, 3, 1, 1, 0},
    {1, 2, 11, 4, 3, 5, 2, 2, 1}, {2, 3, 6, 8, 4, 1, 2, 0, 1},
    /* same-size 5x5 and 7x7 (kernel wider than the input); more samples
     * than sample groups, several to a column matrix (odd group sizes);
     * unpadded stride 1 (rows of W positions) */
    {3, 2, 6, 7, 3, 5, 1, 2, 1}, {2, 2, 4, 4, 3, 7, 1, 3, 0}, {37, 2, 6, 6, 3, 5, 1, 0, 1}, {21, 3, 5, 4, 2, 3, 1, 1, 1},
    {19, 2, 7, 7, 3, 1, 1, 0, 1}, {3, 2, 7, 8, 4, 3, 1, 0, 1},
    /* 3x3 stride 1 with 32+ channels: Winograd in the default build
     * (40 channels: not a multiple of oneDNN's 16) */
    {4, 32, 8, 8, 32, 3, 1, 1, 1}, {3, 40, 6, 7, 48, 3, 1, 1, 0},
};
#define N_CONV ((int)(sizeof CONV_CASES / sizeof CONV_CASES[0]))

static int conv_out(int n, int k, int s, int p) { return (n + 2 * p - k) / s + 1; }

/* Everything one convolution case needs, with naive results in double. */
typedef struct ConvRef {
    NetCtx ctx;
    Layer *l;
    int OH, OW;
    size_t nx, ny, nw;
    float *x, *dy, *B;
    double *y, *dW, *db, *dx;
} ConvRef;

static void convref_free(ConvRef *r) {
    if (r->l) single_free(&r->ctx, r->l);
    free(r->x), free(r->dy), free(r->B), free(r->y), free(r->dW), free(r->db), free(r->dx);
}

static int convref(ConvRef *r, const ConvCase *c, uint64_t seed) {
    memset(r, 0, sizeof *r);
    AsymLayerSpec s = {.kind = ASYM_CONV, .out = c->O, .k = c->k, .stride = c->s, .pad = c->p, .bias = c->bias};
    Shape in = {c->C, c->H, c->W};
    r->l = single(&r->ctx, s, in, c->N, seed);
    if (!r->l) return ASYM_ERR;
    r->OH = conv_out(c->H, c->k, c->s, c->p), r->OW = conv_out(c->W, c->k, c->s, c->p);
    if (r->l->out.c != c->O || r->l->out.h != r->OH || r->l->out.w != r->OW) return asym_fail("conv output shape %dx%dx%d", r->l->out.c, r->l->out.h, r->l->out.w);
    AsymRng rng;
    rng_seed(&rng, seed + 7);
    r->nx = (size_t)c->N * c->C * c->H * c->W, r->ny = (size_t)c->N * c->O * r->OH * r->OW, r->nw = (size_t)c->O * c->C * c->k * c->k;
    r->x = randv(r->nx, &rng), r->dy = randv(r->ny, &rng), r->B = randv(r->nw, &rng);
    r->y = calloc(r->ny, sizeof(double)), r->dW = calloc(r->nw, sizeof(double)), r->db = calloc(c->O, sizeof(double));
    r->dx = calloc(r->nx, sizeof(double));
    const float *Wt = r->l->W->w, *b = r->l->b ? r->l->b->w : NULL;
    int C = c->C, H = c->H, W = c->W, O = c->O, k = c->k, OH = r->OH, OW = r->OW;
    for (int n = 0; n < c->N; n++)
        for (int o = 0; o < O; o++)
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++) {
                    size_t yi = (((size_t)n * O + o) * OH + oh) * OW + ow;
                    double acc = b ? b[o] : 0.0, g = r->dy[yi];
                    r->db[o] += g;
                    for (int ch = 0; ch < C; ch++)
                        for (int i = 0; i < k; i++)
                            for (int j = 0; j < k; j++) {
                                int ih = oh * c->s - c->p + i, iw = ow * c->s - c->p + j;
                                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                                size_t xi = (((size_t)n * C + ch) * H + ih) * W + iw, wi = (((size_t)o * C + ch) * k + i) * k + j;
                                acc += (double)Wt[wi] * r->x[xi];
                                r->dW[wi] += g * r->x[xi];
                                r->dx[xi] += g * r->B[wi];
                            }
                    r->y[yi] = acc;
                }
    return ASYM_OK;
}

#define CASE_FMT "N%d C%d %dx%d O%d k%d s%d p%d bias %d"
#define CASE_ARGS(c) (c)->N, (c)->C, (c)->H, (c)->W, (c)->O, (c)->k, (c)->s, (c)->p, (c)->bias

TEST(kernel_conv_forward) {
    /* which path the 32+ channel 3x3 cases take here */
    printf("    convolutions: %s\n", asym_conv_backend());
    for (int t = 0; t < N_CONV; t++) {
        const ConvCase *c = &CONV_CASES[t];
        ConvRef r;
        int rc = convref(&r, c, 100 + t);
        CHECK_MSG(rc == 0, CASE_FMT ": %s", CASE_ARGS(c), asym_last_error());
        float *y = malloc(sizeof(float) * r.ny);
        r.l->ops->forward(r.l, r.x, y, c->N, LAYER_PASS(r.l, 1));
        double e = maxrel(y, r.y, r.ny);
        /* evaluation mode gives the same */
        float *y2 = malloc(sizeof(float) * r.ny);
        r.l->ops->forward(r.l, r.x, y2, c->N, LAYER_PASS(r.l, 0));
        int same = !memcmp(y, y2, sizeof(float) * r.ny);
        /* a smaller batch than max_batch */
        double e1 = 0;
        if (c->N > 1) {
            r.l->ops->forward(r.l, r.x, y2, 1, LAYER_PASS(r.l, 1));
            e1 = maxrel(y2, r.y, r.ny / c->N);
        }
        free(y), free(y2);
        convref_free(&r);
        CHECK_MSG(e < 1e-5, CASE_FMT ": forward error %g", CASE_ARGS(c), e);
        CHECK_MSG(same, CASE_FMT ": evaluation and training forward differ", CASE_ARGS(c));
        CHECK_MSG(e1 < 1e-5, CASE_FMT ": forward of 1 item error %g", CASE_ARGS(c), e1);
    }
}

TEST(kernel_conv_backward_weight) {
    for (int t = 0; t < N_CONV; t++) {
        const ConvCase *c = &CONV_CASES[t];
        ConvRef r;
        int rc = convref(&r, c, 200 + t);
        CHECK_MSG(rc == 0, CASE_FMT ": %s", CASE_ARGS(c), asym_last_error());
        /* the gradient is added to what is there */
        for (size_t i = 0; i < r.nw; i++) r.l->W->g[i] = 0.5f, r.dW[i] += 0.5;
        if (r.l->b)
            for (int o = 0; o < c->O; o++) r.l->b->g[o] = -1.0f, r.db[o] -= 1.0;
        conv2d_backward_weight(r.l, r.x, r.dy, c->N, r.l->W->g, r.l->b ? r.l->b->g : NULL);
        double e = maxrel(r.l->W->g, r.dW, r.nw), eb = r.l->b ? maxrel(r.l->b->g, r.db, c->O) : 0;
        convref_free(&r);
        CHECK_MSG(e < 1e-5, CASE_FMT ": dW error %g", CASE_ARGS(c), e);
        CHECK_MSG(eb < 1e-5, CASE_FMT ": db error %g", CASE_ARGS(c), eb);
    }
}

TEST(kernel_conv_backward_input) {
    for (int t = 0; t < N_CONV; t++) {
        const ConvCase *c = &CONV_CASES[t];
        ConvRef r;
        int rc = convref(&r, c, 300 + t);
        CHECK_MSG(rc == 0, CASE_FMT ": %s", CASE_ARGS(c), asym_last_error());
        float *dx = malloc(sizeof(float) * r.nx);
        memset(dx, 0xff, sizeof(float) * r.nx); /* NaN: every entry must be written */
        conv2d_backward_input(r.l, r.B, r.dy, dx, c->N);
        double e = maxrel(dx, r.dx, r.nx);
        /* the weights are not touched, nor their gradient */
        double gsum = 0;
        for (size_t i = 0; i < r.nw; i++) gsum += fabs(r.l->W->g[i]);
        free(dx);
        convref_free(&r);
        CHECK_MSG(e < 1e-5, CASE_FMT ": dx error %g (dx = conv_transpose(dy, B))", CASE_ARGS(c), e);
        CHECK_MSG(gsum == 0, CASE_FMT ": backward_input changed dW", CASE_ARGS(c));
    }
}

/* The layer's own backward pass is the two halves with B = W (exact
 * backpropagation by default). */
TEST(kernel_conv_backward_layer) {
    for (int t = 0; t < N_CONV; t++) {
        const ConvCase *c = &CONV_CASES[t];
        ConvRef r;
        int rc = convref(&r, c, 400 + t);
        CHECK_MSG(rc == 0, CASE_FMT ": %s", CASE_ARGS(c), asym_last_error());
        float *y = malloc(sizeof(float) * r.ny), *dx = malloc(sizeof(float) * r.nx), *dx2 = malloc(sizeof(float) * r.nx);
        float *g1 = malloc(sizeof(float) * r.nw);
        r.l->ops->forward(r.l, r.x, y, c->N, LAYER_PASS(r.l, 1));
        r.l->ops->backward(r.l, r.x, y, r.dy, dx, c->N, LAYER_PASS(r.l, 1));
        memcpy(g1, r.l->W->g, sizeof(float) * r.nw);
        memset(r.l->W->g, 0, sizeof(float) * r.nw);
        conv2d_backward_weight(r.l, r.x, r.dy, c->N, r.l->W->g, r.l->b ? r.l->b->g : NULL);
        conv2d_backward_input(r.l, r.l->W->w, r.dy, dx2, c->N);
        int same = !memcmp(dx, dx2, sizeof(float) * r.nx) && !memcmp(g1, r.l->W->g, sizeof(float) * r.nw);
        /* and with dx = NULL only the weight gradient */
        memset(r.l->W->g, 0, sizeof(float) * r.nw);
        r.l->ops->backward(r.l, r.x, y, r.dy, NULL, c->N, LAYER_PASS(r.l, 1));
        int same_w = !memcmp(g1, r.l->W->g, sizeof(float) * r.nw);
        free(y), free(dx), free(dx2), free(g1);
        convref_free(&r);
        CHECK_MSG(same, CASE_FMT ": backward differs from backward_weight + backward_input(W)", CASE_ARGS(c));
        CHECK_MSG(same_w, CASE_FMT ": backward without dx gives another dW", CASE_ARGS(c));
    }
}

/* ---- fully connected ---- */

TEST(kernel_fc) {
    static const int cases[][5] = {{3, 5, 1, 1, 4}, {2, 3, 4, 5, 7}, {5, 17, 1, 1, 1}, {1, 2, 3, 3, 6}}; /* N, C, H, W, O */
    for (int t = 0; t < 4; t++) {
        int N = cases[t][0], O = cases[t][4];
        Shape in = {cases[t][1], cases[t][2], cases[t][3]};
        int I = (int)shape_size(in);
        for (int bias = 0; bias <= 1; bias++) {
            NetCtx ctx;
            AsymLayerSpec s = {.kind = ASYM_FC, .out = O, .bias = bias};
            Layer *l = single(&ctx, s, in, N, 500 + t);
            CHECK_OK(l ? 0 : -1);
            CHECK(l->out.c == O && l->out.h == 1 && l->out.w == 1 && l->W->shape[0] == O && l->W->shape[1] == I);
            AsymRng rng;
            rng_seed(&rng, 600 + t);
            float *x = randv((size_t)N * I, &rng), *dy = randv((size_t)N * O, &rng), *B = randv((size_t)O * I, &rng);
            float *y = malloc(sizeof(float) * N * O), *dx = malloc(sizeof(float) * N * I);
            double *ry = calloc((size_t)N * O, sizeof(double)), *rdW = calloc((size_t)O * I, sizeof(double)), *rdb = calloc(O, sizeof(double));
            double *rdx = calloc((size_t)N * I, sizeof(double));
            for (int n = 0; n < N; n++)
                for (int o = 0; o < O; o++) {
                    double acc = bias ? l->b->w[o] : 0.0, g = dy[n * O + o];
                    rdb[o] += g;
                    for (int i = 0; i < I; i++) {
                        acc += (double)l->W->w[o * I + i] * x[n * I + i];
                        rdW[o * I + i] += g * x[n * I + i];
                        rdx[n * I + i] += g * B[o * I + i];
                    }
                    ry[n * O + o] = acc;
                }
            l->ops->forward(l, x, y, N, LAYER_PASS(l, 1));
            double ey = maxrel(y, ry, (size_t)N * O);
            for (int i = 0; i < O * I; i++) l->W->g[i] = 1.0f, rdW[i] += 1.0;
            fc_backward_weight(l, x, dy, N, l->W->g, l->b ? l->b->g : NULL);
            double ew = maxrel(l->W->g, rdW, (size_t)O * I), eb = bias ? maxrel(l->b->g, rdb, O) : 0;
            memset(dx, 0xff, sizeof(float) * N * I);
            fc_backward_input(l, B, dy, dx, N);
            double ex = maxrel(dx, rdx, (size_t)N * I);
            free(x), free(dy), free(B), free(y), free(dx), free(ry), free(rdW), free(rdb), free(rdx);
            single_free(&ctx, l);
            CHECK_MSG(ey < 1e-5, "fc case %d bias %d: forward error %g", t, bias, ey);
            CHECK_MSG(ew < 1e-5, "fc case %d bias %d: dW error %g", t, bias, ew);
            CHECK_MSG(eb < 1e-5, "fc case %d bias %d: db error %g", t, bias, eb);
            CHECK_MSG(ex < 1e-5, "fc case %d bias %d: dx = dy B error %g", t, bias, ex);
        }
    }
}

/* ---- pooling ---- */

TEST(layer_pool_shapes) {
    static const int cases[][7] = {
        /* kind, k, stride, pad, H, W, want OH, OW packed below */
        {ASYM_MAXPOOL, 2, 2, 0, 6, 8}, {ASYM_MAXPOOL, 3, 2, 1, 7, 9}, {ASYM_AVGPOOL, 2, 0, 0, 5, 7},
        {ASYM_AVGPOOL, 3, 1, 1, 4, 4}, {ASYM_AVGPOOL, 0, 0, 0, 5, 5}, {ASYM_MAXPOOL, 3, 2, 1, 112, 112},
    };
    static const int want[][2] = {{3, 4}, {4, 5}, {2, 3}, {4, 4}, {1, 1}, {56, 56}};
    for (int t = 0; t < 6; t++) {
        NetCtx ctx;
        AsymLayerSpec s = {.kind = (AsymLayerKind)cases[t][0], .k = cases[t][1], .stride = cases[t][2], .pad = cases[t][3]};
        Shape in = {3, cases[t][4], cases[t][5]};
        Layer *l = single(&ctx, s, in, 2, 1);
        CHECK_MSG(l, "pool case %d: %s", t, asym_last_error());
        int oh = l->out.h, ow = l->out.w, oc = l->out.c;
        single_free(&ctx, l);
        CHECK_MSG(oc == 3 && oh == want[t][0] && ow == want[t][1], "pool case %d: output %dx%dx%d, want 3x%dx%d", t, oc, oh, ow, want[t][0], want[t][1]);
    }
    /* windows that do not fit, and non-square global pooling */
    NetCtx ctx;
    AsymLayerSpec bad = {.kind = ASYM_MAXPOOL, .k = 5, .stride = 1};
    Shape small = {1, 3, 3};
    CHECK(single(&ctx, bad, small, 1, 1) == NULL && HAS("pooling"));
    free(ctx.params), free(ctx.buffers), free(ctx.weight_layers);
    AsymLayerSpec glob = {.kind = ASYM_AVGPOOL, .k = 0};
    Shape rect = {2, 4, 6};
    CHECK(single(&ctx, glob, rect, 1, 1) == NULL && HAS("square"));
    free(ctx.params), free(ctx.buffers), free(ctx.weight_layers);
}

TEST(layer_maxpool_ties) {
    NetCtx ctx;
    AsymLayerSpec s = {.kind = ASYM_MAXPOOL, .k = 2, .stride = 2};
    Shape in = {1, 4, 4};
    Layer *l = single(&ctx, s, in, 1, 1);
    CHECK_OK(l ? 0 : -1);
    /* window (0,0): all equal; (0,1): tie between (0,3) and (1,2);
     * (1,0): tie between (3,0) and (3,1); (1,1): one maximum at (3,3) */
    float x[16] = {
        1, 1, 0, 5,  //
        1, 1, 5, 2,  //
        -1, -2, 3, 3, //
        4, 4, 3, 9,
    };
    float y[4], dy[4] = {10, 20, 30, 40}, dx[16];
    l->ops->forward(l, x, y, 1, LAYER_PASS(l, 1));
    l->ops->backward(l, x, y, dy, dx, 1, LAYER_PASS(l, 1));
    single_free(&ctx, l);
    float wy[4] = {1, 5, 4, 9};
    float wdx[16] = {10, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 30, 0, 0, 40};
    CHECK_MSG(!memcmp(y, wy, sizeof y), "y = %g %g %g %g", y[0], y[1], y[2], y[3]);
    for (int i = 0; i < 16; i++) CHECK_MSG(dx[i] == wdx[i], "dx[%d] = %g, want %g (the first maximum in row-major order gets the gradient)", i, dx[i], wdx[i]);
}

/* Naive pooling over random inputs; max pooling's padding never wins. */
TEST(layer_pool_reference) {
    static const int cases[][6] = {
        /* max?, k, stride, pad, H, W */
        {1, 3, 2, 1, 7, 9}, {1, 2, 2, 0, 6, 8}, {1, 3, 1, 1, 5, 4}, {0, 3, 2, 1, 7, 9}, {0, 2, 2, 0, 6, 8}, {0, 3, 1, 1, 5, 4}, {0, 0, 0, 0, 5, 5}, {1, 0, 0, 0, 4, 4},
        {1, 2, 2, 0, 7, 9}, /* odd sizes: the last row and column are in no window */
    };
    for (int t = 0; t < (int)(sizeof cases / sizeof cases[0]); t++) {
        int is_max = cases[t][0], k = cases[t][1], st = cases[t][2], pad = cases[t][3], H = cases[t][4], W = cases[t][5], N = 2, C = 3;
        NetCtx ctx;
        AsymLayerSpec s = {.kind = is_max ? ASYM_MAXPOOL : ASYM_AVGPOOL, .k = k, .stride = st, .pad = pad};
        Shape in = {C, H, W};
        Layer *l = single(&ctx, s, in, N, 1);
        CHECK_MSG(l, "pool case %d: %s", t, asym_last_error());
        if (k == 0) k = H, st = 1;
        int OH = l->out.h, OW = l->out.w;
        size_t nx = (size_t)N * C * H * W, ny = (size_t)N * C * OH * OW;
        AsymRng rng;
        rng_seed(&rng, 700 + t);
        float *x = randv(nx, &rng), *dy = randv(ny, &rng), *y = malloc(sizeof(float) * ny), *dx = malloc(sizeof(float) * nx);
        /* all-negative inputs: a zero from padding must never be the maximum */
        for (size_t i = 0; i < nx; i++) x[i] = -1.0f - fabsf(x[i]);
        double *ry = calloc(ny, sizeof(double)), *rdx = calloc(nx, sizeof(double));
        for (int nc = 0; nc < N * C; nc++)
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++) {
                    size_t yi = ((size_t)nc * OH + oh) * OW + ow;
                    double best = -INFINITY, sum = 0;
                    size_t bi = 0;
                    for (int i = oh * st - pad; i < oh * st - pad + k; i++)
                        for (int j = ow * st - pad; j < ow * st - pad + k; j++) {
                            if (i < 0 || i >= H || j < 0 || j >= W) continue;
                            size_t xi = ((size_t)nc * H + i) * W + j;
                            sum += x[xi];
                            if (x[xi] > best) best = x[xi], bi = xi;
                        }
                    if (is_max) {
                        ry[yi] = best;
                        rdx[bi] += dy[yi];
                    } else {
                        ry[yi] = sum / (k * k); /* count_include_pad */
                        for (int i = oh * st - pad; i < oh * st - pad + k; i++)
                            for (int j = ow * st - pad; j < ow * st - pad + k; j++)
                                if (i >= 0 && i < H && j >= 0 && j < W) rdx[((size_t)nc * H + i) * W + j] += dy[yi] / (k * k);
                    }
                }
        l->ops->forward(l, x, y, N, LAYER_PASS(l, 1));
        memset(dx, 0xff, sizeof(float) * nx);
        l->ops->backward(l, x, y, dy, dx, N, LAYER_PASS(l, 1));
        double ey = maxrel(y, ry, ny), ex = maxrel(dx, rdx, nx);
        free(x), free(dy), free(y), free(dx), free(ry), free(rdx);
        single_free(&ctx, l);
        CHECK_MSG(ey < 1e-6, "pool case %d (%s k%d s%d p%d): forward error %g", t, is_max ? "max" : "avg", k, st, pad, ey);
        CHECK_MSG(ex < 1e-6, "pool case %d (%s k%d s%d p%d): backward error %g", t, is_max ? "max" : "avg", k, st, pad, ex);
    }
}

TEST(layer_avgpool_count_include_pad) {
    /* 2x2 input of ones, k3 s1 p1: every window holds all 4 ones of 9 cells */
    NetCtx ctx;
    AsymLayerSpec s = {.kind = ASYM_AVGPOOL, .k = 3, .stride = 1, .pad = 1};
    Shape in = {1, 2, 2};
    Layer *l = single(&ctx, s, in, 1, 1);
    CHECK_OK(l ? 0 : -1);
    float x[4] = {1, 1, 1, 1}, y[4];
    l->ops->forward(l, x, y, 1, LAYER_PASS(l, 1));
    single_free(&ctx, l);
    for (int i = 0; i < 4; i++) CHECK_MSG(fabsf(y[i] - 4.0f / 9.0f) < 1e-7f, "y[%d] = %g, want 4/9", i, y[i]);
}

/* ---- batch norm ---- */

static Layer *bn_layer(NetCtx *ctx, Shape in, int N, float momentum, float eps, uint64_t seed) {
    AsymLayerSpec s = {.kind = ASYM_BATCHNORM, .momentum = momentum, .eps = eps};
    Layer *l = single(ctx, s, in, N, seed);
    if (!l) return NULL;
    AsymRng r;
    rng_seed(&r, seed + 3);
    for (int c = 0; c < in.c; c++) l->W->w[c] = (float)(0.5 + rng_uniform(&r)), l->b->w[c] = (float)(rng_uniform(&r) - 0.5);
    return l;
}

/* Running mean and var buffers of a lone batch-norm layer. */
static AsymParam *bn_buf(NetCtx *ctx, AsymParamRole role) {
    for (int i = 0; i < ctx->n_buffers; i++)
        if (ctx->buffers[i]->role == role) return ctx->buffers[i];
    return NULL;
}

TEST(layer_batchnorm_train_and_running_stats) {
    static const struct {
        int C, H, W, N;
        float momentum, eps;
    } cases[] = {{4, 1, 1, 6, 0, 0}, {3, 5, 4, 3, 0, 0}, {2, 3, 3, 2, 0.25f, 1e-3f}, {5, 1, 1, 2, 0.5f, 0.1f}};
    for (int t = 0; t < 4; t++) {
        Shape in = {cases[t].C, cases[t].H, cases[t].W};
        int N = cases[t].N, C = in.c;
        size_t S = (size_t)in.h * in.w, n = N * shape_size(in);
        double mom = cases[t].momentum > 0 ? cases[t].momentum : 0.1, eps = cases[t].eps > 0 ? cases[t].eps : 1e-5;
        NetCtx ctx;
        Layer *l = bn_layer(&ctx, in, N, cases[t].momentum, cases[t].eps, 800 + t);
        CHECK_OK(l ? 0 : -1);
        AsymParam *rm = bn_buf(&ctx, ASYM_P_RUNNING_MEAN), *rv = bn_buf(&ctx, ASYM_P_RUNNING_VAR);
        CHECK(rm && rv && rm->n == (size_t)C && rv->n == (size_t)C && ctx.n_params == 2);
        CHECK(rm->w[0] == 0.0f && rv->w[0] == 1.0f);
        AsymRng rng;
        rng_seed(&rng, 900 + t);
        float *y = malloc(sizeof(float) * n);
        double *ry = malloc(sizeof(double) * n), *wm = malloc(sizeof(double) * C), *wv = malloc(sizeof(double) * C);
        for (int c = 0; c < C; c++) wm[c] = 0, wv[c] = 1;
        double ey = 0, es = 0;
        for (int pass = 0; pass < 3; pass++) {
            float *x = randv(n, &rng);
            for (size_t i = 0; i < n; i++) x[i] = 2.0f * x[i] + 1.5f;
            for (int c = 0; c < C; c++) {
                double s = 0, ss = 0;
                for (int b = 0; b < N; b++)
                    for (size_t i = 0; i < S; i++) s += x[((size_t)b * C + c) * S + i];
                double mean = s / (N * S);
                for (int b = 0; b < N; b++)
                    for (size_t i = 0; i < S; i++) ss += pow(x[((size_t)b * C + c) * S + i] - mean, 2);
                double var = ss / (N * S), unbiased = ss / (N * S - 1);
                for (int b = 0; b < N; b++)
                    for (size_t i = 0; i < S; i++) {
                        size_t j = ((size_t)b * C + c) * S + i;
                        ry[j] = l->W->w[c] * (x[j] - mean) / sqrt(var + eps) + l->b->w[c];
                    }
                wm[c] = (1 - mom) * wm[c] + mom * mean;
                wv[c] = (1 - mom) * wv[c] + mom * unbiased;
            }
            l->ops->forward(l, x, y, N, LAYER_PASS(l, 1));
            ey = fmax(ey, maxrel(y, ry, n));
            for (int c = 0; c < C; c++) es = fmax(es, fmax(fabs(rm->w[c] - wm[c]), fabs(rv->w[c] - wv[c])) / fmax(1, fabs(wv[c])));
            free(x);
        }
        free(y), free(ry), free(wm), free(wv);
        single_free(&ctx, l);
        CHECK_MSG(ey < 1e-5, "bn case %d: training output error %g", t, ey);
        CHECK_MSG(es < 1e-5, "bn case %d: running statistics error %g (momentum %g, unbiased variance)", t, es, mom);
    }
}

TEST(layer_batchnorm_eval) {
    Shape in = {3, 2, 2};
    int N = 2, C = 3;
    size_t n = N * shape_size(in);
    NetCtx ctx;
    Layer *l = bn_layer(&ctx, in, N, 0, 1e-3f, 1000);
    CHECK_OK(l ? 0 : -1);
    AsymParam *rm = bn_buf(&ctx, ASYM_P_RUNNING_MEAN), *rv = bn_buf(&ctx, ASYM_P_RUNNING_VAR);
    CHECK(rm && rv);
    float mean[3] = {0.5f, -1.0f, 2.0f}, var[3] = {4.0f, 0.25f, 1.0f};
    memcpy(rm->w, mean, sizeof mean);
    memcpy(rv->w, var, sizeof var);
    AsymRng rng;
    rng_seed(&rng, 1001);
    float *x = randv(n, &rng), *y = malloc(sizeof(float) * n), *y1 = malloc(sizeof(float) * n);
    double *ry = malloc(sizeof(double) * n);
    for (int b = 0; b < N; b++)
        for (int c = 0; c < C; c++)
            for (int i = 0; i < 4; i++) {
                size_t j = ((size_t)b * C + c) * 4 + i;
                ry[j] = l->W->w[c] * (x[j] - mean[c]) / sqrt(var[c] + 1e-3) + l->b->w[c];
            }
    l->ops->forward(l, x, y, N, LAYER_PASS(l, 0));
    double e = maxrel(y, ry, n);
    int unchanged = !memcmp(rm->w, mean, sizeof mean) && !memcmp(rv->w, var, sizeof var);
    /* evaluation treats items independently: one item alone gives the same */
    l->ops->forward(l, x + shape_size(in), y1, 1, LAYER_PASS(l, 0));
    int indep = !memcmp(y1, y + shape_size(in), sizeof(float) * shape_size(in));
    free(x), free(y), free(y1), free(ry);
    single_free(&ctx, l);
    CHECK_MSG(e < 1e-6, "evaluation output error %g", e);
    CHECK_MSG(unchanged, "evaluation changed the running statistics");
    CHECK_MSG(indep, "evaluation output depends on the rest of the batch");
}

/* ---- element-wise layers ---- */

TEST(layer_activations) {
    static const AsymLayerKind kinds[] = {ASYM_RELU, ASYM_TANH, ASYM_SIGMOID};
    Shape in = {2, 3, 5};
    int N = 3;
    size_t n = N * shape_size(in);
    for (int t = 0; t < 3; t++) {
        NetCtx ctx;
        AsymLayerSpec s = {.kind = kinds[t]};
        Layer *l = single(&ctx, s, in, N, 1);
        CHECK_OK(l ? 0 : -1);
        CHECK(l->out.c == in.c && l->out.h == in.h && l->out.w == in.w);
        AsymRng rng;
        rng_seed(&rng, 1100 + t);
        float *x = randv(n, &rng), *dy = randv(n, &rng), *y = malloc(sizeof(float) * n), *dx = malloc(sizeof(float) * n);
        x[0] = 0.0f, x[1] = -0.0f, x[2] = 30.0f, x[3] = -30.0f;
        double *ry = malloc(sizeof(double) * n), *rdx = malloc(sizeof(double) * n);
        for (size_t i = 0; i < n; i++) {
            double v = x[i], f, d;
            if (kinds[t] == ASYM_RELU) f = v > 0 ? v : 0, d = v > 0;
            else if (kinds[t] == ASYM_TANH) f = tanh(v), d = 1 - f * f;
            else f = 1 / (1 + exp(-v)), d = f * (1 - f);
            ry[i] = f, rdx[i] = d * dy[i];
        }
        l->ops->forward(l, x, y, N, LAYER_PASS(l, 1));
        l->ops->backward(l, x, y, dy, dx, N, LAYER_PASS(l, 1));
        double ey = maxrel(y, ry, n), ex = maxrel(dx, rdx, n);
        free(x), free(dy), free(y), free(dx), free(ry), free(rdx);
        single_free(&ctx, l);
        CHECK_MSG(ey < 1e-6, "activation %d: forward error %g", (int)kinds[t], ey);
        CHECK_MSG(ex < 1e-6, "activation %d: backward error %g", (int)kinds[t], ex);
    }
}

TEST(layer_flatten) {
    NetCtx ctx;
    AsymLayerSpec s = {.kind = ASYM_FLATTEN};
    Shape in = {3, 4, 5};
    Layer *l = single(&ctx, s, in, 2, 1);
    CHECK_OK(l ? 0 : -1);
    CHECK(l->out.c == 60 && l->out.h == 1 && l->out.w == 1);
    AsymRng rng;
    rng_seed(&rng, 1200);
    float *x = randv(120, &rng), *y = malloc(sizeof(float) * 120), *dx = malloc(sizeof(float) * 120);
    l->ops->forward(l, x, y, 2, LAYER_PASS(l, 1));
    l->ops->backward(l, x, y, x, dx, 2, LAYER_PASS(l, 1));
    int same = !memcmp(x, y, sizeof(float) * 120) && !memcmp(x, dx, sizeof(float) * 120);
    free(x), free(y), free(dx);
    single_free(&ctx, l);
    CHECK(same);
}

/* ---- residual blocks: shapes and registered tensors ---- */

static int count_named(NetCtx *ctx, const char *part) {
    int k = 0;
    for (int i = 0; i < ctx->n_params; i++) k += strstr(ctx->params[i]->name, part) != NULL;
    return k;
}

TEST(layer_resblock_shapes) {
    static const struct {
        int C, H, out, stride, sc, bottleneck;
        int OC, OH, n_params, n_shortcut;
    } cases[] = {
        {16, 8, 16, 1, ASYM_SHORTCUT_A, 0, 16, 8, 6, 0},   /* identity */
        {16, 8, 32, 2, ASYM_SHORTCUT_A, 0, 32, 4, 6, 0},   /* option A: no tensors */
        {16, 8, 32, 2, ASYM_SHORTCUT_B, 0, 32, 4, 9, 3},   /* option B: 1x1 conv + bn */
        {16, 8, 16, 1, ASYM_SHORTCUT_B, 0, 16, 8, 6, 0},   /* option B, same shape: identity */
        {64, 8, 256, 1, ASYM_SHORTCUT_B, 1, 256, 8, 12, 3}, /* bottleneck */
        {256, 8, 256, 1, ASYM_SHORTCUT_B, 1, 256, 8, 9, 0},
        {256, 7, 512, 2, ASYM_SHORTCUT_B, 1, 512, 4, 12, 3},
    };
    for (int t = 0; t < 7; t++) {
        NetCtx ctx;
        AsymLayerSpec s = {.kind = ASYM_RESBLOCK, .out = cases[t].out, .stride = cases[t].stride, .shortcut = (AsymShortcut)cases[t].sc, .bottleneck = cases[t].bottleneck};
        Shape in = {cases[t].C, cases[t].H, cases[t].H};
        Layer *l = single(&ctx, s, in, 1, 1);
        CHECK_MSG(l, "resblock case %d: %s", t, asym_last_error());
        int oc = l->out.c, oh = l->out.h, ow = l->out.w, np = ctx.n_params, ns = count_named(&ctx, "shortcut"), nb = ctx.n_buffers;
        single_free(&ctx, l);
        CHECK_MSG(oc == cases[t].OC && oh == cases[t].OH && ow == cases[t].OH, "resblock case %d: output %dx%dx%d", t, oc, oh, ow);
        CHECK_MSG(np == cases[t].n_params && ns == cases[t].n_shortcut, "resblock case %d: %d tensors (%d in the shortcut), want %d (%d)", t, np, ns,
                  cases[t].n_params, cases[t].n_shortcut);
        /* every convolution is followed by a batch norm (W; gamma, beta), with two buffers each */
        CHECK_MSG(np % 3 == 0 && nb == 2 * np / 3, "resblock case %d: %d buffers for %d tensors", t, nb, np);
    }
}

TEST(layer_create_errors) {
    static const struct {
        AsymLayerSpec s;
        Shape in;
        const char *want;
    } cases[] = {
        {{.kind = ASYM_CONV, .out = 4, .k = 7}, {3, 5, 5}, "larger"},
        {{.kind = ASYM_CONV, .out = 0, .k = 3}, {3, 5, 5}, "conv"},
        {{.kind = ASYM_FC, .out = 0}, {3, 5, 5}, "fc"},
        {{.kind = ASYM_DROPOUT, .p = 1.0f}, {3, 5, 5}, "dropout"},
        {{.kind = ASYM_DROPOUT, .p = -0.1f}, {3, 5, 5}, "dropout"},
        {{.kind = ASYM_RESBLOCK, .out = 8}, {16, 5, 5}, "resblock"},
        {{.kind = ASYM_RESBLOCK, .out = 18, .bottleneck = 1}, {16, 5, 5}, "resblock"},
        {{.kind = ASYM_MAXPOOL, .k = 2}, {10, 1, 1}, "does not fit"},
        {{.kind = (AsymLayerKind)99}, {3, 5, 5}, "unknown"},
    };
    for (int t = 0; t < 9; t++) {
        NetCtx ctx;
        memset(&ctx, 0, sizeof ctx);
        ctx.max_batch = 1;
        Layer *l = layer_create(&cases[t].s, cases[t].in, &ctx, "7");
        int ok = l == NULL && HAS(cases[t].want) && HAS("7");
        if (l) layer_free(l);
        for (int i = 0; i < ctx.n_params; i++) free(ctx.params[i]);
        for (int i = 0; i < ctx.n_buffers; i++) free(ctx.buffers[i]->w), free(ctx.buffers[i]);
        free(ctx.params), free(ctx.buffers), free(ctx.weight_layers);
        CHECK_MSG(ok, "case %d: want an error naming layer 7 with \"%s\", got \"%s\"", t, cases[t].want, l ? "success" : asym_last_error());
    }
}

/* ---- parameter counts of the named architectures ---- */

static long long count_params(AsymNetSpec *s, int *n_tensors) {
    AsymRng rng;
    asym_rng_seed(&rng, 1);
    AsymNet *net;
    if (asym_net_create(&net, s, 1, &rng)) return -1;
    long long total = 0;
    for (int i = 0; i < asym_net_n_params(net); i++) total += (long long)asym_net_param(net, i)->n;
    if (n_tensors) *n_tensors = asym_net_n_params(net);
    if ((size_t)total != asym_net_n_weights(net)) total = -2;
    asym_net_free(net);
    return total;
}

TEST(layer_params_resnet18) {
    AsymNetSpec s = {.in_c = 3, .in_h = 224, .in_w = 224, .classes = 1000};
    CHECK_OK(asym_arch_resnet_imagenet(&s, 18));
    long long n = count_params(&s, NULL);
    asym_netspec_free(&s);
    CHECK_MSG(n == 11689512, "resnet18: %lld parameters (%s), torchvision has 11,689,512", n, asym_last_error());
}

TEST(layer_params_resnet50) {
    AsymNetSpec s = {.in_c = 3, .in_h = 64, .in_w = 64, .classes = 1000};
    CHECK_OK(asym_arch_resnet_imagenet(&s, 50));
    long long n = count_params(&s, NULL);
    asym_netspec_free(&s);
    CHECK_MSG(n == 25557032, "resnet50: %lld parameters (%s), torchvision has 25,557,032", n, asym_last_error());
}

TEST(layer_params_resnet34) {
    AsymNetSpec s = {.in_c = 3, .in_h = 64, .in_w = 64, .classes = 1000};
    CHECK_OK(asym_arch_resnet_imagenet(&s, 34));
    long long n = count_params(&s, NULL);
    asym_netspec_free(&s);
    CHECK_MSG(n == 21797672, "resnet34: %lld parameters (%s), torchvision has 21,797,672", n, asym_last_error());
}

/* arch.c promises any input of at least 32x32 for the ImageNet ResNets; at
 * 32x32 the last stage runs its 3x3 convolutions (pad 1) on 1x1 maps, which
 * PyTorch allows. */
TEST(layer_resnet_imagenet_small_input) {
    static const int depths[] = {18, 50};
    static const int sizes[] = {32, 33, 40};
    for (int d = 0; d < 2; d++)
        for (int i = 0; i < 3; i++) {
            AsymNetSpec s = {.in_c = 3, .in_h = sizes[i], .in_w = sizes[i], .classes = 10};
            CHECK_OK(asym_arch_resnet_imagenet(&s, depths[d]));
            AsymRng rng;
            asym_rng_seed(&rng, 1);
            AsymNet *net = NULL;
            int rc = asym_net_create(&net, &s, 2, &rng);
            asym_netspec_free(&s);
            CHECK_MSG(rc == 0, "resnet%d at %dx%d: %s", depths[d], sizes[i], sizes[i], asym_last_error());
            float x[2 * 3 * 40 * 40] = {0};
            int32_t y[2] = {1, 2};
            asym_net_forward(net, x, 2, 1);
            float L = asym_net_loss(net, y, 2, 1, NULL);
            asym_net_free(net);
            CHECK_MSG(isfinite(L), "resnet%d at %dx%d: loss %g", depths[d], sizes[i], sizes[i], L);
        }
}

/* He et al.'s CIFAR ResNet-20: stem 3*16*9 + bn 32; stage 1: 3 blocks of
 * 2*(16*16*9) + 64; stage 2: 16*32*9 + 32*32*9 + 128, then 2 blocks of
 * 2*(32*32*9) + 128; stage 3 likewise with 64; fc 64*10 + 10. With option
 * A (parameter-free shortcuts) that is 269,722 (akamaster/pytorch_resnet_cifar10
 * prints the same); option B adds two 1x1 projections with batch norm,
 * 16*32 + 64 + 32*64 + 128 = 2,752, giving 272,474. */
TEST(layer_params_resnet20_cifar) {
    AsymNetSpec s = {.in_c = 3, .in_h = 32, .in_w = 32, .classes = 10};
    CHECK_OK(asym_arch_resnet_cifar(&s, 20, ASYM_SHORTCUT_A));
    long long n = count_params(&s, NULL);
    asym_netspec_free(&s);
    CHECK_MSG(n == 269722, "resnet20 (option A): %lld parameters (%s), want 269,722", n, asym_last_error());
    AsymNetSpec b = {.in_c = 3, .in_h = 32, .in_w = 32, .classes = 10};
    CHECK_OK(asym_arch_resnet_cifar(&b, 20, ASYM_SHORTCUT_B));
    n = count_params(&b, NULL);
    asym_netspec_free(&b);
    CHECK_MSG(n == 272474, "resnet20 (option B): %lld parameters, want 272,474", n);
    /* resnet56, option A: 853,018 */
    AsymNetSpec c = {.in_c = 3, .in_h = 32, .in_w = 32, .classes = 10};
    CHECK_OK(asym_arch_resnet_cifar(&c, 56, ASYM_SHORTCUT_A));
    n = count_params(&c, NULL);
    asym_netspec_free(&c);
    CHECK_MSG(n == 853018, "resnet56 (option A): %lld parameters, want 853,018", n);
}

TEST(layer_params_lenet) {
    AsymNetSpec s = {.in_c = 1, .in_h = 32, .in_w = 32, .classes = 10};
    CHECK_OK(asym_arch_lenet(&s));
    int nt = 0;
    long long n = count_params(&s, &nt);
    asym_netspec_free(&s);
    CHECK_MSG(n == 61706, "lenet: %lld parameters (%s), BioTorch's has 61,706", n, asym_last_error());
    CHECK_MSG(nt == 10, "lenet: %d tensors, want 10 (5 weights, 5 biases)", nt);
}

TEST(layer_params_mlp) {
    /* 784-1024-1024-10 with batch norm: fc 784*1024+1024, bn 2*1024,
     * fc 1024*1024+1024, bn 2*1024, fc 1024*10+10 */
    const int hidden[2] = {1024, 1024};
    AsymNetSpec s = {.in_c = 1, .in_h = 28, .in_w = 28, .classes = 10};
    CHECK_OK(asym_arch_mlp(&s, hidden, 2, 1, ASYM_RELU));
    long long n = count_params(&s, NULL);
    asym_netspec_free(&s);
    long long want = 784LL * 1024 + 1024 + 2048 + 1024LL * 1024 + 1024 + 2048 + 10240 + 10;
    CHECK_MSG(n == want && want == 1867786, "mlp: %lld parameters, want %lld", n, want);
    AsymNetSpec t = {.in_c = 1, .in_h = 28, .in_w = 28, .classes = 10};
    CHECK_OK(asym_arch_mlp(&t, hidden, 2, 0, ASYM_TANH));
    n = count_params(&t, NULL);
    asym_netspec_free(&t);
    CHECK_MSG(n == want - 4096, "mlp without batch norm: %lld parameters, want %lld", n, want - 4096);
}
