/* net.h: what the library's upper folders (train, dist) see of a network
 * beyond the public AsymNet calls: its tensors in their fixed order, its
 * weight layers, its dropout stream and feedback options, its top chain. */
#ifndef ASYM_NET_H
#define ASYM_NET_H

#include "rules/rules.h"

/* The network's top-level chain. */
Seq *net_seq(AsymNet *net);
/* Every tensor, in the order of weights files and checkpoints: parameters,
 * then buffers, then feedback matrices. */
int net_n_tensors(const AsymNet *net);
AsymParam *net_tensor(const AsymNet *net, int i);
/* Weight layer i, in creation order (asym_net_n_weight_layers of them). */
Layer *net_weight_layer(const AsymNet *net, int i);
/* The dropout masks' stream, and the options of the feedback rules. */
AsymRng *net_rng(AsymNet *net);
const AsymFeedbackSpec *net_feedback_options(const AsymNet *net);

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
 * with a mode, also the backward pass, adding into the gradients. */
float net_backward(AsymNet *net, const int32_t *y, int N, const StepMode *m, int *correct);

#endif
