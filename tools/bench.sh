#!/usr/bin/env bash
# make bench: charon's own MOBIKE against mobike-rs, same lab, same library.
#
# Part 1, the road warrior is the flavour under test: `builtin` (library
# preloaded, mode = builtin: charon's own MOBIKE) against `rust` (mode =
# rust); the gateway is a stock charon (no library) in both columns. Each
# scenario runs BENCH_RUNS times per flavour, the flavours alternating, and
# the outage is the longest gap between answered echoes (one every 10 ms
# through the tunnel) around the event:
#   break    rw-a (rw's preferred, direct interface) goes down, rw-b works
#   nat      the same, rw-b behind rt's MASQUERADE
#   return   rw-a's address comes back on its (already up) link: builtin
#            with prefer_best_path = yes, rust with preference = rw-a=100,
#            rw-b=50 and switch_back_delay at its default (500 ms, part of
#            the rust figure); also the time from the address add to the
#            first ESP packet the gateway sends to rw-a (tcpdump on rt's
#            bridge port)
#   silent   rw-a stays up but its bridge port in rt stops forwarding; rw-b
#            works (rw has a source route for it); dpd_delay = 5s on rw
#   silentnosrc  the same on a host without source routing (issue 24): rw's
#            first interface rw-ar is routed through rt and keeps the more
#            specific route to the gateway (tests/lab/lib.sh
#            lab_rwa_routed nosrc), no `ip rule` per source address,
#            rp_filter loose; rt black-holes rw-ar's path while it stays
#            up; dpd_delay = 5s on rw
#   natmap   rw behind the NAT and idle, only gw's LAN pings rw's virtual
#            IP; rt forgets its mappings (conntrack -F) and maps to new
#            ports (SNAT 40000-40100); two rows: dpd_delay = 5s on rw, and
#            no DPD (dpd_delay = 0s: only charon's NAT keep-alives, every
#            20 s by default)
# Part 2, the gateway is the flavour under test, the road warrior stock: a
# builtin and a rust gateway side by side (gw and gw2; which runs which
# alternates by run), BENCH_SAS childless IKE_SAs each from one
# road-warrior host (one connection each, initiated in parallel through
# vici), all roaming when rw-a goes down; per gateway the time until it
# has logged all of them on the new address, its CPU time in that interval
# and its VmRSS per IKE_SA. Run one after the other, single runs of either
# flavour spread by a third (the road warrior's pace and the machine's
# noise); side by side, both see the same.
#
# Prints a Markdown table and writes it to target/bench/results.md. Exit 0
# unless the harness failed (a scenario could not be set up or checked); a
# slow or "never" result is a result, not a failure.
#
# Environment: BENCH_RUNS (5), BENCH_SAS (1000), BENCH_MANY_RUNS (30),
# BENCH_SILENT_MAX (30 s), BENCH_NAT_MAX (30 s), BENCH_BREAK_MAX (10 s),
# BENCH_SETUP_MAX (300 s), BENCH_QUICK=1 (1 run each, 50 SAs),
# BENCH_ONLY="break nat return silent silentnosrc natmap many" (a subset);
# BENCH_NOSRC_RW_CONF: strongswan.conf lines for the rust road warrior of
# silentnosrc (the option that lets mobike-rs install routes, if needed).
# BENCH_PERF=DIR (many only): perf profiles of both gateways during the roam
# (DIR/perf.FLAVOUR.RUN.data; BENCH_PERF_ARGS, default "-F 2000 -g").
# BENCH_CALLGRIND=DIR (many only): both gateways under valgrind's callgrind,
# collecting during the roam only (DIR/callgrind.FLAVOUR.RUN.out, with cache
# simulation), and per roam their instructions, cache misses and the code
# lines a roam runs (tools/callgrind-summary.py). Deterministic where the
# CPU times are not; the times and CPU of such a run are not the benchmark's.
# Use a few IKE_SAs: BENCH_SAS=100 BENCH_MANY_RUNS=2.
# BENCH_XFRM=1 (default) | 0 | only: the outage rows again with the
# kernel's IPsec in the VM of tests/lab/vm.sh (tools/bench-xfrm.sh: also
# BENCH_XFRM_RUNS, BENCH_XFRM_ONLY, BENCH_XFRM_SCALE). BENCH_OUT_DIR
# (target/bench): where results.md and the raw files go.
set -u
cd "$(dirname "$0")/.."
. tests/lab/lib.sh
. tools/bench-lib.sh

BENCH_START=$(now)
if [ -n "${BENCH_QUICK:-}" ] && [ "${BENCH_QUICK}" != 0 ]; then
	BENCH_RUNS=${BENCH_RUNS:-1} BENCH_SAS=${BENCH_SAS:-50} BENCH_MANY_RUNS=${BENCH_MANY_RUNS:-1}
fi
RUNS=${BENCH_RUNS:-5}
SAS=${BENCH_SAS:-1000}
MANY_RUNS=${BENCH_MANY_RUNS:-30}
SILENT_MAX=${BENCH_SILENT_MAX:-30}
NAT_MAX=${BENCH_NAT_MAX:-30}
BREAK_MAX=${BENCH_BREAK_MAX:-10}
RETURN_MAX=${BENCH_RETURN_MAX:-10}
SETUP_MAX=${BENCH_SETUP_MAX:-300}
ROAM_MAX=${BENCH_ROAM_MAX:-120}
ONLY=${BENCH_ONLY:-break nat return silent silentnosrc natmap many}
SETTLE=0.5 # seconds of traffic watched after it came back
RUST_PREFERENCE="rw-a=100, rw-b=50" # the rust road warrior's, for the return
SWITCH_BACK_DELAY_MS=500 # its default switch_back_delay, for the table
WARM_TRIES=100 # 50 ms polls for the first 20 answers before an event
LINK_SETTLE=0.5 # seconds for charon's reaction to a link coming up (return)
OUT_DIR=${BENCH_OUT_DIR:-target/bench}
RESULTS=$OUT_DIR/results.md
RAW=$OUT_DIR/raw.txt # one line per measurement: KEY FLAVOUR VALUE

