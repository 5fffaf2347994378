/* report.c: `asymbp report DIR... --out FILE.html`: one self-contained page
 * (it opens offline) with the curves of runs side by side. Each DIR is a run
 * folder (its log.jsonl; a run still under way is read as far as it got)
 * or a folder of finished runs: a sweep or a compare (what `asymbp table`
 * reads). Every run named itself is drawn; of a folder's runs, the best of
 * each table row (a sweep's rule at its best learning rate), while the
 * folder's own table and its error against the learning rate show all of
 * them. This file finds and reads the runs; report_page.c writes the page,
 * vega.c the plots. The page is written to FILE.tmp and renamed, so that
 * a failure leaves nothing behind. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

static int keep_epoch(void *epochs, const json_t *e) { return json_array_append((json_t *)epochs, (json_t *)e) ? cli_fail(1, "report: out of memory") : 0; }

/* The run's learning rate as its config.yaml gives it (NaN when unknown). */
static double run_lr(const char *path) {
    char file[1200];
    AsymConfig *cfg;
    snprintf(file, sizeof file, "%s/config.yaml", path);
    if (asym_config_load(&cfg, file)) return NAN;
    const char *lr = asym_config_get(cfg, "optimizer.lr");
    double v = lr ? strtod(lr, NULL) : NAN;
    asym_config_free(cfg);
    return v > 0 ? v : NAN;
}

static ReportRun *new_run(Report *rp) {
    if (rp->n == rp->cap) {
        int cap = rp->cap ? 2 * rp->cap : 16;
        ReportRun *runs = realloc(rp->runs, (size_t)cap * sizeof *runs);
        if (!runs) return NULL;
        rp->runs = runs, rp->cap = cap;
    }
    ReportRun *r = &rp->runs[rp->n++];
    memset(r, 0, sizeof *r);
    return r;
}

/* Reads the run in path into a new entry of rp: its epochs, summary.json
 * (when finished), config.yaml; res is what cli_run_result read, or NULL
 * for an unfinished run. */
static int add_run(Report *rp, const char *path, const CliRunResult *res, double mult, int group) {
    char file[1200];
    ReportRun *r = new_run(rp);
    if (!r) return cli_fail(1, "report: out of memory");
    snprintf(r->path, sizeof r->path, "%s", path);
    snprintf(r->key, sizeof r->key, "%s", res ? res->label : "");
    snprintf(r->rule, sizeof r->rule, "%s", res ? res->rule : "?");
    snprintf(r->data, sizeof r->data, "%s", res ? res->data : "?");
    r->best_err = res ? res->best_err : NAN;
    r->mult = mult;
    r->group = group;
    r->lr = run_lr(path);
    snprintf(file, sizeof file, "%s/summary.json", path);
    r->summary = json_load_file(file, 0, NULL);
    snprintf(file, sizeof file, "%s/config.yaml", path);
    r->config = cli_read_text(file);
    r->epochs = json_array();
    if (!r->epochs || cli_read_log(path, keep_epoch, r->epochs)) return 1;
    if (!r->summary && json_array_size(r->epochs) > 0) {
        /* a run under way: its rule from the last epoch's layers */
        const json_t *last = json_array_get(r->epochs, json_array_size(r->epochs) - 1);
        const char *rule = json_string_value(json_object_get(json_array_get(json_object_get(last, "layers"), 0), "rule"));
        if (rule) snprintf(r->rule, sizeof r->rule, "%s", rule);
    }
    return 0;
}

typedef struct Walk {
    Report *rp;
    int group;
} Walk;

static int add_walked(void *ctx, const char *run, const CliRunResult *res, double mult) {
    Walk *w = ctx;
    return add_run(w->rp, run, res, mult, w->group);
}

/* The name of a path: its last component (trailing '/' left out). */
static void base_name(const char *path, char *out, size_t n) {
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/') len--;
    const char *p = path + len;
    while (p > path && p[-1] != '/') p--;
    snprintf(out, n, "%.*s", (int)(len - (size_t)(p - path)), p);
}

