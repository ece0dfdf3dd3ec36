#!/usr/bin/env bash
# dist_kill.sh NP MPIEXEC [MPIEXEC FLAGS...] -- TEST_DIST_MPI
# The last of NP ranks kills itself mid-training; every other rank must
# report BP_ERR_COMM from its step (test_dist_mpi kill prints
# "rank R: OK step ... failed") and the whole run must end within 60 s.
# --enable-recovery keeps Open MPI's launcher from killing the survivors
# itself, so that it is the library's timeout that ends their steps.
set -u
np=$1; shift
launcher=()
while [ "$1" != "--" ]; do launcher+=("$1"); shift; done
shift
driver=$1
out=$(timeout 60 "${launcher[@]}" --enable-recovery -np "$np" "$driver" kill 2>&1)
rc=$?
echo "$out"
if [ $rc -eq 124 ]; then
    echo "FAILED: the run did not end within 60 s"; exit 1
fi
for ((r = 0; r < np - 1; r++)); do
    if ! grep -q "^rank $r: OK step .* failed after .*communicat\|^rank $r: OK step .* failed after .*did not complete" <<<"$out"; then
        echo "FAILED: rank $r did not report the communication error"; exit 1
    fi
done
echo "every surviving rank got the error (launcher exit status $rc)"
