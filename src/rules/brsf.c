/* brsf.c: batchwise random-magnitude sign-concordant feedback (Liao et al.
 * 2016): B = |M| sign(W), M redrawn after every batch. M lives only in B
 * (|B| is M wherever W is not zero), so each redraw writes B alone. */
#include "rules/rules.h"

#include <math.h>

/* B = |B| sign(W), times the pattern of discordant signs when there is one:
 * B's magnitudes on W's signs */
static void brsf_take_signs(Layer *l) {
    size_t n = l->W->n;
    const float *W = l->W->w, *sg = l->fb->sign;
    float *B = l->fb->B->w;
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) B[i] = fabsf(B[i]) * rule_sign(W[i]) * (sg ? sg[i] : 1.0f);
}

/* |M| redrawn: |U(-b, b)| is U(0, b), 24 random bits per entry hashed from
 * its index and one draw of the layer's generator, and B in the same pass.
 * The normal initializations take the general (sequential) draw into B. */
static void brsf_redraw(Layer *l) {
    Feedback *fb = l->fb;
    size_t n = l->W->n;
    int normal;
    float b = (float)rule_init_bound(&l->ctx->fb, l->W, &normal) * 0x1p-24f, *B = fb->B->w;
    const float *W = l->W->w, *sg = fb->sign;
    if (normal) {
        rule_fill_random(&l->ctx->fb, l->W, B, n, &fb->rng);
        brsf_take_signs(l);
        return;
    }
    uint32_t seed = rng_u32(&fb->rng);
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) B[i] = b * (float)(rule_hash32((uint32_t)i * 0x9e3779b9U + seed) >> 8) * rule_sign(W[i]) * (sg ? sg[i] : 1.0f);
}

/* M is drawn twice before training: once with the other sign rules' draw
 * (the draw sign_init makes for frsf's M, made here into B and dropped, so
 * that the generator reaches the sign pattern and the first redraw in the
 * same state), then redrawn as after every batch. */
static int brsf_init(Layer *l, size_t *floats, size_t *doubles) {
    rule_fill_random(&l->ctx->fb, l->W, l->fb->B->w, l->W->n, &l->fb->rng);
    if (sign_init(l, 0)) return ASYM_ERR;
    brsf_redraw(l);
    return ASYM_OK;
}

/* A loaded W: B takes its signs and keeps its magnitudes (a loaded B's,
 * or the last redraw's). */
static void brsf_follow_weights(Layer *l, int b_loaded) {
    brsf_take_signs(l);
    if (l->ctx->fb.norm_feedback) rule_scale_to(l->fb->B->w, l->W->n, vec_norm(l->W->w, l->W->n));
}

const Rule RULE_BRSF = {.name = "brsf", .flags = RULE_OWN_B, .init = brsf_init, .after_step = brsf_redraw, .follow_weights = brsf_follow_weights};
