/*
 * Private to src/pgstore*.c: the handle, the prepared statements by index
 * and the one helper that runs them (reconnecting when that is safe).
 */
#ifndef SAFESHARE_PGSTORE_INT_H
#define SAFESHARE_PGSTORE_INT_H

#include <libpq-fe.h>

#include "pgutil.h"
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* The statements of pgstore.c's table, prepared once per session. */
enum {
	S_SUBJECTS, S_FIELDS, S_PUT_SUBJECT,
	S_OWNER, S_OWNER_LOCK, S_PUT_RECORD, S_DEL_FIELDS,
	S_ADD_CONSENT, S_SET_FLAG, S_DEL_RECORD, S_FLAG_ACTIVE, S_UNFLAG,
	S_MARK_BATCH, S_BATCH_APPLIED, S_LAST_CONSENT, S_RECORD_ROW,
	S_SHOW_RECORDS, S_SHOW_FIELDS, S_SHOW_CONSENTS, S_SHOW_FLAGS,
	S_SUBJECT, S_SUBJECT_LOCK, S_NHS_LOCK, S_BY_NHS, S_SHARED, S_NEW_PERSON,
	S_SET_NHS, S_CLASH, S_SET_DETAILS, S_RECORD_FIELD, S_FIND_NHS,
	S_FIND_DEMO, S_HOLDING, S_HOLDINGS, S_RECORDS, S_NOTE_LOAD,
	S_UNLOGGED_LOADS, S_LOAD_LOGGED, S_REMEMBER_LOG, S_FORGET_LOG,
	S_BATCH_LOCK, S_BATCH_TRY_LOCK, S_BATCH_UNLOCK, S_PREFETCH, S_PUT_FIELDS,
	S_BATCH_CLAIM, S_BATCH_CLAIMED, S_NHS_SOME, S_NHS_EVERY, S_NHS_LOCKS,
	S_COUNT
};

/* A statement sent in pipeline mode and not yet answered (pgstore_pipe.c). */
struct pgpend {
	const char	*what;		/* for its error message */
	char		*subject;	/* with holder: the owner to check */
	char		*holder;
};

/*
 * A subject a holder batch names (pgstore_known.c): its holder when the
 * transaction read it or made it (NULL: none yet), whether it did not
 * exist then, and how many records the transaction has put for it.
 */
struct pgknown {
	const char	*id;		/* the caller's, for the transaction */
	char		*holder;
	int		 fresh;
	size_t		 nput;
};

/*
 * NHS number locks (pgstore_nhs.c): a number's key is one of PGNHS_BUCKETS
 * of class 1931; key PGNHS_ALL, shared or exclusive, comes first; past
 * PGNHS_MAX_KEYS buckets a batch takes it exclusive instead of buckets.
 */
#define PGNHS_BUCKETS	1024		/* a power of two */
#define PGNHS_ALL	PGNHS_BUCKETS
#define PGNHS_MAX_KEYS	64
enum { PGNHS_NONE, PGNHS_SOME, PGNHS_EVERY };

/* One connection; pgstore_open() makes it, pgstore_close() frees it. */
struct pgstore {
	PGconn		*conn;
	int		 ready;		/* this session has the statements */
	int		 txn;		/* a write transaction is open */
	int		 scope;		/* a read scope is wanted (pgstore_read_begin()) */
	int		 scope_open;	/* and its BEGIN has been sent */
	struct pgbatch	*batch;		/* subject reads queued (pgstore_batch.c), */
	struct pgbatch	*flight;	/* ... and those sent, not yet answered, */
	struct pgstore	*rd;		/* ... on this connection of their own */
	struct scache	*cache;		/* ... kept while the store's version holds */
	char		*conninfo;	/* pgstore_open()'s, for rd */
	int		 pipe;		/* in pipeline mode, statements queued */
	int		 broken;	/* the pipeline could not be left */
	struct pgpend	*pend;		/* PIPE_MAX, made at first use */
	size_t		 npend;
	struct pgknown	*known;		/* sorted by id, until the txn ends */
	size_t		 nknown;
	struct pg_retry	 retry;		/* its reconnects (pgutil.h) */
	char		 id[STORE_ID_LEN + 1];
	int64_t		 created_at;
	int		 outbox_pid;	/* the session holding notify locks (pgstore_outbox.c) */
	int		 outbox_table;	/* notify_outbox is known to exist */
	int		 nhs_mode;	/* PGNHS_*: key PGNHS_ALL held how, this txn */
	unsigned char	 nhs_held[PGNHS_BUCKETS / 8];	/* buckets locked, this txn */
};

