/* test_cli_args.c: the command line the subcommands share (cli/main.c,
 * cli/common.c): options that take a value, the limit of 64 --set options
 * (compare and sweep add settings of their own to each run, and need room
 * for them), and --set on every path that loads an experiment file. */
#include <stdio.h>
#include <string.h>

#include "asymbp.h"
#include "test.h"

static const char *small_cfg(void) {
    static char path[512];
    snprintf(path, sizeof path, "%s/args.yaml", test_tmpdir());
    test_write_file(path, "name: args\nseed: 1\nepochs: 1\nbatch_size: 16\n"
                          "data:\n  format: random\n  random: {n: 32, c: 1, h: 4, w: 4, classes: 3}\n"
                          "model:\n  layers:\n    - flatten\n    - {type: fc, out: 3}\n");
    return path;
}

/* n settings "--set seed=1" as one shell fragment. */
static const char *sets(int n) {
    static char buf[2048];
    buf[0] = 0;
    for (int i = 0; i < n; i++) strcat(buf, " --set seed=1");
    return buf;
}

/* rc and the last line of output are exactly these. */
static int says(int rc, int want, const char *line) {
    size_t n = strlen(test_out), k = strlen(line);
    if (rc == want && n == k + 1 && !strncmp(test_out, line, k) && test_out[k] == '\n') return 1;
    printf("    rc %d (expected %d): %s", rc, want, test_out);
    return 0;
}

TEST(cli_args_values_and_set_limits) {
    const char *cfg = small_cfg(), *tmp = test_tmpdir();
    /* an option that takes a value, given none */
    static const char *const words[] = {"--out", "--rules", "--lr-mult", "--vary", "--resume", "--weights", "--set", "--batch"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        char want[128];
        snprintf(want, sizeof want, "asymbp: unknown or incomplete option '%s'", words[i]);
        CHECK_MSG(says(test_cli("train %s %s", cfg, words[i]), 2, want), "%s", words[i]);
    }
    /* 64 --set are taken (probe then asks for --out), 65 are not */
    CHECK(says(test_cli("probe %s%s", cfg, sets(64)), 2, "asymbp: probe: --out DIR is required"));
    CHECK(says(test_cli("probe %s%s", cfg, sets(65)), 2, "asymbp: too many --set options"));
    /* compare adds the rule: 63 fit, 64 do not */
    CHECK(says(test_cli("compare %s --rules bp --out %s/cmp%s", cfg, tmp, sets(64)), 2, "asymbp: too many --set options"));
    CHECK_MSG(test_cli("compare %s --rules bp --quiet --out %s/cmp%s", cfg, tmp, sets(63)) == 0, "%s", test_out);
    /* sweep keeps room for a variant, the rule and the learning rate, with or without --vary */
    CHECK(says(test_cli("sweep %s --rules bp --lr-mult 1 --out %s/sw%s", cfg, tmp, sets(62)), 2, "asymbp: too many --set options"));
    CHECK(says(test_cli("sweep %s --rules bp --lr-mult 1 --vary seed=2 --out %s/sw%s", cfg, tmp, sets(62)), 2, "asymbp: too many --set options"));
    CHECK_MSG(test_cli("sweep %s --rules bp --lr-mult 1 --quiet --out %s/sw%s", cfg, tmp, sets(61)) == 0, "%s", test_out);
    /* --set on each way in to an experiment file */
    CHECK(says(test_cli("train %s --set bad", cfg), 2, "asymbp: --set bad: expected KEY=VALUE"));
    CHECK(says(test_cli("compare %s --rules bp --out %s/cmp2 --set bad", cfg, tmp), 2, "asymbp: --set bad: expected KEY=VALUE"));
    CHECK(says(test_cli("sweep %s --rules bp --out %s/sw2 --set bad", cfg, tmp), 2, "asymbp: --set bad: expected KEY=VALUE"));
    CHECK(says(test_cli("data info %s --set bad", cfg), 2, "asymbp: --set bad: expected KEY=VALUE"));
    CHECK(test_cli("data info %s --set data.random.n=20", cfg) == 0 && strstr(test_out, "train: 20 images"));
    CHECK(says(test_cli("eval %s/cmp/bp --set bad", tmp), 2, "asymbp: --set bad: expected KEY=VALUE"));
    CHECK_MSG(test_cli("eval %s/cmp/bp --set seed=2", tmp) == 0 && strstr(test_out, "test loss"), "%s", test_out);
}
