/*
 * The disclosure log as auditors and the Caldicott Guardian use it, over
 * real mTLS: queries, reports, reviews, inform items, export and offline
 * verification, group commit, failing closed, and surviving kill -9
 * (D7, D15-D17).
 */
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <criterion/criterion.h>
#include <sqlite3.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "util.h"

static struct daemon d;

H_DEMO_SUITE(audit_api, d, 120);

/*
 * Asks for a record, with an override (and its inform waiver) when not
 * NULL; returns the HTTP status, the disclosure id in *id and the reply in
 * *rp when rp is not NULL (the caller frees it).
 */
static int
ask_full(struct ss_client *c, const char *subject, const char *purpose,
    const char *override, const char *waiver, uint64_t *id,
    Safeshare__V1__DisclosureResponse **rp)
{
	Safeshare__V1__DisclosureRequest	 rq = SAFESHARE__V1__DISCLOSURE_REQUEST__INIT;
	Safeshare__V1__DisclosureResponse	*r;
	Safeshare__V1__Error			*e;
	char					 err[512];
	int					 status;

	rq.subject_id = (char *)subject;
	rq.purpose = (char *)purpose;
	rq.record_type = "person";
	rq.case_reference = "CASE-9";
	rq.practitioner = "Test Practitioner";
	if (override != NULL) {
		rq.override_code = (char *)override;
		rq.override_justification = "Neighbour reports he has not been seen for "
		    "four days and may be at serious risk.";
	}
	if (waiver != NULL)
		rq.inform_waiver_reason = (char *)waiver;
	if (ss_disclose(c, &rq, &r, &e, &status, err, sizeof(err)) == -1)
		return 0;
	if (id != NULL)
		*id = r ? r->disclosure_id : e ? e->disclosure_id : 0;
	if (rp != NULL)
		*rp = r;
	else if (r)
		safeshare__v1__disclosure_response__free_unpacked(r, NULL);
	if (e)
		safeshare__v1__error__free_unpacked(e, NULL);
	return status;
}

static int
ask_as(struct ss_client *c, const char *subject, const char *purpose,
    const char *override, uint64_t *id)
{
	return ask_full(c, subject, purpose, override, NULL, id, NULL);
}

static int
cli(const char *agency, const char *args, char **out)
{
	return h_cli(&d, agency, args, out);
}

Test(audit_api, auditors_query_count_and_report)
{
	struct ss_client	*police = h_client(&d, "police");
	char			*out;

	cr_expect_eq(ask_as(police, "S1001", "child_protection", NULL, NULL), 200);
	cr_expect_eq(ask_as(police, "S1003", "child_protection", NULL, NULL), 200);
	cr_expect_eq(ask_as(police, "S1001", "adult_safeguarding", NULL, NULL), 200);
	ss_client_free(police);

	cr_expect_eq(cli("auditor", "audit query --subject S1001 --json", &out), 0, "%s", out);
	cr_expect(strstr(out, "\"subject\":\"S1001\"") != NULL, "%s", out);
	cr_expect(strstr(out, "S1003") == NULL, "filtered by subject: %s", out);
	free(out);

	cr_expect_eq(cli("auditor", "audit stats --by decision", &out), 0, "%s", out);
	cr_expect(strstr(out, "allow") != NULL && strstr(out, "deny") != NULL &&
	    strstr(out, "partial") != NULL, "%s", out);
	free(out);

	/* D17: a printable account of every request about one person. */
	cr_expect_eq(cli("auditor", "audit subject-report S1001", &out), 0, "%s", out);
	cr_expect(strstr(out, "requested by: police") != NULL, "%s", out);
	cr_expect(strstr(out, "2 requests recorded") != NULL, "%s", out);
	free(out);

	/* Only auditors read the log. */
	cr_expect_eq(cli("police", "audit query", &out), 4, "%s", out);
	cr_expect(strstr(out, "not_auditor") != NULL, "%s", out);
	free(out);
}

