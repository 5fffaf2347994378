/* test_api.c: the public header's calls as a user meets them: rules and
 * formats by name, an experiment opened from a file and described, a data
 * set read by format and path, and examples/own_loop (built against
 * include/asymbp.h alone) training Fashion-MNIST in a loop of its own. */
#include <stdlib.h>
#include <string.h>

#include "asymbp.h"
#include "io/io.h"
#include "test.h"

TEST(api_rules_by_name) {
    CHECK(asym_rule_count() >= 8);
    for (int r = 1; r <= asym_rule_count(); r++) CHECK(asym_rule_parse(asym_rule_name(r)) == r);
    CHECK(!strcmp(asym_rule_name(1), "bp") && !strcmp(asym_rule_name(0), "default"));
    CHECK(!strcmp(asym_rule_name(asym_rule_count() + 1), "?"));
    CHECK(asym_rule_parse("nope") == 0 && asym_rule_parse("wm") > 0);
}

TEST(api_formats_by_name) {
    int n = 0, cifar = 0;
    while (asym_data_format(n)) cifar |= !strcmp(asym_data_format(n++), "cifar10");
    CHECK(cifar && n >= 8 && !strcmp(asym_data_format(n - 1), "auto"));
}

static const char *const CFG =
    "name: api\nseed: 5\nepochs: 3\nbatch_size: 8\nthreads: 1\n"
    "data: {format: random, random: {n: 40, c: 1, h: 4, w: 4, classes: 3}, pad: 2, normalize: true, val_size: 8}\n"
    "model:\n  layers: [flatten, {type: fc, out: 3}]\n"
    "optimizer: {name: sgd, lr: 0.2}\nschedule: {name: multistep, milestones: [2], gamma: 0.5}\n";

static AsymExperiment *open_text(const char *text) {
    char path[1024];
    AsymConfig *cfg;
    AsymExperiment *ex = (AsymExperiment *)1;
    snprintf(path, sizeof path, "%s/api.yaml", test_tmpdir());
    test_write_file(path, text);
    if (asym_config_load(&cfg, path)) return NULL;
    if (asym_experiment_open(&ex, cfg)) ex = NULL;
    asym_config_free(cfg);
    return ex;
}

TEST(api_experiment_info_data_and_errors) {
    AsymExperiment *ex = open_text(CFG);
    CHECK(ex != NULL);
    AsymExperimentInfo info;
    asym_experiment_info(ex, &info);
    CHECK(!strcmp(info.name, "api") && info.seed == 5 && info.epochs == 3 && info.batch_size == 8 && info.threads == 1);
    CHECK(!strcmp(info.data_format, "random") && fabs(info.lr - 0.2) < 1e-7);
    CHECK(asym_experiment_lr(ex, 1) == 0.2f && asym_experiment_lr(ex, 2) == 0.1f);
    AsymDataset raw[3], ready[3];
    CHECK_OK(asym_experiment_data(ex, 0, &raw[0], &raw[1], &raw[2]));
    CHECK_OK(asym_experiment_data(ex, 1, &ready[0], &ready[1], &ready[2]));
    /* prepared: padded by 2 and normalized; as read: 4 x 4 in [0, 1) after the same split */
    CHECK(raw[0].n == 32 && raw[1].n == 8 && raw[0].h == 4 && ready[0].h == 8 && ready[0].w == 8);
    CHECK(!memcmp(raw[0].y, ready[0].y, 32 * sizeof(int32_t)));
    float mean, std;
    asym_dataset_stats(&ready[0], &mean, &std);
    CHECK(fabsf(mean) < 1e-4f);
    for (int i = 0; i < 3; i++) {
        asym_dataset_free(&raw[i]);
        asym_dataset_free(&ready[i]);
    }
    char **names;
    int n;
    CHECK_OK(asym_experiment_names(ex, &names, &n));
    CHECK(n == 3 && !strcmp(names[2], "2"));
    asym_data_names_free(names, n);
    asym_experiment_close(ex);
    /* a bad key: no experiment, a message naming file, line and key */
    char bad[1024];
    snprintf(bad, sizeof bad, "%sbogus: 1\n", CFG);
    CHECK(open_text(bad) == NULL && strstr(asym_last_error(), "api.yaml:11: unknown key 'bogus'"));
}

