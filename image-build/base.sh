#!/usr/bin/env bash
# image-build/base.sh: print the path of a tarball holding the node image's
# base root, building it when absent: the packaging tests' debootstrap'd
# bookworm root (tests/packaging/base-root.sh: minbase + systemd, dbus) plus
# the kernel, udev, a small initrd, and crio's runtime dependencies from
# Debian (runc, conmon, the CNI plugins, iptables). crio itself is not in it:
# build.sh installs the project's .deb on top, so a new crio does not pay
# for the kernel again.
#
# Cached outside the repository (CRIO_IMAGE_CACHE, default
# /var/cache/crio-tests), keyed by every input: the debootstrap tarball's
# name (itself keyed by its inputs), the package list, the initrd module
# list and this script's text.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
CACHE=${CRIO_IMAGE_CACHE:-${CRIO_TEST_CACHE:-/var/cache/crio-tests}}
PACKAGES="udev kmod linux-image-amd64 initramfs-tools runc conmon containernetworking-plugins iptables procps"
# The initrd only has to find a virtio disk and mount a squashfs root with
# an overlay /etc: MODULES=list keeps it at a few MB (MODULES=most: 30+ MB,
# a minute longer to build).
INITRD_MODULES="virtio_pci virtio_blk virtio_scsi sd_mod squashfs overlay ext4"

DEBOOT=$(CRIO_TEST_CACHE=$CACHE "$ROOT/tests/packaging/base-root.sh")
key=$( { echo "$(basename "$DEBOOT") $PACKAGES $INITRD_MODULES"; cat "${BASH_SOURCE[0]}" "$HERE/etc-overlay.initramfs"; } | sha256sum | cut -c1-16)
tarball=$CACHE/node-base-amd64-$key.tar
if [[ -s $tarball ]]; then
    echo "$tarball"
    exit 0
fi

mkdir -p "$CACHE"
work=$(mktemp -d "$CACHE/node-base.XXXXXX")
cleanup() {
    umount "$work/root/proc" "$work/root/sys" "$work/root/dev" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
r=$work/root
mkdir "$r"
tar -C "$r" -xzf "$DEBOOT"
echo "base.sh: installing $PACKAGES into $r (cached as $tarball)" >&2

# No documentation, man pages or translations: the node has no reader.
cat >"$r/etc/dpkg/dpkg.cfg.d/01-node-nodoc" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
EOF
# Package scripts must not start services in the chroot.
printf '#!/bin/sh\nexit 101\n' >"$r/usr/sbin/policy-rc.d"
chmod 755 "$r/usr/sbin/policy-rc.d"
mount -t proc proc "$r/proc"
mount --bind /sys "$r/sys"
mount --bind /dev "$r/dev"
cp /etc/resolv.conf "$r/etc/resolv.conf" 2>/dev/null || true
in_root() { chroot "$r" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 "$@"; }
# INITRD=No: the kernel's postinst hook would build a MODULES=most initrd
# first; the one wanted is built below.
in_root apt-get update -q >"$work/apt.log" 2>&1 || { tail -n 20 "$work/apt.log" >&2; exit 1; }
in_root env INITRD=No apt-get install -y -q --no-install-recommends $PACKAGES >>"$work/apt.log" 2>&1 ||
    { tail -n 30 "$work/apt.log" >&2; exit 1; }

# The small initrd, with the script that gives the read-only root a
# writable /etc (see etc-overlay.initramfs).
sed -i 's/^MODULES=.*/MODULES=list/' "$r/etc/initramfs-tools/initramfs.conf"
printf '%s\n' $INITRD_MODULES >"$r/etc/initramfs-tools/modules"
install -m 0755 "$HERE/etc-overlay.initramfs" "$r/etc/initramfs-tools/scripts/init-bottom/etc-overlay"
kver=$(ls "$r/lib/modules" | sort -V | tail -n1)
in_root update-initramfs -c -k "$kver" >>"$work/apt.log" 2>&1 || { tail -n 20 "$work/apt.log" >&2; exit 1; }

# Kernel modules a container node under QEMU never loads (hardware it does
# not have): a third of the image otherwise.
m=$r/lib/modules/$kver/kernel
rm -rf "$m/sound" "$m/drivers/gpu" "$m/drivers/media" "$m/drivers/net/wireless" "$m/drivers/net/ethernet" \
    "$m/drivers/infiniband" "$m/drivers/staging" "$m/drivers/usb" "$m/drivers/bluetooth" "$m/drivers/iio" \
    "$m/drivers/isdn" "$m/drivers/mtd" "$m/drivers/hid" "$m/drivers/input" "$m/drivers/video" \
    "$m/drivers/scsi" "$m/drivers/ata" "$m/drivers/md" "$m/drivers/net/can" "$m/drivers/platform" \
    "$m/drivers/hwmon" "$m/drivers/edac" "$m/drivers/misc" "$m/drivers/nfc" "$m/drivers/gnss" \
    "$m/drivers/thunderbolt" "$m/drivers/net/usb" "$m/drivers/net/wwan" "$m/drivers/net/ieee802154" \
    "$m/net/bluetooth" "$m/net/wireless" "$m/net/mac80211" "$m/net/nfc" "$m/fs/ocfs2" "$m/fs/gfs2" \
    "$m/fs/nfs" "$m/fs/nfsd" "$m/fs/ceph" "$m/fs/smb" "$m/fs/xfs" "$m/fs/btrfs" "$m/fs/f2fs" "$m/fs/jfs" \
    "$m/fs/reiserfs" "$m/fs/nilfs2" "$m/fs/ubifs" "$m/fs/cifs"
rm -rf "$r/usr/lib/firmware" "$r/lib/firmware"
in_root depmod "$kver"

umount "$r/proc" "$r/sys" "$r/dev"
rm -f "$r/usr/sbin/policy-rc.d" "$r/etc/resolv.conf"
rm -rf "$r/var/cache/apt/archives/"*.deb "$r/var/cache/apt/"*.bin "$r/var/lib/apt/lists/"* "$r/var/log/"*.log \
    "$r/var/log/apt/"* "$r/tmp/"*
tar -C "$r" --numeric-owner -cf "$work/root.tar" .
mv "$work/root.tar" "$tarball"
echo "$tarball"
