#!/bin/sh
# Installs what is missing, builds, and runs the whole test suite through
# ctest: the Criterion unit suites and the integration tests that start the
# real daemon over mutual TLS. Then does it again under AddressSanitizer and
# UndefinedBehaviorSanitizer (skip that with --no-sanitize). With --tsan,
# or when CI=true, last drives a safeshared built under ThreadSanitizer
# (its writer, checkpointer, holder and verify threads) with the
# integration suites; any TSan report fails the run (--tsan-only: that
# pass alone). Suppressions: deploy/tsan.supp.
#
#   deploy/test.sh [--no-sanitize] [--tsan | --tsan-only]
#
# The PostgreSQL suites (issue 19) start and stop a throwaway cluster of
# their own in each pass (ctest fixture pg, tests/pg/pgcluster.sh: about
# 10 s with the suite); under CI=true a missing PostgreSQL fails them
# instead of skipping them. The plain pass runs every integration suite on
# both backends (the integration_*_pg variants: the daemon on PostgreSQL);
# the sanitizer passes leave those variants out (CI's 20 minutes) and keep
# the PostgreSQL unit suites, integration_pg and crash_pg_kill9.
set -eu

cd "$(dirname "$0")/.."
root=$(pwd)
sanitize=1
plain=1
tsan=0
[ "${CI:-}" = true ] && tsan=1
for arg in "$@"; do
	case $arg in
	--no-sanitize) sanitize=0 ;;
	--tsan) tsan=1 ;;
	--tsan-only) tsan=1; plain=0; sanitize=0 ;;
	-h|--help) sed -n '2,11p' "$0"; exit 0 ;;
	*) echo "test.sh: unknown option $arg" >&2; exit 2 ;;
	esac
done

deploy/install-deps.sh
jobs=$(nproc 2>/dev/null || echo 2)

# The integration suites' second run, on PostgreSQL (tests/CMakeLists.txt).
pg_variants='^integration_.*_pg$'

run_suite() {	# run_suite BUILD_DIR EXCLUDE [cmake args...]; EXCLUDE: ctest -E, or ""
	dir=$1
	exclude=$2
	shift 2
	echo "== configure $dir $*"
	cmake -S "$root" -B "$dir" -DSAFESHARE_WERROR=ON "$@" >/dev/null
	echo "== build $dir"
	cmake --build "$dir" -j "$jobs"
	echo "== test $dir${exclude:+ (without $exclude)}"
	if [ -n "$exclude" ]; then
		(cd "$dir" && ctest --output-on-failure -j "$jobs" --timeout 600 -E "$exclude")
	else
		(cd "$dir" && ctest --output-on-failure -j "$jobs" --timeout 600)
	fi
}

# ThreadSanitizer on the daemon only: Criterion's runner does not survive
# TSan, so uninstrumented integration tests start the instrumented
# safeshared (tests/CMakeLists.txt, SAFESHARE_TEST_DAEMON). Each report
# goes to a file; a report fails the pass even if every test passed.
run_tsan() {
	d=$root/build-tsan
	echo "== build $d/daemon (safeshared under ThreadSanitizer)"
	cmake -S "$root" -B "$d/daemon" -DSAFESHARE_WERROR=ON -DSAFESHARE_TESTS=OFF \
		-DSAFESHARE_SANITIZE=thread >/dev/null
	cmake --build "$d/daemon" -j "$jobs" --target safeshared
	echo "== build $d/tests (the integration tests, driving it)"
	cmake -S "$root" -B "$d/tests" -DSAFESHARE_WERROR=ON \
		-DSAFESHARE_TEST_DAEMON="$d/daemon/daemon/safeshared" >/dev/null
	cmake --build "$d/tests" -j "$jobs"
	rm -rf "$d/reports" && mkdir -p "$d/reports"
	echo "== test $d: integration suites against the TSan daemon"
	rc=0
	# SAFESHARE_TEST_SLOW: the clients wait 6 times longer (harness.c).
	(cd "$d/tests" && SAFESHARE_TEST_SLOW=6 TSAN_OPTIONS="log_path=$d/reports/tsan second_deadlock_stack=1 suppressions=$root/deploy/tsan.supp" \
		ctest --output-on-failure -j "$jobs" --timeout 900 -R '^integration_' \
		-E "$pg_variants") || rc=1
	if ls "$d/reports"/tsan.* >/dev/null 2>&1; then
		cat "$d/reports"/tsan.*
		echo "test.sh: ThreadSanitizer reports above (in $d/reports)" >&2
		rc=1
	fi
	return $rc
}

[ "$plain" = 1 ] && run_suite "$root/build" ""
if [ "$sanitize" = 1 ]; then
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		run_suite "$root/build-asan" "$pg_variants" -DCMAKE_BUILD_TYPE=Debug \
		-DSAFESHARE_SANITIZE=address,undefined
fi
if [ "$tsan" = 1 ]; then
	run_tsan
fi
echo "test.sh: all suites passed"
