/* feedback.c: feedback rules. Every weight layer's backward pass asks
 * feedback_matrix() for the matrix standing in for W when it propagates the
 * error to its input; everything a rule does to that matrix over training
 * happens here (REFERENCE "Feedback rules"):
 *   bp    B = W
 *   fa    fixed random B (Lillicrap et al. 2016)
 *   dfa   the output error e reaches each block through its own fixed
 *         random D: the block's output gradient is e D (Nokland 2016)
 *   usf   B = s sign(W) (Liao et al. 2016)
 *   frsf  B = |M| sign(W), M drawn once;  brsf: M redrawn every batch
 *   kp    B receives W's update and weight decay through the optimizer
 *         (it shares W's gradient), so W - B decays (Akrout et al. 2019)
 *   wm    mirror steps: noise x into the layer, y = W x,
 *         B <- (1 - decay) B + lr y x^T / (n P std^2)   (Akrout et al. 2019),
 *         P output positions of a convolution (1 for fc; per kernel tap,
 *         the positions where that tap meets the image); by default
 *         Akrout's scheme: uniform noise, one step per training batch,
 *         small lr and decay, so B accumulates the estimates
 * Partial sign concordance (Liao et al.): a fixed fraction p of entries
 * keep W's sign, the rest take the opposite one. Moskovitz et al.'s
 * normalizations: B scaled to |W|; |W| held at its initial value. */
#include "rules/rules.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const RULE_NAMES[ASYM_RULE_COUNT] = {"default", "bp", "fa", "dfa", "usf", "brsf", "frsf", "kp", "wm"};

const char *asym_rule_name(AsymRule r) { return (int)r >= 0 && r < ASYM_RULE_COUNT ? RULE_NAMES[r] : "?"; }

AsymRule asym_rule_parse(const char *name) {
    for (int r = ASYM_RULE_BP; r < ASYM_RULE_COUNT; r++)
        if (!strcmp(name, RULE_NAMES[r])) return (AsymRule)r;
    return ASYM_RULE_DEFAULT;
}

void asym_feedback_defaults(AsymFeedbackSpec *f) {
    memset(f, 0, sizeof *f);
    f->init = ASYM_INIT_XAVIER_UNIFORM;
    f->init_gain = 1.0f;
    f->concordance = 1.0f;
    f->wm_noise = ASYM_NOISE_UNIFORM;
    f->wm_std = 0.05f / sqrtf(3.0f);
    f->wm_lr = 1e-3f;
    f->wm_decay = 1e-3f;
    f->wm_steps = 1;
    f->wm_presweep = -1;
}

const float *feedback_matrix(const Layer *l) {
    const Feedback *fb = l->fb;
    if (!fb || !fb->B || l->ctx->force_bp) return l->W->w;
    return fb->B->w;
}

void feedback_clip(const Layer *l, float *dx, int N) {
    float c = l->ctx->fb.clip_dx;
    if (c <= 0 || l->ctx->force_bp) return;
    size_t n = (size_t)N * shape_size(l->in);
    double norm = vec_norm(dx, n);
    if (norm > c) {
        float k = (float)(c / norm);
        for (size_t i = 0; i < n; i++) dx[i] *= k;
    }
}

static double init_bound(const AsymFeedbackSpec *o, const AsymParam *W, int *normal) {
    double fi = W->fan_in, fo = W->fan_out;
    *normal = o->init == ASYM_INIT_XAVIER_NORMAL || o->init == ASYM_INIT_HE_NORMAL;
    switch (o->init) {
    case ASYM_INIT_XAVIER_NORMAL: return o->init_gain * sqrt(2.0 / (fi + fo));
    case ASYM_INIT_HE_UNIFORM: return o->init_gain * sqrt(6.0 / fi);
    case ASYM_INIT_HE_NORMAL: return o->init_gain * sqrt(2.0 / fi);
    case ASYM_INIT_TORCH: return o->init_gain / sqrt(fi);
    default: return o->init_gain * sqrt(6.0 / (fi + fo));
    }
}

