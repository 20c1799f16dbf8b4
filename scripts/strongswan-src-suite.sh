#!/usr/bin/env bash
# Obtain and configure the strongSwan source of the charon in a suite's
# Debian tree (scripts/suite-root.sh: trixie or sid), so the adapter's
# bindings are generated from exactly the headers and layout options of that
# charon. The source package is fetched with the tree's own apt (a deb-src
# entry is added there, not on the host).
#
# Usage: scripts/strongswan-src-suite.sh SUITE ROOT [DESTDIR]
#        (default DESTDIR: build/SUITE/strongswan)
# Prints the configured source tree's path on its last line of stdout.
set -euo pipefail

usage="usage: strongswan-src-suite.sh SUITE ROOT [DESTDIR]"
suite=${1:?$usage}
root=$(cd "${2:?$usage}" && pwd)
dest=${3:-build/$suite/strongswan}
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)

ver=$(chroot "$root" dpkg-query -W -f='${Version}' libstrongswan)
upstream=${ver#*:}
upstream=${upstream%%-*}
tree="$dest/strongswan-$upstream"
if [ -f "$tree/config.h" ] && [ "$(cat "$tree/.mobike-rs-configured" 2>/dev/null)" = "$ver" ]; then
	echo "$tree"
	exit 0
fi

if ! grep -qs '^deb-src' "$root/etc/apt/sources.list" "$root"/etc/apt/sources.list.d/*.list; then
	# The point release's source files can be missing from the mirror
	# while the security archive carries the same orig tarball (sid has
	# no security archive).
	{
		sed -n 's/^deb \(.*\)/deb-src \1/p' "$root/etc/apt/sources.list"
		[ "$suite" = sid ] ||
			echo "deb-src ${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security} $suite-security main"
	} >"$root/etc/apt/sources.list.d/mobike-rs-src.list"
	chroot "$root" apt-get update >&2
fi
rm -rf "$root/tmp/mobike-rs-src"
mkdir -p "$root/tmp/mobike-rs-src"
# The same version can be listed by the point release and the security
# archive while only one of them has the files: try both.
chroot "$root" sh -c "cd /tmp/mobike-rs-src && (apt-get source --download-only 'strongswan=$ver' ||
	apt-get source --download-only strongswan/$suite-security ||
	apt-get source --download-only strongswan)" >&2 || true
cd "$dest"
cp "$root"/tmp/mobike-rs-src/strongswan_"$upstream"* . 2>/dev/null || true
rm -rf "$root/tmp/mobike-rs-src"
orig=$(ls strongswan_"$upstream".orig.tar.* 2>/dev/null | grep -v '\.asc$' | head -n1 || true)
if [ -z "$orig" ]; then
	echo "strongswan-src-suite: could not download strongswan_$upstream.orig.tar.*" >&2
	exit 1
fi
rm -rf "$tree"
tar xf "$orig" >&2

# Debian 13 and sid build charon with --enable-mediation like Debian 12 (ME
# changes ike_sa_t, peer_cfg_t, daemon_t and task_type_t).
debtar=$(ls strongswan_"$upstream"-*.debian.tar.* 2>/dev/null | head -n1 || true)
# (debian/rules is read whole first: grep -q stops early and tar's SIGPIPE
# would fail the pipe under pipefail.)
rules=$([ -z "$debtar" ] || tar xOf "$debtar" debian/rules)
if [ -n "$debtar" ] && ! grep -q -- '--enable-mediation' <<<"$rules"; then
	echo "strongswan-src-suite: debian/rules of $ver has no --enable-mediation; check the flags" >&2
	exit 1
fi
cd "$tree"
./configure --enable-mediation --disable-gmp --disable-static --quiet >&2
echo "$ver" >.mobike-rs-configured
echo "$tree"
