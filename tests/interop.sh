#!/usr/bin/env bash
# End-to-end interop tests: two charons (PSK, virtual IP for the road
# warrior) in a netns lab, one or both with libmobike_rs.so preloaded,
# checked with real traffic through the tunnel.
#
# Usage: tests/interop.sh [SCENARIO...]   (default: all of SCENARIOS, those
# of EXTRA_SCENARIOS by name only; -l lists both)
# Needs root, charon, swanctl, ip, iptables, ping and the built library;
# without them every scenario is reported as SKIP with the reason.
#
# The data plane (LAB_DATAPLANE, tests/lab/lib.sh): kernel-libipsec by
# default; with LAB_DATAPLANE=xfrm the kernel's IPsec through kernel-netlink,
# which needs a kernel with ESP: the script then runs itself, with the
# selected scenarios of XFRM_SCENARIOS, inside one boot of the VM of
# tests/lab/vm.sh (SKIP with the reason when it cannot boot), and every move
# is also checked in the kernel's SAs and policies on both sides.
set -u
cd "$(dirname "$0")/.."
. tests/lab/lib.sh

SCENARIOS=(
	"negotiate rust stock"
	"negotiate stock rust"
	"negotiate rust rust"
	"break rust stock"
	"break stock rust"
	"break rust rust"
	"break builtin stock"
	"peernorekey rust stock"
	"nat rust stock"
	"nat stock rust"
	"return rust stock"
	"return stock rust"
	"fastroam rust stock"
	"prefer rust stock"
	"prefer rust rust"
	"status rust rust"
	"break6 rust stock"
	"break6 stock rust"
	"break6 rust rust"
	"v4to6 rust stock"
	"v4to6 rust rust"
	"v6to4 rust stock"
	"v6to4 rust rust"
	"v4to6back rust stock"
	"v4to6back rust rust"
	"rr stock rust"
	"rr rust rust"
	"rrchildless stock rust"
	"natprohibited rust rust"
	"natallowed rust rust"
	"unacceptable rust rust"
	"unacceptable stock rust"
	"silent rust stock"
	"silent rust rust"
	"silentnosrc rust stock"
	"silentnosrc6 rust rust"
	"silentmetric rust stock"
	"silentmetric6 rust rust"
	"natmap rust stock"
	"natmap rust rust"
	"filter rust stock"
	"filter stock rust"
	"nomobike rust rust"
	"negotiate stock rust@trixie"
	"negotiate rust rust@trixie"
	"negotiate rust@trixie stock"
	"break rust@trixie stock"
	"break stock rust@trixie"
	"break rust rust@trixie"
	"nat stock rust@trixie"
	"nat rust rust@trixie"
	"nat rust@trixie stock"
	"nomobike rust rust@trixie"
	"negotiate stock rust@sid"
	"negotiate rust rust@sid"
	"negotiate rust@sid stock"
	"break rust@sid stock"
	"break stock rust@sid"
	"break rust rust@sid"
	"nat stock rust@sid"
	"nat rust rust@sid"
	"nat rust@sid stock"
	"nomobike rust rust@sid"
	"negotiate rust@trixie rust@sid"
	"negotiate rust@sid rust@trixie"
	"negotiate rust@sid stock@trixie"
	"break rust@trixie rust@sid"
	"break rust@sid rust@trixie"
	"break rust@sid stock@trixie"
	"nat rust@trixie rust@sid"
	"nat rust@sid rust@trixie"
	"nat rust@sid stock@trixie"
)
# Run by name only (`make interop` runs SCENARIOS, and `make test` is
# time-bounded): the other pairings of issue 24's silent failure without a
# source rule; SCENARIOS has one of each lab, two per pairing.
EXTRA_SCENARIOS=(
	"silentnosrc rust rust"
	"silentnosrc6 rust stock"
	"silentmetric rust rust"
	"silentmetric6 rust stock"
)
# Under LAB_DATAPLANE=xfrm (in the VM): the scenarios whose checks hold
# for the kernel's IPsec (the others test kernel-libipsec's rekeying or
# its TUN device, or take long under TCG).
XFRM_SCENARIOS=(
	"negotiate rust stock"
	"negotiate stock rust"
	"negotiate rust rust"
	"break rust stock"
	"break stock rust"
	"break rust rust"
	"break builtin stock"
	"nat rust stock"
	"nat stock rust"
	"nat rust rust"
	"v4to6 rust stock"
	"v4to6 builtin stock"
	"v4to6 rust rust"
	"v6to4 rust stock"
	"v6to4 rust rust"
	"v4to6back rust stock"
	"v4to6back rust rust"
	"rr stock rust"
	"rr rust rust"
	"xfrmif rust rust"
	"xfrmif stock rust"
	"transport46 rust stock"
	"transport46 rust rust"
	"silentnosrc rust stock"
	"silentnosrc6 rust rust"
)
# FLAVOUR@SUITE: the charon of another suite's tree, made by `make build
# SUITE=...` (scripts/suite-root.sh), with the library built for it:
# @trixie Debian 13's (strongSwan 6.0.1), @sid sid's (6.1.0). Each node can
# run its own suite. SUITE_ROOT_<suite> and SUITE_LIB_<suite> override the
# places.
suite_root() { local v="SUITE_ROOT_$1"; echo "${!v:-$PWD/build/$1/root}"; }
suite_lib() { local v="SUITE_LIB_$1"; echo "${!v:-$PWD/target/$1/release/libmobike_rs.so}"; }
SUITE_TIMEOUT=${SUITE_TIMEOUT:-$([ "$LAB_DATAPLANE" = xfrm ] && echo 2400 || echo 900)}

fail() {
	lab_log "FAILED CHECK: $*"
	show_logs
	return 1
}

# Flavour checks: a rust instance ran the Rust core, a stock one did not.
check_flavour() {
	local node=$1 flavour=${2%@*}
	case "$flavour" in
		rust) in_log "$node" 'mobike-rs: Rust core runs the MOBIKE task' ||
			fail "$node: no MOBIKE task ran in the Rust core" ;;
		builtin) in_log "$node" "mobike-rs: plugin loaded, MOBIKE tasks run in mode 'builtin'" &&
			! in_log "$node" 'mobike-rs: Rust core runs' ||
			fail "$node: builtin mode did not hand tasks to charon's MOBIKE" ;;
		stock) ! in_log "$node" 'mobike-rs:' || fail "$node: stock charon logged mobike-rs lines" ;;
	esac
}

start_node() { # NODE FLAVOUR[@SUITE] [strongswan.conf lines...]
	local node=$1 flavour=$2 suite
	shift 2
	case "$flavour" in
		*@*)
			suite=${flavour#*@}
			export "LAB_ROOT_$node=$(suite_root "$suite")" "LAB_ROOT_LIB_$node=$(suite_lib "$suite")"
			flavour=${flavour%@*}
			;;
	esac
	charon_start "$node" "$flavour" "$@"
}

# GW_CONF: strongswan.conf lines for gw's charon section.
setup() { # NAME RW GW [nat] [rw strongswan.conf lines...]
	local name=$1 rwf=$2 gwf=$3 nat=${4:-}
	shift 4 2>/dev/null || shift $#
	LAB_NAT=$nat
	lab_up "$name" "$nat" || return 1
	start_node gw "$gwf" ${GW_CONF:+"$GW_CONF"} || return 1
	start_node rw "$rwf" "$@" || return 1
	tunnel_up || fail "tunnel setup: $(tail -n 3 "$LAB_DIR/initiate.out" 2>/dev/null)" || return 1
	[ "$(sa_field rw state)" = ESTABLISHED ] || fail "IKE_SA not established" || return 1
	ping_ok || fail "no traffic through the new tunnel" || return 1
}

# a) IKE_SA and CHILD_SA up, MOBIKE negotiated, traffic passes.
scenario_negotiate() {
	local rwf=$1 gwf=$2
	[ "$rwf" = rust ] && LD_DEBUG_DIR=$(mktemp -d) || LD_DEBUG_DIR=
	setup "neg" "$rwf" "$gwf" "" || return 1
	in_log rw 'peer supports MOBIKE' || fail "rw: MOBIKE not negotiated" || return 1
	in_log gw 'peer supports MOBIKE' || fail "gw: MOBIKE not negotiated" || return 1
	check_flavour rw "$rwf" && check_flavour gw "$gwf" || return 1
	if [ -n "$LD_DEBUG_DIR" ]; then
		# charon's own PLT call binds to our library, not libcharon's.
		grep -hE "binding file .*libcharon\.so.* to .*libmobike_rs\.so.*ike_mobike_create" "$LD_DEBUG_DIR"/ld.* >/dev/null 2>&1 ||
			fail "LD_DEBUG=bindings: libcharon's ike_mobike_create not bound to libmobike_rs.so" || return 1
		lab_log "LD_DEBUG=bindings: libcharon's ike_mobike_create binds to libmobike_rs.so"
		rm -rf "$LD_DEBUG_DIR"
		LD_DEBUG_DIR=
	fi
}

