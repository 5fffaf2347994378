/* eval.c: test and validation error, on one process or spread over the
 * ranks, and the summary numbers of an alignment measurement. */
#include <math.h>
#include <string.h>

#include "train/train.h"

int asym_experiment_data(const AsymExperiment *ex, int prepared, AsymDataset *train, AsymDataset *val, AsymDataset *test) {
    AsymDataSpec s = ex->data;
    if (!prepared) { /* the pixels as read: no padding, augmentation or normalization */
        if (augment_on(&s.aug)) s.h = s.aug.in_h, s.w = s.aug.in_w;
        memset(&s.aug, 0, sizeof s.aug);
        s.h -= 2 * s.pad;
        s.w -= 2 * s.pad;
        s.pad = s.normalize = s.norm_given = 0;
    }
    /* with augmentation, training images as evaluation sees them: no draw is "the" one */
    if (asym_data_load(&s, ex->seed, train, val, test) || augment_prepare_set(&s, train)) {
        asym_dataset_free(train);
        asym_dataset_free(val);
        asym_dataset_free(test);
        return ASYM_ERR;
    }
    return ASYM_OK;
}

int asym_experiment_names(const AsymExperiment *ex, char ***names, int *n) {
    return asym_data_class_names(&ex->data, ex->seed, names, n);
}

int asym_experiment_net(const AsymExperiment *ex, AsymNet **net) {
    AsymRng rng;
    asym_rng_seed(&rng, ex->seed);
    return asym_net_create(net, &ex->net, ex->batch_size, &rng);
}

int asym_experiment_optim(const AsymExperiment *ex, AsymNet *net, AsymOptim **opt) { return asym_optim_create(opt, net, &ex->opt); }

float asym_experiment_lr(const AsymExperiment *ex, int epoch) { return asym_sched_lr(&ex->sched, ex->opt.lr, epoch, ex->epochs); }

int asym_evaluate(AsymNet *net, const AsymDataset *d, int batch, double *loss, double *err) {
    double total = 0;
    long wrong = 0;
    size_t in = (size_t)d->c * d->h * d->w;
    for (int i = 0; i < d->n; i += batch) {
        int N = d->n - i < batch ? d->n - i : batch, hits;
        asym_net_forward(net, d->x + i * in, N, 0);
        total += (double)asym_net_loss(net, d->y + i, N, 0, &hits) * N;
        wrong += N - hits;
    }
    *loss = d->n ? total / d->n : 0;
    *err = d->n ? (double)wrong / d->n : 0;
    return ASYM_OK;
}

void eval_all(AsymNet *net, const AsymDataset *d, int batch, double *loss, double *err) {
    int P = dist_size(), rank = dist_rank();
    if (P == 1) {
        asym_evaluate(net, d, batch, loss, err);
        return;
    }
    size_t in = (size_t)d->c * d->h * d->w;
    int nb = (d->n + batch - 1) / batch, b0 = (int)((long)nb * rank / P), b1 = (int)((long)nb * (rank + 1) / P);
    AsymDataset part = *d;
    part.x = d->x + (size_t)b0 * batch * in;
    part.y = d->y + (size_t)b0 * batch;
    int end = b1 * batch < d->n ? b1 * batch : d->n;
    part.n = end > b0 * batch ? end - b0 * batch : 0;
    double v[2] = {0, 0}, l = 0, e = 0;
    if (part.n > 0) asym_evaluate(net, &part, batch, &l, &e);
    v[0] = l * part.n, v[1] = e * part.n;
    dist_sum_f64(v, 2, NULL);
    *loss = d->n ? v[0] / d->n : 0;
    *err = d->n ? v[1] / d->n : 0;
}

double eval_mean_angle(const AsymAlignment *a, int n) {
    double s = 0;
    int k = 0;
    for (int i = 0; i < n; i++)
        if (a[i].rule != ASYM_RULE_BP && !isnan(a[i].angle)) s += a[i].angle, k++;
    return k ? s / k : NAN;
}
