#!/bin/sh
# The measurements behind docs/RESULTS.md's account of the differences from
# BioTorch: shipped BioTorch configs with one thing changed each, the full
# 100-epoch protocol, one thread per run, JOBS at a time (default 2).
#   scripts/biotorch_variants.sh [OUT] [VARIANT...]
# A variant whose folder already holds summary.json is not run again.
set -eu
ASYMBP=${ASYMBP:-build/asymbp}
JOBS=${JOBS:-2}
OUT=${1:-runs/biotorch-variants}
[ $# -gt 0 ] && shift
BIOTORCH_INPUT="--set data.pad=0 --set data.size=32 --set data.mean=[0.2859] --set data.std=[0.3530]"
variant() {  # NAME -> RULE and --set options
    case $1 in
    bp_resize) echo "bp $BIOTORCH_INPUT" ;;        # BioTorch's input: 28x28 resized to 32, its mean and std
    dfa_conv) echo "dfa --set feedback.dfa=conv" ;;  # BioTorch's D for blocks that feed a convolution
    dfa_conv_resize) echo "dfa --set feedback.dfa=conv $BIOTORCH_INPUT" ;;
    dfa_conv_lr*) echo "dfa --set feedback.dfa=conv --set optimizer.lr=${1#dfa_conv_lr}" ;;
    dfa_lr*) echo "dfa --set optimizer.lr=${1#dfa_lr}" ;;
    *_seed[0-9]*) echo "${1%_seed*} --set seed=${1##*_seed}" ;;
    *_resize) echo "${1%_resize} $BIOTORCH_INPUT" ;;
    *) echo "unknown variant $1" >&2; exit 2 ;;
    esac
}
VARIANTS=${*:-bp_resize dfa_conv dfa_lr1e-3 dfa_lr3e-3 dfa_conv_lr1e-3 frsf_seed2 brsf_seed2 brsf_seed3}
for v in $VARIANTS; do variant "$v" > /dev/null; done
mkdir -p "$OUT"
for v in $VARIANTS; do
    [ -f "$OUT/$v/summary.json" ] && continue
    echo "$v $(variant "$v")"
done | while read -r name rule opts; do
    # shellcheck disable=SC2086
    echo "'$ASYMBP' train configs/biotorch/fmnist_lenet_$rule.yaml $opts --set threads=1 --out '$OUT/$name' > '$OUT/$name.txt' 2>&1 && echo '$name: done' || echo '$name: failed, see $OUT/$name.txt'"
done | xargs -d '\n' -P "$JOBS" -I{} sh -c '{}'
"$ASYMBP" table "$OUT" 2>/dev/null || true