Test(audit_api, overrides_are_reviewed_and_subjects_informed)
{
	struct ss_client	*health = h_client(&d, "health_trust");
	uint64_t		 id = 0;
	char			*out, args[256];

	/* S1002 refused consent; an override releases and needs review (D5, D15). */
	cr_assert_eq(ask_as(health, "S1002", "adult_safeguarding", "adult_serious_harm",
	    &id), 200);
	cr_assert_gt(id, 0);
	ss_client_free(health);

	cr_expect_eq(cli("auditor", "audit reviews", &out), 0, "%s", out);
	cr_expect(strstr(out, "1 request(s) awaiting review") != NULL, "%s", out);
	free(out);

	snprintf(args, sizeof(args), "audit review %llu --outcome upheld --note "
	    "'Proportionate: risk to life'", (unsigned long long)id);
	cr_expect_eq(cli("auditor", args, &out), 4, "an auditor cannot review: %s", out);
	free(out);
	cr_expect_eq(cli("guardian", "audit review 99999 --outcome upheld --note 'no such'",
	    &out), 4, "%s", out);
	cr_expect(strstr(out, "no_such_review") != NULL, "%s", out);
	free(out);
	cr_expect_eq(cli("guardian", args, &out), 0, "%s", out);
	free(out);
	cr_expect_eq(h_log_count(&d, "kind = 'review' AND agency = 'guardian' AND "
	    "reason = 'upheld'"), 1, "the review is itself logged");
	cr_expect_eq(cli("auditor", "audit reviews", &out), 0);
	cr_expect(strstr(out, "0 request(s) awaiting review") != NULL, "%s", out);
	free(out);
	cr_expect_eq(cli("guardian", args, &out), 4, "reviewed once: %s", out);
	free(out);

	/* D6: no waiver was given, so the subject is to be informed. */
	cr_expect_eq(cli("auditor", "audit inform", &out), 0, "%s", out);
	cr_expect(strstr(out, "1 subject(s) to be informed") != NULL, "%s", out);
	free(out);
	snprintf(args, sizeof(args), "audit inform-done %llu --note 'Letter sent 25 Nov'",
	    (unsigned long long)id);
	cr_expect_eq(cli("auditor", args, &out), 0, "%s", out);
	free(out);
	cr_expect_eq(cli("auditor", "audit inform", &out), 0, "%s", out);
	cr_expect(strstr(out, "0 subject(s) to be informed") != NULL, "%s", out);
	free(out);
}

/*
 * Issue 15 item 5: S1003 granted consent to health_trust, so an override
 * decides nothing: the reply says released, and the queues and the
 * override count agree with it (D5, D6).
 */
Test(audit_api, unneeded_override_is_neither_reviewed_informed_nor_counted)
{
	struct ss_client			*health = h_client(&d, "health_trust");
	Safeshare__V1__DisclosureResponse	*r = NULL;
	char					*out;

	cr_assert_eq(ask_full(health, "S1003", "adult_safeguarding", "adult_serious_harm",
	    NULL, NULL, &r), 200);
	ss_client_free(health);
	cr_assert_not_null(r);
	cr_expect_str_eq(r->reason, "released");
	cr_expect(!r->review_required && !r->inform_subject);
	safeshare__v1__disclosure_response__free_unpacked(r, NULL);
	cr_expect_eq(h_log_count(&d, "override_code = 'adult_serious_harm' AND "
	    "reason = 'released'"), 1, "the log still says which exception was invoked");

	cr_expect_eq(cli("auditor", "audit reviews", &out), 0, "%s", out);
	cr_expect(strstr(out, "0 request(s) awaiting review") != NULL, "%s", out);
	free(out);
	cr_expect_eq(cli("auditor", "audit inform", &out), 0, "%s", out);
	cr_expect(strstr(out, "0 subject(s) to be informed") != NULL, "%s", out);
	free(out);
	cr_expect_eq(cli("auditor", "audit query --overrides --json", &out), 0, "%s", out);
	cr_expect(strstr(out, "S1003") == NULL, "not counted as an override: %s", out);
	free(out);
	cr_expect_eq(cli("auditor", "audit stats --by decision --overrides", &out), 0,
	    "%s", out);
	cr_expect(strstr(out, "allow") == NULL, "%s", out);
	free(out);
}

/*
 * Issue 15 item 6: housing-support-person accepts no override, so an
 * emergency request for S1002 (consent refused) is denied
 * override_not_allowed; it reaches the senior person's review (D15), and
 * no one is to be informed of a sharing that did not happen (D6).
 */
Test(audit_api, refused_emergency_request_is_reviewed)
{
	struct ss_client			*housing = h_client(&d, "housing");
	Safeshare__V1__DisclosureResponse	*r = NULL;
	uint64_t				 id = 0;
	char					*out, args[256];

	cr_assert_eq(ask_full(housing, "S1002", "housing_support", "emergency_life_threat",
	    NULL, &id, &r), 200);
	ss_client_free(housing);
	cr_assert_not_null(r);
	cr_expect_eq(r->decision, SAFESHARE__V1__DECISION__DECISION_DENY);
	cr_expect_str_eq(r->reason, "override_not_allowed");
	cr_expect(r->review_required, "the reply says it is queued for review");
	cr_expect(!r->inform_subject);
	safeshare__v1__disclosure_response__free_unpacked(r, NULL);

	cr_expect_eq(cli("auditor", "audit reviews", &out), 0, "%s", out);
	cr_expect(strstr(out, "1 request(s) awaiting review") != NULL, "%s", out);
	cr_expect(strstr(out, "refused: override_not_allowed") != NULL, "%s", out);
	free(out);
	cr_expect_eq(cli("auditor", "audit inform", &out), 0, "%s", out);
	cr_expect(strstr(out, "0 subject(s) to be informed") != NULL, "%s", out);
	free(out);
	snprintf(args, sizeof(args), "audit review %llu --outcome upheld --note "
	    "'Right to refuse: no emergency power in this rule'", (unsigned long long)id);
	cr_expect_eq(cli("guardian", args, &out), 0, "%s", out);
	free(out);
	cr_expect_eq(h_log_count(&d, "kind = 'review' AND agency = 'guardian'"), 1);
	cr_expect_eq(cli("auditor", "audit reviews", &out), 0, "%s", out);
	cr_expect(strstr(out, "0 request(s) awaiting review") != NULL, "%s", out);
	free(out);
}

