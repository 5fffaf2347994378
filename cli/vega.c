/* vega.c: the plots of `asymbp report`, drawn in the browser by Vega 5
 * (vega.github.io/vega), a declarative grammar: the command writes each
 * plot as a Vega specification (JSON: data, scales, axes, legends, marks)
 * and Vega lays it out and draws it as SVG, so no plot geometry is computed
 * here. The report inlines Vega itself, so that the page opens offline.
 *
 * Where Vega is read from: $ASYMBP_VEGA, either Vega's single-file build
 * (vega.min.js, which defines the global `vega`) or a folder of its module
 * builds; by default Debian's libjs-vega folder, /usr/share/javascript/vega,
 * which holds only the module builds (vega-util.min.js, ...). Those are
 * UMD files whose browser branch would start each module from an empty
 * global, so the page loads them in dependency order through their
 * CommonJS branch, with a `require` that returns the modules loaded
 * before, and then registers the transforms with the dataflow, as the
 * single-file build's own entry point does. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

#define VEGA_DEBIAN_DIR "/usr/share/javascript/vega"

/* The modules parse and View need, each after those it requires, and the
 * name it is required by (upstream's vega-selections is Debian's
 * vega-selection.min.js). */
static const char *const MODULES[][2] = {
    {"util", "vega-util"}, {"time", "vega-time"}, {"format", "vega-format"}, {"loader", "vega-loader"},
    {"dataflow", "vega-dataflow"}, {"scale", "vega-scale"}, {"canvas", "vega-canvas"}, {"scenegraph", "vega-scenegraph"},
    {"expression", "vega-expression"}, {"selection", "vega-selections"}, {"statistics", "vega-statistics"},
    {"functions", "vega-functions"}, {"event-selector", "vega-event-selector"}, {"parser", "vega-parser"},
    {"runtime", "vega-runtime"}, {"view", "vega-view"}, {"transforms", "vega-transforms"},
    {"view-transforms", "vega-view-transforms"}, {"encode", "vega-encode"},
};
enum { N_MODULES = sizeof MODULES / sizeof MODULES[0] };

/* Inside <script>, "</script" would end the script and "<!--" can hide its
 * end; Vega's files hold neither, and one that does is refused, not edited. */
static int loadable(const char *path, const char *text) {
    if (strstr(text, "</script") || strstr(text, "</SCRIPT") || strstr(text, "<!--"))
        return cli_failf(1, "report: %s: holds '</script' or '<!--', so it cannot be inlined in a page", path);
    return 0;
}

static int missing(const char *path) {
    return cli_failf(1, "report: %s: %s; install Debian's libjs-vega (apt-get install libjs-vega) or set ASYMBP_VEGA to Vega 5's vega.min.js",
                     path, strerror(errno));
}

int vega_open(VegaLib *lib) {
    const char *env = getenv("ASYMBP_VEGA");
    const char *where = env && *env ? env : VEGA_DEBIAN_DIR;
    struct stat st;
    memset(lib, 0, sizeof *lib);
    errno = ENOENT;
    if (stat(where, &st) != 0) return missing(where);
    lib->single = !S_ISDIR(st.st_mode);
    for (int i = 0; i < (lib->single ? 1 : N_MODULES); i++) {
        char path[1200];
        if (lib->single) snprintf(path, sizeof path, "%s", where);
        else snprintf(path, sizeof path, "%s/vega-%s.min.js", where, MODULES[i][0]);
        errno = 0;
        if (!(lib->text[i] = cli_read_text(path))) {
            vega_close(lib);
            return missing(path);
        }
        if (loadable(path, lib->text[i])) {
            vega_close(lib);
            return 1;
        }
    }
    return 0;
}

void vega_close(VegaLib *lib) {
    for (int i = 0; i < VEGA_MAX_FILES; i++) free(lib->text[i]);
    memset(lib, 0, sizeof *lib);
}

