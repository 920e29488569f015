/*
 * Holders and practitioners end to end, over real mutual TLS against the
 * real daemon and an initially empty store: holders write records, consent
 * and flags; practitioners get exactly what the protocol and consent allow
 * (D2-D6, D8, D9, D11, D12).
 */
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <criterion/criterion.h>
#include <sqlite3.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "import.h"

static struct daemon d;

H_SUITE(holder_api, d, H_RUNNING, 60);

/* The harness's holder write (harness_hold.c) against this suite's daemon. */
#define HOLD(agency, ...)	H_HOLD(&d, agency, __VA_ARGS__)

static const Safeshare__V1__ReleasedField *
released(const Safeshare__V1__DisclosureResponse *r, const char *name)
{
	for (size_t i = 0; i < r->n_released; i++)
		if (strcmp(r->released[i]->name, name) == 0)
			return r->released[i];
	return NULL;
}

static const char *
withheld(const Safeshare__V1__DisclosureResponse *r, const char *name)
{
	for (size_t i = 0; i < r->n_withheld; i++)
		if (strcmp(r->withheld[i]->name, name) == 0)
			return r->withheld[i]->reason;
	return NULL;
}

Test(holder_api, domestic_abuse_flag_withholds_address_from_police_only)
{
	struct h_ask				 a = { "S-C1", "child_protection", "person", 0, NULL, NULL, NULL };
	Safeshare__V1__DisclosureResponse	*r;
	int					 status;

	h_put_child(&d);
	r = h_ask(&d, "police", &a, &status, NULL);
	cr_assert_eq(status, 200);
	cr_expect_str_eq(released(r, "address")->value, "4 Mill Lane, Exampletown");
	safeshare__v1__disclosure_response__free_unpacked(r, NULL);

	cr_assert_eq(HOLD("childrens_social_care", "op=flag", "subject=S-C1",
	    "flag=domestic_abuse"), 200);
	r = h_ask(&d, "police", &a, &status, NULL);
	cr_assert_eq(status, 200);
	cr_expect_null(released(r, "address"), "D12: the flag withholds the address");
	cr_expect_str_eq(withheld(r, "address"), "flag:domestic_abuse");
	cr_expect_str_eq(withheld(r, "phone"), "flag:domestic_abuse");
	cr_expect_not_null(released(r, "full_name"));
	cr_expect_eq(r->decision, SAFESHARE__V1__DECISION__DECISION_PARTIAL);
	/* D8, D9: labelled and dated. */
	cr_expect_eq(released(r, "full_name")->label, SAFESHARE__V1__LABEL__LABEL_FACT);
	cr_expect_eq(released(r, "full_name")->last_verified, 1793491200 /* 2026-11-01 */);
	cr_expect_gt(r->record_age_seconds, 0);
	cr_expect(strstr(r->lawful_basis, "Art 6(1)(e)") != NULL);
	cr_expect_gt(r->disclosure_id, 0);
	safeshare__v1__disclosure_response__free_unpacked(r, NULL);

	/* Children's social care's rule does not name the flag. */
	r = h_ask(&d, "childrens_social_care", &a, &status, NULL);
	cr_assert_eq(status, 200);
	cr_expect_str_eq(released(r, "address")->value, "4 Mill Lane, Exampletown");
	safeshare__v1__disclosure_response__free_unpacked(r, NULL);

	/* Unflagged, the address is released again; the history is kept. */
	cr_assert_eq(HOLD("childrens_social_care", "op=unflag", "subject=S-C1",
	    "flag=domestic_abuse"), 200);
	r = h_ask(&d, "police", &a, &status, NULL);
	cr_expect_not_null(released(r, "address"));
	safeshare__v1__disclosure_response__free_unpacked(r, NULL);
	/* Police flagged, and CSC (which holds no gp_practice): partial; the rest full. */
	cr_expect_eq(h_log_count(&d, "reason = 'partially_released'"), 2);
	cr_expect_eq(h_log_count(&d, "reason = 'released'"), 2);
}

/* Health holds an adult; its own adult-safeguarding rule needs consent (D3, D4). */
static void
put_adult(void)
{
	cr_assert_eq(HOLD("health_trust", "subject=S-A1", "record_type=person",
	    "full_name=Alex Adult", "date_of_birth=1960-02-03", "postcode=EX2 7QQ",
	    "gp_practice=Riverside Surgery"), 200);
}

