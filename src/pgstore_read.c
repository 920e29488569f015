/*
 * The PostgreSQL store's reads (store_read.c's on SQLite): the
 * same-as-latest checks of a holder batch, `holder show`, and the
 * questions a batch asks before it writes.
 * pgstore.c owns the connection and the statements; a subject's record for
 * a disclosure is pgstore_batch.c's.
 */
#include <libpq-fe.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pgstore.h"
#include "pgstore_int.h"
#include "util.h"

/* Column i of row 0 equals v, where NULL is 0 (store_read.c's col_is()). */
static int
col_is(const PGresult *res, int i, int64_t v)
{
	return PQgetisnull(res, 0, i) ? v == 0 : pgstore_int(res, 0, i) == v && v != 0;
}

int
pgstore_consent_same(struct pgstore *p, const char *subject, enum consent_state c,
    const char *agencies, const char *purposes, int64_t expires_at,
    int64_t decided_at, char *err, size_t errlen)
{
	const char	*vals[1] = { subject };
	PGresult	*res;
	int		 same = 0;

	if ((res = pgstore_run(p, S_LAST_CONSENT, 1, vals, "consent", err,
	    errlen)) == NULL)
		return -1;
	if (PQntuples(res) > 0)
		same = strcmp(pgstore_text(res, 0, 0), consent_name(c)) == 0 &&
		    strcmp(pgstore_text(res, 0, 1), agencies) == 0 &&
		    strcmp(pgstore_text(res, 0, 2), purposes) == 0 &&
		    col_is(res, 3, expires_at) && col_is(res, 4, decided_at);
	PQclear(res);
	return same;
}

int
pgstore_record_same(struct pgstore *p, const char *subject,
    const char *record_type, const char *holder, int64_t verified_at, int same_day,
    const char *const *names, const char *const *values, size_t n, char *err,
    size_t errlen)
{
	const char	*vals[2] = { subject, record_type };
	PGresult	*res;
	struct pgknown	*k;
	int		 same = 0;

	/* Made by this transaction, and no record put yet: it has none. */
	if ((k = pgstore_known(p, subject)) != NULL && k->fresh && k->nput == 0)
		return 0;
	if ((res = pgstore_run(p, S_RECORD_ROW, 2, vals, "record", err,
	    errlen)) == NULL)
		return -1;
	if (PQntuples(res) > 0)
		same = strcmp(pgstore_text(res, 0, 0), holder) == 0 && (same_day ?
		    pgstore_int(res, 0, 1) / 86400 == verified_at / 86400 :
		    pgstore_int(res, 0, 1) == verified_at);
	PQclear(res);
	if (!same)
		return 0;
	if ((res = pgstore_run(p, S_FIELDS, 2, vals, "record", err, errlen)) == NULL)
		return -1;
	/* The same fields with the same values, and no others. */
	same = (size_t)PQntuples(res) == n;
	for (int r = 0; same && r < PQntuples(res); r++) {
		size_t i;

		for (i = 0; i < n && strcmp(names[i], pgstore_text(res, r, 0)) != 0; i++)
			;
		same = i < n && strcmp(values[i], pgstore_text(res, r, 1)) == 0;
	}
	PQclear(res);
	return same;
}

int
pgstore_subject_holder(struct pgstore *p, const char *subject, char *holder,
    size_t len, char *err, size_t errlen)
{
	const char	*vals[1] = { subject };
	PGresult	*res;
	struct pgknown	*k;
	int		 found;

	/* Read and locked with the batch's others (pgstore_known.c). */
	if ((k = pgstore_known(p, subject)) != NULL) {
		if (k->holder != NULL)
			snprintf(holder, len, "%s", k->holder);
		return k->holder != NULL;
	}
	if ((res = pgstore_run(p, p->txn ? S_OWNER_LOCK : S_OWNER, 1, vals,
	    "subject", err, errlen)) == NULL)
		return -1;
	if ((found = PQntuples(res) > 0))
		snprintf(holder, len, "%s", pgstore_text(res, 0, 0));
	PQclear(res);
	return found;
}

/* A count(*) statement's answer as 1 (some) or 0 (none), or -1. */
static int
any(struct pgstore *p, int q, int n, const char *const *vals, const char *what,
    char *err, size_t errlen)
{
	PGresult	*res;
	int		 some;

	if ((res = pgstore_run(p, q, n, vals, what, err, errlen)) == NULL)
		return -1;
	some = PQntuples(res) == 1 && pgstore_int(res, 0, 0) > 0;
	PQclear(res);
	return some;
}

