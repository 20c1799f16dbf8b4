#!/usr/bin/env bash
# The ABI guard refuses a library built for another charon. 1) The library
# is built with bindings generated from the installed strongSwan's source
# configured WITHOUT mediation (ME), which changes charon's struct layouts,
# and preloaded into the installed charon (built with ME). charon must keep working with its
# built-in MOBIKE (a break-before-make move in the lab) and log one error
# that names both configurations. 2) The library built for the installed
# 5.9.8 is preloaded into Debian 13's 6.0.1 charon: the same, naming both
# versions. 3) The library built for 6.0.1 (trixie) in sid's 6.1.0 charon,
# and 4) the one for 6.1.0 in 6.0.1's: the same. The error is logged in the
# daemon's group [DMN], whose number every version shares. 5) sid's charon
# loads the library for it from its plugin directory (the plugin version
# symbol matches) and refuses the one for 6.0.1 itself.
#
# Usage: tests/abi-guard.sh   (needs root, the lab's tools and cargo)
set -u
cd "$(dirname "$0")/.."

tree=$(cat build/strongswan/.tree 2>/dev/null)
skip() { echo "SKIP abi-guard: $*"; echo "abi-guard: 0 passed, 0 failed, 1 skipped"; exit 0; }
[ "$(id -u)" = 0 ] || skip "needs root (network namespaces)"
[ -n "$tree" ] && [ -f "$tree/config.h" ] || skip "no configured strongSwan tree (make build)"
for t in ip iptables charon swanctl ping nm cargo; do
	[ "$t" = charon ] && { [ -x /usr/lib/ipsec/charon ] || skip "missing /usr/lib/ipsec/charon"; continue; }
	command -v "$t" >/dev/null 2>&1 || skip "missing tool: $t"
done

# The mismatched build: same source, configured without --enable-mediation.
other=build/abi-guard/strongswan
if [ ! -f "$other/.configured" ]; then
	rm -rf build/abi-guard
	mkdir -p build/abi-guard
	cp -a "$tree" "$other"
	(cd "$other" && ./configure --disable-mediation --disable-gmp --disable-static --quiet) >/dev/null ||
		{ echo "FAIL abi-guard: configure without mediation failed"; exit 1; }
	touch "$other/.configured"
fi
grep -q '^#define ME ' "$other/config.h" && { echo "FAIL abi-guard: $other still defines ME"; exit 1; }
grep -q '^#define ME ' "$tree/config.h" || skip "the installed strongSwan was not built with ME; this test needs it"
STRONGSWAN_SRC=$(cd "$other" && pwd) CARGO_TARGET_DIR=target/abi-guard \
	cargo build --release --lib --quiet 2>&1 | grep -v '^warning: mobike-rs' >&2
lib=$PWD/target/abi-guard/release/libmobike_rs.so
[ -f "$lib" ] || { echo "FAIL abi-guard: mismatched build failed"; exit 1; }

. tests/lab/lib.sh
passed=0 failed=0 skipped=0

# guard_case NAME LIB ROOT WANT: charon (from ROOT, or the host's) with the
# mismatched LIB as road warrior against a stock gateway. The plugin must
# refuse with the error WANT once, and the built-in MOBIKE must still move.
guard_case() {
	local name=$1 mlib=$2 root=$3 want=$4
	(
		export LAB_LIB=$mlib LAB_ROOT_LIB=$mlib
		[ -n "$root" ] && export LAB_ROOT_rw=$root
		trap lab_down EXIT
		fail() { echo "  FAILED CHECK: $*" >&2; show_logs; exit 1; }
		lab_up guard || fail "lab setup"
		charon_start gw stock || fail "gw did not start"
		charon_start rw rust || fail "rw with the mismatched library did not start"
		tunnel_up || fail "tunnel setup: $(tail -n 3 "$LAB_DIR/initiate.out")"
		ping_ok || fail "no traffic through the tunnel"
		grep -qF "$want" "$LAB_DIR/rw/charon.log" || fail "rw did not log: $want"
		grep -F "$want" "$LAB_DIR/rw/charon.log" | grep -qF '[DMN] mobike-rs: ABI guard' ||
			fail "the guard's error is not in the [DMN] group: $(grep -F "$want" "$LAB_DIR/rw/charon.log")"
		[ "$(grep -c 'mobike-rs: ABI guard' "$LAB_DIR/rw/charon.log")" = 1 ] ||
			fail "the guard's error is not logged exactly once"
		in_log rw 'peer supports MOBIKE' || fail "MOBIKE not negotiated by the built-in"
		before=$(sa_field rw spis)
		ip -n "$LAB_NS-rw" link set rw-a down
		wait_for '[ "$(sa_field rw local)" = "198.18.2.2[4500]" ]' ||
			fail "built-in MOBIKE did not move: $(sa_field rw local)"
		ping_ok || fail "traffic did not resume after the move"
		[ "$(sa_field rw spis)" = "$before" ] || fail "IKE_SA changed"
		! in_log rw 'mobike-rs: Rust core runs' || fail "a task ran in the Rust core despite the guard"
		kill -0 $(ip netns pids "$LAB_NS-rw") 2>/dev/null || fail "charon died"
		lab_log "guard: $(grep -o 'mobike-rs: ABI guard.*' "$LAB_DIR/rw/charon.log" | head -n1)"
	)
	if [ $? = 0 ]; then
		echo "PASS abi-guard-$name (built-in MOBIKE moved the IKE_SA, error logged once)"
		passed=$((passed + 1))
	else
		echo "FAIL abi-guard-$name"
		failed=$((failed + 1))
	fi
}

