/* test_outputs.c: what the asymbp command writes and reads back. Every
 * write is checked (a full device fails the command with a message naming
 * the file), every log line is read (one that cannot be is an error naming
 * the file and line), a run that diverged before its first test error
 * records null, never a number, and is shown as "diverged", and every run
 * folder records the build that made it (version.json), which eval and
 * --resume compare with their own. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "asymbp.h"
#include "test.h"

/* A small, fast experiment on synthetic data: two epochs of four steps. */
static const char *tiny_cfg(void) {
    static char path[512];
    snprintf(path, sizeof path, "%s/tiny.yaml", test_tmpdir());
    test_write_file(path, "name: tiny\nseed: 3\nepochs: 2\nbatch_size: 16\n"
                          "data:\n  format: random\n  random: {n: 64, c: 1, h: 8, w: 8, classes: 4}\n"
                          "model:\n  layers:\n    - {type: conv, out: 4, k: 3, pad: 1}\n    - relu\n    - {type: maxpool, k: 2}\n"
                          "    - flatten\n    - {type: fc, out: 4}\n"
                          "optimizer: {name: sgd, lr: 0.05, momentum: 0.9}\n");
    return path;
}

/* The command with stdout sent to /dev/full; test_out gets its stderr. */
static int cli_stdout_full(const char *args) {
    const char *bin = getenv("ASYM_BIN") ? getenv("ASYM_BIN") : "build/asymbp";
    return test_sh(test_out, sizeof test_out, "cd '%s' && '%s' %s 2>&1 >/dev/full", test_srcdir(), bin, args);
}

static int have_dev_full(void) {
    if (access("/dev/full", W_OK) == 0) return 1;
    test_skip("no /dev/full to stand for a full disk");
    return 0;
}

TEST(outputs_table_bad_log_line) {
    char dir[512], run[600], path[700];
    snprintf(dir, sizeof dir, "%s/runs", test_tmpdir());
    snprintf(run, sizeof run, "%s/a", dir);
    int rc = test_cli("train '%s' --out '%s' --quiet", tiny_cfg(), run);
    CHECK_MSG(rc == 0, "train failed:\n%s", test_out);
    CHECK_MSG(test_cli("table '%s'", dir) == 0, "%s", test_out);
    /* a third line that is not JSON: an error naming the file and line, not a row without it */
    snprintf(path, sizeof path, "%s/log.jsonl", run);
    FILE *f = fopen(path, "a");
    CHECK(f);
    fputs("{\"epoch\": 3, \"test_err\": 0.1\n", f);
    fclose(f);
    rc = test_cli("table '%s'", dir);
    char want[800];
    snprintf(want, sizeof want, "%s:3:", path);
    CHECK_MSG(rc != 0 && strstr(test_out, want), "exit %d, expected '%s':\n%s", rc, want, test_out);
    /* a line that is JSON but not an epoch's object */
    char *text = test_read_file(path);
    CHECK(text);
    char *third = strchr(strchr(text, '\n') + 1, '\n') + 1;
    strcpy(third, "[1, 2]\n");
    test_write_file(path, text);
    free(text);
    rc = test_cli("table '%s'", dir);
    CHECK_MSG(rc != 0 && strstr(test_out, want), "exit %d, expected '%s':\n%s", rc, want, test_out);
    /* a log that is gone */
    remove(path);
    rc = test_cli("table '%s'", dir);
    CHECK_MSG(rc != 0 && strstr(test_out, "log.jsonl: cannot read"), "exit %d:\n%s", rc, test_out);
}

