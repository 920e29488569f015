/*
 * The SQLite backend of the log interface (logstore.h): a thin adapter
 * from the backend's void * handle to audit.h, whose functions already
 * take the interface's arguments. The log is the handle's; logstore_close()
 * closes it.
 */
#include <stdlib.h>

#include "audit.h"
#include "logstore.h"
#include "logstore_int.h"
#include "util.h"

static int
sq_open(void **h, const char *where, enum logstore_mode mode, char *err,
    size_t errlen)
{
	struct audit	*a;

	if ((mode == LOGSTORE_WRITER ? audit_open(&a, where, err, errlen) :
	    audit_open_reader(&a, where, err, errlen)) == -1)
		return -1;
	*h = a;
	return 0;
}

static void
sq_close(void *h)
{
	audit_close(h);
}

static struct audit *
sq_audit(void *h)
{
	return h;
}

static int
sq_append(void *h, struct audit_entry **es, size_t n, char *err,
    size_t errlen)
{
	return audit_append(h, es, n, err, errlen);
}

static int
sq_append_receipts(void *h, struct audit_entry **es, size_t n,
    struct audit_receipt *rc, char *err, size_t errlen)
{
	return audit_append_receipts(h, es, n, rc, err, errlen);
}

static uint64_t
sq_size(void *h)
{
	return audit_size(h);
}

static void
sq_log_id(void *h, unsigned char out[16])
{
	audit_log_id(h, out);
}

static int
sq_file_gone(void *h)
{
	return audit_file_gone(h);
}

static int
sq_probe(void *h, char *err, size_t errlen)
{
	if (!audit_file_gone(h))
		return 0;
	return errorf(err, errlen, "the log file was deleted or replaced while "
	    "open");
}

static int
sq_set_signer(void *h, const char *keyfile, uint64_t every,
    int64_t seconds, char *err, size_t errlen)
{
	return audit_set_signer(h, keyfile, every, seconds, err, errlen);
}

static int
sq_set_previous_signer(void *h, const char *keyfile, char *err,
    size_t errlen)
{
	return audit_set_previous_signer(h, keyfile, err, errlen);
}

static char *
sq_public_pem(void *h)
{
	return audit_public_pem(h);
}

static int
sq_check_start(void *h, int dry_run, char *err, size_t errlen)
{
	return audit_check_start(h, dry_run, err, errlen);
}

static int
sq_scan(void *h, uint64_t from, uint64_t limit, audit_cb cb,
    void *arg, char *err, size_t errlen)
{
	return audit_scan(h, from, limit, cb, arg, err, errlen);
}

static int
sq_query(void *h, const struct audit_filter *f, uint64_t after,
    uint64_t limit, int newest_first, audit_cb cb, void *arg, char *err,
    size_t errlen)
{
	return audit_query(h, f, after, limit, newest_first, cb, arg, err,
	    errlen);
}

static int
sq_stats(void *h, const struct audit_filter *f, const char *by,
    audit_stat_cb cb, void *arg, char *err, size_t errlen)
{
	return audit_stats(h, f, by, cb, arg, err, errlen);
}

static int
sq_checkpoints(void *h, audit_checkpoint_cb cb, void *arg, char *err,
    size_t errlen)
{
	return audit_checkpoints(h, cb, arg, err, errlen);
}

static int
sq_checkpoint_note_upto(void *h, uint64_t max, char **note, char *err,
    size_t errlen)
{
	return audit_checkpoint_note_upto(h, max, note, err, errlen);
}

static int
sq_consistency(void *h, uint64_t m, uint64_t n,
    unsigned char proof[][32], size_t *len, char *err, size_t errlen)
{
	return audit_consistency(h, m, n, proof, len, err, errlen);
}

static int
sq_holder_batches(void *h, uint64_t since, audit_batch_cb cb,
    void *arg, char *err, size_t errlen)
{
	return audit_holder_batches(h, since, cb, arg, err, errlen);
}

static int
sq_last_store(void *h, char *out, size_t len, char *err,
    size_t errlen)
{
	return audit_last_store(h, out, len, err, errlen);
}

static int
sq_reviews_pending(void *h, audit_cb cb, void *arg, char *err,
    size_t errlen)
{
	return audit_reviews_pending(h, cb, arg, err, errlen);
}

static int
sq_inform_pending(void *h, audit_cb cb, void *arg, char *err,
    size_t errlen)
{
	return audit_inform_pending(h, cb, arg, err, errlen);
}

static int
sq_verify_with(void *h, struct audit_verifier *v,
    struct audit_verify_result *res)
{
	return audit_verify_with(h, v, res);
}

const struct logstore_ops logstore_sqlite = {
	.name = "sqlite",
	.open = sq_open,
	.close = sq_close,
	.audit = sq_audit,
	.append = sq_append,
	.append_receipts = sq_append_receipts,
	.size = sq_size,
	.log_id = sq_log_id,
	.file_gone = sq_file_gone,
	.probe = sq_probe,
	.set_signer = sq_set_signer,
	.set_previous_signer = sq_set_previous_signer,
	.public_pem = sq_public_pem,
	.check_start = sq_check_start,
	.scan = sq_scan,
	.query = sq_query,
	.stats = sq_stats,
	.checkpoints = sq_checkpoints,
	.checkpoint_note_upto = sq_checkpoint_note_upto,
	.consistency = sq_consistency,
	.holder_batches = sq_holder_batches,
	.last_store = sq_last_store,
	.reviews_pending = sq_reviews_pending,
	.inform_pending = sq_inform_pending,
	.verify_with = sq_verify_with,
};
