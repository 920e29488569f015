/*
 * The log interface (logstore.h): the handle and one logstore_X per
 * operation, each a single call through the backend's table, so the
 * disclosure path pays one indirect call per log call and nothing else
 * (no allocation, no copy). The backends' tables are in logstore_sqlite.c
 * and logstore_pg.c.
 */
#include <stdlib.h>

#include "logstore.h"
#include "logstore_int.h"
#include "util.h"

int
logstore_open(struct logstore **lp, const struct logstore_ops *backend,
    const char *where, enum logstore_mode mode, char *err, size_t errlen)
{
	struct logstore	*l;

	*lp = NULL;
	if ((l = calloc(1, sizeof(*l))) == NULL)
		return errorf(err, errlen, "log: out of memory");
	l->ops = backend;
	if (backend->open(&l->h, where, mode, err, errlen) == -1) {
		free(l);
		return -1;
	}
	*lp = l;
	return 0;
}

void
logstore_close(struct logstore *l)
{
	if (l == NULL)
		return;
	l->ops->close(l->h);
	free(l);
}

const char *
logstore_backend(const struct logstore *l)
{
	return l->ops->name;
}

struct audit *
logstore_audit(struct logstore *l)
{
	return l->ops->audit(l->h);
}

int
logstore_append(struct logstore *l, struct audit_entry **es, size_t n,
    char *err, size_t errlen)
{
	return l->ops->append(l->h, es, n, err, errlen);
}

int
logstore_append_receipts(struct logstore *l, struct audit_entry **es,
    size_t n, struct audit_receipt *rc, char *err, size_t errlen)
{
	return l->ops->append_receipts(l->h, es, n, rc, err, errlen);
}

uint64_t
logstore_size(struct logstore *l)
{
	return l->ops->size(l->h);
}

void
logstore_log_id(struct logstore *l, unsigned char out[16])
{
	l->ops->log_id(l->h, out);
}

int
logstore_file_gone(struct logstore *l)
{
	return l->ops->file_gone(l->h);
}

int
logstore_shared(const struct logstore *l)
{
	return l->ops->lock_head != NULL;
}

int
logstore_lock_head(struct logstore *l, char *err, size_t errlen)
{
	if (l->ops->lock_head == NULL)
		return errorf(err, errlen, "%s log: no shared head to lock",
		    l->ops->name);
	return l->ops->lock_head(l->h, err, errlen);
}

void
logstore_unlock_head(struct logstore *l)
{
	if (l->ops->unlock_head != NULL)
		l->ops->unlock_head(l->h);
}

void
logstore_set_connect_wait(struct logstore *l, int ms)
{
	if (l->ops->set_connect_wait != NULL)
		l->ops->set_connect_wait(l->h, ms);
}

int
logstore_probe(struct logstore *l, char *why, size_t whylen)
{
	return l->ops->probe(l->h, why, whylen);
}

int
logstore_set_signer(struct logstore *l, const char *keyfile,
    uint64_t every, int64_t seconds, char *err, size_t errlen)
{
	return l->ops->set_signer(l->h, keyfile, every, seconds, err,
	    errlen);
}

int
logstore_set_previous_signer(struct logstore *l, const char *keyfile,
    char *err, size_t errlen)
{
	return l->ops->set_previous_signer(l->h, keyfile, err, errlen);
}

char *
logstore_public_pem(struct logstore *l)
{
	return l->ops->public_pem(l->h);
}

int
logstore_check_start(struct logstore *l, int dry_run, char *err,
    size_t errlen)
{
	return l->ops->check_start(l->h, dry_run, err, errlen);
}

int
logstore_scan(struct logstore *l, uint64_t from, uint64_t limit,
    audit_cb cb, void *arg, char *err, size_t errlen)
{
	return l->ops->scan(l->h, from, limit, cb, arg, err,
	    errlen);
}

int
logstore_query(struct logstore *l, const struct audit_filter *f,
    uint64_t after, uint64_t limit, int newest_first, audit_cb cb, void *arg,
    char *err, size_t errlen)
{
	return l->ops->query(l->h, f, after, limit, newest_first,
	    cb, arg, err, errlen);
}

int
logstore_stats(struct logstore *l, const struct audit_filter *f,
    const char *by, audit_stat_cb cb, void *arg, char *err, size_t errlen)
{
	return l->ops->stats(l->h, f, by, cb, arg, err, errlen);
}

int
logstore_checkpoints(struct logstore *l, audit_checkpoint_cb cb, void *arg,
    char *err, size_t errlen)
{
	return l->ops->checkpoints(l->h, cb, arg, err, errlen);
}

int
logstore_checkpoint_note_upto(struct logstore *l, uint64_t max,
    char **note, char *err, size_t errlen)
{
	return l->ops->checkpoint_note_upto(l->h, max, note, err, errlen);
}

int
logstore_consistency(struct logstore *l, uint64_t m, uint64_t n,
    unsigned char proof[][32], size_t *len, char *err, size_t errlen)
{
	return l->ops->consistency(l->h, m, n, proof, len, err,
	    errlen);
}

int
logstore_holder_batches(struct logstore *l, uint64_t since,
    audit_batch_cb cb, void *arg, char *err, size_t errlen)
{
	return l->ops->holder_batches(l->h, since, cb, arg, err, errlen);
}

int
logstore_last_store(struct logstore *l, char *out, size_t len,
    char *err, size_t errlen)
{
	return l->ops->last_store(l->h, out, len, err, errlen);
}

int
logstore_reviews_pending(struct logstore *l, audit_cb cb, void *arg,
    char *err, size_t errlen)
{
	return l->ops->reviews_pending(l->h, cb, arg, err, errlen);
}

int
logstore_inform_pending(struct logstore *l, audit_cb cb, void *arg,
    char *err, size_t errlen)
{
	return l->ops->inform_pending(l->h, cb, arg, err, errlen);
}

int
logstore_verify_with(struct logstore *l, struct audit_verifier *v,
    struct audit_verify_result *res)
{
	return l->ops->verify_with(l->h, v, res);
}
