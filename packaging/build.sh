#!/usr/bin/env bash
# packaging/build.sh: build crio's .deb and .rpm packages for the given
# architectures (default: amd64 arm64) into OUT (default: build/packages).
#
#   packaging/build.sh [ARCH...]
#
# Each package is staged by `make install` with its distribution's paths,
# then packed by nfpm (pinned in packaging/tools) from packaging/nfpm.yaml.
# Byte-reproducible: file times and the build time come from
# SOURCE_DATE_EPOCH, the commit's time unless set.
#
# Version: VERSION with "-" turned into "~" (so 0.1.0-dev sorts before
# 0.1.0), plus "+git<commit time>.<commit>" for a development version, so
# later commits sort later. PKG_VERSION and PKG_RELEASE override both.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
OUT=${OUT:-$ROOT/build/packages}
ARCHES=("$@")
[[ ${#ARCHES[@]} -gt 0 ]] || ARCHES=(amd64 arm64)
GO=${GO:-go}

export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
upstream=$(tr -d '[:space:]' <VERSION)
if [[ -z ${PKG_VERSION:-} ]]; then
    PKG_VERSION=${upstream//-/\~}
    if [[ $upstream == *-dev* ]]; then
        commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
        PKG_VERSION+="+git$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y%m%d%H%M%S).$commit"
    fi
fi
export PKG_VERSION PKG_RELEASE=${PKG_RELEASE:-1}

# nfpm from its pinned module; rebuilt only when missing or the pin moved.
NFPM=$ROOT/bin/nfpm
pin=$(sha256sum packaging/tools/go.sum | cut -c1-16)
if [[ ! -x $NFPM || $(cat "$NFPM.pin" 2>/dev/null) != "$pin" ]]; then
    echo "build.sh: building nfpm from packaging/tools" >&2
    (cd packaging/tools && CGO_ENABLED=0 "$GO" build -trimpath -o "$NFPM" github.com/goreleaser/nfpm/v2/cmd/nfpm)
    echo "$pin" >"$NFPM.pin"
fi

mkdir -p "$OUT"
stage_root=$ROOT/build/stage
rm -rf "$stage_root"

# deb_doc STAGE: the files Debian policy wants in /usr/share/doc/crio.
deb_doc() {
    local doc=$1/usr/share/doc/crio
    install -d -m 0755 "$doc"
    cat >"$doc/copyright" <<COPY
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: crio
Source: https://github.com/crio-appliance/crio

Files: *
Copyright: 2025-2026 The crio authors
License: Apache-2.0

License: Apache-2.0
 On Debian systems, the full text of the Apache License 2.0 can be found
 in /usr/share/common-licenses/Apache-2.0.
COPY
    {
        echo "crio ($PKG_VERSION-$PKG_RELEASE) unstable; urgency=medium"
        echo
        echo "  * crio $upstream, commit $(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)."
        echo
        echo " -- crio maintainers <crio-maintainers@users.noreply.github.com>  $(date -u -R -d "@$SOURCE_DATE_EPOCH")"
    } | gzip -n -9 >"$doc/changelog.Debian.gz"
    install -D -m 0644 packaging/deb/lintian-overrides "$1/usr/share/lintian/overrides/crio"
    chmod 0644 "$doc/copyright" "$doc/changelog.Debian.gz"
}

for arch in "${ARCHES[@]}"; do
    case $arch in
    amd64) goarch=amd64 ;;
    arm64) goarch=arm64 ;;
    *) echo "build.sh: unsupported architecture $arch (amd64, arm64)" >&2; exit 2 ;;
    esac
    bin=bin/crio-linux-$goarch
    rpmarch=$([[ $arch == amd64 ]] && echo x86_64 || echo aarch64)
    rm -f "$OUT"/crio_*_"$arch".deb "$OUT"/crio-*."$rpmarch".rpm # earlier builds
    make --no-print-directory "$bin" >&2

    for packager in deb rpm; do
        stage=$stage_root/$packager-$arch
        if [[ $packager == deb ]]; then
            make --no-print-directory -s install DESTDIR="$stage" CRIO_BIN="$bin" PREFIX=/usr \
                systemdunitdir=/lib/systemd/system ENVFILE=/etc/default/crio \
                CNI_PLUGIN_DIR=/usr/lib/cni zshcompdir=/usr/share/zsh/vendor-completions >&2
            deb_doc "$stage"
        else
            # Fedora and RHEL: CNI plugins in /usr/libexec/cni.
            make --no-print-directory -s install DESTDIR="$stage" CRIO_BIN="$bin" PREFIX=/usr \
                systemdunitdir=/usr/lib/systemd/system ENVFILE=/etc/sysconfig/crio \
                CNI_PLUGIN_DIR=/usr/libexec/cni zshcompdir=/usr/share/zsh/site-functions >&2
            install -D -m 0644 README.md "$stage/usr/share/doc/crio/README.md"
            install -D -m 0644 LICENSE "$stage/usr/share/licenses/crio/LICENSE"
        fi
        # Modes as packaged, whatever the umask of this build.
        find "$stage" -type d -exec chmod 0755 {} +
        STAGE=$stage PKG_ARCH=$arch "$NFPM" package --config packaging/nfpm.yaml \
            --packager "$packager" --target "$OUT/" >&2
    done
done
ls -1 "$OUT"
