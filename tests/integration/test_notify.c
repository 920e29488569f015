/*
 * Outbound notification end to end (issue 18 items 3 and 4, D20): the real
 * daemon POSTs each agency's feed over mutual TLS to a loopback receiver
 * (notify_sink.c) that can answer 200 or 500, hang, or be down. Every item
 * of a holder's feed reaches its receiver, in seq order, and nothing of
 * another holder's; a receiver that is down or failing gets everything once
 * it is back (backoff, no gap); a kill -9 of the daemon loses nothing
 * (duplicates allowed, checked by seq); a hanging receiver does not hold
 * up disclosures; a bad notify block is a file:line:col error.
 */
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <criterion/criterion.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static struct daemon d;

/* One receiver: its directory (port, mode, out files), port and pid. */
struct sink {
	char	dir[600];
	int	port;
	pid_t	pid;
};
static struct sink	csc, health;

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000 * 1000 };

	nanosleep(&ts, NULL);
}

/* Starts the receiver (on its old port when it has one) and waits for it. */
static void
sink_start(struct sink *s)
{
	char	 path[700], port[16];
	FILE	*fp;

	snprintf(path, sizeof(path), "%s/sink.port", s->dir);
	unlink(path);
	snprintf(port, sizeof(port), "%d", s->port);
	if ((s->pid = fork()) == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execl(NOTIFY_SINK_BIN, "notify_sink", s->dir, "pki/server.crt",
		    "pki/server.key", "pki/ca.crt", port, (char *)NULL);
		_exit(127);
	}
	cr_assert_gt(s->pid, 0);
	for (int i = 0; i < 500; i++) {
		if ((fp = fopen(path, "r")) != NULL) {
			int ok = fscanf(fp, "%d", &s->port) == 1;

			fclose(fp);
			if (ok)
				return;
		}
		sleep_ms(20);
	}
	cr_assert_fail("notify_sink did not start");
}

/* Down: killed, its port left closed. */
static void
sink_stop(struct sink *s)
{
	int st;

	if (s->pid <= 0)
		return;
	kill(s->pid, SIGKILL);
	waitpid(s->pid, &st, 0);
	s->pid = 0;
}

static void
sink_mode(struct sink *s, const char *mode)
{
	char	 path[700];
	FILE	*fp;

	snprintf(path, sizeof(path), "%s/sink.mode", s->dir);
	cr_assert_not_null(fp = fopen(path, "w"));
	fprintf(fp, "%s\n", mode);
	fclose(fp);
}

/* The seqs of every item the receiver took, in arrival order; how many. */
static size_t
sink_seqs(struct sink *s, uint64_t *seqs, size_t max)
{
	char	 path[700], cmd[800], *out = NULL;
	size_t	 n = 0;

	snprintf(path, sizeof(path), "%s/sink.out", s->dir);
	snprintf(cmd, sizeof(cmd), "cat %s 2>/dev/null", path);
	h_run(cmd, &out);
	for (const char *p = out; p != NULL && (p = strstr(p, "{\"seq\":\"")) != NULL &&
	    n < max; p += 8)
		seqs[n++] = strtoull(p + 8, NULL, 10);
	free(out);
	return n;
}

/*
 * 1 if every id arrived, in order, with nothing else between them: the
 * seqs may repeat a batch (at least once) but never skip or go back past
 * what was already taken. Waits (bounded, secs) for the last one.
 */
static int
sink_has(struct sink *s, const uint64_t *ids, size_t nid, int secs)
{
	uint64_t	*seqs = calloc(4 * nid + 64, sizeof(*seqs));
	size_t		 n = 0, next = 0;

	for (int i = 0; i < secs * 10; i++) {
		n = sink_seqs(s, seqs, 4 * nid + 64);
		if (n > 0 && nid > 0 && seqs[n - 1] == ids[nid - 1])
			break;
		sleep_ms(100);
	}
	for (size_t i = 0; i < n; i++) {
		if (next < nid && seqs[i] == ids[next]) {
			next++;
			continue;
		}
		/* A repeat of one already taken (a batch sent again) is fine. */
		int seen = 0;

		for (size_t k = 0; k < next; k++)
			seen |= seqs[i] == ids[k];
		cr_expect(seen, "seq %llu was not expected here (item %zu)",
		    (unsigned long long)seqs[i], i);
	}
	free(seqs);
	cr_expect_eq(next, nid, "%zu of %zu items arrived", next, nid);
	return next == nid;
}

