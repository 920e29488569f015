/*
 * The PostgreSQL log's group commit (pglog.h, docs/deploy-ha.md "The
 * chain"): one transaction per batch, in two round trips to the server
 * (libpq pipeline mode) however large the batch.
 *
 *   1. BEGIN; SELECT ... FROM log_head FOR UPDATE; Sync -- and wait: this
 *      is where another daemon's append is waited for, and what it
 *      committed is read.
 *   2. The batch's entries (multi-row INSERTs of up to CHUNK_MAX rows),
 *      the tree nodes they complete, the signed checkpoint, the head
 *      moved, COMMIT; Sync -- then read every statement's answer.
 *
 * Only what needs the head is done while the row is locked: each entry's
 * seq, time and prev_hash come from it and its hash from those, the tree
 * and the checkpoint from the hashes. Entries are hashed and sent chunk by
 * chunk, so the server inserts the first rows while later ones are being
 * hashed. The lock is held for that work, one round trip and the commit's
 * WAL flush (synchronous_commit = on), no longer.
 *
 * The pipeline runs on a blocking connection: libpq writes statements as
 * they are queued while the server answers each with a few dozen bytes
 * (CommandComplete): for the largest batch the daemon sends (1,024
 * entries: 16 INSERTs of 64 rows and 68 tree nodes) a few kilobytes, far
 * below a socket's buffer, so the server never stops reading because we
 * are not reading its answers yet.
 *
 * A failure anywhere rolls the whole transaction back: the server skips
 * what follows a failed statement up to the Sync, and the transaction is
 * rolled back, or dies with the connection, which the next append opens
 * again (pglog.c, session()).
 */
#include <libpq-fe.h>
#include <openssl/evp.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "audit_int.h"
#include "merkle.h"
#include "note.h"
#include "pglog.h"
#include "pglog_int.h"
#include "util.h"

#define ENTRY_PARAMS	(AUDIT_NCOLS)
#define CHUNK_MAX	64	/* rows of the largest INSERT */

/*
 * Multi-row INSERT statements, prepared per connection: a batch is sent as
 * the largest that fit, then smaller ones (64 + 16 + 4 + 1 rows ...).
 */
static const int chunk_rows[] = { CHUNK_MAX, 16, 4, 1 };
static const char *const chunk_names[] = { "pglog_entries64", "pglog_entries16",
    "pglog_entries4", "pglog_entries1" };
#define NCHUNKS	(sizeof(chunk_rows) / sizeof(chunk_rows[0]))

static const char head_sql[] = "SELECT log_id, size, head, frontier, cp_n, "
    "cp_time, last_time, version, signer FROM log_head WHERE one FOR UPDATE";
static const char node_sql[] = "INSERT INTO log_tree(level, idx, hash) "
    "VALUES ($1, $2, $3)";
static const char cp_sql[] = "INSERT INTO log_checkpoints(n, size, head_hash, "
    "time, signature, root, note) VALUES ($1, $2, $3, $4, $5, $6, $7)";
static const char move_sql[] = "UPDATE log_head SET size = $1, head = $2, "
    "frontier = $3, cp_n = $4, cp_time = $5, last_time = $6 WHERE one";
/* A key rotation only (pglog_rotate.c): the key every later checkpoint needs. */
static const char key_sql[] = "UPDATE log_head SET signer = $1 WHERE one";

static int
prepare(PGconn *conn, const char *name, const char *sql, char *err, size_t errlen)
{
	PGresult *res = PQprepare(conn, name, sql, 0, NULL);

	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		return pglog_fail(conn, res, name, err, errlen);
	PQclear(res);
	return 0;
}

/* INSERT INTO log_entries(columns) VALUES ($1, ...), ... for rows rows. */
static char *
entries_sql(int rows)
{
	size_t	 len = 256 + (size_t)rows * ENTRY_PARAMS * 8, off;
	char	*buf;
	int	 k = 1;

	if ((buf = malloc(len)) == NULL)
		return NULL;
	off = (size_t)snprintf(buf, len, "INSERT INTO log_entries(%s) VALUES ",
	    audit_columns);
	for (int r = 0; r < rows; r++) {
		off += (size_t)snprintf(buf + off, len - off, "%s(", r ? ", " : "");
		for (int c = 0; c < ENTRY_PARAMS; c++)
			off += (size_t)snprintf(buf + off, len - off, "%s$%d",
			    c ? ", " : "", k++);
		off += (size_t)snprintf(buf + off, len - off, ")");
	}
	return buf;
}

