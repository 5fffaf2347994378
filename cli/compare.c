/* compare.c: `asymbp compare CONFIG --rules bp,fa,...`: trains the same
 * network (same seed, so the same initial W and data order) with each rule
 * and prints a table: rule, best and final test error, epochs, seconds,
 * final mean angle between B and W. Runs go to DIR/RULE. A run that
 * diverged before its first test error shows "diverged" in place of one. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

#define MAX_RULES 16

int cmd_compare(const CliArgs *a) {
    if (!a->rules) return cli_fail(2, "compare: --rules LIST is required (e.g. --rules bp,fa,usf)");
    char rules[MAX_RULES][16];
    int n = cli_rule_list(a->rules, "compare", rules, MAX_RULES);
    if (n < 0) return 2;
    const char *base = a->out ? a->out : "runs/compare";
    if (cli_mkdir_p(base)) return 1;
    AsymSummary sums[MAX_RULES];
    int ok[MAX_RULES] = {0};
    for (int r = 0; r < n; r++) {
        char set[64];
        snprintf(set, sizeof set, "rule=%.15s", rules[r]);
        const char *more[1] = {set};
        AsymConfig *cfg;
        AsymExperiment *ex;
        int rc = cli_load_args(a, more, 1, &cfg, &ex);
        if (rc) return rc;
        char out[1100], path[1200];
        snprintf(out, sizeof out, "%s/%s", base, rules[r]);
        snprintf(path, sizeof path, "%s/config.yaml", out);
        if (cli_mkdir_p(out) || (asym_config_write(cfg, path) && cli_fail(1, asym_last_error()))) {
            cli_free_experiment(cfg, ex);
            return 1;
        }
        if (!a->quiet) printf("== %s\n", rules[r]);
        int trc = cli_train_go(ex, out, a->quiet, 0, &sums[r]);
        ok[r] = trc == 0;
        cli_free_experiment(cfg, ex);
        if (sums[r].interrupted) return trc; /* SIGINT/SIGTERM: the rules after it are not started */
    }
    printf("\n| rule | best test err | final test err | best epoch | epochs | seconds | mean angle |\n|---|---|---|---|---|---|---|\n");
    for (int r = 0; r < n; r++) {
        const AsymSummary *s = &sums[r];
        if (!ok[r] && !s->diverged) {
            printf("| %s | failed | | | | | |\n", rules[r]);
            continue;
        }
        char angle[32] = "-", best[32] = "diverged", last[48] = "diverged";
        if (isfinite(s->final_mean_angle)) snprintf(angle, sizeof angle, "%.1f", s->final_mean_angle);
        if (isfinite(s->best_test_err)) snprintf(best, sizeof best, "%.2f%%", 100 * s->best_test_err);
        if (isfinite(s->final_test_err)) snprintf(last, sizeof last, "%s%.2f%%", s->diverged ? "diverged, " : "", 100 * s->final_test_err);
        printf("| %s | %s | %s | %d | %d | %.1f | %s |\n", rules[r], best, last, s->best_epoch, s->epochs, s->seconds, angle);
    }
    for (int r = 0; r < n; r++)
        if (!ok[r]) return 1;
    return 0;
}
