#!/bin/sh
# Gradient allreduce overlapped with the backward pass, measured: one rank
# against two, and two ranks with dist.overlap off (one MPI_Allreduce after
# the backward pass) and on (buckets of dist.bucket_mb sent as the backward
# pass finishes them). Each rank on one thread; every setting REPEAT times,
# interleaved. Prints, per setting, images/s of the last epoch and the
# seconds per step (steps.jsonl counts the steps) that rank 0 spent inside
# allreduce calls (with overlap: waiting for what was not done by the end
# of the backward pass), and the fraction of the blocking allreduce's time
# that overlap hid:
# 1 - (overlap's seconds per step) / (blocking's seconds per step).
#   bench/mpi_overlap.sh [MPI_BIN]          (make MPI=1: build-mpi/asymbp)
# Networks: the MLP on Fashion-MNIST (7.5 MB of gradients; buckets of 1 MB)
# and ResNet-18 with 10 classes on 32x32 random images (44.7 MB; buckets of
# 25 MB, the default, and of 4 MB).
set -eu
BIN=${1:-build-mpi/asymbp}
REPEAT=${REPEAT:-3}
PY=${ASYMBP_PYTHON:-/usr/bin/python3}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
export OMP_NUM_THREADS=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
ROOT=$([ "$(id -u)" = 0 ] && echo --allow-run-as-root || true)
MLP="configs/fmnist/mlp.yaml --set data.train_limit=6000 --set data.test_limit=100 --set epochs=2 --set threads=1"
R18="configs/cifar10/resnet20.yaml --set data.format=random --set data.random.n=1024 --set model.arch=resnet18 --set batch_size=64 --set epochs=2 --set threads=1"

# run NAME RANKS NET ARGS...: one training, its numbers appended to $W/NAME
run() {
  name=$1 np=$2 net=$3; shift 3
  eval "set -- \$$net \"\$@\""
  out="$W/out-$name"
  rm -rf "$out"
  if [ "$np" = 1 ]; then "$BIN" train "$@" --set log_steps=true --out "$out" >"$W/log" 2>&1 || { cat "$W/log" >&2; exit 1; }
  else mpirun $ROOT --oversubscribe -np "$np" "$BIN" train "$@" --set log_steps=true --out "$out" >"$W/log" 2>&1 || { cat "$W/log" >&2; exit 1; }
  fi
  "$PY" - "$out" >>"$W/$name" <<'PYEOF'
import json, sys
d = sys.argv[1]
s = json.load(open(d + "/summary.json"))
epochs = [e for e in (json.loads(l) for l in open(d + "/log.jsonl") if l.strip()) if "epoch" in e and "images_per_s" in e]
steps = sum(1 for l in open(d + "/steps.jsonl") if l.strip())
print(epochs[-1]["images_per_s"], s.get("allreduce_seconds", 0.0) / steps)
PYEOF
}

for k in $(seq "$REPEAT"); do
  for net in MLP R18; do
    bucket=1; [ $net = R18 ] && bucket=25
    run "$net-1" 1 $net
    run "$net-2-blocking" 2 $net --set dist.overlap=false
    run "$net-2-overlap" 2 $net --set dist.overlap=true --set dist.bucket_mb=$bucket
    [ $net = R18 ] && run "$net-2-overlap4" 2 $net --set dist.overlap=true --set dist.bucket_mb=4
  done
done
"$PY" - "$W" <<'PYEOF'
import os, statistics, sys
w = sys.argv[1]
rows = {}
for f in sorted(os.listdir(w)):
    if "-" not in f or f.startswith("out-") or f == "log":
        continue
    vals = [tuple(map(float, l.split())) for l in open(os.path.join(w, f))]
    rows[f] = vals
print("| setting | images/s (last epoch; runs) | allreduce s/step (rank 0; mean ± sd) |")
print("|---|---|---|")
per = {}
for f, vals in rows.items():
    a = [v[1] for v in vals]
    per[f] = statistics.mean(a)
    sd = statistics.stdev(a) if len(a) > 1 else 0.0
    print(f"| {f} | {' / '.join(f'{v[0]:.0f}' for v in vals)} | {1e3 * per[f]:.2f} ± {1e3 * sd:.2f} ms |")
for net in ("MLP", "R18"):
    b = per.get(f"{net}-2-blocking")
    for o in ("overlap", "overlap4"):
        v = per.get(f"{net}-2-{o}")
        if b and v is not None:
            print(f"{net} {o}: {100 * (1 - v / b):.0f}% of the blocking allreduce's time hidden")
PYEOF
