/* kinds.c: the layer kinds, the only list of them: each kind's name in
 * configs and probe files, and the function that creates it (one file per
 * kind). */
#include <string.h>

#include "layers/layers.h"

typedef struct Kind {
    const char *name;
    Layer *(*create)(const AsymLayerSpec *s, Shape in, NetCtx *ctx, const char *name);
} Kind;

static const Kind KINDS[] = {
    [ASYM_FC] = {"fc", fc_create},
    [ASYM_CONV] = {"conv", conv2d_create},
    [ASYM_MAXPOOL] = {"maxpool", pool_create},
    [ASYM_AVGPOOL] = {"avgpool", pool_create},
    [ASYM_BATCHNORM] = {"batchnorm", batchnorm_create},
    [ASYM_RELU] = {"relu", activation_create},
    [ASYM_TANH] = {"tanh", activation_create},
    [ASYM_SIGMOID] = {"sigmoid", activation_create},
    [ASYM_FLATTEN] = {"flatten", flatten_create},
    [ASYM_DROPOUT] = {"dropout", dropout_create},
    [ASYM_RESBLOCK] = {"resblock", resblock_create},
};
enum { N_KINDS = sizeof KINDS / sizeof KINDS[0] };

const char *layer_kind_name(AsymLayerKind k) { return (int)k > 0 && (int)k < N_KINDS ? KINDS[k].name : "?"; }

AsymLayerKind layer_kind_parse(const char *name) {
    for (int k = 1; k < N_KINDS; k++)
        if (!strcmp(name, KINDS[k].name)) return (AsymLayerKind)k;
    return (AsymLayerKind)0;
}

Layer *layer_create(const AsymLayerSpec *s, Shape in, NetCtx *ctx, const char *name) {
    if (!((int)s->kind > 0 && (int)s->kind < N_KINDS)) {
        asym_fail("layer %s (line %d): unknown layer kind %d", name, s->line, (int)s->kind);
        return NULL;
    }
    Layer *l = KINDS[s->kind].create(s, in, ctx, name);
    if (l) l->spec_rule = s->rule;
    if (l && s->lr_scale != 0) {
        float k = s->lr_scale > 0 ? s->lr_scale : 0.0f; /* negative: frozen */
        if (l->W) l->W->lr_scale = k;
        if (l->b) l->b->lr_scale = k;
    }
    return l;
}
