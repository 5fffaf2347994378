/* bench.c: training throughput of asymbp against the PyTorch peer
 * (shared/peer/peer_torch.py) on the networks of docs/PERFORMANCE.md, and
 * OpenBLAS's sgemm on the same machine in the same run.
 *
 *   bench [--nets mlp,lenet,cnn,resnet20,resnet18,resnet50] [--rules bp,fa,...: default all]
 *         [--threads T] [--steps S] [--rounds R] [--repeat K] [--wm-batch N] [--batch B]
 *         [--peer PATH] [--peer-imagenet PATH] [--python PY] [--no-peer] [--load K]
 *   bench --one NET RULE [--threads T] [--steps S] [--rounds R] [--warmup W]
 *         [--wm-batch N] [--batch B]
 *   bench --sgemm [--threads T]
 *   bench --feedback NET RULE [--threads T] [--rounds R]
 *
 * Without --one or --sgemm it is the driver: every measurement runs in a
 * child process of its own (this program again, or the peer), so each
 * peak resident set (getrusage ru_maxrss) belongs to one run. A run trains
 * W warm-up steps, then R rounds of S steps; images/s is the fastest round
 * (the peer reports its fastest epoch the same way: one warm-up epoch, then
 * R epochs of S batches). The driver repeats every run K times (default 3),
 * interleaved (K passes over the rules, each starting one rule further on,
 * asymbp and the peer taking turns to go first), and keeps the fastest; on a
 * shared machine two runs of the same thing can differ by 15% or more. wm
 * (Akrout's scheme, uniform noise) takes one mirror step per batch with N
 * noise inputs (default, and 0: the training batch size, the library's).
 * Effective GFLOP/s counts 3x the forward FLOPs of
 * the weight layers (forward, weight gradient, input gradient), whatever
 * the rule. The driver prints one table per network, the ratios to the peer
 * and to bp, and PASS/FAIL against the targets of docs/PERFORMANCE.md.
 *
 * The ImageNet networks (resnet18, resnet50: 224x224, 1000 classes, not in
 * the default --nets) train on random images held in memory, S batches of
 * them, against bench/peer_imagenet.py (torchvision's models, bp only: the
 * other rules are compared with its bp); --batch sets the batch size.
 * --load K runs everything beside K busy processes (a shared machine).
 * `make bench` also runs the loader benchmark (loader.c). */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cblas.h>
#ifdef ASYM_DNNL
#include <dnnl.h>
#endif

#include "asymbp.h"
#include "train/train.h"
#include "machine.h"

#define FMNIST "/usr/share/datasets/fashion-mnist"

typedef struct NetInfo {
    const char *name;   /* our name, also the peer's --model */
    int batch, steps;   /* batch size; steps per timed round */
    double target;      /* images/s at least this many times the peer's */
    int scaling;        /* bp on 1 thread is reported beside T threads on this network */
    int imagenet;       /* 224x224, 1000 classes, random data; the ImageNet peer */
} NetInfo;

static const NetInfo NETS[] = {
    {"mlp", 100, 40, 1.5, 1, 0},
    {"lenet", 64, 80, 5.0, 1, 0},
    {"cnn", 100, 12, 2.0, 1, 0},
    {"resnet20", 128, 6, 2.0, 1, 0},
    {"resnet18", 32, 2, 1.5, 1, 1},
    {"resnet50", 32, 1, 1.5, 1, 1},
};
#define N_NETS (int)(sizeof NETS / sizeof NETS[0])

/* Every rule, with the largest cost over bp it may have (the targets of
 * docs/PERFORMANCE.md), whether the peer implements it (if not, its row is
 * compared with the peer's bp). The second wave's
 * limits: urfb updates B as kp does; sa, aa, ia add a local loss on B with
 * a pass of their own, as wm's mirror step does; the direct rules replace
 * the backward pass as dfa does; pfa at its default expansion 10, under the
 * benchmark's SGD, steps B itself (pfa.c): B's gradient F F^T dW costs one
 * GEMM of out x out x rest per layer, or on a fully connected layer wider
 * than the batch (the MLP's) (dy F F^T)^T x, two GEMMs of dW's size or
 * less. The learning rate is 0.01 (SGD, momentum 0.9, weight decay 1e-4)
 * but for the rules that diverge at it within the benchmark's steps (ia
 * and drtp on LeNet-5, ia on the conv net, aa and ia on ResNet-20; the
 * divergence check would stop the run, and a diverged run would time
 * arithmetic on NaN): there the rate the BioTorch protocol selected for
 * them on LeNet-5, or for aa, which diverged there too, the next rate down
 * (docs/RESULTS.md). */
