#!/usr/bin/env bash
# Checks of the .rpm for one strongSwan build (there is no RPM system here to
# install it on): metadata, the exact file list with modes and the config
# marked %config(noreplace), the exact strongSwan requirement (also resolved
# by rpm against stand-in strongswan packages), no Debian path in the
# payload, the scriptlets (also run, in a private mount namespace), and that
# the library exports exactly charon's two entry points.
#
# Usage: tests/packaging-rpm.sh DIST [TREE_STAMP]
#   DIST        holds strongswan-mobike-rs-<version>-1.sw<strongSwan>[.nome].<arch>.rpm
#   TREE_STAMP  file naming the configured strongSwan tree the package was
#               built from (default build/strongswan-nome/.tree, the build
#               without mediation that `make rpm` packages; 6.0.1's:
#               build/trixie/strongswan-nome/.tree). Without ME in its
#               config.h the release ends in .nome and the description
#               says "without mediation".
# Prints PASS/FAIL/SKIP per check and a summary; exit status 1 if any failed.
set -u
cd "$(dirname "$0")/.."
dist=${1:?usage: tests/packaging-rpm.sh DIST [TREE_STAMP]}
stamp=${2:-build/strongswan-nome/.tree}

for t in rpm rpm2cpio cpio nm readelf; do
	if ! command -v "$t" >/dev/null; then
		echo "SKIP rpm: missing tool $t (apt-get install rpm cpio binutils)"
		exit 0
	fi
done
tree=$(cat "$stamp" 2>/dev/null)
swan=$(sed -n 's/^#define VERSION "\(.*\)"$/\1/p' "$tree/config.h" 2>/dev/null)
if [ -z "$swan" ]; then
	echo "SKIP rpm: no configured strongSwan tree in $stamp (make build)"
	exit 0
