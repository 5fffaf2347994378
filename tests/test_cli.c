/* test_cli.c: end-to-end tests of the asymbp command: a short real run on
 * Fashion-MNIST, its outputs (log.jsonl, summary.json, model.bin, eval),
 * and bad input of every kind: one clear message naming the file, a
 * non-zero exit, and no summary left looking complete. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "asymbp.h"
#include "test.h"

#define FMNIST TEST_FMNIST

/* A small, fast experiment on synthetic data. */
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

TEST(cli_lenet_one_epoch_fmnist) {
    if (getenv("ASYM_QUICK")) {
        test_skip("ASYM_QUICK is set: a full epoch is too slow under the sanitizers and valgrind");
        return;
    }
    if (!test_have_fmnist()) return;
    char dir[512];
    snprintf(dir, sizeof dir, "%s/lenet1", test_tmpdir());
    int rc = test_cli("train configs/fmnist/lenet.yaml --set epochs=1 --set batch_size=32 --set optimizer.lr=0.01 --out '%s'", dir);
    CHECK_MSG(rc == 0, "train failed (%d):\n%s", rc, test_out);
    CHECK(strstr(test_out, "final test error"));
    char path[600];
    snprintf(path, sizeof path, "%s/summary.json", dir);
    FILE *f = fopen(path, "r");
    CHECK(f);
    char text[2048] = {0};
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    CHECK(n > 0);
    const char *p = strstr(text, "\"final_test_err\": ");
    CHECK(p);
    double err = atof(p + strlen("\"final_test_err\": "));
    printf("    LeNet, 1 epoch: test error %.2f%%\n", 100 * err);
    CHECK_MSG(err <= 0.15, "test accuracy %.2f%% is below 85%%", 100 * (1 - err));
    /* eval scores the saved model on the test set and agrees */
    rc = test_cli("eval '%s'", dir);
    CHECK_MSG(rc == 0, "eval failed:\n%s", test_out);
    char want[64];
    snprintf(want, sizeof want, "error %.2f%%", 100 * err);
    CHECK_MSG(strstr(test_out, want), "eval printed '%s', expected '%s'", test_out, want);
}

TEST(cli_train_outputs) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/tiny_run", test_tmpdir());
    int rc = test_cli("train '%s' --out '%s'", tiny_cfg(), dir);
    CHECK_MSG(rc == 0, "train failed:\n%s", test_out);
    CHECK(test_exists(dir, "log.jsonl") && test_exists(dir, "summary.json") && test_exists(dir, "model.bin") && test_exists(dir, "config.yaml"));
    char path[600], line[1024];
    snprintf(path, sizeof path, "%s/log.jsonl", dir);
    FILE *f = fopen(path, "r");
    CHECK(f);
    int lines = 0;
    while (fgets(line, sizeof line, f)) {
        lines++;
        const char *keys[] = {"\"epoch\"", "\"lr\"", "\"train_loss\"", "\"train_err\"", "\"test_loss\"", "\"test_err\"", "\"seconds\""};
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) CHECK_MSG(strstr(line, keys[k]), "log line lacks %s: %s", keys[k], line);
    }
    fclose(f);
    CHECK(lines == 2);
    snprintf(path, sizeof path, "%s/summary.json", dir);
    f = fopen(path, "r");
    CHECK(f);
    size_t n = fread(line, 1, sizeof line - 1, f);
    line[n] = 0;
    fclose(f);
    const char *keys[] = {"best_test_err", "best_epoch", "final_test_err", "epochs", "seconds", "images_per_s", "seed"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) CHECK_MSG(strstr(line, keys[k]), "summary lacks %s", keys[k]);
    /* the saved config reproduces the run: same seed, same bits */
    char dir2[600];
    snprintf(dir2, sizeof dir2, "%s/again", dir);
    snprintf(path, sizeof path, "%s/config.yaml", dir);
    rc = test_cli("train '%s' --out '%s' --quiet", path, dir2);
    CHECK_MSG(rc == 0, "retrain failed:\n%s", test_out);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cmp -s '%s/model.bin' '%s/model.bin'", dir, dir2);
    CHECK_MSG(system(cmd) == 0, "same config and seed gave different weights");
}

TEST(cli_set_overrides) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/set_run", test_tmpdir());
    int rc = test_cli("train '%s' --set epochs=1 --set optimizer.lr=0.01 --set model.layers.0.out=6 --out '%s' --quiet", tiny_cfg(), dir);
    CHECK_MSG(rc == 0, "%s", test_out);
    char path[600], text[4096] = {0};
    snprintf(path, sizeof path, "%s/config.yaml", dir);
    FILE *f = fopen(path, "r");
    CHECK(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    CHECK(n > 0 && strstr(text, "epochs: 1") && strstr(text, "lr: 0.01") && strstr(text, "out: 6"));
    snprintf(path, sizeof path, "%s/log.jsonl", dir);
    f = fopen(path, "r");
    CHECK(f);
    n = fread(text, 1, sizeof text - 1, f);
    text[n] = 0;
    fclose(f);
    CHECK(strstr(text, "\"lr\": 0.01") && !strstr(text, "\"epoch\": 2"));
}

