/* data.c: `asymbp data info PATH [options]`: what a data set on disk holds,
 * read the way training reads it: format detected, number of images,
 * classes, image size, images per class and the per-channel mean and std
 * of the [0, 1] pixels (before any normalization). PATH is a data set's
 * folder (or an SVHN .mat file), or an experiment file (.yaml), whose data
 * section is then applied: sampling, validation split, grayscale. Exit
 * codes as for the other commands: 0, 1 (bad data), 2 (bad usage). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void data_usage(FILE *f) {
    fprintf(f, "usage: asymbp data info PATH [--format F] [--size H[,W]] [--grayscale] [--label fine|coarse]\n"
               "                             [--exclude CLASS]... [--cache DIR] [--unlabeled]\n"
               "       asymbp data info CONFIG.yaml [--set KEY=VALUE]...\n"
               "PATH: a data set folder (MNIST IDX, CIFAR-10/100 or STL-10 binary, SVHN .mat, image folders, .npy)\n"
               "or an SVHN .mat file; formats (default: detected):");
    for (int i = 0; asym_data_format(i); i++) fprintf(f, " %s", asym_data_format(i));
    fprintf(f, "\n");
}

static int ends_with(const char *s, const char *t) {
    size_t a = strlen(s), b = strlen(t);
    return a >= b && !strcmp(s + a - b, t);
}

/* Prints up to 8 numbers of v, then how many more. */
static void print_values(const char *label, const float *v, int n) {
    printf("  %s", label);
    for (int i = 0; i < n && i < 8; i++) printf(" %.4f", v[i]);
    if (n > 8) printf(" ... (%d values)", n);
    printf("\n");
}

static void report(const char *split, const AsymDataset *d, char **names, int n_names) {
    printf("%s: %d images\n", split, d->n);
    if (d->n == 0) return;
    float *mean = calloc((size_t)d->c, sizeof *mean), *std = calloc((size_t)d->c, sizeof *std);
    int *count = calloc((size_t)d->classes, sizeof *count);
    if (!mean || !std || !count) {
        printf("  (out of memory for the statistics)\n");
        goto done;
    }
    asym_dataset_stats(d, mean, std);
    print_values(d->c > 4 ? "mean (per feature):" : "mean:", mean, d->c);
    print_values(d->c > 4 ? "std (per feature): " : "std: ", std, d->c);
    for (int i = 0; i < d->n; i++)
        if (d->y[i] >= 0 && d->y[i] < d->classes) count[d->y[i]]++;
    /* name count pairs, wrapped at about 100 columns */
    printf("  per class:");
    int col = 12;
    for (int k = 0; k < d->classes; k++) {
        char item[300];
        int l = snprintf(item, sizeof item, " %s %d%s", k < n_names ? names[k] : "?", count[k], k + 1 < d->classes ? "," : "");
        if (col + l > 100) {
            printf("\n   ");
            col = 3;
        }
        fputs(item, stdout);
        col += l;
    }
    printf("\n");
done:
    free(mean);
    free(std);
    free(count);
}

static int info_config(const char *path, const char **sets, int n_sets) {
    AsymConfig *cfg;
    AsymExperiment *ex;
    int rc = cli_load_experiment(path, sets, n_sets, &cfg, &ex);
    if (rc) return rc;
    /* The statistics of the pixels as read: no padding, no normalization. */
    AsymExperimentInfo info = cli_info(ex);
    AsymDataset tr, va, te;
    char **names = NULL;
    int n_names = 0;
    if (asym_experiment_data(ex, 0, &tr, &va, &te)) {
        rc = cli_fail(1, asym_last_error());
    } else {
        if (asym_experiment_names(ex, &names, &n_names)) n_names = 0;
        printf("config: %s\npath: %s\nformat: %s\nimage size: %d x %d x %d\nclasses: %d\n", path, info.data_path, info.data_format, tr.c,
               tr.h, tr.w, tr.classes);
        report("train", &tr, names, n_names);
        if (va.n) report("validation", &va, names, n_names);
        report("test", &te, names, n_names);
        asym_data_names_free(names, n_names);
        asym_dataset_free(&tr);
        asym_dataset_free(&va);
        asym_dataset_free(&te);
    }
    cli_free_experiment(cfg, ex);
    return rc;
}

