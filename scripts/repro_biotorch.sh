#!/bin/sh
# Reproduce BioTorch's Fashion-MNIST LeNet-5 column (docs/RESULTS.md):
# every rule's shipped config, the full 100-epoch protocol, one thread per run
# and JOBS runs at a time (default 2, one per core of a 2-core machine).
#   scripts/repro_biotorch.sh [OUT] [RULE...]
# A rule whose folder already holds summary.json is not run again.
set -eu
ASYMBP=${ASYMBP:-build/asymbp}
JOBS=${JOBS:-2}
OUT=${1:-runs/biotorch}
[ $# -gt 0 ] && shift
RULES=${*:-wm bp kp usf frsf brsf fa dfa}
mkdir -p "$OUT"
for r in $RULES; do
  [ -f "$OUT/$r/summary.json" ] && continue
  echo "$r"
done | xargs -P "$JOBS" -I{} sh -c \
  '"$0" train configs/biotorch/fmnist_lenet_{}.yaml --set threads=1 --out "$1/{}" > "$1/{}.txt" 2>&1 && echo "{}: done" || echo "{}: failed, see $1/{}.txt"' \
  "$ASYMBP" "$OUT"
"$ASYMBP" table "$OUT"/* 2>/dev/null || true
