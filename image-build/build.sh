#!/usr/bin/env bash
# image-build/build.sh: build the crio node image (amd64): a GPT disk image
# with an EFI system partition (systemd-boot, the kernel, a small initrd)
# and a read-only squashfs root holding Debian bookworm, systemd, crio from
# the project's .deb (runc, conmon and the CNI plugins from Debian), a CNI
# bridge network for pods and preloaded images.
#
#   image-build/build.sh            (or: make image)
#
# Environment:
#   DEB      crio's .deb (default: the one in build/packages, `make packages`)
#   IMAGES   images to preload, space-separated (default: the busybox test
#            image). Copied with skopeo from the local test registry through
#            REGISTRIES_CONF (default: the conformance harness's, which
#            mirrors registry.k8s.io to 127.0.0.1:5000) into a read-only
#            image store in the root, /usr/lib/containers/storage.
#   OUT      output directory (default: build/image): crio-node-amd64.img
#   SOURCE_DATE_EPOCH  file times everywhere (default: the commit's time)
#   CRIO_IMAGE_CACHE   the cached base root (default /var/cache/crio-tests)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
OUT=${OUT:-$ROOT/build/image}
CACHE=${CRIO_IMAGE_CACHE:-${CRIO_TEST_CACHE:-/var/cache/crio-tests}}
IMAGES=${IMAGES-registry.k8s.io/e2e-test-images/busybox:1.29-2}
CRICTL=${CRICTL:-/opt/critools/crictl}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || echo 0)}
# Fixed identifiers: the same inputs give the same partition table, and the
# boot entry names the root by its partition UUID.
DISK_GUID=8f3c1e52-5a4d-4b7e-9c2a-0c0de0c0de00
ESP_UUID=8f3c1e52-5a4d-4b7e-9c2a-0c0de0c0de01
ROOT_UUID=8f3c1e52-5a4d-4b7e-9c2a-0c0de0c0de02
ESP_VOLID=0C0DE001
ESP_MB=48
KCMDLINE="root=PARTUUID=$ROOT_UUID rootfstype=squashfs ro systemd.volatile=state console=ttyS0 ignition.platform.id=qemu systemd.show_status=1"

log() { echo "==> [$(date -u +%H:%M:%S)] $*" >&2; }
[[ $(id -u) -eq 0 ]] || { echo "build.sh: must run as root" >&2; exit 2; }
for tool in mksquashfs mkfs.fat mcopy sfdisk skopeo debootstrap; do
    command -v "$tool" >/dev/null || { echo "build.sh: $tool is missing (apt-get install squashfs-tools dosfstools mtools fdisk skopeo debootstrap)" >&2; exit 2; }
