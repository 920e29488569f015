/*
 * The auditor's report aggregation (src/report.c, issue 21) on generated
 * entries: per-day counts, overrides and their reviews (D15), the
 * inform-the-subject backlog (D6), the agency x purpose matrix, deny
 * reasons, the three patterns with their seqs, and its bounds.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "policy.h"
#include "report.h"

#define MON	1795392000LL	/* Monday 2026-11-23 00:00 UTC */
#define H	3600LL
#define DAY	86400LL

static uint64_t seq;

/* A disclosure request entry, fed to r. */
static void
req(struct report *r, int64_t t, const char *agency, const char *prac,
    const char *subject, const char *purpose, const char *decision,
    const char *reason, const char *code, const char *waiver)
{
	struct audit_entry e;

	memset(&e, 0, sizeof(e));
	e.seq = ++seq;
	e.time = t;
	e.kind = "disclosure";
	e.agency = agency;
	e.practitioner = prac;
	e.subject = subject;
	e.purpose = purpose;
	e.decision = decision;
	e.reason = reason;
	e.override_code = code;
	e.inform_waiver = waiver;
	cr_assert_eq(report_add(r, &e), 0);
}

static void
note(struct report *r, int64_t t, const char *kind, const char *reason, uint64_t ref)
{
	struct audit_entry e;

	memset(&e, 0, sizeof(e));
	e.seq = ++seq;
	e.time = t;
	e.kind = kind;
	e.agency = "guardian";
	e.decision = kind;
	e.reason = reason;
	e.ref_seq = ref;
	cr_assert_eq(report_add(r, &e), 0);
}

static const Safeshare__V1__ReportCount *
find(Safeshare__V1__ReportCount **v, size_t n, const char *k, const char *k2)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i]->key, k) == 0 && (k2 == NULL || strcmp(v[i]->key2, k2) == 0))
			return v[i];
	return NULL;
}

static size_t
patterns(const Safeshare__V1__AuditReport *m, const char *kind)
{
	size_t n = 0;

	for (size_t i = 0; i < m->n_patterns; i++)
		n += strcmp(m->patterns[i]->kind, kind) == 0;
	return n;
}

Test(report, days_by_decision_within_the_range)
{
	struct report			*r = report_new(MON, MON + 2 * DAY, NULL, MON + 3 * DAY);
	Safeshare__V1__AuditReport	*m;

	req(r, MON - 1, "police", "A", "S1", "cp", "allow", "released", "", "");
	req(r, MON + 10 * H, "police", "A", "S1", "cp", "allow", "released", "", "");
	req(r, MON + 11 * H, "police", "A", "S2", "cp", "deny", "no_rule", "", "");
	req(r, MON + DAY + 9 * H, "health", "B", "S3", "as", "partial", "released", "", "");
	req(r, MON + 2 * DAY, "police", "A", "S1", "cp", "allow", "released", "", "");
	cr_assert_not_null(m = report_finish(r));
	cr_expect_eq(m->entries, 3, "from inclusive, to exclusive");
	cr_expect_eq(m->n_per_day, 3);
	cr_expect_str_eq(m->per_day[0]->key, "2026-11-23");
	cr_expect_str_eq(m->per_day[0]->key2, "allow");
	cr_expect_eq(m->per_day[0]->count, 1);
	cr_expect_eq(find(m->per_day, m->n_per_day, "2026-11-23", "deny")->count, 1);
	cr_expect_eq(find(m->per_day, m->n_per_day, "2026-11-24", "partial")->count, 1);
	cr_expect_eq(find(m->agency_purpose, m->n_agency_purpose, "police", "cp")->count, 2);
	cr_expect_eq(find(m->agency_purpose, m->n_agency_purpose, "police", "cp")->count2, 1);
	cr_expect_eq(find(m->kinds, m->n_kinds, "disclosure", NULL)->count, 3);
	cr_expect_eq(m->out_of_hours_total, 0);
	cr_expect_not(m->truncated);
	report_msg_free(m);
	report_free(r);
}

