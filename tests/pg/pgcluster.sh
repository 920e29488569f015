#!/bin/sh
# A throwaway PostgreSQL cluster for the PostgreSQL suites (issue 19):
#
#   tests/pg/pgcluster.sh start STATE_DIR
#   tests/pg/pgcluster.sh stop STATE_DIR
#
# start: initdb + pg_ctl in a new temporary directory, as an unprivileged
# user (nobody when run as root, as CI does; else the caller), listening
# on 127.0.0.1 only, on a free port, with its unix socket in that
# directory. A test role with a random password (scram-sha-256 on TCP)
# owns a test database. STATE_DIR/conninfo gets the libpq connection
# string the suites read; STATE_DIR/cluster names the temporary
# directory. Without PostgreSQL it writes STATE_DIR/absent with the
# reason and succeeds, so the suites skip -- unless CI=true, where that is
# a failure.
#
# stop: stops the server by the pid in its postmaster.pid (fast shutdown,
# then SIGKILL after 30 s) and removes the temporary directory.
#
# ctest runs both as the fixture "pg" (tests/CMakeLists.txt).
# SAFESHARE_PG_SETTINGS: more server settings for start, as "-c name=value
# ..." after the defaults below (which they override); deploy/bench.sh
# gives its own.
set -eu

usage() {
	echo "usage: pgcluster.sh start|stop STATE_DIR" >&2
	exit 2
}
[ $# -eq 2 ] || usage
cmd=$1
state=$2

# Debian's server binaries are not on PATH: the newest installed version.
pgbin() {
	# SAFESHARE_PG_BIN: another installation's bin directory.
	if [ -n "${SAFESHARE_PG_BIN:-}" ]; then
		[ -x "$SAFESHARE_PG_BIN/initdb" ] && echo "$SAFESHARE_PG_BIN"
		return 0
	fi
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -n -r); do
		if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
			echo "$d"
			return
		fi
	done
	d=$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/initdb)")
	[ -x "$d/initdb" ] && echo "$d"
	return 0
}

# Runs a command as the cluster's owner.
as_owner() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u nobody -- "$@"
	else
		"$@"
	fi
}

stop_cluster() {	# stop_cluster DIR
	dir=$1
	[ -d "$dir" ] || return 0
	if [ -f "$dir/data/postmaster.pid" ]; then
		pid=$(head -n 1 "$dir/data/postmaster.pid")
		case $pid in
		''|*[!0-9]*) pid="" ;;
		esac
		if [ -n "$pid" ] && kill -INT "$pid" 2>/dev/null; then
			i=0
			while kill -0 "$pid" 2>/dev/null && [ $i -lt 300 ]; do
				sleep 0.1
				i=$((i + 1))
			done
			if kill -0 "$pid" 2>/dev/null; then
				echo "pgcluster: postgres $pid did not stop in 30 s: killed" >&2
				kill -KILL "$pid" 2>/dev/null || true
			fi
		fi
	fi
	rm -rf "$dir"
}

free_port() {
	if command -v python3 >/dev/null 2>&1; then
		python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
	else
		echo $((20000 + $(od -An -N2 -tu2 /dev/urandom) % 40000))
	fi
}

case $cmd in
start)
	mkdir -p "$state"
	rm -f "$state/conninfo" "$state/absent"
	# A cluster a killed run left behind.
	[ -f "$state/cluster" ] && stop_cluster "$(cat "$state/cluster")"
	rm -f "$state/cluster"
	bin=$(pgbin)
	if [ -z "$bin" ]; then
		why="PostgreSQL server binaries (initdb, pg_ctl) not found: install Debian's postgresql (deploy/install-deps.sh)"
		if [ "${CI:-}" = true ]; then
			echo "pgcluster: $why" >&2
			exit 1
		fi
		echo "$why" >"$state/absent"
		echo "pgcluster: $why; the PostgreSQL suites will skip" >&2
		exit 0
	fi
	dir=$(mktemp -d /tmp/safeshare-pg.XXXXXX)
	echo "$dir" >"$state/cluster"
	chmod 0755 "$dir"
	[ "$(id -u)" -eq 0 ] && chown nobody "$dir"
	pw=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
	# The superuser has trust on the socket only; the test role, a password.
	as_owner "$bin/initdb" -D "$dir/data" -U postgres -E UTF8 --locale=C \
		--auth-local=trust --auth-host=reject >"$dir/initdb.log" 2>&1 || {
		cat "$dir/initdb.log" >&2
		echo "pgcluster: initdb failed" >&2
		exit 1
	}
	# The first line that matches decides: the test role first.
	{
		printf 'host\tsafeshare_test\tsafeshare_test\t127.0.0.1/32\tscram-sha-256\n'
		cat "$dir/data/pg_hba.conf"
	} >"$dir/hba" && cat "$dir/hba" >"$dir/data/pg_hba.conf" && rm -f "$dir/hba"
	started=0
	for try in 1 2 3 4 5; do
		port=$(free_port)
		if as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
		    -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir -c synchronous_commit=on -c max_connections=30 -c shared_buffers=32MB ${SAFESHARE_PG_SETTINGS:-}" \
		    start >/dev/null 2>&1; then
			started=1
			break
		fi
		echo "pgcluster: start on port $port failed (try $try)" >&2
	done
	if [ $started -ne 1 ]; then
		cat "$dir/server.log" >&2 || true
		stop_cluster "$dir"
		rm -f "$state/cluster"
		exit 1
	fi
	as_owner "$bin/psql" -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U postgres \
	    -d postgres -c "CREATE ROLE safeshare_test LOGIN PASSWORD '$pw'" \
	    -c "CREATE DATABASE safeshare_test OWNER safeshare_test" >/dev/null
	echo "host=127.0.0.1 port=$port dbname=safeshare_test user=safeshare_test password=$pw connect_timeout=10" \
	    >"$state/conninfo.new"
	chmod 0600 "$state/conninfo.new"
	mv "$state/conninfo.new" "$state/conninfo"
	echo "pgcluster: PostgreSQL ($bin) on 127.0.0.1:$port in $dir"
	;;
stop)
	if [ -f "$state/cluster" ]; then
		stop_cluster "$(cat "$state/cluster")"
		rm -f "$state/cluster"
	fi
	rm -f "$state/conninfo"
	;;
*)
	usage
	;;
esac
