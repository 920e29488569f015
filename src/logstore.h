/*
 * The log interface (issue 19, docs/deploy-ha.md "The log interface"):
 * one handle over the disclosure log of either backend, the SQLite file
 * (audit.h) or PostgreSQL (pglog.h), as storage.h is over the record
 * store. The daemon calls logstore_X and does not know which backend it
 * writes to; each logstore_X is one call through the backend's struct
 * logstore_ops (logstore_int.h) to audit_X or pglog_X, with the same
 * arguments and the same answers, so the comments in audit.h are this
 * interface's. Every function that can fail returns -1 (or NULL) plus the
 * caller's err/errlen (docs/hacking.md "Errors").
 *
 * A handle is one backend connection, used by one thread at a time: the
 * daemon opens one per thread (the log writer's, the auditors' reader,
 * the notifier's, each verify or report job's).
 *
 * What only the SQLite file has (the WAL checkpointer, the fdatasync of
 * the -wal file, the subject index, the store's memory of its log) is not
 * in this interface: the daemon reaches it through logstore_audit(),
 * which is NULL on PostgreSQL, where it is skipped.
 */
#ifndef SAFESHARE_LOGSTORE_H
#define SAFESHARE_LOGSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "audit.h"

struct logstore;
struct logstore_ops;

/*
 * The backends. logstore_sqlite is in libsafeshare-core;
 * logstore_postgresql is in libsafeshare-pg (src/logstore_pg.c), so only a
 * program that names it links libpq.
 */
extern const struct logstore_ops logstore_sqlite;
extern const struct logstore_ops logstore_postgresql;

/*
 * How a handle is used: the log writer appends (a new log is created
 * where there is none); a reader only reads, and a missing log is an
 * error (audit_open_reader(), pglog_open_reader()).
 */
enum logstore_mode {
	LOGSTORE_WRITER,
	LOGSTORE_READER
};

/*
 * Opens backend's log at where: the SQLite file's path, or a libpq
 * connection string. 0 with *l the caller's to close with logstore_close(),
 * or -1 with err (*l NULL).
 */
int	logstore_open(struct logstore **l, const struct logstore_ops *backend,
	    const char *where, enum logstore_mode mode, char *err, size_t errlen);
void	logstore_close(struct logstore *);
/* The backend's name: "sqlite" or "postgresql". */
const char *logstore_backend(const struct logstore *);
/*
 * How long (ms) a reconnect of this handle may wait for its server, for a
 * thread that must not stall (the event loop's reader: 500 ms); 0, the
 * default: the connection string's connect_timeout. PostgreSQL only
 * (pglog_set_connect_wait(): also at most one try a second); nothing to
 * do on SQLite, a file.
 */
void	logstore_set_connect_wait(struct logstore *, int ms);
/* The SQLite log under the handle, for SQLite-only machinery; NULL on PostgreSQL. */
struct audit *logstore_audit(struct logstore *);

/* Writing (audit_append(), audit_append_receipts()). */
int	logstore_append(struct logstore *, struct audit_entry **, size_t n,
	    char *err, size_t errlen);
int	logstore_append_receipts(struct logstore *, struct audit_entry **,
	    size_t n, struct audit_receipt *rc, char *err, size_t errlen);
/*
 * Whether other daemons append to the same log (PostgreSQL): then the
 * writer locks its head before taking a batch, logstore_lock_head()
 * (pglog_lock_head(): 0 held for the next append, or -1 with err, the
 * append's own failure: the batch is not logged), and
 * logstore_unlock_head() lets it go unused. SQLite: 0, and neither is
 * called.
 */
int	logstore_shared(const struct logstore *);
int	logstore_lock_head(struct logstore *, char *err, size_t errlen);
void	logstore_unlock_head(struct logstore *);
/*
 * The log's size and id (audit_size(), audit_log_id()). On PostgreSQL the
 * size is the head's as committed now, whichever daemon wrote it, or when
 * the database cannot be reached the last this handle saw.
 */
uint64_t logstore_size(struct logstore *);
void	logstore_log_id(struct logstore *, unsigned char out[16]);
/* 1 when the log's file was deleted or replaced (never on PostgreSQL). */
int	logstore_file_gone(struct logstore *);
/*
 * Whether the log can be written now, for /healthz while no entry comes
 * (the log writer asks once an idle second): SQLite, that its file is
 * still the one opened (logstore_file_gone()); PostgreSQL, that the server
 * answers on this connection, which is opened again if it was lost. 0, or
 * -1 with why (one printable line: never the password).
 */
int	logstore_probe(struct logstore *, char *why, size_t whylen);

/* Signing and the start-up check (audit_set_signer() and the rest). */
int	logstore_set_signer(struct logstore *, const char *keyfile,
	    uint64_t every, int64_t seconds, char *err, size_t errlen);
int	logstore_set_previous_signer(struct logstore *, const char *keyfile,
	    char *err, size_t errlen);
char	*logstore_public_pem(struct logstore *);
int	logstore_check_start(struct logstore *, int dry_run, char *err,
	    size_t errlen);

/* Readers (audit.h's of the same name). */
int	logstore_scan(struct logstore *, uint64_t from, uint64_t limit,
	    audit_cb, void *, char *err, size_t errlen);
int	logstore_query(struct logstore *, const struct audit_filter *,
	    uint64_t after, uint64_t limit, int newest_first, audit_cb, void *,
	    char *err, size_t errlen);
int	logstore_stats(struct logstore *, const struct audit_filter *,
	    const char *by, audit_stat_cb, void *, char *err, size_t errlen);
int	logstore_checkpoints(struct logstore *, audit_checkpoint_cb, void *,
	    char *err, size_t errlen);
int	logstore_checkpoint_note_upto(struct logstore *, uint64_t max,
	    char **note, char *err, size_t errlen);
int	logstore_consistency(struct logstore *, uint64_t m, uint64_t n,
	    unsigned char proof[][32], size_t *len, char *err, size_t errlen);
int	logstore_holder_batches(struct logstore *, uint64_t since,
	    audit_batch_cb, void *, char *err, size_t errlen);
int	logstore_last_store(struct logstore *, char *out, size_t len,
	    char *err, size_t errlen);
int	logstore_reviews_pending(struct logstore *, audit_cb, void *,
	    char *err, size_t errlen);
int	logstore_inform_pending(struct logstore *, audit_cb, void *,
	    char *err, size_t errlen);
/* audit_verify_with(): the chain and the checkpoints; frees v. */
int	logstore_verify_with(struct logstore *, struct audit_verifier *v,
	    struct audit_verify_result *);

#endif
