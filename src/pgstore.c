/*
 * The record store on PostgreSQL (issue 19): the connection, the schema,
 * the statements every session prepares, the helper that runs them, and
 * the transactions. pgstore_read.c, pgstore_write.c and pgstore_person.c
 * hold the operations; pgstore.h says how two daemons are kept from
 * racing. The tables are the SQLite store's (store.c's migrations, as of
 * schema version 7), in PostgreSQL's types.
 */
#include <libpq-fe.h>
#include <openssl/rand.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pgstore.h"
#include "pgstore_int.h"
#include "util.h"

/*
 * Issue 13 item 5 on PostgreSQL (schema version 2; pgstore_log.c): the
 * disclosure log the daemons use with this store and the largest size one
 * of them has seen it at. One row, or none before a daemon first starts.
 */
#define STORE_LOG_SQL							\
    "CREATE TABLE IF NOT EXISTS store_log (one boolean PRIMARY KEY"	\
    " DEFAULT true CHECK (one), log_id bytea NOT NULL"			\
    " CHECK (length(log_id) = 16), size bigint NOT NULL CHECK (size >= 0))"

/*
 * Schema version 3: the store's version, which every transaction that
 * changes what a disclosure reads moves by one, in that transaction, so a
 * statement sees a change and its version together or neither. The
 * event loop reads it with each round's reads and keeps what it read
 * while it holds (pgstore_batch.c, the subject-read cache). A trigger,
 * not the daemons' code, moves it: a change made by hand in psql counts
 * too. The first changing statement of a transaction moves it, the
 * others find the transaction's mark (set_config(..., true) ends with
 * the transaction), so a 100,000-op holder batch updates the row once.
 */
#define STORE_VERSION_SQL						\
    "CREATE TABLE IF NOT EXISTS store_version (one boolean PRIMARY KEY"	\
    " DEFAULT true CHECK (one), v bigint NOT NULL);"			\
    "INSERT INTO store_version (v) VALUES (0) ON CONFLICT DO NOTHING;"	\
    "CREATE OR REPLACE FUNCTION store_version_bump() RETURNS trigger"	\
    " LANGUAGE plpgsql AS $$ BEGIN"					\
    " IF current_setting('safeshare.store_changed', true)"		\
    " IS DISTINCT FROM 'y' THEN"					\
    " UPDATE store_version SET v = v + 1;"				\
    " PERFORM set_config('safeshare.store_changed', 'y', true);"	\
    " END IF; RETURN NULL; END $$;"					\
    VERSION_TRIGGER("subjects") VERSION_TRIGGER("records")		\
    VERSION_TRIGGER("record_fields") VERSION_TRIGGER("consents")	\
    VERSION_TRIGGER("flags")
#define VERSION_TRIGGER(t)						\
    "CREATE OR REPLACE TRIGGER " t "_version AFTER INSERT OR UPDATE"	\
    " OR DELETE OR TRUNCATE ON " t " FOR EACH STATEMENT"		\
    " EXECUTE FUNCTION store_version_bump();"

/*
 * subjects: one holder's view of a person (D18), its NHS number and the
 * details it is found by; a person is a number from person_ids shared by
 * the views that link one NHS number. A holder holds a person under one
 * local id and a flag is active once per subject: unique indexes, so that
 * two daemons cannot both make the second one.
 */
