/* train.c: the training loop. Loads the experiment's data, builds the net,
 * runs epochs of mini-batch training (shuffled by the seeded generator),
 * evaluates after every epoch, and writes version.json (the build that made
 * the run: version.c), log.jsonl (one JSON object per epoch), summary.json,
 * model.bin and, after every epoch, checkpoint.bin (state.c) into the run
 * folder; a resumed run continues from the checkpoint bit for bit. Every
 * write is checked: one that fails fails the run, naming the file. A NaN or
 * Inf in the loss or in any tensor after a step stops the run. */
#include <cblas.h>
#include <errno.h>
#include <fenv.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/checkpoint.h"
#include "dist/dist.h"
#include "io/io.h"
#include "net/net.h"


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

/* ---- data-parallel training (dist.c, docs/MPI.md) ---- */

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

/* The mode of a training step on this rank's share of a batch of N: all
 * of it (one process), or its rows (*lo, *n) with their fraction of the
 * gradient (*weight) and batch norm synchronized when asked. */
static StepMode share_mode(AsymNet *net, int N, int rank, int P, int sync_bn, int *lo, int *n, double *weight) {
    StepMode m = net_mode(net, 1);
    *lo = 0, *n = N, *weight = 1;
    if (P == 1) return m;
    *weight = batch_share(N, rank, P, lo, n);
    m.grad_scale = (float)*weight;
    m.pass.rows_before = *lo, m.pass.rows_after = N - *lo - *n;
    m.pass.reduce = sync_bn ? dist_sum_f64 : NULL;
    return m;
}

/* Floats of every batch-norm running statistic. */
static size_t buffer_floats(AsymNet *net) {
    size_t n = 0;
    for (int i = 0; i < asym_net_n_buffers(net); i++) n += asym_net_buffer(net, i)->n;
    return n;
}

/* Sums over ranks what a step leaves beside the gradients: v[0] the
 * weighted mean loss, v[1] the hits, v[2] the stop requests, then (with
 * buffers, i.e. per-rank batch norm) every running statistic, which
 * becomes the mean over ranks. v has 3 + buffer_floats entries. */
static void sum_step(AsymNet *net, double *v, int buffers) {
    size_t k = 3;
    int P = dist_size();
    if (buffers)
        for (int i = 0; i < asym_net_n_buffers(net); i++) {
            AsymParam *p = asym_net_buffer(net, i);
            for (size_t j = 0; j < p->n; j++) v[k++] = p->w[j];
        }
    dist_sum_f64(v, k);
    k = 3;
    if (buffers)
        for (int i = 0; i < asym_net_n_buffers(net); i++) {
            AsymParam *p = asym_net_buffer(net, i);
            for (size_t j = 0; j < p->n; j++) p->w[j] = (float)(v[k++] / P);
        }
}

/* asym_evaluate with the batches of d spread over the ranks. */
static void evaluate_all(AsymNet *net, const AsymDataset *d, int batch, double *loss, double *err) {
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
    dist_sum_f64(v, 2);
    *loss = d->n ? v[0] / d->n : 0;
    *err = d->n ? v[1] / d->n : 0;
}

