/* test_net.c: networks as a whole: saving and loading weights (bitwise
 * round trip; refusal of a bad magic number, truncated or corrupted files
 * and other architectures, with the weights left alone), determinism from
 * the seed, the errors of asym_net_create and the named architectures,
 * the statistics of every initialization scheme, and the memory plan. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "asymbp.h"
#include "test.h"
#include "base/base.h"
#include "net/net.h"

#define HAS(s) (strstr(asym_last_error(), (s)) != NULL)
#define NL(a) ((int)(sizeof(a) / sizeof((a)[0])))

static int make_net(AsymNet **net, AsymLayerSpec *L, int n, int c, int h, int w, int classes, AsymInit init, int zero_bias, int max_batch, uint64_t seed) {
    AsymNetSpec s = {.in_c = c, .in_h = h, .in_w = w, .classes = classes, .layers = L, .n_layers = n, .init = init, .zero_bias = zero_bias};
    AsymRng rng;
    asym_rng_seed(&rng, seed);
    return asym_net_create(net, &s, max_batch, &rng);
}

/* conv, batch norm (buffers), relu, pooling, dropout, fc */
static AsymLayerSpec SMALL[] = {
    {.kind = ASYM_CONV, .out = 4, .k = 3, .pad = 1, .bias = 1}, {.kind = ASYM_BATCHNORM}, {.kind = ASYM_RELU}, {.kind = ASYM_MAXPOOL, .k = 2},
    {.kind = ASYM_FLATTEN}, {.kind = ASYM_DROPOUT, .p = 0.25f}, {.kind = ASYM_FC, .out = 3, .bias = 1},
};

static int small_net(AsymNet **net, uint64_t seed) { return make_net(net, SMALL, NL(SMALL), 2, 6, 6, 3, ASYM_INIT_TORCH, 0, 4, seed); }

/* All parameter and buffer values, concatenated (malloc'd). */
static float *snapshot(AsymNet *net, size_t *n) {
    size_t total = 0;
    for (int i = 0; i < asym_net_n_params(net); i++) total += asym_net_param(net, i)->n;
    for (int i = 0; i < asym_net_n_buffers(net); i++) total += asym_net_buffer(net, i)->n;
    float *v = malloc(sizeof(float) * (total ? total : 1)), *p = v;
    for (int i = 0; i < asym_net_n_params(net); i++) {
        AsymParam *q = asym_net_param(net, i);
        memcpy(p, q->w, sizeof(float) * q->n);
        p += q->n;
    }
    for (int i = 0; i < asym_net_n_buffers(net); i++) {
        AsymParam *q = asym_net_buffer(net, i);
        memcpy(p, q->w, sizeof(float) * q->n);
        p += q->n;
    }
    *n = total;
    return v;
}

static int same_state(AsymNet *a, AsymNet *b) {
    size_t na, nb;
    float *sa = snapshot(a, &na), *sb = snapshot(b, &nb);
    int same = na == nb && !memcmp(sa, sb, sizeof(float) * na);
    free(sa);
    free(sb);
    return same;
}

static void random_batch(float *x, int32_t *y, int N, size_t in, int classes, uint64_t seed) {
    AsymRng r;
    rng_seed(&r, seed);
    for (size_t i = 0; i < N * in; i++) x[i] = (float)(4.0 * rng_uniform(&r) - 2.0);
    for (int n = 0; n < N; n++) y[n] = (int32_t)(n % classes);
}

/* A few SGD steps in training mode; returns the last loss. */
static float train_steps(AsymNet *net, int steps, uint64_t data_seed) {
    AsymOptSpec o = {.kind = ASYM_SGD, .momentum = 0.9f, .weight_decay = 1e-3f};
    AsymOptim *opt;
    if (asym_optim_create(&opt, net, &o)) return NAN;
    float x[4 * 72];
    int32_t y[4];
    float loss = NAN;
    for (int s = 0; s < steps; s++) {
        random_batch(x, y, 4, 72, 3, data_seed + s);
        asym_net_forward(net, x, 4, 1);
        asym_net_zero_grad(net);
        loss = asym_net_loss(net, y, 4, 1, NULL);
        asym_optim_step(opt, 0.05f);
    }
    asym_optim_free(opt);
    return loss;
}

static long file_size(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}

static unsigned char *read_all(const char *path, long *n) {
    *n = file_size(path);
    if (*n < 0) return NULL;
    unsigned char *b = malloc(*n ? *n : 1);
    FILE *f = fopen(path, "rb");
    if (!f || fread(b, 1, *n, f) != (size_t)*n) {
        if (f) fclose(f);
        free(b);
        return NULL;
    }
    fclose(f);
    return b;
}

