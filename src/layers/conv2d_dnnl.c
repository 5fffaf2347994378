/* conv2d_dnnl.c: the convolution on oneDNN's primitives (the default build, CONV=dnnl*; the
 * Debian package libdnnl-dev, oneDNN 2.6, C API). The three passes, with
 * the engine's two-halves backward kept as it is (conv2d_dnnl.h):
 *   forward          y = conv(x, W) + b                 convolution_forward
 *   backward_input   dx = conv_transpose(dy, B)         convolution_backward_data, B as the weights
 *   backward_weight  dW += dy (*) x, db += sum dy       convolution_backward_weights
 * oneDNN overwrites its outputs, so the weight gradient is written to the
 * workspace and added into dW and db (a pass over O C k k floats).
 *
 * Layout. The caller's tensors are plain (x, y, dx, dy: nchw; W, B, dW:
 * oihw). By default (ASYM_DNNL_PLAIN not defined) each primitive is created
 * with format_tag_any and picks its own layout (nChw16c and blocked
 * weights for its JIT kernels); the tensors are reordered into it and out
 * of it inside every call, through buffers in the network's workspace. With
 * ASYM_DNNL_PLAIN (make CONV=dnnl-plain) the primitives take the
 * plain tensors as they are. docs/PERFORMANCE.md measures both.
 *
 * Algorithm. Direct convolution, except with ASYM_DNNL_WINOGRAD (make, the
 * default CONV=dnnl-winograd): then 3x3 stride-1 layers with at least 32 input and
 * 32 output channels use oneDNN's Winograd F(4x4, 3x3) kernels in all three
 * passes, where they measured 1.6x (32 channels) to 2x (64) faster than
 * direct on ResNet-20; with 16 channels or 3 they were slower. A layer whose
 * Winograd primitives cannot be made falls back to direct. A layer with one
 * input channel stays on im2col (conv2d.c), which measured 6 to 16% faster
 * on the whole of LeNet-5 and of the conv net.
 *
 * Primitives depend on the batch size and on the number of threads (oneDNN
 * fixes its work split when a primitive is created), so a layer keeps one
 * set per (N, threads) pair: made at creation for max_batch and the current
 * threads, otherwise on first use (the last, smaller batch of an epoch, an
 * evaluation batch), up to DNNL_SETS of them, least recently used replaced.
 * Execution allocates nothing: the memory objects point at the caller's
 * arrays and at fixed offsets of the workspace, scratchpads included
 * (scratchpad_mode user). oneDNN runs on OpenMP, the library's own thread
 * pool (libgomp), with omp_get_max_threads() threads. One CPU engine serves
 * the whole process; each layer has its own stream. */
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dnnl.h>

#include "layers/conv2d_dnnl.h"

#define DNNL_SETS 6   /* (batch size, threads) pairs a layer keeps primitives for */
#define DNNL_IO 4     /* tensors of one pass */

#ifdef ASYM_DNNL_PLAIN
#define DNNL_ACT dnnl_nchw
#define DNNL_WEI dnnl_oihw
#define DNNL_LAYOUT_NAME "plain nchw"
#else
#define DNNL_ACT dnnl_format_tag_any
#define DNNL_WEI dnnl_format_tag_any
#define DNNL_LAYOUT_NAME "its own blocked layouts"
#endif

/* One tensor of a pass: the caller's plain array and, where the primitive
 * wants another layout, its copy in the workspace and the reorder. */
typedef struct Io {
    int arg;                  /* DNNL_ARG_* */
    int out;                  /* written by the pass */
    dnnl_memory_t user;       /* plain; pointed at the caller's array per call */
    dnnl_memory_t inner;      /* the primitive's layout, or NULL when plain */
    dnnl_primitive_t reorder; /* user -> inner for an input, inner -> user for an output */
    size_t off;               /* inner's place in the workspace (floats) */
} Io;

typedef struct Prim {
    dnnl_primitive_t prim;
    Io io[DNNL_IO];
    int n_io;
    dnnl_memory_t scratch;    /* NULL when the primitive needs none */
    size_t scratch_off;
    size_t floats;            /* workspace the pass uses */
} Prim;

/* Workspace of backward_weight after its pass's buffers: dW (O, C, k, k),
 * db (O); of forward: a zero bias (O) for a layer whose bias is detached
 * (weight mirrors run the layer without it). */
typedef struct Set {
    int N, threads;
    unsigned long used;       /* clock of the last call */
    Prim fwd, bwd_data, bwd_weights;
    size_t dw_off, db_off, zero_off;
    int share_dy;             /* the backward passes take dy in the same layout */
    float *own;               /* private workspace when the network's is too small */
    float *bound;             /* workspace the inner memories point into */
} Set;

