# shellcheck shell=bash
# The netns lab: a road warrior (rw) with two interfaces, a router (rt) that
# holds the bridge of the gateway's segment and can NAT, and a gateway (gw)
# whose protected LAN is 198.18.100.0/24. Addresses from 198.18.0.0/15 only.
#
#   rw:rw-a 198.18.1.2 ──┐ br1 (in rt, 198.18.1.254)  ┌── gw:gw-a 198.18.1.1
#                        └────────────────────────────┘     lo 198.18.100.1 (LAN)
#   rw:rw-b 198.18.2.2 ──── rt:rt-b 198.18.2.1 (routes, MASQUERADEs with NAT=1)
#
# rw reaches gw directly over rw-a (preferred); with rw-a down its default
# route goes through rt. Each charon runs in its own netns and mount
# namespace (private /run), with its own strongswan.conf, log and vici
# socket under $LAB_DIR. Everything is removed by lab_down, also on failure.
#
# LAB_FAMILY chooses the outer address family of each segment (rw-a's, the
# one gw is on, and rw-b's, through rt):
#   4  (default) the lab above, IPv4 only
#   6  the same on IPv6 only: 2001:db8:1::/64 for rw-a/gw (rt 2001:db8:1::fe),
#      2001:db8:2::/64 for rw-b/rt-b, LAN 2001:db8:100::1, virtual IPs from
#      2001:db8:200::/112 and IPv6 traffic selectors
#   46 rw-a IPv4 only, rw-b IPv6 only; gw has both, so MOBIKE announces its
#      IPv6 address and the IKE_SA set up over IPv4 can move to IPv6
#   64 the reverse: rw-a IPv6 only, rw-b IPv4 only, set up over IPv6
# The tunnel's inner family (traffic selectors, virtual IP, the address
# ping_ok pings) is IPv6 in the IPv6-only lab and IPv4 otherwise: with
# kernel-libipsec the road warrior needs a virtual IP of that family.
# IPv6 addresses are added without DAD, so they are usable at once.

LAB_LIB=${MOBIKE_RS_LIB:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/target/release/libmobike_rs.so}
LAB_CLI=${MOBIKE_RS_CLI:-$(dirname "$LAB_LIB")/mobike-rs}
LAB_PSK=mobike-rs-lab-psk-0123456789
# The data plane: kernel-libipsec (userspace ESP over a TUN device; this
# machine's kernel has no ESP) or xfrm (the kernel's IPsec through
# kernel-netlink, in the VM of tests/lab/vm.sh, where TCG makes everything
# slower: waits are longer, never assertions on time).
LAB_DATAPLANE=${LAB_DATAPLANE:-libipsec}
case "$LAB_DATAPLANE" in
	libipsec) LAB_WAIT=${LAB_WAIT:-15} ;; # seconds any single wait may take
	xfrm) LAB_WAIT=${LAB_WAIT:-60} ;;
	*) echo "LAB_DATAPLANE must be libipsec or xfrm, not '$LAB_DATAPLANE'" >&2; LAB_WAIT=15 ;;
esac
LAB_WRAPPER=${LAB_WRAPPER:-} # a command non-chroot charons run under (charon_start)
# swanctl's plugins when it runs from a tree (LAB_ROOT_<node>): its built-in
# list names plugins a minimal tree lacks, each one an error line.
LAB_ROOT_SWANCTL_LOAD=${LAB_ROOT_SWANCTL_LOAD:-random nonce openssl pem pkcs1 pkcs8 x509 revocation constraints pubkey}

lab_log() { printf '  %s\n' "$*" >&2; }

# lab_addr FAMILY ROLE: the lab's address (or prefix) for ROLE in FAMILY.
lab_addr() {
	case "$1:$2" in
		4:rw-a) echo 198.18.1.2/24 ;;
		4:rw-b) echo 198.18.2.2/24 ;;
		4:gw) echo 198.18.1.1/24 ;;
		4:gw2) echo 198.18.1.3/24 ;;
		4:br1) echo 198.18.1.254/24 ;;
		4:rt-b) echo 198.18.2.1/24 ;;
		4:net-b) echo 198.18.2.0/24 ;;
		4:net-gw) echo 198.18.1.0/24 ;;
		4:rw-ar) echo 198.18.3.2/24 ;;
		4:rt-a) echo 198.18.3.1/24 ;;
		4:net-a) echo 198.18.3.0/24 ;;
		4:lan) echo 198.18.100.1/32 ;;
		4:lan-net) echo 198.18.100.0/24 ;;
		4:pool) echo 198.18.200.0/24 ;;
		4:vip) echo 0.0.0.0 ;;
		6:rw-a) echo 2001:db8:1::2/64 ;;
		6:rw-b) echo 2001:db8:2::2/64 ;;
		6:gw) echo 2001:db8:1::1/64 ;;
		6:br1) echo 2001:db8:1::fe/64 ;;
		6:rt-b) echo 2001:db8:2::1/64 ;;
		6:net-b) echo 2001:db8:2::/64 ;;
		6:net-gw) echo 2001:db8:1::/64 ;;
		6:rw-ar) echo 2001:db8:3::2/64 ;;
		6:rt-a) echo 2001:db8:3::1/64 ;;
		6:net-a) echo 2001:db8:3::/64 ;;
		6:lan) echo 2001:db8:100::1/128 ;;
		6:lan-net) echo 2001:db8:100::/64 ;;
		6:pool) echo 2001:db8:200::/112 ;;
		6:vip) echo :: ;;
		*) return 1 ;;
	esac
}

