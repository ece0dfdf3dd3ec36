#!/bin/sh
# run.sh — builds the libFuzzer targets with clang and runs each for a
# bounded time on a copy of its committed seed corpus.
#   tests/fuzz/run.sh [SECONDS_PER_TARGET] [BUILD_DIR]
# Prints the executions each reached; exits non-zero when a target finds a
# crash (the reproducer is left in the build directory: add it to
# tests/fuzz/regressions/<target>/ so tests/fuzz/replay.sh keeps it fixed).
set -eu
seconds=${1:-45}
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${2:-$src/build-fuzz}
mkdir -p "$build"
build=$(cd "$build" && pwd) # absolute: the targets run from their crash directories
cc=${CC:-clang-14}
cxx=${CXX:-clang++-14}
cmake -S "$src" -B "$build" -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx" \
      -DBP_CUDA=OFF -DBP_BUILD_CLI=OFF -DBP_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
status=0
for t in safetensors json idx csv checkpoint; do
  cmake --build "$build" --target fuzz_$t -j2 >/dev/null
  corpus="$build/fuzz-corpus/$t"
  mkdir -p "$corpus" "$build/fuzz-crashes/$t"
  cp "$src/tests/fuzz/corpus/$t/"* "$corpus/"
  log="$build/fuzz-$t.log"
  # A dictionary of the format's keys, where there is one (tests/fuzz/T.dict).
  dict=""
  if [ -f "$src/tests/fuzz/$t.dict" ]; then dict="-dict=$src/tests/fuzz/$t.dict"; fi
  if (cd "$build/fuzz-crashes/$t" && \
      "$build/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -rss_limit_mb=2048 \
        -max_len=65536 -timeout=10 $dict "$corpus" >"$log" 2>&1); then
    echo "fuzz_$t: $(grep -o 'Done [0-9]* runs in [0-9]* second(s)' "$log" | tail -1)," \
         "corpus $(ls "$corpus" | wc -l) inputs"
  else
    echo "fuzz_$t: FOUND A CRASH (log $log, reproducer in $build/fuzz-crashes/$t)"
    tail -30 "$log"
    status=1
  fi
done
# Earlier findings stay fixed.
for t in safetensors json idx csv checkpoint; do
  dir="$src/tests/fuzz/regressions/$t"
  if [ -d "$dir" ] && [ -n "$(ls "$dir")" ]; then
    "$build/tests/fuzz/fuzz_$t" "$dir"/* >/dev/null 2>&1 || { echo "fuzz_$t: a regression input fails"; status=1; }
  fi
done
exit $status