struct ConvDnnl {
    dnnl_stream_t stream;
    int k, stride, pad;
    int bias;                 /* created with a bias */
    Set sets[DNNL_SETS];
    int n_sets;
    unsigned long clock;
};

static dnnl_engine_t engine;
static pthread_once_t engine_once = PTHREAD_ONCE_INIT;

static void engine_init(void) {
    if (dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success) engine = NULL;
}

static size_t floats_of(const dnnl_memory_desc_t *md) { return (dnnl_memory_desc_get_size(md) + 63) / 64 * 16; }

static void init_md(dnnl_memory_desc_t *md, int n, int c, int h, int w, dnnl_format_tag_t tag) {
    dnnl_dims_t dims = {n, c, h, w};
    dnnl_memory_desc_init_by_tag(md, 4, dims, dnnl_f32, tag);
}

#ifdef ASYM_DNNL_WINOGRAD
/* Whether oneDNN has Winograd kernels for this processor (oneDNN 2.x: on
 * AVX-512 only, and not under ONEDNN_MAX_CPU_ISA below it); elsewhere the
 * layers that would take them are direct (set_make). Asked once, with a
 * forward primitive of 32 to 32 channels, 3x3, on 8x8. */
static int winograd_here;
static pthread_once_t winograd_once = PTHREAD_ONCE_INIT;

static void winograd_probe(void) {
    dnnl_memory_desc_t x, y, w;
    dnnl_dims_t st = {1, 1}, pad = {1, 1};
    dnnl_convolution_desc_t fd;
    dnnl_primitive_desc_t pd = NULL;
    init_md(&x, 1, 32, 8, 8, DNNL_ACT);
    init_md(&y, 1, 32, 8, 8, DNNL_ACT);
    init_md(&w, 32, 32, 3, 3, DNNL_WEI);
    pthread_once(&engine_once, engine_init);
    winograd_here = engine && dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_winograd, &x, &w, NULL, &y, st, pad, pad) == dnnl_success &&
                    dnnl_primitive_desc_create(&pd, &fd, NULL, engine, NULL) == dnnl_success;
    if (pd) dnnl_primitive_desc_destroy(pd);
}
#endif

const char *conv_dnnl_name(void) {
    static char name[240];
    const dnnl_version_t *v = dnnl_version();
    const char *algo = "";
#ifdef ASYM_DNNL_WINOGRAD
    pthread_once(&winograd_once, winograd_probe);
    algo = winograd_here ? "; Winograd for 3x3 stride-1 layers of 32+ channels"
                         : "; Winograd for 3x3 stride-1 layers of 32+ channels where oneDNN has its kernels (AVX-512), not on this processor: direct";
#endif
    snprintf(name, sizeof name, "oneDNN %d.%d.%d (%s%s; im2col for 1-channel inputs)", v->major, v->minor, v->patch, DNNL_LAYOUT_NAME, algo);
    return name;
}

static void io_free(Io *io) {
    if (io->reorder) dnnl_primitive_destroy(io->reorder);
    if (io->inner) dnnl_memory_destroy(io->inner);
    if (io->user) dnnl_memory_destroy(io->user);
    memset(io, 0, sizeof *io);
}

static void prim_free(Prim *p) {
    for (int i = 0; i < p->n_io; i++) io_free(&p->io[i]);
    if (p->scratch) dnnl_memory_destroy(p->scratch);
    if (p->prim) dnnl_primitive_destroy(p->prim);
    memset(p, 0, sizeof *p);
}

/* Adds tensor arg of the primitive pd to p: user is its plain layout, the
 * primitive's own is queried with (q, index); a copy goes into the workspace when they differ. */
static int prim_io(Prim *p, const_dnnl_primitive_desc_t pd, int arg, int out, dnnl_query_t q, int index, const dnnl_memory_desc_t *user) {
    Io *io = &p->io[p->n_io++];
    io->arg = arg, io->out = out;
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, q, index);
    if (!md || dnnl_memory_create(&io->user, user, engine, DNNL_MEMORY_NONE) != dnnl_success) return -1;
    if (dnnl_memory_desc_equal(md, user)) return 0;
    dnnl_primitive_desc_t rpd = NULL;
    if (dnnl_memory_create(&io->inner, md, engine, DNNL_MEMORY_NONE) != dnnl_success) return -1;
    if (dnnl_reorder_primitive_desc_create(&rpd, out ? md : user, engine, out ? user : md, engine, NULL) != dnnl_success) return -1;
    dnnl_status_t st = dnnl_primitive_create(&io->reorder, rpd);
    dnnl_primitive_desc_destroy(rpd);
    if (st != dnnl_success) return -1;
    io->off = p->floats;
    p->floats += floats_of(md);
    return 0;
}

