/*
 * The disclosure log on PostgreSQL (issue 19): any number of daemons, each
 * with its own connection, append to ONE hash chain with gap-free
 * sequence numbers. The entry, its chain hash, the Merkle tree and the
 * signed checkpoint notes are those of the SQLite log (src/audit*.c,
 * docs/audit-format.md); only where they are kept differs.
 *
 * Serialisation (docs/deploy-ha.md "The chain"): one row, log_head, holds
 * the log's size, the hash of its last entry, the tree's compact range
 * (frontier), the last checkpoint's number and time and the last entry's
 * time. Every append locks it with SELECT ... FOR UPDATE in the
 * transaction that inserts the batch, its tree nodes and its checkpoint
 * and then moves the head: the next writer waits for that commit and
 * builds on what it wrote, whichever daemon it is. A transaction that
 * fails or whose connection dies rolls back as a whole, head included,
 * so there is never a gap or half a batch. synchronous_commit is on for
 * every connection: an append returns 0 only once its commit is durable.
 *
 * Not yet used by the daemon: the record stores are behind the storage
 * interface (storage.h), the log not yet (docs/deploy-ha.md "Status").
 *
 * A handle is one connection and is used by one thread at a time.
 */
#ifndef SAFESHARE_PGLOG_H
#define SAFESHARE_PGLOG_H

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

#include "audit.h"

/*
 * Version 2 added the readers' indexes (pglog.c), version 3 the head's
 * signing key (pglog_rotate.c); a log of version 1 is refused, one of
 * version 2 is upgraded by a writer's open.
 */
#define PGLOG_SCHEMA_VERSION	3

struct pglog;

/*
 * Connects with a libpq connection string, sets synchronous_commit = on,
 * creates the log's tables if they are missing (an empty log with a new
 * log id) and prepares the append statements. Returns 0 with *pl the
 * caller's to close with pglog_close(), or -1 with err.
 */
int	 pglog_open(struct pglog **pl, const char *conninfo, char *err,
	    size_t errlen);
/*
 * The same for an auditor's tools: a database without the log's tables is
 * an error, not a log to create (the role may only read).
 */
int	 pglog_open_reader(struct pglog **pl, const char *conninfo, char *err,
	    size_t errlen);
void	 pglog_close(struct pglog *);
/*
 * How long (ms) a reconnect of this handle may wait for the server; 0
 * (the default): the connection string's connect_timeout. Whatever the
 * wait, a handle whose server is away tries again at most once a second
 * and fails at once in between, with the last try's reason (pgutil.h,
 * pg_reconnect()). The daemon's event loop gives its log reader 500 ms.
 */
void	 pglog_set_connect_wait(struct pglog *, int ms);

/*
 * The Ed25519 key that signs the checkpoint of each of this handle's
 * commits (every daemon holds the same key: docs/deploy-ha.md). The handle
 * takes its own reference; NULL: commits are not signed.
 */
void	 pglog_set_signer(struct pglog *, EVP_PKEY *key);

/*
 * Signing key rotation with several daemons (pglog_rotate.c,
 * docs/deploy-ha.md "The signing key"). pglog_rotate() appends the
 * key_rotation entry (audit_rotation_entry(), dated now; its seq into
 * *seq), in one
 * transaction holding log_head, with a checkpoint the old key signs that
 * names the handle's signer as the next key (next-key), and records that
 * key in the head row; from then on an append by a handle with another
 * key is refused ("the log's signing key has been rotated"). Returns 0,
 * 1 when the head already names the handle's key (another daemon made the
 * rotation: nothing appended), or -1 with err. The caller has checked
 * that old signed the log's last checkpoint (logstore_pg.c).
 */
int	 pglog_rotate(struct pglog *, EVP_PKEY *old, int64_t now, uint64_t *seq,
	    char *err, size_t errlen);
/*
 * The key the head row names, as committed now: 0 with *has 0 (no
 * rotation yet) or 1 and key, or -1 with err.
 */
int	 pglog_head_key(struct pglog *, int *has, unsigned char key[32],
	    char *err, size_t errlen);
/* The refusal an append with the old key gets, for the daemon's checks. */
#define PGLOG_ROTATED	"the log's signing key has been rotated; restart with " \
	    "the new key"

/*
 * Appends es[0..n) in one transaction (group commit): each entry gets its
 * seq, time (never earlier than the log's last, whoever wrote it: D7),
 * prev_hash and hash; the tree nodes they complete and, with a signer, the
 * checkpoint over the new tree are written in the same transaction. With
 * rc, each entry's receipt (its checkpoint points into the handle and
 * lasts until its next append). Returns 0 once the commit is durable, or
 * -1 with err and nothing appended -- except when the connection died
 * during COMMIT itself, where PostgreSQL may have committed: the caller
 * treats the entries as not logged (no reply releases data), and a
 * verify shows them if they were. A lost connection is opened again by
 * the next append.
 */
int	 pglog_append(struct pglog *, struct audit_entry **es, size_t n,
	    struct audit_receipt *rc, char *err, size_t errlen);
