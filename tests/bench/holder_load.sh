#!/bin/sh
# Disclosures while a holder batch is taken (issue 14 item 15): a fresh
# safeshared with 10,000 demo subjects (5,000 on PostgreSQL), then two
# loadgen runs of police disclosures over keep-alive connections, one
# alone and one while childrens_social_care sends one batch of N put_record ops. Prints both
# runs' latency and the batch's time. Not a test: run it by hand.
#
#   tests/bench/holder_load.sh [BUILD_DIR] [OPS] [CONNS] [SECONDS]
#
# SAFESHARED=path runs another daemon binary with the same loadgen (to
# compare with an older build). Only 127.0.0.1 is used; everything lives
# in a temp dir that is removed at the end.
#
# SAFESHARE_PG_CONNINFO=CONNINFO runs the daemon with storage: postgresql
# on that server instead, in a schema of its own made with psql and
# dropped at the end (e.g. a cluster from tests/pg/pgcluster.sh start DIR,
# whose DIR/conninfo it reads).
set -eu

root=$(cd "$(dirname "$0")/../.." && pwd)
B=${1:-$root/build}
ops=${2:-100000}
conns=${3:-16}
secs=${4:-15}
SAFESHARED=${SAFESHARED:-$B/daemon/safeshared}
LOADGEN=$B/tests/bench/loadgen
if [ ! -x "$SAFESHARED" ] || [ ! -x "$LOADGEN" ]; then
	echo "holder_load: build safeshared and loadgen in $B first" >&2
	exit 2
fi

T=$(mktemp -d /tmp/safeshare-holderbench-XXXXXX)
PID=
cleanup() {
	if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
		kill -TERM "$PID"
		i=0
		while kill -0 "$PID" 2>/dev/null && [ $i -lt 100 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		kill -KILL "$PID" 2>/dev/null || true
	fi
	rm -rf "$T"
	if [ -n "$PGCI" ]; then
		psql -q -X "$PGCI" -c "DROP SCHEMA $SCHEMA CASCADE" >/dev/null 2>&1 || true
	fi
}
PGCI=${SAFESHARE_PG_CONNINFO:-}
SCHEMA=holderbench_$$
if [ -n "$PGCI" ]; then
	psql -q -X "$PGCI" -c "CREATE SCHEMA $SCHEMA" >/dev/null
fi
trap cleanup EXIT
trap 'exit 130' INT TERM

"$root/deploy/pki.sh" "$T/pki" police childrens_social_care >/dev/null
P=$T/pki
cp "$root/config/protocol.yaml" "$T/protocol.yaml"
cat > "$T/safeshared.yaml" <<CONF
listen: 127.0.0.1
port: 0
tls:
  cert: $P/server.crt
  key: $P/server.key
  ca: $P/ca.crt
protocol: protocol.yaml
$(if [ -n "$PGCI" ]; then
	printf 'storage: postgresql\npostgresql:\n  conninfo: "%s options=-csearch_path=%s"\n' \
	    "$PGCI" "$SCHEMA"
else
	printf 'store: store.db\naudit_log: audit.db\n'
fi)
audit:
  signing_key: $P/audit-signing.key
limits:
  rate_per_agency: 0
log_level: warn
CONF
# On PostgreSQL each NHS number linked by the load takes an advisory lock
# until its commit: a default server's lock table holds about 6,400.
subjects=${HOLDER_LOAD_SUBJECTS:-$([ -n "$PGCI" ] && echo 5000 || echo 10000)}
"$LOADGEN" --make-data "$T/data.yaml" --subjects "$subjects" >/dev/null
"$SAFESHARED" -c "$T/safeshared.yaml" -l "$T/data.yaml" >/dev/null
"$SAFESHARED" -c "$T/safeshared.yaml" -r "$T/port" >"$T/safeshared.log" 2>&1 &
PID=$!
i=0
while [ ! -s "$T/port" ] && [ $i -lt 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
[ -s "$T/port" ] || { cat "$T/safeshared.log" >&2; exit 1; }
LG="$LOADGEN --port $(cat "$T/port") --cert $P/police.crt --key $P/police.key \
--ca $P/ca.crt --conns $conns --seconds $secs --warmup 1 --watch $PID \
--subjects $subjects"

echo "holder_load: $conns connections of disclosures, $secs s each run;" \
    "load average $(cut -d' ' -f1-3 /proc/loadavg) (a shared machine)"
$LG --label alone | sed -n '/^loadgen/p;/^  requests/p;/^  latency/p;/^  errors/p'
$LG --label "during-$ops-op-batch" --holder-batch "$ops" \
    --holder-cert "$P/childrens_social_care.crt" \
    --holder-key "$P/childrens_social_care.key" |
	sed -n '/^loadgen/p;/^  requests/p;/^  latency/p;/^  errors/p;/^  holder/p'
