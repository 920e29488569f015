/*
 * The log's signing keys and the start-up check (D7, D16): loading the
 * checkpoint key, the check that the log is what its last checkpoint
 * signed before anything is added to it, key rotation, and whether the
 * log found at start is the one the store remembers.
 */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sqlite3.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "audit_int.h"
#include "log.h"
#include "util.h"

/* Reads the checkpoint signing key; the caller frees it with EVP_PKEY_free(). */
EVP_PKEY *
audit_load_signer(const char *keyfile, char *err, size_t errlen)
{
	EVP_PKEY	*k;
	FILE		*fp;

	if (file_is_secret(keyfile, err, errlen) == -1)
		return NULL;
	if ((fp = fopen(keyfile, "r")) == NULL) {
		snprintf(err, errlen, "%s: %s", keyfile, strerror(errno));
		return NULL;
	}
	k = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
	fclose(fp);
	if (k == NULL || EVP_PKEY_get_id(k) != EVP_PKEY_ED25519) {
		snprintf(err, errlen, "%s: not an Ed25519 private key (PEM)", keyfile);
		EVP_PKEY_free(k);
		return NULL;
	}
	return k;
}

int
audit_check_signer(const char *keyfile, char *err, size_t errlen)
{
	EVP_PKEY	*k;

	if ((k = audit_load_signer(keyfile, err, errlen)) == NULL)
		return -1;
	EVP_PKEY_free(k);
	return 0;
}

int
audit_set_signer(struct audit *a, const char *keyfile, uint64_t every,
    int64_t seconds, char *err, size_t errlen)
{
	EVP_PKEY	*k;

	if ((k = audit_load_signer(keyfile, err, errlen)) == NULL)
		return -1;
	EVP_PKEY_free(a->signer);
	a->signer = k;
	a->cp_every = every ? every : 1000;
	a->cp_seconds = seconds ? seconds : 60;
	return 0;
}

char *
audit_public_pem(struct audit *a)
{
	return audit_key_pem(a->signer);
}

char *
audit_key_pem(EVP_PKEY *key)
{
	BIO	*bio;
	char	*data, *out = NULL;
	long	 len;

	if (key == NULL || (bio = BIO_new(BIO_s_mem())) == NULL)
		return NULL;
	if (PEM_write_bio_PUBKEY(bio, key) == 1 &&
	    (len = BIO_get_mem_data(bio, &data)) > 0) {
		out = xcalloc((size_t)len + 1, 1);
		memcpy(out, data, (size_t)len);
	}
	BIO_free(bio);
	return out;
}

int
audit_set_previous_signer(struct audit *a, const char *keyfile, char *err,
    size_t errlen)
{
	EVP_PKEY	*k;
	FILE		*fp;

	if (file_is_secret(keyfile, err, errlen) == -1)
		return -1;
	if ((fp = fopen(keyfile, "r")) == NULL) {
		snprintf(err, errlen, "%s: %s", keyfile, strerror(errno));
		return -1;
	}
	k = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
	fclose(fp);
	if (k == NULL || EVP_PKEY_get_id(k) != EVP_PKEY_ED25519) {
		snprintf(err, errlen, "%s: not an Ed25519 private key (PEM)", keyfile);
		EVP_PKEY_free(k);
		return -1;
	}
	EVP_PKEY_free(a->prev_signer);
	a->prev_signer = k;
	return 0;
}

