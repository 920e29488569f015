/*
 * The matching cases through the storage interface (storage_case.h,
 * sc_run_matching()): a tests/data/matching/NAME.case's holdings stored as
 * subjects of each backend, its query through storage_find(). Apart from
 * storage_case.c, the interpreter of tests/data/storage/NAME.case, which
 * shares nothing with it but the backends.
 */
#include <criterion/criterion.h>

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol.h"
#include "storage.h"
#include "storage_case.h"
#include "util.h"
#include "yamlutil.h"

#define SC_MAX_HOLDINGS	64

struct sc_holding;
static int	sc_put_holdings(struct sc_backend *, const struct sc_holding *,
		    size_t, int64_t *, char *, size_t);

/* A case's holding: case person, holder, local id and what it recorded. */
struct sc_holding {
	long long	 person;
	const char	*holder, *local_id, *nhs, *family, *given, *dob, *postcode;
};

static const char *
sget(struct yfile *yf, yaml_node_t *map, const char *key)
{
	yaml_node_t *v = map != NULL ? yget(yf, map, key) : NULL;

	return v != NULL && v->type == YAML_SCALAR_NODE ?
	    (const char *)v->data.scalar.value : NULL;
}

static size_t
sc_holdings(struct yfile *yf, yaml_node_t *seq, struct sc_holding *hs)
{
	size_t n = 0;

	cr_assert(seq != NULL && seq->type == YAML_SEQUENCE_NODE, "holdings");
	YSEQ_FOREACH(yf, seq, it) {
		yaml_node_t *h = ynode(yf, *it);

		cr_assert_lt(n, SC_MAX_HOLDINGS);
		hs[n].person = atoll(sget(yf, h, "person"));
		hs[n].holder = sget(yf, h, "holder");
		hs[n].local_id = sget(yf, h, "local_id");
		hs[n].nhs = sget(yf, h, "nhs");
		hs[n].family = sget(yf, h, "family");
		hs[n].given = sget(yf, h, "given");
		hs[n].dob = sget(yf, h, "dob");
		hs[n].postcode = sget(yf, h, "postcode");
		cr_assert(hs[n].holder != NULL && hs[n].local_id != NULL);
		n++;
	}
	return n;
}

/*
 * Stores the holdings in one backend, in one transaction (one commit to
 * wait for, not one per write); 1, or 0 with why in skip when they cannot
 * be stored as they are.
 */
static int
sc_store_holdings(struct sc_backend *b, const struct sc_holding *hs, size_t n,
    int64_t *persons, char *skip, size_t skiplen)
{
	char	err[256] = "";
	int	rc;

	rc = storage_begin(b->s, err, sizeof(err));
	cr_assert_eq(rc, 0, "%s: begin: %s", b->name, err);
	if ((rc = sc_put_holdings(b, hs, n, persons, skip, skiplen)) == 1) {
		cr_assert_eq(storage_commit(b->s, err, sizeof(err)), 0,
		    "%s: commit: %s", b->name, err);
	} else
		storage_rollback(b->s);
	return rc;
}

