/* probe.c: a fixed batch through the network with every tensor written as
 * .npy and a JSON manifest naming them: what researchers use to inspect a
 * rule, and what the PyTorch oracle tests read. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net/net.h"
#include "io/io.h"


static const char *role_name(AsymParamRole r) {
    static const char *const names[] = {"?", "weight", "bias", "bn_scale", "bn_shift", "running_mean", "running_var"};
    return (int)r > 0 && (int)r <= ASYM_P_RUNNING_VAR ? names[r] : "?";
}

static void write_layers(FILE *f, const AsymNetSpec *s) {
    fprintf(f, "  \"layers\": [\n");
    for (int i = 0; i < s->n_layers; i++) {
        const AsymLayerSpec *l = &s->layers[i];
        fprintf(f, "    {\"type\": \"%s\"", layer_kind_name(l->kind));
        switch (l->kind) {
        case ASYM_FC: fprintf(f, ", \"out\": %d, \"bias\": %s", l->out, l->bias ? "true" : "false"); break;
        case ASYM_CONV: fprintf(f, ", \"out\": %d, \"k\": %d, \"stride\": %d, \"pad\": %d, \"bias\": %s", l->out, l->k, l->stride ? l->stride : 1, l->pad, l->bias ? "true" : "false"); break;
        case ASYM_MAXPOOL:
        case ASYM_AVGPOOL: fprintf(f, ", \"k\": %d, \"stride\": %d, \"pad\": %d", l->k, l->stride ? l->stride : l->k, l->pad); break;
        case ASYM_BATCHNORM: fprintf(f, ", \"momentum\": %g, \"eps\": %g", l->momentum > 0 ? l->momentum : 0.1, l->eps > 0 ? l->eps : 1e-5); break;
        case ASYM_DROPOUT: fprintf(f, ", \"p\": %g", l->p); break;
        case ASYM_RESBLOCK:
            fprintf(f, ", \"out\": %d, \"stride\": %d, \"shortcut\": \"%s\", \"bottleneck\": %s, \"momentum\": %g", l->out, l->stride ? l->stride : 1,
                    l->shortcut == ASYM_SHORTCUT_B ? "B" : "A", l->bottleneck ? "true" : "false", l->momentum > 0 ? l->momentum : 0.1);
            break;
        default: break;
        }
        fprintf(f, "}%s\n", i + 1 < s->n_layers ? "," : "");
    }
    fprintf(f, "  ],\n");
}

static int write_tensor(const char *dir, const char *stem, int i, const AsymParam *p, const float *data, char *name, size_t n) {
    char path[4200];
    int64_t shape[4];
    for (int d = 0; d < p->ndim; d++) shape[d] = p->shape[d];
    snprintf(name, n, "%s%03d.npy", stem, i);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return npy_write_f32(path, data, p->ndim, shape);
}

static int write_array(const char *dir, const char *name, const float *data, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
    char path[4200];
    int64_t shape[4] = {d0, d1, d2, d3};
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return npy_write_f32(path, data, ndim, shape);
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

/* Weights from a probe folder: p###.npy (parameters), b###.npy (buffers),
 * F###.npy (feedback matrices, when present). */
static int load_probe_dir(AsymNet *net, const char *dir) {
    for (int i = 0; i < asym_net_n_params(net); i++)
        if (load_tensor(dir, "p", i, asym_net_param(net, i))) return ASYM_ERR;
    for (int i = 0; i < asym_net_n_buffers(net); i++)
        if (load_tensor(dir, "b", i, asym_net_buffer(net, i))) return ASYM_ERR;
    NetCtx *ctx = net_ctx(net);
    for (int i = 0; i < asym_net_n_feedback(net); i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/F%03d.npy", dir, i);
        if (access(path, F_OK) == 0 && load_tensor(dir, "F", i, asym_net_feedback(net, i))) return ASYM_ERR;
    }
    /* sign-concordant B follow the loaded W (keeping a loaded B's magnitudes) */
    for (int i = 0; i < ctx->n_weight_layers; i++) {
        Layer *l = ctx->weight_layers[i];
        int loaded = 0;
        for (int j = 0; j < asym_net_n_feedback(net); j++) {
            char path[4200];
            snprintf(path, sizeof path, "%s/F%03d.npy", dir, j);
            if (l->fb->B == asym_net_feedback(net, j)) loaded = access(path, F_OK) == 0;
        }
        feedback_follow_weights(l, loaded);
    }
    return ASYM_OK;
}

