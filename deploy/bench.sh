#!/bin/sh
# safeshared side by side with nginx, over the same mutual TLS on the same
# machine in the same run (issue 7). Installs nginx if missing, builds in
# build-bench/, makes a throwaway PKI and 10,000 demo subjects in a temp
# directory, starts nginx (1 worker, a 1 KiB static file, client certificates
# required) and safeshared (the example protocol, the real disclosure path:
# decision, store read, durable log append) on free 127.0.0.1 ports, drives
# both with tests/bench/loadgen and writes a table into BENCHMARKS.md.
#
#   deploy/bench.sh [--runs N] [--seconds S] [--no-memory] [--long]
#                   [--no-install] [--no-write] [--api-only] [--no-alerts]
#                   [--no-notify] [--commit pipelined|inline]
#                   [--no-postgresql] [--postgresql-only]
#
#   --runs N      runs per row, the median is reported (3; at least 3 to write)
#   --seconds S   measured seconds per run, after 1 s of warm-up (5)
#   --no-memory   skip the memory checks (10,000 idle connections, RSS growth)
#   --long        RSS growth over 300 s instead of 60 s
#   --no-install  do not apt-get nginx
#   --no-write    print the table; leave BENCHMARKS.md alone
#   --api-only    only the /v1, Connect, locate and NHS-number rows: no
#                 nginx, no memory, no holder batch; prints, never writes
#   --no-alerts   skip the override-to-alert and -POST latency row (issue 18)
#   --no-notify   skip the 64-connection rate with a hanging notify receiver
#   --commit M    audit.commit for every daemon: pipelined or inline (not set:
#                 the daemon's default, inline; docs/audit-format.md)
#   --no-postgresql    skip the PostgreSQL rows (issue 19)
#   --postgresql-only  only the 64-connection rows: nginx, SQLite, and
#                 PostgreSQL with one and two daemons; prints, never writes
#
# Rows: keep-alive at 1, 16 and 64 connections, and 16 connections that each
# make a new connection (full handshake, no resumption) per request; then
# the same disclosure on 16 keep-alive connections by POST /v1/disclosures,
# Connect with application/proto and Connect with application/json (issue
# 20), then POST /v1/locate by NHS number and the disclosure by NHS number
# and holder (issue 17), taking turns, compared by the daemon's CPU time per
# request from /proc/PID/stat (which other load on the machine barely
# moves) and by req/s with the request by id. Then (issue 18 item 7) the
# time from an override's reply to the Caldicott Guardian's alert arriving
# on a long-poll and to the guardian's notify POST arriving, while 64
# keep-alive connections make disclosures (tests/bench/alertlat, whose
# receiver takes the POSTs); and the 64-connection rate while an agency's
# notify receiver accepts and never answers, against none, taking turns
# (issue 18 item 3). Then (issue 19 item 6) a throwaway PostgreSQL cluster
# (tests/pg/pgcluster.sh, with the settings of pg_settings below), the same
# 10,000 subjects loaded into it, and 64 keep-alive connections against one
# daemon on it and spread round-robin over two (loadgen --port A,B, as a
# TCP load balancer would), both daemons sharing its store and its one log;
# compared with the SQLite daemon's and nginx's 64-connection rows of the
# same run. Every server this script starts is stopped by its pid on exit.
# Loopback only.
set -eu

cd "$(dirname "$0")/.."
root=$(pwd)
B=$root/build-bench
runs=3
secs=5
memory=1
growth=60
install=1
write=1
api_only=0
alerts=1
notify=1
commit=
pg=1
pg_only=0
cmdline="deploy/bench.sh${*:+ $*}"

while [ $# -gt 0 ]; do
	case $1 in
	--runs) runs=$2; shift ;;
	--seconds) secs=$2; shift ;;
	--no-memory) memory=0 ;;
	--long) growth=300 ;;
	--no-install) install=0 ;;
	--no-write) write=0 ;;
	--api-only) api_only=1; memory=0; write=0; alerts=0; notify=0 ;;
	--no-alerts) alerts=0 ;;
	--no-notify) notify=0 ;;
	--commit) commit=$2; shift ;;
	--no-postgresql) pg=0 ;;
	--postgresql-only) pg_only=1; pg=1; memory=0; write=0; alerts=0; notify=0 ;;
	-h|--help) sed -n '2,45p' "$0"; exit 0 ;;
	*) echo "usage: deploy/bench.sh [--runs N] [--seconds S] [--no-memory]" \
		"[--long] [--no-install] [--no-write] [--api-only] [--no-alerts]" \
		"[--no-notify] [--commit pipelined|inline] [--no-postgresql]" \
		"[--postgresql-only]" >&2
		exit 2 ;;
	esac
	shift
done
case $runs in ''|*[!0-9]*) echo "bench: --runs: a number" >&2; exit 2 ;; esac
case $commit in ''|pipelined|inline) ;; *) echo "bench: --commit: pipelined or inline" >&2; exit 2 ;; esac
case $secs in ''|*[!0-9]*) echo "bench: --seconds: whole seconds" >&2; exit 2 ;; esac
[ "$runs" -ge 1 ] && [ "$runs" -le 20 ] || { echo "bench: --runs 1..20" >&2; exit 2; }
[ "$secs" -ge 1 ] && [ "$secs" -le 120 ] || { echo "bench: --seconds 1..120" >&2; exit 2; }
[ $api_only = 0 ] || pg=0
if [ "$runs" -lt 3 ] && [ $write = 1 ]; then
	echo "bench: fewer than 3 runs per row; not writing BENCHMARKS.md" >&2
	write=0
fi

say() { printf '\n== %s\n' "$*"; }

# keep_result: copy loadgen's progress to stderr as it comes and pass only its
# RESULT line on to stdout. It writes to the inherited descriptor 2, never
# reopens /dev/stderr: `tee /dev/stderr` truncated a log redirected with
# `deploy/bench.sh > bench.log 2>&1` (issue 14 item 18).
keep_result() {
	while IFS= read -r line; do
		printf '%s\n' "$line" >&2
		case $line in "RESULT "*) printf '%s\n' "$line" ;; esac
	done
}

# ---- 1. nginx ----
NGINX=$(command -v nginx || true)
[ -n "$NGINX" ] || NGINX=/usr/sbin/nginx
if [ $api_only = 0 ] && [ ! -x "$NGINX" ]; then
	[ $install = 1 ] || { echo "bench: nginx is not installed" >&2; exit 1; }
	say "installing nginx (Debian package nginx-light)"
	# Never let the package start the system nginx (port 80).
	made_policy=0
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		made_policy=1
	fi
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null ||
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null
	[ $made_policy = 0 ] || rm -f /usr/sbin/policy-rc.d
	NGINX=$(command -v nginx || echo /usr/sbin/nginx)
