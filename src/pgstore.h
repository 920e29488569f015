/*
 * The record store on PostgreSQL (issue 19): records and their fields,
 * consent decisions, risk flags, holder batches, persons and the subject
 * index, with the operations and the answers of the SQLite store (store.h,
 * person.h). Each function mirrors one of those: pgstore_X for store_X,
 * pgstore_person_X for person_X, a struct pgstore * for the struct store *,
 * the same structs in and out, and every failure as -1 plus the caller's
 * err/errlen (docs/hacking.md "Errors"). docs/deploy-ha.md "The storage
 * interface" lists them and the daemon files that will call each.
 *
 * Several daemons share one database, so where two of them could race the
 * database decides: a subject's row is locked (SELECT ... FOR UPDATE) by
 * the transaction that checks its holder or its NHS number before changing
 * it; links of one NHS number queue on an advisory lock; a flag is active
 * once (a partial unique index) and a holder holds a person under one
 * local id (a unique index). A holder batch is one transaction
 * (pgstore_begin() to pgstore_commit()): a failure or a lost connection
 * anywhere in it keeps nothing of it, its holder_batches row included, so
 * the daemon's reconciliation marks it rolled back as with SQLite.
 *
 * The storage interface (storage.h) puts it behind struct storage as the
 * backend storage_postgresql (storage_pg.c); the daemon does not open it
 * yet (docs/deploy-ha.md "Status").
 *
 * A handle is one connection and is used by one thread at a time. A lost
 * connection is opened again (and its statements prepared again) by the
 * next call outside a transaction; inside one, the transaction has failed
 * and the caller rolls it back.
 */
#ifndef SAFESHARE_PGSTORE_H
#define SAFESHARE_PGSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "match.h"
#include "person.h"
#include "store.h"

#define PGSTORE_SCHEMA_VERSION	3

struct pgstore;

/*
 * Connects with a libpq connection string, creates the store's tables if
 * they are missing (under an advisory lock, so two first opens do not
 * race), refuses a store of another schema version and prepares the
 * statements. 0 with *ps the caller's to close with pgstore_close(), or -1
 * with err.
 */
int	pgstore_open(struct pgstore **ps, const char *conninfo, char *err,
	    size_t errlen);
void	pgstore_close(struct pgstore *);
/* store_id() and store_created_at(): the store's id (32 hex digits) and birth. */
const char *pgstore_id(struct pgstore *);
int64_t	pgstore_created_at(struct pgstore *);
/* The server process of the handle's connection (tests terminate it). */
int	pgstore_backend_pid(struct pgstore *);

/* store_subject(): free out with store_subject_free(). */
int	pgstore_subject(struct pgstore *, const struct record_type *,
	    const char *subject, const char *agency, const char *purpose,
	    struct store_subject *out, char *err, size_t errlen);
/*
 * pgstore_subject() for the end of the caller's event-loop round
 * (pgstore_batch.c): the read is queued and 1 returned, and
 * pgstore_batch_run() reads every queued request in one statement and
 * calls each cb with 0 (out filled) or -1 and the error (out empty). The
 * strings and out must last until cb. A full queue reads at once instead:
 * 0 (out filled), or -1 with err; cb is not called then.
 */
typedef void (*pgstore_subject_cb)(int rc, const char *err, void *arg);
/*
 * The event loop's subject-read cache (pgstore_batch.c, on the handle
 * given a read connection by pgstore_reads_apart()); zeros without one.
 */
void	pgstore_cache_stats(const struct pgstore *, struct store_cache_stats *);
int	pgstore_subject_queue(struct pgstore *, const struct record_type *,
	    const char *subject, const char *agency, const char *purpose,
	    struct store_subject *out, pgstore_subject_cb cb, void *arg,
	    char *err, size_t errlen);
void	pgstore_batch_run(struct pgstore *);
/*
 * The event loop's way (pgstore_batch.c): pgstore_reads_apart() opens a
 * connection for the queued reads alone (0, or -1 with err);
 * pgstore_batch_send() sends the queue there, unless a statement is in
 * flight (without that connection it is pgstore_batch_run());
 * pgstore_batch_fd() is the socket to wait for while one is in flight, or
 * -1; pgstore_batch_input() reads what came and, once the answer is
 * whole, calls the batch's callbacks and sends the next.
 */
int	pgstore_reads_apart(struct pgstore *, char *err, size_t errlen);
void	pgstore_batch_send(struct pgstore *);
int	pgstore_batch_fd(struct pgstore *);
void	pgstore_batch_input(struct pgstore *);
/*
 * store_read_begin()/end(): one REPEATABLE READ snapshot for the reads
 * between, begun by the first of them (none, none begun).
 */
