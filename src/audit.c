/*
 * The disclosure log's writer and reader: opening (schema and upgrades),
 * the group commit that appends entries, tree nodes and the checkpoint in
 * one transaction, reading entries back, and the WAL checkpointer. The
 * entry's own format is in audit_entry.c; the tree in audit_tree.c;
 * signing keys and the start-up check in audit_start.c; queries in
 * audit_query.c; verification in audit_verify.c; the subject index in
 * audit_index.c. See audit.h and docs/audit-format.md.
 */
#define _GNU_SOURCE		/* O_PATH */

#include <sys/stat.h>

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sqlite3.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "audit_int.h"
#include "log.h"
#include "merkle.h"
#include "note.h"
#include "util.h"

/* The text columns are audit_fields.h's, in its order. */
#define TEXT_COLUMN(name)	" " #name " TEXT,"
static const char *const schema =
    "CREATE TABLE entries(seq INTEGER PRIMARY KEY, time INTEGER NOT NULL,"
    AUDIT_STRING_FIELDS(TEXT_COLUMN)
    " ref_seq INTEGER NOT NULL DEFAULT 0,"
    " prev_hash BLOB NOT NULL, hash BLOB NOT NULL);"
    "CREATE INDEX entries_ref ON entries(ref_seq) WHERE ref_seq != 0;"
    "CREATE INDEX entries_override ON entries(seq) WHERE override_code != '' "
    " AND kind = 'disclosure' AND decision != 'deny';"
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value BLOB NOT NULL);"
    "CREATE TABLE checkpoints(id INTEGER PRIMARY KEY, size INTEGER NOT NULL,"
    " head_hash BLOB NOT NULL, time INTEGER NOT NULL, signature BLOB NOT NULL,"
    " root BLOB, note TEXT);"
    "CREATE TABLE tree(level INTEGER NOT NULL, idx INTEGER NOT NULL,"
    " hash BLOB NOT NULL, PRIMARY KEY(level, idx)) WITHOUT ROWID;"
    "PRAGMA user_version = 3;";

/*
 * No index on time in a log created since: the writer dates no entry
 * before the one before it (monotonic(), D7), so seq order is time order
 * and a time window is a seq range (audit_query.c); the index cost every
 * commit one to two more WAL pages (of about fifteen) to write, sync and
 * copy. A log created before keeps its entries_time (it may hold entries
 * dated out of order from before the clock rule) and is filtered by it.
 */

/*
 * Nor an index on agency, in a log created since: an index is appended to
 * at its right edge, where SQLite splits the last leaf by sharing it out
 * over three siblings and their parent, so entries_agency (agency, seq)
 * cost every group commit 2.2 to 2.9 of its ~16 WAL pages (BENCHMARKS.md,
 * "The log's commit cycle"), each written, synced and copied. A query by
 * agency reads the entries instead, within the seq range of its time
 * window (audit_query.c), at one to three million a second. A log created
 * before keeps its entries_agency, which SQLite uses as before.
 */

/*
 * Nor an index on the checkpoints' size, in a log created since: the
 * writer appends one checkpoint per group commit, each larger than the one
 * before (audit_commit()), so the order of their ids is the order of their
 * sizes, and the checkpoint of a size is found by a binary search of the
 * ids (audit_query.c). Appended at its right edge, checkpoints_size cost
 * every commit one more WAL page (of about thirteen) to write, sync and
 * copy. Such a log's checkpoints are read and verified in id order, and a
 * size out of that order fails verify. A log created before keeps the
 * index and its checkpoints are read by size as before (a->cp_by_id).
 */

/*
 * Version 2 moved the index by subject out of the log (see audit_index_*
 * below): each append dirtied one random leaf of entries_subject per
 * entry, two thirds of the pages every commit wrote and synced.
 */
static const char *const upgrade_1_to_2 =
    "DROP INDEX IF EXISTS entries_subject;"
    "PRAGMA user_version = 2;";

/*
 * Version 3 adds the Merkle tree (table tree, built once from the entries
 * by the first writer to open the log, see audit_tree_sync()) and checkpoints as
 * signed notes over it (note, root). v3_from records the size the log had
 * then: the only size at which a log may have entries and no tree
 * checkpoint (the start-up check signs one over it).
 */
