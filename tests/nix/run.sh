#!/usr/bin/env bash
# tests/nix/run.sh: crio's nix expressions.
#   1. every .nix file parses;
#   2. nix/default.nix and nix/default-arm64.nix, evaluated against a stub of
#      nixpkgs (there is no nixpkgs here), are wired as the Makefile builds:
#      tags, ldflags, CGO_ENABLED=0, target architecture, all from build.mk;
#      nix/vendor-hash is the hash of today's `go mod vendor`;
#   3. nix/hermetic.nix builds crio in nix's sandbox (no nixpkgs, no
#      network) for amd64 and arm64, bit-identical to the Makefile's build
#      of the same tree (bin/crio-vendor-linux-<arch>); the arm64 binary runs
#      under qemu-aarch64-static.
# The nix store caches a build whose inputs did not change; any change to
# the source, flags or toolchain rebuilds.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
[[ $(id -u) -eq 0 ]] || { echo "run.sh: must run as root (single-user nix store in /nix)" >&2; exit 2; }
# Single-user nix as root: no build users, no binary caches, the sandbox on.
export NIX_CONFIG=$'build-users-group =\nsandbox = true\nsubstituters =\nexperimental-features = nix-command'
mkdir -p /nix/var/nix
WORK=$(mktemp -d /var/tmp/crio-nixtest.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
# shellcheck source=tests/lib.sh
. "$ROOT/tests/lib.sh"

log "parse"
for f in nix/*.nix tests/nix/*.nix; do
    check "nix-instantiate --parse $f" nix-instantiate --parse "$f"
done

log "wiring, evaluated against a nixpkgs stub"
eval_json() { nix-instantiate --eval --strict --json -E "$1" 2>"$WORK/eval.err" || { cat "$WORK/eval.err" >&2; return 1; }; }
COMMIT=$(git rev-parse HEAD)
amd=$(eval_json "import ./nix/default.nix { pkgs = import ./tests/nix/stub.nix; commit = \"$COMMIT\"; }")
arm=$(eval_json "import ./nix/default-arm64.nix { nixpkgs = import ./tests/nix/stub.nix; commit = \"$COMMIT\"; }")
# What the Makefile passes, read from make itself.
mk() { make -s --no-print-directory -f - <<<"include Makefile
print: ; @echo \$($1)" print; }
want_tags=$(mk TAGS)
want_ldflags=$(make -s --no-print-directory -f - COMMIT="$COMMIT" <<<'include Makefile
print: ; @echo $(LDFLAGS)' print)
wired() { # JSON GOARCH
    local j=$1 goarch=$2
    jq -e --arg tags "$want_tags" --arg ld "$want_ldflags" --arg goarch "$goarch" '
        .builtBy == "buildGoModule" and .goarch == $goarch
        and (.tags | join(",")) == $tags
        and (.ldflags | join(" ")) == ($ld | gsub("\\s+"; " ") | sub("^ "; "") | sub(" $"; ""))
        and .env.CGO_ENABLED == "0"
        and (.env.GOFLAGS | split(" ") | index("-trimpath") != null)
        and .subPackages == ["daemon/cmd/crio"]
        and .pname == "crio" and .doCheck == false' <<<"$j" || { echo "$j" | jq .; echo "want tags=$want_tags ldflags=$want_ldflags"; return 1; }
}
check "nix/default.nix: buildGoModule for amd64 with the Makefile's tags, ldflags, CGO_ENABLED=0" wired "$amd" amd64
check "nix/default-arm64.nix: the aarch64 cross package set, same flags" wired "$arm" arm64
too_old() {
    local o
    if o=$(nix-instantiate --eval --strict -E '
        let s = import ./tests/nix/stub.nix; in
        import ./nix/default.nix { pkgs = s // { go = { version = "1.22.0"; }; }; }' 2>&1); then
        echo "evaluated: $o"
        return 1
    fi
    echo "$o"
    grep -q 'hack/update-nixpkgs.sh' <<<"$o"
}
check "a nixpkgs whose Go is older than 1.26 is refused with the update command" too_old

log "the Makefile's vendor-mode build and the vendored tree"
make -s nix-src >/dev/null
vendor_hash() {
    local have want
    have=$(nix hash path build/nix/src/vendor)
    want=$(tr -d '[:space:]' <nix/vendor-hash)
    echo "vendor tree $have, nix/vendor-hash $want"
    [[ $have == "$want" ]] || { echo "run: make nix-vendor-hash"; return 1; }
}
check "nix/vendor-hash is the hash of go mod vendor's output" vendor_hash

commit_stamp=$(make -s --no-print-directory -f - <<<'include Makefile
print: ; @echo $(COMMIT)' print)
for arch in amd64 arm64; do
    log "hermetic nix build, $arch (sandboxed; cached when nothing changed)"
    make -s "bin/crio-vendor-linux-$arch" >/dev/null
    start=$(date +%s)
    out=$(nix-build nix/hermetic.nix --no-out-link --argstr arch "$arch" --argstr commit "$commit_stamp" 2>"$WORK/nix-$arch.log") ||
        { tail -n 30 "$WORK/nix-$arch.log" >&2; out=; }
    echo "    nix-build took $(($(date +%s) - start)) s: ${out:-failed}"
    same() {
        [[ -n $out ]] || return 1
        local a b
        a=$(sha256sum <"bin/crio-vendor-linux-$arch" | cut -d' ' -f1)
        b=$(sha256sum <"$out/bin/crio" | cut -d' ' -f1)
        echo "make $a"
        echo "nix  $b"
        [[ $a == "$b" ]]
    }
    check "$arch: the sandboxed nix build is bit-identical to make's" same
    runs() {
        [[ -n $out ]] || return 1
        local v
        if [[ $arch == arm64 ]]; then v=$(qemu-aarch64-static "$out/bin/crio" version); else v=$("$out/bin/crio" version); fi
        echo "$v"
        grep -q "Platform: *linux/$arch" <<<"$v" && grep -q "GitCommit: *$commit_stamp" <<<"$v"
    }
    check "$arch: the nix-built crio reports its platform and commit" runs
done

echo
summary nix