# lab_ip FAMILY ROLE: lab_addr without the prefix length.
lab_ip() { local a; a=$(lab_addr "$1" "$2") && echo "${a%/*}"; }

# lab_addr_add NS FAMILY ROLE DEV
lab_addr_add() {
	if [ "$2" = 6 ]; then
		ip -n "$1" addr add "$(lab_addr 6 "$3")" dev "$4" nodad
	else
		ip -n "$1" addr add "$(lab_addr 4 "$3")" dev "$4"
	fi
}

# lab_up NAME [nat]: namespaces, links, addresses, routes. Sets LAB_RW_A,
# LAB_RW_B (rw's address on each interface), LAB_GW (the gateway address rw
# starts with), LAB_GW_B (gw's address of rw-b's family) and LAB_LAN. With
# LAB_GW2 set (IPv4 only), a second gateway node, gw2, on gw's segment.
lab_up() {
	LAB_NAME=$1
	local fa fb fams
	case "${LAB_FAMILY:-4}" in
		4) fa=4 fb=4 ;;
		6) fa=6 fb=6 ;;
		46) fa=4 fb=6 ;;
		64) fa=6 fb=4 ;;
		*) lab_log "LAB_FAMILY must be 4, 6, 46 or 64, not '$LAB_FAMILY'"; return 1 ;;
	esac
	fams=$fa
	[ "$fb" != "$fa" ] && fams="$fa $fb"
	LAB_INNER=4
	[ "$fams" = 6 ] && LAB_INNER=6
	LAB_RW_A=$(lab_ip "$fa" rw-a) LAB_RW_B=$(lab_ip "$fb" rw-b)
	LAB_GW=$(lab_ip "$fa" gw) LAB_GW_B=$(lab_ip "$fb" gw) LAB_LAN=$(lab_ip "$LAB_INNER" lan)
	LAB_NS="mrs$$-$LAB_NAME"
	LAB_DIR=$(mktemp -d "${TMPDIR:-/tmp}/mobike-rs-lab.XXXXXX")
	local rw="$LAB_NS-rw" gw="$LAB_NS-gw" rt="$LAB_NS-rt" f nodes="rw gw rt"
	if [ -n "${LAB_GW2:-}" ]; then
		[ "$fams" = 4 ] || { lab_log "the second gateway is IPv4 only"; return 1; }
		nodes="rw gw gw2 rt"
	fi
	for n in $nodes; do
		n="$LAB_NS-$n"
		ip netns add "$n" || return 1
		ip -n "$n" link set lo up
		# Links created below inherit "default": no DAD on link-local either.
		# Also in IPv4 labs: a link-local address finishing DAD a second
		# after link-up is a kernel event that makes charon roam and send an
		# address list in the middle of a measurement.
		ip netns exec "$n" sysctl -qw net.ipv6.conf.default.accept_dad=0
	done
	ip -n "$rt" link add br1 type bridge
	ip link add rw-a netns "$rw" type veth peer name p-rwa netns "$rt"
	ip link add rw-b netns "$rw" type veth peer name rt-b netns "$rt"
	ip -n "$rt" link set p-rwa master br1
	for f in $fams; do lab_addr_add "$rt" "$f" br1 br1; done
	lab_addr_add "$rt" "$fb" rt-b rt-b
	for l in br1 p-rwa rt-b; do ip -n "$rt" link set "$l" up; done
	if [ "$fb" = 6 ]; then
		ip netns exec "$rt" sysctl -qw net.ipv6.conf.all.forwarding=1
	else
		ip netns exec "$rt" sysctl -qw net.ipv4.ip_forward=1
	fi
	lab_addr_add "$rw" "$fa" rw-a rw-a
	lab_addr_add "$rw" "$fb" rw-b rw-b
	ip -n "$rw" link set rw-a up
	ip -n "$rw" link set rw-b up
	ip -n "$rw" -"$fb" route add default via "$(lab_ip "$fb" rt-b)" dev rw-b metric 100
	lab_gateway gw "$fams" "$fb"
	lab_addr_add "$gw" "$LAB_INNER" lan lo
	[ -z "${LAB_GW2:-}" ] || lab_gateway gw2 4 4
	if [ "${2:-}" = nat ]; then
		[ "$fb" = 4 ] || { lab_log "the NAT lab is IPv4 only"; return 1; }
		ip netns exec "$rt" iptables -t nat -A POSTROUTING -s 198.18.2.0/24 -o br1 -j MASQUERADE
	fi
}

