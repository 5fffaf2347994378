/* layer.c: what every layer kind shares: creation and freeing, the
 * registration of its tensors with the network (storage is assigned after
 * building, in creation order), and the input-gradient clip. */
#include <stdlib.h>
#include <string.h>

#include "layers/layers.h"

Layer *layer_new(const LayerOps *ops, const AsymLayerSpec *spec, Shape in, Shape out, NetCtx *ctx, const char *name, size_t impl_size) {
    Layer *l = asym_calloc(1, sizeof(Layer));
    if (!l) return NULL;
    l->ops = ops;
    l->kind = spec->kind;
    l->in = in;
    l->out = out;
    l->ctx = ctx;
    l->index = -1;
    snprintf(l->name, sizeof l->name, "%s", name);
    if (impl_size && !(l->impl = asym_calloc(1, impl_size))) {
        free(l);
        return NULL;
    }
    return l;
}

Layer *layer_free(Layer *l) {
    if (!l) return NULL;
    if (l->ops->free) l->ops->free(l);
    if (l->free_fb) l->free_fb(l->fb);
    free(l->impl);
    free(l);
    return NULL;
}

static int grow(void **arr, int *cap, int n, size_t elem) {
    if (n < *cap) return ASYM_OK;
    int nc = *cap ? *cap * 2 : 64;
    void *p = realloc(*arr, nc * elem);
    if (!p) return asym_fail("out of memory");
    *arr = p;
    *cap = nc;
    return ASYM_OK;
}

static AsymParam *param_new(const char *layer, const char *suffix, AsymParamRole role, int ndim, const int *shape) {
    AsymParam *p = asym_calloc(1, sizeof(AsymParam));
    if (!p) return NULL;
    snprintf(p->name, sizeof p->name, "%s.%s", layer, suffix);
    p->role = role;
    p->ndim = ndim;
    p->n = 1;
    for (int i = 0; i < ndim; i++) p->shape[i] = shape[i], p->n *= (size_t)shape[i];
    p->decay = 1;
    p->lr_scale = 1.0f;
    return p;
}

AsymParam *ctx_param(NetCtx *ctx, const char *layer, const char *suffix, AsymParamRole role, int ndim, const int *shape) {
    if (grow((void **)&ctx->params, &ctx->cap_params, ctx->n_params, sizeof(AsymParam *))) return NULL;
    AsymParam *p = param_new(layer, suffix, role, ndim, shape);
    if (p) ctx->params[ctx->n_params++] = p;
    return p;
}

/* A tensor with storage of its own (buffers, feedback matrices), added to list. */
static AsymParam *own_tensor(AsymParam ***list, int *n, int *cap, const char *layer, const char *suffix, AsymParamRole role, int ndim, const int *shape) {
    if (grow((void **)list, cap, *n, sizeof(AsymParam *))) return NULL;
    AsymParam *p = param_new(layer, suffix, role, ndim, shape);
    if (!p) return NULL;
    if (!(p->w = asym_falloc(p->n))) {
        free(p);
        return NULL;
    }
    (*list)[(*n)++] = p;
    return p;
}

AsymParam *ctx_buffer(NetCtx *ctx, const char *layer, const char *suffix, AsymParamRole role, int ndim, const int *shape) {
    return own_tensor(&ctx->buffers, &ctx->n_buffers, &ctx->cap_buffers, layer, suffix, role, ndim, shape);
}

AsymParam *ctx_feedback(NetCtx *ctx, const char *layer, const char *suffix, int ndim, const int *shape) {
    return own_tensor(&ctx->feedback, &ctx->n_feedback, &ctx->cap_feedback, layer, suffix, ASYM_P_FEEDBACK, ndim, shape);
}

static int ctx_add_weight_layer(NetCtx *ctx, Layer *l) {
    if (grow((void **)&ctx->weight_layers, &ctx->cap_weight_layers, ctx->n_weight_layers, sizeof(Layer *))) return ASYM_ERR;
    l->index = ctx->n_weight_layers;
    ctx->weight_layers[ctx->n_weight_layers++] = l;
    return ASYM_OK;
}

int layer_add_weights(Layer *l, const AsymLayerSpec *s, int ndim, const int *wshape, int fan_in, int fan_out) {
    l->W = ctx_param(l->ctx, l->name, "W", ASYM_P_WEIGHT, ndim, wshape);
    if (l->W) l->W->fan_in = fan_in, l->W->fan_out = fan_out;
    if (s->bias) {
        l->b = ctx_param(l->ctx, l->name, "b", ASYM_P_BIAS, 1, &s->out);
        if (l->b) l->b->fan_in = fan_in;
    }
    return !l->W || (s->bias && !l->b) || ctx_add_weight_layer(l->ctx, l) ? ASYM_ERR : ASYM_OK;
}

void layer_need_work(Layer *l, size_t floats) {
    if (floats > l->work_floats) l->work_floats = floats;
}

int ctx_alloc_scratch(NetCtx *ctx, Seq *top, int keep) {
    if (arena_alloc(ctx, top, keep)) return ASYM_ERR;
    /* the shared workspace, for the weight layers the plan gave no place */
    ctx->work_size = 0;
    for (int i = 0; i < ctx->n_weight_layers; i++) {
        const Layer *l = ctx->weight_layers[i];
        if (!l->work && l->work_floats > ctx->work_size) ctx->work_size = l->work_floats;
    }
    ctx->work = asym_falloc(ctx->work_size ? ctx->work_size : 1);
    return ctx->work ? ASYM_OK : ASYM_ERR;
}

void ctx_free_scratch(NetCtx *ctx) {
    free(ctx->work), free(ctx->arena), free(ctx->uses);
    ctx->work = ctx->arena = NULL, ctx->uses = NULL, ctx->n_uses = ctx->cap_uses = 0;
}

void layer_clip_dx(const Layer *l, const Pass *p, float *dx, int N) {
    float c = l->ctx->fb.clip_dx;
    if (c <= 0 || p->exact) return;
    size_t n = (size_t)N * shape_size(l->in);
    double norm = vec_norm(dx, n);
    if (norm > c) {
        float k = (float)(c / norm);
        for (size_t i = 0; i < n; i++) dx[i] *= k;
    }
}