die() {
	echo "bench: $*" >&2
	exit 1
}
[ "$(id -u)" = 0 ] || die "needs root (network namespaces); run: sudo make bench"
[ -f "$LAB_LIB" ] || die "$LAB_LIB missing; run make build"
for t in ip bridge iptables conntrack tcpdump ping swanctl python3 unshare; do
	command -v "$t" >/dev/null 2>&1 || die "$t missing (make deps installs it)"
done
[ -x /usr/lib/ipsec/charon ] || die "/usr/lib/ipsec/charon missing (make deps installs it)"
if [ -n "${BENCH_CALLGRIND:-}" ]; then
	for t in valgrind callgrind_control; do
		command -v "$t" >/dev/null 2>&1 || die "BENCH_CALLGRIND: $t missing (make deps installs valgrind)"
	done
fi
for v in RUNS SAS MANY_RUNS SILENT_MAX NAT_MAX BREAK_MAX RETURN_MAX SETUP_MAX ROAM_MAX; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "BENCH_$v must be a positive integer, not '${!v}'"
done

mkdir -p "$OUT_DIR"
: >"$RAW"
HARNESS_FAILED=0
TCPDUMP_PID=
cleanup() {
	pinger_stop
	[ -n "$TCPDUMP_PID" ] && kill "$TCPDUMP_PID" 2>/dev/null
	lab_down
}
trap cleanup EXIT
trap 'exit 1' INT TERM

record() { echo "$1 $2 $3" >>"$RAW"; }

. tools/bench-xfrm.sh

# harness_fail KEY FLAVOUR WHY: the scenario could not be set up or checked.
harness_fail() {
	lab_log "HARNESS FAILURE ($1, $2): $3"
	show_logs
	record "$1" "$2" fail
	HARNESS_FAILED=1
	return 1
}

# Flavour check: the road warrior (or gateway) really ran what we measure.
flavour_ok() {
	local node=$1 flavour=$2
	case "$flavour" in
		rust) wait_for in_log "$node" "'mobike-rs: Rust core runs the MOBIKE task'" ;;
		builtin) in_log "$node" "mobike-rs: plugin loaded, MOBIKE tasks run in mode 'builtin'" &&
			! in_log "$node" 'mobike-rs: Rust core runs' ;;
		stock) ! in_log "$node" 'mobike-rs:' ;;
	esac
}

# rw_setup KEY FLAVOUR NAT RW_CONN_LINES [rw strongswan.conf lines...]: a
# lab with a stock gateway and the road warrior in FLAVOUR, tunnel up,
# traffic through it. PRE_CHARON, if set, is evaluated before the charons
# start, PRE_TUNNEL before the tunnel.
rw_setup() {
	local key=$1 flavour=$2 nat=$3 conn=$4
	shift 4
	lab_up "$key" "$nat" || { harness_fail "$key" "$flavour" "lab_up"; return 1; }
	if [ -n "${PRE_CHARON:-}" ]; then
		eval "$PRE_CHARON" || { harness_fail "$key" "$flavour" "lab: $PRE_CHARON"; return 1; }
	fi
	charon_start gw stock || { harness_fail "$key" "$flavour" "gw charon start"; return 1; }
	charon_start rw "$flavour" "$@" || { harness_fail "$key" "$flavour" "rw charon start"; return 1; }
	if [ -n "${PRE_TUNNEL:-}" ]; then eval "$PRE_TUNNEL"; fi
	tunnel_up "$conn" || { harness_fail "$key" "$flavour" "tunnel setup: $(tail -n 2 "$LAB_DIR/initiate.out")"; return 1; }
	ping_ok 10 || { harness_fail "$key" "$flavour" "no traffic through the tunnel"; return 1; }
	flavour_ok rw "$flavour" || { harness_fail "$key" "$flavour" "rw did not run MOBIKE as '$flavour'"; return 1; }
	flavour_ok gw stock || { harness_fail "$key" "$flavour" "gw is not a stock charon"; return 1; }
}

# measure KEY FLAVOUR NS DEST CAP EVENT [SOURCE]: probe DEST from NS,
# wait for traffic, evaluate EVENT, wait until an answer arrives more than
# 0.1 s after it ended (at most CAP seconds), watch SETTLE seconds more,
# record the outage (ms) or "never". Sets M_T0 (the event's time) and
# M_PING. After the event's end, not its start: in the VM (xfrm) iptables
# and conntrack take longer than 0.1 s, and answers from before they took
# effect would end the wait.
measure() {
	local key=$1 flavour=$2 ns=$3 dest=$4 cap=$5 event=$6 i t_end after
	shift 6
	M_PING="$LAB_DIR/ping.$key.out"
	pinger_start "$ns" "$dest" "$M_PING" $((cap + 10)) "$@"
	for i in $(seq 1 "$WARM_TRIES"); do
		[ "$(answers "$M_PING")" -ge 20 ] && break
		sleep 0.05
	done
	[ "$(answers "$M_PING")" -ge 20 ] || { pinger_stop; harness_fail "$key" "$flavour" "no traffic before the event"; return 1; }
	M_T0=$(now)
	eval "$event" || { pinger_stop; harness_fail "$key" "$flavour" "event failed: $event"; return 1; }
	after=$(awk -v t="$(now)" 'BEGIN { printf "%.6f", t + 0.1 }')
	# Nothing to look for before 0.1 s, and the polling's processes would
	# compete for the lab's CPUs with the move being measured.
	sleep 0.1
	for i in $(seq 1 $((cap * 20))); do
		answered_after "$M_PING" "$after" && break
		[ "$(elapsed_ms "$M_T0")" -ge $((cap * 1000)) ] && break
		sleep 0.05
	done
	if answered_after "$M_PING" "$after"; then
		sleep "$SETTLE"
		t_end=$(now)
		pinger_stop
		record "$key" "$flavour" "$(outage "$M_PING" "$M_T0" "$t_end")"
	else
		pinger_stop
		record "$key" "$flavour" never
	fi
}

