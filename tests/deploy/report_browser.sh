#!/bin/sh
# Issue 21: a real browser reads the auditor's report. Builds a log of a
# few thousand generated disclosures (bench_audit), adds real requests
# (a denial, an override) through a running safeshared, makes the report
# with `safeshare audit report --html`, and renders it headless in
# Debian's chromium to a PNG with the network closed. Fails on any console
# message (a failed off-page request is one), on any URL in the page, or
# if the charts are not laid out with a size and bars in them (measured in a
# copy of the page with a test script added, read back with --dump-dom). First
# it checks that the checker catches a page that fetches something.
#
#   report_browser.sh SOURCE_DIR BUILD_DIR [SCREENSHOT_OUT]
set -eu
src=${1:?usage: report_browser.sh SOURCE_DIR BUILD_DIR [SCREENSHOT_OUT]}
b=${2:?}
shot_out=${3:-}
ss=$b/client/safeshare
ssd=$b/daemon/safeshared
t=$(mktemp -d)
pid=""
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null || true
	rm -rf "$t"
}
trap cleanup EXIT INT TERM
[ -z "${KEEP:-}" ] || trap "kill \$pid 2>/dev/null; echo kept \$t" EXIT

command -v chromium >/dev/null || { echo "FAIL: no chromium (deploy/install-deps.sh)" >&2; exit 1; }

# render PAGE PNG: headless, no network (every host unresolvable, a dead
# proxy); stderr keeps chromium's console messages (CONSOLE lines) and the
# net log every request it tried.
render() {
	timeout 60 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
		--no-first-run --user-data-dir="$t/profile" --window-size=1000,2600 \
		--proxy-server=http://127.0.0.1:9 --host-resolver-rules="MAP * ~NOTFOUND" \
		--disable-background-networking --disable-component-update \
		--enable-logging=stderr --v=0 --log-net-log="$t/net.json" \
		--screenshot="$2" "file://$1" \
		>"$t/chrome.out" 2>"$t/chrome.log"
}
# Fails if the page wrote to the console or requested anything but itself.
# The net log has one event a line; the page's own requests are those made
# for the file:// site (the browser's background requests are not), and
# any of them that is not a file: or data: URL went off the page.
console_clean() {
	! grep -E 'CONSOLE|Failed to load resource' "$t/chrome.log" &&
	! grep 'site=file://' "$t/net.json" | grep -oE '"url":"[a-z-]+:[^"]*"' |
		grep -vE '"url":"(file|data):'
}

# The checker catches a page that fetches something.
printf '<!DOCTYPE html><html><body><img src="http://example.invalid/x.png">\n' \
	> "$t/bad.html"
render "$t/bad.html" "$t/bad.png" || true
if console_clean >/dev/null; then
	echo "FAIL: an off-page request was not noticed" >&2
	exit 1
fi
printf '<!DOCTYPE html><html><body><p>x</p><style>p{color:red}</style>\n' > "$t/bad.html"
printf '<svg width="9" height="9" onload="console.error(1)"></svg></body></html>\n' \
	>> "$t/bad.html"
render "$t/bad.html" "$t/bad.png" || true
if console_clean >/dev/null; then
	echo "FAIL: a console message was not noticed" >&2
	exit 1
fi

# A log of 3,000 generated disclosures, signed with its own key.
"$b/tests/bench/bench_audit" "$t" 3000 >/dev/null
"$src/deploy/pki.sh" "$t/pki" >/dev/null 2>&1
cat > "$t/d.yaml" <<EOC
listen: 127.0.0.1
port: 0
tls:
  cert: $t/pki/server.crt
  key: $t/pki/server.key
  ca: $t/pki/ca.crt
protocol: $src/config/protocol.yaml
store: $t/store.db
audit_log: $t/bench-audit.db
audit:
  signing_key: $t/bench-audit.key
  checkpoint_every: 1000
  checkpoint_seconds: 60