static int write_all(const char *path, const unsigned char *b, long n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int ok = fwrite(b, 1, n, f) == (size_t)n;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* ---- save and load ---- */

TEST(net_save_load_roundtrip) {
    char path[600], path2[600];
    snprintf(path, sizeof path, "%s/net_rt.bin", test_tmpdir());
    snprintf(path2, sizeof path2, "%s/net_rt2.bin", test_tmpdir());
    AsymNet *a, *b;
    CHECK_OK(small_net(&a, 1));
    CHECK_OK(small_net(&b, 2));
    CHECK(isfinite(train_steps(a, 2, 100))); /* running statistics away from (0, 1) */
    CHECK(!same_state(a, b));
    CHECK_OK(asym_net_save(a, path));
    CHECK_OK(asym_net_load(b, path));
    CHECK_MSG(same_state(a, b), "loaded parameters or buffers differ from the saved ones");
    /* the same outputs in evaluation mode (running statistics included) */
    float x[4 * 72];
    int32_t y[4];
    random_batch(x, y, 4, 72, 3, 7);
    float ya[12];
    memcpy(ya, asym_net_forward(a, x, 4, 0), sizeof ya);
    CHECK(!memcmp(ya, asym_net_forward(b, x, 4, 0), sizeof ya));
    /* saving the loaded net writes the same bytes */
    CHECK_OK(asym_net_save(b, path2));
    long n1, n2;
    unsigned char *f1 = read_all(path, &n1), *f2 = read_all(path2, &n2);
    int same = f1 && f2 && n1 == n2 && !memcmp(f1, f2, n1);
    free(f1), free(f2);
    asym_net_free(a);
    asym_net_free(b);
    CHECK_MSG(same, "re-saving a loaded network gives another file");
    /* no temporary file is left behind */
    char tmp[700];
    snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int)getpid());
    CHECK(file_size(tmp) < 0);
}

TEST(net_save_unwritable) {
    AsymNet *a;
    CHECK_OK(small_net(&a, 1));
    char path[600];
    snprintf(path, sizeof path, "%s/no/such/dir/x.bin", test_tmpdir());
    int rc = asym_net_save(a, path);
    asym_net_free(a);
    CHECK(rc == ASYM_ERR && HAS("no/such/dir"));
}

/* Loads a damaged copy of a saved file into b: it must fail with a message
 * containing want and leave b's parameters and buffers as they were. */
static char lmsg[600];
static int refuse(AsymNet *b, const char *path, const unsigned char *bytes, long n, const char *want) {
    if (write_all(path, bytes, n)) {
        snprintf(lmsg, sizeof lmsg, "cannot write %s", path);
        return 1;
    }
    size_t n0;
    float *before = snapshot(b, &n0);
    int rc = asym_net_load(b, path);
    size_t n1;
    float *after = snapshot(b, &n1);
    int same = n0 == n1 && !memcmp(before, after, sizeof(float) * n0);
    free(before);
    free(after);
    if (rc != ASYM_ERR) {
        snprintf(lmsg, sizeof lmsg, "load succeeded");
        return 1;
    }
    if (want && !HAS(want)) {
        snprintf(lmsg, sizeof lmsg, "message \"%s\" lacks \"%s\"", asym_last_error(), want);
        return 1;
    }
    if (!HAS(path)) {
        snprintf(lmsg, sizeof lmsg, "message \"%s\" does not name the file", asym_last_error());
        return 1;
    }
    if (!same) {
        snprintf(lmsg, sizeof lmsg, "a refused load changed the weights (%s)", asym_last_error());
        return 1;
    }
    return 0;
}

TEST(net_load_refuses_damage) {
    char good[600], bad[600];
    snprintf(good, sizeof good, "%s/net_good.bin", test_tmpdir());
    snprintf(bad, sizeof bad, "%s/net_bad.bin", test_tmpdir());
    AsymNet *a, *b;
    CHECK_OK(small_net(&a, 1));
    CHECK_OK(small_net(&b, 2));
    CHECK_OK(asym_net_save(a, good));
    long n;
    unsigned char *bytes = read_all(good, &n);
    CHECK(bytes && n > 100);
    unsigned char *copy = malloc(n + 16);
    int rc;
    /* wrong magic */
    memcpy(copy, bytes, n);
    copy[0] = 'X';
    rc = refuse(b, bad, copy, n, "magic");
    CHECK_MSG(rc == 0, "bad magic: %s", lmsg);
    memcpy(copy, bytes, n);
    copy[7] ^= 1; /* "ASYMNET0" */
    rc = refuse(b, bad, copy, n, "magic");
    CHECK_MSG(rc == 0, "bad magic version: %s", lmsg);
    /* truncated */
    const long cuts[] = {0, 1, 7, 8, 11, 12, 13, 16, 20, 30, n / 2, n - 5, n - 4, n - 1};
    for (int i = 0; i < NL(cuts); i++) {
        rc = refuse(b, bad, bytes, cuts[i], NULL);
        CHECK_MSG(rc == 0, "truncated to %ld of %ld bytes: %s", cuts[i], n, lmsg);
    }
    /* one flipped byte anywhere after the magic: count, name length, name, size, values, checksum */
    const long flips[] = {8, 12, 16, 17, 20, 40, n / 2, n - 5, n - 1};
    for (int i = 0; i < NL(flips); i++) {
        memcpy(copy, bytes, n);
        copy[flips[i]] ^= 0x10;
        rc = refuse(b, bad, copy, n, "checksum");
        CHECK_MSG(rc == 0, "byte %ld of %ld flipped: %s", flips[i], n, lmsg);
    }
    /* trailing garbage */
    memcpy(copy, bytes, n);
    memset(copy + n, 0, 16);
    rc = refuse(b, bad, copy, n + 16, NULL);
    CHECK_MSG(rc == 0, "16 bytes appended: %s", lmsg);
    /* a missing file */
    snprintf(bad, sizeof bad, "%s/does_not_exist.bin", test_tmpdir());
    CHECK(asym_net_load(b, bad) == ASYM_ERR && HAS("does_not_exist.bin"));
    free(bytes);
    free(copy);
    /* the intact file still loads */
    CHECK_OK(asym_net_load(b, good));
    CHECK(same_state(a, b));
    asym_net_free(a);
    asym_net_free(b);
}

