/*
 * Alert latency probe for deploy/bench.sh (issue 18 item 7; a benchmark,
 * not a timed test): how long after an override's reply the Caldicott
 * Guardian's alert arrives, measured while deploy/bench.sh keeps the
 * 64-connection disclosure load running beside it.
 *
 *   alertlat --server 127.0.0.1:P --ca F --cert F --key F
 *            --guardian-cert F --guardian-key F [--rate R] [--seconds S]
 *            [--subjects N] [--label NAME]
 *            [--sink-port P --sink-cert F --sink-key F]
 *   alertlat --hang-port P --sink-cert F --sink-key F --ca F [--seconds S]
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
 * With --sink-port it also receives the daemon's outbound notifications
 * (the guardian's notify.url pointing there, issue 18 item 3; sink.c) and
 * reports override reply to POST arrival the same way. --hang-port only
 * runs a receiver that takes each POST and never answers, for --seconds
 * (default 600) or until killed: deploy/bench.sh measures the disclosure
 * rate beside it.
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

#include <event2/thread.h>

#include <signal.h>

#include "safeshare/client.h"
#include "sink.h"

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

static struct {
	/* options, set before the threads start and only read after */
	struct ss_client_config	 req, guard;
	double			 rate, seconds;
	int			 nsubjects;
	const char		*label;
	int			 sink_port, hang_port;
	const char		*sink_cert, *sink_key;
	struct sink		*sink;	/* its own thread; read by sink_copy() */

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

	/* the guardian's alone until joined: alerts as they arrived */
	struct sink_arrival		 alerts[MAX_ALERTS];
	size_t			 nalerts;
	uint64_t		 cursor, log_size;
	char			 gerr[256];
} A = { .mu = PTHREAD_MUTEX_INITIALIZER };

