/* layers.h: the internal layer interface. A layer is a small struct with a
 * const table of operations; each layer kind lives in its own file. Weight
 * layers split their backward pass in two halves: the weight gradient
 * (always exact) and the input gradient, computed from the matrix the
 * layer's feedback rule chooses (rules/); no layer decides that matrix. */
#ifndef ASYM_LAYER_H
#define ASYM_LAYER_H

#include "asymbp.h"
#include "base/base.h"
#include "kernels/kernels.h"

/* ---- what a network description says of its layers ---- */
typedef enum AsymLayerKind {
    ASYM_FC = 1,
    ASYM_CONV,
    ASYM_MAXPOOL,
    ASYM_AVGPOOL,
    ASYM_BATCHNORM,
    ASYM_RELU,
    ASYM_TANH,
    ASYM_SIGMOID,
    ASYM_FLATTEN,
    ASYM_DROPOUT,
    ASYM_RESBLOCK,   /* He et al. basic block, or bottleneck if .bottleneck */
} AsymLayerKind;

typedef enum AsymShortcut {
    ASYM_SHORTCUT_A = 1, /* identity, zero-padded channels when they grow */
    ASYM_SHORTCUT_B,     /* identity, 1x1 conv + batch norm when shapes change */
} AsymShortcut;

typedef enum AsymInit {
    ASYM_INIT_TORCH = 1,    /* PyTorch's default for Linear/Conv2d */
    ASYM_INIT_XAVIER_UNIFORM,
    ASYM_INIT_XAVIER_NORMAL,
    ASYM_INIT_HE_UNIFORM,
    ASYM_INIT_HE_NORMAL,
} AsymInit;

typedef enum AsymLoss {
    ASYM_LOSS_SOFTMAX_CE = 1,
    ASYM_LOSS_SIGMOID_BCE, /* one-hot targets, mean over batch and classes */
} AsymLoss;

typedef struct AsymLayerSpec {
    AsymLayerKind kind;
    int rule;          /* fc, conv, resblock: a rule (rules/rules.h) overriding the network's; 0: none */
    int out;           /* fc: features; conv, resblock: output channels */
    int k, stride, pad; /* conv and pooling; pool k = 0 means global */
    int bias;          /* fc, conv: has a bias */
    float p;           /* dropout probability */
    float momentum;    /* batch norm running-statistics momentum (PyTorch's) */
    float eps;         /* batch norm epsilon */
    AsymShortcut shortcut; /* resblock */
    int bottleneck;    /* resblock: 1x1-3x3-1x1 with expansion 4 */
    float lr_scale;    /* per-layer learning-rate multiplier; 0 means 1 (a zeroed spec), negative freezes the layer
                          (multiplier 0: the config's lr_scale: 0) */
    int line;          /* config line that defined it, for messages */
} AsymLayerSpec;

/* The feedback rules' options (rules/), shared by every layer of a network. */
enum { ASYM_MAX_RULES = 32, ASYM_MAX_RULE_KEYS = 8 };
/* Mirror noise. ORTHOGONAL: normal noise whose n vectors are made orthogonal
 * (blocks of at most d = input size), scaled so E[x x^T] = std^2 I as for
 * the others; the sample covariance is then far less noisy when n ~ d. */
typedef enum AsymNoise { ASYM_NOISE_UNIFORM = 1, ASYM_NOISE_NORMAL, ASYM_NOISE_ORTHOGONAL } AsymNoise;

