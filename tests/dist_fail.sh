#!/usr/bin/env bash
# dist_fail.sh NP BACKPROP MPIEXEC [MPIEXEC FLAGS...]
# `mpirun -np 2|3 backprop train` where one rank fails: before the join (it
# cannot open its data), at the join (another --lr, or other data of the
# same size, or --test on one rank only) and while writing (rank 0 under a file size limit: its
# --checkpoint after the first epoch, its --save at the end). Each run must
# end with a non-zero status and the failing rank's message within 20 s in
# all (MPI's start and the epochs before the failure included; a rank used
# to wait out the 300 s timeout or hang), and no rank but 0 may write
# --checkpoint or --save.
# Open MPI's environment (OMPI_COMM_WORLD_RANK) picks the failing rank.
set -u
nps=$1 bp=$2; shift 2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
awk 'BEGIN { srand(3); print "a,b,c,label";
             for (i = 0; i < 400; i++) printf "%.4f,%.4f,%.4f,%d\n", rand(), rand(), rand(), i % 2 }' >d.csv
sed '2s/^0/1/' d.csv >other.csv # the same size, one value changed
# rank.sh: the last rank (or, with ON_RANK0, rank 0) gets the extra arguments
cat >rank.sh <<'EOF'
#!/bin/bash
me=$OMPI_COMM_WORLD_RANK
target=$((OMPI_COMM_WORLD_SIZE - 1)); [ -n "${ON_RANK0:-}" ] && target=0
extra=()
if [ "$me" = "$target" ]; then
    [ -n "${LIMIT_BLOCKS:-}" ] && ulimit -f "$LIMIT_BLOCKS"
    read -r -a extra <<<"${EXTRA:-}"
fi
exec "$BP" train --device cpu --quiet --epochs 2 --layers 3,32,2 "$@" "${extra[@]}"
EOF
chmod +x rank.sh
export BP=$bp
tried=0 held=0
check() { # NP NAME NEEDLE ARGS...
    local np=$1 name=$2 needle=$3; shift 3
    rm -f ck.st* sv.st*
    tried=$((tried + 1))
    local t0 rc took
    t0=$(date +%s%N)
    timeout 60 "${launcher[@]}" -np "$np" ./rank.sh "$@" >out.txt 2>&1
    rc=$?
    took=$((($(date +%s%N) - t0) / 1000000)) # ms, MPI's start and a few short epochs included
    local ok=1
    [ "$rc" != 0 ] && [ "$rc" != 124 ] && [ "$took" -lt 20000 ] || ok=0
    grep -q -- "$needle" out.txt || ok=0
    # Rank 0 alone writes: under a limit it fails, so nothing may be there.
    [ -n "${LIMIT_BLOCKS:-}" ] && ls ck.st* sv.st* >/dev/null 2>&1 && ok=0
    if [ $ok = 1 ]; then held=$((held + 1)); echo "np=$np $name: status $rc after ${took} ms: held"
    else echo "np=$np $name: status $rc after ${took} ms: FAILED"; cat out.txt; fi
}
launcher=("$@")
for np in $nps; do
    EXTRA="--data missing.csv" check "$np" "before the join: a rank cannot open its data" \
        "missing.csv" --data d.csv
    EXTRA="--lr 0.05" check "$np" "at the join: a rank has another --lr" \
        "lr differs between the ranks" --data d.csv
    EXTRA="--data other.csv" check "$np" "at the join: a rank has other data of the same size" \
        "data differs between the ranks" --data d.csv
    EXTRA="--test other.csv" check "$np" "at the join: a rank alone has --test" \
        "test differs between the ranks" --data d.csv
    ON_RANK0=1 LIMIT_BLOCKS=0 check "$np" "while writing: rank 0 cannot write --checkpoint" \
        "cannot write 'ck.st'" --data d.csv --checkpoint ck.st
    ON_RANK0=1 LIMIT_BLOCKS=0 check "$np" "while writing: rank 0 cannot write --save" \
        "cannot write 'sv.st'" --data d.csv --epochs 1 --save sv.st
done
echo "$held of $tried runs held"
[ "$held" = "$tried" ]
