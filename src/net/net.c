/* net.c: building a network from its spec (sizes counted first, then one
 * allocation per lifetime: parameters, gradients, activations, workspace),
 * the passes and the loss over its top chain (layers/chain.c), and saving
 * and loading weights. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "net/net.h"
#include "io/io.h"

static int rule_is_direct(int r) {
    const Rule *d = rule_get((AsymRule)r);
    return d && (d->flags & RULE_DIRECT);
}

struct AsymNet {
    NetCtx ctx;
    Seq seq;
    AsymLoss loss;
    int classes, last_N, keep_dx;
    float *wflat, *gflat;  /* all parameters and gradients, contiguous */
    size_t n_flat;
    float *dlogits;        /* (max_batch, classes) */
    float *dx;             /* (max_batch, in) when keep_dx */
    /* A backward pass leaves the activations it is done with to the
     * gradients (layers/arena.c); a second backward of the same forward
     * (an alignment measurement's exact pass) recomputes them first, from
     * the last forward's input, pass and dropout stream. */
    int keep_acts, spent;
    const float *fwd_x;
    Pass fwd;
    AsymRng fwd_rng;
};

int asym_net_create(AsymNet **out, const AsymNetSpec *spec, int max_batch, AsymRng *rng) {
    *out = NULL;
    if (max_batch <= 0 || spec->in_c <= 0 || spec->in_h <= 0 || spec->in_w <= 0 || spec->classes <= 0 || spec->n_layers <= 0)
        return asym_fail("network: needs a batch size, input shape, classes and at least one layer");
    AsymNet *net = asym_calloc(1, sizeof(AsymNet));
    if (!net) return ASYM_ERR;
    net->ctx.max_batch = max_batch;
    net->ctx.rng = rng_split(rng);
    net->ctx.classes = spec->classes;
    if (spec->fb.init) net->ctx.fb = spec->fb;
    else asym_feedback_defaults(&net->ctx.fb);
    net->loss = spec->loss ? spec->loss : ASYM_LOSS_SOFTMAX_CE;
    net->classes = spec->classes;
    Shape in = {spec->in_c, spec->in_h, spec->in_w};
    /* dkp reads the output of a residual block's path in the backward pass */
    net->ctx.keep_path_outputs = rule_is_direct(spec->rule);
    for (int k = 0; k < spec->n_overrides; k++) net->ctx.keep_path_outputs |= rule_is_direct(spec->overrides[k].rule);
    for (int i = 0; i < spec->n_layers; i++) net->ctx.keep_path_outputs |= rule_is_direct(spec->layers[i].rule);
    if (seq_build(&net->seq, spec->layers, spec->n_layers, in, &net->ctx, "", !spec->keep_activations)) goto fail;
    if (shape_size(net->seq.out) != (size_t)spec->classes) {
        asym_fail("network: the last layer gives %zu outputs (%dx%dx%d) but there are %d classes", shape_size(net->seq.out), net->seq.out.c, net->seq.out.h,
                  net->seq.out.w, spec->classes);
        goto fail;
    }
    for (int i = 0; i < net->ctx.n_params; i++) net->n_flat += net->ctx.params[i]->n;
    net->wflat = asym_falloc(net->n_flat);
    net->gflat = asym_falloc(net->n_flat);
    net->dlogits = asym_falloc((size_t)max_batch * spec->classes);
    if (!net->wflat || !net->gflat || !net->dlogits || ctx_alloc_scratch(&net->ctx, &net->seq, spec->keep_activations)) goto fail;
    net->keep_acts = spec->keep_activations;
    size_t off = 0;
    for (int i = 0; i < net->ctx.n_params; i++) {
        AsymParam *p = net->ctx.params[i];
        p->w = net->wflat + off;
        p->g = net->gflat + off;
        off += p->n;
    }
    init_params(&net->ctx, spec->init ? spec->init : ASYM_INIT_TORCH, spec->zero_bias, rng);
    if (feedback_setup(&net->ctx, &net->seq, spec, rng)) goto fail;
    *out = net;
    return ASYM_OK;
fail:
    asym_net_free(net);
    return ASYM_ERR;
}

