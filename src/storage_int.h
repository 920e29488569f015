/*
 * Inside the storage interface: what a backend gives storage.c. A backend
 * is one constant struct storage_ops (storage_sqlite.c, storage_pg.c)
 * whose functions take the backend's own handle (h: a struct store * or a
 * struct pgstore *) and are store.h's, person.h's and pgstore.h's with the
 * same arguments and answers. Not for the daemon or the CLI, which see
 * storage.h only.
 */
#ifndef SAFESHARE_STORAGE_INT_H
#define SAFESHARE_STORAGE_INT_H

#include "storage.h"

struct storage_ops {
	const char	*name;		/* "sqlite", "postgresql" */
	/* The handle at where (a path, a connection string) into *h: 0, -1. */
	int (*open)(void **h, const char *where, char *err, size_t errlen);
	void (*close)(void *h);
	/* By where, before an open: 1 remembered, 0 nothing, -1 with err. */
	int (*log_memory)(const char *where, unsigned char log_id[16],
	    uint64_t *size, char *err, size_t errlen);
	const char *(*id)(void *h);
	int64_t (*created_at)(void *h);
	int (*subject)(void *h, const struct record_type *rt,
	    const char *subject, const char *agency, const char *purpose,
	    struct store_subject *out, char *err, size_t errlen);
	/* NULL: storage_subject_queue() is subject() (storage.h). */
	int (*subject_queue)(void *h, const struct record_type *rt,
	    const char *subject, const char *agency, const char *purpose,
	    struct store_subject *out, storage_subject_cb cb, void *arg,
	    char *err, size_t errlen);
	void (*flush)(void *h);
	/* NULL: the reads are done at once (storage.h, storage_send()). */
	int (*reads_apart)(void *h, char *err, size_t errlen);
	void (*send)(void *h);
	int (*fd)(void *h);
	void (*input)(void *h);
	void (*read_begin)(void *h);
	void (*read_end)(void *h);
	int (*begin)(void *h, char *err, size_t errlen);
	int (*commit)(void *h, char *err, size_t errlen);
	void (*rollback)(void *h);
	int (*put_record)(void *h, const char *subject, const char *record_type,
	    const char *holder, int64_t verified_at, const char *const *names,
	    const char *const *values, size_t n, char *err, size_t errlen);
	int (*add_consent)(void *h, const char *subject,
	    enum consent_state state, const char *agencies,
	    const char *purposes, int64_t expires_at, int64_t decided_at,
	    const char *recorded_by, int64_t recorded_at, char *err,
	    size_t errlen);
	int (*set_flag)(void *h, const char *subject, const char *flag,
	    const char *set_by, int64_t set_at, char *err, size_t errlen);
	int (*delete_record)(void *h, const char *subject,
	    const char *record_type, char *err, size_t errlen);
	int (*remove_flag)(void *h, const char *subject, const char *flag,
	    const char *removed_by, int64_t removed_at, char *err,
	    size_t errlen);
	int (*flag_active)(void *h, const char *subject, const char *flag,
	    char *err, size_t errlen);
	int (*consent_same)(void *h, const char *subject,
	    enum consent_state state, const char *agencies,
	    const char *purposes, int64_t expires_at, int64_t decided_at,
	    char *err, size_t errlen);
	int (*record_same)(void *h, const char *subject,
	    const char *record_type, const char *holder, int64_t verified_at,
	    int same_day, const char *const *names, const char *const *values,
	    size_t n, char *err, size_t errlen);
	int (*subject_holder)(void *h, const char *subject, char *holder,
	    size_t len, char *err, size_t errlen);
	int (*show)(void *h, const char *subject, size_t max_history,
	    const struct store_show_cb *cb, void *arg, char *err,
	    size_t errlen);
	int (*mark_batch)(void *h, const char *request_id, uint64_t first_seq,
	    int64_t now, char *err, size_t errlen);
	int (*batch_applied)(void *h, const char *request_id, char *err,
	    size_t errlen);
	int (*batch_lock)(void *h, const char *request_id, int wait, char *err,
	    size_t errlen);
	void (*batch_unlock)(void *h, const char *request_id);
	int (*prefetch)(void *h, char *const *subjects, size_t n, char *err,
	    size_t errlen);	/* NULL: nothing to do */
	int (*lock_nhs)(void *h, const char *const *nhs, size_t n, char *err,
	    size_t errlen);	/* NULL: nothing to do */
	/* NULL where the backend has no shared outboxes (SQLite). */
	int (*outbox_claim)(void *h, const char *agency, uint64_t start,
	    int *held, uint64_t *cursor, char *err, size_t errlen);
	int (*outbox_save)(void *h, const char *agency, uint64_t cursor,
	    char *err, size_t errlen);
	void (*set_connect_wait)(void *h, int ms);	/* NULL: no connection */
	/* The subject-read cache's counters (store_cache.c). */
	void (*cache_stats)(void *h, struct store_cache_stats *);
	int (*batch_claim)(void *h, const char *request_id, uint64_t first_seq,
	    char *err, size_t errlen);	/* NULL: one daemon, always 1 */
	int (*link_nhs)(void *h, const char *subject, const char *nhs,
	    char *err, size_t errlen);
	int (*unlink_nhs)(void *h, const char *subject, char *err,
	    size_t errlen);
	int (*nhs_clash)(void *h, const char *subject, const char *nhs,
	    char *other, size_t len, char *err, size_t errlen);
	int (*nhs_of)(void *h, const char *subject, char out[MATCH_NHS_LEN + 1],
	    char *err, size_t errlen);
	int (*set_details)(void *h, const char *subject, const char *family,
	    const char *given, const char *dob, const char *postcode, char *err,
	    size_t errlen);
	int (*find)(void *h, const struct match_query *q,
	    struct match_result *res, char *err, size_t errlen);
	int (*holding)(void *h, int64_t person, const char *holder,
	    char *subject, size_t len, char *err, size_t errlen);
	int (*holdings)(void *h, int64_t person, person_holding_cb cb,
	    void *arg, char *err, size_t errlen);
	int (*records)(void *h, int64_t person, person_record_cb cb, void *arg,
	    char *err, size_t errlen);
	int (*of_holding)(void *h, const char *holder, const char *subject,
	    int64_t *person, char *err, size_t errlen);
	int (*note_load)(void *h, const char *file, size_t subjects,
	    int64_t now, char *err, size_t errlen);
	int (*unlogged_loads)(void *h, store_load_cb cb, void *arg, char *err,
	    size_t errlen);
	/* After a bulk load committed: NULL where there is nothing to do. */
	int (*after_load)(void *h, char *err, size_t errlen);
	int (*load_logged)(void *h, int64_t id, uint64_t seq, char *err,
	    size_t errlen);
	int (*remember_log)(void *h, const unsigned char log_id[16],
	    uint64_t size, int wait, char *err, size_t errlen);
	int (*forget_log)(void *h, char *err, size_t errlen);
};

/*
 * The handle: the backend's table and its connection. own is 0 for a
 * storage_wrap_sqlite() handle, whose store stays the caller's.
 */
struct storage {
	const struct storage_ops	*ops;
	void				*h;
	int				 own;
};

#endif
