/*
 * People and holders (D18) on PostgreSQL: person.c's operations on the
 * subjects table's person, NHS number and matching details, with the
 * same answers and refusals. Where two daemons could race, the subject's
 * row is locked before it is read for a change, and links of one NHS
 * number queue on an advisory lock (its bucket's, pgstore_nhs.c), so two
 * views linking one number at once end as one person. pgstore.c owns the connection and statements.
 */
#include <libpq-fe.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pgstore.h"
#include "pgstore_int.h"
#include "util.h"

struct subj {
	int64_t	 person;
	char	 holder[128];
	char	 nhs[MATCH_NHS_LEN + 1];
};

/*
 * The subject's row, locked until the commit inside a write transaction:
 * 1 found, 0 unknown, -1 error.
 */
static int
subject_row(struct pgstore *p, const char *subject, struct subj *out, char *err,
    size_t errlen)
{
	const char	*vals[1] = { subject };
	PGresult	*res;
	int		 found;

	memset(out, 0, sizeof(*out));
	if ((res = pgstore_run(p, p->txn ? S_SUBJECT_LOCK : S_SUBJECT, 1, vals,
	    "subject", err, errlen)) == NULL)
		return -1;
	if ((found = PQntuples(res) > 0)) {
		out->person = pgstore_int(res, 0, 0);
		snprintf(out->holder, sizeof(out->holder), "%s", pgstore_text(res, 0, 1));
		snprintf(out->nhs, sizeof(out->nhs), "%s", pgstore_text(res, 0, 2));
	}
	PQclear(res);
	return found;
}

/* Row 0 column 0 of a statement as a number (0 when no row), or -1. */
static int64_t
first_int(struct pgstore *p, int q, int n, const char *const *vals,
    const char *what, char *err, size_t errlen)
{
	PGresult	*res;
	int64_t		 v = 0;

	if ((res = pgstore_run(p, q, n, vals, what, err, errlen)) == NULL)
		return -1;
	if (PQntuples(res) > 0)
		v = pgstore_int(res, 0, 0);
	PQclear(res);
	return v;
}

/*
 * Row 0 column 0 of a statement into out (len bytes): 1, 0 when it has no
 * row, -1 with what failed in err.
 */
static int
first_text(struct pgstore *p, int q, int n, const char *const *vals, char *out,
    size_t len, const char *what, char *err, size_t errlen)
{
	PGresult	*res;
	int		 found;

	if ((res = pgstore_run(p, q, n, vals, what, err, errlen)) == NULL)
		return -1;
	if ((found = PQntuples(res) > 0))
		snprintf(out, len, "%s", pgstore_text(res, 0, 0));
	PQclear(res);
	return found;
}

/* A person of its own for subject: its current one if nobody shares it. */
static int64_t
own_person(struct pgstore *p, const struct subj *cur, const char *subject,
    char *err, size_t errlen)
{
	char		 pb[24];
	const char	*vals[2] = { pb, subject };
	int64_t		 n;

	snprintf(pb, sizeof(pb), "%" PRId64, cur->person);
	if ((n = first_int(p, S_SHARED, 2, vals, "person", err, errlen)) == -1)
		return -1;
	return n == 0 ? cur->person :
	    first_int(p, S_NEW_PERSON, 0, NULL, "person", err, errlen);
}

static int
set_nhs(struct pgstore *p, const char *subject, const char *nhs, int64_t person,
    char *err, size_t errlen)
{
	char		 pb[24];
	const char	*vals[3] = { subject, nhs, pb };

	snprintf(pb, sizeof(pb), "%" PRId64, person);
	return pgstore_exec(p, S_SET_NHS, 3, vals, "nhs_number", err, errlen);
}

/*
 * The person of the other subjects that link nhs (0: none), after taking
 * the number's lock: a link of the same number by another daemon commits
 * first or waits for this one, so both see one person.
 */
static int64_t
nhs_person(struct pgstore *p, const char *subject, const char *nhs, char *err,
    size_t errlen)
{
	const char *vals[2] = { nhs, subject };

	if (pgstore_nhs_lock_one(p, nhs, err, errlen) == -1)
		return -1;
	return first_int(p, S_BY_NHS, 2, vals, "nhs_number", err, errlen);
}

/* The local id by which cur's holder holds person, other than subject. */
static int
clash(struct pgstore *p, int64_t person, const struct subj *cur,
    const char *subject, char *other, size_t len, char *err, size_t errlen)
{
	char		 pb[24];
	const char	*vals[3] = { pb, cur->holder, subject };

	snprintf(pb, sizeof(pb), "%" PRId64, person);
	return first_text(p, S_CLASH, 3, vals, other, len, "nhs_number", err, errlen);
}

