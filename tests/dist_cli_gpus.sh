#!/usr/bin/env bash
# dist_cli_gpus.sh BACKPROP
# `backprop train --device cuda:0,1` (one process, two GPUs, one thread
# each) on the generated spirals in float64: reaches the accuracy and loss
# of `--device cuda:0` alone with the same global batch, printed once.
set -euo pipefail
bp=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export BACKPROP_FASHION_MNIST_DIR=$work/none   # the generated data set
args=(train --epochs 2 --batch 60 --dtype f64 --lr 0.05 --layers 2,32,16,3)
"$bp" "${args[@]}" --device cuda:0 >"$work/one.out"
"$bp" "${args[@]}" --device cuda:0,1 --save "$work/two.safetensors" >"$work/two.out"
cat "$work/two.out"
final() { grep -E '^test accuracy' "$1" | sed 's/ in [0-9.]*s on .*//'; }
[ "$(grep -c '^test accuracy' "$work/two.out")" = 1 ] || { echo "FAILED: the result is not printed once"; exit 1; }
grep -q '^data-parallel: 2 GPUs of this process (cuda:0,cuda:1)' "$work/two.out" || { echo "FAILED: no data-parallel line"; exit 1; }
[ -s "$work/two.safetensors" ] || { echo "FAILED: no model saved"; exit 1; }
one=$(final "$work/one.out"); two=$(final "$work/two.out")
echo "one GPU:  $one"; echo "two GPUs: $two"
[ "$one" = "$two" ] || { echo "FAILED: the two runs differ"; exit 1; }
echo "OK"
