#!/usr/bin/env bash
# image-build/rootfs-arm64.sh: the crio node's root file system for arm64, as
# a tarball: Debian bookworm (minbase, systemd, D-Bus), crio from the
# project's arm64 .deb with runc, conmon, the CNI plugins and iptables from
# Debian, and the node configuration of the amd64 image (node-config.sh:
# units enabled, first-boot machine-id, the CNI bridge, no network wait).
#
#   image-build/rootfs-arm64.sh        (or: make rootfs-arm64)
#
# It has no kernel, initrd or boot loader: this machine cannot boot-test an
# arm64 disk (an emulated aarch64 VM under TCG on two cores), so the arm64
# deliverable is the root that such a disk, a container or a PXE root would
# hold. Every arm64 program runs here through qemu-aarch64-static, registered
# with binfmt_misc (the F flag: the kernel keeps the interpreter open, so
# it works inside the chroot too).
#
# Environment:
#   DEB      crio's arm64 .deb (default: the one in build/packages)
#   OUT      output directory (default: build/image): crio-node-arm64.rootfs.tar.gz
#   SOURCE_DATE_EPOCH  file times in the tarball (default: the commit's time)
#   CRIO_IMAGE_CACHE   the cached arm64 base root (default /var/cache/crio-tests)
#
# No images are preloaded: the test registry holds amd64 images only.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
OUT=${OUT:-$ROOT/build/image}
CACHE=${CRIO_IMAGE_CACHE:-${CRIO_TEST_CACHE:-/var/cache/crio-tests}}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || echo 0)}
SUITE=bookworm
INCLUDE=systemd,systemd-sysv,dbus,ca-certificates
# What base.sh adds for amd64, without the kernel and its initrd.
PACKAGES="udev kmod runc conmon containernetworking-plugins iptables procps"
QEMU=/usr/bin/qemu-aarch64-static

log() { echo "==> [$(date -u +%H:%M:%S)] $*" >&2; }
[[ $(id -u) -eq 0 ]] || { echo "rootfs-arm64.sh: must run as root" >&2; exit 2; }
for tool in debootstrap "$QEMU"; do
    command -v "$tool" >/dev/null || { echo "rootfs-arm64.sh: $tool is missing (apt-get install debootstrap qemu-user-static)" >&2; exit 2; }
