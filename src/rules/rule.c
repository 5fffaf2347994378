/* rule.c: the driver of the feedback rules (rules.h). Every weight layer's
 * input-gradient half takes its B (Layer.B, set here) in place of W; what
 * each rule does to that matrix is in its own file, one per rule on the
 * table (table.c).
 * Here: what every rule shares, a generator stream per weight layer, B's
 * creation, per-layer rule overrides, sparse feedback (a fixed mask on
 * B), and Moskovitz et al.'s
 * normalizations (B scaled to |W|; |W| held at its initial value). */
#include "rules/rules.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void asym_feedback_defaults(AsymFeedbackSpec *f) {
    memset(f, 0, sizeof *f);
    f->init = ASYM_INIT_XAVIER_UNIFORM;
    f->init_gain = 1.0f;
    f->concordance = 1.0f;
    f->wm_noise = ASYM_NOISE_UNIFORM;
    f->wm_std = 0.05f / sqrtf(3.0f);
    f->wm_lr = 1e-3f;
    f->wm_decay = 1e-3f;
    f->wm_steps = 1;
    f->wm_presweep = -1;
    for (int r = 1; r <= asym_rule_count(); r++)
        for (int k = 0; rule_get((AsymRule)r)->keys && rule_get((AsymRule)r)->keys[k].name; k++) f->rule_opt[r][k] = rule_get((AsymRule)r)->keys[k].def;
}

float rule_option(const Layer *l, int k) { return l->ctx->fb.rule_opt[l->fb->rule][k]; }

double rule_init_bound(const AsymFeedbackSpec *o, const AsymParam *W, int *normal) {
    double fi = W->fan_in, fo = W->fan_out;
    *normal = o->init == ASYM_INIT_XAVIER_NORMAL || o->init == ASYM_INIT_HE_NORMAL;
    switch (o->init) {
    case ASYM_INIT_XAVIER_NORMAL: return o->init_gain * sqrt(2.0 / (fi + fo));
    case ASYM_INIT_HE_UNIFORM: return o->init_gain * sqrt(6.0 / fi);
    case ASYM_INIT_HE_NORMAL: return o->init_gain * sqrt(2.0 / fi);
    case ASYM_INIT_TORCH: return o->init_gain / sqrt(fi);
    default: return o->init_gain * sqrt(6.0 / (fi + fo));
    }
}

void rule_fill_random(const AsymFeedbackSpec *o, const AsymParam *W, float *out, size_t n, AsymRng *rng) {
    int normal;
    double b = rule_init_bound(o, W, &normal);
    for (size_t i = 0; i < n; i++) out[i] = (float)(normal ? b * rng_normal(rng) : b * (2.0 * rng_uniform(rng) - 1.0));
}

void rule_scale_to(float *v, size_t n, double target) {
    double norm = vec_norm(v, n);
    if (norm > 0) {
        float k = (float)(target / norm);
        for (size_t i = 0; i < n; i++) v[i] *= k;
    }
}

/* Applies spec->overrides on top of the rules the layer specs gave. */
static int apply_overrides(NetCtx *ctx, const AsymNetSpec *spec) {
    int L = ctx->n_weight_layers;
    for (int k = 0; k < spec->n_overrides; k++) {
        const char *sel = spec->overrides[k].sel;
        char *end;
        long idx = strtol(sel, &end, 10);
        int hits = 0;
        if (*sel && !*end && !strchr(sel, '.')) {
            /* an index among weight layers (negative: from the end) */
            if (idx < 0) idx += L;
            if (idx < 0 || idx >= L) return asym_fail("rule_overrides: no weight layer %s (the network has %d)", sel, L);
            ctx->weight_layers[idx]->spec_rule = spec->overrides[k].rule;
            continue;
        }
        size_t n = strlen(sel);
        for (int i = 0; i < L; i++) {
            Layer *l = ctx->weight_layers[i];
            if (!strncmp(l->name, sel, n) && (l->name[n] == 0 || l->name[n] == '.')) l->spec_rule = spec->overrides[k].rule, hits++;
        }
        if (!hits) return asym_fail("rule_overrides: '%s' names no layer with weights", sel);
    }
    return ASYM_OK;
}


static void feedback_free(Feedback *fb) {
    if (!fb) return;
    free(fb->mask);
    free(fb->Rg);
    free(fb->P);
    free(fb->M);
    free(fb->sign);
    free(fb->dfa_dy);
    free(fb->direct_in);
    free(fb->direct_g);
    free(fb);
}

