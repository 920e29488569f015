/*
 * kill -9 under load, twenty times (issue 8, Faults). Each round starts the
 * daemon, lets forked clients ask for disclosures and write as data
 * holders, kills the daemon 50-300 ms (at random) after the first answer
 * and starts it again. A client writes down only what the daemon
 * acknowledged. After each restart, and again after a clean stop at the
 * end, everything acknowledged must still be there:
 *
 * - every disclosure id a client was given is in the log, with the
 *   decision, reason and request id of its reply (D7);
 * - the log's sequence numbers run 1..N without a gap, nothing is logged
 *   twice, and the chain and its signed checkpoints verify offline;
 * - every acknowledged holder write is in the store: new subjects with the
 *   whole of their all-or-nothing batch, each consent decision once and in
 *   the order written, the flag in the state last acknowledged;
 * - every holder change in the store is in the log too;
 * - both SQLite files pass PRAGMA integrity_check.
 *
 * The kill delays come from a seed printed at the start;
 * SAFESHARE_CRASH_SEED=N replays them. This file runs the clients, the
 * kills and the rounds; crash_check.c reads the databases and checks them
 * (crash.h is what the two share).
 */
#include <sys/prctl.h>
#include <sys/wait.h>

#include <criterion/criterion.h>
#include <sqlite3.h>

#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "crash.h"
#include "import.h"

struct writer writers[NWRITERS] = {
	{ "childrens_social_care", "csc", "S-L-csc", 0 },
	{ "health_trust", "ht", "S-L-ht", 0 },
};

static const char *const consent_states[] = { "granted", "refused", "withdrawn" };

struct daemon crash_d;

long crash_total_disclosures, crash_total_writes;
long long crash_unanswered_disclosures, crash_unanswered_subjects;
long long crash_unapplied;

static void
setup(void)
{
	h_setup(&crash_d);
	/* Not under test here, and a fast machine could reach it. */
	snprintf(crash_d.extra, sizeof(crash_d.extra), "limits:\n  rate_per_agency: 0\n");
	h_write_config(&crash_d, crash_d.audit);
	h_load_demo(&crash_d);
	h_start(&crash_d);
}

static void
teardown(void)
{
	h_cleanup(&crash_d);
}

TestSuite(crash, .init = setup, .fini = teardown, .timeout = 240);

/* A round's file of acknowledgements for one client. */
void
crash_acks_path(char *buf, size_t len, int round, const char *name)
{
	snprintf(buf, len, "%s/r%02d-%s.acks", crash_d.dir, round, name);
}

/* YYYY-MM-DD for day n after EXPIRY_BASE, and its Unix time. */
long long
crash_expiry(long n, char *buf, size_t len)
{
	time_t		 t = (time_t)(EXPIRY_BASE + n * 86400LL);
	struct tm	 tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%d", &tm);
	return (long long)t;
}

/* Appends an op of kind ("put_record", "consent", ...) about subject to im. */
static Safeshare__V1__HolderOp *
add_op(struct import *im, const char *kind, const char *subject)
{
	Safeshare__V1__HolderOp *op = import_new_op(im, im->nops + 1);

	import_set_key(im, op, op->line, "op", kind);
	import_set_key(im, op, op->line, "subject", subject);
	return op;
}

/*
 * POSTs im's ops to /v1/holder/ops. Returns the HTTP status (the Error's
 * code into code), 0 if a 200 did not apply every op, or -1 without a reply.
 */
static int
send_ops(struct ss_client *c, const struct import *im, char *code, size_t len)
{
	Safeshare__V1__HolderRequest	 rq = SAFESHARE__V1__HOLDER_REQUEST__INIT;
	Safeshare__V1__HolderResult	*res = NULL;
	Safeshare__V1__Error		*e = NULL;
	char				 err[512];
	int				 status;

	rq.ops = im->ops;
	rq.n_ops = im->nops;
	if (ss_call_message(c, "/v1/holder/ops", &rq.base,
	    &safeshare__v1__holder_result__descriptor, (ProtobufCMessage **)&res, &e,
	    &status, err, sizeof(err)) == -1) {
		snprintf(code, len, "%.60s", err);	/* a short reason is enough */
		return -1;
	}
	snprintf(code, len, "%s", e != NULL ? e->code : "");
	if (status == 200 && (res == NULL || res->applied != im->nops)) {
		snprintf(code, len, "applied %u of %zu ops", res ? res->applied : 0,
		    im->nops);
		status = 0;
	}
	protobuf_c_message_free_unpacked((ProtobufCMessage *)res, NULL);
	if (e != NULL)
		safeshare__v1__error__free_unpacked(e, NULL);
	return status;
}

