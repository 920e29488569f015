#include <sqlite3.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "person.h"
#include "store.h"
#include "store_cache.h"
#include "store_int.h"
#include "util.h"
#include "yamlutil.h"

static const char *const queries[Q_COUNT] = {
	/* The subject's person too, for Q_FLAGS: the subject row is read anyway. */
	[Q_RECORD] = "SELECT r.verified_at, s.holder, s.person FROM records r "
	    "JOIN subjects s INDEXED BY subjects_read ON s.id = r.subject "
	    "WHERE r.subject = ?1 AND r.record_type = ?2",
	[Q_FIELDS] = "SELECT field, value FROM record_fields "
	    "WHERE subject = ?1 AND record_type = ?2",
	/*
	 * The latest decision recorded whose scope covers this agency and
	 * purpose (D3). A holder's `decided` date is history, not order: a
	 * holder importing past decisions sends them oldest first.
	 */
	[Q_CONSENT] = "SELECT state, expires_at FROM consents WHERE subject = ?1 "
	    "AND (agencies = '*' OR instr(',' || agencies || ',', ',' || ?2 || ',') > 0) "
	    "AND (purposes = '*' OR instr(',' || purposes || ',', ',' || ?3 || ',') > 0) "
	    "ORDER BY id DESC LIMIT 1",
	/*
	 * D12, D18: flags belong to the person, whichever holder set them, so
	 * a police domestic_abuse flag withholds the address health holds.
	 * ?1 is the person Q_RECORD read (not the subject again: two seeks
	 * fewer), active flags come from the partial index flags_active, and
	 * a flag two holders set comes twice: subject_read() keeps one (no
	 * DISTINCT, whose temporary B-tree showed in the loop's profile).
	 */
	[Q_FLAGS] = "SELECT f.flag FROM subjects b JOIN flags f ON f.subject = b.id "
	    "WHERE b.person = ?1 AND f.removed_at IS NULL",
	/* A new subject is a person of its own until it links an NHS number. */
	[Q_PUT_PERSON] = "INSERT INTO persons(id) SELECT NULL "
	    "WHERE NOT EXISTS (SELECT 1 FROM subjects WHERE id = ?1)",
	[Q_PUT_SUBJECT] = "INSERT INTO subjects(id, holder, person) "
	    "VALUES (?1, ?2, last_insert_rowid()) ON CONFLICT(id) DO NOTHING",
	[Q_PUT_RECORD] = "INSERT INTO records(subject, record_type, holder, verified_at) "
	    "VALUES (?1, ?2, ?3, ?4) ON CONFLICT(subject, record_type) DO UPDATE SET "
	    "holder = excluded.holder, verified_at = excluded.verified_at",
	[Q_DEL_FIELDS] = "DELETE FROM record_fields WHERE subject = ?1 AND record_type = ?2",
	[Q_PUT_FIELD] = "INSERT INTO record_fields(subject, record_type, field, value) "
	    "VALUES (?1, ?2, ?3, ?4)",
	[Q_ADD_CONSENT] = "INSERT INTO consents(subject, state, agencies, purposes, "
	    "expires_at, recorded_by, recorded_at, decided_at) "
	    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
	[Q_SET_FLAG] = "INSERT INTO flags(subject, flag, set_by, set_at) "
	    "VALUES (?1, ?2, ?3, ?4)",
	[Q_OWNER] = "SELECT holder FROM subjects WHERE id = ?1",
	[Q_DEL_RECORD] = "DELETE FROM records WHERE subject = ?1 AND record_type = ?2",
	[Q_FLAG_ACTIVE] = "SELECT count(*) FROM flags WHERE subject = ?1 AND flag = ?2 "
	    "AND removed_at IS NULL",
	/* Removal is recorded, never erased (D12). */
	[Q_UNFLAG] = "UPDATE flags SET removed_by = ?3, removed_at = ?4 "
	    "WHERE subject = ?1 AND flag = ?2 AND removed_at IS NULL",
	[Q_MARK_BATCH] = "INSERT INTO holder_batches(request_id, first_seq, applied_at) "
	    "VALUES (?1, ?2, ?3)",
	[Q_BATCH_APPLIED] = "SELECT count(*) FROM holder_batches WHERE request_id = ?1",
	[Q_NOTE_LOAD] = "INSERT INTO store_loads(file, subjects, loaded_at) "
	    "VALUES (?1, ?2, ?3)",
	[Q_UNLOGGED_LOADS] = "SELECT id, file, subjects, loaded_at FROM store_loads "
	    "WHERE logged_seq = 0 ORDER BY id",
	[Q_LOAD_LOGGED] = "UPDATE store_loads SET logged_seq = ?2 WHERE id = ?1",
	[Q_READ_BEGIN] = "BEGIN",
	[Q_READ_END] = "COMMIT",
	/* Changes when another connection commits (store_cache.c). */
	[Q_DATA_VERSION] = "PRAGMA data_version",
	/* The subject's latest decision of any scope, for same-as-latest checks. */
	[Q_LAST_CONSENT] = "SELECT state, agencies, purposes, expires_at, decided_at "
	    "FROM consents "
	    "WHERE subject = ?1 ORDER BY id DESC LIMIT 1",
	[Q_RECORD_ROW] = "SELECT holder, verified_at FROM records "
	    "WHERE subject = ?1 AND record_type = ?2",
	/* `holder show` (store_show()): newest history first, bounded by ?2. */
	[Q_SHOW_RECORDS] = "SELECT record_type, verified_at FROM records "
	    "WHERE subject = ?1 ORDER BY record_type",
	[Q_SHOW_FIELDS] = "SELECT record_type, field, value FROM record_fields "
	    "WHERE subject = ?1 ORDER BY record_type, field",
	[Q_SHOW_CONSENTS] = "SELECT state, agencies, purposes, expires_at, decided_at, "
	    "recorded_by, recorded_at FROM consents WHERE subject = ?1 "
	    "ORDER BY id DESC LIMIT ?2",
	[Q_SHOW_FLAGS] = "SELECT flag, set_by, set_at, removed_by, removed_at FROM flags "
	    "WHERE subject = ?1 ORDER BY id DESC LIMIT ?2",
};

