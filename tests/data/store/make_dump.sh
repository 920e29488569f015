#!/bin/sh
# Makes a store from config/demo-data.yaml with a given safeshared and prints
# it as SQL (with its user_version), so a test can rebuild that release's
# store and check that the next migration keeps every row. Used for
# tests/data/store/v6-demo.sql:
#   sh tests/data/store/make_dump.sh build/daemon/safeshared > tests/data/store/v6-demo.sql
# (run on the commit whose store it should capture). The store id and the
# load time differ each run; nothing else does.
set -eu
bin=${1:?usage: make_dump.sh SAFESHARED}
src=$(cd "$(dirname "$0")/../../.." && pwd)
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
sed -e "s#^protocol: .*#protocol: $src/config/protocol.yaml#" \
    -e "s#\.\./run/#$t/#" "$src/config/safeshared.yaml" > "$t/c.yaml"
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
(cd "$src" && "$bin" -c "$t/c.yaml" -l config/demo-data.yaml >/dev/null 2>&1)
v=$(sqlite3 "$t/store.db" 'PRAGMA user_version')
echo "-- A store at schema version $v made from config/demo-data.yaml by"
echo "-- tests/data/store/make_dump.sh with the safeshared of commit"
echo "-- $(git -C "$src" log -1 --format=%h 2>/dev/null || echo unknown); test_store rebuilds it and migrates it."
sqlite3 "$t/store.db" .dump
echo "PRAGMA user_version = $v;"
