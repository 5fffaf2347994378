/* dfa.c: direct feedback alignment (Nokland 2016). The output error e
 * reaches each block (a weight layer and the layers up to the next weight
 * layer) through its own fixed random D: the block's output gradient is
 * e D, and the layer after the block computes no input gradient. The
 * layer's own input gradient is not used, so it has no B. The last
 * weight layer takes the true error; inside a residual block a block ends
 * at its path's end (rule.c). The blocks and D are direct.c's. */
#include "rules/rules.h"

static const float *dfa_direct_error(Layer *l, int N, const Pass *p) { return direct_project(l, N, p->out_err); }

const Rule RULE_DFA = {.name = "dfa", .flags = RULE_DIRECT, .direct_init = direct_setup, .direct_error = dfa_direct_error};
