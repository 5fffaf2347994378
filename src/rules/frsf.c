/* frsf.c: fixed random-magnitude sign-concordant feedback (Liao et al.
 * 2016): B = |M| sign(W), M drawn once, following W's signs after every
 * step. */
#include "rules/rules.h"

static int frsf_init(Layer *l, size_t *floats, size_t *doubles) {
    if (sign_init(l, 1)) return ASYM_ERR;
    sign_from_w(l);
    return ASYM_OK;
}

const Rule RULE_FRSF = {.name = "frsf", .flags = RULE_OWN_B, .init = frsf_init, .refresh = sign_from_w, .follow_weights = sign_follow_weights};
