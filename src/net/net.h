/* net.h: what the library's upper folders (train, dist) see of a network
 * beyond the public AsymNet calls: its tensors in their fixed order, its
 * weight layers, its dropout stream and feedback options, its top chain. */
#ifndef ASYM_NET_H
#define ASYM_NET_H

#include "rules/rules.h"

/* ---- the network calls the public header leaves out ---- */
/* Builds the network for batches of at most max_batch, initialized from
 * rng; everything the training step needs is allocated here. */
int asym_net_create(AsymNet **net, const AsymNetSpec *spec, int max_batch, AsymRng *rng);
size_t asym_net_n_weights(const AsymNet *net); /* floats over all parameters */
/* A training-mode forward pass of x that moves every batch norm's running
 * statistics toward the batch's with weight alpha (first: replaces them). */
void asym_net_recompute_stats(AsymNet *net, const float *x, int N, float alpha, int first);
/* on: later backward passes keep the input gradient (N, in_c, in_h, in_w). */
void asym_net_keep_input_grad(AsymNet *net, int on);
const float *asym_net_input_grad(const AsymNet *net);
/* The gradient of the last loss with respect to the logits. */
const float *asym_net_logits_grad(const AsymNet *net);
/* Feedback matrices ("3.B") and DFA projections ("3.D", (classes, block
 * output)); for kp, g is W's. Every B is brought up to date with its W
 * first (a rule may leave it behind until read: Rule.refresh). */
int asym_net_n_feedback(const AsymNet *net);
AsymParam *asym_net_feedback(AsymNet *net, int i);
/* The same tensor as it stands, a B perhaps behind its W: for the
 * gradients and steps of the matrices that have one (never left behind). */
AsymParam *net_feedback_as_is(const AsymNet *net, int i);
/* The gradients of the feedback matrices their rules train (RULE_OWN_GRAD),
 * contiguous, *n floats (NULL, 0 when none): zeroed with the parameters'
 * and, under MPI, summed over ranks like them. */
float *net_feedback_grads(AsymNet *net, size_t *n);
/* Orthogonal mirror-noise blocks left plain normal noise (a failed
 * Cholesky factorization) since the network was made. */
int asym_net_wm_fallbacks(const AsymNet *net);

typedef enum AsymOptKind { ASYM_SGD = 1, ASYM_ADAM } AsymOptKind;
typedef struct AsymOptSpec {
    AsymOptKind kind;
    float lr, momentum, weight_decay, dampening;
    int nesterov;
    int manhattan;           /* SGD: Batch Manhattan, the sign of each gradient entry (Liao et al.) */
    float beta1, beta2, eps; /* Adam */
} AsymOptSpec;

typedef enum AsymSchedKind { ASYM_SCHED_CONST = 1, ASYM_SCHED_STEP, ASYM_SCHED_MULTISTEP, ASYM_SCHED_COSINE } AsymSchedKind;
typedef struct AsymSchedSpec {
    AsymSchedKind kind;
    int milestones[16], n_milestones; /* multistep: epochs after which lr *= gamma */
    int step_size;                    /* step: every step_size epochs */
    float gamma;
    int t_max;                        /* cosine: period in epochs (0 = all epochs) */
    float eta_min;
} AsymSchedSpec;

/* Learning rate for a 0-based epoch, as PyTorch's schedulers give it. */
float asym_sched_lr(const AsymSchedSpec *s, float base_lr, int epoch, int epochs);
int asym_optim_create(AsymOptim **opt, AsymNet *net, const AsymOptSpec *spec);
/* The optimizer's state (optim.c): m (and v for Adam) hold one float per
 * float of every parameter, then of every feedback matrix that shares a
 * gradient, in step order; t counts steps. */
void optim_state(AsymOptim *o, AsymOptKind *kind, float **m, float **v, long **t);
/* Whether the last asym_optim_step wrote a NaN or an Inf into a tensor it
 * stepped (every parameter, and the feedback matrices with a gradient). */
int optim_wrote_nonfinite(const AsymOptim *o);

/* The network's top-level chain. */
Seq *net_seq(AsymNet *net);
/* Every tensor, in the order of weights files and checkpoints: parameters,
 * then buffers, then feedback matrices, each B up to date with its W
 * (bringing it there changes nothing the network computes, so a const
 * network may be asked). */
int net_n_tensors(const AsymNet *net);
AsymParam *net_tensor(const AsymNet *net, int i);
/* Tensor i as it stands, and whether it is a B left behind its W (whose
 * values mean nothing until brought up to date). */
AsymParam *net_tensor_as_is(const AsymNet *net, int i);
int net_tensor_behind(const AsymNet *net, int i);
/* Whether tensor i is a feedback tensor training leaves as it is
 * (feedback_tensor_fixed). */
int net_tensor_fixed(const AsymNet *net, int i);
/* Whether feedback tensor i's gradient is derived from the averaged
 * gradients before the step (feedback_grad_derived): not summed over ranks. */
int net_feedback_grad_derived(const AsymNet *net, int i);
/* Weight layer i, in creation order (asym_net_n_weight_layers of them). */
Layer *net_weight_layer(const AsymNet *net, int i);
/* The dropout masks' stream, and the options of the feedback rules. */
AsymRng *net_rng(AsymNet *net);
const AsymFeedbackSpec *net_feedback_options(const AsymNet *net);
/* The rules' work before an optimizer step (feedback_before_step). */
void net_feedback_before_step(AsymNet *net);

/* How one step runs: the Pass every layer sees, and what the step itself
 * does with it. Modes are arguments: a measurement makes its own (exact,
 * frozen statistics, a copy of the dropout stream) and changes nothing. */
typedef struct StepMode {
    Pass pass;
    float grad_scale;               /* > 0: dlogits multiplied by it (a rank's share of a global batch) */
    void (*done)(void *arg, int i); /* set: called after top-level layer i's backward (dist.c) */
    void *done_arg;
} StepMode;

/* The plain mode: training or evaluation, the rule's feedback, the
 * network's own dropout stream and batch-norm momentum. */
StepMode net_mode(AsymNet *net, int train);
/* Forward pass over N samples (at most the batch size); the logits. */
const float *net_forward(AsymNet *net, const float *x, int N, const StepMode *m);
/* The mean loss of the last forward pass against y (*correct: top-1 hits);
 * with a mode, also the backward pass, adding into the gradients. The
 * backward pass overwrites activations it is done with; a second one after
 * the same forward pass first recomputes them (the same bits: the same
 * input, pass and dropout masks; running statistics untouched). */
float net_backward(AsymNet *net, const int32_t *y, int N, const StepMode *m, int *correct);

/* The arena's floats (layers/arena.c); *acts: its activations' part. */
size_t net_arena_floats(const AsymNet *net, size_t *acts);
/* The number of classes (logits per sample). */
int net_classes(const AsymNet *net);

#endif
