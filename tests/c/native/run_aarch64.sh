#!/usr/bin/env bash
# Cross-compile the C core and its self-test for aarch64 (the hand-written
# aarch64 context switch) and run them under qemu-aarch64 (Debian's
# qemu-user). Installs the cross compiler and qemu if missing. Exits non-zero
# on any failure.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if ! command -v aarch64-linux-gnu-gcc >/dev/null || ! command -v qemu-aarch64 >/dev/null; then
    SUDO=""; [[ $(id -u) == 0 ]] || SUDO="sudo -n"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
    $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends gcc-aarch64-linux-gnu \
        libc6-dev-arm64-cross qemu-user >/dev/null
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for mode in asm ucontext; do
    flags=(-static)
    [[ $mode == ucontext ]] && flags+=(-DPYGORO_CONTEXT_UCONTEXT)
    "$here/build_selftest.sh" "$out/selftest-$mode" aarch64-linux-gnu-gcc "${flags[@]}"
    echo "== aarch64 ($mode switch) under qemu"
    file "$out/selftest-$mode" | grep -q aarch64
    timeout 600 qemu-aarch64 "$out/selftest-$mode"
done
