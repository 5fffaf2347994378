/* datacfg.c: the `data` section of an experiment: which reader, where the
 * files are, and how images are prepared (padding, normalization, limits,
 * validation split); and loading the three sets it describes. */
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "data.h"

/* A list element that must be a number (positive when positive != 0). */
static int scalar_number(const Cfg *c, CfgNode *n, const char *path, int positive, float *out) {
    char *end = NULL;
    double v = n->kind == CFG_SCALAR ? strtod(n->value, &end) : 0;
    n->used = 1;
    if (n->kind != CFG_SCALAR || end == n->value || *end || !(v == v) || (positive && !(v > 0)))
        return cfg_error(c, n, path, "expected a %snumber", positive ? "positive " : "");
    *out = (float)v;
    return ASYM_OK;
}

int data_read_config(const Cfg *c, CfgNode *root, AsymDataSpec *ex) {
    static const char *const FORMATS[] = {"idx", "random", NULL};
    CfgNode *d = cfg_child(root, "data");
    CfgNode empty = {.kind = CFG_MAP};
    if (!d) d = &empty;
    if (d->kind != CFG_MAP) return cfg_error(c, d, "data", "expected a map");
    const char *fmt, *path;
    if (cfg_get_str(c, d, "data", "format", "idx", FORMATS, &fmt)) return ASYM_ERR;
    if (cfg_get_str(c, d, "data", "path", "/usr/share/datasets/fashion-mnist", NULL, &path)) return ASYM_ERR;
    snprintf(ex->format, sizeof ex->format, "%s", fmt);
    if (strlen(path) >= sizeof ex->path) return cfg_error(c, d, "data", "path too long");
    snprintf(ex->path, sizeof ex->path, "%s", path);
    GET_INT(d, "data", "pad", 0, 0, 64, ex->pad);
    GET_INT(d, "data", "train_limit", 0, 0, 1 << 30, ex->train_limit);
    GET_INT(d, "data", "test_limit", 0, 0, 1 << 30, ex->test_limit);
    GET_INT(d, "data", "val_size", 0, 0, 1 << 30, ex->val_size);
    if (cfg_get_bool(c, d, "data", "normalize", 1, &ex->normalize)) return ASYM_ERR;
    CfgNode *mean = cfg_child(d, "mean"), *std = cfg_child(d, "std");
    if (mean || std) {
        if (!mean || !std || mean->kind != CFG_SEQ || std->kind != CFG_SEQ || mean->n_items != std->n_items || mean->n_items < 1 || mean->n_items > 4)
            return cfg_error(c, mean ? mean : std, "data.mean", "data.mean and data.std must be lists of 1 to 4 numbers of the same length");
        for (int i = 0; i < mean->n_items; i++) {
            if (scalar_number(c, mean->items[i], "data.mean", 0, &ex->mean[i]) || scalar_number(c, std->items[i], "data.std", 1, &ex->std[i]))
                return ASYM_ERR;
        }
        ex->norm_given = mean->n_items;
    }
    CfgNode *r = cfg_child(d, "random");
    CfgNode none = {.kind = CFG_MAP};
    if (!r) r = &none;
    if (r->kind != CFG_MAP) return cfg_error(c, r, "data.random", "expected a map");
    GET_INT(r, "data.random", "n", 1000, 1, 1 << 24, ex->random_n);
    GET_INT(r, "data.random", "c", 3, 1, 4, ex->random_c);
    GET_INT(r, "data.random", "h", 32, 1, 4096, ex->random_h);
    GET_INT(r, "data.random", "w", 32, 1, 4096, ex->random_w);
    GET_INT(r, "data.random", "classes", 10, 2, 1 << 20, ex->random_classes);
    if (ex->norm_given && !strcmp(fmt, "idx") && ex->norm_given != 1) return cfg_error(c, mean, "data.mean", "IDX images have 1 channel, got %d means", ex->norm_given);
    int idx = !strcmp(fmt, "idx");
    ex->c = idx ? 1 : ex->random_c;
    ex->h = (idx ? 28 : ex->random_h) + 2 * ex->pad;
    ex->w = (idx ? 28 : ex->random_w) + 2 * ex->pad;
    ex->classes = idx ? 10 : ex->random_classes;
    return ASYM_OK;
}

int asym_data_load(const AsymDataSpec *ex, uint64_t seed, AsymDataset *train, AsymDataset *val, AsymDataset *test) {
    memset(train, 0, sizeof *train);
    memset(val, 0, sizeof *val);
    memset(test, 0, sizeof *test);
    int rc;
    if (!strcmp(ex->format, "random")) {
        int nt = ex->random_n / 5 > 0 ? ex->random_n / 5 : 1;
        rc = asym_dataset_random(train, ex->random_n, ex->random_c, ex->random_h, ex->random_w, ex->random_classes, seed * 2 + 1);
        if (!rc) rc = asym_dataset_random(test, nt, ex->random_c, ex->random_h, ex->random_w, ex->random_classes, seed * 2 + 2);
    } else {
        rc = asym_dataset_load_idx(train, ex->path, 1);
        if (!rc) rc = asym_dataset_load_idx(test, ex->path, 0);
    }
    if (rc) goto fail;
    if (train->c != ex->c || train->h + 2 * ex->pad != ex->h || train->w + 2 * ex->pad != ex->w || test->h != train->h || test->w != train->w) {
        rc = asym_fail("%s: images are %dx%dx%d, the model expects %dx%dx%d before padding by %d", ex->path, train->c, train->h, train->w, ex->c,
                       ex->h - 2 * ex->pad, ex->w - 2 * ex->pad, ex->pad);
        goto fail;
    }
    if (train->classes > ex->classes || test->classes > ex->classes) {
        rc = asym_fail("%s: labels go up to %d, the model has %d classes", ex->path, (train->classes > test->classes ? train->classes : test->classes) - 1, ex->classes);
        goto fail;
    }
    if (ex->train_limit && ex->train_limit < train->n) asym_dataset_truncate(train, ex->train_limit);
    if (ex->test_limit && ex->test_limit < test->n) asym_dataset_truncate(test, ex->test_limit);
    if (ex->val_size && (rc = asym_dataset_split(train, val, ex->val_size, seed ^ 0x5eed))) goto fail;
    if (ex->pad && ((rc = asym_dataset_pad(train, ex->pad)) || (rc = asym_dataset_pad(test, ex->pad)) || (val->n && (rc = asym_dataset_pad(val, ex->pad)))))
        goto fail;
    if (ex->normalize || ex->norm_given) {
        float mean[4] = {0}, std[4] = {1, 1, 1, 1};
        if (ex->norm_given) {
            memcpy(mean, ex->mean, sizeof mean);
            memcpy(std, ex->std, sizeof std);
        } else {
            asym_dataset_stats(train, mean, std);
        }
        asym_dataset_normalize(train, mean, std);
        asym_dataset_normalize(test, mean, std);
        if (val->n) asym_dataset_normalize(val, mean, std);
    }
    return ASYM_OK;
fail:
    asym_dataset_free(train);
    asym_dataset_free(val);
    asym_dataset_free(test);
    return ASYM_ERR;
}

