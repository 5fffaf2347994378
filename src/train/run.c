/* run.c: asym_train and asym_train_resume, a run from its experiment to
 * its folder. Loads the data, builds the network and the optimizer, opens
 * the run folder (config.yaml kept for the checkpoints, version.json,
 * log.jsonl, steps.jsonl; a resumed run first restores the checkpoint),
 * runs the epochs (loop.c) and writes summary.json and model.bin. Every
 * write is checked: one that fails fails the run, naming the file. */
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/io.h"
#include "train/train.h"

/* Keeps config.yaml's text for the checkpoints and opens log.jsonl: a new
 * one, or for a resume the checkpoint's copy, after the checkpoint has
 * restored the network, the optimizer and rs. The other ranks of a
 * data-parallel run write nothing; they restore the same checkpoint. */
static int open_run(Run *r, int resume) {
    char path[4200], ck[4200];
    size_t len = 0;
    RunState *rs = &r->rs;
    snprintf(ck, sizeof ck, "%s/checkpoint.bin", r->out_dir);
    if (!r->writer) {
        if (!resume) return ASYM_OK;
        int rc = state_load_run(ck, r->net, r->opt, rs);
        free(rs->log);
        rs->log = NULL;
        return rc;
    }
    if (io_mkdir_p(r->out_dir)) return ASYM_ERR;
    snprintf(path, sizeof path, "%s/config.yaml", r->out_dir);
    if (access(path, F_OK) == 0 && io_read_file(path, &r->config, &len, (size_t)16 << 20, 0)) return ASYM_ERR;
    rs->config = (const char *)r->config;
    rs->config_len = len;
    snprintf(path, sizeof path, "%s/log.jsonl", r->out_dir);
    /* a new run must not leave an earlier run's checkpoint looking like its own */
    if (!resume && remove(ck) != 0 && errno != ENOENT) return asym_fail("%s: cannot remove: %s", ck, strerror(errno));
    if (resume) {
        if (state_load_run(ck, r->net, r->opt, rs)) return ASYM_ERR;
        const void *parts[1] = {rs->log};
        size_t lens[1] = {rs->log_len};
        int rc = io_write_atomic(path, parts, lens, 1);
        free(rs->log);
        rs->log = NULL;
        if (rc) return ASYM_ERR;
    }
    if (log_open(&r->log, r->out_dir, "log.jsonl", resume)) return ASYM_ERR;
    return r->ex->tensorboard ? tb_open(&r->log.tb, r->out_dir) : ASYM_OK;
}

/* checkpoint.bin from rs with log.jsonl as it stands, once log.jsonl and
 * steps.jsonl have reached their files. */
static int save_checkpoint(Run *r) {
    char path[4200];
    uint8_t *text;
    size_t len;
    if (log_flush(&r->log) || (r->steps.f && log_flush(&r->steps))) return ASYM_ERR;
    snprintf(path, sizeof path, "%s/log.jsonl", r->out_dir);
    if (io_read_file(path, &text, &len, (size_t)1 << 30, 0)) return ASYM_ERR;
    r->rs.log = (char *)text;
    r->rs.log_len = len;
    snprintf(path, sizeof path, "%s/checkpoint.bin", r->out_dir);
    int rc = state_save_run(path, r->net, r->opt, &r->rs);
    free(text);
    r->rs.log = NULL;
    return rc;
}

int run_checkpoint(Run *r) {
    RunState *rs = &r->rs;
    rs->order = r->order, rs->sum = *r->sum;
    rs->images = r->images, rs->train_seconds = r->train_time, rs->seconds = asym_now() - r->t_start;
    return asym_dist_agree(r->writer ? save_checkpoint(r) : 0);
}

void run_note(void *user, const char *line) {
    Run *r = user;
    snprintf(r->last_bad, sizeof r->last_bad, "%s", line);
    if (r->hooks && r->hooks->on_note) r->hooks->on_note(r->hooks->user, line);
}

/* A streamed data set: its indexes, and train and test holding their
 * labels alone (the images are made batch by batch). */
static int load_streamed(Run *r) {
    const AsymDataSpec *s = &r->ex->data;
    if (!(r->sd = asym_calloc(1, sizeof *r->sd)) || stream_data_open(s, r->ex->seed, r->sd)) return ASYM_ERR;
    for (int i = 0; i < 2; i++)
        if (r->sd->note[i][0] && r->writer && r->hooks && r->hooks->on_note) r->hooks->on_note(r->hooks->user, r->sd->note[i]);
    return stream_data_labels(&r->sd->train, s->c, s->h, s->w, &r->train) || stream_data_labels(&r->sd->val, s->c, s->h, s->w, &r->test);
}

/* The experiment's data on every rank; when any rank fails, every rank
 * fails with nothing loaded. */
static int load_data(Run *r) {
    /* with data.augment, train holds the stored images each batch is made from */
    int rc = data_streamed(&r->ex->data) ? load_streamed(r) : asym_data_load(&r->ex->data, r->ex->seed, &r->train, &r->val, &r->test);
    if (!asym_dist_agree(rc)) return ASYM_OK;
    if (!rc) {
        asym_dataset_free(&r->train);
        asym_dataset_free(&r->val);
        asym_dataset_free(&r->test);
    }
    return ASYM_ERR;
}

