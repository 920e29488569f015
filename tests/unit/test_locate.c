/*
 * Locate (D19): the checks before a locate, which held rows an answer names
 * and why the others are left out, and the one-line summaries the log keeps.
 * Under tests/data/locate/protocol.yaml.
 */
#include <criterion/criterion.h>

#include <string.h>

#include "locate.h"
#include "util.h"
#include "yamlutil.h"

static struct protocol	*p;
static int64_t		 now;

static void
setup(void)
{
	struct diag d = { 0 };

	p = protocol_load(DATA_DIR "/locate/protocol.yaml", 0, &d);
	if (p == NULL)
		diag_print(&d, stderr);
	cr_assert_not_null(p);
	diag_free(&d);
	cr_assert_eq(date_parse("2026-11-25", &now), 0);
}

static void
teardown(void)
{
	protocol_unref(p);
}

TestSuite(locate, .init = setup, .fini = teardown);

/* One person, held by four holders. */
static const struct locate_held held[] = {
	{ "childrens_social_care", "CSC-1", "concern" },
	{ "childrens_social_care", "CSC-1", "person" },
	{ "health_trust", "H-1", "person" },
	{ "police", "P-1", "concern" },
	{ "refuge", "R-1", "refuge_stay" },
	{ "refuge", "R-1", "retired_type" },
};
#define NHELD (sizeof(held) / sizeof(held[0]))

static size_t
filter(const char *agency, const char *purpose, const char **why)
{
	return locate_filter(p, protocol_agency(p, agency), protocol_purpose(p, purpose),
	    held, NHELD, why);
}

Test(locate, names_what_a_rule_lets_the_requester_ask_for)
{
	const char	*why[NHELD];
	char		 named[256], left[256];

	cr_expect_eq(filter("police", "child_protection", why), 4);
	locate_summary(held, NHELD, why, 1, named, sizeof(named));
	cr_expect_str_eq(named, "childrens_social_care:concern+person;health_trust:person;"
	    "police:concern");
	locate_summary(held, NHELD, why, 0, left, sizeof(left));
	cr_expect_str_eq(left, "refuge:refuge_stay:no_rule;refuge:retired_type:"
	    "unknown_record_type");
}

Test(locate, another_agency_sees_less)
{
	const char	*why[NHELD];
	char		 named[256];

	/* Children's social care has no rule for person records. */
	cr_expect_eq(filter("childrens_social_care", "child_protection", why), 2);
	locate_summary(held, NHELD, why, 1, named, sizeof(named));
	cr_expect_str_eq(named, "childrens_social_care:concern;police:concern");
	cr_expect_str_eq(why[1], "no_rule");
}

/* D19: a rule marked locate: false keeps its holder out of the answer. */
Test(locate, locate_false_leaves_the_refuge_out)
{
	const char	*why[NHELD];
	char		 named[256], left[256];

	cr_expect_eq(filter("health_trust", "marac", why), 2);
	locate_summary(held, NHELD, why, 1, named, sizeof(named));
	cr_expect_str_eq(named, "childrens_social_care:concern;police:concern");
	cr_expect_str_eq(why[4], "not_locatable");
	locate_summary(held, NHELD, why, 0, left, sizeof(left));
	cr_expect(strstr(left, "refuge:refuge_stay:not_locatable") != NULL, "%s", left);
	cr_expect(strstr(named, "refuge") == NULL);
}

Test(locate, checks_before_the_person_is_read)
{
	const char *detail;

	cr_expect_null(locate_check(p, protocol_agency(p, "police"), "marac", "C-1",
	    "DC Smith", now, &detail));
	cr_expect_str_eq(locate_check(p, protocol_agency(p, "auditor"), "marac", "C-1",
	    "DC Smith", now, &detail), "not_requester");
	cr_expect_str_eq(locate_check(p, NULL, "marac", "C-1", "DC Smith", now, &detail),
	    "not_requester");
	cr_expect_str_eq(locate_check(p, protocol_agency(p, "police"), "marac", "",
	    "DC Smith", now, &detail), "incomplete_request");
	cr_expect_str_eq(locate_check(p, protocol_agency(p, "police"), "marac", "C-1",
	    NULL, now, &detail), "incomplete_request");
	cr_expect_str_eq(locate_check(p, protocol_agency(p, "police"), "fishing", "C-1",
	    "DC Smith", now, &detail), "unknown_purpose");
	cr_expect_str_eq(locate_check(p, protocol_agency(p, "police"), "marac", "C-1",
	    "DC Smith", now + 400 * 86400, &detail), "protocol_expired");
}

Test(locate, summary_is_bounded)
{
	const char	*why[NHELD];
	char		 small[24];

	filter("police", "child_protection", why);
	locate_summary(held, NHELD, why, 1, small, sizeof(small));
	cr_expect_eq(strlen(small) < sizeof(small), 1);
	cr_expect(strstr(small, "...") != NULL, "%s", small);
	locate_summary(held, 0, why, 1, small, sizeof(small));
	cr_expect_str_eq(small, "");
}

Test(locate, protocol_locate_key_is_a_boolean)
{
	static const char bad[] =
	    "protocol: {id: x, version: \"1\", owner: o, review_by: 2027-09-30}\n"
	    "agencies: [{id: a, subject: \"CN=a\", roles: [requester, holder]}]\n"
	    "purposes: [{id: p, lawful_basis: {article6: \"6(1)(e)\"}}]\n"
	    "record_types: [{id: t, fields: [{name: f, type: text, label: fact}]}]\n"
	    "rules: [{id: r, agencies: [a], purpose: p, record_type: t, fields: [f],\n"
	    "  consent: not_required, locate: perhaps}]\n";
	struct diag	 d = { 0 };
	int		 found = 0;

	cr_expect_null(protocol_load_buffer("bad.yaml", (const unsigned char *)bad,
	    sizeof(bad) - 1, 0, &d));
	cr_expect_eq(d.nerrors, 1);
	for (size_t i = 0; i < d.n; i++)
		found |= strstr(d.msgs[i], "bad.yaml:6:") != NULL &&
		    strstr(d.msgs[i], "locate") != NULL;
	cr_expect(found, "no error at the locate key");
	diag_free(&d);
}
