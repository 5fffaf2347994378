/* table.c: `asymbp table DIR... [--out DIR]`: the results table of sweeps
 * and runs. Each DIR is a sweep (its rows: the rules and variants), a run
 * (summary.json; its row: its rule) or a folder of runs (a row per run folder,
 * named by it). Every number is read back from the runs' logs, so the table
 * always agrees with them: for each row and data set, the best error over
 * all epochs of all its runs (validation error when the runs have a
 * validation set, test error otherwise), the learning-rate multiplier and
 * epoch that gave it, and the wall time of all its runs. Printed as an
 * aligned table; --out writes table.md and table.csv. Several data sets make
 * a column each; --columns dir makes a column of each DIR instead (one data
 * set under several settings: with and without batch norm, ...). A log line
 * that cannot be read, or a file that cannot be written, is an error naming
 * the file (and the line): a table never leaves out what it could not read. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

static int is_file(const char *dir, const char *name) {
    char path[1200];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

typedef struct Row {
    char rule[64], data[64];
    double best_err, mult, seconds;
    int epoch, runs, diverged, validation;
} Row;

typedef struct Table {
    Row *rows;
    int n, cap;
    char data[16][64];
    int n_data;
} Table;

static int add_result(Table *t, const CliRunResult *r, double mult) {
    Row *row = NULL;
    for (int i = 0; i < t->n && !row; i++)
        if (!strcmp(t->rows[i].rule, r->label) && !strcmp(t->rows[i].data, r->data)) row = &t->rows[i];
    if (!row) {
        if (t->n == t->cap) {
            int cap = t->cap ? 2 * t->cap : 16;
            Row *rows = realloc(t->rows, cap * sizeof *rows);
            if (!rows) return 1;
            t->rows = rows, t->cap = cap;
        }
        row = &t->rows[t->n++];
        memset(row, 0, sizeof *row);
        snprintf(row->rule, sizeof row->rule, "%s", r->label);
        snprintf(row->data, sizeof row->data, "%s", r->data);
        row->best_err = row->mult = NAN;
        int known = 0;
        for (int i = 0; i < t->n_data; i++) known |= !strcmp(t->data[i], r->data);
        if (!known && t->n_data < 16) snprintf(t->data[t->n_data++], sizeof t->data[0], "%s", r->data);
    }
    row->runs++;
    row->diverged += r->diverged;
    row->seconds += r->seconds;
    row->validation |= r->validation;
    if (isfinite(r->best_err) && !(r->best_err >= row->best_err)) {
        row->best_err = r->best_err;
        row->mult = mult;
        row->epoch = r->epoch;
    }
    return 0;
}

/* The multiplier of a sweep run folder, RULE/lr_xMULT. */
static double folder_mult(const char *name) {
    return !strncmp(name, "lr_x", 4) ? strtod(name + 4, NULL) : NAN;
}

static int walk(const char *dir, int depth, const char *column, CliRunFn fn, void *ctx) {
    CliRunResult r;
    if (is_file(dir, "summary.json")) {
        int got = cli_run_result(dir, &r);
        if (got == 0) cli_failf(1, "%s/summary.json: not valid JSON", dir);
        if (got <= 0) return 1;
        if (column) snprintf(r.data, sizeof r.data, "%s", column);
        /* a sweep's run, RULE[@KEY=V]/lr_xMULT, is labelled by its parent folder */
        const char *base = strrchr(dir, '/');
        double mult = folder_mult(base ? base + 1 : dir);
        if (isfinite(mult) && base) {
            const char *p = base;
            while (p > dir && p[-1] != '/') p--;
            if (p < base) snprintf(r.label, sizeof r.label, "%.*s", (int)(base - p), p);
        } else if (depth > 0 && base) {
            /* a run in a folder of runs is named by its folder (kp, kp_no_decay, ...) */
            snprintf(r.label, sizeof r.label, "%.63s", base + 1);
        }
        return fn(ctx, dir, &r, mult);
    }
    if (depth == 2) return 0;
    DIR *d = opendir(dir);
    if (!d) return cli_failf(1, "%s: %s", dir, strerror(errno));
    struct dirent *e;
    char names[256][256];
    int n = 0;
    while ((e = readdir(d)) && n < 256)
        if (e->d_name[0] != '.' && strlen(e->d_name) < sizeof names[0]) memcpy(names[n++], e->d_name, strlen(e->d_name) + 1);
    closedir(d);
    qsort(names, n, sizeof names[0], (int (*)(const void *, const void *))strcmp);
    for (int i = 0; i < n; i++) {
        char sub[1400];
        struct stat st;
        snprintf(sub, sizeof sub, "%s/%.255s", dir, names[i]);
        if (stat(sub, &st) == 0 && S_ISDIR(st.st_mode) && walk(sub, depth + 1, column, fn, ctx)) return 1;
    }
    return 0;
}

