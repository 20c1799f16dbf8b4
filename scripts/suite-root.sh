#!/usr/bin/env bash
# A Debian tree of another suite with its strongSwan's charon, for building
# and testing the library for that strongSwan (docs/architecture.md):
# trixie (Debian 13, 6.0.1) or sid (6.1.0). That charon runs from the tree
# with chroot inside a lab netns.
#
# Usage: scripts/suite-root.sh SUITE [DIR]   (default: build/SUITE/root)
# The mirror is the one the host's apt uses for its own suite (override
# with DEBIAN_MIRROR). sid's Release file can be older than its Valid-Until
# on a snapshot mirror, so the tree's apt is told not to check that date.
# Idempotent (stamp DIR/.mobike-rs-root holds the tree's libstrongswan
# version); prints the tree's path on its last line of stdout.
set -euo pipefail

# host_mirror: the URI of the host's apt source for its own codename
# (deb822 .sources first, then sources.list).
host_mirror() {
	local codename f uri
	codename=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
	[ -n "$codename" ] || return 0
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		uri=$(awk -v s="$codename" '
			/^[ \t]*$/ { if (deb && suite && uri) { print uri; exit } deb = suite = 0; uri = ""; next }
			/^Types:/ { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
			/^Suites:/ { for (i = 2; i <= NF; i++) if ($i == s) suite = 1 }
			/^URIs:/ { uri = $2 }
			END { if (deb && suite && uri) print uri }' "$f" | head -n1)
		[ -n "$uri" ] && { echo "$uri"; return 0; }
	done
	[ -f /etc/apt/sources.list ] || return 0
	awk -v s="$codename" '$1 == "deb" {
		i = 2
		if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
		if ($(i + 1) == s) { print $i; exit }
	}' /etc/apt/sources.list
}

suite=${1:?usage: suite-root.sh SUITE [DIR]}
case "$suite" in
trixie | sid) ;;
*) echo "suite-root: unknown suite $suite (trixie or sid)" >&2; exit 2 ;;
esac
root=${2:-build/$suite/root}
mkdir -p "$root"
root=$(cd "$root" && pwd)
stamp=$root/.mobike-rs-root

if [ -f "$stamp" ] && [ -x "$root/usr/lib/ipsec/charon" ]; then
	echo "$root"
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	echo "suite-root: needs root (debootstrap, chroot)" >&2
	exit 1
fi
mirror=${DEBIAN_MIRROR:-$(host_mirror)}
mirror=${mirror:-http://deb.debian.org/debian}
if ! command -v debootstrap >/dev/null; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends debootstrap >&2
fi
# Debian 12's debootstrap knows trixie by its symlink to sid's script.
echo "suite-root: debootstrap $suite from $mirror into $root" >&2
debootstrap --variant=minbase "$suite" "$root" "$mirror" >&2
# A snapshot's sid Release is past its Valid-Until: apt would refuse it.
echo 'Acquire::Check-Valid-Until "false";' >"$root/etc/apt/apt.conf.d/99mobike-rs"
# apt in the tree needs /proc and /dev; they are mounted in a private mount
# namespace, so nothing stays mounted on the host, whatever happens.
unshare -m --propagation private sh -c '
	set -e
	mount -t proc proc "$1/proc"
	mount --rbind /dev "$1/dev"
	chroot "$1" env DEBIAN_FRONTEND=noninteractive apt-get update
	chroot "$1" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
		strongswan-charon strongswan-swanctl libcharon-extra-plugins \
		libstrongswan-standard-plugins iproute2 iputils-ping
' sh "$root" >&2
chroot "$root" dpkg-query -W -f='${Version}\n' libstrongswan >"$stamp"
echo "$root"
