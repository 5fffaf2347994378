/* cli.h: shared pieces of the asymbp command's subcommands. */
#ifndef ASYM_CLI_H
#define ASYM_CLI_H

#include <stdio.h>

#include "asymbp.h"

#define CLI_MAX_SETS 64

typedef struct CliArgs {
    const char *positional;   /* CONFIG or RUN_DIR */
    const char *sets[CLI_MAX_SETS];
    int n_sets;
    const char *out, *weights;
    const char *resume;       /* train: the run folder to continue */
    const char *rules;        /* compare, sweep: comma-separated rule names */
    const char *lr_mult;      /* sweep: comma-separated learning-rate multipliers */
    const char *vary;         /* sweep: KEY=V1,V2,... crossed with the rules */
    int batch, steps, quiet;
} CliArgs;

int cli_parse(int argc, char **argv, CliArgs *a);
int cmd_train(const CliArgs *a);
int cmd_eval(const CliArgs *a);
int cmd_probe(const CliArgs *a);
int cmd_data(int argc, char **argv);
int cmd_compare(const CliArgs *a);
int cmd_export(int argc, char **argv);
int cmd_sweep(const CliArgs *a);
int cmd_table(int argc, char **argv);
int cmd_angles(int argc, char **argv);
int cmd_report(int argc, char **argv);

