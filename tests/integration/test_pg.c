/*
 * The daemon on PostgreSQL (issue 19): safeshared with storage:
 * postgresql, its store and its log in a schema of the fixture's cluster
 * (harness_pg.c; ctest sets SAFESHARE_TEST_STORAGE=postgresql and the
 * fixture "pg"). The demo data loaded with -l, disclosures allowed and
 * refused, a holder batch, a locate, and the whole log verified by the
 * auditor's own tool against the daemon's database.
 */
#include <criterion/criterion.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "pgproxy.h"
#include "t_pg.h"

static struct daemon d;

H_DEMO_SUITE(pg, d, 120);

static Safeshare__V1__DisclosureResponse *
ask(const char *agency, const char *subject, const char *purpose,
    const char *rt, int *status)
{
	struct h_ask a = { subject, purpose, rt, 0, NULL, NULL, NULL };

	return h_ask(&d, agency, &a, status, NULL);
}

/* safeshare audit verify --postgresql on the daemon's own database. */
static int
verify(char **out)
{
	char cmd[4096];

	snprintf(cmd, sizeof(cmd), "%s audit verify --postgresql \"%s\" --pubkey "
	    "%s/pki/audit-signing.pub 2>&1", SAFESHARE_BIN, d.pg_conninfo, d.dir);
	return h_run(cmd, out);
}

Test(pg, the_daemon_runs_on_postgresql)
{
	char	 cmd[1024], *out;

	cr_assert_neq(d.pg_conninfo[0], '\0', "SAFESHARE_TEST_STORAGE=postgresql "
	    "is not set: this suite runs under ctest");
	/* -t says which backend. */
	snprintf(cmd, sizeof(cmd), "%s -t -c %s 2>&1", SAFESHARED_BIN, d.conf);
	cr_expect_eq(h_run(cmd, &out), 0, "%s", out);
	cr_expect(strstr(out, ": ok; protocol") != NULL &&
	    strstr(out, "; storage postgresql") != NULL, "%s", out);
	free(out);
	/* No file of the SQLite backend appeared. */
	snprintf(cmd, sizeof(cmd), "ls %s/*.db 2>/dev/null | wc -l", d.dir);
	cr_expect_eq(h_run(cmd, &out), 0);
	cr_expect_eq(atoi(out), 0, "SQLite files made: %s", out);
	free(out);
	/* The demo data went into PostgreSQL, and its load into the log (issue 15). */
	cr_expect_gt(h_pg_int(&d, "SELECT count(*) FROM records"), 0);
	cr_expect_eq(h_log_count(&d, "kind = 'store' AND reason = 'data_file'"), 1);
	cr_expect_eq(h_log_count(&d, "kind = 'store' AND decision = 'opened'"), 1);
}

/*
 * safeshared -l ends with ANALYZE of the store's tables (pgstore_analyze()):
 * without it the planner keeps the empty tables' statistics until
 * autovacuum comes round, and every disclosure's flags query walks all
 * flags. analyze_count counts manual ANALYZEs only, never autovacuum's.
 */
Test(pg, the_data_file_load_leaves_the_planner_fresh_statistics)
{
	cr_expect_eq(h_pg_int(&d, "SELECT count(*) FROM pg_stat_user_tables "
	    "WHERE relid IN ('subjects'::regclass, 'records'::regclass, "
	    "'record_fields'::regclass, 'consents'::regclass, 'flags'::regclass) "
	    "AND analyze_count > 0"), 5, "every table the load wrote analyzed");
	cr_expect_gt(h_pg_int(&d, "SELECT reltuples FROM pg_class WHERE oid = "
	    "'flags'::regclass"), 0, "the planner counts the flags loaded");
}

