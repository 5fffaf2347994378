/* brsf.c: batchwise random-magnitude sign-concordant feedback (Liao et al.
 * 2016): B = |M| sign(W), M redrawn after every batch. */
#include "rules/rules.h"

#include <math.h>

/* |M| redrawn: |U(-b, b)| is U(0, b), 24 random bits per entry hashed from
 * its index and one draw of the layer's generator, and B in the same pass.
 * The normal initializations take the general (sequential) draw, and B
 * follows from M. */
static void brsf_redraw(Layer *l) {
    Feedback *fb = l->fb;
    size_t n = l->W->n;
    int normal;
    float b = (float)rule_init_bound(&l->ctx->fb, l->W, &normal) * 0x1p-24f, *M = fb->M, *B = fb->B->w;
    const float *W = l->W->w, *sg = fb->sign;
    if (normal) {
        rule_fill_random(&l->ctx->fb, l->W, M, n, &fb->rng);
        for (size_t i = 0; i < n; i++) M[i] = fabsf(M[i]);
        sign_from_w(l);
        return;
    }
    uint32_t seed = rng_u32(&fb->rng);
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        float m = b * (float)(rule_hash32((uint32_t)i * 0x9e3779b9U + seed) >> 8);
        M[i] = m;
        B[i] = m * rule_sign(W[i]) * (sg ? sg[i] : 1.0f);
    }
}

/* M is drawn twice before training: once with the other sign rules' draw
 * (sign_init), then redrawn as after every batch. */
static int brsf_init(Layer *l, size_t *floats, size_t *doubles) {
    if (sign_init(l, 1)) return ASYM_ERR;
    brsf_redraw(l);
    return ASYM_OK;
}

const Rule RULE_BRSF = {.name = "brsf", .flags = RULE_OWN_B, .init = brsf_init, .after_step = brsf_redraw, .follow_weights = sign_follow_weights};
