/* loop.c: the epochs of a run. Each epoch shuffles the training set with
 * the seeded generator and trains on its mini-batches, one step each in
 * the step's mode (under MPI, this rank's share of the batch); with
 * data.augment each sample is made afresh from its stored image
 * (augment.c). The guard follows every step. After the epoch: running
 * statistics recomputed when asked, evaluation, alignment, a line of
 * log.jsonl and a checkpoint. A run stopped inside an epoch continues its
 * order and sums. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train/train.h"

/* The epoch under way. */
typedef struct Epoch {
    int ep;           /* 0-based */
    float lr;
    double t0;        /* its start (a resumed epoch's earlier seconds counted) */
    double loss_sum;  /* summed training loss */
    long wrong;       /* and wrong predictions */
} Epoch;

enum { GO_ON = 0, STOP = 1 };

/* The size of mini-batch b. */
static int batch_n(const Run *r, int b) { return r->train.n - b * r->B < r->B ? r->train.n - b * r->B : r->B; }

/* Rows lo .. lo + n of mini-batch b of epoch ep's order into xb, yb:
 * copied, or made by the augmentation from the sample's place in the
 * training set (the same on every rank, in every order). */
static int gather_rows(Run *r, int b, int ep, int lo, int n) {
    const AsymDataset *d = &r->train;
    if (r->train_s) {
        double t = asym_now();
        int bad, rc = stream_next(r->train_s, r->xb + lo * r->in, r->yb + lo, &bad, run_note, r);
        r->data_wait += asym_now() - t;
        r->skipped += bad;
        return rc;
    }
    const int *idx = r->perm + (size_t)b * r->B + lo;
    if (!r->aug.oh) {
        for (int i = 0; i < n; i++) {
            memcpy(r->xb + (lo + i) * r->in, d->x + idx[i] * r->in, sizeof(float) * r->in);
            r->yb[lo + i] = d->y[idx[i]];
        }
        return ASYM_OK;
    }
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        augment_train(&r->aug, r->xb + (lo + i) * r->in, d->x + idx[i] * r->in_src, (uint64_t)ep, (uint64_t)idx[i]);
        r->yb[lo + i] = d->y[idx[i]];
    }
    return ASYM_OK;
}

/* Streamed data: the batches first .. last - 1 of epoch ep's order (this
 * rank's rows of each) for the prefetcher to make. */
static int stream_batches(Run *r, int ep, int first, int last) {
    if (!r->train_s) return ASYM_OK;
    StreamJob *jobs = asym_calloc((size_t)(last > first ? last - first : 1), sizeof *jobs);
    if (!jobs) return ASYM_ERR;
    for (int b = first; b < last; b++) {
        int lo, n;
        share_rows(batch_n(r, b), &lo, &n);
        jobs[b - first] = (StreamJob){b * r->B + lo, n};
    }
    int rc = stream_begin(r->train_s, 1, (uint64_t)ep, r->perm, jobs, last - first);
    free(jobs);
    return rc;
}

static int stop_asked(const AsymTrainHooks *hooks) { return hooks && hooks->stop && hooks->stop(hooks->user); }

/* Records where the run diverged: epoch (1-based), step (0: after the
 * epoch) and in what. */
static void diverged(Run *r, int epoch, int step, const char *in) {
    r->sum->diverged = 1;
    r->sum->stop_epoch = epoch, r->sum->stop_step = step;
    snprintf(r->sum->diverged_in, sizeof r->sum->diverged_in, "%s", in);
}

static void interrupted(Run *r, int epoch, int step) {
    r->sum->interrupted = 1;
    r->sum->stop_epoch = epoch, r->sum->stop_step = step;
}

/* The step's loss and hits over the global batch and any rank's stop
 * request (*stop), summed over the ranks; weight: this rank's share. */
