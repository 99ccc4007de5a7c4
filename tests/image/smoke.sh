#!/bin/sh
# tests/image/smoke.sh: runs inside the node image VM (written there by the
# Ignition config of tests/image/run.sh, started by node-smoke.service once
# crio is ready). Every result goes to the console as a "NODE-SMOKE:" line;
# the host asserts on them. A fatal step prints "NODE-SMOKE: FAIL ..." and
# stops, so the host does not wait for its timeout.
#
# The node runs systemd with crio's packaged configuration (cgroup_manager =
# "systemd"): the pod is a slice under a kubepods-style parent, as the
# kubelet's systemd driver names it, and each container is a transient
# crio-<id>.scope (issue 13). The image boots with cgroup v2 by default; the
# host test boots it once more with systemd.unified_cgroup_hierarchy=0
# (hybrid: v1 controllers, systemd's own hierarchy on cgroup2), and the
# lines below then read the v1 files and systemd's v1 property names.
# printf, not echo: dash's echo reads backslashes (the kernel command line's
# "initrd=\EFI\..." holds a \c, which ends the line there).
say() { printf 'NODE-SMOKE: %s\n' "$*" >/dev/console; printf 'NODE-SMOKE: %s\n' "$*"; }
# die also puts crio's last log lines on the console: the journal dies with
# the VM, the serial log is all the test keeps.
die() {
    say "FAIL $*"
    {
        if [ -e /run/node-smoke.hung ]; then
            # A call ran into its timeout: the CPU hogs, and crio's
            # goroutines (SIGQUIT makes the Go runtime print them and exit).
            top -b -n 1 | head -n 15
            kill -QUIT "$(systemctl show -p MainPID --value crio.service)"
            sleep 2
            journalctl -b -u crio.service -n 400 --no-pager -o cat | grep -v '^$'
        fi
        journalctl -b -u crio.service -n 25 --no-pager -o cat
        crictl ps -a
        systemctl list-units --all --plain --no-legend 'crio-*' 'kubepods*'
        ps -eo pid,ppid,stat,wchan:20,args | grep -v ' \['
        [ -n "${pid:-}" ] && cat "/proc/$pid/cgroup"
    } 2>&1 | sed 's/^/NODE-SMOKE-LOG: /' >/dev/console
    exit 1
}
set -u
# Every CRI call is bounded: a hung one fails the test with the diagnostics
# above instead of running into the host's boot timeout with nothing said.
CRICTL=$(command -v crictl)
crictl() {
    timeout 120 "$CRICTL" "$@"
    rc=$?
    # A file, not a variable: most calls run in a command substitution.
    [ "$rc" = 124 ] && : >/run/node-smoke.hung
    return "$rc"
}
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
if [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then
    layout=v2
    cgof() { sed -n 's/^0:://p' "/proc/$1/cgroup"; }
else
    layout=v1
    # The memory hierarchy's path; systemd gives every hierarchy the same.
    cgof() { sed -n 's/^[0-9]*:memory://p' "/proc/$1/cgroup"; }
fi
say "cgroup layout: $layout ($(stat -fc %T /sys/fs/cgroup) at /sys/fs/cgroup; kernel command line: $(cat /proc/cmdline))"
cg=$(cgof "$pid")
cg2=$(cgof "$pid2")
say "container cgroup: $cg"
# v1: the hierarchies (other than systemd's own and misc) whose path for PID
# is not the container's scope. systemd 252 moves an earlier container's
# process from its scope's devices cgroup to the pod slice's when it
# realizes a sibling unit (README, "Where crio differs"); printed, so a
# systemd that stops doing it shows.
strays() { [ $layout = v1 ] || return 0; awk -F: -v cg="$2" '$1 != 0 && $2 != "misc" && $2 != "name=systemd" && $3 != cg {printf "%s=%s ", $2, $3}' "/proc/$1/cgroup"; }
say "second container cgroup: $cg2"
limits() { # UNIT CGROUP: what systemd and the kernel say
    if [ $layout = v2 ]; then
        echo "MemoryMax=$(systemctl show -p MemoryMax --value "$1") CPUQuotaPerSecUSec=$(systemctl show -p CPUQuotaPerSecUSec --value "$1")" \
            "memory.max=$(cat "/sys/fs/cgroup$2/memory.max") cpu.max=$(cat "/sys/fs/cgroup$2/cpu.max" | tr ' ' /)"
    else
        echo "MemoryLimit=$(systemctl show -p MemoryLimit --value "$1") CPUQuotaPerSecUSec=$(systemctl show -p CPUQuotaPerSecUSec --value "$1")" \
            "memory.limit_in_bytes=$(cat "/sys/fs/cgroup/memory$2/memory.limit_in_bytes")" \
            "cpu.cfs=$(cat "/sys/fs/cgroup/cpu,cpuacct$2/cpu.cfs_quota_us")/$(cat "/sys/fs/cgroup/cpu,cpuacct$2/cpu.cfs_period_us")"
    fi
}
say "limits: $(limits "crio-$ctr.scope" "$cg")"
say "second limits: $(limits "crio-$ctr2.scope" "$cg2")"
say "units: $(systemctl list-units --all --plain --no-legend 'crio-*.scope' 'kubepods*' | awk '{print $1 "=" $3}' | sed "s/$ctr/CTR1/; s/$ctr2/CTR2/; s/$pod/POD/" | sort | tr '\n' ' ')"
out=$(crictl update --memory 134217728 --cpu-quota 25000 --cpu-period 100000 "$ctr" 2>&1) || die "update: $out"
say "updated limits: $(limits "crio-$ctr.scope" "$cg")"
say "hierarchies not in the scope: first container [$(strays "$pid" "$cg")], second [$(strays "$pid2" "$cg2")]"
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
t0=$(up)
out=$(crictl -t 60s stopp "$pod" 2>&1) || die "stopp: $out"
out=$(crictl rmp "$pod" 2>&1) || die "rmp: $out"
say "stopp and rmp took $(awk -v a="$t0" -v b="$(up)" 'BEGIN {printf "%.1f", b - a}') s"
left=$(systemctl list-units --all --plain --no-legend 'crio-*.scope' 'crio-*.slice' 'kubepods-burstable-pod*.slice' | awk '{print $1}' | tr '\n' ' ')
say "units left after removal: [${left% }]"
say "memory: $(free -m | awk '/^Mem:/ {print "used " $3 " MiB of " $2 " MiB"}'), crio rss $(ps -o rss= -C crio | head -n1) KiB"
say "DONE"