/*
 * Writes in turn until the daemon goes away or the bounds are reached.
 * Acknowledged writes are recorded as
 *	P subject holder		a new subject's batch
 *	C subject state expires_at	a consent decision on the long-lived subject
 *	F 0|1				the flag cleared or set
 * and "f 0|1" is written before a flag change is sent, so that the parent
 * knows which change may have been in flight at the kill.
 */
static void
kid_writer(const struct writer *w, int round, FILE *out)
{
	struct ss_client	*c = crash_client(&crash_d, w->agency, CLIENT_SECONDS, out);
	long long		 end = crash_now_ms() + CLIENT_SECONDS * 1000LL;
	int			 flagged = w->flagged;

	for (int j = 0; c != NULL && j < MAX_REQUESTS && crash_now_ms() < end; j++) {
		struct import		 im = { .name = "crash" };
		Safeshare__V1__HolderOp	*op;
		char			 subject[64], date[16], ack[160], code[64];
		const char		*state;
		long			 n;
		int			 status;

		switch (j % 3) {
		case 0:
			snprintf(subject, sizeof(subject), "S-N-%s-r%02d-%04d", w->tag,
			    round, j);
			op = add_op(&im, "put_record", subject);
			import_set_key(&im, op, op->line, "record_type", "person");
			import_add_field(op, "full_name", "Casey Crashtest");
			import_add_field(op, "postcode", "EX1 1AA");
			op = add_op(&im, "consent", subject);
			import_set_key(&im, op, op->line, "consent", "granted");
			import_set_key(&im, op, op->line, "agencies", "police");
			import_set_key(&im, op, op->line, "purposes", "child_protection");
			crash_expiry(365, date, sizeof(date));
			import_set_key(&im, op, op->line, "expires", date);
			op = add_op(&im, "flag", subject);
			import_set_key(&im, op, op->line, "flag", "hate_crime");
			snprintf(ack, sizeof(ack), "P %s %s", subject, w->agency);
			break;
		case 1:
			state = consent_states[(j / 3) % (int)NITEMS(consent_states)];
			n = (long)round * MAX_REQUESTS + j;
			op = add_op(&im, "consent", w->subject);
			import_set_key(&im, op, op->line, "consent", state);
			snprintf(ack, sizeof(ack), "C %s %s %lld", w->subject, state,
			    crash_expiry(n, date, sizeof(date)));
			import_set_key(&im, op, op->line, "expires", date);
			break;
		default:
			op = add_op(&im, flagged ? "unflag" : "flag", w->subject);
			import_set_key(&im, op, op->line, "flag", "domestic_abuse");
			snprintf(ack, sizeof(ack), "F %d", !flagged);
			fprintf(out, "f %d\n", !flagged);
			fflush(out);
			break;
		}
		status = send_ops(c, &im, code, sizeof(code));
		import_free(&im);
		if (status == -1) {
			fprintf(out, "E %s\n", code);
			break;
		}
		if (status != 200) {
			fprintf(out, "U %s writing \"%s\": status %d %s\n", w->agency, ack,
			    status, code);
			fflush(out);
			break;
		}
		fprintf(out, "%s\n", ack);
		fflush(out);
		crash_announce();
		if (j % 3 == 2)
			flagged = !flagged;
	}
	if (c != NULL)
		ss_client_free(c);
}

/*
 * Forks a client that records its acknowledgements in its round file and
 * announces the first on the pipe.
 */
static pid_t
spawn(int round, size_t idx, const int pipefd[2])
{
	char	 path[600];
	FILE	*out;
	pid_t	 pid;

	crash_acks_path(path, sizeof(path), round, idx < NITEMS(requesters) ?
	    requesters[idx].agency : writers[idx - NITEMS(requesters)].tag);
	fflush(NULL);
	if ((pid = fork()) != 0)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	signal(SIGPIPE, SIG_IGN);
	close(pipefd[0]);
	crash_ready_fd = pipefd[1];
	if ((out = fopen(path, "w")) == NULL)
		_exit(1);
	if (idx < NITEMS(requesters)) {
		char prefix[32];

		snprintf(prefix, sizeof(prefix), "crash-r%02d-c%zu", round, idx);
		crash_requester(&crash_d, &requesters[idx], prefix, CLIENT_SECONDS,
		    out);
	} else
		kid_writer(&writers[idx - NITEMS(requesters)], round, out);
	fclose(out);
	_exit(0);
}


