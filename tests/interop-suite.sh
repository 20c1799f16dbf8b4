#!/usr/bin/env bash
# Interop of another suite's strongSwan (the charon of the debootstrap tree
# made by `make build SUITE=...`, run with chroot in the lab netns,
# configured by the tree's own swanctl) carrying the library built for it:
# trixie (Debian 13, 6.0.1) or sid (6.1.0). Against Debian 12's 5.9.8 (the
# host's charon), stock and with mobike-rs, and sid also against 6.0.1, in
# both roles:
#
#   negotiate, break-before-make, NAT   rw 5.9.8 stock     gw SUITE rust
#   negotiate, break-before-make, NAT   rw 5.9.8 rust      gw SUITE rust
#   negotiate, break-before-make, NAT   rw SUITE rust      gw 5.9.8 stock
#   MOBIKE off in gw's connection       rw 5.9.8 rust      gw SUITE rust
#   sid only:
#   negotiate, break-before-make, NAT   rw 6.0.1 rust      gw 6.1.0 rust
#   negotiate, break-before-make, NAT   rw 6.1.0 rust      gw 6.0.1 rust
#   negotiate, break-before-make, NAT   rw 6.1.0 rust      gw 6.0.1 stock
#
# The scenarios and their checks (same IKE SPIs before and after, one
# IKE_SA on each side, traffic through the tunnel resumes, the Rust core
# ran the MOBIKE tasks) are tests/interop.sh's FLAVOUR@SUITE ones: this
# runs exactly those that name SUITE and no newer suite (a scenario between
# two suites belongs to the newer one), so there is one implementation of
# each check and one list. Each scenario's lab is removed by interop.sh's
# per-scenario trap, also on failure or interruption.
#
# Usage: tests/interop-suite.sh SUITE [-l]
# Prints PASS/FAIL/SKIP lines and a summary; exit status 1 if one failed.
set -u
cd "$(dirname "$0")/.."

# oldest first: a scenario belongs to the last suite of this list it names
SUITES=(trixie sid)
suite=${1:-}
case " ${SUITES[*]} " in
	*" $suite "*) ;;
	*) echo "usage: tests/interop-suite.sh SUITE [-l]   (SUITE: ${SUITES[*]})" >&2; exit 2 ;;
esac
newer=()
for s in "${SUITES[@]}"; do
	[ -n "${seen:-}" ] && newer+=("$s")
	[ "$s" = "$suite" ] && seen=1
done

SCENARIOS=()
while IFS= read -r s; do
	case "$s" in *"@$suite"*) ;; *) continue ;; esac
	for n in "${newer[@]}"; do
		case "$s" in *"@$n"*) continue 2 ;; esac
	done
	SCENARIOS+=("$s")
done < <(tests/interop.sh -l)

if [ "${2:-}" = -l ]; then
	printf '%s\n' "${SCENARIOS[@]}"
	exit 0
fi

root=${SUITE_ROOT:-$PWD/build/$suite/root}
lib=${SUITE_LIB:-$PWD/target/$suite/release/libmobike_rs.so}
export "SUITE_ROOT_$suite=$root" "SUITE_LIB_$suite=$lib"

# Reasons to skip everything that are particular to the suite; the lab's
# own (tools, the 5.9.8 charon and library, the other suites' trees) are
# interop.sh's.
skip_reason() {
	[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces, chroot)"; return; }
	command -v nsenter >/dev/null 2>&1 || { echo "missing tool: nsenter"; return; }
	[ -x "$root/usr/lib/ipsec/charon" ] && [ -x "$root/usr/sbin/swanctl" ] ||
		{ echo "no $suite tree with charon and swanctl at $root (make build SUITE=$suite)"; return; }
	[ -f "$root/usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so" ] ||
		{ echo "the $suite tree has no kernel-libipsec (libcharon-extra-plugins)"; return; }
	[ -f "$lib" ] || { echo "library for $suite not built: $lib (make build SUITE=$suite)"; return; }
	nm -D --defined-only "$lib" 2>/dev/null | grep -q ' ike_mobike_create$' ||
		{ echo "$lib was built without the charon adapter (STRONGSWAN_SRC unset)"; return; }
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
run=()
if [ ${#SCENARIOS[@]} = 0 ]; then
	echo "FAIL interop-$suite: tests/interop.sh has no scenario for @$suite"
	failed=1
fi
for s in "${SCENARIOS[@]}"; do
	name=${s// /-}
	if [ -n "$reason" ]; then
		echo "SKIP $name: $reason"
		skipped=$((skipped + 1))
	else
		run+=("$name")
	fi
done
if [ ${#run[@]} -gt 0 ]; then
	count < <(tests/interop.sh "${run[@]}" 2>&1)
fi
echo "interop-$suite: $passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