static void
setup(void)
{
	h_setup(&d);
	h_load_demo(&d);
	snprintf(csc.dir, sizeof(csc.dir), "%s/sink-csc", d.dir);
	snprintf(health.dir, sizeof(health.dir), "%s/sink-health", d.dir);
	mkdir(csc.dir, 0700);
	mkdir(health.dir, 0700);
	csc.port = health.port = 0;
	/* The receivers run in the test dir: their cert paths are relative. */
	cr_assert_eq(chdir(d.dir), 0);
	sink_start(&csc);
	sink_start(&health);
	snprintf(d.extra, sizeof(d.extra), "notify:\n"
	    "  childrens_social_care:\n    url: https://127.0.0.1:%d/in\n"
	    "    cert: pki/childrens_social_care.crt\n"
	    "    key: pki/childrens_social_care.key\n    ca: pki/ca.crt\n"
	    "    timeout: 2\n"
	    "  health_trust:\n    url: https://127.0.0.1:%d/in\n"
	    "    cert: pki/health_trust.crt\n    key: pki/health_trust.key\n"
	    "    ca: pki/ca.crt\n", csc.port, health.port);
	h_write_config(&d, d.audit);
	h_start(&d);
}

static void
teardown(void)
{
	sink_stop(&csc);
	sink_stop(&health);
	h_cleanup(&d);
}

TestSuite(notify, .init = setup, .fini = teardown, .timeout = 240);

/* Asks for a person record; returns the log seq of the decision. */
static uint64_t
disclose(struct ss_client *c, const char *subject)
{
	Safeshare__V1__DisclosureRequest	 rq = SAFESHARE__V1__DISCLOSURE_REQUEST__INIT;
	Safeshare__V1__DisclosureResponse	*r = NULL;
	Safeshare__V1__Error			*e = NULL;
	char					 err[512];
	int					 status;
	uint64_t				 id;

	rq.subject_id = (char *)subject;
	rq.purpose = "child_protection";
	rq.record_type = "person";
	rq.case_reference = "CASE-18-NOTIFY";
	rq.practitioner = "Notify Tester";
	cr_assert_eq(ss_disclose(c, &rq, &r, &e, &status, err, sizeof(err)), 0,
	    "%s", err);
	id = r ? r->disclosure_id : e ? e->disclosure_id : 0;
	if (r)
		safeshare__v1__disclosure_response__free_unpacked(r, NULL);
	if (e)
		safeshare__v1__error__free_unpacked(e, NULL);
	cr_assert_gt(id, 0);
	return id;
}

static char *
metrics(void)
{
	char *m = NULL;

	cr_assert_eq(h_get(&d, "auditor", "/metrics", &m), 200);
	return m;
}

Test(notify, each_holder_gets_its_own_feed_in_order)
{
	struct ss_client	*police = h_client(&d, "police");
	uint64_t		 mine[40], theirs[8];
	size_t			 nm = 0, nt = 0;
	char			 path[700], *out = NULL, *m;

	for (int i = 0; i < 40; i++) {
		mine[nm++] = disclose(police, "S1001");		/* csc's */
		if (i % 5 == 0)
			theirs[nt++] = disclose(police, "S1003");	/* health's */
	}
	ss_client_free(police);
	cr_assert(sink_has(&csc, mine, nm, 30));
	cr_assert(sink_has(&health, theirs, nt, 30));
	/* The feed API's JSON: the holder's item, not the other holder's. */
	snprintf(path, sizeof(path), "cat %s/sink.out", csc.dir);
	h_run(path, &out);
	cr_expect(strstr(out, "\"subject\":\"S1001\"") != NULL, "%s", out);
	cr_expect(strstr(out, "\"practitioner\":\"Notify Tester\"") != NULL);
	cr_expect(strstr(out, "S1003") == NULL, "another holder's item: %s", out);
	free(out);

	/* Item 4: the outbox's lag, deliveries and last success. */
	for (int i = 0; i < 50; i++) {
		m = metrics();
		if (strstr(m, "safeshare_notify_lag_entries{agency=\"childrens_"
		    "social_care\"} 0\n") != NULL)
			break;
		free(m);
		m = NULL;
		sleep_ms(100);
	}
	cr_assert_not_null(m, "the outbox lag never reached 0");
	cr_expect(strstr(m, "safeshare_notify_delivered_items_total{agency="
	    "\"childrens_social_care\"} 40\n") != NULL, "%s", m);
	cr_expect(strstr(m, "safeshare_notify_failures_total{agency="
	    "\"childrens_social_care\"} 0\n") != NULL, "%s", m);
	cr_expect(strstr(m, "safeshare_notify_last_success_seconds{agency="
	    "\"childrens_social_care\"} 0\n") == NULL, "%s", m);
	free(m);
}

