#!/bin/sh
# Every `--json` output of the CLI, and every line of a log export, read
# back by a strict parser (issue 16 item 4): Python's json module with
# duplicate keys, NaN/Infinity and trailing text refused. The daemon runs
# on 127.0.0.1 with a generated PKI; the data holds the text JSON gets
# wrong when it is built by hand: quotes, backslashes, a slash, non-ASCII,
# an emoji, and in the free-text justification a newline and a tab.
#
#   json_cli.sh SOURCE_DIR SAFESHARED_BIN SAFESHARE_BIN
set -eu
src=$1
bin=$2
ss=$3
. "$src/tests/integration/harness.sh"
h_tmpdir jsoncli
dir=$h_dir

cat > "$dir/strict.py" <<'EOT'
import json, sys

def pairs(kv):
    keys = [k for k, _ in kv]
    if len(keys) != len(set(keys)):
        raise ValueError("duplicate key in %r" % keys)
    return dict(kv)

def constant(c):
    raise ValueError("not JSON: " + c)

text = sys.stdin.read()
docs = text.splitlines() if sys.argv[1] == "lines" else [text]
if not text.strip():
    sys.exit("empty output")
for i, d in enumerate(docs, 1):
    try:
        json.loads(d, object_pairs_hook=pairs, parse_constant=constant)
    except ValueError as e:
        sys.exit("line %d: %s\n%s" % (i, e, d[:2000]))
EOT
n=0
# strict NAME EXPECTED_EXIT [lines|text] ARGS: runs safeshare ARGS, checks
# its exit code and that its stdout is one strict JSON document (or JSON
# lines; text: not checked); the output is kept as $dir/out/NAME.
mkdir -p "$dir/out"
strict() {
	name=$1
	want=$2
	mode=doc
	shift 2
	case $1 in lines|text) mode=$1; shift;; esac
	rc=0
	"$ss" "$@" > "$dir/out/$name" 2>"$dir/err" || rc=$?
	[ "$rc" = "$want" ] || fail "$name: exit $rc, expected $want: $(cat "$dir/err") $(cat "$dir/out/$name")"
	[ $mode = text ] && return 0
	python3 "$dir/strict.py" $mode < "$dir/out/$name" ||
		fail "$name: safeshare $* printed what a strict JSON parser refuses"
	n=$((n + 1))
}
# full NAME ARGS: safeshare ARGS with its stdout on a full disk (/dev/full):
# exit 1 and a line saying the output is incomplete, never a silently cut
# --json or export.
full() {
	name=$1
	shift
	rc=0
	"$ss" "$@" > /dev/full 2>"$dir/err" || rc=$?
	[ "$rc" = 1 ] || fail "$name on /dev/full: exit $rc, expected 1: $(cat "$dir/err")"
	grep -q "could not be written.*incomplete\|the export is incomplete" "$dir/err" ||
		fail "$name on /dev/full: no error said so: $(cat "$dir/err")"
	n=$((n + 1))
}
as() {
	a=$1
	shift
	strict "$@" --server "127.0.0.1:$port" --cert "$dir/pki/$a.crt" \
	    --key "$dir/pki/$a.key" --ca "$dir/pki/ca.crt"
}

h_start_demo "$dir" "$bin" --signed police childrens_social_care health_trust \
	housing auditor admin guardian

# Text that printf-built JSON gets wrong (the daemon refuses control
# characters outside free text). printf expands the escapes.
odd=$(printf 'O'"'"'Brien "Jr" \\ back/slash Zo\303\253 \360\237\230\200')
why=$(printf 'line one "quoted" \\\n\tline two \360\237\230\200')
pub=$dir/pki/audit-signing.pub

strict health 0 health --json --server "127.0.0.1:$port" --cert "$dir/pki/police.crt" \
    --key "$dir/pki/police.key" --ca "$dir/pki/ca.crt"
as childrens_social_care put_record 0 holder put-record S-J1 person \
    "full_name=Ann O'Brien" "gp_practice=$odd" date_of_birth=2014-02-03 --json
printf '%s\n' '{"op":"flag","subject":"S-J1","flag":"domestic_abuse"}' \
    '{"op":"consent","subject":"S-J1","consent":"granted","agencies":["police"],"purposes":["child_protection"],"expires":null}' \
    > "$dir/ops.jsonl"
as childrens_social_care import_dry 0 holder import "$dir/ops.jsonl" --dry-run --json
as childrens_social_care import 0 holder import "$dir/ops.jsonl" --json
printf '%s\n' '{"op":"flag","subject":"S-J1","flag":"no_such_flag"}' > "$dir/bad.jsonl"
as childrens_social_care import_refused 4 holder import "$dir/bad.jsonl" --json
as childrens_social_care consent 0 holder consent S-J1 refused --agencies housing --json
as childrens_social_care unflag 0 holder unflag S-J1 domestic_abuse --json
as childrens_social_care show 0 holder show S-J1 --json
as childrens_social_care show_refused 4 holder show S-NOPE --json
# has FILE PYTHON_EXPR TEXT: the parsed document d of FILE gives TEXT.
has() {
	python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
sys.exit(0 if eval(sys.argv[2]) == sys.argv[3] else "got %r" % eval(sys.argv[2]))' "$@" ||
		fail "$1: $2 is not the text that was stored"
}
has "$dir/out/show" 'd["records"][0]["fields"]["gp_practice"]' "$odd"