Test(holder_api, consent_granted_then_withdrawn_then_expired)
{
	struct h_ask				 a = { "S-A1", "adult_safeguarding", "person", 0, NULL, NULL, NULL };
	Safeshare__V1__DisclosureResponse	*r;
	int					 status;

	put_adult();
	r = h_ask(&d, "health_trust", &a, &status, NULL);
	cr_expect_eq(r->decision, SAFESHARE__V1__DECISION__DECISION_DENY);
	cr_expect_str_eq(r->reason, "consent_required");
	safeshare__v1__disclosure_response__free_unpacked(r, NULL);

	cr_assert_eq(HOLD("health_trust", "op=consent", "subject=S-A1", "consent=granted",
	    "agencies=health_trust", "purposes=adult_safeguarding"), 200);
	r = h_ask(&d, "health_trust", &a, &status, NULL);
	cr_expect_eq(r->decision, SAFESHARE__V1__DECISION__DECISION_ALLOW);
	cr_expect_str_eq(released(r, "date_of_birth")->value, "65-74",
	    "the rule's age_band transform (D2)");
	cr_expect_str_eq(released(r, "date_of_birth")->transform, "age_band");
	safeshare__v1__disclosure_response__free_unpacked(r, NULL);

	cr_assert_eq(HOLD("health_trust", "op=consent", "subject=S-A1",
	    "consent=withdrawn"), 200);
	r = h_ask(&d, "health_trust", &a, &status, NULL);
	cr_expect_eq(r->decision, SAFESHARE__V1__DECISION__DECISION_DENY);
	cr_expect_str_eq(r->reason, "consent_refused");
	cr_expect_eq(r->n_released, 0);
	safeshare__v1__disclosure_response__free_unpacked(r, NULL);

	/* A new grant that has already expired does not count. */
	cr_assert_eq(HOLD("health_trust", "op=consent", "subject=S-A1",
	    "consent=granted", "expires=2026-01-31"), 200);
	r = h_ask(&d, "health_trust", &a, &status, NULL);
	cr_expect_str_eq(r->reason, "consent_required");
	safeshare__v1__disclosure_response__free_unpacked(r, NULL);
	cr_expect_eq(h_log_count(&d, "reason = 'consent_refused'"), 1);
	cr_expect_eq(h_log_count(&d, "reason = 'consent_required'"), 2);
}

Test(holder_api, override_needs_allowed_code_and_justification)
{
	struct h_ask				 a = { "S-A1", "adult_safeguarding", "person", 0, NULL, NULL, NULL };
	Safeshare__V1__DisclosureResponse	*r;
	int					 status;

	put_adult();
	cr_assert_eq(HOLD("health_trust", "op=consent", "subject=S-A1",
	    "consent=refused"), 200);
	a.override = "adult_serious_harm";
	r = h_ask(&d, "health_trust", &a, &status, NULL);
	cr_expect_str_eq(r->reason, "justification_required", "D5");
	cr_expect_eq(r->n_released, 0);
	safeshare__v1__disclosure_response__free_unpacked(r, NULL);

	a.override = "child_significant_harm";
	a.justification = "The subject has told staff he intends to harm a named "
	    "neighbour tonight.";
	r = h_ask(&d, "health_trust", &a, &status, NULL);
	cr_expect_str_eq(r->reason, "override_not_allowed");
	safeshare__v1__disclosure_response__free_unpacked(r, NULL);

	a.override = "adult_serious_harm";
	r = h_ask(&d, "health_trust", &a, &status, NULL);
	cr_expect_str_eq(r->reason, "override");
	cr_expect(r->review_required, "D15: flagged for senior review");
	cr_expect(r->inform_subject, "D6: inform the subject unless waived");
	cr_expect_gt(r->n_released, 0);
	safeshare__v1__disclosure_response__free_unpacked(r, NULL);

	a.waiver = "Telling him would warn him before police can act.";
	r = h_ask(&d, "health_trust", &a, &status, NULL);
	cr_expect(r->review_required);
	cr_expect(!r->inform_subject, "D6: a recorded reason not to inform");
	safeshare__v1__disclosure_response__free_unpacked(r, NULL);
	cr_expect_eq(h_log_count(&d, "reason = 'override'"), 2);
}