Test(notify, receiver_down_or_failing_then_back_gets_everything)
{
	struct ss_client	*police = h_client(&d, "police");
	uint64_t		 ids[30];
	size_t			 n = 0;
	char			*m;

	for (int i = 0; i < 5; i++)
		ids[n++] = disclose(police, "S1001");
	cr_assert(sink_has(&csc, ids, n, 30));

	sink_stop(&csc);		/* down: connection refused */
	for (int i = 0; i < 10; i++)
		ids[n++] = disclose(police, "S1001");
	sleep_ms(1500);
	m = metrics();
	cr_expect(strstr(m, "safeshare_notify_failing{agency=\"childrens_social_care\"} "
	    "1\n") != NULL, "%s", m);
	cr_expect(strstr(m, "safeshare_notify_failures_total{agency="
	    "\"childrens_social_care\"} 0\n") == NULL, "%s", m);
	free(m);

	sink_mode(&csc, "500");		/* up, but failing */
	sink_start(&csc);
	for (int i = 0; i < 10; i++)
		ids[n++] = disclose(police, "S1001");
	sleep_ms(1500);
	sink_mode(&csc, "ok");		/* back */
	for (int i = 0; i < 5; i++)
		ids[n++] = disclose(police, "S1001");
	ss_client_free(police);
	cr_assert(sink_has(&csc, ids, n, 90));
}

Test(notify, kill_9_mid_stream_loses_nothing)
{
	struct ss_client	*police = h_client(&d, "police");
	uint64_t		 ids[120];
	size_t			 n = 0;
	int			 st;

	for (int i = 0; i < 30; i++)
		ids[n++] = disclose(police, "S1001");
	cr_assert(sink_has(&csc, ids, n, 30));
	/* Mid-stream: a POST hangs in flight, more wait behind it. */
	sink_mode(&csc, "hang");
	for (int i = 0; i < 30; i++)
		ids[n++] = disclose(police, "S1001");
	ss_client_free(police);
	sleep_ms(300);
	kill(d.pid, SIGKILL);
	waitpid(d.pid, &st, 0);
	d.pid = 0;
	sink_mode(&csc, "ok");
	h_start(&d);
	police = h_client(&d, "police");
	for (int i = 0; i < 60; i++)
		ids[n++] = disclose(police, "S1001");
	ss_client_free(police);
	cr_assert(sink_has(&csc, ids, n, 60));
}

Test(notify, hanging_receiver_does_not_hold_up_disclosures)
{
	struct ss_client	*police;
	struct timespec		 t0, t1;
	uint64_t		 ids[200];
	size_t			 n = 0;
	double			 secs;
	char			*m;

	sink_mode(&csc, "hang");
	sink_mode(&health, "hang");
	police = h_client(&d, "police");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < 200; i++)
		ids[n++] = disclose(police, i % 2 ? "S1001" : "S1003");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ss_client_free(police);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	/*
	 * Generous: each of the 200 waits on nothing of the receivers (the
	 * rate under load is deploy/bench.sh's, not a test's).
	 */
	cr_expect_lt(secs, 60.0, "200 disclosures took %.1f s", secs);
	sleep_ms(2500);			/* past notify.timeout: 2 s */
	m = metrics();
	cr_expect(strstr(m, "safeshare_notify_failures_total{agency="
	    "\"childrens_social_care\"} 0\n") == NULL, "the hang timed out: %s", m);
	free(m);
	sink_mode(&csc, "ok");
	{
		uint64_t mine[100];
		size_t nm = 0;

		for (size_t i = 0; i < n; i++)
			if (i % 2)
				mine[nm++] = ids[i];
		cr_assert(sink_has(&csc, mine, nm, 90));
	}
}

