/* report_page.c: the page of `asymbp report` (report.c reads the runs): the
 * runs' table; train, test (and validation) error and loss against epoch;
 * every weight layer's B-W angle, error-signal (delta) angle and |B|/|W|
 * against epoch; for each folder of runs, its results table (`asymbp
 * table`'s) and its best error against the learning rate. Each plot is an
 * empty <div id="plot-N"> with its Vega specification in ASYMBP_PLOTS;
 * the script at the end draws them all as SVG. Every text from the runs
 * (names, paths, configs) is escaped for HTML, and every specification for
 * <script> (vega_write_json), so a run folder named "<script>" stays text.
 *
 * The page records how drawing went, for tests and for anyone who opens
 * it: <body data-report="loading">, then "ok" with data-plots="N" once all
 * N plots are drawn, or "error" with data-error set at the first script
 * error or rejected promise (shown in a banner too). */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void html(FILE *f, const char *s) {
    for (; s && *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default: fputc(*s, f);
        }
    }
}

/* A table cell: a fraction as a percentage, a number, or "-". */
static void cell_pct(FILE *f, const json_t *v) {
    if (json_is_number(v)) fprintf(f, "<td class=\"num\">%.2f</td>", 100 * json_number_value(v));
    else fputs("<td class=\"num\">-</td>", f);
}

static void cell_num(FILE *f, const json_t *v, const char *fmt) {
    fputs("<td class=\"num\">", f);
    if (json_is_number(v)) fprintf(f, fmt, json_number_value(v));
    else fputs("-", f);
    fputs("</td>", f);
}

static const char *const PAGE_HEAD =
    "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<style>\n"
    "body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }\n"
    "h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; } h3 { font-size: 1em; margin-bottom: 0.3em; }\n"
    "p.note { color: #555; max-width: 60em; }\n"
    "table { border-collapse: collapse; font-size: 0.9em; }\n"
    "th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; }\n"
    "th { background: #f2f2f2; } td.num { text-align: right; font-variant-numeric: tabular-nums; }\n"
    ".plots { display: flex; flex-wrap: wrap; gap: 0.5em 1.5em; }\n"
    "pre { background: #f6f6f6; padding: 0.5em; font-size: 0.85em; }\n"
    "body[data-report=error]::before { content: \"The plots could not be drawn: \" attr(data-error); display: block;"
    " background: #fdd; padding: 0.5em; }\n"
    "</style>\n";

/* The page's head, the status handlers (first, so that they see every
 * error) and the heading. */
static void write_head(FILE *f, const Report *rp) {
    fputs(PAGE_HEAD, f);
    fputs("<title>asymbp report:", f);
    for (int i = 0; i < rp->n_args; i++) fputc(' ', f), html(f, rp->args[i]);
    fputs("</title>\n</head>\n<body data-report=\"loading\">\n<script>\n"
          "function asymbpFailed(e) {\n"
          "  document.body.setAttribute('data-report', 'error');\n"
          "  document.body.setAttribute('data-error', String(e && e.message ? e.message : e));\n"
          "}\n"
          "window.addEventListener('error', function (ev) { asymbpFailed(ev.message + ' (line ' + ev.lineno + ')'); });\n"
          "window.addEventListener('unhandledrejection', function (ev) { asymbpFailed(ev.reason); });\n"
          "</script>\n<h1>asymbp report</h1>\n<p class=\"note\">",
          f);
    fprintf(f, "asymbp %s, from", ASYM_VERSION);
    for (int i = 0; i < rp->n_args; i++) fputs(i ? ", <code>" : " <code>", f), html(f, rp->args[i]), fputs("</code>", f);
    fputs(". Errors are the percentage of misclassified images; losses the mean per image, in nats. Of a sweep or a folder of runs, the"
          " per-epoch plots show the best run of each table row. Hover over a point for its value.</p>\n",
          f);
}

/* One row of the runs table: what summary.json says (an unfinished run:
 * how far its log got). */
