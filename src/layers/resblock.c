/* resblock.c: residual blocks of He et al. 2016.
 * Basic block: conv3x3(stride s) bn relu conv3x3 bn, plus shortcut, relu.
 * Bottleneck (ResNet-50 and deeper, torchvision's placement of the stride):
 * conv1x1 bn relu conv3x3(stride s) bn relu conv1x1(x4) bn, plus shortcut, relu.
 * Shortcut: identity when shapes match; otherwise option A (subsample by s
 * and zero-pad channels, (O - C) / 2 in front) or option B (1x1 conv with
 * stride s and batch norm). x is (N, C, H, W), y is (N, O, H/s, W/s),
 * written over the main path's output (the batch norm's backward needs only
 * its input) unless a rule reads that (NetCtx.keep_path_outputs). */
#include <stdlib.h>
#include <string.h>

#include "layers/layers.h"

typedef struct ResBlock {
    Seq main, shortcut;   /* shortcut.n == 0: identity or option A */
    int option_a, stride;
    float *scratch;       /* the backward's buffers, in the arena (below) */
} ResBlock;

/* The block's backward scratch, per sample: dz (out), the gradient after
 * the final relu; with a shortcut path, tmp (in), its input gradient; then
 * the two paths' ping-pong gradients (main's backward ends before the
 * shortcut's starts, so they share them). */
static size_t path_grad_floats(const ResBlock *r) { return r->main.grad_floats > r->shortcut.grad_floats ? r->main.grad_floats : r->shortcut.grad_floats; }
static size_t scratch_floats(const ResBlock *r, Shape in, Shape out) { return shape_size(out) + (r->shortcut.n ? shape_size(in) : 0) + 2 * path_grad_floats(r); }

/* The paths' gradient k (after their layer k) alternate between the two buffers at g. */
static void point_grads(Seq *s, float *g, size_t stride) {
    for (int k = 0; k < s->n; k++) s->grad[k] = g + ((k + 1) & 1) * stride;
}

static void res_forward(Layer *l, const float *x, float *y, int N, const Pass *p) {
    ResBlock *r = l->impl;
    seq_forward(&r->main, x, N, p);
    const float *m = seq_output(&r->main);
    size_t out = shape_size(l->out), n_out = (size_t)N * out;
    if (r->shortcut.n || !r->option_a) {
        const float *s = x;
        if (r->shortcut.n) {
            seq_forward(&r->shortcut, x, N, p);
            s = seq_output(&r->shortcut);
        }
#pragma omp parallel for simd schedule(static) if (n_out > 65536)
        for (size_t i = 0; i < n_out; i++) {
            float v = m[i] + s[i];
            y[i] = v > 0.0f ? v : 0.0f;
        }
        return;
    }
    /* option A: the input subsampled by the stride, channels zero-padded */
    int C = l->in.c, O = l->out.c, H = l->in.h, W = l->in.w, OH = l->out.h, OW = l->out.w, pf = (O - C) / 2, st = r->stride;
#pragma omp parallel for schedule(static)
    for (int no = 0; no < N * O; no++) {
        int n = no / O, c = no % O - pf;
        const float *mp = m + (size_t)no * OH * OW;
        float *yp = y + (size_t)no * OH * OW;
        if (c < 0 || c >= C) {
#pragma omp simd
            for (int i = 0; i < OH * OW; i++) yp[i] = mp[i] > 0.0f ? mp[i] : 0.0f;
            continue;
        }
        const float *xp = x + ((size_t)n * C + c) * H * W;
        for (int h = 0; h < OH; h++) {
            const float *xr = xp + (size_t)h * st * W;
#pragma omp simd
            for (int w = 0; w < OW; w++) {
                float v = mp[h * OW + w] + xr[w * st];
                yp[h * OW + w] = v > 0.0f ? v : 0.0f;
            }
        }
    }
}