# 1 and 3: break-before-make, then the return to rw-a, in one lab.
run_break_return() {
	local flavour=$1 t_up i esp conf="prefer_best_path = yes"
	# rust returns through its own preference, after switch_back_delay
	[ "$flavour" = rust ] && conf="plugins { mobike-rs { preference = \"$RUST_PREFERENCE\" } }"
	rw_setup break "$flavour" "" "" "$conf" || return 1
	[ "$(sa_field rw local)" = "198.18.1.2[4500]" ] || { harness_fail break "$flavour" "rw not on rw-a: $(sa_field rw local)"; return 1; }
	if want break; then
		measure break "$flavour" "$LAB_NS-rw" "$LAB_LAN" "$BREAK_MAX" 'ip -n "$LAB_NS-rw" link set rw-a down' || return 1
	else
		ip -n "$LAB_NS-rw" link set rw-a down
	fi
	want return || return 0
	wait_for '[ "$(sa_field rw local)" = "198.18.2.2[4500]" ]' ||
		{ harness_fail return "$flavour" "rw did not move to rw-b: $(sa_field rw local)"; return 1; }
	ping_ok 10 || { harness_fail return "$flavour" "no traffic on rw-b"; return 1; }
	# The return is measured from rw-a's address coming back on a link that
	# is already up: right after `ip link set rw-a up` rt's bridge may drop
	# frames until the kernel's link watch enables the port (seen here: the
	# first ARP request lost, retried after 1 s, in either flavour), which
	# is the lab's delay, not MOBIKE's.
	ip -n "$LAB_NS-rw" addr del 198.18.1.2/24 dev rw-a
	ip -n "$LAB_NS-rw" link set rw-a up
	wait_for 'bridge -n "$LAB_NS-rt" link show dev p-rwa | grep -q "state forwarding"' &&
		wait_for 'ip -n "$LAB_NS-rw" -o link show rw-a | grep -q "state UP"' ||
		{ harness_fail return "$flavour" "rw-a's link did not come up"; return 1; }
	sleep "$LINK_SETTLE" # charon's own reaction to the link event (an address-less link) passes
	[ "$(sa_field rw local)" = "198.18.2.2[4500]" ] || { harness_fail return "$flavour" "rw left rw-b without an address on rw-a: $(sa_field rw local)"; return 1; }
	# The first ESP packet the gateway sends to rw-a (not IKE: the UDP
	# payload of ESP-in-UDP starts with a non-zero SPI).
	ip netns exec "$LAB_NS-rt" tcpdump -n -tt -l --immediate-mode -i p-rwa -c 1 \
		'dst host 198.18.1.2 and ((udp port 4500 and udp[8:4] != 0) or ip proto 50)' \
		>"$LAB_DIR/esp.out" 2>"$LAB_DIR/esp.err" &
	TCPDUMP_PID=$!
	for i in $(seq 1 "$WARM_TRIES"); do
		grep -q 'listening on' "$LAB_DIR/esp.err" && break
		sleep 0.05
	done
	grep -q 'listening on' "$LAB_DIR/esp.err" || { harness_fail return "$flavour" "tcpdump did not start: $(cat "$LAB_DIR/esp.err")"; return 1; }
	measure_return "$flavour" || return 1
	esp=$(awk 'NR == 1 { print $1 }' "$LAB_DIR/esp.out")
	if [ -n "$esp" ]; then
		record return_esp "$flavour" "$(elapsed_ms "$M_T0" "$esp")"
	else
		record return_esp "$flavour" never
	fi
	kill "$TCPDUMP_PID" 2>/dev/null
	wait "$TCPDUMP_PID" 2>/dev/null
	TCPDUMP_PID=
}

# The return: rw-a's address is added back. Traffic never has to stop (rw-b
# works), so the window ends with the first ESP packet to rw-a (or
# RETURN_MAX), plus SETTLE.
measure_return() {
	local flavour=$1 i t_end
	M_PING="$LAB_DIR/ping.return.out"
	pinger_start "$LAB_NS-rw" "$LAB_LAN" "$M_PING" $((RETURN_MAX + 10))
	for i in $(seq 1 "$WARM_TRIES"); do
		[ "$(answers "$M_PING")" -ge 20 ] && break
		sleep 0.05
	done
	[ "$(answers "$M_PING")" -ge 20 ] || { pinger_stop; harness_fail return "$flavour" "no traffic before the event"; return 1; }
	M_T0=$(now)
	ip -n "$LAB_NS-rw" addr add 198.18.1.2/24 dev rw-a
	for i in $(seq 1 $((RETURN_MAX * 20))); do
		[ -s "$LAB_DIR/esp.out" ] && break
		[ "$(elapsed_ms "$M_T0")" -ge $((RETURN_MAX * 1000)) ] && break
		sleep 0.05
	done
	sleep "$SETTLE"
	t_end=$(now)
	pinger_stop
	record return "$flavour" "$(outage "$M_PING" "$M_T0" "$t_end")"
}

