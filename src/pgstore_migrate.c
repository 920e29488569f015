/*
 * An SQLite record store copied into an empty PostgreSQL store (issue 19
 * item 5; pgstore_migrate.h says what is guaranteed). Each table goes by
 * COPY in text format, one line per row in key order, built from the
 * SQLite row's values as stored; the same line, built again from what
 * PostgreSQL then holds, feeds the comparison: the row count and the
 * SHA-256 of every line, in the same key order (byte order on both sides:
 * SQLite's BINARY collation, PostgreSQL's "C"), must be the source's.
 * Everything happens in the caller's transaction on the target, so a
 * failure anywhere leaves nothing of the copy.
 */
#include <libpq-fe.h>
#include <openssl/evp.h>
#include <sqlite3.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "pgstore.h"
#include "pgstore_int.h"
#include "pgstore_migrate.h"
#include "util.h"

/*
 * A table: its columns (the same names in both stores), its order for
 * SQLite and for PostgreSQL (the key), and whether its id column has a
 * sequence to set past the largest id copied.
 */
struct mtable {
	const char	*name;
	const char	*cols;
	const char	*sq_order;
	const char	*pg_order;
	int		 serial;
};

static const struct mtable tables[PGSTORE_MIGRATE_NTABLES] = {
	{ "subjects", "id, holder, person, nhs_number, family, given, dob, "
	    "postcode, family_key", "id", "id COLLATE \"C\"", 0 },
	{ "records", "subject, record_type, holder, verified_at",
	    "subject, record_type", "subject COLLATE \"C\", record_type "
	    "COLLATE \"C\"", 0 },
	{ "record_fields", "subject, record_type, field, value",
	    "subject, record_type, field", "subject COLLATE \"C\", record_type "
	    "COLLATE \"C\", field COLLATE \"C\"", 0 },
	{ "consents", "id, subject, state, agencies, purposes, expires_at, "
	    "recorded_by, recorded_at, decided_at", "id", "id", 1 },
	{ "flags", "id, subject, flag, set_by, set_at, removed_by, removed_at",
	    "id", "id", 1 },
	{ "holder_batches", "request_id, first_seq, applied_at", "request_id",
	    "request_id COLLATE \"C\"", 0 },
	{ "store_loads", "id, file, subjects, loaded_at, logged_seq", "id", "id",
	    1 },
};

const char *const pgstore_migrate_tables[PGSTORE_MIGRATE_NTABLES] = {
	"subjects", "records", "record_fields", "consents", "flags",
	"holder_batches", "store_loads",
};

/* One COPY line, grown as needed (memory: the largest row). */
struct line {
	char	*buf;
	size_t	 len, cap;
};

static int
line_add(struct line *l, const char *s, size_t n)
{
	if (l->len + n + 1 > l->cap) {
		size_t	 cap = l->cap ? l->cap : 1024;
		char	*b;

		while (cap < l->len + n + 1)
			cap *= 2;
		if ((b = realloc(l->buf, cap)) == NULL)
			return -1;
		l->buf = b;
		l->cap = cap;
	}
	memcpy(l->buf + l->len, s, n);
	l->len += n;
	return 0;
}

/*
 * One value in COPY's text format: NULL is \N; backslash, tab, newline
 * and carriage return are escaped, every other byte is itself. The
 * encoding is one to one, so equal lines are equal rows.
 */
static int
line_value(struct line *l, int first, const char *v, size_t n)
{
	if (!first && line_add(l, "\t", 1) == -1)
		return -1;
	if (v == NULL)
		return line_add(l, "\\N", 2);
	for (size_t i = 0; i < n; i++) {
		const char	*e = NULL;

		switch (v[i]) {
		case '\\': e = "\\\\"; break;
		case '\t': e = "\\t"; break;
		case '\n': e = "\\n"; break;
		case '\r': e = "\\r"; break;
		}
		if (e != NULL ? line_add(l, e, 2) : line_add(l, v + i, 1))
			return -1;
	}
	return 0;
}

/* The migration's state. */
struct smig {
	sqlite3		*src;
	PGconn		*conn;
	struct line	 line;
	char		 err[384];
};

