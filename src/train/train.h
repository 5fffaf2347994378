/* train.h: the train folder's inside: one run's state (Run) and the parts
 * asym_train puts together: the run folder (run.c), the epochs (loop.c),
 * the JSON a run writes (log.c), the divergence guard (guard.c) and
 * evaluation (eval.c). */
#ifndef ASYM_TRAIN_H
#define ASYM_TRAIN_H

#include <jansson.h>
#include <stdio.h>

#include "config/config.h"
#include "dist/dist.h"
#include "io/checkpoint.h"

/* ---- what a checkpoint holds (state.c) ---- */

/* The training loop's own state, beside the network's and the optimizer's. */
typedef struct RunState {
    int epoch, batch;          /* epochs completed; batches done in the epoch under way (0: at its start) */
    int batch_size, threads;
    int ranks;                 /* MPI ranks training the model (1: one process); a resume needs as many */
    AsymRng order;             /* data-order generator */
    int *perm;                 /* (n_train) the data order of the epoch under way or the last one; caller's array */
    int n_train, n_val, n_test;
    uint32_t data_crc;         /* CRC-32 of the prepared images and labels */
    double loss_sum, epoch_seconds; /* the epoch under way: summed loss, seconds so far */
    long wrong;                /* ... and wrong predictions */
    double seconds, train_seconds; /* wall and training time of the run so far */
    long images;               /* images trained on so far */
    AsymSummary sum;           /* best and final results so far */
    AsymAlignment *initial, *last; /* (n_layers) caller's arrays */
    int n_layers;
    const char *config;        /* save only: the resolved configuration (may be NULL) */
    size_t config_len;
    char *log;                 /* log.jsonl so far; on load malloc'd (the caller frees) */
    size_t log_len;
} RunState;

/* Writes the network, the optimizer and rs to path. */
int state_save_run(const char *path, AsymNet *net, const AsymOptim *opt, const RunState *rs);
/* Checks path against net, opt and the data described in rs (n_train,
 * n_val, n_test, data_crc, batch_size), then restores all of it. A refused
 * checkpoint leaves everything as it was. */
int state_load_run(const char *path, AsymNet *net, AsymOptim *opt, RunState *rs);
/* CRC-32 of every image and label of the three sets. */
uint32_t state_data_crc(const AsymDataset *train, const AsymDataset *val, const AsymDataset *test);

/* One of the run's line-per-record files: log.jsonl or steps.jsonl. A line
 * that could not be built or written marks it lost, and the next check of
 * it (log_flush, log_close) fails naming it. */
typedef struct TbFile TbFile;
typedef struct Log {
    FILE *f;          /* NULL: not written */
    const char *dir, *name;
    int lost;
    TbFile *tb;       /* log.jsonl's lines as TensorBoard events too (log.tensorboard), or NULL */
    int tb_lost;      /* an event could not be written (log_close says so) */
} Log;

/* TensorBoard's event file in dir (tboard.c): earlier ones removed, the
 * lines log.jsonl holds already written; then one event per line. */
int tb_open(TbFile **tb, const char *dir);
int tb_write_line(TbFile *tb, json_t *line);
int tb_close(TbFile *tb);

typedef struct Run {
    const AsymExperiment *ex;
    const char *out_dir;         /* NULL: nothing is written */
    const AsymTrainHooks *hooks;
    AsymSummary *sum;
    AsymDataset train, val, test;
    AsymNet *net;
    AsymOptim *opt;
    int P, rank, writer;         /* data-parallel: ranks, this one's; rank 0 alone writes */
    int B, L, batches, probe_n;  /* batch size, weight layers, batches per epoch, alignment batch */
    size_t in;                   /* floats per image the model takes */
    Augment aug;                 /* data.augment: the training images' (augmenting: oh > 0) */
    size_t in_src;               /* floats per stored training image */
    float *probe_x;              /* (probe_n, in) the alignment batch: train.x, or probe_buf */
    float *probe_buf;            /* augmenting: the first training images as evaluation sees them */
    float *xb;                   /* (B, in) the batch under way */
    int32_t *yb;
    int *perm;                   /* the epoch's data order */
    AsymRng order;               /* its generator */
    AsymAlignment *align, *initial; /* (L) after the last epoch; before training */
    RunState rs;                 /* what a checkpoint holds beside the network and optimizer */
    Log log, steps;
    uint8_t *config;             /* config.yaml's text */
    char *version;               /* version.json's object */
    DistGrad *dg;
    double *shared;              /* a step's sums over ranks (share_step_sums) */
    int avg_buffers;             /* per-rank batch norm: running statistics averaged after each step */
    DistCount comm;              /* the training steps' allreduce traffic */
    long comm_steps;
    double t_start, train_time;  /* wall clock at the start; seconds spent training */
    long images;                 /* images trained on */
    int start_ep, start_b;       /* where a resumed run continues */
    StreamData *sd;              /* a streamed data set (format imagenet), or NULL */
    Stream *train_s, *test_s;    /* its prefetchers */
    long skipped;                /* samples replaced in the epoch under way (this rank's) */
    double data_wait;            /* seconds of it spent waiting for the prefetcher (this rank's) */
    char last_bad[1024];         /* the last unreadable file's message */
    int guarded;                 /* the divergence guard has read every tensor once (guard_tensors) */
} Run;

