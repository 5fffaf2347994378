/* test_report.c: `asymbp report` looked at as a person would. Headless
 * Chromium opens the page of two short runs and a sweep: the page must say
 * that it drew every plot without a script error, each plot must be an SVG
 * with lines, a run folder named like markup must show as text, and a
 * screenshot must show coloured lines, not a blank page. Bad input (a
 * missing folder, one without log.jsonl, a broken log, no Vega) gives one
 * line and a nonzero exit, and writes nothing. Without Chromium the page
 * test skips (fails under CI=true). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stb/stb_image.h>

#include "test.h"

/* The tests' own folder under the runner's temporary folder: other tests
 * write folders named sweep or missing there too. */
static const char *rdir(void) {
    static char dir[300];
    if (!*dir) {
        snprintf(dir, sizeof dir, "%s/report", test_tmpdir());
        mkdir(dir, 0755);
    }
    return dir;
}

/* A fa MLP with two weight layers on 256 random images: three epochs in
 * well under a second. */
static const char *report_cfg(void) {
    static char path[512];
    snprintf(path, sizeof path, "%s/report.yaml", rdir());
    test_write_file(path, "name: report\nseed: 5\nepochs: 3\nbatch_size: 32\nrule: fa\n"
                          "data:\n  format: random\n  random: {n: 256, c: 1, h: 8, w: 8, classes: 4}\n"
                          "model:\n  layers:\n    - flatten\n    - {type: fc, out: 16}\n    - relu\n    - {type: fc, out: 4}\n"
                          "optimizer: {name: sgd, lr: 0.05, momentum: 0.9}\n");
    return path;
}

/* Trains report_cfg with extra into <tmp>/name; 0 on success. */
static int train(const char *name, const char *extra, char *dir, size_t n) {
    snprintf(dir, n, "%s/%s", rdir(), name);
    int rc = test_cli("train '%s' %s --out '%s' --quiet", report_cfg(), extra, dir);
    if (rc) printf("    train %s failed (%d):\n%s", name, rc, test_out);
    return rc;
}

/* rc is nonzero and the output one line holding want. */
static int one_line(int rc, const char *want) {
    char *nl = strchr(test_out, '\n');
    if (rc != 0 && nl && !nl[1] && strstr(test_out, want)) return 1;
    printf("    exit %d, expected one line with '%s':\n%s", rc, want, test_out);
    return 0;
}

TEST(report_bad_input) {
    char run[512], page[600], empty[600], path[700];
    CHECK(train("bad_run", "", run, sizeof run) == 0);
    snprintf(page, sizeof page, "%s/bad.html", rdir());
    snprintf(empty, sizeof empty, "%s/no_log", rdir());
    CHECK(mkdir(empty, 0755) == 0);
    CHECK(one_line(test_cli("report '%s/missing' --out '%s'", rdir(), page), "missing: No such file or directory"));
    CHECK(one_line(test_cli("report '%s' --out '%s'", empty, page), "no_log: no log.jsonl"));
    CHECK(one_line(test_cli("report '%s'", run), "usage: asymbp report"));
    /* no Vega: the file and the package named */
    int rc = test_sh(test_out, sizeof test_out, "cd '%s' && ASYMBP_VEGA=/nonexistent/vega.min.js '%s' report '%s' --out '%s' 2>&1", test_srcdir(),
                     test_asym_bin(), run, page);
    CHECK(one_line(rc, "/nonexistent/vega.min.js: No such file or directory; install Debian's libjs-vega"));
    /* a log line that is not JSON: its file and line */
    snprintf(path, sizeof path, "%s/log.jsonl", run);
    FILE *f = fopen(path, "a");
    CHECK(f);
    fputs("{\"epoch\": 4,\n", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/log.jsonl:4:", run);
    CHECK(one_line(test_cli("report '%s' --out '%s'", run, page), path));
    CHECK_MSG(access(page, F_OK) != 0, "%s was written by a report that failed", page);
}

/* Chromium, or NULL with the test marked skipped. */
static const char *chromium(void) {
    if (test_system("command -v chromium >/dev/null 2>&1") == 0) return "chromium";
    test_skip("chromium is not installed (Debian package chromium), so the report page cannot be opened");
    return NULL;
}

/* Headless Chromium on page with args (its output to out), a profile of its
 * own, its chatter on stderr dropped; the exit status. */
static int look(const char *page, const char *args, const char *out) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "timeout 120 chromium --headless --no-sandbox --disable-gpu --no-first-run --user-data-dir='%s/chromium' "
             "--virtual-time-budget=20000 --hide-scrollbars %s 'file://%s' >'%s' 2>/dev/null",
             rdir(), args, page, out);
    return test_system(cmd);
}

