/*
 * The store's writes: transactions, records, consents, flags, holder
 * batches and the data files loaded with -l. The caller holds the write
 * transaction (store_begin()); store.c opens the store and owns its
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
#include "store_int.h"
#include "util.h"
#include "yamlutil.h"

int
store_begin(struct store *s, char *err, size_t errlen)
{
	store_read_end(s);	/* a write sees, and ends, the read snapshot */
	if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return store_sqlerr(s, err, errlen, "begin");
	return 0;
}

int
store_commit(struct store *s, char *err, size_t errlen)
{
	if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		return store_sqlerr(s, err, errlen, "commit");
	return 0;
}

void
store_rollback(struct store *s)
{
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

/* Steps the write q, then resets it for the next use; 0, or -1 with err. */
static int
run(struct store *s, int q, const char *what, char *err, size_t errlen)
{
	int rc = sqlite3_step(s->q[q]);

	sqlite3_reset(s->q[q]);
	sqlite3_clear_bindings(s->q[q]);
	if (rc != SQLITE_DONE)
		return store_sqlerr(s, err, errlen, what);
	return 0;
}

int
store_put_record(struct store *s, const char *subject, const char *record_type,
    const char *holder, int64_t verified_at, const char *const *names,
    const char *const *values, size_t n, char *err, size_t errlen)
{
	sqlite3_stmt *st;

	sqlite3_bind_text(s->q[Q_PUT_PERSON], 1, subject, -1, SQLITE_STATIC);
	if (run(s, Q_PUT_PERSON, "person", err, errlen) == -1)
		return -1;
	st = s->q[Q_PUT_SUBJECT];
	sqlite3_bind_text(st, 1, subject, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, holder, -1, SQLITE_STATIC);
	if (run(s, Q_PUT_SUBJECT, "subject", err, errlen) == -1)
		return -1;
	st = s->q[Q_PUT_RECORD];
	sqlite3_bind_text(st, 1, subject, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, record_type, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, holder, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, verified_at);
	if (run(s, Q_PUT_RECORD, "record", err, errlen) == -1)
		return -1;
	st = s->q[Q_DEL_FIELDS];
	sqlite3_bind_text(st, 1, subject, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, record_type, -1, SQLITE_STATIC);
	if (run(s, Q_DEL_FIELDS, "record", err, errlen) == -1)
		return -1;
	for (size_t i = 0; i < n; i++) {
		st = s->q[Q_PUT_FIELD];
		sqlite3_bind_text(st, 1, subject, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, record_type, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, names[i], -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, values[i], -1, SQLITE_STATIC);
		if (run(s, Q_PUT_FIELD, "field", err, errlen) == -1)
			return -1;
	}
	/* What the subject is found by follows its person record (D18). */
	if (strcmp(record_type, "person") == 0 &&
	    person_details_from_record(s, subject, err, errlen) == -1)
		return -1;
	return 0;
}

int
store_add_consent(struct store *s, const char *subject, enum consent_state c,
    const char *agencies, const char *purposes, int64_t expires_at,
    int64_t decided_at, const char *recorded_by, int64_t recorded_at, char *err,
    size_t errlen)
{
	sqlite3_stmt *st = s->q[Q_ADD_CONSENT];

	if (c == CONSENT_NONE)
		return errorf(err, errlen, "consent state must be granted, refused "
		    "or withdrawn");
	sqlite3_bind_text(st, 1, subject, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, consent_name(c), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, agencies, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, purposes, -1, SQLITE_STATIC);
	if (expires_at != 0)
		sqlite3_bind_int64(st, 5, expires_at);
	else
		sqlite3_bind_null(st, 5);
	sqlite3_bind_text(st, 6, recorded_by, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, recorded_at);
	if (decided_at != 0)
		sqlite3_bind_int64(st, 8, decided_at);
	else
		sqlite3_bind_null(st, 8);
	return run(s, Q_ADD_CONSENT, "consent", err, errlen);
}

/*
 * A flag set (Q_SET_FLAG) or removed (Q_UNFLAG): both statements take the
 * subject, the flag, who and when. 0, or -1 with err.
 */
static int
flag_write(struct store *s, int q, const char *subject, const char *flag,
    const char *by, int64_t at, char *err, size_t errlen)
{
	sqlite3_stmt *st = s->q[q];

	sqlite3_bind_text(st, 1, subject, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, flag, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, by, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, at);
	return run(s, q, "flag", err, errlen);
}

int
store_set_flag(struct store *s, const char *subject, const char *flag,
    const char *set_by, int64_t set_at, char *err, size_t errlen)
{
	return flag_write(s, Q_SET_FLAG, subject, flag, set_by, set_at, err, errlen);
}

int
store_first_text(struct store *s, sqlite3_stmt *st, char *out, size_t len,
    const char *what, char *err, size_t errlen)
{
	int	rc, found = 0;

	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *t = sqlite3_column_text(st, 0);

		snprintf(out, len, "%s", t ? (const char *)t : "");
		found = 1;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_sqlerr(s, err, errlen, what);
	return found;
}

/*
 * Steps the bound count(*) query q once, then resets it: 1 if it counted
 * any row, 0 if none, -1 with "what: sqlite's message" in err.
 */
static int
count_any(struct store *s, int q, const char *what, char *err, size_t errlen)
{
	sqlite3_stmt	*st = s->q[q];
	int		 rc, n = 0;

	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		n = sqlite3_column_int(st, 0);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_ROW)
		return store_sqlerr(s, err, errlen, what);
	return n > 0;
}

