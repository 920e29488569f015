/*
 * The store's reads: a subject's record for a disclosure (in one read
 * transaction or the caller's read scope), the same-as-latest checks of a
 * holder batch, and `holder show`. store.c opens the store and owns its
 * statements.
 */
#include <sqlite3.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "person.h"
#include "store.h"
#include "store_cache.h"
#include "store_int.h"
#include "util.h"
#include "yamlutil.h"

static int	subject_read(struct store *, const struct record_type *, const char *,
		    const char *, const char *, struct store_subject *, char *, size_t);

/*
 * The subject-read cache is good for this read transaction once it has
 * been checked against the database's data version (another connection's
 * commits) and this connection's change count (its own):
 * store_cache.c. The pragma also takes the transaction's snapshot.
 */
static void
cache_check(struct store *s)
{
	sqlite3_stmt *st = s->q[Q_DATA_VERSION];

	if (sqlite3_step(st) == SQLITE_ROW) {
		scache_check(s->cache, sqlite3_column_int64(st, 0),
		    sqlite3_total_changes64(s->db));
		s->cache_ok = 1;
	}
	sqlite3_reset(st);
}

static int
read_begin(struct store *s)
{
	int ok = sqlite3_get_autocommit(s->db) &&
	    sqlite3_step(s->q[Q_READ_BEGIN]) == SQLITE_DONE;

	sqlite3_reset(s->q[Q_READ_BEGIN]);
	if (ok)
		cache_check(s);
	return ok;
}

static void
read_end(struct store *s)
{
	s->cache_ok = 0;
	sqlite3_step(s->q[Q_READ_END]);
	sqlite3_reset(s->q[Q_READ_END]);
}

void
store_read_begin(struct store *s)
{
	if (!s->scope)
		s->scope = read_begin(s);
}

void
store_read_end(struct store *s)
{
	if (s->scope) {
		read_end(s);
		s->scope = 0;
	}
}

/*
 * The four reads share one read transaction: one snapshot, and one lock
 * and file check instead of four (they showed in the profile). Inside a
 * read scope they share the scope's.
 */
int
store_subject(struct store *s, const struct record_type *rt, const char *subject,
    const char *agency, const char *purpose, struct store_subject *out, char *err,
    size_t errlen)
{
	int rc, txn = !s->scope && read_begin(s);

	rc = subject_read(s, rt, subject, agency, purpose, out, err, errlen);
	if (txn)
		read_end(s);
	return rc;
}

/*
 * The four reads of store_subject() into a new entry (one reference, the
 * caller's), or NULL with err.
 */