int
pglog_prepare_append(struct pglog *p, char *err, size_t errlen)
{
	for (size_t i = 0; i < NCHUNKS; i++) {
		char	*sql = entries_sql(chunk_rows[i]);
		int	 rc;

		if (sql == NULL)
			return errorf(err, errlen, "PostgreSQL log: out of memory");
		rc = prepare(p->conn, chunk_names[i], sql, err, errlen);
		free(sql);
		if (rc == -1)
			return -1;
	}
	if (prepare(p->conn, "pglog_head", head_sql, err, errlen) == -1 ||
	    prepare(p->conn, "pglog_node", node_sql, err, errlen) == -1 ||
	    prepare(p->conn, "pglog_cp", cp_sql, err, errlen) == -1 ||
	    prepare(p->conn, "pglog_move", move_sql, err, errlen) == -1 ||
	    prepare(p->conn, "pglog_key", key_sql, err, errlen) == -1)
		return -1;
	return 0;
}

/*
 * The parameters of one multi-row INSERT: the handle's, allocated once
 * (pglog_rows_new()), CHUNK_MAX rows of ENTRY_PARAMS. Integers are sent in
 * binary (int8, big-endian), hashes as binary bytea, text as text; libpq
 * copies the values when the statement is queued, so the rows are reused
 * for the next chunk at once.
 */
struct pglog_rows {
	const char	*vals[CHUNK_MAX * ENTRY_PARAMS];
	int		 lens[CHUNK_MAX * ENTRY_PARAMS];
	int		 fmts[CHUNK_MAX * ENTRY_PARAMS];
	char		 ints[CHUNK_MAX][3][8];
};

struct pglog_rows *
pglog_rows_new(void)
{
	return calloc(1, sizeof(struct pglog_rows));
}

void
pglog_rows_free(struct pglog_rows *r)
{
	free(r);
}

/* Row r of the chunk gets entry e. */
static void
put_row(struct pglog_rows *rw, int r, const struct audit_entry *e)
{
	const char	**v = rw->vals + r * ENTRY_PARAMS;
	int		 *l = rw->lens + r * ENTRY_PARAMS, *f = rw->fmts + r * ENTRY_PARAMS;

	memset(l, 0, ENTRY_PARAMS * sizeof(*l));
	memset(f, 0, ENTRY_PARAMS * sizeof(*f));
	pglog_put_be64(rw->ints[r][0], e->seq);
	pglog_put_be64(rw->ints[r][1], (uint64_t)e->time);
	pglog_put_be64(rw->ints[r][2], e->ref_seq);
	v[AUDIT_COL_seq] = rw->ints[r][0];
	v[AUDIT_COL_time] = rw->ints[r][1];
	v[AUDIT_COL_ref_seq] = rw->ints[r][2];
	l[AUDIT_COL_seq] = l[AUDIT_COL_time] = l[AUDIT_COL_ref_seq] = 8;
	f[AUDIT_COL_seq] = f[AUDIT_COL_time] = f[AUDIT_COL_ref_seq] = 1;
#define F(name)	v[AUDIT_COL_##name] = e->name != NULL ? e->name : "";
	AUDIT_STRING_FIELDS(F)
#undef F
	v[AUDIT_COL_prev_hash] = (const char *)e->prev_hash;
	v[AUDIT_COL_hash] = (const char *)e->hash;
	l[AUDIT_COL_prev_hash] = l[AUDIT_COL_hash] = 32;
	f[AUDIT_COL_prev_hash] = f[AUDIT_COL_hash] = 1;
}

/*
 * The statements queued in this append's second round trip, by what
 * they are (for the message when one fails); the head move must change
 * exactly its one row.
 */
enum stmt { S_ENTRIES, S_NODE, S_CHECKPOINT, S_MOVE, S_KEY, S_COMMIT };
static const char *const stmt_what[] = { "insert entry", "tree node", "checkpoint",
    "move head", "signing key", "commit" };

struct pipe {
	struct pglog	*p;
	unsigned char	*kinds;		/* what each queued statement is */
	size_t		 n, cap;
	int		 failed;	/* a statement could not be queued */
	char		 err[160];
};

