/* state.c: what the library keeps in a checkpoint (docs/CHECKPOINT.md):
 * every tensor of the network (parameters, batch-norm running statistics,
 * feedback matrices), each weight layer's rule and feedback state (its
 * generator, brsf/frsf magnitudes, concordance signs, initial norm), the
 * dropout generator, the optimizer's buffers and step count, and the
 * training loop's own state (data order, epoch and step, results so far,
 * the log). Loading compares the checkpoint with the network built from the
 * config, names the first difference, and changes nothing unless all of it
 * matches. */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "train/train.h"


#define RESULTS 8   /* "results": the AsymSummary fields a resumed run continues from */
#define ALIGN 5     /* "align/...": angle, norm ratio, sign agreement, delta angle, gradient angle */

/* ---- the network's tensors, in a fixed order ---- */

/* Tensor i (net_tensor's order); *prefix names its kind in the file. */
static AsymParam *tensor(AsymNet *net, int i, const char **prefix) {
    int np = asym_net_n_params(net);
    *prefix = i < np ? "param" : i < np + asym_net_n_buffers(net) ? "buffer" : "feedback";
    return net_tensor(net, i);
}

/* "layer 3 conv weight" from a tensor name ("3.W") and its dimension count. */
static void describe(char *out, size_t n, const char *name, int ndim) {
    static const char *const WHAT[][2] = {{"b", "bias"},
                                          {"gamma", "batch-norm scale"},
                                          {"beta", "batch-norm shift"},
                                          {"running_mean", "batch-norm running mean"},
                                          {"running_var", "batch-norm running variance"},
                                          {"B", "feedback matrix B"},
                                          {"D", "DFA projection D"},
                                          {"F", "pfa factor F"},
                                          {"R", "pfa factor R"}};
    const char *dot = strrchr(name, '.'), *suffix = dot ? dot + 1 : name, *what = suffix;
    int layer = dot ? (int)(dot - name) : 0;
    if (!strcmp(suffix, "W")) what = ndim == 4 ? "conv weight" : "fc weight";
    for (size_t i = 0; i < sizeof WHAT / sizeof WHAT[0]; i++)
        if (!strcmp(suffix, WHAT[i][0])) what = WHAT[i][1];
    if (dot) snprintf(out, n, "layer %.*s %s", layer, name, what);
    else snprintf(out, n, "tensor %s", name);
}

static void shape_str(char *out, size_t n, int ndim, const int64_t *dims) {
    size_t k = 0;
    out[0] = 0;
    if (ndim == 0) snprintf(out, n, "scalar");
    for (int d = 0; d < ndim && k < n; d++) k += snprintf(out + k, n - k, "%s%lld", d ? "x" : "", (long long)dims[d]);
}

static void param_dims(const AsymParam *p, int64_t *dims) {
    for (int d = 0; d < p->ndim; d++) dims[d] = p->shape[d];
}

/* The record `name` if it has type and count elements, else NULL and a message. */
static const CkptRecord *need(const AsymCheckpoint *ck, const char *name, CkptType type, size_t count) {
    const CkptRecord *r = ckpt_find(ck, name);
    if (!r || r->type != type || r->count != count) {
        asym_fail("%s: record '%s' is %s (expected %zu %s values): the checkpoint is incomplete", ck->path, name, r ? "of another type or size" : "missing", count,
                  ckpt_type_name(type));
        return NULL;
    }
    return r;
}

/* The optimizer's name in a checkpoint ("sgd", "adam"); its buffers and step count. */
static const char *optim_parts(const AsymOptim *opt, float **m, float **v, long **t) {
    AsymOptKind kind;
    optim_state((AsymOptim *)opt, &kind, m, v, t);
    return kind == ASYM_ADAM ? "adam" : "sgd";
}

/* ---- saving ---- */