/*
 * Runs statement q with n text parameters (NULL: SQL NULL). Returns the
 * result, the caller's to PQclear(), or NULL with "PostgreSQL store: what:
 * the server's message" in err. Outside a transaction a lost connection is
 * opened again first; a read that failed because the connection died is
 * run once more on a new one (a write is not: it may have committed).
 */
PGresult	*pgstore_run(struct pgstore *, int q, int n, const char *const *vals,
		    const char *what, char *err, size_t errlen);
/*
 * pgstore_run() without beginning a wanted read scope: the statement runs
 * inside whatever transaction is open, or alone, one snapshot of its own.
 */
PGresult	*pgstore_run1(struct pgstore *, int q, int n, const char *const *vals,
		    const char *what, char *err, size_t errlen);
/*
 * The subject reads of n requests (arrays of n subjects, record types,
 * agencies and purposes) in one statement, S_SUBJECTS, into out[0..n):
 * pgstore_batch.c. scoped: begin a wanted read scope first (a synchronous
 * read) or not (the round's batch). 0, or -1 with err and out[] empty.
 */
int		 pgstore_subjects(struct pgstore *, size_t n,
		    const struct record_type *const *rts, const char *const *subjects,
		    const char *const *agencies, const char *const *purposes,
		    struct store_subject **out, int scoped, char *err, size_t errlen);
/*
 * The session's settings and statements, made again after a lost
 * connection (reconnecting at most once a second): 0, or -1 with err.
 */
int		 pgstore_session(struct pgstore *, char *err, size_t errlen);
/* Frees the queue of pgstore_subject_queue() (pgstore_close()). */
void		 pgstore_batch_free(struct pgstore *);

/*
 * pgstore_pipe.c: inside a write transaction, statements whose rows are
 * not read are queued (pgstore_send(); with holder, the row it returns must
 * be that holder's), and answered at the next read (pgstore_run_queued()),
 * flush or commit; the first failure is reported there.
 */
int		 pgstore_send(struct pgstore *, int q, int n, const char *const *vals,
		    const char *subject, const char *holder, const char *what,
		    char *err, size_t errlen);
int		 pgstore_flush(struct pgstore *, char *err, size_t errlen);
PGresult	*pgstore_run_queued(struct pgstore *, int q, int n,
		    const char *const *vals, const char *what, char *err,
		    size_t errlen);
void		 pgstore_pipe_abandon(struct pgstore *);
void		 pgstore_pipe_free(struct pgstore *);
/* pgstore_known.c: the batch's subjects, or NULL (ask the database). */
struct pgknown	*pgstore_known(struct pgstore *, const char *subject);
void		 pgstore_known_clear(struct pgstore *);
/*
 * pgstore_nhs.c: nhs's bucket locked for the open transaction, unless it
 * holds it already (a link the batch did not name first); and the
 * transaction's lock state forgotten (its begin and end).
 */
int		 pgstore_nhs_lock_one(struct pgstore *, const char *nhs, char *err,
		    size_t errlen);
void		 pgstore_nhs_clear(struct pgstore *);
/* v[0..n) as a text[] literal, quoted and escaped; the caller frees it. */
char		*pgstore_array(const char *const *v, size_t n);
/*
 * pgstore_run() for a statement without rows: 0, or -1 with err. Inside a
 * write transaction it is queued (pgstore_send()), and a failure is
 * reported by the transaction's next read, flush or commit.
 */
int		 pgstore_exec(struct pgstore *, int q, int n, const char *const *vals,
		    const char *what, char *err, size_t errlen);
/* The reason res failed into err; frees res; returns -1. */
int		 pgstore_fail(PGconn *, PGresult *res, const char *what, char *err,
		    size_t errlen);
/* Text of a result cell, "" for NULL; an int8 cell, 0 for NULL. */
const char	*pgstore_text(const PGresult *, int row, int col);
int64_t		 pgstore_int(const PGresult *, int row, int col);

#endif
