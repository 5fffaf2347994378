/* load.c: the three sets a data spec describes: its format's splits, the
 * class subset and per-class sampling of Liao, Leibo and Poggio (2016),
 * grayscale, resizing, limits, the validation split, padding, the
 * evaluation transform of augmentation (augment.c) and normalization; and
 * the class names. The spec's format is resolved
 * already (asym_data_spec_resolve); formats.c says what each one does. */
#include <stdlib.h>
#include <string.h>

#include "asymbp.h"
#include "data/data.h"
#include "io/io.h"

/* A spec of format, path and reader options alone, resolved. */
static int spec_of(AsymDataSpec *s, const char *format, const char *path, const AsymDataOptions *opt) {
    memset(s, 0, sizeof *s);
    snprintf(s->format, sizeof s->format, "%s", format[0] ? format : "auto");
    snprintf(s->path, sizeof s->path, "%s", path);
    if (opt) s->opt = *opt;
    return asym_data_spec_resolve(s);
}

int asym_data_read(char format[16], const char *path, const AsymDataOptions *opt, AsymDataset *train, AsymDataset *test,
                   int *pooled) {
    AsymDataSpec s;
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    if (spec_of(&s, format, path, opt)) return ASYM_ERR;
    snprintf(format, 16, "%s", s.format);
    return asym_data_load_splits(&s, train, test, pooled);
}

int asym_data_names(const char *format, const char *path, const AsymDataOptions *opt, char ***names, int *n) {
    AsymDataSpec s;
    *names = NULL;
    *n = 0;
    return spec_of(&s, format, path, opt) || asym_data_class_names(&s, 0, names, n) ? ASYM_ERR : ASYM_OK;
}

