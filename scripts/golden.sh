#!/bin/sh
# Golden outputs: the bits of a fixed set of short runs, so that a change
# meant to move no number (a refactor) can show that it moved none.
#   scripts/golden.sh --record   run them, write tests/golden/hashes.txt
#   scripts/golden.sh --check    run them, compare with tests/golden/hashes.txt
# The runs: each of the 8 rules on BioTorch's LeNet-5 and on the batch-norm
# MLP, the demo's config, Liao's batch-norm conv net with Batch Manhattan,
# dfa with convolutional D, weight mirrors with each noise, ResNet-20 with
# rule overrides, a net with dropout and Adam (tests/golden/*.yaml), a run
# resumed from its checkpoint, and a probe dump, all on ASYMBP (the default
# build: oneDNN with Winograd); where MPI_BIN (an MPI build) is set, 2
# ranks; where IM2COL_BIN (make CONV=im2col) and DNNL_BIN (make CONV=dnnl:
# direct convolutions only) are set, their convolutions. Every run is one epoch on 2000 training and 500 test images
# of Fashion-MNIST (ResNet-20: 512 random images), 2 threads.
# A run is hashed by its model.bin, steps.jsonl (the loss of every step),
# log.jsonl and summary.json without timings and version (numbers compared
# by value: 1 and 1.0 are one number), and probe files.
# OpenBLAS's kernels are pinned (OPENBLAS_CORETYPE=Haswell) and oneDNN's
# instruction set (ONEDNN_MAX_CPU_ISA=AVX2), so that the bits do not depend
# on which x86-64 processor with AVX2 runs it. A change that moves numbers
# on purpose records new hashes in its own commit.
set -eu
MODE=${1:-}
case "$MODE" in --record|--check) ;; *) echo "usage: scripts/golden.sh --record|--check" >&2; exit 2 ;; esac
ASYMBP=${ASYMBP:-build/asymbp}
HASHES=tests/golden/hashes.txt
PY=${ASYMBP_PYTHON:-/usr/bin/python3}
export OPENBLAS_CORETYPE=Haswell ONEDNN_MAX_CPU_ISA=AVX2 OMP_WAIT_POLICY=passive
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
SMALL="--set epochs=1 --set data.train_limit=2000 --set data.test_limit=500 --set data.val_size=0 --set threads=2 --set log_steps=true"

# hash NAME DIR: one line per output file of the run in DIR
hash_run() {
  "$PY" - "$1" "$2" >>"$W/hashes" <<'PYEOF'
import hashlib, json, os, sys
name, d = sys.argv[1], sys.argv[2]
def strip(o):
    if isinstance(o, dict):
        return {k: strip(v) for k, v in o.items() if k != "version" and "seconds" not in k and k != "images_per_s"}
    if isinstance(o, list):
        return [strip(v) for v in o]
    if isinstance(o, int) and not isinstance(o, bool):
        return float(o)  # numbers by value: 1 and 1.0 are one number
    return o
for f in sorted(os.listdir(d)):
    p = os.path.join(d, f)
    if f == "log.jsonl":
        lines = [json.dumps(strip(json.loads(l)), sort_keys=True) for l in open(p) if l.strip()]
        data = "\n".join(lines).encode()
    elif f in ("summary.json", "manifest.json"):
        data = json.dumps(strip(json.load(open(p))), sort_keys=True).encode()
    elif f in ("model.bin", "steps.jsonl") or f.endswith(".npy"):
        data = open(p, "rb").read()
    else:
        continue
    print(f"{name}/{f} {hashlib.sha256(data).hexdigest()}")
PYEOF
}

# train NAME BIN CONFIG [ARGS...]
train() {
  name=$1 bin=$2 cfg=$3; shift 3
  if ! "$bin" train "$cfg" $SMALL "$@" --out "$W/$name" >"$W/$name.txt" 2>&1; then
    echo "golden: run $name failed:" >&2; cat "$W/$name.txt" >&2; exit 1
  fi
  hash_run "$name" "$W/$name"
}

: >"$W/hashes"
RESNET="configs/cifar10/resnet20.yaml --set data.format=random --set data.random.n=512"
# (weight mirrors: a pre-sweep of 100 steps, not 3000, to keep it short)
for r in bp fa dfa usf frsf brsf kp wm; do
  pre=; [ $r = wm ] && pre="--set feedback.wm.presweep=100"
  train "lenet-$r" "$ASYMBP" configs/biotorch/fmnist_lenet_$r.yaml $pre
  train "mlp-$r" "$ASYMBP" configs/fmnist/mlp.yaml --set rule=$r $pre
