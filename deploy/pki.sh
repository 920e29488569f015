#!/bin/sh
# Makes a development PKI: a CA, a server certificate for 127.0.0.1 and
# localhost, one client certificate per agency (ECDSA P-256), and the
# Ed25519 key that signs disclosure-log checkpoints (audit-signing.key, with
# audit-signing.pub for auditors). Private keys are mode 0600. For development and tests only: never commit the output.
#
#   deploy/pki.sh OUTDIR [AGENCY ...]
#
# Agencies default to those of config/protocol.yaml. Client certificates get
# the subject "CN=<agency>,O=safeshare dev" that the example protocol names.
set -eu

if [ $# -lt 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
	echo "usage: deploy/pki.sh OUTDIR [AGENCY ...]" >&2
	exit 2
fi
out=$1
shift
[ $# -gt 0 ] || set -- police childrens_social_care health_trust housing \
	da_service auditor admin guardian
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

sign server "/O=$ORG/CN=localhost" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost"

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
echo "pki: CA, server, $# client certificates and the log signing key in $out"
