/* asymbp.h: the public API of libasymbp, a library for training deep networks
 * whose backward pass need not use the transpose of the forward weights
 * (feedback alignment, sign-concordant feedback, Kolen-Pollack, weight
 * mirrors; see docs/ and REFERENCE in the repository).
 *
 * Conventions: every call that can fail returns ASYM_OK (0) or ASYM_ERR (-1)
 * and leaves a one-line message in asym_last_error() naming the file, line,
 * key or byte offset at fault. The library never prints and never exits.
 * Tensors are float32, row-major, batch first: (N, C, H, W) for images,
 * (N, F) for features. Weight layers store W as (out, in) for fully
 * connected layers and (out, in, kh, kw) for convolutions; a feedback
 * matrix B always has W's shape. */
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

const char *asym_last_error(void);

/* ---- random numbers: an explicit generator state, passed by pointer ---- */
typedef struct AsymRng {
    uint64_t s[4];
} AsymRng;
void asym_rng_seed(AsymRng *r, uint64_t seed);

/* ---- data sets ---- */
typedef struct AsymDataset {
    int n, c, h, w;  /* n images of c x h x w */
    int classes;     /* labels are in [0, classes) */
    float *x;        /* (n, c, h, w) */
    int32_t *y;      /* (n) */
} AsymDataset;

/* Reads MNIST-format IDX files (raw or gzip) under their standard names
 * (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-...)
 * from dir. Pixels are scaled to [0, 1]. */
int asym_dataset_load_idx(AsymDataset *d, const char *dir, int train);
/* Gaussian images with random labels, for tests and benchmarks. */
int asym_dataset_random(AsymDataset *d, int n, int c, int h, int w, int classes, uint64_t seed);
/* Keeps the first n images (n <= d->n). */
void asym_dataset_truncate(AsymDataset *d, int n);
/* Zero-pads every image by p pixels on each side (28x28 -> 32x32 for p=2). */
int asym_dataset_pad(AsymDataset *d, int p);
/* x <- (x - mean[c]) / std[c]; mean/std have d->c entries. */
void asym_dataset_normalize(AsymDataset *d, const float *mean, const float *std);
/* Per-channel mean and std over the whole set; mean/std have d->c entries. */
void asym_dataset_stats(const AsymDataset *d, float *mean, float *std);
/* Moves a seeded random subset of n images of d into val. */
int asym_dataset_split(AsymDataset *d, AsymDataset *val, int n, uint64_t seed);
void asym_dataset_free(AsymDataset *d);

/* ---- network description ---- */
typedef enum AsymLayerKind {
    ASYM_FC = 1,
    ASYM_CONV,
    ASYM_MAXPOOL,
    ASYM_AVGPOOL,
    ASYM_BATCHNORM,
    ASYM_RELU,
    ASYM_TANH,
    ASYM_SIGMOID,
    ASYM_FLATTEN,
    ASYM_DROPOUT,
    ASYM_RESBLOCK,   /* He et al. basic block, or bottleneck if .bottleneck */
} AsymLayerKind;

typedef enum AsymShortcut {
    ASYM_SHORTCUT_A = 1, /* identity, zero-padded channels when they grow */
    ASYM_SHORTCUT_B,     /* identity, 1x1 conv + batch norm when shapes change */
} AsymShortcut;

typedef struct AsymLayerSpec {
    AsymLayerKind kind;
    int out;           /* fc: features; conv, resblock: output channels */
    int k, stride, pad; /* conv and pooling; pool k = 0 means global */
    int bias;          /* fc, conv: has a bias */
    float p;           /* dropout probability */
    float momentum;    /* batch norm running-statistics momentum (PyTorch's) */
    float eps;         /* batch norm epsilon */
    AsymShortcut shortcut; /* resblock */
    int bottleneck;    /* resblock: 1x1-3x3-1x1 with expansion 4 */
    float lr_scale;    /* per-layer learning-rate multiplier */
    int line;          /* config line that defined it, for messages */
} AsymLayerSpec;

typedef enum AsymInit {
    ASYM_INIT_TORCH = 1,    /* PyTorch's default for Linear/Conv2d */
    ASYM_INIT_XAVIER_UNIFORM,
    ASYM_INIT_XAVIER_NORMAL,
    ASYM_INIT_HE_UNIFORM,
    ASYM_INIT_HE_NORMAL,
} AsymInit;

typedef enum AsymLoss {
    ASYM_LOSS_SOFTMAX_CE = 1,
    ASYM_LOSS_SIGMOID_BCE, /* one-hot targets, mean over batch and classes */
} AsymLoss;

typedef struct AsymNetSpec {
    int in_c, in_h, in_w;   /* input shape */
    int classes;
    AsymLayerSpec *layers;  /* the final layer produces `classes` logits */
    int n_layers;
    AsymInit init;
    int zero_bias;          /* biases start at 0 (BioTorch with Xavier) */
    AsymLoss loss;
} AsymNetSpec;