TEST(api_data_read_by_path) {
    char dir[1024], path[1100];
    snprintf(dir, sizeof dir, "%s/pool", test_tmpdir());
    CHECK_OK(io_mkdir_p(dir));
    float x[6] = {0, 1, 2, 3, 4, 5};
    int32_t y[3] = {1, 0, 1};
    int64_t xs[2] = {3, 2}, ys[1] = {3};
    snprintf(path, sizeof path, "%s/x.npy", dir);
    CHECK_OK(npy_write_f32(path, x, 2, xs));
    snprintf(path, sizeof path, "%s/y.npy", dir);
    CHECK_OK(npy_write_i32(path, y, 1, ys));
    char format[16] = "";
    AsymDataset tr, te;
    int pooled = -1;
    CHECK_OK(asym_data_read(format, dir, NULL, &tr, &te, &pooled));
    CHECK(!strcmp(format, "npy") && pooled == 1 && tr.n == 3 && te.n == 0 && tr.c == 2 && tr.classes == 2);
    CHECK(tr.x[5] == 5 && tr.y[2] == 1);
    asym_dataset_free(&tr);
    asym_dataset_free(&te);
    char **names;
    int n;
    CHECK_OK(asym_data_names("npy", dir, NULL, &names, &n));
    CHECK(n == 2 && !strcmp(names[0], "0") && !strcmp(names[1], "1"));
    asym_data_names_free(names, n);
    snprintf(format, sizeof format, "auto");
    CHECK(asym_data_read(format, "/nonexistent/set", NULL, &tr, &te, &pooled) != 0 && strstr(asym_last_error(), "/nonexistent/set"));
}

/* make install into a fresh prefix, then what a user does: pkg-config
 * builds examples/own_loop against the installed header and shared
 * library, which exports the public calls alone; the installed Python
 * package, outside the source tree and without pkg-config's path, loads
 * the installed library and trains; make uninstall. */
