#!/usr/bin/env bash
# The profile of the profile-guided build (make build PGO=1): the library built
# with instrumentation in TARGET_DIR/pgo-gen (the same cargo command as the
# release build, so its functions have the same names), the training run
# (tools/pgo_train.rs, built in TARGET_DIR/pgo-train) driving it, and the
# counts merged into OUT. The release build then compiles with
# -Cprofile-use=OUT (Makefile, PGO_FLAGS).
#
# Usage: tools/pgo.sh TARGET_DIR OUT (with the Makefile's build
# environment: STRONGSWAN_SRC, STRONGSWAN_LIBDIR).
#
# Without llvm-profdata (the rustup component llvm-tools, of the same
# toolchain as rustc, so that the profile's format is the compiler's) OUT is
# left empty and the release build is an ordinary one: the library works
# the same, its steps are slower. That is said on stderr, not an error.
set -euo pipefail
[ $# = 2 ] || { echo "usage: $0 TARGET_DIR OUT" >&2; exit 2; }
target=$1
out=$2
mkdir -p "$(dirname "$out")"
# without_profile WHY: an empty profile (the Makefile builds without one)
without_profile() {
	echo "pgo: $1: building without a profile" >&2
	: >"$out"
	exit 0
}
host=$(rustc -vV | sed -n 's/^host: //p')
profdata=$(rustc --print sysroot)/lib/rustlib/$host/bin/llvm-profdata
[ -x "$profdata" ] || without_profile "$profdata missing (rustup component add llvm-tools)"
gen=$target/pgo-gen
raw=$(realpath -m "$gen/raw")
# RUSTFLAGS reach every crate; the counters that matter are the library's
MOBIKE_RS_PGO_TRAIN=1 RUSTFLAGS="-Cprofile-generate=$raw" CARGO_TARGET_DIR=$gen \
	cargo build --release --workspace
CARGO_TARGET_DIR=$target/pgo-train cargo build --release --example pgo_train
# only the training run's counts (instrumented build scripts write theirs)
rm -rf "$raw"
mkdir -p "$raw"
# exit 3: the library could not be loaded here (say, built against another
# strongSwan than the one installed): no profile, as without llvm-tools.
# Any other failure is a broken library and fails the build.
rc=0
LLVM_PROFILE_FILE="$raw/train-%p.profraw" \
	"$target/pgo-train/release/examples/pgo_train" "$gen/release/libmobike_rs.so" || rc=$?
[ "$rc" != 3 ] || without_profile "the training run could not load the library"
[ "$rc" = 0 ] || { echo "pgo: the training run failed (exit $rc)" >&2; exit 1; }
"$profdata" merge -o "$out.tmp" "$raw"/*.profraw
mv "$out.tmp" "$out"
echo "pgo: profile $out ($(stat -c %s "$out") bytes)"
