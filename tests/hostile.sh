#!/usr/bin/env bash
# A hostile MOBIKE peer against an honest charon: what the honest side must
# do about each case of the test-only library (cargo feature hostile-peer,
# src/hostile.rs), checked end to end in the netns lab.
#
# The hostile peer is the road warrior (rw) with target/hostile's library
# and MOBIKE_RS_HOSTILE=<case>; the honest side is the gateway (gw) with the
# release library (for cookie2-wrong-echo: the hostile gateway and an
# honest road warrior). It moves by taking its preferred interface down,
# which makes it send UPDATE_SA_ADDRESSES, the message each case spoils.
# A second road warrior (r2, stock charon) keeps its own IKE_SA to gw.
#
# For every case: the honest charon still runs at the end, its VmRSS grew
# by at most RSS_LIMIT_KB, r2's tunnel still passes traffic, and the case's
# own expected outcome was observed (see the expect_* functions).
# `stock-*` lines run the same case against a stock charon as the honest
# side and are information only (INFO, not counted).
#
# Usage: tests/hostile.sh [TEST...]   (-l lists them)
# Needs root, charon, swanctl, ip, iptables (u32 match), ping and both
# libraries (make hostile builds them); otherwise every test is a SKIP.
set -u
cd "$(dirname "$0")/.."
RELEASE_LIB=${MOBIKE_RS_LIB:-$PWD/target/release/libmobike_rs.so}
HOSTILE_LIB=${MOBIKE_RS_HOSTILE_LIB:-$PWD/target/hostile/release/libmobike_rs.so}
MOBIKE_RS_LIB=$RELEASE_LIB
. tests/lab/lib.sh
. tests/lab/hostile-lib.sh

RSS_LIMIT_KB=${RSS_LIMIT_KB:-20480}
# The return routability check may reach the victim a few times (answer and
# retransmissions), never the traffic.
VICTIM_IKE_MAX=${VICTIM_IKE_MAX:-10}
SUITE_TIMEOUT=${SUITE_TIMEOUT:-900}

TESTS=(
	release-clean
	nat-lie
	bomb
	addresses-1000
	addresses-16
	cookie2-0
	cookie2-7
	cookie2-65
	cookie2-1000
	cookie2-wrong-echo
	bad-lengths
	bad-lengths-mobike
	stock-nat-lie
	stock-bomb
	stock-cookie2-7
	stock-cookie2-wrong-echo
	stock-bad-lengths-mobike
)

fail() {
	if [ -n "${INFO_ONLY:-}" ]; then
		lab_log "not observed: $*"
		return 1
	fi
	lab_log "FAILED CHECK: $*"
	show_logs
	for n in r2; do
		[ -f "$LAB_DIR/$n/charon.log" ] && { echo "  --- $n charon.log (last 10 lines)" >&2; tail -n 10 "$LAB_DIR/$n/charon.log" | sed 's/^/  | /' >&2; }
	done
	return 1
}

# The release library and packages never carry the hostile peer.
test_release_clean() {
	local n
	[ -f "$RELEASE_LIB" ] || fail "no release library $RELEASE_LIB" || return 1
	n=$(grep -ac HOSTILE "$RELEASE_LIB")
	[ "$n" = 0 ] || fail "$RELEASE_LIB contains 'HOSTILE' ($n lines): built with hostile-peer?" || return 1
	# The check can see it: the hostile build has the string.
	[ "$(grep -ac 'mobike-rs HOSTILE' "$HOSTILE_LIB")" -gt 0 ] ||
		fail "$HOSTILE_LIB lacks 'mobike-rs HOSTILE': the check would see nothing" || return 1
	! grep -Eq '^default *=.*hostile' Cargo.toml || fail "hostile-peer is a default feature" || return 1
	! grep -rqs 'hostile' packaging/ scripts/ .ci/ || fail "packaging or CI mentions hostile: $(grep -rls hostile packaging/ scripts/ .ci/)" || return 1
	# Only the `hostile` target of the Makefile may name the feature.
	n=$(grep -c 'features hostile-peer' Makefile)
	[ "$(sed -n '/^hostile[a-z-]*:/,/^$/p' Makefile | grep -c 'features hostile-peer')" = "$n" ] ||
		fail "a Makefile target other than 'hostile' uses --features hostile-peer" || return 1
	lab_log "release library: 0 'HOSTILE' strings; hostile library: $(grep -ac 'mobike-rs HOSTILE' "$HOSTILE_LIB")"
}

