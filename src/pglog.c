/*
 * The disclosure log on PostgreSQL (issue 19): the connection, its
 * schema and prepared statements, and the group commit that appends to
 * the one chain all daemons share. pglog.h says how appends are
 * serialised; pglog_verify.c reads the log back through the streaming
 * verifier. The entry's hash, the tree's hashing and the checkpoint notes
 * are the SQLite log's own functions (audit_entry.c, merkle.c,
 * audit_note.c), so both logs have the same bytes.
 */
#include <libpq-fe.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "audit_int.h"
#include "merkle.h"
#include "pglog.h"
#include "pglog_int.h"
#include "util.h"

/*
 * The tables. log_head has exactly one row (one = true): the lock every
 * append takes, and what the next append builds on. Entry columns are the
 * members of audit_fields.h, in its order.
 */
#define F(name)	#name " text NOT NULL, "
static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS log_head ("
    " one boolean PRIMARY KEY DEFAULT true CHECK (one),"
    " version integer NOT NULL,"
    " log_id bytea NOT NULL CHECK (length(log_id) = 16),"
    " size bigint NOT NULL CHECK (size >= 0),"
    " head bytea NOT NULL CHECK (length(head) = 32),"
    " frontier bytea NOT NULL,"
    " cp_n bigint NOT NULL,"
    " cp_time bigint NOT NULL,"
    " last_time bigint NOT NULL);"
    "CREATE TABLE IF NOT EXISTS log_entries ("
    " seq bigint PRIMARY KEY, time bigint NOT NULL, "
    AUDIT_STRING_FIELDS(F)
    " ref_seq bigint NOT NULL,"
    " prev_hash bytea NOT NULL CHECK (length(prev_hash) = 32),"
    " hash bytea NOT NULL CHECK (length(hash) = 32));"
    "CREATE TABLE IF NOT EXISTS log_tree ("
    " level integer NOT NULL, idx bigint NOT NULL,"
    " hash bytea NOT NULL CHECK (length(hash) = 32),"
    " PRIMARY KEY (level, idx));"
    "CREATE TABLE IF NOT EXISTS log_checkpoints ("
    " n bigint PRIMARY KEY, size bigint NOT NULL, head_hash bytea NOT NULL,"
    " time bigint NOT NULL, signature bytea NOT NULL, root bytea NOT NULL,"
    " note text NOT NULL);"
    /*
     * What the readers (pglog_query.c) look up, as the SQLite log's
     * indexes (audit.c) but the subject's, which SQLite keeps in a file of
     * its own, built behind the log: here it is one B-tree insert per entry
     * in the append's transaction. Schema version 2 added them.
     */
    "CREATE INDEX IF NOT EXISTS log_entries_subject ON log_entries(subject, seq);"
    "CREATE INDEX IF NOT EXISTS log_entries_agency ON log_entries(agency, seq);"
    "CREATE INDEX IF NOT EXISTS log_entries_time ON log_entries(time);"
    "CREATE INDEX IF NOT EXISTS log_entries_ref ON log_entries(ref_seq) "
    " WHERE ref_seq != 0;"
    "CREATE INDEX IF NOT EXISTS log_entries_override ON log_entries(seq) WHERE "
    OVERRIDE_USED ";"
    "CREATE INDEX IF NOT EXISTS log_entries_refused ON log_entries(seq) WHERE "
    OVERRIDE_REFUSED ";"
    "CREATE INDEX IF NOT EXISTS log_entries_store ON log_entries(seq) "
    " WHERE kind = 'store';"
    "CREATE INDEX IF NOT EXISTS log_entries_holder ON log_entries(seq) "
    " WHERE kind = 'holder';"
    "CREATE INDEX IF NOT EXISTS log_checkpoints_size ON log_checkpoints(size)";
#undef F

/* Any constant: it only keeps two first opens from creating at once. */
#define SCHEMA_LOCK	"7393651077101946419"

/* The prepared statements, by name; their parameters are numbered below. */
static const char head_sql[] = "SELECT log_id, size, head, frontier, cp_n, "
    "cp_time, last_time, version FROM log_head WHERE one FOR UPDATE";
static const char node_sql[] = "INSERT INTO log_tree(level, idx, hash) "
    "VALUES ($1, $2, $3)";
static const char cp_sql[] = "INSERT INTO log_checkpoints(n, size, head_hash, "
    "time, signature, root, note) VALUES ($1, $2, $3, $4, $5, $6, $7)";
static const char move_sql[] = "UPDATE log_head SET size = $1, head = $2, "
    "frontier = $3, cp_n = $4, cp_time = $5, last_time = $6 WHERE one";

#define ENTRY_PARAMS	(AUDIT_NCOLS)

struct pglog {
	PGconn			*conn;
	char			*conninfo;
	int			 ready;		/* this session has the statements */
	EVP_PKEY		*signer;
	char			*note;		/* the last note (receipts point at it) */
	struct merkle_range	 range;		/* the tree, in an append */
	struct merkle_range	 before;	/* ... before the batch */
	int			 node_failed;
	char			 node_err[160];
	void			(*hook)(void *, size_t);
	void			*hook_arg;
};

/*
 * Formats the reason a statement failed into err, from res or the
 * connection, and frees res; returns -1. Only the primary message and
 * the SQLSTATE: a DETAIL line may quote a row ("Failing row contains"),
 * and no record's contents go into a message.
 */
int
pglog_fail(PGconn *conn, PGresult *res, const char *what, char *err, size_t errlen)
{
	return pg_fail(conn, res, "PostgreSQL log", what, err, errlen);
}

/* Runs a statement without parameters that returns no rows: 0 or -1. */
int
pglog_exec(PGconn *conn, const char *sql, const char *what, char *err, size_t errlen)
{
	PGresult *res = PQexec(conn, sql);

	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		return pglog_fail(conn, res, what, err, errlen);
	PQclear(res);
	return 0;
}

static int
prepare(PGconn *conn, const char *name, const char *sql, char *err, size_t errlen)
{
	PGresult *res = PQprepare(conn, name, sql, 0, NULL);

	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		return pglog_fail(conn, res, name, err, errlen);
	PQclear(res);
	return 0;
}

/* The entry INSERT with one numbered parameter per column (enum audit_col). */
static void
entry_sql(char *buf, size_t len)
{
	size_t	off;

	off = (size_t)snprintf(buf, len, "INSERT INTO log_entries(%s) VALUES (",
	    audit_columns);
	for (int i = 1; i <= ENTRY_PARAMS && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s$%d", i > 1 ? ", " : "", i);
	if (off < len)
		snprintf(buf + off, len - off, ")");
}

/*
 * A new session's settings and statements (prepared statements live as
 * long as the session: after a reconnect they are prepared again).
 * synchronous_commit is set here, whatever the server's default, since a
 * reply must never leave before its entry is durable (D7).
 */
static int
session(struct pglog *p, char *err, size_t errlen)
{
	char	 sql[1024];

	if (p->ready && PQstatus(p->conn) == CONNECTION_OK &&
	    PQtransactionStatus(p->conn) == PQTRANS_IDLE)
		return 0;
	p->ready = 0;
	if (PQstatus(p->conn) != CONNECTION_OK) {
		PQreset(p->conn);
		if (PQstatus(p->conn) != CONNECTION_OK)
			return pglog_fail(p->conn, NULL, "connect", err, errlen);
	} else if (PQtransactionStatus(p->conn) != PQTRANS_IDLE &&
	    pglog_exec(p->conn, "ROLLBACK", "rollback", err, errlen) == -1)
		return -1;
	entry_sql(sql, sizeof(sql));
	if (pglog_exec(p->conn, "SET synchronous_commit = on; "
	    "SET client_encoding = 'UTF8'", "session settings", err, errlen) == -1 ||
	    prepare(p->conn, "pglog_head", head_sql, err, errlen) == -1 ||
	    prepare(p->conn, "pglog_entry", sql, err, errlen) == -1 ||
	    prepare(p->conn, "pglog_node", node_sql, err, errlen) == -1 ||
	    prepare(p->conn, "pglog_cp", cp_sql, err, errlen) == -1 ||
	    prepare(p->conn, "pglog_move", move_sql, err, errlen) == -1)
		return -1;
	p->ready = 1;
	return 0;
}

/*
 * Creates the tables and the empty log's head (a new random log id) if
 * they are missing, under a transaction-scoped advisory lock so that two
 * daemons opening a new database at once do not race.
 */
static int
create_schema(PGconn *conn, char *err, size_t errlen)
{
	unsigned char	 id[16], zero[32];
	const char	*vals[3];
	int		 lens[3] = { 16, 32, 0 }, fmts[3] = { 1, 1, 1 };
	PGresult	*res;

	if (RAND_bytes(id, sizeof(id)) != 1)
		return errorf(err, errlen, "PostgreSQL log: no random bytes for a log id");
	memset(zero, 0, sizeof(zero));
	vals[0] = (const char *)id;
	vals[1] = (const char *)zero;
	vals[2] = "";
	if (pglog_exec(conn, "BEGIN", "create", err, errlen) == -1)
		return -1;
	res = PQexec(conn, "SELECT pg_advisory_xact_lock(" SCHEMA_LOCK ")");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		pglog_fail(conn, res, "create lock", err, errlen);
		goto fail;
	}
	PQclear(res);
	if (pglog_exec(conn, schema_sql, "create tables", err, errlen) == -1)
		goto fail;
	res = PQexecParams(conn, "INSERT INTO log_head(one, version, log_id, size, "
	    "head, frontier, cp_n, cp_time, last_time) VALUES (true, "
	    STR(PGLOG_SCHEMA_VERSION) ", $1, 0, $2, $3, 0, 0, 0) "
	    "ON CONFLICT (one) DO NOTHING", 3, NULL, vals, lens, fmts, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		pglog_fail(conn, res, "create head", err, errlen);
		goto fail;
	}
	PQclear(res);
	return pglog_exec(conn, "COMMIT", "create", err, errlen);
fail:
	PQclear(PQexec(conn, "ROLLBACK"));
	return -1;
}

/*
 * Server notices ("relation already exists, skipping") are not errors and
 * would go to stderr through libpq's default: dropped.
 */
static void
quiet(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

/*
 * An existing log is opened without DDL, so a daemon's role needs only to
 * read and write the four tables; a database without them gets them. The
 * schema version must be this build's.
 */
static int
check_schema(PGconn *conn, int create, char *err, size_t errlen)
{
	PGresult	*res;
	int		 exists;

	res = PQexec(conn, "SELECT to_regclass('log_head') IS NOT NULL");
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
		return pglog_fail(conn, res, "open", err, errlen);
	exists = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (!exists && !create) {
		return errorf(err, errlen, "PostgreSQL log: there is no disclosure log "
		    "in this database (no table log_head in its search path)");
	}
	if (!exists && create_schema(conn, err, errlen) == -1)
		return -1;
	res = PQexec(conn, "SELECT version FROM log_head WHERE one");
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		return pglog_fail(conn, res, "open", err, errlen);
	if (PQntuples(res) != 1 || atoi(PQgetvalue(res, 0, 0)) != PGLOG_SCHEMA_VERSION) {
		errorf(err, errlen, "PostgreSQL log: %s (this build reads schema "
		    "version %d)", PQntuples(res) != 1 ? "table log_head has no row" :
		    "the log's schema version is another", PGLOG_SCHEMA_VERSION);
		PQclear(res);
		return -1;
	}
	PQclear(res);
	return 0;
}

static int
open_log(struct pglog **pl, const char *conninfo, int create, char *err,
    size_t errlen)
{
	struct pglog	*p;

	*pl = NULL;
	if ((p = calloc(1, sizeof(*p))) == NULL ||
	    (p->conninfo = strdup(conninfo)) == NULL) {
		free(p);
		return errorf(err, errlen, "PostgreSQL log: out of memory");
	}
	p->conn = PQconnectdb(conninfo);
	if (p->conn == NULL || PQstatus(p->conn) != CONNECTION_OK) {
		pglog_fail(p->conn, NULL, "connect", err, errlen);
		goto fail;
	}
	PQsetNoticeProcessor(p->conn, quiet, NULL);
	if (check_schema(p->conn, create, err, errlen) == -1 ||
	    session(p, err, errlen) == -1)
		goto fail;
	*pl = p;
	return 0;
fail:
	pglog_close(p);
	return -1;
}

int
pglog_open(struct pglog **pl, const char *conninfo, char *err, size_t errlen)
{
	return open_log(pl, conninfo, 1, err, errlen);
}

int
pglog_open_reader(struct pglog **pl, const char *conninfo, char *err, size_t errlen)
{
	return open_log(pl, conninfo, 0, err, errlen);
}

void
pglog_close(struct pglog *p)
{
	if (p == NULL)
		return;
	PQfinish(p->conn);
	EVP_PKEY_free(p->signer);
	free(p->note);
	free(p->conninfo);
	free(p);
}

void
pglog_set_signer(struct pglog *p, EVP_PKEY *key)
{
	if (key != NULL)
		EVP_PKEY_up_ref(key);
	EVP_PKEY_free(p->signer);
	p->signer = key;
}

int
pglog_backend_pid(struct pglog *p)
{
	return PQbackendPID(p->conn);
}

void
pglog_set_test_hook(struct pglog *p, void (*fn)(void *, size_t), void *arg)
{
	p->hook = fn;
	p->hook_arg = arg;
}

void
pglog_run_hook(struct pglog *p, size_t i)
{
	if (p->hook != NULL)
		p->hook(p->hook_arg, i);
}

void
pglog_put_be64(char out[8], uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		out[i] = (char)(v & 0xff);
		v >>= 8;
	}
}

uint64_t
pglog_be64(const char *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | (unsigned char)p[i];
	return v;
}

/* A binary int8 column of row 0.. as uint64: 0, or -1 when it is not one. */
int
pglog_col_u64(const PGresult *res, int row, int col, uint64_t *v)
{
	if (PQgetisnull(res, row, col) || PQgetlength(res, row, col) != 8)
		return -1;
	*v = pglog_be64(PQgetvalue(res, row, col));
	return 0;
}

/* A binary bytea column of exactly len bytes into out: 0 or -1. */
int
pglog_col_bytes(const PGresult *res, int row, int col, unsigned char *out, int len)
{
	if (PQgetisnull(res, row, col) || PQgetlength(res, row, col) != len)
		return -1;
	memcpy(out, PQgetvalue(res, row, col), (size_t)len);
	return 0;
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

/* merkle_node_fn: stores the nodes of the stored levels (TREE_STRIDE, as SQLite). */
static void
put_node(void *arg, unsigned level, uint64_t index, const uint8_t hash[32])
{
	struct pglog	*p = arg;
	char		 lv[16], ix[24];
	const char	*vals[3] = { lv, ix, (const char *)hash };
	int		 lens[3] = { 0, 0, 32 }, fmts[3] = { 0, 0, 1 };
	PGresult	*res;

	if (level == 0 || level % TREE_STRIDE != 0 || p->node_failed)
		return;
	snprintf(lv, sizeof(lv), "%u", level);
	snprintf(ix, sizeof(ix), "%" PRIu64, index);
	res = PQexecPrepared(p->conn, "pglog_node", 3, vals, lens, fmts, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		p->node_failed = 1;
		pglog_fail(p->conn, res, "tree node", p->node_err, sizeof(p->node_err));
		return;
	}
	PQclear(res);
}

static int
insert_entry(struct pglog *p, const struct audit_entry *e, char *err, size_t errlen)
{
	char		 seq[24], tm[24], ref[24];
	const char	*vals[ENTRY_PARAMS];
	int		 lens[ENTRY_PARAMS], fmts[ENTRY_PARAMS];
	PGresult	*res;

	memset(lens, 0, sizeof(lens));
	memset(fmts, 0, sizeof(fmts));
	snprintf(seq, sizeof(seq), "%" PRIu64, e->seq);
	snprintf(tm, sizeof(tm), "%" PRId64, e->time);
	snprintf(ref, sizeof(ref), "%" PRIu64, e->ref_seq);
	vals[AUDIT_COL_seq] = seq;
	vals[AUDIT_COL_time] = tm;
#define F(name)	vals[AUDIT_COL_##name] = e->name != NULL ? e->name : "";
	AUDIT_STRING_FIELDS(F)
#undef F
	vals[AUDIT_COL_ref_seq] = ref;
	vals[AUDIT_COL_prev_hash] = (const char *)e->prev_hash;
	vals[AUDIT_COL_hash] = (const char *)e->hash;
	lens[AUDIT_COL_prev_hash] = lens[AUDIT_COL_hash] = 32;
	fmts[AUDIT_COL_prev_hash] = fmts[AUDIT_COL_hash] = 1;
	res = PQexecPrepared(p->conn, "pglog_entry", ENTRY_PARAMS, vals, lens, fmts, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		return pglog_fail(p->conn, res, "insert entry", err, errlen);
	PQclear(res);
	return 0;
}

/* The signed checkpoint of this commit, numbered after the last one. */
static int
insert_checkpoint(struct pglog *p, const struct pglog_head *h,
    const unsigned char root[32], int64_t t, char **note, char *err, size_t errlen)
{
	struct cpnote	 c;
	char		 why[128], nb[24], sb[24], tb[24];
	const char	*vals[7];
	int		 lens[7] = { 0, 0, 32, 0, 64, 32, 0 };
	int		 fmts[7] = { 0, 0, 1, 0, 1, 1, 0 };
	PGresult	*res;

	if (audit_note_sign(p->signer, h->log_id, h->size, root, t, h->cp_n + 1, NULL,
	    note) == -1 || audit_note_parse(*note, &c, why, sizeof(why)) == -1 ||
	    c.nsig != 1)
		return errorf(err, errlen, "PostgreSQL log: checkpoint: signing failed");
	snprintf(nb, sizeof(nb), "%" PRIu64, h->cp_n + 1);
	snprintf(sb, sizeof(sb), "%" PRIu64, h->size);
	snprintf(tb, sizeof(tb), "%" PRId64, t);
	vals[0] = nb;
	vals[1] = sb;
	vals[2] = (const char *)h->head;
	vals[3] = tb;
	vals[4] = (const char *)c.sig[0].sig;
	vals[5] = (const char *)root;
	vals[6] = *note;
	res = PQexecPrepared(p->conn, "pglog_cp", 7, vals, lens, fmts, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		return pglog_fail(p->conn, res, "checkpoint", err, errlen);
	PQclear(res);
	return 0;
}

/* Moves the head row to what this transaction wrote. */
static int
move_head(struct pglog *p, const struct pglog_head *h, char *err, size_t errlen)
{
	char		 sb[24], nb[24], cb[24], lb[24];
	const char	*vals[6] = { sb, (const char *)h->head, (const char *)p->range.h,
			    nb, cb, lb };
	int		 lens[6] = { 0, 32, (int)(32 * p->range.n), 0, 0, 0 };
	int		 fmts[6] = { 0, 1, 1, 0, 0, 0 };
	PGresult	*res;

	snprintf(sb, sizeof(sb), "%" PRIu64, h->size);
	snprintf(nb, sizeof(nb), "%" PRIu64, h->cp_n);
	snprintf(cb, sizeof(cb), "%" PRId64, h->cp_time);
	snprintf(lb, sizeof(lb), "%" PRId64, h->last_time);
	res = PQexecPrepared(p->conn, "pglog_move", 6, vals, lens, fmts, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK || strcmp(PQcmdTuples(res), "1") != 0)
		return pglog_fail(p->conn, res, "move head", err, errlen);
	PQclear(res);
	return 0;
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
 * One group commit (pglog.h): lock the head, chain and insert the
 * entries after it, store the tree nodes they complete, sign and insert
 * the checkpoint, move the head, commit. Every failure before COMMIT rolls
 * the whole transaction back.
 */
int
pglog_append(struct pglog *p, struct audit_entry **es, size_t n,
    struct audit_receipt *rc, char *err, size_t errlen)
{
	struct pglog_head	 h;
	unsigned char		 root[32];
	uint8_t			(*leaves)[32] = NULL;
	char			*note = NULL;
	PGresult		*res = NULL;
	int64_t			 t;
	int			 began = 0;

	if (n == 0)
		return 0;
	if (session(p, err, errlen) == -1)
		return -1;
	if ((leaves = calloc(n, 32)) == NULL)
		return errorf(err, errlen, "PostgreSQL log: out of memory");
	if (pglog_exec(p->conn, "BEGIN", "begin", err, errlen) == -1)
		goto fail;
	began = 1;
	/* Waits here for any other daemon's append to commit (pglog.h). */
	res = PQexecPrepared(p->conn, "pglog_head", 0, NULL, NULL, NULL, 1);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		pglog_fail(p->conn, res, "lock head", err, errlen);
		goto fail;
	}
	if (read_head(p, res, &h) == -1) {
		PQclear(res);
		errorf(err, errlen, "PostgreSQL log: the head row is missing or malformed "
		    "(schema version %d expected)", PGLOG_SCHEMA_VERSION);
		goto fail;
	}
	PQclear(res);
	p->before = p->range;
	p->node_failed = 0;
	for (size_t i = 0; i < n; i++) {
		struct audit_entry *e = es[i];

		/* D7: the log's time order, across daemons whose clocks differ. */
		if (e->time < h.last_time)
			e->time = h.last_time;
		h.last_time = e->time;
		e->seq = ++h.size;
		memcpy(e->prev_hash, h.head, 32);
		audit_hash(e, e->hash);
		memcpy(h.head, e->hash, 32);
		if (insert_entry(p, e, err, errlen) == -1)
			goto fail;
		merkle_leaf(e->hash, leaves[i]);
		merkle_range_append(&p->range, leaves[i], put_node, p);
		if (p->node_failed) {
			errorf(err, errlen, "%s", p->node_err);
			goto fail;
		}
		if (p->hook != NULL)
			p->hook(p->hook_arg, i + 1);
	}
	merkle_range_root(&p->range, root);
	/* Checkpoints have their own order in time (D7). */
	t = (int64_t)time(NULL);
	if (t < h.cp_time)
		t = h.cp_time;
	if (p->signer != NULL) {
		if (insert_checkpoint(p, &h, root, t, &note, err, errlen) == -1)
			goto fail;
		h.cp_n++;
		h.cp_time = t;
	}
	if (move_head(p, &h, err, errlen) == -1 ||
	    pglog_exec(p->conn, "COMMIT", "commit", err, errlen) == -1)
		goto fail;
	free(p->note);
	p->note = note;
	if (rc != NULL)
		receipts(p, es, n, (const uint8_t (*)[32])leaves, rc);
	free(leaves);
	return 0;
fail:
	if (began && PQstatus(p->conn) == CONNECTION_OK &&
	    PQtransactionStatus(p->conn) != PQTRANS_IDLE)
		PQclear(PQexec(p->conn, "ROLLBACK"));
	free(note);
	free(leaves);
	return -1;
}

int
pglog_head(struct pglog *p, uint64_t *size, unsigned char log_id[16], char *err,
    size_t errlen)
{
	PGresult *res;

	if (session(p, err, errlen) == -1)
		return -1;
	res = PQexecParams(p->conn, "SELECT size, log_id FROM log_head WHERE one", 0,
	    NULL, NULL, NULL, NULL, 1);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		return pglog_fail(p->conn, res, "head", err, errlen);
	if (PQntuples(res) != 1 || pglog_col_u64(res, 0, 0, size) == -1 ||
	    pglog_col_bytes(res, 0, 1, log_id, 16) == -1) {
		PQclear(res);
		return errorf(err, errlen, "PostgreSQL log: the head row is missing or "
		    "malformed");
	}
	PQclear(res);
	return 0;
}

PGconn *
pglog_conn(struct pglog *p)
{
	return p->conn;
}

int
pglog_ready(struct pglog *p, char *err, size_t errlen)
{
	return session(p, err, errlen);
}
