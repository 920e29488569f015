/*
 * The PostgreSQL backend of the storage interface (storage.h): an adapter
 * from the backend's void * handle to pgstore.h, which mirrors store.h
 * and person.h function by function. In libsafeshare-pg, so that only a
 * program that names storage_postgresql links libpq.
 */
#include <stdlib.h>

#include "pgstore.h"
#include "storage.h"
#include "storage_int.h"
#include "util.h"

static int
pg_open(void **h, const char *where, char *err, size_t errlen)
{
	struct pgstore	*ps;

	if (pgstore_open(&ps, where, err, errlen) == -1)
		return -1;
	*h = ps;
	return 0;
}

static void
pg_close(void *h)
{
	pgstore_close(h);
}

static int
pg_log_memory(const char *where, unsigned char log_id[16], uint64_t *size,
    char *err, size_t errlen)
{
	return pgstore_log_memory(where, log_id, size, err, errlen);
}

static const char *
pg_id(void *h)
{
	return pgstore_id(h);
}

static int64_t
pg_created_at(void *h)
{
	return pgstore_created_at(h);
}

static int
pg_subject(void *h, const struct record_type *rt, const char *subject,
    const char *agency, const char *purpose, struct store_subject *out,
    char *err, size_t errlen)
{
	return pgstore_subject(h, rt, subject, agency, purpose, out, err,
	    errlen);
}

static int
pg_subject_queue(void *h, const struct record_type *rt, const char *subject,
    const char *agency, const char *purpose, struct store_subject *out,
    storage_subject_cb cb, void *arg, char *err, size_t errlen)
{
	return pgstore_subject_queue(h, rt, subject, agency, purpose, out, cb,
	    arg, err, errlen);
}

static void
pg_flush(void *h)
{
	pgstore_batch_run(h);
}

static int
pg_reads_apart(void *h, char *err, size_t errlen)
{
	return pgstore_reads_apart(h, err, errlen);
}

static void
pg_send(void *h)
{
	pgstore_batch_send(h);
}

static int
pg_fd(void *h)
{
	return pgstore_batch_fd(h);
}

static void
pg_input(void *h)
{
	pgstore_batch_input(h);
}

static void
pg_read_begin(void *h)
{
	pgstore_read_begin(h);
}

static void
pg_read_end(void *h)
{
	pgstore_read_end(h);
}

static int
pg_begin(void *h, char *err, size_t errlen)
{
	return pgstore_begin(h, err, errlen);
}

static int
pg_commit(void *h, char *err, size_t errlen)
{
	return pgstore_commit(h, err, errlen);
}

static void
pg_rollback(void *h)
{
	pgstore_rollback(h);
}

static int
pg_put_record(void *h, const char *subject, const char *record_type,
    const char *holder, int64_t verified_at, const char *const *names,
    const char *const *values, size_t n, char *err, size_t errlen)
{
	return pgstore_put_record(h, subject, record_type, holder, verified_at,
	    names, values, n, err, errlen);
}

static int
pg_add_consent(void *h, const char *subject, enum consent_state state,
    const char *agencies, const char *purposes, int64_t expires_at,
    int64_t decided_at, const char *recorded_by, int64_t recorded_at, char *err,
    size_t errlen)
{
	return pgstore_add_consent(h, subject, state, agencies, purposes,
	    expires_at, decided_at, recorded_by, recorded_at, err, errlen);
}

static int
pg_set_flag(void *h, const char *subject, const char *flag, const char *set_by,
    int64_t set_at, char *err, size_t errlen)
{
	return pgstore_set_flag(h, subject, flag, set_by, set_at, err, errlen);
}

static int
pg_delete_record(void *h, const char *subject, const char *record_type,
    char *err, size_t errlen)
{
	return pgstore_delete_record(h, subject, record_type, err, errlen);
}

static int
pg_remove_flag(void *h, const char *subject, const char *flag,
    const char *removed_by, int64_t removed_at, char *err, size_t errlen)
{
	return pgstore_remove_flag(h, subject, flag, removed_by, removed_at,
	    err, errlen);
}

static int
pg_flag_active(void *h, const char *subject, const char *flag, char *err,
    size_t errlen)
{
	return pgstore_flag_active(h, subject, flag, err, errlen);
}

