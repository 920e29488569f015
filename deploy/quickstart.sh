#!/bin/sh
# safeshare quickstart: installs what is missing, builds, makes a development
# PKI, starts safeshared on 127.0.0.1:8443 with the example protocol and demo
# data, and runs example requests as practitioners, a data holder, an admin,
# an auditor and the Caldicott Guardian.
#
#   deploy/quickstart.sh               set up and start (safe to run again)
#   deploy/quickstart.sh --postgresql  the same with PostgreSQL: a local
#                                      throwaway cluster, two daemons, one log
#   deploy/quickstart.sh stop          stop the daemons (and cluster) it started
#
# SAFESHARE_PORT=N picks another port than 8443 (0: any free one); with
# --postgresql the second daemon listens on N+1.
#
# Everything it makes lives in run/ at the top of the repository.
set -eu

cd "$(dirname "$0")/.."
root=$(pwd)
run="$root/run"
pidfile="$run/safeshared.pid"
B="$root/build"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@" || true; }

stop_pid() {	# stop_pid PIDFILE: the daemon whose pid it holds
	if [ -f "$1" ]; then
		pid=$(cat "$1")
		if kill -0 "$pid" 2>/dev/null; then
			kill -TERM "$pid"
			i=0
			while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do
				sleep 0.1
				i=$((i + 1))
			done
			if kill -0 "$pid" 2>/dev/null; then
				echo "quickstart: safeshared (pid $pid) did not stop; sending KILL" >&2
				kill -KILL "$pid" 2>/dev/null || true
			fi
			echo "quickstart: stopped safeshared (pid $pid)"
		fi
		rm -f "$1"
	fi
}

# Everything a quickstart started: the SQLite daemon, or the two
# PostgreSQL daemons and their cluster (stopped by the pid in its
# postmaster.pid: tests/pg/pgcluster.sh stop).
stop_daemon() {
	stop_pid "$pidfile"
	stop_pid "$run/safeshared-a.pid"
	stop_pid "$run/safeshared-b.pid"
	if [ -f "$run/pg/cluster" ]; then
		sh tests/pg/pgcluster.sh stop "$run/pg"
		echo "quickstart: stopped the PostgreSQL cluster"
	fi
}

