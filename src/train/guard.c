/* guard.c: what stops a run that diverged: a NaN or an Inf in any tensor
 * after a step, and, with debug.trap_fp, the floating-point traps that
 * stop it at the operation that made the first one. */
#include <fenv.h>
#include <string.h>

#include "train/train.h"

/* Whether w (n) holds a NaN or an Inf. The test is on bit patterns (all
 * exponent bits set): integer work that raises no floating-point exception,
 * vectorized by omp simd (GCC's -O2 cost model leaves it scalar, 7 times
 * slower). */
static int any_nonfinite(const float *w, size_t n) {
    uint32_t bad = 0;
#pragma omp simd reduction(| : bad)
    for (size_t j = 0; j < n; j++) {
        uint32_t u;
        memcpy(&u, w + j, 4);
        bad |= (u & 0x7f800000u) == 0x7f800000u;
    }
    return bad != 0;
}

int guard_tensors(AsymNet *net, const AsymOptim *opt, char *what, size_t n, char *name, size_t name_n) {
    /* after a step (opt): what the optimizer wrote it checked as it wrote
     * (unless W was rescaled after it: fixed_weight_norm), and what
     * training never changes was checked at the first step; a B behind W
     * will be made from the W checked here */
    int stepped_ok = opt && !optim_wrote_nonfinite(opt) && !net_feedback_options(net)->fixed_weight_norm;
    for (int i = 0; i < net_n_tensors(net); i++) {
        AsymParam *p = net_tensor_as_is(net, i);
        if (stepped_ok && (i < asym_net_n_params(net) || (p->role == ASYM_P_FEEDBACK && p->g))) continue;
        if ((opt && net_tensor_fixed(net, i)) || net_tensor_behind(net, i) || !any_nonfinite(p->w, p->n)) continue;
        uint32_t u = 0;
        size_t j = 0;
        for (; j < p->n; j++) {
            memcpy(&u, p->w + j, 4);
            if ((u & 0x7f800000u) == 0x7f800000u) break;
        }
        snprintf(what, n, "%s in %s[%zu]", (u & 0x007fffffu) ? "NaN" : "Inf", p->name, j);
        snprintf(name, name_n, "%s", p->name);
        return 1;
    }
    return 0;
}

/* Invalid operations, divisions by zero and overflows raise SIGFPE where
 * they happen, in every thread that runs the step (OpenBLAS shares
 * OpenMP's threads). Flags already raised are cleared first. */
void guard_fp_traps(int on) {
    const int traps = FE_INVALID | FE_DIVBYZERO | FE_OVERFLOW;
#pragma omp parallel
    {
        feclearexcept(FE_ALL_EXCEPT);
        if (on) feenableexcept(traps);
        else fedisableexcept(traps);
    }
}