Test(pg, disclosures_are_decided_from_and_logged_in_postgresql)
{
	Safeshare__V1__DisclosureResponse	*r;
	int					 status;
	char					*out;

	r = ask("police", "S1001", "child_protection", "person", &status);
	cr_assert_eq(status, 200);
	cr_assert_not_null(r);
	cr_expect_eq(r->decision, SAFESHARE__V1__DECISION__DECISION_ALLOW);
	cr_expect_eq(r->n_released, 5, "D2: the rule's fields");
	/* D7: the reply names its entry, committed before the reply left. */
	cr_expect_eq(h_pg_int(&d, "SELECT count(*) FROM log_entries WHERE "
	    "decision = 'allow' AND agency = 'police' AND subject = 'S1001'"), 1);
	cr_expect_eq(h_pg_int(&d, "SELECT max(seq) FROM log_entries WHERE "
	    "subject = 'S1001'"), (long long)r->disclosure_id);
	cr_expect_not_null(r->receipt, "a signed checkpoint and proof");
	safeshare__v1__disclosure_response__free_unpacked(r, NULL);
	/* Flagged subject, refused consent: D4/D3 as on SQLite. */
	r = ask("health_trust", "S1001", "child_protection", "person", &status);
	if (r != NULL)
		safeshare__v1__disclosure_response__free_unpacked(r, NULL);
	cr_expect_eq(h_log_count(&d, "agency = 'health_trust' AND subject = 'S1001'"),
	    1, "every decision is logged, allowed or not");
	/* Every commit signed its checkpoint; the chain verifies. */
	cr_expect_gt(h_pg_int(&d, "SELECT count(*) FROM log_checkpoints"), 0);
	cr_expect_eq(verify(&out), 0, "%s", out);
	free(out);
}

/* The auditors' reads come from the log's tables (pglog_query.c via logstore_pg.c). */
Test(pg, auditors_read_the_log_in_postgresql)
{
	Safeshare__V1__DisclosureResponse	*r;
	int					 status;
	char					*out;

	r = ask("police", "S1001", "child_protection", "person", &status);
	cr_assert_eq(status, 200);
	safeshare__v1__disclosure_response__free_unpacked(r, NULL);
	cr_expect_eq(h_cli(&d, "auditor", "audit query --agency police", &out), 0,
	    "%s", out);
	cr_expect(strstr(out, "S1001") != NULL, "%s", out);
	free(out);
	cr_expect_eq(h_cli(&d, "auditor", "audit stats --by decision", &out), 0,
	    "%s", out);
	cr_expect(strstr(out, "allow") != NULL, "%s", out);
	free(out);
	/* The daemon's own verify, on a thread with its own connection. */
	cr_expect_eq(h_cli(&d, "auditor", "audit verify", &out), 0, "%s", out);
	free(out);
}

Test(pg, a_holder_batch_is_applied_and_logged)
{
	char	*out;

	h_put_child(&d);
	cr_assert_eq(H_HOLD(&d, "childrens_social_care", "op=flag",
	    "subject=S-C1", "flag=domestic_abuse", "--", "op=consent",
	    "subject=S-C1", "consent=granted", "agencies=police"), 200);
	cr_expect_eq(h_pg_int(&d, "SELECT count(*) FROM records WHERE "
	    "subject = 'S-C1'"), 2);
	cr_expect_eq(h_pg_int(&d, "SELECT count(*) FROM flags WHERE "
	    "subject = 'S-C1'"), 1);
	cr_expect_eq(h_pg_int(&d, "SELECT count(*) FROM holder_batches"), 2);
	cr_expect_eq(h_log_count(&d, "kind = 'holder' AND subject = 'S-C1'"), 4);
	cr_expect_eq(h_log_count(&d, "position('Ruby' in released || consent || "
	    "withheld) > 0"), 0, "record values are never logged");
	cr_expect_eq(verify(&out), 0, "%s", out);
	free(out);
}

