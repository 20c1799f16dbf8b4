#!/usr/bin/env bash
# Install the files of the strongswan-mobike-rs package into a staging tree,
# with the paths of one distribution family. Used by `make deb` and
# `make rpm`; both packages carry the same files (the .rpm those of the
# build without mediation, make build-nome).
#
# Usage: packaging/stage.sh deb|rpm DESTDIR LIBRARY CLI
set -euo pipefail

layout=$1 dest=$2 lib=$3 cli=$4
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)

case "$layout" in
deb)
	IPSEC_DIR=/usr/lib/ipsec
	LIBDIR=/usr/lib/ipsec
	PKGLIBEXEC=/usr/lib/mobike-rs
	CONFDIR=/etc/strongswan.d/charon
	IPSEC_SCRIPT=ipsec
	PIDDIR=/var/run
	;;
rpm)
	IPSEC_DIR=/usr/libexec/strongswan
	LIBDIR=/usr/lib64/strongswan
	PKGLIBEXEC=/usr/libexec/mobike-rs
	CONFDIR=/etc/strongswan/strongswan.d/charon
	IPSEC_SCRIPT=strongswan
	# Fedora configures --with-piddir=%{_rundir}/strongswan (since 5.8.2-2):
	# starter waits there for the daemon's pid file.
	PIDDIR=/run/strongswan
	;;
*)
	echo "stage.sh: layout must be deb or rpm, not '$layout'" >&2
	exit 2
	;;
esac
SBINDIR=/usr/sbin
UNITDIR=/usr/lib/systemd/system
LIB=$LIBDIR/libmobike_rs.so

for f in "$lib" "$cli"; do
	[ -f "$f" ] || { echo "stage.sh: $f is missing (make build)" >&2; exit 1; }
done

subst() {
	sed -e "s|@LIB@|$LIB|g" -e "s|@IPSEC_DIR@|$IPSEC_DIR|g" \
		-e "s|@PKGLIBEXEC@|$PKGLIBEXEC|g" -e "s|@SBINDIR@|$SBINDIR|g" \
		-e "s|@PIDDIR@|$PIDDIR|g" -e "s|@IPSEC_SCRIPT@|$IPSEC_SCRIPT|g" "$1"
}

rm -rf "$dest"
install -d "$dest$LIBDIR" "$dest$SBINDIR" "$dest$PKGLIBEXEC" "$dest$IPSEC_DIR" \
	"$dest$CONFDIR" "$dest$UNITDIR/strongswan.service.d" \
	"$dest$UNITDIR/strongswan-starter.service.d" \
	"$dest/usr/share/man/man5" "$dest/usr/share/man/man8" \
	"$dest/usr/share/doc/strongswan-mobike-rs"
install -m 0644 "$lib" "$dest$LIB"
install -m 0755 "$cli" "$dest$SBINDIR/mobike-rs"
# Debug info stays in the build tree; the dynamic symbols (the two entry
# points) are kept by --strip-unneeded.
strip --strip-unneeded "$dest$LIB" "$dest$SBINDIR/mobike-rs"
subst "$here/charon-preload.in" >"$dest$PKGLIBEXEC/charon-preload"
subst "$here/charon-mobike-rs.in" >"$dest$IPSEC_DIR/charon-mobike-rs"
chmod 0755 "$dest$PKGLIBEXEC/charon-preload" "$dest$IPSEC_DIR/charon-mobike-rs"
subst "$here/mobike-rs.conf.in" >"$dest$CONFDIR/mobike-rs.conf"
subst "$here/systemd/strongswan.service.conf.in" \
	>"$dest$UNITDIR/strongswan.service.d/mobike-rs.conf"
subst "$here/systemd/strongswan-starter.service.conf.in" \
	>"$dest$UNITDIR/strongswan-starter.service.d/mobike-rs.conf"
chmod 0644 "$dest$CONFDIR/mobike-rs.conf" "$dest$UNITDIR"/*/mobike-rs.conf
gzip -9n <"$top/doc/mobike-rs.8" >"$dest/usr/share/man/man8/mobike-rs.8.gz"
gzip -9n <"$top/doc/mobike-rs.conf.5" >"$dest/usr/share/man/man5/mobike-rs.conf.5.gz"
install -m 0644 "$top/README.md" "$dest/usr/share/doc/strongswan-mobike-rs/README.md"
install -m 0644 "$here/copyright" "$dest/usr/share/doc/strongswan-mobike-rs/copyright"

if grep -rl '@[A-Z_]*@' "$dest" --include='*' -I >/dev/null 2>&1; then
	echo "stage.sh: unsubstituted @VARIABLE@ left in:" >&2
	grep -rl '@[A-Z_]*@' "$dest" -I >&2
	exit 1
fi