fi

# PostgreSQL's server binaries (Debian puts them off PATH), for its rows.
pgbin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -n | tail -n 1; }
if [ $pg = 1 ] && [ -z "$(pgbin)" ]; then
	if [ $install = 1 ]; then
		say "installing postgresql (Debian package)"
		# Never let the package start the system's cluster (port 5432).
		made_policy=0
		if [ ! -e /usr/sbin/policy-rc.d ]; then
			printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
			chmod 755 /usr/sbin/policy-rc.d
			made_policy=1
		fi
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null || true
		[ $made_policy = 0 ] || rm -f /usr/sbin/policy-rc.d
	fi
	if [ -z "$(pgbin)" ]; then
		echo "bench: no PostgreSQL server binaries; no PostgreSQL rows" >&2
		pg=0
	fi
fi

# ---- 2. build ----
say "building in $B (RelWithDebInfo)"
cmake -S "$root" -B "$B" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$B" -j "$(nproc 2>/dev/null || echo 2)" --target safeshared loadgen alertlat >/dev/null
SAFESHARED=$B/daemon/safeshared
LOADGEN=$B/tests/bench/loadgen
ALERTLAT=$B/tests/bench/alertlat

# ---- 3. scratch space, cleanup ----
T=$(mktemp -d /tmp/safeshare-bench-XXXXXX)
chmod 755 "$T"		# the nginx worker runs as nobody and reads www/
NGINX_PID=
SS_PID=
BG_PID=
HANG_PID=
PGA_PID=
PGB_PID=

stop_pid() {	# stop_pid PID NAME: TERM, bounded wait, then KILL
	[ -n "$1" ] || return 0
	kill -0 "$1" 2>/dev/null || return 0
	kill -TERM "$1" 2>/dev/null || true
	i=0
	while kill -0 "$1" 2>/dev/null && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	if kill -0 "$1" 2>/dev/null; then
		echo "bench: $2 (pid $1) did not stop; KILL" >&2
		kill -KILL "$1" 2>/dev/null || true
	fi
	wait "$1" 2>/dev/null || true
}