done
if [[ -z ${DEB:-} ]]; then
    debs=("$ROOT"/build/packages/crio_*_amd64.deb)
    [[ ${#debs[@]} -eq 1 && -f ${debs[0]} ]] || { echo "build.sh: expected one crio_*_amd64.deb in build/packages (make packages), found: ${debs[*]}" >&2; exit 2; }
    DEB=${debs[0]}
fi

start=$(date +%s)
log "base root (cached in $CACHE)"
BASE=$("$HERE/base.sh")
mkdir -p "$OUT"
WORK=$(mktemp -d "$OUT/work.XXXXXX")
r=$WORK/root
cleanup() {
    umount "$r/proc" 2>/dev/null || true
    umount "$r/usr/lib/containers/storage/overlay" 2>/dev/null || true
    [[ ${KEEP:-0} == 1 ]] && { echo "work directory kept: $WORK" >&2; return; }
    rm -rf "$WORK"
}
trap cleanup EXIT
mkdir "$r"
tar -C "$r" -xf "$BASE"

log "install $(basename "$DEB")"
cp "$DEB" "$r/tmp/crio.deb"
printf '#!/bin/sh\nexit 101\n' >"$r/usr/sbin/policy-rc.d"
chmod 755 "$r/usr/sbin/policy-rc.d"
mount -t proc proc "$r/proc"
chroot "$r" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive dpkg -i /tmp/crio.deb >"$WORK/dpkg.log" 2>&1 ||
    { cat "$WORK/dpkg.log" >&2; exit 1; }
umount "$r/proc"
rm -f "$r/tmp/crio.deb" "$r/usr/sbin/policy-rc.d"
install -m 0755 "$CRICTL" "$r/usr/bin/crictl"

log "node configuration"
# shellcheck source=image-build/node-config.sh
. "$HERE/node-config.sh"
node_config "$r"

if [[ -n $IMAGES ]]; then
    log "preload images: $IMAGES"
    HARNESS=
    for dir in ${CRIO_SHARED:+"$CRIO_SHARED"} "$ROOT/../shared" /work/shared; do
        [[ -x $dir/conformance/registry.sh ]] && { HARNESS=$dir/conformance; break; }
    done
    REGISTRIES_CONF=${REGISTRIES_CONF:-${HARNESS:+$HARNESS/registries.conf}}
    [[ -n $HARNESS ]] && "$HARNESS/registry.sh" start >/dev/null
    store=$r/usr/lib/containers/storage
    mkdir -p "$store"
    cat >"$WORK/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$store"
runroot = "$WORK/runroot"
EOF
    for img in $IMAGES; do
        CONTAINERS_STORAGE_CONF=$WORK/storage.conf skopeo ${REGISTRIES_CONF:+--registries-conf "$REGISTRIES_CONF"} \
            copy -q --src-tls-verify=false "docker://$img" \
            "containers-storage:[overlay@$store+$WORK/runroot]$img" >&2
    done
    # containers/storage mounts its overlay directory on itself (private);
    # then the lock files and mount bookkeeping of the build host's run.
    umount "$store/overlay" 2>/dev/null || true
    rm -rf "$store/overlay-containers" "$store/overlay/"*/merged "$store/overlay/"*/work
    rm -f "$store/storage.lock" "$store/userns.lock"
fi

log "kernel, initrd, systemd-boot"
kver=$(ls "$r/lib/modules" | sort -V | tail -n1)
cp "$r/boot/vmlinuz-$kver" "$WORK/vmlinuz"
cp "$r/boot/initrd.img-$kver" "$WORK/initrd.img"
rm -rf "$r/boot/"*
# systemd-boot from Debian, the version the root's systemd is.
sdver=$(chroot "$r" dpkg-query -W -f='${Version}' systemd)
efi=$CACHE/systemd-bootx64-$sdver.efi
if [[ ! -s $efi ]]; then
    d=$(mktemp -d)
    (cd "$d" && apt-get download -q "systemd-boot-efi=$sdver" >/dev/null && dpkg-deb -x systemd-boot-efi_*.deb x) ||
        { echo "build.sh: apt-get download systemd-boot-efi=$sdver failed" >&2; rm -rf "$d"; exit 1; }
    cp "$d/x/usr/lib/systemd/boot/efi/systemd-bootx64.efi" "$efi.tmp" && mv "$efi.tmp" "$efi"
    rm -rf "$d"
fi
rm -rf "$r/var/cache/apt/"* "$r/var/lib/apt/lists/"* "$r/var/log/"* "$r/tmp/"* "$r/var/tmp/"*
mkdir -p "$r/var/log" "$r/var/cache/apt"

log "root file system (squashfs)"
# -all-time/-mkfs-time and -all-root: no build time or builder's owner;
# sorted directory order is mksquashfs's own.
env -u SOURCE_DATE_EPOCH mksquashfs "$r" "$WORK/root.sqfs" -comp zstd -b 1M -noappend -quiet \
    -all-time "$SOURCE_DATE_EPOCH" -mkfs-time "$SOURCE_DATE_EPOCH" -processors 2 >&2

log "EFI system partition (FAT, built unmounted)"
mkdir -p "$WORK/esp"
cat >"$WORK/esp/loader.conf" <<EOF
default crio-node.conf
timeout 0
editor no
EOF
cat >"$WORK/esp/crio-node.conf" <<EOF
title crio node ($kver)
linux /crio-node/vmlinuz
initrd /crio-node/initrd.img
options $KCMDLINE
EOF
touch -d "@$SOURCE_DATE_EPOCH" "$WORK/esp/"* "$WORK/vmlinuz" "$WORK/initrd.img"
cp "$efi" "$WORK/esp/BOOTX64.EFI"
touch -d "@$SOURCE_DATE_EPOCH" "$WORK/esp/BOOTX64.EFI"
esp=$WORK/esp.img
rm -f "$esp"
mkfs.fat -C -F 32 -n ESP -i "$ESP_VOLID" --invariant "$esp" $((ESP_MB * 1024)) >/dev/null 2>&1 ||
    mkfs.fat -C -F 32 -n ESP -i "$ESP_VOLID" "$esp" $((ESP_MB * 1024)) >/dev/null
export MTOOLS_SKIP_CHECK=1
mmd -i "$esp" ::/EFI ::/EFI/BOOT ::/loader ::/loader/entries ::/crio-node
mcopy -m -i "$esp" "$WORK/esp/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI
mcopy -m -i "$esp" "$WORK/esp/loader.conf" ::/loader/loader.conf
mcopy -m -i "$esp" "$WORK/esp/crio-node.conf" ::/loader/entries/crio-node.conf
mcopy -m -i "$esp" "$WORK/vmlinuz" ::/crio-node/vmlinuz
mcopy -m -i "$esp" "$WORK/initrd.img" ::/crio-node/initrd.img

log "GPT disk"
sqfs_sectors=$(( ($(stat -c %s "$WORK/root.sqfs") + 1048575) / 1048576 * 2048 ))
esp_sectors=$((ESP_MB * 2048))
disk=$WORK/disk.img
# 1 MiB before the ESP, 1 MiB after the root for the backup GPT.
total=$(( (2048 + esp_sectors + sqfs_sectors + 2048) * 512 ))
truncate -s "$total" "$disk"
sfdisk -q "$disk" >&2 <<EOF
label: gpt
label-id: $DISK_GUID
first-lba: 2048
start=2048, size=$esp_sectors, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=$ESP_UUID, name="ESP"
start=$((2048 + esp_sectors)), size=$sqfs_sectors, type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, uuid=$ROOT_UUID, name="root-x86-64"
EOF
dd if="$esp" of="$disk" bs=1M seek=1 conv=notrunc status=none
dd if="$WORK/root.sqfs" of="$disk" bs=512 seek=$((2048 + esp_sectors)) conv=notrunc status=none
mv "$disk" "$OUT/crio-node-amd64.img"
ln -sf crio-node-amd64.img "$OUT/crio-node.img"
{
    echo "image: $OUT/crio-node-amd64.img ($(du -m --apparent-size "$OUT/crio-node-amd64.img" | cut -f1) MiB)"
    echo "root squashfs: $(( $(stat -c %s "$WORK/root.sqfs") / 1048576 )) MiB; root tree: $(du -sm "$r" | cut -f1) MiB"
    echo "kernel $kver: $(( $(stat -c %s "$WORK/vmlinuz") / 1024 )) KiB; initrd: $(( $(stat -c %s "$WORK/initrd.img") / 1024 )) KiB"
    echo "crio: $(dpkg-deb -f "$DEB" Version); preloaded: ${IMAGES:-none}"
    echo "kernel command line: $KCMDLINE"
    echo "built in $(( $(date +%s) - start )) s"
} | tee "$OUT/crio-node-amd64.txt" >&2
chroot "$r" dpkg-query -W -f='${Installed-Size}\t${Package}\t${Version}\n' | sort -rn >"$OUT/crio-node-amd64.packages"
sha256sum "$OUT/crio-node-amd64.img" | tee -a "$OUT/crio-node-amd64.txt" >&2
