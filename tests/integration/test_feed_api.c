/*
 * Feeds end to end (issue 18, D20), over real mutual TLS against the real
 * daemon with the demo data: a holder's access feed shows every use of its
 * own subjects and nothing of another holder's; long-polls are answered by
 * the commit that brings an item; `holder accesses --follow` resumes across
 * a daemon restart, a kill -9 and its own restart with no gap and no
 * repeat; an override alerts the guardian, and a failing --exec command is
 * retried until it takes the alert.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static struct daemon d;

H_DEMO_SUITE(feed_api, d, 240);

/* Asks for a person record; returns the log seq of the decision (0: none). */
static uint64_t
ask(struct ss_client *c, const char *subject, const char *purpose,
    const char *override)
{
	Safeshare__V1__DisclosureRequest	 rq = SAFESHARE__V1__DISCLOSURE_REQUEST__INIT;
	Safeshare__V1__DisclosureResponse	*r = NULL;
	Safeshare__V1__Error			*e = NULL;
	char					 err[512];
	int					 status;
	uint64_t				 id = 0;

	rq.subject_id = (char *)subject;
	rq.purpose = (char *)purpose;
	rq.record_type = "person";
	rq.case_reference = "CASE-18";
	rq.practitioner = "Feed Tester";
	if (override != NULL) {
		rq.override_code = (char *)override;
		rq.override_justification = "Found collapsed at home; emergency "
		    "admission needs the history.";
	}
	cr_assert_eq(ss_disclose(c, &rq, &r, &e, &status, err, sizeof(err)), 0,
	    "%s", err);
	id = r ? r->disclosure_id : e ? e->disclosure_id : 0;
	if (r)
		safeshare__v1__disclosure_response__free_unpacked(r, NULL);
	if (e)
		safeshare__v1__error__free_unpacked(e, NULL);
	return id;
}

/* One feed page as agency; the caller frees it. */
static Safeshare__V1__HolderAccesses *
accesses(const char *agency, uint64_t after, uint32_t limit, uint32_t wait,
    int *status)
{
	Safeshare__V1__FeedRequest	 rq = SAFESHARE__V1__FEED_REQUEST__INIT;
	ProtobufCMessage		*resp = NULL;
	Safeshare__V1__Error		*e = NULL;
	struct ss_client_config		 cfg;
	struct ss_client		*c;
	char				 cert[512], key[512], ca[512], err[512];

	/* Its own client: h_client()'s gives up after 10 s. */
	snprintf(cert, sizeof(cert), "%s/pki/%s.crt", d.dir, agency);
	snprintf(key, sizeof(key), "%s/pki/%s.key", d.dir, agency);
	snprintf(ca, sizeof(ca), "%s/pki/ca.crt", d.dir);
	cfg.server = d.server;
	cfg.cert = cert;
	cfg.key = key;
	cfg.ca = ca;
	cfg.timeout = 60;
	cr_assert_eq(ss_client_new(&c, &cfg, err, sizeof(err)), 0, "%s", err);
	rq.after_seq = after;
	rq.limit = limit;
	rq.wait_seconds = wait;
	cr_assert_eq(ss_call_message(c, "/v1/holder/accesses", &rq.base,
	    &safeshare__v1__holder_accesses__descriptor, &resp, &e, status, err,
	    sizeof(err)), 0, "%s", err);
	if (e)
		safeshare__v1__error__free_unpacked(e, NULL);
	ss_client_free(c);
	return (Safeshare__V1__HolderAccesses *)resp;
}

static int
cli(const char *agency, const char *args, char **out)
{
	return h_cli(&d, agency, args, out);
}