typedef struct RuleInfo {
    const char *name;
    double limit;
    int peer;
    float lr; /* 0: 0.01 */
} RuleInfo;
static const RuleInfo RULE_INFO[] = {
    {"bp", 0, 1, 0},      {"fa", 0.05, 1, 0},      {"dfa", 0.00, 0, 0},  {"usf", 0.05, 1, 0},   {"brsf", 0.10, 1, 0}, {"frsf", 0.10, 1, 0},
    {"kp", 0.05, 1, 0},   {"wm", 0.30, 0, 0},      {"urfb", 0.05, 0, 0}, {"sa", 0.30, 0, 0},    {"aa", 0.30, 0, 1e-4f}, {"ia", 0.30, 0, 1e-4f},
    {"sdfa", 0.10, 0, 0}, {"drtp", 0.10, 0, 1e-5f}, {"dkp", 0.10, 0, 0},  {"pfa", 1.00, 0, 0},
};
#define N_RULES (int)(sizeof RULE_INFO / sizeof RULE_INFO[0])
#define RULE_NAME(r) RULE_INFO[r].name
static int peer_has(int r, const NetInfo *ni) { return r == 0 || (RULE_INFO[r].peer && !ni->imagenet); }

static float rule_lr(const char *rule) {
    for (int r = 0; r < N_RULES; r++)
        if (!strcmp(RULE_NAME(r), rule) && RULE_INFO[r].lr > 0) return RULE_INFO[r].lr;
    return 0.01f;
}

static const NetInfo *net_info(const char *name) {
    for (int i = 0; i < N_NETS; i++)
        if (!strcmp(NETS[i].name, name)) return &NETS[i];
    return NULL;
}

static double peak_rss_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;
}

/* CPU seconds of the whole process (all threads). */
static double cpu_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static void set_threads(int t) {
    if (t <= 0) return;
    omp_set_num_threads(t);
    openblas_set_num_threads(t);
}

/* ---- the networks, as the peer defines them ---- */

static AsymLayerSpec mk(AsymLayerKind kind, int out, int k, int stride, int pad) {
    AsymLayerSpec l = {.kind = kind, .out = out, .k = k, .stride = stride, .pad = pad, .bias = 1};
    return l;
}

/* The peer's `cnn`: 32c5-BN-ReLU-pool, 64c5-BN-ReLU-pool, fc1024-BN-ReLU, fc10 on 28x28. */
static int arch_cnn(AsymNetSpec *s) {
    static const AsymLayerKind kinds[] = {ASYM_CONV, ASYM_BATCHNORM, ASYM_RELU, ASYM_MAXPOOL, ASYM_CONV, ASYM_BATCHNORM, ASYM_RELU, ASYM_MAXPOOL,
                                          ASYM_FLATTEN, ASYM_FC, ASYM_BATCHNORM, ASYM_RELU, ASYM_FC};
    static const int outs[] = {32, 0, 0, 0, 64, 0, 0, 0, 0, 1024, 0, 0, 10};
    int n = (int)(sizeof kinds / sizeof kinds[0]);
    s->layers = calloc(n, sizeof(AsymLayerSpec));
    if (!s->layers) return ASYM_ERR;
    for (int i = 0; i < n; i++) {
        AsymLayerSpec l = mk(kinds[i], outs[i], 0, 0, 0);
        if (kinds[i] == ASYM_CONV) l.k = 5, l.stride = 1, l.pad = 2;
        if (kinds[i] == ASYM_MAXPOOL) l.k = 2, l.stride = 2;
        s->layers[i] = l;
    }
    s->n_layers = n;
    return ASYM_OK;
}

static int build_spec(const char *net, AsymNetSpec *s) {
    memset(s, 0, sizeof *s);
    s->classes = 10;
    s->init = ASYM_INIT_TORCH;
    s->in_c = 1, s->in_h = s->in_w = 28;
    if (!strcmp(net, "mlp")) {
        static const int hidden[2] = {1024, 1024};
        return asym_arch_mlp(s, hidden, 2, 1, ASYM_RELU);
    }
    if (!strcmp(net, "lenet")) {
        s->in_h = s->in_w = 32;
        return asym_arch_lenet(s);
    }
    if (!strcmp(net, "cnn")) return arch_cnn(s);
    if (!strcmp(net, "resnet20")) {
        s->in_c = 3, s->in_h = s->in_w = 32;
        return asym_arch_resnet_cifar(s, 20, ASYM_SHORTCUT_A);
    }
    if (!strcmp(net, "resnet18") || !strcmp(net, "resnet50")) {
        s->in_c = 3, s->in_h = s->in_w = 224, s->classes = 1000;
        return asym_arch_resnet_imagenet(s, atoi(net + 6));
    }
    fprintf(stderr, "bench: unknown network '%s' (mlp, lenet, cnn, resnet20, resnet18, resnet50)\n", net);
    return ASYM_ERR;
}