/*
 * Issue 15 item 7: a waiver that fails the sentence test still creates the
 * inform item (D6), but the log keeps it marked not accepted and the
 * inform list shows it, so no one tells the subject unaware of the danger.
 */
Test(audit_api, rejected_waiver_is_logged_and_shown)
{
	struct ss_client			*health = h_client(&d, "health_trust");
	Safeshare__V1__DisclosureResponse	*r = NULL;
	char					*out;

	cr_assert_eq(ask_full(health, "S1002", "adult_safeguarding", "adult_serious_harm",
	    "Abuser monitors phone", NULL, &r), 200);
	ss_client_free(health);
	cr_assert_not_null(r);
	cr_expect_str_eq(r->reason, "override");
	cr_expect(r->inform_subject, "three words are not a reason (D6)");
	safeshare__v1__disclosure_response__free_unpacked(r, NULL);
	cr_expect_eq(h_log_count(&d, "inform_waiver = 'not accepted: Abuser monitors "
	    "phone'"), 1);

	cr_expect_eq(cli("auditor", "audit inform", &out), 0, "%s", out);
	cr_expect(strstr(out, "1 subject(s) to be informed") != NULL, "%s", out);
	cr_expect(strstr(out, "not accepted as one: Abuser monitors phone") != NULL,
	    "%s", out);
	free(out);
}

Test(audit_api, export_verifies_offline_and_tampering_is_located)
{
	struct ss_client	*police = h_client(&d, "police");
	char			*out, args[1024], cmd[2048], want[64];
	/* The store opened and the demo data loaded come first (issue 15). */
	long			 n = h_log_count(&d, "kind = 'store'") + 12;

	cr_assert_eq(n, 14);
	for (int i = 0; i < 12; i++)
		cr_expect_eq(ask_as(police, i % 2 ? "S1001" : "S1004", "child_protection",
		    NULL, NULL), 200);
	ss_client_free(police);

	snprintf(args, sizeof(args), "audit export --out %s/export.jsonl", d.dir);
	cr_expect_eq(cli("auditor", args, &out), 0, "%s", out);
	snprintf(want, sizeof(want), "exported %ld entries", n);
	cr_expect(strstr(out, want) != NULL, "%s", out);
	free(out);
	snprintf(args, sizeof(args), "audit verify --export %s/export.jsonl --pubkey "
	    "%s/pki/audit-signing.pub", d.dir, d.dir);
	cr_expect_eq(cli("auditor", args, &out), 0, "%s", out);
	snprintf(want, sizeof(want), "ok, %ld entries", n);
	cr_expect(strstr(out, want) != NULL, "%s", out);
	/* One per commit (issue 13): as many as the writer made, at least one. */
	cr_expect(strstr(out, " signed checkpoints verified") != NULL &&
	    strstr(out, " 0 signed checkpoints") == NULL, "%s", out);
	free(out);

	/* Change who saw entry 7, in the export. */
	snprintf(cmd, sizeof(cmd), "sed -i '/\"seq\":7,/s/\"agency\":\"police\"/"
	    "\"agency\":\"housing\"/' %s/export.jsonl", d.dir);
	cr_assert_eq(h_run(cmd, NULL), 0);
	cr_expect_eq(cli("auditor", args, &out), 1, "%s", out);
	cr_expect(strstr(out, "FAILED at entry 7") != NULL, "%s", out);
	free(out);

	/* And the daemon's own view of the live log. */
	cr_expect_eq(cli("auditor", "audit verify", &out), 0, "%s", out);
	cr_expect(strstr(out, want) != NULL, "%s", out);
	free(out);
}

/*
 * The daemon's own verify also checks the subject index that subject-access
 * reports read (D17): a row taken out of it, which would hide a disclosure
 * from the subject's report, fails `audit verify`.
 */
