/* experiment.c: the experiment schema. Reads a configuration tree (cfg.c)
 * into an AsymExperiment: data, model (a named architecture or a list of
 * layers), loss, optimizer, schedule, and run settings. Every key is
 * checked; unknown keys and bad values are errors naming file, line, key. */
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "data/data.h"
#include "layers/layers.h"

/* Choices that more than one key offers. */
static const char *const INITS[] = {"torch", "xavier_uniform", "xavier_normal", "he_uniform", "he_normal", NULL};
static const char *const SHORTCUTS[] = {"A", "B", NULL};

static int choice_index(const char *const *choices, const char *v) {
    for (int i = 0; choices[i]; i++)
        if (!strcmp(choices[i], v)) return i;
    return -1;
}

/* The layer kinds' names (layers/kinds.c), NULL-terminated; returns how many. */
static int kind_names(const char **names, int max) {
    int n = 0;
    for (int k = 1; n < max - 1 && strcmp(layer_kind_name((AsymLayerKind)k), "?"); k++) names[n++] = layer_kind_name((AsymLayerKind)k);
    names[n] = NULL;
    return n;
}

/* A rule by name, one of the rule table's. */
static int read_rule(const Cfg *c, CfgNode *map, const char *pre, const char *key, int *out) {
    const char *name, *rules[64] = {NULL};
    for (int r = 1; r <= asym_rule_count() && r < 64; r++) rules[r - 1] = asym_rule_name(r);
    if (cfg_get_str(c, map, pre, key, NULL, rules, &name)) return ASYM_ERR;
    if (name) *out = asym_rule_parse(name);
    return ASYM_OK;
}

/* feedback.<rule>.<key> for every option a rule declares (rules/table.c). */
static int read_rule_keys(const Cfg *c, CfgNode *m, AsymFeedbackSpec *f) {
    for (int r = 1; r <= asym_rule_count(); r++) {
        const RuleKey *keys = rule_get((AsymRule)r)->keys;
        char pre[64];
        snprintf(pre, sizeof pre, "feedback.%s", asym_rule_name(r));
        CfgNode *o = keys ? cfg_child(m, asym_rule_name(r)) : NULL;
        for (int k = 0; o && k < ASYM_MAX_RULE_KEYS && keys[k].name; k++) {
            const char *word;
            if (!keys[k].choices) GET_FLOAT(o, pre, keys[k].name, keys[k].def, keys[k].lo, keys[k].hi, f->rule_opt[r][k]);
            else if (cfg_get_str(c, o, pre, keys[k].name, keys[k].choices[(int)keys[k].def], keys[k].choices, &word)) return ASYM_ERR;
            else f->rule_opt[r][k] = (float)choice_index(keys[k].choices, word);
        }
    }
    return ASYM_OK;
}