static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS store_meta (key text PRIMARY KEY,"
    " value text NOT NULL);"
    "CREATE SEQUENCE IF NOT EXISTS person_ids;"
    "CREATE TABLE IF NOT EXISTS subjects (id text PRIMARY KEY,"
    " holder text NOT NULL, person bigint NOT NULL,"
    " nhs_number text CHECK (nhs_number IS NULL OR nhs_number ~ '^[0-9]{10}$'),"
    " family text, given text, dob text, postcode text, family_key text,"
    " UNIQUE (person, holder));"
    "CREATE INDEX IF NOT EXISTS subjects_nhs ON subjects (nhs_number)"
    " WHERE nhs_number IS NOT NULL;"
    "CREATE INDEX IF NOT EXISTS subjects_find ON subjects (family_key, dob)"
    " WHERE family_key IS NOT NULL;"
    "CREATE TABLE IF NOT EXISTS records (subject text NOT NULL REFERENCES"
    " subjects (id), record_type text NOT NULL, holder text NOT NULL,"
    " verified_at bigint NOT NULL, PRIMARY KEY (subject, record_type));"
    "CREATE TABLE IF NOT EXISTS record_fields (subject text NOT NULL,"
    " record_type text NOT NULL, field text NOT NULL, value text NOT NULL,"
    " PRIMARY KEY (subject, record_type, field));"
    "CREATE TABLE IF NOT EXISTS consents (id bigserial PRIMARY KEY,"
    " subject text NOT NULL, state text NOT NULL"
    " CHECK (state IN ('granted', 'refused', 'withdrawn')),"
    " agencies text NOT NULL, purposes text NOT NULL, expires_at bigint,"
    " recorded_by text NOT NULL, recorded_at bigint NOT NULL, decided_at bigint);"
    "CREATE INDEX IF NOT EXISTS consents_subject ON consents (subject, id);"
    "CREATE TABLE IF NOT EXISTS flags (id bigserial PRIMARY KEY,"
    " subject text NOT NULL, flag text NOT NULL, set_by text NOT NULL,"
    " set_at bigint NOT NULL, removed_by text, removed_at bigint);"
    "CREATE INDEX IF NOT EXISTS flags_subject ON flags (subject);"
    "CREATE UNIQUE INDEX IF NOT EXISTS flags_active ON flags (subject, flag)"
    " WHERE removed_at IS NULL;"
    "CREATE TABLE IF NOT EXISTS holder_batches (request_id text PRIMARY KEY,"
    " first_seq bigint NOT NULL, applied_at bigint NOT NULL);"
    "CREATE TABLE IF NOT EXISTS store_loads (id bigserial PRIMARY KEY,"
    " file text NOT NULL, subjects bigint NOT NULL, loaded_at bigint NOT NULL,"
    " logged_seq bigint NOT NULL DEFAULT 0);"
    STORE_LOG_SQL ";" STORE_VERSION_SQL;

/* Any constant other than pglog's: two first opens do not create at once. */
#define SCHEMA_LOCK	"7393651077101946420"

/*
 * The statements, in SQLite's order and meaning (store.c, person.c).
 * ORDER BY ... COLLATE "C": byte order, as SQLite sorts, whatever the
 * database's collation.
 */
static const char *const stmts[S_COUNT] = {
	/*
	 * A disclosure's reads for n requests in one statement (pgstore_batch.c):
	 * $1..$4 are arrays of subjects, record types, agencies and purposes,
	 * request i (from 1) is their i-th element. Its rows are (i, kind, a, b):
	 * kind 0 the record (verified_at, holder), 1 each field (name, value),
	 * 2 the latest consent whose scope covers the agency and the purpose
	 * (state, expires_at: D3), 3 each active flag of the person, whichever
	 * holder set it (D12, D18). One statement is one snapshot. The
	 * subject's row is read once per request, for the record's holder and
	 * for the person whose flags count (as SQLite's Q_RECORD): a request
	 * is one pass of index probes, about 14 % fewer buffers than four
	 * passes over the arrays (BENCHMARKS.md). Its row (0, 9, v) is the
	 * store's version in the same snapshot (STORE_VERSION_SQL), which the
	 * loop's cache is checked against.
	 */
	[S_SUBJECTS] = "SELECT q.i, k.kind, k.a, k.b "
	    "FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) "
	    "WITH ORDINALITY AS q(subject, rt, agency, purpose, i) "
	    "LEFT JOIN subjects s ON s.id = q.subject CROSS JOIN LATERAL "
	    "(SELECT 0 AS kind, r.verified_at::text AS a, s.holder AS b "
	    "FROM records r WHERE r.subject = q.subject AND r.record_type = q.rt "
	    "UNION ALL SELECT 1, f.field, f.value FROM record_fields f "
	    "WHERE f.subject = q.subject AND f.record_type = q.rt "
	    "UNION ALL (SELECT 2, c.state, c.expires_at::text FROM consents c "
	    "WHERE c.subject = q.subject AND (c.agencies = '*' OR "
	    "strpos(',' || c.agencies || ',', ',' || q.agency || ',') > 0) AND "
	    "(c.purposes = '*' OR strpos(',' || c.purposes || ',', "
	    "',' || q.purpose || ',') > 0) ORDER BY c.id DESC LIMIT 1) "
	    "UNION ALL SELECT DISTINCT 3, fl.flag, NULL::text FROM subjects b "
	    "JOIN flags fl ON fl.subject = b.id WHERE b.person = s.person "
	    "AND fl.removed_at IS NULL) k "
	    "UNION ALL SELECT 0::bigint, 9, v::text, NULL::text FROM store_version "
	    "ORDER BY 1, 2, 3",
	[S_FIELDS] = "SELECT field, value FROM record_fields "
	    "WHERE subject = $1 AND record_type = $2",
	/* A new subject is a person of its own until it links an NHS number. */
	[S_PUT_SUBJECT] = "INSERT INTO subjects (id, holder, person) "
	    "VALUES ($1, $2, nextval('person_ids')) ON CONFLICT (id) DO NOTHING",
	[S_OWNER] = "SELECT holder FROM subjects WHERE id = $1",
	[S_OWNER_LOCK] = "SELECT holder FROM subjects WHERE id = $1 FOR UPDATE",
	[S_PUT_RECORD] = "INSERT INTO records (subject, record_type, holder, "
	    "verified_at) VALUES ($1, $2, $3, $4) ON CONFLICT (subject, record_type) "
	    "DO UPDATE SET holder = excluded.holder, verified_at = excluded.verified_at",
	[S_DEL_FIELDS] = "DELETE FROM record_fields WHERE subject = $1 "
	    "AND record_type = $2",
	/* A record's fields in one statement: names and values as text[]. */
	[S_PUT_FIELDS] = "INSERT INTO record_fields (subject, record_type, field, "
	    "value) SELECT $1, $2, f, v FROM unnest($3::text[], $4::text[]) "
	    "AS u (f, v)",
	[S_ADD_CONSENT] = "INSERT INTO consents (subject, state, agencies, purposes, "
	    "expires_at, recorded_by, recorded_at, decided_at) "
	    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
	/* Set twice at once by two daemons: one row (flags_active). */
	[S_SET_FLAG] = "INSERT INTO flags (subject, flag, set_by, set_at) "
	    "VALUES ($1, $2, $3, $4) ON CONFLICT (subject, flag) "
	    "WHERE removed_at IS NULL DO NOTHING",
	[S_DEL_RECORD] = "DELETE FROM records WHERE subject = $1 AND record_type = $2",
	[S_FLAG_ACTIVE] = "SELECT count(*) FROM flags WHERE subject = $1 "
	    "AND flag = $2 AND removed_at IS NULL",
	/* Removal is recorded, never erased (D12). */
	[S_UNFLAG] = "UPDATE flags SET removed_by = $3, removed_at = $4 "
	    "WHERE subject = $1 AND flag = $2 AND removed_at IS NULL",
	/*
	 * A batch's row: applied_at >= 0 once applied, -1 when a daemon's
	 * reconciliation claimed it to log it rolled back (deploy-ha.md,
	 * "Holder batches with several daemons"). Whichever insert comes
	 * first owns the row; the other finds it taken.
	 */
	[S_MARK_BATCH] = "INSERT INTO holder_batches (request_id, first_seq, "
	    "applied_at) VALUES ($1, $2, $3) ON CONFLICT (request_id) DO NOTHING",
	[S_BATCH_APPLIED] = "SELECT count(*) FROM holder_batches "
	    "WHERE request_id = $1 AND applied_at >= 0",
	[S_BATCH_CLAIM] = "INSERT INTO holder_batches (request_id, first_seq, "
	    "applied_at) VALUES ($1, $2, -1) ON CONFLICT (request_id) DO NOTHING",
	[S_BATCH_CLAIMED] = "SELECT count(*) FROM holder_batches "
	    "WHERE request_id = $1 AND applied_at = -1",
	/*
	 * A holder batch's session-level advisory lock (deploy-ha.md, "Holder
	 * batches with several daemons"): class 1932, the request id's hash
	 * (NHS number links are class 1931).
	 */
	[S_BATCH_LOCK] = "SELECT pg_advisory_lock(1932, hashtext($1))",
	[S_BATCH_TRY_LOCK] = "SELECT pg_try_advisory_lock(1932, hashtext($1))",
	[S_BATCH_UNLOCK] = "SELECT pg_advisory_unlock(1932, hashtext($1))",
	/* A holder batch's subjects, locked in one go (pgstore_known.c). */
	[S_PREFETCH] = "SELECT id, holder FROM subjects WHERE id = ANY($1::text[]) "
	    "ORDER BY id FOR UPDATE",
	[S_LAST_CONSENT] = "SELECT state, agencies, purposes, expires_at, "
	    "decided_at FROM consents WHERE subject = $1 ORDER BY id DESC LIMIT 1",
	[S_RECORD_ROW] = "SELECT holder, verified_at FROM records "
	    "WHERE subject = $1 AND record_type = $2",
	[S_SHOW_RECORDS] = "SELECT record_type, verified_at FROM records "
	    "WHERE subject = $1 ORDER BY record_type COLLATE \"C\"",
	[S_SHOW_FIELDS] = "SELECT record_type, field, value FROM record_fields "
	    "WHERE subject = $1 ORDER BY record_type COLLATE \"C\", field COLLATE \"C\"",
	[S_SHOW_CONSENTS] = "SELECT state, agencies, purposes, expires_at, "
	    "decided_at, recorded_by, recorded_at FROM consents WHERE subject = $1 "
	    "ORDER BY id DESC LIMIT $2",
	[S_SHOW_FLAGS] = "SELECT flag, set_by, set_at, removed_by, removed_at "
	    "FROM flags WHERE subject = $1 ORDER BY id DESC LIMIT $2",
	[S_SUBJECT] = "SELECT person, holder, nhs_number FROM subjects WHERE id = $1",
	[S_SUBJECT_LOCK] = "SELECT person, holder, nhs_number FROM subjects "
	    "WHERE id = $1 FOR UPDATE",
	/*
	 * Links of one NHS number queue on its bucket's key until the linking
	 * transaction ends; key 1024 (PGNHS_ALL) comes first, shared, or
	 * exclusive for every number; a batch's buckets are locked in the
	 * order of the array, ascending (pgstore_nhs.c).
	 */
	[S_NHS_SOME] = "SELECT pg_advisory_xact_lock_shared(1931, 1024)",
	[S_NHS_EVERY] = "SELECT pg_advisory_xact_lock(1931, 1024)",
	[S_NHS_LOCK] = "SELECT pg_advisory_xact_lock(1931, $1::int4)",
	[S_NHS_LOCKS] = "SELECT pg_advisory_xact_lock(1931, k) "
	    "FROM unnest($1::int4[]) AS k",
	[S_BY_NHS] = "SELECT person FROM subjects WHERE nhs_number = $1 "
	    "AND id <> $2 ORDER BY person LIMIT 1",
	[S_SHARED] = "SELECT count(*) FROM subjects WHERE person = $1 AND id <> $2",
	[S_NEW_PERSON] = "SELECT nextval('person_ids')",
	[S_SET_NHS] = "UPDATE subjects SET nhs_number = $2, person = $3 "
	    "WHERE id = $1",
	/* A holder holds a person under one local id (D18). */
	[S_CLASH] = "SELECT id FROM subjects WHERE person = $1 AND holder = $2 "
	    "AND id <> $3 LIMIT 1",
	[S_SET_DETAILS] = "UPDATE subjects SET family = $2, given = $3, dob = $4, "
	    "postcode = $5, family_key = $6 WHERE id = $1",
	[S_RECORD_FIELD] = "SELECT value FROM record_fields WHERE subject = $1 "
	    "AND record_type = 'person' AND field = $2",
	[S_FIND_NHS] = "SELECT person, nhs_number, family, given, dob, postcode "
	    "FROM subjects WHERE nhs_number = $1",
	[S_FIND_DEMO] = "SELECT person, nhs_number, family, given, dob, postcode "
	    "FROM subjects WHERE family_key = $1 AND dob = $2",
	[S_HOLDING] = "SELECT id FROM subjects WHERE person = $1 AND holder = $2",
	[S_HOLDINGS] = "SELECT holder, id FROM subjects WHERE person = $1 "
	    "ORDER BY holder COLLATE \"C\"",
	[S_RECORDS] = "SELECT s.holder, s.id, r.record_type FROM subjects s "
	    "JOIN records r ON r.subject = s.id WHERE s.person = $1 "
	    "ORDER BY s.holder COLLATE \"C\", r.record_type COLLATE \"C\"",
	/* Data files loaded, until the daemon has logged them (logged_seq). */
	[S_NOTE_LOAD] = "INSERT INTO store_loads (file, subjects, loaded_at) "
	    "VALUES ($1, $2, $3)",
	[S_UNLOGGED_LOADS] = "SELECT id, file, subjects, loaded_at FROM store_loads "
	    "WHERE logged_seq = 0 ORDER BY id",
	[S_LOAD_LOGGED] = "UPDATE store_loads SET logged_seq = $2 WHERE id = $1",
	/*
	 * Issue 13 item 5: the size only grows for the same log, whichever
	 * daemon saw it; another log (a start with -N) replaces the row.
	 */
	[S_REMEMBER_LOG] = "INSERT INTO store_log (log_id, size) "
	    "VALUES ($1::bytea, $2) ON CONFLICT (one) DO UPDATE SET "
	    "size = CASE WHEN store_log.log_id = excluded.log_id "
	    "THEN greatest(store_log.size, excluded.size) ELSE excluded.size END, "
	    "log_id = excluded.log_id",
	[S_FORGET_LOG] = "DELETE FROM store_log",
};

/*
 * The reason a statement failed, from res or the connection, into err;
 * frees res. Only the primary message and the SQLSTATE: a DETAIL line may
 * quote a row, and no record's contents go into a message.
 */
int
pgstore_fail(PGconn *conn, PGresult *res, const char *what, char *err,
    size_t errlen)
{
	return pg_fail(conn, res, "PostgreSQL store", what, err, errlen);
}

static int
exec_sql(PGconn *conn, const char *sql, const char *what, char *err, size_t errlen)
{
	PGresult *res = PQexec(conn, sql);

	if (PQresultStatus(res) != PGRES_COMMAND_OK &&
	    PQresultStatus(res) != PGRES_TUPLES_OK)
		return pgstore_fail(conn, res, what, err, errlen);
	PQclear(res);
	return 0;
}

const char *
pgstore_text(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? "" : PQgetvalue(res, row, col);
}

int64_t
pgstore_int(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? 0 :
	    (int64_t)strtoll(PQgetvalue(res, row, col), NULL, 10);
}

/*
 * A lost connection opened again (issue 19 item 3): pg_reconnect(), each
 * try waiting at most the handle's connect wait (pgstore_set_connect_wait();
 * 0: the connection string's connect_timeout, 5 s by default).
 */
static int
reconnect(struct pgstore *p, char *err, size_t errlen)
{
	return pg_reconnect(p->conn, &p->retry, "PostgreSQL store", err, errlen);
}

void
pgstore_set_connect_wait(struct pgstore *p, int ms)
{
	p->retry.wait_ms = ms > 0 ? ms : 0;
	if (p->rd != NULL)
		pgstore_set_connect_wait(p->rd, ms);
}

/*
 * A session's settings and statements: after a reconnect they are made
 * again. synchronous_commit is on whatever the server's default: a holder
 * write acknowledged is durable, as with SQLite's synchronous=FULL.
 */
static int
session(struct pgstore *p, char *err, size_t errlen)
{
	char name[32];

	if (p->ready && PQstatus(p->conn) == CONNECTION_OK)
		return 0;
	p->ready = 0;
	p->scope = p->scope_open = 0;
	if (PQstatus(p->conn) != CONNECTION_OK && reconnect(p, err, errlen) == -1)
		return -1;
	if (exec_sql(p->conn, "SET synchronous_commit = on; "
	    "SET client_encoding = 'UTF8'", "session settings", err, errlen) == -1)
		return -1;
	for (int i = 0; i < S_COUNT; i++) {
		PGresult *res;

		snprintf(name, sizeof(name), "pgstore_%d", i);
		res = PQprepare(p->conn, name, stmts[i], 0, NULL);
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			return pgstore_fail(p->conn, res, "prepare", err, errlen);
		PQclear(res);
	}
	p->ready = 1;
	return 0;
}

int
pgstore_session(struct pgstore *p, char *err, size_t errlen)
{
	return session(p, err, errlen);
}

/* A statement that only reads, so running it again on a new connection is safe. */
static int
is_read(int q)
{
	return strncmp(stmts[q], "SELECT", 6) == 0 &&
	    strstr(stmts[q], "FOR UPDATE") == NULL && q != S_NEW_PERSON &&
	    q != S_NHS_LOCK && q != S_NHS_LOCKS && q != S_NHS_SOME &&
	    q != S_NHS_EVERY && q != S_BATCH_LOCK && q != S_BATCH_TRY_LOCK &&
	    q != S_BATCH_UNLOCK;
}

/*
 * A read scope wanted and not yet begun is begun by its first statement
 * (pgstore_read_begin()), so a loop round whose reads all go through the
 * round's batch (pgstore_batch.c) pays for no BEGIN and COMMIT.
 */
PGresult *
pgstore_run(struct pgstore *p, int q, int n, const char *const *vals,
    const char *what, char *err, size_t errlen)
{
	if (p->scope && !p->scope_open && !p->txn && session(p, err, errlen) == 0)
		p->scope_open = exec_sql(p->conn, "BEGIN ISOLATION LEVEL "
		    "REPEATABLE READ READ ONLY", "read", err, errlen) == 0;
	return pgstore_run1(p, q, n, vals, what, err, errlen);
}

PGresult *
pgstore_run1(struct pgstore *p, int q, int n, const char *const *vals,
    const char *what, char *err, size_t errlen)
{
	char		 name[32];
	PGresult	*res;
	ExecStatusType	 rs;

	if (!p->txn && session(p, err, errlen) == -1)
		return NULL;
	/* Behind queued writes, or after the pipeline broke (pgstore_pipe.c). */
	if (p->txn && (p->pipe || p->broken))
		return pgstore_run_queued(p, q, n, vals, what, err, errlen);
	snprintf(name, sizeof(name), "pgstore_%d", q);
	for (int try = 0;; try++) {
		res = PQexecPrepared(p->conn, name, n, vals, NULL, NULL, 0);
		rs = PQresultStatus(res);
		if (rs == PGRES_TUPLES_OK || rs == PGRES_COMMAND_OK)
			return res;
		if (try > 0 || p->txn || !is_read(q) ||
		    PQstatus(p->conn) == CONNECTION_OK)
			break;
		/* The server went away between two reads: once more, anew. */
		PQclear(res);
		if (session(p, err, errlen) == -1)
			return NULL;
	}
	pgstore_fail(p->conn, res, what, err, errlen);
	return NULL;
}

int
pgstore_exec(struct pgstore *p, int q, int n, const char *const *vals,
    const char *what, char *err, size_t errlen)
{
	PGresult *res;

	if (p->txn)
		return pgstore_send(p, q, n, vals, NULL, NULL, what, err, errlen);
	if ((res = pgstore_run(p, q, n, vals, what, err, errlen)) == NULL)
		return -1;
	PQclear(res);
	return 0;
}

/*
 * Creates the tables and the store's meta rows (a new random id, its
 * birth now) if they are missing, under a transaction-scoped advisory lock
 * so that two daemons opening a new database at once do not race.
 */
static int
create_schema(PGconn *conn, char *err, size_t errlen)
{
	unsigned char	 rnd[16];
	char		 id[STORE_ID_LEN + 1], now[24], ver[16];
	const char	*vals[3] = { id, now, ver };
	PGresult	*res;

	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return errorf(err, errlen, "PostgreSQL store: no random bytes for a "
		    "store id");
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(id + 2 * i, 3, "%02x", rnd[i]);
	snprintf(now, sizeof(now), "%lld", (long long)time(NULL));
	snprintf(ver, sizeof(ver), "%d", PGSTORE_SCHEMA_VERSION);
	if (exec_sql(conn, "BEGIN", "create", err, errlen) == -1)
		return -1;
	if (exec_sql(conn, "SELECT pg_advisory_xact_lock(" SCHEMA_LOCK ")",
	    "create lock", err, errlen) == -1 ||
	    exec_sql(conn, schema_sql, "create tables", err, errlen) == -1)
		goto fail;
	res = PQexecParams(conn, "INSERT INTO store_meta (key, value) VALUES "
	    "('store_id', $1), ('created_at', $2), ('version', $3) "
	    "ON CONFLICT (key) DO NOTHING", 3, NULL, vals, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		pgstore_fail(conn, res, "create meta", err, errlen);
		goto fail;
	}
	PQclear(res);
	return exec_sql(conn, "COMMIT", "create", err, errlen);
fail:
	PQclear(PQexec(conn, "ROLLBACK"));
	return -1;
}

/*
 * One version up, to `to`: the statements sql under the creation lock,
 * then the version. They are idempotent (IF NOT EXISTS, OR REPLACE), so a
 * second daemon doing the same at once finds them made. Version 1 to 2
 * is STORE_LOG_SQL, 2 to 3 STORE_VERSION_SQL.
 */
static int
upgrade(PGconn *conn, const char *sql, int to, char *err, size_t errlen)
{
	char set[96];

	snprintf(set, sizeof(set), "UPDATE store_meta SET value = '%d' "
	    "WHERE key = 'version'", to);
	if (exec_sql(conn, "BEGIN", "upgrade", err, errlen) == -1)
		return -1;
	if (exec_sql(conn, "SELECT pg_advisory_xact_lock(" SCHEMA_LOCK ")",
	    "upgrade lock", err, errlen) == -1 ||
	    exec_sql(conn, sql, "upgrade", err, errlen) == -1 ||
	    exec_sql(conn, set, "upgrade: version", err, errlen) == -1) {
		PQclear(PQexec(conn, "ROLLBACK"));
		return -1;
	}
	return exec_sql(conn, "COMMIT", "upgrade", err, errlen);
}

/*
 * An existing store is opened without DDL, so a daemon's role needs only
 * to read and write the tables; a database without them gets them. The
 * schema version must be this build's.
 */
static int
load_meta(struct pgstore *p, char *err, size_t errlen)
{
	PGresult	*res;
	int		 exists, version = -1;

	res = PQexec(p->conn, "SELECT to_regclass('store_meta') IS NOT NULL");
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
		return pgstore_fail(p->conn, res, "open", err, errlen);
	exists = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (!exists && create_schema(p->conn, err, errlen) == -1)
		return -1;
	res = PQexec(p->conn, "SELECT key, value FROM store_meta");
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		return pgstore_fail(p->conn, res, "open", err, errlen);
	for (int i = 0; i < PQntuples(res); i++) {
		const char *k = PQgetvalue(res, i, 0), *v = PQgetvalue(res, i, 1);

		if (strcmp(k, "store_id") == 0)
			snprintf(p->id, sizeof(p->id), "%s", v);
		else if (strcmp(k, "created_at") == 0)
			p->created_at = strtoll(v, NULL, 10);
		else if (strcmp(k, "version") == 0)
			version = atoi(v);
	}
	PQclear(res);
	if (version == 1 && upgrade(p->conn, STORE_LOG_SQL, 2, err, errlen) == -1)
		return -1;
	if (version == 1)
		version = 2;
	if (version == 2 &&
	    upgrade(p->conn, STORE_VERSION_SQL, 3, err, errlen) == -1)
		return -1;
	if (version == 2)
		version = 3;
	if (version != PGSTORE_SCHEMA_VERSION)
		return errorf(err, errlen, "PostgreSQL store: the store's schema "
		    "version is %s (this build reads schema version %d)",
		    version == -1 ? "missing" : "another", PGSTORE_SCHEMA_VERSION);
	if (strlen(p->id) != STORE_ID_LEN)
		return errorf(err, errlen, "PostgreSQL store: store_meta: no store id");
	return 0;
}

/* Server notices ("relation already exists, skipping") are not errors. */
static void
quiet(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

int
pgstore_open(struct pgstore **ps, const char *conninfo, char *err, size_t errlen)
{
	struct pgstore *p;

	*ps = NULL;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return errorf(err, errlen, "PostgreSQL store: out of memory");
	if ((p->conninfo = strdup(conninfo)) == NULL) {
		errorf(err, errlen, "PostgreSQL store: out of memory");
		goto fail;
	}
	p->conn = pg_connectdb(conninfo);
	if (p->conn == NULL || PQstatus(p->conn) != CONNECTION_OK) {
		pgstore_fail(p->conn, NULL, "connect", err, errlen);
		goto fail;
	}
	PQsetNoticeProcessor(p->conn, quiet, NULL);
	if (load_meta(p, err, errlen) == -1 || session(p, err, errlen) == -1)
		goto fail;
	*ps = p;
	return 0;
fail:
	pgstore_close(p);
	return -1;
}

void
pgstore_close(struct pgstore *p)
{
	if (p == NULL)
		return;
	pgstore_batch_free(p);
	PQfinish(p->conn);
	pgstore_pipe_free(p);
	pgstore_known_clear(p);
	free(p->conninfo);
	free(p);
}

const char *
pgstore_id(struct pgstore *p)
{
	return p->id;
}

int64_t
pgstore_created_at(struct pgstore *p)
{
	return p->created_at;
}

int
pgstore_backend_pid(struct pgstore *p)
{
	return PQbackendPID(p->conn);
}

/*
 * A write transaction, READ COMMITTED: what two daemons could both change
 * is locked by the statement that reads it (pgstore.h). A lost connection
 * is opened again here, the one place a transaction starts.
 */
int
pgstore_begin(struct pgstore *p, char *err, size_t errlen)
{
	pgstore_read_end(p);	/* a write sees, and ends, the read snapshot */
	if (p->txn)
		return errorf(err, errlen, "PostgreSQL store: begin: a transaction "
		    "is open already");
	pgstore_known_clear(p);
	pgstore_nhs_clear(p);
	if (session(p, err, errlen) == -1 ||
	    exec_sql(p->conn, "BEGIN", "begin", err, errlen) == -1)
		return -1;
	p->txn = 1;
	return 0;
}

/*
 * 0 once the commit is durable. A connection lost during COMMIT leaves
 * the outcome unknown: -1 (the caller answers that nothing was written;
 * the daemon's reconciliation asks the store whether the batch is there).
 */
int
pgstore_commit(struct pgstore *p, char *err, size_t errlen)
{
	PGresult	*res;
	int		 ok;

	if (!p->txn)
		return errorf(err, errlen, "PostgreSQL store: commit: no transaction");
	/* The queued writes' failures are the transaction's (pgstore_pipe.c). */
	if (pgstore_flush(p, err, errlen) == -1) {
		pgstore_rollback(p);
		return -1;
	}
	res = PQexec(p->conn, "COMMIT");
	/* A failed transaction "commits" as a ROLLBACK: that is a failure. */
	ok = PQresultStatus(res) == PGRES_COMMAND_OK &&
	    strcmp(PQcmdStatus(res), "COMMIT") == 0;
	if (!ok) {
		if (PQresultStatus(res) == PGRES_COMMAND_OK) {
			PQclear(res);
			res = NULL;
			errorf(err, errlen, "PostgreSQL store: commit: the transaction "
			    "had failed and was rolled back");
		} else
			pgstore_fail(p->conn, res, "commit", err, errlen);
		pgstore_rollback(p);
		return -1;
	}
	PQclear(res);
	p->txn = 0;
	pgstore_known_clear(p);
	pgstore_nhs_clear(p);
	return 0;
}

void
pgstore_rollback(struct pgstore *p)
{
	pgstore_pipe_abandon(p);
	if (PQstatus(p->conn) == CONNECTION_OK &&
	    PQtransactionStatus(p->conn) != PQTRANS_IDLE)
		PQclear(PQexec(p->conn, "ROLLBACK"));
	p->txn = 0;
	pgstore_known_clear(p);
	pgstore_nhs_clear(p);
}

/*
 * A read scope: one REPEATABLE READ, READ ONLY transaction, so a burst of
 * reads sees one snapshot (store_read_begin()). Not inside a write. Only
 * wanted here: the first statement of the scope sends the BEGIN
 * (pgstore_run()).
 */
void
pgstore_read_begin(struct pgstore *p)
{
	if (p->scope || p->txn)
		return;
	p->scope = 1;
	p->scope_open = 0;
}

void
pgstore_read_end(struct pgstore *p)
{
	int open = p->scope_open;

	if (!p->scope)
		return;
	p->scope = p->scope_open = 0;
	if (open && PQstatus(p->conn) == CONNECTION_OK &&
	    PQtransactionStatus(p->conn) != PQTRANS_IDLE)
		PQclear(PQexec(p->conn, "COMMIT"));
}
