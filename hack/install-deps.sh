#!/usr/bin/env bash
# install-deps.sh: apt-installs the packages crio needs at run time (and that
# the tests use), only those that are missing. Idempotent; needs root only
# when something is missing.
set -euo pipefail

PACKAGES=(runc conmon containernetworking-plugins iptables busybox-static
    docker-registry skopeo)
PACKAGES+=("$@")

missing=()
for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
        missing+=("$pkg")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -ne 0 ]]; then
    echo "install-deps.sh: missing packages: ${missing[*]}; run as root (or apt-get install them)" >&2
    exit 1
fi
echo "==> installing ${missing[*]}"
# Keep package scripts from starting services (docker-registry would listen
# on all interfaces); the tests start what they need themselves.
own_policy=false
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    own_policy=true
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt_get() { DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 "$@"; }
# A package of a foreign architecture (libseccomp-dev:arm64, for the
# release bundle's cross-built runc) needs that architecture enabled in
# dpkg first, and package lists that include it.
need_update=false
for pkg in "${missing[@]}"; do
    [[ $pkg == *:* ]] || continue
    arch=${pkg##*:}
    if [[ $arch != "$(dpkg --print-architecture)" ]] &&
        ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
        dpkg --add-architecture "$arch"
        need_update=true
    fi
done
$need_update && apt_get update
# Refresh the package lists only when they are missing or a package is unknown.
if ! apt_get install -y --no-install-recommends "${missing[@]}"; then
    apt_get update
    apt_get install -y --no-install-recommends "${missing[@]}"
fi
$own_policy && rm -f /usr/sbin/policy-rc.d
trap - EXIT
