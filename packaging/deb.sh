#!/usr/bin/env bash
# Build strongswan-mobike-rs_<version>+sw<strongSwan version>_<arch>.deb.
#
# Usage: packaging/deb.sh RELEASE_DIR STRONGSWAN_TREE OUTDIR
# RELEASE_DIR holds libmobike_rs.so and mobike-rs (make build); the tree is
# the configured strongSwan source the library was built against, whose
# VERSION the package depends on exactly (the ABI guard refuses any other
# at runtime; the dependency keeps apt from installing such a pair).
set -euo pipefail

release=$1 tree=$2 out=$3
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
for t in dpkg-deb dpkg-shlibdeps; do
	command -v "$t" >/dev/null || { echo "deb.sh: $t missing (apt-get install dpkg-dev)" >&2; exit 1; }
done

swan=$(sed -n 's/^#define VERSION "\(.*\)"$/\1/p' "$tree/config.h")
[ -n "$swan" ] || { echo "deb.sh: no VERSION in $tree/config.h" >&2; exit 1; }
crate=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$top/Cargo.toml" | head -n1)
arch=$(dpkg --print-architecture)
version="$crate+sw$swan"
# The next upstream release: 5.9.8 -> 5.9.9~ (any Debian revision of 5.9.8 fits).
next="${swan%.*}.$((${swan##*.} + 1))~"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
stage=$work/root
"$here/stage.sh" deb "$stage" "$release/libmobike_rs.so" "$release/mobike-rs"

# Shared-library dependencies of the library and the command (libc, libgcc);
# charon's private libraries have no shlibs entry and get the exact
# strongSwan dependency below instead.
mkdir -p "$work/debian"
printf 'Source: mobike-rs\n\nPackage: strongswan-mobike-rs\nArchitecture: any\n' >"$work/debian/control"
shlibs=$(cd "$work" && dpkg-shlibdeps -O --ignore-missing-info \
	-l/usr/lib/ipsec -e"$stage/usr/lib/ipsec/libmobike_rs.so" -e"$stage/usr/sbin/mobike-rs" 2>/dev/null |
	sed -n 's/^shlibs:Depends=//p')
[ -n "$shlibs" ] || { echo "deb.sh: dpkg-shlibdeps found no dependencies" >&2; exit 1; }
# keep libc and friends; strongSwan's own packages are pinned below
shlibs=$(printf '%s' "$shlibs" | tr ',' '\n' | sed 's/^ *//' |
	grep -v '^strongswan-libcharon\|^libstrongswan' | paste -sd, - | sed 's/,/, /g')

install -d "$stage/DEBIAN"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat >"$stage/DEBIAN/control" <<CONTROL
Package: strongswan-mobike-rs
Version: $version
Architecture: $arch
Maintainer: mobike-rs developers <mobike-rs@lab.test>
Installed-Size: $size
Depends: $shlibs, strongswan-libcharon (>= $swan), strongswan-libcharon (<< $next), libstrongswan (>= $swan), libstrongswan (<< $next)
Suggests: charon-systemd | strongswan-starter
Section: net
Priority: optional
Description: MOBIKE (RFC 4555) for strongSwan's charon, in Rust
 mobike-rs replaces the MOBIKE implementation inside charon with a
 memory-safe Rust core, loaded as a preloaded library into the unmodified
 daemon: the IKE_SA and its IPsec SAs follow a change of address.
 .
 This build is for strongSwan $swan. The systemd drop-ins preload it into
 charon-systemd (strongswan.service) and into the charon that starter
 starts (strongswan-starter.service). Roll back with mode = builtin in
 /etc/strongswan.d/charon/mobike-rs.conf or by removing the package.
 The command mobike-rs status shows what MOBIKE does for each IKE_SA.
CONTROL
echo /etc/strongswan.d/charon/mobike-rs.conf >"$stage/DEBIAN/conffiles"
install -m 0755 "$here/deb/postinst" "$here/deb/postrm" "$stage/DEBIAN/"

mkdir -p "$out"
deb="$out/strongswan-mobike-rs_${version}_$arch.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb"
