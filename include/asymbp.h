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
/* The convolution backend this library was built with: "im2col + OpenBLAS",
 * or "oneDNN X.Y.Z (...)" for the oneDNN build (make DNNL=1). */
const char *asym_conv_backend(void);
/* This build and a run's setting as a one-line JSON object, what a run
 * folder's version.json holds: "asymbp" (ASYM_VERSION), "commit" (git;
 * "-dirty" when built from changed sources), "flags" (compiler flags),
 * "compiler", "blas" (OpenBLAS's configuration), "convolutions"
 * (asym_conv_backend), "threads" (as given: the OpenMP threads a run
 * uses) and "ranks" (MPI processes). Returns its length, as snprintf does. */
int asym_version_json(char *buf, size_t n, int threads);

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
/* Resizes every image to h x w, each channel bilinearly (stb_image_resize's
 * triangle filter, edges clamped: torchvision's Resize of a PIL image). */
int asym_dataset_resize(AsymDataset *d, int h, int w);
/* x <- (x - mean[c]) / std[c]; mean/std have d->c entries. */
void asym_dataset_normalize(AsymDataset *d, const float *mean, const float *std);
/* Per-channel mean and std over the whole set; mean/std have d->c entries. */
void asym_dataset_stats(const AsymDataset *d, float *mean, float *std);
/* Moves a seeded random subset of n images of d into val. */
int asym_dataset_split(AsymDataset *d, AsymDataset *val, int n, uint64_t seed);
void asym_dataset_free(AsymDataset *d);

/* ---- data readers (begin) ---- */
/* The data sets of Liao, Leibo and Poggio (2016) as found on disk:
 * CIFAR-10/100 and STL-10 binary versions, SVHN cropped digits (MATLAB .mat
 * through libmatio), image folders (JPEG/PNG through stb_image), NumPy .npy
 * feature matrices. Every reader checks each header against the file size
 * before allocating, and names the file (and byte offset or entry) when it
 * refuses one. Pixels are scaled to [0, 1]; images are (c, h, w) row-major.
 * docs/DATA.md describes the formats. */

/* Reader options beyond format and path: the `data` keys that change what
 * is read (AsymDataSpec.opt). Zero is the default for every field. */
typedef struct AsymDataOptions {
    int coarse;              /* cifar100: the 20 superclass labels, not the 100 fine ones */
    int size_h, size_w;      /* folder: every image decoded at this size (0: 32 x 32) */
    int resize;              /* data.size given: images of the fixed-size formats resized to size_h x size_w */
    int grayscale;           /* one luma channel instead of RGB */
    int train_per_class;     /* N training images drawn per class (0: all) */
    int test_per_class;      /* M test images drawn per class (0: all) */
    int classes_subset;      /* K: a random subset of K classes, relabelled 0..K-1 (0: all) */
    int classes;             /* npy: the class count when the labels do not show all (0: largest + 1) */
    int sample_seed_given;   /* else the experiment seed draws the subset and images */
    uint64_t sample_seed;
    char cache[1024];        /* folder: directory for decoded-image caches ("": no cache) */
    char exclude[1024];      /* folder: class folder names left out, one per line */
} AsymDataOptions;

struct AsymDataSpec;

/* CIFAR-10 (hundred = 0; dir holds data_batch_1.bin .. data_batch_5.bin and
 * test_batch.bin) or CIFAR-100 (train.bin, test.bin; coarse selects the 20
 * superclasses), binary versions. */
int asym_dataset_load_cifar(AsymDataset *d, const char *dir, int hundred, int coarse, int train);
/* STL-10 binary: dir holds train_X.bin, train_y.bin, test_X.bin, test_y.bin
 * (labels 1..10 become 0..9). 96 x 96 images stored column-major on disk. */
int asym_dataset_load_stl10(AsymDataset *d, const char *dir, int train);
/* SVHN cropped digits: path is a .mat file (X: 32x32x3xN, y: Nx1 with 10
 * meaning digit 0), or a folder holding train_32x32.mat and test_32x32.mat. */