/* Random values with the configured distribution for a tensor shaped like W. */
static void fill_random(const AsymFeedbackSpec *o, const AsymParam *W, float *out, size_t n, AsymRng *rng) {
    int normal;
    double b = init_bound(o, W, &normal);
    for (size_t i = 0; i < n; i++) out[i] = (float)(normal ? b * rng_normal(rng) : b * (2.0 * rng_uniform(rng) - 1.0));
}

static float signf(float v) { return (float)((v > 0) - (v < 0)); }

/* Wellons' lowbias32 integer hash: counter-based random bits, so that a
 * redraw vectorizes and splits among threads with the same result. */
static inline uint32_t hash32(uint32_t x) {
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

/* brsf's magnitudes |M|, redrawn: |U(-b, b)| is U(0, b), 24 random bits per
 * entry hashed from its index and one draw of the layer's generator, and B
 * in the same pass. The normal initializations take the general
 * (sequential) draw; returns 0 then, and B is left to the caller. */
static int redraw_brsf(Layer *l) {
    Feedback *fb = l->fb;
    size_t n = l->W->n;
    int normal;
    float b = (float)init_bound(&l->ctx->fb, l->W, &normal) * 0x1p-24f, *M = fb->M, *B = fb->B->w;
    const float *W = l->W->w, *sg = fb->sign;
    if (normal) {
        fill_random(&l->ctx->fb, l->W, M, n, &fb->rng);
        for (size_t i = 0; i < n; i++) M[i] = fabsf(M[i]);
        return 0;
    }
    uint32_t seed = rng_u32(&fb->rng);
    if (sg) {
#pragma omp parallel for simd schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; i++) {
            float m = b * (float)(hash32((uint32_t)i * 0x9e3779b9U + seed) >> 8);
            M[i] = m;
            B[i] = m * signf(W[i]) * sg[i];
        }
    } else {
#pragma omp parallel for simd schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; i++) {
            float m = b * (float)(hash32((uint32_t)i * 0x9e3779b9U + seed) >> 8);
            M[i] = m;
            B[i] = m * signf(W[i]);
        }
    }
    return 1;
}

/* B from W for the sign-concordant rules: s sign(W) (usf) or |M| sign(W),
 * times the fixed pattern of discordant signs when there is one. */
static void refresh_sign_rule(Layer *l) {
    Feedback *fb = l->fb;
    const float *W = l->W->w, *M = fb->M, *sg = fb->sign;
    float *B = fb->B->w, s = fb->s;
    size_t n = l->W->n;
    if (fb->rule == ASYM_RULE_BRSF && redraw_brsf(l)) return;
    if (fb->rule == ASYM_RULE_USF && !sg) {
#pragma omp parallel for simd schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; i++) B[i] = s * signf(W[i]);
    } else if (fb->rule == ASYM_RULE_USF) {
#pragma omp parallel for simd schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; i++) B[i] = s * signf(W[i]) * sg[i];
    } else if (!sg) {
#pragma omp parallel for simd schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; i++) B[i] = M[i] * signf(W[i]);
    } else {
#pragma omp parallel for simd schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; i++) B[i] = M[i] * signf(W[i]) * sg[i];
    }
}