# Log lines name their IKE_SA (<rw|1>): the patterns below tell rw's
# exchanges from r2's (settings sections merge with lib.sh's filelog).
IKE_NAME_LOG='filelog { lab { ike_name = yes } }'

# start NODE hostile|rust|stock: hostile = the test library with $CASE.
start() {
	local node=$1 what=$2
	if [ "$what" = hostile ]; then
		LAB_LIB=$HOSTILE_LIB
		export MOBIKE_RS_HOSTILE=$CASE
		charon_start "$node" rust "$IKE_NAME_LOG"
		local rc=$?
		unset MOBIKE_RS_HOSTILE
		LAB_LIB=$RELEASE_LIB
		return $rc
	fi
	LAB_LIB=$RELEASE_LIB
	charon_start "$node" "$what" "$IKE_NAME_LOG"
}

# run_case CASE HONEST_FLAVOUR: lab, tunnels, the move, the checks.
run_case() {
	CASE=$1
	local hf=$2 honest=gw hostile=rw rwf gwf lab_extra="" pid rss0 rss1
	if [ "$CASE" = cookie2-wrong-echo ]; then
		honest=rw hostile=gw rwf=$hf gwf=hostile
	else
		rwf=hostile gwf=$hf
	fi
	[ "$CASE" = bomb ] && lab_extra=victim-on-rw
	hostile_lab_up "h${CASE//[^a-z0-9]/}" $lab_extra || fail "lab setup" || return 1
	start gw "$gwf" || fail "gw did not start" || return 1
	start rw "$rwf" || fail "rw did not start" || return 1
	start r2 stock || fail "r2 did not start" || return 1
	RW_EXTRA=""
	# charon hands a MOBIKE request to ike_mobike's transmit one packet at a
	# time and sends only the first of its IKE fragments
	# (task_manager_v2.c retransmit): 1000 addresses go in one datagram.
	case "$CASE" in addresses-*) RW_EXTRA="fragmentation = no" ;; esac
	hostile_tunnels_up || fail "tunnel setup: $(tail -n 3 "$LAB_DIR"/initiate-*.out 2>/dev/null)" || return 1
	ping_from rw && ping_from r2 || fail "no traffic through the new tunnels" || return 1
	pid=$(charon_pid "$honest") || fail "no charon pid on $honest" || return 1
	rss0=$(rss_kb "$pid")
	GW_REMOTE0=$(remote_of gw rw.lab.test)
	RW_VIP=$(vip_of rw)
	[ "$GW_REMOTE0" = "198.18.1.2[4500]" ] || fail "gw sees rw at '$GW_REMOTE0' before the move" || return 1
	GW_SAS0=$(swan gw --list-sas 2>/dev/null)
	[ "$hf" = rust ] && [ "$honest" = gw ] && GW_PEERS0=$(gw_rw_peers)
	VICTIM_IKE0=$(victim_count ike) VICTIM_ESP0=$(victim_count esp)

	ip -n "$LAB_NS-rw" link set rw-a down
	wait_for in_log "$hostile" "'mobike-rs HOSTILE: '" ||
		fail "the hostile peer never applied $CASE (no 'mobike-rs HOSTILE' line on $hostile)" || return 1
	lab_log "$hostile: $(grep -m1 'mobike-rs HOSTILE' "$LAB_DIR/$hostile/charon.log" | sed 's/^.*mobike-rs HOSTILE/mobike-rs HOSTILE/')"

	"expect_${CASE//-/_}" "$hf" || return 1

	# Common to every case.
	kill -0 "$pid" 2>/dev/null && [ "$(charon_pid "$honest")" = "$pid" ] ||
		fail "the honest charon ($honest, pid $pid) is gone" || return 1
	rss1=$(rss_kb "$pid")
	lab_log "honest charon ($honest) VmRSS: ${rss0} kB before, ${rss1} kB after ($((rss1 - rss0)) kB)"
	[ $((rss1 - rss0)) -le "$RSS_LIMIT_KB" ] ||
		fail "VmRSS grew by $((rss1 - rss0)) kB (limit $RSS_LIMIT_KB kB)" || return 1
	ping_from r2 || fail "r2's unrelated IKE_SA no longer passes traffic" || return 1
	[ "$(ike_count r2 gw.lab.test)" = 1 ] && [ "$(ike_count gw r2.lab.test)" = 1 ] ||
		fail "r2's IKE_SA is not there once on both sides" || return 1
	lab_log "r2's unrelated tunnel passes traffic"
}