# b/c) the preferred interface goes down while the second address works.
# The addresses are the lab's (LAB_FAMILY): rw moves from LAB_RW_A to
# LAB_RW_B and then talks to LAB_GW_B, gw's address of that family.
move_away() {
	local spis_before spis_after
	spis_before=$(sa_field rw spis)
	[ "$(sa_field rw local)" = "${LAB_RW_A}[4500]" ] || fail "rw not on rw-a before the move: $(sa_field rw local)" || return 1
	if [ "$LAB_DATAPLANE" = xfrm ]; then
		kernel_before || return 1
	fi
	ip -n "$LAB_NS-rw" link set rw-a down
	wait_for '[ "$(sa_field rw local)" = "${LAB_RW_B}[4500]" ]' ||
		fail "rw's IKE_SA did not move to rw-b: $(sa_field rw local)" || return 1
	[ "$(sa_field rw remote)" = "${LAB_GW_B}[4500]" ] ||
		fail "rw talks to $(sa_field rw remote) after the move, expected ${LAB_GW_B}[4500]" || return 1
	ping_ok || fail "traffic did not resume after the move" || return 1
	spis_after=$(sa_field rw spis)
	[ -n "$spis_before" ] && [ "$spis_before" = "$spis_after" ] ||
		fail "IKE_SA changed: '$spis_before' -> '$spis_after'" || return 1
	[ "$(sa_field rw count)" = 1 ] && [ "$(sa_field gw count)" = 1 ] ||
		fail "more than one IKE_SA after the move" || return 1
	! in_log rw 'reauthenticating IKE_SA|establishing IKE_SA.*#2' ||
		fail "rw reauthenticated instead of moving" || return 1
	lab_log "moved: $LAB_RW_A -> $(sa_field rw local), same IKE_SA $spis_after"
	if [ "$LAB_DATAPLANE" = xfrm ]; then
		kernel_after "$([ "$LAB_NAT" = nat ] && echo yes || echo no)" || return 1
	fi
}

# The kernel's state (LAB_DATAPLANE=xfrm) on both sides before a move: on
# the IKE_SA's path, no UDP encapsulation (no NAT on the direct path);
# KERNEL_SPIS_<node> remembers the SPIs.
kernel_before() {
	local n why
	for n in rw gw; do
		wait_for 'why=$(xfrm_check "$n" no)' ||
			fail "$n's kernel state before the move: $why" || return 1
		printf -v "KERNEL_SPIS_$n" '%s' "$(xfrm_spis "$n")"
	done
}

# kernel_after NAT: after a move, both sides' SAs and policies are on the
# new path, with the SPIs of before (updated in place, not rekeyed) and
# UDP encapsulation exactly when NAT is yes.
kernel_after() {
	local n why spis nat=$1
	for n in rw gw; do
		spis="KERNEL_SPIS_$n"
		wait_for 'why=$(xfrm_check "$n" "$nat" "${!spis}")' ||
			fail "$n's kernel state after the move: $why
$(ip -n "$LAB_NS-$n" xfrm state | grep -vE '^\s+(auth|enc|aead)' ; ip -n "$LAB_NS-$n" xfrm policy)" || return 1
		lab_log "$n's kernel: $(xfrm_states "$n" | awk '{ printf "%s%s %s->%s %s", sep, $1, $2, $3, $4; sep = ", " }')"
	done
}

# After a move the kernel-libipsec data plane could not follow in place,
# the road warrior left the CHILD_SA's rekeying to the gateway, which
# rekeys at once for the same reason: one rekeying, no collision. The head
# start is 5 ms plus the update's round trip; a gateway that rekeys only
# after its return routability check may miss it on a loaded machine, and
# then the road warrior rekeys, as it should. That passes only if the
# gateway's rekeying reached rw after rw had decided to rekey (charon logs
# "parsed" with the IKE_SA checked out, and the deferred rekeying checks
# it out too, so the log's order is the order of the two).
rekeyed_by_peer() {
	local own peer
	in_log rw 'mobike-rs: the kernel did not update 1 CHILD_SA\(s\) in place; rekeying them after this exchange' ||
		fail "rw did not defer the rekeying of the CHILD_SA it could not move" || return 1
	wait_for "in_log rw 'mobike-rs: the peer rekeyed 1 CHILD_SA\(s\) after the move, not rekeying them again|mobike-rs: rekeying CHILD_SA'" ||
		fail "rw neither left the rekeying to the gateway nor rekeyed after its head start" || return 1
	if in_log rw 'mobike-rs: rekeying CHILD_SA'; then
		own=$(grep -nE 'mobike-rs: rekeying CHILD_SA' "$LAB_DIR/rw/charon.log" | head -n 1 | cut -d: -f1)
		peer=$(grep -nE 'parsed CREATE_CHILD_SA request [0-9]+ \[ N\(REKEY_SA\)' "$LAB_DIR/rw/charon.log" | head -n 1 | cut -d: -f1)
		[ -z "$peer" ] || [ "$peer" -gt "$own" ] ||
			fail "rw rekeyed the CHILD_SA although the gateway's rekeying had reached it" || return 1
		lab_log "the gateway's rekeying came after rw's head start (a loaded machine): rw rekeyed, as it should"
		return 0
	fi
	! in_log rw 'CHILD_SA rekey collision|detected CHILD_REKEY collision|mobike-rs: rekeying CHILD_SA' ||
		fail "rw rekeyed the CHILD_SA itself as well" || return 1
}

# The gateway's rekeying of the CHILD_SA after the move never arrives (its
# CREATE_CHILD_SA requests are dropped, as if it had updated the SA in
# place): the road warrior's own deferred rekeying runs, traffic resumes.
scenario_peernorekey() {
	local rwf=$1 gwf=$2 dropped
	# The gateway is the original responder: its requests carry no flags.
	# Byte 22 of the UDP payload (after the non-ESP marker) is the exchange
	# type, 23 the flags: CREATE_CHILD_SA (36) request = 0x2400.
	local rule=(INPUT -p udp --sport 4500 -m u32 --u32 '0>>22&0x3C@28&0xFFFF=0x2400' -j DROP)
	setup "pnr" "$rwf" "$gwf" "" || return 1
	ip netns exec "$LAB_NS-rw" iptables -I "${rule[@]}" || fail "iptables rule in rw" || return 1
	move_away || return 1
	dropped=$(ip netns exec "$LAB_NS-rw" iptables -L INPUT -v -n -x | awk '/u32/ { print $1; exit }')
	[ "${dropped:-0}" -ge 1 ] || fail "no CREATE_CHILD_SA request of the gateway was dropped" || return 1
	in_log rw 'mobike-rs: rekeying CHILD_SA [^ ]+: the peer did not rekey it after the move' ||
		fail "rw did not rekey the CHILD_SA after the gateway did not" || return 1
	! in_log rw 'mobike-rs: the peer rekeyed' ||
		fail "rw thinks the gateway rekeyed" || return 1
	lab_log "gateway's rekeying dropped ($dropped request(s)); rw rekeyed the CHILD_SA itself"
	check_flavour rw "$rwf" && check_flavour gw "$gwf"
}

scenario_break() {
	local rwf=$1 gwf=$2
	setup "brk" "$rwf" "$gwf" "" || return 1
	move_away || return 1
	case "$rwf:${LAB_FAMILY:-4}" in
		rust*:4 | rust*:6) # rw-b to the gateway is the only path left
			in_log rw 'is the only one left, moving without a path check' ||
				fail "rw checked paths although only one was left" || return 1
			;;
	esac
	case "$rwf:${MEMCHECK_FLAVOUR:-}:$LAB_DATAPLANE" in
		rust*:*:xfrm) # the kernel updated the SAs in place: nothing to rekey
			! in_log rw 'mobike-rs: the kernel did not update|mobike-rs: rekeying CHILD_SA' ||
				fail "rw deferred or did a rekeying the kernel did not need: $(grep -E 'mobike-rs: (the kernel did not update|rekeying CHILD_SA)' "$LAB_DIR/rw/charon.log" | head -n 2)" || return 1
			;;
		rust*::*) rekeyed_by_peer || return 1 ;;
		rust*:*) # valgrind slows charon far past the 5 ms head start
			lab_log "not checked under valgrind: who rekeyed the CHILD_SA" ;;
	esac
	[ "$(sa_field gw remote)" = "${LAB_RW_B}[4500]" ] ||
		fail "gateway sees rw at $(sa_field gw remote), expected ${LAB_RW_B}[4500]" || return 1
	[ "$(sa_field gw local)" = "${LAB_GW_B}[4500]" ] ||
		fail "gateway uses $(sa_field gw local), expected ${LAB_GW_B}[4500]" || return 1
	check_flavour rw "$rwf" && check_flavour gw "$gwf"
}

# The same break-before-make in the IPv6-only lab (2001:db8::/32, IPv6
# virtual IP and traffic selectors).
scenario_break6() {
	LAB_FAMILY=6 scenario_break "$@"
}

# Across address families: set up over IPv4 (rw-a), rw-a goes down and the
# IKE_SA moves to IPv6 (rw-b to gw's IPv6 address, which gw announced with
# ADDITIONAL_IP6_ADDRESS); and the reverse. The tunnel's inner family stays
# IPv4.
scenario_v4to6() {
	LAB_FAMILY=46 scenario_break "$@"
}

scenario_v6to4() {
	LAB_FAMILY=64 scenario_break "$@"
}

scenario_nat() {
	local rwf=$1 gwf=$2
	setup "nat" "$rwf" "$gwf" nat || return 1
	move_away || return 1
	# Behind the MASQUERADE the gateway sees the router's address and a
	# translated port, and both sides use UDP encapsulation.
	local remote
	remote=$(sa_field gw remote)
	case "$remote" in
		198.18.1.254\[*) ;;
		*) fail "gateway sees rw at $remote, expected the NAT address 198.18.1.254" || return 1 ;;
	esac
	sa_raw rw | grep -q 'nat-local=yes' || fail "rw does not know it is behind a NAT" || return 1
	sa_raw gw | grep -q 'nat-remote=yes' || fail "gw does not know rw is behind a NAT" || return 1
	lab_log "through the NAT: gateway sees $remote"
	check_flavour rw "$rwf" && check_flavour gw "$gwf"
}

