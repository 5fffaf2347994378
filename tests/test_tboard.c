/* test_tboard.c: log.tensorboard, read back by an independent reader:
 * tests/oracle/tb_read.py decodes the event file with Python's protobuf
 * (classes protoc makes from proto/tensorboard.proto) and python3-crc32c,
 * checks every record's CRCs and every scalar against log.jsonl, through a
 * resume, and refuses a file with one byte changed. */
#include <stdio.h>
#include <string.h>

#include "test.h"

static const char *const CFG =
    "name: tb\nseed: 3\nepochs: 3\nbatch_size: 8\nthreads: 1\nrule: fa\nlog: {tensorboard: true}\n"
    "data: {format: random, random: {n: 40, c: 1, h: 4, w: 4, classes: 3}, val_size: 8}\n"
    "model:\n  layers: [flatten, {type: fc, out: 6}, relu, {type: fc, out: 3}]\n"
    "optimizer: {name: sgd, lr: 0.1}\n";

/* Runs the reader on run; its exit code, its output in out. */
static int tb_read(const char *run, char *out, size_t cap) {
    return test_sh(out, cap, "'%s' '%s/tests/oracle/tb_read.py' '%s' 2>&1", test_python(), test_srcdir(), run);
}

TEST(tensorboard_events_match_log) {
    char cfg[1024], run[1024], out[4096];
    snprintf(cfg, sizeof cfg, "%s/tb.yaml", test_tmpdir());
    snprintf(run, sizeof run, "%s/tb-run", test_tmpdir());
    test_write_file(cfg, CFG);
    if (test_sh(out, sizeof out, "'%s' -c 'import google.protobuf, crc32c' 2>&1 && command -v protoc", test_python())) {
        TEST_NO_ORACLE("python3-protobuf, python3-crc32c or protoc missing: %s", out);
        return;
    }
    CHECK(test_cli("train %s --out %s --quiet", cfg, run) == 0);
    CHECK(tb_read(run, out, sizeof out) == 0 && strstr(out, "3 epochs"));
    printf("    %s", out);
    /* a resume keeps one file with every epoch once */
    CHECK(test_cli("train --resume %s --set epochs=5 --quiet", run) == 0);
    CHECK(tb_read(run, out, sizeof out) == 0 && strstr(out, "5 epochs"));
    printf("    %s", out);
    /* the reader catches a changed byte (the last scalar's) */
    CHECK(test_sh(out, sizeof out, "f=$(ls %s/events.out.tfevents.*) && n=$(stat -c %%s $f) && "
                  "printf '\\377' | dd of=$f bs=1 seek=$((n - 6)) conv=notrunc 2>/dev/null", run) == 0);
    CHECK(tb_read(run, out, sizeof out) != 0 && strstr(out, "CRC mismatch"));
}

TEST(tensorboard_off_by_default) {
    char cfg[1024], run[1024], out[256];
    snprintf(cfg, sizeof cfg, "%s/tb.yaml", test_tmpdir());
    snprintf(run, sizeof run, "%s/tb-off", test_tmpdir());
    test_write_file(cfg, CFG);
    CHECK(test_cli("train %s --set log.tensorboard=false --out %s --quiet", cfg, run) == 0);
    CHECK(test_sh(out, sizeof out, "ls %s | grep -c tfevents", run) != 0);
    CHECK(test_cli("train %s --set log.tensorbord=true --out %s", cfg, run) == 2 && strstr(test_out, "unknown key 'log.tensorbord'"));
}
