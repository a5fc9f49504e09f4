#!/usr/bin/env bash
# Build the C core (every csrc/**/*.c and .S except the CPython bridge) and
# tests/c/native/core_selftest.c into one static program.
#   build_selftest.sh OUT [CC] [extra CFLAGS...]
set -euo pipefail
out=$1; cc=${2:-gcc}; shift $(( $# >= 2 ? 2 : 1 ))
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
mapfile -t srcs < <(find "$root/csrc" \( -name '*.c' -o -name '*.S' \) -not -path '*/python/*' | sort)
"$cc" -std=c11 -O2 -g -Wall -Wextra -Werror -pthread "$@" \
    -I"$root/csrc" -I"$root/csrc/include" \
    "${srcs[@]}" "$root/tests/c/native/core_selftest.c" -o "$out" -lm