/* Queues one prepared statement (NULL: COMMIT): 0, or -1 (pp->err says why). */
static int
queue(struct pipe *pp, enum stmt kind, const char *name, int nparams,
    const char *const *vals, const int *lens, const int *fmts)
{
	if (pp->failed)
		return -1;
	if (pp->n == pp->cap || (name == NULL ?
	    PQsendQueryParams(pp->p->conn, "COMMIT", 0, NULL, NULL, NULL, NULL, 0) :
	    PQsendQueryPrepared(pp->p->conn, name, nparams, vals, lens, fmts, 0)) != 1) {
		pp->failed = 1;
		pglog_fail(pp->p->conn, NULL, stmt_what[kind], pp->err, sizeof(pp->err));
		return -1;
	}
	pp->kinds[pp->n++] = (unsigned char)kind;
	return 0;
}

/* merkle_node_fn: queues the nodes of the stored levels (TREE_STRIDE, as SQLite). */
static void
put_node(void *arg, unsigned level, uint64_t index, const uint8_t hash[32])
{
	struct pipe	*pp = arg;
	char		 lv[8], ix[8];
	const char	*vals[3] = { lv, ix, (const char *)hash };
	int		 lens[3] = { 8, 8, 32 }, fmts[3] = { 1, 1, 1 };

	if (level == 0 || level % TREE_STRIDE != 0)
		return;
	/* level is an integer column: int4, big-endian. */
	pglog_put_be64(lv, level);
	vals[0] = lv + 4;
	lens[0] = 4;
	pglog_put_be64(ix, index);
	queue(pp, S_NODE, "pglog_node", 3, vals, lens, fmts);
}

/*
 * Reads the answers of the first round trip (BEGIN, the locked head) up to
 * its Sync: the head's result, the caller's to clear, or NULL with err.
 */
static PGresult *
read_lock(struct pglog *p, char *err, size_t errlen)
{
	PGresult	*res, *head = NULL;
	int		 i = 0, bad = 0;

	for (;;) {
		if ((res = PQgetResult(p->conn)) == NULL) {
			if (PQstatus(p->conn) != CONNECTION_OK)
				break;
			continue;		/* the end of one statement's results */
		}
		if (PQresultStatus(res) == PGRES_PIPELINE_SYNC) {
			PQclear(res);
			if (!bad && head != NULL)
				return head;
			break;
		}
		if (!bad && i == 0 && PQresultStatus(res) == PGRES_COMMAND_OK)
			PQclear(res);
		else if (!bad && i == 1 && PQresultStatus(res) == PGRES_TUPLES_OK)
			head = res;
		else if (!bad) {
			bad = 1;
			pglog_fail(p->conn, res, i == 0 ? "begin" : "lock head", err, errlen);
		} else
			PQclear(res);
		i++;
	}
	if (!bad)
		pglog_fail(p->conn, NULL, "lock head", err, errlen);
	PQclear(head);
	return NULL;
}

/*
 * Reads the answers of the second round trip up to its Sync: 0 when every
 * statement (COMMIT the last) succeeded, or -1 with the first failure's
 * reason in err.
 */
static int
read_commit(struct pipe *pp, char *err, size_t errlen)
{
	PGconn		*conn = pp->p->conn;
	PGresult	*res;
	size_t		 i = 0;
	int		 bad = 0;

	for (;;) {
		ExecStatusType st;

		if ((res = PQgetResult(conn)) == NULL) {
			if (PQstatus(conn) != CONNECTION_OK)
				break;
			continue;
		}
		if ((st = PQresultStatus(res)) == PGRES_PIPELINE_SYNC) {
			PQclear(res);
			if (!bad && i == pp->n)
				return 0;
			break;
		}
		if (!bad && (i >= pp->n || st != PGRES_COMMAND_OK ||
		    ((pp->kinds[i] == S_MOVE || pp->kinds[i] == S_KEY) &&
		    strcmp(PQcmdTuples(res), "1") != 0))) {
			bad = 1;
			pglog_fail(conn, res, i < pp->n ? stmt_what[pp->kinds[i]] :
			    "pipeline", err, errlen);
		} else
			PQclear(res);
		i++;
	}
	if (!bad)
		pglog_fail(conn, NULL, "commit", err, errlen);
	return -1;
}

/*
 * Leaves pipeline mode after a failure: reads what is still owed up to
 * the last Sync sent, then rolls back whatever transaction is open. When
 * that cannot be done, the connection is left for session() to replace.
 */