typedef struct AsymFeedbackSpec {
    AsymInit init;          /* distribution of random B (fa, dfa, frsf/brsf magnitudes); Xavier uniform by default */
    float init_gain;        /* multiplies that distribution (1) */
    int scale_he;           /* usf scale: 0 Xavier std sqrt(2/(fan_in+fan_out)), 1 He std sqrt(2/fan_in) */
    float scale;            /* usf: explicit scale s (> 0 overrides scale_he) */
    float concordance;      /* fraction p of B's entries whose sign agrees with W (usf, brsf, frsf); 1 by default */
    int norm_feedback;      /* Moskovitz et al.: scale B to W's norm after every change */
    int fixed_weight_norm;  /* Moskovitz et al.: keep each layer's |W| at its initial value */
    float clip_dx;          /* > 0: clip each weight layer's input gradient to this L2 norm per batch */
    float sparsity;         /* fraction of every B's entries held at zero by a fixed random mask (0: dense) */
    int dfa_conv;           /* dfa: a block that feeds a convolution gets BioTorch's D (a random classes x C x k x k
                               kernel taken back through that convolution from a constant error map); 0: dense random D */
    /* weight mirrors */
    AsymNoise wm_noise;     /* uniform by default (Akrout's); orthogonal: the exact estimator, with wm_lr = wm_decay = 1 equal to bp on layers with one output position */
    float wm_std;           /* noise std (0.05 / sqrt(3): uniform in [-0.05, 0.05]) */
    float wm_lr;            /* B = (1 - wm_decay) B + wm_lr y x^T / (n P std^2); 1e-3 and 1e-3 by default */
    float wm_decay;
    int wm_steps;           /* mirror steps after every training batch (1) */
    int wm_batch;           /* noise inputs per mirror step (0: the training batch's size; with orthogonal noise,
                               per layer fan_in/P, or 4 fan_in/P for P > 1 output positions) */
    int wm_presweep;        /* mirror steps before training (-1: ceil(3 / wm_decay), so (1 - decay)^steps <= e^-3; 1000 without decay) */
    int linear_optimizer;   /* the network will be trained by SGD without Batch Manhattan, whose step is linear in the
                               gradient and the parameter: pfa then steps B = F R itself (pfa.c); an experiment sets
                               it from its optimizer, and asym_optim_create refuses another optimizer for such a layer */
    /* the options a rule declares (Rule.keys, rules/): feedback.<rule>.<key>,
     * by rule number and key index; a choice holds its index */
    float rule_opt[ASYM_MAX_RULES][ASYM_MAX_RULE_KEYS];
} AsymFeedbackSpec;

/* Defaults as documented above. */

/* The convolution backend built in: "im2col + OpenBLAS" or "oneDNN X.Y.Z (...)". */
const char *asym_conv_backend(void);

typedef struct Shape {
    int c, h, w; /* per sample */
} Shape;

static inline size_t shape_size(Shape s) { return (size_t)s.c * s.h * s.w; }

typedef struct Layer Layer;
typedef struct Feedback Feedback;

/* A place in the arena (arena.c): *at is set to it when the arena is
 * allocated. Activations are placed when registered; scratch (planned) where
 * the plan finds it dead memory. */
typedef struct ArenaUse {
    float **at;
    size_t off, floats;
    const Layer *owner; /* scratch: the layer whose backward uses it */
    int planned;
} ArenaUse;

/* State shared by all layers of one network. */
typedef struct NetCtx {
    int max_batch;
    float *work;          /* scratch of the layers without a place in the arena (Layer.work), work_size floats */
    size_t work_size;
    float *arena;         /* activations, gradients and backward scratch (arena.c), arena_size floats */
    size_t arena_size, arena_acts; /* arena_acts: the activations' part, grown while building */
    ArenaUse *uses;
    int n_uses, cap_uses;
    int keep_path_outputs; /* a rule reads a residual path's output in the backward pass (rules/dkp.c): a block's
                              output does not overwrite its main path's */
    AsymRng rng;          /* dropout masks */
    AsymParam **params;   /* trainable tensors, in creation order */
    int n_params, cap_params;
    AsymParam **buffers;  /* running statistics */
    int n_buffers, cap_buffers;
    Layer **weight_layers; /* every fc/conv layer, in creation order */
    int n_weight_layers, cap_weight_layers;
    AsymParam **feedback;  /* feedback matrices (B, DFA projections), in creation order */
    int n_feedback, cap_feedback;
    int classes;
    AsymFeedbackSpec fb;   /* options of the feedback rules */
    float *mirror;         /* weight mirrors' scratch, sized for the largest layer (rules/wm.c) */
    double *mirror_gram;
    float *fb_grad;        /* the gradients of feedback matrices a rule trains itself (rules.h, RULE_OWN_GRAD), */
    size_t n_fb_grad;      /* contiguous: zeroed with the parameters' and summed over ranks */
} NetCtx;