/*
 * The TSan report of session 5 (docs/hacking.md "Races"): the loop closes
 * client connections while the notifier thread opens a new outbound one
 * after each reply, so fd numbers move between the two threads all the
 * time. Every disclosure on a connection of its own (closed at once), a
 * refused handshake now and then (linger.c's dup()'d socket), and both
 * receivers taking a POST per item or two. Run against the TSan daemon
 * (deploy/test.sh --tsan) a stale epoll change of the loop on a number
 * the notifier now owns is a report; here, nothing may be lost either.
 */
Test(notify, loop_closes_while_notifier_connects)
{
	uint64_t	 mine[60], theirs[60];
	size_t		 nm = 0, nt = 0;

	for (int i = 0; i < 120; i++) {
		struct ss_client *police = h_client(&d, "police");

		if (i % 2)
			theirs[nt++] = disclose(police, "S1003");	/* health's */
		else
			mine[nm++] = disclose(police, "S1001");		/* csc's */
		ss_client_free(police);
		if (i % 4 == 0)
			cr_expect_eq(h_tls_probe(&d, NULL, NULL), 0,
			    "D10: no certificate, no reply");
	}
	cr_assert(sink_has(&csc, mine, nm, 90));
	cr_assert(sink_has(&health, theirs, nt, 90));
}

Test(notify, guardian_gets_override_alerts)
{
	struct sink		 guard = { .port = 0 };
	struct ss_client	*h;
	Safeshare__V1__DisclosureRequest rq = SAFESHARE__V1__DISCLOSURE_REQUEST__INIT;
	Safeshare__V1__DisclosureResponse *r = NULL;
	Safeshare__V1__Error	*e = NULL;
	char			 err[512], cmd[800], *out = NULL;
	int			 status;
	uint64_t		 seq;
	size_t			 len = strlen(d.extra);

	snprintf(guard.dir, sizeof(guard.dir), "%s/sink-guardian", d.dir);
	mkdir(guard.dir, 0700);
	sink_start(&guard);
	/* One more agency in the notify mapping: alerts, by its role. */
	snprintf(d.extra + len, sizeof(d.extra) - len, "  guardian:\n"
	    "    url: https://127.0.0.1:%d/alerts\n    cert: pki/guardian.crt\n"
	    "    key: pki/guardian.key\n    ca: pki/ca.crt\n", guard.port);
	cr_assert_eq(h_stop(&d), 0);
	h_write_config(&d, d.audit);
	h_start(&d);

	/* S1002 refused consent; health_trust overrides (D5): an alert. */
	h = h_client(&d, "health_trust");
	rq.subject_id = "S1002";
	rq.purpose = "adult_safeguarding";
	rq.record_type = "person";
	rq.case_reference = "CASE-18-NOTIFY";
	rq.practitioner = "Notify Tester";
	rq.override_code = "adult_serious_harm";
	rq.override_justification = "Found collapsed at home; emergency "
	    "admission needs the history.";
	cr_assert_eq(ss_disclose(h, &rq, &r, &e, &status, err, sizeof(err)), 0,
	    "%s", err);
	seq = r ? r->disclosure_id : e ? e->disclosure_id : 0;
	if (r)
		safeshare__v1__disclosure_response__free_unpacked(r, NULL);
	if (e)
		safeshare__v1__error__free_unpacked(e, NULL);
	/* An ordinary disclosure is no alert. */
	disclose(h, "S1001");
	ss_client_free(h);
	cr_assert_gt(seq, 0);
	cr_assert(sink_has(&guard, &seq, 1, 30));
	snprintf(cmd, sizeof(cmd), "cat %s/sink.out", guard.dir);
	h_run(cmd, &out);
	cr_expect(strstr(out, "\"alerts\":[") != NULL, "%s", out);
	cr_expect(strstr(out, "\"type\":\"override\"") != NULL, "%s", out);
	cr_expect(strstr(out, "\"overrideCode\":\"adult_serious_harm\"") != NULL,
	    "the whole log entry: %s", out);
	free(out);
	sink_stop(&guard);
}

