/*
 * Two daemons on one PostgreSQL, one killed with -9 under load while the
 * other keeps serving (issue 19, Faults; docs/deploy-ha.md). Both run the
 * same config (the port is 0: each gets its own) with the same signing
 * key, on one database of the fixture's cluster (a schema of its own).
 * Each round forks PG_CLIENTS requesting clients per daemon
 * (crash_client.c; bounded by MAX_REQUESTS and PG_SECONDS), kills one
 * daemon 300-1500 ms (at random) after the first answer, and starts it
 * again once the clients are done; the rounds take turns at which daemon
 * dies. After each round, and after a clean stop of both at the end:
 *
 * - the survivor kept serving: each of its clients was answered after the
 *   kill, and none lost its connection or got an unexpected answer;
 * - every disclosure id a client was given (the log's seq) is in the one
 *   log, with the decision, reason and request id of its reply (D7),
 *   whichever daemon wrote it;
 * - seq runs 1..N without a gap, no request is logged twice, and at most
 *   one unacknowledged entry per client of the killed daemon (in flight);
 * - `safeshare audit verify --postgresql` verifies the chain, every
 *   checkpoint's signature and the head row;
 * - the restarted daemon appends on the same chain: its next disclosure
 *   is seq N+1, and the survivor's after it N+2.
 *
 * SAFESHARE_CRASH_SEED=N replays the kill delays. Without PostgreSQL the
 * test skips (a failure under CI=true), as the other PostgreSQL suites.
 */
#include <sys/prctl.h>
#include <sys/wait.h>

#include <criterion/criterion.h>
#include <libpq-fe.h>

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "crash.h"
#include "t_pg.h"

enum {
	PG_ROUNDS = 2,
	PG_CLIENTS = 8,		/* per daemon */
	PG_SECONDS = 8,		/* per client and round, and its reply timeout */
	PG_KILL_MIN_MS = 300,
	PG_KILL_MAX_MS = 1500,
};

/* The two daemons: one directory, one config, one PKI, one signing key. */
static struct daemon pd[2];
/* The test's own connection to their schema (pd[0].pg_admin), for the checks. */
static PGconn *pg;

/* What the checks counted, for the summary line. */
static long total_acked, total_after_kill;
static long long unanswered;	/* logged, but in flight at a kill */

static void
setup(void)
{
	/* The harness's PostgreSQL side, whatever the environment says. */
	setenv("SAFESHARE_TEST_STORAGE", "postgresql", 1);
	h_setup(&pd[0]);	/* a schema of its own (harness_pg.c), or a skip */
	/* Not under test here, and a fast machine could reach it. */
	snprintf(pd[0].extra, sizeof(pd[0].extra), "limits:\n  rate_per_agency: 0\n");
	h_write_config(&pd[0], pd[0].audit);
	h_load_demo(&pd[0]);
	pg = t_pg_admin(pd[0].pg_admin);
	pd[1] = pd[0];
	snprintf(pd[1].log, sizeof(pd[1].log), "%s/daemon2.log", pd[0].dir);
	h_start(&pd[0]);
	h_start(&pd[1]);
}

static void
teardown(void)
{
	if (pd[1].pid > 0)
		h_stop(&pd[1]);
	if (pg != NULL)
		PQfinish(pg);
	h_cleanup(&pd[0]);	/* the directory and the database both share */
}

TestSuite(crash_pg, .init = setup, .fini = teardown, .timeout = 240);

static void
acks_path(char *buf, size_t len, int round, int daemon, int client)
{
	snprintf(buf, len, "%s/pg-r%d-d%d-c%02d.acks", pd[0].dir, round, daemon,
	    client);
}

/* Forks client k of daemon i: it asks as requesters[k % NREQUESTERS]. */
static pid_t
spawn(int round, int i, int k, const int pipefd[2])
{
	char	 path[600], prefix[32];
	FILE	*out;
	pid_t	 pid;

	acks_path(path, sizeof(path), round, i, k);
	snprintf(prefix, sizeof(prefix), "crash-pg-r%d-d%d-c%02d", round, i, k);
	fflush(NULL);
	if ((pid = fork()) != 0)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	signal(SIGPIPE, SIG_IGN);
	close(pipefd[0]);
	crash_ready_fd = pipefd[1];
	if ((out = fopen(path, "w")) == NULL)
		_exit(1);
	crash_requester(&pd[i], &requesters[k % NREQUESTERS], prefix, PG_SECONDS, out);
	fclose(out);
	_exit(0);
}