int
pgstore_person_link_nhs(struct pgstore *p, const char *subject, const char *nhs,
    char *err, size_t errlen)
{
	struct subj	 cur;
	char		 other[130];
	int64_t		 target;
	int		 rc;

	if ((rc = subject_row(p, subject, &cur, err, errlen)) != 1)
		return rc == 0 ? errorf(err, errlen, "unknown subject") : -1;
	if (strcmp(cur.nhs, nhs) == 0)
		return 0;
	if ((target = nhs_person(p, subject, nhs, err, errlen)) == -1)
		return -1;
	if (target != 0) {
		/* D18: a holder's view of a person is one local id. */
		if ((rc = clash(p, target, &cur, subject, other, sizeof(other), err,
		    errlen)) == -1)
			return -1;
		if (rc == 1)
			return errorf(err, errlen, "this holder already holds the person "
			    "with that NHS number under another local id");
	} else if (cur.nhs[0] == '\0')
		target = cur.person;	/* alone already: a person of its own */
	else if ((target = first_int(p, S_NEW_PERSON, 0, NULL, "person", err,
	    errlen)) == -1)
		return -1;
	return set_nhs(p, subject, nhs, target, err, errlen) == -1 ? -1 : 1;
}

int
pgstore_person_nhs_clash(struct pgstore *p, const char *subject, const char *nhs,
    char *other, size_t len, char *err, size_t errlen)
{
	struct subj	 cur;
	int64_t		 target;
	int		 rc;

	other[0] = '\0';
	if ((rc = subject_row(p, subject, &cur, err, errlen)) != 1)
		return rc == 0 ? errorf(err, errlen, "unknown subject") : -1;
	if ((target = nhs_person(p, subject, nhs, err, errlen)) <= 0)
		return (int)target;
	return clash(p, target, &cur, subject, other, len, err, errlen);
}

int
pgstore_person_unlink_nhs(struct pgstore *p, const char *subject, char *err,
    size_t errlen)
{
	struct subj	 cur;
	int64_t		 person;
	int		 rc;

	if ((rc = subject_row(p, subject, &cur, err, errlen)) != 1)
		return rc == 0 ? errorf(err, errlen, "unknown subject") : -1;
	if (cur.nhs[0] == '\0')
		return 0;
	if ((person = own_person(p, &cur, subject, err, errlen)) == -1)
		return -1;
	return set_nhs(p, subject, NULL, person, err, errlen) == -1 ? -1 : 1;
}

int
pgstore_person_nhs_of(struct pgstore *p, const char *subject,
    char out[MATCH_NHS_LEN + 1], char *err, size_t errlen)
{
	struct subj	 cur;
	int		 rc;

	out[0] = '\0';
	if ((rc = subject_row(p, subject, &cur, err, errlen)) != 1)
		return rc;
	memcpy(out, cur.nhs, sizeof(cur.nhs));
	return out[0] != '\0';
}

static int
given(const char *v)
{
	return v != NULL && *v != '\0';
}

/* person_set_details(): checked as the SQLite store checks them. */
int
pgstore_person_set_details(struct pgstore *p, const char *subject,
    const char *family, const char *given_name, const char *dob,
    const char *postcode, char *err, size_t errlen)
{
	char		 key[MATCH_NAME_MAX + 1];
	const char	*vals[6];

	if (person_details_check(family, given_name, dob, postcode, key, sizeof(key),
	    err, errlen) == -1)
		return -1;
	vals[0] = subject;
	vals[1] = given(family) ? family : NULL;
	vals[2] = given(given_name) ? given_name : NULL;
	vals[3] = given(dob) ? dob : NULL;
	vals[4] = given(postcode) ? postcode : NULL;
	vals[5] = given(family) ? key : NULL;
	return pgstore_exec(p, S_SET_DETAILS, 6, vals, "details", err, errlen);
}

/* The `person` record's field into out ("" when absent); 0 or -1. */
static int
record_field(struct pgstore *p, const char *subject, const char *field, char *out,
    size_t len, char *err, size_t errlen)
{
	const char *vals[2] = { subject, field };

	out[0] = '\0';
	return first_text(p, S_RECORD_FIELD, 2, vals, out, len, "record", err,
	    errlen) == -1 ? -1 : 0;
}

/* person_details_from_record(): the details the `person` record gives. */
int
pgstore_person_details_from_record(struct pgstore *p, const char *subject,
    char *err, size_t errlen)
{
	char		 full[512], dob[64], pc[64];
	const char	*family, *given_name, *d, *pcode;

	if (record_field(p, subject, "full_name", full, sizeof(full), err,
	    errlen) == -1 ||
	    record_field(p, subject, "date_of_birth", dob, sizeof(dob), err,
	    errlen) == -1 ||
	    record_field(p, subject, "postcode", pc, sizeof(pc), err, errlen) == -1)
		return -1;
	person_details_of_record(full, dob, pc, &family, &given_name, &d, &pcode);
	return pgstore_person_set_details(p, subject, family, given_name, d, pcode,
	    err, errlen);
}

/*
 * The same details from the fields a put of the `person` record has just
 * written (exactly these: pgstore_put_record() replaces them all), so that
 * a put needs no read back; cut to the lengths record_field() reads.
 */