/* How one pass through the layers runs. Every layer's forward and backward
 * takes it, so that a measurement runs in its own mode and leaves the
 * network as it was; net/ builds them (a zero Pass: evaluation). */
typedef struct Pass {
    int train;             /* batch statistics, dropout masks */
    int exact;             /* backpropagation: every layer uses W, no direct error */
    int freeze_stats;      /* training-mode batch norm leaves its running statistics alone */
    float momentum;        /* > 0: training-mode batch norm's running-statistics momentum instead of its own */
    int no_bias;           /* weight layers' forward leaves the bias out (a weight mirror's y = x W^T) */
    AsymRng *rng;          /* dropout masks' stream */
    /* data-parallel training: this rank's share of a global batch */
    int rows_before, rows_after;         /* samples of the global batch before and after the share (dropout masks) */
    void (*reduce)(void *arg, double *v, size_t n); /* set: training-mode batch norm sums its statistics over every rank with it, */
    void *reduce_arg;                               /* passing it this */
    const float *out_err;  /* backward: the output error (N, classes) that direct rules project */
    float grad_scale;      /* backward: > 0, the scale of the loss (a rank's share of a global batch; 0: 1), which
                              a rule's own gradient of B takes too */
    const int32_t *labels; /* backward: the batch's labels (N), whose one-hot targets drtp projects */
    float sample_weight;   /* backward: each sample's weight in the batch mean (1/N, times a rank's share) */
    float **record;        /* backward, when set: weight layer i copies its output gradient to record[i] */
} Pass;

typedef struct LayerOps {
    const char *name;
    /* x (N, in), y (N, out) */
    void (*forward)(Layer *l, const float *x, float *y, int N, const Pass *p);
    /* Adds into the parameter gradients; writes dx (N, in) unless dx is
     * NULL. x and y are this layer's input and output from the forward pass. */
    void (*backward)(Layer *l, const float *x, const float *y, const float *dy, float *dx, int N, const Pass *p);
    void (*free)(Layer *l);
    /* Weight layers only: the two halves of backward. backward_weight adds
     * into dW (W's shape) and db (when not NULL): the layer's gradients or
     * another sum (weight mirrors); backward_input writes dx from B, a
     * matrix of W's shape. */
    void (*backward_weight)(Layer *l, const float *x, const float *dy, int N, float *dW, float *db);
    void (*backward_input)(Layer *l, const float *B, const float *dy, float *dx, int N);
} LayerOps;

struct Layer {
    const LayerOps *ops;
    AsymLayerKind kind;
    Shape in, out;
    NetCtx *ctx;
    AsymParam *W, *b;   /* weight layers; b may be NULL */
    AsymParam *B;       /* weight layers: the feedback matrix the rule gives (W's shape), or NULL: W itself */
    /* set: B is behind W, and refresh_b(l) (the rule's) brings it up to
     * date; whatever reads B calls layer_feedback_current first */
    int b_stale;
    void (*refresh_b)(Layer *l);
    Feedback *fb;       /* weight layers: the rule's state (rules/), */
    void (*free_fb)(Feedback *fb); /* and how layer_free frees it */
    /* a layer whose rule sends the output error straight to its block
     * (dfa): that block's output gradient (N, block output) */
    const float *(*direct_error)(Layer *l, int N, const Pass *p);
    /* a layer whose rule trains B on a loss of its own: called after the
     * layer's backward in training passes (not exact ones) with its input
     * x (N, in) and output y (N, out: W x + b) of the forward pass and its
     * output gradient dy (N, out), adds that loss's gradient into B->g */
    void (*feedback_grad)(Layer *l, const float *x, const float *y, const float *dy, int N, const Pass *p);
    float *work;        /* its workspace (im2col, oneDNN's layouts): a place in the arena, where the network's */
    size_t work_floats; /* passes have no use for it (arena.c), or NULL: NetCtx.work */
    float **out_at;     /* set: the layer's output is written over this activation (a residual block's over its
                           main path's last, whose backward needs only its input) */
    void *impl;         /* kind-specific state */
    char name[40];      /* parameter-name prefix, e.g. "3" or "4.main.1" */
    int spec_rule;      /* the rule its spec asked for (0: the network's) */
    int index;          /* weight layers: place among them (Pass.record); others -1 */
};

