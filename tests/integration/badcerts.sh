#!/bin/sh
# Issues the certificates a hostile or careless client might present, all
# claiming to be the police (CN=police,O=safeshare dev), from the test PKI in
# DIR/pki: expired, not yet valid, revoked (with DIR/pki/crl.pem), without
# the clientAuth purpose, and self-signed.
#   badcerts.sh DIR
set -eu
dir=$1
ca="$dir/ca-work"
mkdir -p "$ca/new"
: > "$ca/index.txt"
echo 1000 > "$ca/serial"
cat > "$ca/ca.cnf" <<EOT
[ ca ]
default_ca = dev
[ dev ]
database = $ca/index.txt
new_certs_dir = $ca/new
certificate = $dir/pki/ca.crt
private_key = $dir/pki/ca.key
serial = $ca/serial
default_md = sha256
default_crl_days = 30
policy = any
unique_subject = no
[ any ]
commonName = supplied
organizationName = optional
[ client ]
basicConstraints = CA:FALSE
extendedKeyUsage = clientAuth
[ serveronly ]
basicConstraints = CA:FALSE
extendedKeyUsage = serverAuth
EOT
umask 077
issue() {	# issue NAME EXTENSIONS STARTDATE ENDDATE
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/bad/$1.key" 2>/dev/null
	openssl req -new -key "$dir/bad/$1.key" -subj "/O=safeshare dev/CN=police" \
		-out "$ca/$1.csr" 2>/dev/null
	openssl ca -batch -config "$ca/ca.cnf" -extensions "$2" -startdate "$3" \
		-enddate "$4" -in "$ca/$1.csr" -out "$dir/bad/$1.crt" >/dev/null 2>&1
}
mkdir -p "$dir/bad"
issue expired client 20200101000000Z 20210101000000Z
issue notyet client 20400101000000Z 20410101000000Z
issue revoked client 20200101000000Z 20400101000000Z
issue serveronly serveronly 20200101000000Z 20400101000000Z
openssl ca -batch -config "$ca/ca.cnf" -revoke "$dir/bad/revoked.crt" >/dev/null 2>&1
openssl ca -batch -config "$ca/ca.cnf" -gencrl -out "$dir/pki/crl.pem" >/dev/null 2>&1
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
	-subj "/O=safeshare dev/CN=police" -keyout "$dir/bad/selfsigned.key" \
	-out "$dir/bad/selfsigned.crt" 2>/dev/null
echo "badcerts: expired notyet revoked serveronly selfsigned in $dir/bad"
