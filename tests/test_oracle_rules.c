/* test_oracle_rules.c: PyTorch as oracle for the feedback rules. Each test
 * probes the small networks in tests/oracle/rules_*.yaml (an MLP
 * 784-32-16-10 on Fashion-MNIST with and without batch norm, a conv net
 * with a strided padded conv and batch norm on random images, a residual
 * net) under one rule or option with `asymbp probe`, and hands all the
 * probes of the test to one run of tests/oracle/torch_oracle.py. The
 * oracle rebuilds each network in torch with custom autograd functions that
 * take the probe's feedback matrix B as an input (BioTorch's way: the
 * forward pass uses W, the input gradient dy B or conv2d_input(B), the
 * weight gradient is exact), DFA's projections e D at the end of each
 * block, and compares logits, loss, dx, every parameter gradient, every
 * weight layer's output gradient and every activation to 1e-4 relative;
 * then the parameters and feedback matrices after a few steps, where the
 * rule is deterministic (brsf only after one step, and its invariants
 * after more; wm's mirror steps repeated from the noise seeds the probe
 * records). Options the manifest does not record (Batch
 * Manhattan, feedback.*) go to the oracle as the same --set arguments as to
 * the probe. The Python is test_python() (/usr/bin/python3, or
 * ASYMBP_PYTHON). Without PyTorch the tests skip, saying why, and fail
 * where ASYM_REQUIRE_ORACLES is set (make check); with ASYM_NO_TORCH set
 * they skip. Without Fashion-MNIST the MLP probes are left out and the test
 * counts as skipped. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

#define RUN(group, cases, opts) test_oracle_group(group, cases, (int)(sizeof cases / sizeof cases[0]), opts)

/* Each rule on the four networks. */
TEST(oracle_rule_bp) {
    static const OracleCase c[] = {{"mlp", 3, "--set rule=bp", "bp,bp,bp"}, {"mlp_bn", 3, "--set rule=bp", NULL}, {"conv", 3, "--set rule=bp", NULL},
                             {"resnet", 3, "--set rule=bp", NULL}};
    RUN("bp", c, NULL);
}

TEST(oracle_rule_fa) {
    static const OracleCase c[] = {{"mlp", 3, "--set rule=fa", "fa,fa,fa"}, {"mlp_bn", 3, "--set rule=fa", NULL}, {"conv", 3, "--set rule=fa", NULL},
                             {"resnet", 3, "--set rule=fa", NULL}};
    RUN("fa", c, NULL);
}

/* DFA on the chains, and on a residual net's top-level chain (stem conv
 * and fc) while its blocks use other rules (the stem's block ends before
 * the first residual block). */
TEST(oracle_rule_dfa) {
    static const OracleCase c[] = {{"mlp", 3, "--set rule=dfa", "dfa,dfa,dfa"},
                             {"mlp_bn", 3, "--set rule=dfa", NULL},
                             {"conv", 3, "--set rule=dfa", "dfa,dfa,dfa,dfa"},
                             {"resnet", 3, "--set rule=dfa --set 'rule_overrides={\"3.main\": bp, \"4.main\": fa, \"4.shortcut\": kp}'",
                              "dfa,bp,bp,fa,fa,kp,dfa"}};
    RUN("dfa", c, NULL);
}

/* DFA inside residual blocks (BioTorch's DFA on ResNets): every weight
 * layer but the last gets e D at the end of its block, which inside a
 * block's path ends before the next conv or at the path's end (before the
 * sum with the other path); the shortcut's 1x1 conv too; and mixed with
 * other rules per path. */
TEST(oracle_rule_dfa_resnet) {
    static const OracleCase c[] = {{"resnet", 3, "--set rule=dfa", "dfa,dfa,dfa,dfa,dfa,dfa,dfa"},
                                   {"resnet", 3, "--set rule=dfa --set feedback.dfa=conv", NULL},
                                   {"resnet", 3, "--set rule=fa --set 'rule_overrides={\"3.main\": dfa, \"4.shortcut\": dfa, \"-1\": bp}'",
                                    "fa,dfa,dfa,fa,fa,dfa,bp"}};
    RUN("dfa-resnet", c, NULL);
}

TEST(oracle_rule_usf) {
    static const OracleCase c[] = {{"mlp", 3, "--set rule=usf", "usf,usf,usf"}, {"mlp_bn", 3, "--set rule=usf", NULL}, {"conv", 3, "--set rule=usf", NULL},
                             {"resnet", 3, "--set rule=usf", NULL}};
    RUN("usf", c, NULL);
}