static float sum_over_ranks(Run *r, float loss, int *hits, int N, int n, double weight, int *stop) {
    *stop = stop_asked(r->hooks);
    r->shared[0] = weight * loss, r->shared[1] = *hits * weight * N / (n ? n : 1), r->shared[2] = *stop;
    share_step_sums(r->net, r->shared, r->avg_buffers, &r->comm);
    *hits = (int)llround(r->shared[1]), *stop = r->shared[2] > 0;
    return (float)r->shared[0];
}

/* The forward and backward pass of batch b and the gradients' sum over
 * ranks; the batch's mean loss, *hits and *N (its size). */
static float forward_backward(Run *r, int ep, int b, int *N, int *hits, int *stop, int *failed) {
    int lo, n;
    double weight;
    *N = batch_n(r, b);
    StepMode m = share_mode(r->net, *N, r->ex->sync_bn, &r->comm, &lo, &n, &weight);
    *failed = gather_rows(r, b, ep, lo, n);
    asym_net_zero_grad(r->net);
    net_forward(r->net, r->xb + lo * r->in, n, &m);
    dist_grad_begin(r->dg, &m);
    float loss = net_backward(r->net, r->yb + lo, n, &m, hits);
    dist_grad_end(r->dg);
    *stop = 0;
    if (r->P == 1) return loss;
    r->comm_steps++;
    return sum_over_ranks(r, loss, hits, *N, n, weight, stop);
}

static void report_batch(Run *r, const Epoch *e, int b, int N, float loss) {
    const AsymTrainHooks *h = r->hooks;
    if (!h || !h->on_batch) return;
    double el = asym_now() - e->t0, rate = (b * (double)r->B + N) / (el > 1e-9 ? el : 1e-9);
    double left = ((double)(r->batches - b - 1) * r->B + (double)(r->ex->epochs - e->ep - 1) * r->train.n) / rate;
    h->on_batch(h->user, e->ep + 1, r->ex->epochs, b + 1, r->batches, loss, rate, left);
}

/* Training step b of epoch e: GO_ON, STOP (diverged or stopped: in the
 * summary), or ASYM_ERR when a check or a checkpoint failed. */
static int train_step(Run *r, Epoch *e, int b) {
    const AsymExperiment *ex = r->ex;
    int N, hits, stop, epoch = e->ep + 1, failed;
    float loss = forward_backward(r, e->ep, b, &N, &hits, &stop, &failed);
    if (failed) return ASYM_ERR;
    if (!isfinite(loss)) {
        diverged(r, epoch, b + 1, "loss");
        asym_fail("diverged: the training loss is %s at epoch %d, step %d", isnan(loss) ? "NaN" : "Inf", epoch, b + 1);
        return STOP;
    }
    asym_optim_step(r->opt, e->lr);
    asym_net_feedback_update(r->net);
    long step = (long)e->ep * r->batches + b + 1;
    if (r->P > 1 && r->rank == ex->perturb_rank && step == ex->perturb_step) asym_net_param(r->net, 0)->w[0] += 1e-3f;
    char what[128], name[sizeof r->sum->diverged_in];
    if (guard_tensors(r->net, r->guarded ? r->opt : NULL, what, sizeof what, name, sizeof name)) {
        diverged(r, epoch, b + 1, name);
        asym_fail("diverged: %s after epoch %d, step %d", what, epoch, b + 1);
        return STOP;
    }
    r->guarded = 1;
    e->loss_sum += (double)loss * N;
    e->wrong += N - hits;
    r->images += N;
    if (r->steps.f) log_step(&r->steps, epoch, b + 1, loss);
    if (r->P > 1 && ex->dist_check_every > 0 && step % ex->dist_check_every == 0) {
        char when[64];
        snprintf(when, sizeof when, "after epoch %d, step %d", epoch, b + 1);
        if (dist_check_same(r->net, when)) return ASYM_ERR;
    }
    report_batch(r, e, b, N, loss);
    if (!(r->P > 1 ? stop : stop_asked(r->hooks))) return GO_ON;
    /* the state after this step, to continue inside the epoch */
    if (r->out_dir) {
        RunState *rs = &r->rs;
        rs->epoch = e->ep, rs->batch = b + 1, rs->loss_sum = e->loss_sum, rs->wrong = e->wrong, rs->epoch_seconds = asym_now() - e->t0;
        if (run_checkpoint(r)) return ASYM_ERR;
    }
    interrupted(r, epoch, b + 1);
    asym_fail("interrupted at epoch %d, step %d", epoch, b + 1);
    return STOP;
}

