/* sign.c: what the sign-concordant rules share (usf.c, frsf.c, brsf.c;
 * Liao, Leibo & Poggio 2016): B = s sign(W) or |M| sign(W), with Liao et
 * al.'s partial concordance: a fixed fraction p of entries keep W's sign,
 * the rest take the opposite one. */
#include "rules/rules.h"

#include <math.h>
#include <stdlib.h>

int sign_init(Layer *l, int with_M) {
    Feedback *fb = l->fb;
    const AsymFeedbackSpec *o = &l->ctx->fb;
    size_t n = l->W->n;
    double fi = l->W->fan_in, fo = l->W->fan_out;
    fb->s = o->scale > 0 ? o->scale : (float)(o->scale_he ? sqrt(2.0 / fi) : sqrt(2.0 / (fi + fo)));
    if (with_M) {
        if (!(fb->M = asym_falloc(n))) return ASYM_ERR;
        rule_fill_random(o, l->W, fb->M, n, &fb->rng);
        for (size_t j = 0; j < n; j++) fb->M[j] = fabsf(fb->M[j]);
    }
    if (o->concordance < 1.0f) {
        /* exactly round(p n) entries keep W's sign, the rest take the opposite one */
        if (!(fb->sign = rule_pattern(&fb->rng, n, n - (size_t)llround((double)o->concordance * n), -1.0f))) return ASYM_ERR;
    }
    return ASYM_OK;
}

/* B = |M| sign(W), or s sign(W) without M, times the pattern of discordant
 * signs when there is one, over [lo, hi): one loop per case, so that each
 * vectorizes (times 1 without a pattern: the same floats). */
static void sign_fill(float *B, const float *W, const float *M, const float *sg, float s, size_t lo, size_t hi) {
    if (M && sg)
#pragma omp simd
        for (size_t i = lo; i < hi; i++) B[i] = M[i] * rule_sign(W[i]) * sg[i];
    else if (M)
#pragma omp simd
        for (size_t i = lo; i < hi; i++) B[i] = M[i] * rule_sign(W[i]);
    else if (sg)
#pragma omp simd
        for (size_t i = lo; i < hi; i++) B[i] = s * rule_sign(W[i]) * sg[i];
    else
#pragma omp simd
        for (size_t i = lo; i < hi; i++) B[i] = s * rule_sign(W[i]);
}

#define SIGN_BLOCK 1024

void sign_from_w(Layer *l) {
    const float *W = l->W->w, *M = l->fb->M, *sg = l->fb->sign;
    float *B = l->fb->B->w, s = l->fb->s;
    size_t n = l->W->n, blocks = (n + SIGN_BLOCK - 1) / SIGN_BLOCK;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t k = 0; k < blocks; k++) sign_fill(B, W, M, sg, s, k * SIGN_BLOCK, k * SIGN_BLOCK + SIGN_BLOCK < n ? k * SIGN_BLOCK + SIGN_BLOCK : n);
}

/* A loaded W: B takes its signs, keeping its magnitudes (those of a loaded
 * B when b_loaded, else its own M or s; no redraw). */
void sign_follow_weights(Layer *l, int b_loaded) {
    Feedback *fb = l->fb;
    size_t n = l->W->n;
    if (b_loaded && fb->M)
        for (size_t i = 0; i < n; i++) fb->M[i] = fabsf(fb->B->w[i]);
    sign_from_w(l);
    if (l->ctx->fb.norm_feedback) rule_scale_to(fb->B->w, n, vec_norm(l->W->w, n));
}
