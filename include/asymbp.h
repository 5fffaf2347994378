/* asymbp.h: the public API of libasymbp, a library for training deep networks
 * whose backward pass need not use the transpose of the forward weights
 * (feedback alignment, sign-concordant feedback, Kolen-Pollack, weight
 * mirrors; docs/RULES.md). A run is described by a YAML experiment file
 * (docs/CONFIG.md): open it, train, evaluate, probe, read the results.
 *
 * Every call that can fail returns ASYM_OK (0) or ASYM_ERR (-1) and leaves a
 * one-line message in asym_last_error() naming the file, line, key or byte
 * offset at fault. The library never prints and never exits. Tensors are
 * float32, row-major, batch first: (N, C, H, W) for images. */
#ifndef ASYMBP_H
#define ASYMBP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ASYM_OK 0
#define ASYM_ERR (-1)
#define ASYM_VERSION "0.1.0"

/* The message of the last failed call in this thread. */
const char *asym_last_error(void);
/* This build and threads as a run folder's version.json object; snprintf's return. */
int asym_version_json(char *buf, size_t n, int threads);

/* ---- rules: the rule table, by name ---- */
/* How many rules there are; they are numbered 1..asym_rule_count(). */
int asym_rule_count(void);
/* The name of rule r ("bp", "fa", ...), "default" for 0, "?" out of range. */
const char *asym_rule_name(int r);
/* The number of the rule called name, 0 when there is none. */
int asym_rule_parse(const char *name);

/* ---- data sets ---- */
typedef struct AsymDataset {
    int n, c, h, w;  /* n images of c x h x w */
    int classes;     /* labels are in [0, classes) */
    float *x;        /* (n, c, h, w), pixels in [0, 1] as read */
    int32_t *y;      /* (n) */
} AsymDataset;

/* Reader options: the data section's keys that change what is read
 * (docs/DATA.md). Zero is the default for every field. */
typedef struct AsymDataOptions {
    int coarse;              /* cifar100: the 20 superclass labels */
    int size_h, size_w;      /* folder: images decoded at this size (0: 32 x 32) */
    int resize;              /* fixed-size formats resized to size_h x size_w */
    int grayscale;           /* one luma channel instead of RGB */
    int train_per_class;     /* N training images drawn per class (0: all) */
    int test_per_class;      /* M test images drawn per class (0: all) */
    int classes_subset;      /* a random subset of K classes, relabelled 0..K-1 (0: all) */
    int classes;             /* npy: the class count when the labels do not show all */
    int sample_seed_given;   /* else the experiment seed draws the subset and images */
    uint64_t sample_seed;
    char cache[1024];        /* folder: directory for decoded-image caches ("": none) */
    char exclude[1024];      /* folder: class folder names left out, one per line */
} AsymDataOptions;

/* The i-th data format's name ("idx", "cifar10", ..., then "auto"); NULL past the end. */
const char *asym_data_format(int i);
/* The format of the data set at path ("cifar10", ...), from the files found there. */
int asym_data_detect(const char *path, char *format, size_t cap);
/* Reads the data set at path whole, before sampling: format "auto" is
 * detected and the name found written back (16 bytes). A fixed split gives
 * train and test (*pooled = 0), a pool every image in train (*pooled = 1). */
int asym_data_read(char format[16], const char *path, const AsymDataOptions *opt, AsymDataset *train, AsymDataset *test,
                   int *pooled);
/* Class names of that data set in label order; free with asym_data_names_free. */
int asym_data_names(const char *format, const char *path, const AsymDataOptions *opt, char ***names, int *n);
/* Frees names from asym_data_names or asym_experiment_names. */
void asym_data_names_free(char **names, int n);
/* STL-10's unlabeled_X.bin in dir, streamed: count, per-channel mean and std. */
int asym_stl10_unlabeled_stats(const char *dir, int *n, float mean[3], float std[3]);
/* RGB to one luma channel (ITU-R 601 weights); 1 channel: no-op. */
int asym_dataset_grayscale(AsymDataset *d);
/* Per-channel mean and std over the whole set; d->c entries each. */
void asym_dataset_stats(const AsymDataset *d, float *mean, float *std);
/* Frees the images and labels. */
void asym_dataset_free(AsymDataset *d);

