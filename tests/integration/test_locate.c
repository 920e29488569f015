/*
 * One person, many holders (issue 17, D18, D19), end to end over real
 * mutual TLS: a person held by four holders who link one NHS number,
 * located by NHS number, by demographics and by a holder's local id;
 * locate leaving out a `locate: false` holder; ambiguous demographics;
 * consent that differs at each holder; the police's domestic_abuse flag
 * withholding the address health holds; a holder that cannot read or
 * change another holder's view of the same person; and the log entries
 * every locate leaves. Protocol: tests/data/locate/daemon-protocol.yaml.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static struct daemon d;

static const char data_yaml[] =
	"subjects:\n"
	"  - id: CSC-7\n"
	"    holder: childrens_social_care\n"
	"    nhs_number: \"943 476 5919\"\n"
	"    records:\n"
	"      person:\n"
	"        verified: 2026-10-02\n"
	"        fields: {full_name: \"Amelia Hart\", date_of_birth: \"2015-03-09\",\n"
	"          address: \"12 Orchard Row, Exampleton\", postcode: \"EX1 4QT\"}\n"
	"      concern:\n"
	"        verified: 2026-11-01\n"
	"        fields: {summary: \"Bruising reported by school\"}\n"
	"    consent:\n"
	"      - {state: refused, agencies: all, purposes: all}\n"
	"  - id: HLT-7\n"
	"    holder: health_trust\n"
	"    nhs_number: \"9434765919\"\n"
	"    records:\n"
	"      person:\n"
	"        verified: 2026-10-05\n"
	"        fields: {full_name: \"Amelia Hart\", date_of_birth: \"2015-03-09\",\n"
	"          address: \"Flat 2, 9 New Road, Exampleton\", postcode: \"EX1 4QT\",\n"
	"          gp_practice: \"Riverside Surgery\"}\n"
	"      concern:\n"
	"        verified: 2026-11-02\n"
	"        fields: {summary: \"Missed immunisations\"}\n"
	"    consent:\n"
	"      - {state: granted, agencies: all, purposes: all}\n"
	"  - id: POL-7\n"
	"    holder: police\n"
	"    nhs_number: \"9434765919\"\n"
	"    records:\n"
	"      person:\n"
	"        verified: 2026-11-20\n"
	"        fields: {full_name: \"Amelia Hart\", date_of_birth: \"2015-03-09\"}\n"
	"    flags: [domestic_abuse]\n"
	"  - id: DA-7\n"
	"    holder: da_service\n"
	"    nhs_number: \"9434765919\"\n"
	"    records:\n"
	"      refuge_stay:\n"
	"        verified: 2026-11-21\n"
	"        fields: {summary: \"In refuge since November\"}\n"
	"  - id: SAM-A\n"
	"    holder: childrens_social_care\n"
	"    records:\n"
	"      person:\n"
	"        verified: 2026-10-02\n"
	"        fields: {full_name: \"Sam O'Neil\", date_of_birth: \"2010-05-04\",\n"
	"          postcode: \"EX4 1AA\"}\n"
	"  - id: SAM-B\n"
	"    holder: health_trust\n"
	"    records:\n"
	"      person:\n"
	"        verified: 2026-10-02\n"
	"        fields: {full_name: \"Sam ONeil\", date_of_birth: \"2010-05-04\",\n"
	"          postcode: \"EX5 2BB\"}\n";

static void
setup(void)
{
	char	 path[600], cmd[2048];
	FILE	*f;

	h_setup(&d);
	snprintf(cmd, sizeof(cmd), "cp %s/tests/data/locate/daemon-protocol.yaml %s",
	    SOURCE_DIR, d.protocol);
	cr_assert_eq(h_run(cmd, NULL), 0);
	snprintf(path, sizeof(path), "%s/people.yaml", d.dir);
	cr_assert_not_null(f = fopen(path, "w"));
	fputs(data_yaml, f);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "%s -c %s -l %s >/dev/null 2>&1", SAFESHARED_BIN,
	    d.conf, path);
	cr_assert_eq(h_run(cmd, NULL), 0, "loading people.yaml failed");
	h_start(&d);
}

static void
teardown(void)
{
	h_cleanup(&d);
}

TestSuite(locate, .init = setup, .fini = teardown, .timeout = 60);

struct who {
	const char	*subject, *holder, *nhs, *family, *given, *dob, *postcode;
};

#define S(v)	((char *)((v) ? (v) : ""))

/* The person w names, into pr (its strings point into w, "" for NULL). */
static void
person_ref(Safeshare__V1__PersonRef *pr, const struct who *w)
{
	pr->holder = S(w->holder);
	pr->nhs_number = S(w->nhs);
	pr->family_name = S(w->family);
	pr->given_name = S(w->given);
	pr->date_of_birth = S(w->dob);
	pr->postcode = S(w->postcode);
}

