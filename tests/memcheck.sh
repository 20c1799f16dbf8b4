#!/usr/bin/env bash
# tests/interop.sh's scenarios with every rust-flavoured charon running under
# valgrind memcheck, each valgrind log then checked:
#   FAIL on any invalid read or write, use of uninitialised memory, or
#   invalid or mismatched free, wherever it is in charon;
#   FAIL on a definitely or indirectly lost block whose allocation stack has
#   a frame of ours: libmobike_rs.so, a mobike_rs_* function or our Rust
#   crate (mobike_rs::...).
# What stock charon (libstrongswan, its openssl plugin, OpenSSL, glibc)
# shows by itself is suppressed by tests/valgrind.supp; leak records of
# theirs that remain are counted, not failed. The item `baseline` runs
# break-before-make with two stock charons under valgrind and checks the
# suppressions against them: each one used, nothing of stock's left.
#
# Usage: tests/memcheck.sh [ITEM...]   (default: all of MEMCHECK_SCENARIOS)
#   ITEM: baseline, or an interop scenario: negotiate-rust-rust, ...
# MEMCHECK_OUT=DIR keeps the valgrind logs there (default: a temporary
# directory, removed when everything passed). Needs root and valgrind;
# without them every item is reported as SKIP with the reason.
set -u
cd "$(dirname "$0")/.."
. tests/interop.sh # lib.sh, the scenario_* functions, skip_reason; runs nothing

MEMCHECK_SCENARIOS=(
	"baseline"
	"negotiate rust rust"
	"break rust stock"
	"break stock rust"
	"break rust rust"
	"nat rust stock"
	"return rust stock"
	"prefer rust stock"
	"status rust rust"
	"rr rust rust"
	"rrchildless stock rust"
	"natprohibited rust rust"
	"unacceptable rust rust"
	"v4to6 rust rust"
	"filter rust stock"
	"silent rust stock"
	"natmap rust rust"
)
MEMCHECK_TIMEOUT=${MEMCHECK_TIMEOUT:-1800}
# Under valgrind charon starts and answers many times slower, more so on a
# loaded machine: each single wait of lib.sh may take this long (they poll,
# so this costs nothing when things go well).
LAB_WAIT=${MEMCHECK_WAIT:-90}
# How long a charon may take to shut down and valgrind to look for leaks.
MEMCHECK_STOP_WAIT=${MEMCHECK_STOP_WAIT:-180}
MEMCHECK_SUPP=$PWD/tests/valgrind.supp
# --keep-debuginfo: charon dlclose()s its plugins at exit, and leak records
# need their symbols. -s: the suppressions used, after the ERROR SUMMARY.
VALGRIND="valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite,indirect"
VALGRIND+=" --errors-for-leak-kinds=definite --track-origins=no --num-callers=30"
VALGRIND+=" --keep-debuginfo=yes -s --suppressions=$MEMCHECK_SUPP ${MEMCHECK_VALGRIND_ARGS:-}"
VALGRIND+=" --log-file=%q{LAB_NODE_DIR}/valgrind.log"

# Headings of error records that fail ("Use --track-origins=yes to see
# where uninitialised values come from", valgrind's closing hint, is none).
ERROR_RE='Invalid read|Invalid write|uninitialised|Invalid free|Mismatched free'
# A frame of ours in a stack line: the library, an exported mobike_rs_*
# symbol or a Rust crate path. The last alternative matched the files of
# the C shim (mobike_rs_*.c), which no longer exists.
OURS_RE='libmobike_rs\.so|: mobike_rs_|mobike_rs::|\(mobike_rs_[a-z_]+\.[ch]:[0-9]+\)'

# The flavour that runs under valgrind: rust, or stock for the baseline.
MEMCHECK_FLAVOUR=rust

# Instead of interop.sh's start_node (no @trixie here: chroot nodes never
# run under LAB_WRAPPER).
start_node() { # NODE FLAVOUR [strongswan.conf lines...]
	local node=$1 flavour=$2
	shift 2
	if [ "$flavour" = "$MEMCHECK_FLAVOUR" ]; then
		LAB_WRAPPER=$VALGRIND charon_start "$node" "$flavour" "$@"
	else
		LAB_WRAPPER="" charon_start "$node" "$flavour" "$@"
	fi
}