/* ---- configurations: a YAML file with --set overrides ---- */
typedef struct AsymConfig AsymConfig;
/* Reads and parses a YAML file. */
int asym_config_load(AsymConfig **cfg, const char *path);
/* Applies "optimizer.lr=0.05", "model.layers.2.out=32", "schedule.milestones=[50,75]". */
int asym_config_set(AsymConfig *cfg, const char *assignment);
/* Writes the configuration, overrides applied, as YAML. */
int asym_config_write(const AsymConfig *cfg, const char *path);
/* The scalar text at a dotted path ("data.path"), or NULL. */
const char *asym_config_get(const AsymConfig *cfg, const char *dotted);
/* Frees cfg. */
void asym_config_free(AsymConfig *cfg);

/* ---- experiments: a configuration checked into everything a run needs ---- */
typedef struct AsymExperiment AsymExperiment;
/* Checks every key of cfg; unknown keys and bad values name file, line and key. */
int asym_experiment_open(AsymExperiment **ex, AsymConfig *cfg);
/* Frees ex. */
void asym_experiment_close(AsymExperiment *ex);
typedef struct AsymExperimentInfo {
    const char *name, *data_format, *data_path; /* owned by the experiment */
    uint64_t seed;
    int epochs, batch_size, threads;
    int trap_fp;                                /* debug.trap_fp: steps raise SIGFPE */
    double lr;                                  /* optimizer.lr */
} AsymExperimentInfo;
/* What a caller may want to print or act on. */
void asym_experiment_info(const AsymExperiment *ex, AsymExperimentInfo *info);
/* Train (minus the validation split), validation and test sets; prepared:
 * padded and normalized as training sees them (with data.augment, every
 * set through the evaluation transform), else as read. */
int asym_experiment_data(const AsymExperiment *ex, int prepared, AsymDataset *train, AsymDataset *val, AsymDataset *test);
/* Class names in label order after the experiment's class subset. */
int asym_experiment_names(const AsymExperiment *ex, char ***names, int *n);

/* ---- training ---- */
/* How a weight layer's feedback relates to exact backpropagation. */
typedef struct AsymAlignment {
    char name[48];       /* "3", "4.main.0" */
    int rule;            /* asym_rule_name(rule) */
    double angle;        /* degrees between B and W (0 for bp; NaN without B) */
    double norm_ratio;   /* |B| / |W| */
    double sign_agree;   /* fraction of entries where sign(B) == sign(W) */
    double delta_angle;  /* degrees between the error the rule sends to the layer's output and BP's */
    double grad_angle;   /* degrees between the rule's dW and BP's dW */
} AsymAlignment;

typedef struct AsymEpochStats {
    int epoch;                   /* 1-based */
    float lr;
    double train_loss, train_err, test_loss, test_err, val_loss, val_err;
    double seconds, images_per_s;
    const AsymAlignment *align;  /* per weight layer, measured after the epoch */
    int n_align;
    double mean_angle;           /* over layers that have B (NaN if none) */
    int wm_fallbacks;            /* orthogonal mirror-noise blocks left plain so far */
    double test_err5, val_err5;  /* top-5 errors with more than 10 classes; else -1 */
    long skipped_files;          /* streamed data: samples replaced this epoch (unreadable files) */
    double data_wait_s;          /* streamed data: seconds of the epoch's training spent waiting for
                                    decoded batches (rank 0's); else -1 */
} AsymEpochStats;

/* Callbacks of a run; each may be NULL. stop is polled after every step
 * and epoch: nonzero ends the run there, after a checkpoint. */
