/*
 * People and holders (D18): the subjects table's person, NHS number and
 * matching details (migration 7 in store.c). store.c owns the connection
 * and the statements' slots; this file owns what they say.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "person.h"
#include "store_int.h"
#include "util.h"
#include "yamlutil.h"

enum {
	P_SUBJECT, P_BY_NHS, P_SHARED, P_NEW_PERSON, P_SET_NHS, P_CLASH,
	P_SET_DETAILS, P_RECORD_FIELD, P_FIND_NHS, P_FIND_DEMO, P_HOLDING,
	P_HOLDINGS, P_RECORDS, P_COUNT
};

static const char *const pqueries[P_COUNT] = {
	[P_SUBJECT] = "SELECT person, holder, nhs_number FROM subjects WHERE id = ?1",
	[P_BY_NHS] = "SELECT person FROM subjects WHERE nhs_number = ?1 AND id <> ?2 "
	    "ORDER BY person LIMIT 1",
	/* Other subjects of the same person. */
	[P_SHARED] = "SELECT count(*) FROM subjects WHERE person = ?1 AND id <> ?2",
	[P_NEW_PERSON] = "INSERT INTO persons DEFAULT VALUES",
	[P_SET_NHS] = "UPDATE subjects SET nhs_number = ?2, person = ?3 WHERE id = ?1",
	/* A holder holds a person under one local id. */
	[P_CLASH] = "SELECT id FROM subjects WHERE person = ?1 AND holder = ?2 "
	    "AND id <> ?3 LIMIT 1",
	[P_SET_DETAILS] = "UPDATE subjects SET family = ?2, given = ?3, dob = ?4, "
	    "postcode = ?5, family_key = ?6 WHERE id = ?1",
	[P_RECORD_FIELD] = "SELECT value FROM record_fields WHERE subject = ?1 "
	    "AND record_type = 'person' AND field = ?2",
	[P_FIND_NHS] = "SELECT person, nhs_number, family, given, dob, postcode "
	    "FROM subjects WHERE nhs_number = ?1",
	[P_FIND_DEMO] = "SELECT person, nhs_number, family, given, dob, postcode "
	    "FROM subjects WHERE family_key = ?1 AND dob = ?2",
	[P_HOLDING] = "SELECT id FROM subjects WHERE person = ?1 AND holder = ?2",
	[P_HOLDINGS] = "SELECT holder, id FROM subjects WHERE person = ?1 "
	    "ORDER BY holder",
	[P_RECORDS] = "SELECT s.holder, s.id, r.record_type FROM subjects s "
	    "JOIN records r ON r.subject = s.id WHERE s.person = ?1 "
	    "ORDER BY s.holder, r.record_type",
};

_Static_assert(P_COUNT <= STORE_PERSON_STMTS, "person statements fit the store's slots");

int
person_prepare(struct store *s, char *err, size_t errlen)
{
	sqlite3_stmt **q = store_person_stmts(s);

	if (q[0] != NULL)
		return 0;	/* prepared by migration 7 already */
	for (int i = 0; i < P_COUNT; i++)
		if (sqlite3_prepare_v3(store_db(s), pqueries[i], -1,
		    SQLITE_PREPARE_PERSISTENT, &q[i], NULL) != SQLITE_OK)
			return store_sqlerr(s, err, errlen, "prepare");
	return 0;
}

/* The statement i, reset and with its bindings cleared once the caller is done. */
static sqlite3_stmt *
stmt(struct store *s, int i)
{
	return store_person_stmts(s)[i];
}