/* The `feedback` section and `rule_overrides` (see docs/CONFIG.md). */
static int read_feedback(const Cfg *c, CfgNode *root, AsymNetSpec *s) {
    static const char *const NOISE[] = {"uniform", "normal", "orthogonal", NULL};
    AsymFeedbackSpec *f = &s->fb;
    asym_feedback_defaults(f);
    s->rule = ASYM_RULE_BP;
    if (read_rule(c, root, "", "rule", &s->rule)) return ASYM_ERR;
    CfgNode *o = cfg_child(root, "rule_overrides");
    if (o && o->kind != CFG_MAP) return cfg_error(c, o, "rule_overrides", "expected a map from layer (weight-layer index or name) to rule");
    for (int i = 0; o && i < o->n_items; i++) {
        if (s->n_overrides == (int)(sizeof s->overrides / sizeof s->overrides[0])) return cfg_error(c, o, "rule_overrides", "too many entries");
        CfgNode *e = o->items[i];
        snprintf(s->overrides[s->n_overrides].sel, sizeof s->overrides[0].sel, "%s", e->key);
        if (read_rule(c, o, "rule_overrides", e->key, &s->overrides[s->n_overrides].rule)) return ASYM_ERR;
        s->n_overrides++;
    }
    CfgNode *m = cfg_child(root, "feedback");
    if (!m) return ASYM_OK;
    const char *init, *scale, *noise;
    if (cfg_get_str(c, m, "feedback", "init", "xavier_uniform", INITS, &init)) return ASYM_ERR;
    f->init = (AsymInit)(choice_index(INITS, init) + 1);
    GET_FLOAT(m, "feedback", "gain", 1.0, 1e-6, 1e6, f->init_gain);
    if (cfg_get_str(c, m, "feedback", "scale", "xavier", NULL, &scale)) return ASYM_ERR;
    if (!strcmp(scale, "he")) {
        f->scale_he = 1;
    } else if (strcmp(scale, "xavier")) {
        char *end;
        double v = strtod(scale, &end);
        if (*end || end == scale || !(v > 0 && v < 1e6)) return cfg_error(c, cfg_child(m, "scale"), "feedback.scale", "expected xavier, he or a positive number, got '%s'", scale);
        f->scale = (float)v;
    }
    GET_FLOAT(m, "feedback", "concordance", 1.0, 0.0, 1.0, f->concordance);
    if (cfg_get_bool(c, m, "feedback", "norm_feedback", 0, &f->norm_feedback)) return ASYM_ERR;
    if (cfg_get_bool(c, m, "feedback", "fixed_weight_norm", 0, &f->fixed_weight_norm)) return ASYM_ERR;
    GET_FLOAT(m, "feedback", "clip_dx", 0.0, 0.0, 1e30, f->clip_dx);
    GET_FLOAT(m, "feedback", "sparsity", 0.0, 0.0, 1.0, f->sparsity);
    static const char *const DFA[] = {"dense", "conv", NULL};
    const char *dfa;
    if (cfg_get_str(c, m, "feedback", "dfa", "dense", DFA, &dfa)) return ASYM_ERR;
    f->dfa_conv = !strcmp(dfa, "conv");
    if (read_rule_keys(c, m, f)) return ASYM_ERR;
    CfgNode *w = cfg_child(m, "wm");
    if (!w) return ASYM_OK;
    if (cfg_get_str(c, w, "feedback.wm", "noise", "uniform", NOISE, &noise)) return ASYM_ERR;
    f->wm_noise = noise[0] == 'u' ? ASYM_NOISE_UNIFORM : noise[0] == 'n' ? ASYM_NOISE_NORMAL : ASYM_NOISE_ORTHOGONAL;
    if (f->wm_noise == ASYM_NOISE_ORTHOGONAL) {
        /* the exact estimator: each step replaces B by its estimate of W,
         * equal to W on layers with one output position */
        f->wm_lr = f->wm_decay = 1.0f;
        f->wm_presweep = 0;
    }
    GET_FLOAT(w, "feedback.wm", "std", f->wm_std, 1e-12, 1e6, f->wm_std);
    GET_FLOAT(w, "feedback.wm", "lr", f->wm_lr, 0.0, 1e6, f->wm_lr);
    GET_FLOAT(w, "feedback.wm", "decay", f->wm_decay, 0.0, 1.0, f->wm_decay);
    GET_INT(w, "feedback.wm", "steps", 1, 0, 1000, f->wm_steps);
    GET_INT(w, "feedback.wm", "batch", 0, 0, 1 << 20, f->wm_batch);
    GET_INT(w, "feedback.wm", "presweep", f->wm_presweep, -1, 1 << 20, f->wm_presweep);
    return ASYM_OK;
}

/* lr_scale of a weight layer: 0 in the file freezes it, stored as -1 (0 in
 * a spec means the default). */
static int read_lr_scale(const Cfg *c, CfgNode *item, const char *pre, AsymLayerSpec *l) {
    GET_FLOAT(item, pre, "lr_scale", 1.0, 0.0, 1e6, l->lr_scale);
    if (l->lr_scale == 0) l->lr_scale = -1.0f;
    return ASYM_OK;
}

/* A layer written as its type alone ("relu"), with the map form's defaults. */
static int read_bare_layer(const Cfg *c, CfgNode *item, const char *pre, float bn_momentum, AsymLayerSpec *l) {
    const char *type = item->value;
    item->used = 1;
    if (!(l->kind = layer_kind_parse(type))) return cfg_error(c, item, pre, "unknown layer type '%s'", type);
    if (l->kind == ASYM_FC || l->kind == ASYM_CONV || l->kind == ASYM_RESBLOCK)
        return cfg_error(c, item, pre, "layer '%s' needs settings: write it as {type: %s, ...}", type, type);
    if (l->kind == ASYM_MAXPOOL || l->kind == ASYM_AVGPOOL) l->k = l->stride = 2;
    if (l->kind == ASYM_DROPOUT) l->p = 0.5f;
    l->eps = 1e-5f;
    l->momentum = bn_momentum;
    return ASYM_OK;
}

