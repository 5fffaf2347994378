/* train.c: `asymbp train` and `asymbp eval`. Training shows a progress bar
 * on a terminal (epoch, batch, loss, images/s, time left) and one plain
 * line per epoch otherwise, and ends with the final and best test error. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

typedef struct Progress {
    int tty, quiet;
    double last;
    const AsymExperiment *ex;
    const char *out;
} Progress;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static void fmt_time(char *buf, size_t n, double s) {
    if (s >= 3600) snprintf(buf, n, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
    else if (s >= 60) snprintf(buf, n, "%dm%02ds", (int)(s / 60), (int)s % 60);
    else snprintf(buf, n, "%.0fs", s);
}

static void on_batch(void *user, int epoch, int epochs, int batch, int batches, float loss, double rate, double eta) {
    Progress *p = user;
    double t = now();
    if (!p->tty || p->quiet || (t - p->last < 0.1 && batch != batches)) return;
    p->last = t;
    char bar[31], left[32];
    int fill = (int)(30.0 * batch / batches);
    for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
    bar[30] = 0;
    fmt_time(left, sizeof left, eta);
    fprintf(stderr, "\repoch %d/%d [%s] %d/%d loss %.4f %.0f img/s %s left  ", epoch, epochs, bar, batch, batches, loss, rate, left);
    fflush(stderr);
}

static void on_start(void *user, int n_train, int n_val, int n_test, size_t n_weights) {
    Progress *p = user;
    if (p->quiet) return;
    printf("asymbp: training %s: %d train, %d validation, %d test images; %zu weights; seed %llu; %d epochs -> %s\n", p->ex->name, n_train, n_val, n_test,
           n_weights, (unsigned long long)p->ex->seed, p->ex->epochs, p->out);
    fflush(stdout);
}

static void on_epoch(void *user, const AsymEpochStats *st) {
    Progress *p = user;
    if (p->quiet) return;
    if (p->tty) fprintf(stderr, "\r\033[K");
    printf("epoch %3d  lr %-8.3g train loss %.4f err %6.2f%%  test loss %.4f err %6.2f%%", st->epoch, st->lr, st->train_loss, 100 * st->train_err,
           st->test_loss, 100 * st->test_err);
    if (st->val_err >= 0) printf("  val err %6.2f%%", 100 * st->val_err);
    if (st->mean_angle == st->mean_angle) printf("  angle %.1f", st->mean_angle);
    printf("  %.1fs %.0f img/s\n", st->seconds, st->images_per_s);
    fflush(stdout);
}

int cli_train_run(const AsymExperiment *ex, const char *out, int quiet, AsymSummary *sum) {
    Progress prog = {.tty = isatty(2), .quiet = quiet, .ex = ex, .out = out};
    AsymTrainHooks hooks = {.user = &prog, .on_start = on_start, .on_batch = on_batch, .on_epoch = on_epoch};
    if (asym_train(ex, out, &hooks, sum)) {
        if (prog.tty) fprintf(stderr, "\r\033[K");
        cli_fail(1, asym_last_error());
        if (sum->diverged) fprintf(stderr, "asymbp: %s/summary.json records the divergence\n", out);
        return 1;
    }
    return 0;
}

int cmd_train(const CliArgs *a) {
    AsymConfig *cfg;
    AsymExperiment ex;
    int rc = cli_load_experiment(a->positional, a, &cfg, &ex);
    if (rc) return rc;
    char out[1024];
    if (a->out) snprintf(out, sizeof out, "%s", a->out);
    else snprintf(out, sizeof out, "runs/%s", ex.name);
    if (cli_mkdir_p(out)) {
        rc = 1;
        goto done;
    }
    char path[1100];
    snprintf(path, sizeof path, "%s/summary.json", out);
    remove(path); /* a run that fails must not leave an old summary looking current */
    snprintf(path, sizeof path, "%s/config.yaml", out);
    if (asym_config_write(cfg, path)) {
        rc = cli_fail(1, asym_last_error());
        goto done;
    }
    AsymSummary sum;
    if ((rc = cli_train_run(&ex, out, a->quiet, &sum))) goto done;
    printf("final test error %.2f%%, best %.2f%% (epoch %d of %d), %.1fs, %.0f img/s\n", 100 * sum.final_test_err, 100 * sum.best_test_err, sum.best_epoch,
           sum.epochs, sum.seconds, sum.images_per_s);
done:
    asym_experiment_free(&ex);
    asym_config_free(cfg);
    return rc;
}

int cmd_eval(const CliArgs *a) {
    char cfg_path[1100], weights[1100];
    snprintf(cfg_path, sizeof cfg_path, "%s/config.yaml", a->positional);
    if (a->weights) snprintf(weights, sizeof weights, "%s", a->weights);
    else snprintf(weights, sizeof weights, "%s/model.bin", a->positional);
    AsymConfig *cfg;
    AsymExperiment ex;
    int rc = cli_load_experiment(cfg_path, a, &cfg, &ex);
    if (rc) return rc;
    AsymDataset train, val, test;
    AsymNet *net = NULL;
    AsymRng rng;
    asym_rng_seed(&rng, ex.seed);
    if (asym_net_create(&net, &ex.net, ex.batch_size, &rng) || asym_net_load(net, weights) || asym_experiment_data(&ex, &train, &val, &test)) {
        rc = cli_fail(1, asym_last_error());
    } else {
        double loss, err;
        asym_evaluate(net, &test, ex.batch_size, &loss, &err);
        printf("test loss %.4f, error %.2f%% (%d images, %s)\n", loss, 100 * err, test.n, ex.data.path);
        asym_dataset_free(&train);
        asym_dataset_free(&val);
        asym_dataset_free(&test);
    }
    asym_net_free(net);
    asym_experiment_free(&ex);
    asym_config_free(cfg);
    return rc;
}