# lab_gateway NODE FAMILIES FB: NODE's link NODE-a on rt's bridge with
# NODE's addresses of FAMILIES, and its route to rw-b's network (family FB)
# through rt.
lab_gateway() {
	local ns="$LAB_NS-$1" rt="$LAB_NS-rt" f
	ip link add "$1-a" netns "$ns" type veth peer name "p-${1}a" netns "$rt"
	ip -n "$rt" link set "p-${1}a" master br1
	ip -n "$rt" link set "p-${1}a" up
	for f in $2; do lab_addr_add "$ns" "$f" "$1" "$1-a"; done
	ip -n "$ns" link set "$1-a" up
	ip -n "$ns" -"$3" route add "$(lab_addr "$3" net-b)" via "$(lab_ip "$3" br1)"
}

# A host without source routing (issue 24), as most laptops are set up:
# NetworkManager and ifupdown give each interface its address and routes
# with metrics, no `ip rule` per source address. In the single-family
# labs (LAB_FAMILY 4 or 6), lab_rwa_routed MODE replaces rw-a (on gw's
# segment) by rw-ar on a third segment, net-a, routed by rt to the
# gateway:
#
#   rw:rw-ar 198.18.3.2 ──── rt:rt-a 198.18.3.1 ──┐ br1 ── gw 198.18.1.1
#   rw:rw-b  198.18.2.2 ──── rt:rt-b 198.18.2.1 ──┘
#   (IPv6: 2001:db8:3::/64 for net-a, rt-a 2001:db8:3::1, rw-ar ::2)
#
# Both of rw's interfaces have their address and reach the gateway through
# rt; nothing routes by source address, so the kernel routes a packet
# from rw-b's address to the gateway out of rw-ar:
#   nosrc   rw-ar keeps the more specific route (gw's network via rt-a),
#           rw-b has the default route (metric 100)
#   metric  two default routes, rw-ar's metric 100, rw-b's 200
# Sets LAB_RW_A to rw-ar's address (the IKE_SA starts there).
lab_rwa_routed() {
	local mode=$1 f=${LAB_FAMILY:-4} rw="$LAB_NS-rw" rt="$LAB_NS-rt" gw="$LAB_NS-gw"
	case "$f" in
		4 | 6) ;;
		*) lab_log "lab_rwa_routed: single-family labs only (LAB_FAMILY 4 or 6)"; return 1 ;;
	esac
	ip -n "$rw" link del rw-a || return 1 # its peer, rt's bridge port, goes too
	ip link add rw-ar netns "$rw" type veth peer name rt-a netns "$rt" || return 1
	lab_addr_add "$rw" "$f" rw-ar rw-ar && lab_addr_add "$rt" "$f" rt-a rt-a || return 1
	ip -n "$rw" link set rw-ar up && ip -n "$rt" link set rt-a up || return 1
	ip -n "$gw" -"$f" route add "$(lab_addr "$f" net-a)" via "$(lab_ip "$f" br1)" || return 1
	case "$mode" in
		nosrc)
			ip -n "$rw" -"$f" route add "$(lab_addr "$f" net-gw)" via "$(lab_ip "$f" rt-a)" dev rw-ar || return 1
			;;
		metric)
			ip -n "$rw" -"$f" route del default via "$(lab_ip "$f" rt-b)" dev rw-b metric 100 &&
				ip -n "$rw" -"$f" route add default via "$(lab_ip "$f" rt-b)" dev rw-b metric 200 &&
				ip -n "$rw" -"$f" route add default via "$(lab_ip "$f" rt-a)" dev rw-ar metric 100 || return 1
			;;
		*) lab_log "lab_rwa_routed: MODE is nosrc or metric, not '$mode'"; return 1 ;;
	esac
	LAB_RW_A=$(lab_ip "$f" rw-ar)
}

