/* data_keys.c: the `data` section of an experiment: which format, where
 * the files are, and how images are prepared (class subset and per-class
 * sampling as in Liao, Leibo and Poggio (2016), resizing and grayscale,
 * padding, normalization, limits, validation split, augmentation), read
 * into an AsymDataSpec that data/ then loads. docs/DATA.md is the
 * reference for the keys and the files each format expects. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/config.h"
#include "data/data.h"

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

/* data.cache: true (the user's cache folder), false, or a folder. */
static int read_cache(const Cfg *c, CfgNode *d, AsymDataOptions *o) {
    CfgNode *n = cfg_child(d, "cache");
    o->cache[0] = 0;
    if (!n) return ASYM_OK;
    if (n->kind != CFG_SCALAR || !*n->value) return cfg_error(c, n, "data.cache", "expected true, false or a folder");
    static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no", "off"};
    for (int i = 0; i < 3; i++)
        if (!strcasecmp(n->value, no[i])) return ASYM_OK;
    const char *dir = n->value;
    char def[1024];
    for (int i = 0; i < 3; i++)
        if (!strcasecmp(n->value, yes[i])) {
            const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
            if (xdg && *xdg) snprintf(def, sizeof def, "%s/asymbp", xdg);
            else if (home && *home) snprintf(def, sizeof def, "%s/.cache/asymbp", home);
            else return cfg_error(c, n, "data.cache", "neither XDG_CACHE_HOME nor HOME is set; give a folder");
            dir = def;
        }
    if (strlen(dir) >= sizeof o->cache) return cfg_error(c, n, "data.cache", "path too long");
    snprintf(o->cache, sizeof o->cache, "%s", dir);
    return ASYM_OK;
}

/* data.exclude: class folder names, kept one per line. */
static int read_exclude(const Cfg *c, CfgNode *d, AsymDataOptions *o) {
    CfgNode *n = cfg_child(d, "exclude");
    o->exclude[0] = 0;
    if (!n) return ASYM_OK;
    if (n->kind == CFG_MAP) return cfg_error(c, n, "data.exclude", "expected a list of class folder names");
    CfgNode *const *el = n->kind == CFG_SEQ ? n->items : &n;
    int count = n->kind == CFG_SEQ ? n->n_items : 1;
    size_t len = 0;
    for (int i = 0; i < count; i++) {
        el[i]->used = 1;
        if (el[i]->kind != CFG_SCALAR || !*el[i]->value || strchr(el[i]->value, '/') || strchr(el[i]->value, '\n'))
            return cfg_error(c, el[i], "data.exclude", "expected a class folder name");
        size_t l = strlen(el[i]->value);
        if (len + l + 2 > sizeof o->exclude) return cfg_error(c, n, "data.exclude", "list too long");
        memcpy(o->exclude + len, el[i]->value, l);
        len += l;
        o->exclude[len++] = '\n';
        o->exclude[len] = 0;
    }
    return ASYM_OK;
}