cleanup() {
	stop_pid "$BG_PID" loadgen
	stop_pid "$HANG_PID" "hanging receiver"
	stop_pid "$SS_PID" safeshared
	stop_pid "$PGA_PID" "safeshared on PostgreSQL"
	stop_pid "$PGB_PID" "safeshared on PostgreSQL"
	stop_pid "$NGINX_PID" nginx
	# The cluster, by the pid in its postmaster.pid (pgcluster.sh).
	[ ! -f "$T/pg/cluster" ] || sh "$root/tests/pg/pgcluster.sh" stop "$T/pg" || true
	if [ -n "${BENCH_KEEP:-}" ]; then
		echo "bench: kept $T"
	else
		rm -rf "$T"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "PKI, data and configs in $T"
"$root/deploy/pki.sh" "$T/pki" police auditor childrens_social_care health_trust \
	guardian >/dev/null
P=$T/pki
LG="$LOADGEN --cert $P/police.crt --key $P/police.key --ca $P/ca.crt"

# ---- 4. nginx: 1 worker, mTLS required, a 1 KiB file, its own prefix ----
if [ $api_only = 0 ]; then
N=$T/nginx
mkdir -p "$N/www" "$N/tmp" "$N/logs"
chmod 755 "$N" "$N/www"
head -c 1024 /dev/zero | tr '\0' 'x' > "$N/www/static.bin"
chmod 644 "$N/www/static.bin"
NPORT=$($LOADGEN --free-port)
cat > "$N/nginx.conf" <<EOF
# Written by deploy/bench.sh; nothing here is the system nginx's.
worker_processes 1;
worker_rlimit_nofile 20000;
pid $N/nginx.pid;
error_log $N/logs/error.log warn;
events {
	worker_connections 12000;
}
http {
	access_log off;
	client_body_temp_path $N/tmp/body;
	proxy_temp_path $N/tmp/proxy;
	fastcgi_temp_path $N/tmp/fastcgi;
	uwsgi_temp_path $N/tmp/uwsgi;
	scgi_temp_path $N/tmp/scgi;
	default_type application/octet-stream;
	keepalive_requests 100000000;
	keepalive_timeout 600s;
	server {
		listen 127.0.0.1:$NPORT ssl;
		ssl_certificate $P/server.crt;
		ssl_certificate_key $P/server.key;
		ssl_client_certificate $P/ca.crt;
		ssl_verify_client on;
		ssl_protocols TLSv1.2 TLSv1.3;
		ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305;
		root $N/www;
		location / { }
	}
}
EOF
"$NGINX" -p "$N" -e "$N/logs/error.log" -c "$N/nginx.conf" -g 'daemon off;' \
	>"$N/logs/stderr" 2>&1 &
NGINX_PID=$!
fi

# ---- 5. safeshared: the example protocol, 10,000 subjects ----
S=$T/ss
mkdir -p "$S"
cp "$root/config/protocol.yaml" "$S/protocol.yaml"
ss_config() {	# ss_config FILE MAX_CONNECTIONS TIMEOUT [CONNINFO]: TIMEOUT bounds idle
		# connections; with CONNINFO, the store and the log on PostgreSQL
	if [ -n "${4:-}" ]; then
		where="storage: postgresql
postgresql:
  conninfo: \"$4\""
	else
		where="store: store.db
audit_log: audit.db"
	fi
	cat > "$1" <<EOF
# Written by deploy/bench.sh: the example config, a free port, no
# per-agency rate limit and no smaller connection share per address or
# certificate (one agency, from one address, makes all the load).
listen: 127.0.0.1
port: 0
tls:
  cert: $P/server.crt
  key: $P/server.key
  ca: $P/ca.crt
protocol: protocol.yaml
$where
audit:
  signing_key: $P/audit-signing.key
  checkpoint_every: 1000
  checkpoint_seconds: 60
${commit:+  commit: $commit
}limits:
  max_connections: $2
  max_connections_per_address: $2
  max_connections_per_certificate: $2
  timeout: $3
  request_timeout: $3
  handshake_timeout: $(($3 < 60 ? 10 : 60))
  rate_per_agency: 0
log_level: info
EOF
}
ss_notify() {	# ss_notify FILE AGENCY FEED PORT TIMEOUT: AGENCY's feed POSTed to 127.0.0.1:PORT
	cat >> "$1" <<EOF
notify:
  $2:
    url: https://127.0.0.1:$4/$3
    cert: $P/$2.crt
    key: $P/$2.key
    ca: $P/ca.crt
    feed: $3
    timeout: $5
EOF
}
ss_config "$S/safeshared.yaml" 1024 30
ss_config "$S/safeshared-mem.yaml" 11000 600
# Issue 18: the guardian's alerts to alertlat's receiver; children's social
# care's accesses (every other police disclosure is of its subjects) to a
# receiver that never answers, given up after 2 s each time, so that the
# outbox times out, backs off and tries again within a run.
SINK_PORT=$($LOADGEN --free-port)
HANG_PORT=$($LOADGEN --free-port)
ss_config "$S/safeshared-alerts.yaml" 1024 30
ss_notify "$S/safeshared-alerts.yaml" guardian alerts "$SINK_PORT" 10
ss_config "$S/safeshared-hang.yaml" 1024 30
ss_notify "$S/safeshared-hang.yaml" childrens_social_care accesses "$HANG_PORT" 2
has_notify=1
if ! "$SAFESHARED" -t -c "$S/safeshared-hang.yaml" >/dev/null 2>&1; then
	echo "bench: this safeshared takes no notify: config; no notify rows" >&2
	has_notify=0
	notify=0
fi
$LOADGEN --make-data "$S/data.yaml" --subjects 10000 >/dev/null
"$SAFESHARED" -c "$S/safeshared.yaml" -l "$S/data.yaml" >/dev/null

# How long each start took, exec to listening, with the log's size then
# (issue 13: a restart on a big log once took over 10 s; see BENCHMARKS.md).
ss_starts=
ss_start() {	# ss_start CONFIG: starts safeshared, sets SS_PID and SPORT
	rm -f "$S/port"
	off=$(($(stat -c %s "$S/safeshared.log" 2>/dev/null || echo 0) + 1))
	t0=$(date +%s%N)
	"$SAFESHARED" -c "$1" -r "$S/port" >>"$S/safeshared.log" 2>&1 &
	SS_PID=$!
	i=0
	while [ ! -s "$S/port" ] && [ $i -lt 1000 ]; do
		kill -0 "$SS_PID" 2>/dev/null || { tail "$S/safeshared.log" >&2; exit 1; }
		sleep 0.01
		i=$((i + 1))
	done
	[ -s "$S/port" ] || { echo "bench: safeshared did not listen within 10 s" >&2; exit 1; }
	ms=$((($(date +%s%N) - t0) / 1000000))
	# The line follows the port file; this start's lines only.
	lsize= i=0
	while [ -z "$lsize" ] && [ $i -lt 100 ]; do
		lsize=$(tail -c +"$off" "$S/safeshared.log" |
		    sed -n 's/.*event=listening .*log_size=\([0-9]*\).*/\1/p' | head -n 1)
		[ -n "$lsize" ] || sleep 0.01
		i=$((i + 1))
	done
	echo "bench: safeshared ($(basename "$1")) listening after $ms ms," \
	    "log of ${lsize:-?} entries" >&2
	ss_starts="${ss_starts:+$ss_starts, }$(basename "$1" .yaml) $ms ms (${lsize:-?} entries)"
	SPORT=$(cat "$S/port")
}
ss_start "$S/safeshared.yaml"

if [ $api_only = 0 ]; then
i=0
until $LG --port "$NPORT" --fetch /static.bin >/dev/null 2>&1; do
	kill -0 "$NGINX_PID" 2>/dev/null || { cat "$N/logs/stderr" "$N/logs/error.log" >&2; exit 1; }
	i=$((i + 1))
	[ $i -lt 50 ] || { echo "bench: nginx does not answer" >&2; exit 1; }
	sleep 0.1
done
NWORKER=$(pgrep -P "$NGINX_PID" | head -n 1)
[ -n "$NWORKER" ] || { echo "bench: no nginx worker" >&2; exit 1; }
echo "nginx pid $NGINX_PID (worker $NWORKER) on 127.0.0.1:$NPORT;" \
	"safeshared pid $SS_PID on 127.0.0.1:$SPORT"
fi

metric() {	# metric NAME [PORT]: a counter from safeshared's /metrics
	$LG --port "${2:-$SPORT}" --fetch /metrics | awk -v n="$1" '$1 == n { print $2 }'
}

# ---- 6. the rows ----
R=$T/results
: > "$R"
busy=$(pgrep -f 'fuzz_|ctest|test_' | wc -l)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

run_one() {	# run_one SERVER ROW RUN: one loadgen run, its RESULT line to $R
	case $2 in
	ka1) args="--conns 1" ;;
	ka16) args="--conns 16" ;;
	ka64) args="--conns 64" ;;
	new16) args="--conns 16 --new-conn" ;;
	esac
	if [ "$1" = nginx ]; then
		args="$args --port $NPORT --get /static.bin --watch $NGINX_PID,$NWORKER"
	else
		args="$args --port $SPORT --watch $SS_PID"
		c0=$(metric safeshare_log_commits_total)
		e0=$(metric safeshare_log_entries_total)
	fi
	# shellcheck disable=SC2086
	out=$($LG $args --seconds "$secs" --warmup 1 --label "$1-$2-$3")
	line=$(printf '%s\n' "$out" | grep '^RESULT ')
	if [ "$1" = safeshared ]; then
		c1=$(metric safeshare_log_commits_total)
		e1=$(metric safeshare_log_entries_total)
		line="$line commits=$((c1 - c0)) entries=$((e1 - e0))"
	fi
	cpu_us=$(printf '%s\n' "$line" | tr ' ' '\n' | awk -F= '$1 == "cpu_s" { c = $2 }
	    $1 == "completed" { n = $2 } END { if (n > 0) printf "%.1f", c * 1e6 / n; else print 0 }')
	printf '%s cpu_us=%s server=%s row=%s\n' "$line" "$cpu_us" "$1" "$2" >> "$R"
	printf '%s\n' "$out" | sed -n '/^  requests/p;/^  latency/p;/^  errors/p;/^  new conns/p' |
		sed "s/^/  [$1 $2 $3] /"
}

ka_rows="ka1 ka16 ka64 new16"
[ $pg_only = 0 ] || ka_rows=ka64
[ $api_only = 1 ] ||
for row in $ka_rows; do
	say "row $row: $runs runs of $secs s each, nginx and safeshared in turn"
	r=1
	while [ $r -le "$runs" ]; do
		run_one nginx "$row" "$r"
		run_one safeshared "$row" "$r"
		r=$((r + 1))
	done
done