/* POST /v1/locate as agency; returns the status, the answer or the Error. */
static int
locate(const char *agency, const char *purpose, const struct who *w,
    Safeshare__V1__LocateResponse **resp, Safeshare__V1__Error **ep)
{
	Safeshare__V1__LocateRequest	 rq = SAFESHARE__V1__LOCATE_REQUEST__INIT;
	Safeshare__V1__PersonRef	 pr = SAFESHARE__V1__PERSON_REF__INIT;
	Safeshare__V1__Error		*e = NULL;
	struct ss_client		*c = h_client(&d, agency);
	char				 err[512];
	int				 status;

	rq.purpose = S(purpose);
	rq.case_reference = "MASH-2026-17";
	rq.practitioner = "J. Doe, MASH";
	rq.subject_id = S(w->subject);
	person_ref(&pr, w);
	rq.person = &pr;
	*resp = NULL;
	cr_assert_eq(ss_call_message(c, "/v1/locate", &rq.base,
	    &safeshare__v1__locate_response__descriptor, (ProtobufCMessage **)resp, &e,
	    &status, err, sizeof(err)), 0, "%s", err);
	ss_client_free(c);
	if (ep != NULL)
		*ep = e;
	else if (e != NULL)
		safeshare__v1__error__free_unpacked(e, NULL);
	return status;
}

/* The answer as "holder:type+type;holder:type". */
static void
answer(const Safeshare__V1__LocateResponse *r, char *out, size_t len)
{
	out[0] = '\0';
	for (size_t i = 0; i < r->n_holders; i++) {
		snprintf(out + strlen(out), len - strlen(out), "%s%s:", i ? ";" : "",
		    r->holders[i]->holder);
		for (size_t k = 0; k < r->holders[i]->n_record_types; k++)
			snprintf(out + strlen(out), len - strlen(out), "%s%s", k ? "+" : "",
			    r->holders[i]->record_types[k]);
	}
}

static void
expect_located(const char *agency, const char *purpose, const struct who *w,
    const char *want)
{
	Safeshare__V1__LocateResponse	*r;
	char				 got[512];

	cr_assert_eq(locate(agency, purpose, w, &r, NULL), 200, "%s", want);
	answer(r, got, sizeof(got));
	cr_expect_str_eq(got, want);
	cr_expect_gt(r->disclosure_id, 0);
	cr_expect_not_null(r->receipt, "the answer carries its receipt");
	protobuf_c_message_free_unpacked(&r->base, NULL);
}

static const struct who amelia_nhs = { .nhs = "943 476 5919" };

/* D19: only what a rule for the purpose lets the requester ask for. */
Test(locate, by_nhs_number_names_holders_and_record_types_only)
{
	expect_located("police", "child_protection", &amelia_nhs,
	    "childrens_social_care:concern+person;health_trust:concern+person;"
	    "police:person");
	/* Housing's only rule is housing_support/person. */
	expect_located("housing", "housing_support", &amelia_nhs,
	    "childrens_social_care:person;health_trust:person;police:person");
	/* A purpose under which the requester may ask for nothing: no holders. */
	expect_located("housing", "child_protection", &amelia_nhs, "");
}

/* D19: the refuge's stay is under a rule with locate: false. */
Test(locate, locate_false_leaves_the_refuge_out)
{
	expect_located("health_trust", "marac", &amelia_nhs,
	    "childrens_social_care:concern;health_trust:concern");
	cr_expect_eq(h_log_count(&d, "kind = 'locate' AND subject = 'DA-7' AND "
	    "withheld LIKE '%da_service:refuge_stay:not_locatable%'"), 1,
	    "the refuge's own view logs what was left out");
}

Test(locate, by_local_id_with_and_without_holder)
{
	Safeshare__V1__LocateResponse	*r;
	Safeshare__V1__Error		*e;

	expect_located("police", "child_protection",
	    &(struct who){ .subject = "CSC-7" },
	    "childrens_social_care:concern+person;health_trust:concern+person;"
	    "police:person");
	expect_located("police", "child_protection",
	    &(struct who){ .subject = "CSC-7", .holder = "childrens_social_care" },
	    "childrens_social_care:concern+person;health_trust:concern+person;"
	    "police:person");
	/* Health does not hold CSC-7: as if no one matched. */
	cr_expect_eq(locate("police", "child_protection",
	    &(struct who){ .subject = "CSC-7", .holder = "health_trust" }, &r, &e), 404);
	cr_expect_null(r);
	cr_expect_str_eq(e->code, "no_match");
	safeshare__v1__error__free_unpacked(e, NULL);
}

