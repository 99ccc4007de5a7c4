#!/usr/bin/env bash
# base-root.sh: print the path of a tarball holding a minimal Debian bookworm
# root that boots with systemd (systemd-nspawn -b), building it when absent.
#
# debootstrap takes minutes, so the tarball is cached outside the repository
# (CRIO_TEST_CACHE, default /var/cache/crio-tests), keyed by everything that
# decides its contents: suite, variant, package list, mirror and this
# script's own text. A changed input gives a new key, hence a fresh build.
set -euo pipefail

SUITE=bookworm
VARIANT=minbase
# systemd as PID 1 and D-Bus for systemctl; apt needs nothing more to
# install crio from a local repository.
INCLUDE=systemd,systemd-sysv,dbus,ca-certificates
CACHE=${CRIO_TEST_CACHE:-/var/cache/crio-tests}

# The host's Debian mirror (deb822 sources first, then sources.list).
mirror() {
    local uri
    uri=$(sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -n1 || true)
    if [[ -z $uri ]]; then
        uri=$(awk '$1 == "deb" && $3 !~ /security/ { print $2; exit }' /etc/apt/sources.list 2>/dev/null || true)
    fi
    echo "${uri:-http://deb.debian.org/debian}"
}

MIRROR=$(mirror)
key=$( { echo "$SUITE $VARIANT $INCLUDE $MIRROR"; cat "${BASH_SOURCE[0]}"; } | sha256sum | cut -c1-16)
tarball=$CACHE/debian-$SUITE-$VARIANT-$key.tar.gz
if [[ -s $tarball ]]; then
    echo "$tarball"
    exit 0
fi

command -v debootstrap >/dev/null || { echo "base-root.sh: debootstrap is not installed" >&2; exit 1; }
mkdir -p "$CACHE"
work=$(mktemp -d "$CACHE/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "base-root.sh: debootstrap $SUITE ($VARIANT) from $MIRROR into $work (cached as $tarball)" >&2
debootstrap --variant="$VARIANT" --include="$INCLUDE" "$SUITE" "$work/root" "$MIRROR" >"$work/debootstrap.log" 2>&1 || {
    tail -n 30 "$work/debootstrap.log" >&2
    exit 1
}
# Same sources as the host, so apt inside the root resolves crio's
# dependencies (runc, conmon, the CNI plugins) from Debian.
cat >"$work/root/etc/apt/sources.list" <<SRC
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
SRC
rm -rf "$work/root/var/cache/apt/archives/"*.deb "$work/root/var/lib/apt/lists/"*
# A first boot under nspawn must not wait for a network or a console login.
ln -sf /dev/null "$work/root/etc/systemd/system/systemd-networkd-wait-online.service"
ln -sf /dev/null "$work/root/etc/systemd/system/console-getty.service"
tar -C "$work/root" --numeric-owner -czf "$work/root.tar.gz" .
mv "$work/root.tar.gz" "$tarball"
echo "$tarball"
