/*
 * Private to src/pglog*.c: the head row as read, and the small libpq
 * helpers the append (pglog.c) and the verify (pglog_verify.c) share.
 */
#ifndef SAFESHARE_PGLOG_INT_H
#define SAFESHARE_PGLOG_INT_H

#include <libpq-fe.h>
#include <openssl/evp.h>

#include "audit.h"
#include "merkle.h"
#include "pgutil.h"
#include <stddef.h>
#include <stdint.h>

struct pglog_rows;	/* the parameters of a multi-row INSERT (pglog_append.c) */
struct pglog_rotation;	/* a key rotation's append (pglog_rotate.c) */

/* The one row of log_head (its frontier goes into the handle's range). */
struct pglog_head {
	unsigned char	 log_id[16];
	uint64_t	 size;		/* entries: the last seq */
	unsigned char	 head[32];	/* the last entry's hash (zeros: none) */
	uint64_t	 cp_n;		/* the last checkpoint's number */
	int64_t		 cp_time;
	int64_t		 last_time;	/* the last entry's time */
	int		 has_key;	/* a rotation named the signing key: */
	unsigned char	 key[32];	/* ... this one (raw Ed25519 public key) */
};

/*
 * A handle: one connection, used by one thread at a time. pglog.c opens
 * and (re)connects it, pglog_append.c writes through it.
 */
struct pglog {
	PGconn			*conn;
	char			*conninfo;
	int			 ready;		/* this session has the statements */
	EVP_PKEY		*signer;
	unsigned char		 signer_pub[32];	/* its public half, raw */
	/* pglog_append.c's, for the key it signs with: set up once per key. */
	struct note_signer	*nsigner;
	struct pglog_rotation	*rot;		/* during pglog_rotate() only */
	char			*note;		/* the last note (receipts point at it) */
	struct merkle_range	 range;		/* the tree, in an append */
	struct merkle_range	 before;	/* ... before the batch */
	struct pglog_rows	*rows;
	void			(*hook)(void *, size_t);
	void			*hook_arg;
	int			 locked;	/* pglog_lock_head() holds the head: */
	struct pglog_head	 locked_head;	/* as read then */
	struct pg_retry		 retry;		/* its reconnects (pgutil.h) */
};

/*
 * pglog_query.c: the readers' statements of fixed text (the tree of a
 * proof, the notes, holder batches, the last store), prepared in each new
 * session with the append's; pglog_query_prepared() runs one by name with
 * text parameters, its rows in format (0 text, 1 binary): the result, or
 * NULL with err.
 */
int			 pglog_prepare_readers(struct pglog *, char *err, size_t errlen);
PGresult		*pglog_query_prepared(struct pglog *, const char *name, int n,
			    const char *const *vals, int format, char *err,
			    size_t errlen);

/* pglog_append.c: its statements, prepared in each new session; its rows. */
int			 pglog_prepare_append(struct pglog *, char *err, size_t errlen);
struct pglog_rows	*pglog_rows_new(void);
void			 pglog_rows_free(struct pglog_rows *);


/*
 * pglog_rotate.c: whether this append may go on after the locked head h
 * (docs/deploy-ha.md "The signing key"): 0, or -1 with err -- a handle
 * whose key is not the one the head names (the key was rotated), or a
 * rotation another daemon already made (which pglog_rotate() answers 1).
 * The key that signs this append's checkpoint, and the next-key it names
 * (NULL but in a rotation).
 */
int		 pglog_key_check(struct pglog *, const struct pglog_head *h,
		    char *err, size_t errlen);
EVP_PKEY	*pglog_cp_key(const struct pglog *, const char **next_key);
/* The rotation's new key for the head row, or NULL when not rotating. */
const unsigned char *pglog_rotating_to(const struct pglog *);

/* The reason a statement failed, into err; frees res; returns -1. */
int		 pglog_fail(PGconn *, PGresult *res, const char *what, char *err,
		    size_t errlen);
/* A statement without parameters or rows: 0 or -1 with err. */
int		 pglog_exec(PGconn *, const char *sql, const char *what, char *err,
		    size_t errlen);
void		 pglog_put_be64(char out[8], uint64_t);
uint64_t	 pglog_be64(const char *);
/* Binary result columns: 0, or -1 when NULL or of another length. */
int		 pglog_col_u64(const PGresult *, int row, int col, uint64_t *);
int		 pglog_col_bytes(const PGresult *, int row, int col, unsigned char *out,
		    int len);
/*
 * Reading the log back (pglog_read.c), for the verify, the export and the
 * migration: the next page of a cursor (binary), or NULL with err; one
 * row of entries (columns in audit_columns' order) or of checkpoints (n,
 * size, head_hash, time, signature, note) into e or cp, whose strings
 * point into res: 0, or -1 when the row is malformed.
 */
struct audit_entry;
struct audit_checkpoint;
struct audit_verifier;
struct audit_verify_result;
PGresult	*pglog_fetch(PGconn *, const char *cursor, char *err, size_t errlen);
int		 pglog_row_entry(const PGresult *, int row, struct audit_entry *e);
int		 pglog_row_checkpoint(const PGresult *, int row,
		    const unsigned char log_id[16], struct audit_checkpoint *cp);
/*
 * Every row of an open binary cursor, a page at a time, to ecb (entries:
 * 1) or cpcb (checkpoints: 0, with the log's id): 0, 1 when a callback
 * stopped the walk, or -1 with err. The readers of pglog_query.c share it.
 */
int		 pglog_drain(PGconn *, const char *cursor, int entries,
		    const unsigned char log_id[16], audit_checkpoint_cb cpcb,
		    audit_cb ecb, void *arg, char *err, size_t errlen);
/* The SELECT list of pglog_row_checkpoint(). */
#define PGLOG_CP_COLUMNS	"n, size, head_hash, time, signature, note"
/*
 * pglog_verify_with() inside the caller's open transaction (the migration
 * verifies what it wrote before it commits): cursors are closed after.
 */
int		 pglog_verify_txn(struct pglog *, struct audit_verifier *,
		    struct audit_verify_result *);
/* The test hook of pglog_set_test_hook(), if any, with i. */
void		 pglog_run_hook(struct pglog *, size_t i);

/* The handle's connection, its session (re)established: 0 or -1 with err. */
PGconn		*pglog_conn(struct pglog *);
int		 pglog_ready(struct pglog *, char *err, size_t errlen);

#endif
