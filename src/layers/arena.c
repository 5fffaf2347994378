/* arena.c: the memory plan. Every activation, every gradient between the
 * whole network's layers and every layer's backward scratch (a residual
 * block's) lie in one arena, allocated once the network is built.
 * Activations take their own places in creation order (a layer's inner
 * activations before its output), so that when the backward pass reaches
 * layer i, everything placed after layer i's output is dead: the gradients
 * and scratch go there, as PyTorch frees a saved tensor once its layer's
 * backward is done. The gradient with respect to act[k] lives from layer
 * k+1's backward (which writes it) to layer k's (which reads it); it is
 * placed after layer k+1's output, clear of the gradient layer k+1 reads,
 * of the scratch of layers k and k+1, and of the network's output (the
 * logits, read after the step). A layer's workspace (a convolution's, and
 * a residual block's layers' one for them all) goes after its output too:
 * in the forward pass what lies there is not computed yet, in the backward
 * pass dead; clear of the gradients and scratch its backward uses. With
 * keep set (asymbp probe reads every activation after the step) nothing is
 * placed over an activation. */
#include <stdlib.h>

#include "layers/layers.h"

/* Every place, a multiple of 16 floats (64 bytes, asym_falloc's alignment). */
static size_t round16(size_t n) { return (n + 15) & ~(size_t)15; }

static int add_use(NetCtx *ctx, ArenaUse u) {
    if (ctx->n_uses == ctx->cap_uses) {
        int nc = ctx->cap_uses ? 2 * ctx->cap_uses : 64;
        ArenaUse *p = realloc(ctx->uses, (size_t)nc * sizeof *p);
        if (!p) return asym_fail("out of memory");
        ctx->uses = p, ctx->cap_uses = nc;
    }
    ctx->uses[ctx->n_uses++] = u;
    return ASYM_OK;
}

int arena_act(NetCtx *ctx, float **at, size_t floats) {
    size_t off = ctx->arena_acts;
    ctx->arena_acts += round16(floats);
    return add_use(ctx, (ArenaUse){.at = at, .off = off, .floats = floats});
}

int arena_alias(NetCtx *ctx, float **at, float **same) {
    for (int i = ctx->n_uses - 1; i >= 0; i--)
        if (ctx->uses[i].at == same) return add_use(ctx, (ArenaUse){.at = at, .off = ctx->uses[i].off, .floats = ctx->uses[i].floats});
    return asym_fail("internal error: an activation aliased before it was placed");
}

int arena_scratch(NetCtx *ctx, float **at, size_t floats, const Layer *owner) {
    return add_use(ctx, (ArenaUse){.at = at, .floats = floats, .owner = owner, .planned = 1});
}

/* The first offset from lo where n floats overlap none of the k intervals
 * [a[j], a[j] + len[j]). */
static size_t place(size_t lo, size_t n, const size_t *a, const size_t *len, int k) {
    for (int moved = 1; moved;) {
        moved = 0;
        for (int j = 0; j < k; j++)
            if (len[j] && lo < a[j] + len[j] && a[j] < lo + n) lo = a[j] + len[j], moved = 1;
    }
    return lo;
}

/* The workspace top-level layer l and the layers inside it need; with at
 * set, each of them takes at as its own. */
static size_t layer_tree_work(Layer *l, float *at) {
    size_t w = l->work_floats;
    if (at && w) l->work = at;
    for (int k = 0; l->kind == ASYM_RESBLOCK && k < 2; k++) {
        Seq *s = resblock_path(l, k);
        for (int j = 0; s && j < s->n; j++) {
            size_t v = layer_tree_work(s->layers[j], at);
            if (v > w) w = v;
        }
    }
    return w;
}

/* The use that places top-level layer i's output act[i]. */
static ArenaUse *act_use(const NetCtx *ctx, const Seq *s, int i) {
    for (int u = 0; u < ctx->n_uses; u++)
        if (ctx->uses[u].at == &s->act[i]) return &ctx->uses[u];
    return NULL;
}