/* Multiply-adds of one forward pass through the weight layers of spec. */
static double forward_macs(const AsymNetSpec *s) {
    int c = s->in_c, h = s->in_h, w = s->in_w;
    double macs = 0;
    for (int i = 0; i < s->n_layers; i++) {
        const AsymLayerSpec *l = &s->layers[i];
        int st = l->stride ? l->stride : 1;
        switch (l->kind) {
        case ASYM_FC:
            macs += (double)c * h * w * l->out;
            c = l->out, h = w = 1;
            break;
        case ASYM_CONV:
            h = (h + 2 * l->pad - l->k) / st + 1, w = (w + 2 * l->pad - l->k) / st + 1;
            macs += (double)l->out * h * w * c * l->k * l->k;
            c = l->out;
            break;
        case ASYM_MAXPOOL:
        case ASYM_AVGPOOL:
            if (l->k == 0) h = w = 1;
            else st = l->stride ? l->stride : l->k, h = (h + 2 * l->pad - l->k) / st + 1, w = (w + 2 * l->pad - l->k) / st + 1;
            break;
        case ASYM_RESBLOCK: { /* basic: two 3x3 convolutions; bottleneck: 1x1, 3x3 (strided), 1x1 of width out / 4 */
            int h0 = h, w0 = w, mid = l->out / 4;
            h = (h - 1) / st + 1, w = (w - 1) / st + 1;
            if (l->bottleneck) macs += (double)h0 * w0 * c * mid + (double)h * w * mid * (9.0 * mid + l->out);
            else macs += (double)l->out * h * w * 9 * (c + l->out);
            if (l->shortcut == ASYM_SHORTCUT_B && (st != 1 || c != l->out)) macs += (double)h * w * c * l->out; /* 1x1 projection */
            c = l->out;
            break;
        }
        default: break;
        }
    }
    return macs;
}

/* ---- one measurement (a child process) ---- */

static int load_data(const NetInfo *ni, int n, AsymDataset *train, AsymDataset *test, int *real) {
    const char *net = ni->name;
    if (ni->imagenet) {
        /* as peer_imagenet.py: the timed batches' random images, no more (224x224 floats are 600 kB each) */
        *real = 0;
        memset(test, 0, sizeof *test);
        return asym_dataset_random(train, n, 3, 224, 224, 1000, 1);
    }
    if (!strcmp(net, "resnet20") || access(FMNIST "/train-images-idx3-ubyte.gz", R_OK)) {
        /* the peer's --data random: 10000 Gaussian 3x32x32 images (MNIST-shaped here when the data set is missing) */
        int rn = !strcmp(net, "resnet20");
        *real = 0;
        memset(test, 0, sizeof *test);
        return asym_dataset_random(train, 10000, rn ? 3 : 1, rn || !strcmp(net, "lenet") ? 32 : 28, rn || !strcmp(net, "lenet") ? 32 : 28, 10, 1);
    }
    /* as the peer: the whole training and test sets, normalized with Fashion-MNIST's mean and std */
    *real = 1;
    float mean = 0.2860f, std = 0.3530f;
    if (asym_dataset_load_idx(train, FMNIST, 1) || asym_dataset_load_idx(test, FMNIST, 0)) return ASYM_ERR;
    asym_dataset_normalize(train, &mean, &std);
    asym_dataset_normalize(test, &mean, &std);
    if (!strcmp(net, "lenet") && (asym_dataset_pad(train, 2) || asym_dataset_pad(test, 2))) return ASYM_ERR;
    return ASYM_OK;
}

