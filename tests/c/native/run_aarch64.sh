#!/usr/bin/env bash
# Build the C self-tests (plain C programs, no Python) for aarch64 and run
# them under qemu-user, or build and run them natively. Exits non-zero on any
# failure.
#
#   run_aarch64.sh               aarch64 under qemu: every program below, with
#                                the assembly switch and with ucontext
#   run_aarch64.sh --native      the same with the host's compiler ($CC, gcc),
#                                run directly (e.g. the ucontext switch on x86-64)
#   --asm | --ucontext           only that context switch
#   --no-core  (or CORE=0)       only switch_selftest, not the whole C core
#   ROUND_TRIPS=N                switch_selftest's timing-loop length
#
# For aarch64 it installs what is missing with apt-get (one `update` first):
# the cross compiler (gcc-aarch64-linux-gnu) and qemu-user (or, failing that,
# qemu-user-static). Binaries are static, so qemu needs no aarch64 libc and no
# binfmt registration: the script calls qemu-aarch64 itself.
#
# The programs: tests/c/native/NAME.c plus every .c and .S under the listed
# directories (csrc/python excluded: it needs Python.h). New source files are
# picked up by themselves; a new program is one more line in PROGRAMS.
set -euo pipefail

# name             directories whose .c and .S files it links besides its own
PROGRAMS=(
    "switch_selftest  csrc/arch"    # the context switch alone
    "core_selftest    csrc"         # the whole C core (skipped by --no-core)
)

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
native=0
variants=()
core=${CORE:-1}
for arg in "$@"; do
    case $arg in
        --native) native=1 ;;
        --asm) variants+=(asm) ;;
        --ucontext) variants+=(ucontext) ;;
        --no-core) core=0 ;;
        --core) core=1 ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
            exit 0 ;;
        *) echo "run_aarch64.sh: unknown argument $arg (see --help)" >&2; exit 2 ;;
    esac
done
((${#variants[@]})) || variants=(asm ucontext)
# A sanitizer runtime preloaded by a caller's test run must not reach the
# compiler, qemu or the uninstrumented programs.
unset LD_PRELOAD

install_cross_tools() {
    local apt=(apt-get -o DPkg::Lock::Timeout=600 -q)
    [[ $(id -u) == 0 ]] || apt=(sudo -n "${apt[@]}")
    export DEBIAN_FRONTEND=noninteractive
    echo "== installing the aarch64 cross compiler and qemu-user"
    "${apt[@]}" update >/dev/null
    "${apt[@]}" install -y --no-install-recommends gcc-aarch64-linux-gnu libc6-dev-arm64-cross \
        qemu-user >/dev/null ||
        "${apt[@]}" install -y --no-install-recommends gcc-aarch64-linux-gnu libc6-dev-arm64-cross \
            qemu-user-static >/dev/null
}

if ((native)); then
    cc=${CC:-gcc}
    ldflags=()
    run=()
    target=native
else
    cc=aarch64-linux-gnu-gcc
    qemu=$(command -v qemu-aarch64 || command -v qemu-aarch64-static || true)
    if ! command -v "$cc" >/dev/null || [[ -z $qemu ]]; then
        install_cross_tools
        qemu=$(command -v qemu-aarch64 || command -v qemu-aarch64-static)
    fi
    ldflags=(-static)
    run=(timeout 600 "$qemu")
    target=aarch64
fi

programs=()
for line in "${PROGRAMS[@]}"; do
    read -r p _ <<<"$line"
    if [[ ! -f $root/tests/c/native/$p.c ]]; then
        echo "== $p: skipped (tests/c/native/$p.c does not exist yet)"
    elif [[ $core == 0 && $p != switch_selftest ]]; then
        echo "== $p: skipped (--no-core)"
    else
        programs+=("$line")
    fi
done

out=$(mktemp -d "${TMPDIR:-/tmp}/pygoro-native.XXXXXX")
trap 'rm -rf "$out"' EXIT

names=()
for line in "${programs[@]}"; do
    read -r p dirs <<<"$line"
    names+=("$p")
    srcs=()
    for d in $dirs; do
        mapfile -t -O "${#srcs[@]}" srcs < <(find "$root/$d" \( -name '*.c' -o -name '*.S' \) \
            -not -path "$root/csrc/python/*" | sort)
    done
    for v in "${variants[@]}"; do
        flags=()
        [[ $v == ucontext ]] && flags+=(-DPYGORO_CONTEXT_UCONTEXT)
        exe=$out/$p-$v
        echo "== $p, $v switch, $target"
        "$cc" -std=c11 -O2 -g -Wall -Wextra -Werror -pthread "${flags[@]}" "${ldflags[@]}" \
            -I"$root/csrc" -I"$root/csrc/include" \
            "${srcs[@]}" "$root/tests/c/native/$p.c" -o "$exe" -lm
        if ((!native)); then
            # e_machine at offset 18 of the ELF header: 0xb7 is aarch64
            [[ $(od -An -tx1 -j18 -N1 "$exe" | tr -d ' ') == b7 ]] ||
                { echo "$exe is not an aarch64 binary" >&2; exit 1; }
        fi
        args=()
        [[ $p == switch_selftest && -n ${ROUND_TRIPS:-} ]] && args+=("$ROUND_TRIPS")
        "${run[@]}" "$exe" "${args[@]}"
    done
done
echo "== $target: all passed (${names[*]}; ${variants[*]} switch)"
