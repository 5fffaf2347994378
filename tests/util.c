/* util.c: helpers shared by the end-to-end tests (test.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <jansson.h>
#include <math.h>

#include "test.h"

char test_out[65536];

int test_sh(char *out, size_t cap, const char *fmt, ...) {
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    out[0] = 0;
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = 0;
    while (fgetc(p) != EOF) {}
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int test_cli(const char *fmt, ...) {
    char args[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    const char *bin = getenv("ASYM_BIN") ? getenv("ASYM_BIN") : "build/asymbp";
    return test_sh(test_out, sizeof test_out, "cd '%s' && '%s' %s 2>&1", test_srcdir(), bin, args);
}

int test_exists(const char *dir, const char *name) {
    char path[1024];
    struct stat sb;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &sb) == 0;
}

int test_have_fmnist(void) {
    if (access(TEST_FMNIST "/train-images-idx3-ubyte.gz", R_OK) == 0) return 1;
    test_skip("Fashion-MNIST is not installed in " TEST_FMNIST " (dataset-fashion-mnist)");
    return 0;
}

const char *test_python(void) {
    const char *p = getenv("ASYMBP_PYTHON");
    return p && *p ? p : "/usr/bin/python3";
}

void test_no_oracle(const char *file, int line, const char *fmt, ...) {
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    const char *req = getenv("ASYM_REQUIRE_ORACLES");
    if (req && *req && strcmp(req, "0"))
        test_fail(file, line, "%s; ASYM_REQUIRE_ORACLES is set (make check), so the oracle tests may not skip: "
                  "install python3-torch and python3-numpy, or set ASYMBP_PYTHON to a Python that has them", why);
    else
        test_skip("%s", why);
}

void test_write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

char *test_read_file_n(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (len) *len = 0;
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (s && fread(s, 1, (size_t)n, f) == (size_t)n) s[n] = 0;
    else free(s), s = NULL;
    fclose(f);
    if (s && len) *len = (size_t)n;
    return s;
}

char *test_read_file(const char *path) { return test_read_file_n(path, NULL); }

/* ---- the PyTorch oracle of the feedback rules (test_oracle_rules.c,
 * test_rules_direct.c) ---- */

#define BATCH 16 /* the oracle probes' batch */

const char *test_asym_bin(void) { return getenv("ASYM_BIN") ? getenv("ASYM_BIN") : "build/asymbp"; }

