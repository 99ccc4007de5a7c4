#!/usr/bin/env bash
# reproducible.sh: the release build is static and byte-identical.
#  0. checks the go toolchain is the one go.mod pins;
#  1. builds bin/crio in the repository (or, if tracked files have uncommitted
#     changes, in a clone of HEAD), then again in a `git clone` of HEAD at
#     another path with an empty GOCACHE, and compares sha256;
#  2. checks the binary is statically linked (file, go version -m);
#  3. builds bin/crio-arm64, checks it, and runs it under qemu-aarch64-static
#     when that is installed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/crio-build-test.XXXXXX")
trap 'chmod -R u+w "$WORK" 2>/dev/null; rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
log() { echo "==> $*"; }
command -v file >/dev/null || fail "'file' is not installed (apt-get install file)"

# The hashes are only reproducible with one toolchain: go.mod pins it, and a
# newer local go would build with itself instead, so say so rather than
# compare binaries of different compilers.
pinned=$(sed -n 's/^toolchain //p' "$ROOT/go.mod")
[[ -n $pinned ]] || fail "go.mod has no toolchain directive"
actual=$(cd "$ROOT" && go env GOVERSION)
[[ $actual == "$pinned" ]] || fail "go.mod pins $pinned but the build uses $actual (set GOTOOLCHAIN=$pinned)"
log "toolchain $actual, as go.mod pins"

if git -C "$ROOT" diff --quiet HEAD --; then
    A=$ROOT
else
    log "tracked files have uncommitted changes: building HEAD from a clone instead"
    git clone -q "$ROOT" "$WORK/a"
    A=$WORK/a
fi
B=$WORK/another/path/crio
git clone -q "$ROOT" "$B"
[[ $(git -C "$A" rev-parse HEAD) == $(git -C "$B" rev-parse HEAD) ]] || fail "clones disagree on HEAD"

log "build 1 in $A"
make -s -C "$A" bin/crio
log "build 2 in $B with an empty GOCACHE"
GOCACHE=$WORK/gocache make -s -C "$B" bin/crio

sum_a=$(sha256sum <"$A/bin/crio" | cut -d' ' -f1)
sum_b=$(sha256sum <"$B/bin/crio" | cut -d' ' -f1)
echo "    $sum_a  $A/bin/crio"
echo "    $sum_b  $B/bin/crio"
[[ $sum_a == "$sum_b" ]] || fail "the two builds differ"

check_static() { # check_static BINARY ARCH-REGEX
    local desc info
    desc=$(file -b "$1")
    echo "    file: $desc"
    grep -qE "$2" <<<"$desc" || fail "$1: not a $2 binary"
    grep -q 'statically linked' <<<"$desc" || fail "$1: not statically linked"
    grep -q 'interpreter' <<<"$desc" && fail "$1: has an ELF interpreter (PT_INTERP)"
    info=$(go version -m "$1")
    grep -qE '^\s+build\s+CGO_ENABLED=0$' <<<"$info" || fail "$1: go version -m does not show CGO_ENABLED=0"
    grep -qE '^\s+build\s+-trimpath=true$' <<<"$info" || fail "$1: not built with -trimpath"
    return 0
}
log "static linking"
check_static "$A/bin/crio" 'x86-64'

log "arm64 build"
make -s -C "$A" bin/crio-arm64
check_static "$A/bin/crio-arm64" 'ARM aarch64'
if command -v qemu-aarch64-static >/dev/null; then
    log "running the arm64 binary under qemu-aarch64-static"
    qemu-aarch64-static "$A/bin/crio-arm64" version || fail "arm64 binary does not run under qemu"
else
    echo "    qemu-aarch64-static not installed: not running the arm64 binary"
fi
log "PASS: reproducible ($sum_a), statically linked, arm64 builds"
