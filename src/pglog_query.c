/*
 * The PostgreSQL log's readers (issue 19): each pglog_X has the
 * signature and the answers of the SQLite log's audit_X (audit.h), with
 * a struct pglog * for the struct audit *, so the daemon's auditor, feed,
 * proof and reconciliation routes read either log the same way. The
 * filters are audit_filter_terms()'s and the groupings
 * audit_stats_group()'s (audit_query.c), entries are decoded by
 * pglog_row_entry() (pglog_read.c) and the proofs (pglog_proof.c) are
 * merkle.c's over the stored tree: only the SQL is this file's.
 *
 * A reader that runs more than one statement (a cursor paged through,
 * the head and then the checkpoints) does so in one REPEATABLE READ, READ
 * ONLY transaction, one snapshot, as the SQLite reader reads in one
 * transaction; a single statement is its own snapshot. Rows of entries
 * come through a binary cursor a page at a time, so memory is bounded by
 * a page whatever the limit. Text orderings (stats keys, the minimums of
 * a holder batch) are in the "C" collation, SQLite's BINARY, whatever
 * the database's locale.
 */
#include <libpq-fe.h>

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "audit_int.h"
#include "pglog.h"
#include "pglog_int.h"
#include "policy.h"
#include "util.h"

#define MAXPARAMS	(2 + AUDIT_FILTER_TERMS + 2)

/* A statement being built, with its text parameters ($1 ...). */
struct q {
	char		 sql[2048];
	size_t		 len;
	int		 over;		/* the text did not fit */
	int		 n;		/* parameters */
	const char	*vals[MAXPARAMS];
	char		 num[MAXPARAMS][24];	/* numbers' text, pointed at by vals */
};

static void
q_add(struct q *q, const char *fmt, ...)
{
	va_list	ap;
	int	r;

	if (q->over)
		return;
	va_start(ap, fmt);
	r = vsnprintf(q->sql + q->len, sizeof(q->sql) - q->len, fmt, ap);
	va_end(ap);
	if (r < 0 || (size_t)r >= sizeof(q->sql) - q->len)
		q->over = 1;
	else
		q->len += (size_t)r;
}

/* A parameter: its number, for the text ("$%d"). NULL is SQL NULL. */
static int
q_param(struct q *q, const char *v)
{
	q->vals[q->n] = v;
	return ++q->n;
}

static int
q_num(struct q *q, int64_t v)
{
	snprintf(q->num[q->n], sizeof(q->num[q->n]), "%" PRId64, v);
	return q_param(q, q->num[q->n]);
}

/* The filter's conditions (audit_filter_terms(): the same as SQLite's). */
static void
q_filter(struct q *q, const struct audit_filter *f)
{
	const char	*cols[AUDIT_FILTER_TERMS], *vals[AUDIT_FILTER_TERMS];
	size_t		 n = audit_filter_terms(f, cols, vals);

	for (size_t i = 0; i < n; i++)
		q_add(q, " AND %s = $%d", cols[i], q_param(q, vals[i]));
	if (f->overrides_only)
		q_add(q, " AND " OVERRIDE_USED);
	if (f->from_time)
		q_add(q, " AND time >= $%d::bigint", q_num(q, f->from_time));
	if (f->to_time)
		q_add(q, " AND time < $%d::bigint", q_num(q, f->to_time));
}

/* Starts the reader's snapshot (pglog_ready() reconnects if need be). */
static int
snap_begin(struct pglog *p, const char *what, char *err, size_t errlen)
{
	if (pglog_ready(p, err, errlen) == -1)
		return -1;
	return pglog_exec(pglog_conn(p), "BEGIN ISOLATION LEVEL REPEATABLE READ "
	    "READ ONLY", what, err, errlen);
}

static void
snap_end(struct pglog *p)
{
	PGconn *conn = pglog_conn(p);

	if (PQstatus(conn) == CONNECTION_OK &&
	    PQtransactionStatus(conn) != PQTRANS_IDLE)
		PQclear(PQexec(conn, "ROLLBACK"));
}

/*
 * The entries q selects (audit_columns first) to cb through a binary
 * cursor in one snapshot: 0 (a callback's stop included) or -1 with err.
 */
