#!/usr/bin/env bash
# gpu_check.sh — the GPU check of docs/design.md, for a machine with an NVIDIA GPU.
#
# usage: bench/gpu_check.sh OUTDIR [BUILD_DIR | --prepared DIR] [--copy-to DIR]
#        bench/gpu_check.sh --budgets
#
# Paths are taken relative to the directory the script is called from.
#
# How it reaches a GPU. The GPU machine of this project's device tool
# (/work/.library/device/README.md) has nvcc, CMake, the CUDA libraries,
# compute-sanitizer, Python and PyTorch, but no GoogleTest, no OpenBLAS, no
# MPI and nothing reachable to install from; one command runs at most 10
# minutes, and a call carries at most 64 MiB: the repository's tracked and
# untracked-not-ignored files plus the ignored paths the call names in
# `carry`. So the build is made on a machine without a GPU by
# bench/gpu_prepare.sh into a folder of the repository that git ignores
# (.gpu: .gitignore has /.gpu/), and that folder travels only because the
# device call names it: run(command="bench/gpu_check.sh /tmp/check
# --prepared .gpu --copy-to $OUT", carry=[".gpu"], timeout_s=600). (The
# device tool sends the checkout the session was started in: a helper
# working in another worktree prepares into that checkout's .gpu, or copies
# its own there, before the call.) With --copy-to, summary.txt, the table
# and logs.tar.gz (every log) are copied to that folder after each step, so
# that a call cut short still brings back what was done; the device tool
# brings back at most 8 files from $OUT.
#
# What it runs (each step with its own time budget, all of them together
# under 480 s, printed by --budgets; a step's result is printed as it ends):
#   - the GPUs (nvidia-smi; one GPU is enough), then every program's shared
#     libraries (ldd): nothing may be "not found" before anything runs;
#     a library that is missing (NCCL's libnccl.so.2, which the prepared
#     build links and the GPU image has only inside Python's packages:
#     pip's nvidia-nccl, PyTorch's) is looked for there and its folder put
#     on LD_LIBRARY_PATH;
#   - `backprop info`, the CUDA test cases in one process, the step profile
#     on the real runtime (CUPTI);
#   - the GPU benchmark against PyTorch (bench_gpu, torch_bench.py), the
#     cost model's predictions (bench/step_profile --model, the record-only
#     emulation) and one table with the model next to each measurement;
#   - the whole ctest less the emulated-GPU cases (CI runs those) and, when
#     mpiexec is absent, less the MPI ranks; the CPU-vs-GPU comparisons
#     through the command; bench_train; two short training runs;
#   - compute-sanitizer memcheck and racecheck over a subset, last.
# A CUDA case that skips saying "no CUDA device" is a failure (the GPU was
# not used); other skips ("needs two CUDA devices" on a one-GPU machine,
# cases for machines without a GPU) are listed as notes. compute-sanitizer
# missing or refusing the device is a note, not a failure of the library;
# a sanitizer cut by its budget with no error in what it ran is a note too.
# Logs go to OUTDIR; summary.txt lists each step and ends in PASS or FAIL;
# the exit status is non-zero on any failure.
set -euo pipefail
# (Every pipeline cut short by head ends in "|| true": with pipefail, the
# writer's SIGPIPE would otherwise stop the check.)

# ---- the steps' budgets (seconds), in the order they run ---------------------
budget_names=(info cuda_cases step_profile_gpu bench_gpu torch_bench model table ctest
    compare train_bench train train_tf32 memcheck racecheck)
declare -A budget=([info]=10 [cuda_cases]=35 [step_profile_gpu]=20 [bench_gpu]=40
    [torch_bench]=50 [model]=20 [table]=10 [ctest]=90 [compare]=40 [train_bench]=25
    [train]=30 [train_tf32]=20 [memcheck]=45 [racecheck]=25)
budget_limit=480 # one 10-minute device call, with room for the start and the transfers
budget_sum=0
for name in "${budget_names[@]}"; do
    budget_sum=$((budget_sum + budget[$name]))
done
if [ "$budget_sum" -ge "$budget_limit" ]; then
    echo "gpu_check: the step budgets sum to $budget_sum s, not under $budget_limit s" >&2
    exit 2
