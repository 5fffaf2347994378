/* test_checkpoint.c: checkpoints and resuming (src/io/checkpoint.c, state.c,
 * train/run.c, loop.c): a save/load round trip continues bit for bit; a run stopped
 * after any epoch or step and resumed ends bitwise equal to an uninterrupted
 * one (weights, log and summary but their timing fields); kill -9 at random
 * points of a CLI run loses no finished epoch and changes nothing; SIGINT
 * and SIGTERM save and say how to continue; every bit flip and truncation
 * of a checkpoint is refused cleanly; another architecture, rule, optimizer,
 * data set or format version is refused naming the difference; export is
 * read back by NumPy; a NaN or Inf in a parameter stops the run and keeps
 * the last good checkpoint; debug.trap_fp traps where it happens. */
#include <errno.h>
#include <math.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "asymbp.h"
#include "io/checkpoint.h"
#include "net/net.h"
#include "test.h"
#include "train/train.h"

/* Every kind of state a run carries: brsf (magnitudes redrawn from its
 * generator every step), kp (B with optimizer state), wm (mirror noise),
 * batch norm, dropout, Adam, a validation split, a cosine schedule. */
static const char *const CFG_ADAM =
    "name: ck-adam\nseed: 7\nepochs: 4\nbatch_size: 16\nthreads: 1\n"
    "data:\n  format: random\n  random: {n: 120, c: 1, h: 8, w: 8, classes: 4}\n  val_size: 20\n"
    "model:\n  layers:\n"
    "    - {type: conv, out: 4, k: 3, pad: 1, rule: brsf}\n    - batchnorm\n    - relu\n    - {type: maxpool, k: 2}\n    - flatten\n"
    "    - {type: dropout, p: 0.3}\n    - {type: fc, out: 12, rule: kp}\n    - relu\n    - {type: fc, out: 4, rule: wm}\n"
    "optimizer: {name: adam, lr: 0.01, weight_decay: 1.0e-4}\n"
    "schedule: {name: cosine, t_max: 4}\n";

/* SGD with Nesterov momentum and weight decay, partial sign concordance
 * (frsf, usf), dfa, a multistep schedule, batch-norm recomputation, the
 * default thread count. */
static const char *const CFG_SGD =
    "name: ck-sgd\nseed: 11\nepochs: 4\nbatch_size: 10\n"
    "data:\n  format: random\n  random: {n: 95, c: 2, h: 6, w: 6, classes: 3}\n"
    "feedback: {concordance: 0.8}\n"
    "bn_recompute: {batches: 2, alpha: 0.1}\n"
    "model:\n  layers:\n"
    "    - {type: conv, out: 3, k: 3, rule: frsf}\n    - batchnorm\n    - tanh\n    - flatten\n    - {type: fc, out: 10, rule: dfa}\n"
    "    - relu\n    - {type: dropout, p: 0.2}\n    - {type: fc, out: 8, rule: usf}\n    - relu\n    - {type: fc, out: 3}\n"
    "optimizer: {name: sgd, lr: 0.05, momentum: 0.9, nesterov: true, weight_decay: 5.0e-4}\n"
    "schedule: {name: multistep, milestones: [2, 3], gamma: 0.5}\n";

/* For the CLI runs: long enough (a few seconds) to be killed at random points. */
static const char *const CFG_KILL =
    "name: ck-kill\nseed: 3\nepochs: 5\nbatch_size: 32\nthreads: 1\n"
    "data:\n  format: random\n  random: {n: 12000, c: 1, h: 12, w: 12, classes: 4}\n"
    "model:\n  layers:\n"
    "    - {type: conv, out: 6, k: 3, pad: 1, rule: brsf}\n    - batchnorm\n    - relu\n    - {type: maxpool, k: 2}\n    - flatten\n"
    "    - {type: dropout, p: 0.2}\n    - {type: fc, out: 16, rule: kp}\n    - relu\n    - {type: fc, out: 4, rule: wm}\n"
    "optimizer: {name: sgd, lr: 0.02, momentum: 0.9}\n";

static const char *cfg_file(const char *name, const char *text) {
    static char path[4][600];
    static int k;
    char *p = path[k++ % 4];
    snprintf(p, 600, "%s/%s.yaml", test_tmpdir(), name);
    test_write_file(p, text);
    return p;
}

/* The experiment of a config text with up to two --set overrides. */
static int load_ex(const char *text, const char *set1, const char *set2, AsymConfig **cfg, AsymExperiment *ex) {
    const char *path = cfg_file("load", text);
    if (asym_config_load(cfg, path)) return ASYM_ERR;
    if ((set1 && asym_config_set(*cfg, set1)) || (set2 && asym_config_set(*cfg, set2)) || asym_experiment_from_config(ex, *cfg)) {
        asym_config_free(*cfg);
        return ASYM_ERR;
    }
    return ASYM_OK;
}

static uint8_t *read_bytes(const char *path, size_t *n) { return (uint8_t *)test_read_file_n(path, n); }

static int write_bytes(const char *path, const uint8_t *b, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int ok = fwrite(b, 1, n, f) == n;
    return fclose(f) == 0 && ok ? 0 : -1;
}

static int same_file(const char *a, const char *b) {
    size_t na, nb;
    uint8_t *x = read_bytes(a, &na), *y = read_bytes(b, &nb);
    int same = x && y && na == nb && !memcmp(x, y, na);
    free(x);
    free(y);
    return same;
}

/* A text with the values of "seconds" and "images_per_s" removed: what
 * must match between a resumed run and an uninterrupted one. */
static char *untimed(const char *path) {
    char *s = test_read_file(path);
    if (!s) return NULL;
    const char *keys[] = {"\"seconds\": ", "\"images_per_s\": "};
    for (int k = 0; k < 2; k++)
        for (char *p = strstr(s, keys[k]); p; p = strstr(p, keys[k])) {
            p += strlen(keys[k]);
            size_t n = strspn(p, "0123456789.e+-");
            memmove(p, p + n, strlen(p + n) + 1);
        }
    return s;
}

/* Whether two run folders hold the same results: model.bin byte for byte,
 * log.jsonl and summary.json but for timing; prints the first difference. */
static int same_run(const char *ref, const char *dir) {
    const char *files[] = {"log.jsonl", "summary.json"};
    char a[700], b[700];
    snprintf(a, sizeof a, "%s/model.bin", ref);
    snprintf(b, sizeof b, "%s/model.bin", dir);
    if (!same_file(a, b)) {
        printf("    %s differs from %s\n", b, a);
        return 0;
    }
    for (int i = 0; i < 2; i++) {
        snprintf(a, sizeof a, "%s/%s", ref, files[i]);
        snprintf(b, sizeof b, "%s/%s", dir, files[i]);
        char *x = untimed(a), *y = untimed(b);
        int same = x && y && !strcmp(x, y);
        if (!same) printf("    %s differs from %s:\n%s\n---\n%s\n", b, a, x ? x : "(missing)", y ? y : "(missing)");
        free(x);
        free(y);
        if (!same) return 0;
    }
    return 1;
}

/* ---- library round trip ---- */

