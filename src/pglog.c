/*
 * The disclosure log on PostgreSQL (issue 19): the connection, its
 * schema and session. The group commit that appends to the one chain all
 * daemons share is pglog_append.c; pglog.h says how appends are
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
#include "note.h"
#include "pglog.h"
#include "pglog_int.h"
#include "util.h"

/*
 * The tables. log_head has exactly one row (one = true): the lock every
 * append takes, and what the next append builds on. Entry columns are the
 * members of audit_fields.h, in its order.
 */
/*
 * Schema version 3: the key a rotation named (pglog_rotate.c), NULL until
 * the log's first rotation; a log of version 2 gets it at a writer's open.
 */
#define SIGNER_COLUMN	" signer bytea CHECK (signer IS NULL OR length(signer) = 32)"
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
    " last_time bigint NOT NULL," SIGNER_COLUMN ");"
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
 * A new session's settings and statements (prepared statements live as
 * long as the session: after a reconnect they are prepared again).
 * synchronous_commit is set here, whatever the server's default, since a
 * reply must never leave before its entry is durable (D7).
 */
static int
session(struct pglog *p, char *err, size_t errlen)
{
	if (p->ready && PQstatus(p->conn) == CONNECTION_OK &&
	    PQpipelineStatus(p->conn) == PQ_PIPELINE_OFF &&
	    PQtransactionStatus(p->conn) == PQTRANS_IDLE)
		return 0;
	p->ready = 0;
	if (PQstatus(p->conn) != CONNECTION_OK) {
		/* At most once a second, each try bounded: pglog_set_connect_wait(). */
		if (pg_reconnect(p->conn, &p->retry, "PostgreSQL log", err,
		    errlen) == -1)
			return -1;
	} else if (PQpipelineStatus(p->conn) != PQ_PIPELINE_OFF) {
		/* An append that could not unwind its pipeline: start afresh. */
		PQfinish(p->conn);
		p->conn = pg_connectdb(p->conninfo);
		if (p->conn == NULL || PQstatus(p->conn) != CONNECTION_OK)
			return pglog_fail(p->conn, NULL, "connect", err, errlen);
		PQsetNoticeProcessor(p->conn, quiet, NULL);
	} else if (PQtransactionStatus(p->conn) != PQTRANS_IDLE &&
	    pglog_exec(p->conn, "ROLLBACK", "rollback", err, errlen) == -1)
		return -1;
	if (pglog_exec(p->conn, "SET synchronous_commit = on; "
	    "SET client_encoding = 'UTF8'", "session settings", err, errlen) == -1 ||
	    pglog_prepare_append(p, err, errlen) == -1 ||
	    pglog_prepare_readers(p, err, errlen) == -1)
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
 * A log of version 2 (before rotations on PostgreSQL) gets log_head's
 * signer column, NULL, and becomes version 3: nothing else changed. It
 * needs the tables' owner, once; under the create lock, so that two
 * daemons upgrading at once do not race.
 */
static int
upgrade_v2(PGconn *conn, char *err, size_t errlen)
{
	PGresult	*res;

	if (pglog_exec(conn, "BEGIN", "upgrade", err, errlen) == -1)
		return -1;
	res = PQexec(conn, "SELECT pg_advisory_xact_lock(" SCHEMA_LOCK ")");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		pglog_fail(conn, res, "upgrade lock", err, errlen);
		goto fail;
	}
	PQclear(res);
	if (pglog_exec(conn, "ALTER TABLE log_head ADD COLUMN IF NOT EXISTS"
	    SIGNER_COLUMN "; UPDATE log_head SET version = 3 WHERE version = 2",
	    "upgrade to schema version 3 (it needs the tables' owner)", err,
	    errlen) == -1)
		goto fail;
	return pglog_exec(conn, "COMMIT", "upgrade", err, errlen);
fail:
	PQclear(PQexec(conn, "ROLLBACK"));
	return -1;
}

/*
 * An existing log is opened without DDL (but the upgrade of version 2), so a daemon's role needs only to
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
	if (create && PQntuples(res) == 1 && atoi(PQgetvalue(res, 0, 0)) == 2) {
		PQclear(res);
		if (upgrade_v2(conn, err, errlen) == -1)
			return -1;
		res = PQexec(conn, "SELECT version FROM log_head WHERE one");
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
			return pglog_fail(conn, res, "open", err, errlen);
	}
	if (PQntuples(res) != 1 || atoi(PQgetvalue(res, 0, 0)) != PGLOG_SCHEMA_VERSION) {
		errorf(err, errlen, "PostgreSQL log: %s (this build reads schema "
		    "version %d%s)", PQntuples(res) != 1 ? "table log_head has no row" :
		    "the log's schema version is another", PGLOG_SCHEMA_VERSION,
		    PQntuples(res) == 1 && atoi(PQgetvalue(res, 0, 0)) == 2 ?
		    "; a version 2 log is upgraded by the first start of a daemon "
		    "of this version" : "");
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
	    (p->conninfo = strdup(conninfo)) == NULL ||
	    (p->rows = pglog_rows_new()) == NULL) {
		if (p != NULL)
			free(p->conninfo);
		free(p);
		return errorf(err, errlen, "PostgreSQL log: out of memory");
	}
	p->conn = pg_connectdb(conninfo);
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
	note_signer_free(p->nsigner);
	free(p->note);
	free(p->conninfo);
	pglog_rows_free(p->rows);
	free(p);
}

void
pglog_set_signer(struct pglog *p, EVP_PKEY *key)
{
	size_t	len = sizeof(p->signer_pub);

	memset(p->signer_pub, 0, sizeof(p->signer_pub));
	if (key != NULL) {
		EVP_PKEY_up_ref(key);
		/* An Ed25519 key (audit_load_signer()): its 32 bytes. */
		if (EVP_PKEY_get_raw_public_key(key, p->signer_pub, &len) != 1)
			memset(p->signer_pub, 0, sizeof(p->signer_pub));
	}
	EVP_PKEY_free(p->signer);
	p->signer = key;
	/* The next checkpoint sets up a signer for the new key. */
	note_signer_free(p->nsigner);
	p->nsigner = NULL;
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

void
pglog_set_connect_wait(struct pglog *p, int ms)
{
	p->retry.wait_ms = ms > 0 ? ms : 0;
}
