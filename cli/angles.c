/* angles.c: `asymbp angles RUN_DIR [--every N]`: the angle between B and W
 * of every weight layer over training, read from the run's log.jsonl, as a
 * table with a row per logged epoch (every Nth, and always the first and
 * last) and a column per layer, then the mean over layers that have a B. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void print_row(const json_t *e) {
    json_t *layers = json_object_get(e, "layers"), *l, *mean = json_object_get(e, "mean_angle");
    size_t i;
    printf("%5d", (int)json_integer_value(json_object_get(e, "epoch")));
    json_array_foreach(layers, i, l) {
        json_t *a = json_object_get(l, "angle");
        if (json_is_number(a)) printf("  %8.1f", json_number_value(a));
        else printf("  %8s", "-");
    }
    if (json_is_number(mean)) printf("  %8.1f\n", json_number_value(mean));
    else printf("  %8s\n", "-");
}

int cmd_angles(int argc, char **argv) {
    const char *run = NULL;
    int every = 1;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--every") && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 1 || v > 1000000) return cli_failf(2, "angles: --every: expected a positive count, got '%s'", argv[i]);
            every = (int)v;
        } else if (argv[i][0] == '-' || run) {
            return cli_failf(2, "angles: unexpected argument '%s'", argv[i]);
        } else {
            run = argv[i];
        }
    }
    if (!run) return cli_fail(2, "usage: asymbp angles RUN_DIR [--every N]");
    char path[1100], line[1 << 16];
    snprintf(path, sizeof path, "%s/log.jsonl", run);
    FILE *f = fopen(path, "r");
    if (!f) return cli_failf(1, "%s: cannot read", path);
    json_t *last = NULL;
    int n = 0, lineno = 0, rc = 0;
    while (fgets(line, sizeof line, f)) {
        json_error_t err;
        lineno++;
        json_t *e = json_loads(line, 0, &err);
        if (!e || !json_is_array(json_object_get(e, "layers"))) {
            fprintf(stderr, "asymbp: %s:%d: not an epoch record%s%s\n", path, lineno, e ? "" : ": ", e ? "" : err.text);
            json_decref(e);
            rc = 1;
            break;
        }
        if (n == 0) {
            json_t *l;
            size_t i;
            printf("angle between B and W (degrees) per weight layer, %s\nepoch", run);
            json_array_foreach(json_object_get(e, "layers"), i, l) {
                const char *name = json_string_value(json_object_get(l, "name")), *rule = json_string_value(json_object_get(l, "rule"));
                char head[64];
                snprintf(head, sizeof head, "%s:%s", name ? name : "?", rule ? rule : "?");
                printf("  %8.8s", head);
            }
            printf("  %8s\n", "mean");
        }
        int epoch = (int)json_integer_value(json_object_get(e, "epoch"));
        if (n == 0 || epoch % every == 0) {
            print_row(e);
            json_decref(last);
            last = NULL;
            json_decref(e);
        } else {
            json_decref(last);
            last = e;
        }
        n++;
    }
    fclose(f);
    if (last) print_row(last);
    json_decref(last);
    if (!rc && n == 0) return fprintf(stderr, "asymbp: %s: no epochs logged\n", path), 1;
    return rc;
}