static int read_resblock(const Cfg *c, CfgNode *item, const char *pre, float bn_momentum, AsymLayerSpec *l) {
    const char *sc;
    GET_INT(item, pre, "out", -1, 1, 1 << 20, l->out);
    if (l->out < 0) return cfg_error(c, item, pre, "resblock needs 'out'");
    GET_INT(item, pre, "stride", 1, 1, 64, l->stride);
    if (cfg_get_str(c, item, pre, "shortcut", "A", SHORTCUTS, &sc)) return ASYM_ERR;
    l->shortcut = sc[0] == 'A' ? ASYM_SHORTCUT_A : ASYM_SHORTCUT_B;
    if (cfg_get_bool(c, item, pre, "bottleneck", 0, &l->bottleneck)) return ASYM_ERR;
    if (read_lr_scale(c, item, pre, l)) return ASYM_ERR;
    l->momentum = bn_momentum;
    return ASYM_OK;
}

/* The settings of a layer in map form, by its kind. */
static int read_layer_keys(const Cfg *c, CfgNode *item, const char *pre, float bn_momentum, AsymLayerSpec *l) {
    switch (l->kind) {
    case ASYM_FC:
        GET_INT(item, pre, "out", -1, 1, 1 << 24, l->out);
        if (l->out < 0) return cfg_error(c, item, pre, "fc needs 'out'");
        if (cfg_get_bool(c, item, pre, "bias", 1, &l->bias)) return ASYM_ERR;
        return read_lr_scale(c, item, pre, l);
    case ASYM_CONV:
        GET_INT(item, pre, "out", -1, 1, 1 << 20, l->out);
        GET_INT(item, pre, "k", -1, 1, 1024, l->k);
        if (l->out < 0 || l->k < 0) return cfg_error(c, item, pre, "conv needs 'out' and 'k'");
        GET_INT(item, pre, "stride", 1, 1, 1024, l->stride);
        GET_INT(item, pre, "pad", 0, 0, 1024, l->pad);
        if (cfg_get_bool(c, item, pre, "bias", 1, &l->bias)) return ASYM_ERR;
        return read_lr_scale(c, item, pre, l);
    case ASYM_MAXPOOL:
    case ASYM_AVGPOOL: {
        int global;
        if (cfg_get_bool(c, item, pre, "global", 0, &global)) return ASYM_ERR;
        GET_INT(item, pre, "k", global ? 0 : 2, 1, 1024, l->k);
        GET_INT(item, pre, "stride", l->k, 1, 1024, l->stride);
        GET_INT(item, pre, "pad", 0, 0, 1024, l->pad);
        if (global) l->k = 0, l->stride = 1, l->pad = 0;
        return ASYM_OK;
    }
    case ASYM_BATCHNORM:
        GET_FLOAT(item, pre, "momentum", bn_momentum, 0.0, 1.0, l->momentum);
        GET_FLOAT(item, pre, "eps", 1e-5, 1e-12, 1.0, l->eps);
        return ASYM_OK;
    case ASYM_DROPOUT:
        GET_FLOAT(item, pre, "p", 0.5, 0.0, 0.999, l->p);
        return ASYM_OK;
    case ASYM_RESBLOCK: return read_resblock(c, item, pre, bn_momentum, l);
    default: return ASYM_OK;
    }
}