Test(holder_api, consultation_releases_no_identifying_field)
{
	struct h_ask				 a = { "S-C1", "child_protection", "concern", 1, NULL, NULL, NULL };
	Safeshare__V1__DisclosureResponse	*r;
	int					 status;

	h_put_child(&d);
	r = h_ask(&d, "police", &a, &status, NULL);
	cr_assert_eq(status, 200);
	cr_expect_eq(r->decision, SAFESHARE__V1__DECISION__DECISION_CONSULTATION);
	cr_expect_not_null(released(r, "summary"));
	cr_expect_null(released(r, "allocated_worker"), "D11");
	cr_expect_str_eq(withheld(r, "allocated_worker"), "consultation");
	cr_expect_eq(released(r, "risk_level")->label, SAFESHARE__V1__LABEL__LABEL_OPINION,
	    "D8: opinion labelled as such");
	safeshare__v1__disclosure_response__free_unpacked(r, NULL);

	/*
	 * Every person field identifies: a consultation that releases
	 * nothing is still a consultation, each field in withheld[] (D11,
	 * issue 15 item 1), answered and logged as one.
	 */
	a.record_type = "person";
	r = h_ask(&d, "police", &a, &status, NULL);
	cr_assert_eq(status, 200);
	cr_expect_eq(r->n_released, 0);
	cr_expect_eq(r->decision, SAFESHARE__V1__DECISION__DECISION_CONSULTATION);
	cr_expect_str_eq(r->reason, "consultation");
	cr_expect_str_eq(withheld(r, "full_name"), "consultation");
	cr_expect_str_eq(withheld(r, "phone"), "consultation");
	safeshare__v1__disclosure_response__free_unpacked(r, NULL);
	cr_expect_eq(h_log_count(&d, "decision = 'consultation'"), 2);
	cr_expect_eq(h_log_count(&d, "decision = 'deny'"), 0);
}

/*
 * Issue 15 items 2 and 8: a deny says what was withheld and why (D2), and
 * a consultation needs no consent (D11) but is logged as one.
 */
Test(holder_api, deny_says_what_was_withheld_and_consultation_needs_no_consent)
{
	struct h_ask				 a = { "S-A1", "adult_safeguarding", "person", 0, NULL, NULL, NULL };
	Safeshare__V1__DisclosureResponse	*r;
	int					 status;

	put_adult();
	cr_assert_eq(HOLD("health_trust", "op=consent", "subject=S-A1",
	    "consent=refused"), 200);
	r = h_ask(&d, "health_trust", &a, &status, NULL);
	cr_assert_eq(status, 200);
	cr_expect_eq(r->decision, SAFESHARE__V1__DECISION__DECISION_DENY);
	cr_expect_str_eq(r->reason, "consent_refused");
	cr_expect_str_eq(withheld(r, "full_name"), "consent_refused");
	cr_expect_str_eq(withheld(r, "gp_practice"), "consent_refused");
	safeshare__v1__disclosure_response__free_unpacked(r, NULL);

	a.consult = 1;
	r = h_ask(&d, "health_trust", &a, &status, NULL);
	cr_assert_eq(status, 200);
	cr_expect_eq(r->decision, SAFESHARE__V1__DECISION__DECISION_CONSULTATION,
	    "a refusal does not block a consultation");
	cr_expect_not_null(released(r, "gp_practice"));
	cr_expect_null(released(r, "full_name"));
	cr_expect(!r->review_required && !r->inform_subject);
	safeshare__v1__disclosure_response__free_unpacked(r, NULL);
	cr_expect_eq(h_log_count(&d, "decision = 'consultation' AND consent = 'refused' "
	    "AND released = 'gp_practice'"), 1);
}

/*
 * Issue 15 item 9: a field name the record type does not have is withheld
 * unknown_field and makes the answer partial, in the reply and the log.
 */
