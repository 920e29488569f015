/*
 * The PostgreSQL backend of the log interface (logstore.h): an adapter
 * from the backend's void * handle to pglog.h. The handle keeps what the
 * SQLite log keeps in memory and pglog does not: the signing key (for its
 * public half) and the head as this connection last saw it (its size and
 * the log's id), so that a size asked for while the database is away is
 * the last known one rather than a failure.
 *
 * Each reader is one call to its pglog_X (src/pglog_query.c,
 * pglog_proof.c), which takes the same arguments as audit_X. Key
 * rotation is pglog_rotate()'s, made at start by pg_check_start().
 */
#include <openssl/evp.h>

#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "audit_int.h"
#include "log.h"
#include "logstore.h"
#include "logstore_int.h"
#include "pglog.h"
#include "pglog_int.h"
#include "util.h"

/* One connection's log. */
struct lpg {
	struct pglog	*pl;
	EVP_PKEY	*signer;	/* also held by pl (pglog_set_signer()) */
	EVP_PKEY	*prev;		/* audit.previous_signing_key, for one start */
	uint64_t	 size;		/* the head's, as last seen */
	unsigned char	 log_id[16];
};

#define PL(h)	(((struct lpg *)(h))->pl)

static int
pg_open(void **h, const char *where, enum logstore_mode mode, char *err,
    size_t errlen)
{
	struct lpg	*l;

	if ((l = calloc(1, sizeof(*l))) == NULL)
		return errorf(err, errlen, "PostgreSQL log: out of memory");
	if ((mode == LOGSTORE_WRITER ? pglog_open(&l->pl, where, err, errlen) :
	    pglog_open_reader(&l->pl, where, err, errlen)) == -1 ||
	    pglog_head(l->pl, &l->size, l->log_id, err, errlen) == -1) {
		pglog_close(l->pl);
		free(l);
		return -1;
	}
	*h = l;
	return 0;
}

static void
pg_set_connect_wait(void *h, int ms)
{
	pglog_set_connect_wait(PL(h), ms);
}

static void
pg_close(void *h)
{
	struct lpg	*l = h;

	pglog_close(l->pl);
	EVP_PKEY_free(l->signer);
	EVP_PKEY_free(l->prev);
	free(l);
}

static struct audit *
pg_audit(void *h)
{
	(void)h;
	return NULL;
}

static int
pg_append_receipts(void *h, struct audit_entry **es, size_t n,
    struct audit_receipt *rc, char *err, size_t errlen)
{
	struct lpg	*l = h;

	if (pglog_append(l->pl, es, n, rc, err, errlen) == -1)
		return -1;
	if (n > 0)
		l->size = es[n - 1]->seq;
	return 0;
}

static int
pg_append(void *h, struct audit_entry **es, size_t n, char *err,
    size_t errlen)
{
	return pg_append_receipts(h, es, n, NULL, err, errlen);
}

static int
pg_lock_head(void *h, char *err, size_t errlen)
{
	struct lpg *l = h;

	return pglog_lock_head(l->pl, err, errlen);
}

static void
pg_unlock_head(void *h)
{
	struct lpg *l = h;

	pglog_unlock_head(l->pl);
}

static uint64_t
pg_size(void *h)
{
	struct lpg	*l = h;
	unsigned char	 id[16];
	uint64_t	 size;
	char		 err[256];

	if (pglog_head(l->pl, &size, id, err, sizeof(err)) == 0)
		l->size = size;
	return l->size;
}

static void
pg_log_id(void *h, unsigned char out[16])
{
	memcpy(out, ((struct lpg *)h)->log_id, 16);
}

static int
pg_file_gone(void *h)
{
	(void)h;
	return 0;
}

/* The raw public half of an Ed25519 key: 0 or -1. */
static int
raw_pub(EVP_PKEY *k, unsigned char out[32])
{
	size_t	len = 32;

	return k != NULL && EVP_PKEY_get_raw_public_key(k, out, &len) == 1 &&
	    len == 32 ? 0 : -1;
}

/* Whether the head names a key (a rotation was made) and it is not k. */
static int
rotated_away(int has, const unsigned char key[32], EVP_PKEY *k)
{
	unsigned char	pub[32];

	return has && (raw_pub(k, pub) == -1 || memcmp(pub, key, 32) != 0);
}

/*
 * One round trip: a connection the server dropped (pg_terminate_backend,
 * a restart) only shows when used. pglog_ready() opens it again first if
 * it is known to be lost, so the probe is also how an idle daemon
 * reconnects by itself. It reads the head's key: a daemon whose key was
 * rotated away by another daemon fails closed even while idle, and
 * /healthz says why (its appends are refused the same way).
 */
