/*
 * Verifying the log (D7): a streaming verifier that the database walk
 * here and the export reader (auditfile.c) both feed, checking the chain,
 * every checkpoint's signature and what it signed, and that nothing was
 * cut, inserted or left unsigned.
 */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sqlite3.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "audit_int.h"
#include "log.h"
#include "merkle.h"
#include "util.h"

/*
 * Streaming verification. Checkpoints come sorted by size, each no later
 * than the entry at its size (a database walk interleaves them; an export
 * may put them all first): a checkpoint's signature, number and time are
 * checked when it arrives, what it signed when the entries reach its size.
 */
struct vcp {
	uint64_t	 id;		/* its number (tree) or row id (legacy) */
	uint64_t	 size;
	int		 legacy;
	int		 held;		/* --since: the auditor's own copy */
	unsigned char	 hash[32];	/* root (tree) or head (legacy) */
};

struct audit_verifier {
	EVP_PKEY		*pub;		/* the first key */
	EVP_PKEY		*cur;		/* the key now, after next-key lines */
	EVP_PKEY		*owned;		/* cur, when a next-key made it */
	EVP_PKEY		**trust;	/* more keys (not owned) */
	size_t			 ntrust;
	unsigned char		 log_id[16];
	char			 origin[80];
	struct vcp		*pend;		/* sorted by size */
	size_t			 npend, cap;
	uint64_t		 expect;
	unsigned char		 prev[32];
	int64_t			 last_time;
	struct merkle_range	 range;
	uint64_t		 covered;	/* the largest checkpoint size */
	uint64_t		 last_n;	/* the last tree checkpoint's number */
	uint64_t		 last_tree_size;
	int64_t			 cp_time;
	uint64_t		 last_checked;	/* entries up to here matched a checkpoint */
	struct audit_verify_result res;
	int			 failed;
};

struct audit_verifier *
audit_verifier_new(EVP_PKEY *pub, const unsigned char log_id[16])
{
	struct audit_verifier *v = xcalloc(1, sizeof(*v));

	v->pub = v->cur = pub;
	memcpy(v->log_id, log_id, 16);
	audit_note_origin(log_id, v->origin);
	v->expect = 1;
	merkle_range_init(&v->range);
	v->res.signatures_checked = pub != NULL;
	return v;
}

void
audit_verifier_trust(struct audit_verifier *v, EVP_PKEY *k)
{
	v->trust = realloc(v->trust, (v->ntrust + 1) * sizeof(*v->trust));
	if (v->trust == NULL)
		fatalx("%s: out of memory", __func__);
	v->trust[v->ntrust++] = k;
	if (v->pub == NULL)
		v->pub = v->cur = k;
	v->res.signatures_checked = 1;
}