Test(audit_api, online_verify_checks_the_subject_index)
{
	struct ss_client	*police = h_client(&d, "police");
	char			*out = NULL, cmd[2048], want[160];
	int			 caught_up = 0;
	/* The store opened and the demo data loaded come first (issue 15). */
	long			 n = h_log_count(&d, "kind = 'store'") + 6;

	H_SQLITE_ONLY("the subject index is a file beside the log "
	    "(audit.db-subjects)");
	for (int i = 0; i < 6; i++)
		cr_expect_eq(ask_as(police, i % 2 ? "S1001" : "S1004", "child_protection",
		    NULL, NULL), 200);
	ss_client_free(police);
	/* The checkpointer thread indexes within about a second (at most 10 s). */
	for (int w = 0; w < 100 && !caught_up; w++) {
		free(out);
		cr_assert_eq(cli("auditor", "audit verify", &out), 0, "%s", out);
		snprintf(want, sizeof(want), "subject index (checked by the daemon): ok, "
		    "the subject index agrees with the log up to entry %ld", n);
		caught_up = strstr(out, want) != NULL;
		if (!caught_up)
			usleep(100 * 1000);
	}
	cr_expect(caught_up, "%s", out);
	free(out);

	snprintf(cmd, sizeof(cmd), "sqlite3 %s-subjects \"DELETE FROM subject_index "
	    "WHERE seq = %ld\"", d.audit, n - 3);
	cr_assert_eq(h_run(cmd, NULL), 0);
	cr_expect_eq(cli("auditor", "audit verify", &out), 1, "%s", out);
	snprintf(want, sizeof(want), "disclosure log (verified by the daemon): ok, "
	    "%ld entries", n);
	cr_expect(strstr(out, want) != NULL, "the chain itself is whole: %s", out);
	snprintf(want, sizeof(want), "FAILED: the subject index disagrees with the "
	    "log up to entry %ld (1 entries missing, 0 rows", n);
	cr_expect(strstr(out, want) != NULL, "%s", out);
	free(out);
	cr_expect_eq(cli("auditor", "audit verify --json", &out), 1, "%s", out);
	snprintf(want, sizeof(want), "\"index\":{\"ok\":false,\"upto\":%ld,"
	    "\"missing\":1,\"extra\":0}", n);
	cr_expect(strstr(out, want) != NULL, "%s", out);
	free(out);

	/* An index that cannot be read is a failure too, not a pass. */
	snprintf(cmd, sizeof(cmd), "sqlite3 %s-subjects \"DROP TABLE subject_index\"",
	    d.audit);
	cr_assert_eq(h_run(cmd, NULL), 0);
	cr_expect_eq(cli("auditor", "audit verify", &out), 1, "%s", out);
	cr_expect(strstr(out, "subject index (checked by the daemon): FAILED: the subject "
	    "index could not be checked") != NULL, "%s", out);
	free(out);
}

Test(audit_api, concurrent_decisions_share_commits)
{
	enum { CLIENTS = 32, EACH = 15 };
	pid_t	 kids[CLIENTS];
	char	*metrics, *p;
	long	 commits = 0, entries = 0;
	int	 st, failed = 0;

	for (int i = 0; i < CLIENTS; i++)
		if ((kids[i] = fork()) == 0) {
			struct ss_client *c = h_client(&d, "police");
			int bad = 0;

			for (int j = 0; j < EACH; j++)
				bad += ask_as(c, "S1001", "child_protection", NULL, NULL) != 200;
			ss_client_free(c);
			_exit(bad != 0);
		}
	for (int i = 0; i < CLIENTS; i++) {
		waitpid(kids[i], &st, 0);
		failed += !WIFEXITED(st) || WEXITSTATUS(st) != 0;
	}
	cr_expect_eq(failed, 0);
	cr_expect_eq(h_log_count(&d, "kind = 'disclosure'"), CLIENTS * EACH);
	cr_assert_eq(h_get(&d, "auditor", "/metrics", &metrics), 200);
	if ((p = strstr(metrics, "\nsafeshare_log_commits_total ")) != NULL)
		commits = atol(p + 29);
	if ((p = strstr(metrics, "\nsafeshare_log_entries_total ")) != NULL)
		entries = atol(p + 29);
	cr_expect_eq(entries, CLIENTS * EACH, "%s", metrics);
	cr_expect_gt(commits, 0);
	cr_expect_lt(commits, entries, "group commit: fewer commits (%ld) than entries (%ld)",
	    commits, entries);
	fprintf(stderr, "group commit: %ld entries in %ld commits\n", entries, commits);
	/* Every disclosure reply is counted by route and status, and timed. */
	cr_expect(strstr(metrics, "safeshare_http_responses_total{route=\"disclosures\","
	    "status=\"200\"} 480\n") != NULL, "%s", metrics);
	cr_expect(strstr(metrics, "safeshare_request_duration_seconds_count{route="
	    "\"disclosures\"} 480\n") != NULL, "%s", metrics);
	cr_expect(strstr(metrics, "safeshare_request_duration_seconds_bucket{route="
	    "\"disclosures\",le=\"+Inf\"} 480\n") != NULL);
	cr_expect(strstr(metrics, "\nsafeshare_connections_open ") != NULL);
	free(metrics);
}

