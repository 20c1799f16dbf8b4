#!/usr/bin/env bash
# Checks of the .rpm (no RPM system to install it on here): the exact file
# list with modes and the config marked %config(noreplace), the exact
# strongSwan requirement, no Debian path in the payload, the scriptlets,
# and that the library exports exactly charon's two entry points.
#
# Usage: tests/packaging-rpm.sh DIST [TREE_STAMP]  (default build/strongswan/.tree)
set -u
cd "$(dirname "$0")/.."
dist=${1:?usage: tests/packaging-rpm.sh DIST}

tree=$(cat "${2:-build/strongswan/.tree}" 2>/dev/null)
swan=$(sed -n 's/^#define VERSION "\(.*\)"$/\1/p' "$tree/config.h" 2>/dev/null)
for t in rpm rpm2cpio cpio nm; do
	command -v "$t" >/dev/null || { echo "SKIP rpm: missing tool $t (apt-get install rpm cpio binutils)"; exit 0; }
done
[ -n "$swan" ] || { echo "SKIP rpm: no configured strongSwan tree (make build)"; exit 0; }
rpm=$(ls "$dist"/strongswan-mobike-rs-*-1.sw"$swan".*.rpm 2>/dev/null | head -n1)
[ -n "$rpm" ] && rpm=$(cd "$(dirname "$rpm")" && pwd)/$(basename "$rpm")
[ -n "$rpm" ] || { echo "FAIL rpm: no strongswan-mobike-rs-*-1.sw$swan.*.rpm in $dist (make rpm)"; exit 1; }

fail() { echo "FAIL rpm: $*"; exit 1; }
files=$(rpm -qp --qf '[%{FILEMODES:perms} %{FILENAMES} %{FILEFLAGS:fflags}\n]' "$rpm" | sed 's/ $//' | sort)
want=$(sort <<'LIST'
-rw-r--r-- /etc/strongswan/strongswan.d/charon/mobike-rs.conf cn
drwxr-xr-x /usr/lib/systemd/system/strongswan-starter.service.d
-rw-r--r-- /usr/lib/systemd/system/strongswan-starter.service.d/mobike-rs.conf
drwxr-xr-x /usr/lib/systemd/system/strongswan.service.d
-rw-r--r-- /usr/lib/systemd/system/strongswan.service.d/mobike-rs.conf
-rw-r--r-- /usr/lib64/strongswan/libmobike_rs.so
drwxr-xr-x /usr/libexec/mobike-rs
-rwxr-xr-x /usr/libexec/mobike-rs/charon-preload
-rwxr-xr-x /usr/libexec/strongswan/charon-mobike-rs
-rwxr-xr-x /usr/sbin/mobike-rs
-rw-r--r-- /usr/share/doc/strongswan-mobike-rs/README.md d
-rw-r--r-- /usr/share/doc/strongswan-mobike-rs/copyright dl
-rw-r--r-- /usr/share/man/man5/mobike-rs.conf.5.gz d
-rw-r--r-- /usr/share/man/man8/mobike-rs.8.gz d
LIST
)
[ "$files" = "$want" ] || fail "file list differs:
$(diff <(echo "$want") <(echo "$files"))"

next="${swan%.*}.$((${swan##*.} + 1))~"
reqs=$(rpm -qpR "$rpm")
grep -qxF "(strongswan >= $swan with strongswan < $next)" <<<"$reqs" ||
	fail "no exact strongSwan $swan requirement: $reqs"
grep -q 'libcharon' <<<"$reqs" && fail "requires charon's private soname: $reqs"
scripts=$(rpm -qp --scripts "$rpm")
grep -q 'restart strongSwan' <<<"$scripts" || fail "%post does not ask for a restart"
grep -q 'rm -f /var/run/charon-mobike-rs.sock' <<<"$scripts" || fail "%postun leaves the status socket"

x=$(mktemp -d)
trap 'rm -rf "$x"' EXIT
(cd "$x" && rpm2cpio "$rpm" | cpio -idm --quiet) || fail "payload does not unpack"
# (the documentation describes both layouts)
debian=$(grep -rlI --exclude-dir=doc -e '/usr/lib/ipsec' -e '/etc/strongswan\.d' -e '/usr/lib/mobike-rs' "$x")
[ -z "$debian" ] || fail "Debian paths in: $(echo "$debian" | sed "s|$x||" | paste -sd' ')"
grep -q '^ExecStart=/usr/libexec/mobike-rs/charon-preload /usr/sbin/charon-systemd$' \
	"$x/usr/lib/systemd/system/strongswan.service.d/mobike-rs.conf" || fail "charon-systemd drop-in"
grep -q 'exec /usr/libexec/mobike-rs/charon-preload /usr/libexec/strongswan/charon' \
	"$x/usr/libexec/strongswan/charon-mobike-rs" || fail "starter wrapper does not run Fedora's charon"
grep -q 'LD_PRELOAD="/usr/lib64/strongswan/libmobike_rs.so' "$x/usr/libexec/mobike-rs/charon-preload" ||
	fail "charon-preload does not preload Fedora's library path"
syms=$(nm -D --defined-only "$x/usr/lib64/strongswan/libmobike_rs.so" | awk '$2 == "T" {print $3}' | sort | paste -sd' ')
[ "$syms" = "ike_mobike_create mobike_rs_plugin_create" ] || fail "library exports: $syms"
echo "PASS rpm ($(basename "$rpm"): $(echo "$want" | wc -l) entries, requires strongswan $swan exactly, Fedora paths only, 2 exports)"