static int
vfail(struct audit_verifier *v, uint64_t seq, uint64_t cp, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
vfail(struct audit_verifier *v, uint64_t seq, uint64_t cp, const char *fmt, ...)
{
	va_list ap;

	if (v->failed)
		return -1;
	v->failed = 1;
	v->res.bad_seq = seq;
	v->res.bad_checkpoint = cp;
	va_start(ap, fmt);
	vsnprintf(v->res.why, sizeof(v->res.why), fmt, ap);
	va_end(ap);
	return -1;
}

static void
pend_add(struct audit_verifier *v, const struct vcp *c)
{
	size_t i = v->npend;

	if (v->npend == v->cap) {
		v->cap = v->cap ? 2 * v->cap : 16;
		if ((v->pend = realloc(v->pend, v->cap * sizeof(*v->pend))) == NULL)
			fatalx("%s: out of memory", __func__);
	}
	/* The auditor's own copy last among equals: the log's checkpoint names. */
	while (i > 0 && (v->pend[i - 1].size > c->size || (v->pend[i - 1].size ==
	    c->size && v->pend[i - 1].held && !c->held)))
		i--;
	memmove(v->pend + i + 1, v->pend + i, (v->npend - i) * sizeof(*v->pend));
	v->pend[i] = *c;
	v->npend++;
}

/* The entries so far (expect - 1 of them) against the checkpoints of that size. */
static int
check_reached(struct audit_verifier *v)
{
	uint64_t	 size = v->expect - 1;
	unsigned char	 root[32];

	merkle_range_root(&v->range, root);
	while (v->npend > 0 && v->pend[0].size == size) {
		struct vcp *c = &v->pend[0];

		if (c->legacy && memcmp(c->hash, v->prev, 32) != 0)
			return vfail(v, size, 0, "entry %llu differs from what checkpoint "
			    "%llu signed: the log was rewritten", (unsigned long long)size,
			    (unsigned long long)c->id);
		if (!c->legacy && memcmp(c->hash, root, 32) != 0) {
			if (c->held)
				return vfail(v, v->last_checked + 1, 0, "the log's first %llu "
				    "entries differ from the checkpoint you hold (--since): "
				    "rewritten after entry %llu", (unsigned long long)size,
				    (unsigned long long)v->last_checked);
			return vfail(v, v->last_checked + 1, c->id, "entries %llu..%llu "
			    "differ from what checkpoint %llu signed (its tree root): the "
			    "log was rewritten", (unsigned long long)(v->last_checked + 1),
			    (unsigned long long)size, (unsigned long long)c->id);
		}
		v->last_checked = size;
		memmove(v->pend, v->pend + 1, (v->npend - 1) * sizeof(*v->pend));
		v->npend--;
	}
	return 0;
}

/* 1 if k signed the legacy checkpoint. */
static int
legacy_signed_by(const struct audit_checkpoint *cp, EVP_PKEY *k)
{
	unsigned char	 msg[128];
	size_t		 mlen = audit_checkpoint_message(cp, msg);
	EVP_MD_CTX	*md = EVP_MD_CTX_new();
	int		 ok;

	ok = k != NULL && md != NULL &&
	    EVP_DigestVerifyInit(md, NULL, NULL, NULL, k) == 1 &&
	    EVP_DigestVerify(md, cp->sig, 64, msg, mlen) == 1;
	EVP_MD_CTX_free(md);
	return ok;
}

static int
trusted(struct audit_verifier *v, const char *note, const struct cpnote *c,
    const struct audit_checkpoint *cp)
{
	if (note != NULL ? audit_note_signed_by(note, c, v->cur) : legacy_signed_by(cp, v->cur))
		return 1;
	for (size_t i = 0; i < v->ntrust; i++)
		if (note != NULL ? audit_note_signed_by(note, c, v->trust[i]) :
		    legacy_signed_by(cp, v->trust[i]))
			return 1;
	return 0;
}

int
audit_verifier_checkpoint(struct audit_verifier *v, const struct audit_checkpoint *cp)
{
	struct vcp	 p;
	struct cpnote	 c;
	char		 why[128];

	if (v->failed)
		return -1;
	memset(&p, 0, sizeof(p));
	p.size = cp->size;
	v->res.checkpoints_seen++;
	if (cp->note == NULL) {
		p.id = cp->id;
		p.legacy = 1;
		memcpy(p.hash, cp->head, 32);
		if (memcmp(cp->log_id, v->log_id, 16) != 0)
			return vfail(v, 0, 0, "checkpoint %llu belongs to another log",
			    (unsigned long long)cp->id);
		if (v->last_n > 0)
			return vfail(v, 0, 0, "a version-2 checkpoint (%llu) after tree "
			    "checkpoint %llu: inserted", (unsigned long long)cp->id,
			    (unsigned long long)v->last_n);
		if (v->pub != NULL) {
			if (!trusted(v, NULL, NULL, cp))
				return vfail(v, cp->size, 0, "checkpoint %llu (size %llu): the "
				    "signature does not verify: forged or altered",
				    (unsigned long long)cp->id, (unsigned long long)cp->size);
			v->res.checkpoints++;
		}
	} else {
		if (audit_note_parse(cp->note, &c, why, sizeof(why)) == -1)
			return vfail(v, 0, v->last_n + 1, "the checkpoint after %llu: %s",
			    (unsigned long long)v->last_n, why);
		p.id = c.n;
		p.size = c.size;
		memcpy(p.hash, c.root, 32);
		if (strcmp(c.origin, v->origin) != 0)
			return vfail(v, 0, c.n, "checkpoint %llu belongs to another log (%s)",
			    (unsigned long long)c.n, c.origin);
		if (v->pub != NULL) {
			if (!trusted(v, cp->note, &c, NULL))
				return vfail(v, c.size, c.n, "checkpoint %llu (size %llu): the "
				    "signature does not verify with the log's key: forged or "
				    "altered", (unsigned long long)c.n,
				    (unsigned long long)c.size);
			v->res.checkpoints++;
			if (c.next_key[0] != '\0') {
				EVP_PKEY *k = audit_verifier_key_parse(c.next_key);

				if (k == NULL)
					return vfail(v, c.size, c.n, "checkpoint %llu names a "
					    "next key that cannot be read",
					    (unsigned long long)c.n);
				EVP_PKEY_free(v->owned);
				v->cur = v->owned = k;
			}
		}
		if (c.n != v->last_n + 1)
			return vfail(v, v->last_tree_size + 1, v->last_n + 1, c.n > v->last_n + 1 ?
			    "checkpoint %llu is missing (the next is %llu): deleted" :
			    "checkpoint %llu appears twice or out of order (%llu)",
			    (unsigned long long)(v->last_n + 1), (unsigned long long)c.n);
		if (c.n > 1 && c.size <= v->last_tree_size)
			return vfail(v, c.size, c.n, "checkpoint %llu (size %llu) does not "
			    "grow the log past checkpoint %llu (size %llu)",
			    (unsigned long long)c.n, (unsigned long long)c.size,
			    (unsigned long long)v->last_n,
			    (unsigned long long)v->last_tree_size);
		if (c.time < v->cp_time)
			return vfail(v, c.size, c.n, "checkpoint %llu is dated before "
			    "checkpoint %llu: the clock went back or it was forged",
			    (unsigned long long)c.n, (unsigned long long)v->last_n);
		v->last_n = c.n;
		v->last_tree_size = c.size;
		v->cp_time = c.time;
	}
	if (p.size < v->covered)
		return vfail(v, p.size, p.id, "checkpoints out of order at %llu",
		    (unsigned long long)p.id);
	if (p.size < v->expect - 1)
		return vfail(v, p.size, p.id, "checkpoint %llu (size %llu) comes after "
		    "entry %llu", (unsigned long long)p.id, (unsigned long long)p.size,
		    (unsigned long long)(v->expect - 1));
	v->covered = p.size;
	pend_add(v, &p);
	return p.size == v->expect - 1 ? check_reached(v) : 0;
}

int
audit_verifier_since(struct audit_verifier *v, const char *note, char *err,
    size_t errlen)
{
	struct cpnote	 c;
	struct vcp	 p;
	char		 why[128];

	if (audit_note_parse(note, &c, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "the checkpoint you hold: %s", why);
		return -1;
	}
	if (strcmp(c.origin, v->origin) != 0) {
		snprintf(err, errlen, "the checkpoint you hold is of another log (%s)",
		    c.origin);
		return -1;
	}
	if (v->pub == NULL || !trusted(v, note, &c, NULL)) {
		/* A rotation since: then it must be a key given as trusted. */
		snprintf(err, errlen, "the checkpoint you hold is not signed by a key "
		    "given with --pubkey");
		return -1;
	}
	memset(&p, 0, sizeof(p));
	p.id = c.n;
	p.size = c.size;
	p.held = 1;
	memcpy(p.hash, c.root, 32);
	pend_add(v, &p);
	return 0;
}

int
audit_verifier_entry(struct audit_verifier *v, const struct audit_entry *e)
{
	unsigned char h[32], leaf[32];

	if (v->failed)
		return -1;
	if (e->seq != v->expect)
		return vfail(v, v->expect, 0, "entry %llu is missing (next is %llu): "
		    "deleted or reordered", (unsigned long long)v->expect,
		    (unsigned long long)e->seq);
	if (memcmp(e->prev_hash, v->prev, 32) != 0)
		return vfail(v, e->seq, 0, "entry %llu does not link to the entry before "
		    "it: deleted, inserted or reordered", (unsigned long long)e->seq);
	audit_hash(e, h);
	if (memcmp(h, e->hash, 32) != 0)
		return vfail(v, e->seq, 0, "entry %llu's contents do not match its hash: "
		    "edited", (unsigned long long)e->seq);
	if (e->time < v->last_time)
		return vfail(v, e->seq, 0, "entry %llu is dated before the entry before "
		    "it: time went back (D7)", (unsigned long long)e->seq);
	v->last_time = e->time;
	merkle_leaf(h, leaf);
	merkle_range_append(&v->range, leaf, NULL, NULL);
	memcpy(v->prev, h, 32);
	v->expect++;
	v->res.entries++;
	/* A rewrite that recomputed the chain still contradicts a signed root. */
	return v->npend > 0 && v->pend[0].size == e->seq ? check_reached(v) : 0;
}

void
audit_verifier_finish(struct audit_verifier *v, struct audit_verify_result *res)
{
	uint64_t n = v->expect - 1;

	if (!v->failed && v->npend > 0) {
		if (v->pend[0].held)
			vfail(v, n + 1, 0, "the log is shorter than the checkpoint you hold "
			    "(--since): it covers %llu entries but the log ends at %llu",
			    (unsigned long long)v->pend[0].size, (unsigned long long)n);
		else
			vfail(v, n + 1, v->pend[0].legacy ? 0 : v->pend[0].id, "truncated: "
			    "checkpoint %llu covers %llu entries but the log ends at %llu",
			    (unsigned long long)v->pend[0].id,
			    (unsigned long long)v->pend[0].size, (unsigned long long)n);
	}
	if (!v->failed && n > v->covered && (v->pub != NULL || v->res.checkpoints_seen))
		vfail(v, v->covered + 1, 0, "entries %llu..%llu are not covered by a signed "
		    "checkpoint: added after the last one, or its checkpoints were "
		    "deleted", (unsigned long long)(v->covered + 1), (unsigned long long)n);
	if (!v->failed && v->pub == NULL && v->res.checkpoints_seen > 0)
		vfail(v, 0, 0, "the log has %llu signed checkpoints and no public key "
		    "was given: they were not verified, which is not a pass",
		    (unsigned long long)v->res.checkpoints_seen);
	v->res.ok = !v->failed;
	*res = v->res;
}

void
audit_verifier_free(struct audit_verifier *v)
{
	if (v == NULL)
		return;
	EVP_PKEY_free(v->owned);
	free(v->trust);
	free(v->pend);
	free(v);
}

struct vwalk {
	struct audit_verifier	*v;
	sqlite3_stmt		*cps;
	int			 have;		/* cps is on a row */
	int			 rc;
};

/* Feeds the checkpoints of size <= upto (all when upto is UINT64_MAX). */
static int
feed_checkpoints(struct vwalk *w, struct audit *a, uint64_t upto)
{
	while (w->have && (uint64_t)sqlite3_column_int64(w->cps, 1) <= upto) {
		struct audit_checkpoint cp;

		memset(&cp, 0, sizeof(cp));
		cp.id = (uint64_t)sqlite3_column_int64(w->cps, 0);
		memcpy(cp.log_id, a->log_id, 16);
		cp.size = (uint64_t)sqlite3_column_int64(w->cps, 1);
		if (sqlite3_column_bytes(w->cps, 2) == 32)
			memcpy(cp.head, sqlite3_column_blob(w->cps, 2), 32);
		cp.time = sqlite3_column_int64(w->cps, 3);
		if (sqlite3_column_bytes(w->cps, 4) == 64)
			memcpy(cp.sig, sqlite3_column_blob(w->cps, 4), 64);
		cp.note = (const char *)sqlite3_column_text(w->cps, 5);
		if (audit_verifier_checkpoint(w->v, &cp) == -1)
			return -1;
		if ((w->rc = sqlite3_step(w->cps)) != SQLITE_ROW) {
			w->have = 0;
			if (w->rc != SQLITE_DONE)
				return -1;
		}
	}
	return 0;
}

struct vwalk_entry {
	struct vwalk	*w;
	struct audit	*a;
};

static int
verify_entry_cb(const struct audit_entry *e, void *arg)
{
	struct vwalk_entry *x = arg;

	/* Those of its size first: the entry then checks them all at once. */
	return feed_checkpoints(x->w, x->a, e->seq) == -1 ||
	    audit_verifier_entry(x->w->v, e) == -1;
}

int
audit_verify_with(struct audit *a, struct audit_verifier *v,
    struct audit_verify_result *res)
{
	struct vwalk		 w = { v, NULL, 0, SQLITE_DONE };
	struct vwalk_entry	 x = { &w, a };
	char			 err[256] = "";
	int			 rc = 0;

	if (sqlite3_prepare_v2(a->db, audit_checkpoints_sql(a), -1, &w.cps,
	    NULL) != SQLITE_OK)
		rc = audit_sqlerr(a, "checkpoints", err, sizeof(err));
	else {
		w.have = (w.rc = sqlite3_step(w.cps)) == SQLITE_ROW;
		if ((!w.have && w.rc != SQLITE_DONE) || feed_checkpoints(&w, a, 0) == -1 ||
		    audit_scan(a, 1, 0, verify_entry_cb, &x, err, sizeof(err)) == -1 ||
		    feed_checkpoints(&w, a, UINT64_MAX) == -1)
			rc = -1;
		if (w.rc != SQLITE_DONE && w.rc != SQLITE_ROW)
			rc = audit_sqlerr(a, "checkpoints", err, sizeof(err));
	}
	sqlite3_finalize(w.cps);
	audit_verifier_finish(v, res);
	audit_verifier_free(v);
	/* A log that cannot be read does not verify: the reason is the verdict's. */
	if (rc == -1 && res->ok) {
		res->ok = 0;
		snprintf(res->why, sizeof(res->why), "%s", err);
	}
	return res->ok ? 0 : -1;
}

int
audit_verify(struct audit *a, EVP_PKEY *pub, struct audit_verify_result *res)
{
	return audit_verify_with(a, audit_verifier_new(pub, a->log_id), res);
}

EVP_PKEY *
audit_load_public_key(const char *path, char *err, size_t errlen)
{
	EVP_PKEY	*k;
	FILE		*fp;

	if ((fp = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	k = PEM_read_PUBKEY(fp, NULL, NULL, NULL);
	fclose(fp);
	if (k == NULL || EVP_PKEY_get_id(k) != EVP_PKEY_ED25519) {
		snprintf(err, errlen, "%s: not an Ed25519 public key (PEM)", path);
		EVP_PKEY_free(k);
		return NULL;
	}
	return k;
}
