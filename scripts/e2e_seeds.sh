#!/bin/sh
# The end-to-end rule tests (tests/test_e2e.c) for seeds 1 to 5, one after
# the other, and the table of what each measured (docs/RESULTS.md,
# "End-to-end tests"): every row must pass.
#   scripts/e2e_seeds.sh [BUILD]      (default build; make check builds it)
set -u
BUILD=${1:-build}
out=$(mktemp)
fail=0
for seed in 1 2 3 4 5; do
  ASYM_E2E_SEED=$seed ASYM_SRCDIR=$(pwd) ASYM_BIN=$(pwd)/$BUILD/asymbp OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} \
    OMP_WAIT_POLICY=passive "$BUILD/test_runner" ^e2e_ > "$out.$seed" 2>&1 || fail=1
  grep -E "E2E seed|^FAIL|^    tests/" "$out.$seed" | sed 's/^    //' >> "$out"
  tail -1 "$out.$seed" | sed "s/^/seed $seed: /" >> "$out"
done
cat "$out"
rm -f "$out" "$out".?
exit $fail