# valgrind_done NODE: the log is complete (valgrind writes the ERROR
# SUMMARY last) and nothing runs in the node's netns any more.
valgrind_done() {
	grep -q 'ERROR SUMMARY:' "$LAB_DIR/$1/valgrind.log" 2>/dev/null &&
		[ -z "$(ip netns pids "$LAB_NS-$1" 2>/dev/null)" ]
}

# memcheck_down OUT ITEM: stop the charons under valgrind with SIGTERM, wait
# (bounded) until each has shut down and valgrind has looked for leaks, keep
# their logs as OUT/ITEM-NODE.log, then lab_down for everything else.
memcheck_down() {
	local out=$1 item=$2 n pids
	[ -n "${LAB_NS:-}" ] || return 0
	for n in rw gw; do
		[ -f "$LAB_DIR/$n/valgrind.log" ] || continue
		pids=$(ip netns pids "$LAB_NS-$n" 2>/dev/null)
		[ -n "$pids" ] && kill -TERM $pids 2>/dev/null
	done
	for n in rw gw; do
		[ -f "$LAB_DIR/$n/valgrind.log" ] || continue
		LAB_WAIT=$MEMCHECK_STOP_WAIT wait_for valgrind_done "$n" ||
			lab_log "$n: charon under valgrind did not finish within ${MEMCHECK_STOP_WAIT}s"
		cp "$LAB_DIR/$n/valgrind.log" "$out/$item-$n.log"
	done
	lab_down
}

# count_log LOG: "ERRORS OURS THEIRS": failing error records; definitely
# or indirectly lost records with a frame of ours; those without. A record
# ends at valgrind's empty line; -s repeats errors after the first ERROR
# SUMMARY, so counting stops there.
count_log() {
	awk -v ours="$OURS_RE" -v err="$ERROR_RE" '
		function flush() { if (leak) { if (mine) o++; else t++ } leak = 0; mine = 0 }
		{ sub(/^==[0-9]+== ?/, "") }
		/^ERROR SUMMARY:/ { exit }
		$0 ~ err && !/^Use --track-origins/ { e++ }
		/are (definitely|indirectly) lost in loss record/ { flush(); leak = 1; next }
		/^$/ { flush(); next }
		leak && /^ +(at|by) 0x/ && $0 ~ ours { mine = 1 }
		END { flush(); printf "%d %d %d\n", e, o, t }
	' "$1"
}

# findings LOG: each failing record (at most 10) as its heading, its first
# two frames and at most six frames of ours; the log has them in full.
findings() {
	awk -v ours="$OURS_RE" -v err="$ERROR_RE" '
		function flush() { if (keep && bad && ++n <= 10) print rec body; keep = 0 }
		{ sub(/^==[0-9]+== ?/, "") }
		/^ERROR SUMMARY:/ { exit }
		($0 ~ err && !/^Use --track-origins/) || /lost in loss record/ {
			flush(); rec = $0; body = ""; keep = 1; frames = 0; mine = 0
			bad = (rec !~ /lost in loss record/); next
		}
		keep && /^$/ { flush(); next }
		keep {
			frames++
			if ($0 ~ ours) { bad = 1; if (++mine <= 6 && frames > 2) body = body "\n" $0 }
			if (frames <= 2) body = body "\n" $0
		}
		END { flush() }
	' "$1" | sed 's/^/  | /' >&2
}

# used_suppressions LOG: the names of the suppressions valgrind used.
used_suppressions() { sed -n 's/^--[0-9]*-- used_suppression: *[0-9]* \([^ ]*\) .*/\1/p' "$1"; }

# supp_names: every suppression's name in MEMCHECK_SUPP.
supp_names() { awk 'prev == "{" { print $1 } { prev = $1 }' "$MEMCHECK_SUPP"; }

memcheck_skip_reason() {
	local r
	r=$(skip_reason)
	[ -n "$r" ] && { echo "$r"; return; }
	command -v valgrind >/dev/null 2>&1 || { echo "missing tool: valgrind"; return; }
	[ -f "$MEMCHECK_SUPP" ] || echo "missing $MEMCHECK_SUPP"
}

