/*
 * The storage interface (issue 19, docs/deploy-ha.md "The storage
 * interface"): one handle over the record store of either backend, the
 * SQLite file (store.h, person.h) or PostgreSQL (pgstore.h). The policy,
 * wire and HTTP code call storage_X and do not know which backend is in
 * use; each storage_X is one call through the backend's struct storage_ops
 * (storage_int.h) to store_X/person_X or pgstore_X/pgstore_person_X, with
 * the same arguments and the same answers, so the comments in store.h and
 * person.h are this interface's. Every function that can fail returns -1
 * (or NULL) plus the caller's err/errlen (docs/hacking.md "Errors").
 *
 * A handle is one backend connection, used by one thread at a time: the
 * daemon opens one per thread (event loop, holder writer, notifier).
 */
#ifndef SAFESHARE_STORAGE_H
#define SAFESHARE_STORAGE_H

#include <stddef.h>
#include <stdint.h>

#include "match.h"
#include "person.h"
#include "protocol.h"
#include "store.h"
#include "util.h"

struct storage;
struct storage_ops;

/*
 * The backends. storage_sqlite is in libsafeshare-core; storage_postgresql
 * is in libsafeshare-pg (src/storage_pg.c), so only a program that names it
 * links libpq.
 */
extern const struct storage_ops storage_sqlite;
extern const struct storage_ops storage_postgresql;

/*
 * Opens backend's store at where: the SQLite file's path, or a libpq
 * connection string. 0 with *s the caller's to close with storage_close(),
 * or -1 with err (*s NULL).
 */
int	storage_open(struct storage **s, const struct storage_ops *backend,
	    const char *where, char *err, size_t errlen);
/*
 * A handle over a SQLite store the caller opened and keeps owning (the
 * tests that also read it with store_*): storage_close() frees the handle
 * only. 0, or -1 with err.
 */
int	storage_wrap_sqlite(struct storage **s, struct store *, char *err,
	    size_t errlen);
void	storage_close(struct storage *);
/* The backend's name: "sqlite" or "postgresql". */
const char *storage_backend(const struct storage *);

/* Which store this is (store_id(), store_created_at()). */
const char *storage_id(struct storage *);
int64_t	storage_created_at(struct storage *);

/* Reads for a decision (store_subject()); free with store_subject_free(). */
int	storage_subject(struct storage *, const struct record_type *rt,
	    const char *subject, const char *agency, const char *purpose,
	    struct store_subject *out, char *err, size_t errlen);
/*
 * storage_subject() that may wait for storage_flush(): a backend that reads
 * a loop round's requests together (PostgreSQL: one statement for all,
 * pgstore_batch.c) queues the read and returns 1, and storage_flush() calls
 * cb with 0 (out filled) or -1 and the error (out empty, nothing to
 * release). Otherwise the read is done at once, as storage_subject(): 0
 * (out filled) or -1 with err, and cb is not called. The strings and out
 * must last until cb. SQLite reads at once (a function call, no server).
 */
typedef void (*storage_subject_cb)(int rc, const char *err, void *arg);
int	storage_subject_queue(struct storage *, const struct record_type *rt,
	    const char *subject, const char *agency, const char *purpose,
	    struct store_subject *out, storage_subject_cb cb, void *arg,
	    char *err, size_t errlen);
void	storage_flush(struct storage *);
/*
 * The event loop's way of waiting for the queued reads without stopping:
 * storage_reads_apart() (once, at start) gives the queued reads a
 * connection of their own (PostgreSQL; nothing on SQLite); then
 * storage_send() sends what is queued unless a statement is in flight, and
 * while storage_fd() is not -1 the caller waits for it to be readable and
 * calls storage_input(), which calls the callbacks once the answer is
 * whole and sends what was queued meanwhile. Without reads_apart (and on
 * SQLite) storage_send() is storage_flush() and storage_fd() is -1.
 */
int	storage_reads_apart(struct storage *, char *err, size_t errlen);
void	storage_send(struct storage *);
int	storage_fd(struct storage *);
void	storage_input(struct storage *);
void	storage_read_begin(struct storage *);
void	storage_read_end(struct storage *);

/* A write transaction and the writes and questions inside it (store.h). */
int	storage_begin(struct storage *, char *err, size_t errlen);
int	storage_commit(struct storage *, char *err, size_t errlen);
void	storage_rollback(struct storage *);
int	storage_put_record(struct storage *, const char *subject,
	    const char *record_type, const char *holder, int64_t verified_at,
	    const char *const *names, const char *const *values, size_t n,
	    char *err, size_t errlen);
