#!/usr/bin/env bash
# Package tests: the .deb's metadata and files, then the real thing: install
# it with dpkg, start charon the way the installed starter drop-in does, see
# the plugin loaded and a break-before-make move work through it, ask the
# installed `mobike-rs status`, purge the package and check that nothing of
# it is left. Then the .rpm checks (tests/packaging-rpm.sh).
#
# Usage: tests/packaging.sh DIST   (DIST holds the packages: make deb rpm)
set -u
cd "$(dirname "$0")/.."
dist=${1:?usage: tests/packaging.sh DIST}

pass=0 failed=0 skipped=0
ok() { echo "PASS $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1: $2"; failed=$((failed + 1)); }
skp() { echo "SKIP $1: $2"; skipped=$((skipped + 1)); }
summary() {
	echo "packaging: $pass passed, $failed failed, $skipped skipped"
	[ "$failed" = 0 ]
}

swan_of() { sed -n 's/^#define VERSION "\(.*\)"$/\1/p' "$(cat "$1" 2>/dev/null)/config.h" 2>/dev/null; }
deb_of() { ls "$dist"/strongswan-mobike-rs_*+sw"$1"_*.deb 2>/dev/null | head -n1; }
work=$(mktemp -d)
cleanup_work() { rm -rf "$work"; }
trap cleanup_work EXIT

# --- metadata and contents ------------------------------------------------
deb_static() {
	local deps files want
	deps=$(dpkg-deb -f "$deb" Depends)
	next="${swan%.*}.$((${swan##*.} + 1))~"
	for p in strongswan-libcharon libstrongswan; do
		case "$deps" in
			*"$p (>= $swan), $p (<< $next)"*) ;;
			*) bad deb-metadata "Depends does not pin $p to $swan: $deps"; return ;;
		esac
	done
	[ "$(dpkg-deb -f "$deb" Package)" = strongswan-mobike-rs ] || { bad deb-metadata "wrong package name"; return; }
	files=$(dpkg-deb -c "$deb" | awk '$1 !~ /^d/ {print $1, $6}' | sed 's| \./| /|' | sort)
	want=$(sort <<'LIST'
-rw-r--r-- /etc/strongswan.d/charon/mobike-rs.conf
-rw-r--r-- /usr/lib/ipsec/libmobike_rs.so
-rwxr-xr-x /usr/lib/ipsec/charon-mobike-rs
-rwxr-xr-x /usr/lib/mobike-rs/charon-preload
-rw-r--r-- /usr/lib/systemd/system/strongswan-starter.service.d/mobike-rs.conf
-rw-r--r-- /usr/lib/systemd/system/strongswan.service.d/mobike-rs.conf
-rwxr-xr-x /usr/sbin/mobike-rs
-rw-r--r-- /usr/share/doc/strongswan-mobike-rs/README.md
-rw-r--r-- /usr/share/doc/strongswan-mobike-rs/copyright
-rw-r--r-- /usr/share/man/man5/mobike-rs.conf.5.gz
-rw-r--r-- /usr/share/man/man8/mobike-rs.8.gz
LIST
)
	[ "$files" = "$want" ] || { bad deb-contents "file list differs:
$(diff <(echo "$want") <(echo "$files"))"; return; }
	dpkg-deb --ctrl-tarfile "$deb" | tar -xOf - ./conffiles 2>/dev/null | grep -qx /etc/strongswan.d/charon/mobike-rs.conf ||
		{ bad deb-contents "the configuration is not a conffile"; return; }
	dpkg-deb -x "$deb" "$work/x"
	local syms
	syms=$(nm -D --defined-only "$work/x/usr/lib/ipsec/libmobike_rs.so" | awk '$2 ~ /^[TtWwDdBbRrVvi]$/ {print $3}' | sort | paste -sd' ')
	[ "$syms" = "ike_mobike_create mobike_rs_plugin_create mobike_rs_plugin_version" ] || { bad deb-contents "library exports: $syms"; return; }
	readelf -d "$work/x/usr/lib/ipsec/libmobike_rs.so" | grep -q 'NEEDED.*libcharon.so.0' ||
		{ bad deb-contents "library does not link libcharon"; return; }
	grep -q '^ExecStart=/usr/lib/mobike-rs/charon-preload /usr/sbin/charon-systemd$' \
		"$work/x/usr/lib/systemd/system/strongswan.service.d/mobike-rs.conf" ||
		{ bad deb-contents "strongswan.service drop-in does not preload charon-systemd"; return; }
	grep -q '^ *load = yes' "$work/x/etc/strongswan.d/charon/mobike-rs.conf" ||
		{ bad deb-contents "config does not load the plugin"; return; }
	ok "deb-contents $(basename "$deb") (Depends pinned to strongSwan $swan, $(echo "$want" | wc -l) files, 3 exports)"
}

# Everything of the package, wherever it could be left.
leftovers() {
	find /etc /usr /var/lib/dpkg/info /run /var/run -xdev \
		\( -name '*mobike-rs*' -o -name '*mobike_rs*' \) 2>/dev/null | sort
}

