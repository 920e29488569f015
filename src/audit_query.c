/*
 * Reading the log for auditors and for the daemon: filtered queries and
 * stats (by subject through the subject index, audit_index.c), the review
 * and inform queues (D6, D15), the checkpoints, and the holder batches and
 * store entries the daemon checks at start.
 */
#include <sqlite3.h>

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "audit_int.h"
#include "policy.h"
#include "util.h"

/*
 * The condition for entries naming subject ?p: from the subject index up
 * to the seq it is complete for (when it belongs to this log), and from
 * the log's own rows after that.
 */
static void
where_subject(struct audit *a, int p, sqlite3_str *sql)
{
	char	 upto[256];

	if (!a->index) {
		sqlite3_str_appendf(sql, " AND subject = ?%d", p);
		return;
	}
	audit_index_upto(a, upto, sizeof(upto));
	/*
	 * One lookup per generation, then the log's tail. An index of another
	 * log counts as complete up to nothing. The bound is spelled out as a
	 * scalar each time: joined in from a CTE, the planner scanned the whole
	 * log for the tail (an automatic index on subject).
	 */
	sqlite3_str_appendf(sql, " AND subject = ?%d AND seq IN "
	    "(WITH RECURSIVE g(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM g "
	    "WHERE n < coalesce(%s, 0) / " STR(INDEX_GEN) ") "
	    "SELECT seq FROM subj.subject_index WHERE gen IN g AND subject = ?%d "
	    "AND seq <= coalesce(%s, 0) UNION ALL SELECT seq FROM main.entries WHERE "
	    "seq > coalesce(%s, 0) AND subject = ?%d)", p, upto, p, upto, upto, p);
}

/*
 * The filter's equality conditions in the order they are bound: the
 * column each names and its value; returns how many (at most
 * AUDIT_FILTER_TERMS). Shared with the PostgreSQL log's queries
 * (pglog_query.c), so both backends filter by the same columns.
 */
size_t
audit_filter_terms(const struct audit_filter *f, const char *cols[AUDIT_FILTER_TERMS],
    const char *vals[AUDIT_FILTER_TERMS])
{
	static const char *const names[AUDIT_FILTER_TERMS] = { "subject", "agency",
	    "practitioner", "purpose", "decision", "reason", "kind" };
	const char *const v[AUDIT_FILTER_TERMS] = { f->subject, f->agency,
	    f->practitioner, f->purpose, f->decision, f->reason, f->kind };
	size_t n = 0;

	for (size_t i = 0; i < AUDIT_FILTER_TERMS; i++) {
		if (v[i] == NULL || *v[i] == '\0')
			continue;
		cols[n] = names[i];
		vals[n++] = v[i];
	}
	return n;
}

/* What audit_stats() groups by: the index into AUDIT_STATS_GROUPS, or -1 with err. */
int
audit_stats_group(const char *by, char *err, size_t errlen)
{
	static const char *const names[] = { AUDIT_STATS_GROUPS };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(by, names[i]) == 0)
			return (int)i;
	return errorf(err, errlen, "cannot group by \"%s\" (agency, purpose, "
	    "decision, reason, kind or day)", by);
}

/*
 * The smallest seq from which every entry is dated t or later, in a log
 * whose times never decrease: *out, or -1 if it could not be read. A
 * binary search over the entries' rowids (gaps allowed: each probe reads
 * the first entry at or after it); hi is one past the last seq.
 */
static int
first_at(sqlite3_stmt *st, int64_t t, uint64_t hi, uint64_t *out)
{
	uint64_t	lo = 1;
	int		rc;

	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;

		sqlite3_bind_int64(st, 1, (sqlite3_int64)mid);
		if ((rc = sqlite3_step(st)) == SQLITE_ROW &&
		    sqlite3_column_int64(st, 1) < t)
			lo = (uint64_t)sqlite3_column_int64(st, 0) + 1;
		else if (rc == SQLITE_ROW || rc == SQLITE_DONE)
			hi = mid;
		sqlite3_reset(st);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE)
			return -1;
	}
	*out = lo;
	return 0;
}

/*
 * A time window as a seq range, for a log without entries_time (audit.c):
 * its times never decrease (the writer's clock rule, D7; verify fails a
 * log where they do), so [from, to) is the entries from the first dated
 * from or later up to the first dated to or later. The time conditions
 * stay in the query; the range only lets SQLite seek instead of scanning.
 * No upper bound while nothing is dated to or later (entries committed
 * meanwhile may still fall in the window). If the bounds cannot be read,
 * none is added: the same answer, by a scan.
 */
