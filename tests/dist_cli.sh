#!/usr/bin/env bash
# dist_cli.sh BACKPROP MPIEXEC [MPIEXEC FLAGS...]
# `mpirun -np 2 backprop train` on the generated spirals (float64): prints
# its result once, saves from rank 0 only, and reaches the accuracy and
# loss one process reaches with the same global batch.
set -euo pipefail
bp=$1; shift
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export BACKPROP_FASHION_MNIST_DIR=$work/none   # the generated data set
args=(train --epochs 4 --batch 50 --dtype f64 --lr 0.05)
"$bp" "${args[@]}" --save "$work/one.safetensors" >"$work/one.out"
"$@" -np 2 "$bp" "${args[@]}" --save "$work/two.safetensors" --log "$work/two.csv" >"$work/two.out"
cat "$work/two.out"
final() { grep -E '^test accuracy' "$1" | sed 's/ in [0-9.]*s on .*//'; }
[ "$(grep -c '^test accuracy' "$work/two.out")" = 1 ] || { echo "FAILED: the result is not printed once"; exit 1; }
grep -q '^data-parallel: 2 ranks' "$work/two.out" || { echo "FAILED: no data-parallel line"; exit 1; }
[ -s "$work/two.safetensors" ] && [ -s "$work/two.csv" ] || { echo "FAILED: rank 0 wrote no model or log"; exit 1; }
[ "$(wc -l <"$work/two.csv")" = 5 ] || { echo "FAILED: the log has not 1 + 4 rows"; exit 1; }
one=$(final "$work/one.out"); two=$(final "$work/two.out")
echo "one process: $one"; echo "two ranks:   $two"
[ "$one" = "$two" ] || { echo "FAILED: the two runs differ"; exit 1; }
echo "OK"