static void
unwind(struct pglog *p, int syncs)
{
	PGresult *res;

	while (syncs > 0 && PQstatus(p->conn) == CONNECTION_OK) {
		if ((res = PQgetResult(p->conn)) == NULL)
			continue;
		if (PQresultStatus(res) == PGRES_PIPELINE_SYNC)
			syncs--;
		PQclear(res);
	}
	if (PQstatus(p->conn) != CONNECTION_OK ||
	    PQexitPipelineMode(p->conn) != 1)
		return;
	if (PQtransactionStatus(p->conn) != PQTRANS_IDLE)
		PQclear(PQexec(p->conn, "ROLLBACK"));
}

/* The locked head row, read in binary: 0, or -1 when it is not well formed. */
static int
read_head(struct pglog *p, const PGresult *res, struct pglog_head *h)
{
	uint64_t	 v[3], version = 0;
	int		 flen;

	if (PQntuples(res) != 1 || pglog_col_bytes(res, 0, 0, h->log_id, 16) == -1 ||
	    pglog_col_u64(res, 0, 1, &h->size) == -1 ||
	    pglog_col_bytes(res, 0, 2, h->head, 32) == -1 ||
	    pglog_col_u64(res, 0, 4, &v[0]) == -1 ||
	    pglog_col_u64(res, 0, 5, &v[1]) == -1 ||
	    pglog_col_u64(res, 0, 6, &v[2]) == -1 ||
	    PQgetlength(res, 0, 7) != 4)
		return -1;
	/* NULL until a rotation names the key (pglog_rotate.c). */
	if ((h->has_key = !PQgetisnull(res, 0, 8)) &&
	    pglog_col_bytes(res, 0, 8, h->key, 32) == -1)
		return -1;
	for (int i = 0; i < 4; i++)
		version = version << 8 | (unsigned char)PQgetvalue(res, 0, 7)[i];
	if (version != PGLOG_SCHEMA_VERSION)
		return -1;
	h->cp_n = v[0];
	h->cp_time = (int64_t)v[1];
	h->last_time = (int64_t)v[2];
	/* The compact range: one hash per bit set in size, largest first. */
	merkle_range_init(&p->range);
	flen = PQgetlength(res, 0, 3);
	if (flen != 32 * __builtin_popcountll(h->size))
		return -1;
	p->range.size = h->size;
	p->range.n = (unsigned)(flen / 32);
	memcpy(p->range.h, PQgetvalue(res, 0, 3), (size_t)flen);
	return 0;
}

/*
 * Queues the signed checkpoint of this commit, numbered after the last one.
 * The signer (key id, public half, signing context) is the handle's, set
 * up once per key and origin as the SQLite writer's (audit.c), not per
 * commit: this runs while the head is locked, so every microsecond here is
 * one the other daemons wait (docs/deploy-ha.md "The chain").
 */
static int
queue_checkpoint(struct pipe *pp, const struct pglog_head *h,
    const unsigned char root[32], int64_t t, char **note, char *err, size_t errlen)
{
	struct pglog	*p = pp->p;
	char		 origin[64], why[128], nb[8], sb[8], tb[8];
	unsigned char	 sig[64];
	const char	*vals[7], *next_key;
	int		 lens[7] = { 8, 8, 32, 8, 64, 32, 0 };
	int		 fmts[7] = { 1, 1, 1, 1, 1, 1, 0 };
	EVP_PKEY	*key = pglog_cp_key(p, &next_key);

	note_log_origin(h->log_id, origin);
	if (!note_signer_is(p->nsigner, key, origin)) {
		note_signer_free(p->nsigner);
		if ((p->nsigner = note_signer_new(origin, key, why,
		    sizeof(why))) == NULL)
			return errorf(err, errlen, "PostgreSQL log: checkpoint: %s",
			    why);
	}
	if (audit_note_sign_with(p->nsigner, h->log_id, h->size, root, t,
	    h->cp_n + 1, next_key, note, sig) == -1)
		return errorf(err, errlen, "PostgreSQL log: checkpoint: signing failed");
	pglog_put_be64(nb, h->cp_n + 1);
	pglog_put_be64(sb, h->size);
	pglog_put_be64(tb, (uint64_t)t);
	vals[0] = nb;
	vals[1] = sb;
	vals[2] = (const char *)h->head;
	vals[3] = tb;
	vals[4] = (const char *)sig;
	vals[5] = (const char *)root;
	vals[6] = *note;
	return queue(pp, S_CHECKPOINT, "pglog_cp", 7, vals, lens, fmts);
}

