#!/bin/bash
# bench-pods.sh: pods, exec, memory and start-up of crio against containerd,
# side by side in one session, runtimes alternated, medians at the end.
#
#   hack/bench-pods.sh [OUTDIR]        (default /var/tmp/crio-bench-pods/out-DATE)
#
# What runs (cribench from ../shared/bench, same flags as baseline.sh matrix):
#   matrix   REPS times, for each cell of CELLS ("PODSxCONC", default "10x1
#            50x4") and each runtime (order rotated every run): cribench with
#            the bench CNI network (bridge bench0, 10.97.0.0/16, traffic stays
#            on the machine), cold pulls of busybox and big, N pods of `sleep`,
#            ListContainers, ExecSync `true`, memory with N pods, teardown
#   hostnet  HOSTNET_REPS times (default 1) the same cells with -hostnet
#   execmem  the memory one ExecSync adds while it runs: one pod, EXEC_REPS
#            execs of `sleep 4`, daemon + helpers sampled before and halfway
#            (a small CRI client built in cribench's module, from this script)
#   startup  STARTUP_REPS (7) alternated cold starts (exec -> Version answers,
#            idle memory after 5 s) with cribench startup
#   leaks    mounts, namespace files, veths on bench0, IPAM leases, helper
#            processes and runc state, before and after the runs
# Then `cribench report -base containerd` and summary.md (medians, crio ÷
# containerd, and CRI-O ÷ containerd from BASELINE.md for reference).
#
# Both daemons run at once on private paths, with the bench's configs (paths
# rewritten): crio takes the CRI-O-format configs/crio (crio.conf,
# storage.conf via CONTAINERS_STORAGE_CONF, --registries-conf), containerd
# (Debian's 1.6) configs/containerd. Private paths: /var/tmp/crio-bench-pods,
# /var/lib/crio-bench-pods, /run/crio-bench-pods, /var/lib/containerd-bench-pods,
# /run/containerd-bench-pods. Shared with baseline.sh: bench0 and its IPAM
# directory /var/lib/cni-bench/networks (one subnet, so no clashes); the
# bridge is created with a fixed MAC (see baseline.sh) and deleted at the end
# if this script created it. The registry on 127.0.0.1:5001 is started (and
# its images built) only when it does not answer, and then stopped at the end.
#
# Environment: REPS (3), CELLS ("10x1 50x4"), HOSTNET_REPS (1), EXEC_REPS (5),
# STARTUP_REPS (7), BENCH (../shared/bench beside the repo), CRIO_BIN (bin/crio,
# built when missing; copied, so a rebuild during the run changes nothing; when
# others build in the same tree, build a commit apart: git archive HEAD | tar -x
# -C DIR && make -C DIR bin/crio COMMIT=$(git rev-parse HEAD)),
# KEEP=1 keeps the private stores. Needs root, containerd, jq, curl, go.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
BENCH=${BENCH:-$(cd "$REPO/../shared/bench" 2>/dev/null && pwd || echo /work/shared/bench)}
REPS=${REPS:-3}
CELLS=${CELLS:-10x1 50x4}
HOSTNET_REPS=${HOSTNET_REPS:-1}
EXEC_REPS=${EXEC_REPS:-5}
STARTUP_REPS=${STARTUP_REPS:-7}
REG=127.0.0.1:5001
IMAGE=$REG/bench/busybox:1.35
PULL_IMAGES=$REG/bench/busybox:1.35,$REG/bench/big:1.0
W=/var/tmp/crio-bench-pods
C=/var/lib/crio-bench-pods
CR=/run/crio-bench-pods
D=/var/lib/containerd-bench-pods
DR=/run/containerd-bench-pods
OUT=${1:-$W/out-$(date +%Y%m%d-%H%M%S)}
RUNTIMES=(crio containerd)

log() { echo "bench-pods: $*" >&2; }
die() { log "$*"; exit 1; }
# shellcheck source=hack/lib/bench-common.sh
. "$REPO/hack/lib/bench-common.sh"
[ "$(id -u)" = 0 ] || die "run as root"
for t in containerd runc conmon jq curl go; do command -v $t >/dev/null || die "missing $t"; done

