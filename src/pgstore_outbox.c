/*
 * Outbound notification with several daemons on one PostgreSQL
 * (daemon/notify.c; docs/deploy-ha.md "Notification with several
 * daemons"): each receiver's cursor is a row of notify_outbox, and its
 * deliverer is whichever daemon's notifier holds the receiver's
 * session-level advisory lock (class 1933, hashtext(agency); holder
 * batches use 1932, NHS number links 1931). A daemon that dies ends its
 * session, which frees the lock; another daemon's notifier takes it on its
 * next try and goes on from the row's cursor.
 *
 * The locks live in the session: if the handle's connection is opened
 * again (pgstore.c does that by itself), they are gone. So the handle
 * remembers the server process that took them (outbox_pid): a claim or a
 * save on another process than that one has lost them and says so.
 *
 * The table is the notifier's own, made by the first claim (CREATE TABLE
 * IF NOT EXISTS under the store's creation lock), not part of the store's
 * schema version: a store without it is a store nobody delivered from.
 */
#include <libpq-fe.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgstore.h"
#include "pgstore_int.h"
#include "util.h"

/* Any constant: the store's creation lock (pgstore.c's SCHEMA_LOCK). */
#define OUTBOX_CREATE	"SELECT pg_advisory_xact_lock(7393651077101946420); " \
	"CREATE TABLE IF NOT EXISTS notify_outbox (" \
	" agency text PRIMARY KEY, cursor bigint NOT NULL CHECK (cursor >= 0))"

/* One statement with n text parameters: its result, or NULL with err. */
static PGresult *
run(struct pgstore *p, const char *sql, int n, const char *const *vals,
    const char *what, char *err, size_t errlen)
{
	PGresult	*res = PQexecParams(p->conn, sql, n, NULL, vals, NULL, NULL, 0);
	ExecStatusType	 st = PQresultStatus(res);

	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
		pgstore_fail(p->conn, res, what, err, errlen);
		return NULL;
	}
	return res;
}

/*
 * The table, if it is missing: a daemon's role needs CREATE on the schema
 * once, for the first daemon with notify: (the two statements of
 * OUTBOX_CREATE are one implicit transaction, so the lock covers it).
 */
static int
make_table(struct pgstore *p, char *err, size_t errlen)
{
	PGresult	*res;
	int		 exists;

	if ((res = run(p, "SELECT to_regclass('notify_outbox') IS NOT NULL", 0,
	    NULL, "outbox table", err, errlen)) == NULL)
		return -1;
	exists = strcmp(pgstore_text(res, 0, 0), "t") == 0;
	PQclear(res);
	if (!exists) {
		res = PQexec(p->conn, OUTBOX_CREATE);
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			return pgstore_fail(p->conn, res, "outbox table", err, errlen);
		PQclear(res);
	}
	p->outbox_table = 1;
	return 0;
}

/* Whether the locks this handle took are still its session's. */
static int
still_held(struct pgstore *p)
{
	return p->outbox_pid != 0 && PQstatus(p->conn) == CONNECTION_OK &&
	    PQbackendPID(p->conn) == p->outbox_pid;
}

int
pgstore_outbox_claim(struct pgstore *p, const char *agency, uint64_t start,
    int *held, uint64_t *cursor, char *err, size_t errlen)
{
	char		 sb[24];
	const char	*vals[2] = { agency, sb };
	PGresult	*res;
	int		 got;

	if (p->txn || p->scope_open || p->pipe)
		return errorf(err, errlen, "PostgreSQL store: outbox: inside a "
		    "transaction");
	if (*held && !still_held(p))
		*held = 0;	/* the session that held it is gone */
	if (PQstatus(p->conn) != CONNECTION_OK) {
		/* Opened again; pgstore.c prepares its statements anew. */
		p->ready = 0;
		PQreset(p->conn);
		if (PQstatus(p->conn) != CONNECTION_OK)
			return pgstore_fail(p->conn, NULL, "connect", err, errlen);
	}
	if (!*held) {
		if (!p->outbox_table && make_table(p, err, errlen) == -1)
			return -1;
		if ((res = run(p, "SELECT pg_try_advisory_lock(1933, hashtext($1))",
		    1, vals, "outbox lock", err, errlen)) == NULL)
			return -1;
		got = strcmp(pgstore_text(res, 0, 0), "t") == 0;
		PQclear(res);
		if (!got)
			return 0;
		/* Every outbox lock of this handle is in this one session. */
		if (!still_held(p))
			p->outbox_pid = PQbackendPID(p->conn);
		snprintf(sb, sizeof(sb), "%" PRIu64, start);
		if ((res = run(p, "INSERT INTO notify_outbox (agency, cursor) "
		    "VALUES ($1, $2) ON CONFLICT (agency) DO NOTHING", 2, vals,
		    "outbox cursor", err, errlen)) == NULL)
			return -1;
		PQclear(res);
	}
	/* Held: the cursor as committed (one round trip, which shows a dead session). */
	if ((res = run(p, "SELECT cursor FROM notify_outbox WHERE agency = $1", 1,
	    vals, "outbox cursor", err, errlen)) == NULL) {
		*held = 0;
		return -1;
	}
	if (PQntuples(res) != 1) {
		PQclear(res);
		*held = 0;
		return errorf(err, errlen, "PostgreSQL store: outbox: no cursor "
		    "for %s", agency);
	}
	*cursor = (uint64_t)pgstore_int(res, 0, 0);
	PQclear(res);
	*held = 1;
	return 0;
}

int
pgstore_outbox_save(struct pgstore *p, const char *agency, uint64_t cursor,
    char *err, size_t errlen)
{
	char		 cb[24];
	const char	*vals[2] = { agency, cb };
	PGresult	*res;

	if (!still_held(p))
		return errorf(err, errlen, "PostgreSQL store: outbox: the delivery "
		    "lock was lost with its session");
	snprintf(cb, sizeof(cb), "%" PRIu64, cursor);
	/* Never back: the cursor only moves on (at least once, no skip). */
	if ((res = run(p, "UPDATE notify_outbox SET cursor = $2 WHERE agency = $1 "
	    "AND cursor <= $2", 2, vals, "outbox save", err, errlen)) == NULL)
		return -1;
	PQclear(res);
	return 0;
}
