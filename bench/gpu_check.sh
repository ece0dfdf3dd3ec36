#!/usr/bin/env bash
# gpu_check.sh — the GPU check of docs/design.md, for a machine with an NVIDIA GPU.
#
# usage: bench/gpu_check.sh OUTDIR [BUILD_DIR]
#        bench/gpu_check.sh OUTDIR --prepared DIR
#
# Builds the project with the CUDA backend for the GPUs present (or reuses
# BUILD_DIR when it already holds a configured build; or, with --prepared,
# runs the build that bench/gpu_prepare.sh made in DIR on a machine without
# a GPU, with the libraries it brought: for a GPU machine that has no
# GoogleTest or OpenBLAS and cannot install them), runs the whole test
# suite with the CUDA cases enabled and checks that none of them skipped,
# runs compute-sanitizer memcheck and racecheck over a small subset of the
# CUDA tests, the CPU-vs-GPU comparison through the command, the training
# benchmark, a short training run, the step profile counted on the real
# runtime (CUPTI), and the GPU benchmark against PyTorch
# (bench_gpu, torch_bench.py) with its table (gpu_bench_table.py) in
# OUTDIR. Every step has a time limit, cut to what is left of a 350 s
# budget, so that the whole check ends within 6 minutes (H100/H200-class
# GPU, 16 cores). Logs go to OUTDIR; summary.txt lists each step, and its
# last line says PASS or FAIL. The exit status is non-zero on any failure.
set -euo pipefail

