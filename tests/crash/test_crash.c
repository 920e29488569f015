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

static const struct ask police_asks[] = {
	{ "S1001", "child_protection", "person", 0, NULL, 200, "allow", "released" },
	{ "S1004", "child_protection", "person", 0, NULL, 200, "partial",
	    "partially_released" },
	{ "S1002", "adult_safeguarding", "person", 0, NULL, 200, "deny", "no_rule" },
	{ "S-NOBODY", "child_protection", "person", 0, NULL, 404, "deny",
	    "unknown_subject" },
	{ "S1001", "child_protection", "concern", 1, NULL, 200, "consultation",
	    "consultation" },
};
static const struct ask health_asks[] = {
	{ "S1002", "adult_safeguarding", "person", 0, NULL, 200, "deny",
	    "consent_refused" },
	{ "S1002", "adult_safeguarding", "person", 0, "adult_serious_harm", 200,
	    "allow", "override" },
};
static const struct ask housing_asks[] = {
	{ "S1003", "housing_support", "person", 0, NULL, 200, "partial",
	    "partially_released" },
};

const struct requester requesters[NREQUESTERS] = {
	{ "police", police_asks, NITEMS(police_asks) },
	{ "health_trust", health_asks, NITEMS(health_asks) },
	{ "housing", housing_asks, NITEMS(housing_asks) },
};

struct writer writers[NWRITERS] = {
	{ "childrens_social_care", "csc", "S-L-csc", 0 },
	{ "health_trust", "ht", "S-L-ht", 0 },
};

static const char *const consent_states[] = { "granted", "refused", "withdrawn" };

struct daemon crash_d;

/* Checks failed so far: the rounds stop after the first round with one. */
int crash_problems;

/*
 * In a client: the write end of the pipe on which the first acknowledgement
 * of the round is announced, so that the kill lands while requests flow.
 */
static int ready_fd = -1;

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

/*
 * Client side. These run in forked processes: no Criterion assertions;
 * anything unexpected is written to the file as a "U" line, which fails
 * the test in the parent. An "E" line says why a client stopped (the kill,
 * normally): evidence when the test dir is kept, never checked.
 */

/* A client for agency on the current daemon; NULL (and a U line) on failure. */
static struct ss_client *
kid_client(const char *agency, FILE *out)
{
	struct ss_client_config	 cfg;
	struct ss_client	*c;
	char			 cert[512], key[512], ca[512], err[512];

	snprintf(cert, sizeof(cert), "%s/pki/%s.crt", crash_d.dir, agency);
	snprintf(key, sizeof(key), "%s/pki/%s.key", crash_d.dir, agency);
	snprintf(ca, sizeof(ca), "%s/pki/ca.crt", crash_d.dir);
	memset(&cfg, 0, sizeof(cfg));
	cfg.server = crash_d.server;
	cfg.cert = cert;
	cfg.key = key;
	cfg.ca = ca;
	cfg.timeout = CLIENT_SECONDS;
	if (ss_client_new(&c, &cfg, err, sizeof(err)) == -1) {
		fprintf(out, "U client for %s: %s\n", agency, err);
		return NULL;
	}
	return c;
}

/* Tells the parent, once, that this client has been answered. */
static void
announce(void)
{
	if (ready_fd != -1) {
		if (write(ready_fd, "a", 1) == -1) {
			/* The parent has stopped listening; nothing to do. */
		}
		close(ready_fd);
		ready_fd = -1;
	}
}

static int
out_of_time(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec - start->tv_sec >= CLIENT_SECONDS;
}

static const char *
decision_word(Safeshare__V1__Decision k)
{
	switch (k) {
	case SAFESHARE__V1__DECISION__DECISION_ALLOW:
		return "allow";
	case SAFESHARE__V1__DECISION__DECISION_PARTIAL:
		return "partial";
	case SAFESHARE__V1__DECISION__DECISION_DENY:
		return "deny";
	case SAFESHARE__V1__DECISION__DECISION_CONSULTATION:
		return "consultation";
	default:
		return "unspecified";
	}
}

/*
 * Asks in turn until the daemon goes away or the bounds are reached.
 * Writes "D seq decision reason request_id" for each reply: a refusal with
 * an Error (404 unknown_subject) counts as a deny.
 */