/* A chain of layers with its activations, used for the whole network and
 * inside residual blocks. act[i] is the output of layer i, (max_batch, out_i). */
typedef struct Seq {
    Layer **layers;
    int n;
    Layer **dfa_at;     /* dfa_at[i]: the DFA layer whose block ends at layer i (or NULL) */
    float **act;
    float **grad;       /* grad[k]: the gradient with respect to act[k] in the backward pass (the arena's plan for
                           the whole network; a residual block's paths point theirs into the block's scratch) */
    size_t *end;        /* end[i]: where the arena's activations stood after layer i's output (arena.c) */
    size_t grad_floats; /* per sample: the largest activation (a block's paths' gradients) */
    const float *x;     /* input of the last forward pass */
    Shape in, out;
} Seq;

/* relu_in_place: a ReLU right after a batch norm writes over the batch
 * norm's output (whose backward needs only its input), as PyTorch's
 * in-place ReLU does; off where every layer's output is read afterwards
 * (`asymbp probe`). */
int seq_build(Seq *s, const AsymLayerSpec *specs, int n, Shape in, NetCtx *ctx, const char *prefix, int relu_in_place);
/* The memory plan (arena.c). arena_act: floats of activation at *at, in
 * creation order; arena_alias: *at the same place as *same; arena_scratch:
 * floats that owner's backward uses. arena_alloc, once every layer is
 * built: places the whole network top's gradients and the scratch where the
 * backward pass has no use for the activations (nothing over an activation
 * with keep; top NULL: a layer built alone), allocates, sets every *at. */
int arena_act(NetCtx *ctx, float **at, size_t floats);
int arena_alias(NetCtx *ctx, float **at, float **same);
int arena_scratch(NetCtx *ctx, float **at, size_t floats, const Layer *owner);
int arena_alloc(NetCtx *ctx, Seq *top, int keep);
void seq_forward(Seq *s, const float *x, int N, const Pass *p);
/* done, when set, is called after layer i's backward (dist.c overlaps its allreduce). */
void seq_backward(Seq *s, const float *dy, float *dx, int N, const Pass *p, void (*done)(void *arg, int i), void *done_arg);
static inline const float *seq_output(const Seq *s) { return s->n ? s->act[s->n - 1] : s->x; }
void seq_free(Seq *s);

/* Layer construction: checks the spec against the input shape (kinds.c,
 * the only list of layer kinds, with their names). */
Layer *layer_create(const AsymLayerSpec *spec, Shape in, NetCtx *ctx, const char *name);
const char *layer_kind_name(AsymLayerKind k);   /* "?" when unknown */
AsymLayerKind layer_kind_parse(const char *name); /* 0 when unknown */

/* B brought up to date with W where its rule left it behind. */
static inline void layer_feedback_current(Layer *l) {
    if (l->b_stale) {
        l->b_stale = 0;
        l->refresh_b(l);
    }
}
/* The matrix a weight layer's input-gradient half takes in place of W: its
 * rule's B (up to date), or W for exact backpropagation and alignment
 * measurements. */
static inline const float *layer_feedback_matrix(Layer *l, const Pass *p) {
    if (!l->B || p->exact) return l->W->w;
    layer_feedback_current(l);
    return l->B->w;
}
/* feedback.clip_dx: the input gradient (N, in) scaled down to that norm
 * when longer (not in exact passes). */
