#!/bin/sh
# Reproduce BioTorch's Fashion-MNIST LeNet-5 column (docs/RESULTS.md):
# every rule's shipped config, the full 100-epoch protocol, for each of
# SEEDS (default 1 2 3), one thread per run and JOBS runs at a time
# (default 2, one per core of a 2-core machine). Each run goes to
# OUT/RULE/seedN; a run whose folder already holds summary.json is not run
# again, so an interrupted call resumes. Then scripts/seed_table.py prints
# every rule's mean and sd over its seeds.
#   scripts/repro_biotorch.sh [OUT] [RULE...]
set -eu
ASYMBP=${ASYMBP:-build/asymbp}
JOBS=${JOBS:-2}
SEEDS=${SEEDS:-1 2 3}
OUT=${1:-runs/biotorch}
[ $# -gt 0 ] && shift
RULES=${*:-bp kp usf frsf brsf fa dfa wm}
mkdir -p "$OUT"
# rule by rule, in the order given, so that each rule's row completes early
for r in $RULES; do
  for s in $SEEDS; do
    [ -f "$OUT/$r/seed$s/summary.json" ] && continue
    echo "$r $s"
  done
done | xargs -P "$JOBS" -L 1 sh -c \
  'mkdir -p "$1/$2"; "$0" train configs/biotorch/fmnist_lenet_$2.yaml --set seed=$3 --set threads=1 --out "$1/$2/seed$3" > "$1/$2/seed$3.txt" 2>&1 && echo "$2 seed $3: done" || echo "$2 seed $3: failed or diverged, see $1/$2/seed$3.txt"' \
  "$ASYMBP" "$OUT"
python3 "$(dirname "$0")/seed_table.py" "$OUT"