# The peer addresses of gw's IKE_SA with rw, from `mobike-rs status`.
gw_rw_peers() {
	status gw 2>/dev/null | awk '/^[^ ]/ { f = ($0 ~ /^rw\[/) } f && sub(/^  peer addresses: /, "")' | head -n1
}

# gw's IKE_SA with rw did not move.
not_moved() {
	local now
	now=$(remote_of gw rw.lab.test)
	[ "$now" = "$GW_REMOTE0" ] || fail "gw's IKE_SA moved: $GW_REMOTE0 -> $now" || return 1
	[ "$(ike_count gw rw.lab.test)" = 1 ] || fail "gw no longer has rw's IKE_SA" || return 1
	lab_log "gw's IKE_SA with rw stays at $now"
}

# RFC 4555 3.9: a NO_NATS_ALLOWED that does not match the IP header is
# answered with UNEXPECTED_NAT_DETECTED, and nothing moves.
expect_nat_lie() {
	wait_for in_log gw "'<rw\|[0-9]+> parsed INFORMATIONAL request [0-9]+ \[.*N\(NO_NATS\)'" ||
		fail "gw never received the NO_NATS_ALLOWED request" || return 1
	wait_for in_log gw "'<rw\|[0-9]+> generating INFORMATIONAL response [0-9]+ \[.*N\(UNEXPECT_NAT\)'" ||
		fail "gw did not answer UNEXPECTED_NAT_DETECTED: $(log_after gw 'N\(NO_NATS\)' | grep -E 'mobike-rs: (received|updating)|generating INFORMATIONAL response' | head -n 3 | cut -d' ' -f3- | tr '\n' ';')" || return 1
	lab_log "gw: $(grep -Em1 '<rw\|[0-9]+> generating INFORMATIONAL response [0-9]+ \[.*N\(UNEXPECT_NAT\)' "$LAB_DIR/gw/charon.log" | cut -d' ' -f4-)"
	not_moved
}