REG_STARTED=
BRIDGE_CREATED=
cleanup() {
	set +e
	stop_daemon crio
	stop_daemon containerd
	cp "$C/daemon.log" "$OUT/crio-daemon.log" 2>/dev/null
	cp "$D/daemon.log" "$OUT/containerd-daemon.log" 2>/dev/null
	unmount_under "$C" "$CR" "$D" "$DR"
	if [ -z "${KEEP:-}" ]; then rm -rf "$C" "$CR" "$D" "$DR"; fi
	rm -rf "$W/podlogs"
	if [ -n "$BRIDGE_CREATED" ]; then ip link del bench0 && log "bench0 deleted"; fi
	if [ -n "$REG_STARTED" ]; then "$BENCH/baseline.sh" registry-stop; fi
}
trap cleanup EXIT

# rt_vars RT: DIR (data, pid file, log), SOCK, CMD (the daemon's command line).
rt_vars() {
	case $1 in
	crio)
		DIR=$C SOCK=$CR/crio.sock
		CMD=(env CONTAINERS_STORAGE_CONF="$C/etc/storage.conf" "$W/crio" --config "$C/etc/crio.conf"
			--config-dir "$C/etc/crio.conf.d" --registries-conf "$C/etc/registries.conf"
			--registries-conf-dir "$C/etc/registries.conf.d")
		;;
	containerd)
		DIR=$D SOCK=$DR/containerd.sock
		CMD=(containerd --config "$D/etc/config.toml")
		;;
	esac
}

daemon_pid() { # RT: prints the PID if it runs
	rt_vars "$1"
	local pid
	[ -f "$DIR/daemon.pid" ] && pid=$(cat "$DIR/daemon.pid") && [ -d "/proc/$pid" ] && echo "$pid"
}

start_daemon() {
	rt_vars "$1"
	(cd "$DIR" && exec setsid "${CMD[@]}" >>"$DIR/daemon.log" 2>&1) &
	echo $! >"$DIR/daemon.pid"
	"$CRIBENCH" version -endpoint "unix://$SOCK" -wait 120s >&2 || die "$1 did not start; see $DIR/daemon.log"
	log "$1 pid $(cat "$DIR/daemon.pid")"
}

stop_daemon() {
	local pid i
	pid=$(daemon_pid "$1") || return 0
	rt_vars "$1"
	kill -TERM "$pid"
	for i in $(seq 1 300); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
	[ -d "/proc/$pid" ] && kill -KILL "$pid"
	log "$1 ($pid) stopped"
	rm -f "$DIR/daemon.pid"
}

# --- tools -------------------------------------------------------------------
mkdir -p "$W" "$OUT"
if [ ! -x "${CRIO_BIN:-$REPO/bin/crio}" ]; then make -C "$REPO" bin/crio >&2; fi
cp "${CRIO_BIN:-$REPO/bin/crio}" "$W/crio"
log "crio under test: $("$W/crio" version | awk '/^GitCommit/ {print $2}')"
(cd "$BENCH/cribench" && go build -o "$W/cribench" .)
CRIBENCH=$W/cribench

# execmem: the memory one ExecSync adds while it runs (see the header).
mkdir -p "$W/execmem"
cat >"$W/execmem/main.go" <<'EOF'
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

type proc struct {
	pid, ppid     int
	comm, cmdline string
	pidns         string
}

type sample struct {
	RSS, PSS, USS int64 // KiB, daemon + helpers
	DaemonRSS     int64
	Procs         map[int]string
}

func scan() map[int]*proc {
	ents, _ := os.ReadDir("/proc")
	m := map[int]*proc{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(st)
		o, c := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if o < 0 || c < o {
			continue
		}
		f := strings.Fields(s[c+1:])
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		cl, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		ns, _ := os.Readlink(filepath.Join("/proc", e.Name(), "ns/pid"))
		m[pid] = &proc{pid: pid, ppid: ppid, comm: s[o+1 : c], cmdline: strings.ReplaceAll(string(cl), "\x00", " "), pidns: ns}
	}
	return m
}

