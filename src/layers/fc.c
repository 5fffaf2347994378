/* fc.c: fully connected layer y = x W^T + b.
 * x is (N, I) (any input shape is read flat), W is (O, I), b is (O), y is (N, O).
 * The input gradient uses the feedback module's matrix B (W's shape):
 * dx = dy B, so exact backpropagation is B = W. */
#include "layers/layers.h"

static void fc_forward(Layer *l, const float *x, float *y, int N, const Pass *p) {
    int I = (int)shape_size(l->in), O = l->out.c;
    int bias = l->b && !p->no_bias;
    if (bias) {
        for (int n = 0; n < N; n++)
            for (int o = 0; o < O; o++) y[(size_t)n * O + o] = l->b->w[o];
    }
    gemm(0, 1, N, O, I, 1.0f, x, I, l->W->w, I, bias ? 1.0f : 0.0f, y, O);
}

void fc_backward_weight(Layer *l, const float *x, const float *dy, int N, float *dW, float *db) {
    int I = (int)shape_size(l->in), O = l->out.c;
    gemm(1, 0, O, I, N, 1.0f, dy, O, x, I, 1.0f, dW, I); /* dW (O, I) += dy^T x */
    if (db)
        for (int n = 0; n < N; n++)
            for (int o = 0; o < O; o++) db[o] += dy[(size_t)n * O + o];
}

void fc_backward_input(Layer *l, const float *B, const float *dy, float *dx, int N) {
    int I = (int)shape_size(l->in), O = l->out.c;
    gemm(0, 0, N, I, O, 1.0f, dy, O, B, I, 0.0f, dx, I); /* dx (N, I) = dy B */
}

static void fc_backward(Layer *l, const float *x, const float *y, const float *dy, float *dx, int N, const Pass *p) {
    fc_backward_weight(l, x, dy, N, l->W->g, l->b ? l->b->g : NULL);
    if (dx) {
        fc_backward_input(l, layer_feedback_matrix(l, p), dy, dx, N);
        layer_clip_dx(l, p, dx, N);
    }
}

static const LayerOps fc_ops = {.name = "fc", .forward = fc_forward, .backward = fc_backward, .backward_weight = fc_backward_weight, .backward_input = fc_backward_input};

Layer *fc_create(const AsymLayerSpec *s, Shape in, NetCtx *ctx, const char *name) {
    if (s->out <= 0) {
        asym_fail("layer %s (line %d): fc needs out > 0", name, s->line);
        return NULL;
    }
    Shape out = {s->out, 1, 1};
    Layer *l = layer_new(&fc_ops, s, in, out, ctx, name, 0);
    if (!l) return NULL;
    int I = (int)shape_size(in);
    int wshape[2] = {s->out, I};
    return layer_add_weights(l, s, 2, wshape, I, s->out) ? layer_free(l) : l;
}