void vega_write_library(FILE *f, const VegaLib *lib) {
    if (lib->single) {
        fprintf(f, "<script>\n%s\n</script>\n", lib->text[0]);
        return;
    }
    fputs("<script>var asymbpModules = {};\n"
          "function asymbpRequire(name) {\n"
          "  if (!asymbpModules[name]) throw new Error('Vega module ' + name + ' is not loaded');\n"
          "  return asymbpModules[name];\n"
          "}</script>\n",
          f);
    for (int i = 0; i < N_MODULES; i++)
        fprintf(f, "<script>(function () {\nvar module = {exports: {}}, exports = module.exports, require = asymbpRequire, define;\n%s\n"
                   ";asymbpModules['%s'] = module.exports;\n})();</script>\n",
                lib->text[i], MODULES[i][1]);
    /* what the single-file build's entry point does for these modules */
    fputs("<script>var vega = (function (m) {\n"
          "  Object.assign(m['vega-dataflow'].transforms, m['vega-transforms'], m['vega-view-transforms'], m['vega-encode']);\n"
          "  var util = m['vega-util'];\n"
          "  return {parse: m['vega-parser'].parse, View: m['vega-view'].View, version: m['vega-view'].version, logger: util.logger, Warn: util.Warn};\n"
          "})(asymbpModules);</script>\n",
          f);
}

/* JSON is a JavaScript expression; inside <script> the characters that
 * could end it or open markup are written as \u escapes, which JSON only
 * allows (and needs) inside strings, where they mean the same. */
int vega_write_json(FILE *f, const json_t *v) {
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(6));
    if (!text) return 1;
    for (const char *p = text; *p; p++) {
        if (*p == '<' || *p == '>' || *p == '&') fprintf(f, "\\u%04x", (unsigned)*p);
        else fputc(*p, f);
    }
    free(text);
    return 0;
}

/* The x scale and axis: linear over whole epochs, or logarithmic. */
static void x_scale(json_t *spec, const VegaChart *c) {
    json_t *scale = json_pack("{s:s, s:s, s:{s:s, s:s}, s:s, s:b}", "name", "x", "type", c->x_log ? "log" : "linear", "domain", "data", "points", "field",
                              "x", "range", "width", "nice", !c->x_log);
    json_t *axis = json_pack("{s:s, s:s, s:s, s:s, s:s}", "orient", "bottom", "scale", "x", "title", c->x_title, "format", c->x_epochs ? "d" : "~g",
                             "labelOverlap", "greedy");
    if (c->x_epochs) json_object_set_new(axis, "tickMinStep", json_integer(1));
    if (!c->x_log) json_object_set_new(scale, "zero", json_false());
    json_array_append_new(json_object_get(spec, "scales"), scale);
    json_array_append_new(json_object_get(spec, "axes"), axis);
}

/* The y scale spans the values, and at least c->y_span, centred on them
 * (not below 0 when they are not): a curve that stays within rounding of
 * one value is drawn flat, not as noise blown up to the plot's height. */
static void y_scale(json_t *spec, const VegaChart *c, const json_t *values) {
    double lo = INFINITY, hi = -INFINITY;
    const json_t *v;
    size_t i;
    json_array_foreach(values, i, v) {
        double y = json_number_value(json_object_get(v, "y"));
        lo = y < lo ? y : lo, hi = y > hi ? y : hi;
    }
    json_t *scale = json_pack("{s:s, s:s, s:{s:s, s:s}, s:s, s:b, s:b}", "name", "y", "type", "linear", "domain", "data", "points", "field", "y", "range",
                              "height", "nice", 1, "zero", 0);
    if (hi - lo < c->y_span) {
        double from = (lo + hi - c->y_span) / 2;
        if (lo >= 0 && from < 0) from = 0;
        json_object_set_new(scale, "domain", json_pack("[f, f]", from, from + c->y_span));
    }
    json_array_append_new(json_object_get(spec, "scales"), scale);
    json_array_append_new(json_object_get(spec, "axes"),
                          json_pack("{s:s, s:s, s:s, s:b, s:i}", "orient", "left", "scale", "y", "title", c->y_title, "grid", 1, "tickCount", 6));
}

