/* feedback.h: the one place that decides which matrix a weight layer's
 * input gradient uses and how that matrix changes over training (see
 * feedback.c). Exact backpropagation passes W itself. */
#ifndef ASYM_FEEDBACK_H
#define ASYM_FEEDBACK_H

#include "layers/layers.h"

struct Feedback {
    AsymRule rule;
    AsymParam *B;        /* W's shape; NULL for bp and dfa */
    float *M;            /* frsf, brsf: magnitudes |M| (W's shape) */
    float *sign;         /* +1 / -1 per entry: which signs agree with W (NULL: all) */
    float s;             /* usf scale */
    double w0norm;       /* |W| at initialization (fixed_weight_norm) */
    AsymParam *D;        /* dfa: (classes, block output) projection of the output error */
    float *dfa_dy;       /* dfa: (max_batch, block output) projected error */
    AsymRng rng;         /* brsf redraws, mirror noise */
    /* wm: noise (n, in), response (n, out), accumulated y x^T (W's shape),
     * and scratch for orthogonal noise (m^2 + m in doubles, m = min(n, in)):
     * views of the network's mirror scratch (NetCtx), shared by every layer */
    float *mx, *my, *macc;
    double *gram;
    int wm_n;            /* noise inputs per mirror step */
    uint32_t wm_seed;    /* the noise seed of the latest mirror step (probes record it) */
    int wm_fallbacks;    /* orthogonal noise blocks left plain (Cholesky failed) */
};

/* Resolves every weight layer's rule (spec->rule, overridden per layer) and
 * allocates and initializes what the rules need; runs the weight-mirror
 * pre-sweep. Called once the network's tensors have storage. */
int feedback_setup(NetCtx *ctx, Seq *top, const AsymNetSpec *spec, AsymRng *rng);
/* The matrix used in place of W in the input-gradient half. */
const float *feedback_matrix(const Layer *l);
/* Optional clipping of a weight layer's input gradient. */
void feedback_clip(const Layer *l, float *dx, int N);
/* The projected output error that replaces the gradient at the end of a
 * DFA block (N, block output). */
const float *feedback_dfa_error(Layer *l, int N);
/* After every optimizer step: sign rules follow W, brsf redraws, weight
 * mirrors run, normalizations apply. */
void feedback_after_step(NetCtx *ctx);
/* Recomputes a sign-concordant B from the current W (brsf: redraws). */
void feedback_refresh(Layer *l);
/* After W was loaded from elsewhere: a sign-concordant B takes the loaded
 * W's signs, keeping its magnitudes (frsf, brsf: those of a loaded B when
 * b_loaded, else its own M; no redraw); wm without a loaded B runs its
 * pre-sweep on the loaded W. Other rules: nothing. */
void feedback_follow_weights(Layer *l, int b_loaded);
/* Orthogonal mirror-noise blocks that kept plain normal noise because
 * their Cholesky factorization failed, summed over layers since creation. */
int feedback_wm_fallbacks(const NetCtx *ctx);
void feedback_free(Feedback *fb);
/* Orthogonal mirror noise: rows of x (n, d) made orthonormal in blocks of
 * at most d rows (Cholesky QR in double precision), scaled to length
 * std sqrt(d); gram holds m*m + m*d + m doubles, m = min(n, d). A block
 * whose Gram matrix does not factor, or has a row (nearly) dependent on
 * the others, keeps its values; returns how many did. */
int feedback_orthogonalize(float *x, int n, int d, float std, double *gram);
/* Weight-mirror noise: n values of zero mean and standard deviation std,
 * uniform or normal, a function of seed alone (any thread count). */
void feedback_mirror_noise(float *x, size_t n, int uniform, float std, uint32_t seed);

#endif