# ---- 6b. the same disclosure by /v1 and by Connect, proto and JSON (issue 20),
# and by /v1 a locate and a disclosure that name the person by NHS number (issue 17) ----
run_api() {	# run_api API RUN: 16 keep-alive connections, requests by API
	out=$($LG --port "$SPORT" --watch "$SS_PID" --conns 16 --api "$1" \
	    --seconds "$secs" --warmup 1 --label "api-$1-$2")
	line=$(printf '%s\n' "$out" | grep '^RESULT ')
	cpu_us=$(printf '%s\n' "$line" | tr ' ' '\n' | awk -F= '$1 == "cpu_s" { c = $2 }
	    $1 == "completed" { n = $2 } END { if (n > 0) printf "%.1f", c * 1e6 / n; else print 0 }')
	printf '%s cpu_us=%s server=safeshared row=api-%s\n' "$line" "$cpu_us" "$1" >> "$R"
	printf '%s\n' "$out" | sed -n '/^  requests/p;/^  errors/p;/^  decisions/p;/^  located/p' |
		sed "s/^/  [$1 $2] /"
	echo "  [$1 $2] daemon CPU $cpu_us us per request"
}
[ $pg_only = 1 ] ||
say "/v1, Connect, locate and by NHS number: $runs runs of $secs s each, 16 connections, taking turns"
r=1
[ $pg_only = 0 ] || r=$((runs + 1))
while [ $r -le "$runs" ]; do
	for api in v1 connect-proto connect-json locate nhs; do
		run_api $api $r
	done
	r=$((r + 1))
done

# ---- 7. memory: a fresh daemon with room for 10,000 connections ----
mem_growth= mem_idle= mem_base= mem_nginx=
if [ $memory = 1 ] && [ $api_only = 0 ]; then
	say "memory: RSS over ${growth} s of keep-alive load, then 10,000 idle connections"
	stop_pid "$SS_PID" safeshared
	ss_start "$S/safeshared-mem.yaml"
	# Bounded by time: loadgen's default cap of 1,000,000 requests ended
	# the "5 minute" run after 80-100 s at these rates.
	mem_growth=$($LG --port "$SPORT" --watch "$SS_PID" --conns 64 --warmup 10 \
	    --seconds "$growth" --requests 100000000 --label growth |
	    keep_result)
	mem_base=$($LG --port "$SPORT" --watch "$SS_PID" --conns 16 --seconds "$secs" \
	    --label idle-baseline | grep '^RESULT ')
	mem_idle=$($LG --port "$SPORT" --watch "$SS_PID" --conns 16 --seconds "$secs" \
	    --idle 10000 --label idle-10000 | keep_result)
	# nginx, for reference, holding as many.
	mem_nginx=$($LG --port "$NPORT" --get /static.bin --watch "$NWORKER" --conns 16 \
	    --seconds "$secs" --idle 10000 --label nginx-idle-10000 | grep '^RESULT ')
fi

# ---- 7b. disclosures during one 100,000-op holder batch (issue 14 item 15) ----
hb_line= hb_holder=
if [ $api_only = 0 ] && [ $pg_only = 0 ]; then
hsecs=$((secs < 10 ? 10 : secs))
say "holder batch: 16 connections of disclosures for $hsecs s, one 100,000-op batch meanwhile"
hb=$($LG --port "$SPORT" --watch "$SS_PID" --conns 16 --seconds "$hsecs" \
    --holder-batch 100000 --holder-cert "$P/childrens_social_care.crt" \
    --holder-key "$P/childrens_social_care.key" --label holder-batch)
printf '%s\n' "$hb" | sed -n '/^  requests/p;/^  latency/p;/^  errors/p;/^  holder/p'
hb_line=$(printf '%s\n' "$hb" | grep '^RESULT ' || true)
hb_holder=$(printf '%s\n' "$hb" | grep '^RESULT_HOLDER ' || true)
fi

# ---- 7c. override reply to guardian alert, under the 64-connection load (issue 18 item 7) ----
# alertlat overrides at 20/s for 10 s (200 at most) as health_trust,
# long-polls the alerts as the guardian and takes the guardian's notify
# POSTs (a daemon without notify: gets no sink); the load starts 2 s before
# it and outlasts it. Bounded: the load by its --seconds, alertlat by its count
# and a 10 s grace for late alerts.
al_line= al_load=
if [ $alerts = 1 ]; then
	say "alerts: overrides at 20/s for 10 s, a guardian long-poll and notify POSTs, 64 connections of disclosures meanwhile"
	sink=
	if [ $has_notify = 1 ]; then
		stop_pid "$SS_PID" safeshared
		ss_start "$S/safeshared-alerts.yaml"
		sink="--sink-port $SINK_PORT --sink-cert $P/server.crt --sink-key $P/server.key"
	fi
	$LG --port "$SPORT" --watch "$SS_PID" --conns 64 --warmup 1 --seconds 13 \
	    --label alerts-load > "$T/alerts-load.out" 2>&1 &
	BG_PID=$!
	sleep 2
	# shellcheck disable=SC2086
	al=$($ALERTLAT $sink --server "127.0.0.1:$SPORT" --ca "$P/ca.crt" \
	    --cert "$P/health_trust.crt" --key "$P/health_trust.key" \
	    --guardian-cert "$P/guardian.crt" --guardian-key "$P/guardian.key" \
	    --rate 20 --seconds 10 --label alerts) || true
	wait "$BG_PID" || true
	BG_PID=
	printf '%s\n' "$al" | sed -n '/^  /p'
	sed -n '/^  requests/p;/^  latency/p;/^  errors/p' "$T/alerts-load.out" |
		sed 's/^/  [load] /'
	al_line=$(printf '%s\n' "$al" | grep '^RESULT ' || true)
	al_load=$(grep '^RESULT ' "$T/alerts-load.out" || true)
fi

# ---- 7d. 64 connections with a notify receiver that hangs, and without (issue 18 item 3) ----
# A receiver that completes TLS, takes each POST and never answers; the
# daemon restarted with and without children's social care's notify
# pointing there, run by run. The outbox holds one POST in flight until
# notify.timeout (2 s here), then backs off (1 s, 2 s, ...) and tries
# again: the disclosures must not notice.
if [ $notify = 1 ]; then
	say "notify: 64 connections, $runs runs of $secs s each, with a hanging receiver and without, in turn"
	$ALERTLAT --hang-port "$HANG_PORT" --sink-cert "$P/server.crt" \
	    --sink-key "$P/server.key" --ca "$P/ca.crt" --seconds 600 > "$T/hang.out" 2>&1 &
	HANG_PID=$!
	r=1
	while [ $r -le "$runs" ]; do
		for cf in base hang; do
			stop_pid "$SS_PID" safeshared
			if [ $cf = base ]; then
				ss_start "$S/safeshared.yaml"
			else
				ss_start "$S/safeshared-hang.yaml"
			fi
			out=$($LG --port "$SPORT" --watch "$SS_PID" --conns 64 \
			    --seconds "$secs" --warmup 1 --label "notify-$cf-$r")
			line=$(printf '%s\n' "$out" | grep '^RESULT ')
			cpu_us=$(printf '%s\n' "$line" | tr ' ' '\n' | awk -F= '$1 == "cpu_s" { c = $2 }
			    $1 == "completed" { n = $2 } END { if (n > 0) printf "%.1f", c * 1e6 / n; else print 0 }')
			printf '%s cpu_us=%s server=safeshared row=notify-%s\n' "$line" "$cpu_us" \
			    "$cf" >> "$R"
			printf '%s\n' "$out" | sed -n '/^  requests/p;/^  latency/p;/^  errors/p' |
				sed "s/^/  [$cf $r] /"
		done
		r=$((r + 1))
	done
	stop_pid "$HANG_PID" "hanging receiver"
	HANG_PID=
	sed 's/^/  [receiver] /' "$T/hang.out"
fi

# ---- 7e. PostgreSQL: one daemon and two on one throwaway cluster (issue 19 item 6) ----
# Settings a real deployment of this size would also make (docs/deploy-ha.md);
# never fsync=off or synchronous_commit=off: the daemon sets
# synchronous_commit=on on every connection and a reply waits for its commit.
pg_settings="-c shared_buffers=512MB -c wal_buffers=16MB -c max_wal_size=4GB -c checkpoint_timeout=15min -c max_connections=100"
pg_snap() {	# pg_snap PID FILE: "pid ticks" of the postmaster PID and its children
	for f in /proc/[0-9]*/stat; do
		cat "$f" 2>/dev/null
		echo
	done | awk -v pm="$1" '
		# "pid (comm) state ppid ...": comm is "postgres", no spaces.
		$1 == pm || $4 == pm { print $1, $14 + $15 }' > "$2"
}
pg_cpu() {	# pg_cpu BEFORE AFTER: CPU seconds the server spent between two snapshots
	# Per process: one that ended meanwhile is left out, not subtracted.
	awk -v hz="$(getconf CLK_TCK)" 'NR == FNR { t0[$1] = $2; next }
		{ s += $2 - ($1 in t0 ? t0[$1] : 0) } END { printf "%.2f", s / hz }' "$1" "$2"
}
pg_start() {	# pg_start CONFIG NAME: a daemon on PostgreSQL; prints "PID PORT"
	rm -f "$S/$2.port"
	"$SAFESHARED" -c "$1" -r "$S/$2.port" >>"$S/$2.log" 2>&1 &
	pid=$!
	i=0
	while [ ! -s "$S/$2.port" ] && [ $i -lt 1000 ]; do
		kill -0 "$pid" 2>/dev/null || { tail "$S/$2.log" >&2; exit 1; }
		sleep 0.01
		i=$((i + 1))
	done
	[ -s "$S/$2.port" ] || { echo "bench: $2 did not listen within 10 s" >&2; exit 1; }
	echo "$pid $(cat "$S/$2.port")"
}
run_pg() {	# run_pg ROW RUN: pg1 (one daemon) or pg2 (two), 64 connections
	if [ "$1" = pg1 ]; then
		args="--port $PGA_PORT --watch $PGA_PID"
	else
		args="--port $PGA_PORT,$PGB_PORT --watch $PGA_PID,$PGB_PID"
	fi
	c0=$(($(metric safeshare_log_commits_total "$PGA_PORT") + $(metric safeshare_log_commits_total "$PGB_PORT")))
	e0=$(($(metric safeshare_log_entries_total "$PGA_PORT") + $(metric safeshare_log_entries_total "$PGB_PORT")))
	pg_snap "$PG_PM" "$T/pg0"
	# shellcheck disable=SC2086
	out=$($LG $args --conns 64 --seconds "$secs" --warmup 1 --label "$1-$2")
	pg_snap "$PG_PM" "$T/pg1"
	pgs=$(pg_cpu "$T/pg0" "$T/pg1")
	c1=$(($(metric safeshare_log_commits_total "$PGA_PORT") + $(metric safeshare_log_commits_total "$PGB_PORT")))
	e1=$(($(metric safeshare_log_entries_total "$PGA_PORT") + $(metric safeshare_log_entries_total "$PGB_PORT")))
	line="$(printf '%s\n' "$out" | grep '^RESULT ') commits=$((c1 - c0)) entries=$((e1 - e0))"
	cpu_us=$(printf '%s\n' "$line" | tr ' ' '\n' | awk -F= '$1 == "cpu_s" { c = $2 }
	    $1 == "completed" { n = $2 } END { if (n > 0) printf "%.1f", c * 1e6 / n; else print 0 }')
	pg_us=$(printf '%s\n' "$line" | tr ' ' '\n' | awk -F= -v c="$pgs" '
	    $1 == "completed" { n = $2 } END { if (n > 0) printf "%.1f", c * 1e6 / n; else print 0 }')
	printf '%s cpu_us=%s pg_us=%s server=pg row=%s\n' "$line" "$cpu_us" "$pg_us" "$1" >> "$R"
	printf '%s\n' "$out" | sed -n '/^  requests/p;/^  targets/p;/^  latency/p;/^  errors/p' |
		sed "s/^/  [$1 $2] /"
	echo "  [$1 $2] daemon CPU $cpu_us us, PostgreSQL CPU $pg_us us per request;" \
	    "$((e1 - e0)) entries in $((c1 - c0)) commits"
}
if [ $pg = 1 ]; then
	say "PostgreSQL: a throwaway cluster, one daemon and two, 64 connections, $runs runs of $secs s each"
	SAFESHARE_PG_SETTINGS="$pg_settings" sh "$root/tests/pg/pgcluster.sh" start "$T/pg"
	if [ ! -s "$T/pg/conninfo" ]; then
		echo "bench: no PostgreSQL cluster: $(cat "$T/pg/absent" 2>/dev/null)" >&2
		pg=0
	fi
fi
if [ $pg = 1 ]; then
	# The daemons get the password from a passfile, never the config.
	ci=$(cat "$T/pg/conninfo")
	pgport=$(printf '%s\n' "$ci" | sed -n 's/.* port=\([0-9]*\) .*/\1/p')
	pgpw=$(printf '%s\n' "$ci" | sed -n 's/.* password=\([0-9a-f]*\) .*/\1/p')
	( umask 077; echo "127.0.0.1:$pgport:safeshare_test:safeshare_test:$pgpw" > "$S/pgpass" )
	ss_config "$S/safeshared-pg.yaml" 1024 30 \
	    "host=127.0.0.1 port=$pgport dbname=safeshare_test user=safeshare_test passfile=$S/pgpass"
	PG_PM=$(head -n 1 "$(cat "$T/pg/cluster")/data/postmaster.pid")
	# safeshared -l analyzes the store's tables after its commit
	# (pgstore_analyze()): without fresh statistics the flags query scans
	# every flag. No ANALYZE of bench.sh's own, so that the rows measure
	# what an operator's load leaves, and a load that stopped analyzing
	# shows as the 120/s it was.
	"$SAFESHARED" -c "$S/safeshared-pg.yaml" -l "$S/data.yaml" >/dev/null
	pa=$(pg_start "$S/safeshared-pg.yaml" pg-a) || exit 1
	PGA_PID=${pa% *}; PGA_PORT=${pa#* }
	pb=$(pg_start "$S/safeshared-pg.yaml" pg-b) || exit 1
	PGB_PID=${pb% *}; PGB_PORT=${pb#* }
	echo "PostgreSQL postmaster $PG_PM on 127.0.0.1:$pgport; safeshared pids" \
	    "$PGA_PID, $PGB_PID on 127.0.0.1:$PGA_PORT, $PGB_PORT"
	r=1
	while [ $r -le "$runs" ]; do
		run_pg pg1 $r
		run_pg pg2 $r
		r=$((r + 1))
	done
	stop_pid "$PGA_PID" "safeshared on PostgreSQL"
	stop_pid "$PGB_PID" "safeshared on PostgreSQL"
	PGA_PID=''
	PGB_PID=''
	sh "$root/tests/pg/pgcluster.sh" stop "$T/pg"
fi
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- 8. medians and the table ----
field() {	# field LINE KEY
	printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"
}
med() {		# med SERVER ROW KEY: the median over the runs
	grep " server=$1 row=$2\$" "$R" | tr ' ' '\n' | sed -n "s/^$3=//p" |
		sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'
}
sum() {		# sum SERVER ROW KEY
	grep " server=$1 row=$2\$" "$R" | tr ' ' '\n' | sed -n "s/^$3=//p" |
		awk '{ s += $1 } END { print s + 0 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
fmt() { awk -v v="$1" 'BEGIN { printf "%.0f", v }'; }
verdict() { awk -v c="$1" 'BEGIN { print (c ? "**met**" : "**missed**") }'; }

# /v1 against Connect: the daemon's CPU per request, and Connect proto's target.
apitable=$T/api.md
{
	v1cpu=$(med safeshared api-v1 cpu_us)
	echo "| disclosures by (16 keep-alive connections) | req/s | p50 / p99 ms |" \
	    "daemon CPU µs per request | CPU vs /v1 | errors |"
	echo "|---|---|---|---|---|---|"
	for api in v1 connect-proto connect-json locate nhs; do
		case $api in
		v1) name='`POST /v1/disclosures`, application/x-protobuf' ;;
		connect-proto) name='Connect `DisclosureService/Request`, application/proto' ;;
		connect-json) name='Connect `DisclosureService/Request`, application/json' ;;
		locate) name='`POST /v1/locate` by NHS number (issue 17)' ;;
		nhs) name='`POST /v1/disclosures` by NHS number and holder (issue 17)' ;;
		esac
		c=$(med safeshared "api-$api" cpu_us)
		echo "| $name | $(fmt "$(med safeshared "api-$api" rps)") |" \
		    "$(med safeshared "api-$api" p50_ms) / $(med safeshared "api-$api" p99_ms) |" \
		    "$c | $(awk -v a="$c" -v b="$v1cpu" 'BEGIN { if (b > 0) printf "%+.1f %%", (a - b) * 100 / b; else print "-" }') |" \
		    "$(sum safeshared "api-$api" errors) |"
	done
	pc=$(awk -v a="$(med safeshared api-connect-proto cpu_us)" -v b="$v1cpu" \
	    'BEGIN { if (b > 0) printf "%.1f", (a - b) * 100 / b; else print 999 }')
	echo
	echo "| target | measured | verdict |"
	echo "|---|---|---|"
	echo "| Connect with application/proto costs at most 5 % over \`/v1\`" \
	    "(daemon CPU per request) | $pc % | $(verdict "$(awk -v p="$pc" 'BEGIN { print (p <= 5) }')") |"
	# Issue 17: locate and the request by NHS number keep up with the
	# request by id: req/s at least 90 % of /v1's.
	v1rps=$(med safeshared api-v1 rps)
	for api in locate nhs; do
		case $api in
		locate) name='`/v1/locate` by NHS number' ;;
		nhs) name='a disclosure request by NHS number' ;;
		esac
		pr=$(awk -v a="$(med safeshared "api-$api" rps)" -v b="$v1rps" \
		    'BEGIN { if (b > 0) printf "%.1f", a * 100 / b; else print 0 }')
		echo "| $name reaches at least 90 % of the request by id's req/s" \
		    "(issue 17) | $pr % | $(verdict "$(awk -v p="$pr" 'BEGIN { print (p >= 90) }')") |"
	done
} > "$apitable"
if [ $api_only = 1 ]; then
	say "/v1, Connect, locate and by NHS number (medians of $runs runs of $secs s)"
	cat "$apitable"
	exit 0