static void train_steps(AsymNet *net, AsymOptim *opt, const AsymDataset *d, int first, int steps, int B) {
    size_t in = (size_t)d->c * d->h * d->w;
    for (int s = first; s < first + steps; s++) {
        int off = (s * B) % (d->n - B);
        asym_net_zero_grad(net);
        asym_net_forward(net, d->x + off * in, B, 1);
        asym_net_loss(net, d->y + off, B, 1, NULL);
        asym_optim_step(opt, 0.01f);
        asym_net_feedback_update(net);
    }
}

/* Every tensor of a and b equal bit for bit (verbose: name the first that differs). */
static int same_tensors(AsymNet *a, AsymNet *b, int verbose) {
    for (int k = 0; k < 3; k++) {
        int n = k == 0 ? asym_net_n_params(a) : k == 1 ? asym_net_n_buffers(a) : asym_net_n_feedback(a);
        for (int i = 0; i < n; i++) {
            AsymParam *p = k == 0 ? asym_net_param(a, i) : k == 1 ? asym_net_buffer(a, i) : asym_net_feedback(a, i);
            AsymParam *q = k == 0 ? asym_net_param(b, i) : k == 1 ? asym_net_buffer(b, i) : asym_net_feedback(b, i);
            if (p->n != q->n || memcmp(p->w, q->w, sizeof(float) * p->n)) {
                if (verbose) printf("    tensor %s differs\n", p->name);
                return 0;
            }
        }
    }
    return 1;
}

TEST(ckpt_save_load_roundtrip) {
    const char *texts[2] = {CFG_ADAM, CFG_SGD};
    for (int t = 0; t < 2; t++) {
        AsymConfig *cfg;
        AsymExperiment ex;
        CHECK_OK(load_ex(texts[t], NULL, NULL, &cfg, &ex));
        AsymDataset train, val, test;
        CHECK_OK(asym_experiment_data(&ex, 1, &train, &val, &test));
        AsymNet *a, *b;
        AsymOptim *oa, *ob;
        AsymRng r1, r2;
        asym_rng_seed(&r1, 1);
        asym_rng_seed(&r2, 2); /* another initialization: the load must replace all of it */
        int B = ex.batch_size;
        CHECK_OK(asym_net_create(&a, &ex.net, B, &r1));
        CHECK_OK(asym_net_create(&b, &ex.net, B, &r2));
        CHECK_OK(asym_optim_create(&oa, a, &ex.opt));
        CHECK_OK(asym_optim_create(&ob, b, &ex.opt));
        train_steps(a, oa, &train, 0, 5, B);
        char path[600];
        snprintf(path, sizeof path, "%s/roundtrip%d.bin", test_tmpdir(), t);
        CHECK_OK(asym_checkpoint_save(path, a, oa));
        CHECK(!same_tensors(a, b, 0));
        CHECK_OK(asym_checkpoint_load(path, b, ob));
        CHECK(same_tensors(a, b, 1));
        /* the optimizer state and every generator came along: the next steps agree */
        train_steps(a, oa, &train, 5, 7, B);
        train_steps(b, ob, &train, 5, 7, B);
        CHECK_MSG(same_tensors(a, b, 1), "config %d: 7 steps after the load, the networks differ", t);
        /* without the optimizer: weights and generators only */
        AsymCheckpoint *ck;
        CHECK_OK(asym_checkpoint_open(&ck, path));
        int64_t steps;
        CHECK_OK(asym_checkpoint_int(ck, "optim/t", &steps));
        CHECK(steps == 5);
        const char *arch = asym_checkpoint_text(ck, "arch");
        CHECK(arch && strstr(arch, "param 0.W ") && strstr(arch, "rule 0 "));
        CHECK(asym_checkpoint_text(ck, "config") == NULL);
        asym_checkpoint_close(ck);
        asym_optim_free(oa);
        asym_optim_free(ob);
        asym_net_free(a);
        asym_net_free(b);
        asym_dataset_free(&train);
        asym_dataset_free(&val);
        asym_dataset_free(&test);
        asym_experiment_free(&ex);
        asym_config_free(cfg);
    }
}

/* ---- resuming through the library: stopped after any epoch or step ---- */

typedef struct Stopper {
    int after_epoch, after_step; /* stop after this epoch or this many steps of this process (0: never) */
    int epochs, steps;
} Stopper;

static void stopper_batch(void *u, int epoch, int epochs, int batch, int batches, float loss, double rate, double eta) { ((Stopper *)u)->steps++; }
static void stopper_epoch(void *u, const AsymEpochStats *st) { ((Stopper *)u)->epochs++; }

static int stopper_stop(void *u) {
    Stopper *s = u;
    return (s->after_epoch && s->epochs >= s->after_epoch) || (s->after_step && s->steps >= s->after_step);
}

/* Runs ex in dir, stopped where s says (NULL: to the end), resuming if asked. */
static int run_lib(const AsymExperiment *ex, const char *dir, int resume, Stopper *s, AsymSummary *sum) {
    AsymTrainHooks h = {.user = s, .on_batch = stopper_batch, .on_epoch = stopper_epoch, .stop = stopper_stop};
    return resume ? asym_train_resume(ex, dir, s ? &h : NULL, sum) : asym_train(ex, dir, s ? &h : NULL, sum);
}

TEST(ckpt_resume_bitwise_after_any_epoch_or_step) {
    const char *texts[2] = {CFG_ADAM, CFG_SGD};
    for (int t = 0; t < 2; t++) {
        AsymConfig *cfg;
        AsymExperiment ex;
        AsymSummary sum;
        CHECK_OK(load_ex(texts[t], NULL, NULL, &cfg, &ex));
        int n_train = t == 0 ? 100 : 95, batches = (n_train + ex.batch_size - 1) / ex.batch_size;
        char ref[600], dir[600];
        snprintf(ref, sizeof ref, "%s/lib%d_ref", test_tmpdir(), t);
        CHECK_OK(run_lib(&ex, ref, 0, NULL, &sum));
        /* stops after epochs 1..3, after the first step, after the last step
         * of epoch 1, inside epochs 2 and 3, and twice in one run */
        int stops[][2] = {{1, 0}, {2, 0}, {3, 0}, {0, 1}, {0, batches}, {0, batches + 3}, {0, 2 * batches + 5}, {0, -5}};
        for (size_t k = 0; k < sizeof stops / sizeof stops[0]; k++) {
            snprintf(dir, sizeof dir, "%s/lib%d_stop%zu", test_tmpdir(), t, k);
            int twice = stops[k][1] < 0;
            Stopper s = {.after_epoch = stops[k][0], .after_step = twice ? -stops[k][1] : stops[k][1]};
            int rc = run_lib(&ex, dir, 0, &s, &sum);
            CHECK_MSG(rc != 0 && sum.interrupted, "config %d, stop %zu: rc %d, interrupted %d: %s", t, k, rc, sum.interrupted, asym_last_error());
            CHECK(test_exists(dir, "checkpoint.bin") && !test_exists(dir, "summary.json") && !test_exists(dir, "model.bin"));
            if (twice) {
                Stopper s2 = {.after_step = batches + 2};
                rc = run_lib(&ex, dir, 1, &s2, &sum);
                CHECK_MSG(rc != 0 && sum.interrupted && sum.stop_epoch == 2, "second stop: epoch %d: %s", sum.stop_epoch, asym_last_error());
            }
            CHECK_MSG(run_lib(&ex, dir, 1, NULL, &sum) == 0, "resume: %s", asym_last_error());
            CHECK_MSG(same_run(ref, dir), "config %d: stopped at epoch %d, step %d, resumed: not the uninterrupted run's result", t, stops[k][0], stops[k][1]);
        }
        /* a finished run resumed: nothing left to do, the same results */
        CHECK_OK(run_lib(&ex, ref, 1, NULL, &sum));
        snprintf(dir, sizeof dir, "%s/lib%d_stop0", test_tmpdir(), t);
        CHECK(same_run(dir, ref));
        asym_experiment_free(&ex);
        asym_config_free(cfg);
    }
}

