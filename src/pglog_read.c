/*
 * Reading the PostgreSQL log back (issue 19): the cursor pages and row
 * decoding the verify (pglog_verify.c) and the export share, and the walk
 * that feeds `safeshare audit export --postgresql` the same callbacks as
 * the SQLite log's export (audit_checkpoints(), audit_scan()), so both
 * write the one export format (docs/audit-format.md). Rows are read in
 * binary through cursors: memory is bounded by a page, not the log.
 */
#include <libpq-fe.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "audit_int.h"
#include "pglog.h"
#include "pglog_int.h"
#include "util.h"

#define FETCH	"1000"		/* rows per page */

PGresult *
pglog_fetch(PGconn *conn, const char *cursor, char *err, size_t errlen)
{
	char		 sql[64];
	PGresult	*res;

	snprintf(sql, sizeof(sql), "FETCH " FETCH " FROM %s", cursor);
	res = PQexec(conn, sql);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		pglog_fail(conn, res, cursor, err, errlen);
		return NULL;
	}
	return res;
}

int
pglog_row_entry(const PGresult *res, int row, struct audit_entry *e)
{
	uint64_t t;

	memset(e, 0, sizeof(*e));
	if (PQnfields(res) != AUDIT_NCOLS ||
	    pglog_col_u64(res, row, AUDIT_COL_seq, &e->seq) == -1 ||
	    pglog_col_u64(res, row, AUDIT_COL_time, &t) == -1 ||
	    pglog_col_u64(res, row, AUDIT_COL_ref_seq, &e->ref_seq) == -1 ||
	    pglog_col_bytes(res, row, AUDIT_COL_prev_hash, e->prev_hash, 32) == -1 ||
	    pglog_col_bytes(res, row, AUDIT_COL_hash, e->hash, 32) == -1)
		return -1;
	e->time = (int64_t)t;
	/* Binary text is the bytes, which libpq ends with a NUL. */
#define F(name)	e->name = PQgetvalue(res, row, AUDIT_COL_##name);
	AUDIT_STRING_FIELDS(F)
#undef F
	return 0;
}

int
pglog_row_checkpoint(const PGresult *res, int row, const unsigned char log_id[16],
    struct audit_checkpoint *cp)
{
	uint64_t n, t;

	memset(cp, 0, sizeof(*cp));
	if (PQnfields(res) != 6 || pglog_col_u64(res, row, 0, &n) == -1 ||
	    pglog_col_u64(res, row, 1, &cp->size) == -1 ||
	    pglog_col_bytes(res, row, 2, cp->head, 32) == -1 ||
	    pglog_col_u64(res, row, 3, &t) == -1 ||
	    pglog_col_bytes(res, row, 4, cp->sig, 64) == -1 ||
	    PQgetisnull(res, row, 5))
		return -1;
	cp->id = n;
	cp->time = (int64_t)t;
	memcpy(cp->log_id, log_id, 16);
	cp->note = PQgetvalue(res, row, 5);
	return 0;
}

int
pglog_drain(PGconn *conn, const char *cursor, int entries, const unsigned char id[16],
    audit_checkpoint_cb cpcb, audit_cb ecb, void *arg, char *err, size_t errlen)
{
	PGresult	*res;
	int		 rows, stop = 0;

	do {
		if ((res = pglog_fetch(conn, cursor, err, errlen)) == NULL)
			return -1;
		rows = PQntuples(res);
		for (int i = 0; i < rows && !stop; i++) {
			struct audit_entry	 e;
			struct audit_checkpoint	 cp;

			if (entries ? pglog_row_entry(res, i, &e) == -1 :
			    pglog_row_checkpoint(res, i, id, &cp) == -1) {
				PQclear(res);
				return errorf(err, errlen, "PostgreSQL log: %s row is "
				    "malformed", entries ? "an entry" : "a checkpoint");
			}
			stop = entries ? ecb(&e, arg) : cpcb(&cp, arg);
		}
		PQclear(res);
	} while (rows > 0 && !stop);
	return stop ? 1 : 0;
}

int
pglog_walk(struct pglog *p, pglog_head_cb hcb, audit_checkpoint_cb cpcb, audit_cb ecb,
    void *arg, char *err, size_t errlen)
{
	PGconn		*conn;
	PGresult	*res;
	unsigned char	 id[16];
	uint64_t	 size, ncp;
	char		 sql[1024];
	int		 rc = -1, stop;

	if (pglog_ready(p, err, errlen) == -1)
		return -1;
	conn = pglog_conn(p);
	/* One snapshot: the header's counts are what follows. */
	if (pglog_exec(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
	    "export", err, errlen) == -1)
		return -1;
	res = PQexecParams(conn, "SELECT log_id, size, (SELECT count(*) FROM "
	    "log_checkpoints) FROM log_head WHERE one", 0, NULL, NULL, NULL, NULL, 1);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		pglog_fail(conn, res, "head", err, errlen);
		goto done;
	}
	if (PQntuples(res) != 1 || pglog_col_bytes(res, 0, 0, id, 16) == -1 ||
	    pglog_col_u64(res, 0, 1, &size) == -1 ||
	    pglog_col_u64(res, 0, 2, &ncp) == -1) {
		PQclear(res);
		errorf(err, errlen, "PostgreSQL log: the head row is missing or malformed");
		goto done;
	}
	PQclear(res);
	snprintf(sql, sizeof(sql), "DECLARE pglog_entries BINARY CURSOR FOR SELECT %s "
	    "FROM log_entries ORDER BY seq", audit_columns);
	if (pglog_exec(conn, "DECLARE pglog_cps BINARY CURSOR FOR SELECT "
	    PGLOG_CP_COLUMNS " FROM log_checkpoints ORDER BY size, n", "checkpoints",
	    err, errlen) == -1 || pglog_exec(conn, sql, "entries", err, errlen) == -1)
		goto done;
	if (hcb(id, size, ncp, arg) != 0 ||
	    (stop = pglog_drain(conn, "pglog_cps", 0, id, cpcb, NULL, arg, err, errlen)) == 1) {
		rc = 0;
		goto done;
	}
	if (stop == -1 ||
	    pglog_drain(conn, "pglog_entries", 1, id, NULL, ecb, arg, err, errlen) == -1)
		goto done;
	rc = 0;
done:
	PQclear(PQexec(conn, "ROLLBACK"));
	return rc;
}