/* The readers' options; those of one format are refused elsewhere. */
static int read_options(const Cfg *c, CfgNode *d, AsymDataOptions *o) {
    static const char *const LABELS[] = {"fine", "coarse", NULL};
    const char *label;
    if (cfg_get_str(c, d, "data", "label", "fine", LABELS, &label)) return ASYM_ERR;
    o->coarse = !strcmp(label, "coarse");
    int size[2] = {32, 32}, nsize = 0;
    if (cfg_get_int_list(c, d, "data", "size", size, 2, &nsize)) return ASYM_ERR;
    if (nsize == 1) size[1] = size[0];
    if (nsize == 0 && cfg_child(d, "size")) return cfg_error(c, cfg_child(d, "size"), "data.size", "expected [height, width] or one side");
    for (int i = 0; i < 2; i++)
        if (size[i] < 1 || size[i] > 4096) return cfg_error(c, cfg_child(d, "size"), "data.size", "sides must be 1 to 4096 pixels");
    o->size_h = size[0];
    o->size_w = size[1];
    o->resize = nsize > 0;
    if (cfg_get_bool(c, d, "data", "grayscale", 0, &o->grayscale)) return ASYM_ERR;
    GET_INT(d, "data", "train_per_class", 0, 0, 1 << 30, o->train_per_class);
    GET_INT(d, "data", "test_per_class", 0, 0, 1 << 30, o->test_per_class);
    GET_INT(d, "data", "classes_subset", 0, 0, 1 << 20, o->classes_subset);
    GET_INT(d, "data", "classes", 0, 0, 1 << 20, o->classes);
    if (o->classes_subset == 1) return cfg_error(c, cfg_child(d, "classes_subset"), "data.classes_subset", "needs at least 2 classes (0: all)");
    if (cfg_child(d, "sample_seed")) {
        long v;
        if (cfg_get_int(c, d, "data", "sample_seed", 0, 0, 0x7fffffffffffffffL, &v)) return ASYM_ERR;
        o->sample_seed = (uint64_t)v;
        o->sample_seed_given = 1;
    }
    return read_cache(c, d, o) || read_exclude(c, d, o) ? ASYM_ERR : ASYM_OK;
}

/* A path key of format imagenet: relative ones under data.path. */
static int read_rel_path(const Cfg *c, CfgNode *d, const char *key, const char *root, char *out, size_t cap) {
    CfgNode *n = cfg_child(d, key);
    char path[64];
    snprintf(path, sizeof path, "data.%s", key);
    out[0] = 0;
    if (!n) return ASYM_OK;
    n->used = 1;
    if (n->kind != CFG_SCALAR || !*n->value) return cfg_error(c, n, path, "expected a file name");
    int l = n->value[0] == '/' ? snprintf(out, cap, "%s", n->value) : snprintf(out, cap, "%s/%s", root, n->value);
    if (l < 0 || (size_t)l >= cap) return cfg_error(c, n, path, "path too long");
    return ASYM_OK;
}

/* data.train_shards, data.val_shards: one pattern or a list, kept one per line. */
static int read_shards(const Cfg *c, CfgNode *d, const char *key, char *out, size_t cap) {
    CfgNode *n = cfg_child(d, key);
    char path[64];
    snprintf(path, sizeof path, "data.%s", key);
    out[0] = 0;
    if (!n) return ASYM_OK;
    n->used = 1;
    if (n->kind == CFG_MAP) return cfg_error(c, n, path, "expected a shard pattern or a list of shards");
    CfgNode *const *el = n->kind == CFG_SEQ ? n->items : &n;
    int count = n->kind == CFG_SEQ ? n->n_items : 1;
    size_t len = 0;
    for (int i = 0; i < count; i++) {
        el[i]->used = 1;
        if (el[i]->kind != CFG_SCALAR || !*el[i]->value || strchr(el[i]->value, '\n')) return cfg_error(c, el[i], path, "expected a shard file name");
        size_t l = strlen(el[i]->value);
        if (len + l + 2 > cap) return cfg_error(c, n, path, "list too long");
        memcpy(out + len, el[i]->value, l);
        len += l;
        out[len++] = '\n';
        out[len] = 0;
    }
    if (!len) return cfg_error(c, n, path, "no shards");
    return ASYM_OK;
}

/* data.cache_dir: a folder, false (no cache), or by default the user's
 * cache folder (XDG_CACHE_HOME or ~/.cache, then asymbp). */
static int read_cache_dir(const Cfg *c, CfgNode *d, char *out, size_t cap) {
    CfgNode *n = cfg_child(d, "cache_dir");
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    out[0] = 0;
    if (n) {
        n->used = 1;
        if (n->kind != CFG_SCALAR || !*n->value) return cfg_error(c, n, "data.cache_dir", "expected a folder or false");
        if (!strcasecmp(n->value, "false") || !strcasecmp(n->value, "no") || !strcasecmp(n->value, "off")) return ASYM_OK;
        if ((size_t)snprintf(out, cap, "%s", n->value) >= cap) return cfg_error(c, n, "data.cache_dir", "path too long");
        return ASYM_OK;
    }
    if (xdg && *xdg) snprintf(out, cap, "%s/asymbp", xdg);
    else if (home && *home) snprintf(out, cap, "%s/.cache/asymbp", home);
    return ASYM_OK;
}