/* One item of model.layers: "relu" or {type: conv, out: 6, k: 5, ...}. */
static int read_layer(const Cfg *c, CfgNode *item, int index, float bn_momentum, AsymLayerSpec *l) {
    char pre[64];
    snprintf(pre, sizeof pre, "model.layers.%d", index);
    memset(l, 0, sizeof *l);
    l->line = item->line;
    l->lr_scale = 1.0f;
    if (item->kind == CFG_SCALAR) return read_bare_layer(c, item, pre, bn_momentum, l);
    if (item->kind != CFG_MAP) return cfg_error(c, item, pre, "expected a layer type or a map with 'type'");
    const char *type, *kinds[32];
    int n_kinds = kind_names(kinds, 32);
    if (cfg_get_str(c, item, pre, "type", NULL, kinds, &type)) return ASYM_ERR;
    if (!type) {
        char list[256];
        size_t at = 0;
        for (int k = 0; k < n_kinds && at < sizeof list; k++) at += snprintf(list + at, sizeof list - at, "%s%s", k ? ", " : "", kinds[k]);
        return cfg_error(c, item, pre, "missing 'type' (one of %s)", list);
    }
    l->kind = layer_kind_parse(type);
    CfgNode *rule = cfg_child(item, "rule");
    if (rule && l->kind != ASYM_FC && l->kind != ASYM_CONV && l->kind != ASYM_RESBLOCK)
        return cfg_error(c, rule, pre, "a '%s' layer has no weights, so it takes no feedback rule", type);
    if (rule && read_rule(c, item, pre, "rule", &l->rule)) return ASYM_ERR;
    return read_layer_keys(c, item, pre, bn_momentum, l);
}

/* A named architecture, read from the config and expanded later. */
typedef struct ArchPlan {
    const char *arch; /* NULL for a layer list */
    CfgNode *node;
    int hidden[64], n_hidden, bn, depth;
    AsymLayerKind act;
    AsymShortcut shortcut;
    float bn_momentum;
} ArchPlan;

static int read_model(const Cfg *c, CfgNode *root, AsymExperiment *ex, ArchPlan *plan) {
    static const char *const LOSSES[] = {"softmax_ce", "sigmoid_bce", NULL};
    static const char *const ACTS[] = {"relu", "tanh", "sigmoid", NULL};
    static const char *const ARCHS[] = {"custom", "mlp", "lenet", "resnet20", "resnet32", "resnet44", "resnet56", "resnet110",
                                        "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", NULL};
    AsymNetSpec *s = &ex->net;
    CfgNode *m = cfg_child(root, "model");
    if (!m) return asym_fail("%s: missing 'model'", c->file);
    if (m->kind != CFG_MAP) return cfg_error(c, m, "model", "expected a map");
    const char *arch, *init, *loss, *act;
    if (cfg_get_str(c, m, "model", "arch", "custom", ARCHS, &arch)) return ASYM_ERR;
    if (cfg_get_str(c, m, "model", "init", "torch", INITS, &init)) return ASYM_ERR;
    if (cfg_get_str(c, m, "model", "loss", "softmax_ce", LOSSES, &loss)) return ASYM_ERR;
    s->init = (AsymInit)(choice_index(INITS, init) + 1);
    s->loss = (AsymLoss)(choice_index(LOSSES, loss) + 1);
    if (cfg_get_bool(c, m, "model", "zero_bias", s->init != ASYM_INIT_TORCH, &s->zero_bias)) return ASYM_ERR;
    if (cfg_get_bool(c, m, "model", "sync_bn", 0, &ex->sync_bn)) return ASYM_ERR;
    float bn_momentum;
    GET_FLOAT(m, "model", "bn_momentum", 0.1, 0.0, 1.0, bn_momentum);
    if (!strcmp(arch, "custom")) {
        CfgNode *layers = cfg_child(m, "layers");
        if (!layers || layers->kind != CFG_SEQ || layers->n_items == 0)
            return layers ? cfg_error(c, layers, "model.layers", "expected a list of layers") : asym_fail("%s: model needs 'arch' or 'layers'", c->file);
        s->layers = asym_calloc(layers->n_items, sizeof(AsymLayerSpec));
        if (!s->layers) return ASYM_ERR;
        for (int i = 0; i < layers->n_items; i++) {
            if (read_layer(c, layers->items[i], i, bn_momentum, &s->layers[i])) return ASYM_ERR;
            s->n_layers++;
        }
        return ASYM_OK;
    }
    ArchPlan *pl = plan;
    pl->arch = arch;
    pl->node = cfg_child(m, "arch");
    pl->bn_momentum = bn_momentum;
    if (!strcmp(arch, "mlp")) {
        if (cfg_get_int_list(c, m, "model", "hidden", pl->hidden, 64, &pl->n_hidden)) return ASYM_ERR;
        if (!cfg_child(m, "hidden")) pl->hidden[0] = pl->hidden[1] = 1024, pl->n_hidden = 2;
        if (cfg_get_bool(c, m, "model", "batchnorm", 1, &pl->bn)) return ASYM_ERR;
        if (cfg_get_str(c, m, "model", "activation", "relu", ACTS, &act)) return ASYM_ERR;
        pl->act = act[0] == 'r' ? ASYM_RELU : act[0] == 't' ? ASYM_TANH : ASYM_SIGMOID;
    } else if (strncmp(arch, "resnet", 6) == 0) {
        const char *sc;
        pl->depth = atoi(arch + 6);
        if (cfg_get_str(c, m, "model", "shortcut", "A", SHORTCUTS, &sc)) return ASYM_ERR;
        pl->shortcut = sc[0] == 'A' ? ASYM_SHORTCUT_A : ASYM_SHORTCUT_B;
    }
    return ASYM_OK;
}