static void run_row(FILE *f, const ReportRun *r, int val) {
    const json_t *s = r->summary;
    fputs("<tr><td>", f);
    html(f, r->label);
    fputs("</td><td>", f);
    html(f, r->rule);
    fputs("</td><td>", f);
    html(f, r->data);
    fputs("</td>", f);
    if (isfinite(r->lr)) fprintf(f, "<td class=\"num\">%g</td>", r->lr);
    else fputs("<td class=\"num\">-</td>", f);
    fprintf(f, "<td class=\"num\">%d</td>", (int)json_array_size(r->epochs));
    cell_pct(f, json_object_get(s, "best_test_err"));
    cell_num(f, json_object_get(s, "best_epoch"), "%.0f");
    cell_pct(f, json_object_get(s, "final_test_err"));
    if (val) cell_pct(f, json_object_get(s, "best_val_err")), cell_num(f, json_object_get(s, "best_val_epoch"), "%.0f");
    cell_num(f, json_object_get(s, "final_mean_angle"), "%.1f");
    cell_num(f, json_object_get(s, "seconds"), "%.0f");
    fprintf(f, "<td>%s</td></tr>\n", !s ? "unfinished" : json_is_true(json_object_get(s, "diverged")) ? "diverged" : "finished");
}

static void write_runs_table(FILE *f, const Report *rp) {
    int val = 0;
    for (int i = 0; i < rp->n; i++) val |= rp->runs[i].drawn && json_object_get(rp->runs[i].summary, "best_val_err");
    fputs("<h2>Runs</h2>\n<table>\n<tr><th>run</th><th>rule</th><th>data</th><th>learning rate</th><th>epochs</th>"
          "<th>best test err %</th><th>at epoch</th><th>final test err %</th>",
          f);
    if (val) fputs("<th>best val err %</th><th>at epoch</th>", f);
    fputs("<th>final mean angle (degrees)</th><th>seconds</th><th>status</th></tr>\n", f);
    for (int i = 0; i < rp->n; i++)
        if (rp->runs[i].drawn) run_row(f, &rp->runs[i], val);
    fputs("</table>\n", f);
}

/* A plot's place on the page, and its specification in specs; nothing
 * when there is nothing to draw. */
static void put_plot(FILE *f, json_t *specs, const VegaChart *c, json_t *values) {
    if (json_array_size(values) == 0) {
        json_decref(values);
        return;
    }
    fprintf(f, "<div class=\"plot\" id=\"plot-%d\"></div>\n", (int)json_array_size(specs));
    json_array_append_new(specs, vega_chart(c, values));
}

/* A point {s: series, k: kind, x, y} of a plot; none where y is not a number. */
static void add_xy(json_t *values, const char *series, const char *kind, double x, double y) {
    if (isfinite(x) && isfinite(y)) json_array_append_new(values, json_pack("{s:s, s:s, s:f, s:f}", "s", series, "k", kind, "x", x, "y", y));
}

static void add_point(json_t *values, const char *series, const char *kind, double x, const json_t *y, double scale) {
    if (json_is_number(y)) add_xy(values, series, kind, x, scale * json_number_value(y));
}

static int n_drawn(const Report *rp) {
    int n = 0;
    for (int i = 0; i < rp->n; i++) n += rp->runs[i].drawn;
    return n;
}

/* Error (suffix "_err", in %) or loss ("_loss") of every split. */
static json_t *split_values(const Report *rp, const char *suffix, double scale) {
    static const char *const SPLITS[] = {"train", "test", "val"};
    json_t *values = json_array(), *e;
    size_t k;
    for (int i = 0; i < rp->n; i++) {
        if (!rp->runs[i].drawn) continue;
        json_array_foreach(rp->runs[i].epochs, k, e) {
            double x = (double)json_integer_value(json_object_get(e, "epoch"));
            for (int s = 0; s < 3; s++) {
                char key[32];
                snprintf(key, sizeof key, "%s%s", SPLITS[s], suffix);
                add_point(values, rp->runs[i].label, SPLITS[s], x, json_object_get(e, key), scale);
            }
        }
    }
    return values;
}

static void write_curves(FILE *f, const Report *rp, json_t *specs) {
    VegaChart err = {"Error", "epoch", "error (%)", "run", "set", 0, 1, 1, n_drawn(rp)};
    VegaChart loss = {"Loss", "epoch", "loss (mean per image, nats)", "run", "set", 0, 1, 0.01, n_drawn(rp)};
    fputs("<h2>Error and loss</h2>\n<div class=\"plots\">\n", f);
    put_plot(f, specs, &err, split_values(rp, "_err", 100));
    put_plot(f, specs, &loss, split_values(rp, "_loss", 1));
    fputs("</div>\n", f);
}

/* The weight layers of the drawn runs, by name, in the order first met. */
#define MAX_LAYERS 64
typedef struct Layers {
    char name[MAX_LAYERS][32];
    int n;
} Layers;