done
train demo "$ASYMBP" configs/fmnist/lenet.yaml
train liao-bm "$ASYMBP" configs/liao/fmnist_conv_bn.yaml --set rule=frsf --set optimizer.manhattan=true
train dfa-conv "$ASYMBP" configs/biotorch/fmnist_lenet_dfa.yaml --set feedback.dfa=conv
train wm-orthogonal "$ASYMBP" configs/akrout/fmnist_fc500_wm.yaml --set feedback.wm.noise=orthogonal
train wm-normal "$ASYMBP" configs/akrout/fmnist_fc500_wm.yaml --set feedback.wm.presweep=100 --set feedback.wm.noise=normal --set feedback.wm.steps=2
train resnet20 "$ASYMBP" $RESNET --set rule=kp --set rule_overrides.0=fa --set 'rule_overrides.-1=bp'
train dropout-adam "$ASYMBP" tests/golden/dropout_adam.yaml
# a run of 2 epochs, stopped after the first and resumed
train resumed "$ASYMBP" configs/biotorch/fmnist_lenet_kp.yaml --set epochs=1
if ! "$ASYMBP" train --resume "$W/resumed" --set epochs=2 >"$W/resumed.txt" 2>&1; then
  echo "golden: resuming failed:" >&2; cat "$W/resumed.txt" >&2; exit 1
fi
: >"$W/hashes.tmp"; grep -v '^resumed/' "$W/hashes" >"$W/hashes.tmp" || true; mv "$W/hashes.tmp" "$W/hashes"
hash_run resumed "$W/resumed"
if ! "$ASYMBP" probe configs/fmnist/mlp.yaml --set rule=wm --set feedback.wm.presweep=100 --set threads=2 --batch 8 --steps 2 --out "$W/probe" >"$W/probe.txt" 2>&1; then
  echo "golden: probe failed:" >&2; cat "$W/probe.txt" >&2; exit 1
fi
hash_run probe "$W/probe"
if [ -n "${MPI_BIN:-}" ]; then
  for r in bp kp; do
    name=mpi2-$r
    if ! mpirun --allow-run-as-root --oversubscribe -np 2 "$MPI_BIN" train configs/liao/fmnist_conv_bn.yaml $SMALL --set threads=1 \
         --set rule=$r --set model.sync_bn=true --out "$W/$name" >"$W/$name.txt" 2>&1; then
      echo "golden: MPI run $name failed:" >&2; cat "$W/$name.txt" >&2; exit 1
    fi
    hash_run "$name" "$W/$name"
  done
fi
# the other convolution paths (make check builds them): the portable one
# and oneDNN's direct convolutions, on a net of small and of 32+ channels
if [ -n "${IM2COL_BIN:-}" ]; then
  train im2col-lenet-bp "$IM2COL_BIN" configs/biotorch/fmnist_lenet_bp.yaml
  train im2col-resnet20 "$IM2COL_BIN" $RESNET --set rule=kp --set rule_overrides.0=fa --set 'rule_overrides.-1=bp'
fi
if [ -n "${DNNL_BIN:-}" ]; then
  train dnnl-lenet-bp "$DNNL_BIN" configs/biotorch/fmnist_lenet_bp.yaml
  train dnnl-resnet20 "$DNNL_BIN" $RESNET
fi

if [ "$MODE" = --record ]; then
  cp "$W/hashes" "$HASHES"
  echo "golden: $(wc -l <"$HASHES") hashes recorded in $HASHES"
  exit 0
fi
# --check: the runs this call made (MPI and oneDNN only where asked) against the record
fail=0
while read -r key h; do
  want=$(grep "^$key " "$HASHES" | cut -d' ' -f2 || true)
  if [ -z "$want" ]; then echo "golden: $key: not in $HASHES (record it)"; fail=1
  elif [ "$want" != "$h" ]; then echo "golden: $key differs"; fail=1
  fi
done <"$W/hashes"
# and every recorded output of a run made here is still there
cut -d/ -f1 "$W/hashes" | sort -u >"$W/names"
while read -r key want; do
  grep -qx "${key%%/*}" "$W/names" || continue
  grep -q "^$key " "$W/hashes" || { echo "golden: $key: recorded but not written"; fail=1; }
done <"$HASHES"
n=$(wc -l <"$W/hashes")
if [ $fail -ne 0 ]; then
  echo "golden: outputs differ from $HASHES; a change that moves numbers on purpose records new ones (scripts/golden.sh --record)" >&2
  exit 1
fi
echo "golden: $n outputs identical to $HASHES"