# 2: break-before-make into rt's MASQUERADE.
run_nat() {
	local flavour=$1
	rw_setup nat "$flavour" nat "" || return 1
	measure nat "$flavour" "$LAB_NS-rw" "$LAB_LAN" "$BREAK_MAX" 'ip -n "$LAB_NS-rw" link set rw-a down'
}

# 4: rw-a's path goes silent (rt's bridge port for it stops forwarding in
# both directions; rw-a keeps its carrier and address). rw-b works: rw
# routes packets from its rw-b address through rw-b (a source rule, as a
# multihomed host has), otherwise 198.18.1.1 is only reachable on rw-a.
run_silent() {
	local flavour=$1
	PRE_TUNNEL='ip -n "$LAB_NS-rw" rule add from 198.18.2.2 table 102 pref 100 &&
		ip -n "$LAB_NS-rw" route add default via 198.18.2.1 dev rw-b table 102'
	rw_setup silent "$flavour" "" "dpd_delay = 5s" || { PRE_TUNNEL=; return 1; }
	PRE_TUNNEL=
	[ "$(sa_field rw local)" = "198.18.1.2[4500]" ] || { harness_fail silent "$flavour" "rw not on rw-a: $(sa_field rw local)"; return 1; }
	measure silent "$flavour" "$LAB_NS-rw" "$LAB_LAN" "$SILENT_MAX" 'bridge -n "$LAB_NS-rt" link set dev p-rwa state 0'
}

# 4b: the silent failure on a host without source routing (issue 24): rw's
# first interface, rw-ar, on its own segment routed by rt, keeps the more
# specific route to the gateway; nothing routes by source address, so the
# kernel sends anything to the gateway out of rw-ar unless told the
# interface. rt black-holes rw-ar's path; rw-ar stays up.
run_silentnosrc() {
	local flavour=$1 conf=""
	[ "$flavour" = rust ] && conf=${BENCH_NOSRC_RW_CONF:-}
	PRE_CHARON='lab_rwa_routed nosrc && lab_rw_laptop'
	rw_setup silentnosrc "$flavour" "" "" "dpd_delay = 5s" ${conf:+"$conf"} || { PRE_CHARON=; return 1; }
	PRE_CHARON=
	[ -z "$(lab_source_rules rw)" ] || { harness_fail silentnosrc "$flavour" "rw has source rules: $(lab_source_rules rw)"; return 1; }
	[ "$(sa_field rw local)" = "198.18.3.2[4500]" ] || { harness_fail silentnosrc "$flavour" "rw not on rw-ar: $(sa_field rw local)"; return 1; }
	measure silentnosrc "$flavour" "$LAB_NS-rw" "$LAB_LAN" "$SILENT_MAX" 'lab_blackhole_rwa'
}

# 5: rw behind the NAT from the start, idle: only gw's LAN pings rw's
# virtual IP. rt then maps to new ports and forgets the old mappings.
# KEY natmap: dpd_delay = 5s on rw; natmap_nodpd: no DPD (dpd_delay = 0s),
# only charon's NAT keep-alives (keep_alive, 20 s by default).
run_natmap() {
	local flavour=$1 key=$2 dpd=$3 vip
	PRE_TUNNEL='ip -n "$LAB_NS-rw" link set rw-a down'
	rw_setup "$key" "$flavour" nat "dpd_delay = $dpd" || { PRE_TUNNEL=; return 1; }
	PRE_TUNNEL=
	[ "$(sa_field gw remote)" = "198.18.1.254[4500]" ] || { harness_fail "$key" "$flavour" "gw does not see rw behind the NAT: $(sa_field gw remote)"; return 1; }
	vip=$(ip -n "$LAB_NS-rw" -o -4 addr show | grep -o '198\.18\.200\.[0-9]*' | head -n 1)
	[ -n "$vip" ] || { harness_fail "$key" "$flavour" "no virtual IP on rw"; return 1; }
	measure "$key" "$flavour" "$LAB_NS-gw" "$vip" "$NAT_MAX" \
		'ip netns exec "$LAB_NS-rt" iptables -t nat -I POSTROUTING 1 -s 198.18.2.0/24 -o br1 -p udp -j SNAT --to-source 198.18.1.254:40000-40100 &&
		 ip netns exec "$LAB_NS-rt" conntrack -F >/dev/null 2>&1' 198.18.100.1
}