# --postgresql (issue 19, docs/deploy-ha.md): one throwaway cluster made
# as the test suites make theirs (tests/pg/pgcluster.sh: initdb and pg_ctl
# as an unprivileged user in a temporary directory, on a free loopback
# port), two daemons with the same config but the port and the same
# signing key, the demo data loaded once, a request answered by each, and
# the one log verified.
pg_quickstart() {
	say "4. A local PostgreSQL cluster (throwaway: initdb and pg_ctl as an unprivileged user)"
	sh tests/pg/pgcluster.sh start "$run/pg"
	if [ ! -s "$run/pg/conninfo" ]; then
		echo "quickstart: no PostgreSQL cluster: $(cat "$run/pg/absent" 2>/dev/null)" >&2
		exit 1
	fi
	# The password goes into a libpq passfile (mode 0600), not the config.
	pgport=$(sed -n 's/.* port=\([0-9]*\) .*/\1/p' "$run/pg/conninfo")
	pgpw=$(sed -n 's/.* password=\([0-9a-f]*\) .*/\1/p' "$run/pg/conninfo")
	(umask 077; echo "127.0.0.1:$pgport:safeshare_test:safeshare_test:$pgpw" \
		>"$run/pg/pgpass")
	ci="host=127.0.0.1 port=$pgport dbname=safeshare_test user=safeshare_test passfile=$run/pg/pgpass connect_timeout=10"
	echo "cluster on 127.0.0.1:$pgport, database safeshare_test; password in run/pg/pgpass"

	say "5. Two daemons' configs: the same but the port (run/safeshared-a.yaml, -b.yaml)"
	pa=${SAFESHARE_PORT:-8443}
	case $pa in *[!0-9]*) echo "quickstart: SAFESHARE_PORT: a number" >&2; exit 2 ;; esac
	pb=$((pa == 0 ? 0 : pa + 1))
	for d in a b; do
		p=$pa
		[ $d = b ] && p=$pb
		sed -e "s|^port: .*|port: $p|" \
		    -e "/^store: /d" \
		    -e "s|^audit_log: .*|storage: postgresql\npostgresql:\n  conninfo: \"$ci\"|" \
		    config/safeshared.yaml >"$run/safeshared-$d.yaml"
	done
	grep -A2 '^storage:' "$run/safeshared-a.yaml"
	show "$B/daemon/safeshared" -t -c "$run/safeshared-a.yaml"

	say "6. Load the demo data once (fictional subjects), into the one store both daemons use"
	"$B/daemon/safeshared" -c "$run/safeshared-a.yaml" -l config/demo-data.yaml

	say "7. Start two daemons on one database"
	for d in a b; do
		rm -f "$run/port-$d"
		nohup "$B/daemon/safeshared" -c "$run/safeshared-$d.yaml" -r "$run/port-$d" \
			>>"$run/safeshared-$d.log" 2>&1 </dev/null &
		echo $! >"$run/safeshared-$d.pid"
	done
	for d in a b; do
		i=0
		while [ ! -s "$run/port-$d" ] && [ $i -lt 100 ]; do
			if ! kill -0 "$(cat "$run/safeshared-$d.pid")" 2>/dev/null; then
				echo "quickstart: safeshared $d failed to start; its log:" >&2
				tail -n 20 "$run/safeshared-$d.log" >&2
				stop_daemon
				exit 1
			fi
			sleep 0.1
			i=$((i + 1))
		done
		[ -s "$run/port-$d" ] || { echo "quickstart: safeshared $d did not listen" >&2; stop_daemon; exit 1; }
		echo "safeshared $d: 127.0.0.1:$(cat "$run/port-$d"), pid $(cat "$run/safeshared-$d.pid"), log run/safeshared-$d.log"
	done

	export SAFESHARE_CA="$run/pki/ca.crt"
	SAFESHARE_CERT="$run/pki/police.crt" SAFESHARE_KEY="$run/pki/police.key"
	export SAFESHARE_CERT SAFESHARE_KEY
	SS="$B/client/safeshare"
	for d in a b; do
		say "8$d. Police ask daemon $d: child protection, person record of S1001"
		export SAFESHARE_SERVER=127.0.0.1:$(cat "$run/port-$d")
		show "$SS" request --subject S1001 --record-type person --purpose child_protection \
			--case CP-2026-0142 --practitioner "DC R. Jones"
	done

	say "9. One chain: the two disclosures (request ids of two daemons) are consecutive entries of one log"
	show "$SS" audit export --postgresql "$ci" --out "$run/pg-log.jsonl"
	# Each entry's prev_hash is the entry before it, whichever daemon wrote it.
	python3 -c 'import json, sys
prev = None
for line in open(sys.argv[1]):
    e = json.loads(line)
    if "seq" not in e:
        continue
    link = "" if prev is None else ("  prev_hash = hash of %d" % (e["seq"] - 1) if e["prev_hash"] == prev else "  CHAIN BROKEN")
    print("  seq %d  %-10s request %s%s" % (e["seq"], e["kind"], e["request_id"] or "-", link))
    prev = e["hash"]' "$run/pg-log.jsonl"

	say "9a. The auditor asks daemon b: both disclosures, whichever daemon answered them"
	SAFESHARE_CERT="$run/pki/auditor.crt" SAFESHARE_KEY="$run/pki/auditor.key"
	show "$SS" audit query --kind disclosure --limit 10

	say "10. Verify the one log in PostgreSQL (chain, signatures, head), with only the public key"
	show "$SS" audit verify --postgresql "$ci" --pubkey "$run/pki/audit-signing.pub"

	cat <<EOT