Test(audit_api, fails_closed_when_the_log_cannot_be_written)
{
	struct ss_client	*police;
	char			 mnt[512], logpath[600], filler[600], cmd[4096], *body;
	int			 status, released = 0, refused = 0;

	H_SQLITE_ONLY("a full filesystem under the log file");
	/* A tiny filesystem for the log, so the test can fill it. */
	snprintf(mnt, sizeof(mnt), "%s/small", d.dir);
	mkdir(mnt, 0700);
	if (mount("tmpfs", mnt, "tmpfs", 0, "size=1m") == -1)
		cr_skip_test("cannot mount a tmpfs here (needs root): %s", strerror(errno));
	h_stop(&d);
	snprintf(logpath, sizeof(logpath), "%s/audit.db", mnt);
	h_write_config(&d, logpath);
	/* Another log for the same store: deliberate, so -N (issue 13 item 5). */
	d.new_log = 1;
	h_start(&d);
	d.new_log = 0;
	police = h_client(&d, "police");
	cr_expect_eq(ask_as(police, "S1001", "child_protection", NULL, NULL), 200);

	snprintf(filler, sizeof(filler), "%s/filler", mnt);
	snprintf(cmd, sizeof(cmd), "dd if=/dev/zero of=%s bs=4k 2>/dev/null; true", filler);
	h_run(cmd, NULL);
	for (int i = 0; i < 40; i++) {
		status = ask_as(police, "S1001", "child_protection", NULL, NULL);
		released += status == 200;
		refused += status == 503;
	}
	/* SQLite may have room for a few pages; then every reply must be 503. */
	cr_expect_gt(refused, 0, "the log filled up but nothing was refused");
	cr_expect_eq(h_get(&d, "auditor", "/healthz", &body), 503, "healthz says so");
	free(body);
	status = ask_as(police, "S1001", "child_protection", NULL, NULL);
	cr_expect_eq(status, 503, "still full: nothing released unlogged");
	/* A holder's change that cannot be logged is not made either. */
	snprintf(cmd, sizeof(cmd), "SAFESHARE_SERVER=%s SAFESHARE_CA=%s/pki/ca.crt "
	    "SAFESHARE_CERT=%s/pki/childrens_social_care.crt SAFESHARE_KEY=%s/pki/"
	    "childrens_social_care.key %s holder flag S1001 hate_crime 2>&1 | "
	    "grep -q audit_unavailable && test \"$(sqlite3 %s \"SELECT count(*) FROM flags "
	    "WHERE subject = 'S1001' AND flag = 'hate_crime'\")\" = 0", d.server, d.dir,
	    d.dir, d.dir, SAFESHARE_BIN, d.store);
	cr_expect_eq(h_run(cmd, NULL), 0, "holder write refused and not applied");

	unlink(filler);
	status = ask_as(police, "S1001", "child_protection", NULL, NULL);
	cr_expect_eq(status, 200, "recovers by itself once the log can be written");
	cr_expect_eq(h_get(&d, "auditor", "/healthz", &body), 200);
	free(body);
	ss_client_free(police);
	cr_expect_eq(h_stop(&d), 0);
	/* Every 200 is in the log and the chain is whole. */
	cr_expect_eq(h_log_count(&d, "decision = 'allow'"), released + 2);
	snprintf(cmd, sizeof(cmd), "%s audit verify --log %s --pubkey %s/pki/audit-signing.pub "
	    ">/dev/null 2>&1", SAFESHARE_BIN, logpath, d.dir);
	cr_expect_eq(h_run(cmd, NULL), 0);
	umount2(mnt, MNT_DETACH);
}

static long
file_size(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 ? (long)sb.st_size : 0;
}