TEST(net_load_other_architecture) {
    char path[600];
    snprintf(path, sizeof path, "%s/net_arch.bin", test_tmpdir());
    AsymLayerSpec La[] = {{.kind = ASYM_FC, .out = 6, .bias = 1}, {.kind = ASYM_TANH}, {.kind = ASYM_FC, .out = 3, .bias = 1}};
    AsymLayerSpec Lb[] = {{.kind = ASYM_FC, .out = 7, .bias = 1}, {.kind = ASYM_TANH}, {.kind = ASYM_FC, .out = 3, .bias = 1}};
    AsymLayerSpec Lc[] = {{.kind = ASYM_FC, .out = 6, .bias = 1}, {.kind = ASYM_TANH}, {.kind = ASYM_FC, .out = 3, .bias = 0}};
    AsymLayerSpec Ld[] = {{.kind = ASYM_FC, .out = 6, .bias = 1}, {.kind = ASYM_SIGMOID}, {.kind = ASYM_FC, .out = 3, .bias = 1}};
    AsymNet *a, *b, *c, *d;
    CHECK_OK(make_net(&a, La, 3, 8, 1, 1, 3, ASYM_INIT_TORCH, 0, 2, 1));
    CHECK_OK(make_net(&b, Lb, 3, 8, 1, 1, 3, ASYM_INIT_TORCH, 0, 2, 2));
    CHECK_OK(make_net(&c, Lc, 3, 8, 1, 1, 3, ASYM_INIT_TORCH, 0, 2, 3));
    CHECK_OK(make_net(&d, Ld, 3, 8, 1, 1, 3, ASYM_INIT_TORCH, 0, 2, 4));
    CHECK_OK(asym_net_save(a, path));
    long n;
    unsigned char *bytes = read_all(path, &n);
    CHECK(bytes);
    /* same tensors, another shape: the message names the tensor */
    int rc = refuse(b, path, bytes, n, "0.W");
    CHECK_MSG(rc == 0, "fc 6 into fc 7: %s", lmsg);
    /* another number of tensors */
    rc = refuse(c, path, bytes, n, "tensors");
    CHECK_MSG(rc == 0, "with a bias into without: %s", lmsg);
    free(bytes);
    /* the activation is not stored: the same tensors load */
    CHECK_OK(asym_net_load(d, path));
    CHECK(same_state(a, d));
    asym_net_free(a), asym_net_free(b), asym_net_free(c), asym_net_free(d);
}

/* The first tensors match and a later one does not: the load must not
 * leave the network half overwritten. */
TEST(net_load_mismatch_late) {
    char path[600];
    snprintf(path, sizeof path, "%s/net_late.bin", test_tmpdir());
    AsymLayerSpec La[] = {{.kind = ASYM_FC, .out = 6, .bias = 1}, {.kind = ASYM_TANH}, {.kind = ASYM_FC, .out = 3, .bias = 1}};
    AsymLayerSpec Lb[] = {{.kind = ASYM_FC, .out = 6, .bias = 1}, {.kind = ASYM_TANH}, {.kind = ASYM_FC, .out = 4, .bias = 1}};
    AsymNet *a, *b;
    CHECK_OK(make_net(&a, La, 3, 8, 1, 1, 3, ASYM_INIT_TORCH, 0, 2, 1));
    CHECK_OK(make_net(&b, Lb, 3, 8, 1, 1, 4, ASYM_INIT_TORCH, 0, 2, 2));
    CHECK_OK(asym_net_save(a, path));
    long n;
    unsigned char *bytes = read_all(path, &n);
    CHECK(bytes);
    int rc = refuse(b, path, bytes, n, "2.W");
    free(bytes);
    asym_net_free(a), asym_net_free(b);
    CHECK_MSG(rc == 0, "fc 3 into fc 4 after matching tensors: %s", lmsg);
}