fi

# PostgreSQL against SQLite and nginx at 64 connections, this run (issue 19).
pgtable=$T/pg.md
: > "$pgtable"
if [ $pg = 1 ]; then
{
	n=$(med nginx ka64 rps); q=$(med safeshared ka64 rps)
	echo "| 64 keep-alive connections | disclosures/s | p50 / p99 ms |" \
	    "log entries per commit | ratio to SQLite | ratio to nginx |" \
	    "daemon CPU µs per request | PostgreSQL CPU µs per request | errors |"
	echo "|---|---|---|---|---|---|---|---|---|"
	echo "| SQLite, 1 daemon (the row above) | $(fmt "$q") |" \
	    "$(med safeshared ka64 p50_ms) / $(med safeshared ka64 p99_ms) |" \
	    "$(ratio "$(sum safeshared ka64 entries)" "$(sum safeshared ka64 commits)") |" \
	    "1.00 | $(ratio "$q" "$n") | $(fmt "$(med safeshared ka64 cpu_us)") | |" \
	    "$(sum safeshared ka64 errors) |"
	for row in pg1 pg2; do
		case $row in
		pg1) name="PostgreSQL, 1 daemon" ;;
		pg2) name="PostgreSQL, 2 daemons (connections round-robin)" ;;
		esac
		v=$(med pg $row rps)
		echo "| $name | $(fmt "$v") | $(med pg $row p50_ms) / $(med pg $row p99_ms) |" \
		    "$(ratio "$(sum pg $row entries)" "$(sum pg $row commits)") |" \
		    "$(ratio "$v" "$q") | $(ratio "$v" "$n") |" \
		    "$(fmt "$(med pg $row cpu_us)") | $(fmt "$(med pg $row pg_us)") |" \
		    "$(sum pg $row errors) |"
	done
	r2=$(ratio "$(med pg pg2 rps)" "$q"); p2=$(med pg pg2 p99_ms)
	echo
	echo "PostgreSQL $("$(pgbin)/postgres" --version | sed 's/.*) //'), a throwaway" \
	    "cluster on this machine (tests/pg/pgcluster.sh) with" \
	    "\`$(echo "$pg_settings" | sed 's/-c //g')\`, synchronous_commit = on;" \
	    "daemon CPU is both daemons' for 2 daemons."
	echo
	echo "| target (issue 19) | measured | verdict |"
	echo "|---|---|---|"
	echo "| two daemons on PostgreSQL, 64 connections: disclosures/s ≥ 50 % of" \
	    "the SQLite daemon's | $(awk -v r="$r2" 'BEGIN { printf "%.0f %%", r * 100 }') |" \
	    "$(verdict "$(awk -v r="$r2" 'BEGIN { print (r >= 0.5) }')") |"
	echo "| ... with p99 ≤ 20 ms | $p2 ms |" \
	    "$(verdict "$(awk -v v="$p2" 'BEGIN { print (v != "" && v <= 20) }')") |"
} > "$pgtable"
fi
if [ $pg_only = 1 ]; then
	say "64 connections: nginx, SQLite, PostgreSQL (medians of $runs runs of $secs s)"
	echo "nginx $(fmt "$(med nginx ka64 rps)") requests/s, p50 / p99" \
	    "$(med nginx ka64 p50_ms) / $(med nginx ka64 p99_ms) ms"
	echo
	cat "$pgtable"
	exit 0