TEST(outputs_full_device) {
    if (!have_dev_full()) return;
    char run[512], link[600], out[512], args[1400];
    /* steps.jsonl on a full disk: the run fails naming it, and leaves no summary */
    snprintf(run, sizeof run, "%s/steps_full", test_tmpdir());
    CHECK(mkdir(run, 0755) == 0);
    snprintf(link, sizeof link, "%s/steps.jsonl", run);
    CHECK(symlink("/dev/full", link) == 0);
    int rc = test_cli("train '%s' --set log_steps=true --out '%s' --quiet", tiny_cfg(), run);
    CHECK_MSG(rc == 1 && strstr(test_out, "steps.jsonl: write failed"), "exit %d:\n%s", rc, test_out);
    CHECK(!test_exists(run, "summary.json"));
    /* log.jsonl likewise */
    snprintf(run, sizeof run, "%s/log_full", test_tmpdir());
    CHECK(mkdir(run, 0755) == 0);
    snprintf(link, sizeof link, "%s/log.jsonl", run);
    CHECK(symlink("/dev/full", link) == 0);
    rc = test_cli("train '%s' --out '%s' --quiet", tiny_cfg(), run);
    CHECK_MSG(rc == 1 && strstr(test_out, "log.jsonl: write failed"), "exit %d:\n%s", rc, test_out);
    CHECK(!test_exists(run, "summary.json"));

    /* table's files, and its standard output */
    snprintf(run, sizeof run, "%s/runs/a", test_tmpdir());
    rc = test_cli("train '%s' --out '%s' --quiet", tiny_cfg(), run);
    CHECK_MSG(rc == 0, "train failed:\n%s", test_out);
    snprintf(run, sizeof run, "%s/runs", test_tmpdir());
    const char *files[] = {"table.md", "table.csv"};
    for (int i = 0; i < 2; i++) {
        snprintf(out, sizeof out, "%s/table_%d", test_tmpdir(), i);
        CHECK(mkdir(out, 0755) == 0);
        snprintf(link, sizeof link, "%s/%s", out, files[i]);
        CHECK(symlink("/dev/full", link) == 0);
        rc = test_cli("table '%s' --out '%s'", run, out);
        CHECK_MSG(rc != 0 && strstr(test_out, link) && strstr(test_out, "write failed"), "%s on a full disk: exit %d:\n%s", files[i], rc, test_out);
    }
    rc = test_cli("table '%s' --out /proc/asymbp-table", run);
    CHECK_MSG(rc != 0 && strstr(test_out, "/proc/asymbp-table"), "exit %d:\n%s", rc, test_out);
    snprintf(args, sizeof args, "table '%s'", run);
    rc = cli_stdout_full(args);
    CHECK_MSG(rc != 0 && strstr(test_out, "standard output: write failed"), "table >/dev/full: exit %d:\n%s", rc, test_out);

    /* compare: a config.yaml it cannot write stops it; its table on a full disk fails it */
    snprintf(out, sizeof out, "%s/compare_full", test_tmpdir());
    snprintf(link, sizeof link, "%s/fa", out);
    CHECK(mkdir(out, 0755) == 0 && mkdir(link, 0755) == 0);
    snprintf(link, sizeof link, "%s/fa/config.yaml", out);
    CHECK(symlink("/dev/full", link) == 0);
    rc = test_cli("compare '%s' --rules bp,fa --out '%s' --quiet", tiny_cfg(), out);
    CHECK_MSG(rc == 1 && strstr(test_out, link), "exit %d:\n%s", rc, test_out);
    snprintf(args, sizeof args, "compare '%s' --rules bp --out '%s/compare_ok' --quiet", tiny_cfg(), test_tmpdir());
    rc = cli_stdout_full(args);
    CHECK_MSG(rc != 0 && strstr(test_out, "standard output: write failed"), "compare >/dev/full: exit %d:\n%s", rc, test_out);
}

TEST(outputs_first_epoch_divergence) {
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/div/bp", test_tmpdir());
    int rc = test_cli("train '%s' --set optimizer.lr=1e5 --out '%s' --quiet", tiny_cfg(), dir);
    CHECK_MSG(rc == 1 && strstr(test_out, "diverged"), "exit %d:\n%s", rc, test_out);
    snprintf(path, sizeof path, "%s/summary.json", dir);
    json_error_t jerr;
    json_t *s = json_load_file(path, 0, &jerr);
    CHECK_MSG(s, "%s: %s", path, jerr.text);
    int epochs = (int)json_integer_value(json_object_get(s, "epochs"));
    int ok = json_is_true(json_object_get(s, "diverged")) && json_is_null(json_object_get(s, "best_test_err")) &&
             json_is_null(json_object_get(s, "final_test_err")) && epochs == 0;
    json_decref(s);
    char *text = test_read_file(path);
    CHECK_MSG(ok, "expected null errors and \"diverged\": true in:\n%s", text ? text : "(unreadable)");
    free(text);
    /* table and compare say "diverged", never a number */
    snprintf(dir, sizeof dir, "%s/div", test_tmpdir());
    rc = test_cli("table '%s'", dir);
    CHECK_MSG(rc == 0 && strstr(test_out, "diverged") && !strstr(test_out, "-100") && !strstr(test_out, "-1.0"), "exit %d:\n%s", rc, test_out);
    rc = test_cli("compare '%s' --rules bp --set optimizer.lr=1e5 --out '%s/cmp' --quiet", tiny_cfg(), test_tmpdir());
    CHECK_MSG(rc == 1 && strstr(test_out, "| bp | diverged | diverged |") && !strstr(test_out, "-100"), "exit %d:\n%s", rc, test_out);
}