/* ---- determinism ---- */

TEST(net_determinism) {
    AsymNet *a, *b, *c;
    CHECK_OK(small_net(&a, 42));
    CHECK_OK(small_net(&b, 42));
    CHECK_OK(small_net(&c, 43));
    CHECK_MSG(same_state(a, b), "the same seed gives different initial weights");
    CHECK_MSG(!same_state(a, c), "different seeds give the same initial weights");
    /* most entries differ between seeds (biases and weights alike) */
    size_t n1, n2;
    float *sa = snapshot(a, &n1), *sc = snapshot(c, &n2);
    size_t differ = 0, nonconst = 0;
    for (int i = 0, off = 0; i < asym_net_n_params(a); off += (int)asym_net_param(a, i)->n, i++) {
        AsymParam *p = asym_net_param(a, i);
        if (p->role != ASYM_P_WEIGHT && p->role != ASYM_P_BIAS) continue;
        for (size_t j = 0; j < p->n; j++) differ += sa[off + j] != sc[off + j], nonconst++;
    }
    free(sa), free(sc);
    CHECK_MSG(differ > nonconst * 9 / 10, "only %zu of %zu weights differ between seeds", differ, nonconst);
    /* training (dropout masks included) is reproducible bit for bit */
    float la = train_steps(a, 4, 500), lb = train_steps(b, 4, 500), lc = train_steps(c, 4, 500);
    CHECK(isfinite(la) && isfinite(lc));
    CHECK_MSG(la == lb, "the same seed gives losses %.9g and %.9g", la, lb);
    CHECK_MSG(same_state(a, b), "the same seed gives different weights after training");
    CHECK_MSG(la != lc, "different seeds give the same loss %.9g", la);
    asym_net_free(a), asym_net_free(b), asym_net_free(c);
    /* one generator creating two nets in a row gives two different nets */
    AsymRng rng;
    asym_rng_seed(&rng, 9);
    AsymNetSpec s = {.in_c = 2, .in_h = 6, .in_w = 6, .classes = 3, .layers = SMALL, .n_layers = NL(SMALL), .init = ASYM_INIT_TORCH};
    CHECK_OK(asym_net_create(&a, &s, 4, &rng));
    CHECK_OK(asym_net_create(&b, &s, 4, &rng));
    int same = same_state(a, b);
    asym_net_free(a), asym_net_free(b);
    CHECK_MSG(!same, "a generator gave two nets the same weights");
}

/* The loss and gradients are the same for a batch and for its items one at a
 * time (no batch norm or dropout), and the forward pass does not depend on
 * max_batch. */
TEST(net_batch_consistency) {
    AsymLayerSpec L[] = {{.kind = ASYM_CONV, .out = 3, .k = 3, .pad = 1, .bias = 1}, {.kind = ASYM_RELU}, {.kind = ASYM_AVGPOOL, .k = 2},
                         {.kind = ASYM_FLATTEN}, {.kind = ASYM_FC, .out = 3, .bias = 1}};
    AsymNet *a, *b;
    CHECK_OK(make_net(&a, L, NL(L), 2, 6, 6, 3, ASYM_INIT_TORCH, 0, 4, 5));
    CHECK_OK(make_net(&b, L, NL(L), 2, 6, 6, 3, ASYM_INIT_TORCH, 0, 1, 5));
    float x[4 * 72];
    int32_t y[4];
    random_batch(x, y, 4, 72, 3, 11);
    float logits[12];
    memcpy(logits, asym_net_forward(a, x, 4, 1), sizeof logits);
    asym_net_zero_grad(a);
    double L4 = asym_net_loss(a, y, 4, 1, NULL);
    double sum = 0, err = 0, ref = 0, lerr = 0;
    asym_net_zero_grad(b);
    for (int n = 0; n < 4; n++) {
        const float *o = asym_net_forward(b, x + n * 72, 1, 1);
        for (int k = 0; k < 3; k++) lerr = fmax(lerr, fabs(o[k] - logits[n * 3 + k]));
        sum += asym_net_loss(b, y + n, 1, 1, NULL);
    }
    for (int i = 0, off = 0; i < asym_net_n_params(a); off += (int)asym_net_param(a, i)->n, i++) {
        AsymParam *pa = asym_net_param(a, i), *pb = asym_net_param(b, i);
        for (size_t j = 0; j < pa->n; j++) {
            double want = pb->g[j] / 4.0; /* the batch loss is a mean */
            err += (pa->g[j] - want) * (pa->g[j] - want);
            ref += want * want;
        }
    }
    asym_net_free(a), asym_net_free(b);
    CHECK_MSG(lerr < 1e-5, "logits of items one at a time differ by %g", lerr);
    CHECK_MSG(fabs(L4 - sum / 4) < 1e-5, "batch loss %.7g, mean of single losses %.7g", L4, sum / 4);
    CHECK_MSG(ref > 0 && sqrt(err / ref) < 1e-5, "batch gradient differs from the sum of single ones (rel %g)", sqrt(err / ref));
}