void asym_net_free(AsymNet *net) {
    if (!net) return;
    seq_free(&net->seq);
    for (int i = 0; i < net_n_tensors(net); i++) {
        AsymParam *p = net_tensor_as_is(net, i);
        if (i >= net->ctx.n_params) free(p->w); /* buffers and feedback matrices own their storage; parameters point into wflat */
        free(p);
    }
    free(net->ctx.params);
    free(net->ctx.buffers);
    free(net->ctx.feedback);
    free(net->ctx.weight_layers);
    ctx_free_scratch(&net->ctx);
    free(net->ctx.mirror);
    free(net->ctx.mirror_gram);
    free(net->ctx.fb_grad);
    free(net->wflat);
    free(net->gflat);
    free(net->dlogits);
    free(net->dx);
    free(net);
}

Seq *net_seq(AsymNet *net) { return &net->seq; }
size_t net_arena_floats(const AsymNet *net, size_t *acts) {
    *acts = net->ctx.arena_acts;
    return net->ctx.arena_size;
}
int net_n_tensors(const AsymNet *net) { return net->ctx.n_params + net->ctx.n_buffers + net->ctx.n_feedback; }

AsymParam *net_tensor_as_is(const AsymNet *net, int i) {
    const NetCtx *c = &net->ctx;
    if (i < c->n_params) return c->params[i];
    i -= c->n_params;
    return i < c->n_buffers ? c->buffers[i] : c->feedback[i - c->n_buffers];
}

int net_tensor_behind(const AsymNet *net, int i) {
    const AsymParam *p = net_tensor_as_is(net, i);
    if (p->role != ASYM_P_FEEDBACK) return 0;
    for (int k = 0; k < net->ctx.n_weight_layers; k++)
        if (net->ctx.weight_layers[k]->B == p) return net->ctx.weight_layers[k]->b_stale;
    return 0;
}

int net_tensor_fixed(const AsymNet *net, int i) {
    const AsymParam *p = net_tensor_as_is(net, i);
    return p->role == ASYM_P_FEEDBACK && feedback_tensor_fixed(&net->ctx, p);
}

int net_feedback_grad_derived(const AsymNet *net, int i) { return feedback_grad_derived(&net->ctx, net_feedback_as_is(net, i)); }

/* B is a cache of what W and the rule's state give: bringing it up to date
 * leaves a const network the same network */
static void bring_feedback_current(const AsymNet *net) { feedback_current((NetCtx *)&net->ctx); }

AsymParam *net_tensor(const AsymNet *net, int i) {
    if (i >= net->ctx.n_params + net->ctx.n_buffers) bring_feedback_current(net);
    return net_tensor_as_is(net, i);
}

Layer *net_weight_layer(const AsymNet *net, int i) { return net->ctx.weight_layers[i]; }
AsymRng *net_rng(AsymNet *net) { return &net->ctx.rng; }
const AsymFeedbackSpec *net_feedback_options(const AsymNet *net) { return &net->ctx.fb; }
int asym_net_n_weight_layers(const AsymNet *net) { return net->ctx.n_weight_layers; }
int asym_net_n_params(const AsymNet *net) { return net->ctx.n_params; }
int asym_net_n_feedback(const AsymNet *net) { return net->ctx.n_feedback; }
AsymParam *net_feedback_as_is(const AsymNet *net, int i) { return i >= 0 && i < net->ctx.n_feedback ? net->ctx.feedback[i] : NULL; }
AsymParam *asym_net_feedback(AsymNet *net, int i) {
    bring_feedback_current(net);
    return net_feedback_as_is(net, i);
}
void asym_net_feedback_update(AsymNet *net) { feedback_after_step(&net->ctx); }
void net_feedback_before_step(AsymNet *net) { feedback_before_step(&net->ctx); }
int asym_net_wm_fallbacks(const AsymNet *net) { return feedback_wm_fallbacks(&net->ctx); }
AsymParam *asym_net_param(AsymNet *net, int i) { return i >= 0 && i < net->ctx.n_params ? net->ctx.params[i] : NULL; }
int asym_net_n_buffers(const AsymNet *net) { return net->ctx.n_buffers; }
AsymParam *asym_net_buffer(AsymNet *net, int i) { return i >= 0 && i < net->ctx.n_buffers ? net->ctx.buffers[i] : NULL; }
size_t asym_net_n_weights(const AsymNet *net) { return net->n_flat; }