/* Each case: the command must fail with a message containing `want`; with
 * one_line, that message is all it prints. */
static int fails_with_msg(int code, const char *want, int one_line) {
    if (code == 0) {
        printf("    expected failure, got success:\n%s", test_out);
        return 0;
    }
    if (!strstr(test_out, want)) {
        printf("    message lacks '%s':\n%s", want, test_out);
        return 0;
    }
    if (one_line && strchr(test_out, '\n') != test_out + strlen(test_out) - 1) {
        printf("    expected one line:\n%s", test_out);
        return 0;
    }
    return 1;
}

static int fails_with(int code, const char *want) { return fails_with_msg(code, want, 1); }

TEST(cli_bad_config) {
    const char *d = test_tmpdir();
    char p[512];
    CHECK(fails_with(test_cli("train /nonexistent/x.yaml --out %s/o1", d), "/nonexistent/x.yaml"));
    snprintf(p, sizeof p, "%s/syntax.yaml", d);
    test_write_file(p, "epochs: 1\nmodel: [unclosed\n");
    CHECK(fails_with(test_cli("train %s --out %s/o2", p, d), "syntax.yaml:"));
    snprintf(p, sizeof p, "%s/unknown.yaml", d);
    test_write_file(p, "epochs: 1\nmodel:\n  arch: lenet\n  colour: red\n");
    CHECK(fails_with(test_cli("train %s --out %s/o3", p, d), "unknown.yaml:4: unknown key 'model.colour'"));
    snprintf(p, sizeof p, "%s/badval.yaml", d);
    test_write_file(p, "epochs: many\nmodel:\n  arch: lenet\n");
    CHECK(fails_with(test_cli("train %s --out %s/o4", p, d), "badval.yaml:1: key 'epochs'"));
    snprintf(p, sizeof p, "%s/badarch.yaml", d);
    test_write_file(p, "model:\n  arch: resnet21\n");
    CHECK(fails_with(test_cli("train %s --out %s/o5", p, d), "badarch.yaml:2: key 'model.arch'"));
    snprintf(p, sizeof p, "%s/badlayer.yaml", d);
    test_write_file(p, "model:\n  layers:\n    - {type: conv, out: 4}\n");
    CHECK(fails_with(test_cli("train %s --out %s/o6", p, d), "badlayer.yaml:3"));
    CHECK(fails_with(test_cli("train %s --set optimizer.lr=fast --out %s/o7", tiny_cfg(), d), "--set: key 'optimizer.lr'"));
    CHECK(fails_with(test_cli("train %s --set noequals --out %s/o8", tiny_cfg(), d), "noequals"));
    CHECK(fails_with(test_cli("train %s --set model.layers.0.out=1000000000 --out %s/o9", tiny_cfg(), d), "model.layers.0.out"));
    CHECK(fails_with(test_cli("train %s --bogus", tiny_cfg()), "--bogus"));
    CHECK(!test_exists(d, "o4/summary.json") && !test_exists(d, "o7/summary.json"));
}

TEST(cli_bad_rule_options) {
    const char *d = test_tmpdir(), *cfg = tiny_cfg();
    CHECK(fails_with(test_cli("train %s --set rule=xfa --out %s/r1", cfg, d), "key 'rule'"));
    CHECK(strstr(test_out, "bp, fa, dfa"));
    CHECK(fails_with(test_cli("train %s --set rule=usf --set feedback.concordance=1.5 --out %s/r2", cfg, d), "key 'feedback.concordance'"));
    CHECK(fails_with(test_cli("train %s --set 'model.layers.1={type: relu, rule: fa}' --out %s/r3", cfg, d), "model.layers.1"));
    CHECK(strstr(test_out, "no weights"));
    CHECK(fails_with(test_cli("train %s --set rule_overrides.-1=bogus --out %s/r4", cfg, d), "rule_overrides.-1"));
    CHECK(fails_with(test_cli("train %s --set rule_overrides.9=bp --out %s/r5", cfg, d), "rule_overrides"));
    CHECK(fails_with(test_cli("train %s --set optimizer.name=adam --set optimizer.manhattan=true --out %s/r6", cfg, d), "optimizer.manhattan"));
}

