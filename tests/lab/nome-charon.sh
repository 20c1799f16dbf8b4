#!/usr/bin/env bash
# Build a charon without mediation (no ME, as Fedora configures strongSwan)
# from the configured no-ME tree the library was built against
# (scripts/strongswan-src-nome.sh): a copy of it configured with the same
# options, installed under OUT/inst (its own plugin directory and library
# path, compiled in: nothing of the host's ME charon is loaded). The copy's
# config.h must be byte-identical to the tree's, so the library's bindings
# and this charon agree on every layout. Cached: a second run with the same
# config.h and this script unchanged builds nothing.
#
# The plugins built are those the lab loads (tests/lab/lib.sh) plus the
# defaults that set nothing in config.h; openssl needs libssl-dev,
# kernel-libipsec the lab's data plane.
#
# Usage: tests/lab/nome-charon.sh NOME_TREE_STAMP [OUT]
#   NOME_TREE_STAMP  build/strongswan-nome/.tree (make build-nome)
#   OUT              default build/nome-charon
# Prints the charon's path on its last line of stdout. Exit status 77 when
# it cannot build here (tools or headers missing, no no-ME tree), with the
# reason on stderr; 1 when the build fails.
set -euo pipefail
cd "$(dirname "$0")/../.."

cant() { echo "nome-charon: $*" >&2; exit 77; }
stamp=${1:?usage: tests/lab/nome-charon.sh NOME_TREE_STAMP [OUT]}
tree=$(cat "$stamp" 2>/dev/null) || cant "no $stamp (make build-nome)"
[ -f "$tree/config.h" ] || cant "no configured tree at $tree (make build-nome)"
grep -q '^#define ME\b' "$tree/config.h" && { echo "nome-charon: $tree defines ME" >&2; exit 1; }
for t in cc make install sha256sum; do
	command -v "$t" >/dev/null 2>&1 || cant "missing tool: $t (build-essential)"
done
echo '#include <openssl/evp.h>' | cc -E - >/dev/null 2>&1 ||
	cant "no OpenSSL headers for the openssl plugin (apt-get install libssl-dev)"

out=${2:-build/nome-charon}
mkdir -p "$out"
out=$(cd "$out" && pwd)
inst=$out/inst
charon=$inst/libexec/ipsec/charon
key="$(cat "$tree/config.h" "$0" | sha256sum | cut -d' ' -f1) $(cat "$tree/.mobike-rs-configured" 2>/dev/null)"
if [ -x "$charon" ] && [ "$(cat "$out/.built" 2>/dev/null)" = "$key" ]; then
	echo "$charon"
	exit 0
fi

rm -rf "$out/src" "$inst" "$out/.built"
cp -a "$tree" "$out/src"
log=$out/build.log
echo "nome-charon: building a charon without mediation from $tree (log: $log)" >&2
# The tree's own options (scripts/strongswan-src-nome.sh), paths under
# OUT/inst, the lab's plugins; the disabled defaults are only build time.
if ! (cd "$out/src" && ./configure --disable-mediation --disable-gmp --disable-static \
	--prefix="$inst" --sysconfdir="$inst/etc" \
	--enable-openssl --enable-kernel-libipsec \
	--disable-stroke --disable-updown --disable-pki --disable-scripts --disable-swanctl \
	--disable-des --disable-rc2 --disable-md5 --disable-pgp --disable-dnskey --disable-sshkey \
	--disable-pkcs7 --disable-pkcs12 --disable-fips-prf --disable-curve25519 --disable-xcbc \
	--disable-cmac --disable-revocation --disable-constraints --disable-resolve --disable-attr \
	--disable-xauth-generic --disable-drbg) >"$log" 2>&1; then
	tail -n 20 "$log" >&2
	echo "nome-charon: configure failed" >&2
	exit 1
fi
if ! cmp -s "$tree/config.h" "$out/src/config.h"; then
	diff "$tree/config.h" "$out/src/config.h" >&2 || true
	echo "nome-charon: config.h differs from $tree's (above): the charon would not match the library" >&2
	exit 1
fi
if ! make -C "$out/src" -j"${NOME_JOBS:-2}" >>"$log" 2>&1 || ! make -C "$out/src" install >>"$log" 2>&1; then
	tail -n 30 "$log" >&2
	echo "nome-charon: build failed" >&2
	exit 1
fi
[ -x "$charon" ] || { echo "nome-charon: no $charon after make install" >&2; exit 1; }
# The objects are not needed any more (a few hundred MB).
rm -rf "$out/src"
echo "$key" >"$out/.built"
echo "$charon"
