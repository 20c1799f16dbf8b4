#!/usr/bin/env bash
# Interop of Debian 13's strongSwan 6.0.1 (the charon of the debootstrap
# tree made by `make build SUITE=trixie`, run with chroot in the lab netns,
# configured by the tree's own swanctl) carrying the library built for it,
# against Debian 12's 5.9.8 (the host's charon), stock and with mobike-rs:
#
#   negotiate, break-before-make   gw 6.0.1 rust   rw 5.9.8 stock
#   negotiate, break-before-make   gw 6.0.1 rust   rw 5.9.8 rust
#   negotiate, break-before-make   rw 6.0.1 rust   gw 5.9.8 stock
#
# The scenarios and their checks (same IKE SPIs before and after, one
# IKE_SA on each side, traffic through the tunnel resumes, the Rust core
# ran the MOBIKE tasks) are tests/interop.sh's FLAVOUR@trixie ones: this
# runs exactly those, so there is one implementation of each check. Each
# scenario's lab is removed by interop.sh's per-scenario trap, also on
# failure or interruption.
#
# Usage: tests/interop-trixie.sh [-l]
# Prints PASS/FAIL/SKIP lines and a summary; exit status 1 if one failed.
set -u
cd "$(dirname "$0")/.."

SCENARIOS=(
	"negotiate stock rust@trixie"
	"break stock rust@trixie"
	"negotiate rust rust@trixie"
	"break rust rust@trixie"
	"negotiate rust@trixie stock"
	"break rust@trixie stock"
)
TRIXIE_ROOT=${TRIXIE_ROOT:-$PWD/build/trixie/root}
TRIXIE_LIB=${TRIXIE_LIB:-$PWD/target/trixie/release/libmobike_rs.so}
export TRIXIE_ROOT TRIXIE_LIB

if [ "${1:-}" = -l ]; then
	printf '%s\n' "${SCENARIOS[@]}"
	exit 0
fi

# Reasons to skip everything that are particular to 6.0.1; the lab's own
# (tools, the 5.9.8 charon and library) are interop.sh's.
skip_reason() {
	[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces, chroot)"; return; }
	command -v nsenter >/dev/null 2>&1 || { echo "missing tool: nsenter"; return; }
	[ -x "$TRIXIE_ROOT/usr/lib/ipsec/charon" ] && [ -x "$TRIXIE_ROOT/usr/sbin/swanctl" ] ||
		{ echo "no Debian 13 tree with charon and swanctl at $TRIXIE_ROOT (make build SUITE=trixie)"; return; }
	[ -f "$TRIXIE_ROOT/usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so" ] ||
		{ echo "the Debian 13 tree has no kernel-libipsec (libcharon-extra-plugins)"; return; }
	[ -f "$TRIXIE_LIB" ] || { echo "library for 6.0.1 not built: $TRIXIE_LIB (make build SUITE=trixie)"; return; }
	nm -D --defined-only "$TRIXIE_LIB" 2>/dev/null | grep -q ' ike_mobike_create$' ||
		{ echo "$TRIXIE_LIB was built without the charon adapter (STRONGSWAN_SRC unset)"; return; }
}

passed=0 failed=0 skipped=0
count() { # reads interop.sh's output, passes it on and counts its verdicts
	local line
	while IFS= read -r line; do
		case "$line" in
			"PASS "*) passed=$((passed + 1)) ;;
			"FAIL "*) failed=$((failed + 1)) ;;
			"SKIP "*) skipped=$((skipped + 1)) ;;
			"interop: "*) continue ;;
		esac
		printf '%s\n' "$line"
	done
}

reason=$(skip_reason)
known=$(tests/interop.sh -l)
run=()
for s in "${SCENARIOS[@]}"; do
	name=${s// /-}
	if [ -n "$reason" ]; then
		echo "SKIP $name: $reason"
		skipped=$((skipped + 1))
	elif ! grep -qxF "$s" <<<"$known"; then
		echo "FAIL $name: not a scenario of tests/interop.sh (add \"$s\" to its SCENARIOS)"
		failed=$((failed + 1))
	else
		run+=("$name")
	fi
done
if [ ${#run[@]} -gt 0 ]; then
	count < <(tests/interop.sh "${run[@]}" 2>&1)
fi
echo "interop-trixie: $passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