/* brsf redraws its magnitudes every batch: parameters are compared after
 * one step; after three (resnet) the oracle checks the sign pattern, the
 * bound of the distribution and that the magnitudes were redrawn. */
TEST(oracle_rule_brsf) {
    static const OracleCase c[] = {{"mlp", 1, "--set rule=brsf", "brsf,brsf,brsf"}, {"mlp_bn", 1, "--set rule=brsf", NULL}, {"conv", 1, "--set rule=brsf", NULL},
                             {"resnet", 3, "--set rule=brsf", NULL}};
    RUN("brsf", c, NULL);
}

TEST(oracle_rule_frsf) {
    static const OracleCase c[] = {{"mlp", 3, "--set rule=frsf", "frsf,frsf,frsf"}, {"mlp_bn", 3, "--set rule=frsf", NULL}, {"conv", 3, "--set rule=frsf", NULL},
                             {"resnet", 3, "--set rule=frsf", NULL}};
    RUN("frsf", c, NULL);
}

/* kp: B after the steps against a torch optimizer that trains B with W's
 * gradient, its own weight decay and momentum (SGD; Adam on the resnet).
 * Adam's weight decay is 0.02: at 0.01 one entry of 4.main.0.W has a
 * gradient within 5e-8 of -0.01 W, so that float32 rounding decides
 * Adam's normalized step there (PyTorch's float32 run and ours differed by
 * 0.2% of the largest step; ours was within 0.02% of a float64 run). */
TEST(oracle_rule_kp) {
    static const OracleCase c[] = {{"mlp", 3, "--set rule=kp", "kp,kp,kp"},
                             {"mlp_bn", 3, "--set rule=kp", NULL},
                             {"conv", 3, "--set rule=kp", NULL},
                             {"resnet", 3, "--set rule=kp", NULL},
                             {"resnet", 3, "--set rule=kp --set optimizer.name=adam --set optimizer.lr=0.01 --set optimizer.weight_decay=0.02", NULL}};
    RUN("kp", c, NULL);
}

/* wm: the oracle regenerates each mirror step's noise from the seed the
 * probe records and repeats B <- (1 - decay) B + lr y x^T / (n P std^2)
 * (per-tap P counted by torch): after one step from asymbp's W, after
 * three from its own run. Akrout's defaults (uniform noise), normal noise,
 * the exact estimator (orthogonal, lr = decay = 1) and two mirror steps
 * per batch. */
TEST(oracle_rule_wm) {
    static const OracleCase c[] = {{"mlp", 1, "--set rule=wm", "wm,wm,wm"},
                             {"mlp_bn", 3, "--set rule=wm", NULL},
                             {"conv", 1, "--set rule=wm", NULL},
                             {"resnet", 3, "--set rule=wm", NULL},
                             {"conv", 1, "--set rule=wm --set feedback.wm.noise=normal", NULL},
                             {"resnet", 3, "--set rule=wm --set feedback.wm.noise=normal", NULL},
                             {"mlp", 1, "--set rule=wm --set feedback.wm.noise=orthogonal", NULL},
                             {"conv", 3, "--set rule=wm --set feedback.wm.noise=orthogonal", NULL},
                             {"conv", 1, "--set rule=wm --set feedback.wm.steps=2", NULL}};
    RUN("wm", c, NULL);
}

/* Batch Manhattan: SGD on sign(grad), then weight decay and momentum. A
 * small learning rate keeps gradients away from zero (where the sign is
 * rounding noise); no bias feeds a batch norm here for the same reason. */
TEST(oracle_rule_manhattan) {
    static const OracleCase c[] = {{"mlp", 3, "--set rule=bp", NULL}, {"mlp", 3, "--set rule=usf", NULL}, {"conv", 3, "--set rule=frsf", NULL},
                             {"resnet", 3, "--set rule=kp", NULL}};
    RUN("manhattan", c, "--set optimizer.manhattan=true --set optimizer.lr=0.002");
}

/* Partial sign concordance 0.75: B agrees with W's sign on exactly
 * n - round(0.25 n) entries, and the pattern survives the steps. */
TEST(oracle_rule_concordance) {
    static const OracleCase c[] = {{"mlp", 3, "--set rule=usf", NULL}, {"conv", 3, "--set rule=frsf", NULL}, {"conv", 1, "--set rule=brsf", NULL},
                             {"resnet", 3, "--set rule=usf", NULL}};
    RUN("concordance", c, "--set feedback.concordance=0.75");
}

/* clip_dx: each weight layer's input gradient scaled to an L2 norm (over
 * the batch) of at most 0.003; the oracle fails when nothing was clipped. */