selected=("${MEMCHECK_SCENARIOS[@]}")
if [ $# -gt 0 ]; then
	selected=()
	for want in "$@"; do
		selected+=("${want//-/ }")
	done
fi

out=${MEMCHECK_OUT:-}
[ -n "$out" ] || out=$(mktemp -d "${TMPDIR:-/tmp}/mobike-rs-memcheck.XXXXXX")
mkdir -p "$out"
passed=0 failed=0 skipped=0
reason=$(memcheck_skip_reason)
start=$SECONDS
for s in "${selected[@]}"; do
	item=${s// /-}
	name=memcheck-$item
	if [ -n "$reason" ]; then
		echo "SKIP $name: $reason"
		skipped=$((skipped + 1))
		continue
	fi
	if [ $((SECONDS - start)) -ge "$MEMCHECK_TIMEOUT" ]; then
		echo "FAIL $name: suite time limit of ${MEMCHECK_TIMEOUT}s reached"
		failed=$((failed + 1))
		continue
	fi
	if [ "$s" = baseline ]; then
		MEMCHECK_FLAVOUR=stock kind=break rwf=stock gwf=stock
	else
		MEMCHECK_FLAVOUR=rust
		read -r kind rwf gwf <<<"$s"
	fi
	if ! declare -F "scenario_$kind" >/dev/null; then
		echo "FAIL $name: no interop scenario '$kind'"
		failed=$((failed + 1))
		continue
	fi
	t0=$SECONDS
	rm -f "$out/$item"-*.log
	# A subshell per item, as in interop.sh: its trap stops the charons
	# and removes the lab whatever happens.
	(
		trap 'memcheck_down "$out" "$item"' EXIT
		trap 'exit 1' INT TERM
		"scenario_$kind" "$rwf" "$gwf"
	)
	rc=$?
	if [ $rc = 77 ]; then # the scenario's own SKIP, its reason printed above
		echo "SKIP $name: the scenario skipped itself"
		skipped=$((skipped + 1))
		continue
	fi
	why=() logs=0 used=""
	[ $rc = 0 ] || why+=("the scenario failed")
	for log in "$out/$item"-*.log; do
		[ -f "$log" ] || continue
		logs=$((logs + 1))
		node=${log%.log}
		node=${node##*-}
		grep -q 'ERROR SUMMARY:' "$log" || why+=("$node: valgrind log incomplete")
		read -r errors ours theirs <<<"$(count_log "$log")"
		suppressed=$(sed -n 's/.*ERROR SUMMARY: .*(suppressed: \([0-9]*\) from.*/\1/p' "$log" | head -n 1)
		lab_log "$node: $errors errors, leak records: $ours ours, $theirs theirs; ${suppressed:-?} suppressed"
		if [ "$errors" != 0 ] || [ "$ours" != 0 ]; then
			why+=("$node: $errors errors, $ours leak records of ours")
			findings "$log"
		fi
		if [ "$s" = baseline ] && [ "$theirs" != 0 ]; then
			why+=("$node: $theirs leak records of stock charon not suppressed")
		fi
		used+=" $(used_suppressions "$log" | tr '\n' ' ')"
	done
	[ "$logs" != 0 ] || why+=("no charon ran under valgrind")
	if [ "$s" = baseline ] && [ "$logs" != 0 ]; then
		for supp in $(supp_names); do
			case " $used " in
				*" $supp "*) lab_log "suppression used by stock charon: $supp" ;;
				*) why+=("suppression $supp not used by stock charon") ;;
			esac
		done
	fi
	if [ ${#why[@]} = 0 ]; then
		echo "PASS $name ($((SECONDS - t0))s)"
		passed=$((passed + 1))
	else
		echo "FAIL $name ($((SECONDS - t0))s): $(IFS=';'; echo "${why[*]}")"
		failed=$((failed + 1))
	fi
done
echo "memcheck: $passed passed, $failed failed, $skipped skipped ($((SECONDS - start))s)"
if [ "$failed" = 0 ] && [ -z "${MEMCHECK_OUT:-}" ] && [ -z "${MOBIKE_RS_KEEP_LOGS:-}" ]; then
	rm -rf "$out"
else
	echo "memcheck: valgrind logs in $out"
fi
[ "$failed" = 0 ]
