/*
 * Inside the log interface: what a backend gives logstore.c. A backend is
 * one constant struct logstore_ops (logstore_sqlite.c, logstore_pg.c)
 * whose functions take the backend's own handle (h) and are audit.h's
 * with the same arguments and answers. Not for the daemon, which sees
 * logstore.h only.
 */
#ifndef SAFESHARE_LOGSTORE_INT_H
#define SAFESHARE_LOGSTORE_INT_H

#include "logstore.h"

struct logstore_ops {
	const char	*name;		/* "sqlite", "postgresql" */
	int (*open)(void **h, const char *where, enum logstore_mode mode,
	    char *err, size_t errlen);
	void (*close)(void *h);
	struct audit *(*audit)(void *h);
	int (*append)(void *h, struct audit_entry **es, size_t n, char *err,
	    size_t errlen);
	int (*append_receipts)(void *h, struct audit_entry **es, size_t n,
	    struct audit_receipt *rc, char *err, size_t errlen);
	/* NULL: a log no other daemon appends to (logstore_shared()). */
	int (*lock_head)(void *h, char *err, size_t errlen);
	void (*unlock_head)(void *h);
	uint64_t (*size)(void *h);
	void (*log_id)(void *h, unsigned char out[16]);
	int (*file_gone)(void *h);
	int (*probe)(void *h, char *err, size_t errlen);
	void (*set_connect_wait)(void *h, int ms);	/* NULL: no server */
	int (*set_signer)(void *h, const char *keyfile, uint64_t every,
	    int64_t seconds, char *err, size_t errlen);
	int (*set_previous_signer)(void *h, const char *keyfile, char *err,
	    size_t errlen);
	char *(*public_pem)(void *h);
	int (*check_start)(void *h, int dry_run, char *err, size_t errlen);
	int (*scan)(void *h, uint64_t from, uint64_t limit, audit_cb cb,
	    void *arg, char *err, size_t errlen);
	int (*query)(void *h, const struct audit_filter *f, uint64_t after,
	    uint64_t limit, int newest_first, audit_cb cb, void *arg, char *err,
	    size_t errlen);
	int (*stats)(void *h, const struct audit_filter *f, const char *by,
	    audit_stat_cb cb, void *arg, char *err, size_t errlen);
	int (*checkpoints)(void *h, audit_checkpoint_cb cb, void *arg,
	    char *err, size_t errlen);
	int (*checkpoint_note_upto)(void *h, uint64_t max, char **note,
	    char *err, size_t errlen);
	int (*consistency)(void *h, uint64_t m, uint64_t n,
	    unsigned char proof[][32], size_t *len, char *err, size_t errlen);
	int (*holder_batches)(void *h, uint64_t since, audit_batch_cb cb,
	    void *arg, char *err, size_t errlen);
	int (*last_store)(void *h, char *out, size_t len, char *err,
	    size_t errlen);
	int (*reviews_pending)(void *h, audit_cb cb, void *arg, char *err,
	    size_t errlen);
	int (*inform_pending)(void *h, audit_cb cb, void *arg, char *err,
	    size_t errlen);
	int (*verify_with)(void *h, struct audit_verifier *v,
	    struct audit_verify_result *res);
};

/* The handle: the backend's table and its connection. */
struct logstore {
	const struct logstore_ops	*ops;
	void				*h;
};

#endif