/* pfa under SGD steps B itself (its optimizer state B's, no R): a run
 * stopped inside an epoch and resumed gives the uninterrupted run's bits.
 * A checkpoint of pfa stepping R (update: factor) resumed under the
 * default names R and the option that resumes it; with the option set it
 * resumes, to the bits of its own uninterrupted run. */
TEST(ckpt_pfa_resume) {
    static const char *const text =
        "name: ck-pfa\nseed: 5\nepochs: 2\nbatch_size: 10\n"
        "data:\n  format: random\n  random: {n: 60, c: 1, h: 4, w: 4, classes: 3}\n"
        "model:\n  layers:\n    - {type: conv, out: 3, k: 3, rule: pfa}\n    - relu\n    - flatten\n"
        "    - {type: fc, out: 8, rule: pfa}\n    - relu\n    - {type: fc, out: 3, rule: pfa}\n"
        "feedback: {pfa: {expansion: 3}}\n"
        "optimizer: {name: sgd, lr: 0.05, momentum: 0.9, weight_decay: 1.0e-3}\n";
    const char *factor = "feedback.pfa.update=factor";
    for (int f = 0; f < 2; f++) {
        AsymConfig *cfg;
        AsymExperiment ex;
        AsymSummary sum;
        CHECK_OK(load_ex(text, f ? factor : NULL, NULL, &cfg, &ex));
        char ref[600], dir[600];
        snprintf(ref, sizeof ref, "%s/pfa%d_ref", test_tmpdir(), f);
        snprintf(dir, sizeof dir, "%s/pfa%d_stop", test_tmpdir(), f);
        CHECK_OK(run_lib(&ex, ref, 0, NULL, &sum));
        Stopper s = {.after_step = 8};
        CHECK(run_lib(&ex, dir, 0, &s, &sum) != 0 && sum.interrupted);
        AsymCheckpoint *ck;
        char path[700];
        snprintf(path, sizeof path, "%s/checkpoint.bin", dir);
        CHECK_OK(asym_checkpoint_open(&ck, path));
        const char *arch = asym_checkpoint_text(ck, "arch");
        CHECK_MSG(arch && (strstr(arch, "feedback 3.R ") != NULL) == f, "update %s: R %s in the checkpoint", f ? "factor" : "auto", f ? "missing" : "kept");
        asym_checkpoint_close(ck);
        if (f) {
            /* the default steps B: R is named, and the option that resumes it */
            AsymConfig *c2;
            AsymExperiment e2;
            CHECK_OK(load_ex(text, NULL, NULL, &c2, &e2));
            CHECK(run_lib(&e2, dir, 1, NULL, &sum) != 0);
            CHECK_MSG(strstr(asym_last_error(), "pfa factor R") && strstr(asym_last_error(), "feedback.pfa.update: factor"), "%s", asym_last_error());
            asym_experiment_free(&e2);
            asym_config_free(c2);
        }
        CHECK_MSG(run_lib(&ex, dir, 1, NULL, &sum) == 0, "resume: %s", asym_last_error());
        CHECK_MSG(same_run(ref, dir), "update %s: stopped after 8 steps and resumed: not the uninterrupted run's result", f ? "factor" : "auto");
        asym_experiment_free(&ex);
        asym_config_free(cfg);
    }
}

TEST(ckpt_resume_fmnist_subset) {
    if (!test_have_fmnist()) return;
    /* LeNet on 600 Fashion-MNIST images, fa with dropout on the features */
    static const char *const text =
        "name: ck-fmnist\nseed: 2\nepochs: 3\nbatch_size: 32\nthreads: 1\nrule: fa\n"
        "data: {format: idx, path: " TEST_FMNIST ", pad: 2, train_limit: 600, test_limit: 200}\n"
        "model: {arch: lenet, init: xavier_uniform}\n"
        "optimizer: {name: sgd, lr: 0.05, momentum: 0.9, weight_decay: 1.0e-3}\n"
        "schedule: {name: step, step_size: 2, gamma: 0.1}\n";
    AsymConfig *cfg;
    AsymExperiment ex;
    AsymSummary sum;
    CHECK_OK(load_ex(text, NULL, NULL, &cfg, &ex));
    char ref[600], dir[600];
    snprintf(ref, sizeof ref, "%s/fm_ref", test_tmpdir());
    snprintf(dir, sizeof dir, "%s/fm_stop", test_tmpdir());
    CHECK_OK(run_lib(&ex, ref, 0, NULL, &sum));
    Stopper s = {.after_step = 25};
    CHECK(run_lib(&ex, dir, 0, &s, &sum) != 0 && sum.interrupted);
    CHECK_OK(run_lib(&ex, dir, 1, NULL, &sum));
    CHECK(same_run(ref, dir));
    asym_experiment_free(&ex);
    asym_config_free(cfg);
}

/* ---- the CLI: kill -9, SIGINT, SIGTERM ---- */

static const char *bin_path(void) { return getenv("ASYM_BIN") ? getenv("ASYM_BIN") : "build/asymbp"; }

/* Starts the CLI (from the source root) with argv (argv[0] is set here),
 * stdout and stderr into out_file, no core files. */
static pid_t spawn(const char *out_file, const char **argv) {
    pid_t pid = fork();
    if (pid != 0) return pid;
    int fd = open(out_file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0 || chdir(test_srcdir()) != 0) _exit(126);
    argv[0] = bin_path();
    execv(argv[0], (char *const *)argv);
    _exit(127);
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* Waits up to seconds for pid; returns its wait status, or -1 if it still runs. */
static int wait_for(pid_t pid, double seconds) {
    double end = now_s() + seconds;
    int st;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) return st;
        if (r < 0 || now_s() > end) return -1;
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
}

/* Complete lines of dir/log.jsonl. */
static int log_lines(const char *dir) {
    char path[700];
    snprintf(path, sizeof path, "%s/log.jsonl", dir);
    char *s = test_read_file(path);
    int n = 0;
    for (char *p = s; p && *p; p++) n += *p == '\n';
    free(s);
    return n;
}

