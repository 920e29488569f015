#!/bin/sh
# docs/cli.md must match every --help (issue 22). The section "Every
# --help, as printed" at the end of docs/cli.md holds each command's help
# text verbatim; this rebuilds that section from the binaries and fails on
# any difference. It also checks that an unknown option prints the usage
# and exits 2, for every command.
#
#   cli_help.sh SOURCE_DIR SAFESHARE SAFESHARED [--write]
#
# --write replaces the section in docs/cli.md instead of comparing.
set -eu
src=${1:?usage: cli_help.sh SOURCE_DIR SAFESHARE SAFESHARED [--write]}
ss=${2:?}
ssd=${3:?}
write=${4:-}
doc=$src/docs/cli.md
marker='## Every `--help`, as printed'
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT INT TERM

# Commands whose help differs (holder and audit subcommands share one).
cmds='request
locate
health
receipt verify
receipt check
holder
policy check
policy explain
policy matrix
admin reload
admin migrate
audit
audit witness
audit alerts
holder accesses'

{
	printf '%s\n\n' "$marker"
	printf 'Generated from the binaries by `tests/deploy/cli_help.sh`; the test\n'
	printf '`deploy_cli_help` fails when this section and the programs differ.\n\n'
	printf '### `safeshare --help`\n\n```\n'
	"$ss" --help
	printf '```\n'
	echo "$cmds" | while IFS= read -r c; do
		printf '\n### `safeshare %s --help`\n\n```\n' "$c"
		# shellcheck disable=SC2086
		"$ss" $c --help
		printf '```\n'
	done
	printf '\n### `safeshared --help`\n\n```\n'
	"$ssd" --help
	printf '```\n'
} > "$t/section"

if [ "$write" = --write ]; then
	sed "/^$(printf '%s' "$marker" | sed 's/[`]/./g')\$/,\$d" "$doc" > "$t/doc"
	cat "$t/doc" "$t/section" > "$doc"
	echo "cli_help: wrote the section into $doc"
	exit 0
fi

sed -n "/^$(printf '%s' "$marker" | sed 's/[`]/./g')\$/,\$p" "$doc" > "$t/have"
if ! diff -u "$t/have" "$t/section"; then
	echo "FAIL: docs/cli.md differs from the programs' --help (run" \
	    "tests/deploy/cli_help.sh SRC SAFESHARE SAFESHARED --write)" >&2
	exit 1
fi

# Every unknown option: the usage on stderr, exit 2.
echo "$cmds
holder put-record
audit query" | while IFS= read -r c; do
	rc=0
	# shellcheck disable=SC2086
	"$ss" $c --no-such-option >/dev/null 2>"$t/err" || rc=$?
	[ "$rc" = 2 ] && grep -q 'usage' "$t/err" || {
		echo "FAIL: safeshare $c --no-such-option: exit $rc, no usage:" >&2
		cat "$t/err" >&2
		exit 1
	}
done
rc=0
"$ssd" --no-such-option >/dev/null 2>"$t/err" || rc=$?
[ "$rc" = 2 ] && grep -q usage "$t/err" || { echo "FAIL: safeshared --no-such-option" >&2; exit 1; }
# policy matrix --agency A (exited 2 with no message); JSON lists are arrays.
"$ss" policy matrix "$src/config/protocol.yaml" --agency police > "$t/m" 2>/dev/null ||
	{ echo "FAIL: policy matrix --agency police" >&2; exit 1; }
grep -q 'police-child-person' "$t/m" || { echo "FAIL: matrix text lacks rule ids" >&2; exit 1; }
grep -q 'if domestic_abuse withhold address,phone' "$t/m" ||
	{ echo "FAIL: matrix text lacks flag withholdings" >&2; exit 1; }
! grep -v '^AGENCY' "$t/m" | grep -qv '^police ' ||
	{ echo "FAIL: matrix --agency police shows other agencies" >&2; exit 1; }
"$ss" policy matrix "$src/config/protocol.yaml" --agency police --json > "$t/j" 2>/dev/null
grep -q '"fields":\[{"name":"full_name","transform":"none"}' "$t/j" &&
    grep -q '"overrides":\["child_significant_harm","emergency_life_threat"\]' "$t/j" &&
    grep -q '"withheld_when_flagged":\[{"flag":"domestic_abuse","fields":\["address","phone"\]}\]' "$t/j" ||
	{ echo "FAIL: matrix JSON lists are not arrays:" >&2; cat "$t/j" >&2; exit 1; }
echo "ok: docs/cli.md matches every --help; unknown options print the usage"