/* Expands a named architecture once every key has been checked. */
static int build_arch(const Cfg *c, const ArchPlan *pl, AsymNetSpec *s) {
    int rc = ASYM_OK;
    if (!pl->arch) return ASYM_OK;
    if (!strcmp(pl->arch, "mlp")) rc = asym_arch_mlp(s, pl->hidden, pl->n_hidden, pl->bn, pl->act);
    else if (!strcmp(pl->arch, "lenet")) rc = asym_arch_lenet(s);
    else if (pl->depth == 18 || pl->depth == 34 || pl->depth == 50 || pl->depth == 101 || pl->depth == 152) rc = asym_arch_resnet_imagenet(s, pl->depth);
    else rc = asym_arch_resnet_cifar(s, pl->depth, pl->shortcut);
    if (rc) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", asym_last_error());
        return cfg_error(c, pl->node, "model.arch", "%s", msg);
    }
    for (int i = 0; i < s->n_layers; i++) s->layers[i].momentum = pl->bn_momentum;
    return ASYM_OK;
}

static int read_optim(const Cfg *c, CfgNode *root, AsymExperiment *ex) {
    static const char *const OPTS[] = {"sgd", "adam", NULL};
    static const char *const SCHED[] = {"constant", "step", "multistep", "cosine", NULL};
    /* the getters take an absent section (NULL) as an empty one */
    CfgNode *o = cfg_child(root, "optimizer");
    if (o && o->kind != CFG_MAP) return cfg_error(c, o, "optimizer", "expected a map");
    const char *name;
    if (cfg_get_str(c, o, "optimizer", "name", "sgd", OPTS, &name)) return ASYM_ERR;
    AsymOptSpec *p = &ex->opt;
    p->kind = name[0] == 's' ? ASYM_SGD : ASYM_ADAM;
    GET_FLOAT(o, "optimizer", "lr", p->kind == ASYM_SGD ? 0.01 : 0.001, 0.0, 1e6, p->lr);
    GET_FLOAT(o, "optimizer", "momentum", 0.0, 0.0, 1.0, p->momentum);
    GET_FLOAT(o, "optimizer", "dampening", 0.0, 0.0, 1.0, p->dampening);
    GET_FLOAT(o, "optimizer", "weight_decay", 0.0, 0.0, 10.0, p->weight_decay);
    if (cfg_get_bool(c, o, "optimizer", "nesterov", 0, &p->nesterov)) return ASYM_ERR;
    if (cfg_get_bool(c, o, "optimizer", "manhattan", 0, &p->manhattan)) return ASYM_ERR;
    if (p->manhattan && p->kind != ASYM_SGD) return cfg_error(c, cfg_child(o, "manhattan"), "optimizer.manhattan", "Batch Manhattan is an SGD option");
    GET_FLOAT(o, "optimizer", "beta1", 0.9, 0.0, 0.999999, p->beta1);
    GET_FLOAT(o, "optimizer", "beta2", 0.999, 0.0, 0.999999, p->beta2);
    GET_FLOAT(o, "optimizer", "eps", 1e-8, 1e-30, 1.0, p->eps);
    if (p->nesterov && (p->momentum <= 0 || p->dampening != 0))
        return cfg_error(c, cfg_child(o, "nesterov"), "optimizer.nesterov", "Nesterov momentum needs momentum > 0 and dampening 0");

    CfgNode *s = cfg_child(root, "schedule");
    if (s && s->kind != CFG_MAP) return cfg_error(c, s, "schedule", "expected a map");
    AsymSchedSpec *q = &ex->sched;
    if (cfg_get_str(c, s, "schedule", "name", "constant", SCHED, &name)) return ASYM_ERR;
    q->kind = (AsymSchedKind)(choice_index(SCHED, name) + 1);
    GET_FLOAT(s, "schedule", "gamma", 0.1, 0.0, 1.0, q->gamma);
    GET_INT(s, "schedule", "step_size", 30, 1, 1 << 20, q->step_size);
    GET_INT(s, "schedule", "t_max", 0, 0, 1 << 20, q->t_max);
    GET_FLOAT(s, "schedule", "eta_min", 0.0, 0.0, 1e6, q->eta_min);
    if (cfg_get_int_list(c, s, "schedule", "milestones", q->milestones, 16, &q->n_milestones)) return ASYM_ERR;
    for (int i = 1; i < q->n_milestones; i++)
        if (q->milestones[i] <= q->milestones[i - 1]) return cfg_error(c, cfg_child(s, "milestones"), "schedule.milestones", "must be increasing");
    if (q->kind == ASYM_SCHED_MULTISTEP && q->n_milestones == 0) return cfg_error(c, s, "schedule", "multistep needs 'milestones'");
    return ASYM_OK;
}

