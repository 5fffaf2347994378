/* init.c: weight initialization with PyTorch's definitions
 * (torch.nn.init): Xavier/Glorot uniform bound sqrt(6 / (fan_in + fan_out))
 * and normal std sqrt(2 / (fan_in + fan_out)); He/Kaiming (ReLU gain)
 * uniform bound sqrt(6 / fan_in) and normal std sqrt(2 / fan_in). The
 * "torch" scheme is nn.Linear/nn.Conv2d's default: kaiming_uniform with
 * a = sqrt(5), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)), for weights and
 * biases. Batch norm starts at gamma = 1, beta = 0, running var 1. */
#include <math.h>

#include "layers/layers.h"

static void fill_uniform(float *w, size_t n, double bound, AsymRng *rng) {
    for (size_t i = 0; i < n; i++) w[i] = (float)((2.0 * rng_uniform(rng) - 1.0) * bound);
}

static void fill_normal(float *w, size_t n, double std, AsymRng *rng) {
    for (size_t i = 0; i < n; i++) w[i] = (float)(std * rng_normal(rng));
}

void init_params(NetCtx *ctx, AsymInit init, int zero_bias, AsymRng *rng) {
    for (int i = 0; i < ctx->n_params; i++) {
        AsymParam *p = ctx->params[i];
        double fi = p->fan_in > 0 ? p->fan_in : 1, fo = p->fan_out > 0 ? p->fan_out : 1;
        switch (p->role) {
        case ASYM_P_WEIGHT:
            switch (init) {
            case ASYM_INIT_XAVIER_UNIFORM: fill_uniform(p->w, p->n, sqrt(6.0 / (fi + fo)), rng); break;
            case ASYM_INIT_XAVIER_NORMAL: fill_normal(p->w, p->n, sqrt(2.0 / (fi + fo)), rng); break;
            case ASYM_INIT_HE_UNIFORM: fill_uniform(p->w, p->n, sqrt(6.0 / fi), rng); break;
            case ASYM_INIT_HE_NORMAL: fill_normal(p->w, p->n, sqrt(2.0 / fi), rng); break;
            default: fill_uniform(p->w, p->n, 1.0 / sqrt(fi), rng); break;
            }
            break;
        case ASYM_P_BIAS:
            if (zero_bias)
                for (size_t j = 0; j < p->n; j++) p->w[j] = 0.0f;
            else
                fill_uniform(p->w, p->n, 1.0 / sqrt(fi), rng);
            break;
        case ASYM_P_BN_SCALE:
            for (size_t j = 0; j < p->n; j++) p->w[j] = 1.0f;
            break;
        default:
            for (size_t j = 0; j < p->n; j++) p->w[j] = 0.0f;
            break;
        }
    }
    for (int i = 0; i < ctx->n_buffers; i++) {
        AsymParam *p = ctx->buffers[i];
        float v = p->role == ASYM_P_RUNNING_VAR ? 1.0f : 0.0f;
        for (size_t j = 0; j < p->n; j++) p->w[j] = v;
    }
}
