#!/usr/bin/env bash
# Configure a copy of a suite's strongSwan source WITHOUT mediation, as
# Fedora builds strongSwan (no --enable-mediation, so no ME in config.h):
# the bindings for the .rpm are generated from it. Same Debian source, same
# flags as the suite's tree (scripts/strongswan-src*.sh) but
# --disable-mediation. ME moves fields of ike_sa_t, peer_cfg_t, the daemon
# struct and task_type_t, so a library for one configuration must never run
# in the other (the ABI guard refuses it).
#
# Usage: scripts/strongswan-src-nome.sh SUITE_TREE_STAMP DESTDIR
#   SUITE_TREE_STAMP  the suite's .tree stamp (build/strongswan/.tree,
#                     build/trixie/strongswan/.tree)
#   DESTDIR           where the copy goes (build/strongswan-nome, ...)
# Prints the configured tree's path on its last line of stdout.
set -euo pipefail

src=$(cat "${1:?usage: strongswan-src-nome.sh SUITE_TREE_STAMP DESTDIR}")
dest=${2:?usage: strongswan-src-nome.sh SUITE_TREE_STAMP DESTDIR}
[ -f "$src/config.h" ] && [ -f "$src/.mobike-rs-configured" ] ||
	{ echo "strongswan-src-nome: $src is no configured strongSwan tree (make build)" >&2; exit 1; }
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
tree=$dest/$(basename "$src")
want="$(cat "$src/.mobike-rs-configured") nome"

if [ -f "$tree/config.h" ] && [ "$(cat "$tree/.mobike-rs-configured" 2>/dev/null)" = "$want" ]; then
	echo "$tree"
	exit 0
fi
rm -rf "$tree"
cp -a "$src" "$tree"
rm -f "$tree/.tree"
(cd "$tree" && ./configure --disable-mediation --disable-gmp --disable-static --quiet) >&2
if grep -q '^#define ME\b' "$tree/config.h"; then
	echo "strongswan-src-nome: $tree/config.h still defines ME" >&2
	exit 1
fi
echo "$want" >"$tree/.mobike-rs-configured"
echo "$tree"