fi
# BP_GPU_BUDGET_SCALE=N multiplies every budget, for a machine slower than
# the H100/H200 they are sized for (the stand-in run on shared CPUs,
# tests/gpu_check_standin.sh); the limit above holds for the budgets as set.
scale=${BP_GPU_BUDGET_SCALE:-1}
if ! [[ "$scale" =~ ^[1-9][0-9]?$ ]]; then
    echo "gpu_check: BP_GPU_BUDGET_SCALE=$scale: a whole number from 1 to 99" >&2
    exit 2
fi
if [ "${1:-}" = "--budgets" ]; then
    for name in "${budget_names[@]}"; do
        printf '%-18s %4d s\n' "$name" "${budget[$name]}"
    done
    printf '%-18s %4d s (under %d s)\n' "sum" "$budget_sum" "$budget_limit"
    exit 0
fi

# ---- arguments, relative to the caller's directory ---------------------------
usage="usage: bench/gpu_check.sh OUTDIR [BUILD_DIR | --prepared DIR] [--copy-to DIR]"
out_arg="" build_arg="" prepared_arg="" copy_arg=""
while [ $# -gt 0 ]; do
    case "$1" in
    --prepared | --copy-to)
        [ $# -ge 2 ] || { echo "$usage" >&2; exit 2; }
        if [ "$1" = --prepared ]; then prepared_arg=$2; else copy_arg=$2; fi
        shift 2 ;;
    -*) echo "$usage" >&2; exit 2 ;;
    *)
        if [ -z "$out_arg" ]; then out_arg=$1
        elif [ -z "$build_arg" ]; then build_arg=$1
        else echo "$usage" >&2; exit 2; fi
        shift ;;
    esac
done
if [ -z "$out_arg" ] || { [ -n "$build_arg" ] && [ -n "$prepared_arg" ]; }; then
    echo "$usage" >&2
    exit 2
fi
mkdir -p "$out_arg"
out=$(cd "$out_arg" && pwd)
prepared=""
if [ -n "$prepared_arg" ]; then
    prepared=$(cd "$prepared_arg" 2>/dev/null && pwd) || {
        echo "gpu_check: --prepared $prepared_arg: no such folder (from $(pwd); make it with" \
            "bench/gpu_prepare.sh $prepared_arg, and carry it to the GPU machine)" >&2
        exit 2
    }
fi
copy_to=""
if [ -n "$copy_arg" ]; then
    mkdir -p "$copy_arg"
    copy_to=$(cd "$copy_arg" && pwd)
fi
if [ -n "$build_arg" ]; then
    mkdir -p "$build_arg"
    build_arg=$(cd "$build_arg" && pwd)
fi
cd "$(dirname "$0")/.."
repo=$(pwd)

if [ -n "$prepared" ]; then
    if [ ! -f "$prepared/prepared.env" ]; then
        echo "gpu_check: $prepared was not made by bench/gpu_prepare.sh (no prepared.env)" >&2
        exit 2
    fi
    # shellcheck disable=SC1091
    . "$prepared/prepared.env"
    # The build names its source and build trees by absolute path (test data,
    # ctest's files): give this copy of the repository, and the prepared
    # build, the paths they had where they were made.
    if [ ! -e "$BP_PREPARED_SRC" ]; then
        mkdir -p "$(dirname "$BP_PREPARED_SRC")"
        ln -s "$repo" "$BP_PREPARED_SRC"
    fi
    if [ ! -e "$BP_PREPARED_BUILD" ]; then
        mkdir -p "$(dirname "$BP_PREPARED_BUILD")"
        ln -s "$prepared/build" "$BP_PREPARED_BUILD"
    fi
    build=$BP_PREPARED_BUILD
    # The toolkit's libraries (CUPTI's: step_profile_gpu); BP_GPU_CUDA_LIBS
    # names other folders.
    cuda_libs=${BP_GPU_CUDA_LIBS:-/usr/local/cuda/lib64:/usr/local/cuda/extras/CUPTI/lib64}
    export LD_LIBRARY_PATH="$prepared/lib:$cuda_libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
else
    build=${build_arg:-$repo/build-gpu}
