# shellcheck shell=bash
# What the hostile-peer tests (tests/hostile.sh) need beyond tests/lab/lib.sh:
#
#   r2:r2-a 198.18.1.3 ── br1 (in rt): a second, unrelated road warrior with
#                         its own charon and IKE_SA to gw (its tunnel must
#                         keep passing traffic whatever the hostile peer does)
#   vi:vi-a 198.18.3.3 ── rt:rt-v 198.18.3.1: the victim, an unrelated host.
#                         gw routes 198.18.3.0/24 through rt to it.
#
# For `bomb` the hostile road warrior holds 198.18.3.3 as well (on rw-b), so
# it can send from the victim's address, but everything addressed to it
# ends at the victim. The victim counts what arrives (iptables counters):
# IKE (UDP 500, and UDP 4500 with the non-ESP marker) and ESP in UDP.
#
# Source after tests/lab/lib.sh. hostile_lab_down removes everything,
# also on failure.

# hostile_lab_up NAME [victim-on-rw]
hostile_lab_up() {
	lab_up "$1" || return 1
	local rt="$LAB_NS-rt" gw="$LAB_NS-gw" r2="$LAB_NS-r2" vi="$LAB_NS-vi"
	ip netns add "$r2" && ip netns add "$vi" || return 1
	ip -n "$r2" link set lo up
	ip -n "$vi" link set lo up
	ip link add r2-a netns "$r2" type veth peer name p-r2a netns "$rt"
	ip -n "$rt" link set p-r2a master br1
	ip -n "$rt" link set p-r2a up
	ip -n "$r2" addr add 198.18.1.3/24 dev r2-a
	ip -n "$r2" link set r2-a up
	ip link add vi-a netns "$vi" type veth peer name rt-v netns "$rt"
	ip -n "$rt" addr add 198.18.3.1/24 dev rt-v
	ip -n "$rt" link set rt-v up
	ip -n "$vi" addr add 198.18.3.3/24 dev vi-a
	ip -n "$vi" link set vi-a up
	ip -n "$vi" route add default via 198.18.3.1
	# The router forwards what the hostile rw sends from the victim's
	# address although its route to that address leads elsewhere.
	local c
	for c in all default rt-b br1 rt-v; do
		ip netns exec "$rt" sysctl -qw "net.ipv4.conf.$c.rp_filter=0"
	done
	ip -n "$gw" route add 198.18.3.0/24 via 198.18.1.254
	if [ "${2:-}" = victim-on-rw ]; then
		ip -n "$LAB_NS-rw" addr add 198.18.3.3/32 dev rw-b
	fi
	# The victim's counters: one rule per kind, no target (count only).
	local u32_esp='0>>22&0x3C@8=1:0xFFFFFFFF' u32_ike='0>>22&0x3C@8=0'
	ip netns exec "$vi" iptables -A INPUT -p udp --dport 500 -m comment --comment ike
	ip netns exec "$vi" iptables -A INPUT -p udp --dport 4500 -m u32 --u32 "$u32_ike" -m comment --comment ike
	ip netns exec "$vi" iptables -A INPUT -p udp --dport 4500 -m u32 --u32 "$u32_esp" -m comment --comment esp
	# ESP in UDP the gateway sends, to anyone: shows that traffic was
	# sent while the victim counted.
	ip netns exec "$gw" iptables -A OUTPUT -p udp --sport 4500 -m u32 --u32 "$u32_esp" -m comment --comment esp
}

# hostile_lab_down: stop the extra nodes, then lab_down.
hostile_lab_down() {
	[ -n "${LAB_NS:-}" ] || return 0
	local n pids
	for n in r2 vi; do
		pids=$(ip netns pids "$LAB_NS-$n" 2>/dev/null)
		[ -n "$pids" ] && kill $pids 2>/dev/null
	done
	for _ in $(seq 1 20); do
		pids=$(for n in r2 vi; do ip netns pids "$LAB_NS-$n" 2>/dev/null; done)
		[ -z "$pids" ] && break
		sleep 0.2
	done
	[ -n "$pids" ] && kill -9 $pids 2>/dev/null
	for n in r2 vi; do ip netns del "$LAB_NS-$n" 2>/dev/null; done
	lab_down
}