EOC
"$ssd" -c "$t/d.yaml" -l "$src/config/demo-data.yaml" >/dev/null 2>&1
"$ssd" -c "$t/d.yaml" -r "$t/port" >"$t/d.log" 2>&1 &
pid=$!
i=0
while [ ! -s "$t/port" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
[ -s "$t/port" ] || { echo "FAIL: safeshared did not start" >&2; cat "$t/d.log" >&2; exit 1; }
export SAFESHARE_SERVER=127.0.0.1:$(cat "$t/port") SAFESHARE_CA=$t/pki/ca.crt
as() { export SAFESHARE_CERT=$t/pki/$1.crt SAFESHARE_KEY=$t/pki/$1.key; }

# S1002 refused consent: denied, then released by an override (D5, D15).
as health_trust
for o in "" "--override adult_serious_harm"; do
	# shellcheck disable=SC2086
	"$ss" request --subject S1002 --record-type person --purpose adult_safeguarding \
		--case AS-1 --practitioner "Nurse <i>Kay</i>" $o \
		${o:+--justification "Neighbour reports he has not been seen for four days."} \
		>/dev/null 2>&1 || true
done
as guardian
"$ss" audit report --html "$t/report.html" >/dev/null

if grep -nE '<script|https?://|src=|href=|url\(|@import' "$t/report.html"; then
	echo "FAIL: the report refers to something outside itself" >&2
	exit 1
fi
grep -q 'Nurse &lt;i&gt;Kay&lt;/i&gt;' "$t/report.html" || {
	echo "FAIL: the practitioner's name is not in the report, escaped" >&2; exit 1; }
render "$t/report.html" "$t/report.png" || {
	echo "FAIL: chromium could not render the report" >&2; cat "$t/chrome.log" >&2; exit 1; }
console_clean || { echo "FAIL: console messages while rendering the report" >&2; exit 1; }
[ -s "$t/report.png" ] || { echo "FAIL: no screenshot" >&2; exit 1; }
# The charts as laid out: a copy of the page with a script that writes each
# chart's size and how many of its rects have a size, read back from the DOM.
cat > "$t/measure.js" <<'EOJS'
var out = [];
document.querySelectorAll('svg.chart').forEach(function (s) {
	var b = s.getBoundingClientRect(), n = 0;
	s.querySelectorAll('rect').forEach(function (r) {
		var q = r.getBoundingClientRect();
		if (q.width > 0 && q.height > 0) n++;
	});
	out.push('chart ' + s.id + ' ' + Math.round(b.width) + 'x' + Math.round(b.height) +
	    ' rects ' + n);
});
var p = document.createElement('pre');
p.id = 'measured';
p.textContent = out.join('\n');
document.body.appendChild(p);
EOJS
{ sed '/<\/body>/d' "$t/report.html"; printf '<script>'; cat "$t/measure.js"
  printf '</script></body></html>\n'; } > "$t/measure.html"
timeout 60 chromium --headless --no-sandbox --disable-gpu --no-first-run \
	--user-data-dir="$t/profile" --window-size=1000,2600 \
	--proxy-server=http://127.0.0.1:9 --host-resolver-rules="MAP * ~NOTFOUND" \
	--dump-dom "file://$t/measure.html" > "$t/dom.html" 2>/dev/null
for id in per-day overrides reviews matrix deny-reasons kinds; do
	line=$(grep -oE "chart $id [0-9]+x[0-9]+ rects [0-9]+" "$t/dom.html" || true)
	echo "$line" | grep -qE "^chart $id [1-9][0-9]*x[1-9][0-9]* rects [1-9]" || {
		echo "FAIL: chart $id is not drawn with a size: '$line'" >&2; exit 1; }
done
[ -z "$shot_out" ] || cp "$t/report.png" "$shot_out"
echo "ok: chromium renders the report (no console message, nothing fetched, charts drawn)"
