/* cli.h: shared pieces of the asymbp command's subcommands. */
#ifndef ASYM_CLI_H
#define ASYM_CLI_H

#include "asymbp.h"

#define CLI_MAX_SETS 64

typedef struct CliArgs {
    const char *positional;   /* CONFIG or RUN_DIR */
    const char *sets[CLI_MAX_SETS];
    int n_sets;
    const char *out, *weights;
    const char *rules;        /* compare: comma-separated rule names */
    int batch, steps, quiet;
} CliArgs;

int cli_parse(int argc, char **argv, CliArgs *a);
/* Prints "asymbp: what" to stderr and returns code. */
int cli_fail(int code, const char *what);
/* mkdir -p; prints the error and returns 1 on failure. */
int cli_mkdir_p(const char *dir);
/* Loads CONFIG, applies --set overrides, resolves the experiment; prints
 * the error and returns 2 on failure (nothing to free then). */
int cli_load_experiment(const char *path, const CliArgs *a, AsymConfig **cfg, AsymExperiment *ex);

int cmd_train(const CliArgs *a);
int cmd_eval(const CliArgs *a);
int cmd_probe(const CliArgs *a);
int cmd_data(int argc, char **argv);
int cmd_compare(const CliArgs *a);
/* The training progress display shared by train and compare. */
int cli_train_run(const AsymExperiment *ex, const char *out, int quiet, AsymSummary *sum);

#endif
