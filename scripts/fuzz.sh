#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a bounded time and fails on any
# crash.
#
#   scripts/fuzz.sh [SECONDS]     (default: $FUZZ_SECONDS, else 60 per target)
#
# Each target starts from a copy of its committed seeds (fuzz/seeds/<target>/)
# in a temporary directory, so inputs libFuzzer adds never land in the
# repository. A crash, a leak, an input slower than FUZZ_TIMEOUT seconds or
# more than FUZZ_RSS_MB of memory is a failure; libFuzzer keeps the input in
# fuzz/artifacts/<target>/ (git-ignored) and the FAIL line names it.
# Reproduce one with `cd fuzz && cargo fuzz run <target> <input>` (the adapter
# target: with STRONGSWAN_SRC, LD_LIBRARY_PATH=/usr/lib/ipsec and --features adapter).
#
# The core targets (exchange, notify_decode) need nothing but Rust. The
# adapter target (fuzz/fuzz_targets/adapter.rs: the charon adapter on fake
# strongSwan objects) needs the configured strongSwan tree the Makefile
# makes (build/strongswan/.tree, `make build`) and libcharon
# (STRONGSWAN_LIBDIR, default /usr/lib/ipsec); without them it is SKIPped,
# the others still run.
#
# Prints PASS/FAIL/SKIP per target and a summary; exit status 1 if one failed.
# Without cargo, or without network to install cargo-fuzz or fetch the fuzz
# crates, it prints SKIP with the reason.
set -uo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-${FUZZ_SECONDS:-60}}
rss_mb=${FUZZ_RSS_MB:-2048}
timeout_s=${FUZZ_TIMEOUT:-10}
case $seconds in '' | *[!0-9]*)
	echo "usage: $0 [SECONDS]" >&2
	exit 2
	;;
esac

summary() { echo "fuzz: $1 passed, $2 failed, $3 skipped"; }
skip_all() {
	echo "SKIP fuzz: $*"
	summary 0 0 1
	exit 0
}

if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
	. "$HOME/.cargo/env"
fi
command -v cargo >/dev/null 2>&1 || skip_all "no cargo (install Rust with rustup)"

# The core targets are built for the Rust core alone: no charon adapter, in
# the fuzz crate's own target directory (fuzz/target). Only the adapter
# target gets the strongSwan tree (adapter_env).
unset STRONGSWAN_SRC CARGO_TARGET_DIR
swan_libdir=${STRONGSWAN_LIBDIR:-/usr/lib/ipsec}
unset STRONGSWAN_LIBDIR
swan_tree=$(cat build/strongswan/.tree 2>/dev/null)
adapter_skip=
if [ -z "$swan_tree" ] || [ ! -f "$swan_tree/config.h" ]; then
	adapter_skip="no configured strongSwan tree (build/strongswan/.tree: make build)"
elif [ ! -e "$swan_libdir/libcharon.so.0" ] && [ ! -e "$swan_libdir/libcharon.so" ]; then
	adapter_skip="no libcharon in $swan_libdir (STRONGSWAN_LIBDIR)"
fi
# adapter_env CMD...: CMD with the adapter target's build and run environment
# (libcharon is linked from, and found at run time in, STRONGSWAN_LIBDIR).
adapter_env() {
	STRONGSWAN_SRC=$swan_tree STRONGSWAN_LIBDIR=$swan_libdir \
		LD_LIBRARY_PATH=$swan_libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} "$@"
}

# cargo-fuzz needs `-Z` flags (sanitizers, coverage instrumentation) that
# only a nightly compiler accepts. A nightly toolchain is used if rustup has
# one; otherwise the installed stable one is told to accept them with
# RUSTC_BOOTSTRAP=1 (meant for building the compiler itself, but the usual
# way to fuzz on stable; the targets need no other unstable feature).
toolchain=()
if [ -n "${FUZZ_TOOLCHAIN:-}" ]; then
	toolchain=(+"$FUZZ_TOOLCHAIN")
elif command -v rustup >/dev/null 2>&1 && rustup toolchain list | grep -q '^nightly'; then
	toolchain=(+nightly)
