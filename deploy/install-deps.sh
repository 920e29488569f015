#!/bin/sh
# Installs the Debian packages safeshare needs to build and test, and only
# those that are missing. Safe to run again; needs root (or sudo) when
# something is missing.
set -eu

PKGS="build-essential cmake pkg-config libssl-dev openssl libevent-dev
libprotobuf-c-dev protobuf-c-compiler protobuf-compiler libsqlite3-dev
sqlite3 libcriterion-dev libyaml-dev libjansson-dev curl chromium
nodejs python3-protobuf postgresql libpq-dev"

# The PostgreSQL suites (issue 19) start a throwaway cluster of their own
# with the server binaries of postgresql (tests/pg/pgcluster.sh); the log
# module links libpq.

# The Connect client tests (issue 20) run buf curl and a generated Node.js
# client, whose npm packages the test installs into the build directory.
# npm comes with nodejs from some sources and is a Debian package of its
# own in others: ask for it only when no npm is found.

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
command -v npm >/dev/null 2>&1 || missing="$missing npm"

if [ -z "$missing" ]; then
	echo "install-deps: all packages present"
	exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO="sudo"
	else
		echo "install-deps: missing packages:$missing" >&2
		echo "install-deps: run as root or install them yourself" >&2
		exit 1
	fi
fi

echo "install-deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing
