#!/usr/bin/env bash
# gpu_check_standin.sh — bench/gpu_check.sh run here, without a GPU, against
# stand-ins, so that its logic (arguments, library check, budgets, skips,
# notes, the table with the model, the summary) is tried before a GPU
# machine sees it:
#   - nvidia-smi answers for ONE H100;
#   - no mpiexec on PATH (the GPU machine has no MPI);
#   - a prepared folder (as gpu_prepare.sh makes one, named relative to the
#     caller's directory) whose build tree holds the emulated-GPU programs
#     of tests/cuda.cmake with one device visible (BP_EMU_DEVICES=1), shrunk
#     to a few cases and small networks so that the run takes seconds (the
#     budgets scaled by 5: BP_GPU_BUDGET_SCALE, for shared CPUs), and
#     a ctest file of three cases: one passing, one skipping "needs two CUDA
#     devices" (a note on a one-GPU machine), one MPI case excluded;
#   - compute-sanitizer refuses the device (a note, not a failure);
#   - PyTorch answers its benchmark with a "skip" line (the script itself
#     is tried by bench/README.md's torch_bench.py --device cpu --quick).
# With `nccl` as third argument, a prepared program also needs a library
# that only a stand-in Python package holds (nvidia/standin/lib, as pip's
# nvidia-nccl holds libnccl.so.2 on the GPU image): the kit must find it.
#
# usage: tests/gpu_check_standin.sh BUILD_DIR WORK_DIR [nccl]
# Exit 0 when the check reached its summary with PASS, the budgets summed to
# under 480 s, and the one-device and sanitizer notes were given.
set -euo pipefail
build=$(cd "$1" && pwd)
mkdir -p "$2"
work=$(cd "$2" && pwd)
repo=$(cd "$(dirname "$0")/.." && pwd)
rm -rf "$work/standin"
root="$work/standin"
mkdir -p "$root/bin" "$root/prepared/lib" "$root/prepared/build/tests" \
    "$root/prepared/build/src/cli" "$root/prepared/build/bench" "$root/python"

# PATH: the system's programs (links to them) less MPI's, and the stand-ins.
for dir in /bin /usr/bin /usr/local/bin; do # the later ones win, as on PATH
    cp -sf "$dir"/* "$root/bin/" 2>/dev/null || true
done
rm -f "$root/bin"/mpiexec* "$root/bin"/mpirun* "$root/bin"/orterun* "$root/bin"/ompi* \
    "$root/bin/nvidia-smi" "$root/bin/compute-sanitizer"
cat >"$root/bin/nvidia-smi" <<'EOF'
#!/bin/sh
echo "NVIDIA H100 80GB HBM3, 580.159.04, 81559 MiB, 9.0"
EOF
cat >"$root/bin/compute-sanitizer" <<'EOF'
#!/bin/sh
echo "========= COMPUTE-SANITIZER"
echo "========= Error: Device not supported. (stand-in)"
exit 1
EOF

chmod +x "$root/bin/nvidia-smi" "$root/bin/compute-sanitizer"

# The prepared build: the emulated programs behind the names the kit runs.
b="$root/prepared/build"
wrap() { # wrap PATH COMMAND...: a script that runs COMMAND with the caller's arguments
    printf '#!/bin/sh\nexport BP_EMU_DEVICES=1 BACKPROP_FASHION_MNIST_DIR=/nonexistent\n%s\n' "$2" >"$1"
    chmod +x "$1"
}
wrap "$b/tests/test_core" \
    "exec '$build/tests/test_core_emulated_gpu' '--gtest_filter=CudaDevices.*:Backends/HandWorked.*/cuda_f64'"
# The command, small: compare on a small network, train one epoch.
wrap "$b/src/cli/backprop" "case \"\$1\" in
  compare) shift; a=''
    while [ \$# -gt 0 ]; do case \"\$1\" in --layers|--batch) shift 2 ;; *) a=\"\$a \$1\"; shift ;; esac; done
    exec '$build/tests/backprop_emulated_cli' compare \$a --layers 8,6,3 --batch 9 ;;
  train) exec '$build/tests/backprop_emulated_cli' train --device cuda --epochs 1 --quiet \\
    --layers 2,16,3 --batch 256 ;;
  *) exec '$build/tests/backprop_emulated_cli' \"\$@\" ;;
