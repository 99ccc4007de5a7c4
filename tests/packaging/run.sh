#!/usr/bin/env bash
# tests/packaging/run.sh: prove crio's packages the way an operator meets
# them. Needs root and the packages in PKGS (default build/packages, made by
# `make packages`).
#
#   1. lint: lintian on the .debs, rpmlint on the .rpms (no errors; every
#      override carries its reason in packaging/).
#   2. reproducible: a second build of the same commit gives the same bytes.
#   3. architectures: each package says its architecture and carries a
#      static crio of it; the arm64 one answers `crio version` under qemu.
#   4. rpm: its requirements, `rpm -i --root` into a Debian root (scriptlets
#      run there), `rpm -V`, erase.
#   5. deb: `apt-get install crio` from a local repository into a
#      debootstrap'd bookworm root, which pulls runc, conmon and the CNI
#      plugins from Debian; the root booted with systemd-nspawn: the unit
#      reaches active through sd_notify, crictl answers, the packaged
#      drop-in is in effect, reload applies log_level, a running container
#      survives `systemctl restart crio` and an upgrade to a rebuilt package
#      (whose conffile edit is kept), stop is clean, purge leaves nothing.
#      With the packaged systemd cgroup driver: a kubepods-style pod's slice,
#      its containers', monitors' and pod init's scopes, stats, restart and
#      kill -9 of crio, nothing left after removal.
#   6. first boot: crio-firstboot.service applies an Ignition config (file
#      platform) before crio starts, a second boot does not apply it again,
#      and a config with an invalid drop-in keeps crio from starting.
#
# Environment: PKGS, CRIO_TEST_CACHE (the cached base root, see
# base-root.sh), CRIO_SHARED (the conformance harness: its registry serves
# the test image), KEEP=1 (keep the work directory).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$ROOT/tests/packaging
PKGS=${PKGS:-$ROOT/build/packages}
IMAGE=registry.k8s.io/e2e-test-images/busybox:1.29-2

[[ $(id -u) -eq 0 ]] || { echo "run.sh: must run as root" >&2; exit 2; }
WORK=$(mktemp -d /var/tmp/crio-pkgtest.XXXXXX)
# shellcheck source=tests/lib.sh
. "$ROOT/tests/lib.sh"

# --- a booted root -----------------------------------------------------------
# systemd-nspawn boots the root with systemd as PID 1. Inside it, crio must
# run real containers with runc, which this host allows only so:
# - SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1: the machine gets a cgroup2 subtree
#   of its own. In the host's hybrid layout nspawn would otherwise mount the
#   v1 controllers read-only, and no pod cgroup could be made.
# - --system-call-filter="@keyring bpf": runc joins a session keyring and
#   queries the device-cgroup BPF programs; nspawn's filter refuses both.
# - --capability=all: what the host gives root (it withholds
#   CAP_SYS_RESOURCE, so that one is still missing).
# nspawn creates its cgroups below the cgroup it runs in, so it runs in a
# cgroup of this test's own, removed when the machine is gone.
UNIFIED=/sys/fs/cgroup/unified
[[ -d $UNIFIED ]] || UNIFIED=/sys/fs/cgroup
MACHINE=
LEADER=
MCG=
boot() {
    local root=$1 name=$2
    MACHINE=$name
    LEADER=
    MCG=$UNIFIED/crio-pkgtest-$name-$$
    mkdir "$MCG"
    (
        cd "$WORK"
        SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 setsid script -qfec \
            "sh -c 'echo \$\$ >$MCG/cgroup.procs && exec systemd-nspawn -q -D $root -b --register=no --keep-unit -M $name --capability=all --system-call-filter=\"@keyring bpf\"'" \
            "$WORK/console-$name.log" </dev/null >/dev/null 2>&1 &
    )
    local i
    for i in $(seq 300); do
        local nsp
        nsp=$(pgrep -f "^systemd-nspawn -q -D $root " | head -n1 || true)
        if [[ -n $nsp ]]; then
            # nspawn forks an outer child that forks the machine's PID 1
            # and exits: only a child that is PID 1 of a new PID namespace
            # is the leader (taking the outer child raced its exit).
            local c
            for c in $(ps --ppid "$nsp" -o pid=); do
                if awk '$1 == "NSpid:" && NF > 2 && $NF == 1 {f = 1} END {exit !f}' "/proc/$c/status" 2>/dev/null; then
                    LEADER=$c
                    break
                fi
            done
            [[ -n $LEADER ]] && break
        fi
        sleep 0.2
    done
    [[ -n $LEADER ]] || { echo "nspawn did not start:" >&2; tail -n 20 "$WORK/console-$name.log" >&2; return 1; }
    # multi-user.target reached (degraded is fine: the host lacks things a
    # container does not need).
    local state=
    for i in $(seq 240); do
        state=$(nsenter -t "$LEADER" -a systemctl is-system-running 2>/dev/null || true)
        [[ $state == running || $state == degraded ]] && break
        sleep 0.5
    done
    echo "    booted $name (leader $LEADER): $state"
}
# in_root CMD...: run a command inside the booted machine, with its env.
in_root() {
    nsenter -t "$LEADER" -a env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"
}
shutdown_machine() {
    [[ -n $LEADER ]] || return 0
    in_root systemctl poweroff >/dev/null 2>&1 || true
    local i
    for i in $(seq 100); do
        kill -0 "$LEADER" 2>/dev/null || break
        sleep 0.2
    done
    if kill -0 "$LEADER" 2>/dev/null; then
        pkill -KILL -f "^systemd-nspawn -q -D .* -M $MACHINE " || true
        sleep 1
    fi
    LEADER=
    if [[ -n $MCG && -d $MCG ]]; then
        find "$MCG" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    fi
    MCG=
}