/* One line per tensor, weight layer and the optimizer: what the network is. */
static char *arch_text(AsymNet *net, const AsymOptim *opt, size_t *len) {
    char *text = NULL;
    FILE *f = open_memstream(&text, len);
    if (!f) return NULL;
    for (int i = 0; i < net_n_tensors(net); i++) {
        const char *prefix;
        AsymParam *p = tensor(net, i, &prefix);
        int64_t dims[4];
        char shape[96];
        param_dims(p, dims);
        shape_str(shape, sizeof shape, p->ndim, dims);
        fprintf(f, "%s %s %s\n", prefix, p->name, shape);
    }
    for (int i = 0; i < asym_net_n_weight_layers(net); i++) fprintf(f, "rule %s %s\n", net_weight_layer(net, i)->name, asym_rule_name(net_weight_layer(net, i)->fb->rule));
    float *m, *v;
    long *t;
    if (opt) fprintf(f, "optimizer %s\n", optim_parts(opt, &m, &v, &t));
    if (fclose(f) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

static void put_net(CkptWriter *w, AsymNet *net, const AsymOptim *opt) {
    char name[CKPT_MAX_NAME + 1];
    int64_t dims[4], four = 4;
    for (int i = 0; i < net_n_tensors(net); i++) {
        const char *prefix;
        AsymParam *p = tensor(net, i, &prefix);
        snprintf(name, sizeof name, "%s/%s", prefix, p->name);
        param_dims(p, dims);
        ckpt_put(w, name, CKPT_F32, p->ndim, dims, p->w);
    }
    for (int i = 0; i < asym_net_n_weight_layers(net); i++) {
        Layer *l = net_weight_layer(net, i);
        Feedback *fb = l->fb;
        const char *rule = asym_rule_name(fb->rule);
        param_dims(l->W, dims);
        snprintf(name, sizeof name, "rule/%s", l->name);
        ckpt_put_text(w, name, rule, strlen(rule));
        snprintf(name, sizeof name, "rng/%s", l->name);
        ckpt_put(w, name, CKPT_U64, 1, &four, fb->rng.s);
        snprintf(name, sizeof name, "fb/%s.w0norm", l->name);
        ckpt_put(w, name, CKPT_F64, 0, NULL, &fb->w0norm);
        snprintf(name, sizeof name, "fb/%s.M", l->name);
        if (fb->M) ckpt_put(w, name, CKPT_F32, l->W->ndim, dims, fb->M);
        snprintf(name, sizeof name, "fb/%s.sign", l->name);
        if (fb->sign) ckpt_put(w, name, CKPT_F32, l->W->ndim, dims, fb->sign);
    }
    ckpt_put(w, "rng/dropout", CKPT_U64, 1, &four, net_rng(net)->s);
    if (!opt) return;
    float *m, *v;
    long *t;
    const char *oname = optim_parts(opt, &m, &v, &t);
    ckpt_put_text(w, "optimizer", oname, strlen(oname));
    ckpt_put_i64(w, "optim/t", *t);
    /* the optimizer's order: parameters, then feedback matrices with a gradient (kp) */
    size_t off = 0;
    for (int i = 0, np = asym_net_n_params(net); i < np + asym_net_n_feedback(net); i++) {
        AsymParam *p = i < np ? asym_net_param(net, i) : asym_net_feedback(net, i - np);
        if (i >= np && !p->g) continue;
        param_dims(p, dims);
        snprintf(name, sizeof name, "optim/m/%s", p->name);
        ckpt_put(w, name, CKPT_F32, p->ndim, dims, m + off);
        snprintf(name, sizeof name, "optim/v/%s", p->name);
        if (v) ckpt_put(w, name, CKPT_F32, p->ndim, dims, v + off);
        off += p->n;
    }
}

/* Writes the records of net and opt and then `more` (may be NULL). */
static int save(const char *path, AsymNet *net, const AsymOptim *opt, void (*more)(CkptWriter *, const void *), const void *arg) {
    size_t arch_len;
    char *arch = arch_text(net, opt, &arch_len);
    CkptWriter *w = ckpt_writer_new();
    if (!arch || !w) {
        free(arch);
        ckpt_writer_free(w);
        return asym_fail("%s: out of memory", path);
    }
    ckpt_put_text(w, "asymbp", ASYM_VERSION, strlen(ASYM_VERSION));
    ckpt_put_text(w, "arch", arch, arch_len);
    put_net(w, net, opt);
    if (more) more(w, arg);
    int rc = ckpt_write(w, path);
    free(arch);
    return rc;
}

int asym_checkpoint_save(const char *path, AsymNet *net, const AsymOptim *opt) { return save(path, net, opt, NULL, NULL); }

/* ---- loading ---- */

/* pfa steps B = F R itself under SGD and keeps R otherwise (pfa.c): a
 * factor R present on one side only says which. */
static const char *pfa_hint(const char *name, int in_config) {
    const char *dot = strrchr(name, '.');
    if (!dot || strcmp(dot, ".R")) return "";
    return in_config ? " (the checkpoint's pfa layers step B itself: train them with SGD and feedback.pfa.update auto)"
                     : " (the checkpoint's pfa layers step R: set feedback.pfa.update: factor to resume it)";
}

/* Does the checkpoint hold this network (and optimizer)? Names the first difference. */
static int check_net(const AsymCheckpoint *ck, AsymNet *net, const AsymOptim *opt) {
    char name[CKPT_MAX_NAME + 1], what[160], s1[96], s2[96];
    int64_t dims[4];
    for (int i = 0; i < asym_net_n_weight_layers(net); i++) {
        Layer *l = net_weight_layer(net, i);
        snprintf(name, sizeof name, "rule/%s", l->name);
        const CkptRecord *r = ckpt_find(ck, name);
        const char *rule = asym_rule_name(l->fb->rule);
        if (r && (r->type != CKPT_TEXT || strcmp(r->text, rule)))
            return asym_fail("%s: layer %s: rule %.16s in the checkpoint, %s in the config", ck->path, l->name, r->type == CKPT_TEXT ? r->text : "?", rule);
    }
    for (int i = 0; i < net_n_tensors(net); i++) {
        const char *prefix;
        AsymParam *p = tensor(net, i, &prefix);
        snprintf(name, sizeof name, "%s/%s", prefix, p->name);
        describe(what, sizeof what, p->name, p->ndim);
        param_dims(p, dims);
        shape_str(s2, sizeof s2, p->ndim, dims);
        const CkptRecord *r = ckpt_find(ck, name);
        if (!r) return asym_fail("%s: %s (%s, shape %s) is in the config's network but not in the checkpoint%s", ck->path, what, p->name, s2, pfa_hint(p->name, 1));
        int same = r->type == CKPT_F32 && r->ndim == p->ndim;
        for (int d = 0; same && d < p->ndim; d++) same = r->dims[d] == p->shape[d];
        shape_str(s1, sizeof s1, r->ndim, r->dims);
        if (!same) return asym_fail("%s: %s has shape %s in the checkpoint, %s in the config", ck->path, what, s1, s2);
    }
    /* tensors of the checkpoint that the network lacks */
    for (int k = 0; k < ck->n; k++) {
        const CkptRecord *r = &ck->rec[k];
        const char *slash = strchr(r->name, '/');
        if (!slash || (strncmp(r->name, "param/", 6) && strncmp(r->name, "buffer/", 7) && strncmp(r->name, "feedback/", 9))) continue;
        int found = 0;
        for (int i = 0; i < net_n_tensors(net) && !found; i++) {
            const char *prefix;
            AsymParam *p = tensor(net, i, &prefix);
            found = (size_t)(slash - r->name) == strlen(prefix) && !strncmp(r->name, prefix, strlen(prefix)) && !strcmp(slash + 1, p->name);
        }
        if (!found) {
            describe(what, sizeof what, slash + 1, r->ndim);
            shape_str(s1, sizeof s1, r->ndim, r->dims);
            return asym_fail("%s: %s (%s, shape %s) is in the checkpoint but not in the config's network%s", ck->path, what, slash + 1, s1, pfa_hint(slash + 1, 0));
        }
    }
    for (int i = 0; i < asym_net_n_weight_layers(net); i++) {
        Layer *l = net_weight_layer(net, i);
        snprintf(name, sizeof name, "rule/%s", l->name);
        if (!need(ck, name, CKPT_TEXT, strlen(asym_rule_name(l->fb->rule)))) return ASYM_ERR;
        snprintf(name, sizeof name, "rng/%s", l->name);
        if (!need(ck, name, CKPT_U64, 4)) return ASYM_ERR;
        snprintf(name, sizeof name, "fb/%s.w0norm", l->name);
        if (!need(ck, name, CKPT_F64, 1)) return ASYM_ERR;
        snprintf(name, sizeof name, "fb/%s.M", l->name);
        if (l->fb->M && !need(ck, name, CKPT_F32, l->W->n)) return ASYM_ERR;
        snprintf(name, sizeof name, "fb/%s.sign", l->name);
        if (l->fb->sign && !need(ck, name, CKPT_F32, l->W->n))
            return asym_fail("%s: layer %s: the config asks for partial sign concordance, the checkpoint has none", ck->path, l->name);
        if (!l->fb->sign && ckpt_find(ck, name))
            return asym_fail("%s: layer %s: the checkpoint has partial sign concordance, the config asks for none", ck->path, l->name);
    }
    if (!need(ck, "rng/dropout", CKPT_U64, 4)) return ASYM_ERR;
    if (!opt) return ASYM_OK;
    float *m, *v;
    long *t;
    const char *oname = optim_parts(opt, &m, &v, &t), *have = asym_checkpoint_text(ck, "optimizer");
    if (!have) return asym_fail("%s: holds no optimizer state", ck->path);
    if (strcmp(have, oname)) return asym_fail("%s: optimizer %.16s in the checkpoint, %s in the config", ck->path, have, oname);
    if (!need(ck, "optim/t", CKPT_I64, 1)) return ASYM_ERR;
    for (int i = 0, np = asym_net_n_params(net); i < np + asym_net_n_feedback(net); i++) {
        AsymParam *p = i < np ? asym_net_param(net, i) : asym_net_feedback(net, i - np);
        if (i >= np && !p->g) continue;
        snprintf(name, sizeof name, "optim/m/%s", p->name);
        if (!need(ck, name, CKPT_F32, p->n)) return ASYM_ERR;
        snprintf(name, sizeof name, "optim/v/%s", p->name);
        if (v && !need(ck, name, CKPT_F32, p->n)) return ASYM_ERR;
    }
    return ASYM_OK;
}

/* Copies record name (checked by check_net) into dst. */
static void take(const AsymCheckpoint *ck, const char *name, void *dst) {
    const CkptRecord *r = ckpt_find(ck, name);
    memcpy(dst, r->data, r->count * ckpt_type_size(r->type));
}

static void restore_net(const AsymCheckpoint *ck, AsymNet *net, AsymOptim *opt) {
    char name[CKPT_MAX_NAME + 1];
    for (int i = 0; i < net_n_tensors(net); i++) {
        const char *prefix;
        AsymParam *p = tensor(net, i, &prefix);
        snprintf(name, sizeof name, "%s/%s", prefix, p->name);
        take(ck, name, p->w);
    }
    for (int i = 0; i < asym_net_n_weight_layers(net); i++) {
        Layer *l = net_weight_layer(net, i);
        snprintf(name, sizeof name, "rng/%s", l->name);
        take(ck, name, l->fb->rng.s);
        snprintf(name, sizeof name, "fb/%s.w0norm", l->name);
        take(ck, name, &l->fb->w0norm);
        snprintf(name, sizeof name, "fb/%s.M", l->name);
        if (l->fb->M) take(ck, name, l->fb->M);
        snprintf(name, sizeof name, "fb/%s.sign", l->name);
        if (l->fb->sign) take(ck, name, l->fb->sign);
    }
    take(ck, "rng/dropout", net_rng(net)->s);
    if (!opt) return;
    float *m, *v;
    long *t;
    int64_t t64;
    optim_parts(opt, &m, &v, &t);
    take(ck, "optim/t", &t64);
    *t = (long)t64;
    size_t off = 0;
    for (int i = 0, np = asym_net_n_params(net); i < np + asym_net_n_feedback(net); i++) {
        AsymParam *p = i < np ? asym_net_param(net, i) : asym_net_feedback(net, i - np);
        if (i >= np && !p->g) continue;
        snprintf(name, sizeof name, "optim/m/%s", p->name);
        take(ck, name, m + off);
        snprintf(name, sizeof name, "optim/v/%s", p->name);
        if (v) take(ck, name, v + off);
        off += p->n;
    }
}

int asym_checkpoint_load(const char *path, AsymNet *net, AsymOptim *opt) {
    AsymCheckpoint *ck;
    if (asym_checkpoint_open(&ck, path)) return ASYM_ERR;
    int rc = check_net(ck, net, opt);
    if (!rc) restore_net(ck, net, opt);
    asym_checkpoint_close(ck);
    return rc;
}

int asym_checkpoint_check(const char *path, const AsymExperiment *ex) {
    AsymCheckpoint *ck = NULL;
    AsymNet *net = NULL;
    AsymOptim *opt = NULL;
    AsymRng rng;
    rng_seed(&rng, ex->seed);
    int rc = asym_checkpoint_open(&ck, path);
    if (!rc) rc = asym_net_create(&net, &ex->net, 1, &rng);
    if (!rc) rc = asym_optim_create(&opt, net, &ex->opt);
    if (!rc) rc = check_net(ck, net, opt);
    asym_optim_free(opt);
    asym_net_free(net);
    asym_checkpoint_close(ck);
    return rc;
}

/* ---- the training loop's state ---- */

uint32_t state_data_crc(const AsymDataset *train, const AsymDataset *val, const AsymDataset *test) {
    const AsymDataset *sets[3] = {train, val, test};
    uLong c = crc32_z(0, NULL, 0);
    for (int i = 0; i < 3; i++) {
        const AsymDataset *d = sets[i];
        if (!d->n) continue;
        /* streamed sets hold labels alone */
        if (d->x) c = crc32_z(c, (const Bytef *)d->x, sizeof(float) * (size_t)d->n * d->c * d->h * d->w);
        c = crc32_z(c, (const Bytef *)d->y, sizeof(int32_t) * (size_t)d->n);
    }
    return (uint32_t)c;
}

static void results_pack(const AsymSummary *s, double *v) {
    double r[RESULTS] = {s->best_test_err, s->best_epoch, s->final_test_err, s->epochs, s->best_val_err, s->best_val_epoch, s->test_err_at_best_val,
                         s->final_mean_angle};
    memcpy(v, r, sizeof r);
}

static void results_unpack(const double *v, AsymSummary *s) {
    s->best_test_err = v[0];
    s->best_epoch = (int)v[1];
    s->final_test_err = v[2];
    s->epochs = (int)v[3];
    s->best_val_err = v[4];
    s->best_val_epoch = (int)v[5];
    s->test_err_at_best_val = v[6];
    s->final_mean_angle = v[7];
}

static void align_pack(const AsymAlignment *a, int n, double *v) {
    for (int i = 0; i < n; i++) {
        double *o = v + ALIGN * i;
        o[0] = a[i].angle, o[1] = a[i].norm_ratio, o[2] = a[i].sign_agree, o[3] = a[i].delta_angle, o[4] = a[i].grad_angle;
    }
}

static void align_unpack(const double *v, int n, AsymNet *net, AsymAlignment *a) {
    for (int i = 0; i < n; i++) {
        const double *o = v + ALIGN * i;
        memset(&a[i], 0, sizeof a[i]);
        snprintf(a[i].name, sizeof a[i].name, "%s", net_weight_layer(net, i)->name);
        a[i].rule = net_weight_layer(net, i)->fb->rule;
        a[i].angle = o[0], a[i].norm_ratio = o[1], a[i].sign_agree = o[2], a[i].delta_angle = o[3], a[i].grad_angle = o[4];
    }
}

typedef struct RunPut {
    const RunState *rs;
    double acc[3], totals[3], results[RESULTS], *align;
} RunPut;

static void put_run(CkptWriter *w, const void *arg) {
    const RunPut *rp = arg;
    const RunState *rs = rp->rs;
    int64_t data[3] = {rs->n_train, rs->n_val, rs->n_test}, three = 3, n = rs->n_train, four = 4, adims[2] = {rs->n_layers, ALIGN};
    if (rs->config) ckpt_put_text(w, "config", rs->config, rs->config_len);
    ckpt_put_i64(w, "epoch", rs->epoch);
    ckpt_put_i64(w, "batch", rs->batch);
    ckpt_put_i64(w, "batch_size", rs->batch_size);
    ckpt_put_i64(w, "threads", rs->threads);
    ckpt_put_i64(w, "ranks", rs->ranks > 0 ? rs->ranks : 1);
    ckpt_put_u64(w, "seed", rs->sum.seed);
    ckpt_put(w, "data", CKPT_I64, 1, &three, data);
    ckpt_put_u64(w, "data_crc", rs->data_crc);
    ckpt_put(w, "rng/order", CKPT_U64, 1, &four, rs->order.s);
    ckpt_put(w, "perm", CKPT_I32, 1, &n, rs->perm);
    ckpt_put_f64(w, "epoch_acc", rp->acc, 3);
    ckpt_put_f64(w, "totals", rp->totals, 3);
    ckpt_put_f64(w, "results", rp->results, RESULTS);
    ckpt_put(w, "align/initial", CKPT_F64, 2, adims, rp->align);
    ckpt_put(w, "align/last", CKPT_F64, 2, adims, rp->align + ALIGN * rs->n_layers);
    ckpt_put_text(w, "log", rs->log, rs->log_len);
}

int state_save_run(const char *path, AsymNet *net, const AsymOptim *opt, const RunState *rs) {
    RunPut rp = {.rs = rs,
                 .acc = {rs->loss_sum, (double)rs->wrong, rs->epoch_seconds},
                 .totals = {rs->seconds, rs->train_seconds, (double)rs->images},
                 .align = malloc(sizeof(double) * 2 * ALIGN * (rs->n_layers ? rs->n_layers : 1))};
    if (!rp.align) return asym_fail("%s: out of memory", path);
    results_pack(&rs->sum, rp.results);
    align_pack(rs->initial, rs->n_layers, rp.align);
    align_pack(rs->last, rs->n_layers, rp.align + ALIGN * rs->n_layers);
    int rc = save(path, net, opt, put_run, &rp);
    free(rp.align);
    return rc;
}

/* The run records, checked against rs's data and batch size. */
static int check_run(const AsymCheckpoint *ck, const RunState *rs, int batches) {
    const CkptRecord *r;
    int64_t epoch, batch, bs, data[3];
    uint64_t crc;
    if (!need(ck, "epoch", CKPT_I64, 1) || !need(ck, "batch", CKPT_I64, 1) || !need(ck, "batch_size", CKPT_I64, 1) || !need(ck, "data", CKPT_I64, 3) ||
        !need(ck, "data_crc", CKPT_U64, 1) || !need(ck, "rng/order", CKPT_U64, 4) || !need(ck, "epoch_acc", CKPT_F64, 3) || !need(ck, "totals", CKPT_F64, 3) ||
        !need(ck, "results", CKPT_F64, RESULTS) || !need(ck, "align/initial", CKPT_F64, (size_t)ALIGN * rs->n_layers) ||
        !need(ck, "align/last", CKPT_F64, (size_t)ALIGN * rs->n_layers) || !(r = ckpt_find(ck, "log")) || r->type != CKPT_TEXT)
        return ck->n && ckpt_find(ck, "epoch") ? ASYM_ERR : asym_fail("%s: holds no training run (written by asym_checkpoint_save?)", ck->path);
    take(ck, "epoch", &epoch);
    take(ck, "batch", &batch);
    take(ck, "batch_size", &bs);
    take(ck, "data", data);
    take(ck, "data_crc", &crc);
    if (data[0] != rs->n_train || data[1] != rs->n_val || data[2] != rs->n_test)
        return asym_fail("%s: written for %lld training, %lld validation and %lld test images; the data now give %d, %d and %d", ck->path, (long long)data[0],
                         (long long)data[1], (long long)data[2], rs->n_train, rs->n_val, rs->n_test);
    if (crc != rs->data_crc)
        return asym_fail("%s: the prepared data differ from the checkpoint's (another data set, sampling, split or normalization)", ck->path);
    /* data-parallel runs (docs/MPI.md): the ranks split each batch, so a resume needs as many */
    int64_t ranks = 1;
    if ((r = ckpt_find(ck, "ranks")) && r->type == CKPT_I64 && r->count == 1) take(ck, "ranks", &ranks);
    int here = rs->ranks > 0 ? rs->ranks : 1;
    if (ranks != here && ranks == 1)
        return asym_fail("%s: written by a run on one process; resume it without mpirun (or with mpirun -np 1), not on %d ranks", ck->path, here);
    if (ranks != here)
        return asym_fail("%s: written by a run on %lld MPI ranks; resume it with mpirun -np %lld (this run has %d)", ck->path, (long long)ranks, (long long)ranks, here);
    if (epoch < 0 || epoch > 100000000 || batch < 0 || batch > batches) return asym_fail("%s: epoch %lld, batch %lld out of range", ck->path, (long long)epoch, (long long)batch);
    if (batch > 0 && bs != rs->batch_size)
        return asym_fail("%s: stopped inside an epoch at batch size %lld; resume it with that batch size, not %d", ck->path, (long long)bs, rs->batch_size);
    if (!(r = need(ck, "perm", CKPT_I32, (size_t)rs->n_train))) return ASYM_ERR;
    /* the data order indexes the training set: it must be a permutation */
    unsigned char *seen = calloc(rs->n_train ? rs->n_train : 1, 1);
    if (!seen) return asym_fail("out of memory");
    int ok = 1;
    for (int i = 0; i < rs->n_train && ok; i++) {
        int32_t j;
        memcpy(&j, r->data + 4 * (size_t)i, 4);
        ok = j >= 0 && j < rs->n_train && !seen[j];
        if (ok) seen[j] = 1;
    }
    free(seen);
    return ok ? ASYM_OK : asym_fail("%s: the stored data order is not a permutation of the training set", ck->path);
}

int state_load_run(const char *path, AsymNet *net, AsymOptim *opt, RunState *rs) {
    AsymCheckpoint *ck;
    if (asym_checkpoint_open(&ck, path)) return ASYM_ERR;
    int batches = rs->batch_size > 0 ? (rs->n_train + rs->batch_size - 1) / rs->batch_size : 0;
    int rc = check_net(ck, net, opt);
    if (!rc) rc = check_run(ck, rs, batches);
    const CkptRecord *log = ckpt_find(ck, "log");
    char *text = NULL;
    if (!rc && !(text = malloc(log ? log->count + 1 : 1))) rc = asym_fail("out of memory");
    double *align = NULL;
    if (!rc && !(align = malloc(sizeof(double) * ALIGN * (rs->n_layers ? rs->n_layers : 1)))) rc = asym_fail("out of memory");
    if (rc) {
        free(text);
        asym_checkpoint_close(ck);
        return rc;
    }
    restore_net(ck, net, opt);
    int64_t v;
    double acc[3], totals[3], results[RESULTS];
    uint64_t seed;
    take(ck, "epoch", &v), rs->epoch = (int)v;
    take(ck, "batch", &v), rs->batch = (int)v;
    take(ck, "rng/order", rs->order.s);
    take(ck, "perm", rs->perm);
    take(ck, "epoch_acc", acc);
    take(ck, "totals", totals);
    take(ck, "results", results);
    rs->loss_sum = acc[0], rs->wrong = (long)acc[1], rs->epoch_seconds = acc[2];
    rs->seconds = totals[0], rs->train_seconds = totals[1], rs->images = (long)totals[2];
    seed = rs->sum.seed;
    results_unpack(results, &rs->sum);
    rs->sum.seed = seed;
    take(ck, "align/initial", align);
    align_unpack(align, rs->n_layers, net, rs->initial);
    take(ck, "align/last", align);
    align_unpack(align, rs->n_layers, net, rs->last);
    free(align);
    memcpy(text, log->text, log->count + 1);
    rs->log = text;
    rs->log_len = log->count;
    asym_checkpoint_close(ck);
    return ASYM_OK;
}
