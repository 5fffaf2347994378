/* formats.c: the only list of data formats. Each entry says how the format
 * is detected, the shape and classes of its images, how its train and test
 * splits are read and where its class names come from; "auto" becomes one
 * of them here, once (data_format_resolve). docs/DATA.md describes the
 * files each format expects. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "asymbp.h"
#include "data/data.h"

/* ---- each format's pieces ---- */

static int random_shape(const AsymDataSpec *s, int *c, int *h, int *w, int *classes) {
    *c = s->random_c, *h = s->random_h, *w = s->random_w, *classes = s->random_classes;
    return ASYM_OK;
}

/* Gaussian images: random_n for training, a fifth as many for test. */
static int random_load(const AsymDataSpec *s, uint64_t seed, uint64_t sample_seed, AsymDataset *train, AsymDataset *test) {
    int nt = s->random_n / 5 > 0 ? s->random_n / 5 : 1;
    return asym_dataset_random(train, s->random_n, s->random_c, s->random_h, s->random_w, s->random_classes, seed * 2 + 1) ||
           asym_dataset_random(test, nt, s->random_c, s->random_h, s->random_w, s->random_classes, seed * 2 + 2);
}

static int cifar10_read(AsymDataset *d, const char *dir, int train) { return asym_dataset_load_cifar(d, dir, 0, 0, train); }

static int cifar100_splits(const AsymDataSpec *s, AsymDataset *train, AsymDataset *test, int *pooled) {
    return asym_dataset_load_cifar(train, s->path, 1, s->opt.coarse, 1) || asym_dataset_load_cifar(test, s->path, 1, s->opt.coarse, 0);
}

/* A single .mat file is a pool. */
static int svhn_pooled(const char *path, int *pooled) {
    *pooled = data_exists(path, NULL, 0);
    return ASYM_OK;
}

static int folder_detect(const char *dir) {
    char **names;
    int n;
    if (folder_class_names(dir, NULL, &names, &n)) return 0;
    asym_data_names_free(names, n);
    return 1;
}

static int folder_names(const AsymDataSpec *s, char ***names, int *n) { return folder_class_names(s->path, s->opt.exclude, names, n); }

static int folder_shape(const AsymDataSpec *s, int *c, int *h, int *w, int *classes) {
    char **names;
    if (folder_names(s, &names, classes)) return ASYM_ERR;
    asym_data_names_free(names, *classes);
    *c = s->opt.grayscale ? 1 : 3;
    *h = s->opt.size_h ? s->opt.size_h : 32;
    *w = s->opt.size_w ? s->opt.size_w : 32;
    return ASYM_OK;
}

static int folder_pooled(const char *path, int *pooled) {
    *pooled = !(data_exists(path, "train", 1) && data_exists(path, "test", 1));
    return ASYM_OK;
}

/* The images of an image folder: with sample, those the per-class draw
 * keeps (only they are decoded, unless caching); without, every one, a
 * pool's all in train. */
static int folder_read(const AsymDataSpec *s, int sample, uint64_t seed, AsymDataset *train, AsymDataset *test, int *pooled) {
    const AsymDataOptions *o = &s->opt;
    FolderList l;
    if (folder_list(s->path, o->exclude, &l)) return ASYM_ERR;
    /* A mark per image: 1 train, 2 test; data_sample marks a fixed split's
     * test images (from n1 on) 1. */
    int rc = ASYM_ERR, kept, n1 = l.n_train, h = o->size_h ? o->size_h : 32, w = o->size_w ? o->size_w : 32;
    uint8_t *m = asym_calloc((size_t)l.n, 1);
    int *map = asym_calloc((size_t)l.classes, sizeof *map);
    *pooled = !l.fixed;
    if (!m || !map ||
        (sample ? data_sample(s->path, o, seed, l.classes, l.names, l.y, n1, l.fixed ? l.y + n1 : NULL, l.n - n1, m, m + n1, map, &kept)
                : data_class_map(l.classes, 0, 0, map, &kept)))
        goto done;
    for (int i = 0; i < l.n; i++) {
        if (!sample) m[i] = 1;
        if (i >= n1 && m[i]) m[i] = 2;
    }
    if (folder_decode(&l, m, 1, map, kept, h, w, o->grayscale, o->cache, train) ||
        folder_decode(&l, m, 2, map, kept, h, w, o->grayscale, o->cache, test))
        goto done;
    rc = ASYM_OK;
done:
    free(m);
    free(map);
    folder_list_free(&l);
    return rc;
}