# RFC 4555 5.3, 3.5: an update from an address the peer cannot receive at
# moves no traffic there: with return_routability = before the CHILD_SAs
# move only after the check at the new address is answered.
expect_bomb() {
	local esp0 esp1 i v_ike v_esp after
	wait_for in_log gw "'<rw\|[0-9]+> parsed INFORMATIONAL request [0-9]+ \[.*N\(UPD_SA_ADDR\)'" ||
		fail "gw never received the forged UPDATE_SA_ADDRESSES" || return 1
	[ -n "$RW_VIP" ] || fail "no virtual IP of rw known" || return 1
	# Traffic from the gateway's LAN to rw: ESP goes wherever gw's CHILD_SA
	# points. Send until gw has sent at least 3 ESP packets.
	esp0=$(gw_esp_out)
	for i in $(seq 1 "$LAB_WAIT"); do
		ip netns exec "$LAB_NS-gw" ping -c 1 -W 1 -I 198.18.100.1 "$RW_VIP" >/dev/null 2>&1
		esp1=$(gw_esp_out)
		[ $((esp1 - esp0)) -ge 3 ] && break
	done
	v_ike=$(($(victim_count ike) - VICTIM_IKE0))
	v_esp=$(($(victim_count esp) - VICTIM_ESP0))
	lab_log "gw sent $((esp1 - esp0)) ESP packets; the victim 198.18.3.3 received $v_ike IKE and $v_esp ESP packets"
	lab_log "gw's IKE_SA with rw: $GW_REMOTE0 -> $(remote_of gw rw.lab.test)"
	diff <(printf '%s\n' "$GW_SAS0" | grep -E '^    (in|out) |^  net:' | awk '{print $1, $2}') \
		<(swan gw --list-sas 2>/dev/null | grep -E '^    (in|out) |^  net:' | awk '{print $1, $2}') >/dev/null &&
		lab_log "gw's CHILD_SAs unchanged (same SPIs)" || lab_log "gw's CHILD_SAs changed"
	[ $((esp1 - esp0)) -ge 3 ] || fail "gw sent no ESP towards rw, nothing to measure" || return 1
	# The return routability check itself: an INFORMATIONAL request of gw's
	# with a COOKIE2, sent to the claimed address.
	after=$(log_after gw "<rw\\|[0-9]+> parsed INFORMATIONAL request [0-9]+ \\[.*N\\(UPD_SA_ADDR\\)")
	printf '%s\n' "$after" | grep -qE '<rw\|[0-9]+> generating INFORMATIONAL request [0-9]+ \[.*N\(COOKIE2\)' &&
		printf '%s\n' "$after" | grep -qE '<rw\|[0-9]+> sending packet: from [^ ]+ to 198\.18\.3\.3\[' ||
		fail "gw sent no return routability check (INFORMATIONAL request with COOKIE2) to 198.18.3.3" || return 1
	lab_log "gw's check: $(printf '%s\n' "$after" | grep -Em1 '<rw\|[0-9]+> generating INFORMATIONAL request [0-9]+ \[.*N\(COOKIE2\)' | cut -d' ' -f4-)"
	! printf '%s\n' "$after" | grep -qE '<rw\|[0-9]+> (queueing CHILD_REKEY|generating CREATE_CHILD_SA request)' ||
		fail "gw moved or rekeyed its CHILD_SA towards the unchecked address" || return 1
	[ "$v_esp" = 0 ] || fail "the victim received $v_esp ESP packets: gw moved its CHILD_SA to an unchecked address" || return 1
	[ "$v_ike" -le "$VICTIM_IKE_MAX" ] || fail "the victim received $v_ike IKE packets (at most $VICTIM_IKE_MAX)" || return 1
}

# At most 16 peer addresses are kept (MAX_PEER_ADDRESSES), or charon itself
# refuses the message: more than charon.max_packet (10000 octets; 1000
# addresses are 12 kB), or more than 20 notifies (message.c's limit per
# INFORMATIONAL, answered with INVALID_SYNTAX). expect_addresses N [core]:
# with `core`, the message passes charon and the core's bound must hold
# (16 addresses plus the source address: one dropped).
expect_addresses() {
	local want=${2:-} peers n
	wait_for "in_log gw 'fragmented IKE message is too large|receive buffer too small|payload of type NOTIFY more than|dropping [0-9]+ peer addresses beyond the limit'" ||
		fail "gw neither refused the message nor bounded the address set" || return 1
	if in_log gw 'fragmented IKE message is too large|receive buffer too small|payload of type NOTIFY more than'; then
		[ "$want" != core ] || fail "charon refused a message of $1 addresses that fits max_packet" || return 1
		lab_log "charon refused the message: $(grep -Em1 'fragmented IKE message is too large|receive buffer too small|payload of type NOTIFY more than' "$LAB_DIR/gw/charon.log" | cut -d' ' -f2-)"
		! in_log gw 'got additional MOBIKE peer address: 198\.19\.' || fail "yet the core read addresses of it" || return 1
		not_moved || return 1
	else
		peers=$(gw_rw_peers)
		n=$(printf '%s\n' "$peers" | tr ',' '\n' | grep -c .)
		lab_log "the core kept $n peer addresses: $(grep -Em1 'dropping [0-9]+ peer addresses' "$LAB_DIR/gw/charon.log" | cut -d' ' -f4-)"
		[ "$n" -ge 1 ] && [ "$n" -le 16 ] || fail "gw keeps $n peer addresses: $peers" || return 1
	fi
}
expect_addresses_1000() { expect_addresses 1000; }
expect_addresses_16() { expect_addresses 16 core; }

