#!/usr/bin/env bash
# tests/image/rootfs-arm64.sh: check the arm64 node root file system
# (image-build/rootfs-arm64.sh, `make rootfs-arm64`): unpack it and run its
# programs through qemu-aarch64-static (binfmt_misc, registered by the
# build) in a chroot: the architecture of every program crio needs, the
# installed package, its enabled units and the node configuration, and crio,
# runc and conmon answering. Booting it needs an arm64 kernel and machine,
# which this host cannot test (see the script's header).
#
# Environment: TARBALL (default build/image/crio-node-arm64.rootfs.tar.gz), KEEP=1.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TARBALL=${TARBALL:-$ROOT/build/image/crio-node-arm64.rootfs.tar.gz}
[[ -f $TARBALL ]] || { echo "rootfs-arm64.sh: no tarball at $TARBALL (make rootfs-arm64)" >&2; exit 2; }
[[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]] ||
    { echo "rootfs-arm64.sh: qemu-aarch64 is not registered with binfmt_misc (image-build/rootfs-arm64.sh does it)" >&2; exit 2; }
WORK=$(mktemp -d /var/tmp/crio-rootfs-arm64.XXXXXX)
r=$WORK/root
# shellcheck source=tests/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
cleanup() {
    local rc=$?
    umount "$r/proc" 2>/dev/null || true
    if [[ ${KEEP:-0} == 1 ]]; then echo "work directory kept: $WORK"; else rm -rf "$WORK"; fi
    exit $rc
}
trap cleanup EXIT
in_root() { chroot "$r" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }

echo "==> $(basename "$TARBALL") ($(du -m --apparent-size "$TARBALL" | cut -f1) MiB)"
mkdir "$r"
tar -C "$r" -xzf "$TARBALL"
mount -t proc proc "$r/proc"

machine() { # FILE: the ELF machine readelf reports
    readelf -h "$1" | sed -n 's/^ *Machine: *//p'
}
all_aarch64() {
    local f m
    for f in /usr/bin/crio /usr/sbin/runc /usr/bin/conmon /usr/lib/cni/bridge /usr/lib/cni/host-local \
        /usr/lib/cni/loopback /usr/lib/cni/portmap /usr/sbin/iptables /lib/systemd/systemd /usr/bin/bash; do
        f=$r$(readlink -f "$r$f" | sed "s#^$r##")
        m=$(machine "$f")
        echo "$f: $m"
        [[ $m == AArch64 ]] || return 1
    done
}
check "crio, runc, conmon, the CNI plugins, iptables and systemd are AArch64 programs" all_aarch64
static_crio() { ! readelf -lW "$r/usr/bin/crio" | grep -q 'Requesting program interpreter' && ! readelf -dW "$r/usr/bin/crio" | grep -q NEEDED; }
check "crio is static (no interpreter, no shared libraries)" static_crio
check "no kernel, initrd or boot loader in the root" bash -c "! ls '$r/boot/' | grep -E 'vmlinuz|initrd'"
crio_pkg() { in_root dpkg-query -W -f='${Status} ${Architecture}\n' crio | grep -x 'install ok installed arm64'; }
check "crio is installed from the project's arm64 package" crio_pkg
debian_pkgs() {
    [[ $(in_root dpkg-query -W -f='${Package} ${Status}\n' runc conmon containernetworking-plugins iptables | grep -c 'install ok installed') == 4 ]]
}
check "runc, conmon, the CNI plugins and iptables come from Debian" debian_pkgs
crio_version() { in_root /usr/bin/crio version | tee /dev/stderr | grep -xE 'Platform: +linux/arm64'; }
check "crio version runs (emulated aarch64) and says linux/arm64" crio_version
check "crio accepts the packaged configuration (crio config validate)" in_root /usr/bin/crio config validate
systemd_driver() { in_root /usr/bin/crio config | grep -E '^\s*cgroup_manager = "systemd"'; }
check "the packaged cgroup manager is systemd" systemd_driver
check "runc answers" in_root /usr/sbin/runc --version
check "conmon answers" in_root /usr/bin/conmon --version
check "crio.service and crio-firstboot.service are enabled" \
    test -L "$r/etc/systemd/system/multi-user.target.wants/crio.service" -a -L "$r/etc/systemd/system/multi-user.target.wants/crio-firstboot.service"
check "systemd agrees (systemctl is-enabled in the root)" in_root systemctl is-enabled crio.service crio-firstboot.service
check "first boot is a first boot (machine-id uninitialized)" grep -qx uninitialized "$r/etc/machine-id"
check "the CNI bridge network for pods is enabled" test -f "$r/etc/cni/net.d/11-crio-ipv4-bridge.conflist"
check "no service waits for a network" test "$(readlink "$r/etc/systemd/system/systemd-networkd-wait-online.service")" = /dev/null
check "the emulator is not left in the root" test ! -e "$r/usr/bin/qemu-aarch64-static"

summary "arm64 root file system"