== Done. Two safeshared on one PostgreSQL:
  a: 127.0.0.1:$(cat "$run/port-a") (pid $(cat "$run/safeshared-a.pid"), log run/safeshared-a.log)
  b: 127.0.0.1:$(cat "$run/port-b") (pid $(cat "$run/safeshared-b.pid"), log run/safeshared-b.log)
  PostgreSQL: $(cat "$run/pg/cluster"), 127.0.0.1:$pgport (throwaway; the
  password is in run/pg/pgpass, the connection string in run/safeshared-a.yaml)

Try it yourself (either daemon; both write one log):
  export SAFESHARE_SERVER=127.0.0.1:$(cat "$run/port-b") SAFESHARE_CA=$run/pki/ca.crt
  export SAFESHARE_CERT=$run/pki/police.crt SAFESHARE_KEY=$run/pki/police.key
  $SS request --subject S1001 --record-type person --purpose child_protection \\
      --case CP-1 --practitioner "Your Name"
  $SS audit verify --postgresql "$ci" \\
      --pubkey $run/pki/audit-signing.pub

Stop both daemons and the cluster (its data goes with it): deploy/quickstart.sh stop
EOT
}

mode=sqlite
case ${1:-start} in
stop)
	stop_daemon
	exit 0 ;;
start) ;;
--postgresql) mode=postgresql ;;
-h|--help)
	sed -n '2,12p' "$0"
	exit 0 ;;
*)
	echo "usage: deploy/quickstart.sh [--postgresql | stop]" >&2
	exit 2 ;;
esac

say "1. Dependencies (Debian packages)"
deploy/install-deps.sh

say "2. Build"
cmake -S "$root" -B "$B" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$B" -j "$(nproc 2>/dev/null || echo 2)" >/dev/null
echo "built $B/daemon/safeshared and $B/client/safeshare"

say "3. Development PKI in run/pki (a CA, a server certificate, one per agency)"
stop_daemon
mkdir -p "$run"
if [ ! -f "$run/pki/ca.crt" ]; then
	deploy/pki.sh "$run/pki"
else
	echo "reusing $run/pki"
fi
# The example protocol names its agencies by subject alone, which
# safeshared warns about at every start; the quickstart made their keys,
# so its copy pins each agency to its key (docs/protocol.md "Why pin").
sh deploy/pin.sh "$run/pki" config/protocol.yaml > "$run/protocol.yaml"
echo "run/protocol.yaml: the example protocol, each agency pinned to its key in run/pki"

if [ $mode = postgresql ]; then
	pg_quickstart
	exit 0
fi

# The example config in run/, with SAFESHARE_PORT if set: its relative
# paths still reach run/ from there, and its protocol is run/protocol.yaml.
case ${SAFESHARE_PORT:-8443} in *[!0-9]*) echo "quickstart: SAFESHARE_PORT: a number" >&2; exit 2 ;; esac
conf=$run/safeshared.yaml
sed -e "s|^port: .*|port: ${SAFESHARE_PORT:-8443}|" config/safeshared.yaml > "$conf"

say "4. Check the config and the sharing protocol (as an admin would)"
show "$B/daemon/safeshared" -t -c "$conf"
show "$B/client/safeshare" policy check "$run/protocol.yaml"

say "5. Load the demo data (fictional subjects) into a fresh store"
rm -f "$run/store.db" "$run/store.db-wal" "$run/store.db-shm"
"$B/daemon/safeshared" -c "$conf" -l config/demo-data.yaml

say "6. Start safeshared on 127.0.0.1:${SAFESHARE_PORT:-8443}"
rm -f "$run/port"
nohup "$B/daemon/safeshared" -c "$conf" -r "$run/port" \
	>>"$run/safeshared.log" 2>&1 </dev/null &
echo $! > "$pidfile"
i=0
while [ ! -s "$run/port" ] && [ $i -lt 100 ]; do
	if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
		echo "quickstart: safeshared failed to start; its log:" >&2
		tail -n 20 "$run/safeshared.log" >&2
		rm -f "$pidfile"
		exit 1
	fi
	sleep 0.1
	i=$((i + 1))
done
[ -s "$run/port" ] || { echo "quickstart: safeshared did not listen" >&2; exit 1; }
echo "safeshared running, pid $(cat "$pidfile"), log in run/safeshared.log"