TEST(oracle_rule_clip_dx) {
    static const OracleCase c[] = {{"mlp", 3, "--set rule=fa", NULL}, {"mlp_bn", 3, "--set rule=bp", NULL}, {"conv", 3, "--set rule=fa", NULL},
                             {"resnet", 3, "--set rule=kp", NULL}};
    RUN("clip", c, "--set feedback.clip_dx=0.003");
}

/* Per-layer rules: rule_overrides by weight-layer index (negative from the
 * end) and by name, `rule:` on a conv and on a resblock item, mixed with
 * DFA. */
TEST(oracle_rule_overrides) {
    static const OracleCase c[] = {
        {"conv", 3, "--set rule=fa --set 'rule_overrides={\"-1\": bp}' --set 'model.layers.3={type: conv, out: 8, k: 3, stride: 2, pad: 1, bias: false, rule: usf}'",
         "fa,usf,fa,bp"},
        {"resnet", 3, "--set rule=fa --set 'rule_overrides={\"-1\": bp, \"4.shortcut\": frsf}' --set 'model.layers.3={type: resblock, out: 8, rule: kp}'",
         "fa,kp,kp,fa,fa,frsf,bp"},
        {"conv", 3, "--set rule=dfa --set 'rule_overrides={\"0\": usf, \"2\": fa}'", "usf,dfa,fa,dfa"},
        {"mlp_bn", 3, "--set rule=dfa --set 'rule_overrides={\"1\": bp}'", "dfa,bp,dfa"},
    };
    RUN("overrides", c, NULL);
}

/* Moskovitz et al.'s normalizations: W held at its initial norm, B scaled
 * to W's norm after every step. */
TEST(oracle_rule_norms) {
    static const OracleCase c[] = {{"mlp", 3, "--set rule=fa", NULL}, {"mlp_bn", 3, "--set rule=usf", NULL}, {"conv", 3, "--set rule=frsf", NULL},
                             {"resnet", 3, "--set rule=kp", NULL}};
    RUN("norms", c, "--set feedback.norm_feedback=true --set feedback.fixed_weight_norm=true");
}

/* Runs the oracle on the probe <tmp>/<base> and its perturbed copies
 * <base>-<i> (one oracle process): the unmodified probe must agree and
 * every copy (what[i] changed) must be reported. */
static void expect_mismatches(const char *base, const char *const *what, int nc) {
    char log[1200], cmd[8192], line[1024];
    snprintf(log, sizeof log, "%s/%s.oracle.txt", test_tmpdir(), base);
    int off = snprintf(cmd, sizeof cmd, "cd '%s' && '%s' '%s/tests/oracle/torch_oracle.py' -q %s", test_tmpdir(), test_python(), test_srcdir(), base);
    for (int i = 0; i < nc; i++) off += snprintf(cmd + off, sizeof cmd - off, " %s-%d", base, i);
    snprintf(cmd + off, sizeof cmd - off, " >'%s' 2>&1", log);
    int rc = test_system(cmd);
    FILE *f = fopen(log, "r");
    CHECK(f);
    int n = 0, bad = 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "torch_oracle: ", 14)) continue;
        int mismatch = strstr(line, "MISMATCH") != NULL;
        if (n == 0 ? mismatch : !mismatch) {
            printf("    %s: %s", n == 0 ? "the unmodified probe" : n <= nc ? what[n - 1] : "?", line);
            bad = 1;
        }
        n++;
    }
    fclose(f);
    if (rc != 1 || bad || n != nc + 1) test_show(log);
    CHECK_MSG(n == nc + 1, "torch_oracle.py printed %d summaries for %d probes", n, nc + 1);
    CHECK_MSG(!bad, "the oracle missed a perturbation or flagged the unmodified probe");
    CHECK_MSG(rc == 1, "torch_oracle.py exit %d, expected 1", rc);
}

/* The rules oracle must notice a wrong feedback matrix in the backward
 * pass (fa's B, DFA's D), a wrong recorded layer error and activation, and
 * a wrong B after the steps (kp, usf): copies of one probe (conv net, usf,
 * fa, dfa and kp layers) with one value off by 1% each must all be
 * reported, and the unmodified probe must agree (one oracle process). */