/* The primitive of pd, with its scratchpad placed after the tensors' copies. */
static int prim_make(Prim *p, const_dnnl_primitive_desc_t pd) {
    const dnnl_memory_desc_t *sm = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    if (sm && dnnl_memory_desc_get_size(sm) > 0) {
        if (dnnl_memory_create(&p->scratch, sm, engine, DNNL_MEMORY_NONE) != dnnl_success) return -1;
        p->scratch_off = p->floats;
        p->floats += floats_of(sm);
    }
    return dnnl_primitive_create(&p->prim, pd) == dnnl_success ? 0 : -1;
}

static void set_free(Set *s) {
    prim_free(&s->fwd);
    prim_free(&s->bwd_data);
    prim_free(&s->bwd_weights);
    free(s->own);
    memset(s, 0, sizeof *s);
}


/* The three passes of layer l for batch size N on the current threads,
 * with algorithm alg. */
static int set_make_alg(ConvDnnl *d, const Layer *l, Set *s, int N, dnnl_alg_kind_t alg) {
    int C = l->in.c, O = l->out.c;
    dnnl_memory_desc_t x_md, y_md, w_md, b_md, x_any, y_any, w_any;
    init_md(&x_md, N, C, l->in.h, l->in.w, dnnl_nchw);
    init_md(&y_md, N, O, l->out.h, l->out.w, dnnl_nchw);
    init_md(&w_md, O, C, d->k, d->k, dnnl_oihw);
    init_md(&x_any, N, C, l->in.h, l->in.w, DNNL_ACT);
    init_md(&y_any, N, O, l->out.h, l->out.w, DNNL_ACT);
    init_md(&w_any, O, C, d->k, d->k, DNNL_WEI);
    dnnl_dims_t bdim = {O};
    dnnl_memory_desc_init_by_tag(&b_md, 1, bdim, dnnl_f32, dnnl_a);
    /* padding_r = pad keeps oneDNN's output size (H + 2 pad - k) / stride + 1, the layer's */
    dnnl_dims_t st = {d->stride, d->stride}, pad = {d->pad, d->pad};
    dnnl_convolution_desc_t fd, dd, wd;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t fpd = NULL, dpd = NULL, wpd = NULL;
    int rc = -1;
    memset(s, 0, sizeof *s);
    s->N = N, s->threads = omp_get_max_threads();
    if (dnnl_primitive_attr_create(&attr) != dnnl_success || dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) != dnnl_success) goto done;
    if (dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training, alg, &x_any, &w_any, d->bias ? &b_md : NULL, &y_any, st, pad, pad) ||
        dnnl_primitive_desc_create(&fpd, &fd, attr, engine, NULL))
        goto done;
    if (dnnl_convolution_backward_data_desc_init(&dd, alg, &x_any, &w_any, &y_any, st, pad, pad) ||
        dnnl_primitive_desc_create(&dpd, &dd, attr, engine, fpd))
        goto done;
    if (dnnl_convolution_backward_weights_desc_init(&wd, alg, &x_any, &w_any, d->bias ? &b_md : NULL, &y_any, st, pad, pad) ||
        dnnl_primitive_desc_create(&wpd, &wd, attr, engine, fpd))
        goto done;
    if (prim_io(&s->fwd, fpd, DNNL_ARG_SRC, 0, dnnl_query_src_md, 0, &x_md) || prim_io(&s->fwd, fpd, DNNL_ARG_WEIGHTS, 0, dnnl_query_weights_md, 0, &w_md) ||
        (d->bias && prim_io(&s->fwd, fpd, DNNL_ARG_BIAS, 0, dnnl_query_weights_md, 1, &b_md)) ||
        prim_io(&s->fwd, fpd, DNNL_ARG_DST, 1, dnnl_query_dst_md, 0, &y_md) || prim_make(&s->fwd, fpd))
        goto done;
    if (prim_io(&s->bwd_data, dpd, DNNL_ARG_DIFF_DST, 0, dnnl_query_diff_dst_md, 0, &y_md) ||
        prim_io(&s->bwd_data, dpd, DNNL_ARG_WEIGHTS, 0, dnnl_query_weights_md, 0, &w_md) ||
        prim_io(&s->bwd_data, dpd, DNNL_ARG_DIFF_SRC, 1, dnnl_query_diff_src_md, 0, &x_md) || prim_make(&s->bwd_data, dpd))
        goto done;
    if (prim_io(&s->bwd_weights, wpd, DNNL_ARG_DIFF_DST, 0, dnnl_query_diff_dst_md, 0, &y_md) ||
        prim_io(&s->bwd_weights, wpd, DNNL_ARG_SRC, 0, dnnl_query_src_md, 0, &x_md) ||
        prim_io(&s->bwd_weights, wpd, DNNL_ARG_DIFF_WEIGHTS, 1, dnnl_query_diff_weights_md, 0, &w_md) ||
        (d->bias && prim_io(&s->bwd_weights, wpd, DNNL_ARG_DIFF_BIAS, 1, dnnl_query_diff_weights_md, 1, &b_md)) || prim_make(&s->bwd_weights, wpd))
        goto done;
    /* both backward passes put dy's copy first, at offset 0: when they want
     * the same layout, the input pass reuses the weight pass's copy */
    const Io *a = &s->bwd_weights.io[0], *b = &s->bwd_data.io[0];
    s->share_dy = a->inner && b->inner && dnnl_memory_desc_equal(dnnl_primitive_desc_query_md(wpd, dnnl_query_diff_dst_md, 0), dnnl_primitive_desc_query_md(dpd, dnnl_query_diff_dst_md, 0));
    s->zero_off = s->fwd.floats;
    s->fwd.floats += (O + 15) / 16 * 16;
    s->dw_off = s->bwd_weights.floats;
    s->db_off = s->dw_off + floats_of(&w_md);
    s->bwd_weights.floats = s->db_off + (O + 15) / 16 * 16;
    rc = 0;
