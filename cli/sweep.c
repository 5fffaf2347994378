/* sweep.c: `asymbp sweep CONFIG --rules LIST [--lr-mult LIST] --out DIR`:
 * Liao et al.'s protocol. Every rule is trained at every multiple of the
 * config's learning rate (default 100, 10, 1, 0.1, 0.01), all with the same
 * seed, one run per folder DIR/RULE/lr_xMULT. --vary KEY=V1,V2,... adds a
 * setting to cross with the rules (Liao et al.'s sign concordance:
 * --vary feedback.concordance=0.5,0.75,1); its runs go to
 * DIR/RULE@KEY=V/lr_xMULT and each variant is a row of the table. A run
 * whose folder already holds summary.json, written with the same
 * configuration, is read back instead of run again, and an unfinished one
 * continues from its checkpoint, so an interrupted sweep resumes where it
 * stopped; a run that diverges is recorded as diverged and the sweep goes on. The end is the
 * results table (table.c) of the whole sweep: DIR/table.md, DIR/table.csv. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

#define MAX_RULES 16
#define MAX_MULTS 16

static int mult_list(const char *list, double *m, int max) {
    char buf[256];
    int n = 0;
    snprintf(buf, sizeof buf, "%s", list);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        char *end;
        double v = strtod(tok, &end);
        if (*end || end == tok || !(v > 0 && v < 1e9)) return cli_failf(-1, "sweep: --lr-mult: expected positive numbers, got '%s'", tok);
        if (n == max) return cli_failf(-1, "sweep: more than %d multipliers", max);
        m[n++] = v;
    }
    if (!n) return cli_failf(-1, "sweep: --lr-mult is empty");
    return n;
}

/* --vary KEY=V1,V2,...: the key and its values, at most MAX_VARY. */
#define MAX_VARY 16
typedef struct Vary {
    char key[128], values[MAX_VARY][64];
    int n;
} Vary;

static int vary_parse(const char *text, Vary *v) {
    memset(v, 0, sizeof *v);
    if (!text) return 0;
    const char *eq = strchr(text, '=');
    if (!eq || eq == text || (size_t)(eq - text) >= sizeof v->key || !eq[1])
        return cli_failf(-1, "sweep: --vary: expected KEY=V1,V2,..., got '%s'", text);
    memcpy(v->key, text, (size_t)(eq - text));
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", eq + 1);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        if (v->n == MAX_VARY || strlen(tok) >= sizeof v->values[0] || strchr(tok, '/'))
            return cli_failf(-1, "sweep: --vary: at most %d values without '/', each under 64 characters", MAX_VARY);
        snprintf(v->values[v->n++], sizeof v->values[0], "%s", tok);
    }
    return v->n ? 0 : -1;
}

/* The config of one run: the file, the user's --set, the variant, then rule and lr. */
static int load_run(const CliArgs *a, const char *rule, const char *vary, double lr, AsymConfig **cfg, AsymExperiment **ex) {
    char set_rule[64], set_lr[64];
    snprintf(set_rule, sizeof set_rule, "rule=%.15s", rule);
    snprintf(set_lr, sizeof set_lr, "optimizer.lr=%.10g", lr);
    const char *more[3] = {vary, set_rule, set_lr};
    return cli_load_args(a, more, 3, cfg, ex);
}

static int same_file(const char *p, const char *q) {
    FILE *f = fopen(p, "rb"), *g = fopen(q, "rb");
    int same = f && g, c;
    while (same && (c = getc(f)) == getc(g))
        if (c == EOF) break;
    same = same && c == EOF;
    if (f) fclose(f);
    if (g) fclose(g);
    return same;
}

/* Whether dir/config.yaml is exactly what writing cfg gives. */
static int same_config(const char *dir, const AsymConfig *cfg) {
    char path[1500], check[1500];
    snprintf(path, sizeof path, "%s/config.yaml", dir);
    snprintf(check, sizeof check, "%s/.config.check.yaml", dir);
    if (asym_config_write(cfg, check)) return 0;
    int same = same_file(path, check);
    unlink(check);
    return same;
}

/* 1: the folder holds a finished run of exactly cfg; 2: an unfinished run of
 * cfg with a checkpoint (continue it); 0: nothing to keep (run it); -1:
 * finished with another configuration (refuse to mix). */
static int finished(const char *dir, const AsymConfig *cfg) {
    CliRunResult r;
    char ckpt[1500];
    struct stat st;
    if (cli_run_result(dir, &r)) return same_config(dir, cfg) ? 1 : -1;
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.bin", dir);
    return stat(ckpt, &st) == 0 && same_config(dir, cfg) ? 2 : 0;
}