fi
# A tree without mediation (ME): the .nome release.
if grep -q '^#define ME\b' "$tree/config.h"; then nome="" me=with; else nome=.nome me=without; fi
crate=$(sed -n '/^\[package\]/,/^\[/s/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
arch=$(rpm --eval '%{_arch}')
next="${swan%.*}.$((${swan##*.} + 1))~"

pass=0 failed=0 skipped=0
ok() { echo "PASS rpm@$swan $1"; pass=$((pass + 1)); }
bad() { echo "FAIL rpm@$swan $1: $2"; failed=$((failed + 1)); }
skp() { echo "SKIP rpm@$swan $1: $2"; skipped=$((skipped + 1)); }
summary() {
	echo "packaging-rpm ($swan): $pass passed, $failed failed, $skipped skipped"
	[ "$failed" = 0 ]
}

name=strongswan-mobike-rs-$crate-1.sw$swan$nome.$arch.rpm
if [ ! -f "$dist/$name" ]; then
	bad package "no $name in $dist (make rpm$(case "$stamp" in build/trixie/*) echo ' SUITE=trixie' ;; esac)); there: $(cd "$dist" 2>/dev/null && ls -- *.rpm 2>/dev/null | paste -sd' ')"
	summary
	exit
fi
rpm=$(cd "$dist" && pwd)/$name
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
q() { rpm -qp --nosignature "$@" "$rpm" 2>/dev/null; }

# --- metadata ---------------------------------------------------------------
meta=$(q --qf '%{NAME} %{VERSION} %{RELEASE} %{ARCH} %{LICENSE}')
want="strongswan-mobike-rs $crate 1.sw$swan$nome $arch GPL-2.0-or-later"
[ "$meta" = "$want" ] && ok "metadata ($meta)" || bad metadata "'$meta', expected '$want'"
q --qf '%{DESCRIPTION}' | tr '\n' ' ' | grep -q "strongSwan $swan configured $me mediation" &&
	ok "description (strongSwan $swan configured $me mediation)" ||
	bad description "does not say 'strongSwan $swan configured $me mediation'"

# --- files: names, modes, owners, flags (c = %config, n = noreplace,
#     d = %doc, l = %license) ---------------------------------------------
files=$(q --qf '[%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILENAMES} %{FILEFLAGS:fflags}\n]' |
	sed 's/ $//' | sort)
want=$(sort <<'LIST'
-rw-r--r-- root:root /etc/strongswan/strongswan.d/charon/mobike-rs.conf cn
drwxr-xr-x root:root /usr/lib/systemd/system/strongswan-starter.service.d
-rw-r--r-- root:root /usr/lib/systemd/system/strongswan-starter.service.d/mobike-rs.conf
drwxr-xr-x root:root /usr/lib/systemd/system/strongswan.service.d
-rw-r--r-- root:root /usr/lib/systemd/system/strongswan.service.d/mobike-rs.conf
-rw-r--r-- root:root /usr/lib64/strongswan/libmobike_rs.so
drwxr-xr-x root:root /usr/libexec/mobike-rs
-rwxr-xr-x root:root /usr/libexec/mobike-rs/charon-preload
-rwxr-xr-x root:root /usr/libexec/strongswan/charon-mobike-rs
-rwxr-xr-x root:root /usr/sbin/mobike-rs
drwxr-xr-x root:root /usr/share/doc/strongswan-mobike-rs
-rw-r--r-- root:root /usr/share/doc/strongswan-mobike-rs/README.md d
-rw-r--r-- root:root /usr/share/doc/strongswan-mobike-rs/copyright dl
-rw-r--r-- root:root /usr/share/man/man5/mobike-rs.conf.5.gz d
-rw-r--r-- root:root /usr/share/man/man8/mobike-rs.8.gz d
LIST
)
if [ "$files" = "$want" ]; then
	ok "files ($(echo "$want" | wc -l) entries, modes, root-owned, config/doc flags)"
else
	bad files "file list differs (< expected, > package):
$(diff <(echo "$want") <(echo "$files") | grep '^[<>]')"
fi
# -qpl and -qpc say the same (the listing an admin sees).
listed=$(q -l | sort)
[ "$listed" = "$(echo "$want" | awk '{print $3}' | sort)" ] &&
	[ "$(q -c)" = /etc/strongswan/strongswan.d/charon/mobike-rs.conf ] &&
	ok "listing (rpm -qpl the same names, rpm -qpc exactly the config file)" ||
	bad listing "rpm -qpl/-qpc: $(q -l | paste -sd' ') / config: $(q -c | paste -sd' ')"

# --- requirements -----------------------------------------------------------
reqs=$(q -R | sed 's/ *$//' | sort -u)
rich="(strongswan >= $swan with strongswan < $next)"
if grep -qxF "$rich" <<<"$reqs"; then
	ok "requires-strongswan ($rich)"
else
	bad requires-strongswan "no '$rich' in: $(paste -sd' ' <<<"$reqs")"
fi
# Everything else: the C runtime (automatic, with symbol versions), the
# scriptlets' shell and rpm's own features; never charon's private sonames.
other=$(grep -vxF "$rich" <<<"$reqs" | grep -Ev \
	'^(/bin/sh|rtld\(GNU_HASH\)|rpmlib\(.*\) <= .*|config\(strongswan-mobike-rs\) = .*|(libc\.so\.6|libgcc_s\.so\.1|ld-linux-[a-z0-9_-]+\.so\.[0-9])(\(.*\))?\(64bit\))$')
if [ -n "$other" ]; then
	bad requires-other "unexpected requirements: $(paste -sd' ' <<<"$other")"
elif ! grep -q '^libc\.so\.6(GLIBC_' <<<"$reqs"; then
	bad requires-other "no versioned glibc requirement: $(paste -sd' ' <<<"$reqs")"
else
	ok "requires-other (glibc $(grep -o 'GLIBC_[0-9.]*' <<<"$reqs" | sort -uV | tail -n1) symbol versions, libgcc_s, /bin/sh; no libcharon/libstrongswan)"
fi
provs=$(q --provides | grep -v "^strongswan-mobike-rs\(([a-z0-9_-]*)\)\? = \|^config(strongswan-mobike-rs) = ")
[ -z "$provs" ] && ok "provides (only the package itself)" ||
	bad provides "provides more than itself: $(paste -sd' ' <<<"$provs")"

# The requirement as rpm resolves it, against stand-in "strongswan" packages
# in a private database: Fedora-like releases of this version satisfy it,
# the previous version, the next one and its release candidate do not.
resolve() { # VERSION RELEASE -> 0 if the strongswan requirement is met
	local v=$1 r=$2 d=$work/resolve-$1-$2
	mkdir -p "$d/top" "$d/db"
	cat >"$d/stand-in.spec" <<SPEC
Name: strongswan
Version: $v
Release: $r
Summary: stand-in
License: none
BuildArch: noarch
%description
stand-in
%files
SPEC
	rpmbuild -bb --quiet --define "_topdir $d/top" "$d/stand-in.spec" >/dev/null 2>&1 || return 2
	rpm --dbpath "$d/db" --initdb &&
		rpm --dbpath "$d/db" -i --justdb --nodeps --noscripts --nosignature \
			"$d"/top/RPMS/noarch/*.rpm >/dev/null 2>&1 || return 2
	rpm --dbpath "$d/db" -i --test --nosignature "$rpm" >"$d/test.out" 2>&1
	grep -q 'strongswan >= ' "$d/test.out" && return 1
	grep -q 'is needed by' "$d/test.out" || return 2 # (glibc is always missing)
	return 0
}
if ! command -v rpmbuild >/dev/null; then
	skp requires-resolve "rpmbuild missing (apt-get install rpm)"
else
	prev="${swan%.*}.$((${swan##*.} - 1))"
	[ "${swan##*.}" = 0 ] && prev=""
	res=""
	for c in "$swan 1.fc99:0" "$swan 3.el9_4:0" "${next%\~} 1.fc99:1" "${next%\~} 0.1.rc1.fc99:1" ${prev:+"$prev 1.fc99:1"}; do
		vr=${c%:*} want_rc=${c##*:}
		resolve ${vr% *} ${vr#* }
		rc=$?
		[ "$rc" = "$want_rc" ] || res="$res strongswan-${vr% *}-${vr#* }:$([ $rc = 0 ] && echo accepted || { [ $rc = 1 ] && echo refused || echo error; })"
	done
	[ -z "$res" ] && ok "requires-resolve (rpm accepts strongswan $swan-1.fc99 and -3.el9_4, refuses ${next%\~}, its rc${prev:+ and $prev})" ||
		bad requires-resolve "wrong answers:$res"
fi

# --- scriptlets -------------------------------------------------------------
post=$(q --qf '%{POSTIN}')
postun=$(q --qf '%{POSTUN}')
x=$work/x
mkdir -p "$x"
if ! (cd "$x" && rpm2cpio "$rpm" | cpio -idm --quiet 2>/dev/null); then
	bad payload "does not unpack with rpm2cpio | cpio"
	summary
	exit
fi
piddir=$(sed -n 's/^piddir=//p' "$x/usr/libexec/strongswan/charon-mobike-rs")
s=""
grep -q 'restart strongSwan' <<<"$post" || s="$s; %post does not ask for a restart"
for sc in post postun; do
	body=${!sc}
	tr '\n' ' ' <<<"$body" |
		grep -Eq 'if \[ -d /run/systemd/system \][^;]*;[[:space:]]*then[[:space:]]+systemctl daemon-reload' ||
		s="$s; %$sc: no daemon-reload guarded by /run/systemd/system"
done
grep -q 'if \[ "$1" = 0 \]' <<<"$postun" || s="$s; %postun does not limit itself to removal"
grep -q 'rm -f /var/run/charon-mobike-rs.sock' <<<"$postun" || s="$s; %postun leaves the status socket"
[ "$piddir" = /run/strongswan ] || s="$s; the starter wrapper links in '$piddir', Fedora's piddir is /run/strongswan"
for l in charon-mobike-rs.pid starter.charon.pid; do
	grep -q "rm -f $piddir/$l" <<<"$postun" || s="$s; %postun leaves $piddir/$l"
done
[ "$(q --qf '%{PREIN}%{PREUN}')" = "(none)(none)" ] || s="$s; unexpected %pre/%preun"
[ -z "$s" ] && ok "scripts (%post: restart notice, guarded daemon-reload; %postun on removal: socket, $piddir links)" ||
	bad scripts "${s#; }"

# Run them: /run is a fresh tmpfs in a private mount namespace (so no
# systemd there), with the links the wrapper makes and the socket.
if [ "$(id -u)" != 0 ] || ! command -v unshare >/dev/null; then
	skp scripts-run "needs root and unshare (private mount namespace)"
elif [ "$(readlink -f /var/run)" != /run ]; then
	skp scripts-run "/var/run is not /run here: the scriptlets would touch the real /var/run"
else
	printf '%s\n' "$post" >"$work/post.sh"
	printf '%s\n' "$postun" >"$work/postun.sh"
	out=$(unshare -m sh -c '
		set -e
		mount --make-rprivate / && mount -t tmpfs tmpfs /run
		w=$1 p=$2
		mkdir -p "$p"
		setup() {
			: >/var/run/charon-mobike-rs.sock
			ln -sfn charon.pid "$p/charon-mobike-rs.pid"
			ln -sfn starter.charon-mobike-rs.pid "$p/starter.charon.pid"
		}
		left() { for f in /var/run/charon-mobike-rs.sock "$p/charon-mobike-rs.pid" "$p/starter.charon.pid"; do [ -e "$f" ] || [ -L "$f" ] && echo "$f"; done; true; }
		sh "$w/post.sh" 1 2>&1 | grep -q "restart strongSwan" || echo "post: no restart notice"
		setup
		sh "$w/postun.sh" 1 >/dev/null 2>&1
		[ "$(left | wc -l)" = 3 ] || echo "upgrade (\$1 = 1) removed: $(left)"
		sh "$w/postun.sh" 0 >"$w/postun.out" 2>&1
		[ -z "$(left)" ] || echo "removal left: $(left)"
		grep -q "restart strongSwan" "$w/postun.out" || echo "postun: no restart notice"
		# not ours: a starter.charon.pid of a starter started without the wrapper
		echo 1 >"$p/starter.charon.pid"
		sh "$w/postun.sh" 0 >/dev/null 2>&1
		[ -f "$p/starter.charon.pid" ] || echo "removal deleted a starter.charon.pid that was no link of the wrapper"
	' sh "$work" "$piddir" 2>&1)
	[ -z "$out" ] && ok "scripts-run (in a private /run: %postun 1 keeps, %postun 0 removes the socket and both links, leaves a real starter.charon.pid)" ||
		bad scripts-run "$(paste -sd';' <<<"$out")"
fi

# --- payload ----------------------------------------------------------------
# Debian's paths in the files that run or configure something (README and
# man pages describe both layouts).
debian=$(grep -rlI --exclude-dir=doc --exclude-dir=man -e '/usr/lib/ipsec' -e '/etc/strongswan\.d' \
	-e '/usr/lib/mobike-rs' -e '/var/run/charon\.pid' -e '/var/run/starter' "$x" | sed "s|^$x||")
[ -z "$debian" ] && ok "payload-paths (no /usr/lib/ipsec, /etc/strongswan.d, /usr/lib/mobike-rs, Debian pid paths)" ||
	bad payload-paths "Debian paths in: $(paste -sd' ' <<<"$debian")"
s=""
grep -qx 'ExecStart=/usr/libexec/mobike-rs/charon-preload /usr/sbin/charon-systemd' \
	"$x/usr/lib/systemd/system/strongswan.service.d/mobike-rs.conf" || s="$s; strongswan.service drop-in"
grep -qx 'Environment=DAEMON_NAME=charon-mobike-rs' \
	"$x/usr/lib/systemd/system/strongswan-starter.service.d/mobike-rs.conf" || s="$s; strongswan-starter.service drop-in"
grep -qx 'exec /usr/libexec/mobike-rs/charon-preload /usr/libexec/strongswan/charon "$@"' \
	"$x/usr/libexec/strongswan/charon-mobike-rs" || s="$s; charon-mobike-rs does not run Fedora's charon"
grep -q '^LD_PRELOAD="/usr/lib64/strongswan/libmobike_rs.so' "$x/usr/libexec/mobike-rs/charon-preload" ||
	s="$s; charon-preload does not preload /usr/lib64/strongswan/libmobike_rs.so"
grep -q '^ *load = yes' "$x/etc/strongswan/strongswan.d/charon/mobike-rs.conf" || s="$s; config does not load the plugin"
for f in usr/libexec/mobike-rs/charon-preload usr/libexec/strongswan/charon-mobike-rs; do
	sh -n "$x/$f" 2>/dev/null || s="$s; $f: shell syntax"
done
[ -z "$s" ] && ok "payload-contents (drop-ins, wrappers and config name Fedora's paths)" || bad payload-contents "${s#; }"

lib=$x/usr/lib64/strongswan/libmobike_rs.so
syms=$(nm -D --defined-only "$lib" 2>/dev/null | awk '$2 ~ /^[TtWwDdBbRrVvi]$/ {print $3}' | sort | paste -sd' ')
[ "$syms" = "ike_mobike_create mobike_rs_plugin_create mobike_rs_plugin_version" ] && ok "exports (the two entry points and the plugin version only)" ||
	bad exports "library exports: $syms"
needed=$(readelf -d "$lib" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | paste -sd' ')
grep -qw libcharon.so.0 <<<"$needed" && ok "library-links (NEEDED: $needed)" ||
	bad library-links "library does not link libcharon.so.0: $needed"

if command -v groff >/dev/null; then
	s=""
	for m in man8/mobike-rs.8 man5/mobike-rs.conf.5; do
		w=$(zcat "$x/usr/share/man/$m.gz" | LC_ALL=C.UTF-8 groff -man -Tutf8 -ww -z 2>&1)
		[ -z "$w" ] || s="$s; $m: $w"
	done
	[ -z "$s" ] && ok "man-pages (both render without groff warnings)" || bad man-pages "${s#; }"
else
	skp man-pages "groff missing"
fi

summary