/* Queues the head row's move to what this transaction wrote. */
static int
queue_move(struct pipe *pp, const struct pglog_head *h)
{
	struct pglog	*p = pp->p;
	char		 sb[8], nb[8], cb[8], lb[8];
	const char	*vals[6] = { sb, (const char *)h->head, (const char *)p->range.h,
			    nb, cb, lb };
	int		 lens[6] = { 8, 32, (int)(32 * p->range.n), 8, 8, 8 };
	int		 fmts[6] = { 1, 1, 1, 1, 1, 1 };

	pglog_put_be64(sb, h->size);
	pglog_put_be64(nb, h->cp_n);
	pglog_put_be64(cb, (uint64_t)h->cp_time);
	pglog_put_be64(lb, (uint64_t)h->last_time);
	return queue(pp, S_MOVE, "pglog_move", 6, vals, lens, fmts);
}

static void
receipts(struct pglog *p, struct audit_entry **es, size_t n,
    const uint8_t (*leaves)[32], struct audit_receipt *rc)
{
	struct merkle_batch *b = merkle_batch_new(&p->before, leaves, n);

	for (size_t i = 0; i < n; i++) {
		rc[i].seq = es[i]->seq;
		memcpy(rc[i].leaf, leaves[i], 32);
		rc[i].checkpoint = p->note;
		rc[i].nproof = 0;
		if (b == NULL || merkle_batch_proof(b, i, rc[i].proof, &rc[i].nproof) == -1)
			rc[i].nproof = 0;
	}
	merkle_batch_free(b);
}

/*
 * Chains, hashes and queues es[0..n) after the locked head h: the entries
 * in multi-row chunks, the tree nodes they complete. 0, or -1 (pp->err).
 */
static int
queue_entries(struct pipe *pp, struct pglog_head *h, struct audit_entry **es,
    size_t n, uint8_t (*leaves)[32])
{
	struct pglog	*p = pp->p;
	size_t		 i = 0;

	while (i < n) {
		size_t	c = 0;
		int	rows;

		while ((size_t)chunk_rows[c] > n - i)
			c++;
		rows = chunk_rows[c];
		for (int r = 0; r < rows; r++, i++) {
			struct audit_entry *e = es[i];

			/* D7: the log's time order, across daemons whose clocks differ. */
			if (e->time < h->last_time)
				e->time = h->last_time;
			h->last_time = e->time;
			e->seq = ++h->size;
			memcpy(e->prev_hash, h->head, 32);
			audit_hash(e, e->hash);
			memcpy(h->head, e->hash, 32);
			put_row(p->rows, r, e);
			merkle_leaf(e->hash, leaves[i]);
			merkle_range_append(&p->range, leaves[i], put_node, pp);
			pglog_run_hook(p, i + 1);
		}
		if (queue(pp, S_ENTRIES, chunk_names[c], rows * ENTRY_PARAMS,
		    p->rows->vals, p->rows->lens, p->rows->fmts) == -1)
			return -1;
	}
	return pp->failed ? -1 : 0;
}

/*
 * Undoes an append begun: ends the pipeline (syncs Syncs still owed) and
 * rolls back the transaction, which lets the head go.
 */
static void
abandon(struct pglog *p, int syncs)
{
	if (PQpipelineStatus(p->conn) != PQ_PIPELINE_OFF)
		unwind(p, syncs);
	else if (PQstatus(p->conn) == CONNECTION_OK &&
	    PQtransactionStatus(p->conn) != PQTRANS_IDLE)
		PQclear(PQexec(p->conn, "ROLLBACK"));
}

/*
 * Round trip 1: BEGIN and the head row locked, into h, in pipeline mode
 * with the transaction left open. This is where another daemon's append
 * is waited for. 0, or -1 with err and nothing left open.
 */
static int
take_head(struct pglog *p, struct pglog_head *h, char *err, size_t errlen)
{
	PGresult	*res;

	if (PQenterPipelineMode(p->conn) != 1) {
		pglog_fail(p->conn, NULL, "pipeline", err, errlen);
		goto fail;
	}
	if (PQsendQueryParams(p->conn, "BEGIN", 0, NULL, NULL, NULL, NULL, 0) != 1 ||
	    PQsendQueryPrepared(p->conn, "pglog_head", 0, NULL, NULL, NULL, 1) != 1 ||
	    PQpipelineSync(p->conn) != 1) {
		pglog_fail(p->conn, NULL, "lock head", err, errlen);
		goto fail;
	}
	if ((res = read_lock(p, err, errlen)) == NULL)
		goto fail;
	if (read_head(p, res, h) == -1) {
		PQclear(res);
		errorf(err, errlen, "PostgreSQL log: the head row is missing or malformed "
		    "(schema version %d expected)", PGLOG_SCHEMA_VERSION);
		goto fail;
	}
	PQclear(res);
	return 0;
fail:
	abandon(p, 0);
	return -1;
}