func rollup(pid int) (rss, pss, uss int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "Rss:":
			rss = v
		case "Pss:":
			pss = v
		case "Private_Clean:", "Private_Dirty:":
			uss += v
		}
	}
	return
}

// take sums the daemon, its descendants and the processes whose command
// line matches, leaving out processes in another PID namespace (workloads).
func take(daemon int, match *regexp.Regexp) sample {
	ps := scan()
	d := ps[daemon]
	s := sample{Procs: map[int]string{}}
	if d == nil {
		return s
	}
	in := func(p *proc) bool {
		if p.pid == daemon {
			return true
		}
		if p.pidns != d.pidns {
			return false
		}
		if match != nil && match.MatchString(p.cmdline) {
			return true
		}
		for q := p; q != nil && q.ppid > 1; q = ps[q.ppid] {
			if q.ppid == daemon {
				return true
			}
		}
		return false
	}
	for _, p := range ps {
		if !in(p) {
			continue
		}
		r, pss, u := rollup(p.pid)
		s.RSS += r
		s.PSS += pss
		s.USS += u
		if p.pid == daemon {
			s.DaemonRSS = r
		} else {
			s.Procs[p.pid] = p.comm
		}
	}
	return s
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	w := append([]float64(nil), v...)
	sort.Float64s(w)
	if len(w)%2 == 1 {
		return w[len(w)/2]
	}
	return (w[len(w)/2-1] + w[len(w)/2]) / 2
}

func main() {
	ep := flag.String("endpoint", "", "CRI endpoint")
	image := flag.String("image", "", "pod image")
	daemon := flag.Int("daemon-pid", 0, "daemon PID")
	matchS := flag.String("match", "", "regexp for helper command lines")
	reps := flag.Int("reps", 5, "execs measured")
	hold := flag.Int("hold", 4, "seconds each exec runs (sleep HOLD)")
	logDir := flag.String("log-dir", "/var/tmp/execmem-logs", "pod log parent")
	label := flag.String("label", "", "label")
	flag.Parse()
	fail := func(err error) { fmt.Fprintln(os.Stderr, "execmem:", err); os.Exit(1) }
	var match *regexp.Regexp
	if *matchS != "" {
		match = regexp.MustCompile(*matchS)
	}
	conn, err := grpc.NewClient(*ep, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fail(err)
	}
	rt := runtimeapi.NewRuntimeServiceClient(conn)
	img := runtimeapi.NewImageServiceClient(conn)
	ctx := context.Background()
	if st, err := img.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: *image}}); err != nil || st.Image == nil {
		if _, err := img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: *image}}); err != nil {
			fail(err)
		}
	}
	uid := strconv.FormatInt(time.Now().UnixNano(), 16)
	name := "execmem-" + uid
	ld := filepath.Join(*logDir, name)
	_ = os.MkdirAll(filepath.Join(ld, "c"), 0o755)
	defer os.RemoveAll(ld)
	nsopt := &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_POD, Pid: runtimeapi.NamespaceMode_CONTAINER, Ipc: runtimeapi.NamespaceMode_POD}
	sbc := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: name, Uid: uid, Namespace: "cribench"},
		Hostname:     name,
		LogDirectory: ld,
		Labels:       map[string]string{"cribench": "1"},
		Linux:        &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: nsopt}},
	}
	sb, err := rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: sbc})
	if err != nil {
		fail(err)
	}
	defer func() {
		_, _ = rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: sb.PodSandboxId})
		_, _ = rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.PodSandboxId})
	}()
	cc, err := rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: sb.PodSandboxId, SandboxConfig: sbc,
		Config: &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "c"}, Image: &runtimeapi.ImageSpec{Image: *image},
			Command: []string{"sleep", "3600"}, LogPath: "c/0.log",
			Linux: &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{NamespaceOptions: nsopt}}}})
	if err != nil {
		fail(err)
	}
	defer func() {
		_, _ = rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: cc.ContainerId})
		_, _ = rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: cc.ContainerId})
	}()
	if _, err := rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: cc.ContainerId}); err != nil {
		fail(err)
	}
	_, _ = rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: cc.ContainerId, Cmd: []string{"true"}, Timeout: 10})
	var dRSS, dPSS, dUSS, dDaemon []float64
	extra := map[string]float64{}
	for i := 0; i < *reps; i++ {
		time.Sleep(2 * time.Second)
		before := take(*daemon, match)
		done := make(chan error, 1)
		go func() {
			r, err := rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: cc.ContainerId,
				Cmd: []string{"sleep", strconv.Itoa(*hold)}, Timeout: int64(*hold + 10)})
			if err == nil && r.ExitCode != 0 {
				err = fmt.Errorf("exit code %d: %s", r.ExitCode, r.Stderr)
			}
			done <- err
		}()
		time.Sleep(time.Duration(*hold) * time.Second / 2)
		during := take(*daemon, match)
		if err := <-done; err != nil {
			fail(err)
		}
		dRSS = append(dRSS, float64(during.RSS-before.RSS))
		dPSS = append(dPSS, float64(during.PSS-before.PSS))
		dUSS = append(dUSS, float64(during.USS-before.USS))
		dDaemon = append(dDaemon, float64(during.DaemonRSS-before.DaemonRSS))
		for pid, comm := range during.Procs {
			if _, ok := before.Procs[pid]; !ok {
				extra[comm] += 1 / float64(*reps)
			}
		}
	}
	b, _ := json.MarshalIndent(map[string]any{"label": *label, "reps": *reps, "hold_s": *hold,
		"exec_adds_rss_kib": median(dRSS), "exec_adds_pss_kib": median(dPSS), "exec_adds_uss_kib": median(dUSS),
		"daemon_rss_delta_kib": median(dDaemon), "new_processes_per_exec": extra,
		"raw_rss_kib": dRSS, "raw_uss_kib": dUSS}, "", "  ")
	fmt.Println(string(b))
}
EOF
(cd "$BENCH/cribench" && go build -o "$W/execmem/execmem" "$W/execmem/main.go")

