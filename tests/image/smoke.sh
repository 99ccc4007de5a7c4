#!/bin/sh
# tests/image/smoke.sh: runs inside the node image VM (written there by the
# Ignition config of tests/image/run.sh, started by node-smoke.service once
# crio is ready). Every result goes to the console as a "NODE-SMOKE:" line;
# the host asserts on them. A fatal step prints "NODE-SMOKE: FAIL ..." and
# stops, so the host does not wait for its timeout.
#
# The node runs systemd with cgroup v2 and crio's packaged configuration
# (cgroup_manager = "systemd"): the pod is a slice under a kubepods-style
# parent, as the kubelet's systemd driver names it, and each container is a
# transient crio-<id>.scope (issue 13).
say() { echo "NODE-SMOKE: $*" >/dev/console; echo "NODE-SMOKE: $*"; }
die() { say "FAIL $*"; exit 1; }
set -u
up() { cut -d' ' -f1 /proc/uptime; }
ready_us=$(systemctl show -p ActiveEnterTimestampMonotonic --value crio.service)
say "crio ready at ${ready_us}us since kernel start; smoke starts at $(up)s"
say "firstboot: $(journalctl -b -u crio-firstboot.service -o cat --no-pager | grep -m1 'crio firstboot:')"
# crio config --origin writes "# Set by FILE:LINE." on the line before a key.
say "origin: $(crio config --origin 2>/dev/null | grep -B1 -E '^ *log_level' | tr -s ' \n' '  ')"
say "cgroup driver (RuntimeConfig): $(crictl runtime-config 2>&1 | tr -d ' \n')"
say "images: $(crictl images -q 2>&1 | tr '\n' ' ')"
cd /etc/node-smoke || die "no /etc/node-smoke"
pod=$(crictl runp pod.json 2>&1) || die "runp: $pod"
ctr=$(crictl create "$pod" ctr.json pod.json 2>&1) || die "create: $ctr"
out=$(crictl start "$ctr" 2>&1) || die "start: $out"
ctr2=$(crictl create "$pod" ctr2.json pod.json 2>&1) || die "create second: $ctr2"
out=$(crictl start "$ctr2" 2>&1) || die "start second: $out"
say "pod ip: $(crictl inspectp -o go-template --template '{{.status.network.ip}}' "$pod" 2>&1)"
say "exec: $(crictl exec "$ctr" sh -c 'echo hello-from-pod-$(cat /proc/sys/kernel/hostname)' 2>&1)"
say "env in the container: $(crictl exec "$ctr" sh -c 'echo FLEET_MARKER=$FLEET_MARKER' 2>&1)"
pid=$(crictl inspect -o go-template --template '{{.info.pid}}' "$ctr")
pid2=$(crictl inspect -o go-template --template '{{.info.pid}}' "$ctr2")

# --- cgroups through systemd ----------------------------------------------------
cg=$(sed -n 's/^0:://p' "/proc/$pid/cgroup")
cg2=$(sed -n 's/^0:://p' "/proc/$pid2/cgroup")
say "container cgroup: $cg"
say "second container cgroup: $cg2"
limits() { # UNIT CGROUP: what systemd and the kernel say
    echo "MemoryMax=$(systemctl show -p MemoryMax --value "$1") CPUQuotaPerSecUSec=$(systemctl show -p CPUQuotaPerSecUSec --value "$1")" \
        "memory.max=$(cat "/sys/fs/cgroup$2/memory.max") cpu.max=$(cat "/sys/fs/cgroup$2/cpu.max" | tr ' ' /)"
}
say "limits: $(limits "crio-$ctr.scope" "$cg")"
say "second limits: $(limits "crio-$ctr2.scope" "$cg2")"
say "units: $(systemctl list-units --all --plain --no-legend 'crio-*.scope' 'kubepods*' | awk '{print $1 "=" $3}' | sed "s/$ctr/CTR1/; s/$ctr2/CTR2/; s/$pod/POD/" | sort | tr '\n' ' ')"
out=$(crictl update --memory 134217728 --cpu-quota 25000 --cpu-period 100000 "$ctr" 2>&1) || die "update: $out"
say "updated limits: $(limits "crio-$ctr.scope" "$cg")"
# Let the stats collector see the containers run for a moment.
crictl exec "$ctr" sh -c 'i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done' >/dev/null 2>&1
stat_field() { # FIELD: the first "value" of FIELD in crictl's JSON on stdin
    tr -d ' \n' | grep -o "\"$1\":{\"value\":\"[0-9]*\"" | head -n1 | tr -dc 0-9
}
stats() { # WHAT JSON: the CPU and memory figures, and the raw answer when one is missing
    c=$(printf '%s' "$2" | stat_field usageCoreNanoSeconds)
    m=$(printf '%s' "$2" | stat_field workingSetBytes)
    say "$1 stats: cpu=$c memory=$m"
    [ -n "$c" ] && [ -n "$m" ] || say "$1 stats answer: $(printf '%s' "$2" | tr -d ' \n' | cut -c1-600)"
}
stats container "$(crictl stats -o json --id "$ctr" 2>&1)"
stats pod "$(crictl statsp -o json --id "$pod" 2>&1)"

# --- restart keeps containers ----------------------------------------------------
say "container pid $pid, crio pid $(systemctl show -p MainPID --value crio.service)"
systemctl restart crio.service
state=$(crictl inspect -o go-template --template '{{.status.state}}' "$ctr" 2>&1)
pidr=$(crictl inspect -o go-template --template '{{.info.pid}}' "$ctr" 2>&1)
say "after restart: crio pid $(systemctl show -p MainPID --value crio.service) $(systemctl is-active crio.service), container $state pid $pidr, scope $(systemctl is-active "crio-$ctr.scope")"
[ "$state" = CONTAINER_RUNNING ] && [ "$pidr" = "$pid" ] && [ -d "/proc/$pid" ] && say "restart kept the container running"

# --- cleanup leaves no unit -----------------------------------------------------
crictl stopp "$pod" >/dev/null 2>&1 || die "stopp"
crictl rmp "$pod" >/dev/null 2>&1 || die "rmp"
left=$(systemctl list-units --all --plain --no-legend 'crio-*.scope' 'crio-*.slice' 'kubepods-burstable-pod*.slice' | awk '{print $1}' | tr '\n' ' ')
say "units left after removal: [${left% }]"
say "memory: $(free -m | awk '/^Mem:/ {print "used " $3 " MiB of " $2 " MiB"}'), crio rss $(ps -o rss= -C crio | head -n1) KiB"
say "DONE"