fi
mkdir -p "$out/logs"
logs="$out/logs"
summary="$out/summary.txt"
: >"$summary"
failures=0
start=$SECONDS
deadline=$((start + budget_sum * scale))
table=""

say() { printf '%s\n' "$*" | tee -a "$summary"; }
fail() {
    say "FAIL  $*"
    failures=$((failures + 1))
}
# The summary, the table and every log so far, to --copy-to's folder.
bring_back() {
    [ -n "$copy_to" ] || return 0
    cp "$summary" "$copy_to/" 2>/dev/null || true
    [ -z "$table" ] || [ ! -s "$table" ] || cp "$table" "$copy_to/" 2>/dev/null || true
    tar -czf "$copy_to/logs.tar.gz" -C "$out" logs 2>/dev/null || true
}
# show LOG REGEX: the log's lines that match, indented, into the summary.
show() {
    [ -s "$logs/$1" ] || return 0
    grep -E "$2" "$logs/$1" | head -n 60 | sed 's/^/      /' | tee -a "$summary" || true
}

# step NAME LOGFILE BUDGET_KEY COMMAND...: runs COMMAND with its output in
# logs/LOGFILE for at most its budget (less when the deadline is nearer);
# records the time taken and whether it passed. step_rc is the exit status
# (124: cut by the budget).
step_rc=0
step() {
    local name=$1 log=$2 limit=$((budget[$3] * scale))
    shift 3
    local left=$((deadline - SECONDS))
    step_rc=0
    if [ "$left" -lt 3 ]; then
        fail "$name (not run: the check's $((budget_sum * scale)) s are spent)"
        step_rc=125
        return 0
    fi
    [ "$limit" -le "$left" ] || limit=$left
    local t0=$SECONDS
    timeout --kill-after=5 "$limit" "$@" >"$logs/$log" 2>&1 || step_rc=$?
    if [ "$step_rc" -eq 0 ]; then
        say "ok    $name ($((SECONDS - t0)) s, $log)"
    elif [ "$step_rc" -eq 124 ] || [ "$step_rc" -eq 137 ]; then
        step_rc=124
        [ "${soft:-0}" = 1 ] || fail "$name (cut at its budget of $limit s, see $log)"
    else
        [ "${soft:-0}" = 1 ] || fail "$name (exit $step_rc, $((SECONDS - t0)) s, see $log)"
    fi
    bring_back
}

# The skips in a GoogleTest log (one process, or ctest -V's "N: " lines):
# "name<TAB>reason" for each, the reason being the line after "...: Skipped".
skips_of() {
    awk '{
        line = $0; key = "";
        if (match(line, /^[0-9]+: /)) { key = substr(line, 1, RLENGTH - 2); line = substr(line, RLENGTH + 1) }
        if (line ~ /^\[ RUN      \] /) { name[key] = substr(line, 14); next }
        if (want[key]) { print name[key] "\t" line; want[key] = 0; next }
        if (line ~ /: Skipped$/) want[key] = 1
    }' "$1"
}
# Skips of CUDA cases that say the GPU was not used are failures; the rest
# are listed as notes (a one-GPU machine skips the two-GPU cases).
judge_skips() {
    local log=$1 what=$2 all bad
    all=$(skips_of "$logs/$log" | sort -u)
    [ -n "$all" ] || return 0
    bad=$(grep -i 'no CUDA device' <<<"$all" || true)
    if [ -n "$bad" ]; then
        fail "$what: $(wc -l <<<"$bad") case(s) skipped with \"no CUDA device\" on a GPU machine:"
        sed 's/^/      /; s/\t/: /' <<<"$bad" | head -n 20 | tee -a "$summary" || true
    fi
    local rest
    rest=$(grep -iv 'no CUDA device' <<<"$all" || true)
    if [ -n "$rest" ]; then
        say "note  $what: $(wc -l <<<"$rest") case(s) skipped for another reason:"
        cut -f2 <<<"$rest" | sort | uniq -c | sed 's/^ */      /' | head -n 20 |
            tee -a "$summary" || true
    fi
}