/* model.bn_batches: batch norm's running statistics recomputed in
 * training mode over the first batches of the epoch's order. */
static int recompute_stats(Run *r, int ep) {
    const AsymExperiment *ex = r->ex;
    int nb = ex->bn_batches < r->batches ? ex->bn_batches : r->batches;
    if (nb > 0 && stream_batches(r, ep, 0, nb)) return ASYM_ERR;
    for (int b = 0; b < nb; b++) {
        int N = batch_n(r, b), lo, n;
        double weight;
        StepMode m = share_mode(r->net, N, ex->sync_bn, NULL, &lo, &n, &weight);
        if (gather_rows(r, b, ep, lo, n)) return ASYM_ERR;
        m.pass.momentum = b == 0 ? 1.0f : ex->bn_alpha;
        net_forward(r->net, r->xb + lo * r->in, n, &m);
    }
    if (r->avg_buffers && ex->bn_batches > 0) share_step_sums(r->net, r->shared, 1, NULL);
    return ASYM_OK;
}

/* The test (and validation) error after epoch e into st and the summary;
 * STOP when the test loss diverged. */
static int evaluate(Run *r, const Epoch *e, AsymEpochStats *st) {
    AsymSummary *sum = r->sum;
    if (r->test_s) {
        if (eval_stream(r->net, r->test_s, r->test.n, r->B, r->xb, r->yb, &st->test_loss, &st->test_err, &st->test_err5, &r->skipped, run_note, r))
            return ASYM_ERR;
    } else {
        eval_all(r->net, &r->test, r->B, &st->test_loss, &st->test_err, &st->test_err5);
    }
    if (r->val.n) eval_all(r->net, &r->val, r->B, &st->val_loss, &st->val_err, &st->val_err5);
    if (!isfinite(st->test_loss)) {
        diverged(r, e->ep + 1, 0, "test loss");
        asym_fail("diverged: the test loss is %s after epoch %d", isnan(st->test_loss) ? "NaN" : "Inf", e->ep + 1);
        return STOP;
    }
    sum->epochs = e->ep + 1;
    sum->final_test_err = st->test_err;
    sum->final_test_err5 = st->test_err5;
    if (st->test_err < sum->best_test_err) sum->best_test_err = st->test_err, sum->best_epoch = e->ep + 1;
    if (r->val.n && (sum->best_val_epoch == 0 || st->val_err < sum->best_val_err)) {
        sum->best_val_err = st->val_err;
        sum->best_val_epoch = e->ep + 1;
        sum->test_err_at_best_val = st->test_err;
    }
    return GO_ON;
}

/* Streamed data: the samples replaced this epoch over the ranks into st,
 * and data.max_bad_files against the distinct files found unreadable
 * (checked once per epoch, on every rank alike). */
static int skipped_files(Run *r, const Epoch *e, AsymEpochStats *st) {
    if (!r->sd) return ASYM_OK;
    double v[2] = {(double)r->skipped, (double)(stream_bad_files(r->train_s) + stream_bad_files(r->test_s))};
    if (r->P > 1) dist_sum_f64(v, 2, NULL);
    st->skipped_files = (long)v[0];
    long limit = r->ex->data.stream.max_bad, n = r->sd->train.n + r->sd->val.n;
    if (limit < 0) limit = n / 1000 > 10 ? n / 1000 : 10;
    if ((long)v[1] > limit)
        return asym_fail("%ld unreadable files by epoch %d, more than data.max_bad_files (%ld); the last: %s", (long)v[1], e->ep + 1, limit,
                         r->last_bad[0] ? r->last_bad : "on another rank");
    return ASYM_OK;
}

