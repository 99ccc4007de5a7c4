#!/usr/bin/env bash
# packaging/bundle/build.sh: the release bundle, a tarball per architecture
# that installs crio with its own static runc, CNI plugins and crictl on a
# bare host (conmon is the one host requirement).
#
#   packaging/bundle/build.sh [ARCH...]     (default: amd64 arm64)
#
# Output: $OUT (default bundle/) crio.<arch>.<version>.tar.gz and .sha256.
# Versions of the helpers are pinned in packaging/bundle/versions.env.
# Byte-reproducible: Go builds use -trimpath and an empty build id, the
# archive has fixed mtimes (SOURCE_DATE_EPOCH, the commit's time), owners
# and order, and gzip stores no name or time.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$PWD
HERE=$ROOT/packaging/bundle
OUT=${OUT:-$ROOT/bundle}
GO=${GO:-go}
ARCHES=("$@")
[[ ${#ARCHES[@]} -gt 0 ]] || ARCHES=(amd64 arm64)
# shellcheck source=versions.env
. "$HERE/versions.env"

export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
VERSION=$(tr -d '[:space:]' <VERSION)
COMMIT=$(git rev-parse HEAD 2>/dev/null || echo unknown)
WORK=$ROOT/build/bundle
log() { echo "==> [bundle] $*" >&2; }
die() { echo "bundle/build.sh: $*" >&2; exit 1; }

# Go builds of the helpers from their modules at the pinned versions.
# `go install MODULE/PKG@VERSION` builds with the module's own go.mod and
# go.sum (not ours), and records MODULE@VERSION in the binary, which the
# SBOM reads back. A cross build cannot go to GOBIN, so GOPATH points at a
# private directory (binaries land in GOPATH/bin[/linux_ARCH]); the module
# cache stays the shared one.
GOMODCACHE=$("$GO" env GOMODCACHE)
export GOMODCACHE GOFLAGS=-mod=mod
GO_LDFLAGS="-buildid= -s -w"

build_helpers() { # build_helpers ARCH DEST
    local arch=$1 dest=$2 gopath=$WORK/gopath-$1 cc pcpath bindir
    rm -rf "$gopath/bin"
    case $arch in
    amd64) cc=gcc; pcpath=/usr/lib/x86_64-linux-gnu/pkgconfig ;;
    arm64) cc=aarch64-linux-gnu-gcc; pcpath=/usr/lib/aarch64-linux-gnu/pkgconfig ;;
    esac
    command -v "$cc" >/dev/null || die "$cc missing (make release-bundle installs it)"
    bindir=$gopath/bin
    [[ $arch == "$("$GO" env GOHOSTARCH)" ]] || bindir=$gopath/bin/linux_$arch
    local env=(env GOPATH="$gopath" GOBIN= GOOS=linux GOARCH="$arch")

    # runc needs cgo for libseccomp; linked statically against Debian's
    # libseccomp.a (of the target architecture). netgo and osusergo keep
    # glibc's NSS (which cannot be linked statically) out.
    log "$arch: runc $RUNC_VERSION"
    "${env[@]}" CGO_ENABLED=1 CC="$cc" PKG_CONFIG_PATH="$pcpath" \
        "$GO" install -trimpath -tags "seccomp urfave_cli_no_docs netgo osusergo" \
        -ldflags "$GO_LDFLAGS -extldflags -static" "$RUNC_MODULE@$RUNC_VERSION"
    install -D -m 0755 "$bindir/runc" "$dest/libexec/crio/runc"

    log "$arch: CNI plugins $CNI_PLUGINS_VERSION"
    local pkgs=() p
    for p in $CNI_PLUGINS; do pkgs+=("$CNI_PLUGINS_MODULE/plugins/$p@$CNI_PLUGINS_VERSION"); done
    "${env[@]}" CGO_ENABLED=0 "$GO" install -trimpath \
        -ldflags "$GO_LDFLAGS -X $CNI_PLUGINS_MODULE/pkg/utils/buildversion.BuildVersion=$CNI_PLUGINS_VERSION" "${pkgs[@]}"
    install -d -m 0755 "$dest/cni-plugins"
    for p in $CNI_PLUGINS; do install -m 0755 "$bindir/${p#*/}" "$dest/cni-plugins/"; done

    log "$arch: crictl $CRI_TOOLS_VERSION"
    "${env[@]}" CGO_ENABLED=0 "$GO" install -trimpath \
        -ldflags "$GO_LDFLAGS -X $CRI_TOOLS_MODULE/pkg/version.Version=$CRI_TOOLS_VERSION" \
        "$CRI_TOOLS_MODULE/cmd/crictl@$CRI_TOOLS_VERSION"
    install -D -m 0755 "$bindir/crictl" "$dest/bin/crictl"
}

# check_elf FILE ARCH: statically linked (no PT_INTERP, no dynamic section)
# and built for ARCH (the ELF header's machine), read with readelf.
check_elf() {
    local f=$1 want
    case $2 in amd64) want='Advanced Micro Devices X86-64' ;; arm64) want='AArch64' ;; esac
    readelf -h "$f" | grep -q "Machine:[[:space:]]*$want" || die "$f: not a $2 ELF ($(readelf -h "$f" | sed -n 's/.*Machine:[[:space:]]*//p'))"
    if readelf -lW "$f" | grep -q 'INTERP'; then die "$f: has an ELF interpreter (dynamically linked)"; fi
    if readelf -dW "$f" 2>/dev/null | grep -q 'NEEDED'; then die "$f: needs shared libraries"; fi
}