int asym_probe(const AsymExperiment *ex, const char *weights, int batch, int steps, const char *dir) {
    AsymDataset train, val, test;
    AsymNet *net = NULL;
    AsymOptim *opt = NULL;
    FILE *f = NULL;
    float *rec = NULL, **record = NULL;
    uint32_t *seeds = NULL;
    int *seeds_ok = NULL;
    int rc = ASYM_ERR;
    if (asym_experiment_data(ex, &train, &val, &test)) return ASYM_ERR;
    if (batch > train.n) batch = train.n;
    AsymRng rng;
    rng_seed(&rng, ex->seed);
    if (asym_net_create(&net, &ex->net, batch, &rng)) goto done;
    if (weights && (is_dir(weights) ? load_probe_dir(net, weights) : asym_net_load(net, weights))) goto done;
    if (asym_optim_create(&opt, net, &ex->opt)) goto done;
    NetCtx *ctx = net_ctx(net);
    Seq *top = net_seq(net);
    int L = ctx->n_weight_layers, nf = asym_net_n_feedback(net);
    size_t rec_total = 0;
    for (int i = 0; i < L; i++) rec_total += (size_t)batch * shape_size(ctx->weight_layers[i]->out);
    if (!(rec = asym_falloc(rec_total)) || !(record = asym_calloc(L ? L : 1, sizeof(float *)))) goto done;
    for (int i = 0, off = 0; i < L; off += batch * (int)shape_size(ctx->weight_layers[i]->out), i++) record[i] = rec + off;
    asym_net_keep_input_grad(net, 1);
    if (io_mkdir_p(dir)) goto done;
    int N = batch, K = ex->net.classes, np = asym_net_n_params(net), nb = asym_net_n_buffers(net);
    /* values before any step */
    float *before = malloc(sizeof(float) * asym_net_n_weights(net));
    if (!before) {
        asym_fail("out of memory");
        goto done;
    }
    for (int i = 0, off = 0; i < np; off += (int)asym_net_param(net, i)->n, i++) memcpy(before + off, asym_net_param(net, i)->w, sizeof(float) * asym_net_param(net, i)->n);
    asym_net_zero_grad(net);
    StepMode m = net_mode(net, 1);
    m.pass.record = record;
    const float *logits = net_forward(net, train.x, N, &m);
    float loss = net_backward(net, train.y, N, &m, NULL);
    char path[4200], name[64];
    snprintf(path, sizeof path, "%s/y.npy", dir);
    int64_t yshape[1] = {N};
    rc = write_array(dir, "x.npy", train.x, 4, N, train.c, train.h, train.w) || npy_write_i32(path, train.y, 1, yshape) ||
         write_array(dir, "logits.npy", logits, 2, N, K, 0, 0) || write_array(dir, "dlogits.npy", asym_net_logits_grad(net), 2, N, K, 0, 0) ||
         write_array(dir, "dx.npy", asym_net_input_grad(net), 4, N, train.c, train.h, train.w);
    for (int i = 0, off = 0; i < np && !rc; off += (int)asym_net_param(net, i)->n, i++) {
        AsymParam *p = asym_net_param(net, i);
        rc = write_tensor(dir, "p", i, p, before + off, name, sizeof name) || write_tensor(dir, "g", i, p, p->g, name, sizeof name);
    }
    for (int i = 0; i < nb && !rc; i++) rc = write_tensor(dir, "b", i, asym_net_buffer(net, i), asym_net_buffer(net, i)->w, name, sizeof name);
    for (int i = 0; i < nf && !rc; i++) rc = write_tensor(dir, "F", i, asym_net_feedback(net, i), asym_net_feedback(net, i)->w, name, sizeof name);
    for (int i = 0; i < L && !rc; i++) {
        Layer *l = ctx->weight_layers[i];
        snprintf(name, sizeof name, "err%03d.npy", i);
        rc = write_array(dir, name, record[i], 4, N, l->out.c, l->out.h, l->out.w);
    }
    for (int i = 0; i < top->n && !rc; i++) {
        Layer *l = top->layers[i];
        snprintf(name, sizeof name, "act%03d.npy", i);
        rc = write_array(dir, name, top->act[i], 4, N, l->out.c, l->out.h, l->out.w);
    }
    free(before);
    if (rc) goto done;
    /* the noise seeds of every mirror step of the K updates, per weight
     * layer: drawn from a copy of the layer's generator as the mirror step
     * draws them, and kept only when the last one is the seed the layer
     * reports (wm_seed) */
    int ws = ctx->fb.wm_steps > 0 ? ctx->fb.wm_steps : 0;
    if ((steps > 0 && ws > 0 && !(seeds = asym_calloc((size_t)L * steps * ws, sizeof *seeds))) || !(seeds_ok = asym_calloc(L > 0 ? L : 1, sizeof *seeds_ok))) {
        rc = ASYM_ERR;
        goto done;
    }
    for (int i = 0; i < L; i++) seeds_ok[i] = ctx->weight_layers[i]->fb->rule == ASYM_RULE_WM;
    for (int s = 0; s < steps; s++) {
        if (s > 0) {
            asym_net_zero_grad(net);
            asym_net_forward(net, train.x, N, 1);
            asym_net_loss(net, train.y, N, 1, NULL);
        }
        asym_optim_step(opt, ex->opt.lr);
        for (int i = 0; i < L && seeds; i++) {
            Feedback *fb = ctx->weight_layers[i]->fb;
            AsymRng r = fb->rng;
            for (int j = 0; j < ws && seeds_ok[i]; j++) seeds[((size_t)i * steps + s) * ws + j] = rng_u32(&r);
        }
        asym_net_feedback_update(net);
        for (int i = 0; i < L && seeds; i++)
            if (seeds_ok[i] && seeds[((size_t)i * steps + s) * ws + ws - 1] != ctx->weight_layers[i]->fb->wm_seed) seeds_ok[i] = 0;
    }
    for (int i = 0; i < np && !rc; i++) rc = write_tensor(dir, "a", i, asym_net_param(net, i), asym_net_param(net, i)->w, name, sizeof name);
    for (int i = 0; i < nf && !rc; i++) rc = write_tensor(dir, "Fa", i, asym_net_feedback(net, i), asym_net_feedback(net, i)->w, name, sizeof name);
    if (rc) goto done;
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    if (!(f = fopen(path, "w"))) {
        rc = asym_fail("%s: cannot write", path);
        goto done;
    }
    const AsymOptSpec *o = &ex->opt;
    fprintf(f, "{\n  \"format\": \"asymbp-probe-1\",\n  \"batch\": %d,\n  \"input_shape\": [%d, %d, %d, %d],\n  \"classes\": %d,\n", N, N, train.c, train.h, train.w, K);
    fprintf(f, "  \"loss\": \"%s\",\n  \"loss_value\": %.9g,\n", ex->net.loss == ASYM_LOSS_SIGMOID_BCE ? "sigmoid_bce" : "softmax_ce", loss);
    fprintf(f, "  \"x\": \"x.npy\", \"y\": \"y.npy\", \"logits\": \"logits.npy\", \"dlogits\": \"dlogits.npy\", \"dx\": \"dx.npy\",\n");
    write_layers(f, &ex->net);
    fprintf(f, "  \"optimizer\": {\"name\": \"%s\", \"lr\": %.9g, \"momentum\": %.9g, \"dampening\": %.9g, \"nesterov\": %s, \"weight_decay\": %.9g, "
               "\"beta1\": %.9g, \"beta2\": %.9g, \"eps\": %.9g, \"manhattan\": %s},\n  \"steps\": %d,\n",
            o->kind == ASYM_ADAM ? "adam" : "sgd", o->lr, o->momentum, o->dampening, o->nesterov ? "true" : "false", o->weight_decay, o->beta1, o->beta2, o->eps,
            o->manhattan ? "true" : "false", steps);
    const AsymFeedbackSpec *fo = &ctx->fb;
    static const char *const INIT_NAMES[] = {"?", "torch", "xavier_uniform", "xavier_normal", "he_uniform", "he_normal"};
    char scale[32];
    if (fo->scale > 0) snprintf(scale, sizeof scale, "%.9g", fo->scale);
    else snprintf(scale, sizeof scale, "\"%s\"", fo->scale_he ? "he" : "xavier");
    static const char *const NOISE_NAMES[] = {"?", "uniform", "normal", "orthogonal"};
    fprintf(f, "  \"feedback_options\": {\"clip_dx\": %.9g, \"concordance\": %.9g, \"norm_feedback\": %s, \"fixed_weight_norm\": %s, \"init\": \"%s\", \"gain\": %.9g, \"scale\": %s,\n",
            fo->clip_dx, fo->concordance, fo->norm_feedback ? "true" : "false", fo->fixed_weight_norm ? "true" : "false",
            INIT_NAMES[fo->init >= 1 && fo->init <= 5 ? fo->init : 0], fo->init_gain, scale);
    fprintf(f, "    \"wm\": {\"noise\": \"%s\", \"std\": %.9g, \"lr\": %.9g, \"decay\": %.9g, \"steps\": %d, \"batch\": %d, \"presweep\": %d}},\n",
            NOISE_NAMES[fo->wm_noise >= 1 && fo->wm_noise <= 3 ? fo->wm_noise : 0], fo->wm_std, fo->wm_lr, fo->wm_decay, fo->wm_steps, fo->wm_batch, fo->wm_presweep);
    fprintf(f, "  \"params\": [\n");
    for (int i = 0; i < np; i++) {
        AsymParam *p = asym_net_param(net, i);
        fprintf(f, "    {\"name\": \"%s\", \"role\": \"%s\", \"shape\": [", p->name, role_name(p->role));
        for (int d = 0; d < p->ndim; d++) fprintf(f, "%s%d", d ? ", " : "", p->shape[d]);
        fprintf(f, "], \"value\": \"p%03d.npy\", \"grad\": \"g%03d.npy\", \"after\": \"a%03d.npy\"}%s\n", i, i, i, i + 1 < np ? "," : "");
    }
    fprintf(f, "  ],\n  \"buffers\": [\n");
    for (int i = 0; i < nb; i++) {
        AsymParam *p = asym_net_buffer(net, i);
        fprintf(f, "    {\"name\": \"%s\", \"role\": \"%s\", \"shape\": [%d], \"value\": \"b%03d.npy\"}%s\n", p->name, role_name(p->role), p->shape[0], i,
                i + 1 < nb ? "," : "");
    }
    fprintf(f, "  ],\n  \"feedback\": [\n");
    for (int i = 0; i < nf; i++) {
        AsymParam *p = asym_net_feedback(net, i);
        fprintf(f, "    {\"name\": \"%s\", \"shape\": [", p->name);
        for (int d = 0; d < p->ndim; d++) fprintf(f, "%s%d", d ? ", " : "", p->shape[d]);
        fprintf(f, "], \"value\": \"F%03d.npy\", \"after\": \"Fa%03d.npy\"}%s\n", i, i, i + 1 < nf ? "," : "");
    }
    fprintf(f, "  ],\n  \"weight_layers\": [\n");
    for (int i = 0; i < L; i++) {
        Layer *l = ctx->weight_layers[i];
        int wi = 0, fi = -1, di = -1;
        while (asym_net_param(net, wi) != l->W) wi++;
        for (int j = 0; j < nf; j++) {
            if (l->fb->B == asym_net_feedback(net, j)) fi = j;
            if (l->fb->D == asym_net_feedback(net, j)) di = j;
        }
        fprintf(f, "    {\"name\": \"%s\", \"rule\": \"%s\", \"weight\": %d, \"feedback\": %d, \"dfa\": %d, \"error\": \"err%03d.npy\"", l->name,
                asym_rule_name(l->fb->rule), wi, fi, di, i);
        if (l->fb->rule == ASYM_RULE_WM) {
            /* the mirror batch and the noise seeds: the latest, and those of
             * every mirror step after the K optimizer steps, in order */
            fprintf(f, ", \"mirror\": {\"n\": %d, \"seed\": %u, \"seeds\": ", l->fb->wm_n, l->fb->wm_seed);
            if (seeds && !seeds_ok[i]) {
                fprintf(f, "null}");
            } else {
                fprintf(f, "[");
                for (int j = 0; j < (seeds ? steps * ws : 0); j++) fprintf(f, "%s%u", j ? ", " : "", seeds[(size_t)i * steps * ws + j]);
                fprintf(f, "]}");
            }
        }
        fprintf(f, "}%s\n", i + 1 < L ? "," : "");
    }
    fprintf(f, "  ],\n  \"activations\": [");
    for (int i = 0; i < top->n; i++) fprintf(f, "%s\"act%03d.npy\"", i ? ", " : "", i);
    fprintf(f, "]\n}\n");
    rc = ferror(f) ? asym_fail("%s: write failed", path) : ASYM_OK;
done:
    if (f && fclose(f)) rc = asym_fail("%s/manifest.json: write failed", dir);
    free(rec);
    free(record);
    free(seeds);
    free(seeds_ok);
    asym_optim_free(opt);
    asym_net_free(net);
    asym_dataset_free(&train);
    asym_dataset_free(&val);
    asym_dataset_free(&test);
    return rc;
}
