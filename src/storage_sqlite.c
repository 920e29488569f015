/*
 * The SQLite backend of the storage interface (storage.h): a thin adapter
 * from the backend's void * handle to store.h and person.h, whose
 * functions already take the interface's arguments. The store is the
 * caller's once open; storage_close() closes it.
 */
#include <stdlib.h>

#include "person.h"
#include "storage.h"
#include "storage_int.h"
#include "store.h"

static int
sq_open(void **h, const char *where, char *err, size_t errlen)
{
	struct store	*st;

	if (store_open(&st, where, err, errlen) == -1)
		return -1;
	*h = st;
	return 0;
}

static void
sq_close(void *h)
{
	store_close(h);
}

static int
sq_log_memory(const char *where, unsigned char log_id[16], uint64_t *size,
    char *err, size_t errlen)
{
	return store_log_memory(where, log_id, size, err, errlen);
}

static const char *
sq_id(void *h)
{
	return store_id(h);
}

static int64_t
sq_created_at(void *h)
{
	return store_created_at(h);
}

static int
sq_subject(void *h, const struct record_type *rt, const char *subject,
    const char *agency, const char *purpose, struct store_subject *out,
    char *err, size_t errlen)
{
	return store_subject(h, rt, subject, agency, purpose, out, err, errlen);
}

static void
sq_read_begin(void *h)
{
	store_read_begin(h);
}

static void
sq_read_end(void *h)
{
	store_read_end(h);
}

static int
sq_begin(void *h, char *err, size_t errlen)
{
	return store_begin(h, err, errlen);
}

static int
sq_commit(void *h, char *err, size_t errlen)
{
	return store_commit(h, err, errlen);
}

static void
sq_rollback(void *h)
{
	store_rollback(h);
}

static int
sq_put_record(void *h, const char *subject, const char *record_type,
    const char *holder, int64_t verified_at, const char *const *names,
    const char *const *values, size_t n, char *err, size_t errlen)
{
	return store_put_record(h, subject, record_type, holder, verified_at,
	    names, values, n, err, errlen);
}

static int
sq_add_consent(void *h, const char *subject, enum consent_state state,
    const char *agencies, const char *purposes, int64_t expires_at,
    int64_t decided_at, const char *recorded_by, int64_t recorded_at, char *err,
    size_t errlen)
{
	return store_add_consent(h, subject, state, agencies, purposes,
	    expires_at, decided_at, recorded_by, recorded_at, err, errlen);
}

static int
sq_set_flag(void *h, const char *subject, const char *flag, const char *set_by,
    int64_t set_at, char *err, size_t errlen)
{
	return store_set_flag(h, subject, flag, set_by, set_at, err, errlen);
}

static int
sq_delete_record(void *h, const char *subject, const char *record_type,
    char *err, size_t errlen)
{
	return store_delete_record(h, subject, record_type, err, errlen);
}

static int
sq_remove_flag(void *h, const char *subject, const char *flag,
    const char *removed_by, int64_t removed_at, char *err, size_t errlen)
{
	return store_remove_flag(h, subject, flag, removed_by, removed_at, err,
	    errlen);
}

static int
sq_flag_active(void *h, const char *subject, const char *flag, char *err,
    size_t errlen)
{
	return store_flag_active(h, subject, flag, err, errlen);
}

static int
sq_consent_same(void *h, const char *subject, enum consent_state state,
    const char *agencies, const char *purposes, int64_t expires_at,
    int64_t decided_at, char *err, size_t errlen)
{
	return store_consent_same(h, subject, state, agencies, purposes,
	    expires_at, decided_at, err, errlen);
}

static int
sq_record_same(void *h, const char *subject, const char *record_type,
    const char *holder, int64_t verified_at, int same_day,
    const char *const *names, const char *const *values, size_t n, char *err,
    size_t errlen)
{
	return store_record_same(h, subject, record_type, holder, verified_at,
	    same_day, names, values, n, err, errlen);
}

static int
sq_subject_holder(void *h, const char *subject, char *holder, size_t len,
    char *err, size_t errlen)
{
	return store_subject_holder(h, subject, holder, len, err, errlen);
}

static int
sq_show(void *h, const char *subject, size_t max_history,
    const struct store_show_cb *cb, void *arg, char *err, size_t errlen)
{
	return store_show(h, subject, max_history, cb, arg, err, errlen);
}

static int
sq_mark_batch(void *h, const char *request_id, uint64_t first_seq, int64_t now,
    char *err, size_t errlen)
{
	return store_mark_batch(h, request_id, first_seq, now, err, errlen);
}

static int
sq_batch_applied(void *h, const char *request_id, char *err, size_t errlen)
{
	return store_batch_applied(h, request_id, err, errlen);
}

