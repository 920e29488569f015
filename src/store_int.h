/*
 * Inside the store: what store.c shares with the files that hold other parts
 * of it (person.c). Not for the daemon or the CLI, which see store.h only.
 */
#ifndef SAFESHARE_STORE_INT_H
#define SAFESHARE_STORE_INT_H

#include <sqlite3.h>

#include "store.h"

#define STORE_PERSON_STMTS	16

/* The store's connection; owned by the store. */
sqlite3		*store_db(struct store *);
/* person.c's prepared statements, STORE_PERSON_STMTS slots owned by the store. */
sqlite3_stmt	**store_person_stmts(struct store *);
/* Sets store_errmsg() to "what: sqlite's message" and returns -1. */
int		 store_fail(struct store *, const char *what);
/* Sets store_errmsg() to a message and returns -1. */
int		 store_failx(struct store *, const char *fmt, ...)
		    __attribute__((format(printf, 2, 3)));

/* person.c: prepares its statements at open, once (0 or -1). */
int		 person_prepare(struct store *);
/*
 * Migration 7's step in C, inside the migration's transaction: each subject's
 * matching details from its `person` record
 * (person_details_from_record()). 0 or -1.
 */
int		 person_migrate_details(struct store *);

#endif