static int folder_splits(const AsymDataSpec *s, AsymDataset *train, AsymDataset *test, int *pooled) {
    return folder_read(s, 0, 0, train, test, pooled);
}

static int folder_load(const AsymDataSpec *s, uint64_t seed, uint64_t sample_seed, AsymDataset *train, AsymDataset *test) {
    int pooled;
    return folder_read(s, 1, sample_seed, train, test, &pooled);
}

static int npy_pooled(const char *path, int *pooled) {
    char xp[4096];
    return npy_layout(path, pooled, xp, sizeof xp);
}

static const char *const CIFAR10_NAMES[] = {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};
static const char *const STL10_NAMES[] = {"airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"};

/* ---- the table ---- */

/* In the order a data section's choices are listed; detection tries the
 * marks in this order, then the detect functions. */
static const DataFormat FORMATS[] = {
    {.name = "idx", .flags = DATA_PATHLESS, .c = 1, .h = 28, .w = 28, .classes = 10, .read = asym_dataset_load_idx,
     .marks = {"train-images-idx3-ubyte", "train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte", "t10k-images-idx3-ubyte.gz"}},
    {.name = "random", .flags = DATA_PATHLESS | DATA_DRAWN, .shape = random_shape, .load = random_load},
    {.name = "cifar10", .marks = {"data_batch_1.bin", "test_batch.bin"}, .c = 3, .h = 32, .w = 32, .classes = 10,
     .read = cifar10_read, .names_file = "batches.meta.txt", .names = CIFAR10_NAMES},
    {.name = "cifar100", .keys = {"label"}, .marks = {"train.bin", "test.bin"}, .c = 3, .h = 32, .w = 32, .classes = 100,
     .coarse_classes = 20, .splits = cifar100_splits, .names_file = "fine_label_names.txt", .coarse_names_file = "coarse_label_names.txt"},
    {.name = "stl10", .marks = {"train_X.bin", "test_X.bin"}, .c = 3, .h = 96, .w = 96, .classes = 10, .read = asym_dataset_load_stl10,
     .names_file = "class_names.txt", .names = STL10_NAMES},
    {.name = "svhn", .marks = {"train_32x32.mat", "test_32x32.mat"}, .suffix = ".mat", .c = 3, .h = 32, .w = 32, .classes = 10,
     .pooled = svhn_pooled, .read = asym_dataset_load_svhn},
    {.name = "folder", .flags = DATA_SIZED, .keys = {"cache", "exclude"}, .detect = folder_detect, .shape = folder_shape,
     .pooled = folder_pooled, .splits = folder_splits, .load = folder_load, .class_names = folder_names},
    {.name = "imagenet", .flags = DATA_SIZED | DATA_STREAMED,
     .keys = {"val_labels", "train_shards", "val_shards", "cache_dir", "workers", "max_bad_files"}, .shape = imagenet_shape,
     .class_names = imagenet_names},
    {.name = "npy", .flags = DATA_FEATURES, .keys = {"classes"}, .marks = {"train_x.npy", "x.npy"}, .shape = npy_shape,
     .pooled = npy_pooled, .splits = npy_splits},
};
enum { N_FORMATS = sizeof FORMATS / sizeof FORMATS[0] };

/* ---- lookup, detection, resolution ---- */

const char *asym_data_format(int i) {
    return i < N_FORMATS ? FORMATS[i].name : i == N_FORMATS ? "auto" : NULL;
}

const DataFormat *data_format_find(const char *name) {
    char list[256] = "";
    for (int i = 0; i < N_FORMATS; i++) {
        if (!strcmp(FORMATS[i].name, name)) return &FORMATS[i];
        size_t l = strlen(list);
        snprintf(list + l, sizeof list - l, "%s, ", FORMATS[i].name);
    }
    if (!strcmp(name, "auto")) asym_fail("data format auto is not resolved yet (asym_data_spec_resolve detects it)");
    else asym_fail("data format '%s' unknown (known: %sand auto)", name, list);
    return NULL;
}

