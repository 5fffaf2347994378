/* direct.c: what the direct rules share (dfa.c, sdfa.c, drtp.c, dkp.c):
 * each hidden block (a weight layer and the layers up to the next weight
 * layer) receives a signal of one value per class through its own
 * (classes, block output) matrix D, in place of the gradient from the
 * layer after it (Nokland 2016; BioTorch's projection into a convolution). */
#include "rules/rules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* BioTorch's DFA into a convolution: the error e is spread over every output
 * position of the next convolution and taken back through it with a random
 * kernel K (classes, C, k, k), so D[c, (ch, y, x)] sums K[c, ch, ky, kx] over
 * the output positions whose window puts (ky, kx) on input pixel (y, x):
 * one value per channel inside the image, partial sums at its border. K's
 * distribution takes the fans PyTorch gives a tensor of its shape. */
static int dfa_conv_projection(NetCtx *ctx, const Layer *next, float *D, AsymRng *rng) {
    int k, s, p, K = ctx->classes;
    conv2d_geometry(next, &k, &s, &p);
    int C = next->in.c, H = next->in.h, W = next->in.w, OH = next->out.h, OW = next->out.w;
    size_t kn = (size_t)K * C * k * k;
    float *ker = asym_falloc(kn);
    if (!ker) return ASYM_ERR;
    AsymParam fake = {.fan_in = C * k * k, .fan_out = K * k * k};
    rule_fill_random(&ctx->fb, &fake, ker, kn, rng);
    memset(D, 0, (size_t)K * C * H * W * sizeof *D);
    for (size_t q = 0; q < (size_t)K * C; q++) {
        float *d = D + q * H * W;
        const float *kq = ker + q * k * k;
        for (int oy = 0; oy < OH; oy++)
            for (int ky = 0; ky < k; ky++) {
                int y = oy * s - p + ky;
                if (y < 0 || y >= H) continue;
                for (int ox = 0; ox < OW; ox++)
                    for (int kx = 0; kx < k; kx++) {
                        int x = ox * s - p + kx;
                        if (x >= 0 && x < W) d[y * W + x] += kq[ky * k + kx];
                    }
            }
    }
    free(ker);
    return ASYM_OK;
}

/* The block of layer i of the chain top (the network's, or a residual
 * block's path) ends before the next weight layer or residual block, or at
 * the chain's end; D is (classes, block output): dense (every entry drawn)
 * or, with feedback.dfa: conv, BioTorch's when that layer is a convolution.
 * The block's output activation is kept for rules that learn D (dkp). */
int direct_setup(NetCtx *ctx, Seq *top, int i, AsymRng *rng) {
    Layer *l = top->layers[i];
    int end = i + 1;
    while (end < top->n && !(top->layers[end]->W && top->layers[end]->kind != ASYM_BATCHNORM) && top->layers[end]->kind != ASYM_RESBLOCK) end++;
    end--;
    Shape out = top->layers[end]->out;
    int shape[2] = {ctx->classes, (int)shape_size(out)};
    char name[48];
    snprintf(name, sizeof name, "%s", l->name);
    Feedback *fb = l->fb;
    if (!(fb->D = ctx_feedback(ctx, name, "D", 2, shape))) return ASYM_ERR;
    if (!(fb->dfa_dy = asym_falloc((size_t)ctx->max_batch * shape[1])) || !(fb->direct_in = asym_falloc((size_t)ctx->max_batch * shape[0]))) return ASYM_ERR;
    AsymParam fake = {.fan_in = shape[0], .fan_out = shape[1]};
    Layer *next = end + 1 < top->n ? top->layers[end + 1] : NULL;
    if (ctx->fb.dfa_conv && next && next->kind == ASYM_CONV) {
        if (dfa_conv_projection(ctx, next, fb->D->w, rng)) return ASYM_ERR;
    } else {
        rule_fill_random(&ctx->fb, &fake, fb->D->w, fb->D->n, rng);
    }
    if (!top->dfa_at && !(top->dfa_at = asym_calloc(top->n, sizeof(Layer *)))) return ASYM_ERR;
    top->dfa_at[end] = l;
    fb->direct_out = top->act[end];
    return ASYM_OK;
}

/* s D: a signal (N, classes) through D (classes, block output) */
const float *direct_project(Layer *l, int N, const float *s) {
    Feedback *fb = l->fb;
    int K = fb->D->shape[0], S = fb->D->shape[1];
    gemm(0, 0, N, S, K, 1.0f, s, K, fb->D->w, S, 0.0f, fb->dfa_dy, S);
    return fb->dfa_dy;
}
