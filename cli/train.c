/* train.c: `asymbp train` and `asymbp eval`. Training shows a progress bar
 * on a terminal (epoch, batch, loss, images/s, time left) and one plain
 * line per epoch otherwise, and ends with the final and best test error.
 * SIGINT and SIGTERM let the step under way finish, save a checkpoint and
 * say how to continue (`asymbp train --resume DIR`); a second one ends the
 * process at once. eval, --resume and training from a run folder's
 * config.yaml say so in one line when the run was made by another build,
 * backend or thread count (its version.json). */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

typedef struct Progress {
    int tty, quiet;
    int fallbacks; /* weight-mirror Cholesky fall-backs reported so far */
    double last;
    AsymExperimentInfo ex;
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
    printf("asymbp: training %s: %d train, %d validation, %d test images; %zu weights; seed %llu; %d epochs -> %s\n", p->ex.name, n_train, n_val, n_test,
           n_weights, (unsigned long long)p->ex.seed, p->ex.epochs, p->out);
    fflush(stdout);
}

static void on_epoch(void *user, const AsymEpochStats *st) {
    Progress *p = user;
    if (st->wm_fallbacks > p->fallbacks) {
        if (p->tty) fprintf(stderr, "\r\033[K");
        fprintf(stderr, "asymbp: note: epoch %d: %d orthogonal mirror-noise blocks could not be factored (Cholesky) and kept plain normal noise; %d so far (log.jsonl: wm_fallbacks)\n",
                st->epoch, st->wm_fallbacks - p->fallbacks, st->wm_fallbacks);
        p->fallbacks = st->wm_fallbacks;
    }
    if (p->quiet) return;
    if (p->tty) fprintf(stderr, "\r\033[K");
    printf("epoch %3d  lr %-8.3g train loss %.4f err %6.2f%%  test loss %.4f err %6.2f%%", st->epoch, st->lr, st->train_loss, 100 * st->train_err,
           st->test_loss, 100 * st->test_err);
    if (st->test_err5 >= 0) printf(" top-5 %6.2f%%", 100 * st->test_err5);
    if (st->val_err >= 0) printf("  val err %6.2f%%", 100 * st->val_err);
    if (st->val_err5 >= 0) printf(" top-5 %6.2f%%", 100 * st->val_err5);
    if (st->skipped_files) printf("  %ld skipped", st->skipped_files);
    if (st->mean_angle == st->mean_angle) printf("  angle %.1f", st->mean_angle);
    printf("  %.1fs %.0f img/s", st->seconds, st->images_per_s);
    if (st->data_wait_s >= 0 && st->seconds > 0) printf(" (%.0f%% waiting for data)", 100 * st->data_wait_s / st->seconds);
    printf("\n");
    fflush(stdout);
}

/* A file skipped, an index cache rebuilt: on stderr, once each. */
static void on_note(void *user, const char *line) {
    Progress *p = user;
    if (p->tty) fprintf(stderr, "\r\033[K");
    fprintf(stderr, "asymbp: note: %s\n", line);
}

static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig) { stop_signal = sig; }

static int stop_hook(void *user) { return stop_signal != 0; }

/* debug.trap_fp: names the exception and where, then lets the faulting
 * instruction run again under the default action (the process dies with
 * SIGFPE and, where enabled, a core file for the debugger). Only
 * async-signal-safe calls here. */
static void on_fpe(int sig, siginfo_t *si, void *uctx) {
    static const char pre[] = "asymbp: floating-point exception (debug.trap_fp): ", digits[] = "0123456789abcdef";
    const char *what = si->si_code == FPE_FLTINV ? "invalid operation" : si->si_code == FPE_FLTDIV ? "division by zero"
                     : si->si_code == FPE_FLTOVF ? "overflow" : "arithmetic exception";
    char addr[2 + 2 * sizeof(void *) + 1];
    uintptr_t a = (uintptr_t)si->si_addr;
    addr[0] = '0', addr[1] = 'x';
    for (size_t i = 0; i < 2 * sizeof(void *); i++) addr[2 + i] = digits[(a >> (4 * (2 * sizeof(void *) - 1 - i))) & 15];
    addr[sizeof addr - 1] = 0;
    ssize_t w = write(2, pre, sizeof pre - 1);
    w += write(2, what, strlen(what));
    w += write(2, " at ", 4);
    w += write(2, addr, strlen(addr));
    w += write(2, "; run it under gdb to see the line\n", 35);
    (void)w;
}

