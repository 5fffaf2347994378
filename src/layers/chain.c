/* chain.c: a chain of layers (Seq): the whole network, and the two paths
 * of a residual block. Its activations and gradients are places in the
 * network's arena (arena.c). */
#include <stdlib.h>
#include <string.h>

#include "layers/layers.h"

int seq_build(Seq *s, const AsymLayerSpec *specs, int n, Shape in, NetCtx *ctx, const char *prefix, int relu_in_place) {
    memset(s, 0, sizeof *s);
    s->in = s->out = in;
    s->layers = asym_calloc(n ? n : 1, sizeof(Layer *));
    s->act = asym_calloc(n ? n : 1, sizeof(float *));
    s->grad = asym_calloc(n ? n : 1, sizeof(float *));
    s->end = asym_calloc(n ? n : 1, sizeof(size_t));
    if (!s->layers || !s->act || !s->grad || !s->end) return ASYM_ERR;
    size_t biggest = shape_size(in);
    for (int i = 0; i < n; i++) {
        char name[40];
        if (prefix && *prefix) snprintf(name, sizeof name, "%s.%d", prefix, i);
        else snprintf(name, sizeof name, "%d", i);
        Layer *l = layer_create(&specs[i], s->out, ctx, name);
        if (!l) return ASYM_ERR;
        s->layers[s->n++] = l;
        s->out = l->out;
        if (l->out_at) {
            if (arena_alias(ctx, &s->act[i], l->out_at)) return ASYM_ERR;
        } else if (relu_in_place && i && l->kind == ASYM_RELU && s->layers[i - 1]->kind == ASYM_BATCHNORM) {
            if (arena_alias(ctx, &s->act[i], &s->act[i - 1])) return ASYM_ERR;
        } else if (arena_act(ctx, &s->act[i], (size_t)ctx->max_batch * shape_size(l->out))) {
            return ASYM_ERR;
        }
        s->end[i] = ctx->arena_acts;
        if (shape_size(l->out) > biggest) biggest = shape_size(l->out);
    }
    s->grad_floats = biggest;
    return ASYM_OK;
}

void seq_forward(Seq *s, const float *x, int N, const Pass *p) {
    s->x = x;
    for (int i = 0; i < s->n; i++) s->layers[i]->ops->forward(s->layers[i], i ? s->act[i - 1] : x, s->act[i], N, p);
}

/* Backward through the chain. Under DFA the gradient at the end of each
 * DFA block is the projected output error, so the layer after it need not
 * compute its input gradient. */
void seq_backward(Seq *s, const float *dy, float *dx, int N, const Pass *p, void (*done)(void *arg, int i), void *done_arg) {
    const float *g = dy;
    int dfa = s->dfa_at && !p->exact;
    for (int i = s->n - 1; i >= 0; i--) {
        Layer *l = s->layers[i];
        if (dfa && s->dfa_at[i]) g = s->dfa_at[i]->direct_error(s->dfa_at[i], N, p);
        float *out = i ? s->grad[i - 1] : dx;
        if (dfa && i && s->dfa_at[i - 1]) out = NULL;
        if (p->record && l->index >= 0) memcpy(p->record[l->index], g, sizeof(float) * N * shape_size(l->out));
        l->ops->backward(l, i ? s->act[i - 1] : s->x, s->act[i], g, out, N, p);
        if (l->feedback_grad && p->train && !p->exact) l->feedback_grad(l, i ? s->act[i - 1] : s->x, s->act[i], g, N, p);
        if (done) done(done_arg, i);
        g = out;
    }
}

void seq_free(Seq *s) {
    for (int i = 0; i < s->n; i++) {
        layer_free(s->layers[i]);
    }
    free(s->layers);
    free(s->act);
    free(s->dfa_at);
    free(s->grad);
    free(s->end);
    memset(s, 0, sizeof *s);
}
