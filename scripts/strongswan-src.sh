#!/usr/bin/env bash
# Obtain and configure the strongSwan source matching the installed charon, so
# that build.rs generates the adapter's bindings (bindgen) from exactly the
# headers and config.h of the daemon the library will be loaded into: struct
# layouts differ between versions and with the mediation option (ME), which
# Debian's build enables.
#
# Usage: scripts/strongswan-src.sh [DESTDIR]   (default: build/strongswan)
# Prints the configured source tree's path on its last line of stdout.
set -euo pipefail

dest=${1:-build/strongswan}
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)

ver=$(dpkg-query -W -f='${Version}' libstrongswan 2>/dev/null || true)
if [ -z "$ver" ]; then
	echo "strongswan-src: libstrongswan is not installed; install strongswan-charon first" >&2
	exit 1
fi
upstream=${ver#*:}
upstream=${upstream%%-*}
tree="$dest/strongswan-$upstream"

if [ -f "$tree/config.h" ] && [ -f "$tree/.mobike-rs-configured" ] &&
	[ "$(cat "$tree/.mobike-rs-configured")" = "$ver" ]; then
	echo "$tree"
	exit 0
fi

# apt-get source needs a deb-src entry for the suites the binary came from.
if ! grep -rqs '^Types:.*deb-src\|^deb-src' /etc/apt/sources.list /etc/apt/sources.list.d/; then
	echo "strongswan-src: adding deb-src entries for the configured suites" >&2
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		sed -n 's/^Types: *deb *$/Types: deb-src/p;/^Types:/!p' "$f" >"${f%.sources}-src.sources.tmp"
		grep -q '^Types: deb-src' "${f%.sources}-src.sources.tmp" &&
			mv "${f%.sources}-src.sources.tmp" "/etc/apt/sources.list.d/mobike-rs-$(basename "${f%.sources}")-src.sources" ||
			rm -f "${f%.sources}-src.sources.tmp"
	done
	if [ -f /etc/apt/sources.list ]; then
		sed -n 's/^deb \(.*\)/deb-src \1/p' /etc/apt/sources.list >/etc/apt/sources.list.d/mobike-rs-src.list
	fi
	apt-get update >&2
fi

cd "$dest"
if ! ls strongswan_"$upstream".orig.tar.* >/dev/null 2>&1; then
	# The newest security revision's .dsc can be missing from the mirror; the
	# orig tarball is the same upstream source, so fall back to any revision.
	(apt-get source --download-only "strongswan=$ver" >&2 ||
		apt-get source --download-only strongswan >&2) || true
fi
orig=$(ls strongswan_"$upstream".orig.tar.* 2>/dev/null | grep -v '\.asc$' | head -n1 || true)
if [ -z "$orig" ]; then
	echo "strongswan-src: could not download strongswan_$upstream.orig.tar.* with apt-get source" >&2
	exit 1
fi
rm -rf "$tree"
tar xf "$orig" >&2

# Debian builds charon with --enable-mediation, which defines ME and changes
# the layout of ike_sa_t, peer_cfg_t, daemon_t and task_type_t.
cd "$tree"
./configure --enable-mediation --disable-gmp --disable-static --quiet >&2
echo "$ver" >.mobike-rs-configured
echo "$tree"
