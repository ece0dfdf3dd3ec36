#!/usr/bin/env bash
# check_package.sh BUILD_DIR SOURCE_DIR — the installed library as a user
# sees it: only bp_ symbols exported; installed to a prefix which is then
# MOVED (nothing may remember where it was installed), the installed
# command runs from the moved prefix, programs built against it with
# find_package(backprop) (shared, and static with COMPONENTS static) and
# with pkg-config (shared and --static) train XOR; every program runs with
# an empty environment (no LD_LIBRARY_PATH). The shared library's consumer
# must configure without the CUDA toolkit, and 0.x versions match only
# within their minor version. CFLAGS and LDFLAGS reach the consumers (the
# sanitizer build sets them).
set -euo pipefail
build=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
clean() { env -i PATH=/usr/bin:/bin "$@"; } # no LD_LIBRARY_PATH, nothing

other=$(nm -D --defined-only "$build/libbackprop.so" | awk '$2 ~ /[TDBR]/ && $3 !~ /^bp_/ {print $3}')
if [ -n "$other" ]; then
    echo "libbackprop.so exports symbols without the bp_ prefix:"; echo "$other"; exit 1
fi
echo "exports: $(nm -D --defined-only "$build/libbackprop.so" | awk '$2 ~ /T/' | wc -l) functions, all bp_"

cmake --install "$build" --prefix "$work/installed" >/dev/null
mv "$work/installed" "$work/moved"
p="$work/moved"
libdir=lib
[ -d "$p/lib" ] || libdir=$(basename "$(dirname "$(find "$p" -name libbackprop.so | head -1)")")

# What a user finds under the prefix.
for f in bin/backprop include/backprop.h "$libdir/libbackprop.so" "$libdir/libbackprop.a" \
    "$libdir/pkgconfig/backprop.pc" "$libdir/cmake/backprop/backpropConfig.cmake" \
    share/doc/backprop/LICENSE share/doc/backprop/README.md share/doc/backprop/docs/design.md \
    share/doc/backprop/examples/xor.c share/doc/backprop/examples/backprop_torch.py; do
    [ -e "$p/$f" ] || { echo "missing after install: $f"; exit 1; }
done
if [ -e "$build/man/backprop.1" ]; then
    for c in "" -train -eval -predict -compare -gradcheck -trace -info; do
        [ -s "$p/share/man/man1/backprop$c.1" ] || { echo "missing man page backprop$c.1"; exit 1; }
    done
    grep -q "^\.SH EXAMPLES" "$p/share/man/man1/backprop-train.1" ||
        { echo "backprop-train.1 lacks the --help's examples"; exit 1; }
    echo "man pages: $(ls "$p/share/man/man1" | wc -l)"
else
    echo "man pages: none (help2man was not found at configure time)"
fi
if grep -rlF "$work/installed" "$p" >/dev/null; then
    echo "the moved prefix remembers where it was installed:"; grep -rlF "$work/installed" "$p"; exit 1
fi

# The installed command, moved, with an empty environment.
clean "$p/bin/backprop" --version
printf 'a,b,label\n0,0,0\n0,1,1\n1,0,1\n1,1,0\n' >"$work/xor.csv"
clean "$p/bin/backprop" train --data "$work/xor.csv" --layers 2,8,2 --epochs 2 --device cpu -q
clean "$p/bin/backprop" train --help | grep -q "^examples:"

# find_package: the shared library without the CUDA toolkit; the static one
# as a component; 0.(MINOR-1) refused.
version=$(sed -n 's/^Version: //p' "$p/$libdir/pkgconfig/backprop.pc")
major_minor=${version%.*}
mkdir "$work/consumer"
cp "$src/examples/xor.c" "$work/consumer/"
cat >"$work/consumer/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.25)
project(consumer C)
if(WANT STREQUAL "static")
  find_package(backprop $major_minor REQUIRED COMPONENTS static)
  add_executable(static_xor xor.c)
  target_link_libraries(static_xor PRIVATE backprop::backprop_static)
else()
  find_package(backprop \${WANT} REQUIRED)
  add_executable(shared_xor xor.c)
  target_link_libraries(shared_xor PRIVATE backprop::backprop)
endif()
CMAKE
cmake -S "$work/consumer" -B "$work/shared" -DCMAKE_PREFIX_PATH="$p" -DWANT="$major_minor" \
    -DCMAKE_DISABLE_FIND_PACKAGE_CUDAToolkit=ON >/dev/null
cmake --build "$work/shared" >/dev/null
clean "$work/shared/shared_xor"
cmake -S "$work/consumer" -B "$work/static" -DCMAKE_PREFIX_PATH="$p" -DWANT=static >/dev/null
cmake --build "$work/static" >/dev/null
clean "$work/static/static_xor"
older="${version%%.*}.$((${major_minor#*.} - 1))"
if [ "${version%%.*}" = 0 ] && cmake -S "$work/consumer" -B "$work/older" -DCMAKE_PREFIX_PATH="$p" \
    -DWANT="$older" >/dev/null 2>&1; then
    echo "find_package(backprop $older) accepted $version: 0.x minor versions break the ABI"; exit 1
fi
echo "find_package: $major_minor shared (no CUDA toolkit) and static; $older refused"

# pkg-config, given the moved .pc file itself (no PKG_CONFIG_PATH).
pc="$p/$libdir/pkgconfig/backprop.pc"
# shellcheck disable=SC2046,SC2086 # word splitting of the flags is intended
cc ${CFLAGS:-} "$work/consumer/xor.c" ${LDFLAGS:-} $(pkg-config --cflags --libs "$pc") -o "$work/pc_xor"
clean "$work/pc_xor"
# The static library with pkg-config --static: Libs.private must name the
# BLAS (and zlib, threads, CUDA) this build found and linked.
static_libs=$(pkg-config --static --libs "$pc")
echo "pkg-config --static --libs backprop: $static_libs"
# shellcheck disable=SC2046,SC2086 # word splitting of the flags is intended
cc ${CFLAGS:-} "$work/consumer/xor.c" ${LDFLAGS:-} $(pkg-config --cflags "$pc") \
    ${static_libs/-lbackprop/-l:libbackprop.a} -o "$work/pc_static_xor"
if ldd "$work/pc_static_xor" | grep -q libbackprop; then
    echo "pc_static_xor links libbackprop dynamically"; exit 1
fi
clean "$work/pc_static_xor"
echo "package OK (installed, moved, used)"
