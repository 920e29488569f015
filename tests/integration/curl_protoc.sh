#!/bin/sh
# The API is usable without our client: a protobuf body made with
# `protoc --encode`, POSTed with plain curl over mutual TLS, answered with a
# DisclosureResponse that `protoc --decode` reads.
#   curl_protoc.sh SOURCE_DIR SAFESHARED_BIN
set -eu
src=$1
bin=$2
. "$src/tests/integration/harness.sh"
h_tmpdir curl
dir=$h_dir

h_start_demo "$dir" "$bin" police childrens_social_care health_trust

printf 'purpose: "child_protection" case_reference: "CP-1" practitioner: "DC Jones" subject_id: "S1001" record_type: "person" fields: "full_name"\n' |
	protoc --encode=safeshare.v1.DisclosureRequest -I "$src/proto" safeshare.proto > "$dir/req.bin"
curl -sS --fail --cert "$dir/pki/police.crt" --key "$dir/pki/police.key" \
	--cacert "$dir/pki/ca.crt" -H 'Content-Type: application/x-protobuf' \
	--data-binary @"$dir/req.bin" "https://127.0.0.1:$port/v1/disclosures" > "$dir/resp.bin"
protoc --decode=safeshare.v1.DisclosureResponse -I "$src/proto" safeshare.proto \
	< "$dir/resp.bin" > "$dir/resp.txt"
cat "$dir/resp.txt"
grep -q 'decision: DECISION_ALLOW' "$dir/resp.txt"
grep -q 'value: "Amelia Hart"' "$dir/resp.txt"
# Entries 1 and 2: the store opened and the demo data loaded (issue 15).
grep -q 'disclosure_id: 3' "$dir/resp.txt"

# Without a client certificate curl gets no HTTP reply at all.
if curl -sS --cacert "$dir/pki/ca.crt" "https://127.0.0.1:$port/healthz" -o /dev/null 2>/dev/null; then
	echo "FAIL: a request without a client certificate was answered" >&2
	exit 1
fi
echo "curl_protoc: ok"