static uint64_t mix(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

TEST(ckpt_kill9_then_resume_cli) {
    const char *cfg = cfg_file("kill", CFG_KILL);
    char ref[600], dir[600], out[700];
    snprintf(ref, sizeof ref, "%s/kill_ref", test_tmpdir());
    snprintf(out, sizeof out, "%s/kill.out", test_tmpdir());
    double t0 = now_s();
    int rc = test_cli("train '%s' --out '%s' --quiet", cfg, ref);
    double t_ref = now_s() - t0;
    CHECK_MSG(rc == 0, "%s", test_out);
    /* the kill times are random but repeatable: ASYM_KILL_SEED picks others */
    uint64_t seed = getenv("ASYM_KILL_SEED") ? strtoull(getenv("ASYM_KILL_SEED"), NULL, 10) : 20261126;
    int kills = 0;
    char seen[256] = "";
    for (int trial = 0; trial < 3; trial++) {
        snprintf(dir, sizeof dir, "%s/kill%d", test_tmpdir(), trial);
        int64_t last_epoch = 0;
        int finished = 0;
        for (int attempt = 0; attempt < 8 && !finished; attempt++) {
            const char *fresh[] = {NULL, "train", cfg, "--out", dir, "--quiet", NULL};
            const char *resume[] = {NULL, "train", "--resume", dir, "--quiet", NULL};
            pid_t pid = spawn(out, attempt ? resume : fresh);
            CHECK(pid > 0);
            /* the last attempt runs to the end */
            double delay = attempt == 7 ? 600 : (0.05 + 0.6 * (double)(mix(&seed) >> 11) * 0x1.0p-53) * t_ref;
            int st = wait_for(pid, delay);
            if (st == -1) {
                kill(pid, SIGKILL);
                st = wait_for(pid, 60);
                kills++;
            }
            if (WIFEXITED(st)) {
                char *o = test_read_file(out);
                CHECK_MSG(WEXITSTATUS(st) == 0, "trial %d, attempt %d: exit %d:\n%s", trial, attempt, WEXITSTATUS(st), o ? o : "");
                free(o);
                finished = 1;
                break;
            }
            /* killed: the checkpoint is whole, never older than before, and at
             * most the epoch that was being saved is missing from it */
            char ck[700];
            snprintf(ck, sizeof ck, "%s/checkpoint.bin", dir);
            if (access(ck, F_OK) != 0) {
                CHECK_MSG(last_epoch == 0 && log_lines(dir) <= 1, "trial %d: the checkpoint vanished", trial);
                continue;
            }
            AsymCheckpoint *c;
            int64_t epoch, batch;
            CHECK_MSG(asym_checkpoint_open(&c, ck) == 0, "trial %d, after kill %d: %s", trial, kills, asym_last_error());
            CHECK_OK(asym_checkpoint_int(c, "epoch", &epoch));
            CHECK_OK(asym_checkpoint_int(c, "batch", &batch));
            asym_checkpoint_close(c);
            int lines = log_lines(dir);
            CHECK_MSG(epoch >= last_epoch && batch == 0 && lines >= epoch && lines <= epoch + 1, "trial %d: checkpoint at epoch %lld (before: %lld), %d log lines", trial,
                      (long long)epoch, (long long)last_epoch, lines);
            last_epoch = epoch;
            snprintf(seen + strlen(seen), sizeof seen - strlen(seen), " %lld", (long long)epoch);
        }
        CHECK_MSG(finished, "trial %d never finished", trial);
        CHECK_MSG(same_run(ref, dir), "trial %d: the killed and resumed run differs from the uninterrupted one", trial);
    }
    printf("    %d kills over 3 trials of a %.1fs run; checkpoints then after epochs%s\n", kills, t_ref, seen);
    CHECK(kills >= 2);
}

/* Starts a training run, lets it reach its second epoch, sends sig. */
static int interrupt_run(const char *cfg, const char *dir, const char *out, int sig, int *code) {
    const char *args[] = {NULL, "train", cfg, "--out", dir, NULL};
    pid_t pid = spawn(out, args);
    if (pid <= 0) return -1;
    double end = now_s() + 120;
    while (log_lines(dir) < 1 && now_s() < end && wait_for(pid, 0.01) == -1) {}
    kill(pid, sig);
    int st = wait_for(pid, 120);
    *code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return 0;
}

TEST(ckpt_sigint_sigterm_cli) {
    const char *cfg = cfg_file("sig", CFG_KILL);
    char ref[600], dir[600], out[700];
    snprintf(ref, sizeof ref, "%s/sig_ref", test_tmpdir());
    snprintf(out, sizeof out, "%s/sig.out", test_tmpdir());
    CHECK(test_cli("train '%s' --out '%s' --quiet", cfg, ref) == 0);
    int sigs[2] = {SIGINT, SIGTERM};
    for (int i = 0; i < 2; i++) {
        snprintf(dir, sizeof dir, "%s/sig%d", test_tmpdir(), i);
        int code;
        CHECK(interrupt_run(cfg, dir, out, sigs[i], &code) == 0);
        char *o = test_read_file(out);
        CHECK(o);
        char want[700];
        snprintf(want, sizeof want, "continue it with: asymbp train --resume %s", dir);
        int ok = code == 128 + sigs[i] && strstr(o, want) && strstr(o, "interrupted");
        if (!ok) printf("    exit %d:\n%s", code, o);
        free(o);
        CHECK(ok);
        CHECK(test_exists(dir, "checkpoint.bin") && !test_exists(dir, "summary.json"));
        int rc = test_cli("train --resume '%s'", dir);
        CHECK_MSG(rc == 0 && strstr(test_out, "resuming"), "%s", test_out);
        CHECK(same_run(ref, dir));
    }
}

/* ---- hostile checkpoints ---- */

/* A checkpoint of a small network (and its optimizer) at path. */
static int small_checkpoint(const char *path, AsymConfig **cfg, AsymExperiment *ex, AsymNet **net, AsymOptim **opt) {
    AsymRng rng;
    asym_rng_seed(&rng, 4);
    if (load_ex(CFG_ADAM, NULL, NULL, cfg, ex)) return ASYM_ERR;
    if (asym_net_create(net, &ex->net, 8, &rng) || asym_optim_create(opt, *net, &ex->opt)) return ASYM_ERR;
    return asym_checkpoint_save(path, *net, *opt);
}

/* Whether the bytes b (n) are refused with a one-line message naming path:
 * through the file when to_file, else straight to the parser. */
static int clean_refusal(const char *path, const uint8_t *b, size_t n, int to_file, const char *what) {
    AsymCheckpoint *ck = NULL, mem;
    uint8_t *copy = malloc(n ? n : 1);
    if (!copy) return 0;
    memcpy(copy, b, n);
    int accepted;
    if (to_file) {
        free(copy);
        accepted = write_bytes(path, b, n) == 0 && asym_checkpoint_open(&ck, path) == 0;
        asym_checkpoint_close(ck);
    } else {
        accepted = ckpt_parse(&mem, path, copy, n) == 0; /* takes copy over */
        if (accepted) free(mem.buf), free(mem.rec), free(mem.strings);
    }
    if (accepted) {
        printf("    %s: accepted\n", what);
        return 0;
    }
    const char *msg = asym_last_error();
    if (!strstr(msg, path) || strchr(msg, '\n')) {
        printf("    %s: message '%s' does not name the file on one line\n", what, msg);
        return 0;
    }
    return 1;
}

TEST(ckpt_bit_flips_and_truncation_detected) {
    char path[600], bad[600];
    snprintf(path, sizeof path, "%s/small.bin", test_tmpdir());
    snprintf(bad, sizeof bad, "%s/bad.bin", test_tmpdir());
    AsymConfig *cfg;
    AsymExperiment ex;
    AsymNet *net;
    AsymOptim *opt;
    CHECK_OK(small_checkpoint(path, &cfg, &ex, &net, &opt));
    size_t n;
    uint8_t *good = read_bytes(path, &n), *b = malloc(n + 1);
    CHECK(good && b && n > 1000);
    int flips = 0, cuts = 0;
    char what[64];
    /* one bit at every byte offset (each bit position in turn), every
     * 61st through a file, the others straight to the parser */
    for (size_t off = 0; off < n; off++, flips++) {
        memcpy(b, good, n);
        b[off] ^= (uint8_t)(1u << (off % 8));
        snprintf(what, sizeof what, "bit %zu of byte %zu flipped", off % 8, off);
        CHECK(clean_refusal(bad, b, n, off % 61 == 0, what));
    }
    /* truncation at every length, and a byte too many */
    for (size_t len = 0; len < n; len++, cuts++) {
        snprintf(what, sizeof what, "truncated to %zu bytes", len);
        CHECK(clean_refusal(bad, good, len, len % 61 == 0, what));
    }
    memcpy(b, good, n);
    b[n] = 0;
    CHECK(clean_refusal(bad, b, n + 1, 1, "one byte appended"));
    CHECK(strstr(asym_last_error(), "header says"));
    /* a refused load leaves the network as it was */
    b[100] ^= 1;
    CHECK(write_bytes(bad, b, n) == 0);
    AsymParam *w = asym_net_param(net, 0);
    float before = w->w[0];
    w->w[0] = 123.0f;
    CHECK(asym_checkpoint_load(bad, net, opt) != 0 && strstr(asym_last_error(), "checksum mismatch"));
    CHECK(w->w[0] == 123.0f);
    CHECK_OK(asym_checkpoint_load(path, net, opt));
    CHECK(w->w[0] == before);
    printf("    %d bit flips and %d truncations of a %zu-byte checkpoint refused\n", flips, cuts + 1, n);
    free(good);
    free(b);
    asym_optim_free(opt);
    asym_net_free(net);
    asym_experiment_free(&ex);
    asym_config_free(cfg);
}


TEST(ckpt_hostile_records_refused) {
    /* records: u16 name length, name, u8 type, u8 ndim, u64 dims, data */
    static const struct {
        uint32_t count;
        const char *bytes;
        size_t n;
        const char *want;
    } cases[] = {
        {1, "\x05\x00" "epoch\x04\x00\x07\x00\x00", 12, "runs past the end"},         /* a scalar with 3 of its 8 bytes */
        {1, "\x04\x00../x\x06\x01\x01\x00\x00\x00\x00\x00\x00\x00" "A", 17, "record name"},
        {1, "\x00\x00\x06\x01\x01\x00\x00\x00\x00\x00\x00\x00" "A", 13, "record name"},
        {1, "\x01\x00" "a\x09\x00", 5, "unknown record type"},
        {1, "\x01\x00" "a\x01\x05", 5, "bad dimension count"},
        {1, "\x01\x00" "a\x06\x02\x01\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00" "A", 22, "bad dimension count"},
        {1, "\x01\x00" "a\x01\x02\x00\x00\x00\x00\x00\x00\x00\x40\x00\x00\x00\x00\x00\x00\x00\x40", 21, "dimension larger"},
        {1, "\x01\x00" "a\x01\x01\xff\xff\xff\xff\xff\xff\xff\xff", 13, "dimension larger"},
        {2, "\x01\x00" "a\x03\x00\x01\x00\x00\x00\x01\x00" "a\x03\x00\x02\x00\x00\x00", 18, "appears twice"},
        {1000000, "\x01\x00" "a\x03\x00\x01\x00\x00\x00", 9, "record count"},
        {1, "\x01\x00" "a\x03\x00\x01\x00\x00\x00\x00", 10, "bytes after the last record"},
        {2, "\x01\x00" "a\x03\x00\x01\x00\x00\x00\x01\x00", 11, "runs past the end"},
    };
    char path[600];
    snprintf(path, sizeof path, "%s/forged.bin", test_tmpdir());
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t b[256];
        size_t n = test_forge_checkpoint(b, cases[i].count, cases[i].bytes, cases[i].n);
        CHECK(write_bytes(path, b, n) == 0);
        AsymCheckpoint *ck;
        CHECK_MSG(asym_checkpoint_open(&ck, path) != 0, "case %zu accepted", i);
        CHECK_MSG(strstr(asym_last_error(), cases[i].want), "case %zu: '%s', expected '%s'", i, asym_last_error(), cases[i].want);
    }
    /* and a well-formed one is read back */
    uint8_t b[256];
    size_t n = test_forge_checkpoint(b, 2, "\x05\x00" "epoch\x04\x00\x07\x00\x00\x00\x00\x00\x00\x00\x06\x00" "config\x06\x01\x02\x00\x00\x00\x00\x00\x00\x00" "a:", 37);
    CHECK(write_bytes(path, b, n) == 0);
    AsymCheckpoint *ck;
    int64_t epoch;
    CHECK_OK(asym_checkpoint_open(&ck, path));
    CHECK_OK(asym_checkpoint_int(ck, "epoch", &epoch));
    CHECK(epoch == 7 && !strcmp(asym_checkpoint_text(ck, "config"), "a:"));
    asym_checkpoint_close(ck);
}