static void
done(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

/* Runs a statement that returns no rows; 0 or -1. */
static int
exec(struct store *s, sqlite3_stmt *st, const char *what, char *err, size_t errlen)
{
	int rc = sqlite3_step(st);

	done(st);
	return rc == SQLITE_DONE ? 0 : store_sqlerr(s, err, errlen, what);
}

struct subj {
	int64_t	 person;
	char	 holder[128];
	char	 nhs[MATCH_NHS_LEN + 1];
};

/* 1 found, 0 unknown, -1 error. */
static int
subject_row(struct store *s, const char *subject, struct subj *out, char *err,
    size_t errlen)
{
	sqlite3_stmt	*st = stmt(s, P_SUBJECT);
	int		 rc, found = 0;

	memset(out, 0, sizeof(*out));
	sqlite3_bind_text(st, 1, subject, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *h = sqlite3_column_text(st, 1);
		const unsigned char *n = sqlite3_column_text(st, 2);

		out->person = sqlite3_column_int64(st, 0);
		snprintf(out->holder, sizeof(out->holder), "%s", h ? (const char *)h : "");
		snprintf(out->nhs, sizeof(out->nhs), "%s", n ? (const char *)n : "");
		found = 1;
	}
	done(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_sqlerr(s, err, errlen, "subject");
	return found;
}

/* Count of the other subjects of person; -1 on error. */
static int64_t
shared(struct store *s, int64_t person, const char *subject, char *err,
    size_t errlen)
{
	sqlite3_stmt	*st = stmt(s, P_SHARED);
	int64_t		 n = -1;

	sqlite3_bind_int64(st, 1, person);
	sqlite3_bind_text(st, 2, subject, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	done(st);
	if (n < 0)
		store_sqlerr(s, err, errlen, "person");
	return n;
}

/* A new person's id, or -1. */
static int64_t
new_person(struct store *s, char *err, size_t errlen)
{
	if (exec(s, stmt(s, P_NEW_PERSON), "person", err, errlen) == -1)
		return -1;
	return sqlite3_last_insert_rowid(store_db(s));
}

/* A person of its own for subject: its current one if nobody shares it. */
static int64_t
own_person(struct store *s, const struct subj *cur, const char *subject,
    char *err, size_t errlen)
{
	int64_t n = shared(s, cur->person, subject, err, errlen);

	if (n < 0)
		return -1;
	return n == 0 ? cur->person : new_person(s, err, errlen);
}

static int
set_nhs(struct store *s, const char *subject, const char *nhs, int64_t person,
    char *err, size_t errlen)
{
	sqlite3_stmt *st = stmt(s, P_SET_NHS);

	sqlite3_bind_text(st, 1, subject, -1, SQLITE_STATIC);
	if (nhs != NULL)
		sqlite3_bind_text(st, 2, nhs, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 2);
	sqlite3_bind_int64(st, 3, person);
	return exec(s, st, "nhs_number", err, errlen);
}

/*
 * The person another subject linking nhs belongs to, into *person (0: no
 * other subject links it); 0, or -1 with err.
 */
static int
nhs_person(struct store *s, const char *subject, const char *nhs, int64_t *person,
    char *err, size_t errlen)
{
	sqlite3_stmt	*st = stmt(s, P_BY_NHS);
	int		 rc;

	*person = 0;
	sqlite3_bind_text(st, 1, nhs, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, subject, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		*person = sqlite3_column_int64(st, 0);
	done(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_sqlerr(s, err, errlen, "nhs_number");
	return 0;
}

int
person_link_nhs(struct store *s, const char *subject, const char *nhs, char *err,
    size_t errlen)
{
	struct subj	 cur;
	sqlite3_stmt	*st;
	int64_t		 target = 0;
	int		 rc;

	if ((rc = subject_row(s, subject, &cur, err, errlen)) != 1)
		return rc == 0 ? errorf(err, errlen, "unknown subject") : -1;
	if (strcmp(cur.nhs, nhs) == 0)
		return 0;
	if (nhs_person(s, subject, nhs, &target, err, errlen) == -1)
		return -1;
	if (target != 0) {
		/* D18: a holder's view of a person is one local id. */
		st = stmt(s, P_CLASH);
		sqlite3_bind_int64(st, 1, target);
		sqlite3_bind_text(st, 2, cur.holder, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, subject, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		done(st);
		if (rc == SQLITE_ROW)
			return errorf(err, errlen, "this holder already holds the person with "
			    "that NHS number under another local id");
		if (rc != SQLITE_DONE)
			return store_sqlerr(s, err, errlen, "nhs_number");
	} else if (cur.nhs[0] == '\0')
		target = cur.person;	/* alone already: a person of its own */
	else if ((target = new_person(s, err, errlen)) == -1)
		return -1;
	return set_nhs(s, subject, nhs, target, err, errlen) == -1 ? -1 : 1;
}

int
person_nhs_clash(struct store *s, const char *subject, const char *nhs, char *other,
    size_t len, char *err, size_t errlen)
{
	struct subj	 cur;
	sqlite3_stmt	*st;
	int64_t		 target = 0;
	int		 rc;

	other[0] = '\0';
	if ((rc = subject_row(s, subject, &cur, err, errlen)) != 1)
		return rc == 0 ? errorf(err, errlen, "unknown subject") : -1;
	if (nhs_person(s, subject, nhs, &target, err, errlen) == -1)
		return -1;
	if (target == 0)
		return 0;
	st = stmt(s, P_CLASH);
	sqlite3_bind_int64(st, 1, target);
	sqlite3_bind_text(st, 2, cur.holder, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, subject, -1, SQLITE_STATIC);
	return store_first_text(s, st, other, len, "nhs_number", err, errlen);
}

int
person_unlink_nhs(struct store *s, const char *subject, char *err, size_t errlen)
{
	struct subj	 cur;
	int64_t		 p;
	int		 rc;

	if ((rc = subject_row(s, subject, &cur, err, errlen)) != 1)
		return rc == 0 ? errorf(err, errlen, "unknown subject") : -1;
	if (cur.nhs[0] == '\0')
		return 0;
	if ((p = own_person(s, &cur, subject, err, errlen)) == -1)
		return -1;
	return set_nhs(s, subject, NULL, p, err, errlen) == -1 ? -1 : 1;
}

int
person_nhs_of(struct store *s, const char *subject, char out[MATCH_NHS_LEN + 1],
    char *err, size_t errlen)
{
	struct subj	 cur;
	int		 rc;

	out[0] = '\0';
	if ((rc = subject_row(s, subject, &cur, err, errlen)) != 1)
		return rc;
	memcpy(out, cur.nhs, sizeof(cur.nhs));
	return out[0] != '\0';
}

static int
given(const char *v)
{
	return v != NULL && *v != '\0';
}

static void
bind_opt(sqlite3_stmt *st, int i, const char *v)
{
	if (given(v))
		sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

int
person_set_details(struct store *s, const char *subject, const char *family,
    const char *given_name, const char *dob, const char *postcode, char *err,
    size_t errlen)
{
	char		 key[MATCH_NAME_MAX + 1];
	sqlite3_stmt	*st;

	if (person_details_check(family, given_name, dob, postcode, key, sizeof(key),
	    err, errlen) == -1)
		return -1;
	st = stmt(s, P_SET_DETAILS);
	sqlite3_bind_text(st, 1, subject, -1, SQLITE_STATIC);
	bind_opt(st, 2, family);
	bind_opt(st, 3, given_name);
	bind_opt(st, 4, dob);
	bind_opt(st, 5, postcode);
	bind_opt(st, 6, given(family) ? key : NULL);
	return exec(s, st, "details", err, errlen);
}

/* The `person` record's field into out ("" when absent); 0 or -1. */
static int
record_field(struct store *s, const char *subject, const char *field, char *out,
    size_t len, char *err, size_t errlen)
{
	sqlite3_stmt	*st = stmt(s, P_RECORD_FIELD);
	int		 rc;

	out[0] = '\0';
	sqlite3_bind_text(st, 1, subject, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, field, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *v = sqlite3_column_text(st, 0);

		snprintf(out, len, "%s", v ? (const char *)v : "");
	}
	done(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : store_sqlerr(s, err, errlen, "record");
}

int
person_details_from_record(struct store *s, const char *subject, char *err,
    size_t errlen)
{
	char		 full[512], dob[64], pc[64];
	const char	*family, *given_name, *d, *p;

	if (record_field(s, subject, "full_name", full, sizeof(full), err, errlen) == -1 ||
	    record_field(s, subject, "date_of_birth", dob, sizeof(dob), err, errlen) == -1 ||
	    record_field(s, subject, "postcode", pc, sizeof(pc), err, errlen) == -1)
		return -1;
	person_details_of_record(full, dob, pc, &family, &given_name, &d, &p);
	return person_set_details(s, subject, family, given_name, d, p, err,
	    errlen);
}

int
person_migrate_details(struct store *s, char *err, size_t errlen)
{
	struct strlist	 ids = { 0 };
	sqlite3_stmt	*list;
	int		 rc, ret = -1;

	if (person_prepare(s, err, errlen) == -1)
		return -1;
	if (sqlite3_prepare_v2(store_db(s), "SELECT id FROM subjects ORDER BY id", -1,
	    &list, NULL) != SQLITE_OK)
		return store_sqlerr(s, err, errlen, "migration 7");
	while ((rc = sqlite3_step(list)) == SQLITE_ROW)
		strlist_add(&ids, (const char *)sqlite3_column_text(list, 0));
	sqlite3_finalize(list);
	if (rc != SQLITE_DONE) {
		store_sqlerr(s, err, errlen, "migration 7");
		goto fail;
	}
	for (size_t i = 0; i < ids.n; i++)
		if (person_details_from_record(s, ids.v[i], err, errlen) == -1)
			goto fail;
	ret = 0;
 fail:
	strlist_free(&ids);
	return ret;
}

/* Candidates from one index query into a growing array; 0 or -1. */
struct cands {
	struct match_holding	*v;
	char			**strs;
	size_t			 n, nstrs;
};

static const char *
keep(struct cands *c, sqlite3_stmt *st, int col)
{
	const unsigned char	*t = sqlite3_column_text(st, col);
	char			**v;

	if (t == NULL)
		return NULL;
	if ((v = realloc(c->strs, (c->nstrs + 1) * sizeof(*v))) == NULL)
		fatalx("%s: out of memory", __func__);
	c->strs = v;
	return c->strs[c->nstrs++] = xstrdup((const char *)t);
}

static void
cands_free(struct cands *c)
{
	for (size_t i = 0; i < c->nstrs; i++)
		free(c->strs[i]);
	free(c->strs);
	free(c->v);
}

int
person_find(struct store *s, const struct match_query *q, struct match_result *res,
    char *err, size_t errlen)
{
	struct cands	 c = { 0 };
	sqlite3_stmt	*st = NULL;
	char		 key[MATCH_NAME_MAX + 1];
	const char	*why;
	int		 rc;

	/*
	 * The index narrows by the exact NHS number, or by family name and
	 * date of birth; a query the matcher would refuse gets no candidates
	 * and match_resolve() says why.
	 */
	if (given(q->nhs)) {
		if (match_nhs_parse(q->nhs, key, &why) == 0) {
			st = stmt(s, P_FIND_NHS);
			sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
		}
	} else if (given(q->family) && given(q->dob) &&
	    match_name_norm(q->family, key, sizeof(key), &why) == 0) {
		st = stmt(s, P_FIND_DEMO);
		sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 2, q->dob, -1, SQLITE_STATIC);
	}
	if (st != NULL) {
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			struct match_holding *v = realloc(c.v, (c.n + 1) * sizeof(*v));

			if (v == NULL)
				fatalx("%s: out of memory", __func__);
			c.v = v;
			v = &c.v[c.n++];
			v->person = sqlite3_column_int64(st, 0);
			v->nhs = keep(&c, st, 1);
			v->family = keep(&c, st, 2);
			v->given = keep(&c, st, 3);
			v->dob = keep(&c, st, 4);
			v->postcode = keep(&c, st, 5);
		}
		done(st);
		if (rc != SQLITE_DONE) {
			cands_free(&c);
			return store_sqlerr(s, err, errlen, "find");
		}
	}
	match_resolve(q, c.v, c.n, res);
	cands_free(&c);
	return 0;
}

int
person_of(struct store *s, const char *subject, int64_t *person, char *err,
    size_t errlen)
{
	struct subj	 cur;
	int		 rc;

	if ((rc = subject_row(s, subject, &cur, err, errlen)) == 1)
		*person = cur.person;
	return rc;
}

int
person_holding(struct store *s, int64_t person, const char *holder, char *subject,
    size_t len, char *err, size_t errlen)
{
	sqlite3_stmt	*st = stmt(s, P_HOLDING);

	sqlite3_bind_int64(st, 1, person);
	sqlite3_bind_text(st, 2, holder, -1, SQLITE_STATIC);
	return store_first_text(s, st, subject, len, "holding", err, errlen);
}

int
person_holdings(struct store *s, int64_t person, person_holding_cb cb, void *arg,
    char *err, size_t errlen)
{
	sqlite3_stmt	*st = stmt(s, P_HOLDINGS);
	int		 rc;

	sqlite3_bind_int64(st, 1, person);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *h = sqlite3_column_text(st, 0);
		const unsigned char *id = sqlite3_column_text(st, 1);

		if (cb(h ? (const char *)h : "", id ? (const char *)id : "", arg) == -1) {
			done(st);
			return errorf(err, errlen, "holdings: stopped by the caller");
		}
	}
	done(st);
	return rc == SQLITE_DONE ? 0 : store_sqlerr(s, err, errlen, "holdings");
}

int
person_records(struct store *s, int64_t person, person_record_cb cb, void *arg,
    char *err, size_t errlen)
{
	sqlite3_stmt	*st = stmt(s, P_RECORDS);
	int		 rc;

	sqlite3_bind_int64(st, 1, person);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *h = sqlite3_column_text(st, 0);
		const unsigned char *id = sqlite3_column_text(st, 1);
		const unsigned char *t = sqlite3_column_text(st, 2);

		if (cb(h ? (const char *)h : "", id ? (const char *)id : "",
		    t ? (const char *)t : "", arg) == -1) {
			done(st);
			return errorf(err, errlen, "records: stopped by the caller");
		}
	}
	done(st);
	return rc == SQLITE_DONE ? 0 : store_sqlerr(s, err, errlen, "records");
}

int
person_of_holding(struct store *s, const char *holder, const char *subject,
    int64_t *person, char *err, size_t errlen)
{
	struct subj	 cur;
	int		 rc;

	if ((rc = subject_row(s, subject, &cur, err, errlen)) != 1)
		return rc;
	if (holder != NULL && *holder != '\0' && strcmp(holder, cur.holder) != 0)
		return 0;
	*person = cur.person;
	return 1;
}