int arena_alloc(NetCtx *ctx, Seq *top, int keep) {
    size_t total = ctx->arena_acts, B = (size_t)ctx->max_batch, *woff = NULL;
    int n = top ? top->n : 0;
    size_t *goff = calloc(n ? n : 1, sizeof *goff), *glen = calloc(n ? n : 1, sizeof *glen);
    if (!goff || !glen) return free(goff), free(glen), asym_fail("out of memory");
    if (top && n) {
        size_t lo_all = keep ? total : 0;
        /* the logits (read after the step) go past everything else, so
         * that the activations' tail is free for the plan; unless they
         * share their place with another activation: then that is kept clear */
        ArenaUse *lg = act_use(ctx, top, n - 1);
        int shared = 0;
        for (int u = 0; lg && u < ctx->n_uses; u++) shared |= &ctx->uses[u] != lg && ctx->uses[u].off == lg->off && !ctx->uses[u].planned;
        size_t logit_off = lg ? lg->off : 0, logit_len = lg && shared ? round16(lg->floats) : 0;
        /* scratch of top-level layer i, if any (one use per layer) */
        int *scr = malloc(sizeof(int) * (size_t)n);
        woff = calloc(n, sizeof *woff);
        if (!scr || !woff) return free(scr), free(woff), free(goff), free(glen), asym_fail("out of memory");
        for (int i = 0; i < n; i++) {
            scr[i] = -1;
            for (int u = 0; u < ctx->n_uses; u++)
                if (ctx->uses[u].planned && ctx->uses[u].owner == top->layers[i]) scr[i] = u;
        }
        /* from the top down, what layer i's backward uses besides the
         * activations below end[i]: the gradient it reads (placed already),
         * its scratch and workspace, then the gradient it writes */
        for (int i = n - 1; i >= 0; i--) {
            size_t a[4] = {logit_off, i < n - 1 ? goff[i] : 0}, len[4] = {logit_len, i < n - 1 ? glen[i] : 0};
            int k = 2;
            size_t lo = top->end[i] > lo_all ? top->end[i] : lo_all;
            if (scr[i] >= 0) {
                ArenaUse *u = &ctx->uses[scr[i]];
                u->off = place(lo, round16(u->floats), a, len, k);
                u->planned = 0;
                a[k] = u->off, len[k++] = round16(u->floats);
            }
            size_t w = round16(layer_tree_work(top->layers[i], NULL));
            woff[i] = SIZE_MAX;
            if (w) woff[i] = place(lo, w, a, len, k), a[k] = woff[i], len[k++] = w;
            if (i) {
                glen[i - 1] = round16(B * shape_size(top->layers[i - 1]->out));
                goff[i - 1] = place(lo, glen[i - 1], a, len, k);
            }
            for (int j = 1; j < k; j++)
                if (a[j] + len[j] > total) total = a[j] + len[j];
            if (i && goff[i - 1] + glen[i - 1] > total) total = goff[i - 1] + glen[i - 1];
        }
        free(scr);
        if (lg && !shared) lg->off = total, total += round16(lg->floats);
    }
    /* scratch of layers outside a planned chain (a layer built alone) after every activation, shared */
    for (int u = 0; u < ctx->n_uses; u++)
        if (ctx->uses[u].planned) {
            ctx->uses[u].off = ctx->arena_acts;
            if (ctx->arena_acts + round16(ctx->uses[u].floats) > total) total = ctx->arena_acts + round16(ctx->uses[u].floats);
        }
    ctx->arena = asym_falloc(total ? total : 1);
    ctx->arena_size = total;
    if (!ctx->arena) return free(goff), free(glen), free(woff), ASYM_ERR;
    for (int u = 0; u < ctx->n_uses; u++) *ctx->uses[u].at = ctx->arena + ctx->uses[u].off;
    for (int k = 0; k + 1 < n; k++) top->grad[k] = ctx->arena + goff[k];
    for (int i = 0; woff && i < n; i++)
        if (woff[i] != SIZE_MAX) layer_tree_work(top->layers[i], ctx->arena + woff[i]);
    free(goff), free(glen), free(woff);
    return ASYM_OK;
}