# lab_rw_laptop: rw's reverse-path filter loose (rp_filter = 2), as a
# laptop's is (Debian's, NetworkManager's default): an answer from the
# gateway arriving on rw-b passes although the main table routes the
# gateway through rw-ar. IPv6 has no such filter.
lab_rw_laptop() {
	local d
	for d in all default rw-b rw-ar; do
		ip netns exec "$LAB_NS-rw" sysctl -qw "net.ipv4.conf.$d.rp_filter=2" || return 1
	done
}

# lab_blackhole_rwa [off]: rt silently stops forwarding anything from or
# to net-a (rw-ar's path), in the lab's family; rw-ar keeps its carrier,
# address and routes, and rt still answers ARP and neighbour discovery on
# rt-a, so nothing on rw says the path is gone. `off` lifts it.
lab_blackhole_rwa() {
	local op=-I ipt=iptables r
	[ "${1:-}" = off ] && op=-D
	[ "${LAB_FAMILY:-4}" = 6 ] && ipt=ip6tables
	for r in "-i rt-a" "-o rt-a"; do
		# shellcheck disable=SC2086 # the two words of r
		ip netns exec "$LAB_NS-rt" "$ipt" "$op" FORWARD $r -j DROP || return 1
	done
}

# lab_link_up NODE DEV: DEV in NODE is administratively up with a carrier.
lab_link_up() {
	ip -n "$LAB_NS-$1" -o link show dev "$2" 2>/dev/null | grep -q '[<,]UP[,>].*LOWER_UP'
}

# lab_source_rules NODE: NODE's policy rules (both families) that select
# by source address (`from` other than `all`), one a line with their
# protocol; nothing if the host routes by destination only (charon's own
# `from all lookup 220` is not one).
lab_source_rules() {
	local f
	for f in 4 6; do
		ip -n "$LAB_NS-$1" -"$f" -d rule show 2>/dev/null | awk '$2 == "from" && $3 != "all"'
	done
}

# lab_routing_ours NODE: what mobike-rs installed in NODE's routing
# (rtnetlink protocol 77, both families), one a line: `rule ...` for a
# policy rule, `route ...` for a route in any table. Nothing if none.
lab_routing_ours() {
	local f
	for f in 4 6; do
		ip -n "$LAB_NS-$1" -"$f" -d rule show 2>/dev/null | awk '/ proto 77( |$)/ { print "rule", $0 }'
		ip -n "$LAB_NS-$1" -"$f" route show table all proto 77 2>/dev/null | sed 's/^/route /'
	done
}

# lab_charon_pid NODE: the pid of NODE's charon (the netns's only one).
lab_charon_pid() {
	local p
	if [ -s "$LAB_DIR/$1/charon.pid" ]; then
		cat "$LAB_DIR/$1/charon.pid"
		return
	fi
	for p in $(ip netns pids "$LAB_NS-$1" 2>/dev/null); do
		[ "$(cat "/proc/$p/comm" 2>/dev/null)" = charon ] && { echo "$p"; return 0; }
	done
	return 1
}

# lab_down: stop charons, remove namespaces and files.
lab_down() {
	[ -n "${LAB_NS:-}" ] || return 0
	local n pids
	for n in rw gw gw2 rt; do
		pids=$(ip netns pids "$LAB_NS-$n" 2>/dev/null)
		[ -n "$pids" ] && kill $pids 2>/dev/null
	done
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		pids=$(for n in rw gw gw2 rt; do ip netns pids "$LAB_NS-$n" 2>/dev/null; done)
		[ -z "$pids" ] && break
		sleep 0.2
	done
	[ -n "$pids" ] && kill -9 $pids 2>/dev/null
	for n in rw gw gw2 rt; do ip netns del "$LAB_NS-$n" 2>/dev/null; done
	if [ -n "${MOBIKE_RS_KEEP_LOGS:-}" ] && [ -z "${MOBIKE_RS_IN_VM:-}" ]; then
		lab_log "logs kept in $LAB_DIR"
	else
		rm -rf "$LAB_DIR"
	fi
	LAB_NS=
}

# lab_save NAME RC: in the VM (tests/lab/vm.sh), the logs, configurations,
# captures and kernel state of a scenario that failed (of every one with
# MOBIKE_RS_KEEP_LOGS) go to the share's keep/NAME, which the host keeps in
# lab-runs/ with MOBIKE_RS_KEEP_LOGS (the lab's own directory is in the VM).
lab_save() {
	[ -n "${MOBIKE_RS_IN_VM:-}" ] && [ -d /vm/keep ] && [ -n "${LAB_DIR:-}" ] || return 0
	[ "$2" != 0 ] || [ -n "${MOBIKE_RS_KEEP_LOGS:-}" ] || return 0
	mkdir -p "/vm/keep/$1"
	(cd "$LAB_DIR" && find . -type f -exec cp --parents {} "/vm/keep/$1/" \;) 2>/dev/null
	local n
	for n in rw gw; do
		{ ip -n "$LAB_NS-$n" xfrm state; ip -n "$LAB_NS-$n" xfrm policy; } >"/vm/keep/$1/$n.xfrm" 2>&1
	done
	return 0
}