/*
 * A client's file after the round: no "U" line at all; for the survivor's
 * clients no "E" line either (they must not lose their daemon) and an
 * answer after the kill at killed_ms. Returns the number of answers after
 * the kill.
 */
static long
check_client(int round, int i, int k, int survivor, long long killed_ms)
{
	char	 path[600], line[512];
	long	 after = 0;
	FILE	*fp;

	acks_path(path, sizeof(path), round, i, k);
	if ((fp = fopen(path, "r")) == NULL) {
		CHECK(0, "round %d: no file from client %d of daemon %d", round, k, i);
		return 0;
	}
	while (fgets(line, sizeof(line), fp) != NULL) {
		unsigned long long	 seq;
		long long		 ms;

		line[strcspn(line, "\n")] = '\0';
		if (line[0] == 'U')
			CHECK(0, "round %d, daemon %d, client %d: %s", round, i, k,
			    line + 2);
		else if (line[0] == 'E' && survivor)
			CHECK(0, "round %d: the surviving daemon %d lost client %d: %s",
			    round, i, k, line + 2);
		else if (sscanf(line, "D %llu %*s %*s %*s %lld", &seq, &ms) == 2 &&
		    ms > killed_ms)
			after++;
	}
	fclose(fp);
	if (survivor)
		CHECK(after > 0, "round %d: client %d of the surviving daemon %d was "
		    "not answered after the kill", round, k, i);
	return after;
}

/* The one value of a query on the test's connection. */
static long long
pg_int(const char *sql)
{
	return t_pg_int(pg, sql);
}

/* check_pg_log()'s look-up of each acknowledged disclosure in the log. */
struct pg_lookup {
	long	 missing, wrong;
	char	 first[512];
};

static void
pg_look_up(const struct crash_ack *a, void *arg)
{
	struct pg_lookup	*lk = arg;
	char			 seq[32];
	const char		*params[1] = { seq };
	PGresult		*res;

	snprintf(seq, sizeof(seq), "%llu", a->seq);
	res = PQexecParams(pg, "SELECT decision, reason, request_id FROM log_entries "
	    "WHERE seq = $1 AND kind = 'disclosure'", 1, NULL, params, NULL, NULL, 0);
	cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s",
	    PQresultErrorMessage(res));
	if (PQntuples(res) != 1) {
		lk->missing++;
		if (lk->first[0] == '\0')
			snprintf(lk->first, sizeof(lk->first), "entry %llu (%s) is not "
			    "in the log", a->seq, a->request_id);
	} else if (strcmp(PQgetvalue(res, 0, 0), a->decision) != 0 ||
	    strcmp(PQgetvalue(res, 0, 1), a->reason) != 0 ||
	    strcmp(PQgetvalue(res, 0, 2), a->request_id) != 0) {
		lk->wrong++;
		if (lk->first[0] == '\0')
			snprintf(lk->first, sizeof(lk->first), "entry %llu says "
			    "%s/%s/%s; the client was told %s/%s/%s", a->seq,
			    PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1),
			    PQgetvalue(res, 0, 2), a->decision, a->reason,
			    a->request_id);
	}
	PQclear(res);
}

/* safeshare audit verify --postgresql on the daemons' database. */
static void
check_verify(int last)
{
	char	 cmd[4096], *out;

	/* The daemons' own connection string: quoted values, no '"' or '$'. */
	snprintf(cmd, sizeof(cmd), "%s audit verify --postgresql \"%s\" --pubkey "
	    "%s/pki/audit-signing.pub 2>&1", SAFESHARE_BIN, pd[0].pg_conninfo,
	    pd[0].dir);
	CHECK(h_run(cmd, &out) == 0, "after round %d: audit verify: %s", last, out);
	free(out);
}