/* The sink's clock, so that replies, alerts and POSTs compare. */
static double
now_s(void)
{
	return sink_now();
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

/* Items the sink took that this run made (after the start cursor); 0 without one. */
static size_t
sink_count(void)
{
	struct sink_arrival	*arr;
	size_t			 n, posts, mine = 0;

	if (A.sink == NULL || (arr = calloc(SINK_MAX, sizeof(*arr))) == NULL)
		return A.sink == NULL ? SIZE_MAX : 0;
	n = sink_copy(A.sink, arr, SINK_MAX, &posts);
	for (size_t i = 0; i < n; i++)
		if (arr[i].seq > A.log_size)
			mine++;
	free(arr);
	return mine;
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

		size_t	posted = sink_count();

		pthread_mutex_lock(&A.mu);
		done = !A.sending;
		last = A.t_last_reply;
		stop = A.fail || (done && ((A.nalerts >= A.nreplied &&
		    posted >= A.nreplied) || now_s() - last > GRACE_S));
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
	char			 subj[24], cref[40], err[256];

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

/*
 * The delays in ms from each released override's reply to the first of
 * arr with its seq, sorted, into lat (MAX_PROBES long); returns how many
 * overrides had one, and counts in *dup those that had more than one.
 */
static size_t
delays(const struct sink_arrival *arr, size_t narr, double *lat, size_t *dup)
{
	size_t nlat = 0;

	*dup = 0;
	for (size_t k = 0; k < A.nprobes; k++) {
		const struct probe	*p = &A.probes[k];
		size_t			 hits = 0;
		double			 t = 0;

		if (!p->ok)
			continue;
		for (size_t i = 0; i < narr; i++)
			if (arr[i].seq == p->seq && hits++ == 0)
				t = arr[i].t;
		if (hits > 1)
			(*dup)++;
		if (hits > 0)
			lat[nlat++] = (t - p->t_reply) * 1e3;
	}
	qsort(lat, nlat, sizeof(*lat), cmp_double);
	return nlat;
}

/*
 * Matches alerts and POSTed items to overrides by seq and prints the
 * report; returns 0 if every override's alert (and POST) came.
 */
static int
report(void)
{
	struct sink_arrival	*posted = NULL;
	double			*lat, *rtt, *plat;
	size_t			 nlat, nok = 0, dup, npost = 0, nplat = 0, pdup = 0;
	size_t			 posts = 0;
	int			 rc;

	lat = calloc(MAX_PROBES, sizeof(*lat));
	rtt = calloc(MAX_PROBES, sizeof(*rtt));
	plat = calloc(MAX_PROBES, sizeof(*plat));
	if (A.sink != NULL && (posted = calloc(SINK_MAX, sizeof(*posted))) != NULL)
		npost = sink_copy(A.sink, posted, SINK_MAX, &posts);
	if (lat == NULL || rtt == NULL || plat == NULL ||
	    (A.sink != NULL && posted == NULL)) {
		fprintf(stderr, "alertlat: out of memory\n");
		rc = 1;
		goto done;
	}
	for (size_t k = 0; k < A.nprobes; k++)
		if (A.probes[k].ok)
			rtt[nok++] = (A.probes[k].t_reply - A.probes[k].t_sent) * 1e3;
	qsort(rtt, nok, sizeof(*rtt), cmp_double);
	nlat = delays(A.alerts, A.nalerts, lat, &dup);
	printf("  overrides   %zu sent at %.0f/s, %zu released by the override, "
	    "%zu errors; reply p50 %.1f ms p99 %.1f ms\n", A.nprobes, A.rate, nok,
	    A.errors, pct(rtt, nok, 0.5), pct(rtt, nok, 0.99));
	printf("  alerts      %zu of %zu arrived (%zu twice); reply to alert "
	    "p50 %.1f ms p99 %.1f ms max %.1f ms (min %.1f)\n", nlat, nok, dup,
	    pct(lat, nlat, 0.5), pct(lat, nlat, 0.99), nlat ? lat[nlat - 1] : 0,
	    nlat ? lat[0] : 0);
	printf("RESULT label=%s sent=%zu ok=%zu errors=%zu alerts=%zu missing=%zu "
	    "dup=%zu p50_ms=%.1f p99_ms=%.1f max_ms=%.1f min_ms=%.1f "
	    "reply_p50_ms=%.1f reply_p99_ms=%.1f", A.label, A.nprobes, nok,
	    A.errors, nlat, nok - nlat, dup, pct(lat, nlat, 0.5), pct(lat, nlat, 0.99),
	    nlat ? lat[nlat - 1] : 0, nlat ? lat[0] : 0, pct(rtt, nok, 0.5),
	    pct(rtt, nok, 0.99));
	rc = nok > 0 && nlat == nok && A.errors == 0 ? 0 : 1;
	if (A.sink != NULL) {
		nplat = delays(posted, npost, plat, &pdup);
		printf(" posts=%zu posted=%zu post_missing=%zu post_dup=%zu "
		    "post_p50_ms=%.1f post_p99_ms=%.1f post_max_ms=%.1f",
		    posts, nplat, nok - nplat, pdup, pct(plat, nplat, 0.5),
		    pct(plat, nplat, 0.99), nplat ? plat[nplat - 1] : 0);
		if (nplat != nok)
			rc = 1;
	}
	printf("\n");
	if (A.sink != NULL)
		printf("  notify      %zu of %zu arrived by POST (%zu twice, %zu POSTs); "
		    "reply to POST p50 %.1f ms p99 %.1f ms max %.1f ms\n", nplat, nok,
		    pdup, posts, pct(plat, nplat, 0.5), pct(plat, nplat, 0.99),
		    nplat ? plat[nplat - 1] : 0);
done:
	free(posted);
	free(plat);
	free(lat);
	free(rtt);
	return rc;
}

static volatile sig_atomic_t interrupted;

static void
on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

/*
 * --hang-port: a receiver that takes every POST and never answers, for
 * --seconds or until SIGTERM or SIGINT. Prints how many POSTs it held.
 */
static int
hang(void)
{
	struct sink_arrival	 none;
	struct sink		*s;
	char			 err[256];
	double			 end = now_s() + A.seconds;
	size_t			 posts = 0;

	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	if ((s = sink_start(A.hang_port, A.sink_cert, A.sink_key, A.req.ca, 1, err,
	    sizeof(err))) == NULL) {
		fprintf(stderr, "alertlat: hang: %s\n", err);
		return 1;
	}
	while (!interrupted && now_s() < end)
		sleep_until(now_s() + 0.1);
	sink_copy(s, &none, 0, &posts);
	sink_stop(s);
	printf("RESULT_HANG posts=%zu\n", posts);
	return 0;
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
	    "  --label NAME        names the run in the RESULT line\n"
	    "  --sink-port P       receive the daemon's notify POSTs on 127.0.0.1:P\n"
	    "                      too (TLS with --sink-cert/--sink-key, clients\n"
	    "                      signed by --ca) and time them the same way\n"
	    "       alertlat --hang-port P --sink-cert F --sink-key F --ca F [--seconds S]\n"
	    "  a receiver that takes each POST and never answers, for S seconds\n"
	    "  (600) or until killed\n", MAX_PROBES);
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
	    O_SECONDS, O_SUBJECTS, O_LABEL, O_SINKPORT, O_SINKCERT, O_SINKKEY,
	    O_HANGPORT };
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
		{ "sink-port", required_argument, NULL, O_SINKPORT },
		{ "sink-cert", required_argument, NULL, O_SINKCERT },
		{ "sink-key", required_argument, NULL, O_SINKKEY },
		{ "hang-port", required_argument, NULL, O_HANGPORT },
		{ NULL, 0, NULL, 0 }
	};
	struct ss_client	*rc = NULL, *gc = NULL;
	pthread_t		 st, gt;
	char			 err[256];
	int			 ch, ret = 1, seconds_set = 0;

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
		case O_SECONDS:
			A.seconds = num(optarg, 0.1, 600, "--seconds");
			seconds_set = 1;
			break;
		case O_SUBJECTS:
			A.nsubjects = (int)num(optarg, 3, 1000000, "--subjects");
			break;
		case O_LABEL: A.label = optarg; break;
		case O_SINKPORT:
			A.sink_port = (int)num(optarg, 1, 65535, "--sink-port");
			break;
		case O_SINKCERT: A.sink_cert = optarg; break;
		case O_SINKKEY: A.sink_key = optarg; break;
		case O_HANGPORT:
			A.hang_port = (int)num(optarg, 1, 65535, "--hang-port");
			break;
		default: usage();
		}
	}
	/* libevent locks, for the sink's loop stopped from this thread. */
	if (evthread_use_pthreads() != 0) {
		fprintf(stderr, "alertlat: libevent without pthreads\n");
		return 1;
	}
	if ((A.sink_port || A.hang_port) && (A.sink_cert == NULL ||
	    A.sink_key == NULL || A.req.ca == NULL))
		usage();
	if (A.hang_port) {
		if (!seconds_set)
			A.seconds = 600;
		return optind == argc ? hang() : 2;
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
	if (A.sink_port && (A.sink = sink_start(A.sink_port, A.sink_cert, A.sink_key,
	    A.req.ca, 0, err, sizeof(err))) == NULL) {
		fprintf(stderr, "alertlat: sink: %s\n", err);
		goto fail;
	}
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
	sink_stop(A.sink);
	ss_client_free(gc);
	ss_client_free(rc);
	return ret;
}
