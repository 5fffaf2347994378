/* align.c: how well a rule's feedback aligns with exact backpropagation,
 * per weight layer (REFERENCE "Measurements users expect"): the angle
 * between B and W, |B|/|W|, the fraction of concordant signs, the delta
 * angle between the error signal the rule sends into the layer and BP's
 * on the same batch and weights, and the angle between weight gradients. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "net/net.h"

static double angle_deg(const float *a, const float *b, size_t n) {
    double ab = vec_dot(a, b, n), na = vec_norm(a, n), nb = vec_norm(b, n);
    if (na == 0 || nb == 0) return NAN;
    double c = ab / (na * nb);
    c = c > 1 ? 1 : c < -1 ? -1 : c;
    return acos(c) * 180.0 / M_PI;
}

int asym_net_alignment(AsymNet *net, const float *x, const int32_t *y, int N, AsymAlignment *out) {
    int L = asym_net_n_weight_layers(net);
    size_t total_out = 0, nw = asym_net_n_weights(net);
    for (int i = 0; i < L; i++) total_out += (size_t)N * shape_size(net_weight_layer(net, i)->out);
    float *rec = asym_falloc(2 * total_out), *grads = asym_falloc(nw), **record = asym_calloc(L ? L : 1, sizeof(float *));
    if (!rec || !grads || !record) {
        free(rec);
        free(grads);
        free(record);
        return ASYM_ERR;
    }
    /* training mode on a copy of the dropout stream, running statistics
     * left alone; then backward under the rule and under exact BP */
    AsymRng rng = *net_rng(net);
    StepMode m = net_mode(net, 1);
    m.pass.freeze_stats = 1, m.pass.rng = &rng, m.pass.record = record;
    net_forward(net, x, N, &m);
    for (int pass = 0; pass < 2; pass++) {
        size_t off = pass * total_out;
        for (int i = 0; i < L; i++) {
            record[i] = rec + off;
            off += (size_t)N * shape_size(net_weight_layer(net, i)->out);
        }
        m.pass.exact = pass;
        asym_net_zero_grad(net);
        net_backward(net, y, N, &m, NULL);
        if (pass == 0) memcpy(grads, asym_net_param(net, 0)->g, sizeof(float) * nw);
    }
    free(record);
    for (int i = 0; i < L; i++) layer_feedback_current(net_weight_layer(net, i)); /* B as the rule has it now */
    size_t off = 0;
    const float *g0 = asym_net_param(net, 0)->g;
    for (int i = 0; i < L; i++) {
        Layer *l = net_weight_layer(net, i);
        AsymAlignment *a = &out[i];
        size_t n = l->W->n, no = (size_t)N * shape_size(l->out);
        memset(a, 0, sizeof *a);
        snprintf(a->name, sizeof a->name, "%s", l->name);
        a->rule = l->fb->rule;
        const float *B = l->fb->B ? l->fb->B->w : a->rule == ASYM_RULE_BP ? l->W->w : NULL;
        if (B) {
            double agree = 0;
            for (size_t j = 0; j < n; j++) agree += (B[j] > 0) == (l->W->w[j] > 0) && (B[j] < 0) == (l->W->w[j] < 0);
            a->angle = B == l->W->w ? 0.0 : angle_deg(B, l->W->w, n);
            a->norm_ratio = vec_norm(B, n) / vec_norm(l->W->w, n);
            a->sign_agree = agree / n;
        } else {
            a->angle = a->norm_ratio = a->sign_agree = NAN;
        }
        a->delta_angle = angle_deg(rec + off, rec + total_out + off, no);
        size_t poff = (size_t)(l->W->g - g0);
        a->grad_angle = angle_deg(grads + poff, l->W->g, n);
        if (a->rule == ASYM_RULE_BP && !isnan(a->delta_angle) && a->delta_angle < 1e-3) a->delta_angle = 0;
        off += no;
    }
    asym_net_zero_grad(net);
    free(rec);
    free(grads);
    return ASYM_OK;
}