# charon_start NODE FLAVOUR [extra strongswan.conf lines...]
# FLAVOUR: stock | rust | builtin (library preloaded, mode = builtin) |
#         installed (run $LAB_DAEMON, the package's wrapper, in mode rust)
# LAB_CHARON_<node> runs another charon on that node (one built here,
# tests/lab/nome-charon.sh), LAB_LIB_<node> preloads another library there.
charon_start() {
	local node=$1 flavour=$2
	shift 2
	local charon_var="LAB_CHARON_$node" lib_var="LAB_LIB_$node"
	local d="$LAB_DIR/$node" preload="" plugins="" daemon=${!charon_var:-/usr/lib/ipsec/charon}
	local kernel="kernel-libipsec kernel-netlink"
	# kernel-libipsec before kernel-netlink: this machine's kernel has no ESP.
	[ "$LAB_DATAPLANE" = xfrm ] && kernel=kernel-netlink
	mkdir -p "$d"
	case "$flavour" in
		rust | builtin)
			preload="LD_PRELOAD=${!lib_var:-$LAB_LIB}"
			plugins=" mobike-rs"
			;;
		installed) # the package's wrapper preloads its library itself
			daemon=${LAB_DAEMON:?LAB_DAEMON names the installed wrapper}
			plugins=" mobike-rs"
			;;
	esac
	cat >"$d/strongswan.conf" <<EOF
charon {
	load_modular = no
	load = random nonce openssl kdf aes sha1 sha2 hmac gcm pem pkcs1 x509 pubkey socket-default $kernel vici$plugins
	filelog {
		lab {
			path = $d/charon.log
			default = 1
			ike = 2
			enc = 1
			asn = 1
			flush_line = yes
			time_format = %s
		}
	}
	plugins {
		vici { socket = unix://$d/charon.vici }
		mobike-rs {
			mode = $([ "$flavour" = builtin ] && echo builtin || echo rust)
			status_socket = unix://$d/status.sock
		}
	}
	$(printf '%s\n' "$@")
}
EOF
	# LAB_WRAPPER (tests/memcheck.sh: valgrind) is a command charon runs
	# under; it gets the environment and LAB_NODE_DIR, so valgrind can write
	# --log-file=%q{LAB_NODE_DIR}/valgrind.log. Unset, nothing changes.
	local run="STRONGSWAN_CONF=$d/strongswan.conf ${LD_DEBUG_DIR:+LD_DEBUG=bindings LD_DEBUG_OUTPUT=$LD_DEBUG_DIR/ld} $preload${LAB_WRAPPER:+ LAB_NODE_DIR=$d} exec ${LAB_WRAPPER:+$LAB_WRAPPER }$daemon"
	local root_var="LAB_ROOT_$node" root
	root=${!root_var:-}
	if [ -n "$root" ]; then
		local lib_var="LAB_ROOT_LIB_$node"
		run=$(chroot_cmd "$root" "$d" "$flavour" "$daemon" "${!lib_var:-${LAB_ROOT_LIB:-}}") || return 1
		# The tree's own swanctl (see swan) loads only plugins it has.
		printf 'swanctl {\n\tload = %s\n}\n' "$LAB_ROOT_SWANCTL_LOAD" >>"$d/strongswan.conf"
	fi
	ip netns exec "$LAB_NS-$node" unshare -m --propagation private sh -c \
		"mount -t tmpfs tmpfs /run && $run" >"$d/stdout" 2>&1 &
	# ip, unshare, sh, chroot and env all exec: this is charon's pid, the
	# way into its namespaces for swanctl (see swan).
	[ -n "$root" ] && echo $! >"$d/charon.pid"
	local i
	for i in $(seq 1 $((LAB_WAIT * 10))); do
		[ -S "$d/charon.vici" ] && return 0
		sleep 0.1
	done
	lab_log "charon on $node did not start"
	return 1
}