static int
sq_fail(struct smig *m, const char *what)
{
	return errorf(m->err, sizeof(m->err), "the SQLite store: %s: %s", what,
	    sqlite3_errmsg(m->src));
}

static int
pg_failed(struct smig *m, PGresult *res, const char *what)
{
	return pgstore_fail(m->conn, res, what, m->err, sizeof(m->err));
}

/* Runs sql on the target (no rows wanted): 0, or -1 with m->err. */
static int
pg_run(struct smig *m, const char *sql, int n, const char *const *vals,
    const char *what)
{
	PGresult *res = PQexecParams(m->conn, sql, n, NULL, vals, NULL, NULL, 0);

	if (PQresultStatus(res) != PGRES_COMMAND_OK &&
	    PQresultStatus(res) != PGRES_TUPLES_OK)
		return pg_failed(m, res, what);
	PQclear(res);
	return 0;
}

/*
 * Copies table t from SQLite by COPY, hashing each line sent into
 * digest; *rows counts them.
 */
static int
copy_table(struct smig *m, const struct mtable *t, unsigned char digest[32],
    uint64_t *rows)
{
	sqlite3_stmt	*st = NULL;
	EVP_MD_CTX	*md = EVP_MD_CTX_new();
	PGresult	*res;
	char		 sql[512], what[64];
	int		 rc, ncols, copying = 0, ok = 0;

	*rows = 0;
	snprintf(what, sizeof(what), "copy %s", t->name);
	if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		errorf(m->err, sizeof(m->err), "%s: no SHA-256", what);
		goto done;
	}
	snprintf(sql, sizeof(sql), "SELECT %s FROM %s ORDER BY %s", t->cols,
	    t->name, t->sq_order);
	if (sqlite3_prepare_v2(m->src, sql, -1, &st, NULL) != SQLITE_OK) {
		sq_fail(m, t->name);
		goto done;
	}
	ncols = sqlite3_column_count(st);
	snprintf(sql, sizeof(sql), "COPY %s (%s) FROM STDIN", t->name, t->cols);
	res = PQexec(m->conn, sql);
	if (PQresultStatus(res) != PGRES_COPY_IN) {
		pg_failed(m, res, what);
		goto done;
	}
	PQclear(res);
	copying = 1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		m->line.len = 0;
		for (int c = 0; c < ncols; c++) {
			const char *v = (const char *)sqlite3_column_text(st, c);

			if (sqlite3_column_type(st, c) == SQLITE_NULL)
				v = NULL;
			if (line_value(&m->line, c == 0, v, v != NULL ?
			    (size_t)sqlite3_column_bytes(st, c) : 0) == -1)
				goto oom;
		}
		if (line_add(&m->line, "\n", 1) == -1)
			goto oom;
		if (PQputCopyData(m->conn, m->line.buf, (int)m->line.len) != 1) {
			pg_failed(m, NULL, what);
			goto done;
		}
		EVP_DigestUpdate(md, m->line.buf, m->line.len);
		(*rows)++;
	}
	if (rc != SQLITE_DONE) {
		sq_fail(m, t->name);
		goto done;
	}
	copying = 0;
	if (PQputCopyEnd(m->conn, NULL) != 1) {
		pg_failed(m, NULL, what);
		goto done;
	}
	ok = 1;
	while ((res = PQgetResult(m->conn)) != NULL) {
		if (ok && PQresultStatus(res) != PGRES_COMMAND_OK) {
			ok = 0;
			pg_failed(m, res, what);
			continue;
		}
		PQclear(res);
	}
	if (ok)
		EVP_DigestFinal_ex(md, digest, NULL);
	goto done;
oom:
	errorf(m->err, sizeof(m->err), "%s: out of memory", what);
done:
	if (copying) {
		/* The COPY ends failed; the transaction is rolled back. */
		PQputCopyEnd(m->conn, "the migration stopped");
		while ((res = PQgetResult(m->conn)) != NULL)
			PQclear(res);
	}
	sqlite3_finalize(st);
	EVP_MD_CTX_free(md);
	return ok ? 0 : -1;
}

