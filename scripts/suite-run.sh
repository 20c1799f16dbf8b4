#!/usr/bin/env bash
# Run a program built for another suite's strongSwan (a unit test binary
# linking that tree's libstrongswan/libcharon) chrooted in the suite's tree
# (scripts/suite-root.sh), so that the loader finds that tree's libraries
# in /usr/lib/ipsec. Cargo's runner for `make unit SUITE=trixie|sid`. A
# program that links neither (tests/exports.rs, which runs cargo and nm)
# runs on the host as it is.
#
# Usage: scripts/suite-run.sh ROOT PROGRAM [ARGS...]
# The repository (this script's parent) and the working directory are
# bind-mounted at their own paths, with /proc, /sys and /dev, in a private
# mount namespace: nothing stays mounted on the host. Needs root (chroot).
set -euo pipefail

root=$(cd "${1:?usage: suite-run.sh ROOT PROGRAM [ARGS...]}" && pwd)
shift
[ $# -gt 0 ] || { echo "usage: suite-run.sh ROOT PROGRAM [ARGS...]" >&2; exit 2; }
if ! readelf -d "$1" 2>/dev/null | grep -qE 'NEEDED.*\[lib(strongswan|charon)\.so'; then
	exec "$@"
fi
if [ "$(id -u)" != 0 ]; then
	echo "suite-run: needs root (chroot into $root)" >&2
	exit 1
fi
[ -x "$root/usr/lib/ipsec/charon" ] || { echo "suite-run: no suite tree at $root (scripts/suite-root.sh)" >&2; exit 1; }
repo=$(cd "$(dirname "$0")/.." && pwd)
prog=$(realpath "$1")
shift
# mount points: the repository, the working directory and the program's
# directory when they lie outside it (absolute paths, same inside)
binds=("$repo")
for d in "$PWD" "$(dirname "$prog")"; do
	case "$d/" in "$repo"/*) ;; *) binds+=("$d") ;; esac
done
exec unshare -m --propagation private sh -c '
	set -e
	root=$1 cwd=$2 n=$3
	shift 3
	mount -t proc proc "$root/proc"
	mount --rbind /dev "$root/dev"
	mount --rbind /sys "$root/sys"
	mount -t tmpfs tmpfs "$root/tmp"
	i=0
	while [ "$i" -lt "$n" ]; do
		mkdir -p "$root$1"
		mount --bind "$1" "$root$1"
		shift
		i=$((i + 1))
	done
	cd "$root$cwd"
	exec chroot "$root" sh -c "cd \"\$0\" && exec \"\$@\"" "$cwd" "$@"
' sh "$root" "$PWD" "${#binds[@]}" "${binds[@]}" "$prog" "$@"