/* A streamed set's alignment batch: its first training images through the
 * evaluation transform (an unreadable one left zero). */
static int probe_streamed(Run *r) {
    r->probe_buf = asym_falloc((size_t)(r->probe_n ? r->probe_n : 1) * r->in);
    if (asym_dist_agree(!r->probe_buf)) return ASYM_ERR;
    for (int i = 0; i < r->probe_n; i++)
        if (sample_make(&r->sd->train_m, 0, 0, i, r->probe_buf + i * r->in)) memset(r->probe_buf + i * r->in, 0, sizeof(float) * r->in);
    r->probe_x = r->probe_buf;
    return ASYM_OK;
}

/* Streamed data: the prefetchers of train and test, data.workers threads
 * each (the test one idles while training runs and the other way round). */
static int start_streams(Run *r) {
    const StreamSpec *o = &r->ex->data.stream;
    int w = stream_workers(o, omp_get_max_threads());
    return asym_dist_agree(stream_create(&r->train_s, &r->sd->train_m, w, r->B) || stream_create(&r->test_s, &r->sd->val_m, w, r->B));
}

/* The images alignment is measured on: the first training ones, through
 * the evaluation transform when augmenting (a fixed batch, not a draw). */
static int probe_batch(Run *r) {
    r->probe_x = r->train.x;
    if (r->sd) return probe_streamed(r);
    if (!r->aug.oh) return ASYM_OK;
    r->probe_buf = asym_falloc((size_t)(r->probe_n ? r->probe_n : 1) * r->in);
    if (asym_dist_agree(!r->probe_buf)) return ASYM_ERR;
    for (int i = 0; i < r->probe_n; i++) augment_eval_one(&r->aug, r->probe_buf + i * r->in, r->train.x + i * r->in_src);
    r->probe_x = r->probe_buf;
    return ASYM_OK;
}

/* The network, the optimizer and the loop's buffers; the alignment before
 * training (rank 0's files alone hold it). */
static int build(Run *r, int resume, AsymRng *rng) {
    const AsymExperiment *ex = r->ex;
    if (asym_dist_agree(asym_net_create(&r->net, &ex->net, r->B, rng) || asym_optim_create(&r->opt, r->net, &ex->opt))) return ASYM_ERR;
    int L = r->L = asym_net_n_weight_layers(r->net);
    r->probe_n = r->train.n < r->B ? r->train.n : r->B;
    r->align = asym_calloc(2 * (L ? L : 1), sizeof(AsymAlignment));
    r->xb = asym_falloc((size_t)r->B * r->in);
    r->yb = asym_calloc(r->B, sizeof(int32_t));
    r->perm = asym_calloc(r->train.n, sizeof(int));
    /* per-rank batch norm: the running statistics are averaged over ranks after every step */
    r->avg_buffers = r->P > 1 && !ex->sync_bn;
    r->shared = asym_calloc(3 + (r->avg_buffers ? share_buffer_floats(r->net) : 0), sizeof(double));
    r->dg = dist_grad_new(r->net, ex->dist_overlap, (size_t)(ex->dist_bucket_mb * (1 << 20) / sizeof(float)), &r->comm);
    if (asym_dist_agree(!r->align || !r->xb || !r->yb || !r->perm || !r->shared || !r->dg)) return ASYM_ERR;
    r->initial = r->align + (L ? L : 1);
    if (probe_batch(r)) return ASYM_ERR;
    if (!resume && r->writer) asym_net_alignment(r->net, r->probe_x, r->train.y, r->probe_n, r->initial);
    for (int i = 0; i < r->train.n; i++) r->perm[i] = i;
    r->batches = (r->train.n + r->B - 1) / r->B;
    return ASYM_OK;
}

/* Everything before the first epoch; a resumed run takes its place from
 * the checkpoint. */
