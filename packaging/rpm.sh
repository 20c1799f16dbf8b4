#!/usr/bin/env bash
# Build strongswan-mobike-rs-<version>-1.sw<strongSwan version>[.nome].<arch>.rpm
# (.nome: built against a tree without mediation, as `make rpm` does) with
# the Fedora/RHEL layout, from the same files as the .deb
# (packaging/stage.sh rpm) and packaging/rpm/strongswan-mobike-rs.spec.in.
# rpmbuild runs with a private %_topdir in a temporary directory.
#
# Usage: packaging/rpm.sh RELEASE_DIR STRONGSWAN_TREE OUTDIR
#   RELEASE_DIR      holds libmobike_rs.so and mobike-rs (make build-nome)
#   STRONGSWAN_TREE  the configured strongSwan source the library was built
#                    against (its config.h gives the version)
# Prints the path of the package.
set -euo pipefail

if [ $# != 3 ]; then
	echo "usage: packaging/rpm.sh RELEASE_DIR STRONGSWAN_TREE OUTDIR" >&2
	exit 2
fi
release=$1 tree=$2 out=$3
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
# Directory modes in the package come from the staged tree.
umask 022
command -v rpmbuild >/dev/null || { echo "rpm.sh: rpmbuild missing (apt-get install rpm)" >&2; exit 1; }

swan=$(sed -n 's/^#define VERSION "\(.*\)"$/\1/p' "$tree/config.h" 2>/dev/null)
[ -n "$swan" ] || { echo "rpm.sh: no VERSION in $tree/config.h" >&2; exit 1; }
case "$swan" in
*[!0-9.]* | *..* | .* | *.) echo "rpm.sh: cannot pin strongSwan version '$swan'" >&2; exit 1 ;;
esac
# Any release of this upstream version, not the next one (nor its rc's).
next="${swan%.*}.$((${swan##*.} + 1))~"
crate=$(sed -n '/^\[package\]/,/^\[/s/^version = "\(.*\)"$/\1/p' "$top/Cargo.toml" | head -n1)
[ -n "$crate" ] || { echo "rpm.sh: no [package] version in Cargo.toml" >&2; exit 1; }
# The charon struct layouts also depend on mediation (ME); say which. A
# build without it (make rpm: Fedora's strongSwan has no ME) says so in its
# release: 1.sw<version>.nome.
if grep -q '^#define ME\b' "$tree/config.h"; then swan_me=with nome=""; else swan_me=without nome=.nome; fi
rpm_release=1.sw$swan$nome
arch=$(rpm --eval '%{_arch}' 2>/dev/null || uname -m)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$here/stage.sh" rpm "$work/stage" "$release/libmobike_rs.so" "$release/mobike-rs"
# The pid directory the starter wrapper links in (stage.sh decides it).
piddir=$(sed -n 's/^piddir=//p' "$work/stage/usr/libexec/strongswan/charon-mobike-rs")
[ -n "$piddir" ] || { echo "rpm.sh: no piddir= in the staged charon-mobike-rs" >&2; exit 1; }

sed -e "s|@CRATE_VERSION@|$crate|g" -e "s|@SWAN_VERSION@|$swan|g" \
	-e "s|@SWAN_NEXT@|$next|g" -e "s|@SWAN_ME@|$swan_me|g" -e "s|@ARCH@|$arch|g" \
	-e "s|@RELEASE@|$rpm_release|g" -e "s|@PIDDIR@|$piddir|g" -e "s|@STAGE@|$work/stage|g" \
	"$here/rpm/strongswan-mobike-rs.spec.in" >"$work/strongswan-mobike-rs.spec"
if grep -n '@[A-Z_]*@' "$work/strongswan-mobike-rs.spec" >&2; then
	echo "rpm.sh: unsubstituted @...@ word in the spec (above)" >&2
	exit 1
fi

# Fedora's paths whatever the build host's rpm macros say.
if ! rpmbuild -bb --quiet \
	--define "_topdir $work/top" \
	--define "_prefix /usr" --define "_exec_prefix /usr" \
	--define "_libdir /usr/lib64" --define "_libexecdir /usr/libexec" \
	--define "_sysconfdir /etc" --define "_sbindir /usr/sbin" \
	--define "_mandir /usr/share/man" --define "_datadir /usr/share" \
	"$work/strongswan-mobike-rs.spec" >"$work/rpmbuild.log" 2>&1; then
	cat "$work/rpmbuild.log" >&2
	echo "rpm.sh: rpmbuild failed" >&2
	exit 1
fi
name=strongswan-mobike-rs-$crate-$rpm_release.$arch.rpm
[ -f "$work/top/RPMS/$arch/$name" ] || {
	cat "$work/rpmbuild.log" >&2
	echo "rpm.sh: rpmbuild did not produce $name" >&2
	exit 1
}
mkdir -p "$out"
cp "$work/top/RPMS/$arch/$name" "$out/$name"
if [ "$swan_me" = with ]; then
	echo "rpm.sh: note: built against a strongSwan configured with mediation (ME), like Debian's;" \
		"Fedora's strongswan is configured without it, and there the ABI guard keeps charon's built-in MOBIKE" >&2
fi
echo "$out/$name"