/* Schema migrations, applied in order; PRAGMA user_version is the index reached. */
static const char *const migrations[] = {
	"CREATE TABLE subjects(id TEXT PRIMARY KEY, holder TEXT NOT NULL);"
	"CREATE TABLE records(subject TEXT NOT NULL REFERENCES subjects(id),"
	"  record_type TEXT NOT NULL, holder TEXT NOT NULL, verified_at INTEGER NOT NULL,"
	"  PRIMARY KEY(subject, record_type));"
	"CREATE TABLE record_fields(subject TEXT NOT NULL, record_type TEXT NOT NULL,"
	"  field TEXT NOT NULL, value TEXT NOT NULL,"
	"  PRIMARY KEY(subject, record_type, field));"
	"CREATE TABLE consents(id INTEGER PRIMARY KEY, subject TEXT NOT NULL,"
	"  state TEXT NOT NULL CHECK(state IN ('granted','refused','withdrawn')),"
	"  agencies TEXT NOT NULL, purposes TEXT NOT NULL, expires_at INTEGER,"
	"  recorded_by TEXT NOT NULL, recorded_at INTEGER NOT NULL);"
	"CREATE INDEX consents_subject ON consents(subject, id);"
	"CREATE TABLE flags(id INTEGER PRIMARY KEY, subject TEXT NOT NULL,"
	"  flag TEXT NOT NULL, set_by TEXT NOT NULL, set_at INTEGER NOT NULL,"
	"  removed_by TEXT, removed_at INTEGER);"
	"CREATE INDEX flags_subject ON flags(subject);",
	/* Holder batches applied, by the request id their log entries carry. */
	"CREATE TABLE holder_batches(request_id TEXT PRIMARY KEY,"
	"  first_seq INTEGER NOT NULL, applied_at INTEGER NOT NULL);",
	/*
	 * Read speed (issue 7): records and their fields clustered by their
	 * primary key (WITHOUT ROWID), so a record is one B-tree seek and its
	 * fields one range scan, not an index seek plus a table seek per row;
	 * active flags in a covering index in flag order. (Since flags belong
	 * to the person, D18, Q_FLAGS reads it for each of the person's
	 * subjects.)
	 */
	"CREATE TABLE records_v3(subject TEXT NOT NULL REFERENCES subjects(id),"
	"  record_type TEXT NOT NULL, holder TEXT NOT NULL, verified_at INTEGER NOT NULL,"
	"  PRIMARY KEY(subject, record_type)) WITHOUT ROWID;"
	"INSERT INTO records_v3 SELECT subject, record_type, holder, verified_at FROM records;"
	"DROP TABLE records;"
	"ALTER TABLE records_v3 RENAME TO records;"
	"CREATE TABLE record_fields_v3(subject TEXT NOT NULL, record_type TEXT NOT NULL,"
	"  field TEXT NOT NULL, value TEXT NOT NULL,"
	"  PRIMARY KEY(subject, record_type, field)) WITHOUT ROWID;"
	"INSERT INTO record_fields_v3 SELECT subject, record_type, field, value "
	"  FROM record_fields;"
	"DROP TABLE record_fields;"
	"ALTER TABLE record_fields_v3 RENAME TO record_fields;"
	"CREATE INDEX flags_active ON flags(subject, flag) WHERE removed_at IS NULL;",
	/*
	 * Issue 15: the day a consent decision was made, when the holder gave
	 * it (an import of historical decisions); NULL: when it was recorded.
	 */
	"ALTER TABLE consents ADD COLUMN decided_at INTEGER;",
	/*
	 * Issue 15: a store has an id, so the disclosure log can say which
	 * store each holder batch was applied to and a replaced store is not
	 * mistaken for the old one. created_at: 0 for a store that existed
	 * before (its past is unknown); store_open() sets it for a new file.
	 * store_loads: data files loaded with -l, until the daemon has logged
	 * them (logged_seq, the log entry's seq).
	 */
	"CREATE TABLE store_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
	"INSERT INTO store_meta(key, value) VALUES"
	"  ('store_id', lower(hex(randomblob(16)))), ('created_at', '0');"
	"CREATE TABLE store_loads(id INTEGER PRIMARY KEY, file TEXT NOT NULL,"
	"  subjects INTEGER NOT NULL, loaded_at INTEGER NOT NULL,"
	"  logged_seq INTEGER NOT NULL DEFAULT 0);",
	/*
	 * Issue 13 item 5: the disclosure log this store is used with and the
	 * largest size the daemon has seen it at, so a log deleted together
	 * with its subject index is not silently replaced by an empty one.
	 * No row: a store from before this (or never used by the daemon).
	 */
	"CREATE TABLE store_log(id INTEGER PRIMARY KEY CHECK(id = 1),"
	"  log_id BLOB NOT NULL CHECK(length(log_id) = 16),"
	"  size INTEGER NOT NULL);",
	/*
	 * Issue 17 (D18): one person, many holders. A subject is one holder's
	 * view of a person under its local id; subjects that link the same NHS
	 * number share a person, every other subject is a person of its own
	 * (so each existing subject gets one). A holder holds a person under
	 * one local id. family, given, dob and postcode are what a subject is
	 * found by (docs/matching.md), family_key the normalised family name
	 * for the index; person_migrate_details() fills them from each
	 * subject's `person` record.
	 */
	"CREATE TABLE persons(id INTEGER PRIMARY KEY);"
	"ALTER TABLE subjects ADD COLUMN person INTEGER REFERENCES persons(id);"
	"ALTER TABLE subjects ADD COLUMN nhs_number TEXT CHECK(nhs_number IS NULL OR"
	"  (length(nhs_number) = 10 AND nhs_number NOT GLOB '*[^0-9]*'));"
	"ALTER TABLE subjects ADD COLUMN family TEXT;"
	"ALTER TABLE subjects ADD COLUMN given TEXT;"
	"ALTER TABLE subjects ADD COLUMN dob TEXT;"
	"ALTER TABLE subjects ADD COLUMN postcode TEXT;"
	"ALTER TABLE subjects ADD COLUMN family_key TEXT;"
	"INSERT INTO persons(id) SELECT rowid FROM subjects;"
	"UPDATE subjects SET person = rowid;"
	"CREATE UNIQUE INDEX subjects_person_holder ON subjects(person, holder);"
	"CREATE INDEX subjects_nhs ON subjects(nhs_number) WHERE nhs_number IS NOT NULL;"
	"CREATE INDEX subjects_find ON subjects(family_key, dob) "
	"  WHERE family_key IS NOT NULL;",
	/*
	 * Issue 13, the event loop's CPU per disclosure: the subject row a
	 * disclosure reads (Q_RECORD: holder and person by id) and a person's
	 * subjects (Q_FLAGS: ids by person) from covering indexes, two table
	 * seeks fewer per store_subject().
	 */
	"CREATE INDEX subjects_read ON subjects(id, holder, person);"
	"CREATE INDEX subjects_person_id ON subjects(person, id);",
};