done:
    if (fpd) dnnl_primitive_desc_destroy(fpd);
    if (dpd) dnnl_primitive_desc_destroy(dpd);
    if (wpd) dnnl_primitive_desc_destroy(wpd);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (rc) set_free(s);
    return rc;
}

static int set_make(ConvDnnl *d, const Layer *l, Set *s, int N) {
#ifdef ASYM_DNNL_WINOGRAD
    if (d->k == 3 && d->stride == 1 && l->in.c >= 32 && l->out.c >= 32 && set_make_alg(d, l, s, N, dnnl_convolution_winograd) == 0) return 0;
#endif
    return set_make_alg(d, l, s, N, dnnl_convolution_direct);
}

static size_t set_floats(const Set *s) {
    size_t f = s->fwd.floats;
    if (s->bwd_data.floats > f) f = s->bwd_data.floats;
    if (s->bwd_weights.floats > f) f = s->bwd_weights.floats;
    return f;
}

static void prim_bind(Prim *p, float *ws) {
    for (int i = 0; i < p->n_io; i++)
        if (p->io[i].inner) dnnl_memory_set_data_handle(p->io[i].inner, ws + p->io[i].off);
    if (p->scratch) dnnl_memory_set_data_handle(p->scratch, ws + p->scratch_off);
}

/* The workspace of set s: the network's (fixed once it is built) or its own. */
static float *set_ws(Set *s, const Layer *l) {
    float *ws = s->own ? s->own : layer_work(l);
    if (s->bound != ws) {
        prim_bind(&s->fwd, ws);
        prim_bind(&s->bwd_data, ws);
        prim_bind(&s->bwd_weights, ws);
        s->bound = ws;
    }
    return ws;
}

/* The primitives for batch size N on the current threads, made on first use. */
static Set *set_for(ConvDnnl *d, const Layer *l, int N) {
    int threads = omp_get_max_threads(), lru = 0;
    d->clock++;
    for (int i = 0; i < d->n_sets; i++) {
        Set *s = &d->sets[i];
        if (s->N == N && s->threads == threads) {
            s->used = d->clock;
            return s;
        }
        if (s->used < d->sets[lru].used) lru = i;
    }
    Set *s = d->n_sets < DNNL_SETS ? &d->sets[d->n_sets] : &d->sets[lru];
    if (d->n_sets == DNNL_SETS) set_free(s);
    if (set_make(d, l, s, N)) return NULL;
    if (set_floats(s) > layer_work_size(l) && !(s->own = asym_falloc(set_floats(s)))) {
        set_free(s);
        return NULL;
    }
    if (d->n_sets < DNNL_SETS) d->n_sets++;
    s->used = d->clock;
    return s;
}

/* Runs pass p with its tensors' plain arrays at ptr (in the order of p->io);
 * with have_first, the first tensor's copy is already in the workspace. */