/*
 * Table t as PostgreSQL now holds it, in the same key order and the
 * same lines, row by row (single-row mode: memory is one row): its count
 * and digest must be the source's.
 */
static int
compare_table(struct smig *m, const struct mtable *t,
    const unsigned char want[32], uint64_t want_rows)
{
	EVP_MD_CTX	*md = EVP_MD_CTX_new();
	PGresult	*res;
	unsigned char	 got[32];
	uint64_t	 rows = 0;
	char		 sql[512], what[64];
	int		 ok = 1;

	snprintf(what, sizeof(what), "read back %s", t->name);
	snprintf(sql, sizeof(sql), "SELECT %s FROM %s ORDER BY %s", t->cols,
	    t->name, t->pg_order);
	if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(md);
		return errorf(m->err, sizeof(m->err), "%s: no SHA-256", what);
	}
	if (PQsendQuery(m->conn, sql) != 1 || PQsetSingleRowMode(m->conn) != 1) {
		EVP_MD_CTX_free(md);
		return pg_failed(m, NULL, what);
	}
	while ((res = PQgetResult(m->conn)) != NULL) {
		ExecStatusType rs = PQresultStatus(res);

		if (ok && rs == PGRES_SINGLE_TUPLE) {
			m->line.len = 0;
			for (int c = 0; ok && c < PQnfields(res); c++)
				if (line_value(&m->line, c == 0,
				    PQgetisnull(res, 0, c) ? NULL :
				    PQgetvalue(res, 0, c),
				    (size_t)PQgetlength(res, 0, c)) == -1)
					ok = 0;
			if (!ok || line_add(&m->line, "\n", 1) == -1) {
				ok = 0;
				errorf(m->err, sizeof(m->err), "%s: out of memory",
				    what);
			} else {
				EVP_DigestUpdate(md, m->line.buf, m->line.len);
				rows++;
			}
		} else if (ok && rs != PGRES_TUPLES_OK) {
			ok = 0;
			pg_failed(m, res, what);
			continue;
		}
		PQclear(res);
	}
	EVP_DigestFinal_ex(md, got, NULL);
	EVP_MD_CTX_free(md);
	if (!ok)
		return -1;
	if (rows != want_rows || memcmp(got, want, 32) != 0)
		return errorf(m->err, sizeof(m->err), "the migrated table %s is not "
		    "the SQLite store's (%" PRIu64 " rows, the source %" PRIu64 "%s)",
		    t->name, rows, want_rows, rows == want_rows ?
		    ", and their contents differ" : "");
	return 0;
}

/* The target's store tables hold no row (store_meta aside). */
static int
check_empty(struct smig *m)
{
	PGresult	*res;
	char		 which[256] = "";
	size_t		 n = 0;

	if (pg_run(m, "LOCK TABLE store_meta, subjects, records, record_fields, "
	    "consents, flags, holder_batches, store_loads, store_log "
	    "IN EXCLUSIVE MODE", 0, NULL, "lock the store's tables") == -1)
		return -1;
	res = PQexec(m->conn, "SELECT EXISTS (SELECT 1 FROM subjects), "
	    "EXISTS (SELECT 1 FROM records), EXISTS (SELECT 1 FROM record_fields), "
	    "EXISTS (SELECT 1 FROM consents), EXISTS (SELECT 1 FROM flags), "
	    "EXISTS (SELECT 1 FROM holder_batches), "
	    "EXISTS (SELECT 1 FROM store_loads), EXISTS (SELECT 1 FROM store_log)");
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
		return pg_failed(m, res, "is the store empty");
	for (int i = 0; i < PQnfields(res); i++)
		if (strcmp(PQgetvalue(res, 0, i), "t") == 0)
			n += (size_t)snprintf(which + n, sizeof(which) - n, "%s%s",
			    n ? ", " : "", i < PGSTORE_MIGRATE_NTABLES ?
			    tables[i].name : "store_log");
	PQclear(res);
	if (n == 0)
		return 0;
	return errorf(m->err, sizeof(m->err), "the PostgreSQL store is not empty "
	    "(rows in %s); a store is migrated only into an empty one", which);
}