# RFC 4555 4.2.5: COOKIE2 is 8 to 64 octets. One of another length is
# logged and not echoed; the IKE_SA and the unrelated one survive.
expect_cookie2() {
	local n=$1 resp
	wait_for in_log gw "'ignoring malformed COOKIE2 notify \(length $n\)'" ||
		fail "gw did not log the COOKIE2 of $n octets as malformed" || return 1
	wait_for "log_after gw 'ignoring malformed COOKIE2 notify' | grep -qE '<rw\|[0-9]+> generating INFORMATIONAL response'" ||
		fail "gw did not answer the request" || return 1
	resp=$(log_after gw 'ignoring malformed COOKIE2 notify' | grep -Em1 '<rw\|[0-9]+> generating INFORMATIONAL response')
	lab_log "gw: ${resp#*> }"
	case "$resp" in
		*COOKIE2*) fail "gw echoed the malformed COOKIE2" || return 1 ;;
	esac
	[ "$(ike_count gw rw.lab.test)" = 1 ] || fail "gw's IKE_SA with rw is gone" || return 1
}
expect_cookie2_0() { expect_cookie2 0; }
expect_cookie2_7() { expect_cookie2 7; }
expect_cookie2_65() { expect_cookie2 65; }
expect_cookie2_1000() { expect_cookie2 1000; }

# RFC 4555 3.5: an echoed COOKIE2 that differs from the one sent closes the
# IKE_SA (the honest side is the road warrior here).
expect_cookie2_wrong_echo() {
	wait_for in_log rw "'COOKIE2 mismatch, closing IKE_SA'" ||
		fail "rw did not detect the wrong COOKIE2 echo" || return 1
	wait_for '[ "$(ike_count rw gw.lab.test)" = 0 ]' ||
		fail "rw still has the IKE_SA after the mismatch" || return 1
	lab_log "rw: COOKIE2 mismatch, IKE_SA closed"
}

# charon's parser checks ADDITIONAL_IP4/6_ADDRESS lengths itself: the
# whole request is refused with INVALID_SYNTAX before MOBIKE sees it (and
# charon closes that IKE_SA, task_manager_v2.c send_invalid_syntax). No
# move happens, the unrelated IKE_SA stays.
expect_bad_lengths() {
	wait_for in_log gw "'invalid notify data length for ADDITIONAL_IP[46]_ADDRESS'" ||
		fail "gw did not refuse the malformed address notifies" || return 1
	wait_for in_log gw "'<rw\|[0-9]+> generating INFORMATIONAL response [0-9]+ \[ N\(INVAL_SYN\) \]'" ||
		fail "gw did not answer INVALID_SYNTAX" || return 1
	lab_log "gw: $(grep -Em1 'invalid notify data length' "$LAB_DIR/gw/charon.log" | cut -d' ' -f3-)"
	! in_log gw 'updating addresses|ignoring malformed' ||
		fail "MOBIKE acted on a refused message" || return 1
	local now
	now=$(remote_of gw rw.lab.test)
	[ -z "$now" ] || [ "$now" = "$GW_REMOTE0" ] || fail "gw's IKE_SA moved to $now" || return 1
	lab_log "gw's IKE_SA with rw: ${now:-closed by charon after INVALID_SYNTAX}, never moved"
}

