#!/usr/bin/env bash
# Interop of the build without mediation (no ME, as Fedora configures
# strongSwan; the library `make rpm` packages, make build-nome) preloaded
# into a 5.9.8 charon built here from the same source without mediation
# (tests/lab/nome-charon.sh, cached in build/nome-charon), against Debian
# 12's stock 5.9.8 charon (the host's, built with ME):
#
#   negotiate, break-before-make   rw rust@nome   gw 5.9.8 stock
#   negotiate, break-before-make   gw rust@nome   rw 5.9.8 stock
#
# The scenarios and their checks (MOBIKE negotiated, charon's call bound to
# the library, same IKE SPIs before and after the move, traffic resumes,
# the MOBIKE tasks ran in the Rust core, which the ABI guard allows only
# when library and charon agree on ME) are tests/interop.sh's rust/stock
# ones, run with that node's charon and library replaced
# (LAB_CHARON_<node>, LAB_LIB_<node>, tests/lab/lib.sh).
#
# Usage: tests/interop-nome.sh [-l]
# Prints PASS/FAIL/SKIP lines and a summary; exit status 1 if one failed.
set -u
cd "$(dirname "$0")/.."

# NAME  NODE  tests/interop.sh's scenario
SCENARIOS=(
	"negotiate-rust@nome-stock rw negotiate-rust-stock"
	"break-rust@nome-stock rw break-rust-stock"
	"negotiate-stock-rust@nome gw negotiate-stock-rust"
	"break-stock-rust@nome gw break-stock-rust"
)
NOME_STAMP=${NOME_STAMP:-build/strongswan-nome/.tree}
NOME_LIB=${NOME_LIB:-$PWD/target/nome/release/libmobike_rs.so}

if [ "${1:-}" = -l ]; then
	printf '%s\n' "${SCENARIOS[@]%% *}"
	exit 0
fi

passed=0 failed=0 skipped=0
verdicts() { # NAME SCENARIO: interop.sh's output, SCENARIO renamed NAME, counted
	local line
	while IFS= read -r line; do
		case "$line" in
			"interop: "*) continue ;;
			"PASS "*) passed=$((passed + 1)) ;;
			"FAIL "*) failed=$((failed + 1)) ;;
			"SKIP "*) skipped=$((skipped + 1)) ;;
		esac
		printf '%s\n' "${line/ $2/ $1}"
	done
}
skip_all() {
	local s
	for s in "${SCENARIOS[@]}"; do
		echo "SKIP ${s%% *}: $1"
		skipped=$((skipped + 1))
	done
}

reason=""
[ "$(id -u)" = 0 ] || reason="needs root (network namespaces)"
[ -n "$reason" ] || [ -f "$NOME_LIB" ] || reason="library without mediation not built: $NOME_LIB (make build-nome)"
if [ -n "$reason" ]; then
	skip_all "$reason"
else
	set -o pipefail
	charon=$(tests/lab/nome-charon.sh "$NOME_STAMP" | tail -n 1)
	rc=$?
	set +o pipefail
	if [ $rc = 77 ]; then
		skip_all "cannot build a charon without mediation here (see above)"
	elif [ $rc != 0 ] || [ ! -x "$charon" ]; then
		echo "FAIL interop-nome: building the charon without mediation failed (tests/lab/nome-charon.sh)"
		failed=$((failed + 1))
	else
		for s in "${SCENARIOS[@]}"; do
			read -r name node scenario <<<"$s"
			verdicts "$name" "$scenario" < <(env "LAB_CHARON_$node=$charon" "LAB_LIB_$node=$NOME_LIB" \
				tests/interop.sh "$scenario" 2>&1)
		done
	fi
fi
echo "interop-nome: $passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