# MOBIKE switched off in the gateway's connection (swanctl `mobike = no`:
# peer_cfg's use_mobike() up to 6.0.1, the option OPT_NO_MOBIKE from 6.0.2
# on): the gateway does not agree to MOBIKE (RFC 4555 3.1), the tunnel
# works, and the gateway's status says why.
scenario_nomobike() {
	local rwf=$1 gwf=$2 st
	LAB_GW_MOBIKE=no setup "nomob" "$rwf" "$gwf" "" || return 1
	! in_log rw 'peer supports MOBIKE' || fail "rw: MOBIKE negotiated although gw's connection has mobike = no" || return 1
	case "$gwf" in
		rust*)
			st=$(status gw --json) || fail "mobike-rs status on gw failed: $st" || return 1
			case "$st" in
				*'"mobike":{"configured":false,"negotiated":false}'*) ;;
				*) fail "gw status: $st" || return 1 ;;
			esac
			lab_log "gw: $(status gw | grep 'MOBIKE:')"
			;;
	esac
}

# d) the preferred interface comes back: prefer_best_path moves back.
scenario_return() {
	local rwf=$1 gwf=$2
	setup "ret" "$rwf" "$gwf" "" "prefer_best_path = yes" || return 1
	move_away || return 1
	local spis
	spis=$(sa_field rw spis)
	ip -n "$LAB_NS-rw" link set rw-a up
	wait_for '[ "$(sa_field rw local)" = "${LAB_RW_A}[4500]" ]' ||
		fail "rw did not return to rw-a: $(sa_field rw local)" || return 1
	ping_ok || fail "traffic did not pass after the return" || return 1
	[ "$(sa_field rw spis)" = "$spis" ] || fail "IKE_SA changed on return" || return 1
	wait_for '[ "$(sa_field gw remote)" = "${LAB_RW_A}[4500]" ]' ||
		fail "gw sees rw at $(sa_field gw remote) after the return" || return 1
	lab_log "returned to $(sa_field rw local), same IKE_SA"
	if [ "$LAB_DATAPLANE" = xfrm ]; then
		kernel_after no || return 1
	fi
	check_flavour rw "$rwf" && check_flavour gw "$gwf"
}

# Across address families and back: set up over IPv4, rw-a goes down and
# the IKE_SA moves to IPv6; rw-a comes back and it returns to IPv4, the
# same IKE_SA (and, under xfrm, the same IPsec SAs) throughout. charon's
# prefer_best_path cannot do this (its roam only asks whether the current
# IPv6 path is still the kernel's best towards the same IPv6 peer
# address, and it is): mobike-rs's own `preference` does.
scenario_v4to6back() {
	local rwf=$1 gwf=$2 spis
	LAB_FAMILY=46 setup "v46b" "$rwf" "$gwf" "" \
		'plugins { mobike-rs { preference = "rw-a=100, rw-b=50" } }' || return 1
	move_away || return 1
	spis=$(sa_field rw spis)
	ip -n "$LAB_NS-rw" link set rw-a up
	wait_for '[ "$(sa_field rw local)" = "${LAB_RW_A}[4500]" ]' ||
		fail "rw did not return to rw-a: $(sa_field rw local)" || return 1
	in_log rw "moving to preferred path ${LAB_RW_A//./\\.}\\[4500\\] - ${LAB_GW//./\\.}\\[4500\\]" ||
		fail "rw did not log the move to the preferred path" || return 1
	wait_for '[ "$(sa_field gw remote)" = "${LAB_RW_A}[4500]" ]' ||
		fail "gw sees rw at $(sa_field gw remote) after the return" || return 1
	ping_ok || fail "traffic did not pass after the return" || return 1
	[ "$(sa_field rw spis)" = "$spis" ] || fail "IKE_SA changed on return" || return 1
	[ "$(sa_field rw count)" = 1 ] && [ "$(sa_field gw count)" = 1 ] ||
		fail "more than one IKE_SA after the return" || return 1
	lab_log "returned to $(sa_field rw local) over IPv4, same IKE_SA"
	if [ "$LAB_DATAPLANE" = xfrm ]; then
		kernel_after no || return 1
	fi
	check_flavour rw "$rwf" && check_flavour gw "$gwf"
}

# Immediate roam triggers: mobike-rs's own rtnetlink monitor acts
# on rw-a going down at once, where charon's kernel-netlink fires its roam
# event 100 ms later. Its "roaming now" line comes before charon's first
# path decision, the burst of kernel events that follows gives at most a
# decision per 50 ms window, nothing triggers before the move, and the
# IKE_SA moves with traffic resumed.
scenario_fastroam() {
	local rwf=$1 gwf=$2 log ours first n
	setup "fr" "$rwf" "$gwf" "" || return 1
	log="$LAB_DIR/rw/charon.log"
	in_log rw 'mobike-rs: fast_roam: roaming on the first kernel event' ||
		fail "rw: the kernel monitor did not start" || return 1
	! in_log rw 'mobike-rs: kernel event on' ||
		fail "rw roamed before anything changed: $(grep 'kernel event on' "$log")" || return 1
	move_away || return 1
	ours=$(grep -n -m1 'mobike-rs: kernel event on rw-a, roaming now' "$log" | cut -d: -f1)
	first=$(grep -n -m1 -E 'old path is not (available|preferred) anymore|requesting address change' "$log" | cut -d: -f1)
	[ -n "$ours" ] || fail "rw: no roam decision for rw-a" || return 1
	[ -n "$first" ] && [ "$ours" -lt "$first" ] ||
		fail "rw: charon's path decision (line ${first:-none}) came before ours (line $ours)" || return 1
	n=$(grep -c 'mobike-rs: kernel event on' "$log")
	# one burst: the first decision and one per window it spans
	[ "$n" -le 3 ] || fail "rw: $n roam decisions for one link going down" || return 1
	lab_log "$(sed -n "${ours}s/^[0-9]* //p" "$log") ($n decisions)"
	check_flavour rw "$rwf" && check_flavour gw "$gwf"
}

# Path preference and its hysteresis (RFC 4555 3.10): rw prefers rw-a
# (preference = rw-a=100, rw-b=50; switch_back_delay at its 500 ms). After
# the move to rw-b, rw-a comes back on a link that is up: an address that
# appears and goes again within the delay never moves the IKE_SA; one that
# stays is tested once it has been there for the delay (the path check's
# log says how long), answers, and the IKE_SA moves back, the same one.
# charon's prefer_best_path stays off: the move is the Rust core's.
scenario_prefer() {
	local rwf=$1 gwf=$2 spis since
	setup "prf" "$rwf" "$gwf" "" \
		'plugins { mobike-rs { preference = "rw-a=100, rw-b=50" } }' || return 1
	in_log rw 'mobike-rs: MOBIKE policy: .* preference=rw-a=100,rw-b=50 switch_back_delay=500ms' ||
		fail "rw did not log the preference" || return 1
	move_away || return 1
	spis=$(sa_field rw spis)
	# rw-a's link comes up without its address first (rt's bridge port
	# needs a moment to forward, see tools/bench.sh)
	ip -n "$LAB_NS-rw" addr del 198.18.1.2/24 dev rw-a
	ip -n "$LAB_NS-rw" link set rw-a up
	wait_for 'bridge -n "$LAB_NS-rt" link show dev p-rwa | grep -q "state forwarding"' ||
		fail "rt's port for rw-a does not forward" || return 1
	sleep 0.5
	# a flap: the address is there until rw's core has seen it, then goes
	ip -n "$LAB_NS-rw" addr add 198.18.1.2/24 dev rw-a
	wait_for 'in_log rw "preferred path 198\.18\.1\.2\[4500\] - 198\.18\.1\.1\[4500\] available since [0-9]+ ms, testing in [0-9]+ ms"' ||
		fail "rw did not see the better path" || return 1
	ip -n "$LAB_NS-rw" addr del 198.18.1.2/24 dev rw-a
	wait_for 'in_log rw "preferred path 198\.18\.1\.2\[4500\] - 198\.18\.1\.1\[4500\] is gone, staying on 198\.18\.2\.2"' ||
		fail "rw did not forget the better path when it went" || return 1
	sleep 1.5 # past the test the flap asked for
	! in_log rw 'testing preferred path|moving to preferred path' ||
		fail "a flap shorter than switch_back_delay made rw test or move: $(grep -E 'preferred path' "$LAB_DIR/rw/charon.log" | tail -n 3)" || return 1
	[ "$(sa_field rw local)" = "198.18.2.2[4500]" ] ||
		fail "rw left rw-b on a flap: $(sa_field rw local)" || return 1
	lab_log "a flap of rw-a's address within switch_back_delay: rw stays on $(sa_field rw local)"
	# the address comes back for good
	ip -n "$LAB_NS-rw" addr add 198.18.1.2/24 dev rw-a
	wait_for '[ "$(sa_field rw local)" = "198.18.1.2[4500]" ]' ||
		fail "rw did not return to rw-a: $(sa_field rw local)" || return 1
	since=$(sed -n 's/.*testing preferred path 198\.18\.1\.2\[4500\] - 198\.18\.1\.1\[4500\] (available since \([0-9]*\) ms.*/\1/p' "$LAB_DIR/rw/charon.log" | tail -n 1)
	[ -n "$since" ] && [ "$since" -ge 500 ] ||
		fail "rw tested rw-a after ${since:-?} ms, before switch_back_delay (500 ms)" || return 1
	in_log rw 'moving to preferred path 198\.18\.1\.2\[4500\] - 198\.18\.1\.1\[4500\]' ||
		fail "rw did not log the move to the preferred path" || return 1
	in_log rw 'sending UPDATE_SA_ADDRESSES for path 198\.18\.1\.2\[4500\] - 198\.18\.1\.1\[4500\]' ||
		fail "rw sent no UPDATE_SA_ADDRESSES on rw-a" || return 1
	wait_for '[ "$(sa_field gw remote)" = "198.18.1.2[4500]" ]' ||
		fail "gw sees rw at $(sa_field gw remote), expected 198.18.1.2[4500]" || return 1
	ping_ok || fail "traffic did not pass after the return" || return 1
	[ "$(sa_field rw spis)" = "$spis" ] || fail "IKE_SA changed on return" || return 1
	[ "$(sa_field rw count)" = 1 ] && [ "$(sa_field gw count)" = 1 ] ||
		fail "more than one IKE_SA after the return" || return 1
	! in_log rw 'old path is not preferred anymore' ||
		fail "charon's prefer_best_path moved rw, not the preference" || return 1
	lab_log "returned to $(sa_field rw local) after rw-a had been there $since ms, same IKE_SA"
	check_flavour rw "$rwf" && check_flavour gw "$gwf"
}

