/*
 * The storage interface (storage.h): the handle and one storage_X per
 * operation, each a single call through the backend's table, so the
 * disclosure path pays one indirect call per store call and nothing else
 * (no allocation, no copy). The backends' tables are in storage_sqlite.c
 * and storage_pg.c.
 */
#include <stdlib.h>
#include <string.h>

#include "storage.h"
#include "storage_int.h"
#include "util.h"

int
storage_open(struct storage **sp, const struct storage_ops *backend,
    const char *where, char *err, size_t errlen)
{
	struct storage	*s;

	*sp = NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return errorf(err, errlen, "storage: out of memory");
	s->ops = backend;
	s->own = 1;
	if (backend->open(&s->h, where, err, errlen) == -1) {
		free(s);
		return -1;
	}
	*sp = s;
	return 0;
}

int
storage_wrap_sqlite(struct storage **sp, struct store *st, char *err,
    size_t errlen)
{
	struct storage	*s;

	*sp = NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return errorf(err, errlen, "storage: out of memory");
	s->ops = &storage_sqlite;
	s->h = st;
	*sp = s;
	return 0;
}

void
storage_close(struct storage *s)
{
	if (s == NULL)
		return;
	if (s->own)
		s->ops->close(s->h);
	free(s);
}

const char *
storage_backend(const struct storage *s)
{
	return s->ops->name;
}

int
storage_log_memory(const struct storage_ops *backend, const char *where,
    unsigned char log_id[16], uint64_t *size, char *err, size_t errlen)
{
	return backend->log_memory(where, log_id, size, err, errlen);
}

const char *
storage_id(struct storage *s)
{
	return s->ops->id(s->h);
}

int64_t
storage_created_at(struct storage *s)
{
	return s->ops->created_at(s->h);
}

int
storage_subject(struct storage *s, const struct record_type *rt,
    const char *subject, const char *agency, const char *purpose,
    struct store_subject *out, char *err, size_t errlen)
{
	return s->ops->subject(s->h, rt, subject, agency, purpose, out, err,
	    errlen);
}

int
storage_subject_queue(struct storage *s, const struct record_type *rt,
    const char *subject, const char *agency, const char *purpose,
    struct store_subject *out, storage_subject_cb cb, void *arg, char *err,
    size_t errlen)
{
	if (s->ops->subject_queue == NULL)
		return s->ops->subject(s->h, rt, subject, agency, purpose, out, err,
		    errlen);
	return s->ops->subject_queue(s->h, rt, subject, agency, purpose, out, cb,
	    arg, err, errlen);
}

void
storage_flush(struct storage *s)
{
	if (s->ops->flush != NULL)
		s->ops->flush(s->h);
}

int
storage_reads_apart(struct storage *s, char *err, size_t errlen)
{
	if (s->ops->reads_apart == NULL)
		return 0;
	return s->ops->reads_apart(s->h, err, errlen);
}

void
storage_send(struct storage *s)
{
	if (s->ops->send != NULL)
		s->ops->send(s->h);
	else
		storage_flush(s);
}

int
storage_fd(struct storage *s)
{
	return s->ops->fd != NULL ? s->ops->fd(s->h) : -1;
}

void
storage_input(struct storage *s)
{
	if (s->ops->input != NULL)
		s->ops->input(s->h);
}

void
storage_read_begin(struct storage *s)
{
	s->ops->read_begin(s->h);
}

void
storage_read_end(struct storage *s)
{
	s->ops->read_end(s->h);
}

int
storage_begin(struct storage *s, char *err, size_t errlen)
{
	return s->ops->begin(s->h, err, errlen);
}

int
storage_commit(struct storage *s, char *err, size_t errlen)
{
	return s->ops->commit(s->h, err, errlen);
}

void
storage_rollback(struct storage *s)
{
	s->ops->rollback(s->h);
}

int
storage_put_record(struct storage *s, const char *subject,
    const char *record_type, const char *holder, int64_t verified_at,
    const char *const *names, const char *const *values, size_t n, char *err,
    size_t errlen)
{
	return s->ops->put_record(s->h, subject, record_type, holder,
	    verified_at, names, values, n, err, errlen);
}