static int start(Run *r, int resume) {
    const AsymExperiment *ex = r->ex;
    AsymRng rng;
    rng_seed(&rng, ex->seed);
    r->order = rng_split(&rng);
    r->B = ex->batch_size;
    r->in = r->in_src = (size_t)r->train.c * r->train.h * r->train.w;
    if (r->sd && start_streams(r)) return ASYM_ERR;
    if (augment_on(&ex->data.aug) && !r->sd) {
        if (asym_dist_agree(augment_init(&r->aug, &ex->data, &r->train, ex->seed))) return ASYM_ERR;
        r->in = (size_t)r->train.c * r->aug.oh * r->aug.ow;
    }
    if (build(r, resume, &rng)) return ASYM_ERR;
    r->t_start = asym_now();
    r->sum->best_test_err = 2.0;
    r->sum->final_test_err5 = -1;
    r->rs = (RunState){.batch_size = r->B, .threads = omp_get_max_threads(), .perm = r->perm, .n_train = r->train.n, .n_val = r->val.n,
                       .n_test = r->test.n, .initial = r->initial, .last = r->align, .n_layers = r->L, .sum = *r->sum, .ranks = r->P};
    RunState *rs = &r->rs;
    if (r->out_dir) {
        rs->data_crc = state_data_crc(&r->train, &r->val, &r->test);
        int rc = open_run(r, resume);
        if (!rc && r->writer) rc = log_version(r->out_dir, resume, rs->threads, &r->version);
        if (!rc && r->writer && ex->log_steps && resume) rc = log_keep_lines(r->out_dir, "steps.jsonl", (long)rs->epoch * r->batches + rs->batch);
        if (!rc && r->writer && ex->log_steps) rc = log_open(&r->steps, r->out_dir, "steps.jsonl", resume);
        if (asym_dist_agree(rc)) return ASYM_ERR;
    }
    if (dist_check_same(r->net, resume ? "after loading the checkpoint" : "at the start")) return ASYM_ERR;
    if (resume) {
        r->order = rs->order;
        r->start_ep = rs->epoch, r->start_b = rs->batch;
        r->images = rs->images, r->train_time = rs->train_seconds, r->t_start -= rs->seconds;
        *r->sum = rs->sum;
    }
    if (r->hooks && r->hooks->on_start) r->hooks->on_start(r->hooks->user, r->train.n, r->val.n, r->test.n, asym_net_n_weights(r->net));
    return ASYM_OK;
}

/* After the epochs: the logs closed, summary.json and model.bin. */
static int finish(Run *r) {
    AsymSummary *sum = r->sum;
    sum->seconds = asym_now() - r->t_start;
    sum->images_per_s = r->train_time > 0 ? r->images / r->train_time : 0;
    /* no test error yet: summary.json says null, not a number */
    if (sum->best_epoch == 0) sum->best_test_err = sum->final_test_err = NAN;
    int rc = sum->diverged || sum->interrupted ? ASYM_ERR : ASYM_OK;
    /* every line logged reaches its file before summary.json says the run is
     * over; a run whose log lost lines gets none, unless it diverged */
    int lost = log_close(&r->log, rc) != ASYM_OK;
    if (log_close(&r->steps, rc || lost)) lost = 1;
    if (lost) rc = ASYM_ERR;
    if (r->out_dir && !sum->interrupted && r->writer && (!lost || sum->diverged)) {
        char path[4200];
        double per_step = r->comm_steps ? (double)r->comm.bytes / r->comm_steps : 0;
        if (log_summary(r->out_dir, r->ex, sum, r->initial, r->align, r->L, per_step, r->comm.seconds, r->version)) rc = ASYM_ERR;
        snprintf(path, sizeof path, "%s/model.bin", r->out_dir);
        if (!sum->diverged && asym_net_save(r->net, path)) rc = ASYM_ERR;
    }
    /* a file rank 0 could not write fails every rank */
    if (r->P > 1 && !sum->diverged && !sum->interrupted) rc = asym_dist_agree(rc);
    return rc;
}

static void run_free(Run *r) {
    stream_free(r->train_s);
    stream_free(r->test_s);
    if (r->sd) stream_data_free(r->sd);
    free(r->sd);
    if (r->log.f) fclose(r->log.f);
    tb_close(r->log.tb);
    if (r->steps.f) fclose(r->steps.f);
    dist_grad_free(r->dg);
    free(r->shared);
    free(r->config);
    free(r->version);
    free(r->align);
    free(r->probe_buf);
    augment_free(&r->aug);
    free(r->xb);
    free(r->yb);
    free(r->perm);
    asym_optim_free(r->opt);
    asym_net_free(r->net);
    asym_dataset_free(&r->train);
    asym_dataset_free(&r->val);
    asym_dataset_free(&r->test);
}

static int train_run(const AsymExperiment *ex, const char *out_dir, int resume, const AsymTrainHooks *hooks, AsymSummary *sum) {
    Run r = {.ex = ex, .out_dir = out_dir, .hooks = hooks, .sum = sum, .P = dist_size(), .rank = dist_rank()};
    r.writer = r.rank == 0;
    memset(sum, 0, sizeof *sum);
    sum->seed = ex->seed;
    sum->best_val_err = sum->test_err_at_best_val = -1;
    sum->final_mean_angle = NAN;
    experiment_threads(ex);
    if (load_data(&r)) return ASYM_ERR;
    int rc = start(&r, resume) || run_epochs(&r) ? ASYM_ERR : finish(&r);
    run_free(&r);
    return rc;
}

int asym_train(const AsymExperiment *ex, const char *out_dir, const AsymTrainHooks *hooks, AsymSummary *sum) {
    return train_run(ex, out_dir, 0, hooks, sum);
}

int asym_train_resume(const AsymExperiment *ex, const char *out_dir, const AsymTrainHooks *hooks, AsymSummary *sum) {
    if (!out_dir) {
        memset(sum, 0, sizeof *sum);
        return asym_fail("resume: needs the run folder");
    }
    return train_run(ex, out_dir, 1, hooks, sum);
}