Test(holder_api, unknown_field_name_is_withheld_not_ignored)
{
	Safeshare__V1__DisclosureRequest	 rq = SAFESHARE__V1__DISCLOSURE_REQUEST__INIT;
	Safeshare__V1__DisclosureResponse	*r = NULL;
	Safeshare__V1__Error			*e = NULL;
	struct ss_client			*c;
	char					*fields[] = { "full_name", "nhs_number" };
	char					 err[512];
	int					 status;

	h_put_child(&d);
	c = h_client(&d, "police");
	rq.subject_id = "S-C1";
	rq.purpose = "child_protection";
	rq.record_type = "person";
	rq.case_reference = "CASE-78";
	rq.practitioner = "PC 123 Example";
	rq.fields = fields;
	rq.n_fields = 2;
	cr_assert_eq(ss_disclose(c, &rq, &r, &e, &status, err, sizeof(err)), 0, "%s", err);
	ss_client_free(c);
	cr_assert_not_null(r);
	cr_expect_eq(r->decision, SAFESHARE__V1__DECISION__DECISION_PARTIAL);
	cr_expect_str_eq(r->reason, "partially_released");
	cr_expect_not_null(released(r, "full_name"));
	cr_expect_str_eq(withheld(r, "nhs_number"), "unknown_field");
	safeshare__v1__disclosure_response__free_unpacked(r, NULL);
	/* replace(), not instr(): SQL both backends know (h_log_count()). */
	cr_expect_eq(h_log_count(&d, "decision = 'partial' AND "
	    "replace(withheld, 'nhs_number:unknown_field', '') != withheld"), 1);
}

Test(holder_api, unknown_subject_is_404_whoever_holds_it)
{
	struct h_ask			 a = { "S-NOBODY", "child_protection", "person", 0, NULL, NULL, NULL };
	Safeshare__V1__Error		*e;
	int				 status;

	cr_expect_null(h_ask(&d, "police", &a, &status, &e));
	cr_expect_eq(status, 404);
	cr_expect_str_eq(e->code, "unknown_subject");
	cr_expect_gt(e->disclosure_id, 0, "the refusal is logged too");
	safeshare__v1__error__free_unpacked(e, NULL);
}

Test(holder_api, holders_only_touch_their_own_subjects)
{
	Safeshare__V1__Error	*e;

	h_put_child(&d);
	/* Issue 14 item 6: answered as if the subject were unknown. */
	cr_expect_eq(h_hold_ok(&d, "health_trust", &e, (const char *const[]){ "op=flag",
	    "subject=S-C1", "flag=domestic_abuse", NULL }), 404);
	cr_expect_str_eq(e->code, "unknown_subject");
	cr_expect_null(strstr(e->message, "childrens_social_care"));
	safeshare__v1__error__free_unpacked(e, NULL);
	cr_expect_eq(h_hold_ok(&d, "health_trust", &e, (const char *const[]){ "subject=S-C1",
	    "record_type=person", "full_name=Someone Else", NULL }), 403);
	safeshare__v1__error__free_unpacked(e, NULL);
	cr_expect_eq(h_hold_ok(&d, "police", &e, (const char *const[]){ "subject=S-P1",
	    "record_type=person", "full_name=Pat Police", NULL }), 403);
	cr_expect_str_eq(e->code, "not_holder", "police has no holder role");
	safeshare__v1__error__free_unpacked(e, NULL);
	cr_expect_eq(h_hold_ok(&d, "childrens_social_care", &e, (const char *const[]){
	    "subject=S-C2", "record_type=person", "full_name=Kim", "shoe_size=4",
	    "date_of_birth=yesterday", NULL }), 400);
	cr_expect_eq(e->n_problems, 2);
	cr_expect_str_eq(e->problems[0]->field, "shoe_size");
	cr_expect_str_eq(e->problems[1]->field, "date_of_birth");
	safeshare__v1__error__free_unpacked(e, NULL);
}

/*
 * Issue 15 item 3: a consent decision's date is accepted from the holder
 * (not in the future) and kept with it in the log; a boolean field takes
 * exactly true or false.
 */