/* Starts the CLI in the background (own process group), output to outfile. */
static pid_t
cli_bg(const char *agency, const char *args, const char *outfile)
{
	char	cmd[4096];
	pid_t	pid;

	snprintf(cmd, sizeof(cmd), "SAFESHARE_SERVER=%s SAFESHARE_CERT=%s/pki/%s.crt "
	    "SAFESHARE_KEY=%s/pki/%s.key SAFESHARE_CA=%s/pki/ca.crt exec %s %s "
	    ">>%s 2>>%s/cli.err", d.server, d.dir, agency, d.dir, agency, d.dir,
	    SAFESHARE_BIN, args, outfile, d.dir);
	if ((pid = fork()) == 0) {
		setpgid(0, 0);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	cr_assert_gt(pid, 0);
	return pid;
}

static void
stop_bg(pid_t pid)
{
	int st;

	kill(pid, SIGTERM);
	for (int i = 0; i < 250; i++) {
		struct timespec ts = { 0, 20 * 1000 * 1000 };

		if (waitpid(pid, &st, WNOHANG) == pid)
			return;
		nanosleep(&ts, NULL);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
}

static char *
slurp(const char *path)
{
	char	*buf = NULL, *out = NULL;
	char	 cmd[1024];

	snprintf(cmd, sizeof(cmd), "cat %s 2>/dev/null", path);
	h_run(cmd, &out);
	buf = out != NULL ? out : strdup("");
	return buf;
}

static size_t
count_of(const char *s, const char *what)
{
	size_t n = 0;

	for (const char *p = s; (p = strstr(p, what)) != NULL; p += strlen(what))
		n++;
	return n;
}

/* Waits (bounded: 60 s) until file holds at least n copies of what. */
static char *
wait_for(const char *path, const char *what, size_t n)
{
	char *s = NULL;

	for (int i = 0; i < 600; i++) {
		struct timespec ts = { 0, 100 * 1000 * 1000 };

		free(s);
		s = slurp(path);
		if (count_of(s, what) >= n)
			break;
		nanosleep(&ts, NULL);
	}
	return s;
}

Test(feed_api, holder_sees_own_subjects_only)
{
	struct ss_client		*police = h_client(&d, "police");
	struct ss_client		*housing = h_client(&d, "housing");
	Safeshare__V1__HolderAccesses	*csc, *health;
	uint64_t			 s1001, s1003, s1003h, unknown;
	int				 status;

	s1001 = ask(police, "S1001", "child_protection", NULL);	/* csc's */
	s1003 = ask(police, "S1003", "child_protection", NULL);	/* health's */
	s1003h = ask(housing, "S1003", "housing_support", NULL);	/* health's */
	unknown = ask(police, "S9999", "child_protection", NULL);	/* no one's */
	cr_assert(s1001 && s1003 && s1003h && unknown);
	ss_client_free(police);
	ss_client_free(housing);

	csc = accesses("childrens_social_care", 0, 0, 0, &status);
	cr_assert_eq(status, 200);
	cr_assert_eq(csc->n_items, 1);
	cr_expect_eq(csc->items[0]->seq, s1001);
	cr_expect_str_eq(csc->items[0]->subject, "S1001");
	cr_expect_str_eq(csc->items[0]->agency, "police");
	cr_expect_str_eq(csc->items[0]->practitioner, "Feed Tester");
	cr_expect_str_eq(csc->items[0]->case_ref, "CASE-18");
	cr_expect_str_eq(csc->items[0]->purpose, "child_protection");
	cr_expect_str_eq(csc->items[0]->decision, "allow");
	cr_expect(strstr(csc->items[0]->released, "full_name") != NULL);
	cr_expect_geq(csc->next_after_seq, unknown, "the cursor passes what was read");

	health = accesses("health_trust", 0, 0, 0, &status);
	cr_assert_eq(status, 200);
	cr_assert_eq(health->n_items, 2);
	cr_expect_eq(health->items[0]->seq, s1003);
	cr_expect_eq(health->items[1]->seq, s1003h);
	cr_expect_str_eq(health->items[1]->agency, "housing");
	for (size_t i = 0; i < health->n_items; i++)
		cr_expect_str_eq(health->items[i]->subject, "S1003");
	safeshare__v1__holder_accesses__free_unpacked(csc, NULL);
	safeshare__v1__holder_accesses__free_unpacked(health, NULL);

	/* Item 4: each reader's lag behind the log, in entries. */
	{
		char *m = NULL;

		cr_assert_eq(h_get(&d, "auditor", "/metrics", &m), 200);
		cr_expect(strstr(m, "safeshare_feed_lag_entries{feed=\"accesses\","
		    "agency=\"childrens_social_care\"} 0\n") != NULL, "%s", m);
		cr_expect(strstr(m, "safeshare_feed_items_total{feed=\"accesses\"} 3\n")
		    != NULL, "%s", m);
		free(m);
	}

	/* Not a holder: refused (D1), and that refusal is logged. */
	csc = accesses("police", 0, 0, 0, &status);
	cr_expect_eq(status, 403);
	cr_expect_null(csc);
}

Test(feed_api, thousand_disclosures_thousand_items_in_order)
{
	struct ss_client		*police = h_client(&d, "police");
	Safeshare__V1__HolderAccesses	*p;
	uint64_t			 ids[1000], after = 0, last = 0;
	size_t				 got = 0;
	int				 status;

	for (int i = 0; i < 1000; i++) {
		ids[i] = ask(police, "S1001", "child_protection", NULL);
		cr_assert_gt(ids[i], 0);
		if (i % 100 == 0)	/* another holder's subject, between them */
			cr_assert_gt(ask(police, "S1003", "child_protection", NULL), 0);
	}
	ss_client_free(police);
	/* Pages of 300: every item once, in seq order, exactly the 1,000. */
	for (int round = 0; round < 20; round++) {
		p = accesses("childrens_social_care", after, 300, 0, &status);
		cr_assert_eq(status, 200);
		for (size_t i = 0; i < p->n_items; i++) {
			cr_assert_lt(got, 1000);
			cr_assert_eq(p->items[i]->seq, ids[got], "item %zu", got);
			cr_assert_gt(p->items[i]->seq, last);
			last = p->items[i]->seq;
			got++;
		}
		cr_assert_geq(p->next_after_seq, after);
		if (p->next_after_seq == after || p->next_after_seq >= p->log_size) {
			safeshare__v1__holder_accesses__free_unpacked(p, NULL);
			break;
		}
		after = p->next_after_seq;
		safeshare__v1__holder_accesses__free_unpacked(p, NULL);
	}
	cr_expect_eq(got, 1000);
}

Test(feed_api, long_poll_answered_by_the_commit)
{
	struct ss_client	*police = h_client(&d, "police");
	char			 out[512], *s;
	struct timespec		 t0, t1;
	uint64_t		 seq, size;
	pid_t			 pid;
	int			 status;
	Safeshare__V1__HolderAccesses *p;

	/*
	 * Nothing new for csc: a request waiting 11 s comes back empty, though
	 * the connection's idle limit (limits.timeout, 10 s here) is shorter.
	 */
	p = accesses("childrens_social_care", 0, 0, 0, &status);
	cr_assert_eq(status, 200);
	size = p->next_after_seq;
	safeshare__v1__holder_accesses__free_unpacked(p, NULL);
	p = accesses("childrens_social_care", size, 0, 11, &status);
	cr_assert_eq(status, 200);
	cr_expect_eq(p->n_items, 0);
	safeshare__v1__holder_accesses__free_unpacked(p, NULL);

	/* A waiter parked for up to 30 s is answered by the disclosure. */
	snprintf(out, sizeof(out), "%s/poll.out", d.dir);
	snprintf(out + 256, 256, "holder accesses --since %" PRIu64 " --wait 30 --json",
	    size);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pid = cli_bg("childrens_social_care", out + 256, out);
	{
		struct timespec ts = { 0, 500 * 1000 * 1000 };

		nanosleep(&ts, NULL);
	}
	seq = ask(police, "S1001", "child_protection", NULL);
	ss_client_free(police);
	waitpid(pid, &status, 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	s = slurp(out);
	{
		char want[64];

		snprintf(want, sizeof(want), "\"seq\": %" PRIu64, seq);
		cr_expect(strstr(s, want) != NULL, "%s", s);
	}
	/* Well before the 30 s deadline (a generous bound, not a timing goal). */
	cr_expect_lt(t1.tv_sec - t0.tv_sec, 20);
	free(s);
}

/* Every seq printed by --follow --json, in order, into seqs; returns how many. */
static size_t
seqs_of(const char *s, uint64_t *seqs, size_t max)
{
	size_t n = 0;

	for (const char *p = s; (p = strstr(p, "{\"seq\":")) != NULL && n < max; p += 7)
		seqs[n++] = strtoull(p + 7, NULL, 10);
	return n;
}

/* Rewrites the daemon config to keep the port it has now across restarts. */
static void
pin_port(void)
{
	char	cmd[1024];

	snprintf(cmd, sizeof(cmd), "sed -i 's/^port: 0$/port: %d/' %s", d.port, d.conf);
	cr_assert_eq(h_run(cmd, NULL), 0);
}

Test(feed_api, follow_survives_restart_and_kill)
{
	struct ss_client	*police;
	char			 out[512], state[512], args[1024], *s;
	uint64_t		 ids[40], seqs[80];
	size_t			 nid = 0, n;
	pid_t			 pid;
	int			 st;

	pin_port();
	snprintf(out, sizeof(out), "%s/follow.out", d.dir);
	snprintf(state, sizeof(state), "%s/follow.state", d.dir);
	snprintf(args, sizeof(args), "holder accesses --follow --json --state %s",
	    state);
	pid = cli_bg("childrens_social_care", args, out);

	police = h_client(&d, "police");
	for (int i = 0; i < 10; i++)
		ids[nid++] = ask(police, "S1001", "child_protection", NULL);
	ss_client_free(police);
	free(wait_for(out, "{\"seq\":", 10));

	/* A clean restart of the daemon. */
	cr_assert_eq(h_stop(&d), 0);
	h_start(&d);
	police = h_client(&d, "police");
	for (int i = 0; i < 10; i++)
		ids[nid++] = ask(police, "S1001", "child_protection", NULL);
	ss_client_free(police);
	free(wait_for(out, "{\"seq\":", 20));

	/* kill -9 of the daemon. */
	kill(d.pid, SIGKILL);
	waitpid(d.pid, &st, 0);
	d.pid = 0;
	h_start(&d);
	police = h_client(&d, "police");
	for (int i = 0; i < 10; i++)
		ids[nid++] = ask(police, "S1001", "child_protection", NULL);
	ss_client_free(police);
	free(wait_for(out, "{\"seq\":", 30));

	/* The follower itself stops; what comes meanwhile is read on its restart. */
	stop_bg(pid);
	police = h_client(&d, "police");
	for (int i = 0; i < 10; i++)
		ids[nid++] = ask(police, "S1001", "child_protection", NULL);
	ss_client_free(police);
	pid = cli_bg("childrens_social_care", args, out);
	s = wait_for(out, "{\"seq\":", 40);
	stop_bg(pid);

	n = seqs_of(s, seqs, 80);
	cr_assert_eq(n, nid, "%zu items for %zu disclosures:\n%s", n, nid, s);
	for (size_t i = 0; i < n; i++)
		cr_expect_eq(seqs[i], ids[i], "item %zu", i);
	free(s);
}

Test(feed_api, override_alerts_guardian_and_exec_retries)
{
	struct ss_client	*health;
	char			 script[512], args[2048], out[512], tries[512], *s;
	uint64_t		 seq;
	pid_t			 pid;
	FILE			*fp;

	snprintf(script, sizeof(script), "%s/forward.sh", d.dir);
	snprintf(tries, sizeof(tries), "%s/tries", d.dir);
	snprintf(out, sizeof(out), "%s/alerts.got", d.dir);
	/* Fails twice, then keeps the alert. */
	fp = fopen(script, "w");
	cr_assert_not_null(fp);
	fprintf(fp, "#!/bin/sh\necho x >> %s\n"
	    "[ \"$(wc -l < %s)\" -ge 3 ] || exit 1\ncat >> %s\necho >> %s\n",
	    tries, tries, out, out);
	fclose(fp);
	chmod(script, 0755);
	snprintf(args, sizeof(args), "audit alerts --follow --state %s/alerts.state "
	    "--exec %s", d.dir, script);
	pid = cli_bg("guardian", args, "/dev/null");

	/* S1002 refused consent; health_trust overrides (D5): an alert. */
	health = h_client(&d, "health_trust");
	seq = ask(health, "S1002", "adult_safeguarding", "adult_serious_harm");
	ss_client_free(health);
	cr_assert_gt(seq, 0);

	s = wait_for(out, "\"type\":\"override\"", 1);
	stop_bg(pid);
	cr_expect_eq(count_of(s, "\"type\":\"override\""), 1, "%s", s);
	{
		char want[64];

		snprintf(want, sizeof(want), "{\"seq\":%" PRIu64 ",", seq);
		cr_expect(strstr(s, want) != NULL, "%s", s);
	}
	free(s);
	s = slurp(tries);
	cr_expect_eq(count_of(s, "x"), 3, "the command ran 3 times: %s", s);
	free(s);

	/* A requester is not the guardian. */
	cr_expect_eq(cli("police", "audit alerts", &s), 4, "%s", s);
	free(s);
}

Test(feed_api, parked_requests_bounded_per_agency)
{
	struct ss_client	*police;
	char			 out[512], args[256], *s;
	pid_t			 pid[8];
	uint64_t		 seq;
	int			 status;
	Safeshare__V1__HolderAccesses *p;

	p = accesses("childrens_social_care", 0, 0, 0, &status);
	cr_assert_eq(status, 200);
	snprintf(args, sizeof(args), "holder accesses --since %" PRIu64 " --wait 30 "
	    "--json", p->next_after_seq);
	safeshare__v1__holder_accesses__free_unpacked(p, NULL);
	snprintf(out, sizeof(out), "%s/parked.out", d.dir);
	for (int i = 0; i < 8; i++)
		pid[i] = cli_bg("childrens_social_care", args, out);
	/* Bounded wait until all 8 are parked (no thread each: the loop holds them). */
	for (int i = 0; i < 200; i++) {
		struct timespec ts = { 0, 50 * 1000 * 1000 };
		char *m = NULL;
		int parked;

		cr_assert_eq(h_get(&d, "auditor", "/metrics", &m), 200);
		parked = strstr(m, "safeshare_feed_waiting 8\n") != NULL;
		free(m);
		if (parked)
			break;
		nanosleep(&ts, NULL);
	}
	/* The ninth of one agency is refused with a clear 429; others still park. */
	p = accesses("childrens_social_care", 0, 0, 30, &status);
	cr_expect_eq(status, 429);
	cr_expect_null(p);
	cr_expect_eq(cli("childrens_social_care", args, &s), 5, "%s", s);
	cr_expect(strstr(s, "too_many_waiting") != NULL, "%s", s);
	free(s);

	/* One disclosure answers all eight. */
	police = h_client(&d, "police");
	seq = ask(police, "S1001", "child_protection", NULL);
	ss_client_free(police);
	for (int i = 0; i < 8; i++) {
		waitpid(pid[i], &status, 0);
		cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	s = slurp(out);
	{
		char want[64];

		snprintf(want, sizeof(want), "\"seq\": %" PRIu64, seq);
		cr_expect_eq(count_of(s, want), 8, "%s", s);
	}
	free(s);
}

/* Waits (bounded: 10 s) until /metrics shows n feed requests parked. */
static int
wait_parked(int n)
{
	char want[64];

	snprintf(want, sizeof(want), "safeshare_feed_waiting %d\n", n);
	for (int i = 0; i < 200; i++) {
		struct timespec ts = { 0, 50 * 1000 * 1000 };
		char *m = NULL;
		int found;

		cr_assert_eq(h_get(&d, "auditor", "/metrics", &m), 200);
		found = strstr(m, want) != NULL;
		free(m);
		if (found)
			return 1;
		nanosleep(&ts, NULL);
	}
	return 0;
}

/*
 * Issue 18: a client that hangs up while parked frees its slot at once,
 * not at its deadline, so an agency whose clients drop and reconnect does
 * not lock itself out with 429s.
 */
Test(feed_api, hung_up_waiters_free_their_slots)
{
	struct ss_client	*police;
	char			 out[512], args[256], *s;
	pid_t			 pid[8];
	uint64_t		 seq;
	int			 status;
	struct timespec		 t0, t1;
	Safeshare__V1__HolderAccesses *p;

	p = accesses("childrens_social_care", 0, 0, 0, &status);
	cr_assert_eq(status, 200);
	snprintf(args, sizeof(args), "holder accesses --since %" PRIu64 " --wait 60 "
	    "--json", p->next_after_seq);
	safeshare__v1__holder_accesses__free_unpacked(p, NULL);
	snprintf(out, sizeof(out), "%s/dropped.out", d.dir);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < 8; i++)
		pid[i] = cli_bg("childrens_social_care", args, out);
	cr_assert(wait_parked(8));
	/* The clients die: the kernel closes their connections. */
	for (int i = 0; i < 8; i++) {
		kill(pid[i], SIGKILL);
		waitpid(pid[i], &status, 0);
	}
	cr_expect(wait_parked(0), "the dead clients still hold their slots");
	{
		char *m = NULL;

		cr_assert_eq(h_get(&d, "auditor", "/metrics", &m), 200);
		cr_expect(strstr(m, "safeshare_feed_dropped_total 8\n") != NULL);
		free(m);
	}

	/* The same agency parks eight again, well before the first deadline. */
	snprintf(out, sizeof(out), "%s/again.out", d.dir);
	for (int i = 0; i < 8; i++)
		pid[i] = cli_bg("childrens_social_care", args, out);
	cr_expect(wait_parked(8), "the new requests were not all parked");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	cr_expect_lt(t1.tv_sec - t0.tv_sec, 45);
	police = h_client(&d, "police");
	seq = ask(police, "S1001", "child_protection", NULL);
	ss_client_free(police);
	for (int i = 0; i < 8; i++) {
		waitpid(pid[i], &status, 0);
		cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	s = slurp(out);
	{
		char want[64];

		snprintf(want, sizeof(want), "\"seq\": %" PRIu64, seq);
		cr_expect_eq(count_of(s, want), 8, "%s", s);
	}
	free(s);
	snprintf(out, sizeof(out), "%s/cli.err", d.dir);
	s = slurp(out);
	cr_expect(strstr(s, "too_many_waiting") == NULL, "%s", s);
	free(s);
	/* Healthy: it still answers, and nothing is left parked. */
	cr_expect(wait_parked(0));
}

Test(feed_api, guardian_hears_the_log_becoming_unwritable)
{
	char	out[512], args[1024], *s;
	pid_t	pid;

	H_SQLITE_ONLY("the log file deleted under the daemon");
	snprintf(out, sizeof(out), "%s/outage.out", d.dir);
	snprintf(args, sizeof(args), "audit alerts --follow --json --state %s/outage.state",
	    d.dir);
	pid = cli_bg("guardian", args, out);
	{
		struct timespec ts = { 0, 700 * 1000 * 1000 };

		nanosleep(&ts, NULL);
	}
	/* The log file deleted under the daemon: appends now fail (D7). */
	cr_assert_eq(unlink(d.audit), 0, "%s", strerror(errno));
	s = wait_for(out, "\"type\":\"log_unwritable\"", 1);
	stop_bg(pid);
	cr_expect(strstr(s, "{\"seq\":0,") != NULL, "%s", s);
	cr_expect_eq(count_of(s, "\"type\":\"log_unwritable\""), 1, "%s", s);
	free(s);
}