typedef struct AsymTrainHooks {
    void *user;
    void (*on_start)(void *user, int n_train, int n_val, int n_test, size_t n_weights);
    void (*on_batch)(void *user, int epoch, int epochs, int batch, int batches, float loss, double images_per_s, double eta_s);
    void (*on_epoch)(void *user, const AsymEpochStats *st);
    int (*stop)(void *user);
    /* a line worth showing: a file skipped, an index cache rebuilt */
    void (*on_note)(void *user, const char *line);
} AsymTrainHooks;

typedef struct AsymSummary {
    double best_test_err, final_test_err;      /* NaN when no epoch finished */
    int best_epoch, epochs;                    /* best_epoch: lowest test error, 1-based */
    double best_val_err, test_err_at_best_val; /* with a validation split; else -1 */
    int best_val_epoch;
    int diverged;                              /* a NaN or Inf stopped the run */
    double final_mean_angle;                   /* mean B-W angle after the last epoch */
    double seconds, images_per_s;
    uint64_t seed;
    int interrupted;                           /* hooks->stop ended the run early */
    int stop_epoch, stop_step;                 /* where it stopped (step 0: after the epoch) */
    char diverged_in[48];                      /* "loss", "test loss" or a tensor ("3.W") */
    double final_test_err5;                    /* top-5, with more than 10 classes; else -1 */
} AsymSummary;

/* Trains; with out_dir, writes version.json, log.jsonl, summary.json,
 * model.bin and a checkpoint.bin per epoch (docs/ENGINE.md). Under mpirun
 * every rank calls it alike and rank 0 alone writes (docs/MPI.md). */
int asym_train(const AsymExperiment *ex, const char *out_dir, const AsymTrainHooks *hooks, AsymSummary *sum);
/* Continues out_dir's run from its checkpoint, bitwise as if uninterrupted. */
int asym_train_resume(const AsymExperiment *ex, const char *out_dir, const AsymTrainHooks *hooks, AsymSummary *sum);
/* One forward and backward pass of the first `batch` training images and
 * `steps` optimizer steps, every tensor written to out_dir as .npy files
 * with a manifest.json; weights (may be NULL) is a model.bin to start from. */
int asym_probe(const AsymExperiment *ex, const char *weights, int batch, int steps, const char *out_dir);

/* ---- networks, for one's own loop ---- */
typedef struct AsymNet AsymNet;
typedef struct AsymOptim AsymOptim;

/* What a tensor is: W (fc, conv), bias, batch norm's gamma and beta and
 * running statistics, a feedback matrix B or a DFA projection D. */
typedef enum AsymParamRole {
    ASYM_P_WEIGHT = 1, ASYM_P_BIAS, ASYM_P_BN_SCALE, ASYM_P_BN_SHIFT, ASYM_P_RUNNING_MEAN, ASYM_P_RUNNING_VAR, ASYM_P_FEEDBACK
} AsymParamRole;
/* One tensor and its gradient (g: NULL for buffers such as running statistics). */
typedef struct AsymParam {
    char name[48];      /* "3.W", "5.gamma", "7.main.0.W", "3.B" ... */
    AsymParamRole role;
    float *w, *g;       /* values and gradient, n floats each */
    size_t n;
    int ndim, shape[4];
    int fan_in, fan_out;
    int decay;          /* weight decay applies */
    float lr_scale;
} AsymParam;