# cleanup [RC]: the exit status to keep (a trap that ran other commands
# first passes the status it saw; $? would be theirs).
cleanup() {
    local rc=${1:-$?}
    shutdown_machine
    if [[ ${KEEP:-0} == 1 ]]; then
        echo "work directory kept: $WORK"
    else
        rm -rf "$WORK"
    fi
    exit $rc
}
trap cleanup EXIT

# verify_unit ROOT UNIT: systemd-analyze verify inside ROOT prints nothing.
# --man=no: the minimal roots have no man(1); the pages are checked apart.
verify_unit() {
    local out
    out=$(systemd-analyze verify --man=no --root="$1" "$2" 2>&1)
    echo "$out"
    [[ -z $out ]]
}

# new_root DIR: a fresh copy of the cached Debian bookworm base root.
BASE=
new_root() {
    [[ -n $BASE ]] || BASE=$("$HERE/base-root.sh")
    mkdir -p "$1"
    tar -C "$1" -xzf "$BASE"
}

# --- the packages ------------------------------------------------------------
one() { # one GLOB: the single file matching it
    local m=("$PKGS"/$1)
    [[ ${#m[@]} -eq 1 && -f ${m[0]} ]] || { echo "expected one $1 in $PKGS, found: ${m[*]}" >&2; exit 2; }
    echo "${m[0]}"
}
DEB_AMD64=$(one 'crio_*_amd64.deb')
DEB_ARM64=$(one 'crio_*_arm64.deb')
RPM_X86=$(one 'crio-*.x86_64.rpm')
RPM_ARM=$(one 'crio-*.aarch64.rpm')
VERSION=$(dpkg-deb -f "$DEB_AMD64" Version)
log "packages of crio $VERSION in $PKGS"

# --- 0. make install / uninstall ---------------------------------------------
log "make install and make uninstall (DESTDIR, PREFIX)"
DEST=$WORK/destdir
install_tree() {
    make -s -C "$ROOT" install DESTDIR="$DEST" PREFIX=/opt/crio CRIO_BIN=bin/crio-linux-amd64 >/dev/null || return 1
    (cd "$DEST" && find . -type f -o -type l | sort)
    local want
    for want in opt/crio/bin/crio opt/crio/lib/systemd/system/crio.service etc/crio/crio.conf.d/10-crio.conf \
        etc/crio/policy.json etc/containers/registries.conf.d/10-crio.conf opt/crio/share/crio/seccomp.json \
        etc/crictl.yaml etc/cni/net.d/11-crio-ipv4-bridge.conflist.disabled etc/default/crio \
        opt/crio/share/man/man8/crio.8.gz opt/crio/share/man/man5/crio.conf.5.gz \
        opt/crio/share/bash-completion/completions/crio opt/crio/share/zsh/vendor-completions/_crio \
        opt/crio/share/fish/vendor_completions.d/crio.fish; do
        [[ -e $DEST/$want ]] || { echo "missing $want"; return 1; }
    done
    # The unit runs the binary where PREFIX put it.
    grep -q '^ExecStart=/opt/crio/bin/crio ' "$DEST/opt/crio/lib/systemd/system/crio.service"
}
check "make install DESTDIR=... PREFIX=/opt/crio installs every part" install_tree
uninstall_tree() {
    make -s -C "$ROOT" uninstall DESTDIR="$DEST" PREFIX=/opt/crio >/dev/null || return 1
    local left
    left=$(cd "$DEST" && find . -type f -o -type l)
    echo "$left"
    [[ -z $left ]]
}
check "make uninstall removes every file install put there" uninstall_tree

# --- 1. lint -----------------------------------------------------------------
log "lint"
check "lintian: no errors in the amd64 .deb" lintian --fail-on error "$DEB_AMD64"
check "lintian: no errors in the arm64 .deb" lintian --fail-on error "$DEB_ARM64"
# rpmlint unpacks with `cpio -id`, and nfpm's payload holds absolute paths:
# as root that would write the package into /. It runs in a throwaway
# overlay of the host's root instead.
rpmlint_sandboxed() {
    unshare -m bash -euo pipefail -c '
        mount --make-rprivate /
        d=$(mktemp -d)
        mount -t tmpfs tmpfs "$d"
        mkdir "$d/upper" "$d/work" "$d/root"
        mount -t overlay overlay -o "lowerdir=/,upperdir=$d/upper,workdir=$d/work" "$d/root"
        mount --rbind /proc "$d/root/proc"
        mount --rbind /dev "$d/root/dev"
        mount -t tmpfs tmpfs "$d/root/tmp"
        mkdir -p "$d/root/pkgs"
        mount --bind "$(dirname "$1")" "$d/root/pkgs"
        cp "$2" "$d/root/tmp/rpmlint.toml"
        chroot "$d/root" sh -c "cd /tmp && rpmlint -c /tmp/rpmlint.toml /pkgs/$(basename "$1")"
    ' rpmlint "$@"
}
check "rpmlint: no errors in the x86_64 .rpm" rpmlint_sandboxed "$RPM_X86" "$ROOT/packaging/rpmlint.toml"
check "rpmlint: no errors in the aarch64 .rpm" rpmlint_sandboxed "$RPM_ARM" "$ROOT/packaging/rpmlint.toml"
overrides_have_reasons() {
    # Every override (or run of overrides) follows the comment that gives
    # its reason.
    awk '/^#/ { c = 1; next } /^[[:space:]]*$/ { c = 0; next } { if (!c) { print "no reason: " $0; bad = 1 } } END { exit bad }' \
        "$ROOT/packaging/deb/lintian-overrides" &&
        awk '/^[[:space:]]*#/ { c = 1; next } /^[[:space:]]*\x27/ { if (!c) { print "no reason: " $0; bad = 1 } next } { c = 0 } END { exit bad }' \
            "$ROOT/packaging/rpmlint.toml"
}
check "every lint override carries a reason" overrides_have_reasons

# --- 2. reproducible ---------------------------------------------------------
log "reproducible: a second build of the same commit"
rebuild_same() {
    OUT=$WORK/rebuild "$ROOT/packaging/build.sh" amd64 arm64 >/dev/null 2>"$WORK/rebuild.log" || { tail "$WORK/rebuild.log"; return 1; }
    local f rc=0
    for f in "$DEB_AMD64" "$DEB_ARM64" "$RPM_X86" "$RPM_ARM"; do
        local a b
        a=$(sha256sum <"$f" | cut -d' ' -f1)
        b=$(sha256sum <"$WORK/rebuild/$(basename "$f")" | cut -d' ' -f1) || b=missing
        echo "$(basename "$f"): $a $b"
        [[ $a == "$b" ]] || rc=1
    done
    return $rc
}
check "packages are byte-identical when rebuilt" rebuild_same
cat "$WORK/check.out" | sed 's/^/    /'

# --- 3. architectures --------------------------------------------------------
log "architectures"
extract_bin() { # PKG DIR: unpack PKG's /usr/bin/crio into DIR
    mkdir -p "$2"
    case $1 in
    *.deb) dpkg-deb -x "$1" "$2" ;;
    *.rpm) (cd "$2" && rpm2cpio "$1" | cpio -id --quiet --no-absolute-filenames 2>/dev/null) ;;
    esac
    [[ -x $2/usr/bin/crio ]]
}
arch_ok() { # PKG WANT_FIELD FILE_WORD PLATFORM
    local pkg=$1 field=$2 word=$3 platform=$4 dir=$WORK/x-$(basename "$1")
    case $pkg in
    *.deb) [[ $(dpkg-deb -f "$pkg" Architecture) == "$field" ]] || { echo "Architecture: $(dpkg-deb -f "$pkg" Architecture)"; return 1; } ;;
    *.rpm) [[ $(rpm -qp --qf '%{ARCH}' "$pkg" 2>/dev/null) == "$field" ]] || { echo "ARCH: $(rpm -qp --qf '%{ARCH}' "$pkg" 2>/dev/null)"; return 1; } ;;
    esac
    extract_bin "$pkg" "$dir"
    local f
    f=$(file -b "$dir/usr/bin/crio")
    echo "$f"
    [[ $f == *"$word"* && $f == *"statically linked"* ]] || return 1
    local v
    if [[ $platform == linux/arm64 ]]; then
        v=$(qemu-aarch64-static "$dir/usr/bin/crio" version)
    else
        v=$("$dir/usr/bin/crio" version)
    fi
    echo "$v"
    grep -q "Platform: *$platform" <<<"$v"
}
check "amd64 .deb: Architecture amd64, static x86-64 crio" arch_ok "$DEB_AMD64" amd64 x86-64 linux/amd64
check "arm64 .deb: Architecture arm64, static aarch64 crio that runs under qemu" arch_ok "$DEB_ARM64" arm64 "ARM aarch64" linux/arm64
check "x86_64 .rpm: ARCH x86_64, static x86-64 crio" arch_ok "$RPM_X86" x86_64 x86-64 linux/amd64
check "aarch64 .rpm: ARCH aarch64, static aarch64 crio that runs under qemu" arch_ok "$RPM_ARM" aarch64 "ARM aarch64" linux/arm64