int cli_train_go(const AsymExperiment *ex, const char *out, int quiet, int resume, AsymSummary *sum) {
    Progress prog = {.tty = isatty(2), .quiet = quiet, .out = out};
    asym_experiment_info(ex, &prog.ex);
    AsymTrainHooks hooks = {.user = &prog, .on_start = on_start, .on_batch = on_batch, .on_epoch = on_epoch, .stop = stop_hook, .on_note = on_note};
    struct sigaction sa, fpe, old_int, old_term, old_fpe;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sa.sa_flags = SA_RESETHAND; /* a second signal ends the process */
    sigemptyset(&sa.sa_mask);
    stop_signal = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    memset(&fpe, 0, sizeof fpe);
    fpe.sa_sigaction = on_fpe;
    fpe.sa_flags = SA_SIGINFO | SA_RESETHAND;
    sigemptyset(&fpe.sa_mask);
    if (prog.ex.trap_fp) sigaction(SIGFPE, &fpe, &old_fpe);
    int failed = resume ? asym_train_resume(ex, out, &hooks, sum) : asym_train(ex, out, &hooks, sum);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (prog.ex.trap_fp) sigaction(SIGFPE, &old_fpe, NULL);
    if (!failed) return 0;
    if (prog.tty) fprintf(stderr, "\r\033[K");
    if (sum->interrupted) {
        fprintf(stderr, "asymbp: %s by %s; %s/checkpoint.bin holds the run\n", asym_last_error(), stop_signal == SIGTERM ? "SIGTERM" : "SIGINT", out);
        if (asym_dist_size() > 1) fprintf(stderr, "asymbp: continue it with: mpirun -np %d asymbp train --resume %s\n", asym_dist_size(), out);
        else fprintf(stderr, "asymbp: continue it with: asymbp train --resume %s\n", out);
        return 128 + (stop_signal ? stop_signal : SIGINT);
    }
    cli_fail(1, asym_last_error());
    if (sum->diverged) {
        char path[1100];
        snprintf(path, sizeof path, "%s/checkpoint.bin", out);
        fprintf(stderr, "asymbp: %s/summary.json records the divergence", out);
        if (access(path, F_OK) == 0) fprintf(stderr, "; %s still holds the last good state (resume it with other settings: asymbp train CONFIG --resume %s)", path, out);
        fputc('\n', stderr);
    }
    return 1;
}

/* What differs between the build that made a run (then, version.json's
 * object) and this one (now): "commit abc (this: def), threads 4 (this: 2)"
 * into buf; 0 when nothing does. */
static int version_diff(const json_t *then, const json_t *now, char *buf, size_t n) {
    static const char *const keys[] = {"asymbp", "commit", "flags", "compiler", "blas", "convolutions", "threads", "ranks"};
    size_t k = 0;
    buf[0] = 0;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        json_t *a = json_object_get(then, keys[i]), *b = json_object_get(now, keys[i]);
        if (a && json_equal(a, b)) continue;
        char x[256], y[256];
        if (json_is_string(a)) snprintf(x, sizeof x, "%s", json_string_value(a));
        else if (json_is_integer(a)) snprintf(x, sizeof x, "%lld", (long long)json_integer_value(a));
        else snprintf(x, sizeof x, "unknown");
        if (json_is_string(b)) snprintf(y, sizeof y, "%s", json_string_value(b));
        else snprintf(y, sizeof y, "%lld", (long long)json_integer_value(b));
        k += snprintf(buf + (k < n ? k : n), k < n ? n - k : 0, "%s%s %s (this: %s)", k ? ", " : "", keys[i], x, y);
    }
    return k > 0;
}