/* One daemon owns an SQLite store: nobody else reconciles it meanwhile. */
static int
sq_batch_lock(void *h, const char *request_id, int wait, char *err,
    size_t errlen)
{
	(void)h;
	(void)request_id;
	(void)wait;
	(void)err;
	(void)errlen;
	return 1;
}

static void
sq_batch_unlock(void *h, const char *request_id)
{
	(void)h;
	(void)request_id;
}

static void
sq_cache_stats(void *h, struct store_cache_stats *st)
{
	store_cache_stats(h, st);
}

static int
sq_link_nhs(void *h, const char *subject, const char *nhs, char *err,
    size_t errlen)
{
	return person_link_nhs(h, subject, nhs, err, errlen);
}

static int
sq_unlink_nhs(void *h, const char *subject, char *err, size_t errlen)
{
	return person_unlink_nhs(h, subject, err, errlen);
}

static int
sq_nhs_clash(void *h, const char *subject, const char *nhs, char *other,
    size_t len, char *err, size_t errlen)
{
	return person_nhs_clash(h, subject, nhs, other, len, err, errlen);
}

static int
sq_nhs_of(void *h, const char *subject, char out[MATCH_NHS_LEN + 1], char *err,
    size_t errlen)
{
	return person_nhs_of(h, subject, out, err, errlen);
}

static int
sq_set_details(void *h, const char *subject, const char *family,
    const char *given, const char *dob, const char *postcode, char *err,
    size_t errlen)
{
	return person_set_details(h, subject, family, given, dob, postcode, err,
	    errlen);
}

static int
sq_find(void *h, const struct match_query *q, struct match_result *res,
    char *err, size_t errlen)
{
	return person_find(h, q, res, err, errlen);
}

static int
sq_holding(void *h, int64_t person, const char *holder, char *subject,
    size_t len, char *err, size_t errlen)
{
	return person_holding(h, person, holder, subject, len, err, errlen);
}

static int
sq_holdings(void *h, int64_t person, person_holding_cb cb, void *arg, char *err,
    size_t errlen)
{
	return person_holdings(h, person, cb, arg, err, errlen);
}

static int
sq_records(void *h, int64_t person, person_record_cb cb, void *arg, char *err,
    size_t errlen)
{
	return person_records(h, person, cb, arg, err, errlen);
}

static int
sq_of_holding(void *h, const char *holder, const char *subject, int64_t *person,
    char *err, size_t errlen)
{
	return person_of_holding(h, holder, subject, person, err, errlen);
}

static int
sq_note_load(void *h, const char *file, size_t subjects, int64_t now, char *err,
    size_t errlen)
{
	return store_note_load(h, file, subjects, now, err, errlen);
}

static int
sq_unlogged_loads(void *h, store_load_cb cb, void *arg, char *err,
    size_t errlen)
{
	return store_unlogged_loads(h, cb, arg, err, errlen);
}

static int
sq_load_logged(void *h, int64_t id, uint64_t seq, char *err, size_t errlen)
{
	return store_load_logged(h, id, seq, err, errlen);
}

static int
sq_remember_log(void *h, const unsigned char log_id[16], uint64_t size,
    int wait, char *err, size_t errlen)
{
	return store_remember_log(h, log_id, size, wait, err, errlen);
}

static int
sq_forget_log(void *h, char *err, size_t errlen)
{
	return store_forget_log(h, err, errlen);
}

const struct storage_ops storage_sqlite = {
	.name = "sqlite",
	.open = sq_open,
	.close = sq_close,
	.log_memory = sq_log_memory,
	.id = sq_id,
	.created_at = sq_created_at,
	.subject = sq_subject,
	.read_begin = sq_read_begin,
	.read_end = sq_read_end,
	.begin = sq_begin,
	.commit = sq_commit,
	.rollback = sq_rollback,
	.put_record = sq_put_record,
	.add_consent = sq_add_consent,
	.set_flag = sq_set_flag,
	.delete_record = sq_delete_record,
	.remove_flag = sq_remove_flag,
	.flag_active = sq_flag_active,
	.consent_same = sq_consent_same,
	.record_same = sq_record_same,
	.subject_holder = sq_subject_holder,
	.show = sq_show,
	.mark_batch = sq_mark_batch,
	.batch_applied = sq_batch_applied,
	.batch_lock = sq_batch_lock,
	.batch_unlock = sq_batch_unlock,
	.link_nhs = sq_link_nhs,
	.cache_stats = sq_cache_stats,
	.unlink_nhs = sq_unlink_nhs,
	.nhs_clash = sq_nhs_clash,
	.nhs_of = sq_nhs_of,
	.set_details = sq_set_details,
	.find = sq_find,
	.holding = sq_holding,
	.holdings = sq_holdings,
	.records = sq_records,
	.of_holding = sq_of_holding,
	.note_load = sq_note_load,
	.unlogged_loads = sq_unlogged_loads,
	.load_logged = sq_load_logged,
	.remember_log = sq_remember_log,
	.forget_log = sq_forget_log,
};
