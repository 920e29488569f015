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
 * SAFESHARE_CRASH_SEED=N replays them.
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

#include "harness.h"
#include "import.h"

#define NITEMS(a)	(sizeof(a) / sizeof((a)[0]))

enum {
	ROUNDS = 20,
	MAX_REQUESTS = 2000,	/* per client and round */
	CLIENT_SECONDS = 5,	/* per client and round, and its reply timeout */
	KILL_MIN_MS = 50,
	KILL_MAX_MS = 300,
};

/* 2030-01-01T00:00:00Z: consent expiry dates count days from here. */
#define EXPIRY_BASE	1893456000LL

/* A disclosure request and the reply it must get (as the log names it). */
struct ask {
	const char	*subject, *purpose, *record_type;
	int		 consultation;
	const char	*override;
	int		 status;
	const char	*decision, *reason;
};

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

struct requester {
	const char		*agency;
	const struct ask	*asks;
	size_t			 nasks;
};

static const struct requester requesters[] = {
	{ "police", police_asks, NITEMS(police_asks) },
	{ "health_trust", health_asks, NITEMS(health_asks) },
	{ "housing", housing_asks, NITEMS(housing_asks) },
};

/*
 * A holder writing in turn: a new subject (record, consent and flag in one
 * request), a consent decision on its own long-lived subject, and setting
 * or clearing a flag on that subject.
 */
struct writer {
	const char	*agency;
	const char	*tag;		/* in its new subjects' ids and its file names */
	const char	*subject;	/* its long-lived subject */
	int		 flagged;	/* the flag's state found at the last restart */
};

static struct writer writers[] = {
	{ "childrens_social_care", "csc", "S-L-csc", 0 },
	{ "health_trust", "ht", "S-L-ht", 0 },
};

#define NCLIENTS	(NITEMS(requesters) + NITEMS(writers))

static const char *const consent_states[] = { "granted", "refused", "withdrawn" };

static struct daemon d;

/* Checks failed so far: the rounds stop after the first round with one. */
static int problems;

/* cr_expect, counted. */
#define CHECK(cond, ...)	do {					\
	if (!(cond)) {							\
		problems++;						\
		cr_expect_fail(__VA_ARGS__);				\
	}								\
} while (0)

/*
 * In a client: the write end of the pipe on which the first acknowledgement
 * of the round is announced, so that the kill lands while requests flow.
 */
static int ready_fd = -1;

/* Totals for the summary line; "unanswered" were in flight at a kill. */
static long total_disclosures, total_writes;
static long long unanswered_disclosures, unanswered_subjects;
/* Holder changes (new subjects, consent) logged but not in the store. */
static long long unapplied;

static void
setup(void)
{
	h_setup(&d);
	/* Not under test here, and a fast machine could reach it. */
	snprintf(d.extra, sizeof(d.extra), "limits:\n  rate_per_agency: 0\n");
	h_write_config(&d, d.audit);
	h_load_demo(&d);
	h_start(&d);
}

static void
teardown(void)
{
	h_cleanup(&d);
}

TestSuite(crash, .init = setup, .fini = teardown, .timeout = 240);

/* A round's file of acknowledgements for one client. */
static void
acks_path(char *buf, size_t len, int round, const char *name)
{
	snprintf(buf, len, "%s/r%02d-%s.acks", d.dir, round, name);
}

/* YYYY-MM-DD for day n after EXPIRY_BASE, and its Unix time. */
static long long
expiry(long n, char *buf, size_t len)
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

	snprintf(cert, sizeof(cert), "%s/pki/%s.crt", d.dir, agency);
	snprintf(key, sizeof(key), "%s/pki/%s.key", d.dir, agency);
	snprintf(ca, sizeof(ca), "%s/pki/ca.crt", d.dir);
	memset(&cfg, 0, sizeof(cfg));
	cfg.server = d.server;
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
			expiry(365, date, sizeof(date));
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
			    expiry(n, date, sizeof(date)));
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

	acks_path(path, sizeof(path), round, idx < NITEMS(requesters) ?
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

/* Parent side: reading the databases. */

static sqlite3 *
open_ro(const char *path)
{
	sqlite3 *db;

	cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK,
	    "%s: %s", path, sqlite3_errmsg(db));
	sqlite3_busy_timeout(db, 5000);
	return db;
}