/* One line on stderr when the run in dir was made, wholly or in part (a
 * resume), by another build, backend, thread count or rank count than this
 * process with threads (0: the environment's default), or by one that
 * predates version.json: its results and this one's may differ in the last
 * bits. Nothing is printed when they agree. */
static void version_note(const char *dir, int threads) {
    char path[1100], text[2048], diff[1400];
    json_error_t jerr;
    asym_version_json(text, sizeof text, threads > 0 ? threads : omp_get_max_threads());
    snprintf(path, sizeof path, "%s/version.json", dir);
    json_t *now = json_loads(text, 0, &jerr), *then = NULL;
    if (access(path, F_OK) != 0) {
        fprintf(stderr, "asymbp: note: %s has no version.json (made before asymbp recorded its version): the build that made it is unknown, and results may differ in the last bits\n", dir);
    } else if (!(then = json_load_file(path, 0, &jerr))) {
        fprintf(stderr, "asymbp: note: %s:%d: not valid JSON (%s): the build that made the run is unknown, and results may differ in the last bits\n", path,
                jerr.line, jerr.text);
    } else if (!json_is_object(then)) {
        fprintf(stderr, "asymbp: note: %s: not a JSON object: the build that made the run is unknown, and results may differ in the last bits\n", path);
    } else {
        /* the build that last trained it, then any earlier one a resume took over from */
        const json_t *v = then;
        for (int part = 0; v; part++) {
            if (!json_is_object(v)) {
                fprintf(stderr, "asymbp: note: part of %s was made before asymbp recorded its version (%s): that build is unknown, and results may differ in the last bits\n", dir, path);
                break;
            }
            if (version_diff(v, now, diff, sizeof diff)) {
                fprintf(stderr, "asymbp: note: %s%s was made with %s; results may differ in the last bits\n", part ? "part of " : "", dir, diff);
                break;
            }
            v = json_object_get(v, "resumed_from");
        }
    }
    json_decref(then);
    json_decref(now);
}

/* The folder of a config file when it is a run folder (it holds the files
 * of a run), else NULL; dir has n bytes. */
static const char *run_folder_of(const char *config, char *dir, size_t n) {
    static const char *const marks[] = {"version.json", "summary.json", "log.jsonl", "checkpoint.bin"};
    const char *slash = strrchr(config, '/');
    if (slash) snprintf(dir, n, "%.*s", (int)(slash - config), config);
    else snprintf(dir, n, ".");
    for (size_t i = 0; i < sizeof marks / sizeof marks[0]; i++) {
        char path[1200];
        snprintf(path, sizeof path, "%s/%s", dir, marks[i]);
        if (access(path, F_OK) == 0) return dir;
    }
    return NULL;
}

static void print_result(const AsymSummary *sum) {
    printf("final test error %.2f%%, best %.2f%% (epoch %d of %d), %.1fs, %.0f img/s\n", 100 * sum->final_test_err, 100 * sum->best_test_err, sum->best_epoch,
           sum->epochs, sum->seconds, sum->images_per_s);
}

/* Removes the temporary files (NAME.PID.tmp) a killed process left in dir. */
static void remove_stale_tmp(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name), k = n >= 4 ? n - 4 : 0;
        if (n < 7 || strcmp(e->d_name + k, ".tmp")) continue;
        while (k > 0 && e->d_name[k - 1] >= '0' && e->d_name[k - 1] <= '9') k--;
        if (k == n - 4 || k < 2 || e->d_name[k - 1] != '.') continue;
        char path[1400];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        remove(path);
    }
    closedir(d);
}

/* train [CONFIG] --resume DIR: DIR/config.yaml (or CONFIG, with --set, which
 * must describe the same network) continued from DIR/checkpoint.bin. A DIR
 * without a checkpoint yet (a run killed in its first epoch) starts over. */