int asym_dataset_load_svhn(AsymDataset *d, const char *path, int train);
/* A feature or image array x.npy of shape (N, F), (N, H, W) or (N, C, H, W)
 * and an integer label vector y.npy of N entries; F features become F
 * channels of 1 x 1 images. uint8 arrays are scaled to [0, 1]. */
int asym_dataset_load_npy(AsymDataset *d, const char *x_path, const char *y_path);
/* Every image under dir/CLASS/ (classes in name order; with dir/train/ and
 * dir/test/, the images of both, training ones first), resized to h x w,
 * 1 or 3 channels; cache_dir (may be NULL) keeps decoded copies. */
int asym_dataset_load_folder(AsymDataset *d, const char *dir, int h, int w, int grayscale, const char *cache_dir);
/* RGB to one luma channel (ITU-R 601 weights, as stb_image); 1 channel: no-op. */
int asym_dataset_grayscale(AsymDataset *d);

/* STL-10's unlabeled_X.bin in dir, streamed (it is 100000 images): count
 * and per-channel mean and std of the [0, 1] pixels. */
int asym_stl10_unlabeled_stats(const char *dir, int *n, float mean[3], float std[3]);

/* Which reader suits path ("idx", "cifar10", "cifar100", "stl10", "svhn",
 * "folder", "npy"), from the file names found there. */
int asym_data_detect(const char *path, char *format, size_t cap);
/* Sets spec->c, h, w and classes from its format, path and options (image
 * folders and .npy files are looked at, nothing is decoded); format "auto"
 * becomes the one asym_data_detect finds. The calls below and
 * asym_data_load take a spec resolved so. */
int asym_data_spec_resolve(struct AsymDataSpec *spec);
/* The data set's own splits, read whole, before any sampling, grayscale
 * conversion, padding or normalization (image folders are decoded at the
 * options' size and channels): a fixed split gives train and test
 * (*pooled = 0); a pool (an image folder without train/ and test/, an npy
 * folder with x.npy and y.npy, a single SVHN .mat file) gives every image
 * in train and an empty test (*pooled = 1). */
int asym_data_load_splits(const struct AsymDataSpec *spec, AsymDataset *train, AsymDataset *test, int *pooled);
/* Class names of the data set spec describes, in label order after the
 * class subset drawn with seed (the experiment seed unless sample_seed is
 * given): folder names, or the names files shipped with CIFAR and STL-10,
 * or "0", "1", ...; free with asym_data_names_free. */
int asym_data_class_names(const struct AsymDataSpec *spec, uint64_t seed, char ***names, int *n);
void asym_data_names_free(char **names, int n);
/* ---- data readers (end) ---- */

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

typedef enum AsymInit {
    ASYM_INIT_TORCH = 1,    /* PyTorch's default for Linear/Conv2d */
    ASYM_INIT_XAVIER_UNIFORM,
    ASYM_INIT_XAVIER_NORMAL,
    ASYM_INIT_HE_UNIFORM,
    ASYM_INIT_HE_NORMAL,
} AsymInit;

/* Feedback rules (REFERENCE "Feedback rules"): which matrix B stands in for W
 * in a weight layer's input gradient, and how B changes. */
typedef enum AsymRule {
    ASYM_RULE_DEFAULT = 0, /* a layer without its own rule takes the network's */
    ASYM_RULE_BP,    /* exact backpropagation: B = W */
    ASYM_RULE_FA,    /* feedback alignment: fixed random B (Lillicrap et al. 2016) */
    ASYM_RULE_DFA,   /* direct feedback alignment: output error through a fixed random matrix (Nokland 2016) */
    ASYM_RULE_USF,   /* uniform sign-concordant: s * sign(W) (Liao et al. 2016) */
    ASYM_RULE_BRSF,  /* |M| * sign(W), M redrawn every batch */
    ASYM_RULE_FRSF,  /* |M| * sign(W), M drawn once */
    ASYM_RULE_KP,    /* Kolen-Pollack: B takes W's update and decay (Akrout et al. 2019) */
    ASYM_RULE_WM,    /* weight mirror: B learns W from injected noise (Akrout et al. 2019) */
    ASYM_RULE_COUNT
} AsymRule;