/* Rewrites the protocol's roles of childrens_social_care and reloads it. */
static void
csc_roles(const char *roles)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), "sed -i '/id: childrens_social_care$/,/roles:/"
	    "s/roles: .*/roles: %s/' %s", roles, d.protocol);
	cr_assert_eq(h_run(cmd, NULL), 0);
	kill(d.pid, SIGHUP);
	sleep_ms(1000);
}

Test(notify, no_holder_role_after_reload_pauses_then_resumes)
{
	struct ss_client	*police = h_client(&d, "police");
	uint64_t		 ids[20], seqs[64];
	size_t			 n = 0;

	for (int i = 0; i < 5; i++)
		ids[n++] = disclose(police, "S1001");
	cr_assert(sink_has(&csc, ids, n, 30));
	/* D1: no role, no feed, not even by POST. */
	csc_roles("[requester]");
	for (int i = 0; i < 5; i++)
		ids[n++] = disclose(police, "S1001");
	sleep_ms(1500);
	cr_assert_eq(sink_seqs(&csc, seqs, 64), 5, "sent without the role");
	/* The role back: what came meanwhile follows, nothing lost. */
	csc_roles("[requester, holder]");
	for (int i = 0; i < 5; i++)
		ids[n++] = disclose(police, "S1001");
	ss_client_free(police);
	cr_assert(sink_has(&csc, ids, n, 30));
}

/* safeshared -t on a config with notify block lines; its output. */
static int
check_config(const char *block, char **out)
{
	char	 cmd[2048];

	snprintf(d.extra, sizeof(d.extra), "%s", block);
	h_write_config(&d, d.audit);
	snprintf(cmd, sizeof(cmd), "%s -t -c %s 2>&1", SAFESHARED_BIN, d.conf);
	return h_run(cmd, out);
}

Test(notify, bad_notify_config_is_a_file_line_col_error)
{
	static const struct {
		const char	*block;
		const char	*where;		/* line:col, after the conf's path */
		const char	*says;
	} cases[] = {
		{ "notify:\n  childrens_social_care:\n    url: http://127.0.0.1:9/x\n"
		    "    cert: pki/childrens_social_care.crt\n"
		    "    key: pki/childrens_social_care.key\n    ca: pki/ca.crt\n",
		    ":19:10:", "https://" },
		{ "notify:\n  childrens_social_care:\n    url: https://127.0.0.1:9/x\n"
		    "    cert: pki/childrens_social_care.crt\n"
		    "    key: pki/world-readable.key\n    ca: pki/ca.crt\n",
		    ":21:10:", "group or world" },
		{ "notify:\n  nobody:\n    url: https://127.0.0.1:9/x\n"
		    "    cert: pki/childrens_social_care.crt\n"
		    "    key: pki/childrens_social_care.key\n    ca: pki/ca.crt\n",
		    ":18:3:", "no agency \"nobody\"" },
		{ "notify:\n  police:\n    url: https://127.0.0.1:9/x\n"
		    "    cert: pki/police.crt\n    key: pki/police.key\n"
		    "    ca: pki/ca.crt\n", ":18:3:", "has no alerts feed" },
		{ "notify:\n  childrens_social_care:\n    url: https://127.0.0.1:9/x\n"
		    "    cert: pki/childrens_social_care.crt\n"
		    "    key: pki/childrens_social_care.key\n    ca: pki/ca.crt\n"
		    "    timout: 3\n", ":23:5:", "did you mean \"timeout\"" },
		{ "notify:\n  childrens_social_care:\n    url: https://127.0.0.1:9/x\n"
		    "    cert: pki/police.crt\n"
		    "    key: pki/childrens_social_care.key\n    ca: pki/ca.crt\n",
		    ":19:5:", "mismatch" },
	};
	char	 cmd[1024], *out = NULL, want[700];

	snprintf(cmd, sizeof(cmd), "cp %s/pki/childrens_social_care.key "
	    "%s/pki/world-readable.key && chmod 644 %s/pki/world-readable.key",
	    d.dir, d.dir, d.dir);
	cr_assert_eq(h_run(cmd, NULL), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int line, col;

		cr_expect_neq(check_config(cases[i].block, &out), 0, "case %zu", i);
		/* On PostgreSQL the harness's config has one line more above. */
		cr_assert_eq(sscanf(cases[i].where, ":%d:%d:", &line, &col), 2);
		snprintf(want, sizeof(want), "%s:%d:%d:", d.conf, line +
		    (h_pg_wanted() ? 1 : 0), col);
		cr_expect(out != NULL && strstr(out, want) != NULL, "case %zu: want "
		    "%s in: %s", i, want, out);
		cr_expect(out != NULL && strstr(out, cases[i].says) != NULL,
		    "case %zu: want \"%s\" in: %s", i, cases[i].says, out);
		free(out);
		out = NULL;
	}
	/* And the good one passes. */
	cr_expect_eq(check_config("notify:\n  guardian:\n    url: "
	    "https://localhost/alerts\n    cert: pki/guardian.crt\n"
	    "    key: pki/guardian.key\n    ca: pki/ca.crt\n", &out), 0, "%s", out);
	free(out);
}