static void scale_to(float *v, size_t n, double target) {
    double norm = vec_norm(v, n);
    if (norm > 0) {
        float k = (float)(target / norm);
        for (size_t i = 0; i < n; i++) v[i] *= k;
    }
}

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
        for (size_t i = 0; i < n; i++) x[i] = a * (2.0f * u24 * ((float)(hash32((uint32_t)i * 0x9e3779b9U + seed) >> 8) + 0.5f) - 1.0f);
        return;
    }
    size_t pairs = (n + 1) / 2;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < pairs; i++) {
        uint32_t c = (uint32_t)(2 * i) * 0x9e3779b9U + seed;
        float u1 = u24 * ((float)(hash32(c) >> 8) + 0.5f), u2 = u24 * (float)(hash32(c + 0x9e3779b9U) >> 8);
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

/* One weight-mirror step: zero-mean noise x into the layer, y = W x (no
 * bias), B <- (1 - decay) B + lr * y x^T / (n P std^2), where y x^T is the
 * layer's own weight-gradient half with x as input and y as output error.
 * A convolution sums y x^T over output positions; a kernel tap that falls
 * on the padding at some of them sums fewer terms, so each tap is divided
 * by its own count of positions (with one count P for all, border taps of
 * a padded 3x3 convolution came out at 0.56-0.75 of W's). */
static void mirror_step(Layer *l) {
    Feedback *fb = l->fb;
    const AsymFeedbackSpec *o = &l->ctx->fb;
    fb->wm_seed = rng_u32(&fb->rng);
    feedback_mirror_noise(fb->mx, (size_t)fb->wm_n * shape_size(l->in), o->wm_noise == ASYM_NOISE_UNIFORM, o->wm_std, fb->wm_seed);
    if (o->wm_noise == ASYM_NOISE_ORTHOGONAL) fb->wm_fallbacks += feedback_orthogonalize(fb->mx, fb->wm_n, (int)shape_size(l->in), o->wm_std, fb->gram);
    AsymParam *b = l->b;
    float *g = l->W->g;
    l->b = NULL;
    memset(fb->macc, 0, sizeof(float) * l->W->n);
    l->W->g = fb->macc;
    /* in chunks the network's workspace can hold */
    for (int c = 0; c < fb->wm_n; c += l->ctx->max_batch) {
        int m = fb->wm_n - c < l->ctx->max_batch ? fb->wm_n - c : l->ctx->max_batch;
        const float *x = fb->mx + (size_t)c * shape_size(l->in);
        float *y = fb->my + (size_t)c * shape_size(l->out);
        l->ops->forward(l, x, y, m, 0);
        l->ops->backward_weight(l, x, y, m);
    }
    l->W->g = g;
    l->b = b;
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

/* BioTorch's DFA into a convolution: the error e is spread over every output
 * position of the next convolution and taken back through it with a random
 * kernel K (classes, C, k, k), so D[c, (ch, y, x)] sums K[c, ch, ky, kx] over
 * the output positions whose window puts (ky, kx) on input pixel (y, x):
 * one value per channel inside the image, partial sums at its border. K's
 * distribution takes the fans PyTorch gives a tensor of its shape. */
static int dfa_conv_projection(NetCtx *ctx, const Layer *next, float *D, AsymRng *rng) {
    int k, s, p, K = ctx->classes;
    conv2d_geometry(next, &k, &s, &p);
    int C = next->in.c, H = next->in.h, W = next->in.w, OH = next->out.h, OW = next->out.w;
    size_t kn = (size_t)K * C * k * k;
    float *ker = asym_falloc(kn);
    if (!ker) return ASYM_ERR;
    AsymParam fake = {.fan_in = C * k * k, .fan_out = K * k * k};
    fill_random(&ctx->fb, &fake, ker, kn, rng);
    memset(D, 0, (size_t)K * C * H * W * sizeof *D);
    for (size_t q = 0; q < (size_t)K * C; q++) {
        float *d = D + q * H * W;
        const float *kq = ker + q * k * k;
        for (int oy = 0; oy < OH; oy++)
            for (int ky = 0; ky < k; ky++) {
                int y = oy * s - p + ky;
                if (y < 0 || y >= H) continue;
                for (int ox = 0; ox < OW; ox++)
                    for (int kx = 0; kx < k; kx++) {
                        int x = ox * s - p + kx;
                        if (x >= 0 && x < W) d[y * W + x] += kq[ky * k + kx];
                    }
            }
    }
    free(ker);
    return ASYM_OK;
}

/* Weight layers of a chain and, for DFA, where each block ends. */
static int setup_dfa(NetCtx *ctx, Seq *top, AsymRng *rng) {
    int last = -1;
    for (int i = 0; i < top->n; i++)
        if (top->layers[i]->W && top->layers[i]->kind != ASYM_BATCHNORM) last = i;
    for (int i = 0; i < top->n; i++) {
        Layer *l = top->layers[i];
        if (!l->fb || l->fb->rule != ASYM_RULE_DFA || i == last) continue;
        int end = i + 1;
        while (end < top->n && !(top->layers[end]->W && top->layers[end]->kind != ASYM_BATCHNORM) && top->layers[end]->kind != ASYM_RESBLOCK) end++;
        end--;
        Shape out = top->layers[end]->out;
        int shape[2] = {ctx->classes, (int)shape_size(out)};
        char name[48];
        snprintf(name, sizeof name, "%s", l->name);
        Feedback *fb = l->fb;
        if (!(fb->D = ctx_feedback(ctx, name, "D", 2, shape))) return ASYM_ERR;
        if (!(fb->dfa_dy = asym_falloc((size_t)ctx->max_batch * shape[1]))) return ASYM_ERR;
        AsymParam fake = {.fan_in = shape[0], .fan_out = shape[1]};
        Layer *next = end + 1 < top->n ? top->layers[end + 1] : NULL;
        if (ctx->fb.dfa_conv && next && next->kind == ASYM_CONV) {
            if (dfa_conv_projection(ctx, next, fb->D->w, rng)) return ASYM_ERR;
        } else {
            fill_random(&ctx->fb, &fake, fb->D->w, fb->D->n, rng);
        }
        if (!top->dfa_at && !(top->dfa_at = asym_calloc(top->n, sizeof(Layer *)))) return ASYM_ERR;
        top->dfa_at[end] = l;
    }
    return ASYM_OK;
}

const float *feedback_dfa_error(Layer *l, int N) {
    Feedback *fb = l->fb;
    int K = fb->D->shape[0], S = fb->D->shape[1];
    gemm(0, 0, N, S, K, 1.0f, l->ctx->out_err, K, fb->D->w, S, 0.0f, fb->dfa_dy, S);
    return fb->dfa_dy;
}

/* Applies spec->overrides on top of the rules the layer specs gave. */
static int apply_overrides(NetCtx *ctx, Seq *top, const AsymNetSpec *spec) {
    int L = ctx->n_weight_layers;
    for (int k = 0; k < spec->n_overrides; k++) {
        const char *sel = spec->overrides[k].sel;
        char *end;
        long idx = strtol(sel, &end, 10);
        int hits = 0;
        if (*sel && !*end && !strchr(sel, '.')) {
            /* an index among weight layers (negative: from the end) */
            if (idx < 0) idx += L;
            if (idx < 0 || idx >= L) return asym_fail("rule_overrides: no weight layer %s (the network has %d)", sel, L);
            ctx->weight_layers[idx]->spec_rule = spec->overrides[k].rule;
            continue;
        }
        size_t n = strlen(sel);
        for (int i = 0; i < L; i++) {
            Layer *l = ctx->weight_layers[i];
            if (!strncmp(l->name, sel, n) && (l->name[n] == 0 || l->name[n] == '.')) l->spec_rule = spec->overrides[k].rule, hits++;
        }
        if (!hits) return asym_fail("rule_overrides: '%s' names no layer with weights", sel);
    }
    (void)top;
    return ASYM_OK;
}

/* Mirror steps before training: by default long enough for B to keep under
 * 5% of its random start, (1 - decay)^steps <= e^-3. */
static int presweep_steps(const AsymFeedbackSpec *o) {
    return o->wm_presweep >= 0 ? o->wm_presweep : o->wm_decay > 0 ? (int)ceil(3.0 / o->wm_decay) : 1000;
}

/* Is layer l inside a residual block (a nested chain)? */
static int nested(const Layer *l) { return strchr(l->name, '.') != NULL; }

int feedback_setup(NetCtx *ctx, Seq *top, const AsymNetSpec *spec, AsymRng *rng) {
    const AsymFeedbackSpec *o = &ctx->fb;
    AsymRule net_rule = spec->rule ? spec->rule : ASYM_RULE_BP;
    size_t mirror_floats = 0, mirror_doubles = 0;
    if (!(o->concordance >= 0.0f && o->concordance <= 1.0f)) return asym_fail("feedback: concordance must be in [0, 1], got %g", o->concordance);
    if (apply_overrides(ctx, top, spec)) return ASYM_ERR;
    for (int i = 0; i < ctx->n_weight_layers; i++) {
        Layer *l = ctx->weight_layers[i];
        AsymRule r = l->spec_rule ? l->spec_rule : net_rule;
        if (r == ASYM_RULE_DFA && nested(l))
            return asym_fail("layer %s: rule dfa is defined for chains of layers; give residual blocks another rule (per-layer override)", l->name);
        Feedback *fb = l->fb = asym_calloc(1, sizeof(Feedback));
        if (!fb) return ASYM_ERR;
        fb->rule = r;
        fb->rng = rng_split(rng);
        fb->w0norm = vec_norm(l->W->w, l->W->n);
        if (r == ASYM_RULE_BP || r == ASYM_RULE_DFA) continue;
        size_t n = l->W->n;
        if (!(fb->B = ctx_feedback(ctx, l->name, "B", l->W->ndim, l->W->shape))) return ASYM_ERR;
        fb->B->fan_in = l->W->fan_in, fb->B->fan_out = l->W->fan_out;
        switch (r) {
        case ASYM_RULE_FA:
            fill_random(o, l->W, fb->B->w, n, &fb->rng);
            break;
        case ASYM_RULE_KP:
            fill_random(o, l->W, fb->B->w, n, &fb->rng);
            fb->B->g = l->W->g; /* the optimizer gives B exactly W's update */
            fb->B->lr_scale = l->W->lr_scale;
            break;
        case ASYM_RULE_WM:
            fill_random(o, l->W, fb->B->w, n, &fb->rng);
            if (l->kind == ASYM_CONV) {
                int ks, st, pd;
                conv2d_geometry(l, &ks, &st, &pd);
                if (ks > 64) return asym_fail("layer %s: weight mirrors take kernels up to 64 wide, got %d", l->name, ks);
            }
            if (o->wm_batch > 0) {
                fb->wm_n = o->wm_batch;
            } else if (o->wm_noise == ASYM_NOISE_ORTHOGONAL) {
                /* the exact estimator: fan_in orthogonal inputs make a
                 * P = 1 layer's estimate exact; overlapping patches of a
                 * convolution need more */
                size_t P = shape_size(l->out) / l->out.c, want = P == 1 ? (size_t)l->W->fan_in : 4 * (size_t)l->W->fan_in;
                fb->wm_n = (int)((want + P - 1) / P);
            } else {
                fb->wm_n = ctx->max_batch; /* Akrout's: a mirror batch of the training batch's size */
            }
            /* scratch shared by every mirroring layer (one mirrors at a
             * time): noise, response and y x^T; Cholesky QR's doubles */
            size_t d = shape_size(l->in), m = (size_t)fb->wm_n < d ? (size_t)fb->wm_n : d;
            size_t fl = (size_t)fb->wm_n * (d + shape_size(l->out)) + n;
            if (fl > mirror_floats) mirror_floats = fl;
            if (m * m + m * d + m > mirror_doubles) mirror_doubles = m * m + m * d + m;
            break;
        default: { /* usf, frsf, brsf */
            double fi = l->W->fan_in, fo = l->W->fan_out;
            fb->s = o->scale > 0 ? o->scale : (float)(o->scale_he ? sqrt(2.0 / fi) : sqrt(2.0 / (fi + fo)));
            if (r != ASYM_RULE_USF) {
                if (!(fb->M = asym_falloc(n))) return ASYM_ERR;
                fill_random(o, l->W, fb->M, n, &fb->rng);
                for (size_t j = 0; j < n; j++) fb->M[j] = fabsf(fb->M[j]);
            }
            if (o->concordance < 1.0f) {
                /* exactly round(p n) entries keep W's sign, the rest take the opposite one */
                int *idx = asym_calloc(n, sizeof(int));
                if (!idx || !(fb->sign = asym_falloc(n))) {
                    free(idx);
                    return ASYM_ERR;
                }
                for (size_t j = 0; j < n; j++) idx[j] = (int)j, fb->sign[j] = 1.0f;
                rng_shuffle(&fb->rng, idx, (int)n);
                size_t flip = n - (size_t)llround((double)o->concordance * n);
                for (size_t j = 0; j < flip; j++) fb->sign[idx[j]] = -1.0f;
                free(idx);
            }
            refresh_sign_rule(l);
        }
        }
        if (o->norm_feedback) scale_to(fb->B->w, n, fb->w0norm);
    }
    if (mirror_floats) {
        if (!(ctx->mirror = asym_falloc(mirror_floats)) || !(ctx->mirror_gram = asym_calloc(mirror_doubles, sizeof(double)))) return ASYM_ERR;
        for (int i = 0; i < ctx->n_weight_layers; i++) {
            Layer *l = ctx->weight_layers[i];
            Feedback *fb = l->fb;
            if (fb->rule != ASYM_RULE_WM) continue;
            fb->mx = ctx->mirror;
            fb->my = fb->mx + (size_t)fb->wm_n * shape_size(l->in);
            fb->macc = fb->my + (size_t)fb->wm_n * shape_size(l->out);
            fb->gram = ctx->mirror_gram;
        }
    }
    if (setup_dfa(ctx, top, rng)) return ASYM_ERR;
    int sweep = presweep_steps(o);
    for (int s = 0; s < sweep; s++)
        for (int i = 0; i < ctx->n_weight_layers; i++)
            if (ctx->weight_layers[i]->fb->rule == ASYM_RULE_WM) mirror_step(ctx->weight_layers[i]);
    return ASYM_OK;
}

void feedback_after_step(NetCtx *ctx) {
    const AsymFeedbackSpec *o = &ctx->fb;
    for (int i = 0; i < ctx->n_weight_layers; i++) {
        Layer *l = ctx->weight_layers[i];
        Feedback *fb = l->fb;
        if (o->fixed_weight_norm) scale_to(l->W->w, l->W->n, fb->w0norm);
        switch (fb->rule) {
        case ASYM_RULE_USF:
        case ASYM_RULE_FRSF:
        case ASYM_RULE_BRSF: refresh_sign_rule(l); break;
        case ASYM_RULE_WM:
            for (int s = 0; s < o->wm_steps; s++) mirror_step(l);
            break;
        default: break;
        }
        if (o->norm_feedback && fb->B) scale_to(fb->B->w, fb->B->n, vec_norm(l->W->w, l->W->n));
    }
}

void feedback_refresh(Layer *l) {
    if (l->fb->rule == ASYM_RULE_USF || l->fb->rule == ASYM_RULE_FRSF || l->fb->rule == ASYM_RULE_BRSF) refresh_sign_rule(l);
}

void feedback_follow_weights(Layer *l, int b_loaded) {
    Feedback *fb = l->fb;
    AsymRule r = fb->rule;
    if (r == ASYM_RULE_WM && !b_loaded) {
        /* B was mirrored from the initial W: mirror the loaded one */
        for (int s = presweep_steps(&l->ctx->fb); s > 0; s--) mirror_step(l);
        return;
    }
    if (r != ASYM_RULE_USF && r != ASYM_RULE_FRSF && r != ASYM_RULE_BRSF) return;
    size_t n = l->W->n;
    if (b_loaded && fb->M)
        for (size_t i = 0; i < n; i++) fb->M[i] = fabsf(fb->B->w[i]);
    const float *W = l->W->w, *M = fb->M, *sg = fb->sign;
    float *B = fb->B->w;
    for (size_t i = 0; i < n; i++) B[i] = (M ? M[i] : fb->s) * signf(W[i]) * (sg ? sg[i] : 1.0f);
    if (l->ctx->fb.norm_feedback) scale_to(B, n, vec_norm(W, n));
}

int feedback_wm_fallbacks(const NetCtx *ctx) {
    int n = 0;
    for (int i = 0; i < ctx->n_weight_layers; i++) n += ctx->weight_layers[i]->fb ? ctx->weight_layers[i]->fb->wm_fallbacks : 0;
    return n;
}

void feedback_free(Feedback *fb) {
    if (!fb) return;
    free(fb->M);
    free(fb->sign);
    free(fb->dfa_dy);
    free(fb);
}