static int
run_entries(struct pglog *p, struct q *q, const char *what, audit_cb cb, void *arg,
    char *err, size_t errlen)
{
	PGresult	*res;
	char		*decl;
	int		 rc = -1;

	if (q->over)
		return errorf(err, errlen, "PostgreSQL log: %s: the statement is too "
		    "long", what);
	if ((decl = malloc(q->len + 64)) == NULL)
		return errorf(err, errlen, "PostgreSQL log: %s: out of memory", what);
	snprintf(decl, q->len + 64, "DECLARE pglog_q BINARY CURSOR FOR %s", q->sql);
	if (snap_begin(p, what, err, errlen) == -1)
		goto done;
	res = PQexecParams(pglog_conn(p), decl, q->n, NULL, q->vals, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		pglog_fail(pglog_conn(p), res, what, err, errlen);
		goto done;
	}
	PQclear(res);
	if (pglog_drain(pglog_conn(p), "pglog_q", 1, NULL, NULL, cb, arg, err,
	    errlen) == -1)
		goto done;
	rc = 0;
done:
	snap_end(p);
	free(decl);
	return rc;
}

/* One statement of q, its rows in text: the result, or NULL with err. */
static PGresult *
run_rows(struct pglog *p, struct q *q, const char *what, char *err, size_t errlen)
{
	PGresult *res;

	if (q->over) {
		errorf(err, errlen, "PostgreSQL log: %s: the statement is too long", what);
		return NULL;
	}
	if (pglog_ready(p, err, errlen) == -1)
		return NULL;
	res = PQexecParams(pglog_conn(p), q->sql, q->n, NULL, q->vals, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		pglog_fail(pglog_conn(p), res, what, err, errlen);
		return NULL;
	}
	return res;
}

/*
 * The statements of fixed text, prepared once per session (pglog.c's
 * session()) as SQLite's readers keep theirs: the tree reads of every
 * proof (pglog_proof.c) and the single-row readers the daemon calls at
 * start and on every proof request.
 */
static const struct {
	const char	*name, *sql;
} readers[] = {
	{ "pglog_r_size", "SELECT size FROM log_head WHERE one" },
	{ "pglog_r_node", "SELECT hash FROM log_tree WHERE level = $1::integer "
	    "AND idx = $2::bigint" },
	{ "pglog_r_leaves", "SELECT seq, hash FROM log_entries WHERE seq >= "
	    "$1::bigint AND seq < $2::bigint ORDER BY seq" },
	{ "pglog_r_nodes", "SELECT idx, hash FROM log_tree WHERE level = "
	    "$3::integer AND idx >= $1::bigint AND idx < $2::bigint ORDER BY idx" },
	{ "pglog_r_note", "SELECT note FROM log_checkpoints ORDER BY size DESC, "
	    "n DESC LIMIT 1" },
	{ "pglog_r_note_at", "SELECT note FROM log_checkpoints WHERE size = "
	    "$1::bigint ORDER BY n DESC LIMIT 1" },
	{ "pglog_r_note_upto", "SELECT note FROM log_checkpoints WHERE size <= "
	    "$1::bigint ORDER BY size DESC, n DESC LIMIT 1" },
	{ "pglog_r_batches", "SELECT request_id, min(seq), min(agency COLLATE "
	    "\"C\"), min(case_ref COLLATE \"C\"), min(time) FROM log_entries WHERE "
	    "kind = 'holder' AND seq > $1::bigint GROUP BY request_id HAVING "
	    "count(*) FILTER (WHERE decision = 'rolled_back') = 0 ORDER BY 2" },
	{ "pglog_r_last_store", "SELECT case_ref FROM log_entries WHERE kind = "
	    "'store' ORDER BY seq DESC LIMIT 1" },
};

int
pglog_prepare_readers(struct pglog *p, char *err, size_t errlen)
{
	for (size_t i = 0; i < sizeof(readers) / sizeof(readers[0]); i++) {
		PGresult *res = PQprepare(pglog_conn(p), readers[i].name,
		    readers[i].sql, 0, NULL);

		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			return pglog_fail(pglog_conn(p), res, readers[i].name, err,
			    errlen);
		PQclear(res);
	}
	return 0;
}

PGresult *
pglog_query_prepared(struct pglog *p, const char *name, int n,
    const char *const *vals, int format, char *err, size_t errlen)
{
	PGresult *res;

	res = PQexecPrepared(pglog_conn(p), name, n, vals, NULL, NULL, format);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		pglog_fail(pglog_conn(p), res, name, err, errlen);
		return NULL;
	}
	return res;
}