/* D15: every override awaits review; D6: one used, without an accepted waiver, a note. */
Test(report, overrides_reviews_and_inform_backlog)
{
	struct report			*r = report_new(MON, MON + DAY, NULL, MON + 5 * DAY);
	Safeshare__V1__AuditReport	*m;
	char				 rejected[128];

	snprintf(rejected, sizeof(rejected), "%sno reason given", POLICY_WAIVER_REJECTED);
	req(r, MON + 9 * H, "health", "B", "S1", "as", "allow", "override", "harm", "");
	req(r, MON + 10 * H, "health", "B", "S2", "as", "partial", "override_partial",
	    "harm", "tipping off the abuser");
	req(r, MON + 11 * H, "health", "B", "S3", "as", "allow", "override", "life",
	    rejected);
	req(r, MON + 12 * H, "housing", "C", "S4", "hs", "deny", "override_not_allowed",
	    "life", "");
	/* An override that decided nothing is not one (issue 15). */
	req(r, MON + 13 * H, "health", "B", "S5", "as", "allow", "released", "harm", "");
	/* Notes after the range still close its items. */
	note(r, MON + 2 * DAY, "review", "upheld", 1);
	note(r, MON + 2 * DAY, "review", "not_upheld", 4);
	note(r, MON + 2 * DAY, "inform_done", "informed", 1);
	note(r, MON + 2 * DAY, "review", "upheld", 999);
	cr_assert_not_null(m = report_finish(r));
	cr_expect_eq(m->entries, 5);
	cr_expect_eq(m->reviews_upheld, 1);
	cr_expect_eq(m->reviews_not_upheld, 1);
	cr_expect_eq(m->reviews_pending, 2);
	cr_expect_eq(m->oldest_pending_time, MON + 10 * H);
	cr_expect_eq(m->inform_pending, 1, "S3: its waiver was not accepted");
	cr_expect_eq(m->oldest_inform_time, MON + 11 * H);
	cr_expect_eq(find(m->overrides_by_code, m->n_overrides_by_code, "harm", "used")->count,
	    2);
	cr_expect_eq(find(m->overrides_by_code, m->n_overrides_by_code, "life", "used")->count,
	    1);
	cr_expect_eq(find(m->overrides_by_code, m->n_overrides_by_code, "life",
	    "refused")->count, 1);
	cr_expect_eq(m->n_deny_reasons, 1);
	cr_expect_str_eq(m->deny_reasons[0]->key, "override_not_allowed");
	report_msg_free(m);
	report_free(r);
}

