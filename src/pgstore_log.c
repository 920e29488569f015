/*
 * What the PostgreSQL store remembers of its disclosure log (issue 13
 * item 5; pgstore.h): the table store_log, one row. With SQLite the store
 * and the log are two files, and the store's note catches a log deleted,
 * replaced or cut while the daemon was stopped. On PostgreSQL both live
 * in one database and a backup holds both, but the row still catches
 * what happens to the log's tables alone: dropped and made again empty
 * (another log id), or restored from an older dump than the store's (a
 * log shorter than the store has seen). Several daemons write the row;
 * the size kept is the largest any of them saw.
 */
#include <libpq-fe.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "pgstore.h"
#include "pgstore_int.h"
#include "util.h"

/* Server notices are not errors. */
static void
quiet(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

int
pgstore_log_memory(const char *conninfo, unsigned char log_id[16],
    uint64_t *size, char *err, size_t errlen)
{
	PGconn		*conn;
	PGresult	*res = NULL;
	int		 rc = -1;

	conn = pg_connectdb(conninfo);
	if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
		pgstore_fail(conn, NULL, "connect", err, errlen);
		goto done;
	}
	PQsetNoticeProcessor(conn, quiet, NULL);
	/* No store, or one from before store_log: nothing remembered. */
	res = PQexec(conn, "SELECT to_regclass('store_log') IS NOT NULL");
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		pgstore_fail(conn, res, "store_log", err, errlen);
		res = NULL;
		goto done;
	}
	if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
		rc = 0;
		goto done;
	}
	PQclear(res);
	res = PQexecParams(conn, "SELECT log_id, size FROM store_log", 0, NULL,
	    NULL, NULL, NULL, 1);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		pgstore_fail(conn, res, "store_log", err, errlen);
		res = NULL;
		goto done;
	}
	if (PQntuples(res) == 0) {
		rc = 0;
		goto done;
	}
	if (PQntuples(res) != 1 || PQgetlength(res, 0, 0) != 16 ||
	    PQgetlength(res, 0, 1) != 8) {
		errorf(err, errlen, "PostgreSQL store: store_log: a malformed row");
		goto done;
	}
	memcpy(log_id, PQgetvalue(res, 0, 0), 16);
	*size = 0;
	for (int i = 0; i < 8; i++)
		*size = *size << 8 | (unsigned char)PQgetvalue(res, 0, 1)[i];
	rc = 1;
done:
	PQclear(res);
	PQfinish(conn);
	return rc;
}

/*
 * The first WARNING the server sends during pgstore_analyze(): a table the
 * role may not analyze (it does not own it) is skipped with a warning, not
 * an error, and must not pass for analyzed.
 */
struct analyze_warning {
	char	msg[201];
};

static void
analyze_notice(void *arg, const PGresult *res)
{
	struct analyze_warning	*w = arg;
	const char		*sev, *msg;

	sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	if (w->msg[0] == '\0' && sev != NULL && strcmp(sev, "WARNING") == 0)
		snprintf(w->msg, sizeof(w->msg), "%s", msg != NULL ? msg : "?");
}

int
pgstore_analyze(struct pgstore *p, char *err, size_t errlen)
{
	struct analyze_warning	 w = { "" };
	PQnoticeReceiver	 old;
	PGresult		*res;

	if (p->txn)
		return errorf(err, errlen, "PostgreSQL store: analyze: inside a "
		    "write transaction");
	pgstore_read_end(p);
	/* pgstore's own receiver is libpq's default, whose argument is NULL. */
	old = PQsetNoticeReceiver(p->conn, analyze_notice, &w);
	res = PQexec(p->conn, "ANALYZE subjects, records, record_fields, "
	    "consents, flags, holder_batches, store_loads");
	PQsetNoticeReceiver(p->conn, old, NULL);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		return pgstore_fail(p->conn, res, "analyze", err, errlen);
	PQclear(res);
	if (w.msg[0] != '\0')
		return errorf(err, errlen, "PostgreSQL store: analyze: %s",
		    term_safe(w.msg));
	return 0;
}

int
pgstore_remember_log(struct pgstore *p, const unsigned char log_id[16],
    uint64_t size, int wait, char *err, size_t errlen)
{
	char		 hex[2 + 32 + 1], sb[24];
	const char	*vals[2] = { hex, sb };

	(void)wait;
	if (p->txn)
		return errorf(err, errlen, "PostgreSQL store: store_log: inside a "
		    "write transaction");
	pgstore_read_end(p);	/* not in a read-only snapshot */
	memcpy(hex, "\\x", 2);
	hex_encode(log_id, 16, hex + 2);
	snprintf(sb, sizeof(sb), "%" PRIu64, size);
	return pgstore_exec(p, S_REMEMBER_LOG, 2, vals, "store_log", err, errlen);
}

int
pgstore_forget_log(struct pgstore *p, char *err, size_t errlen)
{
	if (p->txn)
		return errorf(err, errlen, "PostgreSQL store: store_log: inside a "
		    "write transaction");
	pgstore_read_end(p);
	return pgstore_exec(p, S_FORGET_LOG, 0, NULL, "store_log", err, errlen);
}