static int info_path(const char *path, char format[16], const AsymDataOptions *o, int unlabeled) {
    if (!format[0] && asym_data_detect(path, format, 16)) return cli_fail(1, asym_last_error());
    /* options of one format, as in the data section of experiments */
    int folder = !strcmp(format, "folder");
    if (!folder && (o->size_h || o->exclude[0] || o->cache[0]))
        return cli_fail(2, "data info: --size, --exclude and --cache apply to image folders only");
    if (o->coarse && strcmp(format, "cifar100")) return cli_fail(2, "data info: --label applies to CIFAR-100 only");
    AsymDataset tr, te;
    int pooled;
    char **names = NULL;
    int n_names = 0;
    if (asym_data_read(format, path, o, &tr, &te, &pooled)) return cli_fail(1, asym_last_error());
    int rc = 0;
    if (o->grayscale && (asym_dataset_grayscale(&tr) || asym_dataset_grayscale(&te))) {
        rc = cli_fail(1, asym_last_error());
        goto done;
    }
    if (asym_data_names(format, path, o, &names, &n_names)) n_names = 0;
    int classes = tr.classes > te.classes ? tr.classes : te.classes;
    tr.classes = te.classes = classes;
    printf("path: %s\nformat: %s\nimage size: %d x %d x %d\nclasses: %d\n", path, format, tr.c, tr.h, tr.w, classes);
    if (pooled) {
        report("all (no fixed train/test split)", &tr, names, n_names);
    } else {
        report("train", &tr, names, n_names);
        report("test", &te, names, n_names);
    }
    if (unlabeled) {
        int n;
        float mean[3], std[3];
        if (strcmp(format, "stl10")) {
            rc = cli_fail(2, "data info: --unlabeled applies to STL-10 only");
        } else if (asym_stl10_unlabeled_stats(path, &n, mean, std)) {
            rc = cli_fail(1, asym_last_error());
        } else {
            printf("unlabeled: %d images (not used for training)\n", n);
            print_values("mean:", mean, 3);
            print_values("std: ", std, 3);
        }
    }
done:
    asym_data_names_free(names, n_names);
    asym_dataset_free(&tr);
    asym_dataset_free(&te);
    return rc;
}

int cmd_data(int argc, char **argv) {
    if (argc < 1 || strcmp(argv[0], "info")) {
        data_usage(stderr);
        return 2;
    }
    AsymDataOptions s;
    char format[16] = "";
    memset(&s, 0, sizeof s);
    const char *path = NULL, *sets[CLI_MAX_SETS];
    int n_sets = 0, unlabeled = 0, path_opts = 0;
    size_t ex_len = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "--format") && more) {
            snprintf(format, sizeof format, "%s", argv[++i]);
            path_opts = 1;
        } else if (!strcmp(a, "--size") && more) {
            char *end;
            long h = strtol(argv[++i], &end, 10), w = h;
            if (*end == ',' || *end == 'x') w = strtol(end + 1, &end, 10);
            if (*end || h < 1 || h > 4096 || w < 1 || w > 4096) return cli_failf(2, "data info: --size: expected H or H,W (1 to 4096), got '%s'", argv[i]);
            s.size_h = (int)h;
            s.size_w = (int)w;
            path_opts = 1;
        } else if (!strcmp(a, "--grayscale")) {
            s.grayscale = path_opts = 1;
        } else if (!strcmp(a, "--label") && more) {
            const char *v = argv[++i];
            if (strcmp(v, "fine") && strcmp(v, "coarse")) return cli_failf(2, "data info: --label: expected fine or coarse, got '%s'", v);
            s.coarse = !strcmp(v, "coarse");
            path_opts = 1;
        } else if (!strcmp(a, "--exclude") && more) {
            const char *v = argv[++i];
            size_t l = strlen(v);
            if (!l || strchr(v, '/') || ex_len + l + 2 > sizeof s.exclude) return cli_fail(2, "data info: --exclude: bad or too many class names");
            memcpy(s.exclude + ex_len, v, l);
            ex_len += l;
            s.exclude[ex_len++] = '\n';
            s.exclude[ex_len] = 0;
            path_opts = 1;
        } else if (!strcmp(a, "--cache") && more) {
            snprintf(s.cache, sizeof s.cache, "%s", argv[++i]);
            path_opts = 1;
        } else if (!strcmp(a, "--unlabeled")) {
            unlabeled = path_opts = 1;
        } else if (!strcmp(a, "--set") && more) {
            if (n_sets == CLI_MAX_SETS) return cli_fail(2, "too many --set options");
            sets[n_sets++] = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            return cli_failf(2, "data info: unknown or incomplete option '%s'", a);
        } else if (!path) {
            path = a;
        } else {
            return cli_failf(2, "data info: unexpected argument '%s'", a);
        }
    }
    if (!path) {
        data_usage(stderr);
        return 2;
    }
    if (ends_with(path, ".yaml") || ends_with(path, ".yml")) {
        if (path_opts) return cli_fail(2, "data info: with an experiment file, change the data section with --set data.KEY=VALUE");
        return info_config(path, sets, n_sets);
    }
    if (n_sets) return cli_fail(2, "data info: --set applies to experiment files (.yaml)");
    if (format[0]) {
        char known[256] = "";
        int found = 0;
        for (int i = 0; asym_data_format(i); i++) {
            found |= !strcmp(format, asym_data_format(i));
            snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", i ? ", " : "", asym_data_format(i));
        }
        if (!found) return cli_failf(2, "data info: --format: expected one of %s; got '%s'", known, format);
    }
    return info_path(path, format, &s, unlabeled);
}