/* The value of attribute name in the <body> tag of dom, into v. */
static int body_attr(const char *dom, const char *name, char *v, size_t n) {
    const char *body = strstr(dom, "<body"), *end = body ? strchr(body, '>') : NULL, *a;
    char key[64];
    snprintf(key, sizeof key, " %s=\"", name);
    v[0] = 0;
    if (!end || !(a = strstr(body, key)) || a > end) return 0;
    a += strlen(key);
    const char *q = strchr(a, '"');
    snprintf(v, n, "%.*s", (int)(q - a), a);
    return 1;
}

/* Every plot of the page, plot-0 to plot-(n-1), holds an SVG with a line. */
static int plots_drawn(const char *dom, int n) {
    for (int i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof id, "id=\"plot-%d\"", i);
        const char *p = strstr(dom, id), *next = p ? strstr(p + 1, "id=\"plot-") : NULL;
        size_t len = p ? (next ? (size_t)(next - p) : strlen(p)) : 0;
        char *part = p ? strndup(p, len) : NULL;
        int ok = part && strstr(part, "<svg") && strstr(part, "mark-line") && strstr(part, " d=\"M");
        free(part);
        if (!ok) return printf("    plot-%d: %s\n", i, p ? "no SVG line in it" : "missing"), 0;
    }
    if (strstr(dom, "id=\"plot-") && !strstr(dom, "id=\"plot-0\"")) return 0;
    return 1;
}

/* Pixels of the screenshot png: how many are not near white, and how many
 * are strongly coloured (the plots' lines; text and axes are grey). */
static int screenshot_pixels(const char *png, int *ink, int *colour) {
    int w, h, c;
    unsigned char *px = stbi_load(png, &w, &h, &c, 3);
    if (!px) return printf("    %s: %s\n", png, stbi_failure_reason()), 0;
    *ink = *colour = 0;
    for (long i = 0; i < (long)w * h; i++) {
        int r = px[3 * i], g = px[3 * i + 1], b = px[3 * i + 2];
        int hi = r > g ? (r > b ? r : b) : (g > b ? g : b), lo = r < g ? (r < b ? r : b) : (g < b ? g : b);
        *ink += lo < 200;
        *colour += hi - lo > 80;
    }
    stbi_image_free(px);
    return 1;
}

/* Two runs (bp, and fa in a folder named like markup) and a sweep of both
 * rules at two learning rates, on one page. */
static int make_page(char *page, size_t n) {
    char run[512], odd[600], sweep[600];
    snprintf(odd, sizeof odd, "%s/<!--<script>'\"&", rdir());
    snprintf(sweep, sizeof sweep, "%s/sweep", rdir());
    snprintf(page, n, "%s/page.html", rdir());
    if (train("odd", "", run, sizeof run) || rename(run, odd) || train("bp", "--set rule=bp", run, sizeof run)) return 1;
    int rc = test_cli("sweep '%s' --rules bp,fa --lr-mult 1,0.1 --out '%s' --quiet", report_cfg(), sweep);
    if (rc) return printf("    sweep failed (%d):\n%s", rc, test_out), 1;
    rc = test_cli("report '%s' %s/'<!--<script>'\\''\"&' '%s' --out '%s'", run, rdir(), sweep, page);
    if (rc || !strstr(test_out, "report of 6 runs")) return printf("    report failed (%d):\n%s", rc, test_out), 1;
    return 0;
}

TEST(report_page_draws_in_chromium) {
    char page[600], dom[600], png[600], status[64], plots[64], why[256];
    CHECK(make_page(page, sizeof page) == 0);
    if (!chromium()) return;
    snprintf(dom, sizeof dom, "%s/page.dom.html", rdir());
    snprintf(png, sizeof png, "%s/page.png", rdir());
    CHECK_MSG(look(page, "--dump-dom", dom) == 0, "chromium --dump-dom %s failed", page);
    char *text = test_read_file(dom);
    CHECK(text);
    body_attr(text, "data-report", status, sizeof status);
    body_attr(text, "data-plots", plots, sizeof plots);
    body_attr(text, "data-error", why, sizeof why);
    /* error and loss; 3 measures of 2 layers; the sweep's error against learning rate */
    int ok = !strcmp(status, "ok") && atoi(plots) == 9 && plots_drawn(text, 9) && !strstr(text, "id=\"plot-9\"");
    int escaped = strstr(text, "<td>&lt;!--&lt;script&gt;'\"&amp;</td>") != NULL;
    free(text);
    CHECK_MSG(ok, "the page says data-report=\"%s\" data-plots=\"%s\" (expected ok, 9)%s%s", status, plots, *why ? ": " : "", why);
    CHECK_MSG(escaped, "the run named <!--<script>'\"& is not shown as text in the runs table");
    char args[700];
    snprintf(args, sizeof args, "--window-size=1200,1400 --screenshot='%s'", png);
    CHECK_MSG(look(page, args, "/dev/null") == 0, "chromium --screenshot failed");
    int ink, colour;
    CHECK(screenshot_pixels(png, &ink, &colour));
    CHECK_MSG(ink > 20000 && colour > 1500, "the screenshot looks blank: %d pixels not white, %d coloured", ink, colour);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s/chromium'", rdir());
    test_system(cmd);
}