TEST(cli_rule_set_and_override) {
    char dir[512], path[600], text[8192] = {0};
    snprintf(dir, sizeof dir, "%s/fa_run", test_tmpdir());
    int rc = test_cli("train '%s' --set rule=fa --set 'rule_overrides.-1=bp' --out '%s' --quiet", tiny_cfg(), dir);
    CHECK_MSG(rc == 0, "%s", test_out);
    snprintf(path, sizeof path, "%s/log.jsonl", dir);
    FILE *f = fopen(path, "r");
    CHECK(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    CHECK(n > 0);
    CHECK(strstr(text, "\"name\": \"0\", \"rule\": \"fa\", \"angle\": "));
    CHECK(strstr(text, "\"name\": \"4\", \"rule\": \"bp\", \"angle\": 0.0,"));
    CHECK(strstr(text, "\"delta_angle\"") && strstr(text, "\"grad_angle\"") && strstr(text, "\"mean_angle\""));
}

TEST(cli_bad_model_shape) {
    const char *d = test_tmpdir();
    char p[512];
    snprintf(p, sizeof p, "%s/shape.yaml", d);
    test_write_file(p, "data:\n  format: random\n  random: {n: 32, c: 1, h: 8, w: 8, classes: 4}\n"
                  "model:\n  layers:\n    - {type: conv, out: 4, k: 9}\n    - flatten\n    - {type: fc, out: 4}\n");
    CHECK(fails_with(test_cli("train %s --out %s/s1", p, d), "line 6"));
    test_write_file(p, "data:\n  format: random\n  random: {n: 32, c: 1, h: 8, w: 8, classes: 4}\n"
                  "model:\n  layers:\n    - flatten\n    - {type: fc, out: 7}\n");
    CHECK(fails_with(test_cli("train %s --out %s/s2", p, d), "7 outputs"));
    CHECK(!test_exists(d, "s1/summary.json") && !test_exists(d, "s2/summary.json"));
}

TEST(cli_bad_data) {
    if (!test_have_fmnist()) return;
    const char *d = test_tmpdir();
    char data[512], cmd[2048];
    /* a copy of Fashion-MNIST with a truncated training-image file */
    snprintf(data, sizeof data, "%s/broken", d);
    snprintf(cmd, sizeof cmd,
             "mkdir -p %s && cp " FMNIST "/t10k-* " FMNIST "/train-labels* %s/ && "
             "gzip -dc " FMNIST "/train-images-idx3-ubyte.gz | head -c 100000 > %s/train-images-idx3-ubyte",
             data, data, data);
    CHECK(system(cmd) == 0);
    CHECK(fails_with(test_cli("train configs/fmnist/lenet.yaml --set data.path=%s --out %s/b1", data, d), "train-images-idx3-ubyte"));
    CHECK(strstr(test_out, "truncated") || strstr(test_out, "holds"));
    CHECK(fails_with(test_cli("train configs/fmnist/lenet.yaml --set data.path=%s/none --out %s/b2", d, d), "none"));
    CHECK(!test_exists(d, "b1/summary.json") && !test_exists(d, "b2/summary.json"));
}

TEST(cli_eval_bad_weights) {
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/evalrun", test_tmpdir());
    CHECK(test_cli("train '%s' --out '%s' --quiet", tiny_cfg(), dir) == 0);
    CHECK(test_cli("eval '%s'", dir) == 0 && strstr(test_out, "test loss"));
    snprintf(path, sizeof path, "%s/model.bin", dir);
    FILE *f = fopen(path, "r+b");
    CHECK(f);
    fseek(f, 40, SEEK_SET);
    fputc(0x5a, f);
    fclose(f);
    CHECK(fails_with(test_cli("eval '%s'", dir), "model.bin: checksum"));
    CHECK(fails_with(test_cli("eval '%s' --weights /nonexistent.bin", dir), "/nonexistent.bin"));
}

TEST(cli_divergence_reported) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/diverge", test_tmpdir());
    int rc = test_cli("train '%s' --set optimizer.lr=1e5 --out '%s'", tiny_cfg(), dir);
    CHECK(fails_with_msg(rc, "diverged", 0));
    CHECK(strstr(test_out, "at epoch ") || strstr(test_out, "after epoch "));
    char path[600], text[1024] = {0};
    snprintf(path, sizeof path, "%s/summary.json", dir);
    FILE *f = fopen(path, "r");
    CHECK(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    CHECK(n > 0 && strstr(text, "\"diverged\": true"));
}

TEST(cli_probe_writes_manifest) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/probe", test_tmpdir());
    int rc = test_cli("probe '%s' --batch 4 --out '%s'", tiny_cfg(), dir);
    CHECK_MSG(rc == 0, "%s", test_out);
    CHECK(test_exists(dir, "manifest.json") && test_exists(dir, "x.npy") && test_exists(dir, "dx.npy") && test_exists(dir, "p000.npy") && test_exists(dir, "g003.npy"));
    CHECK(fails_with(test_cli("probe '%s'", tiny_cfg()), "--out"));
}

TEST(cli_usage) {
    CHECK(test_cli(" ") == 2 && strstr(test_out, "usage"));
    CHECK(test_cli("frobnicate x") == 2 && strstr(test_out, "unknown command"));
    CHECK(test_cli("version") == 0 && strstr(test_out, ASYM_VERSION));
}

TEST(cli_out_creates_parent_folders) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/new/nested/run", test_tmpdir());
    int rc = test_cli("train '%s' --set epochs=1 --out '%s' --quiet", tiny_cfg(), dir);
    CHECK_MSG(rc == 0, "%s", test_out);
    CHECK(test_exists(dir, "summary.json"));
}