static void layer_names(const Report *rp, Layers *L) {
    L->n = 0;
    for (int i = 0; i < rp->n; i++) {
        json_t *l;
        size_t j;
        if (!rp->runs[i].drawn) continue;
        json_array_foreach(json_object_get(json_array_get(rp->runs[i].epochs, 0), "layers"), j, l) {
            const char *name = json_string_value(json_object_get(l, "name"));
            int known = !name || strlen(name) >= sizeof L->name[0];
            for (int k = 0; k < L->n && !known; k++) known = !strcmp(L->name[k], name);
            if (!known && L->n < MAX_LAYERS) snprintf(L->name[L->n++], sizeof L->name[0], "%s", name);
        }
    }
}

/* Where layer name is in an epoch's layers, or -1. */
static int layer_index(const json_t *epoch, const char *name) {
    json_t *l;
    size_t j;
    json_array_foreach(json_object_get(epoch, "layers"), j, l) {
        const char *n = json_string_value(json_object_get(l, "name"));
        if (n && !strcmp(n, name)) return (int)j;
    }
    return -1;
}

/* metric of layer name over the epochs of every drawn run; the B-W angle
 * also at epoch 0, the start (summary.json's initial_angles). */
static json_t *layer_values(const Report *rp, const char *name, const char *metric) {
    json_t *values = json_array(), *e;
    size_t k;
    for (int i = 0; i < rp->n; i++) {
        const ReportRun *r = &rp->runs[i];
        if (!r->drawn) continue;
        int j0 = layer_index(json_array_get(r->epochs, 0), name);
        if (!strcmp(metric, "angle") && j0 >= 0) add_point(values, r->label, "", 0, json_array_get(json_object_get(r->summary, "initial_angles"), (size_t)j0), 1);
        json_array_foreach(r->epochs, k, e) {
            int j = layer_index(e, name);
            if (j >= 0)
                add_point(values, r->label, "", (double)json_integer_value(json_object_get(e, "epoch")),
                          json_object_get(json_array_get(json_object_get(e, "layers"), (size_t)j), metric), 1);
        }
    }
    return values;
}

static void write_alignment(FILE *f, const Report *rp, json_t *specs) {
    static const double SPAN[] = {1, 1, 0.01};
    static const char *const METRICS[][4] = {
        {"angle", "B-W angle", "angle (degrees)", "The angle between the feedback matrix B and the weights W (0 for backpropagation, "
                                                  "whose B is W), from the start (epoch 0)."},
        {"delta_angle", "Delta angle", "angle (degrees)", "The angle between the error signal the rule sends to the layer and "
                                                          "backpropagation's, on the same batch."},
        {"norm_ratio", "Norm ratio", "|B| / |W| (ratio)", "The Frobenius norm of B over that of W."},
    };
    Layers L;
    layer_names(rp, &L);
    if (!L.n) return;
    fputs("<h2>Alignment with backpropagation, per weight layer</h2>\n<p class=\"note\">Layers are numbered as in the model's list of layers."
          " A run has no point where the layer has no B (its rule sends errors another way).</p>\n",
          f);
    for (int m = 0; m < 3; m++) {
        fprintf(f, "<h3>%s</h3>\n<p class=\"note\">%s</p>\n<div class=\"plots\">\n", METRICS[m][1], METRICS[m][3]);
        for (int l = 0; l < L.n; l++) {
            char title[128];
            snprintf(title, sizeof title, "%s, layer %s (weight layer %d of %d)", METRICS[m][1], L.name[l], l + 1, L.n);
            VegaChart c = {title, "epoch", METRICS[m][2], "run", NULL, 0, 1, SPAN[m], n_drawn(rp)};
            put_plot(f, specs, &c, layer_values(rp, L.name[l], METRICS[m][0]));
        }
        fputs("</div>\n", f);
    }
}