/* Argument i: a run folder (it has log.jsonl), or a folder of finished runs. */
static int add_arg(Report *rp, int i) {
    const char *dir = rp->args[i];
    char log[1200];
    struct stat st;
    if (stat(dir, &st) != 0) return cli_failf(1, "report: %s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return cli_failf(1, "report: %s: not a folder (a run folder, a sweep or a folder of runs)", dir);
    snprintf(log, sizeof log, "%s/log.jsonl", dir);
    if (access(log, F_OK) == 0) {
        CliRunResult res;
        int got = cli_run_result(dir, &res);
        if (got < 0) return 1;
        if (add_run(rp, dir, got ? &res : NULL, NAN, i)) return 1;
        ReportRun *r = &rp->runs[rp->n - 1];
        base_name(dir, r->label, sizeof r->label);
        if (json_array_size(r->epochs) == 0) return cli_failf(1, "report: %s: no epochs logged", log);
        return 0;
    }
    int before = rp->n;
    Walk w = {rp, i};
    if (cli_walk_runs(dir, NULL, add_walked, &w)) return 1;
    if (rp->n == before) return cli_failf(1, "report: %s: no log.jsonl, and no finished runs (summary.json) in the folders under it", dir);
    rp->folder[i] = 1;
    return 0;
}

/* Whether run a (index ia) is drawn before b of its table row: the lower
 * error (one without an error loses), the first on a tie. */
static int beats(const ReportRun *a, int ia, const ReportRun *b, int ib) {
    if (isnan(a->best_err) != isnan(b->best_err)) return !isnan(a->best_err);
    if (!isnan(a->best_err) && a->best_err != b->best_err) return a->best_err < b->best_err;
    return ia < ib;
}

/* Of a folder's runs, the best of each table row is drawn, named by its
 * row (and learning-rate multiplier), after the folder's name when there
 * are several arguments. */
static void choose_drawn(Report *rp) {
    for (int i = 0; i < rp->n; i++) {
        ReportRun *r = &rp->runs[i];
        char base[256];
        r->drawn = 1;
        if (!rp->folder[r->group]) continue;
        for (int j = 0; j < rp->n; j++) {
            const ReportRun *q = &rp->runs[j];
            if (j != i && q->group == r->group && !strcmp(q->key, r->key) && beats(q, j, r, i)) r->drawn = 0;
        }
        base_name(rp->args[r->group], base, sizeof base);
        int n = rp->n_args > 1 ? snprintf(r->label, sizeof r->label, "%.100s: ", base) : 0;
        if (isfinite(r->mult)) snprintf(r->label + n, sizeof r->label - n, "%s (lr x%g)", r->key, r->mult);
        else snprintf(r->label + n, sizeof r->label - n, "%s", r->key);
    }
}

/* Two runs named alike (runs/a/fa, runs/b/fa) go by their paths. */
static void unique_labels(Report *rp) {
    for (int i = 0; i < rp->n; i++)
        for (int j = i + 1; j < rp->n; j++)
            if (rp->runs[i].drawn && rp->runs[j].drawn && !strcmp(rp->runs[i].label, rp->runs[j].label)) {
                snprintf(rp->runs[i].label, sizeof rp->runs[i].label, "%.190s", rp->runs[i].path);
                snprintf(rp->runs[j].label, sizeof rp->runs[j].label, "%.190s", rp->runs[j].path);
            }
}

static void report_free(Report *rp) {
    for (int i = 0; i < rp->n; i++) {
        json_decref(rp->runs[i].epochs);
        json_decref(rp->runs[i].summary);
        free(rp->runs[i].config);
    }
    free(rp->runs);
}

/* The page into out.tmp, renamed to out once complete. */
static int write_page(const char *out, const Report *rp, const VegaLib *lib) {
    char tmp[1200];
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    FILE *f = fopen(tmp, "w");
    if (!f) return cli_failf(1, "report: %s: cannot write: %s", tmp, strerror(errno));
    int rc = report_write(f, rp, lib);
    if (cli_close_written(f) && !rc) rc = cli_failf(1, "report: %s: write failed: %s", tmp, strerror(errno));
    if (!rc && rename(tmp, out)) rc = cli_failf(1, "report: %s: cannot write: %s", out, strerror(errno));
    if (rc) unlink(tmp);
    return rc;
}

int cmd_report(int argc, char **argv) {
    const char *dirs[REPORT_MAX_ARGS], *out = NULL;
    int n = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
        else if (argv[i][0] == '-') return cli_failf(2, "report: unknown or incomplete option '%s'", argv[i]);
        else if (n == REPORT_MAX_ARGS) return cli_failf(2, "report: more than %d folders", REPORT_MAX_ARGS);
        else dirs[n++] = argv[i];
    }
    if (!n || !out) return cli_fail(2, "usage: asymbp report DIR... --out FILE.html: DIR is a run, a sweep or a folder of runs");
    VegaLib lib;
    if (vega_open(&lib)) return 1;
    Report rp = {.args = dirs, .n_args = n};
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) rc = add_arg(&rp, i);
    if (!rc) {
        choose_drawn(&rp);
        unique_labels(&rp);
        rc = write_page(out, &rp, &lib);
    }
    if (!rc) printf("asymbp: report of %d run%s -> %s\n", rp.n, rp.n == 1 ? "" : "s", out);
    report_free(&rp);
    vega_close(&lib);
    return rc;
}