/*
 * The one log after rounds 0..last: seq 1..N with no gap, no request
 * logged twice, every acknowledged disclosure there as told, at most one
 * unacknowledged entry per killed client, and the chain verifies.
 */
static void
check_pg_log(int last)
{
	struct pg_lookup	 lk = { .first = "" };
	long long		 n, max, min, ours;
	long			 acked = 0;

	n = pg_int("SELECT count(*) FROM log_entries");
	max = pg_int("SELECT coalesce(max(seq), 0) FROM log_entries");
	min = pg_int("SELECT coalesce(min(seq), 1) FROM log_entries");
	CHECK(n == max && min == 1, "after round %d the log's seq has gaps: %lld "
	    "entries, seq %lld..%lld", last, n, min, max);
	CHECK(pg_int("SELECT count(*) FROM (SELECT request_id FROM log_entries "
	    "WHERE kind = 'disclosure' GROUP BY request_id HAVING count(*) > 1) "
	    "AS twice") == 0, "after round %d: a disclosure request was logged "
	    "twice", last);
	for (int r = 0; r <= last; r++)
		for (int i = 0; i < 2; i++)
			for (int k = 0; k < PG_CLIENTS; k++) {
				char path[600];

				acks_path(path, sizeof(path), r, i, k);
				acked += crash_each_ack(path, pg_look_up, &lk);
			}
	CHECK(lk.missing == 0 && lk.wrong == 0, "after round %d: %ld of %ld "
	    "acknowledged disclosures missing, %ld differ; first: %s", last,
	    lk.missing, acked, lk.wrong, lk.first);
	ours = pg_int("SELECT count(*) FROM log_entries WHERE kind = 'disclosure' "
	    "AND request_id LIKE 'crash-pg-%'");
	CHECK(ours >= acked && ours - acked <= (long long)(last + 1) * PG_CLIENTS,
	    "after round %d: %lld entries for %ld acknowledged disclosures", last,
	    ours, acked);
	unanswered = ours - acked;
	total_acked = acked;
	check_verify(last);
}

/*
 * One disclosure through daemon i, by itself: returns its disclosure id
 * (the log's seq).
 */
static unsigned long long
ask_one(int i, const char *rid)
{
	Safeshare__V1__DisclosureRequest	 q = SAFESHARE__V1__DISCLOSURE_REQUEST__INIT;
	Safeshare__V1__DisclosureResponse	*r = NULL;
	Safeshare__V1__Error			*e = NULL;
	struct ss_client			*c = h_client(&pd[i], "police");
	unsigned long long			 seq;
	char					 err[512];
	int					 status;

	q.subject_id = "S1001";
	q.purpose = "child_protection";
	q.record_type = "person";
	q.case_reference = "CRASH-9";
	q.practitioner = "Kim Crashtest";
	q.request_id = (char *)rid;
	cr_assert_eq(ss_disclose(c, &q, &r, &e, &status, err, sizeof(err)), 0,
	    "daemon %d: %s", i, err);
	cr_assert_eq(status, 200, "daemon %d: status %d (%s)", i, status,
	    e != NULL ? e->code : "");
	cr_assert_not_null(r);
	seq = r->disclosure_id;
	safeshare__v1__disclosure_response__free_unpacked(r, NULL);
	ss_client_free(c);
	return seq;
}

/*
 * The restarted daemon and the survivor append on the same chain: with
 * nothing else running, the next two disclosures, one through each, are
 * the log's next two entries, and the log still verifies.
 */
static void
check_same_chain(int round, int restarted)
{
	char			 rid[33];
	long long		 size = pg_int("SELECT coalesce(max(seq), 0) FROM "
				    "log_entries");
	unsigned long long	 a, b;

	snprintf(rid, sizeof(rid), "after-r%d-d%d", round, restarted);
	a = ask_one(restarted, rid);
	snprintf(rid, sizeof(rid), "after-r%d-d%d", round, !restarted);
	b = ask_one(!restarted, rid);
	CHECK(a == (unsigned long long)size + 1 && b == a + 1, "round %d: the log "
	    "had %lld entries; the restarted daemon %d's disclosure is %llu, the "
	    "other's %llu", round, size, restarted, a, b);
	CHECK(pg_int("SELECT count(*) FROM log_entries") == size + 2, "round %d: "
	    "the log does not end with the two disclosures", round);
	check_verify(round);
}