# Part 2: SAS childless IKE_SAs from one road-warrior host, one connection
# (and identity) each, against a gateway in FLAVOUR; all roam at once.
# many_setup_done NODE: NODE's charon holds SAS IKE_SAs, none half-open.
many_setup_done() {
	local stats total half
	stats=$(swan "$1" --stats 2>/dev/null | sed -n 's/^IKE_SAs: \([0-9]*\) total, \([0-9]*\) half-open.*/\1 \2/p')
	total=${stats% *} half=${stats#* }
	[ -n "$stats" ] && [ "$total" -ge "$SAS" ] && [ "$half" = 0 ]
}

# many_total NODE: NODE's IKE_SAs, half-open or not (0 if it cannot say).
many_total() {
	local t
	t=$(swan "$1" --stats 2>/dev/null | sed -n 's/^IKE_SAs: \([0-9]*\) total.*/\1/p')
	echo "${t:-0}"
}

# many_callgrind_dump RUN ROAMS: stop collecting on both gateways, keep
# their profiles of the roam in BENCH_CALLGRIND and print their summary.
# Uses run_many's fl and pidof.
many_callgrind_dump() {
	local run=$1 roams=$2 node out i files=()
	mkdir -p "$BENCH_CALLGRIND"
	for node in gw gw2; do
		callgrind_control -i off "${pidof[$node]}" >/dev/null && callgrind_control -d "${pidof[$node]}" >/dev/null || return 1
		# the dump is written by the daemon's next scheduled instruction
		for i in $(seq 1 100); do
			[ -s "$LAB_DIR/$node/callgrind.out.1" ] && break
			sleep 0.1
		done
		out=$BENCH_CALLGRIND/callgrind.${fl[$node]}.$run.out
		cp "$LAB_DIR/$node/callgrind.out.1" "$out" || return 1
		files+=("$out")
	done
	python3 tools/callgrind-summary.py "$roams" "${files[@]}" | sed 's/^/  callgrind: /' >&2
}

# run_many RUN: both flavours at once, each on its own gateway (gw at
# 198.18.1.1 and gw2 at 198.18.1.3; which runs which alternates by run),
# SAS childless IKE_SAs each from the one road-warrior host, all roaming
# on one event: both gateways work under the same load and the same noise.
run_many() {
	local run=$1 i n moved secs cpu node flavour t_setup pid perf_pids="" res
	local -A fl=() pidof=() rss0=() done_at=() nodes_n=()
	if [ $((run % 2)) = 1 ]; then fl[gw]=builtin fl[gw2]=rust; else fl[gw]=rust fl[gw2]=builtin; fi
	local tune="ikesa_table_size = 1024
	ikesa_table_segments = 16
	filelog { lab { ike = 1
		ike_name = yes } }"
	LAB_GW2=1 lab_up many || { harness_fail many "${fl[gw]}" "lab_up"; return 1; }
	# BENCH_CALLGRIND: the gateways (not the road warrior) under callgrind,
	# collecting nothing until the roam
	local wrap=""
	[ -n "${BENCH_CALLGRIND:-}" ] &&
		wrap="valgrind -q --tool=callgrind --instr-atstart=no --cache-sim=yes --dump-instr=yes --callgrind-out-file=%q{LAB_NODE_DIR}/callgrind.out"
	for node in gw gw2; do
		# Each gateway admits SAS half-open IKE_SAs from one address without
		# cookies (defaults: 5 per address, cookies from 30).
		LAB_WRAPPER=$wrap charon_start "$node" "${fl[$node]}" "$tune" "block_threshold = $((SAS + 100))" "cookie_threshold = $((SAS + 100))" ||
			{ harness_fail many "${fl[$node]}" "$node charon start"; return 1; }
	done
	charon_start rw stock "$tune" || { harness_fail many "${fl[gw]}" "rw charon start"; return 1; }
	{
		echo "connections {"
		for i in $(seq 1 "$SAS"); do
			printf 'c%d { remote_addrs = 198.18.1.1\n mobike = yes\n local { auth = psk\n id = rw-%d.lab.test }\n remote { auth = psk\n id = gw.lab.test } }\n' "$i" "$i"
			printf 'd%d { remote_addrs = 198.18.1.3\n mobike = yes\n local { auth = psk\n id = rw-%d.lab.test }\n remote { auth = psk\n id = gw.lab.test } }\n' "$i" "$i"
		done
		echo "}"
		echo "secrets { ike-lab { secret = $LAB_PSK } }"
	} >"$LAB_DIR/rw/swanctl.conf"
	for node in gw gw2; do
		printf '%s\n' "connections {" "rw {" "mobike = yes" "local { auth = psk" "id = gw.lab.test }" \
			"remote { auth = psk }" "}" "}" "secrets { ike-lab { secret = $LAB_PSK } }" >"$LAB_DIR/$node/swanctl.conf"
		swan "$node" --load-all --file "$LAB_DIR/$node/swanctl.conf" >/dev/null 2>&1 ||
			{ harness_fail many "${fl[$node]}" "$node config"; return 1; }
		pidof[$node]=$(netns_charon "$node") || { harness_fail many "${fl[$node]}" "$node charon pid"; return 1; }
		rss0[$node]=$(proc_rss "${pidof[$node]}")
	done
	swan rw --load-all --file "$LAB_DIR/rw/swanctl.conf" >/dev/null 2>&1 || { harness_fail many "${fl[gw]}" "rw config"; return 1; }
	t_setup=$(now)
	# Both sets at once, so both gateways set up under the same load.
	python3 tools/bench-many.py initiate "$LAB_DIR/rw/charon.vici" c "$SAS" >"$LAB_DIR/init.c" &
	pid=$!
	python3 tools/bench-many.py initiate "$LAB_DIR/rw/charon.vici" d "$SAS" >"$LAB_DIR/init.d"
	wait "$pid"
	for i in c d; do
		[ "$(cat "$LAB_DIR/init.$i")" = "$SAS" ] ||
			{ harness_fail many "${fl[gw]}" "vici accepted $(cat "$LAB_DIR/init.$i") of $SAS initiations ($i)"; return 1; }
	done
	# Until both are up, no progress for 20 s (what did not come up by then
	# is what this machine holds), or SETUP_MAX.
	local last=-1 last_t sum
	last_t=$(now)
	for i in $(seq 1 $((SETUP_MAX * 4))); do
		for node in gw gw2; do
			[ -z "${done_at[$node]:-}" ] && many_setup_done "$node" && done_at[$node]=$(elapsed_ms "$t_setup")
		done
		[ -n "${done_at[gw]:-}" ] && [ -n "${done_at[gw2]:-}" ] && break
		sum=$(($(many_total gw) + $(many_total gw2)))
		if [ "$sum" != "$last" ]; then last=$sum last_t=$(now); fi
		[ "$(elapsed_ms "$last_t")" -ge 20000 ] && break
		[ "$(elapsed_ms "$t_setup")" -ge $((SETUP_MAX * 1000)) ] && break
		sleep 0.25
	done
	for node in gw gw2; do
		flavour=${fl[$node]}
		record many_setup "$flavour" "${done_at[$node]:-$(elapsed_ms "$t_setup")}"
		n=$(swan "$node" --list-sas 2>/dev/null | grep -c "^  remote '.*' @ 198\.18\.1\.2\[4500\]")
		[ "$n" -gt 0 ] || { harness_fail many "$flavour" "no IKE_SA came up on $node"; return 1; }
		[ "$n" = "$SAS" ] || lab_log "many ($flavour on $node): $n of $SAS IKE_SAs established on rw-a; measuring those"
		nodes_n[$node]=$n
		record many_n "$flavour" "$n"
		record many_mem "$flavour" "$(awk -v a="${rss0[$node]}" -v b="$(proc_rss "${pidof[$node]}")" -v n="$n" 'BEGIN { printf "%.0f", (b - a) * 1024 / n }')"
	done
	# The helper waits for the larger count; a gateway with fewer IKE_SAs
	# is judged by its own count below.
	n=$((nodes_n[gw] > nodes_n[gw2] ? nodes_n[gw] : nodes_n[gw2]))
	# BENCH_PERF=DIR: perf profiles of both gateways during the roam (for
	# looking into the figures, not part of them: perf costs CPU too).
	if [ -n "${BENCH_PERF:-}" ] && command -v perf >/dev/null; then
		mkdir -p "$BENCH_PERF"
		for node in gw gw2; do
			perf record -q ${BENCH_PERF_ARGS:--F 2000 -g} -p "${pidof[$node]}" -o "$BENCH_PERF/perf.${fl[$node]}.$run.data" >/dev/null 2>&1 &
			perf_pids+=" $!"
		done
		sleep 0.5
	fi
	if [ -n "$wrap" ]; then
		for node in gw gw2; do
			callgrind_control -z "${pidof[$node]}" >/dev/null && callgrind_control -i on "${pidof[$node]}" >/dev/null ||
				{ harness_fail many "${fl[$node]}" "$node: callgrind_control"; return 1; }
		done
	fi
	res=$(python3 tools/bench-many.py roam "$n" "$ROAM_MAX" \
		'<[^|>]*\|([0-9]+)> remote endpoint changed from [^ ]+ to 198\.18\.2\.2\[' \
		"$LAB_DIR/gw/charon.log" "${pidof[gw]}" "$LAB_DIR/gw2/charon.log" "${pidof[gw2]}" -- \
		ip -n "$LAB_NS-rw" link set rw-a down) || { harness_fail many "${fl[gw]}" "roam helper failed"; return 1; }
	[ -z "$wrap" ] || many_callgrind_dump "$run" "$n" || { harness_fail many "${fl[gw]}" "callgrind dump"; return 1; }
	for pid in $perf_pids; do kill -INT "$pid" 2>/dev/null; done
	for pid in $perf_pids; do wait "$pid" 2>/dev/null; done
	i=0
	for node in gw gw2; do
		flavour=${fl[$node]} i=$((i + 1))
		read -r moved secs cpu <<<"$(sed -n "${i}p" <<<"$res")"
		# What the log said, checked against the gateway's own list.
		local listed
		listed=$(swan "$node" --list-sas 2>/dev/null | grep -c "^  remote '.*' @ 198\.18\.2\.2\[4500\]")
		lab_log "many ($flavour on $node): ${nodes_n[$node]} IKE_SAs; $moved logged on the new address in $secs s ($listed listed there), CPU $cpu s"
		if [ "$moved" -ge "${nodes_n[$node]}" ]; then
			record many_time "$flavour" "$(awk -v s="$secs" 'BEGIN { printf "%.0f", s * 1000 }')"
		else
			record many_time "$flavour" never
			lab_log "many ($flavour on $node): only $moved of ${nodes_n[$node]} moved within $ROAM_MAX s"
		fi
		record many_cpu "$flavour" "$(awk -v s="$cpu" 'BEGIN { printf "%.0f", s * 1000 }')"
		[ "$listed" -ge "$moved" ] || { harness_fail many "$flavour" "$node: log shows $moved moved, list-sas $listed"; return 1; }
	done
}

want() { [[ " $ONLY " == *" $1 "* ]]; }
[ -z "${BENCH_CALLGRIND:-}" ] || want many ||
	die "BENCH_CALLGRIND profiles the many-roams part only: add many to BENCH_ONLY"

[ -z "$ONLY" ] || echo "== make bench: $RUNS run(s) per scenario and flavour, $SAS IKE_SAs for the gateway part"
for run in $(seq 1 "$RUNS"); do
	for flavour in builtin rust; do
		if want break || want return; then
			lab_log "run $run/$RUNS $flavour: break-before-make / return"
			run_break_return "$flavour"
			cleanup
		fi
		if want nat; then
			lab_log "run $run/$RUNS $flavour: break into a NAT"
			run_nat "$flavour"
			cleanup
		fi
		if want silent; then
			lab_log "run $run/$RUNS $flavour: silent failure"
			run_silent "$flavour"
			cleanup
		fi
		if want silentnosrc; then
			lab_log "run $run/$RUNS $flavour: silent failure without a source rule"
			run_silentnosrc "$flavour"
			cleanup
		fi
		if want natmap; then
			lab_log "run $run/$RUNS $flavour: NAT mapping change (dpd_delay 5s)"
			run_natmap "$flavour" natmap 5s
			cleanup
			lab_log "run $run/$RUNS $flavour: NAT mapping change (no DPD)"
			run_natmap "$flavour" natmap_nodpd 0s
			cleanup
		fi
	done
done
if want many; then
	for run in $(seq 1 "$MANY_RUNS"); do
		lab_log "run $run/$MANY_RUNS: builtin and rust gateways, $SAS IKE_SAs each, roam at once"
		run_many "$run"
		cleanup
	done
fi

# ---- the table --------------------------------------------------------

# values KEY FLAVOUR: the recorded values, one a line.
values() { awk -v k="$1" -v f="$2" '$1 == k && $2 == f { print $3 }' "$RAW"; }

# summary KEY FLAVOUR median|worst|fails|count: "never" is larger than any
# number; a median between a number and "never" is "never".
summary() {
	values "$1" "$2" | awk -v what="$3" '
		$1 == "fail" { fails++; next }
		{ v[n++] = ($1 == "never") ? 1e18 : $1 + 0 }
		END {
			if (what == "fails") { print fails + 0; exit }
			if (what == "count") { print n + 0; exit }
			if (!n) exit
			for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
			x = (what == "worst") ? v[n - 1] : (n % 2 ? v[(n - 1) / 2] : (v[n / 2 - 1] + v[n / 2]) / 2)
			if (x >= 1e18) print "never"; else printf "%.0f\n", x
		}'
}

# fmt_ms VALUE CAP_S: "123 ms", "1.23 s", or "never (>CAP s)".
fmt_ms() {
	case "$1" in
		"") echo "-" ;;
		never) echo "never (>${2} s)" ;;
		*) awk -v v="$1" 'BEGIN { if (v >= 1000) printf "%.2f s", v / 1000; else printf "%d ms", v }' ;;
	esac
}