static int run_one(const char *net_name, const char *rule, int threads, int steps, int rounds, int warmup, int wm_batch, int batch) {
    const NetInfo *ni = net_info(net_name);
    AsymNetSpec spec;
    if (!ni || build_spec(net_name, &spec)) return 2;
    spec.rule = asym_rule_parse(rule);
    if (wm_batch >= 0) {
        asym_feedback_defaults(&spec.fb);
        spec.fb.wm_batch = wm_batch;
        /* the pre-sweep is not timed: 10 mirror steps instead of 3000
         * (ten minutes of set-up per ResNet-20 run) */
        spec.fb.wm_presweep = 10;
    }
    if (spec.rule == ASYM_RULE_DEFAULT) {
        fprintf(stderr, "bench: unknown rule '%s'\n", rule);
        return 2;
    }
    if (steps <= 0) steps = ni->steps;
    set_threads(threads);
    AsymDataset train, test;
    int real;
    int B = batch > 0 ? batch : ni->batch;
    if (load_data(ni, steps * B, &train, &test, &real)) {
        fprintf(stderr, "bench: %s\n", asym_last_error());
        return 1;
    }
    size_t in = (size_t)train.c * train.h * train.w;
    int n = steps * B < train.n ? steps * B : train.n;
    AsymRng rng;
    asym_rng_seed(&rng, 1);
    AsymNet *net;
    AsymOptim *opt;
    AsymOptSpec os = {.kind = ASYM_SGD, .lr = rule_lr(rule), .momentum = 0.9f, .weight_decay = 1e-4f};
    /* SGD: pfa steps B itself, as under asymbp train */
    if (!spec.fb.init) asym_feedback_defaults(&spec.fb);
    spec.fb.linear_optimizer = 1;
    if (asym_net_create(&net, &spec, B, &rng) || asym_optim_create(&opt, net, &os)) {
        fprintf(stderr, "bench: %s\n", asym_last_error());
        return 1;
    }
    float *xb = malloc(sizeof(float) * B * in);
    int32_t *yb = malloc(sizeof(int32_t) * B);
    int *perm = malloc(sizeof(int) * n);
    if (!xb || !yb || !perm) return 1;
    for (int i = 0; i < n; i++) perm[i] = i;
    /* the training step of asym_train: gather a shuffled batch, zero the
     * gradients, forward, loss and backward, optimizer, feedback update,
     * the check for NaN and Inf */
    double best = 1e30, best_cpu = 1e30, loss_sum = 0;
    for (int r = -1; r < rounds; r++) {
        int todo = r < 0 ? warmup : steps;
        uint64_t s = (uint64_t)(r + 2) * 0x9E3779B97F4A7C15ull;
        for (int i = n - 1; i > 0; i--) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            int j = (int)(s % (uint64_t)(i + 1)), t = perm[i];
            perm[i] = perm[j], perm[j] = t;
        }
        double t0 = omp_get_wtime(), c0 = cpu_seconds();
        for (int b = 0; b < todo; b++) {
            int off = (b * B) % (n - B + 1);
            for (int i = 0; i < B; i++) {
                memcpy(xb + i * in, train.x + (size_t)perm[off + i] * in, sizeof(float) * in);
                yb[i] = train.y[perm[off + i]];
            }
            asym_net_zero_grad(net);
            asym_net_forward(net, xb, B, 1);
            loss_sum += asym_net_loss(net, yb, B, 1, NULL);
            asym_optim_step(opt, os.lr);
            asym_net_feedback_update(net);
            char what[128], name[64];
            if (guard_tensors(net, r > -1 || b > 0 ? opt : NULL, what, sizeof what, name, sizeof name)) { /* the first step reads every tensor */
                fprintf(stderr, "bench: %s %s diverged: %s\n", net_name, rule, what);
                return 1;
            }
        }
        double t = omp_get_wtime() - t0, c = cpu_seconds() - c0;
        if (r >= 0 && t < best) best = t;
        if (r >= 0 && c < best_cpu) best_cpu = c;
    }
    double ips = (double)steps * B / best;
    double gflops = 6.0 * forward_macs(&spec) * ips / 1e9;
    printf("{\"net\": \"%s\", \"rule\": \"%s\", \"threads\": %d, \"batch\": %d, \"steps\": %d, \"rounds\": %d, \"data\": \"%s\", "
           "\"ms_per_step\": %.3f, \"cpu_ms_per_step\": %.3f, \"images_per_s\": %.1f, \"gflops\": %.2f, \"peak_rss_mb\": %.1f, \"loss\": %.4f}\n",
           net_name, rule, threads > 0 ? threads : omp_get_max_threads(), B, steps, rounds, real ? "fmnist" : "random", 1e3 * best / steps, 1e3 * best_cpu / steps, ips, gflops,
           peak_rss_mb(), loss_sum / ((double)(rounds * steps + warmup)));
    free(xb);
    free(yb);
    free(perm);
    asym_optim_free(opt);
    asym_net_free(net);
    asym_netspec_free(&spec);
    asym_dataset_free(&train);
    asym_dataset_free(&test);
    return 0;
}

/* GFLOP/s of sgemm: C (M, N) = A (M, K) op B, best of a few repetitions;
 * OpenBLAS's (the library's GEMM), or with dnnl set oneDNN's dnnl_sgemm on
 * the same operands (a reference only: the library does not call it). */
static double sgemm_rate(const int (*shapes)[5], int n_shapes, int reps, int dnnl) {
    size_t big = 0;
    for (int i = 0; i < n_shapes; i++) {
        size_t a = (size_t)shapes[i][0] * shapes[i][2], b = (size_t)shapes[i][2] * shapes[i][1], c = (size_t)shapes[i][0] * shapes[i][1];
        if (a > big) big = a;
        if (b > big) big = b;
        if (c > big) big = c;
    }
    float *A = malloc(sizeof(float) * big), *B = malloc(sizeof(float) * big), *C = malloc(sizeof(float) * big);
    if (!A || !B || !C) return 0;
    for (size_t i = 0; i < big; i++) A[i] = (float)((i * 7919) % 1000) * 1e-3f - 0.5f, B[i] = A[(i * 31) % big], C[i] = 0;
    double best = 1e30, flops = 0;
    for (int i = 0; i < n_shapes; i++) flops += 2.0 * shapes[i][0] * shapes[i][1] * shapes[i][2];
    for (int r = 0; r < reps + 1; r++) {
        double t0 = omp_get_wtime();
        for (int i = 0; i < n_shapes; i++) {
            int M = shapes[i][0], N = shapes[i][1], K = shapes[i][2], ta = shapes[i][3], tb = shapes[i][4];
#ifdef ASYM_DNNL
            if (dnnl) {
                dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, 1.0f, A, ta ? M : K, B, tb ? K : N, 0.0f, C, N);
                continue;
            }
#endif
            cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, 1.0f, A, ta ? M : K, B, tb ? K : N, 0.0f, C, N);
        }
        double t = omp_get_wtime() - t0;
        if (r > 0 && t < best) best = t;
    }
    free(A);
    free(B);
    free(C);
    return flops / best / 1e9;
}