/* One prepared reader in its own snapshot (the session made ready first). */
static PGresult *
run_prepared(struct pglog *p, const char *name, const char *val, char *err,
    size_t errlen)
{
	if (pglog_ready(p, err, errlen) == -1)
		return NULL;
	return pglog_query_prepared(p, name, val != NULL, &val, 0, err, errlen);
}

/* A text column of row i as a number (0 when NULL). */
static uint64_t
col_u64(const PGresult *res, int i, int col)
{
	return strtoull(PQgetvalue(res, i, col), NULL, 10);
}

int
pglog_scan(struct pglog *p, uint64_t from, uint64_t limit, audit_cb cb, void *arg,
    char *err, size_t errlen)
{
	struct q q;

	memset(&q, 0, sizeof(q));
	q_add(&q, "SELECT %s FROM log_entries WHERE seq >= $%d::bigint ORDER BY seq "
	    "LIMIT $%d::bigint", audit_columns, q_num(&q, (int64_t)from),
	    limit ? q_num(&q, (int64_t)limit) : q_param(&q, NULL));
	return run_entries(p, &q, "scan", cb, arg, err, errlen);
}

int
pglog_query(struct pglog *p, const struct audit_filter *f, uint64_t after,
    uint64_t limit, int newest_first, audit_cb cb, void *arg, char *err,
    size_t errlen)
{
	struct q	 q;
	int		 a, l;

	/* $1 is the paging cursor and $2 the limit (NULL: none), as SQLite's ?1, ?2. */
	memset(&q, 0, sizeof(q));
	a = q_num(&q, (int64_t)after);
	l = limit ? q_num(&q, (int64_t)limit) : q_param(&q, NULL);
	q_add(&q, "SELECT %s FROM log_entries WHERE ", audit_columns);
	if (newest_first)
		q_add(&q, "($%d::bigint = 0 OR seq < $%d::bigint)", a, a);
	else
		q_add(&q, "seq > $%d::bigint", a);
	q_filter(&q, f);
	q_add(&q, " ORDER BY seq %s LIMIT $%d::bigint", newest_first ? "DESC" : "ASC", l);
	return run_entries(p, &q, "query", cb, arg, err, errlen);
}

int
pglog_stats(struct pglog *p, const struct audit_filter *f, const char *by,
    audit_stat_cb cb, void *arg, char *err, size_t errlen)
{
	/* In the order of AUDIT_STATS_GROUPS; day as SQLite's date(). */
	static const char *const exprs[] = { "agency", "purpose", "decision",
	    "reason", "kind", "to_char(to_timestamp(time) AT TIME ZONE 'UTC', "
	    "'YYYY-MM-DD')" };
	struct q	 q;
	PGresult	*res;
	int		 g;

	if ((g = audit_stats_group(by, err, errlen)) == -1)
		return -1;
	memset(&q, 0, sizeof(q));
	q_add(&q, "SELECT %s COLLATE \"C\" AS k, count(*) FROM log_entries WHERE true",
	    exprs[g]);
	q_filter(&q, f);
	q_add(&q, " GROUP BY k ORDER BY k");
	if ((res = run_rows(p, &q, "stats", err, errlen)) == NULL)
		return -1;
	for (int i = 0; i < PQntuples(res); i++)
		if (cb(PQgetvalue(res, i, 0), col_u64(res, i, 1), arg) != 0)
			break;
	PQclear(res);
	return 0;
}

/* The queues of D6 and D15: cond selects the seqs, done_kind closes an item. */
static int
pending_items(struct pglog *p, const char *cond, const char *done_kind, audit_cb cb,
    void *arg, char *err, size_t errlen)
{
	struct q q;

	memset(&q, 0, sizeof(q));
	/*
	 * r.ref_seq != 0 says nothing new (seqs start at 1) but lets the
	 * planner use the partial index log_entries_ref: without it each item
	 * was a scan of the whole log (190 ms at 300,000 entries, 60 with).
	 */
	q_add(&q, "SELECT %s FROM log_entries e WHERE seq IN (%s) AND NOT EXISTS "
	    "(SELECT 1 FROM log_entries r WHERE r.ref_seq = e.seq AND r.ref_seq != 0 "
	    "AND r.kind = $%d) ORDER BY seq", audit_columns, cond,
	    q_param(&q, done_kind));
	return run_entries(p, &q, "pending", cb, arg, err, errlen);
}