static int
pg_probe(void *h, char *err, size_t errlen)
{
	struct lpg	*l = h;
	unsigned char	 key[32];
	int		 has;

	if (pglog_head_key(l->pl, &has, key, err, errlen) == -1)
		return -1;
	if (l->signer != NULL && rotated_away(has, key, l->signer))
		return errorf(err, errlen, "%s", PGLOG_ROTATED);
	return 0;
}

/* Every daemon holds the same key (docs/deploy-ha.md "The signing key"). */
static int
pg_set_signer(void *h, const char *keyfile, uint64_t every, int64_t seconds,
    char *err, size_t errlen)
{
	struct lpg	*l = h;
	EVP_PKEY	*k;

	(void)every;
	(void)seconds;
	if ((k = audit_load_signer(keyfile, err, errlen)) == NULL)
		return -1;
	pglog_set_signer(l->pl, k);
	EVP_PKEY_free(l->signer);
	l->signer = k;
	return 0;
}

static char *
pg_public_pem(void *h)
{
	return audit_key_pem(((struct lpg *)h)->signer);
}

/*
 * D16 at start, as much of audit_check_start() as holds with several
 * daemons: each append is one transaction (pglog.h), so there is no torn
 * tail to find, and other daemons may append while this one starts, so
 * the head is not compared with the last checkpoint (the whole chain and
 * every checkpoint are `safeshare audit verify --postgresql`'s). What is
 * checked: the last checkpoint is this log's, and a signed log gets a
 * signer, the key that signed that checkpoint or the key a rotation named
 * in the head row -- a daemon given another key would sign the next
 * commits with it, and the log would no longer verify (every daemon holds
 * the same key: docs/deploy-ha.md). With audit.previous_signing_key the
 * key that signed the last checkpoint, the start makes the rotation
 * (rotate()), unless another daemon just made it.
 */
static int rotate(struct lpg *, char *, size_t);

static int
pg_check_start(void *h, int dry_run, char *err, size_t errlen)
{
	struct lpg	*l = h;
	struct cpnote	 c;
	char		*note = NULL, origin[80], why[128];
	unsigned char	 key[32];
	int		 rc, has;

	if (pglog_head(l->pl, &l->size, l->log_id, err, errlen) == -1 ||
	    pglog_head_key(l->pl, &has, key, err, errlen) == -1)
		return -1;
	if ((rc = pglog_checkpoint_note(l->pl, 0, &note, err, errlen)) != 0)
		return rc == 1 ? 0 : -1;	/* 1: nothing signed yet */
	audit_note_origin(l->log_id, origin);
	if (audit_note_parse(note, &c, why, sizeof(why)) == -1)
		rc = errorf(err, errlen, "the log's last checkpoint: %s", why);
	else if (strcmp(c.origin, origin) != 0)
		rc = errorf(err, errlen, "the log's last checkpoint belongs to "
		    "another log");
	else if (l->signer == NULL)
		rc = errorf(err, errlen, "the log is signed (%llu checkpoints) and "
		    "audit.signing_key is not set: refusing to add unsigned "
		    "entries", (unsigned long long)c.n);
	else if (has && !rotated_away(has, key, l->signer)) {
		/* The head names this key: its rotation is on the log. */
		if (l->prev != NULL)
			log_warnx("event=previous_signing_key_unused reason=\"the "
			    "log's signing key is already audit.signing_key\"");
	} else if (rotated_away(has, key, l->signer) &&
	    rotated_away(has, key, l->prev))
		rc = errorf(err, errlen, "audit.signing_key: %s (a rotation named "
		    "another key at or before checkpoint %llu; docs/deploy-ha.md "
		    "\"The signing key\")", PGLOG_ROTATED, (unsigned long long)c.n);
	else if (audit_note_signed_by(note, &c, l->signer)) {
		if (l->prev != NULL)
			log_warnx("event=previous_signing_key_unused reason=\"the "
			    "log's last checkpoint is already signed by "
			    "audit.signing_key\"");
	} else if (l->prev == NULL || (!audit_note_signed_by(note, &c, l->prev) &&
	    !(has && !rotated_away(has, key, l->prev))))
		rc = errorf(err, errlen, "audit.signing_key is not the key that "
		    "signed the log's last checkpoint (%llu)%s: every daemon on "
		    "one database must hold the same key; to change keys, set "
		    "audit.previous_signing_key to the old key for one start "
		    "(docs/security.md)", (unsigned long long)c.n, l->prev ?
		    ", nor is audit.previous_signing_key" : "");
	else if (!dry_run)
		rc = rotate(l, err, errlen);
	free(note);
	return rc;
}

/*
 * The rotation: the old key signs a checkpoint naming the new one, and
 * the head row names the new key from then on, in one transaction
 * holding the head (pglog_rotate()). Of several daemons starting with the
 * new key at once, one writes it; the others find it made.
 */