# --- registry, images, bridge --------------------------------------------------
if ! curl -sf "http://$REG/v2/" >/dev/null; then
	log "registry on $REG does not answer: starting it"
	"$BENCH/baseline.sh" registry-start >&2
	REG_STARTED=1
	for i in $(seq 1 50); do curl -sf "http://$REG/v2/" >/dev/null && break; sleep 0.2; done
	curl -sf "http://$REG/v2/" >/dev/null || die "registry did not come up; see /var/lib/bench-registry/registry.log"
fi
for img in bench/busybox:1.35 bench/big:1.0 bench/pause:1.0; do
	if ! curl -sf -o /dev/null "http://$REG/v2/${img%:*}/manifests/${img#*:}" \
		-H 'Accept: application/vnd.oci.image.manifest.v1+json'; then
		log "image $img missing: building the bench images"
		"$BENCH/images/build-images.sh" >&2
		break
	fi
done
ensure_bench0

# --- configs ---------------------------------------------------------------------
write_crio_configs "$C" "$CR"
mkdir -p "$C/etc/crio.conf.d" "$C/etc/registries.conf.d"
cp "$BENCH/configs/crio/registries.conf" "$C/etc/"
mkdir -p "$D/etc/net.d" "$DR"
sed -e "s#/var/lib/containerd-bench#$D/root#g; s#/run/containerd-bench#$DR#g; s#/etc/containerd-bench#$D/etc#g" \
	"$BENCH/configs/containerd/config.toml" >"$D/etc/config.toml"
cp -r "$BENCH/configs/containerd/certs.d" "$D/etc/"
cp "$BENCH/configs/cni/10-bench0.conflist" "$D/etc/net.d/"