/* ---- errors ---- */

TEST(net_create_errors) {
    AsymNet *net = (AsymNet *)1;
    AsymLayerSpec fc5[] = {{.kind = ASYM_FLATTEN}, {.kind = ASYM_FC, .out = 5, .bias = 1, .line = 17}};
    CHECK(make_net(&net, fc5, 2, 1, 4, 4, 4, ASYM_INIT_TORCH, 0, 2, 1) == ASYM_ERR && net == NULL);
    CHECK_MSG(HAS("classes") && HAS("5") && HAS("4"), "classes mismatch: %s", asym_last_error());
    /* a convolution kernel larger than its (padded) input, with the layer's config line */
    AsymLayerSpec big[] = {{.kind = ASYM_CONV, .out = 2, .k = 7, .pad = 0, .line = 23}, {.kind = ASYM_FLATTEN}, {.kind = ASYM_FC, .out = 3}};
    CHECK(make_net(&net, big, 3, 1, 5, 5, 3, ASYM_INIT_TORCH, 0, 2, 1) == ASYM_ERR && net == NULL);
    CHECK_MSG(HAS("kernel") && HAS("line 23"), "big kernel: %s", asym_last_error());
    /* padding makes it fit: 5 + 2*1 = 7 */
    big[0].pad = 1;
    CHECK_OK(make_net(&net, big, 3, 1, 5, 5, 3, ASYM_INIT_TORCH, 0, 2, 1));
    asym_net_free(net);
    /* a later layer's error names it */
    AsymLayerSpec late[] = {{.kind = ASYM_CONV, .out = 2, .k = 3}, {.kind = ASYM_MAXPOOL, .k = 5, .line = 31}, {.kind = ASYM_FLATTEN}, {.kind = ASYM_FC, .out = 3}};
    CHECK(make_net(&net, late, 4, 1, 5, 5, 3, ASYM_INIT_TORCH, 0, 2, 1) == ASYM_ERR);
    CHECK_MSG(HAS("line 31") && HAS("1"), "pool: %s", asym_last_error());
    /* no layers, no batch, no input */
    CHECK(make_net(&net, fc5, 0, 1, 4, 4, 5, ASYM_INIT_TORCH, 0, 2, 1) == ASYM_ERR);
    CHECK(make_net(&net, fc5, 2, 1, 4, 4, 5, ASYM_INIT_TORCH, 0, 0, 1) == ASYM_ERR);
    CHECK(make_net(&net, fc5, 2, 0, 4, 4, 5, ASYM_INIT_TORCH, 0, 2, 1) == ASYM_ERR);
    CHECK(make_net(&net, fc5, 2, 1, 4, 4, 0, ASYM_INIT_TORCH, 0, 2, 1) == ASYM_ERR);
}

TEST(net_arch_errors) {
    AsymNetSpec s = {.in_c = 1, .in_h = 28, .in_w = 28, .classes = 10};
    CHECK(asym_arch_lenet(&s) == ASYM_ERR);
    CHECK_MSG(HAS("32x32") && HAS("28x28"), "lenet 28x28: %s", asym_last_error());
    asym_netspec_free(&s);
    AsymNetSpec r = {.in_c = 3, .in_h = 32, .in_w = 32, .classes = 10};
    CHECK(asym_arch_resnet_cifar(&r, 21, ASYM_SHORTCUT_A) == ASYM_ERR && HAS("21"));
    asym_netspec_free(&r);
    CHECK(asym_arch_resnet_cifar(&r, 2, ASYM_SHORTCUT_A) == ASYM_ERR);
    asym_netspec_free(&r);
    CHECK(asym_arch_resnet_imagenet(&r, 19) == ASYM_ERR && HAS("19"));
    asym_netspec_free(&r);
    AsymNetSpec t = {.in_c = 3, .in_h = 16, .in_w = 16, .classes = 10};
    CHECK(asym_arch_resnet_imagenet(&t, 18) == ASYM_ERR && HAS("16x16"));
    asym_netspec_free(&t);
    const int hidden[2] = {100, 0};
    AsymNetSpec m = {.in_c = 1, .in_h = 28, .in_w = 28, .classes = 10};
    CHECK(asym_arch_mlp(&m, hidden, 2, 0, ASYM_RELU) == ASYM_ERR && HAS("hidden"));
    asym_netspec_free(&m);
    /* the working ones build and end in `classes` logits */
    AsymNetSpec ok = {.in_c = 1, .in_h = 32, .in_w = 32, .classes = 7};
    CHECK_OK(asym_arch_lenet(&ok));
    AsymRng rng;
    asym_rng_seed(&rng, 1);
    AsymNet *net;
    CHECK_OK(asym_net_create(&net, &ok, 2, &rng));
    asym_netspec_free(&ok);
    float x[2 * 1024] = {0};
    int32_t y[2] = {0, 6};
    asym_net_forward(net, x, 2, 1);
    float L = asym_net_loss(net, y, 2, 1, NULL);
    asym_net_free(net);
    CHECK_MSG(fabsf(L - logf(7.0f)) < 0.5f, "lenet on zeros: loss %g", L);
}