/* D18: ambiguous and no_match carry no data, no count, no hint. */
Test(locate, demographics_ambiguous_then_separated_by_postcode)
{
	Safeshare__V1__LocateResponse	*r;
	Safeshare__V1__Error		*e;
	struct who			 sam = { .family = "O'Neil", .given = "Sam",
					    .dob = "2010-05-04" };

	cr_expect_eq(locate("police", "child_protection", &sam, &r, &e), 409);
	cr_expect_null(r);
	cr_expect_str_eq(e->code, "ambiguous");
	cr_expect(strstr(e->message, "2") == NULL, "no count: %s", e->message);
	cr_expect_gt(e->disclosure_id, 0, "logged");
	safeshare__v1__error__free_unpacked(e, NULL);

	sam.postcode = "ex4 1aa";
	expect_located("police", "child_protection", &sam, "childrens_social_care:person");
	sam.postcode = "EX5 2BB";
	expect_located("police", "child_protection", &sam, "health_trust:person");
	/* Amelia by demographics: one person although four holders hold her. */
	expect_located("police", "child_protection", &(struct who){ .family = "hart",
	    .given = "AMELIA", .dob = "2015-03-09" },
	    "childrens_social_care:concern+person;health_trust:concern+person;"
	    "police:person");
	cr_expect_eq(h_log_count(&d, "kind = 'locate' AND decision = 'ambiguous'"), 1);
}

Test(locate, no_match_and_bad_nhs_number)
{
	Safeshare__V1__LocateResponse	*r;
	Safeshare__V1__Error		*e;

	cr_expect_eq(locate("police", "child_protection",
	    &(struct who){ .nhs = "4010232137" }, &r, &e), 404);
	cr_expect_str_eq(e->code, "no_match");
	cr_expect_str_eq(e->message, "no one matches");
	safeshare__v1__error__free_unpacked(e, NULL);
	/* Day and month swapped: no match, and no hint that the name matched. */
	cr_expect_eq(locate("police", "child_protection", &(struct who){ .family = "Hart",
	    .given = "Amelia", .dob = "2015-09-03" }, &r, &e), 404);
	cr_expect_str_eq(e->message, "no one matches");
	safeshare__v1__error__free_unpacked(e, NULL);
	cr_expect_eq(locate("police", "child_protection",
	    &(struct who){ .nhs = "943 476 5918" }, &r, &e), 400);
	cr_expect_str_eq(e->code, "invalid_person");
	cr_expect(strstr(e->message, "check digit") != NULL, "%s", e->message);
	safeshare__v1__error__free_unpacked(e, NULL);
	cr_expect_eq(h_log_count(&d, "kind = 'locate' AND decision = 'no_match' AND "
	    "subject = 'nhs:4010232137'"), 1);
	cr_expect_eq(h_log_count(&d, "kind = 'locate' AND reason = 'invalid_person'"), 1);
}

Test(locate, only_requesters_and_declared_purposes)
{
	Safeshare__V1__LocateResponse	*r;
	Safeshare__V1__Error		*e;

	cr_expect_eq(locate("auditor", "child_protection", &amelia_nhs, &r, &e), 403);
	cr_expect_str_eq(e->code, "not_requester");
	safeshare__v1__error__free_unpacked(e, NULL);
	cr_expect_eq(locate("police", "fishing", &amelia_nhs, &r, &e), 400);
	cr_expect_str_eq(e->code, "unknown_purpose");
	safeshare__v1__error__free_unpacked(e, NULL);
	cr_expect_eq(h_log_count(&d, "kind = 'locate' AND decision = 'deny'"), 2);
}

/*
 * D17, D19: a located answer is one entry per holder's view, each under
 * that view's local id, all with the request's id and the answer given.
 */
Test(locate, every_view_gets_a_log_entry)
{
	char *out = NULL, cmd[2048];

	expect_located("police", "child_protection", &amelia_nhs,
	    "childrens_social_care:concern+person;health_trust:concern+person;"
	    "police:person");
	cr_expect_eq(h_log_count(&d, "kind = 'locate' AND decision = 'located'"), 4);
	cr_expect_eq(h_log_count(&d, "kind = 'locate' AND subject = 'HLT-7' AND "
	    "agency = 'police' AND purpose = 'child_protection' AND released = "
	    "'childrens_social_care:concern+person;health_trust:concern+person;"
	    "police:person' AND withheld = 'da_service:refuge_stay:no_rule'"), 1);
	cr_expect_eq(h_log_count(&d, "kind = 'locate' AND subject = 'DA-7'"), 1);

	/* The subject-access report of health's view shows the locate. */
	snprintf(cmd, sizeof(cmd), "%s audit subject-report HLT-7 --server %s "
	    "--cert %s/pki/auditor.crt --key %s/pki/auditor.key --ca %s/pki/ca.crt",
	    SAFESHARE_BIN, d.server, d.dir, d.dir, d.dir);
	cr_expect_eq(h_run(cmd, &out), 0, "%s", out ? out : "");
	cr_expect(out != NULL && strstr(out, "locate") != NULL, "%s", out ? out : "");
	free(out);
	snprintf(cmd, sizeof(cmd), "%s audit stats --by kind --server %s "
	    "--cert %s/pki/auditor.crt --key %s/pki/auditor.key --ca %s/pki/ca.crt",
	    SAFESHARE_BIN, d.server, d.dir, d.dir, d.dir);
	out = NULL;
	cr_expect_eq(h_run(cmd, &out), 0, "%s", out ? out : "");
	cr_expect(out != NULL && strstr(out, "locate") != NULL, "%s", out ? out : "");
	free(out);
}