/* A results table (cli_table_grid's cells) as HTML. */
static void write_grid(FILE *f, const CliGrid *g) {
    fputs("<table>\n", f);
    for (int r = 0; r < g->rows; r++) {
        fputs("<tr>", f);
        for (int c = 0; c < g->cols; c++) {
            const char *cell = g->cell[r][c];
            char *end;
            strtod(cell, &end);
            fputs(r == 0 ? "<th>" : end > cell && !*end ? "<td class=\"num\">" : "<td>", f);
            html(f, cell);
            fputs(r == 0 ? "</th>" : "</td>", f);
        }
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
}

/* The best error of each of folder g's runs against its learning rate,
 * a line per table row; nothing when they share one learning rate. */
static void write_lr_plot(FILE *f, const Report *rp, int g, json_t *specs) {
    json_t *values = json_array();
    double lr0 = NAN;
    int spread = 0, left_out = 0, val = 0, rows = 0;
    for (int i = 0; i < rp->n; i++) {
        const ReportRun *r = &rp->runs[i];
        if (r->group != g) continue;
        int has = isfinite(r->best_err) && isfinite(r->lr);
        left_out += !has;
        if (has) spread |= isfinite(lr0) && r->lr != lr0, lr0 = r->lr;
        if (has) add_xy(values, r->key, "", r->lr, 100 * r->best_err);
        val |= json_object_get(json_array_get(r->epochs, 0), "val_err") != NULL;
        rows += r->drawn;
    }
    if (!spread) {
        json_decref(values);
        return;
    }
    VegaChart c = {"Best error against learning rate", "learning rate (log scale)", val ? "best validation error (%)" : "best test error (%)", "rule",
                   NULL, 1, 0, 1, rows};
    fputs("<div class=\"plots\">\n", f);
    put_plot(f, specs, &c, values);
    fputs("</div>\n", f);
    if (left_out) fprintf(f, "<p class=\"note\">%d run%s without an error (diverged before the first) left out.</p>\n", left_out, left_out > 1 ? "s" : "");
}

static void write_folders(FILE *f, const Report *rp, json_t *specs) {
    CliGrid *grid = malloc(sizeof *grid);
    for (int g = 0; g < rp->n_args && grid; g++) {
        if (!rp->folder[g]) continue;
        fputs("<h2>Results of <code>", f);
        html(f, rp->args[g]);
        fputs("</code></h2>\n<p class=\"note\">As <code>asymbp table</code> gives it: per row, the best error over all epochs of all its runs, "
              "with the learning-rate multiplier and epoch that gave it.</p>\n",
              f);
        if (cli_table_grid(&rp->args[g], 1, 0, grid) == 0) write_grid(f, grid);
        write_lr_plot(f, rp, g, specs);
    }
    free(grid);
}

static void write_configs(FILE *f, const Report *rp) {
    fputs("<h2>Configurations</h2>\n", f);
    for (int i = 0; i < rp->n; i++) {
        const ReportRun *r = &rp->runs[i];
        if (!r->drawn) continue;
        fputs("<details><summary>", f);
        html(f, r->label);
        fputs(": <code>", f);
        html(f, r->path);
        fputs("/config.yaml</code></summary>\n<pre>", f);
        html(f, r->config ? r->config : "(no config.yaml)");
        fputs("</pre></details>\n", f);
    }
}

/* Draws every plot; the page says "ok" when all are drawn. Vega logs what
 * goes wrong inside a plot (a bad specification, a missing transform) and
 * draws on; its logger here marks the page failed as well. */
static const char *const RENDER =
    "<script>\n"
    "function asymbpLogger() {\n"
    "  var log = vega.logger(vega.Warn), error = log.error;\n"
    "  log.error = function () {\n"
    "    asymbpFailed(Array.prototype.slice.call(arguments).join(' '));\n"
    "    return error.apply(log, arguments);\n"
    "  };\n"
    "  return log;\n"
    "}\n"
    "Promise.all(ASYMBP_PLOTS.map(function (spec, i) {\n"
    "  var options = {renderer: 'svg', container: '#plot-' + i, hover: true, logger: asymbpLogger()};\n"
    "  return new vega.View(vega.parse(spec), options).runAsync();\n"
    "})).then(function () {\n"
    "  if (document.body.getAttribute('data-report') !== 'loading') return;\n"
    "  document.body.setAttribute('data-plots', String(ASYMBP_PLOTS.length));\n"
    "  document.body.setAttribute('data-report', 'ok');\n"
    "}, asymbpFailed);\n"
    "</script>\n";

int report_write(FILE *f, const Report *rp, const VegaLib *lib) {
    json_t *specs = json_array();
    if (!specs) return cli_fail(1, "report: out of memory");
    write_head(f, rp);
    write_runs_table(f, rp);
    write_curves(f, rp, specs);
    write_alignment(f, rp, specs);
    write_folders(f, rp, specs);
    write_configs(f, rp);
    fputs("<script>\nvar ASYMBP_PLOTS = ", f);
    int rc = vega_write_json(f, specs);
    fputs(";\n</script>\n", f);
    vega_write_library(f, lib);
    fputs(RENDER, f);
    fputs("</body>\n</html>\n", f);
    json_decref(specs);
    return rc ? cli_fail(1, "report: out of memory") : 0;
}