int
storage_add_consent(struct storage *s, const char *subject,
    enum consent_state state, const char *agencies, const char *purposes,
    int64_t expires_at, int64_t decided_at, const char *recorded_by,
    int64_t recorded_at, char *err, size_t errlen)
{
	return s->ops->add_consent(s->h, subject, state, agencies, purposes,
	    expires_at, decided_at, recorded_by, recorded_at, err, errlen);
}

int
storage_set_flag(struct storage *s, const char *subject, const char *flag,
    const char *set_by, int64_t set_at, char *err, size_t errlen)
{
	return s->ops->set_flag(s->h, subject, flag, set_by, set_at, err,
	    errlen);
}

int
storage_delete_record(struct storage *s, const char *subject,
    const char *record_type, char *err, size_t errlen)
{
	return s->ops->delete_record(s->h, subject, record_type, err, errlen);
}

int
storage_remove_flag(struct storage *s, const char *subject, const char *flag,
    const char *removed_by, int64_t removed_at, char *err, size_t errlen)
{
	return s->ops->remove_flag(s->h, subject, flag, removed_by, removed_at,
	    err, errlen);
}

int
storage_flag_active(struct storage *s, const char *subject, const char *flag,
    char *err, size_t errlen)
{
	return s->ops->flag_active(s->h, subject, flag, err, errlen);
}

int
storage_consent_same(struct storage *s, const char *subject,
    enum consent_state state, const char *agencies, const char *purposes,
    int64_t expires_at, int64_t decided_at, char *err, size_t errlen)
{
	return s->ops->consent_same(s->h, subject, state, agencies, purposes,
	    expires_at, decided_at, err, errlen);
}

int
storage_record_same(struct storage *s, const char *subject,
    const char *record_type, const char *holder, int64_t verified_at,
    int same_day, const char *const *names, const char *const *values, size_t n,
    char *err, size_t errlen)
{
	return s->ops->record_same(s->h, subject, record_type, holder,
	    verified_at, same_day, names, values, n, err, errlen);
}

int
storage_subject_holder(struct storage *s, const char *subject, char *holder,
    size_t len, char *err, size_t errlen)
{
	return s->ops->subject_holder(s->h, subject, holder, len, err, errlen);
}

int
storage_show(struct storage *s, const char *subject, size_t max_history,
    const struct store_show_cb *cb, void *arg, char *err, size_t errlen)
{
	return s->ops->show(s->h, subject, max_history, cb, arg, err, errlen);
}

int
storage_mark_batch(struct storage *s, const char *request_id,
    uint64_t first_seq, int64_t now, char *err, size_t errlen)
{
	return s->ops->mark_batch(s->h, request_id, first_seq, now, err,
	    errlen);
}

int
storage_batch_applied(struct storage *s, const char *request_id, char *err,
    size_t errlen)
{
	return s->ops->batch_applied(s->h, request_id, err, errlen);
}

int
storage_batch_lock(struct storage *s, const char *request_id, int wait,
    char *err, size_t errlen)
{
	return s->ops->batch_lock(s->h, request_id, wait, err, errlen);
}

void
storage_batch_unlock(struct storage *s, const char *request_id)
{
	s->ops->batch_unlock(s->h, request_id);
}

int
storage_batch_claim(struct storage *s, const char *request_id,
    uint64_t first_seq, char *err, size_t errlen)
{
	return s->ops->batch_claim != NULL ? s->ops->batch_claim(s->h, request_id,
	    first_seq, err, errlen) : 1;
}

void
storage_set_connect_wait(struct storage *s, int ms)
{
	if (s->ops->set_connect_wait != NULL)
		s->ops->set_connect_wait(s->h, ms);
}

int
storage_prefetch(struct storage *s, char *const *subjects, size_t n, char *err,
    size_t errlen)
{
	return s->ops->prefetch != NULL ? s->ops->prefetch(s->h, subjects, n, err,
	    errlen) : 0;
}

int
storage_lock_nhs(struct storage *s, const char *const *nhs, size_t n,
    char *err, size_t errlen)
{
	return s->ops->lock_nhs != NULL ? s->ops->lock_nhs(s->h, nhs, n, err,
	    errlen) : 0;
}