export PATH="/usr/local/cuda/bin:$PATH"
say "backprop GPU check, $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
say "note  step budgets: $budget_sum s in all (bench/gpu_check.sh --budgets)"
# Stops the check: what follows needs the GPU or the build.
give_up() {
    fail "$*"
    say "FAIL ($failures step(s))"
    bring_back
    exit 1
}
if ! command -v nvidia-smi >/dev/null; then
    say "FAIL  no GPU here: nvidia-smi is not installed, so this machine has no NVIDIA driver."
    say "      Run this script on the GPU machine (prepare it here with bench/gpu_prepare.sh DIR,"
    say "      then there: bench/gpu_check.sh OUTDIR --prepared DIR)."
    bring_back
    exit 1
fi
if ! nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap \
    --format=csv,noheader >"$logs/gpu.txt" 2>&1 || [ ! -s "$logs/gpu.txt" ]; then
    give_up "nvidia-smi cannot query the GPU (see logs/gpu.txt)"
fi
sed 's/^/gpu   /' "$logs/gpu.txt" | tee -a "$summary"
gpus=$(grep -c . "$logs/gpu.txt")
say "note  $gpus GPU(s); the cases that need two are expected to skip on one"

jobs=$(nproc)
if [ -n "$prepared" ]; then
    say "note  running the build prepared in $prepared (bench/gpu_prepare.sh)"
else
    if [ ! -f "$build/CMakeCache.txt" ]; then
        # Machine code for this GPU only (compute capability 9.0 -> 90): the
        # quickest build that runs here. Not within the budgets above.
        cc=$(head -n1 "$logs/gpu.txt" | awk -F', *' '{print $4}' | tr -d '.[:space:]')
        arch=()
        [[ ! "$cc" =~ ^[0-9]+$ ]] || arch=(-DCMAKE_CUDA_ARCHITECTURES="$cc")
        say "note  configuring $build (not counted in the budgets)"
        cmake -S . -B "$build" -DBP_CUDA=ON -DBP_WERROR=ON -DCMAKE_BUILD_TYPE=Release \
            "${arch[@]}" >"$logs/configure.log" 2>&1 || give_up "configure (see logs/configure.log)"
    fi
    say "note  building $build (not counted in the budgets)"
    cmake --build "$build" -j"$jobs" >"$logs/build.log" 2>&1 || give_up "build (see logs/build.log)"
    deadline=$((SECONDS + budget_sum * scale))
fi
test_bin="$build/tests/test_core"
cli="$build/src/cli/backprop"
[ -x "$test_bin" ] || give_up "no test binary at $test_bin"
[ -x "$cli" ] || give_up "no command at $cli"

# ---- every program's libraries, before anything runs --------------------------
python=${PYTHON:-python3} # the Python with PyTorch
mapfile -t programs < <(find -L "$build" -path '*/CMakeFiles' -prune -o -type f -perm -u+x -print |
    while read -r p; do [ "$(head -c 4 "$p")" != $'\x7fELF' ] || echo "$p"; done)
missing() { # "program: library" for each library ldd does not find
    for p in "${programs[@]}"; do
        ldd "$p" 2>/dev/null | awk -v p="${p#"$build"/}" '/not found/ {print p ": " $1}'
    done
}
# A library's folder among the Python packages' (pip's nvidia-* packages,
# PyTorch's own lib/: NCCL's libnccl.so.2 is there on the GPU image), else
# under the usual prefixes.
find_lib() {
    local dir
    for dir in $("$python" - 2>/dev/null <<'PY'
import importlib.util, os
dirs = []
try:
    import nvidia
    dirs += [os.path.join(p, d, "lib") for p in nvidia.__path__ for d in sorted(os.listdir(p))]
except Exception:
    pass
spec = importlib.util.find_spec("torch")
if spec and spec.origin:
    dirs.append(os.path.join(os.path.dirname(spec.origin), "lib"))
print(*[d for d in dirs if os.path.isdir(d)])
PY
    ); do
        [ -e "$dir/$1" ] && { echo "$dir"; return 0; }
    done
    dir=$(find /opt /usr/local /usr/lib /root -maxdepth 9 -name "$1" 2>/dev/null | head -n1 || true)
    [ -n "$dir" ] && dirname "$dir"
}
lost=$(missing)
for lib in $(awk '{print $2}' <<<"$lost" | sort -u); do
    dir=$(find_lib "$lib" || true)
    if [ -n "$dir" ]; then
        export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$dir"
        say "note  $lib from $dir"
    fi