mkdir -p "$OUT" "$WORK"
for arch in "${ARCHES[@]}"; do
    case $arch in amd64 | arm64) ;; *) die "unsupported architecture $arch (amd64, arm64)" ;; esac
    name=crio.$arch.$VERSION
    tree=$WORK/$arch/crio
    stage=$WORK/$arch/stage
    rm -rf "$WORK/$arch"
    mkdir -p "$tree"

    # crio, its configuration, unit, man pages and completions: the
    # Makefile's `install` with the bundle's default install paths
    # (PREFIX=/usr/local; `install` rewrites them for another PREFIX),
    # staged, then laid out as the bundle has them.
    log "$arch: crio $VERSION"
    make --no-print-directory -s "bin/crio-linux-$arch" >&2
    make --no-print-directory -s install DESTDIR="$stage" CRIO_BIN="bin/crio-linux-$arch" \
        PREFIX=/usr/local RUNC=/usr/local/libexec/crio/runc CONMON=/usr/bin/conmon \
        CNI_PLUGIN_DIR=/usr/local/libexec/cni ENVFILE=/etc/default/crio \
        zshcompdir=/usr/local/share/zsh/site-functions >&2
    s=$stage/usr/local
    install -D -m 0755 "$s/bin/crio" "$tree/bin/crio"
    install -D -m 0644 "$stage/etc/crio/crio.conf.d/10-crio.conf" "$tree/etc/10-crio.conf"
    install -m 0644 "$stage/etc/default/crio" "$tree/etc/crio.env"
    install -m 0644 "$stage/etc/crictl.yaml" "$tree/etc/crictl.yaml"
    install -m 0644 "$stage/etc/cni/net.d/11-crio-ipv4-bridge.conflist.disabled" "$tree/etc/"
    install -m 0644 "$stage/etc/crio/policy.json" "$tree/etc/policy.json"
    install -m 0644 "$stage/etc/containers/registries.conf.d/10-crio.conf" "$tree/etc/registries.conf.d-10-crio.conf"
    install -m 0644 "$s/lib/systemd/system/crio.service" "$s/lib/systemd/system/crio-firstboot.service" "$tree/etc/"
    install -D -m 0644 "$s/share/crio/seccomp.json" "$tree/share/seccomp.json"
    install -D -m 0644 "$s/share/man/man5/crio.conf.5.gz" "$tree/man/man5/crio.conf.5.gz"
    install -D -m 0644 "$s/share/man/man8/crio.8.gz" "$tree/man/man8/crio.8.gz"
    install -D -m 0644 "$s/share/bash-completion/completions/crio" "$tree/completions/bash/crio"
    install -D -m 0644 "$s/share/zsh/site-functions/_crio" "$tree/completions/zsh/_crio"
    install -D -m 0644 "$s/share/fish/vendor_completions.d/crio.fish" "$tree/completions/fish/crio.fish"
    rm -rf "$stage"

    build_helpers "$arch" "$tree"

    install -m 0755 "$HERE/install" "$HERE/uninstall" "$tree/"
    install -m 0644 "$ROOT/LICENSE" "$tree/LICENSE"
    install -m 0644 "$HERE/README.bundle" "$tree/README"

    log "$arch: checking every ELF is static and $arch"
    while IFS= read -r -d '' f; do
        if [[ $(head -c 4 "$f" | od -An -c | tr -d ' ') == 177ELF ]]; then check_elf "$f" "$arch"; fi
    done < <(find "$tree" -type f -print0)

    # versions and the SPDX SBOM, from the binaries' own build information.
    "$HERE/manifest.sh" "$tree" "$arch" "$VERSION" "$COMMIT"

    # sha256sums of every file but itself, sorted by path.
    (cd "$tree" && find . -type f ! -name sha256sums -printf '%P\n' | LC_ALL=C sort |
        xargs -d '\n' sha256sum >sha256sums)

    # Modes fixed whatever the umask; the archive's metadata fixed too.
    find "$tree" -type d -exec chmod 0755 {} +
    find "$tree" -type f -exec chmod go-w {} +
    tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" \
        --format=gnu -C "$WORK/$arch" -cf - crio | gzip -n -9 >"$OUT/$name.tar.gz.tmp"
    mv "$OUT/$name.tar.gz.tmp" "$OUT/$name.tar.gz"
    (cd "$OUT" && sha256sum "$name.tar.gz" >"$name.tar.gz.sha256")
    log "$arch: $OUT/$name.tar.gz $(cut -d' ' -f1 "$OUT/$name.tar.gz.sha256")"
done
