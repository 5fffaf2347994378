/* sdfa.c: sign direct feedback alignment (Frenkel, Lefebvre & Bol 2021,
 * reference code ChFrenkel/DirectRandomTargetProjection, function.py):
 * DFA with only the sign of the output error, each sample's sign(e)
 * weighted as in the batch mean: the block's output gradient is
 * sign(e) D / N, D fixed random (direct.c). */
#include "rules/rules.h"

static const float *sdfa_direct_error(Layer *l, int N, const Pass *p) {
    int K = l->fb->D->shape[0];
    float *s = l->fb->direct_in, w = p->sample_weight;
    for (size_t j = 0; j < (size_t)N * K; j++) s[j] = w * rule_sign(p->out_err[j]);
    return direct_project(l, N, s);
}

const Rule RULE_SDFA = {.name = "sdfa", .flags = RULE_DIRECT, .direct_init = direct_setup, .direct_error = sdfa_direct_error};