fi
if [ ${#toolchain[@]} -eq 0 ] || [ "${toolchain[0]}" != +nightly ]; then
	export RUSTC_BOOTSTRAP=1
fi
echo "fuzz: toolchain ${toolchain[*]:-default}${RUSTC_BOOTSTRAP:+ with RUSTC_BOOTSTRAP=1}, $seconds s per target"

if ! cargo fuzz --version >/dev/null 2>&1; then
	echo "fuzz: installing cargo-fuzz"
	cargo install cargo-fuzz --locked >/tmp/mobike-rs-fuzz-install.$$ 2>&1 || {
		tail -n 5 /tmp/mobike-rs-fuzz-install.$$
		rm -f /tmp/mobike-rs-fuzz-install.$$
		skip_all "cargo-fuzz missing and 'cargo install cargo-fuzz --locked' failed (no network?)"
	}
	rm -f /tmp/mobike-rs-fuzz-install.$$
fi
cargo "${toolchain[@]}" fetch --manifest-path fuzz/Cargo.toml >/dev/null 2>&1 ||
	skip_all "cannot fetch the fuzz crates (no network?)"
# Everything is fetched: the build itself must not need the network.
export CARGO_NET_OFFLINE=true

cd fuzz
# the core targets (the adapter target needs its feature, so not here)
if ! cargo "${toolchain[@]}" fuzz build; then
	echo "FAIL fuzz: cargo fuzz build failed"
	summary 0 1 0
	exit 1
fi
mapfile -t targets < <(cargo "${toolchain[@]}" fuzz list)
[ ${#targets[@]} -gt 0 ] || {
	echo "FAIL fuzz: no fuzz targets"
	summary 0 1 0
	exit 1
}

scratch=$(mktemp -d /tmp/mobike-rs-fuzz.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
passed=0 failed=0 skipped=0
for t in "${targets[@]}"; do
	run=(cargo "${toolchain[@]}" fuzz run)
	if [ "$t" = adapter ]; then
		if [ -n "$adapter_skip" ]; then
			echo "SKIP fuzz-$t: $adapter_skip"
			skipped=$((skipped + 1))
			continue
		fi
		if ! adapter_env cargo "${toolchain[@]}" fuzz build --features adapter "$t"; then
			echo "FAIL fuzz-$t: cargo fuzz build --features adapter failed"
			failed=$((failed + 1))
			continue
		fi
		run=(adapter_env cargo "${toolchain[@]}" fuzz run --features adapter)
	fi
	corpus=$scratch/$t
	mkdir -p "$corpus" "artifacts/$t"
	if [ -d "seeds/$t" ]; then
		cp seeds/"$t"/* "$corpus"/ 2>/dev/null
	fi
	log=$scratch/$t.log
	"${run[@]}" "$t" "$corpus" -- \
		-max_total_time="$seconds" -rss_limit_mb="$rss_mb" -timeout="$timeout_s" \
		-print_final_stats=1 >"$log" 2>&1
	rc=$?
	# libFuzzer's last line: "Done <runs> runs in <seconds> second(s)".
	done_line=$(grep -E '^Done [0-9]+ runs in [0-9]+ second' "$log" | tail -n 1)
	execs=$(sed -E 's/^Done ([0-9]+) runs in ([0-9]+).*/\1/' <<<"$done_line")
	took=$(sed -E 's/^Done ([0-9]+) runs in ([0-9]+).*/\2/' <<<"$done_line")
	inputs=$(find "$corpus" -type f | wc -l)
	if [ $rc -eq 0 ] && [ -n "$done_line" ]; then
		echo "PASS fuzz-$t: $execs execs in $took s, corpus $inputs inputs, no crash"
		passed=$((passed + 1))
	else
		artifact=$(grep -oE 'Test unit written to [^ ]+' "$log" | tail -n 1 | sed 's/^Test unit written to //')
		grep -E "panicked at|^thread '|ERROR: libFuzzer|ERROR: AddressSanitizer|^SUMMARY" -A 1 "$log" | head -n 12
		echo "FAIL fuzz-$t: exit status $rc, crashing input: ${artifact:-none written (see the lines above)}"
		failed=$((failed + 1))
	fi
done
summary "$passed" "$failed" "$skipped"
[ "$failed" -eq 0 ]