static struct scentry *
entry_read(struct store *s, const struct record_type *rt, const char *subject,
    const char *agency, const char *purpose, char *err, size_t errlen)
{
	struct scentry	*e = scentry_new(subject, rt->id, agency, purpose);
	sqlite3_stmt	*st;
	sqlite3_int64	 person = 0;
	int		 rc, have_person = 0;

	st = s->q[Q_RECORD];
	sqlite3_bind_text(st, 1, subject, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, rt->id, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *holder = sqlite3_column_text(st, 1);

		e->known = 1;
		e->last_verified = sqlite3_column_int64(st, 0);
		scentry_set_holder(e, holder ? (const char *)holder : "");
		if ((have_person = sqlite3_column_type(st, 2) != SQLITE_NULL))
			person = sqlite3_column_int64(st, 2);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		goto dberr;
	if (!e->known)
		return e;

	st = s->q[Q_FIELDS];
	sqlite3_bind_text(st, 1, subject, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, rt->id, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);
		const char *value = (const char *)sqlite3_column_text(st, 1);

		if (name != NULL)
			scentry_add_field(e, name, value ? value : "");
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		goto dberr;

	st = s->q[Q_CONSENT];
	sqlite3_bind_text(st, 1, subject, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, agency, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, purpose, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *state = (const char *)sqlite3_column_text(st, 0);
		enum consent_state c;

		if (state != NULL && consent_parse(state, &c) == 0)
			e->consent = c;
		e->consent_expires = sqlite3_column_int64(st, 1);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		goto dberr;

	/*
	 * The person's active flags (D12, D18), each once. A subject with no
	 * person (none has one since migration 7) has no flags, as a join on
	 * a NULL person found none before.
	 */
	st = s->q[Q_FLAGS];
	sqlite3_bind_int64(st, 1, person);
	while (have_person && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *flag = (const char *)sqlite3_column_text(st, 0);

		if (flag != NULL)
			scentry_add_flag(e, flag);
	}
	sqlite3_reset(st);
	if (have_person && rc != SQLITE_DONE)
		goto dberr;
	return e;
dberr:
	store_sqlerr(s, err, errlen, "subject");
	scentry_unref(e);
	return NULL;
}

/*
 * A subject's read from the cache, or from the database (and then kept),
 * lent to out: the fields the protocol declares for rt, in its order;
 * fields it no longer declares are never released.
 */
static int
subject_read(struct store *s, const struct record_type *rt, const char *subject,
    const char *agency, const char *purpose, struct store_subject *out, char *err,
    size_t errlen)
{
	struct scentry *e = NULL;

	memset(out, 0, sizeof(*out));	/* freeable whatever happens */
	if (s->cache_ok)
		e = scache_get(s->cache, subject, rt->id, agency, purpose);
	if (e == NULL) {
		if ((e = entry_read(s, rt, subject, agency, purpose, err,
		    errlen)) == NULL)
			return -1;
		if (s->cache_ok)
			scache_put(s->cache, e);
	}
	scentry_lend(e, rt, out);
	return 0;
}

void
store_subject_free(struct store_subject *out)
{
	scentry_unref(out->ent);	/* the strings are its */
	memset(out, 0, sizeof(*out));
}

/* Text of column i, "" for NULL. */
static const char *
col_text(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	return t ? (const char *)t : "";
}

/* Column i equals v, where NULL is 0. */
static int
col_is(sqlite3_stmt *st, int i, int64_t v)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL ? v == 0 :
	    sqlite3_column_int64(st, i) == v && v != 0;
}

int
store_consent_same(struct store *s, const char *subject, enum consent_state c,
    const char *agencies, const char *purposes, int64_t expires_at, int64_t decided_at,
    char *err, size_t errlen)
{
	sqlite3_stmt	*st = s->q[Q_LAST_CONSENT];
	int		 rc, same = 0;

	sqlite3_bind_text(st, 1, subject, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		same = strcmp(col_text(st, 0), consent_name(c)) == 0 &&
		    strcmp(col_text(st, 1), agencies) == 0 &&
		    strcmp(col_text(st, 2), purposes) == 0 &&
		    col_is(st, 3, expires_at) && col_is(st, 4, decided_at);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_sqlerr(s, err, errlen, "consent");
	return same;
}

int
store_record_same(struct store *s, const char *subject, const char *record_type,
    const char *holder, int64_t verified_at, int same_day, const char *const *names,
    const char *const *values, size_t n, char *err, size_t errlen)
{
	sqlite3_stmt	*st = s->q[Q_RECORD_ROW];
	size_t		 found = 0;
	int		 rc, same = 0;

	sqlite3_bind_text(st, 1, subject, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, record_type, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		same = strcmp(col_text(st, 0), holder) == 0 && (same_day ?
		    sqlite3_column_int64(st, 1) / 86400 == verified_at / 86400 :
		    sqlite3_column_int64(st, 1) == verified_at);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_sqlerr(s, err, errlen, "record");
	if (!same)
		return 0;
	/* The same fields with the same values, and no others. */
	st = s->q[Q_FIELDS];
	sqlite3_bind_text(st, 1, subject, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, record_type, -1, SQLITE_STATIC);
	while (same && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = col_text(st, 0), *value = col_text(st, 1);
		size_t i;

		for (i = 0; i < n && strcmp(names[i], name) != 0; i++)
			;
		same = i < n && strcmp(values[i], value) == 0;
		found++;
	}
	sqlite3_reset(st);
	if (same && rc != SQLITE_DONE)
		return store_sqlerr(s, err, errlen, "record");
	return same && found == n;
}

/* Steps one show query, handing each row to fn; 0 or -1 (fn's -1 stops it). */
static int
show_rows(struct store *s, int q, const char *subject, int64_t limit,
    int (*fn)(sqlite3_stmt *, const struct store_show_cb *, void *),
    const struct store_show_cb *cb, void *arg, char *err, size_t errlen)
{
	sqlite3_stmt	*st = s->q[q];
	int		 rc;

	sqlite3_bind_text(st, 1, subject, -1, SQLITE_STATIC);
	if (limit > 0)
		sqlite3_bind_int64(st, 2, limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if (fn(st, cb, arg) == -1)
			break;
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_sqlerr(s, err, errlen, "show");
	if (rc == SQLITE_ROW)
		return errorf(err, errlen, "show: stopped by the caller");
	return 0;
}

static int
show_record(sqlite3_stmt *st, const struct store_show_cb *cb, void *arg)
{
	return cb->record(arg, col_text(st, 0), sqlite3_column_int64(st, 1));
}

static int
show_field(sqlite3_stmt *st, const struct store_show_cb *cb, void *arg)
{
	return cb->field(arg, col_text(st, 0), col_text(st, 1), col_text(st, 2));
}

static int
show_consent(sqlite3_stmt *st, const struct store_show_cb *cb, void *arg)
{
	return cb->consent(arg, col_text(st, 0), col_text(st, 1), col_text(st, 2),
	    sqlite3_column_int64(st, 3), sqlite3_column_int64(st, 4), col_text(st, 5),
	    sqlite3_column_int64(st, 6));
}

static int
show_flag(sqlite3_stmt *st, const struct store_show_cb *cb, void *arg)
{
	return cb->flag(arg, col_text(st, 0), col_text(st, 1),
	    sqlite3_column_int64(st, 2), col_text(st, 3), sqlite3_column_int64(st, 4));
}

int
store_show(struct store *s, const char *subject, size_t max_history,
    const struct store_show_cb *cb, void *arg, char *err, size_t errlen)
{
	int64_t lim = (int64_t)max_history + 1;	/* one more: the caller sees it cut */

	if (show_rows(s, Q_SHOW_RECORDS, subject, 0, show_record, cb, arg, err,
	    errlen) == -1 ||
	    show_rows(s, Q_SHOW_FIELDS, subject, 0, show_field, cb, arg, err,
	    errlen) == -1 ||
	    show_rows(s, Q_SHOW_CONSENTS, subject, lim, show_consent, cb, arg, err,
	    errlen) == -1 ||
	    show_rows(s, Q_SHOW_FLAGS, subject, lim, show_flag, cb, arg, err,
	    errlen) == -1)
		return -1;
	return 0;
}