fi

table=$T/table.md
{
	echo "| row | nginx req/s | safeshared req/s | ratio | nginx p50 / p99 ms |" \
	    "safeshared p50 / p99 ms | server CPU µs per request, nginx / safeshared |" \
	    "errors nginx / safeshared |"
	echo "|---|---|---|---|---|---|---|---|"
	for row in ka1 ka16 ka64 new16; do
		case $row in
		ka1) name="keep-alive, 1 connection" ;;
		ka16) name="keep-alive, 16 connections" ;;
		ka64) name="keep-alive, 64 connections" ;;
		new16) name="new connection per request, 16 at once" ;;
		esac
		n=$(med nginx $row rps); s=$(med safeshared $row rps)
		echo "| $name | $(fmt "$n") | $(fmt "$s") | $(ratio "$s" "$n") |" \
		    "$(med nginx $row p50_ms) / $(med nginx $row p99_ms) |" \
		    "$(med safeshared $row p50_ms) / $(med safeshared $row p99_ms) |" \
		    "$(fmt "$(med nginx $row cpu_us)") / $(fmt "$(med safeshared $row cpu_us)") |" \
		    "$(sum nginx $row errors) / $(sum safeshared $row errors) |"
	done
	n=$(med nginx new16 conn_per_cpu_s); s=$(med safeshared new16 conn_per_cpu_s)
	echo "| new connections per server CPU-second | $(fmt "$n") | $(fmt "$s") |" \
	    "$(ratio "$s" "$n") | | | | |"
} > "$table"

