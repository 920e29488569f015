/*
 * The record store (SQLite, WAL): records of declared record types, consent
 * decisions and risk flags per subject. History of consent and flags is kept,
 * never overwritten (D3, D12). One connection per thread; statements are
 * prepared once and reused.
 */
#ifndef SAFESHARE_STORE_H
#define SAFESHARE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "policy.h"
#include "protocol.h"

#define STORE_SCHEMA_VERSION	2

struct store;

struct scentry;

/*
 * What store_subject() found: its strings are lent by ent, the read it was
 * made from (store_cache.c, on both stores), which it holds a reference
 * to, and are read-only to the caller; an empty one has no ent. Free with
 * store_subject_free().
 */
struct store_subject {
	struct policy_subject	 view;		/* what the policy reads */
	char			*holder;
	char			*values[PROTOCOL_MAX_FIELDS];
	char			**flags;
	size_t			 nflags;
	struct scentry		*ent;		/* lends the strings, or NULL */
};

/*
 * Opens (creating and migrating) the store at path. Every function that can
 * fail returns -1 (or NULL) and writes why into the caller's err (errlen
 * bytes): docs/hacking.md "Errors", convention (1).
 */
int	store_open(struct store **, const char *path, char *err, size_t errlen);
/*
 * The schema version (PRAGMA user_version) store_open() brings a store
 * to: what a reader that does not migrate (the migration to PostgreSQL)
 * requires.
 */
int	store_schema_version(void);
void	store_close(struct store *);

/*
 * Loads a subject's record of one type, the latest consent decision in scope
 * of (agency, purpose) and the active flags. Returns 0 (view.known says
 * whether a record exists) or -1 with err (errlen bytes) on a database error.
 */
int	store_subject(struct store *, const struct record_type *, const char *subject,
	    const char *agency, const char *purpose, struct store_subject *,
	    char *err, size_t errlen);
void	store_subject_free(struct store_subject *);

/*
 * The subject-read cache behind store_subject() (store_cache.c): reads
 * answered from it, reads that went to the database, times it was emptied
 * because the database changed or it was full, and what it holds now.
 */
struct store_cache_stats {
	uint64_t	hits, misses, flushes;
	size_t		entries, bytes;
};
void	store_cache_stats(const struct store *, struct store_cache_stats *);

/*
 * A read scope: every store_subject() until store_read_end() reads the same
 * snapshot under one read transaction, so a burst of requests pays for one
 * lock instead of one each. store_begin() ends an open scope first, so a
 * write and the reads after it see the write. Keep scopes short (the daemon
 * ends its scope every event-loop round): an open snapshot holds back WAL
 * checkpoints.
 */
void	store_read_begin(struct store *);
void	store_read_end(struct store *);

/* The write transaction: 0, or -1 with err. */
int	store_begin(struct store *, char *err, size_t errlen);
int	store_commit(struct store *, char *err, size_t errlen);
void	store_rollback(struct store *);

/* Writes, inside store_begin(); each returns 0, or -1 with err. */
int	store_put_record(struct store *, const char *subject, const char *record_type,
	    const char *holder, int64_t verified_at, const char *const *names,
	    const char *const *values, size_t n, char *err, size_t errlen);
int	store_add_consent(struct store *, const char *subject, enum consent_state,
	    const char *agencies, const char *purposes, int64_t expires_at,
	    int64_t decided_at, const char *recorded_by, int64_t recorded_at,
	    char *err, size_t errlen);
int	store_set_flag(struct store *, const char *subject, const char *flag,
	    const char *set_by, int64_t set_at, char *err, size_t errlen);

/*
 * The holder that owns a subject: 1 found (into holder), 0 unknown, -1 with
 * err.
 */
int	store_subject_holder(struct store *, const char *subject, char *holder,
	    size_t len, char *err, size_t errlen);
/*
 * What a holder reads back about one subject (`safeshare holder show`):
 * each record (type, verified), each field of each record, then consent
 * decisions and flag rows newest first, at most max_history + 1 of each
 * (one more than the caller keeps, so it can say the history was cut).
 * Strings last only for the call; NULL columns come as "" and 0. A
 * callback returns 0, or -1 to stop. Returns 0, or -1 on a database error
 * or a stop (err says which). Ownership is the caller's check.
 */
