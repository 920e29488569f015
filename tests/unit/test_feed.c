/*
 * Which log entries the feeds carry (src/feed.c, issue 18, D20): a
 * holder's access feed takes disclosures, locates and refusals naming a
 * subject; the guardian's alerts take used overrides, denied emergency
 * requests, reviews, reloads and refused or rolled back holder batches.
 */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include "feed.h"

static struct audit_entry
entry(const char *kind, const char *subject, const char *decision,
    const char *reason, const char *override_code)
{
	struct audit_entry e;

	memset(&e, 0, sizeof(e));
	e.kind = kind;
	e.subject = subject;
	e.decision = decision;
	e.reason = reason;
	e.override_code = override_code;
	return e;
}

Test(feed, accesses)
{
	static const struct {
		const char *kind, *subject, *decision;
		int access;
	} cases[] = {
		{ "disclosure", "S1", "allow", 1 },
		{ "disclosure", "S1", "deny", 1 },
		{ "disclosure", "S1", "consultation", 1 },
		{ "locate", "S1", "allow", 1 },
		{ "rejected", "S1", "", 1 },
		{ "rejected", "", "", 0 },	/* no subject: no holder's */
		{ "disclosure", NULL, "deny", 0 },
		{ "holder", "S1", "write", 0 },	/* the holder's own write */
		{ "review", "S1", "", 0 },
		{ "reload", "", "", 0 },
		{ "store", "", "opened", 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct audit_entry e = entry(cases[i].kind, cases[i].subject,
		    cases[i].decision, "", "");

		cr_expect_eq(feed_is_access(&e), cases[i].access, "case %zu (%s)", i,
		    cases[i].kind);
	}
}

Test(feed, alerts)
{
	static const struct {
		const char *kind, *decision, *reason, *code, *alert;
	} cases[] = {
		{ "disclosure", "allow", "override", "adult_serious_harm", "override" },
		{ "disclosure", "partial", "override_partial", "serious_crime", "override" },
		{ "disclosure", "deny", "override_not_allowed", "serious_crime",
		    "denied_emergency" },
		{ "disclosure", "deny", "consent_refused", "", NULL },
		/* Invoked, but consent was granted: decided nothing (no alert). */
		{ "disclosure", "allow", "released", "emergency_life_threat", NULL },
		{ "disclosure", "allow", "released", "", NULL },
		{ "review", "", "upheld", "", "review" },
		{ "reload", "", "", "", "reload" },
		{ "rejected", "", "not_your_subject", "", "holder_refused" },
		{ "rejected", "", "unknown_subject", "", "holder_refused" },
		{ "rejected", "", "not_holder", "", NULL },
		{ "holder", "rolled_back", "interrupted", "", "holder_rolled_back" },
		{ "holder", "write", "put_record", "", NULL },
		{ "inform_done", "", "", "", NULL },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct audit_entry e = entry(cases[i].kind, "S1", cases[i].decision,
		    cases[i].reason, cases[i].code);
		const char *got = feed_alert_type(&e);

		if (cases[i].alert == NULL)
			cr_expect_null(got, "case %zu: %s", i, got);
		else
			cr_expect(got != NULL && strcmp(got, cases[i].alert) == 0,
			    "case %zu: %s", i, got ? got : "(none)");
	}
}

/* A locate's answer names every holder; each holder's feed gets its own part. */
Test(feed, own_part_of_a_locate)
{
	static const struct {
		const char *list, *holder, *want;
	} cases[] = {
		{ "health_trust:person+concern;police:person", "health_trust",
		    "health_trust:person+concern" },
		{ "health_trust:person+concern;police:person", "police", "police:person" },
		{ "health_trust:person;police:person", "housing", "" },
		{ "", "police", "" },
		{ "a:x:no_rule,ab:y:not_locatable,a:z:no_rule", "a", "a:x:no_rule,a:z:no_rule" },
		{ "health:person", "health_trust", "" },	/* a prefix is not the id */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = feed_own_part(cases[i].list, cases[i].holder);

		cr_expect_str_eq(got, cases[i].want, "case %zu", i);
		free(got);
	}
}