/* Name <-> rule ("bp", "fa", ...); asym_rule_parse returns ASYM_RULE_DEFAULT
 * for an unknown name. */
const char *asym_rule_name(AsymRule r);
AsymRule asym_rule_parse(const char *name);

/* Mirror noise. ORTHOGONAL: normal noise whose n vectors are made orthogonal
 * (blocks of at most d = input size), scaled so E[x x^T] = std^2 I as for
 * the others; the sample covariance is then far less noisy when n ~ d. */
typedef enum AsymNoise { ASYM_NOISE_UNIFORM = 1, ASYM_NOISE_NORMAL, ASYM_NOISE_ORTHOGONAL } AsymNoise;

/* Options of the feedback rules, shared by every layer of a network. */
typedef struct AsymFeedbackSpec {
    AsymInit init;          /* distribution of random B (fa, dfa, frsf/brsf magnitudes); Xavier uniform by default */
    float init_gain;        /* multiplies that distribution (1) */
    int scale_he;           /* usf scale: 0 Xavier std sqrt(2/(fan_in+fan_out)), 1 He std sqrt(2/fan_in) */
    float scale;            /* usf: explicit scale s (> 0 overrides scale_he) */
    float concordance;      /* fraction p of B's entries whose sign agrees with W (usf, brsf, frsf); 1 by default */
    int norm_feedback;      /* Moskovitz et al.: scale B to W's norm after every change */
    int fixed_weight_norm;  /* Moskovitz et al.: keep each layer's |W| at its initial value */
    float clip_dx;          /* > 0: clip each weight layer's input gradient to this L2 norm per batch */
    int dfa_conv;           /* dfa: a block that feeds a convolution gets BioTorch's D (a random classes x C x k x k
                               kernel taken back through that convolution from a constant error map); 0: dense random D */
    /* weight mirrors */
    AsymNoise wm_noise;     /* uniform by default (Akrout's); orthogonal: the exact estimator, with wm_lr = wm_decay = 1 equal to bp on layers with one output position */
    float wm_std;           /* noise std (0.05 / sqrt(3): uniform in [-0.05, 0.05]) */
    float wm_lr;            /* B = (1 - wm_decay) B + wm_lr y x^T / (n P std^2); 1e-3 and 1e-3 by default */
    float wm_decay;
    int wm_steps;           /* mirror steps after every training batch (1) */
    int wm_batch;           /* noise inputs per mirror step (0: the training batch's size; with orthogonal noise,
                               per layer fan_in/P, or 4 fan_in/P for P > 1 output positions) */
    int wm_presweep;        /* mirror steps before training (-1: ceil(3 / wm_decay), so (1 - decay)^steps <= e^-3; 1000 without decay) */
} AsymFeedbackSpec;

/* Defaults as documented above. */
void asym_feedback_defaults(AsymFeedbackSpec *f);