Test(pg, locate_reads_the_subject_index_in_postgresql)
{
	char	 cmd[2048], *out;

	snprintf(cmd, sizeof(cmd), "%s locate --nhs-number '943 476 5919' "
	    "--purpose child_protection --case C-1 --practitioner 'DC Jones' "
	    "--json --server %s --cert %s/pki/police.crt --key %s/pki/police.key "
	    "--ca %s/pki/ca.crt 2>&1", SAFESHARE_BIN, d.server, d.dir, d.dir,
	    d.dir);
	cr_expect_eq(h_run(cmd, &out), 0, "%s", out);
	cr_expect(strstr(out, "\"holder\":\"health_trust\"") != NULL, "%s", out);
	free(out);
	/* D7: the locate is logged (an entry per holding it names). */
	cr_expect_geq(h_log_count(&d, "kind = 'locate' AND agency = 'police'"), 1);
}

/* Ends every server process of this daemon's connections (not the fixture's). */
static void
terminate_daemon_backends(void)
{
	char	sql[256];

	snprintf(sql, sizeof(sql), "SELECT count(pg_terminate_backend(pid, 5000)) "
	    "FROM pg_stat_activity WHERE application_name = '%s'", d.pg_schema);
	h_pg_int(&d, sql);
}

/*
 * GET /healthz over raw TLS: the status, and the Health message's
 * audit_error into why.
 */