static int
rotate(struct lpg *l, char *err, size_t errlen)
{
	uint64_t	 seq = 0;
	char		 cerr[256];
	int		 rc;

	if ((rc = pglog_rotate(l->pl, l->prev, time(NULL), &seq, cerr,
	    sizeof(cerr))) == -1)
		return errorf(err, errlen, "logging the key rotation: %s", cerr);
	if (rc == 1) {
		log_warnx("event=previous_signing_key_unused reason=\"another "
		    "daemon rotated the log's signing key to audit.signing_key\"");
		return 0;
	}
	l->size = seq;
	log_warnx("event=signing_key_rotated seq=%llu", (unsigned long long)seq);
	return 0;
}

static int
pg_verify_with(void *h, struct audit_verifier *v,
    struct audit_verify_result *res)
{
	return pglog_verify_with(PL(h), v, res);
}

/* The old key of a rotation, for one start (pg_check_start()). */
static int
pg_set_previous_signer(void *h, const char *keyfile, char *err, size_t errlen)
{
	struct lpg	*l = h;
	EVP_PKEY	*k;

	if ((k = audit_load_signer(keyfile, err, errlen)) == NULL)
		return -1;
	EVP_PKEY_free(l->prev);
	l->prev = k;
	return 0;
}

/* The readers: pglog_query.c and pglog_proof.c, audit_X's arguments. */
static int
pg_scan(void *h, uint64_t from, uint64_t limit, audit_cb cb, void *arg,
    char *err, size_t errlen)
{
	return pglog_scan(PL(h), from, limit, cb, arg, err, errlen);
}

static int
pg_query(void *h, const struct audit_filter *f, uint64_t after,
    uint64_t limit, int newest_first, audit_cb cb, void *arg, char *err,
    size_t errlen)
{
	return pglog_query(PL(h), f, after, limit, newest_first, cb, arg, err,
	    errlen);
}

static int
pg_stats(void *h, const struct audit_filter *f, const char *by,
    audit_stat_cb cb, void *arg, char *err, size_t errlen)
{
	return pglog_stats(PL(h), f, by, cb, arg, err, errlen);
}

static int
pg_checkpoints(void *h, audit_checkpoint_cb cb, void *arg, char *err,
    size_t errlen)
{
	return pglog_checkpoints(PL(h), cb, arg, err, errlen);
}

static int
pg_checkpoint_note_upto(void *h, uint64_t max, char **note, char *err,
    size_t errlen)
{
	return pglog_checkpoint_note_upto(PL(h), max, note, err, errlen);
}

static int
pg_consistency(void *h, uint64_t m, uint64_t n, unsigned char proof[][32],
    size_t *len, char *err, size_t errlen)
{
	return pglog_consistency(PL(h), m, n, proof, len, err, errlen);
}

static int
pg_holder_batches(void *h, uint64_t since, audit_batch_cb cb, void *arg,
    char *err, size_t errlen)
{
	return pglog_holder_batches(PL(h), since, cb, arg, err, errlen);
}

static int
pg_last_store(void *h, char *out, size_t len, char *err, size_t errlen)
{
	return pglog_last_store(PL(h), out, len, err, errlen);
}

static int
pg_reviews_pending(void *h, audit_cb cb, void *arg, char *err, size_t errlen)
{
	return pglog_reviews_pending(PL(h), cb, arg, err, errlen);
}

static int
pg_inform_pending(void *h, audit_cb cb, void *arg, char *err, size_t errlen)
{
	return pglog_inform_pending(PL(h), cb, arg, err, errlen);
}

const struct logstore_ops logstore_postgresql = {
	.name = "postgresql",
	.open = pg_open,
	.close = pg_close,
	.audit = pg_audit,
	.append = pg_append,
	.append_receipts = pg_append_receipts,
	.lock_head = pg_lock_head,
	.unlock_head = pg_unlock_head,
	.size = pg_size,
	.log_id = pg_log_id,
	.file_gone = pg_file_gone,
	.probe = pg_probe,
	.set_connect_wait = pg_set_connect_wait,
	.set_signer = pg_set_signer,
	.set_previous_signer = pg_set_previous_signer,
	.public_pem = pg_public_pem,
	.check_start = pg_check_start,
	.scan = pg_scan,
	.query = pg_query,
	.stats = pg_stats,
	.checkpoints = pg_checkpoints,
	.checkpoint_note_upto = pg_checkpoint_note_upto,
	.consistency = pg_consistency,
	.holder_batches = pg_holder_batches,
	.last_store = pg_last_store,
	.reviews_pending = pg_reviews_pending,
	.inform_pending = pg_inform_pending,
	.verify_with = pg_verify_with,
};