/* ---- initialization ---- */

typedef struct Stats {
    double mean, std, maxabs;
    size_t n;
} Stats;

static Stats stats(const AsymParam *p) {
    Stats s = {0};
    double sum = 0, ss = 0;
    for (size_t i = 0; i < p->n; i++) sum += p->w[i], s.maxabs = fmax(s.maxabs, fabs(p->w[i]));
    s.mean = sum / p->n;
    for (size_t i = 0; i < p->n; i++) ss += (p->w[i] - s.mean) * (p->w[i] - s.mean);
    s.std = sqrt(ss / p->n);
    s.n = p->n;
    return s;
}

/* Two nets per scheme: conv 16 -> 32, k 5 (12,800 weights; fan_in 400,
 * fan_out 800) on a 16x2x2 input, and fc 400 -> 300 (120,000 weights),
 * batch norm, fc 300 -> 10 on 400 features. */
static int init_net(AsymNet **conv_net, AsymNet **fc_net, AsymInit init, int zero_bias, uint64_t seed) {
    AsymLayerSpec conv[] = {{.kind = ASYM_CONV, .out = 32, .k = 5, .pad = 2, .bias = 1}, {.kind = ASYM_FLATTEN}, {.kind = ASYM_FC, .out = 10, .bias = 1}};
    AsymLayerSpec fc[] = {{.kind = ASYM_FC, .out = 300, .bias = 1}, {.kind = ASYM_BATCHNORM}, {.kind = ASYM_FC, .out = 10, .bias = 1}};
    if (make_net(conv_net, conv, 3, 16, 2, 2, 10, init, zero_bias, 1, seed)) return ASYM_ERR;
    return make_net(fc_net, fc, 3, 400, 1, 1, 10, init, zero_bias, 2, seed + 1);
}

/* want: 'u' uniform with bound b, 'n' normal with std b */
static char imsg[400];
static int check_dist(const AsymParam *p, char kind, double b) {
    Stats s = stats(p);
    double want_std = kind == 'u' ? b / sqrt(3.0) : b;
    if (kind == 'u' && s.maxabs > b * (1 + 1e-6)) {
        snprintf(imsg, sizeof imsg, "%s: |w| up to %g beyond the bound %g", p->name, s.maxabs, b);
        return 1;
    }
    if (kind == 'u' && s.maxabs < 0.95 * b) {
        snprintf(imsg, sizeof imsg, "%s: |w| only up to %g, bound %g", p->name, s.maxabs, b);
        return 1;
    }
    if (fabs(s.std - want_std) > 0.05 * want_std) {
        snprintf(imsg, sizeof imsg, "%s: std %g, want %g (%zu values)", p->name, s.std, want_std, s.n);
        return 1;
    }
    if (fabs(s.mean) > 6 * want_std / sqrt((double)s.n)) {
        snprintf(imsg, sizeof imsg, "%s: mean %g, std %g", p->name, s.mean, s.std);
        return 1;
    }
    return 0;
}

/* The parameters of the two init nets: conv W (32,16,5,5), conv b, fc W (300, 400), fc b. */
#define CHECK_DIST(p, kind, b)                                              \
    do {                                                                    \
        int rc_ = check_dist((p), (kind), (b));                             \
        CHECK_MSG(rc_ == 0, "%s", imsg);                                    \
    } while (0)

TEST(net_init_shapes_and_fans) {
    AsymNet *c, *f;
    CHECK_OK(init_net(&c, &f, ASYM_INIT_TORCH, 0, 1));
    AsymParam *cw = asym_net_param(c, 0), *cb = asym_net_param(c, 1), *fw = asym_net_param(f, 0), *g = asym_net_param(f, 2), *be = asym_net_param(f, 3);
    CHECK(!strcmp(cw->name, "0.W") && cw->role == ASYM_P_WEIGHT && cw->ndim == 4 && cw->shape[0] == 32 && cw->shape[1] == 16 && cw->shape[2] == 5 &&
          cw->shape[3] == 5);
    CHECK(cw->fan_in == 16 * 25 && cw->fan_out == 32 * 25);
    CHECK(!strcmp(cb->name, "0.b") && cb->role == ASYM_P_BIAS && cb->n == 32);
    CHECK(!strcmp(fw->name, "0.W") && fw->ndim == 2 && fw->shape[0] == 300 && fw->shape[1] == 400 && fw->fan_in == 400 && fw->fan_out == 300);
    CHECK(!strcmp(g->name, "1.gamma") && g->role == ASYM_P_BN_SCALE && !strcmp(be->name, "1.beta") && be->role == ASYM_P_BN_SHIFT);
    CHECK(asym_net_n_buffers(f) == 2 && asym_net_n_buffers(c) == 0);
    AsymParam *rm = asym_net_buffer(f, 0), *rv = asym_net_buffer(f, 1);
    CHECK(rm->role == ASYM_P_RUNNING_MEAN && rv->role == ASYM_P_RUNNING_VAR && rm->g == NULL && rm->n == 300);
    for (int j = 0; j < 300; j++) CHECK(g->w[j] == 1.0f && be->w[j] == 0.0f && rm->w[j] == 0.0f && rv->w[j] == 1.0f);
    asym_net_free(c), asym_net_free(f);
}

