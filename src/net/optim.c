/* optim.c: SGD with momentum, dampening and Nesterov, and Adam, with L2
 * weight decay added to the gradient, exactly as torch.optim.SGD and
 * torch.optim.Adam; learning-rate schedules as torch.optim.lr_scheduler
 * (StepLR, MultiStepLR, CosineAnnealingLR), evaluated per epoch. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/checkpoint.h"
#include "net/net.h"

struct AsymOptim {
    AsymNet *net;
    AsymOptSpec spec;
    float *m, *v;  /* per parameter float: momentum / first moment, second moment */
    long t;        /* steps taken */
    int nonfinite; /* the last step wrote a NaN or an Inf */
};

/* Whether v is a NaN or an Inf (all exponent bits set), on its bits: no
 * floating-point exception, and it vectorizes. */
static inline int nonfinite(float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    return (u & 0x7f800000u) == 0x7f800000u;
}

int asym_optim_create(AsymOptim **out, AsymNet *net, const AsymOptSpec *spec) {
    *out = NULL;
    if (spec->kind != ASYM_SGD && spec->kind != ASYM_ADAM) return asym_fail("optimizer: unknown kind %d", (int)spec->kind);
    if (spec->nesterov && (spec->momentum <= 0 || spec->dampening != 0))
        return asym_fail("optimizer: Nesterov momentum needs momentum > 0 and zero dampening");
    /* a pfa layer that steps B itself (no R) needs SGD's linear step */
    for (int i = 0; i < asym_net_n_weight_layers(net) && (spec->kind != ASYM_SGD || spec->manhattan); i++) {
        const Feedback *fb = net_weight_layer(net, i)->fb;
        if (fb->F && !fb->R)
            return asym_fail("optimizer: layer %s's pfa steps B itself, which needs SGD without Batch Manhattan (the network was built with "
                             "the feedback option linear_optimizer); build it without that option for this optimizer",
                             net_weight_layer(net, i)->name);
    }
    AsymOptim *o = asym_calloc(1, sizeof(AsymOptim));
    if (!o) return ASYM_ERR;
    o->net = net;
    o->spec = *spec;
    size_t n = asym_net_n_weights(net);
    for (int i = 0; i < asym_net_n_feedback(net); i++)
        if (net_feedback_as_is(net, i)->g) n += net_feedback_as_is(net, i)->n;
    o->m = asym_falloc(n);
    if (spec->kind == ASYM_ADAM) o->v = asym_falloc(n);
    if (!o->m || (spec->kind == ASYM_ADAM && !o->v)) {
        asym_optim_free(o);
        return ASYM_ERR;
    }
    *out = o;
    return ASYM_OK;
}

void optim_state(AsymOptim *o, AsymOptKind *kind, float **m, float **v, long **t) {
    *kind = o->spec.kind;
    *m = o->m;
    *v = o->v;
    *t = &o->t;
}

void asym_optim_free(AsymOptim *o) {
    if (!o) return;
    free(o->m);
    free(o->v);
    free(o);
}

/* Batch Manhattan (Liao et al. 2016) replaces each gradient entry by its
 * sign before weight decay and momentum. */
static int sgd_update(const AsymOptSpec *s, AsymParam *p, float *buf, float lr, int first) {
    float wd = p->decay ? s->weight_decay : 0.0f, mom = s->momentum, damp = s->dampening;
    int bad = 0;
    if (!s->manhattan && mom != 0.0f && !first && !s->nesterov) {
        /* the usual case without branches, so that it vectorizes; the same floats */
        float keep = 1.0f - damp, *w = p->w;
        const float *gr = p->g;
#pragma omp parallel for simd schedule(static) reduction(| : bad) if (p->n > 32768)
        for (size_t i = 0; i < p->n; i++) {
            float g = gr[i] + wd * w[i], b = mom * buf[i] + keep * g;
            buf[i] = b;
            w[i] -= lr * b;
            bad |= nonfinite(w[i]);
        }
        return bad;
    }
    for (size_t i = 0; i < p->n; i++) {
        float d = p->g[i];
        if (s->manhattan) d = (float)((d > 0) - (d < 0));
        float g = d + wd * p->w[i];
        if (mom != 0.0f) {
            buf[i] = first ? g : mom * buf[i] + (1.0f - damp) * g;
            g = s->nesterov ? g + mom * buf[i] : buf[i];
        }
        p->w[i] -= lr * g;
        bad |= nonfinite(p->w[i]);
    }
    return bad;
}

static int adam_update(const AsymOptSpec *s, AsymParam *p, float *m, float *v, float lr, long t) {
    float wd = p->decay ? s->weight_decay : 0.0f, b1 = s->beta1, b2 = s->beta2;
    double bc1 = 1.0 - pow(b1, (double)t), bc2 = 1.0 - pow(b2, (double)t);
    float step = (float)(lr / bc1), sq = (float)sqrt(bc2);
    int bad = 0;
#pragma omp parallel for simd schedule(static) reduction(| : bad) if (p->n > 32768)
    for (size_t i = 0; i < p->n; i++) {
        float g = p->g[i] + wd * p->w[i];
        m[i] = b1 * m[i] + (1.0f - b1) * g;
        v[i] = b2 * v[i] + (1.0f - b2) * g * g;
        p->w[i] -= step * m[i] / (sqrtf(v[i]) / sq + s->eps);
        bad |= nonfinite(p->w[i]);
    }
    return bad;
}

static void update(AsymOptim *o, AsymParam *p, size_t off, float lr) {
    float plr = lr * p->lr_scale;
    if (o->spec.kind == ASYM_ADAM) o->nonfinite |= adam_update(&o->spec, p, o->m + off, o->v + off, plr, o->t);
    else o->nonfinite |= sgd_update(&o->spec, p, o->m + off, plr, o->t == 1);
}

int optim_wrote_nonfinite(const AsymOptim *o) { return o->nonfinite; }

/* Parameters, then the feedback matrices that have a gradient (kp, urfb:
 * W's; pfa's R: its own, set here before the step). */
void asym_optim_step(AsymOptim *o, float lr) {
    net_feedback_before_step(o->net);
    o->t++;
    o->nonfinite = 0;
    size_t off = 0;
    for (int i = 0; i < asym_net_n_params(o->net); i++) {
        AsymParam *p = asym_net_param(o->net, i);
        update(o, p, off, lr);
        off += p->n;
    }
    for (int i = 0; i < asym_net_n_feedback(o->net); i++) {
        AsymParam *p = net_feedback_as_is(o->net, i);
        if (!p->g) continue;
        update(o, p, off, lr);
        off += p->n;
    }
}

float asym_sched_lr(const AsymSchedSpec *s, float base, int epoch, int epochs) {
    switch (s->kind) {
    case ASYM_SCHED_STEP:
        return s->step_size > 0 ? base * powf(s->gamma, (float)(epoch / s->step_size)) : base;
    case ASYM_SCHED_MULTISTEP: {
        float lr = base;
        for (int i = 0; i < s->n_milestones; i++)
            if (epoch >= s->milestones[i]) lr *= s->gamma;
        return lr;
    }
    case ASYM_SCHED_COSINE: {
        int T = s->t_max > 0 ? s->t_max : epochs;
        return s->eta_min + (base - s->eta_min) * 0.5f * (1.0f + cosf((float)M_PI * (float)epoch / (float)T));
    }
    default:
        return base;
    }
}