static int
pg_consent_same(void *h, const char *subject, enum consent_state state,
    const char *agencies, const char *purposes, int64_t expires_at,
    int64_t decided_at, char *err, size_t errlen)
{
	return pgstore_consent_same(h, subject, state, agencies, purposes,
	    expires_at, decided_at, err, errlen);
}

static int
pg_record_same(void *h, const char *subject, const char *record_type,
    const char *holder, int64_t verified_at, int same_day,
    const char *const *names, const char *const *values, size_t n, char *err,
    size_t errlen)
{
	return pgstore_record_same(h, subject, record_type, holder, verified_at,
	    same_day, names, values, n, err, errlen);
}

static int
pg_subject_holder(void *h, const char *subject, char *holder, size_t len,
    char *err, size_t errlen)
{
	return pgstore_subject_holder(h, subject, holder, len, err, errlen);
}

static int
pg_show(void *h, const char *subject, size_t max_history,
    const struct store_show_cb *cb, void *arg, char *err, size_t errlen)
{
	return pgstore_show(h, subject, max_history, cb, arg, err, errlen);
}

static int
pg_mark_batch(void *h, const char *request_id, uint64_t first_seq, int64_t now,
    char *err, size_t errlen)
{
	return pgstore_mark_batch(h, request_id, first_seq, now, err, errlen);
}

static int
pg_batch_applied(void *h, const char *request_id, char *err, size_t errlen)
{
	return pgstore_batch_applied(h, request_id, err, errlen);
}

static int
pg_batch_lock(void *h, const char *request_id, int wait, char *err,
    size_t errlen)
{
	return pgstore_batch_lock(h, request_id, wait, err, errlen);
}

static void
pg_batch_unlock(void *h, const char *request_id)
{
	pgstore_batch_unlock(h, request_id);
}

static int
pg_batch_claim(void *h, const char *request_id, uint64_t first_seq, char *err,
    size_t errlen)
{
	return pgstore_batch_claim(h, request_id, first_seq, err, errlen);
}

static void
pg_set_connect_wait(void *h, int ms)
{
	pgstore_set_connect_wait(h, ms);
}

static int
pg_prefetch(void *h, char *const *subjects, size_t n, char *err, size_t errlen)
{
	return pgstore_prefetch(h, subjects, n, err, errlen);
}

static int
pg_lock_nhs(void *h, const char *const *nhs, size_t n, char *err,
    size_t errlen)
{
	return pgstore_nhs_lock(h, nhs, n, err, errlen);
}

static int
pg_outbox_claim(void *h, const char *agency, uint64_t start, int *held,
    uint64_t *cursor, char *err, size_t errlen)
{
	return pgstore_outbox_claim(h, agency, start, held, cursor, err, errlen);
}

static int
pg_outbox_save(void *h, const char *agency, uint64_t cursor, char *err,
    size_t errlen)
{
	return pgstore_outbox_save(h, agency, cursor, err, errlen);
}

static void
pg_cache_stats(void *h, struct store_cache_stats *st)
{
	pgstore_cache_stats(h, st);
}

static int
pg_link_nhs(void *h, const char *subject, const char *nhs, char *err,
    size_t errlen)
{
	return pgstore_person_link_nhs(h, subject, nhs, err, errlen);
}

static int
pg_unlink_nhs(void *h, const char *subject, char *err, size_t errlen)
{
	return pgstore_person_unlink_nhs(h, subject, err, errlen);
}

static int
pg_nhs_clash(void *h, const char *subject, const char *nhs, char *other,
    size_t len, char *err, size_t errlen)
{
	return pgstore_person_nhs_clash(h, subject, nhs, other, len, err,
	    errlen);
}

static int
pg_nhs_of(void *h, const char *subject, char out[MATCH_NHS_LEN + 1], char *err,
    size_t errlen)
{
	return pgstore_person_nhs_of(h, subject, out, err, errlen);
}

static int
pg_set_details(void *h, const char *subject, const char *family,
    const char *given, const char *dob, const char *postcode, char *err,
    size_t errlen)
{
	return pgstore_person_set_details(h, subject, family, given, dob,
	    postcode, err, errlen);
}