# --- 4. rpm ------------------------------------------------------------------
log "rpm: requirements, install into a root, verify, erase"
rpm_requires() {
    local req
    req=$(rpm -qp --requires "$RPM_X86" 2>/dev/null)
    echo "$req"
    local want
    for want in '(runc or crun)' conmon containernetworking-plugins iptables; do
        grep -qxF "$want" <<<"$req" || { echo "missing: $want"; return 1; }
    done
}
check "rpm -qp --requires: (runc or crun), conmon, containernetworking-plugins, iptables" rpm_requires
RPMROOT=$WORK/rpmroot
new_root "$RPMROOT"
RPMQ=(rpm --root "$RPMROOT" --dbpath /var/lib/rpm)
rpm_install() {
    "${RPMQ[@]}" --initdb || return 1
    # Debian's rpm warns that it is not Debian's package manager ("use alien").
    local rc=0
    "${RPMQ[@]}" -i --nodeps "$RPM_X86" >"$WORK/rpm.log" 2>&1 || rc=$?
    grep -v -i alien "$WORK/rpm.log" || true
    [[ $rc -eq 0 ]] && "${RPMQ[@]}" -q crio
}
check "rpm -i --root (scriptlets run in the root's /bin/sh)" rpm_install
# --nodeps as for the install: no RPM distribution provides runc or conmon
# here; the requirements are checked above.
check "rpm -V passes (files, modes, digests, scriptlet effects)" "${RPMQ[@]}" -V --nodeps crio
mkdir -p "$WORK/rpm-unit"
cp "$RPMROOT/usr/lib/systemd/system/crio.service" "$WORK/rpm-unit/"
check "%post applied the preset: crio.service enabled" test -L "$RPMROOT/etc/systemd/system/multi-user.target.wants/crio.service"
check "the unit reads /etc/sysconfig/crio" \
    grep -q -e '^EnvironmentFile=-/etc/sysconfig/crio$' "$RPMROOT/usr/lib/systemd/system/crio.service"
