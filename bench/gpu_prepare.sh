#!/usr/bin/env bash
# gpu_prepare.sh — prepares, on a machine WITHOUT a GPU, everything the GPU
# check (bench/gpu_check.sh) needs on the GPU machine, which has nvcc,
# CMake, the CUDA libraries and PyTorch but no GoogleTest, no OpenBLAS and
# nothing reachable to install from.
#
# usage: bench/gpu_prepare.sh DIR
#
# DIR should lie inside the repository: .gpu, which .gitignore ignores, so
# that it does not travel with every call of the device tool but only with
# the calls that name it in `carry` (bench/gpu_check.sh's comment says how;
# the device tool sends the checkout the session was started in, so prepare
# into that checkout). It receives:
#   DIR/build     the project built for sm_90 (H100/H200) in Release, with
#                 the CUDA tests (GoogleTest is linked statically), object
#                 files removed and programs stripped; without MPI (Open
#                 MPI's plugins and launcher are not carried, and a one-GPU
#                 machine has no use for ranks); with NCCL when it is found
#                 here, whose libnccl.so.2 (200 MB) is not carried either:
#                 gpu_check.sh finds it among the GPU machine's Python
#                 packages (PyTorch's nvidia-nccl). BP_GPU_NCCL=OFF builds
#                 without NCCL, for a GPU machine that has none;
#   DIR/lib       the shared libraries those programs load that the GPU
#                 machine lacks (the CPU BLAS, zlib...), found with ldd; the
#                 C/C++ runtime, the CUDA driver and the CUDA toolkit's
#                 libraries (CUPTI's libcupti for step_profile_gpu included)
#                 are the GPU machine's own. The CPU BLAS there is
#                 Debian's reference BLAS (libblas3, with CBLAS: 0.5 MB, no
#                 Fortran runtime) under the name the build links
#                 (libopenblas.so.0): the check's CPU side is small, and
#                 OpenBLAS with its Fortran runtime would take 40 of the
#                 64 MiB. BP_GPU_BLAS=openblas brings OpenBLAS itself;
#   DIR/fashion-mnist  when /usr/share/datasets/fashion-mnist is here
#                 (dataset-fashion-mnist): the test set whole and the first
#                 BP_GPU_FASHION_ROWS (default 20000) training images and
#                 labels, as gzip IDX files under the names `backprop train`
#                 reads, so that the check trains on Fashion-MNIST (the
#                 whole set, 30 MB, does not fit beside the build);
#                 BP_GPU_FASHION_ROWS=0 leaves it out (with
#                 BP_GPU_BLAS=openblas it must: 40 MB more);
#   DIR/prepared.env  where the build expects its source and build trees.
# The whole DIR must stay under the 64 MiB a GPU run may carry; the script
# fails if it does not.
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: bench/gpu_prepare.sh DIR" >&2
    exit 2
fi
src=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$1"
dir=$(cd "$1" && pwd)
build="$dir/build"
jobs=${BP_JOBS:-2}
export PATH="/usr/local/cuda/bin:$PATH"

echo "gpu_prepare: building $src into $build (sm_90, Release, -j$jobs)"
nccl=${BP_GPU_NCCL:-AUTO}
cmake -S "$src" -B "$build" -DBP_CUDA=ON -DBP_WERROR=ON -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CUDA_ARCHITECTURES=90 -DBP_MPI=OFF -DBP_NCCL="$nccl" >"$dir/configure.log" 2>&1 ||
    { echo "gpu_prepare: configure failed (see $dir/configure.log)" >&2; exit 1; }
cmake --build "$build" -j"$jobs" >"$dir/build.log" 2>&1 ||
    { echo "gpu_prepare: build failed (see $dir/build.log)" >&2; exit 1; }

# The programs the check runs: executables and shared libraries of the build.
mapfile -t programs < <(find "$build" -type f \( -perm -u+x -o -name '*.so*' \) \
    -exec sh -c 'head -c 4 "$1" | grep -q "ELF"' sh {} \; -print)

