/* rules.h: the feedback rules. Every weight layer's input gradient takes
 * the matrix its rule chooses (Layer.B; exact backpropagation passes W
 * itself), and everything a rule does to that matrix over training
 * happens here. Each rule is one file defining a Rule; table.c is the only
 * list of rules; rule.c is the driver that runs them (REFERENCE "Feedback
 * rules"). */
#ifndef ASYM_RULES_H
#define ASYM_RULES_H

#include "layers/layers.h"

/* Names for the seed rules' places in the rule table (table.c), which
 * numbers every rule; a rule added there needs no name here. */
typedef enum AsymRule {
    ASYM_RULE_DEFAULT = 0, /* a layer without its own rule takes the network's */
    ASYM_RULE_BP,    /* exact backpropagation: B = W */
    ASYM_RULE_FA,    /* feedback alignment: fixed random B (Lillicrap et al. 2016) */
    ASYM_RULE_DFA,   /* direct feedback alignment: output error through a fixed random matrix (Nokland 2016) */
    ASYM_RULE_USF,   /* uniform sign-concordant: s * sign(W) (Liao et al. 2016) */
    ASYM_RULE_BRSF,  /* |M| * sign(W), M redrawn every batch */
    ASYM_RULE_FRSF,  /* |M| * sign(W), M drawn once */
    ASYM_RULE_KP,    /* Kolen-Pollack: B takes W's update and decay (Akrout et al. 2019) */
    ASYM_RULE_WM,    /* weight mirror: B learns W from injected noise (Akrout et al. 2019) */
} AsymRule;

void asym_feedback_defaults(AsymFeedbackSpec *f);

typedef struct AsymNetSpec {
    int in_c, in_h, in_w;   /* input shape */
    int classes;
    AsymLayerSpec *layers;  /* the final layer produces `classes` logits */
    int n_layers;
    AsymInit init;
    int zero_bias;          /* biases start at 0 (BioTorch with Xavier) */
    AsymLoss loss;
    int rule;               /* every weight layer's rule unless overridden (bp when DEFAULT) */
    AsymFeedbackSpec fb;    /* all zero: asym_feedback_defaults */
    /* Per-layer rules: sel is a weight-layer index ("0", "-1" = the last) or
     * a layer name ("3", "4.main.0"; a resblock's name covers its layers). */
    struct { char sel[40]; int rule; } overrides[32];
    int n_overrides;
    int keep_activations;   /* every layer's output kept (asymbp probe); else a ReLU after a batch norm overwrites it */
} AsymNetSpec;

typedef struct Rule Rule;

/* An option of one rule, set as feedback.<rule>.<name>: a number in
 * [lo, hi], or with choices (NULL-terminated) one of those words, kept as
 * its index. */
typedef struct RuleKey {
    const char *name;
    float def, lo, hi;
    const char *const *choices;
} RuleKey;

struct Feedback {
    AsymRule rule;
    const Rule *def;     /* the rule's entry in the table */
    AsymParam *B;        /* W's shape; NULL for bp and dfa */
    float *M;            /* frsf, brsf: magnitudes |M| (W's shape) */
    float *sign;         /* +1 / -1 per entry: which signs agree with W (NULL: all) */
    float s;             /* usf scale */
    double w0norm;       /* |W| at initialization (fixed_weight_norm) */
    AsymParam *D;        /* direct rules: (classes, block output) projection into the block */
    float *dfa_dy;       /* direct rules: (max_batch, block output) projected signal */
    float *direct_in;    /* direct rules: (max_batch, classes) the signal before projection (sdfa, drtp) */
    const float *direct_out; /* direct rules: the block's output activation (max_batch, block output) */
    float *direct_g;     /* dkp: D's gradient (D's shape), D->g */
    AsymRng rng;         /* brsf redraws, mirror noise */
    uint32_t draw_seed;  /* brsf: the latest redraw's hash seed */
    /* wm: noise (n, in), response (n, out), accumulated y x^T (W's shape),
     * and scratch for orthogonal noise (m^2 + m in doubles, m = min(n, in)):
     * views of the network's mirror scratch (NetCtx), shared by every layer */
    float *mx, *my, *macc;
    double *gram;
    int wm_n;            /* noise inputs per mirror step */
    uint32_t wm_seed;    /* the noise seed of the latest mirror step (probes record it) */
    int wm_fallbacks;    /* orthogonal noise blocks left plain (Cholesky failed) */
    /* sparse feedback: the fraction of B's entries held at zero (a rule's
     * init may set its own; the driver draws the mask after init) and the
     * mask, 1 where B is kept, 0 where held at zero (NULL: dense B) */
    float sparsity;
    float *mask;
    /* pfa: B = F R, F fixed (out, mid), R learned (mid, in...; NULL when B
     * is stepped itself), the stepped tensor's gradient, P = F F^T (out, out;
     * stepping B) */
    AsymParam *F, *R;
    float *Rg, *P;
    /* B's gradient comes from the rule's grad hook in the backward pass,
     * in the network's feedback-gradient array (RULE_OWN_GRAD sets it for
     * every layer of its rule; pfa for some) */
    int backward_grad;
};