/*
 * The first column of the first row of a query built with sqlite3_mprintf
 * (%Q quotes a string) as an integer, or as text into buf when buf is set.
 */
static long long
q_vrow(sqlite3 *db, char *buf, size_t len, const char *fmt, va_list ap)
{
	sqlite3_stmt	*st;
	char		*sql = sqlite3_vmprintf(fmt, ap);
	long long	 v = 0;

	cr_assert_not_null(sql);
	cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s: %s",
	    sql, sqlite3_errmsg(db));
	if (buf != NULL)
		buf[0] = '\0';
	if (sqlite3_step(st) == SQLITE_ROW) {
		v = sqlite3_column_int64(st, 0);
		if (buf != NULL)
			snprintf(buf, len, "%s", sqlite3_column_text(st, 0) ?
			    (const char *)sqlite3_column_text(st, 0) : "");
	}
	sqlite3_finalize(st);
	sqlite3_free(sql);
	return v;
}

static long long
q_int(sqlite3 *db, const char *fmt, ...)
{
	va_list		 ap;
	long long	 v;

	va_start(ap, fmt);
	v = q_vrow(db, NULL, 0, fmt, ap);
	va_end(ap);
	return v;
}

static void
q_text(sqlite3 *db, char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	q_vrow(db, buf, len, fmt, ap);
	va_end(ap);
}

/* Fails the test on any "U" line in a round's files. */
static void
check_unexpected(int round)
{
	char	 path[600], line[512];
	FILE	*fp;

	for (size_t k = 0; k < NCLIENTS; k++) {
		acks_path(path, sizeof(path), round, k < NITEMS(requesters) ?
		    requesters[k].agency : writers[k - NITEMS(requesters)].tag);
		if ((fp = fopen(path, "r")) == NULL)
			continue;
		while (fgets(line, sizeof(line), fp) != NULL)
			if (line[0] == 'U')
				CHECK(0, "round %d: %s", round, line + 2);
		fclose(fp);
	}
}

/*
 * The log after rounds 0..last: seq runs 1..N, every acknowledged
 * disclosure is there as told, nothing was logged twice, and at most one
 * unacknowledged entry per requester and kill (its request was in flight).
 */
