/*
 * Inside the store: what store.c shares with the files that hold other parts
 * of it (store_read.c, store_write.c, person.c). Not for the daemon or the
 * CLI, which see store.h only.
 */
#ifndef SAFESHARE_STORE_INT_H
#define SAFESHARE_STORE_INT_H

#include <sqlite3.h>

#include "store.h"

#define STORE_PERSON_STMTS	16

/* The store's prepared statements, by index into queries[] (store.c). */
enum {
	Q_RECORD, Q_FIELDS, Q_CONSENT, Q_FLAGS, Q_PUT_SUBJECT, Q_PUT_RECORD,
	Q_DEL_FIELDS, Q_PUT_FIELD, Q_ADD_CONSENT, Q_SET_FLAG, Q_OWNER, Q_DEL_RECORD,
	Q_FLAG_ACTIVE, Q_UNFLAG, Q_MARK_BATCH, Q_BATCH_APPLIED, Q_READ_BEGIN,
	Q_READ_END, Q_LAST_CONSENT, Q_RECORD_ROW, Q_NOTE_LOAD, Q_UNLOGGED_LOADS,
	Q_LOAD_LOGGED, Q_SHOW_RECORDS, Q_SHOW_FIELDS, Q_SHOW_CONSENTS, Q_SHOW_FLAGS,
	Q_PUT_PERSON, Q_DATA_VERSION, Q_COUNT
};

/*
 * An open store; store_open() makes it, store_close() frees it. store.c,
 * store_read.c and store_write.c use its statements.
 */
struct store {
	sqlite3		*db;
	sqlite3_stmt	*q[Q_COUNT];
	sqlite3_stmt	*pq[STORE_PERSON_STMTS];	/* person.c's */
	int		 scope;		/* a read scope is open */
	struct scache	*cache;		/* subject reads (store_cache.c) */
	int		 cache_ok;	/* a read transaction checked it */
	char		 id[STORE_ID_LEN + 1];	/* store_meta's store_id */
	int64_t		 created_at;	/* 0: before store ids */
};

/* The store's connection; owned by the store. */
sqlite3		*store_db(struct store *);
/* person.c's prepared statements, STORE_PERSON_STMTS slots owned by the store. */
sqlite3_stmt	**store_person_stmts(struct store *);
/*
 * Writes "what: sqlite's message" into err (errlen bytes) and returns -1:
 * convention (1) of docs/hacking.md "Errors", which every function of the
 * store follows.
 */
int		 store_sqlerr(struct store *, char *err, size_t errlen,
		    const char *what);
/*
 * Steps a bound statement once, then resets it and clears its bindings: 1
 * with its first column copied into out (len bytes; NULL as ""), 0 when it
 * has no row, -1 with "what: sqlite's message" in err.
 */
int		 store_first_text(struct store *, sqlite3_stmt *, char *out,
		    size_t len, const char *what, char *err, size_t errlen);

/* person.c: prepares its statements at open, once (0, or -1 with err). */
int		 person_prepare(struct store *, char *err, size_t errlen);
/*
 * Migration 7's step in C, inside the migration's transaction: each subject's
 * matching details from its `person` record
 * (person_details_from_record()). 0, or -1 with err.
 */
int		 person_migrate_details(struct store *, char *err, size_t errlen);

#endif