/* The keys of the streamed format (data/imagenet.c). */
static int read_stream(const Cfg *c, CfgNode *d, const char *root, StreamSpec *s) {
    memset(s, 0, sizeof *s);
    if (read_rel_path(c, d, "val_labels", root, s->val_labels, sizeof s->val_labels)) return ASYM_ERR;
    if (read_shards(c, d, "train_shards", s->train_shards, sizeof s->train_shards)) return ASYM_ERR;
    if (read_shards(c, d, "val_shards", s->val_shards, sizeof s->val_shards)) return ASYM_ERR;
    if (!!s->train_shards[0] != !!s->val_shards[0])
        return cfg_error(c, d, "data.train_shards", "give both data.train_shards and data.val_shards, or neither");
    if (s->val_labels[0] && s->val_shards[0]) return cfg_error(c, cfg_child(d, "val_labels"), "data.val_labels", "applies to a val folder, not shards");
    GET_INT(d, "data", "workers", 0, 0, 256, s->workers);
    long v;
    if (cfg_get_int(c, d, "data", "max_bad_files", -1, -1, 1L << 40, &v)) return ASYM_ERR;
    s->max_bad = v;
    return read_cache_dir(c, d, s->cache_dir, sizeof s->cache_dir);
}

/* data.augment's sizes: one side (a square) or [height, width]. */
static int read_sides(const Cfg *c, CfgNode *a, const char *key, int *h, int *w) {
    int v[2] = {0, 0}, n = 0;
    char path[64];
    snprintf(path, sizeof path, "data.augment.%s", key);
    if (cfg_get_int_list(c, a, "data.augment", key, v, 2, &n)) return ASYM_ERR;
    if (!n && cfg_child(a, key)) return cfg_error(c, cfg_child(a, key), path, "expected [height, width] or one side");
    if (n == 1) v[1] = v[0];
    for (int i = 0; i < n; i++)
        if (v[i] < 1 || v[i] > 4096) return cfg_error(c, cfg_child(a, key), path, "sides must be 1 to 4096 pixels");
    *h = v[0], *w = v[1];
    return ASYM_OK;
}

/* A range [lo, hi] of positive numbers (hi <= max when max > 0); def when absent. */
static int read_range(const Cfg *c, CfgNode *a, const char *key, const double def[2], double max, double out[2]) {
    CfgNode *n = cfg_child(a, key);
    char path[64];
    snprintf(path, sizeof path, "data.augment.%s", key);
    out[0] = def[0], out[1] = def[1];
    if (!n) return ASYM_OK;
    if (n->kind != CFG_SEQ || n->n_items != 2) return cfg_error(c, n, path, "expected [low, high]");
    for (int i = 0; i < 2; i++) {
        float v;
        if (scalar_number(c, n->items[i], path, 1, &v)) return ASYM_ERR;
        out[i] = v;
    }
    if (out[0] > out[1]) return cfg_error(c, n, path, "low %g is above high %g", out[0], out[1]);
    if (max > 0 && out[1] > max) return cfg_error(c, n, path, "high %g is above %g", out[1], max);
    return ASYM_OK;
}

/* data.augment.hflip: true (probability 0.5), false, or a probability. */
static int read_hflip(const Cfg *c, CfgNode *a, float *p) {
    CfgNode *n = cfg_child(a, "hflip");
    *p = 0;
    if (!n) return ASYM_OK;
    if (n->kind == CFG_SCALAR && (!strcasecmp(n->value, "true") || !strcasecmp(n->value, "false"))) {
        *p = !strcasecmp(n->value, "true") ? 0.5f : 0;
        return ASYM_OK;
    }
    double v;
    if (cfg_get_float(c, a, "data.augment", "hflip", 0, 0, 1, &v)) return ASYM_ERR;
    *p = (float)v;
    return ASYM_OK;
}

