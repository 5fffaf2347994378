/* eval.c: test and validation error, on one process or spread over the
 * ranks, and the summary numbers of an alignment measurement; the
 * config's thread count. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train/train.h"

#ifdef _OPENMP
#include <omp.h>
#define MAX_THREADS() omp_get_max_threads()
#else
#define MAX_THREADS() 1 /* (the fuzzers build the library without OpenMP) */
#endif

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

void experiment_threads(const AsymExperiment *ex) {
    if (ex->threads <= 0) return;
#ifdef _OPENMP
    omp_set_num_threads(ex->threads);
#endif
    openblas_set_num_threads(ex->threads);
}

int asym_experiment_net(const AsymExperiment *ex, AsymNet **net) {
    experiment_threads(ex);
    AsymRng rng;
    asym_rng_seed(&rng, ex->seed);
    return asym_net_create(net, &ex->net, ex->batch_size, &rng);
}

int asym_experiment_optim(const AsymExperiment *ex, AsymNet *net, AsymOptim **opt) { return asym_optim_create(opt, net, &ex->opt); }

float asym_experiment_lr(const AsymExperiment *ex, int epoch) { return asym_sched_lr(&ex->sched, ex->opt.lr, epoch, ex->epochs); }

/* Samples of a batch whose label is not among the 5 highest logits (ties
 * counted in its favour); logits (N, K). */
static long top5_misses(const float *logits, const int32_t *y, int N, int K) {
    long miss = 0;
    for (int i = 0; i < N; i++) {
        const float *z = logits + (size_t)i * K;
        float t = z[y[i]];
        int above = t == t ? 0 : 5;
        for (int k = 0; k < K && above < 5; k++) above += z[k] > t;
        miss += above >= 5;
    }
    return miss;
}

/* One batch's sums into v: loss times N, wrong, and top-5 wrong (with
 * more than 10 classes). */
static void eval_batch(AsymNet *net, const float *x, const int32_t *y, int N, double *v) {
    int hits;
    const float *logits = asym_net_forward(net, x, N, 0);
    if (net_classes(net) > 10) v[2] += (double)top5_misses(logits, y, N, net_classes(net));
    v[0] += (double)asym_net_loss(net, y, N, 0, &hits) * N;
    v[1] += N - hits;
}

/* The sums over d's batches (v zeroed first). */
static void eval_sums(AsymNet *net, const AsymDataset *d, int batch, double *v) {
    size_t in = (size_t)d->c * d->h * d->w;
    v[0] = v[1] = v[2] = 0;
    for (int i = 0; i < d->n; i += batch) eval_batch(net, d->x + i * in, d->y + i, d->n - i < batch ? d->n - i : batch, v);
}

int asym_evaluate(AsymNet *net, const AsymDataset *d, int batch, double *loss, double *err) {
    double v[3];
    eval_sums(net, d, batch, v);
    *loss = d->n ? v[0] / d->n : 0;
    *err = d->n ? v[1] / d->n : 0;
    return ASYM_OK;
}

/* This rank's batches b0 .. b1 of nb (all on one process). */
static void rank_batches(int nb, int *b0, int *b1) {
    int P = dist_size(), rank = dist_rank();
    *b0 = (int)((long)nb * rank / P), *b1 = (int)((long)nb * (rank + 1) / P);
}

/* The results from the sums over n samples: top-5 only past 10 classes. */
static void eval_results(const AsymNet *net, const double *v, int n, double *loss, double *err, double *err5) {
    *loss = n ? v[0] / n : 0;
    *err = n ? v[1] / n : 0;
    *err5 = net_classes(net) > 10 ? (n ? v[2] / n : 0) : -1;
}

