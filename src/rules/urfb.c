/* urfb.c: updated random feedback (Amit 2019, "Deep learning with
 * asymmetric connections and Hebbian updates", Front. Comput. Neurosci.
 * 13:18; reference code yaliamit/URFB, Conv_layers.py: gradR = gradW).
 * B starts random and receives W's update without decay: Kolen-Pollack
 * with zero decay. B shares W's gradient and the optimizer steps it with
 * its own state (momentum buffer, Adam moments) but no weight decay, so
 * "W's update" is the step W's task gradient alone produces: with weight
 * decay 0 B's state equals W's and B takes W's step exactly (SGD, momentum,
 * Nesterov, Adam, Batch Manhattan), W - B = W0 - B0 for ever; with weight
 * decay W's own decay is the difference. Option sparsity: a fraction of
 * B's entries held at zero and never updated (Amit's update_only_non_zero),
 * the sparse-feedback mask of the driver (overrides feedback.sparsity). */
#include "rules/rules.h"

static const RuleKey KEYS[] = {{"sparsity", 0.0f, 0.0f, 1.0f, NULL}, {NULL, 0, 0, 0, NULL}};

static int urfb_init(Layer *l, size_t *floats, size_t *doubles) {
    AsymParam *B = l->fb->B;
    rule_fill_random(&l->ctx->fb, l->W, B->w, l->W->n, &l->fb->rng);
    B->g = l->W->g;
    B->lr_scale = l->W->lr_scale;
    B->decay = 0;
    if (rule_option(l, 0) > 0) l->fb->sparsity = rule_option(l, 0);
    return ASYM_OK;
}

const Rule RULE_URFB = {.name = "urfb", .flags = RULE_OWN_B, .keys = KEYS, .init = urfb_init};
