/* usf.c: uniform sign-concordant feedback (Liao et al. 2016): B = s sign(W),
 * s = feedback.scale (default Xavier's sqrt(2 / (fan_in + fan_out))),
 * following W's signs after every step. */
#include "rules/rules.h"

static int usf_init(Layer *l, size_t *floats, size_t *doubles) {
    if (sign_init(l, 0)) return ASYM_ERR;
    sign_from_w(l);
    return ASYM_OK;
}

const Rule RULE_USF = {.name = "usf", .flags = RULE_OWN_B, .init = usf_init, .refresh = sign_from_w, .follow_weights = sign_follow_weights};
