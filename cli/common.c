/* common.c: what the subcommands share: error lines, run folders, loading
 * an experiment with --set, rule lists, and reading back a finished run
 * (summary.json, log.jsonl, config.yaml). */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

int cli_fail(int code, const char *what) {
    fprintf(stderr, "asymbp: %s\n", what);
    return code;
}

int cli_failf(int code, const char *fmt, ...) {
    va_list ap;
    char *what = NULL;
    va_start(ap, fmt);
    if (vasprintf(&what, fmt, ap) < 0) what = NULL;
    va_end(ap);
    cli_fail(code, what ? what : fmt);
    free(what);
    return code;
}

int cli_mkdir_p(const char *dir) {
    char path[1024];
    snprintf(path, sizeof path, "%s", dir);
    for (char *p = path + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(path, 0755);
            *p = '/';
        }
    if (mkdir(path, 0755) && errno != EEXIST) return cli_failf(1, "%s: cannot create: %s", dir, strerror(errno));
    return 0;
}

int cli_load_experiment(const char *path, const char *const *sets, int n_sets, AsymConfig **cfg, AsymExperiment **ex) {
    if (asym_config_load(cfg, path)) return cli_fail(2, asym_last_error());
    int bad = 0;
    for (int i = 0; i < n_sets && !bad; i++) bad = asym_config_set(*cfg, sets[i]);
    if (bad || asym_experiment_open(ex, *cfg)) {
        cli_fail(2, asym_last_error());
        asym_config_free(*cfg);
        return 2;
    }
    return 0;
}

int cli_load_args(const CliArgs *a, const char *const *more, int n, AsymConfig **cfg, AsymExperiment **ex) {
    const char *sets[CLI_MAX_SETS];
    int k = a->n_sets;
    if (k + n > CLI_MAX_SETS) return cli_fail(2, "too many --set options");
    memcpy(sets, a->sets, (size_t)k * sizeof *sets);
    for (int i = 0; i < n; i++)
        if (more[i]) sets[k++] = more[i];
    return cli_load_experiment(a->positional, sets, k, cfg, ex);
}

AsymExperimentInfo cli_info(const AsymExperiment *ex) {
    AsymExperimentInfo info;
    asym_experiment_info(ex, &info);
    return info;
}

void cli_free_experiment(AsymConfig *cfg, AsymExperiment *ex) {
    asym_experiment_close(ex);
    asym_config_free(cfg);
}

int cli_rule_list(const char *list, const char *cmd, char (*rules)[16], int max) {
    char buf[256];
    int n = 0;
    snprintf(buf, sizeof buf, "%s", list);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        if (n == max) return cli_failf(-1, "%s: more than %d rules", cmd, max);
        if (!asym_rule_parse(tok)) {
            fprintf(stderr, "asymbp: %s: unknown rule '%s' (", cmd, tok);
            for (int r = 1; r <= asym_rule_count(); r++) fprintf(stderr, "%s%s", r > 1 ? ", " : "", asym_rule_name(r));
            return fprintf(stderr, ")\n"), -1;
        }
        snprintf(rules[n++], sizeof rules[0], "%s", tok);
    }
    if (!n) return cli_failf(-1, "%s: --rules is empty", cmd);
    return n;
}

char *cli_read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *text = NULL;
    size_t n = 0, cap = 0, got;
    do {
        if (n + 65536 + 1 > cap) {
            char *t = realloc(text, cap = 2 * cap + 65536 + 1);
            if (!t) break;
            text = t;
        }
        got = fread(text + n, 1, 65536, f);
        n += got;
    } while (got > 0);
    int bad = ferror(f) || !text || n + 1 > cap;
    fclose(f);
    if (bad) {
        free(text);
        if (!errno) errno = EIO;
        return NULL;
    }
    text[n] = 0;
    return text;
}

int cli_close_written(FILE *f) {
    errno = 0;
    int bad = fflush(f) != 0 || ferror(f), err = errno;
    if (fclose(f) != 0 && !bad) bad = 1, err = errno;
    errno = err ? err : EIO;
    return bad;
}

/* The data set a run used, from its config.yaml: the data folder's name
 * (fashion-mnist, cifar-10-batches-bin, ...) or the format. */
static void data_label(const char *run, char *out, size_t n) {
    char path[1200];
    AsymConfig *cfg;
    snprintf(out, n, "?");
    snprintf(path, sizeof path, "%s/config.yaml", run);
    if (asym_config_load(&cfg, path)) return;
    const char *fmt = asym_config_get(cfg, "data.format"), *p = asym_config_get(cfg, "data.path");
    if (fmt && !strcmp(fmt, "random")) {
        snprintf(out, n, "random");
    } else if (p) {
        char buf[1024];
        snprintf(buf, sizeof buf, "%s", p);
        size_t len = strlen(buf);
        while (len > 1 && buf[len - 1] == '/') buf[--len] = 0;
        const char *base = strrchr(buf, '/');
        snprintf(out, n, "%s", base ? base + 1 : buf);
    } else {
        snprintf(out, n, "%s", fmt ? fmt : "fashion-mnist");
    }
    asym_config_free(cfg);
}

int cli_read_log(const char *run, CliLogFn fn, void *ctx) {
    char path[1200];
    json_error_t jerr;
    snprintf(path, sizeof path, "%s/log.jsonl", run);
    FILE *f = fopen(path, "r");
    if (!f) return cli_failf(-1, "%s: cannot read: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    int rc = 0;
    for (long no = 1; !rc && getline(&line, &cap, f) >= 0; no++) {
        json_t *e = json_loads(line, 0, &jerr);
        if (!json_is_object(e)) rc = cli_failf(-1, "%s:%ld: not a JSON object: %s", path, no, e ? "another JSON value" : jerr.text);
        else rc = fn(ctx, e);
        json_decref(e);
    }
    if (!rc && ferror(f)) rc = cli_failf(-1, "%s: cannot read: %s", path, strerror(errno));
    free(line);
    fclose(f);
    return rc;
}

/* One epoch of cli_run_result: the best error so far. */
static int best_of(void *ctx, const json_t *e) {
    CliRunResult *r = ctx;
    json_t *val = json_object_get(e, "val_err"), *test = json_object_get(e, "test_err");
    if (val) r->validation = 1;
    json_t *m = r->validation ? val : test;
    if (json_is_number(m) && !(json_number_value(m) >= r->best_err)) {
        r->best_err = json_number_value(m);
        r->epoch = (int)json_integer_value(json_object_get(e, "epoch"));
    }
    r->epochs++;
    return 0;
}

int cli_run_result(const char *run, CliRunResult *r) {
    char path[1200];
    json_error_t jerr;
    memset(r, 0, sizeof *r);
    r->best_err = NAN;
    snprintf(path, sizeof path, "%s/summary.json", run);
    json_t *s = json_load_file(path, 0, &jerr);
    if (!s) return 0;
    const char *rule = json_string_value(json_object_get(s, "rule"));
    snprintf(r->rule, sizeof r->rule, "%s", rule ? rule : "?");
    snprintf(r->label, sizeof r->label, "%s", r->rule);
    r->seconds = json_number_value(json_object_get(s, "seconds"));
    r->diverged = json_is_true(json_object_get(s, "diverged"));
    json_decref(s);
    if (cli_read_log(run, best_of, r)) return -1;
    data_label(run, r->data, sizeof r->data);
    return 1;
}