static void
check_log(int last)
{
	sqlite3		*db = open_ro(d.audit);
	sqlite3_stmt	*st;
	long long	 n, max, min, ours;
	long		 acked = 0, missing = 0, wrong = 0;
	char		 first[512] = "";

	n = q_int(db, "SELECT count(*) FROM entries");
	max = q_int(db, "SELECT coalesce(max(seq), 0) FROM entries");
	min = q_int(db, "SELECT coalesce(min(seq), 1) FROM entries");
	CHECK(n == max && min == 1, "after round %d the log's seq has gaps: %lld "
	    "entries, seq %lld..%lld", last, n, min, max);
	CHECK(q_int(db, "SELECT count(*) FROM entries WHERE kind NOT IN "
	    "('disclosure', 'holder', 'store')") == 0, "after round %d: entries other "
	    "than disclosures, holder changes and the store opened", last);
	CHECK(q_int(db, "SELECT count(*) FROM (SELECT request_id FROM entries WHERE "
	    "kind = 'disclosure' GROUP BY request_id HAVING count(*) > 1)") == 0,
	    "after round %d: a disclosure request was logged twice", last);
	/*
	 * Nothing here makes a checked batch fail when applied; the only
	 * rollbacks are batches a kill interrupted, marked at the restart.
	 */
	CHECK(q_int(db, "SELECT count(*) FROM entries WHERE kind = 'holder' AND "
	    "decision = 'rolled_back' AND reason != 'interrupted'") == 0, "after round "
	    "%d: a holder batch was rolled back", last);

	cr_assert_eq(sqlite3_prepare_v2(db, "SELECT decision, reason, request_id FROM "
	    "entries WHERE seq = ?1 AND kind = 'disclosure'", -1, &st, NULL), SQLITE_OK);
	for (int r = 0; r <= last; r++)
		for (size_t k = 0; k < NITEMS(requesters); k++) {
			char		 path[600], line[512], dec[32], why[64], rid[40];
			unsigned long long seq;
			FILE		*fp;

			acks_path(path, sizeof(path), r, requesters[k].agency);
			if ((fp = fopen(path, "r")) == NULL)
				continue;
			while (fgets(line, sizeof(line), fp) != NULL) {
				if (sscanf(line, "D %llu %31s %63s %39s", &seq, dec, why,
				    rid) != 4)
					continue;
				acked++;
				sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
				if (sqlite3_step(st) != SQLITE_ROW) {
					missing++;
					if (first[0] == '\0')
						snprintf(first, sizeof(first), "entry %llu "
						    "(round %d, %s) is not in the log", seq,
						    r, rid);
				} else if (strcmp((const char *)sqlite3_column_text(st, 0),
				    dec) != 0 ||
				    strcmp((const char *)sqlite3_column_text(st, 1), why) != 0 ||
				    strcmp((const char *)sqlite3_column_text(st, 2), rid) != 0) {
					wrong++;
					if (first[0] == '\0')
						snprintf(first, sizeof(first), "entry %llu "
						    "says %s/%s/%s; the client was told "
						    "%s/%s/%s", seq,
						    sqlite3_column_text(st, 0),
						    sqlite3_column_text(st, 1),
						    sqlite3_column_text(st, 2), dec, why, rid);
				}
				sqlite3_reset(st);
			}
			fclose(fp);
		}
	sqlite3_finalize(st);
	CHECK(missing == 0 && wrong == 0, "after round %d: %ld of %ld acknowledged "
	    "disclosures missing, %ld differ; first: %s", last, missing, acked, wrong,
	    first);
	ours = q_int(db, "SELECT count(*) FROM entries WHERE kind = 'disclosure' AND "
	    "request_id LIKE 'crash-%%'");
	CHECK(ours >= acked && ours - acked <= (long long)(last + 1) *
	    (long long)NITEMS(requesters), "after round %d: %lld entries for %ld "
	    "acknowledged disclosures", last, ours, acked);
	total_disclosures = acked;
	unanswered_disclosures = ours - acked;
	sqlite3_close(db);
}

/*
 * The store after rounds 0..last: every acknowledged write is there,
 * batches are whole, consent decisions appear once each and in order.
 */