/* One value of a one-row SQLite query into out; 0 none, 1 found, -1. */
static int
sq_value(struct smig *m, const char *sql, char *out, size_t len)
{
	sqlite3_stmt	*st;
	int		 rc;

	if (sqlite3_prepare_v2(m->src, sql, -1, &st, NULL) != SQLITE_OK)
		return sq_fail(m, "read");
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
		snprintf(out, len, "%s", (const char *)sqlite3_column_text(st, 0));
		rc = 1;
	} else if (rc == SQLITE_ROW || rc == SQLITE_DONE)
		rc = 0;
	else
		rc = sq_fail(m, "read");
	sqlite3_finalize(st);
	return rc;
}

/* The store's id and birth: the source's, replacing the empty target's. */
static int
copy_meta(struct smig *m, struct pgstore_migration *out)
{
	char		 id[STORE_ID_LEN + 2] = "", at[24] = "";
	const char	*vals[2];
	PGresult	*res;
	int		 same, rc;

	if ((rc = sq_value(m, "SELECT value FROM store_meta WHERE key = "
	    "'store_id'", id, sizeof(id))) == 1)
		rc = sq_value(m, "SELECT value FROM store_meta WHERE key = "
		    "'created_at'", at, sizeof(at));
	if (rc == -1)
		return -1;
	if (rc == 0 || strlen(id) != STORE_ID_LEN)
		return errorf(m->err, sizeof(m->err), "the SQLite store has no "
		    "store id or creation time (store_meta)");
	memcpy(out->store_id, id, STORE_ID_LEN + 1);	/* length checked above */
	out->created_at = strtoll(at, NULL, 10);
	vals[0] = id;
	vals[1] = at;
	res = PQexecParams(m->conn, "UPDATE store_meta SET value = CASE key "
	    "WHEN 'store_id' THEN $1 ELSE $2 END WHERE key IN ('store_id', "
	    "'created_at')", 2, NULL, vals, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		return pg_failed(m, res, "store_meta");
	same = strcmp(PQcmdTuples(res), "2") == 0;
	PQclear(res);
	if (!same)
		return errorf(m->err, sizeof(m->err), "the PostgreSQL store has no "
		    "store_meta rows to replace");
	res = PQexec(m->conn, "SELECT (SELECT value FROM store_meta WHERE key = "
	    "'store_id'), (SELECT value FROM store_meta WHERE key = 'created_at')");
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
		return pg_failed(m, res, "read back store_meta");
	same = strcmp(PQgetvalue(res, 0, 0), id) == 0 &&
	    strcmp(PQgetvalue(res, 0, 1), at) == 0;
	PQclear(res);
	if (!same)
		return errorf(m->err, sizeof(m->err), "the migrated store_meta is not "
		    "the SQLite store's");
	return 0;
}

/*
 * What the store remembers of its log (store_log), checked against the
 * log migrated with it, if any, and copied as it is.
 */
static int
copy_log_memory(struct smig *m, const unsigned char *log_id, uint64_t log_size,
    struct pgstore_migration *out)
{
	struct audit_memory	 mem;
	sqlite3_stmt		*st;
	PGresult		*res;
	char			 hex[2 + 32 + 1], sb[24], why[300];
	const char		*vals[2] = { hex, sb };
	int			 rc;

	if (sqlite3_prepare_v2(m->src, "SELECT log_id, size FROM store_log "
	    "WHERE id = 1", -1, &st, NULL) != SQLITE_OK)
		return sq_fail(m, "store_log");
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_bytes(st, 0) == 16) {
		memcpy(out->log_id, sqlite3_column_blob(st, 0), 16);
		out->log_size = (uint64_t)sqlite3_column_int64(st, 1);
		out->remembers = 1;
	} else if (rc != SQLITE_DONE) {
		sqlite3_finalize(st);
		return rc == SQLITE_ROW ? errorf(m->err, sizeof(m->err), "the SQLite "
		    "store's store_log row is malformed") : sq_fail(m, "store_log");
	}
	sqlite3_finalize(st);
	if (!out->remembers)
		return 0;
	memcpy(mem.log_id, out->log_id, 16);
	mem.size = out->log_size;
	if (log_id != NULL && audit_memory_check(&mem, "the SQLite store", 1, log_id,
	    log_size, why, sizeof(why)) == -1)
		return errorf(m->err, sizeof(m->err), "%s: it is not the store of "
		    "that log", why);
	memcpy(hex, "\\x", 2);
	hex_encode(out->log_id, 16, hex + 2);
	snprintf(sb, sizeof(sb), "%" PRIu64, out->log_size);
	if (pg_run(m, "INSERT INTO store_log (log_id, size) VALUES ($1::bytea, $2)",
	    2, vals, "store_log") == -1)
		return -1;
	res = PQexecParams(m->conn, "SELECT count(*) FROM store_log WHERE "
	    "log_id = $1::bytea AND size = $2", 2, NULL, vals, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
		return pg_failed(m, res, "read back store_log");
	rc = strcmp(PQgetvalue(res, 0, 0), "1") == 0 ? 0 : errorf(m->err,
	    sizeof(m->err), "the migrated store_log is not the SQLite store's");
	PQclear(res);
	return rc;
}

/*
 * A store migrated alone goes with the log already in the target, if
 * any (log_head): its id and size, for copy_log_memory()'s check. 1
 * found, 0 none, -1 with m->err.
 */
static int
target_log(struct smig *m, unsigned char id[16], uint64_t *size)
{
	PGresult	*res;
	int		 rc = 0;

	res = PQexec(m->conn, "SELECT to_regclass('log_head') IS NOT NULL");
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
		return pg_failed(m, res, "the target's log");
	rc = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (!rc)
		return 0;
	res = PQexecParams(m->conn, "SELECT log_id, size FROM log_head", 0, NULL,
	    NULL, NULL, NULL, 1);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		return pg_failed(m, res, "the target's log");
	rc = 0;
	if (PQntuples(res) == 1 && PQgetlength(res, 0, 0) == 16 &&
	    PQgetlength(res, 0, 1) == 8) {
		memcpy(id, PQgetvalue(res, 0, 0), 16);
		*size = 0;
		for (int i = 0; i < 8; i++)
			*size = *size << 8 | (unsigned char)PQgetvalue(res, 0, 1)[i];
		rc = 1;
	}
	PQclear(res);
	return rc;
}

/* The sequences continue after the largest ids copied. */
static int
set_sequences(struct smig *m, struct pgstore_migration *out)
{
	char		 sql[256], pb[24] = "0";
	const char	*vals[1] = { pb };

	if (sq_value(m, "SELECT max(coalesce((SELECT max(id) FROM persons), 0), "
	    "coalesce((SELECT max(person) FROM subjects), 0))", pb,
	    sizeof(pb)) == -1)
		return -1;
	out->persons = strtoll(pb, NULL, 10);
	if (pg_run(m, "SELECT setval('person_ids', $1::bigint + 1, false)", 1, vals,
	    "person_ids") == -1)
		return -1;
	for (int i = 0; i < PGSTORE_MIGRATE_NTABLES; i++) {
		if (!tables[i].serial)
			continue;
		snprintf(sql, sizeof(sql), "SELECT setval(pg_get_serial_sequence('%s', "
		    "'id'), coalesce(max(id), 0) + 1, false) FROM %s", tables[i].name,
		    tables[i].name);
		if (pg_run(m, sql, 0, NULL, "sequence") == -1)
			return -1;
	}
	return 0;
}

int
pgstore_migrate_txn(sqlite3 *src, PGconn *conn, const unsigned char *log_id,
    uint64_t log_size, struct pgstore_migration *out, char *err, size_t errlen)
{
	struct smig	*m;
	unsigned char	 tid[16];
	int		 reading = 0, rc = -1;

	memset(out, 0, sizeof(*out));
	if ((m = calloc(1, sizeof(*m))) == NULL)
		return errorf(err, errlen, "out of memory");
	m->src = src;
	m->conn = conn;
	/* One snapshot of the source for every table. */
	if (sqlite3_exec(src, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
		sq_fail(m, "begin");
		goto done;
	}
	reading = 1;
	if (check_empty(m) == -1)
		goto done;
	if (log_id == NULL) {
		switch (target_log(m, tid, &log_size)) {
		case -1:
			goto done;
		case 1:
			log_id = tid;
			break;
		}
	}
	if (copy_meta(m, out) == -1 || copy_log_memory(m, log_id, log_size,
	    out) == -1)
		goto done;
	for (int i = 0; i < PGSTORE_MIGRATE_NTABLES; i++)
		if (copy_table(m, &tables[i], out->digest[i], &out->rows[i]) == -1)
			goto done;
	if (set_sequences(m, out) == -1)
		goto done;
	for (int i = 0; i < PGSTORE_MIGRATE_NTABLES; i++)
		if (compare_table(m, &tables[i], out->digest[i], out->rows[i]) == -1)
			goto done;
	rc = 0;
done:
	if (reading)
		sqlite3_exec(src, "COMMIT", NULL, NULL, NULL);
	if (rc == -1)
		errorf(err, errlen, "%s", m->err);
	free(m->line.buf);
	free(m);
	return rc;
}

int
pgstore_migrate(sqlite3 *src, const char *conninfo, struct pgstore_migration *out,
    char *err, size_t errlen)
{
	struct pgstore	*p;
	PGresult	*res;
	int		 rc = -1;

	memset(out, 0, sizeof(*out));
	if (pgstore_open(&p, conninfo, err, errlen) == -1)
		return -1;
	res = PQexec(p->conn, "BEGIN");
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		pgstore_fail(p->conn, res, "begin", err, errlen);
		goto done;
	}
	PQclear(res);
	if (pgstore_migrate_txn(src, p->conn, NULL, 0, out, err, errlen) == -1)
		goto done;
	res = PQexec(p->conn, "COMMIT");
	/* A failed transaction "commits" as a ROLLBACK. */
	if (PQresultStatus(res) != PGRES_COMMAND_OK ||
	    strcmp(PQcmdStatus(res), "COMMIT") != 0) {
		if (PQresultStatus(res) == PGRES_COMMAND_OK) {
			PQclear(res);
			errorf(err, errlen, "PostgreSQL store: commit: the transaction "
			    "had failed and was rolled back");
		} else
			pgstore_fail(p->conn, res, "commit", err, errlen);
		goto done;
	}
	PQclear(res);
	rc = 0;
done:
	if (PQstatus(p->conn) == CONNECTION_OK &&
	    PQtransactionStatus(p->conn) != PQTRANS_IDLE)
		PQclear(PQexec(p->conn, "ROLLBACK"));
	pgstore_close(p);
	return rc;
}

int
pgstore_migrate_source(sqlite3 **db, const char *path, char *err, size_t errlen)
{
	sqlite3_stmt	*st;
	int		 version = -1;

	*db = NULL;
	if (access(path, F_OK) == -1)
		return errorf(err, errlen, "%s: no such store", path);
	if (sqlite3_open_v2(path, db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_busy_timeout(*db, DB_BUSY_MS);
	if (sqlite3_prepare_v2(*db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		goto fail;
	if (sqlite3_step(st) == SQLITE_ROW)
		version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	/* A disclosure log given by mistake has a user_version too. */
	if (sqlite3_prepare_v2(*db, "SELECT count(*) FROM sqlite_master WHERE "
	    "type = 'table' AND name IN ('subjects', 'records', 'consents')", -1,
	    &st, NULL) != SQLITE_OK)
		goto fail;
	if (sqlite3_step(st) != SQLITE_ROW || sqlite3_column_int(st, 0) != 3)
		version = 0;
	sqlite3_finalize(st);
	if (version == store_schema_version())
		return 0;
	if (version <= 0)
		errorf(err, errlen, "%s: not a record store", path);
	else
		errorf(err, errlen, "%s: a record store of schema version %d (this "
		    "build's is %d)%s", path, version, store_schema_version(),
		    version < store_schema_version() ? ": start this version's "
		    "safeshared on it once, which brings it up to date" : "");
	sqlite3_close(*db);
	*db = NULL;
	return -1;
fail:
	errorf(err, errlen, "%s: %s", path, *db ? sqlite3_errmsg(*db) : "cannot open");
	sqlite3_close(*db);
	*db = NULL;
	return -1;
}
