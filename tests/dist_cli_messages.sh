#!/usr/bin/env bash
# dist_cli_messages.sh BACKPROP NP MPIEXEC [MPIEXEC FLAGS...]
# Under mpirun every message is printed once: an error every rank meets
# (a missing file, a bad flag), a note, eval's report; and SIGTERM sent to
# the ranks stops them after the same step: rank 0 saves and every rank
# exits 143, which mpirun reports.
set -euo pipefail
bp=$1; np=$2; shift 2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAILED: $*"; exit 1; }
count() { grep -c -- "$1" "$2" || true; }

printf 'a,b,label\n' >"$work/d.csv"
for i in $(seq 1 400); do echo "$((i % 7)).5,$((i % 3)),$((i % 2))"; done >>"$work/d.csv"

rc=0; "$@" -np "$np" "$bp" train --data "$work/missing.csv" >"$work/out" 2>"$work/err" || rc=$?
[ "$rc" != 0 ] || fail "a missing file succeeded"
[ "$(count "cannot open" "$work/err")" = 1 ] || { cat "$work/err"; fail "'cannot open' is not printed once"; }
rc=0; "$@" -np "$np" "$bp" train --data "$work/d.csv" --bogus >"$work/out" 2>"$work/err" || rc=$?
[ "$rc" = 2 ] || fail "a bad flag exited $rc, not 2"
[ "$(count "unknown flag" "$work/err")" = 1 ] || { cat "$work/err"; fail "the usage error is not printed once"; }

"$@" -np "$np" "$bp" train --data "$work/d.csv" --epochs 2 --device cpu --save "$work/m.st" \
    >"$work/out" 2>"$work/err"
[ "$(count "note: .*the first row is a header" "$work/err")" = 1 ] || { cat "$work/err"; fail "the note is not printed once"; }
[ "$(count "^training accuracy" "$work/out")" = 1 ] || fail "the result is not printed once"
"$@" -np "$np" "$bp" eval --model "$work/m.st" --data "$work/d.csv" >"$work/out" 2>"$work/err"
[ "$(count "^samples 400" "$work/out")" = 1 ] || { cat "$work/out"; fail "eval's report is not printed once"; }

# SIGTERM to every rank (as a batch system sends it): one note, rank 0's
# model saved, exit status 143 through mpirun.
rm -f "$work/m.st"
"$@" -np "$np" "$bp" train --data "$work/d.csv" --epochs 100000 --batch 6 --device cpu \
    --save "$work/m.st" >"$work/out" 2>"$work/err" &
launcher=$!
for _ in $(seq 1 100); do grep -q "^epoch 1/" "$work/out" && break; sleep 0.1; done
ranks=$(pgrep -P "$launcher" -x backprop || true)
[ -n "$ranks" ] || { kill "$launcher"; fail "no rank of pid $launcher found"; }
# shellcheck disable=SC2086 # one argument per rank
kill -TERM $ranks
rc=0; wait "$launcher" || rc=$?
[ "$rc" = 143 ] || { cat "$work/err"; fail "mpirun exited $rc after SIGTERM to the ranks, not 143"; }
[ -s "$work/m.st" ] || fail "rank 0 saved no model"
[ "$(count "note: interrupted at epoch" "$work/err")" = 1 ] || { cat "$work/err"; fail "the interruption is not noted once"; }
echo "OK: $np ranks, every message once, SIGTERM -> 143 with the model saved"
