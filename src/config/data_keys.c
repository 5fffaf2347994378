/* datacfg.c: the `data` section of an experiment: which reader, where the
 * files are, and how images are prepared (class subset and per-class
 * sampling as in Liao, Leibo and Poggio (2016), resizing and grayscale,
 * padding, normalization, limits, validation split); format detection; and
 * loading the three sets it describes. docs/DATA.md is the reference for
 * the keys and the files each format expects. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "config/config.h"
#include "data/data.h"
#include "io/io.h"

static const char *const FORMATS[] = {"idx", "random", "cifar10", "cifar100", "stl10", "svhn", "folder", "npy", "auto", NULL};

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

static int is(const AsymDataSpec *s, const char *f) { return !strcmp(s->format, f); }

int asym_data_detect(const char *path, char *format, size_t cap) {
    struct stat st;
    const char *f = NULL;
    if (stat(path, &st) != 0) return asym_fail("%s: no such file or folder", path);
    if (S_ISREG(st.st_mode)) {
        size_t l = strlen(path);
        if (l >= 4 && !strcmp(path + l - 4, ".mat")) f = "svhn";
        else return asym_fail("%s: a file; give the data set's folder (or an SVHN .mat file)", path);
    } else if (!S_ISDIR(st.st_mode)) {
        return asym_fail("%s: neither a file nor a folder", path);
    } else if (data_exists(path, "train-images-idx3-ubyte", 0) || data_exists(path, "train-images-idx3-ubyte.gz", 0) ||
               data_exists(path, "t10k-images-idx3-ubyte", 0) || data_exists(path, "t10k-images-idx3-ubyte.gz", 0)) {
        f = "idx";
    } else if (data_exists(path, "data_batch_1.bin", 0) || data_exists(path, "test_batch.bin", 0)) {
        f = "cifar10";
    } else if (data_exists(path, "train.bin", 0) || data_exists(path, "test.bin", 0)) {
        f = "cifar100";
    } else if (data_exists(path, "train_X.bin", 0) || data_exists(path, "test_X.bin", 0)) {
        f = "stl10";
    } else if (data_exists(path, "train_32x32.mat", 0) || data_exists(path, "test_32x32.mat", 0)) {
        f = "svhn";
    } else if (data_exists(path, "train_x.npy", 0) || data_exists(path, "x.npy", 0)) {
        f = "npy";
    } else {
        char **names;
        int n;
        if (folder_class_names(path, NULL, &names, &n) == ASYM_OK) {
            for (int i = 0; i < n; i++) free(names[i]);
            free(names);
            f = "folder";
        }
    }
    if (!f)
        return asym_fail("%s: cannot tell the format (no MNIST IDX, CIFAR, STL-10, SVHN or .npy files, nor class subfolders)", path);
    snprintf(format, cap, "%s", f);
    return ASYM_OK;
}

/* A pool needs the per-class draw to make a test set. */
static int is_pool(const AsymDataSpec *s, int *pooled) {
    *pooled = 0;
    if (is(s, "folder")) {
        *pooled = !(data_exists(s->path, "train", 1) && data_exists(s->path, "test", 1));
    } else if (is(s, "npy")) {
        char xp[4096];
        return npy_layout(s->path, pooled, xp, sizeof xp);
    } else if (is(s, "svhn")) {
        *pooled = data_exists(s->path, NULL, 0);
    }
    return ASYM_OK;
}

