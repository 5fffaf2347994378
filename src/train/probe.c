/* probe.c: a fixed batch through the network with every tensor written as
 * .npy and a JSON manifest naming them: what researchers use to inspect a
 * rule, and what the PyTorch oracle tests read. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/io.h"
#include "train/train.h"


static const char *role_name(AsymParamRole r) {
    static const char *const names[] = {"?", "weight", "bias", "bn_scale", "bn_shift", "running_mean", "running_var"};
    return (int)r > 0 && (int)r <= ASYM_P_RUNNING_VAR ? names[r] : "?";
}

static json_t *layers_json(const AsymNetSpec *s) {
    json_t *list = json_array();
    for (int i = 0; i < s->n_layers; i++) {
        const AsymLayerSpec *l = &s->layers[i];
        json_t *o = json_pack("{s:s}", "type", layer_kind_name(l->kind));
        switch (l->kind) {
        case ASYM_FC: json_object_update_new(o, json_pack("{s:i, s:b}", "out", l->out, "bias", l->bias)); break;
        case ASYM_CONV:
            json_object_update_new(o, json_pack("{s:i, s:i, s:i, s:i, s:b}", "out", l->out, "k", l->k, "stride", l->stride ? l->stride : 1, "pad", l->pad, "bias", l->bias));
            break;
        case ASYM_MAXPOOL:
        case ASYM_AVGPOOL: json_object_update_new(o, json_pack("{s:i, s:i, s:i}", "k", l->k, "stride", l->stride ? l->stride : l->k, "pad", l->pad)); break;
        case ASYM_BATCHNORM:
            json_object_update_new(o, json_pack("{s:o, s:o}", "momentum", log_num(l->momentum > 0 ? l->momentum : 0.1, "%g"), "eps", log_num(l->eps > 0 ? l->eps : 1e-5, "%g")));
            break;
        case ASYM_DROPOUT: json_object_set_new(o, "p", log_num(l->p, "%g")); break;
        case ASYM_RESBLOCK:
            json_object_update_new(o, json_pack("{s:i, s:i, s:s, s:b, s:o}", "out", l->out, "stride", l->stride ? l->stride : 1, "shortcut",
                                            l->shortcut == ASYM_SHORTCUT_B ? "B" : "A", "bottleneck", l->bottleneck, "momentum",
                                            log_num(l->momentum > 0 ? l->momentum : 0.1, "%g")));
            break;
        default: break;
        }
        json_array_append_new(list, o);
    }
    return list;
}

static int write_array(const char *dir, const char *name, const float *data, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
    char path[4200];
    int64_t shape[4] = {d0, d1, d2, d3};
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return npy_write_f32(path, data, ndim, shape);
}

/* data, shaped like p, as stem + index ("g007.npy") */
static int write_tensor(const char *dir, const char *stem, int i, const AsymParam *p, const float *data) {
    char name[64];
    snprintf(name, sizeof name, "%s%03d.npy", stem, i);
    return write_array(dir, name, data, p->ndim, p->shape[0], p->shape[1], p->shape[2], p->shape[3]);
}