static Safeshare__V1__DisclosureResponse *
ask(const char *agency, const char *subject, const char *purpose, int *status)
{
	Safeshare__V1__DisclosureRequest	 rq = SAFESHARE__V1__DISCLOSURE_REQUEST__INIT;
	Safeshare__V1__DisclosureResponse	*resp = NULL;
	Safeshare__V1__Error			*e = NULL;
	struct ss_client			*c = h_client(&d, agency);
	char					 err[512];

	rq.subject_id = (char *)subject;
	rq.purpose = (char *)purpose;
	rq.record_type = "person";
	rq.case_reference = "MASH-2026-17";
	rq.practitioner = "J. Doe, MASH";
	cr_assert_eq(ss_disclose(c, &rq, &resp, &e, status, err, sizeof(err)), 0, "%s",
	    err);
	ss_client_free(c);
	if (e != NULL)
		safeshare__v1__error__free_unpacked(e, NULL);
	return resp;
}

static const char *
withheld(const Safeshare__V1__DisclosureResponse *r, const char *field)
{
	for (size_t i = 0; i < r->n_withheld; i++)
		if (strcmp(r->withheld[i]->name, field) == 0)
			return r->withheld[i]->reason;
	return NULL;
}

/* D12, D18: the police's flag withholds the address health holds. */
Test(locate, police_flag_withholds_the_address_health_holds)
{
	Safeshare__V1__DisclosureResponse	*r;
	int					 status;

	r = ask("police", "HLT-7", "child_protection", &status);
	cr_assert_eq(status, 200);
	cr_expect_str_eq(withheld(r, "address"), "flag:domestic_abuse");
	safeshare__v1__disclosure_response__free_unpacked(r, NULL);
	/* Sam, held by health without a link to anyone flagged, keeps it. */
	r = ask("police", "SAM-B", "child_protection", &status);
	cr_assert_eq(status, 200);
	cr_expect_null(withheld(r, "postcode"));
	cr_expect_null(withheld(r, "address") && strcmp(withheld(r, "address"),
	    "flag:domestic_abuse") == 0 ? "flagged" : NULL);
	safeshare__v1__disclosure_response__free_unpacked(r, NULL);
}

/* D3, D18: consent is the person's at each holder: refused, granted, none. */
Test(locate, consent_differs_at_each_holder)
{
	Safeshare__V1__DisclosureResponse	*r;
	int					 status;

	/* health-adult-person: health asks, consent required. */
	r = ask("health_trust", "HLT-7", "adult_safeguarding", &status);
	cr_assert_eq(status, 200);
	cr_expect_eq(r->decision, SAFESHARE__V1__DECISION__DECISION_ALLOW, "granted at health");
	safeshare__v1__disclosure_response__free_unpacked(r, NULL);
	r = ask("health_trust", "CSC-7", "adult_safeguarding", &status);
	cr_assert_eq(status, 200);
	cr_expect_eq(r->decision, SAFESHARE__V1__DECISION__DECISION_DENY);
	cr_expect_str_eq(r->reason, "consent_refused", "refused at children's social care");
	safeshare__v1__disclosure_response__free_unpacked(r, NULL);
	r = ask("health_trust", "POL-7", "adult_safeguarding", &status);
	cr_assert_eq(status, 200);
	cr_expect_eq(r->decision, SAFESHARE__V1__DECISION__DECISION_DENY);
	cr_expect_str_eq(r->reason, "consent_required", "none recorded by the police");
	safeshare__v1__disclosure_response__free_unpacked(r, NULL);
}