static void
where_time_range(struct audit *a, const struct audit_filter *f, sqlite3_str *sql)
{
	sqlite3_stmt	*st = NULL;
	long long	 last = 0;
	uint64_t	 lo, hi;

	if (a->time_index || (!f->from_time && !f->to_time) ||
	    audit_int_query(a, "SELECT coalesce(max(seq), 0) FROM entries",
	    &last) == -1 || sqlite3_prepare_v2(a->db, "SELECT seq, time FROM "
	    "entries WHERE seq >= ?1 ORDER BY seq LIMIT 1", -1, &st, NULL) !=
	    SQLITE_OK)
		goto done;
	if (f->from_time && first_at(st, f->from_time, (uint64_t)last + 1, &lo) == 0)
		sqlite3_str_appendf(sql, " AND seq >= %llu", (unsigned long long)lo);
	if (f->to_time && first_at(st, f->to_time, (uint64_t)last + 1, &hi) == 0 &&
	    hi <= (uint64_t)last)
		sqlite3_str_appendf(sql, " AND seq < %llu", (unsigned long long)hi);
done:
	sqlite3_finalize(st);
}

/* Appends the filter's conditions; binds happen in bind_filter() in the same order. */
static void
where_filter(struct audit *a, const struct audit_filter *f, sqlite3_str *sql)
{
	const char	*cols[AUDIT_FILTER_TERMS], *vals[AUDIT_FILTER_TERMS];
	size_t		 n = audit_filter_terms(f, cols, vals);
	int		 p = 3;	/* ?1 and ?2 are the caller's */

	for (size_t i = 0; i < n; i++) {
		if (strcmp(cols[i], "subject") == 0)
			where_subject(a, p++, sql);
		else
			sqlite3_str_appendf(sql, " AND %s = ?%d", cols[i], p++);
	}
	if (f->overrides_only)
		sqlite3_str_appendall(sql, " AND " OVERRIDE_USED);
	if (f->from_time)
		sqlite3_str_appendf(sql, " AND time >= ?%d", p++);
	if (f->to_time)
		sqlite3_str_appendf(sql, " AND time < ?%d", p++);
	where_time_range(a, f, sql);
}

/*
 * Prepares the statement built in sql and frees the builder: 0, or -1 with
 * err (what: sqlite's message, or that the text could not be built).
 * Built with sqlite3_str, the text has no fixed limit to be cut at.
 */
static int
prepare_built(struct audit *a, sqlite3_str *sql, sqlite3_stmt **st,
    const char *what, char *err, size_t errlen)
{
	int	 rc = sqlite3_str_errcode(sql);
	char	*text = sqlite3_str_finish(sql);

	*st = NULL;
	if (rc != SQLITE_OK || text == NULL) {
		sqlite3_free(text);
		return errorf(err, errlen, "%s: %s", what, sqlite3_errstr(
		    rc != SQLITE_OK ? rc : SQLITE_NOMEM));
	}
	rc = sqlite3_prepare_v2(a->db, text, -1, st, NULL);
	sqlite3_free(text);
	if (rc != SQLITE_OK)
		return audit_sqlerr(a, what, err, errlen);
	return 0;
}

static void
bind_filter(sqlite3_stmt *st, const struct audit_filter *f)
{
	const char	*cols[AUDIT_FILTER_TERMS], *vals[AUDIT_FILTER_TERMS];
	size_t		 n = audit_filter_terms(f, cols, vals);
	int		 p = 3;

	for (size_t i = 0; i < n; i++)
		sqlite3_bind_text(st, p++, vals[i], -1, SQLITE_STATIC);
	if (f->from_time)
		sqlite3_bind_int64(st, p++, f->from_time);
	if (f->to_time)
		sqlite3_bind_int64(st, p++, f->to_time);
}

