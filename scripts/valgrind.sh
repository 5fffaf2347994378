#!/bin/sh
# valgrind.sh BUILD: `make valgrind`. The library under valgrind's memcheck
# with --leak-check=full, definite, indirect and possible leaks counted as
# errors: a representative part of the test suite (VG_TESTS: parts of test
# names as for `make check TESTS=...`, matched anywhere in the name, so
# "net_" would also pick the ResNet tests; empty runs it all, which takes
# hours: valgrind runs one thread at a time, 20 to 50 times slower), then
# the command on a small run: train, resume, export, eval. The CLI the tests
# start runs without valgrind; the last part runs it under valgrind.
set -e
cd "$(dirname "$0")/.."
B=${1:-build-vg}
VG="valgrind --quiet --leak-check=full --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=97"
# one OpenMP/OpenBLAS thread, no spinning: valgrind serializes threads anyway
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive OPENBLAS_NUM_THREADS=1
export ASYM_SRCDIR="$PWD" ASYM_BIN="$PWD/$B/asymbp" ASYM_QUICK=1 ASYMBP_PYTHON="${ASYMBP_PYTHON:-/usr/bin/python3}"
: "${VG_TESTS=cfg_ ckpt_save ckpt_resume_bitwise ckpt_hostile ckpt_divergence ckpt_architecture ckpt_bit_flips ckpt_export
ckpt_corrupt ckpt_resume_cli readers_ net_save net_load net_determinism
net_batch net_create net_arch net_init optim_ sched_ layer_create layer_batchnorm layer_pool layer_activations layer_flatten
layer_params_lenet layer_params_mlp kernel_ rule_fa_with rule_usf_tracks rule_frsf_keeps rule_partial_concordance
rule_kp_difference rule_wm_uniform rule_batch_manhattan rule_alignment rule_dfa_blocks rule_overrides_by idx_ npy_ data_random
data_split data_pad grad_fc grad_conv_shapes grad_batchnorm_conv grad_dropout_net grad_resblock_option_b}"
echo "valgrind: test_runner $VG_TESTS"
# shellcheck disable=SC2086
$VG "$B/test_runner" $VG_TESTS

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cat >"$dir/tiny.yaml" <<EOF
name: vg
seed: 3
epochs: 2
batch_size: 16
data: {format: random, random: {n: 64, c: 1, h: 8, w: 8, classes: 4}}
model:
  layers:
    - {type: conv, out: 4, k: 3, pad: 1, rule: brsf}
    - batchnorm
    - relu
    - {type: maxpool, k: 2}
    - flatten
    - {type: dropout, p: 0.3}
    - {type: fc, out: 8, rule: kp}
    - relu
    - {type: fc, out: 4, rule: wm}
optimizer: {name: adam, lr: 0.01}
EOF
echo "valgrind: asymbp train, train --resume, export, eval"
$VG "$B/asymbp" train "$dir/tiny.yaml" --set epochs=1 --out "$dir/run" --quiet
$VG "$B/asymbp" train --resume "$dir/run" --set epochs=2 --quiet
$VG "$B/asymbp" export "$dir/run" "$dir/export" >/dev/null
$VG "$B/asymbp" eval "$dir/run" >/dev/null
echo "valgrind: no error, no leak"
