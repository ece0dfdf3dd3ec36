#!/usr/bin/env bash
# check_package.sh BUILD_DIR SOURCE_DIR — the installed library as a user
# sees it: only bp_ symbols exported; find_package(backprop) with the shared
# and the static library; pkg-config, shared and --static. Each consumer
# trains XOR. CFLAGS and LDFLAGS reach the consumers (the sanitizer build
# sets them).
set -euo pipefail
build=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

other=$(nm -D --defined-only "$build/libbackprop.so" | awk '$2 ~ /[TDBR]/ && $3 !~ /^bp_/ {print $3}')
if [ -n "$other" ]; then
    echo "libbackprop.so exports symbols without the bp_ prefix:"; echo "$other"; exit 1
fi
echo "exports: $(nm -D --defined-only "$build/libbackprop.so" | awk '$2 ~ /T/' | wc -l) functions, all bp_"

cmake --install "$build" --prefix "$work/prefix" >/dev/null
mkdir "$work/consumer"
cp "$src/examples/xor.c" "$work/consumer/"
cat >"$work/consumer/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.25)
project(consumer C)
find_package(backprop REQUIRED)
add_executable(shared_xor xor.c)
target_link_libraries(shared_xor PRIVATE backprop::backprop)
add_executable(static_xor xor.c)
target_link_libraries(static_xor PRIVATE backprop::backprop_static)
CMAKE
cmake -S "$work/consumer" -B "$work/consumer/build" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/consumer/build" >/dev/null
"$work/consumer/build/shared_xor"
"$work/consumer/build/static_xor"
export PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig"
# shellcheck disable=SC2046,SC2086 # word splitting of the flags is intended
cc ${CFLAGS:-} "$work/consumer/xor.c" ${LDFLAGS:-} $(pkg-config --cflags --libs backprop) -Wl,-rpath,"$work/prefix/lib" \
    -o "$work/pc_xor"
"$work/pc_xor"
# The static library with pkg-config --static: Libs.private must name the
# BLAS (and zlib, threads, CUDA) this build found and linked.
static_libs=$(pkg-config --static --libs backprop)
echo "pkg-config --static --libs backprop: $static_libs"
# shellcheck disable=SC2046,SC2086 # word splitting of the flags is intended
cc ${CFLAGS:-} "$work/consumer/xor.c" ${LDFLAGS:-} $(pkg-config --cflags backprop) \
    ${static_libs/-lbackprop/-l:libbackprop.a} -o "$work/pc_static_xor"
if ldd "$work/pc_static_xor" | grep -q libbackprop; then
    echo "pc_static_xor links libbackprop dynamically"; exit 1
fi
"$work/pc_static_xor"
echo "package OK"