struct store_show_cb {
	int	(*record)(void *, const char *type, int64_t verified_at);
	int	(*field)(void *, const char *type, const char *name, const char *value);
	int	(*consent)(void *, const char *state, const char *agencies,
		    const char *purposes, int64_t expires_at, int64_t decided_at,
		    const char *recorded_by, int64_t recorded_at);
	int	(*flag)(void *, const char *flag, const char *set_by, int64_t set_at,
		    const char *removed_by, int64_t removed_at);
};
int	store_show(struct store *, const char *subject, size_t max_history,
	    const struct store_show_cb *, void *, char *err, size_t errlen);
/*
 * Deletes a record and its fields; returns how many records went (0 or 1),
 * or -1 with err.
 */
int	store_delete_record(struct store *, const char *subject, const char *record_type,
	    char *err, size_t errlen);
/* 1 if the flag is set on the subject, 0 if not, -1 with err. */
int	store_flag_active(struct store *, const char *subject, const char *flag,
	    char *err, size_t errlen);
/*
 * Marks the active flag removed (kept as history); returns rows changed, or
 * -1 with err.
 */
int	store_remove_flag(struct store *, const char *subject, const char *flag,
	    const char *removed_by, int64_t removed_at, char *err, size_t errlen);

/*
 * No-op detection for holder writes (they are not logged, issue 14): 1 if
 * adding this consent decision would change nothing because the subject's
 * latest decision is identical (state, scope, expiry and the day it was
 * decided, 0 for none), 0 if not, -1 with err.
 */
int	store_consent_same(struct store *, const char *subject, enum consent_state,
	    const char *agencies, const char *purposes, int64_t expires_at,
	    int64_t decided_at, char *err, size_t errlen);
/*
 * 1 if the stored record has this holder, verification time (with
 * same_day, any time on the same UTC day) and exactly these fields and
 * values, 0 if not (or there is none), -1 with err.
 */
int	store_record_same(struct store *, const char *subject, const char *record_type,
	    const char *holder, int64_t verified_at, int same_day,
	    const char *const *names, const char *const *values, size_t n,
	    char *err, size_t errlen);

/*
 * Records, inside the batch's transaction, that a logged holder batch was
 * applied; 0, or -1 with err.
 */
int	store_mark_batch(struct store *, const char *request_id, uint64_t first_seq,
	    int64_t now, char *err, size_t errlen);
/* 1 if the batch was applied, 0 if not, -1 with err on error. */
int	store_batch_applied(struct store *, const char *request_id, char *err,
	    size_t errlen);

/*
 * Which store this is (issue 15): a random id made with the store, 32 hex
 * digits, owned by the store; and when it was made (0: before store ids,
 * unknown). The disclosure log names the store each holder batch went to.
 */
#define STORE_ID_LEN	32
const char *store_id(struct store *);
int64_t	store_created_at(struct store *);

/*
 * Issue 13 item 5: the store remembers the disclosure log it is used with
 * (log_id) and the largest size the daemon has seen it at, a high-water
 * mark written by the daemon at start, every minute and at a clean stop.
 * store_log_memory() reads it read-only by path: 1 remembered, 0 nothing
 * (no store yet, or one from before schema version STORE_LOG_VERSION),
 * -1 unreadable (err says why). store_remember_log() and
 * store_forget_log(): 0, or -1 with err.
 */
#define STORE_LOG_VERSION	6
int	store_log_memory(const char *path, unsigned char log_id[16], uint64_t *size,
	    char *err, size_t errlen);
int	store_remember_log(struct store *, const unsigned char log_id[16],
	    uint64_t size, int wait, char *err, size_t errlen);
int	store_forget_log(struct store *, char *err, size_t errlen);

/*
 * Data files loaded with `safeshared -l`: noted in the load's transaction,
 * and put in the disclosure log by the daemon when it next starts (the
 * only writer of the log). store_unlogged_loads() calls cb oldest first;
 * cb returns -1 to stop, and then says why itself (err is left as it was).
 * All three: 0, or -1 with err.
 */
typedef int (*store_load_cb)(int64_t id, const char *file, size_t subjects,
	    int64_t loaded_at, void *arg);
int	store_note_load(struct store *, const char *file, size_t subjects, int64_t now,
	    char *err, size_t errlen);
int	store_unlogged_loads(struct store *, store_load_cb, void *, char *err,
	    size_t errlen);
int	store_load_logged(struct store *, int64_t id, uint64_t seq, char *err,
	    size_t errlen);

/* Data files are loaded through the storage interface: storage_load_yaml(). */

#endif
