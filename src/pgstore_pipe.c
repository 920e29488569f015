/*
 * A write transaction's statements in few round trips (issue 19): inside
 * pgstore_begin() .. pgstore_commit(), a statement whose rows nobody reads
 * (an insert, an update, a lock) is sent at once in libpq's pipeline mode
 * and its answer is read later, with the next statement whose rows are
 * needed (a check's read), or at the commit. The server runs them in the
 * order sent, in the one transaction, so a read still sees every earlier
 * write of the batch; the first failure fails the transaction as before,
 * and is reported by the read or the commit that follows it (holder.c then
 * rolls the whole batch back, as for a failure seen at once). A holder
 * batch's put_record went from about ten round trips to two.
 *
 * pgstore.c owns the connection; the queue of statements sent and not yet
 * answered (p->pend) is this file's and lives until the next sync.
 */
#include <libpq-fe.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgstore.h"
#include "pgstore_int.h"
#include "util.h"

/* Sent and unanswered at most, so neither side's socket buffer fills up. */
#define PIPE_MAX	1024

static void
pend_clear(struct pgstore *p)
{
	for (size_t i = 0; i < p->npend; i++) {
		free(p->pend[i].subject);
		free(p->pend[i].holder);
	}
	p->npend = 0;
}

/* The deferred check of a subject locked for a put: it must be the holder's. */
static int
owner_ok(const struct pgpend *pe, const PGresult *res)
{
	return PQntuples(res) == 1 &&
	    strcmp(pgstore_text(res, 0, 0), pe->holder) == 0;
}

/*
 * Sends Sync and reads every answer queued, checking each; the last one's
 * result goes to *last when asked for (the caller's to PQclear()). Leaves
 * pipeline mode. 0, or -1 with the first failure in err; when the pipeline
 * could not be left cleanly the session is marked broken, so that the
 * transaction's next statements fail too (pgstore_rollback() resets it).
 */
static int
pipe_sync(struct pgstore *p, PGresult **last, char *err, size_t errlen)
{
	PGresult	*res;
	size_t		 got = 0;
	int		 bad = 0, synced = 0;

	if (last != NULL)
		*last = NULL;
	if (PQpipelineSync(p->conn) == 1)
		synced = 1;
	else {
		bad = 1;
		pgstore_fail(p->conn, NULL, "pipeline", err, errlen);
	}
	/* Each statement's result, then NULL; after the last, the Sync's. */
	while (synced && PQstatus(p->conn) == CONNECTION_OK) {
		ExecStatusType		 rs;
		const struct pgpend	*pe;

		if ((res = PQgetResult(p->conn)) == NULL)
			continue;
		if ((rs = PQresultStatus(res)) == PGRES_PIPELINE_SYNC) {
			PQclear(res);
			synced = 0;
			break;
		}
		if (got >= p->npend || bad) {
			got++;
			PQclear(res);
			continue;
		}
		pe = &p->pend[got++];
		if (rs != PGRES_TUPLES_OK && rs != PGRES_COMMAND_OK) {
			bad = 1;
			pgstore_fail(p->conn, res, pe->what, err, errlen);
		} else if (pe->holder != NULL && !owner_ok(pe, res)) {
			bad = 1;
			PQclear(res);
			errorf(err, errlen, "subject %s is held by another agency",
			    pe->subject);
		} else if (last != NULL && got == p->npend)
			*last = res;
		else
			PQclear(res);
	}
	if (!bad && (synced || got != p->npend)) {
		bad = 1;
		pgstore_fail(p->conn, NULL, "pipeline", err, errlen);
	}
	if (synced || PQexitPipelineMode(p->conn) != 1) {
		bad = 1;
		p->broken = 1;
		p->ready = 0;
	}
	p->pipe = 0;
	pend_clear(p);
	if (bad && last != NULL && *last != NULL) {
		PQclear(*last);
		*last = NULL;
	}
	return bad ? -1 : 0;
}

/*
 * Queues statement q inside the write transaction. With holder given, q's
 * one row's first column must be that holder when it is answered (the
 * subject locked by a put: "held by another agency" otherwise).
 */
int
pgstore_send(struct pgstore *p, int q, int n, const char *const *vals,
    const char *subject, const char *holder, const char *what, char *err,
    size_t errlen)
{
	struct pgpend	*pe, now;
	PGresult	*res;
	char		 name[32];
	int		 ok;

	if (!p->txn) {		/* nothing to wait behind: at once */
		if ((res = pgstore_run(p, q, n, vals, what, err, errlen)) == NULL)
			return -1;
		now.subject = (char *)subject;
		now.holder = (char *)holder;
		ok = holder == NULL || owner_ok(&now, res);
		PQclear(res);
		return ok ? 0 : errorf(err, errlen, "subject %s is held by another "
		    "agency", subject);
	}
	if (p->broken)
		return errorf(err, errlen, "PostgreSQL store: %s: the connection "
		    "was lost in this transaction", what);
	if (p->npend == PIPE_MAX && pgstore_flush(p, err, errlen) == -1)
		return -1;
	if (!p->pipe) {
		if (PQenterPipelineMode(p->conn) != 1)
			return pgstore_fail(p->conn, NULL, what, err, errlen);
		p->pipe = 1;
	}
	if (p->pend == NULL)
		p->pend = xcalloc(PIPE_MAX, sizeof(*p->pend));
	snprintf(name, sizeof(name), "pgstore_%d", q);
	if (PQsendQueryPrepared(p->conn, name, n, vals, NULL, NULL, 0) != 1) {
		pgstore_fail(p->conn, NULL, what, err, errlen);
		p->broken = 1;
		return -1;
	}
	pe = &p->pend[p->npend++];
	pe->what = what;
	pe->subject = holder != NULL ? xstrdup(subject) : NULL;
	pe->holder = holder != NULL ? xstrdup(holder) : NULL;
	return 0;
}

/* Every queued statement answered: 0, or -1 with the first failure. */
int
pgstore_flush(struct pgstore *p, char *err, size_t errlen)
{
	if (p->broken)
		return errorf(err, errlen, "PostgreSQL store: the connection was "
		    "lost in this transaction");
	return p->pipe ? pipe_sync(p, NULL, err, errlen) : 0;
}

/*
 * pgstore_run() inside a write transaction with statements queued: q is
 * queued after them and its result returned once all are answered.
 */
PGresult *
pgstore_run_queued(struct pgstore *p, int q, int n, const char *const *vals,
    const char *what, char *err, size_t errlen)
{
	PGresult *res;

	if (pgstore_send(p, q, n, vals, NULL, NULL, what, err, errlen) == -1)
		return NULL;
	if (pipe_sync(p, &res, err, errlen) == -1)
		return NULL;
	return res;
}

/*
 * Before a rollback: the queued answers are read and dropped. A session
 * that cannot be brought back out of pipeline mode is started afresh,
 * which ends its transaction on the server.
 */
void
pgstore_pipe_abandon(struct pgstore *p)
{
	char err[8];

	if (p->pipe)
		(void)pipe_sync(p, NULL, err, sizeof(err));
	if (p->broken) {
		PQreset(p->conn);
		p->broken = 0;
		p->ready = 0;
	}
}

void
pgstore_pipe_free(struct pgstore *p)
{
	pend_clear(p);
	free(p->pend);
	p->pend = NULL;
}
