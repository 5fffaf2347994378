/* sa.c: symmetric alignment (Kunin et al. 2020, Alignments/alignment.py
 * Symmetric): R = alpha (|W|^2 + |B|^2) - beta <W, B>, so dR/dB =
 * 2 alpha B - beta W; with beta = 2 alpha, R = alpha |W - B|^2 + const
 * and B decays toward W. The input option is accepted for the family's
 * sake: sa's R does not read x. */
#include "rules/rules.h"

static const RuleKey KEYS[] = {{"alpha", 1e-3f, 0, 1e6f, NULL}, {"beta", 2e-3f, 0, 1e6f, NULL}, {"input", 0, 0, 2, KUNIN_INPUTS}, {"std", 1, 0, 1e6f, NULL}, {NULL}};

static void sa_grad(Layer *l, const float *x, const float *y, const float *dy, int N, const Pass *p) {
    float s = kunin_scale(p);
    (void)x, (void)y, (void)N;
    kunin_decay_self(l, s * rule_option(l, 0), s * rule_option(l, 1));
}

const Rule RULE_SA = {.name = "sa", .flags = RULE_OWN_B | RULE_OWN_GRAD, .keys = KEYS, .init = kunin_init, .grad = sa_grad};