# count NS KIND: sum of the packet counters of NS's rules commented KIND
# (INPUT and OUTPUT).
count() {
	ip netns exec "$1" iptables -nvxL 2>/dev/null |
		awk -v k="/* $2 */" 'index($0, k) && $1 ~ /^[0-9]+$/ { s += $1 } END { print s + 0 }'
}
victim_count() { count "$LAB_NS-vi" "$1"; }
gw_esp_out() { count "$LAB_NS-gw" esp; }

# hostile_tunnels_up: gw accepts rw (rw.lab.test, pool 198.18.200.0/24)
# and r2 (r2.lab.test, pool 198.18.201.0/24); both initiate. $RW_EXTRA:
# more lines for rw's connection.
hostile_tunnels_up() {
	local n
	cat >"$LAB_DIR/gw/swanctl.conf" <<EOF
connections {
	rw {
		pools = rwpool
		mobike = yes
		local { auth = psk
			id = gw.lab.test }
		remote { auth = psk
			id = rw.lab.test }
		children { net { local_ts = 198.18.100.0/24 } }
	}
	r2 {
		pools = r2pool
		mobike = yes
		local { auth = psk
			id = gw.lab.test }
		remote { auth = psk
			id = r2.lab.test }
		children { net { local_ts = 198.18.100.0/24 } }
	}
}
pools {
	rwpool { addrs = 198.18.200.0/24 }
	r2pool { addrs = 198.18.201.0/24 }
}
secrets { ike-lab { secret = $LAB_PSK } }
EOF
	for n in rw r2; do
		cat >"$LAB_DIR/$n/swanctl.conf" <<EOF
connections {
	gw {
		remote_addrs = 198.18.1.1
		vips = 0.0.0.0
		mobike = yes
		$([ "$n" = rw ] && printf '%s' "${RW_EXTRA:-}")
		local { auth = psk
			id = $n.lab.test }
		remote { auth = psk
			id = gw.lab.test }
		children { net { remote_ts = 198.18.100.0/24 } }
	}
}
secrets { ike-lab { secret = $LAB_PSK } }
EOF
	done
	swan gw --load-all --file "$LAB_DIR/gw/swanctl.conf" >/dev/null 2>&1 || return 1
	for n in rw r2; do
		swan "$n" --load-all --file "$LAB_DIR/$n/swanctl.conf" >/dev/null 2>&1 || return 1
		swan "$n" --initiate --child net --timeout "$LAB_WAIT" >"$LAB_DIR/initiate-$n.out" 2>&1 || return 1
	done
}

# ping_from NODE [TRIES]: a ping from NODE through its tunnel to the gw's LAN.
ping_from() {
	local i
	for i in $(seq 1 "${2:-$LAB_WAIT}"); do
		ip netns exec "$LAB_NS-$1" ping -c 1 -W 1 198.18.100.1 >/dev/null 2>&1 && return 0
	done
	return 1
}

# charon_pid NODE: the pid of the charon running in NODE's netns.
charon_pid() {
	local p
	for p in $(ip netns pids "$LAB_NS-$1" 2>/dev/null); do
		[ "$(cat "/proc/$p/comm" 2>/dev/null)" = charon ] && { echo "$p"; return 0; }
	done
	return 1
}

# rss_kb PID: VmRSS in kB (empty if the process is gone).
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }

# vip_of NODE: the virtual IP NODE got (from its IKE_SA's local line).
vip_of() {
	swan "$1" --list-sas 2>/dev/null | sed -n "s/^  local .*\[\(198\.18\.20[01]\.[0-9]*\)\]$/\1/p" | head -n1
}

# ike_count NODE ID: IKE_SAs on NODE whose remote identity is ID.
ike_count() {
	swan "$1" --list-sas 2>/dev/null | grep -c "^  remote '$2'"
}

# remote_of NODE ID: the remote address of NODE's IKE_SA with peer ID.
remote_of() {
	swan "$1" --list-sas 2>/dev/null |
		sed -n "s/^  remote '$2' @ \([^ ]*\).*/\1/p" | head -n1
}

# log_after NODE PATTERN: the lines of NODE's log after the first line
# matching the ERE PATTERN (empty if none matches). The pattern goes
# through the environment: awk -v would process its backslashes.
log_after() {
	LOG_AFTER_RE=$2 awk 'BEGIN { p = ENVIRON["LOG_AFTER_RE"] }
		found { print } !found && $0 ~ p { found = 1 }' "$LAB_DIR/$1/charon.log" 2>/dev/null
}