void	pgstore_read_begin(struct pgstore *);
void	pgstore_read_end(struct pgstore *);

/* A write transaction (one holder batch); begin ends a read scope first. */
int	pgstore_begin(struct pgstore *, char *err, size_t errlen);
int	pgstore_commit(struct pgstore *, char *err, size_t errlen);
void	pgstore_rollback(struct pgstore *);

/* The writes of store.h, each 0 or -1 with err. */
int	pgstore_put_record(struct pgstore *, const char *subject,
	    const char *record_type, const char *holder, int64_t verified_at,
	    const char *const *names, const char *const *values, size_t n,
	    char *err, size_t errlen);
int	pgstore_add_consent(struct pgstore *, const char *subject, enum consent_state,
	    const char *agencies, const char *purposes, int64_t expires_at,
	    int64_t decided_at, const char *recorded_by, int64_t recorded_at,
	    char *err, size_t errlen);
int	pgstore_set_flag(struct pgstore *, const char *subject, const char *flag,
	    const char *set_by, int64_t set_at, char *err, size_t errlen);
/* Records deleted (0 or 1), or -1. */
int	pgstore_delete_record(struct pgstore *, const char *subject,
	    const char *record_type, char *err, size_t errlen);
/* Flags marked removed (kept as history, D12), or -1. */
int	pgstore_remove_flag(struct pgstore *, const char *subject, const char *flag,
	    const char *removed_by, int64_t removed_at, char *err, size_t errlen);

/*
 * store_subject_holder(): 1 found (into holder), 0 unknown, -1 error.
 * Inside a transaction it locks the subject's row until the commit, so
 * what the caller decides from the answer still holds when it writes.
 */
int	pgstore_subject_holder(struct pgstore *, const char *subject, char *holder,
	    size_t len, char *err, size_t errlen);
int	pgstore_flag_active(struct pgstore *, const char *subject, const char *flag,
	    char *err, size_t errlen);
int	pgstore_consent_same(struct pgstore *, const char *subject,
	    enum consent_state, const char *agencies, const char *purposes,
	    int64_t expires_at, int64_t decided_at, char *err, size_t errlen);
int	pgstore_record_same(struct pgstore *, const char *subject,
	    const char *record_type, const char *holder, int64_t verified_at,
	    int same_day, const char *const *names, const char *const *values,
	    size_t n, char *err, size_t errlen);
int	pgstore_show(struct pgstore *, const char *subject, size_t max_history,
	    const struct store_show_cb *, void *, char *err, size_t errlen);

/* Holder batches: marked inside the batch's transaction; 1/0/-1 applied. */
int	pgstore_mark_batch(struct pgstore *, const char *request_id,
	    uint64_t first_seq, int64_t now, char *err, size_t errlen);
int	pgstore_batch_applied(struct pgstore *, const char *request_id, char *err,
	    size_t errlen);
/*
 * The batch's session-level advisory lock, held by the daemon applying it
 * from before its entries are logged until it is answered, so another
 * daemon's reconciliation never marks it (deploy-ha.md). With wait, blocks
 * and answers 1; without, 1 taken or 0 another session holds it; -1 err.
 * Reentrant per session: one unlock per lock.
 */
int	pgstore_batch_lock(struct pgstore *, const char *request_id, int wait,
	    char *err, size_t errlen);
void	pgstore_batch_unlock(struct pgstore *, const char *request_id);
/*
 * storage_set_connect_wait(): how long (ms) a reconnect of this handle may
 * wait for the server; 0, the default, is connect_timeout's whole wait.
 */
void	pgstore_set_connect_wait(struct pgstore *, int ms);
/* storage_batch_claim(): 1 claimed, 2 claimed before, 0 applied, -1 err. */
int	pgstore_batch_claim(struct pgstore *, const char *request_id,
	    uint64_t first_seq, char *err, size_t errlen);
/* storage_prefetch(): the subjects' rows locked and remembered (pgstore_known.c). */
int	pgstore_prefetch(struct pgstore *, char *const *subjects, size_t n,
	    char *err, size_t errlen);
/* storage_lock_nhs(): the numbers' locks, in a deadlock-free order (pgstore_nhs.c). */
int	pgstore_nhs_lock(struct pgstore *, const char *const *nhs, size_t n,
	    char *err, size_t errlen);