/* common.c: what the subcommands share. */
/* Prints "asymbp: what" to stderr and returns code. */
int cli_fail(int code, const char *what);
/* The same with what formatted as by printf. */
int cli_failf(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* mkdir -p; prints the error and returns 1 on failure. */
int cli_mkdir_p(const char *dir);
/* The whole of a file, NUL-terminated and malloc'ed; NULL (errno set) when
 * it cannot be read. */
char *cli_read_text(const char *path);
/* Closes f, which was written: nonzero (errno set) when a write to it
 * failed, at the close or before (a full disk). */
int cli_close_written(FILE *f);
/* Loads CONFIG, applies the --set overrides sets, resolves the experiment;
 * prints the error and returns 2 on failure (nothing to free then). */
int cli_load_experiment(const char *path, const char *const *sets, int n_sets, AsymConfig **cfg, AsymExperiment **ex);
/* The same for a's CONFIG and --set, then n more settings (a NULL one is
 * left out, but the room for all n is needed: "too many --set options"). */
int cli_load_args(const CliArgs *a, const char *const *more, int n, AsymConfig **cfg, AsymExperiment **ex);
/* Frees what cli_load_experiment loaded. */
void cli_free_experiment(AsymConfig *cfg, AsymExperiment *ex);
/* What the commands print and act on: asym_experiment_info by value. */
AsymExperimentInfo cli_info(const AsymExperiment *ex);
/* Parses a comma-separated rule list; prints the error and returns -1. */
int cli_rule_list(const char *list, const char *cmd, char (*rules)[16], int max);
/* What a finished run folder holds: rule, data set, and the best error over
 * its logged epochs (validation error if logged, else test error). */
typedef struct CliRunResult {
    char rule[16], data[64];
    char label[64];               /* the table's row: the rule, or a sweep's RULE@KEY=V folder */
    double best_err, seconds;     /* best_err NaN when no epoch finished */
    int epoch, epochs, diverged, validation;
} CliRunResult;
/* 0 when the run has no summary.json (not finished); -1, with the message
 * printed, when its log.jsonl cannot be read or holds a line that is not a
 * JSON object. */
int cli_run_result(const char *run, CliRunResult *r);
/* Calls fn on each line of run/log.jsonl (an epoch's JSON object) in order,
 * stopping at a nonzero result, which it returns; -1, with the message
 * printed (file and line), when the file cannot be read or a line is not a
 * JSON object. */
struct json_t;
typedef int (*CliLogFn)(void *ctx, const struct json_t *epoch);
int cli_read_log(const char *run, CliLogFn fn, void *ctx);

/* table.c: prints the results table of sweeps, runs or folders of runs, a
 * column per data set (by_dir: per DIR); with out non-NULL also writes
 * out/table.md and out/table.csv. */
int cli_table(const char *const *dirs, int n, const char *out, int by_dir);
/* The same table as cells, the header row first. */
typedef struct CliGrid {
    char cell[64][12][48];
    int rows, cols;
} CliGrid;
int cli_table_grid(const char *const *dirs, int n, int by_dir, CliGrid *g);
/* Calls fn on every finished run (summary.json) under dir, itself a run, a
 * folder of runs or a sweep, in name order, with what cli_run_result read
 * (its label: the rule, a folder of runs' folder name, a sweep's
 * RULE[@KEY=V]; column, when not NULL, for the data set) and its
 * learning-rate multiplier (a sweep's lr_xMULT, NaN elsewhere); stops at
 * fn's nonzero result and returns it, or 1 with the message printed. */
typedef int (*CliRunFn)(void *ctx, const char *run, const CliRunResult *r, double mult);
int cli_walk_runs(const char *dir, const char *column, CliRunFn fn, void *ctx);
/* train.c: the training progress display shared by train, compare and
 * sweep, continuing the run in out from its checkpoint when resume is set.
 * SIGINT and SIGTERM stop the run after the step under way with a
 * checkpoint; the result is then 128 + the signal (sum->interrupted), 1 for
 * a failed run. */
int cli_train_go(const AsymExperiment *ex, const char *out, int quiet, int resume, AsymSummary *sum);

/* vega.c: Vega 5, which draws the plots of `asymbp report`, and their
 * specifications. */
#define VEGA_MAX_FILES 32
typedef struct VegaLib {
    char *text[VEGA_MAX_FILES]; /* Vega's files, in the order they load */
    int single;                 /* one file, vega.min.js, not Debian's modules */
} VegaLib;
/* Reads Vega's files ($ASYMBP_VEGA, or Debian's libjs-vega); 1, with a
 * line naming the missing file and the package, when it cannot. */
int vega_open(VegaLib *lib);
void vega_close(VegaLib *lib);
/* The <script> elements that define the global `vega` (parse, View). */
void vega_write_library(FILE *f, const VegaLib *lib);
/* v as a JavaScript expression that is safe inside <script>. */
int vega_write_json(FILE *f, const struct json_t *v);
/* A plot of values (taken): objects {s: series, k: kind, x, y} drawn as a
 * line per series and kind, with a colour legend of the series and, with
 * dash, a line-style legend of the kinds. */
typedef struct VegaChart {
    const char *title, *x_title, *y_title; /* axis titles with their units */
    const char *legend, *dash;             /* the legends' titles; dash NULL: no kinds */
    int x_log, x_epochs;                   /* log x scale; whole-number x ticks */
    double y_span;                         /* the least span of the y axis (flat curves stay flat) */
    int n_series;                          /* more than 10: 20 colours */
} VegaChart;
struct json_t *vega_chart(const VegaChart *c, struct json_t *values);

/* report.c: the runs of `asymbp report`; report_page.c writes the page. */
#define REPORT_MAX_ARGS 64
typedef struct ReportRun {
    char label[192];            /* its name in the legends */
    char key[64];               /* its table row: the rule, a folder's run's name, a sweep's RULE[@KEY=V] */
    char path[1024], rule[16], data[64];
    double mult, lr, best_err;  /* sweep multiplier, optimizer.lr, the table's best error (NaN: none) */
    int group, drawn;           /* the argument it came from; whether it is in the per-epoch plots */
    struct json_t *epochs;      /* log.jsonl's objects */
    struct json_t *summary;     /* summary.json, NULL while the run is under way */
    char *config;               /* config.yaml, or NULL */
} ReportRun;
typedef struct Report {
    ReportRun *runs;
    int n, cap;
    const char *const *args;    /* the folders named, n_args of them */
    int n_args;
    char folder[REPORT_MAX_ARGS]; /* argument i is a folder of runs (sweep, compare) */
} Report;
int report_write(FILE *f, const Report *rp, const VegaLib *lib);

#endif