void layer_clip_dx(const Layer *l, const Pass *p, float *dx, int N);
/* Returns NULL, what a create function that failed returns. */
Layer *layer_free(Layer *l);
/* Common allocation for every kind; impl_size bytes of zeroed impl. */
Layer *layer_new(const LayerOps *ops, const AsymLayerSpec *spec, Shape in, Shape out, NetCtx *ctx, const char *name, size_t impl_size);

Layer *fc_create(const AsymLayerSpec *s, Shape in, NetCtx *ctx, const char *name);
Layer *conv2d_create(const AsymLayerSpec *s, Shape in, NetCtx *ctx, const char *name);
/* A convolution's kernel size, stride and padding. */
void conv2d_geometry(const Layer *l, int *k, int *stride, int *pad);
/* 1 when the convolution's passes run on oneDNN (conv2d_dnnl.c), 0 on im2col
 * (the portable build; a layer oneDNN declines, or one of 1 input channel) */
int conv2d_on_dnnl(const Layer *l);
Layer *pool_create(const AsymLayerSpec *s, Shape in, NetCtx *ctx, const char *name);
Layer *batchnorm_create(const AsymLayerSpec *s, Shape in, NetCtx *ctx, const char *name);
Layer *activation_create(const AsymLayerSpec *s, Shape in, NetCtx *ctx, const char *name);
Layer *flatten_create(const AsymLayerSpec *s, Shape in, NetCtx *ctx, const char *name);
Layer *dropout_create(const AsymLayerSpec *s, Shape in, NetCtx *ctx, const char *name);
Layer *resblock_create(const AsymLayerSpec *s, Shape in, NetCtx *ctx, const char *name);
/* A residual block's main path (k 0) or shortcut (k 1: NULL when it has no layers). */
Seq *resblock_path(Layer *l, int k);

/* Registers a tensor with the network (storage is assigned after building). */
AsymParam *ctx_param(NetCtx *ctx, const char *layer, const char *suffix, AsymParamRole role, int ndim, const int *shape);
AsymParam *ctx_buffer(NetCtx *ctx, const char *layer, const char *suffix, AsymParamRole role, int ndim, const int *shape);
/* A weight layer's W (wshape, with its fans) and, when the spec asks, its
 * bias (s->out), registered; the layer added to the weight layers. */
int layer_add_weights(Layer *l, const AsymLayerSpec *s, int ndim, const int *wshape, int fan_in, int fan_out);
/* A layer's workspace of at least floats, while building; then where it is. */
void layer_need_work(Layer *l, size_t floats);
static inline float *layer_work(const Layer *l) { return l->work ? l->work : l->ctx->work; }
static inline size_t layer_work_size(const Layer *l) { return l->work ? l->work_floats : l->ctx->work_size; }
/* Allocates what the layers asked for (work, the arena), once every layer
 * is built; top and keep as arena_alloc. ctx_free_scratch frees it. */
int ctx_alloc_scratch(NetCtx *ctx, Seq *top, int keep);
void ctx_free_scratch(NetCtx *ctx);

/* Weight-layer halves (also reachable through LayerOps), for tests. */
void fc_backward_weight(Layer *l, const float *x, const float *dy, int N, float *dW, float *db);
void fc_backward_input(Layer *l, const float *B, const float *dy, float *dx, int N);
void conv2d_backward_weight(Layer *l, const float *x, const float *dy, int N, float *dW, float *db);
void conv2d_backward_input(Layer *l, const float *B, const float *dy, float *dx, int N);
AsymParam *ctx_feedback(NetCtx *ctx, const char *layer, const char *suffix, int ndim, const int *shape);

/* Loss of logits (N, K) against labels; writes dlogits (N, K) when non-NULL.
 * Returns the mean loss; *correct counts top-1 hits. */
float loss_compute(AsymLoss kind, const float *logits, const int32_t *y, int N, int K, float *dlogits, int *correct);

/* Initializes every registered tensor of ctx. */
void init_params(NetCtx *ctx, AsymInit init, int zero_bias, AsymRng *rng);

#endif