# e) `mobike-rs status --json` shows the addresses, the path before and
# after a move, and why the path changed, on both sides.
scenario_status() {
	local rwf=$1 gwf=$2 before after gw_after mode
	setup "sts" "$rwf" "$gwf" "" || return 1
	mode=$(stat -c %a "$LAB_DIR/rw/status.sock" 2>/dev/null)
	[ "$mode" = 600 ] || fail "status socket mode is '$mode', expected 600" || return 1
	before=$(status rw --json) || fail "mobike-rs status failed: $before" || return 1
	lab_log "before: $before"
	case "$before" in
		*'"mobike":{"configured":true,"negotiated":true}'*'"path":{"local":"198.18.1.2:4500","remote":"198.18.1.1:4500"}'*'"local_addresses":['*'"198.18.2.2"'*) ;;
		*) fail "status before the move: $before" || return 1 ;;
	esac
	move_away || return 1
	after=$(status rw --json) || fail "mobike-rs status failed after the move" || return 1
	gw_after=$(status gw --json) || fail "mobike-rs status on gw failed" || return 1
	lab_log "after: $after"
	lab_log "gw after: $gw_after"
	case "$after" in
		*'"path":{"local":"198.18.2.2:4500","remote":"198.18.1.1:4500"}'*'"last_update":{"ago_ms":'*'"reason":"only-path-left","from":{"local":"198.18.1.2:4500"'*'"to":{"local":"198.18.2.2:4500"'*) ;;
		*) fail "rw status after the move: $after" || return 1 ;;
	esac
	printf '%s' "$after" | grep -q '"updates_sent":[1-9]' || fail "rw counted no UPDATE_SA_ADDRESSES" || return 1
	case "$gw_after" in
		*'"path":{"local":"198.18.1.1:4500","remote":"198.18.2.2:4500"}'*'"reason":"return-routability-confirmed"'*'"updates_received":'[1-9]*) ;;
		*) fail "gw status after the move: $gw_after" || return 1 ;;
	esac
	status rw | grep -q "last update: .* (the only path left): 198.18.1.2\[4500\] - 198.18.1.1\[4500\] -> 198.18.2.2\[4500\]" ||
		fail "text status: $(status rw)" || return 1
	check_flavour rw "$rwf" && check_flavour gw "$gwf"
}

# RFC 4555 3.5/3.7 on the wire: after the road warrior's move, the rust
# gateway checks return routability of the new address with its own
# INFORMATIONAL request (COOKIE2 inside) and sends ESP there only after the
# answer. rw drops its first answer to a request of gw (u32: non-ESP marker
# 0, exchange 37, flags I|R), so the window is a whole retransmission long.
# RR_MODE=after shows the check failing (ESP first).
scenario_rr() {
	local rwf=$1 gwf=$2 i
	command -v tcpdump >/dev/null 2>&1 || { lab_log "SKIP: tcpdump missing"; return 77; }
	command -v python3 >/dev/null 2>&1 || { lab_log "SKIP: python3 missing"; return 77; }
	GW_CONF="plugins { mobike-rs { return_routability = ${RR_MODE:-before} } }" \
		setup "rr" "$rwf" "$gwf" "" || return 1
	ip netns exec "$LAB_NS-gw" timeout 60 tcpdump -i gw-a -U --immediate-mode -n -w "$LAB_DIR/gw.pcap" \
		"udp port 4500 or esp" >/dev/null 2>&1 &
	for i in $(seq 1 50); do
		[ "$(stat -c %s "$LAB_DIR/gw.pcap" 2>/dev/null || echo 0)" -ge 24 ] && break
		sleep 0.1
	done
	ip netns exec "$LAB_NS-rw" iptables -A OUTPUT -p udp --dport 4500 -m u32 \
		--u32 "0>>22&0x3C@8=0 && 0>>22&0x3C@28&0xFFFF=0x2528" -m quota --quota 150 -j DROP ||
		fail "iptables u32/quota rule" || return 1
	# traffic both ways during the move: gw answers every ping
	ip netns exec "$LAB_NS-rw" ping -q -i 0.01 -w 12 -W 1 "$LAB_LAN" >/dev/null 2>&1 &
	move_away || return 1
	wait_for 'in_log gw "return routability of .* confirmed"' ||
		fail "gw never confirmed return routability" || return 1
	in_log gw 'generating INFORMATIONAL request [0-9]+ \[ .*N\(COOKIE2\)' ||
		fail "gw sent no INFORMATIONAL request with COOKIE2" || return 1
	sleep 0.5
	ip netns pids "$LAB_NS-gw" | while read -r p; do
		[ "$(cat /proc/"$p"/comm 2>/dev/null)" = tcpdump ] && kill -INT "$p"
	done
	wait_for '! ip netns pids "$LAB_NS-gw" | xargs -r -n1 -I{} cat /proc/{}/comm 2>/dev/null | grep -qx tcpdump'
	python3 tests/lab/ike_pcap.py check-before "$LAB_DIR/gw.pcap" "$LAB_RW_B" >&2 ||
		fail "the wire does not show the check before the move (return_routability = ${RR_MODE:-before})" || return 1
	[ "$(sa_field gw remote)" = "${LAB_RW_B}[4500]" ] || fail "gw not on rw's new address" || return 1
	check_flavour rw "$rwf" && check_flavour gw "$gwf"
}

# An IKE_SA without CHILD_SAs moves at once on the gateway (no IPsec SA
# whose traffic could be redirected, RFC 4555 3.5/5.3); its return
# routability is checked when its first CHILD_SA comes up.
scenario_rrchildless() {
	local rwf=$1 gwf=$2 spis
	setup "rrc" "$rwf" "$gwf" "" || return 1
	swan rw --terminate --child net --timeout "$LAB_WAIT" >/dev/null 2>&1 ||
		fail "could not close the CHILD_SA" || return 1
	wait_for '! swan gw --list-sas 2>/dev/null | grep -q "net:"' ||
		fail "gw still has the CHILD_SA" || return 1
	spis=$(sa_field rw spis)
	ip -n "$LAB_NS-rw" link set rw-a down
	wait_for '[ "$(sa_field gw remote)" = "${LAB_RW_B}[4500]" ]' ||
		fail "gw did not move the childless IKE_SA: $(sa_field gw remote)" || return 1
	in_log gw 'no IPsec SA yet: its return routability is checked when one comes up' ||
		fail "gw did not log why it moved without a check" || return 1
	! in_log gw 'generating INFORMATIONAL request [0-9]+ \[ .*N\(COOKIE2\)' ||
		fail "gw checked return routability of a childless IKE_SA" || return 1
	swan rw --initiate --child net --timeout "$LAB_WAIT" >"$LAB_DIR/initiate2.out" 2>&1 ||
		fail "CHILD_SA on the new path: $(tail -n 2 "$LAB_DIR/initiate2.out")" || return 1
	wait_for 'in_log gw "return routability of .* confirmed"' ||
		fail "gw did not check return routability when the CHILD_SA came up" || return 1
	in_log gw 'first CHILD_SA on a path taken without IPsec SAs' ||
		fail "gw did not log the reason for the check" || return 1
	ping_ok || fail "no traffic through the new CHILD_SA" || return 1
	[ "$(sa_field rw spis)" = "$spis" ] && [ "$(sa_field gw spis)" = "$spis" ] ||
		fail "the IKE_SA did not stay" || return 1
	check_flavour rw "$rwf" && check_flavour gw "$gwf"
}

# RFC 4555 3.9: with nat_prohibition on rw, a move onto the path through the
# lab's NAT router is refused by gw with UNEXPECTED_NAT_DETECTED (rw retries,
# then gives the path up; gw changes nothing) ...
scenario_natprohibited() {
	local rwf=$1 gwf=$2 spis
	setup "nnp" "$rwf" "$gwf" nat "plugins { mobike-rs { nat_prohibition = yes } }" || return 1
	spis=$(sa_field rw spis)
	ip -n "$LAB_NS-rw" link set rw-a down
	wait_for 'in_log rw "peer refused path .*UNEXPECTED_NAT_DETECTED"' ||
		fail "rw did not give the NAT path up" || return 1
	in_log gw 'generating INFORMATIONAL response [0-9]+ \[ .*N\(UNEXPECT_NAT\)' ||
		fail "gw did not answer UNEXPECTED_NAT_DETECTED" || return 1
	[ "$(grep -c 'answering UNEXPECTED_NAT_DETECTED, changing nothing' "$LAB_DIR/gw/charon.log")" -ge 3 ] ||
		fail "rw did not retry with new requests" || return 1
	[ "$(sa_field gw remote)" = "198.18.1.2[4500]" ] ||
		fail "gw moved to $(sa_field gw remote) although the path has a NAT" || return 1
	[ "$(sa_field gw spis)" = "$spis" ] && [ "$(sa_field rw spis)" = "$spis" ] ||
		fail "the IKE_SA did not stay" || return 1
	check_flavour rw "$rwf" && check_flavour gw "$gwf"
}

# ... and the same move without a NAT on the path succeeds.
scenario_natallowed() {
	local rwf=$1 gwf=$2
	setup "nna" "$rwf" "$gwf" "" "plugins { mobike-rs { nat_prohibition = yes } }" || return 1
	move_away || return 1
	! in_log gw 'UNEXPECTED_NAT' || fail "gw refused a path without NAT" || return 1
	check_flavour rw "$rwf" && check_flavour gw "$gwf"
}