typedef struct AsymLayerSpec {
    AsymLayerKind kind;
    AsymRule rule;     /* fc, conv, resblock: overrides the network's rule */
    int out;           /* fc: features; conv, resblock: output channels */
    int k, stride, pad; /* conv and pooling; pool k = 0 means global */
    int bias;          /* fc, conv: has a bias */
    float p;           /* dropout probability */
    float momentum;    /* batch norm running-statistics momentum (PyTorch's) */
    float eps;         /* batch norm epsilon */
    AsymShortcut shortcut; /* resblock */
    int bottleneck;    /* resblock: 1x1-3x3-1x1 with expansion 4 */
    float lr_scale;    /* per-layer learning-rate multiplier; 0 means 1 (a zeroed spec), negative freezes the layer
                          (multiplier 0: the config's lr_scale: 0) */
    int line;          /* config line that defined it, for messages */
} AsymLayerSpec;


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
    AsymRule rule;          /* every weight layer's rule unless overridden (bp when DEFAULT) */
    AsymFeedbackSpec fb;    /* all zero: asym_feedback_defaults */
    /* Per-layer rules: sel is a weight-layer index ("0", "-1" = the last) or
     * a layer name ("3", "4.main.0"; a resblock's name covers its layers). */
    struct { char sel[40]; AsymRule rule; } overrides[32];
    int n_overrides;
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
    ASYM_P_FEEDBACK,    /* a feedback matrix B (W's shape) or DFA projection D */
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
/* One training-mode forward pass of x that moves every batch norm's running
 * statistics toward the batch's with weight alpha (first != 0: replaces
 * them), whatever each layer's own momentum; gradients are untouched. */
void asym_net_recompute_stats(AsymNet *net, const float *x, int N, float alpha, int first);
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
/* Feedback matrices: B of each weight layer whose rule has one ("3.B"), and
 * DFA projections ("3.D", (classes, block output)). For kp, g is W's. */
int asym_net_n_feedback(const AsymNet *net);
/* Weight mirrors with orthogonal noise: how many noise blocks kept plain
 * normal noise because their Cholesky factorization failed (a rank-deficient
 * draw), over every layer since the network was made. 0 with other noise. */
int asym_net_wm_fallbacks(const AsymNet *net);
AsymParam *asym_net_feedback(AsymNet *net, int i);
/* After every optimizer step: sign-concordant B follow W's signs, brsf
 * redraws its magnitudes, weight mirrors run their mirror steps, and the
 * normalization options apply. */
void asym_net_feedback_update(AsymNet *net);

/* How a weight layer's feedback relates to exact backpropagation. */
typedef struct AsymAlignment {
    char name[48];
    AsymRule rule;
    double angle;        /* degrees between B and W, flattened (0 for bp; NaN without B) */
    double norm_ratio;   /* |B| / |W| */
    double sign_agree;   /* fraction of entries where sign(B) == sign(W) */
    double delta_angle;  /* degrees between the error the rule sends to the layer's output and BP's */
    double grad_angle;   /* degrees between the rule's dW and BP's dW */
} AsymAlignment;

int asym_net_n_weight_layers(const AsymNet *net);
/* Measures every weight layer on the batch x (N, ...), labels y, without
 * changing the model: one forward pass (batch statistics, running
 * statistics untouched) and two backward passes, the rule's and exact BP's.
 * Gradients are left zeroed. out has asym_net_n_weight_layers entries. */
int asym_net_alignment(AsymNet *net, const float *x, const int32_t *y, int N, AsymAlignment *out);

/* Writes every parameter, buffer and feedback matrix, with a magic number
 * and checksum. */
int asym_net_save(const AsymNet *net, const char *path);
int asym_net_load(AsymNet *net, const char *path);

/* ---- optimizers and schedules ---- */
typedef enum AsymOptKind { ASYM_SGD = 1, ASYM_ADAM } AsymOptKind;
typedef struct AsymOptSpec {
    AsymOptKind kind;
    float lr, momentum, weight_decay, dampening;
    int nesterov;
    int manhattan;           /* SGD: Batch Manhattan, the sign of each gradient entry (Liao et al.) */
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
/* The scalar text at a dotted path of map keys ("data.path"), or NULL when
 * the key is missing or not a scalar. */
const char *asym_config_get(const AsymConfig *cfg, const char *dotted);
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
    AsymDataOptions opt;    /* the other readers' options (see "data readers" above) */
} AsymDataSpec;

/* Loads the data sets described by spec: train (minus a seeded validation
 * split of val_size images), val, test; padded and normalized. */
int asym_data_load(const AsymDataSpec *spec, uint64_t seed, AsymDataset *train, AsymDataset *val, AsymDataset *test);

