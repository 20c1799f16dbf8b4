# shellcheck shell=bash
# make bench's xfrm column set (sourced by tools/bench.sh): the road
# warrior's outage rows (break, nat, return, silent, natmap) with the
# kernel's IPsec (XFRM, kernel-netlink) instead of kernel-libipsec, builtin
# against rust as in the libipsec table, in ONE boot of the VM of
# tests/lab/vm.sh (this machine's kernel has no ESP): tools/bench.sh again,
# inside it, with LAB_DATAPLANE=xfrm and only these rows.
#
# Emulated time (TCG) is several times slower than this machine and its
# slowness depends on the machine's load, so the table reports the ratio
# rust median / builtin median of each row, with the run counts; the
# medians themselves (emulated) are kept in target/bench/xfrm-raw.txt and
# shown for reading a ratio only (10 ms means nothing was lost).
#
# Environment:
#   BENCH_XFRM        1 (default): the libipsec table, then this one; 0:
#                     the libipsec table only; only: this table only
#   BENCH_XFRM_RUNS   runs per row and flavour (3; 1 with BENCH_QUICK=1)
#   BENCH_XFRM_ONLY   a subset of "break nat return silent natmap"
#   BENCH_XFRM_SCALE  how much slower the VM is taken to be (2): the caps
#                     (BENCH_*_MAX), the first-traffic wait and the link's
#                     settle time are multiplied by it
#   BENCH_XFRM_TIMEOUT the VM's time limit in seconds (from the above)
# When the VM cannot boot, one line "SKIP xfrm bench: WHY" and a table
# saying so; that is not a harness failure.
#
# Uses from bench.sh: die, want (through ONLY), OUT_DIR, the caps, RUNS,
# HARNESS_FAILED; defines bench_xfrm_table for its results block.

BENCH_XFRM=${BENCH_XFRM:-1}
case "$BENCH_XFRM" in
	0 | 1 | only) ;;
	*) die "BENCH_XFRM must be 0, 1 or only, not '$BENCH_XFRM'" ;;
esac
XFRM_ROWS="break nat return silent natmap"
XFRM_SCALE=${BENCH_XFRM_SCALE:-2}
[[ $XFRM_SCALE =~ ^[1-9][0-9]*$ ]] || die "BENCH_XFRM_SCALE must be a positive integer, not '$XFRM_SCALE'"
XFRM_RAW=$OUT_DIR/xfrm-raw.txt
XFRM_STATE= # ran | skip: WHY | (empty: not asked for)

# bench_xfrm_vm: boot the VM once, run bench.sh's xfrm rows inside, copy
# their raw figures to XFRM_RAW. Sets XFRM_STATE.
bench_xfrm_vm() {
	local rows="" r keep out rc why timeout
	for r in ${BENCH_XFRM_ONLY:-$XFRM_ROWS}; do
		[[ " $XFRM_ROWS " == *" $r "* ]] || die "BENCH_XFRM_ONLY: '$r' is not one of: $XFRM_ROWS"
		rows="$rows $r"
	done
	XFRM_RUNS=${BENCH_XFRM_RUNS:-3}
	[ -z "${BENCH_XFRM_RUNS:-}" ] && [ -n "${BENCH_QUICK:-}" ] && [ "$BENCH_QUICK" != 0 ] && XFRM_RUNS=1
	[[ $XFRM_RUNS =~ ^[1-9][0-9]*$ ]] || die "BENCH_XFRM_RUNS must be a positive integer, not '$XFRM_RUNS'"
	# Per run and flavour: five labs of about a minute each under TCG, plus
	# the caps; one boot, a few minutes of margin.
	timeout=${BENCH_XFRM_TIMEOUT:-$((600 + XFRM_RUNS * 2 * (300 + XFRM_SCALE * (BREAK_MAX + RETURN_MAX + BREAK_MAX + SILENT_MAX + 2 * NAT_MAX))))}
	[[ $timeout =~ ^[1-9][0-9]*$ ]] || die "BENCH_XFRM_TIMEOUT must be a positive integer, not '$timeout'"
	keep=$(mktemp -d "${TMPDIR:-/tmp}/mobike-rs-bench-xfrm.XXXXXX") || die "mktemp failed"
	out=$OUT_DIR/xfrm-log.txt
	: >"$XFRM_RAW"
	echo "== make bench, xfrm: ${rows# } in one VM boot (tests/lab/vm.sh, TCG), $XFRM_RUNS run(s) per row and flavour, caps x$XFRM_SCALE, at most ${timeout}s"
	VM_TIMEOUT=$timeout VM_KEEP=$keep tests/lab/vm.sh run env \
		LAB_DATAPLANE=xfrm MOBIKE_RS_IN_VM=1 BENCH_XFRM=0 BENCH_XFRM_SCALE="$XFRM_SCALE" \
		BENCH_OUT_DIR=/vm/keep/bench BENCH_RUNS="$XFRM_RUNS" BENCH_ONLY="${rows# }" \
		BENCH_BREAK_MAX=$((BREAK_MAX * XFRM_SCALE)) BENCH_RETURN_MAX=$((RETURN_MAX * XFRM_SCALE)) \
		BENCH_SILENT_MAX=$((SILENT_MAX * XFRM_SCALE)) BENCH_NAT_MAX=$((NAT_MAX * XFRM_SCALE)) \
		tools/bench.sh 2>&1 | tee "$out"
	rc=${PIPESTATUS[0]}
	if [ "$rc" = 2 ] && why=$(sed -n 's/^vm: cannot boot: //p' "$out" | tail -n 1) && [ -n "$why" ]; then
		XFRM_STATE="skip: $why"
		echo "SKIP xfrm bench: $why"
	elif [ -f "$keep/keep/bench/raw.txt" ]; then
		cp "$keep/keep/bench/raw.txt" "$XFRM_RAW"
		XFRM_STATE=ran
		# 1: a harness failure inside (recorded as "fail" in the raw file)
		[ "$rc" = 0 ] || HARNESS_FAILED=1
	else
		XFRM_STATE="skip: the VM run ended (exit $rc) without results; see $out"
		echo "SKIP xfrm bench: the VM run ended (exit $rc) without results; see $out"
		HARNESS_FAILED=1
	fi
	rm -rf "$keep"
}