done
[ -z "$lost" ] || lost=$(missing)
if [ -n "$lost" ]; then
    printf '%s\n' "$lost" >"$logs/ldd_missing.log"
    sed 's/^/      /' "$logs/ldd_missing.log" | sort -u -t: -k2 | head -n 10 |
        tee -a "$summary" || true
    give_up "shared libraries not found (logs/ldd_missing.log); without NCCL on this machine," \
        "prepare with BP_GPU_NCCL=OFF bench/gpu_prepare.sh DIR"
fi
say "ok    libraries: ${#programs[@]} programs, nothing \"not found\""

# ---- the GPU: the command, the CUDA cases, the runtime's counts ----------------
step "backprop info (devices)" info.log info "$cli" info
show info.log 'cuda|CUDA|device'
step "CUDA cases, one process" cuda_cases.log cuda_cases "$test_bin" \
    --gtest_filter='*cuda*:*Cuda*:*CpuVsGpu*:-CudaNoDevice.*:*SeparatesTwoSpirals*'
show cuda_cases.log '^\[  (PASSED|FAILED) '
judge_skips cuda_cases.log "CUDA cases"
# The step profile of bench/step_profile.c on the real runtime, counted with
# CUPTI callbacks (bench/cupti_counters.c).
if [ -x "$build/bench/step_profile_gpu" ]; then
    step "step profile on the real runtime (CUPTI)" step_profile_gpu.log step_profile_gpu \
        "$build/bench/step_profile_gpu"
    show step_profile_gpu.log '^(graph|eager)\.(kernel_launches|blas_calls|host_syncs) '
else
    say "note  no step profile on the real runtime (CUPTI was not found at build time)"
fi

# ---- the benchmark, the model's predictions and the table ----------------------
# bench_gpu and torch_bench.py print each result as it is measured: a run cut
# short still gives a partial table.
gpu_name=$(head -n1 "$logs/gpu.txt" | cut -d, -f1 | tr -cs 'A-Za-z0-9' '-' | sed 's/-$//')
step "GPU benchmark (backprop eager/graphs, GEMM floor, copy)" bench_gpu.log bench_gpu \
    "$build/bench/bench_gpu" --seconds 0.2
show bench_gpu.log '^result '
if "$python" -c 'import torch' >/dev/null 2>&1; then
    step "PyTorch benchmark (eager, CUDA graphs)" torch_bench.log torch_bench \
        "$python" bench/torch_bench.py --seconds 0.2
    show torch_bench.log '^result '
else
    fail "PyTorch benchmark (not run: $python cannot import torch here; set PYTHON)"
fi
# The cost model (bench/step_profile.c, record-only emulation: no GPU used).
model_args=()
if [ -x "$build/tests/step_profile" ]; then
    step "cost model (step_profile --model, record-only emulation)" model.log model \
        "$build/tests/step_profile" --model
    model_args=(--model "$logs/model.log")
else
    say "note  no cost model (tests/step_profile is built with the CUDA toolkit and the tests)"
fi
table="$out/$(date -u +%Y-%m-%d)-${gpu_name:-gpu}-gpu-bench.md"
step "benchmark table (the model next to each measurement)" gpu_bench_table.log table \
    "$python" bench/gpu_bench_table.py "$logs/bench_gpu.log" "$logs/torch_bench.log" "$table" \
    "${model_args[@]}"
show gpu_bench_table.log '^\| [abc] \| .*(graphs|gemm|GEMMs alone|step \(graphs\)) \||^- (b|c), |^\| net \|'

# ---- the whole suite, comparisons, training ------------------------------------
# Less the emulated GPU (CI runs it; it needs no GPU), the package test
# where the build is prepared (no objects or GoogleTest to build with), and
# the MPI ranks when there is no mpiexec.
exclude='^(emulated_gpu\.|emulated_runtime\.|NcclEmulated\.|EmulatedKernels|EmulatedWarpShuffles)'
[ -z "$prepared" ] || exclude+='|^package_install_and_consume$'
command -v mpiexec >/dev/null || exclude+='|^dist_mpi\.'
ctest_jobs=$((jobs < 16 ? jobs : 16))
step "ctest (the suite less the emulated GPU)" ctest.log ctest ctest --test-dir "$build" -V \
    --no-tests=error --timeout 60 -j"$ctest_jobs" -E "$exclude"