int	storage_add_consent(struct storage *, const char *subject,
	    enum consent_state state, const char *agencies,
	    const char *purposes, int64_t expires_at, int64_t decided_at,
	    const char *recorded_by, int64_t recorded_at, char *err,
	    size_t errlen);
int	storage_set_flag(struct storage *, const char *subject,
	    const char *flag, const char *set_by, int64_t set_at, char *err,
	    size_t errlen);
int	storage_delete_record(struct storage *, const char *subject,
	    const char *record_type, char *err, size_t errlen);
int	storage_remove_flag(struct storage *, const char *subject,
	    const char *flag, const char *removed_by, int64_t removed_at,
	    char *err, size_t errlen);
int	storage_flag_active(struct storage *, const char *subject,
	    const char *flag, char *err, size_t errlen);
int	storage_consent_same(struct storage *, const char *subject,
	    enum consent_state state, const char *agencies,
	    const char *purposes, int64_t expires_at, int64_t decided_at,
	    char *err, size_t errlen);
int	storage_record_same(struct storage *, const char *subject,
	    const char *record_type, const char *holder, int64_t verified_at,
	    int same_day, const char *const *names, const char *const *values,
	    size_t n, char *err, size_t errlen);
int	storage_subject_holder(struct storage *, const char *subject,
	    char *holder, size_t len, char *err, size_t errlen);
int	storage_show(struct storage *, const char *subject, size_t max_history,
	    const struct store_show_cb *cb, void *arg, char *err,
	    size_t errlen);
/*
 * In the batch's transaction: 0 marked applied, 1 (PostgreSQL) a start's
 * reconciliation claimed it to log it rolled back (storage_batch_claim()):
 * the caller rolls back and applies nothing; -1 err (marked before).
 */
int	storage_mark_batch(struct storage *, const char *request_id,
	    uint64_t first_seq, int64_t now, char *err, size_t errlen);
int	storage_batch_applied(struct storage *, const char *request_id,
	    char *err, size_t errlen);
/*
 * A holder batch being applied, claimed by request id so that another
 * daemon's reconciliation on the same database leaves it alone: 1 held,
 * 0 (without wait) another holds it, -1 err. One unlock per lock. On
 * SQLite one daemon owns the store, so the lock is always 1 and a no-op.
 */
int	storage_batch_lock(struct storage *, const char *request_id, int wait,
	    char *err, size_t errlen);
void	storage_batch_unlock(struct storage *, const char *request_id);
/*
 * How long (ms) this handle's reconnects may wait for the database server
 * (PostgreSQL; tried at most once a second while it is away, failing at
 * once in between); 0, the default, waits the connection string's
 * connect_timeout (5 s unless it sets one). Nothing on SQLite.
 */
void	storage_set_connect_wait(struct storage *, int ms);
/*
 * Before a start logs a batch rolled back (daemon/holder_reconcile.c,
 * holding the batch's lock): claims it in the store, so that a daemon
 * that lost its session and applies it later finds the claim and rolls
 * its apply back (storage_mark_batch() answers 1). 1 claimed; 2 claimed
 * before (by a start that logged it, or by the daemon whose apply failed,
 * which holds the batch's lock until its entry is logged, or by one that
 * died first: the caller, holding the lock and having read the log afresh,
 * logs it); 0 applied meanwhile (log nothing); -1 err. Always 1 on SQLite
 * (one daemon).
 */
int	storage_batch_claim(struct storage *, const char *request_id,
	    uint64_t first_seq, char *err, size_t errlen);
/*
 * Inside a write transaction, before a holder batch's ops: the subjects
 * the batch names, read (and locked, on PostgreSQL) in one go, so that
 * the ops' ownership checks need no round trip each. subjects may repeat.
 * 0, or -1 err. Nothing to do on SQLite, where every read is local.
 */
int	storage_prefetch(struct storage *, char *const *subjects, size_t n,
	    char *err, size_t errlen);
/*
 * Inside a write transaction, before its first link: the NHS numbers it
 * may link (nhs[0..n), repeats allowed), or every number (nhs NULL), so
 * that links of one number by two daemons serialise (D18) in an order
 * that cannot deadlock, with a bounded number of locks however many
 * numbers (PostgreSQL: docs/deploy-ha.md "NHS number locks"). A link it
 * did not name is locked as it comes. 0, or -1 with err. Nothing to do on
 * SQLite, whose one writer serialises everything.
 */