/* A stop request on any rank stops them all. */
static int stop_all(int stop) {
    double v = stop;
    dist_sum_f64(&v, 1);
    return v > 0;
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
 * the last epoch (n layers each); version is version.json's object. A run
 * that stopped before its first test error has null for best_test_err and
 * final_test_err. */
static int write_summary(const char *dir, const AsymExperiment *ex, const AsymSummary *s, const AsymAlignment *initial, const AsymAlignment *final, int n,
                         double comm_per_step, double comm_seconds, const char *version) {
    char path[4200], *text = NULL, best[32] = "null", last[32] = "null";
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return asym_fail("out of memory");
    if (isfinite(s->best_test_err)) snprintf(best, sizeof best, "%.6f", s->best_test_err);
    if (isfinite(s->final_test_err)) snprintf(last, sizeof last, "%.6f", s->final_test_err);
    fprintf(f,
            "{\"name\": \"%s\", \"best_test_err\": %s, \"best_epoch\": %d, \"final_test_err\": %s, \"epochs\": %d, \"seconds\": %.3f, "
            "\"images_per_s\": %.1f, \"seed\": %llu, \"rule\": \"%s\", \"diverged\": %s",
            ex->name, best, s->best_epoch, last, s->epochs, s->seconds, s->images_per_s, (unsigned long long)s->seed,
            asym_rule_name(ex->net.rule ? ex->net.rule : ASYM_RULE_BP), s->diverged ? "true" : "false");
    if (s->diverged) fprintf(f, ", \"diverged_in\": \"%s\", \"diverged_epoch\": %d, \"diverged_step\": %d", s->diverged_in, s->stop_epoch, s->stop_step);
    if (isfinite(s->final_mean_angle)) fprintf(f, ", \"final_mean_angle\": %.4f", s->final_mean_angle);
    angle_list(f, "initial_angles", initial, n);
    if (s->epochs > 0) angle_list(f, "final_angles", final, n);
    if (dist_size() > 1)
        fprintf(f, ", \"ranks\": %d, \"allreduce_bytes_per_step\": %.0f, \"allreduce_seconds\": %.3f", dist_size(), comm_per_step, comm_seconds);
    if (s->best_val_epoch > 0)
        fprintf(f, ", \"best_val_err\": %.6f, \"best_val_epoch\": %d, \"test_err_at_best_val\": %.6f", s->best_val_err, s->best_val_epoch, s->test_err_at_best_val);
    if (version) fprintf(f, ", \"version\": %s", version);
    fprintf(f, "}\n");
    if (fclose(f) != 0) {
        free(text);
        return asym_fail("out of memory");
    }
    snprintf(path, sizeof path, "%s/summary.json", dir);
    const void *parts[1] = {text};
    size_t lens[1] = {len};
    int rc = io_write_atomic(path, parts, lens, 1);
    free(text);
    return rc;
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

/* The first parameter, buffer or feedback matrix holding a NaN or an Inf:
 * writes "NaN in 3.W[17]" to what and the tensor's name to name, returns 1. */
static int nonfinite_tensor(AsymNet *net, char *what, size_t n, char *name, size_t name_n) {
    int counts[3] = {asym_net_n_params(net), asym_net_n_buffers(net), asym_net_n_feedback(net)};
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < counts[k]; i++) {
            AsymParam *p = k == 0 ? asym_net_param(net, i) : k == 1 ? asym_net_buffer(net, i) : asym_net_feedback(net, i);
            if (!any_nonfinite(p->w, p->n)) continue;
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

/* debug.trap_fp: invalid operations, divisions by zero and overflows raise
 * SIGFPE where they happen, in every thread that runs the step (OpenBLAS
 * shares OpenMP's threads). Flags already raised are cleared first. */
static void fp_traps(int on) {
    const int traps = FE_INVALID | FE_DIVBYZERO | FE_OVERFLOW;
#pragma omp parallel
    {
        feclearexcept(FE_ALL_EXCEPT);
        if (on) feenableexcept(traps);
        else fedisableexcept(traps);
    }
}

static int stop_asked(const AsymTrainHooks *hooks) { return hooks && hooks->stop && hooks->stop(hooks->user); }

/* Creates out_dir, keeps config.yaml's text for the checkpoints and opens
 * log.jsonl: a new one, or for a resume the checkpoint's copy, after the
 * checkpoint has restored net, opt and rs. */
static int open_run(const char *out_dir, int resume, AsymNet *net, AsymOptim *opt, RunState *rs, uint8_t **config, FILE **log) {
    char path[4200];
    size_t len = 0;
    if (dist_rank() != 0) {
        /* the other ranks of a data-parallel run write nothing; they restore the same checkpoint */
        if (!resume) return ASYM_OK;
        snprintf(path, sizeof path, "%s/checkpoint.bin", out_dir);
        int rc = state_load_run(path, net, opt, rs);
        free(rs->log);
        rs->log = NULL;
        return rc;
    }
    if (io_mkdir_p(out_dir)) return ASYM_ERR;
    snprintf(path, sizeof path, "%s/config.yaml", out_dir);
    if (access(path, F_OK) == 0 && io_read_file(path, config, &len, (size_t)16 << 20, 0)) return ASYM_ERR;
    rs->config = (const char *)*config;
    rs->config_len = len;
    char ck[4200];
    snprintf(ck, sizeof ck, "%s/checkpoint.bin", out_dir);
    snprintf(path, sizeof path, "%s/log.jsonl", out_dir);
    /* a new run must not leave an earlier run's checkpoint looking like its own */
    if (!resume && remove(ck) != 0 && errno != ENOENT) return asym_fail("%s: cannot remove: %s", ck, strerror(errno));
    if (resume) {
        if (state_load_run(ck, net, opt, rs)) return ASYM_ERR;
        const void *parts[1] = {rs->log};
        size_t lens[1] = {rs->log_len};
        int rc = io_write_atomic(path, parts, lens, 1);
        free(rs->log);
        rs->log = NULL;
        if (rc) return ASYM_ERR;
    }
    if (!(*log = fopen(path, resume ? "a" : "w"))) return asym_fail("%s: cannot write: %s", path, strerror(errno));
    return ASYM_OK;
}

/* Flushes f, out_dir/name: a write to it that failed, now or since it was
 * opened, is an error naming the file. */
static int flush_log(FILE *f, const char *out_dir, const char *name) {
    errno = 0;
    if (fflush(f) == 0 && !ferror(f)) return ASYM_OK;
    return asym_fail("%s/%s: write failed: %s", out_dir, name, errno ? strerror(errno) : "an earlier write did not reach the file");
}

/* Closes *f (out_dir/name) if open, as flush_log. failed: the run has
 * failed already, and a write that failed is added to its message. */
static int close_log(FILE **f, const char *out_dir, const char *name, int failed) {
    if (!*f) return ASYM_OK;
    errno = 0;
    int bad = ferror(*f) != 0;
    if (fclose(*f) != 0) bad = 1;
    int err = errno;
    *f = NULL;
    if (!bad) return ASYM_OK;
    char first[1024];
    snprintf(first, sizeof first, "%s", failed ? asym_last_error() : "");
    return asym_fail("%s%s%s/%s: write failed: %s", first, failed ? "; and " : "", out_dir, name, err ? strerror(err) : "an earlier write did not reach the file");
}

/* version.json: this build's object (asym_version_json) with the run's
 * threads. A resumed run that another build or thread count made keeps
 * that one's object under "resumed_from" (null when the run predates
 * version.json). *text (malloc'd) receives the object written. */
static int write_version(const char *out_dir, int resume, int threads, char **text) {
    static const char from[] = ", \"resumed_from\": ";
    char path[4200], now[2048];
    uint8_t *old = NULL;
    size_t len = 0, n = (size_t)asym_version_json(now, sizeof now, threads), head = n - 1, nf = strlen(from);
    if (n >= sizeof now) return asym_fail("version.json: more than %zu bytes", sizeof now);
    snprintf(path, sizeof path, "%s/version.json", out_dir);
    if (resume && access(path, F_OK) == 0 && io_read_file(path, &old, &len, (size_t)1 << 20, 0)) return ASYM_ERR;
    while (len > 0 && (old[len - 1] == '\n' || old[len - 1] == ' ')) len--;
    /* the same build again: the file stays as it is, with any resumed_from */
    int same = old && ((len == n && !memcmp(old, now, n)) || (len > head + nf && !memcmp(old, now, head) && !memcmp(old + head, from, nf)));
    int object = old && len >= 2 && old[0] == '{' && old[len - 1] == '}';
    char *out = malloc(n + nf + len + 8);
    if (!out) {
        free(old);
        return asym_fail("out of memory");
    }
    if (same) memcpy(out, old, len), out[len] = 0;
    else if (resume) snprintf(out, n + nf + len + 8, "%.*s%s%.*s}", (int)head, now, from, object ? (int)len : 4, object ? (const char *)old : "null");
    else memcpy(out, now, n + 1);
    free(old);
    size_t k = strlen(out);
    out[k] = '\n';
    const void *parts[1] = {out};
    size_t lens[1] = {k + 1};
    int rc = io_write_atomic(path, parts, lens, 1);
    out[k] = 0;
    if (rc) free(out);
    else *text = out;
    return rc;
}

/* Writes out_dir/checkpoint.bin from rs (the caller sets its counters) with
 * log.jsonl as it stands, once log.jsonl and steps (steps.jsonl, when
 * logged) have reached their files. */
static int save_checkpoint(const char *out_dir, AsymNet *net, AsymOptim *opt, RunState *rs, FILE *log, FILE *steps) {
    char path[4200];
    uint8_t *text;
    size_t len;
    if (flush_log(log, out_dir, "log.jsonl") || (steps && flush_log(steps, out_dir, "steps.jsonl"))) return ASYM_ERR;
    snprintf(path, sizeof path, "%s/log.jsonl", out_dir);
    if (io_read_file(path, &text, &len, (size_t)1 << 30, 0)) return ASYM_ERR;
    rs->log = (char *)text;
    rs->log_len = len;
    snprintf(path, sizeof path, "%s/checkpoint.bin", out_dir);
    int rc = state_save_run(path, net, opt, rs);
    free(text);
    rs->log = NULL;
    return rc;
}

/* log_steps: out_dir/steps.jsonl, one line per training step; a resumed
 * run keeps the first `done` lines and continues after them. */
static FILE *open_steps(const char *out_dir, int resume, long done) {
    char path[4200];
    snprintf(path, sizeof path, "%s/steps.jsonl", out_dir);
    if (resume) {
        uint8_t *text = NULL;
        size_t len = 0, keep = 0;
        if (access(path, F_OK) == 0 && io_read_file(path, &text, &len, (size_t)1 << 30, 0)) return NULL;
        for (long k = 0; keep < len && k < done; keep++)
            if (text[keep] == '\n') k++;
        const void *parts[1] = {text ? (const void *)text : ""};
        size_t lens[1] = {keep};
        int rc = io_write_atomic(path, parts, lens, 1);
        free(text);
        if (rc) return NULL;
    }
    FILE *f = fopen(path, resume ? "a" : "w");
    if (!f) asym_fail("%s: cannot write: %s", path, strerror(errno));
    return f;
}

static int train_run(const AsymExperiment *ex, const char *out_dir, int resume, const AsymTrainHooks *hooks, AsymSummary *sum) {
    AsymDataset train, val, test;
    AsymNet *net = NULL;
    AsymOptim *opt = NULL;
    FILE *log = NULL;
    float *xb = NULL;
    int32_t *yb = NULL;
    int *perm = NULL, rc = ASYM_ERR;
    AsymAlignment *align = NULL;
    uint8_t *config = NULL;
    char *version = NULL; /* version.json's object */
    int failed = 0; /* a checkpoint could not be written */
    /* data-parallel training: P ranks, this one's rank; rank 0 alone writes */
    int P = dist_size(), rank = dist_rank(), writer = rank == 0;
    FILE *steps = NULL;
    DistGrad *dg = NULL;
    double *shared = NULL, comm_bytes = 0, comm_seconds = 0;
    long comm_steps = 0;
    int avg_buffers = 0;
    memset(sum, 0, sizeof *sum);
    sum->seed = ex->seed;
    sum->best_val_err = sum->test_err_at_best_val = -1;
    sum->final_mean_angle = NAN;
    if (ex->threads > 0) {
        omp_set_num_threads(ex->threads);
        openblas_set_num_threads(ex->threads);
    }
    int data_rc = asym_experiment_data(ex, &train, &val, &test);
    if (asym_dist_agree(data_rc)) {
        if (!data_rc) {
            asym_dataset_free(&train);
            asym_dataset_free(&val);
            asym_dataset_free(&test);
        }
        return ASYM_ERR;
    }
    AsymRng rng;
    rng_seed(&rng, ex->seed);
    AsymRng order = rng_split(&rng);
    int B = ex->batch_size;
    size_t in = (size_t)train.c * train.h * train.w;
    if (asym_dist_agree(asym_net_create(&net, &ex->net, B, &rng) || asym_optim_create(&opt, net, &ex->opt))) goto done;
    int L = asym_net_n_weight_layers(net), probe_n = train.n < B ? train.n : B;
    align = asym_calloc(2 * (L ? L : 1), sizeof(AsymAlignment));
    xb = asym_falloc((size_t)B * in);
    yb = asym_calloc(B, sizeof(int32_t));
    perm = asym_calloc(train.n, sizeof(int));
    /* per-rank batch norm: the running statistics are averaged over ranks after every step */
    avg_buffers = P > 1 && !ex->sync_bn;
    shared = asym_calloc(3 + (avg_buffers ? buffer_floats(net) : 0), sizeof(double));
    dg = dist_grad_new(net, ex->dist_overlap, (size_t)1 << 18);
    if (asym_dist_agree(!align || !xb || !yb || !perm || !shared || !dg)) goto done;
    AsymAlignment *initial = align + (L ? L : 1);
    /* the alignment only goes into rank 0's files */
    if (!resume && writer) asym_net_alignment(net, train.x, train.y, probe_n, initial);
    for (int i = 0; i < train.n; i++) perm[i] = i;
    int batches = (train.n + B - 1) / B;
    double t_start = asym_now(), train_time = 0;
    long images = 0;
    sum->best_test_err = 2.0;
    /* everything a checkpoint holds beside the network and the optimizer */
    RunState rs = {.batch_size = B, .threads = omp_get_max_threads(), .perm = perm, .n_train = train.n, .n_val = val.n, .n_test = test.n,
                   .initial = initial, .last = align, .n_layers = L, .sum = *sum, .ranks = P};
    if (out_dir) {
        rs.data_crc = state_data_crc(&train, &val, &test);
        int orc = open_run(out_dir, resume, net, opt, &rs, &config, &log);
        if (!orc && writer) orc = write_version(out_dir, resume, rs.threads, &version);
        if (!orc && writer && ex->log_steps && !(steps = open_steps(out_dir, resume, (long)rs.epoch * batches + rs.batch))) orc = ASYM_ERR;
        if (asym_dist_agree(orc)) goto done;
    }
    if (dist_check_same(net, resume ? "after loading the checkpoint" : "at the start")) goto done;
    int start_ep = 0, start_b = 0;
    if (resume) {
        order = rs.order;
        start_ep = rs.epoch, start_b = rs.batch;
        images = rs.images, train_time = rs.train_seconds, t_start -= rs.seconds;
        *sum = rs.sum;
    }
    if (hooks && hooks->on_start) hooks->on_start(hooks->user, train.n, val.n, test.n, asym_net_n_weights(net));
    for (int ep = start_ep; ep < ex->epochs; ep++) {
        AsymEpochStats st = {.epoch = ep + 1, .val_loss = -1, .val_err = -1};
        st.lr = asym_sched_lr(&ex->sched, ex->opt.lr, ep, ex->epochs);
        /* a run stopped inside this epoch continues its order and sums */
        int b0 = ep == start_ep ? start_b : 0;
        if (b0 == 0) rng_shuffle(&order, perm, train.n);
        double t0 = asym_now() - (b0 ? rs.epoch_seconds : 0), loss_sum = b0 ? rs.loss_sum : 0;
        long wrong = b0 ? rs.wrong : 0;
        if (ex->trap_fp) fp_traps(1);
        for (int b = b0; b < batches; b++) {
            int N = gather_batch(&train, perm, b, B, xb, yb), hits, lo = 0, n = N, stop = 0;
            double weight, bytes0 = (double)dist_bytes(), seconds0 = dist_seconds();
            StepMode m = share_mode(net, N, rank, P, ex->sync_bn, &lo, &n, &weight);
            asym_net_zero_grad(net);
            net_forward(net, xb + lo * in, n, &m);
            dist_grad_begin(dg, &m);
            float loss = net_backward(net, yb + lo, n, &m, &hits);
            dist_grad_end(dg);
            if (P > 1) {
                /* the global batch's mean loss and hits, and any rank's stop request */
                stop = stop_asked(hooks);
                shared[0] = weight * loss, shared[1] = hits * weight * N / (n ? n : 1), shared[2] = stop;
                sum_step(net, shared, avg_buffers);
                loss = (float)shared[0], hits = (int)llround(shared[1]), stop = shared[2] > 0;
                comm_bytes += (double)dist_bytes() - bytes0, comm_seconds += dist_seconds() - seconds0, comm_steps++;
            }
            if (!isfinite(loss)) {
                sum->diverged = 1;
                sum->stop_epoch = ep + 1, sum->stop_step = b + 1;
                snprintf(sum->diverged_in, sizeof sum->diverged_in, "loss");
                asym_fail("diverged: the training loss is %s at epoch %d, step %d", isnan(loss) ? "NaN" : "Inf", ep + 1, b + 1);
                break;
            }
            asym_optim_step(opt, st.lr);
            asym_net_feedback_update(net);
            long step = (long)ep * batches + b + 1;
            if (P > 1 && rank == ex->perturb_rank && step == ex->perturb_step) asym_net_param(net, 0)->w[0] += 1e-3f;
            char what[128];
            if (nonfinite_tensor(net, what, sizeof what, sum->diverged_in, sizeof sum->diverged_in)) {
                sum->diverged = 1;
                sum->stop_epoch = ep + 1, sum->stop_step = b + 1;
                asym_fail("diverged: %s after epoch %d, step %d", what, ep + 1, b + 1);
                break;
            }
            loss_sum += (double)loss * N;
            wrong += N - hits;
            images += N;
            if (steps) fprintf(steps, "{\"epoch\": %d, \"step\": %d, \"loss\": %.9g}\n", ep + 1, b + 1, loss);
            if (P > 1 && ex->dist_check_every > 0 && step % ex->dist_check_every == 0) {
                char when[64];
                snprintf(when, sizeof when, "after epoch %d, step %d", ep + 1, b + 1);
                if ((failed = dist_check_same(net, when))) break;
            }
            if (hooks && hooks->on_batch) {
                double el = asym_now() - t0, rate = (b * (double)B + N) / (el > 1e-9 ? el : 1e-9);
                double left = ((double)(batches - b - 1) * B + (double)(ex->epochs - ep - 1) * train.n) / rate;
                hooks->on_batch(hooks->user, ep + 1, ex->epochs, b + 1, batches, loss, rate, left);
            }
            if (P > 1 ? stop : stop_asked(hooks)) {
                /* the state after this step, to continue inside the epoch */
                if (out_dir) {
                    rs.epoch = ep, rs.batch = b + 1, rs.order = order, rs.sum = *sum;
                    rs.loss_sum = loss_sum, rs.wrong = wrong, rs.epoch_seconds = asym_now() - t0;
                    rs.images = images, rs.train_seconds = train_time, rs.seconds = asym_now() - t_start;
                    if ((failed = asym_dist_agree(writer ? save_checkpoint(out_dir, net, opt, &rs, log, steps) : 0))) break;
                }
                sum->interrupted = 1;
                sum->stop_epoch = ep + 1, sum->stop_step = b + 1;
                asym_fail("interrupted at epoch %d, step %d", ep + 1, b + 1);
                break;
            }
        }
        if (ex->trap_fp) fp_traps(0);
        if (failed) goto done;
        if (sum->diverged || sum->interrupted) break;
        for (int b = 0; b < ex->bn_batches && b < batches; b++) {
            int N = gather_batch(&train, perm, b, B, xb, yb), lo, n;
            double weight;
            StepMode m = share_mode(net, N, rank, P, ex->sync_bn, &lo, &n, &weight);
            m.pass.momentum = b == 0 ? 1.0f : ex->bn_alpha;
            net_forward(net, xb + lo * in, n, &m);
        }
        if (avg_buffers && ex->bn_batches > 0) sum_step(net, shared, 1);
        st.seconds = asym_now() - t0;
        train_time += st.seconds;
        st.images_per_s = train.n / (st.seconds > 1e-9 ? st.seconds : 1e-9);
        st.train_loss = loss_sum / train.n;
        st.train_err = (double)wrong / train.n;
        evaluate_all(net, &test, B, &st.test_loss, &st.test_err);
        if (val.n) evaluate_all(net, &val, B, &st.val_loss, &st.val_err);
        if (!isfinite(st.test_loss)) {
            sum->diverged = 1;
            sum->stop_epoch = ep + 1, sum->stop_step = 0;
            snprintf(sum->diverged_in, sizeof sum->diverged_in, "test loss");
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
        if (writer) asym_net_alignment(net, train.x, train.y, probe_n, align);
        st.align = align;
        st.n_align = L;
        st.mean_angle = mean_angle(align, L);
        st.wm_fallbacks = asym_net_wm_fallbacks(net);
        if (log) {
            fprintf(log, "{\"epoch\": %d, \"lr\": %.6g", st.epoch, st.lr);
            json_num(log, "train_loss", st.train_loss);
            json_num(log, "train_err", st.train_err);
            json_num(log, "test_loss", st.test_loss);
            json_num(log, "test_err", st.test_err);
            if (val.n) json_num(log, "val_loss", st.val_loss), json_num(log, "val_err", st.val_err);
            fprintf(log, ", \"seconds\": %.3f, \"images_per_s\": %.1f", st.seconds, st.images_per_s);
            json_num(log, "mean_angle", st.mean_angle);
            if (st.wm_fallbacks) fprintf(log, ", \"wm_fallbacks\": %d", st.wm_fallbacks);
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
        }
        if (hooks && hooks->on_epoch) hooks->on_epoch(hooks->user, &st);
        sum->final_mean_angle = st.mean_angle;
        if (P > 1) {
            char when[64];
            snprintf(when, sizeof when, "after epoch %d", ep + 1);
            if (dist_check_same(net, when)) goto done;
        }
        if (out_dir) {
            rs.epoch = ep + 1, rs.batch = 0, rs.order = order, rs.sum = *sum;
            rs.loss_sum = 0, rs.wrong = 0, rs.epoch_seconds = 0;
            rs.images = images, rs.train_seconds = train_time, rs.seconds = asym_now() - t_start;
            if (asym_dist_agree(writer ? save_checkpoint(out_dir, net, opt, &rs, log, steps) : 0)) goto done;
        }
        if (ep + 1 < ex->epochs && stop_all(stop_asked(hooks))) {
            sum->interrupted = 1;
            sum->stop_epoch = ep + 1, sum->stop_step = 0;
            asym_fail("interrupted after epoch %d", ep + 1);
            break;
        }
    }
    sum->seconds = asym_now() - t_start;
    sum->images_per_s = train_time > 0 ? images / train_time : 0;
    /* no test error yet: summary.json says null, not a number */
    if (sum->best_epoch == 0) sum->best_test_err = sum->final_test_err = NAN;
    rc = sum->diverged || sum->interrupted ? ASYM_ERR : ASYM_OK;
    /* every line logged reaches its file before summary.json says the run is
     * over; a run whose log lost lines gets none, unless it diverged */
    int lost = close_log(&log, out_dir, "log.jsonl", rc) != ASYM_OK;
    if (close_log(&steps, out_dir, "steps.jsonl", rc || lost)) lost = 1;
    if (lost) rc = ASYM_ERR;
    if (out_dir && !sum->interrupted && writer && (!lost || sum->diverged)) {
        char path[4200];
        if (write_summary(out_dir, ex, sum, initial, align, L, comm_steps ? comm_bytes / comm_steps : 0, comm_seconds, version)) rc = ASYM_ERR;
        snprintf(path, sizeof path, "%s/model.bin", out_dir);
        if (!sum->diverged && asym_net_save(net, path)) rc = ASYM_ERR;
    }
    /* a file rank 0 could not write fails every rank */
    if (P > 1 && !sum->diverged && !sum->interrupted) rc = asym_dist_agree(rc);
done:
    if (log) fclose(log);
    if (steps) fclose(steps);
    dist_grad_free(dg);
    free(shared);
    free(config);
    free(version);
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
