/*
 * Signing key rotation on the PostgreSQL log (issue 13 item 7 with several
 * daemons: docs/deploy-ha.md "The signing key", docs/security.md).
 *
 * As on SQLite (audit_start.c) the old key signs a checkpoint that names
 * the new public key (next-key), and a verifier follows the keys from the
 * first. What several daemons on one database add is the head row's
 * signer column: NULL until the log's first rotation, then the raw public
 * key every later checkpoint must be signed with. The rotation writes it
 * in the transaction of its checkpoint, holding log_head (pglog_append()
 * with the handle's rot set), so of two daemons starting with the new key
 * at once one rotates and the other, once it holds the row, finds its key
 * already named and appends nothing. Every append compares its handle's
 * key with the column under the same lock (pglog_key_check()): a daemon
 * still holding the old key fails closed, whatever it has in memory.
 *
 * The handle owns nothing here: the rotation's keys are the caller's for
 * the call.
 */
#include <libpq-fe.h>
#include <openssl/evp.h>

#include <stdio.h>
#include <string.h>

#include "audit.h"
#include "audit_int.h"
#include "pglog.h"
#include "pglog_int.h"
#include "util.h"

/* pglog_rotate()'s, on its stack, pointed to by the handle during the append. */
struct pglog_rotation {
	EVP_PKEY	*old;
	unsigned char	 old_pub[32];
	const char	*next_key;	/* the new key's verifier key */
	int		 already;	/* the head named the new key */
};

static int
raw_pub(EVP_PKEY *k, unsigned char out[32])
{
	size_t	len = 32;

	return EVP_PKEY_get_raw_public_key(k, out, &len) == 1 && len == 32 ? 0 : -1;
}

int
pglog_key_check(struct pglog *p, const struct pglog_head *h, char *err,
    size_t errlen)
{
	struct pglog_rotation	*r = p->rot;

	if (r != NULL) {
		if (h->has_key && memcmp(h->key, p->signer_pub, 32) == 0) {
			r->already = 1;
			return errorf(err, errlen, "PostgreSQL log: the key was "
			    "rotated by another daemon");
		}
		/* NULL: the caller checked the old key signed the last checkpoint. */
		if (h->has_key && memcmp(h->key, r->old_pub, 32) != 0)
			return errorf(err, errlen, "PostgreSQL log: the log's signing "
			    "key is neither audit.signing_key nor "
			    "audit.previous_signing_key");
		return 0;
	}
	if (!h->has_key)
		return 0;
	if (p->signer == NULL || memcmp(h->key, p->signer_pub, 32) != 0)
		return errorf(err, errlen, "%s", PGLOG_ROTATED);
	return 0;
}

EVP_PKEY *
pglog_cp_key(const struct pglog *p, const char **next_key)
{
	if (p->rot != NULL) {
		*next_key = p->rot->next_key;
		return p->rot->old;
	}
	*next_key = NULL;
	return p->signer;
}

const unsigned char *
pglog_rotating_to(const struct pglog *p)
{
	return p->rot != NULL ? p->signer_pub : NULL;
}

int
pglog_rotate(struct pglog *p, EVP_PKEY *old, int64_t now, uint64_t *seq,
    char *err, size_t errlen)
{
	struct pglog_rotation	 r;
	struct audit_entry	 e, *ep = &e;
	unsigned char		 id[16];
	uint64_t		 size;
	char			 origin[80], vk[AUDIT_VK_LEN], just[AUDIT_ROTATION_LEN];
	int			 rc;

	if (p->signer == NULL || old == NULL)
		return errorf(err, errlen, "PostgreSQL log: a rotation needs both keys");
	memset(&r, 0, sizeof(r));
	r.old = old;
	if (raw_pub(old, r.old_pub) == -1)
		return errorf(err, errlen, "PostgreSQL log: the old key is not Ed25519");
	if (pglog_head(p, &size, id, err, errlen) == -1)
		return -1;
	audit_note_origin(id, origin);
	/* The entry is the SQLite log's own (audit_rotation_entry()). */
	if (audit_rotation_entry(&e, now, origin, p->signer, vk, just) == -1)
		return errorf(err, errlen, "PostgreSQL log: the new key has no "
		    "verifier key");
	r.next_key = vk;
	p->rot = &r;
	rc = pglog_append(p, &ep, 1, NULL, err, errlen);
	p->rot = NULL;
	if (rc == -1 && r.already)
		return 1;
	if (rc == 0)
		*seq = e.seq;
	return rc;
}

int
pglog_head_key(struct pglog *p, int *has, unsigned char key[32], char *err,
    size_t errlen)
{
	PGresult	*res;

	if (pglog_ready(p, err, errlen) == -1)
		return -1;
	res = PQexecParams(pglog_conn(p), "SELECT signer FROM log_head WHERE one",
	    0, NULL, NULL, NULL, NULL, 1);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		return pglog_fail(pglog_conn(p), res, "head key", err, errlen);
	if (PQntuples(res) != 1 || (!(*has = !PQgetisnull(res, 0, 0)) ? 0 :
	    pglog_col_bytes(res, 0, 0, key, 32)) == -1) {
		PQclear(res);
		return errorf(err, errlen, "PostgreSQL log: the head row is missing or "
		    "malformed");
	}
	PQclear(res);
	return 0;
}