/* Lines of the daemon's log file at path holding what (grep -c). */
static int
log_lines(const char *path, const char *what)
{
	char	cmd[1024], *out = NULL;
	int	n;

	snprintf(cmd, sizeof(cmd), "grep -c '%s' %s", what, path);
	h_run(cmd, &out);
	n = out != NULL ? atoi(out) : 0;
	free(out);
	return n;
}

/*
 * Several daemons on one PostgreSQL (deploy-ha.md "Notification with
 * several daemons"): two daemons with the same notify: block, one
 * deliverer per receiver. Entries logged by either daemon reach the
 * receiver once each, in seq order; the deliverer killed with -9, the
 * other takes over from the cursor in the database (its session's lock
 * freed) and nothing is lost.
 */
Test(notify, two_daemons_deliver_once_and_one_takes_over)
{
	struct daemon		 d2 = d;
	struct ss_client	*c1, *c2;
	uint64_t		 ids[60], seqs[256];
	size_t			 n = 0, got;
	int			 st;

	if (!h_pg_wanted())
		cr_skip_test("PostgreSQL-only: two daemons on one log");
	snprintf(d2.log, sizeof(d2.log), "%s/safeshared2.log", d.dir);
	d2.port = 0;
	h_start(&d2);
	cr_expect_eq(log_lines(d2.log, "event=notify_start agency=childrens_social_"
	    "care.*deliverer=another_daemon"), 1, "the second daemon delivers too");
	c1 = h_client(&d, "police");
	c2 = h_client(&d2, "police");
	for (int i = 0; i < 10; i++) {
		ids[n++] = disclose(c1, "S1001");
		ids[n++] = disclose(c2, "S1001");
	}
	cr_assert(sink_has(&csc, ids, n, 30));
	/* Once each: a second deliverer would have sent every item again. */
	sleep_ms(1500);
	got = sink_seqs(&csc, seqs, 256);
	cr_expect_eq(got, n, "%zu items received for %zu entries", got, n);
	ss_client_free(c1);

	/* The deliverer dies: its session, and its lock, end with it. */
	kill(d.pid, SIGKILL);
	waitpid(d.pid, &st, 0);
	d.pid = 0;
	for (int i = 0; i < 20; i++)
		ids[n++] = disclose(c2, "S1001");
	ss_client_free(c2);
	cr_assert(sink_has(&csc, ids, n, 30));
	cr_expect_eq(log_lines(d2.log, "event=notify_deliverer agency=childrens_"
	    "social_care"), 1, "the second daemon did not take over");
	cr_expect_eq(h_stop(&d2), 0);
}