/* The keys that need another one: what is named without what it shapes. */
static int check_augment_keys(const Cfg *c, CfgNode *a, const AugmentSpec *s) {
    if (cfg_child(a, "crop_pad") && !s->crop_h) return cfg_error(c, cfg_child(a, "crop_pad"), "data.augment.crop_pad", "needs data.augment.crop");
    if (cfg_child(a, "fill") && !s->crop_pad) return cfg_error(c, cfg_child(a, "fill"), "data.augment.fill", "needs data.augment.crop_pad");
    static const char *const rrc_keys[] = {"scale", "ratio"};
    for (int i = 0; i < 2; i++) {
        char path[64];
        snprintf(path, sizeof path, "data.augment.%s", rrc_keys[i]);
        if (cfg_child(a, rrc_keys[i]) && !s->rrc_h) return cfg_error(c, cfg_child(a, rrc_keys[i]), path, "needs data.augment.random_resized_crop");
    }
    if (s->crop_h && s->rrc_h)
        return cfg_error(c, cfg_child(a, "random_resized_crop"), "data.augment.random_resized_crop", "give crop or random_resized_crop, not both");
    return ASYM_OK;
}

/* data.augment: the training images' random transforms and the evaluation
 * transform (augment.c); every one off unless given. */
static int read_augment(const Cfg *c, CfgNode *d, AugmentSpec *s) {
    static const double SCALE[2] = {0.08, 1.0}, RATIO[2] = {3.0 / 4.0, 4.0 / 3.0};
    CfgNode *a = cfg_child(d, "augment");
    memset(s, 0, sizeof *s);
    if (!a) return ASYM_OK;
    if (a->kind != CFG_MAP) return cfg_error(c, a, "data.augment", "expected a map");
    if (read_sides(c, a, "crop", &s->crop_h, &s->crop_w)) return ASYM_ERR;
    GET_INT(a, "data.augment", "crop_pad", 0, 0, 1024, s->crop_pad);
    GET_FLOAT(a, "data.augment", "fill", 0, -1e6, 1e6, s->fill);
    if (read_hflip(c, a, &s->hflip) || read_sides(c, a, "random_resized_crop", &s->rrc_h, &s->rrc_w)) return ASYM_ERR;
    if (read_range(c, a, "scale", SCALE, 1, s->scale) || read_range(c, a, "ratio", RATIO, 0, s->ratio)) return ASYM_ERR;
    GET_INT(a, "data.augment", "eval_resize", 0, 0, 4096, s->eval_resize);
    if (read_sides(c, a, "eval_crop", &s->eval_crop_h, &s->eval_crop_w)) return ASYM_ERR;
    return check_augment_keys(c, a, s);
}

/* The augmentation's sizes against the images' (ex resolved without it):
 * a crop larger than the padded image, an evaluation size that is not the
 * training one, blamed on the key that sets it. */
static int check_augment(const Cfg *c, CfgNode *d, const AsymDataSpec *ex, const AugmentSpec *s) {
    int oh, ow;
    const char *key;
    if (!augment_on(s) || !augment_shape(s, ex->h, ex->w, &oh, &ow, &key)) return ASYM_OK;
    CfgNode *a = cfg_child(d, "augment"), *n = cfg_child(a, key);
    char path[64], why[512];
    snprintf(path, sizeof path, "data.augment.%s", key);
    snprintf(why, sizeof why, "%s", asym_last_error());
    return cfg_error(c, n ? n : a, path, "%s", why);
}

/* The format ("auto" detected) against the options given, then the model
 * input the data will have; where: the node data.path errors point at. */