int
pgstore_person_details_of_fields(struct pgstore *p, const char *subject,
    const char *const *names, const char *const *values, size_t n, char *err,
    size_t errlen)
{
	char		 full[512] = "", dob[64] = "", pc[64] = "";
	const char	*family, *given_name, *d, *pcode;

	for (size_t i = 0; i < n; i++) {
		if (strcmp(names[i], "full_name") == 0)
			snprintf(full, sizeof(full), "%s", values[i]);
		else if (strcmp(names[i], "date_of_birth") == 0)
			snprintf(dob, sizeof(dob), "%s", values[i]);
		else if (strcmp(names[i], "postcode") == 0)
			snprintf(pc, sizeof(pc), "%s", values[i]);
	}
	person_details_of_record(full, dob, pc, &family, &given_name, &d, &pcode);
	return pgstore_person_set_details(p, subject, family, given_name, d, pcode,
	    err, errlen);
}

/* The candidates of one index query, their strings owned by res. */
static int
candidates(const PGresult *res, struct match_holding **out)
{
	int n = PQntuples(res);

	*out = n > 0 ? xcalloc((size_t)n, sizeof(**out)) : NULL;
	for (int i = 0; i < n; i++) {
		struct match_holding *h = &(*out)[i];

		h->person = pgstore_int(res, i, 0);
#define COL(c)	(PQgetisnull(res, i, c) ? NULL : PQgetvalue(res, i, c))
		h->nhs = COL(1);
		h->family = COL(2);
		h->given = COL(3);
		h->dob = COL(4);
		h->postcode = COL(5);
#undef COL
	}
	return n;
}

/*
 * person_find(): the index narrows by the exact NHS number, or by family
 * name and date of birth; match_resolve() decides over what it offers.
 */
int
pgstore_person_find(struct pgstore *p, const struct match_query *q,
    struct match_result *out, char *err, size_t errlen)
{
	struct match_holding	*hs = NULL;
	char			 key[MATCH_NAME_MAX + 1];
	const char		*why, *vals[2] = { key, q->dob };
	PGresult		*res = NULL;
	int			 n = 0, stmt = -1;

	if (given(q->nhs)) {
		if (match_nhs_parse(q->nhs, key, &why) == 0)
			stmt = S_FIND_NHS;
	} else if (given(q->family) && given(q->dob) &&
	    match_name_norm(q->family, key, sizeof(key), &why) == 0)
		stmt = S_FIND_DEMO;
	if (stmt != -1) {
		if ((res = pgstore_run(p, stmt, stmt == S_FIND_NHS ? 1 : 2, vals,
		    "find", err, errlen)) == NULL)
			return -1;
		n = candidates(res, &hs);
	}
	match_resolve(q, hs, (size_t)n, out);
	free(hs);
	PQclear(res);
	return 0;
}

int
pgstore_person_of(struct pgstore *p, const char *subject, int64_t *person,
    char *err, size_t errlen)
{
	struct subj	 cur;
	int		 rc;

	if ((rc = subject_row(p, subject, &cur, err, errlen)) == 1)
		*person = cur.person;
	return rc;
}

int
pgstore_person_holding(struct pgstore *p, int64_t person, const char *holder,
    char *subject, size_t len, char *err, size_t errlen)
{
	char		 pb[24];
	const char	*vals[2] = { pb, holder };

	snprintf(pb, sizeof(pb), "%" PRId64, person);
	return first_text(p, S_HOLDING, 2, vals, subject, len, "holding", err, errlen);
}

int
pgstore_person_holdings(struct pgstore *p, int64_t person, person_holding_cb cb,
    void *arg, char *err, size_t errlen)
{
	char		 pb[24];
	const char	*vals[1] = { pb };
	PGresult	*res;

	snprintf(pb, sizeof(pb), "%" PRId64, person);
	if ((res = pgstore_run(p, S_HOLDINGS, 1, vals, "holdings", err,
	    errlen)) == NULL)
		return -1;
	for (int i = 0; i < PQntuples(res); i++)
		if (cb(pgstore_text(res, i, 0), pgstore_text(res, i, 1), arg) == -1) {
			PQclear(res);
			return errorf(err, errlen, "holdings: stopped by the caller");
		}
	PQclear(res);
	return 0;
}

int
pgstore_person_records(struct pgstore *p, int64_t person, person_record_cb cb,
    void *arg, char *err, size_t errlen)
{
	char		 pb[24];
	const char	*vals[1] = { pb };
	PGresult	*res;

	snprintf(pb, sizeof(pb), "%" PRId64, person);
	if ((res = pgstore_run(p, S_RECORDS, 1, vals, "records", err,
	    errlen)) == NULL)
		return -1;
	for (int i = 0; i < PQntuples(res); i++)
		if (cb(pgstore_text(res, i, 0), pgstore_text(res, i, 1),
		    pgstore_text(res, i, 2), arg) == -1) {
			PQclear(res);
			return errorf(err, errlen, "records: stopped by the caller");
		}
	PQclear(res);
	return 0;
}

int
pgstore_person_of_holding(struct pgstore *p, const char *holder,
    const char *subject, int64_t *person, char *err, size_t errlen)
{
	struct subj	 cur;
	int		 rc;

	if ((rc = subject_row(p, subject, &cur, err, errlen)) != 1)
		return rc;
	if (holder != NULL && *holder != '\0' && strcmp(holder, cur.holder) != 0)
		return 0;
	*person = cur.person;
	return 1;
}