int asym_data_load_splits(const AsymDataSpec *s, AsymDataset *train, AsymDataset *test, int *pooled) {
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    *pooled = 0;
    const DataFormat *f = data_format_find(s->format);
    if (!f) return ASYM_ERR;
    if (!f->splits && !f->read) return asym_fail("format %s has no files to read (asym_data_load draws it)", f->name);
    if (f->splits ? f->splits(s, train, test, pooled)
                  : (f->pooled && f->pooled(s->path, pooled)) || f->read(train, s->path, 1) || (!*pooled && f->read(test, s->path, 0))) {
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

/* The splits as read, then sampled and converted to grayscale. */
static int load_read(const AsymDataSpec *s, uint64_t sample_seed, AsymDataset *train, AsymDataset *test) {
    const AsymDataOptions *o = &s->opt;
    int pooled, sampling = o->train_per_class || o->test_per_class || o->classes_subset;
    int rc = asym_data_load_splits(s, train, test, &pooled);
    if (!rc && pooled && !sampling)
        rc = asym_fail("%s has no train/test split: set data.test_per_class (and data.train_per_class) to draw one", s->path);
    if (!rc && sampling) rc = sample_loaded(s, sample_seed, pooled, train, test);
    if (!rc && o->grayscale) rc = asym_dataset_grayscale(train) || asym_dataset_grayscale(test);
    return rc;
}

/* The images must be what the spec resolved: the model is built for them. */
static int check_shape(const AsymDataSpec *ex, const AsymDataset *train, const AsymDataset *test) {
    /* with augmentation the model takes its output; the images are its input */
    int aug = augment_on(&ex->aug), h = aug ? ex->aug.in_h : ex->h, w = aug ? ex->aug.in_w : ex->w;
    if (train->c != ex->c || train->h + 2 * ex->pad != h || train->w + 2 * ex->pad != w || test->c != train->c || test->h != train->h ||
        test->w != train->w)
        return asym_fail("%s: images are %dx%dx%d, the model expects %dx%dx%d before padding by %d", ex->path, train->c, train->h, train->w,
                         ex->c, h - 2 * ex->pad, w - 2 * ex->pad, ex->pad);
    if (train->classes > ex->classes || test->classes > ex->classes)
        return asym_fail("%s: labels go up to %d, the model has %d classes", ex->path,
                         (train->classes > test->classes ? train->classes : test->classes) - 1, ex->classes);
    return ASYM_OK;
}

void data_norm_values(const AsymDataSpec *ex, const AsymDataset *train, float *mean, float *std) {
    if (ex->norm_given) {
        for (int i = 0; i < train->c; i++) mean[i] = ex->mean[i < ex->norm_given ? i : 0], std[i] = ex->std[i < ex->norm_given ? i : 0];
        return;
    }
    asym_dataset_stats(train, mean, std);
    /* A constant channel (a feature that never varies, a blank padding
     * column) would divide by zero: leave it unscaled. */
    for (int i = 0; i < train->c; i++)
        if (!(std[i] > 0)) std[i] = 1;
}

/* Per-channel mean and std, given or the training set's, applied to the
 * three sets; with augmentation the training images stay as stored
 * (augment_train normalizes each one it makes). */
static int normalize_sets(const AsymDataSpec *ex, AsymDataset *train, AsymDataset *val, AsymDataset *test) {
    /* Feature sets have one "channel" per feature: more than 4. */
    float *mean = asym_calloc((size_t)train->c, sizeof *mean), *std = asym_calloc((size_t)train->c, sizeof *std);
    if (!mean || !std) {
        free(mean);
        free(std);
        return ASYM_ERR;
    }
    data_norm_values(ex, train, mean, std);
    if (!augment_on(&ex->aug)) asym_dataset_normalize(train, mean, std);
    asym_dataset_normalize(test, mean, std);
    if (val->n) asym_dataset_normalize(val, mean, std);
    free(mean);
    free(std);
    return ASYM_OK;
}

int data_streamed(const AsymDataSpec *spec) {
    const DataFormat *f = data_format_find(spec->format);
    return f && (f->flags & DATA_STREAMED);
}

int asym_data_load(const AsymDataSpec *ex, uint64_t seed, AsymDataset *train, AsymDataset *val, AsymDataset *test) {
    memset(train, 0, sizeof *train);
    memset(val, 0, sizeof *val);
    memset(test, 0, sizeof *test);
    const AsymDataOptions *o = &ex->opt;
    uint64_t sseed = o->sample_seed_given ? o->sample_seed : seed;
    const DataFormat *f = data_format_find(ex->format);
    if (f && (f->flags & DATA_STREAMED))
        return asym_fail("%s: format %s is streamed while training and is not loaded whole", ex->path, f->name);
    int rc = !f || (f->load ? f->load(ex, seed, sseed, train, test) : load_read(ex, sseed, train, test));
    if (!rc && o->resize && !(f->flags & DATA_SIZED))
        rc = asym_dataset_resize(train, o->size_h, o->size_w) || asym_dataset_resize(test, o->size_h, o->size_w);
    if (rc || check_shape(ex, train, test)) goto fail;
    if (ex->train_limit && ex->train_limit < train->n) asym_dataset_truncate(train, ex->train_limit);
    if (ex->test_limit && ex->test_limit < test->n) asym_dataset_truncate(test, ex->test_limit);
    if (ex->val_size && asym_dataset_split(train, val, ex->val_size, seed ^ 0x5eed)) goto fail;
    if (ex->pad && (asym_dataset_pad(train, ex->pad) || asym_dataset_pad(test, ex->pad) || (val->n && asym_dataset_pad(val, ex->pad))))
        goto fail;
    /* the evaluation transform before normalization, as torchvision's order */
    if (augment_on(&ex->aug) && (augment_eval_set(&ex->aug, test) || augment_eval_set(&ex->aug, val))) goto fail;
    if ((ex->normalize || ex->norm_given) && normalize_sets(ex, train, val, test)) goto fail;
    return ASYM_OK;
fail:
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

/* Every class's name before any subset: the format's own, its names file,
 * its built-in names, or the label as a number. */
static int all_names(const DataFormat *f, const AsymDataSpec *s, char ***out, int *n) {
    int c, h, w;
    if (f->class_names) return f->class_names(s, out, n);
    if (data_format_shape(f, s, &c, &h, &w, n)) return ASYM_ERR;
    const char *file = s->opt.coarse && f->coarse_classes ? f->coarse_names_file : f->names_file;
    char **names = file ? names_file(s->path, file, *n) : NULL;
    if (!names) {
        if (!(names = asym_calloc((size_t)*n, sizeof *names))) return ASYM_ERR;
        for (int i = 0; i < *n; i++) {
            char b[16];
            snprintf(b, sizeof b, "%d", i);
            if (!(names[i] = strdup(f->names ? f->names[i] : b))) {
                asym_data_names_free(names, *n);
                return asym_fail("out of memory");
            }
        }
    }
    *out = names;
    return ASYM_OK;
}

int asym_data_class_names(const AsymDataSpec *s, uint64_t seed, char ***out, int *n_out) {
    const AsymDataOptions *o = &s->opt;
    const DataFormat *f = data_format_find(s->format);
    char **names = NULL;
    int n = 0;
    *out = NULL;
    *n_out = 0;
    if (!f || all_names(f, s, &names, &n)) return ASYM_ERR;
    if (o->classes_subset) {
        uint64_t sseed = o->sample_seed_given ? o->sample_seed : seed;
        int *map = asym_calloc((size_t)n, sizeof *map), kept;
        char **sub = NULL;
        if (map && o->classes_subset > n) asym_fail("%s: data.classes_subset is %d but the data set has %d classes", s->path, o->classes_subset, n);
        else if (map && !data_class_map(n, o->classes_subset, sseed, map, &kept)) sub = asym_calloc((size_t)kept, sizeof *sub);
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
