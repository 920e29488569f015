#!/bin/sh
# deploy/bench.sh's progress must survive `deploy/bench.sh > bench.log 2>&1`
# (issue 14 item 18): `tee /dev/stderr` reopened the log and truncated it, so
# only the tail was left. This runs bench.sh's own keep_result helper the way
# the script does, with both streams redirected to one file, and checks that
# every line written before, during and after it is still there.
set -eu
src=${1:?usage: bench_log.sh SOURCE_DIR}
bench=$src/deploy/bench.sh
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT INT TERM

if grep -n '^[^#]*/dev/stderr' "$bench"; then
	echo "FAIL: bench.sh reopens /dev/stderr (truncates a redirected log)" >&2
	exit 1
fi
sed -n '/^keep_result() {/,/^}/p' "$bench" > "$t/helper.sh"
[ -s "$t/helper.sh" ] || { echo "FAIL: no keep_result() in bench.sh" >&2; exit 1; }

cat > "$t/run.sh" <<'EORUN'
. "$1"
echo "line before the run"
r=$(printf 'progress one\nRESULT rps=42 label=x\nprogress two\n' | keep_result)
echo "kept: $r"
echo "line after the run"
EORUN
sh "$t/run.sh" "$t/helper.sh" > "$t/bench.log" 2>&1

for want in "line before the run" "progress one" "progress two" \
    "kept: RESULT rps=42 label=x" "line after the run"; do
	grep -qxF "$want" "$t/bench.log" || {
		echo "FAIL: '$want' missing from the redirected log:" >&2
		cat "$t/bench.log" >&2
		exit 1
	}
done
echo "ok: bench.sh progress survives > log 2>&1"