int	storage_lock_nhs(struct storage *, const char *const *nhs, size_t n,
	    char *err, size_t errlen);
/*
 * Outbound notification (daemon/notify.c) with several daemons on one
 * database: one deliverer per receiving agency, and its cursor (the last
 * seq delivered) in the database. storage_outbox_claim(): *held in, what
 * the caller believes; out, whether this connection holds agency's
 * delivery role, and then *cursor (a new one starts at start); 0, or -1
 * with err. storage_outbox_save() moves the cursor on; -1 when the role
 * was lost. Only on PostgreSQL (deploy-ha.md): on SQLite, -1 saying so
 * (one daemon, whose cursors are files beside the log).
 */
int	storage_outbox_claim(struct storage *, const char *agency, uint64_t start,
	    int *held, uint64_t *cursor, char *err, size_t errlen);
int	storage_outbox_save(struct storage *, const char *agency, uint64_t cursor,
	    char *err, size_t errlen);

/*
 * The subject-read cache's counters (store.h), for /metrics; all zero on a
 * handle without one (on PostgreSQL only the event loop's, given a read
 * connection of its own, has one).
 */
void	storage_cache_stats(struct storage *, struct store_cache_stats *);

/* Persons and the subject index (person.h). */
int	storage_link_nhs(struct storage *, const char *subject, const char *nhs,
	    char *err, size_t errlen);
int	storage_unlink_nhs(struct storage *, const char *subject, char *err,
	    size_t errlen);
int	storage_nhs_clash(struct storage *, const char *subject,
	    const char *nhs, char *other, size_t len, char *err, size_t errlen);
int	storage_nhs_of(struct storage *, const char *subject,
	    char out[MATCH_NHS_LEN + 1], char *err, size_t errlen);
int	storage_set_details(struct storage *, const char *subject,
	    const char *family, const char *given, const char *dob,
	    const char *postcode, char *err, size_t errlen);
int	storage_find(struct storage *, const struct match_query *q,
	    struct match_result *res, char *err, size_t errlen);
int	storage_holding(struct storage *, int64_t person, const char *holder,
	    char *subject, size_t len, char *err, size_t errlen);
int	storage_holdings(struct storage *, int64_t person, person_holding_cb cb,
	    void *arg, char *err, size_t errlen);
int	storage_records(struct storage *, int64_t person, person_record_cb cb,
	    void *arg, char *err, size_t errlen);
int	storage_of_holding(struct storage *, const char *holder,
	    const char *subject, int64_t *person, char *err, size_t errlen);

/*
 * Data files loaded with `safeshared -l` (store_note_load() and the rest)
 * and what the store remembers of its log (issue 13 item 5; on PostgreSQL
 * the row store_log, pgstore_log.c), on both backends.
 * storage_log_memory() reads by where, before the store is open, and
 * creates nothing.
 */
int	storage_note_load(struct storage *, const char *file, size_t subjects,
	    int64_t now, char *err, size_t errlen);
int	storage_unlogged_loads(struct storage *, store_load_cb cb, void *arg,
	    char *err, size_t errlen);
int	storage_load_logged(struct storage *, int64_t id, uint64_t seq,
	    char *err, size_t errlen);
/*
 * After a bulk load has committed, outside any transaction: on PostgreSQL
 * the store's tables are analyzed (pgstore_analyze()), so that the
 * planner sees the rows just loaded; nothing on SQLite. 0, or -1 with err
 * (the load stays committed).
 */
int	storage_after_load(struct storage *, char *err, size_t errlen);
int	storage_log_memory(const struct storage_ops *backend, const char *where,
	    unsigned char log_id[16], uint64_t *size, char *err, size_t errlen);
int	storage_remember_log(struct storage *, const unsigned char log_id[16],
	    uint64_t size, int wait, char *err, size_t errlen);
int	storage_forget_log(struct storage *, char *err, size_t errlen);

/*
 * Loads a YAML data file (config/demo-data.yaml's format) checked against
 * the protocol, all or nothing, through the calls above (src/dataload.c).
 * Problems go to diag.
 */
int	storage_load_yaml(struct storage *, const struct protocol *,
	    const char *path, int64_t now, struct diag *);

#endif