/* After epoch e's batches: evaluation, alignment, the log line, the
 * ranks' check, the checkpoint and a stop request. */
static int end_epoch(Run *r, const Epoch *e) {
    AsymEpochStats st = {.epoch = e->ep + 1, .lr = e->lr, .val_loss = -1, .val_err = -1, .test_err5 = -1, .val_err5 = -1};
    st.seconds = asym_now() - e->t0;
    r->train_time += st.seconds;
    st.images_per_s = r->train.n / (st.seconds > 1e-9 ? st.seconds : 1e-9);
    st.data_wait_s = r->train_s ? r->data_wait : -1;
    st.train_loss = e->loss_sum / r->train.n;
    st.train_err = (double)e->wrong / r->train.n;
    int ev = evaluate(r, e, &st);
    if (ev != GO_ON) return ev;
    if (skipped_files(r, e, &st)) return ASYM_ERR;
    if (r->writer) asym_net_alignment(r->net, r->probe_x, r->train.y, r->probe_n, r->align);
    st.align = r->align;
    st.n_align = r->L;
    st.mean_angle = eval_mean_angle(r->align, r->L);
    st.wm_fallbacks = asym_net_wm_fallbacks(r->net);
    if (r->log.f) log_epoch(&r->log, &st, r->val.n > 0);
    if (r->hooks && r->hooks->on_epoch) r->hooks->on_epoch(r->hooks->user, &st);
    r->sum->final_mean_angle = st.mean_angle;
    if (r->P > 1) {
        char when[64];
        snprintf(when, sizeof when, "after epoch %d", e->ep + 1);
        if (dist_check_same(r->net, when)) return ASYM_ERR;
    }
    if (r->out_dir) {
        RunState *rs = &r->rs;
        rs->epoch = e->ep + 1, rs->batch = 0, rs->loss_sum = 0, rs->wrong = 0, rs->epoch_seconds = 0;
        if (run_checkpoint(r)) return ASYM_ERR;
    }
    if (e->ep + 1 < r->ex->epochs && share_any(stop_asked(r->hooks))) {
        interrupted(r, e->ep + 1, 0);
        asym_fail("interrupted after epoch %d", e->ep + 1);
        return STOP;
    }
    return GO_ON;
}

int run_epochs(Run *r) {
    const AsymExperiment *ex = r->ex;
    for (int ep = r->start_ep; ep < ex->epochs; ep++) {
        Epoch e = {.ep = ep, .lr = asym_sched_lr(&ex->sched, ex->opt.lr, ep, ex->epochs)};
        int b = ep == r->start_ep ? r->start_b : 0, rc = GO_ON;
        if (b == 0) rng_shuffle(&r->order, r->perm, r->train.n);
        r->skipped = 0, r->data_wait = 0;
        if (stream_batches(r, ep, b, r->batches)) return ASYM_ERR;
        e.t0 = asym_now() - (b ? r->rs.epoch_seconds : 0);
        e.loss_sum = b ? r->rs.loss_sum : 0;
        e.wrong = b ? r->rs.wrong : 0;
        if (ex->trap_fp) guard_fp_traps(1);
        for (; b < r->batches && rc == GO_ON; b++) rc = train_step(r, &e, b);
        if (ex->trap_fp) guard_fp_traps(0);
        if (rc == GO_ON) rc = recompute_stats(r, ep) ? ASYM_ERR : end_epoch(r, &e);
        if (rc != GO_ON) return rc == STOP ? ASYM_OK : ASYM_ERR;
    }
    return ASYM_OK;
}