# Libraries they need that the GPU machine does not have: everything ldd
# resolves, less the C and C++ runtime, the dynamic loader and CUDA's own
# (NCCL included: gpu_check.sh finds it there).
mkdir -p "$dir/lib"
system='^(linux-vdso|ld-linux|libc\.|libm\.|libdl\.|librt\.|libpthread\.|libutil\.|libstdc\+\+|libgcc_s|libcuda\.|libcudart|libcublas|libcublasLt|libnccl|libnvidia|libcupti)'
reference_blas=/usr/lib/x86_64-linux-gnu/blas/libblas.so.3
for p in "${programs[@]}"; do
    ldd "$p" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}'
done | sort -u | while read -r name path; do
    if [[ "$name" =~ $system ]] || [[ "$path" == "$build"/* ]]; then
        continue # the GPU machine's own, or part of the build
    fi
    if [ "$name" = libopenblas.so.0 ] && [ "${BP_GPU_BLAS:-reference}" = reference ]; then
        if [ ! -f "$reference_blas" ]; then
            echo "gpu_prepare: $reference_blas not found (apt-get install libblas3)" >&2
            exit 1
        fi
        cp -L "$reference_blas" "$dir/lib/$name"
        continue
    fi
    case "$name" in libgfortran* | libquadmath*)
        [ "${BP_GPU_BLAS:-reference}" = reference ] && continue ;; # OpenBLAS's only
    esac
    cp -L "$path" "$dir/lib/$name"
done

# Slim the build: no object files (nothing is rebuilt there), stripped programs.
find "$build" -name '*.o' -delete
for p in "${programs[@]}"; do
    strip --strip-unneeded "$p" 2>/dev/null || true
done

# Fashion-MNIST for the check's training runs: the training set cut to its
# first rows (the IDX header's count rewritten), the test set whole.
fashion=/usr/share/datasets/fashion-mnist
rows=${BP_GPU_FASHION_ROWS:-20000}
rm -rf "$dir/fashion-mnist"
if [ "$rows" != 0 ] && [ -f "$fashion/train-images-idx3-ubyte.gz" ]; then
    mkdir -p "$dir/fashion-mnist"
    cp "$fashion"/t10k-images-idx3-ubyte.gz "$fashion"/t10k-labels-idx1-ubyte.gz "$dir/fashion-mnist/"
    python3 - "$fashion" "$dir/fashion-mnist" "$rows" <<'PY' ||
import gzip, struct, sys
src, dst, rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):
    with gzip.open(f"{src}/{name}", "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = list(struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim]))
    if not 0 < rows <= dims[0]:
        sys.exit(f"BP_GPU_FASHION_ROWS={rows}: the set has {dims[0]} rows")
    row_bytes = 1
    for d in dims[1:]:
        row_bytes *= d
    head = data[:4] + struct.pack(f">{ndim}I", rows, *dims[1:])
    body = data[4 + 4 * ndim:4 + 4 * ndim + rows * row_bytes]
    with gzip.open(f"{dst}/{name}", "wb", compresslevel=9) as f:
        f.write(head + body)
PY
        { echo "gpu_prepare: could not cut Fashion-MNIST to $rows rows" >&2; exit 1; }
    echo "gpu_prepare: Fashion-MNIST: the first $rows training rows and the test set ($(du -sm "$dir/fashion-mnist" | cut -f1) MiB)"
fi

cat >"$dir/prepared.env" <<ENV
# Written by bench/gpu_prepare.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo unknown)
BP_PREPARED_SRC=$src
BP_PREPARED_BUILD=$build
ENV

size=$(du -sb "$dir" | cut -f1)
limit=$((64 << 20))
echo "gpu_prepare: $dir holds $((size >> 20)) MiB (libraries: $(ls "$dir/lib" | tr '\n' ' '))"
if [ "$size" -ge "$limit" ]; then
    echo "gpu_prepare: $dir is over the 64 MiB a GPU run may carry" >&2
    exit 1
fi
echo "gpu_prepare: ready; carry ${1%/} to the GPU machine (the device tool's carry: [\"${1%/}\"]) and run"
echo "    there, from the repository root: bench/gpu_check.sh /tmp/gpu-check --prepared ${1%/} --copy-to \$OUT"