/* The experiment's network for batches of batch_size, initialized from its seed. */
int asym_experiment_net(const AsymExperiment *ex, AsymNet **net);
/* The experiment's optimizer over net's parameters. */
int asym_experiment_optim(const AsymExperiment *ex, AsymNet *net, AsymOptim **opt);
/* The experiment's learning rate for a 0-based epoch. */
float asym_experiment_lr(const AsymExperiment *ex, int epoch);
/* Frees net. */
void asym_net_free(AsymNet *net);
/* The trainable tensors, in creation order. */
int asym_net_n_params(const AsymNet *net);
AsymParam *asym_net_param(AsymNet *net, int i);
/* Batch norms' running statistics (g NULL), in creation order. */
int asym_net_n_buffers(const AsymNet *net);
AsymParam *asym_net_buffer(AsymNet *net, int i);
/* Logits (N, classes) of x (N <= batch_size); train: batch statistics, dropout. */
const float *asym_net_forward(AsymNet *net, const float *x, int N, int train);
/* Mean loss of the last forward pass against y; backward != 0 adds the
 * gradients; *correct (may be NULL) gets the top-1 hits. */
float asym_net_loss(AsymNet *net, const int32_t *y, int N, int backward, int *correct);
/* Zeroes every gradient. */
void asym_net_zero_grad(AsymNet *net);
/* Applies one update with learning rate lr (times each parameter's scale). */
void asym_optim_step(AsymOptim *opt, float lr);
/* After every optimizer step: the rules' feedback updates (sign, kp, wm). */
void asym_net_feedback_update(AsymNet *net);
/* Frees opt. */
void asym_optim_free(AsymOptim *opt);
/* Mean loss and error of net on d in evaluation mode. */
int asym_evaluate(AsymNet *net, const AsymDataset *d, int batch, double *loss, double *err);
/* net on the experiment's test set, in memory or streamed (format
 * imagenet: the val split, read by data.workers threads as training reads
 * it), in evaluation mode: mean loss, error, top-5 error (-1 with 10
 * classes or fewer), the number of images and of files found unreadable
 * (each named once through note, which may be NULL). */
int asym_experiment_test(const AsymExperiment *ex, AsymNet *net, double *loss, double *err, double *err5, int *n, long *bad,
                         void (*note)(void *user, const char *line), void *user);
/* Weight layers, and their alignment on a batch; the model is left unchanged. */
int asym_net_n_weight_layers(const AsymNet *net);
int asym_net_alignment(AsymNet *net, const float *x, const int32_t *y, int N, AsymAlignment *out);
/* Every parameter, buffer and feedback matrix, with a magic number and checksum. */
int asym_net_save(const AsymNet *net, const char *path);
int asym_net_load(AsymNet *net, const char *path);

/* ---- checkpoints (docs/CHECKPOINT.md): named arrays, versioned, CRC-checked ---- */
#define ASYM_CHECKPOINT_VERSION 1
typedef struct AsymCheckpoint AsymCheckpoint;
/* Whether path could resume a run of ex; a mismatch is named. */
int asym_checkpoint_check(const char *path, const AsymExperiment *ex);
/* Reads a whole checkpoint, checking length, checksum, version and records. */
int asym_checkpoint_open(AsymCheckpoint **ck, const char *path);
void asym_checkpoint_close(AsymCheckpoint *ck);
/* A text record ("config", "log", "arch", "asymbp") owned by ck, or NULL. */
const char *asym_checkpoint_text(const AsymCheckpoint *ck, const char *name);
/* An integer record ("epoch", "batch", "seed", "optim/t", ...). */
int asym_checkpoint_int(const AsymCheckpoint *ck, const char *name, int64_t *v);
/* Every record into dir as .npy or text files, with a manifest.json. */
int asym_checkpoint_export(const AsymCheckpoint *ck, const char *dir);

/* ---- data-parallel training on MPI (docs/MPI.md); one rank 0 without ---- */
/* Starts MPI when the process was started by an MPI launcher. */
int asym_dist_init(int *argc, char ***argv);
void asym_dist_finalize(void);
int asym_dist_rank(void);
int asym_dist_size(void);
/* on != 0: later runs use this process alone (a sweep's runs, one per rank). */
void asym_dist_solo(int on);
/* Collective: ASYM_ERR on every rank when any failed, with the lowest one's message. */
int asym_dist_agree(int rc);

#ifdef __cplusplus
}
#endif
#endif