/* D18: linked views are still each holder's own. */
Test(locate, a_holder_cannot_read_or_change_another_holders_view)
{
	char *out = NULL, cmd[2048];

	snprintf(cmd, sizeof(cmd), "%s holder show CSC-7 --server %s "
	    "--cert %s/pki/health_trust.crt --key %s/pki/health_trust.key "
	    "--ca %s/pki/ca.crt 2>&1", SAFESHARE_BIN, d.server, d.dir, d.dir, d.dir);
	cr_expect_eq(h_run(cmd, &out), 4, "%s", out ? out : "");
	cr_expect(out != NULL && strstr(out, "Orchard") == NULL, "%s", out ? out : "");
	free(out);
	out = NULL;
	snprintf(cmd, sizeof(cmd), "%s holder put-record CSC-7 person "
	    "full_name='Someone Else' --server %s "
	    "--cert %s/pki/health_trust.crt --key %s/pki/health_trust.key "
	    "--ca %s/pki/ca.crt 2>&1", SAFESHARE_BIN, d.server, d.dir, d.dir, d.dir);
	cr_expect_eq(h_run(cmd, &out), 4, "%s", out ? out : "");
	free(out);
	out = NULL;
	snprintf(cmd, sizeof(cmd), "%s holder unflag POL-7 domestic_abuse --server %s "
	    "--cert %s/pki/health_trust.crt --key %s/pki/health_trust.key "
	    "--ca %s/pki/ca.crt 2>&1", SAFESHARE_BIN, d.server, d.dir, d.dir, d.dir);
	cr_expect_eq(h_run(cmd, &out), 4, "%s", out ? out : "");
	free(out);
}

/*
 * Issue 17 item 4: the person without a holder (unless w names one), as
 * agency for purpose and record type, with request id rid; the answer, or
 * the Error in *ep.
 */
static int
ask_all(const char *agency, const char *purpose, const char *record_type,
    const struct who *w, const char *rid, Safeshare__V1__DisclosureResponse **resp,
    Safeshare__V1__Error **ep)
{
	Safeshare__V1__DisclosureRequest	 rq = SAFESHARE__V1__DISCLOSURE_REQUEST__INIT;
	Safeshare__V1__PersonRef		 pr = SAFESHARE__V1__PERSON_REF__INIT;
	struct ss_client			*c = h_client(&d, agency);
	char					 err[512];
	int					 status;

	rq.purpose = (char *)purpose;
	rq.record_type = (char *)record_type;
	rq.case_reference = "MASH-2026-17";
	rq.practitioner = "J. Doe, MASH";
	rq.request_id = S(rid);
	person_ref(&pr, w);
	rq.person = &pr;
	*resp = NULL;
	*ep = NULL;
	cr_assert_eq(ss_disclose(c, &rq, resp, ep, &status, err, sizeof(err)), 0, "%s",
	    err);
	ss_client_free(c);
	return status;
}

/* A child-protection request for the person w names at one holder. */
static int
ask_person(const char *agency, const char *holder, const struct who *w,
    Safeshare__V1__DisclosureResponse **resp, Safeshare__V1__Error **ep)
{
	struct who at = *w;

	at.holder = holder;
	return ask_all(agency, "child_protection", "person", &at, NULL, resp, ep);
}

/* Issue 17 item 4: request --nhs-number ... --holder H. */
Test(locate, request_by_nhs_number_at_one_holder)
{
	Safeshare__V1__DisclosureResponse	*r;
	Safeshare__V1__Error			*e;

	cr_assert_eq(ask_person("police", "health_trust", &amelia_nhs, &r, &e), 200);
	cr_expect_str_eq(withheld(r, "address"), "flag:domestic_abuse");
	safeshare__v1__disclosure_response__free_unpacked(r, NULL);
	cr_expect_eq(h_log_count(&d, "kind = 'disclosure' AND subject = 'HLT-7'"), 1,
	    "logged under health's local id");

	cr_expect_eq(ask_person("police", "housing", &amelia_nhs, &r, &e), 404,
	    "housing holds no one");
	cr_expect_str_eq(e->code, "no_match");
	safeshare__v1__error__free_unpacked(e, NULL);
	cr_expect_eq(ask_person("police", "childrens_social_care", &(struct who){
	    .family = "O'Neil", .given = "Sam", .dob = "2010-05-04" }, &r, &e), 409);
	cr_expect_str_eq(e->code, "ambiguous");
	safeshare__v1__error__free_unpacked(e, NULL);
	cr_expect_eq(ask_person("police", "childrens_social_care", &(struct who){
	    .family = "O'Neil", .given = "Sam", .dob = "2010-05-04",
	    .postcode = "EX4 1AA" }, &r, &e), 200);
	safeshare__v1__disclosure_response__free_unpacked(r, NULL);
	cr_expect_eq(ask_person("police", "health_trust", &(struct who){
	    .nhs = "9434765918" }, &r, &e), 400);
	cr_expect_str_eq(e->code, "invalid_person");
	safeshare__v1__error__free_unpacked(e, NULL);
}

/* The holders answered, "holder=decision/reason;..." in answer order. */
static void
per_holder(const Safeshare__V1__DisclosureResponse *r, char *out, size_t len)
{
	out[0] = '\0';
	for (size_t i = 0; i < r->n_holders; i++)
		snprintf(out + strlen(out), len - strlen(out), "%s%s=%d/%s", i ? ";" : "",
		    r->holders[i]->holder, (int)r->holders[i]->decision,
		    r->holders[i]->reason);
}

