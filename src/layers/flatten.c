/* flatten.c: (N, C, H, W) -> (N, C*H*W, 1, 1). The memory layout does not
 * change, so both passes are copies. */
#include <string.h>

#include "layers/layers.h"

static void flatten_forward(Layer *l, const float *x, float *y, int N, const Pass *p) {
    memcpy(y, x, sizeof(float) * N * shape_size(l->in));
}

static void flatten_backward(Layer *l, const float *x, const float *y, const float *dy, float *dx, int N, const Pass *p) {
    if (dx) memcpy(dx, dy, sizeof(float) * N * shape_size(l->in));
}

static const LayerOps flatten_ops = {.name = "flatten", .forward = flatten_forward, .backward = flatten_backward};

Layer *flatten_create(const AsymLayerSpec *s, Shape in, NetCtx *ctx, const char *name) {
    Shape out = {(int)shape_size(in), 1, 1};
    return layer_new(&flatten_ops, s, in, out, ctx, name, 0);
}