/* Named architectures; layers are allocated into spec->layers. hidden and
 * n_hidden give the MLP's widths; bn adds batch norm after hidden layers. */
int asym_arch_mlp(AsymNetSpec *s, const int *hidden, int n_hidden, int bn, AsymLayerKind act);
int asym_arch_lenet(AsymNetSpec *s);                       /* BioTorch LeNet-5, 32x32 input */
int asym_arch_resnet_cifar(AsymNetSpec *s, int depth, AsymShortcut sc); /* 20, 32, 44, 56, 110 */
int asym_arch_resnet_imagenet(AsymNetSpec *s, int depth);  /* 18, 34, 50, 101, 152 */
void asym_netspec_free(AsymNetSpec *s);

/* ---- networks ---- */
typedef struct AsymNet AsymNet;

typedef enum AsymParamRole {
    ASYM_P_WEIGHT = 1,  /* W of a fully connected or convolution layer */
    ASYM_P_BIAS,
    ASYM_P_BN_SCALE,    /* batch norm gamma */
    ASYM_P_BN_SHIFT,    /* batch norm beta */
    ASYM_P_RUNNING_MEAN,
    ASYM_P_RUNNING_VAR,
} AsymParamRole;

/* One trainable tensor and its gradient (or, for buffers, a tensor of state
 * such as batch-norm running statistics, with g == NULL). */
typedef struct AsymParam {
    char name[48];      /* "3.W", "5.gamma", "7.main.0.W", ... */
    AsymParamRole role;
    float *w, *g;       /* values and gradient, n floats each */
    size_t n;
    int ndim, shape[4];
    int fan_in, fan_out;
    int decay;          /* weight decay applies (all parameters by default, as PyTorch) */
    float lr_scale;
} AsymParam;

/* Builds the network for batches of at most max_batch and initializes it
 * from rng. Everything the training step needs is allocated here. */
int asym_net_create(AsymNet **net, const AsymNetSpec *spec, int max_batch, AsymRng *rng);
void asym_net_free(AsymNet *net);
int asym_net_n_params(const AsymNet *net);
AsymParam *asym_net_param(AsymNet *net, int i);
size_t asym_net_n_weights(const AsymNet *net);   /* total floats over all parameters */
/* Forward pass of N <= max_batch inputs x (N, in_c, in_h, in_w); returns
 * the logits (N, classes), owned by the net. train selects batch statistics
 * and dropout. */
const float *asym_net_forward(AsymNet *net, const float *x, int N, int train);
/* Loss of the last forward pass against labels y; with backward != 0 it also
 * runs the backward pass, adding into every parameter gradient. correct gets
 * the number of right top-1 predictions when non-NULL. */
float asym_net_loss(AsymNet *net, const int32_t *y, int N, int backward, int *correct);
void asym_net_zero_grad(AsymNet *net);
/* Asks later backward passes to compute the gradient with respect to the
 * input, (N, in_c, in_h, in_w) (off by default: training does not need it). */
void asym_net_keep_input_grad(AsymNet *net, int on);
const float *asym_net_input_grad(const AsymNet *net);
/* Logits of the last forward pass and their gradient from the last loss. */
const float *asym_net_logits_grad(const AsymNet *net);
/* Batch-norm running statistics, exposed for saving and inspection. */
int asym_net_n_buffers(const AsymNet *net);
AsymParam *asym_net_buffer(AsymNet *net, int i);
/* Writes every parameter and buffer, with a magic number and checksum. */
int asym_net_save(const AsymNet *net, const char *path);
int asym_net_load(AsymNet *net, const char *path);

/* ---- optimizers and schedules ---- */
typedef enum AsymOptKind { ASYM_SGD = 1, ASYM_ADAM } AsymOptKind;
typedef struct AsymOptSpec {
    AsymOptKind kind;
    float lr, momentum, weight_decay, dampening;
    int nesterov;
    float beta1, beta2, eps; /* Adam */
} AsymOptSpec;

typedef enum AsymSchedKind { ASYM_SCHED_CONST = 1, ASYM_SCHED_STEP, ASYM_SCHED_MULTISTEP, ASYM_SCHED_COSINE } AsymSchedKind;
typedef struct AsymSchedSpec {
    AsymSchedKind kind;
    int milestones[16], n_milestones; /* multistep: epochs after which lr *= gamma */
    int step_size;                    /* step: every step_size epochs */
    float gamma;
    int t_max;                        /* cosine: period in epochs (0 = all epochs) */
    float eta_min;
} AsymSchedSpec;

/* Learning rate for a 0-based epoch, as PyTorch's schedulers give it. */
float asym_sched_lr(const AsymSchedSpec *s, float base_lr, int epoch, int epochs);

