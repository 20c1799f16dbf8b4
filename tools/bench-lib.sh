# shellcheck shell=bash
# Traffic-outage measurement for the netns lab (tests/lab/lib.sh), shared by
# the demo (tests/lab/demo.sh) and the benchmark (tools/bench.sh).
#
# A prober (tools/bench-probe.py) sends one ICMP echo every 10 ms
# through the tunnel on an absolute schedule (`ping -i 0.01` sends every
# 16-20 ms here: its sleeps round up); each answer line starts with its
# arrival time, [epoch.micro], as with ping -D. The outage of an event is
# the longest gap between two consecutive answers around it. With nothing
# lost that gap is the 10 ms interval itself, so the resolution is one
# interval. Everything here is bounded in count and time; nothing is an
# assertion: the numbers are reported, not judged.

BENCH_PROBE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/bench-probe.py"

# pinger_start NS DEST FILE SECONDS [SOURCE]: probe DEST from netns NS
# every 10 ms for at most SECONDS (and 100 * SECONDS + 100 echoes), from
# address SOURCE if given; answers to FILE. Sets PINGER_PID.
pinger_start() {
	ip netns exec "$1" python3 "$BENCH_PROBE" "$2" "$4" ${5:+"$5"} >"$3" 2>&1 &
	PINGER_PID=$!
}

# pinger_stop: end the prober started by pinger_start (ours, by its pid).
pinger_stop() {
	[ -n "${PINGER_PID:-}" ] || return 0
	kill "$PINGER_PID" 2>/dev/null
	wait "$PINGER_PID" 2>/dev/null
	PINGER_PID=
}

# answers FILE: how many echoes were answered so far.
answers() { grep -c 'bytes from' "$1" 2>/dev/null; }

# answered_after FILE T: an answer arrived after epoch time T.
answered_after() {
	awk -v t="$2" '/bytes from/ { if (substr($1, 2, length($1) - 2) + 0 > t) { f = 1; exit } }
		END { exit !f }' "$1" 2>/dev/null
}

# outage FILE FROM [TO]: the longest gap (ms) between consecutive answers
# whose later answer arrived in (FROM, TO] (epoch seconds); the earlier one
# may be before FROM, so the gap an event at FROM opens is counted whole.
# Empty if no answer arrived in the window.
outage() {
	awk -v from="$2" -v to="${3:-9999999999}" '
		/bytes from/ { t = substr($1, 2, length($1) - 2) + 0
			if (t > to) exit
			if (t > from && prev) { n++; if (t - prev > gap) gap = t - prev }
			prev = t }
		END { if (n) printf "%.0f", gap * 1000 }' "$1"
}

# now: epoch seconds with nanoseconds.
now() { date +%s.%N; }

# elapsed_ms FROM [TO]: milliseconds between two epoch times (TO: now).
elapsed_ms() { awk -v a="$1" -v b="${2:-$(now)}" 'BEGIN { printf "%.0f", (b - a) * 1000 }'; }

# proc_cpu PID: the process's user + system CPU time in seconds.
proc_cpu() {
	local hz
	hz=$(getconf CLK_TCK)
	# Fields after the parenthesised command name: utime is the 12th, stime the 13th.
	sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk -v hz="$hz" '{ printf "%.2f", ($12 + $13) / hz }'
}

# proc_rss PID: the process's resident set (VmRSS) in KiB.
proc_rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }

# netns_charon NODE: the pid of the lab node's charon (its netns's only charon).
netns_charon() {
	local p
	for p in $(ip netns pids "$LAB_NS-$1" 2>/dev/null); do
		# under valgrind (bench.sh, BENCH_CALLGRIND) the process has the tool's name
		case "$(cat "/proc/$p/comm" 2>/dev/null)" in
			charon | callgrind-*) echo "$p"; return 0 ;;
		esac
	done
	return 1
}