Test(audit_api, kill_minus_9_loses_no_acknowledged_disclosure)
{
	enum { ROUNDS = 3, CLIENTS = 4 };
	char	 ids[512], cmd[4096], logarg[1700], *out;
	FILE	*fp;

	snprintf(ids, sizeof(ids), "%s/ids", d.dir);
	for (int round = 0; round < ROUNDS; round++) {
		pid_t kids[CLIENTS];
		struct timespec ts = { 0, 150 * 1000 * 1000 };
		long before = file_size(ids);

		for (int i = 0; i < CLIENTS; i++)
			if ((kids[i] = fork()) == 0) {
				struct ss_client *c = h_client(&d, "police");
				FILE *f = fopen(ids, "a");

				/* Bounded: stops at 500 requests or when the daemon dies. */
				for (int j = 0; j < 500; j++) {
					uint64_t id = 0;

					if (ask_as(c, "S1001", "child_protection", NULL, &id) != 200)
						break;
					fprintf(f, "%llu\n", (unsigned long long)id);
					fflush(f);
				}
				fclose(f);
				ss_client_free(c);
				_exit(0);
			}
		/*
		 * Kill while answers are flowing: wait (at most 10 s; slow under
		 * the sanitizers) until this round's first answer, then a little.
		 */
		for (int w = 0; w < 1000 && file_size(ids) <= before; w++)
			usleep(10 * 1000);
		nanosleep(&ts, NULL);
		kill(d.pid, SIGKILL);
		waitpid(d.pid, NULL, 0);
		d.pid = 0;
		for (int i = 0; i < CLIENTS; i++)
			waitpid(kids[i], NULL, 0);
		h_start(&d);
	}
	h_stop(&d);
	/* Every id a client was given is in the log. */
	fp = fopen(ids, "r");
	cr_assert_not_null(fp);
	{
		unsigned long long id;
		long n = 0, missing = 0;
		char where[64];

		while (fscanf(fp, "%llu", &id) == 1) {
			snprintf(where, sizeof(where), "seq = %llu AND decision = 'allow'", id);
			missing += h_log_count(&d, where) != 1;
			n++;
		}
		fclose(fp);
		cr_expect_gt(n, 0, "no client got an answer before the kill");
		cr_expect_eq(missing, 0, "%ld of %ld acknowledged disclosures missing", missing, n);
	}
	snprintf(cmd, sizeof(cmd), "%s audit verify %s --pubkey %s/pki/audit-signing.pub",
	    SAFESHARE_BIN, h_log_arg(&d, logarg, sizeof(logarg)), d.dir);
	cr_expect_eq(h_run(cmd, &out), 0, "%s", out);
	free(out);
}

static int
count_of(const char *s, const char *what)
{
	int n = 0;

	for (; (s = strstr(s, what)) != NULL; s += strlen(what))
		n++;
	return n;
}

/*
 * Issue 21: `audit report` makes one self-contained HTML page (inline SVG
 * and CSS, no script, nothing fetched) with every chart backed by a
 * <details> table, names the patterns with their log entries, escapes
 * every string from the log, and gives the same aggregates as JSON.
 */
Test(audit_api, report_is_self_contained_html_and_json)
{
	Safeshare__V1__DisclosureRequest	 rq = SAFESHARE__V1__DISCLOSURE_REQUEST__INIT;
	Safeshare__V1__DisclosureResponse	*r;
	Safeshare__V1__Error			*e;
	struct ss_client			*police = h_client(&d, "police");
	struct ss_client			*health = h_client(&d, "health_trust");
	char					*out, *html, path[600], args[1024], err[256];
	size_t					 len;
	int					 status;

	cr_expect_eq(ask_as(police, "S1001", "child_protection", NULL, NULL), 200);
	cr_expect_eq(ask_as(police, "S1001", "adult_safeguarding", NULL, NULL), 200);
	/* S1002 refused consent: a denial, then an override (D5, D15, D6). */
	cr_expect_eq(ask_as(health, "S1002", "adult_safeguarding", NULL, NULL), 200);
	cr_expect_eq(ask_as(health, "S1002", "adult_safeguarding", "adult_serious_harm",
	    NULL), 200);
	/* Many requests about one person, by a name that is markup. */
	rq.subject_id = "S1003";
	rq.purpose = "child_protection";
	rq.record_type = "person";
	rq.case_reference = "CASE-21";
	rq.practitioner = "Dr <b>O'Neil</b>";
	for (int i = 0; i < 10; i++) {
		cr_assert_eq(ss_disclose(police, &rq, &r, &e, &status, err, sizeof(err)), 0,
		    "%s", err);
		if (r)
			safeshare__v1__disclosure_response__free_unpacked(r, NULL);
		if (e)
			safeshare__v1__error__free_unpacked(e, NULL);
	}
	ss_client_free(police);
	ss_client_free(health);

	snprintf(path, sizeof(path), "%s/report.html", d.dir);
	snprintf(args, sizeof(args), "audit report --html %s", path);
	cr_expect_eq(cli("auditor", args, &out), 0, "%s", out);
	free(out);
	cr_assert_not_null(html = file_read(path, 2 << 20, &len, NULL, NULL, 0));
	cr_expect(strncmp(html, "<!DOCTYPE html>", 15) == 0);
	/* Nothing runs and nothing is fetched. */
	cr_expect(strstr(html, "<script") == NULL);
	cr_expect(strstr(html, "http://") == NULL && strstr(html, "https://") == NULL);
	cr_expect(strstr(html, "src=") == NULL && strstr(html, "href=") == NULL &&
	    strstr(html, "url(") == NULL && strstr(html, "@import") == NULL);
	/* The charts, drawn with a size, each with its table. */
	cr_expect(strstr(html, "id=\"per-day\" role=\"img\" width=\"900\" height=\"300\"")
	    != NULL, "%s", html);
	cr_expect(strstr(html, "id=\"overrides\"") != NULL);
	cr_expect(strstr(html, "id=\"reviews\"") != NULL);
	cr_expect(strstr(html, "id=\"matrix\"") != NULL);
	cr_expect(strstr(html, "id=\"deny-reasons\"") != NULL);
	cr_expect(strstr(html, "id=\"kinds\"") != NULL);
	cr_expect_geq(count_of(html, "<details>"), 6);
	cr_expect_eq(count_of(html, "<svg"), count_of(html, "<details>"));
	cr_expect(strstr(html, "<rect x=") != NULL);
	cr_expect(strstr(html, "height=\"0.0\"") == NULL, "no bar of no height");
	/* The log verifies; its latest checkpoint; the pending items. */
	cr_expect(strstr(html, "class=\"ok\">verifies") != NULL, "%s", html);
	cr_expect(strstr(html, "Latest signed checkpoint") != NULL);
	cr_expect(strstr(html, "Overrides awaiting review<b>1</b>") != NULL, "%s", html);
	cr_expect(strstr(html, "Inform-the-subject backlog (D6)<b>1</b>") != NULL);
	/* The patterns, escaped. */
	cr_expect(strstr(html, "Dr &lt;b&gt;O&#39;Neil&lt;/b&gt;") != NULL, "%s", html);
	cr_expect(strstr(html, "<b>O'Neil") == NULL);
	cr_expect(strstr(html, "about one person: 1</h3>") != NULL, "%s", html);
	cr_expect(strstr(html, "within a day: 1</h3>") != NULL, "%s", html);
	free(html);

	cr_expect_eq(cli("guardian", "audit report --json", &out), 0, "%s", out);
	cr_expect(strstr(out, "\"reviews\":{\"upheld\":0,\"not_upheld\":0,\"pending\":1,")
	    != NULL, "%s", out);
	cr_expect(strstr(out, "\"practitioner\":\"Dr <b>O'Neil</b>\"") != NULL, "%s", out);
	cr_expect(strstr(out, "\"deny_then_override\":1") != NULL, "%s", out);
	cr_expect(strstr(out, "\"verify\":{\"ok\":true") != NULL, "%s", out);
	free(out);

	/* Another agency's requests only. */
	cr_expect_eq(cli("auditor", "audit report --json --agency housing", &out), 0);
	cr_expect(strstr(out, "\"entries\":0,") != NULL, "%s", out);
	free(out);

	/* Only auditors and the guardian; one output form. */
	cr_expect_eq(cli("police", "audit report --json", &out), 4, "%s", out);
	cr_expect(strstr(out, "not_auditor") != NULL, "%s", out);
	free(out);
	cr_expect_eq(cli("auditor", "audit report", &out), 2, "%s", out);
	free(out);
}

