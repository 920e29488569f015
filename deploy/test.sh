#!/bin/sh
# Installs what is missing, builds, and runs the whole test suite through
# ctest: the Criterion unit suites and the integration tests that start the
# real daemon over mutual TLS. Then does it again under AddressSanitizer and
# UndefinedBehaviorSanitizer (skip that with --no-sanitize).
#
#   deploy/test.sh [--no-sanitize]
set -eu

cd "$(dirname "$0")/.."
root=$(pwd)
sanitize=1
for arg in "$@"; do
	case $arg in
	--no-sanitize) sanitize=0 ;;
	-h|--help) sed -n '2,8p' "$0"; exit 0 ;;
	*) echo "test.sh: unknown option $arg" >&2; exit 2 ;;
	esac
done

deploy/install-deps.sh
jobs=$(nproc 2>/dev/null || echo 2)

run_suite() {	# run_suite BUILD_DIR [cmake args...]
	dir=$1
	shift
	echo "== configure $dir $*"
	cmake -S "$root" -B "$dir" -DSAFESHARE_WERROR=ON "$@" >/dev/null
	echo "== build $dir"
	cmake --build "$dir" -j "$jobs"
	echo "== test $dir"
	(cd "$dir" && ctest --output-on-failure -j "$jobs" --timeout 600)
}

run_suite "$root/build"
if [ "$sanitize" = 1 ]; then
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		run_suite "$root/build-asan" -DCMAKE_BUILD_TYPE=Debug \
		-DSAFESHARE_SANITIZE=address,undefined
fi
echo "test.sh: all suites passed"
