#!/usr/bin/env bash
# check_format.sh [--list | --fix] — the C, C++ and CUDA sources are laid out
# as .clang-format says.
#
#   tools/check_format.sh         check: lists the files it checks, then each
#                                 file clang-format would change; exit 1 if any
#   tools/check_format.sh --list  only list the files checked
#   tools/check_format.sh --fix   reformat those files in place
#
# The files: those git tracks under src/ include/ kernels/ tests/ bench/
# examples/ and tools/ ending in .c .h .cpp .hpp .cu .cuh .inc. clang-format 14
# exactly (other versions lay some constructs out differently): CLANG_FORMAT
# names the program, default clang-format-14, else clang-format if it is 14.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=check
case "${1:-}" in
    "") ;;
    --list) mode=list ;;
    --fix) mode=fix ;;
    *) echo "usage: $0 [--list | --fix]" >&2; exit 2 ;;
esac

mapfile -t files < <(git ls-files -- src include kernels tests bench examples tools |
                     grep -E '\.(c|h|cpp|hpp|cu|cuh|inc)$')
if [ "$mode" = list ]; then
    printf '%s\n' "${files[@]}"
    exit 0
fi

cf=${CLANG_FORMAT:-}
if [ -z "$cf" ]; then
    if command -v clang-format-14 >/dev/null; then cf=clang-format-14; else cf=clang-format; fi
fi
if ! version=$("$cf" --version 2>/dev/null) || [[ ! "$version" =~ version\ 14\. ]]; then
    echo "check_format.sh: needs clang-format 14 (found: ${version:-no $cf}); set CLANG_FORMAT" >&2
    exit 2
fi

if [ "$mode" = fix ]; then
    "$cf" -i --style=file "${files[@]}"
    echo "formatted ${#files[@]} files with $version"
    exit 0
fi

echo "checking ${#files[@]} files with $version:"
printf '  %s\n' "${files[@]}"
bad=0
lines=0
for f in "${files[@]}"; do
    # The lines of the file that clang-format would rewrite (or, where it
    # only adds lines, the lines it adds).
    changed=$("$cf" --style=file "$f" | diff "$f" - |
              awk '/^[<]/ { old++ } /^[>]/ { new++ } END { print (old ? old : new + 0) }' ||
              true)
    if [ "$changed" -gt 0 ]; then
        echo "not formatted: $f ($changed lines; see: $cf --dry-run $f)"
        bad=$((bad + 1))
        lines=$((lines + changed))
    fi
done
if [ "$bad" -gt 0 ]; then
    echo "$bad of ${#files[@]} files are not formatted ($lines lines):" \
         "run tools/check_format.sh --fix"
    exit 1
fi
echo "all ${#files[@]} files formatted"