static void
check_store(int last)
{
	sqlite3		*db = open_ro(d.store);
	sqlite3_stmt	*subject, *rows;
	long		 put = 0, consents = 0, flags_set = 0, flags_cleared = 0;
	char		 first[512] = "";

	cr_assert_eq(sqlite3_prepare_v2(db, "SELECT count(*) FROM subjects s JOIN "
	    "records r ON r.subject = s.id AND r.record_type = 'person' JOIN "
	    "record_fields f ON f.subject = s.id AND f.record_type = 'person' AND "
	    "f.field = 'full_name' AND f.value = 'Casey Crashtest' WHERE s.id = ?1 "
	    "AND s.holder = ?2", -1, &subject, NULL), SQLITE_OK, "%s",
	    sqlite3_errmsg(db));
	cr_assert_eq(sqlite3_prepare_v2(db, "SELECT state, expires_at FROM consents "
	    "WHERE subject = ?1 AND recorded_by = ?2 ORDER BY id", -1, &rows, NULL),
	    SQLITE_OK, "%s", sqlite3_errmsg(db));
	for (size_t w = 0; w < NITEMS(writers); w++) {
		const char	*subj = writers[w].subject;
		long		 mine = 0, sets = 0, clears = 0;
		long long	 nrows;
		int		 more;

		/* Consent rows in the order written, merged with the acknowledged ones. */
		sqlite3_bind_text(rows, 1, subj, -1, SQLITE_STATIC);
		sqlite3_bind_text(rows, 2, writers[w].agency, -1, SQLITE_STATIC);
		more = sqlite3_step(rows) == SQLITE_ROW;
		for (int r = 0; r <= last; r++) {
			char		 path[600], line[512], s[64], who[64], state[16];
			long long	 at;
			int		 v;
			FILE		*fp;

			acks_path(path, sizeof(path), r, writers[w].tag);
			if ((fp = fopen(path, "r")) == NULL)
				continue;
			while (fgets(line, sizeof(line), fp) != NULL) {
				if (sscanf(line, "P %63s %63s", s, who) == 2) {
					put++;
					sqlite3_bind_text(subject, 1, s, -1, SQLITE_TRANSIENT);
					sqlite3_bind_text(subject, 2, who, -1, SQLITE_TRANSIENT);
					if ((sqlite3_step(subject) != SQLITE_ROW ||
					    sqlite3_column_int(subject, 0) != 1) &&
					    first[0] == '\0')
						snprintf(first, sizeof(first), "new subject %s "
						    "(round %d) is not in the store", s, r);
					sqlite3_reset(subject);
				} else if (sscanf(line, "C %63s %15s %lld", s, state,
				    &at) == 3) {
					consents++;
					mine++;
					/* Skip rows written but never acknowledged. */
					while (more && sqlite3_column_int64(rows, 1) < at)
						more = sqlite3_step(rows) == SQLITE_ROW;
					if (!more || sqlite3_column_int64(rows, 1) != at ||
					    strcmp((const char *)sqlite3_column_text(rows, 0),
					    state) != 0) {
						if (first[0] == '\0')
							snprintf(first, sizeof(first), "consent "
							    "%s expiring %lld on %s (round %d) "
							    "is not in the store", state, at, s,
							    r);
					} else
						more = sqlite3_step(rows) == SQLITE_ROW;
				} else if (sscanf(line, "F %d", &v) == 1) {
					if (v)
						sets++;
					else
						clears++;
				}
			}
			fclose(fp);
		}
		sqlite3_reset(rows);
		/* Written one at a time with growing expiry dates: ids keep that order. */
		CHECK(q_int(db, "SELECT count(*) FROM (SELECT expires_at, lag(expires_at) "
		    "OVER (ORDER BY id) AS before FROM consents WHERE subject = %Q) "
		    "WHERE before >= expires_at", subj) == 0,
		    "after round %d: %s's consent decisions are out of order", last, subj);
		nrows = q_int(db, "SELECT count(*) FROM consents WHERE subject = %Q", subj);
		CHECK(nrows >= mine && nrows - mine <= last + 1, "after round %d: %lld "
		    "consent decisions on %s, %ld acknowledged", last, nrows, subj, mine);
		/* Each acknowledged change left its history row (D12). */
		CHECK(q_int(db, "SELECT count(*) FROM flags WHERE subject = %Q AND "
		    "flag = 'domestic_abuse'", subj) >= sets && q_int(db, "SELECT "
		    "count(*) FROM flags WHERE subject = %Q AND flag = 'domestic_abuse' "
		    "AND removed_at IS NOT NULL", subj) >= clears, "after round %d: %s's "
		    "flag history lacks acknowledged changes (%ld set, %ld cleared)", last,
		    subj, sets, clears);
		flags_set += sets;
		flags_cleared += clears;
	}
	sqlite3_finalize(subject);
	sqlite3_finalize(rows);
	CHECK(first[0] == '\0', "after round %d: %s", last, first);
	/* All or nothing: a new subject has all three writes of its batch or none. */
	CHECK(q_int(db, "SELECT count(*) FROM subjects s WHERE s.id LIKE 'S-N-%%' "
	    "AND (NOT EXISTS (SELECT 1 FROM records r WHERE r.subject = s.id) OR "
	    "(SELECT count(*) FROM consents c WHERE c.subject = s.id) != 1 OR "
	    "(SELECT count(*) FROM flags f WHERE f.subject = s.id AND f.flag = "
	    "'hate_crime' AND f.removed_at IS NULL) != 1)") == 0,
	    "after round %d: a new subject with part of its batch", last);
	{
		long long n = q_int(db, "SELECT count(*) FROM subjects WHERE id LIKE "
		    "'S-N-%%'");

		CHECK(n >= put && n - put <= (long long)(last + 1) *
		    (long long)NITEMS(writers), "after round %d: %lld new subjects, %ld "
		    "acknowledged", last, n, put);
		unanswered_subjects = n - put;
	}
	total_writes = put + consents + flags_set + flags_cleared;
	sqlite3_close(db);
}

