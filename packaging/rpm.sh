#!/usr/bin/env bash
# Build strongswan-mobike-rs-<version>-1.sw<strongSwan version>.<arch>.rpm
# with the Fedora/RHEL layout, from the same files as the .deb.
#
# Usage: packaging/rpm.sh RELEASE_DIR STRONGSWAN_TREE OUTDIR
set -euo pipefail

release=$1 tree=$2 out=$3
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
command -v rpmbuild >/dev/null || { echo "rpm.sh: rpmbuild missing (apt-get install rpm)" >&2; exit 1; }

swan=$(sed -n 's/^#define VERSION "\(.*\)"$/\1/p' "$tree/config.h")
[ -n "$swan" ] || { echo "rpm.sh: no VERSION in $tree/config.h" >&2; exit 1; }
crate=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$top/Cargo.toml" | head -n1)
next="${swan%.*}.$((${swan##*.} + 1))~"
arch=$(uname -m)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$here/stage.sh" rpm "$work/stage" "$release/libmobike_rs.so" "$release/mobike-rs"
sed -e "s|@CRATE_VERSION@|$crate|g" -e "s|@SWAN_VERSION@|$swan|g" \
	-e "s|@SWAN_NEXT@|$next|g" -e "s|@ARCH@|$arch|g" -e "s|@STAGE@|$work/stage|g" \
	"$here/rpm/strongswan-mobike-rs.spec.in" >"$work/strongswan-mobike-rs.spec"
rpmbuild -bb --quiet \
	--define "_topdir $work/top" \
	--define "_libdir /usr/lib64" --define "_libexecdir /usr/libexec" \
	--define "_sysconfdir /etc" --define "_sbindir /usr/sbin" \
	--define "_mandir /usr/share/man" --define "_datadir /usr/share" \
	"$work/strongswan-mobike-rs.spec" >&2
mkdir -p "$out"
rpm=$(find "$work/top/RPMS" -name '*.rpm' | head -n1)
[ -n "$rpm" ] || { echo "rpm.sh: rpmbuild produced no package" >&2; exit 1; }
cp "$rpm" "$out/"
echo "$out/$(basename "$rpm")"
