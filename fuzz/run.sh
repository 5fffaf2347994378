#!/bin/sh
# run.sh: builds the fuzz targets (fuzz/fuzz.mk) and runs each one.
#   FUZZ_SECONDS  seconds per target (default 60; `make fuzz`)
#   FUZZ_RUNS     inputs per target instead, with a fixed seed, so that a
#                 short run (`make check`) is the same on every machine
#   FUZZ_TARGETS  which targets (default: all fuzz/fuzz_*.c)
# Seeds come from fuzz/seeds.c and fuzz/corpus/<target>/ (kept inputs,
# crash reproducers included); the growing corpus stays in $FB/corpus.
# A crash or leak saves its input as fuzz/crashes/<target>-crash-<hash>
# and fails; make it a test in tests/test_readers.c (readers_fuzz_*) and
# keep the input in fuzz/corpus/<target>/. Without clang and libFuzzer it
# says so and succeeds: fuzzing is skipped, not failed; under CI (CI=true)
# nothing may skip, and it fails.
set -e
cd "$(dirname "$0")/.."
FB=${FB:-build/fuzz}
CLANG=${CLANG:-clang}
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { return 0; }\n' >"$probe/p.c"
if ! command -v "$CLANG" >/dev/null 2>&1 ||
   ! "$CLANG" -fsanitize=fuzzer,address,undefined "$probe/p.c" -o "$probe/p" >/dev/null 2>&1; then
    if [ "$CI" = true ]; then
        echo "fuzz: FAILED: $CLANG with libFuzzer is not available (Debian: clang, libclang-rt-dev); under CI (CI=true) nothing may skip, a skip means a broken install"
        exit 1
    fi
    echo "fuzz: SKIPPED, no target fuzzed: $CLANG with libFuzzer is not available (Debian: clang, libclang-rt-dev)"
    exit 0
fi
make --no-print-directory -s -f fuzz/fuzz.mk FB="$FB" CLANG="$CLANG" all
rm -rf "$FB/seeds.d"
"$FB/seeds" "$FB/seeds.d"
targets=${FUZZ_TARGETS:-$(ls fuzz/fuzz_*.c | sed 's#fuzz/fuzz_\(.*\)\.c#\1#')}
mkdir -p fuzz/crashes
status=0
for t in $targets; do
    # A short run starts from the seeds alone, so that it is reproducible;
    # a long one grows a corpus kept between runs.
    corpus="$FB/corpus/$t"
    [ -n "$FUZZ_RUNS" ] && corpus="$FB/check-corpus/$t" && rm -rf "$corpus"
    mkdir -p "$corpus"
    if [ -n "$FUZZ_RUNS" ]; then
        how="-runs=$FUZZ_RUNS -seed=1 -max_total_time=${FUZZ_SECONDS:-30}"
        what="$FUZZ_RUNS inputs"
    else
        how="-max_total_time=${FUZZ_SECONDS:-60}"
        what="${FUZZ_SECONDS:-60} s"
    fi
    extra=""
    [ -d "fuzz/corpus/$t" ] && extra="fuzz/corpus/$t"
    log="$FB/$t.log"
    # -timeout: an input taking 10 s is a hang; -rss_limit_mb: the memory
    # of the whole process, beyond which an input counts as a crash.
    if "$FB/fuzz_$t" $how -timeout=10 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
        -artifact_prefix="fuzz/crashes/$t-" "$corpus" "$FB/seeds.d/$t" $extra >"$log" 2>&1; then
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
        echo "fuzz: $t: $what, ${execs:-?} runs, no crash"
    else
        echo "fuzz: $t: FAILED (log: $log; input saved under fuzz/crashes/)"
        grep -E "ERROR|SUMMARY|Test unit written" "$log" | head -5
        status=1
    fi
done
exit $status