/* Liao et al.'s protocol (`protocol: liao`): what it sets wherever the file
 * and --set leave the key out. The schedule is set as a whole, so a config
 * with its own schedule keeps it. */
static const char *const LIAO[][2] = {
    {"epochs", "65"},
    {"batch_size", "100"},
    {"optimizer.lr", "5.0e-4"},
    {"optimizer.momentum", "0.9"},
    {"schedule", "{name: multistep, milestones: [50, 60], gamma: 0.1}"},
    {"bn_recompute", "{batches: 20, alpha: 0.05}"},
};

static int apply_protocol(Cfg *c) {
    static const char *const PROTOCOLS[] = {"none", "liao", NULL};
    const char *p;
    if (cfg_get_str(c, c->root, "", "protocol", "none", PROTOCOLS, &p)) return ASYM_ERR;
    if (strcmp(p, "liao")) return ASYM_OK;
    const char *opt = asym_config_get(c, "optimizer.name");
    for (size_t i = 0; i < sizeof LIAO / sizeof LIAO[0]; i++) {
        if (cfg_find(c->root, LIAO[i][0])) continue;
        if (!strcmp(LIAO[i][0], "optimizer.momentum") && opt && strcmp(opt, "sgd")) continue;
        char set[256];
        snprintf(set, sizeof set, "%s=%s", LIAO[i][0], LIAO[i][1]);
        if (asym_config_set(c, set)) return ASYM_ERR;
    }
    return ASYM_OK;
}

static int read_bn_recompute(const Cfg *c, CfgNode *root, AsymExperiment *ex) {
    CfgNode *m = cfg_child(root, "bn_recompute");
    if (!m) return ASYM_OK;
    if (m->kind != CFG_MAP) return cfg_error(c, m, "bn_recompute", "expected a map with batches and alpha");
    GET_INT(m, "bn_recompute", "batches", 20, 0, 1 << 20, ex->bn_batches);
    GET_FLOAT(m, "bn_recompute", "alpha", 0.05, 1e-6, 1.0, ex->bn_alpha);
    return ASYM_OK;
}

/* The `debug` section: options that change how a run fails, not its result. */
static int read_debug(const Cfg *c, CfgNode *root, AsymExperiment *ex) {
    CfgNode *m = cfg_child(root, "debug");
    if (!m) return ASYM_OK;
    if (m->kind != CFG_MAP) return cfg_error(c, m, "debug", "expected a map (trap_fp)");
    GET_INT(m, "debug", "perturb_rank", -1, -1, 1 << 20, ex->perturb_rank);
    GET_INT(m, "debug", "perturb_step", 1, 1, 1L << 30, ex->perturb_step);
    return cfg_get_bool(c, m, "debug", "trap_fp", 0, &ex->trap_fp);
}

