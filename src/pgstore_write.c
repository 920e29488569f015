/*
 * The PostgreSQL store's writes (store_write.c's on SQLite): records and
 * their fields, consents, flags, holder batches and the data files loaded
 * with -l. The caller holds the write transaction (pgstore_begin());
 * pgstore.c owns the connection and the statements.
 */
#include <libpq-fe.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgstore.h"
#include "pgstore_int.h"
#include "util.h"

/* Rows a statement changed, or -1. */
static int
changed(struct pgstore *p, int q, int n, const char *const *vals,
    const char *what, char *err, size_t errlen)
{
	PGresult	*res;
	int		 rows;

	if ((res = pgstore_run(p, q, n, vals, what, err, errlen)) == NULL)
		return -1;
	rows = atoi(PQcmdTuples(res));
	PQclear(res);
	return rows;
}

/*
 * store_put_record(). The subject is made if new (a person of its own).
 * Its row is then locked and must be the holder's: two daemons creating
 * the same id for two holders at once would otherwise both write, where
 * SQLite's single writer checks and writes in one go (the loser's batch
 * fails whole; sent again, the holder gets the usual refusal).
 */
int
pgstore_put_record(struct pgstore *p, const char *subject, const char *record_type,
    const char *holder, int64_t verified_at, const char *const *names,
    const char *const *values, size_t n, char *err, size_t errlen)
{
	char		 ver[24];
	const char	*sub[2] = { subject, holder };
	const char	*rec[4] = { subject, record_type, holder, ver };
	const char	*fld[4] = { subject, record_type, NULL, NULL };
	char		*an, *av;
	struct pgknown	*k;
	int		 rc;

	/*
	 * Queued in a transaction (pgstore_pipe.c): the lock's row is checked
	 * when it is answered, and a subject of another holder's then fails
	 * the transaction before it can commit.
	 */
	if (pgstore_exec(p, S_PUT_SUBJECT, 2, sub, "subject", err, errlen) == -1 ||
	    pgstore_send(p, S_OWNER_LOCK, 1, sub, subject, holder, "subject", err,
	    errlen) == -1)
		return -1;
	if ((k = pgstore_known(p, subject)) != NULL) {
		if (k->holder == NULL)
			k->holder = xstrdup(holder);
		k->nput++;
	}
	snprintf(ver, sizeof(ver), "%" PRId64, verified_at);
	if (pgstore_exec(p, S_PUT_RECORD, 4, rec, "record", err, errlen) == -1)
		return -1;
	/* A subject this transaction made has no fields to replace yet. */
	if ((k == NULL || !k->fresh || k->nput > 1) &&
	    pgstore_exec(p, S_DEL_FIELDS, 2, fld, "record", err, errlen) == -1)
		return -1;
	if (n > 0) {
		fld[2] = an = pgstore_array(names, n);
		fld[3] = av = pgstore_array(values, n);
		rc = pgstore_exec(p, S_PUT_FIELDS, 4, fld, "field", err, errlen);
		free(an);
		free(av);
		if (rc == -1)
			return -1;
	}
	/* What the subject is found by follows its person record (D18). */
	if (strcmp(record_type, "person") == 0 &&
	    pgstore_person_details_of_fields(p, subject, names, values, n, err,
	    errlen) == -1)
		return -1;
	return 0;
}

int
pgstore_add_consent(struct pgstore *p, const char *subject, enum consent_state c,
    const char *agencies, const char *purposes, int64_t expires_at,
    int64_t decided_at, const char *recorded_by, int64_t recorded_at, char *err,
    size_t errlen)
{
	char		 exp[24], dec[24], rec[24];
	const char	*vals[8] = { subject, NULL, agencies, purposes,
			    expires_at != 0 ? exp : NULL, recorded_by, rec,
			    decided_at != 0 ? dec : NULL };

	if (c == CONSENT_NONE)
		return errorf(err, errlen, "consent state must be granted, refused "
		    "or withdrawn");
	vals[1] = consent_name(c);
	snprintf(exp, sizeof(exp), "%" PRId64, expires_at);
	snprintf(dec, sizeof(dec), "%" PRId64, decided_at);
	snprintf(rec, sizeof(rec), "%" PRId64, recorded_at);
	return pgstore_exec(p, S_ADD_CONSENT, 8, vals, "consent", err, errlen);
}

int
pgstore_set_flag(struct pgstore *p, const char *subject, const char *flag,
    const char *set_by, int64_t set_at, char *err, size_t errlen)
{
	char		 at[24];
	const char	*vals[4] = { subject, flag, set_by, at };

	snprintf(at, sizeof(at), "%" PRId64, set_at);
	return pgstore_exec(p, S_SET_FLAG, 4, vals, "flag", err, errlen);
}

int
pgstore_remove_flag(struct pgstore *p, const char *subject, const char *flag,
    const char *removed_by, int64_t removed_at, char *err, size_t errlen)
{
	char		 at[24];
	const char	*vals[4] = { subject, flag, removed_by, at };

	snprintf(at, sizeof(at), "%" PRId64, removed_at);
	return changed(p, S_UNFLAG, 4, vals, "flag", err, errlen);
}