/*
 * Issue 13, attack 4: the log deleted while the daemon runs. Requests
 * were answered 200 into unlinked files, and a restart began a new log
 * from 0. Now every request gets 503, /healthz fails, and a start (or -t)
 * on the empty path is refused while the subject index remembers the log.
 */
Test(audit_api, a_deleted_log_fails_closed_and_is_not_replaced_silently, .timeout = 60)
{
	struct ss_client	*police = h_client(&d, "police");
	char			 cmd[2048], *body = NULL, *out = NULL;

	H_SQLITE_ONLY("deleting the log file");
	cr_expect_eq(ask_as(police, "S1001", "child_protection", NULL, NULL), 200);
	/* Let the subject index take the log in (it is updated once a second). */
	sleep(2);
	snprintf(cmd, sizeof(cmd), "rm -f %s %s-wal %s-shm", d.audit, d.audit, d.audit);
	cr_assert_eq(h_run(cmd, NULL), 0);
	cr_expect_eq(ask_as(police, "S1001", "child_protection", NULL, NULL), 503,
	    "nothing released into a deleted log");
	cr_expect_eq(h_get(&d, "auditor", "/healthz", &body), 503);
	free(body);
	ss_client_free(police);
	h_stop(&d);
	snprintf(cmd, sizeof(cmd), "%s -t -c %s 2>&1", SAFESHARED_BIN, d.conf);
	cr_expect_neq(h_run(cmd, &out), 0, "-t refuses: %s", out ? out : "");
	cr_expect(out != NULL && strstr(out, "start with -N") != NULL, "%s",
	    out ? out : "");
	free(out);
}

/* The one new_log entry's justification, or NULL (the caller frees it). */
static char *
new_log_note(void)
{
	sqlite3		*db;
	sqlite3_stmt	*st;
	char		*note = NULL;

	cr_assert_eq(sqlite3_open_v2(d.audit, &db, SQLITE_OPEN_READONLY, NULL),
	    SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(db, "SELECT justification FROM entries "
	    "WHERE kind = 'new_log'", -1, &st, NULL), SQLITE_OK, "%s",
	    sqlite3_errmsg(db));
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL)
		note = strdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(db);
	return note;
}

