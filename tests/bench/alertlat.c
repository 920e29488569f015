/*
 * Alert latency probe for deploy/bench.sh (issue 18 item 7; a benchmark,
 * not a timed test): how long after an override's reply the Caldicott
 * Guardian's alert arrives, measured while deploy/bench.sh keeps the
 * 64-connection disclosure load running beside it.
 *
 *   alertlat --server 127.0.0.1:P --ca F --cert F --key F
 *            --guardian-cert F --guardian-key F [--rate R] [--seconds S]
 *            [--subjects N] [--label NAME]
 *
 * The sender thread, as the requester of --cert (health_trust in the
 * bench), asks at --rate per second for --seconds for a person record for
 * adult safeguarding with the override adult_serious_harm, on subjects the
 * demo data of `loadgen --make-data` gives no consent (B000002, B000006,
 * ...): the health-adult-person rule requires consent, so each is released
 * by the override (D5) and is an override alert (D20). The guardian thread
 * holds a long-poll on POST /v1/audit/alerts from the log's end (its own
 * mutual-TLS connection). Both note the CLOCK_MONOTONIC time a reply or an
 * alert arrived; an alert is matched to its override by the log seq (the
 * reply's disclosure_id). The report: alert minus reply, p50, p99 and max
 * (negative when the alert came first: the same commit releases both).
 *
 * Bounded: at most MAX_PROBES overrides, and the guardian gives up
 * GRACE_S seconds after the last reply. Uses the project's client library,
 * one client per thread (it is not thread-safe). The report is text on
 * stdout and one line starting "RESULT " with key=value pairs for scripts.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "safeshare/client.h"

#define MAX_PROBES	2000	/* overrides per run */
#define MAX_ALERTS	4096	/* alerts kept per run */
#define GRACE_S		10.0	/* wait for late alerts after the last reply */
#define POLL_WAIT_S	2	/* wait_seconds of each long-poll */

/* One override: written by the sender, read by main after both joined. */
struct probe {
	uint64_t	seq;		/* 0: no logged reply */
	double		t_sent, t_reply;
	int		ok;		/* released by the override */
};

/* One alert as it arrived: written by the guardian thread only. */
struct arrival {
	uint64_t	seq;
	double		t;
};

static struct {
	/* options, set before the threads start and only read after */
	struct ss_client_config	 req, guard;
	double			 rate, seconds;
	int			 nsubjects;
	const char		*label;

	/* mu guards sending, nreplied and fail: the guardian's stop test */
	pthread_mutex_t		 mu;
	int			 sending;	/* the sender has not finished */
	size_t			 nreplied;	/* overrides with a logged seq */
	double			 t_last_reply;
	int			 fail;		/* a thread gave up */

	/* the sender's alone until joined */
	struct probe		 probes[MAX_PROBES];
	size_t			 nprobes;
	size_t			 errors;