done
if [[ -z ${DEB:-} ]]; then
    debs=("$ROOT"/build/packages/crio_*_arm64.deb)
    [[ ${#debs[@]} -eq 1 && -f ${debs[0]} ]] || { echo "rootfs-arm64.sh: expected one crio_*_arm64.deb in build/packages (make packages), found: ${debs[*]}" >&2; exit 2; }
    DEB=${debs[0]}
fi

# binfmt_misc: aarch64 ELF executables run through qemu-aarch64-static. A
# registration without the F flag (one made by binfmt-support, say) names an
# interpreter path the chroot lacks; the interpreter is copied in below too.
binfmt() {
    local b=/proc/sys/fs/binfmt_misc
    mountpoint -q "$b" || mount -t binfmt_misc binfmt_misc "$b"
    [[ -e $b/qemu-aarch64 ]] && return 0
    printf '%s' ':qemu-aarch64:M::\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:'"$QEMU"':F' >"$b/register"
    log "registered qemu-aarch64 with binfmt_misc"
}

# The host's Debian mirror, as tests/packaging/base-root.sh finds it.
mirror() {
    local uri
    uri=$(sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -n1 || true)
    [[ -n $uri ]] || uri=$(awk '$1 == "deb" && $3 !~ /security/ { print $2; exit }' /etc/apt/sources.list 2>/dev/null || true)
    echo "${uri:-http://deb.debian.org/debian}"
}

r=
unmount_root() {
    [[ -n $r ]] || return 0
    umount "$r/proc" "$r/sys" "$r/dev" 2>/dev/null || true
}
in_root() { chroot "$r" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 "$@"; }

# base: debootstrap's two stages (the second one emulated) and the runtime
# packages, cached (emulated dpkg takes minutes), keyed by every input.
base() {
    local mirror key tarball work
    mirror=$(mirror)
    key=$( { echo "$SUITE $INCLUDE $PACKAGES $mirror"; sed -n '/^base()/,/^}/p' "${BASH_SOURCE[0]}"; } | sha256sum | cut -c1-16)
    tarball=$CACHE/node-base-arm64-$key.tar
    if [[ -s $tarball ]]; then
        echo "$tarball"
        return 0
    fi
    mkdir -p "$CACHE"
    work=$(mktemp -d "$CACHE/node-base-arm64.XXXXXX")
    r=$work/root
    # base runs in a command substitution: its own cleanup.
    trap 'unmount_root; rm -rf "$work"' EXIT
    log "arm64 base root: debootstrap $SUITE from $mirror (cached as $tarball)"
    debootstrap --arch=arm64 --foreign --variant=minbase --include="$INCLUDE" "$SUITE" "$r" "$mirror" >"$work/log" 2>&1 ||
        { tail -n 30 "$work/log" >&2; exit 1; }
    install -m 0755 "$QEMU" "$r$QEMU"
    chroot "$r" /debootstrap/debootstrap --second-stage >>"$work/log" 2>&1 || { tail -n 30 "$work/log" >&2; exit 1; }
    printf 'deb %s %s main\ndeb %s %s-updates main\n' "$mirror" "$SUITE" "$mirror" "$SUITE" >"$r/etc/apt/sources.list"
    # No documentation: the node has no reader (as base.sh does).
    printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' 'path-exclude /usr/share/man/*' \
        'path-exclude /usr/share/info/*' 'path-exclude /usr/share/locale/*' 'path-include /usr/share/locale/locale.alias' \
        'path-exclude /usr/share/lintian/*' >"$r/etc/dpkg/dpkg.cfg.d/01-node-nodoc"
    printf '#!/bin/sh\nexit 101\n' >"$r/usr/sbin/policy-rc.d"
    chmod 755 "$r/usr/sbin/policy-rc.d"
    mount -t proc proc "$r/proc"
    mount --bind /sys "$r/sys"
    mount --bind /dev "$r/dev"
    cp /etc/resolv.conf "$r/etc/resolv.conf" 2>/dev/null || true
    log "arm64 base root: apt-get install $PACKAGES (emulated)"
    in_root apt-get update -q >>"$work/log" 2>&1 || { tail -n 20 "$work/log" >&2; exit 1; }
    in_root apt-get install -y -q --no-install-recommends $PACKAGES >>"$work/log" 2>&1 || { tail -n 30 "$work/log" >&2; exit 1; }
    unmount_root
    rm -f "$r/usr/sbin/policy-rc.d" "$r/etc/resolv.conf"
    rm -rf "$r/var/cache/apt/archives/"*.deb "$r/var/cache/apt/"*.bin "$r/var/lib/apt/lists/"* "$r/var/log/"*.log \
        "$r/var/log/apt/"* "$r/tmp/"*
    tar -C "$r" --numeric-owner -cf "$work/root.tar" .
    mv "$work/root.tar" "$tarball"
    echo "$tarball"
}

start=$(date +%s)
binfmt
BASE=$(base)
mkdir -p "$OUT"
WORK=$(mktemp -d "$OUT/work-arm64.XXXXXX")
cleanup() {
    unmount_root
    [[ ${KEEP:-0} == 1 ]] && { echo "work directory kept: $WORK" >&2; return; }
    rm -rf "$WORK"
}
trap cleanup EXIT
r=$WORK/root
mkdir "$r"
tar -C "$r" -xf "$BASE"

log "install $(basename "$DEB") (emulated)"
cp "$DEB" "$r/tmp/crio.deb"
printf '#!/bin/sh\nexit 101\n' >"$r/usr/sbin/policy-rc.d"
chmod 755 "$r/usr/sbin/policy-rc.d"
mount -t proc proc "$r/proc"
in_root dpkg -i /tmp/crio.deb >"$WORK/dpkg.log" 2>&1 || { cat "$WORK/dpkg.log" >&2; exit 1; }
umount "$r/proc"
rm -f "$r/tmp/crio.deb" "$r/usr/sbin/policy-rc.d"

log "node configuration"
# shellcheck source=image-build/node-config.sh
. "$HERE/node-config.sh"
node_config "$r"
in_root dpkg-query -W -f='${Installed-Size}\t${Package}\t${Version}\n' | sort -rn >"$OUT/crio-node-arm64.packages"
rm -f "$r$QEMU"
rm -rf "$r/var/cache/apt/"* "$r/var/lib/apt/lists/"* "$r/var/log/"* "$r/tmp/"* "$r/var/tmp/"*
mkdir -p "$r/var/log" "$r/var/cache/apt"

log "root file system tarball"
# Sorted names, fixed times and owners as numbers; gzip without a name or
# time: the same inputs give the same bytes, as far as the base allows.
out=$OUT/crio-node-arm64.rootfs.tar.gz
tar -C "$r" --sort=name --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" --clamp-mtime \
    --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime -cf - . | gzip -n -9 >"$out.tmp"
mv "$out.tmp" "$out"
{
    echo "rootfs: $out ($(du -m --apparent-size "$out" | cut -f1) MiB; root tree $(du -sm "$r" | cut -f1) MiB)"
    echo "crio: $(dpkg-deb -f "$DEB" Version) ($(dpkg-deb -f "$DEB" Architecture)); packages: $(wc -l <"$OUT/crio-node-arm64.packages")"
    echo "built in $(( $(date +%s) - start )) s"
} | tee "$OUT/crio-node-arm64.txt" >&2
sha256sum "$out" | tee -a "$OUT/crio-node-arm64.txt" >&2