/* The run's version.json with value put in place of the text after "key": . */
static int edit_version(const char *dir, const char *key, const char *value) {
    char path[600], pat[64], buf[4096];
    snprintf(path, sizeof path, "%s/version.json", dir);
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    char *text = test_read_file(path), *p = text ? strstr(text, pat) : NULL;
    if (!p) {
        free(text);
        return 0;
    }
    p += strlen(pat);
    char *end = p + (*p == '"' ? strcspn(p + 1, "\"") + 2 : strcspn(p, ",}"));
    snprintf(buf, sizeof buf, "%.*s%s%s", (int)(p - text), text, value, end);
    test_write_file(path, buf);
    free(text);
    return 1;
}

TEST(outputs_version_recorded) {
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/ver", test_tmpdir());
    int rc = test_cli("train '%s' --out '%s' --quiet", tiny_cfg(), dir);
    CHECK_MSG(rc == 0, "train failed:\n%s", test_out);
    /* version.json holds what `asymbp version` prints, and summary.json the same */
    snprintf(path, sizeof path, "%s/version.json", dir);
    char *file = test_read_file(path);
    CHECK_MSG(file, "no %s", path);
    CHECK(test_cli("--version") == 0);
    const char *line = strstr(test_out, "version.json: ");
    CHECK_MSG(line && !strncmp(line + 14, file, strlen(file)), "asymbp --version:\n%s\nversion.json:\n%s", test_out, file);
    CHECK(strstr(file, "\"commit\": \"") && strstr(file, "\"flags\": \"") && strstr(file, "\"convolutions\": \"") && strstr(file, "\"threads\": "));
    snprintf(path, sizeof path, "%s/summary.json", dir);
    char *sum = test_read_file(path), obj[2048];
    snprintf(obj, sizeof obj, "\"version\": %.*s", (int)strcspn(file, "\n"), file);
    CHECK_MSG(sum && strstr(sum, obj), "summary.json lacks %s:\n%s", obj, sum ? sum : "(missing)");
    free(sum);
    free(file);

    /* the same build: no note */
    rc = test_cli("eval '%s'", dir);
    CHECK_MSG(rc == 0 && !strstr(test_out, "note:"), "exit %d:\n%s", rc, test_out);
    rc = test_cli("train --resume '%s' --quiet", dir);
    CHECK_MSG(rc == 0 && !strstr(test_out, "note:"), "exit %d:\n%s", rc, test_out);

    /* another commit and thread count: one line saying so, and the command still runs */
    CHECK(edit_version(dir, "commit", "\"0123456789ab\"") && edit_version(dir, "threads", "7"));
    rc = test_cli("eval '%s'", dir);
    CHECK_MSG(rc == 0 && strstr(test_out, "error ") && strstr(test_out, "note: ") && strstr(test_out, "commit 0123456789ab (this: ") &&
                  strstr(test_out, "threads 7 (this: ") && strstr(test_out, "may differ in the last bits"),
              "exit %d:\n%s", rc, test_out);
    rc = test_cli("train --resume '%s' --quiet", dir);
    CHECK_MSG(rc == 0 && strstr(test_out, "commit 0123456789ab (this: ") && strstr(test_out, "final test error"), "exit %d:\n%s", rc, test_out);
    /* resumed by this build, the earlier one is kept and still named */
    snprintf(path, sizeof path, "%s/version.json", dir);
    file = test_read_file(path);
    CHECK_MSG(file && strstr(file, "\"resumed_from\": {") && strstr(file, "0123456789ab"), "%s:\n%s", path, file ? file : "(missing)");
    free(file);
    rc = test_cli("eval '%s'", dir);
    CHECK_MSG(rc == 0 && strstr(test_out, "note: part of ") && strstr(test_out, "commit 0123456789ab"), "exit %d:\n%s", rc, test_out);
    /* training again from the run folder's config.yaml */
    rc = test_cli("train '%s/config.yaml' --out '%s/ver2' --quiet", dir, test_tmpdir());
    CHECK_MSG(rc == 0 && strstr(test_out, "commit 0123456789ab"), "exit %d:\n%s", rc, test_out);

    /* a run from before version.json */
    remove(path);
    rc = test_cli("eval '%s'", dir);
    CHECK_MSG(rc == 0 && strstr(test_out, "note: ") && strstr(test_out, "no version.json") && strstr(test_out, "unknown"), "exit %d:\n%s", rc, test_out);
}