/* A colour per series (the legend's order is the data's), and with
 * c->dash a line style per kind of value (train, test). */
static void series_scales(json_t *spec, const VegaChart *c) {
    json_t *scales = json_object_get(spec, "scales"), *legends = json_object_get(spec, "legends");
    json_array_append_new(scales, json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s}}", "name", "color", "type", "ordinal", "domain", "data", "points", "field", "s",
                                            "range", "scheme", c->n_series > 10 ? "category20" : "category10"));
    json_array_append_new(legends, json_pack("{s:s, s:s, s:s, s:i, s:i}", "stroke", "color", "title", c->legend, "symbolType", "stroke", "symbolStrokeWidth",
                                             2, "labelLimit", 240));
    if (!c->dash) return;
    json_array_append_new(scales, json_pack("{s:s, s:s, s:{s:s, s:s}, s:[[i,i],[i,i],[i,i]]}", "name", "dash", "type", "ordinal", "domain", "data", "points",
                                            "field", "k", "range", 1, 0, 6, 3, 2, 2));
    json_array_append_new(legends, json_pack("{s:s, s:s, s:s, s:i}", "strokeDash", "dash", "title", c->dash, "symbolType", "stroke", "symbolStrokeWidth", 2));
}

/* A line per series (and kind), and a point per value with its numbers as
 * a tooltip: a run of one epoch, or a rule at one learning rate, still
 * shows. */
static void marks(json_t *spec, const VegaChart *c) {
    json_t *line = json_pack("{s:s, s:{s:s}, s:{s:s}, s:{s:{s:{s:s, s:s}, s:{s:s, s:s}, s:{s:s, s:s}, s:{s:i}}}}", "type", "line", "from", "data", "series", "sort", "field", "datum.x", "encode",
                             "enter", "x", "scale", "x", "field", "x", "y", "scale", "y", "field", "y", "stroke", "scale", "color", "field", "s",
                             "strokeWidth", "value", 2);
    if (c->dash)
        json_object_set_new(json_object_get(json_object_get(line, "encode"), "enter"), "strokeDash", json_pack("{s:s, s:s}", "scale", "dash", "field", "k"));
    json_t *group = json_pack("{s:s, s:{s:{s:s, s:s, s:[s,s]}}, s:[o]}", "type", "group", "from", "facet", "name", "series", "data", "points", "groupby",
                              "s", "k", "marks", line);
    json_t *dots = json_pack("{s:s, s:{s:s}, s:{s:{s:{s:s, s:s}, s:{s:s, s:s}, s:{s:s, s:s}, s:{s:i}, s:{s:s}}}}", "type", "symbol", "from", "data",
                             "points", "encode", "enter", "x", "scale", "x", "field", "x", "y", "scale", "y", "field", "y", "fill", "scale", "color", "field",
                             "s", "size", "value", 18, "tooltip", "signal",
                             "datum.s + (datum.k ? ', ' + datum.k : '') + ': ' + format(datum.y, '.4~g') + ' at ' + format(datum.x, '~g')");
    json_array_append_new(json_object_get(spec, "marks"), group);
    json_array_append_new(json_object_get(spec, "marks"), dots);
}

json_t *vega_chart(const VegaChart *c, json_t *values) {
    json_t *spec = json_pack("{s:s, s:i, s:i, s:i, s:{s:s, s:s}, s:{s:s, s:s, s:i}, s:[{s:s, s:o}], s:[], s:[], s:[], s:[]}", "$schema",
                             "https://vega.github.io/schema/vega/v5.json", "width", 250, "height", 160, "padding", 5, "autosize", "type", "pad", "contains",
                             "padding", "title", "text", c->title, "anchor", "start", "fontSize", 13, "data", "name", "points", "values", values, "scales",
                             "axes", "legends", "marks");
    if (!spec) return NULL;
    x_scale(spec, c);
    y_scale(spec, c, values);
    series_scales(spec, c);
    marks(spec, c);
    return spec;
}