StepMode net_mode(AsymNet *net, int train) { return (StepMode){.pass = {.train = train, .rng = &net->ctx.rng}}; }

const float *net_forward(AsymNet *net, const float *x, int N, const StepMode *m) {
    if (N > net->ctx.max_batch) N = net->ctx.max_batch;
    net->last_N = N;
    net->fwd_x = x, net->fwd = m->pass, net->spent = 0;
    if (m->pass.rng) net->fwd_rng = *m->pass.rng;
    seq_forward(&net->seq, x, N, &m->pass);
    return seq_output(&net->seq);
}

float net_backward(AsymNet *net, const int32_t *y, int N, const StepMode *m, int *correct) {
    int hits = 0;
    if (N > net->last_N) N = net->last_N;
    float loss = loss_compute(net->loss, seq_output(&net->seq), y, N, net->classes, m ? net->dlogits : NULL, &hits);
    if (correct) *correct = hits;
    if (m) {
        if (net->spent) {
            Pass again = net->fwd;
            AsymRng r = net->fwd_rng;
            if (again.rng) again.rng = &r;
            again.freeze_stats = 1; /* the running statistics moved once */
            seq_forward(&net->seq, net->fwd_x, net->last_N, &again);
        }
        if (m->grad_scale > 0)
            for (size_t i = 0; i < (size_t)N * net->classes; i++) net->dlogits[i] *= m->grad_scale;
        Pass p = m->pass;
        p.out_err = net->dlogits;
        p.grad_scale = m->grad_scale;
        p.labels = y;
        p.sample_weight = (m->grad_scale > 0 ? m->grad_scale : 1.0f) / (float)N;
        seq_backward(&net->seq, net->dlogits, net->dx, N, &p, m->done, m->done_arg);
        net->spent = !net->keep_acts;
    }
    return loss;
}

const float *asym_net_forward(AsymNet *net, const float *x, int N, int train) {
    StepMode m = net_mode(net, train);
    return net_forward(net, x, N, &m);
}

void asym_net_recompute_stats(AsymNet *net, const float *x, int N, float alpha, int first) {
    StepMode m = net_mode(net, 1);
    m.pass.momentum = first ? 1.0f : alpha;
    net_forward(net, x, N, &m);
}

float asym_net_loss(AsymNet *net, const int32_t *y, int N, int backward, int *correct) {
    StepMode m = net_mode(net, 1);
    return net_backward(net, y, N, backward ? &m : NULL, correct);
}

void asym_net_zero_grad(AsymNet *net) {
    /* in 64 KB pieces shared among the threads: a large net's gradients take a while on one */
    size_t n = net->n_flat, piece = 16384;
    long pieces = (long)((n + piece - 1) / piece);
#pragma omp parallel for schedule(static) if (pieces > 8)
    for (long i = 0; i < pieces; i++) {
        size_t a = (size_t)i * piece, len = n - a < piece ? n - a : piece;
        memset(net->gflat + a, 0, sizeof(float) * len);
    }
    if (net->ctx.n_fb_grad) memset(net->ctx.fb_grad, 0, sizeof(float) * net->ctx.n_fb_grad);
}

float *net_feedback_grads(AsymNet *net, size_t *n) {
    *n = net->ctx.n_fb_grad;
    return net->ctx.fb_grad;
}

void asym_net_keep_input_grad(AsymNet *net, int on) {
    if (on && !net->dx) net->dx = asym_falloc((size_t)net->ctx.max_batch * shape_size(net->seq.in));
    if (!on) {
        free(net->dx);
        net->dx = NULL;
    }
}

const float *asym_net_input_grad(const AsymNet *net) { return net->dx; }
const float *asym_net_logits_grad(const AsymNet *net) { return net->dlogits; }

int net_classes(const AsymNet *net) { return net->classes; }

/* ---- weights on disk ----
 * "ASYMNET1", uint32 count, then per tensor: uint32 name length, name,
 * uint64 float count, floats (little-endian); then the CRC-32 of all that. */

static const char WEIGHTS_MAGIC[8] = {'A', 'S', 'Y', 'M', 'N', 'E', 'T', '1'};