/* Exit status of a shell command, -1 when it did not exit normally. */
int test_system(const char *cmd) {
    int st = system(cmd);
    return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Prints a file's contents indented (the output of a failed command). */
void test_show(const char *path) {
    FILE *f = fopen(path, "r");
    char line[1024];
    if (!f) return;
    while (fgets(line, sizeof line, f)) printf("      %s", line);
    fclose(f);
}

/* Whether the oracle can run: PyTorch importable by test_python() and not
 * switched off by ASYM_NO_TORCH. When it cannot, the test skips, or fails
 * under make check (TEST_NO_ORACLE), saying why. */
int test_have_torch(void) {
    static int known = -1;
    static char why[512];
    if (known < 0) {
        char cmd[1024];
        snprintf(cmd, sizeof cmd, "'%s' -c 'import torch, numpy' >/dev/null 2>&1", test_python());
        if (getenv("ASYM_NO_TORCH")) {
            known = 0;
            snprintf(why, sizeof why, "ASYM_NO_TORCH is set");
        } else if (test_system(cmd) != 0) {
            known = 0;
            snprintf(why, sizeof why, "'%s' cannot import torch and numpy (set ASYMBP_PYTHON to an interpreter that can)", test_python());
        } else {
            known = 1;
        }
    }
    if (!known && getenv("ASYM_NO_TORCH")) test_skip("PyTorch oracle not run: %s", why);
    else if (!known) TEST_NO_ORACLE("PyTorch oracle not run: %s", why);
    return known;
}

static int oracle_have_fmnist(void) {
    return access(TEST_FMNIST "/train-images-idx3-ubyte.gz", R_OK) == 0 || access(TEST_FMNIST "/train-images-idx3-ubyte", R_OK) == 0;
}

/* The shell command that runs `asymbp probe` for one case into
 * <tmp>/rules-<tag> (log in <dir>.probe.txt, exit status in <dir>.rc); the
 * group's options opts go to the probe too. */
static void probe_cmd(const OracleCase *c, const char *tag, const char *opts, char *dir, size_t n, char *cmd, size_t m) {
    snprintf(dir, n, "%s/rules-%s", test_tmpdir(), tag);
    /* passive waiting: spinning OpenMP threads crawl when the cores are shared */
    snprintf(cmd, m,
             "(rm -rf '%s' && OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive} '%s' probe '%s/tests/oracle/rules_%s.yaml' %s %s --batch %d --steps %d --out '%s' >'%s.probe.txt' 2>&1;"
             " echo $? >'%s.rc')",
             dir, test_asym_bin(), test_srcdir(), c->net, c->extra ? c->extra : "", opts ? opts : "", BATCH, c->steps, dir, dir, dir);
}

/* The exit status a probe command left in <dir>.rc; prints its log when
 * it failed. */
static int probe_status(const OracleCase *c, const char *opts, const char *dir) {
    char path[1200];
    int rc = -1;
    snprintf(path, sizeof path, "%s.rc", dir);
    FILE *f = fopen(path, "r");
    if (f) {
        if (fscanf(f, "%d", &rc) != 1) rc = -1;
        fclose(f);
    }
    if (rc != 0) {
        printf("    asymbp probe of rules_%s.yaml %s %s exited with %d:\n", c->net, c->extra ? c->extra : "", opts ? opts : "", rc);
        snprintf(path, sizeof path, "%s.probe.txt", dir);
        test_show(path);
    }
    return rc;
}

int test_probe(const OracleCase *c, const char *tag, const char *opts, char *dir, size_t n) {
    char cmd[8192];
    probe_cmd(c, tag, opts, dir, n, cmd, sizeof cmd);
    test_system(cmd);
    return probe_status(c, opts, dir);
}

/* The rules the manifest's weight layers resolved to, comma-separated. */
int test_manifest_rules(const char *dir, char *out, size_t n) {
    char path[1200];
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    static char text[1 << 16];
    size_t len = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[len] = 0;
    const char *p = strstr(text, "\"weight_layers\"");
    size_t off = 0;
    out[0] = 0;
    while (p && (p = strstr(p, "\"rule\": \""))) {
        p += 9;
        const char *q = strchr(p, '"');
        if (!q) break;
        off += (size_t)snprintf(out + off, off < n ? n - off : 0, "%s%.*s", off ? "," : "", (int)(q - p), p);
        p = q;
    }
    return 0;
}

/* Probes every case (the MLPs only with Fashion-MNIST installed), checks
 * the resolved rules, and runs the oracle once on all the probes with the
 * group's options; every probe must agree. */
void test_oracle_group(const char *group, const OracleCase *cases, int n, const char *opts) {
    char dirs[16][1024], tags[16][160], log[1200], cmd[16384], line[2048];
    int nd = 0, fm = oracle_have_fmnist();
    if (!test_have_torch()) return;
    CHECK(n <= 16);
    /* the probes run side by side */
    const OracleCase *run[16];
    int off = 0;
    for (int i = 0; i < n; i++) {
        const OracleCase *c = &cases[i];
        if (!fm && !strncmp(c->net, "mlp", 3)) {
            test_skip("Fashion-MNIST is not installed in " TEST_FMNIST ": the %s probes left out", c->net);
            continue;
        }
        char one[8192];
        snprintf(tags[nd], sizeof tags[nd], "%s-%d-%s", group, i, c->net);
        probe_cmd(c, tags[nd], opts, dirs[nd], sizeof dirs[nd], one, sizeof one);
        off += snprintf(cmd + off, sizeof cmd - off, "%s & ", one);
        run[nd++] = c;
    }
    if (!nd) return;
    snprintf(cmd + off, sizeof cmd - off, "wait");
    CHECK_MSG(off < (int)sizeof cmd - 8, "probe command too long");
    test_system(cmd);
    for (int i = 0; i < nd; i++) {
        const OracleCase *c = run[i];
        CHECK_MSG(probe_status(c, opts, dirs[i]) == 0, "asymbp probe failed (%s, %s)", group, tags[i]);
        if (c->rules) {
            char got[512];
            CHECK_MSG(test_manifest_rules(dirs[i], got, sizeof got) == 0, "%s: no manifest", dirs[i]);
            CHECK_MSG(!strcmp(got, c->rules), "rules_%s.yaml %s: weight layers resolved to %s, expected %s", c->net, c->extra, got, c->rules);
        }
    }
    snprintf(log, sizeof log, "%s/rules-%s.oracle.txt", test_tmpdir(), group);
    off = snprintf(cmd, sizeof cmd, "'%s' '%s/tests/oracle/torch_oracle.py' -q %s", test_python(), test_srcdir(), opts ? opts : "");
    for (int i = 0; i < nd; i++) off += snprintf(cmd + off, sizeof cmd - off, " '%s'", dirs[i]);
    snprintf(cmd + off, sizeof cmd - off, " >'%s' 2>&1", log);
    int rc = test_system(cmd);
    FILE *f = fopen(log, "r");
    CHECK_MSG(f, "no oracle output %s", log);
    int k = 0, bad = 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "torch_oracle: ", 14)) continue;
        int ok = strstr(line, " tensors, 0 failed;") != NULL;
        printf("    %s%s: %s", ok ? "" : "DISAGREE ", k < nd ? tags[k] : "?", line + 14);
        bad |= !ok;
        k++;
    }
    fclose(f);
    if (rc != 0 || bad || k != nd) test_show(log);
    CHECK_MSG(k == nd, "torch_oracle.py printed %d summaries for %d probes (exit %d)", k, nd, rc);
    CHECK_MSG(!bad && rc == 0, "asymbp and PyTorch disagree under %s%s%s (torch_oracle.py exit %d)", group, opts ? " " : "", opts ? opts : "", rc);
}

