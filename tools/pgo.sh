#!/usr/bin/env bash
# The profile of the profile-guided build (make build PGO=1): the training run
# (tools/pgo_train.rs: the real charon adapter and core, driven through the
# fake strongSwan world the way a gateway and a road warrior run them per
# roam) built with instrumentation in TARGET_DIR/pgo-gen, linking the
# library's rlib built with the release build's features (so its functions
# have the same names), run, and its counts merged into OUT. The release
# build then compiles with -Cprofile-use=OUT (Makefile, PGO_FLAGS).
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
# The trainer links the library's rlib and drives the adapter on the fake
# strongSwan world (src/charon/fake.rs, compiled in by
# MOBIKE_RS_FAKE_CHARON=1, a build script cfg: a cargo feature would change
# the library's symbol names, which the profile is keyed by). RUSTFLAGS
# reach every crate, the library's functions included; the release build
# compiles the same functions with -Cprofile-use.
MOBIKE_RS_FAKE_CHARON=1 RUSTFLAGS="-Cprofile-generate=$raw" CARGO_TARGET_DIR=$gen \
	cargo build --release -p mobike-rs --example pgo_train
# only the training run's counts (instrumented build scripts write theirs)
rm -rf "$raw"
mkdir -p "$raw"
# exit 127: the trainer could not be started here (libcharon missing or of
# another strongSwan than the one built for): no profile, as without
# llvm-tools. Any other failure is a broken library and fails the build.
rc=0
LLVM_PROFILE_FILE="$raw/train-%p.profraw" \
	LD_LIBRARY_PATH=${STRONGSWAN_LIBDIR:-/usr/lib/ipsec}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} \
	"$gen/release/examples/pgo_train" || rc=$?
[ "$rc" != 127 ] || without_profile "the training run could not load libcharon"
[ "$rc" = 0 ] || { echo "pgo: the training run failed (exit $rc)" >&2; exit 1; }
"$profdata" merge -o "$out.tmp" "$raw"/*.profraw
[ -s "$out.tmp" ] || { echo "pgo: the training run wrote no counts" >&2; exit 1; }
mv "$out.tmp" "$out"
echo "pgo: profile $out ($(stat -c %s "$out") bytes)"
