/*
 * The disclosure log (D7, D15-D17): an append-only SQLite file of its own
 * (WAL, synchronous=FULL). Each entry is chained to the one before by
 * entry_hash = SHA-256(prev_hash || canonical entry bytes), and signed
 * checkpoints, one per group commit, are C2SP signed notes (Ed25519) over
 * the Merkle tree of the entries (RFC 9162). The formats are specified in
 * docs/audit-format.md.
 *
 * One connection writes (the daemon's log writer thread); readers open
 * their own connection with audit_open_reader().
 *
 * The code is split by concern (src/audit.c's first comment says which
 * file holds what); audit_int.h is what those files share.
 */
#ifndef SAFESHARE_AUDIT_H
#define SAFESHARE_AUDIT_H

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

#include "audit_fields.h"

#define AUDIT_SCHEMA_VERSION	3
#define AUDIT_NOTE_MAX		8192	/* bytes in a signed checkpoint note */
#define AUDIT_MAX_PROOF		128	/* hashes in a Merkle proof (MERKLE_MAX_PROOF) */

/* One entry. Strings may be NULL (encoded as empty). */
struct audit_entry {
	uint64_t	 seq;		/* assigned by audit_append() */
	int64_t		 time;		/* Unix seconds */
#define F(name)	const char *name;
	AUDIT_STRING_FIELDS(F)	/* audit_fields.h */
#undef F
	uint64_t	 ref_seq;	/* the entry a review or inform note is about */
	unsigned char	 prev_hash[32];
	unsigned char	 hash[32];
};

/* The string members of an entry in canonical order, as pointers to them. */
void	audit_entry_strings(struct audit_entry *, const char **ptrs[AUDIT_NSTRINGS]);
extern const char *const audit_string_names[AUDIT_NSTRINGS];

/*
 * A checkpoint. Since schema version 3 every group commit has one, a C2SP
 * signed note over the Merkle tree (note, see docs/audit-format.md); the
 * other members then repeat what the note says, for listing, and verify
 * reads only the note. A legacy checkpoint (note NULL) is the 87-byte
 * message of version 2 signed over the chain head.
 */
struct audit_checkpoint {
	uint64_t	 id;
	unsigned char	 log_id[16];
	uint64_t	 size;		/* entries covered: 1..size */
	unsigned char	 head[32];	/* hash of entry `size` */
	int64_t		 time;
	unsigned char	 sig[64];	/* Ed25519 */
	const char	*note;		/* the signed note, or NULL (legacy) */
};

/*
 * What a commit gives each of its entries: the checkpoint note that signs
 * the tree including it, and its inclusion proof in that tree.
 */
struct audit_receipt {
	uint64_t	 seq;
	unsigned char	 leaf[32];	/* RFC 9162 leaf hash of the entry's hash */
	const char	*checkpoint;	/* the note; NULL when the log is unsigned */
	size_t		 nproof;
	unsigned char	 proof[AUDIT_MAX_PROOF][32];
};

/* Filters for queries and stats; NULL/0 members do not filter. */
struct audit_filter {
	const char	*subject;
	const char	*agency;
	const char	*practitioner;
	const char	*purpose;
	const char	*decision;
	const char	*reason;
	const char	*kind;
	int		 overrides_only;
	int64_t		 from_time;	/* inclusive */
	int64_t		 to_time;	/* exclusive; 0: no bound */
};

/*
 * A verify's verdict. why and index_why are findings the caller prints
 * (safeshare audit verify, GET /v1/audit/verify), not an error return:
 * "checkpoint 3 belongs to another log", or that the log could not be read,
 * which is itself a log that does not verify (docs/hacking.md "Errors").
 */
struct audit_verify_result {
	uint64_t	 entries;	/* entries that verified */
	uint64_t	 checkpoints;	/* checkpoints whose signature verified */
	uint64_t	 bad_seq;	/* first bad entry, 0 if none */
	uint64_t	 bad_checkpoint; /* first bad checkpoint (its number), 0 if none */
	uint64_t	 checkpoints_seen; /* checkpoints read, verified or not */
	int		 ok;
	int		 signatures_checked;
	char		 why[256];
	/* Filled by audit_verify_index(): the subject index, if checked. */
	int		 index_checked;
	uint64_t	 index_upto;
	uint64_t	 index_missing;	/* entries it lacks */
	uint64_t	 index_extra;	/* rows the log does not have */
	int		 index_error;	/* it could not be checked: index_why */
	char		 index_why[256];
};

struct audit;

int		 audit_open(struct audit **, const char *path, char *err, size_t errlen);
int		 audit_open_reader(struct audit **, const char *path, char *err,
		    size_t errlen);
void		 audit_close(struct audit *);

