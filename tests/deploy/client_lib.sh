#!/bin/sh
# Issue 16 item 6: the installed client library is what a partner can use.
# Installs the build under a temporary prefix, checks that the shared
# library exports only ss_* and safeshare__v1__* and that neither library
# calls exit(), compiles client_lib/disclose.c with nothing but
# `pkg-config --cflags --libs safeshare-client` (and, against the static
# library, --static), and makes a real disclosure with each binary from a
# real safeshared over mutual TLS.
#   client_lib.sh SOURCE_DIR BUILD_DIR SAFESHARED_BIN
set -eu
src=${1:?usage: client_lib.sh SOURCE_DIR BUILD_DIR SAFESHARED_BIN}
build=${2:?usage: client_lib.sh SOURCE_DIR BUILD_DIR SAFESHARED_BIN}
bin=${3:?usage: client_lib.sh SOURCE_DIR BUILD_DIR SAFESHARED_BIN}
. "$src/tests/integration/harness.sh"
h_tmpdir clientlib
t=$h_dir

cmake --install "$build" --prefix "$t/prefix" >/dev/null
pc=$(find "$t/prefix" -name safeshare-client.pc)
[ -n "$pc" ] || fail "no safeshare-client.pc installed"
PKG_CONFIG_PATH=$(dirname "$pc")
export PKG_CONFIG_PATH
libdir=$(pkg-config --variable=libdir safeshare-client)
[ -f "$libdir/libsafeshare-client.so" ] || fail "no shared library in $libdir"
[ -f "$libdir/libsafeshare-client.a" ] || fail "no static library in $libdir"

# Only the API is exported; nothing inside may end the partner's process.
extra=$(nm -D --defined-only "$libdir/libsafeshare-client.so" |
	awk '$2 != "A" { sub(/@.*/, "", $3); print $3 }' | grep -v -e '^ss_' -e '^safeshare__v1__' || true)
[ -z "$extra" ] || fail "the shared library exports more than ss_ and safeshare__v1__: $extra"
nm -D --defined-only "$libdir/libsafeshare-client.so" | grep -q ' T ss_disclose@' ||
	fail "ss_disclose is not exported"
for lib in "$libdir/libsafeshare-client.so" "$libdir/libsafeshare-client.a"; do
	if nm -u "$lib" 2>/dev/null | grep -q -w -e exit -e _exit -e abort; then
		fail "$lib calls exit() or abort()"
	fi
done

# A partner's build: the installed header alone, strict warnings.
# A sanitizer build's library is instrumented, so the program that links
# it is built with the same sanitizers (tests/CMakeLists.txt passes them).
cc="${CC:-cc} ${SAFESHARE_SANITIZE_FLAGS:-}"
$cc -std=c11 -Wall -Wextra -Werror -o "$t/disclose" "$src/tests/deploy/client_lib/disclose.c" \
	$(pkg-config --cflags --libs safeshare-client) -Wl,-rpath,"$libdir" ||
	fail "cannot build against the shared library"
# Static: our library from its archive, its dependencies as --static says.
$cc -std=c11 -Wall -Wextra -Werror -o "$t/disclose-static" \
	"$src/tests/deploy/client_lib/disclose.c" $(pkg-config --cflags safeshare-client) \
	$(pkg-config --libs --static safeshare-client |
	  sed 's/-lsafeshare-client/-Wl,-Bstatic -lsafeshare-client -Wl,-Bdynamic/') ||
	fail "cannot build against the static library"
if ldd "$t/disclose-static" | grep -q libsafeshare-client; then
	fail "the static build still loads libsafeshare-client.so"
fi

# A real daemon over mutual TLS (tests/integration/harness.sh).
h_start_demo "$t" "$bin" police childrens_social_care health_trust

for prog in disclose disclose-static; do
	out=$("$t/$prog" "127.0.0.1:$port" "$t/pki/police.crt" "$t/pki/police.key" \
		"$t/pki/ca.crt" 2>&1) || fail "$prog: $out"
	echo "$prog: $out"
	[ "$out" = "DECISION_ALLOW full_name=Amelia Hart" ] || fail "$prog said: $out"
done
# A refusal is a logged denial with nothing released (D1).
out=$("$t/disclose" "127.0.0.1:$port" "$t/pki/health_trust.crt" \
	"$t/pki/health_trust.key" "$t/pki/ca.crt" 2>&1) || fail "health_trust: $out"
[ "$out" = "DECISION_DENY" ] || fail "health_trust was told: $out"
echo "client_lib: ok"