static const char *const upgrade_2_to_3 =
    "ALTER TABLE checkpoints ADD COLUMN root BLOB;"
    "ALTER TABLE checkpoints ADD COLUMN note TEXT;"
    "CREATE INDEX checkpoints_size ON checkpoints(size);"
    "CREATE TABLE tree(level INTEGER NOT NULL, idx INTEGER NOT NULL,"
    " hash BLOB NOT NULL, PRIMARY KEY(level, idx)) WITHOUT ROWID;"
    "INSERT INTO meta(key, value) VALUES ('v3_from',"
    " (SELECT coalesce(max(seq), 0) FROM entries));"
    "PRAGMA user_version = 3;";

int
audit_sqlerr(struct audit *a, const char *what, char *err, size_t errlen)
{
	return errorf(err, errlen, "%s: %s", what, sqlite3_errmsg(a->db));
}

uint64_t
audit_size(struct audit *a)
{
	return a->size;
}

void
audit_log_id(struct audit *a, unsigned char out[16])
{
	memcpy(out, a->log_id, 16);
}

int
audit_int_query(struct audit *a, const char *sql, long long *out)
{
	sqlite3_stmt	*st;
	int		 rc;

	if (sqlite3_prepare_v2(a->db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

/* Loads the head of the chain, the log id and the last checkpoint: 0 or -1 with err. */
static int
load_state(struct audit *a, char *err, size_t errlen)
{
	sqlite3_stmt	*st;
	long long	 v = 0;

	if (sqlite3_prepare_v2(a->db, "SELECT seq, hash FROM entries ORDER BY seq "
	    "DESC LIMIT 1", -1, &st, NULL) != SQLITE_OK)
		return audit_sqlerr(a, "head", err, errlen);
	if (sqlite3_step(st) == SQLITE_ROW) {
		a->size = (uint64_t)sqlite3_column_int64(st, 0);
		if (sqlite3_column_bytes(st, 1) == 32)
			memcpy(a->head, sqlite3_column_blob(st, 1), 32);
	}
	sqlite3_finalize(st);
	if (sqlite3_prepare_v2(a->db, "SELECT value FROM meta WHERE key = 'log_id'",
	    -1, &st, NULL) != SQLITE_OK)
		return audit_sqlerr(a, "log id", err, errlen);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) == 16)
		memcpy(a->log_id, sqlite3_column_blob(st, 0), 16);
	sqlite3_finalize(st);
	/* Without checkpoints_size, the last by id is the largest (audit_commit()). */
	if (audit_int_query(a, a->cp_by_id ? "SELECT coalesce(max(size), 0) FROM "
	    "(SELECT size FROM checkpoints ORDER BY id DESC LIMIT 1)" :
	    "SELECT coalesce(max(size), 0) FROM checkpoints", &v) == -1)
		return audit_sqlerr(a, "checkpoints", err, errlen);
	a->cp_size = (uint64_t)v;
	v = 0;
	if (audit_int_query(a, a->cp_by_id ? "SELECT coalesce(max(time), 0) FROM "
	    "(SELECT time FROM checkpoints ORDER BY id DESC LIMIT 1)" :
	    "SELECT coalesce(max(time), 0) FROM checkpoints", &v) == -1)
		return audit_sqlerr(a, "checkpoints", err, errlen);
	a->cp_time = v;
	v = 0;
	if (audit_int_query(a, "SELECT coalesce(max(time), 0) FROM entries WHERE seq = "
	    "(SELECT max(seq) FROM entries)", &v) == -1)
		return audit_sqlerr(a, "head", err, errlen);
	a->last_time = v;
	free(a->note);
	a->note = NULL;
	a->cp_n = 0;
	a->cp_tree_size = 0;
	if (audit_checkpoint_note(a, 0, &a->note, err, errlen) == -1)
		return -1;
	if (a->note != NULL) {
		struct cpnote	 c;
		char		 why[128];

		if (audit_note_parse(a->note, &c, why, sizeof(why)) == -1)
			return errorf(err, errlen, "the last checkpoint: %s", why);
		a->cp_n = c.n;
		a->cp_tree_size = c.size;
	}
	return 0;
}

static int
open_common(struct audit **out, const char *path, int readonly, char *err,
    size_t errlen)
{
	struct audit	*a = xcalloc(1, sizeof(*a));
	long long	 version = 0;
	int		 flags = readonly ? SQLITE_OPEN_READONLY :
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
	char		 why[256];

	*out = NULL;
	a->fd = -1;
	a->path = xstrdup(path);
	if (sqlite3_open_v2(path, &a->db, flags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		errorf(err, errlen, "%s: %s", path, a->db ? sqlite3_errmsg(a->db) :
		    "cannot open");
		goto fail;
	}
	sqlite3_busy_timeout(a->db, DB_BUSY_MS);
	/* Durable on commit: WAL with synchronous=FULL fsyncs the WAL on COMMIT. */
	if (!readonly && sqlite3_exec(a->db, "PRAGMA journal_mode=WAL; "
	    "PRAGMA synchronous=FULL", NULL, NULL, NULL) != SQLITE_OK)
		goto dberr;
	if (audit_int_query(a, "PRAGMA user_version", &version) == -1)
		goto dberr;
	if (version >= 1 && version < 3 && readonly) {
		/* The version-2 layout lacks the tree: read it as it is. */
	} else if (version == 0 && readonly) {
		errorf(err, errlen, "%s: not a safeshare disclosure log", path);
		goto fail;
	}
	if (version == 0) {
		unsigned char id[16];

		RAND_bytes(id, sizeof(id));
		if (sqlite3_exec(a->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_exec(a->db, schema, NULL, NULL, NULL) != SQLITE_OK)
			goto dberr;
		{
			sqlite3_stmt *st;

			if (sqlite3_prepare_v2(a->db, "INSERT INTO meta(key, value) "
			    "VALUES ('log_id', ?1)", -1, &st, NULL) != SQLITE_OK)
				goto dberr;
			sqlite3_bind_blob(st, 1, id, 16, SQLITE_STATIC);
			if (sqlite3_step(st) != SQLITE_DONE) {
				sqlite3_finalize(st);
				goto dberr;
			}
			sqlite3_finalize(st);
		}
		if (sqlite3_exec(a->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
			goto dberr;
	} else if ((version == 1 || version == 2) && !readonly) {
		if (sqlite3_exec(a->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK ||
		    (version == 1 && sqlite3_exec(a->db, upgrade_1_to_2, NULL, NULL,
		    NULL) != SQLITE_OK) ||
		    sqlite3_exec(a->db, upgrade_2_to_3, NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_exec(a->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
			errorf(err, errlen, "%s: %s", path, sqlite3_errmsg(a->db));
			sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
			goto fail;
		}
		a->migrated = 1;
	} else if (version > AUDIT_SCHEMA_VERSION) {
		errorf(err, errlen, "%s: log schema version %lld is newer than this "
		    "program", path, version);
		goto fail;
	}
	a->legacy = version >= 1 && version < 3 && readonly;
	{
		long long v = 0;

		if (audit_int_query(a, "SELECT count(*) FROM sqlite_master WHERE "
		    "type = 'index' AND name = 'entries_time'", &v) == -1)
			goto dberr;
		a->time_index = v > 0;
		v = 0;
		if (audit_int_query(a, "SELECT count(*) FROM sqlite_master WHERE "
		    "type = 'index' AND name = 'checkpoints_size'", &v) == -1)
			goto dberr;
		a->cp_by_id = v == 0 && !a->legacy;
	}
	if (load_state(a, why, sizeof(why)) == -1) {
		errorf(err, errlen, "%s: %s", path, why);
		goto fail;
	}
	/*
	 * The review queue's second half (denied requests that invoked an
	 * override, D15), added to logs of any version when a writer opens.
	 */
	if (!readonly && sqlite3_exec(a->db, "CREATE INDEX IF NOT EXISTS "
	    "entries_refused ON entries(seq) WHERE " OVERRIDE_REFUSED, NULL, NULL,
	    NULL) != SQLITE_OK)
		goto dberr;
	/*
	 * The daemon's start asks for the last store entry and the holder
	 * batches (storelog.c, holder_reconcile.c); without these two small
	 * indexes each was a scan of the whole log, seconds for a log of a
	 * million entries read cold. Built once, on the first writer's open.
	 */
	if (!readonly && sqlite3_exec(a->db, AUDIT_RARE_KIND_INDEXES, NULL, NULL,
	    NULL) != SQLITE_OK)
		goto dberr;
	{
		struct stat sb;

		/*
		 * The file audit_file_gone() compares with: its device and
		 * inode, and an O_PATH descriptor on it for its link count.
		 * O_PATH, because closing any other descriptor on the file
		 * would drop the POSIX locks SQLite holds on it in this
		 * process; Linux does not touch locks when an O_PATH one
		 * closes. Without O_PATH only the path is compared.
		 */
#ifdef O_PATH
		a->fd = open(path, O_PATH | O_CLOEXEC);
#endif
		if ((a->fd != -1 ? fstat(a->fd, &sb) : stat(path, &sb)) == 0) {
			a->dev = sb.st_dev;
			a->ino = sb.st_ino;
		}
	}
	if (!readonly) {
		if (sqlite3_prepare_v3(a->db, audit_insert_sql, -1, SQLITE_PREPARE_PERSISTENT,
		    &a->ins, NULL) != SQLITE_OK ||
		    sqlite3_prepare_v3(a->db, "INSERT INTO checkpoints(size, head_hash, "
		    "time, signature, root, note) VALUES (?1, ?2, ?3, ?4, ?5, ?6)", -1,
		    SQLITE_PREPARE_PERSISTENT, &a->ins_cp, NULL) != SQLITE_OK ||
		    sqlite3_prepare_v3(a->db, "INSERT INTO tree(level, idx, hash) VALUES "
		    "(?1, ?2, ?3)", -1, SQLITE_PREPARE_PERSISTENT, &a->ins_node,
		    NULL) != SQLITE_OK ||
		    sqlite3_prepare_v3(a->db, "BEGIN IMMEDIATE", -1,
		    SQLITE_PREPARE_PERSISTENT, &a->begin, NULL) != SQLITE_OK ||
		    sqlite3_prepare_v3(a->db, "COMMIT", -1, SQLITE_PREPARE_PERSISTENT,
		    &a->commit, NULL) != SQLITE_OK)
			goto dberr;
		if (audit_tree_sync(a, why, sizeof(why)) == -1) {
			errorf(err, errlen, "%s: %s", path, why);
			goto fail;
		}
	}
	*out = a;
	return 0;
dberr:
	errorf(err, errlen, "%s: %s", path, sqlite3_errmsg(a->db));
fail:
	audit_close(a);
	return -1;
}

int
audit_open(struct audit **out, const char *path, char *err, size_t errlen)
{
	return open_common(out, path, 0, err, errlen);
}

int
audit_open_reader(struct audit **out, const char *path, char *err, size_t errlen)
{
	return open_common(out, path, 1, err, errlen);
}

void
audit_close(struct audit *a)
{
	if (a == NULL)
		return;
	sqlite3_finalize(a->ins);
	sqlite3_finalize(a->ins_cp);
	sqlite3_finalize(a->ins_node);
	sqlite3_finalize(a->begin);
	sqlite3_finalize(a->commit);
	sqlite3_finalize(a->get_node);
	sqlite3_finalize(a->get_nodes);
	sqlite3_finalize(a->get_leaves);
	sqlite3_close(a->db);
	if (a->fd != -1)
		close(a->fd);
	EVP_PKEY_free(a->signer);
	EVP_PKEY_free(a->prev_signer);
	note_signer_free(a->nsigner);
	free(a->note);
	free(a->path);
	free(a);
}

static int
wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
	struct audit *a = arg;

	(void)db;
	(void)name;
	a->wal_pages = pages;
	return SQLITE_OK;
}

int
audit_wal_manual(struct audit *a, char *err, size_t errlen)
{
	if (sqlite3_exec(a->db, "PRAGMA wal_autocheckpoint=0", NULL, NULL,
	    NULL) != SQLITE_OK)
		return audit_sqlerr(a, "wal_autocheckpoint", err, errlen);
	sqlite3_wal_hook(a->db, wal_hook, a);
	return 0;
}

int
audit_defer_sync(struct audit *a, char *err, size_t errlen)
{
	if (sqlite3_exec(a->db, "PRAGMA synchronous=NORMAL", NULL, NULL,
	    NULL) != SQLITE_OK)
		return audit_sqlerr(a, "synchronous", err, errlen);
	return 0;
}

void
audit_set_commit_gate(struct audit *a, void (*fn)(void *), void *arg)
{
	a->gate = fn;
	a->gate_arg = arg;
}

int
audit_wal_pages(struct audit *a)
{
	return a->wal_pages;
}

int
audit_open_checkpointer(struct audit **out, const char *path, char *err,
    size_t errlen)
{
	struct audit *a = xcalloc(1, sizeof(*a));

	*out = NULL;
	a->fd = -1;
	if (sqlite3_open_v2(path, &a->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
	    NULL) != SQLITE_OK || sqlite3_exec(a->db, "PRAGMA synchronous=FULL",
	    NULL, NULL, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path, a->db ? sqlite3_errmsg(a->db) :
		    "cannot open");
		audit_close(a);
		return -1;
	}
	sqlite3_busy_timeout(a->db, DB_BUSY_MS);
	*out = a;
	return 0;
}

int
audit_wal_checkpoint(struct audit *a, int *left, char *err, size_t errlen)
{
	int nlog = 0, ncopied = 0, rc;

	rc = sqlite3_wal_checkpoint_v2(a->db, NULL, SQLITE_CHECKPOINT_PASSIVE,
	    &nlog, &ncopied);
	if (left != NULL)
		*left = nlog > ncopied ? nlog - ncopied : 0;
	/* Busy: another checkpoint runs; the next call does the rest. */
	if (rc != SQLITE_OK && rc != SQLITE_BUSY)
		return audit_sqlerr(a, "wal checkpoint", err, errlen);
	return 0;
}

int
audit_wal_restart(struct audit *a, char *err, size_t errlen)
{
	int rc;

	rc = sqlite3_wal_checkpoint_v2(a->db, NULL, SQLITE_CHECKPOINT_RESTART,
	    NULL, NULL);
	if (rc == SQLITE_BUSY)
		return 1;
	if (rc != SQLITE_OK)
		return audit_sqlerr(a, "wal checkpoint", err, errlen);
	return 0;
}

/*
 * Runs one of the writer's kept statements without a result (its BEGIN and
 * COMMIT: prepared once, not parsed again by sqlite3_exec() every group
 * commit): 0, or -1 with SQLite's message on a->db.
 */
static int
step_once(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int
insert(struct audit *a, const struct audit_entry *e, const size_t lens[AUDIT_NSTRINGS])
{
	int rc;

	audit_entry_bind(a->ins, e, lens);
	rc = sqlite3_step(a->ins);
	sqlite3_reset(a->ins);
	return rc == SQLITE_DONE ? 0 : -1;
}

int
audit_run_scan(struct audit *a, sqlite3_stmt *st, audit_cb cb, void *arg,
    char *err, size_t errlen)
{
	struct audit_entry	 e;
	int			 rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		audit_row_entry(st, &e);
		if (cb(&e, arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return audit_sqlerr(a, "scan", err, errlen);
	return 0;
}

int
audit_scan(struct audit *a, uint64_t from, uint64_t limit, audit_cb cb, void *arg,
    char *err, size_t errlen)
{
	sqlite3_stmt	*st;
	char		*sql;
	int		 rc;

	if ((sql = sqlite3_mprintf("SELECT %s FROM entries WHERE seq >= ?1 "
	    "ORDER BY seq LIMIT ?2", audit_columns)) == NULL)
		return errorf(err, errlen, "scan: out of memory");
	rc = sqlite3_prepare_v2(a->db, sql, -1, &st, NULL);
	sqlite3_free(sql);
	if (rc != SQLITE_OK)
		return audit_sqlerr(a, "scan", err, errlen);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)from);
	sqlite3_bind_int64(st, 2, limit ? (sqlite3_int64)limit : -1);
	return audit_run_scan(a, st, cb, arg, err, errlen);
}

/*
 * Signs a tree checkpoint for the tree of a->size + pending entries (root)
 * and inserts it inside the open transaction; *note gets its text.
 */
static int
insert_checkpoint(struct audit *a, EVP_PKEY *key, uint64_t size,
    const unsigned char head[32], const unsigned char root[32], int64_t t,
    const char *next_key, char **note, char *err, size_t errlen)
{
	unsigned char	 sig[64];
	char		 origin[64], why[128];
	int		 rc;

	/*
	 * The signer's key id, public half and signing context are set up
	 * once per log and key, not per commit; a rotation's other key gets
	 * its own, and the signer's again after it.
	 */
	note_log_origin(a->log_id, origin);
	if (!note_signer_is(a->nsigner, key, origin)) {
		note_signer_free(a->nsigner);
		if ((a->nsigner = note_signer_new(origin, key, why,
		    sizeof(why))) == NULL)
			return errorf(err, errlen, "checkpoint: %s", why);
	}
	if (audit_note_sign_with(a->nsigner, a->log_id, size, root, t, a->cp_n + 1,
	    next_key, note, sig) == -1)
		return errorf(err, errlen, "checkpoint: signing failed");
	sqlite3_bind_int64(a->ins_cp, 1, (sqlite3_int64)size);
	sqlite3_bind_blob(a->ins_cp, 2, head, 32, SQLITE_STATIC);
	sqlite3_bind_int64(a->ins_cp, 3, t);
	sqlite3_bind_blob(a->ins_cp, 4, sig, 64, SQLITE_TRANSIENT);
	sqlite3_bind_blob(a->ins_cp, 5, root, 32, SQLITE_STATIC);
	sqlite3_bind_text(a->ins_cp, 6, *note, -1, SQLITE_STATIC);
	rc = sqlite3_step(a->ins_cp);
	sqlite3_reset(a->ins_cp);
	if (rc != SQLITE_DONE) {
		free(*note);
		*note = NULL;
		return audit_sqlerr(a, "checkpoint", err, errlen);
	}
	return 0;
}

/*
 * The time to give an entry or checkpoint: never earlier than the last
 * (D7: the log's order is its time order). A clock that went back is
 * overruled, with a warning when it happens and a note when it is over.
 */
static int64_t
monotonic(struct audit *a, int64_t t)
{
	if (t < a->last_time) {
		if (!a->clock_back)
			log_warnx("event=clock_went_back by=%lld keeping=%lld",
			    (long long)(a->last_time - t), (long long)a->last_time);
		a->clock_back = 1;
		return a->last_time;
	}
	if (a->clock_back)
		log_info("event=clock_caught_up time=%lld", (long long)t);
	a->clock_back = 0;
	return t;
}

/*
 * One group commit: the entries, the tree nodes they complete and, with a
 * signer, the checkpoint over the new tree, in one transaction (D7, D16):
 * there is never an unsigned tail, before or after a crash. key and
 * next_key are the rotation's (see audit_check_start()); NULL: the signer.
 */
int
audit_commit(struct audit *a, struct audit_entry **es, size_t n, struct audit_receipt *rc,
    EVP_PKEY *key, const char *next_key, char *err, size_t errlen)
{
	struct merkle_range	 r = a->range;
	unsigned char		 head[32], root[32], (*leaves)[32] = NULL;
	uint64_t		 size = a->size;
	int64_t			 last = a->last_time, t;
	int			 back = a->clock_back;
	char			*note = NULL;

	if (a->ins == NULL)
		return errorf(err, errlen, "the log is open read-only");
	if (audit_file_gone(a))
		return errorf(err, errlen, "the log file %s was deleted or "
		    "replaced while open: nothing more is written to it (restore it "
		    "and restart)", a->path);
	if (key == NULL)
		key = a->signer;
	memcpy(head, a->head, 32);
	if (rc != NULL)
		leaves = xcalloc(n ? n : 1, 32);
	if (step_once(a->begin) == -1) {
		free(leaves);
		return audit_sqlerr(a, "begin", err, errlen);
	}
	a->node_failed = 0;
	for (size_t i = 0; i < n; i++) {
		struct audit_entry	*e = es[i];
		unsigned char		 leaf[32];
		size_t			 lens[AUDIT_NSTRINGS];

		e->time = monotonic(a, e->time);
		a->last_time = e->time;
		e->seq = ++size;
		memcpy(e->prev_hash, head, 32);
		audit_hash_lens(e, e->hash, lens);
		memcpy(head, e->hash, 32);
		if (insert(a, e, lens) == -1) {
			audit_sqlerr(a, "insert", err, errlen);
			goto rollback;
		}
		merkle_leaf(e->hash, leaf);
		if (leaves != NULL)
			memcpy(leaves[i], leaf, 32);
		merkle_range_append(&r, leaf, audit_tree_put, a);
	}
	if (a->node_failed) {
		audit_sqlerr(a, "tree", err, errlen);
		goto rollback;
	}
	merkle_range_root(&r, root);
	/* Checkpoints have their own order in time (D7): entries may be dated ahead. */
	t = (int64_t)time(NULL);
	if (t < a->cp_time)
		t = a->cp_time;
	if (key != NULL && insert_checkpoint(a, key, size, head, root, t, next_key,
	    &note, err, errlen) == -1)
		goto rollback;
	if (a->gate != NULL)
		a->gate(a->gate_arg);
	if (step_once(a->commit) == -1) {
		audit_sqlerr(a, "commit", err, errlen);
		goto rollback;
	}
	if (rc != NULL) {
		struct merkle_batch *b = merkle_batch_new(&a->range,
		    (const uint8_t (*)[32])leaves, n);

		for (size_t i = 0; i < n; i++) {
			rc[i].seq = a->size + 1 + i;
			memcpy(rc[i].leaf, leaves[i], 32);
			rc[i].checkpoint = note;
			rc[i].nproof = 0;
			if (b == NULL || merkle_batch_proof(b, i, rc[i].proof,
			    &rc[i].nproof) == -1)
				rc[i].nproof = 0;
		}
		merkle_batch_free(b);
		free(leaves);
	}
	a->size = size;
	a->range = r;
	memcpy(a->head, head, 32);
	if (note != NULL) {
		free(a->note);
		a->note = note;
		a->cp_n++;
		a->cp_size = a->cp_tree_size = size;
		a->cp_time = t;
	}
	return 0;
rollback:
	sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
	a->last_time = last;
	a->clock_back = back;
	free(note);
	free(leaves);
	return -1;
}

int
audit_append(struct audit *a, struct audit_entry **es, size_t n, char *err,
    size_t errlen)
{
	return audit_commit(a, es, n, NULL, NULL, NULL, err, errlen);
}

int
audit_append_receipts(struct audit *a, struct audit_entry **es, size_t n,
    struct audit_receipt *rc, char *err, size_t errlen)
{
	return audit_commit(a, es, n, rc, NULL, NULL, err, errlen);
}

int
audit_checkpoint_due(struct audit *a, int64_t now)
{
	(void)a;
	(void)now;
	return 0;
}

/*
 * Item 6 of issue 13: the log file was deleted or replaced. The path must
 * still name the device and inode opened, and that inode must still have
 * a link: a path check alone passes a new file that took the path and got
 * the old inode number (a filesystem that reuses them, or one whose
 * numbers are not stable), where the file we write has no name left.
 */
int
audit_file_gone(struct audit *a)
{
	struct statx sx;

	if (a->gone || a->ino == 0)
		return a->gone;
	/* The link count alone, not the times (audit_same_file()). */
	if (!audit_same_file(a->path, a->dev, a->ino))
		a->gone = 1;
	else if (a->fd != -1 && statx(a->fd, "", AT_EMPTY_PATH, STATX_NLINK,
	    &sx) == 0 && sx.stx_nlink == 0)
		a->gone = 1;
	return a->gone;
}
