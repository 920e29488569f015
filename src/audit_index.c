/*
 * The subject index beside the log (<log>-subjects): opening and updating
 * it behind the log, attaching it to a reader's queries, and checking it
 * against the log.
 */
#define _GNU_SOURCE		/* statx() */

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <sqlite3.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "audit_int.h"
#include "util.h"

static const char *const index_schema =
    "CREATE TABLE IF NOT EXISTS subject_index(gen INTEGER NOT NULL,"
    " subject TEXT NOT NULL, seq INTEGER NOT NULL,"
    " PRIMARY KEY(gen, subject, seq)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS state(id INTEGER PRIMARY KEY CHECK(id = 1),"
    " log_id BLOB, upto INTEGER NOT NULL);"
    "INSERT OR IGNORE INTO state(id, log_id, upto) VALUES (1, NULL, 0);"
    "PRAGMA user_version = " STR(INDEX_VERSION) ";";

void
audit_index_path(const char *log, char *out, size_t len)
{
	snprintf(out, len, "%s-subjects", log);
}

/*
 * 1 if path is still the file once found there. An index file deleted to
 * have it rebuilt is another file when it comes back, and whoever holds
 * the old one open (writer or reader) must open it again. Asks for the
 * inode alone (the log writer calls this every commit): reading a file's
 * times gives its next write a fine-grained mtime on Linux 6.13 and later,
 * and that moves the clock every file's next mtime is taken from, the WAL's
 * included (daemon/logsync.c, same_wal()).
 */
int
audit_same_file(const char *path, dev_t dev, ino_t ino)
{
	struct statx sx;

	return statx(AT_FDCWD, path, 0, STATX_INO, &sx) == 0 &&
	    makedev(sx.stx_dev_major, sx.stx_dev_minor) == dev && sx.stx_ino == ino;
}

/*
 * The seq up to which the attached index is complete, as an SQL
 * expression: NULL when the index belongs to another log. Never past the
 * log's last entry as this statement sees it: the state row is outside the
 * chain (a huge upto would make queries walk that many generations), and
 * the index may have moved on since the statement read the log.
 */
void
audit_index_upto(const struct audit *a, char *out, size_t len)
{
	char hex[33];

	hex_encode(a->log_id, 16, hex);
	snprintf(out, len, "min((SELECT max(upto) FROM subj.state WHERE log_id = "
	    "X'%s'), (SELECT coalesce(max(seq), 0) FROM main.entries))", hex);
}

/*
 * Attaches the subject index file, if there is one and it can be read, to
 * a connection about to query by subject (see audit_index_open()); one
 * attached before is kept while it is still the file at the path.
 */
void
audit_index_attach(struct audit *a)
{
	sqlite3_stmt	*st;
	char		 path[4096];
	struct stat	 sb;
	long long	 version = 0;

	audit_index_path(a->path, path, sizeof(path));
	if (a->index) {
		if (audit_same_file(path, a->index_dev, a->index_ino))
			return;
		sqlite3_exec(a->db, "DETACH DATABASE subj", NULL, NULL, NULL);
		a->index = 0;
	}
	if (stat(path, &sb) == -1 ||
	    sqlite3_prepare_v2(a->db, "ATTACH DATABASE ?1 AS subj", -1, &st, NULL) != SQLITE_OK)
		return;
	a->index_dev = sb.st_dev;
	a->index_ino = sb.st_ino;
	sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
	a->index = sqlite3_step(st) == SQLITE_DONE;
	sqlite3_finalize(st);
	if (a->index && (sqlite3_exec(a->db, "SELECT upto FROM subj.state", NULL, NULL,
	    NULL) != SQLITE_OK || audit_int_query(a, "PRAGMA subj.user_version",
	    &version) == -1 || version != INDEX_VERSION)) {
		sqlite3_exec(a->db, "DETACH DATABASE subj", NULL, NULL, NULL);
		a->index = 0;
	}
}

/*
 * The subject index. Which entries name a subject is kept in a database of
 * its own next to the log (<log>-subjects), written behind the log by
 * audit_index_update() (the daemon's checkpointer thread), never by an
 * append. It holds nothing the log does not: its state row names the log
 * (log_id) and the seq up to which it is complete, and a query by subject
 * reads it up to there and the log's own tail after that, so a missing,
 * lagging or foreign index file gives the same answers, only slower. Like
 * any SQLite index it is outside the hash chain; verify checks the entries,
 * and the index against them (audit_index_check()).
 */
