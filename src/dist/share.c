/* share.c: a rank's part of a data-parallel training step (docs/MPI.md):
 * its rows of each global batch and their step mode, and the sums over
 * ranks a step needs beside the gradients. */
#include "dist/dist.h"

/* This rank's share of a global batch of N: rows [*lo, *lo + *n), and the
 * weight of its mean loss in the batch's. A batch smaller than the rank
 * count is computed whole by every rank, each weighted 1/P. */
static double batch_share(int N, int rank, int P, int *lo, int *n) {
    if (N < P) {
        *lo = 0, *n = N;
        return 1.0 / P;
    }
    *lo = (int)((long)N * rank / P);
    *n = (int)((long)N * (rank + 1) / P) - *lo;
    return (double)*n / N;
}

/* Pass.reduce of synchronized batch norm */
static void sum_stats(void *count, double *v, size_t n) { dist_sum_f64(v, n, count); }

void share_rows(int N, int *lo, int *n) {
    *lo = 0, *n = N;
    if (dist_size() > 1) batch_share(N, dist_rank(), dist_size(), lo, n);
}

StepMode share_mode(AsymNet *net, int N, int sync_bn, DistCount *count, int *lo, int *n, double *weight) {
    StepMode m = net_mode(net, 1);
    int P = dist_size();
    *lo = 0, *n = N, *weight = 1;
    if (P == 1) return m;
    *weight = batch_share(N, dist_rank(), P, lo, n);
    m.grad_scale = (float)*weight;
    m.pass.rows_before = *lo, m.pass.rows_after = N - *lo - *n;
    m.pass.reduce = sync_bn ? sum_stats : NULL;
    m.pass.reduce_arg = count;
    return m;
}

size_t share_buffer_floats(AsymNet *net) {
    size_t n = 0;
    for (int i = 0; i < asym_net_n_buffers(net); i++) n += asym_net_buffer(net, i)->n;
    return n;
}

void share_step_sums(AsymNet *net, double *v, int buffers, DistCount *count) {
    size_t k = 3;
    int P = dist_size();
    if (buffers)
        for (int i = 0; i < asym_net_n_buffers(net); i++) {
            AsymParam *p = asym_net_buffer(net, i);
            for (size_t j = 0; j < p->n; j++) v[k++] = p->w[j];
        }
    dist_sum_f64(v, k, count);
    k = 3;
    if (buffers)
        for (int i = 0; i < asym_net_n_buffers(net); i++) {
            AsymParam *p = asym_net_buffer(net, i);
            for (size_t j = 0; j < p->n; j++) p->w[j] = (float)(v[k++] / P);
        }
}

int share_any(int flag) {
    double v = flag;
    dist_sum_f64(&v, 1, NULL);
    return v > 0;
}
