/* wm.c: weight mirrors (Akrout et al. 2019). A mirror step: zero-mean
 * noise x into the layer, y = W x (no bias),
 *     B <- (1 - decay) B + lr y x^T / (n P std^2),
 * P output positions of a convolution (1 for fc; per kernel tap, the
 * positions where that tap meets the image). By default Akrout's scheme:
 * uniform noise, a pre-sweep before training, one step after every
 * training batch, small lr and decay, so that B accumulates the estimates
 * and tends to (lr / decay) W. With orthogonal noise (the exact estimator)
 * a layer with one output position gets B = W in one step. */
#include "rules/rules.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

/* LAPACK's Cholesky factorization (OpenBLAS ships it), column-major. */
void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info);

/* Rows of x (n, d) made orthonormal in blocks of at most d rows, then scaled
 * to length std sqrt(d), so that E[x^T x] stays n std^2 I while its spread
 * shrinks (a full block gives exactly d std^2 I). Cholesky QR: G = X X^T =
 * U^T U, X <- U^-T X, in double precision: G's condition number is X's
 * squared, about d^2 for a square block, and in float32 a 784 x 784 block
 * failed to factor in 2 of 40 draws and came out far from orthonormal in 9
 * more, each a mirror estimate about 45 degrees off. gram: m*m doubles,
 * then m*d for the block, then m. A block whose Gram matrix does not factor (a
 * rank-deficient draw) keeps its plain normal noise; returns how many did. */
int feedback_orthogonalize(float *x, int n, int d, float std, double *gram) {
    double len = std * sqrt((double)d), *xd = gram + (size_t)(n < d ? n : d) * (n < d ? n : d);
    int fallbacks = 0;
    for (int b = 0; b < n; b += d) {
        int m = n - b < d ? n - b : d, info = 0;
        float *X = x + (size_t)b * d;
        size_t md = (size_t)m * d;
        for (size_t i = 0; i < md; i++) xd[i] = X[i];
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, m, d, 1.0, xd, d, 0.0, gram, m);
        double *diag = xd + md; /* |x_i|^2 before the factorization */
        for (int i = 0; i < m; i++) diag[i] = gram[(size_t)i * m + i];
        dpotrf_("L", &m, gram, &m, &info); /* row-major view: upper U with G = U^T U */
        /* U_ii is row i's length off the span of the rows before it: a
         * tiny one (relative to |x_i|) is a dependent row, which rounding
         * let through; its "orthonormal" row would be rounding noise */
        for (int i = 0; i < m && !info; i++)
            if (!(gram[(size_t)i * m + i] > 1e-6 * sqrt(diag[i]))) info = i + 1;
        if (info != 0) {
            fallbacks++;
            continue;
        }
        cblas_dtrsm(CblasRowMajor, CblasLeft, CblasUpper, CblasTrans, CblasNonUnit, m, d, len, gram, m, xd, d);
        for (size_t i = 0; i < md; i++) X[i] = (float)xd[i];
    }
    return fallbacks;
}

/* Mirror noise, zero mean with standard deviation std: uniform, or normal
 * by Box-Muller on pairs of entries (u1 in (0, 1), so log(u1) is finite).
 * Counter-based like brsf's redraw (24 bits per uniform, hashed from its
 * index and one draw of the layer's generator): the threads share the work
 * and the noise is the same on any number of threads, and of MPI ranks. */
void feedback_mirror_noise(float *x, size_t n, int uniform, float std, uint32_t seed) {
    const float u24 = 0x1p-24f, a = std * sqrtf(3.0f), two_pi = 6.28318530717958648f;
    if (uniform) {
#pragma omp parallel for simd schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; i++) x[i] = a * (2.0f * u24 * ((float)(rule_hash32((uint32_t)i * 0x9e3779b9U + seed) >> 8) + 0.5f) - 1.0f);
        return;
    }
    size_t pairs = (n + 1) / 2;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < pairs; i++) {
        uint32_t c = (uint32_t)(2 * i) * 0x9e3779b9U + seed;
        float u1 = u24 * ((float)(rule_hash32(c) >> 8) + 0.5f), u2 = u24 * (float)(rule_hash32(c + 0x9e3779b9U) >> 8);
        float r = std * sqrtf(-2.0f * logf(u1)), sn, cs;
        sincosf(two_pi * u2, &sn, &cs);
        x[2 * i] = r * cs;
        if (2 * i + 1 < n) x[2 * i + 1] = r * sn;
    }
}

/* How many output positions of a convolution put kernel offset t (0..k-1)
 * on a pixel inside an input of size `in` (not on padding). */
static int tap_positions(int t, int in, int out, int s, int p) {
    int c = 0;
    for (int o = 0; o < out; o++) c += (unsigned)(o * s - p + t) < (unsigned)in;
    return c;
}

/* One mirror step, where y x^T is the layer's own weight-gradient half with
 * x as input and y as output error. A convolution sums y x^T over output
 * positions; a kernel tap that falls on the padding at some of them sums
 * fewer terms, so each tap is divided by its own count of positions (with
 * one count P for all, border taps of a padded 3x3 convolution came out at
 * 0.56-0.75 of W's). */
