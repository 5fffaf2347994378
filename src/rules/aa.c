/* aa.c: activation alignment (Kunin et al. 2020, Alignments/alignment.py
 * Activation): R = alpha (E|Wx|^2 + E|B x|^2) - beta E[(Bx).(Wx)] over
 * the layer's input x (or noise: feedback.aa.input, .std), so dR/dB =
 * E[(2 alpha Bx - beta Wx) x^T]; with beta = 2 alpha, alpha E|Bx - Wx|^2. */
#include "rules/rules.h"

static const RuleKey KEYS[] = {{"alpha", 1e-3f, 0, 1e6f, NULL}, {"beta", 2e-3f, 0, 1e6f, NULL}, {"input", 0, 0, 2, KUNIN_INPUTS}, {"std", 1, 0, 1e6f, NULL}, {NULL}};

static void aa_grad(Layer *l, const float *data, const float *y, const float *dy, int N, const Pass *p) {
    float s = kunin_scale(p);
    const float *x = kunin_input(l, data, N, 2, p);
    kunin_sparse_amp(l, x, kunin_wx(l, x, data, y, N), N, s * rule_option(l, 0), s * rule_option(l, 1));
}

const Rule RULE_AA = {.name = "aa", .flags = RULE_OWN_B | RULE_OWN_GRAD, .keys = KEYS, .init = kunin_init, .grad = aa_grad};