/* ---- end-to-end runs (test_e2e.c, test_rules_direct.c) ---- */

int test_e2e_seed(void) {
    const char *s = getenv("ASYM_E2E_SEED");
    return s && atoi(s) > 0 ? atoi(s) : 1;
}

void test_run_free(E2eRun *r) {
    json_decref(r->summary);
    json_decref(r->last);
    memset(r, 0, sizeof *r);
}

/* Trains `config` with the extra --set arguments and the test's seed into
 * a folder named tag; 0 on success, with the run read back. */
int test_train(E2eRun *r, const char *tag, const char *config, const char *sets) {
    char dir[600], path[700];
    memset(r, 0, sizeof *r);
    snprintf(dir, sizeof dir, "%s/e2e_%s", test_tmpdir(), tag);
    int rc = test_cli("train %s %s --set seed=%d --out '%s' --quiet", config, sets, test_e2e_seed(), dir);
    if (rc) {
        printf("    %s: train failed (%d):\n%s", tag, rc, test_out);
        return -1;
    }
    json_error_t e;
    snprintf(path, sizeof path, "%s/summary.json", dir);
    if (!(r->summary = json_load_file(path, 0, &e))) {
        printf("    %s: %s\n", path, e.text);
        return -1;
    }
    snprintf(path, sizeof path, "%s/log.jsonl", dir);
    char *log = test_read_file(path);
    if (!log) return -1;
    char *line = log, *nl;
    while ((nl = strchr(line, '\n')) && nl[1]) line = nl + 1;
    r->last = json_loads(line, JSON_DISABLE_EOF_CHECK, &e);
    free(log);
    json_t *b = json_object_get(r->summary, "best_test_err");
    r->err = json_is_number(b) ? json_number_value(b) : NAN;
    return r->last ? 0 : -1;
}

/* Layer i's value of key in the last epoch's alignment measurements (NaN
 * when null). */
double test_layer_value(const E2eRun *r, int i, const char *key) {
    json_t *v = json_object_get(json_array_get(json_object_get(r->last, "layers"), (size_t)i), key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

int test_n_layers(const E2eRun *r) { return (int)json_array_size(json_object_get(r->last, "layers")); }

double test_summary_item(const E2eRun *r, const char *key, int i) {
    json_t *v = json_array_get(json_object_get(r->summary, key), (size_t)i);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

size_t test_forge_checkpoint(uint8_t *b, uint32_t count, const void *records, size_t n) {
    uint32_t version = 1;
    uint64_t len = 24 + n + 4;
    memcpy(b, "ASYMCKPT", 8);
    memcpy(b + 8, &version, 4);
    memcpy(b + 12, &count, 4);
    memcpy(b + 16, &len, 8);
    memcpy(b + 24, records, n);
    uint32_t crc = (uint32_t)crc32(crc32(0, NULL, 0), b, (uInt)(24 + n));
    memcpy(b + 24 + n, &crc, 4);
    return (size_t)len;
}