TEST(oracle_rules_detects_mismatch) {
    static const char *const what[] = {"fa's B in the backward pass", "DFA's D", "the error at a weight layer's output", "an activation",
                                       "kp's B after the steps", "usf's B after the steps"};
    enum { NC = sizeof what / sizeof what[0] };
    static const OracleCase base = {"conv", 2, "--set rule=fa --set 'rule_overrides={\"0\": usf, \"2\": dfa, \"3\": kp}'", "usf,fa,dfa,kp"};
    char dir[1024], cmd[8192], got[256];
    if (!test_have_torch()) return;
    CHECK(test_probe(&base, "mismatch", NULL, dir, sizeof dir) == 0);
    CHECK(test_manifest_rules(dir, got, sizeof got) == 0 && !strcmp(got, base.rules));
    /* copies rules-mismatch-<i>, each with one value scaled by 1.01; B
     * and D also after the steps (where they must not change), and D's
     * whole row of its largest entry (a single entry may feed a dead unit) */
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' -c \"import json, numpy as np, shutil\n"
             "m = json.load(open('rules-mismatch/manifest.json'))\n"
             "fb = {f['name']: f for f in m['feedback']}\n"
             "cases = [[fb['3.B']['value'], fb['3.B']['after']], [fb['7.D']['value'], fb['7.D']['after']], [m['weight_layers'][0]['error']],\n"
             "         [m['activations'][4]], [fb['9.B']['after']], [fb['0.B']['after']]]\n"
             "for i, files in enumerate(cases):\n"
             " d = 'rules-mismatch-%%d' %% i\n shutil.rmtree(d, True)\n shutil.copytree('rules-mismatch', d)\n"
             " for f in files:\n"
             "  a = np.load(d + '/' + f)\n  j = np.abs(a).argmax()\n"
             "  if i == 1: a[j // a.shape[1]] *= 1.01\n"
             "  else: a.flat[j] *= 1.01\n"
             "  np.save(d + '/' + f, a)\n\"",
             test_tmpdir(), test_python());
    CHECK_MSG(test_system(cmd) == 0, "could not write the perturbed copies: %s", cmd);
    expect_mismatches("rules-mismatch", what, NC);
}

/* The oracle must notice a wrong weight-mirror update: copies of a conv
 * wm probe (one step) with the part the mirror step added to one B 1% too
 * large (a wrong lr or 1/n), one kernel tap's part 10% off (a wrong
 * count of positions), another noise seed recorded, another decay. */
TEST(oracle_rule_wm_detects_mismatch) {
    static const char *const what[] = {"wm's mirror step 1% too large", "one tap of a conv's mirror step 10% off", "a wrong noise seed", "a wrong decay"};
    enum { NC = sizeof what / sizeof what[0] };
    static const OracleCase base = {"conv", 1, "--set rule=wm", "wm,wm,wm,wm"};
    char dir[1024], cmd[8192], got[256];
    if (!test_have_torch()) return;
    CHECK(test_probe(&base, "wm-mismatch", NULL, dir, sizeof dir) == 0);
    CHECK(test_manifest_rules(dir, got, sizeof got) == 0 && !strcmp(got, base.rules));
    /* the mirror step's part of B after the step: Ba - (1 - decay) B0 */
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' -c \"import json, numpy as np, shutil\n"
             "src = 'rules-wm-mismatch'\n"
             "m = json.load(open(src + '/manifest.json'))\n"
             "keep = np.float32(1) - np.float32(m['feedback_options']['wm']['decay'])\n"
             "def part(d, k, scale, sl):\n"
             " f = m['feedback'][m['weight_layers'][k]['feedback']]\n"
             " b0, a = np.load(d + '/' + f['value']), np.load(d + '/' + f['after'])\n"
             " a[sl] = keep * b0[sl] + scale * (a[sl] - keep * b0[sl])\n"
             " np.save(d + '/' + f['after'], a)\n"
             "for i in range(4):\n"
             " d = '%%s-%%d' %% (src, i)\n shutil.rmtree(d, True)\n shutil.copytree(src, d)\n"
             " if i == 0: part(d, 2, np.float32(1.01), np.s_[...])\n"
             " if i == 1: part(d, 1, np.float32(0.9), np.s_[..., 0, 0])\n"
             " if i >= 2:\n"
             "  mm = json.load(open(d + '/manifest.json'))\n"
             "  if i == 2: mm['weight_layers'][0]['mirror']['seeds'][-1] += 1\n"
             "  if i == 3: mm['feedback_options']['wm']['decay'] *= 2\n"
             "  json.dump(mm, open(d + '/manifest.json', 'w'))\n\"",
             test_tmpdir(), test_python());
    CHECK_MSG(test_system(cmd) == 0, "could not write the perturbed copies: %s", cmd);
    expect_mismatches("rules-wm-mismatch", what, NC);
}