int cmd_sweep(const CliArgs *a) {
    char rules[MAX_RULES][16];
    double mults[MAX_MULTS];
    if (!a->rules) return cli_fail(2, "sweep: --rules LIST is required (e.g. --rules bp,fa,usf)");
    int nr = cli_rule_list(a->rules, "sweep", rules, MAX_RULES);
    int nm = mult_list(a->lr_mult ? a->lr_mult : "100,10,1,0.1,0.01", mults, MAX_MULTS);
    Vary vary;
    if (nr < 0 || nm < 0 || vary_parse(a->vary, &vary)) return 2;
    int nv = vary.n ? vary.n : 1;
    AsymConfig *cfg;
    AsymExperiment *ex;
    int rc = cli_load_args(a, NULL, 0, &cfg, &ex);
    if (rc) return rc;
    /* the learning rate as written (a float would print 0.100000001) */
    const char *lr_text = asym_config_get(cfg, "optimizer.lr");
    AsymExperimentInfo info = cli_info(ex);
    double base = lr_text ? strtod(lr_text, NULL) : info.lr;
    char out[1024];
    if (a->out) snprintf(out, sizeof out, "%s", a->out);
    else snprintf(out, sizeof out, "runs/sweep-%s", info.name);
    cli_free_experiment(cfg, ex);
    if (cli_mkdir_p(out)) return 1;
    int total = nr * nv * nm, diverged = 0;
    /* under mpirun (docs/MPI.md) run i goes to rank i mod P, which trains it alone */
    int P = asym_dist_size(), rank = asym_dist_rank();
    asym_dist_solo(1);
    for (int i = 0; i < total; i++) {
        int r = i / (nv * nm), v = i / nm % nv, m = i % nm, k = i + 1;
        char dir[1400], path[1500], label[256], set[256];
        if (i % P != rank) continue;
        if (vary.n) snprintf(label, sizeof label, "%.15s@%s=%s", rules[r], vary.key, vary.values[v]);
        else snprintf(label, sizeof label, "%.15s", rules[r]);
        snprintf(set, sizeof set, "%s=%s", vary.key, vary.n ? vary.values[v] : "");
        snprintf(dir, sizeof dir, "%s/%s/lr_x%g", out, label, mults[m]);
        if ((rc = load_run(a, rules[r], vary.n ? set : NULL, base * mults[m], &cfg, &ex))) break;
        int done = cli_mkdir_p(dir) ? -2 : finished(dir, cfg);
        if (done == 1) {
            CliRunResult res;
            cli_run_result(dir, &res);
            printf("[%d/%d] %s, lr x%g: finished earlier, %s\n", k, total, label, mults[m], res.diverged ? "diverged" : "read back");
            diverged += res.diverged;
        } else if (done == 0 || done == 2) {
            printf("[%d/%d] %s, lr x%g = %.10g -> %s%s\n", k, total, label, mults[m], base * mults[m], dir, done == 2 ? " (continued from its checkpoint)" : "");
            fflush(stdout);
            AsymSummary sum;
            snprintf(path, sizeof path, "%s/config.yaml", dir);
            int trc = done == 0 && asym_config_write(cfg, path) ? cli_fail(1, asym_last_error()) : 0;
            if (!trc) trc = cli_train_go(ex, dir, a->quiet || rank > 0, done == 2, &sum);
            if (trc && sum.diverged) printf("[%d/%d] %s, lr x%g: diverged; the sweep goes on\n", k, total, label, mults[m]), diverged++;
            else if (trc) rc = trc; /* a failure, or 128 + signal: SIGINT/SIGTERM stop the sweep with a checkpoint */
        } else if (done == -1) {
            rc = cli_failf(2, "sweep: %s holds a finished run of another configuration (its config.yaml differs); use another --out", dir);
        } else {
            rc = 1;
        }
        cli_free_experiment(cfg, ex);
        if (rc) break;
    }
    asym_dist_solo(0);
    if (P > 1) {
        /* every rank's runs are done; rank 0 reads them all back for the table */
        int mine = rc;
        if (asym_dist_agree(mine)) rc = mine ? mine : cli_fail(1, asym_last_error());
        if (rc || rank > 0) return rc;
        diverged = 0;
        for (int i = 0; i < total; i++) {
            char dir[1400];
            CliRunResult res;
            int r = i / (nv * nm), v = i / nm % nv, m = i % nm;
            if (vary.n) snprintf(dir, sizeof dir, "%s/%.15s@%s=%s/lr_x%g", out, rules[r], vary.key, vary.values[v], mults[m]);
            else snprintf(dir, sizeof dir, "%s/%.15s/lr_x%g", out, rules[r], mults[m]);
            if (cli_run_result(dir, &res)) diverged += res.diverged;
        }
    }
    if (rc) return rc;
    printf("\nsweep of %d runs (%d diverged) in %s:\n", total, diverged, out);
    const char *dirs[1] = {out};
    return cli_table(dirs, 1, out, 0);
}