void rule_mask_apply(Layer *l) {
    const float *m = l->fb->mask;
    float *B = l->fb->B->w;
    size_t n = l->fb->B->n;
    if (!m) return;
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) B[i] *= m[i];
}

float *rule_pattern(AsymRng *rng, size_t n, size_t count, float v) {
    int *idx = asym_calloc(n, sizeof(int));
    float *out = idx ? asym_falloc(n) : NULL;
    if (out) {
        for (size_t j = 0; j < n; j++) idx[j] = (int)j, out[j] = 1.0f;
        rng_shuffle(rng, idx, (int)n);
        for (size_t j = 0; j < count; j++) out[idx[j]] = v;
    }
    free(idx);
    return out;
}

/* One weight layer's feedback: its rule, stream, B and the rule's init. */
static int setup_layer(Layer *l, AsymRule r, AsymRng *rng, size_t *floats, size_t *doubles) {
    NetCtx *ctx = l->ctx;
    const Rule *def = rule_get(r);
    Feedback *fb = l->fb = asym_calloc(1, sizeof(Feedback));
    if (!fb) return ASYM_ERR;
    l->free_fb = feedback_free;
    fb->rule = r;
    fb->def = def;
    fb->rng = rng_split(rng);
    fb->w0norm = vec_norm(l->W->w, l->W->n);
    if (!(def->flags & RULE_OWN_B)) return ASYM_OK;
    if (!(fb->B = ctx_feedback(ctx, l->name, "B", l->W->ndim, l->W->shape))) return ASYM_ERR;
    fb->B->fan_in = l->W->fan_in, fb->B->fan_out = l->W->fan_out;
    l->B = fb->B;
    fb->sparsity = ctx->fb.sparsity;
    if (def->init && def->init(l, floats, doubles)) return ASYM_ERR;
    l->refresh_b = def->refresh;
    /* sparse feedback: exactly round(s n) entries held at zero */
    if (fb->sparsity > 0 && !(fb->mask = rule_pattern(&fb->rng, fb->B->n, (size_t)llround((double)fb->sparsity * fb->B->n), 0.0f))) return ASYM_ERR;
    rule_mask_apply(l);
    if (ctx->fb.norm_feedback) rule_scale_to(fb->B->w, l->W->n, fb->w0norm);
    return ASYM_OK;
}

/* Where a direct rule's block ends in its chain: the projections, drawn in
 * layer order from the network's generator. In the top chain the last
 * weight layer (last) takes the true error; inside a residual block (last
 * -1) every weight layer's block ends before the next weight layer or at
 * its path's end, before the sum with the other path (BioTorch's DFA on
 * ResNets: every convolution gets e D). */
static int setup_direct(NetCtx *ctx, Seq *s, AsymRng *rng, int last) {
    for (int i = 0; i < s->n; i++) {
        Layer *l = s->layers[i];
        if (l->kind == ASYM_RESBLOCK) {
            for (int k = 0; k < 2; k++)
                if (resblock_path(l, k) && setup_direct(ctx, resblock_path(l, k), rng, -1)) return ASYM_ERR;
            continue;
        }
        if (!l->fb || !(l->fb->def->flags & RULE_DIRECT) || i == last) continue;
        if (l->fb->def->direct_init(ctx, s, i, rng)) return ASYM_ERR;
        l->direct_error = l->fb->def->direct_error;
    }
    return ASYM_OK;
}

static int last_weight_layer(const Seq *top) {
    int last = -1;
    for (int i = 0; i < top->n; i++)
        if (top->layers[i]->W && top->layers[i]->kind != ASYM_BATCHNORM) last = i;
    return last;
}

/* One gradient array for the feedback matrices whose gradient comes from
 * the backward pass (RULE_OWN_GRAD, Feedback.backward_grad), in layer
 * order; the rule's hook on the layer. */
static int own_grads(NetCtx *ctx) {
    size_t n = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < ctx->n_weight_layers; i++) {
            Layer *l = ctx->weight_layers[i];
            if (!(l->fb->def->flags & RULE_OWN_GRAD) && !l->fb->backward_grad) continue;
            if (pass) l->fb->B->g = ctx->fb_grad + n, l->feedback_grad = l->fb->def->grad;
            n += l->fb->B->n;
        }
        if (pass == 0) {
            if (!n) return ASYM_OK;
            if (!(ctx->fb_grad = asym_falloc(n))) return ASYM_ERR;
            memset(ctx->fb_grad, 0, sizeof(float) * n);
            ctx->n_fb_grad = n, n = 0;
        }
    }
    return ASYM_OK;
}