TEST(ckpt_corrupt_resume_cli) {
    char dir[600], path[700];
    snprintf(dir, sizeof dir, "%s/corrupt", test_tmpdir());
    CHECK(test_cli("train '%s' --set epochs=1 --out '%s' --quiet", cfg_file("corrupt", CFG_ADAM), dir) == 0);
    snprintf(path, sizeof path, "%s/checkpoint.bin", dir);
    FILE *f = fopen(path, "r+b");
    CHECK(f);
    fseek(f, 300, SEEK_SET);
    int c = fgetc(f);
    fseek(f, 300, SEEK_SET);
    fputc(c ^ 0x10, f);
    fclose(f);
    int rc = test_cli("train --resume '%s'", dir);
    CHECK_MSG(rc == 1 && strstr(test_out, "checkpoint.bin: checksum mismatch") && strchr(test_out, '\n') == test_out + strlen(test_out) - 1, "rc %d:\n%s", rc,
              test_out);
    CHECK(test_cli("export '%s' '%s/x'", dir, dir) == 1 && strstr(test_out, "checksum"));
}

/* Sets the version field of a checkpoint and recomputes its checksum. */
static int set_version(const char *path, uint32_t version) {
    size_t n;
    uint8_t *b = read_bytes(path, &n);
    if (!b || n < 28) return -1;
    memcpy(b + 8, &version, 4);
    uint32_t crc = (uint32_t)crc32(crc32(0, NULL, 0), b, (uInt)(n - 4));
    memcpy(b + n - 4, &crc, 4);
    int rc = write_bytes(path, b, n);
    free(b);
    return rc;
}