# RFC 4555 3.5: gw accepts road warriors only from 198.18.1.0/24; rw's
# move to 198.18.2.2 is answered with UNACCEPTABLE_ADDRESSES and changes
# nothing on gw. A rust rw gives the path up (it has no other).
scenario_unacceptable() {
	local rwf=$1 gwf=$2 spis
	GW_CONF="plugins { mobike-rs { acceptable_peer_addresses = 198.18.1.0/24 } }" \
		setup "una" "$rwf" "$gwf" "" || return 1
	spis=$(sa_field gw spis)
	ip -n "$LAB_NS-rw" link set rw-a down
	wait_for 'in_log gw "generating INFORMATIONAL response [0-9]+ \\[ .*N\\(UNACCEPT_ADDR\\)"' ||
		fail "gw did not answer UNACCEPTABLE_ADDRESSES" || return 1
	in_log gw 'not acceptable \(acceptable_peer_addresses = 198.18.1.0-198.18.1.255\)' ||
		fail "gw did not log why" || return 1
	if [ "$rwf" = rust ]; then
		wait_for 'in_log rw "peer refused path .*UNACCEPTABLE_ADDRESSES"' ||
			fail "rw did not give the path up" || return 1
	fi
	[ "$(sa_field gw remote)" = "198.18.1.2[4500]" ] ||
		fail "gw moved to $(sa_field gw remote)" || return 1
	[ "$(sa_field gw spis)" = "$spis" ] || fail "gw's IKE_SA changed" || return 1
	check_flavour rw "$rwf" && check_flavour gw "$gwf"
}

# f) addresses that cannot carry IKE are neither announced nor probed by a
# rust node (strongSwan issue #299): the gateway's LAN address inside its
# traffic selectors (put on a LAN interface, where charon enumerates it,
# unlike lo), the road warrior's virtual IP, an address on kernel-libipsec's
# TUN device; real second addresses (rw 198.18.2.2, gw 198.18.1.11) still
# are. The stock peer's own "got additional MOBIKE peer address" lines show
# what arrived; the rust node's "not announcing" line says why.
scenario_filter() {
	local rwf=$1 gwf=$2 rust stock real tunaddr tun before got extra extra_dev
	lab_up "flt" "" || return 1
	ip -n "$LAB_NS-gw" addr del 198.18.100.1/32 dev lo
	# a veth pair stands in for the LAN (no dummy module everywhere)
	ip link add lan0 netns "$LAB_NS-gw" type veth peer name lan0p netns "$LAB_NS-gw"
	ip -n "$LAB_NS-gw" addr add 198.18.100.1/24 dev lan0
	ip -n "$LAB_NS-gw" link set lan0p up
	ip -n "$LAB_NS-gw" link set lan0 up
	ip -n "$LAB_NS-gw" addr add 198.18.1.11/24 dev gw-a
	start_node gw "$gwf" || return 1
	start_node rw "$rwf" || return 1
	tunnel_up || fail "tunnel setup: $(tail -n 3 "$LAB_DIR/initiate.out" 2>/dev/null)" || return 1
	ping_ok || fail "no traffic through the new tunnel" || return 1
	check_flavour rw "$rwf" && check_flavour gw "$gwf" || return 1
	got='got additional MOBIKE peer address'
	if [ "$gwf" = rust ]; then
		rust=gw stock=rw real=198.18.1.11 tunaddr=198.18.4.4 extra=198.18.1.12/24 extra_dev=gw-a
		# IKE_AUTH: no CHILD_SA yet, the configured TS already count
		in_log gw 'not announcing .*198\.18\.100\.1 \(inside traffic selector 198\.18\.100\.0\.\.198\.18\.100\.255\)' ||
			fail "gw did not say why it left out its LAN address" || return 1
		in_log rw "$got: 198\.18\.1\.11\$" || fail "rw got no address list with gw's real second address" || return 1
	else
		rust=rw stock=gw real=198.18.2.2 tunaddr=198.18.3.3 extra=198.18.2.3/24 extra_dev=rw-b
		# stock charon (5.9.8) announces its LAN address, inside the selectors
		in_log rw "$got: 198\.18\.100\.1\$" && lab_log "stock gw announced its LAN address 198.18.100.1"
	fi
	# An address on the rust node's TUN device and a new real one: the
	# list changed, so the rust node sends it again (RFC 4555 3.6) on the
	# working path, with the real one and without the tunnel's. (A list
	# that did not change is not sent again.)
	tun=$(ip -n "$LAB_NS-$rust" -o link show | sed -n 's/^[0-9]*: \(ipsec[0-9]*\):.*/\1/p' | head -n 1)
	[ -n "$tun" ] || fail "$rust: no kernel-libipsec TUN device" || return 1
	before=$(grep -c "$got: ${real//./\\.}\$" "$LAB_DIR/$stock/charon.log")
	ip -n "$LAB_NS-$rust" addr add "$tunaddr/32" dev "$tun"
	ip -n "$LAB_NS-$rust" addr add "$extra" dev "$extra_dev"
	wait_for 'in_log "$rust" "not announcing .*${tunaddr//./\\.} \(on tunnel interface $tun\)"' ||
		fail "$rust did not say why it left out $tunaddr on $tun" || return 1
	wait_for '[ "$(grep -c "$got: ${real//./\\.}\$" "$LAB_DIR/$stock/charon.log")" -gt "$before" ]' ||
		fail "$stock got no updated list with $real from $rust" || return 1
	in_log "$stock" "$got: ${extra%/*}" || fail "$stock did not get the new address ${extra%/*}" || return 1
	ip -n "$LAB_NS-$rust" addr del "$extra" dev "$extra_dev"
	! in_log "$stock" "$got: (198\.18\.100\.|198\.18\.200\.|${tunaddr//./\\.}\$)" ||
		fail "$stock got an address of the tunnel: $(grep -E "$got: (198\.18\.100|198\.18\.200|$tunaddr)" "$LAB_DIR/$stock/charon.log")" || return 1
	lab_log "$rust announced $real, not its LAN/virtual/$tun ($tunaddr) addresses"
	[ "$rust" = rw ] || return 0
	# The rust rw probes after rw-a goes down: never towards the gw's LAN
	# address it was told about, which lies inside its own tunnel.
	ip -n "$LAB_NS-rw" link set rw-a down
	wait_for '[ "$(sa_field rw local)" = "198.18.2.2[4500]" ]' ||
		fail "rw's IKE_SA did not move to rw-b: $(sa_field rw local)" || return 1
	ping_ok || fail "traffic did not resume after the move" || return 1
	in_log rw 'checking path 198\.18\.2\.2\[4500\] - 198\.18\.1\.1\[4500\]' ||
		fail "rw did not probe the gateway's real address" || return 1
	! in_log rw 'checking path .* - 198\.18\.100\.1\[' || fail "rw probed into its own tunnel" || return 1
	if in_log rw "$got: 198\.18\.100\.1\$"; then
		in_log rw 'not probing paths .*198\.18\.2\.2 - 198\.18\.100\.1 \(inside traffic selector' ||
			fail "rw kept 198.18.100.1 but did not say why it left it out" || return 1
	fi
	lab_log "rw moved to $(sa_field rw local) - $(sa_field rw remote) without probing 198.18.100.1"
}

# XFRM interfaces and marks (LAB_DATAPLANE=xfrm): the gateway's CHILD_SA
# is bound to an XFRM interface, xfrm42 (if_id 42, the route to the pool
# through it, charon's own routes off) and carries marks (out 0x2a, set on
# the LAN's replies; in 0x2b, set on what arrives on gw-a). The interface
# has an address, 198.18.99.1, that cannot carry IKE: MOBIKE never
# announces it (strongSwan issue #299; the rust gateway says why), so the
# road warrior never probes it. After rw's move the kernel's SAs and
# policies on gw still carry the if_id and the marks (kernel_after).
scenario_xfrmif() {
	local rwf=$1 gwf=$2 gw
	[ "$LAB_DATAPLANE" = xfrm ] || { lab_log "SKIP: XFRM interfaces need LAB_DATAPLANE=xfrm"; return 77; }
	LAB_NAT=
	lab_up "xif" "" || return 1
	gw="$LAB_NS-gw"
	ip -n "$gw" link add xfrm42 type xfrm dev gw-a if_id 42 &&
		ip -n "$gw" addr add 198.18.99.1/32 dev xfrm42 &&
		ip -n "$gw" link set xfrm42 up &&
		ip -n "$gw" route add "$(lab_addr 4 pool)" dev xfrm42 ||
		fail "gw: XFRM interface xfrm42" || return 1
	ip netns exec "$gw" iptables -t mangle -A OUTPUT -s "$(lab_addr 4 lan-net)" -j MARK --set-mark 0x2a &&
		ip netns exec "$gw" iptables -t mangle -A PREROUTING -i gw-a -j MARK --set-mark 0x2b ||
		fail "gw: iptables marks" || return 1
	XFRM_IFID_gw=0x2a XFRM_MARK_OUT_gw=0x2a/0xffffffff XFRM_MARK_IN_gw=0x2b/0xffffffff
	start_node gw "$gwf" "install_routes = no" || return 1
	start_node rw "$rwf" || return 1
	GW_CHILD_CONF="if_id_in = 42
			if_id_out = 42
			mark_in = 0x2b
			mark_out = 0x2a" tunnel_up ||
		fail "tunnel setup: $(tail -n 3 "$LAB_DIR/initiate.out" 2>/dev/null)" || return 1
	ping_ok || fail "no traffic through the new tunnel (xfrm42)" || return 1
	check_flavour rw "$rwf" && check_flavour gw "$gwf" || return 1
	if [ "$gwf" = rust ]; then
		in_log gw 'not announcing .*198\.18\.99\.1 \(on tunnel interface xfrm42\)' ||
			fail "gw did not say why it left out xfrm42's address" || return 1
	fi
	move_away || return 1
	! in_log gw 'generating [A-Z_]+ (request|response) [0-9]+ \[ .*N\(ADD_4_ADDR\)' ||
		fail "gw announced an address: $(grep -E 'generating [A-Z_]+ (request|response) [0-9]+ \[ .*N\(ADD_4_ADDR\)' "$LAB_DIR/gw/charon.log" | head -n 1)" || return 1
	! in_log rw 'got additional MOBIKE peer address: 198\.18\.99\.1|checking path .* - 198\.18\.99\.1\[' ||
		fail "rw learned or probed xfrm42's address" || return 1
	lab_log "gw kept if_id $XFRM_IFID_gw and marks out $XFRM_MARK_OUT_gw, in $XFRM_MARK_IN_gw after the move; xfrm42's 198.18.99.1 never announced"
	check_flavour rw "$rwf" && check_flavour gw "$gwf"
}