/*
 * WAL checkpoints off the append path. audit_wal_manual() stops the
 * writing connection checkpointing on its own commits (copying a thousand
 * pages and an fsync of the database file used to stall the commit that
 * crossed the threshold, and every reply waiting on it); audit_wal_pages()
 * says how many pages its last commit left in the WAL. A second
 * connection, opened with audit_open_checkpointer() and used only with
 * audit_wal_checkpoint() and audit_close(), copies them into the database
 * from another thread while appends go on (a passive checkpoint), and says
 * in *left how many frames it found still to copy (0: the WAL is all in
 * the database, and the next commit starts it again from the beginning).
 * Each returns 0, or -1 with the reason in err.
 */
int		 audit_wal_manual(struct audit *, char *err, size_t errlen);
/*
 * Pipelined commits (daemon/logq.c): COMMIT writes the WAL frames but does
 * not fsync them (WAL with synchronous=NORMAL); the caller makes them
 * durable itself with fdatasync() on the log's -wal file, and must not
 * report an entry written before that returned. Returns 0 or -1 with err.
 */
int		 audit_defer_sync(struct audit *, char *err, size_t errlen);
/*
 * With pipelined commits, called by the group commit on the writer's
 * thread after its statements (entries, tree, signed checkpoint) and
 * before COMMIT writes the WAL frames: logq.c waits there for the
 * fdatasync in progress to return, so that the frames are never written
 * into the -wal while it is being synced (NULL: no gate).
 */
void		 audit_set_commit_gate(struct audit *, void (*)(void *), void *);
int		 audit_wal_pages(struct audit *);
int		 audit_open_checkpointer(struct audit **, const char *path, char *err,
		    size_t errlen);
int		 audit_wal_checkpoint(struct audit *, int *left, char *err, size_t errlen);
/*
 * On the writing connection: copies the whole WAL into the database,
 * waiting (its busy timeout, DB_BUSY_MS) for another connection's
 * checkpoint and for readers of the WAL, so that the next commit starts
 * the WAL again from its beginning (SQLITE_CHECKPOINT_RESTART). Returns 0,
 * 1 if a reader or checkpoint still held the WAL when the wait ran out,
 * or -1 with the reason in err.
 */
int		 audit_wal_restart(struct audit *, char *err, size_t errlen);

/*
 * The subject index: a database of its own next to the log
 * (<log>-subjects), built behind it, not by appends (an index in the log
 * cost one random B-tree page per entry in every commit). Queries by
 * subject use it up to the seq it is complete for and the log after that,
 * so they are right whether it lags, is missing or belongs to another log.
 * audit_index_open() creates it (or starts it again for a new log);
 * audit_index_update() indexes at most `most` more entries in one
 * transaction and says how many are left. Each returns 0, or -1 with
 * the reason in err.
 */
struct audit_index;
int		 audit_index_open(struct audit_index **, const char *log, char *err,
		    size_t errlen);
int		 audit_index_update(struct audit_index *, uint64_t most, uint64_t *left,
		    char *err, size_t errlen);
/*
 * 1 if the file at the index's path is gone or is another file (deleted to
 * have it rebuilt): its writer should close it and open the path again.
 */
int		 audit_index_replaced(struct audit_index *);
void		 audit_index_close(struct audit_index *);
/*
 * Checks the subject index beside a log against the log itself, up to the
 * seq it claims (*upto): entries naming a subject that it lacks (*missing:
 * a subject-access report would miss them) and rows the log does not have
 * (*extra). Returns 0, 1 if there is no index file the log's queries use,
 * or -1 with err. It sorts both sides: about 3 s for a million entries.
 */
int		 audit_index_check(struct audit *, uint64_t *upto, uint64_t *missing,
		    uint64_t *extra, char *err, size_t errlen);
/*
 * audit_index_check() into res's index fields (index_checked 0: no index
 * the log's queries use). Returns -1 on error, with index_error set and
 * the reason in index_why.
 */
int		 audit_verify_index(struct audit *, struct audit_verify_result *res);
/*
 * What the subject index beside the log at path remembers: the log id it
 * indexes and the seq it is complete up to. Returns 1 if it names a log,
 * 0 if there is no index (or it names none), -1 if it cannot be read.
 */
int		 audit_index_remembers(const char *log, unsigned char log_id[16],
		    uint64_t *upto);
uint64_t	 audit_size(struct audit *);
void		 audit_log_id(struct audit *, unsigned char out[16]);

/*
 * Issue 13 item 5: what the store (or the subject index) remembers of the
 * log it was used with, and whether the log found at start may be used
 * with it. Pure: who names the rememberer in why ("the store"); exists: the
 * log file was there; log_id, size: the log's. Returns 0 (it is that log,
 * at least as long as remembered) or -1 with why saying what happened: the
 * log missing, another log, or shorter than remembered.
 */
