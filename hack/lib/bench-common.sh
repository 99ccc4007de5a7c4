# hack/lib/bench-common.sh: pieces every benchmark script shares. Sourced;
# the caller defines log().

# unmount_under DIR...: every mount at or below each DIR, deepest first.
unmount_under() {
	local d m
	for d in "$@"; do
		awk -v d="$d" '$5 == d || index($5, d "/") == 1 {print $5}' /proc/self/mountinfo |
			sort -r | while read -r m; do umount -l "$m" && log "unmounted $m"; done
	done
}

# ensure_bench0: the bench CNI network's bridge (10.97.0.0/16), made when
# missing, with BRIDGE_CREATED=1 so that the caller deletes it at the end;
# a fixed MAC, as baseline.sh does (see its ensure_bridge).
ensure_bench0() {
	if ! ip link show bench0 >/dev/null 2>&1; then
		ip link add bench0 type bridge
		ip link set bench0 address 02:42:0a:61:00:01
		ip link set bench0 up
		BRIDGE_CREATED=1
	fi
	mkdir -p /var/lib/cni-bench/networks
}

# write_crio_configs C CR: the bench's CRI-O-format crio.conf and
# storage.conf with their paths moved under C (state, logs, configs) and CR
# (run), its policy.json and the bench0 conflist, in C/etc and C/etc/net.d.
write_crio_configs() {
	local c=$1 cr=$2 f
	mkdir -p "$c/etc/net.d" "$c/log" "$cr"
	for f in crio.conf storage.conf; do
		sed -e "s#/var/lib/crio-bench#$c#g; s#/run/crio-bench#$cr#g; s#/var/log/crio-bench#$c/log#g; s#/etc/crio-bench#$c/etc#g" \
			"$BENCH/configs/crio/$f" >"$c/etc/$f"
	done
	cp "$BENCH/configs/crio/policy.json" "$c/etc/"
	cp "$BENCH/configs/cni/10-bench0.conflist" "$c/etc/net.d/"
}