export SAFESHARE_SERVER=127.0.0.1:$(cat "$run/port")
export SAFESHARE_CA="$run/pki/ca.crt"
as() {	# as AGENCY: use that agency's client certificate
	SAFESHARE_CERT="$run/pki/$1.crt"
	SAFESHARE_KEY="$run/pki/$1.key"
	export SAFESHARE_CERT SAFESHARE_KEY
	echo "(as $1)"
}
SS="$B/client/safeshare"
first=$(sqlite3 "$run/audit.db" "SELECT coalesce(max(seq), 0) + 1 FROM entries" 2>/dev/null || echo 1)

say "7. A practitioner asks: police, child protection, person record of S1001 -> released"
as police
show "$SS" request --subject S1001 --record-type person --purpose child_protection \
	--case CP-2026-0142 --practitioner "DC R. Jones"

say "8. Same rule, S1003 carries a domestic_abuse flag -> address and phone withheld (D12)"
show "$SS" request --subject S1003 --record-type person --purpose child_protection \
	--case CP-2026-0142 --practitioner "DC R. Jones"

say "9. Police ask for an adult safeguarding record -> denied, no rule (D1)"
show "$SS" request --subject S1002 --record-type person --purpose adult_safeguarding \
	--case AS-77 --practitioner "DC R. Jones"

say "10. Health asks about S1002, who refused consent -> denied (D4)"
as health_trust
show "$SS" request --subject S1002 --record-type person --purpose adult_safeguarding \
	--case AS-78 --practitioner "N. Patel"

say "11. ... and with an override exception and a justification -> released, flagged for review (D5, D6)"
show "$SS" request --subject S1002 --record-type person --purpose adult_safeguarding \
	--case AS-78 --practitioner "N. Patel" --override adult_serious_harm \
	--justification "Neighbour reports Mr Mills has not been seen for four days and is at risk of serious harm."

say "12. A domestic-abuse service consults without identifying the subject (D11)"
as da_service
show "$SS" request --subject S1003 --record-type concern --purpose marac \
	--case MARAC-12 --practitioner "J. Reed" --consult

say "13. A data holder writes: children's social care imports records, consent and a flag, all or nothing"
as childrens_social_care
show "$SS" holder import --progress config/demo-import.csv
show "$SS" holder consent S2001 granted --agencies police --purposes child_protection \
	--expires 2027-05-31

say "14. Police ask for the new S2002 -> address and phone withheld by the flag just set (D12)"
as police
show "$SS" request --subject S2002 --record-type person --purpose child_protection \
	--case CP-2026-0150 --practitioner "DC R. Jones"

say "15. Health may not touch a subject children's social care holds -> refused, answered as if the subject were unknown (404), and logged"
as health_trust
show "$SS" holder flag S2001 hate_crime

say "15a. Each holder follows every use of its own records, and only its own (D20; --follow keeps reading)"
as childrens_social_care
show "$SS" holder accesses --since $((first - 1))
as health_trust
show "$SS" holder accesses --since $((first - 1))

say "16. An auditor reads the disclosure log over mTLS (D16, D17)"
as auditor
show "$SS" audit query --after $((first - 1)) --limit 20
show "$SS" audit stats --by decision
show "$SS" audit subject-report S1002

say "17. The Caldicott Guardian reviews the override (D15); the auditor tracks informing the subject (D6)"
override=$(sqlite3 "$run/audit.db" "SELECT max(seq) FROM entries WHERE kind = 'disclosure' AND override_code != '' AND decision != 'deny' AND reason IN ('override', 'override_partial')" 2>/dev/null || true)
show "$SS" audit reviews
as guardian
show "$SS" audit alerts --since $((first - 1))
show "$SS" audit review "$override" --outcome upheld \
	--note "Proportionate: risk of serious harm, consent could not be sought in time"
as auditor
show "$SS" audit inform

say "18. Verify the log: online, and offline with only the public key"
show "$SS" audit verify
show "$SS" audit verify --log "$run/audit.db" --pubkey "$run/pki/audit-signing.pub"