/* --feedback NET RULE: the feedback update after a step on its own, the
 * network built as --one builds it: ms per asym_net_feedback_update alone
 * (what a training step pays where the rule leaves B behind W until it is
 * read), and per update followed by bringing every B up to date (what it
 * pays when every B is read, as before). W does not move, so every sign
 * stays put: the passes themselves are the cost. Fastest of R rounds
 * of 100 updates, each kind in turn. */
static int run_feedback(const char *net_name, const char *rule, int threads, int rounds) {
    AsymNetSpec spec;
    if (!net_info(net_name) || build_spec(net_name, &spec)) return 2;
    spec.rule = asym_rule_parse(rule);
    if (spec.rule == ASYM_RULE_DEFAULT) {
        fprintf(stderr, "bench: unknown rule '%s'\n", rule);
        return 2;
    }
    set_threads(threads);
    AsymRng rng;
    asym_rng_seed(&rng, 1);
    AsymNet *net;
    if (asym_net_create(&net, &spec, net_info(net_name)->batch, &rng)) {
        fprintf(stderr, "bench: %s\n", asym_last_error());
        return 1;
    }
    double best[2] = {1e30, 1e30};
    for (int r = 0; r < rounds + 1; r++)
        for (int read = 0; read < 2; read++) {
            double t = asym_now();
            for (int k = 0; k < 100; k++) {
                asym_net_feedback_update(net);
                if (read) asym_net_feedback(net, 0); /* brings every B up to date */
            }
            t = (asym_now() - t) * 10.0; /* ms per update */
            if (r > 0 && t < best[read]) best[read] = t; /* round 0 warms up */
        }
    printf("{\"net\": \"%s\", \"rule\": \"%s\", \"threads\": %d, \"feedback\": %d, \"update_ms\": %.3f, \"update_read_ms\": %.3f}\n", net_name, rule,
           omp_get_max_threads(), asym_net_n_feedback(net), best[0], best[1]);
    asym_net_free(net);
    return 0;
}

static int run_sgemm(int threads) {
    set_threads(threads);
    static const int square[1][5] = {{2048, 2048, 2048, 0, 0}};
    /* one MLP training step's GEMMs at batch 100: forward y = x W^T, dW = dy^T x, dx = dy W */
    static const int mlp[8][5] = {
        {100, 1024, 784, 0, 1}, {1024, 784, 100, 1, 0},
        {100, 1024, 1024, 0, 1}, {1024, 1024, 100, 1, 0}, {100, 1024, 1024, 0, 0},
        {100, 10, 1024, 0, 1}, {10, 1024, 100, 1, 0}, {100, 1024, 10, 0, 0},
    };
    double sq = sgemm_rate(square, 1, 5, 0), ml = sgemm_rate(mlp, 8, 40, 0), dn = NAN;
#ifdef ASYM_DNNL
    dn = sgemm_rate(mlp, 8, 40, 1);
#endif
    printf("{\"threads\": %d, \"sgemm_2048_gflops\": %.1f, \"sgemm_mlp_gflops\": %.1f, \"dnnl_sgemm_mlp_gflops\": %.1f, \"openblas\": \"%s\"}\n",
           threads > 0 ? threads : omp_get_max_threads(), sq, ml, isfinite(dn) ? dn : -1.0, openblas_get_corename());
    return 0;
}

/* ---- the driver ---- */

typedef struct Result {
    int ok;
    double ips, gflops, rss;
} Result;

/* Keeps the fastest of repeated runs in best and the slowest rate in lo. */
static void keep_best(Result *best, double *lo, Result r) {
    if (!r.ok) return;
    if (!best->ok || r.ips > best->ips) *best = r;
    if (r.ips < *lo) *lo = r.ips;
}

/* How much slower the slowest of the repeated runs was, in percent. */
static double spread(const Result *best, double lo) { return 100.0 * (1.0 - lo / best->ips); }

/* The number after "key": in a JSON line, or NAN. */
static double json_get(const char *line, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(line, pat);
    return p ? strtod(p + strlen(pat), NULL) : NAN;
}

/* Runs cmd and keeps the last stdout line that holds key. */
static int run_child(const char *cmd, const char *key, char *line, size_t cap) {
    FILE *p = popen(cmd, "r");
    char buf[4096];
    int found = 0;
    if (!p) return 0;
    while (fgets(buf, sizeof buf, p))
        if (strstr(buf, key)) snprintf(line, cap, "%s", buf), found = 1;
    int rc = pclose(p);
    return found && rc == 0;
}

/* asymbp's runs wait as the command's do (cli/main.c): OpenMP threads
 * sleep when idle unless the environment chose a policy; the peer runs in
 * the environment as it is. */
static const char *our_env(void) {
    return getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT") ? "" : "OMP_WAIT_POLICY=passive ";
}

