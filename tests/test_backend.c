/* test_backend.c: the convolution backend of a build. A oneDNN build (the
 * default, and every CONV=dnnl*) must run its convolutions on oneDNN and
 * say so, in the library (asym_conv_backend) and in `asymbp --version`;
 * the portable build (make CONV=im2col) must say im2col. Then what each backend guarantees about threads: the
 * same floats run after run on the same threads, and which passes also
 * give the same floats on another number of threads. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "asymbp.h"
#include "layers/layers.h"
#include "test.h"

#ifdef ASYM_DNNL
#define EXPECT_BACKEND "oneDNN"
#else
#define EXPECT_BACKEND "im2col"
#endif

TEST(backend_reported_by_library_and_cli) {
    const char *name = asym_conv_backend();
    CHECK_MSG(name && strstr(name, EXPECT_BACKEND), "asym_conv_backend() = \"%s\", expected \"%s\"", name ? name : "(null)", EXPECT_BACKEND);
    CHECK(test_cli("--version") == 0);
    char want[256];
    snprintf(want, sizeof want, "convolutions: %s\n", name);
    CHECK_MSG(strstr(test_out, want), "asymbp --version says \"%s\", expected a line \"%s\"", test_out, want);
}

/* ---- same floats on any number of threads ---- */

/* One convolution layer made on a given number of threads, with random x,
 * dy and B; passes_run writes its three passes into out (ny + nw + nx
 * floats): y, dW (backward_weight twice into a zeroed dW) and dx. */
typedef struct Passes {
    NetCtx ctx;
    Layer *l;
    size_t nx, ny, nw;
    float *x, *dy, *B, *out;
} Passes;

static void passes_free(Passes *p) {
    if (p->l) layer_free(p->l);
    for (int i = 0; i < p->ctx.n_params; i++) {
        free(p->ctx.params[i]->w);
        free(p->ctx.params[i]->g);
        free(p->ctx.params[i]);
    }
    free(p->ctx.params), free(p->ctx.weight_layers), ctx_free_scratch(&p->ctx);
    free(p->x), free(p->dy), free(p->B), free(p->out);
}

static int passes_make(Passes *p, int N, int C, int H, int O, int k, int s, int pad, int threads) {
    memset(p, 0, sizeof *p);
    omp_set_num_threads(threads); /* before creation, as training does */
    p->ctx.max_batch = N;
    rng_seed(&p->ctx.rng, 5);
    AsymLayerSpec spec = {.kind = ASYM_CONV, .out = O, .k = k, .stride = s, .pad = pad, .bias = 1};
    Shape in = {C, H, H};
    if (!(p->l = layer_create(&spec, in, &p->ctx, "0"))) return -1;
    for (int i = 0; i < p->ctx.n_params; i++) {
        AsymParam *q = p->ctx.params[i];
        q->w = asym_falloc(q->n), q->g = asym_falloc(q->n);
    }
    if (ctx_alloc_scratch(&p->ctx, NULL, 0)) return -1;
    AsymRng r;
    rng_seed(&r, 6);
    init_params(&p->ctx, ASYM_INIT_TORCH, 0, &r);
    p->nx = (size_t)N * shape_size(p->l->in), p->ny = (size_t)N * shape_size(p->l->out), p->nw = p->l->W->n;
    p->x = asym_falloc(p->nx), p->dy = asym_falloc(p->ny), p->B = asym_falloc(p->nw), p->out = asym_falloc(p->ny + p->nw + p->nx);
    if (!p->x || !p->dy || !p->B || !p->out) return -1;
    for (size_t i = 0; i < p->nx; i++) p->x[i] = rng_normal(&r);
    for (size_t i = 0; i < p->ny; i++) p->dy[i] = rng_normal(&r);
    for (size_t i = 0; i < p->nw; i++) p->B[i] = rng_normal(&r);
    return 0;
}

static void passes_run(Passes *p, int N) {
    memset(p->l->W->g, 0, sizeof(float) * p->nw);
    p->l->ops->forward(p->l, p->x, p->out, N, LAYER_PASS(p->l, 1));
    p->l->ops->backward_weight(p->l, p->x, p->dy, N, p->l->W->g, p->l->b ? p->l->b->g : NULL);
    p->l->ops->backward_weight(p->l, p->x, p->dy, N, p->l->W->g, p->l->b ? p->l->b->g : NULL);
    memcpy(p->out + p->ny, p->l->W->g, sizeof(float) * p->nw);
    p->l->ops->backward_input(p->l, p->B, p->dy, p->out + p->ny + p->nw, N);
}

/* Which passes differ between a and b: bit 1 forward, 2 weight gradient, 4 input gradient. */
static int passes_differ(const Passes *a, const Passes *b) {
    return (memcmp(a->out, b->out, sizeof(float) * a->ny) ? 1 : 0) | (memcmp(a->out + a->ny, b->out + a->ny, sizeof(float) * a->nw) ? 2 : 0) |
           (memcmp(a->out + a->ny + a->nw, b->out + a->ny + a->nw, sizeof(float) * a->nx) ? 4 : 0);
}