static int
health(char *why, size_t len)
{
	static const char	 rq[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n"
				    "Connection: close\r\n\r\n";
	char			 out[4096], *body;
	Safeshare__V1__Health	*h;
	char			 crt[600], key[600];
	int			 n, status = 0;

	snprintf(crt, sizeof(crt), "%s/pki/police.crt", d.dir);
	snprintf(key, sizeof(key), "%s/pki/police.key", d.dir);
	why[0] = '\0';
	n = h_tls_exchange(&d, crt, key, rq, sizeof(rq) - 1, out, sizeof(out));
	cr_assert_gt(n, 12, "no reply from /healthz");
	sscanf(out, "HTTP/1.1 %d", &status);
	cr_assert_not_null(body = strstr(out, "\r\n\r\n"));
	body += 4;
	h = safeshare__v1__health__unpack(NULL, (size_t)(out + n - body),
	    (const uint8_t *)body);
	cr_assert_not_null(h, "not a Health message");
	snprintf(why, len, "%s", h->audit_error);
	safeshare__v1__health__free_unpacked(h, NULL);
	return status;
}

/* Polls /healthz (bounded: 15 s) until it answers want; returns the last status. */
static int
health_becomes(int want, char *why, size_t len)
{
	struct timespec	 tick = { 0, 100 * 1000 * 1000 };
	int		 st = 0;

	for (int i = 0; i < 150 && (st = health(why, len)) != want; i++)
		nanosleep(&tick, NULL);
	return st;
}

/* Disclosure requests as police about S1001: how many got 200; the rest must be 503. */
static int
ask_503_or_200(int n, int *n503)
{
	struct h_ask				 a = { "S1001", "child_protection",
						    "person", 0, NULL, NULL, NULL };
	Safeshare__V1__DisclosureResponse	*r;
	Safeshare__V1__Error			*e;
	int					 status, ok = 0;

	for (int i = 0; i < n; i++) {
		e = NULL;
		r = h_ask(&d, "police", &a, &status, &e);
		cr_expect(status == 200 || status == 503, "status %d", status);
		if (status == 200)
			ok++;
		else {
			(*n503)++;
			cr_expect(r == NULL || r->n_released == 0, "nothing released");
			cr_expect(e != NULL && (strcmp(e->code, "store_unavailable") == 0 ||
			    strcmp(e->code, "audit_unavailable") == 0), "%s",
			    e != NULL ? e->code : "no error");
		}
		if (r != NULL)
			safeshare__v1__disclosure_response__free_unpacked(r, NULL);
		if (e != NULL)
			safeshare__v1__error__free_unpacked(e, NULL);
	}
	return ok;
}

/*
 * Restarts the suite's daemon with its connection string through a new
 * forwarder (pgproxy.c) to its database, so that the database can go
 * away for this daemon alone; the forwarder is the caller's to stop.
 */
static struct pgproxy *
restart_behind_proxy(void)
{
	struct pgproxy	*px;
	char		 from[32], to[32], *at;

	cr_assert_eq(h_stop(&d), 0);
	px = pgproxy_start(atoi(d.pg_port));
	snprintf(from, sizeof(from), "port='%s'", d.pg_port);
	snprintf(to, sizeof(to), "port='%d'", pgproxy_port(px));
	cr_assert_not_null(at = strstr(d.pg_conninfo, from));
	cr_assert_eq(strlen(from), strlen(to), "a port of another length");
	memcpy(at, to, strlen(to));
	h_write_config(&d, d.audit);
	h_start(&d);
	return px;
}

/*
 * Issue 19 item 3, faults. The daemon reaches PostgreSQL through a
 * forwarder (pgproxy.c), so that its database can go away for it alone:
 * the suites sharing the fixture's cluster are not disturbed. First its
 * server processes are terminated (the sessions end under it); then the
 * forwarder goes down (sessions cut, reconnects refused). Every request
 * that needs the store or the log gets 503 and nothing is released;
 * /healthz says why in one line without the password; when the database
 * is back the same process serves again, and exactly what was
 * acknowledged is in the log, which verifies.
 */
Test(pg, an_unreachable_database_is_503_until_it_is_back)
{
	struct h_ask				 norule = { "S1001",
						    "child_protection", "person", 0,
						    NULL, NULL, NULL };
	Safeshare__V1__DisclosureResponse	*r;
	Safeshare__V1__Error			*e = NULL;
	struct pgproxy				*px;
	char					 why[512];
	char					 pass[256], *out;
	FILE					*fp;
	int					 status, acked = 0, n503 = 0;
	pid_t					 pid;

	px = restart_behind_proxy();
	pid = d.pid;
	acked += ask_503_or_200(1, &n503);
	cr_assert_eq(acked, 1);

	/* Its sessions ended under it: at most the first request fails. */
	terminate_daemon_backends();
	acked += ask_503_or_200(3, &n503);
	cr_expect_geq(acked, 3, "the daemon reconnected");

	/* The database gone: refused, until it is back. */
	pgproxy_down(px);
	n503 = 0;
	acked += ask_503_or_200(3, &n503);
	cr_expect_eq(n503, 3, "a disclosure while the database is away");
	/* A refusal (no rule) is logged too: with no log, no answer (D7). */
	r = h_ask(&d, "health_trust", &norule, &status, &e);
	cr_expect_eq(status, 503);
	cr_expect(e != NULL && (strcmp(e->code, "audit_unavailable") == 0 ||
	    strcmp(e->code, "store_unavailable") == 0), "%s",
	    e != NULL ? e->code : "no error");
	if (r != NULL)
		safeshare__v1__disclosure_response__free_unpacked(r, NULL);
	if (e != NULL)
		safeshare__v1__error__free_unpacked(e, NULL);
	cr_expect_eq(health_becomes(503, why, sizeof(why)), 503);
	cr_expect_neq(why[0], '\0', "/healthz says why");
	cr_expect(strchr(why, '\n') == NULL && strchr(why, '\r') == NULL,
	    "one line: %s", why);
	cr_assert_not_null(fp = fopen(d.pg_passfile, "r"));
	cr_assert_not_null(fgets(pass, sizeof(pass), fp));
	fclose(fp);
	pass[strcspn(pass, "\n")] = '\0';
	cr_expect(strstr(why, strrchr(pass, ':') + 1) == NULL,
	    "the password in /healthz: %s", why);

	/* Back: the same process serves again, no restart. */
	pgproxy_up(px);
	cr_expect_eq(health_becomes(200, why, sizeof(why)), 200, "still: %s", why);
	acked += ask_503_or_200(1, &n503);
	cr_expect_eq(kill(pid, 0), 0);
	cr_expect_eq(d.pid, pid);
	/* What was acknowledged is logged, what was refused is not (D7). */
	cr_expect_eq(h_log_count(&d, "agency = 'police' AND subject = 'S1001' "
	    "AND decision = 'allow'"), acked);
	cr_expect_eq(h_log_count(&d, "agency = 'health_trust'"), 0);
	cr_expect_eq(verify(&out), 0, "%s", out);
	free(out);
	h_stop(&d);
	pgproxy_stop(px);
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * Issue 19 item 3: a database host that accepts connections and never
 * answers (the forwarder hangs). Each reconnect would wait libpq's
 * connect_timeout (the fixture's connection string sets 10 s), and the
 * event loop's store reads are among those reconnects: every request, and
 * /healthz, stalled behind it. Now the loop's store waits at most 500 ms
 * for a reconnect, tries at most once a second, and fails at once in
 * between: eight disclosures are all 503 within a few seconds, /healthz
 * answers meanwhile, and when the host answers again the same daemon
 * serves.
 */
Test(pg, a_database_that_never_answers_does_not_stall_the_loop,
    .timeout = 120)
{
	struct pgproxy	*px;
	char		 why[512];
	double		 t0, took;
	int		 acked = 0, n503 = 0, st;

	px = restart_behind_proxy();
	acked += ask_503_or_200(1, &n503);
	cr_assert_eq(acked, 1);

	pgproxy_hang(px);
	t0 = now_s();
	acked += ask_503_or_200(8, &n503);
	st = health(why, sizeof(why));
	took = now_s() - t0;
	cr_expect_eq(n503, 8, "every disclosure 503 while the host hangs");
	cr_expect(st == 200 || st == 503, "/healthz answered %d", st);
	/* Under 9 s: one reconnect waiting libpq's 10 s stalled the loop. */
	cr_expect_lt(took, 9.0, "8 requests and /healthz took %.1f s: the loop "
	    "waited for the host", took);
	cr_log_info("8 disclosures and /healthz while the host hangs: %.2f s", took);

	pgproxy_up(px);
	cr_expect_eq(health_becomes(200, why, sizeof(why)), 200, "still: %s", why);
	n503 = 0;
	for (int i = 0; i < 30 && ask_503_or_200(1, &n503) == 0; i++)
		sleep(1);
	cr_expect_eq(h_log_count(&d, "agency = 'police' AND subject = 'S1001' "
	    "AND decision = 'allow'"), 2, "served again once the host answers");
	h_stop(&d);
	pgproxy_stop(px);
}

/*
 * The same host for the auditors' log reader, which also runs on the
 * event loop (the auditor, feed and proof routes): its reconnect waited
 * libpq's whole connect_timeout (10 s in the fixture's string) for each
 * query, and every other request waited behind it. Now it waits at most
 * 500 ms and tries at most once a second, as the loop's store does:
 * three auditor queries and /healthz are answered (503) within a few
 * seconds, and the reader serves again once the host answers.
 */
Test(pg, an_auditor_query_does_not_stall_the_loop_when_the_database_hangs,
    .timeout = 180)
{
	struct pgproxy	*px;
	char		 why[512], *out;
	double		 t0, took;
	int		 st, rc = 1;

	px = restart_behind_proxy();
	cr_assert_eq(h_cli(&d, "auditor", "audit query --subject S1001", &out), 0,
	    "%s", out);
	free(out);

	pgproxy_hang(px);
	t0 = now_s();
	for (int i = 0; i < 3; i++) {
		cr_expect_neq(h_cli(&d, "auditor", "audit query --subject S1001",
		    &out), 0, "a query answered while the host hangs: %s", out);
		free(out);
	}
	st = health(why, sizeof(why));
	took = now_s() - t0;
	cr_expect(st == 200 || st == 503, "/healthz answered %d", st);
	/* Under 9 s: one reconnect waiting libpq's 10 s stalled the loop. */
	cr_expect_lt(took, 9.0, "3 auditor queries and /healthz took %.1f s: the "
	    "loop waited for the host", took);
	cr_log_info("3 auditor queries and /healthz while the host hangs: %.2f s",
	    took);

	pgproxy_up(px);
	for (int i = 0; i < 30 && rc != 0; i++) {
		if ((rc = h_cli(&d, "auditor", "audit query --subject S1001",
		    &out)) != 0)
			sleep(1);
		free(out);
	}
	cr_expect_eq(rc, 0, "the reader serves again once the host answers");
	h_stop(&d);
	pgproxy_stop(px);
}

/*
 * Issue 13 item 5 on PostgreSQL: the store remembers its log (store_log),
 * so a restart finds the same log, and the log's tables dropped while the
 * daemon was stopped (a new, empty log at the next start) are refused
 * unless -N, which the new log then records.
 */
Test(pg, a_log_dropped_behind_the_stores_back_is_refused_at_start)
{
	char	cmd[2048], *out;

	cr_assert_eq(h_stop(&d), 0);
	h_start(&d);
	cr_assert_eq(h_stop(&d), 0);
	h_pg_run(&d, "DROP TABLE log_head, log_entries, log_tree, log_checkpoints");
	snprintf(cmd, sizeof(cmd), "timeout 20 %s -c %s 2>&1", SAFESHARED_BIN,
	    d.conf);
	cr_expect_eq(h_run(cmd, &out), 1, "%s", out);
	cr_expect(strstr(out, "the log was deleted, replaced or cut") != NULL,
	    "%s", out);
	free(out);
	d.new_log = 1;
	h_start(&d);
	cr_expect_eq(h_log_count(&d, "kind = 'new_log' AND reason = "
	    "'previous_log_missing'"), 1);
}

/*
 * D16 with several daemons: every daemon must sign with the key that
 * signed the log so far, or the log stops verifying at its next commit.
 * A daemon given another key is refused at start, and by -t.
 */
Test(pg, a_daemon_with_another_signing_key_is_refused)
{
	char	cmd[2048], *out;

	cr_assert_gt(h_pg_int(&d, "SELECT count(*) FROM log_checkpoints"), 0);
	cr_assert_eq(h_stop(&d), 0);
	snprintf(cmd, sizeof(cmd), "cd %s/pki && mv audit-signing.key other.key && "
	    "openssl genpkey -algorithm ed25519 -out audit-signing.key && "
	    "chmod 600 audit-signing.key", d.dir);
	cr_assert_eq(h_run(cmd, NULL), 0);
	snprintf(cmd, sizeof(cmd), "timeout 20 %s -c %s 2>&1", SAFESHARED_BIN,
	    d.conf);
	cr_expect_eq(h_run(cmd, &out), 1, "%s", out);
	cr_expect(strstr(out, "is not the key that signed the log's last "
	    "checkpoint") != NULL, "%s", out);
	free(out);
	snprintf(cmd, sizeof(cmd), "%s -t -c %s 2>&1", SAFESHARED_BIN, d.conf);
	cr_expect_eq(h_run(cmd, &out), 1, "%s", out);
	cr_expect(strstr(out, "is not the key that signed") != NULL, "%s", out);
	free(out);
}

/* A holder batch sent from a thread of its own: it blocks in the apply. */
struct held_batch {
	pthread_t	thread;
	int		status;
	char		err[256];
};

static void *
send_flag_batch(void *arg)
{
	static const char *const	 kv[] = { "op=flag", "subject=S-C1",
					    "flag=domestic_abuse", NULL };
	struct held_batch		*hb = arg;
	size_t				 nops;

	hb->status = h_hold(&d, "childrens_social_care", 0, kv, &nops, NULL, NULL,
	    hb->err, sizeof(hb->err));
	return NULL;
}

/*
 * Several daemons on one database (deploy-ha.md, "Holder batches with
 * several daemons"): a daemon starting while another is applying a holder
 * batch must not log that batch rolled_back as interrupted. The test holds
 * a lock that the first daemon's batch waits on in its apply, after it
 * was logged; a second daemon starts (and reconciles) on the same
 * database meanwhile; then the row is let go, the batch commits, and the
 * log shows it applied once and never rolled back.
 */
Test(pg, a_batch_another_daemon_is_applying_is_not_reconciled)
{
	struct timespec		 tick = { 0, 50 * 1000 * 1000 };
	struct held_batch	 hb = { .status = 0 };
	struct daemon		 d2;
	PGconn			*c;
	char			*out;
	long			 logged = 0;

	h_put_child(&d);
	/*
	 * Marking the batch applied (the apply's last write; the check, a
	 * transaction rolled back, never marks) waits on an advisory lock the
	 * test holds: a trigger, so nothing else in the database waits.
	 */
	c = t_pg_admin(d.pg_admin);
	t_pg_run(c, "CREATE FUNCTION test_hold() RETURNS trigger LANGUAGE plpgsql "
	    "AS $$ BEGIN PERFORM pg_advisory_xact_lock_shared(4242); RETURN NEW; "
	    "END $$");
	t_pg_run(c, "CREATE TRIGGER test_hold BEFORE INSERT ON holder_batches "
	    "FOR EACH ROW EXECUTE FUNCTION test_hold()");
	t_pg_run(c, "SELECT pg_advisory_lock(4242)");
	cr_assert_eq(pthread_create(&hb.thread, NULL, send_flag_batch, &hb), 0);
	/* Bounded: 10 s for the batch's entry to be logged. */
	for (int i = 0; i < 200 && (logged = h_log_count(&d, "kind = 'holder' "
	    "AND reason = 'flag' AND subject = 'S-C1'")) == 0; i++)
		nanosleep(&tick, NULL);
	cr_assert_eq(logged, 1, "the batch was not logged");
	cr_assert_eq(h_pg_int(&d, "SELECT count(*) FROM flags WHERE "
	    "subject = 'S-C1'"), 0, "the batch did not wait");

	/* A second daemon on the same database and config starts meanwhile. */
	d2 = d;
	snprintf(d2.log, sizeof(d2.log), "%s/safeshared2.log", d.dir);
	d2.port = 0;
	h_start(&d2);
	cr_expect_eq(h_stop(&d2), 0);
	cr_expect_eq(h_log_count(&d, "decision = 'rolled_back'"), 0,
	    "a batch another daemon was applying was marked interrupted");

	/* Let go: the first daemon's batch commits and is answered. */
	t_pg_run(c, "SELECT pg_advisory_unlock(4242)");
	PQfinish(c);
	cr_assert_eq(pthread_join(hb.thread, NULL), 0);
	cr_expect_eq(hb.status, 200, "%s", hb.err);
	cr_expect_eq(h_pg_int(&d, "SELECT count(*) FROM flags WHERE "
	    "subject = 'S-C1'"), 1);
	cr_expect_eq(h_log_count(&d, "kind = 'holder' AND reason = 'flag' AND "
	    "subject = 'S-C1'"), 1);
	cr_expect_eq(h_log_count(&d, "decision = 'rolled_back'"), 0);
	/* A start after it, with nothing in progress, marks nothing either. */
	d2.port = 0;
	h_start(&d2);
	cr_expect_eq(h_stop(&d2), 0);
	cr_expect_eq(h_log_count(&d, "decision = 'rolled_back'"), 0);
	cr_expect_eq(verify(&out), 0, "%s", out);
	free(out);
}

/*
 * Issue 19 item 2 (a): a daemon applies a batch that another daemon's
 * start has meanwhile logged rolled_back (its session, and so its batch
 * lock, lost between logging the batch and applying it). The start claims
 * the batch in holder_batches before it logs; here the test makes that
 * claim while the daemon's apply waits in its mark (the trigger above).
 * The apply then finds the row taken: it rolls back, answers 409
 * rolled_back and owes the log nothing, so the log, which says rolled
 * back, says what the store holds. Before, the mark failed on the
 * duplicate key: a 503 and a second rolled_back entry, the daemon's own.
 */
Test(pg, a_batch_claimed_as_rolled_back_is_not_applied)
{
	struct timespec		 tick = { 0, 50 * 1000 * 1000 };
	struct held_batch	 hb = { .status = 0 };
	PGconn			*c;
	char			 sql[256], *rid, *out;
	long			 logged = 0;

	h_put_child(&d);
	c = t_pg_admin(d.pg_admin);
	t_pg_run(c, "CREATE FUNCTION test_hold() RETURNS trigger LANGUAGE plpgsql "
	    "AS $$ BEGIN PERFORM pg_advisory_xact_lock_shared(4243); RETURN NEW; "
	    "END $$");
	t_pg_run(c, "CREATE TRIGGER test_hold BEFORE INSERT ON holder_batches "
	    "FOR EACH ROW EXECUTE FUNCTION test_hold()");
	t_pg_run(c, "SELECT pg_advisory_lock(4243)");
	cr_assert_eq(pthread_create(&hb.thread, NULL, send_flag_batch, &hb), 0);
	for (int i = 0; i < 200 && (logged = h_log_count(&d, "kind = 'holder' "
	    "AND reason = 'flag' AND subject = 'S-C1'")) == 0; i++)
		nanosleep(&tick, NULL);
	cr_assert_eq(logged, 1, "the batch was not logged");
	/* Bounded: 10 s for the apply to reach its mark and wait there. */
	for (int i = 0; i < 200 && h_pg_int(&d, "SELECT count(*) FROM "
	    "pg_locks WHERE locktype = 'advisory' AND objid = 4243 AND "
	    "NOT granted") == 0; i++)
		nanosleep(&tick, NULL);
	rid = h_store_value(&d, "SELECT min(request_id) FROM log_entries WHERE "
	    "kind = 'holder' AND reason = 'flag' AND subject = 'S-C1'");
	cr_assert_not_null(rid);
	/* What a start's reconciliation claims (storage_batch_claim()). */
	snprintf(sql, sizeof(sql), "INSERT INTO holder_batches (request_id, "
	    "first_seq, applied_at) VALUES ('%s', 1, -1)", rid);
	t_pg_run(c, sql);
	free(rid);
	t_pg_run(c, "SELECT pg_advisory_unlock(4243)");
	PQfinish(c);
	cr_assert_eq(pthread_join(hb.thread, NULL), 0);
	cr_expect_eq(hb.status, 409, "%s", hb.err);
	cr_expect_eq(h_pg_int(&d, "SELECT count(*) FROM flags WHERE "
	    "subject = 'S-C1'"), 0, "applied after it was claimed rolled back");
	h_stop(&d);
	cr_expect_eq(h_log_count(&d, "decision = 'rolled_back'"), 0,
	    "the applying daemon logged a rolled_back of its own");
	cr_expect_eq(verify(&out), 0, "%s", out);
	free(out);
}

/*
 * safeshare admin reload while the database is away: the reload cannot be
 * logged, so it does not happen, and the answer is 503 audit_unavailable
 * like every other route's (it was a 200 ReloadResult with ok=false);
 * once the database is back the same daemon reloads and logs it.
 */
Test(pg, a_reload_with_the_database_away_is_503)
{
	struct pgproxy	*px;
	char		 why[512], *out;
	long		 reloads;

	px = restart_behind_proxy();
	reloads = h_log_count(&d, "kind = 'reload'");

	pgproxy_down(px);
	cr_expect_eq(health_becomes(503, why, sizeof(why)), 503);
	cr_expect_eq(h_cli(&d, "admin", "admin reload", &out), 4, "%s", out);
	cr_expect(strstr(out, "HTTP 503") != NULL &&
	    strstr(out, "audit_unavailable") != NULL, "%s", out);
	free(out);

	pgproxy_up(px);
	cr_expect_eq(health_becomes(200, why, sizeof(why)), 200, "still: %s", why);
	cr_expect_eq(h_cli(&d, "admin", "admin reload", &out), 0, "%s", out);
	free(out);
	cr_expect_eq(h_log_count(&d, "kind = 'reload'"), reloads + 1);
	h_stop(&d);
	pgproxy_stop(px);
}