ka64_ratio=$(ratio "$(med safeshared ka64 rps)" "$(med nginx ka64 rps)")
ka64_p99=$(med safeshared ka64 p99_ms)
epc=$(ratio "$(sum safeshared ka64 entries)" "$(sum safeshared ka64 commits)")
new_ratio=$(ratio "$(med safeshared new16 conn_per_cpu_s)" "$(med nginx new16 conn_per_cpu_s)")
targets=$T/targets.md
{
	echo "| target (issue 7) | measured | verdict |"
	echo "|---|---|---|"
	echo "| keep-alive, 64 connections: disclosures/s ≥ 50 % of nginx |" \
	    "$(awk -v r="$ka64_ratio" 'BEGIN { printf "%.0f %%", r * 100 }') |" \
	    "$(verdict "$(awk -v r="$ka64_ratio" 'BEGIN { print (r >= 0.5) }')") |"
	echo "| ... with p99 ≤ 10 ms | $ka64_p99 ms |" \
	    "$(verdict "$(awk -v v="$ka64_p99" 'BEGIN { print (v <= 10) }')") |"
	echo "| log entries per fsync (commit) under that load ≥ 20 |" \
	    "$epc ($(sum safeshared ka64 entries) entries in $(sum safeshared ka64 commits) commits) |" \
	    "$(verdict "$(awk -v v="$epc" 'BEGIN { print (v >= 20) }')") |"
	echo "| new mTLS connections per daemon CPU-second ≥ 90 % of nginx |" \
	    "$(awk -v r="$new_ratio" 'BEGIN { printf "%.0f %%", r * 100 }') |" \
	    "$(verdict "$(awk -v r="$new_ratio" 'BEGIN { print (r >= 0.9) }')") |"
	if [ -n "$mem_idle" ]; then
		held=$(field "$mem_idle" idle_held)
		per=$(awk -v a="$(field "$mem_idle" rss_idle_kib)" \
		    -v b="$(field "$mem_idle" rss_before_idle_kib)" -v n="$held" \
		    'BEGIN { if (n > 0) printf "%.1f", (a - b) / n; else print "-" }')
		nper=$(awk -v a="$(field "$mem_nginx" rss_idle_kib)" \
		    -v b="$(field "$mem_nginx" rss_before_idle_kib)" \
		    -v n="$(field "$mem_nginx" idle_held)" \
		    'BEGIN { if (n > 0) printf "%.1f", (a - b) / n; else print "-" }')
		echo "| 10,000 idle mTLS connections: ≤ 64 KiB RSS each |" \
		    "$per KiB each ($held held; nginx: $nper KiB each) |" \
		    "$(verdict "$(awk -v v="$per" -v n="$held" 'BEGIN { print (n >= 10000 && v <= 64) }')") |"
		b99=$(field "$mem_base" p99_ms); i99=$(field "$mem_idle" p99_ms)
		echo "| ... while an active client's p99 stays within 2× |" \
		    "16 connections: p99 $b99 ms without, $i99 ms with them |" \
		    "$(verdict "$(awk -v a="$i99" -v b="$b99" 'BEGIN { print (a <= 2 * b) }')") |"
		g0=$(field "$mem_growth" rss_start_kib); g1=$(field "$mem_growth" rss_end_kib)
		gp=$(awk -v a="$g1" -v b="$g0" 'BEGIN { printf "%+.1f", (a - b) * 100 / b }')
		echo "| no memory growth: RSS at the end within 5 % of the start" \
		    "(over ${growth} s$([ "$growth" -lt 300 ] && echo ', not the 5 minutes of the issue: use --long')) |" \
		    "$g0 → $g1 KiB ($gp %) over $(fmt "$(field "$mem_growth" secs)") s measured," \
		    "$(fmt "$(field "$mem_growth" rps)") disclosures/s, max latency" \
		    "$(field "$mem_growth" max_ms) ms |" \
		    "$(verdict "$(awk -v p="$gp" 'BEGIN { print ((p < 0 ? -p : p) <= 5) }')") |"
	fi
	if [ -n "$hb_line" ]; then
		hmax=$(field "$hb_line" max_ms); herr=$(field "$hb_line" errors)
		echo "| disclosures during a 100,000-op holder batch (issue 14): none" \
		    "fails or waits over 1 s |" \
		    "$(fmt "$(field "$hb_line" rps)") disclosures/s, p50 / p99 / max" \
		    "$(field "$hb_line" p50_ms) / $(field "$hb_line" p99_ms) / $hmax ms," \
		    "$herr errors; the batch: status $(field "$hb_holder" status) in" \
		    "$(field "$hb_holder" secs) s |" \
		    "$(verdict "$(awk -v m="$hmax" -v e="$herr" 'BEGIN { print (e == 0 && m <= 1000) }')") |"
	fi
	if [ -n "$al_line" ]; then
		a99=$(field "$al_line" p99_ms); amiss=$(field "$al_line" missing)
		aerr=$(field "$al_line" errors)
		echo "| an override's reply to the guardian's alert arriving on a" \
		    "long-poll, under 64 keep-alive connections of disclosures" \
		    "(issue 18): p99 ≤ 1 s |" \
		    "p50 / p99 / max $(field "$al_line" p50_ms) / $a99 /" \
		    "$(field "$al_line" max_ms) ms; $(field "$al_line" alerts) of" \
		    "$(field "$al_line" ok) overrides alerted, $aerr errors;" \
		    "$(fmt "$(field "$al_load" rps)") disclosures/s meanwhile |" \
		    "$(verdict "$(awk -v p="$a99" -v m="$amiss" -v e="$aerr" 'BEGIN { print (m == 0 && e == 0 && p <= 1000) }')") |"
		p99=$(field "$al_line" post_p99_ms); pmiss=$(field "$al_line" post_missing)
		[ $has_notify = 0 ] || echo "| ... and to its notify POST arriving at the guardian's" \
		    "receiver (issue 18): p99 ≤ 1 s |" \
		    "p50 / p99 / max $(field "$al_line" post_p50_ms) / $p99 /" \
		    "$(field "$al_line" post_max_ms) ms; $(field "$al_line" posted) of" \
		    "$(field "$al_line" ok) overrides POSTed, in $(field "$al_line" posts) POSTs |" \
		    "$(verdict "$(awk -v p="$p99" -v m="$pmiss" 'BEGIN { print (m == 0 && p <= 1000) }')") |"
	fi
	if [ $notify = 1 ]; then
		nb=$(med safeshared notify-base rps); nh=$(med safeshared notify-hang rps)
		nr=$(ratio "$nh" "$nb")
		echo "| 64 keep-alive connections while an agency's notify receiver" \
		    "accepts and never answers (issue 18): disclosures/s unchanged" \
		    "(within 10 %, this machine's noise) |" \
		    "$(fmt "$nh") with, $(fmt "$nb") without (ratio $nr); p99" \
		    "$(med safeshared notify-hang p99_ms) / $(med safeshared notify-base p99_ms) ms;" \
		    "daemon CPU µs per disclosure $(med safeshared notify-hang cpu_us) /" \
		    "$(med safeshared notify-base cpu_us);" \
		    "errors $(sum safeshared notify-hang errors) / $(sum safeshared notify-base errors);" \
		    "$(sed -n 's/^RESULT_HANG posts=//p' "$T/hang.out") POSTs held |" \
		    "$(verdict "$(awk -v r="$nr" 'BEGIN { print (r >= 0.9) }')") |"
	fi
} > "$targets"