static int
sc_put_holdings(struct sc_backend *b, const struct sc_holding *hs, size_t n,
    int64_t *persons, char *skip, size_t skiplen)
{
	const char	*names[1] = { "gp_practice" }, *values[1] = { "-" };
	char		 err[256] = "", nhs[MATCH_NHS_LEN + 1];
	const char	*why;
	int		 rc;

	for (size_t i = 0; i < n; i++) {
		const struct sc_holding *h = &hs[i];

		rc = storage_put_record(b->s, h->local_id, "concern", h->holder,
		    1700000000, names, values, 1, err, sizeof(err));
		cr_assert_eq(rc, 0, "%s: put %s: %s", b->name, h->local_id, err);
		rc = storage_set_details(b->s, h->local_id, h->family, h->given,
		    h->dob, h->postcode, err, sizeof(err));
		if (rc == -1) {
			snprintf(skip, skiplen, "%s: details refused: %s", h->local_id,
			    err);
			return 0;
		}
		if (h->nhs == NULL)
			continue;
		if (match_nhs_parse(h->nhs, nhs, &why) == -1 ||
		    strcmp(nhs, h->nhs) != 0) {
			snprintf(skip, skiplen, "%s: the store keeps only checked NHS "
			    "numbers without spaces", h->local_id);
			return 0;
		}
		rc = storage_link_nhs(b->s, h->local_id, nhs, err, sizeof(err));
		if (rc == -1) {
			snprintf(skip, skiplen, "%s: link refused: %s", h->local_id, err);
			return 0;
		}
	}
	for (size_t i = 0; i < n; i++) {
		cr_assert_eq(storage_of_holding(b->s, NULL, hs[i].local_id,
		    &persons[i], err, sizeof(err)), 1, "%s: %s", hs[i].local_id, err);
		/* The store's persons must be the case's, one for one. */
		for (size_t j = 0; j < i; j++)
			if ((persons[i] == persons[j]) != (hs[i].person == hs[j].person)) {
				snprintf(skip, skiplen, "%s and %s: the store's persons "
				    "differ from the case's", hs[j].local_id,
				    hs[i].local_id);
				return 0;
			}
	}
	return 1;
}

int
sc_run_matching(const char *path, const char *population, struct sc_backend *bs,
    size_t nb, char *skip, size_t skiplen)
{
	static struct sc_holding	 hs[SC_MAX_HOLDINGS];
	static int64_t			 persons[SC_MAX_HOLDINGS];
	struct diag			 d = { 0 };
	struct yfile			 yf, pop;
	struct match_query		 q = { 0 };
	yaml_node_t			*root, *hn, *qn, *exp;
	const char			*want, *wperson, *wwhy;
	size_t				 n;
	int				 own, ran = 1;

	cr_assert_eq(yfile_load(&yf, path, &d), 0, "%s: cannot parse", path);
	root = yfile_root(&yf);
	if (!(own = (hn = yget(&yf, root, "holdings")) != NULL)) {
		cr_assert_eq(yfile_load(&pop, population, &d), 0);
		hn = yget(&pop, yfile_root(&pop), "holdings");
	}
	n = sc_holdings(own ? &yf : &pop, hn, hs);
	qn = yget(&yf, root, "query");
	exp = yget(&yf, root, "expect");
	cr_assert(qn != NULL && exp != NULL, "%s: query and expect", path);
	q.nhs = sget(&yf, qn, "nhs");
	q.family = sget(&yf, qn, "family");
	q.given = sget(&yf, qn, "given");
	q.dob = sget(&yf, qn, "dob");
	q.postcode = sget(&yf, qn, "postcode");
	want = sget(&yf, exp, "outcome");
	wperson = sget(&yf, exp, "person");
	wwhy = sget(&yf, exp, "why");
	for (size_t k = 0; k < nb && ran; k++) {
		struct match_result	 res;
		char			 err[256] = "";
		long long		 got = 0;
		int			 rc;

		if (!(ran = sc_store_holdings(&bs[k], hs, n, persons, skip, skiplen)))
			break;
		rc = storage_find(bs[k].s, &q, &res, err, sizeof(err));
		cr_assert_eq(rc, 0, "%s (%s): %s", path, bs[k].name, err);
		cr_expect_str_eq(match_outcome_name(res.outcome), want, "%s (%s): "
		    "outcome %s (%s)", path, bs[k].name,
		    match_outcome_name(res.outcome), res.why ? res.why : "");
		for (size_t i = 0; i < n && res.outcome == MATCH_ONE; i++)
			if (persons[i] == res.person)
				got = hs[i].person;
		if (wperson != NULL)
			cr_expect_eq(got, atoll(wperson), "%s (%s): person %lld", path,
			    bs[k].name, got);
		if (wwhy != NULL)
			cr_expect(res.why != NULL && strstr(res.why, wwhy) != NULL,
			    "%s (%s): why \"%s\"", path, bs[k].name,
			    res.why ? res.why : "");
	}
	if (!own)
		yfile_free(&pop);
	yfile_free(&yf);
	diag_free(&d);
	return ran;
}