const char *data_format_of_key(const char *key) {
    for (int i = 0; i < N_FORMATS; i++)
        for (int j = 0; FORMATS[i].keys[j]; j++)
            if (!strcmp(FORMATS[i].keys[j], key)) return FORMATS[i].name;
    return NULL;
}

int asym_data_detect(const char *path, char *format, size_t cap) {
    struct stat st;
    const DataFormat *f = NULL;
    if (stat(path, &st) != 0) return asym_fail("%s: no such file or folder", path);
    if (S_ISREG(st.st_mode)) {
        size_t l = strlen(path);
        for (int i = 0; !f && i < N_FORMATS; i++) {
            const char *x = FORMATS[i].suffix;
            if (x && l >= strlen(x) && !strcmp(path + l - strlen(x), x)) f = &FORMATS[i];
        }
        if (!f) return asym_fail("%s: a file; give the data set's folder (or an SVHN .mat file)", path);
    } else if (!S_ISDIR(st.st_mode)) {
        return asym_fail("%s: neither a file nor a folder", path);
    }
    for (int i = 0; !f && i < N_FORMATS; i++)
        for (int j = 0; !f && FORMATS[i].marks[j]; j++)
            if (data_exists(path, FORMATS[i].marks[j], 0)) f = &FORMATS[i];
    for (int i = 0; !f && i < N_FORMATS; i++)
        if (FORMATS[i].detect && FORMATS[i].detect(path)) f = &FORMATS[i];
    if (!f)
        return asym_fail("%s: cannot tell the format (no MNIST IDX, CIFAR, STL-10, SVHN or .npy files, nor class subfolders)", path);
    snprintf(format, cap, "%s", f->name);
    return ASYM_OK;
}

const DataFormat *data_format_resolve(AsymDataSpec *s) {
    if (!strcmp(s->format, "auto") && asym_data_detect(s->path, s->format, sizeof s->format)) return NULL;
    return data_format_find(s->format);
}

int data_format_shape(const DataFormat *f, const AsymDataSpec *s, int *c, int *h, int *w, int *classes) {
    if (f->shape) return f->shape(s, c, h, w, classes);
    *c = f->c, *h = f->h, *w = f->w;
    *classes = s->opt.coarse && f->coarse_classes ? f->coarse_classes : f->classes;
    return ASYM_OK;
}

int asym_data_spec_resolve(AsymDataSpec *s) {
    const AsymDataOptions *o = &s->opt;
    const DataFormat *f = data_format_resolve(s);
    int c, h, w, classes;
    if (!f || data_format_shape(f, s, &c, &h, &w, &classes)) return ASYM_ERR;
    if (o->grayscale && c != 1) {
        if (c != 3) return asym_fail("%s: data.grayscale needs RGB images; these have %d channels", s->path, c);
        c = 1;
    }
    if (o->classes_subset) {
        if (o->classes_subset > classes)
            return asym_fail("%s: data.classes_subset is %d but the data set has %d classes", s->path, o->classes_subset, classes);
        classes = o->classes_subset;
    }
    if (o->resize && !(f->flags & DATA_SIZED)) {
        if (f->flags & DATA_FEATURES) return asym_fail("%s: data.size resizes images; %s holds feature vectors", s->path, f->name);
        h = o->size_h, w = o->size_w;
    }
    if (h > 65536 - 2 * s->pad || w > 65536 - 2 * s->pad) return asym_fail("%s: images of %d x %d too large", s->path, h, w);
    s->c = c;
    s->h = h + 2 * s->pad;
    s->w = w + 2 * s->pad;
    s->classes = classes;
    if (augment_on(&s->aug)) {
        const char *key;
        char why[512];
        s->aug.in_h = s->h, s->aug.in_w = s->w;
        if (augment_shape(&s->aug, s->aug.in_h, s->aug.in_w, &s->h, &s->w, &key)) {
            snprintf(why, sizeof why, "%s", asym_last_error());
            return asym_fail("%s: data.augment.%s: %s", s->path, key, why);
        }
    }
    return ASYM_OK;
}