/* The `dist` section: data-parallel training under MPI (docs/MPI.md). */
static int read_dist(const Cfg *c, CfgNode *root, AsymExperiment *ex) {
    CfgNode *m = cfg_child(root, "dist");
    ex->dist_overlap = 1, ex->dist_bucket_mb = 25;
    if (!m) return ASYM_OK;
    if (m->kind != CFG_MAP) return cfg_error(c, m, "dist", "expected a map (check_every, overlap, bucket_mb)");
    GET_INT(m, "dist", "check_every", 0, 0, 1L << 30, ex->dist_check_every);
    GET_FLOAT(m, "dist", "bucket_mb", 25, 0, 1e6, ex->dist_bucket_mb);
    return cfg_get_bool(c, m, "dist", "overlap", 1, &ex->dist_overlap);
}

int asym_experiment_from_config(AsymExperiment *ex, AsymConfig *c) {
    memset(ex, 0, sizeof *ex);
    CfgNode *root = c->root;
    if (apply_protocol(c)) goto fail;
    const char *name;
    long seed;
    if (cfg_get_str(c, root, "", "name", "run", NULL, &name)) goto fail;
    snprintf(ex->name, sizeof ex->name, "%s", name);
    if (cfg_get_int(c, root, "", "seed", 1, 0, 0x7fffffffffffffffL, &seed)) goto fail;
    ex->seed = (uint64_t)seed;
    GET_INT(root, "", "epochs", 1, 1, 100000, ex->epochs);
    GET_INT(root, "", "batch_size", 64, 1, 65536, ex->batch_size);
    GET_INT(root, "", "threads", 0, 0, 1024, ex->threads);
    ex->perturb_rank = -1;
    if (read_bn_recompute(c, root, ex) || read_debug(c, root, ex) || read_dist(c, root, ex)) goto fail;
    if (cfg_get_bool(c, root, "", "log_steps", 0, &ex->log_steps)) goto fail;
    if (cfg_get_bool(c, cfg_child(root, "log"), "log", "tensorboard", 0, &ex->tensorboard)) goto fail;
    if (data_read_config(c, root, &ex->data)) goto fail;
    ex->net.in_c = ex->data.c;
    ex->net.in_h = ex->data.h;
    ex->net.in_w = ex->data.w;
    ex->net.classes = ex->data.classes;
    ArchPlan plan = {0};
    if (read_model(c, root, ex, &plan) || read_feedback(c, root, &ex->net) || read_optim(c, root, ex) || cfg_check_unused(c) || build_arch(c, &plan, &ex->net)) goto fail;
    /* Akrout's mirror batch: the training batch's size, on any number of
     * ranks (the exact estimator sizes its own per layer) */
    if (ex->net.fb.wm_batch == 0 && ex->net.fb.wm_noise != ASYM_NOISE_ORTHOGONAL) ex->net.fb.wm_batch = ex->batch_size;
    /* an optimizer whose step is linear lets pfa step B itself (pfa.c) */
    ex->net.fb.linear_optimizer = ex->opt.kind == ASYM_SGD && !ex->opt.manhattan;
    return ASYM_OK;
fail:
    asym_experiment_free(ex);
    return ASYM_ERR;
}

void asym_experiment_free(AsymExperiment *ex) { asym_netspec_free(&ex->net); }

int asym_experiment_open(AsymExperiment **ex, AsymConfig *cfg) {
    *ex = asym_calloc(1, sizeof **ex);
    if (*ex && !asym_experiment_from_config(*ex, cfg)) return ASYM_OK;
    free(*ex);
    *ex = NULL;
    return ASYM_ERR;
}

void asym_experiment_close(AsymExperiment *ex) {
    if (ex) asym_experiment_free(ex);
    free(ex);
}

void asym_experiment_info(const AsymExperiment *ex, AsymExperimentInfo *info) {
    *info = (AsymExperimentInfo){.name = ex->name, .data_format = ex->data.format, .data_path = ex->data.path, .seed = ex->seed,
                                 .epochs = ex->epochs, .batch_size = ex->batch_size, .threads = ex->threads, .trap_fp = ex->trap_fp,
                                 .lr = ex->opt.lr};
}
