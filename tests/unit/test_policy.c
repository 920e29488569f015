/*
 * The decision function, table-driven: every tests/data/decisions/NAME.case file
 * is one case (format in tests/data/decisions/README.md). Plus direct tests
 * of each transform.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "testutil.h"
#include "yamlutil.h"

#define DDIR DATA_DIR "/decisions"

ParameterizedTestParameters(decisions, table)
{
	static struct t_case_file cases[512];

	return cr_make_param_array(struct t_case_file, cases,
	    t_case_files(DDIR, cases, 512));
}

/* Issue 4 asks for at least 60 decision cases. */
Test(decisions, cases_present)
{
	struct criterion_test_params	 params = decisions_table_param();

	cr_assert_geq(params.length, 60, "only %zu decision cases in " DDIR, params.length);
}

static const char *
sget(struct yfile *yf, yaml_node_t *map, const char *key)
{
	yaml_node_t *n = map ? yget(yf, map, key) : NULL;

	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static int
bget(struct yfile *yf, yaml_node_t *map, const char *key)
{
	const char *s = sget(yf, map, key);

	return s != NULL && strcmp(s, "true") == 0;
}

/* Collects a list of scalars into out[]; returns how many. */
static size_t
list(struct yfile *yf, yaml_node_t *map, const char *key, const char **out, size_t max)
{
	yaml_node_t	*n = map ? yget(yf, map, key) : NULL;
	size_t		 k = 0;

	if (n == NULL || n->type != YAML_SEQUENCE_NODE)
		return 0;
	YSEQ_FOREACH(yf, n, it) {
		yaml_node_t *v = ynode(yf, *it);

		if (k < max && v->type == YAML_SCALAR_NODE)
			out[k++] = (const char *)v->data.scalar.value;
	}
	return k;
}

ParameterizedTest(struct t_case_file *c, decisions, table)
{
	struct diag		 d = { 0 };
	struct yfile		 yf;
	struct protocol		*p;
	struct policy_request	 rq;
	struct policy_subject	 subj;
	struct decision		 dec;
	yaml_node_t		*root, *req, *sn, *exp, *vals, *n;
	const char		*fields[PROTOCOL_MAX_FIELDS], *flags[16];
	const char		*values[PROTOCOL_MAX_FIELDS] = { 0 };
	const char		*s, *pfile;
	const struct agency	*ag;
	char			 path[512];
	int64_t			 now = 0;

	snprintf(path, sizeof(path), DDIR "/%s", c->name);
	cr_assert_eq(yfile_load(&yf, path, &d), 0, "%s: cannot parse", c->name);
	root = yfile_root(&yf);
	pfile = sget(&yf, root, "protocol");
	snprintf(path, sizeof(path), DDIR "/%s", pfile ? pfile : "base.yaml");
	cr_assert(date_parse(sget(&yf, root, "now"), &now) == 0, "%s: bad now", c->name);
	/* Load the protocol as of a fixed early date, so expiry cases can load. */
	p = protocol_load(path, 0, &d);
	if (p == NULL)
		diag_print(&d, stderr);
	cr_assert_not_null(p, "%s: protocol %s does not load", c->name, path);
	ag = protocol_agency(p, sget(&yf, root, "agency"));

	req = yget(&yf, root, "request");
	cr_assert_not_null(req, "%s: no request", c->name);
	memset(&rq, 0, sizeof(rq));
	rq.purpose = sget(&yf, req, "purpose");
	rq.case_ref = sget(&yf, req, "case");
	rq.practitioner = sget(&yf, req, "practitioner");
	rq.subject_id = sget(&yf, req, "subject");
	rq.record_type = sget(&yf, req, "record_type");
	rq.nfields = list(&yf, req, "fields", fields, PROTOCOL_MAX_FIELDS);
	rq.fields = fields;
	rq.consult = bget(&yf, req, "consult");
	rq.override_code = sget(&yf, req, "override");
	rq.justification = sget(&yf, req, "justification");
	rq.inform_waiver = sget(&yf, req, "inform_waiver");

	memset(&subj, 0, sizeof(subj));
	if ((sn = yget(&yf, root, "subject")) != NULL) {
		const struct record_type *rt = protocol_record_type(p,
		    rq.record_type ? rq.record_type : "");

		subj.known = 1;
		if ((s = sget(&yf, sn, "consent")) != NULL)
			cr_assert_eq(consent_parse(s, &subj.consent), 0, "%s: consent", c->name);
		if ((s = sget(&yf, sn, "consent_expires")) != NULL)
			cr_assert_eq(date_parse(s, &subj.consent_expires), 0);
		subj.nflags = list(&yf, sn, "flags", flags, 16);
		subj.flags = flags;
		if ((s = sget(&yf, sn, "last_verified")) != NULL)
			date_parse(s, &subj.last_verified);
		if ((vals = yget(&yf, sn, "values")) != NULL && rt != NULL)
			YMAP_FOREACH(&yf, vals, pair) {
				size_t idx;
				const char *k = (char *)ynode(&yf, pair->key)->data.scalar.value;

				cr_assert_not_null(record_type_field(rt, k, &idx),
				    "%s: no field %s", c->name, k);
				values[idx] = (char *)ynode(&yf, pair->value)->data.scalar.value;
			}
		subj.values = values;
	}

	policy_decide(p, ag, &rq, sn ? &subj : NULL, now, &dec);

	exp = yget(&yf, root, "expect");
	cr_assert_not_null(exp, "%s: no expect", c->name);
	cr_expect_str_eq(decision_name(dec.kind), sget(&yf, exp, "decision"),
	    "%s: decision %s (%s: %s)", c->name, decision_name(dec.kind), dec.reason,
	    dec.detail);
	if ((s = sget(&yf, exp, "reason")) != NULL)
		cr_expect_str_eq(dec.reason, s, "%s: reason %s, expected %s (%s)",
		    c->name, dec.reason, s, dec.detail);
	if ((s = sget(&yf, exp, "rule")) != NULL)
		cr_expect(dec.rule != NULL && strcmp(dec.rule->id, s) == 0,
		    "%s: rule", c->name);
	if ((s = sget(&yf, exp, "detail")) != NULL)
		cr_expect(strstr(dec.detail, s) != NULL, "%s: detail \"%s\" lacks \"%s\"",
		    c->name, dec.detail, s);
	if ((s = sget(&yf, exp, "detail_lacks")) != NULL)
		cr_expect(strstr(dec.detail, s) == NULL, "%s: detail \"%s\" has \"%s\"",
		    c->name, dec.detail, s);
	if (sget(&yf, exp, "review_required") != NULL)
		cr_expect_eq(dec.review_required, bget(&yf, exp, "review_required"),
		    "%s: review_required", c->name);
	if (sget(&yf, exp, "inform_subject") != NULL)
		cr_expect_eq(dec.inform_subject, bget(&yf, exp, "inform_subject"),
		    "%s: inform_subject", c->name);
	/* released: the exact set of fields released, with their values. */
	if ((n = yget(&yf, exp, "released")) != NULL) {
		size_t want = 0;

		if (n->type == YAML_MAPPING_NODE)
			YMAP_FOREACH(&yf, n, pair) {
				const char *k = (char *)ynode(&yf, pair->key)->data.scalar.value;
				const char *v = (char *)ynode(&yf, pair->value)->data.scalar.value;
				int found = 0;

				want++;
				for (size_t i = 0; i < dec.nfields; i++)
					if (dec.fields[i].released &&
					    strcmp(dec.fields[i].def->name, k) == 0) {
						found = 1;
						cr_expect_str_eq(dec.fields[i].value, v,
						    "%s: %s = \"%s\", expected \"%s\"", c->name,
						    k, dec.fields[i].value, v);
					}
				cr_expect(found, "%s: %s not released", c->name, k);
			}
		cr_expect_eq(dec.nreleased, want, "%s: released %zu fields, expected %zu",
		    c->name, dec.nreleased, want);
	}
	/* withheld: each listed field is withheld with that reason. */
	if ((n = yget(&yf, exp, "withheld")) != NULL && n->type == YAML_MAPPING_NODE)
		YMAP_FOREACH(&yf, n, pair) {
			const char *k = (char *)ynode(&yf, pair->key)->data.scalar.value;
			const char *v = (char *)ynode(&yf, pair->value)->data.scalar.value;
			int found = 0;

			for (size_t i = 0; i < dec.nfields; i++)
				if (!dec.fields[i].released &&
				    strcmp(dec.fields[i].def->name, k) == 0) {
					found = 1;
					cr_expect_str_eq(dec.fields[i].reason, v,
					    "%s: %s withheld for %s, expected %s", c->name, k,
					    dec.fields[i].reason, v);
				}
			/* Names the record type lacks are withheld unknown_field. */
			for (size_t i = 0; i < dec.nunknown && i < POLICY_MAX_UNKNOWN; i++)
				if (strcmp(dec.unknown[i], k) == 0) {
					found = 1;
					cr_expect_str_eq("unknown_field", v,
					    "%s: %s withheld for unknown_field, expected %s",
					    c->name, k, v);
				}
			cr_expect(found, "%s: %s not withheld", c->name, k);
		}
	protocol_unref(p);
	yfile_free(&yf);
	diag_free(&d);
}

Test(transforms, year_only)
{
	char b[48];

	cr_assert_str_eq(policy_transform(TR_YEAR_ONLY, "2015-03-09", 0, b, sizeof(b)), "2015");
	cr_assert_str_eq(policy_transform(TR_YEAR_ONLY, "March 2015", 0, b, sizeof(b)),
	    "[redacted]", "a value the transform cannot coarsen is never passed through");
}

Test(transforms, age_band)
{
	char	 b[48];
	int64_t	 now;

	cr_assert_eq(date_parse("2026-11-25", &now), 0);
	cr_assert_str_eq(policy_transform(TR_AGE_BAND, "2015-03-09", now, b, sizeof(b)), "10-15");
	cr_assert_str_eq(policy_transform(TR_AGE_BAND, "2008-11-26", now, b, sizeof(b)), "16-17",
	    "turns 18 tomorrow: still 17");
	cr_assert_str_eq(policy_transform(TR_AGE_BAND, "2008-11-25", now, b, sizeof(b)), "18-24");
	cr_assert_str_eq(policy_transform(TR_AGE_BAND, "1939-04-02", now, b, sizeof(b)), "75+");
	cr_assert_str_eq(policy_transform(TR_AGE_BAND, "2030-01-01", now, b, sizeof(b)), "[redacted]");
}

/*
 * Issue 16 item 8: transforms read dates with date_parse()'s rules, the
 * ones holders' data was checked by; sscanf took "2015-3-9" and the
 * impossible 2015-02-31. A value that is not a date cannot be coarsened,
 * so nothing of it goes (D2).
 */
Test(transforms, dates_read_like_date_parse)
{
	const char	*bad[] = { "2015-3-9", "2015-02-31", "2015-03-09x", " 2015-03-09",
	    "0015-03-09" };
	char		 b[48];
	int64_t		 now, t;

	cr_assert_eq(date_parse("2026-11-25", &now), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_str_eq(policy_transform(TR_YEAR_ONLY, bad[i], now, b, sizeof(b)),
		    "[redacted]", "year_only of \"%s\"", bad[i]);
		cr_assert_str_eq(policy_transform(TR_AGE_BAND, bad[i], now, b, sizeof(b)),
		    "[redacted]", "age_band of \"%s\"", bad[i]);
		cr_assert_eq(date_parse(bad[i], &t), -1, "date_parse(\"%s\")", bad[i]);
	}
}

Test(transforms, postcode_district)
{
	char b[48];

	cr_assert_str_eq(policy_transform(TR_POSTCODE_DISTRICT, "SW1A 1AA", 0, b, sizeof(b)), "SW1A");
	cr_assert_str_eq(policy_transform(TR_POSTCODE_DISTRICT, "ex14qt", 0, b, sizeof(b)), "EX1");
	cr_assert_str_eq(policy_transform(TR_POSTCODE_DISTRICT, "not a postcode", 0, b, sizeof(b)),
	    "[redacted]");
}

Test(transforms, initials_and_redact)
{
	char b[48];

	cr_assert_str_eq(policy_transform(TR_INITIALS, "Amelia Jane Hart", 0, b, sizeof(b)), "A. J. H.");
	cr_assert_str_eq(policy_transform(TR_INITIALS, "Anne-Marie O'Neill", 0, b, sizeof(b)), "A. M. O.");
	cr_assert_str_eq(policy_transform(TR_REDACT, "secret", 0, b, sizeof(b)), "[redacted]");
}