static int resume_run(const CliArgs *a, int *agreed) {
    const char *dir = a->resume;
    if (a->out) return cli_fail(2, "--resume DIR continues the run in DIR: leave out --out");
    char ck_path[1100], cfg_path[1100], msg[1400];
    snprintf(ck_path, sizeof ck_path, "%s/checkpoint.bin", dir);
    snprintf(cfg_path, sizeof cfg_path, "%s/config.yaml", dir);
    AsymCheckpoint *ck = NULL;
    int64_t epoch = 0, batch = 0;
    int have_ck = access(ck_path, F_OK) == 0;
    if (have_ck && (asym_checkpoint_open(&ck, ck_path) || asym_checkpoint_int(ck, "epoch", &epoch) || asym_checkpoint_int(ck, "batch", &batch))) {
        asym_checkpoint_close(ck);
        return cli_fail(1, asym_last_error());
    }
    if (!a->positional && access(cfg_path, F_OK) != 0) {
        /* config.yaml lost: the checkpoint keeps a copy */
        const char *text = ck ? asym_checkpoint_text(ck, "config") : NULL;
        FILE *f = text ? fopen(cfg_path, "w") : NULL;
        int ok = f && fputs(text, f) >= 0;
        if (f && fclose(f) != 0) ok = 0;
        asym_checkpoint_close(ck);
        if (!ok) {
            snprintf(msg, sizeof msg, "%s: %s; give the config: asymbp train CONFIG --resume %s", dir,
                     !have_ck ? "holds neither checkpoint.bin nor config.yaml, nothing to resume" : text ? "cannot write config.yaml" : "no config.yaml, and the checkpoint holds none", dir);
            return cli_fail(have_ck && text ? 1 : 2, msg);
        }
        fprintf(stderr, "asymbp: %s was missing: written from the checkpoint\n", cfg_path);
    } else {
        asym_checkpoint_close(ck);
    }
    AsymConfig *cfg;
    AsymExperiment *ex;
    int rc = cli_load_experiment(a->positional ? a->positional : cfg_path, a->sets, a->n_sets, &cfg, &ex);
    if (rc) return rc;
    if (a->positional || a->n_sets) {
        /* the run's config.yaml becomes the new one, once the checkpoint fits it */
        if (have_ck && asym_checkpoint_check(ck_path, ex)) {
            rc = cli_fail(2, asym_last_error());
            goto done;
        }
        if (asym_config_write(cfg, cfg_path)) {
            rc = cli_fail(1, asym_last_error());
            goto done;
        }
    }
    char path[1100];
    snprintf(path, sizeof path, "%s/summary.json", dir);
    remove(path);
    remove_stale_tmp(dir);
    AsymExperimentInfo info = cli_info(ex);
    if (have_ck) version_note(dir, info.threads);
    if (!a->quiet) {
        if (!have_ck) printf("asymbp: %s holds no checkpoint yet: training from the start\n", dir);
        else if (batch) printf("asymbp: resuming %s inside epoch %lld, after step %lld\n", dir, (long long)epoch + 1, (long long)batch);
        else printf("asymbp: resuming %s after epoch %lld\n", dir, (long long)epoch);
        fflush(stdout);
    }
    AsymSummary sum;
    if (agreed) {
        /* the folder is ready: the other ranks may start */
        *agreed = 1;
        if (asym_dist_agree(0)) {
            rc = 1;
            goto done;
        }
    }
    if ((rc = cli_train_go(ex, dir, a->quiet, have_ck, &sum))) goto done;
    print_result(&sum);
done:
    cli_free_experiment(cfg, ex);
    return rc;
}

/* Under mpirun (docs/MPI.md) rank 0 checks and prepares the run folder
 * while the other ranks wait; then every rank loads the same config and
 * checkpoint and trains. */