typedef struct AsymOptim AsymOptim;
int asym_optim_create(AsymOptim **opt, AsymNet *net, const AsymOptSpec *spec);
/* Applies one update with learning rate lr (times each parameter's scale). */
void asym_optim_step(AsymOptim *opt, float lr);
void asym_optim_free(AsymOptim *opt);

/* ---- experiments: a YAML file resolved into everything a run needs ---- */
typedef struct AsymConfig AsymConfig;
int asym_config_load(AsymConfig **cfg, const char *path);
/* "optimizer.lr=0.05", "model.layers.2.out=32", "schedule.milestones=[50,75]" */
int asym_config_set(AsymConfig *cfg, const char *assignment);
/* Writes the configuration, overrides applied, as YAML. */
int asym_config_write(const AsymConfig *cfg, const char *path);
void asym_config_free(AsymConfig *cfg);

/* Where the data comes from and how it is prepared (the `data` section). */
typedef struct AsymDataSpec {
    char format[16];        /* "idx" or "random" */
    char path[1024];
    int pad;                /* zero padding on each side */
    int normalize;          /* 1: per-channel mean/std of the training set */
    int norm_given;         /* channels in mean/std when given explicitly */
    float mean[4], std[4];
    int train_limit, test_limit, val_size;
    int random_n, random_c, random_h, random_w, random_classes;
    int c, h, w, classes;   /* the model's input (after padding) and classes */
} AsymDataSpec;

/* Loads the data sets described by spec: train (minus a seeded validation
 * split of val_size images), val, test; padded and normalized. */
int asym_data_load(const AsymDataSpec *spec, uint64_t seed, AsymDataset *train, AsymDataset *val, AsymDataset *test);

typedef struct AsymExperiment {
    char name[128];
    uint64_t seed;
    int epochs, batch_size, threads;
    AsymDataSpec data;
    AsymNetSpec net;
    AsymOptSpec opt;
    AsymSchedSpec sched;
} AsymExperiment;

/* Reads the configuration into ex; unknown keys and bad values are errors
 * naming the file, line and key. */
int asym_experiment_from_config(AsymExperiment *ex, AsymConfig *cfg);
void asym_experiment_free(AsymExperiment *ex);

/* ---- training ---- */
typedef struct AsymEpochStats {
    int epoch;              /* 1-based */
    float lr;
    double train_loss, train_err, test_loss, test_err, val_loss, val_err;
    double seconds, images_per_s;
} AsymEpochStats;

typedef struct AsymTrainHooks {
    void *user;
    /* Called once the data and network are ready; may be NULL. */
    void (*on_start)(void *user, int n_train, int n_val, int n_test, size_t n_weights);
    /* Called after every batch (progress display); may be NULL. */
    void (*on_batch)(void *user, int epoch, int epochs, int batch, int batches, float loss, double images_per_s, double eta_s);
    /* Called after every epoch; may be NULL. */
    void (*on_epoch)(void *user, const AsymEpochStats *st);
} AsymTrainHooks;

typedef struct AsymSummary {
    double best_test_err, final_test_err;
    int best_epoch, epochs;              /* best_epoch: lowest test error, 1-based */
    double best_val_err, test_err_at_best_val; /* with a validation split; else -1 */
    int best_val_epoch;
    int diverged;                        /* a NaN or Inf loss stopped the run */
    double seconds, images_per_s;
    uint64_t seed;
} AsymSummary;

/* Loads the data, builds the net, trains, and writes out_dir/log.jsonl,
 * out_dir/summary.json, out_dir/model.bin (best test or validation epoch
 * is recorded; the final weights are saved). out_dir may be NULL. */
int asym_train(const AsymExperiment *ex, const char *out_dir, const AsymTrainHooks *hooks, AsymSummary *sum);

/* Loads the experiment's data sets (train with optional validation split,
 * test), applying padding and normalization. */
int asym_experiment_data(const AsymExperiment *ex, AsymDataset *train, AsymDataset *val, AsymDataset *test);
/* Mean loss and error of net on d in evaluation mode. */
int asym_evaluate(AsymNet *net, const AsymDataset *d, int batch, double *loss, double *err);

/* ---- inspection ---- */
/* One forward and backward pass (training mode) of the first `batch` images
 * of the training set, written to out_dir as NumPy .npy files with
 * out_dir/manifest.json naming each: input x, labels y, logits and their
 * gradient, input gradient dx, every parameter (value and gradient) and
 * buffer, the layer list, and each parameter after `steps` optimizer steps
 * on that batch. weights (may be NULL) is a model.bin to start from. */
int asym_probe(const AsymExperiment *ex, const char *weights, int batch, int steps, const char *out_dir);

#ifdef __cplusplus
}
#endif
#endif
