/* main.c: the asymbp command. Subcommands:
 *   train CONFIG [--set KEY=VALUE]... [--out DIR]
 *   train [CONFIG] --resume DIR [--set KEY=VALUE]...
 *   eval RUN_DIR [--set KEY=VALUE]... [--weights FILE]
 *   probe CONFIG [--set KEY=VALUE]... [--weights FILE] [--batch N] [--steps K] --out DIR
 *   export CHECKPOINT|RUN_DIR OUT_DIR
 *   report DIR... --out FILE.html
 * Only this layer prints and chooses exit codes: 0 success, 1 failure of the
 * run (bad data, divergence), 2 bad usage or configuration, 128 + the signal
 * for a run stopped by SIGINT or SIGTERM (its checkpoint continues it).
 * Output that could not be written (standard output on a full disk) is a
 * failure too. */
#include <errno.h>
#include <jansson.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "asymbp.h"
#include "cli.h"

static void usage(FILE *f) {
    fprintf(f,
            "asymbp %s: deep networks trained without weight transport\n"
            "usage:\n"
            "  asymbp train CONFIG [--set KEY=VALUE]... [--out DIR]   train; writes DIR/log.jsonl, summary.json, model.bin, checkpoint.bin, version.json\n"
            "  asymbp train [CONFIG] --resume DIR [--set KEY=VALUE]... continue the run in DIR from its checkpoint (DIR/config.yaml by default)\n"
            "  asymbp export CHECKPOINT|DIR OUT_DIR                every tensor of a checkpoint as .npy, with OUT_DIR/manifest.json\n"
            "  asymbp eval RUN_DIR [--set KEY=VALUE]... [--weights FILE]   score a trained model on its test set\n"
            "  asymbp probe CONFIG [--set KEY=VALUE]... [--weights FILE] [--batch N] [--steps K] --out DIR\n"
            "                                                       one fixed batch: inputs, gradients, weights as .npy\n"
            "  asymbp compare CONFIG --rules bp,fa,usf,... [--set KEY=VALUE]... [--out DIR]\n"
            "                                                       the same network, seed and data order with each rule; a table\n"
            "  asymbp sweep CONFIG --rules LIST [--lr-mult 100,10,1,0.1,0.01] [--vary KEY=V1,V2,...] [--set KEY=VALUE]... [--out DIR]\n"
            "                                                       every rule at every learning-rate multiplier; resumes; a table\n"
            "  asymbp table DIR... [--columns data|dir] [--out DIR] results table of sweeps and runs (terminal, table.md, table.csv)\n"
            "  asymbp angles RUN_DIR [--every N]                   the B-W angle of every layer over training, from the log\n"
            "  asymbp report DIR... --out FILE.html                one page (opens offline) plotting runs, sweeps, compares: errors, losses,\n"
            "                                                       every layer's alignment against epoch, error against learning rate\n"
            "  asymbp data info PATH                               a data set on disk: format, images, classes, size, mean/std\n"
            "  asymbp version                                      this build: commit, flags, compiler, BLAS, convolutions, threads (a run's version.json)\n"
            "  mpirun -np N asymbp train|sweep ...                 data-parallel training, or a sweep's runs spread over ranks\n"
            "                                                       (the MPI build, make MPI=1; docs/MPI.md)\n",
            ASYM_VERSION);
}

int cli_parse(int argc, char **argv, CliArgs *a) {
    memset(a, 0, sizeof *a);
    a->batch = 8;
    a->steps = 2;
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i];
        int has_value = i + 1 < argc;
        /* the options that take a word */
        const char **word = !strcmp(s, "--out") ? &a->out : !strcmp(s, "--rules") ? &a->rules : !strcmp(s, "--lr-mult") ? &a->lr_mult
                          : !strcmp(s, "--vary") ? &a->vary : !strcmp(s, "--resume") ? &a->resume : !strcmp(s, "--weights") ? &a->weights : NULL;
        if (!strcmp(s, "--set") && has_value) {
            if (a->n_sets >= CLI_MAX_SETS) return cli_fail(2, "too many --set options");
            a->sets[a->n_sets++] = argv[++i];
        } else if (word && has_value) {
            *word = argv[++i];
        } else if ((!strcmp(s, "--batch") || !strcmp(s, "--steps")) && has_value) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < (s[2] == 's' ? 0 : 1) || v > 4096) return cli_failf(2, "%s: expected a count, got '%s'", s, argv[i]);
            if (s[2] == 'b') a->batch = (int)v;
            else a->steps = (int)v;
        } else if (!strcmp(s, "--quiet")) {
            a->quiet = 1;
        } else if (s[0] == '-' && s[1]) {
            return cli_failf(2, "unknown or incomplete option '%s'", s);
        } else if (!a->positional) {
            a->positional = s;
        } else {
            return cli_failf(2, "unexpected argument '%s'", s);
        }
    }
    if (!a->positional && !a->resume) {
        usage(stderr);
        return 2;
    }
    return 0;
}

