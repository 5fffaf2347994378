/* arch.c: named architectures as layer lists. The caller sets the input
 * shape and classes of the spec first.
 * - MLP with optional batch norm after each hidden layer.
 * - LeNet-5 as in BioTorch: conv6 5x5, pool, conv16 5x5, pool, conv120 5x5,
 *   fc84, fc, ReLU, max pooling, 32x32 input.
 * - CIFAR ResNets of He et al. 2016 (depth 6n+2: 16-32-64 channels).
 * - ImageNet ResNets (18/34 basic blocks, 50/101/152 bottlenecks), with a
 *   global average pool so any input size at least 32x32 works. */
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

static int push(AsymNetSpec *s, AsymLayerSpec l) {
    AsymLayerSpec *p = realloc(s->layers, sizeof(AsymLayerSpec) * (s->n_layers + 1));
    if (!p) return asym_fail("out of memory");
    s->layers = p;
    s->layers[s->n_layers++] = l;
    return ASYM_OK;
}

static AsymLayerSpec mk(AsymLayerKind kind, int out, int k, int stride, int pad) {
    AsymLayerSpec l = {.kind = kind, .out = out, .k = k, .stride = stride, .pad = pad, .bias = 1, .lr_scale = 1.0f};
    return l;
}

void asym_netspec_free(AsymNetSpec *s) {
    free(s->layers);
    s->layers = NULL;
    s->n_layers = 0;
}

int asym_arch_mlp(AsymNetSpec *s, const int *hidden, int n_hidden, int bn, AsymLayerKind act) {
    int rc = push(s, mk(ASYM_FLATTEN, 0, 0, 0, 0));
    for (int i = 0; i < n_hidden && !rc; i++) {
        if (hidden[i] <= 0) return asym_fail("mlp: hidden width %d must be positive", hidden[i]);
        rc = push(s, mk(ASYM_FC, hidden[i], 0, 0, 0));
        if (bn && !rc) rc = push(s, mk(ASYM_BATCHNORM, 0, 0, 0, 0));
        if (!rc) rc = push(s, mk(act, 0, 0, 0, 0));
    }
    return rc ? rc : push(s, mk(ASYM_FC, s->classes, 0, 0, 0));
}

int asym_arch_lenet(AsymNetSpec *s) {
    if (s->in_h != 32 || s->in_w != 32) return asym_fail("lenet: needs 32x32 input (pad 28x28 images by 2, or resize them with data.size: 32), got %dx%d", s->in_h, s->in_w);
    AsymLayerSpec L[] = {
        mk(ASYM_CONV, 6, 5, 1, 0), mk(ASYM_RELU, 0, 0, 0, 0), mk(ASYM_MAXPOOL, 0, 2, 2, 0),
        mk(ASYM_CONV, 16, 5, 1, 0), mk(ASYM_RELU, 0, 0, 0, 0), mk(ASYM_MAXPOOL, 0, 2, 2, 0),
        mk(ASYM_CONV, 120, 5, 1, 0), mk(ASYM_RELU, 0, 0, 0, 0), mk(ASYM_FLATTEN, 0, 0, 0, 0),
        mk(ASYM_FC, 84, 0, 0, 0), mk(ASYM_RELU, 0, 0, 0, 0), mk(ASYM_FC, s->classes, 0, 0, 0),
    };
    for (size_t i = 0; i < sizeof L / sizeof L[0]; i++)
        if (push(s, L[i])) return ASYM_ERR;
    return ASYM_OK;
}

static int head(AsymNetSpec *s) {
    AsymLayerSpec pool = mk(ASYM_AVGPOOL, 0, 0, 0, 0);
    return push(s, pool) || push(s, mk(ASYM_FLATTEN, 0, 0, 0, 0)) || push(s, mk(ASYM_FC, s->classes, 0, 0, 0)) ? ASYM_ERR : ASYM_OK;
}

static AsymLayerSpec block(int out, int stride, AsymShortcut sc, int bottleneck) {
    AsymLayerSpec b = mk(ASYM_RESBLOCK, out, 3, stride, 1);
    b.shortcut = sc;
    b.bottleneck = bottleneck;
    return b;
}

int asym_arch_resnet_cifar(AsymNetSpec *s, int depth, AsymShortcut sc) {
    if (depth < 8 || (depth - 2) % 6) return asym_fail("resnet: CIFAR depth must be 6n+2 (20, 32, 44, 56, 110), got %d", depth);
    int n = (depth - 2) / 6;
    AsymLayerSpec stem = mk(ASYM_CONV, 16, 3, 1, 1);
    stem.bias = 0;
    if (push(s, stem) || push(s, mk(ASYM_BATCHNORM, 0, 0, 0, 0)) || push(s, mk(ASYM_RELU, 0, 0, 0, 0))) return ASYM_ERR;
    static const int width[3] = {16, 32, 64};
    for (int st = 0; st < 3; st++)
        for (int b = 0; b < n; b++)
            if (push(s, block(width[st], st > 0 && b == 0 ? 2 : 1, sc, 0))) return ASYM_ERR;
    return head(s);
}

int asym_arch_resnet_imagenet(AsymNetSpec *s, int depth) {
    static const int blocks[5][4] = {{2, 2, 2, 2}, {3, 4, 6, 3}, {3, 4, 6, 3}, {3, 4, 23, 3}, {3, 8, 36, 3}};
    int idx = depth == 18 ? 0 : depth == 34 ? 1 : depth == 50 ? 2 : depth == 101 ? 3 : depth == 152 ? 4 : -1;
    if (idx < 0) return asym_fail("resnet: ImageNet depth must be 18, 34, 50, 101 or 152, got %d", depth);
    if (s->in_h < 32 || s->in_w < 32) return asym_fail("resnet%d: needs input of at least 32x32, got %dx%d", depth, s->in_h, s->in_w);
    int bottleneck = depth >= 50;
    AsymLayerSpec stem = mk(ASYM_CONV, 64, 7, 2, 3);
    stem.bias = 0;
    if (push(s, stem) || push(s, mk(ASYM_BATCHNORM, 0, 0, 0, 0)) || push(s, mk(ASYM_RELU, 0, 0, 0, 0)) || push(s, mk(ASYM_MAXPOOL, 0, 3, 2, 1))) return ASYM_ERR;
    for (int st = 0; st < 4; st++) {
        int width = (64 << st) * (bottleneck ? 4 : 1);
        for (int b = 0; b < blocks[idx][st]; b++)
            if (push(s, block(width, st > 0 && b == 0 ? 2 : 1, ASYM_SHORTCUT_B, bottleneck))) return ASYM_ERR;
    }
    return head(s);
}