usage="usage: bench/gpu_check.sh OUTDIR [BUILD_DIR | --prepared DIR]"
if [ $# -lt 1 ] || [ $# -gt 3 ] || { [ $# -eq 3 ] && [ "$2" != "--prepared" ]; } ||
    { [ $# -eq 2 ] && [ "$2" = "--prepared" ]; }; then
    echo "$usage" >&2
    exit 2
fi
mkdir -p "$1"
out=$(cd "$1" && pwd)
cd "$(dirname "$0")/.."
prepared=""
if [ $# -eq 3 ]; then
    prepared=$(cd "$3" 2>/dev/null && pwd) || {
        echo "gpu_check: --prepared $3: no such folder (make it with bench/gpu_prepare.sh $3)" >&2
        exit 2
    }
    if [ ! -f "$prepared/prepared.env" ]; then
        echo "gpu_check: $3 was not made by bench/gpu_prepare.sh (no prepared.env)" >&2
        exit 2
    fi
    # shellcheck disable=SC1091
    . "$prepared/prepared.env"
    # The build names its source and build trees by absolute path (test data,
    # ctest's files): give this copy of the repository that path.
    if [ ! -e "$BP_PREPARED_SRC" ]; then
        mkdir -p "$(dirname "$BP_PREPARED_SRC")"
        ln -s "$(pwd)" "$BP_PREPARED_SRC"
    fi
    build=$BP_PREPARED_BUILD
    cuda_libs=/usr/local/cuda/lib64:/usr/local/cuda/extras/CUPTI/lib64 # CUPTI: step_profile_gpu
    export LD_LIBRARY_PATH="$prepared/lib:$cuda_libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
else
    build=${2:-build-gpu}
fi
summary="$out/summary.txt"
: >"$summary"
failures=0
start=$SECONDS
deadline=$((start + 350)) # the whole check: under 6 minutes

say() { printf '%s\n' "$*" | tee -a "$summary"; }
fail() {
    say "FAIL  $*"
    failures=$((failures + 1))
}

# step NAME LOGFILE LIMIT_S COMMAND...: runs COMMAND with its output in
# LOGFILE, for at most LIMIT_S seconds (less when the deadline is nearer);
# records the time taken and whether it passed.
step() {
    local name=$1 log=$2 limit=$3
    shift 3
    local left=$((deadline - SECONDS))
    if [ "$left" -lt 5 ]; then
        fail "$name (not run: the 6-minute budget is spent)"
        return 0
    fi
    [ "$limit" -le "$left" ] || limit=$left
    local t0=$SECONDS rc=0
    timeout --kill-after=10 "$limit" "$@" >"$out/$log" 2>&1 || rc=$?
    if [ "$rc" -eq 0 ]; then
        say "ok    $name ($((SECONDS - t0)) s, $log)"
    elif [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        fail "$name (timed out after $limit s, see $log)"
    else
        fail "$name (exit $rc, $((SECONDS - t0)) s, see $log)"
    fi
}

export PATH="/usr/local/cuda/bin:$PATH"
say "backprop GPU check, $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if ! command -v nvidia-smi >/dev/null; then
    say "FAIL  no GPU here: nvidia-smi is not installed, so this machine has no NVIDIA driver."
    say "      Run this script on the GPU machine (prepare it here with bench/gpu_prepare.sh DIR,"
    say "      then there: bench/gpu_check.sh OUTDIR --prepared DIR)."
    exit 1
fi
if ! nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap \
    --format=csv,noheader >"$out/gpu.txt" 2>&1; then
    say "FAIL  nvidia-smi cannot query the GPU (see gpu.txt)"
    exit 1
fi
sed 's/^/gpu   /' "$out/gpu.txt" | tee -a "$summary"

# Stops the check: what follows needs a build.
give_up() {
    fail "$*"
    say "FAIL ($failures step(s))"
    exit 1
}

jobs=$(nproc)
if [ -n "$prepared" ]; then
    say "note  running the build prepared in $prepared (made by bench/gpu_prepare.sh)"
elif [ ! -f "$build/CMakeCache.txt" ]; then
    # Machine code for this GPU only (compute capability 9.0 -> 90): the
    # quickest build that runs here. Without it, the project's default.
    cc=$(head -n1 "$out/gpu.txt" | awk -F', *' '{print $4}' | tr -d '.[:space:]')
    arch=()
    if [[ "$cc" =~ ^[0-9]+$ ]]; then
        arch=(-DCMAKE_CUDA_ARCHITECTURES="$cc")
    fi
    before=$failures
    step "configure" configure.log 90 cmake -S . -B "$build" -DBP_CUDA=ON -DBP_WERROR=ON \
        -DCMAKE_BUILD_TYPE=Release "${arch[@]}"
    [ "$failures" -eq "$before" ] || give_up "cannot go on without a configured build"
else
    say "note  reusing the build in $build"
fi
before=$failures
if [ -z "$prepared" ]; then
    step "build" build.log 180 cmake --build "$build" -j"$jobs"
fi
[ "$failures" -eq "$before" ] || give_up "cannot go on without a build"
test_bin="$build/tests/test_core"
[ -x "$test_bin" ] || give_up "no test binary at $test_bin"
cli="$build/src/cli/backprop"
step "backprop info (devices)" info.log 20 "$cli" info

ctest_jobs=$((jobs < 8 ? jobs : 8))
# A prepared build cannot rebuild (no objects, no GoogleTest or BLAS to link):
# the test that builds and installs the package is left to CI there.
exclude=()
[ -z "$prepared" ] || exclude=(-E '^package_install_and_consume$')
step "ctest (all tests)" ctest.log 120 ctest --test-dir "$build" --output-on-failure \
    --no-tests=error --timeout 60 -j"$ctest_jobs" "${exclude[@]}"
# Every CUDA case must have run: a skip on a GPU machine is a failure. The
# no-device cases are the exception (they are for machines without a GPU).
if grep -E '\(Skipped\)' "$out/ctest.log" | grep -iE 'cuda|CpuVsGpu' |
    grep -v 'CudaNoDevice' >"$out/cuda_skips.log"; then
    fail "CUDA cases skipped on a GPU machine ($(wc -l <"$out/cuda_skips.log") listed in cuda_skips.log)"
fi
step "cuda cases, one process" cuda_cases.log 60 "$test_bin" \
    --gtest_filter='*cuda*:*Cuda*:*CpuVsGpu*:-CudaNoDevice.*'
if grep -q '^\[  SKIPPED \]' "$out/cuda_cases.log"; then
    fail "CUDA cases skipped in cuda_cases.log"
fi

# (Not the CudaErrors cases: their failing cudaMalloc is an API error the
# sanitizer would count.)
subset='Backends/HandWorked.*/cuda_*:Backends/Buffers.*/cuda_*:CudaTraining.*:CudaStreams.*'
subset+=':Backends/EpochSteps.*/cuda'
subset+=':Cases/CpuVsGpu.*/f32_relu_ce_b37_7_3_5:Cases/CpuVsGpu.*/f64_sigmoid_bce_b129_33_1000_129_10'
if command -v compute-sanitizer >/dev/null; then
    step "compute-sanitizer memcheck" memcheck.log 100 compute-sanitizer --tool memcheck \
        --leak-check full --error-exitcode 1 "$test_bin" --gtest_filter="$subset"
    step "compute-sanitizer racecheck" racecheck.log 60 compute-sanitizer --tool racecheck \
        --error-exitcode 1 "$test_bin" --gtest_filter="$subset"
else
    fail "compute-sanitizer not found (it comes with the CUDA toolkit, /usr/local/cuda/bin)"
fi

step "compare f64" compare_f64.log 30 "$cli" compare --dtype f64 --layers 784,1024,1024,10 --batch 257
step "compare f32" compare_f32.log 30 "$cli" compare --dtype f32 --layers 784,1024,1024,10 --batch 257
step "compare f32 tf32" compare_tf32.log 30 "$cli" compare --dtype f32 --math tf32 \
    --layers 784,1024,1024,10 --batch 257
step "compare f32 bf16" compare_bf16.log 30 "$cli" compare --dtype f32 --math bf16 \
    --layers 784,1024,1024,10 --batch 257
step "benchmark" bench.log 60 "$build/bench/bench_train"
# On Fashion-MNIST when the data are here: the prepared subset
# (gpu_prepare.sh), or the command's own default folder.
if [ -n "$prepared" ] && [ -f "$prepared/fashion-mnist/train-images-idx3-ubyte.gz" ]; then
    export BACKPROP_FASHION_MNIST_DIR="$prepared/fashion-mnist"
fi
if [ -n "${BACKPROP_FASHION_MNIST_DIR:-}" ] || [ -d /usr/share/datasets/fashion-mnist ]; then
    say "note  training on Fashion-MNIST (${BACKPROP_FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist})"
else
    say "note  no Fashion-MNIST here: the training runs use the command's generated set"
fi
step "train (the default job, 5 epochs)" train.log 60 "$cli" train --device cuda --epochs 5
step "train, tf32, no graphs (2 epochs)" train_tf32.log 40 "$cli" train --device cuda --epochs 2 \
    --math tf32 --no-graphs
for log in train.log train_tf32.log; do # the runs' last lines, into the summary
    [ -f "$out/$log" ] && say "      $log: $(tail -n1 "$out/$log")"
done

# The step profile of bench/step_profile.c on the real runtime: the same
# loop and graph./eager. lines, counted with CUPTI callbacks
# (bench/cupti_counters.c; cuBLAS's kernels count as blas_calls).
if [ -x "$build/bench/step_profile_gpu" ]; then
    step "step profile on the real runtime (CUPTI)" step_profile_gpu.log 30 \
        "$build/bench/step_profile_gpu"
else
    fail "step profile on the real runtime (no $build/bench/step_profile_gpu: CUPTI not found at build time)"
fi

# The GPU benchmark against PyTorch (bench/README.md): backprop's step and
# its GEMM floor (bench_gpu), PyTorch's (torch_bench.py), then one table.
# Each prints its lines as it goes: a run cut short still gives a partial
# table. Estimated (not yet run on a GPU): ~20 s and ~40 s on an H200.
gpu_name=$(head -n1 "$out/gpu.txt" | cut -d, -f1 | tr -cs 'A-Za-z0-9' '-' | sed 's/-$//')
step "GPU benchmark (backprop eager/graphs, GEMM floor, copy)" bench_gpu.log 70 \
    "$build/bench/bench_gpu" --seconds 0.2
python=${PYTHON:-python3} # the Python with PyTorch
if "$python" -c 'import torch' >/dev/null 2>&1; then
    step "PyTorch benchmark (eager, CUDA graphs)" torch_bench.log 90 \
        "$python" bench/torch_bench.py --seconds 0.2
else
    fail "PyTorch benchmark (not run: $python cannot import torch here; set PYTHON)"
fi
table="$out/$(date -u +%Y-%m-%d)-${gpu_name:-gpu}-gpu-bench.md"
if command -v "$python" >/dev/null; then
    step "benchmark table" gpu_bench_table.log 15 "$python" bench/gpu_bench_table.py \
        "$out/bench_gpu.log" "$out/torch_bench.log" "$table"
else
    fail "benchmark table (not made: no $python)"
fi

if [ -s "$out/bench.log" ]; then
    sed 's/^/      /' "$out/bench.log" >>"$summary"
fi
if [ -s "$out/step_profile_gpu.log" ]; then
    sed 's/^/      /' "$out/step_profile_gpu.log" >>"$summary"
fi
if [ -s "$table" ]; then
    sed 's/^/      /' "$table" >>"$summary"
fi
say "time  $((SECONDS - start)) s in all"
say "note  to record it: cp $out/summary.txt bench/results/$(date -u +%Y-%m-%d)-${gpu_name:-gpu}.txt"
say "      and: cp $table bench/results/"
if [ "$failures" -eq 0 ]; then
    say "PASS"
else
    say "FAIL ($failures step(s))"
    exit 1
fi