int cli_walk_runs(const char *dir, const char *column, CliRunFn fn, void *ctx) { return walk(dir, 0, column, fn, ctx); }

static int add_run(void *t, const char *run, const CliRunResult *r, double mult) { return add_result(t, r, mult); }

static const Row *find_row(const Table *t, const char *rule, const char *data) {
    for (int i = 0; i < t->n; i++)
        if (!strcmp(t->rows[i].rule, rule) && !strcmp(t->rows[i].data, data)) return &t->rows[i];
    return NULL;
}

/* The rules in the order of asymbp's rule table, then any others. */
static int rule_order(const Table *t, const char **order) {
    int n = 0;
    for (int r = 1; r <= asym_rule_count(); r++)
        for (int i = 0; i < t->n; i++)
            if (!strcmp(t->rows[i].rule, asym_rule_name(r))) {
                order[n++] = asym_rule_name(r);
                break;
            }
    for (int i = 0; i < t->n; i++) {
        int seen = 0;
        for (int j = 0; j < n; j++) seen |= !strcmp(order[j], t->rows[i].rule);
        if (!seen) order[n++] = t->rows[i].rule;
    }
    return n;
}

static void fmt_err(char *buf, size_t n, const Row *r) {
    if (!r) snprintf(buf, n, "-");
    else if (!isfinite(r->best_err)) snprintf(buf, n, "diverged");
    else snprintf(buf, n, "%.2f", 100 * r->best_err);
}

static void fmt_mult(char *buf, size_t n, const Row *r) {
    if (r && isfinite(r->mult)) snprintf(buf, n, "x%g", r->mult);
    else snprintf(buf, n, "-");
}

typedef CliGrid Grid;

static void build_grid(const Table *t, Grid *g) {
    const char *order[64];
    int nr = rule_order(t, order), val = 0;
    for (int i = 0; i < t->n; i++) val |= t->rows[i].validation;
    const char *what = val ? "best val err %" : "best test err %";
    memset(g, 0, sizeof *g);
    g->rows = 1 + (nr < 63 ? nr : 63);
    snprintf(g->cell[0][0], 48, "rule");
    if (t->n_data == 1) {
        g->cols = 6;
        snprintf(g->cell[0][1], 48, "%s", what);
        snprintf(g->cell[0][2], 48, "lr mult");
        snprintf(g->cell[0][3], 48, "epoch");
        snprintf(g->cell[0][4], 48, "runs");
        snprintf(g->cell[0][5], 48, "seconds");
    } else {
        g->cols = 1 + (t->n_data < 11 ? t->n_data : 11);
        for (int d = 1; d < g->cols; d++) snprintf(g->cell[0][d], 48, "%.30s %s", t->data[d - 1], val ? "val err %" : "test err %");
    }
    for (int i = 1; i < g->rows; i++) {
        snprintf(g->cell[i][0], 48, "%s", order[i - 1]);
        if (t->n_data == 1) {
            const Row *r = find_row(t, order[i - 1], t->data[0]);
            fmt_err(g->cell[i][1], 48, r);
            fmt_mult(g->cell[i][2], 48, r);
            if (r && isfinite(r->best_err)) snprintf(g->cell[i][3], 48, "%d", r->epoch);
            else snprintf(g->cell[i][3], 48, "-");
            if (!r) continue;
            if (r->diverged) snprintf(g->cell[i][4], 48, "%d (%d diverged)", r->runs, r->diverged);
            else snprintf(g->cell[i][4], 48, "%d", r->runs);
            snprintf(g->cell[i][5], 48, "%.0f", r->seconds);
            continue;
        }
        for (int d = 1; d < g->cols; d++) {
            const Row *r = find_row(t, order[i - 1], t->data[d - 1]);
            char err[16], mult[16];
            fmt_err(err, sizeof err, r);
            fmt_mult(mult, sizeof mult, r);
            if (r && isfinite(r->best_err)) snprintf(g->cell[i][d], 48, "%.15s (%.15s, ep %d)", err, mult, r->epoch);
            else snprintf(g->cell[i][d], 48, "%s", err);
        }
    }
}

