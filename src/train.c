/* train.c: the training loop. Loads the experiment's data, builds the net,
 * runs epochs of mini-batch training (shuffled by the seeded generator),
 * evaluates after every epoch, and writes log.jsonl (one JSON object per
 * epoch), summary.json and model.bin into the run folder. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "layer.h"

int asym_experiment_data(const AsymExperiment *ex, AsymDataset *train, AsymDataset *val, AsymDataset *test) {
    return asym_data_load(&ex->data, ex->seed, train, val, test);
}

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

static void angle_list(FILE *f, const char *key, const AsymAlignment *a, int n) {
    fprintf(f, ", \"%s\": [", key);
    for (int i = 0; i < n; i++) {
        if (isfinite(a[i].angle)) fprintf(f, "%s%.4f", i ? ", " : "", a[i].angle);
        else fprintf(f, "%snull", i ? ", " : "");
    }
    fputc(']', f);
}

/* initial and final hold the per-layer alignment before training and after
 * the last epoch (n layers each). */
static void write_summary(const char *dir, const AsymExperiment *ex, const AsymSummary *s, const AsymAlignment *initial, const AsymAlignment *final, int n) {
    char path[4200], tmp[4300];
    snprintf(path, sizeof path, "%s/summary.json", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return;
    fprintf(f,
            "{\"name\": \"%s\", \"best_test_err\": %.6f, \"best_epoch\": %d, \"final_test_err\": %.6f, \"epochs\": %d, \"seconds\": %.3f, "
            "\"images_per_s\": %.1f, \"seed\": %llu, \"rule\": \"%s\", \"diverged\": %s",
            ex->name, s->best_test_err, s->best_epoch, s->final_test_err, s->epochs, s->seconds, s->images_per_s, (unsigned long long)s->seed,
            asym_rule_name(ex->net.rule ? ex->net.rule : ASYM_RULE_BP), s->diverged ? "true" : "false");
    if (isfinite(s->final_mean_angle)) fprintf(f, ", \"final_mean_angle\": %.4f", s->final_mean_angle);
    angle_list(f, "initial_angles", initial, n);
    if (s->epochs > 0) angle_list(f, "final_angles", final, n);
    if (s->best_val_epoch > 0)
        fprintf(f, ", \"best_val_err\": %.6f, \"best_val_epoch\": %d, \"test_err_at_best_val\": %.6f", s->best_val_err, s->best_val_epoch, s->test_err_at_best_val);
    fprintf(f, "}\n");
    if (fclose(f) == 0) rename(tmp, path);
}

/* JSON numbers cannot be NaN or Inf; a diverged loss is logged as null. */
static void json_num(FILE *f, const char *key, double v) {
    if (isfinite(v)) fprintf(f, ", \"%s\": %.6g", key, v);
    else fprintf(f, ", \"%s\": null", key);
}

static double mean_angle(const AsymAlignment *a, int n) {
    double s = 0;
    int k = 0;
    for (int i = 0; i < n; i++)
        if (a[i].rule != ASYM_RULE_BP && !isnan(a[i].angle)) s += a[i].angle, k++;
    return k ? s / k : NAN;
}

/* Copies mini-batch b of the epoch's order perm into xb, yb; returns its size. */
static int gather_batch(const AsymDataset *d, const int *perm, int b, int B, float *xb, int32_t *yb) {
    size_t in = (size_t)d->c * d->h * d->w;
    int N = d->n - b * B < B ? d->n - b * B : B;
    for (int i = 0; i < N; i++) {
        int j = perm[b * B + i];
        memcpy(xb + i * in, d->x + j * in, sizeof(float) * in);
        yb[i] = d->y[j];
    }
    return N;
}

int asym_train(const AsymExperiment *ex, const char *out_dir, const AsymTrainHooks *hooks, AsymSummary *sum) {
    AsymDataset train, val, test;
    AsymNet *net = NULL;
    AsymOptim *opt = NULL;
    FILE *log = NULL;
    float *xb = NULL;
    int32_t *yb = NULL;
    int *perm = NULL, rc = ASYM_ERR;
    AsymAlignment *align = NULL;
    memset(sum, 0, sizeof *sum);
    sum->seed = ex->seed;
    sum->best_val_err = sum->test_err_at_best_val = -1;
    sum->final_mean_angle = NAN;
    if (ex->threads > 0) {
        omp_set_num_threads(ex->threads);
        openblas_set_num_threads(ex->threads);
    }
    if (asym_experiment_data(ex, &train, &val, &test)) return ASYM_ERR;
    AsymRng rng;
    rng_seed(&rng, ex->seed);
    AsymRng order = rng_split(&rng);
    int B = ex->batch_size;
    size_t in = (size_t)train.c * train.h * train.w;
    if (asym_net_create(&net, &ex->net, B, &rng) || asym_optim_create(&opt, net, &ex->opt)) goto done;
    int L = asym_net_n_weight_layers(net), probe_n = train.n < B ? train.n : B;
    align = asym_calloc(2 * (L ? L : 1), sizeof(AsymAlignment));
    if (!align) goto done;
    AsymAlignment *initial = align + (L ? L : 1);
    asym_net_alignment(net, train.x, train.y, probe_n, initial);
    xb = asym_falloc((size_t)B * in);
    yb = asym_calloc(B, sizeof(int32_t));
    perm = asym_calloc(train.n, sizeof(int));
    if (!xb || !yb || !perm) goto done;
    if (out_dir) {
        char path[4200];
        mkdir(out_dir, 0755);
        snprintf(path, sizeof path, "%s/log.jsonl", out_dir);
        if (!(log = fopen(path, "w"))) {
            asym_fail("%s: cannot write", path);
            goto done;
        }
    }
    for (int i = 0; i < train.n; i++) perm[i] = i;
    if (hooks && hooks->on_start) hooks->on_start(hooks->user, train.n, val.n, test.n, asym_net_n_weights(net));
    int batches = (train.n + B - 1) / B;
    double t_start = asym_now(), train_time = 0;
    long images = 0;
    sum->best_test_err = 2.0;
    for (int ep = 0; ep < ex->epochs; ep++) {
        AsymEpochStats st = {.epoch = ep + 1, .val_loss = -1, .val_err = -1};
        st.lr = asym_sched_lr(&ex->sched, ex->opt.lr, ep, ex->epochs);
        rng_shuffle(&order, perm, train.n);
        double t0 = asym_now(), loss_sum = 0;
        long wrong = 0;
        for (int b = 0; b < batches; b++) {
            int N = gather_batch(&train, perm, b, B, xb, yb), hits;
            asym_net_zero_grad(net);
            asym_net_forward(net, xb, N, 1);
            float loss = asym_net_loss(net, yb, N, 1, &hits);
            if (!isfinite(loss)) {
                sum->diverged = 1;
                asym_fail("diverged: the training loss is %s at epoch %d, step %d", isnan(loss) ? "NaN" : "Inf", ep + 1, b + 1);
                break;
            }
            asym_optim_step(opt, st.lr);
            asym_net_feedback_update(net);
            loss_sum += (double)loss * N;
            wrong += N - hits;
            images += N;
            if (hooks && hooks->on_batch) {
                double el = asym_now() - t0, rate = (b * (double)B + N) / (el > 1e-9 ? el : 1e-9);
                double left = ((double)(batches - b - 1) * B + (double)(ex->epochs - ep - 1) * train.n) / rate;
                hooks->on_batch(hooks->user, ep + 1, ex->epochs, b + 1, batches, loss, rate, left);
            }
        }
        if (sum->diverged) break;
        for (int b = 0; b < ex->bn_batches && b < batches; b++) {
            int N = gather_batch(&train, perm, b, B, xb, yb);
            asym_net_recompute_stats(net, xb, N, ex->bn_alpha, b == 0);
        }
        st.seconds = asym_now() - t0;
        train_time += st.seconds;
        st.images_per_s = train.n / (st.seconds > 1e-9 ? st.seconds : 1e-9);
        st.train_loss = loss_sum / train.n;
        st.train_err = (double)wrong / train.n;
        asym_evaluate(net, &test, B, &st.test_loss, &st.test_err);
        if (val.n) asym_evaluate(net, &val, B, &st.val_loss, &st.val_err);
        if (!isfinite(st.test_loss)) {
            sum->diverged = 1;
            asym_fail("diverged: the test loss is %s after epoch %d", isnan(st.test_loss) ? "NaN" : "Inf", ep + 1);
            break;
        }
        sum->epochs = ep + 1;
        sum->final_test_err = st.test_err;
        if (st.test_err < sum->best_test_err) sum->best_test_err = st.test_err, sum->best_epoch = ep + 1;
        if (val.n && (sum->best_val_epoch == 0 || st.val_err < sum->best_val_err)) {
            sum->best_val_err = st.val_err;
            sum->best_val_epoch = ep + 1;
            sum->test_err_at_best_val = st.test_err;
        }
        asym_net_alignment(net, train.x, train.y, probe_n, align);
        st.align = align;
        st.n_align = L;
        st.mean_angle = mean_angle(align, L);
        if (log) {
            fprintf(log, "{\"epoch\": %d, \"lr\": %.6g", st.epoch, st.lr);
            json_num(log, "train_loss", st.train_loss);
            json_num(log, "train_err", st.train_err);
            json_num(log, "test_loss", st.test_loss);
            json_num(log, "test_err", st.test_err);
            if (val.n) json_num(log, "val_loss", st.val_loss), json_num(log, "val_err", st.val_err);
            fprintf(log, ", \"seconds\": %.3f, \"images_per_s\": %.1f", st.seconds, st.images_per_s);
            json_num(log, "mean_angle", st.mean_angle);
            fprintf(log, ", \"layers\": [");
            for (int i = 0; i < L; i++) {
                fprintf(log, "%s{\"name\": \"%s\", \"rule\": \"%s\"", i ? ", " : "", align[i].name, asym_rule_name(align[i].rule));
                json_num(log, "angle", align[i].angle);
                json_num(log, "norm_ratio", align[i].norm_ratio);
                json_num(log, "sign_agree", align[i].sign_agree);
                json_num(log, "delta_angle", align[i].delta_angle);
                json_num(log, "grad_angle", align[i].grad_angle);
                fputc('}', log);
            }
            fprintf(log, "]}\n");
            fflush(log);
        }
        if (hooks && hooks->on_epoch) hooks->on_epoch(hooks->user, &st);
        sum->final_mean_angle = st.mean_angle;
    }
    sum->seconds = asym_now() - t_start;
    sum->images_per_s = train_time > 0 ? images / train_time : 0;
    if (sum->best_epoch == 0) sum->best_test_err = -1;
    rc = sum->diverged ? ASYM_ERR : ASYM_OK;
    if (out_dir) {
        char path[4200];
        write_summary(out_dir, ex, sum, initial, align, L);
        snprintf(path, sizeof path, "%s/model.bin", out_dir);
        if (!sum->diverged && asym_net_save(net, path)) rc = ASYM_ERR;
    }
done:
    if (log) fclose(log);
    free(align);
    free(xb);
    free(yb);
    free(perm);
    asym_optim_free(opt);
    asym_net_free(net);
    asym_dataset_free(&train);
    asym_dataset_free(&val);
    asym_dataset_free(&test);
    return rc;
}