TEST(net_init_torch_default) {
    AsymNet *c, *f;
    CHECK_OK(init_net(&c, &f, ASYM_INIT_TORCH, 0, 2));
    /* nn.Linear / nn.Conv2d: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), biases too */
    CHECK_DIST(asym_net_param(c, 0), 'u', 1 / sqrt(400.0));
    CHECK_DIST(asym_net_param(f, 0), 'u', 1 / sqrt(400.0));
    AsymParam *b = asym_net_param(f, 1);
    Stats s = stats(b);
    CHECK_MSG(s.maxabs <= 1 / sqrt(400.0) + 1e-7 && s.maxabs > 0.8 / sqrt(400.0) && s.std > 0.4 / sqrt(400.0), "fc bias: max %g std %g", s.maxabs, s.std);
    asym_net_free(c), asym_net_free(f);
}

TEST(net_init_xavier_uniform) {
    AsymNet *c, *f;
    CHECK_OK(init_net(&c, &f, ASYM_INIT_XAVIER_UNIFORM, 0, 3));
    CHECK_DIST(asym_net_param(f, 0), 'u', sqrt(6.0 / (400 + 300)));
    CHECK_DIST(asym_net_param(c, 0), 'u', sqrt(6.0 / (16 * 25 + 32 * 25)));
    asym_net_free(c), asym_net_free(f);
}

TEST(net_init_xavier_normal) {
    AsymNet *c, *f;
    CHECK_OK(init_net(&c, &f, ASYM_INIT_XAVIER_NORMAL, 0, 4));
    CHECK_DIST(asym_net_param(f, 0), 'n', sqrt(2.0 / (400 + 300)));
    CHECK_DIST(asym_net_param(c, 0), 'n', sqrt(2.0 / (16 * 25 + 32 * 25)));
    asym_net_free(c), asym_net_free(f);
}

TEST(net_init_he) {
    AsymNet *c, *f;
    CHECK_OK(init_net(&c, &f, ASYM_INIT_HE_NORMAL, 0, 5));
    CHECK_DIST(asym_net_param(f, 0), 'n', sqrt(2.0 / 400));
    CHECK_DIST(asym_net_param(c, 0), 'n', sqrt(2.0 / (16 * 25)));
    asym_net_free(c), asym_net_free(f);
    CHECK_OK(init_net(&c, &f, ASYM_INIT_HE_UNIFORM, 0, 6));
    CHECK_DIST(asym_net_param(f, 0), 'u', sqrt(6.0 / 400));
    CHECK_DIST(asym_net_param(c, 0), 'u', sqrt(6.0 / (16 * 25)));
    asym_net_free(c), asym_net_free(f);
}

TEST(net_init_zero_bias) {
    static const AsymInit inits[] = {ASYM_INIT_TORCH, ASYM_INIT_XAVIER_UNIFORM, ASYM_INIT_HE_NORMAL};
    for (int k = 0; k < 3; k++) {
        AsymNet *c, *f;
        CHECK_OK(init_net(&c, &f, inits[k], 1, 7));
        AsymNet *nets[2] = {c, f};
        int zero = 1, weights_set = 1;
        for (int t = 0; t < 2; t++)
            for (int i = 0; i < asym_net_n_params(nets[t]); i++) {
                AsymParam *p = asym_net_param(nets[t], i);
                if (p->role == ASYM_P_BIAS)
                    for (size_t j = 0; j < p->n; j++) zero &= p->w[j] == 0.0f;
                if (p->role == ASYM_P_WEIGHT) weights_set &= stats(p).std > 0;
            }
        asym_net_free(c), asym_net_free(f);
        CHECK_MSG(zero, "init %d with zero_bias: a bias is not zero", (int)inits[k]);
        CHECK_MSG(weights_set, "init %d with zero_bias: weights not drawn", (int)inits[k]);
    }
}

/* ---- the memory plan (layers/arena.c) ---- */

/* conv, batch norm, relu; two residual blocks (option B, then identity);
 * global pooling, dropout, fc */