# chroot_cmd ROOT DIR FLAVOUR DAEMON LIB: the shell command that runs the
# charon of another distribution tree (LAB_ROOT_<node>, e.g. Debian 13's or
# sid's) inside the node's private mount namespace. The tree gets the
# netns's /proc and /sys, /dev, a tmpfs /run and /tmp, the node's directory
# at its own path and, for rust/builtin, LIB, the library built for it
# (LAB_ROOT_LIB_<node>, else LAB_ROOT_LIB: two nodes can run two suites).
# Nothing is mounted or written outside that namespace.
chroot_cmd() {
	local root=$1 d=$2 flavour=$3 daemon=$4 lib=${5:-} preload=""
	case "$flavour" in
		rust | builtin)
			[ -n "$lib" ] || { lab_log "LAB_ROOT_LIB(_<node>) not set"; return 1; }
			preload="LD_PRELOAD=/tmp/mobike-rs-lib/$(basename "$lib")"
			;;
	esac
	printf '%s' "mount -t proc proc $root/proc && mount -t sysfs sysfs $root/sys &&"
	printf ' %s' "mount --rbind /dev $root/dev && mount -t tmpfs tmpfs $root/run &&"
	printf ' %s' "mount -t tmpfs tmpfs $root/tmp && mkdir -p $root$d $root/tmp/mobike-rs-lib &&"
	printf ' %s' "mount --bind $d $root$d &&"
	[ -n "$preload" ] && printf ' %s' "mount --bind $(dirname "$lib") $root/tmp/mobike-rs-lib &&"
	printf ' %s' "exec chroot $root env STRONGSWAN_CONF=$d/strongswan.conf $preload $daemon"
}

# swan NODE ARGS...: swanctl against NODE's charon. For a node whose
# charon runs from a tree (LAB_ROOT_<node>), the tree's own swanctl, run in
# that charon's mount namespace and root, where the node's directory is.
swan() {
	local node=$1
	shift
	local root_var="LAB_ROOT_$node" pid
	if [ -n "${!root_var:-}" ]; then
		pid=$(cat "$LAB_DIR/$node/charon.pid" 2>/dev/null) && [ -n "$pid" ] || return 1
		STRONGSWAN_CONF="$LAB_DIR/$node/strongswan.conf" nsenter -t "$pid" -m -n -r -w \
			swanctl "$@" --uri "unix://$LAB_DIR/$node/charon.vici"
		return
	fi
	STRONGSWAN_CONF="$LAB_DIR/$node/strongswan.conf" swanctl "$@" --uri "unix://$LAB_DIR/$node/charon.vici"
}

# tunnel_up: load configs, initiate from rw, wait for the CHILD_SA.
tunnel_up() {
	local extra_rw=${1:-}
	cat >"$LAB_DIR/rw/swanctl.conf" <<EOF
connections {
	gw {
		remote_addrs = ${LAB_GW:-198.18.1.1}
		vips = $(lab_addr "${LAB_INNER:-4}" vip)
		mobike = yes
		$extra_rw
		local { auth = psk
			id = rw.lab.test }
		remote { auth = psk
			id = gw.lab.test }
		children { net { remote_ts = $(lab_addr "${LAB_INNER:-4}" lan-net) } }
	}
}
secrets { ike-lab { secret = $LAB_PSK } }
EOF
	cat >"$LAB_DIR/gw/swanctl.conf" <<EOF
connections {
	rw {
		pools = rwpool
		mobike = ${LAB_GW_MOBIKE:-yes}
		local { auth = psk
			id = gw.lab.test }
		remote { auth = psk
			id = rw.lab.test }
		children { net { local_ts = $(lab_addr "${LAB_INNER:-4}" lan-net)
			${GW_CHILD_CONF:-} } }
	}
}
pools { rwpool { addrs = $(lab_addr "${LAB_INNER:-4}" pool) } }
secrets { ike-lab { secret = $LAB_PSK } }
EOF
	swan gw --load-all --file "$LAB_DIR/gw/swanctl.conf" >/dev/null 2>&1 || return 1
	swan rw --load-all --file "$LAB_DIR/rw/swanctl.conf" >/dev/null 2>&1 || return 1
	swan rw --initiate --child net --timeout "$LAB_WAIT" >"$LAB_DIR/initiate.out" 2>&1
}

# sa_field NODE WHAT: from `swanctl --list-sas`: spis | local | remote | state
sa_field() {
	local out
	out=$(swan "$1" --list-sas 2>/dev/null)
	case "$2" in
		spis) printf '%s\n' "$out" | sed -n 's/^[^ ].*IKEv2, \([0-9a-f]*_i\*\{0,1\}\) \([0-9a-f]*_r\*\{0,1\}\).*/\1 \2/p' | tr -d '*' | head -n1 ;;
		local) printf '%s\n' "$out" | sed -n "s/^  local  '[^']*' @ \([^ ]*\).*/\1/p" | head -n1 ;;
		remote) printf '%s\n' "$out" | sed -n "s/^  remote '[^']*' @ \([^ ]*\).*/\1/p" | head -n1 ;;
		state) printf '%s\n' "$out" | sed -n 's/^[^ ].*, \([A-Z_]*\), IKEv2.*/\1/p' | head -n1 ;;
		count) printf '%s\n' "$out" | grep -c 'IKEv2' ;;
	esac
}

