#!/usr/bin/env bash
# gpu_check.sh — the GPU check of DESIGN.md, for a machine with an NVIDIA GPU.
#
# usage: bench/gpu_check.sh OUTDIR [BUILD_DIR]
#
# Builds the project with the CUDA backend (or reuses BUILD_DIR when it holds
# a build), runs the whole test suite with the CUDA cases enabled and checks
# that none of them skipped, runs compute-sanitizer memcheck and racecheck
# over a subset of the CUDA tests, the CPU-vs-GPU comparison and the
# training benchmark. Logs go to OUTDIR; the last line says PASS or FAIL.
# Meant to finish in a few minutes on an H100/H200-class GPU.
set -uo pipefail

out=${1:?usage: bench/gpu_check.sh OUTDIR [BUILD_DIR]}
build=${2:-build-gpu}
cd "$(dirname "$0")/.." || exit 1
mkdir -p "$out"
summary="$out/summary.txt"
: >"$summary"
failures=0

say() { printf '%s\n' "$*" | tee -a "$summary"; }
step() { # step NAME LOGFILE COMMAND...: runs, records time and status
    local name=$1 log=$2
    shift 2
    local t0=$SECONDS
    if "$@" >"$out/$log" 2>&1; then
        say "ok    $name ($((SECONDS - t0)) s, $log)"
    else
        say "FAIL  $name (exit $?, $((SECONDS - t0)) s, see $log)"
        failures=$((failures + 1))
    fi
}

export PATH="/usr/local/cuda/bin:$PATH"
say "backprop GPU check, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader \
        | tee "$out/gpu.txt" | sed 's/^/gpu   /' | tee -a "$summary"
else
    say "FAIL  nvidia-smi not found: this machine has no NVIDIA driver"
    exit 1
fi

jobs=$(nproc)
if [ ! -f "$build/CMakeCache.txt" ]; then
    step "configure" configure.log cmake -S . -B "$build" -DBP_CUDA=ON -DBP_WERROR=ON \
        -DCMAKE_CUDA_ARCHITECTURES=90
fi
step "build" build.log cmake --build "$build" -j"$jobs"
test_bin="$build/tests/test_core"
[ -x "$test_bin" ] || { say "FAIL  no test binary at $test_bin"; exit 1; }

step "ctest (all tests)" ctest.log ctest --test-dir "$build" --output-on-failure \
    --no-tests=error -j4
# Every CUDA case must have run here: a skip on a GPU machine is a failure.
step "cuda cases ran" cuda_cases.log "$test_bin" --gtest_filter='*cuda*:*Cuda*:*CpuVsGpu*:-CudaNoDevice.*'
if grep -q 'SKIPPED \]' "$out/cuda_cases.log"; then
    say "FAIL  CUDA cases skipped on a GPU machine (see cuda_cases.log)"
    failures=$((failures + 1))
fi

subset='Backends/HandWorked.*/cuda_*:Backends/Buffers.*/cuda_*:CudaTraining.*:Cases/CpuVsGpu.*/f32_relu_ce_b37_7_3_5:Cases/CpuVsGpu.*/f64_sigmoid_bce_b129_33_1000_129_10'
if command -v compute-sanitizer >/dev/null; then
    step "compute-sanitizer memcheck" memcheck.log compute-sanitizer --tool memcheck \
        --leak-check full --error-exitcode 1 "$test_bin" --gtest_filter="$subset"
    step "compute-sanitizer racecheck" racecheck.log compute-sanitizer --tool racecheck \
        --error-exitcode 1 "$test_bin" --gtest_filter="$subset"
else
    say "FAIL  compute-sanitizer not found"
    failures=$((failures + 1))
fi

cli="$build/src/cli/backprop"
step "compare f64" compare_f64.log "$cli" compare --dtype f64 --layers 784,1024,1024,10 --batch 257
step "compare f32" compare_f32.log "$cli" compare --dtype f32 --layers 784,1024,1024,10 --batch 257
step "benchmark" bench.log "$build/bench/bench_train"
step "train (default main job)" train.log "$cli" train --device cuda --epochs 5

sed 's/^/      /' "$out/bench.log" | tee -a "$summary" >/dev/null
if [ "$failures" -eq 0 ]; then say "PASS"; else say "FAIL ($failures step(s))"; fi
[ "$failures" -eq 0 ]
