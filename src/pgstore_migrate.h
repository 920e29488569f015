/*
 * Moving an SQLite record store into an empty PostgreSQL store (issue 19
 * item 5; `safeshare admin migrate --store`, docs/deploy-ha.md "Migrating
 * from SQLite"): every table's rows as stored, ids and history included,
 * the store's id and birth, and what it remembers of its log; compared
 * table by table before the commit.
 */
#ifndef SAFESHARE_PGSTORE_MIGRATE_H
#define SAFESHARE_PGSTORE_MIGRATE_H

#include <libpq-fe.h>
#include <sqlite3.h>

#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* The tables copied row by row, in this order (pgstore_migrate_tables[]). */
#define PGSTORE_MIGRATE_NTABLES	7
extern const char *const pgstore_migrate_tables[PGSTORE_MIGRATE_NTABLES];

/* What a store migration copied (filled as far as it got). */
struct pgstore_migration {
	char		 store_id[STORE_ID_LEN + 1];
	int64_t		 created_at;
	uint64_t	 rows[PGSTORE_MIGRATE_NTABLES];
	/* SHA-256 of each table's rows, the same on both sides. */
	unsigned char	 digest[PGSTORE_MIGRATE_NTABLES][32];
	int64_t		 persons;	/* person_ids continues after this */
	int		 remembers;	/* the store remembered a log: */
	unsigned char	 log_id[16];
	uint64_t	 log_size;
};

/*
 * Opens the SQLite store at path read-only (nothing in it is changed or
 * created) for pgstore_migrate*(): it must exist and be of this build's
 * schema version (an older one: start this version's daemon on it once).
 * 0 with *db the caller's to sqlite3_close(), or -1 with err.
 */
int	pgstore_migrate_source(sqlite3 **db, const char *path, char *err,
	    size_t errlen);

/*
 * Copies the store src into the PostgreSQL store on conn, inside the
 * transaction the caller has open there (the caller commits, or rolls
 * back on -1): the tables are locked against writers, and must hold no
 * row (store_meta aside, which takes src's store id and created_at);
 * subjects, records, record_fields, consents, flags, holder_batches and
 * store_loads are copied as stored (ids, history rows, persons, details)
 * by COPY, then each is read back and compared with src row for row
 * (count and SHA-256 of the rows in key order); the sequences continue
 * after the largest ids. src is read in one snapshot. log_id is the log
 * copied in the same transaction, of log_size entries; NULL: the log
 * already in the target, if any (log_head). A store that remembers
 * another log than that one, or more entries, is refused
 * (audit_memory_check()). 0, or -1 with err.
 */
int	pgstore_migrate_txn(sqlite3 *src, PGconn *conn,
	    const unsigned char *log_id, uint64_t log_size,
	    struct pgstore_migration *out, char *err, size_t errlen);

/*
 * The store alone: opens the PostgreSQL store at conninfo (creating its
 * tables if missing) and runs pgstore_migrate_txn() in one transaction
 * of its own, committed only if it succeeded. 0, or -1 with err and the
 * target as it was.
 */
int	pgstore_migrate(sqlite3 *src, const char *conninfo,
	    struct pgstore_migration *out, char *err, size_t errlen);

#endif