	/* the guardian's alone until joined */
	struct arrival		 alerts[MAX_ALERTS];
	size_t			 nalerts;
	uint64_t		 cursor, log_size;
	char			 gerr[256];
} A = { .mu = PTHREAD_MUTEX_INITIALIZER };

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
sleep_until(double t)
{
	struct timespec	ts;
	double		d = t - now_s();

	if (d <= 0)
		return;
	ts.tv_sec = (time_t)d;
	ts.tv_nsec = (long)((d - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/*
 * One alerts page after A.cursor, waiting up to wait_s; appends the
 * override alerts to A.alerts and moves the cursor. Returns -1 when there
 * was no usable reply (the reason in A.gerr).
 */
static int
poll_alerts(struct ss_client *c, uint32_t wait_s)
{
	Safeshare__V1__FeedRequest	 rq = SAFESHARE__V1__FEED_REQUEST__INIT;
	Safeshare__V1__AuditAlerts	*al;
	ProtobufCMessage		*resp = NULL;
	Safeshare__V1__Error		*e = NULL;
	double				 t;
	int				 status;

	rq.after_seq = A.cursor;
	rq.limit = 1000;
	rq.wait_seconds = wait_s;
	if (ss_call_message(c, "/v1/audit/alerts", &rq.base,
	    &safeshare__v1__audit_alerts__descriptor, &resp, &e, &status, A.gerr,
	    sizeof(A.gerr)) == -1)
		return -1;
	t = now_s();
	if (e != NULL || resp == NULL) {
		snprintf(A.gerr, sizeof(A.gerr), "alerts: HTTP %d %s", status,
		    e != NULL ? e->code : "");
		if (e != NULL)
			safeshare__v1__error__free_unpacked(e, NULL);
		if (resp != NULL)
			protobuf_c_message_free_unpacked(resp, NULL);
		return -1;
	}
	al = (Safeshare__V1__AuditAlerts *)resp;
	for (size_t i = 0; i < al->n_alerts; i++) {
		if (strcmp(al->alerts[i]->type, "override") != 0 ||
		    A.nalerts == MAX_ALERTS)
			continue;
		A.alerts[A.nalerts].seq = al->alerts[i]->seq;
		A.alerts[A.nalerts].t = t;
		A.nalerts++;
	}
	if (al->next_after_seq > A.cursor)
		A.cursor = al->next_after_seq;
	A.log_size = al->log_size;
	protobuf_c_message_free_unpacked(resp, NULL);
	return 0;
}

/*
 * The guardian: long-polls until every logged override has its alert, or
 * GRACE_S after the sender's last reply. The cursor was set by main.
 */
static void *
guardian(void *arg)
{
	struct ss_client *c = arg;

	for (;;) {
		int	stop, done;
		double	last;

		pthread_mutex_lock(&A.mu);
		done = !A.sending;
		last = A.t_last_reply;
		stop = A.fail || (done && (A.nalerts >= A.nreplied ||
		    now_s() - last > GRACE_S));
		pthread_mutex_unlock(&A.mu);
		if (stop)
			break;
		if (poll_alerts(c, POLL_WAIT_S) == -1) {
			pthread_mutex_lock(&A.mu);
			A.fail = 1;
			pthread_mutex_unlock(&A.mu);
			break;
		}
	}
	return NULL;
}

/* The sender: --rate overrides a second for --seconds, one connection. */
static void *
sender(void *arg)
{
	struct ss_client	*c = arg;
	size_t			 n = (size_t)(A.rate * A.seconds);
	double			 t0 = now_s();
	char			 subj[16], cref[32], err[256];

	if (n > MAX_PROBES)
		n = MAX_PROBES;
	for (size_t k = 0; k < n; k++) {
		Safeshare__V1__DisclosureRequest	 rq = SAFESHARE__V1__DISCLOSURE_REQUEST__INIT;
		Safeshare__V1__DisclosureResponse	*r = NULL;
		Safeshare__V1__Error			*e = NULL;
		struct probe				*p = &A.probes[k];
		int					 status, rc;

		sleep_until(t0 + (double)k / A.rate);
		pthread_mutex_lock(&A.mu);
		rc = A.fail;
		pthread_mutex_unlock(&A.mu);
		if (rc)
			break;
		/* Subjects 2, 6, 10, ...: no consent in loadgen's demo data. */
		snprintf(subj, sizeof(subj), "B%06zu", (4 * k + 2) % (size_t)A.nsubjects);
		snprintf(cref, sizeof(cref), "AS-ALERTLAT-%zu", k);
		rq.subject_id = subj;
		rq.purpose = "adult_safeguarding";
		rq.record_type = "person";
		rq.case_reference = cref;
		rq.practitioner = "Dr Bench";
		rq.override_code = "adult_serious_harm";
		rq.override_justification = "The adult was found injured at home and "
		    "the emergency team needs the GP practice now.";
		p->t_sent = now_s();
		rc = ss_disclose(c, &rq, &r, &e, &status, err, sizeof(err));
		p->t_reply = now_s();
		A.nprobes = k + 1;
		if (rc == -1) {
			fprintf(stderr, "alertlat: override %zu: %s\n", k, err);
			A.errors++;
			continue;
		}
		if (r != NULL) {
			p->seq = r->disclosure_id;
			p->ok = strncmp(r->reason, "override", 8) == 0;
		} else if (e != NULL)
			p->seq = e->disclosure_id;
		if (!p->ok) {
			if (A.errors++ == 0)
				fprintf(stderr, "alertlat: override %zu: HTTP %d %s\n", k,
				    status, r != NULL ? r->reason : e != NULL ? e->code : "");
		}
		if (r != NULL)
			safeshare__v1__disclosure_response__free_unpacked(r, NULL);
		if (e != NULL)
			safeshare__v1__error__free_unpacked(e, NULL);
		pthread_mutex_lock(&A.mu);
		if (p->ok)
			A.nreplied++;
		A.t_last_reply = p->t_reply;
		pthread_mutex_unlock(&A.mu);
	}
	pthread_mutex_lock(&A.mu);
	A.sending = 0;
	if (A.t_last_reply == 0)
		A.t_last_reply = now_s();
	pthread_mutex_unlock(&A.mu);
	return NULL;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The nearest-rank percentile q (0..1) of n sorted values; 0 if none. */
static double
pct(const double *v, size_t n, double q)
{
	size_t i;

	if (n == 0)
		return 0;
	i = (size_t)ceil(q * (double)n);
	return v[i == 0 ? 0 : i - 1];
}

/* Matches alerts to overrides by seq and prints the report; returns 0 if all came. */
static int
report(void)
{
	double	*lat, *rtt;
	size_t	 nlat = 0, nok = 0, dup = 0;

	if ((lat = calloc(MAX_PROBES, sizeof(*lat))) == NULL ||
	    (rtt = calloc(MAX_PROBES, sizeof(*rtt))) == NULL) {
		fprintf(stderr, "alertlat: out of memory\n");
		free(lat);
		return 1;
	}
	for (size_t k = 0; k < A.nprobes; k++) {
		const struct probe	*p = &A.probes[k];
		size_t			 hits = 0;
		double			 t = 0;

		if (!p->ok)
			continue;
		rtt[nok++] = (p->t_reply - p->t_sent) * 1e3;
		for (size_t i = 0; i < A.nalerts; i++)
			if (A.alerts[i].seq == p->seq && hits++ == 0)
				t = A.alerts[i].t;
		if (hits > 1)
			dup++;
		if (hits > 0)
			lat[nlat++] = (t - p->t_reply) * 1e3;
	}
	qsort(lat, nlat, sizeof(*lat), cmp_double);
	qsort(rtt, nok, sizeof(*rtt), cmp_double);
	printf("  overrides   %zu sent at %.0f/s, %zu released by the override, "
	    "%zu errors; reply p50 %.1f ms p99 %.1f ms\n", A.nprobes, A.rate, nok,
	    A.errors, pct(rtt, nok, 0.5), pct(rtt, nok, 0.99));
	printf("  alerts      %zu of %zu arrived (%zu twice); reply to alert "
	    "p50 %.1f ms p99 %.1f ms max %.1f ms (min %.1f)\n", nlat, nok, dup,
	    pct(lat, nlat, 0.5), pct(lat, nlat, 0.99), nlat ? lat[nlat - 1] : 0,
	    nlat ? lat[0] : 0);
	printf("RESULT label=%s sent=%zu ok=%zu errors=%zu alerts=%zu missing=%zu "
	    "dup=%zu p50_ms=%.1f p99_ms=%.1f max_ms=%.1f min_ms=%.1f "
	    "reply_p50_ms=%.1f reply_p99_ms=%.1f\n", A.label, A.nprobes, nok,
	    A.errors, nlat, nok - nlat, dup, pct(lat, nlat, 0.5), pct(lat, nlat, 0.99),
	    nlat ? lat[nlat - 1] : 0, nlat ? lat[0] : 0, pct(rtt, nok, 0.5),
	    pct(rtt, nok, 0.99));
	free(lat);
	free(rtt);
	return nok > 0 && nlat == nok && A.errors == 0 ? 0 : 1;
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: alertlat --server 127.0.0.1:P --ca F --cert F --key F\n"
	    "                --guardian-cert F --guardian-key F [options]\n"
	    "  --cert F, --key F   the requester that overrides (health_trust)\n"
	    "  --guardian-cert F, --guardian-key F   the guardian's long-poll\n"
	    "  --rate R            overrides per second (20, at most 200)\n"
	    "  --seconds S         for how long (10; at most %d overrides in all)\n"
	    "  --subjects N        loadgen --make-data's subjects (10000)\n"
	    "  --label NAME        names the run in the RESULT line\n", MAX_PROBES);
	exit(2);
}

static double
num(const char *s, double lo, double hi, const char *what)
{
	char	*end;
	double	 v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
		fprintf(stderr, "alertlat: %s: a number from %g to %g, not \"%s\"\n",
		    what, lo, hi, s);
		exit(2);
	}
	return v;
}

int
main(int argc, char *argv[])
{
	enum { O_SERVER = 256, O_CA, O_CERT, O_KEY, O_GCERT, O_GKEY, O_RATE,
	    O_SECONDS, O_SUBJECTS, O_LABEL };
	static const struct option opts[] = {
		{ "server", required_argument, NULL, O_SERVER },
		{ "ca", required_argument, NULL, O_CA },
		{ "cert", required_argument, NULL, O_CERT },
		{ "key", required_argument, NULL, O_KEY },
		{ "guardian-cert", required_argument, NULL, O_GCERT },
		{ "guardian-key", required_argument, NULL, O_GKEY },
		{ "rate", required_argument, NULL, O_RATE },
		{ "seconds", required_argument, NULL, O_SECONDS },
		{ "subjects", required_argument, NULL, O_SUBJECTS },
		{ "label", required_argument, NULL, O_LABEL },
		{ NULL, 0, NULL, 0 }
	};
	struct ss_client	*rc = NULL, *gc = NULL;
	pthread_t		 st, gt;
	char			 err[256];
	int			 ch, ret = 1;

	A.rate = 20;
	A.seconds = 10;
	A.nsubjects = 10000;
	A.label = "alerts";
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case O_SERVER:
			if (strncmp(optarg, "127.0.0.1:", 10) != 0) {
				fprintf(stderr, "alertlat: --server: only 127.0.0.1:PORT\n");
				return 2;
			}
			A.req.server = A.guard.server = optarg;
			break;
		case O_CA: A.req.ca = A.guard.ca = optarg; break;
		case O_CERT: A.req.cert = optarg; break;
		case O_KEY: A.req.key = optarg; break;
		case O_GCERT: A.guard.cert = optarg; break;
		case O_GKEY: A.guard.key = optarg; break;
		case O_RATE: A.rate = num(optarg, 0.1, 200, "--rate"); break;
		case O_SECONDS: A.seconds = num(optarg, 0.1, 600, "--seconds"); break;
		case O_SUBJECTS:
			A.nsubjects = (int)num(optarg, 3, 1000000, "--subjects");
			break;
		case O_LABEL: A.label = optarg; break;
		default: usage();
		}
	}
	if (optind != argc || A.req.server == NULL || A.req.ca == NULL ||
	    A.req.cert == NULL || A.req.key == NULL || A.guard.cert == NULL ||
	    A.guard.key == NULL)
		usage();
	A.req.timeout = 10;
	/* Longer than a long-poll's wait, and than the daemon's answer to it. */
	A.guard.timeout = POLL_WAIT_S + 20;

	if (ss_client_new(&rc, &A.req, err, sizeof(err)) == -1 ||
	    ss_client_new(&gc, &A.guard, err, sizeof(err)) == -1) {
		fprintf(stderr, "alertlat: %s\n", err);
		goto fail;
	}
	/* Start from the log's end: only this run's overrides count. */
	if (poll_alerts(gc, 0) == -1) {
		fprintf(stderr, "alertlat: %s\n", A.gerr);
		goto fail;
	}
	A.nalerts = 0;
	A.cursor = A.log_size;
	A.sending = 1;
	if (pthread_create(&gt, NULL, guardian, gc) != 0) {
		fprintf(stderr, "alertlat: cannot start the guardian thread\n");
		goto fail;
	}
	if (pthread_create(&st, NULL, sender, rc) != 0) {
		fprintf(stderr, "alertlat: cannot start the sender thread\n");
		pthread_mutex_lock(&A.mu);
		A.fail = 1;
		A.sending = 0;
		pthread_mutex_unlock(&A.mu);
		pthread_join(gt, NULL);
		goto fail;
	}
	pthread_join(st, NULL);
	pthread_join(gt, NULL);
	if (A.fail && A.gerr[0] != '\0')
		fprintf(stderr, "alertlat: guardian: %s\n", A.gerr);
	ret = report();
fail:
	ss_client_free(gc);
	ss_client_free(rc);
	return ret;
}