static void
kid_requester(const struct requester *rq, int round, int idx, FILE *out)
{
	struct ss_client	*c = kid_client(rq->agency, out);
	struct timespec		 start;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (int j = 0; c != NULL && j < MAX_REQUESTS && !out_of_time(&start); j++) {
		Safeshare__V1__DisclosureRequest	 q = SAFESHARE__V1__DISCLOSURE_REQUEST__INIT;
		Safeshare__V1__DisclosureResponse	*r;
		Safeshare__V1__Error			*e;
		const struct ask			*a = &rq->asks[(size_t)j % rq->nasks];
		const char				*decision = "", *reason = "";
		char					 rid[33], err[512];
		unsigned long long			 seq = 0;
		int					 status, ok;

		snprintf(rid, sizeof(rid), "crash-r%02d-c%d-%04d", round, idx, j);
		q.subject_id = (char *)a->subject;
		q.purpose = (char *)a->purpose;
		q.record_type = (char *)a->record_type;
		q.consultation = a->consultation;
		q.case_reference = "CRASH-9";
		q.practitioner = "Kim Crashtest";
		q.request_id = rid;
		if (a->override != NULL) {
			q.override_code = (char *)a->override;
			q.override_justification = "He has told staff he will harm a "
			    "named neighbour tonight.";
		}
		/* No reply: the daemon died; this request was never acknowledged. */
		if (ss_disclose(c, &q, &r, &e, &status, err, sizeof(err)) == -1) {
			fprintf(out, "E %s\n", err);
			break;
		}
		if (r != NULL) {
			seq = r->disclosure_id;
			decision = decision_word(r->decision);
			reason = r->reason;
		} else if (e != NULL) {
			seq = e->disclosure_id;
			decision = "deny";
			reason = e->code;
		}
		ok = status == a->status && seq > 0 && strcmp(decision, a->decision) == 0 &&
		    strcmp(reason, a->reason) == 0;
		if (ok)
			fprintf(out, "D %llu %s %s %s\n", seq, decision, reason, rid);
		else
			fprintf(out, "U %s asking about %s for %s: status %d, %s/%s, id %llu "
			    "(expected %d, %s/%s)\n", rq->agency, a->subject, a->purpose,
			    status, decision, reason, seq, a->status, a->decision, a->reason);
		fflush(out);
		if (ok)
			announce();
		if (r != NULL)
			safeshare__v1__disclosure_response__free_unpacked(r, NULL);
		if (e != NULL)
			safeshare__v1__error__free_unpacked(e, NULL);
		if (!ok)
			break;
	}
	if (c != NULL)
		ss_client_free(c);
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
	struct ss_client	*c = kid_client(w->agency, out);
	struct timespec		 start;
	int			 flagged = w->flagged;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (int j = 0; c != NULL && j < MAX_REQUESTS && !out_of_time(&start); j++) {
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
		announce();
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
	ready_fd = pipefd[1];
	if ((out = fopen(path, "w")) == NULL)
		_exit(1);
	if (idx < NITEMS(requesters))
		kid_requester(&requesters[idx], round, (int)idx, out);
	else
		kid_writer(&writers[idx - NITEMS(requesters)], round, out);
	fclose(out);
	_exit(0);
}

/* Waits for the clients, bounded: a client still there after 3 bounds is a failure. */
static void
reap(pid_t *kids, size_t n, int round)
{
	struct timespec	 tick = { 0, 10 * 1000 * 1000 };
	size_t		 left = n;

	for (int i = 0; i < 300 * CLIENT_SECONDS && left > 0; i++) {
		for (size_t k = 0; k < n; k++) {
			int st;

			if (kids[k] > 0 && waitpid(kids[k], &st, WNOHANG) == kids[k]) {
				CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
				    "round %d: client %zu ended with status %d", round, k, st);
				kids[k] = 0;
				left--;
			}
		}
		if (left > 0)
			nanosleep(&tick, NULL);
	}
	for (size_t k = 0; k < n; k++)
		if (kids[k] > 0) {
			kill(kids[k], SIGKILL);
			waitpid(kids[k], NULL, 0);
			CHECK(0, "round %d: client %zu did not stop after the kill",
			    round, k);
		}
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
		reap(kids, NCLIENTS, round);
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
