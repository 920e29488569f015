/*
 * The kill -9 tests' clients (crash.h), shared by the single-daemon test
 * (test_crash.c) and the two daemons on PostgreSQL (test_crash_pg.c). They
 * run in forked processes: no Criterion assertions. Each writes what the
 * daemon acknowledged to its file, one line per reply; anything
 * unexpected is a "U" line, which fails the test in the parent, and an
 * "E" line says why a client stopped (the kill, normally): evidence when
 * the test dir is kept, never checked.
 */
#include <criterion/criterion.h>

#include <sys/wait.h>

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "crash.h"

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

/* Checks failed so far (CHECK): the rounds stop after the first round with one. */
int crash_problems;

/*
 * In a client: the write end of the pipe on which its first
 * acknowledgement is announced, so that the kill lands while requests
 * flow; -1 once announced, or in the parent.
 */
int crash_ready_fd = -1;

/* A client for agency on daemon d; NULL (and a U line) on failure. */
struct ss_client *
crash_client(const struct daemon *d, const char *agency, int timeout, FILE *out)
{
	struct ss_client_config	 cfg;
	struct ss_client	*c;
	char			 cert[512], key[512], ca[512], err[512];

	snprintf(cert, sizeof(cert), "%s/pki/%s.crt", d->dir, agency);
	snprintf(key, sizeof(key), "%s/pki/%s.key", d->dir, agency);
	snprintf(ca, sizeof(ca), "%s/pki/ca.crt", d->dir);
	memset(&cfg, 0, sizeof(cfg));
	cfg.server = d->server;
	cfg.cert = cert;
	cfg.key = key;
	cfg.ca = ca;
	cfg.timeout = timeout;
	if (ss_client_new(&c, &cfg, err, sizeof(err)) == -1) {
		fprintf(out, "U client for %s: %s\n", agency, err);
		return NULL;
	}
	return c;
}

/* Tells the parent, once, that this client has been answered. */
void
crash_announce(void)
{
	if (crash_ready_fd != -1) {
		if (write(crash_ready_fd, "a", 1) == -1) {
			/* The parent has stopped listening; nothing to do. */
		}
		close(crash_ready_fd);
		crash_ready_fd = -1;
	}
}

/* CLOCK_MONOTONIC in milliseconds: the same clock in parent and clients. */
long long
crash_now_ms(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
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
 * Asks daemon d in turn, request ids "PREFIX-NNNN", until the daemon goes
 * away or the bounds are reached (MAX_REQUESTS, seconds; seconds is also
 * the reply timeout). Writes "D seq decision reason request_id ms" for
 * each reply as the ask expects it, ms the CLOCK_MONOTONIC time of the
 * reply (crash_now_ms()): a refusal with an Error (404 unknown_subject)
 * counts as a deny.
 */
void
crash_requester(const struct daemon *d, const struct requester *rq,
    const char *prefix, int seconds, FILE *out)
{
	struct ss_client	*c = crash_client(d, rq->agency, seconds, out);
	long long		 end = crash_now_ms() + seconds * 1000LL;

	for (int j = 0; c != NULL && j < MAX_REQUESTS && crash_now_ms() < end; j++) {
		Safeshare__V1__DisclosureRequest	 q = SAFESHARE__V1__DISCLOSURE_REQUEST__INIT;
		Safeshare__V1__DisclosureResponse	*r;
		Safeshare__V1__Error			*e;
		const struct ask			*a = &rq->asks[(size_t)j % rq->nasks];
		const char				*decision = "", *reason = "";
		char					 rid[33], err[512];
		unsigned long long			 seq = 0;
		int					 status, ok;

		snprintf(rid, sizeof(rid), "%s-%04d", prefix, j);
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
			fprintf(out, "E %lld %s\n", crash_now_ms(), err);
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
			fprintf(out, "D %llu %s %s %s %lld\n", seq, decision, reason, rid,
			    crash_now_ms());
		else
			fprintf(out, "U %s asking about %s for %s: status %d, %s/%s, id %llu "
			    "(expected %d, %s/%s)\n", rq->agency, a->subject, a->purpose,
			    status, decision, reason, seq, a->status, a->decision, a->reason);
		fflush(out);
		if (ok)
			crash_announce();
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

/* The files' "D" lines, for the checks in the parent (crash.h). */
long
crash_each_ack(const char *path, void (*fn)(const struct crash_ack *, void *),
    void *arg)
{
	struct crash_ack	 a;
	char			 line[512];
	long			 n = 0;
	FILE			*fp;

	if ((fp = fopen(path, "r")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), fp) != NULL) {
		a.ms = 0;
		if (sscanf(line, "D %llu %31s %63s %39s %lld", &a.seq, a.decision,
		    a.reason, a.request_id, &a.ms) < 4)
			continue;
		n++;
		fn(&a, arg);
	}
	fclose(fp);
	return n;
}

void
crash_reap(pid_t *kids, size_t n, int round, int seconds)
{
	struct timespec	 tick = { 0, 10 * 1000 * 1000 };
	size_t		 left = n;

	for (int i = 0; i < 300 * seconds && left > 0; i++) {
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
			CHECK(0, "round %d: client %zu did not stop", round, k);
		}
}