static void mirror_step(Layer *l) {
    Feedback *fb = l->fb;
    const AsymFeedbackSpec *o = &l->ctx->fb;
    fb->wm_seed = rng_u32(&fb->rng);
    feedback_mirror_noise(fb->mx, (size_t)fb->wm_n * shape_size(l->in), o->wm_noise == ASYM_NOISE_UNIFORM, o->wm_std, fb->wm_seed);
    if (o->wm_noise == ASYM_NOISE_ORTHOGONAL) fb->wm_fallbacks += feedback_orthogonalize(fb->mx, fb->wm_n, (int)shape_size(l->in), o->wm_std, fb->gram);
    memset(fb->macc, 0, sizeof(float) * l->W->n);
    /* in chunks the network's workspace can hold */
    for (int c = 0; c < fb->wm_n; c += l->ctx->max_batch) {
        int m = fb->wm_n - c < l->ctx->max_batch ? fb->wm_n - c : l->ctx->max_batch;
        const float *x = fb->mx + (size_t)c * shape_size(l->in);
        float *y = fb->my + (size_t)c * shape_size(l->out);
        l->ops->forward(l, x, y, m, &(Pass){.no_bias = 1});
        l->ops->backward_weight(l, x, y, m, fb->macc, NULL);
    }
    float keep = 1.0f - o->wm_decay, *B = fb->B->w;
    const float *acc = fb->macc;
    size_t n = l->W->n;
    double unit = o->wm_lr / ((double)fb->wm_n * o->wm_std * o->wm_std);
    if (l->kind != ASYM_CONV) {
        float k = (float)unit;
#pragma omp parallel for simd schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; i++) B[i] = keep * B[i] + k * acc[i];
        return;
    }
    int ks, s, p;
    conv2d_geometry(l, &ks, &s, &p);
    float tap[64 * 64];
    if (ks > 64) return; /* refused at setup */
    for (int ky = 0; ky < ks; ky++) {
        int rows = tap_positions(ky, l->in.h, l->out.h, s, p);
        for (int kx = 0; kx < ks; kx++) {
            int pos = rows * tap_positions(kx, l->in.w, l->out.w, s, p);
            tap[ky * ks + kx] = pos ? (float)(unit / pos) : 0.0f;
        }
    }
    size_t kk = (size_t)ks * ks;
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) B[i] = keep * B[i] + tap[i % kk] * acc[i];
}

/* B random; the mirror batch: wm.batch, or Akrout's (the training batch's
 * size), or for the exact estimator enough orthogonal inputs; the scratch
 * it needs (noise, response, y x^T; Cholesky QR's doubles). */
static int wm_init(Layer *l, size_t *floats, size_t *doubles) {
    Feedback *fb = l->fb;
    const AsymFeedbackSpec *o = &l->ctx->fb;
    size_t n = l->W->n;
    rule_fill_random(o, l->W, fb->B->w, n, &fb->rng);
    if (l->kind == ASYM_CONV) {
        int ks, st, pd;
        conv2d_geometry(l, &ks, &st, &pd);
        if (ks > 64) return asym_fail("layer %s: weight mirrors take kernels up to 64 wide, got %d", l->name, ks);
    }
    if (o->wm_batch > 0) {
        fb->wm_n = o->wm_batch;
    } else if (o->wm_noise == ASYM_NOISE_ORTHOGONAL) {
        /* the exact estimator: fan_in orthogonal inputs make a P = 1
         * layer's estimate exact; overlapping patches of a convolution
         * need more */
        size_t P = shape_size(l->out) / l->out.c, want = P == 1 ? (size_t)l->W->fan_in : 4 * (size_t)l->W->fan_in;
        fb->wm_n = (int)((want + P - 1) / P);
    } else {
        fb->wm_n = l->ctx->max_batch;
    }
    size_t d = shape_size(l->in), m = (size_t)fb->wm_n < d ? (size_t)fb->wm_n : d;
    size_t fl = (size_t)fb->wm_n * (d + shape_size(l->out)) + n;
    if (fl > *floats) *floats = fl;
    if (m * m + m * d + m > *doubles) *doubles = m * m + m * d + m;
    return ASYM_OK;
}

/* Mirror steps before training: by default long enough for B to keep under
 * 5% of its random start, (1 - decay)^steps <= e^-3. */
static void presweep(Layer *l) {
    const AsymFeedbackSpec *o = &l->ctx->fb;
    for (int s = o->wm_presweep >= 0 ? o->wm_presweep : o->wm_decay > 0 ? (int)ceil(3.0 / o->wm_decay) : 1000; s > 0; s--) mirror_step(l);
}

/* The layer's views of the network's mirror scratch, then the pre-sweep. */
static void wm_start(Layer *l) {
    Feedback *fb = l->fb;
    fb->mx = l->ctx->mirror;
    fb->my = fb->mx + (size_t)fb->wm_n * shape_size(l->in);
    fb->macc = fb->my + (size_t)fb->wm_n * shape_size(l->out);
    fb->gram = l->ctx->mirror_gram;
    presweep(l);
}

static void wm_after_step(Layer *l) {
    for (int s = 0; s < l->ctx->fb.wm_steps; s++) mirror_step(l);
}

/* A loaded W without its B: B was mirrored from the initial W, so mirror
 * the loaded one. */
static void wm_follow_weights(Layer *l, int b_loaded) {
    if (!b_loaded) presweep(l);
}

const Rule RULE_WM = {.name = "wm", .flags = RULE_OWN_B, .init = wm_init, .start = wm_start, .after_step = wm_after_step, .follow_weights = wm_follow_weights};