# --- install, run, purge ---------------------------------------------------
deb_install_run_remove() {
	if dpkg-query -W -f='${Status}' strongswan-mobike-rs 2>/dev/null | grep -q 'ok installed'; then
		skp deb-install "strongswan-mobike-rs is installed on this machine; not touching it"
		return
	fi
	local before after
	before=$(leftovers)
	if ! dpkg -i "$deb" >"$work/dpkg-i.out" 2>&1; then
		bad deb-install "dpkg -i failed: $(tail -n 5 "$work/dpkg-i.out")"
		dpkg --purge strongswan-mobike-rs >/dev/null 2>&1
		return
	fi
	grep -q 'restart strongSwan' "$work/dpkg-i.out" || bad deb-install "postinst did not ask for a restart"
	run_installed
	if ! dpkg --purge strongswan-mobike-rs >"$work/dpkg-p.out" 2>&1; then
		bad deb-remove "dpkg --purge failed: $(tail -n 5 "$work/dpkg-p.out")"
		return
	fi
	after=$(leftovers)
	if [ "$before" != "$after" ]; then
		bad deb-remove "left behind: $(diff <(echo "$before") <(echo "$after") | sed -n 's/^> //p' | paste -sd' ')"
		return
	fi
	dpkg-query -W strongswan-mobike-rs >/dev/null 2>&1 &&
		{ bad deb-remove "dpkg still knows the package"; return; }
	ok "deb-remove (purged, nothing of it left in /etc /usr /run or dpkg's info)"
}

# charon as strongswan-starter.service runs it with the package's drop-in:
# DAEMON_NAME from its Environment= line names the program starter execs.
run_installed() {
	local dropin=/usr/lib/systemd/system/strongswan-starter.service.d/mobike-rs.conf name
	name=$(sed -n 's/^Environment=DAEMON_NAME=//p' "$dropin")
	[ -n "$name" ] || { bad deb-run "no DAEMON_NAME in $dropin"; return; }
	(
		LAB_DAEMON=/usr/lib/ipsec/$name
		MOBIKE_RS_CLI=/usr/sbin/mobike-rs
		. tests/lab/lib.sh
		trap lab_down EXIT
		die() { echo "  FAILED CHECK: $*" >&2; show_logs; exit 1; }
		lab_up pkg || die "lab setup"
		charon_start gw stock || die "gw did not start"
		charon_start rw installed || die "installed charon did not start"
		in_log rw "mobike-rs: plugin loaded, MOBIKE tasks run in mode 'rust'" || die "plugin not loaded"
		tunnel_up || die "tunnel setup: $(tail -n 3 "$LAB_DIR/initiate.out")"
		ping_ok || die "no traffic through the tunnel"
		spis=$(sa_field rw spis)
		ip -n "$LAB_NS-rw" link set rw-a down
		wait_for '[ "$(sa_field rw local)" = "198.18.2.2[4500]" ]' || die "no move: $(sa_field rw local)"
		ping_ok || die "traffic did not resume after the move"
		[ "$(sa_field rw spis)" = "$spis" ] || die "IKE_SA changed"
		in_log rw 'mobike-rs: Rust core runs the MOBIKE task' || die "the Rust core ran no task"
		json=$(status rw --json) || die "installed mobike-rs status failed: $json"
		case "$json" in
			*'"path":{"local":"198.18.2.2:4500"'*) ;;
			*) die "status after the move: $json" ;;
		esac
		lab_log "installed charon moved to $(sa_field rw local); status: ok"
	) && ok "deb-run (installed wrapper $name: plugin loaded, break-before-make, status)" ||
		bad deb-run "see the lines above"
}

# The builds for the suite trees (make deb SUITE=trixie, SUITE=sid): their
# metadata and contents (each is installed only where its charon is).
for suite in trixie sid; do
	swan=$(swan_of build/$suite/strongswan/.tree)
	if [ -z "$swan" ]; then
		skp deb-$suite "no build for $suite (make build SUITE=$suite)"
	elif [ -z "$(deb_of "$swan")" ]; then
		bad deb-$suite "no strongswan-mobike-rs_*+sw${swan}_*.deb in $dist (make deb SUITE=$suite)"
	else
		deb=$(deb_of "$swan")
		deb_static
	fi
done

# The installed charon's build: contents, then install, run, purge.
swan=$(swan_of build/strongswan/.tree)
deb=$(deb_of "$swan")
if [ -z "$swan" ]; then
	skp deb "no configured strongSwan tree (make build)"
elif [ -z "$deb" ]; then
	bad deb "no strongswan-mobike-rs_*+sw${swan}_*.deb in $dist (make deb)"
elif ! command -v dpkg-deb >/dev/null; then
	skp deb "dpkg-deb missing"
else
	deb_static
	if [ "$(id -u)" != 0 ]; then
		skp deb-install "needs root (dpkg -i, network namespaces)"
	else
		deb_install_run_remove
	fi
fi

if [ -x tests/packaging-rpm.sh ]; then
	# make rpm packages the builds without mediation (build-nome).
	tests/packaging-rpm.sh "$dist" build/strongswan-nome/.tree || failed=$((failed + 1))
	if [ -n "$(swan_of build/trixie/strongswan-nome/.tree)" ]; then
		tests/packaging-rpm.sh "$dist" build/trixie/strongswan-nome/.tree || failed=$((failed + 1))
	fi
else
	bad rpm "tests/packaging-rpm.sh is missing"
fi
summary