/* The hash of entry seq, recomputed from its row and compared: 0 or -1. */
static int
entry_intact(struct audit *a, uint64_t seq)
{
	struct audit_entry	 e;
	sqlite3_stmt		*st;
	char			*sql;
	unsigned char		 h[32];
	int			 ok = 0, rc;

	if ((sql = sqlite3_mprintf("SELECT %s FROM entries WHERE seq = ?1",
	    audit_columns)) == NULL)
		return -1;
	rc = sqlite3_prepare_v2(a->db, sql, -1, &st, NULL);
	sqlite3_free(sql);
	if (rc != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
	if (sqlite3_step(st) == SQLITE_ROW) {
		audit_row_entry(st, &e);
		audit_hash(&e, h);
		ok = memcmp(h, e.hash, 32) == 0;
	}
	sqlite3_finalize(st);
	return ok ? 0 : -1;
}

int
audit_check_start(struct audit *a, int dry_run, char *err, size_t errlen)
{
	struct cpnote	 c;
	char		 why[128], vk[AUDIT_VK_LEN], origin[80], cerr[256];
	unsigned char	 root[32];
	long long	 from = -1;
	int		 by_new, by_old;

	if (a->note == NULL) {
		/* Empty, or of version 2 (read only, by -t): the start upgrades it. */
		if (a->size == 0 || a->legacy)
			return 0;
		/*
		 * Entries and no tree checkpoint: a log of version 2 the
		 * upgrade has just given a tree, and nothing else.
		 */
		if (audit_int_query(a, "SELECT value FROM meta WHERE key = 'v3_from'",
		    &from) == -1 || from != (long long)a->size) {
			snprintf(err, errlen, "the log has %llu entries and no signed tree "
			    "checkpoint: its checkpoints were deleted; refusing to sign "
			    "over it (docs/security.md)", (unsigned long long)a->size);
			return -1;
		}
		if (a->signer == NULL || dry_run)
			return 0;
		log_warnx("event=log_upgraded entries=%llu signed_before=%llu reason=\""
		    "the first tree checkpoint signs the log as it stands\"",
		    (unsigned long long)a->size, (unsigned long long)a->cp_size);
		if (audit_commit(a, NULL, 0, NULL, NULL, NULL, cerr, sizeof(cerr)) == -1)
			return errorf(err, errlen, "signing the upgraded log: %s", cerr);
		return 0;
	}
	if (audit_note_parse(a->note, &c, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "the log's last checkpoint: %s", why);
		return -1;
	}
	audit_note_origin(a->log_id, origin);
	if (strcmp(c.origin, origin) != 0) {
		snprintf(err, errlen, "the log's last checkpoint belongs to another log");
		return -1;
	}
	if (a->signer == NULL) {
		snprintf(err, errlen, "the log is signed (%llu checkpoints) and "
		    "audit.signing_key is not set: refusing to add unsigned entries",
		    (unsigned long long)c.n);
		return -1;
	}
	if (c.size != a->size) {
		snprintf(err, errlen, c.size > a->size ? "the log ends at entry %llu but "
		    "its last checkpoint (%llu) signed %llu: entries were deleted" :
		    "entries %llu.. are past the last checkpoint (%llu, of %llu "
		    "entries): they were added outside the daemon",
		    (unsigned long long)(c.size > a->size ? a->size : c.size + 1),
		    (unsigned long long)c.n, (unsigned long long)c.size);
		return -1;
	}
	/* Any failure here is the one finding below (cerr is not shown). */
	if (audit_root(a, c.size, root, cerr, sizeof(cerr)) == -1 ||
	    memcmp(root, c.root, 32) != 0 ||
	    (c.size > 0 && entry_intact(a, c.size) == -1)) {
		snprintf(err, errlen, "the log differs from what its last checkpoint "
		    "(%llu) signed: it was rewritten; run safeshare audit verify --log",
		    (unsigned long long)c.n);
		return -1;
	}
	by_new = audit_note_signed_by(a->note, &c, a->signer);
	by_old = a->prev_signer != NULL && audit_note_signed_by(a->note, &c, a->prev_signer);
	if (by_new) {
		if (a->prev_signer != NULL)
			log_warnx("event=previous_signing_key_unused reason=\"the log's "
			    "last checkpoint is already signed by audit.signing_key\"");
		return 0;
	}
	if (!by_old) {
		snprintf(err, errlen, "audit.signing_key is not the key that signed the "
		    "log's last checkpoint (%llu)%s; to change keys, set "
		    "audit.previous_signing_key to the old key for one start "
		    "(docs/security.md)", (unsigned long long)c.n, a->prev_signer ?
		    ", nor is audit.previous_signing_key" : "");
		return -1;
	}
	if (dry_run)
		return 0;
	/* The rotation: the old key signs a checkpoint naming the new one. */
	{
		struct audit_entry	 e, *ep = &e;
		char			 just[AUDIT_ROTATION_LEN];

		if (audit_rotation_entry(&e, time(NULL), origin, a->signer, vk,
		    just) == -1) {
			snprintf(cerr, sizeof(cerr), "the new key has no verifier key");
			goto sign_fail;
		}
		if (audit_commit(a, &ep, 1, NULL, a->prev_signer, vk, cerr,
		    sizeof(cerr)) == -1)
			goto sign_fail;
		log_warnx("event=signing_key_rotated checkpoint=%llu next_key=%s",
		    (unsigned long long)a->cp_n, vk);
	}
	return 0;
sign_fail:
	return errorf(err, errlen, "logging the key rotation: %s", cerr);
}

int
audit_rotation_entry(struct audit_entry *e, int64_t now, const char *origin,
    EVP_PKEY *next, char vk[AUDIT_VK_LEN], char just[AUDIT_ROTATION_LEN])
{
	memset(e, 0, sizeof(*e));
	if (audit_verifier_key(origin, next, vk, AUDIT_VK_LEN) == -1)
		return -1;
	e->time = now;
	e->kind = "key_rotation";
	e->decision = "rotate";
	e->reason = "signing_key_changed";
	snprintf(just, AUDIT_ROTATION_LEN, "next-key %s", vk);
	e->justification = just;
	return 0;
}

int
audit_memory_check(const struct audit_memory *mem, const char *who, int exists,
    const unsigned char log_id[16], uint64_t size, char *why, size_t whylen)
{
	char	 hex[33], now[33];

	hex_encode(mem->log_id, 16, hex);
	if (!exists) {
		snprintf(why, whylen, "%s remembers log %s with %llu entries, and "
		    "the log is missing", who, hex, (unsigned long long)mem->size);
		return -1;
	}
	if (memcmp(mem->log_id, log_id, 16) != 0) {
		hex_encode(log_id, 16, now);
		snprintf(why, whylen, "%s remembers log %s with %llu entries, and "
		    "this is %s log %s with %llu entries", who, hex,
		    (unsigned long long)mem->size, size == 0 ? "a new, empty" :
		    "another", now, (unsigned long long)size);
		return -1;
	}
	if (size < mem->size) {
		snprintf(why, whylen, "%s remembers log %s with %llu entries, and "
		    "it has only %llu: entries were cut from its end", who, hex,
		    (unsigned long long)mem->size, (unsigned long long)size);
		return -1;
	}
	return 0;
}