/* The holders' long-lived subjects, written before any kill. */
static void
make_long_lived_subjects(void)
{
	for (size_t w = 0; w < NITEMS(writers); w++) {
		struct ss_client	*c = h_client(&crash_d, writers[w].agency);
		struct import		 im = { .name = "crash" };
		Safeshare__V1__HolderOp	*op = add_op(&im, "put_record", writers[w].subject);
		char			 code[64];

		import_set_key(&im, op, op->line, "record_type", "person");
		import_add_field(op, "full_name", "Lee Longstay");
		cr_assert_eq(send_ops(c, &im, code, sizeof(code)), 200, "%s", code);
		import_free(&im);
		ss_client_free(c);
	}
}

Test(crash, kill_minus_9_under_load_loses_nothing_acknowledged)
{
	struct timespec	 t0, t1;
	const char	*env = getenv("SAFESHARE_CRASH_SEED");
	unsigned	 seed = env ? (unsigned)strtoul(env, NULL, 10) :
			    (unsigned)time(NULL) ^ (unsigned)getpid();
	long		 delays = 0;
	int		 flowing = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	fprintf(stderr, "crash: seed %u (SAFESHARE_CRASH_SEED=%u replays the kill "
	    "timings)\n", seed, seed);
	srandom(seed);
	make_long_lived_subjects();
	for (int round = 0; round < ROUNDS; round++) {
		pid_t		 kids[NCLIENTS];
		long		 ms = KILL_MIN_MS + random() % (KILL_MAX_MS - KILL_MIN_MS + 1);
		struct timespec	 delay = { 0, ms * 1000 * 1000 };
		struct pollfd	 pfd;
		int		 st, pipefd[2];
		char		 c;

		cr_assert_eq(pipe(pipefd), 0);
		for (size_t k = 0; k < NCLIENTS; k++)
			cr_assert_gt(kids[k] = spawn(round, k, pipefd), 0);
		close(pipefd[1]);
		/* The delay runs from the first answer (bounded), so that load is flowing. */
		pfd.fd = pipefd[0];
		pfd.events = POLLIN;
		if (poll(&pfd, 1, 3000) == 1 && read(pipefd[0], &c, 1) == 1)
			flowing++;
		nanosleep(&delay, NULL);
		delays += ms;
		kill(crash_d.pid, SIGKILL);
		close(pipefd[0]);
		cr_assert_eq(waitpid(crash_d.pid, &st, 0), crash_d.pid);
		crash_d.pid = 0;
		cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "round %d: the daemon "
		    "ended by itself before the kill (status %d); see %s", round, st, crash_d.log);
		crash_reap(kids, NCLIENTS, round, CLIENT_SECONDS);
		h_start(&crash_d);
		check_unexpected(round);
		check_log(round);
		check_store(round);
		check_store_logged(round);
		check_flags(round);
		check_files(round);
		if (crash_problems > 0)
			cr_assert_fail("stopped after round %d (rounds count from 0; seed "
			    "%u); SAFESHARE_KEEP_TEST_DIR=1 keeps %s with the databases, "
			    "the daemon's log and the clients' acknowledgements", round,
			    seed, crash_d.dir);
	}
	/* And once more after a clean stop, with nothing running. */
	cr_expect_eq(h_stop(&crash_d), 0, "see %s", crash_d.log);
	check_log(ROUNDS - 1);
	check_store(ROUNDS - 1);
	check_store_logged(ROUNDS - 1);
	check_files(ROUNDS - 1);
	{
		sqlite3 *db = open_ro(crash_d.store);

		for (size_t w = 0; w < NITEMS(writers); w++)
			cr_expect_eq(q_int(db, "SELECT count(*) FROM flags WHERE subject = %Q "
			    "AND flag = 'domestic_abuse' AND removed_at IS NULL",
			    writers[w].subject), writers[w].flagged, "%s's flag changed "
			    "after the last restart", writers[w].subject);
		sqlite3_close(db);
	}
	cr_expect_gt(crash_total_disclosures, 0, "no client got a disclosure before a kill");
	cr_expect_gt(crash_total_writes, 0, "no holder write was acknowledged before a kill");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	fprintf(stderr, "crash: %d kills (%d under load, mean delay %ld ms): %ld "
	    "disclosures and %ld holder writes acknowledged, all present; unanswered "
	    "but done: %lld disclosures, %lld new subjects; holder batches logged, "
	    "crash_unapplied and unmarked: %lld; %.1f s\n", ROUNDS, flowing, delays / ROUNDS,
	    crash_total_disclosures, crash_total_writes, crash_unanswered_disclosures, crash_unanswered_subjects,
	    crash_unapplied, (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
}