struct audit_memory {
	unsigned char	 log_id[16];
	uint64_t	 size;		/* the largest size seen (high-water mark) */
};
int		 audit_memory_check(const struct audit_memory *, const char *who,
		    int exists, const unsigned char log_id[16], uint64_t size,
		    char *why, size_t whylen);

/*
 * Sets the Ed25519 private key, read from keyfile, which must not be
 * group/world readable, that signs the checkpoint of every commit; the key
 * is kept in memory only. every and seconds are kept for old configs and
 * ignored (audit.checkpoint_every and _seconds, docs/config.md).
 */
int		 audit_set_signer(struct audit *, const char *keyfile, uint64_t every,
		    int64_t seconds, char *err, size_t errlen);
/* Checks that keyfile would be accepted by audit_set_signer(); 0 or -1 with err. */
int		 audit_check_signer(const char *keyfile, char *err, size_t errlen);
/* The signer's public key as PEM (caller frees), or NULL. */
char		*audit_public_pem(struct audit *);
/*
 * The checks of audit_set_signer() and the key they accept, for the
 * PostgreSQL log (logstore_pg.c): an Ed25519 private key in a file that is
 * not group/world readable. The caller frees it; NULL with err.
 */
EVP_PKEY	*audit_load_signer(const char *keyfile, char *err, size_t errlen);
/* A public key as PEM (caller frees), or NULL. */
char		*audit_key_pem(EVP_PKEY *);
/*
 * The key that signed the log until now, for the one start that rotates
 * to the key given to audit_set_signer() (docs/security.md): the start-up
 * check then logs a key_rotation entry whose checkpoint this key signs,
 * naming the new key (next-key); after that it is not needed.
 */
int		 audit_set_previous_signer(struct audit *, const char *keyfile,
		    char *err, size_t errlen);
/*
 * The start-up check (D7, D16): the last checkpoint is signed by this
 * signer (or by the previous one, and the rotation is then logged), the
 * tree at its size has its root, entry `size` hashes to what it says, and
 * no entry lies past it; a log with checkpoints needs a signer; a log of
 * schema version 2 gets its first tree checkpoint. With dry_run (safeshared
 * -t) nothing is written. Returns 0, or -1 with the reason in err: the
 * daemon must not start.
 */
int		 audit_check_start(struct audit *, int dry_run, char *err, size_t errlen);
/*
 * 1 when the file the log was opened from has since been deleted or
 * replaced (another inode at the path): appends then fail, and keep
 * failing, because they would go to a file no one will read.
 */
int		 audit_file_gone(struct audit *);
/*
 * The note of the latest checkpoint (size 0) or of the checkpoint at size:
 * *note is the caller's to free. Returns 0, 1 if there is none, or -1
 * with err.
 */
int		 audit_checkpoint_note(struct audit *, uint64_t size, char **note,
		    char *err, size_t errlen);
/*
 * The note of the latest checkpoint over at most max entries: what the
 * daemon hands out is capped at the size its log writer knows is durable
 * (daemon/logq.c, pipelined commits). Returns 0, 1 if there is none, or -1
 * with err.
 */
int		 audit_checkpoint_note_upto(struct audit *, uint64_t max,
		    char **note, char *err, size_t errlen);
/*
 * RFC 9162 proofs from the stored tree: the consistency of the tree of
 * size m with that of size n, and the inclusion of entry seq in the tree
 * of size n (n at most the log's size). Each fills proof (room for
 * AUDIT_MAX_PROOF hashes) and *len; returns 0 or -1 with err.
 */
int		 audit_consistency(struct audit *, uint64_t m, uint64_t n,
		    unsigned char proof[][32], size_t *len, char *err, size_t errlen);
int		 audit_inclusion(struct audit *, uint64_t seq, uint64_t n,
		    unsigned char proof[][32], size_t *len, char *err, size_t errlen);
/* The Merkle tree root of the first n entries: 0 or -1 with err. */
int		 audit_root(struct audit *, uint64_t n, unsigned char root[32],
		    char *err, size_t errlen);

/*
 * Appends entries in one durable transaction (group commit), with a
 * checkpoint when one is due: on 0 every entry has its seq and hash and is
 * on disk. On -1 nothing was written, the in-memory head is unchanged and
 * err says why (the daemon's /healthz "why" and event=audit_failed).
 */
int		 audit_append(struct audit *, struct audit_entry **, size_t n,
		    char *err, size_t errlen);
/*
 * audit_append(), and on success a receipt per entry in rc[0..n): its
 * checkpoint points into the log's memory and lasts until the next append.
 * An entry's time is never earlier than the entry's before it: a clock
 * that went back is overruled (and a warning logged), D7.
 */
int		 audit_append_receipts(struct audit *, struct audit_entry **, size_t n,
		    struct audit_receipt *rc, char *err, size_t errlen);
