#!/bin/sh
# Runs one libFuzzer target under ASan/UBSan for a bounded time.
#
#   deploy/fuzz.sh TARGET SECONDS      TARGET: request protocol policy export import pbjson
#
# Seeds come from tests/fuzz/corpus/TARGET; the growing corpus is kept in
# build-fuzz/corpus/TARGET and any crash input in build-fuzz/crashes/. A crash
# makes this exit non-zero; turn the input into a regression test. UBSan
# reports stop the run too (UBSAN_OPTIONS halt_on_error), so none scrolls by.
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)
if [ $# -ne 2 ]; then
	echo "usage: deploy/fuzz.sh TARGET SECONDS   (request protocol policy export import pbjson)" >&2
	exit 2
fi
target=$1
secs=$2
case $target in request|protocol|policy|export|import|pbjson) ;; *)
	echo "fuzz.sh: unknown target $target" >&2; exit 2 ;;
esac
deploy/install-deps.sh
if ! command -v clang >/dev/null 2>&1 || ! dpkg-query -W libclang-rt-14-dev >/dev/null 2>&1; then
	apt-get install -y -q clang libclang-rt-14-dev
fi
B="$root/build-fuzz"
CC=clang cmake -S "$root" -B "$B" -DSAFESHARE_FUZZ=ON -DSAFESHARE_TESTS=OFF \
	-DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$B" --target "fuzz_$target" -j "$(nproc)" >/dev/null
mkdir -p "$B/corpus/$target" "$B/crashes"
cp -n "$root/tests/fuzz/corpus/$target/"* "$B/corpus/$target/" 2>/dev/null || true
extra=""
[ -f "$root/tests/fuzz/$target.dict" ] && extra="-dict=$root/tests/fuzz/$target.dict"
: "${UBSAN_OPTIONS:=halt_on_error=1:print_stacktrace=1}"
export UBSAN_OPTIONS
# shellcheck disable=SC2086
"$B/tests/fuzz/fuzz_$target" "$B/corpus/$target" -max_total_time="$secs" \
	-artifact_prefix="$B/crashes/$target-" -print_final_stats=1 -rss_limit_mb=2048 \
	$extra 2>&1 | tee "$B/fuzz-$target.log" | grep -E "^(#[0-9]|Done|==|stat::number_of_executed_units|stat::peak)" | tail -n 5
status=$(grep -c "ERROR: \|deadly signal\|runtime error:" "$B/fuzz-$target.log" || true)
if [ "$status" != 0 ]; then
	echo "fuzz.sh: $target found a problem; see $B/fuzz-$target.log and $B/crashes/" >&2
	exit 1
fi
echo "fuzz.sh: $target: no finding in $secs s; corpus: $(ls "$B/corpus/$target" | wc -l) files"