# --- leaks -----------------------------------------------------------------------
# snapshot NAME: what pods leave behind, one "key value" a line.
snapshot() {
	{
		echo "mounts_crio $(awk -v a="$C" -v b="$CR" 'index($5, a "/") == 1 || index($5, b "/") == 1' /proc/self/mountinfo | wc -l)"
		echo "mounts_containerd $(awk -v a="$D" -v b="$DR" 'index($5, a "/") == 1 || index($5, b "/") == 1' /proc/self/mountinfo | wc -l)"
		echo "nsfiles_crio $(find "$CR/ns" -mindepth 2 -type f 2>/dev/null | wc -l)"
		echo "netns_cni $(find /var/run/netns -name 'cni-*' 2>/dev/null | wc -l)"
		echo "veths_bench0 $(ip -o link show master bench0 2>/dev/null | wc -l)"
		echo "ipam_leases $(find /var/lib/cni-bench/networks -type f -name '10.97.*' | wc -l)"
		echo "conmon $(pgrep -f -- "conmon .*$CR/" | wc -l)"
		echo "shims $(pgrep -f -- "containerd-shim.*-address $DR/" | wc -l)"
		echo "runc_state_crio $(find "$CR/runc" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)"
		echo "runc_state_containerd $(find "$DR/runc" -mindepth 2 -maxdepth 2 2>/dev/null | wc -l)"
		# Memory cgroups that appeared since "before" and hold no process
		# (other users of the machine may add some).
		find /sys/fs/cgroup/memory -mindepth 1 -type d 2>/dev/null | sort >"$OUT/cgroups-$1.txt"
		echo "new_empty_memory_cgroups $(comm -13 "$OUT/cgroups-before.txt" "$OUT/cgroups-$1.txt" |
			while read -r g; do [ -z "$(find "$g" -name cgroup.procs -exec cat {} + 2>/dev/null)" ] && echo "$g"; done |
			tee "$OUT/cgroups-new-empty-$1.txt" | wc -l)"
	} >"$OUT/leaks-$1.txt"
}

# --- measurements ------------------------------------------------------------------
for rt in "${RUNTIMES[@]}"; do start_daemon "$rt"; done
snapshot before
mkdir -p "$W/podlogs"

run_cell() { # RT N C REP [hostnet]
	local rt=$1 n=$2 c=$3 rep=$4 flags=() tag=""
	if [ -n "${5:-}" ]; then flags=(-hostnet); tag=-hostnet; fi
	rt_vars "$rt"
	log "$rt$tag N=$n C=$c rep $rep (load $(cut -d' ' -f1-3 /proc/loadavg))"
	"$CRIBENCH" -endpoint "unix://$SOCK" -image "$IMAGE" -pull-images "$PULL_IMAGES" -pull-reps 1 \
		-pods "$n" -concurrency "$c" -daemon-pid "$(daemon_pid "$rt")" -label "$rt$tag" "${flags[@]}" \
		-log-dir "$W/podlogs" -json "$OUT/$rt$tag-n$n-c$c-r$rep.json" 2>"$OUT/$rt$tag-n$n-c$c-r$rep.log" ||
		log "cribench $rt$tag N=$n C=$c rep $rep failed; see $OUT/$rt$tag-n$n-c$c-r$rep.log"
	grep -E 'started|PodReady|ExecSync|memory:|errors' "$OUT/$rt$tag-n$n-c$c-r$rep.log" | sed 's/^/    /' >&2
	pid=$(daemon_pid "$rt") || die "$rt died; see $DIR/daemon.log"
}

# The order of the runtimes rotates every run, so neither always goes first.
k=0
for rep in $(seq 1 "$REPS"); do
	for cell in $CELLS; do
		for j in 0 1; do run_cell "${RUNTIMES[$(((k + j) % 2))]}" "${cell%x*}" "${cell#*x}" "$rep"; done
		k=$((k + 1))
	done
done
for rep in $(seq 1 "$HOSTNET_REPS"); do
	for cell in $CELLS; do
		for j in 0 1; do run_cell "${RUNTIMES[$(((k + j) % 2))]}" "${cell%x*}" "${cell#*x}" "$rep" hostnet; done
		k=$((k + 1))
	done