/* What a run folder's version.json would record of this build (with the
 * environment's threads), a line per key, then that object itself. */
static int cmd_version(void) {
    char text[2048];
    const char *key;
    json_t *v, *value;
    json_error_t jerr;
    asym_version_json(text, sizeof text, omp_get_max_threads());
    printf("asymbp %s\n", ASYM_VERSION);
    if ((v = json_loads(text, 0, &jerr)))
        json_object_foreach(v, key, value) {
            if (json_is_string(value) && strcmp(key, "asymbp")) printf("%s: %s\n", key, json_string_value(value));
            else if (json_is_integer(value)) printf("%s: %lld\n", key, (long long)json_integer_value(value));
        }
    json_decref(v);
    const char *policy = getenv("OMP_WAIT_POLICY"), *spin = getenv("GOMP_SPINCOUNT");
    printf("openmp wait policy: %s%s%s\n", policy ? policy : "the runtime's default", spin ? ", GOMP_SPINCOUNT=" : "", spin ? spin : "");
    printf("version.json: %s\n", text);
    return 0;
}

static int run(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) return cmd_version();
    if (!strcmp(argv[1], "data")) return cmd_data(argc - 2, argv + 2);
    if (!strcmp(argv[1], "table")) return cmd_table(argc - 2, argv + 2);
    if (!strcmp(argv[1], "angles")) return cmd_angles(argc - 2, argv + 2);
    if (!strcmp(argv[1], "report")) return cmd_report(argc - 2, argv + 2);
    if (!strcmp(argv[1], "export")) return cmd_export(argc - 2, argv + 2);
    CliArgs a;
    int rc = cli_parse(argc - 2, argv + 2, &a);
    if (rc) return rc;
    if (a.resume && strcmp(argv[1], "train")) return cli_fail(2, "--resume DIR is an option of train");
    if (!strcmp(argv[1], "train")) return cmd_train(&a);
    if (!strcmp(argv[1], "eval")) return cmd_eval(&a);
    if (!strcmp(argv[1], "probe")) return cmd_probe(&a);
    if (!strcmp(argv[1], "compare")) return cmd_compare(&a);
    if (!strcmp(argv[1], "sweep")) return cmd_sweep(&a);
    fprintf(stderr, "asymbp: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}

/* Under mpirun (the MPI build, docs/MPI.md) every rank runs the command:
 * train and compare train each model on all ranks, sweep spreads its runs
 * over them. Rank 0 alone prints, except in a sweep, where each rank
 * reports its own runs; errors are agreed between ranks, so rank 0's
 * message names the rank that failed. */
/* OpenMP threads that wait by spinning (libgomp's default) collapse a run
 * when other processes share the cores: a thread spins at a barrier while
 * the partner it waits for is descheduled (LeNet-5 with two threads beside
 * two busy processes: about 600 images/s spinning, 9,500 sleeping;
 * docs/PERFORMANCE.md). The runtime reads its wait policy once, when it is
 * loaded, so the command starts itself again with OMP_WAIT_POLICY=passive
 * unless the environment chose a policy (OMP_WAIT_POLICY or
 * GOMP_SPINCOUNT). */
static void passive_threads(char **argv) {
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) return;
    if (setenv("OMP_WAIT_POLICY", "passive", 1)) return;
    execv("/proc/self/exe", argv);
    unsetenv("OMP_WAIT_POLICY"); /* not started again: the policy stays the runtime's */
}

int main(int argc, char **argv) {
    passive_threads(argv);
    if (asym_dist_init(&argc, &argv)) return cli_fail(1, asym_last_error());
    if (asym_dist_rank() > 0 && !(argc > 1 && !strcmp(argv[1], "sweep"))) {
        FILE *out = freopen("/dev/null", "w", stdout), *err = freopen("/dev/null", "w", stderr);
        (void)out, (void)err;
    }
    int rc = run(argc, argv);
    /* what was printed reached its destination (not a full disk) */
    errno = 0;
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "asymbp: standard output: write failed: %s\n", errno ? strerror(errno) : "an earlier write did not reach it");
        if (!rc) rc = 1;
    }
    asym_dist_finalize();
    return rc;
}