static int cmd_resume(const CliArgs *a) {
    if (asym_dist_size() == 1) return resume_run(a, NULL);
    if (asym_dist_rank() == 0) {
        int agreed = 0, rc = resume_run(a, &agreed);
        if (!agreed) asym_dist_agree(ASYM_ERR); /* failed before training: the others stop too */
        return rc;
    }
    if (asym_dist_agree(0)) return 1; /* rank 0 could not prepare the run (its message says why) */
    char cfg_path[1100], ck_path[1100];
    snprintf(cfg_path, sizeof cfg_path, "%s/config.yaml", a->resume);
    snprintf(ck_path, sizeof ck_path, "%s/checkpoint.bin", a->resume);
    AsymConfig *cfg;
    AsymExperiment *ex;
    AsymSummary sum;
    /* rank 0 wrote the new config.yaml: --set is already in it */
    int rc = cli_load_experiment(cfg_path, NULL, 0, &cfg, &ex);
    if (rc) {
        asym_dist_agree(ASYM_ERR); /* in place of asym_train's first collective */
        return rc;
    }
    rc = cli_train_go(ex, a->resume, 1, access(ck_path, F_OK) == 0, &sum);
    cli_free_experiment(cfg, ex);
    return rc;
}

int cmd_train(const CliArgs *a) {
    if (a->resume) return cmd_resume(a);
    AsymConfig *cfg;
    AsymExperiment *ex;
    int rc = cli_load_args(a, NULL, 0, &cfg, &ex);
    if (rc) {
        if (asym_dist_size() > 1) asym_dist_agree(ASYM_ERR);
        return rc;
    }
    char out[1024], from[1024];
    AsymExperimentInfo info = cli_info(ex);
    if (a->out) snprintf(out, sizeof out, "%s", a->out);
    else snprintf(out, sizeof out, "runs/%s", info.name);
    /* a run trained again from its config.yaml */
    if (asym_dist_rank() == 0 && run_folder_of(a->positional, from, sizeof from)) version_note(from, info.threads);
    /* under mpirun rank 0 alone writes the run folder (docs/MPI.md) */
    if (asym_dist_rank() == 0) {
        char path[1100];
        if (cli_mkdir_p(out)) {
            rc = 1;
        } else {
            snprintf(path, sizeof path, "%s/summary.json", out);
            remove(path); /* a run that fails must not leave an old summary looking current */
            snprintf(path, sizeof path, "%s/config.yaml", out);
            if (asym_config_write(cfg, path)) rc = cli_fail(1, asym_last_error());
        }
    }
    if (asym_dist_size() > 1 && asym_dist_agree(rc)) rc = rc ? rc : 1;
    if (rc) goto done;
    AsymSummary sum;
    if ((rc = cli_train_go(ex, out, a->quiet || asym_dist_rank() > 0, 0, &sum))) goto done;
    print_result(&sum);
done:
    cli_free_experiment(cfg, ex);
    return rc;
}

/* A file eval found unreadable, an index cache rebuilt: on stderr. */
static void eval_note(void *user, const char *line) {
    (void)user;
    fprintf(stderr, "%s\n", line);
}

int cmd_eval(const CliArgs *a) {
    char cfg_path[1100], weights[1100];
    snprintf(cfg_path, sizeof cfg_path, "%s/config.yaml", a->positional);
    if (a->weights) snprintf(weights, sizeof weights, "%s", a->weights);
    else snprintf(weights, sizeof weights, "%s/model.bin", a->positional);
    AsymConfig *cfg;
    AsymExperiment *ex;
    int rc = cli_load_experiment(cfg_path, a->sets, a->n_sets, &cfg, &ex);
    if (rc) return rc;
    AsymNet *net = NULL;
    AsymExperimentInfo info = cli_info(ex);
    double loss, err, err5;
    int n = 0;
    long bad = 0;
    if (asym_experiment_net(ex, &net) || asym_net_load(net, weights)) {
        rc = cli_fail(1, asym_last_error());
    } else {
        version_note(a->positional, 0);
        if (asym_experiment_test(ex, net, &loss, &err, &err5, &n, &bad, eval_note, NULL)) rc = cli_fail(1, asym_last_error());
        else {
            printf("test loss %.4f, error %.2f%%", loss, 100 * err);
            if (err5 >= 0) printf(", top-5 error %.2f%%", 100 * err5);
            printf(" (%d images, %s", n, info.data_path);
            if (bad) printf("; %ld unreadable, each replaced by the next readable image", bad);
            printf(")\n");
        }
    }
    asym_net_free(net);
    cli_free_experiment(cfg, ex);
    return rc;
}