# IPv4 -> IPv6 with a transport-mode CHILD_SA (LAB_DATAPLANE=xfrm): its
# SAs carry a selector with the hosts' addresses, so the kernel's SAs must
# change family. strongSwan 5.9.8's kernel-netlink cannot do that in place
# (update_sa keeps the selector's family: EINVAL, and the SAs are gone;
# 6.0.6 sets the family; charon's built-in MOBIKE moves anyway and leaves
# the CHILD_SA half-moved). No CHILD_SA may be left half-moved: mobike-rs
# refuses the IPv6 path on such a strongSwan and says why (the IKE_SA and
# its SAs stay on IPv4 and carry traffic again once rw-a is back), or,
# where the kernel interface can, moves: the SPIs swanctl lists on each
# side are SAs in that side's kernel on the new addresses, and traffic
# passes. (Tunnel mode has no selector on its SAs, which is why v4to6
# works on 5.9.8.)
scenario_transport46() {
	local rwf=$1 gwf=$2 n
	[ "$LAB_DATAPLANE" = xfrm ] || { lab_log "SKIP: transport mode needs LAB_DATAPLANE=xfrm"; return 77; }
	LAB_NAT= LAB_FAMILY=46
	lab_up "t46" "" || return 1
	start_node gw "$gwf" || return 1
	start_node rw "$rwf" || return 1
	cat >"$LAB_DIR/rw/swanctl.conf" <<EOC
connections { gw { remote_addrs = $LAB_GW
	mobike = yes
	local { auth = psk
		id = rw.lab.test }
	remote { auth = psk
		id = gw.lab.test }
	children { host { mode = transport } } } }
secrets { ike-lab { secret = $LAB_PSK } }
EOC
	cat >"$LAB_DIR/gw/swanctl.conf" <<EOC
connections { rw { mobike = yes
	local { auth = psk
		id = gw.lab.test }
	remote { auth = psk
		id = rw.lab.test }
	children { host { mode = transport } } } }
secrets { ike-lab { secret = $LAB_PSK } }
EOC
	swan gw --load-all --file "$LAB_DIR/gw/swanctl.conf" >/dev/null 2>&1 &&
		swan rw --load-all --file "$LAB_DIR/rw/swanctl.conf" >/dev/null 2>&1 ||
		fail "loading the configurations" || return 1
	swan rw --initiate --child host --timeout "$LAB_WAIT" >"$LAB_DIR/initiate.out" 2>&1 ||
		fail "transport-mode CHILD_SA: $(tail -n 3 "$LAB_DIR/initiate.out")" || return 1
	wait_for 'ip netns exec "$LAB_NS-rw" ping -c 1 -W 1 "$LAB_GW" >/dev/null 2>&1' ||
		fail "no traffic through the transport-mode CHILD_SA" || return 1
	ip -n "$LAB_NS-rw" link set rw-a down
	# strongSwan before 6.0.6 cannot move a transport-mode SA to IPv6 in
	# place (kernel-netlink keeps its IPv4 selector): mobike-rs refuses
	# that path and says why; a later strongSwan moves
	if wait_for 'in_log rw "another address family, and this strongSwan cannot move a transport-mode CHILD_SA there in place"'; then
		sleep 2 # what a move would have needed
		[ "$(sa_field rw local)" = "${LAB_RW_A}[4500]" ] && [ "$(sa_field gw remote)" = "${LAB_RW_A}[4500]" ] ||
			fail "refused, but the IKE_SA moved: rw $(sa_field rw local), gw sees $(sa_field gw remote)" || return 1
		for n in rw gw; do
			child_in_kernel "$n" ||
				fail "half-moved CHILD_SA on $n: swanctl lists SPIs $(child_spis "$n" | tr '\n' ' ')but the kernel has: $(xfrm_states "$n" | tr '\n' ';')" || return 1
		done
		lab_log "the move to IPv6 refused: $(grep -o 'not probing paths .*' "$LAB_DIR/rw/charon.log" | tail -n 1)"
		ip -n "$LAB_NS-rw" link set rw-a up
		wait_for 'ip netns exec "$LAB_NS-rw" ping -c 1 -W 1 "$LAB_GW" >/dev/null 2>&1' ||
			fail "no traffic over IPv4 once rw-a is back" || return 1
		lab_log "rw-a back: the transport-mode CHILD_SA passes traffic over IPv4, nothing half-moved"
		check_flavour rw "$rwf" && check_flavour gw "$gwf"
		return
	fi
	wait_for '[ "$(sa_field rw local)" = "${LAB_RW_B}[4500]" ] && [ "$(sa_field gw remote)" = "${LAB_RW_B}[4500]" ]' ||
		fail "the IKE_SA did not move to IPv6: rw $(sa_field rw local), gw sees $(sa_field gw remote)" || return 1
	for n in rw gw; do
		wait_for 'child_in_kernel "$n"' ||
			fail "half-moved CHILD_SA on $n: swanctl lists SPIs $(child_spis "$n" | tr '\n' ' ')but the kernel has: $(xfrm_states "$n" | tr '\n' ';')" || return 1
	done
	wait_for 'ip netns exec "$LAB_NS-rw" ping -c 1 -W 1 "$LAB_GW_B" >/dev/null 2>&1' ||
		fail "no traffic between the hosts over IPv6 after the move" || return 1
	lab_log "transport-mode CHILD_SA on IPv6: rw's kernel $(xfrm_states rw | awk '{ printf "%s%s %s->%s", sep, $1, $2, $3; sep = ", " }')"
	check_flavour rw "$rwf" && check_flavour gw "$gwf"
}

# child_spis NODE: the SPIs of NODE's CHILD_SAs as swanctl lists them.
child_spis() { swan "$1" --list-sas 2>/dev/null | sed -n 's/^ *\(in\|out\) *\([0-9a-f]\{8\}\)[*,].*/\2/p'; }