/* run.c: a line for hooks->on_note (user: the Run) */
void run_note(void *user, const char *line);

/* run.c: the run's state after step (rs's epoch counters set by the
 * caller) into checkpoint.bin, by rank 0; every rank gets the result. */
int run_checkpoint(Run *r);

/* loop.c: the epochs from where the run stands. ASYM_ERR when a check or
 * a write failed; a divergence or a stop is in the summary. */
int run_epochs(Run *r);

/* log.c */
/* v rounded as printf's fmt prints it, as a JSON real; null when not finite */
json_t *log_num(double v, const char *fmt);
int log_epoch(Log *l, const AsymEpochStats *st, int has_val);
int log_step(Log *l, int epoch, int step, float loss);
/* summary.json: the results, the alignment before (initial) and after
 * (final) training, n layers each; version is version.json's object. */
int log_summary(const char *dir, const AsymExperiment *ex, const AsymSummary *s, const AsymAlignment *initial, const AsymAlignment *final, int n,
                double comm_per_step, double comm_seconds, const char *version);
/* version.json: this build's object with the run's threads; a resumed run
 * that another build made keeps that one's under "resumed_from". *text
 * (malloc'd) receives the object written. */
int log_version(const char *dir, int resume, int threads, char **text);
/* dir/name opened for writing (resume: appending), as l */
int log_open(Log *l, const char *dir, const char *name, int resume);
/* steps.jsonl for a resumed run: its first `done` lines kept */
int log_keep_lines(const char *dir, const char *name, long done);
/* A write that failed or a lost line, now or since opening, is an error
 * naming the file. log_close closes it too; failed: the run has failed
 * already, and the write error is added to its message. */
int log_flush(Log *l);
int log_close(Log *l, int failed);

/* guard.c: the first parameter, buffer or feedback matrix that holds a
 * NaN or an Inf: "NaN in 3.W[17]" into what, the tensor's name into name;
 * 1 if any. opt (NULL: every tensor): the optimizer that just stepped,
 * whose tensors are not read again when it wrote only finite values, and
 * the feedback tensors training never changes are not read either (a
 * run's first check passes NULL). */
int guard_tensors(AsymNet *net, const AsymOptim *opt, char *what, size_t n, char *name, size_t name_n);
/* The config's `threads` (when set) for OpenMP and OpenBLAS: training,
 * evaluation and probes run on the same count, so give the same bits. */
void experiment_threads(const AsymExperiment *ex);
/* debug.trap_fp: floating-point traps on or off in every thread */
void guard_fp_traps(int on);

/* eval.c: asym_evaluate with the batches spread over the ranks; err5:
 * the top-5 error with more than 10 classes, else -1 */
void eval_all(AsymNet *net, const AsymDataset *d, int batch, double *loss, double *err, double *err5);
/* The same over the n samples of a streamed split, made by st into x, y
 * (batch rows each); *bad counts the samples replaced. */
int eval_stream(AsymNet *net, Stream *st, int n, int batch, float *x, int32_t *y, double *loss, double *err, double *err5, long *bad,
                void (*note)(void *, const char *), void *user);
/* the mean B-W angle over the layers that have a B (NaN if none) */
double eval_mean_angle(const AsymAlignment *a, int n);

/* Checkpoints of a net and optimizer (state.c; opt may be NULL): what one
 * holds is docs/CHECKPOINT.md. A refused load names the first difference
 * and changes nothing. */
int asym_checkpoint_save(const char *path, AsymNet *net, const AsymOptim *opt);
int asym_checkpoint_load(const char *path, AsymNet *net, AsymOptim *opt);

#endif