# bench_xfrm_table: the xfrm section of results.md (bench.sh's summary,
# ratio and fmt_ms, on XFRM_RAW).
bench_xfrm_table() {
	[ -n "$XFRM_STATE" ] || return 0
	echo "#### xfrm: the kernel's IPsec (kernel-netlink), in the VM"
	echo
	if [ "$XFRM_STATE" != ran ]; then
		echo "Not measured: ${XFRM_STATE#skip: }."
		echo
		return 0
	fi
	local RAW=$XFRM_RAW k label b r
	echo "The road warrior's outage rows (part 1: builtin or rust road warrior, stock gateway) with kernel-netlink and the kernel's XFRM instead of kernel-libipsec, median of $XFRM_RUNS run(s), in one boot of tests/lab/vm.sh (Debian's $(ls build/vm 2>/dev/null | grep -m 1 amd64 || echo '?') kernel under TCG, 2 vCPUs; load average on this machine at the end $(cut -d ' ' -f 1-3 /proc/loadavg)); caps x$XFRM_SCALE. Emulated time is slow and follows the machine's load, so the figure is the ratio rust median / builtin median; the medians and ranges (emulated time; 10 ms = nothing lost) only help read it and show the spread. Raw values: $XFRM_RAW."
	echo
	echo "| scenario (xfrm) | runs builtin / rust | ratio rust / builtin | under TCG: builtin median (range) | rust median (range) |"
	echo "|---|---|---|---|---|"
	while IFS='|' read -r k label; do
		case "$k" in
			return*) want_xfrm return || continue ;;
			natmap*) want_xfrm natmap || continue ;;
			*) want_xfrm "$k" || continue ;;
		esac
		printf '| %s | %s / %s%s | %s | %s | %s |\n' "$label" \
			"$(summary "$k" builtin count)" "$(summary "$k" rust count)" \
			"$(fails_note "$k")" "$(ratio "$k")" "$(tcg_cell "$k" builtin)" "$(tcg_cell "$k" rust)"
	done <<-EOF
		break|break-before-make (rw-a down, rw-b works)
		nat|break-before-make into a NAT
		return|return to the preferred interface, outage
		return_esp|return: rw-a's address added to gw's first ESP packet to it
		silent|silent failure of rw-a's path, rw-b works (dpd_delay 5s)
		natmap|NAT mapping change, idle road warrior (dpd_delay 5s)
		natmap_nodpd|NAT mapping change, idle road warrior, no DPD
	EOF
	echo
}

# tcg_cell KEY FLAVOUR: "median (best-worst)" in emulated time.
tcg_cell() {
	local cap m lo hi
	cap=$(cap_of "$1") m=$(summary "$1" "$2" median) hi=$(summary "$1" "$2" worst)
	lo=$(values "$1" "$2" | awk '$1 != "fail" { v = ($1 == "never") ? 1e18 : $1 + 0; if (!n++ || v < lo) lo = v }
		END { if (n) { if (lo >= 1e18) print "never"; else print lo } }')
	[ -n "$m" ] || { echo "-"; return; }
	if [ "$lo" = "$hi" ]; then
		fmt_ms "$m" "$cap"
	else
		printf '%s (%s - %s)' "$(fmt_ms "$m" "$cap")" "$(fmt_ms "$lo" "$cap")" "$(fmt_ms "$hi" "$cap")"
	fi
}

want_xfrm() { [[ " ${BENCH_XFRM_ONLY:-$XFRM_ROWS} " == *" $1 "* ]]; }

# fails_note KEY: " (N failed)" if runs of KEY failed in either flavour.
fails_note() {
	local f=$(($(summary "$1" builtin fails) + $(summary "$1" rust fails)))
	[ "$f" = 0 ] || printf ' (%s failed)' "$f"
}

# cap_of KEY: the cap (s) of KEY's rows inside the VM.
cap_of() {
	case "$1" in
		break | nat) echo $((BREAK_MAX * XFRM_SCALE)) ;;
		return*) echo $((RETURN_MAX * XFRM_SCALE)) ;;
		silent) echo $((SILENT_MAX * XFRM_SCALE)) ;;
		natmap*) echo $((NAT_MAX * XFRM_SCALE)) ;;
	esac
}

if [ -n "${MOBIKE_RS_IN_VM:-}" ]; then
	# Inside the VM (bench.sh started by bench_xfrm_vm above): the kernel
	# must have ESP (lab_missing loads esp4, esp6, xfrm_user).
	[ "$LAB_DATAPLANE" = xfrm ] || die "in the VM the data plane is xfrm, not '$LAB_DATAPLANE'"
	why=$(lab_missing)
	[ -z "$why" ] || die "in the VM: $why"
	WARM_TRIES=$((WARM_TRIES * XFRM_SCALE))
	LINK_SETTLE=$(awk -v s="$LINK_SETTLE" -v k="$XFRM_SCALE" 'BEGIN { print s * k }')
	return 0
fi

case "$BENCH_XFRM" in
	0) ;;
	only)
		ONLY=""
		bench_xfrm_vm
		;;
	1) bench_xfrm_vm ;;
esac