esac"
wrap "$b/bench/bench_gpu" \
    "exec '$build/tests/bench_gpu_emulated' --smoke --nets a --math fp32,tf32 --seconds 0 --min-steps 1 --max-steps 1"
wrap "$b/bench/bench_train" "echo 'bench_train stand-in: cuda f32 (emulated, not timed)'"
ln -s "$build/tests/step_profile" "$b/tests/step_profile"
cat >"$b/CTestTestfile.cmake" <<EOF
add_test(standin.passes /bin/true)
add_test(standin.needs_two_gpus "$b/tests/test_core")
set_tests_properties(standin.needs_two_gpus PROPERTIES SKIP_REGULAR_EXPRESSION "\\\\[  SKIPPED \\\\]")
add_test(dist_mpi.np2_standin /bin/false)
EOF
if [ "${3:-}" = nccl ]; then
    # A program that needs a library found only in the stand-in package.
    lib="$root/python/nvidia/standin/lib"
    mkdir -p "$lib"
    echo 'int bp_standin_lib;' >"$root/lib.c"
    cc -shared -fPIC -Wl,-soname,libbp_standin.so.2 -o "$lib/libbp_standin.so.2" "$root/lib.c"
    echo 'int main(void) { return 0; }' >"$root/main.c"
    cc -o "$b/tests/needs_standin_lib" "$root/main.c" -Wl,--no-as-needed "$lib/libbp_standin.so.2"
fi
cat >"$root/prepared/prepared.env" <<EOF
BP_PREPARED_SRC=$repo
BP_PREPARED_BUILD=$b
EOF

# Python: the real one, less PyTorch (its benchmark "skips").
py=$(command -v python3)
cat >"$root/bin/python-standin" <<EOF
#!/bin/sh
export PYTHONPATH="$root/python"
case "\$1" in
  bench/torch_bench.py) echo "skip torch: not run by the stand-in"; exit 0 ;;
  -c) case "\$2" in *"import torch"*) exit 0 ;; esac ;;
esac
exec "$py" "\$@"
EOF
chmod +x "$root/bin/python-standin"

echo "== bench/gpu_check.sh --budgets"
PATH="$root/bin" "$repo/bench/gpu_check.sh" --budgets | tee "$root/budgets.txt"
sum=$(awk '$1 == "sum" {print $2}' "$root/budgets.txt")

echo "== bench/gpu_check.sh out --prepared prepared --copy-to brought (from $root)"
rc=0
# (No CUDA library folder: this machine's libnccl.so.2 must not be found.)
# (Budgets x 5: emulated programs on shared CPUs, not an H100.)
(cd "$root" && PATH="$root/bin" PYTHON=python-standin BP_GPU_CUDA_LIBS="$root/no-cuda-libs" \
    BP_GPU_BUDGET_SCALE=5 \
    "$repo/bench/gpu_check.sh" out --prepared prepared --copy-to brought) || rc=$?
summary="$root/out/summary.txt"
bad=0
check() { # check DESCRIPTION COMMAND...
    if "${@:2}"; then echo "standin: ok    $1"; else echo "standin: FAIL  $1"; bad=1; fi
}
check "the check exited 0 (rc $rc)" test "$rc" -eq 0
check "the summary ends in PASS" test "$(tail -n1 "$summary" 2>/dev/null)" = PASS
check "the budgets sum to $sum s, under 480" test "${sum:-999}" -lt 480
check "one GPU seen" grep -q '^note  1 GPU(s)' "$summary"
check "the two-GPU case is a note" grep -q 'needs two CUDA devices' "$summary"
check "the sanitizer's refusal is a note" grep -q '^note  compute-sanitizer memcheck: not available here' "$summary"
check "the MPI case was left out" bash -c "! grep -q 'dist_mpi' '$root/out/logs/ctest.log'"
check "the table holds the model" grep -q 'model h100 us' "$summary"
check "--copy-to brought the summary and the logs" test -s "$root/brought/summary.txt" -a -s "$root/brought/logs.tar.gz"
if [ "${3:-}" = nccl ]; then
    check "the missing library found in the Python package" \
        grep -q '^note  libbp_standin.so.2 from .*nvidia/standin/lib' "$summary"
fi
[ "$bad" -eq 0 ] || { echo "--- summary:"; cat "$summary" 2>/dev/null; }
exit "$bad"