version=$(sed -n 's/^#define VERSION "\(.*\)"/\1/p' "$tree/config.h")
guard_case no-me "$lib" "" \
	"mobike-rs: ABI guard: this library was built for strongSwan $version without mediation (ME) but runs in strongSwan $version with mediation (ME)"

# The library for the installed 5.9.8 in Debian 13's 6.0.1 charon.
troot=$PWD/build/trixie/root
if [ -x "$troot/usr/lib/ipsec/charon" ] && [ -f "$troot/.mobike-rs-root" ] && [ -f "$LAB_LIB" ]; then
	tver=$(cat "$troot/.mobike-rs-root")
	tver=${tver%%-*}
	guard_case other-version "$LAB_LIB" "$troot" \
		"mobike-rs: ABI guard: this library was built for strongSwan $version with mediation (ME) but runs in strongSwan $tver with mediation (ME)"
else
	echo "SKIP abi-guard-other-version: no Debian 13 tree or no library (make build, make build SUITE=trixie)"
	skipped=$((skipped + 1))
fi
# The libraries for two suite trees, each in the other's charon (from the
# tree: rw's LAB_ROOT_rw, the library through LAB_ROOT_LIB).
suite_case() { # NAME LIB_SUITE CHARON_SUITE
	local name=$1 ls=$2 cs=$3 lroot=$PWD/build/$2/root croot=$PWD/build/$3/root
	local llib=$PWD/target/$2/release/libmobike_rs.so lver cver
	if [ -f "$lroot/.mobike-rs-root" ] && [ -x "$croot/usr/lib/ipsec/charon" ] &&
		[ -f "$croot/.mobike-rs-root" ] && [ -f "$llib" ]; then
		lver=$(cat "$lroot/.mobike-rs-root")
		lver=${lver%%-*}
		cver=$(cat "$croot/.mobike-rs-root")
		cver=${cver%%-*}
		guard_case "$name" "$llib" "$croot" \
			"mobike-rs: ABI guard: this library was built for strongSwan $lver with mediation (ME) but runs in strongSwan $cver with mediation (ME)"
	else
		echo "SKIP abi-guard-$name: no $ls and $cs trees or no library for $ls (make build SUITE=$ls, make build SUITE=$cs)"
		skipped=$((skipped + 1))
	fi
}
suite_case trixie-in-sid trixie sid
suite_case sid-in-trixie sid trixie

# charon's own check (6.0.3 and later): a plugin loaded from a file, not
# preloaded, must export <name>_plugin_version equal to charon's VERSION.
# sid's charon, in a netns of its own, with the plugin directory holding
# the library for 6.1.0 (loads) or the one for 6.0.1 (refused by charon).
plugin_from_file() { # ROOT LIB: charon's log lines about the plugin
	local root=$1 lib=$2 w
	w=$(mktemp -d)
	[ -n "$root" ] && [ -d "$w" ] || return 1
	cp -a "$root/usr/lib/ipsec/plugins" "$w/plugins"
	cp "$lib" "$w/plugins/libstrongswan-mobike-rs.so"
	cat >"$w/strongswan.conf" <<EOF
charon {
	load_modular = no
	load = random nonce openssl pem pkcs1 x509 pubkey kernel-netlink socket-default mobike-rs
	filelog { log { path = $w/charon.log
		default = 1
		lib = 2 } }
	plugins { mobike-rs { status_socket = unix://$w/status.sock } }
}
EOF
	# charon runs until timeout stops it; all mounts are the namespace's
	timeout 5 unshare -m -n --propagation private sh -c "
		mount -t proc proc $root/proc && mount --rbind /dev $root/dev &&
		mount -t tmpfs tmpfs $root/run && mount -t tmpfs tmpfs $root/tmp &&
		mkdir -p $root$w && mount --bind $w $root$w &&
		mount --bind $w/plugins $root/usr/lib/ipsec/plugins &&
		exec chroot $root env STRONGSWAN_CONF=$w/strongswan.conf /usr/lib/ipsec/charon" >/dev/null 2>&1
	grep -E "plugin 'mobike-rs'|mobike-rs: plugin loaded" "$w/charon.log"
	rm -rf "$w"
}
sroot=$PWD/build/sid/root
slib=$PWD/target/sid/release/libmobike_rs.so
tlib=$PWD/target/trixie/release/libmobike_rs.so
if [ -x "$sroot/usr/lib/ipsec/charon" ] && [ -f "$slib" ] && [ -f "$tlib" ]; then
	sver=$(cat "$sroot/.mobike-rs-root")
	sver=${sver%%-*}
	out=$(plugin_from_file "$sroot" "$slib")
	if grep -q "plugin 'mobike-rs': loaded successfully" <<<"$out" && grep -q 'mobike-rs: plugin loaded' <<<"$out"; then
		echo "PASS abi-guard-plugin-version (the library for $sver loaded from a file by $sver's charon)"
		passed=$((passed + 1))
	else
		echo "FAIL abi-guard-plugin-version: the library for $sver not loaded from a file: $out"
		failed=$((failed + 1))
	fi
	out=$(plugin_from_file "$sroot" "$tlib")
	if grep -q "plugin 'mobike-rs': failed to load - plugin version .* doesn't match version $sver" <<<"$out" &&
		! grep -q 'mobike-rs: plugin loaded' <<<"$out"; then
		echo "PASS abi-guard-plugin-version-other (charon $sver refuses the library for trixie: ${out##*] })"
		passed=$((passed + 1))
	else
		echo "FAIL abi-guard-plugin-version-other: charon $sver did not refuse the library for trixie: $out"
		failed=$((failed + 1))
	fi
else
	echo "SKIP abi-guard-plugin-version: no sid tree or no library for sid and trixie (make build SUITE=sid, SUITE=trixie)"
	skipped=$((skipped + 1))
fi
echo "abi-guard: $passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