/* Which path each layer takes: on a oneDNN build every convolution but
 * those of one input channel (LeNet-5's and the conv net's first), which
 * run faster on im2col; 3-channel stems, 6- and 32-channel layers, stride
 * 2 and 1x1 run on oneDNN. The portable build has im2col alone. */
TEST(backend_path_per_layer) {
    static const int G[][7] = {{4, 1, 28, 6, 5, 1, 2}, {4, 1, 28, 32, 5, 1, 2}, {4, 3, 32, 16, 3, 1, 1}, {2, 3, 64, 64, 7, 2, 3}, {4, 6, 14, 16, 5, 1, 0}, {4, 32, 8, 64, 1, 2, 0}};
    for (int g = 0; g < (int)(sizeof G / sizeof G[0]); g++) {
        const int *c = G[g];
        Passes p;
        int rc = passes_make(&p, c[0], c[1], c[2], c[3], c[4], c[5], c[6], 1);
        int on = rc ? -1 : conv2d_on_dnnl(p.l);
        passes_free(&p);
#ifdef ASYM_DNNL
        int want = c[1] > 1;
#else
        int want = 0;
#endif
        CHECK_MSG(on == want, "conv C%d %dx%d O%d k%d s%d: %s (want %s)", c[1], c[2], c[2], c[3], c[4], c[5], on < 0 ? asym_last_error() : on ? "oneDNN" : "im2col",
                  want ? "oneDNN" : "im2col");
    }
}

/* Same threads, same bits: on both backends (resumed runs depend on it).
 * Across thread counts: the im2col path gives the same floats on any
 * number of threads; oneDNN fixes its work split when a primitive is made
 * for a thread count, and its weight gradient sums the batch per thread, so
 * only its forward and input passes are compared there
 * (docs/PERFORMANCE.md, "oneDNN convolution backend"). */
TEST(backend_same_bits_same_threads) {
    static const int G[][7] = {{16, 32, 14, 64, 3, 1, 1}, {24, 16, 16, 32, 3, 2, 1}, {20, 6, 14, 16, 5, 1, 0}, {9, 64, 8, 32, 1, 1, 0}};
    int threads = omp_get_max_threads(), bad = 0;
    for (int g = 0; g < (int)(sizeof G / sizeof G[0]) && !bad; g++) {
        const int *c = G[g];
        Passes one, again, two;
        int rc = passes_make(&one, c[0], c[1], c[2], c[3], c[4], c[5], c[6], 1) | passes_make(&again, c[0], c[1], c[2], c[3], c[4], c[5], c[6], 1) |
                 passes_make(&two, c[0], c[1], c[2], c[3], c[4], c[5], c[6], 2);
        if (!rc) {
            omp_set_num_threads(1);
            passes_run(&one, c[0]);
            passes_run(&again, c[0]);
            passes_run(&one, c[0] - 1); /* another batch size in between */
            passes_run(&one, c[0]);
            omp_set_num_threads(2);
            passes_run(&two, c[0]);
        }
        int same = rc ? -1 : passes_differ(&one, &again), across = rc ? -1 : passes_differ(&one, &two);
        passes_free(&one), passes_free(&again), passes_free(&two);
        omp_set_num_threads(threads);
#ifdef ASYM_DNNL
        int want_across = across & ~2;
#else
        int want_across = across;
#endif
        if (rc || same || want_across) {
            test_fail(__FILE__, __LINE__, "conv N%d C%d %dx%d O%d k%d s%d p%d: %s; differ on one thread: %d, on one and two threads: %d (1 y, 2 dW, 4 dx)", c[0],
                      c[1], c[2], c[2], c[3], c[4], c[5], c[6], rc ? asym_last_error() : "ok", same, across);
            bad = 1;
        }
        else if (across) printf("    conv N%d C%d %dx%d O%d k%d: the weight gradient differs between one and two threads\n", c[0], c[1], c[2], c[2], c[3], c[4]);
    }
}

/* The command sleeps its waiting OpenMP threads unless the environment
 * chose a wait policy: it starts itself again with OMP_WAIT_POLICY=passive
 * (cli/main.c), which `asymbp version` reports. */
TEST(cli_threads_wait_passively) {
    int rc = test_sh(test_out, sizeof test_out, "env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT '%s' version 2>&1", test_asym_bin());
    CHECK_MSG(rc == 0 && strstr(test_out, "openmp wait policy: passive\n"), "without a policy in the environment:\n%s", test_out);
    rc = test_sh(test_out, sizeof test_out, "env -u GOMP_SPINCOUNT OMP_WAIT_POLICY=active '%s' version 2>&1", test_asym_bin());
    CHECK_MSG(rc == 0 && strstr(test_out, "openmp wait policy: active\n"), "with OMP_WAIT_POLICY=active:\n%s", test_out);
    rc = test_sh(test_out, sizeof test_out, "env -u OMP_WAIT_POLICY GOMP_SPINCOUNT=1000 '%s' version 2>&1", test_asym_bin());
    CHECK_MSG(rc == 0 && strstr(test_out, "the runtime's default, GOMP_SPINCOUNT=1000\n"), "with GOMP_SPINCOUNT=1000:\n%s", test_out);
}