/*
 * Deletes the record, then its fields: the record's row lock comes first,
 * as in pgstore_put_record(), so a put and a delete of one record from
 * two daemons queue instead of deadlocking.
 */
int
pgstore_delete_record(struct pgstore *p, const char *subject,
    const char *record_type, char *err, size_t errlen)
{
	const char	*vals[2] = { subject, record_type };
	int		 n;

	if ((n = changed(p, S_DEL_RECORD, 2, vals, "record", err, errlen)) == -1 ||
	    pgstore_exec(p, S_DEL_FIELDS, 2, vals, "record", err, errlen) == -1)
		return -1;
	return n;
}

/*
 * A batch to log rolled back, claimed before its entry is logged: 1 this
 * handle claimed it, 2 another claim was there (its entry is logged, or
 * owed by a daemon holding the batch's lock, or its claimer died before
 * logging it), 0 it was applied meanwhile, -1 err.
 */
int
pgstore_batch_claim(struct pgstore *p, const char *request_id,
    uint64_t first_seq, char *err, size_t errlen)
{
	char		 seq[24];
	const char	*vals[2] = { request_id, seq };
	PGresult	*res;
	int		 n, claimed;

	snprintf(seq, sizeof(seq), "%" PRIu64, first_seq);
	if ((n = changed(p, S_BATCH_CLAIM, 2, vals, "batch", err, errlen)) != 0)
		return n == 1 ? 1 : -1;
	if ((res = pgstore_run(p, S_BATCH_CLAIMED, 1, vals, "batch", err,
	    errlen)) == NULL)
		return -1;
	claimed = PQntuples(res) == 1 && pgstore_int(res, 0, 0) > 0;
	PQclear(res);
	return claimed ? 2 : 0;
}

int
pgstore_mark_batch(struct pgstore *p, const char *request_id, uint64_t first_seq,
    int64_t now, char *err, size_t errlen)
{
	char		 seq[24], at[24];
	const char	*vals[3] = { request_id, seq, at };

	snprintf(seq, sizeof(seq), "%" PRIu64, first_seq);
	snprintf(at, sizeof(at), "%" PRId64, now);
	const char	*rid[1] = { request_id };
	PGresult	*res;
	int		 n, claimed;

	/* Answered at once: the batch's queued writes fail it here too. */
	if ((n = changed(p, S_MARK_BATCH, 3, vals, "batch", err, errlen)) != 0)
		return n == 1 ? 0 : -1;
	/*
	 * The row was there: claimed by a reconciliation that logs the batch
	 * rolled back (issue 19 item 2), or marked before.
	 */
	if ((res = pgstore_run(p, S_BATCH_CLAIMED, 1, rid, "batch", err,
	    errlen)) == NULL)
		return -1;
	claimed = PQntuples(res) == 1 && pgstore_int(res, 0, 0) > 0;
	PQclear(res);
	if (claimed)
		return 1;
	return errorf(err, errlen, "PostgreSQL store: batch %s was marked "
	    "applied already", request_id);
}

/* store_note_load(): inside the load's transaction. */
int
pgstore_note_load(struct pgstore *p, const char *file, size_t subjects,
    int64_t now, char *err, size_t errlen)
{
	char		 nb[24], at[24];
	const char	*vals[3] = { file, nb, at };

	snprintf(nb, sizeof(nb), "%zu", subjects);
	snprintf(at, sizeof(at), "%" PRId64, now);
	return pgstore_exec(p, S_NOTE_LOAD, 3, vals, "load", err, errlen);
}

/* store_unlogged_loads(): oldest first; cb's -1 stops it and says why itself. */
int
pgstore_unlogged_loads(struct pgstore *p, store_load_cb cb, void *arg, char *err,
    size_t errlen)
{
	PGresult	*res;
	int		 rc = 0;

	if ((res = pgstore_run(p, S_UNLOGGED_LOADS, 0, NULL, "loads", err,
	    errlen)) == NULL)
		return -1;
	for (int i = 0; i < PQntuples(res) && rc == 0; i++)
		rc = cb(pgstore_int(res, i, 0), pgstore_text(res, i, 1),
		    (size_t)pgstore_int(res, i, 2), pgstore_int(res, i, 3), arg);
	PQclear(res);
	return rc == -1 ? -1 : 0;
}

int
pgstore_load_logged(struct pgstore *p, int64_t id, uint64_t seq, char *err,
    size_t errlen)
{
	char		 ib[24], sb[24];
	const char	*vals[2] = { ib, sb };

	snprintf(ib, sizeof(ib), "%" PRId64, id);
	snprintf(sb, sizeof(sb), "%" PRIu64, seq);
	return pgstore_exec(p, S_LOAD_LOGGED, 2, vals, "load", err, errlen);
}
