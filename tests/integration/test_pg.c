/*
 * The daemon on PostgreSQL (issue 19): safeshared with storage:
 * postgresql, its store and its log in a schema of the fixture's cluster
 * (harness_pg.c; ctest sets SAFESHARE_TEST_STORAGE=postgresql and the
 * fixture "pg"). The demo data loaded with -l, disclosures allowed and
 * refused, a holder batch, a locate, and the whole log verified by the
 * auditor's own tool against the daemon's database.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static struct daemon d;

H_DEMO_SUITE(pg, d, 120);

static Safeshare__V1__DisclosureResponse *
ask(const char *agency, const char *subject, const char *purpose,
    const char *rt, int *status)
{
	struct h_ask a = { subject, purpose, rt, 0, NULL, NULL, NULL };

	return h_ask(&d, agency, &a, status, NULL);
}

/* safeshare audit verify --postgresql on the daemon's own database. */
static int
verify(char **out)
{
	char cmd[4096];

	snprintf(cmd, sizeof(cmd), "%s audit verify --postgresql \"%s\" --pubkey "
	    "%s/pki/audit-signing.pub 2>&1", SAFESHARE_BIN, d.pg_conninfo, d.dir);
	return h_run(cmd, out);
}

Test(pg, the_daemon_runs_on_postgresql)
{
	char	 cmd[1024], *out;

	cr_assert_neq(d.pg_conninfo[0], '\0', "SAFESHARE_TEST_STORAGE=postgresql "
	    "is not set: this suite runs under ctest");
	/* -t says which backend. */
	snprintf(cmd, sizeof(cmd), "%s -t -c %s 2>&1", SAFESHARED_BIN, d.conf);
	cr_expect_eq(h_run(cmd, &out), 0, "%s", out);
	cr_expect(strstr(out, ": ok; protocol") != NULL &&
	    strstr(out, "; storage postgresql") != NULL, "%s", out);
	free(out);
	/* No file of the SQLite backend appeared. */
	snprintf(cmd, sizeof(cmd), "ls %s/*.db 2>/dev/null | wc -l", d.dir);
	cr_expect_eq(h_run(cmd, &out), 0);
	cr_expect_eq(atoi(out), 0, "SQLite files made: %s", out);
	free(out);
	/* The demo data went into PostgreSQL, and its load into the log (issue 15). */
	cr_expect_gt(h_pg_int(&d, "SELECT count(*) FROM records"), 0);
	cr_expect_eq(h_log_count(&d, "kind = 'store' AND reason = 'data_file'"), 1);
	cr_expect_eq(h_log_count(&d, "kind = 'store' AND decision = 'opened'"), 1);
}

Test(pg, disclosures_are_decided_from_and_logged_in_postgresql)
{
	Safeshare__V1__DisclosureResponse	*r;
	int					 status;
	char					*out;

	r = ask("police", "S1001", "child_protection", "person", &status);
	cr_assert_eq(status, 200);
	cr_assert_not_null(r);
	cr_expect_eq(r->decision, SAFESHARE__V1__DECISION__DECISION_ALLOW);
	cr_expect_eq(r->n_released, 5, "D2: the rule's fields");
	/* D7: the reply names its entry, committed before the reply left. */
	cr_expect_eq(h_pg_int(&d, "SELECT count(*) FROM log_entries WHERE "
	    "decision = 'allow' AND agency = 'police' AND subject = 'S1001'"), 1);
	cr_expect_eq(h_pg_int(&d, "SELECT max(seq) FROM log_entries WHERE "
	    "subject = 'S1001'"), (long long)r->disclosure_id);
	cr_expect_not_null(r->receipt, "a signed checkpoint and proof");
	safeshare__v1__disclosure_response__free_unpacked(r, NULL);
	/* Flagged subject, refused consent: D4/D3 as on SQLite. */
	r = ask("health_trust", "S1001", "child_protection", "person", &status);
	if (r != NULL)
		safeshare__v1__disclosure_response__free_unpacked(r, NULL);
	cr_expect_eq(h_log_count(&d, "agency = 'health_trust' AND subject = 'S1001'"),
	    1, "every decision is logged, allowed or not");
	/* Every commit signed its checkpoint; the chain verifies. */
	cr_expect_gt(h_pg_int(&d, "SELECT count(*) FROM log_checkpoints"), 0);
	cr_expect_eq(verify(&out), 0, "%s", out);
	free(out);
}

Test(pg, a_holder_batch_is_applied_and_logged)
{
	char	*out;

	h_put_child(&d);
	cr_assert_eq(H_HOLD(&d, "childrens_social_care", "op=flag",
	    "subject=S-C1", "flag=domestic_abuse", "--", "op=consent",
	    "subject=S-C1", "consent=granted", "agencies=police"), 200);
	cr_expect_eq(h_pg_int(&d, "SELECT count(*) FROM records WHERE "
	    "subject = 'S-C1'"), 2);
	cr_expect_eq(h_pg_int(&d, "SELECT count(*) FROM flags WHERE "
	    "subject = 'S-C1'"), 1);
	cr_expect_eq(h_pg_int(&d, "SELECT count(*) FROM holder_batches"), 2);
	cr_expect_eq(h_log_count(&d, "kind = 'holder' AND subject = 'S-C1'"), 4);
	cr_expect_eq(h_log_count(&d, "position('Ruby' in released || consent || "
	    "withheld) > 0"), 0, "record values are never logged");
	cr_expect_eq(verify(&out), 0, "%s", out);
	free(out);
}

Test(pg, locate_reads_the_subject_index_in_postgresql)
{
	char	 cmd[2048], *out;

	snprintf(cmd, sizeof(cmd), "%s locate --nhs-number '943 476 5919' "
	    "--purpose child_protection --case C-1 --practitioner 'DC Jones' "
	    "--json --server %s --cert %s/pki/police.crt --key %s/pki/police.key "
	    "--ca %s/pki/ca.crt 2>&1", SAFESHARE_BIN, d.server, d.dir, d.dir,
	    d.dir);
	cr_expect_eq(h_run(cmd, &out), 0, "%s", out);
	cr_expect(strstr(out, "\"holder\":\"health_trust\"") != NULL, "%s", out);
	free(out);
	/* D7: the locate is logged (an entry per holding it names). */
	cr_expect_geq(h_log_count(&d, "kind = 'locate' AND agency = 'police'"), 1);
}

/*
 * Issue 13 item 5 on PostgreSQL: the store remembers its log (store_log),
 * so a restart finds the same log, and the log's tables dropped while the
 * daemon was stopped (a new, empty log at the next start) are refused
 * unless -N, which the new log then records.
 */
Test(pg, a_log_dropped_behind_the_stores_back_is_refused_at_start)
{
	char	cmd[2048], *out;

	cr_assert_eq(h_stop(&d), 0);
	h_start(&d);
	cr_assert_eq(h_stop(&d), 0);
	h_pg_run(&d, "DROP TABLE log_head, log_entries, log_tree, log_checkpoints");
	snprintf(cmd, sizeof(cmd), "timeout 20 %s -c %s 2>&1", SAFESHARED_BIN,
	    d.conf);
	cr_expect_eq(h_run(cmd, &out), 1, "%s", out);
	cr_expect(strstr(out, "the log was deleted, replaced or cut") != NULL,
	    "%s", out);
	free(out);
	d.new_log = 1;
	h_start(&d);
	cr_expect_eq(h_log_count(&d, "kind = 'new_log' AND reason = "
	    "'previous_log_missing'"), 1);
}