static int is_dir(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* Loads one tensor written by a probe (stem + index) into p, checking its shape. */
static int load_tensor(const char *dir, const char *stem, int i, AsymParam *p) {
    char path[4200];
    float *data;
    int ndim;
    int64_t shape[8];
    snprintf(path, sizeof path, "%s/%s%03d.npy", dir, stem, i);
    if (npy_read_f32(path, &data, &ndim, shape)) return ASYM_ERR;
    int same = ndim == p->ndim;
    for (int d = 0; same && d < ndim; d++) same = shape[d] == p->shape[d];
    if (!same) {
        free(data);
        return asym_fail("%s: shape does not match tensor '%s' of the network", path, p->name);
    }
    memcpy(p->w, data, sizeof(float) * p->n);
    free(data);
    return ASYM_OK;
}

/* Whether the probe folder dir holds feedback matrix i (F###.npy). */
static int has_feedback(const char *dir, int i) {
    char path[4200];
    snprintf(path, sizeof path, "%s/F%03d.npy", dir, i);
    return access(path, F_OK) == 0;
}

/* Weights from a probe folder: p###.npy (parameters), b###.npy (buffers),
 * F###.npy (feedback matrices, when present). */
static int load_probe_dir(AsymNet *net, const char *dir) {
    for (int i = 0; i < asym_net_n_params(net); i++)
        if (load_tensor(dir, "p", i, asym_net_param(net, i))) return ASYM_ERR;
    for (int i = 0; i < asym_net_n_buffers(net); i++)
        if (load_tensor(dir, "b", i, asym_net_buffer(net, i))) return ASYM_ERR;
    for (int i = 0; i < asym_net_n_feedback(net); i++)
        if (has_feedback(dir, i) && load_tensor(dir, "F", i, asym_net_feedback(net, i))) return ASYM_ERR;
    /* sign-concordant B follow the loaded W (keeping a loaded B's magnitudes) */
    for (int i = 0; i < asym_net_n_weight_layers(net); i++) {
        Layer *l = net_weight_layer(net, i);
        int loaded = 0;
        for (int j = 0; j < asym_net_n_feedback(net); j++)
            if (l->fb->B == asym_net_feedback(net, j)) loaded = has_feedback(dir, j);
        feedback_follow_weights(l, loaded);
    }
    return ASYM_OK;
}

/* A probe under way. */
typedef struct Probe {
    const AsymExperiment *ex;
    const char *dir;
    AsymDataset train, val, test;
    AsymNet *net;
    AsymOptim *opt;
    int N, steps, ws;      /* batch, optimizer steps, mirror steps per update */
    float loss;
    uint32_t *seeds;       /* (L, steps, ws) mirror noise seeds, or NULL */
    int *seeds_ok;         /* (L) per weight layer: its seeds are the ones its steps drew */
} Probe;

/* Whether feedback matrix t has a gradient of its own (RULE_OWN_GRAD). */
static int own_grad(AsymNet *net, const AsymParam *t) {
    size_t n;
    const float *g = net_feedback_grads(net, &n);
    return t->g && g && t->g >= g && t->g < g + n;
}

/* The network's tensors before any step (p), their gradients on the batch
 * (g), buffers (b), feedback (F) and the gradients of those a rule trains
 * on a loss of its own (Fg), each weight layer's output error (err)
 * and each top-level activation (act), with x, y, logits, dlogits, dx. */
static int probe_batch(Probe *p, const float *before, float **record) {
    const AsymDataset *d = &p->train;
    AsymNet *net = p->net;
    Seq *top = net_seq(net);
    int N = p->N, K = p->ex->net.classes, rc;
    char path[4200], name[64];
    asym_net_zero_grad(net);
    StepMode m = net_mode(net, 1);
    m.pass.record = record;
    const float *logits = net_forward(net, d->x, N, &m);
    p->loss = net_backward(net, d->y, N, &m, NULL);
    snprintf(path, sizeof path, "%s/y.npy", p->dir);
    int64_t yshape[1] = {N};
    rc = write_array(p->dir, "x.npy", d->x, 4, N, d->c, d->h, d->w) || npy_write_i32(path, d->y, 1, yshape) ||
         write_array(p->dir, "logits.npy", logits, 2, N, K, 0, 0) || write_array(p->dir, "dlogits.npy", asym_net_logits_grad(net), 2, N, K, 0, 0) ||
         write_array(p->dir, "dx.npy", asym_net_input_grad(net), 4, N, d->c, d->h, d->w);
    for (int i = 0, off = 0; i < asym_net_n_params(net) && !rc; off += (int)asym_net_param(net, i)->n, i++) {
        AsymParam *t = asym_net_param(net, i);
        rc = write_tensor(p->dir, "p", i, t, before + off) || write_tensor(p->dir, "g", i, t, t->g);
    }
    for (int i = 0; i < asym_net_n_buffers(net) && !rc; i++) rc = write_tensor(p->dir, "b", i, asym_net_buffer(net, i), asym_net_buffer(net, i)->w);
    for (int i = 0; i < asym_net_n_feedback(net) && !rc; i++) {
        AsymParam *t = asym_net_feedback(net, i);
        rc = write_tensor(p->dir, "F", i, t, t->w) || (own_grad(net, t) && write_tensor(p->dir, "Fg", i, t, t->g));
    }
    for (int i = 0; i < asym_net_n_weight_layers(net) && !rc; i++) {
        Layer *l = net_weight_layer(net, i);
        snprintf(name, sizeof name, "err%03d.npy", i);
        rc = write_array(p->dir, name, record[i], 4, N, l->out.c, l->out.h, l->out.w);
    }
    for (int i = 0; i < top->n && !rc; i++) {
        Layer *l = top->layers[i];
        snprintf(name, sizeof name, "act%03d.npy", i);
        rc = write_array(p->dir, name, top->act[i], 4, N, l->out.c, l->out.h, l->out.w);
    }
    return rc ? ASYM_ERR : ASYM_OK;
}

/* The first step's tensors, with buffers for the output errors and for
 * the parameters before the step. */
static int probe_first(Probe *p) {
    int L = asym_net_n_weight_layers(p->net), np = asym_net_n_params(p->net);
    size_t total = 0;
    for (int i = 0; i < L; i++) total += (size_t)p->N * shape_size(net_weight_layer(p->net, i)->out);
    float *rec = asym_falloc(total ? total : 1), **record = asym_calloc(L ? L : 1, sizeof(float *)), *before = asym_falloc(asym_net_n_weights(p->net));
    int rc = ASYM_ERR;
    if (rec && record && before) {
        for (int i = 0, off = 0; i < L; off += p->N * (int)shape_size(net_weight_layer(p->net, i)->out), i++) record[i] = rec + off;
        for (int i = 0, off = 0; i < np; off += (int)asym_net_param(p->net, i)->n, i++)
            memcpy(before + off, asym_net_param(p->net, i)->w, sizeof(float) * asym_net_param(p->net, i)->n);
        rc = probe_batch(p, before, record);
    }
    free(rec);
    free(record);
    free(before);
    return rc;
}

/* K optimizer steps on the batch, the parameters (a) and feedback (Fa)
 * after them; the noise seeds of every mirror step, per weight layer,
 * drawn from a copy of the layer's generator as the mirror step draws
 * them, and kept only when the last one is the seed the layer reports
 * (wm_seed). */
static int probe_steps(Probe *p) {
    AsymNet *net = p->net;
    int L = asym_net_n_weight_layers(net), steps = p->steps, ws = p->ws;
    if ((steps > 0 && ws > 0 && !(p->seeds = asym_calloc((size_t)L * steps * ws, sizeof *p->seeds))) || !(p->seeds_ok = asym_calloc(L > 0 ? L : 1, sizeof *p->seeds_ok)))
        return ASYM_ERR;
    for (int i = 0; i < L; i++) p->seeds_ok[i] = net_weight_layer(net, i)->fb->rule == ASYM_RULE_WM;
    for (int s = 0; s < steps; s++) {
        if (s > 0) {
            asym_net_zero_grad(net);
            asym_net_forward(net, p->train.x, p->N, 1);
            asym_net_loss(net, p->train.y, p->N, 1, NULL);
        }
        asym_optim_step(p->opt, p->ex->opt.lr);
        uint32_t *at = p->seeds ? p->seeds + (size_t)s * ws : NULL;
        for (int i = 0; i < L && at; i++) {
            AsymRng r = net_weight_layer(net, i)->fb->rng;
            for (int j = 0; j < ws && p->seeds_ok[i]; j++) at[(size_t)i * steps * ws + j] = rng_u32(&r);
        }
        asym_net_feedback_update(net);
        for (int i = 0; i < L && at; i++)
            if (p->seeds_ok[i] && at[(size_t)i * steps * ws + ws - 1] != net_weight_layer(net, i)->fb->wm_seed) p->seeds_ok[i] = 0;
    }
    int rc = 0;
    for (int i = 0; i < asym_net_n_params(net) && !rc; i++) rc = write_tensor(p->dir, "a", i, asym_net_param(net, i), asym_net_param(net, i)->w);
    for (int i = 0; i < asym_net_n_feedback(net) && !rc; i++) rc = write_tensor(p->dir, "Fa", i, asym_net_feedback(net, i), asym_net_feedback(net, i)->w);
    return rc ? ASYM_ERR : ASYM_OK;
}

static json_t *optimizer_json(const AsymOptSpec *o) {
    return json_pack("{s:s, s:f, s:f, s:f, s:b, s:f, s:f, s:f, s:f, s:b}", "name", o->kind == ASYM_ADAM ? "adam" : "sgd", "lr", (double)o->lr, "momentum",
                     (double)o->momentum, "dampening", (double)o->dampening, "nesterov", o->nesterov, "weight_decay", (double)o->weight_decay, "beta1",
                     (double)o->beta1, "beta2", (double)o->beta2, "eps", (double)o->eps, "manhattan", o->manhattan);
}

/* The options that net's rules declare (Rule.keys), under each rule's
 * name: numbers, or the word chosen. */
static void rule_keys_json(json_t *o, AsymNet *net) {
    const AsymFeedbackSpec *fo = net_feedback_options(net);
    for (int r = 1; r <= asym_rule_count(); r++) {
        const RuleKey *keys = rule_get((AsymRule)r)->keys;
        int used = 0;
        for (int i = 0; i < asym_net_n_weight_layers(net); i++) used |= (int)net_weight_layer(net, i)->fb->rule == r;
        json_t *opts = keys && used ? json_object() : NULL;
        for (int k = 0; opts && keys[k].name; k++)
            json_object_set_new(opts, keys[k].name, keys[k].choices ? json_string(keys[k].choices[(int)fo->rule_opt[r][k]]) : json_real(fo->rule_opt[r][k]));
        if (opts) json_object_set_new(o, asym_rule_name(r), opts);
    }
}

static json_t *feedback_json(AsymNet *net) {
    const AsymFeedbackSpec *fo = net_feedback_options(net);
    static const char *const INIT_NAMES[] = {"?", "torch", "xavier_uniform", "xavier_normal", "he_uniform", "he_normal"};
    static const char *const NOISE_NAMES[] = {"?", "uniform", "normal", "orthogonal"};
    json_t *scale = fo->scale > 0 ? json_real(fo->scale) : json_string(fo->scale_he ? "he" : "xavier");
    json_t *o = json_pack("{s:f, s:f, s:b, s:b, s:s, s:f, s:o, s:{s:s, s:f, s:f, s:f, s:i, s:i, s:i}}", "clip_dx", (double)fo->clip_dx, "concordance", (double)fo->concordance,
                     "norm_feedback", fo->norm_feedback, "fixed_weight_norm", fo->fixed_weight_norm, "init", INIT_NAMES[fo->init >= 1 && fo->init <= 5 ? fo->init : 0],
                     "gain", (double)fo->init_gain, "scale", scale, "wm", "noise", NOISE_NAMES[fo->wm_noise >= 1 && fo->wm_noise <= 3 ? fo->wm_noise : 0], "std",
                     (double)fo->wm_std, "lr", (double)fo->wm_lr, "decay", (double)fo->wm_decay, "steps", fo->wm_steps, "batch", fo->wm_batch, "presweep", fo->wm_presweep);
    if (o) rule_keys_json(o, net);
    return o;
}

static json_t *shape_json(const AsymParam *t) {
    json_t *a = json_array();
    for (int d = 0; d < t->ndim; d++) json_array_append_new(a, json_integer(t->shape[d]));
    return a;
}

static json_t *file_name(const char *stem, int i) { return json_sprintf("%s%03d.npy", stem, i); }

/* params, buffers and feedback: each tensor's name, shape and files */
static void tensors_json(json_t *o, AsymNet *net) {
    json_t *params = json_array(), *buffers = json_array(), *feedback = json_array();
    for (int i = 0; i < asym_net_n_params(net); i++) {
        AsymParam *t = asym_net_param(net, i);
        json_array_append_new(params, json_pack("{s:s, s:s, s:o, s:o, s:o, s:o}", "name", t->name, "role", role_name(t->role), "shape", shape_json(t), "value",
                                                file_name("p", i), "grad", file_name("g", i), "after", file_name("a", i)));
    }
    for (int i = 0; i < asym_net_n_buffers(net); i++) {
        AsymParam *t = asym_net_buffer(net, i);
        json_array_append_new(buffers, json_pack("{s:s, s:s, s:[i], s:o}", "name", t->name, "role", role_name(t->role), "shape", t->shape[0], "value", file_name("b", i)));
    }
    for (int i = 0; i < asym_net_n_feedback(net); i++) {
        AsymParam *t = asym_net_feedback(net, i);
        json_t *f = json_pack("{s:s, s:o, s:o, s:o}", "name", t->name, "shape", shape_json(t), "value", file_name("F", i), "after", file_name("Fa", i));
        if (own_grad(net, t)) json_object_set_new(f, "grad", file_name("Fg", i));
        json_array_append_new(feedback, f);
    }
    json_object_set_new(o, "params", params);
    json_object_set_new(o, "buffers", buffers);
    json_object_set_new(o, "feedback", feedback);
}

/* Each weight layer: its rule, the indices of its W, B and D among the
 * tensors, its error file; under wm the mirror batch and noise seeds (the
 * latest, and those of every mirror step of the K steps, in order). */
static json_t *weight_layers_json(const Probe *p) {
    AsymNet *net = p->net;
    json_t *list = json_array();
    int nf = asym_net_n_feedback(net), n = p->seeds ? p->steps * p->ws : 0;
    for (int i = 0; i < asym_net_n_weight_layers(net); i++) {
        Layer *l = net_weight_layer(net, i);
        int wi = 0, fi = -1, di = -1;
        while (asym_net_param(net, wi) != l->W) wi++;
        for (int j = 0; j < nf; j++) {
            if (l->fb->B == asym_net_feedback(net, j)) fi = j;
            if (l->fb->D == asym_net_feedback(net, j)) di = j;
        }
        json_t *o = json_pack("{s:s, s:s, s:i, s:i, s:i, s:o}", "name", l->name, "rule", asym_rule_name(l->fb->rule), "weight", wi, "feedback", fi, "dfa", di, "error",
                              file_name("err", i));
        if (l->fb->rule == ASYM_RULE_WM) {
            json_t *seeds = p->seeds && !p->seeds_ok[i] ? json_null() : json_array();
            for (int j = 0; json_is_array(seeds) && j < n; j++) json_array_append_new(seeds, json_integer(p->seeds[(size_t)i * n + j]));
            json_object_set_new(o, "mirror", json_pack("{s:i, s:I, s:o}", "n", l->fb->wm_n, "seed", (json_int_t)l->fb->wm_seed, "seeds", seeds));
        }
        json_array_append_new(list, o);
    }
    return list;
}

/* manifest.json: what every file of the probe holds */
static int write_manifest(const Probe *p) {
    const AsymDataset *d = &p->train;
    const AsymExperiment *ex = p->ex;
    json_t *o = json_pack("{s:s, s:i, s:[i, i, i, i], s:i, s:s, s:f, s:s, s:s, s:s, s:s, s:s}", "format", "asymbp-probe-1", "batch", p->N, "input_shape", p->N, d->c, d->h,
                          d->w, "classes", ex->net.classes, "loss", ex->net.loss == ASYM_LOSS_SIGMOID_BCE ? "sigmoid_bce" : "softmax_ce", "loss_value", (double)p->loss, "x",
                          "x.npy", "y", "y.npy", "logits", "logits.npy", "dlogits", "dlogits.npy", "dx", "dx.npy");
    json_t *acts = json_array();
    for (int i = 0; i < net_seq(p->net)->n; i++) json_array_append_new(acts, file_name("act", i));
    if (o) {
        json_object_set_new(o, "layers", layers_json(&ex->net));
        json_object_set_new(o, "optimizer", optimizer_json(&ex->opt));
        json_object_set_new(o, "steps", json_integer(p->steps));
        json_object_set_new(o, "feedback_options", feedback_json(p->net));
        tensors_json(o, p->net);
        json_object_set_new(o, "weight_layers", weight_layers_json(p));
    }
    json_object_set_new(o, "activations", acts);
    char path[4200];
    snprintf(path, sizeof path, "%s/manifest.json", p->dir);
    char *text = o ? json_dumps(o, JSON_INDENT(2) | JSON_REAL_PRECISION(9)) : NULL;
    json_decref(o);
    if (!text) return asym_fail("%s: out of memory", path);
    const void *parts[2] = {text, "\n"};
    size_t lens[2] = {strlen(text), 1};
    int rc = io_write_atomic(path, parts, lens, 2);
    free(text);
    return rc;
}

/* A streamed set (format imagenet): its first n training images through
 * the evaluation transform, the batch training measures alignment on; an
 * unreadable one fails, naming the file. */
static int stream_batch(const AsymExperiment *ex, int n, AsymDataset *d) {
    const AsymDataSpec *s = &ex->data;
    StreamData sd;
    memset(&sd, 0, sizeof sd);
    memset(d, 0, sizeof *d);
    if (stream_data_open(s, ex->seed, &sd)) return ASYM_ERR;
    size_t in = (size_t)s->c * s->h * s->w;
    d->n = n < sd.train.n ? n : sd.train.n, d->c = s->c, d->h = s->h, d->w = s->w, d->classes = sd.train.classes;
    d->x = asym_falloc((size_t)(d->n ? d->n : 1) * in);
    d->y = asym_calloc(d->n ? d->n : 1, sizeof(int32_t));
    int rc = d->x && d->y ? ASYM_OK : ASYM_ERR;
    for (int i = 0; !rc && i < d->n; i++) {
        rc = sample_make(&sd.train_m, 0, 0, i, d->x + i * in);
        d->y[i] = sd.train.y[i];
    }
    stream_data_free(&sd);
    if (rc) asym_dataset_free(d);
    return rc;
}

int asym_probe(const AsymExperiment *ex, const char *weights, int batch, int steps, const char *dir) {
    Probe p = {.ex = ex, .dir = dir, .steps = steps};
    int rc = ASYM_ERR;
    experiment_threads(ex);
    if (data_streamed(&ex->data) ? stream_batch(ex, batch, &p.train) : asym_experiment_data(ex, 1, &p.train, &p.val, &p.test)) return ASYM_ERR;
    p.N = batch > p.train.n ? p.train.n : batch;
    AsymRng rng;
    rng_seed(&rng, ex->seed);
    AsymNetSpec spec = ex->net;
    spec.keep_activations = 1; /* every layer's output is written */
    if (!asym_net_create(&p.net, &spec, p.N, &rng) && !(weights && (is_dir(weights) ? load_probe_dir(p.net, weights) : asym_net_load(p.net, weights))) &&
        !asym_optim_create(&p.opt, p.net, &ex->opt)) {
        asym_net_keep_input_grad(p.net, 1);
        p.ws = net_feedback_options(p.net)->wm_steps > 0 ? net_feedback_options(p.net)->wm_steps : 0;
        rc = io_mkdir_p(dir) || probe_first(&p) || probe_steps(&p) || write_manifest(&p) ? ASYM_ERR : ASYM_OK;
    }
    free(p.seeds);
    free(p.seeds_ok);
    asym_optim_free(p.opt);
    asym_net_free(p.net);
    asym_dataset_free(&p.train);
    asym_dataset_free(&p.val);
    asym_dataset_free(&p.test);
    return rc;
}