/*
 * D12, D18: no holder named: every holder of Amelia's person record
 * answers, each with its own decision, rule, log entry and receipt; the
 * police's domestic_abuse flag withholds the address each holds, health's
 * included. da_service holds no person record and is not named. The
 * entries were committed together: every receipt has the same checkpoint.
 */
Test(locate, request_without_holder_asks_every_holder)
{
	Safeshare__V1__DisclosureResponse	*r;
	Safeshare__V1__Error			*e;
	char					 got[512];

	cr_assert_eq(ask_all("police", "child_protection", "person", &amelia_nhs,
	    "ALL-1", &r, &e), 200);
	cr_expect_str_eq(r->reason, "per_holder");
	cr_expect_eq(r->decision, SAFESHARE__V1__DECISION__DECISION_UNSPECIFIED);
	cr_expect_eq(r->disclosure_id, 0);
	per_holder(r, got, sizeof(got));
	/* Children's social care holds a refusal: respected whatever the rule. */
	cr_expect_str_eq(got, "childrens_social_care=3/consent_refused;"
	    "health_trust=2/partially_released;police=2/partially_released");
	cr_assert_eq(r->n_holders, 3);
	for (size_t i = 0; i < r->n_holders; i++) {
		const Safeshare__V1__DisclosureResponse *h = r->holders[i];

		cr_expect_str_eq(h->rule_id, "police-child-person");
		cr_expect_gt(h->disclosure_id, 0);
		cr_assert_not_null(h->receipt, "%s", h->holder);
		cr_expect_eq(h->receipt->seq, h->disclosure_id);
		cr_expect_str_eq(h->receipt->checkpoint, r->holders[0]->receipt->checkpoint,
		    "one commit for the whole answer");
		if (i == 0)
			continue;
		cr_expect_str_eq(withheld(h, "address"), "flag:domestic_abuse", "%s",
		    h->holder);
		cr_expect_gt(h->n_released, 0);
	}
	cr_expect_eq(r->holders[0]->n_released, 0);
	cr_expect(strstr(r->holders[1]->released[0]->value, "Amelia") != NULL);
	safeshare__v1__disclosure_response__free_unpacked(r, NULL);
	cr_expect_eq(h_log_count(&d, "kind = 'disclosure' AND request_id = 'ALL-1'"), 3);
	cr_expect_eq(h_log_count(&d, "kind = 'disclosure' AND request_id = 'ALL-1' "
	    "AND subject = 'HLT-7' AND decision = 'partial' AND "
	    "withheld LIKE '%address:flag:domestic_abuse%'"), 1);
	cr_expect_eq(h_log_count(&d, "request_id = 'ALL-1' AND subject = 'DA-7'"), 0);
}

/* D3, D18: consent is each holder's: refused, granted, none recorded. */
Test(locate, request_without_holder_consent_at_each_holder)
{
	Safeshare__V1__DisclosureResponse	*r;
	Safeshare__V1__Error			*e;
	char					 got[512];

	cr_assert_eq(ask_all("health_trust", "adult_safeguarding", "person",
	    &amelia_nhs, "ALL-2", &r, &e), 200);
	per_holder(r, got, sizeof(got));
	cr_expect_str_eq(got, "childrens_social_care=3/consent_refused;"
	    "health_trust=1/released;police=3/consent_required");
	cr_assert_eq(r->n_holders, 3);
	cr_expect_eq(r->holders[0]->n_released, 0, "nothing from a refusal");
	cr_expect_str_eq(withheld(r->holders[1], "address"), "not_in_rule");
	cr_expect_gt(r->holders[1]->n_released, 0);
	safeshare__v1__disclosure_response__free_unpacked(r, NULL);
	cr_expect_eq(h_log_count(&d, "kind = 'disclosure' AND request_id = 'ALL-2' "
	    "AND ((subject = 'CSC-7' AND reason = 'consent_refused' AND consent = "
	    "'refused') OR (subject = 'HLT-7' AND decision = 'allow' AND consent = "
	    "'granted') OR (subject = 'POL-7' AND reason = 'consent_required'))"), 3);
}

/*
 * D19: a rule with `locate: false` never names its holders: asked without
 * a holder it is refused before the person is looked for, alike whether
 * anyone holds them; by name it is answered. Its holder never appears in
 * an answer for another record type either.
 */
