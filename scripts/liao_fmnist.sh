#!/bin/sh
# Liao et al.'s four findings on Fashion-MNIST (docs/RESULTS.md): a conv net
# without and with batch norm, each with plain SGD and with Batch Manhattan;
# in each setting every rule at every learning-rate multiplier, and frsf at
# sign concordance 50, 62.5, 75 and 87.5% (frsf itself is 100%).
#   scripts/liao_fmnist.sh [OUT]
# Environment: SETS adds --set options to every run (a shorter protocol, e.g.
# SETS="--set epochs=10 --set data.train_limit=20000 --set data.val_size=5000"),
# MULTS the learning-rate multipliers (default Liao's 100,10,1,0.1,0.01),
# MULTS_SGD and MULTS_BM those of the plain-SGD and the Batch Manhattan
# settings where they should differ (default MULTS),
# JOBS how many settings run at once (default 2, one thread each).
# Finished runs are read back, so an interrupted call resumes.
set -eu
ASYMBP=${ASYMBP:-build/asymbp}
OUT=${1:-runs/liao-fmnist}
MULTS=${MULTS:-100,10,1,0.1,0.01}
MULTS_SGD=${MULTS_SGD:-$MULTS}
MULTS_BM=${MULTS_BM:-$MULTS}
JOBS=${JOBS:-2}
SETS=${SETS:-}
mkdir -p "$OUT"
setting() {  # NAME MULTIPLIERS CONFIG [--set ...]
    name=$1 mults=$2 cfg=$3
    shift 3
    # shellcheck disable=SC2086
    "$ASYMBP" sweep "$cfg" --rules bp,fa,usf,brsf,frsf --lr-mult "$mults" --set threads=1 $SETS "$@" --quiet --out "$OUT/$name" > "$OUT/$name.txt" 2>&1 &&
    "$ASYMBP" sweep "$cfg" --rules frsf --vary feedback.concordance=0.5,0.625,0.75,0.875 --lr-mult "$mults" --set threads=1 $SETS "$@" --quiet \
        --out "$OUT/$name" >> "$OUT/$name.txt" 2>&1 && echo "$name: done" || echo "$name: failed, see $OUT/$name.txt"
}
n=0
for s in "sgd $MULTS_SGD configs/liao/fmnist_conv.yaml" "bm $MULTS_BM configs/liao/fmnist_conv.yaml --set optimizer.manhattan=true" \
         "bn_sgd $MULTS_SGD configs/liao/fmnist_conv_bn.yaml" "bn_bm $MULTS_BM configs/liao/fmnist_conv_bn.yaml --set optimizer.manhattan=true"; do
    # shellcheck disable=SC2086
    setting $s &
    n=$((n + 1))
    [ $((n % JOBS)) -eq 0 ] && wait
done
wait
"$ASYMBP" table "$OUT/sgd" "$OUT/bm" "$OUT/bn_sgd" "$OUT/bn_bm" --columns dir --out "$OUT"