/* The message of refusing ck for the config changed by set1 and set2. */
static const char *refusal(const char *ck, const char *set1, const char *set2) {
    static char msg[1024];
    AsymConfig *cfg;
    AsymExperiment ex;
    if (load_ex(CFG_ADAM, set1, set2, &cfg, &ex)) return asym_last_error();
    int rc = asym_checkpoint_check(ck, &ex);
    snprintf(msg, sizeof msg, "%s", rc ? asym_last_error() : "accepted");
    asym_experiment_free(&ex);
    asym_config_free(cfg);
    return msg;
}

TEST(ckpt_architecture_mismatch_named) {
    char dir[600], ck[700];
    snprintf(dir, sizeof dir, "%s/arch", test_tmpdir());
    const char *cfg = cfg_file("arch", CFG_ADAM);
    CHECK(test_cli("train '%s' --set epochs=1 --out '%s' --quiet", cfg, dir) == 0);
    snprintf(ck, sizeof ck, "%s/checkpoint.bin", dir);
    CHECK(!strcmp(refusal(ck, NULL, NULL), "accepted"));
    const char *cases[][3] = {
        {"model.layers.0.out=8", NULL, "layer 0 conv weight has shape 4x1x3x3 in the checkpoint, 8x1x3x3 in the config"},
        {"model.layers.6.out=16", NULL, "layer 6 fc weight has shape 12x64 in the checkpoint, 16x64 in the config"},
        {"model.layers.0.rule=fa", NULL, "layer 0: rule brsf in the checkpoint, fa in the config"},
        {"model.layers.6.rule=bp", NULL, "layer 6: rule kp in the checkpoint, bp in the config"},
        {"optimizer.name=sgd", NULL, "optimizer adam in the checkpoint, sgd in the config"},
        {"model.layers.1=relu", NULL, "layer 1 batch-norm scale (1.gamma, shape 4) is in the checkpoint but not in the config's network"},
        {"model.layers.0.bias=false", NULL, "layer 0 bias (0.b, shape 4) is in the checkpoint but not in the config's network"},
        {"feedback.concordance=0.5", NULL, "layer 0: the config asks for partial sign concordance, the checkpoint has none"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *msg = refusal(ck, cases[i][0], cases[i][1]);
        CHECK_MSG(strstr(msg, cases[i][2]) && strstr(msg, ck), "--set %s: '%s', expected '%s'", cases[i][0], msg, cases[i][2]);
    }
    /* the CLI refuses before touching the run's config.yaml */
    char path[700];
    snprintf(path, sizeof path, "%s/config.yaml", dir);
    char *before = test_read_file(path);
    int rc = test_cli("train '%s' --resume '%s' --set model.layers.0.out=8", cfg, dir);
    CHECK_MSG(rc == 2 && strstr(test_out, cases[0][2]), "rc %d: %s", rc, test_out);
    char *after = test_read_file(path);
    CHECK(before && after && !strcmp(before, after));
    free(before);
    free(after);
    /* other data: sizes, then contents */
    AsymConfig *c;
    AsymExperiment ex;
    AsymSummary sum;
    CHECK_OK(load_ex(CFG_ADAM, "data.random.n=140", NULL, &c, &ex));
    CHECK(asym_train_resume(&ex, dir, NULL, &sum) != 0 && strstr(asym_last_error(), "written for 100 training, 20 validation and 24 test images"));
    asym_experiment_free(&ex);
    asym_config_free(c);
    CHECK_OK(load_ex(CFG_ADAM, "data.val_size=30", NULL, &c, &ex));
    CHECK(asym_train_resume(&ex, dir, NULL, &sum) != 0 && strstr(asym_last_error(), "training"));
    asym_experiment_free(&ex);
    asym_config_free(c);
    CHECK_OK(load_ex(CFG_ADAM, "seed=8", NULL, &c, &ex));
    CHECK(asym_train_resume(&ex, dir, NULL, &sum) != 0 && strstr(asym_last_error(), "the prepared data differ"));
    asym_experiment_free(&ex);
    asym_config_free(c);
    /* a later format version */
    CHECK(set_version(ck, 2) == 0);
    const char *msg = refusal(ck, NULL, NULL);
    CHECK_MSG(strstr(msg, "checkpoint format version 2; this asymbp (" ASYM_VERSION ") reads version 1"), "%s", msg);
}

TEST(ckpt_resume_cli_paths) {
    char dir[600], path[700];
    const char *cfg = cfg_file("paths", CFG_ADAM);
    snprintf(dir, sizeof dir, "%s/paths", test_tmpdir());
    CHECK(test_cli("train '%s' --set epochs=2 --out '%s' --quiet", cfg, dir) == 0);
    /* more epochs for a finished run, from its own config.yaml */
    int rc = test_cli("train --resume '%s' --set epochs=4", dir);
    CHECK_MSG(rc == 0 && strstr(test_out, "resuming") && strstr(test_out, "after epoch 2") && strstr(test_out, "epoch   4"), "%s", test_out);
    char ref[600];
    snprintf(ref, sizeof ref, "%s/paths_ref", test_tmpdir());
    CHECK(test_cli("train '%s' --out '%s' --quiet", cfg, ref) == 0);
    CHECK(same_run(ref, dir));
    /* config.yaml lost: the checkpoint's copy is written back */
    snprintf(path, sizeof path, "%s/config.yaml", dir);
    CHECK(remove(path) == 0);
    rc = test_cli("train --resume '%s' --quiet", dir);
    CHECK_MSG(rc == 0 && test_exists(dir, "config.yaml"), "%s", test_out);
    /* a folder with nothing to resume, and bad combinations */
    rc = test_cli("train --resume '%s/none'", test_tmpdir());
    CHECK_MSG(rc == 2 && strstr(test_out, "nothing to resume"), "%s", test_out);
    CHECK(test_cli("train --resume '%s' --out '%s'", dir, dir) == 2);
    CHECK(test_cli("eval '%s' --resume '%s'", dir, dir) == 2);
    /* no checkpoint yet (killed in its first epoch): starts over */
    char fresh[600];
    snprintf(fresh, sizeof fresh, "%s/fresh", test_tmpdir());
    CHECK(mkdir(fresh, 0755) == 0);
    rc = test_cli("train '%s' --resume '%s' --quiet", cfg, fresh);
    CHECK_MSG(rc == 0 && same_run(ref, fresh), "%s", test_out);
    /* a new run in a folder removes the old run's checkpoint first (this
     * one diverges before writing its own) */
    CHECK(test_exists(fresh, "checkpoint.bin"));
    rc = test_cli("train '%s' --set optimizer.name=sgd --set optimizer.lr=1.0e+6 --out '%s' --quiet", cfg, fresh);
    CHECK_MSG(rc == 1 && strstr(test_out, "diverged") && !test_exists(fresh, "checkpoint.bin"), "%s", test_out);
}

/* ---- export ---- */

TEST(ckpt_export_read_by_numpy) {
    const char *py = test_python();
    char cmd[2400], dir[600], exp[700], script[700];
    snprintf(cmd, sizeof cmd, "'%s' -c 'import numpy' 2>/dev/null", py);
    if (system(cmd) != 0) {
        TEST_NO_ORACLE("'%s' cannot import numpy (set ASYMBP_PYTHON to an interpreter that can)", py);
        return;
    }
    snprintf(dir, sizeof dir, "%s/export", test_tmpdir());
    snprintf(exp, sizeof exp, "%s/npy", dir);
    const char *cfg = cfg_file("export", CFG_ADAM);
    CHECK(test_cli("train '%s' --set epochs=2 --out '%s' --quiet", cfg, dir) == 0);
    int rc = test_cli("export '%s' '%s'", dir, exp);
    CHECK_MSG(rc == 0 && strstr(test_out, "after epoch 2"), "%s", test_out);
    CHECK(test_exists(exp, "manifest.json") && test_exists(exp, "param-0.W.npy") && test_exists(exp, "feedback-6.B.npy") &&
          test_exists(exp, "buffer-1.running_var.npy") && test_exists(exp, "optim-v-6.B.npy") && test_exists(exp, "config.yaml"));
    /* NumPy reads every array with the manifest's dtype and shape, and sums the tensors */
    snprintf(script, sizeof script, "%s/check.py", dir);
    test_write_file(script,
                    "import json, os, sys\nimport numpy as np\n"
                    "d = sys.argv[1]\nm = json.load(open(os.path.join(d, 'manifest.json')))\n"
                    "kinds = set()\n"
                    "for r in m['records']:\n"
                    "    p = os.path.join(d, r['file'])\n"
                    "    if r['dtype'] == 'text':\n"
                    "        assert os.path.getsize(p) == r['shape'][0], r\n"
                    "        continue\n"
                    "    a = np.load(p)\n"
                    "    assert a.dtype == np.dtype(r['dtype']) and list(a.shape) == r['shape'], r\n"
                    "    if a.ndim == 0 and r['value'] is not None:\n"
                    "        assert a.item() == r['value'], r\n"
                    "    kinds.add(r['name'].split('/')[0])\n"
                    "    if r['name'].startswith(('param/', 'buffer/', 'feedback/')):\n"
                    "        print(r['name'].split('/', 1)[1], repr(float(a.astype(np.float64).sum())))\n"
                    "assert {'param', 'buffer', 'feedback', 'optim', 'rng', 'perm', 'epoch'} <= kinds, kinds\n"
                    "print('records', len(m['records']))\n");
    char buf[16384], *out = buf + 1; /* buf[0] = '\n': every line starts after one */
    buf[0] = '\n';
    rc = test_sh(out, sizeof buf - 1, "'%s' '%s' '%s' 2>&1", py, script, exp);
    CHECK_MSG(rc == 0 && strstr(out, "records "), "%s", out);
    /* the sums agree with the checkpoint loaded into the network */
    AsymConfig *c;
    AsymExperiment ex;
    AsymNet *net;
    AsymRng rng;
    asym_rng_seed(&rng, 1);
    CHECK_OK(load_ex(CFG_ADAM, NULL, NULL, &c, &ex));
    CHECK_OK(asym_net_create(&net, &ex.net, 4, &rng));
    char ck[700];
    snprintf(ck, sizeof ck, "%s/checkpoint.bin", dir);
    CHECK_OK(asym_checkpoint_load(ck, net, NULL));
    int checked = 0;
    for (int k = 0; k < 3; k++) {
        int cnt = k == 0 ? asym_net_n_params(net) : k == 1 ? asym_net_n_buffers(net) : asym_net_n_feedback(net);
        for (int i = 0; i < cnt; i++) {
            AsymParam *t = k == 0 ? asym_net_param(net, i) : k == 1 ? asym_net_buffer(net, i) : asym_net_feedback(net, i);
            char key[80];
            snprintf(key, sizeof key, "\n%s ", t->name);
            const char *at = strstr(buf, key);
            CHECK_MSG(at, "NumPy did not sum %s:\n%s", t->name, out);
            double s = 0, want = atof(at + strlen(key));
            for (size_t j = 0; j < t->n; j++) s += t->w[j];
            CHECK_NEAR(s, want, 1e-9);
            checked++;
        }
    }
    printf("    %d tensors agree with NumPy\n", checked);
    asym_net_free(net);
    asym_experiment_free(&ex);
    asym_config_free(c);
}

/* ---- divergence and floating-point traps ---- */

TEST(ckpt_divergence_in_parameter) {
    /* inputs scaled by 1e21: batch norm keeps the loss finite while its
     * running variance overflows */
    static const char *const text =
        "name: nan\nseed: 3\nepochs: 2\nbatch_size: 16\nthreads: 1\n"
        "data:\n  format: random\n  random: {n: 64, c: 1, h: 8, w: 8, classes: 4}\n  mean: [0]\n  std: [1.0e-21]\n"
        "model:\n  layers:\n    - {type: conv, out: 4, k: 3, pad: 1}\n    - batchnorm\n    - relu\n    - flatten\n    - {type: fc, out: 4}\n"
        "optimizer: {name: sgd, lr: 0.05}\n";
    AsymConfig *cfg;
    AsymExperiment ex;
    AsymSummary sum;
    char dir[600], path[700];
    snprintf(dir, sizeof dir, "%s/nan", test_tmpdir());
    CHECK_OK(load_ex(text, NULL, NULL, &cfg, &ex));
    CHECK(asym_train(&ex, dir, NULL, &sum) != 0);
    CHECK_MSG(sum.diverged && !strcmp(sum.diverged_in, "1.running_var") && sum.stop_epoch == 1 && sum.stop_step == 1, "%s in '%s' at %d, %d", asym_last_error(),
              sum.diverged_in, sum.stop_epoch, sum.stop_step);
    CHECK(strstr(asym_last_error(), "in 1.running_var[0] after epoch 1, step 1"));
    snprintf(path, sizeof path, "%s/summary.json", dir);
    char *s = test_read_file(path);
    CHECK(s && strstr(s, "\"diverged\": true, \"diverged_in\": \"1.running_var\", \"diverged_epoch\": 1, \"diverged_step\": 1"));
    free(s);
    CHECK(!test_exists(dir, "model.bin") && !test_exists(dir, "checkpoint.bin"));
    asym_experiment_free(&ex);
    asym_config_free(cfg);

    /* a run that diverges after its first epoch keeps that epoch's checkpoint */
    snprintf(dir, sizeof dir, "%s/nan2", test_tmpdir());
    CHECK_OK(load_ex(CFG_SGD, NULL, NULL, &cfg, &ex));
    Stopper st = {.after_epoch = 1};
    CHECK(run_lib(&ex, dir, 0, &st, &sum) != 0 && sum.interrupted);
    asym_experiment_free(&ex);
    asym_config_free(cfg);
    snprintf(path, sizeof path, "%s/checkpoint.bin", dir);
    size_t n;
    uint8_t *good = read_bytes(path, &n);
    CHECK(good);
    CHECK_OK(load_ex(CFG_SGD, "optimizer.lr=1.0e+6", NULL, &cfg, &ex));
    CHECK(run_lib(&ex, dir, 1, NULL, &sum) != 0 && sum.diverged && sum.stop_epoch == 2);
    size_t n2;
    uint8_t *after = read_bytes(path, &n2);
    CHECK_MSG(after && n2 == n && !memcmp(good, after, n), "the last good checkpoint was overwritten");
    free(good);
    free(after);
    snprintf(path, sizeof path, "%s/summary.json", dir);
    s = test_read_file(path);
    CHECK(s && strstr(s, "\"diverged\": true"));
    free(s);
    asym_experiment_free(&ex);
    asym_config_free(cfg);
}

/* The optimizer checks the values it writes, and the guard reads again
 * only what it did not write: a NaN stepped into a parameter is found and
 * named, on each update path (plain momentum's vectorized steps after its
 * first, Nesterov's, Adam's); clean steps find nothing. */
TEST(ckpt_divergence_written_by_the_optimizer) {
    const char *texts[3] = {CFG_SGD, CFG_SGD, CFG_ADAM}, *sets[3] = {"optimizer.nesterov=false", NULL, NULL};
    for (int k = 0; k < 3; k++) {
        AsymConfig *cfg;
        AsymExperiment ex;
        AsymNet *net;
        AsymOptim *opt;
        CHECK_OK(load_ex(texts[k], sets[k], NULL, &cfg, &ex));
        CHECK_OK(asym_experiment_net(&ex, &net));
        CHECK_OK(asym_experiment_optim(&ex, net, &opt));
        char what[128] = "", name[64] = "";
        for (int t = 0; t < 3; t++) {
            asym_net_zero_grad(net);
            if (t == 2) asym_net_param(net, 0)->g[5] = NAN;
            asym_optim_step(opt, 0.05f);
            asym_net_feedback_update(net);
            int found = guard_tensors(net, opt, what, sizeof what, name, sizeof name);
            CHECK_MSG(optim_wrote_nonfinite(opt) == (t == 2) && found == (t == 2), "case %d, step %d: optimizer %d, guard %d", k, t, optim_wrote_nonfinite(opt), found);
        }
        CHECK_MSG(!strcmp(name, asym_net_param(net, 0)->name) && strstr(what, "NaN in ") && strstr(what, "[5]"), "case %d: %s", k, what);
        asym_optim_free(opt);
        asym_net_free(net);
        asym_experiment_free(&ex);
        asym_config_free(cfg);
    }
}

/* Which feedback tensors the per-step guard leaves unread because training
 * never changes them (read once, at a run's first step): fa's B, dfa's D,
 * pfa's F; not a B its rule remakes (usf, wm, pfa under norm_feedback),
 * one with a gradient (kp's B, dkp's D, pfa's R, or under SGD pfa's B
 * itself, with no R), nor any B under norm_feedback. After the
 * first check a NaN in a fixed B is not looked for; the first check finds
 * and names it. */
TEST(ckpt_guard_fixed_feedback) {
    static const char *const text =
        "name: fixed\nseed: 2\nepochs: 1\nbatch_size: 4\n"
        "data:\n  format: random\n  random: {n: 8, c: 1, h: 4, w: 4, classes: 3}\n"
        "model:\n  layers:\n    - flatten\n    - {type: fc, out: 6, rule: fa}\n    - relu\n    - {type: fc, out: 6, rule: dfa}\n    - relu\n"
        "    - {type: fc, out: 6, rule: usf}\n    - relu\n    - {type: fc, out: 6, rule: kp}\n    - relu\n    - {type: fc, out: 6, rule: wm}\n    - relu\n"
        "    - {type: fc, out: 6, rule: pfa}\n    - relu\n    - {type: fc, out: 6, rule: dkp}\n    - relu\n    - {type: fc, out: 3}\n"
        "optimizer: {name: sgd, lr: 0.01, momentum: 0.9}\n";
    static const char *const fixed[] = {"1.B", "3.D", "11.F"}, *moving[] = {"5.B", "7.B", "9.B", "11.B", "11.R", "13.D"};
    for (int norm = 0; norm < 2; norm++) {
        AsymConfig *cfg;
        AsymExperiment ex;
        AsymNet *net;
        AsymOptim *opt;
        CHECK_OK(load_ex(text, norm ? "feedback.norm_feedback=true" : NULL, NULL, &cfg, &ex));
        CHECK_OK(asym_experiment_net(&ex, &net));
        CHECK_OK(asym_experiment_optim(&ex, net, &opt));
        int seen = 0, fa_b = -1;
        for (int i = 0; i < net_n_tensors(net); i++) {
            const AsymParam *p = net_tensor_as_is(net, i);
            for (int k = 0; k < 3; k++)
                if (!strcmp(p->name, fixed[k])) {
                    int want = !norm || p->name[strlen(p->name) - 1] != 'B';
                    CHECK_MSG(net_tensor_fixed(net, i) == want, "%s: fixed %d (norm_feedback %d)", p->name, net_tensor_fixed(net, i), norm);
                    seen++;
                }
            for (int k = 0; k < 6; k++)
                if (!strcmp(p->name, moving[k])) {
                    CHECK_MSG(!net_tensor_fixed(net, i), "%s counted as fixed", p->name);
                    seen++;
                }
            if (!strcmp(p->name, "1.B")) fa_b = i;
        }
        /* pfa steps B itself (no R) unless norm_feedback */
        CHECK_MSG(seen == 8 + norm && fa_b >= 0, "found %d of the %d feedback tensors", seen, 8 + norm);
        if (!norm) {
            char what[128] = "", name[64] = "";
            asym_net_zero_grad(net);
            asym_optim_step(opt, 0.01f);
            asym_net_feedback_update(net);
            net_tensor_as_is(net, fa_b)->w[3] = NAN;
            CHECK(guard_tensors(net, opt, what, sizeof what, name, sizeof name) == 0);
            CHECK_MSG(guard_tensors(net, NULL, what, sizeof what, name, sizeof name) == 1 && !strcmp(name, "1.B") && strstr(what, "NaN in 1.B[3]"), "%s", what);
        }
        asym_optim_free(opt);
        asym_net_free(net);
        asym_experiment_free(&ex);
        asym_config_free(cfg);
    }
}

TEST(ckpt_trap_fp_cli) {
    const char *cfg = cfg_file("trap", CFG_ADAM);
    char a[600], b[600], out[700];
    snprintf(a, sizeof a, "%s/trap_off", test_tmpdir());
    snprintf(b, sizeof b, "%s/trap_on", test_tmpdir());
    snprintf(out, sizeof out, "%s/trap.out", test_tmpdir());
    /* a healthy run raises no trapped exception and gives the same bits */
    CHECK(test_cli("train '%s' --out '%s' --quiet", cfg, a) == 0);
    int rc = test_cli("train '%s' --set debug.trap_fp=true --out '%s' --quiet", cfg, b);
    CHECK_MSG(rc == 0, "%s", test_out);
    CHECK(same_run(a, b));
    /* a diverging one stops at the first overflow with SIGFPE */
    snprintf(b, sizeof b, "%s/trap_div", test_tmpdir());
    const char *args[] = {NULL, "train", cfg, "--set", "debug.trap_fp=true", "--set", "optimizer.lr=1.0e+6", "--set", "optimizer.name=sgd", "--out", b, NULL};
    pid_t pid = spawn(out, args);
    int st = wait_for(pid, 300);
    char *o = test_read_file(out);
    int ok = st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGFPE && o && strstr(o, "floating-point exception (debug.trap_fp): ");
    if (!ok) printf("    status %d:\n%s", st, o ? o : "");
    free(o);
    CHECK(ok);
}