Test(locate, request_without_holder_never_names_a_locate_false_holder)
{
	Safeshare__V1__DisclosureResponse	*r;
	Safeshare__V1__Error			*e;
	char					 got[512];

	cr_assert_eq(ask_all("police", "marac", "refuge_stay", &amelia_nhs, "ALL-3",
	    &r, &e), 400);
	cr_expect_str_eq(e->code, "holder_required");
	cr_expect(strstr(e->message, "da_service") == NULL, "%s", e->message);
	cr_expect_gt(e->disclosure_id, 0, "the refusal is logged");
	safeshare__v1__error__free_unpacked(e, NULL);
	cr_assert_eq(ask_all("police", "marac", "refuge_stay", &(struct who){
	    .nhs = "4010232137" }, "ALL-4", &r, &e), 400, "no one: the same");
	cr_expect_str_eq(e->code, "holder_required");
	safeshare__v1__error__free_unpacked(e, NULL);
	cr_expect_eq(h_log_count(&d, "request_id IN ('ALL-3', 'ALL-4') AND "
	    "reason = 'holder_required' AND subject LIKE 'nhs:%'"), 2);

	cr_assert_eq(ask_all("police", "marac", "concern", &amelia_nhs, "ALL-5", &r,
	    &e), 200);
	per_holder(r, got, sizeof(got));
	cr_expect_str_eq(got, "childrens_social_care=3/consent_refused;"
	    "health_trust=2/partially_released");
	safeshare__v1__disclosure_response__free_unpacked(r, NULL);

	cr_assert_eq(ask_all("police", "marac", "refuge_stay", &(struct who){
	    .holder = "da_service", .nhs = "943 476 5919" }, "ALL-11", &r, &e), 200,
	    "by name: %s", e ? e->code : "");
	cr_expect_eq(r->decision, SAFESHARE__V1__DECISION__DECISION_ALLOW);
	cr_expect_eq(r->n_holders, 0);
	safeshare__v1__disclosure_response__free_unpacked(r, NULL);
}

/*
 * D18: by demographics; not exactly one person, or no rule, is one entry
 * that names no holder.
 */
Test(locate, request_without_holder_by_demographics)
{
	Safeshare__V1__DisclosureResponse	*r;
	Safeshare__V1__Error			*e;
	char					 got[512];

	cr_assert_eq(ask_all("police", "child_protection", "person", &(struct who){
	    .family = "hart", .given = "AMELIA", .dob = "2015-03-09" }, "ALL-6", &r,
	    &e), 200);
	cr_expect_eq(r->n_holders, 3);
	safeshare__v1__disclosure_response__free_unpacked(r, NULL);
	cr_assert_eq(ask_all("police", "child_protection", "person", &(struct who){
	    .family = "O'Neil", .given = "Sam", .dob = "2010-05-04",
	    .postcode = "EX5 2BB" }, "ALL-7", &r, &e), 200);
	per_holder(r, got, sizeof(got));
	cr_expect_str_eq(got, "health_trust=2/partially_released");
	safeshare__v1__disclosure_response__free_unpacked(r, NULL);

	cr_expect_eq(ask_all("police", "child_protection", "person", &(struct who){
	    .family = "O'Neil", .given = "Sam", .dob = "2010-05-04" }, "ALL-8", &r,
	    &e), 409);
	cr_expect_str_eq(e->code, "ambiguous");
	safeshare__v1__error__free_unpacked(e, NULL);
	cr_expect_eq(ask_all("police", "child_protection", "person", &(struct who){
	    .family = "Nobody", .given = "Nemo", .dob = "2000-01-01" }, "ALL-9", &r,
	    &e), 404);
	cr_expect_str_eq(e->code, "no_match");
	safeshare__v1__error__free_unpacked(e, NULL);
	/* Housing has no rule for child protection: one deny, no holders. */
	cr_assert_eq(ask_all("housing", "child_protection", "person", &amelia_nhs,
	    "ALL-10", &r, &e), 200);
	cr_expect_eq(r->n_holders, 0);
	cr_expect_str_eq(r->reason, "no_rule");
	safeshare__v1__disclosure_response__free_unpacked(r, NULL);
	cr_expect_eq(h_log_count(&d, "request_id IN ('ALL-8', 'ALL-9', 'ALL-10')"), 3);
	cr_expect_eq(h_log_count(&d, "request_id = 'ALL-10' AND subject = "
	    "'nhs:9434765919' AND reason = 'no_rule'"), 1);
}

/*
 * safeshare request without --holder: each holder's result, as text and as
 * one strict JSON object; --receipts keeps every receipt, and they verify.
 */