check "the packaged drop-in names Fedora's CNI plugin directory" grep -q '/usr/libexec/cni/' "$RPMROOT/etc/crio/crio.conf.d/10-crio.conf"
rpm_erase() {
    local rc=0
    "${RPMQ[@]}" -e crio >"$WORK/rpm.log" 2>&1 || rc=$?
    grep -v -i alien "$WORK/rpm.log" || true
    [[ $rc -eq 0 ]] && ! "${RPMQ[@]}" -q crio >/dev/null 2>&1 &&
        [[ ! -e $RPMROOT/usr/bin/crio && ! -L $RPMROOT/etc/systemd/system/multi-user.target.wants/crio.service ]]
}
check "rpm -e: files and enablement gone (%preun disabled the unit)" rpm_erase
rm -rf "$RPMROOT"

# --- 5. deb: install, boot, restart, upgrade, purge ----------------------------
log "deb: a local repository with version N and a rebuilt N+1"
REPO=$WORK/repo
mkdir -p "$REPO"
cp "$DEB_AMD64" "$REPO/"
# N+1: the same commit rebuilt with the next package release.
release=${VERSION##*-}
NEXT_RELEASE=$((release + 1))
OUT=$WORK/next PKG_RELEASE=$NEXT_RELEASE "$ROOT/packaging/build.sh" amd64 >/dev/null 2>"$WORK/next.log" ||
    { tail "$WORK/next.log" >&2; exit 1; }
cp "$WORK"/next/crio_*_amd64.deb "$REPO/"
NEXT=${VERSION%-*}-$NEXT_RELEASE
(cd "$REPO" && apt-ftparchive packages . >Packages)

DEBROOT=$WORK/debroot
new_root "$DEBROOT"
mkdir -p "$DEBROOT/srv/repo"
mount --bind "$REPO" "$DEBROOT/srv/repo"
trap 'rc=$?; umount "$DEBROOT/srv/repo" 2>/dev/null || true; cleanup $rc' EXIT
echo "deb [trusted=yes] file:/srv/repo ./" >"$DEBROOT/etc/apt/sources.list.d/crio-local.list"
apt_install_n() {
    chroot "$DEBROOT" apt-get update -q &&
        DEBIAN_FRONTEND=noninteractive chroot "$DEBROOT" apt-get install -y -q "crio=$VERSION"
}
log "deb: apt-get install crio=$VERSION in a bookworm root"
check "apt-get install crio pulls its dependencies from Debian" apt_install_n
for dep in runc conmon containernetworking-plugins iptables; do
    check "dependency $dep installed" chroot "$DEBROOT" dpkg-query -W -f='${Status}' "$dep"
done
check "postinst enabled crio.service" test -L "$DEBROOT/etc/systemd/system/multi-user.target.wants/crio.service"
check "cri-o.service alias installed" test -L "$DEBROOT/etc/systemd/system/cri-o.service"
check "the default CNI bridge is installed disabled" test -f "$DEBROOT/etc/cni/net.d/11-crio-ipv4-bridge.conflist.disabled"
check "systemd-analyze verify prints nothing for the .deb's unit" verify_unit "$DEBROOT" /lib/systemd/system/crio.service
# The RPM's unit, checked in the same root (it has the helpers the unit
# calls: /bin/kill comes with procps, a dependency).
mkdir -p "$DEBROOT/tmp/rpm-unit"
cp "$WORK/rpm-unit/crio.service" "$DEBROOT/tmp/rpm-unit/"
check "systemd-analyze verify prints nothing for the RPM's unit" verify_unit "$DEBROOT" /tmp/rpm-unit/crio.service
rm -rf "$DEBROOT/tmp/rpm-unit"
man_pages() {
    local page
    for page in /usr/share/man/man8/crio.8.gz /usr/share/man/man5/crio.conf.5.gz; do
        [[ -s $DEBROOT$page ]] || { echo "missing $page"; return 1; }
        zcat "$DEBROOT$page" | head -n 3
    done
}
check "man pages crio(8) and crio.conf(5) installed" man_pages
chroot "$DEBROOT" dpkg -L crio >"$WORK/deb-files"
# Test-only: crictl (static, from the conformance tools) and the harness's
# registries.conf, so the test image comes from the local registry.
install -m 0755 "${CRICTL:-/opt/critools/crictl}" "$DEBROOT/usr/local/bin/crictl"
# UpdatePodSandboxResources, which crictl has no command for.
(cd "$ROOT" && CGO_ENABLED=0 go build -o "$DEBROOT/usr/local/bin/podupdate" ./tests/packaging/podupdate)
HARNESS=
for dir in ${CRIO_SHARED:+"$CRIO_SHARED"} "$ROOT/../shared" /work/shared; do
    [[ -x $dir/conformance/registry.sh ]] && { HARNESS=$dir/conformance; break; }
done
[[ -n $HARNESS ]] || { echo "run.sh: conformance harness not found (CRIO_SHARED)" >&2; exit 2; }
"$HARNESS/registry.sh" start >/dev/null
install -m 0644 "$HARNESS/registries.conf" "$DEBROOT/etc/containers/registries.conf.d/50-critest.conf"
cat >"$DEBROOT/root/pod.json" <<'EOF'
{"metadata": {"name": "pkgtest", "namespace": "default", "uid": "pkgtest-uid", "attempt": 0},
 "log_directory": "/var/log/pods/pkgtest",
 "linux": {"security_context": {"namespace_options": {"network": 2}}}}
EOF
cat >"$DEBROOT/root/ctr.json" <<EOF
{"metadata": {"name": "sleeper"}, "image": {"image": "$IMAGE"},
 "command": ["sleep", "3600"], "log_path": "sleeper.log"}
EOF

log "deb: boot the root (systemd-nspawn)"
boot "$DEBROOT" crio-pkgtest
unit() { in_root systemctl show -p "$1" --value crio.service; }
active_via_notify() {
    local i
    for i in $(seq 60); do
        [[ $(unit ActiveState) == active ]] && break
        sleep 0.5
    done
    echo "Type=$(unit Type) ActiveState=$(unit ActiveState) SubState=$(unit SubState) NRestarts=$(unit NRestarts)"
    [[ $(unit Type) == notify && $(unit ActiveState) == active && $(unit SubState) == running && $(unit NRestarts) == 0 ]]
}
check "crio.service active through sd_notify (Type=notify, not restarted)" active_via_notify
check "the watchdog is armed (WatchdogUSec=1min)" bash -c "[[ \$(nsenter -t $LEADER -a systemctl show -p WatchdogUSec --value crio.service) == 1min ]]"
check "crictl version answers on /var/run/crio/crio.sock" bash -c \
    "nsenter -t $LEADER -a crictl --runtime-endpoint unix:///var/run/crio/crio.sock version | grep -q 'RuntimeName: *crio'"
check "crio config --origin names the packaged drop-in" bash -c \
    "nsenter -t $LEADER -a crio config --origin | grep -q '/etc/crio/crio.conf.d/10-crio.conf'"
reload_applies() {
    printf '[crio.runtime]\nlog_level = "debug"\n' >"$DEBROOT/etc/crio/crio.conf.d/50-test.conf"
    local pid
    pid=$(unit MainPID)
    in_root systemctl reload crio.service
    sleep 1
    in_root journalctl -u crio.service --no-pager -o cat | grep -i 'log_level' | tail -n 3
    [[ $(unit MainPID) == "$pid" && $(unit ActiveState) == active ]] &&
        in_root journalctl -u crio.service --no-pager -o cat | grep -q 'log_level.*debug'
}
check "systemctl reload applies a changed log_level (same process)" reload_applies
rm -f "$DEBROOT/etc/crio/crio.conf.d/50-test.conf"

# A running container, and what must not touch it.
CTR=
CTR_PID=
run_container() {
    local pod
    in_root crictl pull "$IMAGE" >/dev/null &&
        pod=$(in_root sh -c 'cd /root && crictl runp pod.json') &&
        CTR=$(in_root sh -c "cd /root && crictl create $pod ctr.json pod.json") &&
        in_root crictl start "$CTR" >/dev/null &&
        CTR_PID=$(in_root crictl inspect -o go-template --template '{{.info.pid}}' "$CTR") &&
        [[ -n $CTR_PID ]] && in_root test -d "/proc/$CTR_PID"
}
check "a container runs inside the booted root" run_container
CTR=$(in_root crictl ps -q | head -n1 || true)
CTR_PID=$(in_root crictl inspect -o go-template --template '{{.info.pid}}' "$CTR" 2>/dev/null || true)
still_running() { # the same process, and crio says Running
    in_root test -d "/proc/$CTR_PID" &&
        [[ $(in_root crictl inspect -o go-template --template '{{.status.state}}' "$CTR") == CONTAINER_RUNNING ]] &&
        [[ $(in_root crictl inspect -o go-template --template '{{.info.pid}}' "$CTR") == "$CTR_PID" ]]
}
survives_restart() {
    local pid
    pid=$(unit MainPID)
    in_root systemctl restart crio.service
    echo "MainPID $pid -> $(unit MainPID), $(unit ActiveState)"
    [[ $(unit MainPID) != "$pid" && $(unit ActiveState) == active ]] && still_running
}
check "the container survives systemctl restart crio" survives_restart

# The systemd cgroup driver, the packaged default. This booted root is the
# systemd host it needs: systemd is PID 1 with a cgroup2 tree of its own
# (nspawn delegates one), so crio's D-Bus calls and runc --systemd-cgroup
# act on a real systemd. What this host cannot show: its cgroup2 hierarchy
# has no memory or cpu controller (a hybrid host binds them to the v1
# hierarchies), so no limit can be set in any cgroup of the machine, and
# runc refuses containers that ask for one. The limits, and updating them,
# are left to the node image's VM (tests/image), whose kernel runs cgroup
# v2 with every controller. Here: a kubepods-style pod with two
# containers, their slice and scopes, the monitors' scopes, stats, restart
# and kill -9 of crio, and nothing left after removal.
cat >"$DEBROOT/root/sdpod.json" <<'JSON'
{"metadata": {"name": "sdtest", "namespace": "default", "uid": "sdtest-uid", "attempt": 0},
 "log_directory": "/var/log/pods/sdtest",
 "linux": {"cgroup_parent": "kubepods-burstable-podsdtest.slice",
           "security_context": {"namespace_options": {"network": 2}}}}
JSON
for n in a b; do
    cat >"$DEBROOT/root/sdctr-$n.json" <<JSON
{"metadata": {"name": "sd-$n"}, "image": {"image": "$IMAGE"},
 "command": ["sh", "-c", "while :; do i=0; while [ \$i -lt 20000 ]; do i=\$((i+1)); done; sleep 1; done"],
 "log_path": "sd-$n.log"}
JSON
done
echo "    (the machine's cgroup2 controllers: '$(in_root cat /sys/fs/cgroup/cgroup.controllers)')"
SDPOD=
SDCTRS=()
sd_show() { in_root systemctl show -p "$2" --value "$1"; }
sd_run() {
    SDPOD=$(in_root sh -c 'cd /root && crictl runp sdpod.json') || return 1
    local n id
    for n in a b; do
        id=$(in_root sh -c "cd /root && crictl create $SDPOD sdctr-$n.json sdpod.json") &&
            in_root crictl start "$id" >/dev/null || return 1
        SDCTRS+=("$id")
    done
    echo "pod $SDPOD, containers ${SDCTRS[*]}"
    [[ ${#SDCTRS[@]} -eq 2 ]]
}
check "systemd driver: a pod with two containers under kubepods-burstable-podsdtest.slice" sd_run
sd_units() {
    local id cg slice=/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podsdtest.slice
    [[ ${#SDCTRS[@]} -eq 2 ]] || return 1
    echo "pod slice: $(sd_show kubepods-burstable-podsdtest.slice ActiveState) $(sd_show kubepods-burstable-podsdtest.slice ControlGroup)"
    [[ $(sd_show kubepods-burstable-podsdtest.slice ActiveState) == active ]] || return 1
    for id in "${SDCTRS[@]}"; do
        cg=$(sd_show "crio-$id.scope" ControlGroup)
        echo "crio-$id.scope: $(sd_show "crio-$id.scope" ActiveState) $cg"
        [[ $cg == "$slice/crio-$id.scope" && $(sd_show "crio-$id.scope" ActiveState) == active ]] || return 1
        # The container's processes are in that cgroup, as the kernel says.
        in_root grep -q "^0::$cg\$" "/proc/$(in_root crictl inspect -o go-template --template '{{.info.pid}}' "$id")/cgroup" || return 1
        # conmon: a scope of its own in system.slice, not in crio.service.
        echo "crio-conmon-$id.scope: $(sd_show "crio-conmon-$id.scope" Slice) $(sd_show "crio-conmon-$id.scope" ActiveState)"
        [[ $(sd_show "crio-conmon-$id.scope" Slice) == system.slice && $(sd_show "crio-conmon-$id.scope" ActiveState) == active ]] || return 1
    done
    echo "crio-init-$SDPOD.scope: $(sd_show "crio-init-$SDPOD.scope" Slice)"
    [[ $(sd_show "crio-init-$SDPOD.scope" Slice) == kubepods-burstable-podsdtest.slice ]] || return 1
    # Only the daemon itself is left in crio.service.
    echo "crio.service tasks: $(in_root cat "/sys/fs/cgroup$(sd_show crio.service ControlGroup)/cgroup.procs" | wc -l)"
    [[ $(in_root cat "/sys/fs/cgroup$(sd_show crio.service ControlGroup)/cgroup.procs" | wc -l) == 1 ]]
}
check "systemd driver: the pod's slice, the containers', monitors' and pod init's scopes, seen by systemd and the kernel" sd_units
sd_stats() {
    sleep 2
    in_root crictl stats -o json "${SDCTRS[0]}" | python3 -c '
import json, sys
s = json.load(sys.stdin)["stats"][0]
cpu = int(s["cpu"]["usageCoreNanoSeconds"]["value"])
print("container cpu", cpu)
sys.exit(0 if cpu > 0 else 1)' &&
        in_root crictl statsp -o json "$SDPOD" | python3 -c '
import json, sys
s = json.load(sys.stdin)["stats"][0]["linux"]
cpu = int(s["cpu"]["usageCoreNanoSeconds"]["value"])
print("pod cpu", cpu)
sys.exit(0 if cpu > 0 else 1)'
}
check "systemd driver: container and pod stats read from the systemd-made cgroups are non-zero" sd_stats
sd_pod_update() {
    in_root podupdate -memory 268435456 -cpu-quota 150000 -cpu-period 100000 -cpu-shares 2048 "$SDPOD" || return 1
    local mem quota
    mem=$(sd_show kubepods-burstable-podsdtest.slice MemoryMax)
    quota=$(sd_show kubepods-burstable-podsdtest.slice CPUQuotaPerSecUSec)
    echo "kubepods-burstable-podsdtest.slice: MemoryMax=$mem CPUQuotaPerSecUSec=$quota CPUWeight=$(sd_show kubepods-burstable-podsdtest.slice CPUWeight)"
    [[ $mem == 268435456 && ($quota == 1.500000s || $quota == 1.5s) ]]
}
check "systemd driver: UpdatePodSandboxResources sets the slice's properties in systemd" sd_pod_update
sd_running() {
    local id
    [[ ${#SDCTRS[@]} -eq 2 ]] || return 1
    for id in "${SDCTRS[@]}"; do
        [[ $(in_root crictl inspect -o go-template --template '{{.status.state}}' "$id") == CONTAINER_RUNNING ]] || return 1
        [[ $(sd_show "crio-$id.scope" ActiveState) == active && $(sd_show "crio-conmon-$id.scope" ActiveState) == active ]] || return 1
    done
}
sd_restart() { in_root systemctl restart crio.service && sd_running; }
check "systemd driver: the scopes and containers survive systemctl restart crio" sd_restart
sd_crash() {
    local pid i
    pid=$(sd_show crio.service MainPID)
    in_root kill -9 "$pid"
    # Right after the kill, systemd may still say "active" with MainPID 0
    # (the old process reaped, the restart not yet begun): wait for a new,
    # ready main process (Type=notify: active means READY=1 was sent).
    local now=$pid
    for i in $(seq 60); do
        now=$(sd_show crio.service MainPID)
        [[ $(sd_show crio.service ActiveState) == active && $now != 0 && $now != "$pid" ]] && break
        sleep 0.5
    done
    echo "MainPID $pid -> $now after kill -9"
    [[ $now != 0 && $now != "$pid" ]] && sd_running
}
check "systemd driver: the scopes and containers survive kill -9 of crio" sd_crash
sd_clean() {
    [[ ${#SDCTRS[@]} -eq 2 ]] || return 1
    in_root crictl rmp -f "$SDPOD" >/dev/null || return 1
    local units=(kubepods-burstable-podsdtest.slice "crio-init-$SDPOD.scope") id left
    for id in "${SDCTRS[@]}"; do units+=("crio-$id.scope" "crio-conmon-$id.scope"); done
    left=$(in_root systemctl list-units --all --plain --no-legend "${units[@]}")
    echo "left: $left"
    [[ -z $left ]] && ! in_root test -e /sys/fs/cgroup/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podsdtest.slice
}
check "systemd driver: stop and remove leave no slice or scope of the pod" sd_clean

log "deb: upgrade $VERSION -> $NEXT with an edited conffile"
echo "# local edit: kept across upgrades" >>"$DEBROOT/etc/crio/crio.conf.d/10-crio.conf"
upgrade() {
    local pid
    pid=$(unit MainPID)
    in_root apt-get install -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold crio
    echo "installed: $(in_root dpkg-query -W -f='${Version}' crio); MainPID $pid -> $(unit MainPID)"
    [[ $(in_root dpkg-query -W -f='${Version}' crio) == "$NEXT" && $(unit MainPID) != "$pid" && $(unit ActiveState) == active ]]
}
check "apt-get upgrade to the rebuilt package restarts crio" upgrade
check "the conffile edit survived the upgrade" grep -q '^# local edit: kept across upgrades$' "$DEBROOT/etc/crio/crio.conf.d/10-crio.conf"
check "the container survives the upgrade" still_running
check "the unit stays enabled after the upgrade" test -L "$DEBROOT/etc/systemd/system/multi-user.target.wants/crio.service"

log "deb: stop and purge"
in_root crictl rmp -fa >/dev/null 2>&1 || true
clean_stop() {
    in_root systemctl stop crio.service
    echo "ActiveState=$(unit ActiveState) Result=$(unit Result) ExecMainStatus=$(unit ExecMainStatus)"
    [[ $(unit ActiveState) == inactive && $(unit Result) == success && $(unit ExecMainStatus) == 0 ]]
}
check "systemctl stop crio exits cleanly" clean_stop
in_root systemctl start crio.service >/dev/null 2>&1 || true
purge_leaves_nothing() {
    in_root apt-get purge -y -q crio >/dev/null
    local left=() f
    while read -r f; do
        [[ -d $DEBROOT$f ]] && continue # shared directories (/etc, /usr/share, ...)
        [[ -e $DEBROOT$f || -L $DEBROOT$f ]] && left+=("$f")
    done <"$WORK/deb-files"
    for f in /etc/systemd/system/multi-user.target.wants/crio.service /etc/systemd/system/cri-o.service \
        /etc/crio /var/lib/crio /var/log/crio /run/crio /etc/default/crio /etc/crictl.yaml; do
        [[ -e $DEBROOT$f || -L $DEBROOT$f ]] && left+=("$f")
    done
    while read -r f; do left+=("${f#"$DEBROOT"}"); done < <(find "$DEBROOT/etc/systemd" "$DEBROOT/var/lib/systemd/deb-systemd-helper-enabled" \
        "$DEBROOT/var/lib/systemd/deb-systemd-helper-masked" -name '*crio*' 2>/dev/null)
    in_root sh -c 'for p in /proc/[0-9]*; do [ "$(cat $p/comm 2>/dev/null)" = crio ] && echo "crio process ${p#/proc/}"; done' | grep . && return 1
    [[ $(unit LoadState) == not-found ]] || left+=("unit LoadState=$(unit LoadState)")
    printf '%s\n' "${left[@]}"
    [[ ${#left[@]} -eq 0 ]]
}
check "apt-get purge leaves no file, unit, enablement link, state or process of crio" purge_leaves_nothing
shutdown_machine

# --- 6. first boot from Ignition (crio-firstboot.service) --------------------
# The file platform, as an operator sets it in /etc/default/crio (the
# kernel command line of an nspawn machine is the host's). The config
# writes a crio drop-in, a registries.conf mirror, a user with an SSH key
# and an enabled unit. The mirror is the only way to the test image: the
# registry's own location is a closed port on loopback.
log "first boot: crio firstboot applies an Ignition config (file platform)"
FBROOT=$WORK/fbroot
new_root "$FBROOT"
mkdir -p "$FBROOT/srv/repo"
mount --bind "$REPO" "$FBROOT/srv/repo"
trap 'rc=$?; umount "$FBROOT/srv/repo" "$DEBROOT/srv/repo" 2>/dev/null || true; cleanup $rc' EXIT
echo "deb [trusted=yes] file:/srv/repo ./" >"$FBROOT/etc/apt/sources.list.d/crio-local.list"
fb_install() {
    chroot "$FBROOT" apt-get update -q &&
        DEBIAN_FRONTEND=noninteractive chroot "$FBROOT" apt-get install -y -q "crio=$NEXT"
}
check "apt-get install crio into a second root" fb_install
check "postinst enabled crio-firstboot.service" test -L "$FBROOT/etc/systemd/system/multi-user.target.wants/crio-firstboot.service"
check "systemd-analyze verify prints nothing for crio-firstboot.service" verify_unit "$FBROOT" /lib/systemd/system/crio-firstboot.service
install -m 0755 "${CRICTL:-/opt/critools/crictl}" "$FBROOT/usr/local/bin/crictl"
sed -i 's|^CRIO_FIRSTBOOT_OPTIONS=.*|CRIO_FIRSTBOOT_OPTIONS=--platform file --config /boot/node.ign|' "$FBROOT/etc/default/crio"
ign_file() { # PATH CONTENTS: one storage.files entry, base64 data URL
    printf '{"path": "%s", "mode": 420, "contents": {"source": "data:;base64,%s"}}' "$1" "$(printf '%s' "$2" | base64 -w0)"
}
json_string() { python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))'; }
DROPIN=$'[crio.runtime]\nlog_level = "debug"\n'
MIRROR=$'[[registry]]\nprefix = "registry.k8s.io"\nlocation = "127.0.0.1:9/registry.k8s.io"\ninsecure = true\n[[registry.mirror]]\nlocation = "127.0.0.1:5000/registry.k8s.io"\ninsecure = true\n'
HELLO=$'[Unit]\nDescription=written by Ignition\n[Service]\nType=oneshot\nExecStart=/bin/touch /run/hello-from-ignition\n[Install]\nWantedBy=multi-user.target\n'
mkdir -p "$FBROOT/boot"
cat >"$FBROOT/boot/node.ign" <<JSON
{"ignition": {"version": "3.3.0"},
 "storage": {"files": [
   $(ign_file /etc/crio/crio.conf.d/50-fleet.conf "$DROPIN"),
   $(ign_file /etc/containers/registries.conf.d/60-mirror.conf "$MIRROR")]},
 "systemd": {"units": [{"name": "hello.service", "enabled": true, "contents": $(printf '%s' "$HELLO" | json_string)}]},
 "passwd": {"users": [{"name": "ops", "sshAuthorizedKeys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFleet ops@fleet"]}]}}
JSON
check "Debian's ignition-validate accepts the config" ignition-validate "$FBROOT/boot/node.ign"
check "crio config validate --ignition accepts it over the root" chroot "$FBROOT" crio config validate --ignition /boot/node.ign

boot "$FBROOT" crio-fbtest
fb_unit() { in_root systemctl show -p "$2" --value "$1"; }
fb_journal() { in_root journalctl -b -u crio-firstboot.service --no-pager -o cat; }
fb_active() {
    local i
    for i in $(seq 60); do
        [[ $(fb_unit crio.service ActiveState) == active ]] && break
        sleep 0.5
    done
    fb_journal | tail -n 5
    [[ $(fb_unit crio-firstboot.service Result) == success && $(fb_unit crio.service ActiveState) == active ]] &&
        fb_journal | grep -qF 'crio firstboot: applied (file platform, /boot/node.ign, sha256 '
}
check "first boot: crio-firstboot applied the config, then crio.service started" fb_active
check "crio config --origin names the drop-in from the Ignition config" bash -c \
    "nsenter -t $LEADER -a crio config --origin | grep -B1 '^log_level = \"debug\"' | grep -q 'Set by /etc/crio/crio.conf.d/50-fleet.conf:2'"
fb_pull() { in_root crictl pull "$IMAGE"; }
check "an image pull goes through the registries mirror from the config" fb_pull
check "the enabled unit from the config ran on this boot" in_root test -e /run/hello-from-ignition
check "the user from the config exists with its SSH key" bash -c \
    "grep -q '^ops:' '$FBROOT/etc/passwd' && grep -q 'ops@fleet' '$FBROOT/home/ops/.ssh/authorized_keys'"
fb_recorded() {
    local sum
    sum=$(sha256sum "$FBROOT/boot/node.ign" | cut -d' ' -f1)
    cat "$FBROOT/etc/crio/firstboot.json"
    grep -q "\"sha256\": \"$sum\"" "$FBROOT/etc/crio/firstboot.json"
}
check "the applied config's sha256 is recorded" fb_recorded
shutdown_machine

# Second boot: an operator's later edit of an applied file stays; the
# config is not applied again.
sed -i 's/log_level = "debug"/log_level = "info"/' "$FBROOT/etc/crio/crio.conf.d/50-fleet.conf" || true
boot "$FBROOT" crio-fbtest
fb_second() {
    local i
    for i in $(seq 60); do
        [[ $(fb_unit crio.service ActiveState) == active ]] && break
        sleep 0.5
    done
    fb_journal | tail -n 3
    fb_journal | grep -qF 'crio firstboot: already applied' &&
        grep -q 'log_level = "info"' "$FBROOT/etc/crio/crio.conf.d/50-fleet.conf" &&
        [[ $(fb_unit crio.service ActiveState) == active ]]
}
check "second boot: nothing applied again, crio started" fb_second
shutdown_machine

# A node whose config has a typo'd drop-in: nothing is written and crio
# does not start; the journal names the JSON path and the line.
rm -f "$FBROOT/etc/crio/firstboot.json" "$FBROOT/etc/crio/crio.conf.d/50-fleet.conf"
cat >"$FBROOT/boot/node.ign" <<JSON
{"ignition": {"version": "3.3.0"},
 "storage": {"files": [
   $(ign_file /etc/motd.d/fleet "hello"),
   $(ign_file /etc/crio/crio.conf.d/50-fleet.conf $'[crio.runtime]\nlog_levl = "debug"\n')]}}
JSON
check "Debian's ignition-validate accepts the typo'd config (it does not know crio)" ignition-validate "$FBROOT/boot/node.ign"
boot "$FBROOT" crio-fbtest
fb_closed() {
    local i
    for i in $(seq 60); do
        [[ $(fb_unit crio-firstboot.service ActiveState) == failed ]] && break
        sleep 0.5
    done
    fb_journal | tail -n 4
    echo "crio-firstboot: $(fb_unit crio-firstboot.service ActiveState); crio: $(fb_unit crio.service ActiveState)"
    [[ $(fb_unit crio-firstboot.service ActiveState) == failed && $(fb_unit crio.service ActiveState) != active ]] &&
        fb_journal | grep -qF '$.storage.files.1.contents (/etc/crio/crio.conf.d/50-fleet.conf):2: crio.runtime.log_levl: unknown key' &&
        [[ ! -e $FBROOT/etc/motd.d/fleet && ! -e $FBROOT/etc/crio/crio.conf.d/50-fleet.conf && ! -e $FBROOT/etc/crio/firstboot.json ]] &&
        ! in_root pgrep -x crio
}
check "bad config: nothing written, crio not started, the error in the journal" fb_closed
check "the console shows the error too" grep -qF 'crio.runtime.log_levl' "$WORK/console-crio-fbtest.log"
shutdown_machine
umount "$FBROOT/srv/repo" 2>/dev/null || true

summary packaging