# child_in_kernel NODE: every SPI of NODE's CHILD_SAs is an ESP SA in its
# kernel, on the addresses of its IKE_SA.
child_in_kernel() {
	local node=$1 l r spi states
	l=$(sa_field "$node" local) r=$(sa_field "$node" remote)
	l=${l%[*} r=${r%[*}
	states=$(xfrm_states "$node")
	[ -n "$(child_spis "$node")" ] || return 1
	for spi in $(child_spis "$node"); do
		printf '%s\n' "$states" | awk -v s="0x$spi" -v l="$l" -v r="$r" \
			'$1 == s && (($2 == l && $3 == r) || ($2 == r && $3 == l)) { ok = 1 } END { exit !ok }' || return 1
	done
}

# A silent path failure: rw-a stays up but nothing arrives on it any more
# (dropped in rw and at gw), traffic keeps leaving. rw has policy routing
# for its second address (from 198.18.2.2 via rt), which only a per-pair
# route lookup sees. The Rust core notices that packets leave and none
# arrive (liveness_timeout, 1 s by default), checks all (local, peer)
# pairs, and moves to the one that answers; traffic resumes. charon's
# built-in MOBIKE never tries another path here: its DPD retransmits on
# the dead path only, then gives up and deletes the IKE_SA.
scenario_silent() {
	local rwf=$1 gwf=$2 spis
	setup "sil" "$rwf" "$gwf" "" || return 1
	ip -n "$LAB_NS-rw" route add 198.18.2.0/24 dev rw-b table 102 &&
		ip -n "$LAB_NS-rw" route add default via 198.18.2.1 dev rw-b table 102 &&
		ip -n "$LAB_NS-rw" rule add from 198.18.2.2 table 102 ||
		fail "policy routing for rw-b" || return 1
	# charon roams on the rule change: let that exchange finish first
	sleep 1
	spis=$(sa_field rw spis)
	ip netns exec "$LAB_NS-rw" ping -q -i 0.1 -w 20 -W 1 "$LAB_LAN" >/dev/null 2>&1 &
	sleep 0.5
	ip netns exec "$LAB_NS-rw" iptables -A INPUT -i rw-a -j DROP &&
		ip netns exec "$LAB_NS-gw" iptables -A INPUT -s 198.18.1.2 -j DROP ||
		fail "iptables" || return 1
	wait_for 'in_log rw "packets leave but none arrived on 198.18.1.2.* checking all paths"' ||
		fail "rw did not notice the silent failure" || return 1
	wait_for '[ "$(sa_field rw local)" = "198.18.2.2[4500]" ]' ||
		fail "rw did not move to rw-b: $(sa_field rw local)" || return 1
	ping_ok || fail "traffic did not resume on rw-b" || return 1
	[ "$(sa_field rw spis)" = "$spis" ] || fail "IKE_SA changed" || return 1
	[ "$(sa_field gw remote)" = "198.18.2.2[4500]" ] || fail "gw not on rw-b: $(sa_field gw remote)" || return 1
	check_flavour rw "$rwf" && check_flavour gw "$gwf"
}

# RFC 4555 3.8, a NAT mapping change with an idle road warrior and no DPD:
# rw moves behind rt's NAT (rw-a down), then only gw's LAN sends (pings to
# rw's virtual IP, rw only answers). rt forgets its mappings and maps to
# new ports, so gw's packets go to a mapping that is gone. rw notices that
# packets stopped arriving (liveness_timeout), sends an INFORMATIONAL with
# NAT-D, sees its mapping changed and sends UPDATE_SA_ADDRESSES; gw moves
# to the new port, traffic passes again, same IKE_SA, and gw did not take
# our NAT-D for a NAT in front of itself.
scenario_natmap() {
	local rwf=$1 gwf=$2 spis id vip log mark remote i pid
	setup "nmp" "$rwf" "$gwf" nat || return 1
	move_away || return 1
	remote=$(sa_field gw remote)
	case "$remote" in
		198.18.1.254\[*) ;;
		*) fail "gateway sees rw at $remote, expected the NAT address 198.18.1.254" || return 1 ;;
	esac
	sa_raw rw | grep -q 'nat-local=yes' || fail "rw does not know it is behind a NAT" || return 1
	spis=$(sa_field rw spis)
	id=$(swan rw --list-sas 2>/dev/null | sed -n 's/^[^ ][^:]*: #\([0-9]*\),.*/\1/p' | head -n 1)
	vip=$(ip -n "$LAB_NS-rw" -o -4 addr show | grep -o '198\.18\.200\.[0-9]*' | head -n 1)
	[ -n "$vip" ] || fail "no virtual IP on rw" || return 1
	wait_for 'ip netns exec "$LAB_NS-gw" ping -c 1 -W 1 -I 198.18.100.1 "$vip" >/dev/null 2>&1' ||
		fail "gw's LAN does not reach rw's virtual IP $vip" || return 1
	# only the gateway's side sends; rw answers (and sends nothing else)
	ip netns exec "$LAB_NS-gw" ping -q -i 0.05 -w 40 -I 198.18.100.1 "$vip" >/dev/null 2>&1 &
	pid=$!
	sleep 2 # whatever a stop of traffic before this started is over
	log="$LAB_DIR/rw/charon.log"
	mark=$(wc -l <"$log")
	ip netns exec "$LAB_NS-rt" iptables -t nat -I POSTROUTING 1 -s 198.18.2.0/24 -o br1 -p udp -j SNAT --to-source 198.18.1.254:40000-40100 &&
		ip netns exec "$LAB_NS-rt" conntrack -F >/dev/null 2>&1 ||
		fail "rt: new SNAT ports and conntrack -F" || { kill "$pid"; return 1; }
	local t0=$SECONDS
	wait_for '[ "$(sa_field gw remote)" != "$remote" ]' ||
		fail "gw still sees rw at $(sa_field gw remote)" || { kill "$pid"; return 1; }
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	tail -n +"$mark" "$log" >"$LAB_DIR/rw.after"
	grep -q 'mobike-rs: packets stopped arriving on 198.18.2.2 - 198.18.1.1 .* checking the NAT mapping' "$LAB_DIR/rw.after" ||
		fail "rw: no NAT mapping check after the change" || return 1
	grep -q 'generating INFORMATIONAL request [0-9]* \[ N(NATD_S_IP) N(NATD_D_IP) \]' "$LAB_DIR/rw.after" ||
		fail "rw: the check was not an INFORMATIONAL with NAT-D" || return 1
	grep -q 'mobike-rs: detected changes in NAT mappings, initiating MOBIKE update' "$LAB_DIR/rw.after" ||
		fail "rw did not see its mapping change" || return 1
	grep -q 'generating INFORMATIONAL request [0-9]* \[ N(UPD_SA_ADDR)' "$LAB_DIR/rw.after" ||
		fail "rw sent no UPDATE_SA_ADDRESSES" || return 1
	case "$(sa_field gw remote)" in
		198.18.1.254\[400[0-9][0-9]\] | 198.18.1.254\[40100\]) ;;
		*) fail "gw sees rw at $(sa_field gw remote), expected one of rt's new ports 40000-40100" || return 1 ;;
	esac
	# traffic in both directions again, on the same IKE_SA
	ip netns exec "$LAB_NS-gw" ping -c 1 -W 2 -I 198.18.100.1 "$vip" >/dev/null 2>&1 ||
		ip netns exec "$LAB_NS-gw" ping -c 1 -W 2 -I 198.18.100.1 "$vip" >/dev/null 2>&1 ||
		fail "gw's LAN does not reach rw after the update" || return 1
	ping_ok 5 || fail "rw does not reach gw's LAN after the update" || return 1
	[ "$(sa_field rw spis)" = "$spis" ] || fail "IKE_SA changed: '$spis' -> '$(sa_field rw spis)'" || return 1
	[ "$(swan rw --list-sas 2>/dev/null | sed -n 's/^[^ ][^:]*: #\([0-9]*\),.*/\1/p' | head -n 1)" = "$id" ] ||
		fail "rw's IKE_SA has a new unique id" || return 1
	[ "$(sa_field rw count)" = 1 ] && [ "$(sa_field gw count)" = 1 ] ||
		fail "more than one IKE_SA" || return 1
	! sa_raw gw | grep -q 'nat-local=yes' ||
		fail "gw took rw's NAT-D for a NAT in front of itself" || return 1
	lab_log "gw now sees rw at $(sa_field gw remote) (within $((SECONDS - t0)) s of the change), same IKE_SA #$id $spis"
	check_flavour rw "$rwf" && check_flavour gw "$gwf"
}

# Issue 24, a silent path failure on a host without source routing: rw's
# first interface, rw-ar, is routed (lab_rwa_routed: no `ip rule` per
# source address; the kernel routes rw-b's address to the gateway out of
# rw-ar, through the more specific route (nosrc) or the lower-metric
# default route (metric)), rp_filter loose as on a laptop. rt black-holes
# rw-ar's path while the interface stays up. The Rust core notices
# (liveness_timeout), checks each pair on its own path (through the
# interface that owns its local address) and moves the same IKE_SA to
# rw-b, installing what sends the tunnel's outer traffic from rw-b's
# address through rw-b (rtnetlink protocol 77: a rule and a route of
# ours); it removes them when the IKE_SA goes, and a charon restarted
# after SIGKILL removes what the killed one left. SILENT_NOSRC_RW_CONF:
# strongswan.conf lines for rw's charon (the option that lets mobike-rs
# install routes and rules, where that is not the default).
SILENT_NOSRC_RW_CONF=${SILENT_NOSRC_RW_CONF:-}
scenario_silentnosrc() { silent_nosrc nosrc "$@"; }
scenario_silentnosrc6() { LAB_FAMILY=6 silent_nosrc nosrc "$@"; }
scenario_silentmetric() { silent_nosrc metric "$@"; }
scenario_silentmetric6() { LAB_FAMILY=6 silent_nosrc metric "$@"; }

# nosrc_traffic: pings from rw through the tunnel for a while (the
# liveness check needs packets that leave); bounded by ping's deadline.
nosrc_traffic() {
	ip netns exec "$LAB_NS-rw" ping -q -i 0.2 -w $((LAB_WAIT * 2)) -W 1 "$LAB_LAN" >/dev/null 2>&1 &
}

# nosrc_move SPIS RWF: black-hole rw-ar's path; the IKE_SA (SPIS) moves
# to rw-b with rw-ar still up, traffic resumes, and rw has a rule and a
# route of ours and no other source rule.
nosrc_move() {
	local spis=$1 rwf=$2 ours others
	nosrc_traffic
	sleep 0.5
	lab_blackhole_rwa || fail "rt: black-holing net-a" || return 1
	lab_link_up rw rw-ar || fail "rw-ar is not up after the black hole" || return 1
	if [ "${rwf%@trixie}" = rust ]; then
		wait_for 'in_log rw "packets leave but none arrived on ${LAB_RW_A}.* checking all paths"' ||
			fail "rw did not notice the silent failure" || return 1
	fi
	wait_for '[ "$(sa_field rw local)" = "${LAB_RW_B}[4500]" ]' ||
		fail "rw's IKE_SA did not move to rw-b: $(sa_field rw local); rw's last checks: $(grep -E 'checking path|mobike-rs: .*path' "$LAB_DIR/rw/charon.log" | tail -n 2 | tr '\n' ';')" || return 1
	lab_link_up rw rw-ar || fail "rw-ar went down: the path must have failed silently" || return 1
	ping_ok || fail "traffic did not resume on rw-b" || return 1
	[ -n "$spis" ] && [ "$(sa_field rw spis)" = "$spis" ] ||
		fail "IKE_SA changed: '$spis' -> '$(sa_field rw spis)'" || return 1
	wait_for '[ "$(sa_field gw remote)" = "${LAB_RW_B}[4500]" ]' ||
		fail "gw sees rw at $(sa_field gw remote), expected ${LAB_RW_B}[4500]" || return 1
	[ "$(sa_field rw count)" = 1 ] && [ "$(sa_field gw count)" = 1 ] ||
		fail "more than one IKE_SA after the move" || return 1
	ours=$(lab_routing_ours rw)
	printf '%s\n' "$ours" | grep -q '^rule ' && printf '%s\n' "$ours" | grep -q '^route ' ||
		fail "rw moved but has no rule and route of protocol 77: '$ours'" || return 1
	others=$(lab_source_rules rw | grep -v ' proto 77')
	[ -z "$others" ] || fail "rw has source rules not of ours: $others" || return 1
	lab_log "moved: $LAB_RW_A -> $LAB_RW_B, same IKE_SA $spis, rw-ar up; ours: $(printf '%s' "$ours" | tr '\n' ';')"
}

