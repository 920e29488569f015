/*
 * Verifying the PostgreSQL log (issue 19): its rows read in one snapshot
 * through two cursors and fed to the streaming verifier the SQLite log and
 * the export use (audit_verify.c), checkpoints interleaved with entries as
 * audit_verify_with() does; then the head row checked against what the
 * entries add up to. Memory is bounded by the fetch size, not the log.
 */
#include <libpq-fe.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "audit_int.h"
#include "merkle.h"
#include "pglog.h"
#include "pglog_int.h"
#include "util.h"

struct walk {
	PGconn			*conn;
	struct audit_verifier	*v;
	unsigned char		 log_id[16];
	PGresult		*cps;		/* a fetched page of checkpoints */
	int			 cp_row;
	int			 cp_done;	/* the cursor is exhausted */
	struct merkle_range	 range;		/* the entries' tree, for the head */
	unsigned char		 last[32];	/* the last entry's hash */
	uint64_t		 entries;
	char			 err[256];
};

/*
 * Feeds the checkpoints of size <= upto (all: UINT64_MAX). Returns 0, or
 * -1 when the verifier failed (its result says why) or a read did
 * (w->err).
 */
static int
feed_checkpoints(struct walk *w, uint64_t upto)
{
	for (;;) {
		struct audit_checkpoint	 cp;

		if (w->cps == NULL || w->cp_row >= PQntuples(w->cps)) {
			if (w->cp_done)
				return 0;
			PQclear(w->cps);
			w->cp_row = 0;
			if ((w->cps = pglog_fetch(w->conn, "pglog_cps", w->err,
			    sizeof(w->err))) == NULL)
				return -1;
			if (PQntuples(w->cps) == 0) {
				w->cp_done = 1;
				return 0;
			}
		}
		if (pglog_row_checkpoint(w->cps, w->cp_row, w->log_id, &cp) == -1) {
			errorf(w->err, sizeof(w->err), "PostgreSQL log: a checkpoint row "
			    "is malformed");
			return -1;
		}
		if (cp.size > upto)
			return 0;
		w->cp_row++;
		if (audit_verifier_checkpoint(w->v, &cp) == -1)
			return -1;
	}
}

static int
feed_entries(struct walk *w)
{
	PGresult		*res;
	struct audit_entry	 e;
	unsigned char		 leaf[32];
	int			 rows;

	do {
		if ((res = pglog_fetch(w->conn, "pglog_entries", w->err,
		    sizeof(w->err))) == NULL)
			return -1;
		rows = PQntuples(res);
		for (int i = 0; i < rows; i++) {
			if (pglog_row_entry(res, i, &e) == -1) {
				PQclear(res);
				return errorf(w->err, sizeof(w->err), "PostgreSQL log: "
				    "an entry row is malformed");
			}
			/* Those of its size first: the entry then checks them at once. */
			if (feed_checkpoints(w, e.seq) == -1 ||
			    audit_verifier_entry(w->v, &e) == -1) {
				PQclear(res);
				return -1;
			}
			merkle_leaf(e.hash, leaf);
			merkle_range_append(&w->range, leaf, NULL, NULL);
			memcpy(w->last, e.hash, 32);
			w->entries++;
		}
		PQclear(res);
	} while (rows > 0);
	return 0;
}

/*
 * What the next append builds on must be what the entries add up to:
 * the size, the last hash, the compact range, and the count of stored
 * tree nodes (one per completed subtree at each TREE_STRIDE-th level).
 */
static int
check_head(struct walk *w, const PGresult *head, uint64_t nodes)
{
	uint64_t	 size, want = 0;
	unsigned char	 last[32];

	if (pglog_col_u64(head, 0, 1, &size) == -1 ||
	    pglog_col_bytes(head, 0, 2, last, 32) == -1)
		return errorf(w->err, sizeof(w->err), "PostgreSQL log: the head row is "
		    "malformed");
	if (size != w->entries)
		return errorf(w->err, sizeof(w->err), "PostgreSQL log: the head says "
		    "%" PRIu64 " entries, the log has %" PRIu64, size, w->entries);
	if (memcmp(last, w->last, 32) != 0)
		return errorf(w->err, sizeof(w->err), "PostgreSQL log: the head's hash "
		    "is not entry %" PRIu64 "'s", size);
	if ((size_t)PQgetlength(head, 0, 3) != 32 * (size_t)w->range.n ||
	    memcmp(PQgetvalue(head, 0, 3), w->range.h, 32 * (size_t)w->range.n) != 0)
		return errorf(w->err, sizeof(w->err), "PostgreSQL log: the head's tree "
		    "frontier is not the entries' tree");
	for (unsigned l = TREE_STRIDE; l < 63; l += TREE_STRIDE)
		want += size >> l;
	if (nodes != want)
		return errorf(w->err, sizeof(w->err), "PostgreSQL log: %" PRIu64 " tree "
		    "nodes stored, %" PRIu64 " expected", nodes, want);
	return 0;
}