int feedback_setup(NetCtx *ctx, Seq *top, const AsymNetSpec *spec, AsymRng *rng) {
    const AsymFeedbackSpec *o = &ctx->fb;
    int net_rule = spec->rule ? spec->rule : ASYM_RULE_BP;
    size_t floats = 0, doubles = 0;
    if (!(o->concordance >= 0.0f && o->concordance <= 1.0f)) return asym_fail("feedback: concordance must be in [0, 1], got %g", o->concordance);
    if (apply_overrides(ctx, spec)) return ASYM_ERR;
    for (int i = 0; i < ctx->n_weight_layers; i++) {
        Layer *l = ctx->weight_layers[i];
        if (setup_layer(l, l->spec_rule ? l->spec_rule : net_rule, rng, &floats, &doubles)) return ASYM_ERR;
    }
    if (own_grads(ctx)) return ASYM_ERR;
    if (floats && (!(ctx->mirror = asym_falloc(floats)) || !(ctx->mirror_gram = asym_calloc(doubles, sizeof(double))))) return ASYM_ERR;
    if (setup_direct(ctx, top, rng, last_weight_layer(top))) return ASYM_ERR;
    for (int i = 0; i < ctx->n_weight_layers; i++) {
        Layer *l = ctx->weight_layers[i];
        if (l->fb->def->start) l->fb->def->start(l);
        if (l->fb->B) rule_mask_apply(l);
    }
    return ASYM_OK;
}

void feedback_before_step(NetCtx *ctx) {
    for (int i = 0; i < ctx->n_weight_layers; i++) {
        Layer *l = ctx->weight_layers[i];
        if (l->fb && l->fb->def->before_step) l->fb->def->before_step(l);
    }
}

void feedback_after_step(NetCtx *ctx) {
    const AsymFeedbackSpec *o = &ctx->fb;
    for (int i = 0; i < ctx->n_weight_layers; i++) {
        Layer *l = ctx->weight_layers[i];
        Feedback *fb = l->fb;
        if (o->fixed_weight_norm) rule_scale_to(l->W->w, l->W->n, fb->w0norm);
        if (fb->def->after_step) fb->def->after_step(l);
        if (fb->def->refresh) {
            if (!fb->mask && !o->norm_feedback) {
                l->b_stale = 1;
                continue;
            }
            fb->def->refresh(l);
        }
        if (fb->B) rule_mask_apply(l);
        if (o->norm_feedback && fb->B) rule_scale_to(fb->B->w, fb->B->n, vec_norm(l->W->w, l->W->n));
    }
}

void feedback_current(NetCtx *ctx) {
    for (int i = 0; i < ctx->n_weight_layers; i++) layer_feedback_current(ctx->weight_layers[i]);
}

int feedback_tensor_fixed(const NetCtx *ctx, const AsymParam *t) {
    if (t->g) return 0;
    for (int i = 0; i < ctx->n_weight_layers; i++) {
        const Layer *l = ctx->weight_layers[i];
        if (l->fb && l->fb->B == t) return !l->fb->def->after_step && !l->fb->def->refresh && !ctx->fb.norm_feedback;
    }
    return 1;
}

int feedback_grad_derived(const NetCtx *ctx, const AsymParam *t) {
    for (int i = 0; i < ctx->n_weight_layers; i++) {
        const Feedback *fb = ctx->weight_layers[i]->fb;
        if (fb && fb->def->before_step && t->g && t->g == fb->Rg) return 1;
    }
    return 0;
}

void feedback_follow_weights(Layer *l, int b_loaded) {
    if (b_loaded) l->b_stale = 0; /* the loaded B is B */
    else layer_feedback_current(l);
    if (l->fb->def->follow_weights) l->fb->def->follow_weights(l, b_loaded);
    if (l->fb->B && l->fb->mask) {
        rule_mask_apply(l);
        if (l->fb->def->follow_weights && l->ctx->fb.norm_feedback) rule_scale_to(l->fb->B->w, l->fb->B->n, vec_norm(l->W->w, l->W->n));
    }
}

int feedback_wm_fallbacks(const NetCtx *ctx) {
    int n = 0;
    for (int i = 0; i < ctx->n_weight_layers; i++) n += ctx->weight_layers[i]->fb ? ctx->weight_layers[i]->fb->wm_fallbacks : 0;
    return n;
}