/*
 * The store against the log: every holder change in the store was logged
 * first (D7 for writes), and every batch logged but never applied (the kill
 * came between the log's commit and the store's) is marked rolled_back.
 */
static void
check_store_logged(int last)
{
	sqlite3	*db;
	char	*sql;

	cr_assert_eq(sqlite3_open_v2(d.store, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI,
	    NULL), SQLITE_OK, "%s: %s", d.store, sqlite3_errmsg(db));
	sqlite3_busy_timeout(db, 5000);
	sql = sqlite3_mprintf("ATTACH DATABASE 'file:%q?mode=ro' AS log", d.audit);
	cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK, "%s: %s", sql,
	    sqlite3_errmsg(db));
	sqlite3_free(sql);
	CHECK(q_int(db, "SELECT count(*) FROM subjects s WHERE s.id LIKE 'S-N-%%' AND "
	    "NOT EXISTS (SELECT 1 FROM log.entries e WHERE e.kind = 'holder' AND "
	    "e.decision = 'write' AND e.reason = 'put_record' AND e.subject = s.id AND "
	    "e.agency = s.holder)") == 0, "after round %d: a new subject in the store "
	    "was never logged", last);
	for (size_t w = 0; w < NITEMS(writers); w++) {
		const char *subj = writers[w].subject;

		CHECK(q_int(db, "SELECT count(*) FROM consents c WHERE c.subject = %Q AND "
		    "NOT EXISTS (SELECT 1 FROM log.entries e WHERE e.kind = 'holder' AND "
		    "e.decision = 'write' AND e.reason = 'consent' AND e.subject = "
		    "c.subject AND e.agency = c.recorded_by AND e.consent = c.state || "
		    "' agencies=* purposes=* expires=' || date(c.expires_at, "
		    "'unixepoch'))", subj) == 0, "after round %d: a consent decision on "
		    "%s in the store was never logged", last, subj);
		CHECK(q_int(db, "SELECT count(*) FROM flags WHERE subject = %Q", subj) <=
		    q_int(db, "SELECT count(*) FROM log.entries WHERE kind = 'holder' "
		    "AND reason = 'flag' AND subject = %Q", subj) &&
		    q_int(db, "SELECT count(*) FROM flags WHERE subject = %Q AND "
		    "removed_at IS NOT NULL", subj) <= q_int(db, "SELECT count(*) FROM "
		    "log.entries WHERE kind = 'holder' AND reason = 'unflag' AND "
		    "subject = %Q", subj), "after round %d: a flag change on %s in the "
		    "store was never logged", last, subj);
	}
	/*
	 * Logged, never applied, and nothing in the log says so: the daemon
	 * marks such batches rolled_back (interrupted) when it starts.
	 */
	unapplied = q_int(db, "SELECT count(DISTINCT e.request_id) FROM log.entries e "
	    "WHERE e.kind = 'holder' AND e.decision = 'write' AND NOT EXISTS (SELECT 1 "
	    "FROM holder_batches b WHERE b.request_id = e.request_id) AND NOT EXISTS "
	    "(SELECT 1 FROM log.entries r WHERE r.kind = 'holder' AND r.decision = "
	    "'rolled_back' AND r.request_id = e.request_id)");
	CHECK(unapplied == 0, "after round %d: %lld holder batches are logged as "
	    "written but were never applied, and no rolled_back entry says so", last,
	    unapplied);
	sqlite3_close(db);
}

/*
 * The flag on each long-lived subject after a round: the state last
 * acknowledged, or the change in flight at the kill (the last line is its
 * "f" with no "F"). The next round's clients start from what is found.
 */
