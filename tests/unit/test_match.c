/*
 * Finding the person (D18), table-driven: every tests/data/matching/NAME.case
 * file is one case (format in tests/data/matching/README.md), run against
 * population.yaml or the case's own holdings. Plus direct tests of the NHS
 * number and the normalisers.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "match.h"
#include "testutil.h"
#include "yamlutil.h"

#define MDIR DATA_DIR "/matching"
#define MAX_HOLDINGS 64

ParameterizedTestParameters(matching, table)
{
	static struct t_case_file cases[256];

	return cr_make_param_array(struct t_case_file, cases,
	    t_case_files(MDIR, cases, 256));
}

/* Issue 17 asks for at least 40 matching cases. */
Test(matching, cases_present)
{
	struct criterion_test_params	 params = matching_table_param();

	cr_assert_geq(params.length, 40, "only %zu matching cases in " MDIR, params.length);
}

static const char *
sget(struct yfile *yf, yaml_node_t *map, const char *key)
{
	yaml_node_t *n = map ? yget(yf, map, key) : NULL;

	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* Reads a holdings sequence into hs; returns how many. */
static size_t
holdings(struct yfile *yf, yaml_node_t *seq, struct match_holding *hs, const char *name)
{
	size_t n = 0;

	cr_assert(seq != NULL && seq->type == YAML_SEQUENCE_NODE, "%s: holdings", name);
	YSEQ_FOREACH(yf, seq, it) {
		yaml_node_t	*h = ynode(yf, *it);
		const char	*p = sget(yf, h, "person");

		cr_assert_lt(n, MAX_HOLDINGS, "%s: too many holdings", name);
		cr_assert_not_null(p, "%s: holding without person", name);
		hs[n].person = atoll(p);
		hs[n].nhs = sget(yf, h, "nhs");
		hs[n].family = sget(yf, h, "family");
		hs[n].given = sget(yf, h, "given");
		hs[n].dob = sget(yf, h, "dob");
		hs[n].postcode = sget(yf, h, "postcode");
		n++;
	}
	return n;
}

ParameterizedTest(struct t_case_file *c, matching, table)
{
	struct diag		 d = { 0 };
	struct yfile		 yf, pop;
	struct match_holding	 hs[MAX_HOLDINGS];
	struct match_query	 q;
	struct match_result	 res;
	yaml_node_t		*root, *qn, *exp, *hn;
	const char		*s;
	char			 path[512];
	size_t			 n;
	int			 own;

	snprintf(path, sizeof(path), MDIR "/%s", c->name);
	cr_assert_eq(yfile_load(&yf, path, &d), 0, "%s: cannot parse", c->name);
	root = yfile_root(&yf);
	own = (hn = yget(&yf, root, "holdings")) != NULL;
	if (own)
		n = holdings(&yf, hn, hs, c->name);
	else {
		cr_assert_eq(yfile_load(&pop, MDIR "/population.yaml", &d), 0);
		n = holdings(&pop, yget(&pop, yfile_root(&pop), "holdings"), hs,
		    "population.yaml");
	}
	qn = yget(&yf, root, "query");
	cr_assert_not_null(qn, "%s: no query", c->name);
	memset(&q, 0, sizeof(q));
	q.nhs = sget(&yf, qn, "nhs");
	q.family = sget(&yf, qn, "family");
	q.given = sget(&yf, qn, "given");
	q.dob = sget(&yf, qn, "dob");
	q.postcode = sget(&yf, qn, "postcode");

	match_resolve(&q, hs, n, &res);

	exp = yget(&yf, root, "expect");
	cr_assert_not_null(exp, "%s: no expect", c->name);
	cr_expect_str_eq(match_outcome_name(res.outcome), sget(&yf, exp, "outcome"),
	    "%s: outcome %s (%s)", c->name, match_outcome_name(res.outcome),
	    res.why ? res.why : "");
	if ((s = sget(&yf, exp, "person")) != NULL)
		cr_expect_eq(res.person, atoll(s), "%s: person %lld", c->name,
		    (long long)res.person);
	else	/* D18: only one match names a person */
		cr_expect_eq(res.person, 0, "%s: a person without a match", c->name);
	if ((s = sget(&yf, exp, "why")) != NULL)
		cr_expect(res.why != NULL && strstr(res.why, s) != NULL,
		    "%s: why \"%s\" lacks \"%s\"", c->name, res.why ? res.why : "", s);
	else
		cr_expect_null(res.why, "%s: why \"%s\"", c->name, res.why);
	if (!own)
		yfile_free(&pop);
	yfile_free(&yf);
	diag_free(&d);
}

Test(matching, nhs_parse)
{
	char		 out[MATCH_NHS_LEN + 1];
	const char	*why = NULL;

	cr_assert_eq(match_nhs_parse("943 476 5919", out, &why), 0);
	cr_assert_str_eq(out, "9434765919");
	/* Check digit 11 becomes 0. */
	cr_assert_eq(match_nhs_parse("9876543210", out, &why), 0);
	cr_assert_eq(match_nhs_parse("9876543211", out, &why), -1);
	cr_assert_str_eq(why, "NHS number check digit is wrong");
	cr_assert_eq(match_nhs_parse("", out, &why), -1);
	cr_assert_eq(match_nhs_parse("1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8", out, &why), -1);
	cr_assert_eq(match_nhs_parse(NULL, out, &why), -1);
}

Test(matching, normalisers)
{
	char		 out[MATCH_NAME_MAX + 1];
	const char	*why = NULL;
	char		 longname[MATCH_NAME_MAX + 2];

	cr_assert_eq(match_name_norm(" O'Brien-Smith ", out, sizeof(out), &why), 0);
	cr_assert_str_eq(out, "obriensmith");
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	cr_assert_eq(match_name_norm(longname, out, sizeof(out), &why), -1);
	cr_assert_eq(match_postcode_norm("ex1 4qt", out, sizeof(out), &why), 0);
	cr_assert_str_eq(out, "EX14QT");
	cr_assert_eq(match_postcode_norm("EX1 4QT EX1 4QT", out, sizeof(out), &why), -1);
}
