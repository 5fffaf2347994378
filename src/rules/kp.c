/* kp.c: Kolen-Pollack (Akrout et al. 2019): B starts random and receives
 * exactly W's update and weight decay, so W - B decays to zero. B shares
 * W's gradient: the optimizer gives both the same step. */
#include "rules/rules.h"

static int kp_init(Layer *l, size_t *floats, size_t *doubles) {
    AsymParam *B = l->fb->B;
    rule_fill_random(&l->ctx->fb, l->W, B->w, l->W->n, &l->fb->rng);
    B->g = l->W->g;
    B->lr_scale = l->W->lr_scale;
    return ASYM_OK;
}

const Rule RULE_KP = {.name = "kp", .flags = RULE_OWN_B, .init = kp_init};