static int
pg_find(void *h, const struct match_query *q, struct match_result *res,
    char *err, size_t errlen)
{
	return pgstore_person_find(h, q, res, err, errlen);
}

static int
pg_holding(void *h, int64_t person, const char *holder, char *subject,
    size_t len, char *err, size_t errlen)
{
	return pgstore_person_holding(h, person, holder, subject, len, err,
	    errlen);
}

static int
pg_holdings(void *h, int64_t person, person_holding_cb cb, void *arg, char *err,
    size_t errlen)
{
	return pgstore_person_holdings(h, person, cb, arg, err, errlen);
}

static int
pg_records(void *h, int64_t person, person_record_cb cb, void *arg, char *err,
    size_t errlen)
{
	return pgstore_person_records(h, person, cb, arg, err, errlen);
}

static int
pg_of_holding(void *h, const char *holder, const char *subject, int64_t *person,
    char *err, size_t errlen)
{
	return pgstore_person_of_holding(h, holder, subject, person, err,
	    errlen);
}

static int
pg_note_load(void *h, const char *file, size_t subjects, int64_t now,
    char *err, size_t errlen)
{
	return pgstore_note_load(h, file, subjects, now, err, errlen);
}

static int
pg_unlogged_loads(void *h, store_load_cb cb, void *arg, char *err,
    size_t errlen)
{
	return pgstore_unlogged_loads(h, cb, arg, err, errlen);
}

static int
pg_after_load(void *h, char *err, size_t errlen)
{
	return pgstore_analyze(h, err, errlen);
}

static int
pg_load_logged(void *h, int64_t id, uint64_t seq, char *err, size_t errlen)
{
	return pgstore_load_logged(h, id, seq, err, errlen);
}

static int
pg_remember_log(void *h, const unsigned char log_id[16], uint64_t size,
    int wait, char *err, size_t errlen)
{
	return pgstore_remember_log(h, log_id, size, wait, err, errlen);
}

static int
pg_forget_log(void *h, char *err, size_t errlen)
{
	return pgstore_forget_log(h, err, errlen);
}

const struct storage_ops storage_postgresql = {
	.name = "postgresql",
	.open = pg_open,
	.close = pg_close,
	.log_memory = pg_log_memory,
	.id = pg_id,
	.created_at = pg_created_at,
	.subject = pg_subject,
	.subject_queue = pg_subject_queue,
	.flush = pg_flush,
	.reads_apart = pg_reads_apart,
	.send = pg_send,
	.fd = pg_fd,
	.input = pg_input,
	.read_begin = pg_read_begin,
	.read_end = pg_read_end,
	.begin = pg_begin,
	.commit = pg_commit,
	.rollback = pg_rollback,
	.put_record = pg_put_record,
	.add_consent = pg_add_consent,
	.set_flag = pg_set_flag,
	.delete_record = pg_delete_record,
	.remove_flag = pg_remove_flag,
	.flag_active = pg_flag_active,
	.consent_same = pg_consent_same,
	.record_same = pg_record_same,
	.subject_holder = pg_subject_holder,
	.show = pg_show,
	.mark_batch = pg_mark_batch,
	.batch_applied = pg_batch_applied,
	.batch_lock = pg_batch_lock,
	.outbox_claim = pg_outbox_claim,
	.outbox_save = pg_outbox_save,
	.batch_unlock = pg_batch_unlock,
	.prefetch = pg_prefetch,
	.lock_nhs = pg_lock_nhs,
	.set_connect_wait = pg_set_connect_wait,
	.batch_claim = pg_batch_claim,
	.link_nhs = pg_link_nhs,
	.cache_stats = pg_cache_stats,
	.unlink_nhs = pg_unlink_nhs,
	.nhs_clash = pg_nhs_clash,
	.nhs_of = pg_nhs_of,
	.set_details = pg_set_details,
	.find = pg_find,
	.holding = pg_holding,
	.holdings = pg_holdings,
	.records = pg_records,
	.of_holding = pg_of_holding,
	.note_load = pg_note_load,
	.unlogged_loads = pg_unlogged_loads,
	.after_load = pg_after_load,
	.load_logged = pg_load_logged,
	.remember_log = pg_remember_log,
	.forget_log = pg_forget_log,
};