typedef struct AsymExperiment {
    char name[128];
    uint64_t seed;
    int epochs, batch_size, threads;
    /* after each epoch, batch-norm running statistics are recomputed as an
     * exponential moving average (alpha) over the epoch's first bn_batches
     * training batches (Liao et al.); 0: off */
    int bn_batches;
    float bn_alpha;
    /* debug.trap_fp: the training step runs with floating-point traps on
     * (invalid operation, division by zero, overflow raise SIGFPE where
     * they happen) */
    int trap_fp;
    /* log_steps: out_dir/steps.jsonl gets the training loss of every step */
    int log_steps;
    /* data-parallel training under MPI (docs/MPI.md): model.sync_bn
     * (batch-norm statistics over every rank's share of the batch),
     * dist.check_every (compare the ranks' models every N steps; 0: at the
     * start and after every epoch only), dist.overlap (each layer's
     * gradient allreduce starts during the backward pass), and
     * debug.perturb_rank/perturb_step (that rank alters a weight after
     * that step, for testing the check; -1: off) */
    int sync_bn, dist_check_every, dist_overlap;
    int perturb_rank, perturb_step;
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
    const AsymAlignment *align;  /* per weight layer, measured after the epoch */
    int n_align;
    double mean_angle;           /* mean B-W angle over layers that have B (NaN if none) */
    int wm_fallbacks;            /* asym_net_wm_fallbacks after the epoch (orthogonal mirror noise left plain) */
} AsymEpochStats;

typedef struct AsymTrainHooks {
    void *user;
    /* Called once the data and network are ready; may be NULL. */
    void (*on_start)(void *user, int n_train, int n_val, int n_test, size_t n_weights);
    /* Called after every batch (progress display); may be NULL. */
    void (*on_batch)(void *user, int epoch, int epochs, int batch, int batches, float loss, double images_per_s, double eta_s);
    /* Called after every epoch; may be NULL. */
    void (*on_epoch)(void *user, const AsymEpochStats *st);
    /* Polled after every step and epoch; may be NULL. Nonzero stops the run
     * there (a signal handler's flag): with an out_dir, a checkpoint of that
     * step is written first. */
    int (*stop)(void *user);
} AsymTrainHooks;

typedef struct AsymSummary {
    double best_test_err, final_test_err; /* NaN when no epoch finished (summary.json: null) */
    int best_epoch, epochs;              /* best_epoch: lowest test error, 1-based */
    double best_val_err, test_err_at_best_val; /* with a validation split; else -1 */
    int best_val_epoch;
    int diverged;                        /* a NaN or Inf loss or parameter stopped the run */
    double final_mean_angle;             /* mean B-W angle after the last epoch (NaN if no layer has B) */
    double seconds, images_per_s;
    uint64_t seed;
    int interrupted;                     /* hooks->stop ended the run early */
    int stop_epoch, stop_step;           /* where a diverged or interrupted run stopped, 1-based (step 0: after the epoch) */
    char diverged_in[48];                /* "loss", "test loss" or the first tensor holding NaN or Inf ("3.W") */
} AsymSummary;

/* Loads the data, builds the net, trains, and writes out_dir/version.json
 * (asym_version_json), out_dir/log.jsonl, out_dir/summary.json,
 * out_dir/model.bin (best test or validation epoch is recorded; the final
 * weights are saved); a write that fails fails the run, and the message
 * names the file. out_dir may be NULL. With an
 * out_dir, out_dir/checkpoint.bin is written after every epoch (and where
 * hooks->stop stops the run), holding out_dir/config.yaml when there is
 * one. A NaN or Inf in the loss or in any parameter, buffer or feedback
 * matrix stops the run (sum->diverged); the last checkpoint is kept.
 * Under mpirun every rank calls it with the same arguments and rank 0
 * alone writes out_dir (see "data-parallel training" below). */