silent_nosrc() {
	local mode=$1 rwf=$2 gwf=$3 spis rules via pid
	LAB_NAT=
	lab_up "sn$mode" "" || return 1
	lab_rwa_routed "$mode" || fail "lab: rw-ar on net-a ($mode)" || return 1
	lab_rw_laptop || fail "rw: rp_filter" || return 1
	start_node gw "$gwf" || return 1
	start_node rw "$rwf" ${SILENT_NOSRC_RW_CONF:+"$SILENT_NOSRC_RW_CONF"} || return 1
	tunnel_up || fail "tunnel setup: $(tail -n 3 "$LAB_DIR/initiate.out" 2>/dev/null)" || return 1
	[ "$(sa_field rw state)" = ESTABLISHED ] || fail "IKE_SA not established" || return 1
	ping_ok || fail "no traffic through the new tunnel" || return 1
	check_flavour rw "$rwf" && check_flavour gw "$gwf" || return 1
	# the host as issue 24 has it: no source rule, the gateway routed out
	# of rw-ar whatever the source address
	rules=$(lab_source_rules rw)
	[ -z "$rules" ] || fail "rw routes by source address: $rules" || return 1
	[ -z "$(lab_routing_ours rw)" ] || fail "rw has routing of ours before any move: $(lab_routing_ours rw)" || return 1
	via=$(ip -n "$LAB_NS-rw" route get "$LAB_GW" from "$LAB_RW_B" 2>&1)
	case "$via" in
		*" dev rw-ar "*) ;;
		*) fail "the lab routes rw-b's address to the gateway not out of rw-ar: $via" || return 1 ;;
	esac
	[ "$(sa_field rw local)" = "${LAB_RW_A}[4500]" ] ||
		fail "rw not on rw-ar before the failure: $(sa_field rw local)" || return 1
	spis=$(sa_field rw spis)
	if [ "$LAB_DATAPLANE" = xfrm ]; then kernel_before || return 1; fi
	nosrc_move "$spis" "$rwf" || return 1
	# the kernel's SAs and policies followed in place (same SPIs, no NAT)
	if [ "$LAB_DATAPLANE" = xfrm ]; then kernel_after no || return 1; fi
	# the IKE_SA goes: nothing of ours stays
	swan rw --terminate --ike gw --timeout "$LAB_WAIT" >/dev/null 2>&1 ||
		fail "swanctl --terminate --ike gw" || return 1
	wait_for '[ -z "$(lab_routing_ours rw)" ]' ||
		fail "left behind after the IKE_SA was deleted: $(lab_routing_ours rw | tr '\n' ';')" || return 1
	lab_log "IKE_SA deleted: nothing of protocol 77 left"
	# once more, and charon is killed while moved
	lab_blackhole_rwa off || fail "rt: lifting the black hole" || return 1
	swan rw --initiate --child net --timeout "$LAB_WAIT" >"$LAB_DIR/initiate2.out" 2>&1 ||
		fail "second tunnel setup: $(tail -n 3 "$LAB_DIR/initiate2.out")" || return 1
	ping_ok || fail "no traffic through the second tunnel" || return 1
	[ "$(sa_field rw local)" = "${LAB_RW_A}[4500]" ] ||
		fail "the second IKE_SA is not on rw-ar: $(sa_field rw local)" || return 1
	nosrc_move "$(sa_field rw spis)" "$rwf" || return 1
	pid=$(lab_charon_pid rw) || fail "rw's charon pid" || return 1
	disown "$pid" 2>/dev/null # charon_start's job: no "Killed" line from bash
	kill -KILL "$pid"
	wait_for '! kill -0 "$pid" 2>/dev/null' || fail "rw's charon ($pid) survived SIGKILL" || return 1
	[ -n "$(lab_routing_ours rw)" ] ||
		fail "nothing of ours left after SIGKILL: the restart would prove nothing" || return 1
	rm -f "$LAB_DIR/rw/charon.vici" "$LAB_DIR/rw/status.sock"
	start_node rw "$rwf" ${SILENT_NOSRC_RW_CONF:+"$SILENT_NOSRC_RW_CONF"} || fail "restarting rw's charon" || return 1
	wait_for '[ -z "$(lab_routing_ours rw)" ]' ||
		fail "charon restarted after SIGKILL, left behind: $(lab_routing_ours rw | tr '\n' ';')" || return 1
	lab_log "charon killed while moved and restarted: nothing of protocol 77 left"
}

# Reasons to skip everything, checked once.
skip_reason() {
	local why
	why=$(lab_missing)
	[ -z "$why" ] || { echo "$why"; return; }
	[ -f "$LAB_LIB" ] || { echo "library not built: $LAB_LIB (make build)"; return; }
	[ -x "$LAB_CLI" ] || { echo "status command not built: $LAB_CLI (make build)"; return; }
	nm -D --defined-only "$LAB_LIB" 2>/dev/null | grep -q ' ike_mobike_create$' ||
		{ echo "$LAB_LIB was built without the charon adapter (STRONGSWAN_SRC unset)"; return; }
}

# Sourced (tests/memcheck.sh): the scenarios above, nothing run.
[ "${BASH_SOURCE[0]}" = "$0" ] || return 0

if [ "$LAB_DATAPLANE" = xfrm ]; then
	SCENARIOS=("${XFRM_SCENARIOS[@]}")
	EXTRA_SCENARIOS=()
fi
if [ "${1:-}" = -l ]; then
	printf '%s\n' "${SCENARIOS[@]}" "${EXTRA_SCENARIOS[@]}"
	exit 0
fi
selected=("${SCENARIOS[@]}")
if [ $# -gt 0 ]; then
	selected=()
	for want in "$@"; do
		found=0
		for s in "${SCENARIOS[@]}" "${EXTRA_SCENARIOS[@]}"; do
			if [ "$s" = "$want" ] || [ "${s// /-}" = "$want" ]; then
				selected+=("$s")
				found=1
			fi
		done
		# a misspelt name must not pass as "0 passed, 0 failed"
		[ $found = 1 ] || { echo "interop: no scenario '$want' (LAB_DATAPLANE=$LAB_DATAPLANE; tests/interop.sh -l lists them)" >&2; exit 2; }
	done
fi

# LAB_DATAPLANE=xfrm outside the VM: this script again, inside one boot of
# it, with the selected scenarios and the lab's settings.
if [ "$LAB_DATAPLANE" = xfrm ] && [ -z "${MOBIKE_RS_IN_VM:-}" ] && [ ${#selected[@]} -gt 0 ]; then
	reason=$(skip_reason)
	case "$reason" in
		"the kernel has no ESP"*) reason= ;; # the VM's has
	esac
	if [ -z "$reason" ]; then
		vars=(LAB_DATAPLANE=xfrm MOBIKE_RS_IN_VM=1 SUITE_TIMEOUT="$SUITE_TIMEOUT")
		for v in $(compgen -e); do
			case "$v" in
				LAB_* | MOBIKE_RS_* | RR_MODE) vars+=("$v=${!v}") ;;
			esac
		done
		names=()
		for s in "${selected[@]}"; do names+=("${s// /-}"); done
		out=$(mktemp)
		keep=
		[ -n "${MOBIKE_RS_KEEP_LOGS:-}" ] && keep=$PWD/lab-runs/xfrm-$(date +%Y%m%d-%H%M%S)
		VM_TIMEOUT=${VM_TIMEOUT:-$((SUITE_TIMEOUT + 600))} VM_KEEP=$keep \
			tests/lab/vm.sh run env "${vars[@]}" tests/interop.sh "${names[@]}" | tee "$out"
		rc=${PIPESTATUS[0]}
		[ "$rc" = 2 ] && reason=$(sed -n 's/^vm: cannot boot: //p' "$out" | tail -n 1)
		rm -f "$out"
		[ "$rc" = 2 ] && [ -n "$reason" ] || exit "$rc"
	fi
	for s in "${selected[@]}"; do echo "SKIP ${s// /-}: $reason"; done
	echo "interop: 0 passed, 0 failed, ${#selected[@]} skipped"
	exit 0
fi

passed=0 failed=0 skipped=0
reason=$(skip_reason)
start=$SECONDS
for s in "${selected[@]}"; do
	name=${s// /-}
	if [ -n "$reason" ]; then
		echo "SKIP $name: $reason"
		skipped=$((skipped + 1))
		continue
	fi
	if [ $((SECONDS - start)) -ge "$SUITE_TIMEOUT" ]; then
		echo "FAIL $name: suite time limit of ${SUITE_TIMEOUT}s reached"
		failed=$((failed + 1))
		continue
	fi
	read -r kind rwf gwf <<<"$s"
	missing=
	for suite in $(grep -o '@[a-z]*' <<<"$s" | tr -d @ | sort -u); do
		if [ ! -x "$(suite_root "$suite")/usr/lib/ipsec/charon" ] || [ ! -f "$(suite_lib "$suite")" ]; then
			missing="no $suite tree or library for it (make build SUITE=$suite)"
		fi
	done
	if [ -n "$missing" ]; then
		echo "SKIP $name: $missing"
		skipped=$((skipped + 1))
		continue
	fi
	t0=$SECONDS
	# A subshell per scenario: its trap removes its lab whatever happens,
	# and `timeout` bounds it.
	(
		trap 'lab_save "$name" $?; lab_down' EXIT
		trap 'exit 1' INT TERM
		"scenario_$kind" "$rwf" "$gwf"
	)
	rc=$?
	if [ $rc = 77 ]; then
		echo "SKIP $name: a tool it needs is missing (see above)"
		skipped=$((skipped + 1))
	else
		tally "$name" $rc "$t0"
	fi
done
echo "interop: $passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