int
pglog_reviews_pending(struct pglog *p, audit_cb cb, void *arg, char *err,
    size_t errlen)
{
	return pending_items(p, "SELECT seq FROM log_entries WHERE " OVERRIDE_USED
	    " UNION ALL SELECT seq FROM log_entries WHERE " OVERRIDE_REFUSED, "review",
	    cb, arg, err, errlen);
}

/* NO_WAIVER (audit_int.h) without SQLite's GLOB. */
int
pglog_inform_pending(struct pglog *p, audit_cb cb, void *arg, char *err,
    size_t errlen)
{
	return pending_items(p, "SELECT seq FROM log_entries WHERE " OVERRIDE_USED
	    " AND (inform_waiver = '' OR starts_with(inform_waiver, '"
	    POLICY_WAIVER_REJECTED "'))", "inform_done", cb, arg, err, errlen);
}

int
pglog_checkpoints(struct pglog *p, audit_checkpoint_cb cb, void *arg, char *err,
    size_t errlen)
{
	PGconn		*conn;
	PGresult	*res;
	unsigned char	 id[16];
	int		 rc = -1;

	if (snap_begin(p, "checkpoints", err, errlen) == -1)
		return -1;
	conn = pglog_conn(p);
	res = PQexecParams(conn, "SELECT log_id FROM log_head WHERE one", 0, NULL,
	    NULL, NULL, NULL, 1);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		pglog_fail(conn, res, "checkpoints", err, errlen);
		goto done;
	}
	if (PQntuples(res) != 1 || pglog_col_bytes(res, 0, 0, id, 16) == -1) {
		PQclear(res);
		errorf(err, errlen, "PostgreSQL log: the head row is missing or malformed");
		goto done;
	}
	PQclear(res);
	if (pglog_exec(conn, "DECLARE pglog_q BINARY CURSOR FOR SELECT "
	    PGLOG_CP_COLUMNS " FROM log_checkpoints ORDER BY size, n", "checkpoints",
	    err, errlen) == -1 ||
	    pglog_drain(conn, "pglog_q", 0, id, cb, NULL, arg, err, errlen) == -1)
		goto done;
	rc = 0;
done:
	snap_end(p);
	return rc;
}

/* The one note a prepared reader selects: 0, 1 if none (or too long), -1. */
static int
note_row(struct pglog *p, const char *name, uint64_t n, char **note, char *err,
    size_t errlen)
{
	PGresult	*res;
	char		 num[24];

	*note = NULL;
	snprintf(num, sizeof(num), "%" PRIu64, n);
	if ((res = run_prepared(p, name, strcmp(name, "pglog_r_note") == 0 ? NULL :
	    num, err, errlen)) == NULL)
		return -1;
	if (PQntuples(res) == 1 && PQgetlength(res, 0, 0) <= AUDIT_NOTE_MAX)
		*note = xstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	return *note != NULL ? 0 : 1;
}

int
pglog_checkpoint_note(struct pglog *p, uint64_t size, char **note, char *err,
    size_t errlen)
{
	return note_row(p, size == 0 ? "pglog_r_note" : "pglog_r_note_at", size, note,
	    err, errlen);
}

int
pglog_checkpoint_note_upto(struct pglog *p, uint64_t max, char **note, char *err,
    size_t errlen)
{
	return note_row(p, "pglog_r_note_upto", max, note, err, errlen);
}

int
pglog_holder_batches(struct pglog *p, uint64_t since, audit_batch_cb cb, void *arg,
    char *err, size_t errlen)
{
	PGresult	*res;
	char		 num[24];

	snprintf(num, sizeof(num), "%" PRIu64, since);
	if ((res = run_prepared(p, "pglog_r_batches", num, err, errlen)) == NULL)
		return -1;
	for (int i = 0; i < PQntuples(res); i++)
		if (cb(PQgetvalue(res, i, 0), col_u64(res, i, 1), PQgetvalue(res, i, 2),
		    PQgetvalue(res, i, 3), (int64_t)strtoll(PQgetvalue(res, i, 4),
		    NULL, 10), arg) == -1)
			break;
	PQclear(res);
	return 0;
}

int
pglog_last_store(struct pglog *p, char *out, size_t len, char *err, size_t errlen)
{
	PGresult *res;

	out[0] = '\0';
	if ((res = run_prepared(p, "pglog_r_last_store", NULL, err, errlen)) == NULL)
		return -1;
	if (PQntuples(res) == 1)
		snprintf(out, len, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return 0;
}
