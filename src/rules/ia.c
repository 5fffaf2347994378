/* ia.c: information alignment (Kunin et al. 2020, Alignments/alignment.py
 * Information, without its reconstruction variants): R = -alpha
 * E[(Bx).(Wx)] + beta E|B^T W x|^2 + gamma (|W|^2 + |B|^2) over the
 * layer's input x (or noise: feedback.ia.input, .std), so dR/dB =
 * -alpha E[(Wx) x^T] + 2 beta E[(Wx)(B^T W x)^T] + 2 gamma B. Local:
 * amp, null and decay need only what B's synapses see. With beta = 0 and
 * noise it is Kunin's weight mirror (Mirror: alpha amp + gamma decay),
 * Akrout's wm (docs/RULES.md gives the mapping). */
#include "rules/rules.h"

static const RuleKey KEYS[] = {{"alpha", 2e-3f, 0, 1e6f, NULL}, {"beta", 1e-3f, 0, 1e6f, NULL}, {"gamma", 1e-3f, 0, 1e6f, NULL},
                               {"input", 0, 0, 2, KUNIN_INPUTS}, {"std", 1, 0, 1e6f, NULL}, {NULL}};

static void ia_grad(Layer *l, const float *data, const float *y, const float *dy, int N, const Pass *p) {
    float s = kunin_scale(p);
    const float *x = kunin_input(l, data, N, 3, p);
    float *wx = kunin_wx(l, x, data, y, N);
    kunin_amp(l, x, wx, N, s * rule_option(l, 0));
    if (rule_option(l, 1) != 0) kunin_null(l, wx, N, s * rule_option(l, 1));
    kunin_decay(l, s * rule_option(l, 2));
}

const Rule RULE_IA = {.name = "ia", .flags = RULE_OWN_B | RULE_OWN_GRAD, .keys = KEYS, .init = kunin_init, .grad = ia_grad};