say "results (medians of $runs runs of $secs s)"
cat "$table"
echo
cat "$targets"
echo
cat "$apitable"
[ $pg = 0 ] || { echo; cat "$pgtable"; }

[ $write = 1 ] || exit 0

# ---- 9. BENCHMARKS.md: replace this script's block, or append it ----
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
mem=$(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)
nginx_v=$("$NGINX" -v 2>&1 | sed 's/.*nginx\///')
ssl_v=$(openssl version | cut -d' ' -f2)
ev_v=$(pkg-config --modversion libevent 2>/dev/null || echo '?')
cc_v=$(cc -dumpfullversion 2>/dev/null || cc -dumpversion)
if rev=$(git -C "$root" rev-parse --short HEAD 2>/dev/null); then
	src="commit $rev"
	[ -z "$(git -C "$root" status --porcelain -- src daemon client proto 2>/dev/null)" ] ||
		src="$src with uncommitted changes in src/, daemon/, client/ or proto/"
else
	src="a tree outside git (an export)"
fi
block=$T/block.md
{
	echo "<!-- deploy/bench.sh: generated from here to the end marker -->"
	echo "### Results of $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "Machine: $(nproc) × $cpu, $mem RAM, kernel $(uname -r);" \
	    "nginx $nginx_v, OpenSSL $ssl_v, libevent $ev_v, gcc $cc_v (RelWithDebInfo)."
	echo "Built from $src."
	echo "Load from others at the start: $busy process(es) matching" \
	    "\`fuzz_|ctest|test_\`, load average $load_start (at the end: $load_end)."
	echo "safeshared start-ups, exec to listening: $ss_starts."
	echo
	echo '```sh'
	echo "$cmdline"
	echo '```'
	echo
	echo "Medians of $runs runs of $secs s (after 1 s of warm-up) per row; nginx and"
	echo "safeshared take turns, run by run. Ratio = safeshared / nginx."
	echo
	cat "$table"
	echo
	cat "$targets"
	echo
	cat "$apitable"
	echo
	if [ $pg = 1 ]; then
		cat "$pgtable"
		echo
	fi
	echo "<!-- deploy/bench.sh: end -->"
} > "$block"
md=$root/BENCHMARKS.md
if grep -q '^<!-- deploy/bench.sh: generated' "$md"; then
	awk -v f="$block" '
		/^<!-- deploy\/bench.sh: generated/ { while ((getline l < f) > 0) print l; skip = 1; next }
		/^<!-- deploy\/bench.sh: end -->/ { skip = 0; next }
		!skip { print }' "$md" > "$T/md" && cat "$T/md" > "$md"
else
	{ echo; echo "## nginx side by side"; echo; cat "$block"; } >> "$md"
fi
echo "bench: wrote the results into BENCHMARKS.md"