int asym_data_spec_resolve(AsymDataSpec *s) {
    const AsymDataOptions *o = &s->opt;
    int c, h, w, classes;
    if (is(s, "auto") && asym_data_detect(s->path, s->format, sizeof s->format)) return ASYM_ERR;
    if (is(s, "idx")) {
        c = 1, h = w = 28, classes = 10;
    } else if (is(s, "random")) {
        c = s->random_c, h = s->random_h, w = s->random_w, classes = s->random_classes;
    } else if (is(s, "cifar10") || is(s, "cifar100") || is(s, "svhn")) {
        c = 3, h = w = 32, classes = is(s, "cifar100") ? (o->coarse ? 20 : 100) : 10;
    } else if (is(s, "stl10")) {
        c = 3, h = w = 96, classes = 10;
    } else if (is(s, "folder")) {
        char **names;
        if (folder_class_names(s->path, o->exclude, &names, &classes)) return ASYM_ERR;
        for (int i = 0; i < classes; i++) free(names[i]);
        free(names);
        c = o->grayscale ? 1 : 3;
        h = o->size_h ? o->size_h : 32;
        w = o->size_w ? o->size_w : 32;
    } else if (is(s, "npy")) {
        char xp[4096];
        int pooled, n;
        if (npy_layout(s->path, &pooled, xp, sizeof xp) || npy_item_shape(xp, &n, &c, &h, &w)) return ASYM_ERR;
        if (npy_count_classes(s->path, &classes)) return ASYM_ERR;
        if (o->classes) {
            if (o->classes < classes)
                return asym_fail("%s: labels go up to %d but data.classes is %d", s->path, classes - 1, o->classes);
            classes = o->classes;
        }
    } else {
        return asym_fail("data format '%s' unknown", s->format);
    }
    if (o->grayscale && c != 1) {
        if (c != 3) return asym_fail("%s: data.grayscale needs RGB images; these have %d channels", s->path, c);
        c = 1;
    }
    if (o->classes_subset) {
        if (o->classes_subset > classes)
            return asym_fail("%s: data.classes_subset is %d but the data set has %d classes", s->path, o->classes_subset, classes);
        classes = o->classes_subset;
    }
    if (o->resize && !is(s, "folder")) {
        if (is(s, "npy")) return asym_fail("%s: data.size resizes images; npy holds feature vectors", s->path);
        h = o->size_h, w = o->size_w;
    }
    if (h > 65536 - 2 * s->pad || w > 65536 - 2 * s->pad) return asym_fail("%s: images of %d x %d too large", s->path, h, w);
    s->c = c;
    s->h = h + 2 * s->pad;
    s->w = w + 2 * s->pad;
    s->classes = classes;
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

int data_read_config(const Cfg *c, CfgNode *root, AsymDataSpec *ex) {
    static const char *const LABELS[] = {"fine", "coarse", NULL};
    CfgNode *d = cfg_child(root, "data");
    CfgNode empty = {.kind = CFG_MAP};
    if (!d) d = &empty;
    if (d->kind != CFG_MAP) return cfg_error(c, d, "data", "expected a map");
    AsymDataOptions *o = &ex->opt;
    memset(o, 0, sizeof *o);
    const char *fmt, *path, *label;
    if (cfg_get_str(c, d, "data", "format", "idx", FORMATS, &fmt)) return ASYM_ERR;
    CfgNode *pnode = cfg_child(d, "path");
    if (!pnode && strcmp(fmt, "idx") && strcmp(fmt, "random"))
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
    CfgNode *r = cfg_child(d, "random");
    CfgNode none = {.kind = CFG_MAP};
    if (!r) r = &none;
    if (r->kind != CFG_MAP) return cfg_error(c, r, "data.random", "expected a map");
    GET_INT(r, "data.random", "n", 1000, 1, 1 << 24, ex->random_n);
    GET_INT(r, "data.random", "c", 3, 1, 4, ex->random_c);
    GET_INT(r, "data.random", "h", 32, 1, 4096, ex->random_h);
    GET_INT(r, "data.random", "w", 32, 1, 4096, ex->random_w);
    GET_INT(r, "data.random", "classes", 10, 2, 1 << 20, ex->random_classes);

    /* The readers' options; those of one format are refused elsewhere. */
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
    if (read_cache(c, d, o) || read_exclude(c, d, o)) return ASYM_ERR;

    CfgNode *where = pnode ? pnode : d;
    if (!strcmp(fmt, "auto") && asym_data_detect(ex->path, ex->format, sizeof ex->format))
        return cfg_error(c, where, "data.path", "%s", asym_last_error());
    struct {
        const char *key, *formats;
    } only[] = {{"label", "cifar100"}, {"cache", "folder"}, {"exclude", "folder"}, {"classes", "npy"}};
    for (size_t i = 0; i < sizeof only / sizeof only[0]; i++) {
        CfgNode *n = cfg_child(d, only[i].key);
        if (n && strcmp(ex->format, only[i].formats)) {
            char path[64];
            snprintf(path, sizeof path, "data.%s", only[i].key);
            return cfg_error(c, n, path, "applies to format %s only (this is %s)", only[i].formats, ex->format);
        }
    }
    if (is(ex, "random") && (o->train_per_class || o->test_per_class || o->classes_subset || o->grayscale))
        return cfg_error(c, d, "data", "format random takes no sampling or grayscale options");
    int pooled;
    if (is_pool(ex, &pooled) || asym_data_spec_resolve(ex)) return cfg_error(c, where, "data.path", "%s", asym_last_error());
    if (pooled && !o->train_per_class && !o->test_per_class)
        return cfg_error(c, where, "data.path",
                         "%s has no train/test split: set data.test_per_class (and data.train_per_class) to draw one", ex->path);
    if (ex->norm_given && ex->norm_given != ex->c)
        return cfg_error(c, mean, "data.mean", "the images have %d channel%s, got %d means", ex->c, ex->c == 1 ? "" : "s", ex->norm_given);
    return ASYM_OK;
}

/* ---- loading ---- */

static int load_image_folder(const AsymDataSpec *ex, uint64_t seed, AsymDataset *train, AsymDataset *test) {
    const AsymDataOptions *o = &ex->opt;
    FolderList l;
    if (folder_list(ex->path, o->exclude, &l)) return ASYM_ERR;
    int rc = ASYM_ERR, kept, n1 = l.n_train, n2 = l.n - l.n_train, ntr = 0, nte = 0;
    uint8_t *m1 = asym_calloc(n1 ? (size_t)n1 : 1, 1), *m2 = asym_calloc(n2 ? (size_t)n2 : 1, 1);
    int *map = asym_calloc((size_t)l.classes, sizeof *map), *itr = asym_calloc((size_t)l.n, sizeof *itr),
        *ite = asym_calloc((size_t)l.n, sizeof *ite);
    int32_t *ytr = asym_calloc((size_t)l.n, sizeof *ytr), *yte = asym_calloc((size_t)l.n, sizeof *yte);
    if (!m1 || !m2 || !map || !itr || !ite || !ytr || !yte) goto done;
    /* Only the images drawn are decoded (all of them when caching). */
    if (data_sample(ex->path, o, seed, l.classes, l.names, l.y, n1, l.fixed ? l.y + n1 : NULL, n2, m1, m2, map, &kept)) goto done;
    for (int i = 0; i < n1; i++) {
        if (m1[i] == 1) itr[ntr] = i, ytr[ntr++] = map[l.y[i]];
        if (m1[i] == 2) ite[nte] = i, yte[nte++] = map[l.y[i]];
    }
    for (int i = 0; i < n2; i++)
        if (m2[i] == 1) ite[nte] = n1 + i, yte[nte++] = map[l.y[n1 + i]];
    int h = o->size_h ? o->size_h : 32, w = o->size_w ? o->size_w : 32;
    if (folder_decode(&l, itr, ntr, ytr, kept, h, w, o->grayscale, o->cache, train) ||
        folder_decode(&l, ite, nte, yte, kept, h, w, o->grayscale, o->cache, test))
        goto done;
    rc = ASYM_OK;
done:
    free(m1);
    free(m2);
    free(map);
    free(itr);
    free(ite);
    free(ytr);
    free(yte);
    folder_list_free(&l);
    if (rc) {
        asym_dataset_free(train);
        asym_dataset_free(test);
    }
    return rc;
}

int asym_data_load_splits(const AsymDataSpec *spec, AsymDataset *train, AsymDataset *test, int *pooled) {
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    *pooled = 0;
    AsymDataSpec s = *spec;
    const AsymDataOptions *o = &s.opt;
    const char *p = s.path;
    int rc;
    if (is(&s, "auto") && asym_data_detect(p, s.format, sizeof s.format)) return ASYM_ERR;
    if (is(&s, "random")) {
        return asym_fail("format random has no files to read (asym_data_load draws it)");
    } else if (is(&s, "idx")) {
        rc = asym_dataset_load_idx(train, p, 1) || asym_dataset_load_idx(test, p, 0);
    } else if (is(&s, "cifar10") || is(&s, "cifar100")) {
        int h = is(&s, "cifar100");
        rc = asym_dataset_load_cifar(train, p, h, o->coarse, 1) || asym_dataset_load_cifar(test, p, h, o->coarse, 0);
    } else if (is(&s, "stl10")) {
        rc = asym_dataset_load_stl10(train, p, 1) || asym_dataset_load_stl10(test, p, 0);
    } else if (is(&s, "svhn")) {
        *pooled = data_exists(p, NULL, 0);
        rc = asym_dataset_load_svhn(train, p, 1) || (!*pooled && asym_dataset_load_svhn(test, p, 0));
    } else if (is(&s, "npy")) {
        char xp[4096], yp[4096];
        if (npy_layout(p, pooled, xp, sizeof xp)) return ASYM_ERR;
        rc = data_join(yp, sizeof yp, p, *pooled ? "y.npy" : "train_y.npy") || asym_dataset_load_npy(train, xp, yp);
        if (!rc && !*pooled)
            rc = data_join(xp, sizeof xp, p, "test_x.npy") || data_join(yp, sizeof yp, p, "test_y.npy") ||
                 asym_dataset_load_npy(test, xp, yp);
        if (!rc) {
            /* Each file's classes are its largest label + 1; the set's are
             * the larger of the two, or data.classes. */
            int k = train->classes > test->classes ? train->classes : test->classes;
            if (o->classes && o->classes < k) rc = asym_fail("%s: labels go up to %d but data.classes is %d", p, k - 1, o->classes);
            else train->classes = test->classes = o->classes ? o->classes : k;
        }
    } else if (is(&s, "folder")) {
        FolderList l;
        if (folder_list(p, o->exclude, &l)) return ASYM_ERR;
        int *idx = asym_calloc((size_t)l.n, sizeof *idx);
        int h = o->size_h ? o->size_h : 32, w = o->size_w ? o->size_w : 32;
        rc = !idx;
        for (int i = 0; idx && i < l.n; i++) idx[i] = i;
        *pooled = !l.fixed;
        if (!rc) rc = folder_decode(&l, idx, l.n_train, l.y, l.classes, h, w, o->grayscale, o->cache, train);
        if (!rc) rc = folder_decode(&l, idx + l.n_train, l.n - l.n_train, l.y + l.n_train, l.classes, h, w, o->grayscale, o->cache, test);
        free(idx);
        folder_list_free(&l);
    } else {
        return asym_fail("data format '%s' unknown", s.format);
    }
    if (rc) {
        asym_dataset_free(train);
        asym_dataset_free(test);
        return ASYM_ERR;
    }
    return ASYM_OK;
}

/* Applies the class subset and per-class draws to loaded sets: a fixed
 * split in train/test, or a pool in train (test empty). */
static int sample_loaded(const AsymDataSpec *ex, uint64_t seed, int pooled, AsymDataset *train, AsymDataset *test) {
    const AsymDataOptions *o = &ex->opt;
    int classes = train->classes > test->classes ? train->classes : test->classes, kept, rc = ASYM_ERR;
    AsymDataset a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    uint8_t *m1 = asym_calloc(train->n ? (size_t)train->n : 1, 1), *m2 = asym_calloc(test->n ? (size_t)test->n : 1, 1);
    int *map = asym_calloc((size_t)classes, sizeof *map);
    if (!m1 || !m2 || !map) goto done;
    if (data_sample(ex->path, o, seed, classes, NULL, train->y, train->n, pooled ? NULL : test->y, test->n, m1, m2, map, &kept))
        goto done;
    if (data_gather(train, m1, 1, map, kept, &a) || data_gather(pooled ? train : test, pooled ? m1 : m2, pooled ? 2 : 1, map, kept, &b))
        goto done;
    asym_dataset_free(train);
    asym_dataset_free(test);
    *train = a;
    *test = b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    rc = ASYM_OK;
done:
    free(m1);
    free(m2);
    free(map);
    asym_dataset_free(&a);
    asym_dataset_free(&b);
    return rc;
}

int asym_data_load(const AsymDataSpec *ex, uint64_t seed, AsymDataset *train, AsymDataset *val, AsymDataset *test) {
    memset(train, 0, sizeof *train);
    memset(val, 0, sizeof *val);
    memset(test, 0, sizeof *test);
    const AsymDataOptions *o = &ex->opt;
    uint64_t sseed = o->sample_seed_given ? o->sample_seed : seed;
    int sampling = o->train_per_class || o->test_per_class || o->classes_subset;
    AsymDataSpec s = *ex;
    float *mean = NULL, *std = NULL;
    int rc, pooled = 0;
    if (is(&s, "auto") && asym_data_detect(s.path, s.format, sizeof s.format)) return ASYM_ERR;
    if (is(&s, "random")) {
        int nt = ex->random_n / 5 > 0 ? ex->random_n / 5 : 1;
        rc = asym_dataset_random(train, ex->random_n, ex->random_c, ex->random_h, ex->random_w, ex->random_classes, seed * 2 + 1);
        if (!rc) rc = asym_dataset_random(test, nt, ex->random_c, ex->random_h, ex->random_w, ex->random_classes, seed * 2 + 2);
    } else if (is(&s, "folder")) {
        rc = load_image_folder(&s, sseed, train, test);
    } else {
        rc = asym_data_load_splits(&s, train, test, &pooled);
        if (!rc && pooled && !sampling)
            rc = asym_fail("%s has no train/test split: set data.test_per_class (and data.train_per_class) to draw one", ex->path);
        if (!rc && sampling) rc = sample_loaded(&s, sseed, pooled, train, test);
        if (!rc && o->grayscale) rc = asym_dataset_grayscale(train) || asym_dataset_grayscale(test);
    }
    if (!rc && o->resize && !is(&s, "folder"))
        rc = asym_dataset_resize(train, o->size_h, o->size_w) || asym_dataset_resize(test, o->size_h, o->size_w);
    if (rc) goto fail;
    if (train->c != ex->c || train->h + 2 * ex->pad != ex->h || train->w + 2 * ex->pad != ex->w || test->c != train->c ||
        test->h != train->h || test->w != train->w) {
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
        /* Feature sets have one "channel" per feature: more than 4. */
        if (!(mean = asym_calloc((size_t)train->c, sizeof *mean)) || !(std = asym_calloc((size_t)train->c, sizeof *std))) goto fail;
        if (ex->norm_given) {
            for (int i = 0; i < train->c; i++) mean[i] = ex->mean[i < ex->norm_given ? i : 0], std[i] = ex->std[i < ex->norm_given ? i : 0];
        } else {
            asym_dataset_stats(train, mean, std);
            /* A constant channel (a feature that never varies, a blank
             * padding column) would divide by zero: leave it unscaled. */
            for (int i = 0; i < train->c; i++)
                if (!(std[i] > 0)) std[i] = 1;
        }
        asym_dataset_normalize(train, mean, std);
        asym_dataset_normalize(test, mean, std);
        if (val->n) asym_dataset_normalize(val, mean, std);
        free(mean);
        free(std);
    }
    return ASYM_OK;
fail:
    free(mean);
    free(std);
    asym_dataset_free(train);
    asym_dataset_free(val);
    asym_dataset_free(test);
    return ASYM_ERR;
}

/* ---- class names ---- */

/* Lines of dir/file as names when there are exactly n non-empty ones. */
static char **names_file(const char *dir, const char *file, int n) {
    char path[4096];
    uint8_t *buf;
    size_t len;
    if (data_join(path, sizeof path, dir, file) || !data_exists(path, NULL, 0) || io_read_file(path, &buf, &len, 1 << 16, 0)) return NULL;
    char **v = calloc((size_t)n, sizeof *v);
    int k = 0, ok = v != NULL;
    for (size_t i = 0; ok && i < len;) {
        size_t j = i;
        while (j < len && buf[j] != '\n') j++;
        size_t e = j;
        while (e > i && (buf[e - 1] == '\r' || buf[e - 1] == ' ' || buf[e - 1] == '\t')) e--;
        if (e > i) {
            if (k == n || !(v[k] = malloc(e - i + 1))) ok = 0;
            else {
                memcpy(v[k], buf + i, e - i);
                v[k][e - i] = 0;
                /* Names are printed: no control bytes. */
                for (char *q = v[k]; *q; q++)
                    if ((unsigned char)*q < 32) *q = '?';
                k++;
            }
        }
        i = j + 1;
    }
    free(buf);
    if (!ok || k != n) {
        if (v) asym_data_names_free(v, n);
        return NULL;
    }
    return v;
}

void asym_data_names_free(char **names, int n) {
    for (int i = 0; names && i < n; i++) free(names[i]);
    free(names);
}

int asym_data_class_names(const AsymDataSpec *spec, uint64_t seed, char ***out, int *n_out) {
    static const char *const CIFAR10[] = {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};
    static const char *const STL10[] = {"airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"};
    AsymDataSpec s = *spec;
    const AsymDataOptions *o = &s.opt;
    char **names = NULL;
    int n = 0;
    *out = NULL;
    *n_out = 0;
    if (is(&s, "auto") && asym_data_detect(s.path, s.format, sizeof s.format)) return ASYM_ERR;
    if (is(&s, "folder")) {
        if (folder_class_names(s.path, o->exclude, &names, &n)) return ASYM_ERR;
    } else {
        /* The class count before any subset. */
        s.opt.classes_subset = 0;
        s.opt.grayscale = 0;
        if (asym_data_spec_resolve(&s)) return ASYM_ERR;
        n = s.classes;
        if (is(&s, "cifar10")) names = names_file(s.path, "batches.meta.txt", n);
        if (is(&s, "cifar100")) names = names_file(s.path, o->coarse ? "coarse_label_names.txt" : "fine_label_names.txt", n);
        if (is(&s, "stl10")) names = names_file(s.path, "class_names.txt", n);
        if (!names) {
            if (!(names = asym_calloc((size_t)n, sizeof *names))) return ASYM_ERR;
            for (int i = 0; i < n; i++) {
                char b[16];
                const char *nm = is(&s, "cifar10") ? CIFAR10[i] : is(&s, "stl10") ? STL10[i] : b;
                snprintf(b, sizeof b, "%d", i);
                if (!(names[i] = strdup(nm))) {
                    asym_data_names_free(names, n);
                    return asym_fail("out of memory");
                }
            }
        }
    }
    if (o->classes_subset) {
        uint64_t sseed = o->sample_seed_given ? o->sample_seed : seed;
        int *map = asym_calloc((size_t)n, sizeof *map), kept;
        if (!map || o->classes_subset > n || data_class_map(n, o->classes_subset, sseed, map, &kept)) {
            if (map && o->classes_subset > n) asym_fail("%s: data.classes_subset is %d but the data set has %d classes", s.path, o->classes_subset, n);
            free(map);
            asym_data_names_free(names, n);
            return ASYM_ERR;
        }
        char **sub = asym_calloc((size_t)kept, sizeof *sub);
        if (!sub) {
            free(map);
            asym_data_names_free(names, n);
            return ASYM_ERR;
        }
        for (int i = 0; i < n; i++) {
            if (map[i] >= 0) sub[map[i]] = names[i];
            else free(names[i]);
        }
        free(names);
        free(map);
        names = sub;
        n = kept;
    }
    *out = names;
    *n_out = n;
    return ASYM_OK;
}