/*
 * The verify, with the verifier v (taken and freed) or a new one for pub
 * and the head's log id. own_txn: in a read-only snapshot of its own;
 * else in the caller's open transaction (pglog_verify_txn()), whose
 * cursors are closed after.
 */
static int
verify(struct pglog *p, struct audit_verifier *v, EVP_PKEY *pub, int own_txn,
    struct audit_verify_result *res)
{
	struct walk	 w;
	PGresult	*head = NULL, *cnt = NULL;
	uint64_t	 nodes = 0;
	int		 rc = -1;
	char		 sql[1024];

	memset(&w, 0, sizeof(w));
	memset(res, 0, sizeof(*res));
	merkle_range_init(&w.range);
	w.v = v;
	w.conn = pglog_conn(p);
	if (own_txn && pglog_ready(p, w.err, sizeof(w.err)) == -1)
		goto out;
	/* One snapshot: appends by other daemons go on meanwhile. */
	if (own_txn && pglog_exec(w.conn, "BEGIN ISOLATION LEVEL REPEATABLE READ "
	    "READ ONLY", "verify", w.err, sizeof(w.err)) == -1)
		goto out;
	head = PQexecParams(w.conn, "SELECT log_id, size, head, frontier FROM log_head "
	    "WHERE one", 0, NULL, NULL, NULL, NULL, 1);
	if (PQresultStatus(head) != PGRES_TUPLES_OK) {
		pglog_fail(w.conn, head, "head", w.err, sizeof(w.err));
		head = NULL;
		goto done;
	}
	cnt = PQexecParams(w.conn, "SELECT count(*) FROM log_tree", 0, NULL, NULL,
	    NULL, NULL, 1);
	if (PQresultStatus(cnt) != PGRES_TUPLES_OK) {
		pglog_fail(w.conn, cnt, "tree", w.err, sizeof(w.err));
		cnt = NULL;
		goto done;
	}
	if (PQntuples(head) != 1 || pglog_col_bytes(head, 0, 0, w.log_id, 16) == -1 ||
	    pglog_col_u64(cnt, 0, 0, &nodes) == -1) {
		errorf(w.err, sizeof(w.err), "PostgreSQL log: the head row is missing "
		    "or malformed");
		goto done;
	}
	snprintf(sql, sizeof(sql), "DECLARE pglog_entries BINARY CURSOR FOR SELECT %s "
	    "FROM log_entries ORDER BY seq", audit_columns);
	if (pglog_exec(w.conn, "DECLARE pglog_cps BINARY CURSOR FOR SELECT "
	    PGLOG_CP_COLUMNS " FROM log_checkpoints ORDER BY size, n",
	    "checkpoints", w.err, sizeof(w.err)) == -1 ||
	    pglog_exec(w.conn, sql, "entries", w.err, sizeof(w.err)) == -1)
		goto done;
	if (w.v == NULL)
		w.v = audit_verifier_new(pub, w.log_id);
	if (feed_checkpoints(&w, 0) == -1 || feed_entries(&w) == -1 ||
	    feed_checkpoints(&w, UINT64_MAX) == -1)
		goto done;
	rc = 0;
done:
	if (own_txn)
		PQclear(PQexec(w.conn, "ROLLBACK"));
	else
		PQclear(PQexec(w.conn, "CLOSE ALL"));
out:
	if (w.v != NULL) {
		audit_verifier_finish(w.v, res);
		audit_verifier_free(w.v);
	}
	/* The head is checked only when everything else verified. */
	if (rc == 0 && res->ok && check_head(&w, head, nodes) == -1)
		rc = -1;
	if (rc == -1 && w.err[0] != '\0' && (w.v == NULL || res->ok)) {
		res->ok = 0;
		snprintf(res->why, sizeof(res->why), "%s", w.err);
	}
	PQclear(w.cps);
	PQclear(head);
	PQclear(cnt);
	return res->ok ? 0 : -1;
}

int
pglog_verify(struct pglog *p, EVP_PKEY *pub, struct audit_verify_result *res)
{
	return verify(p, NULL, pub, 1, res);
}

int
pglog_verify_with(struct pglog *p, struct audit_verifier *v,
    struct audit_verify_result *res)
{
	return verify(p, v, NULL, 1, res);
}

int
pglog_verify_txn(struct pglog *p, struct audit_verifier *v,
    struct audit_verify_result *res)
{
	return verify(p, v, NULL, 0, res);
}