/* Steps in C after a migration's SQL, in its transaction (index: migration). */
static int (*const migration_steps[])(struct store *, char *, size_t) = {
	[6] = person_migrate_details,
};

int
store_sqlerr(struct store *s, char *err, size_t errlen, const char *what)
{
	return errorf(err, errlen, "%s: %s", what, sqlite3_errmsg(s->db));
}

sqlite3 *
store_db(struct store *s)
{
	return s->db;
}

sqlite3_stmt **
store_person_stmts(struct store *s)
{
	return s->pq;
}

int
store_schema_version(void)
{
	return (int)(sizeof(migrations) / sizeof(migrations[0]));
}

/*
 * Applies pending migrations, each in its own transaction; *fresh is set
 * when the file had none (a new store). 0, or -1 with err: a migration's
 * SQL says "migration: sqlite's message", a step in C its own.
 */
static int
migrate(struct store *s, int *fresh, char *err, size_t errlen)
{
	sqlite3_stmt	*st;
	int		 version = 0;
	size_t		 n = sizeof(migrations) / sizeof(migrations[0]);
	size_t		 nsteps = sizeof(migration_steps) / sizeof(migration_steps[0]);

	if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		return store_sqlerr(s, err, errlen, "user_version");
	if (sqlite3_step(st) == SQLITE_ROW)
		version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	*fresh = version == 0;
	if (version > (int)n)
		return errorf(err, errlen, "store schema version %d is newer than "
		    "this program (%zu)", version, n);
	for (size_t i = (size_t)version; i < n; i++) {
		char pragma[64];

		snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %zu", i + 1);
		if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_exec(s->db, migrations[i], NULL, NULL, NULL) != SQLITE_OK)
			goto sqlfail;
		if (i < nsteps && migration_steps[i] != NULL &&
		    migration_steps[i](s, err, errlen) == -1)
			goto fail;
		if (sqlite3_exec(s->db, pragma, NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
			goto sqlfail;
	}
	return 0;
 sqlfail:
	store_sqlerr(s, err, errlen, "migration");
 fail:
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/*
 * Reads the store's id and creation time; a store made by this open gets
 * created_at = now, so the log's holder batches from before it are known
 * not to be its own.
 */
static int
load_meta(struct store *s, int fresh, char *err, size_t errlen)
{
	sqlite3_stmt	*st;
	int		 rc;

	if (fresh) {
		char sql[128];

		snprintf(sql, sizeof(sql), "UPDATE store_meta SET value = '%lld' "
		    "WHERE key = 'created_at'", (long long)time(NULL));
		if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
			return store_sqlerr(s, err, errlen, "store_meta");
	}
	if (sqlite3_prepare_v2(s->db, "SELECT key, value FROM store_meta", -1, &st,
	    NULL) != SQLITE_OK)
		return store_sqlerr(s, err, errlen, "store_meta");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *k = (const char *)sqlite3_column_text(st, 0);
		const char *v = (const char *)sqlite3_column_text(st, 1);

		if (k == NULL || v == NULL)
			continue;
		if (strcmp(k, "store_id") == 0)
			snprintf(s->id, sizeof(s->id), "%s", v);
		else if (strcmp(k, "created_at") == 0)
			s->created_at = strtoll(v, NULL, 10);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return store_sqlerr(s, err, errlen, "store_meta");
	if (strlen(s->id) != STORE_ID_LEN)
		return errorf(err, errlen, "store_meta: no store id");
	return 0;
}

/*
 * The steps say why into why, without the path; err gets "path: why", as
 * the daemon, `safeshared -l` and the tests print it.
 */
int
store_open(struct store **out, const char *path, char *err, size_t errlen)
{
	struct store	*s = xcalloc(1, sizeof(*s));
	char		 why[256] = "";
	int		 fresh = 0;

	*out = NULL;
	if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
	    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		snprintf(why, sizeof(why), "%s", s->db ? sqlite3_errmsg(s->db) :
		    "cannot open");
		goto fail;
	}
	sqlite3_busy_timeout(s->db, DB_BUSY_MS);
	/*
	 * FULL: a holder write acknowledged is on disk, power cut or not.
	 * mmap: reads of a store larger than the page cache skip pread(2).
	 */
	if (sqlite3_exec(s->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
	    "PRAGMA mmap_size=268435456;"
	    "PRAGMA foreign_keys=ON", NULL, NULL, NULL) != SQLITE_OK) {
		store_sqlerr(s, why, sizeof(why), "pragma");
		goto fail;
	}
	if (migrate(s, &fresh, why, sizeof(why)) == -1 ||
	    load_meta(s, fresh, why, sizeof(why)) == -1)
		goto fail;
	for (int i = 0; i < Q_COUNT; i++)
		if (sqlite3_prepare_v3(s->db, queries[i], -1, SQLITE_PREPARE_PERSISTENT,
		    &s->q[i], NULL) != SQLITE_OK) {
			store_sqlerr(s, why, sizeof(why), "prepare");
			goto fail;
		}
	if (person_prepare(s, why, sizeof(why)) == -1)
		goto fail;
	s->cache = scache_new();
	*out = s;
	return 0;
 fail:
	errorf(err, errlen, "%s: %s", path, why);
	store_close(s);
	return -1;
}

void
store_cache_stats(const struct store *s, struct store_cache_stats *st)
{
	scache_stats(s->cache, st);
}

void
store_close(struct store *s)
{
	if (s == NULL)
		return;
	store_read_end(s);
	for (int i = 0; i < Q_COUNT; i++)
		sqlite3_finalize(s->q[i]);
	for (int i = 0; i < STORE_PERSON_STMTS; i++)
		sqlite3_finalize(s->pq[i]);
	sqlite3_close(s->db);
	scache_free(s->cache);
	free(s);
}

/*
 * Issue 13 item 5: what the store at path remembers of its disclosure log,
 * read-only (safeshared -t must not create or migrate the store). A store
 * from before the store_log table remembers nothing.
 */
int
store_log_memory(const char *path, unsigned char log_id[16], uint64_t *size,
    char *err, size_t errlen)
{
	sqlite3		*db = NULL;
	sqlite3_stmt	*st = NULL;
	int		 rc = 0, version = 0;

	if (access(path, F_OK) == -1)
		return 0;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_busy_timeout(db, DB_BUSY_MS);
	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		goto fail;
	if (sqlite3_step(st) == SQLITE_ROW)
		version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	st = NULL;
	if (version < STORE_LOG_VERSION)
		goto done;
	if (sqlite3_prepare_v2(db, "SELECT log_id, size FROM store_log WHERE id = 1",
	    -1, &st, NULL) != SQLITE_OK)
		goto fail;
	switch (sqlite3_step(st)) {
	case SQLITE_ROW:
		if (sqlite3_column_bytes(st, 0) != 16)
			goto fail;
		memcpy(log_id, sqlite3_column_blob(st, 0), 16);
		*size = (uint64_t)sqlite3_column_int64(st, 1);
		rc = 1;
		break;
	case SQLITE_DONE:
		break;
	default:
		goto fail;
	}
 done:
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
 fail:
	snprintf(err, errlen, "%s: reading which log it was used with: %s", path,
	    db ? sqlite3_errmsg(db) : "cannot open");
	sqlite3_finalize(st);
	sqlite3_close(db);
	return -1;
}

/*
 * The daemon's note of the log it uses: the size only grows for the same
 * log; another log_id (a start with -N) replaces the row. wait == 0: give
 * up at once if a holder batch holds the write lock (the periodic note on
 * the event loop must not stall it); the next one catches up.
 */
int
store_remember_log(struct store *s, const unsigned char log_id[16], uint64_t size,
    int wait, char *err, size_t errlen)
{
	sqlite3_stmt	*st;
	int		 rc;

	if (!wait)
		sqlite3_busy_timeout(s->db, 0);
	if (sqlite3_prepare_v2(s->db, "INSERT INTO store_log(id, log_id, size) "
	    "VALUES (1, ?1, ?2) ON CONFLICT(id) DO UPDATE SET "
	    "size = CASE WHEN log_id = excluded.log_id "
	    "THEN max(size, excluded.size) ELSE excluded.size END, "
	    "log_id = excluded.log_id", -1, &st, NULL) != SQLITE_OK) {
		rc = store_sqlerr(s, err, errlen, "store_log");
		goto out;
	}
	sqlite3_bind_blob(st, 1, log_id, 16, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)size);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 :
	    store_sqlerr(s, err, errlen, "store_log");
	sqlite3_finalize(st);
 out:
	if (!wait)
		sqlite3_busy_timeout(s->db, DB_BUSY_MS);
	return rc;
}

/* A start with -N: the log remembered is given up, with the old one's size. */
int
store_forget_log(struct store *s, char *err, size_t errlen)
{
	if (sqlite3_exec(s->db, "DELETE FROM store_log", NULL, NULL, NULL) != SQLITE_OK)
		return store_sqlerr(s, err, errlen, "store_log");
	return 0;
}