/* What a rule does, each hook optional (NULL: nothing). The driver
 * (rule.c) does the rest for every rule: a generator stream per weight layer
 * (fb->rng), |W| at the start, B of W's shape when RULE_OWN_B (before init),
 * norm_feedback, fixed_weight_norm and clip_dx. */
enum {
    RULE_OWN_B = 1,       /* the layer gets its own B (else W is used) */
    RULE_DIRECT = 2,      /* the output error reaches the layer's block directly (direct_init, direct_error) */
    RULE_OWN_GRAD = 8,    /* with RULE_OWN_B: B is trained by the optimizer, with the task's learning rate, on a
                             gradient of its own (the grad hook's, no weight decay) */
};
struct Rule {
    const char *name;
    unsigned flags;
    const RuleKey *keys; /* its options (NULL or ending with a NULL name), at most ASYM_MAX_RULE_KEYS */
    /* draws B and the rule's state; may raise *floats and *doubles, the
     * network's mirror scratch (shared by every layer, one at a time) */
    int (*init)(Layer *l, size_t *floats, size_t *doubles);
    /* once every layer is set up, before training (the mirror pre-sweep) */
    void (*start)(Layer *l);
    /* before every optimizer step, once the gradients are final (averaged
     * over ranks): the gradient of a learned feedback factor */
    void (*before_step)(Layer *l);
    /* after every optimizer step */
    void (*after_step)(Layer *l);
    /* B anew from W and the rule's state, drawing nothing. With it,
     * after_step (if any) only advances the state, and the driver leaves B
     * behind W (Layer.b_stale) until something reads it: the backward pass
     * of a layer whose input gradient is needed, a checkpoint, a probe, an
     * alignment measurement. The first layer's B is read by none of these
     * in training, so its cost goes. Not with a sparse mask or
     * norm_feedback, which rework all of B after every step. */
    void (*refresh)(Layer *l);
    /* RULE_OWN_GRAD (or Feedback.backward_grad): in a training step's
     * backward pass, after the layer's (Layer.feedback_grad): adds the
     * gradient of the rule's loss R(W, B, x) for the layer's input x (N,
     * in) into B->g, times p->grad_scale when set (a rank's share of the
     * batch: the ranks' sum is the batch's); y (N, out) is the forward
     * pass's output W x + b, dy (N, out) the layer's output gradient */
    void (*grad)(Layer *l, const float *x, const float *y, const float *dy, int N, const Pass *p);
    /* after W was loaded from elsewhere (feedback_follow_weights) */
    void (*follow_weights)(Layer *l, int b_loaded);
    /* RULE_DIRECT: the projection of the output error into the block of
     * top's layer i (drawn from the network's generator), and the block's
     * output gradient from the output error (N, block output) */
    int (*direct_init)(NetCtx *ctx, Seq *top, int i, AsymRng *rng);
    const float *(*direct_error)(Layer *l, int N, const Pass *p);
};

/* The rule table (table.c): NULL for ASYM_RULE_DEFAULT and out of range. */
const Rule *rule_get(AsymRule r);

/* The value of option k of l's rule (Rule.keys[k]). */
float rule_option(const Layer *l, int k);

/* Shared by the rules (rule.c): random values with the configured
 * distribution for a tensor shaped like W, and its bound (or std, *normal). */
double rule_init_bound(const AsymFeedbackSpec *o, const AsymParam *W, int *normal);
void rule_fill_random(const AsymFeedbackSpec *o, const AsymParam *W, float *out, size_t n, AsymRng *rng);
/* n ones with `count` of them, a random choice drawn from rng (a shuffle
 * of all n), set to v; NULL when out of memory. */
float *rule_pattern(AsymRng *rng, size_t n, size_t count, float v);
/* B times the layer's sparse-feedback mask (nothing without one). */
void rule_mask_apply(Layer *l);
/* v scaled to norm target (unchanged when 0) */
void rule_scale_to(float *v, size_t n, double target);
static inline float rule_sign(float v) { return (float)((v > 0) - (v < 0)); }
/* Wellons' lowbias32 integer hash: counter-based random bits, so that a
 * draw vectorizes and splits among threads with the same result. */