int
pgstore_flag_active(struct pgstore *p, const char *subject, const char *flag,
    char *err, size_t errlen)
{
	const char *vals[2] = { subject, flag };

	return any(p, S_FLAG_ACTIVE, 2, vals, "flag", err, errlen);
}

int
pgstore_batch_applied(struct pgstore *p, const char *request_id, char *err,
    size_t errlen)
{
	const char *vals[1] = { request_id };

	return any(p, S_BATCH_APPLIED, 1, vals, "batch", err, errlen);
}

int
pgstore_batch_lock(struct pgstore *p, const char *request_id, int wait,
    char *err, size_t errlen)
{
	const char	*vals[1] = { request_id };
	PGresult	*res;
	int		 got;

	if ((res = pgstore_run(p, wait ? S_BATCH_LOCK : S_BATCH_TRY_LOCK, 1, vals,
	    "batch lock", err, errlen)) == NULL)
		return -1;
	/* pg_advisory_lock() answers void (""), the try form t or f. */
	got = wait || strcmp(pgstore_text(res, 0, 0), "t") == 0;
	PQclear(res);
	return got;
}

void
pgstore_batch_unlock(struct pgstore *p, const char *request_id)
{
	const char	*vals[1] = { request_id };
	char		 err[8];

	/* A lock gone with a lost session is released already. */
	(void)pgstore_exec(p, S_BATCH_UNLOCK, 1, vals, "batch unlock", err,
	    sizeof(err));
}

/* One show query's rows to fn; 0, or -1 (a database error or fn's stop). */
static int
show_rows(struct pgstore *p, int q, const char *subject, int64_t limit,
    int (*fn)(const PGresult *, int, const struct store_show_cb *, void *),
    const struct store_show_cb *cb, void *arg, char *err, size_t errlen)
{
	char		 lim[24];
	const char	*vals[2] = { subject, lim };
	PGresult	*res;

	snprintf(lim, sizeof(lim), "%lld", (long long)limit);
	if ((res = pgstore_run(p, q, limit > 0 ? 2 : 1, vals, "show", err,
	    errlen)) == NULL)
		return -1;
	for (int r = 0; r < PQntuples(res); r++)
		if (fn(res, r, cb, arg) == -1) {
			PQclear(res);
			return errorf(err, errlen, "show: stopped by the caller");
		}
	PQclear(res);
	return 0;
}

static int
show_record(const PGresult *res, int r, const struct store_show_cb *cb, void *arg)
{
	return cb->record(arg, pgstore_text(res, r, 0), pgstore_int(res, r, 1));
}

static int
show_field(const PGresult *res, int r, const struct store_show_cb *cb, void *arg)
{
	return cb->field(arg, pgstore_text(res, r, 0), pgstore_text(res, r, 1),
	    pgstore_text(res, r, 2));
}

static int
show_consent(const PGresult *res, int r, const struct store_show_cb *cb, void *arg)
{
	return cb->consent(arg, pgstore_text(res, r, 0), pgstore_text(res, r, 1),
	    pgstore_text(res, r, 2), pgstore_int(res, r, 3), pgstore_int(res, r, 4),
	    pgstore_text(res, r, 5), pgstore_int(res, r, 6));
}

static int
show_flag(const PGresult *res, int r, const struct store_show_cb *cb, void *arg)
{
	return cb->flag(arg, pgstore_text(res, r, 0), pgstore_text(res, r, 1),
	    pgstore_int(res, r, 2), pgstore_text(res, r, 3), pgstore_int(res, r, 4));
}

/* store_show(): one snapshot for the four queries, as the caller sees them. */
int
pgstore_show(struct pgstore *p, const char *subject, size_t max_history,
    const struct store_show_cb *cb, void *arg, char *err, size_t errlen)
{
	int64_t	lim = (int64_t)max_history + 1;	/* one more: the caller sees it cut */
	int	rc, own = !p->scope && !p->txn;

	if (own)
		pgstore_read_begin(p);
	rc = show_rows(p, S_SHOW_RECORDS, subject, 0, show_record, cb, arg, err,
	    errlen) == -1 ||
	    show_rows(p, S_SHOW_FIELDS, subject, 0, show_field, cb, arg, err,
	    errlen) == -1 ||
	    show_rows(p, S_SHOW_CONSENTS, subject, lim, show_consent, cb, arg, err,
	    errlen) == -1 ||
	    show_rows(p, S_SHOW_FLAGS, subject, lim, show_flag, cb, arg, err,
	    errlen) == -1 ? -1 : 0;
	if (own)
		pgstore_read_end(p);
	return rc;
}