mkdir "$dir/receipts"
as childrens_social_care request_csc 0 request --subject S-J1 --record-type person \
    --purpose child_protection --case "CP \"7\"" --practitioner P --fields gp_practice \
    --json
as police request 0 request --subject S-J1 --record-type person \
    --purpose child_protection --case "CP \"7\"" --practitioner "Pat O'Brien" \
    --fields full_name,date_of_birth --receipts "$dir/receipts" --json
as housing request_override 3 request --subject S1001 --record-type person \
    --purpose child_protection --case CP-8 --practitioner P \
    --override child_significant_harm --justification "$why" --json
as health_trust request_override2 0 request --subject S1002 --record-type person \
    --purpose adult_safeguarding --case AS-1 --practitioner P \
    --override adult_serious_harm --justification "$why" --json
as police request_refused 4 request --subject S-NONE --record-type person \
    --purpose child_protection --case CP-9 --practitioner P --json
as police locate 0 locate --purpose child_protection --case "CP \"10\"" \
    --practitioner P --subject S1001 --json
as police locate_refused 4 locate --purpose child_protection --case CP-11 \
    --practitioner P --nhs-number 1234567890 --json
# Issue 17: every holder at once, one object holding each holder's result;
# their receipts go with the others into receipt check and verify below.
as police request_all 0 request --nhs-number "943 476 5919" --record-type person \
    --purpose child_protection --case CP-12 --practitioner P \
    --receipts "$dir/receipts" --json
has "$dir/out/request_all" '",".join(h["holder"] for h in d["holders"])' \
    "childrens_social_care,health_trust"
as admin reload 0 admin reload --json

as auditor query 0 audit query --all --json
has "$dir/out/query" '[e["justification"] for e in d if e["override_code"]][0]' "$why"
as auditor query_subject 0 audit query --subject S-J1 --json
as auditor stats 0 audit stats --by agency --json
as auditor subject_report 0 audit subject-report S-J1 --json
as auditor reviews 0 audit reviews --json
as auditor inform 0 audit inform --json
seq=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["disclosure_id"])' \
    < "$dir/out/request_override2")
as guardian review 0 audit review "$seq" --outcome upheld --note "$why" --json
as auditor inform_done 0 audit inform-done "$seq" --note "told \"them\"" --json
as auditor verify 0 audit verify --json
as auditor report 0 audit report --json
auditor="--server 127.0.0.1:$port --cert $dir/pki/auditor.crt --key $dir/pki/auditor.key --ca $dir/pki/ca.crt"
full query_full audit query --all --json $auditor
full health_full health --json $auditor
full export_full audit export --out /dev/full $auditor
as auditor export_file 0 text audit export --out "$dir/export.jsonl"
python3 "$dir/strict.py" lines < "$dir/export.jsonl" ||
	fail "the log export is not strict JSON lines"
n=$((n + 1))
strict verify_export 0 audit verify --export "$dir/export.jsonl" --pubkey "$pub" --json
as police receipt_check 0 receipt check "$dir/receipts" --pubkey "$pub" --json
strict receipt_verify 0 receipt verify "$dir"/receipts/*.receipt --pubkey "$pub" --json
openssl genpkey -algorithm ed25519 -out "$dir/w.key" 2>/dev/null
chmod 600 "$dir/w.key"
as housing witness_text 0 text audit witness --state "$dir/w.state" --pubkey "$pub" \
    --cosign "$dir/w.key" --name witness.housing
wkey=$(sed -n 's/^witness: cosigning as \(witness\.housing+[^ ]*\)$/\1/p' \
    "$dir/out/witness_text")
as housing witness 0 audit witness --state "$dir/w.state" --pubkey "$pub" \
    --cosign "$dir/w.key" --name witness.housing --json
[ -n "$wkey" ] || fail "no witness key in: $(cat "$dir/out/witness_text")"

as childrens_social_care accesses 0 holder accesses --json
has "$dir/out/accesses" '[i["practitioner"] for i in d["items"] if i["agency"] == "police"][0]' \
    "Pat O'Brien"
as guardian alerts 0 audit alerts --json

strict matrix 0 policy matrix "$dir/protocol.yaml" --json
strict explain 0 policy explain "$dir/protocol.yaml" --agency police \
    --purpose child_protection --record-type person --fields full_name,nonesuch --json

# Offline, on a copy of the log taken while the daemon runs.
kill "$pid" && wait "$pid" 2>/dev/null || true
pid=""
strict show_log 0 audit show --log "$dir/audit.db" --json
strict verify_log 0 audit verify --log "$dir/audit.db" --pubkey "$pub" --json
strict export_log 0 text audit export --log "$dir/audit.db" --out "$dir/export2.jsonl"
full show_log_full audit show --log "$dir/audit.db" --json
full export_log_full audit export --log "$dir/audit.db" --out /dev/full
strict verify_witness 0 audit verify --log "$dir/audit.db" --pubkey "$pub" \
    --witness "$dir/w.state" --witness-key "$wkey" --min-witnesses 1 --json
echo "ok: $n --json outputs and exports read back by a strict JSON parser or refused on a full disk"