/*
 * Outbound notification's cursors and deliverers with several daemons
 * (pgstore_outbox.c, storage_outbox_claim()): *held in, whether the caller
 * believes it holds agency's delivery lock; out, whether it does, with
 * the cursor (a new row gets start). 0, or -1 with err (*held 0 when the
 * session that held it is gone). pgstore_outbox_save() moves the cursor
 * on, never back; -1 when the lock was lost.
 */
int	pgstore_outbox_claim(struct pgstore *, const char *agency, uint64_t start,
	    int *held, uint64_t *cursor, char *err, size_t errlen);
int	pgstore_outbox_save(struct pgstore *, const char *agency, uint64_t cursor,
	    char *err, size_t errlen);

/*
 * Data files loaded (store_note_load(), store_unlogged_loads(),
 * store_load_logged()): noted in the load's transaction, logged by the
 * daemon later. 0, or -1 with err (a callback's -1 says why itself).
 */
int	pgstore_note_load(struct pgstore *, const char *file, size_t subjects,
	    int64_t now, char *err, size_t errlen);
int	pgstore_unlogged_loads(struct pgstore *, store_load_cb, void *, char *err,
	    size_t errlen);
int	pgstore_load_logged(struct pgstore *, int64_t id, uint64_t seq, char *err,
	    size_t errlen);
/*
 * ANALYZE of the store's tables (pgstore_log.c), outside a transaction,
 * after a bulk load (safeshared -l, safeshare admin migrate) committed:
 * until autovacuum comes round the planner would otherwise plan with the
 * statistics of the empty tables, and the flags query of every disclosure
 * walks all flags. 0, or -1 with err.
 */
int	pgstore_analyze(struct pgstore *, char *err, size_t errlen);

/*
 * Issue 13 item 5 (pgstore_log.c): what the store remembers of the
 * disclosure log it is used with, a row of its own tables (store_log):
 * the log's id and the largest size any daemon has seen it at.
 * store_log_memory()'s answers: pgstore_log_memory() reads it by
 * connection string, without creating anything: 1 remembered, 0 nothing
 * (no store there, a store of schema version 1, or no row yet), -1 with
 * err. pgstore_remember_log() keeps the larger size for the same log and
 * replaces another log's row; wait is accepted for store.h's signature
 * (no holder batch locks the row on PostgreSQL, so it never waits long).
 * pgstore_forget_log() deletes the row (a start with -N). 0, or -1 with
 * err; neither inside a write transaction.
 */
int	pgstore_log_memory(const char *conninfo, unsigned char log_id[16],
	    uint64_t *size, char *err, size_t errlen);
int	pgstore_remember_log(struct pgstore *, const unsigned char log_id[16],
	    uint64_t size, int wait, char *err, size_t errlen);
int	pgstore_forget_log(struct pgstore *, char *err, size_t errlen);

/* Persons and the subject index: person.h's functions, same answers. */
int	pgstore_person_link_nhs(struct pgstore *, const char *subject,
	    const char *nhs, char *err, size_t errlen);
int	pgstore_person_nhs_clash(struct pgstore *, const char *subject,
	    const char *nhs, char *other, size_t len, char *err, size_t errlen);
int	pgstore_person_unlink_nhs(struct pgstore *, const char *subject, char *err,
	    size_t errlen);
int	pgstore_person_nhs_of(struct pgstore *, const char *subject,
	    char out[MATCH_NHS_LEN + 1], char *err, size_t errlen);
int	pgstore_person_set_details(struct pgstore *, const char *subject,
	    const char *family, const char *given, const char *dob,
	    const char *postcode, char *err, size_t errlen);
int	pgstore_person_details_from_record(struct pgstore *, const char *subject,
	    char *err, size_t errlen);
/* The same from the fields just put (the put needs no read back). */
int	pgstore_person_details_of_fields(struct pgstore *, const char *subject,
	    const char *const *names, const char *const *values, size_t n,
	    char *err, size_t errlen);
int	pgstore_person_find(struct pgstore *, const struct match_query *,
	    struct match_result *, char *err, size_t errlen);
int	pgstore_person_of(struct pgstore *, const char *subject, int64_t *person,
	    char *err, size_t errlen);
int	pgstore_person_holding(struct pgstore *, int64_t person, const char *holder,
	    char *subject, size_t len, char *err, size_t errlen);
int	pgstore_person_holdings(struct pgstore *, int64_t person, person_holding_cb,
	    void *, char *err, size_t errlen);
int	pgstore_person_records(struct pgstore *, int64_t person, person_record_cb,
	    void *, char *err, size_t errlen);
int	pgstore_person_of_holding(struct pgstore *, const char *holder,
	    const char *subject, int64_t *person, char *err, size_t errlen);

#endif