# status NODE [--json]: `mobike-rs status` against NODE's plugin.
status() {
	local node=$1
	shift
	"$LAB_CLI" status --socket "$LAB_DIR/$node/status.sock" "$@"
}

# sa_raw NODE: `swanctl --list-sas --raw` (conditions such as nat-local).
sa_raw() { swan "$1" --list-sas --raw 2>/dev/null; }

# ping_ok [TRIES]: a ping from rw through the tunnel to gw's LAN address
# (IPv4 or IPv6, see LAB_FAMILY) gets an answer,
# trying at most TRIES times (one second each).
ping_ok() {
	local i
	for i in $(seq 1 "${1:-$LAB_WAIT}"); do
		ip netns exec "$LAB_NS-rw" ping -c 1 -W 1 "${LAB_LAN:-198.18.100.1}" >/dev/null 2>&1 && return 0
	done
	return 1
}

# lab_missing: why no lab can run here (root, tools, Debian's charon with
# kernel-libipsec), nothing if one can.
lab_missing() {
	[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces)"; return; }
	local t
	for t in ip iptables swanctl ping unshare; do
		command -v "$t" >/dev/null 2>&1 || { echo "missing tool: $t"; return; }
	done
	[ -x /usr/lib/ipsec/charon ] || { echo "missing /usr/lib/ipsec/charon (strongswan-charon)"; return; }
	if [ "$LAB_DATAPLANE" = xfrm ]; then
		modprobe -a esp4 esp6 xfrm_user xfrm_interface >/dev/null 2>&1 ||
			{ echo "the kernel has no ESP (modprobe esp4 esp6 xfrm_user xfrm_interface failed): run it in the VM (tests/lab/vm.sh)"; return; }
		return
	fi
	[ -f /usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so ] ||
		{ echo "missing kernel-libipsec (libcharon-extra-plugins)"; return; }
}

# tally NAME RC T0: the PASS (RC 0) or FAIL line of one test started at
# SECONDS = T0, counted in the caller's passed or failed.
tally() {
	if [ "$2" = 0 ]; then
		echo "PASS $1 ($((SECONDS - $3))s)"
		passed=$((passed + 1))
	else
		echo "FAIL $1 ($((SECONDS - $3))s)"
		failed=$((failed + 1))
	fi
}

# wait_for COND...: evaluate COND every 0.1 s for at most LAB_WAIT seconds
# (at most LAB_WAIT * 10 times, and never past LAB_WAIT seconds of wall
# time: in the TCG VM one evaluation with swanctl takes a second or more).
wait_for() {
	local i end=$((SECONDS + LAB_WAIT))
	for i in $(seq 1 $((LAB_WAIT * 10))); do
		eval "$*" && return 0
		[ "$SECONDS" -lt "$end" ] || return 1
		sleep 0.1
	done
	return 1
}

# in_log NODE PATTERN: charon's log on NODE has a line matching PATTERN.
in_log() { grep -qE "$2" "$LAB_DIR/$1/charon.log" 2>/dev/null; }

# show_logs: tail of both logs, for a failure.
show_logs() {
	local n
	for n in rw gw; do
		[ -f "$LAB_DIR/$n/charon.log" ] || continue
		echo "  --- $n charon.log (last 25 lines)" >&2
		tail -n 25 "$LAB_DIR/$n/charon.log" | sed 's/^/  | /' >&2
	done
}

# The kernel's IPsec state (LAB_DATAPLANE=xfrm).
#
# xfrm_states NODE: NODE's ESP SAs, one line each:
#   SPI SRC DST ENCAP IF_ID MARK
# ENCAP is "-" or TYPE:SPORT:DPORT (espinudp:4500:4500), IF_ID and MARK
# "-" when unset.
xfrm_states() {
	ip -n "$LAB_NS-$1" xfrm state 2>/dev/null | awk '
		function out() { if (spi != "") print spi, src, dst, enc, ifid, mark }
		/^src / { out(); src = $2; dst = $4; spi = ""; enc = "-"; ifid = "-"; mark = "-" }
		/^[ \t]+proto esp spi / { spi = $4 }
		/^[ \t]+encap type / { enc = $3 ":" $5 ":" $7 }
		/^[ \t]+if_id / { ifid = $2 }
		/^[ \t]+mark / { mark = $2 }
		END { out() }'
}

