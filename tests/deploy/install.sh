#!/bin/sh
# Issue 22: a production install from the docs. Installs the build into a
# temporary root with `cmake --install` (DESTDIR), lays out /etc/safeshare
# and /var/lib/safeshare inside it as docs/operations.md says, and runs the
# installed safeshared -t against the installed production example (its
# paths moved under the temporary root). Also checks that the unit's
# Documentation= names an installed file, that -t refuses a key with the
# wrong mode and a missing state directory, and that the installed pki.sh
# explains itself (and prints no line of its code).
set -eu
src=${1:?usage: install.sh SOURCE_DIR BUILD_DIR}
build=${2:?usage: install.sh SOURCE_DIR BUILD_DIR}
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT INT TERM
fail() { echo "FAIL: $*" >&2; exit 1; }

root=$t/root
prefix=/usr/local
DESTDIR=$root cmake --install "$build" --prefix "$prefix" >/dev/null
bin=$root$prefix/sbin/safeshared
share=$root$prefix/share/safeshare
[ -x "$bin" ] || fail "no $prefix/sbin/safeshared"
[ -x "$root$prefix/bin/safeshare" ] || fail "no $prefix/bin/safeshare"
[ -f "$share/examples/safeshared.prod.yaml" ] || fail "no production example"
unit=$share/systemd/safeshared.service
[ -f "$unit" ] || fail "no unit installed"
doc=$(sed -n 's|^Documentation=file://||p' "$unit")
[ -n "$doc" ] && [ -f "$root$doc" ] || fail "Documentation=$doc is not installed"
grep -q '^LimitCORE=0$' "$unit" || fail "unit lacks LimitCORE=0"
grep -q '^MemoryMax=' "$unit" || fail "unit lacks MemoryMax="
"$share/pki.sh" --help | grep -q "usage:" || fail "pki.sh --help says nothing"
if "$share/pki.sh" --help | grep -q "set -eu"; then
	fail "pki.sh --help prints the script's code"
fi

# /etc/safeshare and /var/lib/safeshare as docs/operations.md lays them out.
etc=$root/etc/safeshare
var=$root/var/lib/safeshare
mkdir -p "$etc" && chmod 750 "$etc"
sed -e "s|/etc/safeshare|$etc|g" -e "s|/var/lib/safeshare|$var|g" \
    "$share/examples/safeshared.prod.yaml" > "$etc/safeshared.yaml"
cp "$share/examples/protocol.yaml" "$etc/protocol.yaml"
"$share/pki.sh" "$etc/pki" >/dev/null
# Onboarding an agency issues its certificate and leaves the server's alone.
before=$(cat "$etc/pki/server.crt" "$etc/pki/ca.crt" | sha256sum)
"$share/pki.sh" "$etc/pki" school_dsl >/dev/null
[ -f "$etc/pki/school_dsl.crt" ] || fail "pki.sh did not issue school_dsl.crt"
[ "$before" = "$(cat "$etc/pki/server.crt" "$etc/pki/ca.crt" | sha256sum)" ] ||
	fail "adding an agency re-issued server.crt or the CA"

# The state directory is missing: -t must say so (start would fail).
if out=$("$bin" -t -c "$etc/safeshared.yaml" 2>&1); then
	fail "-t accepted a missing state directory: $out"
fi
echo "$out" | grep -q "store: .*No such file or directory" || fail "-t said: $out"
mkdir -p "$var" && chmod 700 "$var"
out=$("$bin" -t -c "$etc/safeshared.yaml" 2>&1) || fail "-t refused: $out"
echo "$out" | grep -q ": ok; protocol" || fail "-t said: $out"
# A signing key others may read: start refuses it, so -t must.
chmod 644 "$etc/pki/audit-signing.key"
if out=$("$bin" -t -c "$etc/safeshared.yaml" 2>&1); then
	fail "-t accepted a 0644 signing key"
fi
echo "$out" | grep -q "audit.signing_key" || fail "-t said: $out"
echo "ok: installed under a temporary root; safeshared -t checks the production example"