# cell KEY FLAVOUR CAP: "median / worst", with failed runs counted.
cell() {
	local m w f c
	m=$(summary "$1" "$2" median) w=$(summary "$1" "$2" worst) f=$(summary "$1" "$2" fails) c=$(summary "$1" "$2" count)
	if [ "$c" = 0 ]; then
		echo "not measured${f:+ ($f failed)}"
		return
	fi
	printf '%s / %s' "$(fmt_ms "$m" "$3")" "$(fmt_ms "$w" "$3")"
	[ "$f" != 0 ] && printf ' (%s of %s runs failed)' "$f" "$((f + c))"
	echo
}

# ratio KEY: rust median / builtin median.
ratio() {
	local b r
	b=$(summary "$1" builtin median) r=$(summary "$1" rust median)
	if [ -z "$b" ] || [ -z "$r" ]; then echo "-"
	elif [ "$b" = never ] && [ "$r" = never ]; then echo "- (both never)"
	elif [ "$b" = never ]; then echo "- (builtin never)"
	elif [ "$r" = never ]; then echo "- (rust never)"
	elif [ "$b" = 0 ]; then echo "-"
	else awk -v b="$b" -v r="$r" 'BEGIN { printf "%.2f", r / b }'
	fi
}

row() { # KEY CAP LABEL
	printf '| %s | %s | %s | %s |\n' "$3" "$(cell "$1" builtin "$2")" "$(cell "$1" rust "$2")" "$(ratio "$1")"
}