int
store_subject_holder(struct store *s, const char *subject, char *holder, size_t len,
    char *err, size_t errlen)
{
	sqlite3_bind_text(s->q[Q_OWNER], 1, subject, -1, SQLITE_STATIC);
	return store_first_text(s, s->q[Q_OWNER], holder, len, "subject", err, errlen);
}

int
store_delete_record(struct store *s, const char *subject, const char *record_type,
    char *err, size_t errlen)
{
	int n;

	sqlite3_bind_text(s->q[Q_DEL_RECORD], 1, subject, -1, SQLITE_STATIC);
	sqlite3_bind_text(s->q[Q_DEL_RECORD], 2, record_type, -1, SQLITE_STATIC);
	if (run(s, Q_DEL_RECORD, "record", err, errlen) == -1)
		return -1;
	n = sqlite3_changes(s->db);
	sqlite3_bind_text(s->q[Q_DEL_FIELDS], 1, subject, -1, SQLITE_STATIC);
	sqlite3_bind_text(s->q[Q_DEL_FIELDS], 2, record_type, -1, SQLITE_STATIC);
	if (run(s, Q_DEL_FIELDS, "record", err, errlen) == -1)
		return -1;
	return n;
}

int
store_flag_active(struct store *s, const char *subject, const char *flag, char *err,
    size_t errlen)
{
	sqlite3_bind_text(s->q[Q_FLAG_ACTIVE], 1, subject, -1, SQLITE_STATIC);
	sqlite3_bind_text(s->q[Q_FLAG_ACTIVE], 2, flag, -1, SQLITE_STATIC);
	return count_any(s, Q_FLAG_ACTIVE, "flag", err, errlen);
}

int
store_remove_flag(struct store *s, const char *subject, const char *flag,
    const char *removed_by, int64_t removed_at, char *err, size_t errlen)
{
	if (flag_write(s, Q_UNFLAG, subject, flag, removed_by, removed_at, err,
	    errlen) == -1)
		return -1;
	return sqlite3_changes(s->db);
}

int
store_mark_batch(struct store *s, const char *request_id, uint64_t first_seq,
    int64_t now, char *err, size_t errlen)
{
	sqlite3_stmt *st = s->q[Q_MARK_BATCH];

	sqlite3_bind_text(st, 1, request_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)first_seq);
	sqlite3_bind_int64(st, 3, now);
	return run(s, Q_MARK_BATCH, "batch", err, errlen);
}

const char *
store_id(struct store *s)
{
	return s->id;
}

int64_t
store_created_at(struct store *s)
{
	return s->created_at;
}

int
store_note_load(struct store *s, const char *file, size_t subjects, int64_t now,
    char *err, size_t errlen)
{
	sqlite3_stmt *st = s->q[Q_NOTE_LOAD];

	sqlite3_bind_text(st, 1, file, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)subjects);
	sqlite3_bind_int64(st, 3, now);
	return run(s, Q_NOTE_LOAD, "load", err, errlen);
}

int
store_unlogged_loads(struct store *s, store_load_cb cb, void *arg, char *err,
    size_t errlen)
{
	sqlite3_stmt	*st = s->q[Q_UNLOGGED_LOADS];
	int		 rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *file = (const char *)sqlite3_column_text(st, 1);

		if (cb(sqlite3_column_int64(st, 0), file ? file : "",
		    (size_t)sqlite3_column_int64(st, 2), sqlite3_column_int64(st, 3),
		    arg) == -1) {
			sqlite3_reset(st);
			return -1;
		}
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : store_sqlerr(s, err, errlen, "loads");
}

int
store_load_logged(struct store *s, int64_t id, uint64_t seq, char *err,
    size_t errlen)
{
	sqlite3_stmt *st = s->q[Q_LOAD_LOGGED];

	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)seq);
	return run(s, Q_LOAD_LOGGED, "load", err, errlen);
}

int
store_batch_applied(struct store *s, const char *request_id, char *err,
    size_t errlen)
{
	sqlite3_bind_text(s->q[Q_BATCH_APPLIED], 1, request_id, -1, SQLITE_STATIC);
	return count_any(s, Q_BATCH_APPLIED, "batch", err, errlen);
}