static int check_format(const Cfg *c, CfgNode *d, CfgNode *where, AsymDataSpec *ex) {
    const AsymDataOptions *o = &ex->opt;
    const DataFormat *f = data_format_resolve(ex);
    if (!f) return cfg_error(c, where, "data.path", "%s", asym_last_error());
    for (int i = 0; i < d->n_items; i++) {
        const char *owner = data_format_of_key(d->items[i]->key);
        if (owner && strcmp(owner, f->name)) {
            char path[64];
            snprintf(path, sizeof path, "data.%s", d->items[i]->key);
            return cfg_error(c, d->items[i], path, "applies to format %s only (this is %s)", owner, f->name);
        }
    }
    if ((f->flags & (DATA_DRAWN | DATA_STREAMED)) && (o->train_per_class || o->test_per_class || o->classes_subset || o->grayscale))
        return cfg_error(c, d, "data", "format %s takes no sampling or grayscale options", f->name);
    if ((f->flags & DATA_STREAMED) && (!ex->aug.rrc_h || !ex->aug.eval_crop_h || ex->aug.crop_h || ex->val_size || ex->pad || o->resize))
        return cfg_error(c, d, "data", "format %s needs data.augment.random_resized_crop and eval_crop (its JPEGs differ in size) "
                         "and takes no crop, pad, size or val_size", f->name);
    int pooled = 0;
    AugmentSpec aug = ex->aug;
    memset(&ex->aug, 0, sizeof ex->aug);
    if ((f->pooled && f->pooled(ex->path, &pooled)) || asym_data_spec_resolve(ex))
        return cfg_error(c, where, "data.path", "%s", asym_last_error());
    if (check_augment(c, d, ex, &aug)) return ASYM_ERR;
    ex->aug = aug;
    if (augment_on(&aug) && asym_data_spec_resolve(ex)) return cfg_error(c, where, "data.path", "%s", asym_last_error());
    if (pooled && !o->train_per_class && !o->test_per_class)
        return cfg_error(c, where, "data.path",
                         "%s has no train/test split: set data.test_per_class (and data.train_per_class) to draw one", ex->path);
    if (ex->norm_given && ex->norm_given != ex->c)
        return cfg_error(c, cfg_child(d, "mean"), "data.mean", "the images have %d channel%s, got %d means", ex->c, ex->c == 1 ? "" : "s",
                         ex->norm_given);
    return ASYM_OK;
}

int data_read_config(const Cfg *c, CfgNode *root, AsymDataSpec *ex) {
    CfgNode *d = cfg_child(root, "data");
    CfgNode empty = {.kind = CFG_MAP};
    if (!d) d = &empty;
    if (d->kind != CFG_MAP) return cfg_error(c, d, "data", "expected a map");
    memset(&ex->opt, 0, sizeof ex->opt);
    const char *names[32], *fmt, *path;
    int k = 0;
    while (k < 31 && (names[k] = asym_data_format(k))) k++;
    names[k] = NULL;
    if (cfg_get_str(c, d, "data", "format", "idx", names, &fmt)) return ASYM_ERR;
    const DataFormat *f = data_format_find(fmt);
    CfgNode *pnode = cfg_child(d, "path");
    if (!pnode && !(f && f->flags & DATA_PATHLESS))
        return cfg_error(c, d, "data", "format %s needs data.path (docs/DATA.md lists the files expected there)", fmt);
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
    CfgNode *r = cfg_child(d, "random"); /* NULL: the defaults */
    if (r && r->kind != CFG_MAP) return cfg_error(c, r, "data.random", "expected a map");
    GET_INT(r, "data.random", "n", 1000, 1, 1 << 24, ex->random_n);
    GET_INT(r, "data.random", "c", 3, 1, 4, ex->random_c);
    GET_INT(r, "data.random", "h", 32, 1, 4096, ex->random_h);
    GET_INT(r, "data.random", "w", 32, 1, 4096, ex->random_w);
    GET_INT(r, "data.random", "classes", 10, 2, 1 << 20, ex->random_classes);
    if (read_options(c, d, &ex->opt) || read_augment(c, d, &ex->aug) || read_stream(c, d, ex->path, &ex->stream)) return ASYM_ERR;
    return check_format(c, d, pnode ? pnode : d, ex);
}
