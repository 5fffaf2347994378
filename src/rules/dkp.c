/* dkp.c: direct Kolen-Pollack (Webster, Choe & Walker 2020, "Learning the
 * connections in direct feedback alignment"; reference code
 * webstah/dkp-gist): DFA (the block's output gradient is e D, direct.c)
 * whose D learns. D's gradient is e^T h, h the block's output (the update
 * the next layer's W would get were h its input), and the optimizer steps
 * D with it, with weight decay and momentum as a weight: for the block
 * under the output layer D receives exactly that layer's gradient, as kp's
 * B, so D - W decays. D's gradient is written, not added, by every
 * backward pass; under MPI it is summed over the ranks with the weights'
 * (dist.c), so D stays the same on all. */
#include "rules/rules.h"

static int dkp_direct_init(NetCtx *ctx, Seq *top, int i, AsymRng *rng) {
    Layer *l = top->layers[i];
    if (direct_setup(ctx, top, i, rng)) return ASYM_ERR;
    Feedback *fb = l->fb;
    if (!(fb->direct_g = asym_calloc(fb->D->n, sizeof(float)))) return ASYM_ERR;
    fb->D->g = fb->direct_g;
    return ASYM_OK;
}

/* e D into the block, and D's gradient e^T h: e (N, classes), h (N, block output) */
static const float *dkp_direct_error(Layer *l, int N, const Pass *p) {
    Feedback *fb = l->fb;
    int K = fb->D->shape[0], S = fb->D->shape[1];
    gemm(1, 0, K, S, N, 1.0f, p->out_err, K, fb->direct_out, S, 0.0f, fb->direct_g, S);
    return direct_project(l, N, p->out_err);
}

const Rule RULE_DKP = {.name = "dkp", .flags = RULE_DIRECT, .direct_init = dkp_direct_init, .direct_error = dkp_direct_error};