# xfrm_policies NODE: NODE's IPsec policies with a template (not charon's
# per-socket bypass policies), one line each:
#   DIR TMPL_SRC TMPL_DST IF_ID MARK
xfrm_policies() {
	ip -n "$LAB_NS-$1" xfrm policy 2>/dev/null | awk '
		function out() { if (tsrc != "") print dir, tsrc, tdst, ifid, mark }
		/^src / { out(); dir = ""; tsrc = ""; tdst = ""; ifid = "-"; mark = "-" }
		/^[ \t]+dir / { dir = $2 }
		/^[ \t]+tmpl src / { tsrc = $3; tdst = $5 }
		/^[ \t]+if_id / { ifid = $2 }
		/^[ \t]+mark / { mark = $2 }
		END { out() }'
}

# xfrm_spis NODE: NODE's ESP SPIs, sorted, on one line.
xfrm_spis() { xfrm_states "$1" | awk '{ print $1 }' | sort | tr '\n' ' '; }

# xfrm_check NODE NAT [SPIS]: NODE's kernel state matches its IKE_SA's
# path (swanctl's local and remote address): every ESP SA and every
# policy's template is on that pair of addresses; UDP encapsulation
# (espinudp, to the IKE_SA's remote port) on every SA when NAT is yes, on
# none when no; with SPIS, exactly those SPIs (the SAs were updated in
# place, not rekeyed); with XFRM_IFID_<NODE> set, every SA and policy
# carries that if_id (hex, as ip shows it: 0x2a); with XFRM_MARK_OUT_<NODE>
# / XFRM_MARK_IN_<NODE> set, the outbound SA and policy / the in and fwd
# policies carry that mark (0x2a/0xffffffff). Prints what differs;
# returns 1 then.
xfrm_check() {
	local node=$1 nat=$2 spis=${3:-} l r rport states policies bad="" ifid_var="XFRM_IFID_$1"
	local mout_var="XFRM_MARK_OUT_$1" min_var="XFRM_MARK_IN_$1"
	l=$(sa_field "$node" local) r=$(sa_field "$node" remote)
	rport=${r##*[}
	rport=${rport%]}
	l=${l%[*} r=${r%[*}
	states=$(xfrm_states "$node")
	policies=$(xfrm_policies "$node")
	[ -n "$states" ] || bad="$bad; no ESP SA"
	[ -n "$policies" ] || bad="$bad; no IPsec policy"
	bad=$bad$(printf '%s\n' "$states" | awk -v l="$l" -v r="$r" -v nat="$nat" -v rport="$rport" \
		-v ifid="${!ifid_var:--}" -v mark="${!mout_var:--}" 'NF {
		if (!(($2 == l && $3 == r) || ($2 == r && $3 == l))) printf "; SA %s on %s -> %s, not %s - %s", $1, $2, $3, l, r
		if (nat == "yes" && $4 !~ /^espinudp:/) printf "; SA %s not UDP-encapsulated (%s)", $1, $4
		if (nat == "yes" && $2 == l && $4 !~ (":" rport "$")) printf "; SA %s encapsulated to port %s, not %s", $1, $4, rport
		if (nat == "no" && $4 != "-") printf "; SA %s UDP-encapsulated (%s) without a NAT", $1, $4
		if ($5 != ifid) printf "; SA %s if_id %s, expected %s", $1, $5, ifid
		if (mark != "-" && $2 == l && $6 != mark) printf "; outbound SA %s mark %s, expected %s", $1, $6, mark
	}')
	bad=$bad$(printf '%s\n' "$policies" | awk -v l="$l" -v r="$r" -v ifid="${!ifid_var:--}" \
		-v mout="${!mout_var:--}" -v min="${!min_var:--}" 'NF {
		if ($1 == "out" && !($2 == l && $3 == r)) printf "; %s policy template %s -> %s, not %s -> %s", $1, $2, $3, l, r
		if ($1 != "out" && !($2 == r && $3 == l)) printf "; %s policy template %s -> %s, not %s -> %s", $1, $2, $3, r, l
		if ($4 != ifid) printf "; %s policy if_id %s, expected %s", $1, $4, ifid
		mark = ($1 == "out") ? mout : min
		if (mark != "-" && $5 != mark) printf "; %s policy mark %s, expected %s", $1, $5, mark
	}')
	if [ -n "$spis" ] && [ "$(xfrm_spis "$node")" != "$spis" ]; then
		bad="$bad; SPIs $(xfrm_spis "$node")instead of ${spis}(rekeyed, not updated in place)"
	fi
	[ -z "$bad" ] && return 0
	echo "${bad#; }"
	return 1
}