/*
 * The log writer locks the head before it takes its batch (logq.c), so
 * that what was queued while it waited for another daemon's commit goes
 * into this one. A failure leaves nothing held; the writer fails that
 * batch with it, as the append would have.
 */
int
pglog_lock_head(struct pglog *p, char *err, size_t errlen)
{
	if (p->locked)
		return 0;
	if (pglog_ready(p, err, errlen) == -1 ||
	    take_head(p, &p->locked_head, err, errlen) == -1)
		return -1;
	p->locked = 1;
	return 0;
}

void
pglog_unlock_head(struct pglog *p)
{
	if (!p->locked)
		return;
	p->locked = 0;
	abandon(p, 0);
}

/*
 * One group commit (pglog.h): lock the head (unless pglog_lock_head()
 * did), chain and insert the entries after it, store the tree nodes they
 * complete, sign and insert the checkpoint, move the head, commit. Every
 * failure before COMMIT rolls the whole transaction back.
 */
int
pglog_append(struct pglog *p, struct audit_entry **es, size_t n,
    struct audit_receipt *rc, char *err, size_t errlen)
{
	struct pglog_head	 h;
	struct pipe		 pp;
	unsigned char		 root[32];
	uint8_t			(*leaves)[32] = NULL;
	char			*note = NULL;
	int64_t			 t;
	int			 syncs = 0;

	if (n == 0)
		return 0;
	if (!p->locked && pglog_lock_head(p, err, errlen) == -1)
		return -1;
	h = p->locked_head;
	p->locked = 0;
	memset(&pp, 0, sizeof(pp));
	pp.p = p;
	/* Entries' chunks, at most one node per entry, checkpoint, move, commit. */
	pp.cap = 2 * n + 8;
	if ((leaves = calloc(n, 32)) == NULL ||
	    (pp.kinds = calloc(pp.cap, 1)) == NULL) {
		errorf(err, errlen, "PostgreSQL log: out of memory");
		goto fail;
	}
	/* The key the head names, or a rotation already made (pglog_rotate.c). */
	if (pglog_key_check(p, &h, err, errlen) == -1)
		goto fail;
	p->before = p->range;
	/* Round trip 2: the batch, its checkpoint, the head, COMMIT. */
	if (queue_entries(&pp, &h, es, n, leaves) == -1)
		goto queued;
	merkle_range_root(&p->range, root);
	/* Checkpoints have their own order in time (D7). */
	t = (int64_t)time(NULL);
	if (t < h.cp_time)
		t = h.cp_time;
	if (p->signer != NULL) {
		if (queue_checkpoint(&pp, &h, root, t, &note, err, errlen) == -1)
			goto queued;
		h.cp_n++;
		h.cp_time = t;
	}
	if (queue_move(&pp, &h) == -1 || (pglog_rotating_to(p) != NULL &&
	    queue(&pp, S_KEY, "pglog_key", 1, (const char *const[]){ (const char *)
	    pglog_rotating_to(p) }, (const int[]){ 32 }, (const int[]){ 1 }) == -1) ||
	    queue(&pp, S_COMMIT, NULL, 0, NULL, NULL, NULL) == -1)
		goto queued;
	if (PQpipelineSync(p->conn) != 1) {
		pglog_fail(p->conn, NULL, "commit", err, errlen);
		goto fail;
	}
	if (read_commit(&pp, err, errlen) == -1)
		goto fail;
	if (PQexitPipelineMode(p->conn) != 1) {
		pglog_fail(p->conn, NULL, "commit", err, errlen);
		goto fail;
	}
	free(p->note);
	p->note = note;
	if (rc != NULL)
		receipts(p, es, n, (const uint8_t (*)[32])leaves, rc);
	free(pp.kinds);
	free(leaves);
	return 0;
queued:
	/*
	 * Nothing is committed: a Sync ends what was queued, then it is undone.
	 * The reason is the queue's, or the signing's (already in err).
	 */
	if (pp.failed)
		errorf(err, errlen, "%s", pp.err);
	if (PQpipelineSync(p->conn) == 1)
		syncs = 1;
fail:
	abandon(p, syncs);
	free(note);
	free(pp.kinds);
	free(leaves);
	return -1;
}