static Result ours(const char *self, const char *net, const char *rule, int threads, int steps, int rounds, int wm_batch, int batch) {
    char cmd[2048], line[4096];
    Result r = {0};
    /* one warm-up step on the ImageNet networks (seconds each), three on the others */
    snprintf(cmd, sizeof cmd, "%s'%s' --one %s %s --threads %d --steps %d --rounds %d --wm-batch %d --batch %d --warmup %d", our_env(), self, net, rule, threads,
             steps, rounds, wm_batch, batch, net_info(net)->imagenet ? 1 : 3);
    if (run_child(cmd, "images_per_s", line, sizeof line)) r.ok = 1, r.ips = json_get(line, "images_per_s"), r.gflops = json_get(line, "gflops"), r.rss = json_get(line, "peak_rss_mb");
    return r;
}

static Result peer(const char *python, const char *path, const NetInfo *ni, const char *rule, int threads, int steps, int rounds, int batch) {
    char cmd[4096], line[4096];
    Result r = {0};
    int random = !strcmp(ni->name, "resnet20") || ni->imagenet;
    snprintf(cmd, sizeof cmd, "'%s' '%s' --model %s --rule %s --data %s --batch %d --limit %d --epochs %d --threads %d", python, path, ni->name, rule,
             random ? "random" : "fmnist", batch, steps * batch, rounds + 1, threads);
    if (run_child(cmd, "images_per_s", line, sizeof line)) r.ok = 1, r.ips = json_get(line, "images_per_s"), r.rss = json_get(line, "peak_rss_mb");
    return r;
}


/* --load K: the load generator. K processes that keep one core busy each
 * (a floating-point loop, no memory traffic), started before the first run
 * and killed after the last, so that asymbp and the peer both run on a
 * machine whose cores other work wants (docs/PERFORMANCE.md, "A shared
 * machine"). */
#define MAX_LOAD 64
static pid_t load_pid[MAX_LOAD];
static int n_load;

static void load_stop(void) {
    for (int i = 0; i < n_load; i++) kill(load_pid[i], SIGKILL);
    for (int i = 0; i < n_load; i++) waitpid(load_pid[i], NULL, 0);
    n_load = 0;
}

static int load_start(int k) {
    fflush(stdout), fflush(stderr);
    for (; n_load < k && n_load < MAX_LOAD; n_load++) {
        pid_t pid = fork();
        if (pid < 0) return -1;
        if (pid == 0) {
            fclose(stdout); /* a reader of the driver's output sees its end when the driver ends */
            volatile double x = 1.0;
            for (;;) x = x * 1.0000001 + 1e-9;
        }
        load_pid[n_load] = pid;
    }
    atexit(load_stop);
    return 0;
}

static int in_list(const char *list, const char *name) {
    size_t n = strlen(name);
    for (const char *p = list; (p = strstr(p, name)); p += n)
        if ((p == list || p[-1] == ',') && (p[n] == ',' || p[n] == 0)) return 1;
    return 0;
}

static int pass_fail(int *fails, int ok, const char *what) {
    printf("  %s  %s\n", ok ? "PASS" : "FAIL", what);
    if (!ok) (*fails)++;
    return ok;
}