done
for rt in "${RUNTIMES[@]}"; do
	rt_vars "$rt"
	log "$rt: memory of one exec"
	"$W/execmem/execmem" -endpoint "unix://$SOCK" -image "$IMAGE" -daemon-pid "$(daemon_pid "$rt")" \
		-match "$(dirname "$SOCK")/" -reps "$EXEC_REPS" -log-dir "$W/podlogs" -label "$rt" >"$OUT/$rt-execmem.out"
done
sleep 2
snapshot after
for rt in "${RUNTIMES[@]}"; do stop_daemon "$rt"; done
snapshot stopped
for rt in "${RUNTIMES[@]}"; do unmount_under "$(rt_vars "$rt"; dirname "$SOCK")"; done

mkdir -p "$OUT/startup"
for rep in $(seq 1 "$STARTUP_REPS"); do
	for j in 0 1; do
		rt=${RUNTIMES[$(((rep + j) % 2))]}
		rt_vars "$rt"
		"$CRIBENCH" startup -endpoint "unix://$SOCK" -reps 1 -settle 5s -label "$rt" -log "$DIR/daemon.log" \
			-json "$OUT/startup/$rt-startup-r$rep.json" -- "${CMD[@]}" 2>>"$OUT/startup/cribench.log"
	done
done

# --- report ------------------------------------------------------------------------
"$CRIBENCH" report -base containerd "$OUT"/*.json "$OUT"/startup/*.json >"$OUT/report.md"

median() { sort -g | awk '{a[NR]=$1} END {if (NR == 0) print ""; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
# m LABEL N C JQ: median over the repetitions of a cell
m() { for f in "$OUT/$1-n$2-c$3"-r*.json; do [ -f "$f" ] && jq -r "$4 // empty" "$f"; done | median; }
ms() { for f in "$OUT/startup/$1"-startup-r*.json; do jq -r "$2 // empty" "$f"; done | median; }
me() { jq -c "$2" "$OUT/$1-execmem.out"; }
fmtv() { awk -v v="$1" -v d="${2:-0}" 'BEGIN {if (v == "") print "–"; else printf "%.*f\n", d, v}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a == "" || b == "" || b <= 0 || a <= 0) print "–"; else printf "%.2f\n", a/b}'; }
row() { # TITLE CRIO CONTAINERD DIGITS REF
	echo "| $1 | $(fmtv "$2" "$4") | $(fmtv "$3" "$4") | $(ratio "$2" "$3") | ${5:-} |"
}
op() { echo ".ops[\"$1\"].$2"; }
{
	echo "crio $("$W/crio" version | awk '/^GitCommit/ {print substr($2, 1, 12) (index($2, "-dirty") ? "-dirty" : "")}'), containerd" \
		"$(containerd --version | cut -d' ' -f3); medians of $REPS runs (hostnet: $HOSTNET_REPS); CRI-O ÷ containerd from BASELINE.md"
	echo
	echo "| metric | crio | containerd | crio ÷ containerd | CRI-O ÷ containerd (BASELINE) |"
	echo "|---|---:|---:|---:|---:|"
	for cell in $CELLS; do
		n=${cell%x*} c=${cell#*x}
		ref_ready= ref_p95=
		[ "$cell" = 10x1 ] && ref_ready=0.89
		[ "$cell" = 50x4 ] && ref_ready=0.82 ref_p95=0.85
		row "pod ready p50 (ms), N=$n C=$c" "$(m crio $n $c "$(op PodReady p50_ms)")" "$(m containerd $n $c "$(op PodReady p50_ms)")" 0 "$ref_ready"
		row "pod ready p95 (ms), N=$n C=$c" "$(m crio $n $c "$(op PodReady p95_ms)")" "$(m containerd $n $c "$(op PodReady p95_ms)")" 0 "$ref_p95"
		row "RunPodSandbox p50 (ms), N=$n C=$c" "$(m crio $n $c "$(op RunPodSandbox p50_ms)")" "$(m containerd $n $c "$(op RunPodSandbox p50_ms)")" 0
		row "RunPodSandbox p95 (ms), N=$n C=$c" "$(m crio $n $c "$(op RunPodSandbox p95_ms)")" "$(m containerd $n $c "$(op RunPodSandbox p95_ms)")" 0
		row "CreateContainer p50 (ms), N=$n C=$c" "$(m crio $n $c "$(op CreateContainer p50_ms)")" "$(m containerd $n $c "$(op CreateContainer p50_ms)")" 0
		row "StartContainer p50 (ms), N=$n C=$c" "$(m crio $n $c "$(op StartContainer p50_ms)")" "$(m containerd $n $c "$(op StartContainer p50_ms)")" 0
		row "start $n pods (s), C=$c" "$(m crio $n $c .throughput.start_seconds)" "$(m containerd $n $c .throughput.start_seconds)" 1
		row "throughput (pods/s), N=$n C=$c" "$(m crio $n $c .throughput.start_pods_per_sec)" "$(m containerd $n $c .throughput.start_pods_per_sec)" 2 \
			"$([ "$cell" = 50x4 ] && echo 1.18)"
		row "teardown $n pods (s), C=$c" "$(m crio $n $c .throughput.teardown_seconds)" "$(m containerd $n $c .throughput.teardown_seconds)" 1 \
			"$([ "$cell" = 50x4 ] && echo 0.62)"
		row "pod teardown p50 (ms), N=$n C=$c" "$(m crio $n $c "$(op PodTeardown p50_ms)")" "$(m containerd $n $c "$(op PodTeardown p50_ms)")" 0
		row "ExecSync true p50 (ms), N=$n C=$c" "$(m crio $n $c "$(op ExecSync p50_ms)")" "$(m containerd $n $c "$(op ExecSync p50_ms)")" 1 "1.0–2.0"
		row "ExecSync true p95 (ms), N=$n C=$c" "$(m crio $n $c "$(op ExecSync p95_ms)")" "$(m containerd $n $c "$(op ExecSync p95_ms)")" 1
		row "ListContainers p50 (ms), N=$n C=$c" "$(m crio $n $c "$(op ListContainers p50_ms)")" "$(m containerd $n $c "$(op ListContainers p50_ms)")" 2 \
			"$([ "$n" = 50 ] && echo 1.2)"
		row "daemon CPU per pod, own (ms), N=$n C=$c" "$(m crio $n $c .daemon_cpu.per_pod_self_ms)" "$(m containerd $n $c .daemon_cpu.per_pod_self_ms)" 0
		row "daemon CPU per pod, reaped children (ms), N=$n C=$c" "$(m crio $n $c .daemon_cpu.per_pod_children_ms)" "$(m containerd $n $c .daemon_cpu.per_pod_children_ms)" 0
		row "helper per pod RSS (KiB), N=$n" "$(m crio $n $c .memory.helper_per_pod_rss_kib)" "$(m containerd $n $c .memory.helper_per_pod_rss_kib)" 0 "0.18"
		row "helper per pod USS (KiB), N=$n" "$(m crio $n $c .memory.helper_per_pod_uss_kib)" "$(m containerd $n $c .memory.helper_per_pod_uss_kib)" 0 "0.12"
		row "daemon + helpers per pod RSS (KiB), N=$n" "$(m crio $n $c .memory.per_pod_rss_kib)" "$(m containerd $n $c .memory.per_pod_rss_kib)" 0
		row "daemon + helpers per pod USS (KiB), N=$n" "$(m crio $n $c .memory.per_pod_uss_kib)" "$(m containerd $n $c .memory.per_pod_uss_kib)" 0
		row "daemon + helpers RSS with $n pods (MiB)" "$(m crio $n $c '.memory.loaded.total_rss_kib / 1024')" "$(m containerd $n $c '.memory.loaded.total_rss_kib / 1024')" 0 \
			"$([ "$n" = 50 ] && echo 0.29)"
		row "daemon + helpers USS with $n pods (MiB)" "$(m crio $n $c '.memory.loaded.total_uss_kib / 1024')" "$(m containerd $n $c '.memory.loaded.total_uss_kib / 1024')" 0 \
			"$([ "$n" = 50 ] && echo 0.58)"
		row "daemon RSS idle, N=$n run (MiB)" "$(m crio $n $c '.memory.idle.daemon_rss_kib / 1024')" "$(m containerd $n $c '.memory.idle.daemon_rss_kib / 1024')" 1
		row "daemon RSS with $n pods (MiB)" "$(m crio $n $c '.memory.loaded.daemon_rss_kib / 1024')" "$(m containerd $n $c '.memory.loaded.daemon_rss_kib / 1024')" 1 "1.8–1.9"
		row "failed pods (median), N=$n C=$c" "$(m crio $n $c .throughput.failed)" "$(m containerd $n $c .throughput.failed)" 0
	done
	for cell in $CELLS; do
		n=${cell%x*} c=${cell#*x}
		row "hostnet RunPodSandbox p50 (ms), N=$n C=$c" "$(m crio-hostnet $n $c "$(op RunPodSandbox p50_ms)")" "$(m containerd-hostnet $n $c "$(op RunPodSandbox p50_ms)")" 0 "≈0.13"
		row "hostnet RunPodSandbox p95 (ms), N=$n C=$c" "$(m crio-hostnet $n $c "$(op RunPodSandbox p95_ms)")" "$(m containerd-hostnet $n $c "$(op RunPodSandbox p95_ms)")" 0
		row "hostnet pod ready p50 (ms), N=$n C=$c" "$(m crio-hostnet $n $c "$(op PodReady p50_ms)")" "$(m containerd-hostnet $n $c "$(op PodReady p50_ms)")" 0
	done
	row "cold pull busybox p50 (ms), all runs" "$(for f in "$OUT"/crio-n*.json; do jq -r '.ops["PullImage:'"$REG"'/bench/busybox:1.35"].p50_ms' "$f"; done | median)" \
		"$(for f in "$OUT"/containerd-n*.json; do jq -r '.ops["PullImage:'"$REG"'/bench/busybox:1.35"].p50_ms' "$f"; done | median)" 0 "1.0–1.85"
	row "cold pull big (6 layers) p50 (ms), all runs" "$(for f in "$OUT"/crio-n*.json; do jq -r '.ops["PullImage:'"$REG"'/bench/big:1.0"].p50_ms' "$f"; done | median)" \
		"$(for f in "$OUT"/containerd-n*.json; do jq -r '.ops["PullImage:'"$REG"'/bench/big:1.0"].p50_ms' "$f"; done | median)" 0 "1.4–2.2"
	row "one ExecSync (sleep) adds, RSS (KiB)" "$(me crio .exec_adds_rss_kib)" "$(me containerd .exec_adds_rss_kib)" 0
	row "one ExecSync (sleep) adds, USS (KiB)" "$(me crio .exec_adds_uss_kib)" "$(me containerd .exec_adds_uss_kib)" 0
	row "cold start exec → Version p50 (ms), $STARTUP_REPS runs" "$(ms crio '.ready_ms[0]')" "$(ms containerd '.ready_ms[0]')" 0 2.6
	row "daemon idle RSS after start (MiB)" "$(ms crio '.idle_median.daemon_rss_kib / 1024')" "$(ms containerd '.idle_median.daemon_rss_kib / 1024')" 1 1.9
	row "daemon idle USS after start (MiB)" "$(ms crio '.idle_median.daemon_uss_kib / 1024')" "$(ms containerd '.idle_median.daemon_uss_kib / 1024')" 1
	echo
	echo "New processes during one exec: crio $(me crio .new_processes_per_exec), containerd $(me containerd .new_processes_per_exec)"
	echo
	echo "Leftovers (before the runs / after, daemons up / after the daemons stopped):"
	echo
	paste "$OUT/leaks-before.txt" "$OUT/leaks-after.txt" "$OUT/leaks-stopped.txt" | awk '{printf "- %s: %s / %s / %s\n", $1, $2, $4, $6}'
	echo
	echo "Errors reported by cribench: $(cat "$OUT"/*.json | jq -s '[.[] | (.errors // [])[]] | length')"
} | tee "$OUT/summary.md"
log "results in $OUT"