Test(holder_api, consent_decided_date_and_boolean_fields)
{
	Safeshare__V1__Error	*e = NULL;
	time_t			 t = time(NULL) + 2 * 86400;
	char			 future[32], decided[64];

	put_adult();
	strftime(future, sizeof(future), "%Y-%m-%d", gmtime(&t));
	snprintf(decided, sizeof(decided), "decided=%s", future);
	cr_expect_eq(h_hold_ok(&d, "health_trust", &e, (const char *const[]){ "op=consent",
	    "subject=S-A1", "consent=granted", decided, NULL }), 400);
	cr_assert_not_null(e);
	cr_expect_str_eq(e->problems[0]->field, "decided");
	cr_expect(strstr(e->problems[0]->message, "in the future") != NULL, "%s",
	    e->problems[0]->message);
	safeshare__v1__error__free_unpacked(e, NULL);

	cr_assert_eq(HOLD("health_trust", "op=consent", "subject=S-A1",
	    "consent=refused", "decided=2019-04-01"), 200);
	cr_expect_eq(h_log_count(&d, "kind = 'holder' AND reason = 'consent' AND "
	    "consent = 'refused agencies=* purposes=* decided=2019-04-01'"), 1);

	cr_expect_eq(h_hold_ok(&d, "health_trust", &e, (const char *const[]){ "subject=S-A1",
	    "record_type=concern", "summary=Seen at clinic", "marac_referred=yes",
	    NULL }), 400);
	cr_assert_not_null(e);
	cr_expect_str_eq(e->problems[0]->field, "marac_referred");
	safeshare__v1__error__free_unpacked(e, NULL);
	cr_expect_eq(HOLD("health_trust", "subject=S-A1", "record_type=concern",
	    "summary=Seen at clinic", "marac_referred=true"), 200);
}

/*
 * Issue 15 item 4: a store has an id, the log names the store each holder
 * batch was for, and replacing the store (deploy/quickstart.sh deletes
 * store.db and loads the demo data again with -l, keeping audit.db) is a
 * log entry of its own, as the load is; the earlier store's batches are
 * not rolled back at the next start, for they were applied (to it).
 */
Test(holder_api, replaced_store_is_logged_and_not_reconciled)
{
	char	 path[600], old[128];
	long	 holder_entries;

	H_SQLITE_ONLY("the store file replaced beside a kept log file");
	cr_expect_eq(h_log_count(&d, "kind = 'store' AND decision = 'opened' AND "
	    "reason = 'first' AND case_ref GLOB 'store:*'"), 1,
	    "a new store is named in the log when first opened");
	h_put_child(&d);
	holder_entries = h_log_count(&d, "kind = 'holder'");
	cr_assert_gt(holder_entries, 0);
	cr_expect_eq(h_log_count(&d, "kind = 'holder' AND case_ref = (SELECT case_ref "
	    "FROM entries WHERE kind = 'store')"), holder_entries,
	    "every holder entry names the store its batch was for");
	{
		sqlite3		*db;
		sqlite3_stmt	*st;

		cr_assert_eq(sqlite3_open_v2(d.audit, &db, SQLITE_OPEN_READONLY, NULL),
		    SQLITE_OK);
		cr_assert_eq(sqlite3_prepare_v2(db, "SELECT case_ref FROM entries WHERE "
		    "kind = 'store'", -1, &st, NULL), SQLITE_OK);
		cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
		snprintf(old, sizeof(old), "%s", sqlite3_column_text(st, 0));
		sqlite3_finalize(st);
		sqlite3_close(db);
	}

	/* What deploy/quickstart.sh does: a new store, the log kept. */
	cr_assert_eq(h_stop(&d), 0);
	unlink(d.store);
	snprintf(path, sizeof(path), "%s-wal", d.store);
	unlink(path);
	snprintf(path, sizeof(path), "%s-shm", d.store);
	unlink(path);
	h_load_demo(&d);
	h_start(&d);
	cr_expect_eq(h_log_count(&d, "decision = 'rolled_back'"), 0,
	    "the old store's batch was applied to it: nothing to roll back");
	snprintf(path, sizeof(path), "kind = 'store' AND decision = 'opened' AND "
	    "reason = 'replaced' AND justification = 'replaces %s' AND case_ref != '%s'",
	    old, old);
	cr_expect_eq(h_log_count(&d, path), 1, "the replacement is logged");
	cr_expect_eq(h_log_count(&d, "kind = 'store' AND decision = 'loaded' AND "
	    "reason = 'data_file' AND justification GLOB '*config/demo-data.yaml' AND "
	    "released GLOB 'subjects=6 loaded_at=*' AND case_ref = (SELECT case_ref "
	    "FROM entries WHERE kind = 'store' ORDER BY seq DESC LIMIT 1)"), 1,
	    "the -l load is logged, naming the new store");

	/* Restarting the same store adds nothing. */
	cr_assert_eq(h_stop(&d), 0);
	h_start(&d);
	cr_expect_eq(h_log_count(&d, "kind = 'store'"), 3);
	cr_expect_eq(h_log_count(&d, "decision = 'rolled_back'"), 0);
}