int main(int argc, char **argv) {
    const char *one_net = NULL, *one_rule = NULL, *fb_net = NULL, *fb_rule = NULL, *nets = "mlp,lenet,cnn,resnet20", *rules = NULL;
    const char *peer_path = "../shared/peer/peer_torch.py", *peer_imagenet = "bench/peer_imagenet.py", *python = "/usr/bin/python3";
    int threads = 0, steps = 0, rounds = 3, warmup = 3, sgemm = 0, no_peer = 0, repeat = 3, wm_batch = -1, batch = 0, load = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "--one") && i + 2 < argc) one_net = argv[++i], one_rule = argv[++i];
        else if (!strcmp(a, "--sgemm")) sgemm = 1;
        else if (!strcmp(a, "--feedback") && i + 2 < argc) fb_net = argv[++i], fb_rule = argv[++i];
        else if (!strcmp(a, "--no-peer")) no_peer = 1;
        else if (!strcmp(a, "--nets") && more) nets = argv[++i];
        else if (!strcmp(a, "--rules") && more) rules = argv[++i];
        else if (!strcmp(a, "--peer") && more) peer_path = argv[++i];
        else if (!strcmp(a, "--peer-imagenet") && more) peer_imagenet = argv[++i];
        else if (!strcmp(a, "--batch") && more) batch = atoi(argv[++i]);
        else if (!strcmp(a, "--python") && more) python = argv[++i];
        else if (!strcmp(a, "--threads") && more) threads = atoi(argv[++i]);
        else if (!strcmp(a, "--steps") && more) steps = atoi(argv[++i]);
        else if (!strcmp(a, "--rounds") && more) rounds = atoi(argv[++i]);
        else if (!strcmp(a, "--warmup") && more) warmup = atoi(argv[++i]);
        else if (!strcmp(a, "--repeat") && more) repeat = atoi(argv[++i]);
        else if (!strcmp(a, "--wm-batch") && more) wm_batch = atoi(argv[++i]);
        else if (!strcmp(a, "--load") && more) load = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench [--nets LIST] [--rules LIST] [--threads T] [--steps S] [--rounds R] [--repeat K] [--wm-batch N] [--batch B]\n"
                            "             [--peer PATH] [--peer-imagenet PATH] [--python PY] [--no-peer] [--load K]\n"
                            "       bench --one NET RULE [--threads T] [--steps S] [--rounds R] [--warmup W] [--wm-batch N] [--batch B]\n"
                            "       bench --sgemm [--threads T]\n"
                            "       bench --feedback NET RULE [--threads T] [--rounds R]\n");
            return 2;
        }
    }
    if (rounds < 1) rounds = 1;
    if (repeat < 1) repeat = 1;
    char all[256] = "";
    for (int r = 0; r < N_RULES; r++) snprintf(all + strlen(all), sizeof all - strlen(all), "%s%s", r ? "," : "", RULE_NAME(r));
    if (!rules) rules = all;
    if (one_net) return run_one(one_net, one_rule, threads, steps, rounds, warmup, wm_batch, batch);
    if (sgemm) return run_sgemm(threads);
    if (fb_net) return run_feedback(fb_net, fb_rule, threads, rounds);

    char self[1024];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) return 1;
    self[len] = 0;
    if (threads <= 0) threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    char cmd[2048], line[4096];
    int have_peer = 0;
    if (!no_peer && access(peer_path, R_OK) == 0) {
        snprintf(cmd, sizeof cmd, "'%s' -c 'import torch; print(\"images_per_s\", torch.__version__)' 2>/dev/null", python);
        have_peer = run_child(cmd, "images_per_s", line, sizeof line);
    }
    printf("asymbp %s bench: %d threads, %d rounds of S steps after %d warm-up steps (1 on the ImageNet networks); fastest round of %d runs (spread: how much slower the slowest was; each verdict compares the fastest runs, then gives the range from the slowest runs to the fastest)\n",
           ASYM_VERSION, threads, rounds, warmup, repeat);
    printf("convolutions: %s\n", asym_conv_backend());
    printf("asymbp's OpenMP threads: %s\n", *our_env() ? "sleep when idle (OMP_WAIT_POLICY=passive, the command's default)" : "as the environment says (OMP_WAIT_POLICY or GOMP_SPINCOUNT)");
    describe_machine();
    if (have_peer) {
        line[strcspn(line, "\n")] = 0;
        printf("peer: %s %s (PyTorch %s)\n", python, peer_path, line + 13);
    }
    else printf("peer: not run (%s)\n", no_peer ? "--no-peer" : "python3-torch or the peer script is missing");

    snprintf(cmd, sizeof cmd, "'%s' --sgemm --threads %d", self, threads);
    double sg_sq = NAN, sg_mlp = NAN;
    if (run_child(cmd, "sgemm_mlp_gflops", line, sizeof line)) {
        sg_sq = json_get(line, "sgemm_2048_gflops"), sg_mlp = json_get(line, "sgemm_mlp_gflops");
        char *core = strstr(line, "\"openblas\": \"");
        printf("sgemm (OpenBLAS %.*s): %.1f GFLOP/s at 2048^3, %.1f GFLOP/s at the MLP's shapes (batch 100)\n", core ? (int)strcspn(core + 13, "\"") : 1,
               core ? core + 13 : "?", sg_sq, sg_mlp);
        double dn = json_get(line, "dnnl_sgemm_mlp_gflops");
        if (isfinite(dn) && dn > 0) printf("oneDNN's dnnl_sgemm at the MLP's shapes, for reference (the library's GEMM is OpenBLAS's): %.1f GFLOP/s\n", dn);
    }
    if (load > 0) {
        if (load > MAX_LOAD || load_start(load)) return fprintf(stderr, "bench: cannot start %d load processes\n", load), 1;
        printf("load: %d busy processes beside every run from here on (one floating-point loop each; sgemm above ran without)\n", load);
    }
    int fails = 0, tty = isatty(STDERR_FILENO);
    for (int ni = 0; ni < N_NETS; ni++) {
        const NetInfo *info = &NETS[ni];
        if (!in_list(nets, info->name)) continue;
        int B = batch > 0 ? batch : info->batch, S = steps > 0 ? steps : info->steps, wmb = wm_batch < 0 ? B : wm_batch;
        const char *their = info->imagenet ? peer_imagenet : peer_path;
        int peer_ok = have_peer && access(their, R_OK) == 0;
        Result us[N_RULES] = {{0}}, them[N_RULES] = {{0}}, one = {0};
        double us_lo[N_RULES], them_lo[N_RULES];
        int run[N_RULES], scaling = info->scaling && threads >= 2 && in_list(rules, "bp");
        for (int r = 0; r < N_RULES; r++) {
            us_lo[r] = them_lo[r] = INFINITY;
            run[r] = in_list(rules, RULE_NAME(r));
        }
        printf("\n%s, batch %d, %d steps per round", info->name, B, S);
        if (in_list(rules, "wm")) printf(", wm: %d noise inputs per mirror step%s", wmb, wmb ? "" : " (the library's default)");
        printf("\n");
        fflush(stdout);
        /* K passes over the rules, each starting one rule further on and
         * swapping the order of asymbp and the peer, so that a slow spell of
         * the machine does not fall on the same run every time */
        for (int k = 0; k < repeat; k++) {
            if (tty) fprintf(stderr, "\r  pass %d/%d ...", k + 1, repeat);
            for (int i = 0; i < N_RULES; i++) {
                int r = (i + k) % N_RULES;
                if (!run[r]) continue;
                for (int side = 0; side < 2; side++) {
                    if ((side ^ (k & 1)) == 0) {
                        Result u = ours(self, info->name, RULE_NAME(r), threads, S, rounds, wmb, B);
                        keep_best(&us[r], &us_lo[r], u);
                    } else if (peer_ok && peer_has(r, info)) {
                        Result t = peer(python, their, info, RULE_NAME(r), threads, S, rounds, B);
                        keep_best(&them[r], &them_lo[r], t);
                    }
                }
            }
            if (scaling) {
                double lo = INFINITY;
                keep_best(&one, &lo, ours(self, info->name, "bp", 1, S, rounds, wmb, B));
            }
        }
        if (tty) fprintf(stderr, "\r%*s\r", 24, "");
        printf("  %-5s %10s %6s %9s %8s | %10s %6s %8s | %7s %8s\n", "rule", "images/s", "spread", "GFLOP/s", "peak MB", "peer im/s", "spread", "peer MB", "x peer",
               "over bp");
        for (int r = 0; r < N_RULES; r++) {
            if (!in_list(rules, RULE_NAME(r))) continue;
            printf("  %-5s ", RULE_NAME(r));
            if (us[r].ok) printf("%10.1f %5.1f%% %9.2f %8.1f | ", us[r].ips, spread(&us[r], us_lo[r]), us[r].gflops, us[r].rss);
            else printf("%10s %6s %9s %8s | ", "failed", "", "", "");
            if (them[r].ok) printf("%10.1f %5.1f%% %8.1f | %7.2f ", them[r].ips, spread(&them[r], them_lo[r]), them[r].rss, us[r].ok ? us[r].ips / them[r].ips : NAN);
            else printf("%10s %6s %8s | %7s ", "-", "", "-", "-");
            if (r > 0 && us[0].ok && us[r].ok) printf("%+7.1f%%", 100.0 * (us[0].ips / us[r].ips - 1.0));
            printf("\n");
        }
        if (one.ok) printf("  bp on 1 thread: %.1f images/s (x%.2f from 1 to %d threads)\n", one.ips, us[0].ips / one.ips, threads);
        fflush(stdout);
        /* the targets */
        char what[256];
        for (int r = 0; r < N_RULES; r++) {
            if (!us[r].ok || !them[r].ok) continue;
            snprintf(what, sizeof what, "%s %s: %.2fx the peer (target %.1fx; %.2fx to %.2fx over the runs)", info->name, RULE_NAME(r), us[r].ips / them[r].ips,
                     info->target, us_lo[r] / them[r].ips, us[r].ips / them_lo[r]);
            pass_fail(&fails, us[r].ips >= info->target * them[r].ips, what);
        }
        for (int r = 0; r < N_RULES; r++) {
            if (!us[r].ok) continue;
            const Result *ref = them[r].ok ? &them[r] : them[0].ok ? &them[0] : NULL;
            if (!ref) continue;
            snprintf(what, sizeof what, "%s %s: peak memory %.0f MB, peer%s %.0f MB", info->name, RULE_NAME(r), us[r].rss, them[r].ok ? "" : " (bp)", ref->rss);
            pass_fail(&fails, us[r].rss <= ref->rss, what);
        }
        for (int r = 1; r < N_RULES; r++) {
            if (!us[r].ok || !us[0].ok) continue;
            double over = us[0].ips / us[r].ips - 1.0;
            snprintf(what, sizeof what, "%s %s: %+.1f%% over bp (at most %.0f%%; %+.0f%% to %+.0f%% over the runs)", info->name, RULE_NAME(r), 100 * over,
                     100 * RULE_INFO[r].limit, 100 * (us_lo[0] / us[r].ips - 1.0), 100 * (us[0].ips / us_lo[r] - 1.0));
            pass_fail(&fails, over <= RULE_INFO[r].limit, what);
        }
        if (!strcmp(info->name, "mlp") && us[0].ok && isfinite(sg_mlp) && !load) { /* sgemm ran without the load */
            snprintf(what, sizeof what, "mlp bp: %.1f effective GFLOP/s = %.0f%% of sgemm at its shapes (target 80%%)", us[0].gflops, 100 * us[0].gflops / sg_mlp);
            pass_fail(&fails, us[0].gflops >= 0.8 * sg_mlp, what);
        }
    }
    printf("\n%d target%s missed\n", fails, fails == 1 ? "" : "s");
    return 0;
}