Test(locate, request_without_holder_command_line)
{
	char	*out = NULL, cmd[2048], conn[1024];

	snprintf(conn, sizeof(conn), "--server %s --cert %s/pki/police.crt "
	    "--key %s/pki/police.key --ca %s/pki/ca.crt", d.server, d.dir, d.dir, d.dir);
	snprintf(cmd, sizeof(cmd), "%s request --nhs-number '943 476 5919' "
	    "--record-type person --purpose child_protection --case C-1 "
	    "--practitioner 'DC Jones' %s", SAFESHARE_BIN, conn);
	cr_expect_eq(h_run(cmd, &out), 0, "%s", out ? out : "");
	cr_expect(out != NULL && strstr(out, "holder:        childrens_social_care\n"
	    "decision:      deny (consent_refused)") != NULL && strstr(out,
	    "holder:        health_trust\n") != NULL && strstr(out,
	    "address                flag:domestic_abuse") != NULL, "%s",
	    out ? out : "");
	free(out);
	out = NULL;
	snprintf(cmd, sizeof(cmd), "mkdir -p %s/rc && %s request --nhs-number "
	    "9434765919 --record-type person --purpose child_protection --case C-1 "
	    "--practitioner 'DC Jones' --json --receipts %s/rc %s", d.dir,
	    SAFESHARE_BIN, d.dir, conn);
	cr_expect_eq(h_run(cmd, &out), 0, "%s", out ? out : "");
	cr_expect(out != NULL && strncmp(out, "{\"holders\":[{\"holder\":"
	    "\"childrens_social_care\",\"decision\":\"deny\"", 48) == 0 &&
	    strstr(out, "{\"holder\":\"police\",\"decision\":\"partial\"") != NULL &&
	    strstr(out, "\"protocol_version\":") != NULL, "%s", out ? out : "");
	free(out);
	out = NULL;
	snprintf(cmd, sizeof(cmd), "test $(ls %s/rc/*.receipt | wc -l) -eq 3 && "
	    "%s receipt verify %s/rc/*.receipt --pubkey %s/pki/audit-signing.pub",
	    d.dir, SAFESHARE_BIN, d.dir, d.dir);
	cr_expect_eq(h_run(cmd, &out), 0, "%s", out ? out : "");
	free(out);
	out = NULL;
	/* No rule for the purpose: one deny that names no holder, exit 3. */
	snprintf(cmd, sizeof(cmd), "%s request --nhs-number 9434765919 --record-type "
	    "person --purpose adult_safeguarding --case C-1 --practitioner 'DC Jones' "
	    "--server %s --cert %s/pki/police.crt --key %s/pki/police.key "
	    "--ca %s/pki/ca.crt 2>&1", SAFESHARE_BIN, d.server, d.dir, d.dir, d.dir);
	cr_expect_eq(h_run(cmd, &out), 3, "%s", out ? out : "");
	free(out);
}

/* The command line: safeshare locate and request --holder --nhs-number. */
Test(locate, command_line)
{
	char	*out = NULL, cmd[2048], conn[1024];

	snprintf(conn, sizeof(conn), "--server %s --cert %s/pki/police.crt "
	    "--key %s/pki/police.key --ca %s/pki/ca.crt", d.server, d.dir, d.dir, d.dir);
	snprintf(cmd, sizeof(cmd), "%s locate --nhs-number '943 476 5919' --purpose "
	    "child_protection --case C-1 --practitioner 'DC Jones' --json %s",
	    SAFESHARE_BIN, conn);
	cr_expect_eq(h_run(cmd, &out), 0, "%s", out ? out : "");
	cr_expect(out != NULL && strstr(out, "\"holder\":\"health_trust\","
	    "\"record_types\":[\"concern\",\"person\"]") != NULL, "%s", out ? out : "");
	free(out);
	out = NULL;
	snprintf(cmd, sizeof(cmd), "%s locate --family-name Nobody --given-name Nemo "
	    "--dob 2000-01-01 --purpose child_protection --case C-1 --practitioner "
	    "'DC Jones' %s 2>&1", SAFESHARE_BIN, conn);
	cr_expect_eq(h_run(cmd, &out), 4, "%s", out ? out : "");
	cr_expect(out != NULL && strstr(out, "no_match: no one matches") != NULL, "%s",
	    out ? out : "");
	free(out);
	out = NULL;
	snprintf(cmd, sizeof(cmd), "%s request --holder health_trust --nhs-number "
	    "'943 476 5919' --record-type person --purpose child_protection --case C-1 "
	    "--practitioner 'DC Jones' %s", SAFESHARE_BIN, conn);
	cr_expect_eq(h_run(cmd, &out), 0, "%s", out ? out : "");
	cr_expect(out != NULL && strstr(out, "Riverside Surgery") == NULL &&
	    strstr(out, "flag:domestic_abuse") != NULL, "%s", out ? out : "");
	free(out);
	out = NULL;
	snprintf(cmd, sizeof(cmd), "%s locate --nhs-number 1 --subject X --purpose p "
	    "--case c --practitioner p %s 2>&1", SAFESHARE_BIN, conn);
	cr_expect_eq(h_run(cmd, &out), 2, "one form only: %s", out ? out : "");
	free(out);
}