static AsymLayerSpec RES[] = {
    {.kind = ASYM_CONV, .out = 4, .k = 3, .pad = 1}, {.kind = ASYM_BATCHNORM}, {.kind = ASYM_RELU},
    {.kind = ASYM_RESBLOCK, .out = 8, .stride = 2, .shortcut = ASYM_SHORTCUT_B}, {.kind = ASYM_RESBLOCK, .out = 8},
    {.kind = ASYM_AVGPOOL, .k = 0}, {.kind = ASYM_FLATTEN}, {.kind = ASYM_DROPOUT, .p = 0.3f}, {.kind = ASYM_FC, .out = 3, .bias = 1},
};

static int res_net(AsymNet **net, int keep, uint64_t seed) {
    AsymNetSpec s = {.in_c = 3, .in_h = 8, .in_w = 8, .classes = 3, .layers = RES, .n_layers = NL(RES), .keep_activations = keep};
    AsymRng rng;
    asym_rng_seed(&rng, seed);
    return asym_net_create(net, &s, 4, &rng);
}

/* The gradients of one training forward and backward pass on a fixed
 * batch (malloc'd); a second backward pass of the same forward when twice. */
static float *grads_of(AsymNet *net, int twice, float *logits) {
    float x[4 * 192];
    int32_t y[4];
    random_batch(x, y, 4, 192, 3, 11);
    size_t n = asym_net_n_weights(net);
    float *g = malloc(sizeof(float) * n);
    if (!g) return NULL;
    memcpy(logits, asym_net_forward(net, x, 4, 1), sizeof(float) * 12);
    for (int k = 0; k <= twice; k++) {
        asym_net_zero_grad(net);
        asym_net_loss(net, y, 4, 1, NULL);
    }
    memcpy(g, asym_net_param(net, 0)->g, sizeof(float) * n);
    return g;
}

/* The backward pass writes its gradients over activations it is done
 * with: the same bits as a network that keeps every activation, a second
 * backward pass of the same forward recomputes them (dropout masks
 * included), and the logits survive it. */
TEST(net_arena_same_bits) {
    AsymNet *a = NULL, *b = NULL, *c = NULL;
    CHECK_OK(res_net(&a, 0, 5));
    CHECK_OK(res_net(&b, 1, 5));
    CHECK_OK(res_net(&c, 0, 5));
    float la[12], lb[12], lc[12];
    float *ga = grads_of(a, 0, la), *gb = grads_of(b, 0, lb), *gc = grads_of(c, 1, lc);
    size_t n = asym_net_n_weights(a);
    CHECK(ga && gb && gc);
    CHECK_MSG(!memcmp(la, lb, sizeof la) && !memcmp(la, lc, sizeof la), "the logits differ between the plans");
    CHECK_MSG(!memcmp(ga, gb, sizeof(float) * n), "planned and kept activations give other gradients");
    CHECK_MSG(!memcmp(ga, gc, sizeof(float) * n), "a second backward pass of one forward gives other gradients");
    CHECK_MSG(!memcmp(seq_output(net_seq(c)), lc, sizeof lc), "the backward pass overwrote the logits");
    free(ga), free(gb), free(gc);
    asym_net_free(a), asym_net_free(b), asym_net_free(c);
}

/* ReLUs over batch norms and blocks over their main paths take no memory
 * of their own, and the gradients, block scratch and workspaces go where
 * the activations are dead: ResNet-20 at batch 32 needs less than with
 * every activation kept (where all of those lie past the activations), and
 * reaches past its activations by less. How much less depends on the
 * convolutions' workspaces, which oneDNN sizes per processor: the last
 * blocks' have no dead memory after them, and with the Winograd kernels of
 * AVX-512 processors they are the largest (past the activations, planned
 * against kept: 3.98 M floats against 7.16 M on one thread, 7.26 M against
 * 9.17 M on two; 2.29 M against 6.07 M on either with AVX2 kernels). */
TEST(net_arena_reuses_dead_memory) {
    size_t arena[2], acts[2];
    for (int keep = 0; keep < 2; keep++) {
        AsymNetSpec s = {.in_c = 3, .in_h = 32, .in_w = 32, .classes = 10};
        CHECK_OK(asym_arch_resnet_cifar(&s, 20, ASYM_SHORTCUT_A));
        s.keep_activations = keep;
        AsymRng rng;
        asym_rng_seed(&rng, 1);
        AsymNet *net = NULL;
        CHECK_OK(asym_net_create(&net, &s, 32, &rng));
        arena[keep] = net_arena_floats(net, &acts[keep]);
        asym_net_free(net);
        asym_netspec_free(&s);
    }
    printf("    ResNet-20, batch 32: arena %zu floats (activations %zu); every activation kept: %zu (%zu)\n", arena[0], acts[0], arena[1], acts[1]);
    CHECK(acts[0] < acts[1] && arena[0] < arena[1]);
    CHECK_MSG(arena[0] - acts[0] < arena[1] - acts[1], "the plan reaches %zu floats past the activations, kept %zu", arena[0] - acts[0],
              arena[1] - acts[1]);
}