say "19. The Caldicott Guardian's report: charts and tables in one self-contained HTML file (issue 21)"
as guardian
show "$SS" audit report --html "$run/report.html"

# -- receipts and a witness (issue 13) --
say "20. A receipt in every reply, verified offline; a partner witnesses the log"
as police
mkdir -p "$run/receipts"
show "$SS" request --subject S1001 --record-type person --purpose child_protection \
	--case CP-2026-0151 --practitioner "DC R. Jones" --receipts "$run/receipts"
show "$SS" receipt verify "$run"/receipts/*.receipt --pubkey "$run/pki/audit-signing.pub"
show "$SS" receipt check "$run/receipts" --pubkey "$run/pki/audit-signing.pub"
as housing
show "$SS" audit witness --state "$run/witness.state" --pubkey "$run/pki/audit-signing.pub"
# -- end of receipts and a witness --

# -- without our client: Connect and JSON (issue 20) --
say "21. Any HTTP client: curl posts JSON to the Connect path, the same request as step 7"
show curl -sS --cacert "$run/pki/ca.crt" --cert "$run/pki/police.crt" \
	--key "$run/pki/police.key" -H 'Content-Type: application/json' \
	-d '{"purpose":"child_protection","caseReference":"CP-2026-0142","practitioner":"DC R. Jones","subjectId":"S1001","recordType":"person","fields":["full_name"]}' \
	"https://$SAFESHARE_SERVER/safeshare.v1.DisclosureService/Request"
echo
# -- end of Connect and JSON --

# -- one person, many holders (issue 17) --
say "22. Who holds records about Amelia Hart? Locate by NHS number (D19): holders and record types only"
as police
show "$SS" locate --nhs-number "943 476 5919" --purpose child_protection \
	--case CP-2026-0142 --practitioner "DC R. Jones"
say "23. Ask by NHS number, no holder named: each holder's record, each its own decision, log entry and receipt (D18)"
show "$SS" request --nhs-number "943 476 5919" \
	--record-type person --purpose child_protection --case CP-2026-0142 \
	--practitioner "DC R. Jones" --receipts "$run/receipts"
say "23a. ... or one holder's record only"
show "$SS" request --holder health_trust --nhs-number "943 476 5919" \
	--record-type person --purpose child_protection --case CP-2026-0142 \
	--practitioner "DC R. Jones"
say "24. Sam O'Neil is no one known, and a bad check digit is refused: no hint either way"
show "$SS" locate --family-name "O'Neil" --given-name Sam --dob 2010-05-04 \
	--purpose child_protection --case CP-2026-0142 --practitioner "DC R. Jones"
show "$SS" locate --nhs-number "943 476 5918" --purpose child_protection \
	--case CP-2026-0142 --practitioner "DC R. Jones"
# -- end of one person, many holders --

as police >/dev/null
show "$SS" health

cat <<EOT

== Done. safeshared is running on $SAFESHARE_SERVER (pid $(cat "$pidfile")).

Try it yourself:
  export SAFESHARE_SERVER=$SAFESHARE_SERVER SAFESHARE_CA=$run/pki/ca.crt
  export SAFESHARE_CERT=$run/pki/police.crt SAFESHARE_KEY=$run/pki/police.key
  $SS request --subject S1001 --record-type person --purpose child_protection \\
      --case CP-1 --practitioner "Your Name" --json
  SAFESHARE_CERT=$run/pki/auditor.crt SAFESHARE_KEY=$run/pki/auditor.key $SS audit query
  curl --cacert $run/pki/ca.crt --cert $run/pki/police.crt --key $run/pki/police.key \\
      -H 'Content-Type: application/json' -d '{"purpose":"child_protection", ...}' \\
      https://$SAFESHARE_SERVER/safeshare.v1.DisclosureService/Request   (docs/api.md, "Connect")
  $SS --help

Daemon log: run/safeshared.log. Reload the protocol: kill -HUP \$(cat run/safeshared.pid)
Stop it:    deploy/quickstart.sh stop
EOT
echo "The auditor's report: $run/report.html"