/*
 * The next append's first round trip ahead of it: the head row locked in
 * an open transaction, waiting for any other daemon's append to commit,
 * so that the caller can take its batch after that wait (the daemon's log
 * writer: daemon/logq.c). 0 held (the next pglog_append() goes on from
 * it; keep the time to it short, every other daemon waits), or -1 with
 * err and nothing held: the failure pglog_append() would have had.
 * pglog_unlock_head() lets a held head go without appending.
 */
int	 pglog_lock_head(struct pglog *, char *err, size_t errlen);
void	 pglog_unlock_head(struct pglog *);

/* The log's size and id as committed now: 0 or -1 with err. */
int	 pglog_head(struct pglog *, uint64_t *size, unsigned char log_id[16],
	    char *err, size_t errlen);

/*
 * Verifies the whole log in one snapshot through the streaming verifier
 * the SQLite log and the export use (audit_verifier_*): the chain, every
 * checkpoint's signature with pub (NULL: not checked, which is not a pass
 * when there are checkpoints), and that the head row agrees with the last
 * entry and the tree. Fills *res; returns 0 when everything verifies.
 */
int	 pglog_verify(struct pglog *, EVP_PKEY *pub, struct audit_verify_result *res);

/*
 * pglog_verify() with a verifier the caller set up (its keys, a --since
 * note: audit.h), for the head's log id (pglog_head()); it is freed.
 */
int	 pglog_verify_with(struct pglog *, struct audit_verifier *,
	    struct audit_verify_result *res);

/*
 * The whole log in one snapshot, in the order of the export format
 * (docs/audit-format.md): head(arg, log id, size, checkpoints) once, then
 * every checkpoint sorted by size, then every entry in seq order; a
 * callback's non-zero return stops the walk. The structures passed live
 * until the callback returns. Returns 0, or -1 with err (a callback's stop
 * is not an error).
 */
typedef int (*pglog_head_cb)(const unsigned char log_id[16], uint64_t size,
	    uint64_t checkpoints, void *);
int	 pglog_walk(struct pglog *, pglog_head_cb, audit_checkpoint_cb, audit_cb,
	    void *arg, char *err, size_t errlen);

/*
 * The readers (pglog_query.c, pglog_proof.c): each has the arguments and
 * the answers of the SQLite log's audit_X of the same name (audit.h),
 * for the daemon's auditor, feed, proof and reconciliation routes, and
 * returns 0 or -1 with err as it does. Several statements read in one
 * REPEATABLE READ, READ ONLY snapshot; a lost connection is opened again
 * by the next call.
 */
int	 pglog_scan(struct pglog *, uint64_t from, uint64_t limit, audit_cb,
	    void *, char *err, size_t errlen);
int	 pglog_query(struct pglog *, const struct audit_filter *, uint64_t after,
	    uint64_t limit, int newest_first, audit_cb, void *, char *err,
	    size_t errlen);
int	 pglog_stats(struct pglog *, const struct audit_filter *, const char *by,
	    audit_stat_cb, void *, char *err, size_t errlen);
int	 pglog_reviews_pending(struct pglog *, audit_cb, void *, char *err,
	    size_t errlen);
int	 pglog_inform_pending(struct pglog *, audit_cb, void *, char *err,
	    size_t errlen);
int	 pglog_checkpoints(struct pglog *, audit_checkpoint_cb, void *, char *err,
	    size_t errlen);
int	 pglog_checkpoint_note(struct pglog *, uint64_t size, char **note,
	    char *err, size_t errlen);
int	 pglog_checkpoint_note_upto(struct pglog *, uint64_t max, char **note,
	    char *err, size_t errlen);
int	 pglog_holder_batches(struct pglog *, uint64_t since, audit_batch_cb,
	    void *, char *err, size_t errlen);
int	 pglog_last_store(struct pglog *, char *out, size_t len, char *err,
	    size_t errlen);
int	 pglog_consistency(struct pglog *, uint64_t m, uint64_t n,
	    unsigned char proof[][32], size_t *len, char *err, size_t errlen);
int	 pglog_inclusion(struct pglog *, uint64_t seq, uint64_t n,
	    unsigned char proof[][32], size_t *len, char *err, size_t errlen);
int	 pglog_root(struct pglog *, uint64_t n, unsigned char root[32], char *err,
	    size_t errlen);

/*
 * A connection string named for messages: "host=... port=... dbname=...
 * user=..." and nothing else (never the password), into out; 0, or -1
 * with err when it does not parse (without libpq's message, which may
 * quote the password). pglog_conninfo_scrub() replaces the string's
 * password wherever it appears in msg (a NUL-terminated message), for
 * errors that come back from libpq. In pglog_conninfo.c.
 */
int	 pglog_conninfo_label(const char *conninfo, char *out, size_t len, char *err,
	    size_t errlen);
void	 pglog_conninfo_scrub(const char *conninfo, char *msg);

/* The server process of the handle's connection (tests terminate it). */
int	 pglog_backend_pid(struct pglog *);

/*
 * Tests only: fn(arg, i) is called after entry i (1-based) of a batch has
 * been inserted, inside the transaction, to kill or abort it there.
 */
void	 pglog_set_test_hook(struct pglog *, void (*fn)(void *, size_t), void *arg);

#endif