/* Kept for callers of version 2: every commit now signs its own checkpoint. */
int		 audit_checkpoint_due(struct audit *, int64_t now);

/* Computes an entry's hash from its fields and prev_hash. */
void		 audit_hash(const struct audit_entry *, unsigned char out[32]);
/* The bytes a legacy (version 2) checkpoint signature covers (87 bytes). */
size_t		 audit_checkpoint_message(const struct audit_checkpoint *,
		    unsigned char out[128]);

/*
 * The readers below return 0, or -1 with the reason in err (a callback
 * that stops the walk is not a failure).
 *
 * Iterates entries in seq order; the callback returns non-zero to stop.
 */
typedef int (*audit_cb)(const struct audit_entry *, void *);
int		 audit_scan(struct audit *, uint64_t from, uint64_t limit, audit_cb,
		    void *, char *err, size_t errlen);
/* Entries matching a filter with seq > after, at most limit (0: no limit). */
int		 audit_query(struct audit *, const struct audit_filter *, uint64_t after,
		    uint64_t limit, int newest_first, audit_cb, void *, char *err,
		    size_t errlen);
/* Counts grouped by agency, purpose, decision, reason or day. */
typedef int (*audit_stat_cb)(const char *key, uint64_t count, void *);
int		 audit_stats(struct audit *, const struct audit_filter *, const char *by,
		    audit_stat_cb, void *, char *err, size_t errlen);
/*
 * Holder batches (entries of kind holder sharing a request_id) after seq
 * `since` with no rolled_back entry: cb(request_id, first seq, agency,
 * store, time): store is the entries' case_ref ("store:<id>", empty in
 * entries written before stores had ids), time the first entry's. The
 * daemon checks each batch meant for its store against that store at
 * start (a crash between logging a batch and applying it).
 */
typedef int	(*audit_batch_cb)(const char *request_id, uint64_t first_seq,
		    const char *agency, const char *store, int64_t time, void *);
int		 audit_holder_batches(struct audit *, uint64_t since, audit_batch_cb,
		    void *, char *err, size_t errlen);
/*
 * The case_ref of the newest entry of kind `store` (a store opened or a
 * data file loaded, issue 15) into out; "" when there is none. 0, or -1
 * with err.
 */
int		 audit_last_store(struct audit *, char *out, size_t len, char *err,
		    size_t errlen);
/*
 * SQLite's virtual machine steps the two look-ups above have taken on this
 * handle: a test's measure that the daemon's start reads what it needs, not
 * the whole log.
 */
uint64_t	 audit_start_steps(struct audit *);
/* Overrides awaiting review (D15), or inform-the-subject items outstanding (D6). */
int		 audit_reviews_pending(struct audit *, audit_cb, void *, char *err,
		    size_t errlen);
int		 audit_inform_pending(struct audit *, audit_cb, void *, char *err,
		    size_t errlen);
/* Every checkpoint, legacy ones too, sorted by size. */
typedef int (*audit_checkpoint_cb)(const struct audit_checkpoint *, void *);
int		 audit_checkpoints(struct audit *, audit_checkpoint_cb, void *,
		    char *err, size_t errlen);

/*
 * Streaming verification, shared by the database and export readers:
 * checkpoints first (sorted by size), then entries in order.
 */
struct audit_verifier;
struct audit_verifier *audit_verifier_new(EVP_PKEY *pub, const unsigned char log_id[16]);
/* Another key trusted to have signed checkpoints (a list, not a chain). */
void		 audit_verifier_trust(struct audit_verifier *, EVP_PKEY *);
/*
 * A checkpoint note the auditor kept from before (--since): the log must
 * still reach its size with its root. Returns 0, or -1 with err when the
 * note cannot be read or no trusted key signed it.
 */
int		 audit_verifier_since(struct audit_verifier *, const char *note,
		    char *err, size_t errlen);
int		 audit_verifier_checkpoint(struct audit_verifier *,
		    const struct audit_checkpoint *);
int		 audit_verifier_entry(struct audit_verifier *, const struct audit_entry *);
void		 audit_verifier_finish(struct audit_verifier *, struct audit_verify_result *);
void		 audit_verifier_free(struct audit_verifier *);

/*
 * Recomputes the whole chain and, with a public key, every checkpoint
 * signature. Fills *res; returns 0 when everything verifies.
 */
int		 audit_verify(struct audit *, EVP_PKEY *pub, struct audit_verify_result *);
/* The same with a verifier set up by the caller (keys, --since); frees it. */
int		 audit_verify_with(struct audit *, struct audit_verifier *,
		    struct audit_verify_result *);

/* Reads a PEM public key (or a private key, taking its public half). */
EVP_PKEY	*audit_load_public_key(const char *path, char *err, size_t errlen);

#endif