Test(report, patterns_name_their_entries)
{
	struct report			*r = report_new(0, 0, NULL, MON + 9 * DAY);
	Safeshare__V1__AuditReport	*m;
	const Safeshare__V1__ReportPattern *p = NULL;

	for (int i = 0; i < 12; i++)	/* seqs 1..12, Monday 10:00 */
		req(r, MON + 10 * H + i, "police", "DC Jones", "S1", "cp", "allow",
		    "released", "", "");
	for (int i = 0; i < REPORT_MANY - 1; i++)	/* one short of the threshold */
		req(r, MON + 11 * H + i, "police", "DC Jones", "S2", "cp", "allow",
		    "released", "", "");
	/* The same name in two agencies is two practitioners: 5 + 5, no pattern. */
	for (int i = 0; i < 10; i++)
		req(r, MON + 12 * H + i, i % 2 ? "police" : "health", "Sam Lee", "S3", "cp",
		    "allow", "released", "", "");
	/* Denied, then overridden the same afternoon: one pattern. */
	req(r, MON + 13 * H, "health", "B", "S7", "as", "deny", "consent_refused", "", "");
	req(r, MON + 15 * H, "health", "B", "S7", "as", "allow", "override", "harm", "");
	/* Denied, then overridden two days later: none. */
	req(r, MON + 13 * H, "health", "B", "S8", "as", "deny", "consent_refused", "", "");
	req(r, MON + 2 * DAY + 14 * H, "health", "B", "S8", "as", "allow", "override",
	    "harm", "");
	/* Out of hours: Monday 07:59, Monday 18:00, Saturday noon; not Friday 17:59. */
	req(r, MON + 8 * H - 1, "housing", "C", "S9", "hs", "allow", "released", "", "");
	req(r, MON + 18 * H, "housing", "C", "S9", "hs", "allow", "released", "", "");
	req(r, MON + 5 * DAY + 12 * H, "housing", "C", "S9", "hs", "allow", "released", "",
	    "");
	req(r, MON + 4 * DAY + 18 * H - 1, "housing", "C", "S9", "hs", "allow", "released",
	    "", "");
	cr_assert_not_null(m = report_finish(r));

	cr_expect_eq(m->many_requests_total, 1);
	cr_expect_eq(patterns(m, "many_requests"), 1);
	for (size_t i = 0; i < m->n_patterns; i++)
		if (strcmp(m->patterns[i]->kind, "many_requests") == 0)
			p = m->patterns[i];
	cr_assert_not_null(p);
	cr_expect_str_eq(p->practitioner, "DC Jones");
	cr_expect_str_eq(p->subject, "S1");
	cr_expect_str_eq(p->agency, "police");
	cr_expect_eq(p->count, 12);
	cr_expect_eq(p->n_seqs, REPORT_SEQS, "bounded");
	cr_expect_eq(p->seqs[0], 1);
	cr_expect_eq(p->seqs[REPORT_SEQS - 1], REPORT_SEQS);

	cr_expect_eq(m->deny_then_override_total, 1);
	cr_expect_eq(patterns(m, "deny_then_override"), 1);
	for (size_t i = 0; i < m->n_patterns; i++)
		if (strcmp(m->patterns[i]->kind, "deny_then_override") == 0)
			p = m->patterns[i];
	cr_expect_str_eq(p->subject, "S7");
	cr_assert_eq(p->n_seqs, 2);
	cr_expect_eq(p->seqs[0], 12 + REPORT_MANY - 1 + 10 + 1);
	cr_expect_eq(p->seqs[1], 12 + REPORT_MANY - 1 + 10 + 2);

	cr_expect_eq(m->out_of_hours_total, 3);
	cr_expect_eq(patterns(m, "out_of_hours"), 1, "grouped by practitioner");
	report_msg_free(m);
	report_free(r);
}

Test(report, agency_filter_keeps_notes)
{
	struct report			*r = report_new(0, 0, "health", MON);
	Safeshare__V1__AuditReport	*m;

	req(r, MON, "police", "A", "S1", "cp", "allow", "released", "", "");
	req(r, MON, "health", "B", "S1", "as", "allow", "override", "harm", "");
	note(r, MON + 1, "review", "upheld", 2);
	cr_assert_not_null(m = report_finish(r));
	cr_expect_eq(m->entries, 1);
	cr_expect_str_eq(m->agency, "health");
	cr_expect_eq(m->reviews_upheld, 1, "the guardian's review closes it");
	cr_expect_eq(m->n_agency_purpose, 1);
	report_msg_free(m);
	report_free(r);
}

/* Memory is bounded by keys, not entries: past the bound it says so. */
Test(report, tables_are_bounded)
{
	struct report			*r = report_new(0, 0, NULL, MON);
	Safeshare__V1__AuditReport	*m;
	char				 s[32];

	for (int i = 0; i < REPORT_MAX_KEYS + 10; i++) {
		snprintf(s, sizeof(s), "S%d", i);
		req(r, MON + 10 * H, "police", "A", s, "cp", "allow", "released", "", "");
	}
	cr_assert_not_null(m = report_finish(r));
	cr_expect_eq(m->entries, REPORT_MAX_KEYS + 10);
	cr_expect(m->truncated);
	cr_expect_leq(m->n_patterns, 3 * REPORT_TOP);
	report_msg_free(m);
	report_free(r);
}
