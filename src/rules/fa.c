/* fa.c: feedback alignment (Lillicrap et al. 2016): B fixed, drawn once
 * from the feedback initialization (feedback.init, feedback.gain). */
#include "rules/rules.h"

static int fa_init(Layer *l, size_t *floats, size_t *doubles) {
    rule_fill_random(&l->ctx->fb, l->W, l->fb->B->w, l->W->n, &l->fb->rng);
    return ASYM_OK;
}

const Rule RULE_FA = {.name = "fa", .flags = RULE_OWN_B, .init = fa_init};