static void res_backward(Layer *l, const float *x, const float *y, const float *dy, float *dx, int N, const Pass *p) {
    ResBlock *r = l->impl;
    size_t n_in = (size_t)N * shape_size(l->in), n_out = (size_t)N * shape_size(l->out);
    float *dz = r->scratch, *tmp = dz + n_out, *gb = tmp + (r->shortcut.n ? n_in : 0);
    point_grads(&r->main, gb, (size_t)N * path_grad_floats(r));
    point_grads(&r->shortcut, gb, (size_t)N * path_grad_floats(r));
    relu_backward(dz, y, dy, n_out);
    seq_backward(&r->main, dz, dx, N, p, NULL, NULL);
    const float *s = dz;
    if (r->shortcut.n) {
        seq_backward(&r->shortcut, dz, dx ? tmp : NULL, N, p, NULL, NULL);
        s = tmp;
    }
    if (!dx) return;
    if (r->shortcut.n || !r->option_a) {
#pragma omp parallel for simd schedule(static) if (n_in > 65536)
        for (size_t i = 0; i < n_in; i++) dx[i] += s[i];
        return;
    }
    int C = l->in.c, O = l->out.c, H = l->in.h, W = l->in.w, OH = l->out.h, OW = l->out.w, pf = (O - C) / 2, st = r->stride;
#pragma omp parallel for schedule(static)
    for (int nc = 0; nc < N * C; nc++) {
        int n = nc / C, c = nc % C;
        float *xp = dx + (size_t)nc * H * W;
        const float *gp = dz + ((size_t)n * O + c + pf) * OH * OW;
        for (int h = 0; h < OH; h++) {
            float *xr = xp + (size_t)h * st * W;
#pragma omp simd
            for (int w = 0; w < OW; w++) xr[w * st] += gp[h * OW + w];
        }
    }
}

static void res_free(Layer *l) {
    ResBlock *r = l->impl;
    if (!r) return;
    seq_free(&r->main);
    seq_free(&r->shortcut);
}

Seq *resblock_path(Layer *l, int k) {
    ResBlock *r = l->impl;
    Seq *s = k ? &r->shortcut : &r->main;
    return s->n ? s : NULL;
}

static const LayerOps res_ops = {.name = "resblock", .forward = res_forward, .backward = res_backward, .free = res_free};

static AsymLayerSpec conv_spec(int out, int k, int stride, int line) {
    return (AsymLayerSpec){.kind = ASYM_CONV, .out = out, .k = k, .stride = stride, .pad = k / 2, .line = line};
}

Layer *resblock_create(const AsymLayerSpec *s, Shape in, NetCtx *ctx, const char *name) {
    int O = s->out, st = s->stride ? s->stride : 1;
    if (O <= 0 || st <= 0 || (s->bottleneck && O % 4) || O < in.c) {
        asym_fail("layer %s (line %d): resblock needs out >= its %d input channels (a multiple of 4 for bottlenecks) and stride > 0", name, s->line, in.c);
        return NULL;
    }
    AsymLayerSpec bn = {.kind = ASYM_BATCHNORM, .momentum = s->momentum, .eps = s->eps, .line = s->line};
    AsymLayerSpec relu = {.kind = ASYM_RELU, .line = s->line};
    AsymLayerSpec main[8];
    int nm = 0;
    if (s->bottleneck) {
        int w = O / 4;
        main[nm++] = conv_spec(w, 1, 1, s->line), main[nm++] = bn, main[nm++] = relu;
        main[nm++] = conv_spec(w, 3, st, s->line), main[nm++] = bn, main[nm++] = relu;
        main[nm++] = conv_spec(O, 1, 1, s->line), main[nm++] = bn;
    } else {
        main[nm++] = conv_spec(O, 3, st, s->line), main[nm++] = bn, main[nm++] = relu;
        main[nm++] = conv_spec(O, 3, 1, s->line), main[nm++] = bn;
    }
    for (int i = 0; i < nm; i++) main[i].lr_scale = s->lr_scale, main[i].rule = s->rule;
    Layer *l = layer_new(&res_ops, s, in, in, ctx, name, sizeof(ResBlock));
    if (!l) return NULL;
    ResBlock *r = l->impl;
    r->stride = st;
    char pre[64];
    snprintf(pre, sizeof pre, "%s.main", name);
    if (seq_build(&r->main, main, nm, in, ctx, pre, 1)) goto fail;
    l->out = r->main.out;
    if (!ctx->keep_path_outputs) l->out_at = &r->main.act[nm - 1]; /* y = relu(main + shortcut) in place */
    int same = st == 1 && in.c == O;
    if (!same && s->shortcut == ASYM_SHORTCUT_A) {
        r->option_a = 1;
    } else if (!same) {
        AsymLayerSpec sc[2] = {conv_spec(O, 1, st, s->line), bn};
        sc[0].lr_scale = sc[1].lr_scale = s->lr_scale;
        sc[0].rule = s->rule;
        snprintf(pre, sizeof pre, "%s.shortcut", name);
        if (seq_build(&r->shortcut, sc, 2, in, ctx, pre, 1)) goto fail;
    }
    if (arena_scratch(ctx, &r->scratch, (size_t)ctx->max_batch * scratch_floats(r, in, l->out), l)) goto fail;
    return l;
fail:
    return layer_free(l);
}