static void print_grid(FILE *f, const Grid *g, int markdown) {
    int w[12] = {0};
    for (int c = 0; c < g->cols; c++)
        for (int r = 0; r < g->rows; r++)
            if ((int)strlen(g->cell[r][c]) > w[c]) w[c] = (int)strlen(g->cell[r][c]);
    for (int r = 0; r < g->rows; r++) {
        for (int c = 0; c < g->cols; c++) {
            if (markdown) fprintf(f, "| %-*s ", w[c], g->cell[r][c]);
            else fprintf(f, c ? "  %*s" : "%-*s", w[c], g->cell[r][c]);
        }
        fprintf(f, markdown ? "|\n" : "\n");
        if (r == 0) {
            for (int c = 0; c < g->cols; c++) {
                if (markdown) fprintf(f, "|%s", c ? "-" : ":");
                for (int k = 0; k < w[c] + (c && !markdown ? 2 : 0); k++) fputc('-', f);
                if (markdown) fputc(c ? ':' : '-', f);
            }
            fprintf(f, markdown ? "|\n" : "\n");
        }
    }
}

static int write_files(const Table *t, const Grid *g, const char *dir) {
    char path[1200];
    snprintf(path, sizeof path, "%s/table.md", dir);
    FILE *f = fopen(path, "w");
    if (!f) goto fail;
    print_grid(f, g, 1);
    if (cli_close_written(f)) goto fail;
    snprintf(path, sizeof path, "%s/table.csv", dir);
    if (!(f = fopen(path, "w"))) goto fail;
    fprintf(f, "rule,data,metric,best_err,lr_mult,epoch,runs,diverged,seconds\n");
    const char *order[64];
    int nr = rule_order(t, order);
    for (int i = 0; i < nr; i++)
        for (int d = 0; d < t->n_data; d++) {
            const Row *r = find_row(t, order[i], t->data[d]);
            if (!r) continue;
            fprintf(f, "%s,%s,%s,", r->rule, r->data, r->validation ? "val_err" : "test_err");
            if (isfinite(r->best_err)) fprintf(f, "%.6f,", r->best_err);
            else fprintf(f, ",");
            if (isfinite(r->mult)) fprintf(f, "%g,", r->mult);
            else fprintf(f, ",");
            fprintf(f, "%d,%d,%d,%.3f\n", isfinite(r->best_err) ? r->epoch : 0, r->runs, r->diverged, r->seconds);
        }
    if (cli_close_written(f)) goto fail;
    return 0;
fail:
    return cli_failf(1, "%s: write failed: %s", path, strerror(errno));
}

/* The runs under dirs into t; 1, with the message printed, when one cannot
 * be read or there is none. */
static int collect(Table *t, const char *const *dirs, int n, int by_dir) {
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        char column[64];
        const char *end = dirs[i] + strlen(dirs[i]), *p;
        while (end > dirs[i] + 1 && end[-1] == '/') end--;
        for (p = end; p > dirs[i] && p[-1] != '/'; p--) {}
        snprintf(column, sizeof column, "%.*s", (int)(end - p), p);
        rc = cli_walk_runs(dirs[i], by_dir ? column : NULL, add_run, t);
    }
    if (!rc && t->n == 0) {
        fprintf(stderr, "asymbp: table: no finished runs (summary.json) under");
        for (int i = 0; i < n; i++) fprintf(stderr, " %s", dirs[i]);
        fprintf(stderr, "\n");
        rc = 1;
    }
    return rc;
}

int cli_table_grid(const char *const *dirs, int n, int by_dir, CliGrid *g) {
    Table t = {0};
    int rc = collect(&t, dirs, n, by_dir);
    if (!rc) build_grid(&t, g);
    free(t.rows);
    return rc;
}

int cli_table(const char *const *dirs, int n, const char *out, int by_dir) {
    Table t = {0};
    Grid *g = malloc(sizeof *g);
    int rc = !g || collect(&t, dirs, n, by_dir);
    if (!rc) {
        build_grid(&t, g);
        print_grid(stdout, g, 0);
        if (out) rc = cli_mkdir_p(out) || write_files(&t, g, out);
    }
    free(g);
    free(t.rows);
    return rc;
}

int cmd_table(int argc, char **argv) {
    const char *dirs[256], *out = NULL;
    int n = 0, by_dir = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(argv[i], "--columns") && i + 1 < argc && (!strcmp(argv[i + 1], "dir") || !strcmp(argv[i + 1], "data"))) by_dir = !strcmp(argv[++i], "dir");
        else if (argv[i][0] == '-') return cli_failf(2, "table: unknown or incomplete option '%s'", argv[i]);
        else if (n < 256) dirs[n++] = argv[i];
    }
    if (!n) return cli_fail(2, "usage: asymbp table DIR... [--columns data|dir] [--out DIR]: DIR is a sweep, a run or a folder of runs");
    return cli_table(dirs, n, out, by_dir);
}