TEST(api_install_pkg_config) {
    const char *bin = getenv("ASYM_BIN") ? getenv("ASYM_BIN") : "build/asymbp";
    char pfx[1024], out[8192], cfg[1100];
    snprintf(pfx, sizeof pfx, "%s/prefix", test_tmpdir());
    snprintf(cfg, sizeof cfg, "%s/tiny.yaml", test_tmpdir());
    test_write_file(cfg, CFG);
    int rc = test_sh(out, sizeof out, "cd %s && make -s install PREFIX=%s BUILD=$(basename $(dirname %s)) 2>&1", test_srcdir(), pfx, bin);
    if (rc) printf("%s", out);
    CHECK(rc == 0);
    CHECK(test_sh(out, sizeof out, "PKG_CONFIG_PATH=%s/lib/pkgconfig pkg-config --modversion asymbp", pfx) == 0 && !strncmp(out, ASYM_VERSION, strlen(ASYM_VERSION)));
    rc = test_sh(out, sizeof out, "export PKG_CONFIG_PATH=%s/lib/pkgconfig; cc -std=c11 -o %s/own_loop %s/share/asymbp/examples/own_loop.c "
                 "$(pkg-config --cflags --libs asymbp) 2>&1 && LD_LIBRARY_PATH=%s/lib %s/own_loop %s 2>&1", pfx, test_tmpdir(), pfx, pfx, test_tmpdir(), cfg);
    printf("%s", out);
    CHECK(rc == 0 && strstr(out, "epoch 3: lr 0.1,"));
    /* the soname, and the exports: public calls only */
    CHECK(test_sh(out, sizeof out, "readelf -d %s/lib/libasymbp.so | grep SONAME", pfx) == 0 && strstr(out, "[libasymbp.so.0]"));
    CHECK(test_sh(out, sizeof out, "nm -D --defined-only %s/lib/libasymbp.so | awk '$2 == \"T\" {print $3}' | sort", pfx) == 0);
    CHECK(strstr(out, "asym_experiment_open\n") && strstr(out, "asym_train\n") && !strstr(out, "asym_net_create") && !strstr(out, "rng_seed"));
    CHECK(test_sh(out, sizeof out, "head -1 %s/share/man/man1/asymbp.1; ls %s/share/asymbp/configs/fmnist/lenet.yaml %s/bin/asymbp %s/lib/libasymbp.a", pfx, pfx, pfx, pfx) == 0 &&
          !strncmp(out, ".TH ASYMBP 1", 12));
    if (test_sh(out, sizeof out, "'%s' -c 'import cffi, numpy' 2>&1", test_python())) {
        TEST_NO_ORACLE("%s lacks cffi or numpy (python3-cffi, python3-numpy): %s", test_python(), out);
    } else {
        /* where the Makefile's default PYTHONDIR put it: lib/python3.X/dist-packages */
        char pydir[1500];
        CHECK(test_sh(pydir, sizeof pydir, "'%s' -c 'import sys; print(\"%s/lib/python%%d.%%d/dist-packages\" %% sys.version_info[:2], end=\"\")'", test_python(), pfx) == 0);
        rc = test_sh(out, sizeof out, "cd / && env -u PKG_CONFIG_PATH -u ASYMBP_LIB -u ASYMBP_INCLUDE PYTHONPATH=%s '%s' -c '"
                     "import asymbp\nr = asymbp.train(\"%s\", sets={\"epochs\": 2})\n"
                     "print(asymbp.__file__, asymbp.library_path, len(r[\"epochs\"]), r[\"epochs\"][-1][\"epoch\"])' 2>&1",
                     pydir, test_python(), cfg);
        printf("    installed package: %s", out);
        char want[3000];
        snprintf(want, sizeof want, "%s/asymbp/__init__.py %s/lib/libasymbp.so 2 2\n", pydir, pfx);
        CHECK_MSG(rc == 0 && !strcmp(out, want), "expected '%s'", want);
    }
    CHECK(test_sh(out, sizeof out, "cd %s && make -s uninstall PREFIX=%s BUILD=$(basename $(dirname %s)) 2>&1 && find %s ! -type d", test_srcdir(), pfx, bin, pfx) == 0);
    CHECK(out[0] == 0);
}

/* The example's loop trains: test error far below chance (90%) for every
 * seed, B = W under bp, fa's B turned from W, and the schedule's rates. */
TEST(api_own_loop_example) {
    if (!test_have_fmnist()) return;
    const char *bin = getenv("ASYM_BIN") ? getenv("ASYM_BIN") : "build/asymbp";
    char cfg[1024], out[4096];
    snprintf(cfg, sizeof cfg, "%s/loop.yaml", test_tmpdir());
    test_write_file(cfg, "name: loop\nepochs: 3\nbatch_size: 32\nthreads: 2\n"
                         "data: {format: idx, path: " TEST_FMNIST ", normalize: true, train_limit: 2000, test_limit: 1000}\n"
                         "model:\n  layers: [flatten, {type: fc, out: 64}, relu, {type: fc, out: 10}]\n"
                         "optimizer: {name: sgd, lr: 0.01}\nschedule: {name: multistep, milestones: [2], gamma: 0.1}\n");
    for (int seed = 1; seed <= 5; seed++) {
        for (int fa = 0; fa < 2; fa++) {
            CHECK(test_sh(out, sizeof out, "$(dirname %s)/examples/own_loop %s seed=%d rule=%s 2>&1", bin, cfg, seed, fa ? "fa" : "bp") == 0);
            double err, angle;
            const char *last = strstr(out, "epoch 3: lr 0.001,");
            CHECK(strstr(out, "epoch 1: lr 0.01,") && strstr(out, "epoch 2: lr 0.01,") && last);
            CHECK(sscanf(strstr(last, "test error "), "test error %lf%%, mean angle %lf", &err, &angle) == 2);
            printf("    seed %d %s: test error %.1f%%, mean angle %.1f\n", seed, fa ? "fa" : "bp", err, angle);
            CHECK(err < 45);
            CHECK(fa ? angle > 10 && angle < 89 : angle == 0);
        }
    }
}