static void
check_flags(int round)
{
	sqlite3 *db = open_ro(d.store);

	for (size_t w = 0; w < NITEMS(writers); w++) {
		char	 path[600], line[512];
		int	 acked = writers[w].flagged, pending = -1, v, now;
		FILE	*fp;

		acks_path(path, sizeof(path), round, writers[w].tag);
		if ((fp = fopen(path, "r")) != NULL) {
			while (fgets(line, sizeof(line), fp) != NULL) {
				if (sscanf(line, "f %d", &v) == 1)
					pending = v;
				else if (sscanf(line, "F %d", &v) == 1) {
					acked = v;
					pending = -1;
				}
			}
			fclose(fp);
		}
		now = (int)q_int(db, "SELECT count(*) FROM flags WHERE subject = %Q AND "
		    "flag = 'domestic_abuse' AND removed_at IS NULL", writers[w].subject);
		CHECK(now == acked || now == pending, "round %d: %s's flag is %s "
		    "(%d active rows) but %s was acknowledged last", round,
		    writers[w].subject, now ? "set" : "clear", now, acked ? "set" : "clear");
		writers[w].flagged = now != 0;
	}
	sqlite3_close(db);
}

/* integrity_check on both databases, and the chain verified offline. */
static void
check_files(int last)
{
	const char	*paths[] = { d.audit, d.store };
	char		 cmd[2048], res[512], *out;

	for (size_t i = 0; i < NITEMS(paths); i++) {
		sqlite3 *db = open_ro(paths[i]);

		q_text(db, res, sizeof(res), "PRAGMA integrity_check");
		CHECK(strcmp(res, "ok") == 0, "after round %d: %s: %s", last, paths[i], res);
		sqlite3_close(db);
	}
	snprintf(cmd, sizeof(cmd), "%s audit verify --log %s --pubkey "
	    "%s/pki/audit-signing.pub 2>&1", SAFESHARE_BIN, d.audit, d.dir);
	CHECK(h_run(cmd, &out) == 0, "after round %d: %s", last, out);
	free(out);
}

/* The holders' long-lived subjects, written before any kill. */
static void
make_long_lived_subjects(void)
{
	for (size_t w = 0; w < NITEMS(writers); w++) {
		struct ss_client	*c = h_client(&d, writers[w].agency);
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
		kill(d.pid, SIGKILL);
		close(pipefd[0]);
		cr_assert_eq(waitpid(d.pid, &st, 0), d.pid);
		d.pid = 0;
		cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "round %d: the daemon "
		    "ended by itself before the kill (status %d); see %s", round, st, d.log);
		reap(kids, NCLIENTS, round);
		h_start(&d);
		check_unexpected(round);
		check_log(round);
		check_store(round);
		check_store_logged(round);
		check_flags(round);
		check_files(round);
		if (problems > 0)
			cr_assert_fail("stopped after round %d (rounds count from 0; seed "
			    "%u); SAFESHARE_KEEP_TEST_DIR=1 keeps %s with the databases, "
			    "the daemon's log and the clients' acknowledgements", round,
			    seed, d.dir);
	}
	/* And once more after a clean stop, with nothing running. */
	cr_expect_eq(h_stop(&d), 0, "see %s", d.log);
	check_log(ROUNDS - 1);
	check_store(ROUNDS - 1);
	check_store_logged(ROUNDS - 1);
	check_files(ROUNDS - 1);
	{
		sqlite3 *db = open_ro(d.store);

		for (size_t w = 0; w < NITEMS(writers); w++)
			cr_expect_eq(q_int(db, "SELECT count(*) FROM flags WHERE subject = %Q "
			    "AND flag = 'domestic_abuse' AND removed_at IS NULL",
			    writers[w].subject), writers[w].flagged, "%s's flag changed "
			    "after the last restart", writers[w].subject);
		sqlite3_close(db);
	}
	cr_expect_gt(total_disclosures, 0, "no client got a disclosure before a kill");
	cr_expect_gt(total_writes, 0, "no holder write was acknowledged before a kill");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	fprintf(stderr, "crash: %d kills (%d under load, mean delay %ld ms): %ld "
	    "disclosures and %ld holder writes acknowledged, all present; unanswered "
	    "but done: %lld disclosures, %lld new subjects; holder batches logged, "
	    "unapplied and unmarked: %lld; %.1f s\n", ROUNDS, flowing, delays / ROUNDS,
	    total_disclosures, total_writes, unanswered_disclosures, unanswered_subjects,
	    unapplied, (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
}
