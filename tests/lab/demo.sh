#!/usr/bin/env bash
# The demo: a stock gateway and a road warrior with mobike-rs; the road
# warrior's preferred interface goes down, then comes back. Prints the
# addresses before and after, whether the IKE_SA stayed the same, and how
# long traffic through the tunnel stopped (ping every 10 ms).
set -u
cd "$(dirname "$0")/../.."
. tests/lab/lib.sh
. tools/bench-lib.sh

if [ "$(id -u)" != 0 ]; then
	echo "demo: needs root (network namespaces); run: sudo make demo" >&2
	exit 1
fi
[ -f "$LAB_LIB" ] || { echo "demo: $LAB_LIB missing; run make build" >&2; exit 1; }

trap lab_down EXIT
trap 'exit 1' INT TERM

echo "== mobike-rs demo: stock gateway, road warrior with libmobike_rs.so"
lab_up demo || exit 1
charon_start gw stock || exit 1
# DEMO_RW=builtin runs the same demo with charon's own MOBIKE, for comparison.
charon_start rw "${DEMO_RW:-rust}" "prefer_best_path = yes" || exit 1
tunnel_up || { echo "tunnel setup failed"; show_logs; exit 1; }
ping_ok || { echo "no traffic through the tunnel"; show_logs; exit 1; }

before_local=$(sa_field rw local)
before_spis=$(sa_field rw spis)
echo "tunnel up:   road warrior $before_local <-> gateway $(sa_field rw remote), IKE_SA $before_spis"

pingfile="$LAB_DIR/ping.out"
pinger_start "$LAB_NS-rw" 198.18.100.1 "$pingfile" 7
sleep 1
t_down=$(date +%s.%N)
ip -n "$LAB_NS-rw" link set rw-a down
echo "rw-a down:   preferred interface (198.18.1.2) gone"
wait_for '[ "$(sa_field rw local)" = "198.18.2.2[4500]" ]'
sleep 2
after_local=$(sa_field rw local)
after_spis=$(sa_field rw spis)
t_up=$(date +%s.%N)
ip -n "$LAB_NS-rw" link set rw-a up
echo "rw-a up:     preferred interface back"
wait_for '[ "$(sa_field rw local)" = "198.18.1.2[4500]" ]'
wait "$PINGER_PID"
back_local=$(sa_field rw local)
back_spis=$(sa_field rw spis)

same() { [ -n "$1" ] && [ "$1" = "$2" ] && echo "yes (same SPIs)" || echo "NO ($1 -> $2)"; }
echo
echo "move away:   $before_local -> $after_local, same IKE_SA: $(same "$before_spis" "$after_spis"), traffic stopped $(outage "$pingfile" "$t_down" "$t_up") ms"
echo "move back:   $after_local -> $back_local, same IKE_SA: $(same "$after_spis" "$back_spis"), traffic stopped $(outage "$pingfile" "$t_up" 9999999999) ms"
echo "replies:     $(grep -m1 'packets transmitted' "$pingfile") (one echo every 10 ms)"
echo
echo "what the Rust core decided (road warrior's charon log):"
grep -E 'mobike-rs: (checking path|path .* lost its route|updating addresses|sending UPDATE|peer supports)' "$LAB_DIR/rw/charon.log" | sed 's/^[0-9]* /  /'