int asym_net_save(const AsymNet *net, const char *path) {
    uint32_t count = (uint32_t)net_n_tensors(net);
    int nparts = 2 + 4 * (int)count + 1, k = 0;
    const void **parts = asym_calloc(nparts, sizeof(void *));
    size_t *lens = asym_calloc(nparts, sizeof(size_t));
    uint32_t *name_len = asym_calloc(count + 1, sizeof(uint32_t));
    uint64_t *n = asym_calloc(count + 1, sizeof(uint64_t));
    int rc = ASYM_ERR;
    if (!parts || !lens || !name_len || !n) goto done;
    parts[k] = WEIGHTS_MAGIC, lens[k++] = 8;
    parts[k] = &count, lens[k++] = 4;
    for (uint32_t i = 0; i < count; i++) {
        const AsymParam *p = net_tensor(net, (int)i);
        name_len[i] = (uint32_t)strlen(p->name);
        n[i] = p->n;
        parts[k] = &name_len[i], lens[k++] = 4;
        parts[k] = p->name, lens[k++] = name_len[i];
        parts[k] = &n[i], lens[k++] = 8;
        parts[k] = p->w, lens[k++] = sizeof(float) * p->n;
    }
    uLong crc = crc32(0, NULL, 0);
    for (int i = 0; i < k; i++) crc = crc32(crc, parts[i], (uInt)lens[i]);
    uint32_t c32 = (uint32_t)crc;
    parts[k] = &c32, lens[k++] = 4;
    rc = io_write_atomic(path, parts, lens, k);
done:
    free(parts);
    free(lens);
    free(name_len);
    free(n);
    return rc;
}

int asym_net_load(AsymNet *net, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return asym_fail("%s: cannot open", path);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = size > 12 ? malloc((size_t)size) : NULL;
    int ok = buf && fread(buf, 1, (size_t)size, f) == (size_t)size;
    fclose(f);
    if (!ok) {
        free(buf);
        return asym_fail("%s: too short or unreadable to be a weights file", path);
    }
    size_t len = (size_t)size - 4, off = 12;
    uint32_t stored, count;
    memcpy(&stored, buf + len, 4);
    memcpy(&count, buf + 8, 4);
    int rc = ASYM_OK;
    if (memcmp(buf, WEIGHTS_MAGIC, 8)) rc = asym_fail("%s: not an asymbp weights file (bad magic)", path);
    else if ((uint32_t)crc32(crc32(0, NULL, 0), buf, (uInt)len) != stored) rc = asym_fail("%s: checksum mismatch (file corrupted)", path);
    else if (count != (uint32_t)net_n_tensors(net))
        rc = asym_fail("%s: holds %u tensors, the network has %d (another architecture or feedback rule?)", path, count, net_n_tensors(net));
    /* check every header first, copy only when all match: a refused load
     * leaves the network as it was */
    for (int pass = 0; pass < 2 && !rc; pass++) {
        off = 12;
        for (uint32_t i = 0; i < count && !rc; i++) {
            AsymParam *p = net_tensor(net, (int)i);
            uint32_t nl;
            uint64_t n;
            if (off + 4 > len) goto trunc;
            memcpy(&nl, buf + off, 4);
            off += 4;
            if (nl > len - off || len - off - nl < 8) goto trunc;
            int same = nl == strlen(p->name) && !memcmp(buf + off, p->name, nl);
            memcpy(&n, buf + off + nl, 8);
            if (!same || n != p->n) {
                rc = asym_fail("%s: tensor %u is '%.*s' with %llu values, the network has '%s' with %zu", path, i, (int)(nl < 64 ? nl : 64), (const char *)buf + off,
                               (unsigned long long)n, p->name, p->n);
                break;
            }
            off += nl + 8;
            if (n > (len - off) / sizeof(float)) goto trunc;
            if (pass) memcpy(p->w, buf + off, n * sizeof(float));
            off += n * sizeof(float);
        }
        if (!rc && off != len) rc = asym_fail("%s: %zu bytes after the last tensor", path, len - off);
    }
    free(buf);
    /* sign-concordant B agree with the loaded W, magnitudes as saved */
    for (int i = 0; i < net->ctx.n_weight_layers && !rc; i++) feedback_follow_weights(net->ctx.weight_layers[i], 1);
    return rc;
trunc:
    free(buf);
    return asym_fail("%s: truncated at byte %zu", path, off);
}
