#!/bin/sh
# Remakes docs/results/reproduce: a short run of BioTorch's LeNet-5 (rule bp,
# 10000 training and 2000 test images of Fashion-MNIST, 3 epochs, one
# thread), with the loss of every step (steps.jsonl) and the SHA-256 of its
# weights (model.sha256) instead of model.bin. The test
# shipped_run_reproduces (tests/test_e2e.c) trains its config.yaml again and
# asks for the same bits. Numerics that change on purpose (a new kernel, a
# new summation order) change them: run this at the commit that changes
# them, and commit the new folder with the change.
# OpenBLAS's kernels are fixed to its Haswell ones (OPENBLAS_CORETYPE) and
# oneDNN's to AVX2 (ONEDNN_MAX_CPU_ISA), so
# that the bits do not depend on which x86-64 processor with AVX2 runs it.
#   scripts/shipped_run.sh [ASYMBP]
set -eu
ASYMBP=${1:-build/asymbp}
DIR=docs/results/reproduce
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
OPENBLAS_CORETYPE=Haswell ONEDNN_MAX_CPU_ISA=AVX2 OMP_WAIT_POLICY=passive "$ASYMBP" train configs/biotorch/fmnist_lenet_bp.yaml \
  --set name=reproduce --set epochs=3 --set data.train_limit=10000 --set data.test_limit=2000 \
  --set threads=1 --set log_steps=true --out "$TMP/run"
rm -rf "$DIR"
mkdir -p "$DIR"
for f in config.yaml log.jsonl steps.jsonl summary.json version.json; do cp "$TMP/run/$f" "$DIR/"; done
(cd "$TMP/run" && sha256sum model.bin) > "$DIR/model.sha256"
grep -q -- '-dirty"' "$DIR/version.json" && echo "note: $ASYMBP was built from changed sources (version.json says -dirty); rebuild at a commit before shipping" >&2
echo "$DIR: remade"