show ctest.log '(% tests passed|\*\*\*Failed|\*\*\*Timeout)'
judge_skips ctest.log "ctest"

soft=0
step "compare f64, f32, f32 tf32, f32 bf16" compare.log compare bash -c '
    set -e
    for args in "--dtype f64" "--dtype f32" "--dtype f32 --math tf32" "--dtype f32 --math bf16"; do
        echo "== backprop compare $args"
        "$0" compare $args --layers 784,1024,1024,10 --batch 257
    done' "$cli"
show compare.log '^== |max rel|PASS|FAIL'
step "bench_train --quick --cuda-only" bench_train.log train_bench "$build/bench/bench_train" \
    --quick --cuda-only
show bench_train.log 'cuda'
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
step "train (the default job, 3 epochs, CUDA graphs)" train.log train "$cli" train --device cuda \
    --epochs 3
[ ! -s "$logs/train.log" ] || say "      train.log: $(tail -n1 "$logs/train.log")"
step "train, tf32, no graphs (1 epoch)" train_tf32.log train_tf32 "$cli" train --device cuda \
    --epochs 1 --math tf32 --no-graphs
[ ! -s "$logs/train_tf32.log" ] || say "      train_tf32.log: $(tail -n1 "$logs/train_tf32.log")"

# ---- compute-sanitizer, last ------------------------------------------------------
# (Not the CudaErrors cases: their failing cudaMalloc is an API error the
# sanitizer would count.) A refusal of the device, or no compute-sanitizer,
# is a note: the library is not at fault. A run cut by its budget counts only
# the errors it found.
subset='Backends/HandWorked.*/cuda_*:Backends/Buffers.*/cuda_*:CudaStreams.*'
subset+=':Backends/EpochSteps.*/cuda:Cases/CpuVsGpu.*/f32_relu_ce_b37_7_3_5'
sanitize() {
    local name=$1 log=$2 key=$3
    shift 3
    soft=1
    step "compute-sanitizer $name" "$log" "$key" compute-sanitizer "$@" --error-exitcode 1 \
        "$test_bin" --gtest_filter="$subset"
    soft=0
    local found
    found=$(grep -cE '^========= +(Invalid|Program hit|Race|Uninitialized|Leaked|Barrier|Error: [^D])' \
        "$logs/$log" || true)
    if grep -qiE '^=+ .*(not supported|unable to|failed to initialize)' "$logs/$log"; then
        say "note  compute-sanitizer $name: not available here ($(grep -iE '^=+ .*(not supported|unable to|failed to initialize)' "$logs/$log" | head -n1 | sed 's/^=* *//'))"
    elif [ "$step_rc" -eq 124 ] && [ "$found" -eq 0 ]; then
        say "note  compute-sanitizer $name: cut at its budget, no error in what it ran ($log)"
    elif [ "$step_rc" -ne 0 ]; then
        fail "compute-sanitizer $name (exit $step_rc, $found report(s), see $log)"
    fi
    show "$log" '^========= (ERROR SUMMARY|LEAK SUMMARY)'
}
if command -v compute-sanitizer >/dev/null; then
    sanitize memcheck memcheck.log memcheck --tool memcheck --leak-check full
    sanitize racecheck racecheck.log racecheck --tool racecheck
else
    say "note  compute-sanitizer not found: the sanitizer runs are not available here"
fi

say "time  $((SECONDS - start)) s in all (budgets: $((budget_sum * scale)) s)"
say "note  to record it: cp $summary bench/results/$(date -u +%Y-%m-%d)-${gpu_name:-gpu}.txt"
[ ! -s "$table" ] || say "      and: cp $table bench/results/"
if [ "$failures" -eq 0 ]; then
    say "PASS"
    bring_back
else
    say "FAIL ($failures step(s))"
    bring_back
    exit 1
fi