/*
 * Issue 13 item 5: the log AND its subject index deleted while the daemon
 * is stopped (rm audit.db* audit.db-subjects*) used to give a fresh, empty
 * log, accepted silently. The store remembers the log it was used with and
 * its size: -t and the start refuse, saying what happened and what to do;
 * -N starts a new log whose first entry names the old one.
 */
Test(audit_api, a_log_deleted_with_its_index_is_refused_by_the_store, .timeout = 90)
{
	struct ss_client	*police = h_client(&d, "police");
	char			 cmd[4096], *out = NULL, *note;
	long			 before;

	H_SQLITE_ONLY("the log file and its subject index deleted, the store "
	    "file kept");
	cr_expect_eq(ask_as(police, "S1001", "child_protection", NULL, NULL), 200);
	ss_client_free(police);
	cr_assert_eq(h_stop(&d), 0);
	before = h_log_count(&d, NULL);
	cr_assert_gt(before, 0);
	snprintf(cmd, sizeof(cmd), "rm -f %s %s-wal %s-shm %s-subjects "
	    "%s-subjects-wal %s-subjects-shm", d.audit, d.audit, d.audit, d.audit,
	    d.audit, d.audit);
	cr_assert_eq(h_run(cmd, NULL), 0);

	snprintf(cmd, sizeof(cmd), "%s -t -c %s 2>&1", SAFESHARED_BIN, d.conf);
	cr_expect_neq(h_run(cmd, &out), 0, "-t refuses: %s", out ? out : "");
	cr_expect(out != NULL && strstr(out, "the store remembers log") != NULL &&
	    strstr(out, "the log is missing") != NULL &&
	    strstr(out, "restore it from backup, or start with -N") != NULL, "%s",
	    out ? out : "");
	free(out);
	out = NULL;

	/* The start itself, bounded: it must refuse, not serve. */
	snprintf(cmd, sizeof(cmd), "timeout 30 %s -c %s 2>&1", SAFESHARED_BIN, d.conf);
	cr_expect_eq(h_run(cmd, &out), 1, "start refuses: %s", out ? out : "");
	cr_expect(out != NULL && strstr(out, "the store remembers log") != NULL &&
	    strstr(out, "this is a new, empty log") != NULL &&
	    strstr(out, "start with -N") != NULL, "%s", out ? out : "");
	free(out);

	/* -N proceeds, and the new log's first entry says what it replaced. */
	d.new_log = 1;
	h_start(&d);
	d.new_log = 0;
	cr_assert_eq(h_stop(&d), 0);
	note = new_log_note();
	cr_assert_not_null(note, "no new_log entry");
	cr_expect(strstr(note, "started with -N where the store remembers log ") !=
	    NULL, "%s", note);
	{
		char want[64];

		snprintf(want, sizeof(want), "with %ld entries", before);
		cr_expect(strstr(note, want) != NULL, "%s (want %s)", note, want);
	}
	free(note);
	cr_expect_eq(h_log_count(&d, "seq = 1 AND kind = 'new_log'"), 1,
	    "the first entry of the new log");

	/* From then on the store remembers the new log: a plain start is fine. */
	h_start(&d);

	/*
	 * The log restored from an older copy (same log, fewer entries than
	 * the store's high-water mark): refused; -N accepts it, says so in
	 * it, and the store takes its size as the new mark.
	 */
	cr_assert_eq(h_stop(&d), 0);
	snprintf(cmd, sizeof(cmd), "cp %s %s.old", d.audit, d.audit);
	cr_assert_eq(h_run(cmd, NULL), 0);
	h_start(&d);
	police = h_client(&d, "police");
	cr_expect_eq(ask_as(police, "S1001", "child_protection", NULL, NULL), 200);
	ss_client_free(police);
	cr_assert_eq(h_stop(&d), 0);
	snprintf(cmd, sizeof(cmd), "rm -f %s-wal %s-shm && mv %s.old %s", d.audit,
	    d.audit, d.audit, d.audit);
	cr_assert_eq(h_run(cmd, NULL), 0);
	snprintf(cmd, sizeof(cmd), "timeout 30 %s -c %s 2>&1", SAFESHARED_BIN, d.conf);
	cr_expect_eq(h_run(cmd, &out), 1, "a cut log is refused: %s", out ? out : "");
	cr_expect(out != NULL && strstr(out, "entries were cut from its end") != NULL,
	    "%s", out ? out : "");
	free(out);
	d.new_log = 1;
	h_start(&d);
	d.new_log = 0;
	cr_assert_eq(h_stop(&d), 0);
	cr_expect_eq(h_log_count(&d, "kind = 'new_log' AND reason = 'log_restored'"),
	    1);
	h_start(&d);
}