# many_cell KEY FLAVOUR UNIT: the median over MANY_RUNS (UNIT: ms, bytes, n).
many_cell() {
	local m
	m=$(summary "$1" "$2" median)
	case "$m" in
		"") [ "$(summary "$1" "$2" fails)" != 0 ] && echo "failed" || echo "-" ;;
		never) echo "never (>$ROAM_MAX s)" ;;
		*) case "$3" in
				ms) fmt_ms "$m" ;;
				bytes) awk -v v="$m" 'BEGIN { printf "%.1f KiB", v / 1024 }' ;;
				n) echo "$m" ;;
			esac ;;
	esac
}
# paired_raw KEY: rust / builtin of each run of the many part, unrounded,
# one a line (recorded in pairs, builtin and rust of one run in a row, in
# either order).
paired_raw() {
	awk -v k="$1" '$1 == k && $3 ~ /^[0-9]+$/ { v[$2] = $3; n[$2]++
			if (n["builtin"] == n["rust"] && v["builtin"] > 0) print v["rust"] / v["builtin"] }' "$RAW"
}

# paired_ratios KEY: paired_raw rounded, in one line.
paired_ratios() {
	paired_raw "$1" | awk '{ printf "%s%.2f", sep, $1; sep = ", " }'
}

# paired_median KEY: the median of paired_ratios (a run's noise is shared
# by both gateways of the run, so this is steadier than the ratio of the
# medians; paired_mean is what resolves a difference of 1%).
paired_median() {
	paired_ratios "$1" | tr ',' '\n' | sort -n | awk '{ v[NR] = $1 }
		END { if (NR) printf "%.2f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; else printf "-" }'
}

# paired_mean KEY: the mean of paired_raw and its standard error. The
# medians move by a few percent between series; a difference of 1%
# between the gateways needs this (and 30 runs or more) to be seen at all.
paired_mean() {
	paired_raw "$1" | awk '{ s += $1; q += $1 * $1; c++ }
		END { if (c > 1) { m = s / c; sd = sqrt((q - c * m * m) / (c - 1)); printf "%.3f ± %.3f", m, sd / sqrt(c) }
			else if (c) printf "%.3f", s / c; else printf "-" }'
}

many_row() { # KEY UNIT LABEL
	local r="-" b p
	b=$(summary "$1" builtin median) p=$(summary "$1" rust median)
	[ "$2" != n ] && [[ $b =~ ^[0-9]+$ ]] && [[ $p =~ ^[0-9]+$ ]] && [ "$b" -gt 0 ] &&
		r=$(awk -v b="$b" -v p="$p" 'BEGIN { printf "%.2f", p / b }')
	printf '| %s | %s | %s | %s |\n' "$3" "$(many_cell "$1" builtin "$2")" "$(many_cell "$1" rust "$2")" "$r"
}

swan_version=$(/usr/lib/ipsec/charon --version 2>/dev/null | awk '{ print $NF; exit }')
runtime=$(awk -v ms="$(elapsed_ms "$BENCH_START")" 'BEGIN { printf "%dm%02ds", ms / 60000, (ms % 60000) / 1000 }')
{
	echo "### make bench"
	echo
	echo "$(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), kernel $(uname -r), strongSwan $swan_version (Debian's charon, kernel-libipsec), library $(git describe --always --dirty 2>/dev/null || echo '?'); load average at the end $(cut -d ' ' -f 1-3 /proc/loadavg); total runtime $runtime."
	echo
	if want break || want nat || want return || want silent || want silentnosrc || want natmap; then
		echo "Road warrior under test, gateway a stock charon (no library) in both columns. Outage: the longest gap between answered echoes (one every 10 ms through the tunnel, so 10 ms means nothing was lost), median / worst of $RUNS run(s); ratio: rust median / builtin median."
		echo
		echo "| scenario | builtin median / worst | rust median / worst | ratio |"
		echo "|---|---|---|---|"
		want break && row break "$BREAK_MAX" "break-before-make (rw-a down, rw-b works)"
		want nat && row nat "$BREAK_MAX" "break-before-make into a NAT"
		if want return; then
			row return "$RETURN_MAX" "return to the preferred interface (builtin: prefer_best_path; rust: preference, switch_back_delay $SWITCH_BACK_DELAY_MS ms), outage"
			row return_esp "$RETURN_MAX" "return: rw-a's address added to gw's first ESP packet to it (rust: includes switch_back_delay $SWITCH_BACK_DELAY_MS ms)"
		fi
		want silent && row silent "$SILENT_MAX" "silent failure of rw-a's path, rw-b works (dpd_delay 5s)"
		want silentnosrc && row silentnosrc "$SILENT_MAX" "silent failure of rw-a's path without a source rule (rw-ar routed, keeps the more specific route to gw; dpd_delay 5s)"
		if want natmap; then
			row natmap "$NAT_MAX" "NAT mapping change, idle road warrior (dpd_delay 5s)"
			row natmap_nodpd "$NAT_MAX" "NAT mapping change, idle road warrior, no DPD (dpd_delay 0s; NAT keep-alive every 20 s, charon's default)"
		fi
		echo
	fi
	if want many; then
		echo "Gateway under test, road warrior a stock charon: a builtin and a rust gateway run side by side (198.18.1.1 and 198.18.1.3 on the same segment, which runs which alternating by run), each with $SAS childless IKE_SAs from the one road-warrior host (one connection each, initiated in parallel through vici); all $((2 * SAS)) roam when rw-a goes down, so both gateways work under the same load and the same noise (median of $MANY_RUNS run(s); per run, rust CPU / builtin CPU: $(paired_ratios many_cpu); their median $(paired_median many_cpu), their mean and its standard error $(paired_mean many_cpu)). All charons with ikesa_table_size = 1024, ikesa_table_segments = 16, ike log level 1; the gateways with block_threshold and cookie_threshold above $SAS, so one host may hold that many half-open IKE_SAs. Time: until the gateway logged \`remote endpoint changed ... to 198.18.2.2\` for every IKE_SA (lines timed on arrival), checked against \`swanctl --list-sas\`; CPU: the gateway charon's CPU time over that interval (the sum of its threads' schedstat run time, ns); memory: VmRSS growth over the setup divided by the IKE_SAs. Childless IKE_SAs move without a return routability check (no IPsec SA to redirect; it runs when a CHILD_SA comes up), so both columns do one exchange per IKE_SA."
		echo
		echo "| gateway | builtin | rust | ratio |"
		echo "|---|---|---|---|"
		many_row many_n n "IKE_SAs established (of $SAS)"
		many_row many_setup ms "setup time"
		many_row many_time ms "roam: until gw logged all on the new address"
		many_row many_cpu ms "gw charon CPU time (user+system) in that interval"
		printf '| %s | - | - | %s |\n' "gw charon CPU, rust / builtin of each run: mean ± standard error" "$(paired_mean many_cpu)"
		many_row many_mem bytes "gw VmRSS per IKE_SA (growth over the setup / IKE_SAs)"
		echo
	fi
	bench_xfrm_table
	[ "$HARNESS_FAILED" = 0 ] || echo "Harness failures: see above; raw values in $RAW."
} >"$RESULTS"
echo
cat "$RESULTS"
echo "(written to $RESULTS)"
exit "$HARNESS_FAILED"