int
audit_query(struct audit *a, const struct audit_filter *f, uint64_t after,
    uint64_t limit, int newest_first, audit_cb cb, void *arg, char *err, size_t errlen)
{
	sqlite3_stmt	*st;
	sqlite3_str	*sql;

	/* ?1 is the paging cursor and ?2 the limit; filters bind from ?3. */
	if (f->subject != NULL && *f->subject != '\0')
		audit_index_attach(a);
	sql = sqlite3_str_new(a->db);
	sqlite3_str_appendf(sql, "SELECT %s FROM entries WHERE %s", audit_columns,
	    newest_first ? "(?1 = 0 OR seq < ?1)" : "seq > ?1");
	where_filter(a, f, sql);
	sqlite3_str_appendf(sql, " ORDER BY seq %s LIMIT ?2",
	    newest_first ? "DESC" : "ASC");
	if (prepare_built(a, sql, &st, "query", err, errlen) == -1)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)after);
	sqlite3_bind_int64(st, 2, limit ? (sqlite3_int64)limit : -1);
	bind_filter(st, f);
	return audit_run_scan(a, st, cb, arg, err, errlen);
}

int
audit_stats(struct audit *a, const struct audit_filter *f, const char *by,
    audit_stat_cb cb, void *arg, char *err, size_t errlen)
{
	/* In the order of AUDIT_STATS_GROUPS. */
	static const char *const exprs[] = { "agency", "purpose", "decision",
	    "reason", "kind", "date(time, 'unixepoch')" };
	const char	*expr;
	sqlite3_stmt	*st;
	sqlite3_str	*sql;
	int		 rc, g;

	if ((g = audit_stats_group(by, err, errlen)) == -1)
		return -1;
	expr = exprs[g];
	if (f->subject != NULL && *f->subject != '\0')
		audit_index_attach(a);
	sql = sqlite3_str_new(a->db);
	sqlite3_str_appendf(sql, "SELECT %s AS k, count(*) FROM entries WHERE "
	    "?1 = ?1 AND ?2 = ?2", expr);
	where_filter(a, f, sql);
	sqlite3_str_appendall(sql, " GROUP BY k ORDER BY k");
	if (prepare_built(a, sql, &st, "stats", err, errlen) == -1)
		return -1;
	sqlite3_bind_int(st, 1, 0);
	sqlite3_bind_int(st, 2, 0);
	bind_filter(st, f);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *k = (const char *)sqlite3_column_text(st, 0);

		if (cb(k ? k : "", (uint64_t)sqlite3_column_int64(st, 1), arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : audit_sqlerr(a, "stats", err, errlen);
}

static int
pending_items(struct audit *a, const char *cond, const char *done_kind, audit_cb cb,
    void *arg, char *err, size_t errlen)
{
	sqlite3_stmt	*st;
	sqlite3_str	*sql = sqlite3_str_new(a->db);

	sqlite3_str_appendf(sql, "SELECT %s FROM entries e WHERE seq IN (%s) "
	    "AND NOT EXISTS (SELECT 1 FROM entries r WHERE r.ref_seq = e.seq AND "
	    "r.kind = ?1) ORDER BY seq", audit_columns, cond);
	if (prepare_built(a, sql, &st, "pending", err, errlen) == -1)
		return -1;
	sqlite3_bind_text(st, 1, done_kind, -1, SQLITE_STATIC);
	return audit_run_scan(a, st, cb, arg, err, errlen);
}

/* Overrides used, and denied requests that invoked one (D15). */
int
audit_reviews_pending(struct audit *a, audit_cb cb, void *arg, char *err,
    size_t errlen)
{
	return pending_items(a, "SELECT seq FROM entries WHERE " OVERRIDE_USED
	    " UNION ALL SELECT seq FROM entries WHERE " OVERRIDE_REFUSED, "review",
	    cb, arg, err, errlen);
}

/* Overrides used without an accepted waiver (D6). */
int
audit_inform_pending(struct audit *a, audit_cb cb, void *arg, char *err,
    size_t errlen)
{
	return pending_items(a, "SELECT seq FROM entries WHERE " OVERRIDE_USED
	    " AND " NO_WAIVER, "inform_done", cb, arg, err, errlen);
}

/*
 * By size where checkpoints_size orders them; by id in a log made without
 * it (audit.c), where a size out of id order is the verifier's failure.
 */
const char *
audit_checkpoints_sql(const struct audit *a)
{
	if (a->legacy)
		return "SELECT id, size, head_hash, time, signature, NULL FROM "
		    "checkpoints ORDER BY size, id";
	if (a->cp_by_id)
		return "SELECT id, size, head_hash, time, signature, note FROM "
		    "checkpoints ORDER BY id";
	return "SELECT id, size, head_hash, time, signature, note FROM "
	    "checkpoints ORDER BY size, id";
}

int
audit_checkpoints(struct audit *a, audit_checkpoint_cb cb, void *arg, char *err,
    size_t errlen)
{
	sqlite3_stmt	*st;
	int		 rc;

	if (sqlite3_prepare_v2(a->db, audit_checkpoints_sql(a), -1, &st,
	    NULL) != SQLITE_OK)
		return audit_sqlerr(a, "checkpoints", err, errlen);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct audit_checkpoint cp;

		memset(&cp, 0, sizeof(cp));
		cp.id = (uint64_t)sqlite3_column_int64(st, 0);
		memcpy(cp.log_id, a->log_id, 16);
		cp.size = (uint64_t)sqlite3_column_int64(st, 1);
		if (sqlite3_column_bytes(st, 2) == 32)
			memcpy(cp.head, sqlite3_column_blob(st, 2), 32);
		cp.time = sqlite3_column_int64(st, 3);
		if (sqlite3_column_bytes(st, 4) == 64)
			memcpy(cp.sig, sqlite3_column_blob(st, 4), 64);
		cp.note = (const char *)sqlite3_column_text(st, 5);
		if (cb(&cp, arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : audit_sqlerr(a, "checkpoints", err, errlen);
}

int
audit_holder_batches(struct audit *a, uint64_t since, audit_batch_cb cb, void *arg,
    char *err, size_t errlen)
{
	sqlite3_stmt	*st;
	int		 rc;

	/* +seq: by the entries_holder index, not by a range of the whole log. */
	if (sqlite3_prepare_v2(a->db, "SELECT request_id, min(seq), min(agency), "
	    "min(case_ref), min(time) FROM entries WHERE kind = 'holder' AND +seq > ?1 "
	    "GROUP BY request_id HAVING sum(decision = 'rolled_back') = 0 ORDER BY 2",
	    -1, &st, NULL) != SQLITE_OK)
		return audit_sqlerr(a, "holder batches", err, errlen);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)since);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *rid = (const char *)sqlite3_column_text(st, 0);
		const char *agency = (const char *)sqlite3_column_text(st, 2);
		const char *store = (const char *)sqlite3_column_text(st, 3);

		if (cb(rid ? rid : "", (uint64_t)sqlite3_column_int64(st, 1),
		    agency ? agency : "", store ? store : "",
		    sqlite3_column_int64(st, 4), arg) == -1) {
			rc = SQLITE_DONE;
			break;
		}
	}
	a->start_steps += (uint64_t)sqlite3_stmt_status(st, SQLITE_STMTSTATUS_VM_STEP, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : audit_sqlerr(a, "holder batches", err, errlen);
}

int
audit_last_store(struct audit *a, char *out, size_t len, char *err, size_t errlen)
{
	sqlite3_stmt	*st;
	int		 rc;

	out[0] = '\0';
	if (sqlite3_prepare_v2(a->db, "SELECT case_ref FROM entries WHERE kind = "
	    "'store' ORDER BY seq DESC LIMIT 1", -1, &st, NULL) != SQLITE_OK)
		return audit_sqlerr(a, "last store", err, errlen);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		snprintf(out, len, "%s", sqlite3_column_text(st, 0) ?
		    (const char *)sqlite3_column_text(st, 0) : "");
	a->start_steps += (uint64_t)sqlite3_stmt_status(st, SQLITE_STMTSTATUS_VM_STEP, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 :
	    audit_sqlerr(a, "last store", err, errlen);
}

uint64_t
audit_start_steps(struct audit *a)
{
	return a->start_steps;
}

/*
 * The note of the one checkpoint sql selects (its ?1 bound to n, if it
 * has one), for audit_checkpoint_note() and audit_checkpoint_note_upto():
 * 0, 1 if there is none (or it is too long to be a note), or -1 with err.
 */
static int
note_row(struct audit *a, const char *sql, uint64_t n, char **note, char *err,
    size_t errlen)
{
	sqlite3_stmt	*st;
	int		 rc;

	*note = NULL;
	if (a->legacy)
		return 1;
	if (sqlite3_prepare_v2(a->db, sql, -1, &st, NULL) != SQLITE_OK)
		return audit_sqlerr(a, "checkpoint note", err, errlen);
	if (sqlite3_bind_parameter_count(st) > 0)
		sqlite3_bind_int64(st, 1, (sqlite3_int64)n);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW &&
	    sqlite3_column_bytes(st, 0) <= AUDIT_NOTE_MAX)
		*note = xstrdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return audit_sqlerr(a, "checkpoint note", err, errlen);
	return *note != NULL ? 0 : 1;
}

/*
 * In a log without checkpoints_size (audit.c): the id of the last
 * checkpoint of size max or less, by a binary search of the ids, whose
 * sizes grow with them (a gap, a deleted row, is stepped over); 0 if there
 * is none, -1 on a database error. A log whose sizes do not grow with
 * the ids was altered: the search finds one of its checkpoints, whose note
 * the caller checks as any other, and verify fails the log.
 */
static int64_t
cp_upto_by_id(struct audit *a, uint64_t max)
{
	sqlite3_stmt	*st = NULL;
	int64_t		 lo, hi, mid, found = -1;
	long long	 v = 0;
	int		 rc;

	if (audit_int_query(a, "SELECT coalesce(max(id), 0) FROM checkpoints", &v) == -1)
		return -1;
	if ((hi = v) == 0)
		return 0;
	if (sqlite3_prepare_v2(a->db, "SELECT id, size FROM checkpoints WHERE "
	    "id >= ?1 ORDER BY id LIMIT 1", -1, &st, NULL) != SQLITE_OK)
		return -1;
	/* Invariant: lo is 0 or a row of size <= max; rows past hi are larger. */
	for (lo = 0; lo < hi; ) {
		int64_t	 id;
		uint64_t size;

		mid = lo + (hi - lo + 1) / 2;
		sqlite3_bind_int64(st, 1, mid);
		if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
			sqlite3_reset(st);
			if (rc != SQLITE_DONE)
				goto out;
			hi = mid - 1;	/* no row from mid on */
			continue;
		}
		id = sqlite3_column_int64(st, 0);
		size = (uint64_t)sqlite3_column_int64(st, 1);
		sqlite3_reset(st);
		if (size <= max)
			lo = id;
		else
			hi = mid - 1;
	}
	found = lo;
out:
	sqlite3_finalize(st);
	return found;
}

/* Without checkpoints_size: the note of the last checkpoint of size <= max (== with exact). */
static int
note_by_id(struct audit *a, uint64_t max, int exact, char **note, char *err,
    size_t errlen)
{
	sqlite3_stmt	*st;
	int64_t		 id;
	int		 rc;

	*note = NULL;
	if ((id = cp_upto_by_id(a, max)) == -1)
		return audit_sqlerr(a, "checkpoint note", err, errlen);
	if (id == 0)
		return 1;
	if (sqlite3_prepare_v2(a->db, "SELECT size, note FROM checkpoints WHERE "
	    "id = ?1", -1, &st, NULL) != SQLITE_OK)
		return audit_sqlerr(a, "checkpoint note", err, errlen);
	sqlite3_bind_int64(st, 1, id);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW &&
	    (!exact || (uint64_t)sqlite3_column_int64(st, 0) == max) &&
	    sqlite3_column_type(st, 1) != SQLITE_NULL &&
	    sqlite3_column_bytes(st, 1) <= AUDIT_NOTE_MAX)
		*note = xstrdup((const char *)sqlite3_column_text(st, 1));
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return audit_sqlerr(a, "checkpoint note", err, errlen);
	return *note != NULL ? 0 : 1;
}

int
audit_checkpoint_note(struct audit *a, uint64_t size, char **note, char *err,
    size_t errlen)
{
	if (a->cp_by_id)
		return size == 0 ? note_row(a, "SELECT note FROM checkpoints WHERE "
		    "note IS NOT NULL ORDER BY id DESC LIMIT 1", 0, note, err, errlen) :
		    note_by_id(a, size, 1, note, err, errlen);
	return note_row(a, size == 0 ? "SELECT note FROM checkpoints WHERE note IS "
	    "NOT NULL ORDER BY size DESC, id DESC LIMIT 1" : "SELECT note FROM "
	    "checkpoints WHERE note IS NOT NULL AND size = ?1 ORDER BY id DESC LIMIT 1",
	    size, note, err, errlen);
}

int
audit_checkpoint_note_upto(struct audit *a, uint64_t max, char **note, char *err,
    size_t errlen)
{
	if (a->cp_by_id)
		return note_by_id(a, max, 0, note, err, errlen);
	return note_row(a, "SELECT note FROM checkpoints WHERE note IS NOT NULL AND "
	    "size <= ?1 ORDER BY size DESC, id DESC LIMIT 1", max, note, err, errlen);
}