# What reaches MOBIKE: the malformed notifies are logged (the core logs one
# line per kind of bad notify, so a peer cannot flood the log: at least one,
# at most three lines, each naming one of them with its length), nothing
# changes, the IKE_SA stays.
expect_bad_lengths_mobike() {
	local hf=$1 peers lines n
	local known='ignoring malformed (UPDATE_SA_ADDRESSES notify \(length 4\)|NO_ADDITIONAL_ADDRESSES notify \(length 4\)|NO_NATS_ALLOWED notify \(length 11\))'
	wait_for in_log gw "'<rw\|[0-9]+> mobike-rs: ignoring malformed'" ||
		fail "gw logged none of the malformed notifies" || return 1
	wait_for "log_after gw '<rw\|[0-9]+> mobike-rs: ignoring malformed' | grep -qE '<rw\|[0-9]+> generating INFORMATIONAL response'" ||
		fail "gw did not answer the request" || return 1
	lines=$(grep -E '<rw\|[0-9]+> mobike-rs: ignoring malformed' "$LAB_DIR/gw/charon.log")
	n=$(printf '%s\n' "$lines" | grep -c .)
	[ "$(printf '%s\n' "$lines" | grep -cE "$known")" = "$n" ] && [ "$n" -le 3 ] ||
		fail "unexpected malformed-notify lines: $lines" || return 1
	lab_log "gw logged $n line(s) for the 3 malformed notifies: $(printf '%s\n' "$lines" | sed 's/.*ignoring/ignoring/' | tr '\n' ';')"
	not_moved || return 1
	if [ "$hf" = rust ]; then
		# the exchange of the malformed notifies replaced nothing
		log_after gw '<rw\|[0-9]+> mobike-rs: ignoring malformed' |
			awk '/<rw\|[0-9]+> generating INFORMATIONAL response/ { exit } { print }' |
			grep -q 'peer address set replaced' &&
			{ fail "the request with the malformed notifies replaced gw's peer addresses" || return 1; }
		peers=$(gw_rw_peers)
		if [ "$peers" = "$GW_PEERS0" ]; then
			lab_log "gw's peer addresses unchanged: $peers"
		else
			# rw's own later roam (its kernel sees rw-a go in steps) may
			# send a well-formed address list: that one may replace them
			log_after gw '<rw\|[0-9]+> mobike-rs: ignoring malformed' |
				awk '/<rw\|[0-9]+> generating INFORMATIONAL response/ { seen = 1; next }
					seen && /<rw\|[0-9]+> parsed INFORMATIONAL request/ { later = 1 }
					later' | grep -q 'peer address set replaced' ||
				fail "gw's peer addresses changed: '$GW_PEERS0' -> '$peers'" || return 1
			lab_log "gw's peer addresses unchanged by the malformed request; a later well-formed address list from rw set them to $peers"
		fi
	fi
}

skip_reason() {
	local why
	why=$(lab_missing)
	[ -z "$why" ] || { echo "$why"; return; }
	local lib
	for lib in "$RELEASE_LIB" "$HOSTILE_LIB"; do
		[ -f "$lib" ] || { echo "library not built: $lib (make hostile)"; return; }
		nm -D --defined-only "$lib" 2>/dev/null | grep -q ' ike_mobike_create$' ||
			{ echo "$lib was built without the charon adapter (STRONGSWAN_SRC unset)"; return; }
	done
	[ -x "$LAB_CLI" ] || { echo "status command not built: $LAB_CLI (make build)"; return; }
	ip netns add "mrs$$-u32" 2>/dev/null || { echo "cannot create a network namespace"; return; }
	ip netns exec "mrs$$-u32" iptables -A INPUT -p udp -m u32 --u32 '0>>22&0x3C@8=0' 2>/dev/null ||
		{ ip netns del "mrs$$-u32"; echo "iptables lacks the u32 match"; return; }
	ip netns del "mrs$$-u32"
}

if [ "${1:-}" = -l ]; then
	printf '%s\n' "${TESTS[@]}"
	exit 0
fi
selected=("${TESTS[@]}")
[ $# -gt 0 ] && selected=("$@")

passed=0 failed=0 skipped=0 info=0
reason=$(skip_reason)
start_time=$SECONDS
for name in "${selected[@]}"; do
	if [ -n "$reason" ]; then
		echo "SKIP $name: $reason"
		skipped=$((skipped + 1))
		continue
	fi
	if [ $((SECONDS - start_time)) -ge "$SUITE_TIMEOUT" ]; then
		echo "FAIL $name: suite time limit of ${SUITE_TIMEOUT}s reached"
		failed=$((failed + 1))
		continue
	fi
	t0=$SECONDS
	case "$name" in
		release-clean) (test_release_clean) ;;
		stock-*) (
			trap hostile_lab_down EXIT
			trap 'exit 1' INT TERM
			INFO_ONLY=1
			run_case "${name#stock-}" stock
		) ;;
		*) (
			trap hostile_lab_down EXIT
			trap 'exit 1' INT TERM
			run_case "$name" rust
		) ;;
	esac
	rc=$?
	case "$name" in
		stock-*)
			[ $rc = 0 ] && what="the expected outcome observed" || what="the expected outcome NOT observed"
			echo "INFO $name: stock charon as the honest side: $what ($((SECONDS - t0))s)"
			info=$((info + 1))
			;;
		*) tally "$name" $rc "$t0" ;;
	esac
done
echo "hostile: $passed passed, $failed failed, $skipped skipped, $info information only ($((SECONDS - start_time))s)"
[ "$failed" = 0 ]
