/* loss.c: softmax cross-entropy (mean over the batch) and sigmoid binary
 * cross-entropy against one-hot targets (mean over batch and classes, as
 * torch.nn.BCEWithLogitsLoss), with their gradients. logits are (N, K). */
#include <math.h>

#include "layers/layers.h"

float loss_compute(AsymLoss kind, const float *logits, const int32_t *y, int N, int K, float *dlogits, int *correct) {
    double total = 0;
    int hits = 0;
    for (int n = 0; n < N; n++) {
        const float *z = logits + (size_t)n * K;
        int arg = 0;
        for (int k = 1; k < K; k++)
            if (z[k] > z[arg]) arg = k;
        hits += arg == y[n];
        if (kind == ASYM_LOSS_SIGMOID_BCE) {
            for (int k = 0; k < K; k++) {
                double t = k == y[n], v = z[k];
                /* log(1 + exp(-|v|)) + max(v, 0) - v t, stable for any v */
                total += (v > 0 ? v : 0) - v * t + log1p(exp(-fabs(v)));
                if (dlogits) dlogits[(size_t)n * K + k] = (float)((1.0 / (1.0 + exp(-v)) - t) / ((double)N * K));
            }
            continue;
        }
        double m = z[arg], s = 0;
        for (int k = 0; k < K; k++) s += exp(z[k] - m);
        total += log(s) + m - z[y[n]];
        if (dlogits)
            for (int k = 0; k < K; k++) dlogits[(size_t)n * K + k] = (float)((exp(z[k] - m) / s - (k == y[n])) / N);
    }
    if (correct) *correct = hits;
    if (N == 0) return 0.0f;
    return (float)(kind == ASYM_LOSS_SIGMOID_BCE ? total / ((double)N * K) : total / N);
}