int asym_train(const AsymExperiment *ex, const char *out_dir, const AsymTrainHooks *hooks, AsymSummary *sum);
/* Continues the run in out_dir from out_dir/checkpoint.bin: with the same
 * seed and threads the results are bitwise those of an uninterrupted run
 * (log.jsonl is cut back to the checkpoint's epoch and continued). A
 * checkpoint of another architecture, rule, optimizer or data set is
 * refused with a message naming the difference. A run made by another
 * build or thread count keeps that one's version.json object under
 * "resumed_from" in its new one (null for a run older than version.json). */
int asym_train_resume(const AsymExperiment *ex, const char *out_dir, const AsymTrainHooks *hooks, AsymSummary *sum);

/* ---- data-parallel training on MPI (docs/MPI.md) ----
 * Under `mpirun -np P`, asym_train trains one model on P processes: each
 * takes its contiguous share of every global batch, the gradients are
 * summed over ranks, and every rank applies the same update. Rank 0 alone
 * writes the run folder. Without the MPI build (make MPI=1) or outside
 * mpirun, these calls describe one process of rank 0. */
/* Starts MPI when the process was started by an MPI launcher. */
int asym_dist_init(int *argc, char ***argv);
void asym_dist_finalize(void);
int asym_dist_rank(void);
int asym_dist_size(void);
/* on != 0: later training calls run on this process alone (a sweep's
 * independent runs, one per rank). */
void asym_dist_solo(int on);
/* Collective: rc is this rank's status; when any rank failed, every rank
 * returns ASYM_ERR with the message of the lowest failing rank. */
int asym_dist_agree(int rc);
void asym_dist_barrier(void);

/* Loads the experiment's data sets (train with optional validation split,
 * test), applying padding and normalization. */
int asym_experiment_data(const AsymExperiment *ex, AsymDataset *train, AsymDataset *val, AsymDataset *test);
/* Mean loss and error of net on d in evaluation mode. */
int asym_evaluate(AsymNet *net, const AsymDataset *d, int batch, double *loss, double *err);

/* ---- checkpoints (docs/CHECKPOINT.md) ----
 * Named, typed arrays with a magic number, a format version, the file's
 * length and a CRC-32; written to a temporary file, flushed and renamed, so
 * that a crash leaves the previous checkpoint whole. */
#define ASYM_CHECKPOINT_VERSION 1
typedef struct AsymCheckpoint AsymCheckpoint;

/* Writes net (every parameter, buffer and feedback matrix, each weight
 * layer's rule and feedback state, every generator) and opt (its buffers
 * and step count; may be NULL) to path. */
int asym_checkpoint_save(const char *path, AsymNet *net, const AsymOptim *opt);
/* Restores them into a network (and optimizer) built from the same
 * description. A checkpoint of another architecture, rule or optimizer is
 * refused with a message naming the first difference ("layer 3 conv weight
 * has shape 16x6x5x5 in the checkpoint, 32x6x5x5 in the config"); a
 * refused load changes nothing. */
int asym_checkpoint_load(const char *path, AsymNet *net, AsymOptim *opt);
/* The same checks against the network and optimizer ex describes, loading
 * nothing (before a resume rewrites a run's config.yaml). */
int asym_checkpoint_check(const char *path, const AsymExperiment *ex);
/* Reads a whole checkpoint and checks its length, checksum, version and
 * every record header against the bytes present. */
int asym_checkpoint_open(AsymCheckpoint **ck, const char *path);
void asym_checkpoint_close(AsymCheckpoint *ck);
/* A text record ("config", "log", "arch", "asymbp"), NUL-terminated and
 * owned by ck, or NULL. */
const char *asym_checkpoint_text(const AsymCheckpoint *ck, const char *name);
/* An integer scalar record ("epoch", "batch", "seed", "optim/t", ...). */
int asym_checkpoint_int(const AsymCheckpoint *ck, const char *name, int64_t *v);
/* Every record into dir: arrays as NumPy .npy files, texts as files, and
 * dir/manifest.json naming each with its dtype and shape. */
int asym_checkpoint_export(const AsymCheckpoint *ck, const char *dir);

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
