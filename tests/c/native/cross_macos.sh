#!/usr/bin/env bash
# Compile the C core for macOS (x86_64 and arm64) and link it into Mach-O
# executables, by cross-compiling with zig's clang: the macOS port is
# checked to compile cleanly and to leave no undefined symbol, not run
# (nothing here can run Mach-O). Exits non-zero on any error or warning.
#
#   cross_macos.sh            both targets
#   ZIG="python3 -m ziglang"  how to call zig (default: that, with the
#                             ziglang package from PyPI importable)
#
# Per target: every .c and .S under csrc/ except csrc/python (it needs
# Python.h) compiled with -std=c11 -O2 -Wall -Wextra -Werror, as the Linux
# builds are; then linked with tests/c/native/core_selftest.c (the main: the
# switch, goroutines, channels, timers, sleeps through pygoro.h) and the
# cffi test helpers of tests/c/helpers (Mutex, RWMutex, WaitGroup, Cond,
# select, pools... : more of the API to resolve), so a symbol missing on
# macOS fails the link. helpers/core.c is left out: it reads /proc and
# calls gettid, Linux-only test code. `file` must then say Mach-O.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
read -r -a zig <<<"${ZIG:-python3 -m ziglang}"
# A sanitizer runtime preloaded by a caller's test run must not reach zig.
unset LD_PRELOAD

out=$(mktemp -d "${TMPDIR:-/tmp}/pygoro-macos.XXXXXX")
trap 'rm -rf "$out"' EXIT

mapfile -t core < <(cd "$root" && find csrc \( -name '*.c' -o -name '*.S' \) -not -path 'csrc/python/*' | sort)
mapfile -t helpers < <(cd "$root" && find tests/c/helpers -name '*.c' -not -name core.c | sort)
flags=(-std=c11 -O2 -Wall -Wextra -Werror -fvisibility=hidden -pthread
    -I"$root/csrc" -I"$root/csrc/include")

echo "== $("${zig[@]}" version 2>/dev/null | sed 's/^/zig /')"
for target in x86_64-macos aarch64-macos; do
    echo "== $target: compiling ${#core[@]} runtime files and ${#helpers[@]} test helpers"
    objs=()
    for src in "${core[@]}" "${helpers[@]}" tests/c/native/core_selftest.c; do
        obj=$out/$target-${src//\//_}.o
        "${zig[@]}" cc -target "$target" "${flags[@]}" -c "$root/$src" -o "$obj"
        objs+=("$obj")
    done
    exe=$out/core_selftest-$target
    "${zig[@]}" cc -target "$target" -pthread "${objs[@]}" -o "$exe" -lm
    kind=$(file -b "$exe")
    echo "   $kind"
    case $target in
        x86_64-*) want="Mach-O 64-bit x86_64 executable" ;;
        aarch64-*) want="Mach-O 64-bit arm64 executable" ;;
    esac
    [[ $kind == "$want"* ]] || { echo "cross_macos.sh: $exe is not a $want" >&2; exit 1; }
done
echo "== macOS: compiled and linked for x86_64 and arm64 (not run)"