static int prim_run(Prim *p, dnnl_stream_t stream, void *const *ptr, int have_first) {
    dnnl_exec_arg_t args[DNNL_IO + 1];
    int n = 0;
    for (int i = 0; i < p->n_io; i++) {
        Io *io = &p->io[i];
        dnnl_memory_set_data_handle(io->user, ptr[i]);
        if (io->inner && !io->out && !(i == 0 && have_first)) {
            dnnl_exec_arg_t r[2] = {{DNNL_ARG_FROM, io->user}, {DNNL_ARG_TO, io->inner}};
            if (dnnl_primitive_execute(io->reorder, stream, 2, r)) return -1;
        }
        args[n++] = (dnnl_exec_arg_t){io->arg, io->inner ? io->inner : io->user};
    }
    if (p->scratch) args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, p->scratch};
    if (dnnl_primitive_execute(p->prim, stream, n, args)) return -1;
    for (int i = 0; i < p->n_io; i++) {
        Io *io = &p->io[i];
        if (!io->inner || !io->out) continue;
        dnnl_exec_arg_t r[2] = {{DNNL_ARG_FROM, io->inner}, {DNNL_ARG_TO, io->user}};
        if (dnnl_primitive_execute(io->reorder, stream, 2, r)) return -1;
    }
    return dnnl_stream_wait(stream) == dnnl_success ? 0 : -1;
}

int conv_dnnl_forward(ConvDnnl *d, Layer *l, const float *x, float *y, int N, int bias) {
    Set *s = set_for(d, l, N);
    if (!s) return -1;
    float *ws = set_ws(s, l), *b = NULL;
    if (d->bias) {
        b = bias ? l->b->w : ws + s->zero_off;
        if (!bias) memset(b, 0, sizeof(float) * l->out.c);
    }
    void *ptr[DNNL_IO] = {(void *)x, l->W->w};
    int n = 2;
    if (d->bias) ptr[n++] = b;
    ptr[n] = y;
    return prim_run(&s->fwd, d->stream, ptr, 0);
}

static int backward_weight(ConvDnnl *d, Set *s, Layer *l, const float *x, const float *dy, float *dW, float *dB) {
    float *dw = s->bound + s->dw_off, *db = s->bound + s->db_off;
    void *ptr[DNNL_IO] = {(void *)dy, (void *)x, dw, db};
    if (prim_run(&s->bwd_weights, d->stream, ptr, 0)) return -1;
    size_t n = l->W->n;
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) dW[i] += dw[i];
    if (dB)
        for (int o = 0; o < l->out.c; o++) dB[o] += db[o];
    return 0;
}

int conv_dnnl_backward(ConvDnnl *d, Layer *l, const float *x, const float *dy, const float *B, float *dx, int N, float *dW, float *db) {
    Set *s = set_for(d, l, N);
    if (!s) return -1;
    set_ws(s, l);
    if (dW && backward_weight(d, s, l, x, dy, dW, db)) return -1;
    if (!dx) return 0;
    /* after the weight pass, dy's copy is already made when the layouts agree */
    void *ptr[DNNL_IO] = {(void *)dy, (void *)B, dx};
    if (prim_run(&s->bwd_data, d->stream, ptr, dW && s->share_dy)) return dW ? 1 : -1;
    return 0;
}

ConvDnnl *conv_dnnl_create(Layer *l, int k, int stride, int pad) {
    pthread_once(&engine_once, engine_init);
    if (!engine) return NULL;
    /* one input channel: oneDNN's direct kernels vectorize over channels
     * and lose to im2col's GEMM there (LeNet-5 and the conv net's first
     * layers: docs/PERFORMANCE.md, "Which path per layer") */
    if (l->in.c == 1) return NULL;
    ConvDnnl *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->k = k, d->stride = stride, d->pad = pad, d->bias = l->b != NULL;
    if (dnnl_stream_create(&d->stream, engine, dnnl_stream_default_flags) != dnnl_success) d->stream = NULL;
    if (!d->stream || set_make(d, l, &d->sets[0], l->ctx->max_batch)) {
        conv_dnnl_free(d);
        return NULL;
    }
    d->n_sets = 1;
    layer_need_work(l, set_floats(&d->sets[0]));
    return d;
}

void conv_dnnl_free(ConvDnnl *d) {
    if (!d) return;
    for (int i = 0; i < d->n_sets; i++) set_free(&d->sets[i]);
    if (d->stream) dnnl_stream_destroy(d->stream);
    free(d);
}
