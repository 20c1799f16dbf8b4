#!/usr/bin/env bash
# The adapter's daemon-free tests (src/charon/, fake strongSwan objects
# driven through the real ike_mobike_t, plugin and listener methods) under
# valgrind memcheck: no invalid read or write, no use of an uninitialised
# value, no definitely lost block. They are the tests of the only code
# with `unsafe` over charon; `cargo test` alone would not see a use after
# free that happens to read the right bytes.
#
# Usage: tests/adapter-memcheck.sh   (needs valgrind and a configured
# strongSwan tree, build/strongswan/.tree; make build makes it)
set -u
cd "$(dirname "$0")/.."

skip() { echo "SKIP adapter-memcheck: $*"; echo "adapter-memcheck: 0 passed, 0 failed, 1 skipped"; exit 0; }
tree=$(cat build/strongswan/.tree 2>/dev/null)
[ -n "$tree" ] && [ -f "$tree/config.h" ] || skip "no configured strongSwan tree (make build)"
command -v valgrind >/dev/null 2>&1 || skip "missing tool: valgrind"
command -v python3 >/dev/null 2>&1 || skip "missing tool: python3"

export STRONGSWAN_SRC=$tree STRONGSWAN_LIBDIR=${STRONGSWAN_LIBDIR:-/usr/lib/ipsec}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
# the library's unit test binary, as cargo names it
bin=$(cargo test --release --lib --no-run --message-format=json 2>/dev/null |
	python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "mobike_rs":
        print(m["executable"])')
[ -n "$bin" ] && [ -x "$bin" ] || { echo "FAIL adapter-memcheck: no test binary"; exit 1; }
# the tests of the adapter: they must exist (an empty run passes nothing)
n=$("$bin" --list charon:: 2>/dev/null | grep -c ': test$')
[ "$n" -gt 0 ] || { echo "FAIL adapter-memcheck: no charon:: tests in $bin"; exit 1; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
	--show-leak-kinds=definite --track-origins=yes --quiet \
	"$bin" charon:: --test-threads=1 >"$log" 2>&1; then
	echo "PASS adapter-memcheck ($n tests under valgrind)"
	echo "adapter-memcheck: 1 passed, 0 failed, 0 skipped"
else
	rc=$?
	tail -n 60 "$log"
	echo "FAIL adapter-memcheck: exit $rc (99: valgrind found errors)"
	echo "adapter-memcheck: 0 passed, 1 failed, 0 skipped"
	exit 1
fi
