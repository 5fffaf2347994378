/* drtp.c: direct random target projection (Frenkel, Lefebvre & Bol 2021,
 * reference code ChFrenkel/DirectRandomTargetProjection, function.py):
 * each hidden block receives the one-hot target y*, not the error, through
 * its fixed random D (direct.c): the block's output gradient is y* D / N
 * (the reference code's sign, +y* D; each sample weighted as in the batch
 * mean). No error reaches the hidden layers; the output layer learns by
 * its exact gradient. */
#include "rules/rules.h"

#include <string.h>

static const float *drtp_direct_error(Layer *l, int N, const Pass *p) {
    int K = l->fb->D->shape[0];
    float *t = l->fb->direct_in;
    memset(t, 0, sizeof(float) * (size_t)N * K);
    for (int n = 0; n < N; n++)
        if (p->labels[n] >= 0 && p->labels[n] < K) t[(size_t)n * K + p->labels[n]] = p->sample_weight;
    return direct_project(l, N, t);
}

const Rule RULE_DRTP = {.name = "drtp", .flags = RULE_DIRECT, .direct_init = direct_setup, .direct_error = drtp_direct_error};