static inline uint32_t rule_hash32(uint32_t x) {
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

/* The sign-concordant rules (sign.c, for usf, frsf and brsf): their scale
 * s, magnitudes |M| when with_M, and the pattern of discordant signs;
 * B = |M| sign(W) (s sign(W) without M) times that pattern; following a
 * loaded W. */
int sign_init(Layer *l, int with_M);
void sign_from_w(Layer *l);
void sign_follow_weights(Layer *l, int b_loaded);

/* Kunin et al. 2020's alignment losses (kunin.c, for sa, aa and ia): B
 * random as fa's, no weight decay, scratch for the primitives; the input
 * of R (the layer's x, or noise by the options at index `input` and
 * `input + 1`: data|uniform|normal and its std), written to *buf when
 * noise; the primitives' gradients added into B->g with coefficient c
 * (already times the rank's share): decay |W|^2 + |B|^2, self -<W, B>,
 * sparse E|Wx|^2 + E|Bx|^2, amp -E[(Bx).(Wx)], null E|B^T W x|^2 (B in
 * W's shape: Kunin's B^T x is a forward pass with B, B W x the input
 * gradient of W x through B). */
extern const char *const KUNIN_INPUTS[];
int kunin_init(Layer *l, size_t *floats, size_t *doubles);
float kunin_scale(const Pass *p);
const float *kunin_input(Layer *l, const float *x, int N, int input, const Pass *p);
void kunin_decay(Layer *l, float c);
/* decay times cd and self times cs in one pass: the floats of decay then self */
void kunin_decay_self(Layer *l, float cd, float cs);
/* W x for R's input x: from the forward output y (W x + b) when x is the
 * layer's own input data, else by a pass through W; in scratch the
 * primitives below may overwrite */
float *kunin_wx(Layer *l, const float *x, const float *data, const float *y, int N);
void kunin_sparse_amp(Layer *l, const float *x, const float *wx, int N, float cs, float ca);
void kunin_amp(Layer *l, const float *x, const float *wx, int N, float c);
void kunin_null(Layer *l, float *wx, int N, float c);
/* What the direct rules share (direct.c, for dfa, sdfa, drtp, dkp): the
 * block of top's layer i (up to the next weight layer or residual block)
 * and its projection D (classes, block output), drawn from rng: dense, or
 * BioTorch's through the next convolution (feedback.dfa: conv); and the
 * block's output gradient s D from a signal s (N, classes). */
int direct_setup(NetCtx *ctx, Seq *top, int i, AsymRng *rng);
const float *direct_project(Layer *l, int N, const float *s);

/* Resolves every weight layer's rule (spec->rule, overridden per layer) and
 * allocates and initializes what the rules need; runs the weight-mirror
 * pre-sweep. Called once the network's tensors have storage. */
int feedback_setup(NetCtx *ctx, Seq *top, const AsymNetSpec *spec, AsymRng *rng);
/* Before every optimizer step (asym_optim_step): learned factors' gradients. */
void feedback_before_step(NetCtx *ctx);
/* After every optimizer step: sign rules follow W, brsf redraws, weight
 * mirrors run, sparse feedback's mask applies, normalizations apply. */
void feedback_after_step(NetCtx *ctx);
/* Every B up to date with its W (Rule.refresh): before B is read other
 * than by the backward pass, which brings its own up to date. */
void feedback_current(NetCtx *ctx);
/* Whether training leaves feedback tensor t as it is: no gradient of its
 * own, and not a B that its rule remakes after a step (after_step,
 * refresh) or that norm_feedback rescales (fa's B, the direct rules' D
 * but dkp's, pfa's F). */
int feedback_tensor_fixed(const NetCtx *ctx, const AsymParam *t);
/* Whether t's gradient is one a rule derives before the step from the
 * averaged gradients (Rule.before_step: pfa's R or B), the same on every
 * rank, so that ranks do not sum it. */
int feedback_grad_derived(const NetCtx *ctx, const AsymParam *t);
/* After W was loaded from elsewhere: a sign-concordant B takes the loaded
 * W's signs, keeping its magnitudes (frsf, brsf: those of a loaded B when
 * b_loaded, else its own M; no redraw); wm without a loaded B runs its
 * pre-sweep on the loaded W. Other rules: nothing. */
void feedback_follow_weights(Layer *l, int b_loaded);
/* Orthogonal mirror-noise blocks that kept plain normal noise because
 * their Cholesky factorization failed, summed over layers since creation. */
int feedback_wm_fallbacks(const NetCtx *ctx);
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
