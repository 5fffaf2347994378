/* dropout.c: inverted dropout (Srivastava et al. 2014): in training each
 * value is kept with probability 1 - p and scaled by 1 / (1 - p); in
 * evaluation the layer is the identity. The mask comes from the pass's
 * stream (the network's dropout generator), so a seed fixes it; under data-parallel training each rank
 * draws the whole global batch's mask and keeps its own rows. */
#include <stdlib.h>
#include <string.h>

#include "layers/layers.h"

typedef struct Dropout {
    float p;
    float *mask; /* (max_batch, in): 0 or 1 / (1 - p) */
} Dropout;

static void dropout_forward(Layer *l, const float *x, float *y, int N, const Pass *p) {
    Dropout *d = l->impl;
    size_t n = (size_t)N * shape_size(l->in);
    if (!p->train || d->p == 0.0f) {
        memcpy(y, x, sizeof(float) * n);
        for (size_t i = 0; i < n; i++) d->mask[i] = 1.0f;
        return;
    }
    float scale = 1.0f / (1.0f - d->p);
    /* a rank's share of a global batch takes its rows of the global mask */
    size_t per = shape_size(l->in), skip = (size_t)p->rows_before * per, after = (size_t)p->rows_after * per;
    for (size_t i = 0; i < skip; i++) rng_next(p->rng);
    for (size_t i = 0; i < n; i++) {
        d->mask[i] = rng_uniform(p->rng) < d->p ? 0.0f : scale;
        y[i] = x[i] * d->mask[i];
    }
    for (size_t i = 0; i < after; i++) rng_next(p->rng);
}

static void dropout_backward(Layer *l, const float *x, const float *y, const float *dy, float *dx, int N, const Pass *p) {
    Dropout *d = l->impl;
    size_t n = (size_t)N * shape_size(l->in);
    if (dx)
        for (size_t i = 0; i < n; i++) dx[i] = dy[i] * d->mask[i];
}

static void dropout_free(Layer *l) {
    Dropout *d = l->impl;
    if (d) free(d->mask);
}

static const LayerOps dropout_ops = {.name = "dropout", .forward = dropout_forward, .backward = dropout_backward, .free = dropout_free};

Layer *dropout_create(const AsymLayerSpec *s, Shape in, NetCtx *ctx, const char *name) {
    if (!(s->p >= 0.0f && s->p < 1.0f)) {
        asym_fail("layer %s (line %d): dropout p must be in [0, 1), got %g", name, s->line, s->p);
        return NULL;
    }
    Layer *l = layer_new(&dropout_ops, s, in, in, ctx, name, sizeof(Dropout));
    if (!l) return NULL;
    Dropout *d = l->impl;
    d->p = s->p;
    d->mask = asym_falloc((size_t)ctx->max_batch * shape_size(in));
    return d->mask ? l : layer_free(l);
}
