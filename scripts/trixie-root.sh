#!/usr/bin/env bash
# A Debian 13 (trixie) tree with strongSwan 6.0.1's charon, for building
# and testing the library for that strongSwan (shared/design-brief.md, 7).
# The 6.0.1 charon runs from it with chroot inside a lab netns.
#
# Usage: scripts/trixie-root.sh [DIR]   (default: build/trixie/root)
# Idempotent; prints the tree's path on its last line of stdout.
set -euo pipefail

root=${1:-build/trixie/root}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
mkdir -p "$root"
root=$(cd "$root" && pwd)
stamp=$root/.mobike-rs-root

if [ -f "$stamp" ] && [ -x "$root/usr/lib/ipsec/charon" ]; then
	echo "$root"
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	echo "trixie-root: needs root (debootstrap, chroot)" >&2
	exit 1
fi
if ! command -v debootstrap >/dev/null; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends debootstrap >&2
fi
# Debian 12's debootstrap knows trixie by its symlink to sid's script.
debootstrap --variant=minbase trixie "$root" "$mirror" >&2
mount_api() {
	mount -t proc proc "$root/proc"
	mount --rbind /dev "$root/dev"
	mount --make-rslave "$root/dev"
}
umount_api() {
	umount -R "$root/dev" 2>/dev/null || umount -l "$root/dev" 2>/dev/null || true
	umount "$root/proc" 2>/dev/null || umount -l "$root/proc" 2>/dev/null || true
}
trap umount_api EXIT
mount_api
chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get update >&2
chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
	strongswan-charon strongswan-swanctl libcharon-extra-plugins \
	libstrongswan-standard-plugins iproute2 iputils-ping >&2
chroot "$root" dpkg-query -W -f='${Version}\n' libstrongswan >"$stamp"
echo "$root"