int
storage_outbox_claim(struct storage *s, const char *agency, uint64_t start,
    int *held, uint64_t *cursor, char *err, size_t errlen)
{
	if (s->ops->outbox_claim == NULL)
		return errorf(err, errlen, "notify cursors in the store: not with "
		    "storage: %s", s->ops->name);
	return s->ops->outbox_claim(s->h, agency, start, held, cursor, err,
	    errlen);
}

int
storage_outbox_save(struct storage *s, const char *agency, uint64_t cursor,
    char *err, size_t errlen)
{
	if (s->ops->outbox_save == NULL)
		return errorf(err, errlen, "notify cursors in the store: not with "
		    "storage: %s", s->ops->name);
	return s->ops->outbox_save(s->h, agency, cursor, err, errlen);
}

void
storage_cache_stats(struct storage *s, struct store_cache_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (s->ops->cache_stats != NULL)
		s->ops->cache_stats(s->h, st);
}

int
storage_link_nhs(struct storage *s, const char *subject, const char *nhs,
    char *err, size_t errlen)
{
	return s->ops->link_nhs(s->h, subject, nhs, err, errlen);
}

int
storage_unlink_nhs(struct storage *s, const char *subject, char *err,
    size_t errlen)
{
	return s->ops->unlink_nhs(s->h, subject, err, errlen);
}

int
storage_nhs_clash(struct storage *s, const char *subject, const char *nhs,
    char *other, size_t len, char *err, size_t errlen)
{
	return s->ops->nhs_clash(s->h, subject, nhs, other, len, err, errlen);
}

int
storage_nhs_of(struct storage *s, const char *subject,
    char out[MATCH_NHS_LEN + 1], char *err, size_t errlen)
{
	return s->ops->nhs_of(s->h, subject, out, err, errlen);
}

int
storage_set_details(struct storage *s, const char *subject, const char *family,
    const char *given, const char *dob, const char *postcode, char *err,
    size_t errlen)
{
	return s->ops->set_details(s->h, subject, family, given, dob, postcode,
	    err, errlen);
}

int
storage_find(struct storage *s, const struct match_query *q,
    struct match_result *res, char *err, size_t errlen)
{
	return s->ops->find(s->h, q, res, err, errlen);
}

int
storage_holding(struct storage *s, int64_t person, const char *holder,
    char *subject, size_t len, char *err, size_t errlen)
{
	return s->ops->holding(s->h, person, holder, subject, len, err, errlen);
}

int
storage_holdings(struct storage *s, int64_t person, person_holding_cb cb,
    void *arg, char *err, size_t errlen)
{
	return s->ops->holdings(s->h, person, cb, arg, err, errlen);
}

int
storage_records(struct storage *s, int64_t person, person_record_cb cb,
    void *arg, char *err, size_t errlen)
{
	return s->ops->records(s->h, person, cb, arg, err, errlen);
}

int
storage_of_holding(struct storage *s, const char *holder, const char *subject,
    int64_t *person, char *err, size_t errlen)
{
	return s->ops->of_holding(s->h, holder, subject, person, err, errlen);
}

int
storage_note_load(struct storage *s, const char *file, size_t subjects,
    int64_t now, char *err, size_t errlen)
{
	return s->ops->note_load(s->h, file, subjects, now, err, errlen);
}

int
storage_unlogged_loads(struct storage *s, store_load_cb cb, void *arg,
    char *err, size_t errlen)
{
	return s->ops->unlogged_loads(s->h, cb, arg, err, errlen);
}

int
storage_load_logged(struct storage *s, int64_t id, uint64_t seq, char *err,
    size_t errlen)
{
	return s->ops->load_logged(s->h, id, seq, err, errlen);
}

int
storage_after_load(struct storage *s, char *err, size_t errlen)
{
	if (s->ops->after_load == NULL)
		return 0;
	return s->ops->after_load(s->h, err, errlen);
}

int
storage_remember_log(struct storage *s, const unsigned char log_id[16],
    uint64_t size, int wait, char *err, size_t errlen)
{
	return s->ops->remember_log(s->h, log_id, size, wait, err, errlen);
}

int
storage_forget_log(struct storage *s, char *err, size_t errlen)
{
	return s->ops->forget_log(s->h, err, errlen);
}