int
audit_index_open(struct audit_index **out, const char *log, char *err, size_t errlen)
{
	struct audit_index	*x = xcalloc(1, sizeof(*x));
	sqlite3_stmt		*st = NULL;
	char			*path = x->path;
	struct stat		 sb;
	int			 ok = 0, version;

	*out = NULL;
	audit_index_path(log, path, sizeof(x->path));
	/*
	 * A -wal or -shm without its database is left from a deleted index:
	 * SQLite would replay that WAL into the new file.
	 */
	if (stat(path, &sb) == -1 && errno == ENOENT) {
		char side[sizeof(x->path) + 8];

		snprintf(side, sizeof(side), "%s-wal", path);
		unlink(side);
		snprintf(side, sizeof(side), "%s-shm", path);
		unlink(side);
	}
	if (sqlite3_open_v2(path, &x->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
	    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
		goto fail;
	/* Created by the open: the file audit_index_replaced() compares with. */
	if (stat(path, &sb) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		audit_index_close(x);
		return -1;
	}
	x->dev = sb.st_dev;
	x->ino = sb.st_ino;
	sqlite3_busy_timeout(x->db, DB_BUSY_MS);
	/*
	 * NORMAL: a power cut may lose the last updates, which are redone.
	 */
	if (sqlite3_exec(x->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
	    NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(x->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		goto fail;
	/* Busy or failing: give up, rather than take a good index for an old one. */
	if (sqlite3_step(st) != SQLITE_ROW)
		goto fail;
	version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	st = NULL;
	if ((version != INDEX_VERSION && sqlite3_exec(x->db, "DROP TABLE IF EXISTS "
	    "subject_index; DROP TABLE IF EXISTS state", NULL, NULL, NULL) != SQLITE_OK) ||
	    sqlite3_exec(x->db, index_schema, NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(x->db, "ATTACH DATABASE ?1 AS lg", -1, &st,
	    NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_text(st, 1, log, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto fail;
	sqlite3_finalize(st);
	if (sqlite3_prepare_v2(x->db, "SELECT value FROM lg.meta WHERE key = 'log_id'",
	    -1, &st, NULL) != SQLITE_OK)
		goto fail;
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) == 16)
		memcpy(x->log_id, sqlite3_column_blob(st, 0), 16);
	sqlite3_finalize(st);
	/*
	 * An index of another log, or of a longer past of this one (the log
	 * was restored from a backup): start again.
	 */
	if (sqlite3_prepare_v2(x->db, "SELECT count(*) FROM state WHERE log_id = ?1 "
	    "AND upto <= (SELECT coalesce(max(seq), 0) FROM lg.entries)", -1, &st,
	    NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_blob(st, 1, x->log_id, 16, SQLITE_STATIC);
	ok = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) == 1;
	sqlite3_finalize(st);
	st = NULL;
	if (!ok) {
		/* Deferred: see audit_index_update(). */
		if (sqlite3_exec(x->db, "BEGIN; DELETE FROM subject_index;",
		    NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_prepare_v2(x->db, "UPDATE state SET log_id = ?1, upto = 0",
		    -1, &st, NULL) != SQLITE_OK)
			goto fail;
		sqlite3_bind_blob(st, 1, x->log_id, 16, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE ||
		    sqlite3_exec(x->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
			goto fail;
		sqlite3_finalize(st);
	}
	*out = x;
	return 0;
fail:
	snprintf(err, errlen, "%s: %s", path, x->db ? sqlite3_errmsg(x->db) :
	    "cannot open");
	sqlite3_finalize(st);
	if (x->db != NULL && !sqlite3_get_autocommit(x->db))
		sqlite3_exec(x->db, "ROLLBACK", NULL, NULL, NULL);
	audit_index_close(x);
	return -1;
}

int
audit_index_update(struct audit_index *x, uint64_t most, uint64_t *left, char *err,
    size_t errlen)
{
	sqlite3_stmt	*st = NULL;
	sqlite3_int64	 upto = 0, top = 0, to;
	const char	*what = "begin";

	*left = 0;
	/*
	 * Deferred, not IMMEDIATE: that would take the write lock of every
	 * attached database, the log's too, and the log's writer would wait
	 * (sleeping in its busy handler) while the index is updated. Only the
	 * daemon writes the index; should anything else have written it since
	 * this read began, the insert fails (SQLITE_BUSY_SNAPSHOT) and the
	 * next update, a second later, does the work.
	 */
	if (sqlite3_exec(x->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	what = "state";
	if (sqlite3_prepare_v2(x->db, "SELECT (SELECT upto FROM state), "
	    "(SELECT coalesce(max(seq), 0) FROM lg.entries)", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW)
		goto fail;
	upto = sqlite3_column_int64(st, 0);
	top = sqlite3_column_int64(st, 1);
	sqlite3_finalize(st);
	st = NULL;
	to = top - upto > (sqlite3_int64)most ? upto + (sqlite3_int64)most : top;
	if (to > upto) {
		/* In key order, into the newest generation's pages. */
		what = "index";
		if (sqlite3_prepare_v2(x->db, "INSERT OR IGNORE INTO subject_index(gen, "
		    "subject, seq) SELECT seq / " STR(INDEX_GEN) ", subject, seq FROM "
		    "lg.entries WHERE seq > ?1 AND seq <= ?2 AND " INDEXED " ORDER BY 1, 2, 3",
		    -1, &st, NULL) != SQLITE_OK)
			goto fail;
		sqlite3_bind_int64(st, 1, upto);
		sqlite3_bind_int64(st, 2, to);
		if (sqlite3_step(st) != SQLITE_DONE)
			goto fail;
		sqlite3_finalize(st);
		st = NULL;
		what = "state";
		if (sqlite3_prepare_v2(x->db, "UPDATE state SET upto = ?1", -1, &st,
		    NULL) != SQLITE_OK)
			goto fail;
		sqlite3_bind_int64(st, 1, to);
		if (sqlite3_step(st) != SQLITE_DONE)
			goto fail;
		sqlite3_finalize(st);
		st = NULL;
	}
	what = "commit";
	if (sqlite3_exec(x->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	*left = (uint64_t)(top - to);
	return 0;
fail:
	/* The message first: finalizing and rolling back would replace it. */
	errorf(err, errlen, "%s: %s", what, sqlite3_errmsg(x->db));
	sqlite3_finalize(st);
	if (!sqlite3_get_autocommit(x->db))
		sqlite3_exec(x->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

int
audit_index_remembers(const char *log, unsigned char log_id[16], uint64_t *upto)
{
	sqlite3		*db = NULL;
	sqlite3_stmt	*st = NULL;
	char		 path[4096];
	struct stat	 sb;
	int		 rc = 0;

	audit_index_path(log, path, sizeof(path));
	if (stat(path, &sb) == -1)
		return 0;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT log_id, upto FROM state WHERE id = 1", -1,
	    &st, NULL) != SQLITE_OK)
		rc = -1;
	else if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) == 16) {
		memcpy(log_id, sqlite3_column_blob(st, 0), 16);
		*upto = (uint64_t)sqlite3_column_int64(st, 1);
		rc = 1;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}

int
audit_index_replaced(struct audit_index *x)
{
	return !audit_same_file(x->path, x->dev, x->ino);
}

void
audit_index_close(struct audit_index *x)
{
	if (x == NULL)
		return;
	sqlite3_close(x->db);
	free(x);
}

int
audit_index_check(struct audit *a, uint64_t *upto, uint64_t *missing, uint64_t *extra,
    char *err, size_t errlen)
{
	sqlite3_stmt	*st;
	char		*sql, u[256];
	int		 rc;

	*upto = *missing = *extra = 0;
	audit_index_attach(a);
	if (!a->index)
		return 1;
	audit_index_upto(a, u, sizeof(u));
	/*
	 * Both ways: entries the index lacks, and index rows the log lacks (a
	 * row filed under the wrong generation is both: queries miss it).
	 */
	sql = sqlite3_mprintf("WITH u(n) AS (SELECT %s), l AS (SELECT seq / "
	    STR(INDEX_GEN) " AS gen, subject, seq FROM main.entries, u WHERE "
	    "seq <= u.n AND " INDEXED "), x AS (SELECT gen, subject, seq FROM "
	    "subj.subject_index, u WHERE seq <= u.n) SELECT (SELECT n FROM u), "
	    "(SELECT count(*) FROM (SELECT * FROM l EXCEPT SELECT * FROM x)), "
	    "(SELECT count(*) FROM (SELECT * FROM x EXCEPT SELECT * FROM l))", u);
	if (sql == NULL)
		return errorf(err, errlen, "index check: out of memory");
	rc = sqlite3_prepare_v2(a->db, sql, -1, &st, NULL);
	sqlite3_free(sql);
	if (rc != SQLITE_OK)
		return audit_sqlerr(a, "index check", err, errlen);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (sqlite3_column_type(st, 0) == SQLITE_NULL) {
			sqlite3_finalize(st);
			return 1;	/* another log's: queries do not use it */
		}
		*upto = (uint64_t)sqlite3_column_int64(st, 0);
		*missing = (uint64_t)sqlite3_column_int64(st, 1);
		*extra = (uint64_t)sqlite3_column_int64(st, 2);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : audit_sqlerr(a, "index check", err, errlen);
}

int
audit_verify_index(struct audit *a, struct audit_verify_result *res)
{
	int rc;

	/* The reason is part of the verdict (docs/hacking.md "Errors"). */
	res->index_why[0] = '\0';
	rc = audit_index_check(a, &res->index_upto, &res->index_missing,
	    &res->index_extra, res->index_why, sizeof(res->index_why));
	res->index_checked = rc == 0;
	res->index_error = rc == -1;
	return rc == -1 ? -1 : 0;
}
