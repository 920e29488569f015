#!/bin/sh
# Makes or extends a PKI for safeshare: a CA, a server certificate, one
# client certificate per agency (ECDSA P-256), and the Ed25519 key that
# signs disclosure-log checkpoints (audit-signing.key, with
# audit-signing.pub for auditors). Private keys are mode 0600.
#
#   deploy/pki.sh [--server] OUTDIR [AGENCY ...]
#
#   OUTDIR     made if missing; a CA, server certificate or signing key
#              already there is kept, so running it again with a new
#              agency's name only issues that agency's certificate
#   AGENCY     issue (or re-issue) a client certificate, subject
#              "CN=<agency>,O=$SAFESHARE_PKI_ORG"; default: the agencies of
#              config/protocol.yaml (only when the directory has no CA yet)
#   --server   issue server.crt again (e.g. new names or expiry)
#
# Environment: SAFESHARE_PKI_ORG (O= of every subject; "safeshare dev"),
# SAFESHARE_PKI_DAYS (validity; 825), SAFESHARE_PKI_SERVER_NAMES (the
# server certificate's subjectAltName; "IP:127.0.0.1,DNS:localhost").
#
# Onboarding a partner agency (docs/operations.md): deploy/pki.sh DIR
# school_dsl, add the agency and its rules to the protocol with its
# certificate's subject or SPKI pin, safeshare policy check, reload.
# A partnership with its own CA issues certificates there instead.
set -eu

usage() { echo "usage: deploy/pki.sh [--server] OUTDIR [AGENCY ...]"; }
reissue_server=0
case ${1:-} in
-h|--help)
	# The help is the comment block at the top: every line from the
	# second up to the first one that is not a comment.
	usage
	awk 'NR > 1 && !/^#/ { exit } NR > 1' "$0" | sed 's/^# \{0,1\}//'
	exit 0 ;;
--server) reissue_server=1; shift ;;
-*) usage >&2; exit 2 ;;
esac
[ $# -ge 1 ] || { usage >&2; exit 2; }
out=$1
shift
if [ $# -eq 0 ] && [ ! -f "$out/ca.crt" ]; then
	set -- police childrens_social_care health_trust housing \
		da_service auditor admin guardian
fi
ORG=${SAFESHARE_PKI_ORG:-safeshare dev}
DAYS=${SAFESHARE_PKI_DAYS:-825}

umask 077
mkdir -p "$out"
cd "$out"

newkey() {
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
	chmod 600 "$1"
}

# sign NAME SUBJECT EXTENSIONS
sign() {
	newkey "$1.key"
	openssl req -new -key "$1.key" -subj "$2" -out "$1.csr" 2>/dev/null
	printf '%s\n' "$3" > "$1.ext"
	openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial \
		-days "$DAYS" -sha256 -extfile "$1.ext" -out "$1.crt" 2>/dev/null
	rm -f "$1.csr" "$1.ext"
	chmod 644 "$1.crt"
}

if [ ! -f ca.crt ] || [ ! -f ca.key ]; then
	newkey ca.key
	openssl req -x509 -new -key ca.key -subj "/O=$ORG/CN=safeshare dev CA" \
		-days "$DAYS" -sha256 -out ca.crt \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
	chmod 644 ca.crt
fi

# The server certificate is issued once: adding an agency must not replace
# the certificate a running daemon serves (issue 22).
server_note=kept
if [ ! -f server.crt ] || [ ! -f server.key ] || [ $reissue_server = 1 ]; then
	sign server "/O=$ORG/CN=localhost" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=${SAFESHARE_PKI_SERVER_NAMES:-IP:127.0.0.1,DNS:localhost}"
	server_note=issued
fi

for agency in "$@"; do
	sign "$agency" "/O=$ORG/CN=$agency" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
done
if [ ! -f audit-signing.key ]; then
	openssl genpkey -algorithm ed25519 -out audit-signing.key 2>/dev/null
	chmod 600 audit-signing.key
	openssl pkey -in audit-signing.key -pubout -out audit-signing.pub 2>/dev/null
	chmod 644 audit-signing.pub
fi
rm -f ca.srl
echo "pki: $out: CA, server certificate ($server_note), $# client certificate(s)${*:+ ($*)}, log signing key"
