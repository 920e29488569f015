#!/bin/sh
# Pins the agencies of a sharing protocol to the keys of a PKI made by
# deploy/pki.sh: under the subject line of each agency whose certificate
# ID.crt is in PKIDIR, a line spki_sha256 with the SHA-256 of that
# certificate's SubjectPublicKeyInfo (docs/protocol.md, "Why pin"). A
# pinned agency is matched by its key only, so safeshared no longer warns
# that it is identified by subject alone, and another key the CA certifies
# under its subject is not that agency. An agency that has a pin already,
# or has no certificate in PKIDIR, is left as it is.
#
# usage: deploy/pin.sh PKIDIR PROTOCOL > PINNED
#
# The quickstart pins the example protocol to the keys it made
# (run/protocol.yaml). Prints the protocol to stdout; exit 1 if a
# certificate cannot be read.
set -eu

case ${1:-} in
-h|--help)
	awk 'NR > 1 && !/^#/ { exit } NR > 1' "$0" | sed 's/^# \{0,1\}//'
	exit 0 ;;
esac
[ $# -eq 2 ] || { echo "usage: deploy/pin.sh PKIDIR PROTOCOL > PINNED" >&2; exit 2; }
pki=$1
proto=$2
t=$(mktemp)
trap 'rm -f "$t"' EXIT INT TERM

# "id fingerprint" for each agency certificate (not the CA's or the server's).
for crt in "$pki"/*.crt; do
	[ -f "$crt" ] || continue
	id=$(basename "$crt" .crt)
	case $id in ca|server) continue ;; esac
	fp=$(openssl x509 -in "$crt" -pubkey -noout |
		openssl pkey -pubin -outform DER |
		openssl dgst -sha256 -r | cut -d' ' -f1)
	[ ${#fp} -eq 64 ] || { echo "pin: $crt: no key read" >&2; exit 1; }
	echo "$id $fp" >> "$t"
done

# Two passes over the protocol: which agencies are pinned already, then
# the file again with a pin after the subject line of each of the others.
awk -v pins="$t" '
BEGIN { while ((getline l < pins) > 0) { split(l, f, " "); fp[f[1]] = f[2] } }
# The id of an agency list item ("- id: X" inside the top-level agencies).
function agency(line,    s) {
	if (line ~ /^[A-Za-z_]+:/)
		inag = line ~ /^agencies:/
	if (!inag || line !~ /^[ \t]*- id:/)
		return ""
	s = line
	sub(/^[ \t]*- id:[ \t]*/, "", s)
	gsub(/["\047 \t\r]/, "", s)
	return s
}
NR == FNR {
	if (FNR == 1)
		inag = 0
	if ((a = agency($0)) != "")
		cur = a
	else if (inag && $0 ~ /^[ \t]*spki_sha256:/)
		pinned[cur] = 1
	next
}
{
	if (FNR == 1)
		inag = 0
	print
	if ((a = agency($0)) != "")
		cur = a
	else if (inag && $0 ~ /^[ \t]*subject:/ && (cur in fp) &&
	    !(cur in pinned)) {
		ind = $0
		sub(/subject:.*/, "", ind)
		printf "%sspki_sha256: \"%s\"\n", ind, fp[cur]
	}
}' "$proto" "$proto"