void eval_all(AsymNet *net, const AsymDataset *d, int batch, double *loss, double *err, double *err5) {
    double v[3];
    if (dist_size() == 1) {
        eval_sums(net, d, batch, v);
        eval_results(net, v, d->n, loss, err, err5);
        return;
    }
    size_t in = (size_t)d->c * d->h * d->w;
    int b0, b1;
    rank_batches((d->n + batch - 1) / batch, &b0, &b1);
    AsymDataset part = *d;
    part.x = d->x + (size_t)b0 * batch * in;
    part.y = d->y + (size_t)b0 * batch;
    int end = b1 * batch < d->n ? b1 * batch : d->n;
    part.n = end > b0 * batch ? end - b0 * batch : 0;
    double l = 0, e = 0, s[3] = {0, 0, 0};
    /* through the means, as before top-5 was counted: the same bits */
    if (part.n > 0) {
        eval_sums(net, &part, batch, s);
        l = s[0] / part.n, e = s[1] / part.n;
    }
    v[0] = l * part.n, v[1] = e * part.n, v[2] = s[2];
    dist_sum_f64(v, 3, NULL);
    eval_results(net, v, d->n, loss, err, err5);
}

int eval_stream(AsymNet *net, Stream *st, int n, int batch, float *x, int32_t *y, double *loss, double *err, double *err5, long *bad,
                void (*note)(void *, const char *), void *user) {
    int nb = (n + batch - 1) / batch, b0, b1, rc = ASYM_OK;
    rank_batches(nb, &b0, &b1);
    StreamJob *jobs = asym_calloc((size_t)(b1 > b0 ? b1 - b0 : 1), sizeof *jobs);
    double v[3] = {0, 0, 0};
    if (!jobs) rc = ASYM_ERR;
    for (int b = b0; !rc && b < b1; b++) jobs[b - b0] = (StreamJob){b * batch, n - b * batch < batch ? n - b * batch : batch};
    if (!rc) rc = stream_begin(st, 0, 0, NULL, jobs, b1 - b0);
    for (int b = b0; !rc && b < b1; b++) {
        int k;
        rc = stream_next(st, x, y, &k, note, user);
        *bad += k;
        if (!rc) eval_batch(net, x, y, jobs[b - b0].n, v);
    }
    free(jobs);
    if (dist_size() > 1) dist_sum_f64(v, 3, NULL);
    eval_results(net, v, n, loss, err, err5);
    return rc;
}

int asym_experiment_test(const AsymExperiment *ex, AsymNet *net, double *loss, double *err, double *err5, int *n, long *bad,
                         void (*note)(void *user, const char *line), void *user) {
    int B = ex->batch_size > 0 ? ex->batch_size : 1;
    *bad = 0;
    if (!data_streamed(&ex->data)) {
        AsymDataset train, val, test;
        if (asym_experiment_data(ex, 1, &train, &val, &test)) return ASYM_ERR;
        eval_all(net, &test, B, loss, err, err5);
        *n = test.n;
        asym_dataset_free(&train), asym_dataset_free(&val), asym_dataset_free(&test);
        return ASYM_OK;
    }
    StreamData sd;
    Stream *st = NULL;
    const AsymDataSpec *s = &ex->data;
    memset(&sd, 0, sizeof sd);
    if (stream_data_open(s, ex->seed, &sd)) return ASYM_ERR;
    for (int i = 0; i < 2 && note; i++)
        if (sd.note[i][0]) note(user, sd.note[i]);
    size_t in = (size_t)s->c * s->h * s->w;
    float *x = asym_falloc((size_t)B * in);
    int32_t *y = asym_calloc(B, sizeof(int32_t));
    int workers = stream_workers(&s->stream, MAX_THREADS());
    int rc = !x || !y || stream_create(&st, &sd.val_m, workers, B) ? ASYM_ERR : ASYM_OK;
    *n = sd.val.n;
    if (!rc) rc = eval_stream(net, st, sd.val.n, B, x, y, loss, err, err5, bad, note, user);
    stream_free(st);
    free(x), free(y);
    stream_data_free(&sd);
    return rc;
}

double eval_mean_angle(const AsymAlignment *a, int n) {
    double s = 0;
    int k = 0;
    for (int i = 0; i < n; i++)
        if (a[i].rule != ASYM_RULE_BP && !isnan(a[i].angle)) s += a[i].angle, k++;
    return k ? s / k : NAN;
}