Test(crash_pg, two_daemons_one_killed_under_load_lose_nothing_acknowledged)
{
	struct timespec	 t0, t1;
	const char	*env = getenv("SAFESHARE_CRASH_SEED");
	unsigned	 seed = env ? (unsigned)strtoul(env, NULL, 10) :
			    (unsigned)time(NULL) ^ (unsigned)getpid();

	clock_gettime(CLOCK_MONOTONIC, &t0);
	fprintf(stderr, "crash_pg: seed %u (SAFESHARE_CRASH_SEED=%u replays the "
	    "kill timings)\n", seed, seed);
	srandom(seed);
	for (int round = 0; round < PG_ROUNDS; round++) {
		int		 victim = round % 2;
		pid_t		 kids[2 * PG_CLIENTS];
		long		 ms = PG_KILL_MIN_MS + random() %
				    (PG_KILL_MAX_MS - PG_KILL_MIN_MS + 1);
		struct timespec	 delay = { ms / 1000, (ms % 1000) * 1000 * 1000 };
		struct pollfd	 pfd;
		long long	 killed_ms;
		int		 st, pipefd[2];
		char		 c;

		cr_assert_eq(pipe(pipefd), 0);
		for (int i = 0; i < 2; i++)
			for (int k = 0; k < PG_CLIENTS; k++)
				cr_assert_gt(kids[i * PG_CLIENTS + k] = spawn(round, i, k,
				    pipefd), 0);
		close(pipefd[1]);
		/* The delay runs from the first answer (bounded), so that load flows. */
		pfd.fd = pipefd[0];
		pfd.events = POLLIN;
		cr_assert(poll(&pfd, 1, 5000) == 1 && read(pipefd[0], &c, 1) == 1,
		    "round %d: no client was answered in 5 s; see %s and %s", round,
		    pd[0].log, pd[1].log);
		nanosleep(&delay, NULL);
		kill(pd[victim].pid, SIGKILL);
		killed_ms = crash_now_ms();
		close(pipefd[0]);
		cr_assert_eq(waitpid(pd[victim].pid, &st, 0), pd[victim].pid);
		pd[victim].pid = 0;
		cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "round %d: daemon "
		    "%d ended by itself before the kill (status %d); see %s", round,
		    victim, st, pd[victim].log);
		crash_reap(kids, NITEMS(kids), round, PG_SECONDS);
		for (int i = 0; i < 2; i++)
			for (int k = 0; k < PG_CLIENTS; k++) {
				long after = check_client(round, i, k, i != victim,
				    killed_ms);

				if (i != victim)
					total_after_kill += after;
			}
		h_start(&pd[victim]);
		check_pg_log(round);
		check_same_chain(round, victim);
		if (crash_problems > 0)
			cr_assert_fail("stopped after round %d (seed %u); "
			    "SAFESHARE_KEEP_TEST_DIR=1 keeps %s with the daemons' logs "
			    "and the clients' acknowledgements", round, seed, pd[0].dir);
	}
	/* And once more after a clean stop of both, with nothing running. */
	cr_expect_eq(h_stop(&pd[0]), 0, "see %s", pd[0].log);
	cr_expect_eq(h_stop(&pd[1]), 0, "see %s", pd[1].log);
	check_pg_log(PG_ROUNDS - 1);
	cr_expect_gt(total_acked, 0, "no client got a disclosure");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	fprintf(stderr, "crash_pg: %d kills of one of two daemons: %ld disclosures "
	    "acknowledged, all in the one log (%ld of them by the survivor after a "
	    "kill); unanswered but logged: %lld; %lld entries, verified; %.1f s\n",
	    PG_ROUNDS, total_acked, total_after_kill, unanswered,
	    pg_int("SELECT count(*) FROM log_entries"),
	    (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
}
