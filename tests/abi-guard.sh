#!/usr/bin/env bash
# The ABI guard refuses a library built for another charon; charon must
# keep working with its built-in MOBIKE (a break-before-make move in the
# lab) and log one error that names both builds, in the daemon's group
# [DMN], whose number every version shares. The cases:
#   no-me          the 5.9.8 library built without mediation (ME; make
#                  build-nome, as the .rpm) in the installed 5.9.8 charon,
#                  built with ME: ME changes charon's struct layouts
#   me-in-nome     the 5.9.8 library built with ME (make build) in a 5.9.8
#                  charon built here without ME (tests/lab/nome-charon.sh)
#   trixie-no-me   the 6.0.1 library without ME in Debian 13's 6.0.1 charon
#   other-version  the 5.9.8 library in Debian 13's 6.0.1 charon
#   trixie-in-sid  the 6.0.1 library in sid's 6.1.0 charon
#   sid-in-trixie  the 6.1.0 library in Debian 13's 6.0.1 charon
#   sid's charon loads the library for it from its plugin directory (the
#   plugin version symbol matches) and refuses the one for 6.0.1 itself
#
# Usage: tests/abi-guard.sh   (needs root, the lab's tools and cargo)
set -u
cd "$(dirname "$0")/.."

tree=$(cat build/strongswan/.tree 2>/dev/null)
skip() { echo "SKIP abi-guard: $*"; echo "abi-guard: 0 passed, 0 failed, 1 skipped"; exit 0; }
[ "$(id -u)" = 0 ] || skip "needs root (network namespaces)"
[ -n "$tree" ] && [ -f "$tree/config.h" ] || skip "no configured strongSwan tree (make build)"
for t in ip iptables charon swanctl ping nm cargo make; do
	[ "$t" = charon ] && { [ -x /usr/lib/ipsec/charon ] || skip "missing /usr/lib/ipsec/charon"; continue; }
	command -v "$t" >/dev/null 2>&1 || skip "missing tool: $t"
done

grep -q '^#define ME ' "$tree/config.h" || skip "the installed strongSwan was not built with ME; this test needs it"
# nome_lib [SUITE=...]: the library built without mediation (make
# build-nome: the same source configured --disable-mediation); its path.
nome_lib() {
	local out
	out=$(make -s build-nome "$@" 2>&1) || { printf '%s\n' "$out" | tail -n 5 >&2; return 1; }
	[ "${1:-}" = SUITE=trixie ] && echo "$PWD/target/trixie/nome/release/libmobike_rs.so" ||
		echo "$PWD/target/nome/release/libmobike_rs.so"
}
lib=$(nome_lib) && [ -f "$lib" ] || { echo "FAIL abi-guard: the build without mediation failed (make build-nome)"; exit 1; }
grep -q '^#define ME ' "$(cat build/strongswan-nome/.tree)/config.h" &&
	{ echo "FAIL abi-guard: build/strongswan-nome still defines ME"; exit 1; }

. tests/lab/lib.sh
passed=0 failed=0 skipped=0

# guard_case NAME LIB ROOT WANT [CHARON]: charon (from ROOT, CHARON or the
# host's) with the mismatched LIB as road warrior against a stock gateway.
# The plugin must refuse with the error WANT once, and the built-in MOBIKE
# must still move.
guard_case() {
	local name=$1 mlib=$2 root=$3 want=$4 charon=${5:-}
	(
		export LAB_LIB=$mlib LAB_ROOT_LIB=$mlib
		[ -n "$root" ] && export LAB_ROOT_rw=$root
		[ -n "$charon" ] && export LAB_CHARON_rw=$charon
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

# The library for Debian's charon (with ME) in a charon built here from the
# same source without ME.
if [ ! -f "$LAB_LIB" ]; then
	echo "SKIP abi-guard-me-in-nome: no library built with ME: $LAB_LIB (make build)"
	skipped=$((skipped + 1))
else
	set -o pipefail
	nome_charon=$(tests/lab/nome-charon.sh build/strongswan-nome/.tree | tail -n 1)
	rc=$?
	set +o pipefail
	if [ $rc = 77 ]; then
		echo "SKIP abi-guard-me-in-nome: cannot build a charon without mediation here (see above)"
		skipped=$((skipped + 1))
	elif [ $rc != 0 ] || [ ! -x "$nome_charon" ]; then
		echo "FAIL abi-guard-me-in-nome: building the charon without mediation failed (tests/lab/nome-charon.sh)"
		failed=$((failed + 1))
	else
		guard_case me-in-nome "$LAB_LIB" "" \
			"mobike-rs: ABI guard: this library was built for strongSwan $version with mediation (ME) but runs in strongSwan $version without mediation (ME)" \
			"$nome_charon"
	fi
fi

# Debian 13's 6.0.1 charon: the library for the installed 5.9.8, and the
# one for 6.0.1 built without ME.
troot=$PWD/build/trixie/root
if [ -x "$troot/usr/lib/ipsec/charon" ] && [ -f "$troot/.mobike-rs-root" ] && [ -f "$LAB_LIB" ]; then
	tver=$(cat "$troot/.mobike-rs-root")
	tver=${tver%%-*}
	guard_case other-version "$LAB_LIB" "$troot" \
		"mobike-rs: ABI guard: this library was built for strongSwan $version with mediation (ME) but runs in strongSwan $tver with mediation (ME)"
	if tlib=$(nome_lib SUITE=trixie) && [ -f "$tlib" ]; then
		guard_case trixie-no-me "$tlib" "$troot" \
			"mobike-rs: ABI guard: this library was built for strongSwan $tver without mediation (ME) but runs in strongSwan $tver with mediation (ME)"
	else
		echo "FAIL abi-guard-trixie-no-me: the 6.0.1 build without mediation failed (make build-nome SUITE=trixie)"
		failed=$((failed + 1))
	fi
else
	for c in other-version trixie-no-me; do
		echo "SKIP abi-guard-$c: no Debian 13 tree or no library (make build, make build SUITE=trixie)"
		skipped=$((skipped + 1))
	done
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
