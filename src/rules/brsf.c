/* brsf.c: batchwise random-magnitude sign-concordant feedback (Liao et al.
 * 2016): B = |M| sign(W), M redrawn after every batch. M lives only in B
 * (|B| is M wherever W is not zero), so each redraw writes B alone. */
#include "rules/rules.h"

#include <math.h>

/* Each pass below runs over blocks of B, a loop per case within a block so
 * that each vectorizes (times 1 without a pattern of discordant signs:
 * the same floats). */
#define BRSF_BLOCK 1024

/* B = |B| sign(W), times the pattern of discordant signs when there is
 * one: B's magnitudes on W's signs, over [lo, hi) */
static void take_signs(float *B, const float *W, const float *sg, size_t lo, size_t hi) {
    if (sg)
#pragma omp simd
        for (size_t i = lo; i < hi; i++) B[i] = fabsf(B[i]) * rule_sign(W[i]) * sg[i];
    else
#pragma omp simd
        for (size_t i = lo; i < hi; i++) B[i] = fabsf(B[i]) * rule_sign(W[i]);
}

/* B = b h(i) sign(W), h(i) the top 24 bits of the hash of i and the seed
 * (exact in a float, and in an int: the conversion vectorizes), times the
 * pattern, over [lo, hi); the hash's multiplications are the cost, twice
 * as fast eight lanes wide */
ASYM_AVX2_CLONE static void draw_signed(float *B, const float *W, const float *sg, float b, uint32_t seed, size_t lo, size_t hi) {
    if (sg)
#pragma omp simd
        for (size_t i = lo; i < hi; i++) B[i] = b * (float)(int32_t)(rule_hash32((uint32_t)i * 0x9e3779b9U + seed) >> 8) * rule_sign(W[i]) * sg[i];
    else
#pragma omp simd
        for (size_t i = lo; i < hi; i++) B[i] = b * (float)(int32_t)(rule_hash32((uint32_t)i * 0x9e3779b9U + seed) >> 8) * rule_sign(W[i]);
}

static void brsf_take_signs(Layer *l) {
    size_t n = l->W->n, blocks = (n + BRSF_BLOCK - 1) / BRSF_BLOCK;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t k = 0; k < blocks; k++) take_signs(l->fb->B->w, l->W->w, l->fb->sign, k * BRSF_BLOCK, k * BRSF_BLOCK + BRSF_BLOCK < n ? k * BRSF_BLOCK + BRSF_BLOCK : n);
}

/* After every step, |M| redrawn: |U(-b, b)| is U(0, b), 24 random bits
 * per entry hashed from its index and one draw of the layer's generator
 * (kept: brsf_refresh makes B from it). The normal initializations take
 * the general (sequential) draw into B, to which brsf_refresh gives W's
 * signs. */
static void brsf_redraw(Layer *l) {
    int normal;
    rule_init_bound(&l->ctx->fb, l->W, &normal);
    if (normal) rule_fill_random(&l->ctx->fb, l->W, l->fb->B->w, l->W->n, &l->fb->rng);
    else l->fb->draw_seed = rng_u32(&l->fb->rng);
}

/* B = |M| sign(W) from the latest redraw, one pass. */
static void brsf_refresh(Layer *l) {
    Feedback *fb = l->fb;
    size_t n = l->W->n, blocks = (n + BRSF_BLOCK - 1) / BRSF_BLOCK;
    int normal;
    float b = (float)rule_init_bound(&l->ctx->fb, l->W, &normal) * 0x1p-24f;
    if (normal) {
        brsf_take_signs(l);
        return;
    }
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t k = 0; k < blocks; k++) draw_signed(fb->B->w, l->W->w, fb->sign, b, fb->draw_seed, k * BRSF_BLOCK, k * BRSF_BLOCK + BRSF_BLOCK < n ? k * BRSF_BLOCK + BRSF_BLOCK : n);
}

/* M is drawn twice before training: once with the other sign rules' draw
 * (the draw sign_init makes for frsf's M, made here into B and dropped, so
 * that the generator reaches the sign pattern and the first redraw in the
 * same state), then redrawn as after every batch. */
static int brsf_init(Layer *l, size_t *floats, size_t *doubles) {
    rule_fill_random(&l->ctx->fb, l->W, l->fb->B->w, l->W->n, &l->fb->rng);
    if (sign_init(l, 0)) return ASYM_ERR;
    brsf_redraw(l);
    brsf_refresh(l);
    return ASYM_OK;
}

/* A loaded W: B takes its signs and keeps its magnitudes (a loaded B's,
 * or the last redraw's). */
static void brsf_follow_weights(Layer *l, int b_loaded) {
    brsf_take_signs(l);
    if (l->ctx->fb.norm_feedback) rule_scale_to(l->fb->B->w, l->W->n, vec_norm(l->W->w, l->W->n));
}

const Rule RULE_BRSF = {.name = "brsf", .flags = RULE_OWN_B, .init = brsf_init, .after_step = brsf_redraw, .refresh = brsf_refresh, .follow_weights = brsf_follow_weights};
