# image-build/node-config.sh: sourced by the image builds (build.sh for the
# amd64 disk image, rootfs-arm64.sh for the arm64 root file system).
# node_config ROOT turns a Debian root with crio installed into a node root:
# first boot, no network wait, registries, the CNI bridge for pods, and the
# additional image store for preloaded images.
node_config() {
    local r=$1 u
    # The units are enabled now: a read-only /etc cannot take presets at boot.
    for u in crio.service crio-firstboot.service; do
        [[ -L $r/etc/systemd/system/multi-user.target.wants/$u ]] ||
            ln -sf "/lib/systemd/system/$u" "$r/etc/systemd/system/multi-user.target.wants/$u"
    done
    # First boot: systemd treats "uninitialized" as a first boot (an empty file
    # is not one); the overlay /etc (etc-overlay.initramfs) makes it writable.
    echo uninitialized >"$r/etc/machine-id"
    rm -f "$r/var/lib/dbus/machine-id"
    mkdir -p "$r/usr/lib/crio-node"
    touch "$r/usr/lib/crio-node/etc-overlay"
    echo crio-node >"$r/etc/hostname"
    : >"$r/etc/fstab"
    # /tmp: a tmpfs (the root is read-only; crio firstboot stages its checks there).
    ln -sf /usr/share/systemd/tmp.mount "$r/etc/systemd/system/tmp.mount"
    mkdir -p "$r/etc/systemd/system/local-fs.target.wants"
    ln -sf /etc/systemd/system/tmp.mount "$r/etc/systemd/system/local-fs.target.wants/tmp.mount"
    # No network is waited for (the node may have none); no login on a console.
    for u in systemd-networkd-wait-online.service console-getty.service apt-daily.timer apt-daily-upgrade.timer; do
        ln -sf /dev/null "$r/etc/systemd/system/$u"
    done
    # registries.conf: containers-common is not installed; no short-name
    # search (the package's drop-in in registries.conf.d adds its own).
    mkdir -p "$r/etc/containers/registries.conf.d"
    [[ -e $r/etc/containers/registries.conf ]] || cat >"$r/etc/containers/registries.conf" <<'EOF'
# crio node image: registries come from registries.conf.d drop-ins (an
# Ignition config can add mirrors there).
unqualified-search-registries = []
EOF
    # Pods: the package's bridge network (bridge + host-local, 10.85.0.0/16).
    cp "$r/etc/cni/net.d/11-crio-ipv4-bridge.conflist.disabled" "$r/etc/cni/net.d/11-crio-ipv4-bridge.conflist"
    # The preloaded images: a read-only additional image store in /usr. crio's
    # own store is under /var (a tmpfs) and starts empty at every boot;
    # containers/storage's overlay driver finds images and layers in the
    # additional store and uses its layers as read-only lower layers.
    cat >"$r/etc/crio/crio.conf.d/05-node-image.conf" <<'EOF'
# crio node image: images preloaded at build time (IMAGES=...) live in a
# read-only additional image store on the root file system.
[crio]
storage_driver = "overlay"
storage_option = ["overlay.imagestore=/usr/lib/containers/storage"]
EOF
}
